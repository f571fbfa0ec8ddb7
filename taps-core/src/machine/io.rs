//! Sockets and data transfer (RFC 9623 §5, RFC 9622 §9-§10): socket
//! reports into protocol stacks, stack progress into the race, transmit and
//! receive buffers with back-pressure, message and stream I/O for the
//! application, and the ends of a connection: `close` (close_notify, FIN,
//! then `Closed`) and `abort` (RST, then `ConnectionError("local abort")`).

use smallvec::SmallVec;

use super::{ConnectionState, Event, Machine, Output, Role, StreamError};
use crate::connection::{IoEvent, Message, MessageId, SendError};
use crate::id::{ConnectionId, DnsTxnId, SocketId};
use crate::properties::DEFAULT_CONN_PRIORITY;
use crate::race::CandidateId;
use crate::stack::StackState;
use crate::time::Instant;
use crate::trace::{FailureReason, TraceKind};

/// How long the socket of a failed accepted handshake may stay open to
/// write its alert: a few bytes, which a live peer takes at once; the
/// bound keeps a peer that never reads from holding the socket.
pub(super) const LINGER: core::time::Duration = core::time::Duration::from_secs(1);

/// Why a `receive` could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The connection id is unknown or freed.
    UnknownConnection,
    /// The connection is closed.
    Closed,
    /// Too many receive requests are pending (see `IoLimits`).
    TooManyPending,
}

impl core::fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ReceiveError::UnknownConnection => "no such connection (unknown or freed id)",
            ReceiveError::Closed => "the connection is closed",
            ReceiveError::TooManyPending => {
                "too many receive requests are pending (IoLimits::max_pending_receives)"
            }
        })
    }
}

impl std::error::Error for ReceiveError {}

impl Machine {
    /// Outputs `Transmit` when the socket holds bytes it may write now.
    ///
    /// RFC 9622 §8.1.2 `connPriority` between this machine's connections:
    /// a `Transmit` goes ahead of the `Transmit`s at the back of the queue
    /// whose connections have a numerically higher priority, so the
    /// adapter, which performs outputs in order, hands bytes to the more
    /// important connection's socket first. It jumps no other output (a
    /// socket's `ShutdownWrite` or `CloseSocket` keeps its place after its
    /// own `Transmit`), and equal priorities keep their order. Once bytes
    /// are in the kernel, each socket is sent on its own: RFC 9622 §8.1.2
    /// gives no guarantee beyond this, and taps claims none.
    pub(super) fn announce(&mut self, socket: SocketId) {
        let Some(s) = self.sockets.get_mut(socket) else {
            return;
        };
        if s.announced || s.stack.tx.is_empty() || !(s.connected || s.fast_open) {
            return;
        }
        s.announced = true;
        let priority = self.conn_priority(socket);
        let mut at = self.outputs.len();
        while let Some(Output::Transmit { socket: queued }) =
            at.checked_sub(1).and_then(|i| self.outputs.get(i))
            && self.conn_priority(*queued) > priority
        {
            at -= 1;
        }
        self.outputs.insert(at, Output::Transmit { socket });
    }

    /// The `connPriority` of the connection `socket` serves (the default
    /// for a socket no connection owns any more).
    fn conn_priority(&self, socket: SocketId) -> u32 {
        self.sockets
            .get(socket)
            .and_then(|s| self.conns.get(s.conn))
            .map_or(DEFAULT_CONN_PRIORITY, |c| {
                c.properties.connection.conn_priority
            })
    }

    /// Frees a socket and tells the adapter to close it (once: a freed id
    /// is not closed again).
    pub(super) fn close_socket(&mut self, socket: SocketId) {
        if self.sockets.remove(socket).is_some() {
            self.outputs.push_back(Output::CloseSocket { socket });
        }
    }

