//! Local and remote endpoints (RFC 9622 §6.1 "Specifying Endpoints").
//!
//! An endpoint names one side of a connection through a handful of
//! identifiers: a host (a DNS host name, an IP address or a DNS-SD service
//! instance), a port, a service name that maps to a port, an interface and a
//! protocol scope. RFC 9622 §6.1 forbids two identifiers of one type, so each
//! is a single `Option` here; a host name, an address and a DNS-SD name share
//! the one [`Host`] slot, and setting one replaces the other.
//!
//! Host names follow RFC 1123 §2.1 / RFC 1035 §2.3.1 ("LDH" labels),
//! normalised to lowercase, plus underscore-led labels so that DNS-SD names
//! such as `_http._tcp.example.com` fit. DNS-SD names follow RFC 6763 §4.1:
//! `<Instance>.<_service>.<_tcp|_udp>.<Domain>`, or the service type alone.
//!
//! # Text form
//!
//! [`RemoteEndpoint`] and [`LocalEndpoint`] parse and display the same
//! grammar (one shared implementation), and `Display` writes a canonical form
//! that parses back to an equal value:
//!
//! ```text
//! endpoint  = [ protocol "://" ] ( bracketed / plain )
//! protocol  = "tcp" / "udp" / "quic"                  ; any case
//! bracketed = "[" ip [ "%" interface ] "]" [ ":" portspec ] [ "%" interface ]
//! plain     = host [ ":" portspec ] [ "%" interface ]
//!           / ipv6 [ "%" interface ]                  ; two or more ':' => bare IPv6, no port
//! host      = "" / "*"                                ; no host: any address
//!           / ipv4 / hostname / dnssd
//! dnssd     = [ instance "." ] "_" service "." ( "_tcp" / "_udp" ) "." hostname
//! portspec  = port / service / service "=" port       ; "https=8443": service https on port 8443
//! ```
//!
//! Examples: `example.com:443`, `example.com:https`, `192.0.2.1:80%eth0`,
//! `[2001:db8::1]:443`, `[fe80::1%eth0]:443` (a zone is the interface, as
//! RFC 9622 §6.1 says), `2001:db8::1`, `myserver._http._tcp.local`,
//! `_http._tcp.example.com`, `quic://example.com:8443`, and for a local
//! endpoint `*:443`, `:443` or `%en0`.
//!
//! Choices the grammar makes:
//! - An empty host and `*` both mean "no host" (any local address); `Display`
//!   writes `*`, so an endpoint with no identifiers at all displays as `*`.
//! - Text with two or more unescaped `:` outside brackets is a bare IPv6
//!   address and cannot carry a port: `2001:db8::1:443` is an address. Write
//!   `[2001:db8::1]:443` for a port.
//! - Brackets may also hold an IPv4 address (`[192.0.2.1]:80`), but not with a
//!   zone: zones (RFC 4007) are an IPv6 notion. The interface goes after the
//!   port instead: `192.0.2.1:80%eth0`.
//! - A port is all digits (0 to 65535); a service name follows RFC 6335 §5.1
//!   (1 to 15 letters, digits and hyphens, at least one letter) and is
//!   lowercased.
//! - A name whose first label starts with `_` is a DNS-SD service type; one
//!   whose second label starts with `_` is a DNS-SD instance. Anything else is
//!   a host name, whose last label must not be all digits (RFC 1123 §2.1), so
//!   a malformed address such as `192.0.2.256` is an error, not a name.
//! - DNS-SD instance labels may hold any Unicode except control characters,
//!   spaces included, up to 63 bytes of UTF-8 (RFC 6763 §4.1.1). A backslash
//!   takes the next character literally (`My\.Box._http._tcp.local` is the
//!   instance `My.Box`); `\` followed by a digit is rejected so that the
//!   RFC 1035 `\DDD` form is never misread. `Display` escapes `\`, `.`, `:`,
//!   `%`, `[`, `]` and a leading `_`. Unicode normalisation is not checked.
//! - Interface names are kept as given; they may not be empty or hold
//!   whitespace, control characters, `%`, `[` or `]`.
//! - Host names are ASCII only: convert internationalised names to their
//!   A-label (`xn--`) form first.
//!
//! Values built by hand (public fields, [`RemoteEndpoint::with_interface`])
//! are displayed as they are; they read back equal whenever each field is
//! something the parser could have produced.

use core::fmt::{self, Write as _};
use core::str::FromStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// RFC 1035 §2.3.4, counted without the trailing dot.
const MAX_NAME_LEN: usize = 253;
/// RFC 1035 §2.3.4; RFC 6763 §4.1.1 applies the same limit to instance labels.
const MAX_LABEL_LEN: usize = 63;
/// RFC 6335 §5.1.
const MAX_SERVICE_LEN: usize = 15;

/// A validated DNS host name (RFC 1123 §2.1, RFC 1035 §2.3.1).
///
/// Labels are 1 to 63 characters of lowercase ASCII letters, digits and
/// hyphens (not first or last), optionally led by `_` so that DNS-SD and other
/// service names can be held; the whole name is at most 253 characters and is
/// stored without a trailing dot. The last label may not be all digits.
///
/// A trailing dot is remembered as [`HostName::is_absolute`]: resolv.conf(5)'s
/// search list is not applied to such a name. It does not take part in
/// equality, ordering or hashing: `example.com.` and `example.com` are the
/// same name to the cache, the hosts file and TLS.
// Shared text: a lookup hands the name to its transactions, the cache and
// the race, and a clone must not allocate on the establishment path.
#[derive(Clone, Debug)]
pub struct HostName(std::sync::Arc<str>, bool);

impl PartialEq for HostName {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for HostName {}

impl core::hash::Hash for HostName {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialOrd for HostName {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for HostName {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl HostName {
    /// Validates `text` and normalises it to lowercase, dropping one trailing
    /// dot (and remembering it, see [`HostName::is_absolute`]).
    pub fn new(text: &str) -> Result<Self, EndpointParseError> {
        parse_host_name(text, 0)
    }

    /// The name, lowercase and without a trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name was written with a trailing dot: fully qualified,
    /// so no search domain is appended to it (resolv.conf(5), RFC 1034 §3.1).
    pub fn is_absolute(&self) -> bool {
        self.1
    }

    /// The number of dots between labels, as resolv.conf(5)'s `ndots`
    /// counts them (a trailing dot is not counted).
    pub fn dots(&self) -> usize {
        self.0.bytes().filter(|b| *b == b'.').count()
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for HostName {
    type Err = EndpointParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// The transport label of a DNS-SD service type (RFC 6763 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceTransport {
    /// `_tcp`
    Tcp,
    /// `_udp`: RFC 6763 uses it for every protocol other than TCP.
    Udp,
}

impl ServiceTransport {
    /// The label as it appears in a name: `_tcp` or `_udp`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Tcp => "_tcp",
            Self::Udp => "_udp",
        }
    }
}

impl fmt::Display for ServiceTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A DNS-SD service instance or service type name (RFC 6763 §4.1).
///
/// `Display` writes the presentation form, escaping the instance as the module
/// documentation describes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DnsSdName {
    /// Instance label (`myserver`), absent for a service type to browse.
    /// Any Unicode except control characters, at most 63 bytes of UTF-8.
    pub instance: Option<String>,
    /// Service label without the underscore (`http`): an RFC 6335 service
    /// name, lowercase.
    pub service: String,
    /// `_tcp` or `_udp`.
    pub transport: ServiceTransport,
    /// Domain (`local`, `example.com`).
    pub domain: HostName,
}

impl DnsSdName {
    /// The service type name to browse for instances with a PTR query
    /// (`_http._tcp.local`); fails only if the result is longer than a DNS
    /// name may be.
    pub fn service_type(&self) -> Result<HostName, EndpointParseError> {
        HostName::new(&format!(
            "_{}.{}.{}",
            self.service, self.transport, self.domain
        ))
    }
}

impl fmt::Display for DnsSdName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(instance) = &self.instance {
            for (i, c) in instance.chars().enumerate() {
                // A leading `_` would make the instance read as a service
                // label; the others are separators of the endpoint grammar.
                if matches!(c, '\\' | '.' | ':' | '%' | '[' | ']') || (i == 0 && c == '_') {
                    f.write_char('\\')?;
                }
                f.write_char(c)?;
            }
            f.write_char('.')?;
        }
        write!(f, "_{}.{}.{}", self.service, self.transport, self.domain)
    }
}

/// The protocol an endpoint is scoped to (RFC 9622 §6.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP
    Tcp,
    /// UDP
    Udp,
    /// QUIC
    Quic,
}

