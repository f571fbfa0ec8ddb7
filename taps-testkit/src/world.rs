//! A scripted world for driving one `Machine` in virtual time: DNS servers
//! that answer with real messages (built by [`crate::dns`]) after set
//! delays, and TCP destinations that connect, refuse or swallow SYNs.
//! Integration tests and the `race` example use it; the full simulator is
//! `taps-sim`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::dns::{Question, build_response, parse_query};
use taps_core::{
    ConnectionId, DnsTxnId, Event, FailureReason, Input, Instant, Machine, Output, SocketId,
    dns::{Answer, QueryType},
    dns::{DnsAction, DnsTransport},
};

/// How a DNS server treats one record type of one name.
#[derive(Clone, Debug)]
pub struct DnsRule {
    pub delay: Duration,
    pub answer: Answer,
    /// Answer UDP with TC=1 (the TCP answer is complete).
    pub truncate: bool,
    /// Never answer.
    pub silent: bool,
    /// Answer with these bytes instead (made from the query, so the id
    /// and question match): for answers `Answer` cannot express.
    pub raw: Option<fn(&Question) -> Vec<u8>>,
}

/// How a destination treats a SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tcp {
    Accept(Duration),
    Refuse(Duration),
    Blackhole,
}

#[derive(Debug)]
enum Pending {
    Datagram {
        txn: DnsTxnId,
        from: SocketAddr,
        payload: Vec<u8>,
    },
    Stream {
        txn: DnsTxnId,
        data: Vec<u8>,
    },
    Connected(SocketId),
    Failed(SocketId, FailureReason),
    Raw(Input<'static>),
}

pub struct World {
    pub machine: Machine,
    pub now: Instant,
    /// (server, name, qtype) → rule; a missing rule is NXDOMAIN at once.
    pub dns: HashMap<(SocketAddr, String, QueryType), DnsRule>,
    /// Servers that never answer anything.
    pub dead_servers: Vec<SocketAddr>,
    pub tcp: HashMap<SocketAddr, Tcp>,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    pending: BTreeMap<u64, Pending>,
    seq: u64,
    pub events: Vec<(Instant, Event)>,
    pub opened: Vec<(Instant, SocketAddr, Option<u32>)>,
    /// Every output in order: (sequence, is_open, is_ready).
    pub log: Vec<String>,
    pub queries: Vec<(Instant, SocketAddr, QueryType, DnsTransport)>,
    pub live_dns: HashMap<DnsTxnId, SocketAddr>,
    pub live_sockets: HashMap<SocketId, SocketAddr>,
    pub closed_sockets: Vec<SocketId>,
    /// Send these raw datagrams to every UDP query, before the real answer.
    pub forgeries: Vec<Forgery>,
}

#[derive(Clone, Copy, Debug)]
pub enum Forgery {
    /// The right answer from the wrong address.
    WrongSource(SocketAddr),
    /// The right source with the id off by one.
    WrongId,
    /// Random garbage from the right source.
    Garbage,
}

impl World {
    pub fn new(machine: Machine) -> Self {
        World {
            machine,
            now: Instant::ZERO,
            dns: HashMap::new(),
            dead_servers: Vec::new(),
            tcp: HashMap::new(),
            queue: BinaryHeap::new(),
            pending: BTreeMap::new(),
            seq: 0,
            events: Vec::new(),
            opened: Vec::new(),
            log: Vec::new(),
            queries: Vec::new(),
            live_dns: HashMap::new(),
            live_sockets: HashMap::new(),
            closed_sockets: Vec::new(),
            forgeries: Vec::new(),
        }
    }

    pub fn rule(
        &mut self,
        server: &str,
        name: &str,
        qtype: QueryType,
        delay_ms: u64,
        answer: Answer,
    ) {
        self.dns.insert(
            (server.parse().unwrap(), name.to_string(), qtype),
            DnsRule {
                delay: Duration::from_millis(delay_ms),
                answer,
                truncate: false,
                silent: false,
                raw: None,
            },
        );
    }

