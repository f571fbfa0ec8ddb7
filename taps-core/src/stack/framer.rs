//! Message framers (RFC 9622 §9.1.2, RFC 9623 §6): turning a byte stream
//! into messages and back, as a layer of an attempt's protocol stack.
//!
//! A [`Framer`] may hold the connection until its own handshake is done
//! (`start`/`handshake` return [`Progress::Pending`]), may fail the attempt
//! (an error during the handshake fails that attempt only and racing moves
//! on, RFC 9623 §6.1), and may step aside once its job is done
//! ([`Framer::passthrough`]).
//!
//! Decoding never allocates: it reports where the next message lies inside
//! the buffered bytes, so a length prefix that claims 4 GiB costs nothing but
//! an error (the limit is checked before anything is buffered for it).

use core::fmt;
use std::sync::Arc;

use crate::trace::FramingFailure;

/// Where a framer stands with its own handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Ready: messages may flow.
    Ready,
    /// Still handshaking: hold the connection.
    Pending,
}

/// What the framer found at the front of the received bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole message: skip `header` bytes, take `len` bytes of message,
    /// then drop `trailer` bytes of framing.
    Message {
        /// Framing bytes before the message.
        header: usize,
        /// Message bytes.
        len: usize,
        /// Framing bytes after the message.
        trailer: usize,
    },
    /// Not enough bytes yet.
    NeedMore,
}

/// A message framer: one instance per connection (and per attempt).
pub trait Framer: Send {
    /// A short name for traces and errors.
    fn name(&self) -> &'static str;

    /// The largest message it will encode or decode.
    fn max_message_size(&self) -> usize;

    /// The layer below is ready. Queue handshake bytes into `out` and say
    /// whether the framer is ready too.
    fn start(&mut self, out: &mut Vec<u8>) -> Result<Progress, FramingFailure> {
        let _ = out;
        Ok(Progress::Ready)
    }

    /// While pending: consume handshake bytes from the front of `input`,
    /// queue replies into `out`, and report how many bytes were consumed and
    /// where the handshake stands.
    fn handshake(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(usize, Progress), FramingFailure> {
        let _ = (input, out);
        Ok((0, Progress::Ready))
    }

    /// Appends the framed form of `message` to `out`.
    fn encode(&mut self, message: &[u8], out: &mut Vec<u8>) -> Result<(), FramingFailure>;

    /// Looks for the next whole message at the front of `input`.
    fn decode(&mut self, input: &[u8]) -> Result<Decoded, FramingFailure>;

    /// Once true, bytes pass through unchanged in both directions and the
    /// connection behaves as a byte stream.
    fn passthrough(&self) -> bool {
        false
    }
}

/// Makes one framer per connection.
#[derive(Clone)]
pub struct FramerFactory(Arc<dyn Fn() -> Box<dyn Framer> + Send + Sync>);

impl fmt::Debug for FramerFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FramerFactory(")?;
        f.write_str(self.make().name())?;
        f.write_str(")")
    }
}

impl FramerFactory {
    /// A factory from any constructor.
    pub fn new(make: impl Fn() -> Box<dyn Framer> + Send + Sync + 'static) -> Self {
        FramerFactory(Arc::new(make))
    }

    /// A fresh framer.
    pub fn make(&self) -> Box<dyn Framer> {
        (self.0)()
    }

    /// u32 big-endian length prefix, messages of at most `max` bytes.
    pub fn length_prefixed(max: u32) -> Self {
        FramerFactory::new(move || Box::new(LengthPrefixed::new(max)))
    }

    /// Newline-delimited lines of at most `max` bytes (the newline excluded).
    pub fn lines(max: usize) -> Self {
        FramerFactory::new(move || Box::new(Delimited::new(b"\n".to_vec(), max)))
    }

    /// Messages separated by `delimiter`, at most `max` bytes each.
    pub fn delimited(delimiter: Vec<u8>, max: usize) -> Self {
        FramerFactory::new(move || Box::new(Delimited::new(delimiter.clone(), max)))
    }
}

/// The default message size limit of the built-in framers: 16 MiB.
pub const DEFAULT_MAX_MESSAGE: u32 = 16 * 1024 * 1024;

