//! The machine: one sans-IO state machine that owns every connection,
//! attempt, socket, listener, DNS transaction and timer of one stack
//! instance (ARCHITECTURE.md "The core contract"; RFC 9623 §4 establishment, §5
//! data transfer, §4.4 listeners).
//!
//! ```text
//! machine.initiate(now, &preconnection)   // app command → ConnectionId
//! machine.handle(now, Input)              // the world speaks
//! while let Some(out) = machine.poll() {} // drain after EVERY call
//! machine.poll_timeout()                  // next deadline
//! machine.handle_timeout(now)             // early or twice is harmless
//! ```
//!
//! Every output that expects an answer carries the id the answer must quote
//! (a [`SocketId`], [`DnsTxnId`] or [`ListenerId`]); inputs naming stale ids
//! are ignored and counted in [`Stats::stale_inputs`]. Application commands
//! (`initiate`, `send`, `receive`, `close`, `listen`, ...) are methods because
//! they return ids or errors at once.
//!
//! The work is split by concern: `establish` (resolution and racing),
//! `io` (sockets, transmit and receive, messages, close and abort), and
//! `listen` (listeners and accepted connections).
//!
//! **Adapter contract.** `OpenTcp` asks for a non-blocking connect; answer
//! with `SocketConnected` or `SocketFailed`. `Transmit` says a socket has
//! bytes to write: write [`Machine::transmit_data`] and report
//! [`Machine::transmitted`] until it is empty or the socket would block,
//! then resume when it is writable. Read no more than
//! [`Machine::read_capacity`] bytes at a time and pass them in
//! `SocketData`; a capacity of 0 means pause until `ResumeReading`. Every
//! `OpenTcp` and every accepted socket ends with exactly one `CloseSocket` or
//! `AbortSocket`. `ShutdownWrite` comes after the last `Transmit` bytes: write
//! them, then shut the write side down (FIN).

mod checkout;
mod establish;
mod io;
mod listen;
mod memory;
mod nat64;
mod view;

use core::fmt;
use core::time::Duration;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;

use smallvec::SmallVec;

use crate::connection::{ConnIo, IoLimits, MessageId, SendError};
use crate::dns::config::HostsFile;
use crate::dns::lookup::{AliasChain, NameSearch};
use crate::dns::wire::QueryType;
use crate::dns::{DnsAction, DnsConfig, Resolver, cache::Cache};
use crate::endpoint::{Host, HostName, LocalEndpoint, Protocol, RemoteEndpoint};
use crate::id::{ConnectionId, DnsTxnId, ListenerId, SocketId, Table};
use crate::interface::Interface;
use crate::path::PathError;
use crate::properties::{PropertyConflict, TransportProperties, ZeroRttOutcome};
use crate::race::history::{History, HistoryConfig};
use crate::race::{CandidateId, Race, RaceConfig, RaceFailure};
use crate::rng::Rng;
use crate::security::SecurityParameters;
use crate::socket_options::{AppliedTcpOptions, TcpSocketOptions};
use crate::stack::Stack;
use crate::stack::framer::FramerFactory;
use crate::stack::tls::{ClientTls, TlsConfigError};
use crate::time::Instant;
use crate::trace::{DnsOutcome, FailureReason, LocalSource, Trace, TraceKind};

pub use checkout::{CheckedOutTls, TlsCheckout, TlsRead};
pub use io::ReceiveError;
pub use listen::{AcceptError, ListenError, ListenerConfig};
pub use memory::{MemoryView, Restored};
pub use view::{ConnectionInfo, ConnectionView, ListenerView, SocketView};

/// Settings of one machine.
///
/// [`Config::new`] knows nothing of the system it runs on: no DNS servers,
/// no hosts file, no TLS environment. On a real system, start from
/// `taps_sys::system_config()`, which fills those in from resolv.conf,
/// the hosts file and the OS (the core cannot read files); the interfaces
/// then come in as [`Input::InterfacesChanged`]
/// (`taps_sys::interfaces::list_interfaces()`).
#[derive(Clone, Debug)]
pub struct Config {
    /// Seed of the machine's shuffles, and of DNS ids when [`Config::tls`]
    /// is `None`.
    pub seed: u64,
    /// Default racing settings; a preconnection may override them.
    pub race: RaceConfig,
    /// DNS servers and timing.
    pub dns: DnsConfig,
    /// Parsed hosts file, consulted before DNS.
    pub hosts: HostsFile,
    /// History bounds and lifetimes.
    pub history: HistoryConfig,
    /// Bound on live connections. Default 65 536.
    pub max_connections: usize,
    /// Per-connection buffer and queue bounds.
    pub io: IoLimits,
    /// How long a closing connection waits for the peer's FIN after its
    /// own. Default 2 s.
    pub close_timeout: Duration,
    /// How long an accepted connection may take to finish its TLS and framer
    /// handshakes before the listener drops it. Default 10 s.
    pub handshake_timeout: Duration,
    /// The network's NAT64 prefix, when the embedder knows it (its own
    /// configuration). `None` (the default): learned from a Router
    /// Advertisement ([`Input::Pref64`], RFC 8781) or discovered with an
    /// AAAA query for `ipv4only.arpa` (RFC 7050) when a connection starts
    /// on an IPv6-only path (HEv3 §8.1). This one wins over both.
    pub pref64: Option<crate::nat64::Pref64>,
    /// Where TLS takes its cryptography, randomness and clock from. `None`
    /// (the default): TLS is refused with an error that says so; `taps-io`
    /// fills in the system's, the simulator a seeded one.
    pub tls: Option<crate::security::TlsEnvironment>,
}

impl Config {
    /// The defaults of every setting, with `seed` for every random choice.
    /// DNS query ids come from the TLS environment's secure random source
    /// (RFC 5452 §9.2), from the seed only when there is no environment; in
    /// a simulation or test, a fixed seed and a seeded environment make the
    /// run repeat exactly.
    pub fn new(seed: u64) -> Self {
        Config {
            seed,
            race: RaceConfig::default(),
            dns: DnsConfig::default(),
            hosts: HostsFile::default(),
            history: HistoryConfig::default(),
            max_connections: 65_536,
            io: IoLimits::default(),
            close_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(10),
            pref64: None,
            tls: None,
        }
    }
}

/// What the application wants: RFC 9622 §6 preconnection.
#[derive(Clone, Debug)]
pub struct Preconnection {
    /// Where to connect.
    pub remote: RemoteEndpoint,
    /// Local constraints (interface, address).
    pub local: Option<LocalEndpoint>,
    /// Selection and connection properties.
    pub properties: TransportProperties,
    /// TLS, when wanted. Verification is on unless explicitly disabled.
    pub security: Option<SecurityParameters>,
    /// A message framer for every attempt (RFC 9622 §9.1.2).
    pub framer: Option<FramerFactory>,
    /// Racing settings for this connection; `None`: the machine's.
    pub race: Option<RaceConfig>,
}

