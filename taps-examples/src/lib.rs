//! taps-core in an event loop of your own: the reference for embedders.
//!
//! This crate drives the sans-IO [`Machine`] with real sockets from
//! `taps-sys` and readiness from [mio](https://docs.rs/mio) (epoll on
//! Linux), on one thread, with nothing async. [`EventLoop`] is the whole
//! loop; the `mio_client` and `mio_server` binaries are an application on
//! top of it (a line client, and an echo server), with TLS when asked.
//!
//! ```sh
//! cargo run -p taps-examples --bin mio_server -- --once 127.0.0.1:7000
//! cargo run -p taps-examples --bin mio_client -- localhost:7000 hello
//! ```
//!
//! # The loop
//!
//! The core contract (`ARCHITECTURE.md`, "The core contract") has four
//! calls, and every embedding is the same four steps around them:
//!
//! 1. **Feed inputs.** What the world did becomes an [`Input`]:
//!    `SocketConnected` when a connect finishes, `SocketData` and
//!    `SocketEof` for what a socket read, `Transmitted` for what it wrote,
//!    `DnsDatagram` for an answer, `InterfacesChanged` from the path
//!    monitor, `SocketFailed` and friends for errors. Every input of one
//!    wake-up is reported before the next step, with one `now`: the machine
//!    decides the answers of one instant together (RFC 6724 sorting of A
//!    and AAAA answers that arrived together, HEv3 §4), the way
//!    [`EventLoop::turn`] does.
//! 2. **Drain `poll`.** After any call into the machine, take every
//!    [`Output`] until `poll` says `None` ([`EventLoop::drain`]), and
//!    perform each: open a socket, send a DNS query, write, shut down,
//!    close, listen; events go to the application. Performing an output
//!    can produce inputs (a connect that finished at once, a send that
//!    failed), so draining repeats until nothing is left.
//! 3. **Perform** with `taps-sys`: [`taps_sys::socket::open_tcp`] for the
//!    attempts the race asks for (bound to the path's interface where it
//!    must be), [`taps_sys::socket::open_dns_udp`] and `open_dns_tcp` for
//!    the resolver's queries, [`taps_sys::socket::open_listener`] for
//!    listeners, [`taps_sys::socket::failure_reason`] to tell the machine
//!    why something failed. The machine decides, this loop only carries
//!    out.
//! 4. **Sleep** in `mio::Poll::poll` until a socket is ready or
//!    [`Machine::poll_timeout`] comes, whichever is first; then call
//!    [`Machine::handle_timeout`] if the deadline passed, and start again.
//!
//! # Readiness is edge-triggered
//!
//! mio reports a socket once when it *becomes* readable or writable.
//! So this loop always reads until `WouldBlock` (or until the machine has
//! no room: `read_capacity` 0, after which `Output::ResumeReading` says to
//! try again), writes until `WouldBlock` or until the machine has nothing
//! more, and, when an output gives a socket new work (`Transmit`,
//! `ResumeReading`, `ShutdownWrite`), tries it at once instead of waiting
//! for an event that may never come. Every socket is registered once for
//! both directions; an event for a direction with nothing to do costs one
//! `WouldBlock`.
//!
//! # Not here
//!
//! What a production embedding adds, and the async layer (`taps-io`) has:
//! TCP Fast Open's deferred connect, the speed paths (plain pass-through
//! and TLS checkout, `ARCHITECTURE.md` "The speed paths"), the kernel's
//! TCP metrics (`taps_sys::tcp_metrics`, reported as `Input::KernelRtts`),
//! and the history file. None of them changes the shape of the loop.

#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use socket2::Socket;
use taps_core::dns::{DnsAction, DnsSend, DnsTransport};
use taps_core::{
    DnsTxnId, Event, IdMap, Input, Instant, ListenerId, Machine, Output, SocketId, TcpSocketOptions,
};
use taps_sys::monitor::{POLL_INTERVAL, PathMonitor};
use taps_sys::socket::{
    ConnectProgress, ListenOptions, TcpOptions, connect_result, failure_reason, interface_to_bind,
    open_dns_tcp, open_dns_udp, open_listener, open_tcp,
};

