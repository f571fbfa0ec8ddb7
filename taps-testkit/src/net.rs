//! Client and server machines joined by in-memory byte pipes in virtual
//! time: TCP as ordered, delayed byte delivery with FIN and RST, listeners,
//! a receive window, read back-pressure through `read_capacity`, and
//! destinations that accept TCP but never answer (a stalled server). Real
//! rustls handshakes run through it; stream reads and writes through a
//! checked-out TLS session go through [`crate::wire`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use taps_core::{
    ConnectionId, Event, FailureReason, Input, Instant, ListenerId, Machine, Output, SocketId,
    TlsCheckout,
};

use crate::wire::{LimitedWire, QueueWire, Through, WireEnd, read_through, write_through};

/// One end of a TCP connection: (machine index, socket).
pub type End = (usize, SocketId);

/// How a destination address treats a SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// A listener answers normally.
    Serve,
    /// TCP completes but nothing is ever delivered to the server (a stalled
    /// TLS terminator, a middlebox).
    StallAfterTcp,
    /// SYNs vanish.
    Blackhole,
}

#[derive(Debug)]
enum Due {
    Accept {
        client: End,
        server: usize,
        listener: ListenerId,
        from: SocketAddr,
    },
    Connected(End),
    Data(End, Vec<u8>),
    Eof(End),
    Reset(End),
    Refused(End),
}

#[derive(Debug, Default)]
struct EndState {
    peer: Option<End>,
    /// Delivered but not yet read by the machine (its read capacity was 0).
    inbox: VecDeque<u8>,
    eof_pending: bool,
    /// Bytes written before the peer existed (TCP Fast Open).
    early: Vec<u8>,
    /// Bytes on their way to this end.
    in_flight: usize,
    stalled: bool,
}

/// The machines, the pipes between their sockets, and the clock.
pub struct Net {
    /// Virtual time.
    pub now: Instant,
    /// The machines; an index is a machine's address in the net.
    pub machines: Vec<Machine>,
    /// One-way delay of every pipe.
    pub delay: Duration,
    /// Who listens where: (machine, listener).
    pub listeners: HashMap<SocketAddr, (usize, ListenerId)>,
    /// Destinations that do not serve normally.
    pub behaviour: HashMap<SocketAddr, Behaviour>,
    ends: HashMap<End, EndState>,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    due: BTreeMap<u64, Due>,
    seq: u64,
    /// Every event: when, which machine, what.
    pub events: Vec<(Instant, usize, Event)>,
    /// (when, machine, remote, fast_open) for every OpenTcp.
    pub opened: Vec<(Instant, usize, SocketAddr, bool)>,
    /// Bytes handed to machines as `SocketData`.
    pub bytes_delivered: u64,
    /// FNV-1a over every byte delivered, in order: equal runs, equal hash.
    pub wire_hash: u64,
    /// Most bytes ever delivered to one end and not read by its machine.
    pub max_inbox: usize,
    /// Like a TCP receive window: a sender may have at most this many bytes
    /// in flight plus unread at its peer.
    pub window: usize,
    /// Largest piece handed to a machine in one `SocketData`.
    pub chunk: usize,
    /// RSTs sent to a peer (an `AbortSocket` of a connected socket).
    pub resets: usize,
}

impl Net {
    /// `machines` joined by pipes of one-way `delay`, at time zero.
    pub fn new(machines: Vec<Machine>, delay: Duration) -> Self {
        Net {
            now: Instant::ZERO,
            machines,
            delay,
            listeners: HashMap::new(),
            behaviour: HashMap::new(),
            ends: HashMap::new(),
            queue: BinaryHeap::new(),
            due: BTreeMap::new(),
            seq: 0,
            events: Vec::new(),
            opened: Vec::new(),
            bytes_delivered: 0,
            wire_hash: 0xcbf2_9ce4_8422_2325,
            max_inbox: 0,
            window: 256 * 1024,
            chunk: 16 * 1024,
            resets: 0,
        }
    }

