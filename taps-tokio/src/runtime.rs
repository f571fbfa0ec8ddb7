//! The runtime half of the adapter: [`Runtime`] over tokio. The tasks
//! themselves (socket, DNS, accept, timer, path monitor) are
//! `taps_io`'s; this only spawns them on the runtime that was
//! current when the `Taps` was made, and registers their sockets with
//! tokio's reactor.
//!
//! tokio keeps a readiness flag per socket and clears it only when an
//! operation meets `WouldBlock` under the readiness it observed
//! (`try_read`, `try_write`, `try_io`), so an edge that arrives between a
//! `WouldBlock` and the clearing is never lost; every operation here goes
//! through one of those.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::task::{Context, Poll};

use socket2::SockRef;
use taps_io::{
    ConnectProgress, IoWait, ReadyFd, ReadyListener, ReadyTcp, ReadyUdp, Runtime, Task,
    connect_result,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// taps-io's [`Runtime`] over tokio: tasks spawned on one tokio runtime
/// (captured when it is made, so work can be spawned from any thread,
/// including a `Drop` outside the runtime), sockets registered with its
/// reactor, timers from its timer.
#[derive(Debug)]
pub struct TokioRuntime {
    pub(crate) handle: tokio::runtime::Handle,
}

impl Runtime for TokioRuntime {
    fn spawn(&self, task: Task) {
        // The JoinHandle is dropped: the task runs detached.
        drop(self.handle.spawn(task));
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Task {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn tcp(&self, socket: std::net::TcpStream) -> io::Result<Arc<dyn ReadyTcp>> {
        let _guard = self.handle.enter();
        Ok(Arc::new(Tcp(TcpStream::from_std(socket)?)))
    }

    fn udp(&self, socket: std::net::UdpSocket) -> io::Result<Box<dyn ReadyUdp>> {
        let _guard = self.handle.enter();
        Ok(Box::new(Udp(UdpSocket::from_std(socket)?)))
    }

    fn listener(&self, socket: std::net::TcpListener) -> io::Result<Box<dyn ReadyListener>> {
        let _guard = self.handle.enter();
        Ok(Box::new(Listen(TcpListener::from_std(socket)?)))
    }

    fn readable(&self, fd: OwnedFd) -> io::Result<Box<dyn ReadyFd>> {
        let _guard = self.handle.enter();
        // `AsyncFd::with_interest` is deprecated because it cannot check
        // that the descriptor stays open and unchanged while registered;
        // this one is owned by the AsyncFd itself, which is what the
        // replacement (`unsafe fn register`, out of reach in this
        // unsafe-free crate) requires.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(fd, Interest::READABLE)?;
        Ok(Box::new(Fd(fd)))
    }
}

struct Tcp(TcpStream);

impl ReadyTcp for Tcp {
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // A read that leaves room in `buf` has drained the socket, so the
        // readiness is cleared as tokio's own `poll_read` does after a
        // short read: the next `try_read` then answers `WouldBlock` from
        // the flag instead of a recv(2) that would. Under pooled HTTP that
        // was one failing recv(2) per request (see benches/README.md).
        // The data read is kept aside while the closure reports
        // `WouldBlock` to have the flag cleared; an edge that came after
        // the read survives, since tokio clears only the readiness the
        // read observed.
        let socket = SockRef::from(&self.0);
        let mut drained = None;
        let read = self.0.try_io(Interest::READABLE, || {
            let n = (&*socket).read(buf)?;
            if n > 0 && n < buf.len() {
                drained = Some(n);
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        match drained {
            Some(n) => Ok(n),
            None => read,
        }
    }
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_read_ready(cx)
    }
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_write_ready(cx)
    }
    fn wait_readable(self: Arc<Self>) -> IoWait {
        Box::pin(async move { self.0.readable().await })
    }
    fn wait_writable(self: Arc<Self>) -> IoWait {
        Box::pin(async move { self.0.writable().await })
    }
    fn connect_progress(&self, confirm: bool) -> io::Result<ConnectProgress> {
        // Inside try_io, so that "still in progress" clears the readiness
        // it was woken by (a spurious wake-up, or Fast Open waiting).
        self.0.try_io(Interest::WRITABLE, || {
            match connect_result(&SockRef::from(&self.0), confirm)? {
                ConnectProgress::Connected => Ok(ConnectProgress::Connected),
                _ => Err(io::ErrorKind::WouldBlock.into()),
            }
        })
    }
    fn socket(&self) -> SockRef<'_> {
        SockRef::from(&self.0)
    }
}

struct Udp(UdpSocket);

impl ReadyUdp for Udp {
    fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_send(buf)
    }
    fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_recv(buf)
    }
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_recv_ready(cx)
    }
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_send_ready(cx)
    }
}

struct Listen(TcpListener);

impl ReadyListener for Listen {
    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Arc<dyn ReadyTcp>, SocketAddr)>> {
        self.0
            .poll_accept(cx)
            .map_ok(|(stream, remote)| (Arc::new(Tcp(stream)) as Arc<dyn ReadyTcp>, remote))
    }
}

struct Fd(AsyncFd<OwnedFd>);

impl ReadyFd for Fd {
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0.poll_read_ready(cx) {
            Poll::Ready(Ok(mut guard)) => {
                // Cleared before the caller drains: an edge after this
                // sets it again, so none is lost.
                guard.clear_ready();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::io::Write;
    use std::time::Duration;

    use super::*;

    /// The `ReadyTcp` contract the shared socket task relies on when it
    /// waits on a socket that has just connected without reading first:
    /// bytes that arrived before the first `poll_readable` are reported.
    #[tokio::test]
    async fn readiness_from_before_the_first_wait_is_reported() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server.write_all(b"x").unwrap();
        // On loopback the byte is in the client's socket once write returns.
        client.set_nonblocking(true).unwrap();
        let runtime = TokioRuntime {
            handle: tokio::runtime::Handle::current(),
        };
        let stream = runtime.tcp(client).unwrap();
        let ready = tokio::time::timeout(
            Duration::from_secs(5),
            poll_fn(|cx| stream.poll_readable(cx)),
        )
        .await;
        assert!(matches!(ready, Ok(Ok(()))), "not reported: {ready:?}");
        let mut buf = [0u8; 4];
        assert_eq!(stream.try_read(&mut buf).unwrap(), 1);
    }

    #[tokio::test]
    async fn a_short_read_clears_readiness_and_loses_no_later_data() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        client.set_nonblocking(true).unwrap();
        let runtime = TokioRuntime {
            handle: tokio::runtime::Handle::current(),
        };
        let tcp = runtime.tcp(client).unwrap();
        let mut buf = [0u8; 64];

        peer.write_all(b"hello").unwrap();
        tcp.clone().wait_readable().await.unwrap();
        assert_eq!(tcp.try_read(&mut buf).unwrap(), 5, "a short read");

        // More data reaches the socket while this (single-threaded)
        // runtime's reactor cannot run: the short read cleared the
        // readiness, so try_read answers from the flag, without the
        // recv(2) that would have found these bytes.
        peer.write_all(b"world!").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let flag = tcp.try_read(&mut buf).unwrap_err();
        assert_eq!(flag.kind(), io::ErrorKind::WouldBlock);

        // The reactor reports them, and they are read whole.
        tokio::time::timeout(Duration::from_secs(10), tcp.clone().wait_readable())
            .await
            .expect("readable again")
            .unwrap();
        let n = tcp.try_read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"world!");
    }
}
