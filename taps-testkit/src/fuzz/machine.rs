//! The `machine` target: an `arbitrary`-decoded configuration and sequence
//! of application commands, network reports, timers and in-machine links,
//! stale and forged ids included ([`machine`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use taps_core::{
    Config, ConnectionId, DnsTxnId, Event, FailureReason, Input, Instant, Interface,
    InterfaceAddress, InterfaceKind, IoLimits, ListenerConfig, ListenerId, Machine, Message,
    Preconnection, SocketId, TlsCheckout,
    dns::{Answer, HttpsRecord, QueryType},
    dns::{DnsConfig, DnsSend, DnsTransport},
    framer::FramerFactory,
    race::{Policy, RaceConfig, RacingMode},
};

use super::dns_answer::answer_query;
use super::{
    CLIENT_ADDR, DNS_NAME, DNS_SERVERS, DNS_SPOOFER, MAX_FLOW_ROUNDS, SERVER_ADDR, addr,
    client_tls, host, question, server_tls,
};
use crate::contract::nonempty;
use crate::harness::{Harness, Opened, SocketEnd, tracing};
use crate::wire::{Through, read_through, write_through};

/// A `machine` input: a configuration and a sequence of operations, decoded
/// from the raw bytes by `arbitrary`.
#[derive(Arbitrary, Debug)]
pub struct MachineCase {
    config: ConfigSpec,
    ops: Vec<MachineOp>,
}

#[derive(Arbitrary, Debug)]
struct ConfigSpec {
    seed: u8,
    /// 0: the default (65 536); else 1 to 8.
    max_connections: u8,
    /// Small limits make back-pressure and refusals reachable.
    limits: Option<LimitsSpec>,
    race: RaceSpec,
    /// 0, 1 or 2 DNS servers.
    servers: u8,
    dns_attempts: u8,
}

#[derive(Arbitrary, Debug)]
struct LimitsSpec {
    queued_bytes: u16,
    queued_messages: u8,
    high_water: u16,
    receive_buffer: u16,
    pending_receives: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct RaceSpec {
    policy: u8,
    attempt_delay_ms: u16,
    first_family_count: u8,
    path_mode: u8,
    /// Zero is allowed: a degenerate limit must still not break anything.
    max_concurrent: u8,
    max_candidates: u8,
}

impl RaceSpec {
    fn config(self) -> RaceConfig {
        let policy =
            [Policy::Hev3, Policy::Rfc6555, Policy::Sequential][usize::from(self.policy % 3)];
        RaceConfig {
            connection_attempt_delay: Duration::from_millis(u64::from(self.attempt_delay_ms)),
            first_address_family_count: self.first_family_count % 4,
            path_mode: match self.path_mode % 3 {
                0 => RacingMode::Staggered(Duration::from_millis(u64::from(self.attempt_delay_ms))),
                1 => RacingMode::Simultaneous,
                _ => RacingMode::Failover,
            },
            max_concurrent_attempts: u16::from(self.max_concurrent % 10),
            max_candidates: match self.max_candidates {
                0 => 64,
                n => u16::from(n % 80),
            },
            ..RaceConfig::for_policy(policy)
        }
    }
}

/// Names an id: the latest one seen of its kind, the n-th one seen (live or
/// freed), or raw parts (unknown or stale ids).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Pick {
    Latest,
    Nth(u8),
    Raw(u32, u32),
}

fn pick<T: Copy>(list: &[T], p: Pick, raw: impl Fn(u32, u32) -> T) -> T {
    match (p, list.last()) {
        (Pick::Latest, Some(last)) => *last,
        (Pick::Nth(n), Some(_)) => list[usize::from(n) % list.len()],
        (Pick::Raw(i, g), _) => raw(i, g),
        (_, None) => raw(0, 0),
    }
}

