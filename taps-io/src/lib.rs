//! The async API that every runtime adapter offers, written once: the
//! [`Taps`] instance, [`Preconnection`], [`Connection`] (send, receive,
//! close, abort, events, stream polling), [`Listener`], the [`Error`]s,
//! the trace as JSON and as `tracing` spans (feature `tracing`), and the tasks that perform the core's work (one per
//! socket, DNS transaction and listening socket, a timer and a path
//! monitor per `Taps`).
//!
//! None of it names a runtime. What differs between runtimes sits behind
//! the object-safe [`Runtime`] trait: spawning a task, a timer, and
//! registering sockets with the runtime's reactor ([`ReadyTcp`],
//! [`ReadyUdp`], [`ReadyListener`], [`ReadyFd`]). An adapter implements
//! `Runtime` (about 150 lines) and wraps [`Connection`] to implement its
//! runtime's I/O traits (tokio's `AsyncRead`/`AsyncWrite`, or
//! `futures_io`'s), forwarding to [`Connection::poll_read`],
//! [`Connection::poll_write`] and [`Connection::poll_shutdown`]. So two
//! adapters cannot drift apart in behaviour: the order of events, the
//! back-pressure, what `close` waits for and every error are the same code
//! (ARCHITECTURE.md "Layers": logic two adapters would share is policy and
//! lives a layer down).
//!
//! RFC 9622 §6 (preconnections), §7 (establishment, listening), §8
//! (properties), §9 (data transfer), §10 (termination).
//!
//! # Locking
//!
//! One `Taps` keeps the core's machine (inside its driver) behind one
//! mutex, taken only for synchronous calls and never across an await, so
//! one slow connection never stalls the others. A stream's reads and
//! writes pass through it when nothing is buffered: a plain stream's
//! read(2) and write(2), and a TLS stream's records and crypto (its
//! session checked out of the machine for the call,
//! `Machine::check_out_tls`), run outside the lock, which only decides and
//! accounts. So the connections of one instance encrypt and decrypt in
//! parallel. What still runs under it: handshakes, framers, messages, and
//! stream bytes that arrive while the application is not reading.
//!
//! # Where socket work runs
//!
//! Each socket's task is parked (`parked`): polled by nobody until woken,
//! then by its carrier, a runtime task; `initiate` and `close` claim their
//! sockets' tasks and run them in the application's task, so a connect and
//! an orderly close need no hand-over between tasks.

#![forbid(unsafe_code)]

mod connection;
mod driver;
mod error;
mod history_file;
mod listener;
mod parked;
mod preconnection;
mod proxy_env;
mod shared;
mod stream_traits;
mod taps;
mod tasks;
pub mod trace;
#[cfg(feature = "tracing")]
mod tracing_spans;

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use socket2::SockRef;

pub use connection::{Connection, ConnectionEvent, Events, Received};
pub use error::{Error, EstablishmentFailure, reason_to_io};
/// The stream trait of [`Listener`] and [`Events`] (`futures_core`'s), for
/// adapters and their users.
pub use futures_core::Stream;
pub use history_file::{HistoryProblem, HistoryWarning};
pub use listener::{Incoming, Listener};
pub use preconnection::Preconnection;
pub use proxy_env::proxy_environment;
pub use taps::Taps;
pub use taps_core::InterfaceKind;
pub use taps_core::proxy_env::{EnvProxy, NoProxy, ProxyEnvironment};
pub use taps_core::race::{Policy, RaceConfig};
pub use taps_core::{Config, EstablishmentError, ListenerConfig, Restored};
pub use taps_core::{EffectiveProperties, Preference, TransportProperties};
pub use taps_core::{EndpointParseError, Host, LocalEndpoint, RemoteEndpoint, well_known_port};
pub use taps_core::{Identity, SecurityParameters};
pub use taps_core::{IoLimits, Message, MessageId, SendError};
/// How a runtime reports a non-blocking connect (for [`ReadyTcp`]
/// implementations), from the OS glue.
pub use taps_sys::socket::{ConnectProgress, connect_result};

use taps_core::IdMap;

/// The `tracing` target of the race's spans and events (feature
/// `tracing`): `race`, `dns` and `attempt` spans, events for each
/// transition of the trace. Filter on it (`taps_io::race=debug`).
#[cfg(feature = "tracing")]
pub use tracing_spans::TARGET as TRACING_TARGET;

/// Message framers (RFC 9622 §9.1.2), from the core.
pub mod framer {
    pub use taps_core::framer::{Framer, FramerFactory};
}

/// The system's trusted root certificates, from the OS glue.
pub mod roots {
    pub use taps_sys::roots::*;
}

/// A task for [`Runtime::spawn`].
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A wait for a socket's readiness that owns what it waits on
/// ([`ReadyTcp::wait_readable`], [`ReadyTcp::wait_writable`]).
pub type IoWait = Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'static>>;

