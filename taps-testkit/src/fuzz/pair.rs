//! Two machines on one in-memory TCP connection, for the TLS targets and
//! the TLS seeds: bytes move only when asked to.

use std::collections::VecDeque;
use std::time::Duration;

use taps_core::{
    Config, ConnectionId, Event, FailureReason, Input, ListenerConfig, Preconnection, SocketId,
    TlsCheckout,
};

use super::{CLIENT_ADDR, MAX_FLOW_ROUNDS, SERVER_ADDR, addr, client_tls, server_tls};
use crate::harness::{Harness, SocketEnd};
use crate::wire::{LimitedWire, QueueWire, Through, WireEnd, read_through, write_through};

/// A client machine (index 0) and a server machine (index 1) joined by one
/// TCP connection in memory. Bytes move only when asked to, so a test can
/// hold, corrupt or replace what one side receives.
pub(super) struct Pair {
    /// The client and the server.
    pub(super) h: [Harness; 2],
    /// Each machine's socket of the connection.
    pub(super) sock: [SocketId; 2],
    /// Each machine's connection, once `Ready` / `ConnectionReceived`.
    pub(super) conn: [Option<ConnectionId>; 2],
    /// Bytes on their way to machine `i`.
    pub(super) to: [VecDeque<u8>; 2],
    /// How machine `i`'s peer ended its side, if it did.
    end_to: [Option<SocketEnd>; 2],
    end_told: [bool; 2],
    ends_seen: [usize; 2],
    /// Every piece machine `i` wrote, in order (its TLS flights).
    pub(super) sent: [Vec<Vec<u8>>; 2],
}

impl Pair {
    /// Connects a client to a listener, with TLS when `tls`, and runs the
    /// handshakes to the end. `None` if establishment failed.
    pub(super) fn establish(tls: bool) -> Option<Pair> {
        let mut server = Harness::manual(Config {
            seed: 2,
            ..Config::new(0)
        });
        let mut lc = ListenerConfig::on(vec![addr(SERVER_ADDR)]);
        if tls {
            lc = lc.with_security(server_tls());
        }
        let listener = server.listen(lc)?;
        let mut client = Harness::manual(Config {
            seed: 1,
            ..Config::new(0)
        });
        let mut pre = Preconnection::new(SERVER_ADDR.parse().expect("constant endpoint"));
        if tls {
            pre = pre.with_security(client_tls());
        }
        client.initiate(client.now, &pre).ok()?;
        let csock = client.opened.last()?.socket;
        let ssock = server.accept(listener, addr(CLIENT_ADDR))?;
        client.handle(Input::SocketConnected { socket: csock });
        let mut pair = Pair {
            h: [client, server],
            sock: [csock, ssock],
            conn: [None, None],
            to: [VecDeque::new(), VecDeque::new()],
            end_to: [None, None],
            end_told: [false, false],
            ends_seen: [0, 0],
            sent: [Vec::new(), Vec::new()],
        };
        pair.flow(None);
        pair.conn[0] = pair.h[0].events.iter().find_map(|(_, e)| match e {
            Event::Ready { conn, .. } => Some(*conn),
            _ => None,
        });
        pair.conn[1] = pair.h[1].events.iter().find_map(|(_, e)| match e {
            Event::ConnectionReceived { conn, .. } => Some(*conn),
            _ => None,
        });
        (pair.conn[0].is_some() && pair.conn[1].is_some()).then_some(pair)
    }

    /// Moves what machine `i` wrote towards its peer, and notes how it
    /// ended its socket. Returns whether anything happened.
    fn collect(&mut self, i: usize) -> bool {
        let sock = self.sock[i];
        let mut moved = false;
        loop {
            let data = self.h[i].machine.socket(sock).transmit_data();
            if data.is_empty() {
                break;
            }
            let piece = data.to_vec();
            self.to[1 - i].extend(piece.iter().copied());
            self.h[i].machine.handle(
                self.h[i].now,
                Input::Transmitted {
                    socket: sock,
                    len: piece.len(),
                },
            );
            self.sent[i].push(piece);
            self.h[i].drain();
            moved = true;
        }
        while let Some(&(s, end)) = self.h[i].socket_ends.get(self.ends_seen[i]) {
            self.ends_seen[i] += 1;
            let peer = 1 - i;
            if s == sock
                && !self.end_told[peer]
                && (self.end_to[peer].is_none() || end == SocketEnd::Abort)
            {
                self.end_to[peer] = Some(end);
                moved = true;
            }
        }
        moved
    }

