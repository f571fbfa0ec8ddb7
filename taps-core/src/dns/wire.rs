//! DNS messages on the wire: the queries the core sends and the checks and
//! extraction applied to every answer.
//!
//! Implemented:
//! - RFC 1035 §4.1 message format, §4.1.4 name compression (pointers must
//!   point backwards, bounded hops), §4.2.2 TCP length framing (with RFC 7766
//!   §8 pipelining: one reader, many responses).
//! - RFC 6891 §6.1 EDNS(0): every query advertises a 1232-byte UDP payload
//!   (DNS Flag Day 2020), the OPT RR of a response supplies the upper RCODE bits.
//! - RFC 5452 §9.1 answer matching: id, QR, and the question (name, type, class)
//!   must echo the query; names compare case-insensitively (RFC 4343 §3), so
//!   0x20 case randomisation is tolerated.
//! - RFC 1034 §3.6.2 / §4.3.2 CNAME chains inside the answer section, bounded
//!   by [`MAX_CNAME_DEPTH`], loops rejected.
//! - RFC 2308 §2.1 NXDOMAIN, §2.2 NODATA, §5 negative TTL = min(SOA TTL, SOA
//!   MINIMUM), capped at [`MAX_NEGATIVE_TTL`].
//! - RFC 2181 §8 TTLs with the top bit set count as zero; all positive TTLs
//!   are capped at [`MAX_TTL`] (7 days, the cap RFC 8767 §4 suggests).
//! - RFC 9460 §2.2 SVCB/HTTPS RDATA with `mandatory`, `alpn`,
//!   `no-default-alpn`, `port`, `ipv4hint`, `ech` (presence) and `ipv6hint`;
//!   §2.4.2 AliasMode parameters ignored; §8 records with mandatory keys we do
//!   not know are ignored; malformed records reject the answer (§2.2).
//!
//! Performance: nothing here builds a hickory `Message`. The query is written
//! straight into the caller's buffer and the response is walked in place, with
//! names compared on the wire (compressed or not) without decoding them. An
//! A/AAAA answer with up to four addresses parses without touching the heap;
//! HTTPS answers allocate for the ALPN strings, target names and records.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Header, MessageType, OpCode};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use smallvec::SmallVec;

use crate::endpoint::HostName;

/// Largest number of addresses kept from one A or AAAA answer (and per SVCB
/// address hint). Further records are ignored so a hostile or oversized
/// answer cannot make the racing tree grow without bound.
pub const MAX_ADDRESSES_PER_ANSWER: usize = 32;

/// Largest number of CNAME hops followed inside one answer.
pub const MAX_CNAME_DEPTH: usize = 8;

/// Largest number of HTTPS records kept from one answer; the rest are
/// validated and then ignored.
pub const MAX_HTTPS_RECORDS_PER_ANSWER: usize = 16;

/// Cap on positive TTLs, in seconds (7 days, as RFC 8767 §4 suggests), so a
/// single answer cannot pin a cache entry for decades.
pub const MAX_TTL: u32 = 7 * 24 * 3600;

/// Cap on negative TTLs, in seconds: RFC 2308 §5 reports one to three hours
/// working well and longer values being problematic.
pub const MAX_NEGATIVE_TTL: u32 = 3 * 3600;

/// UDP payload size advertised in the OPT RR of every query (RFC 6891 §6.2.5,
/// the DNS Flag Day 2020 value that avoids IP fragmentation).
pub const EDNS_UDP_PAYLOAD: u16 = 1232;

const HEADER_LEN: usize = 12;
const MAX_NAME_WIRE_LEN: usize = 255;
/// Legitimate compression needs at most one pointer per label, so a name
/// needing more hops is hostile; bounding them bounds the work per name.
const MAX_POINTER_HOPS: usize = 127;

const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_SOA: u16 = 6;
const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
const TYPE_HTTPS: u16 = 65;
const CLASS_IN: u16 = 1;

/// The record types the core asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueryType {
    /// IPv4 addresses (RFC 1035 §3.4.1).
    A,
    /// IPv6 addresses (RFC 3596 §2.1).
    Aaaa,
    /// HTTPS service bindings (RFC 9460 §9).
    Https,
}

impl QueryType {
    /// The RR TYPE code on the wire.
    pub const fn code(self) -> u16 {
        match self {
            QueryType::A => TYPE_A,
            QueryType::Aaaa => TYPE_AAAA,
            QueryType::Https => TYPE_HTTPS,
        }
    }

    /// The type's usual name (RFC 1035 §3.2.2, RFC 3596 §2.1, RFC 9460
    /// §14.3.2): `A`, `AAAA`, `HTTPS`.
    pub const fn name(self) -> &'static str {
        match self {
            QueryType::A => "A",
            QueryType::Aaaa => "AAAA",
            QueryType::Https => "HTTPS",
        }
    }

    /// The same type as hickory-proto names it.
    pub fn record_type(self) -> RecordType {
        RecordType::from(self.code())
    }
}

impl fmt::Display for QueryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One HTTPS (SVCB) record (RFC 9460 §2.2, §7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpsRecord {
    /// SvcPriority; 0 is AliasMode (§2.4.2), where every other field except
    /// `target` is left at its default because the parameters must be ignored.
    pub priority: u16,
    /// TargetName; `None` is "." (§2.5): in ServiceMode the owner name itself,
    /// in AliasMode "service not available".
    pub target: Option<HostName>,
    /// `alpn` protocol ids (§7.1), in record order; ids that are not UTF-8
    /// cannot match any protocol the library offers and are dropped.
    pub alpn: Vec<String>,
    /// `no-default-alpn` (§7.1).
    pub no_default_alpn: bool,
    /// `port` (§7.2).
    pub port: Option<u16>,
    /// `ipv4hint` (§7.3), at most [`MAX_ADDRESSES_PER_ANSWER`].
    pub ipv4hint: SmallVec<[Ipv4Addr; 2]>,
    /// `ipv6hint` (§7.3), at most [`MAX_ADDRESSES_PER_ANSWER`].
    pub ipv6hint: SmallVec<[Ipv6Addr; 2]>,
    /// An `ech` parameter (RFC 9848) is present; its content is not parsed here.
    pub ech: bool,
}

impl HttpsRecord {
    /// The endpoint RFC 9460 §3 appends after an AliasMode chain: "the
    /// final value of $QNAME, the authority endpoint's port number, and no
    /// SvcParams", tried after every ServiceMode record of the chain's end.
    pub(crate) fn alias_fallback(target: HostName) -> Self {
        HttpsRecord::empty(u16::MAX, Some(target))
    }

    /// Whether the record's ALPN set offers `protocol` (RFC 9460 §7.1.1:
    /// the `alpn` ids, plus the scheme's default, `http/1.1` for HTTPS,
    /// unless `no-default-alpn`).
    pub fn offers_alpn(&self, protocol: &str) -> bool {
        self.alpn.iter().any(|a| a == protocol) || (!self.no_default_alpn && protocol == "http/1.1")
    }

    pub(crate) fn empty(priority: u16, target: Option<HostName>) -> Self {
        HttpsRecord {
            priority,
            target,
            alpn: Vec::new(),
            no_default_alpn: false,
            port: None,
            ipv4hint: SmallVec::new(),
            ipv6hint: SmallVec::new(),
            ech: false,
        }
    }
}

/// What a response says about the question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A or AAAA data for the question name after following CNAMEs: at most
    /// [`MAX_ADDRESSES_PER_ANSWER`], duplicates removed, in wire order. `ttl`
    /// is the minimum over the CNAMEs followed and the records used.
    Addresses {
        /// The addresses.
        addrs: SmallVec<[IpAddr; 4]>,
        /// Seconds the answer may be cached, capped at [`MAX_TTL`].
        ttl: u32,
    },
    /// HTTPS records for the (CNAME-followed) name, stably sorted by priority,
    /// so AliasMode records (priority 0) come first. RFC 9460 §2.4.1 says a
    /// set containing AliasMode makes its ServiceMode records void; that
    /// choice is left to the caller, which sees the whole set.
    Https {
        /// The records, at most [`MAX_HTTPS_RECORDS_PER_ANSWER`].
        records: SmallVec<[HttpsRecord; 2]>,
        /// Seconds the answer may be cached, capped at [`MAX_TTL`].
        ttl: u32,
    },
    /// NOERROR without usable records (RFC 2308 §2.2).
    NoData {
        /// min(SOA TTL, SOA MINIMUM) from the authority section (RFC 2308 §5),
        /// capped at [`MAX_NEGATIVE_TTL`]; 0 without an SOA.
        negative_ttl: u32,
    },
    /// The name does not exist (RFC 2308 §2.1).
    NxDomain {
        /// As for [`Answer::NoData`].
        negative_ttl: u32,
    },
    /// RCODE 2: the server could not answer.
    ServFail,
    /// RCODE 5: the server will not answer us.
    Refused,
    /// Any other RCODE, including the EDNS upper bits (RFC 6891 §6.1.3).
    OtherError {
        /// The full 12-bit RCODE.
        rcode: u16,
    },
}