impl Protocol {
    /// The lowercase name used in the text form (`quic` in `quic://`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Quic => "quic",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Tcp, Self::Udp, Self::Quic]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an endpoint is: the one host identifier it may hold.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A name to resolve.
    Name(HostName),
    /// An address literal, used as is.
    Ip(IpAddr),
    /// A DNS-SD service to resolve through PTR/SRV/TXT.
    Service(DnsSdName),
}

impl fmt::Display for Host {
    /// Writes the bare host: IPv6 addresses without brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => write!(f, "{name}"),
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Service(sd) => write!(f, "{sd}"),
        }
    }
}

/// The remote side of a connection (RFC 9622 §6.1, `NewRemoteEndpoint`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RemoteEndpoint {
    /// Host name, address or DNS-SD name.
    pub host: Option<Host>,
    /// Port; takes precedence over `service` (see `effective_port`).
    pub port: Option<u16>,
    /// Service name mapping to a port (`https`), lowercase.
    pub service: Option<String>,
    /// Interface, qualifying the scope zone of a link-local address.
    pub interface: Option<String>,
    /// Protocol this endpoint applies to; `None` applies to every protocol.
    pub protocol: Option<Protocol>,
}

/// The local side of a connection (RFC 9622 §6.1, `NewLocalEndpoint`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LocalEndpoint {
    /// Local address or name to bind; `None` binds any address.
    pub host: Option<Host>,
    /// Port; `None` lets the system pick an ephemeral one.
    pub port: Option<u16>,
    /// Service name mapping to a port, lowercase.
    pub service: Option<String>,
    /// Interface every candidate from this endpoint is bound to.
    pub interface: Option<String>,
    /// Protocol this endpoint applies to; `None` applies to every protocol.
    pub protocol: Option<Protocol>,
}

/// The port registered with IANA for a service name, for the small set of
/// services this crate knows (case-insensitive). `dns` is accepted as an alias
/// of `domain`.
pub fn well_known_port(service: &str) -> Option<u16> {
    const TABLE: &[(&str, u16)] = &[
        ("ftp", 21),
        ("ssh", 22),
        ("telnet", 23),
        ("smtp", 25),
        ("domain", 53),
        ("dns", 53),
        ("http", 80),
        ("pop3", 110),
        ("ntp", 123),
        ("imap", 143),
        ("snmp", 161),
        ("ldap", 389),
        ("https", 443),
        ("submissions", 465),
        ("rtsp", 554),
        ("submission", 587),
        ("ldaps", 636),
        ("domain-s", 853),
        ("imaps", 993),
        ("pop3s", 995),
        ("mqtt", 1883),
        ("stun", 3478),
        ("sip", 5060),
        ("sips", 5061),
        ("xmpp-client", 5222),
        ("coap", 5683),
        ("http-alt", 8080),
        ("secure-mqtt", 8883),
    ];
    TABLE
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(service))
        .map(|&(_, port)| port)
}

/// Builders, parsing and display, identical for both endpoint kinds; the
/// macro keeps them from drifting apart.
macro_rules! endpoint_impl {
    ($ty:ident) => {
        impl $ty {
            /// An endpoint with no identifiers set.
            pub fn new() -> Self {
                Self::default()
            }

            /// Sets the host from text: a host name, a DNS-SD name or an
            /// address literal (which becomes [`Host::Ip`], since resolving
            /// it as a name could only fail). Replaces any host already set.
            pub fn with_host_name(mut self, name: &str) -> Result<Self, EndpointParseError> {
                self.host = Some(parse_host(name, 0)?);
                Ok(self)
            }

            /// Sets the host, replacing any host already set.
            pub fn with_host(mut self, host: Host) -> Self {
                self.host = Some(host);
                self
            }

            /// Sets the host to an address (RFC 9622 `WithIPAddress`),
            /// replacing any host already set.
            pub fn with_ip(mut self, ip: IpAddr) -> Self {
                self.host = Some(Host::Ip(ip));
                self
            }

            /// Sets the port.
            pub fn with_port(mut self, port: u16) -> Self {
                self.port = Some(port);
                self
            }

            /// Sets the service name, lowercased because service names are
            /// case-insensitive (RFC 6335 §5.1).
            pub fn with_service(mut self, service: &str) -> Self {
                self.service = Some(service.to_ascii_lowercase());
                self
            }

            /// Sets the interface, kept as given.
            pub fn with_interface(mut self, interface: &str) -> Self {
                self.interface = Some(interface.to_owned());
                self
            }

            /// Scopes the endpoint to one protocol (RFC 9622 §6.1.3).
            pub fn with_protocol(mut self, protocol: Protocol) -> Self {
                self.protocol = Some(protocol);
                self
            }

            /// The port to use: `port` if set, else the well-known port of
            /// `service` (see [`well_known_port`]), else `None`.
            pub fn effective_port(&self) -> Option<u16> {
                self.port
                    .or_else(|| self.service.as_deref().and_then(well_known_port))
            }
        }

        impl FromStr for $ty {
            type Err = EndpointParseError;

            /// Parses the text form described in the module documentation.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let fields = parse_fields(s)?;
                Ok(Self {
                    host: fields.host,
                    port: fields.port,
                    service: fields.service,
                    interface: fields.interface,
                    protocol: fields.protocol,
                })
            }
        }

        impl fmt::Display for $ty {
            /// Writes the canonical text form, which parses back to `self`.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt_fields(
                    f,
                    FieldsRef {
                        host: self.host.as_ref(),
                        port: self.port,
                        service: self.service.as_deref(),
                        interface: self.interface.as_deref(),
                        protocol: self.protocol,
                    },
                )
            }
        }
    };
}

endpoint_impl!(RemoteEndpoint);
endpoint_impl!(LocalEndpoint);

/// The part of an endpoint an [`EndpointParseError::InvalidCharacter`] is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Component {
    /// A DNS host name or DNS-SD domain.
    HostName,
    /// A DNS-SD instance label.
    Instance,
    /// A service name (port position or DNS-SD service label).
    Service,
    /// An interface name.
    Interface,
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::HostName => "host name",
            Self::Instance => "DNS-SD instance name",
            Self::Service => "service name",
            Self::Interface => "interface name",
        })
    }
}