    /// As [`World::rule`], answering with the bytes `make` builds from the
    /// query.
    pub fn raw_rule(
        &mut self,
        server: &str,
        name: &str,
        qtype: QueryType,
        make: fn(&Question) -> Vec<u8>,
    ) {
        self.dns.insert(
            (server.parse().unwrap(), name.to_string(), qtype),
            DnsRule {
                delay: Duration::ZERO,
                answer: Answer::NxDomain { negative_ttl: 0 },
                truncate: false,
                silent: false,
                raw: Some(make),
            },
        );
    }

    pub fn tcp(&mut self, addr: &str, behaviour: Tcp) {
        self.tcp.insert(addr.parse().unwrap(), behaviour);
    }

    fn schedule(&mut self, at: Instant, p: Pending) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.pending.insert(self.seq, p);
    }

    pub fn inject_at(&mut self, at: Instant, input: Input<'static>) {
        self.schedule(at, Pending::Raw(input));
    }

    /// Performs every output the machine has.
    pub fn drain(&mut self) {
        while let Some(out) = self.machine.poll() {
            match out {
                Output::Dns(DnsAction::Send(send)) => {
                    self.on_query(send.txn, send.server, send.transport, &send.payload)
                }
                Output::Dns(DnsAction::Release(txn)) => {
                    assert!(
                        self.live_dns.remove(&txn).is_some(),
                        "release of unknown {txn:?}"
                    );
                }
                Output::OpenTcp {
                    socket,
                    remote,
                    interface,
                    ..
                } => {
                    assert!(
                        self.live_sockets.insert(socket, remote).is_none(),
                        "{socket:?} opened twice"
                    );
                    self.opened.push((self.now, remote, interface));
                    self.log.push(format!("open {remote}"));
                    match self.tcp.get(&remote).copied().unwrap_or(Tcp::Blackhole) {
                        Tcp::Accept(d) => self.schedule(self.now + d, Pending::Connected(socket)),
                        Tcp::Refuse(d) => self.schedule(
                            self.now + d,
                            Pending::Failed(socket, FailureReason::Refused),
                        ),
                        // Linux gives up after 6 SYN retransmissions: 1+2+4+8+16+32+64 s.
                        Tcp::Blackhole => self.schedule(
                            self.now + Duration::from_secs(127),
                            Pending::Failed(socket, FailureReason::TimedOut),
                        ),
                    }
                }
                Output::CloseSocket { socket } | Output::AbortSocket { socket } => {
                    assert!(
                        self.live_sockets.remove(&socket).is_some(),
                        "close of unknown {socket:?}"
                    );
                    self.closed_sockets.push(socket);
                }
                // This world has no payload traffic: bytes written vanish.
                Output::Transmit { socket } => loop {
                    let n = self.machine.socket(socket).transmit_data().len();
                    if n == 0 {
                        break;
                    }
                    self.machine
                        .handle(self.now, Input::Transmitted { socket, len: n });
                },
                Output::ShutdownWrite { .. }
                | Output::ResumeReading { .. }
                | Output::Listen { .. }
                | Output::StopListening { .. } => {}
                Output::Event(e) => {
                    self.log.push(format!("event {e:?}"));
                    self.events.push((self.now, e))
                }
                other => panic!("an output this world cannot perform: {other:?}"),
            }
        }
    }