impl Preconnection {
    /// A preconnection to `remote` with default properties and no TLS.
    pub fn new(remote: RemoteEndpoint) -> Self {
        Preconnection {
            remote,
            local: None,
            properties: TransportProperties::default(),
            security: None,
            framer: None,
            race: None,
        }
    }

    /// Replaces the transport properties.
    pub fn with_properties(mut self, properties: TransportProperties) -> Self {
        self.properties = properties;
        self
    }

    /// Replaces the racing settings.
    pub fn with_race(mut self, race: RaceConfig) -> Self {
        self.race = Some(race);
        self
    }

    /// Sets the local endpoint.
    pub fn with_local(mut self, local: LocalEndpoint) -> Self {
        self.local = Some(local);
        self
    }

    /// Uses TLS with these parameters.
    pub fn with_security(mut self, security: SecurityParameters) -> Self {
        self.security = Some(security);
        self
    }

    /// Frames messages with this framer.
    pub fn with_framer(mut self, framer: FramerFactory) -> Self {
        self.framer = Some(framer);
        self
    }
}

/// Why `initiate` refused at once.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitiateError {
    /// The remote endpoint names no host or address.
    NoHost,
    /// The remote endpoint has neither a port nor a known service.
    NoPort,
    /// DNS-SD service endpoints parse, but are not resolved yet.
    ServiceResolutionUnsupported,
    /// The properties ask for something TCP cannot give.
    Properties(PropertyConflict),
    /// The remote endpoint is scoped to a protocol taps cannot run yet
    /// (`udp://`, `quic://`): refused rather than connected over TCP,
    /// which the endpoint excludes (RFC 9622 §6.1.3).
    ProtocolUnsupported(Protocol),
    /// No path satisfies the interface requirements.
    Path(PathError),
    /// The security parameters cannot make a TLS configuration.
    Tls(TlsConfigError),
    /// `max_connections` are live.
    TooManyConnections(usize),
    /// The first message of `initiate_with_send` was refused.
    Send(SendError),
}

impl fmt::Display for InitiateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitiateError::NoHost => {
                f.write_str("the remote endpoint has no host name or IP address")
            }
            InitiateError::NoPort => {
                f.write_str("the remote endpoint has no port and no service that maps to one")
            }
            InitiateError::ServiceResolutionUnsupported => f.write_str(
                "DNS-SD service endpoints cannot be resolved yet; give a host name or address",
            ),
            InitiateError::Properties(c) => write!(f, "{c}"),
            InitiateError::ProtocolUnsupported(p) => write!(
                f,
                "the remote endpoint is scoped to {p} ({p}://), which taps cannot run yet; \
                 only TCP (with TLS) is supported, and it is not used in {p}'s place"
            ),
            InitiateError::Path(e) => write!(f, "{e}"),
            InitiateError::Tls(e) => write!(f, "{e}"),
            InitiateError::TooManyConnections(n) => {
                write!(f, "the machine already holds its limit of {n} connections")
            }
            InitiateError::Send(e) => write!(f, "the first message: {e}"),
        }
    }
}

impl std::error::Error for InitiateError {}

/// Something the world reports to the machine.
#[derive(Debug)]
#[non_exhaustive]
pub enum Input<'a> {
    /// A datagram arrived on a DNS transaction's socket.
    DnsDatagram {
        /// The transaction the socket serves.
        txn: DnsTxnId,
        /// Its source address.
        from: SocketAddr,
        /// Its bytes.
        payload: &'a [u8],
    },
    /// Bytes arrived on a DNS transaction's TCP connection.
    DnsStreamData {
        /// The transaction.
        txn: DnsTxnId,
        /// The bytes, in stream order.
        data: &'a [u8],
    },
    /// A DNS transaction's send failed or its TCP connection failed or closed.
    DnsTransportFailed {
        /// The transaction.
        txn: DnsTxnId,
    },
    /// What became of the [`TcpSocketOptions`] an `OpenTcp` asked for:
    /// a Connection's properties read back what its socket has.
    SocketOptionsApplied {
        /// The socket.
        socket: SocketId,
        /// Each option's result.
        applied: AppliedTcpOptions,
    },
    /// A socket's connect completed.
    SocketConnected {
        /// The socket.
        socket: SocketId,
    },
    /// Bytes arrived on a socket (no more than `read_capacity` allowed).
    SocketData {
        /// The socket.
        socket: SocketId,
        /// The bytes, in stream order.
        data: &'a [u8],
    },
    /// The peer closed its side (read returned 0).
    SocketEof {
        /// The socket.
        socket: SocketId,
    },
    /// A socket's connect failed, or an established socket broke.
    SocketFailed {
        /// The socket.
        socket: SocketId,
        /// Why.
        reason: FailureReason,
    },
    /// A listening socket could not be opened or broke.
    ListenFailed {
        /// The listener.
        listener: ListenerId,
        /// Why.
        reason: FailureReason,
    },
    /// The socket took `len` bytes of its
    /// [`transmit_data`](SocketView::transmit_data).
    Transmitted {
        /// The socket.
        socket: SocketId,
        /// How many bytes it took.
        len: usize,
    },
    /// `len` stream bytes of `conn` went straight to its socket (see
    /// [`ConnectionInfo::write_through`](crate::ConnectionInfo::write_through)): they count as written and
    /// transmitted.
    WroteThrough {
        /// The connection.
        conn: ConnectionId,
        /// How many bytes the socket took.
        len: usize,
    },
    /// A session checked out with [`ConnectionView::check_out_tls`] comes
    /// back, with what its read or write did: records written count as
    /// transmitted, records left over go to the transmit queue
    /// (`Transmit`), ciphertext read but not yet decrypted and plaintext
    /// beyond the caller's buffer go to the receive side, and the end of
    /// the peer's data or a TLS failure is handled as if the socket's loop
    /// had met it. A session whose socket is gone meanwhile is dropped.
    TlsCheckIn(CheckedOutTls),
    /// The interface list changed (the adapter's path monitor); attempts
    /// on interfaces that went down or vanished fail, and later paths take
    /// over. The list is primary first: its order breaks ties between
    /// equally preferred paths ([`derive_paths`](crate::derive_paths)), so
    /// the adapter puts first the interface the system sends by (taps-sys:
    /// the one with the default route), and a new order alone is a change.
    InterfacesChanged(Vec<Interface>),
    /// The kernel's per-destination TCP metrics (Linux `tcp_metrics`), as
    /// they stand now: HEv3 §6's Connection Attempt Delay uses their RTT
    /// for destinations this machine has no handshakes to (see
    /// [`History::attempt_rtt`](crate::race::History::attempt_rtt)). The
    /// adapter reports them when it starts and when the interfaces change;
    /// races already sorted keep the delays they chose.
    KernelRtts(&'a [crate::race::KernelRtt]),
    /// The PREF64 option (RFC 8781) of a Router Advertisement: the network's
    /// NAT64 prefix, or `None` when its lifetime ran out. It wins over
    /// discovery (HEv3 §8.1) and applies to races already running.
    Pref64(Option<crate::nat64::Pref64>),
}

