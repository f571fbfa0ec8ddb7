//! The race trace: every transition of one connection's establishment, with
//! its time (ARCHITECTURE.md "The core contract" rule 5), and its rendering as a text waterfall.
//!
//! Events are small `Copy` values so recording never allocates beyond the
//! trace's own vector, which is reserved once per connection. The same trace
//! feeds `EstablishmentError`, `tapscat --trace`, the simulator's waterfalls,
//! golden files and determinism hash.

use core::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::dns::wire::QueryType;
use crate::nat64::{Pref64, Pref64Source};
use crate::race::{AttemptDelay, DelaySource, rtt_prefix, rtt_prefix_len};
use crate::time::Instant;

/// Why an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureReason {
    /// The peer refused the connection (TCP RST to our SYN).
    Refused,
    /// The network or host is unreachable (ICMP, or no route).
    Unreachable,
    /// The kernel gave up: no answer to the SYNs.
    TimedOut,
    /// The connection was reset after it was set up.
    Reset,
    /// The path's interface went down or vanished.
    InterfaceDown,
    /// The whole establishment ran out of `connTimeout`.
    ConnTimeout,
    /// The adapter could not even open a socket (error code from the OS).
    SocketSetup(i32),
    /// Any other operating-system error code.
    Os(i32),
    /// The TLS handshake or session failed.
    Tls(TlsFailure),
    /// A framer rejected the byte stream or failed its own handshake.
    Framing(FramingFailure),
    /// The peer closed the connection before it was ready.
    PeerClosed,
    /// The application aborted the connection.
    LocalAbort,
}

/// Why TLS failed, in words a person can act on: each certificate failure
/// names what was wrong and what fixes it.
///
/// The details (names, dates) are kept inline ([`CertText`], seconds since
/// the Unix epoch) so a failure stays `Copy` and recording it in a trace
/// never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The certificate's validity period is over (RFC 5280 §4.1.2.5).
    /// The times are seconds since the Unix epoch, when known.
    CertificateExpired {
        /// The certificate's `notAfter`.
        not_after: Option<u64>,
        /// The time it was checked at.
        now: Option<u64>,
    },
    /// The certificate is not valid yet (RFC 5280 §4.1.2.5).
    CertificateNotYetValid {
        /// The certificate's `notBefore`.
        not_before: Option<u64>,
        /// The time it was checked at.
        now: Option<u64>,
    },
    /// The certificate is not for the name asked (RFC 9525 §6).
    NameMismatch {
        /// The name the connection asked for.
        expected: CertText,
        /// The names the certificate holds, quoted and comma-separated
        /// (empty when unknown).
        presented: CertText,
    },
    /// The chain does not lead to a trusted root.
    UnknownIssuer,
    /// The server's own certificate is a CA certificate (basicConstraints
    /// CA:TRUE, RFC 5280 §4.2.1.9) and is not itself a trusted root: it
    /// cannot be an end entity, and nothing trusted issued it.
    CaCertificateNotTrusted,
    /// The certificate was revoked.
    Revoked,
    /// A signature in the chain is invalid.
    BadSignature,
    /// The certificate is valid but its key matches no pin.
    PinMismatch,
    /// The certificate is otherwise unacceptable.
    CertificateInvalid,
    /// The peer presented no certificate where one is required.
    NoCertificate,
    /// No application protocol both sides support (ALPN, RFC 7301 §3.2):
    /// the server rejected every protocol the client offered, or (on the
    /// server) the client offered none the server accepts.
    NoApplicationProtocol {
        /// This side's list, comma-separated: what the client offered, or
        /// what the server accepts (empty when unknown).
        ours: CertText,
        /// This side is the server.
        server: bool,
    },
    /// The peer sent a fatal alert with this code (RFC 8446 §6).
    AlertReceived(u8),
    /// The peer broke the protocol (or sent garbage).
    ProtocolError,
    /// No common protocol version or cipher suite.
    Incompatible,
    /// The server name cannot go into SNI.
    BadServerName,
    /// The handshake failed for another reason.
    HandshakeFailed,
}

/// What one TLS handshake negotiated (RFC 8446 §4), for the trace: kept
/// inline so trace events stay `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TlsDetails {
    /// The protocol version, as rustls names it (`TLSv1_3`).
    pub version: CertText,
    /// The cipher suite, by its IANA name (`TLS13_AES_128_GCM_SHA256`).
    pub cipher_suite: CertText,
    /// The ALPN protocol agreed (RFC 7301), empty when none.
    pub alpn: CertText,
    /// The peer certificate's subject common name (RFC 5280 §4.1.2.6),
    /// empty when it has none or sent no certificate.
    pub peer_subject: CertText,
    /// The peer certificate's subjectAltName entries, quoted and
    /// comma-separated; empty when the peer sent no certificate.
    pub peer_names: CertText,
    /// The session resumed an earlier one (RFC 8446 §2.2).
    pub resumed: bool,
    /// The server accepted the client's 0-RTT data (RFC 8446 §2.3).
    pub early_data_accepted: bool,
}

