//! [`adapter_types!`](crate::adapter_types): the public types every
//! adapter wraps around this module's, written once.

/// Defines an adapter's public API in the invoking crate: `Taps`,
/// `Connection` and `Listener` as thin wrappers of
/// [`sys::api`](crate::sys::api)'s (so the adapter can implement its
/// runtime's I/O traits for its `Connection`, which the orphan rule
/// forbids for a type of this crate), and the shared vocabulary
/// re-exported: properties, endpoints, messages, security, errors, the
/// `framer`, `roots` and `trace` modules.
///
/// The adapter then writes only what is its runtime's own:
///
/// - `Taps::with_config(config)`, ending in
///   `Taps::from_core(api::Taps::with_runtime(config, runtime)?)`
///   (`Taps::new` is `with_config` with the system's configuration);
/// - the stream traits for `Connection` (tokio's `AsyncRead`/`AsyncWrite`,
///   `futures_io`'s), forwarding to `api::Connection::poll_read`,
///   `poll_write` and `poll_shutdown` through `Deref`.
///
/// Everything else (send, receive, close, abort, events, properties,
/// trace; a listener's addresses, limit and stop; the instance's
/// counters) is the core types', reached through `Deref`.
#[macro_export]
macro_rules! adapter_types {
    () => {
        pub use $crate::connection::{IoLimits, Message, MessageId, SendError};
        pub use $crate::endpoint::{LocalEndpoint, RemoteEndpoint};
        pub use $crate::machine::{Config, EstablishmentError, ListenerConfig};
        pub use $crate::path::InterfaceKind;
        pub use $crate::properties::{EffectiveProperties, Preference, TransportProperties};
        pub use $crate::race::{Policy, RaceConfig};
        pub use $crate::security::{Identity, SecurityParameters};
        pub use $crate::sys::api::{
            ConnectionEvent, Error, EstablishmentFailure, Events, Preconnection, Received,
        };

        /// Message framers (RFC 9622 §9.1.2), re-exported from the core.
        pub mod framer {
            pub use $crate::stack::framer::{Framer, FramerFactory};
        }

        /// The system's trusted root certificates (`taps_core::sys::roots`).
        pub mod roots {
            pub use $crate::sys::roots::*;
        }

        /// The race trace for people and programs: the text waterfall and
        /// JSON (`taps_core::sys::api::trace`).
        pub mod trace {
            pub use $crate::sys::api::trace::*;
        }

        /// One Transport Services instance: one core machine, with its DNS
        /// cache, connection history and configuration shared by every
        /// connection it makes (RFC 9621 §4.1). Cloning gives another handle
        /// to the same one.
        ///
        /// Its background tasks end when the last handle, connection and
        /// listener are gone. Counters, interfaces and the DNS cache are
        /// those of [`taps_core::sys::api::Taps`], reached through `Deref`.
        #[derive(Clone, Debug)]
        pub struct Taps {
            core: $crate::sys::api::Taps,
        }

        impl Taps {
            /// Wraps a core instance made with this adapter's runtime.
            fn from_core(core: $crate::sys::api::Taps) -> Taps {
                Taps { core }
            }

            /// A `Taps` configured from the system (`/etc/resolv.conf`,
            /// `/etc/hosts`, the interfaces with their changes from
            /// netlink) on this adapter's runtime: [`Taps::with_config`]
            /// with [`Taps::system_config`].
            ///
            /// # Errors
            ///
            /// As [`Taps::with_config`], and when the system's DNS
            /// configuration cannot be read.
            pub fn new() -> Result<Taps, $crate::sys::api::Error> {
                Taps::with_config(Taps::system_config()?)
            }

            /// The system's configuration (DNS servers and timing from
            /// resolv.conf, the hosts file), with a fresh random seed and
            /// the core's defaults for everything else; adjust it for
            /// [`Taps::with_config`].
            ///
            /// # Errors
            ///
            /// When resolv.conf or the hosts file exists but cannot be read.
            pub fn system_config() -> Result<$crate::machine::Config, $crate::sys::api::Error> {
                $crate::sys::api::Taps::system_config()
            }

            /// RFC 9622 §7.1 `Initiate`: races the candidates and returns
            /// the established connection.
            ///
            /// Dropping the future before it completes cancels the race.
            ///
            /// # Errors
            ///
            /// [`Error::Initiate`] when nothing could be tried (no path
            /// meets the requirements, ...); [`Error::Establishment`] when
            /// every attempt failed, naming each and its reason.
            pub async fn initiate(
                &self,
                pre: &$crate::sys::api::Preconnection,
            ) -> Result<Connection, $crate::sys::api::Error> {
                self.core.initiate(pre).await.map(Connection::from)
            }

            /// RFC 9622 §7.2 `InitiateWithSend`: as [`Taps::initiate`], with
            /// `message` as the first message. When it is safely replayable
            /// ([`Message::safely_replayable`]) it rides early where that is
            /// safe: in the SYN with TCP Fast Open, or as TLS 1.3 early data.
            ///
            /// # Errors
            ///
            /// As [`Taps::initiate`].
            pub async fn initiate_with_send(
                &self,
                pre: &$crate::sys::api::Preconnection,
                message: $crate::connection::Message,
            ) -> Result<Connection, $crate::sys::api::Error> {
                self.core
                    .initiate_with_send(pre, message)
                    .await
                    .map(Connection::from)
            }

            /// RFC 9622 §7.2 `Listen`: opens the listening sockets and
            /// returns once they are bound (so `local_addrs` has the ports
            /// the system chose for port 0). With TLS, give the server's
            /// identity ([`SecurityParameters::server`]).
            ///
            /// # Errors
            ///
            /// [`Error::Listen`] for an unusable configuration,
            /// [`Error::Listener`] when a socket cannot be bound.
            pub async fn listen(
                &self,
                config: $crate::machine::ListenerConfig,
            ) -> Result<Listener, $crate::sys::api::Error> {
                self.core
                    .listen(config)
                    .await
                    .map(|inner| Listener { inner })
            }
        }

        impl ::std::ops::Deref for Taps {
            type Target = $crate::sys::api::Taps;
            fn deref(&self) -> &$crate::sys::api::Taps {
                &self.core
            }
        }

        impl $crate::sys::api::Adapter for Taps {
            type Connection = Connection;
            fn core(&self) -> &$crate::sys::api::Taps {
                &self.core
            }
        }

        /// An established connection: stream I/O through the runtime's
        /// I/O traits, message I/O through `send` and `receive`, and
        /// everything else of [`taps_core::sys::api::Connection`] through
        /// `Deref`.
        ///
        /// Dropping it closes it gracefully in the background (as dropping
        /// a `TcpStream` does); `abort` resets it.
        pub struct Connection {
            inner: $crate::sys::api::Connection,
        }

        impl Connection {
            /// The core connection inside.
            pub fn into_inner(self) -> $crate::sys::api::Connection {
                self.inner
            }
        }

        impl ::std::fmt::Debug for Connection {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.inner.fmt(f)
            }
        }

        impl From<$crate::sys::api::Connection> for Connection {
            fn from(inner: $crate::sys::api::Connection) -> Connection {
                Connection { inner }
            }
        }

        impl ::std::ops::Deref for Connection {
            type Target = $crate::sys::api::Connection;
            fn deref(&self) -> &$crate::sys::api::Connection {
                &self.inner
            }
        }

        impl ::std::ops::DerefMut for Connection {
            fn deref_mut(&mut self) -> &mut $crate::sys::api::Connection {
                &mut self.inner
            }
        }

        /// Incoming connections (RFC 9622 §7.2), as a
        /// [`Stream`](taps_core::sys::api::Stream) or one at a time with
        /// [`Listener::accept`], each delivered once its whole stack (TLS,
        /// framer) is ready. Dropping it stops listening; connections
        /// already handed out carry on. Addresses, the connection limit
        /// and `stop` are [`taps_core::sys::api::Listener`]'s, through
        /// `Deref`.
        #[derive(Debug)]
        pub struct Listener {
            inner: $crate::sys::api::Listener,
        }

        impl Listener {
            /// The next connection; `None` once the listener stopped.
            pub async fn accept(&mut self) -> Option<Connection> {
                self.inner.accept().await.map(Connection::from)
            }

            /// Polls for the next connection.
            pub fn poll_accept(
                &mut self,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<Option<Connection>> {
                self.inner.poll_accept(cx).map(|c| c.map(Connection::from))
            }
        }

        impl $crate::sys::api::Stream for Listener {
            type Item = Connection;
            fn poll_next(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<Option<Connection>> {
                self.get_mut().poll_accept(cx)
            }
        }

        impl ::std::ops::Deref for Listener {
            type Target = $crate::sys::api::Listener;
            fn deref(&self) -> &$crate::sys::api::Listener {
                &self.inner
            }
        }

        impl ::std::ops::DerefMut for Listener {
            fn deref_mut(&mut self) -> &mut $crate::sys::api::Listener {
                &mut self.inner
            }
        }
    };
}
