//! NAT64 through the machine in virtual time (HEv3 editors' copy §8):
//! PREF64 from the configuration, a Router Advertisement (RFC 8781) or
//! `ipv4only.arpa` (RFC 7050 §3), DNS64 answers de-synthesized for
//! sorting (§8.2), IPv4 destinations synthesized on IPv6-only paths (§8.3).

use std::time::Duration;

use taps_core::{
    Config, Input, Interface, InterfaceKind, Machine, Preconnection, Pref64, Pref64Source,
    TraceKind,
    dns::DnsConfig,
    dns::parse_hosts,
    dns::{Answer, QueryType},
    race::RaceFailure,
};
use taps_testkit::world::{Tcp, World, addrs, ms};

const DNS: &str = "[2001:db8:1::53]:53";

fn config(pref64: Option<&str>) -> Config {
    Config {
        seed: 7,
        dns: DnsConfig {
            servers: vec![DNS.parse().unwrap()],
            ..DnsConfig::default()
        },
        pref64: pref64.map(|p| p.parse().unwrap()),
        ..taps_testkit::config(0)
    }
}

fn iface(addrs: &[&str]) -> Interface {
    Interface::new("wlan0", 2, InterfaceKind::Wifi, addrs).unwrap()
}

/// A world whose only interface has `addrs`.
fn world(config: Config, addrs: &[&str]) -> World {
    let mut w = World::new(Machine::new(config));
    w.handle(Input::InterfacesChanged(vec![iface(addrs)]));
    w
}

const V6_ONLY: &[&str] = &["2001:db8:1::10/64"];
const DUAL: &[&str] = &["192.168.1.10/24", "2001:db8:1::10/64"];

/// `v4only.example`: an A record only, answered after 10 ms.
fn a_only_name(w: &mut World) {
    w.rule(
        DNS,
        "v4only.example",
        QueryType::Https,
        10,
        Answer::NoData { negative_ttl: 60 },
    );
    w.rule(
        DNS,
        "v4only.example",
        QueryType::Aaaa,
        10,
        Answer::NoData { negative_ttl: 60 },
    );
    w.rule(
        DNS,
        "v4only.example",
        QueryType::A,
        10,
        addrs(&["192.0.2.1"], 300),
    );
}

/// The network's DNS64 answers `ipv4only.arpa` with both well-known
/// addresses under `prefix` (a /96) after `delay_ms`.
fn dns64(w: &mut World, prefix: &str, delay_ms: u64) {
    // The prefix must be a PREF64 for the test to mean anything.
    format!("{prefix}/96").parse::<Pref64>().unwrap();
    let a = format!("{prefix}c000:aa");
    let b = format!("{prefix}c000:ab");
    w.rule(
        DNS,
        "ipv4only.arpa",
        QueryType::Aaaa,
        delay_ms,
        addrs(&[&a, &b], 600),
    );
}

/// `addr` accepts a SYN after 20 ms (the NAT64 on the way is invisible).
fn accept(w: &mut World, addr: &str) {
    w.tcp(addr, Tcp::Accept(Duration::from_millis(20)));
}

/// Every attempt's socket address and the IPv4 address it stands for.
fn attempts(
    w: &World,
    c: taps_core::ConnectionId,
) -> Vec<(std::net::SocketAddr, Option<std::net::Ipv4Addr>)> {
    w.machine
        .connection_info(c)
        .unwrap()
        .trace()
        .events
        .iter()
        .filter_map(|e| match e.kind {
            TraceKind::AttemptStarted { remote, nat64, .. } => Some((remote, nat64)),
            _ => None,
        })
        .collect()
}

/// The trace record of a PREF64 learned (or not) from `source`.
fn prefix_event(prefix: Option<&str>, source: Pref64Source) -> TraceKind {
    TraceKind::Nat64Prefix {
        prefix: prefix.map(|p| p.parse().unwrap()),
        source,
    }
}

fn pre(text: &str) -> Preconnection {
    Preconnection::new(text.parse().unwrap())
}

fn asked(w: &World, name: &str) -> Vec<(u64, QueryType)> {
    w.queries
        .iter()
        .filter(|q| q.question.name.as_str() == name)
        .map(|q| (q.at.as_nanos() / 1_000_000, q.question.qtype))
        .collect()
}

