//! The simulated world and its virtual clock: [`World`] runs one
//! `taps_core` machine against a [`Scenario`], performing every output the
//! machine makes and feeding it what the simulated network does.
//!
//! This module is the clock and the event loop: the heap of events, the
//! choice of what runs next, the connections a scenario starts, and the end
//! of a run. It models no protocol itself, so it cites no RFC; each part of
//! the world lives in a submodule that names the RFC sections it models:
//!
//! - `tcp.rs`: the TCP model, on which every flight and byte travels
//!   (RFC 9293 §3.5, §3.6; RFC 6298 as Linux applies it);
//! - `tls.rs`: modelled TLS flights (RFC 8446 §2);
//! - `real_tls.rs`: real TLS bytes and the server machines behind them;
//! - `dns.rs`: DNS over UDP and TCP (RFC 1035 §4.2, RFC 7766 §8,
//!   RFC 5452 §9.1);
//! - `checks.rs`: the contracts every run is checked against;
//! - `run.rs`: what a run is asked and returns (re-exported here);
//! - `slots.rs`: the tables of open sockets and DNS transactions.
//!
//! # Clock
//!
//! Time jumps from event to event. World events (packets arriving, timers of
//! the simulated kernels and servers, scenario `[[event]]`s) wait in a heap
//! keyed by (time, sequence number), so events due at the same time run in
//! the order they were scheduled. The machine's own deadline
//! (`poll_timeout`) competes with the heap; at equal times the world's event
//! runs first (the packet was already there when the timer fired). Time
//! never runs backwards: nothing is ever scheduled before `now`, and a
//! machine deadline in the past runs at `now`. A run stops with
//! [`SimError::StepLimit`] after [`RunOptions::max_steps`] steps, so a
//! livelock is an error rather than a hang.
//!
//! # What is modelled
//!
//! - **Interfaces** from the scenario reach the core through
//!   `set_interfaces` and, when `[[event]]`s change them,
//!   `Input::InterfacesChanged`. Sockets the core binds to an interface
//!   leave by it; unbound ones (DNS) take the first interface that is up and
//!   has an address of the destination's family.
//! - **Links** ([`crate::net`]): delay, jitter, loss, bandwidth, and pass,
//!   blackhole or reject, per interface, destination prefix and direction.
//! - **TCP** (RFC 9293 §3.5 handshake, RFC 6298 timers as Linux sets them):
//!   SYN, SYN-ACK; a lost SYN or SYN-ACK is retried after 1 s, doubling, six
//!   times, so a black hole fails after 127 s with `TimedOut`. A rejecting
//!   link answers the SYN with a RST one round trip later (`Refused`). A host
//!   that exists but does not listen on the port answers RST; an address no
//!   host has swallows SYNs. Data flights (handshakes above TCP, DNS over
//!   TCP) obey delay, bandwidth and loss; a lost flight is resent after the
//!   RTO (RTT + max(200 ms, 2 RTT), doubling; 3 s after a lost SYN,
//!   RFC 6298 §5.7).
//! - **Modelled TLS** ([`crate::server`]): one round trip after TCP plus the
//!   server's `tls_time`; only then does the world report `SocketConnected`,
//!   and the core, whose preconnection carries no security, sees the whole
//!   stack become ready at once. `stall-after-tcp` and `stall-tls` never
//!   report the attempt connected; `reset` and `close` fail it with `Reset`.
//! - **Real TLS** ([`crate::wire`]), when the scenario
//!   [runs it](Scenario::real_tls): the client's preconnection trusts the
//!   scenario's test CA, the world reports `SocketConnected` when the
//!   SYN-ACK arrives (the core records the attempt's transport up), and from
//!   then on carries the bytes the client's per-attempt rustls and the
//!   server host's machine write, both ways, as data flights: delay, jitter,
//!   bandwidth and loss (as retransmission) apply, and reassembly keeps them
//!   in order. The attempt is ready when the core's TLS says so, or fails
//!   with its TLS reason (a certificate for another name, say). Servers that
//!   stall never read (`stall-after-tcp`, `stall-tls`: the client's bytes
//!   vanish, nothing comes back); `reset` and `close` answer the client's
//!   first bytes with a RST or a FIN. When the client closes or aborts a
//!   socket, the server machine learns at once.
//! - **DNS** over UDP and TCP to the scenario's resolvers, answered by
//!   [`Responder`] with real messages, plus forged answers (wrong id, wrong
//!   source) just before the real one when the scenario asks for them.
//!
//! Every `Output` is performed and checked: whatever breaks the core's
//! output contract (the test kit's one checker: a `CloseSocket` or `Release`
//! for something not open, a second settlement of a connection, an event out
//! of RFC 9622 order), an attempt that starts after the race settled or
//! never ends, or a machine that is not idle when every connection has
//! settled are recorded as [`RunResult::violations`].