    /// Closes the socket of a failed handshake (accepted or attempted)
    /// once what its stack queued last is written: that is the TLS alert
    /// (`no_application_protocol`, `unknown_ca`, ...) by which the peer
    /// learns why, instead of a bare close. Bounded by [`LINGER`]; at once when
    /// nothing is queued or the peer has gone.
    pub(super) fn close_after_alert(&mut self, now: Instant, socket: SocketId) {
        let Some(s) = self.sockets.get_mut(socket) else {
            return;
        };
        if s.stack.tx.is_empty() || !s.connected || s.shut || s.stack.peer_eof {
            self.close_socket(socket);
            return;
        }
        let until = now + LINGER;
        s.linger_until = Some(until);
        s.shut = true;
        self.announce(socket);
        self.outputs.push_back(Output::ShutdownWrite { socket });
        self.timers
            .push(core::cmp::Reverse((until, super::Timer::Linger(socket))));
    }

    /// A lingering socket (see [`Machine::close_after_alert`]) closes once
    /// its bytes are written or anything else happens to it: `true` if
    /// `socket` is one (the caller does nothing more with it).
    fn end_lingering(&mut self, socket: SocketId, written: bool) -> bool {
        let Some(s) = self
            .sockets
            .get(socket)
            .filter(|s| s.linger_until.is_some())
        else {
            return false;
        };
        if !written || s.stack.tx.is_empty() {
            self.close_socket(socket);
        }
        true
    }

    /// The bytes `socket` should write next (a contiguous prefix of what is
    /// pending; call again after [`Machine::transmitted`]).
    pub(super) fn transmit_data(&self, socket: SocketId) -> &[u8] {
        self.sockets
            .get(socket)
            .map_or(&[][..], |s| s.stack.tx.as_slices().0)
    }

    /// The adapter wrote `n` bytes of [`Machine::transmit_data`].
    pub(super) fn transmitted(&mut self, now: Instant, socket: SocketId, n: usize) {
        let Some(s) = self.sockets.get_mut(socket) else {
            self.stats.stale_inputs += 1;
            return;
        };
        let n = n.min(s.stack.tx.len());
        s.stack.tx.drain(..n);
        if s.stack.tx.is_empty() {
            s.announced = false;
        }
        if self.end_lingering(socket, true) {
            return;
        }
        let Some(s) = self.sockets.get_mut(socket) else {
            return;
        };
        let conn = s.conn;
        let established = self.conns.get(conn).is_some_and(|c| {
            c.socket == Some(socket)
                && matches!(
                    c.state,
                    ConnectionState::Established | ConnectionState::Closing
                )
        });
        if established {
            let mut events = Vec::new();
            if let (Some(c), Some(s)) = (self.conns.get_mut(conn), self.sockets.get_mut(socket)) {
                c.io.on_transmitted(s.stack.tx_total - s.stack.tx.len() as u64, &mut events);
                c.io.pump(now, &mut s.stack, &mut events);
                c.io.on_drained(&s.stack, &mut events);
            }
            self.apply_io_events(now, conn, events);
            self.maybe_shutdown(now, conn);
        }
        self.announce(socket);
        self.purge_timers();
    }

    /// How many bytes the adapter may read from `socket` now; 0 means pause
    /// until `ResumeReading`.
    pub(super) fn read_capacity(&self, socket: SocketId) -> usize {
        let Some(s) = self.sockets.get(socket) else {
            return 0;
        };
        match self.conns.get(s.conn) {
            // The application reads this socket itself (see
            // `Machine::delegate_reading`): reading it here too would
            // reorder the stream.
            Some(c) if c.socket == Some(socket) && self.reads_delegated(s.conn) => 0,
            Some(c) if c.socket == Some(socket) && c.state != ConnectionState::Establishing => {
                c.io.read_capacity(&s.stack)
            }
            _ => self
                .config
                .io
                .max_receive_buffer
                .saturating_sub(s.stack.rx.len()),
        }
    }

    pub(super) fn note_read_capacity(&mut self, socket: SocketId) {
        let capacity = self.read_capacity(socket);
        let Some(s) = self.sockets.get_mut(socket) else {
            return;
        };
        if capacity == 0 {
            s.read_paused = true;
        } else if s.read_paused {
            s.read_paused = false;
            self.outputs.push_back(Output::ResumeReading { socket });
        }
    }