fn nat64_events(w: &World, c: taps_core::ConnectionId) -> Vec<TraceKind> {
    w.machine
        .connection_info(c)
        .unwrap()
        .trace()
        .events
        .iter()
        .filter(|e| matches!(e.kind, TraceKind::Nat64Prefix { .. }))
        .map(|e| e.kind)
        .collect()
}

#[test]
fn discovery_finds_the_prefix_and_an_a_only_name_connects_through_it() {
    let mut w = world(config(None), V6_ONLY);
    a_only_name(&mut w);
    dns64(&mut w, "64:ff9b::", 10);
    accept(&mut w, "[64:ff9b::c000:201]:443");
    let c = w.initiate(ms(0), &pre("v4only.example:443")).unwrap();
    w.run_until(ms(10_000));
    // RFC 7050 §3: one AAAA query for the well-known name; HEv3 §8.1: A is
    // asked as well, though the path has no IPv4.
    assert_eq!(asked(&w, "ipv4only.arpa"), [(0, QueryType::Aaaa)]);
    assert_eq!(
        asked(&w, "v4only.example"),
        [
            (0, QueryType::Https),
            (0, QueryType::Aaaa),
            (0, QueryType::A)
        ]
    );
    // HEv3 §8.3: 192.0.2.1 synthesized with 64:ff9b::/96.
    assert_eq!(
        w.ready(c),
        Some((ms(30), "[64:ff9b::c000:201]:443".parse().unwrap(), Some(2)))
    );
    let trace = w.machine.connection_info(c).unwrap().trace();
    assert_eq!(
        attempts(&w, c),
        [(
            "[64:ff9b::c000:201]:443".parse().unwrap(),
            Some("192.0.2.1".parse().unwrap())
        )]
    );
    assert!(
        trace
            .to_string()
            .contains("192.0.2.1:443 via [64:ff9b::c000:201]:443 (NAT64)"),
        "{trace}"
    );
    assert!(
        trace
            .to_string()
            .contains("nat64    ipv4only.arpa AAAA query to [2001:db8:1::53]:53"),
        "{trace}"
    );
    assert!(w.live_dns().is_empty(), "every DNS transaction released");

    // The prefix is remembered: the next connection asks nothing more of
    // ipv4only.arpa.
    w.now = ms(1000);
    accept(&mut w, "[64:ff9b::c633:6407]:80");
    let c2 = w.initiate(ms(1000), &pre("198.51.100.7:80")).unwrap();
    w.run_until(ms(10_000));
    assert_eq!(asked(&w, "ipv4only.arpa").len(), 1);
    assert_eq!(
        w.ready(c2).map(|r| (r.0, r.1)),
        Some((ms(1020), "[64:ff9b::c633:6407]:80".parse().unwrap()))
    );
}

#[test]
fn a_configured_prefix_needs_no_discovery_and_wins() {
    // Config::pref64 wins over whatever the network would say.
    let mut w = world(config(Some("2001:db8:64::/96")), V6_ONLY);
    a_only_name(&mut w);
    dns64(&mut w, "64:ff9b::", 0);
    accept(&mut w, "[2001:db8:64::c000:201]:443");
    let c = w.initiate(ms(0), &pre("v4only.example:443")).unwrap();
    w.run_until(ms(10_000));
    assert!(asked(&w, "ipv4only.arpa").is_empty());
    assert_eq!(
        w.ready(c).map(|r| r.1),
        Some("[2001:db8:64::c000:201]:443".parse().unwrap())
    );
    assert_eq!(
        nat64_events(&w, c),
        [prefix_event(
            Some("2001:db8:64::/96"),
            Pref64Source::Configured
        )]
    );
}

