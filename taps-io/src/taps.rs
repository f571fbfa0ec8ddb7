//! [`Taps`]: one Transport Services instance (RFC 9621 §4.1) and its
//! establishment calls.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use crate::driver::Driver;
use taps_core::proxy_env::ProxyEnvironment;
use taps_core::{Config, ConnectionId, Input, Interface, ListenerConfig, Machine, Message, Stats};
use taps_sys::monitor::PathMonitor;

use super::connection::PeerName;
use super::shared::{Claims, ConnSide, ListenSide, Shared, Terminal};
use super::{Connection, Error, EstablishmentFailure, Listener, Preconnection, Runtime, tasks};

/// One Transport Services instance: one core machine, with its DNS cache,
/// connection history and configuration shared by every connection it
/// makes (RFC 9621 §4.1). Cloning gives another handle to the same one.
///
/// Its background tasks (a timer, the path monitor, and a task per socket)
/// run on the [`Runtime`] it was made with, and end when the last handle,
/// connection and listener are gone.
#[derive(Clone)]
pub struct Taps {
    pub(crate) shared: Arc<Shared>,
    /// The proxy variables as they were when this `Taps` was built.
    proxy_env: Arc<ProxyEnvironment>,
}

impl std::fmt::Debug for Taps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Taps").finish_non_exhaustive()
    }
}

impl Taps {
    /// The system's configuration (DNS servers and timing from
    /// resolv.conf, the hosts file), the system's TLS environment, a fresh
    /// random seed, and the core's defaults for everything else.
    ///
    /// # Errors
    ///
    /// When resolv.conf or the hosts file exists but cannot be read.
    pub fn system_config() -> Result<Config, Error> {
        Ok(taps_sys::system_config()?)
    }

    /// A `Taps` with this configuration whose tasks run on `runtime`. The
    /// interfaces come from the system, and are watched. TLS runs in the
    /// system's environment unless the configuration names one
    /// ([`Config::tls`]).
    ///
    /// DNS query ids come from the TLS environment's secure random source
    /// (the OS CSPRNG in the system's environment, RFC 5452 §9.2), not
    /// from the seed.
    ///
    /// # Errors
    ///
    /// When the interface list cannot be read.
    pub fn with_runtime(mut config: Config, runtime: Arc<dyn Runtime>) -> Result<Taps, Error> {
        config
            .tls
            .get_or_insert_with(taps_sys::tls::system_environment);
        let monitor = PathMonitor::new()?;
        let mut driver = Driver::new(Machine::new(config));
        driver.handle(Input::InterfacesChanged(monitor.interfaces().to_vec()));
        tasks::report_kernel_rtts(|entries| driver.handle(Input::KernelRtts(entries)));
        let shared = Shared::new(driver, runtime);
        let weak = Arc::downgrade(&shared);
        let rt = &shared.runtime;
        rt.spawn(Box::pin(tasks::timer_task(
            weak.clone(),
            rt.clone(),
            shared.timer_signal.clone(),
        )));
        let readiness = tasks::monitor_readiness(&**rt, &monitor);
        rt.spawn(Box::pin(tasks::monitor_task(
            weak,
            rt.clone(),
            monitor,
            readiness,
            shared.stop.clone(),
        )));
        Ok(Taps {
            shared,
            proxy_env: Arc::new(crate::proxy_environment()),
        })
    }