/// Why endpoint text (or a host name) was rejected.
///
/// Positions are byte offsets into the text given to the parser.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointParseError {
    /// The input was empty.
    Empty,
    /// The text before `://` is not `tcp`, `udp` or `quic`.
    UnknownProtocol {
        /// The text before `://`.
        protocol: String,
    },
    /// A `:` with nothing after it.
    MissingPort,
    /// The text after `:` is neither a number nor a service name.
    InvalidPort {
        /// The port text.
        text: String,
    },
    /// A number above 65535.
    PortOutOfRange {
        /// The port text.
        text: String,
    },
    /// A service name that breaks RFC 6335 §5.1 other than by a character.
    InvalidService {
        /// The service text.
        service: String,
        /// What rule it breaks.
        reason: &'static str,
    },
    /// A `[` without its `]`.
    UnclosedBracket {
        /// The text from `[` on.
        text: String,
    },
    /// Not an IPv6 address (in brackets, or bare with two or more `:`).
    InvalidIpv6 {
        /// The would-be address.
        text: String,
    },
    /// A zone on an IPv4 address in brackets (`[192.0.2.1%eth0]`).
    ZoneOnIpv4 {
        /// The bracket contents.
        text: String,
    },
    /// Text after `]` that is neither `:port` nor `%interface`.
    TrailingAfterBracket {
        /// The text after `]`.
        text: String,
    },
    /// A `%` with nothing after it.
    EmptyInterface,
    /// Both a zone in brackets and an interface after them; an endpoint
    /// holds one interface (RFC 9622 §6.1).
    DuplicateInterface {
        /// The zone inside the brackets.
        first: String,
        /// The interface after them.
        second: String,
    },
    /// A label longer than 63 bytes.
    LabelTooLong {
        /// The label.
        label: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A host name longer than 253 characters.
    NameTooLong {
        /// The name.
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A character not allowed where it stands.
    InvalidCharacter {
        /// Which part of the endpoint.
        component: Component,
        /// The character.
        character: char,
        /// Its byte offset in the input.
        position: usize,
        /// The part it was found in.
        text: String,
    },
    /// An empty label (`a..b`, `.a`).
    EmptyLabel {
        /// The name holding it.
        name: String,
        /// Byte offset in the input where the label should start.
        position: usize,
    },
    /// A host name label starting or ending with `-`.
    HyphenAtLabelEdge {
        /// The label.
        label: String,
    },
    /// A host name whose last label is all digits: a malformed address,
    /// since RFC 1123 §2.1 keeps names and dotted-decimal apart.
    NumericTopLevelLabel {
        /// The name.
        name: String,
    },
    /// A DNS-SD service label not followed by `_tcp` or `_udp`.
    MissingServiceTransport {
        /// The DNS-SD name.
        name: String,
        /// The label found in place of `_tcp`/`_udp`, if any.
        found: Option<String>,
    },
    /// A DNS-SD name with no domain after `_tcp`/`_udp`.
    MissingServiceDomain {
        /// The DNS-SD name.
        name: String,
    },
    /// A backslash at the end of an instance, or before a digit.
    InvalidEscape {
        /// The instance label.
        text: String,
        /// Byte offset of the backslash in the input.
        position: usize,
    },
}

impl fmt::Display for EndpointParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty endpoint"),
            Self::UnknownProtocol { protocol } => write!(
                f,
                "unknown protocol `{protocol}` before `://` (expected tcp, udp or quic)"
            ),
            Self::MissingPort => f.write_str("missing port or service name after `:`"),
            Self::InvalidPort { text } => write!(
                f,
                "port `{text}` is not a number (nor a service name: those need a letter)"
            ),
            Self::PortOutOfRange { text } => {
                write!(f, "port `{text}` is out of range (at most 65535)")
            }
            Self::InvalidService { service, reason } => {
                write!(f, "service name `{service}` {reason} (RFC 6335 §5.1)")
            }
            Self::UnclosedBracket { text } => write!(f, "unclosed `[` in `{text}`"),
            Self::InvalidIpv6 { text } => write!(
                f,
                "`{text}` is not a valid IPv6 address (text with two or more `:` is read \
                 as one; write `[address]:port` for a port)"
            ),
            Self::ZoneOnIpv4 { text } => write!(
                f,
                "zone on the IPv4 address `[{text}]`: put the interface after the port, \
                 as in `192.0.2.1:80%eth0`"
            ),
            Self::TrailingAfterBracket { text } => write!(
                f,
                "unexpected `{text}` after `]` (expected `:port` or `%interface`)"
            ),
            Self::EmptyInterface => f.write_str("empty interface name after `%`"),
            Self::DuplicateInterface { first, second } => write!(
                f,
                "two interfaces, `{first}` and `{second}`: an endpoint holds one (RFC 9622 §6.1)"
            ),
            Self::LabelTooLong { label, len } => write!(
                f,
                "label `{label}` is {len} bytes long (at most {MAX_LABEL_LEN})"
            ),
            Self::NameTooLong { name, len } => write!(
                f,
                "host name `{name}` is {len} characters long (at most {MAX_NAME_LEN})"
            ),
            Self::InvalidCharacter {
                component,
                character,
                position,
                text,
            } => write!(
                f,
                "invalid character {character:?} at position {position} in {component} `{text}`"
            ),
            Self::EmptyLabel { name, position } => {
                write!(f, "empty label at position {position} in `{name}`")
            }
            Self::HyphenAtLabelEdge { label } => {
                write!(f, "label `{label}` starts or ends with `-`")
            }
            Self::NumericTopLevelLabel { name } => write!(
                f,
                "`{name}` is neither an IP address nor a host name (its last label is all digits)"
            ),
            Self::MissingServiceTransport { name, found } => match found {
                Some(label) => write!(
                    f,
                    "DNS-SD name `{name}` has `{label}` where `_tcp` or `_udp` belongs"
                ),
                None => write!(
                    f,
                    "DNS-SD name `{name}` lacks `_tcp` or `_udp` after the service"
                ),
            },
            Self::MissingServiceDomain { name } => {
                write!(f, "DNS-SD name `{name}` has no domain")
            }
            Self::InvalidEscape { text, position } => write!(
                f,
                "invalid `\\` escape at position {position} in `{text}` (a backslash must be \
                 followed by a character other than a digit)"
            ),
        }
    }
}

impl std::error::Error for EndpointParseError {}

/// What the text form holds, before it becomes one endpoint kind or the other.
#[derive(Default)]
struct Fields {
    host: Option<Host>,
    port: Option<u16>,
    service: Option<String>,
    interface: Option<String>,
    protocol: Option<Protocol>,
}

/// A borrowed view of either endpoint kind, so one function displays both.
#[derive(Clone, Copy)]
struct FieldsRef<'a> {
    host: Option<&'a Host>,
    port: Option<u16>,
    service: Option<&'a str>,
    interface: Option<&'a str>,
    protocol: Option<Protocol>,
}

fn fmt_fields(f: &mut fmt::Formatter<'_>, e: FieldsRef<'_>) -> fmt::Result {
    if let Some(protocol) = e.protocol {
        write!(f, "{protocol}://")?;
    }
    // An IPv6 address carries its interface as a zone inside the brackets,
    // the form people know from `fe80::1%eth0`.
    let mut interface = e.interface;
    match e.host {
        None => f.write_char('*')?,
        Some(Host::Ip(IpAddr::V6(ip))) => {
            write!(f, "[{ip}")?;
            if let Some(zone) = interface.take() {
                write!(f, "%{zone}")?;
            }
            f.write_char(']')?;
        }
        Some(host) => write!(f, "{host}")?,
    }
    match (e.service, e.port) {
        (Some(service), Some(port)) => write!(f, ":{service}={port}")?,
        (Some(service), None) => write!(f, ":{service}")?,
        (None, Some(port)) => write!(f, ":{port}")?,
        (None, None) => {}
    }
    if let Some(interface) = interface {
        write!(f, "%{interface}")?;
    }
    Ok(())
}

fn parse_fields(input: &str) -> Result<Fields, EndpointParseError> {
    if input.is_empty() {
        return Err(EndpointParseError::Empty);
    }
    let mut fields = Fields::default();
    let (rest, base) = match split_scheme(input) {
        Some((scheme, rest)) => {
            let protocol =
                Protocol::from_name(scheme).ok_or_else(|| EndpointParseError::UnknownProtocol {
                    protocol: scheme.to_owned(),
                })?;
            fields.protocol = Some(protocol);
            (rest, scheme.len() + 3)
        }
        None => (input, 0),
    };
    match rest.strip_prefix('[') {
        Some(inner) => parse_bracketed(inner, base + 1, &mut fields)?,
        None => parse_plain(rest, base, &mut fields)?,
    }
    Ok(fields)
}