    fn schedule(&mut self, at: Instant, d: Due) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.due.insert(self.seq, d);
    }

    /// Performs every output of every machine until all are drained.
    pub fn drain(&mut self) {
        loop {
            let mut any = false;
            for m in 0..self.machines.len() {
                while let Some(out) = self.machines[m].poll() {
                    any = true;
                    self.perform(m, out);
                }
            }
            if !any {
                break;
            }
        }
    }

    fn perform(&mut self, m: usize, out: Output) {
        let now = self.now;
        match out {
            Output::Dns(_) => panic!("these tests resolve through literals and hosts files"),
            Output::Listen {
                listener, local, ..
            } => {
                self.listeners.insert(local, (m, listener));
            }
            Output::StopListening { listener } => self.listeners.retain(|_, v| *v != (m, listener)),
            Output::OpenTcp {
                socket,
                remote,
                fast_open,
                ..
            } => {
                self.opened.push((now, m, remote, fast_open));
                self.ends.insert((m, socket), EndState::default());
                let behaviour = self
                    .behaviour
                    .get(&remote)
                    .copied()
                    .unwrap_or(Behaviour::Serve);
                match (self.listeners.get(&remote).copied(), behaviour) {
                    (_, Behaviour::Blackhole) => {}
                    (Some((server, listener)), Behaviour::Serve) => {
                        let from = SocketAddr::new(remote.ip(), 40000 + socket.to_raw().0 as u16);
                        self.schedule(
                            now + self.delay,
                            Due::Accept {
                                client: (m, socket),
                                server,
                                listener,
                                from,
                            },
                        );
                    }
                    (_, Behaviour::StallAfterTcp) => {
                        self.ends.get_mut(&(m, socket)).unwrap().stalled = true;
                        self.schedule(now + self.delay * 2, Due::Connected((m, socket)));
                    }
                    (None, Behaviour::Serve) => {
                        self.schedule(now + self.delay * 2, Due::Refused((m, socket)))
                    }
                }
            }
            Output::Transmit { socket } => self.flush(m, socket),
            Output::ShutdownWrite { socket } => {
                self.flush(m, socket);
                if let Some(peer) = self.ends.get(&(m, socket)).and_then(|e| e.peer) {
                    self.schedule(now + self.delay, Due::Eof(peer));
                }
            }
            Output::CloseSocket { socket } => {
                let end = self
                    .ends
                    .remove(&(m, socket))
                    .expect("close of a socket the net never saw");
                if let Some(peer) = end.peer {
                    self.schedule(now + self.delay, Due::Eof(peer));
                }
            }
            Output::AbortSocket { socket } => {
                let end = self
                    .ends
                    .remove(&(m, socket))
                    .expect("abort of a socket the net never saw");
                if let Some(peer) = end.peer {
                    self.resets += 1;
                    self.schedule(now + self.delay, Due::Reset(peer));
                }
            }
            Output::ResumeReading { socket } => self.feed((m, socket)),
            Output::Event(e) => self.events.push((now, m, e)),
            other => panic!("an output this net cannot perform: {other:?}"),
        }
    }

    /// Moves what the socket has to send into the pipe, as far as the
    /// peer's window allows.
    fn flush(&mut self, m: usize, socket: SocketId) {
        loop {
            let Some(end) = self.ends.get(&(m, socket)) else {
                return;
            };
            let room = match end.peer.and_then(|p| self.ends.get(&p)) {
                Some(peer) => self
                    .window
                    .saturating_sub(peer.inbox.len() + peer.in_flight),
                None if end.stalled => usize::MAX,
                None => self.window.saturating_sub(end.early.len()),
            };
            let pending = self.machines[m].socket(socket).transmit_data();
            let n = pending.len().min(room);
            if n == 0 {
                return;
            }
            let data = pending[..n].to_vec();
            self.machines[m].handle(self.now, Input::Transmitted { socket, len: n });
            let end = self.ends.get_mut(&(m, socket)).unwrap();
            if end.stalled {
                continue;
            }
            match end.peer {
                Some(peer) => {
                    if let Some(p) = self.ends.get_mut(&peer) {
                        p.in_flight += n;
                    }
                    self.schedule(self.now + self.delay, Due::Data(peer, data));
                }
                None => end.early.extend_from_slice(&data),
            }
        }
    }

    /// Hands buffered bytes to the machine, no more than it can take.
    fn feed(&mut self, end: End) {
        let now = self.now;
        loop {
            let Some(state) = self.ends.get_mut(&end) else {
                return;
            };
            let capacity = self.machines[end.0].socket(end.1).read_capacity();
            if state.inbox.is_empty() || capacity == 0 {
                break;
            }
            let n = capacity.min(state.inbox.len()).min(self.chunk.max(1));
            let chunk: Vec<u8> = state.inbox.drain(..n).collect();
            self.bytes_delivered += n as u64;
            for b in &chunk {
                self.wire_hash = (self.wire_hash ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
            }
            self.machines[end.0].handle(
                now,
                Input::SocketData {
                    socket: end.1,
                    data: &chunk,
                },
            );
            // The window opened: the sender may write more.
            if let Some(peer) = self.ends.get(&end).and_then(|e| e.peer) {
                self.flush(peer.0, peer.1);
            }
        }
        let Some(state) = self.ends.get_mut(&end) else {
            return;
        };
        if state.eof_pending && state.inbox.is_empty() {
            state.eof_pending = false;
            self.machines[end.0].handle(now, Input::SocketEof { socket: end.1 });
        }
    }

    fn fire(&mut self, d: Due) {
        let now = self.now;
        match d {
            Due::Accept {
                client,
                server,
                listener,
                from,
            } => {
                if !self.ends.contains_key(&client) {
                    return;
                }
                match self.machines[server].listener(listener).accept(now, from) {
                    Ok(sock) => {
                        let server_end = (server, sock);
                        self.ends.insert(
                            server_end,
                            EndState {
                                peer: Some(client),
                                ..EndState::default()
                            },
                        );
                        let c = self.ends.get_mut(&client).unwrap();
                        c.peer = Some(server_end);
                        let early = std::mem::take(&mut c.early);
                        if !early.is_empty() {
                            // TCP Fast Open: the data rode in the SYN.
                            self.schedule(now, Due::Data(server_end, early));
                        }
                        self.schedule(now + self.delay, Due::Connected(client));
                    }
                    Err(_) => self.schedule(now + self.delay, Due::Reset(client)),
                }
            }
            Due::Connected(end) => {
                if self.ends.contains_key(&end) {
                    self.machines[end.0].handle(now, Input::SocketConnected { socket: end.1 });
                }
            }
            Due::Refused(end) => {
                if self.ends.contains_key(&end) {
                    self.machines[end.0].handle(
                        now,
                        Input::SocketFailed {
                            socket: end.1,
                            reason: FailureReason::Refused,
                        },
                    );
                }
            }
            Due::Reset(end) => {
                if self.ends.contains_key(&end) {
                    self.machines[end.0].handle(
                        now,
                        Input::SocketFailed {
                            socket: end.1,
                            reason: FailureReason::Reset,
                        },
                    );
                }
            }
            Due::Data(end, data) => {
                let Some(state) = self.ends.get_mut(&end) else {
                    return;
                };
                state.in_flight = state.in_flight.saturating_sub(data.len());
                if state.stalled {
                    return;
                }
                state.inbox.extend(data);
                self.max_inbox = self.max_inbox.max(state.inbox.len());
                self.feed(end);
            }
            Due::Eof(end) => {
                let Some(state) = self.ends.get_mut(&end) else {
                    return;
                };
                state.eof_pending = true;
                self.feed(end);
            }
        }
    }

    /// Runs until nothing is due and no timer is armed, or `limit`.
    pub fn run_until(&mut self, limit: Instant) {
        self.drain();
        for _ in 0..1_000_000 {
            let next_due = self.queue.peek().map(|Reverse((t, _))| *t);
            let next_timer = self.machines.iter().filter_map(Machine::poll_timeout).min();
            let Some(next) = next_due.into_iter().chain(next_timer).min() else {
                break;
            };
            if next > limit {
                break;
            }
            assert!(next >= self.now, "time ran backwards");
            self.now = next;
            for m in 0..self.machines.len() {
                if self.machines[m].poll_timeout().is_some_and(|t| t <= next) {
                    self.machines[m].handle_timeout(next);
                }
            }
            self.drain();
            while let Some(Reverse((t, seq))) = self.queue.peek().copied() {
                if t > self.now {
                    break;
                }
                self.queue.pop();
                let d = self.due.remove(&seq).unwrap();
                self.fire(d);
                self.drain();
            }
        }
    }

    /// Runs for `d`; the clock then reads `d` later even if all went quiet.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
        self.now = self.now.max(until);
    }

    /// As an adapter's stream write through a checked-out TLS session
    /// (`Machine::check_out_tls`): the socket takes at most `room` bytes
    /// now (then `WouldBlock`), the rest stays with the machine. `None`
    /// when the connection does not qualify.
    pub fn tls_write_through(
        &mut self,
        m: usize,
        conn: ConnectionId,
        data: &[u8],
        room: usize,
    ) -> Option<std::io::Result<Through>> {
        let mut session = self.machines[m]
            .connection(conn)
            .check_out_tls(TlsCheckout::Write)?;
        let end = (m, session.socket());
        let mut wire = LimitedWire {
            taken: Vec::new(),
            room,
        };
        let result = write_through(&mut session, &mut wire, data);
        self.machines[m].handle(self.now, Input::TlsCheckIn(session));
        self.send_wire(end, wire.taken);
        self.drain();
        Some(result)
    }

    /// As an adapter's stream read through a checked-out TLS session: the
    /// socket holds what was delivered to `conn`'s end and not yet read.
    pub fn tls_read_through(
        &mut self,
        m: usize,
        conn: ConnectionId,
        buf: &mut [u8],
    ) -> Option<std::io::Result<Through>> {
        let mut session = self.machines[m]
            .connection(conn)
            .check_out_tls(TlsCheckout::Read)?;
        let end = (m, session.socket());
        let state = self.ends.get_mut(&end)?;
        let mut wire = QueueWire {
            queue: &mut state.inbox,
            end: if state.eof_pending {
                WireEnd::Fin
            } else {
                WireEnd::Open
            },
            ended: false,
        };
        let result = read_through(&mut session, &mut wire, buf);
        if wire.ended
            && let Some(state) = self.ends.get_mut(&end)
        {
            // The session read the end itself; the machine hears it at
            // check-in, not again from the net.
            state.eof_pending = false;
        }
        self.machines[m].handle(self.now, Input::TlsCheckIn(session));
        // The window opened: the peer may send more.
        if let Some(peer) = self.ends.get(&end).and_then(|e| e.peer) {
            self.flush(peer.0, peer.1);
        }
        self.drain();
        Some(result)
    }

    /// Puts bytes an end wrote itself into the pipe to its peer.
    fn send_wire(&mut self, end: End, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        let Some(peer) = self.ends.get(&end).and_then(|e| e.peer) else {
            return;
        };
        if let Some(p) = self.ends.get_mut(&peer) {
            p.in_flight += data.len();
        }
        self.schedule(self.now + self.delay, Due::Data(peer, data));
    }

    /// Bytes delivered to `end` that its machine has not read.
    pub fn unread(&self, end: End) -> usize {
        self.ends.get(&end).map_or(0, |e| e.inbox.len())
    }

    /// Events of machine `m`, in order.
    pub fn events_of(&self, m: usize) -> Vec<Event> {
        self.events
            .iter()
            .filter(|(_, mm, _)| *mm == m)
            .map(|(_, _, e)| e.clone())
            .collect()
    }
}