    /// The adapter says what became of a socket's options. A keep-alive
    /// the application required and the socket refused fails the attempt
    /// (RFC 9622 §6.2.10, Require: only a protocol that provides it).
    pub(super) fn on_socket_options_applied(
        &mut self,
        now: Instant,
        socket: SocketId,
        applied: crate::socket_options::AppliedTcpOptions,
    ) {
        let Some(s) = self.sockets.get_mut(socket) else {
            self.stats.stale_inputs += 1;
            return;
        };
        s.options.1 = applied;
        let conn = s.conn;
        let required = self.conns.get(conn).is_some_and(|c| {
            crate::socket_options::TcpSocketOptions::keep_alive_required(&c.properties)
        });
        if let (true, crate::socket_options::OptionResult::Refused { errno }) =
            (required, applied.keep_alive)
        {
            self.on_socket_failed(now, socket, FailureReason::SocketSetup(errno));
        }
    }

    pub(super) fn on_socket_connected(&mut self, now: Instant, socket: SocketId) {
        let Some(s) = self.sockets.get_mut(socket).filter(|s| !s.connected) else {
            self.stats.stale_inputs += 1;
            return;
        };
        s.connected = true;
        let result = s.stack.on_transport_up();
        let candidate = s.candidate;
        self.announce(socket);
        match result {
            Err(reason) => self.fail_attempt(now, socket, reason),
            Ok(state) => self.attempt_progress(now, socket, candidate, state, true),
        }
    }

    /// An attempt's stack moved on: tell the race.
    fn attempt_progress(
        &mut self,
        now: Instant,
        socket: SocketId,
        candidate: Option<CandidateId>,
        state: StackState,
        transport_just_up: bool,
    ) {
        let Some(candidate) = candidate else { return };
        let Some(conn) = self.sockets.get(socket).map(|s| s.conn) else {
            return;
        };
        let tls = (state == StackState::Ready)
            .then(|| self.sockets.get(socket).and_then(|s| s.stack.tls_details()))
            .flatten();
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.state != ConnectionState::Establishing {
            return;
        }
        let Some(race) = c.race_mut() else { return };
        match state {
            StackState::Ready => {
                if let Some(details) = tls {
                    race.on_tls_established(now, candidate, details);
                }
                race.on_connected(now, candidate)
            }
            StackState::Handshaking if transport_just_up => race.on_transport_up(now, candidate),
            StackState::Handshaking | StackState::Connecting => return,
        }
        self.after_conn_change(now, conn);
    }

    /// An attempt failed: its socket closes and the race moves on.
    fn fail_attempt(&mut self, now: Instant, socket: SocketId, reason: FailureReason) {
        let Some(s) = self
            .sockets
            .get(socket)
            .filter(|s| s.linger_until.is_none())
        else {
            return;
        };
        let (conn, candidate) = (s.conn, s.candidate);
        // The attempt's TLS alert (a refused certificate, say) still goes
        // out, so the server can log why.
        self.close_after_alert(now, socket);
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.sockets.retain(|(_, x)| *x != socket);
        if let (Some(race), Some(candidate)) = (c.race_mut(), candidate) {
            race.on_failed(now, candidate, reason);
        }
        self.after_conn_change(now, conn);
    }

