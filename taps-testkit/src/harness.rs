//! One `Machine` driven in virtual time, with every output checked by the
//! [`Checker`] and recorded as it comes, then
//! handed to a [`Network`] to perform: [`Manual`] performs nothing (the
//! fuzz targets move bytes and answer queries themselves), the
//! [`world`](crate::world)'s scripted network answers DNS queries and SYNs
//! on a schedule. Timers and the network's deliveries run in time order,
//! each at its own time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use taps_core::{
    Config, ConnectionId, DnsTxnId, EstablishmentError, Event, InitiateError, Input, Instant,
    ListenerConfig, ListenerId, Machine, Message, MessageId, Output, Preconnection, SocketId,
    dns::{DnsAction, DnsSend, DnsTransport},
};

use crate::contract::{Checker, nonempty, tolerated};
use crate::dns::{Question, parse_query};

/// Bound on rounds of timers and deliveries in one run, far above anything
/// legitimate (a few per attempt and query): more means timers re-arm
/// without end.
const MAX_ROUNDS: usize = 10_000;

/// What performs a machine's outputs: the world around it.
pub trait Network {
    /// Performs `out`, which the harness has checked and is about to
    /// record. May hand the machine inputs at once (their outputs are
    /// drained next) or schedule them for later.
    fn perform(&mut self, machine: &mut Machine, now: Instant, out: &Output);

    /// When the next scheduled delivery falls due, if any is.
    fn next_due(&self) -> Option<Instant> {
        None
    }

    /// Hands the machine the earliest delivery due at `now` or before, if
    /// any; returns whether there was one.
    fn deliver_due(&mut self, machine: &mut Machine, now: Instant) -> bool {
        let _ = (machine, now);
        false
    }
}

/// A network that performs nothing: the caller reads what the harness
/// recorded and acts on it by hand.
#[derive(Clone, Copy, Debug, Default)]
pub struct Manual;

impl Network for Manual {
    fn perform(&mut self, _: &mut Machine, _: Instant, _: &Output) {}
}

/// A DNS query the machine sent.
#[derive(Clone, Debug)]
pub struct Query {
    /// When.
    pub at: Instant,
    /// The send, as the machine asked for it.
    pub send: DnsSend,
    /// Its question, as a server reads it.
    pub question: Question,
}

/// A socket the machine opened (`OpenTcp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    /// When.
    pub at: Instant,
    /// Its id.
    pub socket: SocketId,
    /// Where to.
    pub remote: SocketAddr,
    /// The interface it is bound to, if any.
    pub interface: Option<u32>,
    /// Keep-alive and user timeout asked for.
    pub options: taps_core::TcpSocketOptions,
}

/// How the machine ended (one direction of) a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketEnd {
    /// `ShutdownWrite`: FIN after the pending bytes.
    Shutdown,
    /// `CloseSocket`.
    Close,
    /// `AbortSocket`: RST.
    Abort,
}

/// One machine, its clock, its network, and everything it said, checked as
/// it comes.
pub struct Harness<N = Manual> {
    /// The machine under test.
    pub machine: Machine,
    /// Virtual time; only moves forwards.
    pub now: Instant,
    /// The output contract.
    pub check: Checker,
    /// Every event, with when it was polled, in order.
    pub events: Vec<(Instant, Event)>,
    /// Every DNS query sent (a retransmission appears again).
    pub queries: Vec<Query>,
    /// Every `OpenTcp`.
    pub opened: Vec<Opened>,
    /// Every listening address asked for.
    pub listening: Vec<(ListenerId, SocketAddr)>,
    /// Every `ShutdownWrite`, `CloseSocket` and `AbortSocket`, in order.
    pub socket_ends: Vec<(SocketId, SocketEnd)>,
    /// What performs the outputs.
    pub net: N,
}

impl Harness {
    /// A harness around a fresh machine whose outputs the caller performs
    /// ([`Manual`]); TLS runs with ring and the wall clock unless `config`
    /// names another environment.
    pub fn manual(mut config: Config) -> Self {
        config.tls.get_or_insert_with(crate::tls::wall_clock);
        Harness::with_network(Machine::new(config), Manual)
    }
}

/// The question of a query the machine sent; a query no server can parse
/// breaks the contract.
pub fn question_of(send: &DnsSend) -> Question {
    let message = match send.transport {
        DnsTransport::Udp => &send.payload[..],
        DnsTransport::Tcp => send.payload.get(2..).unwrap_or_default(),
    };
    match parse_query(message) {
        Ok(q) => q,
        Err(e) => violated!("the machine sent a query it cannot parse: {e}"),
    }
}

