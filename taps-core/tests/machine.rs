//! The machine end to end in virtual time: real DNS messages, sockets as
//! actions, every racing rule that crosses module boundaries.

use std::time::Duration;

use taps_core::{
    Config, DropReason, Event, FailureReason, InitiateError, Input, Interface, InterfaceKind,
    Machine, Preconnection, TraceKind, TransportProperties,
    dns::DnsConfig,
    dns::parse_hosts,
    dns::{Answer, QueryType},
    race::RaceFailure,
};
use taps_testkit::world::{Forgery, Tcp, World, addrs, ms};

const DNS1: &str = "192.168.1.1:53";
const DNS2: &str = "192.168.1.2:53";

fn machine(servers: &[&str]) -> Machine {
    Machine::new(Config {
        seed: 7,
        dns: DnsConfig {
            servers: servers.iter().map(|s| s.parse().unwrap()).collect(),
            ..DnsConfig::default()
        },
        ..taps_testkit::config(0)
    })
}

fn dual_stack(world: &mut World, server: &str, delay_ms: u64) {
    world.rule(
        server,
        "example.com",
        QueryType::Https,
        delay_ms,
        Answer::NoData { negative_ttl: 60 },
    );
    world.rule(
        server,
        "example.com",
        QueryType::Aaaa,
        delay_ms,
        addrs(&["2001:db8::1"], 300),
    );
    world.rule(
        server,
        "example.com",
        QueryType::A,
        delay_ms,
        addrs(&["192.0.2.1"], 300),
    );
}

fn pre(text: &str) -> Preconnection {
    Preconnection::new(text.parse().unwrap())
}

#[test]
fn happy_dual_stack_queries_https_aaaa_a_back_to_back_and_wins_over_ipv6() {
    let mut w = World::new(machine(&[DNS1]));
    dual_stack(&mut w, DNS1, 10);
    w.tcp("[2001:db8::1]:443", Tcp::Accept(Duration::from_millis(20)));
    let c = w.initiate(ms(0), &pre("example.com:443")).unwrap();
    w.run_until(ms(10_000));
    // HEv3 §4.1: "The order in which the queries are sent SHOULD be ... SVCB
    // or HTTPS query, AAAA query, A query", all at once.
    let order: Vec<_> = w.queries.iter().map(|q| (q.at, q.question.qtype)).collect();
    assert_eq!(
        order,
        [
            (ms(0), QueryType::Https),
            (ms(0), QueryType::Aaaa),
            (ms(0), QueryType::A)
        ]
    );
    assert_eq!(
        w.ready(c),
        Some((ms(30), "[2001:db8::1]:443".parse().unwrap(), None))
    );
    assert!(w.machine.is_idle());
    assert_eq!(w.machine.poll_timeout(), None, "no timer once settled");
    assert!(w.live_dns().is_empty(), "every DNS transaction released");
}

#[test]
fn ipv6_blackhole_falls_back_after_one_attempt_delay_and_history_skips_it_next_time() {
    let mut w = World::new(machine(&[DNS1]));
    dual_stack(&mut w, DNS1, 10);
    w.tcp("[2001:db8::1]:443", Tcp::Blackhole);
    w.tcp("192.0.2.1:443", Tcp::Accept(Duration::from_millis(20)));
    let c = w.initiate(ms(0), &pre("example.com:443")).unwrap();
    w.run_until(ms(10_000));
    let (at, remote, _) = w.ready(c).unwrap();
    assert_eq!((at, remote), (ms(280), "192.0.2.1:443".parse().unwrap()));
    assert_eq!(
        w.closed_sockets().len(),
        1,
        "the IPv6 attempt was cancelled"
    );
    w.machine.connection(c).close(ms(1000));
    w.drain();

    // Second connection: answered from the cache, and history demotes the
    // IPv6 address that hung: straight to IPv4.
    let queries_before = w.queries.len();
    w.now = ms(2000);
    let c2 = w.initiate(ms(2000), &pre("example.com:443")).unwrap();
    w.run_until(ms(10_000));
    assert_eq!(w.queries.len(), queries_before, "cache answered everything");
    assert_eq!(
        w.ready(c2).map(|r| (r.0, r.1)),
        Some((ms(2020), "192.0.2.1:443".parse().unwrap()))
    );
    assert!(w.machine.stats().cache_hits >= 3);
}