    /// The system's proxy configuration (`https_proxy`, `all_proxy`,
    /// `no_proxy`, ...), read from the environment once, when this `Taps`
    /// was built ([`proxy_environment`](crate::proxy_environment)).
    /// [`ProxyEnvironment::proxy_for`] says which proxy, if any, it names
    /// for a connection.
    pub fn proxy_environment(&self) -> &ProxyEnvironment {
        &self.proxy_env
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
        let id = tasks::act(&self.shared, |g| {
            let started = g.driver.command(|machine, now| match first {
                None => machine.initiate(now, &core),
                Some(m) => machine.initiate_with_send(now, &core, m).map(|(id, _)| id),
            });
            let id = started.map_err(Error::Initiate)?;
            g.driver.watch_race(id, &core);
            g.conns.insert(id, ConnSide::new(core.framer.is_some()));
            Ok::<_, Error>(id)
        })?;
        // Cancels the race if this future is dropped before it ends.
        let mut pending = Pending {
            shared: &self.shared,
            id,
            armed: true,
        };
        // The attempts' tasks run here while the race goes on (see
        // `super::parked`): the winner's connect wakes this task directly,
        // and is reported from it, with no hand-over. Handed back at the
        // end (the winner's task carries on with the connection).
        let mut claims = Claims::new();
        let outcome = poll_fn(|cx| {
            let mut polled = false;
            loop {
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
                            .connection_info(id)
                            .map(|c| c.trace().clone())
                            .unwrap_or_default();
                        return Poll::Ready(Err(Error::Establishment(Box::new(
                            EstablishmentFailure {
                                error: *error,
                                trace,
                                remote: core.remote.to_string(),
                            },
                        ))));
                    }
                    Some(Terminal::Failed(reason)) => {
                        return Poll::Ready(Err(Error::Connection(reason)));
                    }
                    Some(Terminal::Closed) => return Poll::Ready(Err(Error::Closed)),
                    None => side.wake.register(cx.waker()),
                }
                let before = claims.len();
                inner.claim_attempts(id, &mut claims);
                drop(g);
                if polled && claims.len() == before {
                    return Poll::Pending;
                }
                // A finished task (a failed attempt's) is let go.
                claims.retain_mut(|(_, task)| !task.poll(cx));
                polled = true;
            }
        })
        .await;
        drop(claims);
        pending.armed = false;
        match outcome {
            Ok(ready) => Ok(Connection::new(
                self.shared.clone(),
                id,
                ready.remote,
                ready.interface,
                PeerName::Endpoint(core.remote.clone()),
            )),
            Err(e) => {
                // Free the failed connection's id in the core.
                self.shared.release(id);
                Err(e)
            }
        }
    }

    /// RFC 9622 §7.2 `Listen`: opens the listening sockets and returns once
    /// they are bound (so [`Listener::local_addrs`] has the ports the
    /// system chose for port 0). With TLS, give the server's identity
    /// ([`SecurityParameters::server`](taps_core::SecurityParameters::server)).
    ///
    /// # Errors
    ///
    /// [`Error::Listen`] for an unusable configuration, [`Error::Listener`]
    /// when a socket cannot be bound.
    pub async fn listen(&self, config: ListenerConfig) -> Result<Listener, Error> {
        let framed = config.framer.is_some();
        let count = config.local.len();
        let id = tasks::act(&self.shared, |g| {
            let id = g
                .driver
                .command(|m, _| m.listen(config))
                .map_err(Error::Listen)?;
            // Registered before the accept tasks start, which is when the
            // lock is released.
            g.listeners.insert(id, ListenSide::new(count, framed));
            Ok::<_, Error>(id)
        })?;
        let mut listener = Listener::new(self.shared.clone(), id);
        listener.opened().await?;
        Ok(listener)
    }

    /// The interfaces as last reported by the path monitor.
    pub fn interfaces(&self) -> Vec<Interface> {
        self.shared.lock().driver.machine().interfaces().to_vec()
    }

    /// The name of interface `index`.
    pub fn interface_name(&self, index: u32) -> Option<String> {
        let g = self.shared.lock();
        let interfaces = g.driver.machine().interfaces();
        interfaces
            .iter()
            .find(|i| i.index == index)
            .map(|i| i.name.clone())
    }

    /// The core's counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().driver.machine().stats()
    }

    /// Live connections in the core (establishing, established, closing).
    pub fn connection_count(&self) -> usize {
        self.shared.lock().driver.machine().stats().live_connections
    }

    /// Sockets the adapter holds open (for leak checks).
    pub fn live_sockets(&self) -> usize {
        self.shared.lock().driver.live_sockets()
    }

    /// Forgets every cached DNS answer.
    pub fn flush_dns_cache(&self) {
        self.shared
            .lock()
            .driver
            .command(|m, _| m.flush_dns_cache());
    }

    /// Restores the connection history an earlier process saved in `path`
    /// ([`Taps::save_history`]): which addresses won over which interface
    /// and how fast, which failed or hung, and what HTTPS records said
    /// about names, so that a host whose IPv6 is silently broken is
    /// reached over IPv4 at once from the first connection on (HEv3 §5.3,
    /// RFC 9623 §4.2.1). Entries have their age and TTL: what has expired
    /// since is dropped; entries on interfaces this system does not have
    /// (they are keyed by interface name) are skipped.
    ///
    /// Reads the file with blocking I/O (a small, bounded file).
    ///
    /// # Errors
    ///
    /// A [`HistoryWarning`](crate::HistoryWarning), one line for the user,
    /// when the file is missing, unreadable, cut short, damaged or of a
    /// newer format: nothing of it is used, and the `Taps` carries on
    /// without history. [`Taps::save_history`] then replaces the file.
    pub fn load_history(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<taps_core::Restored, crate::HistoryWarning> {
        let saved = crate::history_file::read(path.as_ref(), crate::history_file::unix_now())?;
        let mut g = self.shared.lock();
        Ok(g.driver.command(|m, now| m.memory().restore(now, &saved)))
    }

    /// Saves the connection history to `path`, for
    /// [`Taps::load_history`] in a later process: merged with what the file
    /// already holds (newest wins), bounded, and written atomically (a
    /// temporary file in the same directory, renamed over it), so that
    /// processes saving at once never leave a torn file. Opt-in: nothing
    /// is saved unless this is called.
    ///
    /// Writes the file with blocking I/O.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be written.
    pub fn save_history(&self, path: impl AsRef<std::path::Path>) -> Result<(), Error> {
        let (saved, lifetime) = {
            let mut g = self.shared.lock();
            g.driver.command(|m, now| {
                let lifetime = m.config().history.entry_lifetime;
                (m.memory().save(now), lifetime)
            })
        };
        crate::history_file::write(path.as_ref(), saved, lifetime).map_err(Error::Io)
    }

    /// The text waterfall of an establishment failure's trace.
    pub fn waterfall(&self, failure: &EstablishmentFailure) -> String {
        failure
            .trace
            .waterfall(&failure.remote, &|i| self.interface_name(i))
    }
}

/// Cancels a race whose `initiate` future was dropped.
struct Pending<'a> {
    shared: &'a Arc<Shared>,
    id: ConnectionId,
    armed: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.release(self.id);
        }
    }
}
