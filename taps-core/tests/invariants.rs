//! Property tests of the racing invariants over random worlds: random
//! answer timings, answer sets, attempt outcomes, policies and timers.

use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;
use taps_core::{
    Config, Event, Input, Machine, Preconnection, TraceKind, TransportProperties,
    dns::DnsConfig,
    dns::{Answer, QueryType},
    race::{Policy, RaceConfig},
};
use taps_testkit::world::{Tcp, World, addrs, ms};

const DNS: &str = "192.168.1.1:53";
const V6: [&str; 3] = ["2001:db8::1", "2001:db8::2", "2001:db8::3"];
const V4: [&str; 3] = ["192.0.2.1", "192.0.2.2", "192.0.2.3"];

#[derive(Clone, Debug)]
enum Reply {
    Positive(usize, u64),
    NoData(u64),
    NxDomain(u64),
    ServFail(u64),
    Silent,
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        4 => (1usize..=3, 0u64..400).prop_map(|(n, d)| Reply::Positive(n, d)),
        1 => (0u64..400).prop_map(Reply::NoData),
        1 => (0u64..400).prop_map(Reply::NxDomain),
        1 => (0u64..400).prop_map(Reply::ServFail),
        1 => Just(Reply::Silent),
    ]
}

fn tcp() -> impl Strategy<Value = Tcp> {
    prop_oneof![
        3 => (1u64..600).prop_map(|d| Tcp::Accept(Duration::from_millis(d))),
        1 => (1u64..600).prop_map(|d| Tcp::Refuse(Duration::from_millis(d))),
        2 => Just(Tcp::Blackhole),
    ]
}

#[derive(Clone, Debug)]
struct Scenario {
    https: Reply,
    aaaa: Reply,
    a: Reply,
    tcp: Vec<Tcp>,
    policy: Policy,
    attempt_delay_ms: u64,
    fafc: u8,
    conn_timeout_ms: Option<u64>,
    seed: u64,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        reply(),
        reply(),
        reply(),
        proptest::collection::vec(tcp(), 6),
        prop_oneof![
            Just(Policy::Hev3),
            Just(Policy::Rfc6555),
            Just(Policy::Sequential)
        ],
        1u64..3000,
        1u8..=2,
        proptest::option::of(100u64..20_000),
        any::<u64>(),
    )
        .prop_map(
            |(https, aaaa, a, tcp, policy, attempt_delay_ms, fafc, conn_timeout_ms, seed)| {
                Scenario {
                    https,
                    aaaa,
                    a,
                    tcp,
                    policy,
                    attempt_delay_ms,
                    fafc,
                    conn_timeout_ms,
                    seed,
                }
            },
        )
}

fn build(s: &Scenario) -> World {
    let machine = Machine::new(Config {
        seed: s.seed,
        race: RaceConfig {
            connection_attempt_delay: Duration::from_millis(s.attempt_delay_ms),
            first_address_family_count: s.fafc,
            ..RaceConfig::for_policy(s.policy)
        },
        dns: DnsConfig {
            servers: vec![DNS.parse().unwrap()],
            ..DnsConfig::default()
        },
        ..taps_testkit::config(0)
    });
    let mut w = World::new(machine);
    for (qtype, r, pool) in [
        (QueryType::Https, &s.https, &[][..]),
        (QueryType::Aaaa, &s.aaaa, &V6[..]),
        (QueryType::A, &s.a, &V4[..]),
    ] {
        let (delay, answer) = match r {
            Reply::Positive(n, d) if !pool.is_empty() => (*d, addrs(&pool[..*n], 60)),
            Reply::Positive(_, d) | Reply::NoData(d) => (*d, Answer::NoData { negative_ttl: 60 }),
            Reply::NxDomain(d) => (*d, Answer::NxDomain { negative_ttl: 60 }),
            Reply::ServFail(d) => (*d, Answer::ServFail),
            Reply::Silent => {
                w.rule(DNS, "example.com", qtype, 0, Answer::ServFail);
                w.net
                    .dns
                    .get_mut(&(DNS.parse().unwrap(), "example.com".into(), qtype))
                    .unwrap()
                    .silent = true;
                continue;
            }
        };
        w.rule(DNS, "example.com", qtype, delay, answer);
    }
    for (i, behaviour) in s.tcp.iter().enumerate() {
        let addr = if i < 3 {
            format!("[{}]:443", V6[i])
        } else {
            format!("{}:443", V4[i - 3])
        };
        w.tcp(&addr, *behaviour);
    }
    w
}