#[test]
fn forged_answers_are_dropped_counted_and_do_not_end_the_query() {
    let mut w = World::new(machine(&[DNS1]));
    dual_stack(&mut w, DNS1, 10);
    w.tcp("[2001:db8::1]:443", Tcp::Accept(Duration::from_millis(5)));
    w.net.forgeries = vec![
        Forgery::WrongSource("203.0.113.66:53".parse().unwrap()),
        Forgery::WrongId,
        Forgery::Garbage,
    ];
    let c = w.initiate(ms(0), &pre("example.com:443")).unwrap();
    w.run_until(ms(10_000));
    assert_eq!(
        w.ready(c).map(|r| r.1),
        Some("[2001:db8::1]:443".parse().unwrap())
    );
    assert_eq!(
        w.machine.stats().dns_dropped,
        9,
        "three forgeries for each of three queries"
    );
    let trace = w.machine.connection_info(c).map(|c| c.trace()).unwrap();
    let reasons: Vec<DropReason> = trace
        .events
        .iter()
        .filter_map(|e| match e.kind {
            TraceKind::DnsDropped { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(reasons.contains(&DropReason::WrongSource));
    assert!(reasons.contains(&DropReason::WrongId));
    assert!(reasons.contains(&DropReason::Malformed));
}

#[test]
fn truncated_answer_is_retried_over_tcp() {
    let mut w = World::new(machine(&[DNS1]));
    dual_stack(&mut w, DNS1, 10);
    w.net
        .dns
        .get_mut(&(DNS1.parse().unwrap(), "example.com".into(), QueryType::Aaaa))
        .unwrap()
        .truncate = true;
    w.tcp("[2001:db8::1]:443", Tcp::Accept(Duration::from_millis(5)));
    let c = w.initiate(ms(0), &pre("example.com:443")).unwrap();
    w.run_until(ms(10_000));
    let tcp: Vec<_> = w
        .queries
        .iter()
        .filter(|q| q.send.transport == taps_core::dns::DnsTransport::Tcp)
        .collect();
    assert_eq!(tcp.len(), 1);
    assert_eq!(tcp[0].question.qtype, QueryType::Aaaa);
    assert_eq!(
        w.ready(c).map(|r| r.1),
        Some("[2001:db8::1]:443".parse().unwrap())
    );
}

#[test]
fn silent_server_retransmits_then_moves_to_the_next_server() {
    let mut w = World::new(machine(&[DNS1, DNS2]));
    w.net.dead_servers.push(DNS1.parse().unwrap());
    dual_stack(&mut w, DNS2, 10);
    w.tcp("[2001:db8::1]:443", Tcp::Accept(Duration::from_millis(5)));
    let c = w.initiate(ms(0), &pre("example.com:443")).unwrap();
    w.run_until(ms(10_000));
    // DnsConfig default: 1 s per try, 2 tries per server.
    let aaaa: Vec<_> = w
        .queries
        .iter()
        .filter(|q| q.question.qtype == QueryType::Aaaa)
        .map(|q| (q.at, q.send.server))
        .collect();
    assert_eq!(
        aaaa,
        [
            (ms(0), DNS1.parse().unwrap()),
            (ms(1000), DNS1.parse().unwrap()),
            (ms(2000), DNS2.parse().unwrap())
        ]
    );
    assert_eq!(w.ready(c).map(|r| r.0), Some(ms(2015)));
}

#[test]
fn servfail_moves_on_and_nxdomain_fails_with_the_dns_reasons() {
    let mut w = World::new(machine(&[DNS1, DNS2]));
    w.rule(DNS1, "example.com", QueryType::Aaaa, 5, Answer::ServFail);
    w.rule(
        DNS2,
        "example.com",
        QueryType::Aaaa,
        5,
        addrs(&["2001:db8::1"], 60),
    );
    w.rule(
        DNS1,
        "example.com",
        QueryType::A,
        5,
        Answer::NoData { negative_ttl: 60 },
    );
    w.rule(
        DNS1,
        "example.com",
        QueryType::Https,
        5,
        Answer::NoData { negative_ttl: 60 },
    );
    w.tcp("[2001:db8::1]:443", Tcp::Accept(Duration::from_millis(5)));
    let c = w.initiate(ms(0), &pre("example.com:443")).unwrap();
    w.run_until(ms(10_000));
    assert_eq!(w.ready(c).map(|r| r.0), Some(ms(15)));

    // No rules for this name: NXDOMAIN everywhere.
    let c2 = w.initiate(w.now, &pre("missing.example:443")).unwrap();
    w.run_until(ms(20_000));
    let err = w.error(c2).expect("an EstablishmentError");
    assert_eq!(err.reason, RaceFailure::NoAddresses);
    assert!(err.to_string().contains("NXDOMAIN"), "{err}");
}

#[test]
fn ipv4_only_host_with_a_refused_first_address() {
    // (CNAME chains are followed by `dns::wire`, whose tests cover them hop
    // by hop.)
    let mut w = World::new(machine(&[DNS1]));
    w.rule(
        DNS1,
        "v4.example",
        QueryType::Https,
        1,
        Answer::NoData { negative_ttl: 0 },
    );
    w.rule(
        DNS1,
        "v4.example",
        QueryType::Aaaa,
        1,
        Answer::NoData { negative_ttl: 0 },
    );
    w.rule(
        DNS1,
        "v4.example",
        QueryType::A,
        1,
        addrs(&["192.0.2.1", "192.0.2.2"], 0),
    );
    w.tcp("192.0.2.1:443", Tcp::Refuse(Duration::from_millis(3)));
    w.tcp("192.0.2.2:443", Tcp::Accept(Duration::from_millis(3)));
    let c = w.initiate(ms(0), &pre("v4.example:443")).unwrap();
    w.run_until(ms(10_000));
    // The refusal at 4 ms starts the next address at once (HEv3 min 10 ms
    // after the previous start applies: 1 + 10 = 11).
    assert_eq!(
        w.ready(c).map(|r| (r.0, r.1)),
        Some((ms(14), "192.0.2.2:443".parse().unwrap()))
    );
}

#[test]
fn hosts_file_localhost_and_literals_send_no_query() {
    let mut m = machine(&[DNS1]);
    let mut config = m.config().clone();
    config.hosts = parse_hosts("192.0.2.9 printer.lan\n");
    m = Machine::new(config);
    let mut w = World::new(m);
    w.tcp("192.0.2.9:631", Tcp::Accept(Duration::from_millis(1)));
    w.tcp("[::1]:8080", Tcp::Accept(Duration::from_millis(1)));
    w.tcp("198.51.100.7:80", Tcp::Accept(Duration::from_millis(1)));
    let a = w.initiate(ms(0), &pre("printer.lan:631")).unwrap();
    let b = w.initiate(ms(0), &pre("localhost:8080")).unwrap();
    let c = w.initiate(ms(0), &pre("198.51.100.7:80")).unwrap();
    w.run_until(ms(1000));
    assert!(w.queries.is_empty());
    assert!(w.ready(a).is_some() && w.ready(b).is_some() && w.ready(c).is_some());
    assert_eq!(
        w.ready(b).unwrap().1,
        "[::1]:8080".parse().unwrap(),
        "RFC 6761 §6.3: ::1 first"
    );
}

#[test]
fn conn_timeout_lists_every_attempt_with_its_reason() {
    let mut w = World::new(machine(&[DNS1]));
    dual_stack(&mut w, DNS1, 10);
    w.tcp("192.0.2.1:443", Tcp::Refuse(Duration::from_millis(30)));
    let mut props = TransportProperties::default();
    props.connection.conn_timeout = Some(Duration::from_secs(2));
    let c = w
        .initiate(ms(0), &pre("example.com:443").with_properties(props))
        .unwrap();
    w.run_until(ms(10_000));
    let err = w.error(c).expect("EstablishmentError");
    assert_eq!(err.reason, RaceFailure::Timeout);
    assert_eq!(err.attempts.len(), 2);
    let v6 = err.attempts.iter().find(|a| a.remote.is_ipv6()).unwrap();
    let v4 = err.attempts.iter().find(|a| a.remote.is_ipv4()).unwrap();
    assert_eq!(v6.failure, Some(FailureReason::ConnTimeout));
    assert_eq!(v4.failure, Some(FailureReason::Refused));
    let text = err.to_string();
    assert!(
        text.contains("connection refused") && text.contains("connTimeout"),
        "{text}"
    );
    assert!(w.live_sockets().is_empty(), "every socket closed");
}

fn last_socket(w: &World) -> taps_core::SocketId {
    w.live_sockets()
        .into_iter()
        .max_by_key(|s| s.to_raw())
        .expect("a live socket")
}

fn iface(name: &str, index: u32, kind: InterfaceKind, addrs: &[&str]) -> Interface {
    Interface::new(name, index, kind, addrs).unwrap()
}

#[test]
fn interfaces_race_as_paths_and_prohibitions_hold() {
    let mut w = World::new(machine(&[DNS1]));
    w.machine.handle(
        ms(0),
        Input::InterfacesChanged(vec![
            iface("wlan0", 2, InterfaceKind::Wifi, &["192.168.1.10/24"]),
            iface("rmnet0", 3, InterfaceKind::Cellular, &["100.64.0.7/10"]),
        ]),
    );
    w.rule(
        DNS1,
        "v4.example",
        QueryType::Https,
        1,
        Answer::NoData { negative_ttl: 0 },
    );
    w.rule(
        DNS1,
        "v4.example",
        QueryType::A,
        1,
        addrs(&["192.0.2.1"], 0),
    );
    // The world cannot tell paths apart: the wlan0 attempt is swallowed by
    // blackholing the address, and the cellular attempt connects once the
    // path delay starts it — both go to the same address.
    w.tcp("192.0.2.1:443", Tcp::Blackhole);
    let c = w.initiate(ms(0), &pre("v4.example:443")).unwrap();
    w.run_until(ms(1500));
    let opened: Vec<_> = w.opened.iter().map(|o| (o.at, o.interface)).collect();
    assert_eq!(
        opened,
        [(ms(1), Some(2)), (ms(1001), Some(3))],
        "secondary path after the 1 s path delay"
    );
    // Before establishment nothing reads back as "in effect".
    assert_eq!(
        w.machine.connection_info(c).and_then(|c| c.properties()),
        None
    );
    let cellular = last_socket(&w);
    w.inject_at(ms(1200), Input::SocketConnected { socket: cellular });
    w.run_until(ms(1300));
    // RFC 9622 §8.1: once established, properties read back as in effect.
    let effective = w
        .machine
        .connection_info(c)
        .and_then(|c| c.properties())
        .expect("established");
    assert_eq!(effective.interface.as_deref(), Some("rmnet0"));
    assert_eq!(effective.interface_kind, Some(InterfaceKind::Cellular));
    assert!(effective.expensive && effective.reliability && effective.preserve_order);
    assert!(!effective.preserve_msg_boundaries, "TCP without a framer");
    w.machine.connection(c).close(w.now);
    w.drain();

    // Prohibit cellular: only wlan0 is ever used.
    w.opened.clear();
    let props = TransportProperties::default().prohibit_interface_kind(InterfaceKind::Cellular);
    let c = w
        .initiate(w.now, &pre("v4.example:443").with_properties(props))
        .unwrap();
    w.run_until(ms(5000));
    assert!(w.opened.iter().all(|o| o.interface == Some(2)));
    w.machine.connection(c).close(w.now);
    w.drain();

    // Require a kind nobody has: fails at once, naming the requirement.
    let props = TransportProperties::default().require_interface_kind(InterfaceKind::Wired);
    let err = w
        .initiate(w.now, &pre("v4.example:443").with_properties(props))
        .unwrap_err();
    assert!(matches!(err, InitiateError::Path(_)));
    assert!(err.to_string().contains("wired"), "{err}");
}

#[test]
fn stale_and_unknown_ids_are_ignored_and_counted() {
    use taps_core::Input;
    use taps_core::{DnsTxnId, SocketId};
    let mut w = World::new(machine(&[DNS1]));
    dual_stack(&mut w, DNS1, 10);
    w.tcp("[2001:db8::1]:443", Tcp::Accept(Duration::from_millis(5)));
    let c = w.initiate(ms(0), &pre("example.com:443")).unwrap();
    w.run_until(ms(1000));
    assert!(w.ready(c).is_some());
    let before = w.machine.stats().stale_inputs;
    w.machine.handle(
        w.now,
        Input::SocketConnected {
            socket: SocketId::from_raw(999, 0),
        },
    );
    w.machine.handle(
        w.now,
        Input::DnsDatagram {
            txn: DnsTxnId::from_raw(0, 0),
            from: DNS1.parse().unwrap(),
            payload: b"x",
        },
    );
    // An established connection closes gracefully: FIN, then `Closed` when
    // the peer's FIN comes or `close_timeout` (2 s) passes — here nobody
    // answers. After that its id is stale.
    w.machine.connection(c).close(w.now);
    w.run_until(w.now + Duration::from_secs(3));
    w.machine.connection(c).close(w.now);
    assert_eq!(w.machine.stats().stale_inputs, before + 3);
    w.drain();
    assert!(matches!(w.events.last(), Some((_, Event::Closed { .. }))));
}

#[test]
fn svcb_target_names_are_resolved_and_replace_their_hints() {
    // HEv3 §4.2.1: "clients are still required to issue A and AAAA queries
    // for those TargetNames"; "they replace the hints".
    use smallvec::smallvec;
    use taps_core::HostName;
    use taps_core::dns::HttpsRecord;
    let mut w = World::new(machine(&[DNS1]));
    let record = HttpsRecord {
        priority: 1,
        target: Some(HostName::new("svc.example.net").unwrap()),
        alpn: vec!["h2".into()],
        no_default_alpn: false,
        port: Some(8443),
        ipv4hint: smallvec!["192.0.2.77".parse().unwrap()],
        ipv6hint: smallvec![],
        ech: false,
    };
    w.rule(
        DNS1,
        "example.com",
        QueryType::Https,
        5,
        Answer::Https {
            records: smallvec![record],
            ttl: 60,
        },
    );
    w.rule(
        DNS1,
        "example.com",
        QueryType::Aaaa,
        5,
        Answer::NoData { negative_ttl: 60 },
    );
    w.rule(
        DNS1,
        "example.com",
        QueryType::A,
        5,
        Answer::NoData { negative_ttl: 60 },
    );
    w.rule(
        DNS1,
        "svc.example.net",
        QueryType::Aaaa,
        100,
        Answer::NoData { negative_ttl: 60 },
    );
    w.rule(
        DNS1,
        "svc.example.net",
        QueryType::A,
        100,
        addrs(&["192.0.2.88"], 60),
    );
    w.tcp("192.0.2.77:8443", Tcp::Blackhole);
    w.tcp("192.0.2.88:8443", Tcp::Accept(Duration::from_millis(10)));
    // A record that moves the connection to another name and port is
    // followed only by a TLS connection (RFC 9460 §9.5; the plain case is
    // `https_records_never_move_a_connection_without_tls`). This world
    // carries no payload, so the attempt's TCP coming up is its success.
    let tls =
        taps_core::SecurityParameters::with_roots(vec![taps_testkit::pki::TestCa::new().root()])
            .alpn(["h2"]);
    let c = w
        .initiate(ms(0), &pre("example.com:443").with_security(tls))
        .unwrap();
    w.run_until(ms(1_000));
    let asked: Vec<_> = w.queries.iter().map(|q| (q.at, q.question.qtype)).collect();
    assert_eq!(
        asked,
        [
            (ms(0), QueryType::Https),
            (ms(0), QueryType::Aaaa),
            (ms(0), QueryType::A),
            (ms(5), QueryType::Aaaa),
            (ms(5), QueryType::A)
        ],
        "the target's AAAA and A follow the HTTPS answer"
    );
    // The hint starts at once (5 ms) and, already running, is not cancelled
    // when the answer contradicts it (HEv3 §7); the target's real address
    // joins the queue at 105 ms and starts when the Connection Attempt Delay
    // runs out (5 + 250 ms), the timer not being rescheduled by new answers.
    let opened: Vec<_> = w.opened.iter().map(|o| (o.at, o.remote)).collect();
    assert_eq!(
        opened,
        [
            (ms(5), "192.0.2.77:8443".parse().unwrap()),
            (ms(255), "192.0.2.88:8443".parse().unwrap())
        ]
    );
    let info = w.machine.connection_info(c).unwrap();
    let up: Vec<_> = info
        .trace()
        .events
        .iter()
        .filter(|e| matches!(e.kind, TraceKind::AttemptTransportUp { .. }))
        .map(|e| (e.at, e.kind))
        .collect();
    assert_eq!(
        up,
        [(ms(265), TraceKind::AttemptTransportUp { attempt: 2 })],
        "the target's own address connects"
    );
}

#[test]
fn lingering_dns_is_released_when_a_failed_connection_is_freed() {
    // Found by fuzzing: a query still lingering after the race settled must
    // not outlive its connection.
    let mut w = World::new(machine(&[DNS1]));
    w.rule(
        DNS1,
        "example.com",
        QueryType::Https,
        0,
        Answer::NoData { negative_ttl: 0 },
    );
    w.rule(
        DNS1,
        "example.com",
        QueryType::A,
        1,
        addrs(&["192.0.2.1"], 0),
    );
    w.rule(
        DNS1,
        "example.com",
        QueryType::Aaaa,
        0,
        Answer::NoData { negative_ttl: 0 },
    );
    w.net
        .dns
        .get_mut(&(DNS1.parse().unwrap(), "example.com".into(), QueryType::Aaaa))
        .unwrap()
        .silent = true;
    w.tcp("192.0.2.1:443", Tcp::Blackhole);
    let mut props = TransportProperties::default();
    props.connection.conn_timeout = Some(Duration::from_millis(200));
    let c = w
        .initiate(ms(0), &pre("example.com:443").with_properties(props))
        .unwrap();
    // connTimeout ends the race at 200 ms while AAAA is unanswered: the query
    // lingers (HEv3 §6), then the application frees the connection.
    w.run_until(ms(250));
    assert!(w.error(c).is_some());
    assert!(!w.live_dns().is_empty(), "the AAAA query still lingers");
    w.machine.connection(c).close(w.now);
    w.run_until(ms(60_000));
    assert!(
        w.live_dns().is_empty(),
        "every DNS transaction released: {:?}",
        w.live_dns()
    );
    assert_eq!(w.machine.poll_timeout(), None);
    assert!(w.machine.is_idle());
}

#[test]
fn receive_errors_can_be_named_and_matched() {
    // `Machine::receive` returns a `ReceiveError`; applications and adapters
    // must be able to name it to match on it.
    use taps_core::ReceiveError;
    let mut m = Machine::new(taps_testkit::config(0));
    let now = taps_core::Instant::from_nanos(0);
    let c = m
        .initiate(now, &Preconnection::new("192.0.2.1:80".parse().unwrap()))
        .unwrap();
    let limit = m.config().io.max_pending_receives;
    for _ in 0..limit {
        m.connection(c).receive(now, 1, 100).unwrap();
    }
    assert_eq!(
        m.connection(c).receive(now, 1, 100),
        Err(ReceiveError::TooManyPending)
    );
    m.connection(c).abort(now);
    assert_eq!(
        m.connection(c).receive(now, 1, 100),
        Err(ReceiveError::UnknownConnection)
    );
}

/// RFC 9622 §8.3.1/§8.3.2: an established connection hears of changes to
/// its own path only: `PathChange` when its interface's MTU or addresses
/// change or it comes back, `SoftError(InterfaceDown)` then `PathChange`
/// when it goes down; the connection itself stays established.
#[test]
fn path_changes_and_soft_errors_reach_only_the_connections_on_that_interface() {
    let mut w = World::new(machine(&[DNS1]));
    let wlan = |mtu: u32, up: bool, addrs: &[&str]| {
        let mut i = iface("wlan0", 2, InterfaceKind::Wifi, addrs);
        i.mtu = mtu;
        i.up = up;
        i
    };
    let eth = iface("eth0", 4, InterfaceKind::Wired, &["10.0.0.2/24"]);
    w.machine.handle(
        ms(0),
        Input::InterfacesChanged(vec![wlan(1500, true, &["192.168.1.10/24"])]),
    );
    w.tcp("192.0.2.1:443", Tcp::Accept(Duration::from_millis(5)));
    let c = w.initiate(ms(0), &pre("192.0.2.1:443")).unwrap();
    w.run_until(ms(50));
    assert_eq!(w.ready(c).map(|r| r.2), Some(Some(2)), "won on wlan0");
    let path_events = |w: &World, from: usize| -> Vec<Event> {
        w.events[from..]
            .iter()
            .map(|(_, e)| e.clone())
            .filter(|e| matches!(e, Event::PathChange { .. } | Event::SoftError { .. }))
            .collect()
    };
    let change = Event::PathChange {
        conn: c,
        interface: 2,
    };
    let cases: Vec<(&str, Vec<Interface>, Vec<Event>)> = vec![
        (
            "another interface appears: not this path",
            vec![wlan(1500, true, &["192.168.1.10/24"]), eth.clone()],
            vec![],
        ),
        (
            "MTU change",
            vec![wlan(1280, true, &["192.168.1.10/24"]), eth.clone()],
            vec![change.clone()],
        ),
        (
            "address change",
            vec![wlan(1280, true, &["192.168.7.10/24"]), eth.clone()],
            vec![change.clone()],
        ),
        (
            "down",
            vec![wlan(1280, false, &["192.168.7.10/24"]), eth.clone()],
            vec![
                Event::SoftError {
                    conn: c,
                    reason: FailureReason::InterfaceDown,
                },
                change.clone(),
            ],
        ),
        (
            "back up",
            vec![wlan(1280, true, &["192.168.7.10/24"]), eth.clone()],
            vec![change.clone()],
        ),
        (
            "vanished",
            vec![eth.clone()],
            vec![
                Event::SoftError {
                    conn: c,
                    reason: FailureReason::InterfaceDown,
                },
                change.clone(),
            ],
        ),
    ];
    for (what, list, expected) in cases {
        let from = w.events.len();
        let now = w.now;
        w.machine.handle(now, Input::InterfacesChanged(list));
        w.drain();
        assert_eq!(path_events(&w, from), expected, "{what}");
        assert_eq!(
            w.machine.connection_info(c).map(|c| c.state()),
            Some(taps_core::ConnectionState::Established),
            "{what}: the connection stays"
        );
    }
    // Closed: nothing more, whatever happens to the path.
    w.machine.connection(c).close(w.now);
    w.machine.connection(c).abort(w.now);
    w.drain();
    let from = w.events.len();
    let now = w.now;
    w.machine.handle(
        now,
        Input::InterfacesChanged(vec![wlan(1500, true, &["192.168.1.10/24"])]),
    );
    w.drain();
    assert_eq!(path_events(&w, from), vec![]);
}
