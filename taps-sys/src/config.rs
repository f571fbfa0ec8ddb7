//! The core's [`Config`] filled in from this system: what an embedder
//! that drives `taps-core` by hand needs before its first connect.
//!
//! - DNS servers, timing and search options from `/etc/resolv.conf`
//!   (resolv.conf(5)) and names from `/etc/hosts` (hosts(5)), through
//!   [`dns_config`](crate::dns_config);
//! - the system's TLS environment ([`tls`](crate::tls));
//! - a fresh, unpredictable seed, since the seed picks DNS query ids
//!   (RFC 5452 §9.2).
//!
//! The interfaces are not configuration: they are reported to the machine
//! as an input ([`list_interfaces`](crate::interfaces::list_interfaces),
//! then `Input::InterfacesChanged`), and watched with
//! [`monitor`](crate::monitor).

use std::hash::{BuildHasher, RandomState};
use std::io;

use taps_core::Config;

/// The core's defaults, with this system's DNS servers, hosts file and TLS
/// environment and a fresh random seed. The async API builds its `Taps`
/// from this; an embedder of `taps-core` starts here too.
///
/// # Errors
///
/// When resolv.conf or the hosts file exists but cannot be read.
pub fn system_config() -> io::Result<Config> {
    let (dns, hosts) = crate::dns_config::system_dns()?;
    Ok(Config {
        dns,
        hosts,
        tls: Some(crate::tls::system_environment()),
        ..Config::new(random_seed())
    })
}

/// A seed that differs per process and per call: std's `RandomState` keys
/// come from the OS's random source, and the clock separates calls.
pub fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    RandomState::new().hash_one(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_config_has_tls_and_differs_in_its_seed_per_call() {
        let a = system_config().expect("resolv.conf and hosts are readable");
        let b = system_config().expect("resolv.conf and hosts are readable");
        assert!(a.tls.is_some(), "TLS must be ready to use");
        assert_ne!(a.seed, b.seed, "two instances must not share DNS ids");
    }
}
