//! The TCP model: one flow per client socket and per DNS-over-TCP
//! transaction, from the SYN to the close, with the timers a Linux kernel
//! sets. Above a flow ride the modelled TLS flights (`tls.rs`), the DNS
//! messages (`dns.rs`) or the real TLS bytes (`real_tls.rs`); this module
//! carries them and says when a flow is up, reset or timed out.
//!
//! A SYN lost on the way or unanswered is sent again after 1 s, doubling,
//! six times, so a black hole fails after 127 s with `TimedOut`; a
//! rejecting link answers it with a RST one round trip later (`Refused`).
//! A host that exists but does not listen on the port answers RST; an
//! address no host has swallows SYNs. Data goes as MSS-sized segments that
//! obey delay, bandwidth and loss; data lost is resent whole after the
//! RTO, doubling, until the kernel gives up.
//!
//! Models RFC 9293 §3.5 (the three-way handshake; §3.5.2, the RST that
//! answers a SYN to a port nobody listens on), §3.6 (a FIN closes one
//! direction), and RFC 6298 as Linux applies it: §2.1 (the SYN's 1 s RTO),
//! §2.2 (the first RTT sample R gives RTO = R + max(G, 2R), Linux's 200 ms
//! floor standing for G), §5.5 (doubling on each retransmission) and §5.7
//! (3 s once data starts after a lost SYN).

use core::time::Duration;
use std::net::SocketAddr;

use taps_core::{DnsTxnId, FailureReason, Input, Instant, SocketId};

use super::dns::DnsFlow;
use super::{Ctx, Ev, World};
use crate::net::{
    CONTROL_BYTES, DATA_RETRIES, Dir, Fate, MSS, RTO_AFTER_SYN_LOSS, RTO_MIN, SYN_RETRIES, SYN_RTO,
    TCP_OVERHEAD,
};
use crate::server::{CLIENT_HELLO_BYTES, SERVER_FLIGHT_BYTES};
use crate::wire::Wire;

/// Names a flow: a connection's socket, or a DNS transaction over TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FlowKey {
    Sock(SocketId),
    Dns(DnsTxnId),
}

/// A burst of data one side sends before waiting for the other: a modelled
/// TLS handshake's, or a DNS message over TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flight {
    ClientHello,
    ServerHello,
    Ack,
    DnsQuery,
    DnsReply,
}

/// Where a flow is, as far as the client can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FlowState {
    SynSent,
    Open,
    /// What rides on the flow is done (the stack is up, the answer read);
    /// the flow stays open until the client closes it.
    Done,
    /// Failed: nothing more is sent or delivered.
    Dead,
}

/// One TCP connection of the client's, as the world sees it.
#[derive(Debug)]
pub(super) struct Flow {
    /// The DNS transaction it carries; `None`: a connection's socket.
    pub(super) dns: Option<DnsFlow>,
    /// The `[[server]]` entry listening on `remote`, if any.
    pub(super) server: Option<usize>,
    pub(super) interface: u32,
    pub(super) remote: SocketAddr,
    pub(super) state: FlowState,
    pub(super) syn_tries: u8,
    syn_sent_at: Instant,
    rto: Duration,
    /// Real bytes (a scenario with real TLS); `None`: modelled flights.
    pub(super) wire: Option<Box<Wire>>,
}

/// What the caller of [`World::send_data`] schedules.
pub(super) enum Sent {
    /// The data arrives at this time.
    Arrives(Instant),
    /// The data was lost: send it again at this time.
    Lost(Instant),
}

impl Flow {
    /// A flow about to send its first SYN by `interface` (0 when no route
    /// reaches `remote`: it fails before anything leaves).
    pub(super) fn new(
        now: Instant,
        interface: u32,
        remote: SocketAddr,
        server: Option<usize>,
        dns: Option<DnsFlow>,
        wire: Option<Box<Wire>>,
    ) -> Self {
        Flow {
            dns,
            server,
            interface,
            remote,
            state: FlowState::SynSent,
            syn_tries: 0,
            syn_sent_at: now,
            rto: SYN_RTO,
            wire,
        }
    }
}

impl World {
    /// The open flow `key` names (a socket's or a DNS transaction's).
    pub(super) fn flow_mut(&mut self, key: FlowKey) -> Option<&mut Flow> {
        match key {
            FlowKey::Sock(s) => self.socks.get_mut(s.to_raw()),
            FlowKey::Dns(t) => self.dns_tcp.get_mut(t.to_raw()),
        }
    }

