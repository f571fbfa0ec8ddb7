//! The bodies of taps' fuzz targets (issue #7), in one place.
//!
//! Every byte that crosses taps' trust boundary is fed to the real
//! `taps-core` code here: DNS answers, endpoint text, framed streams, TLS
//! records, and whole sequences of application commands and network reports
//! into the [`Machine`]. Each target is a plain function of `&[u8]` that
//! returns normally when every check holds and panics (naming the broken
//! invariant) when one does not.
//!
//! The same file is compiled twice:
//! - as the library of the cargo-fuzz crate `fuzz/`, whose binaries in
//!   `fuzz_targets/` are one-line wrappers around these functions, and
//! - as a module of the stable integration test
//!   `taps-core/tests/fuzz_replay.rs` (through `#[path]`), which replays every
//!   file of `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/` through
//!   the same functions on every `cargo test`.
//!
//! So a crash the fuzzer found, once its input is saved under
//! `fuzz/artifacts/<target>/`, is a regression test on stable Rust.
//!
//! One target is not here: `scenario` feeds scenario files to taps-sim,
//! which depends on taps-core and so cannot be used by this file. Its body
//! is `taps_sim::fuzz::scenario`, and `taps-sim/tests/fuzz_replay.rs`
//! replays its corpus; both replay tests share `fuzz/replay.rs`.
//!
//! The invariants checked on the machine (DESIGN.md rules 2-4, RFC 9622
//! §7-§11) live in [`Checker`]; the corpus generator lives in [`seeds`].

// Only the standard library, taps-core and its own dependencies are used, so
// the file compiles unchanged inside taps-core's test crate.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::{Debug, Display};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use taps_core::{
    Config, ConnectionId, DnsTxnId, EndpointParseError, Event, FailureReason, FramingFailure,
    HostName, Identity, Input, Instant, Interface, InterfaceAddress, InterfaceKind, IoLimits,
    ListenerConfig, ListenerId, LocalEndpoint, Machine, Message, Output, Preconnection,
    RemoteEndpoint, SecurityParameters, SocketId, TlsCheckout,
    dns::{
        Answer, HttpsRecord, MAX_ADDRESSES_PER_ANSWER, MAX_HTTPS_RECORDS_PER_ANSWER,
        MAX_NEGATIVE_TTL, MAX_TTL, QueryType, encode_query, parse_response,
    },
    dns::{DnsAction, DnsConfig, DnsSend, DnsTransport},
    framer::{Decoded, Delimited, Framer, FramerFactory, LengthPrefixed},
    race::{Policy, RaceConfig, RacingMode},
};
use taps_testkit::dns::{Question, build_response, parse_query};
use taps_testkit::wire::{LimitedWire, QueueWire, Through, WireEnd, read_through, write_through};

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target by name, as the fuzz binaries, the corpus directories and
/// the replay test name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("dns_answer", dns_answer),
    ("endpoint_parse", endpoint_parse),
    ("framer", framer),
    ("tls_records", tls_records),
    ("machine", machine),
    // The sixth target, `scenario`, runs taps-sim, which this file cannot
    // use (taps-core's tests compile it): its body is
    // `taps_sim::fuzz::scenario`, replayed by taps-sim/tests/fuzz_replay.rs.
];

/// A bug a fuzz target found that is reported but not yet fixed in
/// taps-core. While it is listed here, the check that finds it lets it pass
/// (so fuzzing can go on past it); `taps-core/tests/fuzz_replay.rs` replays
/// its input from `fuzz/artifacts/<target>/<name>` with the check enforced
/// and fails once the bug no longer reproduces, so the entry is removed with
/// the fix.
#[derive(Clone, Copy, Debug)]
pub struct KnownBug {
    /// Short name; also the file name of its input.
    pub name: &'static str,
    /// The target that found it.
    pub target: &'static str,
    /// Where and why.
    pub summary: &'static str,
    /// Text of the violation it causes, to tell it from any other failure.
    pub signature: &'static str,
}

/// The bugs found and not yet fixed (see [`KnownBug`]).
// Both bugs fuzzing found (a lingering DNS transaction outliving its
// connection; ConnectionReceived after Stopped) are fixed in the machine;
// their inputs stay in fuzz/artifacts/machine/ as regressions.
pub const KNOWN_BUGS: &[KnownBug] = &[];

thread_local! {
    /// Known bugs count as violations (see [`strictly`]).
    static STRICT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every [`KNOWN_BUGS`] entry treated as a violation.
pub fn strictly<R>(f: impl FnOnce() -> R) -> R {
    STRICT.set(true);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    STRICT.set(false);
    result.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Whether the known bug `name` may pass unreported: not under
/// [`strictly`], nor with `TAPS_FUZZ_STRICT=1` (to fuzz for a known bug's
/// input again).
fn tolerated(name: &str) -> bool {
    static STRICT_ENV: OnceLock<bool> = OnceLock::new();
    let strict_env =
        *STRICT_ENV.get_or_init(|| std::env::var_os("TAPS_FUZZ_STRICT").is_some_and(|v| v == "1"));
    !STRICT.get() && !strict_env && KNOWN_BUGS.iter().any(|b| b.name == name)
}

/// Panics with a message that names the broken invariant; libFuzzer records
/// the input, the replay test names the file.
macro_rules! violated {
    ($($arg:tt)*) => {
        panic!("taps fuzz invariant violated: {}", format_args!($($arg)*))
    };
}

// ---------------------------------------------------------------------------
// Test identities
// ---------------------------------------------------------------------------

/// One CA and one server identity for every TLS target, made once per
/// process: certificate generation costs far more than a fuzz iteration.
struct Pki {
    root: rustls_pki_types::CertificateDer<'static>,
    server: SecurityParameters,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        // Test-only key material made from constants: a failure here is a
        // broken build environment, not an input, so it may panic.
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "taps fuzz CA");
        let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let names: Vec<String> = [
            "192.0.2.10",
            "2001:db8::10",
            "192.0.2.20",
            "2001:db8::20",
            "127.0.0.1",
            "::1",
            "www.example.com",
            "hosts.example",
            "localhost",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let key = KeyPair::generate().expect("leaf key");
        let leaf = CertificateParams::new(names)
            .expect("leaf parameters")
            .signed_by(&key, &issuer)
            .expect("leaf certificate");
        let identity = Identity {
            chain: vec![leaf.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        };
        Pki {
            root: issuer.der().clone(),
            server: SecurityParameters::server(identity),
        }
    })
}

/// Client TLS that trusts the fuzz CA (verification on, early data allowed).
fn client_tls() -> SecurityParameters {
    SecurityParameters::with_roots(vec![pki().root.clone()])
}

/// Server TLS with the fuzz identity.
fn server_tls() -> SecurityParameters {
    pki().server.clone()
}

// ---------------------------------------------------------------------------
// Invariants of the machine's outputs
// ---------------------------------------------------------------------------

/// Whether a handle is in use or was freed by the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Live,
    Freed,
}

/// What the application has heard about one connection.
#[derive(Clone, Copy, Debug, Default)]
struct ConnTrack {
    /// Initiated here (as opposed to delivered by a listener).
    active: bool,
    /// `Ready` or `ConnectionReceived` was seen.
    ready: bool,
    /// A terminal event (`Closed`, `EstablishmentError`, `ConnectionError`)
    /// was seen.
    ended: bool,
    /// The application named the id before the machine announced it (a
    /// forged id that hit a connection still in its handshake).
    forged: bool,
}

/// Follows every output of one machine and checks, as they come:
///
/// - **Handles** (DESIGN.md rule 2): an `OpenTcp` names a fresh socket; no
///   output names a socket after its `CloseSocket`/`AbortSocket`, a DNS
///   transaction after its `Release`, or a listener after `Stopped` (whose
///   doc says the listener "delivers nothing more"); nothing is closed or
///   released twice or without having been opened.
/// - **One winner**: at most one `Ready` per connection, only for initiated
///   connections, naming a live socket.
/// - **Event order** (RFC 9622 §7-§11, as `Event`'s doc promises): no
///   `Received`, `ReceivedPartial`, `Sent` or `Readable` before `Ready` or
///   `ConnectionReceived`; no `EstablishmentError` after `Ready`; nothing at
///   all after `Closed`, `EstablishmentError` or `ConnectionError`; no event
///   for a connection the application never heard of.
#[derive(Debug, Default)]
pub struct Checker {
    sockets: HashMap<SocketId, Life>,
    txns: HashMap<DnsTxnId, Life>,
    listeners: HashMap<ListenerId, Life>,
    conns: HashMap<ConnectionId, ConnTrack>,
}

impl Checker {
    /// `initiate` returned `conn`: it must be a fresh id.
    pub fn initiated(&mut self, conn: ConnectionId) {
        if self.conns.contains_key(&conn) {
            violated!("initiate returned {conn:?}, an id already issued");
        }
        self.conns.insert(
            conn,
            ConnTrack {
                active: true,
                ..ConnTrack::default()
            },
        );
    }

    /// The application is about to name `conn`, which the machine says is
    /// `live`. A live id the application was never given can only be forged
    /// (ids are guessable): it names a listener's connection still in its
    /// handshake. The machine accepts commands for it, so its events count
    /// as heard of from here on.
    pub fn forged(&mut self, conn: ConnectionId, live: bool) {
        if live && !self.conns.contains_key(&conn) {
            self.conns.insert(
                conn,
                ConnTrack {
                    forged: true,
                    ..ConnTrack::default()
                },
            );
        }
    }

    /// `accept` returned `socket`: it must be a fresh id.
    pub fn accepted(&mut self, socket: SocketId) {
        if self.sockets.insert(socket, Life::Live).is_some() {
            violated!("accept returned {socket:?}, an id already issued");
        }
    }

    /// `listen` returned `listener`: it must be a fresh id.
    pub fn listened(&mut self, listener: ListenerId) {
        if self.listeners.insert(listener, Life::Live).is_some() {
            violated!("listen returned {listener:?}, an id already issued");
        }
    }

    fn live_socket(&self, socket: SocketId, what: &str) {
        match self.sockets.get(&socket) {
            Some(Life::Live) => {}
            Some(Life::Freed) => violated!("{what} names {socket:?} after it was closed"),
            None => violated!("{what} names {socket:?}, which was never opened"),
        }
    }

    fn live_listener(&self, listener: ListenerId, what: &str) {
        match self.listeners.get(&listener) {
            Some(Life::Live) => {}
            Some(Life::Freed) => violated!("{what} names {listener:?} after Stopped"),
            None => violated!("{what} names {listener:?}, which listen never returned"),
        }
    }

    fn conn(&mut self, conn: ConnectionId, what: &Event) -> &mut ConnTrack {
        let Some(track) = self.conns.get_mut(&conn) else {
            violated!("{what:?} for {conn:?}, a connection the application never heard of");
        };
        if track.ended {
            violated!("{what:?} after the end of {conn:?}");
        }
        track
    }

    /// Checks one output, in the order `poll` gave it.
    pub fn output(&mut self, out: &Output) {
        match out {
            Output::Dns(DnsAction::Send(send)) => match self.txns.get(&send.txn) {
                Some(Life::Freed) => violated!("DNS send on {:?} after its Release", send.txn),
                Some(Life::Live) => {}
                None => {
                    self.txns.insert(send.txn, Life::Live);
                }
            },
            Output::Dns(DnsAction::Release(txn)) => match self.txns.insert(*txn, Life::Freed) {
                Some(Life::Live) => {}
                Some(Life::Freed) => violated!("{txn:?} released twice"),
                None => violated!("release of {txn:?}, which was never sent"),
            },
            Output::OpenTcp { socket, .. } => {
                if self.sockets.insert(*socket, Life::Live).is_some() {
                    violated!("OpenTcp names {socket:?}, an id already issued");
                }
            }
            Output::Transmit { socket } => self.live_socket(*socket, "Transmit"),
            Output::ShutdownWrite { socket } => self.live_socket(*socket, "ShutdownWrite"),
            Output::ResumeReading { socket } => self.live_socket(*socket, "ResumeReading"),
            Output::CloseSocket { socket } | Output::AbortSocket { socket } => {
                self.live_socket(*socket, "CloseSocket/AbortSocket");
                self.sockets.insert(*socket, Life::Freed);
            }
            Output::Listen { listener, .. } => self.live_listener(*listener, "Listen"),
            Output::StopListening { listener } => self.live_listener(*listener, "StopListening"),
            Output::Event(e) => self.event(e),
            other => violated!("an output the contract checker does not know: {other:?}"),
        }
    }

    fn event(&mut self, e: &Event) {
        match e {
            Event::Stopped { listener } => {
                self.live_listener(*listener, "Stopped");
                self.listeners.insert(*listener, Life::Freed);
            }
            Event::ListenerError { listener, .. } => {
                self.live_listener(*listener, "ListenerError");
            }
            Event::ConnectionReceived { listener, conn, .. } => {
                let after_stop = self.listeners.get(listener) == Some(&Life::Freed);
                if !(after_stop && tolerated("connection-received-after-stopped")) {
                    self.live_listener(*listener, "ConnectionReceived");
                }
                match self.conns.get_mut(conn) {
                    Some(t) if t.forged && !t.ready && !t.ended => t.ready = true,
                    Some(_) => violated!("ConnectionReceived names {conn:?}, an id already issued"),
                    None => {
                        self.conns.insert(
                            *conn,
                            ConnTrack {
                                ready: true,
                                ..ConnTrack::default()
                            },
                        );
                    }
                }
            }
            Event::Ready { conn, socket, .. } => {
                self.live_socket(*socket, "Ready");
                let track = self.conn(*conn, e);
                if !track.active {
                    violated!("Ready for {conn:?}, which a listener delivered");
                }
                if track.ready {
                    violated!("a second Ready for {conn:?}");
                }
                track.ready = true;
            }
            Event::EstablishmentError { conn, .. } => {
                let track = self.conn(*conn, e);
                if track.ready {
                    violated!("EstablishmentError after Ready for {conn:?}");
                }
                track.ended = true;
            }
            Event::Received { conn, .. }
            | Event::ReceivedPartial { conn, .. }
            | Event::Sent { conn, .. }
            | Event::Readable { conn } => {
                if !self.conn(*conn, e).ready {
                    violated!("{e:?} before Ready");
                }
            }
            Event::Expired { conn, .. }
            | Event::SendError { conn, .. }
            | Event::Writable { conn } => {
                self.conn(*conn, e);
            }
            Event::PathChange { conn, .. } | Event::SoftError { conn, .. } => {
                if !self.conn(*conn, e).ready {
                    violated!("{e:?} before Ready");
                }
            }
            Event::ConnectionError { conn, .. } | Event::Closed { conn } => {
                self.conn(*conn, e).ended = true;
            }
            other => violated!("an event the contract checker does not know: {other:?}"),
        }
    }

    /// Whether `socket` was opened or accepted and is not closed.
    pub fn is_live_socket(&self, socket: SocketId) -> bool {
        self.sockets.get(&socket) == Some(&Life::Live)
    }

    /// Sockets opened or accepted and not yet closed.
    pub fn live_sockets(&self) -> usize {
        self.sockets.values().filter(|l| **l == Life::Live).count()
    }

    /// DNS transactions sent and not yet released.
    pub fn live_txns(&self) -> usize {
        self.txns.values().filter(|l| **l == Life::Live).count()
    }

    /// Every connection id the application heard of, in no set order.
    pub fn connections(&self) -> Vec<ConnectionId> {
        let mut ids: Vec<_> = self.conns.keys().copied().collect();
        ids.sort();
        ids
    }

