//! [`Connection`]: an established connection (RFC 9622 §8-§10), with
//! stream polling for the adapters' I/O traits, message
//! I/O through [`Connection::send`] and [`Connection::receive`], its events
//! as a stream, and what it is made of (properties in effect, the race
//! trace).

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use taps_core::{
    ConnectionId, ConnectionState, EffectiveProperties, FailureReason, Message, MessageId,
    ReceiveError, RemoteEndpoint, SendError, Trace,
};

use super::IoWait;
use super::error::{Error, reason_to_io};
use super::parked::Claim;
use super::shared::{Shared, Terminal, Through, TlsThrough, read_tls, write_tls};

/// What [`Connection::waterfall`] names the peer by, spelled out only
/// when a waterfall is asked for (formatting it for every connection was a
/// tenth of a plain connect's own work).
#[derive(Clone, Debug)]
pub(crate) enum PeerName {
    /// The remote endpoint the application initiated to.
    Endpoint(RemoteEndpoint),
    /// The remote address (an accepted connection's peer).
    Address,
}

/// Something the application should hear about an established connection
/// (RFC 9622 §8.3 soft errors and path changes, §9.2.2 send events, §10
/// termination).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// RFC 9622 §8.3.2: the connection's path changed (its interface went
    /// down or came back, or its MTU or addresses changed). See
    /// [`Connection::interface`] and [`Connection::properties`].
    PathChange,
    /// RFC 9622 §8.3.1: a problem on the path that does not end the
    /// connection (its interface went down: `InterfaceDown`).
    SoftError(FailureReason),
    /// A message was handed to the network (its last byte was written).
    Sent(MessageId),
    /// A message's lifetime lapsed before it could be sent.
    Expired(MessageId),
    /// A message could not be sent.
    SendError(MessageId, SendError),
    /// The connection broke or was aborted; nothing follows.
    ConnectionError(FailureReason),
    /// The connection closed; nothing follows.
    Closed,
}

/// One answer to [`Connection::receive`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The bytes: a whole message, part of one, or stream bytes.
    pub data: Vec<u8>,
    /// This ends a message (with a framer), or the stream (without).
    pub end_of_message: bool,
}

/// An established connection, as every adapter hands it out: adapters
/// wrap it to implement their runtime's stream traits (tokio's
/// `AsyncRead`/`AsyncWrite`, `futures_io`'s) over
/// [`Connection::poll_read`], [`Connection::poll_write`] and
/// [`Connection::poll_shutdown`], and reach the rest through `Deref`.
///
/// Stream use: the adapter's I/O traits. Shutting down the write side ends
/// the sending side (TLS close_notify, then FIN, after every byte written),
/// like `TcpStream`'s: reading goes on until the peer ends too.
/// [`Connection::close`] closes the whole connection.
///
/// Message use: [`Connection::send`] and [`Connection::receive`] take
/// `&self`, so one connection can be shared (in an `Arc`) by a sending and a
/// receiving task.
///
/// Dropping a connection closes it gracefully in the background (as
/// dropping a `TcpStream` does); [`Connection::abort`] resets it.
pub struct Connection {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: ConnectionId,
    pub(crate) remote: SocketAddr,
    pub(crate) interface: Option<u32>,
    pub(crate) host: PeerName,
    /// `poll_shutdown` sent the final message.
    write_ended: bool,
    /// A final-message send is waiting for room.
    shutdown_pending: Option<Message>,
    /// The terminal event was handed out by `next_event`.
    events_done: bool,
    /// The stream pass-through's waits on the socket. They own the socket,
    /// so `abort` drops them: the reset goes out when the socket's task
    /// lets go, not when the application next polls.
    waits: Mutex<SocketWaits>,
}

/// See [`Connection::waits`].
#[derive(Default)]
struct SocketWaits {
    read: Option<IoWait>,
    write: Option<IoWait>,
}