impl<N: Network> Harness<N> {
    /// A harness around `machine`, at time zero, with `net` performing its
    /// outputs.
    pub fn with_network(machine: Machine, net: N) -> Self {
        Harness {
            machine,
            now: Instant::ZERO,
            check: Checker::default(),
            events: Vec::new(),
            queries: Vec::new(),
            opened: Vec::new(),
            listening: Vec::new(),
            socket_ends: Vec::new(),
            net,
        }
    }

    /// Polls every output: checks it, has the network perform it, records
    /// it. The machine's socket table must then agree with the sockets its
    /// outputs opened and closed.
    pub fn drain(&mut self) {
        while let Some(out) = self.machine.poll() {
            if tracing() {
                eprintln!("  {} {out:?}", self.now);
            }
            self.check.output(&out);
            self.net.perform(&mut self.machine, self.now, &out);
            self.record(out);
        }
        let held = self.machine.stats().live_sockets;
        let open = self.check.live_sockets().len();
        if held != open {
            violated!("the machine holds {held} sockets, its outputs leave {open} open");
        }
    }

    fn record(&mut self, out: Output) {
        match out {
            Output::Dns(DnsAction::Send(send)) => {
                let question = question_of(&send);
                self.queries.push(Query {
                    at: self.now,
                    send,
                    question,
                });
            }
            Output::OpenTcp {
                socket,
                remote,
                interface,
                options,
                ..
            } => self.opened.push(Opened {
                at: self.now,
                socket,
                remote,
                interface,
                options,
            }),
            Output::Listen {
                listener, local, ..
            } => self.listening.push((listener, local)),
            Output::ShutdownWrite { socket } => {
                self.socket_ends.push((socket, SocketEnd::Shutdown))
            }
            Output::CloseSocket { socket } => self.socket_ends.push((socket, SocketEnd::Close)),
            Output::AbortSocket { socket } => self.socket_ends.push((socket, SocketEnd::Abort)),
            Output::Event(e) => self.events.push((self.now, e)),
            _ => {}
        }
    }

    /// `initiate` at `at`, recorded: a fresh id, or an error that says why.
    pub fn initiate(
        &mut self,
        at: Instant,
        pre: &Preconnection,
    ) -> Result<ConnectionId, InitiateError> {
        let result = self.machine.initiate(at, pre);
        self.initiated(result.map(|c| (c, ()))).map(|(c, ())| c)
    }

    /// `initiate_with_send` at `at`, recorded.
    pub fn initiate_with_send(
        &mut self,
        at: Instant,
        pre: &Preconnection,
        first: Message,
    ) -> Result<(ConnectionId, MessageId), InitiateError> {
        let result = self.machine.initiate_with_send(at, pre, first);
        self.initiated(result)
    }

    fn initiated<T>(
        &mut self,
        result: Result<(ConnectionId, T), InitiateError>,
    ) -> Result<(ConnectionId, T), InitiateError> {
        match &result {
            Ok((conn, _)) => self.check.initiated(*conn),
            Err(e) => nonempty(e),
        }
        self.drain();
        result
    }

    /// `listen`, recorded.
    pub fn listen(&mut self, config: ListenerConfig) -> Option<ListenerId> {
        match self.machine.listen(config) {
            Ok(l) => {
                self.check.listened(l);
                self.drain();
                Some(l)
            }
            Err(e) => {
                nonempty(&e);
                None
            }
        }
    }

    /// `accept`, recorded.
    pub fn accept(&mut self, listener: ListenerId, remote: SocketAddr) -> Option<SocketId> {
        match self.machine.listener(listener).accept(self.now, remote) {
            Ok(s) => {
                self.check.accepted(s);
                self.drain();
                Some(s)
            }
            Err(e) => {
                nonempty(&e);
                self.drain();
                None
            }
        }
    }

    /// One input, then drain.
    pub fn handle(&mut self, input: Input<'_>) {
        self.machine.handle(self.now, input);
        self.drain();
    }

    /// Runs every timer and every delivery the network scheduled up to
    /// `limit`, in time order, each at its own time (a deadline already
    /// past runs at once, as an adapter runs it). The clock stops at the
    /// last thing that happened.
    pub fn run_until(&mut self, limit: Instant) {
        self.drain();
        for _ in 0..MAX_ROUNDS {
            let timer = self.machine.poll_timeout();
            let due = self.net.next_due();
            let Some(next) = timer.into_iter().chain(due).min() else {
                return;
            };
            if next > limit {
                return;
            }
            if due == Some(next) {
                assert!(next >= self.now, "a delivery scheduled in the past");
            }
            self.now = self.now.max(next);
            if timer == Some(next) {
                self.machine.handle_timeout(self.now);
                self.drain();
            }
            while self.net.deliver_due(&mut self.machine, self.now) {
                self.drain();
            }
        }
        violated!("timers keep firing: more than {MAX_ROUNDS} rounds before {limit}");
    }

