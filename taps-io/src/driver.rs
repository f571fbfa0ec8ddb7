//! The runtime-independent half of every adapter: one [`Driver`] wraps the
//! [`Machine`] and does everything an adapter does that is not about its
//! runtime (ARCHITECTURE.md "Layers": decisions go in taps-core,
//! performing them goes in taps-io).
//!
//! - It reads the system clock and converts to the core's [`Instant`].
//! - It drains the machine after every call and routes each output: socket
//!   work to the task that owns the socket (through a [`Signal`]), new
//!   sockets, DNS transactions and listeners to the adapter as [`Work`],
//!   events to the connection or listener they concern (with wakers).
//! - It performs one non-blocking I/O step on a socket for whatever
//!   runtime owns it ([`Driver::socket_step`] over [`NonBlockingIo`]).
//!
//! An adapter keeps the driver in an `Arc<Mutex<Driver>>`, locks it only
//! for one of these synchronous calls, and never holds the lock across an
//! await: one slow connection cannot stall the others.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use crate::IdMap;
use smallvec::SmallVec;
use taps_core::{
    ConnectionId, ConnectionState, DnsTxnId, Event, FailureReason, Input, Instant, ListenerId,
    Machine, Message, MessageId, Output, SendError, SocketId, TcpSocketOptions,
    dns::{DnsAction, DnsSend, DnsTransport},
};

/// A wake-up flag one task sets and another awaits; runtime independent.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    raised: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Signal {
    /// A new, lowered signal.
    pub(crate) fn new() -> Arc<Signal> {
        Arc::new(Signal::default())
    }

    /// Raises the signal and wakes the waiting task.
    pub(crate) fn notify(&self) {
        self.raised.store(true, Ordering::Release);
        let waker = self.waker.lock().map(|mut w| w.take()).unwrap_or(None);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Ready (and lowered again) once the signal was raised.
    pub(crate) fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.raised.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        if let Ok(mut w) = self.waker.lock() {
            *w = Some(cx.waker().clone());
        }
        // Raised between the check and the registration: do not miss it.
        if self.raised.swap(false, Ordering::AcqRel) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Waits until the signal is raised.
    pub(crate) fn wait(self: &Arc<Self>) -> SignalWait {
        SignalWait(self.clone())
    }
}

/// The future of [`Signal::wait`].
#[derive(Debug)]
pub(crate) struct SignalWait(Arc<Signal>);

impl Future for SignalWait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_wait(cx)
    }
}

/// Something the adapter must start with its runtime.
#[derive(Debug)]
pub(crate) enum Work {
    /// Open a socket and connect; then run [`Driver::socket_step`] on it.
    OpenTcp {
        /// The machine's id for it.
        socket: SocketId,
        /// Where to.
        remote: SocketAddr,
        /// Interface to bind to, by name (`SO_BINDTODEVICE`). `None` also
        /// when the path's interface is the only way to the address anyway
        /// ([`binding_needed`](taps_sys::socket::binding_needed)).
        interface: Option<String>,
        /// Local address to bind.
        local: Option<SocketAddr>,
        /// Use TCP Fast Open.
        fast_open: bool,
        /// Keep-alive and user timeout.
        options: TcpSocketOptions,
    },
    /// Open a DNS transaction's socket and send its first message; later
    /// messages (retransmissions) come from [`Driver::dns_outbox`].
    DnsOpen {
        /// The transaction.
        txn: DnsTxnId,
        /// The server.
        server: SocketAddr,
        /// UDP or TCP.
        transport: DnsTransport,
    },
    /// Open listening sockets and accept with [`Driver::accept`].
    Listen {
        /// The listener.
        listener: ListenerId,
        /// Where.
        local: SocketAddr,
        /// `IPV6_V6ONLY`.
        v6_only: bool,
    },
}

/// How a socket's task should end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Close {
    /// FIN after the written bytes.
    Graceful,
    /// RST (`SO_LINGER` 0).
    Abort,
}

/// What a socket's task should do after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Wait for readiness (read and/or write) or the socket's signal.
    Wait {
        /// Wait until readable.
        read: bool,
        /// Wait until writable.
        write: bool,
    },
    /// Close the socket this way and end the task.
    Close(Close),
}

/// Non-blocking socket operations, as each runtime's socket offers them.
pub(crate) trait NonBlockingIo {
    /// Reads into `buf`; `WouldBlock` when nothing is ready; `Ok(0)` at EOF.
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes from `buf`; `WouldBlock` when the socket is full.
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Shuts down the write side (FIN).
    fn shutdown_write(&mut self) -> io::Result<()>;
}

#[derive(Debug)]
struct SocketSlot {
    signal: Arc<Signal>,
    /// The connect's outcome was reported: `initiate` stops running the
    /// socket's task (`Driver::awaiting_connect`).
    connect_reported: bool,
    close: Option<Close>,
    shutdown_wanted: bool,
    shutdown_done: bool,
}

struct DnsSlot {
    signal: Arc<Signal>,
    outbox: VecDeque<Vec<u8>>,
    /// The transaction's UDP socket and the server it is connected to,
    /// once its task has opened it: [`Driver::dns_datagram`] reads it when
    /// another transaction's answer arrives.
    udp: Option<(Arc<dyn crate::ReadyUdp>, SocketAddr)>,
}

impl std::fmt::Debug for DnsSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsSlot")
            .field("outbox", &self.outbox.len())
            .field("udp", &self.udp.as_ref().map(|(_, server)| server))
            .finish_non_exhaustive()
    }
}

/// Largest DNS message (RFC 1035 §4.2.1 over UDP with EDNS, and the TCP
/// length prefix's limit).
pub(crate) const DNS_BUF: usize = 65_535;

/// At most this many datagrams are taken from one other transaction's
/// socket per arriving answer, so a flooded socket cannot hold the lock.
const DNS_READS_PER_SIBLING: usize = 4;

