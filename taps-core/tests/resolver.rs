//! The resolver's behaviour above single questions, through the machine in
//! virtual time with real DNS messages: the resolv.conf(5) search list, HTTPS
//! AliasMode chains (RFC 9460 §3), the ALPN an attempt offers (RFC 9460
//! §7.1), HTTPS records and plain connections (RFC 9460 §9.5), and the TLS
//! name a search-expanded connection verifies.

use std::net::SocketAddr;
use std::time::Duration;

use smallvec::smallvec;
use taps_core::dns::{Answer, DnsConfig, HttpsRecord, MAX_ALIAS_HOPS, QueryType};
use taps_core::{
    Config, DnsOutcome, HostName, Input, Machine, NameStep, Preconnection, SecurityParameters,
    SocketId, TraceKind, race::RaceFailure,
};
use taps_testkit::pki::TestCa;
use taps_testkit::world::{Tcp, World, addrs, ms};

const DNS: &str = "192.168.1.1:53";

fn machine(search: &[&str], ndots: u8) -> Machine {
    Machine::new(Config {
        seed: 7,
        dns: DnsConfig {
            servers: vec![DNS.parse().unwrap()],
            search: search.iter().map(|s| HostName::new(s).unwrap()).collect(),
            ndots,
            ..DnsConfig::default()
        },
        ..taps_testkit::config(0)
    })
}

fn pre(text: &str) -> Preconnection {
    Preconnection::new(text.parse().unwrap())
}

fn tls(alpn: &[&str]) -> SecurityParameters {
    SecurityParameters::with_roots(vec![TestCa::new().root()]).alpn(alpn.iter().copied())
}

fn nodata() -> Answer {
    Answer::NoData { negative_ttl: 60 }
}

fn https(records: Vec<HttpsRecord>) -> Answer {
    Answer::Https {
        records: records.into_iter().collect(),
        ttl: 60,
    }
}

fn record(priority: u16, target: Option<&str>, alpn: &[&str], port: Option<u16>) -> HttpsRecord {
    HttpsRecord {
        priority,
        target: target.map(|t| HostName::new(t).unwrap()),
        alpn: alpn.iter().map(|a| a.to_string()).collect(),
        no_default_alpn: false,
        port,
        ipv4hint: smallvec![],
        ipv6hint: smallvec![],
        ech: false,
    }
}

fn alias(target: &str) -> HttpsRecord {
    record(0, Some(target), &[], None)
}

/// `name` has IPv4 address `v4` and no IPv6 address.
fn v4_only(w: &mut World, name: &str, v4: &str) {
    w.rule(DNS, name, QueryType::Aaaa, 5, nodata());
    w.rule(DNS, name, QueryType::A, 5, addrs(&[v4], 60));
}

fn asked(w: &World, qtype: QueryType) -> Vec<String> {
    w.queries
        .iter()
        .filter(|q| q.question.qtype == qtype)
        .map(|q| q.question.name.as_str().to_string())
        .collect()
}

fn opened(w: &World) -> Vec<SocketAddr> {
    w.opened.iter().map(|o| o.remote).collect()
}

fn trace_names(w: &World, c: taps_core::ConnectionId) -> Vec<(String, NameStep)> {
    let info = w.machine.connection_info(c).unwrap();
    info.trace()
        .events
        .iter()
        .filter_map(|e| match e.kind {
            TraceKind::DnsName { name, step } => Some((name.as_str().to_string(), step)),
            _ => None,
        })
        .collect()
}

