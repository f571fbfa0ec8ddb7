//! The state one [`Taps`](super::Taps) shares with its connections,
//! listeners and tasks: the core's [`Driver`] and the adapter's own
//! per-connection and per-listener bookkeeping, behind one mutex.
//!
//! The lock is taken only around synchronous driver calls and never held
//! across an await (ARCHITECTURE.md "The async layer"). Calls that may make
//! the machine ask for new sockets, DNS transactions or listeners go
//! through [`tasks::act`](super::tasks::act), which starts them once the
//! lock is released, in the task that made the call (no hop through a
//! dispatcher task); every other call takes [`Shared::lock`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use smallvec::SmallVec;

use crate::IdMap;
use crate::driver::{Driver, NonBlockingIo, Signal};
use taps_core::{
    CheckedOutTls, ConnectionId, EstablishmentError, Event, FailureReason, Input, ListenerId,
    SocketId, TlsCheckout, TlsRead,
};

use super::ConnectionEvent;
use super::parked::{Claim, Parked};
use super::{ReadyTcp, Runtime};

/// The race attempts' tasks an `initiate` runs (`Inner::claim_attempts`).
/// These lists, the work started when a lock ends, the waiters of a
/// connection and its attempts are short, and kept inline: no allocation
/// for them per connect.
pub(crate) type Claims = SmallVec<[(SocketId, Claim); 2]>;

/// Bound on events kept for an application that does not read them; past
/// it the oldest go (the same rule as the driver's own queues).
const MAX_APP_EVENTS: usize = 1024;

/// Shared by a `Taps`, its connections, listeners and tasks.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// The runtime the tasks run on, so work can be spawned from any
    /// thread, including a `Drop` outside the runtime.
    pub(crate) runtime: Arc<dyn Runtime>,
    /// Raised when the last handle goes: background tasks end.
    pub(crate) stop: Arc<Signal>,
    /// Raised when the machine's next deadline moved earlier.
    pub(crate) timer_signal: Arc<Signal>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop.notify();
        self.timer_signal.notify();
    }
}

/// What the mutex protects.
pub(crate) struct Inner {
    pub(crate) driver: Driver,
    pub(crate) conns: IdMap<ConnectionId, ConnSide>,
    pub(crate) listeners: IdMap<ListenerId, ListenSide>,
    /// The connected sockets, shared with their tasks, for the stream
    /// pass-through ([`Inner::stream_writer`], [`Inner::stream_reader`]);
    /// each task removes its own before it closes it.
    pub(crate) io: IdMap<SocketId, Arc<dyn ReadyTcp>>,
    /// Each socket's task, which application futures may claim
    /// ([`super::parked`]); each task removes its own before it ends.
    pub(crate) socket_tasks: IdMap<SocketId, Arc<Parked>>,
}

impl Shared {
    pub(crate) fn new(driver: Driver, runtime: Arc<dyn Runtime>) -> Arc<Shared> {
        let timer_signal = driver.timer_signal();
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                driver,
                conns: IdMap::default(),
                listeners: IdMap::default(),
                io: IdMap::default(),
                socket_tasks: IdMap::default(),
            }),
            runtime,
            stop: Signal::new(),
            timer_signal,
        })
    }

    /// Locks the state, for a call that cannot make the machine ask for a
    /// new socket, DNS transaction or listener (queries, stream and message
    /// I/O, close, abort: the core opens things only while establishing or
    /// listening); the others go through [`tasks::act`](super::tasks::act).
    /// Debug builds check that no earlier holder left such work unstarted.
    ///
    /// A panic in another holder does not make the state unusable for
    /// everyone else: the driver's invariants hold between calls, so the
    /// poison is ignored.
    pub(crate) fn lock(&self) -> Locked<'_> {
        let guard = self.lock_for_work();
        debug_assert!(
            !guard.driver.has_work(),
            "work the machine asked for was left unstarted (a call that can \
             start sockets must go through tasks::act)"
        );
        guard
    }

    /// Locks the state for [`tasks::act`](super::tasks::act), which starts
    /// the work after.
    pub(crate) fn lock_for_work(&self) -> Locked<'_> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `op` (one read or write) on a checked-out TLS session and its
    /// socket without the lock, then checks the session back in: the one
    /// way both stream directions use a checkout, so none forgets to give
    /// it back. Returns the socket, what `op` did, and the lock, still held
    /// for what the caller does next.
    pub(crate) fn through_tls<R>(
        &self,
        io: &dyn ReadyTcp,
        mut session: CheckedOutTls,
        op: impl FnOnce(&mut CheckedOutTls, &dyn ReadyTcp) -> R,
    ) -> (SocketId, R, Locked<'_>) {
        let socket = session.socket();
        let outcome = op(&mut session, io);
        let mut g = self.lock();
        g.check_in_tls(session);
        (socket, outcome, g)
    }

    /// Closes `conn` in the core (freeing its id) and forgets the
    /// adapter's side of it: for a race given up or failed.
    pub(crate) fn release(&self, conn: ConnectionId) {
        let mut g = self.lock();
        g.driver.command(|m, now| m.connection(conn).close(now));
        g.conns.remove(&conn);
        g.driver.forget(conn);
    }
}

