//! Borrowed views of one connection, listener or socket: the way
//! per-object work reaches the machine (ARCHITECTURE.md "One way in"), as
//! quinn-proto's `send_stream(id)` does. [`Machine`] itself keeps only the
//! loop and the commands that create objects; everything done to an object
//! that exists goes through its view.
//!
//! - [`ConnectionView`] (`machine.connection(id)`): RFC 9622 §9 data
//!   transfer (send, receive, stream read and write, the pass-throughs) and
//!   §10 termination (close, abort).
//! - [`ConnectionInfo`] (`machine.connection_info(id)`): what can be read
//!   about a connection through a shared borrow: its state (RFC 9622 §11),
//!   its properties (§8.1), its trace.
//! - [`ListenerView`] (`machine.listener(id)`): RFC 9622 §7.2 accepting,
//!   the connection limit and `Stop`.
//! - [`SocketView`] (`machine.socket(id)`): what an adapter asks about a
//!   socket it performs I/O for (what to write, how much to read).
//!
//! A view of an id that is unknown or freed is still a view: its commands
//! do what they do for a stale id everywhere (count it in
//! [`Stats::stale_inputs`](super::Stats::stale_inputs) and refuse or
//! ignore), so callers never unwrap.

use std::net::SocketAddr;

use super::checkout::{CheckedOutTls, TlsCheckout};
use super::listen::AcceptError;
use super::{Conn, ConnectionState, Machine, ReceiveError, StreamError};
use crate::connection::{Message, MessageId, SendError};
use crate::id::{ConnectionId, ListenerId, SocketId};
use crate::properties::EffectiveProperties;
use crate::race::Race;
use crate::stack::Stack;
use crate::time::Instant;
use crate::trace::Trace;

/// One connection of a machine, borrowed for commands
/// ([`Machine::connection`]).
#[derive(Debug)]
pub struct ConnectionView<'a> {
    pub(super) machine: &'a mut Machine,
    pub(super) id: ConnectionId,
}