impl fmt::Display for TlsDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}", self.version, self.cipher_suite)?;
        match self.alpn.as_str() {
            "" => f.write_str(", no ALPN")?,
            alpn => write!(f, ", ALPN {alpn}")?,
        }
        match (self.peer_subject.as_str(), self.peer_names.as_str()) {
            ("", "") => f.write_str(", no peer certificate")?,
            ("", names) => write!(f, ", peer certificate for {names}")?,
            (cn, "") => write!(f, ", peer certificate CN={cn}")?,
            (cn, names) => write!(f, ", peer certificate CN={cn} for {names}")?,
        }
        f.write_str(if self.resumed {
            ", resumed"
        } else {
            ", full handshake"
        })?;
        if self.early_data_accepted {
            f.write_str(", early data accepted")?;
        }
        Ok(())
    }
}

/// A short text kept inline, so the failures that carry one stay `Copy`.
/// Text longer than its capacity is cut at a character boundary and ends
/// in `…`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertText {
    len: u8,
    bytes: [u8; CertText::CAPACITY],
}

impl CertText {
    /// The most bytes a `CertText` holds.
    pub const CAPACITY: usize = 55;

    /// `text`, cut to fit.
    pub fn new(text: &str) -> CertText {
        let mut out = CertText {
            len: 0,
            bytes: [0; CertText::CAPACITY],
        };
        let ellipsis = "…";
        let fits = if text.len() <= Self::CAPACITY {
            text
        } else {
            let mut end = Self::CAPACITY - ellipsis.len();
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            &text[..end]
        };
        out.bytes[..fits.len()].copy_from_slice(fits.as_bytes());
        out.len = fits.len() as u8;
        if fits.len() < text.len() {
            let at = fits.len();
            out.bytes[at..at + ellipsis.len()].copy_from_slice(ellipsis.as_bytes());
            out.len += ellipsis.len() as u8;
        }
        out
    }

    /// Text written with `write!` (no allocation), cut to fit like
    /// [`CertText::new`].
    pub fn from_fmt(args: fmt::Arguments<'_>) -> CertText {
        let mut w = CertWriter {
            text: CertText::new(""),
            cut: false,
        };
        let _ = fmt::Write::write_fmt(&mut w, args);
        w.text
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only whole characters are ever copied in (see `new`).
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

/// Appends to a [`CertText`]; once something does not fit, the text ends
/// in `…` and the rest is dropped.
struct CertWriter {
    text: CertText,
    cut: bool,
}

impl fmt::Write for CertWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.cut {
            return Ok(());
        }
        let len = usize::from(self.text.len);
        if len + s.len() <= CertText::CAPACITY {
            self.text.bytes[len..len + s.len()].copy_from_slice(s.as_bytes());
            self.text.len += s.len() as u8;
        } else {
            // Reuse `new`'s cutting on what is there plus this piece.
            let mut joined = [0u8; 2 * CertText::CAPACITY];
            let room = (2 * CertText::CAPACITY - len).min(s.len());
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            joined[..len].copy_from_slice(&self.text.bytes[..len]);
            joined[len..len + end].copy_from_slice(&s.as_bytes()[..end]);
            let whole = core::str::from_utf8(&joined[..len + end]).unwrap_or("");
            // Longer than the capacity, so `new` ends it in `…`.
            self.text = CertText::new(whole);
            self.cut = true;
        }
        Ok(())
    }
}

impl fmt::Debug for CertText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for CertText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of a TLS alert (RFC 8446 §6.2) and, for the ones a person can
/// act on, what it means.
fn alert_meaning(code: u8) -> Option<&'static str> {
    Some(match code {
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure: no acceptable set of parameters",
        42 => "bad_certificate: the peer refused our certificate",
        43 => "unsupported_certificate: the peer refused our certificate's type",
        44 => "certificate_revoked: the peer says our certificate is revoked",
        45 => "certificate_expired: the peer says our certificate expired",
        46 => "certificate_unknown: the peer refused our certificate",
        48 => "unknown_ca: the peer does not trust our certificate's issuer",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version: no TLS version both sides support",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name: the peer serves no such name (SNI)",
        116 => "certificate_required: the peer requires a client certificate",
        120 => "no_application_protocol: ALPN mismatch",
        _ => return None,
    })
}

