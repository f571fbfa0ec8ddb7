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
//! use taps_tokio::{Message, Preconnection, Taps};
//! use taps_tokio::framer::FramerFactory;
//!
//! // One Taps per application: it shares its DNS cache, connection
//! // history and configuration across all of its connections.
//! let taps = Taps::new()?;
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
//! order of events) lives in the sans-IO core, `taps_core`; this crate only
//! performs the core's work on tokio (see `DESIGN.md`, "Adapters"). The
//! runtime-independent half of that, the whole async API included, is
//! `taps_core::sys::api` (shared with `taps-smol`); here are its
//! [`Runtime`](taps_core::sys::api::Runtime) over tokio's spawner, timer and
//! reactor, and tokio's `AsyncRead`/`AsyncWrite` for [`Connection`]. The
//! tasks: one per socket, per DNS transaction and per listening socket,
//! plus a timer and a path monitor per [`Taps`]. The core sits behind one
//! mutex per `Taps`, taken only for synchronous calls and never across an
//! await, so one slow connection never stalls the others.
//!
//! Everything runs on the tokio runtime that was current when the `Taps`
//! was made (a multi-threaded runtime spreads the sockets over its
//! workers). Linux is the platform this is built and tested on.
//!
//! The `tapscat` binary of this crate is a netcat built on it.
#![forbid(unsafe_code)]
// Nothing that came from outside may be unwrapped; tests may.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod connection;
mod runtime;

use std::io;
use std::sync::Arc;

taps_core::adapter_types!();

impl Taps {
    /// A `Taps` with this configuration. The interfaces still come from the
    /// system, and are watched.
    ///
    /// It must be made inside a tokio runtime: its tasks run on the
    /// runtime that is current now (a multi-threaded runtime spreads the
    /// sockets over its workers), from wherever they are started later.
    ///
    /// The seed picks DNS query ids, so it must be unpredictable for
    /// queries that cross a network (RFC 5452); [`Taps::system_config`]
    /// makes one.
    ///
    /// # Errors
    ///
    /// When called outside a tokio runtime, or when the interface list
    /// cannot be read.
    pub fn with_config(config: Config) -> Result<Taps, Error> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Io(io::Error::other(
                "taps_tokio::Taps must be made inside a tokio runtime",
            ))
        })?;
        let runtime = Arc::new(runtime::TokioRuntime { handle });
        taps_core::sys::api::Taps::with_runtime(config, runtime).map(Taps::from_core)
    }
}