/// Something the machine wants done or said.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// A DNS action: send a query or release a transaction's socket.
    Dns(DnsAction),
    /// Open a TCP socket and connect it; answer with `SocketConnected` or
    /// `SocketFailed` quoting `socket`.
    OpenTcp {
        /// The id to quote.
        socket: SocketId,
        /// Where to.
        remote: SocketAddr,
        /// Bind to this interface (`SO_BINDTODEVICE`); `None`: any.
        interface: Option<u32>,
        /// Bind to this local address, when the application gave one.
        local: Option<SocketAddr>,
        /// Use TCP Fast Open: the first `transmit_data` bytes may ride in
        /// the SYN (`TCP_FASTOPEN_CONNECT`).
        fast_open: bool,
        /// Keep-alive and user timeout, from the Connection's properties;
        /// unless they are plain, answer with `SocketOptionsApplied`.
        options: TcpSocketOptions,
    },
    /// The socket has bytes to write: see [`SocketView::transmit_data`](crate::SocketView::transmit_data).
    Transmit {
        /// The socket.
        socket: SocketId,
    },
    /// After writing every pending byte, shut down the write side (FIN).
    ShutdownWrite {
        /// The socket.
        socket: SocketId,
    },
    /// Reading may resume: `read_capacity` is above 0 again.
    ResumeReading {
        /// The socket.
        socket: SocketId,
    },
    /// Close the socket gracefully and free what it holds.
    CloseSocket {
        /// The socket.
        socket: SocketId,
    },
    /// Close the socket with a reset (`SO_LINGER` 0), for `abort`.
    AbortSocket {
        /// The socket.
        socket: SocketId,
    },
    /// Listen on `local`; report accepted sockets with [`ListenerView::accept`](crate::ListenerView::accept).
    Listen {
        /// The listener.
        listener: ListenerId,
        /// The address to bind.
        local: SocketAddr,
        /// Set `IPV6_V6ONLY` (the listener also has an IPv4 socket).
        v6_only: bool,
    },
    /// Close the listener's listening sockets.
    StopListening {
        /// The listener.
        listener: ListenerId,
    },
    /// Tell the application.
    Event(Event),
}

/// What the application hears (RFC 9622 §7-§11). Per connection, events
/// come in the order RFC 9622 promises: nothing before `Ready` (or
/// `ConnectionReceived`) but `EstablishmentError`, and nothing after
/// `Closed`, `EstablishmentError` or `ConnectionError`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The connection is established over `socket`.
    Ready {
        /// The connection.
        conn: ConnectionId,
        /// Its socket.
        socket: SocketId,
        /// The remote address that won: where its socket is connected
        /// (for a NAT64 destination, the synthesized IPv6 address; the
        /// trace's `AttemptStarted` names the IPv4 one, HEv3 §8.3).
        remote: SocketAddr,
        /// The interface it left by (`None`: system default path).
        interface: Option<u32>,
    },
    /// Establishment failed.
    EstablishmentError {
        /// The connection.
        conn: ConnectionId,
        /// Every attempt and why it failed.
        error: EstablishmentError,
    },
    /// A listener has a new, fully established connection.
    ConnectionReceived {
        /// The listener.
        listener: ListenerId,
        /// The new connection.
        conn: ConnectionId,
        /// The peer.
        remote: SocketAddr,
    },
    /// A message was handed to the network.
    Sent {
        /// The connection.
        conn: ConnectionId,
        /// The message.
        message: MessageId,
    },
    /// A message's lifetime lapsed before it could be sent.
    Expired {
        /// The connection.
        conn: ConnectionId,
        /// The message.
        message: MessageId,
    },
    /// A message could not be sent.
    SendError {
        /// The connection.
        conn: ConnectionId,
        /// The message.
        message: MessageId,
        /// Why.
        error: SendError,
    },
    /// A whole message (answering one `receive`).
    Received {
        /// The connection.
        conn: ConnectionId,
        /// The message.
        data: Vec<u8>,
    },
    /// Part of a message, or stream bytes (answering one `receive`).
    ReceivedPartial {
        /// The connection.
        conn: ConnectionId,
        /// The bytes.
        data: Vec<u8>,
        /// This part ends the message (for a stream: the peer closed).
        end_of_message: bool,
    },
    /// Data waits and no `receive` is pending: `read` it (stream use).
    Readable {
        /// The connection.
        conn: ConnectionId,
    },
    /// Back-pressure is over: `send` or `write` again.
    Writable {
        /// The connection.
        conn: ConnectionId,
    },
    /// The connection broke, or was aborted.
    ConnectionError {
        /// The connection.
        conn: ConnectionId,
        /// Why.
        reason: FailureReason,
    },
    /// RFC 9622 §8.3.2 `PathChange`: the path under an established
    /// connection changed: its interface went down or came back, or its
    /// MTU or addresses changed.
    PathChange {
        /// The connection.
        conn: ConnectionId,
        /// The connection's interface.
        interface: u32,
    },
    /// RFC 9622 §8.3.1 `SoftError`: something went wrong on the
    /// connection's path that does not end the connection (TCP carries on
    /// and may recover): its interface went down (what an ICMP "network
    /// unreachable" would tell, reported before any packet is lost).
    SoftError {
        /// The connection.
        conn: ConnectionId,
        /// What.
        reason: FailureReason,
    },
    /// The connection is closed; nothing follows.
    Closed {
        /// The connection.
        conn: ConnectionId,
    },
    /// An accepted connection failed before it was established (its TLS
    /// handshake, framer handshake or handshake deadline): it is never
    /// delivered, and the listener keeps listening. This says why, so a
    /// server can log it. No connection id: the application never had one.
    HandshakeFailed {
        /// The listener that accepted it.
        listener: ListenerId,
        /// The peer.
        remote: SocketAddr,
        /// Why.
        reason: FailureReason,
    },
    /// A listening socket failed.
    ListenerError {
        /// The listener.
        listener: ListenerId,
        /// Why.
        reason: FailureReason,
    },
    /// The listener stopped; it delivers nothing more.
    Stopped {
        /// The listener.
        listener: ListenerId,
    },
}

