//! The far ends: TLS servers (behaviour after TCP is up) and the DNS
//! resolvers that answer from the scenario's records with real messages.
//!
//! # Servers and the TLS model
//!
//! A handshake above TCP is a sequence of *flights*, each a burst of bytes
//! one side sends before waiting for the other. The TLS 1.3 full handshake
//! (RFC 8446 §2) is one round trip: the client's ClientHello, then the
//! server's flight (ServerHello … Finished), after which the client is done
//! (its own Finished needs no answer). [`tls_reply`] says what a server does
//! with the client's flight; the world carries the flights over the links, so
//! delay, loss (as retransmission) and bandwidth apply to them.
//!
//! `tls = "real"` is accepted in scenarios but, until the core drives rustls
//! per attempt, it is modelled exactly like `tls = "modelled"`: one round
//! trip of the sizes below plus the server's `tls_time`. The flight-shaped
//! interface is where real rustls byte streams plug in later: a real server
//! turns the client's bytes into its reply bytes instead of a size.
//!
//! # DNS resolvers
//!
//! [`Responder`] reads each query with `taps_core::dns::responder` (real
//! hickory-proto messages) and builds the response the scenario's records
//! call for, with the per-type delay and failure (timeout, SERVFAIL,
//! NXDOMAIN, truncation over UDP, garbage). A response depends only on the
//! query's bytes after the id, so it is built once and later queries get a
//! copy with their id patched in; that keeps population runs fast.

use core::time::Duration;
use std::collections::HashMap;
use std::rc::Rc;

use taps_core::dns::responder::{build_response, parse_query};
use taps_core::dns::wire::{Answer, MAX_NEGATIVE_TTL, QueryType};

use crate::scenario::{Accept, Dns, DnsFail, Server, ServerTls};

/// Bytes of a typical ClientHello (with key share and SNI).
pub const CLIENT_HELLO_BYTES: u32 = 517;
/// Bytes of a typical server flight with a two-certificate chain.
pub const SERVER_FLIGHT_BYTES: u32 = 4000;

/// What a server does with the client's first handshake flight (or, for a
/// client without TLS, with its ACK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerReply {
    /// Sends a flight of `bytes` after `after`; `completes` when it finishes
    /// the client's handshake.
    Flight {
        /// Server processing time before sending.
        after: Duration,
        /// Size of the flight.
        bytes: u32,
        /// The client's handshake is complete when it arrives.
        completes: bool,
    },
    /// Sends a RST.
    Reset,
    /// Sends a FIN.
    Close,
    /// Never answers.
    Silent,
}

/// The server's answer to a client that speaks TLS (`client_tls`) or only
/// TCP, once the TCP handshake is done.
pub fn tls_reply(server: &Server, client_tls: bool) -> ServerReply {
    match server.accept {
        Accept::Reset => return ServerReply::Reset,
        Accept::Close => return ServerReply::Close,
        Accept::StallAfterTcp => return ServerReply::Silent,
        Accept::StallTls | Accept::Ok => {}
    }
    if !client_tls {
        // A TCP-only client is done at the handshake; the server has nothing
        // to say.
        return ServerReply::Silent;
    }
    match (server.tls, server.accept) {
        // A plaintext server answers a ClientHello with an error and closes.
        (ServerTls::None, _) => ServerReply::Close,
        // It reads the ClientHello and never finishes its flight.
        (_, Accept::StallTls) => ServerReply::Silent,
        (ServerTls::Real | ServerTls::Modelled, _) => ServerReply::Flight {
            after: server.tls_time,
            bytes: SERVER_FLIGHT_BYTES,
            completes: true,
        },
    }
}

/// What a resolver sends back for one query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsReply {
    /// Nothing (the `timeout` failure, or a query it cannot read).
    Silent,
    /// This message (its id patched to the query's when sent).
    Message(Rc<[u8]>),
    /// Bytes that are not a DNS message.
    Garbage,
}

/// How a resolver will answer a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The record type asked for.
    pub qtype: Option<QueryType>,
    /// Time before the answer leaves the server.
    pub delay: Duration,
    /// The answer.
    pub reply: DnsReply,
    /// Index of the records' name in the scenario (for forgeries).
    pub records: Option<usize>,
}

/// The bytes a `garbage` failure sends: shorter than a DNS header.
pub const GARBAGE: &[u8] = b"GARB!";

/// Builds and remembers resolver answers.
#[derive(Debug, Default)]
pub struct Responder {
    udp: HashMap<Box<[u8]>, Plan>,
    tcp: HashMap<Box<[u8]>, Plan>,
}

impl Responder {
    /// Forgets every answer (a new world).
    pub fn clear(&mut self) {
        self.udp.clear();
        self.tcp.clear();
    }

    /// The plan for `message` (a query without TCP framing) over UDP or TCP.
    pub fn plan(&mut self, dns: &Dns, message: &[u8], tcp: bool) -> Plan {
        let Some(key) = message.get(2..) else {
            return silent();
        };
        let cache = if tcp { &mut self.tcp } else { &mut self.udp };
        if let Some(p) = cache.get(key) {
            return p.clone();
        }
        let plan = build(dns, message, tcp);
        cache.insert(key.into(), plan.clone());
        plan
    }
}

fn silent() -> Plan {
    Plan {
        qtype: None,
        delay: Duration::ZERO,
        reply: DnsReply::Silent,
        records: None,
    }
}