mod checks;
mod dns;
mod real_tls;
mod run;
mod slots;
mod tcp;
mod tls;

pub use run::{
    ConnOutcome, ConnRun, DEFAULT_MAX_STEPS, HORIZON, RunOptions, RunResult, SimError, TlsFlights,
};

use core::cmp::Ordering;
use std::collections::BinaryHeap;
use std::rc::Rc;

use taps_core::{
    Config, ConnectionId, DnsTxnId, Event, FailureReason, Input, Instant, Interface, Machine,
    Output, Preconnection, Rng, Trace,
    dns::{DnsAction, DnsConfig},
};

use crate::net::{Dir, Net};
use crate::scenario::Scenario;
use crate::server::Responder;
use crate::wire::RealTls;

use self::checks::Violations;
use self::dns::UdpTxn;
use self::real_tls::{FNV_BASIS, Segment};
use self::slots::SlotMap;
use self::tcp::{Flight, Flow, FlowKey, FlowState};

/// Everything the world schedules. Each names the flow or transaction it
/// concerns, so that [`World::is_live`] can drop it unrun once that is gone.
#[derive(Clone, Debug)]
enum Ev {
    Initiate(usize),
    World(usize),
    SynTimer(FlowKey, u8),
    SynAtServer(FlowKey),
    SynAckAtClient(FlowKey),
    RstAtClient(FlowKey),
    FinAtClient(FlowKey),
    FlightAtServer(FlowKey, Flight),
    FlightAtClient(FlowKey, Flight),
    FlightTimer(FlowKey, Flight, Dir, u8),
    /// A write of a real byte stream reaches its far end. Boxed, so the
    /// events of modelled worlds (population runs) stay small.
    Segment(Box<Segment>),
    /// A write was lost: send it again (this is try `u8`).
    SegmentTimer(Box<Segment>, u8),
    ServerSend(FlowKey, Flight),
    Fail(FlowKey, FailureReason),
    UdpAtServer(DnsTxnId),
    UdpReplySend(DnsTxnId),
    UdpAtClient {
        txn: DnsTxnId,
        /// From port 5353 of the resolver instead of its own address.
        forged_source: bool,
        bytes: Option<Rc<[u8]>>,
        id: u16,
    },
    UdpUnreachable(DnsTxnId),
}

/// What runs next in the main loop; the order of the variants breaks ties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Event,
    Client,
    Host(usize),
}

