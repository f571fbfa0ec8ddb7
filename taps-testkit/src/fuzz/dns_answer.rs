//! The `dns_answer` target: arbitrary bytes as the answer to a query in
//! flight, through the parser alone and through a machine
//! ([`dns_answer`]).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use taps_core::{
    Config, Input, Preconnection,
    dns::{
        Answer, HttpsRecord, MAX_ADDRESSES_PER_ANSWER, MAX_HTTPS_RECORDS_PER_ANSWER,
        MAX_NEGATIVE_TTL, MAX_TTL, QueryType, parse_response,
    },
    dns::{DnsConfig, DnsSend, DnsTransport},
};

use super::{DNS_NAME, DNS_SERVERS, DNS_SPOOFER, addr, host, question};
use crate::contract::nonempty;
use crate::dns::{Question, build_response};
use crate::harness::Harness;

/// The addresses the other, well-behaved questions resolve to.
const DNS_FIXED_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DNS_FIXED_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

/// How `dns_answer` delivers its bytes (the first input byte).
#[derive(Clone, Copy, Debug)]
pub struct DnsMode {
    /// The question the bytes answer.
    pub qtype: QueryType,
    /// Over TCP (after a truncated UDP answer), as stream bytes.
    pub stream: bool,
    /// From a source no query went to.
    pub spoofed: bool,
    /// Keep the bytes' own id instead of the query's.
    pub keep_id: bool,
    /// TCP only: no length prefix is added (the bytes frame themselves).
    pub raw_stream: bool,
    /// TCP only: bytes per `DnsStreamData`.
    pub chunk: usize,
}

impl DnsMode {
    /// Decodes the mode byte.
    pub fn from_byte(b: u8) -> Self {
        DnsMode {
            qtype: match b & 3 {
                0 => QueryType::A,
                1 => QueryType::Aaaa,
                _ => QueryType::Https,
            },
            stream: b & 4 != 0,
            spoofed: b & 8 != 0,
            keep_id: b & 0x10 != 0,
            raw_stream: b & 0x20 != 0,
            chunk: [usize::MAX, 1, 7, 64][usize::from(b >> 6)],
        }
    }

    /// The mode byte (inverse of [`DnsMode::from_byte`]; `chunk` must be one
    /// of the four sizes).
    pub fn to_byte(self) -> u8 {
        let q = match self.qtype {
            QueryType::A => 0,
            QueryType::Aaaa => 1,
            QueryType::Https => 2,
        };
        let chunk = match self.chunk {
            1 => 1,
            7 => 2,
            64 => 3,
            _ => 0,
        };
        q | u8::from(self.stream) << 2
            | u8::from(self.spoofed) << 3
            | u8::from(self.keep_id) << 4
            | u8::from(self.raw_stream) << 5
            | chunk << 6
    }
}

/// **dns_answer**: arbitrary bytes arrive as the answer to an in-flight
/// query.
///
/// Input: one mode byte ([`DnsMode`]), then the message. Checks:
/// 1. `parse_response` alone (with the message's own id, so the parser's
///    deeper checks are reached): never panics; an accepted answer obeys the
///    documented bounds (addresses of the asked family only, at most
///    `MAX_ADDRESSES_PER_ANSWER`, no duplicates; at most
///    `MAX_HTTPS_RECORDS_PER_ANSWER` records sorted by priority; TTLs capped);
///    and survives `build_response` → `parse_response` unchanged, so the
///    responder the simulator uses speaks the same language as the parser.
/// 2. The machine: the bytes answer its real query (id patched in unless
///    `keep_id`), by UDP or, after a truncated answer, TCP in chunks; the
///    other questions get ordinary answers; attempts connect. Every address
///    the machine then connects to came from an answer (or an HTTPS hint),
///    and every [`Checker`](crate::contract::Checker) invariant and the final leak check hold.
pub fn dns_answer(data: &[u8]) {
    let Some((&mode, payload)) = data.split_first() else {
        return;
    };
    let mode = DnsMode::from_byte(mode);
    check_parse(payload, mode.qtype);
    dns_through_machine(payload, mode);
}

