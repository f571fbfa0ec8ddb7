//! The tasks that perform the core's work, over any [`Runtime`]. They hold
//! no policy: each opens what the machine asked for with
//! [`taps_sys::socket`], reports what happened, and does whatever the
//! driver's [`Step`] says next.
//!
//! - a **socket task** per TCP socket: connect (non-blocking, then
//!   `connect_result` once writable), then loop: one
//!   [`Driver::socket_step`](crate::driver::Driver::socket_step), then
//!   wait for the readiness it asks for or the socket's signal; on
//!   `Step::Close` close (an abort resets with `SO_LINGER` 0) and end;
//! - a **DNS task** per DNS transaction: a connected UDP socket from a
//!   random port, or a TCP connection after truncation; sends what the
//!   transaction's outbox holds and feeds every answer back;
//! - an **accept task** per listening socket;
//! - the **timer task** of each `Taps`: sleeps until the machine's next
//!   deadline, or until it moves earlier;
//! - the **path monitor task** of each `Taps`: netlink (or polling) changes
//!   become `InterfacesChanged` inputs.
//!
//! Every wait is a `poll_fn` over the socket's readiness and a [`Signal`],
//! so no runtime's `select!` is needed.

use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use smallvec::SmallVec;

use crate::driver::{Close, DNS_BUF, NonBlockingIo, Signal, Step, Work};
use taps_core::{DnsTxnId, Input, ListenerId, SocketId, dns::DnsTransport};
use taps_sys::monitor::{POLL_INTERVAL, PathMonitor};
use taps_sys::socket::{
    ConnectProgress, ListenOptions, TcpOptions, failure_reason, open_dns_tcp, open_dns_udp,
    open_listener, open_tcp,
};

use super::parked::Parked;
use super::shared::{Inner, Shared, StreamIo};
use super::{ReadyFd, ReadyTcp, ReadyUdp, Runtime};

/// Runs `call` under the lock, then, with the lock released, starts a
/// task for every socket, DNS transaction and listener the machine asked
/// for meanwhile: the way in for every call that may make it establish
/// (initiate, listen, a socket's or a DNS transaction's step, the timer,
/// interface changes). The work starts in the calling task, at once, with
/// no hop through a dispatcher.
pub(crate) fn act<R>(shared: &Arc<Shared>, call: impl FnOnce(&mut Inner) -> R) -> R {
    let mut guard = shared.lock_for_work();
    let result = call(&mut guard);
    let starts = take_starts(&mut guard);
    drop(guard);
    for one in starts {
        start(shared, one);
    }
    result
}

/// One piece of work with what its task needs from under the lock.
enum Start {
    Tcp(Work, Arc<Signal>),
    Dns(Work, Arc<Signal>),
    Listen(Work, Arc<Signal>),
}

/// The work the machine asked for, each piece with its signal.
fn take_starts(inner: &mut Inner) -> SmallVec<[Start; 2]> {
    let mut starts = SmallVec::new();
    while let Some(work) = inner.driver.take_work() {
        let start = match &work {
            Work::OpenTcp { socket, .. } => inner
                .driver
                .socket_signal(*socket)
                .map(|s| Start::Tcp(work, s)),
            Work::DnsOpen { txn, .. } => inner.driver.dns_signal(*txn).map(|s| Start::Dns(work, s)),
            Work::Listen { listener, .. } => {
                // One signal per listening socket: a Signal wakes one
                // waiter, and a listener may have two sockets.
                let stop = Signal::new();
                inner.listeners.get_mut(listener).map(|l| {
                    l.stops.push(stop.clone());
                    Start::Listen(work, stop)
                })
            }
        };
        // No signal: the machine already let go of it (a transaction
        // answered from an earlier one, a listener stopped at once).
        starts.extend(start);
    }
    starts
}

