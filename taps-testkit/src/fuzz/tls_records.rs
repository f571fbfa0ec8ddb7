//! The `tls_records` target: arbitrary bytes as TLS records, before a
//! handshake completes and between two established machines
//! ([`tls_records`]).

use std::time::Duration;

use taps_core::{Config, FailureReason, Input, ListenerConfig, Preconnection};

use super::pair::Pair;
use super::{CLIENT_ADDR, SERVER_ADDR, addr, client_tls, server_tls};
use crate::contract::nonempty;
use crate::harness::Harness;

/// The first byte of a `tls_records` input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsMode {
    /// The bytes go to the listener's connection, not the client attempt.
    pub server: bool,
    /// Complete a real handshake first, then run the ops that follow.
    pub established: bool,
}

impl TlsMode {
    /// Decodes the mode byte.
    pub fn from_byte(b: u8) -> Self {
        TlsMode {
            server: b & 1 != 0,
            established: b & 2 != 0,
        }
    }

    /// The mode byte.
    pub fn to_byte(self) -> u8 {
        u8::from(self.server) | u8::from(self.established) << 1
    }
}

/// One step of an established-mode `tls_records` input. Bytes from the peer
/// to the machine under test wait in a queue the ops act on; bytes the other
/// way flow freely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsOp {
    /// Deliver up to this many queued peer bytes (then FIN/RST if queued).
    Deliver(u16),
    /// Deliver these bytes instead, out of nowhere.
    Inject(Vec<u8>),
    /// XOR one queued byte (index modulo the queue) with a non-zero value.
    Flip(u16, u8),
    /// Drop this many queued bytes.
    Drop(u16),
    /// The peer writes this many bytes on its stream.
    PeerWrite(u16),
    /// The peer closes (close_notify, FIN).
    PeerClose,
    /// The peer aborts (RST).
    PeerAbort,
    /// The machine under test asks to receive.
    Receive,
    /// The machine under test reads up to this many bytes.
    Read(u16),
    /// The machine under test writes this many bytes.
    Write(u16),
    /// The machine under test closes.
    Close,
    /// The machine under test's socket reports EOF.
    Eof,
    /// Both clocks advance by this many times 10 ms.
    Tick(u8),
    /// The machine under test reads up to this many bytes through its
    /// checked-out TLS session, from the bytes queued to it, as an
    /// adapter's stream read does (`Machine::check_out_tls`).
    ReadThrough(u16),
    /// The machine under test writes this many bytes through its
    /// checked-out TLS session to a socket that takes at most the second
    /// number of bytes.
    WriteThrough(u16, u16),
}

impl TlsOp {
    /// Reads ops until the bytes run out or an unknown op code appears.
    pub fn decode_all(mut data: &[u8]) -> Vec<TlsOp> {
        let mut ops = Vec::new();
        fn u16_at(d: &[u8]) -> Option<u16> {
            d.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]))
        }
        while let Some((&code, rest)) = data.split_first() {
            let (op, used) = match code {
                0 => match u16_at(rest) {
                    Some(n) => (TlsOp::Deliver(n), 2),
                    None => break,
                },
                1 => {
                    let Some((&n, bytes)) = rest.split_first() else {
                        break;
                    };
                    let n = usize::from(n).min(bytes.len());
                    (TlsOp::Inject(bytes[..n].to_vec()), 1 + n)
                }
                2 => match (u16_at(rest), rest.get(2)) {
                    (Some(at), Some(&x)) => (TlsOp::Flip(at, x), 3),
                    _ => break,
                },
                3 => match u16_at(rest) {
                    Some(n) => (TlsOp::Drop(n), 2),
                    None => break,
                },
                4 => match u16_at(rest) {
                    Some(n) => (TlsOp::PeerWrite(n), 2),
                    None => break,
                },
                5 => (TlsOp::PeerClose, 0),
                6 => (TlsOp::PeerAbort, 0),
                7 => (TlsOp::Receive, 0),
                8 => match u16_at(rest) {
                    Some(n) => (TlsOp::Read(n), 2),
                    None => break,
                },
                9 => match u16_at(rest) {
                    Some(n) => (TlsOp::Write(n), 2),
                    None => break,
                },
                10 => (TlsOp::Close, 0),
                11 => (TlsOp::Eof, 0),
                12 => match rest.first() {
                    Some(&t) => (TlsOp::Tick(t), 1),
                    None => break,
                },
                13 => match u16_at(rest) {
                    Some(n) => (TlsOp::ReadThrough(n), 2),
                    None => break,
                },
                14 => match (u16_at(rest), rest.get(2..).and_then(u16_at)) {
                    (Some(n), Some(room)) => (TlsOp::WriteThrough(n, room), 4),
                    _ => break,
                },
                _ => break,
            };
            ops.push(op);
            data = &rest[used..];
        }
        ops
    }

    /// The bytes of `ops` (inverse of [`TlsOp::decode_all`]).
    pub fn encode_all(ops: &[TlsOp]) -> Vec<u8> {
        let mut out = Vec::new();
        for op in ops {
            match op {
                TlsOp::Deliver(n) => push_op16(&mut out, 0, *n),
                TlsOp::Inject(b) => {
                    let b = &b[..b.len().min(255)];
                    out.extend_from_slice(&[1, b.len() as u8]);
                    out.extend_from_slice(b);
                }
                TlsOp::Flip(at, x) => {
                    push_op16(&mut out, 2, *at);
                    out.push(*x);
                }
                TlsOp::Drop(n) => push_op16(&mut out, 3, *n),
                TlsOp::PeerWrite(n) => push_op16(&mut out, 4, *n),
                TlsOp::PeerClose => out.push(5),
                TlsOp::PeerAbort => out.push(6),
                TlsOp::Receive => out.push(7),
                TlsOp::Read(n) => push_op16(&mut out, 8, *n),
                TlsOp::Write(n) => push_op16(&mut out, 9, *n),
                TlsOp::Close => out.push(10),
                TlsOp::Eof => out.push(11),
                TlsOp::Tick(t) => out.extend_from_slice(&[12, *t]),
                TlsOp::ReadThrough(n) => push_op16(&mut out, 13, *n),
                TlsOp::WriteThrough(n, room) => {
                    push_op16(&mut out, 14, *n);
                    out.extend_from_slice(&room.to_be_bytes());
                }
            }
        }
        out
    }
}

