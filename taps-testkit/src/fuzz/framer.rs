//! The `framer` target: arbitrary streams, arbitrarily chunked, into each
//! built-in framer alone and through an accepted connection ([`framer`]).

use taps_core::{
    Config, ConnectionId, Event, FailureReason, FramingFailure, Input, Instant, ListenerConfig,
    framer::{Decoded, Framer, FramerFactory},
};

use super::addr;
use crate::contract::nonempty;
use crate::harness::Harness;

/// Which built-in framer a `framer` input drives, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FramerCase {
    /// The framer.
    pub kind: FramerKind,
    /// Its message size limit.
    pub max: u16,
    /// Bytes per read (0: the whole stream at once).
    pub chunk: u8,
    /// The received stream.
    pub stream: Vec<u8>,
}

/// The built-in framers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramerKind {
    /// u32 length prefix.
    LengthPrefixed,
    /// `\n`-terminated lines.
    Lines,
    /// Messages ended by this delimiter (1 to 4 bytes).
    Delimited(Vec<u8>),
}

impl FramerCase {
    /// Reads `[kind][max: u16 BE][chunk]` (`kind` ≥ 2: then one byte of
    /// delimiter length 1-4 and the delimiter), then the stream.
    pub fn decode(data: &[u8]) -> Option<Self> {
        let (&[kind, hi, lo, chunk], rest) = data.split_first_chunk::<4>()?;
        let (kind, rest) = match kind % 3 {
            0 => (FramerKind::LengthPrefixed, rest),
            1 => (FramerKind::Lines, rest),
            _ => {
                let (&n, rest) = rest.split_first()?;
                let n = usize::from(n % 4) + 1;
                let delimiter = rest.get(..n)?.to_vec();
                (FramerKind::Delimited(delimiter), &rest[n..])
            }
        };
        Some(FramerCase {
            kind,
            max: u16::from_be_bytes([hi, lo]),
            chunk,
            stream: rest.to_vec(),
        })
    }

    /// The input bytes for this case (inverse of [`FramerCase::decode`]).
    pub fn encode(&self) -> Vec<u8> {
        let [hi, lo] = self.max.to_be_bytes();
        let mut out = match &self.kind {
            FramerKind::LengthPrefixed => vec![0, hi, lo, self.chunk],
            FramerKind::Lines => vec![1, hi, lo, self.chunk],
            FramerKind::Delimited(d) => {
                let mut v = vec![2, hi, lo, self.chunk, (d.len() as u8).wrapping_sub(1)];
                v.extend_from_slice(d);
                v
            }
        };
        out.extend_from_slice(&self.stream);
        out
    }

    fn make(&self) -> Box<dyn Framer> {
        self.factory().make()
    }

    fn factory(&self) -> FramerFactory {
        let max = usize::from(self.max);
        match &self.kind {
            FramerKind::LengthPrefixed => FramerFactory::length_prefixed(u32::from(self.max)),
            FramerKind::Lines => FramerFactory::lines(max),
            FramerKind::Delimited(d) => FramerFactory::delimited(d.clone(), max),
        }
    }

    /// Framing bytes around a maximal message: the most a framer may hold
    /// without having decided.
    fn overhead(&self) -> usize {
        match &self.kind {
            FramerKind::LengthPrefixed => 4,
            FramerKind::Lines => 1,
            FramerKind::Delimited(d) => d.len(),
        }
    }
}

/// How a stream decoded: the messages, then whether it failed.
#[derive(Debug, PartialEq, Eq)]
struct Decoding {
    messages: Vec<Vec<u8>>,
    failed: bool,
}

/// Decodes `stream` read `chunk` bytes at a time, as the connection layer
/// does (buffer, decode, drop what was consumed), checking every answer the
/// framer gives against the bytes it was shown.
fn decode_stream(case: &FramerCase, stream: &[u8], chunk: usize) -> Decoding {
    let mut framer = case.make();
    if framer.max_message_size() != usize::from(case.max) {
        violated!(
            "{} reports max {} for a limit of {}",
            framer.name(),
            framer.max_message_size(),
            case.max
        );
    }
    let bound = usize::from(case.max) + case.overhead();
    let mut buffer: Vec<u8> = Vec::new();
    let mut messages = Vec::new();
    for piece in stream.chunks(chunk.max(1)) {
        buffer.extend_from_slice(piece);
        loop {
            match framer.decode(&buffer) {
                Ok(Decoded::Message {
                    header,
                    len,
                    trailer,
                }) => {
                    let end = header.saturating_add(len).saturating_add(trailer);
                    if end > buffer.len() || end == 0 {
                        violated!(
                            "{} framed {header}+{len}+{trailer} bytes of {}",
                            framer.name(),
                            buffer.len()
                        );
                    }
                    if len > usize::from(case.max) {
                        violated!(
                            "{} decoded a {len}-byte message over its {} limit",
                            framer.name(),
                            case.max
                        );
                    }
                    messages.push(buffer[header..header + len].to_vec());
                    buffer.drain(..end);
                }
                Ok(Decoded::NeedMore) => {
                    // Bounded memory: a framer may not ask for more while it
                    // already holds more than a maximal frame.
                    if buffer.len() > bound {
                        violated!(
                            "{} wants more bytes while holding {} (bound {bound})",
                            framer.name(),
                            buffer.len()
                        );
                    }
                    break;
                }
                Err(e) => {
                    if let FramingFailure::TooLarge { limit, .. } = e
                        && limit != u64::from(case.max)
                    {
                        violated!(
                            "{} reports limit {limit}, configured {}",
                            framer.name(),
                            case.max
                        );
                    }
                    nonempty(&e);
                    return Decoding {
                        messages,
                        failed: true,
                    };
                }
            }
        }
    }
    Decoding {
        messages,
        failed: false,
    }
}