/// The locked state.
pub(crate) type Locked<'a> = MutexGuard<'a, Inner>;

/// Wakes every task waiting on one connection or listener: the driver
/// keeps one event waker per connection, while a receive, a send, a close
/// and an event stream may all wait at once.
#[derive(Default)]
pub(crate) struct MultiWake {
    wakers: Mutex<SmallVec<[Waker; 2]>>,
}

impl MultiWake {
    pub(crate) fn register(&self, waker: &Waker) {
        let mut list = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        if !list.iter().any(|w| w.will_wake(waker)) {
            list.push(waker.clone());
        }
    }

    /// Wakes (and forgets) every registered waiter.
    pub(crate) fn wake_all(&self) {
        let list = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(PoisonError::into_inner));
        for w in list {
            w.wake();
        }
    }
}

impl Wake for MultiWake {
    fn wake(self: Arc<Self>) {
        self.wake_all();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_all();
    }
}

/// How a connection ended.
#[derive(Clone, Debug)]
pub(crate) enum Terminal {
    /// Closed in order (or after `close_timeout`).
    Closed,
    /// Broke, or was aborted.
    Failed(FailureReason),
    /// Never came up.
    Establishment(Box<EstablishmentError>),
}

/// The winner, from `Ready`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadyInfo {
    pub(crate) remote: SocketAddr,
    pub(crate) interface: Option<u32>,
}

/// One receive answer.
pub(crate) struct Piece {
    pub(crate) data: Vec<u8>,
    pub(crate) end_of_message: bool,
    pub(crate) partial: bool,
}

/// The adapter's view of one connection: the driver's events, sorted by
/// who waits for them.
pub(crate) struct ConnSide {
    pub(crate) wake: Arc<MultiWake>,
    waker: Waker,
    pub(crate) ready: Option<ReadyInfo>,
    pub(crate) received: VecDeque<Piece>,
    pub(crate) events: VecDeque<ConnectionEvent>,
    pub(crate) terminal: Option<Terminal>,
    /// The connection frames messages (else receive answers are stream
    /// bytes).
    pub(crate) framed: bool,
    /// The end of the peer's data was handed to a receive.
    pub(crate) eof: bool,
    /// `close` was asked for.
    pub(crate) closing: bool,
    /// The race's sockets, while they connect: `initiate` runs their tasks
    /// itself, so the winner's connect wakes the application directly.
    pub(crate) attempts: SmallVec<[SocketId; 2]>,
}

impl ConnSide {
    pub(crate) fn new(framed: bool) -> ConnSide {
        let wake = Arc::new(MultiWake::default());
        ConnSide {
            waker: Waker::from(wake.clone()),
            wake,
            ready: None,
            received: VecDeque::new(),
            events: VecDeque::new(),
            terminal: None,
            framed,
            eof: false,
            closing: false,
            attempts: SmallVec::new(),
        }
    }

