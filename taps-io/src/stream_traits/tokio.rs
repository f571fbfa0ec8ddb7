//! tokio's stream traits for [`Connection`] (feature `tokio`), over its
//! own polling.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::Connection;

/// Stream reads; split the connection with [`tokio::io::split`] to read
/// and write from different tasks.
///
/// ```no_run
/// # async fn demo(taps: &taps_io::Taps) -> Result<(), taps_io::Error> {
/// use taps_io::Preconnection;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// let pre = Preconnection::parse("example.com:80").expect("an endpoint");
/// let mut conn = taps.initiate(&pre).await?;
/// conn.write_all(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n").await?;
/// conn.shutdown().await?;
/// let mut page = Vec::new();
/// conn.read_to_end(&mut page).await?;
/// println!("{} bytes from {}", page.len(), conn.remote_addr());
/// # Ok(()) }
/// ```
impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Connection::poll_read(self.get_mut(), cx, buf.initialize_unfilled()) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Stream writes with back-pressure. `poll_shutdown` ends the sending side
/// (TLS close_notify, then FIN, after every byte written), like
/// `TcpStream`'s; reading goes on until the peer ends too.
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

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Connection::poll_shutdown(self.get_mut(), cx)
    }
}