fn push_op16(out: &mut Vec<u8>, code: u8, n: u16) {
    out.push(code);
    out.extend_from_slice(&n.to_be_bytes());
}

/// **tls_records**: arbitrary bytes arrive as TLS records.
///
/// Input: a [`TlsMode`] byte. Raw mode (the handshake never completes):
/// one chunk-size byte (0: all at once), then bytes fed to a TLS client
/// attempt towards 192.0.2.10:443 or to a TLS listener's fresh connection,
/// then EOF. The attempt must fail with a TLS reason (or "peer closed"),
/// never be Ready; the listener must drop the connection silently, count
/// one failed handshake, and accept the next one.
///
/// Established mode: a real TLS 1.3 handshake between two machines, then
/// [`TlsOp`]s act on what the machine under test receives: real records
/// held, dropped, corrupted or delivered, garbage injected, the peer
/// writing, closing or aborting, the machine receiving, writing, closing.
/// Both machines' [`Checker`](crate::contract::Checker)s hold throughout, and at the end, after both
/// sides closed and every timer ran, nothing is left (the leak check).
pub fn tls_records(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mode = TlsMode::from_byte(mode);
    if mode.established {
        tls_established(mode.server, rest);
    } else {
        let (chunk, bytes) = match rest.split_first() {
            Some((&0, bytes)) => (usize::MAX, bytes),
            Some((&n, bytes)) => (usize::from(n), bytes),
            None => (usize::MAX, rest),
        };
        if mode.server {
            tls_raw_server(bytes, chunk);
        } else {
            tls_raw_client(bytes, chunk);
        }
    }
}

fn tls_raw_client(bytes: &[u8], chunk: usize) {
    let mut h = Harness::manual(Config::new(0));
    let pre = Preconnection::new(SERVER_ADDR.parse().expect("constant endpoint"))
        .with_security(client_tls());
    let Some(conn) = h.initiate(h.now, &pre).ok() else {
        violated!("initiate with TLS refused");
    };
    let Some(socket) = h.opened.last().map(|o| o.socket) else {
        violated!("no attempt for a literal address");
    };
    h.handle(Input::SocketConnected { socket });
    for piece in bytes.chunks(chunk) {
        h.handle(Input::SocketData {
            socket,
            data: piece,
        });
    }
    h.handle(Input::SocketEof { socket });
    match h.error(conn).cloned() {
        None => violated!("bytes then EOF did not fail the TLS attempt"),
        Some(error) => {
            for a in &error.attempts {
                if !matches!(
                    a.failure,
                    Some(FailureReason::Tls(_) | FailureReason::PeerClosed)
                ) {
                    violated!("a TLS attempt failed for another reason: {error}");
                }
            }
            nonempty(&error);
        }
    }
    h.machine.connection(conn).close(h.now);
    h.drain();
    h.finish();
}