/// A scheme is letters and digits only, so `://` inside an escaped instance
/// or an interface name is never mistaken for one.
fn split_scheme(input: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = input.split_once("://")?;
    let is_scheme = !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric());
    is_scheme.then_some((scheme, rest))
}

/// `inner` is the text after `[`, found at byte `base` of the input.
fn parse_bracketed(
    inner: &str,
    base: usize,
    fields: &mut Fields,
) -> Result<(), EndpointParseError> {
    let Some((literal, after)) = inner.split_once(']') else {
        return Err(EndpointParseError::UnclosedBracket {
            text: format!("[{inner}"),
        });
    };
    let (address, zone) = match literal.split_once('%') {
        Some((address, zone)) => (address, Some(zone)),
        None => (literal, None),
    };
    let ip = if let Ok(v6) = address.parse::<Ipv6Addr>() {
        IpAddr::V6(v6)
    } else if let Ok(v4) = address.parse::<Ipv4Addr>() {
        if zone.is_some() {
            return Err(EndpointParseError::ZoneOnIpv4 {
                text: literal.to_owned(),
            });
        }
        IpAddr::V4(v4)
    } else {
        return Err(EndpointParseError::InvalidIpv6 {
            text: address.to_owned(),
        });
    };
    fields.host = Some(Host::Ip(ip));
    if let Some(zone) = zone {
        fields.interface = Some(parse_interface(zone, base + address.len() + 1)?);
    }

    let after_base = base + literal.len() + 1;
    let (port_text, interface) = if after.is_empty() {
        (None, None)
    } else if let Some(spec) = after.strip_prefix(':') {
        match split_unescaped(spec, b'%') {
            (port, Some(interface)) => (Some(port), Some(interface)),
            (port, None) => (Some(port), None),
        }
    } else if let Some(interface) = after.strip_prefix('%') {
        (None, Some(interface))
    } else {
        return Err(EndpointParseError::TrailingAfterBracket {
            text: after.to_owned(),
        });
    };
    if let Some(port_text) = port_text {
        parse_port_spec(port_text, after_base + 1, fields)?;
    }
    if let Some(text) = interface {
        let second = parse_interface(text, after_base + suffix_offset(after, text))?;
        if let Some(first) = fields.interface.take() {
            return Err(EndpointParseError::DuplicateInterface { first, second });
        }
        fields.interface = Some(second);
    }
    Ok(())
}

/// Everything that does not start with `[`, found at byte `base` of the input.
fn parse_plain(rest: &str, base: usize, fields: &mut Fields) -> Result<(), EndpointParseError> {
    let (main, interface) = split_unescaped(rest, b'%');
    if count_unescaped(main, b':') >= 2 {
        let ip = main
            .parse::<Ipv6Addr>()
            .map_err(|_| EndpointParseError::InvalidIpv6 {
                text: main.to_owned(),
            })?;
        fields.host = Some(Host::Ip(IpAddr::V6(ip)));
    } else {
        let (host, port_text) = split_unescaped(main, b':');
        if !(host.is_empty() || host == "*") {
            fields.host = Some(parse_host(host, base)?);
        }
        if let Some(port_text) = port_text {
            parse_port_spec(port_text, base + host.len() + 1, fields)?;
        }
    }
    if let Some(interface) = interface {
        fields.interface = Some(parse_interface(interface, base + main.len() + 1)?);
    }
    Ok(())
}

fn parse_port_spec(text: &str, base: usize, fields: &mut Fields) -> Result<(), EndpointParseError> {
    if text.is_empty() {
        return Err(EndpointParseError::MissingPort);
    }
    if let Some((service, port)) = text.split_once('=') {
        fields.service = Some(parse_service_name(service, base)?);
        fields.port = Some(parse_port(port)?);
    } else if text.bytes().any(|b| b.is_ascii_alphabetic()) {
        fields.service = Some(parse_service_name(text, base)?);
    } else {
        fields.port = Some(parse_port(text)?);
    }
    Ok(())
}

fn parse_port(text: &str) -> Result<u16, EndpointParseError> {
    // Checked by hand because `u16::from_str` accepts a leading `+`.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EndpointParseError::InvalidPort {
            text: text.to_owned(),
        });
    }
    text.parse()
        .map_err(|_| EndpointParseError::PortOutOfRange {
            text: text.to_owned(),
        })
}

/// RFC 6335 §5.1; returns the name lowercased.
fn parse_service_name(text: &str, base: usize) -> Result<String, EndpointParseError> {
    let invalid = |reason| EndpointParseError::InvalidService {
        service: text.to_owned(),
        reason,
    };
    if text.is_empty() {
        return Err(invalid("is empty"));
    }
    if let Some((i, c)) = text
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-'))
    {
        return Err(EndpointParseError::InvalidCharacter {
            component: Component::Service,
            character: c,
            position: base + i,
            text: text.to_owned(),
        });
    }
    if text.len() > MAX_SERVICE_LEN {
        return Err(invalid("is longer than 15 characters"));
    }
    if !text.bytes().any(|b| b.is_ascii_alphabetic()) {
        return Err(invalid("has no letter"));
    }
    if text.starts_with('-') || text.ends_with('-') {
        return Err(invalid("starts or ends with `-`"));
    }
    if text.contains("--") {
        return Err(invalid("contains `--`"));
    }
    Ok(text.to_ascii_lowercase())
}

fn parse_interface(text: &str, base: usize) -> Result<String, EndpointParseError> {
    if text.is_empty() {
        return Err(EndpointParseError::EmptyInterface);
    }
    // `%`, `[` and `]` would end the interface early in the text form.
    let bad = |c: char| c.is_control() || c.is_whitespace() || matches!(c, '%' | '[' | ']');
    if let Some((i, c)) = text.char_indices().find(|&(_, c)| bad(c)) {
        return Err(EndpointParseError::InvalidCharacter {
            component: Component::Interface,
            character: c,
            position: base + i,
            text: text.to_owned(),
        });
    }
    Ok(text.to_owned())
}

/// Classifies a host: address literal, DNS-SD name or host name.
fn parse_host(text: &str, base: usize) -> Result<Host, EndpointParseError> {
    if text.is_empty() {
        return Err(EndpointParseError::Empty);
    }
    if let Ok(v4) = text.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(v4)));
    }
    // The endpoint grammar sends colon-bearing text elsewhere; this branch
    // serves `with_host_name("2001:db8::1")`.
    if text.contains(':')
        && let Ok(v6) = text.parse::<Ipv6Addr>()
    {
        return Ok(Host::Ip(IpAddr::V6(v6)));
    }
    let (first, after_first) = split_unescaped(text, b'.');
    if first.starts_with('_') {
        return parse_service_type(text, None, text, base).map(Host::Service);
    }
    if let Some(after) = after_first
        && after.starts_with('_')
    {
        let instance = parse_instance(text, first, base)?;
        let after_base = base + first.len() + 1;
        return parse_service_type(text, Some(instance), after, after_base).map(Host::Service);
    }
    parse_host_name(text, base).map(Host::Name)
}

