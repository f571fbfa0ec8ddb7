//! A scripted world around one `Machine`: the [`Harness`] with a
//! [`Script`] network of DNS servers that answer with real messages (built
//! by [`crate::dns`]) after set delays, and TCP destinations that connect,
//! refuse or swallow SYNs. Racing tests and the `race` example use it; the
//! full simulator is `taps-sim`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use taps_core::{
    DnsTxnId, FailureReason, Input, Instant, Machine, Output, SocketId,
    dns::{Answer, QueryType},
    dns::{DnsAction, DnsTransport},
};

use crate::dns::{Question, build_response};
use crate::harness::{Harness, Network, question_of};

/// A machine in a scripted world: the harness (every output checked and
/// recorded) with a [`Script`] performing the outputs.
pub type World = Harness<Script>;

/// How a DNS server treats one record type of one name.
#[derive(Clone, Debug)]
pub struct DnsRule {
    /// How long the answer takes.
    pub delay: Duration,
    /// What it says.
    pub answer: Answer,
    /// Answer UDP with TC=1 (the TCP answer is complete).
    pub truncate: bool,
    /// Never answer.
    pub silent: bool,
    /// Answer with these bytes instead (made from the query, so the id
    /// and question match): for answers `Answer` cannot express.
    pub raw: Option<fn(&Question) -> Vec<u8>>,
}

impl DnsRule {
    /// `answer` after `delay`, as it is.
    fn answer(delay: Duration, answer: Answer) -> Self {
        DnsRule {
            delay,
            answer,
            truncate: false,
            silent: false,
            raw: None,
        }
    }
}

/// How a destination treats a SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tcp {
    /// Connects after this long.
    Accept(Duration),
    /// Refuses (RST) after this long.
    Refuse(Duration),
    /// SYNs vanish; the kernel gives up after its retransmissions.
    Blackhole,
}

/// A datagram sent to every UDP query before the real answer.
#[derive(Clone, Copy, Debug)]
pub enum Forgery {
    /// The right answer from the wrong address.
    WrongSource(SocketAddr),
    /// The right source with the id off by one.
    WrongId,
    /// Random garbage from the right source.
    Garbage,
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

/// The scripted network: DNS rules, TCP destinations, and what it
/// scheduled for the machine.
#[derive(Debug, Default)]
pub struct Script {
    /// (server, name, qtype) → rule; a missing rule is NXDOMAIN at once.
    pub dns: HashMap<(SocketAddr, String, QueryType), DnsRule>,
    /// Servers that never answer anything.
    pub dead_servers: Vec<SocketAddr>,
    /// Destinations; a missing one is a blackhole.
    pub tcp: HashMap<SocketAddr, Tcp>,
    /// Sent to every UDP query, before the real answer.
    pub forgeries: Vec<Forgery>,
    /// Every socket opened (`open <remote>`) and every event
    /// (`event <Debug>`), in order: equal runs, equal logs.
    pub log: Vec<String>,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    pending: BTreeMap<u64, Pending>,
    seq: u64,
}

impl Script {
    fn schedule(&mut self, at: Instant, p: Pending) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.pending.insert(self.seq, p);
    }

