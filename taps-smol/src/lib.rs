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
//! use taps_smol::{Message, Preconnection, Taps};
//!
//! smol::block_on(async {
//!     // One Taps per application: it shares its DNS cache, connection
//!     // history and configuration across all of its connections.
//!     let taps = Taps::new()?;
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
//! order of events) lives in the sans-IO core, `taps_core`, and the whole
//! async API and the tasks that perform the core's work are
//! `taps_core::sys::api`, shared with `taps-tokio` (see `DESIGN.md`,
//! "Adapters"). This crate is that API's
//! [`Runtime`](taps_core::sys::api::Runtime) over async-io: sockets
//! registered as `async_io::Async`, timers as `async_io::Timer`, and
//! `futures_io`'s traits for [`Connection`]. No tokio anywhere in its
//! dependency tree (CI checks).
//!
//! # Executors
//!
//! The tasks (one per socket, per DNS transaction and per listening
//! socket, plus a timer and a path monitor per [`Taps`]) run on an
//! `async_executor::Executor`:
//!
//! - [`Taps::new`] and [`Taps::with_config`] use a global one, run by one
//!   background thread started on first use (as smol's own global executor
//!   is). The futures the application awaits only wait on wakers, so they
//!   work under `smol::block_on`, `async_io::block_on`,
//!   `futures::executor::block_on`, or any executor at all.
//! - [`Taps::with_executor`] spawns on the application's own executor
//!   instead, which the application must keep running (for example with
//!   `smol::block_on(ex.run(main))` or threads calling `ex.run`): nothing
//!   moves while it is not polled.
//!
//! Linux is the platform this is built and tested on.
#![forbid(unsafe_code)]
// Nothing that came from outside may be unwrapped; tests may.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod connection;
mod runtime;

use std::sync::Arc;

pub use async_executor::Executor;
taps_core::adapter_types!();

impl Taps {
    /// A `Taps` with this configuration, on the global executor. The
    /// interfaces still come from the system, and are watched.
    ///
    /// The seed picks DNS query ids, so it must be unpredictable for
    /// queries that cross a network (RFC 5452); [`Taps::system_config`]
    /// makes one.
    ///
    /// # Errors
    ///
    /// When the interface list cannot be read, or the executor's thread
    /// cannot be started.
    pub fn with_config(config: Config) -> Result<Taps, Error> {
        Taps::with_executor(config, runtime::global_executor()?)
    }

    /// A `Taps` whose tasks run on `executor`, which the application keeps
    /// running (see the crate's "Executors").
    ///
    /// # Errors
    ///
    /// When the interface list cannot be read.
    pub fn with_executor(config: Config, executor: Arc<Executor<'static>>) -> Result<Taps, Error> {
        let runtime = Arc::new(runtime::SmolRuntime { executor });
        taps_core::sys::api::Taps::with_runtime(config, runtime).map(Taps::from_core)
    }
}