    fn absorb(&mut self, event: Event) {
        let app = match event {
            Event::Ready {
                remote, interface, ..
            } => {
                self.ready = Some(ReadyInfo { remote, interface });
                None
            }
            Event::EstablishmentError { error, .. } => {
                self.terminal = Some(Terminal::Establishment(Box::new(error)));
                None
            }
            Event::Received { data, .. } => {
                self.received.push_back(Piece {
                    data,
                    end_of_message: true,
                    partial: false,
                });
                None
            }
            Event::ReceivedPartial {
                data,
                end_of_message,
                ..
            } => {
                self.received.push_back(Piece {
                    data,
                    end_of_message,
                    partial: true,
                });
                None
            }
            Event::Sent { message, .. } => Some(ConnectionEvent::Sent(message)),
            Event::Expired { message, .. } => Some(ConnectionEvent::Expired(message)),
            Event::SendError { message, error, .. } => {
                Some(ConnectionEvent::SendError(message, error))
            }
            Event::ConnectionError { reason, .. } => {
                self.terminal = Some(Terminal::Failed(reason));
                Some(ConnectionEvent::ConnectionError(reason))
            }
            Event::Closed { .. } => {
                self.terminal = Some(Terminal::Closed);
                Some(ConnectionEvent::Closed)
            }
            Event::PathChange { .. } => Some(ConnectionEvent::PathChange),
            Event::SoftError { reason, .. } => Some(ConnectionEvent::SoftError(reason)),
            // Not queued by the driver (wakers only), listener events, and
            // events of a newer core this layer does not offer yet.
            _ => None,
        };
        if let Some(e) = app {
            if self.events.len() >= MAX_APP_EVENTS {
                self.events.pop_front();
            }
            self.events.push_back(e);
        }
    }
}

/// Where an application's stream read or write goes when it can bypass
/// the machine's buffers (the pass-through).
pub(crate) enum Through {
    /// Straight to or from a plain TCP stream's socket.
    Plain(SocketId, Arc<dyn ReadyTcp>),
    /// Through a TLS stream's session, checked out of the machine so its
    /// crypto runs without this lock; check it back in
    /// ([`Inner::check_in_tls`]) before waiting.
    Tls(Arc<dyn ReadyTcp>, CheckedOutTls),
}

impl Inner {
    /// A stream read's pass-through for `conn`: the plain socket
    /// ([`Inner::stream_reader`]) or the TLS session
    /// (`Machine::check_out_tls`), reading delegated either way.
    pub(crate) fn reader(&mut self, conn: ConnectionId) -> Option<Through> {
        if let Some((socket, io)) = self.stream_reader(conn) {
            return Some(Through::Plain(socket, io));
        }
        self.check_out_tls(conn, TlsCheckout::Read)
    }

    /// A stream write's pass-through for `conn`: the plain socket
    /// ([`Inner::stream_writer`]) or the TLS session.
    pub(crate) fn writer(&mut self, conn: ConnectionId) -> Option<Through> {
        if let Some((socket, io)) = self.stream_writer(conn) {
            return Some(Through::Plain(socket, io));
        }
        self.check_out_tls(conn, TlsCheckout::Write)
    }

    fn check_out_tls(&mut self, conn: ConnectionId, purpose: TlsCheckout) -> Option<Through> {
        let socket = self.driver.machine().connection_info(conn)?.socket()?;
        let io = self.io.get(&socket)?.clone();
        let session = self
            .driver
            .command(|m, _| m.connection(conn).check_out_tls(purpose))?;
        Some(Through::Tls(io, session))
    }

    /// Gives a checked-out TLS session back to the machine, which acts on
    /// what its read or write did.
    pub(crate) fn check_in_tls(&mut self, session: CheckedOutTls) {
        self.driver.handle(Input::TlsCheckIn(session));
    }

    /// The socket of a plain TCP connection with nothing queued
    /// (`ConnectionInfo::write_through`), for a stream write straight to it, made
    /// without this lock (the syscall's copy is the write's cost, and both
    /// ends of a loopback connection share one instance): one copy less
    /// than through the transmit queue, and no hand-over to the socket's
    /// task. Report what it took with [`Inner::wrote_through`]. A writer
    /// that finds it full waits on its readiness, as with a `TcpStream`.
    /// Nothing else writes to it meanwhile: the machine has nothing of this
    /// connection to write, and the writer holds the connection exclusively
    /// (`&mut`), so no send, close or shutdown can queue any.
    fn stream_writer(&self, conn: ConnectionId) -> Option<(SocketId, Arc<dyn ReadyTcp>)> {
        let socket = self
            .driver
            .machine()
            .connection_info(conn)?
            .write_through()?;
        Some((socket, self.io.get(&socket)?.clone()))
    }

    /// A stream write through the machine (TLS, a framer, or bytes
    /// queued), whose output is written to the socket in the caller's task
    /// (`Driver::poll_write_flushing`) when the socket is connected.
    pub(crate) fn write_via_machine(
        &mut self,
        conn: ConnectionId,
        data: &[u8],
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
        let io = self
            .driver
            .machine()
            .connection_info(conn)
            .and_then(|c| c.socket())
            .and_then(|socket| self.io.get(&socket).cloned());
        match io {
            Some(io) => self
                .driver
                .poll_write_flushing(conn, data, cx, &mut StreamIo(&*io)),
            None => self.driver.poll_write(conn, data, cx),
        }
    }