/// What a runtime provides to the shared tasks: spawning, a timer, and its
/// reactor's readiness for sockets made by [`taps_sys::socket`].
///
/// Object safe: a [`Taps`] holds an `Arc<dyn Runtime>`, so none of the API
/// is generic over it.
pub trait Runtime: Send + Sync + 'static {
    /// Runs `task` to completion in the background. It must make progress
    /// without the application polling anything (it carries the sockets'
    /// I/O while the application waits on wakers).
    fn spawn(&self, task: Task);

    /// A future that ends at `deadline`.
    fn sleep_until(&self, deadline: std::time::Instant) -> Task;

    /// Registers a non-blocking TCP socket (connecting, connected or
    /// accepted) with the reactor. Shared from the start (an `Arc`, not a
    /// `Box` to convert): the socket's task and the stream pass-through
    /// both hold it.
    ///
    /// # Errors
    ///
    /// When the reactor refuses it.
    fn tcp(&self, socket: TcpStream) -> io::Result<Arc<dyn ReadyTcp>>;

    /// Registers a non-blocking, connected UDP socket.
    ///
    /// # Errors
    ///
    /// When the reactor refuses it.
    fn udp(&self, socket: UdpSocket) -> io::Result<Box<dyn ReadyUdp>>;

    /// Registers a non-blocking listening socket.
    ///
    /// # Errors
    ///
    /// When the reactor refuses it.
    fn listener(&self, socket: TcpListener) -> io::Result<Box<dyn ReadyListener>>;

    /// Registers a descriptor to wait for readability only (the path
    /// monitor's netlink socket; the task drains it with its own handle).
    ///
    /// # Errors
    ///
    /// When the reactor refuses it.
    fn readable(&self, fd: OwnedFd) -> io::Result<Box<dyn ReadyFd>>;
}

/// A TCP socket registered with a runtime's reactor.
///
/// The readiness contract: after `try_read`/`try_write` met `WouldBlock`,
/// `poll_readable`/`poll_writable` wake the task once the socket may have
/// become ready; a spurious `Ready` is harmless (the task tries again).
/// Readiness that came before the first `poll_readable` counts too: a
/// socket that has just connected is waited on without a read tried
/// first (tokio keeps the readiness since registration; async-io arms
/// epoll, which reports a socket already readable).
pub trait ReadyTcp: Send + Sync {
    /// Reads into `buf`; `WouldBlock` when nothing is there (clearing the
    /// runtime's readiness if it keeps one). A runtime that keeps
    /// readiness may also clear it after a read that did not fill `buf`
    /// (the socket is drained), and then answer `WouldBlock` without
    /// reading until the socket is reported readable again.
    ///
    /// # Errors
    ///
    /// As read(2).
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes from `buf`; `WouldBlock` when the socket is full.
    ///
    /// # Errors
    ///
    /// As write(2).
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Ready when the socket may be readable.
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Ready when the socket may be writable.
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Resolves once the socket may be readable. Unlike `poll_readable`,
    /// whose one waker slot belongs to the socket's task, any number of
    /// these may wait beside it: the application's stream reads wait with
    /// one (the pass-through), so neither waiter can take the other's
    /// wake-up.
    fn wait_readable(self: Arc<Self>) -> IoWait;
    /// As [`ReadyTcp::wait_readable`], for writability.
    fn wait_writable(self: Arc<Self>) -> IoWait;
    /// How a non-blocking connect is doing, once writable
    /// ([`taps_sys::socket::connect_result`] with `confirm`);
    /// "in progress" must clear the write readiness it was woken by.
    ///
    /// # Errors
    ///
    /// The connect's failure (`SO_ERROR`).
    fn connect_progress(&self, confirm: bool) -> io::Result<ConnectProgress>;
    /// The socket, for options and shutdown.
    fn socket(&self) -> SockRef<'_>;
}

/// A connected UDP socket registered with a runtime's reactor.
pub trait ReadyUdp: Send + Sync {
    /// Sends one datagram; `WouldBlock` when the socket is full.
    ///
    /// # Errors
    ///
    /// As send(2).
    fn try_send(&self, buf: &[u8]) -> io::Result<usize>;
    /// Receives one datagram; `WouldBlock` when none is there.
    ///
    /// # Errors
    ///
    /// As recv(2).
    fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Ready when a datagram may be there.
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Ready when a datagram may be sent.
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// A listening socket registered with a runtime's reactor.
pub trait ReadyListener: Send + Sync {
    /// The next incoming connection, registered.
    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Arc<dyn ReadyTcp>, SocketAddr)>>;
}

/// A descriptor waited on for readability only.
pub trait ReadyFd: Send + Sync {
    /// Ready (and the readiness consumed) when the descriptor may be
    /// readable; the caller then drains it until `WouldBlock`.
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}