    /// The machine opens a socket to `remote` (bound to an interface, or
    /// routed): a new flow, carrying real bytes when the scenario runs real
    /// TLS, sends its SYN.
    pub(super) fn open_tcp(
        &mut self,
        cx: &mut Ctx<'_>,
        socket: SocketId,
        remote: SocketAddr,
        bound: Option<u32>,
    ) {
        let key = FlowKey::Sock(socket);
        let route = self.net.route(remote.ip(), bound);
        let server = cx
            .sc
            .servers
            .iter()
            .position(|s| s.listen.contains(&remote));
        let wire = cx.real.as_ref().map(|r| {
            Box::new(Wire {
                host: server.and_then(|s| r.by_server.get(s).copied().flatten()),
                ..Wire::default()
            })
        });
        let flow = Flow::new(self.now, route.unwrap_or(0), remote, server, None, wire);
        if !self.socks.insert(socket.to_raw(), flow) {
            self.violations.opened_twice(socket);
        }
        self.connect(cx, key, route);
    }

    /// Sends the first SYN of the flow just stored under `key`, by `route`.
    pub(super) fn connect(&mut self, cx: &mut Ctx<'_>, key: FlowKey, route: Option<u32>) {
        match route {
            Some(_) => self.send_syn(cx, key),
            // No interface can reach the family: the kernel says so at once.
            None => self.schedule(self.now, Ev::Fail(key, FailureReason::Unreachable)),
        }
    }

    /// Sends SYN number `syn_tries` and arms its retransmission timer.
    fn send_syn(&mut self, cx: &mut Ctx<'_>, key: FlowKey) {
        let now = self.now;
        let Some(f) = self.flow_mut(key) else { return };
        f.syn_sent_at = now;
        let tries = f.syn_tries;
        let (interface, ip) = (f.interface, f.remote.ip());
        self.schedule(now + SYN_RTO * (1u32 << tries), Ev::SynTimer(key, tries));
        match self
            .net
            .transmit(now, interface, ip, Dir::Up, CONTROL_BYTES, &mut cx.rng)
        {
            Fate::Arrive(at) => self.schedule(at, Ev::SynAtServer(key)),
            Fate::Lost => {}
            Fate::Rejected(at) => self.schedule(at, Ev::RstAtClient(key)),
        }
    }

    /// SYN number `tries` went unanswered for its RTO: send it again, or
    /// give up after the kernel's last retry.
    pub(super) fn syn_timer(&mut self, cx: &mut Ctx<'_>, key: FlowKey, tries: u8) {
        let Some(f) = self.flow_mut(key) else { return };
        if f.state != FlowState::SynSent || f.syn_tries != tries {
            return;
        }
        if tries >= SYN_RETRIES {
            self.fail(cx, key, FailureReason::TimedOut);
        } else {
            f.syn_tries += 1;
            self.send_syn(cx, key);
        }
    }

    /// A SYN reached the far end: a listener answers SYN-ACK (or RST when a
    /// server machine refuses), a host without one RST, no host nothing.
    pub(super) fn syn_at_server(&mut self, cx: &mut Ctx<'_>, key: FlowKey) {
        let Some(f) = self.flow_mut(key) else { return };
        let (listening, ip) = match (&f.dns, f.server) {
            (Some(_), _) => (true, f.remote.ip()),
            (None, Some(_)) => (true, f.remote.ip()),
            (None, None) => (false, f.remote.ip()),
        };
        if listening {
            if !self.accept_at_host(cx, key) {
                // The server machine refused the connection.
                self.send_down(cx, key, Ev::RstAtClient(key));
                return;
            }
            self.send_down(cx, key, Ev::SynAckAtClient(key));
        } else if cx.sc.host_exists(ip) || cx.sc.client.resolvers.iter().any(|r| r.ip() == ip) {
            // The host is there but nothing listens on the port.
            self.send_down(cx, key, Ev::RstAtClient(key));
        }
        // No host has the address: the SYN vanishes and the client retries.
    }

    /// Sends a control packet (SYN-ACK, RST, FIN) from the far end.
    pub(super) fn send_down(&mut self, cx: &mut Ctx<'_>, key: FlowKey, ev: Ev) {
        let Some(f) = self.flow_mut(key) else { return };
        let (interface, ip) = (f.interface, f.remote.ip());
        if let Fate::Arrive(at) = self.net.transmit(
            self.now,
            interface,
            ip,
            Dir::Down,
            CONTROL_BYTES,
            &mut cx.rng,
        ) {
            self.schedule(at, ev);
        }
    }