impl ConnectionView<'_> {
    /// The connection's id.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// What can be read about it; `None` for an unknown or freed id.
    pub fn info(&self) -> Option<ConnectionInfo<'_>> {
        self.machine.connection_info(self.id)
    }

    /// RFC 9622 §9.2 `Send`. Before the connection is ready the message
    /// waits in the queue; `SendError::BufferFull` is back-pressure.
    ///
    /// # Errors
    ///
    /// [`SendError`]: the connection is unknown or no longer sends, the
    /// queue is full, the framer refused the message.
    pub fn send(&mut self, now: Instant, message: Message) -> Result<MessageId, SendError> {
        self.machine.send(now, self.id, message)
    }

    /// Whether [`ConnectionView::send`] would accept a message of `len`
    /// bytes now, without handing it over: `SendError::BufferFull` is
    /// back-pressure, and `Writable` follows once the queue drains, so an
    /// adapter can keep the message and wait instead of losing it to a
    /// refused `send`.
    ///
    /// # Errors
    ///
    /// As [`ConnectionView::send`] would refuse.
    pub fn check_send(&mut self, len: usize) -> Result<(), SendError> {
        self.machine.check_send(self.id, len)
    }

    /// RFC 9622 §9.3 `Receive(minIncompleteLength, maxLength)`: one
    /// `Received` or `ReceivedPartial` will answer it.
    ///
    /// # Errors
    ///
    /// [`ReceiveError`]: unknown, closed, or too many requests pending.
    pub fn receive(
        &mut self,
        now: Instant,
        min_incomplete: usize,
        max_len: usize,
    ) -> Result<(), ReceiveError> {
        self.machine.receive(now, self.id, min_incomplete, max_len)
    }

    /// Stream read: copies received bytes into `buf`. `Ok(0)` means the
    /// peer closed and everything was read.
    ///
    /// Reading goes on after [`ConnectionView::close`], until the `Closed`
    /// event: that event frees the id, and a read after it is
    /// [`StreamError::UnknownConnection`]. So read to `Ok(0)` first, then
    /// close, as with a socket.
    ///
    /// # Errors
    ///
    /// [`StreamError::WouldBlock`] when nothing waits (a `Readable` event
    /// follows when something does); the others when the connection is not
    /// established or unknown.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        self.machine.read(self.id, buf)
    }

    /// Stream write: queues as much of `data` as fits.
    ///
    /// # Errors
    ///
    /// [`StreamError::WouldBlock`] when nothing fits (wait for
    /// `Writable`); the others when the connection does not take bytes.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, StreamError> {
        self.machine.write(self.id, data)
    }

    /// Hands the reading of the connection's socket to the adapter's
    /// application side, for as long as [`ConnectionInfo::read_through`]
    /// (or, with TLS, [`ConnectionView::check_out_tls`]) would apply to an
    /// established connection: `read_capacity` is 0 meanwhile, so the
    /// adapter's own socket loop stops reading (and stops waiting for
    /// readability), and only the application reads, straight into its
    /// buffer, waiting on the socket's readiness itself. Without this the
    /// socket loop and the application race for the same bytes, and the
    /// loop, woken first, copies most of them through the receive buffer.
    ///
    /// It ends by itself when the connection stops qualifying: `receive`
    /// (requests are answered from the buffer), `close` (the machine must
    /// see the peer's end), a failure. `ResumeReading` then tells the
    /// adapter's loop to read again. Costs one thing: while the
    /// application does not read, nobody does, so a peer's reset is seen
    /// at the next read or write, as with a plain `TcpStream`.
    ///
    /// Returns whether reading is now delegated.
    pub fn delegate_reading(&mut self) -> bool {
        self.machine.delegate_reading(self.id)
    }

    /// Checks the connection's TLS session out for one stream read or
    /// write outside the machine (see [`CheckedOutTls`]), when the
    /// connection is an established TLS stream (no framer) and nothing the
    /// machine holds depends on the session: nothing decrypted or requested
    /// on the receiving side, the peer not ended; for
    /// [`TlsCheckout::Write`], nothing queued to send and the write side
    /// open. `None` otherwise: go through [`ConnectionView::read`] and
    /// [`ConnectionView::write`]. Give it back with
    /// [`Input::TlsCheckIn`](super::Input::TlsCheckIn) before waiting on
    /// anything.
    pub fn check_out_tls(&mut self, purpose: TlsCheckout) -> Option<CheckedOutTls> {
        self.machine.check_out_tls(self.id, purpose)
    }

    /// RFC 9622 §10 `Close`: queued messages go out, then TLS close_notify
    /// and FIN; `Closed` follows once the peer has closed too (or after
    /// `close_timeout`). Closing a connection that is still establishing
    /// cancels its race; closing one that failed frees its id.
    pub fn close(&mut self, now: Instant) {
        self.machine.close(now, self.id);
    }

    /// The application let go of a closing connection (dropped its handle
    /// after `close`): nobody waits for `Closed`, so the orderly close ends
    /// as soon as everything queued is written and the FIN is due, and the
    /// socket is closed without waiting for the peer's end. The system
    /// finishes the close, as for a dropped `TcpStream`; waiting for the
    /// peer would hold the socket (and a task) for nothing anyone sees.
    pub fn detach(&mut self, now: Instant) {
        self.machine.detach(now, self.id);
    }

    /// RFC 9622 §10 `Abort`: every socket is reset and
    /// `ConnectionError("local abort")` is the last event. The id is freed.
    pub fn abort(&mut self, now: Instant) {
        self.machine.abort(now, self.id);
    }
}

/// What can be read about one connection through a shared borrow
/// ([`Machine::connection_info`], [`ConnectionView::info`]).
#[derive(Clone, Copy, Debug)]
pub struct ConnectionInfo<'a> {
    pub(super) machine: &'a Machine,
    pub(super) conn: &'a Conn,
    pub(super) id: ConnectionId,
}

impl<'a> ConnectionInfo<'a> {
    /// The connection's id.
    pub fn id(self) -> ConnectionId {
        self.id
    }

    /// Its lifecycle state (RFC 9622 §11).
    pub fn state(self) -> ConnectionState {
        self.conn.state
    }

    /// Its socket once established (the race's winner, or the accepted
    /// one).
    pub fn socket(self) -> Option<SocketId> {
        self.conn.socket
    }

