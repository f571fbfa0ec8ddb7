//! TLS stream pass-through: an established TLS stream's session checked
//! out of the machine, so the application's stream read or write runs its
//! crypto and its socket call where the application runs it, not inside
//! whatever guards the machine (RFC 9622 §9.2-§9.3 for the stream; RFC
//! 8446 §5 for the records).
//!
//! This is the TLS counterpart of the plain pass-through
//! ([`Machine::write_through`], [`Machine::read_through`]): one machine
//! serves many connections, and without it every connection's encryption
//! and decryption would run one at a time under the adapter's lock. The
//! rule that keeps it invisible: a session is checked out only when
//! nothing the machine holds for the connection depends on it (nothing
//! decrypted waiting, no receive request; for a write, nothing queued to
//! send and the write side open), and anything that reaches the stack
//! meanwhile is held and applied in order at check-in
//! (`Stack::check_in_tls`). The adapter checks a session out for one read
//! or one write and back in before it waits, so the machine sees the
//! connection whole between calls.

use std::collections::VecDeque;
use std::io;

use super::{ConnectionState, Machine};
use crate::id::{ConnectionId, SocketId};
use crate::stack::tls::{Plaintext, TlsSession};
use crate::time::Instant;
use crate::trace::{FailureReason, TlsFailure};

/// What a checkout is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsCheckout {
    /// A stream read: reading the socket is delegated to the application
    /// (as [`Machine::delegate_reading`] does for plain streams), so the
    /// adapter's socket loop keeps off it until a receive or close.
    Read,
    /// A stream write: the wire bytes waiting go with the session and are
    /// written before any new record.
    Write,
}

/// An established TLS stream's session, checked out by
/// [`Machine::check_out_tls`]; give it back with [`Machine::check_in_tls`]
/// before waiting on anything.
pub struct CheckedOutTls {
    conn: ConnectionId,
    socket: SocketId,
    tls: Box<TlsSession>,
    /// Wire bytes owed to the socket before any new record (a write's).
    pending: VecDeque<u8>,
    /// Record bytes written straight to the socket.
    written: u64,
    /// The most plaintext one write takes (`IoLimits::transmit_high_water`,
    /// as a write through the machine).
    max_write: usize,
    /// How reading ended, for the machine to hear at check-in.
    ended: Option<ReadEnd>,
}

impl core::fmt::Debug for CheckedOutTls {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CheckedOutTls")
            .field("conn", &self.conn)
            .field("socket", &self.socket)
            .field("pending", &self.pending.len())
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug)]
enum ReadEnd {
    /// The socket's read returned 0.
    Eof,
    /// The peer's close_notify: plaintext ends, the FIN follows.
    CloseNotify,
    Failed(TlsFailure),
}

/// What [`CheckedOutTls::read`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsRead {
    /// This many plaintext bytes are in the buffer.
    Data(usize),
    /// Nothing yet: wait until the socket is readable.
    WouldBlock,
    /// The peer's data ended (close_notify, FIN) or TLS failed: check the
    /// session in and read on through the machine, which now knows.
    Ended,
}

/// What [`CheckedOutTls::write`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsWrite {
    /// This many plaintext bytes were taken (their records are written or
    /// go to the machine at check-in).
    Accepted(usize),
    /// The socket is full with earlier records: wait until it is writable.
    WouldBlock,
}

impl CheckedOutTls {
    /// The socket this session's records go over.
    pub fn socket(&self) -> SocketId {
        self.socket
    }

    /// The connection it belongs to.
    pub fn connection(&self) -> ConnectionId {
        self.conn
    }