/// Checks one answer against the documented bounds; returns it.
fn check_answer(answer: &Answer, qtype: QueryType) {
    match answer {
        Answer::Addresses { addrs, ttl } => {
            if addrs.is_empty() || addrs.len() > MAX_ADDRESSES_PER_ANSWER {
                violated!("{} addresses in one answer", addrs.len());
            }
            for (i, a) in addrs.iter().enumerate() {
                let family_ok = match qtype {
                    QueryType::A => a.is_ipv4(),
                    QueryType::Aaaa => a.is_ipv6(),
                    QueryType::Https => false,
                };
                if !family_ok {
                    violated!("address {a} in a {qtype} answer");
                }
                if addrs[..i].contains(a) {
                    violated!("address {a} twice in one answer");
                }
            }
            if *ttl > MAX_TTL {
                violated!("TTL {ttl} above MAX_TTL");
            }
        }
        Answer::Https { records, ttl } => {
            if qtype != QueryType::Https {
                violated!("HTTPS records answer a {qtype} question");
            }
            if records.is_empty() || records.len() > MAX_HTTPS_RECORDS_PER_ANSWER {
                violated!("{} HTTPS records in one answer", records.len());
            }
            if !records.windows(2).all(|w| w[0].priority <= w[1].priority) {
                violated!("HTTPS records not sorted by priority");
            }
            for r in records {
                if r.ipv4hint.len() > MAX_ADDRESSES_PER_ANSWER
                    || r.ipv6hint.len() > MAX_ADDRESSES_PER_ANSWER
                {
                    violated!("an address hint list over MAX_ADDRESSES_PER_ANSWER");
                }
                if r.priority == 0 && *r != alias_only(r) {
                    violated!("an AliasMode record kept its parameters: {r:?}");
                }
            }
            if *ttl > MAX_TTL {
                violated!("TTL {ttl} above MAX_TTL");
            }
        }
        Answer::NoData { negative_ttl } | Answer::NxDomain { negative_ttl } => {
            if *negative_ttl > MAX_NEGATIVE_TTL {
                violated!("negative TTL {negative_ttl} above MAX_NEGATIVE_TTL");
            }
        }
        Answer::ServFail | Answer::Refused => {}
        Answer::OtherError { rcode } => {
            if matches!(rcode, 0 | 2 | 3 | 5) || *rcode > 0xfff {
                violated!("OtherError with RCODE {rcode}");
            }
        }
    }
}

/// The AliasMode form of `r`: priority 0, its target, nothing else.
pub(super) fn alias_only(r: &HttpsRecord) -> HttpsRecord {
    HttpsRecord {
        priority: 0,
        target: r.target.clone(),
        alpn: Vec::new(),
        no_default_alpn: false,
        port: None,
        ipv4hint: Default::default(),
        ipv6hint: Default::default(),
        ech: false,
    }
}

