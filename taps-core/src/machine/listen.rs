//! Listeners (RFC 9622 §7.2 `Listen`, RFC 9623 §4.4): passive connections
//! with their own server-side stacks (a rustls `ServerConnection` per
//! connection), `ConnectionReceived` only once a connection's whole stack is
//! ready, `SetNewConnectionLimit` and `Stop`.
//!
//! A client that sends garbage or vanishes mid-handshake costs the listener
//! one socket until its handshake fails or `handshake_timeout` passes; the
//! listener and its other connections carry on, and the failure is counted
//! in [`Stats::failed_handshakes`](super::Stats).

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use smallvec::SmallVec;

use super::{Conn, ConnectionState, Event, Machine, Output, Role, Sock};
use crate::connection::ConnIo;
use crate::endpoint::{Host, LocalEndpoint, Protocol};
use crate::id::{ConnectionId, ListenerId, SocketId};
use crate::properties::{TransportProperties, ZeroRttOutcome};
use crate::security::SecurityParameters;
use crate::stack::framer::FramerFactory;
use crate::stack::tls::{ServerTls, TlsConfigError};
use crate::stack::{Stack, StackState};
use crate::time::Instant;
use crate::trace::{FailureReason, Trace, TraceKind};

/// What a listener serves.
#[derive(Clone, Debug)]
pub struct ListenerConfig {
    /// The addresses to listen on.
    pub local: Vec<SocketAddr>,
    /// TLS server parameters (with `server_identity`), if any.
    pub security: Option<SecurityParameters>,
    /// A framer for every accepted connection.
    pub framer: Option<FramerFactory>,
    /// Properties of the accepted connections.
    pub properties: TransportProperties,
    /// RFC 9622 §7.2 `SetNewConnectionLimit`: how many more connections to
    /// deliver; `None` is unlimited.
    pub connection_limit: Option<usize>,
}

impl ListenerConfig {
    /// Listens where `local` says: its IP address, or with no address both
    /// `[::]` and `0.0.0.0` on its port (the IPv6 socket then `IPV6_V6ONLY`).
    pub fn new(local: &LocalEndpoint) -> Result<Self, ListenError> {
        if let Some(protocol @ (Protocol::Udp | Protocol::Quic)) = local.protocol {
            return Err(ListenError::ProtocolUnsupported(protocol));
        }
        let port = local.port.ok_or(ListenError::NoPort)?;
        let addrs = match &local.host {
            Some(Host::Ip(ip)) => vec![SocketAddr::new(*ip, port)],
            None => vec![
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            ],
            Some(_) => return Err(ListenError::NotAnAddress),
        };
        Ok(ListenerConfig::on(addrs))
    }

    /// Listens on exactly these addresses.
    pub fn on(local: Vec<SocketAddr>) -> Self {
        ListenerConfig {
            local,
            security: None,
            framer: None,
            properties: TransportProperties::default(),
            connection_limit: None,
        }
    }

    /// Serves TLS with these parameters.
    pub fn with_security(mut self, security: SecurityParameters) -> Self {
        self.security = Some(security);
        self
    }

    /// Frames messages on every connection.
    pub fn with_framer(mut self, framer: FramerFactory) -> Self {
        self.framer = Some(framer);
        self
    }
}

/// Why `listen` refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenError {
    /// No address to listen on.
    NoAddress,
    /// The local endpoint has no port.
    NoPort,
    /// The local endpoint names a host, not an address.
    NotAnAddress,
    /// The TLS parameters are unusable (a server needs an identity).
    Tls(TlsConfigError),
    /// The local endpoint is scoped to a protocol taps cannot run yet
    /// (`udp://`, `quic://`): refused rather than listening on TCP.
    ProtocolUnsupported(Protocol),
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenError::NoAddress => f.write_str("a listener needs at least one local address"),
            ListenError::NoPort => f.write_str("a listener needs a local port"),
            ListenError::NotAnAddress => f.write_str("a listener binds IP addresses, not names"),
            ListenError::Tls(e) => write!(f, "{e}"),
            ListenError::ProtocolUnsupported(p) => write!(
                f,
                "the local endpoint is scoped to {p} ({p}://), which taps cannot serve yet; \
                 only TCP (with TLS) is supported"
            ),
        }
    }
}