    /// The SYN-ACK reached the client: the flow is open, its data RTO set
    /// from the handshake, and what rides on it starts.
    pub(super) fn syn_ack(&mut self, cx: &mut Ctx<'_>, key: FlowKey) {
        let now = self.now;
        let Some(f) = self.flow_mut(key) else { return };
        if f.state != FlowState::SynSent {
            return;
        }
        f.state = FlowState::Open;
        f.rto = if f.syn_tries > 0 {
            RTO_AFTER_SYN_LOSS
        } else {
            let rtt = now - f.syn_sent_at;
            rtt + RTO_MIN.max(rtt * 2)
        };
        let server = f.server;
        let wired = f.wire.is_some();
        if f.dns.is_some() {
            self.send_flight(cx, key, Flight::DnsQuery, Dir::Up, 0);
            return;
        }
        if let (true, FlowKey::Sock(socket)) = (wired, key) {
            self.wire_connected(cx, socket);
            return;
        }
        self.tls_start(cx, key, server);
    }

    /// Everything the flow carries is up: a connection's socket is reported
    /// connected.
    pub(super) fn connected(&mut self, cx: &mut Ctx<'_>, key: FlowKey) {
        let Some(f) = self.flow_mut(key) else { return };
        f.state = FlowState::Done;
        if let FlowKey::Sock(socket) = key {
            cx.machine
                .handle(self.now, Input::SocketConnected { socket });
            self.drain(cx);
        }
    }

    /// The flow failed: the machine hears it once, for a socket with
    /// `reason`; the flow stays until the machine closes or releases it.
    pub(super) fn fail(&mut self, cx: &mut Ctx<'_>, key: FlowKey, reason: FailureReason) {
        let Some(f) = self.flow_mut(key) else { return };
        if f.state == FlowState::Dead {
            return;
        }
        f.state = FlowState::Dead;
        match key {
            FlowKey::Sock(socket) => cx
                .machine
                .handle(self.now, Input::SocketFailed { socket, reason }),
            FlowKey::Dns(txn) => cx
                .machine
                .handle(self.now, Input::DnsTransportFailed { txn }),
        }
        self.drain(cx);
    }

    /// A RST reached the client: a refused connect, or a reset one.
    pub(super) fn rst_at_client(&mut self, cx: &mut Ctx<'_>, key: FlowKey) {
        let Some(f) = self.flow_mut(key) else { return };
        let reason = match f.state {
            FlowState::SynSent => FailureReason::Refused,
            FlowState::Open | FlowState::Done => FailureReason::Reset,
            FlowState::Dead => return,
        };
        self.fail(cx, key, reason);
    }

    /// An orderly close by the server: end of stream for a connection's
    /// socket; a DNS TCP transaction just failed.
    pub(super) fn fin_at_client(&mut self, cx: &mut Ctx<'_>, key: FlowKey) {
        let Some(f) = self.flow_mut(key) else { return };
        if !matches!(f.state, FlowState::Open | FlowState::Done) {
            return;
        }
        match key {
            FlowKey::Sock(socket) => {
                cx.machine.handle(self.now, Input::SocketEof { socket });
                self.drain(cx);
            }
            FlowKey::Dns(_) => self.fail(cx, key, FailureReason::Reset),
        }
    }

    /// The client shut its sending side.
    pub(super) fn shutdown_write(&mut self, cx: &mut Ctx<'_>, socket: SocketId) {
        let wired = self.socks.get(socket.to_raw()).map(|f| f.wire.is_some());
        match wired {
            // Real bytes: the FIN follows them up the pipe.
            Some(true) => {
                self.flush_client(cx, socket);
                self.wire_send(cx, FlowKey::Sock(socket), Dir::Up, None);
            }
            // The client closed its side: the modelled server answers the
            // FIN with its own, one round trip later.
            Some(false) => {
                if let Some(f) = self.socks.get(socket.to_raw()) {
                    let rtt = self.net.rtt(f.interface, f.remote.ip());
                    self.schedule(self.now + rtt, Ev::FinAtClient(FlowKey::Sock(socket)));
                }
            }
            None => {}
        }
    }

    /// The client closed or aborted `socket`; its flow ends here. A server
    /// machine behind it learns at once, not a one-way delay later: what
    /// the server makes of a closing connection changes nothing the client
    /// sees, and so no event outlives the client's flow.
    pub(super) fn client_closed(&mut self, cx: &mut Ctx<'_>, socket: SocketId, abort: bool) {
        // Closing what is not open is the contract checker's to report.
        let Some(flow) = self.socks.remove(socket.to_raw()) else {
            return;
        };
        if let Some(w) = flow.wire {
            self.host_lost_client(cx, &w, abort);
        }
    }

    /// Bytes of `flight` on flow `key` (0: a bare ACK).
    fn flight_bytes(&mut self, key: FlowKey, flight: Flight) -> u32 {
        let Some(f) = self.flow_mut(key) else {
            return 0;
        };
        match flight {
            Flight::ClientHello => CLIENT_HELLO_BYTES,
            Flight::ServerHello => SERVER_FLIGHT_BYTES,
            Flight::Ack => 0,
            Flight::DnsQuery => f.dns.as_ref().map_or(0, |d| d.query_len),
            Flight::DnsReply => f.dns.as_ref().map_or(0, DnsFlow::reply_bytes),
        }
    }

