//! Stack properties over random inputs: arbitrary chunking yields the
//! same messages through whole client/server stacks; RFC 9622's event order
//! holds whatever the application and the network do; arbitrary bytes as
//! TLS records end in a failed attempt or dropped connection, never a panic.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use taps_core::{
    Config, ConnectionId, Event, FailureReason, Input, Instant, ListenerConfig, Machine, Message,
    Output, Preconnection, SecurityParameters, framer::FramerFactory,
};
use taps_testkit::net::Net;
use taps_testkit::pki::TestCa;

const V4: &str = "192.0.2.10:443";

fn pair(
    tls: Option<&TestCa>,
    framer: &FramerFactory,
    delay_ms: u64,
    chunk: usize,
    seed: u64,
) -> (Net, Preconnection) {
    let mut net = Net::new(
        vec![
            Machine::new(Config {
                seed,
                ..taps_testkit::config(0)
            }),
            Machine::new(Config {
                seed: seed + 1,
                ..taps_testkit::config(0)
            }),
        ],
        Duration::from_millis(delay_ms),
    );
    net.chunk = chunk;
    let mut listener = ListenerConfig::on(vec![V4.parse().unwrap()]).with_framer(framer.clone());
    let mut p = Preconnection::new(V4.parse().unwrap()).with_framer(framer.clone());
    if let Some(ca) = tls {
        listener = listener.with_security(SecurityParameters::server(ca.leaf(&["192.0.2.10"])));
        p = p.with_security(SecurityParameters::with_roots(vec![ca.root()]));
    }
    net.machines[1].listen(listener).unwrap();
    net.drain();
    (net, p)
}