    /// Listeners not yet stopped.
    pub fn live_listeners(&self) -> Vec<ListenerId> {
        let mut ids: Vec<_> = self
            .listeners
            .iter()
            .filter(|(_, l)| **l == Life::Live)
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        ids
    }
}

// ---------------------------------------------------------------------------
// A machine under observation
// ---------------------------------------------------------------------------

/// Bound on timer firings while settling, far above anything legitimate
/// (a few per attempt and query): more means timers re-arm without end.
const MAX_TIMER_ROUNDS: usize = 10_000;

/// One machine, its clock, and everything it said, checked as it comes.
pub struct Harness {
    /// The machine under test.
    pub m: Machine,
    /// Virtual time; only moves forwards.
    pub now: Instant,
    /// The invariants.
    pub check: Checker,
    /// Every event, in order.
    pub events: Vec<Event>,
    /// Every DNS query sent, with its parsed question (a retransmission
    /// appears again).
    pub queries: Vec<(DnsSend, Question)>,
    /// Every `OpenTcp`: socket and remote.
    pub opened: Vec<(SocketId, SocketAddr)>,
    /// Every listening address asked for.
    pub listening: Vec<(ListenerId, SocketAddr)>,
    /// Every `ShutdownWrite`, `CloseSocket` and `AbortSocket`, in order.
    pub socket_ends: Vec<(SocketId, SocketEnd)>,
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

impl Harness {
    /// A harness around a fresh machine; TLS runs with ring and the wall
    /// clock unless `config` names another environment.
    pub fn new(mut config: Config) -> Self {
        config.tls.get_or_insert_with(taps_testkit::tls::wall_clock);
        Harness {
            m: Machine::new(config),
            now: Instant::ZERO,
            check: Checker::default(),
            events: Vec::new(),
            queries: Vec::new(),
            opened: Vec::new(),
            listening: Vec::new(),
            socket_ends: Vec::new(),
        }
    }

    /// Polls every output through the checker. The machine's socket table
    /// must then agree with the sockets its outputs opened and closed.
    pub fn drain(&mut self) {
        while let Some(out) = self.m.poll() {
            if tracing() {
                eprintln!("  {} {out:?}", self.now);
            }
            self.check.output(&out);
            match out {
                Output::Dns(DnsAction::Send(send)) => {
                    let message = match send.transport {
                        DnsTransport::Udp => &send.payload[..],
                        DnsTransport::Tcp => send.payload.get(2..).unwrap_or_default(),
                    };
                    match parse_query(message) {
                        Ok(q) => self.queries.push((send, q)),
                        Err(e) => violated!("the machine sent a query it cannot parse: {e}"),
                    }
                }
                Output::OpenTcp { socket, remote, .. } => self.opened.push((socket, remote)),
                Output::Listen {
                    listener, local, ..
                } => self.listening.push((listener, local)),
                Output::ShutdownWrite { socket } => {
                    self.socket_ends.push((socket, SocketEnd::Shutdown))
                }
                Output::CloseSocket { socket } => self.socket_ends.push((socket, SocketEnd::Close)),
                Output::AbortSocket { socket } => self.socket_ends.push((socket, SocketEnd::Abort)),
                Output::Event(e) => self.events.push(e),
                _ => {}
            }
        }
        if self.m.stats().live_sockets != self.check.live_sockets() {
            violated!(
                "the machine holds {} sockets, its outputs leave {} open",
                self.m.stats().live_sockets,
                self.check.live_sockets()
            );
        }
    }

    /// `initiate`, recorded.
    pub fn initiate(&mut self, pre: &Preconnection) -> Option<ConnectionId> {
        let result = self.m.initiate(self.now, pre);
        self.after_initiate(result.map(|c| (c, ())))
    }

    fn after_initiate<T>(
        &mut self,
        result: Result<(ConnectionId, T), taps_core::InitiateError>,
    ) -> Option<ConnectionId> {
        match result {
            Ok((conn, _)) => {
                self.check.initiated(conn);
                self.drain();
                Some(conn)
            }
            Err(e) => {
                nonempty(&e);
                self.drain();
                None
            }
        }
    }

    /// `listen`, recorded.
    pub fn listen(&mut self, config: ListenerConfig) -> Option<ListenerId> {
        match self.m.listen(config) {
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
        match self.m.listener(listener).accept(self.now, remote) {
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
        self.m.handle(self.now, input);
        self.drain();
    }

    /// Moves the clock forwards by `d`, running every timer that falls due
    /// on the way (at its own deadline, as an adapter would).
    pub fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        for _ in 0..MAX_TIMER_ROUNDS {
            match self.m.poll_timeout() {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.m.handle_timeout(self.now);
                    self.drain();
                }
                _ => {
                    self.now = until;
                    return;
                }
            }
        }
        violated!("timers keep firing: more than {MAX_TIMER_ROUNDS} rounds within {d:?}");
    }

    /// Runs every timer until none is armed.
    pub fn settle(&mut self) {
        for _ in 0..MAX_TIMER_ROUNDS {
            let Some(t) = self.m.poll_timeout() else {
                return;
            };
            self.now = self.now.max(t);
            self.m.handle_timeout(self.now);
            self.drain();
        }
        violated!("timers never settle: more than {MAX_TIMER_ROUNDS} rounds");
    }

    /// Moves what `from` has to send into `to`, no more than `to` may read
    /// at a time (the adapter contract), at most `max` bytes in all. A tiny
    /// receive buffer makes that many small reads, as a socket would.
    /// Returns the bytes moved.
    pub fn pipe(&mut self, from: SocketId, to: SocketId, max: usize) -> usize {
        let mut moved = 0;
        while moved < max {
            let room = self.m.socket(to).read_capacity().min(max - moved);
            let data = self.m.socket(from).transmit_data();
            let n = data.len().min(room);
            if n == 0 {
                break;
            }
            let chunk = data[..n].to_vec();
            if tracing() {
                eprintln!("  pipe {from:?} -> {to:?}: {n} of {} bytes", data.len());
            }
            self.m.handle(
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
    /// armed (DESIGN.md rule 4: nothing grows or lingers without bound).
    pub fn finish(&mut self) {
        for conn in self.check.connections() {
            self.m.connection(conn).abort(self.now);
            self.drain();
        }
        for listener in self.check.live_listeners() {
            self.m.listener(listener).stop();
            self.drain();
        }
        self.settle();
        let dns_leak_known = tolerated("dns-transaction-outlives-connection");
        let leaks = [
            ("sockets left open", self.check.live_sockets()),
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
                self.m.stats().live_connections,
            ),
            ("sockets left in the machine", self.m.stats().live_sockets),
        ];
        for (what, n) in leaks {
            if n != 0 {
                violated!("after every connection ended and every timer ran: {n} {what}");
            }
        }
        let idle = self.m.is_idle() || (dns_leak_known && self.check.live_txns() > 0);
        if !idle {
            violated!("the machine is not idle after everything ended");
        }
    }
}

/// Whether to print every operation and output to stderr, for reading a
/// crash: set `TAPS_FUZZ_TRACE=1` and replay the input
/// (`cargo fuzz run -O <target> <file>`, or the replay test).
fn tracing() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("TAPS_FUZZ_TRACE").is_some_and(|v| v == "1"))
}

/// An error's `Display` must say something a person can act on.
fn nonempty(e: &dyn Display) {
    if e.to_string().trim().is_empty() {
        violated!("an error displays as empty text");
    }
}

// ---------------------------------------------------------------------------
// dns_answer
// ---------------------------------------------------------------------------

/// The name every DNS target asks about.
pub const DNS_NAME: &str = "www.example.com";
/// The DNS servers of the DNS targets' machines, in order.
const DNS_SERVERS: [&str; 2] = ["198.51.100.53:53", "198.51.100.54:53"];
/// A source no query went to.
const DNS_SPOOFER: &str = "203.0.113.66:53";
/// The addresses the other, well-behaved questions resolve to.
const DNS_FIXED_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DNS_FIXED_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

fn addr(text: &str) -> SocketAddr {
    // Only ever called on the constants above.
    text.parse().expect("constant socket address")
}

fn host(text: &str) -> HostName {
    HostName::new(text).expect("constant host name")
}

/// The question the machine would ask, as the responder reads it.
fn question(id: u16, name: &str, qtype: QueryType) -> Question {
    let mut q = Vec::new();
    encode_query(id, &host(name), qtype, &mut q);
    parse_query(&q).expect("encode_query output parses")
}

/// How `dns_answer` delivers its bytes (the first input byte).
#[derive(Clone, Copy, Debug)]
pub struct DnsMode {
    /// The question the bytes answer.
    pub qtype: QueryType,
    /// Over TCP (after a truncated UDP answer), as stream bytes.
    pub stream: bool,
    /// From a source no query went to.
    pub spoofed: bool,
    /// Keep the bytes' own id instead of the query's.
    pub keep_id: bool,
    /// TCP only: no length prefix is added (the bytes frame themselves).
    pub raw_stream: bool,
    /// TCP only: bytes per `DnsStreamData`.
    pub chunk: usize,
}

impl DnsMode {
    /// Decodes the mode byte.
    pub fn from_byte(b: u8) -> Self {
        DnsMode {
            qtype: match b & 3 {
                0 => QueryType::A,
                1 => QueryType::Aaaa,
                _ => QueryType::Https,
            },
            stream: b & 4 != 0,
            spoofed: b & 8 != 0,
            keep_id: b & 0x10 != 0,
            raw_stream: b & 0x20 != 0,
            chunk: [usize::MAX, 1, 7, 64][usize::from(b >> 6)],
        }
    }