/// Seconds since the Unix epoch as a UTC date and time
/// (`2026-11-01 12:00:00 UTC`), by the days-to-civil conversion of the
/// proleptic Gregorian calendar.
struct UtcTime(u64);

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        // Howard Hinnant's civil_from_days, for days since 1970-01-01.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFailure::CertificateExpired { not_after, now } => {
                f.write_str("the certificate expired")?;
                if let Some(t) = not_after {
                    write!(f, " on {}", UtcTime(*t))?;
                }
                if let Some(t) = now {
                    write!(f, " (now {})", UtcTime(*t))?;
                }
                f.write_str("; the server needs a renewed certificate, or check this machine's clock")
            }
            TlsFailure::CertificateNotYetValid { not_before, now } => {
                f.write_str("the certificate is not valid yet")?;
                if let Some(t) = not_before {
                    write!(f, ": valid from {}", UtcTime(*t))?;
                }
                if let Some(t) = now {
                    write!(f, " (now {})", UtcTime(*t))?;
                }
                f.write_str("; check this machine's clock")
            }
            TlsFailure::NameMismatch {
                expected,
                presented,
            } => {
                if presented.as_str().is_empty() {
                    f.write_str("the certificate holds no name usable for this server")?;
                } else {
                    write!(f, "the certificate is for {presented}")?;
                }
                write!(
                    f,
                    ", not `{expected}`; connect by a name the certificate holds, or reissue it with `{expected}` in subjectAltName"
                )
            }
            TlsFailure::UnknownIssuer => f.write_str(
                "unknown issuer: the chain does not lead to a trusted root; pass the issuing CA with --ca (SecurityParameters trusted roots)",
            ),
            TlsFailure::CaCertificateNotTrusted => f.write_str(
                "the server's certificate is a CA certificate (basicConstraints CA:TRUE) and is not in the trusted roots (unknown issuer); to trust a self-signed server, pass that very certificate with --ca",
            ),
            TlsFailure::Revoked => f.write_str("certificate revoked"),
            TlsFailure::BadSignature => f.write_str("bad certificate signature"),
            TlsFailure::PinMismatch => f.write_str("certificate key matches no pin"),
            TlsFailure::CertificateInvalid => f.write_str("certificate invalid"),
            TlsFailure::NoCertificate => f.write_str("peer presented no certificate"),
            TlsFailure::NoApplicationProtocol { ours, server: false } => write!(
                f,
                "ALPN mismatch: the server rejected the offered ALPN protocols ({ours}); offer one the server accepts (--alpn)"
            ),
            TlsFailure::NoApplicationProtocol { ours, server: true } => write!(
                f,
                "ALPN mismatch: the client offered none of the ALPN protocols this server accepts ({ours})"
            ),
            TlsFailure::AlertReceived(code) => {
                write!(f, "peer sent TLS alert {code}")?;
                match alert_meaning(*code) {
                    Some(meaning) => write!(f, " ({meaning})"),
                    None => Ok(()),
                }
            }
            TlsFailure::ProtocolError => f.write_str("TLS protocol error"),
            TlsFailure::Incompatible => f.write_str("no common TLS version or cipher suite"),
            TlsFailure::BadServerName => f.write_str("server name unusable for SNI"),
            TlsFailure::HandshakeFailed => f.write_str("TLS handshake failed"),
        }
    }
}

impl std::error::Error for TlsFailure {}

/// Why a framer failed (RFC 9622 §9.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FramingFailure {
    /// A frame announced or reached more bytes than the limit.
    TooLarge {
        /// Its size, as far as known.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The bytes are not valid for this framing.
    Malformed(&'static str),
    /// The framer's own handshake failed.
    Handshake(&'static str),
}

impl fmt::Display for FramingFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingFailure::TooLarge { size, limit } => {
                write!(f, "frame of {size} bytes exceeds the {limit}-byte limit")
            }
            FramingFailure::Malformed(why) => write!(f, "malformed frame: {why}"),
            FramingFailure::Handshake(why) => write!(f, "framer handshake failed: {why}"),
        }
    }
}

impl std::error::Error for FramingFailure {}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::Refused => f.write_str("connection refused"),
            FailureReason::Unreachable => f.write_str("network unreachable"),
            FailureReason::TimedOut => f.write_str("timed out"),
            FailureReason::Reset => f.write_str("connection reset"),
            FailureReason::InterfaceDown => f.write_str("interface went down"),
            FailureReason::ConnTimeout => f.write_str("connTimeout expired"),
            FailureReason::SocketSetup(e) => write!(f, "could not open a socket (os error {e})"),
            FailureReason::Os(e) => write!(f, "os error {e}"),
            FailureReason::Tls(t) => write!(f, "TLS: {t}"),
            FailureReason::Framing(x) => write!(f, "framing: {x}"),
            FailureReason::PeerClosed => f.write_str("peer closed the connection"),
            FailureReason::LocalAbort => f.write_str("local abort"),
        }
    }
}

impl std::error::Error for FailureReason {}

/// What a DNS question came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DnsOutcome {
    /// Usable records: this many addresses or service records.
    Positive {
        /// Number of addresses or HTTPS records.
        count: u16,
        /// TTL in seconds.
        ttl: u32,
    },
    /// The name exists but has no records of this type (RFC 2308 §2.2).
    NoData,
    /// The name does not exist (RFC 2308 §2.1).
    NxDomain,
    /// The server failed (SERVFAIL).
    ServFail,
    /// The server refused (REFUSED).
    Refused,
    /// Another error code.
    Error(u16),
    /// Every server and retry timed out.
    Timeout,
    /// The answer could not be parsed.
    Malformed,
    /// The answer was cut short; retrying over TCP.
    Truncated,
    /// No DNS server is configured.
    NoServers,
    /// The adapter could not reach the server (send failed, TCP refused).
    TransportFailed,
    /// The secure random source refused to give a query id, so no query
    /// was sent (RFC 5452 §9.2: never a predictable id instead).
    NoRandomness,
    /// The answer's CNAME chain is longer than
    /// [`MAX_CNAME_DEPTH`](crate::dns::wire::MAX_CNAME_DEPTH) links.
    CnameChainTooDeep,
    /// The answer's CNAME chain loops.
    CnameLoop,
    /// The HTTPS AliasMode chain (RFC 9460 §3) comes back to a name it
    /// already asked about.
    AliasLoop,
    /// The HTTPS AliasMode chain is longer than
    /// [`MAX_ALIAS_HOPS`](crate::dns::MAX_ALIAS_HOPS) hops.
    AliasChainTooLong,
}