    /// `n` bytes went straight to `conn`'s socket ([`Inner::stream_writer`]).
    pub(crate) fn wrote_through(&mut self, conn: ConnectionId, n: usize) {
        self.driver.handle(Input::WroteThrough { conn, len: n });
    }

    /// The socket of an established plain TCP connection with nothing
    /// received waiting (`ConnectionInfo::read_through`), handed to the
    /// application to read straight into its buffer, without this lock:
    /// reading is delegated first (`ConnectionView::delegate_reading`), so the
    /// socket's task keeps off it and no bytes are reordered; the reader
    /// holds the connection exclusively, so no receive or close can take
    /// the delegation back meanwhile. The end of the stream and errors go
    /// to the machine ([`Inner::through_ended`]).
    fn stream_reader(&mut self, conn: ConnectionId) -> Option<(SocketId, Arc<dyn ReadyTcp>)> {
        let socket = self
            .driver
            .machine()
            .connection_info(conn)?
            .read_through()?;
        let io = self.io.get(&socket)?.clone();
        self.driver
            .command(|m, _| m.connection(conn).delegate_reading())
            .then_some((socket, io))
    }

    /// A pass-through read met the end of the stream (`Ok(0)`), or a read
    /// or write met an error: the machine hears it as from the socket's
    /// task.
    pub(crate) fn through_ended(&mut self, socket: SocketId, result: std::io::Result<usize>) {
        match result {
            Ok(_) => self.driver.handle(Input::SocketEof { socket }),
            Err(e) => {
                let reason = taps_sys::socket::failure_reason(&e);
                self.driver.handle(Input::SocketFailed { socket, reason });
            }
        }
    }

    /// The parked task of `conn`'s socket, for `close` to run in its own
    /// task (see [`super::parked`]); `None` when it is running elsewhere.
    pub(crate) fn claim_socket_task(&self, conn: ConnectionId) -> Option<Claim> {
        let socket = self.driver.machine().connection_info(conn)?.socket()?;
        self.socket_tasks.get(&socket)?.claim()
    }

    /// Claims the parked tasks of `conn`'s race attempts not claimed yet
    /// (`claimed` lists those that are), for `initiate`.
    pub(crate) fn claim_attempts(&mut self, conn: ConnectionId, claimed: &mut Claims) {
        let Some(side) = self.conns.get_mut(&conn) else {
            return;
        };
        let driver = &self.driver;
        side.attempts.retain(|s| driver.awaiting_connect(*s));
        for socket in &side.attempts {
            if !claimed.iter().any(|(s, _)| s == socket)
                && let Some(claim) = self.socket_tasks.get(socket).and_then(|t| t.claim())
            {
                claimed.push((*socket, claim));
            }
        }
    }

    /// Moves the driver's events for `conn` into its [`ConnSide`], leaving
    /// the side's waker with the driver. `None` if the side is gone.
    pub(crate) fn pump(&mut self, conn: ConnectionId) -> Option<&mut ConnSide> {
        let side = self.conns.get_mut(&conn)?;
        let waker = side.waker.clone();
        let mut cx = Context::from_waker(&waker);
        while let Poll::Ready(event) = self.driver.poll_event(conn, &mut cx) {
            side.absorb(event);
        }
        Some(side)
    }

    /// As [`Inner::pump`] for a listener.
    pub(crate) fn pump_listener(&mut self, listener: ListenerId) -> Option<&mut ListenSide> {
        let side = self.listeners.get_mut(&listener)?;
        let waker = side.waker.clone();
        let mut cx = Context::from_waker(&waker);
        while let Poll::Ready(event) = self.driver.poll_listener_event(listener, &mut cx) {
            match event {
                Event::ConnectionReceived { conn, remote, .. } => {
                    side.incoming.push_back((conn, remote))
                }
                Event::ListenerError { reason, .. } => {
                    side.error.get_or_insert_with(|| reason.to_string());
                }
                Event::HandshakeFailed { remote, reason, .. } => {
                    // Bounded: a listener nobody asks for failures
                    // (plain `accept`) keeps only the latest.
                    if side.failed.len() == MAX_HANDSHAKE_FAILURES {
                        side.failed.pop_front();
                    }
                    side.failed.push_back((remote, reason));
                }
                Event::Stopped { .. } => side.stopped = true,
                _ => {}
            }
        }
        Some(side)
    }
}