    /// Reads records from `wire` until some plaintext fills `buf` (not
    /// empty).
    ///
    /// # Errors
    ///
    /// The socket's own errors; report them to the machine after check-in
    /// (`Input::SocketFailed`).
    pub fn read(&mut self, wire: &mut dyn io::Read, buf: &mut [u8]) -> io::Result<TlsRead> {
        loop {
            if self.ended.is_some() {
                return Ok(TlsRead::Ended);
            }
            match self.tls.read_plaintext(buf) {
                Plaintext::Data(n) => return Ok(TlsRead::Data(n)),
                Plaintext::Closed => {
                    self.ended = Some(ReadEnd::CloseNotify);
                    continue;
                }
                Plaintext::Empty => {}
            }
            match self.tls.read_records(wire) {
                Ok(0) => self.ended = Some(ReadEnd::Eof),
                Ok(_) => {
                    if let Err(failure) = self.tls.process_records() {
                        self.ended = Some(ReadEnd::Failed(failure));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(TlsRead::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // rustls refuses records it cannot buffer (a hostile
                // length, say): the session's failure, not the socket's.
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    self.ended = Some(ReadEnd::Failed(TlsFailure::ProtocolError));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Encrypts as much of `data` as one write takes and writes the records to
    /// `wire`, after any bytes still owed to it. What the socket does not
    /// take goes to the machine at check-in (its loop writes it), so taken
    /// bytes are never lost however the caller goes on.
    ///
    /// # Errors
    ///
    /// The socket's own errors (report them after check-in). Bytes taken
    /// before the error count as taken: the connection is failing anyway.
    pub fn write(&mut self, wire: &mut dyn io::Write, data: &[u8]) -> io::Result<TlsWrite> {
        while !self.pending.is_empty() {
            match wire.write(self.pending.as_slices().0) {
                Ok(0) => return Ok(TlsWrite::WouldBlock),
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(TlsWrite::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let take = data.len().min(self.max_write);
        self.tls.send(&data[..take]);
        while self.tls.wants_write() {
            match self.tls.write_records(wire) {
                Ok(0) => break,
                Ok(n) => self.written += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(TlsWrite::Accepted(take))
    }
}

impl Machine {
    /// Checks `conn`'s TLS session out for one stream read or write outside
    /// the machine (see the module docs), when the connection is an
    /// established TLS stream (no framer) and nothing the machine holds
    /// depends on the session: nothing decrypted or requested on the
    /// receiving side, the peer not ended; for [`TlsCheckout::Write`],
    /// nothing queued to send and the write side open. `None` otherwise:
    /// go through [`Machine::read`] and [`Machine::write`].
    pub fn check_out_tls(
        &mut self,
        conn: ConnectionId,
        purpose: TlsCheckout,
    ) -> Option<CheckedOutTls> {
        let socket = self.stream_socket_idle_for_reading(conn, &[ConnectionState::Established])?;
        let c = self.conns.get_mut(conn)?;
        let s = self.sockets.get_mut(socket)?;
        if purpose == TlsCheckout::Write && (s.shut || !c.io.idle_for_write_through()) {
            return None;
        }
        let (tls, pending) = s.stack.check_out_tls(purpose == TlsCheckout::Write)?;
        if purpose == TlsCheckout::Read {
            c.io.reads_delegated = true;
            self.note_read_capacity(socket);
        }
        Some(CheckedOutTls {
            conn,
            socket,
            tls,
            pending,
            written: 0,
            max_write: self.config.io.transmit_high_water.max(1),
            ended: None,
        })
    }

    /// Puts a checked-out session back and acts on what its read or write
    /// did: records written count as transmitted, records left over go to
    /// the transmit queue (`Transmit`), decrypted bytes beyond the
    /// caller's buffer go to the receive buffer, and the end of the peer's
    /// data or a TLS failure is handled as if the socket's loop had met
    /// it. A session whose socket is gone meanwhile is dropped.
    pub fn check_in_tls(&mut self, now: Instant, session: CheckedOutTls) {
        let CheckedOutTls {
            conn,
            socket,
            tls,
            pending,
            written,
            ended,
            ..
        } = session;
        let Some(s) = self.sockets.get_mut(socket) else {
            self.stats.stale_inputs += 1;
            return;
        };
        let held = s.stack.check_in_tls(tls, pending, written);
        // Everything is accounted again: a `Transmit` owed is announced
        // anew (the checkout may have taken the bytes it was for).
        s.announced = false;
        let offset = s.stack.tx_total - s.stack.tx.len() as u64;
        let is_current = self
            .conns
            .get(conn)
            .is_some_and(|c| c.socket == Some(socket));
        if is_current {
            let mut events = Vec::new();
            if let (Some(c), Some(s)) = (self.conns.get_mut(conn), self.sockets.get(socket)) {
                c.io.on_transmitted(offset, &mut events);
                c.io.on_drained(&s.stack, &mut events);
            }
            self.apply_io_events(now, conn, events);
        }
        self.announce(socket);
        let failure = match ended {
            Some(ReadEnd::Failed(f)) => Some(FailureReason::Tls(f)),
            _ => held.err(),
        };
        match (failure, ended) {
            (Some(reason), _) => self.on_socket_failed(now, socket, reason),
            (None, Some(ReadEnd::Eof)) => self.on_socket_eof(now, socket),
            (None, _) if is_current => self.deliver(now, conn),
            (None, _) => {}
        }
        self.note_read_capacity(socket);
        self.purge_timers();
    }
}
