//! The core's [`Config`] filled in from this system: what an embedder
//! that drives `taps-core` by hand needs before its first connect.
//!
//! - DNS servers, timing and search options from `/etc/resolv.conf`
//!   (resolv.conf(5)) and names from `/etc/hosts` (hosts(5)), through
//!   [`dns_config`](crate::dns_config);
//! - the system's TLS environment ([`tls`](crate::tls));
//! - a fresh seed, for the machine's tie shuffles. DNS query ids do not
//!   come from it: the core draws them from the TLS environment's secure
//!   random source, here ring's, which is the operating system's CSPRNG
//!   (getrandom(2)), as RFC 5452 §9.2 asks. Source ports are the kernel's
//!   random ephemeral ports ([`open_dns_udp`](crate::socket::open_dns_udp)).
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
        assert_ne!(a.seed, b.seed, "two instances must not shuffle alike");
    }

    /// The ids of the queries one connect sends, from a machine built on
    /// the system config with `seed`.
    fn query_ids(seed: u64) -> Vec<u16> {
        use taps_core::dns::DnsAction;
        use taps_core::{Instant, Machine, Output, Preconnection};
        let mut config = system_config().expect("resolv.conf and hosts are readable");
        config.seed = seed;
        config.dns.servers = vec!["192.0.2.53:53".parse().expect("an address")];
        let mut machine = Machine::new(config);
        let pre = Preconnection::new("ids.invalid-tld-for-tests:443".parse().expect("a name"));
        machine.initiate(Instant::ZERO, &pre).expect("initiated");
        std::iter::from_fn(|| machine.poll())
            .filter_map(|out| match out {
                Output::Dns(DnsAction::Send(s)) => {
                    Some(u16::from_be_bytes([s.payload[0], s.payload[1]]))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn dns_query_ids_come_from_the_os_csprng_not_the_seed() {
        // Equal seeds, so equal ids if they came from the seed. Eight
        // tries of three 16-bit ids: all equal by chance has odds 2^-384.
        let first = query_ids(7);
        assert_eq!(first.len(), 3, "AAAA, A and HTTPS");
        assert!(
            (0..8).any(|_| query_ids(7) != first),
            "same seed, same ids: they are predictable from the seed"
        );
    }
}