// resolv.conf(5), ndots: "if there are any dots in a name, the name will be
// tried first as an absolute name before any search list elements are
// appended to it"; search: "Resolver queries having fewer than ndots dots
// (default is 1) in them will be attempted using each component of the
// search path in turn until a match is found." A trailing dot is absolute.
// NXDOMAIN and NODATA for both A and AAAA, or SERVFAIL, move on (glibc
// res_search); the first name with an address is the one connected to.
#[test]
fn search_list_is_walked_in_glibc_order_until_a_name_answers() {
    struct Case {
        what: &'static str,
        typed: &'static str,
        search: &'static [&'static str],
        ndots: u8,
        /// Names that have an address (192.0.2.N for the Nth).
        exist: &'static [&'static str],
        /// Names whose AAAA answer is SERVFAIL rather than NXDOMAIN.
        servfail: &'static [&'static str],
        /// A questions, in order.
        asked: &'static [&'static str],
        /// The connected address, or `None`: no address.
        connects: Option<&'static str>,
    }
    let cases = [
        Case {
            what: "short name: the search list first",
            typed: "www",
            search: &["corp.example", "lab.example"],
            ndots: 1,
            exist: &["www.lab.example", "www"],
            servfail: &[],
            asked: &["www.corp.example", "www.lab.example"],
            connects: Some("192.0.2.1:80"),
        },
        Case {
            what: "short name: the name as typed comes last",
            typed: "www",
            search: &["corp.example", "lab.example"],
            ndots: 1,
            exist: &["www"],
            servfail: &[],
            asked: &["www.corp.example", "www.lab.example", "www"],
            connects: Some("192.0.2.1:80"),
        },
        Case {
            what: "enough dots: as typed first",
            typed: "www.dev",
            search: &["corp.example"],
            ndots: 1,
            exist: &["www.dev", "www.dev.corp.example"],
            servfail: &[],
            asked: &["www.dev"],
            connects: Some("192.0.2.1:80"),
        },
        Case {
            what: "enough dots, not found as typed: the search list next",
            typed: "www.dev",
            search: &["corp.example"],
            ndots: 1,
            exist: &["www.dev.corp.example"],
            servfail: &[],
            asked: &["www.dev", "www.dev.corp.example"],
            connects: Some("192.0.2.1:80"),
        },
        Case {
            what: "ndots:2 makes one dot too few",
            typed: "www.dev",
            search: &["corp.example"],
            ndots: 2,
            exist: &["www.dev", "www.dev.corp.example"],
            servfail: &[],
            asked: &["www.dev.corp.example"],
            connects: Some("192.0.2.2:80"),
        },
        Case {
            what: "a trailing dot: absolute, no search",
            typed: "www.",
            search: &["corp.example"],
            ndots: 1,
            exist: &["www.corp.example"],
            servfail: &[],
            asked: &["www"],
            connects: None,
        },
        Case {
            what: "SERVFAIL moves on like NXDOMAIN",
            typed: "www",
            search: &["corp.example", "lab.example"],
            ndots: 1,
            exist: &["www.lab.example"],
            servfail: &["www.corp.example"],
            asked: &["www.corp.example", "www.lab.example"],
            connects: Some("192.0.2.1:80"),
        },
        Case {
            what: "SERVFAIL, then nothing: the error names the last name's answers",
            typed: "www",
            search: &["corp.example"],
            ndots: 1,
            exist: &[],
            servfail: &["www.corp.example"],
            asked: &["www.corp.example", "www"],
            connects: None,
        },
        Case {
            what: "nothing anywhere: every name, then no address",
            typed: "www",
            search: &["corp.example"],
            ndots: 1,
            exist: &[],
            servfail: &[],
            asked: &["www.corp.example", "www"],
            connects: None,
        },
    ];
    for case in cases {
        let mut w = World::new(machine(case.search, case.ndots));
        for (i, name) in case.exist.iter().enumerate() {
            let addr = format!("192.0.2.{}", i + 1);
            v4_only(&mut w, name, &addr);
            w.tcp(
                &format!("{addr}:80"),
                Tcp::Accept(Duration::from_millis(10)),
            );
        }
        for name in case.servfail {
            w.rule(DNS, name, QueryType::Aaaa, 5, Answer::ServFail);
        }
        let c = w
            .initiate(ms(0), &pre(&format!("{}:80", case.typed)))
            .unwrap();
        w.run_until(ms(10_000));
        assert_eq!(asked(&w, QueryType::A), case.asked, "{}", case.what);
        // Each name's AAAA and HTTPS (port 80: `_80._https.`) go with its A.
        let aaaa = asked(&w, QueryType::Aaaa);
        assert_eq!(aaaa, case.asked, "{}: AAAA", case.what);
        let https: Vec<String> = case
            .asked
            .iter()
            .map(|n| format!("_80._https.{n}"))
            .collect();
        assert_eq!(asked(&w, QueryType::Https), https, "{}: HTTPS", case.what);
        match case.connects {
            Some(addr) => assert_eq!(
                w.ready(c).map(|r| r.1),
                Some(addr.parse().unwrap()),
                "{}",
                case.what
            ),
            None => {
                let error = w
                    .error(c)
                    .unwrap_or_else(|| panic!("{}: no error", case.what));
                assert_eq!(error.reason, RaceFailure::NoAddresses, "{}", case.what);
                // The last name's answers say why, once for both families.
                let typed = case.typed.trim_end_matches('.');
                assert_eq!(
                    error.to_string(),
                    format!("could not resolve host {typed}: NXDOMAIN from 192.168.1.1"),
                    "{}",
                    case.what
                );
            }
        }
        // The trace names each name a search list gives when it has more
        // than one.
        let listed: Vec<String> = trace_names(&w, c).into_iter().map(|(n, _)| n).collect();
        let expected: Vec<String> = if case.typed.ends_with('.') {
            Vec::new()
        } else {
            case.asked.iter().map(|s| s.to_string()).collect()
        };
        assert_eq!(listed, expected, "{}: trace", case.what);
        assert!(w.live_dns().is_empty(), "{}: DNS released", case.what);
    }
}