    /// The mode byte (inverse of [`DnsMode::from_byte`]; `chunk` must be one
    /// of the four sizes).
    pub fn to_byte(self) -> u8 {
        let q = match self.qtype {
            QueryType::A => 0,
            QueryType::Aaaa => 1,
            QueryType::Https => 2,
        };
        let chunk = match self.chunk {
            1 => 1,
            7 => 2,
            64 => 3,
            _ => 0,
        };
        q | u8::from(self.stream) << 2
            | u8::from(self.spoofed) << 3
            | u8::from(self.keep_id) << 4
            | u8::from(self.raw_stream) << 5
            | chunk << 6
    }
}

/// **dns_answer**: arbitrary bytes arrive as the answer to an in-flight
/// query.
///
/// Input: one mode byte ([`DnsMode`]), then the message. Checks:
/// 1. `parse_response` alone (with the message's own id, so the parser's
///    deeper checks are reached): never panics; an accepted answer obeys the
///    documented bounds (addresses of the asked family only, at most
///    `MAX_ADDRESSES_PER_ANSWER`, no duplicates; at most
///    `MAX_HTTPS_RECORDS_PER_ANSWER` records sorted by priority; TTLs capped);
///    and survives `build_response` → `parse_response` unchanged, so the
///    responder the simulator uses speaks the same language as the parser.
/// 2. The machine: the bytes answer its real query (id patched in unless
///    `keep_id`), by UDP or, after a truncated answer, TCP in chunks; the
///    other questions get ordinary answers; attempts connect. Every address
///    the machine then connects to came from an answer (or an HTTPS hint),
///    and every [`Checker`] invariant and the final leak check hold.
pub fn dns_answer(data: &[u8]) {
    let Some((&mode, payload)) = data.split_first() else {
        return;
    };
    let mode = DnsMode::from_byte(mode);
    check_parse(payload, mode.qtype);
    dns_through_machine(payload, mode);
}

/// Checks one answer against the documented bounds; returns it.
fn check_answer(answer: &Answer, qtype: QueryType) {
    match answer {
        Answer::Addresses { addrs, ttl } => {
            if addrs.is_empty() || addrs.len() > MAX_ADDRESSES_PER_ANSWER {
                violated!("{} addresses in one answer", addrs.len());
            }
            for (i, a) in addrs.iter().enumerate() {
                let family_ok = match qtype {
                    QueryType::A => a.is_ipv4(),
                    QueryType::Aaaa => a.is_ipv6(),
                    QueryType::Https => false,
                };
                if !family_ok {
                    violated!("address {a} in a {qtype} answer");
                }
                if addrs[..i].contains(a) {
                    violated!("address {a} twice in one answer");
                }
            }
            if *ttl > MAX_TTL {
                violated!("TTL {ttl} above MAX_TTL");
            }
        }
        Answer::Https { records, ttl } => {
            if qtype != QueryType::Https {
                violated!("HTTPS records answer a {qtype} question");
            }
            if records.is_empty() || records.len() > MAX_HTTPS_RECORDS_PER_ANSWER {
                violated!("{} HTTPS records in one answer", records.len());
            }
            if !records.windows(2).all(|w| w[0].priority <= w[1].priority) {
                violated!("HTTPS records not sorted by priority");
            }
            for r in records {
                if r.ipv4hint.len() > MAX_ADDRESSES_PER_ANSWER
                    || r.ipv6hint.len() > MAX_ADDRESSES_PER_ANSWER
                {
                    violated!("an address hint list over MAX_ADDRESSES_PER_ANSWER");
                }
                if r.priority == 0 && *r != alias_only(r) {
                    violated!("an AliasMode record kept its parameters: {r:?}");
                }
            }
            if *ttl > MAX_TTL {
                violated!("TTL {ttl} above MAX_TTL");
            }
        }
        Answer::NoData { negative_ttl } | Answer::NxDomain { negative_ttl } => {
            if *negative_ttl > MAX_NEGATIVE_TTL {
                violated!("negative TTL {negative_ttl} above MAX_NEGATIVE_TTL");
            }
        }
        Answer::ServFail | Answer::Refused => {}
        Answer::OtherError { rcode } => {
            if matches!(rcode, 0 | 2 | 3 | 5) || *rcode > 0xfff {
                violated!("OtherError with RCODE {rcode}");
            }
        }
    }
}

/// The AliasMode form of `r`: priority 0, its target, nothing else.
fn alias_only(r: &HttpsRecord) -> HttpsRecord {
    HttpsRecord {
        priority: 0,
        target: r.target.clone(),
        alpn: Vec::new(),
        no_default_alpn: false,
        port: None,
        ipv4hint: Default::default(),
        ipv6hint: Default::default(),
        ech: false,
    }
}

/// Step 1 of `dns_answer`: the parser alone, and the responder round trip.
/// Returns the parsed answer when the parser accepted the message.
fn check_parse(payload: &[u8], qtype: QueryType) -> Option<Answer> {
    let id = match payload {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    let name = host(DNS_NAME);
    let response = match parse_response(payload, id, &name, qtype) {
        Ok(r) => r,
        Err(e) => {
            nonempty(&e);
            return None;
        }
    };
    check_answer(&response.answer, qtype);
    // The responder writes only the low four RCODE bits (no OPT record),
    // so extended RCODEs cannot round-trip; everything else must.
    if !matches!(response.answer, Answer::OtherError { .. }) {
        let rebuilt = build_response(&question(id, DNS_NAME, qtype), &response.answer, false);
        match parse_response(&rebuilt, id, &name, qtype) {
            Ok(again) if again.answer == response.answer && !again.truncated => {}
            Ok(again) => violated!(
                "build_response does not round-trip: parsed {:?}, rebuilt and parsed {:?}",
                response.answer,
                again.answer
            ),
            Err(e) => violated!(
                "build_response wrote an unparsable message for {:?}: {e}",
                response.answer
            ),
        }
    }
    Some(response.answer)
}

/// A machine that resolves `www.example.com:443` through the two servers.
fn dns_machine(seed: u64) -> Harness {
    Harness::new(Config {
        seed,
        dns: DnsConfig {
            servers: DNS_SERVERS.iter().map(|s| addr(s)).collect(),
            ..DnsConfig::default()
        },
        ..Config::new(0)
    })
}

/// The latest query of `qtype` over `transport`, if any.
fn latest_query(
    h: &Harness,
    qtype: QueryType,
    transport: DnsTransport,
) -> Option<(DnsSend, Question)> {
    h.queries
        .iter()
        .rev()
        .find(|(s, q)| q.qtype == qtype && s.transport == transport)
        .cloned()
}

/// Answers `send` with `answer`, as its server would.
fn answer_query(h: &mut Harness, send: &DnsSend, q: &Question, answer: &Answer, truncated: bool) {
    let bytes = build_response(q, answer, truncated);
    match send.transport {
        DnsTransport::Udp => h.handle(Input::DnsDatagram {
            txn: send.txn,
            from: send.server,
            payload: &bytes,
        }),
        DnsTransport::Tcp => {
            let mut framed = Vec::with_capacity(bytes.len() + 2);
            framed.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            framed.extend_from_slice(&bytes);
            h.handle(Input::DnsStreamData {
                txn: send.txn,
                data: &framed,
            });
        }
    }
}

/// Step 2 of `dns_answer`: the bytes as the answer to the machine's query.
fn dns_through_machine(payload: &[u8], mode: DnsMode) {
    let mut h = dns_machine(7);
    let pre = Preconnection::new(
        format!("{DNS_NAME}:443")
            .parse()
            .expect("constant endpoint"),
    );
    let Some(conn) = h.initiate(&pre) else {
        violated!("initiate to {DNS_NAME}:443 refused");
    };
    let Some((mut send, mut q)) = latest_query(&h, mode.qtype, DnsTransport::Udp) else {
        violated!("no {} query for {DNS_NAME}", mode.qtype);
    };
    if mode.stream {
        // A truncated answer sends the question again over TCP (RFC 7766 §5).
        answer_query(&mut h, &send, &q, &Answer::NoData { negative_ttl: 0 }, true);
        match latest_query(&h, mode.qtype, DnsTransport::Tcp) {
            Some(tcp) => (send, q) = tcp,
            None => violated!("a truncated answer did not move the query to TCP"),
        }
    }
    // The exact bytes the adapter hands over, and where in them lies the
    // message the machine will parse (for TCP: the first length-prefixed
    // one, as its reader reassembles it).
    let mut wire = Vec::with_capacity(payload.len() + 2);
    if mode.stream && !mode.raw_stream {
        wire.extend_from_slice(&(payload.len().min(0xffff) as u16).to_be_bytes());
    }
    wire.extend_from_slice(payload);
    let message = if mode.stream {
        match wire[..] {
            [a, b, ..] => {
                let end = 2 + usize::from(u16::from_be_bytes([a, b]));
                (wire.len() >= end).then_some(2..end)
            }
            _ => None,
        }
    } else {
        Some(0..wire.len())
    };
    if let Some(range) = &message
        && !mode.keep_id
        && range.len() >= 2
    {
        wire[range.start..range.start + 2].copy_from_slice(&q.id.to_be_bytes());
    }
    // What the machine may believe: the parser's verdict on that message for
    // this query (the machine checks source, id and question the same way);
    // a truncated UDP answer is not used but retried over TCP.
    let believed = message
        .filter(|_| mode.stream || !mode.spoofed)
        .and_then(|range| parse_response(&wire[range], q.id, &host(DNS_NAME), mode.qtype).ok())
        .filter(|r| mode.stream || !r.truncated)
        .map(|r| r.answer);
    if mode.stream {
        for chunk in wire.chunks(mode.chunk.max(1)) {
            h.handle(Input::DnsStreamData {
                txn: send.txn,
                data: chunk,
            });
        }
    } else {
        h.handle(Input::DnsDatagram {
            txn: send.txn,
            from: if mode.spoofed {
                addr(DNS_SPOOFER)
            } else {
                send.server
            },
            payload: &wire,
        });
    }

    // The other questions get ordinary answers.
    let mut allowed: HashSet<SocketAddr> = HashSet::new();
    for qtype in [QueryType::Https, QueryType::Aaaa, QueryType::A] {
        let fixed = match qtype {
            QueryType::A => Answer::Addresses {
                addrs: [IpAddr::V4(DNS_FIXED_V4)].into_iter().collect(),
                ttl: 60,
            },
            QueryType::Aaaa => Answer::Addresses {
                addrs: [IpAddr::V6(DNS_FIXED_V6)].into_iter().collect(),
                ttl: 60,
            },
            QueryType::Https => Answer::NoData { negative_ttl: 60 },
        };
        if let Answer::Addresses { addrs, .. } = &fixed {
            allowed.extend(addrs.iter().map(|a| SocketAddr::new(*a, 443)));
        }
        if qtype == mode.qtype {
            continue;
        }
        if let Some((s, q)) = latest_query(&h, qtype, DnsTransport::Udp) {
            answer_query(&mut h, &s, &q, &fixed, false);
        }
    }
    match &believed {
        Some(Answer::Addresses { addrs, .. }) => {
            allowed.extend(addrs.iter().map(|a| SocketAddr::new(*a, 443)));
        }
        Some(Answer::Https { records, .. }) => {
            let ports: Vec<u16> = records.iter().filter_map(|r| r.port).chain([443]).collect();
            let hints = records.iter().flat_map(|r| {
                let v4 = r.ipv4hint.iter().map(|a| IpAddr::V4(*a));
                v4.chain(r.ipv6hint.iter().map(|a| IpAddr::V6(*a)))
            });
            for ip in hints.chain([IpAddr::V4(DNS_FIXED_V4), IpAddr::V6(DNS_FIXED_V6)]) {
                allowed.extend(ports.iter().map(|p| SocketAddr::new(ip, *p)));
            }
        }
        _ => {}
    }

    // Every attempt connects; the first to be Ready wins.
    let mut connected = 0;
    for _ in 0..64 {
        h.advance(Duration::from_millis(50));
        while connected < h.opened.len() {
            let (socket, _) = h.opened[connected];
            connected += 1;
            h.handle(Input::SocketConnected { socket });
        }
        if h.m.is_idle() {
            break;
        }
    }
    for (_, remote) in &h.opened {
        if !allowed.contains(remote) {
            violated!("connected to {remote}, which no answer gave (believed: {believed:?})");
        }
    }
    h.m.connection(conn).close(h.now);
    h.drain();
    h.finish();
}

// ---------------------------------------------------------------------------
// endpoint_parse
// ---------------------------------------------------------------------------

/// **endpoint_parse**: arbitrary text (lossily decoded as UTF-8) parses to
/// an endpoint or a clear error, as a [`RemoteEndpoint`], a
/// [`LocalEndpoint`] and a [`HostName`]. An endpoint that parses displays as
/// text that parses back to an equal endpoint and displays the same again
/// (the module's canonical-form promise); an error displays as text.
pub fn endpoint_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    round_trip::<RemoteEndpoint>(&text);
    round_trip::<LocalEndpoint>(&text);
    match HostName::new(&text) {
        Ok(name) => {
            if name.as_str().len() > 253 {
                violated!("host name of {} characters", name.as_str().len());
            }
            match HostName::new(name.as_str()) {
                Ok(again) if again == name => {}
                other => violated!("host name {name} reads back as {other:?}"),
            }
        }
        Err(e) => nonempty(&e),
    }
    if let Ok(e) = RemoteEndpoint::new().with_host_name(&text) {
        round_trip_value(&text, e);
    }
}

fn round_trip<E>(text: &str)
where
    E: FromStr<Err = EndpointParseError> + Display + PartialEq + Debug,
{
    match text.parse::<E>() {
        Ok(e) => round_trip_value(text, e),
        Err(err) => nonempty(&err),
    }
}

fn round_trip_value<E>(text: &str, e: E)
where
    E: FromStr<Err = EndpointParseError> + Display + PartialEq + Debug,
{
    let shown = e.to_string();
    match shown.parse::<E>() {
        Ok(back) if back == e => {
            let again = back.to_string();
            if again != shown {
                violated!("{text:?} displays as {shown:?}, then as {again:?}");
            }
        }
        Ok(back) => {
            violated!("{text:?} parses to {e:?}, displays as {shown:?}, reads back as {back:?}")
        }
        Err(err) => {
            violated!("{text:?} parses to {e:?}, displays as {shown:?}, which fails: {err}")
        }
    }
}

// ---------------------------------------------------------------------------
// framer
// ---------------------------------------------------------------------------

/// Which built-in framer a `framer` input drives, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FramerCase {
    /// The framer.
    pub kind: FramerKind,
    /// Its message size limit.
    pub max: u16,
    /// Bytes per read (0: the whole stream at once).
    pub chunk: u8,
    /// The received stream.
    pub stream: Vec<u8>,
}

/// The built-in framers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramerKind {
    /// u32 length prefix.
    LengthPrefixed,
    /// `\n`-terminated lines.
    Lines,
    /// Messages ended by this delimiter (1 to 4 bytes).
    Delimited(Vec<u8>),
}

impl FramerCase {
    /// Reads `[kind][max: u16 BE][chunk]` (`kind` ≥ 2: then one byte of
    /// delimiter length 1-4 and the delimiter), then the stream.
    pub fn decode(data: &[u8]) -> Option<Self> {
        let (&[kind, hi, lo, chunk], rest) = data.split_first_chunk::<4>()?;
        let (kind, rest) = match kind % 3 {
            0 => (FramerKind::LengthPrefixed, rest),
            1 => (FramerKind::Lines, rest),
            _ => {
                let (&n, rest) = rest.split_first()?;
                let n = usize::from(n % 4) + 1;
                let delimiter = rest.get(..n)?.to_vec();
                (FramerKind::Delimited(delimiter), &rest[n..])
            }
        };
        Some(FramerCase {
            kind,
            max: u16::from_be_bytes([hi, lo]),
            chunk,
            stream: rest.to_vec(),
        })
    }

    /// The input bytes for this case (inverse of [`FramerCase::decode`]).
    pub fn encode(&self) -> Vec<u8> {
        let [hi, lo] = self.max.to_be_bytes();
        let mut out = match &self.kind {
            FramerKind::LengthPrefixed => vec![0, hi, lo, self.chunk],
            FramerKind::Lines => vec![1, hi, lo, self.chunk],
            FramerKind::Delimited(d) => {
                let mut v = vec![2, hi, lo, self.chunk, (d.len() as u8).wrapping_sub(1)];
                v.extend_from_slice(d);
                v
            }
        };
        out.extend_from_slice(&self.stream);
        out
    }

    fn make(&self) -> Box<dyn Framer> {
        self.factory().make()
    }

    fn factory(&self) -> FramerFactory {
        let max = usize::from(self.max);
        match &self.kind {
            FramerKind::LengthPrefixed => FramerFactory::length_prefixed(u32::from(self.max)),
            FramerKind::Lines => FramerFactory::lines(max),
            FramerKind::Delimited(d) => FramerFactory::delimited(d.clone(), max),
        }
    }

    /// Framing bytes around a maximal message: the most a framer may hold
    /// without having decided.
    fn overhead(&self) -> usize {
        match &self.kind {
            FramerKind::LengthPrefixed => 4,
            FramerKind::Lines => 1,
            FramerKind::Delimited(d) => d.len(),
        }
    }
}

/// How a stream decoded: the messages, then whether it failed.
#[derive(Debug, PartialEq, Eq)]
struct Decoding {
    messages: Vec<Vec<u8>>,
    failed: bool,
}

/// Decodes `stream` read `chunk` bytes at a time, as the connection layer
/// does (buffer, decode, drop what was consumed), checking every answer the
/// framer gives against the bytes it was shown.
fn decode_stream(case: &FramerCase, stream: &[u8], chunk: usize) -> Decoding {
    let mut framer = case.make();
    if framer.max_message_size() != usize::from(case.max) {
        violated!(
            "{} reports max {} for a limit of {}",
            framer.name(),
            framer.max_message_size(),
            case.max
        );
    }
    let bound = usize::from(case.max) + case.overhead();
    let mut buffer: Vec<u8> = Vec::new();
    let mut messages = Vec::new();
    for piece in stream.chunks(chunk.max(1)) {
        buffer.extend_from_slice(piece);
        loop {
            match framer.decode(&buffer) {
                Ok(Decoded::Message {
                    header,
                    len,
                    trailer,
                }) => {
                    let end = header.saturating_add(len).saturating_add(trailer);
                    if end > buffer.len() || end == 0 {
                        violated!(
                            "{} framed {header}+{len}+{trailer} bytes of {}",
                            framer.name(),
                            buffer.len()
                        );
                    }
                    if len > usize::from(case.max) {
                        violated!(
                            "{} decoded a {len}-byte message over its {} limit",
                            framer.name(),
                            case.max
                        );
                    }
                    messages.push(buffer[header..header + len].to_vec());
                    buffer.drain(..end);
                }
                Ok(Decoded::NeedMore) => {
                    // Bounded memory: a framer may not ask for more while it
                    // already holds more than a maximal frame.
                    if buffer.len() > bound {
                        violated!(
                            "{} wants more bytes while holding {} (bound {bound})",
                            framer.name(),
                            buffer.len()
                        );
                    }
                    break;
                }
                Err(e) => {
                    if let FramingFailure::TooLarge { limit, .. } = e
                        && limit != u64::from(case.max)
                    {
                        violated!(
                            "{} reports limit {limit}, configured {}",
                            framer.name(),
                            case.max
                        );
                    }
                    nonempty(&e);
                    return Decoding {
                        messages,
                        failed: true,
                    };
                }
            }
        }
    }
    Decoding {
        messages,
        failed: false,
    }
}

/// **framer**: arbitrary bytes with arbitrary chunking into each built-in
/// framer ([`FramerCase`] describes the input). Checks:
/// - every decoded message lies inside the bytes shown and within the limit;
///   a framer never asks for more bytes while holding more than a maximal
///   frame, so no claimed length over the limit is ever buffered;
/// - chunking does not change the outcome (same messages, same failure);
/// - decoded messages encode and decode back to themselves;
/// - a whole connection (a listener with the framer, the stream as socket
///   data respecting `read_capacity`) delivers exactly those messages, in
///   order, and fails with a framing error exactly when the framer does.
pub fn framer(data: &[u8]) {
    let Some(case) = FramerCase::decode(data) else {
        return;
    };
    let chunk = match case.chunk {
        0 => usize::MAX,
        n => usize::from(n),
    };
    let whole = decode_stream(&case, &case.stream, usize::MAX);
    let chunked = decode_stream(&case, &case.stream, chunk);
    if whole != chunked {
        violated!("chunks of {chunk} decode as {chunked:?}, the whole stream as {whole:?}");
    }

    let mut encoder = case.make();
    let mut encoded = Vec::new();
    for m in &whole.messages {
        if let Err(e) = encoder.encode(m, &mut encoded) {
            violated!("a decoded message does not encode again: {e}");
        }
    }
    let again = decode_stream(&case, &encoded, chunk);
    if again.failed || again.messages != whole.messages {
        violated!("decoded messages do not survive encode and decode: {again:?}");
    }

    framer_through_machine(&case, chunk, &whole);
}