/// Starts the task for one piece of work.
fn start(shared: &Arc<Shared>, start: Start) {
    let s = shared.clone();
    let task: super::Task = match start {
        Start::Tcp(
            Work::OpenTcp {
                socket,
                remote,
                interface,
                local,
                fast_open,
                options,
            },
            signal,
        ) => {
            let opts = TcpOptions {
                bind_interface: interface,
                local,
                fast_open,
                options,
                ..TcpOptions::default()
            };
            let task: super::Task = match open_attempt(shared, socket, remote, &opts) {
                Some((started, stream)) => {
                    Box::pin(connect_task(s, socket, signal, started, stream))
                }
                None => Box::pin(settle(s, socket, signal)),
            };
            return start_parked(shared, socket, task);
        }
        Start::Dns(
            Work::DnsOpen {
                txn,
                server,
                transport,
            },
            signal,
        ) => Box::pin(dns_task(s, txn, signal, server, transport)),
        Start::Listen(
            Work::Listen {
                listener,
                local,
                v6_only,
            },
            stop,
        ) => Box::pin(listen_task(s, listener, stop, local, v6_only)),
        // A Start is made with the Work of its own kind.
        Start::Tcp(..) | Start::Dns(..) | Start::Listen(..) => return,
    };
    shared.runtime.spawn(task);
}

/// Opens, registers and starts connecting an attempt's socket, in the
/// task that asked for it (the syscalls do not block), so an application
/// future waiting for the connection can wait on the socket itself
/// (`ConnSide::attempts`). `None` when it failed (reported).
fn open_attempt(
    shared: &Arc<Shared>,
    socket: SocketId,
    remote: SocketAddr,
    opts: &TcpOptions,
) -> Option<(ConnectProgress, Arc<dyn ReadyTcp>)> {
    let opened = open_tcp(remote, opts).and_then(|o| {
        let stream = shared.runtime.tcp(o.socket.into())?;
        Ok((o.connect_started, o.applied, stream))
    });
    act(shared, |g| {
        let (started, applied, stream) = match opened {
            Ok(o) => o,
            Err(e) => {
                g.driver.connected(socket, Err(failure_reason(&e)));
                return None;
            }
        };
        // A keep-alive the application required and the socket refused
        // fails the attempt here; the machine's close for it reaches the
        // socket's slot like any other.
        if !opts.options.is_plain() {
            g.driver
                .handle(Input::SocketOptionsApplied { socket, applied });
        }
        g.io.insert(socket, stream.clone());
        if started == ConnectProgress::Connected {
            g.driver.connected(socket, Ok(()));
        } else if let Some(conn) = g.driver.machine().socket(socket).connection()
            && let Some(side) = g.conns.get_mut(&conn)
        {
            side.attempts.push(socket);
            side.wake.wake_all();
        }
        Some((started, stream))
    })
}

/// Looks at a connecting socket that became writable and reports how its
/// connect ended, once (the socket's task and the application's
/// `initiate` both wait on it; whoever looks first reports). `false`
/// while it is still connecting (Fast Open waiting for its first write).
/// `started` is what connect(2) said: after `InProgress`, writability
/// itself means the connect ended (no getpeername, see `connect_result`).
fn check_connect(
    g: &mut Inner,
    socket: SocketId,
    stream: &dyn ReadyTcp,
    started: ConnectProgress,
) -> bool {
    if !g.driver.awaiting_connect(socket) {
        return true;
    }
    match stream.connect_progress(started == ConnectProgress::Deferred) {
        Ok(ConnectProgress::Connected) => g.driver.connected(socket, Ok(())),
        // Fast Open waiting.
        Ok(_) => return false,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
        Err(e) => g.driver.connected(socket, Err(failure_reason(&e))),
    }
    true
}