    /// Sends a flight (try `tries`) with [`World::send_data`].
    pub(super) fn send_flight(
        &mut self,
        cx: &mut Ctx<'_>,
        key: FlowKey,
        flight: Flight,
        dir: Dir,
        tries: u8,
    ) {
        let bytes = self.flight_bytes(key, flight);
        match self.send_data(cx, key, dir, bytes, tries) {
            Some(Sent::Arrives(at)) => {
                let ev = match dir {
                    Dir::Up => Ev::FlightAtServer(key, flight),
                    Dir::Down => Ev::FlightAtClient(key, flight),
                };
                self.schedule(at, ev);
            }
            Some(Sent::Lost(at)) => {
                self.schedule(at, Ev::FlightTimer(key, flight, dir, tries + 1));
            }
            None => {}
        }
    }

    /// Sends `bytes` of data on flow `key` now, as try `tries` (from 0), as
    /// MSS-sized segments. It arrives when its last segment does; if any
    /// segment is lost the whole lot is resent after the RTO, doubling per
    /// try, which is the delay a lost segment costs a handshake that has no
    /// later data to trigger fast retransmit. A rejecting link's RST and the
    /// kernel giving up after its last retry are scheduled here; then, and
    /// on a dead flow, there is nothing for the caller to do (`None`).
    pub(super) fn send_data(
        &mut self,
        cx: &mut Ctx<'_>,
        key: FlowKey,
        dir: Dir,
        bytes: u32,
        tries: u8,
    ) -> Option<Sent> {
        let now = self.now;
        let f = self.flow_mut(key)?;
        if f.state == FlowState::Dead {
            return None;
        }
        let (interface, ip, rto) = (f.interface, f.remote.ip(), f.rto);
        match self.train(cx, interface, ip, dir, bytes) {
            Fate::Arrive(at) => return Some(Sent::Arrives(at)),
            Fate::Rejected(at) => self.schedule(at, Ev::RstAtClient(key)),
            Fate::Lost if tries < DATA_RETRIES => {
                let backoff = rto * (1u32 << tries.min(16));
                return Some(Sent::Lost(now + backoff));
            }
            Fate::Lost => self.schedule(now, Ev::Fail(key, FailureReason::TimedOut)),
        }
        None
    }

    /// Puts `bytes` on the link now as MSS-sized segments (a bare ACK for
    /// 0). The train arrives when its last segment does, is lost if any
    /// segment is, or is rejected (the answer's arrival) at the first
    /// segment a rejecting link answers.
    fn train(
        &mut self,
        cx: &mut Ctx<'_>,
        interface: u32,
        ip: std::net::IpAddr,
        dir: Dir,
        bytes: u32,
    ) -> Fate {
        let now = self.now;
        let segments = bytes.div_ceil(MSS).max(1);
        let mut arrival = Some(now);
        for s in 0..segments {
            let size = if bytes == 0 {
                CONTROL_BYTES
            } else {
                (bytes - s * MSS).min(MSS) + TCP_OVERHEAD
            };
            // Every segment draws its fate, lost or not, so one loss does not
            // shift the draws of later packets.
            match self
                .net
                .transmit(now, interface, ip, dir, size, &mut cx.rng)
            {
                Fate::Arrive(at) => arrival = arrival.map(|a| a.max(at)),
                Fate::Lost => arrival = None,
                rejected @ Fate::Rejected(_) => return rejected,
            }
        }
        arrival.map_or(Fate::Lost, Fate::Arrive)
    }

    /// A flight reached the far end: a DNS flow's resolver or a
    /// connection's server answers it.
    pub(super) fn flight_at_server(&mut self, cx: &mut Ctx<'_>, key: FlowKey, flight: Flight) {
        let Some(f) = self.flow_mut(key) else { return };
        if f.dns.is_some() {
            self.dns_query_at_server(key, flight);
        } else {
            self.tls_flight_at_server(cx, key, flight);
        }
    }

    /// A flight reached the client: the server's completes a modelled
    /// handshake, the resolver's answers a DNS transaction.
    pub(super) fn flight_at_client(&mut self, cx: &mut Ctx<'_>, key: FlowKey, flight: Flight) {
        let Some(f) = self.flow_mut(key) else { return };
        if f.state != FlowState::Open {
            return;
        }
        match flight {
            Flight::ServerHello => self.connected(cx, key),
            Flight::DnsReply => self.dns_reply_at_client(cx, key),
            Flight::ClientHello | Flight::Ack | Flight::DnsQuery => {}
        }
    }
}