#[test]
fn dns64_answers_are_sorted_as_ipv4_and_reached_natively_on_a_dual_stack_path() {
    // HEv3 §8.2: "Synthesized IPv6 addresses ... MUST be de-synthesized
    // into IPv4 addresses before being used by the Happy Eyeballs client
    // for grouping and sorting ..., and connecting."
    let mut w = world(config(Some("64:ff9b::/96")), DUAL);
    w.rule(
        DNS,
        "mixed.example",
        QueryType::Https,
        10,
        Answer::NoData { negative_ttl: 60 },
    );
    w.rule(
        DNS,
        "mixed.example",
        QueryType::Aaaa,
        10,
        addrs(&["64:ff9b::c000:201", "2001:db8::1"], 300),
    );
    w.rule(
        DNS,
        "mixed.example",
        QueryType::A,
        10,
        addrs(&["192.0.2.1"], 300),
    );
    w.tcp("[2001:db8::1]:443", Tcp::Refuse(Duration::from_millis(20)));
    accept(&mut w, "192.0.2.1:443");
    let c = w.initiate(ms(0), &pre("mixed.example:443")).unwrap();
    w.run_until(ms(10_000));
    let info = w.machine.connection_info(c).unwrap();
    let mut candidates: Vec<std::net::SocketAddr> = info
        .race()
        .unwrap()
        .candidates()
        .iter()
        .map(|c| c.remote)
        .collect();
    candidates.sort();
    assert_eq!(
        candidates,
        [
            "192.0.2.1:443".parse().unwrap(),
            "[2001:db8::1]:443".parse().unwrap()
        ],
        "the DNS64 answer is 192.0.2.1 again, not a third candidate"
    );
    assert_eq!(
        attempts(&w, c),
        [
            ("[2001:db8::1]:443".parse().unwrap(), None),
            ("192.0.2.1:443".parse().unwrap(), None),
        ],
        "{}",
        info.trace()
    );
    assert_eq!(
        w.ready(c).map(|r| r.1),
        Some("192.0.2.1:443".parse().unwrap())
    );
}

#[test]
fn a_router_advertisement_prefix_frees_a_race_waiting_for_discovery() {
    let mut w = world(config(None), V6_ONLY);
    // A slow DNS64: discovery would take 500 ms.
    dns64(&mut w, "64:ff9b::", 500);
    accept(&mut w, "[2001:db8:77::c633:6407]:80");
    // The RA, and its repetition: only news is recorded.
    for at in [40, 45] {
        w.inject_at(
            ms(at),
            Input::Pref64(Some("2001:db8:77::/96".parse().unwrap())),
        );
    }
    let c = w.initiate(ms(0), &pre("198.51.100.7:80")).unwrap();
    w.run_until(ms(10_000));
    // RFC 8781 wins over the discovery still out (HEv3 §8.1).
    assert_eq!(
        w.ready(c).map(|r| (r.0, r.1)),
        Some((ms(60), "[2001:db8:77::c633:6407]:80".parse().unwrap()))
    );
    assert_eq!(
        nat64_events(&w, c),
        [prefix_event(
            Some("2001:db8:77::/96"),
            Pref64Source::RouterAdvertisement
        )]
    );
}

#[test]
fn no_dns64_fails_an_a_only_name_once_discovery_settles() {
    let mut w = world(config(None), V6_ONLY);
    a_only_name(&mut w);
    w.rule(
        DNS,
        "ipv4only.arpa",
        QueryType::Aaaa,
        80,
        Answer::NoData { negative_ttl: 60 },
    );
    let c = w.initiate(ms(0), &pre("v4only.example:443")).unwrap();
    w.run_until(ms(10_000));
    let (at, error) = w
        .events
        .iter()
        .find_map(|(at, e)| match e {
            taps_core::Event::EstablishmentError { conn, error } if *conn == c => {
                Some((*at, error.clone()))
            }
            _ => None,
        })
        .expect("an establishment error");
    // It waited for the discovery (80 ms + the 0 ms link), not for A alone.
    assert_eq!(at, ms(80));
    assert_eq!(error.reason, RaceFailure::NoReachableAddress);
    assert_eq!(
        nat64_events(&w, c),
        [prefix_event(None, Pref64Source::Discovered)]
    );
    // A failed discovery is not repeated on the same network.
    w.now = ms(1000);
    let _ = w.initiate(ms(1000), &pre("v4only.example:443")).unwrap();
    w.run_until(ms(10_000));
    assert_eq!(asked(&w, "ipv4only.arpa").len(), 1);
}

#[test]
fn scoped_ipv4_literals_are_never_synthesized() {
    // HEv3 §8.3: "0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, and
    // 255.255.255.255/32" need no synthesis.
    let mut w = world(config(Some("64:ff9b::/96")), V6_ONLY);
    let c = w.initiate(ms(0), &pre("169.254.1.1:80")).unwrap();
    w.run_until(ms(10_000));
    assert_eq!(
        w.error(c).map(|e| e.reason),
        Some(RaceFailure::NoReachableAddress)
    );
    assert!(w.opened.is_empty(), "no socket to 64:ff9b::a9fe:101");
}

