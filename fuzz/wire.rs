//! The two sides of a socket in memory, for driving a checked-out TLS
//! session (`Machine::check_out_tls`) the way an adapter does, without a
//! socket. Shared through `#[path]` by the fuzz targets (`fuzz/src/lib.rs`)
//! and taps-core's in-memory test network (`tests/support/net.rs`).
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::io;

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
