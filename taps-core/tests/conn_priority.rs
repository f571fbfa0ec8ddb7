//! RFC 9622 §8.1.2 `connPriority` between one machine's connections: "A
//! numerically lower value reflects a higher priority." When several
//! connections have bytes for their sockets at once, the more important
//! one's `Transmit` comes out first.

use taps_core::{
    Config, ConnectionId, Event, Input, Instant, Machine, Output, Preconnection, SocketId,
    TransportProperties,
};

/// A connection to `remote` with this `connPriority`, established: its id
/// and its socket.
fn established(m: &mut Machine, remote: &str, priority: u32) -> (ConnectionId, SocketId) {
    let mut properties = TransportProperties::new();
    properties.connection.conn_priority = priority;
    let pre = Preconnection::new(remote.parse().unwrap()).with_properties(properties);
    let conn = m.initiate(Instant::ZERO, &pre).unwrap();
    let mut socket = None;
    while let Some(out) = m.poll() {
        if let Output::OpenTcp { socket: s, .. } = out {
            socket = Some(s);
        }
    }
    let socket = socket.expect("an attempt opened its socket");
    m.handle(Instant::ZERO, Input::SocketConnected { socket });
    let mut ready = false;
    while let Some(out) = m.poll() {
        ready |= matches!(out, Output::Event(Event::Ready { conn: c, .. }) if c == conn);
    }
    assert!(ready, "{remote} is established");
    (conn, socket)
}

/// The sockets of the `Transmit`s and `ShutdownWrite`s the machine has
/// queued, in order, as ("T" or "S", socket).
fn queued(m: &mut Machine) -> Vec<(&'static str, SocketId)> {
    let mut order = Vec::new();
    while let Some(out) = m.poll() {
        match out {
            Output::Transmit { socket } => order.push(("T", socket)),
            Output::ShutdownWrite { socket } => order.push(("S", socket)),
            _ => {}
        }
    }
    order
}

#[test]
fn the_more_important_connection_transmits_first() {
    // (priorities in the order the connections write, the order their
    // Transmits must come out in as indexes into that list)
    let table: [(&[u32], &[usize]); 4] = [
        // Lower value first, whatever the order of the writes.
        (&[200, 10], &[1, 0]),
        (&[10, 200], &[0, 1]),
        // Equal priorities keep the order of the writes.
        (&[100, 100, 100], &[0, 1, 2]),
        // The default (100) sits between 50 and 150.
        (&[150, 100, 50], &[2, 1, 0]),
    ];
    for (priorities, expected) in table {
        let mut m = Machine::new(Config::new(1));
        let conns: Vec<_> = priorities
            .iter()
            .enumerate()
            .map(|(i, &p)| established(&mut m, &format!("192.0.2.{}:80", i + 1), p))
            .collect();
        for (conn, _) in &conns {
            m.connection(*conn).write(b"bytes").unwrap();
        }
        let want: Vec<_> = expected.iter().map(|&i| ("T", conns[i].1)).collect();
        assert_eq!(queued(&mut m), want, "priorities {priorities:?}");
    }
}

#[test]
fn a_transmit_never_jumps_a_shutdown() {
    // A close puts the socket's last bytes and its FIN in order: the FIN
    // of a less important connection is not overtaken by its own bytes'
    // reordering, and a more important connection's bytes do not jump it.
    let mut m = Machine::new(Config::new(1));
    let (low, low_socket) = established(&mut m, "192.0.2.1:80", 200);
    let (high, high_socket) = established(&mut m, "192.0.2.2:80", 10);
    m.connection(low).write(b"last").unwrap();
    m.connection(low).close(Instant::ZERO);
    m.connection(high).write(b"urgent").unwrap();
    let order = queued(&mut m);
    let position = |entry| order.iter().position(|e| *e == entry).unwrap();
    assert!(
        position(("T", low_socket)) < position(("S", low_socket)),
        "{order:?}"
    );
    assert!(
        position(("S", low_socket)) < position(("T", high_socket)),
        "{order:?}"
    );
}