impl fmt::Display for DnsOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsOutcome::Positive { count, ttl } => write!(f, "{count} record(s), ttl {ttl}s"),
            DnsOutcome::NoData => f.write_str("no data"),
            DnsOutcome::NxDomain => f.write_str("NXDOMAIN"),
            DnsOutcome::ServFail => f.write_str("SERVFAIL"),
            DnsOutcome::Refused => f.write_str("REFUSED"),
            DnsOutcome::Error(rcode) => write!(f, "rcode {rcode}"),
            DnsOutcome::Timeout => f.write_str("timed out"),
            DnsOutcome::Malformed => f.write_str("malformed answer"),
            DnsOutcome::Truncated => f.write_str("truncated, retrying over TCP"),
            DnsOutcome::NoServers => f.write_str("no DNS server configured"),
            DnsOutcome::TransportFailed => f.write_str("could not reach the server"),
            DnsOutcome::NoRandomness => {
                f.write_str("no query sent: the system's secure random source failed")
            }
            DnsOutcome::CnameChainTooDeep => write!(
                f,
                "CNAME chain longer than {} links",
                crate::dns::wire::MAX_CNAME_DEPTH
            ),
            DnsOutcome::CnameLoop => f.write_str("CNAME chain loops"),
            DnsOutcome::AliasLoop => f.write_str("HTTPS AliasMode chain loops"),
            DnsOutcome::AliasChainTooLong => write!(
                f,
                "HTTPS AliasMode chain longer than {} hops",
                crate::dns::MAX_ALIAS_HOPS
            ),
        }
    }
}

/// Where an answer came from without a query on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LocalSource {
    /// The TTL cache.
    Cache,
    /// The hosts file.
    HostsFile,
    /// RFC 6761 §6.3 `localhost`.
    Localhost,
    /// The endpoint was an IP literal.
    Literal,
}

/// Why a datagram was not accepted as a DNS answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// It came from an address other than the server asked.
    WrongSource,
    /// Its id was not the query's.
    WrongId,
    /// Its question was not the one asked.
    WrongQuestion,
    /// It was not a response or could not be parsed.
    Malformed,
}

/// Why a lookup asks about another name ([`TraceKind::DnsName`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NameStep {
    /// Name `index` (from 1) of the `of` names resolv.conf(5)'s search
    /// list gives.
    Search {
        /// Its position, from 1.
        index: u8,
        /// How many names the search list gives.
        of: u8,
    },
    /// HTTPS AliasMode hop `hop` (from 1), RFC 9460 §3.
    Alias {
        /// The hop number.
        hop: u8,
    },
}