/// Step 1 of `dns_answer`: the parser alone, and the responder round trip.
/// Returns the parsed answer when the parser accepted the message.
fn check_parse(payload: &[u8], qtype: QueryType) -> Option<Answer> {
    let id = match payload {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    let name = host(DNS_NAME);
    let response = match parse_response(payload, id, &name, qtype) {
        Ok(r) => r,
        Err(e) => {
            nonempty(&e);
            return None;
        }
    };
    check_answer(&response.answer, qtype);
    // The responder writes only the low four RCODE bits (no OPT record),
    // so extended RCODEs cannot round-trip; everything else must.
    if !matches!(response.answer, Answer::OtherError { .. }) {
        let rebuilt = build_response(&question(id, DNS_NAME, qtype), &response.answer, false);
        match parse_response(&rebuilt, id, &name, qtype) {
            Ok(again) if again.answer == response.answer && !again.truncated => {}
            Ok(again) => violated!(
                "build_response does not round-trip: parsed {:?}, rebuilt and parsed {:?}",
                response.answer,
                again.answer
            ),
            Err(e) => violated!(
                "build_response wrote an unparsable message for {:?}: {e}",
                response.answer
            ),
        }
    }
    Some(response.answer)
}

/// A machine that resolves `www.example.com:443` through the two servers.
fn dns_machine(seed: u64) -> Harness {
    Harness::manual(Config {
        seed,
        dns: DnsConfig {
            servers: DNS_SERVERS.iter().map(|s| addr(s)).collect(),
            ..DnsConfig::default()
        },
        ..Config::new(0)
    })
}

/// The latest query of `qtype` over `transport`, if any.
fn latest_query(
    h: &Harness,
    qtype: QueryType,
    transport: DnsTransport,
) -> Option<(DnsSend, Question)> {
    h.queries
        .iter()
        .rev()
        .find(|q| q.question.qtype == qtype && q.send.transport == transport)
        .map(|q| (q.send.clone(), q.question.clone()))
}

/// Answers `send` with `answer`, as its server would.
pub(super) fn answer_query(
    h: &mut Harness,
    send: &DnsSend,
    q: &Question,
    answer: &Answer,
    truncated: bool,
) {
    let bytes = build_response(q, answer, truncated);
    match send.transport {
        DnsTransport::Udp => h.handle(Input::DnsDatagram {
            txn: send.txn,
            from: send.server,
            payload: &bytes,
        }),
        DnsTransport::Tcp => {
            let mut framed = Vec::with_capacity(bytes.len() + 2);
            framed.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            framed.extend_from_slice(&bytes);
            h.handle(Input::DnsStreamData {
                txn: send.txn,
                data: &framed,
            });
        }
    }
}

/// Step 2 of `dns_answer`: the bytes as the answer to the machine's query.
fn dns_through_machine(payload: &[u8], mode: DnsMode) {
    let mut h = dns_machine(7);
    let pre = Preconnection::new(
        format!("{DNS_NAME}:443")
            .parse()
            .expect("constant endpoint"),
    );
    let Some(conn) = h.initiate(h.now, &pre).ok() else {
        violated!("initiate to {DNS_NAME}:443 refused");
    };
    let Some((mut send, mut q)) = latest_query(&h, mode.qtype, DnsTransport::Udp) else {
        violated!("no {} query for {DNS_NAME}", mode.qtype);
    };
    if mode.stream {
        // A truncated answer sends the question again over TCP (RFC 7766 §5).
        answer_query(&mut h, &send, &q, &Answer::NoData { negative_ttl: 0 }, true);
        match latest_query(&h, mode.qtype, DnsTransport::Tcp) {
            Some(tcp) => (send, q) = tcp,
            None => violated!("a truncated answer did not move the query to TCP"),
        }
    }
    // The exact bytes the adapter hands over, and where in them lies the
    // message the machine will parse (for TCP: the first length-prefixed
    // one, as its reader reassembles it).
    let mut wire = Vec::with_capacity(payload.len() + 2);
    if mode.stream && !mode.raw_stream {
        wire.extend_from_slice(&(payload.len().min(0xffff) as u16).to_be_bytes());
    }
    wire.extend_from_slice(payload);
    let message = if mode.stream {
        match wire[..] {
            [a, b, ..] => {
                let end = 2 + usize::from(u16::from_be_bytes([a, b]));
                (wire.len() >= end).then_some(2..end)
            }
            _ => None,
        }
    } else {
        Some(0..wire.len())
    };
    if let Some(range) = &message
        && !mode.keep_id
        && range.len() >= 2
    {
        wire[range.start..range.start + 2].copy_from_slice(&q.id.to_be_bytes());
    }
    // What the machine may believe: the parser's verdict on that message for
    // this query (the machine checks source, id and question the same way);
    // a truncated UDP answer is not used but retried over TCP.
    let believed = message
        .filter(|_| mode.stream || !mode.spoofed)
        .and_then(|range| parse_response(&wire[range], q.id, &host(DNS_NAME), mode.qtype).ok())
        .filter(|r| mode.stream || !r.truncated)
        .map(|r| r.answer);
    if mode.stream {
        for chunk in wire.chunks(mode.chunk.max(1)) {
            h.handle(Input::DnsStreamData {
                txn: send.txn,
                data: chunk,
            });
        }
    } else {
        h.handle(Input::DnsDatagram {
            txn: send.txn,
            from: if mode.spoofed {
                addr(DNS_SPOOFER)
            } else {
                send.server
            },
            payload: &wire,
        });
    }

    // The other questions get ordinary answers.
    let mut allowed: HashSet<SocketAddr> = HashSet::new();
    for qtype in [QueryType::Https, QueryType::Aaaa, QueryType::A] {
        let fixed = match qtype {
            QueryType::A => Answer::Addresses {
                addrs: [IpAddr::V4(DNS_FIXED_V4)].into_iter().collect(),
                ttl: 60,
            },
            QueryType::Aaaa => Answer::Addresses {
                addrs: [IpAddr::V6(DNS_FIXED_V6)].into_iter().collect(),
                ttl: 60,
            },
            QueryType::Https => Answer::NoData { negative_ttl: 60 },
        };
        if let Answer::Addresses { addrs, .. } = &fixed {
            allowed.extend(addrs.iter().map(|a| SocketAddr::new(*a, 443)));
        }
        if qtype == mode.qtype {
            continue;
        }
        if let Some((s, q)) = latest_query(&h, qtype, DnsTransport::Udp) {
            answer_query(&mut h, &s, &q, &fixed, false);
        }
    }
    match &believed {
        Some(Answer::Addresses { addrs, .. }) => {
            allowed.extend(addrs.iter().map(|a| SocketAddr::new(*a, 443)));
        }
        Some(Answer::Https { records, .. }) => {
            let ports: Vec<u16> = records.iter().filter_map(|r| r.port).chain([443]).collect();
            let hints = records.iter().flat_map(|r| {
                let v4 = r.ipv4hint.iter().map(|a| IpAddr::V4(*a));
                v4.chain(r.ipv6hint.iter().map(|a| IpAddr::V6(*a)))
            });
            for ip in hints.chain([IpAddr::V4(DNS_FIXED_V4), IpAddr::V6(DNS_FIXED_V6)]) {
                allowed.extend(ports.iter().map(|p| SocketAddr::new(ip, *p)));
            }
        }
        _ => {}
    }

    // Every attempt connects; the first to be Ready wins.
    let mut connected = 0;
    for _ in 0..64 {
        h.advance(Duration::from_millis(50));
        while connected < h.opened.len() {
            let socket = h.opened[connected].socket;
            connected += 1;
            h.handle(Input::SocketConnected { socket });
        }
        if h.machine.is_idle() {
            break;
        }
    }
    for opened in &h.opened {
        let remote = opened.remote;
        if !allowed.contains(&remote) {
            violated!("connected to {remote}, which no answer gave (believed: {believed:?})");
        }
    }
    h.machine.connection(conn).close(h.now);
    h.drain();
    h.finish();
}
