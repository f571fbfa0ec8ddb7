//! The two sides of a socket in memory, and the stream read and write an
//! adapter does through a checked-out TLS session
//! (`Machine::check_out_tls`), so tests drive one without a socket: the fuzz
//! targets and the in-memory network ([`crate::net`]) use them.

use std::collections::VecDeque;
use std::io;

use taps_core::{CheckedOutTls, TlsRead};

/// A socket's sending side that takes `room` more bytes, then would block.
#[derive(Debug, Default)]
pub struct LimitedWire {
    /// What it took, in order.
    pub taken: Vec<u8>,
    /// How many more bytes it takes.
    pub room: usize,
}

impl io::Write for LimitedWire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        self.taken.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How the peer ended its side, as a read meets it once the bytes are out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireEnd {
    /// Not yet: a read would block.
    Open,
    /// FIN: a read returns 0.
    Fin,
    /// RST: a read fails with `ConnectionReset`.
    Reset,
}

/// A socket's receiving side: the bytes delivered to it, then its end.
#[derive(Debug)]
pub struct QueueWire<'a> {
    /// Bytes delivered and not read yet.
    pub queue: &'a mut VecDeque<u8>,
    /// What follows them.
    pub end: WireEnd,
    /// A read met the end.
    pub ended: bool,
}

impl io::Read for QueueWire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.queue.is_empty() {
            let n = buf.len().min(self.queue.len());
            for (slot, b) in buf.iter_mut().zip(self.queue.drain(..n)) {
                *slot = b;
            }
            return Ok(n);
        }
        match self.end {
            WireEnd::Open => Err(io::ErrorKind::WouldBlock.into()),
            WireEnd::Fin => {
                self.ended = true;
                Ok(0)
            }
            WireEnd::Reset => {
                self.ended = true;
                Err(io::ErrorKind::ConnectionReset.into())
            }
        }
    }
}

/// What one stream read or write through a checked-out TLS session did,
/// as an adapter sees it (`taps-io` does the same over real sockets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Through {
    /// Read: this many plaintext bytes are in the buffer. Write: this
    /// many plaintext bytes were taken.
    Done(usize),
    /// Nothing to read yet, or the wire is full with earlier records.
    WouldBlock,
    /// The peer's data ended or TLS failed; the machine hears it at
    /// check-in.
    Ended,
}

/// A stream read through `session`: records from `wire` until some
/// plaintext fills `buf`.
pub fn read_through(
    session: &mut CheckedOutTls,
    wire: &mut impl io::Read,
    buf: &mut [u8],
) -> io::Result<Through> {
    loop {
        match session.read(buf) {
            TlsRead::Data(n) => return Ok(Through::Done(n)),
            TlsRead::Ended => return Ok(Through::Ended),
            TlsRead::NeedsRecords => {}
        }
        match wire.read(session.record_space()) {
            Ok(n) => session.records_read(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Through::WouldBlock),
            Err(e) => return Err(e),
        }
    }
}

/// A stream write through `session`: the records owed first (nothing new
/// is taken while any wait), then `data` encrypted and written as far as
/// `wire` takes it.
pub fn write_through(
    session: &mut CheckedOutTls,
    wire: &mut impl io::Write,
    data: &[u8],
) -> io::Result<Through> {
    if !send_records(session, wire)? {
        return Ok(Through::WouldBlock);
    }
    let taken = session.encrypt(data);
    send_records(session, wire)?;
    Ok(Through::Done(taken))
}

fn send_records(session: &mut CheckedOutTls, wire: &mut impl io::Write) -> io::Result<bool> {
    while !session.records_to_send().is_empty() {
        match wire.write(session.records_to_send()) {
            Ok(0) => return Ok(false),
            Ok(n) => session.records_sent(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