/// How many failed handshakes a listener keeps for
/// [`Listener::next_incoming`](crate::Listener::next_incoming).
pub(crate) const MAX_HANDSHAKE_FAILURES: usize = 32;

/// The adapter's view of one listener.
pub(crate) struct ListenSide {
    pub(crate) wake: Arc<MultiWake>,
    waker: Waker,
    /// Listening sockets not opened yet.
    pub(crate) opening: usize,
    /// The addresses bound (with the ports the system picked).
    pub(crate) bound: Vec<SocketAddr>,
    /// The first failure of a listening socket, in words.
    pub(crate) error: Option<String>,
    pub(crate) incoming: VecDeque<(ConnectionId, SocketAddr)>,
    /// Accepted connections whose handshake failed, with why (at most
    /// [`MAX_HANDSHAKE_FAILURES`], oldest dropped first).
    pub(crate) failed: VecDeque<(SocketAddr, taps_core::FailureReason)>,
    pub(crate) stopped: bool,
    /// Raised on stop, one per accept task: they end.
    pub(crate) stops: Vec<Arc<Signal>>,
    pub(crate) framed: bool,
}

impl ListenSide {
    pub(crate) fn new(opening: usize, framed: bool) -> ListenSide {
        let wake = Arc::new(MultiWake::default());
        ListenSide {
            waker: Waker::from(wake.clone()),
            wake,
            opening,
            bound: Vec::new(),
            error: None,
            incoming: VecDeque::new(),
            failed: VecDeque::new(),
            stopped: false,
            stops: Vec::new(),
            framed,
        }
    }
}

/// What a stream read or write through a checked-out TLS session did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TlsThrough {
    /// A read: this many plaintext bytes are in the buffer. A write: this
    /// many plaintext bytes were taken (their records are written, or go
    /// to the machine at check-in).
    Done(usize),
    /// The socket has nothing to read, or is full with earlier records:
    /// wait on its readiness.
    WouldBlock,
    /// The peer's data ended (close_notify, FIN) or TLS failed: the
    /// machine hears it at check-in; read on through it.
    Ended,
}

/// A stream read through a checked-out session: records from the socket
/// until some plaintext fills `buf` (not empty).
///
/// # Errors
///
/// The socket's own errors; the machine hears of them after check-in.
pub(crate) fn read_tls(
    session: &mut CheckedOutTls,
    io: &dyn ReadyTcp,
    buf: &mut [u8],
) -> std::io::Result<TlsThrough> {
    loop {
        match session.read(buf) {
            TlsRead::Data(n) => return Ok(TlsThrough::Done(n)),
            TlsRead::Ended => return Ok(TlsThrough::Ended),
            TlsRead::NeedsRecords => {}
        }
        match io.try_read(session.record_space()) {
            Ok(n) => session.records_read(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return Ok(TlsThrough::WouldBlock);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A stream write through a checked-out session: records owed from
/// earlier go first; while any wait, nothing new is taken. Then as much of
/// `data` as one write takes is encrypted and its records written as far
/// as the socket takes them.
///
/// # Errors
///
/// The socket's own errors; bytes taken before one count as taken (the
/// connection is failing anyway).
pub(crate) fn write_tls(
    session: &mut CheckedOutTls,
    io: &dyn ReadyTcp,
    data: &[u8],
) -> std::io::Result<TlsThrough> {
    if !send_records(session, io)? {
        return Ok(TlsThrough::WouldBlock);
    }
    let taken = session.encrypt(data);
    send_records(session, io)?;
    Ok(TlsThrough::Done(taken))
}

/// Writes the session's waiting records to the socket; whether all went.
fn send_records(session: &mut CheckedOutTls, io: &dyn ReadyTcp) -> std::io::Result<bool> {
    while !session.records_to_send().is_empty() {
        match io.try_write(session.records_to_send()) {
            Ok(0) => return Ok(false),
            Ok(n) => session.records_sent(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// A registered socket as the driver's [`NonBlockingIo`].
pub(crate) struct StreamIo<'a>(pub(crate) &'a dyn ReadyTcp);

impl NonBlockingIo for StreamIo<'_> {
    fn try_read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.try_read(buf)
    }
    fn try_write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.try_write(buf)
    }
    fn shutdown_write(&mut self) -> std::io::Result<()> {
        self.0.socket().shutdown(std::net::Shutdown::Write)
    }
}