    fn on_query(
        &mut self,
        now: Instant,
        txn: DnsTxnId,
        server: SocketAddr,
        q: Question,
        tcp: bool,
    ) {
        if self.dead_servers.contains(&server) {
            return;
        }
        let rule = self
            .dns
            .get(&(server, q.name.as_str().to_string(), q.qtype))
            .cloned()
            .unwrap_or(DnsRule::answer(
                Duration::ZERO,
                Answer::NxDomain { negative_ttl: 0 },
            ));
        if rule.silent {
            return;
        }
        let at = now + rule.delay;
        if tcp {
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
            return;
        }
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
                at.max(now + Duration::from_micros(1)) - Duration::from_micros(1),
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
}

impl Network for Script {
    fn perform(&mut self, machine: &mut Machine, now: Instant, out: &Output) {
        match out {
            Output::Dns(DnsAction::Send(send)) => {
                let tcp = send.transport == DnsTransport::Tcp;
                self.on_query(now, send.txn, send.server, question_of(send), tcp);
            }
            Output::OpenTcp { socket, remote, .. } => {
                let socket = *socket;
                self.log.push(format!("open {remote}"));
                match self.tcp.get(remote).copied().unwrap_or(Tcp::Blackhole) {
                    Tcp::Accept(d) => self.schedule(now + d, Pending::Connected(socket)),
                    Tcp::Refuse(d) => {
                        self.schedule(now + d, Pending::Failed(socket, FailureReason::Refused))
                    }
                    // Linux gives up after 6 SYN retransmissions: 1+2+4+8+16+32+64 s.
                    Tcp::Blackhole => self.schedule(
                        now + Duration::from_secs(127),
                        Pending::Failed(socket, FailureReason::TimedOut),
                    ),
                }
            }
            // This world has no payload traffic: bytes written vanish.
            Output::Transmit { socket } => loop {
                let n = machine.socket(*socket).transmit_data().len();
                if n == 0 {
                    break;
                }
                machine.handle(
                    now,
                    Input::Transmitted {
                        socket: *socket,
                        len: n,
                    },
                );
            },
            Output::Dns(DnsAction::Release(_))
            | Output::CloseSocket { .. }
            | Output::AbortSocket { .. }
            | Output::ShutdownWrite { .. }
            | Output::ResumeReading { .. }
            | Output::Listen { .. }
            | Output::StopListening { .. } => {}
            Output::Event(e) => self.log.push(format!("event {e:?}")),
            other => panic!("an output this world cannot perform: {other:?}"),
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((t, _))| *t)
    }

    fn deliver_due(&mut self, machine: &mut Machine, now: Instant) -> bool {
        let Some(Reverse((t, seq))) = self.queue.peek().copied() else {
            return false;
        };
        if t > now {
            return false;
        }
        self.queue.pop();
        let p = self.pending.remove(&seq).expect("a scheduled delivery");
        match p {
            Pending::Datagram { txn, from, payload } => machine.handle(
                now,
                Input::DnsDatagram {
                    txn,
                    from,
                    payload: &payload,
                },
            ),
            Pending::Stream { txn, data } => {
                machine.handle(now, Input::DnsStreamData { txn, data: &data })
            }
            Pending::Connected(socket) => machine.handle(now, Input::SocketConnected { socket }),
            Pending::Failed(socket, reason) => {
                machine.handle(now, Input::SocketFailed { socket, reason })
            }
            Pending::Raw(input) => machine.handle(now, input),
        }
        true
    }
}

impl World {
    /// `machine` in a world with no DNS rules and no destinations yet.
    pub fn new(machine: Machine) -> Self {
        Harness::with_network(machine, Script::default())
    }

    /// `server` answers `qtype` questions about `name` with `answer` after
    /// `delay_ms`.
    pub fn rule(
        &mut self,
        server: &str,
        name: &str,
        qtype: QueryType,
        delay_ms: u64,
        answer: Answer,
    ) {
        self.net.dns.insert(
            (
                server.parse().expect("a server address"),
                name.to_string(),
                qtype,
            ),
            DnsRule::answer(Duration::from_millis(delay_ms), answer),
        );
    }

    /// As [`World::rule`], answering at once with the bytes `make` builds
    /// from the query.
    pub fn raw_rule(
        &mut self,
        server: &str,
        name: &str,
        qtype: QueryType,
        make: fn(&Question) -> Vec<u8>,
    ) {
        self.net.dns.insert(
            (
                server.parse().expect("a server address"),
                name.to_string(),
                qtype,
            ),
            DnsRule {
                raw: Some(make),
                ..DnsRule::answer(Duration::ZERO, Answer::NxDomain { negative_ttl: 0 })
            },
        );
    }

    /// How the destination `addr` treats a SYN.
    pub fn tcp(&mut self, addr: &str, behaviour: Tcp) {
        self.net
            .tcp
            .insert(addr.parse().expect("a socket address"), behaviour);
    }

    /// Hands the machine `input` at `at`.
    pub fn inject_at(&mut self, at: Instant, input: Input<'static>) {
        self.net.schedule(at, Pending::Raw(input));
    }
}

/// An address answer of `list` (IP address literals) with `ttl`.
pub fn addrs(list: &[&str], ttl: u32) -> Answer {
    Answer::Addresses {
        addrs: list
            .iter()
            .map(|a| a.parse::<IpAddr>().expect("an IP address"))
            .collect(),
        ttl,
    }
}

/// `v` milliseconds after time zero.
pub fn ms(v: u64) -> Instant {
    Instant::from_millis(v)
}