fn lock_waits(waits: &mut Mutex<SocketWaits>) -> &mut SocketWaits {
    waits.get_mut().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("remote", &self.remote)
            .field("interface", &self.interface)
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(
        shared: Arc<Shared>,
        id: ConnectionId,
        remote: SocketAddr,
        interface: Option<u32>,
        host: PeerName,
    ) -> Connection {
        Connection {
            shared,
            id,
            remote,
            interface,
            host,
            write_ended: false,
            shutdown_pending: None,
            events_done: false,
            waits: Mutex::new(SocketWaits::default()),
        }
    }

    /// The core's id of this connection.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// The remote address in use: the race's winner, or the peer of an
    /// accepted connection.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// The interface the connection left by, when it was bound to one.
    pub fn interface(&self) -> Option<String> {
        let index = self.interface?;
        interface_name(self.shared.lock().driver.machine(), index)
    }

    /// The properties in effect (RFC 9622 §8.1), while established.
    pub fn properties(&self) -> Option<EffectiveProperties> {
        self.shared
            .lock()
            .driver
            .machine()
            .connection_info(self.id)?
            .properties()
    }

    /// The negotiated ALPN protocol, with TLS.
    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.shared
            .lock()
            .driver
            .machine()
            .connection_info(self.id)?
            .alpn()
            .map(<[u8]>::to_vec)
    }

    /// Whether TLS resumed an earlier session.
    pub fn resumed(&self) -> bool {
        self.shared
            .lock()
            .driver
            .machine()
            .connection_info(self.id)
            .is_some_and(|c| c.resumed())
    }

    /// The race trace (for accepted connections: their handshake), while
    /// the connection exists in the core.
    pub fn trace(&self) -> Option<Trace> {
        let g = self.shared.lock();
        Some(g.driver.machine().connection_info(self.id)?.trace().clone())
    }

    /// The trace as a text waterfall, as `tapscat --trace` prints it.
    pub fn waterfall(&self) -> Option<String> {
        let g = self.shared.lock();
        let machine = g.driver.machine();
        let trace = machine.connection_info(self.id)?.trace();
        let host = match &self.host {
            PeerName::Endpoint(endpoint) => endpoint.to_string(),
            PeerName::Address => self.remote.to_string(),
        };
        Some(trace.waterfall(&host, &|i| interface_name(machine, i)))
    }

    /// The lifecycle state (RFC 9622 §11); `None` once the core freed it.
    pub fn state(&self) -> Option<ConnectionState> {
        let g = self.shared.lock();
        Some(g.driver.machine().connection_info(self.id)?.state())
    }

    /// RFC 9622 §9.2 `Send`: queues `message`, waiting while the send queue
    /// is full (back-pressure), and returns its id once accepted. `Sent`
    /// follows as a [`ConnectionEvent`] when its last byte is written.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] for a message bigger than the whole
    /// queue; [`Error::Send`] when the connection no longer sends;
    /// [`Error::Connection`] when it broke.
    pub async fn send(&self, message: Message) -> Result<MessageId, Error> {
        let limit = self
            .shared
            .lock()
            .driver
            .machine()
            .config()
            .io
            .max_queued_bytes;
        if message.data.len() > limit {
            return Err(Error::MessageTooLarge {
                len: message.data.len(),
                limit,
            });
        }
        let mut message = Some(message);
        poll_fn(|cx| self.poll_send_message(&mut message, cx)).await
    }

    fn poll_send_message(
        &self,
        message: &mut Option<Message>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<MessageId, Error>> {
        let mut g = self.shared.lock();
        let inner = &mut *g;
        let Some(side) = inner.pump(self.id) else {
            return Poll::Ready(Err(Error::Closed));
        };
        match &side.terminal {
            Some(Terminal::Failed(reason)) => return Poll::Ready(Err(Error::Connection(*reason))),
            Some(_) => return Poll::Ready(Err(Error::Closed)),
            None => {}
        }
        side.wake.register(cx.waker());
        let waker = std::task::Waker::from(side.wake.clone());
        let mut own = Context::from_waker(&waker);
        match inner.driver.poll_send(self.id, message, &mut own) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(id)) => Poll::Ready(Ok(id)),
            Poll::Ready(Err(SendError::NotOpen | SendError::UnknownConnection)) => {
                Poll::Ready(Err(Error::Closed))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(Error::Send(e))),
        }
    }

    /// RFC 9622 §9.3 `Receive`: the next whole message (with a framer) or
    /// the bytes that arrived (without one). `Ok(None)` once the peer has
    /// ended and everything was received.
    ///
    /// # Errors
    ///
    /// [`Error::Connection`] when the connection broke.
    pub async fn receive(&self) -> Result<Option<Received>, Error> {
        self.receive_with(1, usize::MAX).await
    }

    /// `Receive(minIncompleteLength, maxLength)`: answers with at most
    /// `max_len` bytes (a part of a longer message has
    /// `end_of_message == false`), and, for stream bytes, not before
    /// `min_incomplete` bytes are there (or the stream ended).
    ///
    /// # Errors
    ///
    /// As [`Connection::receive`], and [`Error::Receive`] when too many
    /// receives are pending.
    pub async fn receive_with(
        &self,
        min_incomplete: usize,
        max_len: usize,
    ) -> Result<Option<Received>, Error> {
        let mut asked = false;
        poll_fn(|cx| {
            let mut g = self.shared.lock();
            let inner = &mut *g;
            loop {
                let Some(side) = inner.pump(self.id) else {
                    return Poll::Ready(Ok(None));
                };
                if let Some(piece) = side.received.pop_front() {
                    let ended = if side.framed {
                        piece.partial && piece.end_of_message && piece.data.is_empty()
                    } else {
                        piece.end_of_message
                    };
                    if ended {
                        side.eof = true;
                        if piece.data.is_empty() {
                            return Poll::Ready(Ok(None));
                        }
                    }
                    return Poll::Ready(Ok(Some(Received {
                        data: piece.data,
                        end_of_message: piece.end_of_message,
                    })));
                }
                if side.eof {
                    return Poll::Ready(Ok(None));
                }
                match &side.terminal {
                    Some(Terminal::Failed(reason)) => {
                        return Poll::Ready(Err(Error::Connection(*reason)));
                    }
                    Some(_) => return Poll::Ready(Ok(None)),
                    None => {}
                }
                if asked {
                    side.wake.register(cx.waker());
                    return Poll::Pending;
                }
                asked = true;
                let result = inner
                    .driver
                    .command(|m, now| m.connection(self.id).receive(now, min_incomplete, max_len));
                match result {
                    Ok(()) => {}
                    Err(ReceiveError::TooManyPending) => {
                        return Poll::Ready(Err(Error::Receive(ReceiveError::TooManyPending)));
                    }
                    Err(_) => return Poll::Ready(Ok(None)),
                }
            }
        })
        .await
    }

    /// RFC 9622 §10 `Close`: everything queued goes out, then TLS
    /// close_notify and FIN; returns once the peer has closed too (or after
    /// the machine's `close_timeout`).
    ///
    /// # Errors
    ///
    /// [`Error::Connection`] when the connection broke (or was aborted)
    /// instead of closing in order.
    pub async fn close(&self) -> Result<(), Error> {
        // The socket's task runs here while `close` waits (see
        // `super::parked`): the FIN goes out and the peer's end is read in
        // this task, with no hand-over. Claimed before the machine is told,
        // whose wake-up would otherwise start it elsewhere. Handed back
        // when `close` ends.
        let mut claim: Option<Claim> = None;
        {
            let mut g = self.shared.lock();
            let open = g
                .pump(self.id)
                .is_some_and(|side| side.terminal.is_none() && !side.closing);
            if open {
                claim = g.claim_socket_task(self.id);
                let inner = &mut *g;
                if let Some(side) = inner.conns.get_mut(&self.id) {
                    side.closing = true;
                }
                inner
                    .driver
                    .command(|m, now| m.connection(self.id).close(now));
            }
        }
        let result = poll_fn(|cx| {
            let mut polled = false;
            loop {
                let mut g = self.shared.lock();
                let Some(side) = g.pump(self.id) else {
                    return Poll::Ready(Ok(()));
                };
                match &side.terminal {
                    Some(Terminal::Failed(reason)) => {
                        return Poll::Ready(Err(Error::Connection(*reason)));
                    }
                    Some(_) => return Poll::Ready(Ok(())),
                    None => side.wake.register(cx.waker()),
                }
                let claimed_now = claim.is_none() && {
                    claim = g.claim_socket_task(self.id);
                    claim.is_some()
                };
                drop(g);
                if polled && !claimed_now {
                    return Poll::Pending;
                }
                match claim.as_mut() {
                    Some(task) => {
                        if task.poll(cx) {
                            claim = None;
                        }
                    }
                    None => return Poll::Pending,
                }
                polled = true;
            }
        })
        .await;
        drop(claim);
        result
    }

    /// RFC 9622 §10 `Abort`: resets the connection (RST) at once, dropping
    /// whatever was not sent. `ConnectionError("local abort")` is its last
    /// event.
    pub fn abort(&self) {
        *self.waits.lock().unwrap_or_else(PoisonError::into_inner) = SocketWaits::default();
        let mut g = self.shared.lock();
        let inner = &mut *g;
        if inner
            .pump(self.id)
            .is_some_and(|side| side.terminal.is_none())
        {
            inner
                .driver
                .command(|m, now| m.connection(self.id).abort(now));
        }
    }

    /// The next [`ConnectionEvent`]; `None` after the last one (the
    /// connection ended).
    pub async fn next_event(&mut self) -> Option<ConnectionEvent> {
        poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Polls for the next [`ConnectionEvent`].
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<ConnectionEvent>> {
        if self.events_done {
            return Poll::Ready(None);
        }
        let mut g = self.shared.lock();
        let Some(side) = g.pump(self.id) else {
            return Poll::Ready(None);
        };
        match side.events.pop_front() {
            Some(e) => {
                if matches!(
                    e,
                    ConnectionEvent::Closed | ConnectionEvent::ConnectionError(_)
                ) {
                    self.events_done = true;
                }
                Poll::Ready(Some(e))
            }
            None => {
                side.wake.register(cx.waker());
                Poll::Pending
            }
        }
    }

    /// The connection's events as a [`futures_core::Stream`].
    pub fn events(&mut self) -> Events<'_> {
        Events { conn: self }
    }

    /// An error for stream I/O on a connection that is no longer
    /// established: its failure, or `None` for an orderly end.
    fn stream_end(&self) -> Option<io::Error> {
        let mut g = self.shared.lock();
        match g.pump(self.id).and_then(|s| s.terminal.clone()) {
            Some(Terminal::Failed(reason)) => Some(reason_to_io(reason)),
            _ => None,
        }
    }
}