/// A response that matched its query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// TC was set (RFC 1035 §4.1.1): `answer` is built from whatever parsed
    /// before the cut and the caller should retry over TCP (RFC 7766 §5).
    pub truncated: bool,
    /// The outcome.
    pub answer: Answer,
}

/// What exactly is wrong with a malformed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MalformedReason {
    /// Shorter than the 12-byte header.
    ShortHeader,
    /// A field or record runs past the end of the message.
    UnexpectedEnd,
    /// A label length byte with the reserved 0b01/0b10 prefix.
    BadLabelType,
    /// A compression pointer that does not point backwards into the message
    /// body (RFC 1035 §4.1.4 only allows prior occurrences).
    BadPointer,
    /// More compression pointers in one name than it has labels.
    TooManyPointers,
    /// A name longer than 255 octets (RFC 1035 §2.3.4).
    NameTooLong,
    /// OPCODE is not QUERY.
    UnexpectedOpcode,
    /// RDATA length does not fit the record type.
    RdataLength {
        /// The record's TYPE.
        rtype: u16,
    },
    /// An OPT RR not owned by the root or more than one OPT RR
    /// (RFC 6891 §6.1.1).
    BadOpt,
    /// An SVCB parameter runs past its RDATA (RFC 9460 §2.2).
    SvcParamOverrun,
    /// SvcParamKeys not strictly increasing (RFC 9460 §2.2).
    SvcParamOrder,
    /// An SvcParamValue of the wrong format for its key (RFC 9460 §2.2).
    SvcParamValue {
        /// The SvcParamKey.
        key: u16,
    },
}

impl fmt::Display for MalformedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MalformedReason::ShortHeader => f.write_str("shorter than the 12-byte header"),
            MalformedReason::UnexpectedEnd => f.write_str("unexpected end of message"),
            MalformedReason::BadLabelType => f.write_str("reserved label type"),
            MalformedReason::BadPointer => {
                f.write_str("compression pointer not pointing backwards")
            }
            MalformedReason::TooManyPointers => f.write_str("too many compression pointers"),
            MalformedReason::NameTooLong => f.write_str("name longer than 255 octets"),
            MalformedReason::UnexpectedOpcode => f.write_str("opcode is not QUERY"),
            MalformedReason::RdataLength { rtype } => {
                write!(f, "RDATA length wrong for type {rtype}")
            }
            MalformedReason::BadOpt => f.write_str("misplaced or repeated OPT record"),
            MalformedReason::SvcParamOverrun => f.write_str("SvcParam runs past its RDATA"),
            MalformedReason::SvcParamOrder => f.write_str("SvcParamKeys not strictly increasing"),
            MalformedReason::SvcParamValue { key } => {
                write!(f, "bad value for SvcParamKey {key}")
            }
        }
    }
}

/// Where and why a message is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedError {
    /// Byte offset in the message where the problem was found.
    pub offset: usize,
    /// The problem.
    pub reason: MalformedReason,
}

impl fmt::Display for MalformedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for MalformedError {}

/// Why a response was rejected. Every variant is `Copy` data so rejecting a
/// spoofed or broken packet costs no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsWireError {
    /// The bytes are not a well-formed DNS message.
    Malformed(MalformedError),
    /// QR is 0: a query, not a response.
    NotAResponse,
    /// The id is not the one we sent (RFC 5452 §9.1).
    IdMismatch {
        /// The id of our query.
        expected: u16,
        /// The id in the response.
        got: u16,
    },
    /// The question section does not echo our question (RFC 5452 §9.1).
    QuestionMismatch,
    /// More than [`MAX_CNAME_DEPTH`] CNAME hops.
    CnameChainTooDeep,
    /// The CNAME chain returns to a name it already visited.
    CnameLoop,
}

impl fmt::Display for DnsWireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsWireError::Malformed(m) => write!(f, "malformed DNS message: {m}"),
            DnsWireError::NotAResponse => f.write_str("DNS message is not a response"),
            DnsWireError::IdMismatch { expected, got } => {
                write!(
                    f,
                    "DNS response id {got} does not match query id {expected}"
                )
            }
            DnsWireError::QuestionMismatch => {
                f.write_str("DNS response question does not match the query")
            }
            DnsWireError::CnameChainTooDeep => {
                write!(f, "CNAME chain longer than {MAX_CNAME_DEPTH}")
            }
            DnsWireError::CnameLoop => f.write_str("CNAME chain loops"),
        }
    }
}

impl std::error::Error for DnsWireError {}

fn malformed(offset: usize, reason: MalformedReason) -> DnsWireError {
    DnsWireError::Malformed(MalformedError { offset, reason })
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Writes a standard query for `name`/`qtype`/IN with RD=1 and an EDNS(0) OPT
/// RR advertising [`EDNS_UDP_PAYLOAD`] bytes (RFC 1035 §4.1, RFC 6891 §6.1.2).
///
/// `out` is cleared first and its capacity reused; the query is at most 282
/// bytes, so a buffer that has held one query never grows again.
pub fn encode_query(id: u16, name: &HostName, qtype: QueryType, out: &mut Vec<u8>) {
    out.clear();
    let text = name.as_str();
    // Wire length of the name: one length byte per label plus the root byte.
    let name_len = if text.is_empty() { 1 } else { text.len() + 2 };
    out.reserve(HEADER_LEN + name_len + 4 + 11);

    // Header: RD=1, QDCOUNT=1, ARCOUNT=1 (the OPT RR).
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);

    for label in labels_of(name) {
        // HostName guarantees labels of at most 63 octets; should that ever
        // break, clamping keeps the query well-formed and the question check
        // on the response then fails cleanly instead of a corrupt packet.
        debug_assert!(label.len() <= 63, "HostName label longer than 63 octets");
        let label = &label.as_bytes()[..label.len().min(63)];
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out.extend_from_slice(&qtype.code().to_be_bytes());
    out.extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());

    // OPT RR: root owner, TYPE 41, CLASS = payload size, extended RCODE 0,
    // version 0, DO=0, no options.
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&EDNS_UDP_PAYLOAD.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
}