/// The framer case through a real accepted connection.
fn framer_through_machine(case: &FramerCase, chunk: usize, expected: &Decoding) {
    let mut h = Harness::new(Config::new(0));
    let listen = ListenerConfig::on(vec![addr("192.0.2.10:443")]).with_framer(case.factory());
    let Some(listener) = h.listen(listen) else {
        violated!("listen refused");
    };
    let Some(socket) = h.accept(listener, addr("198.51.100.7:40000")) else {
        violated!("accept refused");
    };
    let Some(conn) = h.events.iter().find_map(|e| match e {
        Event::ConnectionReceived { conn, .. } => Some(*conn),
        _ => None,
    }) else {
        violated!("a plain framed connection was not received at once");
    };
    let want = usize::from(case.max).max(1);
    let pending = h.m.config().io.max_pending_receives;
    for _ in 0..pending {
        if h.m.connection(conn).receive(h.now, 1, want).is_err() {
            violated!("receive refused on a fresh connection");
        }
    }
    let mut received = 0;
    let mut rest = &case.stream[..];
    while !rest.is_empty() {
        let room = h.m.socket(socket).read_capacity().min(chunk);
        if room == 0 {
            break;
        }
        let (piece, tail) = rest.split_at(room.min(rest.len()));
        rest = tail;
        h.handle(Input::SocketData {
            socket,
            data: piece,
        });
        // Keep the receive requests topped up.
        let now_received = count_received(&h.events, conn);
        for _ in received..now_received {
            let _ = h.m.connection(conn).receive(h.now, 1, want);
        }
        received = now_received;
        h.drain();
    }
    h.handle(Input::SocketEof { socket });
    // Ask until nothing more comes: more messages may have arrived in one
    // read than there were requests waiting.
    for _ in 0..=expected.messages.len() {
        let before = count_received(&h.events, conn);
        if h.m.connection(conn).receive(h.now, 1, want).is_err() {
            break;
        }
        h.drain();
        if count_received(&h.events, conn) == before {
            break;
        }
    }
    let got: Vec<Vec<u8>> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Received { conn: c, data } if *c == conn => Some(data.clone()),
            _ => None,
        })
        .collect();
    let failed = h.events.iter().any(|e| {
        matches!(e, Event::ConnectionError { conn: c, reason: FailureReason::Framing(_) } if *c == conn)
    });
    if failed != expected.failed {
        violated!(
            "the connection failed: {failed}, the framer alone: {}",
            expected.failed
        );
    }
    let complete = if failed {
        expected.messages.starts_with(&got)
    } else {
        got == expected.messages
    };
    if !complete {
        violated!(
            "the connection delivered {got:?}, the framer decodes {:?}",
            expected.messages
        );
    }
    h.m.connection(conn).close(h.now);
    h.drain();
    h.finish();
}

fn count_received(events: &[Event], conn: ConnectionId) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Received { conn: c, .. } | Event::ReceivedPartial { conn: c, .. } if *c == conn))
        .count()
}

// ---------------------------------------------------------------------------
// Two machines on one in-memory TCP connection
// ---------------------------------------------------------------------------

/// Where the pair's server listens (the fuzz certificate names it).
const SERVER_ADDR: &str = "192.0.2.10:443";
/// Where the pair's client appears to come from.
const CLIENT_ADDR: &str = "198.51.100.7:40000";
/// Bound on delivery rounds without any application action: two stacks
/// settle in a handful; more means they feed each other without end.
const MAX_FLOW_ROUNDS: usize = 10_000;

/// A client machine (index 0) and a server machine (index 1) joined by one
/// TCP connection in memory. Bytes move only when asked to, so a test can
/// hold, corrupt or replace what one side receives.
pub struct Pair {
    /// The client and the server.
    pub h: [Harness; 2],
    /// Each machine's socket of the connection.
    pub sock: [SocketId; 2],
    /// Each machine's connection, once `Ready` / `ConnectionReceived`.
    pub conn: [Option<ConnectionId>; 2],
    /// Bytes on their way to machine `i`.
    pub to: [VecDeque<u8>; 2],
    /// How machine `i`'s peer ended its side, if it did.
    end_to: [Option<SocketEnd>; 2],
    end_told: [bool; 2],
    ends_seen: [usize; 2],
    /// Every piece machine `i` wrote, in order (its TLS flights).
    pub sent: [Vec<Vec<u8>>; 2],
}

