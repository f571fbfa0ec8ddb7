//! A small authoritative answerer: reads a query message and writes the
//! response that carries a given [`Answer`] (RFC 1035 §4.1, RFC 2308 §3 for
//! the SOA of negative answers, RFC 9460 §2.2 for HTTPS records).
//!
//! It is the inverse of [`parse_response`](taps_core::dns::parse_response):
//! for every answer `a`, parsing `build_response(q, a)` gives `a` back (the
//! round-trip is a test). The simulator's DNS servers, the adapters'
//! test servers and the fuzz corpora are built with it, so they all speak
//! real DNS messages made by hickory-proto, not a private shortcut.

use core::fmt;
use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::svcb::{
    Alpn, EchConfigList, IpHint, SVCB, SvcParamKey, SvcParamValue,
};
use hickory_proto::rr::rdata::{A, AAAA, HTTPS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use taps_core::HostName;
use taps_core::dns::{Answer, HttpsRecord, QueryType};

/// The question of a query message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// Message id, echoed in the response.
    pub id: u16,
    /// The name asked about.
    pub name: HostName,
    /// The record type asked for.
    pub qtype: QueryType,
    query: Query,
}

/// Why a message is not a query this answerer can serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryError {
    /// Not a DNS message.
    Malformed(String),
    /// A response, or an opcode other than QUERY.
    NotAQuery,
    /// Not exactly one question.
    QuestionCount(usize),
    /// A type other than A, AAAA or HTTPS.
    UnsupportedType(String),
    /// The name is not a valid host name.
    BadName(String),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Malformed(e) => write!(f, "malformed DNS message: {e}"),
            QueryError::NotAQuery => f.write_str("the message is not a standard query"),
            QueryError::QuestionCount(n) => {
                write!(f, "a query must ask one question, this one asks {n}")
            }
            QueryError::UnsupportedType(t) => write!(f, "record type {t} is not served"),
            QueryError::BadName(n) => write!(f, "{n:?} is not a valid host name"),
        }
    }
}

impl std::error::Error for QueryError {}

/// Reads the question of a query message.
pub fn parse_query(bytes: &[u8]) -> Result<Question, QueryError> {
    let message = Message::from_vec(bytes).map_err(|e| QueryError::Malformed(e.to_string()))?;
    if message.metadata.message_type != MessageType::Query
        || message.metadata.op_code != OpCode::Query
    {
        return Err(QueryError::NotAQuery);
    }
    if message.queries.len() != 1 {
        return Err(QueryError::QuestionCount(message.queries.len()));
    }
    let query = message.queries[0].clone();
    let qtype = match query.query_type() {
        RecordType::A => QueryType::A,
        RecordType::AAAA => QueryType::Aaaa,
        RecordType::HTTPS => QueryType::Https,
        other => return Err(QueryError::UnsupportedType(other.to_string())),
    };
    let text = query.name().to_ascii();
    let name = HostName::new(&text).map_err(|_| QueryError::BadName(text.clone()))?;
    Ok(Question {
        id: message.metadata.id,
        name,
        qtype,
        query,
    })
}

