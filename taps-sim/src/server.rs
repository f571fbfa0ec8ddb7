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
//! With `tls = "modelled"` the flights are the sizes below and carry no
//! bytes; the server sends its flight `tls_time` after the ClientHello
//! arrives. With `tls = "real"` (see [`crate::wire`]) a server-side machine
//! turns the client's real bytes into its own, and `tls_time` is the extra
//! processing time before it reads each of the client's flights, so it
//! delays the server's flight exactly as in the model. [`tls_reply`] still
//! decides what servers that reset, close, stall or speak no TLS do with
//! the client's first bytes.
//!
//! # DNS resolvers
//!
//! [`Responder`] reads each query with `taps_core::dns::responder` (real
//! hickory-proto messages) and builds the response the scenario's records
//! call for, with the per-type delay and failure (timeout, SERVFAIL,
//! NXDOMAIN, truncation over UDP, garbage). A response depends only on the
//! query's bytes after the id and on the answer, so it is built once and
//! later queries get a copy with their id patched in; that keeps population
//! runs fast.

use core::time::Duration;
use std::collections::HashMap;
use std::rc::Rc;

use std::net::IpAddr;

use taps_core::dns::{Answer, MAX_NEGATIVE_TTL, QueryType};
use taps_testkit::dns::{Question, build_response, parse_query};

use crate::scenario::{Accept, Dns, DnsFail, Records, Server, ServerTls};

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

/// Entries each of the responder's caches may hold before it starts over.
pub const MAX_CACHED: usize = 4096;

/// Builds and remembers resolver answers.
///
/// Two caches, both keyed by content, so they stay valid from one world
/// to the next: the question of each distinct query (its bytes after the
/// id), and the response message of each (query, answer) pair. Population
/// runs draw their worlds from small address pools, so after a few worlds
/// nearly every response is a copy with its id patched in.
#[derive(Debug, Default)]
pub struct Responder {
    questions: HashMap<Box<[u8]>, Option<Question>>,
    messages: HashMap<Box<[u8]>, Rc<[u8]>>,
    key: Vec<u8>,
}

impl Responder {
    /// Forgets everything.
    pub fn clear(&mut self) {
        self.questions.clear();
        self.messages.clear();
    }