/// A u32 big-endian length, then the message.
#[derive(Clone, Debug)]
pub struct LengthPrefixed {
    max: u32,
}

impl LengthPrefixed {
    /// Messages of at most `max` bytes.
    pub fn new(max: u32) -> Self {
        LengthPrefixed { max }
    }
}

impl Framer for LengthPrefixed {
    fn name(&self) -> &'static str {
        "length-prefixed"
    }

    fn max_message_size(&self) -> usize {
        self.max as usize
    }

    fn encode(&mut self, message: &[u8], out: &mut Vec<u8>) -> Result<(), FramingFailure> {
        let len = u32::try_from(message.len())
            .ok()
            .filter(|l| *l <= self.max)
            .ok_or(FramingFailure::TooLarge {
                size: message.len() as u64,
                limit: u64::from(self.max),
            })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(message);
        Ok(())
    }

    fn decode(&mut self, input: &[u8]) -> Result<Decoded, FramingFailure> {
        let Some(prefix) = input.get(..4) else {
            return Ok(Decoded::NeedMore);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        // Checked before a single byte of the claimed frame is buffered.
        if len > self.max {
            return Err(FramingFailure::TooLarge {
                size: u64::from(len),
                limit: u64::from(self.max),
            });
        }
        if input.len() - 4 < len as usize {
            return Ok(Decoded::NeedMore);
        }
        Ok(Decoded::Message {
            header: 4,
            len: len as usize,
            trailer: 0,
        })
    }
}

/// Messages each followed by a delimiter (lines, for example).
#[derive(Clone, Debug)]
pub struct Delimited {
    delimiter: Vec<u8>,
    max: usize,
    /// How far the last decode searched without finding the delimiter, so
    /// a long message arriving in small pieces is scanned once, not again
    /// from the start for every piece.
    scanned: usize,
}

impl Delimited {
    /// Messages of at most `max` bytes separated by `delimiter` (which must
    /// not be empty; an empty one is replaced by `\n`).
    pub fn new(delimiter: Vec<u8>, max: usize) -> Self {
        let delimiter = if delimiter.is_empty() {
            b"\n".to_vec()
        } else {
            delimiter
        };
        Delimited {
            delimiter,
            max,
            scanned: 0,
        }
    }
}

