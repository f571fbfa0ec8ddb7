//! taps-core: the sans-IO heart of taps, Transport Services for Rust.
//!
//! One [`Machine`] owns every connection, attempt, socket,
//! DNS transaction and timer of one stack instance. The world talks to it
//! through `handle`, and everything it wants done comes out of `poll`; it never
//! performs I/O, reads a clock or spawns a thread (see `ARCHITECTURE.md`). The same
//! machine therefore runs under tokio, smol, a caller's own loop and the
//! simulator, and replays bit for bit from a seed.
//!
//! Architecture: RFC 9621. API: RFC 9622. Implementation: RFC 9623.
//! Racing: Happy Eyeballs v3 (draft-ietf-happy-happyeyeballs-v3-04).
#![forbid(unsafe_code)]
// Nothing that came from outside may be unwrapped; tests may.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod connection;
pub mod dns;
mod endpoint;
mod hash;
mod id;
mod interface;
mod machine;
mod path;
mod properties;
pub mod race;
mod rng;
mod security;
mod stack;
mod time;
mod trace;

pub use connection::{IoLimits, Message, MessageId, SendError};
pub use endpoint::{
    Component, DnsSdName, EndpointParseError, Host, HostName, LocalEndpoint, Protocol,
    RemoteEndpoint, ServiceTransport, well_known_port,
};
pub use id::{ConnectionId, DnsTxnId, IdBuildHasher, IdHasher, IdMap, ListenerId, SocketId};
pub use interface::{
    Interface, InterfaceAddress, InterfaceKind, InterfaceSelector, UnknownInterfaceKind,
};
pub use machine::{
    AcceptError, AttemptReport, CheckedOutTls, Config, ConnectionInfo, ConnectionState,
    ConnectionView, EstablishmentError, Event, InitiateError, Input, ListenError, ListenerConfig,
    ListenerView, Machine, Output, Preconnection, ReceiveError, SocketView, Stats, StreamError,
    TlsCheckout, TlsRead,
};
pub use path::{
    ExcludedInterface, ExclusionReason, MAX_PATHS_PER_CONNECTION, PathBranch, PathError,
    derive_paths,
};
pub use properties::{
    CapacityProfile, ChecksumCoverage, ConnScheduler, ConnectionProperties, Direction,
    EffectiveProperties, MessageProperties, MultipathPolicy, MultipathPreference, Preference,
    PropertyConflict, SelectionProperties, SelectionProperty, TcpUserTimeout, TransportProperties,
    UnknownProperty,
};
pub use rng::Rng;
pub use security::{
    CertificateVerification, Identity, SecurityParameters, SessionCacheLimits, TlsConfigError,
    TlsEnvironment,
};
pub use time::Instant;
pub use trace::{
    DnsOutcome, DropReason, FailureReason, FramingFailure, LocalSource, TlsFailure, Trace,
    TraceEvent, TraceKind,
};

/// Message framers (RFC 9622 §9.1.2): the [`Framer`](framer::Framer) trait
/// a protocol implements to turn a byte stream into messages, and the
/// built-in ones (length-prefixed, delimited).
pub mod framer {
    pub use crate::stack::framer::{
        DEFAULT_MAX_MESSAGE, Decoded, Delimited, Framer, FramerFactory, LengthPrefixed, Progress,
    };
}
