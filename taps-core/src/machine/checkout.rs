//! TLS stream pass-through: an established TLS stream's session checked
//! out of the machine, so the application's stream read or write runs its
//! crypto and its socket call where the application runs it, not inside
//! whatever guards the machine (RFC 9622 §9.2-§9.3 for the stream; RFC
//! 8446 §5 for the records).
//!
//! This is the TLS counterpart of the plain pass-through
//! ([`ConnectionInfo::write_through`](crate::ConnectionInfo::write_through),
//! [`ConnectionInfo::read_through`](crate::ConnectionInfo::read_through)): one machine
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

use super::{ConnectionState, Machine};
use crate::id::{ConnectionId, SocketId};
use crate::stack::tls::{Plaintext, TlsSession};
use crate::time::Instant;
use crate::trace::{FailureReason, TlsFailure};

/// What a checkout is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsCheckout {
    /// A stream read: reading the socket is delegated to the application
    /// (as [`ConnectionView::delegate_reading`](super::ConnectionView::delegate_reading)
    /// does for plain streams), so the adapter's socket loop keeps off it
    /// until a receive or close.
    Read,
    /// A stream write: the wire bytes waiting go with the session and are
    /// written before any new record.
    Write,
}

/// An established TLS stream's session, checked out by
/// [`ConnectionView::check_out_tls`](super::ConnectionView::check_out_tls);
/// give it back with [`Input::TlsCheckIn`](super::Input::TlsCheckIn)
/// before waiting on anything.
///
/// It never touches a socket: the adapter moves the bytes. Reading:
/// [`CheckedOutTls::read`] gives plaintext, or asks for records, which the
/// adapter reads from the socket into [`CheckedOutTls::record_space`] and
/// reports with [`CheckedOutTls::records_read`]. Writing:
/// [`CheckedOutTls::encrypt`] turns plaintext into records, which the
/// adapter writes from [`CheckedOutTls::records_to_send`] and reports with
/// [`CheckedOutTls::records_sent`]. Whatever it leaves (records not sent,
/// ciphertext not yet decrypted) goes back to the machine at check-in, so
/// no byte is lost however the adapter goes on.
pub struct CheckedOutTls {
    conn: ConnectionId,
    socket: SocketId,
    tls: Box<TlsSession>,
    /// Records owed to the socket, from `outgoing_sent` on: the wire bytes
    /// that waited at checkout, then this checkout's.
    outgoing: Vec<u8>,
    outgoing_sent: usize,
    /// Ciphertext from the socket: `incoming[incoming_fed..incoming_filled]`
    /// is not yet handed to rustls.
    incoming: Vec<u8>,
    incoming_fed: usize,
    incoming_filled: usize,
    /// Record bytes this checkout made (written or not): they join the
    /// stream's transmit count at check-in.
    encrypted: u64,
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
            .field("outgoing", &(self.outgoing.len() - self.outgoing_sent))
            .field("incoming", &(self.incoming_filled - self.incoming_fed))
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
enum ReadEnd {
    /// The socket's read returned 0.
    Eof,
    /// The peer's close_notify: plaintext ends, the FIN follows.
    CloseNotify,
    /// Boxed: a failure carries its names and dates inline, and a checked
    /// out session (moved on every checkout) should stay small; this
    /// allocates only when the session fails.
    Failed(Box<TlsFailure>),
}

/// What [`CheckedOutTls::read`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsRead {
    /// This many plaintext bytes are in the buffer.
    Data(usize),
    /// Nothing decrypted waits: read records from the socket into
    /// [`CheckedOutTls::record_space`] (or wait until it is readable).
    NeedsRecords,
    /// The peer's data ended (close_notify, FIN) or TLS failed: check the
    /// session in and read on through the machine, which now knows.
    Ended,
}

/// How much ciphertext one socket read may bring: one TLS record at its
/// largest on the wire (RFC 8446 §5.2: 2^14 bytes of plaintext, 256 of
/// expansion, a 5-byte header), so one read feeds rustls one record's
/// worth, as rustls's own reads do.
const RECORD_READ: usize = (1 << 14) + 256 + 5;

/// Record buffers the machine keeps for checkouts, so a stream read or
/// write allocates none; one per checkout at a time is in use.
pub(super) const MAX_POOLED_BUFFERS: usize = 64;

/// A pooled buffer larger than this is dropped instead of kept (one large
/// write should not pin its memory).
const MAX_POOLED_CAPACITY: usize = 4 * RECORD_READ;

impl CheckedOutTls {
    /// The socket this session's records go over.
    pub fn socket(&self) -> SocketId {
        self.socket
    }

    /// The connection it belongs to.
    pub fn connection(&self) -> ConnectionId {
        self.conn
    }

    /// Copies decrypted bytes into `buf` (not empty), decrypting records
    /// already read first.
    pub fn read(&mut self, buf: &mut [u8]) -> TlsRead {
        loop {
            if self.ended.is_some() {
                return TlsRead::Ended;
            }
            match self.tls.read_plaintext(buf) {
                Plaintext::Data(n) => return TlsRead::Data(n),
                Plaintext::Closed => {
                    self.ended = Some(ReadEnd::CloseNotify);
                    continue;
                }
                Plaintext::Empty => {}
            }
            if self.incoming_fed == self.incoming_filled {
                return TlsRead::NeedsRecords;
            }
            let unfed = &self.incoming[self.incoming_fed..self.incoming_filled];
            match self.tls.feed_records(unfed) {
                // rustls takes nothing after the peer's close_notify; RFC
                // 8446 §6.1 says to ignore what follows it.
                Ok(0) => self.incoming_fed = self.incoming_filled,
                Ok(n) => {
                    self.incoming_fed += n;
                    if let Err(failure) = self.tls.process_records() {
                        self.ended = Some(ReadEnd::Failed(Box::new(failure)));
                    }
                }
                // rustls refuses records it cannot buffer (a hostile
                // length, say): the session's failure, not the socket's.
                Err(_) => self.ended = Some(ReadEnd::Failed(Box::new(TlsFailure::ProtocolError))),
            }
        }
    }

