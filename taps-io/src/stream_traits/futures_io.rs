//! `futures_io`'s stream traits for [`Connection`] (feature `futures-io`),
//! over its own polling: what smol, async-std and the `futures` crate
//! read and write through.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use crate::Connection;

/// Stream reads; split the connection with `futures_lite::io::split` (or
/// `futures::io::split`) to read and write from different tasks.
///
/// ```no_run
/// # async fn demo(taps: &taps_io::Taps) -> Result<(), taps_io::Error> {
/// use futures_lite::{AsyncReadExt, AsyncWriteExt};
/// use taps_io::Preconnection;
///
/// let pre = Preconnection::parse("example.com:80").expect("an endpoint");
/// let mut conn = taps.initiate(&pre).await?;
/// conn.write_all(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n").await?;
/// // futures_io's close ends the sending side only (FIN), as for a TcpStream.
/// AsyncWriteExt::close(&mut conn).await?;
/// let mut page = Vec::new();
/// conn.read_to_end(&mut page).await?;
/// println!("{} bytes from {}", page.len(), conn.remote_addr());
/// conn.close().await?; // RFC 9622 §10 Close of the whole connection
/// # Ok(()) }
/// ```
impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Connection::poll_read(self.get_mut(), cx, buf)
    }
}

/// Stream writes with back-pressure.
///
/// `poll_close` ends the *sending side* (TLS close_notify, then FIN, after
/// every byte written), as `smol::net::TcpStream`'s (async-net's) does;
/// reading goes on until the peer ends too. (A bare
/// `async_io::Async<TcpStream>` only flushes on close.) The whole
/// connection closes with [`Connection::close`] (RFC 9622 §10), which is
/// what `conn.close()` calls even with `AsyncWriteExt` in scope; call
/// `AsyncWriteExt::close(&mut conn)` for this one.
impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Connection::poll_write(self.get_mut(), cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Bytes accepted by poll_write are the core's to send; like
        // TcpStream, there is nothing to flush.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Connection::poll_shutdown(self.get_mut(), cx)
    }
}
