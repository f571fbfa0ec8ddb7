//! Every documented limit (README "Limits"), reached. Each test
//! drives one bound to its edge and checks that crossing it gives a clear
//! error or bounded behaviour, and that nothing grows past it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message as DnsMessage, OpCode, Query};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use taps_core::{
    AcceptError, Config, ConnectionState, Event, FailureReason, FramingFailure, HostName,
    InitiateError, Input, Instant, IoLimits, ListenerConfig, Machine, Message, Output,
    Preconnection, SecurityParameters, SendError, SocketId, StreamError,
    dns::DnsConfig,
    dns::parse_hosts,
    dns::{
        Answer, DnsWireError, HttpsRecord, MAX_ADDRESSES_PER_ANSWER, MAX_CNAME_DEPTH,
        MAX_HTTPS_RECORDS_PER_ANSWER, QueryType, encode_query, parse_response,
    },
    framer::FramerFactory,
    race::{RaceConfig, RacingMode},
};
use taps_testkit::dns::{build_response, parse_query};
use taps_testkit::pki::TestCa;
use taps_testkit::world::{Tcp, World, ms};

const NAME: &str = "www.example.com";
const SERVER: &str = "192.0.2.10:443";
const PEER: &str = "198.51.100.7:40000";
const DNS: &str = "192.0.2.53:53";

fn name() -> HostName {
    HostName::new(NAME).unwrap()
}

/// A hickory-written response for `NAME`/`qtype` with these answers.
fn response(qtype: QueryType, answers: Vec<Record>) -> Vec<u8> {
    let mut m = DnsMessage::response(7, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii(format!("{NAME}.")).unwrap(),
        RecordType::from(qtype.code()),
    ));
    for a in answers {
        m.add_answer(a);
    }
    m.to_vec().unwrap()
}

fn a_record(owner: &str, i: u32) -> Record {
    Record::from_rdata(
        Name::from_ascii(owner).unwrap(),
        60,
        RData::A(A(Ipv4Addr::from(0xc000_0200 + i))),
    )
}

fn cname(from: &str, to: &str) -> Record {
    Record::from_rdata(
        Name::from_ascii(from).unwrap(),
        60,
        RData::CNAME(CNAME(Name::from_ascii(to).unwrap())),
    )
}

/// Drains the machine, returning its outputs.
fn outputs(m: &mut Machine) -> Vec<Output> {
    std::iter::from_fn(|| m.poll()).collect()
}

/// A machine with a plain listener and one accepted, established
/// connection; returns (machine, connection, socket).
fn accepted(
    config: Config,
    framer: Option<FramerFactory>,
) -> (Machine, taps_core::ConnectionId, SocketId) {
    let mut m = Machine::new(config);
    let mut lc = ListenerConfig::on(vec![SERVER.parse().unwrap()]);
    if let Some(f) = framer {
        lc = lc.with_framer(f);
    }
    let l = m.listen(lc).unwrap();
    let socket = m
        .listener(l)
        .accept(Instant::ZERO, PEER.parse().unwrap())
        .unwrap();
    let conn = outputs(&mut m)
        .into_iter()
        .find_map(|o| match o {
            Output::Event(Event::ConnectionReceived { conn, .. }) => Some(conn),
            _ => None,
        })
        .unwrap();
    (m, conn, socket)
}

// --- DNS answers used per name ----------------------------------------------