/// Appends `msg` to `out` behind its 2-byte big-endian length (RFC 1035
/// §4.2.2, RFC 7766 §8). Appending lets several queries share one write.
///
/// A message over 65535 bytes cannot be framed and leaves `out` untouched;
/// [`encode_query`] never produces one.
pub fn frame_for_tcp(msg: &[u8], out: &mut Vec<u8>) {
    let Ok(len) = u16::try_from(msg.len()) else {
        debug_assert!(false, "DNS message longer than 65535 bytes");
        return;
    };
    out.reserve(2 + msg.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
}

/// Reassembles length-prefixed DNS messages from a TCP byte stream
/// (RFC 1035 §4.2.2, RFC 7766 §8).
///
/// Holds at most one message (≤ 65535 bytes plus the 2-byte prefix): `push`
/// stops consuming once a message is complete, until it is taken. Usage:
///
/// ```
/// # use taps_core::dns::TcpResponseReader;
/// # let mut reader = TcpResponseReader::new();
/// # let received: &[u8] = &[0, 1, 7, 0, 1, 7];
/// let mut data = received;
/// while !data.is_empty() {
///     let used = reader.push(data);
///     data = &data[used..];
///     if let Some(msg) = reader.take_message() {
///         // parse_response(&msg, ...)
/// #       assert_eq!(msg, [7]);
///     }
/// }
/// ```
#[derive(Clone, Debug, Default)]
pub struct TcpResponseReader {
    prefix: [u8; 2],
    prefix_len: u8,
    body: Vec<u8>,
}

impl TcpResponseReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    fn expected_len(&self) -> Option<usize> {
        (self.prefix_len == 2).then(|| usize::from(u16::from_be_bytes(self.prefix)))
    }

    /// Consumes bytes from the front of `bytes` and returns how many: all of
    /// them, or fewer when a message completed first (take it, then push the
    /// rest). Returns 0 while a complete message waits to be taken.
    #[must_use = "bytes beyond a complete message are not consumed"]
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let mut used = 0;
        while self.prefix_len < 2 {
            let Some(&b) = bytes.get(used) else {
                return used;
            };
            self.prefix[usize::from(self.prefix_len)] = b;
            self.prefix_len += 1;
            used += 1;
            if let Some(len) = self.expected_len() {
                // Exact reservation: the prefix bounds it to 65535 bytes.
                self.body.reserve_exact(len);
            }
        }
        let want = self.expected_len().unwrap_or(0);
        let missing = want.saturating_sub(self.body.len());
        let rest = bytes.get(used..).unwrap_or_default();
        let take = missing.min(rest.len());
        self.body.extend_from_slice(&rest[..take]);
        used + take
    }

    /// The complete message waiting to be taken, if any, without copying.
    pub fn message(&self) -> Option<&[u8]> {
        let len = self.expected_len()?;
        (self.body.len() == len).then_some(self.body.as_slice())
    }

    /// Drops the complete message (if any), keeping the buffer's capacity.
    pub fn discard_message(&mut self) {
        if self.message().is_some() {
            self.body.clear();
            self.prefix_len = 0;
        }
    }

    /// Takes the complete message, if any, leaving the reader ready for the
    /// next one.
    pub fn take_message(&mut self) -> Option<Vec<u8>> {
        self.message()?;
        self.prefix_len = 0;
        Some(core::mem::take(&mut self.body))
    }

    /// Bytes of an incomplete message held so far (including the prefix).
    pub fn buffered(&self) -> usize {
        usize::from(self.prefix_len) + self.body.len()
    }
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

fn labels_of(name: &HostName) -> impl Iterator<Item = &str> {
    let text = name.as_str();
    let text = text.strip_suffix('.').unwrap_or(text);
    text.split('.').filter(|l| !l.is_empty())
}

fn read_u16(msg: &[u8], at: usize) -> Result<u16, DnsWireError> {
    match msg.get(at..at + 2) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(malformed(at, MalformedReason::UnexpectedEnd)),
    }
}

fn read_u32(msg: &[u8], at: usize) -> Result<u32, DnsWireError> {
    match msg.get(at..at + 4) {
        Some(&[a, b, c, d]) => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(malformed(at, MalformedReason::UnexpectedEnd)),
    }
}

/// Walks the labels of a possibly compressed name in place.
struct Labels<'a> {
    msg: &'a [u8],
    pos: usize,
    /// Where the name's own bytes end (after the root or the first pointer).
    end: Option<usize>,
    wire_len: usize,
    hops: usize,
    done: bool,
}

impl<'a> Labels<'a> {
    fn new(msg: &'a [u8], pos: usize) -> Self {
        Labels {
            msg,
            pos,
            end: None,
            wire_len: 0,
            hops: 0,
            done: false,
        }
    }

    /// Next label, `None` at the root.
    fn next_label(&mut self) -> Result<Option<&'a [u8]>, DnsWireError> {
        if self.done {
            return Ok(None);
        }
        loop {
            let at = self.pos;
            let Some(&len) = self.msg.get(at) else {
                return Err(malformed(at, MalformedReason::UnexpectedEnd));
            };
            match len & 0xC0 {
                0x00 => {
                    self.wire_len += 1 + usize::from(len);
                    if self.wire_len > MAX_NAME_WIRE_LEN {
                        return Err(malformed(at, MalformedReason::NameTooLong));
                    }
                    if len == 0 {
                        self.end.get_or_insert(at + 1);
                        self.done = true;
                        return Ok(None);
                    }
                    let start = at + 1;
                    let Some(label) = self.msg.get(start..start + usize::from(len)) else {
                        return Err(malformed(at, MalformedReason::UnexpectedEnd));
                    };
                    self.pos = start + usize::from(len);
                    return Ok(Some(label));
                }
                0xC0 => {
                    let Some(&low) = self.msg.get(at + 1) else {
                        return Err(malformed(at, MalformedReason::UnexpectedEnd));
                    };
                    let target = (usize::from(len & 0x3F) << 8) | usize::from(low);
                    // Strictly backwards pointers (and a hop bound) make every
                    // walk terminate quickly, whatever the packet holds.
                    if target >= at || target < HEADER_LEN {
                        return Err(malformed(at, MalformedReason::BadPointer));
                    }
                    self.hops += 1;
                    if self.hops > MAX_POINTER_HOPS {
                        return Err(malformed(at, MalformedReason::TooManyPointers));
                    }
                    self.end.get_or_insert(at + 2);
                    self.pos = target;
                }
                _ => return Err(malformed(at, MalformedReason::BadLabelType)),
            }
        }
    }

    /// Positioned where the next label starts and not finished, i.e. the
    /// rest of the name is exactly the bytes at `pos`.
    fn cursor(&self) -> Option<usize> {
        (!self.done).then_some(self.pos)
    }
}

/// Validates the whole name at `pos`; returns where its own bytes end.
fn skip_name(msg: &[u8], pos: usize) -> Result<usize, DnsWireError> {
    let mut labels = Labels::new(msg, pos);
    while labels.next_label()?.is_some() {}
    Ok(labels.end.unwrap_or(pos + 1))
}

fn is_root(msg: &[u8], pos: usize) -> bool {
    msg.get(pos) == Some(&0)
}

/// Case-insensitive equality of two names in the same message (RFC 4343).
fn names_equal(msg: &[u8], a: usize, b: usize) -> Result<bool, DnsWireError> {
    let mut la = Labels::new(msg, a);
    let mut lb = Labels::new(msg, b);
    loop {
        // Same bytes from here on: compression usually makes this hit at
        // once, e.g. an owner name pointing at the question.
        if la.cursor().is_some() && la.cursor() == lb.cursor() {
            return Ok(true);
        }
        match (la.next_label()?, lb.next_label()?) {
            (None, None) => return Ok(true),
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => {}
            _ => return Ok(false),
        }
    }
}

/// Case-insensitive equality of a wire name with a host name (RFC 4343), so
/// 0x20-randomised echoes match.
fn name_equals_host(msg: &[u8], pos: usize, host: &HostName) -> Result<bool, DnsWireError> {
    let mut wire = Labels::new(msg, pos);
    let mut expected = labels_of(host);
    loop {
        match (wire.next_label()?, expected.next()) {
            (None, None) => return Ok(true),
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y.as_bytes()) => {}
            _ => return Ok(false),
        }
    }
}

/// The fixed part of a resource record, located in the message.
#[derive(Clone, Copy, Debug)]
struct Rr {
    owner: usize,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: usize,
    rdlen: usize,
}

impl Rr {
    fn end(&self) -> usize {
        self.rdata + self.rdlen
    }

    fn is_in(&self, rtype: u16) -> bool {
        self.rtype == rtype && self.class == CLASS_IN
    }
}

/// Reads the record at `pos` and checks the RDATA of the types this module
/// interprets, so later passes only meet well-formed data.
fn read_rr(msg: &[u8], pos: usize) -> Result<Rr, DnsWireError> {
    let fixed = skip_name(msg, pos)?;
    let rtype = read_u16(msg, fixed)?;
    let class = read_u16(msg, fixed + 2)?;
    let ttl = read_u32(msg, fixed + 4)?;
    let rdlen = usize::from(read_u16(msg, fixed + 8)?);
    let rdata = fixed + 10;
    if msg.len() < rdata + rdlen {
        return Err(malformed(fixed + 8, MalformedReason::UnexpectedEnd));
    }
    let rr = Rr {
        owner: pos,
        rtype,
        class,
        ttl,
        rdata,
        rdlen,
    };
    let well_formed = match (class, rtype) {
        (CLASS_IN, TYPE_A) => rdlen == 4,
        (CLASS_IN, TYPE_AAAA) => rdlen == 16,
        (_, TYPE_CNAME) => skip_name(msg, rdata)? == rr.end(),
        (_, TYPE_SOA) => skip_name(msg, skip_name(msg, rdata)?)? + 20 == rr.end(),
        // Priority and TargetName only: the parameters are checked for the
        // records actually used.
        (_, TYPE_HTTPS) => rdlen >= 3 && skip_name(msg, rdata + 2)? <= rr.end(),
        _ => true,
    };
    if !well_formed {
        return Err(malformed(fixed + 8, MalformedReason::RdataLength { rtype }));
    }
    Ok(rr)
}