/// An event in the heap: due at `at`, and among equal times in the order
/// it was scheduled (`seq`), so runs repeat.
struct Sched {
    at: Instant,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Sched {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Sched {}
impl PartialOrd for Sched {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Sched {
    // Reversed: BinaryHeap is a max-heap and the earliest must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A reusable simulator: buffers survive from one run to the next, which
/// matters for population runs of many small worlds.
#[derive(Default)]
pub struct World {
    heap: BinaryHeap<Sched>,
    seq: u64,
    now: Instant,
    net: Net,
    socks: SlotMap<Flow>,
    dns_tcp: SlotMap<Flow>,
    udp: SlotMap<UdpTxn>,
    responder: Responder,
    scratch: Vec<u8>,
    conns: Vec<ConnRun>,
    violations: Violations,
    settled: usize,
    /// Reads handed to a machine (taken while in use: feeding may recurse).
    rx: Vec<u8>,
    tls_flights: Vec<TlsFlights>,
    wire_bytes: u64,
    wire_hash: u64,
    /// Set while the events of one virtual instant are being handed to the
    /// client machine: its outputs wait for one drain after the last of
    /// them (ARCHITECTURE.md "The core contract": inputs handled before
    /// one drain count as one instant).
    same_instant: bool,
}

/// What one run works with, beside the world's reusable buffers: kept
/// apart from [`World`] so a run can borrow both at once.
struct Ctx<'s> {
    sc: &'s Scenario,
    machine: Machine,
    rng: Rng,
    pre: Preconnection,
    /// The server machines and client parameters of real TLS.
    real: Option<RealTls>,
}

impl World {
    /// A world with empty buffers.
    pub fn new() -> Self {
        World::default()
    }

    /// Runs `sc` under `opts` to the end.
    pub fn run(&mut self, sc: &Scenario, opts: RunOptions) -> Result<RunResult, SimError> {
        self.heap.clear();
        self.seq = 0;
        self.now = Instant::ZERO;
        self.net.reset(&sc.links, &sc.client.interfaces);
        self.socks.clear();
        self.dns_tcp.clear();
        self.udp.clear();
        self.conns.clear();
        self.violations.clear();
        self.settled = 0;
        self.tls_flights.clear();
        self.wire_bytes = 0;
        self.wire_hash = FNV_BASIS;

        // Real TLS only where the scenario asks for it: population runs stay
        // on the modelled path and pay nothing for it.
        let real = if sc.real_tls() {
            Some(RealTls::new(sc, opts.seed).map_err(|e| SimError::Tls(e.to_string()))?)
        } else {
            None
        };
        let mut race = sc.connect.race_config(opts.policy);
        race.rtt_attempt_delay &= !opts.static_attempt_delay;
        let mut config = Config {
            seed: opts.seed,
            race,
            dns: DnsConfig {
                servers: sc.client.resolvers.clone(),
                timeout: sc.dns.timeout,
                attempts: sc.dns.attempts,
                search: sc.client.search.clone(),
                ndots: sc.client.ndots,
                ..DnsConfig::default()
            },
            ..Config::new(0)
        };
        let mut pre = sc.connect.preconnection(opts.policy).with_race(race);
        if let Some(r) = &real {
            config.tls = Some(r.client_env.clone());
            pre = pre.with_security(r.security.clone());
        }
        let mut cx = Ctx {
            sc,
            machine: Machine::new(config),
            // A stream of its own, so the world's draws never mirror the
            // machine's (both start from the run's seed).
            rng: Rng::new(opts.seed ^ 0x5349_4d5f_574f_524c),
            pre,
            real,
        };
        cx.machine.handle(
            Instant::ZERO,
            Input::InterfacesChanged(sc.client.interfaces.clone()),
        );
        if !sc.client.tcp_metrics.is_empty() {
            cx.machine
                .handle(Instant::ZERO, Input::KernelRtts(&sc.client.tcp_metrics));
        }
        self.drain(&mut cx);
        // Scenario events first, so one due at 0 applies before the first
        // connection starts.
        for (i, e) in sc.events.iter().enumerate() {
            self.schedule(Instant::ZERO + e.at, Ev::World(i));
        }
        self.schedule(Instant::ZERO, Ev::Initiate(0));

        let mut steps: u64 = 0;
        loop {
            while let Some(top) = self.heap.peek() {
                if self.is_live(&top.ev, sc) {
                    break;
                }
                self.heap.pop();
            }
            // Among equal times: the world's event, then the client's
            // timer, then the server machines' (a fixed order, so runs
            // repeat). Written out, not as a min over a list: this is the
            // hottest loop of population runs.
            let mut next = self.heap.peek().map(|s| (s.at, Next::Event));
            if let Some(t) = cx.machine.poll_timeout()
                && next.is_none_or(|(e, _)| t < e)
            {
                next = Some((t, Next::Client));
            }
            if let Some((t, h)) = cx.real.as_ref().and_then(RealTls::next_timer)
                && next.is_none_or(|(e, _)| t < e)
            {
                next = Some((t, Next::Host(h)));
            }
            let Some((at, next)) = next else { break };
            let at = at.max(self.now);
            if at > Instant::ZERO + HORIZON {
                return Err(SimError::Horizon { at });
            }
            steps += 1;
            if steps > opts.max_steps {
                return Err(SimError::StepLimit {
                    steps: opts.max_steps,
                    at,
                });
            }
            self.now = at;
            match next {
                Next::Client => {
                    cx.machine.handle_timeout(at);
                    self.drain(&mut cx);
                }
                Next::Host(h) => {
                    if let Some(host) = cx.real.as_mut().and_then(|r| r.hosts.get_mut(h)) {
                        host.machine.handle_timeout(at);
                    }
                    self.drain_host(&mut cx, h);
                }
                Next::Event => {
                    // Everything the world does at this instant reaches the
                    // machine before it is drained, as a real adapter reports
                    // every datagram of one wake-up before draining: answers
                    // that arrive together are sorted together (RFC 6724
                    // §6), while one that arrives earlier is drained alone
                    // and starts the race at once (HEv3 §4).
                    self.same_instant = true;
                    let mut handed = 0u64;
                    while let Some(s) = self.heap.peek_mut().and_then(|top| {
                        (top.at <= at).then(|| std::collections::binary_heap::PeekMut::pop(top))
                    }) {
                        if !self.is_live(&s.ev, sc) {
                            continue;
                        }
                        // The first was counted as this loop's step.
                        handed += 1;
                        steps += u64::from(handed > 1);
                        if steps > opts.max_steps {
                            return Err(SimError::StepLimit {
                                steps: opts.max_steps,
                                at,
                            });
                        }
                        self.process(&mut cx, s.ev);
                    }
                    self.same_instant = false;
                    self.drain(&mut cx);
                }
            }
        }
        let end = self.now;
        self.finish(&mut cx);
        Ok(RunResult {
            policy: opts.policy,
            seed: opts.seed,
            connections: std::mem::take(&mut self.conns),
            end,
            steps,
            violations: self.violations.take(),
            stats: cx.machine.stats(),
            tls_flights: std::mem::take(&mut self.tls_flights),
            wire_bytes: self.wire_bytes,
            wire_hash: self.wire_hash,
        })
    }

    /// Queues `ev` for `at`, or for now if `at` has passed: time never
    /// runs backwards.
    fn schedule(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.heap.push(Sched {
            at: at.max(self.now),
            seq: self.seq,
            ev,
        });
    }

    /// Whether every connection the scenario asks for has settled.
    fn all_settled(&self, sc: &Scenario) -> bool {
        self.settled >= sc.connect.repeat as usize
    }

    /// Whether an event still matters: its flow or transaction is open, or
    /// (for scenario events) some connection is still to settle.
    fn is_live(&self, ev: &Ev, sc: &Scenario) -> bool {
        let flow = |k: &FlowKey| match k {
            FlowKey::Sock(s) => self.socks.contains(s.to_raw()),
            FlowKey::Dns(t) => self.dns_tcp.contains(t.to_raw()),
        };
        match ev {
            Ev::Initiate(_) => true,
            Ev::World(_) => !self.all_settled(sc),
            // A SYN timer matters only while that very SYN is unanswered.
            Ev::SynTimer(FlowKey::Sock(s), tries) => self
                .socks
                .get(s.to_raw())
                .is_some_and(|f| f.state == FlowState::SynSent && f.syn_tries == *tries),
            Ev::SynTimer(FlowKey::Dns(t), tries) => self
                .dns_tcp
                .get(t.to_raw())
                .is_some_and(|f| f.state == FlowState::SynSent && f.syn_tries == *tries),
            Ev::SynAtServer(k)
            | Ev::SynAckAtClient(k)
            | Ev::RstAtClient(k)
            | Ev::FinAtClient(k)
            | Ev::FlightAtServer(k, _)
            | Ev::FlightAtClient(k, _)
            | Ev::FlightTimer(k, ..)
            | Ev::ServerSend(k, _)
            | Ev::Fail(k, _) => flow(k),
            Ev::Segment(seg) | Ev::SegmentTimer(seg, _) => flow(&seg.key),
            Ev::UdpAtServer(t)
            | Ev::UdpReplySend(t)
            | Ev::UdpAtClient { txn: t, .. }
            | Ev::UdpUnreachable(t) => self.udp.contains(t.to_raw()),
        }
    }

    /// Performs every output the machine has, unless the events of this
    /// instant are still arriving (see [`World::same_instant`]).
    fn drain(&mut self, cx: &mut Ctx<'_>) {
        if self.same_instant {
            return;
        }
        while let Some(out) = cx.machine.poll() {
            self.violations.output(&out);
            match out {
                Output::Dns(DnsAction::Send(send)) => self.dns_send(cx, send),
                Output::Dns(DnsAction::Release(txn)) => self.dns_release(txn),
                Output::OpenTcp {
                    socket,
                    remote,
                    interface,
                    ..
                } => self.open_tcp(cx, socket, remote, interface),
                Output::CloseSocket { socket } => self.client_closed(cx, socket, false),
                Output::AbortSocket { socket } => self.client_closed(cx, socket, true),
                Output::Transmit { socket } => self.flush_client(cx, socket),
                Output::ShutdownWrite { socket } => self.shutdown_write(cx, socket),
                Output::ResumeReading { socket } => self.feed_client(cx, socket),
                Output::Listen { .. } | Output::StopListening { .. } => {}
                Output::Event(e) => self.on_event(cx, e),
                other => self.violations.unperformable(&other),
            }
        }
    }

    /// Records a connection's settlement (ready or failed) with its trace,
    /// and starts the next one.
    fn on_event(&mut self, cx: &mut Ctx<'_>, e: Event) {
        let (conn, outcome) = match e {
            Event::Ready {
                conn,
                remote,
                interface,
                ..
            } => (conn, ConnOutcome::Ready { remote, interface }),
            Event::EstablishmentError { conn, error } => (conn, ConnOutcome::Failed(error)),
            _ => return,
        };
        let now = self.now;
        // An event for a connection never initiated, or a second
        // settlement, broke the output contract, which the checker has
        // reported; the world keeps the first settlement.
        let Some(i) = self.conns.iter().position(|c| c.id == Some(conn)) else {
            return;
        };
        if self.conns[i].settled.is_some() {
            return;
        }
        let c = &mut self.conns[i];
        c.settled = Some(now);
        c.outcome = outcome;
        c.trace = cx
            .machine
            .connection_info(conn)
            .map(|c| c.trace())
            .cloned()
            .unwrap_or_default();
        self.settle_next(cx, i);
    }

    /// Connection `i` settled: the next starts `connect.gap` later.
    fn settle_next(&mut self, cx: &Ctx<'_>, i: usize) {
        self.settled += 1;
        if i + 1 < cx.sc.connect.repeat as usize {
            let at = self.now + cx.sc.connect.gap;
            self.schedule(at, Ev::Initiate(i + 1));
        }
    }

    /// Runs one event: starts a connection or hands the event to the part
    /// of the world it belongs to.
    fn process(&mut self, cx: &mut Ctx<'_>, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Initiate(i) => {
                let result = cx.machine.initiate(now, &cx.pre);
                let mut run = ConnRun {
                    started: now,
                    settled: None,
                    outcome: ConnOutcome::Stalled,
                    trace: Trace::new(now),
                    id: None,
                };
                match result {
                    Ok(id) => {
                        self.violations.initiated(id);
                        run.id = Some(id);
                        self.conns.push(run);
                        self.drain(cx);
                    }
                    Err(e) => {
                        run.settled = Some(now);
                        run.outcome = ConnOutcome::Refused(e.to_string());
                        self.conns.push(run);
                        self.settle_next(cx, i);
                    }
                }
            }
            Ev::World(i) => self.world_event(cx, i),
            Ev::SynTimer(key, tries) => self.syn_timer(cx, key, tries),
            Ev::SynAtServer(key) => self.syn_at_server(cx, key),
            Ev::SynAckAtClient(key) => self.syn_ack(cx, key),
            Ev::RstAtClient(key) => self.rst_at_client(cx, key),
            Ev::FinAtClient(key) => self.fin_at_client(cx, key),
            Ev::FlightAtServer(key, flight) => self.flight_at_server(cx, key, flight),
            Ev::FlightAtClient(key, flight) => self.flight_at_client(cx, key, flight),
            Ev::FlightTimer(key, flight, dir, tries) => {
                self.send_flight(cx, key, flight, dir, tries)
            }
            Ev::ServerSend(key, flight) => self.send_flight(cx, key, flight, Dir::Down, 0),
            Ev::Segment(seg) => self.segment_arrived(cx, *seg),
            Ev::SegmentTimer(seg, tries) => self.send_segment(cx, *seg, tries),
            Ev::Fail(key, reason) => self.fail(cx, key, reason),
            Ev::UdpAtServer(txn) => self.udp_at_server(txn),
            Ev::UdpReplySend(txn) => self.udp_reply(cx, txn),
            Ev::UdpAtClient {
                txn,
                forged_source,
                bytes,
                id,
            } => self.udp_at_client(cx, txn, forged_source, bytes, id),
            Ev::UdpUnreachable(txn) => self.udp_unreachable(cx, txn),
        }
    }

    /// Applies the scenario's `[[event]]` `i`; the machine hears of it only
    /// when the interfaces changed.
    fn world_event(&mut self, cx: &mut Ctx<'_>, i: usize) {
        let Some(e) = cx.sc.events.get(i) else { return };
        if self.net.apply(&e.change) {
            let list: Vec<Interface> = self.net.interfaces().to_vec();
            cx.machine.handle(self.now, Input::InterfacesChanged(list));
            self.drain(cx);
        }
    }

    /// Records what is left, checks the run's contracts, and closes every
    /// connection.
    fn finish(&mut self, cx: &mut Ctx<'_>) {
        let all_settled = self.conns.iter().all(|c| c.settled.is_some());
        for (n, c) in self.conns.iter_mut().enumerate() {
            if c.settled.is_none() {
                if let Some(id) = c.id {
                    c.trace = cx
                        .machine
                        .connection_info(id)
                        .map(|c| c.trace())
                        .cloned()
                        .unwrap_or_default();
                }
                continue;
            }
            self.violations.check_trace(n + 1, &c.trace);
        }
        if all_settled && self.conns.len() == cx.sc.connect.repeat as usize && !cx.machine.is_idle()
        {
            self.violations.not_idle();
        }
        // The run is over: tear everything down at once (an orderly close
        // would need the world to run on for the FIN exchange).
        let ids: Vec<ConnectionId> = self.conns.iter().filter_map(|c| c.id).collect();
        for id in ids {
            cx.machine.connection(id).abort(self.now);
            self.drain(cx);
        }
        self.violations
            .leaks(self.socks.len(), self.udp.len() + self.dns_tcp.len());
    }
}