/// One recorded transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TraceKind {
    /// A DNS query went out.
    DnsQuery {
        /// Record type.
        qtype: QueryType,
        /// Server asked.
        server: SocketAddr,
        /// Over TCP (after truncation).
        tcp: bool,
        /// A retransmission to the same server.
        retransmit: bool,
    },
    /// The question was already being asked for another connection: this
    /// one waits for the same transaction instead of sending a query.
    DnsJoined {
        /// Record type.
        qtype: QueryType,
        /// The server the transaction is asking.
        server: SocketAddr,
    },
    /// A DNS question was settled.
    DnsAnswer {
        /// Record type.
        qtype: QueryType,
        /// Its outcome.
        outcome: DnsOutcome,
        /// Answered locally, without a query, and from where.
        local: Option<LocalSource>,
    },
    /// A server's answer was unusable and the query is asked again.
    DnsRetry {
        /// Record type.
        qtype: QueryType,
        /// What was wrong with the last try.
        outcome: DnsOutcome,
    },
    /// A datagram claiming to answer a query was dropped.
    DnsDropped {
        /// Record type of the query it claimed to answer.
        qtype: QueryType,
        /// Why.
        reason: DropReason,
    },
    /// The DNS questions that follow ask about another name: the next one
    /// of the resolv.conf(5) search list, or an HTTPS AliasMode target
    /// (RFC 9460 §3). Not recorded for a lookup of one name.
    DnsName {
        /// The name, cut to fit.
        name: CertText,
        /// Why it is asked.
        step: NameStep,
    },
    /// The first positive answer arrived without the full HEv3 start
    /// condition: waiting up to the Resolution Delay.
    ResolutionDelayStarted,
    /// Racing began with this many candidates known.
    RacingStarted {
        /// Known candidates.
        candidates: u16,
    },
    /// A path branch (interface) became eligible.
    PathStarted {
        /// OS interface index; `None` = system default path.
        interface: Option<u32>,
    },
    /// A connection attempt started.
    AttemptStarted {
        /// Attempt number within this connection, from 1.
        attempt: u16,
        /// Where its socket connects.
        remote: SocketAddr,
        /// Over which interface (`None`: the system default path).
        interface: Option<u32>,
        /// HEv3 §8.3: `remote` is this IPv4 destination synthesized with
        /// the PREF64, because the path has no IPv4 route.
        nat64: Option<Ipv4Addr>,
    },
    /// RFC 7050 §3: the AAAA query for `ipv4only.arpa` that discovers the
    /// network's NAT64 prefix went out, started by this connection (others
    /// waiting for it record only its outcome, [`TraceKind::Nat64Prefix`]).
    Nat64Query {
        /// Server asked.
        server: SocketAddr,
    },
    /// HEv3 §8.1: what the race knows of the network's NAT64 prefix,
    /// recorded when a connection on an IPv6-only path starts with one
    /// known and when a discovery it waited for settles.
    Nat64Prefix {
        /// The PREF64 (`None`: discovery found none).
        prefix: Option<Pref64>,
        /// Where it came from.
        source: Pref64Source,
    },
    /// HEv3 §6: the Next Connection Attempt Timer after this attempt was
    /// set from RTT data, not the configured delay (recorded only then,
    /// right after its `AttemptStarted`).
    AttemptDelay {
        /// Attempt number.
        attempt: u16,
        /// The delay, its RTO and where the RTT came from.
        delay: AttemptDelay,
    },
    /// An attempt's transport (TCP) is up; its upper layers are still
    /// handshaking.
    AttemptTransportUp {
        /// Attempt number.
        attempt: u16,
    },
    /// An attempt's TLS handshake finished: what it negotiated. Recorded
    /// just before the attempt's `AttemptConnected` (or an accepted
    /// connection's `Winner`).
    TlsEstablished {
        /// Attempt number; what it negotiated is
        /// [`Trace::tls_details`]`(attempt)`.
        attempt: u16,
    },
    /// An attempt's whole stack is up.
    AttemptConnected {
        /// Attempt number.
        attempt: u16,
    },
    /// An attempt failed.
    AttemptFailed {
        /// Attempt number.
        attempt: u16,
        /// Why.
        reason: FailureReason,
    },
    /// An attempt was cancelled because another won or the race ended.
    AttemptCancelled {
        /// Attempt number.
        attempt: u16,
    },
    /// The race has a winner: the connection is ready.
    Winner {
        /// Attempt number.
        attempt: u16,
    },
    /// Establishment failed.
    EstablishmentFailed,
    /// The application closed the connection.
    Closed,
}

/// "race     next attempt in 120.0 ms: RTO 120.0 ms from 3 RTT samples
/// to 2001:db8::/64 on wlan0", with the bound that changed it.
fn write_attempt_delay(
    out: &mut dyn fmt::Write,
    attempt: u16,
    delay: AttemptDelay,
    started: Option<(IpAddr, Option<u32>)>,
    iface: &dyn Fn(Option<u32>) -> String,
) -> fmt::Result {
    let ms = |us: u32| f64::from(us) / 1000.0;
    write!(
        out,
        "race     after #{attempt}: next attempt in {:.1} ms",
        ms(delay.delay_us)
    )?;
    let on = started.map_or_else(String::new, |(_, i)| format!(" on {}", iface(i)));
    let prefix = started.map_or_else(
        || "its prefix".to_string(),
        |(ip, _)| format!("{}/{}", rtt_prefix(ip), rtt_prefix_len(ip)),
    );
    let plural = |n: u16| if n == 1 { "" } else { "s" };
    match delay.source {
        DelaySource::Configured => return writeln!(out, " (configured)"),
        DelaySource::Prefix { samples } => write!(
            out,
            " (RTO {:.1} ms from {samples} RTT sample{} to {prefix}{on}",
            ms(delay.rto_us),
            plural(samples)
        )?,
        DelaySource::Kernel => write!(
            out,
            " (RTO {:.1} ms from the kernel's TCP metrics{}",
            ms(delay.rto_us),
            started.map_or_else(String::new, |(ip, _)| format!(" for {ip}"))
        )?,
        DelaySource::Path { samples } => write!(
            out,
            " (RTO {:.1} ms from {samples} RTT sample{}{on}",
            ms(delay.rto_us),
            plural(samples)
        )?,
        DelaySource::KernelPrefix { samples } => write!(
            out,
            " (RTO {:.1} ms from the kernel's TCP metrics for {samples} destination{} in {prefix}",
            ms(delay.rto_us),
            plural(samples)
        )?,
        DelaySource::KernelPath { samples } => write!(
            out,
            " (RTO {:.1} ms from the kernel's TCP metrics for {samples} destination{}{on}",
            ms(delay.rto_us),
            plural(samples)
        )?,
    }
    match delay.delay_us.cmp(&delay.rto_us) {
        core::cmp::Ordering::Greater => writeln!(out, ", raised to the minimum)"),
        core::cmp::Ordering::Less => writeln!(out, ", capped at the configured delay)"),
        core::cmp::Ordering::Equal => writeln!(out, ")"),
    }
}

/// One timestamped transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceEvent {
    /// When.
    pub at: Instant,
    /// What.
    pub kind: TraceKind,
}