impl Event {
    /// The connection the event is about, if any.
    pub fn connection(&self) -> Option<ConnectionId> {
        match self {
            Event::Ready { conn, .. }
            | Event::EstablishmentError { conn, .. }
            | Event::ConnectionReceived { conn, .. }
            | Event::Sent { conn, .. }
            | Event::Expired { conn, .. }
            | Event::SendError { conn, .. }
            | Event::Received { conn, .. }
            | Event::ReceivedPartial { conn, .. }
            | Event::Readable { conn }
            | Event::Writable { conn }
            | Event::ConnectionError { conn, .. }
            | Event::PathChange { conn, .. }
            | Event::SoftError { conn, .. }
            | Event::Closed { conn } => Some(*conn),
            Event::ListenerError { .. } | Event::HandshakeFailed { .. } | Event::Stopped { .. } => {
                None
            }
        }
    }
}

/// Why a stream `read` or `write` could not proceed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamError {
    /// Nothing to read yet / no room to write: wait for `Readable` or
    /// `Writable`.
    WouldBlock,
    /// The connection is not established (yet, or any more).
    NotEstablished,
    /// The connection id is unknown or freed.
    UnknownConnection,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StreamError::WouldBlock => "nothing to read or no room to write yet",
            StreamError::NotEstablished => "the connection is not established",
            StreamError::UnknownConnection => "no such connection (unknown or freed id)",
        })
    }
}

impl std::error::Error for StreamError {}

/// How one attempt ended, for [`EstablishmentError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptReport {
    /// Attempt number.
    pub attempt: u16,
    /// Where its socket connected.
    pub remote: SocketAddr,
    /// The IPv4 destination `remote` was synthesized from (NAT64, HEv3
    /// §8.3).
    pub nat64: Option<std::net::Ipv4Addr>,
    /// Which interface (`None`: system default).
    pub interface: Option<u32>,
    /// The interface's name, when the machine knew it.
    pub interface_name: Option<String>,
    /// Start, from initiate.
    pub started: Duration,
    /// End, from initiate.
    pub ended: Duration,
    /// Why it ended (`None`: cancelled).
    pub failure: Option<FailureReason>,
}

impl fmt::Display for AttemptReport {
    /// One line of the failure list: `192.0.2.1:443 via eth0: TCP:
    /// connection refused after 3 ms`. The layer is named because in a list
    /// of attempts "TLS" versus "TCP" is what tells a bad certificate from a
    /// dead host.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = crate::trace::AttemptAddr {
            remote: self.remote,
            nat64: self.nat64,
        };
        write!(f, "{addr}")?;
        match (&self.interface_name, self.interface) {
            (Some(name), _) => write!(f, " via {name}")?,
            (None, Some(i)) => write!(f, " via if#{i}")?,
            (None, None) => {}
        }
        f.write_str(": ")?;
        match self.failure {
            None => f.write_str("cancelled")?,
            Some(FailureReason::Tls(t)) => write!(f, "TLS: {t}")?,
            Some(FailureReason::Framing(x)) => write!(f, "framer: {x}")?,
            // Not a layer's failure: the whole connection's (its timeout,
            // its path, the application).
            Some(
                r @ (FailureReason::ConnTimeout
                | FailureReason::InterfaceDown
                | FailureReason::LocalAbort),
            ) => write!(f, "{r}")?,
            Some(r) => write!(f, "TCP: {r}")?,
        }
        write!(
            f,
            " after {} ms",
            self.ended.saturating_sub(self.started).as_millis()
        )
    }
}

/// What one DNS question came to, for [`EstablishmentError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsReport {
    /// Record type.
    pub qtype: QueryType,
    /// What it came to.
    pub outcome: DnsOutcome,
    /// The server asked last (`None`: answered locally, or never sent).
    pub server: Option<SocketAddr>,
    /// Answered without a query, and from where.
    pub local: Option<LocalSource>,
}

impl fmt::Display for DnsReport {
    /// `NXDOMAIN from 10.0.0.1`: the outcome and who said so (the port only
    /// when it is not 53).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.outcome {
            DnsOutcome::NoData => f.write_str("no address records")?,
            o => write!(f, "{o}")?,
        }
        let Some(server) = self.server else {
            return Ok(());
        };
        let word = match self.outcome {
            DnsOutcome::Timeout | DnsOutcome::TransportFailed | DnsOutcome::Truncated => "asking",
            DnsOutcome::NoServers | DnsOutcome::NoRandomness => return Ok(()),
            _ => "from",
        };
        if server.port() == 53 {
            write!(f, " {word} {}", server.ip())
        } else {
            write!(f, " {word} {server}")
        }
    }
}

/// RFC 9622 §7.1 `EstablishmentError`: why, and what every attempt did.
///
/// Its Display reads like curl's: a headline naming the host, the port and
/// the time taken, then one line per attempt when there was more than one
/// (address, interface, layer, cause). DNS is named only when DNS was the
/// cause; the whole story (every DNS transaction) is in the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EstablishmentError {
    /// The overall reason.
    pub reason: RaceFailure,
    /// The host as the application named it: a name or an address literal.
    pub host: Host,
    /// The port connected to.
    pub port: u16,
    /// From initiate to the failure.
    pub elapsed: Duration,
    /// The DNS questions and what they came to (a `Vec`: inline they
    /// would make every `Event` large).
    pub dns: Vec<DnsReport>,
    /// Every attempt.
    pub attempts: Vec<AttemptReport>,
}