#[derive(Debug, Default)]
struct Waiters {
    events: VecDeque<Event>,
    event: Option<Waker>,
    read: Option<Waker>,
    write: Option<Waker>,
    /// The application dropped its handle before the connection ended:
    /// events are dropped, and the entry goes with the terminal one.
    forgotten: bool,
}

impl Waiters {
    fn wake_all(&mut self) {
        for w in [self.event.take(), self.read.take(), self.write.take()]
            .into_iter()
            .flatten()
        {
            w.wake();
        }
    }
}

/// Whether `event` is the last a connection emits.
fn is_terminal(event: &Event) -> bool {
    matches!(
        event,
        Event::Closed { .. } | Event::ConnectionError { .. } | Event::EstablishmentError { .. }
    )
}

/// Bound on events queued for one connection or listener that nobody
/// reads; past it the oldest are dropped (the application is not
/// listening; data itself is never in events it has not asked for).
const MAX_QUEUED_EVENTS: usize = 1024;

/// The most one socket read takes: the default receive buffer of a
/// connection (`IoLimits::max_receive_buffer`).
const READ_CHUNK: usize = 1 << 20;

/// Where the core's clock starts in a new driver. Not at its origin: a
/// history restored from a file (`Taps::load_history`) is dated before the
/// process began, and the core's `Instant` cannot go below zero. 30 days
/// dates anything a history keeps (10 minutes by default).
pub(crate) const CLOCK_START: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// The machine plus the routing every adapter needs.
#[derive(Debug)]
pub(crate) struct Driver {
    machine: Machine,
    origin: std::time::Instant,
    sockets: IdMap<SocketId, SocketSlot>,
    dns: IdMap<DnsTxnId, DnsSlot>,
    conns: IdMap<ConnectionId, Waiters>,
    listeners: IdMap<ListenerId, Waiters>,
    stopped_listeners: Vec<ListenerId>,
    work: VecDeque<Work>,
    timer_signal: Arc<Signal>,
    armed: Option<Instant>,
    buf: Vec<u8>,
    /// Scratch for [`Driver::read_waiting_dns_answers`], sized on first use.
    dns_buf: Vec<u8>,
    /// The races logged as `tracing` spans, read from their traces after
    /// every dispatch.
    #[cfg(feature = "tracing")]
    spans: crate::tracing_spans::RaceSpans,
}

impl Driver {
    /// Wraps `machine`; time starts now.
    pub(crate) fn new(machine: Machine) -> Self {
        Driver {
            machine,
            origin: std::time::Instant::now(),
            sockets: IdMap::default(),
            dns: IdMap::default(),
            conns: IdMap::default(),
            listeners: IdMap::default(),
            stopped_listeners: Vec::new(),
            work: VecDeque::new(),
            timer_signal: Signal::new(),
            armed: None,
            // One read takes up to this much (and no more than the
            // connection's read capacity): on a busy stream, fewer and larger
            // reads cost fewer syscalls and wake-ups per byte. It is one
            // buffer per driver, not per socket.
            buf: vec![0; READ_CHUNK],
            dns_buf: Vec::new(),
            #[cfg(feature = "tracing")]
            spans: crate::tracing_spans::RaceSpans::default(),
        }
    }

    /// The machine, for calls that need no routing (queries).
    pub(crate) fn machine(&self) -> &Machine {
        &self.machine
    }

    /// Runs one command on the machine at the time now, then routes what
    /// it asked for: the one way the async layer changes the machine, so
    /// no caller can forget the routing.
    pub(crate) fn command<R>(&mut self, command: impl FnOnce(&mut Machine, Instant) -> R) -> R {
        let now = self.now();
        let result = command(&mut self.machine, now);
        self.dispatch();
        result
    }

    /// The core's time now: [`CLOCK_START`] plus the time since the
    /// driver was made.
    pub(crate) fn now(&self) -> Instant {
        Instant::ZERO + CLOCK_START + self.origin.elapsed()
    }

    /// A core instant as a std instant, for runtime timers.
    pub(crate) fn to_std(&self, t: Instant) -> std::time::Instant {
        self.origin + t.saturating_duration_since(Instant::ZERO + CLOCK_START)
    }

    /// Raised when the machine's next deadline moved earlier.
    pub(crate) fn timer_signal(&self) -> Arc<Signal> {
        self.timer_signal.clone()
    }

    /// The next thing to start.
    pub(crate) fn take_work(&mut self) -> Option<Work> {
        self.work.pop_front()
    }

    /// Whether something waits to be started.
    pub(crate) fn has_work(&self) -> bool {
        !self.work.is_empty()
    }

    /// Runs due timers.
    pub(crate) fn on_timer(&mut self) {
        let now = self.now();
        self.armed = None;
        self.machine.handle_timeout(now);
        self.dispatch();
    }

    /// The deadline the timer task should sleep until.
    pub(crate) fn deadline(&mut self) -> Option<std::time::Instant> {
        let t = self.machine.poll_timeout();
        self.armed = t;
        t.map(|t| self.to_std(t))
    }

    /// Feeds an input and dispatches.
    pub(crate) fn handle(&mut self, input: Input<'_>) {
        let now = self.now();
        self.machine.handle(now, input);
        self.dispatch();
    }

    /// A DNS transaction's task opened its UDP socket, connected to
    /// `server`.
    pub(crate) fn dns_udp_opened(
        &mut self,
        txn: DnsTxnId,
        socket: Arc<dyn crate::ReadyUdp>,
        server: SocketAddr,
    ) {
        if let Some(slot) = self.dns.get_mut(&txn) {
            slot.udp = Some((socket, server));
        }
    }