    /// Where the next socket read goes: room for one record's worth of
    /// ciphertext. Report what the read brought with
    /// [`CheckedOutTls::records_read`].
    pub fn record_space(&mut self) -> &mut [u8] {
        if self.incoming_fed > 0 {
            self.incoming
                .copy_within(self.incoming_fed..self.incoming_filled, 0);
            self.incoming_filled -= self.incoming_fed;
            self.incoming_fed = 0;
        }
        let want = self.incoming_filled + RECORD_READ;
        if self.incoming.len() < want {
            self.incoming.resize(want, 0);
        }
        &mut self.incoming[self.incoming_filled..want]
    }

    /// The socket read `n` bytes into [`CheckedOutTls::record_space`];
    /// `0` is the peer's FIN.
    pub fn records_read(&mut self, n: usize) {
        if n == 0 {
            self.ended.get_or_insert(ReadEnd::Eof);
            return;
        }
        self.incoming_filled = (self.incoming_filled + n).min(self.incoming.len());
    }

    /// Encrypts as much of `data` as one write takes, appending its records
    /// to [`CheckedOutTls::records_to_send`]; returns how many plaintext
    /// bytes it took. Those count as written whatever happens to the
    /// records: what the socket does not take goes to the machine at
    /// check-in, and the machine's loop writes it.
    pub fn encrypt(&mut self, data: &[u8]) -> usize {
        let take = data.len().min(self.max_write);
        self.tls.send(&data[..take]);
        let before = self.outgoing.len();
        self.tls.take_records(&mut self.outgoing);
        self.encrypted += (self.outgoing.len() - before) as u64;
        take
    }

    /// The records the socket should take next, in order: the wire bytes
    /// that waited at checkout, then what [`CheckedOutTls::encrypt`] made.
    pub fn records_to_send(&self) -> &[u8] {
        &self.outgoing[self.outgoing_sent..]
    }

    /// The socket took `n` bytes of [`CheckedOutTls::records_to_send`].
    pub fn records_sent(&mut self, n: usize) {
        let n = n.min(self.outgoing.len() - self.outgoing_sent);
        self.outgoing_sent += n;
        if self.outgoing_sent == self.outgoing.len() {
            self.outgoing.clear();
            self.outgoing_sent = 0;
        }
    }
}

impl Machine {
    /// See [`ConnectionView::check_out_tls`](super::ConnectionView::check_out_tls).
    pub(super) fn check_out_tls(
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
        let (tls, waiting) = s.stack.check_out_tls(purpose == TlsCheckout::Write)?;
        if purpose == TlsCheckout::Read {
            c.io.reads_delegated = true;
            self.note_read_capacity(socket);
        }
        let outgoing = if waiting.is_empty() {
            self.tls_buffers.pop().unwrap_or_default()
        } else {
            Vec::from(waiting)
        };
        let incoming = match purpose {
            TlsCheckout::Read => self.tls_buffers.pop().unwrap_or_default(),
            TlsCheckout::Write => Vec::new(),
        };
        Some(CheckedOutTls {
            conn,
            socket,
            tls,
            outgoing,
            outgoing_sent: 0,
            incoming,
            incoming_fed: 0,
            incoming_filled: 0,
            encrypted: 0,
            max_write: self.config.io.transmit_high_water.max(1),
            ended: None,
        })
    }

    /// Keeps a checkout's buffer for the next one, within the pool's
    /// bounds.
    fn recycle_tls_buffer(&mut self, mut buffer: Vec<u8>) {
        if buffer.capacity() == 0
            || buffer.capacity() > MAX_POOLED_CAPACITY
            || self.tls_buffers.len() >= MAX_POOLED_BUFFERS
        {
            return;
        }
        buffer.clear();
        self.tls_buffers.push(buffer);
    }

    /// [`Input::TlsCheckIn`](super::Input::TlsCheckIn).
    pub(super) fn check_in_tls(&mut self, now: Instant, session: CheckedOutTls) {
        let CheckedOutTls {
            conn,
            socket,
            tls,
            mut outgoing,
            outgoing_sent,
            incoming,
            incoming_fed,
            incoming_filled,
            encrypted,
            ended,
            ..
        } = session;
        let Some(s) = self.sockets.get_mut(socket) else {
            self.stats.stale_inputs += 1;
            return;
        };
        let unsent = if outgoing_sent < outgoing.len() {
            outgoing.drain(..outgoing_sent);
            VecDeque::from(core::mem::take(&mut outgoing))
        } else {
            VecDeque::new()
        };
        let unread = incoming
            .get(incoming_fed..incoming_filled)
            .unwrap_or_default();
        let held = s.stack.check_in_tls(tls, unsent, encrypted, unread);
        self.recycle_tls_buffer(outgoing);
        self.recycle_tls_buffer(incoming);
        let Some(s) = self.sockets.get_mut(socket) else {
            return;
        };
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
            Some(ReadEnd::Failed(ref f)) => Some(FailureReason::Tls(**f)),
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