#[test]
fn a_lookup_of_one_name_records_no_name_and_waits_for_nothing() {
    let mut w = World::new(machine(&[], 1));
    v4_only(&mut w, "www", "192.0.2.1");
    w.tcp("192.0.2.1:80", Tcp::Accept(Duration::from_millis(10)));
    let c = w.initiate(ms(0), &pre("www:80")).unwrap();
    w.run_until(ms(1_000));
    assert_eq!(w.ready(c).map(|r| r.0), Some(ms(15)));
    assert!(trace_names(&w, c).is_empty());
}

/// Connects every socket the machine opened (and the world left
/// unconnected) and returns what its TLS ClientHello says: (SNI, offered
/// ALPN ids).
fn client_hellos(w: &mut World) -> Vec<(String, Vec<String>)> {
    let sockets: Vec<SocketId> = w.live_sockets();
    let mut out = Vec::new();
    for socket in sockets {
        w.machine.handle(w.now, Input::SocketConnected { socket });
        let bytes = w.machine.socket(socket).transmit_data().to_vec();
        let mut acceptor = rustls::server::Acceptor::default();
        acceptor.read_tls(&mut &bytes[..]).unwrap();
        let accepted = acceptor
            .accept()
            .unwrap_or_else(|(e, _)| panic!("not a ClientHello: {e}"))
            .expect("a whole ClientHello");
        let hello = accepted.client_hello();
        let sni = hello.server_name().unwrap_or_default().to_string();
        let alpn = hello
            .alpn()
            .map(|ids| {
                ids.map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        out.push((sni, alpn));
    }
    out
}

// curl, like every getaddrinfo user, verifies the host name the user typed:
// the search list is the local network's shorthand, the certificate names
// the service. TLS must never be checked against a search-expanded name.
#[test]
fn tls_verifies_the_name_the_application_gave_not_the_expanded_one() {
    let mut w = World::new(machine(&["corp.example"], 1));
    v4_only(&mut w, "intranet.corp.example", "192.0.2.5");
    w.tcp("192.0.2.5:443", Tcp::Blackhole);
    w.initiate(ms(0), &pre("intranet:443").with_security(tls(&["h2"])))
        .unwrap();
    w.run_until(ms(100));
    assert_eq!(opened(&w), ["192.0.2.5:443".parse().unwrap()]);
    assert_eq!(
        client_hellos(&mut w),
        [("intranet".to_string(), vec!["h2".to_string()])]
    );
}

// RFC 9460 §7.1: the "alpn" and "no-default-alpn" SvcParamKeys "together
// indicate the set of ... ALPN protocol identifiers ... supported by this
// service endpoint (the "SVCB ALPN set")", and "Clients filter the set of
// ALPN identifiers to match the protocol suites they support" (the set
// holds `http/1.1`, HTTPS's default, unless `no-default-alpn`). An attempt on a record's endpoint offers that
// intersection, in the application's order; a record with nothing in
// common is skipped (the owner name's own addresses remain, offering the
// application's list); an application that names no ALPN offers none.
#[test]
fn an_attempt_offers_the_alpn_its_https_record_and_the_application_share() {
    struct Case {
        what: &'static str,
        record_alpn: &'static [&'static str],
        no_default_alpn: bool,
        app: &'static [&'static str],
        /// (connected to, ALPN offered)
        offered: (&'static str, &'static [&'static str]),
    }
    let cases = [
        Case {
            what: "the record's h2 and the default http/1.1, in the application's order",
            record_alpn: &["h2"],
            no_default_alpn: false,
            app: &["http/1.1", "h2", "spdy/3"],
            offered: ("192.0.2.7:443", &["http/1.1", "h2"]),
        },
        Case {
            what: "no-default-alpn leaves only h2",
            record_alpn: &["h2"],
            no_default_alpn: true,
            app: &["http/1.1", "h2"],
            offered: ("192.0.2.7:443", &["h2"]),
        },
        Case {
            what: "nothing in common: the record is skipped",
            record_alpn: &["h2"],
            no_default_alpn: true,
            app: &["http/1.1"],
            offered: ("192.0.2.1:443", &["http/1.1"]),
        },
        Case {
            what: "the application names no ALPN: none is offered",
            record_alpn: &["h2"],
            no_default_alpn: true,
            app: &[],
            offered: ("192.0.2.7:443", &[]),
        },
    ];
    for case in cases {
        let mut w = World::new(machine(&[], 1));
        let mut r = record(1, None, case.record_alpn, None);
        r.no_default_alpn = case.no_default_alpn;
        r.ipv4hint = smallvec!["192.0.2.7".parse().unwrap()];
        w.rule(DNS, "svc.example", QueryType::Https, 5, https(vec![r]));
        // The owner's A answer comes later than the hint, so the hint's
        // attempt is the first.
        w.rule(DNS, "svc.example", QueryType::Aaaa, 5, nodata());
        w.rule(
            DNS,
            "svc.example",
            QueryType::A,
            40,
            addrs(&["192.0.2.1"], 60),
        );
        w.initiate(ms(0), &pre("svc.example:443").with_security(tls(case.app)))
            .unwrap();
        w.run_until(ms(100));
        assert_eq!(
            opened(&w),
            [case.offered.0.parse().unwrap()],
            "{}",
            case.what
        );
        let hellos = client_hellos(&mut w);
        let want: Vec<String> = case.offered.1.iter().map(|s| s.to_string()).collect();
        assert_eq!(hellos, [("svc.example".to_string(), want)], "{}", case.what);
    }
}

/// `svc.example` has no address of its own; its HTTPS record aliases
/// through `hops` names `a1.example`..`aN.example`; the last has a
/// ServiceMode record on port 8443 and address 192.0.2.9.
fn alias_world(hops: u8, tail: Option<&str>) -> World {
    let mut w = World::new(machine(&[], 1));
    w.rule(DNS, "svc.example", QueryType::Aaaa, 5, nodata());
    w.rule(
        DNS,
        "svc.example",
        QueryType::A,
        5,
        addrs(&["192.0.2.1"], 60),
    );
    let mut from = "svc.example".to_string();
    for hop in 1..=hops {
        let to = format!("a{hop}.example");
        w.rule(DNS, &from, QueryType::Https, 5, https(vec![alias(&to)]));
        from = to;
    }
    match tail {
        Some(loop_to) => w.rule(DNS, &from, QueryType::Https, 5, https(vec![alias(loop_to)])),
        None => {
            w.rule(
                DNS,
                &from,
                QueryType::Https,
                5,
                https(vec![record(1, None, &["h2"], Some(8443))]),
            );
            v4_only(&mut w, &from, "192.0.2.9");
        }
    }
    w.tcp("192.0.2.9:8443", Tcp::Accept(Duration::from_millis(10)));
    w.tcp("192.0.2.9:443", Tcp::Blackhole);
    w.tcp("192.0.2.1:443", Tcp::Blackhole);
    w
}

fn https_outcomes(w: &World, c: taps_core::ConnectionId) -> Vec<DnsOutcome> {
    let info = w.machine.connection_info(c).unwrap();
    info.trace()
        .events
        .iter()
        .filter_map(|e| match e.kind {
            TraceKind::DnsAnswer {
                qtype: QueryType::Https,
                outcome,
                ..
            } => Some(outcome),
            _ => None,
        })
        .collect()
}

// RFC 9460 §3: "If an AliasMode SVCB record is returned for $QNAME (after
// following CNAMEs), set $QNAME to its TargetName (without additional
// prefixes) and loop back to step 2, subject to chain length limits and
// loop detection heuristics". The chain's end names the endpoint: its
// ServiceMode record's "." is the chain's last name, on the record's port.
#[test]
fn https_alias_mode_chains_are_followed_up_to_eight_hops() {
    for hops in [1, 3, MAX_ALIAS_HOPS] {
        let mut w = alias_world(hops, None);
        // Only the chain leads to an address; its attempt is connected by
        // `client_hellos`, to read what it offers.
        w.rule(DNS, "svc.example", QueryType::A, 5, nodata());
        w.tcp("192.0.2.9:8443", Tcp::Blackhole);
        let c = w
            .initiate(ms(0), &pre("svc.example:443").with_security(tls(&["h2"])))
            .unwrap();
        w.run_until(ms(200));
        let mut chain = vec!["svc.example".to_string()];
        chain.extend((1..=hops).map(|h| format!("a{h}.example")));
        assert_eq!(asked(&w, QueryType::Https), chain, "{hops} hops");
        let last = format!("a{hops}.example");
        assert_eq!(
            asked(&w, QueryType::A),
            ["svc.example".to_string(), last.clone()],
            "{hops} hops: the chain's end is resolved"
        );
        assert_eq!(
            opened(&w).first(),
            Some(&"192.0.2.9:8443".parse().unwrap()),
            "{hops} hops: the ServiceMode endpoint of the chain's end first"
        );
        let steps: Vec<(String, NameStep)> = trace_names(&w, c);
        let want: Vec<(String, NameStep)> = (1..=hops)
            .map(|hop| (format!("a{hop}.example"), NameStep::Alias { hop }))
            .collect();
        assert_eq!(steps, want, "{hops} hops: the trace names every hop");
        // TLS still verifies the application's name.
        let hellos = client_hellos(&mut w);
        assert_eq!(hellos[0].0, "svc.example", "{hops} hops");
    }
}

// RFC 9460 §3 "chain length limits and loop detection heuristics": a loop
// or a ninth hop fails the HTTPS question, with the reason in the trace;
// the A/AAAA answers of the name itself still race.
#[test]
fn https_alias_loops_and_overlong_chains_fail_only_the_https_question() {
    let cases: [(&str, u8, Option<&str>, DnsOutcome); 3] = [
        (
            "a loop back to the first name",
            2,
            Some("svc.example"),
            DnsOutcome::AliasLoop,
        ),
        (
            "a loop back to a hop",
            3,
            Some("a2.example"),
            DnsOutcome::AliasLoop,
        ),
        (
            "a ninth hop",
            MAX_ALIAS_HOPS,
            Some("a9.example"),
            DnsOutcome::AliasChainTooLong,
        ),
    ];
    for (what, hops, tail, outcome) in cases {
        let mut w = alias_world(hops, tail);
        w.tcp("192.0.2.1:443", Tcp::Accept(Duration::from_millis(10)));
        let c = w
            .initiate(ms(0), &pre("svc.example:443").with_security(tls(&["h2"])))
            .unwrap();
        w.run_until(ms(200));
        assert_eq!(
            https_outcomes(&w, c).last(),
            Some(&outcome),
            "{what}: the HTTPS question's reason"
        );
        assert_eq!(
            asked(&w, QueryType::Https).len(),
            usize::from(hops) + 1,
            "{what}: no question beyond the bound"
        );
        assert_eq!(
            opened(&w),
            ["192.0.2.1:443".parse().unwrap()],
            "{what}: the name's own address still races"
        );
    }
    let text = DnsOutcome::AliasChainTooLong.to_string();
    assert!(text.contains("AliasMode") && text.contains('8'), "{text}");
}

// HTTPS records describe the endpoints of "https" origins (RFC 9460 §9,
// §9.5), and taps never changes the security the application chose: a connection
// without TLS never goes to another name or port because of one, and does
// not follow AliasMode. A ServiceMode record for the name itself on the
// application's port changes nothing but may lend its address hints.
#[test]
fn https_records_never_move_a_connection_without_tls() {
    let mut w = alias_world(2, None);
    w.tcp("192.0.2.1:443", Tcp::Accept(Duration::from_millis(10)));
    let c = w.initiate(ms(0), &pre("svc.example:443")).unwrap();
    w.run_until(ms(1_000));
    assert_eq!(asked(&w, QueryType::Https), ["svc.example"]);
    assert_eq!(opened(&w), ["192.0.2.1:443".parse().unwrap()]);
    assert_eq!(
        w.ready(c).map(|r| r.1),
        Some("192.0.2.1:443".parse().unwrap())
    );

    // A ServiceMode record to another target and port: ignored.
    let mut w = World::new(machine(&[], 1));
    v4_only(&mut w, "svc.example", "192.0.2.1");
    let mut r = record(1, Some("far.example"), &["h2"], Some(8443));
    r.ipv4hint = smallvec!["192.0.2.9".parse().unwrap()];
    // RFC 9460 §9.1: port 80's HTTPS name has the `_80._https` prefix.
    w.rule(
        DNS,
        "_80._https.svc.example",
        QueryType::Https,
        1,
        https(vec![r]),
    );
    v4_only(&mut w, "far.example", "192.0.2.9");
    w.tcp("192.0.2.1:80", Tcp::Accept(Duration::from_millis(10)));
    w.tcp("192.0.2.9:8443", Tcp::Accept(Duration::from_millis(1)));
    let c = w.initiate(ms(0), &pre("svc.example:80")).unwrap();
    w.run_until(ms(1_000));
    assert_eq!(asked(&w, QueryType::Https), ["_80._https.svc.example"]);
    assert_eq!(opened(&w), ["192.0.2.1:80".parse().unwrap()]);
    assert!(asked(&w, QueryType::A).iter().all(|n| n == "svc.example"));
    assert_eq!(
        w.ready(c).map(|r| r.1),
        Some("192.0.2.1:80".parse().unwrap())
    );
}

fn dual_stack(w: &mut World, delay_ms: u64) {
    w.rule(DNS, "example.com", QueryType::Https, delay_ms, nodata());
    w.rule(
        DNS,
        "example.com",
        QueryType::Aaaa,
        delay_ms,
        addrs(&["2001:db8::1"], 300),
    );
    w.rule(
        DNS,
        "example.com",
        QueryType::A,
        delay_ms,
        addrs(&["192.0.2.1"], 300),
    );
    w.tcp("[2001:db8::1]:443", Tcp::Accept(Duration::from_millis(10)));
}

fn joined(w: &World, c: taps_core::ConnectionId) -> Vec<QueryType> {
    let info = w.machine.connection_info(c).unwrap();
    info.trace()
        .events
        .iter()
        .filter_map(|e| match e.kind {
            TraceKind::DnsJoined { qtype, .. } => Some(qtype),
            _ => None,
        })
        .collect()
}

// Concurrent connections to one name share one DNS transaction per
// question: the second joins the first's instead of asking again, and is
// answered when it is.
#[test]
fn concurrent_connections_share_one_transaction_per_question() {
    let mut w = World::new(machine(&[], 1));
    dual_stack(&mut w, 20);
    let c1 = w.initiate(ms(0), &pre("example.com:443")).unwrap();
    w.run_until(ms(5));
    let c2 = w.initiate(ms(5), &pre("example.com:443")).unwrap();
    w.run_until(ms(1_000));
    assert_eq!(w.queries.len(), 3, "one query per type: {:?}", w.queries);
    assert_eq!(
        joined(&w, c2),
        [QueryType::Https, QueryType::Aaaa, QueryType::A]
    );
    assert!(joined(&w, c1).is_empty());
    // Both are answered at 20 ms and connect 10 ms later.
    assert_eq!(w.ready(c1).map(|r| r.0), Some(ms(30)));
    assert_eq!(w.ready(c2).map(|r| r.0), Some(ms(30)));
    assert!(w.live_dns().is_empty(), "every transaction released");
}

// Aborting the connection that sent the queries does not take them from
// the one that joined; when every waiter is gone the transaction ends.
#[test]
fn a_shared_transaction_outlives_the_connection_that_started_it() {
    let mut w = World::new(machine(&[], 1));
    dual_stack(&mut w, 20);
    let c1 = w.initiate(ms(0), &pre("example.com:443")).unwrap();
    w.run_until(ms(5));
    let c2 = w.initiate(ms(5), &pre("example.com:443")).unwrap();
    w.run_until(ms(6));
    w.machine.connection(c1).abort(ms(6));
    w.drain();
    assert_eq!(w.live_dns().len(), 3, "the joiner still waits on all three");
    w.run_until(ms(1_000));
    assert_eq!(w.queries.len(), 3);
    assert_eq!(w.ready(c2).map(|r| r.0), Some(ms(30)));

    // Both gone before the answer: nothing is left, and nothing is sent
    // again.
    let mut w = World::new(machine(&[], 1));
    dual_stack(&mut w, 20);
    let c1 = w.initiate(ms(0), &pre("example.com:443")).unwrap();
    let c2 = w.initiate(ms(0), &pre("example.com:443")).unwrap();
    w.run_until(ms(6));
    w.machine.connection(c1).abort(ms(6));
    w.drain();
    assert_eq!(w.live_dns().len(), 3);
    w.machine.connection(c2).abort(ms(6));
    w.drain();
    assert!(w.live_dns().is_empty());
    w.run_until(ms(5_000));
    assert_eq!(w.queries.len(), 3, "no retransmission for nobody");
}

// A connection that starts while another's finished race lets its last
// query linger for the cache (HEv3 §6) joins that query too.
#[test]
fn a_new_connection_joins_a_lingering_query() {
    let mut w = World::new(machine(&[], 1));
    w.rule(DNS, "example.com", QueryType::Https, 5, nodata());
    w.rule(
        DNS,
        "example.com",
        QueryType::A,
        5,
        addrs(&["192.0.2.1"], 300),
    );
    w.rule(
        DNS,
        "example.com",
        QueryType::Aaaa,
        200,
        addrs(&["2001:db8::1"], 300),
    );
    w.tcp("192.0.2.1:443", Tcp::Accept(Duration::from_millis(10)));
    w.tcp("[2001:db8::1]:443", Tcp::Accept(Duration::from_millis(10)));
    let c1 = w.initiate(ms(0), &pre("example.com:443")).unwrap();
    w.run_until(ms(100));
    // HEv3 §4.2: the Resolution Delay (50 ms) after the A answer at 5 ms.
    assert_eq!(w.ready(c1).map(|r| r.0), Some(ms(65)));
    let c2 = w.initiate(ms(100), &pre("example.com:443")).unwrap();
    w.run_until(ms(1_000));
    assert_eq!(
        w.queries
            .iter()
            .filter(|q| q.question.qtype == QueryType::Aaaa)
            .count(),
        1,
        "the lingering AAAA query serves the second connection"
    );
    assert_eq!(joined(&w, c2), [QueryType::Aaaa]);
    assert!(w.ready(c2).is_some());
}

// The waiters per transaction are bounded (MAX_WAITERS_PER_TRANSACTION);
// the next connection starts a transaction of its own, which later ones
// join.
#[test]
fn waiters_per_transaction_are_bounded() {
    use taps_core::dns::MAX_WAITERS_PER_TRANSACTION;
    let mut w = World::new(machine(&[], 1));
    dual_stack(&mut w, 20);
    let n = MAX_WAITERS_PER_TRANSACTION + 2;
    let conns: Vec<_> = (0..n)
        .map(|_| w.initiate(ms(0), &pre("example.com:443")).unwrap())
        .collect();
    w.run_until(ms(1_000));
    for qtype in [QueryType::Https, QueryType::Aaaa, QueryType::A] {
        let sent = w
            .queries
            .iter()
            .filter(|q| q.question.qtype == qtype)
            .count();
        assert_eq!(sent, 2, "{qtype}: one full transaction and one more");
    }
    for c in conns {
        assert_eq!(w.ready(c).map(|r| r.0), Some(ms(30)));
    }
}

// A name may exist only through its HTTPS record (RFC 9460 §2.4.2: AliasMode
// exists for names that cannot have a CNAME): its negative A and AAAA
// answers, even when they come first, do not move the search list on
// while its HTTPS question is out.
#[test]
fn a_search_name_with_only_an_https_record_is_kept() {
    let mut w = World::new(machine(&["corp.example"], 1));
    w.rule(
        DNS,
        "svc.corp.example",
        QueryType::A,
        1,
        Answer::NxDomain { negative_ttl: 60 },
    );
    w.rule(
        DNS,
        "svc.corp.example",
        QueryType::Aaaa,
        1,
        Answer::NxDomain { negative_ttl: 60 },
    );
    w.rule(
        DNS,
        "svc.corp.example",
        QueryType::Https,
        20,
        https(vec![alias("real.example")]),
    );
    w.rule(
        DNS,
        "real.example",
        QueryType::Https,
        5,
        https(vec![record(1, None, &["h2"], None)]),
    );
    v4_only(&mut w, "real.example", "192.0.2.9");
    w.tcp("192.0.2.9:443", Tcp::Blackhole);
    let c = w
        .initiate(ms(0), &pre("svc:443").with_security(tls(&["h2"])))
        .unwrap();
    w.run_until(ms(200));
    assert_eq!(
        asked(&w, QueryType::Https),
        ["svc.corp.example", "real.example"]
    );
    assert_eq!(
        asked(&w, QueryType::A),
        ["svc.corp.example", "real.example"]
    );
    assert_eq!(opened(&w), ["192.0.2.9:443".parse().unwrap()]);
    assert_eq!(
        trace_names(&w, c),
        [
            (
                "svc.corp.example".to_string(),
                NameStep::Search { index: 1, of: 2 }
            ),
            ("real.example".to_string(), NameStep::Alias { hop: 1 }),
        ]
    );
    assert_eq!(
        client_hellos(&mut w)[0].0,
        "svc",
        "TLS names what was typed"
    );
}

// The waterfall's DNS bars run from the first query to the answer that
// settled the question: with a search list, the last name's.
#[test]
fn a_search_waterfall_shows_the_answer_that_settled_it() {
    let mut w = World::new(machine(&["corp.example", "lab.example"], 1));
    v4_only(&mut w, "www.lab.example", "192.0.2.1");
    w.tcp("192.0.2.1:80", Tcp::Accept(Duration::from_millis(10)));
    let c = w.initiate(ms(0), &pre("www:80")).unwrap();
    w.run_until(ms(1_000));
    let info = w.machine.connection_info(c).unwrap();
    let waterfall = info.trace().waterfall("www:80", &|_| None);
    let bar = |qtype: &str| {
        waterfall
            .lines()
            .find(|l| l.starts_with(&format!("  dns {qtype} ")))
            .unwrap_or_else(|| panic!("no {qtype} bar: {waterfall}"))
            .to_string()
    };
    assert!(bar("A").ends_with("1 record(s), ttl 60s"), "{waterfall}");
    assert!(bar("AAAA").ends_with("no data"), "{waterfall}");
    assert!(
        waterfall.contains("asking about www.lab.example (search list, name 2 of 3)"),
        "{waterfall}"
    );
}

// A query lingering for the cache (its race settled, HEv3 §6) whose UDP
// answer comes back truncated is dropped, not asked again over TCP: nobody
// waits for it, and no connection's timer would end it.
#[test]
fn a_lingering_query_is_not_retried_over_tcp() {
    use taps_testkit::world::DnsRule;
    let mut w = World::new(machine(&[], 1));
    w.rule(DNS, "example.com", QueryType::Https, 5, nodata());
    w.rule(
        DNS,
        "example.com",
        QueryType::A,
        5,
        addrs(&["192.0.2.1"], 300),
    );
    w.net.dns.insert(
        (DNS.parse().unwrap(), "example.com".into(), QueryType::Aaaa),
        DnsRule {
            delay: Duration::from_millis(200),
            answer: addrs(&["2001:db8::1"], 300),
            truncate: true,
            silent: false,
            raw: None,
        },
    );
    w.tcp("192.0.2.1:443", Tcp::Accept(Duration::from_millis(10)));
    let c = w.initiate(ms(0), &pre("example.com:443")).unwrap();
    w.run_until(ms(100));
    assert_eq!(w.ready(c).map(|r| r.0), Some(ms(65)));
    assert_eq!(w.live_dns().len(), 1, "the AAAA query lingers");
    w.run_until(ms(5_000));
    assert!(w.live_dns().is_empty(), "released, not moved to TCP");
    assert!(
        w.queries
            .iter()
            .all(|q| q.send.transport == taps_core::dns::DnsTransport::Udp),
        "no TCP query: {:?}",
        w.queries
    );
}
