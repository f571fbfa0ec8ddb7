//! Answers known at one instant are sorted together before the first
//! attempt (RFC 6724 §6 over every address known at that instant), while an
//! answer that really arrives first still starts the race at once (HEv3
//! §4). Each row quotes the rule it checks.

use std::net::SocketAddr;
use std::time::Duration;

use taps_core::dns::{Answer, QueryType, parse_hosts};
use taps_core::{Config, Input, Instant, Interface, InterfaceKind, Machine, Output, Preconnection};
use taps_testkit::dns::build_response;
use taps_testkit::harness::Harness;

/// The first attempt's destination when `hosts` is the hosts file and the
/// client has both an IPv4 and a ULA IPv6 address on one interface.
fn first_attempt(hosts: &str) -> SocketAddr {
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

/// What the resolver says at one instant: every answer in a step reaches
/// the machine before it is drained.
struct Step {
    at_ms: u64,
    answers: &'static [(QueryType, &'static [&'static str])],
}

/// Runs one connect to `dual.test:443` whose DNS answers come as `steps`
/// say (an empty list is "no data"), and returns every attempt started in
/// the first 600 ms as (ms, destination).
fn attempts_for(steps: &[Step]) -> Vec<(u64, SocketAddr)> {
    let mut config = Config::new(7);
    config.dns.servers = vec!["10.77.0.53:53".parse().unwrap()];
    let mut h = Harness::manual(config);
    let eth0 = Interface::new(
        "eth0",
        2,
        InterfaceKind::Wired,
        &["10.77.0.2/24", "fd77::2/64", "2001:db8:77::2/64"],
    )
    .unwrap();
    h.handle(Input::InterfacesChanged(vec![eth0]));
    let now = h.now;
    h.initiate(now, &Preconnection::new("dual.test:443".parse().unwrap()))
        .unwrap();
    let https = h
        .queries
        .iter()
        .find(|q| q.question.qtype == QueryType::Https)
        .cloned()
        .expect("an HTTPS query");
    h.handle(Input::DnsDatagram {
        txn: https.send.txn,
        from: https.send.server,
        payload: &build_response(&https.question, &Answer::NoData { negative_ttl: 60 }, false),
    });
    for step in steps {
        h.advance(Duration::from_millis(step.at_ms) - (h.now - Instant::ZERO));
        for (qtype, addrs) in step.answers {
            let q = h
                .queries
                .iter()
                .find(|q| q.question.qtype == *qtype)
                .cloned()
                .expect("a query of that type");
            let answer = if addrs.is_empty() {
                Answer::NoData { negative_ttl: 60 }
            } else {
                Answer::Addresses {
                    addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
                    ttl: 60,
                }
            };
            h.machine.handle(
                h.now,
                Input::DnsDatagram {
                    txn: q.send.txn,
                    from: q.send.server,
                    payload: &build_response(&q.question, &answer, false),
                },
            );
        }
        h.drain();
    }
    h.run_until(Instant::ZERO + Duration::from_millis(600));
    h.opened
        .iter()
        .map(|o| ((o.at - Instant::ZERO).as_millis() as u64, o.remote))
        .collect()
}

#[test]
fn dns_answers_start_the_race_by_when_they_are_known() {
    use QueryType::{A, Aaaa};
    const ULA: &[&str] = &["fd77::1"];
    const GLOBAL: &[&str] = &["2001:db8:77::1"];
    const V4: &[&str] = &["10.77.0.1"];
    /// (the rule quoted, what the resolver says when, the attempts as (ms, destination))
    type Row = (
        &'static str,
        &'static [Step],
        &'static [(u64, &'static str)],
    );
    let table: &[Row] = &[
        (
            "RFC 6724 §2.1 and §6 rule 6: ULA (precedence 3) below IPv4 (35); answers \
             read before one drain are sorted together, so IPv4 goes first",
            &[Step {
                at_ms: 30,
                answers: &[(Aaaa, ULA), (A, V4)],
            }],
            &[(30, "10.77.0.1:443"), (280, "[fd77::1]:443")],
        ),
        (
            "HEv3 §4: \"as soon as the client receives a positive AAAA response, it \
             SHOULD start\"; an AAAA answer drained on its own starts the race at once, \
             even with a ULA, and the later A answer joins it (HEv3 §5)",
            &[
                Step {
                    at_ms: 30,
                    answers: &[(Aaaa, ULA)],
                },
                Step {
                    at_ms: 40,
                    answers: &[(A, V4)],
                },
            ],
            &[(30, "[fd77::1]:443"), (280, "10.77.0.1:443")],
        ),
        (
            "RFC 6724 §2.1: global IPv6 (precedence 40) above IPv4 (35); HEv3 §4 starts \
             with the preferred family when both are known",
            &[Step {
                at_ms: 30,
                answers: &[(A, V4), (Aaaa, GLOBAL)],
            }],
            &[(30, "[2001:db8:77::1]:443"), (280, "10.77.0.1:443")],
        ),
        (
            "HEv3 §4.1: an A answer first waits up to the Resolution Delay (50 ms) \
             for AAAA; an AAAA answer within it is sorted first",
            &[
                Step {
                    at_ms: 30,
                    answers: &[(A, V4)],
                },
                Step {
                    at_ms: 60,
                    answers: &[(Aaaa, GLOBAL)],
                },
            ],
            &[(60, "[2001:db8:77::1]:443"), (310, "10.77.0.1:443")],
        ),
        (
            "HEv3 §4.1: with no AAAA answer by the end of the Resolution Delay, \
             the race starts with IPv4",
            &[Step {
                at_ms: 30,
                answers: &[(A, V4)],
            }],
            &[(80, "10.77.0.1:443")],
        ),
        (
            "HEv3 §4.1: a negative AAAA answer ends the wait at once",
            &[Step {
                at_ms: 30,
                answers: &[(A, V4), (Aaaa, &[])],
            }],
            &[(30, "10.77.0.1:443")],
        ),
    ];
    for (rule, steps, want) in table {
        let want: Vec<(u64, SocketAddr)> =
            want.iter().map(|(t, a)| (*t, a.parse().unwrap())).collect();
        assert_eq!(attempts_for(steps), want, "{rule}");
    }
}