    /// Its trace (the race, for initiated connections).
    pub fn trace(self) -> &'a Trace {
        self.conn.trace()
    }

    /// Its race, for initiated connections.
    pub fn race(self) -> Option<&'a Race> {
        self.conn.race()
    }

    /// The properties actually in effect, once established (RFC 9622
    /// §8.1).
    pub fn properties(self) -> Option<EffectiveProperties> {
        let c = self.conn;
        if c.state != ConnectionState::Established {
            return None;
        }
        let interface = c.race().and_then(|r| {
            let winner = r.winner()?;
            r.candidate(winner).and_then(|w| r.path_interface(w.path))
        });
        let iface = interface.and_then(|i| self.machine.interfaces.iter().find(|x| x.index == i));
        let has_framer = self.stack().is_some_and(|s| s.has_framer());
        let socket = c
            .socket
            .and_then(|s| self.machine.sockets.get(s))
            .map(|s| s.options)
            .unwrap_or_default();
        Some(
            c.properties
                .effective_for_tcp(has_framer, iface, &socket, c.zero_rtt),
        )
    }

    /// The ALPN protocol its TLS negotiated.
    pub fn alpn(self) -> Option<&'a [u8]> {
        self.stack()?.alpn()
    }

    /// Whether its TLS resumed an earlier session.
    pub fn resumed(self) -> bool {
        self.stack().is_some_and(|s| s.resumed())
    }

    /// Pass-through for plain TCP streams: the socket an adapter may write
    /// the application's stream bytes to directly, saving their copy
    /// through the transmit queue, when that changes nothing anyone can
    /// see: the connection is established, has no TLS, and nothing of it
    /// waits to be written (queue and in-flight messages empty, no final
    /// message). The adapter reports what the socket took with
    /// [`Input::WroteThrough`](super::Input::WroteThrough); when it took
    /// nothing, it writes through [`ConnectionView::write`] as usual.
    pub fn write_through(self) -> Option<SocketId> {
        self.machine.write_through(self.id)
    }

    /// Pass-through for plain TCP streams, the reading side: the socket an
    /// adapter may read stream bytes from straight into the application's
    /// buffer, when the connection has no TLS and no framer, nothing
    /// received waits in its buffer, the peer has not ended, and no
    /// receive request waits (those are answered from the buffer). What it
    /// reads is the application's at once; an end of stream or an error is
    /// reported as usual (`Input::SocketEof`, `Input::SocketFailed`). Only
    /// one reader at a time: the adapter must not read the same socket
    /// elsewhere meanwhile.
    pub fn read_through(self) -> Option<SocketId> {
        self.machine.read_through(self.id)
    }

    /// The protocol stack of its established socket.
    fn stack(self) -> Option<&'a Stack> {
        let socket = self.conn.socket?;
        self.machine.sockets.get(socket).map(|s| &s.stack)
    }
}

/// One listener of a machine, borrowed ([`Machine::listener`]).
#[derive(Debug)]
pub struct ListenerView<'a> {
    pub(super) machine: &'a mut Machine,
    pub(super) id: ListenerId,
}

impl ListenerView<'_> {
    /// The listener's id.
    pub fn id(&self) -> ListenerId {
        self.id
    }

    /// The adapter accepted a TCP connection from `remote` on one of the
    /// listener's sockets. On success the socket is the machine's (quote
    /// the id in its inputs); on error the adapter closes it. This is the
    /// one world report that is a method rather than an
    /// [`Input`](super::Input): it hands back the id the new socket gets.
    ///
    /// # Errors
    ///
    /// [`AcceptError`]: the listener is gone, its limit is reached, the
    /// machine holds its limit of connections.
    pub fn accept(&mut self, now: Instant, remote: SocketAddr) -> Result<SocketId, AcceptError> {
        self.machine.accept(now, self.id, remote)
    }

    /// RFC 9622 §7.2 `SetNewConnectionLimit`: deliver at most `limit` more
    /// connections (`None`: no limit).
    pub fn set_new_connection_limit(&mut self, limit: Option<usize>) {
        self.machine.set_new_connection_limit(self.id, limit);
    }

    /// RFC 9622 §7.2 `Stop`: no new connections; `Stopped` follows.
    /// Connections already received carry on.
    pub fn stop(&mut self) {
        self.machine.stop(self.id);
    }
}

/// One socket of a machine, for the adapter that performs its I/O
/// ([`Machine::socket`]).
#[derive(Clone, Copy, Debug)]
pub struct SocketView<'a> {
    pub(super) machine: &'a Machine,
    pub(super) id: SocketId,
}

impl<'a> SocketView<'a> {
    /// The socket's id.
    pub fn id(self) -> SocketId {
        self.id
    }

    /// The connection it belongs to (an attempt's, or an established or
    /// accepted connection's); `None` once it is freed.
    pub fn connection(self) -> Option<ConnectionId> {
        self.machine.sockets.get(self.id).map(|s| s.conn)
    }

    /// The bytes the socket should write next: a contiguous prefix of what
    /// is pending. Report what the socket took with
    /// [`Input::Transmitted`](super::Input::Transmitted), then ask again.
    pub fn transmit_data(self) -> &'a [u8] {
        self.machine.transmit_data(self.id)
    }

    /// How many bytes the adapter may read from the socket now; 0 means
    /// pause until `ResumeReading`.
    pub fn read_capacity(self) -> usize {
        self.machine.read_capacity(self.id)
    }
}