fn run(s: &Scenario) -> World {
    let mut w = build(s);
    let mut props = TransportProperties::default();
    props.connection.conn_timeout = s.conn_timeout_ms.map(Duration::from_millis);
    let pre = Preconnection::new("example.com:443".parse().unwrap()).with_properties(props);
    w.initiate(ms(0), &pre).unwrap();
    // Six sequential blackholes take 6 × 127 s; give them all time to end.
    w.run_until(ms(1_000_000));
    w
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn race_invariants_hold_in_random_worlds(s in scenario()) {
        let w = run(&s);
        let conn = taps_core::ConnectionId::from_raw(0, 0);
        let trace = w.machine.connection_info(conn).map(|c| c.trace()).expect("connection still held").clone();

        // At most one winner, and never both a winner and an error.
        let ready = w.events.iter().filter(|(_, e)| matches!(e, Event::Ready { .. })).count();
        let failed = w.events.iter().filter(|(_, e)| matches!(e, Event::EstablishmentError { .. })).count();
        prop_assert!(ready + failed <= 1, "ready {ready}, failed {failed}");
        let winners = trace.events.iter().filter(|e| matches!(e.kind, TraceKind::Winner { .. })).count();
        prop_assert!(winners <= 1);

        // Every world here ends: blackholes time out like the kernel.
        prop_assert_eq!(ready + failed, 1, "the race settled");

        // No attempt starts after a win.
        if let Some(pos) = w.net.log.iter().position(|l| l.starts_with("event Ready")) {
            prop_assert!(!w.net.log[pos..].iter().any(|l| l.starts_with("open")), "{:?}", w.net.log);
        }

        // Every started attempt ends as won, failed or cancelled.
        for e in &trace.events {
            if let TraceKind::AttemptStarted { attempt, .. } = e.kind {
                let ended = trace.events.iter().any(|x| matches!(x.kind,
                    TraceKind::AttemptConnected { attempt: a }
                    | TraceKind::AttemptFailed { attempt: a, .. }
                    | TraceKind::AttemptCancelled { attempt: a } if a == attempt));
                prop_assert!(ended, "attempt {} never ended", attempt);
            }
        }
        // ... and the adapter holds no socket but the winner's.
        prop_assert!(w.live_sockets().len() == ready, "{:?}", w.live_sockets());

        // No (path, stack, address) is attempted twice.
        let mut seen = HashSet::new();
        for o in &w.opened {
            prop_assert!(seen.insert((o.remote, o.interface)), "{} attempted twice", o.remote);
        }

        // Idle with no timer once settled.
        prop_assert!(w.machine.is_idle());
        prop_assert_eq!(w.machine.poll_timeout(), None);
        prop_assert!(w.live_dns().is_empty());

        // The same seed and inputs give the same trace.
        let again = run(&s);
        prop_assert_eq!(again.machine.connection_info(conn).map(|c| c.trace()).unwrap(), &trace);
        prop_assert_eq!(again.net.log, w.net.log);
    }

    /// Arbitrary bytes as the answer to an in-flight query never panic, and
    /// the machine keeps its invariants: the query goes on waiting.
    #[test]
    fn arbitrary_bytes_as_dns_answers_never_panic(garbage in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 1..6)) {
        let s = Scenario {
            https: Reply::NoData(50), aaaa: Reply::Positive(1, 50), a: Reply::Positive(1, 50),
            tcp: vec![Tcp::Accept(Duration::from_millis(5)); 6], policy: Policy::Hev3,
            attempt_delay_ms: 250, fafc: 1, conn_timeout_ms: None, seed: 1,
        };
        let mut w = build(&s);
        let pre = Preconnection::new("example.com:443".parse().unwrap());
        let conn = w.initiate(ms(0), &pre).unwrap();
        w.drain();
        let txns: Vec<_> = w.live_dns().iter().map(|(t, s)| (*t, *s)).collect();
        for (i, bytes) in garbage.iter().enumerate() {
            let (txn, server) = txns[i % txns.len()];
            w.machine.handle(ms(1), Input::DnsDatagram { txn, from: server, payload: bytes });
            w.machine.handle(ms(1), Input::DnsStreamData { txn, data: bytes });
            w.drain();
        }
        w.run_until(ms(60_000));
        prop_assert!(w.ready(conn).is_some(), "the real answers still won through");
    }
}