    pub(super) fn on_socket_data(&mut self, now: Instant, socket: SocketId, data: &[u8]) {
        if self.end_lingering(socket, false) {
            return;
        }
        let Some(s) = self.sockets.get_mut(socket) else {
            self.stats.stale_inputs += 1;
            return;
        };
        let conn = s.conn;
        let candidate = s.candidate;
        let result = s.stack.on_data(data);
        self.announce(socket);
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        let phase = (
            c.state,
            matches!(c.role, Role::Active(_)),
            c.socket == Some(socket),
        );
        match (phase, result) {
            ((ConnectionState::Establishing, true, _), Err(reason)) => {
                self.fail_attempt(now, socket, reason)
            }
            ((ConnectionState::Establishing, true, _), Ok(state)) => {
                self.attempt_progress(now, socket, candidate, state, false)
            }
            ((ConnectionState::Establishing, false, _), Err(reason)) => {
                self.fail_passive(now, conn, reason)
            }
            ((ConnectionState::Establishing, false, _), Ok(StackState::Ready)) => {
                self.passive_ready(now, conn)
            }
            ((ConnectionState::Establishing, false, _), Ok(_)) => {}
            ((ConnectionState::Established | ConnectionState::Closing, _, true), Err(reason)) => {
                self.connection_error(now, conn, reason)
            }
            ((ConnectionState::Established | ConnectionState::Closing, _, true), Ok(_)) => {
                self.deliver(now, conn)
            }
            _ => self.stats.stale_inputs += 1,
        }
        self.note_read_capacity(socket);
        self.purge_timers();
    }

    pub(super) fn on_socket_eof(&mut self, now: Instant, socket: SocketId) {
        if self.end_lingering(socket, false) {
            return;
        }
        let Some(s) = self.sockets.get_mut(socket) else {
            self.stats.stale_inputs += 1;
            return;
        };
        s.stack.peer_eof = true;
        let conn = s.conn;
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        match (
            c.state,
            matches!(c.role, Role::Active(_)),
            c.socket == Some(socket),
        ) {
            (ConnectionState::Establishing, true, _) => {
                self.fail_attempt(now, socket, FailureReason::PeerClosed)
            }
            (ConnectionState::Establishing, false, _) => {
                self.fail_passive(now, conn, FailureReason::PeerClosed)
            }
            (ConnectionState::Closing, _, true) => {
                self.deliver(now, conn);
                self.maybe_shutdown(now, conn);
            }
            (ConnectionState::Established, _, true) => self.deliver(now, conn),
            _ => self.stats.stale_inputs += 1,
        }
        self.purge_timers();
    }

    pub(super) fn on_socket_failed(
        &mut self,
        now: Instant,
        socket: SocketId,
        reason: FailureReason,
    ) {
        if self.end_lingering(socket, false) {
            return;
        }
        let Some(s) = self.sockets.get(socket) else {
            self.stats.stale_inputs += 1;
            return;
        };
        let conn = s.conn;
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        match (
            c.state,
            matches!(c.role, Role::Active(_)),
            c.socket == Some(socket),
        ) {
            (ConnectionState::Establishing, true, _) => self.fail_attempt(now, socket, reason),
            (ConnectionState::Establishing, false, _) => self.fail_passive(now, conn, reason),
            (ConnectionState::Established | ConnectionState::Closing, _, true) => {
                self.connection_error(now, conn, reason)
            }
            _ => self.stats.stale_inputs += 1,
        }
        self.purge_timers();
    }