/// The recorded transitions of one connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Trace {
    /// When `initiate` was called; waterfall times are relative to it.
    pub start: Instant,
    /// The events, in order.
    pub events: Vec<TraceEvent>,
    /// What each TLS handshake negotiated, by attempt: beside the events,
    /// not in them, since the details are ten times the size of any other
    /// record and every connection keeps its events.
    pub tls: Vec<(u16, TlsDetails)>,
}

impl Trace {
    /// Events a typical dual-stack race records; reserved up front so the
    /// hot path does not reallocate.
    pub const TYPICAL_EVENTS: usize = 24;

    /// An empty trace starting at `start`.
    pub fn new(start: Instant) -> Self {
        Trace {
            start,
            events: Vec::with_capacity(Self::TYPICAL_EVENTS),
            tls: Vec::new(),
        }
    }

    /// Records `kind` at `at`.
    pub fn record(&mut self, at: Instant, kind: TraceKind) {
        self.events.push(TraceEvent { at, kind });
    }

    /// Records that `attempt`'s TLS handshake finished at `at`, negotiating
    /// `details`.
    pub fn record_tls(&mut self, at: Instant, attempt: u16, details: TlsDetails) {
        self.tls.push((attempt, details));
        self.record(at, TraceKind::TlsEstablished { attempt });
    }

    /// What `attempt`'s TLS handshake negotiated, once it finished.
    pub fn tls_details(&self, attempt: u16) -> Option<&TlsDetails> {
        self.tls.iter().find(|(a, _)| *a == attempt).map(|(_, d)| d)
    }

    /// Renders the trace as a text waterfall: an event log, then one bar per
    /// attempt. `interface_name` turns an interface index into its name.
    pub fn waterfall(&self, host: &str, interface_name: &dyn Fn(u32) -> Option<String>) -> String {
        let mut out = String::new();
        let iface = |i: Option<u32>| match i {
            None => "default".to_string(),
            Some(i) => interface_name(i).unwrap_or_else(|| format!("if#{i}")),
        };
        let _ = writeln!(out, "race to {host} (times in ms from initiate)");
        let _ = self.write_log(&mut out, &iface);
        self.render_bars(&mut out, &iface);
        out
    }

    /// The event log, one line per record: the one rendering behind both
    /// [`Trace::waterfall`] and `Display`.
    fn write_log(
        &self,
        out: &mut dyn fmt::Write,
        iface: &dyn Fn(Option<u32>) -> String,
    ) -> fmt::Result {
        for e in &self.events {
            write!(out, "{:>9.3}  ", e.at.millis_since(self.start))?;
            match e.kind {
                TraceKind::DnsQuery {
                    qtype,
                    server,
                    tcp,
                    retransmit,
                } => writeln!(
                    out,
                    "dns      {:<5} query to {server}{}{}",
                    qtype.name(),
                    if tcp { " over TCP" } else { "" },
                    if retransmit { " (retransmit)" } else { "" }
                ),
                TraceKind::DnsAnswer {
                    qtype,
                    outcome,
                    local,
                } => writeln!(
                    out,
                    "dns      {:<5} {outcome}{}",
                    qtype.name(),
                    match local {
                        None => "",
                        Some(LocalSource::Cache) => " (cache)",
                        Some(LocalSource::HostsFile) => " (hosts file)",
                        Some(LocalSource::Localhost) => " (localhost, RFC 6761)",
                        Some(LocalSource::Literal) => " (address literal)",
                    }
                ),
                TraceKind::DnsRetry { qtype, outcome } => {
                    writeln!(out, "dns      {:<5} {outcome}: asking again", qtype.name())
                }
                TraceKind::DnsDropped { qtype, reason } => {
                    writeln!(
                        out,
                        "dns      {:<5} dropped a datagram: {reason:?}",
                        qtype.name()
                    )
                }
                TraceKind::DnsJoined { qtype, server } => writeln!(
                    out,
                    "dns      {:<5} joined the query to {server} another connection sent",
                    qtype.name()
                ),
                TraceKind::DnsName { name, step } => match step {
                    NameStep::Search { index, of } => writeln!(
                        out,
                        "dns      asking about {} (search list, name {index} of {of})",
                        name.as_str()
                    ),
                    NameStep::Alias { hop } => writeln!(
                        out,
                        "dns      HTTPS AliasMode hop {hop}: asking about {}",
                        name.as_str()
                    ),
                },
                TraceKind::ResolutionDelayStarted => {
                    writeln!(out, "race     waiting for the Resolution Delay")
                }
                TraceKind::RacingStarted { candidates } => {
                    writeln!(out, "race     started with {candidates} candidate(s)")
                }
                TraceKind::PathStarted { interface } => {
                    writeln!(out, "race     path {} eligible", iface(interface))
                }
                TraceKind::AttemptStarted {
                    attempt,
                    remote,
                    interface,
                    nat64,
                } => {
                    writeln!(
                        out,
                        "attempt  #{attempt} {} via {} started",
                        AttemptAddr { remote, nat64 },
                        iface(interface)
                    )
                }
                TraceKind::AttemptDelay { attempt, delay } => {
                    let started = self.events.iter().find_map(|e| match e.kind {
                        TraceKind::AttemptStarted {
                            attempt: a,
                            remote,
                            interface,
                            ..
                        } if a == attempt => Some((remote.ip(), interface)),
                        _ => None,
                    });
                    write_attempt_delay(out, attempt, delay, started, iface)
                }
                TraceKind::Nat64Query { server } => {
                    writeln!(out, "nat64    ipv4only.arpa AAAA query to {server}")
                }
                TraceKind::Nat64Prefix { prefix, source } => match prefix {
                    Some(p) => writeln!(out, "nat64    PREF64 {p} ({source})"),
                    None => writeln!(
                        out,
                        "nat64    no PREF64: ipv4only.arpa has no synthesized AAAA (RFC 7050)"
                    ),
                },
                TraceKind::AttemptTransportUp { attempt } => {
                    writeln!(out, "attempt  #{attempt} TCP up")
                }
                TraceKind::TlsEstablished { attempt } => match self.tls_details(attempt) {
                    Some(details) => writeln!(out, "attempt  #{attempt} TLS: {details}"),
                    None => writeln!(out, "attempt  #{attempt} TLS established"),
                },
                TraceKind::AttemptConnected { attempt } => {
                    writeln!(out, "attempt  #{attempt} connected")
                }
                TraceKind::AttemptFailed { attempt, reason } => {
                    writeln!(out, "attempt  #{attempt} failed: {reason}")
                }
                TraceKind::AttemptCancelled { attempt } => {
                    writeln!(out, "attempt  #{attempt} cancelled")
                }
                TraceKind::Winner { attempt } => writeln!(out, "race     #{attempt} won: ready"),
                TraceKind::EstablishmentFailed => {
                    writeln!(out, "race     failed: no attempt succeeded")
                }
                TraceKind::Closed => writeln!(out, "conn     closed"),
            }?;
        }
        Ok(())
    }