impl Pair {
    /// Connects a client to a listener, with TLS when `tls`, and runs the
    /// handshakes to the end. `None` if establishment failed.
    pub fn establish(tls: bool) -> Option<Pair> {
        let mut server = Harness::new(Config {
            seed: 2,
            ..Config::new(0)
        });
        let mut lc = ListenerConfig::on(vec![addr(SERVER_ADDR)]);
        if tls {
            lc = lc.with_security(server_tls());
        }
        let listener = server.listen(lc)?;
        let mut client = Harness::new(Config {
            seed: 1,
            ..Config::new(0)
        });
        let mut pre = Preconnection::new(SERVER_ADDR.parse().expect("constant endpoint"));
        if tls {
            pre = pre.with_security(client_tls());
        }
        client.initiate(&pre)?;
        let &(csock, _) = client.opened.last()?;
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
        pair.conn[0] = pair.h[0].events.iter().find_map(|e| match e {
            Event::Ready { conn, .. } => Some(*conn),
            _ => None,
        });
        pair.conn[1] = pair.h[1].events.iter().find_map(|e| match e {
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
            let data = self.h[i].m.socket(sock).transmit_data();
            if data.is_empty() {
                break;
            }
            let piece = data.to_vec();
            self.to[1 - i].extend(piece.iter().copied());
            self.h[i].m.handle(
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
    pub fn deliver(&mut self, i: usize, max: usize) -> bool {
        let sock = self.sock[i];
        let room = self.h[i]
            .m
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
    pub fn flow(&mut self, held: Option<usize>) {
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
    pub fn tick(&mut self, d: Duration) {
        for h in &mut self.h {
            h.advance(d);
        }
    }

    /// As an adapter's stream read through machine `i`'s checked-out TLS
    /// session: the socket holds the bytes queued to `i`, then its peer's
    /// end. The peer only ever writes `p`s, so any other plaintext is a
    /// broken invariant.
    pub fn read_through(&mut self, i: usize, max: usize) {
        let Some(conn) = self.conn[i] else { return };
        let Some(mut session) = self.h[i]
            .m
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
        self.h[i].m.handle(now, Input::TlsCheckIn(session));
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
    pub fn write_through(&mut self, i: usize, data: &[u8], room: usize) {
        let Some(conn) = self.conn[i] else { return };
        let Some(mut session) = self.h[i]
            .m
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
        self.h[i].m.handle(now, Input::TlsCheckIn(session));
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

// ---------------------------------------------------------------------------
// tls_records
// ---------------------------------------------------------------------------

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
/// Both machines' [`Checker`]s hold throughout, and at the end, after both
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
    let mut h = Harness::new(Config::new(0));
    let pre = Preconnection::new(SERVER_ADDR.parse().expect("constant endpoint"))
        .with_security(client_tls());
    let Some(conn) = h.initiate(&pre) else {
        violated!("initiate with TLS refused");
    };
    let Some(&(socket, _)) = h.opened.last() else {
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
    let error = h.events.iter().find_map(|e| match e {
        Event::EstablishmentError { conn: c, error } if *c == conn => Some(error.clone()),
        _ => None,
    });
    match error {
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
    h.m.connection(conn).close(h.now);
    h.drain();
    h.finish();
}

fn tls_raw_server(bytes: &[u8], chunk: usize) {
    let mut h = Harness::new(Config::new(0));
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
    if h.m.stats().live_connections != 0 || h.m.stats().failed_handshakes != 1 {
        violated!(
            "after bytes and EOF the listener holds {} connections, counted {} failed handshakes",
            h.m.stats().live_connections,
            h.m.stats().failed_handshakes
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
                    .m
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
                    let _ = pair.h[p].m.connection(c).write(&vec![b'p'; usize::from(n)]);
                    pair.h[p].drain();
                }
            }
            TlsOp::PeerClose => {
                if let Some(c) = pair.conn[p] {
                    pair.h[p].m.connection(c).close(now);
                    pair.h[p].drain();
                }
            }
            TlsOp::PeerAbort => {
                if let Some(c) = pair.conn[p] {
                    pair.h[p].m.connection(c).abort(now);
                    pair.h[p].drain();
                }
            }
            TlsOp::Receive => {
                if let Some(c) = pair.conn[t] {
                    let _ = pair.h[t].m.connection(c).receive(now, 1, 1 << 16);
                    pair.h[t].drain();
                }
            }
            TlsOp::Read(n) => {
                if let Some(c) = pair.conn[t] {
                    let mut buf = vec![0; usize::from(n)];
                    let _ = pair.h[t].m.connection(c).read(&mut buf);
                    pair.h[t].drain();
                }
            }
            TlsOp::Write(n) => {
                if let Some(c) = pair.conn[t] {
                    let _ = pair.h[t].m.connection(c).write(&vec![b't'; usize::from(n)]);
                    pair.h[t].drain();
                }
            }
            TlsOp::Close => {
                if let Some(c) = pair.conn[t] {
                    pair.h[t].m.connection(c).close(now);
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
            pair.h[i].m.connection(c).close(now);
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

// ---------------------------------------------------------------------------
// machine
// ---------------------------------------------------------------------------

/// A `machine` input: a configuration and a sequence of operations, decoded
/// from the raw bytes by `arbitrary`.
#[derive(Arbitrary, Debug)]
pub struct MachineCase {
    config: ConfigSpec,
    ops: Vec<MachineOp>,
}

#[derive(Arbitrary, Debug)]
struct ConfigSpec {
    seed: u8,
    /// 0: the default (65 536); else 1 to 8.
    max_connections: u8,
    /// Small limits make back-pressure and refusals reachable.
    limits: Option<LimitsSpec>,
    race: RaceSpec,
    /// 0, 1 or 2 DNS servers.
    servers: u8,
    dns_attempts: u8,
}

#[derive(Arbitrary, Debug)]
struct LimitsSpec {
    queued_bytes: u16,
    queued_messages: u8,
    high_water: u16,
    receive_buffer: u16,
    pending_receives: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct RaceSpec {
    policy: u8,
    attempt_delay_ms: u16,
    first_family_count: u8,
    path_mode: u8,
    /// Zero is allowed: a degenerate limit must still not break anything.
    max_concurrent: u8,
    max_candidates: u8,
}

impl RaceSpec {
    fn config(self) -> RaceConfig {
        let policy =
            [Policy::Hev3, Policy::Rfc6555, Policy::Sequential][usize::from(self.policy % 3)];
        RaceConfig {
            connection_attempt_delay: Duration::from_millis(u64::from(self.attempt_delay_ms)),
            first_address_family_count: self.first_family_count % 4,
            path_mode: match self.path_mode % 3 {
                0 => RacingMode::Staggered(Duration::from_millis(u64::from(self.attempt_delay_ms))),
                1 => RacingMode::Simultaneous,
                _ => RacingMode::Failover,
            },
            max_concurrent_attempts: u16::from(self.max_concurrent % 10),
            max_candidates: match self.max_candidates {
                0 => 64,
                n => u16::from(n % 80),
            },
            ..RaceConfig::for_policy(policy)
        }
    }
}

/// Names an id: the latest one seen of its kind, the n-th one seen (live or
/// freed), or raw parts (unknown or stale ids).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Pick {
    Latest,
    Nth(u8),
    Raw(u32, u32),
}

fn pick<T: Copy>(list: &[T], p: Pick, raw: impl Fn(u32, u32) -> T) -> T {
    match (p, list.last()) {
        (Pick::Latest, Some(last)) => *last,
        (Pick::Nth(n), Some(_)) => list[usize::from(n) % list.len()],
        (Pick::Raw(i, g), _) => raw(i, g),
        (_, None) => raw(0, 0),
    }
}

/// One step of a `machine` input. Decoded by hand (see the `Arbitrary`
/// impl) with fixed op codes, so a saved input keeps its meaning when ops
/// are added; the payloads are `arbitrary`-derived.
#[derive(Debug)]
enum MachineOp {
    Initiate(InitiateSpec),
    Send {
        conn: Pick,
        msg: MsgSpec,
    },
    Receive {
        conn: Pick,
        min: u16,
        max: u16,
    },
    Read {
        conn: Pick,
        len: u16,
    },
    Write {
        conn: Pick,
        len: u16,
    },
    Close {
        conn: Pick,
    },
    Abort {
        conn: Pick,
    },
    Listen(ListenSpec),
    Accept {
        listener: Pick,
        remote: u8,
    },
    Stop {
        listener: Pick,
    },
    SetConnectionLimit {
        listener: Pick,
        limit: Option<u8>,
    },
    ListenFailed {
        listener: Pick,
        reason: ReasonSpec,
    },
    DnsAnswer {
        txn: Pick,
        answer: AnswerSpec,
        spoofed: bool,
        truncated: bool,
    },
    DnsRaw {
        txn: Pick,
        bytes: Vec<u8>,
        stream: bool,
        patch_id: bool,
    },
    DnsTransportFailed {
        txn: Pick,
    },
    Connected {
        socket: Pick,
    },
    Data {
        socket: Pick,
        bytes: Vec<u8>,
    },
    Eof {
        socket: Pick,
    },
    Failed {
        socket: Pick,
        reason: ReasonSpec,
    },
    Transmitted {
        socket: Pick,
        n: u16,
    },
    /// Joins an attempt's socket to a new connection accepted by a listener
    /// of the same machine, so real handshakes can happen.
    Link {
        socket: Pick,
        listener: Pick,
    },
    /// Moves bytes along every link until nothing moves.
    Flow,
    /// Moves at most `chunk` bytes (at least one) along each link, once:
    /// partial records and frames.
    Trickle {
        chunk: u16,
    },
    /// A whole connection in one step: a listener on 192.0.2.10:443 with
    /// this TLS and framer, an initiate to it with the same, linked and
    /// flowed — so deep states are one operation away.
    Connect {
        tls: bool,
        framer: Option<FramerSpec>,
        first: Option<MsgSpec>,
        limit: Option<u8>,
    },
    /// Many messages at once: `count` sends of `msg`.
    Bulk {
        conn: Pick,
        msg: MsgSpec,
        count: u8,
    },
    /// `len` bytes of `fill` arrive on a socket, without costing input bytes.
    Flood {
        socket: Pick,
        len: u16,
        fill: u8,
    },
    Interfaces {
        list: Vec<IfaceSpec>,
        as_input: bool,
    },
    Advance {
        ms: u16,
    },
    /// `handle_timeout` at the current time, due or not.
    TimeoutNow,
    /// The application takes over reading a plain stream's socket
    /// (`Machine::delegate_reading`).
    DelegateReading {
        conn: Pick,
    },
    /// A plain stream's pass-through: with `write`, up to `len` bytes go
    /// straight to the linked partner (`write_through`, `wrote_through`);
    /// else up to `len` bytes are read straight from what the partner
    /// sent (`read_through`).
    PlainThrough {
        conn: Pick,
        write: bool,
        len: u16,
    },
    /// A TLS stream's checked-out session (`check_out_tls`) reads up to
    /// `len` bytes from the partner, or writes `len` bytes to a socket that
    /// takes at most `room` of them now.
    TlsThrough {
        conn: Pick,
        write: bool,
        len: u16,
        room: u16,
    },
}

/// Op codes are taken modulo this, which must never change (room for new
/// ops up to it); codes without an op decode as `TimeoutNow`, which is cheap.
const MACHINE_OP_CODES: u8 = 32;

impl<'a> Arbitrary<'a> for MachineOp {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        use MachineOp::*;
        // Append new ops with new codes; never renumber.
        Ok(match u8::arbitrary(u)? % MACHINE_OP_CODES {
            0 => Initiate(u.arbitrary()?),
            1 => Send {
                conn: u.arbitrary()?,
                msg: u.arbitrary()?,
            },
            2 => Receive {
                conn: u.arbitrary()?,
                min: u.arbitrary()?,
                max: u.arbitrary()?,
            },
            3 => Read {
                conn: u.arbitrary()?,
                len: u.arbitrary()?,
            },
            4 => Write {
                conn: u.arbitrary()?,
                len: u.arbitrary()?,
            },
            5 => Close {
                conn: u.arbitrary()?,
            },
            6 => Abort {
                conn: u.arbitrary()?,
            },
            7 => Listen(u.arbitrary()?),
            8 => Accept {
                listener: u.arbitrary()?,
                remote: u.arbitrary()?,
            },
            9 => Stop {
                listener: u.arbitrary()?,
            },
            10 => SetConnectionLimit {
                listener: u.arbitrary()?,
                limit: u.arbitrary()?,
            },
            11 => ListenFailed {
                listener: u.arbitrary()?,
                reason: u.arbitrary()?,
            },
            12 => DnsAnswer {
                txn: u.arbitrary()?,
                answer: u.arbitrary()?,
                spoofed: u.arbitrary()?,
                truncated: u.arbitrary()?,
            },
            13 => DnsRaw {
                txn: u.arbitrary()?,
                bytes: u.arbitrary()?,
                stream: u.arbitrary()?,
                patch_id: u.arbitrary()?,
            },
            14 => DnsTransportFailed {
                txn: u.arbitrary()?,
            },
            15 => Connected {
                socket: u.arbitrary()?,
            },
            16 => Data {
                socket: u.arbitrary()?,
                bytes: u.arbitrary()?,
            },
            17 => Eof {
                socket: u.arbitrary()?,
            },
            18 => Failed {
                socket: u.arbitrary()?,
                reason: u.arbitrary()?,
            },
            19 => Transmitted {
                socket: u.arbitrary()?,
                n: u.arbitrary()?,
            },
            20 => Link {
                socket: u.arbitrary()?,
                listener: u.arbitrary()?,
            },
            21 => Flow,
            22 => Trickle {
                chunk: u.arbitrary()?,
            },
            23 => Connect {
                tls: u.arbitrary()?,
                framer: u.arbitrary()?,
                first: u.arbitrary()?,
                limit: u.arbitrary()?,
            },
            24 => Bulk {
                conn: u.arbitrary()?,
                msg: u.arbitrary()?,
                count: u.arbitrary()?,
            },
            25 => Flood {
                socket: u.arbitrary()?,
                len: u.arbitrary()?,
                fill: u.arbitrary()?,
            },
            26 => Interfaces {
                list: u.arbitrary()?,
                as_input: u.arbitrary()?,
            },
            27 => Advance { ms: u.arbitrary()? },
            28 => DelegateReading {
                conn: u.arbitrary()?,
            },
            29 => PlainThrough {
                conn: u.arbitrary()?,
                write: u.arbitrary()?,
                len: u.arbitrary()?,
            },
            30 => TlsThrough {
                conn: u.arbitrary()?,
                write: u.arbitrary()?,
                len: u.arbitrary()?,
                room: u.arbitrary()?,
            },
            _ => TimeoutNow,
        })
    }
}

#[derive(Arbitrary, Debug)]
struct InitiateSpec {
    target: TargetSpec,
    tls: bool,
    framer: Option<FramerSpec>,
    first: Option<MsgSpec>,
    race: Option<RaceSpec>,
    prohibit_expensive: bool,
    avoid_kind: Option<u8>,
    conn_timeout_ms: Option<u16>,
}

#[derive(Arbitrary, Debug)]
enum TargetSpec {
    V4,
    V6,
    Name,
    NameOtherPort,
    Hosts,
    Localhost,
    NoPort,
    Service,
    Text(String),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct FramerSpec {
    kind: u8,
    max: u16,
}

impl FramerSpec {
    fn factory(self) -> FramerFactory {
        match self.kind % 3 {
            0 => FramerFactory::length_prefixed(u32::from(self.max)),
            1 => FramerFactory::lines(usize::from(self.max)),
            _ => FramerFactory::delimited(b"\r\n".to_vec(), usize::from(self.max)),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct MsgSpec {
    len: u16,
    fill: u8,
    replayable: bool,
    is_final: bool,
    priority: u8,
    lifetime_ms: Option<u16>,
}

impl MsgSpec {
    fn message(&self) -> Message {
        let mut m = Message::new(vec![self.fill; usize::from(self.len % 8192)])
            .priority(u32::from(self.priority));
        if self.replayable {
            m = m.safely_replayable();
        }
        if self.is_final {
            m = m.final_message();
        }
        if let Some(ms) = self.lifetime_ms {
            m = m.lifetime(Duration::from_millis(u64::from(ms)));
        }
        m
    }
}

#[derive(Arbitrary, Debug)]
struct ListenSpec {
    tls: bool,
    framer: Option<FramerSpec>,
    limit: Option<u8>,
    addrs: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ReasonSpec {
    Refused,
    Unreachable,
    TimedOut,
    Reset,
    Os(i32),
}

impl ReasonSpec {
    fn reason(self) -> FailureReason {
        match self {
            ReasonSpec::Refused => FailureReason::Refused,
            ReasonSpec::Unreachable => FailureReason::Unreachable,
            ReasonSpec::TimedOut => FailureReason::TimedOut,
            ReasonSpec::Reset => FailureReason::Reset,
            ReasonSpec::Os(e) => FailureReason::Os(e),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum AnswerSpec {
    Addrs(Vec<u8>, u16),
    Https(Vec<HttpsSpec>),
    NoData,
    NxDomain,
    ServFail,
    Refused,
}

#[derive(Arbitrary, Debug)]
struct HttpsSpec {
    priority: u8,
    other_target: bool,
    alpn: u8,
    no_default_alpn: bool,
    port: Option<u16>,
    v4: Vec<u8>,
    v6: Vec<u8>,
    ech: bool,
}

/// Addresses answers and hints draw from: ordinary, loopback, unspecified,
/// broadcast, link-local, mapped and NAT64 ones.
fn pool_v4(i: u8) -> Ipv4Addr {
    const POOL: [[u8; 4]; 8] = [
        [192, 0, 2, 10],
        [192, 0, 2, 11],
        [192, 0, 2, 20],
        [127, 0, 0, 1],
        [0, 0, 0, 0],
        [255, 255, 255, 255],
        [10, 0, 0, 1],
        [169, 254, 1, 1],
    ];
    Ipv4Addr::from(POOL[usize::from(i) % POOL.len()])
}

fn pool_v6(i: u8) -> Ipv6Addr {
    const POOL: [[u16; 8]; 8] = [
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10],
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11],
        [0, 0, 0, 0, 0, 0, 0, 1],
        [0xfe80, 0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x020a],
        [0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x020a],
        [0xfd00, 0, 0, 0, 0, 0, 0, 1],
    ];
    Ipv6Addr::from(POOL[usize::from(i) % POOL.len()])
}

impl AnswerSpec {
    fn answer(&self) -> Answer {
        match self {
            AnswerSpec::Addrs(list, ttl) if !list.is_empty() => Answer::Addresses {
                addrs: list
                    .iter()
                    .take(64)
                    .map(|&i| {
                        if i & 0x80 != 0 {
                            IpAddr::V6(pool_v6(i))
                        } else {
                            IpAddr::V4(pool_v4(i))
                        }
                    })
                    .collect(),
                ttl: u32::from(*ttl),
            },
            AnswerSpec::Https(records) if !records.is_empty() => Answer::Https {
                records: records.iter().take(20).map(HttpsSpec::record).collect(),
                ttl: 300,
            },
            AnswerSpec::Addrs(..) | AnswerSpec::Https(_) | AnswerSpec::NoData => {
                Answer::NoData { negative_ttl: 30 }
            }
            AnswerSpec::NxDomain => Answer::NxDomain { negative_ttl: 30 },
            AnswerSpec::ServFail => Answer::ServFail,
            AnswerSpec::Refused => Answer::Refused,
        }
    }
}

impl HttpsSpec {
    fn record(&self) -> HttpsRecord {
        const ALPN: [&str; 4] = ["h2", "http/1.1", "h3", "x"];
        HttpsRecord {
            priority: u16::from(self.priority % 4),
            target: self.other_target.then(|| host("svc.example.net")),
            alpn: (0..4)
                .filter(|b| self.alpn & (1 << b) != 0)
                .map(|b| ALPN[b].to_string())
                .collect(),
            no_default_alpn: self.no_default_alpn,
            port: self.port,
            ipv4hint: self.v4.iter().take(40).map(|&i| pool_v4(i)).collect(),
            ipv6hint: self.v6.iter().take(40).map(|&i| pool_v6(i)).collect(),
            ech: self.ech,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct IfaceSpec {
    index: u8,
    kind: u8,
    v4: bool,
    v6: bool,
    link_local_only: bool,
    up: bool,
    expensive: bool,
    constrained: bool,
}

impl IfaceSpec {
    fn interface(&self) -> Interface {
        let index = u32::from(self.index % 4) + 1;
        let mut addrs = Vec::new();
        if self.v4 {
            addrs.push(InterfaceAddress {
                addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100 + index as u8)),
                prefix_len: 24,
                deprecated: false,
            });
        }
        if self.v6 {
            let first = if self.link_local_only { 0xfe80 } else { 0x2001 };
            addrs.push(InterfaceAddress {
                addr: IpAddr::V6(Ipv6Addr::new(first, 0xdb8, 1, 0, 0, 0, 0, index as u16)),
                prefix_len: 64,
                deprecated: false,
            });
        }
        Interface {
            name: format!("if{index}"),
            index,
            kind: InterfaceKind::ALL[usize::from(self.kind) % InterfaceKind::ALL.len()],
            addrs,
            mtu: 1500,
            expensive: self.expensive,
            constrained: self.constrained,
            up: self.up,
        }
    }
}

/// Bound on operations per input, so one input cannot run for long.
const MAX_MACHINE_OPS: usize = 128;

/// The ids a `machine` run has seen, for [`Pick`].
#[derive(Default)]
struct Seen {
    conns: Vec<ConnectionId>,
    listeners: Vec<ListenerId>,
    sockets: Vec<SocketId>,
    /// Sockets from `OpenTcp`, for `Link`.
    attempts: Vec<SocketId>,
    /// (attempt socket, accepted socket).
    links: Vec<(SocketId, SocketId)>,
    /// FIN or RST owed to a socket once its partner's bytes are in.
    owed: Vec<(SocketId, SocketId, SocketEnd)>,
    /// The end each socket was told about, so none is told twice.
    told: HashMap<SocketId, SocketEnd>,
    events_seen: usize,
    opened_seen: usize,
    ends_seen: usize,
}

/// **machine**: an `arbitrary`-decoded [`MachineCase`]: application
/// commands (initiate, send, receive, read, write, close, abort, listen,
/// accept, stop, connection limits), socket and DNS reports (real answers
/// built by the responder, and raw bytes), timer expiries, interface
/// changes, and in-machine links that let real TLS and framer handshakes
/// complete — with stale and unknown ids drawn as often as live ones.
///
/// Checks, after every operation: the [`Checker`] invariants (no panic, at
/// most one `Ready` per connection, RFC 9622 event order, no output naming
/// a freed handle), the socket table agreeing with the outputs, `Ready`
/// naming the remote its socket was opened to, and the connection bound.
/// At the end, everything is aborted and every timer run: nothing may be
/// left (see [`Harness::finish`]).
pub fn machine(data: &[u8]) {
    let Ok(case) = MachineCase::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let c = &case.config;
    let max_connections = match c.max_connections {
        0 => 65_536,
        n => usize::from(n % 8) + 1,
    };
    let io = match &c.limits {
        None => IoLimits::default(),
        Some(l) => IoLimits {
            max_queued_bytes: usize::from(l.queued_bytes),
            max_queued_messages: usize::from(l.queued_messages),
            transmit_high_water: usize::from(l.high_water),
            max_receive_buffer: usize::from(l.receive_buffer),
            max_pending_receives: usize::from(l.pending_receives),
        },
    };
    let config = Config {
        seed: u64::from(c.seed),
        race: c.race.config(),
        dns: DnsConfig {
            servers: DNS_SERVERS
                .iter()
                .take(usize::from(c.servers % 3))
                .map(|s| addr(s))
                .collect(),
            attempts: c.dns_attempts % 3,
            ..DnsConfig::default()
        },
        hosts: taps_core::dns::parse_hosts(
            "192.0.2.20 hosts.example\n2001:db8::20 hosts.example\n",
        ),
        max_connections,
        io,
        ..Config::new(0)
    };
    let mut h = Harness::new(config);
    let mut seen = Seen::default();
    if tracing() {
        eprintln!("{:?}", case.config);
    }
    for op in case.ops.iter().take(MAX_MACHINE_OPS) {
        if tracing() {
            eprintln!("{op:?}");
        }
        machine_op(&mut h, &mut seen, op);
        h.drain();
        note_ids(&h, &mut seen);
        if h.m.stats().live_connections > max_connections {
            violated!(
                "{} connections live, the limit is {max_connections}",
                h.m.stats().live_connections
            );
        }
    }
    h.finish();
}

/// Learns the ids the machine's outputs introduced, and checks that each
/// `Ready` names the remote its socket went to.
fn note_ids(h: &Harness, seen: &mut Seen) {
    for &(socket, _) in &h.opened[seen.opened_seen..] {
        seen.sockets.push(socket);
        seen.attempts.push(socket);
    }
    seen.opened_seen = h.opened.len();
    for e in &h.events[seen.events_seen..] {
        match e {
            Event::ConnectionReceived { conn, .. } => seen.conns.push(*conn),
            Event::Ready { socket, remote, .. } => {
                let opened = h.opened.iter().find(|(s, _)| s == socket).map(|(_, r)| *r);
                if opened != Some(*remote) {
                    violated!(
                        "Ready names {remote} for {socket:?}, which was opened to {opened:?}"
                    );
                }
            }
            _ => {}
        }
    }
    seen.events_seen = h.events.len();
}

fn machine_op(h: &mut Harness, seen: &mut Seen, op: &MachineOp) {
    let now = h.now;
    let conn_id = match op {
        MachineOp::Send { conn, .. }
        | MachineOp::Receive { conn, .. }
        | MachineOp::Read { conn, .. }
        | MachineOp::Write { conn, .. }
        | MachineOp::DelegateReading { conn }
        | MachineOp::PlainThrough { conn, .. }
        | MachineOp::TlsThrough { conn, .. }
        | MachineOp::Close { conn }
        | MachineOp::Bulk { conn, .. }
        | MachineOp::Abort { conn } => Some(pick(&seen.conns, *conn, ConnectionId::from_raw)),
        _ => None,
    };
    if let Some(id) = conn_id {
        let live = h.m.connection_info(id).map(|c| c.state()).is_some();
        h.check.forged(id, live);
    }
    let conn = |seen: &Seen, p: Pick| pick(&seen.conns, p, ConnectionId::from_raw);
    let listener = |seen: &Seen, p: Pick| pick(&seen.listeners, p, ListenerId::from_raw);
    let socket = |seen: &Seen, p: Pick| pick(&seen.sockets, p, SocketId::from_raw);
    let txn = |h: &Harness, p: Pick| {
        let txns: Vec<DnsTxnId> = h.queries.iter().map(|(s, _)| s.txn).collect();
        pick(&txns, p, DnsTxnId::from_raw)
    };
    match op {
        MachineOp::Initiate(spec) => {
            let Some(pre) = preconnection(spec) else {
                return;
            };
            let result = match &spec.first {
                Some(msg) => h.m.initiate_with_send(now, &pre, msg.message()),
                None => {
                    h.m.initiate(now, &pre)
                        .map(|c| (c, taps_core::MessageId(0)))
                }
            };
            if let Some(c) = h.after_initiate(result) {
                seen.conns.push(c);
            }
        }
        MachineOp::Send { conn: p, msg } => {
            if let Err(e) = h.m.connection(conn(seen, *p)).send(now, msg.message()) {
                nonempty(&e);
            }
        }
        MachineOp::Receive { conn: p, min, max } => {
            let _ =
                h.m.connection(conn(seen, *p))
                    .receive(now, usize::from(*min), usize::from(*max));
        }
        MachineOp::Read { conn: p, len } => {
            let mut buf = vec![0; usize::from(*len)];
            if let Ok(n) = h.m.connection(conn(seen, *p)).read(&mut buf)
                && n > buf.len()
            {
                violated!("read returned {n} for a {}-byte buffer", buf.len());
            }
        }
        MachineOp::Write { conn: p, len } => {
            let data = vec![b'w'; usize::from(*len)];
            if let Ok(n) = h.m.connection(conn(seen, *p)).write(&data)
                && n > data.len()
            {
                violated!("write took {n} of {} bytes", data.len());
            }
        }
        MachineOp::Close { conn: p } => h.m.connection(conn(seen, *p)).close(now),
        MachineOp::Abort { conn: p } => h.m.connection(conn(seen, *p)).abort(now),
        MachineOp::Listen(spec) => {
            let v4 = addr(SERVER_ADDR);
            let v6 = addr("[2001:db8::10]:443");
            let local = match spec.addrs % 4 {
                0 => vec![v4],
                1 => vec![v6],
                2 => vec![v6, v4],
                _ => Vec::new(),
            };
            let mut lc = ListenerConfig::on(local);
            if spec.tls {
                lc = lc.with_security(server_tls());
            }
            if let Some(f) = spec.framer {
                lc = lc.with_framer(f.factory());
            }
            lc.connection_limit = spec.limit.map(usize::from);
            if let Some(l) = h.listen(lc) {
                seen.listeners.push(l);
            }
        }
        MachineOp::Accept {
            listener: p,
            remote,
        } => {
            let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, *remote)), 40000);
            if let Some(s) = h.accept(listener(seen, *p), from) {
                seen.sockets.push(s);
            }
        }
        MachineOp::Stop { listener: p } => h.m.listener(listener(seen, *p)).stop(),
        MachineOp::SetConnectionLimit { listener: p, limit } => {
            h.m.listener(listener(seen, *p))
                .set_new_connection_limit(limit.map(usize::from));
        }
        MachineOp::ListenFailed {
            listener: p,
            reason,
        } => h.handle(Input::ListenFailed {
            listener: listener(seen, *p),
            reason: reason.reason(),
        }),
        MachineOp::DnsAnswer {
            txn: p,
            answer,
            spoofed,
            truncated,
        } => {
            let id = txn(h, *p);
            let asked = h.queries.iter().rev().find(|(s, _)| s.txn == id).cloned();
            let (send, q) = asked.unwrap_or_else(|| {
                let q = question(0, DNS_NAME, QueryType::A);
                let send = DnsSend {
                    txn: id,
                    server: addr(DNS_SERVERS[0]),
                    transport: DnsTransport::Udp,
                    payload: Vec::new(),
                };
                (send, q)
            });
            let send = DnsSend {
                server: if *spoofed {
                    addr(DNS_SPOOFER)
                } else {
                    send.server
                },
                ..send
            };
            answer_query(h, &send, &q, &answer.answer(), *truncated);
        }
        MachineOp::DnsRaw {
            txn: p,
            bytes,
            stream,
            patch_id,
        } => {
            let id = txn(h, *p);
            let asked = h.queries.iter().rev().find(|(s, _)| s.txn == id).cloned();
            let mut bytes = bytes.clone();
            if let Some((_, q)) = &asked
                && *patch_id
                && bytes.len() >= 2
            {
                bytes[..2].copy_from_slice(&q.id.to_be_bytes());
            }
            if *stream {
                h.handle(Input::DnsStreamData {
                    txn: id,
                    data: &bytes,
                });
            } else {
                let from = asked.map_or_else(|| addr(DNS_SERVERS[0]), |(s, _)| s.server);
                h.handle(Input::DnsDatagram {
                    txn: id,
                    from,
                    payload: &bytes,
                });
            }
        }
        MachineOp::DnsTransportFailed { txn: p } => {
            let id = txn(h, *p);
            h.handle(Input::DnsTransportFailed { txn: id });
        }
        MachineOp::Connected { socket: p } => h.handle(Input::SocketConnected {
            socket: socket(seen, *p),
        }),
        MachineOp::Data { socket: p, bytes } => h.handle(Input::SocketData {
            socket: socket(seen, *p),
            data: bytes,
        }),
        MachineOp::Eof { socket: p } => h.handle(Input::SocketEof {
            socket: socket(seen, *p),
        }),
        MachineOp::Failed { socket: p, reason } => h.handle(Input::SocketFailed {
            socket: socket(seen, *p),
            reason: reason.reason(),
        }),
        MachineOp::Transmitted { socket: p, n } => {
            let s = socket(seen, *p);
            h.m.handle(
                now,
                Input::Transmitted {
                    socket: s,
                    len: usize::from(*n),
                },
            );
        }
        MachineOp::Link {
            socket: p,
            listener: l,
        } => {
            let client = pick(&seen.attempts, *p, SocketId::from_raw);
            let linked = seen.links.iter().any(|(a, b)| *a == client || *b == client);
            if linked || !h.check.is_live_socket(client) {
                return;
            }
            if let Some(server) = h.accept(listener(seen, *l), addr(CLIENT_ADDR)) {
                seen.sockets.push(server);
                seen.links.push((client, server));
                h.handle(Input::SocketConnected { socket: client });
            }
        }
        MachineOp::Flow => flow_links(h, seen),
        MachineOp::DelegateReading { conn: p } => {
            h.m.connection(conn(seen, *p)).delegate_reading();
            h.drain();
        }
        MachineOp::PlainThrough {
            conn: p,
            write,
            len,
        } => plain_through(h, seen, conn(seen, *p), *write, usize::from(*len)),
        MachineOp::TlsThrough {
            conn: p,
            write,
            len,
            room,
        } => tls_through(
            h,
            seen,
            conn(seen, *p),
            *write,
            usize::from(*len),
            usize::from(*room),
        ),
        MachineOp::Trickle { chunk } => {
            let chunk = usize::from(*chunk).max(1);
            for i in 0..seen.links.len() {
                let (a, b) = seen.links[i];
                h.pipe(a, b, chunk);
                h.pipe(b, a, chunk);
            }
        }
        MachineOp::Connect {
            tls,
            framer,
            first,
            limit,
        } => {
            let mut lc = ListenerConfig::on(vec![addr(SERVER_ADDR)]);
            let mut pre = Preconnection::new(SERVER_ADDR.parse().expect("constant endpoint"));
            if *tls {
                lc = lc.with_security(server_tls());
                pre = pre.with_security(client_tls());
            }
            if let Some(f) = framer {
                lc = lc.with_framer(f.factory());
                pre = pre.with_framer(f.factory());
            }
            lc.connection_limit = limit.map(usize::from);
            let Some(l) = h.listen(lc) else {
                return;
            };
            seen.listeners.push(l);
            let opened = h.opened.len();
            let result = match first {
                Some(msg) => h.m.initiate_with_send(now, &pre, msg.message()),
                None => {
                    h.m.initiate(now, &pre)
                        .map(|c| (c, taps_core::MessageId(0)))
                }
            };
            let Some(c) = h.after_initiate(result) else {
                return;
            };
            seen.conns.push(c);
            note_ids(h, seen);
            let Some(&(client, _)) = h.opened.get(opened) else {
                return;
            };
            if let Some(server) = h.accept(l, addr(CLIENT_ADDR)) {
                seen.sockets.push(server);
                seen.links.push((client, server));
                h.handle(Input::SocketConnected { socket: client });
                flow_links(h, seen);
            }
        }
        MachineOp::Bulk {
            conn: p,
            msg,
            count,
        } => {
            let id = conn(seen, *p);
            for _ in 0..*count {
                if h.m.connection(id).send(now, msg.message()).is_err() {
                    break;
                }
            }
        }
        MachineOp::Flood {
            socket: p,
            len,
            fill,
        } => {
            let data = vec![*fill; usize::from(*len)];
            h.handle(Input::SocketData {
                socket: socket(seen, *p),
                data: &data,
            });
        }
        MachineOp::Interfaces { list, as_input } => {
            let list: Vec<Interface> = list.iter().take(8).map(IfaceSpec::interface).collect();
            if *as_input {
                h.handle(Input::InterfacesChanged(list));
            } else {
                h.m.handle(now, Input::InterfacesChanged(list));
            }
        }
        MachineOp::Advance { ms } => h.advance(Duration::from_millis(u64::from(*ms))),
        MachineOp::TimeoutNow => h.m.handle_timeout(now),
    }
}

/// The preconnection an `Initiate` asks for; `None` when its text does not
/// parse.
fn preconnection(spec: &InitiateSpec) -> Option<Preconnection> {
    let text = match &spec.target {
        TargetSpec::V4 => SERVER_ADDR.to_string(),
        TargetSpec::V6 => "[2001:db8::10]:443".to_string(),
        TargetSpec::Name => format!("{DNS_NAME}:443"),
        TargetSpec::NameOtherPort => format!("{DNS_NAME}:8443"),
        TargetSpec::Hosts => "hosts.example:443".to_string(),
        TargetSpec::Localhost => "localhost:443".to_string(),
        TargetSpec::NoPort => DNS_NAME.to_string(),
        TargetSpec::Service => "myserver._http._tcp.local".to_string(),
        TargetSpec::Text(t) => t.clone(),
    };
    let mut pre = Preconnection::new(text.parse().ok()?);
    if spec.tls {
        pre = pre.with_security(client_tls());
    }
    if let Some(f) = spec.framer {
        pre = pre.with_framer(f.factory());
    }
    if let Some(r) = spec.race {
        pre = pre.with_race(r.config());
    }
    let mut props = taps_core::TransportProperties::default();
    if spec.prohibit_expensive {
        props = props.prohibit_expensive();
    }
    if let Some(k) = spec.avoid_kind {
        props = props
            .avoid_interface_kind(InterfaceKind::ALL[usize::from(k) % InterfaceKind::ALL.len()]);
    }
    props.connection.conn_timeout = spec
        .conn_timeout_ms
        .map(|ms| Duration::from_millis(u64::from(ms)));
    Some(pre.with_properties(props))
}

/// The socket linked to `socket`, if any.
fn partner(seen: &Seen, socket: SocketId) -> Option<SocketId> {
    seen.links.iter().find_map(|&(a, b)| {
        if a == socket {
            Some(b)
        } else if b == socket {
            Some(a)
        } else {
            None
        }
    })
}

/// [`MachineOp::PlainThrough`]: what an adapter's plain stream
/// pass-through does, against the linked partner (bytes to an unlinked
/// socket vanish, as with `Transmitted`).
fn plain_through(h: &mut Harness, seen: &Seen, conn: ConnectionId, write: bool, len: usize) {
    let now = h.now;
    if write {
        let Some(socket) = h.m.connection_info(conn).and_then(|c| c.write_through()) else {
            return;
        };
        let n = match partner(seen, socket) {
            Some(to) => {
                let n = len.min(h.m.socket(to).read_capacity());
                let data = vec![b'w'; n];
                h.handle(Input::SocketData {
                    socket: to,
                    data: &data,
                });
                n
            }
            None => len,
        };
        if n > 0 {
            h.m.handle(now, Input::WroteThrough { conn, len: n });
        }
        h.drain();
    } else {
        let Some(socket) = h.m.connection_info(conn).and_then(|c| c.read_through()) else {
            return;
        };
        if let Some(from) = partner(seen, socket) {
            let n = h.m.socket(from).transmit_data().len().min(len);
            if n > 0 {
                h.m.handle(
                    now,
                    Input::Transmitted {
                        socket: from,
                        len: n,
                    },
                );
            }
        }
        h.drain();
    }
}

/// The partner's side of a link as a socket for a checked-out session:
/// reads take what the partner has to send; writes arrive at the partner,
/// as far as `room` and its read capacity allow.
struct LinkWire<'a> {
    m: &'a mut Machine,
    now: Instant,
    partner: Option<SocketId>,
    room: usize,
}

impl std::io::Read for LinkWire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(from) = self.partner else {
            return Err(std::io::ErrorKind::WouldBlock.into());
        };
        let data = self.m.socket(from).transmit_data();
        let n = data.len().min(buf.len());
        if n == 0 {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        buf[..n].copy_from_slice(&data[..n]);
        self.m.handle(
            self.now,
            Input::Transmitted {
                socket: from,
                len: n,
            },
        );
        Ok(n)
    }
}

impl std::io::Write for LinkWire<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = match self.partner {
            Some(to) => buf
                .len()
                .min(self.room)
                .min(self.m.socket(to).read_capacity()),
            None => buf.len().min(self.room),
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        self.room -= n;
        if let Some(to) = self.partner {
            self.m.handle(
                self.now,
                Input::SocketData {
                    socket: to,
                    data: &buf[..n],
                },
            );
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// [`MachineOp::TlsThrough`]: one stream read or write through a checked-out
/// TLS session, checked back in at once.
fn tls_through(
    h: &mut Harness,
    seen: &Seen,
    conn: ConnectionId,
    write: bool,
    len: usize,
    room: usize,
) {
    let purpose = if write {
        TlsCheckout::Write
    } else {
        TlsCheckout::Read
    };
    let Some(mut session) = h.m.connection(conn).check_out_tls(purpose) else {
        return;
    };
    let now = h.now;
    let mut wire = LinkWire {
        partner: partner(seen, session.socket()),
        m: &mut h.m,
        now,
        room,
    };
    if write {
        match write_through(&mut session, &mut wire, &vec![b'w'; len]) {
            Ok(Through::Done(n)) if n > len => {
                violated!("a checked-out write took {n} of {len} bytes")
            }
            Ok(_) => {}
            Err(e) => violated!("a link that only fills up failed: {e}"),
        }
    } else {
        let mut buf = vec![0; len.max(1)];
        match read_through(&mut session, &mut wire, &mut buf) {
            Ok(Through::Done(n)) if n > buf.len() => {
                violated!(
                    "a checked-out read returned {n} for a {}-byte buffer",
                    buf.len()
                )
            }
            Ok(_) => {}
            Err(e) => violated!("a link that only runs dry failed: {e}"),
        }
    }
    h.m.handle(now, Input::TlsCheckIn(session));
    h.drain();
}

/// Moves bytes along every link, both ways, until nothing moves; a FIN or
/// RST reaches the partner once the bytes before it are in.
fn flow_links(h: &mut Harness, seen: &mut Seen) {
    for _ in 0..MAX_FLOW_ROUNDS {
        let mut moved = false;
        for i in 0..seen.links.len() {
            let (a, b) = seen.links[i];
            moved |= h.pipe(a, b, usize::MAX) > 0;
            moved |= h.pipe(b, a, usize::MAX) > 0;
        }
        for &(s, end) in &h.socket_ends[seen.ends_seen..] {
            for &(a, b) in &seen.links {
                let partner = if s == a {
                    b
                } else if s == b {
                    a
                } else {
                    continue;
                };
                // One FIN per socket; a reset may still follow a FIN, and
                // overrides one not yet delivered.
                let told = seen.told.get(&partner).copied();
                if told == Some(SocketEnd::Abort) || (told.is_some() && end != SocketEnd::Abort) {
                    continue;
                }
                match seen.owed.iter_mut().find(|(to, _, _)| *to == partner) {
                    Some(owed) if end == SocketEnd::Abort => *owed = (partner, s, end),
                    Some(_) => {}
                    None => seen.owed.push((partner, s, end)),
                }
            }
        }
        seen.ends_seen = h.socket_ends.len();
        let mut i = 0;
        while i < seen.owed.len() {
            let (to, from, end) = seen.owed[i];
            if end != SocketEnd::Abort && !h.m.socket(from).transmit_data().is_empty() {
                i += 1;
                continue;
            }
            seen.owed.swap_remove(i);
            seen.told.insert(to, end);
            moved = true;
            h.handle(match end {
                SocketEnd::Abort => Input::SocketFailed {
                    socket: to,
                    reason: FailureReason::Reset,
                },
                SocketEnd::Shutdown | SocketEnd::Close => Input::SocketEof { socket: to },
            });
        }
        if !moved {
            return;
        }
    }
    violated!("linked sockets keep exchanging bytes without end");
}

// ---------------------------------------------------------------------------
// Seed corpora
// ---------------------------------------------------------------------------

/// The seed corpora of `fuzz/corpus/<target>/`, generated from real inputs:
/// DNS messages written by the responder (the one the simulator's servers
/// use) and by hickory-proto, endpoint texts from the grammar, framed
/// streams, and TLS ClientHello and server flights captured from an
/// in-memory handshake between two machines.
///
/// `taps-core/tests/fuzz_replay.rs` checks that every seed is checked in
/// (byte for byte where the generator is deterministic; TLS handshakes draw
/// fresh randomness, so only their presence is checked) and rewrites the
/// files when run with `TAPS_FUZZ_WRITE_SEEDS=1`. The `machine` corpus is
/// not generated: `arbitrary` decodes it, so its seeds are inputs a
/// fuzzing campaign found and `-merge=1` distilled.
pub mod seeds {
    use super::*;
    use hickory_proto::op::{Message as DnsMessage, OpCode, Query};
    use hickory_proto::rr::rdata::{A, AAAA, CNAME};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    /// Collects into whatever list type a field has (`Vec`, `SmallVec`).
    fn collect<T, C: FromIterator<T>>(items: impl IntoIterator<Item = T>) -> C {
        items.into_iter().collect()
    }

    /// One corpus file.
    #[derive(Clone, Debug)]
    pub struct Seed {
        /// The target's name (its corpus directory).
        pub target: &'static str,
        /// The file name.
        pub name: String,
        /// The contents.
        pub bytes: Vec<u8>,
        /// Whether the generator always writes the same bytes.
        pub deterministic: bool,
        /// `corpus` for seeds, `artifacts` for inputs that once crashed a
        /// target (regressions written from a readable script).
        pub dir: &'static str,
    }

    fn seed(target: &'static str, name: &str, bytes: Vec<u8>) -> Seed {
        Seed {
            target,
            name: name.to_string(),
            bytes,
            deterministic: true,
            dir: "corpus",
        }
    }

    /// Every generated seed.
    pub fn all() -> Vec<Seed> {
        let mut out = dns();
        out.extend(endpoints());
        out.extend(framed());
        out.extend(tls());
        out.extend(machine());
        out
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("constant address")
    }

    fn dns_seed(name: &str, mode: DnsMode, message: Vec<u8>) -> Seed {
        let mut bytes = vec![mode.to_byte()];
        bytes.extend(message);
        seed("dns_answer", name, bytes)
    }

    fn udp(qtype: QueryType) -> DnsMode {
        DnsMode {
            qtype,
            stream: false,
            spoofed: false,
            keep_id: false,
            raw_stream: false,
            chunk: usize::MAX,
        }
    }

    /// A hickory response to our question, for what the responder cannot
    /// write (CNAME chains).
    fn hickory(qtype: QueryType, records: Vec<Record>) -> Vec<u8> {
        let mut m = DnsMessage::response(0x1234, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.metadata.recursion_available = true;
        let qname = Name::from_ascii(format!("{DNS_NAME}.")).expect("constant name");
        m.add_query(Query::query(qname, RecordType::from(qtype.code())));
        for r in records {
            m.add_answer(r);
        }
        m.to_vec().expect("encodable constant message")
    }

    fn dn(text: &str) -> Name {
        Name::from_ascii(text).expect("constant name")
    }

    fn dns() -> Vec<Seed> {
        let q = |qtype| question(0x1234, DNS_NAME, qtype);
        let a = |list: &[&str], ttl| Answer::Addresses {
            addrs: collect(list.iter().map(|t| ip(t))),
            ttl,
        };
        let https = HttpsRecord {
            priority: 1,
            target: None,
            alpn: vec!["h2".into(), "http/1.1".into()],
            no_default_alpn: false,
            port: Some(8443),
            ipv4hint: collect([ip4("192.0.2.30")]),
            ipv6hint: collect([ip6("2001:db8::30")]),
            ech: true,
        };
        let elsewhere = HttpsRecord {
            priority: 2,
            target: Some(host("svc.example.net")),
            alpn: vec!["h3".into()],
            no_default_alpn: true,
            port: None,
            ipv4hint: collect([ip4("192.0.2.31"), ip4("192.0.2.32")]),
            ipv6hint: Default::default(),
            ech: false,
        };
        let alias = alias_only(&HttpsRecord {
            target: Some(host("alias.example.net")),
            ..https.clone()
        });
        let mut out = vec![
            dns_seed(
                "a-one",
                udp(QueryType::A),
                build_response(&q(QueryType::A), &a(&["192.0.2.1"], 300), false),
            ),
            dns_seed(
                "a-three",
                udp(QueryType::A),
                build_response(
                    &q(QueryType::A),
                    &a(&["192.0.2.1", "192.0.2.2", "192.0.2.3"], 60),
                    false,
                ),
            ),
            dns_seed(
                "aaaa-two",
                udp(QueryType::Aaaa),
                build_response(
                    &q(QueryType::Aaaa),
                    &a(&["2001:db8::1", "2001:db8::2"], 120),
                    false,
                ),
            ),
            dns_seed(
                "https-hints-alpn-port",
                udp(QueryType::Https),
                build_response(
                    &q(QueryType::Https),
                    &Answer::Https {
                        records: collect([https.clone(), elsewhere]),
                        ttl: 300,
                    },
                    false,
                ),
            ),
            dns_seed(
                "https-alias",
                udp(QueryType::Https),
                build_response(
                    &q(QueryType::Https),
                    &Answer::Https {
                        records: collect([alias]),
                        ttl: 300,
                    },
                    false,
                ),
            ),
            dns_seed(
                "nodata-soa",
                udp(QueryType::Aaaa),
                build_response(
                    &q(QueryType::Aaaa),
                    &Answer::NoData { negative_ttl: 900 },
                    false,
                ),
            ),
            dns_seed(
                "nxdomain-soa",
                udp(QueryType::A),
                build_response(
                    &q(QueryType::A),
                    &Answer::NxDomain { negative_ttl: 3600 },
                    false,
                ),
            ),
            dns_seed(
                "servfail",
                udp(QueryType::A),
                build_response(&q(QueryType::A), &Answer::ServFail, false),
            ),
            dns_seed(
                "truncated",
                udp(QueryType::A),
                build_response(&q(QueryType::A), &a(&["192.0.2.1"], 300), true),
            ),
        ];
        // CNAME chains (RFC 1034 §3.6.2), written by hickory with name
        // compression: one that resolves, one that loops, one too deep.
        let cname =
            |from: &str, to: &str| Record::from_rdata(dn(from), 60, RData::CNAME(CNAME(dn(to))));
        let a_rec = |owner: &str, v4: &str| Record::from_rdata(dn(owner), 60, RData::A(A(ip4(v4))));
        let aaaa_rec =
            |owner: &str, v6: &str| Record::from_rdata(dn(owner), 60, RData::AAAA(AAAA(ip6(v6))));
        out.push(dns_seed(
            "cname-chain-a",
            udp(QueryType::A),
            hickory(
                QueryType::A,
                vec![
                    cname("www.example.com.", "a.example.net."),
                    cname("a.example.net.", "b.example.org."),
                    a_rec("b.example.org.", "192.0.2.7"),
                    a_rec("b.example.org.", "192.0.2.8"),
                ],
            ),
        ));
        out.push(dns_seed(
            "cname-chain-aaaa",
            udp(QueryType::Aaaa),
            hickory(
                QueryType::Aaaa,
                vec![
                    cname("www.example.com.", "v6.example.net."),
                    aaaa_rec("v6.example.net.", "2001:db8::7"),
                    aaaa_rec("unrelated.example.", "2001:db8::99"),
                ],
            ),
        ));
        out.push(dns_seed(
            "cname-loop",
            udp(QueryType::A),
            hickory(
                QueryType::A,
                vec![
                    cname("www.example.com.", "a.example.net."),
                    cname("a.example.net.", "www.example.com."),
                ],
            ),
        ));
        let mut deep = Vec::new();
        let mut from = "www.example.com.".to_string();
        for i in 0..=MAX_CNAME_DEPTH_SEED {
            let to = format!("hop{i}.example.net.");
            deep.push(cname(&from, &to));
            from = to;
        }
        deep.push(a_rec(&from, "192.0.2.9"));
        out.push(dns_seed(
            "cname-too-deep",
            udp(QueryType::A),
            hickory(QueryType::A, deep),
        ));
        // The same answers over TCP, framed and in small pieces.
        let tcp = DnsMode {
            stream: true,
            chunk: 7,
            ..udp(QueryType::A)
        };
        out.push(dns_seed(
            "tcp-a-chunked",
            tcp,
            build_response(
                &q(QueryType::A),
                &a(&["192.0.2.1", "192.0.2.2"], 300),
                false,
            ),
        ));
        let tcp_https = DnsMode {
            stream: true,
            chunk: 1,
            ..udp(QueryType::Https)
        };
        out.push(dns_seed(
            "tcp-https-bytewise",
            tcp_https,
            build_response(
                &q(QueryType::Https),
                &Answer::Https {
                    records: collect([https]),
                    ttl: 60,
                },
                false,
            ),
        ));
        out.push(dns_seed(
            "spoofed-source",
            DnsMode {
                spoofed: true,
                ..udp(QueryType::A)
            },
            build_response(&q(QueryType::A), &a(&["203.0.113.9"], 300), false),
        ));
        out
    }

    /// One hop more than the parser follows.
    const MAX_CNAME_DEPTH_SEED: usize = taps_core::dns::MAX_CNAME_DEPTH;

    fn ip4(text: &str) -> Ipv4Addr {
        text.parse().expect("constant address")
    }

    fn ip6(text: &str) -> Ipv6Addr {
        text.parse().expect("constant address")
    }

    fn endpoints() -> Vec<Seed> {
        const TEXTS: [&str; 24] = [
            "example.com:443",
            "example.com:https",
            "example.com:https=8443",
            "192.0.2.1:80%eth0",
            "[2001:db8::1]:443",
            "[fe80::1%eth0]:443",
            "2001:db8::1",
            "[192.0.2.1]:80",
            "myserver._http._tcp.local",
            "My\\.Box._http._tcp.local",
            "_http._tcp.example.com",
            "quic://example.com:8443",
            "TCP://EXAMPLE.com:80",
            "*:443",
            ":443",
            "%en0",
            "*",
            "localhost",
            "192.0.2.256",
            "example.com:65536",
            "[2001:db8::1%]:443",
            "xn--bcher-kva.example:443",
            "a-.example.com",
            "Käse._http._tcp.local",
        ];
        TEXTS
            .iter()
            .enumerate()
            .map(|(i, t)| {
                seed(
                    "endpoint_parse",
                    &format!("text-{i:02}"),
                    t.as_bytes().to_vec(),
                )
            })
            .collect()
    }

    fn framed() -> Vec<Seed> {
        let lp = |messages: &[&[u8]]| {
            let mut f = LengthPrefixed::new(1024);
            let mut out = Vec::new();
            for m in messages {
                f.encode(m, &mut out).expect("constant message fits");
            }
            out
        };
        let delimited = |d: &[u8], messages: &[&[u8]]| {
            let mut f = Delimited::new(d.to_vec(), 1024);
            let mut out = Vec::new();
            for m in messages {
                f.encode(m, &mut out).expect("constant message fits");
            }
            out
        };
        let case = |name: &str, kind: FramerKind, max: u16, chunk: u8, stream: Vec<u8>| {
            let c = FramerCase {
                kind,
                max,
                chunk,
                stream,
            };
            seed("framer", name, c.encode())
        };
        let mut claim = 5000u32.to_be_bytes().to_vec();
        claim.extend_from_slice(b"the rest never comes");
        vec![
            case(
                "length-prefixed-three",
                FramerKind::LengthPrefixed,
                1024,
                0,
                lp(&[b"hello", b"", b"a longer message of some bytes"]),
            ),
            case(
                "length-prefixed-chunked",
                FramerKind::LengthPrefixed,
                64,
                3,
                lp(&[b"one", b"two", b"three"]),
            ),
            case(
                "length-prefixed-over-limit",
                FramerKind::LengthPrefixed,
                1024,
                0,
                claim,
            ),
            case(
                "length-prefixed-partial",
                FramerKind::LengthPrefixed,
                1024,
                1,
                lp(&[b"complete", b"cut short"])[..18].to_vec(),
            ),
            case(
                "lines",
                FramerKind::Lines,
                80,
                0,
                delimited(b"\n", &[b"GET / HTTP/1.0", b"Host: x", b""]),
            ),
            case(
                "lines-chunked",
                FramerKind::Lines,
                16,
                5,
                delimited(b"\n", &[b"alpha", b"beta", b"gamma"]),
            ),
            case(
                "line-too-long",
                FramerKind::Lines,
                8,
                2,
                b"0123456789abcdef\n".to_vec(),
            ),
            case(
                "crlf",
                FramerKind::Delimited(b"\r\n".to_vec()),
                64,
                1,
                delimited(b"\r\n", &[b"a\rb", b"c\nd", b"e"]),
            ),
            case(
                "four-byte-delimiter",
                FramerKind::Delimited(b"\r\n\r\n".to_vec()),
                64,
                2,
                delimited(b"\r\n\r\n", &[b"head\r\ner", b"body"]),
            ),
        ]
    }

    fn machine() -> Vec<Seed> {
        super::machine_scripts()
    }

    fn tls() -> Vec<Seed> {
        // A real handshake; its ClientHello and the server's first flight
        // (ServerHello to Finished) are the raw-mode seeds.
        let Some(pair) = Pair::establish(true) else {
            violated!("a TLS handshake between two machines failed");
        };
        let client_hello = pair.sent[0].first().cloned().unwrap_or_default();
        let server_flight = pair.sent[1].first().cloned().unwrap_or_default();
        let raw = |server: bool, chunk: u8, bytes: &[u8]| {
            let mut out = vec![
                TlsMode {
                    server,
                    established: false,
                }
                .to_byte(),
                chunk,
            ];
            out.extend_from_slice(bytes);
            out
        };
        let ops = |server: bool, ops: &[TlsOp]| {
            let mut out = vec![
                TlsMode {
                    server,
                    established: true,
                }
                .to_byte(),
            ];
            out.extend(TlsOp::encode_all(ops));
            out
        };
        let mut out = vec![
            seed(
                "tls_records",
                "raw-server-client-hello",
                raw(true, 0, &client_hello),
            ),
            seed(
                "tls_records",
                "raw-server-client-hello-chunked",
                raw(true, 5, &client_hello),
            ),
            seed(
                "tls_records",
                "raw-client-server-flight",
                raw(false, 0, &server_flight),
            ),
            seed(
                "tls_records",
                "raw-client-server-flight-chunked",
                raw(false, 100, &server_flight),
            ),
        ];
        for s in &mut out {
            s.deterministic = false;
        }
        use TlsOp::*;
        out.extend([
            seed(
                "tls_records",
                "client-receives-then-peer-closes",
                ops(
                    false,
                    &[
                        PeerWrite(300),
                        Deliver(0xffff),
                        Receive,
                        PeerClose,
                        Deliver(0xffff),
                        Close,
                    ],
                ),
            ),
            seed(
                "tls_records",
                "client-corrupted-record",
                ops(
                    false,
                    &[PeerWrite(64), Flip(20, 0x40), Deliver(0xffff), Receive],
                ),
            ),
            seed(
                "tls_records",
                "client-record-cut-short",
                ops(false, &[PeerWrite(64), Drop(3), Deliver(10), Eof]),
            ),
            seed(
                "tls_records",
                "server-garbage-after-handshake",
                ops(
                    true,
                    &[
                        Write(100),
                        Receive,
                        Inject(vec![0x17, 3, 3, 0, 2, 0xde, 0xad]),
                        Deliver(0xffff),
                    ],
                ),
            ),
            seed(
                "tls_records",
                "server-peer-aborts",
                ops(true, &[Receive, PeerAbort, Deliver(0xffff), Read(100)]),
            ),
            seed(
                "tls_records",
                "server-slow-peer",
                ops(
                    true,
                    &[
                        PeerWrite(2000),
                        Deliver(5),
                        Tick(10),
                        Deliver(100),
                        Tick(255),
                        Read(4096),
                    ],
                ),
            ),
            seed(
                "tls_records",
                "client-reads-and-writes-through-checkouts",
                ops(
                    false,
                    &[
                        PeerWrite(3000),
                        ReadThrough(1000),
                        ReadThrough(0xffff),
                        WriteThrough(40_000, 500),
                        WriteThrough(100, 0xffff),
                        Flip(10, 1),
                        PeerWrite(10),
                        ReadThrough(64),
                        PeerClose,
                        ReadThrough(64),
                    ],
                ),
            ),
            seed(
                "tls_records",
                "server-checkout-meets-the-peers-reset",
                ops(
                    true,
                    &[
                        PeerWrite(100),
                        WriteThrough(2000, 0),
                        PeerAbort,
                        ReadThrough(4096),
                        WriteThrough(10, 10),
                    ],
                ),
            ),
        ]);
        out
    }
}

/// Writes `machine` inputs from readable scripts: the exact bytes that
/// `arbitrary` decodes into a [`MachineCase`] (little-endian integers, a
/// bool is a byte's low bit, `Option` is a bool then the value, a `Vec` is
/// a "more" bool before each element and a false one after, a derived
/// enum's variant `i` of `n` is the `u32` whose `x * n >> 32` is `i`; ops use
/// [`MachineOp`]'s fixed codes). Kept beside the types it mirrors: a field
/// added there must be added here.
mod script {
    /// An input under construction.
    #[derive(Default)]
    pub(super) struct Enc(pub(super) Vec<u8>);

    /// Where a [`Pick`](super::Pick) points.
    #[derive(Clone, Copy)]
    pub(super) enum P {
        Latest,
        Nth(u8),
    }

    /// What a `Connect`/`Initiate` frames with: (kind, max).
    pub(super) type Framing = Option<(u8, u16)>;

    /// A message: (len, replayable, final).
    pub(super) type Msg = (u16, bool, bool);

    /// An interface: (index, v4, v6, up).
    pub(super) type Iface = (u8, bool, bool, bool);

    impl Enc {
        pub(super) fn u8(&mut self, v: u8) -> &mut Self {
            self.0.push(v);
            self
        }
        pub(super) fn u16(&mut self, v: u16) -> &mut Self {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        pub(super) fn bool(&mut self, v: bool) -> &mut Self {
            self.u8(u8::from(v))
        }
        fn variant(&mut self, i: u32, n: u32) -> &mut Self {
            let x = ((u64::from(i) << 32).div_ceil(u64::from(n))) as u32;
            self.0.extend_from_slice(&x.to_le_bytes());
            self
        }
        fn pick(&mut self, p: P) -> &mut Self {
            match p {
                P::Latest => self.variant(0, 3),
                P::Nth(n) => self.variant(1, 3).u8(n),
            }
        }
        fn framer(&mut self, f: Framing) -> &mut Self {
            match f {
                None => self.bool(false),
                Some((kind, max)) => self.bool(true).u8(kind).u16(max),
            }
        }
        fn msg(&mut self, (len, replayable, is_final): Msg) -> &mut Self {
            // MsgSpec: len, fill, replayable, is_final, priority, lifetime.
            self.u16(len)
                .u8(b'm')
                .bool(replayable)
                .bool(is_final)
                .u8(0)
                .bool(false)
        }
        fn op(&mut self, code: u8) -> &mut Self {
            self.bool(true).u8(code)
        }

        /// `ConfigSpec`: seed, max_connections, no limits, a race (policy,
        /// delay, family count, path mode, concurrency, candidates),
        /// servers, attempts.
        pub(super) fn config(&mut self, servers: u8, race: [u8; 5], delay: u16) -> &mut Self {
            let [policy, fafc, path_mode, concurrent, candidates] = race;
            self.u8(1).u8(0).bool(false);
            self.u8(policy)
                .u16(delay)
                .u8(fafc)
                .u8(path_mode)
                .u8(concurrent)
                .u8(candidates);
            self.u8(servers).u8(2)
        }
        /// The default configuration: HEv3, one DNS server.
        pub(super) fn default_config(&mut self) -> &mut Self {
            self.config(1, [0, 1, 0, 8, 0], 250)
        }

        /// `Initiate` to target variant `target` (0 V4, 1 V6, 2 Name, 3
        /// NameOtherPort, 4 Hosts, 5 Localhost, 6 NoPort, 7 Service).
        pub(super) fn initiate(
            &mut self,
            target: u32,
            tls: bool,
            framer: Framing,
            conn_timeout: Option<u16>,
        ) -> &mut Self {
            self.op(0).variant(target, 9).bool(tls).framer(framer);
            self.bool(false).bool(false).bool(false).bool(false);
            match conn_timeout {
                None => self.bool(false),
                Some(ms) => self.bool(true).u16(ms),
            }
        }
        pub(super) fn send(&mut self, conn: P, msg: Msg) -> &mut Self {
            self.op(1).pick(conn).msg(msg)
        }
        pub(super) fn receive(&mut self, conn: P) -> &mut Self {
            self.op(2).pick(conn).u16(1).u16(4096)
        }
        pub(super) fn read(&mut self, conn: P, len: u16) -> &mut Self {
            self.op(3).pick(conn).u16(len)
        }
        pub(super) fn write(&mut self, conn: P, len: u16) -> &mut Self {
            self.op(4).pick(conn).u16(len)
        }
        pub(super) fn close(&mut self, conn: P) -> &mut Self {
            self.op(5).pick(conn)
        }
        pub(super) fn abort(&mut self, conn: P) -> &mut Self {
            self.op(6).pick(conn)
        }
        /// `Listen` on 192.0.2.10:443.
        pub(super) fn listen(&mut self, tls: bool, limit: Option<u8>) -> &mut Self {
            self.op(7).bool(tls).framer(None);
            match limit {
                None => self.bool(false),
                Some(l) => self.bool(true).u8(l),
            };
            self.u8(0)
        }
        pub(super) fn accept(&mut self, listener: P, remote: u8) -> &mut Self {
            self.op(8).pick(listener).u8(remote)
        }
        pub(super) fn stop(&mut self, listener: P) -> &mut Self {
            self.op(9).pick(listener)
        }
        /// `DnsAnswer` with addresses from the pool.
        pub(super) fn dns_addrs(&mut self, txn: P, pool: &[u8]) -> &mut Self {
            self.op(12).pick(txn).variant(0, 6);
            for &a in pool {
                self.bool(true).u8(a);
            }
            self.bool(false).u16(60).bool(false).bool(false)
        }
        /// `DnsAnswer` that is negative (NoData).
        pub(super) fn dns_nodata(&mut self, txn: P) -> &mut Self {
            self.op(12).pick(txn).variant(2, 6).bool(false).bool(false)
        }
        pub(super) fn connected(&mut self, socket: P) -> &mut Self {
            self.op(15).pick(socket)
        }
        pub(super) fn eof(&mut self, socket: P) -> &mut Self {
            self.op(17).pick(socket)
        }
        pub(super) fn link(&mut self, socket: P, listener: P) -> &mut Self {
            self.op(20).pick(socket).pick(listener)
        }
        pub(super) fn flow(&mut self) -> &mut Self {
            self.op(21)
        }
        pub(super) fn trickle(&mut self, chunk: u16) -> &mut Self {
            self.op(22).u16(chunk)
        }
        pub(super) fn connect(
            &mut self,
            tls: bool,
            framer: Framing,
            first: Option<Msg>,
        ) -> &mut Self {
            self.op(23).bool(tls).framer(framer);
            match first {
                None => self.bool(false),
                Some(m) => self.bool(true).msg(m),
            };
            self.bool(false)
        }
        pub(super) fn bulk(&mut self, conn: P, msg: Msg, count: u8) -> &mut Self {
            self.op(24).pick(conn).msg(msg).u8(count)
        }
        pub(super) fn flood(&mut self, socket: P, len: u16) -> &mut Self {
            self.op(25).pick(socket).u16(len).u8(b'f')
        }
        /// `Interfaces`: kind Wired, not expensive or constrained.
        pub(super) fn interfaces(&mut self, list: &[Iface]) -> &mut Self {
            self.op(26);
            for &(index, v4, v6, up) in list {
                // IfaceSpec: index, kind, v4, v6, link_local_only, up,
                // expensive, constrained.
                self.bool(true)
                    .u8(index)
                    .u8(0)
                    .bool(v4)
                    .bool(v6)
                    .bool(false)
                    .bool(up);
                self.bool(false).bool(false);
            }
            self.bool(false).bool(false)
        }
        pub(super) fn advance(&mut self, ms: u16) -> &mut Self {
            self.op(27).u16(ms)
        }
        pub(super) fn timeout_now(&mut self) -> &mut Self {
            self.op(31)
        }
        pub(super) fn delegate_reading(&mut self, conn: P) -> &mut Self {
            self.op(28).pick(conn)
        }
        pub(super) fn plain_through(&mut self, conn: P, write: bool, len: u16) -> &mut Self {
            self.op(29).pick(conn).bool(write).u16(len)
        }
        pub(super) fn tls_through(
            &mut self,
            conn: P,
            write: bool,
            len: u16,
            room: u16,
        ) -> &mut Self {
            self.op(30).pick(conn).bool(write).u16(len).u16(room)
        }
    }
}

impl seeds::Seed {
    fn artifact(mut self) -> Self {
        self.dir = "artifacts";
        self
    }
}

/// `machine` seeds and regression inputs, written as scripts.
fn machine_scripts() -> Vec<seeds::Seed> {
    use script::{Enc, P};
    let s = |name: &str, f: &dyn Fn(&mut Enc)| {
        let mut e = Enc::default();
        f(&mut e);
        seeds::Seed {
            target: "machine",
            name: name.to_string(),
            bytes: e.0,
            deterministic: true,
            dir: "corpus",
        }
    };
    let lp = Some((0, 4096));
    vec![
        s("plain-framed-exchange", &|e| {
            e.default_config().connect(false, lp, None);
            e.send(P::Nth(0), (100, false, false)).flow();
            e.receive(P::Latest)
                .send(P::Latest, (50, false, false))
                .flow();
            e.receive(P::Nth(0)).close(P::Nth(0)).flow().advance(3000);
        }),
        s("tls-stream-exchange", &|e| {
            e.default_config().connect(true, None, None);
            e.write(P::Nth(0), 3000)
                .trickle(700)
                .flow()
                .read(P::Latest, 4096);
            e.write(P::Latest, 10)
                .flow()
                .read(P::Nth(0), 100)
                .close(P::Latest)
                .flow();
            e.advance(3000);
        }),
        s("plain-stream-pass-through", &|e| {
            e.default_config().connect(false, None, None);
            e.plain_through(P::Nth(0), true, 3000)
                .delegate_reading(P::Latest)
                .plain_through(P::Latest, false, 4096)
                .plain_through(P::Latest, true, 500)
                .receive(P::Latest)
                .flow();
            e.close(P::Nth(0)).flow().advance(3000);
        }),
        s("tls-stream-checked-out", &|e| {
            e.default_config().connect(true, None, None);
            e.tls_through(P::Nth(0), true, 40_000, 1000)
                .tls_through(P::Latest, false, 700, 0)
                .tls_through(P::Latest, false, 0xffff, 0)
                .flow()
                .tls_through(P::Latest, true, 10, 0xffff)
                .tls_through(P::Nth(0), false, 64, 0)
                .close(P::Latest)
                .flow()
                .tls_through(P::Nth(0), false, 64, 0);
            e.advance(3000);
        }),
        s("tls-early-data", &|e| {
            e.default_config()
                .connect(true, None, None)
                .close(P::Nth(0))
                .flow();
            e.advance(3000);
            e.connect(true, None, Some((200, true, false)))
                .flow()
                .receive(P::Latest);
            e.flow().abort(P::Latest).flow();
        }),
        s("dns-race", &|e| {
            e.default_config().initiate(2, false, None, None);
            e.dns_nodata(P::Nth(0)).dns_addrs(P::Nth(1), &[0x80, 0x81]);
            e.dns_addrs(P::Nth(2), &[0, 1])
                .advance(300)
                .connected(P::Nth(1));
            e.advance(1000).close(P::Latest).advance(2000);
        }),
        s("listener-limit-and-stop", &|e| {
            e.default_config().listen(true, Some(1));
            e.accept(P::Latest, 1).accept(P::Latest, 2).eof(P::Nth(0));
            e.stop(P::Latest).accept(P::Latest, 3).advance(11000);
        }),
        s("interfaces-change-mid-race", &|e| {
            e.config(0, [0, 1, 1, 8, 0], 250);
            e.interfaces(&[(0, true, true, true), (1, true, false, true)]);
            e.initiate(4, false, None, None).advance(100);
            e.interfaces(&[(1, true, false, true)])
                .advance(2000)
                .connected(P::Latest);
        }),
        s("backpressure", &|e| {
            e.default_config().connect(false, lp, None);
            e.bulk(P::Nth(0), (4000, false, false), 255).trickle(1000);
            e.flood(P::Latest, 60000)
                .receive(P::Latest)
                .flow()
                .advance(100);
        }),
        // Regressions (see the commits that fixed them).
        s("dead-lane-deadline-spins-timers", &|e| {
            // Sequential, a path every 15.9 s; the third path's interface
            // goes down before its lane starts.
            e.config(0, [2, 0, 0, 5, 15], 15941);
            e.interfaces(&[
                (0, true, true, true),
                (3, true, false, true),
                (1, true, false, true),
            ]);
            e.initiate(4, false, None, Some(59367));
            e.interfaces(&[
                (0, true, true, true),
                (3, true, false, true),
                (1, false, false, false),
            ]);
            e.advance(59178);
        })
        .artifact(),
        s("connection-received-after-stopped", &|e| {
            // A TLS connection is accepted, the listener stops, then the
            // handshake completes.
            e.default_config()
                .listen(true, None)
                .initiate(0, true, None, None);
            e.link(P::Latest, P::Latest).stop(P::Latest).flow();
        })
        .artifact(),
        s("dns-transaction-outlives-connection", &|e| {
            // The race times out at once; its DNS queries linger; the
            // connection is freed before they end.
            e.default_config().initiate(2, false, None, Some(0));
            e.timeout_now().close(P::Latest);
        })
        .artifact(),
    ]
}
