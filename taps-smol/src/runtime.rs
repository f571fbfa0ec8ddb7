//! The runtime half of the adapter: [`Runtime`] over async-io's reactor and
//! timers, spawning on an `async_executor::Executor`. The tasks themselves
//! (socket, DNS, accept, timer, path monitor) are `taps_io`'s.
//!
//! async-io's readiness is per wake-up: after an operation met
//! `WouldBlock`, `poll_readable`/`poll_writable` register interest and
//! report `Ready` once the reactor delivered an event since; the shared
//! tasks always try the operation first, so no event is lost.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use async_executor::Executor;
use async_io::{Async, Timer};
use socket2::SockRef;
use taps_io::{
    ConnectProgress, IoWait, ReadyFd, ReadyListener, ReadyTcp, ReadyUdp, Runtime, Task,
    connect_result,
};

/// taps-io's [`Runtime`] over async-io: tasks spawned on one
/// `async_executor::Executor`, sockets registered as `async_io::Async`,
/// timers as `async_io::Timer`. Made by [`with_executor`](crate::with_executor).
#[derive(Debug)]
pub struct SmolRuntime {
    pub(crate) executor: Arc<Executor<'static>>,
}

impl Runtime for SmolRuntime {
    fn spawn(&self, task: Task) {
        // Detached: the task runs to its end on its own.
        self.executor.spawn(task).detach();
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Task {
        Box::pin(async move {
            Timer::at(deadline).await;
        })
    }

    fn tcp(&self, socket: TcpStream) -> io::Result<Arc<dyn ReadyTcp>> {
        // Made non-blocking by taps_sys::socket (or by accept's
        // caller below); registering must not touch it again.
        Ok(Arc::new(Tcp(Async::new_nonblocking(socket)?)))
    }

    fn udp(&self, socket: UdpSocket) -> io::Result<Box<dyn ReadyUdp>> {
        Ok(Box::new(Udp(Async::new_nonblocking(socket)?)))
    }

    fn listener(&self, socket: TcpListener) -> io::Result<Box<dyn ReadyListener>> {
        Ok(Box::new(Listen(Async::new_nonblocking(socket)?)))
    }

    fn readable(&self, fd: OwnedFd) -> io::Result<Box<dyn ReadyFd>> {
        Ok(Box::new(Fd(Async::new_nonblocking(fd)?)))
    }
}

/// The executor of [`Taps::new`](crate::Taps::new): one background thread,
/// started on first use, runs every instance's tasks (as smol's own
/// global executor does), so the application's futures work under any
/// executor, `smol::block_on` included.
///
/// The thread only runs tasks; it never drives async-io's reactor (it
/// parks with `futures_lite`'s `block_on`, not async-io's). An idle
/// `async_io::block_on` takes the reactor and keeps it while it waits, so
/// this mostly idle thread would sit in epoll_wait(2) and every readiness
/// the application waits for (a connect, a close) would reach the
/// application's thread through it, one wake-up later. The application's
/// own `smol::block_on` drives the reactor while it waits, and async-io's
/// thread whenever nobody does, so the tasks here are woken all the same.
pub(crate) fn global_executor() -> io::Result<Arc<Executor<'static>>> {
    static GLOBAL: OnceLock<Result<Arc<Executor<'static>>, String>> = OnceLock::new();
    GLOBAL
        .get_or_init(|| {
            let executor = Arc::new(Executor::new());
            let runner = executor.clone();
            std::thread::Builder::new()
                .name("taps-smol".into())
                .spawn(move || {
                    futures_lite::future::block_on(runner.run(std::future::pending::<()>()))
                })
                .map(|_| executor)
                .map_err(|e| format!("start the taps-smol executor thread: {e}"))
        })
        .clone()
        .map_err(io::Error::other)
}

struct Tcp(Async<TcpStream>);

impl ReadyTcp for Tcp {
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&mut self.0.get_ref()).read(buf)
    }
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        (&mut self.0.get_ref()).write(buf)
    }
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_readable(cx)
    }
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_writable(cx)
    }
    fn wait_readable(self: Arc<Self>) -> IoWait {
        Box::pin(async move { self.0.readable().await })
    }
    fn wait_writable(self: Arc<Self>) -> IoWait {
        Box::pin(async move { self.0.writable().await })
    }
    fn connect_progress(&self, confirm: bool) -> io::Result<ConnectProgress> {
        // Nothing to clear: the next poll_writable registers afresh.
        connect_result(&SockRef::from(self.0.get_ref()), confirm)
    }
    fn socket(&self) -> SockRef<'_> {
        SockRef::from(self.0.get_ref())
    }
}

struct Udp(Async<UdpSocket>);

impl ReadyUdp for Udp {
    fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.get_ref().send(buf)
    }
    fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.get_ref().recv(buf)
    }
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_readable(cx)
    }
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_writable(cx)
    }
}

struct Listen(Async<TcpListener>);

impl ReadyListener for Listen {
    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Arc<dyn ReadyTcp>, SocketAddr)>> {
        loop {
            match self.0.get_ref().accept() {
                Ok((stream, remote)) => {
                    // accept(2) does not inherit O_NONBLOCK on Linux.
                    let registered = stream
                        .set_nonblocking(true)
                        .and_then(|()| Async::new_nonblocking(stream));
                    return Poll::Ready(
                        registered.map(|s| (Arc::new(Tcp(s)) as Arc<dyn ReadyTcp>, remote)),
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
            match self.0.poll_readable(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

struct Fd(Async<OwnedFd>);

impl ReadyFd for Fd {
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_readable(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::io::Write;
    use std::time::Duration;

    use futures_lite::FutureExt;

    use super::*;

    /// The `ReadyTcp` contract the shared socket task relies on when it
    /// waits on a socket that has just connected without reading first:
    /// bytes that arrived before the first `poll_readable` are reported.
    #[test]
    fn readiness_from_before_the_first_wait_is_reported() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server.write_all(b"x").unwrap();
        // On loopback the byte is in the client's socket once write returns.
        client.set_nonblocking(true).unwrap();
        let runtime = SmolRuntime {
            executor: Arc::new(Executor::new()),
        };
        let stream = runtime.tcp(client).unwrap();
        let ready =
            async_io::block_on(poll_fn(|cx| stream.poll_readable(cx).map(Some)).or(async {
                Timer::after(Duration::from_secs(5)).await;
                None
            }));
        assert!(matches!(ready, Some(Ok(()))), "not reported: {ready:?}");
        let mut buf = [0u8; 4];
        assert_eq!(stream.try_read(&mut buf).unwrap(), 1);
    }
}