/// `MAX_ADDRESSES_PER_ANSWER`: a 40-address answer yields the first 32; the
/// hosts file keeps 32 per name and says what it skipped.
#[test]
fn addresses_per_answer() {
    let records = (0..40).map(|i| a_record(&format!("{NAME}."), i)).collect();
    let r = parse_response(&response(QueryType::A, records), 7, &name(), QueryType::A).unwrap();
    let Answer::Addresses { addrs, .. } = r.answer else {
        panic!("{:?}", r.answer)
    };
    assert_eq!(addrs.len(), MAX_ADDRESSES_PER_ANSWER);
    assert_eq!(addrs[31], IpAddr::V4(Ipv4Addr::from(0xc000_0200 + 31)));

    let text: String = (0..40)
        .map(|i| format!("10.0.0.{i} many.example\n"))
        .collect();
    let hosts = parse_hosts(&text);
    assert_eq!(
        hosts.lookup(&HostName::new("many.example").unwrap()).len(),
        MAX_ADDRESSES_PER_ANSWER
    );
    assert!(
        hosts
            .warnings
            .iter()
            .any(|w| w.contains("too many addresses"))
    );
}

/// `MAX_HTTPS_RECORDS_PER_ANSWER` and the per-record hint bound.
#[test]
fn https_records_and_hints_per_answer() {
    let record = |priority| HttpsRecord {
        priority,
        target: None,
        alpn: vec!["h2".into()],
        no_default_alpn: false,
        port: None,
        ipv4hint: (0..40).map(|i| Ipv4Addr::from(0xc000_0200 + i)).collect(),
        ipv6hint: (0..40u128)
            .map(|i| Ipv6Addr::from(0x2001_0db8_u128 << 96 | i))
            .collect(),
        ech: false,
    };
    let mut q = Vec::new();
    encode_query(7, &name(), QueryType::Https, &mut q);
    let question = parse_query(&q).unwrap();
    let answer = Answer::Https {
        records: (1..=20).map(record).collect(),
        ttl: 60,
    };
    let bytes = build_response(&question, &answer, false);
    let r = parse_response(&bytes, 7, &name(), QueryType::Https).unwrap();
    let Answer::Https { records, .. } = r.answer else {
        panic!("{:?}", r.answer)
    };
    assert_eq!(records.len(), MAX_HTTPS_RECORDS_PER_ANSWER);
    for r in &records {
        assert_eq!(r.ipv4hint.len(), MAX_ADDRESSES_PER_ANSWER);
        assert_eq!(r.ipv6hint.len(), MAX_ADDRESSES_PER_ANSWER);
    }
}

// --- CNAME depth --------------------------------------------------------------

fn chain(hops: usize) -> Vec<Record> {
    let mut from = format!("{NAME}.");
    let mut records = Vec::new();
    for i in 0..hops {
        let to = format!("hop{i}.example.net.");
        records.push(cname(&from, &to));
        from = to;
    }
    records.push(a_record(&from, 9));
    records
}

/// RFC 1034 §3.6.2 chains are followed up to `MAX_CNAME_DEPTH` hops; one
/// more is a clear error, and so is a loop.
#[test]
fn cname_depth() {
    let ok = parse_response(
        &response(QueryType::A, chain(MAX_CNAME_DEPTH)),
        7,
        &name(),
        QueryType::A,
    );
    assert!(matches!(ok, Ok(r) if matches!(r.answer, Answer::Addresses { .. })));

    let deep = parse_response(
        &response(QueryType::A, chain(MAX_CNAME_DEPTH + 1)),
        7,
        &name(),
        QueryType::A,
    );
    assert_eq!(deep, Err(DnsWireError::CnameChainTooDeep));
    assert_eq!(
        DnsWireError::CnameChainTooDeep.to_string(),
        format!("CNAME chain longer than {MAX_CNAME_DEPTH}")
    );

    let looped = vec![
        cname(&format!("{NAME}."), "a.example.net."),
        cname("a.example.net.", &format!("{NAME}.")),
    ];
    assert_eq!(
        parse_response(&response(QueryType::A, looped), 7, &name(), QueryType::A),
        Err(DnsWireError::CnameLoop)
    );
}