    fn render_bars(&self, out: &mut String, iface: &dyn Fn(Option<u32>) -> String) {
        const WIDTH: usize = 48;
        let end = self.events.last().map_or(self.start, |e| e.at);
        let span = end.millis_since(self.start).max(1.0);
        let col =
            |t: Instant| ((t.millis_since(self.start) / span) * WIDTH as f64).round() as usize;
        let _ = writeln!(
            out,
            "\n{:<36} 0ms{:>width$}",
            "",
            format!("{span:.0}ms"),
            width = WIDTH - 1
        );
        // DNS bars: from the first query of a type to its settled answer
        // (with a search list, the answer for the last name asked).
        let last_name = self
            .events
            .iter()
            .rposition(|e| {
                matches!(
                    e.kind,
                    TraceKind::DnsName {
                        step: NameStep::Search { .. },
                        ..
                    }
                )
            })
            .unwrap_or(0);
        for qtype in [QueryType::Https, QueryType::Aaaa, QueryType::A] {
            let sent = self.events.iter().find_map(|e| match e.kind {
                TraceKind::DnsQuery { qtype: q, .. } | TraceKind::DnsJoined { qtype: q, .. }
                    if q == qtype =>
                {
                    Some(e.at)
                }
                _ => None,
            });
            let answer = self.events[last_name..].iter().find_map(|e| match e.kind {
                TraceKind::DnsAnswer {
                    qtype: q, outcome, ..
                } if q == qtype => Some((e.at, outcome)),
                _ => None,
            });
            if sent.is_none() && answer.is_none() {
                continue;
            }
            let from = sent.or(answer.map(|a| a.0)).unwrap_or(self.start);
            let (to, label) = match answer {
                Some((t, o)) => (t, o.to_string()),
                None => (end, "unanswered".to_string()),
            };
            let bar = bar(col(from), col(to), WIDTH, '-', '|');
            let _ = writeln!(out, "  dns {:<31} [{bar}] {label}", qtype.name());
        }
        for e in &self.events {
            let TraceKind::AttemptStarted {
                attempt,
                remote,
                interface,
                nat64,
            } = e.kind
            else {
                continue;
            };
            let ending = self.events.iter().find_map(|x| match x.kind {
                TraceKind::Winner { attempt: a } if a == attempt => {
                    Some((x.at, '*', "won".to_string()))
                }
                TraceKind::AttemptFailed { attempt: a, reason } if a == attempt => {
                    Some((x.at, 'x', format!("failed: {reason}")))
                }
                TraceKind::AttemptCancelled { attempt: a } if a == attempt => {
                    Some((x.at, '/', "cancelled".into()))
                }
                _ => None,
            });
            let (to, mark, label) = ending.unwrap_or((end, '>', "running".into()));
            let name = format!(
                "#{attempt} {} {}",
                AttemptAddr { remote, nat64 },
                iface(interface)
            );
            let bar = bar(col(e.at), col(to), WIDTH, '=', mark);
            let _ = writeln!(
                out,
                "  {name:<34} [{bar}] {label} ({:.1}-{:.1}ms)",
                e.at.millis_since(self.start),
                to.millis_since(self.start)
            );
        }
    }
}

