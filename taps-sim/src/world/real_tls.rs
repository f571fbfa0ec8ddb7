//! Real TLS ([`crate::wire`]): the bytes the client's rustls and the server
//! machines of `tls = "real"` write, carried both ways over the links, and
//! the server machines driven like the client.
//!
//! Once TCP is up the world reports the socket connected and from then on
//! carries every write as a numbered segment over a flow of the TCP model
//! (delay, jitter, bandwidth, and loss as retransmission); reassembly in
//! [`crate::wire::Pipe`] keeps each direction in order. A server machine
//! accepts the connection when the SYN arrives, reads the client's writes
//! its `tls_time` after they arrive, and its own writes, FIN and RST go
//! back down. A server without a machine (reset, close, stalls, plaintext)
//! reacts to the client's first bytes as its `accept` says. Every byte a
//! machine reads is hashed, so `--check-determinism` can compare runs byte
//! for byte.
//!
//! Models no RFC section of its own: the bytes are RFC 8446 as rustls and
//! the server machines write them, and they travel by the TCP model's rules
//! (`tcp.rs`).

use core::time::Duration;
use std::net::SocketAddr;
use std::rc::Rc;

use taps_core::{FailureReason, Input, Output, SocketId};

use super::tcp::{FlowKey, FlowState, Sent};
use super::{Ctx, Ev, TlsFlights, World};
use crate::net::Dir;
use crate::server::{ServerReply, tls_reply};
use crate::wire::{READ_CHUNK, Wire};

/// Write `seq` of a real byte stream (`data` `None`: the FIN).
#[derive(Clone, Debug)]
pub(super) struct Segment {
    pub(super) key: FlowKey,
    dir: Dir,
    seq: u32,
    data: Option<Rc<[u8]>>,
}

/// FNV-1a 64's offset basis: the wire hash of a run that read nothing.
pub(super) const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

impl World {
    /// TCP is up on a socket that carries real bytes: the core's TLS starts
    /// writing its ClientHello, and bytes it wrote early (TCP Fast Open)
    /// leave now too.
    pub(super) fn wire_connected(&mut self, cx: &mut Ctx<'_>, socket: SocketId) {
        cx.machine
            .handle(self.now, Input::SocketConnected { socket });
        self.drain(cx);
        self.flush_client(cx, socket);
    }

    /// The client closed or aborted the socket of wire `w`: the server
    /// machine behind it, if it accepted, reads the end of stream or the
    /// reset.
    pub(super) fn host_lost_client(&mut self, cx: &mut Ctx<'_>, w: &Wire, abort: bool) {
        let (Some(h), Some(ss)) = (w.host, w.server_sock) else {
            return;
        };
        let Some(host) = cx.real.as_mut().and_then(|r| r.hosts.get_mut(h)) else {
            return;
        };
        host.clients.remove(&ss);
        let input = if abort {
            Input::SocketFailed {
                socket: ss,
                reason: FailureReason::Reset,
            }
        } else {
            Input::SocketEof { socket: ss }
        };
        host.machine.handle(self.now, input);
        self.drain_host(cx, h);
    }

    /// Takes what the client wrote on `socket` and sends it up the wire of a
    /// real-TLS flow once TCP is up (until then it waits in the machine). A
    /// modelled flow carries no payload: its bytes leave and vanish.
    pub(super) fn flush_client(&mut self, cx: &mut Ctx<'_>, socket: SocketId) {
        let carry = match self.socks.get(socket.to_raw()) {
            Some(f) if f.wire.is_some() => match f.state {
                FlowState::SynSent => return,
                FlowState::Open => true,
                FlowState::Done | FlowState::Dead => false,
            },
            _ => false,
        };
        let mut data = Vec::new();
        loop {
            let chunk = cx.machine.socket(socket).transmit_data();
            let n = chunk.len();
            if n == 0 {
                break;
            }
            if carry {
                data.extend_from_slice(chunk);
            }
            cx.machine
                .handle(self.now, Input::Transmitted { socket, len: n });
        }
        if !data.is_empty() {
            self.wire_send(cx, FlowKey::Sock(socket), Dir::Up, Some(data.into()));
        }
    }

    /// Sends one write of a real byte stream (`None`: the FIN, after which
    /// that direction sends nothing more).
    pub(super) fn wire_send(
        &mut self,
        cx: &mut Ctx<'_>,
        key: FlowKey,
        dir: Dir,
        data: Option<Rc<[u8]>>,
    ) {
        let Some(f) = self.flow_mut(key) else { return };
        if f.state == FlowState::Dead {
            return;
        }
        let remote = f.remote;
        let Some(w) = f.wire.as_deref_mut() else {
            return;
        };
        let pipe = match dir {
            Dir::Up => &mut w.up,
            Dir::Down => &mut w.down,
        };
        if pipe.fin_sent {
            return;
        }
        pipe.fin_sent = data.is_none();
        let seq = pipe.next_seq();
        let mut flights = None;
        if let Some(d) = &data {
            let first = &mut w.first[dir as usize];
            if first.is_none() {
                *first = Some(d.len() as u32);
                if let [Some(client), Some(server)] = w.first {
                    flights = Some(TlsFlights {
                        remote,
                        client,
                        server,
                    });
                }
            }
        }
        if let Some(t) = flights {
            match self.tls_flights.iter_mut().find(|x| x.remote == remote) {
                Some(x) => {
                    x.client = x.client.min(t.client);
                    x.server = x.server.min(t.server);
                }
                None => self.tls_flights.push(t),
            }
        }
        let seg = Segment {
            key,
            dir,
            seq,
            data,
        };
        self.send_segment(cx, seg, 0);
    }

