//! CONTRACT STUB (to be replaced by the endpoint helper).
use core::fmt;
use std::net::IpAddr;

/// A validated DNS host name: lowercase ASCII, no trailing dot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostName(Box<str>);
impl HostName {
    /// Validates and normalises `text`.
    pub fn new(text: &str) -> Result<Self, EndpointParseError> { todo!("{text}") }
    /// The name.
    pub fn as_str(&self) -> &str { &self.0 }
    #[doc(hidden)] pub fn from_validated(s: &str) -> Self { HostName(s.to_ascii_lowercase().trim_end_matches('.').into()) }
}
/// DNS-SD transport label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceTransport { /// `_tcp`
 Tcp, /// `_udp`
 Udp }
/// A DNS-SD (RFC 6763) service name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DnsSdName {
    /// Instance label (`myserver`), absent for a service type to browse.
    pub instance: Option<String>,
    /// Service label without underscore (`http`).
    pub service: String,
    /// `_tcp` or `_udp`.
    pub transport: ServiceTransport,
    /// Domain (`local`, `example.com`).
    pub domain: HostName,
}
/// Protocol an endpoint is scoped to (RFC 9622 §6.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol { /// TCP
 Tcp, /// UDP
 Udp, /// QUIC
 Quic }
/// Where the endpoint is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host { /// A name to resolve.
 Name(HostName), /// An address literal.
 Ip(IpAddr), /// A DNS-SD service.
 Service(DnsSdName) }
/// RFC 9622 §6.1 remote endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RemoteEndpoint {
    /// Host.
    pub host: Option<Host>,
    /// Port.
    pub port: Option<u16>,
    /// Service name mapping to a port (`https`).
    pub service: Option<String>,
    /// Interface name.
    pub interface: Option<String>,
    /// Protocol scope.
    pub protocol: Option<Protocol>,
}
/// RFC 9622 §6.1 local endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LocalEndpoint {
    /// Host.
    pub host: Option<Host>,
    /// Port.
    pub port: Option<u16>,
    /// Service name mapping to a port.
    pub service: Option<String>,
    /// Interface name.
    pub interface: Option<String>,
    /// Protocol scope.
    pub protocol: Option<Protocol>,
}
impl RemoteEndpoint {
    /// Port from `port` or from `service`.
    pub fn effective_port(&self) -> Option<u16> { todo!() }
}
/// Parse error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointParseError { /// x
 Empty }
impl fmt::Display for EndpointParseError { fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { write!(f, "{self:?}") } }
impl std::error::Error for EndpointParseError {}
impl std::str::FromStr for RemoteEndpoint { type Err = EndpointParseError; fn from_str(s: &str) -> Result<Self, Self::Err> { todo!("{s}") } }
impl fmt::Display for RemoteEndpoint { fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result { todo!() } }
