//! The runtime half of the adapter: the tasks that perform the core's work
//! on tokio. They hold no policy: each opens what the machine asked for with
//! `taps_core::sys`, reports what happened, and does whatever the driver's
//! [`Step`] says next.
//!
//! - a **socket task** per TCP socket: connect (non-blocking, then
//!   `connect_result` once writable), then loop: one
//!   [`Driver::socket_step`](taps_core::sys::driver::Driver::socket_step),
//!   then wait for the readiness it asks for or the socket's signal; on
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
//! Sockets are made by `taps_core::sys::socket` (socket2) and handed to
//! tokio's reactor as `TcpStream`, `TcpListener` and `UdpSocket`, whose
//! `try_read`/`try_write`/`try_io` clear readiness only under the readiness
//! they observed, so an edge that arrives between a `WouldBlock` and the
//! clearing is never lost. The path monitor's netlink socket goes through
//! [`AsyncFd`].

use std::future::poll_fn;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use socket2::{SockRef, Socket};
use taps_core::dns::DnsTransport;
use taps_core::id::{DnsTxnId, ListenerId, SocketId};
use taps_core::machine::Input;
use taps_core::sys::driver::{Close, NonBlockingIo, Signal, Step, Work};
use taps_core::sys::monitor::{POLL_INTERVAL, PathMonitor};
use taps_core::sys::socket::{
    ConnectProgress, ListenOptions, TcpOptions, connect_result, failure_reason, open_dns_tcp,
    open_dns_udp, open_listener, open_tcp,
};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};

use crate::shared::{Shared, Start};

/// Largest DNS message (RFC 1035 §4.2.1 over UDP with EDNS, and the TCP
/// length prefix's limit).
const DNS_BUF: usize = 65_535;

/// Starts the task for one piece of work.
pub(crate) fn spawn(shared: &Arc<Shared>, start: Start) {
    let s = shared.clone();
    match start {
        Start::Tcp(
            Work::OpenTcp {
                socket,
                remote,
                interface,
                local,
                fast_open,
            },
            signal,
        ) => {
            let opts = TcpOptions {
                bind_interface: interface,
                local,
                fast_open,
                ..TcpOptions::default()
            };
            shared
                .handle
                .spawn(connect_task(s, socket, signal, remote, opts));
        }
        Start::Dns(
            Work::DnsOpen {
                txn,
                server,
                transport,
            },
            signal,
        ) => {
            shared
                .handle
                .spawn(dns_task(s, txn, signal, server, transport));
        }
        Start::Listen(
            Work::Listen {
                listener,
                local,
                v6_only,
            },
            stop,
        ) => {
            shared
                .handle
                .spawn(listen_task(s, listener, stop, local, v6_only));
        }
        // A Start is made with the Work of its own kind.
        Start::Tcp(..) | Start::Dns(..) | Start::Listen(..) => {}
    }
}

/// A tokio socket as [`NonBlockingIo`]. tokio's `try_read`/`try_write`
/// clear the socket's readiness when they meet `WouldBlock`, under the
/// readiness they observed, so no edge is lost.
struct StreamIo<'a>(&'a TcpStream);

impl NonBlockingIo for StreamIo<'_> {
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        SockRef::from(self.0).shutdown(Shutdown::Write)
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
        let step = shared.lock().driver.socket_step(id, &mut NoIo);
        match step {
            Step::Close(_) => return,
            Step::Wait { .. } => signal.wait().await,
        }
    }
}

/// A socket2 socket handed to tokio's reactor.
fn register(socket: Socket) -> io::Result<TcpStream> {
    TcpStream::from_std(std::net::TcpStream::from(socket))
}

