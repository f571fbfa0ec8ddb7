//! taps over async-io: Transport Services (RFC 9621-9623) for smol and
//! every executor that runs async-io futures, in the style of Apple's
//! Network.framework. The same library as `taps-tokio`, with the same API;
//! only the I/O traits are the runtime's own (`futures_io::AsyncRead` and
//! `AsyncWrite`).
//!
//! Say *what* you want (a remote endpoint such as `example.com:443`,
//! properties such as "never over cellular", TLS), and taps works out
//! *how*: it resolves the name (A, AAAA and HTTPS records over its own DNS
//! client), derives the paths from the machine's interfaces, races the
//! candidates with Happy Eyeballs v3, runs TLS per attempt, and hands back
//! one [`Connection`] with stream or message I/O.
//!
//! ```no_run
//! # fn main() -> Result<(), taps_smol::Error> {
//! use taps_smol::framer::FramerFactory;
//! use taps_smol::{Message, Preconnection};
//!
//! smol::block_on(async {
//!     // One Taps per application: it shares its DNS cache, connection
//!     // history and configuration across all of its connections.
//!     let taps = taps_smol::new()?;
//!     let pre = Preconnection::parse("chat.example:7000")
//!         .expect("an endpoint")
//!         .with_framer(FramerFactory::lines(64 * 1024));
//!     let conn = taps.initiate_with_send(&pre, Message::new(*b"HELLO")).await?;
//!     if let Some(line) = conn.receive().await? {
//!         println!("{}", String::from_utf8_lossy(&line.data));
//!     }
//!     conn.close().await
//! })
//! # }
//! ```
//!
//! # How it is built
//!
//! All policy (the racing timers, DNS, TLS, framing, back-pressure, the
//! order of events) lives in the sans-IO core, `taps-core`; the async API
//! and the tasks that perform the core's work are `taps-io`, shared with
//! `taps-tokio` (ARCHITECTURE.md "Layers"). This crate is only
//! [`SmolRuntime`], that API's [`Runtime`] over async-io (sockets
//! registered as `async_io::Async`, timers as `async_io::Timer`), and
//! re-exports `taps-io` with its `futures-io` feature on, so
//! [`Connection`] implements `futures_io`'s `AsyncRead`/`AsyncWrite`. No
//! tokio anywhere in its dependency tree (CI checks).
//!
//! # Executors
//!
//! The tasks (one per socket, per DNS transaction and per listening
//! socket, plus a timer and a path monitor per [`Taps`]) run on an
//! `async_executor::Executor`:
//!
//! - [`new`] and [`with_config`] use a global one, run by one
//!   background thread started on first use (as smol's own global executor
//!   is). The futures the application awaits only wait on wakers, so they
//!   work under `smol::block_on`, `async_io::block_on`,
//!   `futures::executor::block_on`, or any executor at all.
//! - [`with_executor`] spawns on the application's own executor
//!   instead, which the application must keep running (for example with
//!   `smol::block_on(ex.run(main))` or threads calling `ex.run`): nothing
//!   moves while it is not polled.
//!
//! Linux is the platform this is built and tested on.
#![forbid(unsafe_code)]
// Nothing that came from outside may be unwrapped; tests may.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod runtime;

use std::sync::Arc;

pub use async_executor::Executor;
pub use runtime::SmolRuntime;
pub use taps_io::*;

/// A [`Taps`] configured from the system (`/etc/resolv.conf`, `/etc/hosts`,
/// the interfaces with their changes from netlink, a random seed) on the
/// global executor: [`with_config`] with [`Taps::system_config`].
///
/// # Errors
///
/// As [`with_config`], and when the system's DNS configuration cannot be
/// read.
pub fn new() -> Result<Taps, Error> {
    with_config(Taps::system_config()?)
}

/// A [`Taps`] with this configuration, on the global executor. The
/// interfaces still come from the system, and are watched.
///
/// DNS query ids come from the TLS environment's secure random source
/// (the OS CSPRNG in the system's environment, RFC 5452 §9.2), not from
/// the seed.
///
/// # Errors
///
/// When the interface list cannot be read, or the executor's thread
/// cannot be started.
pub fn with_config(config: Config) -> Result<Taps, Error> {
    with_executor(config, runtime::global_executor()?)
}

/// A [`Taps`] whose tasks run on `executor`, which the application keeps
/// running (see the crate's "Executors").
///
/// # Errors
///
/// When the interface list cannot be read.
pub fn with_executor(config: Config, executor: Arc<Executor<'static>>) -> Result<Taps, Error> {
    Taps::with_runtime(config, Arc::new(SmolRuntime { executor }))
}