/// The machine's side of the same limit: a too-deep chain (or a loop) in
/// the server's own answer settles the question with that reason, at
/// once, and the establishment error says so (it is not dropped as if
/// forged, which would leave the question to time out).
#[test]
fn cname_depth_fails_the_question_with_its_reason() {
    fn deep(q: &taps_testkit::dns::Question) -> Vec<u8> {
        with_id(response(QueryType::A, chain(MAX_CNAME_DEPTH + 1)), q.id)
    }
    fn looped(q: &taps_testkit::dns::Question) -> Vec<u8> {
        let records = vec![
            cname(&format!("{NAME}."), "a.example.net."),
            cname("a.example.net.", &format!("{NAME}.")),
        ];
        with_id(response(QueryType::A, records), q.id)
    }
    for (make, said) in [
        (
            deep as fn(&_) -> _,
            format!("CNAME chain longer than {MAX_CNAME_DEPTH} links"),
        ),
        (looped, "CNAME chain loops".to_string()),
    ] {
        let mut w = World::new(Machine::new(Config {
            dns: DnsConfig {
                servers: vec![DNS.parse().unwrap()],
                ..DnsConfig::default()
            },
            ..taps_testkit::config(0)
        }));
        w.rule(
            DNS,
            NAME,
            QueryType::Https,
            0,
            Answer::NoData { negative_ttl: 0 },
        );
        w.rule(
            DNS,
            NAME,
            QueryType::Aaaa,
            0,
            Answer::NoData { negative_ttl: 0 },
        );
        w.raw_rule(DNS, NAME, QueryType::A, make);
        let c = w
            .initiate(
                ms(0),
                &Preconnection::new(format!("{NAME}:443").parse().unwrap()),
            )
            .unwrap();
        w.run_until(ms(5_000));
        let (at, error) = w
            .events
            .iter()
            .find_map(|(t, e)| match e {
                Event::EstablishmentError { conn, error } if *conn == c => Some((*t, error)),
                _ => None,
            })
            .expect("the establishment fails");
        assert!(at < ms(100), "at once, not after DNS timeouts: {at:?}");
        assert!(error.to_string().contains(&said), "{error}");
    }
}

/// `bytes` with its message id set to `id`.
fn with_id(mut bytes: Vec<u8>, id: u16) -> Vec<u8> {
    bytes[..2].copy_from_slice(&id.to_be_bytes());
    bytes
}

// --- Candidates per connection (the whole tree) ------------------------------

/// `RaceConfig::max_candidates`: a name with 32 addresses (the hosts file
/// keeps `MAX_ADDRESSES_PER_ANSWER` per name) on three paths would make 96
/// leaves; the tree keeps the bound and counts what it dropped.
#[test]
fn candidates_per_connection() {
    let text: String = (0..32)
        .map(|i| format!("192.0.2.{i} many.example\n2001:db8::{i:x} many.example\n"))
        .collect();
    for max in [RaceConfig::default().max_candidates, 10] {
        let mut m = Machine::new(Config {
            hosts: parse_hosts(&text),
            race: RaceConfig {
                max_candidates: max,
                ..RaceConfig::default()
            },
            ..taps_testkit::config(0)
        });
        m.handle(Instant::ZERO, Input::InterfacesChanged(interfaces(3)));
        let c = m
            .initiate(
                Instant::ZERO,
                &Preconnection::new("many.example:443".parse().unwrap()),
            )
            .unwrap();
        let race = m.connection_info(c).and_then(|c| c.race()).unwrap();
        assert_eq!(race.candidates().len(), usize::from(max));
        // Counted per rebuild of the tree (each answer), so at least once
        // per leaf left out.
        assert!(race.dropped_candidates() as usize >= 96 - usize::from(max));
    }
}

// --- Paths per connection ----------------------------------------------------

