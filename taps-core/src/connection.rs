//! Message I/O of an established connection (RFC 9622 §9, §10; RFC 9623
//! §5): the send queue with message properties, receive requests, bounded
//! buffers and back-pressure.
//!
//! - **Send** (§9.2): messages queue by `msgPriority` (lower first, FIFO
//!   among equals) and move into the stack while its transmit buffer is
//!   below the high-water mark. `Sent` fires when the adapter has written the
//!   message's last byte, so `Sent` events come in the order messages went
//!   out. A message whose `msgLifetime` lapses before it is sent yields
//!   `Expired`. A `final` message half-closes the connection after it.
//! - **Receive** (§9.3): each `Receive(minIncompleteLength, maxLength)`
//!   request is answered by one `Received` (a whole message) or
//!   `ReceivedPartial` (part of one, or stream bytes without a framer).
//! - **Bounds**: queued send bytes, queued messages, transmit high water,
//!   receive buffer, pending receive requests — all in [`IoLimits`]. When a
//!   peer stops reading, sends are refused with back-pressure instead of
//!   growing memory; when the application stops receiving, the adapter is
//!   told to stop reading (`read_capacity` reaches 0).

use core::time::Duration;
use std::collections::VecDeque;

use crate::properties::MessageProperties;
use crate::stack::Stack;
use crate::time::Instant;
use crate::trace::FramingFailure;

/// A message to send (RFC 9622 §9.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Its bytes.
    pub data: Vec<u8>,
    /// How to send it.
    pub properties: MessageProperties,
}

impl Message {
    /// A message with default properties.
    pub fn new(data: impl Into<Vec<u8>>) -> Self {
        Message {
            data: data.into(),
            properties: MessageProperties::default(),
        }
    }

    /// Marks it safely replayable (RFC 9622 §9.1.3.4), so it may travel as
    /// 0-RTT or TCP Fast Open data.
    pub fn safely_replayable(mut self) -> Self {
        self.properties.safely_replayable = true;
        self
    }

    /// Marks it the last message: the connection half-closes after it.
    pub fn final_message(mut self) -> Self {
        self.properties.is_final = true;
        self
    }

    /// Sets its priority (lower is sent first).
    pub fn priority(mut self, priority: u32) -> Self {
        self.properties.priority = priority;
        self
    }

    /// Sets its lifetime.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.properties.lifetime = Some(lifetime);
        self
    }
}

/// Names one message of one connection, in the order `send` accepted them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

/// Why a send was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is not open for sending (closed, closing, or a final
    /// message was sent).
    NotOpen,
    /// The send buffer is full: wait for `Writable` (back-pressure).
    BufferFull,
    /// The message is larger than the framer allows.
    Framing(FramingFailure),
    /// The connection id is unknown or freed.
    UnknownConnection,
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SendError::NotOpen => f.write_str("the connection is not open for sending"),
            SendError::BufferFull => f.write_str("the send buffer is full; wait for Writable"),
            SendError::Framing(e) => write!(f, "{e}"),
            SendError::UnknownConnection => f.write_str("unknown connection"),
        }
    }
}

impl std::error::Error for SendError {}

/// Buffer and queue bounds of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoLimits {
    /// Bytes of messages queued and not yet in the stack. Default 4 MiB.
    pub max_queued_bytes: usize,
    /// Messages queued. Default 1024.
    pub max_queued_messages: usize,
    /// Wire bytes the stack may hold for the adapter before the queue waits.
    /// Default 256 KiB.
    pub transmit_high_water: usize,
    /// Received bytes held for the application (raw and decoded). Default
    /// 1 MiB; the adapter reads no more than the room left.
    pub max_receive_buffer: usize,
    /// Outstanding `receive` requests. Default 64.
    pub max_pending_receives: usize,
}

impl Default for IoLimits {
    fn default() -> Self {
        IoLimits {
            max_queued_bytes: 4 << 20,
            max_queued_messages: 1024,
            transmit_high_water: 256 << 10,
            max_receive_buffer: 1 << 20,
            max_pending_receives: 64,
        }
    }
}

/// What the I/O layer reports, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IoEvent {
    Sent(MessageId),
    Expired(MessageId),
    SendError(MessageId, SendError),
    Received {
        data: Vec<u8>,
        end_of_message: bool,
        partial: bool,
    },
    Readable,
    Writable,
    /// A final message went out: shut down the write side.
    Finished,
    Failed(FramingFailure),
}

