//! Answers known at one instant are sorted together before the first
//! attempt (RFC 6724 §6 over every address known at that instant), while an
//! answer that really arrives first still starts the race at once (HEv3
//! §4). Each row quotes the rule it checks.

use taps_core::dns::parse_hosts;
use taps_core::{Config, Input, Instant, Interface, InterfaceKind, Machine, Output, Preconnection};

/// The first attempt's destination when `hosts` is the hosts file and the
/// client has both an IPv4 and a ULA IPv6 address on one interface.
fn first_attempt(hosts: &str) -> std::net::SocketAddr {
    let mut config = Config::new(1);
    config.hosts = parse_hosts(hosts);
    let mut machine = Machine::new(config);
    let now = Instant::ZERO;
    let eth0 = Interface::new(
        "eth0",
        2,
        InterfaceKind::Wired,
        &["10.77.0.2/24", "fd77::2/64", "2001:db8:77::2/64"],
    )
    .unwrap();
    machine.handle(now, Input::InterfacesChanged(vec![eth0]));
    let pre = Preconnection::new("dual.test:8080".parse().unwrap());
    machine.initiate(now, &pre).unwrap();
    while let Some(out) = machine.poll() {
        if let Output::OpenTcp { remote, .. } = out {
            return remote;
        }
    }
    panic!("no attempt started at the instant the answers were known");
}

#[test]
fn answers_of_one_instant_are_sorted_together() {
    let table: &[(&str, &str, &str)] = &[
        (
            "RFC 6724 §2.1: ULA (fc00::/7) has precedence 3, IPv4 (::ffff:0:0/96) 35; \
             §6 rule 6 prefers the higher precedence, so IPv4 goes first even though \
             the AAAA answer is handled first",
            "fd77::1 dual.test\n10.77.0.1 dual.test\n",
            "10.77.0.1:8080",
        ),
        (
            "RFC 6724 §2.1: global IPv6 (::/0) has precedence 40, above IPv4's 35; \
             HEv3 §4 starts with the preferred family",
            "2001:db8:77::1 dual.test\n10.77.0.1 dual.test\n",
            "[2001:db8:77::1]:8080",
        ),
        (
            "the order of the hosts file's lines does not matter: both are known at once",
            "10.77.0.1 dual.test\nfd77::1 dual.test\n",
            "10.77.0.1:8080",
        ),
    ];
    for (rule, hosts, want) in table {
        assert_eq!(first_attempt(hosts), want.parse().unwrap(), "{rule}");
    }
}