/// How much one read takes from a socket.
const READ_CHUNK: usize = 64 * 1024;
/// mio events taken per wake-up; more wait for the next one.
const EVENTS: usize = 256;

/// What a mio token stands for: the key of [`EventLoop::sources`].
enum Source {
    /// A TCP socket the machine knows: an attempt, a winner, an accepted
    /// connection.
    Tcp(SocketId),
    /// A DNS transaction's socket.
    Dns(DnsTxnId),
    /// One listening socket of a listener.
    Listener(ListenerId),
    /// The path monitor's netlink socket.
    Monitor,
    /// A socket the machine closed with bytes it had not yet written: the
    /// machine's id is gone (and may be reused), so the rest lives here
    /// until it is out, then the socket closes (FIN).
    Closing { socket: Socket, rest: Vec<u8> },
}

/// A TCP socket the machine asked for, or a listener accepted.
struct Tcp {
    socket: Socket,
    token: Token,
    /// The connect has not finished: writability will say when.
    connecting: bool,
    /// The machine asked to shut the write side once its bytes are out.
    shutdown_wanted: bool,
    /// The peer's FIN was read and reported.
    eof: bool,
}

/// A DNS transaction's socket.
enum Dns {
    /// One datagram each way; `open_dns_udp` connects it to the server, so
    /// the kernel drops datagrams from anyone else.
    Udp { socket: UdpSocket, token: Token },
    /// DNS over TCP after a truncated answer (RFC 7766); the machine's
    /// payloads carry their length prefixes.
    Tcp {
        socket: Socket,
        token: Token,
        connecting: bool,
        outbox: Vec<u8>,
    },
}

impl Dns {
    fn token(&self) -> Token {
        match self {
            Dns::Udp { token, .. } | Dns::Tcp { token, .. } => *token,
        }
    }

    fn fd(&self) -> RawFd {
        match self {
            Dns::Udp { socket, .. } => socket.as_raw_fd(),
            Dns::Tcp { socket, .. } => socket.as_raw_fd(),
        }
    }
}

/// A listener's sockets and the addresses they are bound to.
#[derive(Default)]
struct Listening {
    sockets: Vec<(Socket, Token)>,
    bound: Vec<SocketAddr>,
    /// Why opening a socket failed, for the application's message.
    error: Option<String>,
}

/// One taps-core [`Machine`] driven by mio: see the crate docs.
pub struct EventLoop {
    machine: Machine,
    /// The core's time zero: the core has its own `Instant` and never
    /// reads a clock, so the embedder maps the OS's monotonic clock onto
    /// it.
    origin: std::time::Instant,
    poll: Poll,
    events: Events,
    sources: Slab<Source>,
    tcp: IdMap<SocketId, Tcp>,
    dns: IdMap<DnsTxnId, Dns>,
    listeners: IdMap<ListenerId, Listening>,
    monitor: PathMonitor,
    /// When a polling monitor (no netlink) is next due.
    monitor_due: Option<std::time::Instant>,
    /// Events for the application, in order.
    app: VecDeque<Event>,
    /// Sockets an output gave work to: serviced before sleeping, since an
    /// edge-triggered poll would not report them again.
    touched: Vec<SocketId>,
    /// Tokens that were ready in this wake-up (kept to reuse its memory).
    ready: Vec<Token>,
    buf: Box<[u8]>,
}

impl EventLoop {
    /// The machine with this system's configuration (resolv.conf, the
    /// hosts file, the TLS environment, a fresh seed: [`taps_sys::system_config`]),
    /// the path monitor registered, and the first interface list fed in:
    /// interfaces are an input, not configuration.
    pub fn new() -> io::Result<EventLoop> {
        EventLoop::with_config(taps_sys::system_config()?)
    }