/// One step of a `machine` input. Decoded by hand (see the `Arbitrary`
/// impl) with fixed op codes, so a saved input keeps its meaning when ops
/// are added; the payloads are `arbitrary`-derived.
#[derive(Debug)]
enum MachineOp {
    Initiate(InitiateSpec),
    Send {
        conn: Pick,
        msg: MsgSpec,
    },
    Receive {
        conn: Pick,
        min: u16,
        max: u16,
    },
    Read {
        conn: Pick,
        len: u16,
    },
    Write {
        conn: Pick,
        len: u16,
    },
    Close {
        conn: Pick,
    },
    Abort {
        conn: Pick,
    },
    Listen(ListenSpec),
    Accept {
        listener: Pick,
        remote: u8,
    },
    Stop {
        listener: Pick,
    },
    SetConnectionLimit {
        listener: Pick,
        limit: Option<u8>,
    },
    ListenFailed {
        listener: Pick,
        reason: ReasonSpec,
    },
    DnsAnswer {
        txn: Pick,
        answer: AnswerSpec,
        spoofed: bool,
        truncated: bool,
    },
    DnsRaw {
        txn: Pick,
        bytes: Vec<u8>,
        stream: bool,
        patch_id: bool,
    },
    DnsTransportFailed {
        txn: Pick,
    },
    Connected {
        socket: Pick,
    },
    Data {
        socket: Pick,
        bytes: Vec<u8>,
    },
    Eof {
        socket: Pick,
    },
    Failed {
        socket: Pick,
        reason: ReasonSpec,
    },
    Transmitted {
        socket: Pick,
        n: u16,
    },
    /// Joins an attempt's socket to a new connection accepted by a listener
    /// of the same machine, so real handshakes can happen.
    Link {
        socket: Pick,
        listener: Pick,
    },
    /// Moves bytes along every link until nothing moves.
    Flow,
    /// Moves at most `chunk` bytes (at least one) along each link, once:
    /// partial records and frames.
    Trickle {
        chunk: u16,
    },
    /// A whole connection in one step: a listener on 192.0.2.10:443 with
    /// this TLS and framer, an initiate to it with the same, linked and
    /// flowed — so deep states are one operation away.
    Connect {
        tls: bool,
        framer: Option<FramerSpec>,
        first: Option<MsgSpec>,
        limit: Option<u8>,
    },
    /// Many messages at once: `count` sends of `msg`.
    Bulk {
        conn: Pick,
        msg: MsgSpec,
        count: u8,
    },
    /// `len` bytes of `fill` arrive on a socket, without costing input bytes.
    Flood {
        socket: Pick,
        len: u16,
        fill: u8,
    },
    Interfaces {
        list: Vec<IfaceSpec>,
        as_input: bool,
    },
    Advance {
        ms: u16,
    },
    /// `handle_timeout` at the current time, due or not.
    TimeoutNow,
    /// `Input::Pref64`: a Router Advertisement's NAT64 prefix (RFC 8781),
    /// one of [`PREF64S`] by index, or withdrawn (any other index).
    Pref64 {
        which: u8,
    },
    /// The application takes over reading a plain stream's socket
    /// (`Machine::delegate_reading`).
    DelegateReading {
        conn: Pick,
    },
    /// A plain stream's pass-through: with `write`, up to `len` bytes go
    /// straight to the linked partner (`write_through`, `wrote_through`);
    /// else up to `len` bytes are read straight from what the partner
    /// sent (`read_through`).
    PlainThrough {
        conn: Pick,
        write: bool,
        len: u16,
    },
    /// A TLS stream's checked-out session (`check_out_tls`) reads up to
    /// `len` bytes from the partner, or writes `len` bytes to a socket that
    /// takes at most `room` of them now.
    TlsThrough {
        conn: Pick,
        write: bool,
        len: u16,
        room: u16,
    },
}

/// The NAT64 prefixes a `Pref64` op may advertise: the Well-Known Prefix,
/// and one of each length RFC 6052 §2.2 allows.
const PREF64S: [&str; 7] = [
    "64:ff9b::/96",
    "2001:db8::/32",
    "2001:db8:100::/40",
    "2001:db8:122::/48",
    "2001:db8:122:300::/56",
    "2001:db8:122:344::/64",
    "2001:db8:64::/96",
];

/// Op codes are taken modulo this, which must never change (room for new
/// ops up to it); codes without an op decode as `TimeoutNow`, which is cheap.
const MACHINE_OP_CODES: u8 = 32;

impl<'a> Arbitrary<'a> for MachineOp {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        use MachineOp::*;
        // Append new ops with new codes; never renumber.
        Ok(match u8::arbitrary(u)? % MACHINE_OP_CODES {
            0 => Initiate(u.arbitrary()?),
            1 => Send {
                conn: u.arbitrary()?,
                msg: u.arbitrary()?,
            },
            2 => Receive {
                conn: u.arbitrary()?,
                min: u.arbitrary()?,
                max: u.arbitrary()?,
            },
            3 => Read {
                conn: u.arbitrary()?,
                len: u.arbitrary()?,
            },
            4 => Write {
                conn: u.arbitrary()?,
                len: u.arbitrary()?,
            },
            5 => Close {
                conn: u.arbitrary()?,
            },
            6 => Abort {
                conn: u.arbitrary()?,
            },
            7 => Listen(u.arbitrary()?),
            8 => Accept {
                listener: u.arbitrary()?,
                remote: u.arbitrary()?,
            },
            9 => Stop {
                listener: u.arbitrary()?,
            },
            10 => SetConnectionLimit {
                listener: u.arbitrary()?,
                limit: u.arbitrary()?,
            },
            11 => ListenFailed {
                listener: u.arbitrary()?,
                reason: u.arbitrary()?,
            },
            12 => DnsAnswer {
                txn: u.arbitrary()?,
                answer: u.arbitrary()?,
                spoofed: u.arbitrary()?,
                truncated: u.arbitrary()?,
            },
            13 => DnsRaw {
                txn: u.arbitrary()?,
                bytes: u.arbitrary()?,
                stream: u.arbitrary()?,
                patch_id: u.arbitrary()?,
            },
            14 => DnsTransportFailed {
                txn: u.arbitrary()?,
            },
            15 => Connected {
                socket: u.arbitrary()?,
            },
            16 => Data {
                socket: u.arbitrary()?,
                bytes: u.arbitrary()?,
            },
            17 => Eof {
                socket: u.arbitrary()?,
            },
            18 => Failed {
                socket: u.arbitrary()?,
                reason: u.arbitrary()?,
            },
            19 => Transmitted {
                socket: u.arbitrary()?,
                n: u.arbitrary()?,
            },
            20 => Link {
                socket: u.arbitrary()?,
                listener: u.arbitrary()?,
            },
            21 => Flow,
            22 => Trickle {
                chunk: u.arbitrary()?,
            },
            23 => Connect {
                tls: u.arbitrary()?,
                framer: u.arbitrary()?,
                first: u.arbitrary()?,
                limit: u.arbitrary()?,
            },
            24 => Bulk {
                conn: u.arbitrary()?,
                msg: u.arbitrary()?,
                count: u.arbitrary()?,
            },
            25 => Flood {
                socket: u.arbitrary()?,
                len: u.arbitrary()?,
                fill: u.arbitrary()?,
            },
            26 => Interfaces {
                list: u.arbitrary()?,
                as_input: u.arbitrary()?,
            },
            27 => Advance { ms: u.arbitrary()? },
            28 => DelegateReading {
                conn: u.arbitrary()?,
            },
            29 => PlainThrough {
                conn: u.arbitrary()?,
                write: u.arbitrary()?,
                len: u.arbitrary()?,
            },
            30 => TlsThrough {
                conn: u.arbitrary()?,
                write: u.arbitrary()?,
                len: u.arbitrary()?,
                room: u.arbitrary()?,
            },
            31 => Pref64 {
                which: u.arbitrary()?,
            },
            _ => TimeoutNow,
        })
    }
}