    /// An established connection broke: its socket closes and
    /// `ConnectionError` is its last event. The id stays valid (state
    /// `Closed`) until the application calls `close`.
    fn connection_error(&mut self, now: Instant, conn: ConnectionId, reason: FailureReason) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.state = ConnectionState::Closed;
        c.close_deadline = None;
        c.trace_mut().record(now, TraceKind::Closed);
        if let Some(socket) = c.socket.take() {
            self.close_socket(socket);
        }
        self.emit(Event::ConnectionError { conn, reason });
        self.reschedule(conn);
    }

    /// Moves queued messages into the stack (RFC 9622 §9.2) and acts on what
    /// that produced.
    pub(super) fn pump(&mut self, now: Instant, conn: ConnectionId) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if !matches!(
            c.state,
            ConnectionState::Established | ConnectionState::Closing
        ) {
            return;
        }
        let Some(socket) = c.socket else { return };
        let Some(s) = self.sockets.get_mut(socket) else {
            return;
        };
        let mut events = Vec::new();
        c.io.pump(now, &mut s.stack, &mut events);
        self.apply_io_events(now, conn, events);
        self.announce(socket);
        self.maybe_shutdown(now, conn);
        self.reschedule(conn);
    }

    /// Decodes received bytes and answers receive requests.
    pub(super) fn deliver(&mut self, now: Instant, conn: ConnectionId) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let Some(socket) = c.socket else { return };
        let Some(s) = self.sockets.get_mut(socket) else {
            return;
        };
        let mut events = Vec::new();
        c.io.deliver(&mut s.stack, &mut events);
        self.apply_io_events(now, conn, events);
        self.note_read_capacity(socket);
    }

    pub(super) fn apply_io_events(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        events: Vec<IoEvent>,
    ) {
        for event in events {
            match event {
                IoEvent::Sent(message) => self.emit(Event::Sent { conn, message }),
                IoEvent::Expired(message) => self.emit(Event::Expired { conn, message }),
                IoEvent::SendError(message, error) => self.emit(Event::SendError {
                    conn,
                    message,
                    error,
                }),
                IoEvent::Received {
                    data,
                    end_of_message,
                    partial,
                } => {
                    if end_of_message && !partial {
                        self.emit(Event::Received { conn, data });
                    } else {
                        self.emit(Event::ReceivedPartial {
                            conn,
                            data,
                            end_of_message,
                        });
                    }
                }
                IoEvent::Readable => self.emit(Event::Readable { conn }),
                IoEvent::Writable => self.emit(Event::Writable { conn }),
                IoEvent::Finished => self.shutdown_write(conn),
                IoEvent::Failed(failure) => {
                    self.connection_error(now, conn, FailureReason::Framing(failure))
                }
            }
        }
    }

    /// Half-closes: close_notify is already queued; FIN follows the bytes.
    fn shutdown_write(&mut self, conn: ConnectionId) {
        let Some(socket) = self.conns.get(conn).and_then(|c| c.socket) else {
            return;
        };
        let Some(s) = self.sockets.get_mut(socket).filter(|s| !s.shut) else {
            return;
        };
        s.shut = true;
        self.announce(socket);
        self.outputs.push_back(Output::ShutdownWrite { socket });
    }

    /// A closing connection shuts its write side once its queue is empty,
    /// and is done once the peer has closed too.
    fn maybe_shutdown(&mut self, now: Instant, conn: ConnectionId) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        if c.state != ConnectionState::Closing {
            return;
        }
        let Some(socket) = c.socket else { return };
        let Some(s) = self.sockets.get_mut(socket) else {
            return;
        };
        // Everything queued is in the stack: close_notify, then FIN after
        // the bytes (the adapter writes `Transmit` data before shutting).
        if !s.shut && c.io.queue_is_empty() {
            s.stack.close_notify();
            self.shutdown_write(conn);
        }
        let detached = self.conns.get(conn).is_some_and(|c| c.detached);
        let done = self
            .sockets
            .get(socket)
            .is_some_and(|s| s.shut && s.stack.tx.is_empty() && (s.stack.peer_eof || detached));
        if done {
            self.finish_close(now, conn);
        }
    }

    /// The orderly close is complete (or timed out): `Closed`, and the id is
    /// freed.
    pub(super) fn finish_close(&mut self, now: Instant, conn: ConnectionId) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.trace_mut().record(now, TraceKind::Closed);
        if let Some(socket) = c.socket.take() {
            self.close_socket(socket);
        }
        self.emit(Event::Closed { conn });
        self.free_conn(conn);
    }

    /// RFC 9622 §9.2 `Send`. Before the connection is ready the message
    /// waits in the queue; `SendError::BufferFull` is back-pressure.
    pub(super) fn send(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        message: Message,
    ) -> Result<MessageId, SendError> {
        let c = self.sending_conn(conn)?;
        let id = c.io.enqueue(now, message)?;
        if c.state == ConnectionState::Established {
            self.pump(now, conn);
        } else {
            self.reschedule(conn);
        }
        self.purge_timers();
        Ok(id)
    }

    /// RFC 9622 §9.3 `Receive(minIncompleteLength, maxLength)`: one
    /// `Received` or `ReceivedPartial` will answer it.
    pub(super) fn receive(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        min_incomplete: usize,
        max_len: usize,
    ) -> Result<(), ReceiveError> {
        let Some(c) = self.conns.get_mut(conn) else {
            self.stats.stale_inputs += 1;
            return Err(ReceiveError::UnknownConnection);
        };
        if c.state == ConnectionState::Closed {
            return Err(ReceiveError::Closed);
        }
        if !c.io.request(min_incomplete, max_len) {
            return Err(ReceiveError::TooManyPending);
        }
        // Requests are answered from the buffer, so the adapter's socket
        // loop reads again (`deliver` owes it `ResumeReading`).
        c.io.reads_delegated = false;
        if c.state != ConnectionState::Establishing {
            self.deliver(now, conn);
        }
        Ok(())
    }

    /// Stream read: copies received bytes into `buf`. `Ok(0)` means the
    /// peer closed and everything was read.
    pub(super) fn read(
        &mut self,
        conn: ConnectionId,
        buf: &mut [u8],
    ) -> Result<usize, StreamError> {
        let c = self
            .conns
            .get_mut(conn)
            .ok_or(StreamError::UnknownConnection)?;
        if !matches!(
            c.state,
            ConnectionState::Established | ConnectionState::Closing
        ) {
            return Err(StreamError::NotEstablished);
        }
        let socket = c.socket.ok_or(StreamError::NotEstablished)?;
        let s = self
            .sockets
            .get_mut(socket)
            .ok_or(StreamError::NotEstablished)?;
        let n = c.io.read(&mut s.stack, buf);
        let eof = s.stack.peer_eof && s.stack.rx.is_empty();
        self.note_read_capacity(socket);
        match n {
            0 if eof || buf.is_empty() => Ok(0),
            0 => Err(StreamError::WouldBlock),
            n => Ok(n),
        }
    }

    /// Stream write: queues as much of `data` as fits; `WouldBlock` when
    /// nothing fits (wait for `Writable`).
    pub(super) fn write(&mut self, conn: ConnectionId, data: &[u8]) -> Result<usize, StreamError> {
        let c = self
            .conns
            .get_mut(conn)
            .ok_or(StreamError::UnknownConnection)?;
        if c.state != ConnectionState::Established || c.io.send_closed {
            return Err(StreamError::NotEstablished);
        }
        let socket = c.socket.ok_or(StreamError::NotEstablished)?;
        let s = self
            .sockets
            .get_mut(socket)
            .ok_or(StreamError::NotEstablished)?;
        let n = c.io.write(&mut s.stack, data);
        self.announce(socket);
        match n {
            0 if !data.is_empty() => Err(StreamError::WouldBlock),
            n => Ok(n),
        }
    }

    /// Pass-through for plain TCP streams: the socket an adapter may write
    /// the application's stream bytes to directly, saving their copy
    /// through the transmit queue, when that changes nothing anyone can
    /// see: the connection is established, has no TLS, and nothing of it
    /// waits to be written (queue and in-flight messages empty, no final
    /// message). The adapter reports what the socket took with
    /// [`Machine::wrote_through`]; when it took nothing, [`Machine::write`]
    /// as usual.
    pub(super) fn write_through(&self, conn: ConnectionId) -> Option<SocketId> {
        let c = self.conns.get(conn)?;
        if c.state != ConnectionState::Established || !c.io.idle_for_write_through() {
            return None;
        }
        let socket = c.socket?;
        let s = self.sockets.get(socket)?;
        (s.connected && s.stack.is_plain() && s.stack.tx.is_empty()).then_some(socket)
    }

    /// `n` stream bytes went straight to the socket of `conn` (see
    /// [`Machine::write_through`]): they count as written and transmitted.
    pub(super) fn wrote_through(&mut self, now: Instant, conn: ConnectionId, n: usize) {
        let Some(c) = self.conns.get_mut(conn) else {
            self.stats.stale_inputs += 1;
            return;
        };
        let Some(s) = c.socket.and_then(|id| self.sockets.get_mut(id)) else {
            self.stats.stale_inputs += 1;
            return;
        };
        s.stack.tx_total += n as u64;
        let mut events = Vec::new();
        c.io.on_transmitted(s.stack.tx_total, &mut events);
        self.apply_io_events(now, conn, events);
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
    pub(super) fn read_through(&self, conn: ConnectionId) -> Option<SocketId> {
        let socket = self.stream_socket_idle_for_reading(
            conn,
            &[ConnectionState::Established, ConnectionState::Closing],
        )?;
        self.sockets
            .get(socket)
            .is_some_and(|s| s.stack.is_plain())
            .then_some(socket)
    }

    /// Hands the reading of `conn`'s socket to the adapter's application
    /// side, for as long as [`Machine::read_through`] (or, with TLS,
    /// [`Machine::check_out_tls`]) would apply to an established
    /// connection: `read_capacity` is 0 meanwhile, so the
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
    pub(super) fn delegate_reading(&mut self, conn: ConnectionId) -> bool {
        let Some(socket) =
            self.stream_socket_idle_for_reading(conn, &[ConnectionState::Established])
        else {
            return false;
        };
        if let Some(c) = self.conns.get_mut(conn) {
            c.io.reads_delegated = true;
        }
        self.note_read_capacity(socket);
        true
    }

    /// Whether the application reads `conn`'s socket itself now (see
    /// [`Machine::delegate_reading`]).
    fn reads_delegated(&self, conn: ConnectionId) -> bool {
        self.conns.get(conn).is_some_and(|c| c.io.reads_delegated)
            && self
                .stream_socket_idle_for_reading(conn, &[ConnectionState::Established])
                .is_some()
    }

    /// The socket of `conn` when it is a stream (plain or TLS, no framer)
    /// in one of `states` with nothing buffered or requested on the
    /// receiving side and the peer not ended: what every pass-through rule
    /// asks (plain reads, delegated reading, TLS checkouts).
    pub(super) fn stream_socket_idle_for_reading(
        &self,
        conn: ConnectionId,
        states: &[ConnectionState],
    ) -> Option<SocketId> {
        let c = self.conns.get(conn)?;
        if !states.contains(&c.state) || !c.io.idle_for_read_through() {
            return None;
        }
        let socket = c.socket?;
        let s = self.sockets.get(socket)?;
        (s.connected
            && !s.stack.has_framer()
            && s.stack.rx.is_empty()
            && !s.stack.peer_eof
            && !s.stack.tls_peer_closed())
        .then_some(socket)
    }

    /// Whether [`Machine::send`] would accept a message of `len` bytes now,
    /// without handing it over: `SendError::BufferFull` is back-pressure,
    /// and `Writable` follows once the queue drains, so an adapter can keep
    /// the message and wait instead of losing it to a refused `send`.
    pub(super) fn check_send(&mut self, conn: ConnectionId, len: usize) -> Result<(), SendError> {
        self.sending_conn(conn)?.io.check_room(len)
    }

    /// `conn`, if it still takes messages (establishing or established);
    /// an unknown id counts as a stale input.
    fn sending_conn(&mut self, conn: ConnectionId) -> Result<&mut super::Conn, SendError> {
        let Some(c) = self.conns.get_mut(conn) else {
            self.stats.stale_inputs += 1;
            return Err(SendError::UnknownConnection);
        };
        if !matches!(
            c.state,
            ConnectionState::Establishing | ConnectionState::Established
        ) {
            return Err(SendError::NotOpen);
        }
        Ok(c)
    }

    /// RFC 9622 §10 `Close`: queued messages go out, then TLS close_notify
    /// and FIN; `Closed` follows once the peer has closed too (or after
    /// `close_timeout`). Closing a connection that is still establishing
    /// cancels its race; closing one that failed frees its id.
    pub(super) fn close(&mut self, now: Instant, conn: ConnectionId) {
        let Some(c) = self.conns.get_mut(conn) else {
            self.stats.stale_inputs += 1;
            return;
        };
        match c.state {
            ConnectionState::Establishing => {
                self.release_everything(conn, false);
                if let Some(c) = self.conns.get_mut(conn) {
                    c.trace_mut().record(now, TraceKind::Closed);
                }
                self.emit(Event::Closed { conn });
                self.free_conn(conn);
            }
            ConnectionState::Established => {
                c.state = ConnectionState::Closing;
                c.io.send_closed = true;
                // The machine must see the peer's end now: the adapter's
                // socket loop reads again.
                c.io.reads_delegated = false;
                if let Some(socket) = c.socket {
                    self.note_read_capacity(socket);
                }
                let Some(c) = self.conns.get_mut(conn) else {
                    return;
                };
                c.close_deadline = Some(now + self.config.close_timeout);
                self.pump(now, conn);
                self.maybe_shutdown(now, conn);
                self.reschedule(conn);
            }
            ConnectionState::Closing => {}
            ConnectionState::Closed => {
                self.free_conn(conn);
            }
        }
        self.purge_timers();
    }

    /// The application let go of a closing connection (dropped its handle
    /// after `close`): nobody waits for `Closed`, so the orderly close ends
    /// as soon as everything queued is written and the FIN is due, and the
    /// socket is closed without waiting for the peer's end. The system
    /// finishes the close, as for a dropped `TcpStream`; waiting for the
    /// peer would hold the socket (and a task) for nothing anyone sees.
    pub(super) fn detach(&mut self, now: Instant, conn: ConnectionId) {
        let Some(c) = self.conns.get_mut(conn) else {
            self.stats.stale_inputs += 1;
            return;
        };
        if c.state == ConnectionState::Closing {
            c.detached = true;
            self.maybe_shutdown(now, conn);
            self.purge_timers();
        }
    }

    /// RFC 9622 §10 `Abort`: every socket is reset and
    /// `ConnectionError("local abort")` is the last event. The id is freed.
    pub(super) fn abort(&mut self, now: Instant, conn: ConnectionId) {
        if !self.conns.contains(conn) {
            self.stats.stale_inputs += 1;
            return;
        }
        self.release_everything(conn, true);
        self.record(conn, now, TraceKind::Closed);
        self.emit(Event::ConnectionError {
            conn,
            reason: FailureReason::LocalAbort,
        });
        self.free_conn(conn);
        self.purge_timers();
    }

    /// Frees a connection's id. It leaves its DNS transactions, and those
    /// nobody else waits for (lingering ones too, after its race settled)
    /// are released with it: nothing only it owned outlives it (found by
    /// fuzzing).
    pub(super) fn free_conn(&mut self, conn: ConnectionId) {
        if let Some(c) = self.conns.remove(conn) {
            let txns: SmallVec<[DnsTxnId; 3]> = c.dns.iter().map(|d| d.2).collect();
            self.resolver.leave(conn, &txns);
            self.flush_dns_actions();
        }
    }

    /// Closes every socket and DNS transaction of `conn`.
    fn release_everything(&mut self, conn: ConnectionId, abort: bool) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let txns: SmallVec<[DnsTxnId; 3]> = c.dns.iter().map(|d| d.2).collect();
        let mut sockets: SmallVec<[SocketId; 4]> = c.sockets.drain(..).map(|(_, s)| s).collect();
        sockets.extend(c.socket.take());
        self.resolver.leave(conn, &txns);
        self.flush_dns_actions();
        for socket in sockets {
            if self.sockets.remove(socket).is_some() {
                self.outputs.push_back(if abort {
                    Output::AbortSocket { socket }
                } else {
                    Output::CloseSocket { socket }
                });
            }
        }
    }
}
