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
//! runtime-independent half of that is `taps_core::sys::driver`; here are
//! the tokio tasks: one per socket, per DNS transaction and per listening
//! socket, plus a timer and a path monitor per [`Taps`]. The core sits
//! behind one mutex per `Taps`, taken only for synchronous calls and never
//! across an await, so one slow connection never stalls the others.
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
mod error;
mod listener;
mod preconnection;
pub mod roots;
mod shared;
mod tasks;
pub mod trace;

use std::future::poll_fn;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::sync::Arc;
use std::task::Poll;

use taps_core::machine::{Machine, Stats};
use taps_core::path::Interface;
use taps_core::sys::driver::Driver;
use taps_core::sys::monitor::PathMonitor;

pub use connection::{Connection, ConnectionEvent, Events, Received};
pub use error::{Error, EstablishmentFailure};
pub use listener::Listener;
pub use preconnection::Preconnection;
pub use taps_core::connection::{IoLimits, Message, MessageId, SendError};
pub use taps_core::endpoint::{LocalEndpoint, RemoteEndpoint};
pub use taps_core::machine::{Config, EstablishmentError, ListenerConfig};
pub use taps_core::path::InterfaceKind;
pub use taps_core::properties::{EffectiveProperties, Preference, TransportProperties};
pub use taps_core::race::{Policy, RaceConfig};
pub use taps_core::security::{Identity, SecurityParameters};

/// Message framers (RFC 9622 §9.1.2), re-exported from the core.
pub mod framer {
    pub use taps_core::stack::framer::{Framer, FramerFactory};
}

use crate::shared::{ConnSide, ListenSide, Shared, Terminal};

/// One Transport Services instance: one core machine, with its DNS cache,
/// connection history and configuration shared by every connection it
/// makes (RFC 9621 §4.1). Cloning gives another handle to the same one.
///
/// It must be made inside a tokio runtime (it spawns its timer and path
/// monitor there); its tasks end when the last handle, connection and
/// listener are gone.
#[derive(Clone)]
pub struct Taps {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Taps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Taps").finish_non_exhaustive()
    }
}

impl Taps {
    /// A `Taps` configured from the system: `/etc/resolv.conf`,
    /// `/etc/hosts`, and the interfaces with their changes (netlink).
    ///
    /// # Errors
    ///
    /// When called outside a tokio runtime, or when the system's DNS
    /// configuration or interface list cannot be read.
    pub fn new() -> Result<Taps, Error> {
        Taps::with_config(Taps::system_config()?)
    }

    /// The system's configuration (DNS servers and timing from
    /// resolv.conf, the hosts file), with a fresh random seed and the
    /// core's defaults for everything else; adjust it for
    /// [`Taps::with_config`].
    ///
    /// # Errors
    ///
    /// When resolv.conf or the hosts file exists but cannot be read.
    pub fn system_config() -> Result<Config, Error> {
        let (dns, hosts) = taps_core::sys::dns_config::system_dns()?;
        Ok(Config {
            seed: random_seed(),
            dns,
            hosts,
            ..Config::default()
        })
    }

