//! The machine's output contract, checked as the outputs come: one
//! [`Checker`] follows every output of one machine and panics, naming the
//! rule, at the first one that breaks a promise of the core contract
//! (ARCHITECTURE.md, "The core contract": handles, one winner, RFC 9622
//! event order). The fuzz targets, the [`crate::harness`] and so the
//! [`crate::world`] run every output through it, and so does the simulator,
//! with a [`Checker::recording`] one: a simulated run has to keep going
//! after a broken promise and report it with the run's result.
//!
//! A contract bug found and not yet fixed is listed in [`KNOWN_BUGS`], so
//! fuzzing can go on past it; [`strictly`] enforces the list again.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::OnceLock;

use taps_core::{ConnectionId, DnsTxnId, Event, ListenerId, Output, SocketId, dns::DnsAction};

/// A bug a fuzz target found that is reported but not yet fixed in
/// taps-core. While it is listed in [`KNOWN_BUGS`], the check that finds it
/// lets it pass (so fuzzing can go on past it); taps-core's fuzz replay
/// test replays
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
pub(crate) fn tolerated(name: &str) -> bool {
    static STRICT_ENV: OnceLock<bool> = OnceLock::new();
    let strict_env =
        *STRICT_ENV.get_or_init(|| std::env::var_os("TAPS_FUZZ_STRICT").is_some_and(|v| v == "1"));
    !STRICT.get() && !strict_env && KNOWN_BUGS.iter().any(|b| b.name == name)
}

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
/// - **Handles** (core contract rule 2): an `OpenTcp` names a fresh socket; no
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
///
/// A [`Checker::default`] panics through [`violated!`](crate::violated) at
/// the first broken rule; a [`Checker::recording`] one writes it down and
/// carries on (see [`Checker::take_violations`]).
#[derive(Debug, Default)]
pub struct Checker {
    sockets: HashMap<SocketId, Life>,
    txns: HashMap<DnsTxnId, Life>,
    listeners: HashMap<ListenerId, Life>,
    conns: HashMap<ConnectionId, ConnTrack>,
    /// `Some` when violations are recorded instead of panicking.
    recorded: Option<Vec<String>>,
}

impl Checker {
    /// A checker that records each broken rule, in the order seen, instead
    /// of panicking.
    pub fn recording() -> Self {
        Checker {
            recorded: Some(Vec::new()),
            ..Checker::default()
        }
    }

    /// Forgets every handle and recorded violation, keeping the tables'
    /// memory (a simulator runs many small worlds with one checker).
    pub fn clear(&mut self) {
        self.sockets.clear();
        self.txns.clear();
        self.listeners.clear();
        self.conns.clear();
        if let Some(v) = &mut self.recorded {
            v.clear();
        }
    }