    /// Moves the clock forwards by `d`, running every timer and delivery
    /// that falls due on the way ([`Harness::run_until`]).
    pub fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
        self.now = until;
    }

    /// Runs every timer and delivery until none is left.
    pub fn settle(&mut self) {
        self.run_until(Instant::MAX);
    }

    /// Moves what `from` has to send into `to`, no more than `to` may read
    /// at a time (the adapter contract), at most `max` bytes in all. A tiny
    /// receive buffer makes that many small reads, as a socket would.
    /// Returns the bytes moved.
    pub fn pipe(&mut self, from: SocketId, to: SocketId, max: usize) -> usize {
        let mut moved = 0;
        while moved < max {
            let room = self.machine.socket(to).read_capacity().min(max - moved);
            let data = self.machine.socket(from).transmit_data();
            let n = data.len().min(room);
            if n == 0 {
                break;
            }
            let chunk = data[..n].to_vec();
            if tracing() {
                eprintln!("  pipe {from:?} -> {to:?}: {n} of {} bytes", data.len());
            }
            self.machine.handle(
                self.now,
                Input::Transmitted {
                    socket: from,
                    len: n,
                },
            );
            self.drain();
            self.handle(Input::SocketData {
                socket: to,
                data: &chunk,
            });
            moved += n;
        }
        moved
    }

    /// Ends everything the application can end, lets every timer run out,
    /// and checks that nothing is left: every socket closed exactly once,
    /// every DNS transaction released, every connection freed, no timer
    /// armed (ARCHITECTURE.md, core contract rule 4: nothing grows or
    /// lingers without bound).
    pub fn finish(&mut self) {
        for conn in self.check.connections() {
            self.machine.connection(conn).abort(self.now);
            self.drain();
        }
        for listener in self.check.live_listeners() {
            self.machine.listener(listener).stop();
            self.drain();
        }
        self.settle();
        let dns_leak_known = tolerated("dns-transaction-outlives-connection");
        let leaks = [
            ("sockets left open", self.check.live_sockets().len()),
            (
                "DNS transactions left unreleased",
                if dns_leak_known {
                    0
                } else {
                    self.check.live_txns()
                },
            ),
            (
                "connections left in the machine",
                self.machine.stats().live_connections,
            ),
            (
                "sockets left in the machine",
                self.machine.stats().live_sockets,
            ),
        ];
        for (what, n) in leaks {
            if n != 0 {
                violated!("after every connection ended and every timer ran: {n} {what}");
            }
        }
        let idle = self.machine.is_idle() || (dns_leak_known && self.check.live_txns() > 0);
        if !idle {
            violated!("the machine is not idle after everything ended");
        }
    }

    /// When `conn` became ready, over which remote and interface.
    pub fn ready(&self, conn: ConnectionId) -> Option<(Instant, SocketAddr, Option<u32>)> {
        self.events.iter().find_map(|(t, e)| match e {
            Event::Ready {
                conn: c,
                remote,
                interface,
                ..
            } if *c == conn => Some((*t, *remote, *interface)),
            _ => None,
        })
    }

    /// Why establishing `conn` failed, if it did.
    pub fn error(&self, conn: ConnectionId) -> Option<&EstablishmentError> {
        self.events.iter().find_map(|(_, e)| match e {
            Event::EstablishmentError { conn: c, error } if *c == conn => Some(error),
            _ => None,
        })
    }

    /// DNS transactions sent and not yet released, each with the server
    /// its latest query went to.
    pub fn live_dns(&self) -> HashMap<DnsTxnId, SocketAddr> {
        let mut live = HashMap::new();
        for q in &self.queries {
            if self.check.is_live_txn(q.send.txn) {
                live.insert(q.send.txn, q.send.server);
            }
        }
        live
    }

    /// Sockets opened or accepted and not yet closed, in id order.
    pub fn live_sockets(&self) -> Vec<SocketId> {
        self.check.live_sockets()
    }

    /// Sockets the machine closed or aborted, in order.
    pub fn closed_sockets(&self) -> Vec<SocketId> {
        self.socket_ends
            .iter()
            .filter(|(_, end)| *end != SocketEnd::Shutdown)
            .map(|(s, _)| *s)
            .collect()
    }
}

/// Whether to print every operation and output to stderr, for reading a
/// crash: set `TAPS_FUZZ_TRACE=1` and replay the input
/// (`cargo fuzz run -O <target> <file>`, or the replay test).
pub(crate) fn tracing() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("TAPS_FUZZ_TRACE").is_some_and(|v| v == "1"))
}