    /// Puts a write on the link (try `tries`): like a modelled flight
    /// ([`World::send_data`]), it arrives whole or is resent whole. A server
    /// machine reads the client's writes its `tls_time` after they arrive.
    pub(super) fn send_segment(&mut self, cx: &mut Ctx<'_>, seg: Segment, tries: u8) {
        let host = self
            .flow_mut(seg.key)
            .and_then(|f| f.wire.as_ref())
            .and_then(|w| w.host);
        let processing = match (seg.dir, host) {
            (Dir::Up, Some(h)) => cx
                .real
                .as_ref()
                .and_then(|r| r.hosts.get(h))
                .map_or(Duration::ZERO, |h| h.delay),
            _ => Duration::ZERO,
        };
        let bytes = seg
            .data
            .as_ref()
            .map_or(0, |d| u32::try_from(d.len()).unwrap_or(u32::MAX));
        match self.send_data(cx, seg.key, seg.dir, bytes, tries) {
            Some(Sent::Arrives(at)) => self.schedule(at + processing, Ev::Segment(Box::new(seg))),
            Some(Sent::Lost(at)) => self.schedule(at, Ev::SegmentTimer(Box::new(seg), tries + 1)),
            None => {}
        }
    }

    /// Write `seq` reached its far end: the client's or the server
    /// machine's socket reads it in order. A server without a machine
    /// reacts to the client's first bytes as its `accept` says.
    pub(super) fn segment_arrived(&mut self, cx: &mut Ctx<'_>, seg: Segment) {
        let Segment {
            key,
            dir,
            seq,
            data,
        } = seg;
        let FlowKey::Sock(socket) = key else { return };
        let Some(f) = self.socks.get_mut(socket.to_raw()) else {
            return;
        };
        if f.state == FlowState::Dead {
            return;
        }
        let server = f.server;
        let Some(w) = f.wire.as_deref_mut() else {
            return;
        };
        match dir {
            Dir::Down => {
                w.down.arrive(seq, data);
                self.feed_client(cx, socket);
            }
            Dir::Up if w.host.is_some() => {
                w.up.arrive(seq, data);
                self.feed_server(cx, socket);
            }
            Dir::Up => {
                if w.answered {
                    return;
                }
                w.answered = true;
                match server
                    .and_then(|s| cx.sc.servers.get(s))
                    .map(|s| tls_reply(s, true))
                {
                    Some(ServerReply::Reset) => self.send_down(cx, key, Ev::RstAtClient(key)),
                    Some(ServerReply::Close) => self.send_down(cx, key, Ev::FinAtClient(key)),
                    // A stalled server reads and never answers.
                    _ => {}
                }
            }
        }
    }

