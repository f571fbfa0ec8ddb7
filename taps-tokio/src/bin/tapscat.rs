//! tapscat: a netcat for taps (written next).
fn main() {}