/// RFC 2181 §8: a TTL with the top bit set is treated as zero.
fn clamp_ttl(ttl: u32, cap: u32) -> u32 {
    if ttl > i32::MAX as u32 {
        0
    } else {
        ttl.min(cap)
    }
}

/// A run of records: where the section starts and how many records of it
/// were read successfully.
#[derive(Clone, Copy, Debug, Default)]
struct Section {
    start: usize,
    count: usize,
}

impl Section {
    /// Re-reads records that [`scan_section`] already validated, skipping
    /// the checks (and pointer chasing) done there.
    fn records<'a>(self, msg: &'a [u8]) -> impl Iterator<Item = Result<Rr, DnsWireError>> + 'a {
        let mut pos = self.start;
        (0..self.count).map(move |_| {
            let rr = read_rr_validated(msg, pos)?;
            pos = rr.end();
            Ok(rr)
        })
    }
}

/// Where the name at `pos` ends in place, without following pointers.
fn skip_name_in_place(msg: &[u8], mut pos: usize) -> Result<usize, DnsWireError> {
    loop {
        match msg.get(pos) {
            Some(0) => return Ok(pos + 1),
            Some(&len) if len & 0xC0 == 0xC0 => return Ok(pos + 2),
            Some(&len) => pos += 1 + usize::from(len),
            None => return Err(malformed(pos, MalformedReason::UnexpectedEnd)),
        }
    }
}

/// The fixed fields of a record known to be well-formed.
fn read_rr_validated(msg: &[u8], pos: usize) -> Result<Rr, DnsWireError> {
    let fixed = skip_name_in_place(msg, pos)?;
    Ok(Rr {
        owner: pos,
        rtype: read_u16(msg, fixed)?,
        class: read_u16(msg, fixed + 2)?,
        ttl: read_u32(msg, fixed + 4)?,
        rdata: fixed + 10,
        rdlen: usize::from(read_u16(msg, fixed + 8)?),
    })
}

/// Reads `count` records from `pos`. With `lenient` (TC=1) a record that fails
/// to parse ends the section instead of failing the message, and `Ok(None)`
/// as the second value says later sections are unreachable.
fn scan_section(
    msg: &[u8],
    pos: usize,
    count: u16,
    lenient: bool,
    mut each: impl FnMut(&Rr) -> Result<(), DnsWireError>,
) -> Result<(Section, Option<usize>), DnsWireError> {
    let mut section = Section {
        start: pos,
        count: 0,
    };
    let mut at = pos;
    for _ in 0..count {
        match read_rr(msg, at) {
            Ok(rr) => {
                each(&rr)?;
                at = rr.end();
                section.count += 1;
            }
            Err(_) if lenient => return Ok((section, None)),
            Err(e) => return Err(e),
        }
    }
    Ok((section, Some(at)))
}

/// Checks `bytes` against the query (`expected_id`, `name`, `qtype`) and
/// extracts the answer (see the module docs for the rules applied).
///
/// Errors are returned for anything malformed, a mismatched id or question,
/// QR=0, or a broken CNAME chain; records of other types, classes or owners
/// are ignored. Never panics, and allocates nothing for A/AAAA answers of up
/// to four addresses.
pub fn parse_response(
    bytes: &[u8],
    expected_id: u16,
    name: &HostName,
    qtype: QueryType,
) -> Result<Response, DnsWireError> {
    if bytes.len() < HEADER_LEN {
        return Err(malformed(bytes.len(), MalformedReason::ShortHeader));
    }
    let header = Header::read(&mut BinDecoder::new(bytes))
        .map_err(|_| malformed(0, MalformedReason::ShortHeader))?;
    let meta = header.metadata;
    if meta.message_type != MessageType::Response {
        return Err(DnsWireError::NotAResponse);
    }
    if meta.id != expected_id {
        return Err(DnsWireError::IdMismatch {
            expected: expected_id,
            got: meta.id,
        });
    }
    if meta.op_code != OpCode::Query {
        return Err(malformed(2, MalformedReason::UnexpectedOpcode));
    }
    let truncated = meta.truncation;

    // RFC 5452 §9.1: exactly our question, or the packet is not our answer.
    if header.counts.queries != 1 {
        return Err(DnsWireError::QuestionMismatch);
    }
    let qname = HEADER_LEN;
    let qfixed = skip_name(bytes, qname)?;
    let qt = read_u16(bytes, qfixed)?;
    let qc = read_u16(bytes, qfixed + 2)?;
    if !name_equals_host(bytes, qname, name)? || qt != qtype.code() || qc != CLASS_IN {
        return Err(DnsWireError::QuestionMismatch);
    }

    // One validating pass over all sections: finds the SOA for negative TTLs
    // and the OPT RR for the upper RCODE bits.
    let mut soa: Option<Rr> = None;
    let mut opt: Option<Rr> = None;
    let (answers, next) =
        scan_section(bytes, qfixed + 4, header.counts.answers, truncated, |_| {
            Ok(())
        })?;
    if let Some(pos) = next {
        let (_, next) = scan_section(bytes, pos, header.counts.authorities, truncated, |rr| {
            if rr.is_in(TYPE_SOA) && soa.is_none() {
                soa = Some(*rr);
            }
            Ok(())
        })?;
        if let Some(pos) = next {
            scan_section(bytes, pos, header.counts.additionals, truncated, |rr| {
                if rr.rtype == TYPE_OPT {
                    if opt.is_some() || !is_root(bytes, rr.owner) {
                        return Err(malformed(rr.owner, MalformedReason::BadOpt));
                    }
                    opt = Some(*rr);
                }
                Ok(())
            })?;
        }
        // Bytes after the last record are ignored: they carry no meaning and
        // some middleboxes pad.
    }

    let negative_ttl = || -> Result<u32, DnsWireError> {
        let Some(soa) = soa else { return Ok(0) };
        let rname = skip_name(bytes, soa.rdata)?;
        let minimum = read_u32(bytes, skip_name(bytes, rname)? + 16)?;
        Ok(clamp_ttl(soa.ttl.min(minimum), MAX_NEGATIVE_TTL))
    };

    let ext_rcode = opt.map_or(0, |o| (o.ttl >> 24) as u16);
    let rcode = (ext_rcode << 4) | u16::from(meta.response_code.low());
    let answer = match rcode {
        0 => {
            let (target, chain_ttl) = follow_cnames(bytes, answers, qname)?;
            match qtype {
                QueryType::A | QueryType::Aaaa => {
                    collect_addresses(bytes, answers, target, qtype, chain_ttl, negative_ttl)?
                }
                QueryType::Https => collect_https(bytes, answers, target, chain_ttl, negative_ttl)?,
            }
        }
        2 => Answer::ServFail,
        3 => Answer::NxDomain {
            negative_ttl: negative_ttl()?,
        },
        5 => Answer::Refused,
        rcode => Answer::OtherError { rcode },
    };
    Ok(Response { truncated, answer })
}

/// Follows CNAMEs from `qname` through the answer section; returns the final
/// name's offset and the minimum TTL of the CNAMEs used.
fn follow_cnames(msg: &[u8], answers: Section, qname: usize) -> Result<(usize, u32), DnsWireError> {
    let mut chain = [0usize; MAX_CNAME_DEPTH + 1];
    chain[0] = qname;
    let mut hops = 0;
    let mut ttl = MAX_TTL;
    'follow: loop {
        let current = chain[hops];
        for rr in answers.records(msg) {
            let rr = rr?;
            if !rr.is_in(TYPE_CNAME) || !names_equal(msg, rr.owner, current)? {
                continue;
            }
            for &seen in &chain[..=hops] {
                if names_equal(msg, rr.rdata, seen)? {
                    return Err(DnsWireError::CnameLoop);
                }
            }
            if hops == MAX_CNAME_DEPTH {
                return Err(DnsWireError::CnameChainTooDeep);
            }
            hops += 1;
            chain[hops] = rr.rdata;
            ttl = ttl.min(clamp_ttl(rr.ttl, MAX_TTL));
            continue 'follow;
        }
        return Ok((current, ttl));
    }
}