/// **framer**: arbitrary bytes with arbitrary chunking into each built-in
/// framer ([`FramerCase`] describes the input). Checks:
/// - every decoded message lies inside the bytes shown and within the limit;
///   a framer never asks for more bytes while holding more than a maximal
///   frame, so no claimed length over the limit is ever buffered;
/// - chunking does not change the outcome (same messages, same failure);
/// - decoded messages encode and decode back to themselves;
/// - a whole connection (a listener with the framer, the stream as socket
///   data respecting `read_capacity`) delivers exactly those messages, in
///   order, and fails with a framing error exactly when the framer does.
pub fn framer(data: &[u8]) {
    let Some(case) = FramerCase::decode(data) else {
        return;
    };
    let chunk = match case.chunk {
        0 => usize::MAX,
        n => usize::from(n),
    };
    let whole = decode_stream(&case, &case.stream, usize::MAX);
    let chunked = decode_stream(&case, &case.stream, chunk);
    if whole != chunked {
        violated!("chunks of {chunk} decode as {chunked:?}, the whole stream as {whole:?}");
    }

    let mut encoder = case.make();
    let mut encoded = Vec::new();
    for m in &whole.messages {
        if let Err(e) = encoder.encode(m, &mut encoded) {
            violated!("a decoded message does not encode again: {e}");
        }
    }
    let again = decode_stream(&case, &encoded, chunk);
    if again.failed || again.messages != whole.messages {
        violated!("decoded messages do not survive encode and decode: {again:?}");
    }

    framer_through_machine(&case, chunk, &whole);
}

/// The framer case through a real accepted connection.
fn framer_through_machine(case: &FramerCase, chunk: usize, expected: &Decoding) {
    let mut h = Harness::manual(Config::new(0));
    let listen = ListenerConfig::on(vec![addr("192.0.2.10:443")]).with_framer(case.factory());
    let Some(listener) = h.listen(listen) else {
        violated!("listen refused");
    };
    let Some(socket) = h.accept(listener, addr("198.51.100.7:40000")) else {
        violated!("accept refused");
    };
    let Some(conn) = h.events.iter().find_map(|(_, e)| match e {
        Event::ConnectionReceived { conn, .. } => Some(*conn),
        _ => None,
    }) else {
        violated!("a plain framed connection was not received at once");
    };
    let want = usize::from(case.max).max(1);
    let pending = h.machine.config().io.max_pending_receives;
    for _ in 0..pending {
        if h.machine.connection(conn).receive(h.now, 1, want).is_err() {
            violated!("receive refused on a fresh connection");
        }
    }
    let mut received = 0;
    let mut rest = &case.stream[..];
    while !rest.is_empty() {
        let room = h.machine.socket(socket).read_capacity().min(chunk);
        if room == 0 {
            break;
        }
        let (piece, tail) = rest.split_at(room.min(rest.len()));
        rest = tail;
        h.handle(Input::SocketData {
            socket,
            data: piece,
        });
        // Keep the receive requests topped up.
        let now_received = count_received(&h.events, conn);
        for _ in received..now_received {
            let _ = h.machine.connection(conn).receive(h.now, 1, want);
        }
        received = now_received;
        h.drain();
    }
    h.handle(Input::SocketEof { socket });
    // Ask until nothing more comes: more messages may have arrived in one
    // read than there were requests waiting.
    for _ in 0..=expected.messages.len() {
        let before = count_received(&h.events, conn);
        if h.machine.connection(conn).receive(h.now, 1, want).is_err() {
            break;
        }
        h.drain();
        if count_received(&h.events, conn) == before {
            break;
        }
    }
    let got: Vec<Vec<u8>> = h
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Received { conn: c, data } if *c == conn => Some(data.clone()),
            _ => None,
        })
        .collect();
    let failed = h.events.iter().any(|(_, e)| {
        matches!(e, Event::ConnectionError { conn: c, reason: FailureReason::Framing(_) } if *c == conn)
    });
    if failed != expected.failed {
        violated!(
            "the connection failed: {failed}, the framer alone: {}",
            expected.failed
        );
    }
    let complete = if failed {
        expected.messages.starts_with(&got)
    } else {
        got == expected.messages
    };
    if !complete {
        violated!(
            "the connection delivered {got:?}, the framer decodes {:?}",
            expected.messages
        );
    }
    h.machine.connection(conn).close(h.now);
    h.drain();
    h.finish();
}

fn count_received(events: &[(Instant, Event)], conn: ConnectionId) -> usize {
    events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Received { conn: c, .. } | Event::ReceivedPartial { conn: c, .. } if *c == conn))
        .count()
}