impl EstablishmentError {
    pub(crate) fn from_trace(
        reason: RaceFailure,
        trace: &Trace,
        now: Instant,
        (host, port): (Host, u16),
        interface_name: &dyn Fn(u32) -> Option<String>,
    ) -> Self {
        let mut dns: Vec<DnsReport> = Vec::with_capacity(3);
        let mut asked: SmallVec<[(QueryType, SocketAddr); 3]> = SmallVec::new();
        let mut attempts: Vec<AttemptReport> = Vec::new();
        let since = |t: Instant| t.saturating_duration_since(trace.start);
        for e in &trace.events {
            match e.kind {
                TraceKind::DnsQuery { qtype, server, .. }
                | TraceKind::DnsJoined { qtype, server } => {
                    asked.retain(|(q, _)| *q != qtype);
                    asked.push((qtype, server));
                }
                // The search list moved on: the earlier name's answers
                // are not why this lookup failed, the last name's are.
                TraceKind::DnsName {
                    step: crate::trace::NameStep::Search { .. },
                    ..
                } => dns.clear(),
                TraceKind::DnsAnswer {
                    qtype,
                    outcome,
                    local,
                } => dns.push(DnsReport {
                    qtype,
                    outcome,
                    server: asked.iter().find(|(q, _)| *q == qtype).map(|(_, s)| *s),
                    local,
                }),
                TraceKind::AttemptStarted {
                    attempt,
                    remote,
                    interface,
                    nat64,
                } => attempts.push(AttemptReport {
                    attempt,
                    remote,
                    nat64,
                    interface,
                    interface_name: interface.and_then(interface_name),
                    started: since(e.at),
                    ended: since(e.at),
                    failure: None,
                }),
                _ => {}
            }
            let end = match e.kind {
                TraceKind::AttemptFailed { attempt, reason } => Some((attempt, Some(reason))),
                TraceKind::AttemptCancelled { attempt } => Some((attempt, None)),
                _ => None,
            };
            let ended =
                end.and_then(|(n, f)| attempts.iter_mut().find(|a| a.attempt == n).map(|a| (a, f)));
            if let Some((a, failure)) = ended {
                a.ended = since(e.at);
                a.failure = failure;
            }
        }
        EstablishmentError {
            reason,
            host,
            port,
            elapsed: since(now),
            dns,
            attempts,
        }
    }

    /// Whether DNS is what failed: a name (never a literal) with nothing
    /// tried, because no address came back or connTimeout passed first.
    fn dns_was_the_cause(&self) -> bool {
        matches!(self.host, Host::Name(_))
            && self.attempts.is_empty()
            && matches!(self.reason, RaceFailure::NoAddresses | RaceFailure::Timeout)
    }
}

impl fmt::Display for EstablishmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.elapsed.as_millis();
        if self.dns_was_the_cause() {
            write!(f, "could not resolve host {}: ", self.host)?;
            if self.reason == RaceFailure::Timeout {
                return write!(f, "connTimeout expired after {ms} ms");
            }
            // The address questions only: HTTPS records cannot make an
            // address on their own, so their outcome is not the cause.
            let mut failed = self
                .dns
                .iter()
                .filter(|d| matches!(d.qtype, QueryType::A | QueryType::Aaaa));
            let Some(first) = failed.next() else {
                return f.write_str("no address");
            };
            let rest: SmallVec<[&DnsReport; 2]> = failed.collect();
            // The same answer for both families reads once.
            let same = rest
                .iter()
                .all(|d| d.outcome == first.outcome && d.server == first.server);
            if same {
                return write!(f, "{first}");
            }
            write!(f, "{} {first}", first.qtype)?;
            for d in rest {
                write!(f, ", {} {d}", d.qtype)?;
            }
            return Ok(());
        }
        // curl's headline: the host as given, never its DNS story.
        write!(
            f,
            "failed to connect to {} port {} after {ms} ms",
            self.host, self.port
        )?;
        match (self.reason, self.attempts.as_slice()) {
            (RaceFailure::AllAttemptsFailed, [one]) => {
                return match one.failure {
                    Some(r) => write!(f, ": {r}"),
                    None => f.write_str(": cancelled"),
                };
            }
            (RaceFailure::AllAttemptsFailed, [_, ..]) => f.write_str(":")?,
            (other, _) => write!(f, ": {other}")?,
        }
        for a in &self.attempts {
            write!(f, "\n  {a}")?;
        }
        Ok(())
    }
}

impl std::error::Error for EstablishmentError {}

/// Counters for what the machine ignored or did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Inputs that named an unknown or freed id.
    pub stale_inputs: u64,
    /// Datagrams rejected as DNS answers.
    pub dns_dropped: u64,
    /// DNS transmissions.
    pub dns_sent: u64,
    /// Questions answered from the cache.
    pub cache_hits: u64,
    /// Connection attempts started.
    pub attempts_started: u64,
    /// Attempts that sent early data (TLS 0-RTT or TCP Fast Open).
    pub early_data_attempts: u64,
    /// Accepted sockets refused (limit reached, listener stopped).
    pub accepts_refused: u64,
    /// Accepted connections that failed their handshake.
    pub failed_handshakes: u64,
    /// Connections alive now (establishing, established, closing, or
    /// failed and not yet freed).
    pub live_connections: usize,
    /// Sockets alive now (attempts, established and accepted).
    pub live_sockets: usize,
}

/// Lifecycle (RFC 9622 §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Racing (or, accepted, handshaking).
    Establishing,
    /// Ready.
    Established,
    /// `close` was called; flushing and waiting for the peer.
    Closing,
    /// Over (failed, or broke). Free it with `close`.
    Closed,
}

/// Whether the connection was initiated here or accepted by a listener.
#[derive(Debug)]
enum Role {
    Active(Box<Race>),
    Passive {
        listener: ListenerId,
        trace: Trace,
        remote: SocketAddr,
        deadline: Option<Instant>,
    },
}

#[derive(Debug)]
struct Conn {
    state: ConnectionState,
    role: Role,
    /// The names A and AAAA are asked about: the search list, and the one
    /// being asked now (`None`: an address literal, or accepted).
    search: Option<NameSearch>,
    /// The HTTPS query name when it differs from the search list's current
    /// name (RFC 9460 §9.1 port prefix).
    https_qname: Option<HostName>,
    /// The HTTPS AliasMode chain followed so far (RFC 9460 §3).
    alias: AliasChain,
    /// Outstanding DNS transactions: (name slot, record type, transaction).
    dns: SmallVec<[(u8, QueryType, DnsTxnId); 3]>,
    /// SVCB TargetNames being resolved: name slot `1 + i`.
    targets: SmallVec<[HostName; 2]>,
    /// Running attempts' sockets.
    sockets: SmallVec<[(CandidateId, SocketId); 4]>,
    /// The established socket.
    socket: Option<SocketId>,
    properties: TransportProperties,
    local: Option<SocketAddr>,
    timer: Option<Instant>,
    io: ConnIo,
    tls: Option<ClientTls>,
    server_name: Option<String>,
    framer: Option<FramerFactory>,
    close_deadline: Option<Instant>,
    /// The interface an established connection's path uses (the winning
    /// attempt's), watched for `PathChange` and `SoftError`.
    path_interface: Option<u32>,
    /// Nobody waits for this closing connection's `Closed`
    /// (`Machine::detach`): its close ends once everything is written.
    detached: bool,
    /// A terminal event was emitted: nothing more may follow.
    terminated: bool,
    /// The settled race's outcomes went into the history.
    race_recorded: bool,
    /// The host and port an active connection was asked for, for its
    /// establishment error (`None`: accepted).
    remote: Option<(Host, u16)>,
    /// What became of the first Message's early sending: decided at
    /// initiate when it cannot go early, else when the race is won.
    zero_rtt: ZeroRttOutcome,
}

