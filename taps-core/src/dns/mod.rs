//! DNS for the core.
pub mod config;
pub mod wire;