/// Writes the response to `question` that carries `answer`. With
/// `truncated`, the TC bit is set and the answer section left empty, as a
/// server does when the answer does not fit a UDP datagram (RFC 2181 §9).
pub fn build_response(question: &Question, answer: &Answer, truncated: bool) -> Vec<u8> {
    let mut m = Message::response(question.id, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    m.metadata.authoritative = true;
    m.metadata.truncation = truncated;
    // Echo the question as asked: 0x20 case randomisation must survive.
    m.add_query(question.query.clone());
    let owner = question.query.name().clone();
    let soa = |ttl: u32| {
        let data = SOA::new(
            Name::from_ascii("ns.invalid.").unwrap_or_default(),
            Name::from_ascii("hostmaster.invalid.").unwrap_or_default(),
            1,
            3600,
            600,
            86_400,
            ttl,
        );
        Record::from_rdata(owner.clone(), ttl, RData::SOA(data))
    };
    match answer {
        Answer::Addresses { addrs, ttl } if !truncated => {
            for a in addrs {
                let data = match a {
                    IpAddr::V4(v4) => RData::A(A(*v4)),
                    IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                };
                m.add_answer(Record::from_rdata(owner.clone(), *ttl, data));
            }
        }
        Answer::Https { records, ttl } if !truncated => {
            for r in records {
                m.add_answer(Record::from_rdata(
                    owner.clone(),
                    *ttl,
                    RData::HTTPS(HTTPS(svcb(r))),
                ));
            }
        }
        Answer::Addresses { .. } | Answer::Https { .. } => {}
        Answer::NoData { negative_ttl } => {
            m.add_authority(soa(*negative_ttl));
        }
        Answer::NxDomain { negative_ttl } => {
            m.metadata.response_code = ResponseCode::NXDomain;
            m.add_authority(soa(*negative_ttl));
        }
        Answer::ServFail => m.metadata.response_code = ResponseCode::ServFail,
        Answer::Refused => m.metadata.response_code = ResponseCode::Refused,
        Answer::OtherError { rcode } => {
            m.metadata.response_code = ResponseCode::from_low((*rcode & 0xf) as u8)
        }
    }
    // Encoding a message built from valid parts cannot fail; an empty
    // response is the safe answer if it ever does.
    m.to_vec().unwrap_or_default()
}

fn svcb(r: &HttpsRecord) -> SVCB {
    let target = match &r.target {
        None => Name::root(),
        Some(t) => Name::from_ascii(t.as_str()).unwrap_or_else(|_| Name::root()),
    };
    // RFC 9460 §2.2: parameters in increasing key order.
    let mut params = Vec::new();
    if !r.alpn.is_empty() {
        params.push((SvcParamKey::Alpn, SvcParamValue::Alpn(Alpn(r.alpn.clone()))));
    }
    if r.no_default_alpn {
        params.push((SvcParamKey::NoDefaultAlpn, SvcParamValue::NoDefaultAlpn));
    }
    if let Some(port) = r.port {
        params.push((SvcParamKey::Port, SvcParamValue::Port(port)));
    }
    if !r.ipv4hint.is_empty() {
        params.push((
            SvcParamKey::Ipv4Hint,
            SvcParamValue::Ipv4Hint(IpHint(r.ipv4hint.iter().map(|a| A(*a)).collect())),
        ));
    }
    if r.ech {
        params.push((
            SvcParamKey::EchConfigList,
            SvcParamValue::EchConfigList(EchConfigList(vec![0, 0])),
        ));
    }
    if !r.ipv6hint.is_empty() {
        params.push((
            SvcParamKey::Ipv6Hint,
            SvcParamValue::Ipv6Hint(IpHint(r.ipv6hint.iter().map(|a| AAAA(*a)).collect())),
        ));
    }
    SVCB::new(r.priority, target, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smallvec::smallvec;
    use taps_core::dns::{encode_query, parse_response};

    fn question(name: &str, qtype: QueryType) -> Question {
        let mut q = Vec::new();
        encode_query(0x1234, &HostName::new(name).unwrap(), qtype, &mut q);
        parse_query(&q).unwrap()
    }

    /// Every answer the core understands survives build → parse unchanged.
    #[test]
    fn answers_round_trip_through_the_wire() {
        let https = HttpsRecord {
            priority: 1,
            target: None,
            alpn: vec!["h2".into(), "http/1.1".into()],
            no_default_alpn: false,
            port: Some(8443),
            ipv4hint: smallvec!["192.0.2.1".parse().unwrap()],
            ipv6hint: smallvec!["2001:db8::1".parse().unwrap()],
            ech: false,
        };
        let cases = [
            (
                QueryType::A,
                Answer::Addresses {
                    addrs: smallvec!["192.0.2.1".parse().unwrap()],
                    ttl: 300,
                },
            ),
            (
                QueryType::Aaaa,
                Answer::Addresses {
                    addrs: smallvec!["2001:db8::1".parse().unwrap()],
                    ttl: 60,
                },
            ),
            (
                QueryType::Https,
                Answer::Https {
                    records: smallvec![https],
                    ttl: 300,
                },
            ),
            (QueryType::A, Answer::NoData { negative_ttl: 30 }),
            (QueryType::Aaaa, Answer::NxDomain { negative_ttl: 30 }),
            (QueryType::A, Answer::ServFail),
            (QueryType::A, Answer::Refused),
        ];
        for (qtype, answer) in cases {
            let q = question("www.example.com", qtype);
            let bytes = build_response(&q, &answer, false);
            let parsed = parse_response(&bytes, 0x1234, &q.name, qtype).unwrap();
            assert!(!parsed.truncated);
            assert_eq!(parsed.answer, answer, "{qtype:?}");
        }
    }

    #[test]
    fn truncation_sets_tc_and_drops_the_answers() {
        let q = question("example.com", QueryType::A);
        let answer = Answer::Addresses {
            addrs: smallvec!["192.0.2.1".parse().unwrap()],
            ttl: 300,
        };
        let parsed = parse_response(
            &build_response(&q, &answer, true),
            0x1234,
            &q.name,
            QueryType::A,
        )
        .unwrap();
        assert!(parsed.truncated);
    }

    #[test]
    fn rejects_what_it_cannot_serve() {
        assert!(matches!(
            parse_query(b"\x00\x01"),
            Err(QueryError::Malformed(_))
        ));
        let q = question("example.com", QueryType::A);
        let response = build_response(&q, &Answer::ServFail, false);
        assert_eq!(parse_query(&response), Err(QueryError::NotAQuery));
    }
}