/// Checks RFC 9622's ordering promises for every connection of machine `m`.
fn check_event_order(net: &Net, m: usize) -> Result<(), String> {
    let mut ready: HashMap<ConnectionId, bool> = HashMap::new();
    let mut ended: HashMap<ConnectionId, bool> = HashMap::new();
    for e in net.events_of(m) {
        let Some(conn) = e.connection() else { continue };
        if ended.get(&conn).copied().unwrap_or(false) {
            return Err(format!("{e:?} after the end of {conn:?}"));
        }
        match &e {
            Event::Ready { .. } | Event::ConnectionReceived { .. } => {
                ready.insert(conn, true);
            }
            Event::Received { .. }
            | Event::ReceivedPartial { .. }
            | Event::Readable { .. }
            | Event::Sent { .. }
                if !ready.get(&conn).copied().unwrap_or(false) =>
            {
                return Err(format!("{e:?} before Ready"));
            }
            _ => {}
        }
        if matches!(
            e,
            Event::Closed { .. } | Event::EstablishmentError { .. } | Event::ConnectionError { .. }
        ) {
            ended.insert(conn, true);
        }
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Op {
    Send(u16),
    Receive,
    ServerSend(u16),
    ServerReceive,
    Close,
    ServerClose,
    Abort,
    ServerAbort,
    Wait(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u16..3000).prop_map(Op::Send),
        3 => Just(Op::Receive),
        2 => (0u16..3000).prop_map(Op::ServerSend),
        3 => Just(Op::ServerReceive),
        1 => Just(Op::Close),
        1 => Just(Op::ServerClose),
        1 => Just(Op::Abort),
        1 => Just(Op::ServerAbort),
        4 => (0u16..100).prop_map(Op::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Arbitrary chunking of the byte stream yields the same messages, end to
    /// end through TCP, TLS and the framer.
    #[test]
    fn chunking_through_the_whole_stack_keeps_messages(
        messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..2000), 1..12),
        chunk in 1usize..700,
        tls in any::<bool>(),
    ) {
        let ca = TestCa::new();
        let framer = FramerFactory::length_prefixed(1 << 16);
        let (mut net, p) = pair(tls.then_some(&ca), &framer, 3, chunk, 5);
        let c = net.machines[0].initiate(Instant::ZERO, &p).unwrap();
        for m in &messages {
            net.machines[0].connection(c).send(Instant::ZERO, Message::new(m.clone())).unwrap();
        }
        net.run_for(Duration::from_millis(200));
        let s = net.events_of(1).iter().find_map(|e| match e { Event::ConnectionReceived { conn, .. } => Some(*conn), _ => None }).unwrap();
        for _ in &messages {
            net.machines[1].connection(s).receive(net.now, 1, 1 << 16).unwrap();
        }
        net.run_for(Duration::from_millis(200));
        let got: Vec<Vec<u8>> = net.events_of(1).into_iter().filter_map(|e| match e { Event::Received { data, .. } => Some(data), _ => None }).collect();
        prop_assert_eq!(got, messages);
    }

    /// No Received before Ready, nothing after Closed, EstablishmentError or
    /// ConnectionError — whatever the order of sends, receives, closes and
    /// aborts on either side.
    #[test]
    fn event_order_holds_under_random_operations(ops in proptest::collection::vec(op(), 1..40), delay in 1u64..30, tls in any::<bool>()) {
        let ca = TestCa::new();
        let framer = FramerFactory::lines(4096);
        let (mut net, p) = pair(tls.then_some(&ca), &framer, delay, 512, 9);
        let c = net.machines[0].initiate(Instant::ZERO, &p).unwrap();
        for op in ops {
            let now = net.now;
            let s = net.events_of(1).iter().find_map(|e| match e { Event::ConnectionReceived { conn, .. } => Some(*conn), _ => None });
            match op {
                Op::Send(n) => { let _ = net.machines[0].connection(c).send(now, Message::new(vec![b'a'; n as usize])); }
                Op::Receive => { let _ = net.machines[0].connection(c).receive(now, 1, 4096); }
                Op::ServerSend(n) => if let Some(s) = s { let _ = net.machines[1].connection(s).send(now, Message::new(vec![b'b'; n as usize])); },
                Op::ServerReceive => if let Some(s) = s { let _ = net.machines[1].connection(s).receive(now, 1, 4096); },
                Op::Close => net.machines[0].connection(c).close(now),
                Op::ServerClose => if let Some(s) = s { net.machines[1].connection(s).close(now) },
                Op::Abort => net.machines[0].connection(c).abort(now),
                Op::ServerAbort => if let Some(s) = s { net.machines[1].connection(s).abort(now) },
                Op::Wait(ms) => net.run_for(Duration::from_millis(u64::from(ms))),
            }
            net.drain();
        }
        net.run_for(Duration::from_secs(15));
        check_event_order(&net, 0).map_err(TestCaseError::fail)?;
        check_event_order(&net, 1).map_err(TestCaseError::fail)?;
    }

    /// Arbitrary bytes as TLS records into a client attempt: the attempt
    /// fails with a reason; nothing panics.
    #[test]
    fn garbage_tls_records_fail_the_attempt(garbage in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 1..4)) {
        let ca = TestCa::new();
        let mut m = Machine::new(taps_testkit::config(0));
        let p = Preconnection::new(V4.parse().unwrap()).with_security(SecurityParameters::with_roots(vec![ca.root()]));
        let c = m.initiate(Instant::ZERO, &p).unwrap();
        let mut socket = None;
        while let Some(out) = m.poll() {
            if let Output::OpenTcp { socket: s, .. } = out { socket = Some(s); }
        }
        let socket = socket.unwrap();
        m.handle(Instant::ZERO, Input::SocketConnected { socket });
        for g in &garbage {
            m.handle(Instant::ZERO, Input::SocketData { socket, data: g });
        }
        let mut failed = None;
        while let Some(out) = m.poll() {
            if let Output::Event(Event::EstablishmentError { error, .. }) = out { failed = Some(error); }
        }
        // Either the garbage is still an incomplete record (the attempt waits)
        // or the attempt failed with a TLS reason.
        if let Some(error) = failed {
            prop_assert!(error.attempts.iter().all(|a| matches!(a.failure, Some(FailureReason::Tls(_)))), "{}", error);
        } else {
            prop_assert!(m.connection_info(c).map(|c| c.state()) == Some(taps_core::ConnectionState::Establishing));
        }
    }

    /// Arbitrary bytes into a TLS listener's connection: it is dropped and
    /// counted; the listener keeps serving.
    #[test]
    fn garbage_from_a_client_never_hurts_the_listener(garbage in proptest::collection::vec(any::<u8>(), 1..2000)) {
        let ca = TestCa::new();
        let mut m = Machine::new(taps_testkit::config(0));
        let l = m.listen(ListenerConfig::on(vec![V4.parse().unwrap()]).with_security(SecurityParameters::server(ca.leaf(&["x.example"])))).unwrap();
        while m.poll().is_some() {}
        let s = m.listener(l).accept(Instant::ZERO, "198.51.100.1:5000".parse().unwrap()).unwrap();
        m.handle(Instant::ZERO, Input::SocketData { socket: s, data: &garbage });
        m.handle(Instant::from_millis(1), Input::SocketEof { socket: s });
        while m.poll().is_some() {}
        prop_assert_eq!(m.stats().failed_handshakes, 1);
        prop_assert_eq!(m.stats().live_connections, 0);
        prop_assert!(m.listener(l).accept(Instant::from_millis(2), "198.51.100.2:5000".parse().unwrap()).is_ok());
    }
}