/// Opens and connects one attempt's socket, then runs it.
async fn connect_task(
    shared: Arc<Shared>,
    id: SocketId,
    signal: Arc<Signal>,
    remote: SocketAddr,
    opts: TcpOptions,
) {
    let opened = open_tcp(remote, &opts).and_then(|o| Ok((o.connect_started, register(o.socket)?)));
    let (started, stream) = match opened {
        Ok(o) => o,
        Err(e) => {
            shared.lock().driver.connected(id, Err(failure_reason(&e)));
            return settle(shared, id, signal).await;
        }
    };
    if started == ConnectProgress::Connected {
        shared.lock().driver.connected(id, Ok(()));
        return run_socket(shared, id, signal, stream).await;
    }
    if started == ConnectProgress::Deferred {
        // TCP Fast Open with a cookie: the SYN leaves with the first write,
        // so the early data must be written before waiting.
        let step = shared.lock().driver.socket_step(id, &mut StreamIo(&stream));
        if let Step::Close(how) = step {
            return close(stream, how);
        }
    }
    loop {
        let signalled = poll_fn(|cx| {
            if signal.poll_wait(cx).is_ready() {
                Poll::Ready(true)
            } else if stream.poll_write_ready(cx).is_ready() {
                Poll::Ready(false)
            } else {
                Poll::Pending
            }
        })
        .await;
        if signalled {
            // The attempt may have been cancelled (it lost the race).
            let step = shared.lock().driver.socket_step(id, &mut StreamIo(&stream));
            if let Step::Close(how) = step {
                return close(stream, how);
            }
            continue;
        }
        // Inside try_io, so that "still in progress" clears the readiness
        // it was woken by (a spurious wake-up, or Fast Open waiting).
        let progress = stream.try_io(Interest::WRITABLE, || {
            match connect_result(&SockRef::from(&stream))? {
                ConnectProgress::Connected => Ok(()),
                _ => Err(io::ErrorKind::WouldBlock.into()),
            }
        });
        match progress {
            Ok(()) => {
                shared.lock().driver.connected(id, Ok(()));
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                shared.lock().driver.connected(id, Err(failure_reason(&e)));
                break;
            }
        }
    }
    run_socket(shared, id, signal, stream).await
}