impl Conn {
    /// The name a query of `qtype` for name `slot` asks about: slot 0 is the
    /// endpoint's host, slot `1 + i` SVCB target `i`.
    fn qname(&self, slot: u8, qtype: QueryType) -> Option<&HostName> {
        match (slot, qtype) {
            (0, QueryType::Https) => self
                .alias
                .current()
                .or(self.https_qname.as_ref())
                .or(self.search.as_ref().map(NameSearch::name)),
            (0, _) => self.search.as_ref().map(NameSearch::name),
            (n, _) => self.targets.get(usize::from(n - 1)),
        }
    }

    fn set_dns(&mut self, slot: u8, qtype: QueryType, txn: Option<DnsTxnId>) {
        self.dns.retain(|(s, q, _)| !(*s == slot && *q == qtype));
        if let Some(txn) = txn {
            self.dns.push((slot, qtype, txn));
        }
    }

    fn race(&self) -> Option<&Race> {
        match &self.role {
            Role::Active(r) => Some(r),
            Role::Passive { .. } => None,
        }
    }

    fn race_mut(&mut self) -> Option<&mut Race> {
        match &mut self.role {
            Role::Active(r) => Some(r),
            Role::Passive { .. } => None,
        }
    }

    fn trace(&self) -> &Trace {
        match &self.role {
            Role::Active(r) => &r.trace,
            Role::Passive { trace, .. } => trace,
        }
    }

    fn trace_mut(&mut self) -> &mut Trace {
        match &mut self.role {
            Role::Active(r) => &mut r.trace,
            Role::Passive { trace, .. } => trace,
        }
    }

    /// The earliest instant this connection has timed work.
    fn deadline(&self) -> Option<Instant> {
        let race = match &self.role {
            Role::Active(r) if self.state == ConnectionState::Establishing => r.poll_timeout(),
            Role::Passive { deadline, .. } if self.state == ConnectionState::Establishing => {
                *deadline
            }
            _ => None,
        };
        let io = if matches!(
            self.state,
            ConnectionState::Established | ConnectionState::Closing
        ) {
            self.io.next_deadline()
        } else {
            None
        };
        [race, io, self.close_deadline].into_iter().flatten().min()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Conn(ConnectionId),
    Dns(DnsTxnId),
    /// A lingering socket's last chance (see `Machine::close_after_alert`).
    Linger(SocketId),
}

#[derive(Debug)]
struct Sock {
    conn: ConnectionId,
    /// The options `OpenTcp` asked for, and what the adapter said became
    /// of them.
    options: (TcpSocketOptions, AppliedTcpOptions),
    /// The race candidate, for attempts.
    candidate: Option<CandidateId>,
    stack: Stack,
    /// `Transmit` was output and `tx` has not been empty since.
    announced: bool,
    /// The transport is up (or the socket was accepted).
    connected: bool,
    /// Data may be written before connect (TCP Fast Open).
    fast_open: bool,
    /// `read_capacity` reached 0; `ResumeReading` is owed.
    read_paused: bool,
    /// `ShutdownWrite` was output.
    shut: bool,
    /// Its connection is gone (a failed accepted handshake) and it lives
    /// on only to write its last bytes (the TLS alert that tells the peer
    /// why, RFC 8446 §6.2) until this time at the latest.
    linger_until: Option<Instant>,
}

/// The taps state machine.
#[derive(Debug)]
pub struct Machine {
    config: Config,
    rng: Rng,
    interfaces: Vec<Interface>,
    conns: Table<ConnectionId, Conn>,
    sockets: Table<SocketId, Sock>,
    listeners: Table<ListenerId, listen::Listener>,
    resolver: Resolver,
    cache: Cache,
    history: History,
    /// TLS client configurations by security parameters (bounded, most
    /// recently used last), so sessions resume across connections.
    client_tls: Vec<(SecurityParameters, ClientTls)>,
    /// Record buffers for TLS checkouts, reused (bounded by
    /// `checkout::MAX_POOLED_BUFFERS`).
    tls_buffers: Vec<Vec<u8>>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    outputs: VecDeque<Output>,
    /// Races whose DNS changed since their last decision, with the time of
    /// the change: decided at the next `poll` or timer run, so answers
    /// handled before one drain are decided together (see
    /// `Race::poll_action`).
    undecided: SmallVec<[(ConnectionId, Instant); 2]>,
    /// HEv3 §8: the NAT64 prefix and its discovery.
    nat64: crate::nat64::Nat64State,
    stats: Stats,
}

/// Bound on cached TLS client configurations.
const MAX_TLS_CONFIGS: usize = 16;

impl Machine {
    /// A machine with no interfaces (one default path) and no connections.
    pub fn new(config: Config) -> Self {
        Machine {
            rng: Rng::new(config.seed),
            interfaces: Vec::new(),
            conns: Table::default(),
            sockets: Table::default(),
            listeners: Table::default(),
            resolver: Resolver::new(
                config.dns.clone(),
                config
                    .tls
                    .as_ref()
                    .map(crate::security::TlsEnvironment::secure_random),
            ),
            cache: Cache::new(config.dns.cache_capacity),
            history: History::new(config.history),
            nat64: crate::nat64::Nat64State::new(config.pref64),
            client_tls: Vec::new(),
            tls_buffers: Vec::new(),
            timers: BinaryHeap::new(),
            outputs: VecDeque::new(),
            undecided: SmallVec::new(),
            stats: Stats::default(),
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The interfaces as last reported.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            dns_dropped: self.resolver.dropped,
            dns_sent: self.resolver.sent,
            live_connections: self.conns.len(),
            live_sockets: self.sockets.len(),
            ..self.stats
        }
    }

    /// One connection, borrowed for commands: send, receive, stream
    /// reads and writes, close, abort (see [`ConnectionView`]). The view
    /// of an unknown or freed id refuses its commands, as a stale input.
    pub fn connection(&mut self, id: ConnectionId) -> ConnectionView<'_> {
        ConnectionView { machine: self, id }
    }

