//! taps over tokio: Transport Services (RFC 9621-9623) for tokio
//! applications, in the style of Apple's Network.framework.
//!
//! Say *what* you want (a remote endpoint such as `example.com:443`,
//! properties such as "never over cellular", TLS), and taps works out
//! *how*: it resolves the name (A, AAAA and HTTPS records over its own DNS
//! client), derives the paths from the machine's interfaces, races the
//! candidates with Happy Eyeballs v3, runs TLS per attempt, and hands back
//! one [`Connection`] with stream or message I/O.
//!
//! ```no_run
//! # async fn demo() -> Result<(), taps_tokio::Error> {
//! use taps_tokio::framer::FramerFactory;
//! use taps_tokio::{Message, Preconnection};
//!
//! // One Taps per application: it shares its DNS cache, connection
//! // history and configuration across all of its connections.
//! let taps = taps_tokio::new()?;
//! let pre = Preconnection::parse("chat.example:7000")
//!     .expect("an endpoint")
//!     .with_framer(FramerFactory::lines(64 * 1024));
//! let conn = taps.initiate_with_send(&pre, Message::new(*b"HELLO")).await?;
//! if let Some(line) = conn.receive().await? {
//!     println!("{}", String::from_utf8_lossy(&line.data));
//! }
//! conn.close().await?;
//! # Ok(()) }
//! ```
//!
//! # How it is built
//!
//! All policy (the racing timers, DNS, TLS, framing, back-pressure, the
//! order of events) lives in the sans-IO core, `taps-core`; the async API
//! and the tasks that perform the core's work are `taps-io`, shared with
//! `taps-smol` (ARCHITECTURE.md "Layers"). This crate is (besides the
//! hyper connector below) only [`TokioRuntime`], that API's [`Runtime`] over tokio's spawner, timer
//! and reactor, and re-exports `taps-io` with its `tokio` feature on, so
//! [`Connection`] implements tokio's `AsyncRead`/`AsyncWrite`.
//!
//! Everything runs on the tokio runtime that was current when the `Taps`
//! was made (a multi-threaded runtime spreads the sockets over its
//! workers). Linux is the platform this is built and tested on.
//!
//! The `tapscat` binary of this crate is a netcat built on it.
//!
//! With the `hyper` feature (on by default), [`connector::TapsConnector`]
//! is a client connector for hyper-util's `Client`: HTTP/1.1 and, chosen
//! by ALPN over taps' TLS, HTTP/2 over taps connections.
#![forbid(unsafe_code)]
// Nothing that came from outside may be unwrapped; tests may.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

#[cfg(feature = "hyper")]
pub mod connector;
mod runtime;

/// The repository README's Rust blocks, compiled so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

use std::io;
use std::sync::Arc;

pub use runtime::TokioRuntime;
pub use taps_io::*;

/// A [`Taps`] configured from the system (`/etc/resolv.conf`, `/etc/hosts`,
/// the interfaces with their changes from netlink, a random seed) on the
/// tokio runtime that is current now: [`with_config`] with
/// [`Taps::system_config`].
///
/// # Errors
///
/// As [`with_config`], and when the system's DNS configuration cannot be
/// read.
pub fn new() -> Result<Taps, Error> {
    with_config(Taps::system_config()?)
}

/// A [`Taps`] with this configuration on the tokio runtime that is current
/// now. The interfaces still come from the system, and are watched.
///
/// Its tasks run on that runtime (a multi-threaded runtime spreads the
/// sockets over its workers), from wherever they are started later.
///
/// DNS query ids come from the TLS environment's secure random source
/// (the OS CSPRNG in the system's environment, RFC 5452 §9.2), not from
/// the seed.
///
/// # Errors
///
/// When called outside a tokio runtime, or when the interface list cannot
/// be read.
pub fn with_config(config: Config) -> Result<Taps, Error> {
    let runtime = TokioRuntime::current().map_err(Error::Io)?;
    Taps::with_runtime(config, Arc::new(runtime))
}

impl TokioRuntime {
    /// The tokio runtime that is current now.
    ///
    /// # Errors
    ///
    /// When called outside a tokio runtime.
    pub fn current() -> io::Result<TokioRuntime> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            io::Error::other("taps_tokio::Taps must be made inside a tokio runtime")
        })?;
        Ok(TokioRuntime { handle })
    }
}
