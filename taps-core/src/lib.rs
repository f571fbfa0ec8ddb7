//! taps-core: the sans-IO heart of taps, Transport Services for Rust.
//!
//! One [`Machine`] owns every connection, attempt, socket,
//! DNS transaction and timer of one stack instance. The world talks to it
//! through `handle`, and everything it wants done comes out of `poll`; it never
//! performs I/O, reads a clock or spawns a thread (see `ARCHITECTURE.md`). The same
//! machine therefore runs under tokio, smol, a caller's own loop and the
//! simulator, and replays bit for bit from a seed.
//!
//! # The drain loop
//!
//! Whoever embeds the machine owns the sockets and the clock. It reports
//! what happened as an [`Input`], then drains [`Machine::poll`] and performs
//! each [`Output`], and sleeps until [`Machine::poll_timeout`]. Here the
//! "network" is this loop itself: every connect succeeds at once.
//!
//! ```
//! use taps_core::{
//!     Config, Event, Input, Instant, Interface, InterfaceKind, Machine, Output, Preconnection,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The seed makes tie shuffles (and DNS ids when no TLS environment,
//! // whose secure random draws them, is given); fix it to replay a run.
//! let mut machine = Machine::new(Config::new(7));
//! let now = Instant::ZERO;
//! let eth0 = Interface::new("eth0", 2, InterfaceKind::Wired, &["192.0.2.10/24"])?;
//! machine.handle(now, Input::InterfacesChanged(vec![eth0]));
//!
//! let pre = Preconnection::new("192.0.2.1:80".parse()?);
//! let conn = machine.initiate(now, &pre)?;
//! let mut connected = Vec::new();
//! let mut ready = None;
//! loop {
//!     // Drain after every call that can change the machine.
//!     while let Some(output) = machine.poll() {
//!         match output {
//!             // A real embedder opens a non-blocking socket here.
//!             Output::OpenTcp { socket, remote, .. } => connected.push((socket, remote)),
//!             Output::Event(Event::Ready { conn: c, remote, .. }) if c == conn => {
//!                 ready = Some(remote)
//!             }
//!             _ => {}
//!         }
//!     }
//!     match connected.pop() {
//!         // ... and reports the connect when the socket becomes writable.
//!         Some((socket, _)) => machine.handle(now, Input::SocketConnected { socket }),
//!         // Nothing to report: sleep until the next deadline, if any.
//!         None => match machine.poll_timeout() {
//!             Some(deadline) if ready.is_none() => machine.handle_timeout(deadline),
//!             _ => break,
//!         },
//!     }
//! }
//! assert_eq!(ready, Some("192.0.2.1:80".parse()?));
//! # Ok(()) }
//! ```
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
mod nat64;
mod path;
mod properties;
pub mod proxy_env;
pub mod race;
mod rng;
mod security;
mod socket_options;
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
    ConnectionView, DnsReport, EstablishmentError, Event, InitiateError, Input, ListenError,
    ListenerConfig, ListenerView, Machine, MemoryView, Output, Preconnection, ReceiveError,
    Restored, SocketView, Stats, StreamError, TlsCheckout, TlsRead,
};
pub use nat64::{Pref64, Pref64Error, Pref64Source};
pub use path::{
    ExcludedInterface, ExclusionReason, MAX_PATHS_PER_CONNECTION, PathBranch, PathError,
    derive_paths,
};
pub use properties::{
    CapacityProfile, ChecksumCoverage, ConnScheduler, ConnectionProperties, Direction,
    EffectiveProperties, MessageProperties, MultipathPolicy, MultipathPreference, Preference,
    PropertyConflict, SelectionProperties, SelectionProperty, TcpUserTimeout, TransportProperties,
    UnknownProperty, ZeroRttOutcome,
};
pub use rng::Rng;
pub use security::{
    CertificateVerification, Identity, SecurityParameters, SessionCacheLimits, TlsConfigError,
    TlsEnvironment,
};
pub use socket_options::{AppliedTcpOptions, OptionResult, TcpSocketOptions};
pub use time::Instant;
pub use trace::{
    AttemptAddr, CertText, DnsOutcome, DropReason, FailureReason, FramingFailure, LocalSource,
    NameStep, TlsFailure, Trace, TraceEvent, TraceKind,
};

/// Message framers (RFC 9622 §9.1.2): the [`Framer`](framer::Framer) trait
/// a protocol implements to turn a byte stream into messages, and the
/// built-in ones (length-prefixed, delimited).
pub mod framer {
    pub use crate::stack::framer::{
        DEFAULT_MAX_MESSAGE, Decoded, Delimited, Framer, FramerFactory, LengthPrefixed, Progress,
    };
}
