//! [`Listener`]: passive connections (RFC 9622 §7.2 `Listen`), delivered
//! once their whole stack (TLS, framer) is ready.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use taps_core::ListenerId;

use super::connection::PeerName;
use super::shared::{ConnSide, Shared};
use super::{Connection, Error};

/// What [`Listener::next_incoming`] found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Incoming {
    /// A connection, established (its TLS and framer handshakes done).
    Connection(Connection),
    /// An accepted connection failed before it was established.
    HandshakeFailed {
        /// The peer.
        remote: SocketAddr,
        /// Why, in words a person can act on (`Display`).
        reason: taps_core::FailureReason,
    },
}

/// Incoming connections, as a [`futures_core::Stream`] or one at a time
/// with [`Listener::accept`]. Dropping it stops listening; connections
/// already handed out carry on. Adapters wrap it to hand out their own
/// connection type.
pub struct Listener {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: ListenerId,
    pub(crate) local: Vec<SocketAddr>,
    stopped: bool,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("id", &self.id)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl Listener {
    pub(crate) fn new(shared: Arc<Shared>, id: ListenerId) -> Listener {
        Listener {
            shared,
            id,
            local: Vec::new(),
            stopped: false,
        }
    }

    /// The addresses listened on, with the ports the system chose for
    /// port 0.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local
    }

    /// The next connection; `None` once the listener stopped. Accepted
    /// connections whose handshake fails are skipped: see
    /// [`Listener::next_incoming`] to hear about them.
    pub async fn accept(&mut self) -> Option<Connection> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next connection.
    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Option<Connection>> {
        loop {
            return match self.poll_incoming(cx) {
                Poll::Ready(Some(Incoming::Connection(conn))) => Poll::Ready(Some(conn)),
                Poll::Ready(Some(Incoming::HandshakeFailed { .. })) => continue,
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }

    /// The next connection or failed handshake (a TLS certificate or ALPN
    /// refusal, a framer failure, a handshake timeout), so a server can
    /// log why a client did not get through; `None` once the listener
    /// stopped. The listener keeps listening after a failure.
    pub async fn next_incoming(&mut self) -> Option<Incoming> {
        poll_fn(|cx| self.poll_incoming(cx)).await
    }

    /// Polls for the next connection or failed handshake.
    pub fn poll_incoming(&mut self, cx: &mut Context<'_>) -> Poll<Option<Incoming>> {
        if self.stopped {
            return Poll::Ready(None);
        }
        let mut g = self.shared.lock();
        let inner = &mut *g;
        let Some(side) = inner.pump_listener(self.id) else {
            return Poll::Ready(None);
        };
        if let Some((remote, reason)) = side.failed.pop_front() {
            return Poll::Ready(Some(Incoming::HandshakeFailed { remote, reason }));
        }
        if let Some((conn, remote)) = side.incoming.pop_front() {
            let framed = side.framed;
            inner.conns.insert(conn, ConnSide::new(framed));
            drop(g);
            return Poll::Ready(Some(Incoming::Connection(Connection::new(
                self.shared.clone(),
                conn,
                remote,
                None,
                PeerName::Address,
            ))));
        }
        if side.stopped {
            return Poll::Ready(None);
        }
        side.wake.register(cx.waker());
        Poll::Pending
    }

    /// RFC 9622 §7.2 `SetNewConnectionLimit`: deliver at most `limit` more
    /// connections (`None`: no limit); further clients are refused.
    pub fn set_new_connection_limit(&self, limit: Option<usize>) {
        let id = self.id;
        self.shared
            .lock()
            .driver
            .command(|m, _| m.listener(id).set_new_connection_limit(limit));
    }

    /// RFC 9622 §7.2 `Stop`: no new connections; those already accepted
    /// carry on.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let id = self.id;
        let mut g = self.shared.lock();
        g.driver.command(|m, _| m.listener(id).stop());
        if let Some(side) = g.pump_listener(self.id) {
            for stop in side.stops.drain(..) {
                stop.notify();
            }
            // Accepted but not handed out: nobody will take them now.
            let orphans: Vec<_> = side.incoming.drain(..).collect();
            for (conn, _) in orphans {
                g.driver.command(|m, now| m.connection(conn).abort(now));
                g.driver.forget(conn);
            }
        }
        g.listeners.remove(&self.id);
    }

    /// Waits until every listening socket is open; the bound addresses, or
    /// why one failed.
    pub(crate) async fn opened(&mut self) -> Result<(), Error> {
        let shared = self.shared.clone();
        let id = self.id;
        let bound = poll_fn(|cx| {
            let mut g = shared.lock();
            let Some(side) = g.pump_listener(id) else {
                return Poll::Ready(Err(Error::Listener("stopped".into())));
            };
            if let Some(e) = &side.error {
                return Poll::Ready(Err(Error::Listener(e.clone())));
            }
            if side.opening == 0 {
                return Poll::Ready(Ok(side.bound.clone()));
            }
            side.wake.register(cx.waker());
            Poll::Pending
        })
        .await?;
        self.local = bound;
        Ok(())
    }
}

impl futures_core::Stream for Listener {
    type Item = Connection;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Connection>> {
        self.get_mut().poll_accept(cx)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop();
    }
}