/// The event log, one line per record, times in ms from initiate: the
/// same lines as [`Trace::waterfall`]'s log (which also names interfaces
/// and draws the bars). Interfaces show as `if#N`; the trace holds indexes
/// only.
impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_log(f, &|i| match i {
            None => "default".to_string(),
            Some(i) => format!("if#{i}"),
        })
    }
}

/// An attempt's destination as people read it: the address, or for a
/// NAT64 destination `192.0.2.1:443 via [64:ff9b::c000:201]:443 (NAT64)`,
/// the IPv4 address asked for first and the synthesized one connected to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptAddr {
    /// Where the socket connects.
    pub remote: SocketAddr,
    /// The IPv4 address `remote` was synthesized from (HEv3 §8.3).
    pub nat64: Option<Ipv4Addr>,
}

impl fmt::Display for AttemptAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.nat64 {
            Some(v4) => write!(f, "{v4}:{} via {} (NAT64)", self.remote.port(), self.remote),
            None => write!(f, "{}", self.remote),
        }
    }
}

fn bar(from: usize, to: usize, width: usize, fill: char, mark: char) -> String {
    let from = from.min(width);
    let to = to.clamp(from, width);
    let mut s = String::with_capacity(width + 1);
    for i in 0..=width {
        s.push(if i < from {
            ' '
        } else if i < to {
            fill
        } else if i == to {
            mark
        } else {
            ' '
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Display` is the waterfall's event log: one line per record, the
    /// same text, with interfaces as `if#N`.
    /// The HEv3 §6 delay record fits in the events as they were: a
    /// connection reserves `TYPICAL_EVENTS` of them.
    #[test]
    fn events_stay_136_bytes() {
        assert_eq!(core::mem::size_of::<TraceEvent>(), 136);
        assert!(core::mem::size_of::<AttemptDelay>() <= 12);
    }

    #[test]
    fn display_is_the_waterfall_log() {
        let mut trace = Trace::new(Instant::from_nanos(1_000_000));
        trace.record(
            Instant::from_nanos(1_500_000),
            TraceKind::AttemptStarted {
                attempt: 1,
                remote: "192.0.2.1:80".parse().unwrap(),
                interface: Some(3),
                nat64: None,
            },
        );
        trace.record(
            Instant::from_nanos(3_000_000),
            TraceKind::AttemptFailed {
                attempt: 1,
                reason: FailureReason::Refused,
            },
        );
        let text = trace.to_string();
        assert_eq!(
            text,
            "    0.500  attempt  #1 192.0.2.1:80 via if#3 started\n    2.000  attempt  #1 failed: connection refused\n"
        );
        assert!(trace.waterfall("x", &|_| None).contains(&text));
    }

    /// Events stay small: every connection keeps all of its own.
    #[test]
    fn trace_event_stays_small() {
        assert!(
            core::mem::size_of::<TraceEvent>() <= 136,
            "{}",
            core::mem::size_of::<TraceEvent>()
        );
    }

    /// HEv3 §8.3: a synthesized attempt names both addresses.
    #[test]
    fn nat64_attempts_name_both_addresses() {
        let mut trace = Trace::new(Instant::ZERO);
        trace.record(
            Instant::ZERO,
            TraceKind::Nat64Prefix {
                prefix: Some(Pref64::WELL_KNOWN),
                source: Pref64Source::Discovered,
            },
        );
        trace.record(
            Instant::from_nanos(2_000_000),
            TraceKind::AttemptStarted {
                attempt: 1,
                remote: "[64:ff9b::c000:201]:443".parse().unwrap(),
                interface: Some(2),
                nat64: Some(Ipv4Addr::new(192, 0, 2, 1)),
            },
        );
        assert_eq!(
            trace.to_string(),
            "    0.000  nat64    PREF64 64:ff9b::/96 (ipv4only.arpa, RFC 7050)\n    2.000  attempt  #1 192.0.2.1:443 via [64:ff9b::c000:201]:443 (NAT64) via if#2 started\n"
        );
        assert!(
            trace
                .waterfall("x", &|_| None)
                .contains("#1 192.0.2.1:443 via [64:ff9b::c000:201]:443 (NAT64) if#2")
        );
    }

    #[test]
    fn cert_text_cuts_long_text_at_a_character_boundary() {
        assert_eq!(CertText::new("`a.example`").as_str(), "`a.example`");
        // Multi-byte characters straddling the cut are never split.
        let long = "é".repeat(CertText::CAPACITY);
        let cut = CertText::new(&long);
        assert!(cut.as_str().ends_with('…'), "{cut}");
        assert!(cut.as_str().len() <= CertText::CAPACITY);
        assert!(cut.as_str().starts_with("éé"));
    }

    #[test]
    fn utc_time_renders_calendar_dates() {
        assert_eq!(UtcTime(0).to_string(), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 (a leap day in a century leap year) 12:34:56.
        assert_eq!(UtcTime(951_827_696).to_string(), "2000-02-29 12:34:56 UTC");
        assert_eq!(
            UtcTime(1_796_083_200).to_string(),
            "2026-12-01 00:00:00 UTC"
        );
    }
}