impl std::error::Error for ListenError {}

/// Why `accept` refused a socket; the adapter closes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcceptError {
    /// No such listener (stopped and freed, or never existed).
    UnknownListener,
    /// `SetNewConnectionLimit` is exhausted.
    LimitReached,
    /// The machine holds `max_connections`.
    TooManyConnections,
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcceptError::UnknownListener => f.write_str("unknown or stopped listener"),
            AcceptError::LimitReached => {
                f.write_str("the listener's new-connection limit is reached")
            }
            AcceptError::TooManyConnections => {
                f.write_str("the machine holds its connection limit")
            }
        }
    }
}

impl std::error::Error for AcceptError {}

#[derive(Debug)]
pub(super) struct Listener {
    tls: Option<ServerTls>,
    framer: Option<FramerFactory>,
    properties: TransportProperties,
    remaining: Option<usize>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerTls")
    }
}

impl Machine {
    /// RFC 9622 §7.2 `Listen`: outputs one `Listen` per local address.
    ///
    /// # Errors
    ///
    /// [`ListenError`]: no local address, or a TLS identity that makes no
    /// server configuration.
    pub fn listen(&mut self, config: ListenerConfig) -> Result<ListenerId, ListenError> {
        if config.local.is_empty() {
            return Err(ListenError::NoAddress);
        }
        let tls = match &config.security {
            Some(params) => {
                Some(ServerTls::new(params, self.config.tls.as_ref()).map_err(ListenError::Tls)?)
            }
            None => None,
        };
        let id = self.listeners.insert(Listener {
            tls,
            framer: config.framer.clone(),
            properties: config.properties.clone(),
            remaining: config.connection_limit,
        });
        let both =
            config.local.iter().any(|a| a.is_ipv4()) && config.local.iter().any(|a| a.is_ipv6());
        for local in &config.local {
            self.outputs.push_back(Output::Listen {
                listener: id,
                local: *local,
                v6_only: both && local.is_ipv6(),
            });
        }
        Ok(id)
    }

    /// The adapter accepted a TCP connection on one of `listener`'s sockets.
    /// On success the socket is the machine's (quote the id); on error the
    /// adapter closes it.
    pub(super) fn accept(
        &mut self,
        now: Instant,
        listener: ListenerId,
        remote: SocketAddr,
    ) -> Result<SocketId, AcceptError> {
        if self.conns.len() >= self.config.max_connections {
            self.stats.accepts_refused += 1;
            return Err(AcceptError::TooManyConnections);
        }
        let Some(l) = self.listeners.get_mut(listener) else {
            self.stats.accepts_refused += 1;
            return Err(AcceptError::UnknownListener);
        };
        if l.remaining == Some(0) {
            self.stats.accepts_refused += 1;
            return Err(AcceptError::LimitReached);
        }
        if let Some(r) = l.remaining.as_mut() {
            *r -= 1;
        }
        let tls = match l.tls.as_ref().map(ServerTls::session) {
            Some(Ok(s)) => Some(s),
            Some(Err(_)) => {
                self.stats.failed_handshakes += 1;
                return Err(AcceptError::UnknownListener);
            }
            None => None,
        };
        let mut stack = Stack::new(tls, l.framer.as_ref().map(|f| f.make()));
        let properties = l.properties.clone();
        let framer = l.framer.clone();
        let state = stack.on_transport_up();
        let mut trace = Trace::new(now);
        trace.record(now, TraceKind::AttemptTransportUp { attempt: 1 });
        let conn = self.conns.insert(Conn {
            state: ConnectionState::Establishing,
            role: Role::Passive {
                listener,
                trace,
                remote,
                deadline: Some(now + self.config.handshake_timeout),
            },
            search: None,
            https_qname: None,
            alias: Default::default(),
            dns: SmallVec::new(),
            targets: SmallVec::new(),
            sockets: SmallVec::new(),
            socket: None,
            properties,
            local: None,
            timer: None,
            io: ConnIo::new(self.config.io),
            tls: None,
            server_name: None,
            framer,
            close_deadline: None,
            path_interface: None,
            detached: false,
            terminated: false,
            race_recorded: true,
            remote: None,
            zero_rtt: ZeroRttOutcome::NoFirstMessage,
        });
        let socket = self.sockets.insert(Sock {
            conn,
            // An accepted socket inherits the listener's options, and the
            // listener asks for none.
            options: Default::default(),
            candidate: None,
            stack,
            announced: false,
            connected: true,
            fast_open: false,
            read_paused: false,
            shut: false,
            linger_until: None,
        });
        if let Some(c) = self.conns.get_mut(conn) {
            c.socket = Some(socket);
        }
        self.announce(socket);
        match state {
            Ok(StackState::Ready) => self.passive_ready(now, conn),
            Ok(_) => self.reschedule(conn),
            Err(reason) => self.fail_passive(now, conn, reason),
        }
        self.purge_timers();
        Ok(socket)
    }