fn tls_raw_server(bytes: &[u8], chunk: usize) {
    let mut h = Harness::manual(Config::new(0));
    let lc = ListenerConfig::on(vec![addr(SERVER_ADDR)]).with_security(server_tls());
    let Some(listener) = h.listen(lc) else {
        violated!("listen with TLS refused");
    };
    let Some(socket) = h.accept(listener, addr(CLIENT_ADDR)) else {
        violated!("accept refused");
    };
    for piece in bytes.chunks(chunk) {
        h.handle(Input::SocketData {
            socket,
            data: piece,
        });
    }
    h.handle(Input::SocketEof { socket });
    if h.machine.stats().live_connections != 0 || h.machine.stats().failed_handshakes != 1 {
        violated!(
            "after bytes and EOF the listener holds {} connections, counted {} failed handshakes",
            h.machine.stats().live_connections,
            h.machine.stats().failed_handshakes
        );
    }
    if h.accept(listener, addr("198.51.100.8:40001")).is_none() {
        violated!("the listener refuses the next connection");
    }
    h.finish();
}

fn tls_established(server: bool, ops: &[u8]) {
    let Some(mut pair) = Pair::establish(true) else {
        violated!("a TLS handshake between two machines failed");
    };
    let t = usize::from(server);
    let p = 1 - t;
    for op in TlsOp::decode_all(ops).into_iter().take(256) {
        let now = pair.h[t].now;
        match op {
            TlsOp::Deliver(n) => {
                pair.deliver(t, usize::from(n));
            }
            TlsOp::Inject(bytes) => {
                let room = pair.h[t]
                    .machine
                    .socket(pair.sock[t])
                    .read_capacity()
                    .min(bytes.len());
                pair.h[t].handle(Input::SocketData {
                    socket: pair.sock[t],
                    data: &bytes[..room],
                });
            }
            TlsOp::Flip(at, x) => {
                let len = pair.to[t].len();
                if len > 0 {
                    pair.to[t][usize::from(at) % len] ^= x.max(1);
                }
            }
            TlsOp::Drop(n) => {
                let n = usize::from(n).min(pair.to[t].len());
                pair.to[t].drain(..n);
            }
            TlsOp::PeerWrite(n) => {
                if let Some(c) = pair.conn[p] {
                    let _ = pair.h[p]
                        .machine
                        .connection(c)
                        .write(&vec![b'p'; usize::from(n)]);
                    pair.h[p].drain();
                }
            }
            TlsOp::PeerClose => {
                if let Some(c) = pair.conn[p] {
                    pair.h[p].machine.connection(c).close(now);
                    pair.h[p].drain();
                }
            }
            TlsOp::PeerAbort => {
                if let Some(c) = pair.conn[p] {
                    pair.h[p].machine.connection(c).abort(now);
                    pair.h[p].drain();
                }
            }
            TlsOp::Receive => {
                if let Some(c) = pair.conn[t] {
                    let _ = pair.h[t].machine.connection(c).receive(now, 1, 1 << 16);
                    pair.h[t].drain();
                }
            }
            TlsOp::Read(n) => {
                if let Some(c) = pair.conn[t] {
                    let mut buf = vec![0; usize::from(n)];
                    let _ = pair.h[t].machine.connection(c).read(&mut buf);
                    pair.h[t].drain();
                }
            }
            TlsOp::Write(n) => {
                if let Some(c) = pair.conn[t] {
                    let _ = pair.h[t]
                        .machine
                        .connection(c)
                        .write(&vec![b't'; usize::from(n)]);
                    pair.h[t].drain();
                }
            }
            TlsOp::Close => {
                if let Some(c) = pair.conn[t] {
                    pair.h[t].machine.connection(c).close(now);
                    pair.h[t].drain();
                }
            }
            TlsOp::Eof => pair.h[t].handle(Input::SocketEof {
                socket: pair.sock[t],
            }),
            TlsOp::Tick(n) => pair.tick(Duration::from_millis(10 * u64::from(n))),
            TlsOp::ReadThrough(n) => pair.read_through(t, usize::from(n)),
            TlsOp::WriteThrough(n, room) => {
                pair.write_through(t, &vec![b't'; usize::from(n)], usize::from(room));
            }
        }
        pair.flow(Some(t));
    }
    // The end: everything still queued arrives, both sides close, and every
    // timer runs out.
    pair.flow(None);
    for i in 0..2 {
        if let Some(c) = pair.conn[i] {
            let now = pair.h[i].now;
            pair.h[i].machine.connection(c).close(now);
            pair.h[i].drain();
        }
    }
    pair.flow(None);
    pair.tick(Duration::from_secs(30));
    pair.flow(None);
    for h in &mut pair.h {
        h.finish();
    }
}