#[derive(Debug)]
struct Queued {
    id: MessageId,
    data: Vec<u8>,
    priority: u32,
    deadline: Option<Instant>,
    is_final: bool,
}

#[derive(Clone, Copy, Debug)]
struct ReceiveRequest {
    min_incomplete: usize,
    max_len: usize,
}

/// The I/O state of one connection.
#[derive(Debug)]
pub(crate) struct ConnIo {
    limits: IoLimits,
    next_id: u64,
    queue: VecDeque<Queued>,
    queued_bytes: usize,
    /// (message, wire offset of its end) for messages in the stack.
    in_flight: VecDeque<(MessageId, u64)>,
    /// Wire offset up to which the adapter has written.
    transmitted: u64,
    receives: VecDeque<ReceiveRequest>,
    /// Decoded messages not yet handed out, and how much of the front one
    /// was handed out already.
    decoded: VecDeque<Vec<u8>>,
    decoded_offset: usize,
    decoded_bytes: usize,
    pub(crate) send_closed: bool,
    /// The adapter's application side reads the socket itself
    /// (`Machine::delegate_reading`); in force only while pass-through
    /// reading applies.
    pub(crate) reads_delegated: bool,
    finished: bool,
    blocked: bool,
    readable_announced: bool,
    eof_delivered: bool,
    /// The first message of `initiate_with_send`, while attempts may carry
    /// it early.
    pub(crate) early: Option<(MessageId, Vec<u8>)>,
}

impl ConnIo {
    pub(crate) fn new(limits: IoLimits) -> Self {
        ConnIo {
            limits,
            next_id: 0,
            queue: VecDeque::new(),
            queued_bytes: 0,
            in_flight: VecDeque::new(),
            transmitted: 0,
            receives: VecDeque::new(),
            decoded: VecDeque::new(),
            decoded_offset: 0,
            decoded_bytes: 0,
            send_closed: false,
            finished: false,
            blocked: false,
            readable_announced: false,
            eof_delivered: false,
            reads_delegated: false,
            early: None,
        }
    }

    /// Whether a message of `len` bytes would be accepted now. A refusal
    /// for lack of room marks the queue blocked, so `Writable` follows once
    /// it drains: a caller may ask before handing the message over, and keep
    /// it while it waits.
    pub(crate) fn check_room(&mut self, len: usize) -> Result<(), SendError> {
        if self.send_closed {
            return Err(SendError::NotOpen);
        }
        if self.queue.len() >= self.limits.max_queued_messages
            || self.queued_bytes.saturating_add(len) > self.limits.max_queued_bytes
        {
            self.blocked = true;
            return Err(SendError::BufferFull);
        }
        Ok(())
    }

    /// Accepts a message into the queue.
    pub(crate) fn enqueue(
        &mut self,
        now: Instant,
        message: Message,
    ) -> Result<MessageId, SendError> {
        self.check_room(message.data.len())?;
        let id = MessageId(self.next_id);
        self.next_id += 1;
        let p = &message.properties;
        let queued = Queued {
            id,
            priority: p.priority,
            deadline: p.lifetime.map(|l| now + l),
            is_final: p.is_final,
            data: message.data,
        };
        if queued.is_final {
            self.send_closed = true;
        }
        self.queued_bytes += queued.data.len();
        // Lower priority values go first; equal priorities keep send order.
        let at = self
            .queue
            .iter()
            .position(|q| q.priority > queued.priority)
            .unwrap_or(self.queue.len());
        self.queue.insert(at, queued);
        Ok(id)
    }

    /// Records the first message, which attempts may send early.
    pub(crate) fn set_early(&mut self, id: MessageId, framed: Vec<u8>) {
        self.early = Some((id, framed));
    }