/// Waits until `signal` is raised (`true`) or `stream` may be writable
/// (`false`).
async fn signal_or_writable(signal: &Signal, stream: &dyn ReadyTcp) -> bool {
    poll_fn(|cx| {
        if signal.poll_wait(cx).is_ready() {
            Poll::Ready(true)
        } else if stream.poll_writable(cx).is_ready() {
            Poll::Ready(false)
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Starts a socket's task parked ([`Parked`]), where `initiate` and
/// `close` can claim it.
fn start_parked(shared: &Arc<Shared>, socket: SocketId, task: super::Task) {
    let parked = Parked::new(shared.runtime.clone());
    shared.lock().socket_tasks.insert(socket, parked.clone());
    parked.run(task);
}

/// A socket in the first step after its connect ended: writes go out, no
/// read is tried (see [`run_socket`]).
struct JustConnected<'a>(&'a dyn ReadyTcp);

impl NonBlockingIo for JustConnected<'_> {
    fn try_read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        StreamIo(self.0).shutdown_write()
    }
}

/// For a socket that never opened: nothing is ever ready.
struct NoIo;

impl NonBlockingIo for NoIo {
    fn try_read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
    fn try_write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Waits until the driver lets go of a socket that has no descriptor (its
/// open or registration failed), so its slot is freed.
async fn settle(shared: Arc<Shared>, id: SocketId, signal: Arc<Signal>) {
    loop {
        match owned_step(&shared, id, &mut NoIo) {
            Step::Close(_) => return,
            Step::Wait { .. } => signal.wait().await,
        }
    }
}

/// Connects one attempt's socket (opened by [`open_attempt`]), then runs
/// it.
async fn connect_task(
    shared: Arc<Shared>,
    id: SocketId,
    signal: Arc<Signal>,
    started: ConnectProgress,
    stream: Arc<dyn ReadyTcp>,
) {
    if started == ConnectProgress::Deferred {
        // TCP Fast Open with a cookie: the SYN leaves with the first write,
        // so the early data must be written before the connect is waited
        // for. Until then the socket reads as writable; a write the
        // runtime turns away (tokio's readiness not seen yet) waits for
        // that, and is tried again, or no SYN would ever leave.
        loop {
            match owned_step(&shared, id, &mut StreamIo(&*stream)) {
                Step::Close(how) => return close(&*stream, how),
                Step::Wait { write: true, .. } => {
                    signal_or_writable(&signal, &*stream).await;
                }
                Step::Wait { write: false, .. } => break,
            }
        }
    }
    if started != ConnectProgress::Connected {
        loop {
            if signal_or_writable(&signal, &*stream).await {
                // The attempt may have been cancelled (it lost the race).
                if let Step::Close(how) = owned_step(&shared, id, &mut StreamIo(&*stream)) {
                    return close(&*stream, how);
                }
                continue;
            }
            if act(&shared, |g| check_connect(g, id, &*stream, started)) {
                break;
            }
        }
    }
    run_socket(shared, id, signal, stream, true).await
}

/// One step by the socket's own task. On `Step::Close` the socket leaves
/// the pass-through's and the claimers' reach ([`Inner::io`],
/// [`Inner::socket_tasks`]) before the task closes it.
fn owned_step(shared: &Arc<Shared>, id: SocketId, io: &mut dyn NonBlockingIo) -> Step {
    act(shared, |g| {
        let step = g.driver.socket_step(id, io);
        if matches!(step, Step::Close(_)) {
            g.io.remove(&id);
            g.socket_tasks.remove(&id);
        }
        step
    })
}

/// The life of a connected (or accepted) socket: a driver step, then wait
/// for what it asks for, until it says close. While it runs, the
/// application's stream I/O may pass through to it (`Inner::stream_writer`,
/// `Inner::stream_reader`: only while the machine has nothing of it to
/// write, and with its reading delegated); only this
/// task closes it.
///
/// The first step of a socket whose connect has just ended (`connected`)
/// tries no read: it waits for readability instead, which reports
/// whatever the peer sent meanwhile (the [`ReadyTcp`] contract). A read
/// tried there almost always finds nothing, and a connect that is then
/// dropped pays a recv(2) for it (with async-io; tokio's readiness flag
/// already spares it). An accepted socket reads at once: its peer has
/// usually spoken first.
async fn run_socket(
    shared: Arc<Shared>,
    id: SocketId,
    signal: Arc<Signal>,
    stream: Arc<dyn ReadyTcp>,
    connected: bool,
) {
    shared.lock().io.insert(id, stream.clone());
    let mut first = connected;
    loop {
        let step = if std::mem::take(&mut first) {
            owned_step(&shared, id, &mut JustConnected(&*stream))
        } else {
            owned_step(&shared, id, &mut StreamIo(&*stream))
        };
        match step {
            Step::Close(how) => return close(&*stream, how),
            Step::Wait { read, write } => {
                poll_fn(|cx| {
                    if signal.poll_wait(cx).is_ready()
                        || (read && stream.poll_readable(cx).is_ready())
                        || (write && stream.poll_writable(cx).is_ready())
                    {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
                .await
            }
        }
    }
}

fn close(stream: &dyn ReadyTcp, how: Close) {
    if how == Close::Abort {
        // SO_LINGER 0: close(2) sends RST and drops unsent data (socket(7)).
        let _ = stream.socket().set_linger(Some(Duration::ZERO));
    }
    // The caller drops the socket, which closes it.
}

/// `op` until it stops saying `WouldBlock`, waiting with `ready` between.
async fn retry<T>(
    op: impl FnMut() -> io::Result<T>,
    ready: impl Fn(&mut Context<'_>) -> Poll<io::Result<()>>,
) -> io::Result<T> {
    match retry_or_signal(None, op, ready).await {
        Some(result) => result,
        // Without a signal, only `op` or `ready` can end the wait.
        None => Err(io::ErrorKind::Interrupted.into()),
    }
}

/// As [`retry`], or `None` once `signal` is raised first.
async fn retry_or_signal<T>(
    signal: Option<&Signal>,
    mut op: impl FnMut() -> io::Result<T>,
    ready: impl Fn(&mut Context<'_>) -> Poll<io::Result<()>>,
) -> Option<io::Result<T>> {
    poll_fn(|cx| {
        if signal.is_some_and(|s| s.poll_wait(cx).is_ready()) {
            return Poll::Ready(None);
        }
        loop {
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return Poll::Ready(Some(other)),
            }
            match ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}

/// One DNS transaction: send what its outbox holds, feed back answers, end
/// when the machine releases it.
async fn dns_task(
    shared: Arc<Shared>,
    txn: DnsTxnId,
    signal: Arc<Signal>,
    server: SocketAddr,
    transport: DnsTransport,
) {
    let result = match transport {
        DnsTransport::Udp => dns_udp(&shared, txn, &signal, server).await,
        DnsTransport::Tcp => dns_tcp(&shared, txn, &signal, server).await,
    };
    if result.is_err() {
        act(&shared, |g| {
            g.driver.handle(Input::DnsTransportFailed { txn })
        });
    }
    // Released, or failed: wait for the release so nothing lingers.
    loop {
        let (_, live) = shared.lock().driver.dns_outbox(txn);
        if !live {
            return;
        }
        signal.wait().await;
    }
}

/// Ends with `Ok` when the transaction was released, `Err` when the
/// transport failed.
async fn dns_udp(
    shared: &Arc<Shared>,
    txn: DnsTxnId,
    signal: &Arc<Signal>,
    server: SocketAddr,
) -> io::Result<()> {
    let socket: Arc<dyn ReadyUdp> = Arc::from(shared.runtime.udp(open_dns_udp(server)?)?);
    shared
        .lock()
        .driver
        .dns_udp_opened(txn, socket.clone(), server);
    let mut buf = vec![0u8; DNS_BUF];
    loop {
        let (message, live) = shared.lock().driver.dns_outbox(txn);
        if !live {
            return Ok(());
        }
        if let Some(message) = message {
            retry(|| socket.try_send(&message), |cx| socket.poll_writable(cx)).await?;
            continue;
        }
        let received = retry_or_signal(
            Some(signal),
            || socket.try_recv(&mut buf),
            |cx| socket.poll_readable(cx),
        )
        .await;
        if let Some(received) = received {
            // The socket is connected: the kernel only passes datagrams
            // from the server, so `from` is the server.
            let n = received?;
            act(shared, |g| g.driver.dns_datagram(txn, server, &buf[..n]));
        }
    }
}

async fn dns_tcp(
    shared: &Arc<Shared>,
    txn: DnsTxnId,
    signal: &Arc<Signal>,
    server: SocketAddr,
) -> io::Result<()> {
    let opened = open_dns_tcp(server)?;
    let started = opened.connect_started;
    let stream = shared.runtime.tcp(opened.socket.into())?;
    if started != ConnectProgress::Connected {
        retry(
            // Tried before the first wait: confirmed.
            || match stream.connect_progress(true)? {
                ConnectProgress::Connected => Ok(()),
                _ => Err(io::ErrorKind::WouldBlock.into()),
            },
            |cx| stream.poll_writable(cx),
        )
        .await?;
    }
    let mut buf = vec![0u8; DNS_BUF];
    loop {
        let (message, live) = shared.lock().driver.dns_outbox(txn);
        if !live {
            return Ok(());
        }
        if let Some(message) = message {
            let mut rest = &message[..];
            while !rest.is_empty() {
                let n = retry(|| stream.try_write(rest), |cx| stream.poll_writable(cx)).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                rest = &rest[n..];
            }
            continue;
        }
        let Some(n) = retry_or_signal(
            Some(signal),
            || stream.try_read(&mut buf),
            |cx| stream.poll_readable(cx),
        )
        .await
        else {
            continue;
        };
        let n = n?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        act(shared, |g| {
            g.driver.handle(Input::DnsStreamData {
                txn,
                data: &buf[..n],
            })
        });
    }
}

/// One listening socket: open it, report the bound address, accept until
/// the listener stops.
async fn listen_task(
    shared: Arc<Shared>,
    listener: ListenerId,
    stop: Arc<Signal>,
    local: SocketAddr,
    v6_only: bool,
) {
    let opts = ListenOptions {
        v6_only: v6_only.then_some(true),
        ..ListenOptions::default()
    };
    let opened = open_listener(local, &opts).and_then(|s| {
        let bound = s.local_addr()?.as_socket().unwrap_or(local);
        Ok((shared.runtime.listener(s.into())?, bound))
    });
    let socket = {
        let mut g = shared.lock();
        let socket = match opened {
            Ok((socket, bound)) => {
                if let Some(side) = g.listeners.get_mut(&listener) {
                    side.bound.push(bound);
                }
                Some(socket)
            }
            Err(e) => {
                let reason = failure_reason(&e);
                g.driver.handle(Input::ListenFailed { listener, reason });
                if let Some(side) = g.listeners.get_mut(&listener) {
                    side.error.get_or_insert_with(|| e.to_string());
                }
                None
            }
        };
        if let Some(side) = g.listeners.get_mut(&listener) {
            side.opening = side.opening.saturating_sub(1);
            side.wake.wake_all();
        }
        socket
    };
    let Some(socket) = socket else { return };
    loop {
        if shared.lock().driver.listener_stopped(listener) {
            return;
        }
        let accepted = poll_fn(|cx| {
            if stop.poll_wait(cx).is_ready() {
                return Poll::Ready(None);
            }
            socket.poll_accept(cx).map(Some)
        })
        .await;
        match accepted {
            None => {}
            Some(Ok((stream, remote))) => accept_one(&shared, listener, stream, remote),
            // Out of descriptors or memory: the connection stays in the
            // backlog, and retrying at once would spin.
            Some(Err(e)) if taps_sys::socket::is_resource_exhaustion(&e) => {
                let at = std::time::Instant::now() + Duration::from_millis(50);
                shared.runtime.sleep_until(at).await;
            }
            Some(Err(_)) => {}
        }
    }
}

fn accept_one(
    shared: &Arc<Shared>,
    listener: ListenerId,
    stream: Arc<dyn ReadyTcp>,
    remote: SocketAddr,
) {
    // The core hands whole messages and TLS records to the socket and wants
    // them out now, as for outgoing sockets (TcpOptions::nodelay).
    if stream.socket().set_tcp_nodelay(true).is_err() {
        return;
    }
    let accepted = act(shared, |g| g.driver.accept(listener, remote));
    // Refused (limit reached, stopped): dropping the socket closes it.
    if let Some((id, signal)) = accepted {
        let task = run_socket(shared.clone(), id, signal, stream, false);
        start_parked(shared, id, Box::pin(task));
    }
}

/// Waits for `signal` or `other`, whichever comes first; whether the
/// signal came.
async fn signal_or<F: Future + ?Sized>(signal: &Signal, mut other: Pin<&mut F>) -> bool {
    poll_fn(|cx| {
        if signal.poll_wait(cx).is_ready() {
            Poll::Ready(true)
        } else if other.as_mut().poll(cx).is_ready() {
            Poll::Ready(false)
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Sleeps until the machine's next deadline (or until it moves earlier) and
/// runs its timers. Holds only a weak reference while it sleeps, so a
/// dropped `Taps` is not kept alive by its own timer.
pub(crate) async fn timer_task(weak: Weak<Shared>, runtime: Arc<dyn Runtime>, signal: Arc<Signal>) {
    loop {
        let deadline = match weak.upgrade() {
            Some(shared) => shared.lock().driver.deadline(),
            None => return,
        };
        match deadline {
            Some(at) => {
                let mut sleep = runtime.sleep_until(at);
                if !signal_or(&signal, sleep.as_mut()).await {
                    match weak.upgrade() {
                        Some(shared) => act(&shared, |g| g.driver.on_timer()),
                        None => return,
                    }
                }
            }
            None => signal.wait().await,
        }
    }
}

/// The reactor's readiness for the path monitor's netlink socket: a
/// duplicate of its descriptor (the same open socket), so the monitor keeps
/// its own handle to drain it. `None` for a polling monitor, or when the
/// reactor refuses it: the task then polls the same monitor (its netlink
/// socket is non-blocking, so polling drains it). Made when the `Taps` is,
/// not in the task, so the descriptors a `Taps` holds are all open once it
/// exists.
pub(crate) fn monitor_readiness(
    runtime: &dyn Runtime,
    monitor: &PathMonitor,
) -> Option<Box<dyn ReadyFd>> {
    use std::os::fd::AsFd;
    if monitor.is_polling() {
        return None;
    }
    monitor
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| runtime.readable(fd))
        .ok()
}

/// How long the kernel may take to answer the TCP metrics dump: it answers
/// from memory at once; the bound only keeps a wedged netlink from
/// holding the caller.
const KERNEL_RTTS_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(100);

/// Reads the kernel's TCP metrics (`taps_sys::tcp_metrics`) and hands them
/// to `feed`, which reports them to the machine as `Input::KernelRtts`
/// (HEv3 §6's RTT-derived Connection Attempt Delay, ARCHITECTURE.md "One
/// way in"). Done when a `Taps` starts and when the interfaces change, not
/// per connection: a race sorts its candidates as soon as DNS answers, so
/// the data must already be there, and reading per connection would cost
/// a netlink round trip on every connect. Where the kernel has no such
/// table (not Linux, or netlink forbidden), nothing is reported and the
/// delays come from the machine's own history or the configured value.
pub(crate) fn report_kernel_rtts(feed: impl FnOnce(&[taps_core::race::KernelRtt])) {
    if let Ok(entries) = taps_sys::tcp_metrics::read(KERNEL_RTTS_TIMEOUT)
        && !entries.is_empty()
    {
        feed(&entries);
    }
}

/// Feeds interface changes to the machine until the `Taps` goes.
pub(crate) async fn monitor_task(
    weak: Weak<Shared>,
    runtime: Arc<dyn Runtime>,
    mut monitor: PathMonitor,
    mut readiness: Option<Box<dyn ReadyFd>>,
    stop: Arc<Signal>,
) {
    let report = |list| match weak.upgrade() {
        Some(shared) => {
            act(&shared, |g| g.driver.handle(Input::InterfacesChanged(list)));
            // A new path: what the kernel learnt meanwhile, for the
            // delays of the races to come.
            report_kernel_rtts(|entries| {
                act(&shared, |g| g.driver.handle(Input::KernelRtts(entries)));
            });
            true
        }
        None => false,
    };
    loop {
        let woke = match &readiness {
            Some(fd) => {
                let woke = poll_fn(|cx| {
                    if stop.poll_wait(cx).is_ready() {
                        return Poll::Ready(Some(true));
                    }
                    fd.poll_readable(cx).map(|r| r.ok().map(|()| false))
                })
                .await;
                // None: the reactor gave up on it; poll from now on.
                if woke.is_none() {
                    readiness = None;
                }
                woke.unwrap_or(false)
            }
            None => {
                let mut sleep = runtime.sleep_until(std::time::Instant::now() + POLL_INTERVAL);
                signal_or(&stop, sleep.as_mut()).await
            }
        };
        if woke {
            return;
        }
        match monitor.poll_change() {
            Ok(Some(list)) => {
                if !report(list) {
                    return;
                }
            }
            Ok(None) => {}
            // A broken netlink socket: poll so changes are still seen.
            Err(_) => readiness = None,
        }
    }
}