/// `text` is `_service._proto.domain` at byte `base`; `whole` is the full
/// DNS-SD name, for messages.
fn parse_service_type(
    whole: &str,
    instance: Option<String>,
    text: &str,
    base: usize,
) -> Result<DnsSdName, EndpointParseError> {
    let (service_label, rest) = split_unescaped(text, b'.');
    let service = parse_service_name(
        service_label.strip_prefix('_').unwrap_or(service_label),
        base + 1,
    )?;
    let missing_transport = |found: Option<&str>| EndpointParseError::MissingServiceTransport {
        name: whole.to_owned(),
        found: found.map(str::to_owned),
    };
    let rest = rest.ok_or_else(|| missing_transport(None))?;
    let (transport_label, domain) = split_unescaped(rest, b'.');
    let transport = if transport_label.eq_ignore_ascii_case("_tcp") {
        ServiceTransport::Tcp
    } else if transport_label.eq_ignore_ascii_case("_udp") {
        ServiceTransport::Udp
    } else {
        return Err(missing_transport(Some(transport_label)));
    };
    let domain = match domain {
        Some(domain) if !domain.is_empty() => domain,
        _ => {
            return Err(EndpointParseError::MissingServiceDomain {
                name: whole.to_owned(),
            });
        }
    };
    let domain_base = base + service_label.len() + 1 + transport_label.len() + 1;
    Ok(DnsSdName {
        instance,
        service,
        transport,
        domain: parse_host_name(domain, domain_base)?,
    })
}

/// Unescapes and checks a DNS-SD instance label found at byte `base`.
fn parse_instance(whole: &str, raw: &str, base: usize) -> Result<String, EndpointParseError> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        let c = if c == '\\' {
            match chars.next() {
                Some((_, escaped)) if !escaped.is_ascii_digit() => escaped,
                _ => {
                    return Err(EndpointParseError::InvalidEscape {
                        text: raw.to_owned(),
                        position: base + i,
                    });
                }
            }
        } else {
            c
        };
        if c.is_control() {
            return Err(EndpointParseError::InvalidCharacter {
                component: Component::Instance,
                character: c,
                position: base + i,
                text: raw.to_owned(),
            });
        }
        out.push(c);
    }
    if out.is_empty() {
        return Err(EndpointParseError::EmptyLabel {
            name: whole.to_owned(),
            position: base,
        });
    }
    if out.len() > MAX_LABEL_LEN {
        return Err(EndpointParseError::LabelTooLong {
            len: out.len(),
            label: out,
        });
    }
    Ok(out)
}

/// Validates a host name found at byte `base` of the input.
fn parse_host_name(text: &str, base: usize) -> Result<HostName, EndpointParseError> {
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.is_empty() {
        return Err(if text.is_empty() {
            EndpointParseError::Empty
        } else {
            EndpointParseError::EmptyLabel {
                name: text.to_owned(),
                position: base,
            }
        });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(EndpointParseError::NameTooLong {
            name: name.to_owned(),
            len: name.len(),
        });
    }
    let mut offset = 0;
    let mut last = name;
    for label in name.split('.') {
        check_host_label(name, label, base + offset)?;
        offset += label.len() + 1;
        last = label;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EndpointParseError::NumericTopLevelLabel {
            name: name.to_owned(),
        });
    }
    Ok(HostName(
        std::sync::Arc::from(name.to_ascii_lowercase()),
        name.len() < text.len(),
    ))
}

fn check_host_label(name: &str, label: &str, base: usize) -> Result<(), EndpointParseError> {
    if label.is_empty() {
        return Err(EndpointParseError::EmptyLabel {
            name: name.to_owned(),
            position: base,
        });
    }
    let allowed = |i: usize, c: char| c.is_ascii_alphanumeric() || c == '-' || (c == '_' && i == 0);
    if let Some((i, c)) = label.char_indices().find(|&(i, c)| !allowed(i, c)) {
        return Err(EndpointParseError::InvalidCharacter {
            component: Component::HostName,
            character: c,
            position: base + i,
            text: name.to_owned(),
        });
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(EndpointParseError::LabelTooLong {
            label: label.to_owned(),
            len: label.len(),
        });
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(EndpointParseError::HyphenAtLabelEdge {
            label: label.to_owned(),
        });
    }
    Ok(())
}

/// Splits at the first ASCII `sep` not escaped by a backslash. Skipping one
/// byte after `\` is enough: bytes of a multi-byte character are never ASCII.
fn split_unescaped(text: &str, sep: u8) -> (&str, Option<&str>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            i += 2;
            continue;
        }
        if b == sep
            && let (Some(head), Some(tail)) = (text.get(..i), text.get(i + 1..))
        {
            return (head, Some(tail));
        }
        i += 1;
    }
    (text, None)
}

fn count_unescaped(text: &str, sep: u8) -> usize {
    let mut count = 0;
    let mut rest = text;
    while let (_, Some(tail)) = split_unescaped(rest, sep) {
        count += 1;
        rest = tail;
    }
    count
}