    fn on_query(
        &mut self,
        txn: DnsTxnId,
        server: SocketAddr,
        transport: DnsTransport,
        payload: &[u8],
    ) {
        self.live_dns.insert(txn, server);
        let message = match transport {
            DnsTransport::Udp => payload,
            DnsTransport::Tcp => &payload[2..],
        };
        let q = parse_query(message).expect("the machine sends valid queries");
        self.queries.push((self.now, server, q.qtype, transport));
        if self.dead_servers.contains(&server) {
            return;
        }
        let rule = self
            .dns
            .get(&(server, q.name.as_str().to_string(), q.qtype))
            .cloned()
            .unwrap_or(DnsRule {
                delay: Duration::ZERO,
                answer: Answer::NxDomain { negative_ttl: 0 },
                truncate: false,
                silent: false,
                raw: None,
            });
        if rule.silent {
            return;
        }
        let at = self.now + rule.delay;
        match transport {
            DnsTransport::Udp => {
                let bytes = match rule.raw {
                    Some(make) => make(&q),
                    None => build_response(&q, &rule.answer, rule.truncate),
                };
                for f in self.forgeries.clone() {
                    let (from, payload) = match f {
                        Forgery::WrongSource(src) => (src, bytes.clone()),
                        Forgery::WrongId => {
                            let mut b = bytes.clone();
                            b[1] = b[1].wrapping_add(1);
                            (server, b)
                        }
                        Forgery::Garbage => (server, vec![0xde, 0xad, 0xbe, 0xef, 0, 1, 2]),
                    };
                    self.schedule(
                        at.max(self.now + Duration::from_micros(1)) - Duration::from_micros(1),
                        Pending::Datagram { txn, from, payload },
                    );
                }
                self.schedule(
                    at,
                    Pending::Datagram {
                        txn,
                        from: server,
                        payload: bytes,
                    },
                );
            }
            DnsTransport::Tcp => {
                let bytes = build_response(&q, &rule.answer, false);
                let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes);
                // Deliver in two chunks to exercise reassembly.
                let cut = framed.len() / 2;
                self.schedule(
                    at,
                    Pending::Stream {
                        txn,
                        data: framed[..cut].to_vec(),
                    },
                );
                self.schedule(
                    at,
                    Pending::Stream {
                        txn,
                        data: framed[cut..].to_vec(),
                    },
                );
            }
        }
    }

    /// Runs until nothing is scheduled and no timer is armed, or `limit`.
    pub fn run_until(&mut self, limit: Instant) {
        self.drain();
        loop {
            let next_event = self.queue.peek().map(|Reverse((t, _))| *t);
            let next_timer = self.machine.poll_timeout();
            let next = match (next_event, next_timer) {
                (None, None) => break,
                (a, b) => a.into_iter().chain(b).min().unwrap(),
            };
            if next > limit {
                break;
            }
            assert!(next >= self.now, "time ran backwards");
            self.now = next;
            if next_timer == Some(next) {
                self.machine.handle_timeout(next);
                self.drain();
            }
            while let Some(Reverse((t, seq))) = self.queue.peek().copied() {
                if t > self.now {
                    break;
                }
                self.queue.pop();
                let p = self.pending.remove(&seq).unwrap();
                let now = self.now;
                match p {
                    Pending::Datagram { txn, from, payload } => self.machine.handle(
                        now,
                        Input::DnsDatagram {
                            txn,
                            from,
                            payload: &payload,
                        },
                    ),
                    Pending::Stream { txn, data } => self
                        .machine
                        .handle(now, Input::DnsStreamData { txn, data: &data }),
                    Pending::Connected(socket) => {
                        self.machine.handle(now, Input::SocketConnected { socket })
                    }
                    Pending::Failed(socket, reason) => self
                        .machine
                        .handle(now, Input::SocketFailed { socket, reason }),
                    Pending::Raw(input) => self.machine.handle(now, input),
                }
                self.drain();
            }
        }
        if self.now < limit && self.queue.is_empty() && self.machine.poll_timeout().is_none() {
            // idle: leave the clock where the last event was
        }
    }

    pub fn ready(&self, conn: ConnectionId) -> Option<(Instant, SocketAddr, Option<u32>)> {
        self.events.iter().find_map(|(t, e)| match e {
            Event::Ready {
                conn: c,
                remote,
                interface,
                ..
            } if *c == conn => Some((*t, *remote, *interface)),
            _ => None,
        })
    }

    pub fn error(&self, conn: ConnectionId) -> Option<&taps_core::EstablishmentError> {
        self.events.iter().find_map(|(_, e)| match e {
            Event::EstablishmentError { conn: c, error } if *c == conn => Some(error),
            _ => None,
        })
    }
}

pub fn addrs(list: &[&str], ttl: u32) -> Answer {
    Answer::Addresses {
        addrs: list.iter().map(|a| a.parse::<IpAddr>().unwrap()).collect(),
        ttl,
    }
}

pub fn ms(v: u64) -> Instant {
    Instant::from_millis(v)
}
