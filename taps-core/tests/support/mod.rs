pub mod net;
pub mod pki;
pub mod world;