fn collect_addresses(
    msg: &[u8],
    answers: Section,
    target: usize,
    qtype: QueryType,
    mut ttl: u32,
    negative_ttl: impl FnOnce() -> Result<u32, DnsWireError>,
) -> Result<Answer, DnsWireError> {
    let want = qtype.code();
    let mut addrs: SmallVec<[IpAddr; 4]> = SmallVec::new();
    for rr in answers.records(msg) {
        let rr = rr?;
        if addrs.len() == MAX_ADDRESSES_PER_ANSWER {
            break;
        }
        if !rr.is_in(want) || !names_equal(msg, rr.owner, target)? {
            continue;
        }
        let data = msg.get(rr.rdata..rr.end()).unwrap_or_default();
        let addr = if let Ok(v4) = <[u8; 4]>::try_from(data) {
            IpAddr::V4(Ipv4Addr::from(v4))
        } else if let Ok(v6) = <[u8; 16]>::try_from(data) {
            IpAddr::V6(Ipv6Addr::from(v6))
        } else {
            // read_rr already checked the length for IN A/AAAA.
            return Err(malformed(
                rr.rdata,
                MalformedReason::RdataLength { rtype: rr.rtype },
            ));
        };
        if !addrs.contains(&addr) {
            addrs.push(addr);
            ttl = ttl.min(clamp_ttl(rr.ttl, MAX_TTL));
        }
    }
    if addrs.is_empty() {
        return Ok(Answer::NoData {
            negative_ttl: negative_ttl()?,
        });
    }
    Ok(Answer::Addresses { addrs, ttl })
}

fn collect_https(
    msg: &[u8],
    answers: Section,
    target: usize,
    mut ttl: u32,
    negative_ttl: impl FnOnce() -> Result<u32, DnsWireError>,
) -> Result<Answer, DnsWireError> {
    let mut records: SmallVec<[HttpsRecord; 2]> = SmallVec::new();
    for rr in answers.records(msg) {
        let rr = rr?;
        if !rr.is_in(TYPE_HTTPS) || !names_equal(msg, rr.owner, target)? {
            continue;
        }
        // Every record is parsed, kept or not: one malformed record voids the
        // whole set (RFC 9460 §2.2).
        let Some(record) = parse_svcb(msg, &rr)? else {
            continue;
        };
        if records.len() < MAX_HTTPS_RECORDS_PER_ANSWER {
            records.push(record);
            ttl = ttl.min(clamp_ttl(rr.ttl, MAX_TTL));
        }
    }
    if records.is_empty() {
        return Ok(Answer::NoData {
            negative_ttl: negative_ttl()?,
        });
    }
    records.sort_by_key(|r| r.priority);
    Ok(Answer::Https { records, ttl })
}

/// The SvcParamKeys this module understands (RFC 9460 §14.3.2).
fn known_key(key: u16) -> bool {
    (1..=6).contains(&key)
}

/// Parses SVCB RDATA (RFC 9460 §2.2). `Ok(None)`: a valid record this client
/// must ignore (an unknown mandatory key, §8) or cannot use (a target that is
/// not a valid host name).
fn parse_svcb(msg: &[u8], rr: &Rr) -> Result<Option<HttpsRecord>, DnsWireError> {
    let end = rr.end();
    let priority = read_u16(msg, rr.rdata)?;
    let target_at = rr.rdata + 2;
    let params_at = skip_name(msg, target_at)?;
    let target = if is_root(msg, target_at) {
        None
    } else {
        match host_name_from_wire(msg, target_at)? {
            Some(host) => Some(host),
            None => return Ok(None),
        }
    };
    if priority == 0 {
        // §2.4.2: AliasMode parameters MUST be ignored.
        return Ok(Some(HttpsRecord::empty(0, target)));
    }

    let mut record = HttpsRecord::empty(priority, target);
    let mut mandatory: &[u8] = &[];
    let mut last_key: Option<u16> = None;
    let mut present = [false; 7];
    let mut pos = params_at;
    while pos < end {
        if end - pos < 4 {
            return Err(malformed(pos, MalformedReason::SvcParamOverrun));
        }
        let key = read_u16(msg, pos)?;
        let len = usize::from(read_u16(msg, pos + 2)?);
        let value_at = pos + 4;
        if end - value_at < len {
            return Err(malformed(pos, MalformedReason::SvcParamOverrun));
        }
        if last_key.is_some_and(|last| last >= key) {
            return Err(malformed(pos, MalformedReason::SvcParamOrder));
        }
        last_key = Some(key);
        let value = msg.get(value_at..value_at + len).unwrap_or_default();
        let bad = || malformed(value_at, MalformedReason::SvcParamValue { key });
        match key {
            0 => {
                if value.is_empty() || value.len() % 2 != 0 {
                    return Err(bad());
                }
                mandatory = value;
            }
            1 => {
                // alpn-ids are non-empty length-prefixed strings exactly
                // filling the value (§7.1.1).
                if value.is_empty() {
                    return Err(bad());
                }
                let mut rest = value;
                while let Some((&n, tail)) = rest.split_first() {
                    let n = usize::from(n);
                    if n == 0 || tail.len() < n {
                        return Err(bad());
                    }
                    let (id, tail) = tail.split_at(n);
                    if let Ok(id) = core::str::from_utf8(id) {
                        record.alpn.push(id.to_owned());
                    }
                    rest = tail;
                }
            }
            2 => {
                if !value.is_empty() {
                    return Err(bad());
                }
                record.no_default_alpn = true;
            }
            3 => match <[u8; 2]>::try_from(value) {
                Ok(port) => record.port = Some(u16::from_be_bytes(port)),
                Err(_) => return Err(bad()),
            },
            4 => {
                if value.is_empty() || value.len() % 4 != 0 {
                    return Err(bad());
                }
                for chunk in value.chunks_exact(4).take(MAX_ADDRESSES_PER_ANSWER) {
                    if let Ok(octets) = <[u8; 4]>::try_from(chunk) {
                        record.ipv4hint.push(Ipv4Addr::from(octets));
                    }
                }
            }
            5 => {
                if value.is_empty() {
                    return Err(bad());
                }
                record.ech = true;
            }
            6 => {
                if value.is_empty() || value.len() % 16 != 0 {
                    return Err(bad());
                }
                for chunk in value.chunks_exact(16).take(MAX_ADDRESSES_PER_ANSWER) {
                    if let Ok(octets) = <[u8; 16]>::try_from(chunk) {
                        record.ipv6hint.push(Ipv6Addr::from(octets));
                    }
                }
            }
            // §2.2: unknown keys are skipped.
            _ => {}
        }
        if let Some(slot) = present.get_mut(usize::from(key)) {
            *slot = true;
        }
        pos = value_at + len;
    }

    // §8: every mandatory key must be known and present, and "mandatory"
    // may not list itself; keys are in strictly increasing order.
    let mut prev: Option<u16> = None;
    for pair in mandatory.chunks_exact(2) {
        let key = u16::from_be_bytes([pair[0], pair[1]]);
        if key == 0 || prev.is_some_and(|p| p >= key) {
            return Err(malformed(
                rr.rdata,
                MalformedReason::SvcParamValue { key: 0 },
            ));
        }
        prev = Some(key);
        if !known_key(key) || !present[usize::from(key)] {
            return Ok(None);
        }
    }
    Ok(Some(record))
}

/// Turns the wire name at `pos` into a [`HostName`], or `None` when its
/// labels are not LDH/underscore host-name labels.
fn host_name_from_wire(msg: &[u8], pos: usize) -> Result<Option<HostName>, DnsWireError> {
    let mut text = String::with_capacity(64);
    let mut labels = Labels::new(msg, pos);
    while let Some(label) = labels.next_label()? {
        if !text.is_empty() {
            text.push('.');
        }
        match core::str::from_utf8(label) {
            Ok(label) => text.push_str(label),
            Err(_) => return Ok(None),
        }
    }
    Ok(host_name_from_text(&text))
}