    /// What can be read about one connection (state, trace, properties);
    /// `None` for an unknown or freed id.
    pub fn connection_info(&self, id: ConnectionId) -> Option<ConnectionInfo<'_>> {
        let conn = self.conns.get(id)?;
        Some(ConnectionInfo {
            machine: self,
            conn,
            id,
        })
    }

    /// One listener, borrowed for accepting, its limit and `Stop` (see
    /// [`ListenerView`]).
    pub fn listener(&mut self, id: ListenerId) -> ListenerView<'_> {
        ListenerView { machine: self, id }
    }

    /// One socket, for the adapter that performs its I/O: what to write
    /// and how much to read (see [`SocketView`]).
    pub fn socket(&self, id: SocketId) -> SocketView<'_> {
        SocketView { machine: self, id }
    }

    /// The machine's connection history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// What this machine learned that is worth keeping between processes
    /// (the history and the HTTPS answers): save it, or restore what an
    /// earlier process saved (see [`MemoryView`]).
    pub fn memory(&mut self) -> MemoryView<'_> {
        MemoryView { machine: self }
    }

    /// Forgets every cached DNS answer.
    pub fn flush_dns_cache(&mut self) {
        self.cache.clear();
    }

    /// Whether nothing is in flight: no connection establishing or closing,
    /// no DNS transaction, no output waiting.
    pub fn is_idle(&self) -> bool {
        self.outputs.is_empty()
            && self.undecided.is_empty()
            && self.resolver.is_empty()
            && self.conns.iter().all(|(_, c)| {
                !matches!(
                    c.state,
                    ConnectionState::Establishing | ConnectionState::Closing
                )
            })
    }

    /// The next output. Drain until `None` after every call.
    pub fn poll(&mut self) -> Option<Output> {
        self.decide_races();
        self.outputs.pop_front()
    }

    /// The earliest deadline, if any timer is armed. A race with an
    /// undecided DNS change is due at once (drain `poll` to decide it).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((t, _))| *t);
        let decision = self.undecided.iter().map(|(_, t)| *t).min();
        match (timer, decision) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Decides every race whose DNS changed since its last decision: the
    /// start rule and the order of the answers known now (RFC 6724 §6,
    /// HEv3 §4), then the attempts that are due.
    fn decide_races(&mut self) {
        while let Some((id, at)) = self.undecided.pop() {
            self.after_conn_change(at, id);
        }
    }

    /// Feeds one report from the world.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::DnsDatagram { txn, from, payload } => {
                self.on_dns_datagram(now, txn, from, payload)
            }
            Input::DnsStreamData { txn, data } => self.on_dns_stream(now, txn, data),
            Input::DnsTransportFailed { txn } => self.on_dns_transport_failed(now, txn),
            Input::SocketOptionsApplied { socket, applied } => {
                self.on_socket_options_applied(now, socket, applied);
            }
            Input::SocketConnected { socket } => self.on_socket_connected(now, socket),
            Input::SocketData { socket, data } => self.on_socket_data(now, socket, data),
            Input::SocketEof { socket } => self.on_socket_eof(now, socket),
            Input::SocketFailed { socket, reason } => self.on_socket_failed(now, socket, reason),
            Input::ListenFailed { listener, reason } => self.on_listen_failed(listener, reason),
            Input::Transmitted { socket, len } => self.transmitted(now, socket, len),
            Input::WroteThrough { conn, len } => self.wrote_through(now, conn, len),
            Input::TlsCheckIn(session) => self.check_in_tls(now, session),
            Input::InterfacesChanged(list) => self.set_interfaces(now, list),
            Input::KernelRtts(entries) => self.history.record_kernel_rtts(now, entries),
            Input::Pref64(prefix) => self.set_advertised_pref64(now, prefix),
        }
        self.purge_timers();
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.decide_races();
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Conn(id) => {
                    let Some(c) = self.conns.get_mut(id) else {
                        continue;
                    };
                    if c.timer != Some(at) {
                        continue;
                    }
                    c.timer = None;
                    self.on_conn_timer(now, id);
                }
                Timer::Dns(txn) => self.on_dns_timer(now, txn, at),
                Timer::Linger(socket) => {
                    if self
                        .sockets
                        .get(socket)
                        .is_some_and(|s| s.linger_until == Some(at))
                    {
                        self.close_socket(socket);
                    }
                }
            }
        }
        self.purge_timers();
    }

    fn on_conn_timer(&mut self, now: Instant, id: ConnectionId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if c.close_deadline.is_some_and(|d| now >= d) {
            self.finish_close(now, id);
            return;
        }
        match (&mut c.role, c.state) {
            (Role::Active(race), ConnectionState::Establishing) => {
                race.handle_timeout(now);
                self.after_conn_change(now, id);
                return;
            }
            (Role::Passive { deadline, .. }, ConnectionState::Establishing)
                if deadline.is_some_and(|d| now >= d) =>
            {
                self.fail_passive(now, id, FailureReason::TimedOut);
                return;
            }
            _ => {}
        }
        // Message lifetimes.
        self.pump(now, id);
        self.reschedule(id);
    }

    fn record(&mut self, id: ConnectionId, now: Instant, kind: TraceKind) {
        if let Some(c) = self.conns.get_mut(id) {
            c.trace_mut().record(now, kind);
        }
    }

    /// Queues an event unless the connection already ended: the one place
    /// RFC 9622's "nothing after Closed" is enforced.
    fn emit(&mut self, event: Event) {
        if let Some(id) = event.connection() {
            let Some(c) = self.conns.get_mut(id) else {
                return;
            };
            if c.terminated {
                return;
            }
            if matches!(
                event,
                Event::Closed { .. }
                    | Event::EstablishmentError { .. }
                    | Event::ConnectionError { .. }
            ) {
                c.terminated = true;
            }
        }
        self.outputs.push_back(Output::Event(event));
    }

    /// Re-arms the connection's timer if its deadline moved.
    fn reschedule(&mut self, id: ConnectionId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let next = c.deadline();
        if next != c.timer {
            c.timer = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, Timer::Conn(id))));
            }
        }
    }

    /// Drops timer entries that no longer match their owner's deadline, so
    /// the top of the heap is always a live timer.
    fn purge_timers(&mut self) {
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            let live = match timer {
                Timer::Conn(id) => self.conns.get(id).is_some_and(|c| c.timer == Some(at)),
                Timer::Dns(txn) => self.resolver.deadline(txn) == Some(at),
                Timer::Linger(socket) => self
                    .sockets
                    .get(socket)
                    .is_some_and(|s| s.linger_until == Some(at)),
            };
            if live {
                break;
            }
            self.timers.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::TlsFailure;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    fn started(attempt: u16, remote: &str, interface: u32) -> TraceKind {
        TraceKind::AttemptStarted {
            attempt,
            remote: remote.parse().unwrap(),
            interface: Some(interface),
            nat64: None,
        }
    }

    fn failed(attempt: u16, reason: FailureReason) -> TraceKind {
        TraceKind::AttemptFailed { attempt, reason }
    }

    fn query(qtype: QueryType) -> TraceKind {
        TraceKind::DnsQuery {
            qtype,
            server: "10.0.0.1:53".parse().unwrap(),
            tcp: false,
            retransmit: false,
        }
    }

    fn answer(qtype: QueryType, outcome: DnsOutcome, local: Option<LocalSource>) -> TraceKind {
        TraceKind::DnsAnswer {
            qtype,
            outcome,
            local,
        }
    }

    /// The failure's text, curl-style: headline with host, port and whole
    /// milliseconds; one line per attempt when there are several; DNS only
    /// when DNS was the cause.
    #[test]
    fn establishment_error_reads_like_curl() {
        let positive = DnsOutcome::Positive { count: 1, ttl: 0 };
        // (what, host, reason, trace events at ms, failed at ms, text)
        type Case<'a> = (
            &'a str,
            &'a str,
            RaceFailure,
            &'a [(u64, TraceKind)],
            u64,
            &'a str,
        );
        let cases: &[Case<'_>] = &[
            (
                "a literal address, refused: one line, no DNS",
                "127.0.0.1",
                RaceFailure::AllAttemptsFailed,
                &[
                    (
                        0,
                        answer(QueryType::A, positive, Some(LocalSource::Literal)),
                    ),
                    (0, started(1, "127.0.0.1:8001", 1)),
                    (0, failed(1, FailureReason::Refused)),
                ],
                0,
                "failed to connect to 127.0.0.1 port 8001 after 0 ms: connection refused",
            ),
            (
                "localhost refused: the name as given",
                "localhost",
                RaceFailure::AllAttemptsFailed,
                &[
                    (
                        0,
                        answer(
                            QueryType::Aaaa,
                            DnsOutcome::NoData,
                            Some(LocalSource::Localhost),
                        ),
                    ),
                    (
                        0,
                        answer(QueryType::A, positive, Some(LocalSource::Localhost)),
                    ),
                    (0, started(1, "127.0.0.1:8001", 1)),
                    (1, failed(1, FailureReason::Refused)),
                ],
                1,
                "failed to connect to localhost port 8001 after 1 ms: connection refused",
            ),
            (
                "NXDOMAIN for both families: the server that said so",
                "example.invalid",
                RaceFailure::NoAddresses,
                &[
                    (0, query(QueryType::Aaaa)),
                    (0, query(QueryType::A)),
                    (0, query(QueryType::Https)),
                    (3, answer(QueryType::Https, DnsOutcome::NxDomain, None)),
                    (4, answer(QueryType::Aaaa, DnsOutcome::NxDomain, None)),
                    (5, answer(QueryType::A, DnsOutcome::NxDomain, None)),
                ],
                5,
                "could not resolve host example.invalid: NXDOMAIN from 10.0.0.1",
            ),
            (
                "families answered differently: each named",
                "example.com",
                RaceFailure::NoAddresses,
                &[
                    (0, query(QueryType::Aaaa)),
                    (0, query(QueryType::A)),
                    (4, answer(QueryType::Aaaa, DnsOutcome::NoData, None)),
                    (5, answer(QueryType::A, DnsOutcome::ServFail, None)),
                ],
                5,
                "could not resolve host example.com: AAAA no address records from 10.0.0.1, A SERVFAIL from 10.0.0.1",
            ),
            (
                "two attempts failing differently: one line each, layer named",
                "example.com",
                RaceFailure::AllAttemptsFailed,
                &[
                    (0, query(QueryType::Aaaa)),
                    (0, answer(QueryType::Aaaa, positive, None)),
                    (0, started(1, "[2001:db8::1]:443", 2)),
                    (250, started(2, "192.0.2.1:443", 2)),
                    (250, failed(1, FailureReason::TimedOut)),
                    (253, failed(2, FailureReason::Refused)),
                ],
                253,
                "failed to connect to example.com port 443 after 253 ms:\n  \
                 [2001:db8::1]:443 via eth0: TCP: timed out after 250 ms\n  \
                 192.0.2.1:443 via eth0: TCP: connection refused after 3 ms",
            ),
            (
                "a TLS failure names the TLS layer",
                "example.com",
                RaceFailure::AllAttemptsFailed,
                &[
                    (0, started(1, "192.0.2.1:443", 2)),
                    (30, failed(1, FailureReason::Tls(TlsFailure::Revoked))),
                    (0, started(2, "192.0.2.2:443", 9)),
                    (31, failed(2, FailureReason::Tls(TlsFailure::Revoked))),
                ],
                31,
                "failed to connect to example.com port 443 after 31 ms:\n  \
                 192.0.2.1:443 via eth0: TLS: certificate revoked after 30 ms\n  \
                 192.0.2.2:443 via if#9: TLS: certificate revoked after 31 ms",
            ),
            (
                "connTimeout with attempts: the reason, then each attempt",
                "192.0.2.1",
                RaceFailure::Timeout,
                &[
                    (0, started(1, "192.0.2.1:80", 2)),
                    (5000, failed(1, FailureReason::ConnTimeout)),
                ],
                5000,
                "failed to connect to 192.0.2.1 port 80 after 5000 ms: connTimeout expired before any attempt succeeded\n  \
                 192.0.2.1:80 via eth0: connTimeout expired after 5000 ms",
            ),
            (
                "connTimeout while resolving: DNS is the cause",
                "slow.example",
                RaceFailure::Timeout,
                &[(0, query(QueryType::A))],
                2000,
                "could not resolve host slow.example: connTimeout expired after 2000 ms",
            ),
        ];
        let names = |i: u32| (i == 2).then(|| "eth0".to_string());
        for (what, host, reason, events, now, want) in cases {
            let mut trace = Trace::new(Instant::ZERO);
            for (t, kind) in *events {
                trace.record(at(*t), *kind);
            }
            let host: Host = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => Host::Ip(ip),
                Err(_) => Host::Name(HostName::new(host).unwrap()),
            };
            let port = events
                .iter()
                .find_map(|(_, k)| match k {
                    TraceKind::AttemptStarted { remote, .. } => Some(remote.port()),
                    _ => None,
                })
                .unwrap_or(443);
            let err =
                EstablishmentError::from_trace(*reason, &trace, at(*now), (host, port), &names);
            assert_eq!(err.to_string(), *want, "{what}");
        }
    }

    /// Every error of the machine is a `std::error::Error` (ARCHITECTURE.md
    /// "Conventions"): this does not compile otherwise.
    #[test]
    fn errors_are_std_errors() {
        fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
        is_error::<StreamError>();
        is_error::<ReceiveError>();
        is_error::<SendError>();
        is_error::<InitiateError>();
        is_error::<EstablishmentError>();
        is_error::<RaceFailure>();
        is_error::<ListenError>();
        is_error::<AcceptError>();
        is_error::<FailureReason>();
    }
}