#[test]
fn discovery_outlives_the_connection_that_started_it() {
    let mut w = world(config(None), V6_ONLY);
    dns64(&mut w, "64:ff9b::", 100);
    accept(&mut w, "[64:ff9b::c633:6407]:80");
    let first = w.initiate(ms(0), &pre("198.51.100.7:80")).unwrap();
    w.run_until(ms(10));
    w.now = ms(10);
    let second = w.initiate(ms(10), &pre("198.51.100.7:80")).unwrap();
    w.run_until(ms(20));
    w.machine.connection(first).abort(ms(20));
    w.drain();
    w.run_until(ms(10_000));
    assert_eq!(asked(&w, "ipv4only.arpa").len(), 1);
    assert_eq!(
        w.ready(second).map(|r| (r.0, r.1)),
        Some((ms(120), "[64:ff9b::c633:6407]:80".parse().unwrap()))
    );
}

#[test]
fn a_network_change_forgets_the_discovered_prefix() {
    let mut w = world(config(None), V6_ONLY);
    dns64(&mut w, "64:ff9b::", 10);
    accept(&mut w, "[64:ff9b::c633:6407]:80");
    accept(&mut w, "[2001:db8:46::c633:6407]:80");
    let c = w.initiate(ms(0), &pre("198.51.100.7:80")).unwrap();
    w.run_until(ms(1000));
    assert_eq!(
        w.ready(c).map(|r| r.1),
        Some("[64:ff9b::c633:6407]:80".parse().unwrap())
    );

    // A new network, with another prefix.
    w.now = ms(1000);
    w.handle(Input::InterfacesChanged(vec![iface(&[
        "2001:db8:2::10/64",
    ])]));
    dns64(&mut w, "2001:db8:46::", 10);
    let c2 = w.initiate(ms(1000), &pre("198.51.100.7:80")).unwrap();
    w.run_until(ms(10_000));
    assert_eq!(
        asked(&w, "ipv4only.arpa"),
        [(0, QueryType::Aaaa), (1000, QueryType::Aaaa)]
    );
    assert_eq!(
        w.ready(c2).map(|r| (r.0, r.1)),
        Some((ms(1030), "[2001:db8:46::c633:6407]:80".parse().unwrap()))
    );
}

#[test]
fn discovery_asks_the_resolvers_not_the_hosts_file() {
    // RFC 8880 §7.2: resolver libraries do not treat ipv4only.arpa as
    // special; its query goes to the configured servers.
    let mut c = config(None);
    c.hosts = parse_hosts("2001:db8:bad::c000:aa ipv4only.arpa\n");
    let mut w = world(c, V6_ONLY);
    dns64(&mut w, "64:ff9b::", 10);
    accept(&mut w, "[64:ff9b::c633:6407]:80");
    let conn = w.initiate(ms(0), &pre("198.51.100.7:80")).unwrap();
    w.run_until(ms(10_000));
    assert_eq!(asked(&w, "ipv4only.arpa"), [(0, QueryType::Aaaa)]);
    assert_eq!(
        w.ready(conn).map(|r| r.1),
        Some("[64:ff9b::c633:6407]:80".parse().unwrap())
    );
}

#[test]
fn loopback_is_not_ipv4_connectivity() {
    // HEv3 §4.1: connectivity is "at least one non-loopback and
    // non-link-local" address of the family; a real host's lo always has
    // 127.0.0.1, and its IPv6-only network still needs discovery.
    let mut w = World::new(Machine::new(config(None)));
    let lo = Interface::new(
        "lo",
        1,
        InterfaceKind::Loopback,
        &["127.0.0.1/8", "::1/128"],
    )
    .unwrap();
    w.handle(Input::InterfacesChanged(vec![lo, iface(V6_ONLY)]));
    dns64(&mut w, "64:ff9b::", 10);
    accept(&mut w, "[64:ff9b::c633:6407]:80");
    let c = w.initiate(ms(0), &pre("198.51.100.7:80")).unwrap();
    w.run_until(ms(10_000));
    assert_eq!(asked(&w, "ipv4only.arpa"), [(0, QueryType::Aaaa)]);
    assert_eq!(
        w.ready(c).map(|r| (r.1, r.2)),
        Some(("[64:ff9b::c633:6407]:80".parse().unwrap(), Some(2)))
    );
}