    /// [`new`](Self::new) with a configuration of the application's own:
    /// the core's `Config` is plain data, so an embedder starts from
    /// [`taps_sys::system_config`] and changes what it needs (other DNS
    /// servers, race settings, limits).
    pub fn with_config(config: taps_core::Config) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let monitor = PathMonitor::new()?;
        let mut sources = Slab::new();
        let token = Token(sources.insert(Source::Monitor));
        poll.registry().register(
            &mut SourceFd(&monitor.as_raw_fd()),
            token,
            Interest::READABLE,
        )?;
        let monitor_due = monitor
            .is_polling()
            .then(|| std::time::Instant::now() + POLL_INTERVAL);
        let interfaces = monitor.interfaces().to_vec();
        let mut lp = EventLoop {
            machine: Machine::new(config),
            origin: std::time::Instant::now(),
            poll,
            events: Events::with_capacity(EVENTS),
            sources,
            tcp: IdMap::default(),
            dns: IdMap::default(),
            listeners: IdMap::default(),
            monitor,
            monitor_due,
            app: VecDeque::new(),
            touched: Vec::new(),
            ready: Vec::new(),
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
        };
        lp.handle(Input::InterfacesChanged(interfaces));
        Ok(lp)
    }

    /// Now, on the core's clock.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// Runs one call into the machine (`initiate`, `listen`, a
    /// connection's `write` or `close` ...) and then drains it: the one
    /// way the application touches the machine, so no call can forget to
    /// drain (taps-io's driver does the same).
    pub fn with_machine<R>(&mut self, f: impl FnOnce(&mut Machine, Instant) -> R) -> R {
        let now = self.now();
        let result = f(&mut self.machine, now);
        self.drain();
        result
    }

    /// The machine, to read from (`connection_info`, `interfaces`).
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// The next event for the application, if one waits.
    pub fn next_event(&mut self) -> Option<Event> {
        self.app.pop_front()
    }

    /// Where a listener's sockets are bound (port 0 resolved), once its
    /// `Listen` outputs were performed; and why opening one failed.
    pub fn listening(&self, listener: ListenerId) -> (Vec<SocketAddr>, Option<String>) {
        match self.listeners.get(&listener) {
            Some(l) => (l.bound.clone(), l.error.clone()),
            None => (Vec::new(), None),
        }
    }

    /// Reports one input and drains.
    fn handle(&mut self, input: Input<'_>) {
        let now = self.now();
        self.machine.handle(now, input);
        self.drain();
    }

    /// Step 4 then 1 of the crate docs: sleeps until a socket is ready or
    /// the machine's deadline, reports everything that happened as inputs
    /// of one instant, runs due timers, and drains.
    ///
    /// `limit` caps the sleep (the application's own deadline, if any).
    pub fn turn(&mut self, limit: Option<Duration>) -> io::Result<()> {
        let timeout = self.timeout(limit);
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            // A signal: nothing happened; the caller's loop comes back.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        self.ready.clear();
        self.ready.extend(self.events.iter().map(|e| e.token()));
        let now = self.now();
        let ready = std::mem::take(&mut self.ready);
        for &token in &ready {
            self.service(token, now);
        }
        self.ready = ready;
        if self
            .monitor_due
            .is_some_and(|due| due <= std::time::Instant::now())
        {
            self.monitor_due = Some(std::time::Instant::now() + POLL_INTERVAL);
            self.check_monitor(now);
        }
        // Early calls are harmless, but a due timer must run even when a
        // socket woke the loop first.
        if self.machine.poll_timeout().is_some_and(|t| t <= now) {
            self.machine.handle_timeout(now);
        }
        self.drain();
        Ok(())
    }

    /// How long `turn` may sleep: until the machine's next deadline (rounded
    /// up to a whole millisecond, as epoll counts: waking a hair early would
    /// only spin), a polling monitor's next look, or `limit`.
    fn timeout(&self, limit: Option<Duration>) -> Option<Duration> {
        let now = self.now();
        let machine = self.machine.poll_timeout().map(|t| {
            let left = t.saturating_duration_since(now);
            Duration::from_millis(
                u64::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u64::MAX),
            )
        });
        let monitor = self
            .monitor_due
            .map(|due| due.saturating_duration_since(std::time::Instant::now()));
        [machine, monitor, limit].into_iter().flatten().min()
    }

    /// Reports what one ready source has to say. No drain here: the wake-up
    /// drains once after every source spoke.
    fn service(&mut self, token: Token, now: Instant) {
        match self.sources.get(token.0) {
            Some(Source::Tcp(id)) => {
                let id = *id;
                self.tcp_io(id, now);
            }
            Some(Source::Dns(txn)) => {
                let txn = *txn;
                self.dns_io(txn, now);
            }
            Some(Source::Listener(listener)) => {
                let listener = *listener;
                self.accept(listener, token, now);
            }
            Some(Source::Monitor) => self.check_monitor(now),
            Some(Source::Closing { .. }) => self.closing_io(token),
            None => {}
        }
    }

    /// Step 2 and 3: performs every output, and services the sockets they
    /// gave work to, until the machine has nothing more.
    pub fn drain(&mut self) {
        loop {
            while let Some(output) = self.machine.poll() {
                self.perform(output);
            }
            if self.touched.is_empty() {
                return;
            }
            let now = self.now();
            let touched = std::mem::take(&mut self.touched);
            for &id in &touched {
                self.tcp_io(id, now);
            }
            self.touched = touched;
            self.touched.clear();
        }
    }

    fn perform(&mut self, output: Output) {
        match output {
            Output::Dns(DnsAction::Send(send)) => self.send_dns(send),
            Output::Dns(DnsAction::Release(txn)) => {
                if let Some(dns) = self.dns.remove(&txn) {
                    self.forget(dns.token(), dns.fd());
                }
            }
            Output::OpenTcp {
                socket,
                remote,
                interface,
                local,
                // Not here: a deferred Fast Open connect (see the crate docs).
                fast_open: _,
                options,
            } => self.open_tcp(socket, remote, interface, local, options),
            Output::Transmit { socket } | Output::ResumeReading { socket } => {
                self.touched.push(socket)
            }
            Output::ShutdownWrite { socket } => {
                if let Some(tcp) = self.tcp.get_mut(&socket) {
                    tcp.shutdown_wanted = true;
                    self.touched.push(socket);
                }
            }
            Output::CloseSocket { socket } => self.close(socket),
            Output::AbortSocket { socket } => {
                if let Some(tcp) = self.tcp.remove(&socket) {
                    // SO_LINGER 0: close(2) sends a reset.
                    let _ = tcp.socket.set_linger(Some(Duration::ZERO));
                    self.forget(tcp.token, tcp.socket.as_raw_fd());
                }
            }
            Output::Listen {
                listener,
                local,
                v6_only,
            } => self.listen(listener, local, v6_only),
            Output::StopListening { listener } => {
                if let Some(l) = self.listeners.get_mut(&listener) {
                    for (socket, token) in std::mem::take(&mut l.sockets) {
                        let _ = self
                            .poll
                            .registry()
                            .deregister(&mut SourceFd(&socket.as_raw_fd()));
                        self.sources.try_remove(token.0);
                    }
                }
            }
            Output::Event(event) => self.app.push_back(event),
            // A kind of work a newer core may ask for: nothing is opened, so
            // nothing answers, and the machine's timers fail what waits.
            _ => {}
        }
    }

    /// Registers `fd` for both directions under a new token for `source`.
    fn register(&mut self, fd: RawFd, source: Source) -> io::Result<Token> {
        let token = Token(self.sources.insert(source));
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut SourceFd(&fd), token, interest)
        {
            self.sources.remove(token.0);
            return Err(e);
        }
        Ok(token)
    }

    /// Deregisters a socket about to be dropped (dropping closes it) and
    /// frees its token.
    fn forget(&mut self, token: Token, fd: RawFd) {
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        self.sources.try_remove(token.0);
    }

    fn open_tcp(
        &mut self,
        socket: SocketId,
        remote: SocketAddr,
        interface: Option<u32>,
        local: Option<SocketAddr>,
        options: TcpSocketOptions,
    ) {
        // The path's interface: bound by name where routing alone would not
        // take it there (taps-sys decides which, for taps-io too).
        let opts = TcpOptions {
            bind_interface: interface_to_bind(self.machine.interfaces(), interface, remote.ip()),
            local,
            options,
            ..TcpOptions::default()
        };
        let now = self.now();
        let opened = open_tcp(remote, &opts).and_then(|opened| {
            let token = self.register(opened.socket.as_raw_fd(), Source::Tcp(socket))?;
            Ok((opened, token))
        });
        match opened {
            Ok((opened, token)) => {
                // Keep-alive and the user timeout: the machine reads back
                // only what the socket really has.
                if !options.is_plain() {
                    self.machine.handle(
                        now,
                        Input::SocketOptionsApplied {
                            socket,
                            applied: opened.applied,
                        },
                    );
                }
                let connecting = opened.connect_started != ConnectProgress::Connected;
                self.tcp.insert(
                    socket,
                    Tcp {
                        socket: opened.socket,
                        token,
                        connecting,
                        shutdown_wanted: false,
                        eof: false,
                    },
                );
                if !connecting {
                    // Loopback connects usually finish inside connect(2).
                    self.machine.handle(now, Input::SocketConnected { socket });
                }
            }
            Err(e) => self.machine.handle(
                now,
                Input::SocketFailed {
                    socket,
                    reason: failure_reason(&e),
                },
            ),
        }
    }

    /// Everything a TCP socket can do now: finish its connect, write what
    /// the machine has, shut down when asked, read what the machine has
    /// room for. Each step runs until `WouldBlock` (edge-triggered).
    fn tcp_io(&mut self, id: SocketId, now: Instant) {
        let Some(tcp) = self.tcp.get_mut(&id) else {
            return;
        };
        if tcp.connecting {
            match connect_result(&tcp.socket, false) {
                Ok(ConnectProgress::Connected) => {
                    tcp.connecting = false;
                    self.machine
                        .handle(now, Input::SocketConnected { socket: id });
                }
                Ok(_) => return,
                Err(e) => return self.tcp_failed(id, &e, now),
            }
        }
        loop {
            let Some(tcp) = self.tcp.get(&id) else { return };
            let data = self.machine.socket(id).transmit_data();
            if data.is_empty() {
                break;
            }
            match (&tcp.socket).write(data) {
                Ok(n) => self
                    .machine
                    .handle(now, Input::Transmitted { socket: id, len: n }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.tcp_failed(id, &e, now),
            }
        }
        if let Some(tcp) = self.tcp.get_mut(&id)
            && tcp.shutdown_wanted
            && self.machine.socket(id).transmit_data().is_empty()
        {
            tcp.shutdown_wanted = false;
            let _ = tcp.socket.shutdown(Shutdown::Write);
        }
        loop {
            // The machine's room bounds what one wake-up reads: a fast peer
            // cannot make this loop spin or the machine buffer without end.
            let capacity = self.machine.socket(id).read_capacity().min(self.buf.len());
            let Some(tcp) = self.tcp.get_mut(&id) else {
                return;
            };
            if capacity == 0 || tcp.eof {
                return;
            }
            match (&tcp.socket).read(&mut self.buf[..capacity]) {
                Ok(0) => {
                    tcp.eof = true;
                    self.machine.handle(now, Input::SocketEof { socket: id });
                    return;
                }
                Ok(n) => {
                    let data = &self.buf[..n];
                    self.machine
                        .handle(now, Input::SocketData { socket: id, data });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.tcp_failed(id, &e, now),
            }
        }
    }

    fn tcp_failed(&mut self, id: SocketId, e: &io::Error, now: Instant) {
        if let Some(tcp) = self.tcp.remove(&id) {
            self.forget(tcp.token, tcp.socket.as_raw_fd());
        }
        self.machine.handle(
            now,
            Input::SocketFailed {
                socket: id,
                reason: failure_reason(e),
            },
        );
    }

    /// `CloseSocket`: what the machine still holds goes out before FIN, so
    /// a graceful close loses nothing even when the socket's buffer is full.
    fn close(&mut self, id: SocketId) {
        let Some(tcp) = self.tcp.remove(&id) else {
            return;
        };
        let rest = self.machine.socket(id).transmit_data().to_vec();
        if rest.is_empty() {
            return self.forget(tcp.token, tcp.socket.as_raw_fd());
        }
        // The same registration carries on under the same token. (Not
        // here: a deadline for a peer that never reads again, which would
        // hold this socket.)
        self.sources[tcp.token.0] = Source::Closing {
            socket: tcp.socket,
            rest,
        };
        self.closing_io(tcp.token);
    }

    fn closing_io(&mut self, token: Token) {
        let Some(Source::Closing { socket, rest }) = self.sources.get_mut(token.0) else {
            return;
        };
        let done = loop {
            if rest.is_empty() {
                break true;
            }
            match (&*socket).write(rest) {
                Ok(n) => drop(rest.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The peer is gone: nothing more can be delivered.
                Err(_) => break true,
            }
        };
        if done {
            let fd = socket.as_raw_fd();
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            self.sources.remove(token.0);
        }
    }

    fn send_dns(&mut self, send: DnsSend) {
        let DnsSend {
            txn,
            server,
            transport,
            payload,
        } = send;
        let failed = match self.dns.get_mut(&txn) {
            // A retry on the same transaction: its socket exists.
            Some(Dns::Udp { socket, .. }) => socket.send(&payload).is_err(),
            Some(Dns::Tcp { outbox, .. }) => {
                outbox.extend_from_slice(&payload);
                false
            }
            None => self.open_dns(txn, server, transport, payload).is_err(),
        };
        if failed {
            // The resolver moves on to its next server or to TCP.
            if let Some(dns) = self.dns.remove(&txn) {
                self.forget(dns.token(), dns.fd());
            }
            let now = self.now();
            self.machine.handle(now, Input::DnsTransportFailed { txn });
        } else if let Some(Dns::Tcp { .. }) = self.dns.get(&txn) {
            // Writes wait for the connect; try now in case it is done.
            let now = self.now();
            self.dns_io(txn, now);
        }
    }

    fn open_dns(
        &mut self,
        txn: DnsTxnId,
        server: SocketAddr,
        transport: DnsTransport,
        payload: Vec<u8>,
    ) -> io::Result<()> {
        let dns = match transport {
            DnsTransport::Udp => {
                let socket = open_dns_udp(server)?;
                socket.send(&payload)?;
                let token = self.register(socket.as_raw_fd(), Source::Dns(txn))?;
                Dns::Udp { socket, token }
            }
            _ => {
                let opened = open_dns_tcp(server)?;
                let token = self.register(opened.socket.as_raw_fd(), Source::Dns(txn))?;
                Dns::Tcp {
                    connecting: opened.connect_started != ConnectProgress::Connected,
                    socket: opened.socket,
                    token,
                    outbox: payload,
                }
            }
        };
        self.dns.insert(txn, dns);
        Ok(())
    }

    /// A DNS socket: every datagram waiting (the machine checks id,
    /// question and source), or the TCP exchange's next steps.
    fn dns_io(&mut self, txn: DnsTxnId, now: Instant) {
        let failed = match self.dns.get_mut(&txn) {
            None => return,
            Some(Dns::Udp { socket, .. }) => loop {
                match socket.recv_from(&mut self.buf) {
                    Ok((n, from)) => {
                        let payload = &self.buf[..n];
                        self.machine
                            .handle(now, Input::DnsDatagram { txn, from, payload });
                        // An answer can release the transaction at the next
                        // drain, not before: keep reading what is queued.
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // ICMP port unreachable and the like.
                    Err(_) => break true,
                }
            },
            Some(Dns::Tcp {
                socket,
                connecting,
                outbox,
                ..
            }) => 'tcp: {
                if *connecting {
                    match connect_result(socket, false) {
                        Ok(ConnectProgress::Connected) => *connecting = false,
                        Ok(_) => break 'tcp false,
                        Err(_) => break 'tcp true,
                    }
                }
                while !outbox.is_empty() {
                    match (&*socket).write(outbox) {
                        Ok(n) => drop(outbox.drain(..n)),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 'tcp false,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break 'tcp true,
                    }
                }
                loop {
                    match (&*socket).read(&mut self.buf) {
                        // The server closed before answering in full.
                        Ok(0) => break 'tcp true,
                        Ok(n) => {
                            let data = &self.buf[..n];
                            self.machine.handle(now, Input::DnsStreamData { txn, data });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 'tcp false,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break 'tcp true,
                    }
                }
            }
        };
        if failed && let Some(dns) = self.dns.remove(&txn) {
            self.forget(dns.token(), dns.fd());
            self.machine.handle(now, Input::DnsTransportFailed { txn });
        }
    }

    fn listen(&mut self, listener: ListenerId, local: SocketAddr, v6_only: bool) {
        let opts = ListenOptions {
            v6_only: v6_only.then_some(true),
            ..ListenOptions::default()
        };
        let opened = open_listener(local, &opts).and_then(|socket| {
            let bound = socket.local_addr()?.as_socket().unwrap_or(local);
            let token = self.register(socket.as_raw_fd(), Source::Listener(listener))?;
            Ok((socket, token, bound))
        });
        let entry = self.listeners.entry(listener).or_default();
        match opened {
            Ok((socket, token, bound)) => {
                entry.sockets.push((socket, token));
                entry.bound.push(bound);
            }
            Err(e) => {
                entry.error.get_or_insert_with(|| e.to_string());
                let now = self.now();
                self.machine.handle(
                    now,
                    Input::ListenFailed {
                        listener,
                        reason: failure_reason(&e),
                    },
                );
            }
        }
    }

    /// Accepts every waiting connection of one listening socket and hands
    /// each to the machine, which answers with its socket id (or refuses:
    /// a limit, a stopped listener; then dropping the socket closes it).
    fn accept(&mut self, listener: ListenerId, token: Token, now: Instant) {
        loop {
            let Some(l) = self.listeners.get(&listener) else {
                return;
            };
            let Some((socket, _)) = l.sockets.iter().find(|(_, t)| *t == token) else {
                return;
            };
            let (stream, remote) = match socket.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock: all taken. Out of descriptors: the connection
                // waits in the backlog, and the next connection's event
                // tries again.
                Err(_) => return,
            };
            let Some(remote) = remote.as_socket() else {
                continue;
            };
            // The core hands whole messages and TLS records to the socket
            // and wants them out now (as `TcpOptions::nodelay`).
            if stream.set_nonblocking(true).is_err() || stream.set_tcp_nodelay(true).is_err() {
                continue;
            }
            let Ok(id) = self.machine.listener(listener).accept(now, remote) else {
                continue;
            };
            match self.register(stream.as_raw_fd(), Source::Tcp(id)) {
                Ok(token) => {
                    self.tcp.insert(
                        id,
                        Tcp {
                            socket: stream,
                            token,
                            // Accepted sockets are connected from the start.
                            connecting: false,
                            shutdown_wanted: false,
                            eof: false,
                        },
                    );
                    // Data may have arrived with the handshake: the
                    // registration's first event says so, but a TLS
                    // ClientHello need not wait for it.
                    self.tcp_io(id, now);
                }
                Err(e) => self.machine.handle(
                    now,
                    Input::SocketFailed {
                        socket: id,
                        reason: failure_reason(&e),
                    },
                ),
            }
        }
    }

    /// The path monitor: a changed interface list (or a new primary) is an
    /// input like any other.
    fn check_monitor(&mut self, now: Instant) {
        // An error reading netlink leaves the last list in force; the next
        // notification tries again. `poll_change` reads at most a few
        // hundred notifications per call: under edge-triggered readiness a
        // larger burst leaves the rest for the next notification (which a
        // burst that large brings soon).
        if let Ok(Some(interfaces)) = self.monitor.poll_change() {
            self.machine
                .handle(now, Input::InterfacesChanged(interfaces));
        }
    }

    /// Whether anything can still happen: a socket other than the
    /// monitor's is open, or the machine has a deadline. An application
    /// waiting for an event when this is `false` would wait forever.
    pub fn is_idle(&self) -> bool {
        self.sources.len() <= 1 && self.machine.poll_timeout().is_none() && self.touched.is_empty()
    }
}

/// Reads a PEM certificate chain and key for a TLS server (`--cert`,
/// `--key`), naming the file that is wrong.
pub fn read_identity(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<taps_core::Identity, String> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no PEM certificates", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| format!("{}: {e}", key.display()))?;
    Ok(taps_core::Identity { chain, key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::mpsc;
    use taps_core::{Preconnection, StreamError};

    /// Edge-triggered readiness says "readable" once: everything that
    /// arrived by then must be read, or it waits for an event that never
    /// comes. Here the whole reply and the FIN are queued before the loop
    /// looks, and one read takes 1 KiB, so a loop that read once per event
    /// would stall with 9 KiB unread.
    #[test]
    fn what_arrived_before_one_event_is_read_to_the_end() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (go, wait) = mpsc::channel::<()>();
        let (sent, done) = mpsc::channel::<()>();
        let reply: Vec<u8> = (0..10 * 1024).map(|i| (i % 251) as u8).collect();
        let expected = reply.clone();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            wait.recv().unwrap();
            stream.write_all(&reply).unwrap();
            drop(stream);
            sent.send(()).unwrap();
        });

        let mut lp = EventLoop::new().unwrap();
        lp.buf = vec![0; 1024].into_boxed_slice();
        let pre = Preconnection::new(addr.to_string().parse().unwrap());
        let conn = lp.with_machine(|m, now| m.initiate(now, &pre)).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let bounded = |lp: &mut EventLoop| {
            assert!(std::time::Instant::now() < deadline, "the loop stalled");
            lp.turn(Some(Duration::from_millis(50))).unwrap();
        };
        loop {
            match lp.next_event() {
                Some(Event::Ready { conn: c, .. }) if c == conn => break,
                Some(Event::EstablishmentError { error, .. }) => panic!("{error}"),
                Some(_) => {}
                None => bounded(&mut lp),
            }
        }
        // The reply and the FIN are in the socket before the loop looks
        // again (loopback delivers within the sender's write; the pause
        // only makes sure, and costs the test its strength, not its
        // result, if it is ever too short).
        go.send(()).unwrap();
        done.recv().unwrap();
        server.join().unwrap();
        std::thread::sleep(Duration::from_millis(50));

        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let ended = lp.with_machine(|m, _| {
                let mut view = m.connection(conn);
                loop {
                    match view.read(&mut buf) {
                        Ok(0) => return true,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(StreamError::WouldBlock) => return false,
                        Err(e) => panic!("read: {e}"),
                    }
                }
            });
            if ended {
                break;
            }
            while lp.next_event().is_some() {}
            bounded(&mut lp);
        }
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "the bytes came back in order");
    }
}