/// The stream of [`Connection::events`].
#[derive(Debug)]
pub struct Events<'a> {
    conn: &'a mut Connection,
}

impl futures_core::Stream for Events<'_> {
    type Item = ConnectionEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ConnectionEvent>> {
        self.conn.poll_event(cx)
    }
}

impl Connection {
    /// Stream read: copies what arrived into `buf`; `Ok(0)` at the end of
    /// the peer's data (and once the connection closed in order).
    ///
    /// With nothing buffered, a stream reads through, as a `TcpStream` or
    /// a TLS stream over one does: a plain connection straight from its
    /// socket, a TLS one through its session checked out of the machine
    /// (its decryption runs here, not under the instance's lock); when the
    /// socket is empty it waits on the socket's readiness itself.
    ///
    /// # Errors
    ///
    /// The connection's failure, with the closest [`io::ErrorKind`].
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        // A wait left by an earlier poll is over: this poll looks afresh.
        lock_waits(&mut self.waits).read = None;
        let result = loop {
            let through = {
                let mut g = self.shared.lock();
                match g.driver.poll_read(self.id, buf, cx) {
                    // Nothing buffered (the waker stays with the driver for
                    // the connection's end): read through.
                    Poll::Pending => match g.reader(self.id) {
                        Some(through) => through,
                        None => break Poll::Pending,
                    },
                    ready => break ready,
                }
            };
            let empty = match through {
                Through::Plain(socket, io) => match io.try_read(buf) {
                    Ok(n) if n > 0 => return Poll::Ready(Ok(n)),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => io,
                    // The end, or an error: the machine has it; read it
                    // there.
                    ended => {
                        self.shared.lock().through_ended(socket, ended);
                        continue;
                    }
                },
                Through::Tls(io, session) => {
                    let (socket, outcome, mut g) =
                        self.shared
                            .through_tls(&*io, session, |s, io| read_tls(s, io, buf));
                    match outcome {
                        Ok(TlsThrough::Done(n)) => return Poll::Ready(Ok(n)),
                        Ok(TlsThrough::WouldBlock) => io,
                        // The machine heard how it ended; read it there.
                        Ok(TlsThrough::Ended) => continue,
                        Err(e) => {
                            g.through_ended(socket, Err(e));
                            continue;
                        }
                    }
                }
            };
            let mut wait = empty.wait_readable();
            match wait.as_mut().poll(cx) {
                Poll::Pending => {
                    lock_waits(&mut self.waits).read = Some(wait);
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => break Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
        };
        match result {
            Poll::Ready(Err(e)) => match self.stream_end() {
                Some(failure) => Poll::Ready(Err(failure)),
                // Closed in order and freed: the end of the stream.
                None if self.state().is_none() => Poll::Ready(Ok(0)),
                None => Poll::Ready(Err(e)),
            },
            other => other,
        }
    }

    /// Stream write: takes what fits the send queue (back-pressure:
    /// `Pending` while it is full). With nothing queued, a stream writes
    /// through: a plain connection straight to its socket, a
    /// TLS one through its checked-out session (encrypting here, not under
    /// the instance's lock), waiting on the socket when it is full.
    ///
    /// # Errors
    ///
    /// `BrokenPipe` after [`Connection::poll_shutdown`]; the connection's
    /// failure.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if self.write_ended {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the sending side was shut down",
            )));
        }
        lock_waits(&mut self.waits).write = None;
        let result = loop {
            let through = {
                let mut g = self.shared.lock();
                match g.writer(self.id) {
                    Some(through) => through,
                    None => break g.write_via_machine(self.id, data, cx),
                }
            };
            let full = match through {
                Through::Plain(_, io) => match io.try_write(data) {
                    Ok(n) if n > 0 => {
                        self.shared.lock().wrote_through(self.id, n);
                        break Poll::Ready(Ok(n));
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => io,
                    // An error (or nothing taken): the machine's path,
                    // where the socket's task meets it too and reports it.
                    _ => break self.shared.lock().driver.poll_write(self.id, data, cx),
                },
                Through::Tls(io, session) => {
                    let (socket, outcome, mut g) =
                        self.shared
                            .through_tls(&*io, session, |s, io| write_tls(s, io, data));
                    match outcome {
                        Ok(TlsThrough::Done(n)) => break Poll::Ready(Ok(n)),
                        Ok(TlsThrough::WouldBlock | TlsThrough::Ended) => io,
                        Err(e) => {
                            g.through_ended(socket, Err(e));
                            break g.driver.poll_write(self.id, data, cx);
                        }
                    }
                }
            };
            // Woken by the socket, or by the connection's end.
            self.shared
                .lock()
                .driver
                .register_writer(self.id, cx.waker());
            let mut wait = full.wait_writable();
            match wait.as_mut().poll(cx) {
                Poll::Pending => {
                    lock_waits(&mut self.waits).write = Some(wait);
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => break Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
        };
        match result {
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.stream_end().unwrap_or(e))),
            other => other,
        }
    }

    /// Ends the sending side: an empty final message (RFC 9622 §9.1.3.5),
    /// so TLS close_notify and FIN follow the bytes already written.
    /// Bytes accepted by `poll_write` are the core's to send, so there is
    /// nothing to flush (as with `TcpStream`).
    ///
    /// # Errors
    ///
    /// The connection's failure.
    pub fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.write_ended {
            return Poll::Ready(Ok(()));
        }
        if self.shutdown_pending.is_none() {
            self.shutdown_pending = Some(Message::new(Vec::new()).final_message());
        }
        let mut pending = self.shutdown_pending.take();
        let result = self.poll_send_message(&mut pending, cx);
        self.shutdown_pending = pending;
        match result {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(_)) | Poll::Ready(Err(Error::Closed)) => {
                self.write_ended = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut g = self.shared.lock();
        let inner = &mut *g;
        let id = self.id;
        let state = inner
            .driver
            .machine()
            .connection_info(id)
            .map(|c| c.state());
        // Established: close in order in the background. Failed (state
        // Closed): close frees the id. Closing or gone: nothing to do.
        let mut claim = None;
        let close = matches!(
            state,
            Some(
                ConnectionState::Establishing
                    | ConnectionState::Established
                    | ConnectionState::Closed
            )
        );
        if close {
            // The socket's task takes its first step (FIN) here, when the
            // claim is handed back below, instead of on another thread.
            claim = inner.claim_socket_task(id);
        }
        inner.driver.command(|m, now| {
            if close {
                m.connection(id).close(now);
            }
            let closing = m
                .connection_info(id)
                .is_some_and(|c| c.state() == ConnectionState::Closing);
            if closing {
                // Nobody will see `Closed` (`ConnectionView::detach`).
                m.connection(id).detach(now);
            }
        });
        inner.conns.remove(&id);
        inner.driver.forget(id);
        drop(g);
        drop(claim);
    }
}

/// The name of interface `index` as the machine last heard of it.
pub(crate) fn interface_name(machine: &taps_core::Machine, index: u32) -> Option<String> {
    machine
        .interfaces()
        .iter()
        .find(|i| i.index == index)
        .map(|i| i.name.clone())
}