    /// An answer arrived on `txn`'s socket. Before the machine is drained,
    /// the other transactions' sockets are read without waiting, so every
    /// answer this wake-up can see reaches the machine as one instant
    /// (ARCHITECTURE.md "The core contract"): an A and an AAAA answer that
    /// came in together are sorted together (RFC 6724 §6) instead of the
    /// race starting on whichever task ran first. A datagram that is not
    /// there yet is not waited for (HEv3 §4).
    pub(crate) fn dns_datagram(&mut self, txn: DnsTxnId, server: SocketAddr, payload: &[u8]) {
        let now = self.now();
        self.machine.handle(
            now,
            Input::DnsDatagram {
                txn,
                from: server,
                payload,
            },
        );
        self.read_waiting_dns_answers(now, txn);
        self.dispatch();
    }

    /// Hands the machine every datagram already waiting on a DNS socket
    /// other than `except`'s. A socket error goes to the machine as that
    /// transaction's transport failure, as its own task would report it,
    /// and the socket is not read here again.
    fn read_waiting_dns_answers(&mut self, now: Instant, except: DnsTxnId) {
        let others: SmallVec<[DnsTxnId; 8]> = self
            .dns
            .iter()
            .filter(|(id, slot)| **id != except && slot.udp.is_some())
            .map(|(id, _)| *id)
            .collect();
        if others.is_empty() {
            return;
        }
        let mut buf = std::mem::take(&mut self.dns_buf);
        buf.resize(DNS_BUF, 0);
        for txn in others {
            let Some((socket, server)) = self.dns.get(&txn).and_then(|s| s.udp.clone()) else {
                continue;
            };
            for _ in 0..DNS_READS_PER_SIBLING {
                match socket.try_recv(&mut buf) {
                    Ok(n) => self.machine.handle(
                        now,
                        Input::DnsDatagram {
                            txn,
                            from: server,
                            payload: &buf[..n],
                        },
                    ),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        if let Some(slot) = self.dns.get_mut(&txn) {
                            slot.udp = None;
                        }
                        self.machine.handle(now, Input::DnsTransportFailed { txn });
                        break;
                    }
                }
            }
        }
        self.dns_buf = buf;
    }

    /// Drains the machine and routes every output: after every call into
    /// the machine.
    fn dispatch(&mut self) {
        while let Some(out) = self.machine.poll() {
            match out {
                Output::Dns(DnsAction::Send(DnsSend {
                    txn,
                    server,
                    transport,
                    payload,
                })) => match self.dns.get_mut(&txn) {
                    Some(slot) => {
                        slot.outbox.push_back(payload);
                        slot.signal.notify();
                    }
                    None => {
                        let slot = DnsSlot {
                            signal: Signal::new(),
                            outbox: VecDeque::from([payload]),
                            udp: None,
                        };
                        self.dns.insert(txn, slot);
                        self.work.push_back(Work::DnsOpen {
                            txn,
                            server,
                            transport,
                        });
                    }
                },
                Output::Dns(DnsAction::Release(txn)) => {
                    if let Some(slot) = self.dns.remove(&txn) {
                        slot.signal.notify();
                    }
                }
                Output::OpenTcp {
                    socket,
                    remote,
                    interface,
                    local,
                    fast_open,
                    options,
                } => {
                    let interface = taps_sys::socket::interface_to_bind(
                        self.machine.interfaces(),
                        interface,
                        remote.ip(),
                    );
                    self.sockets.insert(
                        socket,
                        SocketSlot {
                            signal: Signal::new(),
                            connect_reported: false,
                            close: None,
                            shutdown_wanted: false,
                            shutdown_done: false,
                        },
                    );
                    self.work.push_back(Work::OpenTcp {
                        socket,
                        remote,
                        interface,
                        local,
                        fast_open,
                        options,
                    });
                }
                // Nothing left to write (an application's task wrote it
                // already, `poll_write_flushing`): no need to wake the
                // socket's task.
                Output::Transmit { socket }
                    if self.machine.socket(socket).transmit_data().is_empty() => {}
                Output::Transmit { socket } | Output::ResumeReading { socket } => self.poke(socket),
                Output::ShutdownWrite { socket } => {
                    if let Some(s) = self.sockets.get_mut(&socket) {
                        s.shutdown_wanted = true;
                    }
                    self.poke(socket);
                }
                Output::CloseSocket { socket } | Output::AbortSocket { socket } => {
                    let how = if matches!(out, Output::AbortSocket { .. }) {
                        Close::Abort
                    } else {
                        Close::Graceful
                    };
                    if let Some(s) = self.sockets.get_mut(&socket) {
                        s.close = Some(how);
                        s.signal.notify();
                    }
                }
                Output::Listen {
                    listener,
                    local,
                    v6_only,
                } => {
                    self.listeners.entry(listener).or_default();
                    self.work.push_back(Work::Listen {
                        listener,
                        local,
                        v6_only,
                    });
                }
                Output::StopListening { listener } => self.stopped_listeners.push(listener),
                Output::Event(event) => self.route(event),
                // A kind of work this layer does not perform (a newer core's):
                // nothing is opened, so nothing answers, and the machine's
                // timers fail what waits on it.
                _ => {}
            }
        }
        let next = self.machine.poll_timeout();
        if next.is_some() && (self.armed.is_none() || next < self.armed) {
            self.timer_signal.notify();
        }
        #[cfg(feature = "tracing")]
        if !self.spans.is_empty() {
            self.spans.emit(&self.machine);
        }
    }

    /// Logs the race of `conn`, just initiated from `pre`, as `tracing`
    /// spans while a subscriber wants them (`tracing_spans`); a no-op
    /// without the `tracing` feature.
    pub(crate) fn watch_race(&mut self, conn: ConnectionId, pre: &taps_core::Preconnection) {
        #[cfg(feature = "tracing")]
        self.spans.watch(&self.machine, conn, pre);
        #[cfg(not(feature = "tracing"))]
        let _ = (conn, pre);
    }

    fn poke(&self, socket: SocketId) {
        if let Some(s) = self.sockets.get(&socket) {
            s.signal.notify();
        }
    }

    fn route(&mut self, event: Event) {
        let waiters = match &event {
            Event::ConnectionReceived { listener, .. }
            | Event::ListenerError { listener, .. }
            | Event::HandshakeFailed { listener, .. }
            | Event::Stopped { listener } => self.listeners.entry(*listener).or_default(),
            e => match e.connection() {
                Some(conn) => self.conns.entry(conn).or_default(),
                None => return,
            },
        };
        if waiters.forgotten {
            // Nobody will read it. The terminal event is the connection's
            // last (the machine's rule), so the entry can go with it.
            if is_terminal(&event)
                && let Some(conn) = event.connection()
            {
                self.conns.remove(&conn);
            }
            return;
        }
        match event {
            Event::Readable { .. } => {
                if let Some(w) = waiters.read.take() {
                    w.wake();
                }
                return;
            }
            Event::Writable { .. } => {
                if let Some(w) = waiters.write.take() {
                    w.wake();
                }
                return;
            }
            Event::Received { .. } | Event::ReceivedPartial { .. } => {
                if let Some(w) = waiters.read.take() {
                    w.wake();
                }
            }
            _ => {}
        }
        let terminal = is_terminal(&event);
        if waiters.events.len() >= MAX_QUEUED_EVENTS {
            waiters.events.pop_front();
        }
        waiters.events.push_back(event);
        if terminal {
            waiters.wake_all();
        } else if let Some(w) = waiters.event.take() {
            w.wake();
        }
    }

    /// The next event for `conn`, or `Pending` (the waker is kept).
    pub(crate) fn poll_event(&mut self, conn: ConnectionId, cx: &mut Context<'_>) -> Poll<Event> {
        let w = self.conns.entry(conn).or_default();
        match w.events.pop_front() {
            Some(e) => Poll::Ready(e),
            None => {
                w.event = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// The next event for `listener`, or `Pending`.
    pub(crate) fn poll_listener_event(
        &mut self,
        listener: ListenerId,
        cx: &mut Context<'_>,
    ) -> Poll<Event> {
        let w = self.listeners.entry(listener).or_default();
        match w.events.pop_front() {
            Some(e) => Poll::Ready(e),
            None => {
                w.event = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Stream read for `conn`; on `WouldBlock` the waker is kept and woken
    /// when data (or the end) arrives.
    pub(crate) fn poll_read(
        &mut self,
        conn: ConnectionId,
        buf: &mut [u8],
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let result = self.machine.connection(conn).read(buf);
        self.dispatch();
        match result {
            Ok(n) => Poll::Ready(Ok(n)),
            Err(taps_core::StreamError::WouldBlock) => {
                self.conns.entry(conn).or_default().read = Some(cx.waker().clone());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                // The error itself, so its Display is the message.
                e,
            ))),
        }
    }

    /// Stream write for `conn`; on `WouldBlock` the waker is kept.
    pub(crate) fn poll_write(
        &mut self,
        conn: ConnectionId,
        data: &[u8],
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        self.write_then_flush(conn, data, cx, None)
    }

    /// As [`Driver::poll_write`], then writes what the machine made of it
    /// (TLS records, framed bytes) to `conn`'s socket `io` at once, in the
    /// caller's task, as far as the socket takes it: a stream writer on a
    /// connection that cannot pass through does not wait for a hand-over
    /// to the socket's task, which is woken only for what is left.
    pub(crate) fn poll_write_flushing(
        &mut self,
        conn: ConnectionId,
        data: &[u8],
        cx: &mut Context<'_>,
        io: &mut dyn NonBlockingIo,
    ) -> Poll<io::Result<usize>> {
        self.write_then_flush(conn, data, cx, Some(io))
    }

    /// A stream write, then (with `io`) a flush of the socket's pending
    /// bytes in the caller's task.
    fn write_then_flush(
        &mut self,
        conn: ConnectionId,
        data: &[u8],
        cx: &mut Context<'_>,
        io: Option<&mut dyn NonBlockingIo>,
    ) -> Poll<io::Result<usize>> {
        let now = self.now();
        let result = self.machine.connection(conn).write(data);
        if result == Err(taps_core::StreamError::WouldBlock) {
            // Before the flush: what it writes may make room, and the
            // `Writable` that says so is routed by the dispatch below.
            self.conns.entry(conn).or_default().write = Some(cx.waker().clone());
        }
        if let Some(io) = io
            && let Some(socket) = self.machine.connection_info(conn).and_then(|c| c.socket())
            && self.sockets.get(&socket).is_some_and(|s| s.close.is_none())
            && let Err(reason) = self.write_pending(socket, io)
        {
            self.machine
                .handle(now, Input::SocketFailed { socket, reason });
        }
        self.dispatch();
        match result {
            Ok(n) => Poll::Ready(Ok(n)),
            Err(taps_core::StreamError::WouldBlock) => Poll::Pending,
            Err(e) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                // The error itself, so its Display is the message.
                e,
            ))),
        }
    }

    /// Keeps `waker` as `conn`'s writer, woken with `Writable` and the
    /// connection's end: for a writer that waits on the socket itself (the
    /// adapters' stream pass-through) but must hear of a failure too.
    pub(crate) fn register_writer(&mut self, conn: ConnectionId, waker: &Waker) {
        self.conns.entry(conn).or_default().write = Some(waker.clone());
    }

    /// Forgets a connection's waiters (its handle was dropped or closed).
    ///
    /// A connection that has not ended yet (closing, say) still emits
    /// events, the last of them terminal; they are dropped, and the entry
    /// is removed with the terminal one instead of being made anew by it.
    pub(crate) fn forget(&mut self, conn: ConnectionId) {
        let ended = self
            .machine
            .connection_info(conn)
            .is_none_or(|c| c.state() == ConnectionState::Closed);
        if ended {
            self.conns.remove(&conn);
        } else {
            let w = self.conns.entry(conn).or_default();
            *w = Waiters {
                forgotten: true,
                ..Waiters::default()
            };
        }
    }

    /// Races logged as spans now (for the no-subscriber check).
    #[cfg(all(test, feature = "tracing"))]
    pub(crate) fn watched_races(&self) -> usize {
        self.spans.len()
    }

    /// Connections whose events the driver holds (for leak checks).
    #[cfg(test)]
    pub(crate) fn tracked_connections(&self) -> usize {
        self.conns.len()
    }

    /// Message send with back-pressure: hands `message` to the machine when
    /// its queue has room, taking it out of the option. When the queue is
    /// full the message stays with the caller, the waker is kept and woken
    /// once the connection is writable again (RFC 9622 §9.2: `send` never
    /// drops a message for lack of room). Any other refusal is final.
    pub(crate) fn poll_send(
        &mut self,
        conn: ConnectionId,
        message: &mut Option<Message>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<MessageId, SendError>> {
        let Some(len) = message.as_ref().map(|m| m.data.len()) else {
            return Poll::Ready(Err(SendError::NotOpen));
        };
        match self.machine.connection(conn).check_send(len) {
            Ok(()) => {}
            Err(SendError::BufferFull) => {
                self.conns.entry(conn).or_default().write = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Err(e) => {
                *message = None;
                return Poll::Ready(Err(e));
            }
        }
        let Some(message) = message.take() else {
            return Poll::Ready(Err(SendError::NotOpen));
        };
        let now = self.now();
        let result = self.machine.connection(conn).send(now, message);
        self.dispatch();
        Poll::Ready(result)
    }

    /// The signal of `socket`'s task, while the socket is live.
    pub(crate) fn socket_signal(&self, socket: SocketId) -> Option<Arc<Signal>> {
        self.sockets.get(&socket).map(|s| s.signal.clone())
    }

    /// The adapter's connect finished (or failed). Reported once; a
    /// second report, or one for a released socket, is ignored.
    pub(crate) fn connected(&mut self, socket: SocketId, result: Result<(), FailureReason>) {
        match self.sockets.get_mut(&socket) {
            Some(slot) if !slot.connect_reported => slot.connect_reported = true,
            // Already reported, or released: the machine has its answer.
            _ => return,
        }
        match result {
            Ok(()) => self.handle(Input::SocketConnected { socket }),
            Err(reason) => self.handle(Input::SocketFailed { socket, reason }),
        }
    }

    /// Whether `socket` is live and its connect's outcome not yet
    /// reported.
    pub(crate) fn awaiting_connect(&self, socket: SocketId) -> bool {
        self.sockets
            .get(&socket)
            .is_some_and(|slot| !slot.connect_reported && slot.close.is_none())
    }

    /// One non-blocking step of a live socket: write what the machine has,
    /// shut down when asked, read what it can take. The task then waits as
    /// [`Step`] says, or ends.
    pub(crate) fn socket_step(&mut self, socket: SocketId, io: &mut dyn NonBlockingIo) -> Step {
        let Some(slot) = self.sockets.get(&socket) else {
            return Step::Close(Close::Abort);
        };
        if let Some(how) = slot.close {
            return self.finish(socket, how, io);
        }
        let now = self.now();
        let mut want_write = false;
        if let Err(reason) = self
            .write_pending(socket, io)
            .map(|blocked| want_write = blocked)
        {
            self.machine
                .handle(now, Input::SocketFailed { socket, reason });
            self.dispatch();
            return self.after_failure(socket);
        }
        let pending_empty = self.machine.socket(socket).transmit_data().is_empty();
        if let Some(s) = self.sockets.get_mut(&socket)
            && s.shutdown_wanted
            && !s.shutdown_done
            && !want_write
            && pending_empty
        {
            s.shutdown_done = true;
            let _ = io.shutdown_write();
        }
        let mut want_read = false;
        loop {
            let capacity = self
                .machine
                .socket(socket)
                .read_capacity()
                .min(self.buf.len());
            if capacity == 0 {
                break;
            }
            match io.try_read(&mut self.buf[..capacity]) {
                Ok(0) => {
                    self.machine.handle(now, Input::SocketEof { socket });
                    break;
                }
                Ok(n) => {
                    let data = &self.buf[..n];
                    self.machine.handle(now, Input::SocketData { socket, data });
                    if n < capacity {
                        want_read = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    want_read = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let reason = taps_sys::socket::failure_reason(&e);
                    self.machine
                        .handle(now, Input::SocketFailed { socket, reason });
                    self.dispatch();
                    return self.after_failure(socket);
                }
            }
        }
        self.dispatch();
        // Output produced by what was read (TLS replies) is written at once.
        if !want_write
            && !self.machine.socket(socket).transmit_data().is_empty()
            && let Some(s) = self.sockets.get(&socket)
        {
            s.signal.notify();
        }
        match self.sockets.get(&socket).and_then(|s| s.close) {
            Some(how) => self.finish(socket, how, io),
            None => Step::Wait {
                read: want_read,
                write: want_write,
            },
        }
    }

    /// The socket closes `how`: after a graceful close's last bytes, the
    /// slot goes.
    fn finish(&mut self, socket: SocketId, how: Close, io: &mut dyn NonBlockingIo) -> Step {
        if how == Close::Graceful {
            // Best effort: what is still pending goes out before FIN.
            let _ = self.write_pending(socket, io);
        }
        self.sockets.remove(&socket);
        Step::Close(how)
    }

    fn after_failure(&mut self, socket: SocketId) -> Step {
        let how = self
            .sockets
            .get(&socket)
            .and_then(|s| s.close)
            .unwrap_or(Close::Abort);
        self.sockets.remove(&socket);
        Step::Close(how)
    }

    /// Writes pending transmit data; `Ok(true)` when the socket is full.
    fn write_pending(
        &mut self,
        socket: SocketId,
        io: &mut dyn NonBlockingIo,
    ) -> Result<bool, FailureReason> {
        let now = self.now();
        loop {
            let data = self.machine.socket(socket).transmit_data();
            if data.is_empty() {
                return Ok(false);
            }
            match io.try_write(data) {
                Ok(0) => return Ok(true),
                Ok(n) => self
                    .machine
                    .handle(now, Input::Transmitted { socket, len: n }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(taps_sys::socket::failure_reason(&e)),
            }
        }
    }

    /// The next message a DNS transaction's task should send; `None` with
    /// `live == false` when the transaction was released.
    pub(crate) fn dns_outbox(&mut self, txn: DnsTxnId) -> (Option<Vec<u8>>, bool) {
        match self.dns.get_mut(&txn) {
            Some(slot) => (slot.outbox.pop_front(), true),
            None => (None, false),
        }
    }

    /// The signal of a DNS transaction's task.
    pub(crate) fn dns_signal(&self, txn: DnsTxnId) -> Option<Arc<Signal>> {
        self.dns.get(&txn).map(|s| s.signal.clone())
    }

    /// Whether a listener was stopped (its accept task should end).
    pub(crate) fn listener_stopped(&self, listener: ListenerId) -> bool {
        self.stopped_listeners.contains(&listener)
    }

    /// An accepted TCP connection: the machine's socket id for it, with
    /// its signal, or `None` when the listener refused it (close it).
    pub(crate) fn accept(
        &mut self,
        listener: ListenerId,
        remote: SocketAddr,
    ) -> Option<(SocketId, Arc<Signal>)> {
        let now = self.now();
        let socket = self.machine.listener(listener).accept(now, remote).ok()?;
        let signal = Signal::new();
        self.sockets.insert(
            socket,
            SocketSlot {
                signal: signal.clone(),
                // Accepted sockets are connected from the start.
                connect_reported: true,
                close: None,
                shutdown_wanted: false,
                shutdown_done: false,
            },
        );
        self.dispatch();
        Some((socket, signal))
    }

    /// Number of live sockets the driver tracks (for leak checks).
    pub(crate) fn live_sockets(&self) -> usize {
        self.sockets.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;
    use taps_core::IoLimits;
    use taps_core::{Config, Preconnection};

    /// A peer that takes every byte and answers with EOF once told to.
    #[derive(Default)]
    struct FakeIo {
        written: usize,
        eof: bool,
        full: bool,
        reads: usize,
    }

    impl NonBlockingIo for FakeIo {
        fn try_read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
        fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.full {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.written += buf.len();
            Ok(buf.len())
        }
        fn shutdown_write(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    /// A waker that counts its wake-ups, and the count.
    fn counting_waker() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(counter.clone());
        (counter, waker)
    }

    impl FakeIo {
        /// A socket that takes nothing yet.
        fn full() -> FakeIo {
            FakeIo {
                full: true,
                ..FakeIo::default()
            }
        }
    }

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A driver with one established plain-TCP connection to a literal
    /// address, and the connection's socket.
    fn established(limits: IoLimits) -> (Driver, ConnectionId, SocketId) {
        let mut d = Driver::new(Machine::new(Config {
            io: limits,
            ..Config::new(0)
        }));
        let pre = Preconnection::new("192.0.2.1:80".parse().unwrap());
        let conn = d.command(|m, now| m.initiate(now, &pre).unwrap());
        let Some(Work::OpenTcp { socket, .. }) = d.take_work() else {
            panic!("no OpenTcp");
        };
        d.connected(socket, Ok(()));
        let waker = Waker::from(Arc::new(CountingWaker::default()));
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(
            d.poll_event(conn, &mut cx),
            Poll::Ready(Event::Ready { .. })
        ));
        (d, conn, socket)
    }

    /// HEv3 §6: what the kernel measured reaches the machine's history
    /// the way a `Taps` reports it (`tasks::report_kernel_rtts`), and sets
    /// the delay after an attempt to that destination.
    #[test]
    #[ignore = "needs root"]
    fn the_kernels_tcp_metrics_reach_the_history() {
        use std::io::{Read, Write};
        use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
        use taps_core::race::DelaySource;
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test makes a network namespace and needs root"
        );
        // A fresh namespace: the kernel's table holds this connection only.
        let source = std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            let up = std::process::Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status();
            assert!(up.is_ok_and(|s| s.success()), "ip link set lo up failed");
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let mut c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (mut s, _) = listener.accept().unwrap();
            c.write_all(b"x").unwrap();
            s.read_exact(&mut [0]).unwrap();
            // The client closes first, and TIME-WAIT, once the server has
            // closed too, saves its metrics.
            drop(c);
            let _ = s.read_to_end(&mut Vec::new());
            drop(s);
            let mut d = Driver::new(Machine::new(Config::new(0)));
            crate::tasks::report_kernel_rtts(|e| d.handle(Input::KernelRtts(e)));
            let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
            d.command(|m, now| m.history().attempt_rtt(now, None, None, lo))
        })
        .join()
        .expect("the namespace thread");
        let (estimate, from) = source.expect("an estimate for 127.0.0.1");
        assert_eq!(from, DelaySource::Kernel);
        assert!(
            estimate.srtt_us > 0 && estimate.srtt_us < 1_000_000,
            "{estimate:?}"
        );
    }

    #[test]
    fn an_attempt_is_bound_to_its_path_unless_loopback_reaches_only_loopback() {
        use taps_core::{Interface, InterfaceKind};
        let mut d = Driver::new(Machine::new(Config::new(0)));
        let lo = Interface::new("lo", 1, InterfaceKind::Loopback, &["127.0.0.1/8"]).unwrap();
        let eth = Interface::new("eth0", 2, InterfaceKind::Wired, &["192.0.2.2/24"]).unwrap();
        d.handle(Input::InterfacesChanged(vec![lo, eth]));
        let mut bound = |remote: &str| {
            let pre = Preconnection::new(remote.parse().unwrap());
            d.command(|m, now| m.initiate(now, &pre).unwrap());
            match d.take_work() {
                Some(Work::OpenTcp { interface, .. }) => interface,
                other => panic!("no OpenTcp: {other:?}"),
            }
        };
        assert_eq!(bound("127.0.0.1:80"), None);
        assert_eq!(bound("192.0.2.1:80").as_deref(), Some("eth0"));
    }

    #[test]
    fn a_forgotten_closing_connection_leaves_nothing_behind() {
        // Dropping a handle mid-close used to leave an entry: the later
        // Closed event made it anew, and nobody would ever remove it.
        let (mut d, conn, socket) = established(IoLimits::default());
        d.command(|m, now| m.connection(conn).close(now));
        d.forget(conn);
        assert_eq!(d.tracked_connections(), 1, "kept until the end");
        let mut io = FakeIo::default();
        assert!(matches!(d.socket_step(socket, &mut io), Step::Wait { .. }));
        io.eof = true;
        // The peer's FIN ends the close: Closed is emitted and dropped.
        let step = d.socket_step(socket, &mut io);
        assert_eq!(step, Step::Close(Close::Graceful));
        assert_eq!(d.machine().connection_info(conn).map(|c| c.state()), None);
        assert_eq!(d.tracked_connections(), 0);
        assert_eq!(d.live_sockets(), 0);
        // Forgetting an ended connection removes it at once.
        let (mut d, conn, _) = established(IoLimits::default());
        d.command(|m, now| m.connection(conn).abort(now));
        d.forget(conn);
        assert_eq!(d.tracked_connections(), 0);
    }

    #[test]
    fn stream_pass_through_only_when_nothing_waits_and_bytes_keep_their_order() {
        let (mut d, conn, socket) = established(IoLimits::default());
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        assert_eq!(
            d.machine()
                .connection_info(conn)
                .and_then(|c| c.write_through()),
            Some(socket)
        );
        assert_eq!(
            d.machine()
                .connection_info(conn)
                .and_then(|c| c.read_through()),
            Some(socket)
        );
        // Bytes the socket took directly count as written: a message sent
        // after them is Sent once its own bytes are transmitted.
        d.command(|m, now| m.handle(now, Input::WroteThrough { conn, len: 1000 }));
        let mut message = Some(Message::new(vec![1u8; 10]));
        let Poll::Ready(Ok(id)) = d.poll_send(conn, &mut message, &mut cx) else {
            panic!("send refused");
        };
        // Something waits to be written: no pass-through until it is out.
        assert_eq!(
            d.machine()
                .connection_info(conn)
                .and_then(|c| c.write_through()),
            None
        );
        let mut io = FakeIo::default();
        let _ = d.socket_step(socket, &mut io);
        assert_eq!(io.written, 10, "only the message went through the queue");
        assert!(matches!(
            d.poll_event(conn, &mut cx),
            Poll::Ready(Event::Sent { message, .. }) if message == id
        ));
        assert_eq!(
            d.machine()
                .connection_info(conn)
                .and_then(|c| c.write_through()),
            Some(socket)
        );
        // Received bytes wait in the buffer: they are read first.
        d.handle(Input::SocketData {
            socket,
            data: b"abc",
        });
        assert_eq!(
            d.machine()
                .connection_info(conn)
                .and_then(|c| c.read_through()),
            None
        );
        let mut buf = [0u8; 8];
        assert!(matches!(
            d.poll_read(conn, &mut buf, &mut cx),
            Poll::Ready(Ok(3))
        ));
        assert_eq!(
            d.machine()
                .connection_info(conn)
                .and_then(|c| c.read_through()),
            Some(socket)
        );
        // After the peer's end, nothing more to read from the socket.
        io.eof = true;
        let _ = d.socket_step(socket, &mut io);
        assert_eq!(
            d.machine()
                .connection_info(conn)
                .and_then(|c| c.read_through()),
            None
        );
    }

    /// Whether `socket`'s task was told to step again (and clears it).
    fn signalled(d: &Driver, socket: SocketId) -> bool {
        let signal = d.socket_signal(socket).expect("a live socket");
        let waker = Waker::from(Arc::new(CountingWaker::default()));
        signal
            .poll_wait(&mut Context::from_waker(&waker))
            .is_ready()
    }

    #[test]
    fn delegated_reading_keeps_the_socket_loop_off_until_receive_or_close() {
        let (mut d, conn, socket) = established(IoLimits::default());
        let mut io = FakeIo::default();
        let _ = d.socket_step(socket, &mut io);
        let _ = signalled(&d, socket);
        assert!(d.command(|m, _| m.connection(conn).delegate_reading()));
        assert_eq!(d.machine().socket(socket).read_capacity(), 0);
        let reads = io.reads;
        assert_eq!(
            d.socket_step(socket, &mut io),
            Step::Wait {
                read: false,
                write: false
            },
            "the loop neither reads nor waits to"
        );
        assert_eq!(io.reads, reads, "the socket is the application's to read");
        // A receive request is answered from the buffer: the loop reads again.
        d.command(|m, now| m.connection(conn).receive(now, 1, 100).unwrap());
        assert!(signalled(&d, socket), "ResumeReading wakes the loop");
        assert!(d.machine().socket(socket).read_capacity() > 0);
        let _ = d.socket_step(socket, &mut io);
        assert!(io.reads > reads);
        // Not delegated while a request waits, nor while bytes are buffered.
        assert!(!d.command(|m, _| m.connection(conn).delegate_reading()));
        for data in [&b"abc"[..], b"def"] {
            // The first answers the request; the second stays buffered.
            d.handle(Input::SocketData { socket, data });
        }
        assert!(!d.command(|m, _| m.connection(conn).delegate_reading()));
        let mut buf = [0u8; 8];
        let waker = Waker::from(Arc::new(CountingWaker::default()));
        let _ = d.poll_read(conn, &mut buf, &mut Context::from_waker(&waker));
        assert!(d.command(|m, _| m.connection(conn).delegate_reading()));
        assert_eq!(d.machine().socket(socket).read_capacity(), 0);
        // Close: the machine must see the peer's end, so the loop reads.
        let _ = signalled(&d, socket);
        d.command(|m, now| m.connection(conn).close(now));
        assert!(signalled(&d, socket));
        assert!(d.machine().socket(socket).read_capacity() > 0);
        assert!(!d.command(|m, _| m.connection(conn).delegate_reading()));
        io.eof = true;
        assert_eq!(d.socket_step(socket, &mut io), Step::Close(Close::Graceful));
    }

    #[test]
    fn a_flushing_writer_that_must_wait_hears_of_the_room_its_flush_made() {
        // A writer finds the transmit queue full, then its own flush drains
        // it: the `Writable` comes from that flush, and must wake it (it was
        // lost once, and a TLS writer then waited forever).
        let limits = IoLimits::default();
        let (mut d, conn, socket) = established(limits);
        let (counter, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut io = FakeIo::full();
        let chunk = vec![3u8; 64 << 10];
        // Earlier writes filled the queue while the socket was full; none
        // of them had to wait.
        let mut accepted = 0;
        while let Ok(n) = d.command(|m, _| m.connection(conn).write(&chunk)) {
            accepted += n;
            assert!(accepted <= 4 * limits.transmit_high_water, "never full");
        }
        let _ = d.socket_step(socket, &mut io);
        assert_eq!(io.written, 0, "the socket took nothing yet");
        let woken = counter.0.load(Ordering::SeqCst);
        io.full = false;
        assert!(
            d.poll_write_flushing(conn, &chunk, &mut cx, &mut io)
                .is_pending()
        );
        assert_eq!(io.written, accepted, "the flush wrote everything queued");
        assert!(
            counter.0.load(Ordering::SeqCst) > woken,
            "the writer was woken for the room"
        );
    }

    #[test]
    fn a_detached_close_ends_once_written_without_waiting_for_the_peer() {
        // Attached: the orderly close waits for the peer's end.
        let (mut d, conn, socket) = established(IoLimits::default());
        d.command(|m, now| m.connection(conn).close(now));
        let mut io = FakeIo::default();
        assert!(matches!(d.socket_step(socket, &mut io), Step::Wait { .. }));
        assert_eq!(
            d.machine().connection_info(conn).map(|c| c.state()),
            Some(ConnectionState::Closing)
        );
        // Detached (the handle was dropped): the socket closes gracefully
        // at once, since nothing waits to be written.
        d.command(|m, now| m.connection(conn).detach(now));
        assert_eq!(d.machine().connection_info(conn).map(|c| c.state()), None);
        assert_eq!(d.socket_step(socket, &mut io), Step::Close(Close::Graceful));

        // With bytes the socket has not taken yet, it waits for them.
        let (mut d, conn, socket) = established(IoLimits::default());
        let waker = Waker::from(Arc::new(CountingWaker::default()));
        let mut cx = Context::from_waker(&waker);
        let mut io = FakeIo {
            full: true,
            ..FakeIo::default()
        };
        let mut message = Some(Message::new(vec![7u8; 100]));
        assert!(d.poll_send(conn, &mut message, &mut cx).is_ready());
        d.command(|m, now| {
            m.connection(conn).close(now);
            m.connection(conn).detach(now);
        });
        assert!(matches!(
            d.socket_step(socket, &mut io),
            Step::Wait { write: true, .. }
        ));
        assert_eq!(
            d.machine().connection_info(conn).map(|c| c.state()),
            Some(ConnectionState::Closing)
        );
        io.full = false;
        assert_eq!(d.socket_step(socket, &mut io), Step::Close(Close::Graceful));
        assert_eq!(io.written, 100, "every byte before the close");
    }

    #[test]
    fn a_reader_waiting_for_data_is_woken_by_an_end_without_data() {
        let (mut d, conn, socket) = established(IoLimits::default());
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut buf = [0u8; 16];
        assert!(d.poll_read(conn, &mut buf, &mut cx).is_pending());
        let mut io = FakeIo::default();
        let _ = d.socket_step(socket, &mut io);
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);
        // The peer closes without sending anything.
        io.eof = true;
        let _ = d.socket_step(socket, &mut io);
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "reader woken");
        assert!(matches!(
            d.poll_read(conn, &mut buf, &mut cx),
            Poll::Ready(Ok(0))
        ));
    }

    #[test]
    fn poll_send_keeps_the_message_while_the_queue_is_full() {
        let limits = IoLimits {
            max_queued_bytes: 64 << 10,
            transmit_high_water: 16 << 10,
            ..IoLimits::default()
        };
        let (mut d, conn, socket) = established(limits);
        let (counter, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut io = FakeIo::full();
        let mut sent = 0;
        let pending = loop {
            let mut message = Some(Message::new(vec![7u8; 8 << 10]));
            match d.poll_send(conn, &mut message, &mut cx) {
                Poll::Ready(Ok(_)) => sent += 1,
                Poll::Ready(Err(e)) => panic!("{e}"),
                Poll::Pending => break message,
            }
            let _ = d.socket_step(socket, &mut io);
            assert!(sent < 100, "back-pressure never came");
        };
        assert!(
            pending.is_some(),
            "the refused message stays with the caller"
        );
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);
        // The peer reads: the queue drains and the waiting sender is woken.
        io.full = false;
        for _ in 0..10 {
            let _ = d.socket_step(socket, &mut io);
        }
        assert!(counter.0.load(Ordering::SeqCst) >= 1, "writer woken");
        let mut message = pending;
        assert!(matches!(
            d.poll_send(conn, &mut message, &mut cx),
            Poll::Ready(Ok(_))
        ));
        assert!(message.is_none());
        let _ = d.socket_step(socket, &mut io);
        // No framer: every byte of every accepted message reached the peer.
        assert_eq!(io.written, (sent + 1) * (8 << 10));
        // A refusal that waiting cannot cure is final and consumes it.
        d.command(|m, now| m.connection(conn).close(now));
        let mut message = Some(Message::new(vec![1u8]));
        assert_eq!(
            d.poll_send(conn, &mut message, &mut cx),
            Poll::Ready(Err(SendError::NotOpen))
        );
        assert!(message.is_none());
    }
}