    /// RFC 9622 §7.2 `SetNewConnectionLimit`: deliver at most `limit` more
    /// connections (`None`: no limit).
    pub(super) fn set_new_connection_limit(&mut self, listener: ListenerId, limit: Option<usize>) {
        match self.listeners.get_mut(listener) {
            Some(l) => l.remaining = limit,
            None => self.stats.stale_inputs += 1,
        }
    }

    /// RFC 9622 §7.2 `Stop`: no new connections; `Stopped` follows.
    /// Connections already received carry on.
    pub(super) fn stop(&mut self, listener: ListenerId) {
        if self.listeners.remove(listener).is_none() {
            self.stats.stale_inputs += 1;
            return;
        }
        // Connections still handshaking were never delivered; `Stopped`
        // promises nothing more, so they go now (found by fuzzing).
        let handshaking: SmallVec<[ConnectionId; 4]> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.state == ConnectionState::Establishing
                    && matches!(c.role, Role::Passive { listener: l, .. } if l == listener)
            })
            .map(|(id, _)| id)
            .collect();
        for conn in handshaking {
            if let Some(socket) = self.conns.get_mut(conn).and_then(|c| c.socket.take()) {
                self.close_socket(socket);
            }
            self.free_conn(conn);
        }
        self.outputs.push_back(Output::StopListening { listener });
        self.emit(Event::Stopped { listener });
    }

    pub(super) fn on_listen_failed(&mut self, listener: ListenerId, reason: FailureReason) {
        if !self.listeners.contains(listener) {
            self.stats.stale_inputs += 1;
            return;
        }
        self.emit(Event::ListenerError { listener, reason });
    }

    /// An accepted connection failed its handshake: it is dropped without a
    /// word to the application, which never saw it.
    pub(super) fn fail_passive(&mut self, now: Instant, conn: ConnectionId, reason: FailureReason) {
        self.stats.failed_handshakes += 1;
        let Some(mut c) = self.conns.remove(conn) else {
            return;
        };
        c.trace_mut()
            .record(now, TraceKind::AttemptFailed { attempt: 1, reason });
        if let Some(socket) = c.socket.take() {
            self.close_after_alert(now, socket);
        }
        if let Role::Passive {
            listener, remote, ..
        } = c.role
        {
            self.emit(Event::HandshakeFailed {
                listener,
                remote,
                reason,
            });
        }
    }

    /// An accepted connection's stack is ready: `ConnectionReceived`.
    pub(super) fn passive_ready(&mut self, now: Instant, conn: ConnectionId) {
        let tls = self
            .conns
            .get(conn)
            .and_then(|c| c.socket)
            .and_then(|socket| self.sockets.get(socket))
            .and_then(|s| s.stack.tls_details());
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let Role::Passive {
            listener,
            remote,
            deadline,
            trace,
        } = &mut c.role
        else {
            return;
        };
        *deadline = None;
        if let Some(details) = tls {
            trace.record_tls(now, 1, details);
        }
        trace.record(now, TraceKind::Winner { attempt: 1 });
        let (listener, remote) = (*listener, *remote);
        c.state = ConnectionState::Established;
        self.emit(Event::ConnectionReceived {
            listener,
            conn,
            remote,
        });
        self.pump(now, conn);
        self.deliver(now, conn);
        self.reschedule(conn);
    }
}