/// `path::MAX_PATHS_PER_CONNECTION`: a host with 300 usable interfaces
/// races over the 16 most preferred (the first 16 here, all alike); the
/// others never get an attempt, and nothing wraps.
#[test]
fn paths_per_connection() {
    use taps_core::TransportProperties;
    use taps_core::{MAX_PATHS_PER_CONNECTION, derive_paths};
    let all = interfaces(300);
    let selection = TransportProperties::default();
    let paths = derive_paths(&all, &selection.selection, None).unwrap();
    assert_eq!(paths.len(), MAX_PATHS_PER_CONNECTION);

    let mut w = World::new(Machine::new(taps_testkit::config(0)));
    w.machine.handle(ms(0), Input::InterfacesChanged(all));
    // Refused, so every path is tried (blackholed attempts would hold the
    // concurrent-attempt limit).
    w.tcp("192.0.2.77:443", Tcp::Refuse(Duration::from_millis(5)));
    let c = w
        .initiate(
            ms(0),
            &Preconnection::new("192.0.2.77:443".parse().unwrap()),
        )
        .unwrap();
    w.run_until(ms(60_000));
    let used: std::collections::BTreeSet<u32> =
        w.opened.iter().filter_map(|o| o.interface).collect();
    let expected: std::collections::BTreeSet<u32> = (1..=16).collect();
    assert_eq!(used, expected, "attempts on the first 16 paths only");
    let error = w.error(c).expect("every path refused");
    assert_eq!(error.attempts.len(), MAX_PATHS_PER_CONNECTION);
}

fn interfaces(n: u32) -> Vec<taps_core::Interface> {
    use taps_core::{Interface, InterfaceAddress, InterfaceKind};
    (1..=n)
        .map(|i| Interface {
            name: format!("eth{i}"),
            index: i,
            kind: InterfaceKind::Wired,
            addrs: vec![
                InterfaceAddress {
                    addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 250) as u8 + 1)),
                    prefix_len: 24,
                    deprecated: false,
                },
                InterfaceAddress {
                    addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i as u16)),
                    prefix_len: 64,
                    deprecated: false,
                },
            ],
            mtu: 1500,
            expensive: false,
            constrained: false,
            up: true,
        })
        .collect()
}

// --- Concurrent attempts --------------------------------------------------

/// `RaceConfig::max_concurrent_attempts`: 32 silent destinations raced with
/// the shortest attempt delay never have more attempts in flight than the
/// bound; the rest wait their turn.
#[test]
fn concurrent_attempts() {
    let text: String = (0..32)
        .map(|i| format!("192.0.2.{i} many.example\n"))
        .collect();
    for max in [RaceConfig::default().max_concurrent_attempts, 3] {
        let mut w = World::new(Machine::new(Config {
            hosts: parse_hosts(&text),
            race: RaceConfig {
                max_concurrent_attempts: max,
                connection_attempt_delay: Duration::from_millis(10),
                path_mode: RacingMode::Simultaneous,
                ..RaceConfig::default()
            },
            ..taps_testkit::config(0)
        }));
        w.initiate(
            ms(0),
            &Preconnection::new("many.example:443".parse().unwrap()),
        )
        .unwrap();
        let mut most = 0;
        for t in (0..2000).step_by(5) {
            w.run_until(ms(t));
            most = most.max(w.live_sockets().len());
        }
        assert_eq!(most, usize::from(max), "with max_concurrent_attempts {max}");
        assert_eq!(
            w.opened.len(),
            usize::from(max),
            "the rest wait: every destination is silent"
        );
        let _ = Tcp::Blackhole;
    }
}

// --- Buffered bytes per connection ----------------------------------------