    /// Hands over the violations recorded so far (always none for a
    /// panicking checker).
    pub fn take_violations(&mut self) -> Vec<String> {
        self.recorded
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// A broken contract found outside this checker (the simulator's own
    /// checks), kept in order with the checker's: recorded, or a panic.
    pub fn report(&mut self, what: impl Display) {
        match &mut self.recorded {
            Some(v) => v.push(what.to_string()),
            None => violated!("{what}"),
        }
    }

    /// `initiate` returned `conn`: it must be a fresh id.
    pub fn initiated(&mut self, conn: ConnectionId) {
        if self.conns.contains_key(&conn) {
            self.report(format_args!(
                "initiate returned {conn:?}, an id already issued"
            ));
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
            self.report(format_args!(
                "accept returned {socket:?}, an id already issued"
            ));
        }
    }

    /// `listen` returned `listener`: it must be a fresh id.
    pub fn listened(&mut self, listener: ListenerId) {
        if self.listeners.insert(listener, Life::Live).is_some() {
            self.report(format_args!(
                "listen returned {listener:?}, an id already issued"
            ));
        }
    }

    fn live_socket(&mut self, socket: SocketId, what: &str) {
        match self.sockets.get(&socket) {
            Some(Life::Live) => {}
            Some(Life::Freed) => {
                self.report(format_args!("{what} names {socket:?} after it was closed"))
            }
            None => self.report(format_args!(
                "{what} names {socket:?}, which was never opened"
            )),
        }
    }

    fn live_listener(&mut self, listener: ListenerId, what: &str) {
        match self.listeners.get(&listener) {
            Some(Life::Live) => {}
            Some(Life::Freed) => {
                self.report(format_args!("{what} names {listener:?} after Stopped"))
            }
            None => self.report(format_args!(
                "{what} names {listener:?}, which listen never returned"
            )),
        }
    }

    /// The track of a connection the application heard of and that has not
    /// ended; `None` (after reporting it) otherwise.
    fn conn(&mut self, conn: ConnectionId, what: &Event) -> Option<&mut ConnTrack> {
        match self.conns.get(&conn) {
            None => {
                self.report(format_args!(
                    "{what:?} for {conn:?}, a connection the application never heard of"
                ));
                None
            }
            Some(track) if track.ended => {
                self.report(format_args!("{what:?} after the end of {conn:?}"));
                None
            }
            Some(_) => self.conns.get_mut(&conn),
        }
    }

    /// Checks one output, in the order `poll` gave it.
    pub fn output(&mut self, out: &Output) {
        match out {
            Output::Dns(DnsAction::Send(send)) => match self.txns.get(&send.txn) {
                Some(Life::Freed) => {
                    self.report(format_args!("DNS send on {:?} after its Release", send.txn))
                }
                Some(Life::Live) => {}
                None => {
                    self.txns.insert(send.txn, Life::Live);
                }
            },
            Output::Dns(DnsAction::Release(txn)) => match self.txns.insert(*txn, Life::Freed) {
                Some(Life::Live) => {}
                Some(Life::Freed) => self.report(format_args!("{txn:?} released twice")),
                None => self.report(format_args!("release of {txn:?}, which was never sent")),
            },
            Output::OpenTcp { socket, .. } => {
                if self.sockets.insert(*socket, Life::Live).is_some() {
                    self.report(format_args!(
                        "OpenTcp names {socket:?}, an id already issued"
                    ));
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
            other => self.report(format_args!(
                "an output the contract checker does not know: {other:?}"
            )),
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
            // A handshake may still fail after its listener stopped (the
            // accepted connection outlives it), so the listener need not
            // be live; it names no connection id.
            Event::HandshakeFailed { .. } => {}
            Event::ConnectionReceived { listener, conn, .. } => {
                let after_stop = self.listeners.get(listener) == Some(&Life::Freed);
                if !(after_stop && tolerated("connection-received-after-stopped")) {
                    self.live_listener(*listener, "ConnectionReceived");
                }
                match self.conns.get_mut(conn) {
                    Some(t) if t.forged && !t.ready && !t.ended => t.ready = true,
                    Some(_) => self.report(format_args!(
                        "ConnectionReceived names {conn:?}, an id already issued"
                    )),
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
                let Some(track) = self.conn(*conn, e) else {
                    return;
                };
                let (active, ready) = (track.active, track.ready);
                track.ready = true;
                if !active {
                    self.report(format_args!(
                        "Ready for {conn:?}, which a listener delivered"
                    ));
                } else if ready {
                    self.report(format_args!("a second Ready for {conn:?}"));
                }
            }
            Event::EstablishmentError { conn, .. } => {
                let Some(track) = self.conn(*conn, e) else {
                    return;
                };
                let ready = track.ready;
                track.ended = true;
                if ready {
                    self.report(format_args!("EstablishmentError after Ready for {conn:?}"));
                }
            }
            Event::Received { conn, .. }
            | Event::ReceivedPartial { conn, .. }
            | Event::Sent { conn, .. }
            | Event::Readable { conn }
            | Event::PathChange { conn, .. }
            | Event::SoftError { conn, .. } => {
                if self.conn(*conn, e).is_some_and(|t| !t.ready) {
                    self.report(format_args!("{e:?} before Ready"));
                }
            }
            Event::Expired { conn, .. }
            | Event::SendError { conn, .. }
            | Event::Writable { conn } => {
                self.conn(*conn, e);
            }
            Event::ConnectionError { conn, .. } | Event::Closed { conn } => {
                if let Some(track) = self.conn(*conn, e) {
                    track.ended = true;
                }
            }
            other => self.report(format_args!(
                "an event the contract checker does not know: {other:?}"
            )),
        }
    }

    /// Whether `socket` was opened or accepted and is not closed.
    pub fn is_live_socket(&self, socket: SocketId) -> bool {
        self.sockets.get(&socket) == Some(&Life::Live)
    }

    /// Sockets opened or accepted and not yet closed, in id order.
    pub fn live_sockets(&self) -> Vec<SocketId> {
        let mut ids: Vec<_> = self
            .sockets
            .iter()
            .filter(|(_, l)| **l == Life::Live)
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        ids
    }

    /// Whether `txn` was sent and not yet released.
    pub fn is_live_txn(&self, txn: DnsTxnId) -> bool {
        self.txns.get(&txn) == Some(&Life::Live)
    }

    /// DNS transactions sent and not yet released.
    pub fn live_txns(&self) -> usize {
        self.txns.values().filter(|l| **l == Life::Live).count()
    }

    /// Every connection id the application heard of, in id order.
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

/// An error's `Display` must say something a person can act on
/// (ARCHITECTURE.md, core contract rule 3).
pub fn nonempty(e: &dyn Display) {
    if e.to_string().trim().is_empty() {
        violated!("an error displays as empty text");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONN: ConnectionId = ConnectionId::from_raw(0, 0);
    const SOCKET: SocketId = SocketId::from_raw(0, 0);

    /// A connection's socket opened, then its `Ready` given twice.
    fn won_twice() -> Vec<Output> {
        let ready = Output::Event(Event::Ready {
            conn: CONN,
            socket: SOCKET,
            remote: "192.0.2.1:443".parse().unwrap(),
            interface: None,
        });
        vec![
            Output::OpenTcp {
                socket: SOCKET,
                remote: "192.0.2.1:443".parse().unwrap(),
                local: None,
                interface: None,
                fast_open: false,
                options: Default::default(),
            },
            ready.clone(),
            ready,
        ]
    }

    #[test]
    fn a_recording_checker_writes_a_broken_rule_down_and_carries_on() {
        let mut checker = Checker::recording();
        checker.initiated(CONN);
        for out in won_twice() {
            checker.output(&out);
        }
        // The world's own finding lands after the checker's, in order.
        checker.report("the machine is not idle");
        checker.output(&Output::CloseSocket { socket: SOCKET });
        assert_eq!(
            checker.take_violations(),
            [
                format!("a second Ready for {CONN:?}"),
                "the machine is not idle".to_string(),
            ]
        );
        assert!(checker.take_violations().is_empty(), "taken once");
        assert!(
            !checker.is_live_socket(SOCKET),
            "it kept following the outputs"
        );
    }

    #[test]
    #[should_panic(expected = "taps fuzz invariant violated: a second Ready")]
    fn a_default_checker_panics_at_the_first_broken_rule() {
        let mut checker = Checker::default();
        checker.initiated(CONN);
        for out in won_twice() {
            checker.output(&out);
        }
    }

    #[test]
    fn clear_forgets_handles_and_violations() {
        let mut checker = Checker::recording();
        checker.output(&Output::CloseSocket { socket: SOCKET });
        checker.clear();
        assert!(checker.take_violations().is_empty());
        // Cleared, the same id is fresh again.
        checker.initiated(CONN);
        for out in won_twice().into_iter().take(2) {
            checker.output(&out);
        }
        assert!(checker.take_violations().is_empty());
    }
}