/// The life of a connected (or accepted) socket: a driver step, then wait
/// for what it asks for, until it says close.
pub(crate) async fn run_socket(
    shared: Arc<Shared>,
    id: SocketId,
    signal: Arc<Signal>,
    stream: TcpStream,
) {
    loop {
        let step = shared.lock().driver.socket_step(id, &mut StreamIo(&stream));
        match step {
            Step::Close(how) => return close(stream, how),
            Step::Wait { read, write } => {
                poll_fn(|cx| {
                    if signal.poll_wait(cx).is_ready()
                        || (read && stream.poll_read_ready(cx).is_ready())
                        || (write && stream.poll_write_ready(cx).is_ready())
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

fn close(stream: TcpStream, how: Close) {
    if how == Close::Abort {
        // SO_LINGER 0: close(2) sends RST and drops unsent data (socket(7)).
        let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    }
    drop(stream);
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
        shared
            .lock()
            .driver
            .handle(Input::DnsTransportFailed { txn });
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
    let socket = tokio::net::UdpSocket::from_std(open_dns_udp(server)?)?;
    let mut buf = vec![0u8; DNS_BUF];
    loop {
        let (message, live) = shared.lock().driver.dns_outbox(txn);
        if !live {
            return Ok(());
        }
        if let Some(message) = message {
            socket.send(&message).await?;
            continue;
        }
        tokio::select! {
            () = signal.wait() => {}
            received = socket.recv(&mut buf) => {
                // The socket is connected: the kernel only passes datagrams
                // from the server, so `from` is the server.
                let n = received?;
                shared.lock().driver.handle(Input::DnsDatagram {
                    txn,
                    from: server,
                    payload: &buf[..n],
                });
            }
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
    let mut stream = register(opened.socket)?;
    if started != ConnectProgress::Connected {
        loop {
            stream.writable().await?;
            let progress = stream.try_io(Interest::WRITABLE, || {
                match connect_result(&SockRef::from(&stream))? {
                    ConnectProgress::Connected => Ok(()),
                    _ => Err(io::ErrorKind::WouldBlock.into()),
                }
            });
            match progress {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
    let mut buf = vec![0u8; DNS_BUF];
    loop {
        let (message, live) = shared.lock().driver.dns_outbox(txn);
        if !live {
            return Ok(());
        }
        if let Some(message) = message {
            stream.write_all(&message).await?;
            continue;
        }
        let n = tokio::select! {
            () = signal.wait() => continue,
            n = stream.read(&mut buf) => n?,
        };
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        shared.lock().driver.handle(Input::DnsStreamData {
            txn,
            data: &buf[..n],
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
        Ok((TcpListener::from_std(s.into())?, bound))
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
        tokio::select! {
            () = stop.wait() => {}
            accepted = socket.accept() => match accepted {
                Ok((stream, remote)) => accept_one(&shared, listener, stream, remote),
                Err(e) => {
                    // Out of descriptors or memory: the connection stays in
                    // the backlog, and retrying at once would spin.
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                    ) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    }
}

fn accept_one(shared: &Arc<Shared>, listener: ListenerId, stream: TcpStream, remote: SocketAddr) {
    // The core hands whole messages and TLS records to the socket and wants
    // them out now, as for outgoing sockets (TcpOptions::nodelay).
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let accepted = shared.lock().driver.accept(listener, remote);
    // Refused (limit reached, stopped): dropping the socket closes it.
    if let Some((id, signal)) = accepted {
        shared
            .handle
            .spawn(run_socket(shared.clone(), id, signal, stream));
    }
}

/// Sleeps until the machine's next deadline (or until it moves earlier) and
/// runs its timers. Holds only a weak reference while it sleeps, so a
/// dropped `Taps` is not kept alive by its own timer.
pub(crate) async fn timer_task(weak: Weak<Shared>, signal: Arc<Signal>) {
    loop {
        let deadline = match weak.upgrade() {
            Some(shared) => shared.lock().driver.deadline(),
            None => return,
        };
        match deadline {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {
                        match weak.upgrade() {
                            Some(shared) => shared.lock().driver.on_timer(),
                            None => return,
                        }
                    }
                    () = signal.wait() => {}
                }
            }
            None => signal.wait().await,
        }
    }
}

/// Feeds interface changes to the machine until the `Taps` goes.
pub(crate) async fn monitor_task(weak: Weak<Shared>, monitor: PathMonitor, stop: Arc<Signal>) {
    let report = |list| match weak.upgrade() {
        Some(shared) => {
            shared.lock().driver.handle(Input::InterfacesChanged(list));
            true
        }
        None => false,
    };
    let mut monitor = if monitor.is_polling() {
        Err(monitor)
    } else {
        // Registration refused: poll the same monitor instead (its netlink
        // socket is non-blocking, so polling drains it).
        // `AsyncFd::try_new` is deprecated because it cannot check that the
        // descriptor stays open and unchanged while registered; the monitor
        // owns its netlink socket and never replaces or closes it while the
        // AsyncFd holds it, which is the requirement of the replacement
        // (`unsafe fn register`, out of reach in this unsafe-free crate).
        #[allow(deprecated)]
        AsyncFd::try_new(monitor).map_err(|e| e.into_parts().0)
    };
    loop {
        match &mut monitor {
            Ok(fd) => {
                tokio::select! {
                    () = stop.wait() => return,
                    guard = fd.readable_mut() => {
                        let Ok(mut guard) = guard else { return };
                        let change = guard.get_inner_mut().poll_change();
                        guard.clear_ready();
                        if let Ok(Some(list)) = change
                            && !report(list)
                        {
                            return;
                        }
                    }
                }
            }
            Err(polling) => {
                tokio::select! {
                    () = stop.wait() => return,
                    () = tokio::time::sleep(POLL_INTERVAL) => {
                        if let Ok(Some(list)) = polling.poll_change()
                            && !report(list)
                        {
                            return;
                        }
                    }
                }
            }
        }
    }
}