#[derive(Arbitrary, Debug)]
struct InitiateSpec {
    target: TargetSpec,
    tls: bool,
    framer: Option<FramerSpec>,
    first: Option<MsgSpec>,
    race: Option<RaceSpec>,
    prohibit_expensive: bool,
    avoid_kind: Option<u8>,
    conn_timeout_ms: Option<u16>,
}

#[derive(Arbitrary, Debug)]
enum TargetSpec {
    V4,
    V6,
    Name,
    NameOtherPort,
    Hosts,
    Localhost,
    NoPort,
    Service,
    Text(String),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct FramerSpec {
    kind: u8,
    max: u16,
}

impl FramerSpec {
    fn factory(self) -> FramerFactory {
        match self.kind % 3 {
            0 => FramerFactory::length_prefixed(u32::from(self.max)),
            1 => FramerFactory::lines(usize::from(self.max)),
            _ => FramerFactory::delimited(b"\r\n".to_vec(), usize::from(self.max)),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct MsgSpec {
    len: u16,
    fill: u8,
    replayable: bool,
    is_final: bool,
    priority: u8,
    lifetime_ms: Option<u16>,
}

impl MsgSpec {
    fn message(&self) -> Message {
        let mut m = Message::new(vec![self.fill; usize::from(self.len % 8192)])
            .priority(u32::from(self.priority));
        if self.replayable {
            m = m.safely_replayable();
        }
        if self.is_final {
            m = m.final_message();
        }
        if let Some(ms) = self.lifetime_ms {
            m = m.lifetime(Duration::from_millis(u64::from(ms)));
        }
        m
    }
}

#[derive(Arbitrary, Debug)]
struct ListenSpec {
    tls: bool,
    framer: Option<FramerSpec>,
    limit: Option<u8>,
    addrs: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ReasonSpec {
    Refused,
    Unreachable,
    TimedOut,
    Reset,
    Os(i32),
}

impl ReasonSpec {
    fn reason(self) -> FailureReason {
        match self {
            ReasonSpec::Refused => FailureReason::Refused,
            ReasonSpec::Unreachable => FailureReason::Unreachable,
            ReasonSpec::TimedOut => FailureReason::TimedOut,
            ReasonSpec::Reset => FailureReason::Reset,
            ReasonSpec::Os(e) => FailureReason::Os(e),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum AnswerSpec {
    Addrs(Vec<u8>, u16),
    Https(Vec<HttpsSpec>),
    NoData,
    NxDomain,
    ServFail,
    Refused,
}

#[derive(Arbitrary, Debug)]
struct HttpsSpec {
    priority: u8,
    other_target: bool,
    alpn: u8,
    no_default_alpn: bool,
    port: Option<u16>,
    v4: Vec<u8>,
    v6: Vec<u8>,
    ech: bool,
}

/// Addresses answers and hints draw from: ordinary, loopback, unspecified,
/// broadcast, link-local, mapped and NAT64 ones.
fn pool_v4(i: u8) -> Ipv4Addr {
    const POOL: [[u8; 4]; 8] = [
        [192, 0, 2, 10],
        [192, 0, 2, 11],
        [192, 0, 2, 20],
        [127, 0, 0, 1],
        [0, 0, 0, 0],
        [255, 255, 255, 255],
        [10, 0, 0, 1],
        [169, 254, 1, 1],
    ];
    Ipv4Addr::from(POOL[usize::from(i) % POOL.len()])
}

fn pool_v6(i: u8) -> Ipv6Addr {
    const POOL: [[u16; 8]; 8] = [
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10],
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11],
        [0, 0, 0, 0, 0, 0, 0, 1],
        [0xfe80, 0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x020a],
        [0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x020a],
        [0xfd00, 0, 0, 0, 0, 0, 0, 1],
    ];
    Ipv6Addr::from(POOL[usize::from(i) % POOL.len()])
}

impl AnswerSpec {
    fn answer(&self) -> Answer {
        match self {
            AnswerSpec::Addrs(list, ttl) if !list.is_empty() => Answer::Addresses {
                addrs: list
                    .iter()
                    .take(64)
                    .map(|&i| {
                        if i & 0x80 != 0 {
                            IpAddr::V6(pool_v6(i))
                        } else {
                            IpAddr::V4(pool_v4(i))
                        }
                    })
                    .collect(),
                ttl: u32::from(*ttl),
            },
            AnswerSpec::Https(records) if !records.is_empty() => Answer::Https {
                records: records.iter().take(20).map(HttpsSpec::record).collect(),
                ttl: 300,
            },
            AnswerSpec::Addrs(..) | AnswerSpec::Https(_) | AnswerSpec::NoData => {
                Answer::NoData { negative_ttl: 30 }
            }
            AnswerSpec::NxDomain => Answer::NxDomain { negative_ttl: 30 },
            AnswerSpec::ServFail => Answer::ServFail,
            AnswerSpec::Refused => Answer::Refused,
        }
    }
}

impl HttpsSpec {
    fn record(&self) -> HttpsRecord {
        const ALPN: [&str; 4] = ["h2", "http/1.1", "h3", "x"];
        HttpsRecord {
            priority: u16::from(self.priority % 4),
            target: self.other_target.then(|| host("svc.example.net")),
            alpn: (0..4)
                .filter(|b| self.alpn & (1 << b) != 0)
                .map(|b| ALPN[b].to_string())
                .collect(),
            no_default_alpn: self.no_default_alpn,
            port: self.port,
            ipv4hint: self.v4.iter().take(40).map(|&i| pool_v4(i)).collect(),
            ipv6hint: self.v6.iter().take(40).map(|&i| pool_v6(i)).collect(),
            ech: self.ech,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct IfaceSpec {
    index: u8,
    kind: u8,
    v4: bool,
    v6: bool,
    link_local_only: bool,
    up: bool,
    expensive: bool,
    constrained: bool,
}

impl IfaceSpec {
    fn interface(&self) -> Interface {
        let index = u32::from(self.index % 4) + 1;
        let mut addrs = Vec::new();
        if self.v4 {
            addrs.push(InterfaceAddress {
                addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100 + index as u8)),
                prefix_len: 24,
                deprecated: false,
            });
        }
        if self.v6 {
            let first = if self.link_local_only { 0xfe80 } else { 0x2001 };
            addrs.push(InterfaceAddress {
                addr: IpAddr::V6(Ipv6Addr::new(first, 0xdb8, 1, 0, 0, 0, 0, index as u16)),
                prefix_len: 64,
                deprecated: false,
            });
        }
        Interface {
            name: format!("if{index}"),
            index,
            kind: InterfaceKind::ALL[usize::from(self.kind) % InterfaceKind::ALL.len()],
            addrs,
            mtu: 1500,
            expensive: self.expensive,
            constrained: self.constrained,
            up: self.up,
        }
    }
}

/// Bound on operations per input, so one input cannot run for long.
const MAX_MACHINE_OPS: usize = 128;

/// The ids a `machine` run has seen, for [`Pick`].
#[derive(Default)]
struct Seen {
    conns: Vec<ConnectionId>,
    listeners: Vec<ListenerId>,
    sockets: Vec<SocketId>,
    /// Sockets from `OpenTcp`, for `Link`.
    attempts: Vec<SocketId>,
    /// (attempt socket, accepted socket).
    links: Vec<(SocketId, SocketId)>,
    /// FIN or RST owed to a socket once its partner's bytes are in.
    owed: Vec<(SocketId, SocketId, SocketEnd)>,
    /// The end each socket was told about, so none is told twice.
    told: HashMap<SocketId, SocketEnd>,
    events_seen: usize,
    opened_seen: usize,
    ends_seen: usize,
}

/// **machine**: an `arbitrary`-decoded [`MachineCase`]: application
/// commands (initiate, send, receive, read, write, close, abort, listen,
/// accept, stop, connection limits), socket and DNS reports (real answers
/// built by the responder, and raw bytes), timer expiries, interface
/// changes, and in-machine links that let real TLS and framer handshakes
/// complete — with stale and unknown ids drawn as often as live ones.
///
/// Checks, after every operation: the [`Checker`](crate::contract::Checker) invariants (no panic, at
/// most one `Ready` per connection, RFC 9622 event order, no output naming
/// a freed handle), the socket table agreeing with the outputs, `Ready`
/// naming the remote its socket was opened to, and the connection bound.
/// At the end, everything is aborted and every timer run: nothing may be
/// left (see [`Harness::finish`]).
pub fn machine(data: &[u8]) {
    let Ok(case) = MachineCase::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let c = &case.config;
    let max_connections = match c.max_connections {
        0 => 65_536,
        n => usize::from(n % 8) + 1,
    };
    let io = match &c.limits {
        None => IoLimits::default(),
        Some(l) => IoLimits {
            max_queued_bytes: usize::from(l.queued_bytes),
            max_queued_messages: usize::from(l.queued_messages),
            transmit_high_water: usize::from(l.high_water),
            max_receive_buffer: usize::from(l.receive_buffer),
            max_pending_receives: usize::from(l.pending_receives),
        },
    };
    let config = Config {
        seed: u64::from(c.seed),
        race: c.race.config(),
        dns: DnsConfig {
            servers: DNS_SERVERS
                .iter()
                .take(usize::from(c.servers % 3))
                .map(|s| addr(s))
                .collect(),
            attempts: c.dns_attempts % 3,
            ..DnsConfig::default()
        },
        hosts: taps_core::dns::parse_hosts(
            "192.0.2.20 hosts.example\n2001:db8::20 hosts.example\n",
        ),
        max_connections,
        io,
        ..Config::new(0)
    };
    let mut h = Harness::manual(config);
    let mut seen = Seen::default();
    if tracing() {
        eprintln!("{:?}", case.config);
    }
    for op in case.ops.iter().take(MAX_MACHINE_OPS) {
        if tracing() {
            eprintln!("{op:?}");
        }
        machine_op(&mut h, &mut seen, op);
        h.drain();
        note_ids(&h, &mut seen);
        if h.machine.stats().live_connections > max_connections {
            violated!(
                "{} connections live, the limit is {max_connections}",
                h.machine.stats().live_connections
            );
        }
    }
    h.finish();
}

/// Learns the ids the machine's outputs introduced, and checks that each
/// `Ready` names the remote its socket went to.
fn note_ids(h: &Harness, seen: &mut Seen) {
    for &Opened { socket, .. } in &h.opened[seen.opened_seen..] {
        seen.sockets.push(socket);
        seen.attempts.push(socket);
    }
    seen.opened_seen = h.opened.len();
    for (_, e) in &h.events[seen.events_seen..] {
        match e {
            Event::ConnectionReceived { conn, .. } => seen.conns.push(*conn),
            Event::Ready { socket, remote, .. } => {
                let opened = h
                    .opened
                    .iter()
                    .find(|o| o.socket == *socket)
                    .map(|o| o.remote);
                if opened != Some(*remote) {
                    violated!(
                        "Ready names {remote} for {socket:?}, which was opened to {opened:?}"
                    );
                }
            }
            _ => {}
        }
    }
    seen.events_seen = h.events.len();
}

fn machine_op(h: &mut Harness, seen: &mut Seen, op: &MachineOp) {
    let now = h.now;
    let conn_id = match op {
        MachineOp::Send { conn, .. }
        | MachineOp::Receive { conn, .. }
        | MachineOp::Read { conn, .. }
        | MachineOp::Write { conn, .. }
        | MachineOp::DelegateReading { conn }
        | MachineOp::PlainThrough { conn, .. }
        | MachineOp::TlsThrough { conn, .. }
        | MachineOp::Close { conn }
        | MachineOp::Bulk { conn, .. }
        | MachineOp::Abort { conn } => Some(pick(&seen.conns, *conn, ConnectionId::from_raw)),
        _ => None,
    };
    if let Some(id) = conn_id {
        let live = h.machine.connection_info(id).map(|c| c.state()).is_some();
        h.check.forged(id, live);
    }
    let conn = |seen: &Seen, p: Pick| pick(&seen.conns, p, ConnectionId::from_raw);
    let listener = |seen: &Seen, p: Pick| pick(&seen.listeners, p, ListenerId::from_raw);
    let socket = |seen: &Seen, p: Pick| pick(&seen.sockets, p, SocketId::from_raw);
    let txn = |h: &Harness, p: Pick| {
        let txns: Vec<DnsTxnId> = h.queries.iter().map(|q| q.send.txn).collect();
        pick(&txns, p, DnsTxnId::from_raw)
    };
    match op {
        MachineOp::Initiate(spec) => {
            let Some(pre) = preconnection(spec) else {
                return;
            };
            let result = match &spec.first {
                Some(msg) => h
                    .initiate_with_send(now, &pre, msg.message())
                    .map(|(c, _)| c),
                None => h.initiate(now, &pre),
            };
            if let Ok(c) = result {
                seen.conns.push(c);
            }
        }
        MachineOp::Send { conn: p, msg } => {
            if let Err(e) = h
                .machine
                .connection(conn(seen, *p))
                .send(now, msg.message())
            {
                nonempty(&e);
            }
        }
        MachineOp::Receive { conn: p, min, max } => {
            let _ = h.machine.connection(conn(seen, *p)).receive(
                now,
                usize::from(*min),
                usize::from(*max),
            );
        }
        MachineOp::Read { conn: p, len } => {
            let mut buf = vec![0; usize::from(*len)];
            if let Ok(n) = h.machine.connection(conn(seen, *p)).read(&mut buf)
                && n > buf.len()
            {
                violated!("read returned {n} for a {}-byte buffer", buf.len());
            }
        }
        MachineOp::Write { conn: p, len } => {
            let data = vec![b'w'; usize::from(*len)];
            if let Ok(n) = h.machine.connection(conn(seen, *p)).write(&data)
                && n > data.len()
            {
                violated!("write took {n} of {} bytes", data.len());
            }
        }
        MachineOp::Close { conn: p } => h.machine.connection(conn(seen, *p)).close(now),
        MachineOp::Abort { conn: p } => h.machine.connection(conn(seen, *p)).abort(now),
        MachineOp::Listen(spec) => {
            let v4 = addr(SERVER_ADDR);
            let v6 = addr("[2001:db8::10]:443");
            let local = match spec.addrs % 4 {
                0 => vec![v4],
                1 => vec![v6],
                2 => vec![v6, v4],
                _ => Vec::new(),
            };
            let mut lc = ListenerConfig::on(local);
            if spec.tls {
                lc = lc.with_security(server_tls());
            }
            if let Some(f) = spec.framer {
                lc = lc.with_framer(f.factory());
            }
            lc.connection_limit = spec.limit.map(usize::from);
            if let Some(l) = h.listen(lc) {
                seen.listeners.push(l);
            }
        }
        MachineOp::Accept {
            listener: p,
            remote,
        } => {
            let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, *remote)), 40000);
            if let Some(s) = h.accept(listener(seen, *p), from) {
                seen.sockets.push(s);
            }
        }
        MachineOp::Stop { listener: p } => h.machine.listener(listener(seen, *p)).stop(),
        MachineOp::SetConnectionLimit { listener: p, limit } => {
            h.machine
                .listener(listener(seen, *p))
                .set_new_connection_limit(limit.map(usize::from));
        }
        MachineOp::ListenFailed {
            listener: p,
            reason,
        } => h.handle(Input::ListenFailed {
            listener: listener(seen, *p),
            reason: reason.reason(),
        }),
        MachineOp::DnsAnswer {
            txn: p,
            answer,
            spoofed,
            truncated,
        } => {
            let id = txn(h, *p);
            let asked = h
                .queries
                .iter()
                .rev()
                .find(|q| q.send.txn == id)
                .map(|q| (q.send.clone(), q.question.clone()));
            let (send, q) = asked.unwrap_or_else(|| {
                let q = question(0, DNS_NAME, QueryType::A);
                let send = DnsSend {
                    txn: id,
                    server: addr(DNS_SERVERS[0]),
                    transport: DnsTransport::Udp,
                    payload: Vec::new(),
                };
                (send, q)
            });
            let send = DnsSend {
                server: if *spoofed {
                    addr(DNS_SPOOFER)
                } else {
                    send.server
                },
                ..send
            };
            answer_query(h, &send, &q, &answer.answer(), *truncated);
        }
        MachineOp::DnsRaw {
            txn: p,
            bytes,
            stream,
            patch_id,
        } => {
            let id = txn(h, *p);
            let asked = h
                .queries
                .iter()
                .rev()
                .find(|q| q.send.txn == id)
                .map(|q| (q.send.clone(), q.question.clone()));
            let mut bytes = bytes.clone();
            if let Some((_, q)) = &asked
                && *patch_id
                && bytes.len() >= 2
            {
                bytes[..2].copy_from_slice(&q.id.to_be_bytes());
            }
            if *stream {
                h.handle(Input::DnsStreamData {
                    txn: id,
                    data: &bytes,
                });
            } else {
                let from = asked.map_or_else(|| addr(DNS_SERVERS[0]), |(s, _)| s.server);
                h.handle(Input::DnsDatagram {
                    txn: id,
                    from,
                    payload: &bytes,
                });
            }
        }
        MachineOp::DnsTransportFailed { txn: p } => {
            let id = txn(h, *p);
            h.handle(Input::DnsTransportFailed { txn: id });
        }
        MachineOp::Connected { socket: p } => h.handle(Input::SocketConnected {
            socket: socket(seen, *p),
        }),
        MachineOp::Data { socket: p, bytes } => h.handle(Input::SocketData {
            socket: socket(seen, *p),
            data: bytes,
        }),
        MachineOp::Eof { socket: p } => h.handle(Input::SocketEof {
            socket: socket(seen, *p),
        }),
        MachineOp::Failed { socket: p, reason } => h.handle(Input::SocketFailed {
            socket: socket(seen, *p),
            reason: reason.reason(),
        }),
        MachineOp::Transmitted { socket: p, n } => {
            let s = socket(seen, *p);
            h.machine.handle(
                now,
                Input::Transmitted {
                    socket: s,
                    len: usize::from(*n),
                },
            );
        }
        MachineOp::Link {
            socket: p,
            listener: l,
        } => {
            let client = pick(&seen.attempts, *p, SocketId::from_raw);
            let linked = seen.links.iter().any(|(a, b)| *a == client || *b == client);
            if linked || !h.check.is_live_socket(client) {
                return;
            }
            if let Some(server) = h.accept(listener(seen, *l), addr(CLIENT_ADDR)) {
                seen.sockets.push(server);
                seen.links.push((client, server));
                h.handle(Input::SocketConnected { socket: client });
            }
        }
        MachineOp::Flow => flow_links(h, seen),
        MachineOp::DelegateReading { conn: p } => {
            h.machine.connection(conn(seen, *p)).delegate_reading();
            h.drain();
        }
        MachineOp::PlainThrough {
            conn: p,
            write,
            len,
        } => plain_through(h, seen, conn(seen, *p), *write, usize::from(*len)),
        MachineOp::TlsThrough {
            conn: p,
            write,
            len,
            room,
        } => tls_through(
            h,
            seen,
            conn(seen, *p),
            *write,
            usize::from(*len),
            usize::from(*room),
        ),
        MachineOp::Trickle { chunk } => {
            let chunk = usize::from(*chunk).max(1);
            for i in 0..seen.links.len() {
                let (a, b) = seen.links[i];
                h.pipe(a, b, chunk);
                h.pipe(b, a, chunk);
            }
        }
        MachineOp::Connect {
            tls,
            framer,
            first,
            limit,
        } => {
            let mut lc = ListenerConfig::on(vec![addr(SERVER_ADDR)]);
            let mut pre = Preconnection::new(SERVER_ADDR.parse().expect("constant endpoint"));
            if *tls {
                lc = lc.with_security(server_tls());
                pre = pre.with_security(client_tls());
            }
            if let Some(f) = framer {
                lc = lc.with_framer(f.factory());
                pre = pre.with_framer(f.factory());
            }
            lc.connection_limit = limit.map(usize::from);
            let Some(l) = h.listen(lc) else {
                return;
            };
            seen.listeners.push(l);
            let opened = h.opened.len();
            let result = match first {
                Some(msg) => h
                    .initiate_with_send(now, &pre, msg.message())
                    .map(|(c, _)| c),
                None => h.initiate(now, &pre),
            };
            let Ok(c) = result else {
                return;
            };
            seen.conns.push(c);
            note_ids(h, seen);
            let Some(&Opened { socket: client, .. }) = h.opened.get(opened) else {
                return;
            };
            if let Some(server) = h.accept(l, addr(CLIENT_ADDR)) {
                seen.sockets.push(server);
                seen.links.push((client, server));
                h.handle(Input::SocketConnected { socket: client });
                flow_links(h, seen);
            }
        }
        MachineOp::Bulk {
            conn: p,
            msg,
            count,
        } => {
            let id = conn(seen, *p);
            for _ in 0..*count {
                if h.machine.connection(id).send(now, msg.message()).is_err() {
                    break;
                }
            }
        }
        MachineOp::Flood {
            socket: p,
            len,
            fill,
        } => {
            let data = vec![*fill; usize::from(*len)];
            h.handle(Input::SocketData {
                socket: socket(seen, *p),
                data: &data,
            });
        }
        MachineOp::Interfaces { list, as_input } => {
            let list: Vec<Interface> = list.iter().take(8).map(IfaceSpec::interface).collect();
            if *as_input {
                h.handle(Input::InterfacesChanged(list));
            } else {
                h.machine.handle(now, Input::InterfacesChanged(list));
            }
        }
        MachineOp::Advance { ms } => h.advance(Duration::from_millis(u64::from(*ms))),
        MachineOp::TimeoutNow => h.machine.handle_timeout(now),
        MachineOp::Pref64 { which } => {
            let prefix = PREF64S
                .get(usize::from(*which))
                .and_then(|p| p.parse::<taps_core::Pref64>().ok());
            h.handle(Input::Pref64(prefix));
        }
    }
}

/// The preconnection an `Initiate` asks for; `None` when its text does not
/// parse.
fn preconnection(spec: &InitiateSpec) -> Option<Preconnection> {
    let text = match &spec.target {
        TargetSpec::V4 => SERVER_ADDR.to_string(),
        TargetSpec::V6 => "[2001:db8::10]:443".to_string(),
        TargetSpec::Name => format!("{DNS_NAME}:443"),
        TargetSpec::NameOtherPort => format!("{DNS_NAME}:8443"),
        TargetSpec::Hosts => "hosts.example:443".to_string(),
        TargetSpec::Localhost => "localhost:443".to_string(),
        TargetSpec::NoPort => DNS_NAME.to_string(),
        TargetSpec::Service => "myserver._http._tcp.local".to_string(),
        TargetSpec::Text(t) => t.clone(),
    };
    let mut pre = Preconnection::new(text.parse().ok()?);
    if spec.tls {
        pre = pre.with_security(client_tls());
    }
    if let Some(f) = spec.framer {
        pre = pre.with_framer(f.factory());
    }
    if let Some(r) = spec.race {
        pre = pre.with_race(r.config());
    }
    let mut props = taps_core::TransportProperties::default();
    if spec.prohibit_expensive {
        props = props.prohibit_expensive();
    }
    if let Some(k) = spec.avoid_kind {
        props = props
            .avoid_interface_kind(InterfaceKind::ALL[usize::from(k) % InterfaceKind::ALL.len()]);
    }
    props.connection.conn_timeout = spec
        .conn_timeout_ms
        .map(|ms| Duration::from_millis(u64::from(ms)));
    Some(pre.with_properties(props))
}

/// The socket linked to `socket`, if any.
fn partner(seen: &Seen, socket: SocketId) -> Option<SocketId> {
    seen.links.iter().find_map(|&(a, b)| {
        if a == socket {
            Some(b)
        } else if b == socket {
            Some(a)
        } else {
            None
        }
    })
}

/// [`MachineOp::PlainThrough`]: what an adapter's plain stream
/// pass-through does, against the linked partner (bytes to an unlinked
/// socket vanish, as with `Transmitted`).
fn plain_through(h: &mut Harness, seen: &Seen, conn: ConnectionId, write: bool, len: usize) {
    let now = h.now;
    if write {
        let Some(socket) = h
            .machine
            .connection_info(conn)
            .and_then(|c| c.write_through())
        else {
            return;
        };
        let n = match partner(seen, socket) {
            Some(to) => {
                let n = len.min(h.machine.socket(to).read_capacity());
                let data = vec![b'w'; n];
                h.handle(Input::SocketData {
                    socket: to,
                    data: &data,
                });
                n
            }
            None => len,
        };
        if n > 0 {
            h.machine.handle(now, Input::WroteThrough { conn, len: n });
        }
        h.drain();
    } else {
        let Some(socket) = h
            .machine
            .connection_info(conn)
            .and_then(|c| c.read_through())
        else {
            return;
        };
        if let Some(from) = partner(seen, socket) {
            let n = h.machine.socket(from).transmit_data().len().min(len);
            if n > 0 {
                h.machine.handle(
                    now,
                    Input::Transmitted {
                        socket: from,
                        len: n,
                    },
                );
            }
        }
        h.drain();
    }
}

/// The partner's side of a link as a socket for a checked-out session:
/// reads take what the partner has to send; writes arrive at the partner,
/// as far as `room` and its read capacity allow.
struct LinkWire<'a> {
    machine: &'a mut Machine,
    now: Instant,
    partner: Option<SocketId>,
    room: usize,
}

impl std::io::Read for LinkWire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(from) = self.partner else {
            return Err(std::io::ErrorKind::WouldBlock.into());
        };
        let data = self.machine.socket(from).transmit_data();
        let n = data.len().min(buf.len());
        if n == 0 {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        buf[..n].copy_from_slice(&data[..n]);
        self.machine.handle(
            self.now,
            Input::Transmitted {
                socket: from,
                len: n,
            },
        );
        Ok(n)
    }
}

impl std::io::Write for LinkWire<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = match self.partner {
            Some(to) => buf
                .len()
                .min(self.room)
                .min(self.machine.socket(to).read_capacity()),
            None => buf.len().min(self.room),
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        self.room -= n;
        if let Some(to) = self.partner {
            self.machine.handle(
                self.now,
                Input::SocketData {
                    socket: to,
                    data: &buf[..n],
                },
            );
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// [`MachineOp::TlsThrough`]: one stream read or write through a checked-out
/// TLS session, checked back in at once.
fn tls_through(
    h: &mut Harness,
    seen: &Seen,
    conn: ConnectionId,
    write: bool,
    len: usize,
    room: usize,
) {
    let purpose = if write {
        TlsCheckout::Write
    } else {
        TlsCheckout::Read
    };
    let Some(mut session) = h.machine.connection(conn).check_out_tls(purpose) else {
        return;
    };
    let now = h.now;
    let mut wire = LinkWire {
        partner: partner(seen, session.socket()),
        machine: &mut h.machine,
        now,
        room,
    };
    if write {
        match write_through(&mut session, &mut wire, &vec![b'w'; len]) {
            Ok(Through::Done(n)) if n > len => {
                violated!("a checked-out write took {n} of {len} bytes")
            }
            Ok(_) => {}
            Err(e) => violated!("a link that only fills up failed: {e}"),
        }
    } else {
        let mut buf = vec![0; len.max(1)];
        match read_through(&mut session, &mut wire, &mut buf) {
            Ok(Through::Done(n)) if n > buf.len() => {
                violated!(
                    "a checked-out read returned {n} for a {}-byte buffer",
                    buf.len()
                )
            }
            Ok(_) => {}
            Err(e) => violated!("a link that only runs dry failed: {e}"),
        }
    }
    h.machine.handle(now, Input::TlsCheckIn(session));
    h.drain();
}

/// Moves bytes along every link, both ways, until nothing moves; a FIN or
/// RST reaches the partner once the bytes before it are in.
fn flow_links(h: &mut Harness, seen: &mut Seen) {
    for _ in 0..MAX_FLOW_ROUNDS {
        let mut moved = false;
        for i in 0..seen.links.len() {
            let (a, b) = seen.links[i];
            moved |= h.pipe(a, b, usize::MAX) > 0;
            moved |= h.pipe(b, a, usize::MAX) > 0;
        }
        for &(s, end) in &h.socket_ends[seen.ends_seen..] {
            for &(a, b) in &seen.links {
                let partner = if s == a {
                    b
                } else if s == b {
                    a
                } else {
                    continue;
                };
                // One FIN per socket; a reset may still follow a FIN, and
                // overrides one not yet delivered.
                let told = seen.told.get(&partner).copied();
                if told == Some(SocketEnd::Abort) || (told.is_some() && end != SocketEnd::Abort) {
                    continue;
                }
                match seen.owed.iter_mut().find(|(to, _, _)| *to == partner) {
                    Some(owed) if end == SocketEnd::Abort => *owed = (partner, s, end),
                    Some(_) => {}
                    None => seen.owed.push((partner, s, end)),
                }
            }
        }
        seen.ends_seen = h.socket_ends.len();
        let mut i = 0;
        while i < seen.owed.len() {
            let (to, from, end) = seen.owed[i];
            if end != SocketEnd::Abort && !h.machine.socket(from).transmit_data().is_empty() {
                i += 1;
                continue;
            }
            seen.owed.swap_remove(i);
            seen.told.insert(to, end);
            moved = true;
            h.handle(match end {
                SocketEnd::Abort => Input::SocketFailed {
                    socket: to,
                    reason: FailureReason::Reset,
                },
                SocketEnd::Shutdown | SocketEnd::Close => Input::SocketEof { socket: to },
            });
        }
        if !moved {
            return;
        }
    }
    violated!("linked sockets keep exchanging bytes without end");
}