#[test]
fn a_zero_ttl_prefix_serves_the_races_that_waited_then_is_asked_again() {
    // dnsmasq answers its own records with TTL 0, and REFUSED for types it
    // has no record of.
    let mut w = world(config(None), V6_ONLY);
    w.rule(DNS, "v4only.example", QueryType::Https, 0, Answer::Refused);
    w.rule(DNS, "v4only.example", QueryType::Aaaa, 0, Answer::Refused);
    w.rule(
        DNS,
        "v4only.example",
        QueryType::A,
        0,
        addrs(&["192.0.2.1"], 0),
    );
    w.rule(
        DNS,
        "ipv4only.arpa",
        QueryType::Aaaa,
        0,
        addrs(&["64:ff9b::c000:aa"], 0),
    );
    accept(&mut w, "[64:ff9b::c000:201]:443");
    let c = w.initiate(ms(0), &pre("v4only.example:443")).unwrap();
    w.run_until(ms(1000));
    let trace = w.machine.connection_info(c).unwrap().trace().to_string();
    assert_eq!(
        w.ready(c).map(|r| r.1),
        Some("[64:ff9b::c000:201]:443".parse().unwrap()),
        "{trace}"
    );
    w.now = ms(1000);
    let c2 = w.initiate(ms(1000), &pre("v4only.example:443")).unwrap();
    w.run_until(ms(10_000));
    assert!(w.ready(c2).is_some());
    assert_eq!(
        asked(&w, "ipv4only.arpa"),
        [(0, QueryType::Aaaa), (1000, QueryType::Aaaa)]
    );
}

#[test]
fn ipv4_hints_are_synthesized_too() {
    // HEv3 §8.3: the IPv4 addresses synthesized "can come from DNS (via A
    // records or IPv4 address hints received in SVCB/HTTPS records)".
    use smallvec::smallvec;
    use taps_core::dns::HttpsRecord;
    let mut w = world(config(Some("64:ff9b::/96")), V6_ONLY);
    let record = HttpsRecord {
        priority: 1,
        target: None,
        alpn: vec!["h2".into()],
        no_default_alpn: false,
        port: None,
        ipv4hint: smallvec!["192.0.2.77".parse().unwrap()],
        ipv6hint: smallvec![],
        ech: false,
    };
    w.rule(
        DNS,
        "hinted.example",
        QueryType::Https,
        5,
        Answer::Https {
            records: smallvec![record],
            ttl: 60,
        },
    );
    w.rule(
        DNS,
        "hinted.example",
        QueryType::Aaaa,
        5,
        Answer::NoData { negative_ttl: 60 },
    );
    // The A answer is slow: the hint stands in until it comes.
    w.rule(
        DNS,
        "hinted.example",
        QueryType::A,
        500,
        addrs(&["192.0.2.77"], 60),
    );
    accept(&mut w, "[64:ff9b::c000:24d]:443");
    let c = w.initiate(ms(0), &pre("hinted.example:443")).unwrap();
    w.run_until(ms(10_000));
    assert_eq!(
        attempts(&w, c),
        [(
            "[64:ff9b::c000:24d]:443".parse().unwrap(),
            Some("192.0.2.77".parse().unwrap())
        )]
    );
    assert_eq!(w.ready(c).map(|r| r.0), Some(ms(25)));
}

#[test]
fn an_ipv6_literal_inside_the_prefix_is_taken_as_given() {
    // HEv3 §8.2 de-synthesizes what DNS returns; an address the
    // application names itself is its choice, on any path.
    for addrs in [DUAL, V6_ONLY] {
        let mut w = world(config(Some("64:ff9b::/96")), addrs);
        accept(&mut w, "[64:ff9b::c000:201]:443");
        accept(&mut w, "192.0.2.1:443");
        let c = w.initiate(ms(0), &pre("[64:ff9b::c000:201]:443")).unwrap();
        w.run_until(ms(10_000));
        assert_eq!(
            attempts(&w, c),
            [("[64:ff9b::c000:201]:443".parse().unwrap(), None)],
            "{addrs:?}"
        );
        assert!(nat64_events(&w, c).is_empty());
    }
}