    /// Adds bytes a machine read to the run's count and FNV-1a hash.
    fn hash_wire(&mut self, data: &[u8]) {
        self.wire_bytes += data.len() as u64;
        for b in data {
            self.wire_hash = (self.wire_hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// Hands the client what arrived on `socket`, as much as it can take;
    /// then the end of stream, if the FIN came. The rest waits for
    /// `ResumeReading`.
    pub(super) fn feed_client(&mut self, cx: &mut Ctx<'_>, socket: SocketId) {
        let now = self.now;
        loop {
            let Some(w) = self
                .socks
                .get_mut(socket.to_raw())
                .filter(|f| f.state == FlowState::Open)
                .and_then(|f| f.wire.as_deref_mut())
            else {
                return;
            };
            if w.down.inbox.is_empty() {
                if w.down.eof {
                    w.down.eof = false;
                    cx.machine.handle(now, Input::SocketEof { socket });
                    self.drain(cx);
                }
                return;
            }
            let n = cx
                .machine
                .socket(socket)
                .read_capacity()
                .min(w.down.inbox.len())
                .min(READ_CHUNK);
            if n == 0 {
                return;
            }
            let mut rx = std::mem::take(&mut self.rx);
            rx.clear();
            rx.extend(w.down.inbox.drain(..n));
            self.hash_wire(&rx);
            cx.machine
                .handle(now, Input::SocketData { socket, data: &rx });
            self.rx = rx;
            self.drain(cx);
        }
    }

    /// Hands the server machine behind the client's `socket` what arrived,
    /// as [`World::feed_client`] does for the client.
    fn feed_server(&mut self, cx: &mut Ctx<'_>, socket: SocketId) {
        let now = self.now;
        loop {
            let Some(w) = self
                .socks
                .get_mut(socket.to_raw())
                .and_then(|f| f.wire.as_deref_mut())
            else {
                return;
            };
            let (Some(h), Some(ss)) = (w.host, w.server_sock) else {
                return;
            };
            let Some(host) = cx.real.as_mut().and_then(|r| r.hosts.get_mut(h)) else {
                return;
            };
            if w.up.inbox.is_empty() {
                if w.up.eof {
                    w.up.eof = false;
                    host.machine.handle(now, Input::SocketEof { socket: ss });
                    self.drain_host(cx, h);
                }
                return;
            }
            let n = host
                .machine
                .socket(ss)
                .read_capacity()
                .min(w.up.inbox.len())
                .min(READ_CHUNK);
            if n == 0 {
                return;
            }
            let mut rx = std::mem::take(&mut self.rx);
            rx.clear();
            rx.extend(w.up.inbox.drain(..n));
            self.hash_wire(&rx);
            host.machine.handle(
                now,
                Input::SocketData {
                    socket: ss,
                    data: &rx,
                },
            );
            self.rx = rx;
            self.drain_host(cx, h);
        }
    }

    /// A SYN reached a server machine's address: it accepts the connection
    /// (once; a resent SYN finds it accepted). False when it refuses.
    pub(super) fn accept_at_host(&mut self, cx: &mut Ctx<'_>, key: FlowKey) -> bool {
        let FlowKey::Sock(socket) = key else {
            return true;
        };
        let Some(f) = self.socks.get_mut(socket.to_raw()) else {
            return true;
        };
        let (interface, remote) = (f.interface, f.remote);
        let Some(w) = f.wire.as_deref_mut() else {
            return true;
        };
        let Some(h) = w.host.filter(|_| w.server_sock.is_none()) else {
            return true;
        };
        let Some(host) = cx.real.as_mut().and_then(|r| r.hosts.get_mut(h)) else {
            return true;
        };
        // The client's address as the server sees it: its interface's
        // address of the family, and a port told apart by the socket.
        let ip = cx
            .sc
            .client
            .interfaces
            .iter()
            .find(|i| i.index == interface)
            .and_then(|i| {
                i.addrs
                    .iter()
                    .find(|a| a.addr.is_ipv6() == remote.is_ipv6())
            })
            .map_or(
                if remote.is_ipv6() {
                    std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
                } else {
                    std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
                },
                |a| a.addr,
            );
        let port = 32768 + (socket.to_raw().0 % 28000) as u16;
        match host
            .machine
            .listener(host.listener)
            .accept(self.now, SocketAddr::new(ip, port))
        {
            Ok(ss) => {
                w.server_sock = Some(ss);
                host.clients.insert(ss, socket);
                self.drain_host(cx, h);
                true
            }
            Err(_) => false,
        }
    }

    /// Performs every output server machine `h` has: its writes go down the
    /// wire to the client, its FIN follows them, its RST overtakes them.
    pub(super) fn drain_host(&mut self, cx: &mut Ctx<'_>, h: usize) {
        let now = self.now;
        loop {
            let Some(host) = cx.real.as_mut().and_then(|r| r.hosts.get_mut(h)) else {
                return;
            };
            let Some(out) = host.machine.poll() else {
                return;
            };
            match out {
                Output::Transmit { socket: ss } | Output::ShutdownWrite { socket: ss } => {
                    let fin = matches!(out, Output::ShutdownWrite { .. });
                    let client = host.clients.get(&ss).copied();
                    let mut data = Vec::new();
                    loop {
                        let chunk = host.machine.socket(ss).transmit_data();
                        let n = chunk.len();
                        if n == 0 {
                            break;
                        }
                        if client.is_some() {
                            data.extend_from_slice(chunk);
                        }
                        host.machine
                            .handle(now, Input::Transmitted { socket: ss, len: n });
                    }
                    let Some(client) = client else { continue };
                    let key = FlowKey::Sock(client);
                    if !data.is_empty() {
                        self.wire_send(cx, key, Dir::Down, Some(data.into()));
                    }
                    if fin {
                        self.wire_send(cx, key, Dir::Down, None);
                    }
                }
                Output::CloseSocket { socket: ss } => {
                    if let Some(client) = host.clients.remove(&ss) {
                        self.wire_send(cx, FlowKey::Sock(client), Dir::Down, None);
                    }
                }
                Output::AbortSocket { socket: ss } => {
                    if let Some(client) = host.clients.remove(&ss) {
                        let key = FlowKey::Sock(client);
                        self.send_down(cx, key, Ev::RstAtClient(key));
                    }
                }
                Output::ResumeReading { socket: ss } => {
                    if let Some(client) = host.clients.get(&ss).copied() {
                        self.feed_server(cx, client);
                    }
                }
                // The world set the listener up; a server resolves and
                // opens nothing; what its application is told (a connection
                // received, a peer gone) needs no answer.
                Output::Dns(_)
                | Output::OpenTcp { .. }
                | Output::Listen { .. }
                | Output::StopListening { .. }
                | Output::Event(_) => {}
                other => self.violations.unperformable_by_server(&other),
            }
        }
    }
}