/// Offset of `suffix` inside `whole`, which ends with it.
fn suffix_offset(whole: &str, suffix: &str) -> usize {
    whole.len().saturating_sub(suffix.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type E = EndpointParseError;

    fn name(text: &str) -> HostName {
        HostName::new(text).expect("valid test host name")
    }

    fn ip(text: &str) -> Option<Host> {
        Some(Host::Ip(text.parse().expect("valid test address")))
    }

    fn remote(host: Option<Host>, port: Option<u16>) -> RemoteEndpoint {
        RemoteEndpoint {
            host,
            port,
            ..RemoteEndpoint::default()
        }
    }

    fn sd(
        instance: Option<&str>,
        service: &str,
        transport: ServiceTransport,
        domain: &str,
    ) -> Option<Host> {
        Some(Host::Service(DnsSdName {
            instance: instance.map(str::to_owned),
            service: service.to_owned(),
            transport,
            domain: name(domain),
        }))
    }

    fn parse(text: &str) -> Result<RemoteEndpoint, E> {
        text.parse()
    }

    /// (input, expected value, canonical display)
    fn valid_cases() -> Vec<(&'static str, RemoteEndpoint, &'static str)> {
        use ServiceTransport::{Tcp, Udp};
        let named = |n: &str| Some(Host::Name(name(n)));
        vec![
            (
                "example.com:443",
                remote(named("example.com"), Some(443)),
                "example.com:443",
            ),
            (
                "Example.COM.:443",
                remote(named("example.com"), Some(443)),
                "example.com:443",
            ),
            (
                "example.com",
                remote(named("example.com"), None),
                "example.com",
            ),
            ("localhost", remote(named("localhost"), None), "localhost"),
            (
                "192.0.2.1:80",
                remote(ip("192.0.2.1"), Some(80)),
                "192.0.2.1:80",
            ),
            ("192.0.2.1", remote(ip("192.0.2.1"), None), "192.0.2.1"),
            (
                "[192.0.2.1]:80",
                remote(ip("192.0.2.1"), Some(80)),
                "192.0.2.1:80",
            ),
            (
                "[2001:db8::1]:443",
                remote(ip("2001:db8::1"), Some(443)),
                "[2001:db8::1]:443",
            ),
            (
                "[2001:db8::1]",
                remote(ip("2001:db8::1"), None),
                "[2001:db8::1]",
            ),
            (
                "2001:db8::1",
                remote(ip("2001:db8::1"), None),
                "[2001:db8::1]",
            ),
            ("::", remote(ip("::"), None), "[::]"),
            (
                "[fe80::1%eth0]:443",
                RemoteEndpoint {
                    interface: Some("eth0".into()),
                    ..remote(ip("fe80::1"), Some(443))
                },
                "[fe80::1%eth0]:443",
            ),
            (
                "[fe80::1]:443%eth0",
                RemoteEndpoint {
                    interface: Some("eth0".into()),
                    ..remote(ip("fe80::1"), Some(443))
                },
                "[fe80::1%eth0]:443",
            ),
            (
                "fe80::1%eth0",
                RemoteEndpoint {
                    interface: Some("eth0".into()),
                    ..remote(ip("fe80::1"), None)
                },
                "[fe80::1%eth0]",
            ),
            (
                "[fe80::1%eth0.100]",
                RemoteEndpoint {
                    interface: Some("eth0.100".into()),
                    ..remote(ip("fe80::1"), None)
                },
                "[fe80::1%eth0.100]",
            ),
            (
                "192.0.2.1:80%eth0",
                RemoteEndpoint {
                    interface: Some("eth0".into()),
                    ..remote(ip("192.0.2.1"), Some(80))
                },
                "192.0.2.1:80%eth0",
            ),
            (
                "192.0.2.1%eth0:1",
                RemoteEndpoint {
                    interface: Some("eth0:1".into()),
                    ..remote(ip("192.0.2.1"), None)
                },
                "192.0.2.1%eth0:1",
            ),
            (
                "myserver._http._tcp.local",
                remote(sd(Some("myserver"), "http", Tcp, "local"), None),
                "myserver._http._tcp.local",
            ),
            (
                "_http._tcp.example.com",
                remote(sd(None, "http", Tcp, "example.com"), None),
                "_http._tcp.example.com",
            ),
            (
                "_HTTP._TCP.Example.com.",
                remote(sd(None, "http", Tcp, "example.com"), None),
                "_http._tcp.example.com",
            ),
            (
                "My\\.Box._http._tcp.local",
                remote(sd(Some("My.Box"), "http", Tcp, "local"), None),
                "My\\.Box._http._tcp.local",
            ),
            (
                "My Printer._ipp._tcp.local:631",
                remote(sd(Some("My Printer"), "ipp", Tcp, "local"), Some(631)),
                "My Printer._ipp._tcp.local:631",
            ),
            (
                "Wohnzimmer \u{1f4fa}._airplay._tcp.local",
                remote(
                    sd(Some("Wohnzimmer \u{1f4fa}"), "airplay", Tcp, "local"),
                    None,
                ),
                "Wohnzimmer \u{1f4fa}._airplay._tcp.local",
            ),
            (
                "a\\:b\\%c\\\\d._sip._udp.example.com",
                remote(sd(Some("a:b%c\\d"), "sip", Udp, "example.com"), None),
                "a\\:b\\%c\\\\d._sip._udp.example.com",
            ),
            (
                "\\_hidden._http._tcp.local",
                remote(sd(Some("_hidden"), "http", Tcp, "local"), None),
                "\\_hidden._http._tcp.local",
            ),
            (
                "example.com:https",
                RemoteEndpoint {
                    service: Some("https".into()),
                    ..remote(named("example.com"), None)
                },
                "example.com:https",
            ),
            (
                "example.com:HTTPS=8443",
                RemoteEndpoint {
                    service: Some("https".into()),
                    ..remote(named("example.com"), Some(8443))
                },
                "example.com:https=8443",
            ),
            (
                "QUIC://example.com:8443",
                RemoteEndpoint {
                    protocol: Some(Protocol::Quic),
                    ..remote(named("example.com"), Some(8443))
                },
                "quic://example.com:8443",
            ),
            (
                "udp://[2001:db8::53]:53",
                RemoteEndpoint {
                    protocol: Some(Protocol::Udp),
                    ..remote(ip("2001:db8::53"), Some(53))
                },
                "udp://[2001:db8::53]:53",
            ),
            ("*:443", remote(None, Some(443)), "*:443"),
            (":443", remote(None, Some(443)), "*:443"),
            ("*", remote(None, None), "*"),
            (
                "example.com:0080",
                remote(named("example.com"), Some(80)),
                "example.com:80",
            ),
            (
                "example.com:65535",
                remote(named("example.com"), Some(65535)),
                "example.com:65535",
            ),
            (
                "%en0",
                RemoteEndpoint {
                    interface: Some("en0".into()),
                    ..remote(None, None)
                },
                "*%en0",
            ),
            (
                "tcp://",
                RemoteEndpoint {
                    protocol: Some(Protocol::Tcp),
                    ..remote(None, None)
                },
                "tcp://*",
            ),
            (
                "_acme._udp.x.y._z.example",
                remote(sd(None, "acme", Udp, "x.y._z.example"), None),
                "_acme._udp.x.y._z.example",
            ),
            (
                "www.a._b.example",
                remote(named("www.a._b.example"), None),
                "www.a._b.example",
            ),
            (
                "xn--bcher-kva.example",
                remote(named("xn--bcher-kva.example"), None),
                "xn--bcher-kva.example",
            ),
        ]
    }

    #[test]
    fn valid_forms_parse_display_and_round_trip() {
        for (input, expected, canonical) in valid_cases() {
            let parsed = parse(input).unwrap_or_else(|e| panic!("`{input}` failed: {e}"));
            assert_eq!(parsed, expected, "parsing `{input}`");
            let shown = parsed.to_string();
            assert_eq!(shown, canonical, "display of `{input}`");
            assert_eq!(parse(&shown), Ok(expected.clone()), "re-parsing `{shown}`");

            let local: LocalEndpoint = input
                .parse()
                .unwrap_or_else(|e| panic!("local `{input}`: {e}"));
            assert_eq!(local.host, expected.host);
            assert_eq!(local.port, expected.port);
            assert_eq!(local.service, expected.service);
            assert_eq!(local.interface, expected.interface);
            assert_eq!(local.protocol, expected.protocol);
            assert_eq!(local.to_string(), canonical, "local display of `{input}`");
        }
    }

    type Check = fn(&E) -> bool;

    /// (input, expected variant, text the message must quote)
    fn error_cases() -> Vec<(String, Check, String)> {
        let long_label = "a".repeat(64);
        let long_name = ["abcdefghij"; 25].join(".") + ".com";
        let long_instance = "i".repeat(64);
        let mut cases: Vec<(String, Check, String)> = vec![
            (String::new(), |e| matches!(e, E::Empty), "empty".into()),
            (
                "example.com:http:x:y".into(),
                |e| matches!(e, E::InvalidIpv6 { .. }),
                "`example.com:http:x:y`".into(),
            ),
            (
                "example.com:-1".into(),
                |e| matches!(e, E::InvalidPort { .. }),
                "`-1`".into(),
            ),
            (
                "example.com:+80".into(),
                |e| matches!(e, E::InvalidPort { .. }),
                "`+80`".into(),
            ),
            (
                "example.com:65536".into(),
                |e| matches!(e, E::PortOutOfRange { .. }),
                "`65536`".into(),
            ),
            (
                "[::1]:99999999999999999999".into(),
                |e| matches!(e, E::PortOutOfRange { .. }),
                "`99999999999999999999`".into(),
            ),
            (
                "example.com:https=x".into(),
                |e| matches!(e, E::InvalidPort { .. }),
                "`x`".into(),
            ),
            (
                "example.com:".into(),
                |e| matches!(e, E::MissingPort),
                "after `:`".into(),
            ),
            (
                "example.com:very-long-service-name".into(),
                |e| matches!(e, E::InvalidService { .. }),
                "`very-long-service-name`".into(),
            ),
            (
                "example.com:web--x".into(),
                |e| matches!(e, E::InvalidService { .. }),
                "`web--x`".into(),
            ),
            (
                "example.com:ht_tp".into(),
                |e| {
                    matches!(
                        e,
                        E::InvalidCharacter {
                            component: Component::Service,
                            character: '_',
                            position: 14,
                            ..
                        }
                    )
                },
                "'_' at position 14".into(),
            ),
            (
                "[2001:db8::1".into(),
                |e| matches!(e, E::UnclosedBracket { .. }),
                "`[2001:db8::1`".into(),
            ),
            (
                "[2001:db8::g]:443".into(),
                |e| matches!(e, E::InvalidIpv6 { .. }),
                "`2001:db8::g`".into(),
            ),
            (
                "[example.com]:443".into(),
                |e| matches!(e, E::InvalidIpv6 { .. }),
                "`example.com`".into(),
            ),
            (
                "2001:db8::1:443:1:2:3:4".into(),
                |e| matches!(e, E::InvalidIpv6 { .. }),
                "`2001:db8::1:443:1:2:3:4`".into(),
            ),
            (
                "[192.0.2.1%eth0]:80".into(),
                |e| matches!(e, E::ZoneOnIpv4 { .. }),
                "`[192.0.2.1%eth0]`".into(),
            ),
            (
                "[fe80::1%]:443".into(),
                |e| matches!(e, E::EmptyInterface),
                "empty interface".into(),
            ),
            (
                "192.0.2.1:80%".into(),
                |e| matches!(e, E::EmptyInterface),
                "after `%`".into(),
            ),
            (
                "[::1]x".into(),
                |e| matches!(e, E::TrailingAfterBracket { .. }),
                "`x`".into(),
            ),
            (
                "[::1]:44 3".into(),
                |e| matches!(e, E::InvalidPort { .. }),
                "`44 3`".into(),
            ),
            (
                "[fe80::1%eth0]:443%eth1".into(),
                |e| matches!(e, E::DuplicateInterface { .. }),
                "`eth0` and `eth1`".into(),
            ),
            (
                "example.com%eth 0".into(),
                |e| {
                    matches!(
                        e,
                        E::InvalidCharacter {
                            component: Component::Interface,
                            character: ' ',
                            position: 15,
                            ..
                        }
                    )
                },
                "`eth 0`".into(),
            ),
            (
                format!("{long_label}.com"),
                |e| matches!(e, E::LabelTooLong { len: 64, .. }),
                format!("`{long_label}`"),
            ),
            (
                long_name.clone(),
                |e| matches!(e, E::NameTooLong { len: 278, .. }),
                format!("`{long_name}`"),
            ),
            (
                "exa mple.com:80".into(),
                |e| {
                    matches!(
                        e,
                        E::InvalidCharacter {
                            component: Component::HostName,
                            character: ' ',
                            position: 3,
                            ..
                        }
                    )
                },
                "' ' at position 3".into(),
            ),
            (
                "quic://ex!ample.com".into(),
                |e| {
                    matches!(
                        e,
                        E::InvalidCharacter {
                            character: '!',
                            position: 9,
                            ..
                        }
                    )
                },
                "'!' at position 9".into(),
            ),
            (
                "b\u{fc}cher.example".into(),
                |e| {
                    matches!(
                        e,
                        E::InvalidCharacter {
                            character: '\u{fc}',
                            position: 1,
                            ..
                        }
                    )
                },
                "'\u{fc}'".into(),
            ),
            (
                "a..b".into(),
                |e| matches!(e, E::EmptyLabel { position: 2, .. }),
                "`a..b`".into(),
            ),
            (
                ".example.com".into(),
                |e| matches!(e, E::EmptyLabel { position: 0, .. }),
                "`.example.com`".into(),
            ),
            (
                "example.com..".into(),
                |e| matches!(e, E::EmptyLabel { .. }),
                "`example.com.`".into(),
            ),
            (
                "-example.com".into(),
                |e| matches!(e, E::HyphenAtLabelEdge { .. }),
                "`-example`".into(),
            ),
            (
                "192.0.2.256:80".into(),
                |e| matches!(e, E::NumericTopLevelLabel { .. }),
                "`192.0.2.256`".into(),
            ),
            (
                "_http.example.com".into(),
                |e| matches!(e, E::MissingServiceTransport { found: Some(_), .. }),
                "`example`".into(),
            ),
            (
                "_printer._sub._http._tcp.local".into(),
                |e| matches!(e, E::MissingServiceTransport { .. }),
                "`_sub`".into(),
            ),
            (
                "myserver._http".into(),
                |e| matches!(e, E::MissingServiceTransport { found: None, .. }),
                "`myserver._http`".into(),
            ),
            (
                "_http._tcp".into(),
                |e| matches!(e, E::MissingServiceDomain { .. }),
                "`_http._tcp`".into(),
            ),
            (
                "_http._tcp.".into(),
                |e| matches!(e, E::MissingServiceDomain { .. }),
                "`_http._tcp.`".into(),
            ),
            (
                "._http._tcp.local".into(),
                |e| matches!(e, E::EmptyLabel { .. }),
                "`._http._tcp.local`".into(),
            ),
            (
                format!("{long_instance}._http._tcp.local"),
                |e| matches!(e, E::LabelTooLong { len: 64, .. }),
                format!("`{long_instance}`"),
            ),
            (
                "a\u{7}b._http._tcp.local".into(),
                |e| {
                    matches!(
                        e,
                        E::InvalidCharacter {
                            component: Component::Instance,
                            position: 1,
                            ..
                        }
                    )
                },
                "'\\u{7}'".into(),
            ),
            (
                "My\\032Box._http._tcp.local".into(),
                |e| matches!(e, E::InvalidEscape { position: 2, .. }),
                "`My\\032Box`".into(),
            ),
            (
                "Box\\._http._tcp.local".into(),
                |e| matches!(e, E::MissingServiceTransport { .. }),
                "`Box\\._http._tcp.local`".into(),
            ),
            (
                "sctp://example.com".into(),
                |e| matches!(e, E::UnknownProtocol { .. }),
                "`sctp`".into(),
            ),
            (
                "https://example.com".into(),
                |e| matches!(e, E::UnknownProtocol { .. }),
                "`https`".into(),
            ),
        ];
        // A trailing lone backslash.
        cases.push((
            "Box\\".into(),
            |e| {
                matches!(
                    e,
                    E::InvalidCharacter {
                        character: '\\',
                        ..
                    }
                )
            },
            "'\\\\'".into(),
        ));
        cases
    }

    #[test]
    fn errors_name_the_offending_part() {
        for (input, check, quoted) in error_cases() {
            let err = match parse(&input) {
                Ok(value) => panic!("`{input}` parsed as {value:?}"),
                Err(err) => err,
            };
            assert!(check(&err), "`{input}` gave the wrong error: {err:?}");
            let message = err.to_string();
            assert!(
                message.contains(&quoted),
                "message for `{input}` lacks {quoted}: {message}"
            );
            let local = input.parse::<LocalEndpoint>();
            assert_eq!(local, Err(err), "local parse of `{input}`");
        }
    }

    #[test]
    fn host_name_rules() {
        assert_eq!(name("WWW.Example.COM.").as_str(), "www.example.com");
        assert_eq!(name("_http._tcp.local").as_str(), "_http._tcp.local");
        assert_eq!(name("a-b.c1").as_str(), "a-b.c1");
        assert_eq!(name(&"a".repeat(63)).as_str().len(), 63);
        let max = [&"a".repeat(63)[..]; 4]
            .join(".")
            .get(..253)
            .map(str::to_owned);
        let max = max.expect("253 characters");
        assert!(!max.ends_with('.'));
        assert_eq!(name(&max).as_str().len(), 253);
        assert_eq!(
            HostName::new(&format!("{max}.")).map(|n| n.as_str().len()),
            Ok(253)
        );
        assert!(matches!(
            HostName::new(&format!("{max}a")),
            Err(E::NameTooLong { len: 254, .. })
        ));
        assert_eq!(HostName::new(""), Err(E::Empty));
        assert!(matches!(HostName::new("."), Err(E::EmptyLabel { .. })));
        assert!(matches!(
            HostName::new("a_b.com"),
            Err(E::InvalidCharacter {
                character: '_',
                position: 1,
                ..
            })
        ));
        assert!(matches!(
            HostName::new("ab-.com"),
            Err(E::HyphenAtLabelEdge { .. })
        ));
        assert!(matches!(
            HostName::new("192.0.2.1"),
            Err(E::NumericTopLevelLabel { .. })
        ));
        assert_eq!(
            "Example.org".parse::<HostName>().map(|n| n.to_string()),
            Ok("example.org".into())
        );
    }

    #[test]
    fn builders_follow_rfc_9622_identifiers() -> Result<(), E> {
        let r = RemoteEndpoint::new()
            .with_host_name("Example.com")?
            .with_service("HTTPS")
            .with_protocol(Protocol::Tcp);
        assert_eq!(r.host, Some(Host::Name(name("example.com"))));
        assert_eq!(r.service.as_deref(), Some("https"));
        assert_eq!(r.effective_port(), Some(443));
        assert_eq!(r.clone().with_port(8443).effective_port(), Some(8443));
        assert_eq!(r.to_string(), "tcp://example.com:https");

        // A second identifier of a type replaces the first.
        let r = r.with_ip("192.0.2.1".parse().map_err(|_| E::Empty)?);
        assert_eq!(r.host, ip("192.0.2.1"));

        let sdn = RemoteEndpoint::new().with_host_name("myserver._http._tcp.local")?;
        assert_eq!(
            sdn.host,
            sd(Some("myserver"), "http", ServiceTransport::Tcp, "local")
        );
        let v6 = RemoteEndpoint::new().with_host_name("2001:db8::1")?;
        assert_eq!(v6.host, ip("2001:db8::1"));
        assert!(RemoteEndpoint::new().with_host_name("").is_err());
        assert!(RemoteEndpoint::new().with_host_name("*").is_err());
        assert!(RemoteEndpoint::new().with_host_name("bad name").is_err());

        let l = LocalEndpoint::new().with_interface("en0").with_port(443);
        assert_eq!(l.to_string(), "*:443%en0");
        assert_eq!("*:443%en0".parse::<LocalEndpoint>(), Ok(l.clone()));
        assert_eq!(l.effective_port(), Some(443));
        assert_eq!(LocalEndpoint::new().effective_port(), None);
        assert_eq!(LocalEndpoint::new().to_string(), "*");
        assert_eq!(
            LocalEndpoint::new()
                .with_host(Host::Name(name("a.example")))
                .with_service("ssh")
                .effective_port(),
            Some(22)
        );
        Ok(())
    }

    #[test]
    fn effective_port_table() {
        let port = |s: &str| RemoteEndpoint::new().with_service(s).effective_port();
        assert_eq!(port("http"), Some(80));
        assert_eq!(port("https"), Some(443));
        assert_eq!(port("ssh"), Some(22));
        assert_eq!(port("smtp"), Some(25));
        assert_eq!(port("submission"), Some(587));
        assert_eq!(port("imaps"), Some(993));
        assert_eq!(port("dns"), Some(53));
        assert_eq!(port("domain"), Some(53));
        assert_eq!(port("no-such-thing"), None);
        assert_eq!(RemoteEndpoint::new().effective_port(), None);
        assert_eq!(well_known_port("HTTP"), Some(80));
    }

    #[test]
    fn dns_sd_service_type() {
        let sd = DnsSdName {
            instance: Some("x".into()),
            service: "http".into(),
            transport: ServiceTransport::Udp,
            domain: name("local"),
        };
        assert_eq!(
            sd.service_type().map(|n| n.to_string()),
            Ok("_http._udp.local".into())
        );
    }

    // --- property tests ---

    fn host_label() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?"
    }

    fn host_name() -> impl Strategy<Value = HostName> {
        // The first two labels stay free of `_` (or the name would read as
        // DNS-SD) and the last is not all digits (or it would be an address).
        let any_label = || prop_oneof![host_label(), "_[a-z0-9]{1,10}"];
        (
            host_label(),
            prop::option::of((host_label(), prop::collection::vec(any_label(), 0..3))),
            "[a-z][a-z0-9]{0,5}",
        )
            .prop_filter_map("fits in 253", |(first, middle, last)| {
                let mut labels = vec![first];
                if let Some((second, rest)) = middle {
                    labels.push(second);
                    labels.extend(rest);
                }
                labels.push(last);
                HostName::new(&labels.join(".")).ok()
            })
    }

    fn service_name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,6})?"
    }

    fn dns_sd_name() -> impl Strategy<Value = DnsSdName> {
        (
            prop::option::of("\\PC{1,20}".prop_filter("63 bytes", |s: &String| s.len() <= 63)),
            service_name(),
            prop_oneof![Just(ServiceTransport::Tcp), Just(ServiceTransport::Udp)],
            host_name(),
        )
            .prop_map(|(instance, service, transport, domain)| DnsSdName {
                instance,
                service,
                transport,
                domain,
            })
    }

    fn host() -> impl Strategy<Value = Host> {
        prop_oneof![
            host_name().prop_map(Host::Name),
            any::<IpAddr>().prop_map(Host::Ip),
            dns_sd_name().prop_map(Host::Service),
        ]
    }

    fn protocol() -> impl Strategy<Value = Protocol> {
        prop_oneof![
            Just(Protocol::Tcp),
            Just(Protocol::Udp),
            Just(Protocol::Quic)
        ]
    }

    fn remote_endpoint() -> impl Strategy<Value = RemoteEndpoint> {
        (
            prop::option::of(host()),
            prop::option::of(any::<u16>()),
            prop::option::of(service_name()),
            prop::option::of("[a-zA-Z0-9._:/-]{1,15}"),
            prop::option::of(protocol()),
        )
            .prop_map(
                |(host, port, service, interface, protocol)| RemoteEndpoint {
                    host,
                    port,
                    service,
                    interface,
                    protocol,
                },
            )
    }

    /// Text near the grammar: a valid endpoint with one character replaced,
    /// inserted or deleted, or text from the grammar's own alphabet, so that
    /// the parser's corners are reached far more often than by uniform text.
    fn endpointish() -> impl Strategy<Value = String> {
        let mutated = (
            remote_endpoint(),
            any::<prop::sample::Index>(),
            prop::sample::select(vec![
                ':', '%', '[', ']', '.', '\\', '_', '*', '=', '/', ' ', '9', 'x',
            ]),
            0..3u8,
        )
            .prop_map(|(endpoint, at, c, op)| {
                let mut chars: Vec<char> = endpoint.to_string().chars().collect();
                let at = at.index(chars.len() + 1);
                match op {
                    0 if at < chars.len() => chars[at] = c,
                    1 => chars.insert(at, c),
                    _ if at < chars.len() => {
                        chars.remove(at);
                    }
                    _ => {}
                }
                chars.into_iter().collect::<String>()
            });
        prop_oneof![
            any::<String>(),
            mutated,
            "[a-z0-9_.:%\\[\\]*\\\\/= -]{0,30}",
            "(tcp://|quic://)?(\\[[0-9a-f:%.e]{0,12}\\]?)?[0-9a-z:.%_=]{0,12}",
            "([A-Za-z\\\\ .]{1,8}\\.)?_[a-z]{1,5}\\._(tcp|udp|x)\\.?[a-z.]{0,8}(:[0-9a-z=]{0,6})?(%[a-z0-9]{0,3})?",
        ]
    }

    proptest! {
        // Cheap per case, and most text is rejected early, so run more cases.
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn arbitrary_text_never_panics_and_round_trips(text in endpointish()) {
            if let Ok(parsed) = text.parse::<RemoteEndpoint>() {
                let shown = parsed.to_string();
                prop_assert_eq!(shown.parse::<RemoteEndpoint>(), Ok(parsed), "via `{}`", shown);
            }
            if let Ok(parsed) = text.parse::<LocalEndpoint>() {
                let shown = parsed.to_string();
                prop_assert_eq!(shown.parse::<LocalEndpoint>(), Ok(parsed), "via `{}`", shown);
            }
            let _ = HostName::new(&text);
        }

        #[test]
        fn generated_endpoints_round_trip(endpoint in remote_endpoint()) {
            let shown = endpoint.to_string();
            prop_assert_eq!(shown.parse::<RemoteEndpoint>(), Ok(endpoint.clone()), "via `{}`", shown);
            let local = LocalEndpoint {
                host: endpoint.host,
                port: endpoint.port,
                service: endpoint.service,
                interface: endpoint.interface,
                protocol: endpoint.protocol,
            };
            prop_assert_eq!(local.to_string(), shown.clone());
            prop_assert_eq!(shown.parse::<LocalEndpoint>(), Ok(local));
        }
    }
}