    /// A `Taps` with this configuration. The interfaces still come from the
    /// system, and are watched.
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
        let monitor = PathMonitor::new()?;
        let mut driver = Driver::new(Machine::new(config));
        driver.handle(taps_core::machine::Input::InterfacesChanged(
            monitor.interfaces().to_vec(),
        ));
        let shared = Shared::new(driver, handle.clone());
        let weak = Arc::downgrade(&shared);
        handle.spawn(tasks::timer_task(weak.clone(), shared.timer_signal.clone()));
        handle.spawn(tasks::monitor_task(weak, monitor, shared.stop.clone()));
        Ok(Taps { shared })
    }

    /// RFC 9622 §7.1 `Initiate`: races the candidates and returns the
    /// established connection.
    ///
    /// Dropping the future before it completes cancels the race.
    ///
    /// # Errors
    ///
    /// [`Error::Initiate`] when nothing could be tried (no path meets the
    /// requirements, ...); [`Error::Establishment`] when every attempt
    /// failed, naming each and its reason.
    pub async fn initiate(&self, pre: &Preconnection) -> Result<Connection, Error> {
        self.start(pre, None).await
    }

    /// RFC 9622 §7.2 `InitiateWithSend`: as [`Taps::initiate`], with
    /// `message` as the first message. When it is safely replayable
    /// ([`Message::safely_replayable`]) it rides early where that is safe:
    /// in the SYN with TCP Fast Open, or as TLS 1.3 early data.
    ///
    /// # Errors
    ///
    /// As [`Taps::initiate`].
    pub async fn initiate_with_send(
        &self,
        pre: &Preconnection,
        message: Message,
    ) -> Result<Connection, Error> {
        self.start(pre, Some(message)).await
    }

    async fn start(
        &self,
        pre: &Preconnection,
        first: Option<Message>,
    ) -> Result<Connection, Error> {
        let core = pre.resolved()?;
        let host = core.remote.to_string();
        let id = {
            let mut g = self.shared.lock();
            let now = g.driver.now();
            let machine = g.driver.machine_mut();
            let started = match first {
                None => machine.initiate(now, &core),
                Some(m) => machine.initiate_with_send(now, &core, m).map(|(id, _)| id),
            };
            g.driver.dispatch();
            let id = started.map_err(Error::Initiate)?;
            g.conns.insert(id, ConnSide::new(core.framer.is_some()));
            id
        };
        // Cancels the race if this future is dropped before it ends.
        let mut pending = Pending {
            shared: &self.shared,
            id,
            armed: true,
        };
        let outcome = poll_fn(|cx| {
            let mut g = self.shared.lock();
            let inner = &mut *g;
            let Some(side) = inner.pump(id) else {
                return Poll::Ready(Err(Error::Closed));
            };
            if let Some(ready) = side.ready {
                return Poll::Ready(Ok(ready));
            }
            match side.terminal.take() {
                Some(Terminal::Establishment(error)) => {
                    let trace = inner
                        .driver
                        .machine()
                        .trace(id)
                        .cloned()
                        .unwrap_or_default();
                    Poll::Ready(Err(Error::Establishment(Box::new(EstablishmentFailure {
                        error: *error,
                        trace,
                        remote: host.clone(),
                    }))))
                }
                Some(Terminal::Failed(reason)) => Poll::Ready(Err(Error::Connection(reason))),
                Some(Terminal::Closed) => Poll::Ready(Err(Error::Closed)),
                None => {
                    side.wake.register(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await;
        pending.armed = false;
        match outcome {
            Ok(ready) => Ok(Connection::new(
                self.shared.clone(),
                id,
                ready.remote,
                ready.interface,
                host,
            )),
            Err(e) => {
                // Free the failed connection's id in the core.
                let mut g = self.shared.lock();
                let now = g.driver.now();
                g.driver.machine_mut().close(now, id);
                g.driver.dispatch();
                g.conns.remove(&id);
                g.driver.forget(id);
                Err(e)
            }
        }
    }

    /// RFC 9622 §7.2 `Listen`: opens the listening sockets and returns once
    /// they are bound (so [`Listener::local_addrs`] has the ports the
    /// system chose for port 0). With TLS, give the server's identity
    /// ([`SecurityParameters::server`]).
    ///
    /// # Errors
    ///
    /// [`Error::Listen`] for an unusable configuration, [`Error::Listener`]
    /// when a socket cannot be bound.
    pub async fn listen(&self, config: ListenerConfig) -> Result<Listener, Error> {
        let framed = config.framer.is_some();
        let count = config.local.len();
        let id = {
            let mut g = self.shared.lock();
            let now = g.driver.now();
            let id = g
                .driver
                .machine_mut()
                .listen(now, config)
                .map_err(Error::Listen)?;
            // Registered before dispatch starts the accept tasks.
            g.listeners.insert(id, ListenSide::new(count, framed));
            g.driver.dispatch();
            id
        };
        let mut listener = Listener::new(self.shared.clone(), id, Vec::new());
        listener.opened().await?;
        Ok(listener)
    }

    /// The interfaces as last reported by the path monitor.
    pub fn interfaces(&self) -> Vec<Interface> {
        self.shared.lock().driver.machine().interfaces().to_vec()
    }

    /// The name of interface `index`.
    pub fn interface_name(&self, index: u32) -> Option<String> {
        self.shared.lock().driver.machine().interface_name(index)
    }

    /// The core's counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().driver.machine().stats()
    }

    /// Live connections in the core (establishing, established, closing).
    pub fn connection_count(&self) -> usize {
        self.shared.lock().driver.machine().connection_count()
    }

    /// Sockets the adapter holds open (for leak checks).
    pub fn live_sockets(&self) -> usize {
        self.shared.lock().driver.live_sockets()
    }

    /// Forgets every cached DNS answer.
    pub fn flush_dns_cache(&self) {
        self.shared.lock().driver.machine_mut().flush_dns_cache();
    }

    /// The text waterfall of an establishment failure's trace.
    pub fn waterfall(&self, failure: &EstablishmentFailure) -> String {
        let g = self.shared.lock();
        let machine = g.driver.machine();
        failure
            .trace
            .waterfall(&failure.remote, &|i| machine.interface_name(i))
    }
}

/// Cancels a race whose `initiate` future was dropped.
struct Pending<'a> {
    shared: &'a Arc<Shared>,
    id: taps_core::id::ConnectionId,
    armed: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut g = self.shared.lock();
        let now = g.driver.now();
        g.driver.machine_mut().close(now, self.id);
        g.driver.dispatch();
        g.conns.remove(&self.id);
        g.driver.forget(self.id);
    }
}

/// A seed for DNS ids and tie shuffles that differs per process and per
/// call: std's `RandomState` keys come from the OS's random source.
fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    RandomState::new().hash_one(nanos)
}