    /// Delivers up to `max` bytes to machine `i` (no more than it may read),
    /// then its peer's FIN or RST once every byte is in.
    pub(super) fn deliver(&mut self, i: usize, max: usize) -> bool {
        let sock = self.sock[i];
        let room = self.h[i]
            .machine
            .socket(sock)
            .read_capacity()
            .min(max)
            .min(self.to[i].len());
        let mut moved = false;
        if room > 0 {
            let data: Vec<u8> = self.to[i].drain(..room).collect();
            self.h[i].handle(Input::SocketData {
                socket: sock,
                data: &data,
            });
            moved = true;
        }
        if self.to[i].is_empty()
            && !self.end_told[i]
            && let Some(end) = self.end_to[i]
        {
            self.end_told[i] = true;
            self.h[i].handle(match end {
                SocketEnd::Abort => Input::SocketFailed {
                    socket: sock,
                    reason: FailureReason::Reset,
                },
                SocketEnd::Shutdown | SocketEnd::Close => Input::SocketEof { socket: sock },
            });
            moved = true;
        }
        moved
    }

    /// Moves bytes both ways until nothing moves, except into machine
    /// `held`, whose incoming bytes wait for [`Pair::deliver`].
    pub(super) fn flow(&mut self, held: Option<usize>) {
        for _ in 0..MAX_FLOW_ROUNDS {
            let mut moved = self.collect(0) | self.collect(1);
            for i in 0..2 {
                if held != Some(i) {
                    moved |= self.deliver(i, usize::MAX);
                }
            }
            if !moved {
                return;
            }
        }
        violated!("two stacks keep exchanging bytes without end");
    }

    /// Advances both clocks by `d`.
    pub(super) fn tick(&mut self, d: Duration) {
        for h in &mut self.h {
            h.advance(d);
        }
    }

    /// As an adapter's stream read through machine `i`'s checked-out TLS
    /// session: the socket holds the bytes queued to `i`, then its peer's
    /// end. The peer only ever writes `p`s, so any other plaintext is a
    /// broken invariant.
    pub(super) fn read_through(&mut self, i: usize, max: usize) {
        let Some(conn) = self.conn[i] else { return };
        let Some(mut session) = self.h[i]
            .machine
            .connection(conn)
            .check_out_tls(TlsCheckout::Read)
        else {
            return;
        };
        let end = match self.end_to[i].filter(|_| !self.end_told[i]) {
            None => WireEnd::Open,
            Some(SocketEnd::Abort) => WireEnd::Reset,
            Some(SocketEnd::Shutdown | SocketEnd::Close) => WireEnd::Fin,
        };
        let mut wire = QueueWire {
            queue: &mut self.to[i],
            end,
            ended: false,
        };
        let mut buf = vec![0; max.max(1)];
        let result = read_through(&mut session, &mut wire, &mut buf);
        let ended = wire.ended;
        let now = self.h[i].now;
        self.h[i].machine.handle(now, Input::TlsCheckIn(session));
        if ended {
            self.end_told[i] = true;
        }
        match result {
            Ok(Through::Done(n)) => {
                if buf[..n].iter().any(|&b| b != b'p') {
                    violated!("a checked-out read returned plaintext the peer never wrote");
                }
            }
            Ok(Through::WouldBlock | Through::Ended) => {}
            Err(_) => self.h[i].handle(Input::SocketFailed {
                socket: self.sock[i],
                reason: FailureReason::Reset,
            }),
        }
        self.h[i].drain();
    }

    /// As an adapter's stream write through machine `i`'s checked-out TLS
    /// session, to a socket that takes at most `room` bytes now.
    pub(super) fn write_through(&mut self, i: usize, data: &[u8], room: usize) {
        let Some(conn) = self.conn[i] else { return };
        let Some(mut session) = self.h[i]
            .machine
            .connection(conn)
            .check_out_tls(TlsCheckout::Write)
        else {
            return;
        };
        let mut wire = LimitedWire {
            taken: Vec::new(),
            room,
        };
        let result = write_through(&mut session, &mut wire, data);
        let now = self.h[i].now;
        self.h[i].machine.handle(now, Input::TlsCheckIn(session));
        match result {
            Ok(Through::Done(n)) if n > data.len() => {
                violated!("a checked-out write took {n} of {} bytes", data.len())
            }
            Ok(_) => {}
            Err(e) => violated!("a socket that only fills up failed: {e}"),
        }
        if !wire.taken.is_empty() {
            self.to[1 - i].extend(wire.taken.iter().copied());
            self.sent[i].push(wire.taken);
        }
        self.h[i].drain();
    }
}