impl Framer for Delimited {
    fn name(&self) -> &'static str {
        "delimited"
    }

    fn max_message_size(&self) -> usize {
        self.max
    }

    fn encode(&mut self, message: &[u8], out: &mut Vec<u8>) -> Result<(), FramingFailure> {
        if message.len() > self.max {
            return Err(FramingFailure::TooLarge {
                size: message.len() as u64,
                limit: self.max as u64,
            });
        }
        if message
            .windows(self.delimiter.len())
            .any(|w| w == self.delimiter.as_slice())
        {
            return Err(FramingFailure::Malformed(
                "the message contains the delimiter",
            ));
        }
        out.extend_from_slice(message);
        out.extend_from_slice(&self.delimiter);
        Ok(())
    }

    fn decode(&mut self, input: &[u8]) -> Result<Decoded, FramingFailure> {
        let d = self.delimiter.len();
        // Resume where the last search stopped, minus a delimiter's worth in
        // case it straddled the old end.
        let from = self.scanned.saturating_sub(d - 1).min(input.len());
        // Search no further than a maximal message plus its delimiter.
        let window_end = input.len().min(self.max.saturating_add(d));
        let found = input[from..window_end]
            .windows(d)
            .position(|w| w == self.delimiter.as_slice())
            .map(|p| p + from);
        match found {
            Some(at) => {
                self.scanned = 0;
                Ok(Decoded::Message {
                    header: 0,
                    len: at,
                    trailer: d,
                })
            }
            None if input.len() > self.max.saturating_add(d - 1) => Err(FramingFailure::TooLarge {
                size: input.len() as u64,
                limit: self.max as u64,
            }),
            None => {
                self.scanned = input.len();
                Ok(Decoded::NeedMore)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes every message in `stream` fed in `chunks`, as the connection
    /// layer does: buffer, decode, drop what was consumed.
    fn decode_chunked(
        framer: &mut dyn Framer,
        stream: &[u8],
        chunks: &[usize],
    ) -> Result<Vec<Vec<u8>>, FramingFailure> {
        let mut buffer = Vec::new();
        let mut out = Vec::new();
        let mut rest = stream;
        let mut sizes = chunks.iter().cycle();
        while !rest.is_empty() {
            let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
            buffer.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Decoded::Message {
                header,
                len,
                trailer,
            } = framer.decode(&buffer)?
            {
                out.push(buffer[header..header + len].to_vec());
                buffer.drain(..header + len + trailer);
            }
        }
        Ok(out)
    }

    #[test]
    fn length_prefix_over_the_limit_fails_without_buffering_the_claim() {
        // RFC 9622 §9.1.2: a framer can fail the connection; the claimed
        // 4 GiB is refused from its four-byte header alone.
        let mut f = LengthPrefixed::new(1024);
        assert_eq!(
            f.decode(&[0xff, 0xff, 0xff, 0xff]),
            Err(FramingFailure::TooLarge {
                size: u64::from(u32::MAX),
                limit: 1024
            })
        );
        assert_eq!(f.decode(&[0, 0, 4]), Ok(Decoded::NeedMore));
        assert_eq!(f.decode(&[0, 0, 0, 2, b'h']), Ok(Decoded::NeedMore));
        assert_eq!(
            f.decode(&[0, 0, 0, 2, b'h', b'i']),
            Ok(Decoded::Message {
                header: 4,
                len: 2,
                trailer: 0
            })
        );
        let mut out = Vec::new();
        assert!(f.encode(&[0; 1025], &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn delimited_lines() {
        let mut f = Delimited::new(b"\r\n".to_vec(), 8);
        assert_eq!(
            decode_chunked(&mut f, b"a\r\nbc\r\n\r\n", &[1]).unwrap(),
            vec![b"a".to_vec(), b"bc".to_vec(), vec![]]
        );
        let mut out = Vec::new();
        assert_eq!(
            f.encode(b"x\r\ny", &mut out),
            Err(FramingFailure::Malformed(
                "the message contains the delimiter"
            ))
        );
        // A line longer than the limit fails as soon as it cannot end in time.
        let mut f = Delimited::new(b"\n".to_vec(), 4);
        assert_eq!(f.decode(b"abcd"), Ok(Decoded::NeedMore));
        assert_eq!(
            f.decode(b"abcd\n"),
            Ok(Decoded::Message {
                header: 0,
                len: 4,
                trailer: 1
            })
        );
        assert!(matches!(
            f.decode(b"abcde"),
            Err(FramingFailure::TooLarge { .. })
        ));
    }

    proptest! {
        /// Arbitrary chunking of the byte stream yields the same
        /// messages.
        #[test]
        fn chunking_does_not_change_messages(
            messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
            chunks in proptest::collection::vec(1usize..64, 1..10),
        ) {
            let mut enc = LengthPrefixed::new(1000);
            let mut stream = Vec::new();
            for m in &messages { enc.encode(m, &mut stream).unwrap(); }
            let mut dec = LengthPrefixed::new(1000);
            prop_assert_eq!(&decode_chunked(&mut dec, &stream, &chunks).unwrap(), &messages);

            let lines: Vec<Vec<u8>> = messages.iter().map(|m| m.iter().map(|b| if *b == b'\n' { b'.' } else { *b }).collect()).collect();
            let mut enc = Delimited::new(b"\n".to_vec(), 1000);
            let mut stream = Vec::new();
            for m in &lines { enc.encode(m, &mut stream).unwrap(); }
            let mut dec = Delimited::new(b"\n".to_vec(), 1000);
            prop_assert_eq!(&decode_chunked(&mut dec, &stream, &chunks).unwrap(), &lines);
        }

        /// Arbitrary bytes never panic a framer, and decoding stays bounded.
        #[test]
        fn arbitrary_bytes_are_rejected_or_decoded(bytes in proptest::collection::vec(any::<u8>(), 0..2000), chunks in proptest::collection::vec(1usize..50, 1..5)) {
            let _ = decode_chunked(&mut LengthPrefixed::new(256), &bytes, &chunks);
            let _ = decode_chunked(&mut Delimited::new(b"\r\n".to_vec(), 256), &bytes, &chunks);
        }
    }
}