    /// The earliest message lifetime deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.queue.iter().filter_map(|q| q.deadline).min()
    }

    /// Moves queued messages into the stack while it has room, and expires
    /// those whose lifetime lapsed.
    pub(crate) fn pump(&mut self, now: Instant, stack: &mut Stack, events: &mut Vec<IoEvent>) {
        // Expire first, whatever the room: a lapsed message must not go out.
        let mut i = 0;
        while i < self.queue.len() {
            if self.queue[i].deadline.is_some_and(|d| now >= d) {
                if let Some(q) = self.queue.remove(i) {
                    self.queued_bytes -= q.data.len();
                    events.push(IoEvent::Expired(q.id));
                }
            } else {
                i += 1;
            }
        }
        while stack.tx.len() < self.limits.transmit_high_water {
            let Some(q) = self.queue.pop_front() else {
                break;
            };
            self.queued_bytes -= q.data.len();
            if let Err(e) = stack.write_message(&q.data) {
                events.push(IoEvent::SendError(q.id, SendError::Framing(e)));
                continue;
            }
            self.in_flight.push_back((q.id, stack.tx_total));
            if q.is_final {
                stack.close_notify();
                self.finished = true;
            }
        }
        self.transmitted = stack.tx_total - stack.tx.len() as u64;
        self.settle_sent(events);
        if self.blocked && self.queued_bytes < self.limits.max_queued_bytes / 2 {
            self.blocked = false;
            events.push(IoEvent::Writable);
        }
    }

    /// The adapter has written the stack's wire bytes up to `offset`
    /// (handshake bytes included: offsets count the whole stream).
    pub(crate) fn on_transmitted(&mut self, offset: u64, events: &mut Vec<IoEvent>) {
        self.transmitted = offset;
        self.settle_sent(events);
    }

    fn settle_sent(&mut self, events: &mut Vec<IoEvent>) {
        while let Some(&(id, end)) = self.in_flight.front() {
            if end > self.transmitted {
                break;
            }
            self.in_flight.pop_front();
            events.push(IoEvent::Sent(id));
        }
        if self.finished && self.in_flight.is_empty() && self.queue.is_empty() {
            self.finished = false;
            events.push(IoEvent::Finished);
        }
    }

    /// Marks `id` sent without the queue (it went out as early data).
    pub(crate) fn sent_early(&mut self, id: MessageId, events: &mut Vec<IoEvent>) {
        if let Some(pos) = self.queue.iter().position(|q| q.id == id) {
            if let Some(q) = self.queue.remove(pos) {
                self.queued_bytes -= q.data.len();
                if q.is_final {
                    self.finished = true;
                }
            }
            events.push(IoEvent::Sent(id));
        }
    }

    /// Registers a receive request.
    pub(crate) fn request(&mut self, min_incomplete: usize, max_len: usize) -> bool {
        if self.receives.len() >= self.limits.max_pending_receives {
            return false;
        }
        self.receives.push_back(ReceiveRequest {
            min_incomplete: min_incomplete.max(1),
            max_len: max_len.max(1),
        });
        true
    }

    /// Room left for received bytes.
    pub(crate) fn read_capacity(&self, stack: &Stack) -> usize {
        self.limits
            .max_receive_buffer
            .saturating_sub(stack.rx.len() + self.decoded_bytes)
    }

    /// Decodes what arrived and answers receive requests.
    pub(crate) fn deliver(&mut self, stack: &mut Stack, events: &mut Vec<IoEvent>) {
        if stack.has_framer() {
            loop {
                match stack.next_message() {
                    Ok(Some(m)) => {
                        self.decoded_bytes += m.len();
                        self.decoded.push_back(m);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        events.push(IoEvent::Failed(e));
                        return;
                    }
                }
            }
        }
        while let Some(req) = self.receives.front().copied() {
            let answer = if stack.has_framer() {
                self.take_message(stack, req)
            } else {
                self.take_stream(stack, req)
            };
            match answer {
                Some(event) => {
                    self.receives.pop_front();
                    events.push(event);
                }
                None => break,
            }
        }
        // The peer's end is readable too: a stream read then returns 0. A
        // reader that waits for Readable must hear of an end that came
        // without data, or it waits forever.
        let has_data = !stack.rx.is_empty()
            || !self.decoded.is_empty()
            || (stack.peer_eof && !self.eof_delivered);
        if has_data && self.receives.is_empty() && !self.readable_announced {
            self.readable_announced = true;
            events.push(IoEvent::Readable);
        }
    }

    fn take_message(&mut self, stack: &Stack, req: ReceiveRequest) -> Option<IoEvent> {
        let Some(front) = self.decoded.front() else {
            // The peer closed and every whole message is out: say so once.
            if stack.peer_eof && !self.eof_delivered {
                self.eof_delivered = true;
                return Some(IoEvent::Received {
                    data: Vec::new(),
                    end_of_message: true,
                    partial: true,
                });
            }
            return None;
        };
        let rest = front.len() - self.decoded_offset;
        if rest <= req.max_len {
            let mut m = self.decoded.pop_front()?;
            self.decoded_bytes -= m.len();
            let partial = self.decoded_offset > 0;
            if partial {
                m.drain(..self.decoded_offset);
            }
            self.decoded_offset = 0;
            Some(IoEvent::Received {
                data: m,
                end_of_message: true,
                partial,
            })
        } else {
            let start = self.decoded_offset;
            let data = front[start..start + req.max_len].to_vec();
            self.decoded_offset += req.max_len;
            Some(IoEvent::Received {
                data,
                end_of_message: false,
                partial: true,
            })
        }
    }

    fn take_stream(&mut self, stack: &mut Stack, req: ReceiveRequest) -> Option<IoEvent> {
        let available = stack.rx.len();
        let at_eof = stack.peer_eof;
        if available == 0 {
            if at_eof && !self.eof_delivered {
                self.eof_delivered = true;
                return Some(IoEvent::Received {
                    data: Vec::new(),
                    end_of_message: true,
                    partial: true,
                });
            }
            return None;
        }
        if available < req.min_incomplete && !at_eof {
            return None;
        }
        let n = available.min(req.max_len);
        let data: Vec<u8> = stack.rx.drain(..n).collect();
        let end = at_eof && stack.rx.is_empty();
        if end {
            self.eof_delivered = true;
        }
        Some(IoEvent::Received {
            data,
            end_of_message: end,
            partial: true,
        })
    }

    /// Stream read: copies received bytes into `buf`.
    pub(crate) fn read(&mut self, stack: &mut Stack, buf: &mut [u8]) -> usize {
        self.readable_announced = false;
        if stack.has_framer() {
            let mut n = 0;
            while n < buf.len() {
                let Some(front) = self.decoded.front() else {
                    break;
                };
                let rest = &front[self.decoded_offset..];
                let k = rest.len().min(buf.len() - n);
                buf[n..n + k].copy_from_slice(&rest[..k]);
                n += k;
                self.decoded_offset += k;
                if self.decoded_offset == front.len() {
                    self.decoded_bytes -= front.len();
                    self.decoded.pop_front();
                    self.decoded_offset = 0;
                }
            }
            return n;
        }
        let (a, b) = stack.rx.as_slices();
        let k1 = a.len().min(buf.len());
        buf[..k1].copy_from_slice(&a[..k1]);
        let k2 = b.len().min(buf.len() - k1);
        buf[k1..k1 + k2].copy_from_slice(&b[..k2]);
        stack.rx.drain(..k1 + k2);
        k1 + k2
    }

    /// Nothing of the application's waits to be sent (no message queued
    /// or in flight, no final message), so stream bytes may bypass the
    /// transmit queue (`Machine::write_through`).
    pub(crate) fn idle_for_write_through(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty() && !self.finished && !self.send_closed
    }

    /// No receive request waits, so stream bytes may bypass the receive
    /// buffer (`Machine::read_through`).
    pub(crate) fn idle_for_read_through(&self) -> bool {
        self.receives.is_empty() && self.decoded.is_empty()
    }

    /// Stream write: accepts as many bytes as the transmit buffer has room
    /// for; 0 means wait for `Writable`.
    pub(crate) fn write(&mut self, stack: &mut Stack, data: &[u8]) -> usize {
        let room = self
            .limits
            .transmit_high_water
            .saturating_sub(stack.tx.len());
        let n = room.min(data.len());
        if n < data.len() {
            self.blocked = true;
        }
        if n > 0 {
            stack.write_raw(&data[..n]);
        }
        n
    }

    /// After the adapter drained the transmit buffer: wake blocked writers.
    pub(crate) fn on_drained(&mut self, stack: &Stack, events: &mut Vec<IoEvent>) {
        if self.blocked
            && stack.tx.len() < self.limits.transmit_high_water / 2
            && self.queued_bytes < self.limits.max_queued_bytes / 2
        {
            self.blocked = false;
            events.push(IoEvent::Writable);
        }
    }

    /// Whether every queued message is in the stack.
    pub(crate) fn queue_is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}