/// `IoLimits::max_receive_buffer`: an application that does not read makes
/// `read_capacity` reach 0, so an adapter that keeps the contract stops
/// reading; reading makes room and `ResumeReading` says so.
#[test]
fn receive_buffer() {
    let limits = IoLimits {
        max_receive_buffer: 10_000,
        ..IoLimits::default()
    };
    let (mut m, conn, socket) = accepted(
        Config {
            io: limits,
            ..taps_testkit::config(0)
        },
        None,
    );
    let mut taken = 0;
    while m.socket(socket).read_capacity() > 0 {
        let n = m.socket(socket).read_capacity().min(3000);
        m.handle(
            Instant::ZERO,
            Input::SocketData {
                socket,
                data: &vec![7; n],
            },
        );
        taken += n;
    }
    assert_eq!(taken, limits.max_receive_buffer);
    outputs(&mut m);
    let mut buf = vec![0; 4000];
    assert_eq!(m.connection(conn).read(&mut buf), Ok(4000));
    assert_eq!(m.socket(socket).read_capacity(), 4000);
    assert!(outputs(&mut m).contains(&Output::ResumeReading { socket }));
}

/// `IoLimits::transmit_high_water`: a peer that never reads (the adapter
/// never writes) stops stream writes at the high-water mark with
/// `WouldBlock`; draining brings `Writable`.
#[test]
fn transmit_high_water() {
    let limits = IoLimits::default();
    let (mut m, conn, socket) = accepted(taps_testkit::config(0), None);
    let chunk = vec![1; 64 * 1024];
    let mut written = 0;
    loop {
        match m.connection(conn).write(&chunk) {
            Ok(n) => written += n,
            Err(StreamError::WouldBlock) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(written, limits.transmit_high_water);
    outputs(&mut m);
    while !m.socket(socket).transmit_data().is_empty() {
        let n = m.socket(socket).transmit_data().len();
        m.handle(Instant::ZERO, Input::Transmitted { socket, len: n });
    }
    assert!(outputs(&mut m).contains(&Output::Event(Event::Writable { conn })));
}

// --- Queued messages and bytes ------------------------------------------------

/// `IoLimits::max_queued_messages` and `max_queued_bytes`: while a
/// connection cannot send (still establishing), sends beyond either bound
/// are refused with `BufferFull`, a clear back-pressure error.
#[test]
fn send_queue() {
    let limits = IoLimits::default();
    let mut m = Machine::new(taps_testkit::config(0));
    let pre = Preconnection::new(SERVER.parse().unwrap());
    let c = m.initiate(Instant::ZERO, &pre).unwrap();
    for i in 0..limits.max_queued_messages {
        m.connection(c)
            .send(Instant::ZERO, Message::new(vec![0; 8]))
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
    }
    let refused = m
        .connection(c)
        .send(Instant::ZERO, Message::new(vec![0; 8]));
    assert_eq!(refused, Err(SendError::BufferFull));
    assert_eq!(
        SendError::BufferFull.to_string(),
        "the send buffer is full; wait for Writable"
    );

    let c = m.initiate(Instant::ZERO, &pre).unwrap();
    let big = limits.max_queued_bytes / 4;
    for _ in 0..4 {
        m.connection(c)
            .send(Instant::ZERO, Message::new(vec![0; big]))
            .unwrap();
    }
    assert_eq!(
        m.connection(c)
            .send(Instant::ZERO, Message::new(vec![0; 1])),
        Err(SendError::BufferFull)
    );
}

/// `IoLimits::max_pending_receives`.
#[test]
fn pending_receives() {
    let limits = IoLimits::default();
    let (mut m, conn, _) = accepted(taps_testkit::config(0), None);
    for _ in 0..limits.max_pending_receives {
        m.connection(conn).receive(Instant::ZERO, 1, 100).unwrap();
    }
    // `ReceiveError` lives in a private module and is not re-exported, so
    // its variant can only be checked through `Debug` here.
    let refused = m.connection(conn).receive(Instant::ZERO, 1, 100);
    assert_eq!(format!("{refused:?}"), "Err(TooManyPending)");
}

// --- Message size -------------------------------------------------------------

/// The framer's limit: a length prefix claiming more fails the connection
/// from its four bytes alone (nothing is buffered for the claim); a line
/// that cannot end within the limit fails as soon as that is certain; a
/// message too large to send is refused with a framing error.
#[test]
fn message_size() {
    let (mut m, conn, socket) = accepted(
        taps_testkit::config(0),
        Some(FramerFactory::length_prefixed(1024)),
    );
    m.handle(
        Instant::ZERO,
        Input::SocketData {
            socket,
            data: &(1u32 << 30).to_be_bytes(),
        },
    );
    let events = outputs(&mut m);
    assert!(events.contains(&Output::Event(Event::ConnectionError {
        conn,
        reason: FailureReason::Framing(FramingFailure::TooLarge {
            size: 1 << 30,
            limit: 1024
        })
    })));
    assert!(events.contains(&Output::CloseSocket { socket }));

    let (mut m, conn, socket) = accepted(taps_testkit::config(0), Some(FramerFactory::lines(16)));
    m.handle(
        Instant::ZERO,
        Input::SocketData {
            socket,
            data: &[b'x'; 17],
        },
    );
    assert!(outputs(&mut m).iter().any(|o| matches!(
        o,
        Output::Event(Event::ConnectionError {
            reason: FailureReason::Framing(FramingFailure::TooLarge { limit: 16, .. }),
            ..
        })
    )));

    let (mut m, conn2, _) = accepted(
        taps_testkit::config(0),
        Some(FramerFactory::length_prefixed(1024)),
    );
    let id = m
        .connection(conn2)
        .send(Instant::ZERO, Message::new(vec![0; 1025]))
        .unwrap();
    assert!(outputs(&mut m).contains(&Output::Event(Event::SendError {
        conn: conn2,
        message: id,
        error: SendError::Framing(FramingFailure::TooLarge {
            size: 1025,
            limit: 1024
        }),
    })));
    let _ = conn;
}

// --- Connections per listener and per machine --------------------------------

/// RFC 9622 §7.2 `SetNewConnectionLimit`: the limit is reached with
/// `AcceptError::LimitReached` (and counted); raising it accepts again.
#[test]
fn connections_per_listener() {
    let mut m = Machine::new(taps_testkit::config(0));
    let mut lc = ListenerConfig::on(vec![SERVER.parse().unwrap()]);
    lc.connection_limit = Some(2);
    let l = m.listen(lc).unwrap();
    let peer = |i: u16| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 40000 + i);
    assert!(m.listener(l).accept(Instant::ZERO, peer(1)).is_ok());
    assert!(m.listener(l).accept(Instant::ZERO, peer(2)).is_ok());
    assert_eq!(
        m.listener(l).accept(Instant::ZERO, peer(3)),
        Err(AcceptError::LimitReached)
    );
    assert_eq!(
        AcceptError::LimitReached.to_string(),
        "the listener's new-connection limit is reached"
    );
    assert_eq!(m.stats().accepts_refused, 1);
    assert_eq!(m.stats().live_connections, 2);
    m.listener(l).set_new_connection_limit(None);
    assert!(m.listener(l).accept(Instant::ZERO, peer(4)).is_ok());
}

/// `Config::max_connections`: initiate and accept both refuse clearly.
#[test]
fn connections_per_machine() {
    let mut m = Machine::new(Config {
        max_connections: 2,
        ..taps_testkit::config(0)
    });
    let pre = Preconnection::new(SERVER.parse().unwrap());
    m.initiate(Instant::ZERO, &pre).unwrap();
    m.initiate(Instant::ZERO, &pre).unwrap();
    let refused = m.initiate(Instant::ZERO, &pre);
    assert_eq!(refused, Err(InitiateError::TooManyConnections(2)));
    assert_eq!(
        InitiateError::TooManyConnections(2).to_string(),
        "the machine already holds its limit of 2 connections"
    );
    let l = m
        .listen(ListenerConfig::on(vec![SERVER.parse().unwrap()]))
        .unwrap();
    assert_eq!(
        m.listener(l).accept(Instant::ZERO, PEER.parse().unwrap()),
        Err(AcceptError::TooManyConnections)
    );
}

/// `Config::handshake_timeout`: an accepted TLS client that never speaks
/// holds its socket no longer than the timeout.
#[test]
fn handshake_time() {
    let ca = TestCa::new();
    let mut m = Machine::new(taps_testkit::config(0));
    let lc = ListenerConfig::on(vec![SERVER.parse().unwrap()])
        .with_security(SecurityParameters::server(ca.leaf(&["192.0.2.10"])));
    let l = m.listen(lc).unwrap();
    let socket = m
        .listener(l)
        .accept(Instant::ZERO, PEER.parse().unwrap())
        .unwrap();
    outputs(&mut m);
    let timeout = m.config().handshake_timeout;
    m.handle_timeout(Instant::ZERO + timeout - Duration::from_millis(1));
    assert_eq!(m.stats().live_connections, 1);
    let deadline = m.poll_timeout().unwrap();
    assert_eq!(deadline, Instant::ZERO + timeout);
    m.handle_timeout(deadline);
    assert!(outputs(&mut m).contains(&Output::CloseSocket { socket }));
    assert_eq!(m.stats().live_connections, 0);
    assert_eq!(m.stats().failed_handshakes, 1);
}

// --- Tables: history and DNS cache ------------------------------------------

/// `HistoryConfig::max_entries`: more destinations than entries keep the
/// table at its bound.
#[test]
fn history_entries() {
    let mut m = Machine::new(Config {
        history: taps_core::race::HistoryConfig {
            max_entries: 3,
            ..Default::default()
        },
        ..taps_testkit::config(0)
    });
    for i in 0..6 {
        let pre = Preconnection::new(format!("192.0.2.{i}:443").parse().unwrap());
        let c = m.initiate(Instant::ZERO, &pre).unwrap();
        let socket = outputs(&mut m)
            .into_iter()
            .find_map(|o| match o {
                Output::OpenTcp { socket, .. } => Some(socket),
                _ => None,
            })
            .unwrap();
        m.handle(Instant::ZERO, Input::SocketConnected { socket });
        assert_eq!(
            m.connection_info(c).map(|c| c.state()),
            Some(ConnectionState::Established)
        );
        assert!(m.history().len() <= 3);
    }
    assert_eq!(m.history().len(), 3);
}

/// `DnsConfig::cache_capacity`: a full cache forgets an old name, which is
/// then asked again.
#[test]
fn dns_cache_capacity() {
    let dns = "192.168.1.1:53";
    let mut w = World::new(Machine::new(Config {
        dns: taps_core::dns::DnsConfig {
            servers: vec![dns.parse().unwrap()],
            cache_capacity: 2,
            ..Default::default()
        },
        race: RaceConfig::sequential(),
        ..taps_testkit::config(0)
    }));
    for (i, host) in ["a.example", "b.example", "c.example"].iter().enumerate() {
        w.rule(
            dns,
            host,
            QueryType::A,
            1,
            taps_testkit::world::addrs(&[&format!("192.0.2.{i}")], 600),
        );
        w.rule(
            dns,
            host,
            QueryType::Aaaa,
            1,
            Answer::NoData { negative_ttl: 600 },
        );
    }
    let queries = |w: &mut World, host: &str, at: u64| {
        let before = w.queries.len();
        let pre = Preconnection::new(format!("{host}:80").parse().unwrap());
        w.initiate(ms(at), &pre).unwrap();
        w.run_until(ms(at + 100));
        w.queries.len() - before
    };
    assert_eq!(queries(&mut w, "a.example", 0), 2);
    assert_eq!(queries(&mut w, "a.example", 1000), 0, "cached");
    assert_eq!(queries(&mut w, "b.example", 2000), 2);
    assert_eq!(queries(&mut w, "c.example", 3000), 2);
    assert_eq!(
        queries(&mut w, "a.example", 4000),
        2,
        "evicted from a full cache"
    );
}