/// Builds a [`HostName`] from text taken off the wire or out of a
/// configuration file; `None` when it is not a valid host name. Shared by
/// the wire and configuration parsers so both accept the same names.
pub(crate) fn host_name_from_text(text: &str) -> Option<HostName> {
    HostName::new(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, Query, ResponseCode};
    use hickory_proto::rr::rdata::svcb::{
        Alpn, EchConfigList, IpHint, Mandatory, SVCB, SvcParamKey, SvcParamValue, Unknown,
    };
    use hickory_proto::rr::rdata::{A, AAAA, CNAME, HTTPS, SOA};
    use hickory_proto::rr::{Name, RData, Record};
    use proptest::prelude::*;

    fn name(s: &str) -> HostName {
        HostName::new(s).expect("test name")
    }

    fn dn(s: &str) -> Name {
        Name::from_ascii(s).expect("test name")
    }

    fn response(id: u16, qname: &str, qtype: RecordType) -> Message {
        let mut m = Message::response(id, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(dn(qname), qtype));
        m
    }

    fn rec(owner: &str, ttl: u32, data: RData) -> Record {
        Record::from_rdata(dn(owner), ttl, data)
    }

    fn a(owner: &str, ttl: u32, ip: [u8; 4]) -> Record {
        rec(owner, ttl, RData::A(A(Ipv4Addr::from(ip))))
    }

    fn cname(owner: &str, ttl: u32, target: &str) -> Record {
        rec(owner, ttl, RData::CNAME(CNAME(dn(target))))
    }

    fn soa(owner: &str, ttl: u32, minimum: u32) -> Record {
        let data = SOA::new(dn("ns.example."), dn("host.example."), 1, 2, 3, 4, minimum);
        rec(owner, ttl, RData::SOA(data))
    }

    fn https(
        owner: &str,
        ttl: u32,
        prio: u16,
        target: &str,
        params: Vec<(SvcParamKey, SvcParamValue)>,
    ) -> Record {
        rec(
            owner,
            ttl,
            RData::HTTPS(HTTPS(SVCB::new(prio, dn(target), params))),
        )
    }

    fn bytes(m: &Message) -> Vec<u8> {
        m.to_vec().expect("encodable test message")
    }

    fn parse_a(m: &Message) -> Result<Response, DnsWireError> {
        parse_response(&bytes(m), 7, &name("www.example.com"), QueryType::A)
    }

    fn v4(ips: &[[u8; 4]]) -> SmallVec<[IpAddr; 4]> {
        ips.iter().map(|&ip| IpAddr::from(ip)).collect()
    }

    // RFC 1035 §4.1.1-§4.1.2, RFC 6891 §6.1.2: header, question and OPT RR.
    #[test]
    fn query_round_trips_through_hickory() {
        let mut out = vec![0xAA; 3];
        encode_query(0xBEEF, &name("www.example.com"), QueryType::Aaaa, &mut out);
        let msg = Message::from_vec(&out).expect("hickory decodes our query");
        assert_eq!(msg.metadata.id, 0xBEEF);
        assert_eq!(msg.metadata.message_type, MessageType::Query);
        assert_eq!(msg.metadata.op_code, OpCode::Query);
        assert!(msg.metadata.recursion_desired);
        assert_eq!(msg.queries.len(), 1);
        assert_eq!(msg.queries[0].name(), &dn("www.example.com."));
        assert_eq!(msg.queries[0].query_type(), RecordType::AAAA);
        assert_eq!(msg.queries[0].query_class(), DNSClass::IN);
        assert!(msg.answers.is_empty() && msg.authorities.is_empty());
        let edns = msg.edns.as_ref().expect("OPT record");
        assert_eq!(edns.max_payload(), 1232);
        assert_eq!(edns.version(), 0);
        assert_eq!(out.len(), 12 + 17 + 4 + 11);

        // Reuse: the buffer is cleared, not appended to.
        let cap = out.capacity();
        encode_query(1, &name("example.org"), QueryType::Https, &mut out);
        assert_eq!(out.capacity(), cap);
        let msg = Message::from_vec(&out).expect("decodes");
        assert_eq!(msg.queries[0].query_type(), RecordType::HTTPS);
    }

    // RFC 1035 §4.1.3: positive A answer.
    #[test]
    fn positive_a() {
        let mut m = response(7, "www.example.com.", RecordType::A);
        m.add_answer(a("www.example.com.", 300, [192, 0, 2, 1]));
        m.add_answer(a("www.example.com.", 200, [192, 0, 2, 2]));
        let r = parse_a(&m).expect("valid");
        assert_eq!(
            r,
            Response {
                truncated: false,
                answer: Answer::Addresses {
                    addrs: v4(&[[192, 0, 2, 1], [192, 0, 2, 2]]),
                    ttl: 200
                }
            }
        );
    }

    // RFC 3596 §2.1: AAAA answer; RFC 2181 §8 TTL cap.
    #[test]
    fn positive_aaaa_with_ttl_cap() {
        let mut m = response(9, "v6.example.", RecordType::AAAA);
        let ip: Ipv6Addr = "2001:db8::1".parse().expect("ip");
        m.add_answer(rec("v6.example.", 99_999_999, RData::AAAA(AAAA(ip))));
        let r = parse_response(&bytes(&m), 9, &name("v6.example"), QueryType::Aaaa).expect("valid");
        assert_eq!(
            r.answer,
            Answer::Addresses {
                addrs: [IpAddr::V6(ip)].into_iter().collect(),
                ttl: MAX_TTL
            }
        );
    }

    // RFC 1034 §3.6.2: a CNAME chain of three hops, out of order, with
    // unrelated records ignored; ttl is the chain minimum.
    #[test]
    fn cname_chain() {
        let mut m = response(7, "www.example.com.", RecordType::A);
        m.add_answer(a("c2.example.net.", 600, [198, 51, 100, 7]));
        m.add_answer(cname("c1.example.net.", 500, "c2.example.net."));
        m.add_answer(a("www.example.com.", 600, [10, 0, 0, 1])); // shadowed by the CNAME
        m.add_answer(cname("www.example.com.", 120, "c1.example.net."));
        m.add_answer(a("other.example.", 5, [10, 9, 9, 9]));
        let r = parse_a(&m).expect("valid");
        assert_eq!(
            r.answer,
            Answer::Addresses {
                addrs: v4(&[[198, 51, 100, 7]]),
                ttl: 120
            }
        );
    }

    // RFC 1034 §3.6.2 + RFC 2308 §2.2: chain ending without data is NODATA.
    #[test]
    fn cname_chain_without_data_is_nodata() {
        let mut m = response(7, "www.example.com.", RecordType::A);
        m.add_answer(cname("www.example.com.", 120, "gone.example.net."));
        m.add_authority(soa("example.net.", 60, 30));
        assert_eq!(
            parse_a(&m).expect("valid").answer,
            Answer::NoData { negative_ttl: 30 }
        );
    }

    // RFC 1034 §3.6.2 (loops must be detected).
    #[test]
    fn cname_loop() {
        let mut m = response(7, "www.example.com.", RecordType::A);
        m.add_answer(cname("www.example.com.", 1, "b.example."));
        m.add_answer(cname("b.example.", 1, "WWW.example.com."));
        assert_eq!(parse_a(&m), Err(DnsWireError::CnameLoop));
    }

    // MAX_CNAME_DEPTH bound: 8 hops pass, 9 fail.
    #[test]
    fn cname_chain_too_deep() {
        let build = |hops: usize| {
            let mut m = response(7, "www.example.com.", RecordType::A);
            let mut owner = "www.example.com.".to_string();
            for i in 0..hops {
                let next = format!("c{i}.example.");
                m.add_answer(cname(&owner, 60, &next));
                owner = next;
            }
            m.add_answer(a(&owner, 60, [192, 0, 2, 9]));
            m
        };
        assert!(matches!(
            parse_a(&build(MAX_CNAME_DEPTH)).expect("ok").answer,
            Answer::Addresses { .. }
        ));
        assert_eq!(
            parse_a(&build(MAX_CNAME_DEPTH + 1)),
            Err(DnsWireError::CnameChainTooDeep)
        );
    }

    // RFC 2308 §2.1, §5: NXDOMAIN, negative TTL = min(SOA TTL, MINIMUM).
    #[test]
    fn nxdomain_with_soa() {
        let mut m = response(7, "www.example.com.", RecordType::A);
        m.metadata.response_code = ResponseCode::NXDomain;
        m.add_authority(soa("example.com.", 900, 300));
        assert_eq!(
            parse_a(&m).expect("valid").answer,
            Answer::NxDomain { negative_ttl: 300 }
        );
        let mut m = response(7, "www.example.com.", RecordType::A);
        m.metadata.response_code = ResponseCode::NXDomain;
        m.add_authority(soa("example.com.", 100, 86_400 * 2));
        assert_eq!(
            parse_a(&m).expect("valid").answer,
            Answer::NxDomain { negative_ttl: 100 }
        );
        let mut m = response(7, "www.example.com.", RecordType::A);
        m.metadata.response_code = ResponseCode::NXDomain;
        m.add_authority(soa("example.com.", 86_400, 86_400));
        assert_eq!(
            parse_a(&m).expect("valid").answer,
            Answer::NxDomain {
                negative_ttl: MAX_NEGATIVE_TTL
            }
        );
    }

    // RFC 2308 §2.2: NODATA, with and without SOA; other-type records ignored.
    #[test]
    fn nodata() {
        let mut m = response(7, "www.example.com.", RecordType::A);
        m.add_answer(rec(
            "www.example.com.",
            60,
            RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)),
        ));
        m.add_authority(soa("example.com.", 900, 60));
        assert_eq!(
            parse_a(&m).expect("valid").answer,
            Answer::NoData { negative_ttl: 60 }
        );
        let m = response(7, "www.example.com.", RecordType::A);
        assert_eq!(
            parse_a(&m).expect("valid").answer,
            Answer::NoData { negative_ttl: 0 }
        );
    }

    // RFC 1035 §4.1.1 RCODE 2 and 5, and other codes incl. RFC 6891 §6.1.3
    // extended RCODE bits.
    #[test]
    fn error_rcodes() {
        for (code, want) in [
            (ResponseCode::ServFail, Answer::ServFail),
            (ResponseCode::Refused, Answer::Refused),
            (ResponseCode::NotImp, Answer::OtherError { rcode: 4 }),
        ] {
            let mut m = response(7, "www.example.com.", RecordType::A);
            m.metadata.response_code = code;
            assert_eq!(parse_a(&m).expect("valid").answer, want);
        }
        // BADVERS (16): upper bits 1 in the OPT TTL, lower bits 0 in the header.
        let mut m = response(7, "www.example.com.", RecordType::A);
        m.set_edns(Edns::new());
        let mut raw = bytes(&m);
        let opt_ttl = raw.len() - 6;
        raw[opt_ttl] = 1;
        let r = parse_response(&raw, 7, &name("www.example.com"), QueryType::A).expect("valid");
        assert_eq!(r.answer, Answer::OtherError { rcode: 16 });
    }

    // RFC 5452 §9.1: id must match.
    #[test]
    fn wrong_id() {
        let m = response(8, "www.example.com.", RecordType::A);
        assert_eq!(
            parse_a(&m),
            Err(DnsWireError::IdMismatch {
                expected: 7,
                got: 8
            })
        );
    }

    // RFC 5452 §9.1: question name, type and class must match.
    #[test]
    fn wrong_question() {
        let m = response(7, "www.example.org.", RecordType::A);
        assert_eq!(parse_a(&m), Err(DnsWireError::QuestionMismatch));
        let m = response(7, "www.example.com.", RecordType::AAAA);
        assert_eq!(parse_a(&m), Err(DnsWireError::QuestionMismatch));
        let m = response(7, "example.com.", RecordType::A);
        assert_eq!(parse_a(&m), Err(DnsWireError::QuestionMismatch));
        let mut m = response(7, "www.example.com.", RecordType::A);
        m.queries[0].set_query_class(DNSClass::CH);
        assert_eq!(parse_a(&m), Err(DnsWireError::QuestionMismatch));
        let mut m = response(7, "www.example.com.", RecordType::A);
        m.add_query(Query::query(dn("www.example.com."), RecordType::A));
        assert_eq!(parse_a(&m), Err(DnsWireError::QuestionMismatch));
    }

    // RFC 1035 §4.1.1: QR=0 is a query.
    #[test]
    fn qr_zero_is_not_a_response() {
        let mut raw = bytes(&response(7, "www.example.com.", RecordType::A));
        raw[2] &= 0x7F;
        assert_eq!(
            parse_response(&raw, 7, &name("www.example.com"), QueryType::A),
            Err(DnsWireError::NotAResponse)
        );
    }

    // RFC 1035 §4.1.1 TC, RFC 7766 §5: truncated answers are flagged, and a
    // record cut in half is tolerated.
    #[test]
    fn truncated() {
        let mut m = response(7, "www.example.com.", RecordType::A);
        m.metadata.truncation = true;
        m.add_answer(a("www.example.com.", 60, [192, 0, 2, 1]));
        m.add_answer(a("www.example.com.", 60, [192, 0, 2, 2]));
        let mut raw = bytes(&m);
        let r = parse_response(&raw, 7, &name("www.example.com"), QueryType::A).expect("valid");
        assert!(r.truncated);
        raw.truncate(raw.len() - 3);
        let r = parse_response(&raw, 7, &name("www.example.com"), QueryType::A).expect("lenient");
        assert_eq!(
            r,
            Response {
                truncated: true,
                answer: Answer::Addresses {
                    addrs: v4(&[[192, 0, 2, 1]]),
                    ttl: 60
                }
            }
        );
        // Without TC the same bytes are malformed.
        raw[2] &= !0x02;
        assert!(matches!(
            parse_response(&raw, 7, &name("www.example.com"), QueryType::A),
            Err(DnsWireError::Malformed(_))
        ));
    }

    // RFC 4343 §3 + 0x20 randomisation: case-insensitive names.
    #[test]
    fn mixed_case_question() {
        let mut m = response(7, "wWw.ExAmPlE.cOm.", RecordType::A);
        m.add_answer(a("WWW.EXAMPLE.COM.", 60, [192, 0, 2, 1]));
        assert_eq!(
            parse_a(&m).expect("valid").answer,
            Answer::Addresses {
                addrs: v4(&[[192, 0, 2, 1]]),
                ttl: 60
            }
        );
    }

    // MAX_ADDRESSES_PER_ANSWER bound; duplicates dropped.
    #[test]
    fn addresses_capped() {
        let mut m = response(7, "www.example.com.", RecordType::A);
        m.add_answer(a("www.example.com.", 60, [10, 0, 0, 0]));
        for i in 0..40u8 {
            m.add_answer(a("www.example.com.", 60, [10, 0, 0, i]));
        }
        match parse_a(&m).expect("valid").answer {
            Answer::Addresses { addrs, .. } => {
                assert_eq!(addrs.len(), MAX_ADDRESSES_PER_ANSWER);
                assert_eq!(addrs[31], IpAddr::from([10, 0, 0, 31]));
            }
            other => panic!("{other:?}"),
        }
    }

    // RFC 9460 §7.1-§7.3, RFC 9848 (ech), §2.4.2 AliasMode, sorting by priority.
    #[test]
    fn https_records() {
        let mut m = response(7, "example.com.", RecordType::HTTPS);
        m.add_answer(https(
            "example.com.",
            300,
            2,
            "svc.example.net.",
            vec![
                (
                    SvcParamKey::Alpn,
                    SvcParamValue::Alpn(Alpn(vec!["h3".into(), "h2".into()])),
                ),
                (SvcParamKey::NoDefaultAlpn, SvcParamValue::NoDefaultAlpn),
                (SvcParamKey::Port, SvcParamValue::Port(8443)),
                (
                    SvcParamKey::Ipv4Hint,
                    SvcParamValue::Ipv4Hint(IpHint(vec![A(Ipv4Addr::new(192, 0, 2, 5))])),
                ),
                (
                    SvcParamKey::EchConfigList,
                    SvcParamValue::EchConfigList(EchConfigList(vec![0, 1, 2])),
                ),
                (
                    SvcParamKey::Ipv6Hint,
                    SvcParamValue::Ipv6Hint(IpHint(vec![AAAA("2001:db8::5".parse().expect("ip"))])),
                ),
            ],
        ));
        m.add_answer(https(
            "example.com.",
            100,
            1,
            ".",
            vec![(
                SvcParamKey::Alpn,
                SvcParamValue::Alpn(Alpn(vec!["h2".into()])),
            )],
        ));
        let r =
            parse_response(&bytes(&m), 7, &name("example.com"), QueryType::Https).expect("valid");
        let Answer::Https { records, ttl } = r.answer else {
            panic!("{r:?}")
        };
        assert_eq!(ttl, 100);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].priority, 1);
        assert_eq!(records[0].target, None);
        assert_eq!(records[0].alpn, ["h2"]);
        let full = &records[1];
        assert_eq!(full.target, Some(name("svc.example.net")));
        assert_eq!(full.alpn, ["h3", "h2"]);
        assert!(full.no_default_alpn && full.ech);
        assert_eq!(full.port, Some(8443));
        assert_eq!(full.ipv4hint.as_slice(), [Ipv4Addr::new(192, 0, 2, 5)]);
        assert_eq!(
            full.ipv6hint.as_slice(),
            ["2001:db8::5".parse::<Ipv6Addr>().expect("ip")]
        );

        let mut m = response(7, "example.com.", RecordType::HTTPS);
        m.add_answer(https(
            "example.com.",
            60,
            0,
            "pool.example.net.",
            vec![(SvcParamKey::Port, SvcParamValue::Port(1))],
        ));
        let r =
            parse_response(&bytes(&m), 7, &name("example.com"), QueryType::Https).expect("valid");
        let Answer::Https { records, .. } = r.answer else {
            panic!("{r:?}")
        };
        assert_eq!(
            records.as_slice(),
            [HttpsRecord::empty(0, Some(name("pool.example.net")))]
        );
    }

    // RFC 9460 §2.2: unknown keys ignored; §8: unknown mandatory key makes the
    // record incompatible (ignored), leaving NODATA here.
    #[test]
    fn https_unknown_params() {
        let mut m = response(7, "example.com.", RecordType::HTTPS);
        m.add_answer(https(
            "example.com.",
            60,
            1,
            ".",
            vec![
                (SvcParamKey::Port, SvcParamValue::Port(443)),
                (
                    SvcParamKey::Unknown(999),
                    SvcParamValue::Unknown(Unknown(vec![1, 2, 3])),
                ),
            ],
        ));
        let r =
            parse_response(&bytes(&m), 7, &name("example.com"), QueryType::Https).expect("valid");
        let Answer::Https { records, .. } = r.answer else {
            panic!("{r:?}")
        };
        assert_eq!(records[0].port, Some(443));

        let mut m = response(7, "example.com.", RecordType::HTTPS);
        m.add_answer(https(
            "example.com.",
            60,
            1,
            ".",
            vec![
                (
                    SvcParamKey::Mandatory,
                    SvcParamValue::Mandatory(Mandatory(vec![SvcParamKey::Unknown(999)])),
                ),
                (
                    SvcParamKey::Unknown(999),
                    SvcParamValue::Unknown(Unknown(vec![1])),
                ),
            ],
        ));
        let r =
            parse_response(&bytes(&m), 7, &name("example.com"), QueryType::Https).expect("valid");
        assert_eq!(r.answer, Answer::NoData { negative_ttl: 0 });
    }

    // RFC 9460 §2.2: out-of-order keys make the RRSet malformed.
    #[test]
    fn https_malformed_params() {
        let mut m = response(7, "example.com.", RecordType::HTTPS);
        m.add_answer(https(
            "example.com.",
            60,
            1,
            ".",
            vec![(SvcParamKey::Port, SvcParamValue::Port(443))],
        ));
        let mut raw = bytes(&m);
        // Append a second "port" key inside the RDATA: keys not increasing.
        let rdlen_at = raw.len() - (2 + 1 + 6) - 2;
        let rdlen = u16::from_be_bytes([raw[rdlen_at], raw[rdlen_at + 1]]);
        raw[rdlen_at..rdlen_at + 2].copy_from_slice(&(rdlen + 6).to_be_bytes());
        raw.extend_from_slice(&[0, 3, 0, 2, 0, 80]);
        let err =
            parse_response(&raw, 7, &name("example.com"), QueryType::Https).expect_err("malformed");
        assert!(
            matches!(
                err,
                DnsWireError::Malformed(MalformedError {
                    reason: MalformedReason::SvcParamOrder,
                    ..
                })
            ),
            "{err}"
        );
    }

    // RFC 1035 §4.1.4: forward/self pointers are rejected, never followed.
    #[test]
    fn bad_pointer_rejected() {
        let mut m = response(7, "www.example.com.", RecordType::A);
        m.add_answer(a("www.example.com.", 60, [192, 0, 2, 1]));
        let mut raw = bytes(&m);
        let owner = 12 + 17 + 4;
        assert_eq!(raw[owner] & 0xC0, 0xC0, "hickory compresses the owner");
        raw[owner] = 0xC0;
        raw[owner + 1] = owner as u8;
        assert!(matches!(
            parse_a_raw(&raw),
            Err(DnsWireError::Malformed(MalformedError {
                reason: MalformedReason::BadPointer,
                ..
            }))
        ));
        assert!(matches!(
            parse_a_raw(&raw[..5]),
            Err(DnsWireError::Malformed(_))
        ));
    }

    fn parse_a_raw(raw: &[u8]) -> Result<Response, DnsWireError> {
        parse_response(raw, 7, &name("www.example.com"), QueryType::A)
    }

    // RFC 1035 §4.2.2 framing.
    #[test]
    fn tcp_framing() {
        let mut out = Vec::new();
        frame_for_tcp(&[1, 2, 3], &mut out);
        frame_for_tcp(&[], &mut out);
        assert_eq!(out, [0, 3, 1, 2, 3, 0, 0]);
        let mut reader = TcpResponseReader::new();
        assert_eq!(reader.push(&out), 5);
        assert_eq!(reader.push(&out[5..]), 0, "holds one message at a time");
        assert_eq!(reader.message(), Some(&[1u8, 2, 3][..]));
        reader.discard_message();
        assert_eq!(reader.push(&out[5..]), 2);
        assert_eq!(reader.take_message(), Some(vec![]));
        assert_eq!(reader.take_message(), None);
    }

    fn valid_sample() -> Vec<u8> {
        let mut m = response(7, "www.example.com.", RecordType::A);
        m.add_answer(cname("www.example.com.", 60, "a.example.net."));
        m.add_answer(a("a.example.net.", 60, [192, 0, 2, 1]));
        m.add_answer(a("a.example.net.", 60, [192, 0, 2, 2]));
        m.add_authority(soa("example.net.", 60, 60));
        m.set_edns(Edns::new());
        bytes(&m)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        // Bad input is an error, never a panic (ARCHITECTURE.md "The core contract" rule 3).
        #[test]
        fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..600), id in any::<u16>()) {
            let _ = parse_response(&raw, id, &name("www.example.com"), QueryType::A);
            let _ = parse_response(&raw, id, &name("www.example.com"), QueryType::Https);
        }

        // Past the id/question checks: a matching header and question with
        // arbitrary counts, flags and records behind them.
        #[test]
        fn arbitrary_records_never_panic(
            flags in any::<[u8; 2]>(),
            counts in any::<[u16; 3]>(),
            tail in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let mut raw = valid_sample()[..12 + 17 + 4].to_vec();
            raw[2] = flags[0] | 0x80;
            raw[3] = flags[1];
            for (i, c) in counts.iter().enumerate() {
                raw[6 + 2 * i..8 + 2 * i].copy_from_slice(&c.to_be_bytes());
            }
            raw.extend_from_slice(&tail);
            for qtype in [QueryType::A, QueryType::Https] {
                raw[12 + 17..12 + 19].copy_from_slice(&qtype.code().to_be_bytes());
                let _ = parse_response(&raw, 7, &name("www.example.com"), qtype);
            }
        }

        #[test]
        fn mutated_response_never_panics(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut raw = valid_sample();
            for (at, byte) in edits {
                let i = at.index(raw.len());
                raw[i] = byte;
            }
            let keep = cut.index(raw.len() + 1);
            for qtype in [QueryType::A, QueryType::Aaaa, QueryType::Https] {
                let _ = parse_response(&raw, 7, &name("www.example.com"), qtype);
                let _ = parse_response(&raw[..keep], 7, &name("www.example.com"), qtype);
            }
        }

        // RFC 7766 §8: any chunking of a pipelined stream yields the same messages.
        #[test]
        fn tcp_reader_chunking(
            msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..5),
            cuts in proptest::collection::vec(1usize..64, 1..40),
        ) {
            let mut stream = Vec::new();
            for m in &msgs {
                frame_for_tcp(m, &mut stream);
            }
            let mut reader = TcpResponseReader::new();
            let mut got = Vec::new();
            let mut data = stream.as_slice();
            let mut cuts = cuts.iter().cycle();
            while !data.is_empty() {
                let n = (*cuts.next().unwrap_or(&1)).min(data.len());
                let mut chunk = &data[..n];
                data = &data[n..];
                while !chunk.is_empty() || reader.message().is_some() {
                    let used = reader.push(chunk);
                    chunk = &chunk[used..];
                    if let Some(m) = reader.take_message() {
                        got.push(m);
                    }
                }
            }
            prop_assert_eq!(got, msgs);
            prop_assert_eq!(reader.buffered(), 0);
        }
    }
}
