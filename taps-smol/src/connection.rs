//! `futures_io`'s stream traits for [`Connection`], over the core
//! connection's polling.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use crate::Connection;

/// Stream reads; split the connection with `futures_lite::io::split` (or
/// `futures::io::split`) to read and write from different tasks.
///
/// ```no_run
/// # async fn demo() -> Result<(), taps_smol::Error> {
/// use futures_lite::{AsyncReadExt, AsyncWriteExt};
/// use taps_smol::{Preconnection, Taps};
///
/// let taps = Taps::new()?;
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
        self.get_mut().inner.poll_read(cx, buf)
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
        self.get_mut().inner.poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Bytes accepted by poll_write are the core's to send; like
        // TcpStream, there is nothing to flush.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner.poll_shutdown(cx)
    }
}

impl Connection {
    /// RFC 9622 §10 `Close`: everything queued goes out, then TLS
    /// close_notify and FIN; returns once the peer has closed too (or after
    /// the machine's `close_timeout`).
    ///
    /// Defined here as well as on the core connection so that `conn.close()`
    /// means this, not `futures_io`'s `AsyncWriteExt::close` (which ends
    /// only the sending side, see [`AsyncWrite`]): inherent methods win.
    ///
    /// # Errors
    ///
    /// [`Error::Connection`](crate::Error::Connection) when the connection
    /// broke (or was aborted) instead of closing in order.
    pub async fn close(&self) -> Result<(), crate::Error> {
        self.inner.close().await
    }
}