fn build(dns: &Dns, message: &[u8], tcp: bool) -> Plan {
    let Ok(question) = parse_query(message) else {
        return silent();
    };
    let qtype = question.qtype;
    let Some((index, records)) = dns.records.iter().enumerate().find(|(_, r)| {
        r.name
            .eq_ignore_ascii_case(question.name.as_str().trim_end_matches('.'))
    }) else {
        let bytes = build_response(&question, &Answer::NxDomain { negative_ttl: 60 }, false);
        return Plan {
            qtype: Some(qtype),
            delay: Duration::ZERO,
            reply: DnsReply::Message(bytes.into()),
            records: None,
        };
    };
    let negative_ttl = records.ttl.min(MAX_NEGATIVE_TTL);
    let positive = match qtype {
        QueryType::A => (!records.a.is_empty()).then(|| Answer::Addresses {
            addrs: records.a.iter().map(|a| (*a).into()).collect(),
            ttl: records.ttl,
        }),
        QueryType::Aaaa => (!records.aaaa.is_empty()).then(|| Answer::Addresses {
            addrs: records.aaaa.iter().map(|a| (*a).into()).collect(),
            ttl: records.ttl,
        }),
        QueryType::Https => (!records.https.is_empty()).then(|| Answer::Https {
            records: records.https.iter().cloned().collect(),
            ttl: records.ttl,
        }),
    };
    let answer = positive.unwrap_or(Answer::NoData { negative_ttl });
    let (answer, truncated) = match records.fail.get(qtype) {
        None => (answer, false),
        Some(DnsFail::ServFail) => (Answer::ServFail, false),
        Some(DnsFail::NxDomain) => (Answer::NxDomain { negative_ttl }, false),
        Some(DnsFail::Truncate) => (answer, !tcp),
        Some(DnsFail::Timeout) => {
            return Plan {
                qtype: Some(qtype),
                delay: records.delay.get(qtype),
                reply: DnsReply::Silent,
                records: Some(index),
            };
        }
        Some(DnsFail::Garbage) => {
            return Plan {
                qtype: Some(qtype),
                delay: records.delay.get(qtype),
                reply: DnsReply::Garbage,
                records: Some(index),
            };
        }
    };
    Plan {
        qtype: Some(qtype),
        delay: records.delay.get(qtype),
        reply: DnsReply::Message(build_response(&question, &answer, truncated).into()),
        records: Some(index),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use taps_core::dns::wire::{encode_query, parse_response};
    use taps_core::endpoint::HostName;

    fn scenario() -> Scenario {
        Scenario::parse(
            r#"
name = "t"
[client]
interfaces = [{ name = "eth0", kind = "wired", addrs = ["192.0.2.10/24"] }]
[dns.records."example.com"]
a = ["192.0.2.1", "192.0.2.2"]
fail = { aaaa = "truncate", https = "garbage" }
delay = { a = "7ms" }
[connect]
remote = "example.com:443"
"#,
        )
        .unwrap()
    }

    fn query(id: u16, name: &str, qtype: QueryType) -> Vec<u8> {
        let mut q = Vec::new();
        encode_query(id, &HostName::new(name).unwrap(), qtype, &mut q);
        q
    }

    #[test]
    fn answers_come_from_the_records_and_are_reused() {
        let s = scenario();
        let mut r = Responder::default();
        let plan = r.plan(&s.dns, &query(1, "Example.COM", QueryType::A), false);
        assert_eq!(plan.delay, Duration::from_millis(7));
        let DnsReply::Message(bytes) = plan.reply else {
            panic!("expected a message");
        };
        let name = HostName::new("Example.COM").unwrap();
        let parsed = parse_response(&bytes, 1, &name, QueryType::A).unwrap();
        assert_eq!(
            parsed.answer,
            Answer::Addresses {
                addrs: ["192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()]
                    .into_iter()
                    .collect(),
                ttl: 300
            }
        );
        // A second query differing only in its id hits the cache.
        let again = r.plan(&s.dns, &query(2, "Example.COM", QueryType::A), false);
        assert!(matches!(again.reply, DnsReply::Message(_)));
        assert_eq!(r.udp.len(), 1);
    }

    #[test]
    fn failures_shape_the_answer() {
        let s = scenario();
        let mut r = Responder::default();
        let name = HostName::new("example.com").unwrap();
        let udp = r.plan(&s.dns, &query(3, "example.com", QueryType::Aaaa), false);
        let DnsReply::Message(b) = udp.reply else {
            panic!()
        };
        assert!(
            parse_response(&b, 3, &name, QueryType::Aaaa)
                .unwrap()
                .truncated
        );
        let tcp = r.plan(&s.dns, &query(3, "example.com", QueryType::Aaaa), true);
        let DnsReply::Message(b) = tcp.reply else {
            panic!()
        };
        let full = parse_response(&b, 3, &name, QueryType::Aaaa).unwrap();
        assert!(!full.truncated);
        assert_eq!(full.answer, Answer::NoData { negative_ttl: 300 });
        assert_eq!(
            r.plan(&s.dns, &query(4, "example.com", QueryType::Https), false)
                .reply,
            DnsReply::Garbage
        );
        let other = r.plan(&s.dns, &query(5, "other.example", QueryType::A), false);
        let DnsReply::Message(b) = other.reply else {
            panic!()
        };
        let nx = parse_response(
            &b,
            5,
            &HostName::new("other.example").unwrap(),
            QueryType::A,
        )
        .unwrap();
        assert_eq!(nx.answer, Answer::NxDomain { negative_ttl: 60 });
    }
}