    /// The plan for `message` (a query without TCP framing) over UDP or TCP,
    /// answered from `dns`.
    pub fn plan(&mut self, dns: &Dns, message: &[u8], tcp: bool) -> Plan {
        let Some(qkey) = message.get(2..) else {
            return silent();
        };
        if !self.questions.contains_key(qkey) {
            if self.questions.len() >= MAX_CACHED {
                self.questions.clear();
            }
            self.questions
                .insert(qkey.into(), parse_query(message).ok());
        }
        let Some(Some(question)) = self.questions.get(qkey) else {
            return silent();
        };
        let qtype = question.qtype;
        let name = question.name.as_str().trim_end_matches('.');
        let found = dns
            .records
            .iter()
            .enumerate()
            .find(|(_, r)| r.name.eq_ignore_ascii_case(name));
        let (records, delay, answer, truncated) = match found {
            None => (
                None,
                Duration::ZERO,
                Answer::NxDomain { negative_ttl: 60 },
                false,
            ),
            Some((index, r)) => {
                let delay = r.delay.get(qtype);
                let negative_ttl = r.ttl.min(MAX_NEGATIVE_TTL);
                let (answer, truncated) = match r.fail.get(qtype) {
                    Some(DnsFail::Timeout) => {
                        return Plan {
                            qtype: Some(qtype),
                            delay,
                            reply: DnsReply::Silent,
                            records: Some(index),
                        };
                    }
                    Some(DnsFail::Garbage) => {
                        return Plan {
                            qtype: Some(qtype),
                            delay,
                            reply: DnsReply::Garbage,
                            records: Some(index),
                        };
                    }
                    Some(DnsFail::ServFail) => (Answer::ServFail, false),
                    Some(DnsFail::NxDomain) => (Answer::NxDomain { negative_ttl }, false),
                    Some(DnsFail::Truncate) => (answer_of(r, qtype, negative_ttl), !tcp),
                    None => (answer_of(r, qtype, negative_ttl), false),
                };
                (Some(index), delay, answer, truncated)
            }
        };
        self.key.clear();
        self.key.extend_from_slice(qkey);
        self.key.push(u8::from(truncated));
        encode_answer(&answer, &mut self.key);
        let bytes = match self.messages.get(self.key.as_slice()) {
            Some(b) => b.clone(),
            None => {
                let b: Rc<[u8]> = build_response(question, &answer, truncated).into();
                if self.messages.len() >= MAX_CACHED {
                    self.messages.clear();
                }
                self.messages.insert(self.key.as_slice().into(), b.clone());
                b
            }
        };
        Plan {
            qtype: Some(qtype),
            delay,
            reply: DnsReply::Message(bytes),
            records,
        }
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

/// The answer the records give for `qtype`: their data, or NODATA.
fn answer_of(r: &Records, qtype: QueryType, negative_ttl: u32) -> Answer {
    let positive = match qtype {
        QueryType::A => (!r.a.is_empty()).then(|| Answer::Addresses {
            addrs: r.a.iter().map(|a| (*a).into()).collect(),
            ttl: r.ttl,
        }),
        QueryType::Aaaa => (!r.aaaa.is_empty()).then(|| Answer::Addresses {
            addrs: r.aaaa.iter().map(|a| (*a).into()).collect(),
            ttl: r.ttl,
        }),
        QueryType::Https => (!r.https.is_empty()).then(|| Answer::Https {
            records: r.https.iter().cloned().collect(),
            ttl: r.ttl,
        }),
    };
    positive.unwrap_or(Answer::NoData { negative_ttl })
}

/// A canonical byte encoding of an answer, for the message cache's key.
fn encode_answer(a: &Answer, out: &mut Vec<u8>) {
    let mut bytes = |b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    };
    match a {
        Answer::Addresses { addrs, ttl } => {
            bytes(b"addr");
            bytes(&ttl.to_le_bytes());
            for ip in addrs {
                match ip {
                    IpAddr::V4(v4) => bytes(&v4.octets()),
                    IpAddr::V6(v6) => bytes(&v6.octets()),
                }
            }
        }
        Answer::Https { records, ttl } => {
            bytes(b"https");
            bytes(&ttl.to_le_bytes());
            for r in records {
                bytes(&r.priority.to_le_bytes());
                bytes(r.target.as_ref().map_or("", |t| t.as_str()).as_bytes());
                bytes(&(r.alpn.len() as u32).to_le_bytes());
                for id in &r.alpn {
                    bytes(id.as_bytes());
                }
                bytes(&[u8::from(r.no_default_alpn), u8::from(r.ech)]);
                bytes(&r.port.map_or([0, 0, 0], |p| [1, (p >> 8) as u8, p as u8]));
                for h in &r.ipv4hint {
                    bytes(&h.octets());
                }
                bytes(b"|");
                for h in &r.ipv6hint {
                    bytes(&h.octets());
                }
            }
        }
        Answer::NoData { negative_ttl } => {
            bytes(b"nodata");
            bytes(&negative_ttl.to_le_bytes());
        }
        Answer::NxDomain { negative_ttl } => {
            bytes(b"nxdomain");
            bytes(&negative_ttl.to_le_bytes());
        }
        Answer::ServFail => bytes(b"servfail"),
        Answer::Refused => bytes(b"refused"),
        Answer::OtherError { rcode } => {
            bytes(b"rcode");
            bytes(&rcode.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use taps_core::HostName;
    use taps_core::dns::{encode_query, parse_response};

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
        assert_eq!((r.questions.len(), r.messages.len()), (1, 1));
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
