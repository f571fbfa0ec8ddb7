//! The machine: one sans-IO state machine that owns every connection,
//! attempt, socket, DNS transaction and timer of one stack instance
//! (DESIGN.md "The core contract"; RFC 9623 §4 establishment).
//!
//! ```text
//! machine.initiate(now, &preconnection)   // app command → ConnectionId
//! machine.handle(now, Input)              // the world speaks
//! while let Some(out) = machine.poll() {} // drain after EVERY call
//! machine.poll_timeout()                  // next deadline
//! machine.handle_timeout(now)             // early or twice is harmless
//! ```
//!
//! Every output that expects an answer carries the id the answer must quote
//! (a [`SocketId`] or a [`DnsTxnId`]); inputs naming stale ids are ignored and
//! counted in [`Stats::stale_inputs`]. Application commands (`initiate`,
//! `close`) are methods because they return ids or errors at once; RFC 9622
//! §7.1 lets `Initiate` fail immediately when the preconnection cannot work.

use core::fmt;
use core::time::Duration;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, SocketAddr};

use smallvec::SmallVec;

use crate::dns::config::{HostsFile, localhost_addresses};
use crate::dns::wire::{Answer, QueryType};
use crate::dns::{DnsAction, DnsConfig, DnsNote, Resolver, cache::Cache, outcome_of};
use crate::endpoint::{Host, HostName, LocalEndpoint, RemoteEndpoint};
use crate::id::{ConnectionId, DnsTxnId, SocketId, Table};
use crate::path::{Interface, PathBranch, PathError, derive_paths};
use crate::properties::{
    EffectiveProperties, PropertyConflict, SecurityParameters, TransportProperties,
};
use crate::race::history::{History, HistoryConfig};
use crate::race::{
    AddressAnswer, CandidateId, Expected, Family, Race, RaceAction, RaceConfig, RaceEnv,
    RaceFailure,
};
use crate::rng::Rng;
use crate::time::Instant;
use crate::trace::{DnsOutcome, FailureReason, LocalSource, Trace, TraceKind};

/// Settings of one machine.
#[derive(Clone, Debug)]
pub struct Config {
    /// Seed of every random choice (DNS ids, tie shuffles).
    pub seed: u64,
    /// Default racing settings; a preconnection may override them.
    pub race: RaceConfig,
    /// DNS servers and timing.
    pub dns: DnsConfig,
    /// Parsed hosts file, consulted before DNS.
    pub hosts: HostsFile,
    /// History bounds and lifetimes.
    pub history: HistoryConfig,
    /// Bound on live connections. Default 65 536.
    pub max_connections: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 0,
            race: RaceConfig::default(),
            dns: DnsConfig::default(),
            hosts: HostsFile::default(),
            history: HistoryConfig::default(),
            max_connections: 65_536,
        }
    }
}

/// What the application wants: RFC 9622 §6 preconnection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preconnection {
    /// Where to connect.
    pub remote: RemoteEndpoint,
    /// Local constraints (interface, address).
    pub local: Option<LocalEndpoint>,
    /// Selection and connection properties.
    pub properties: TransportProperties,
    /// Security; filled by the TLS issue.
    pub security: Option<SecurityParameters>,
    /// Racing settings for this connection; `None`: the machine's.
    pub race: Option<RaceConfig>,
}

impl Preconnection {
    /// A preconnection to `remote` with default properties.
    pub fn new(remote: RemoteEndpoint) -> Self {
        Preconnection {
            remote,
            local: None,
            properties: TransportProperties::default(),
            security: None,
            race: None,
        }
    }

    /// Replaces the transport properties.
    pub fn with_properties(mut self, properties: TransportProperties) -> Self {
        self.properties = properties;
        self
    }

    /// Replaces the racing settings.
    pub fn with_race(mut self, race: RaceConfig) -> Self {
        self.race = Some(race);
        self
    }

    /// Sets the local endpoint.
    pub fn with_local(mut self, local: LocalEndpoint) -> Self {
        self.local = Some(local);
        self
    }
}

/// Why `initiate` refused at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitiateError {
    /// The remote endpoint names no host or address.
    NoHost,
    /// The remote endpoint has neither a port nor a known service.
    NoPort,
    /// DNS-SD service endpoints parse, but are not resolved yet.
    ServiceResolutionUnsupported,
    /// The properties ask for something TCP cannot give.
    Properties(PropertyConflict),
    /// No path satisfies the interface requirements.
    Path(PathError),
    /// `max_connections` are live.
    TooManyConnections(usize),
}

impl fmt::Display for InitiateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitiateError::NoHost => {
                f.write_str("the remote endpoint has no host name or IP address")
            }
            InitiateError::NoPort => {
                f.write_str("the remote endpoint has no port and no service that maps to one")
            }
            InitiateError::ServiceResolutionUnsupported => f.write_str(
                "DNS-SD service endpoints cannot be resolved yet; give a host name or address",
            ),
            InitiateError::Properties(c) => write!(f, "{c}"),
            InitiateError::Path(e) => write!(f, "{e}"),
            InitiateError::TooManyConnections(n) => {
                write!(f, "the machine already holds its limit of {n} connections")
            }
        }
    }
}

impl std::error::Error for InitiateError {}

/// Something the world reports to the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// A datagram arrived on a DNS transaction's socket.
    DnsDatagram {
        /// The transaction the socket serves.
        txn: DnsTxnId,
        /// Its source address.
        from: SocketAddr,
        /// Its bytes.
        payload: &'a [u8],
    },
    /// Bytes arrived on a DNS transaction's TCP connection.
    DnsStreamData {
        /// The transaction.
        txn: DnsTxnId,
        /// The bytes, in stream order.
        data: &'a [u8],
    },
    /// A DNS transaction's send failed or its TCP connection failed or closed.
    DnsTransportFailed {
        /// The transaction.
        txn: DnsTxnId,
    },
    /// A socket's connect completed.
    SocketConnected {
        /// The socket.
        socket: SocketId,
    },
    /// A socket's connect failed, or an established socket broke.
    SocketFailed {
        /// The socket.
        socket: SocketId,
        /// Why.
        reason: FailureReason,
    },
    /// The interface list changed (the adapter's path monitor).
    InterfacesChanged(Vec<Interface>),
}

/// Something the machine wants done or said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A DNS action: send a query or release a transaction's socket.
    Dns(DnsAction),
    /// Open a TCP socket and connect it; answer with `SocketConnected` or
    /// `SocketFailed` quoting `socket`.
    OpenTcp {
        /// The id to quote.
        socket: SocketId,
        /// Where to.
        remote: SocketAddr,
        /// Bind to this interface (`SO_BINDTODEVICE`); `None`: any.
        interface: Option<u32>,
        /// Bind to this local address, when the application gave one.
        local: Option<SocketAddr>,
    },
    /// Close the socket and free what it holds. Every `OpenTcp` is answered
    /// by exactly one `CloseSocket`: when the attempt lost or failed, or when
    /// its connection closed or broke.
    CloseSocket {
        /// The socket.
        socket: SocketId,
    },
    /// Tell the application.
    Event(Event),
}

/// What the application hears (RFC 9622 §7, §10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The connection is established over `socket`.
    Ready {
        /// The connection.
        conn: ConnectionId,
        /// Its socket, now the application's to use.
        socket: SocketId,
        /// The remote address that won.
        remote: SocketAddr,
        /// The interface it left by (`None`: system default path).
        interface: Option<u32>,
    },
    /// Establishment failed.
    EstablishmentError {
        /// The connection.
        conn: ConnectionId,
        /// Every attempt and why it failed.
        error: EstablishmentError,
    },
    /// An established connection broke.
    ConnectionError {
        /// The connection.
        conn: ConnectionId,
        /// Why.
        reason: FailureReason,
    },
    /// The connection is closed; nothing follows.
    Closed {
        /// The connection.
        conn: ConnectionId,
    },
}

/// How one attempt ended, for [`EstablishmentError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptReport {
    /// Attempt number.
    pub attempt: u16,
    /// Where it went.
    pub remote: SocketAddr,
    /// Which interface (`None`: system default).
    pub interface: Option<u32>,
    /// Start, from initiate.
    pub started: Duration,
    /// End, from initiate.
    pub ended: Duration,
    /// Why it ended (`None`: cancelled).
    pub failure: Option<FailureReason>,
}

/// RFC 9622 §7.1 `EstablishmentError`: why, and what every attempt did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EstablishmentError {
    /// The overall reason.
    pub reason: RaceFailure,
    /// The DNS questions and what they came to.
    pub dns: SmallVec<[(QueryType, DnsOutcome); 3]>,
    /// Every attempt.
    pub attempts: Vec<AttemptReport>,
}

impl EstablishmentError {
    fn from_trace(reason: RaceFailure, trace: &Trace) -> Self {
        let mut dns = SmallVec::new();
        let mut attempts: Vec<AttemptReport> = Vec::new();
        let since = |t: Instant| t.saturating_duration_since(trace.start);
        for e in &trace.events {
            match e.kind {
                TraceKind::DnsAnswer { qtype, outcome, .. } => dns.push((qtype, outcome)),
                TraceKind::AttemptStarted {
                    attempt,
                    remote,
                    interface,
                } => attempts.push(AttemptReport {
                    attempt,
                    remote,
                    interface,
                    started: since(e.at),
                    ended: since(e.at),
                    failure: None,
                }),
                _ => {}
            }
            let end = match e.kind {
                TraceKind::AttemptFailed { attempt, reason } => Some((attempt, Some(reason))),
                TraceKind::AttemptCancelled { attempt } => Some((attempt, None)),
                _ => None,
            };
            let ended =
                end.and_then(|(n, f)| attempts.iter_mut().find(|a| a.attempt == n).map(|a| (a, f)));
            if let Some((a, failure)) = ended {
                a.ended = since(e.at);
                a.failure = failure;
            }
        }
        EstablishmentError {
            reason,
            dns,
            attempts,
        }
    }
}

impl fmt::Display for EstablishmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            RaceFailure::NoAddresses => f.write_str("the name resolved to no address")?,
            RaceFailure::NoReachableAddress => {
                f.write_str("no resolved address is reachable over an allowed path")?
            }
            RaceFailure::AllAttemptsFailed => f.write_str("every connection attempt failed")?,
            RaceFailure::Timeout => {
                f.write_str("connTimeout expired before any attempt succeeded")?
            }
        }
        for (q, o) in &self.dns {
            write!(f, "; {} {o}", crate::trace::qtype_name(*q))?;
        }
        for a in &self.attempts {
            let why = a
                .failure
                .map_or_else(|| "cancelled".to_string(), |r| r.to_string());
            write!(
                f,
                "; attempt #{} to {}: {why} after {:?}",
                a.attempt,
                a.remote,
                a.ended.saturating_sub(a.started)
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for EstablishmentError {}

/// Counters for what the machine ignored or did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Inputs that named an unknown or freed id.
    pub stale_inputs: u64,
    /// Datagrams rejected as DNS answers.
    pub dns_dropped: u64,
    /// DNS transmissions.
    pub dns_sent: u64,
    /// Questions answered from the cache.
    pub cache_hits: u64,
    /// Connection attempts started.
    pub attempts_started: u64,
}

/// Lifecycle (RFC 9622 §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Racing.
    Establishing,
    /// Ready.
    Established,
    /// Over (failed, or broke).
    Closed,
}

#[derive(Debug)]
struct Conn {
    state: ConnectionState,
    race: Race,
    /// The name A and AAAA are asked about.
    qname: Option<HostName>,
    /// The HTTPS query name when it differs (RFC 9460 §9.1 port prefix).
    https_qname: Option<HostName>,
    dns: [Option<DnsTxnId>; 3],
    sockets: SmallVec<[(CandidateId, SocketId); 4]>,
    socket: Option<SocketId>,
    properties: TransportProperties,
    local: Option<SocketAddr>,
    timer: Option<Instant>,
}

impl Conn {
    fn qname(&self, qtype: QueryType) -> Option<&HostName> {
        match qtype {
            QueryType::Https => self.https_qname.as_ref().or(self.qname.as_ref()),
            _ => self.qname.as_ref(),
        }
    }
}

fn qslot(q: QueryType) -> usize {
    match q {
        QueryType::Https => 0,
        QueryType::Aaaa => 1,
        QueryType::A => 2,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Conn(ConnectionId),
    Dns(DnsTxnId),
}

#[derive(Clone, Copy, Debug)]
struct Sock {
    conn: ConnectionId,
    candidate: CandidateId,
}

/// The taps state machine.
#[derive(Debug)]
pub struct Machine {
    config: Config,
    rng: Rng,
    interfaces: Vec<Interface>,
    conns: Table<ConnectionId, Conn>,
    sockets: Table<SocketId, Sock>,
    resolver: Resolver,
    cache: Cache,
    history: History,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    outputs: VecDeque<Output>,
    stats: Stats,
}

impl Machine {
    /// A machine with no interfaces (one default path) and no connections.
    pub fn new(config: Config) -> Self {
        Machine {
            rng: Rng::new(config.seed),
            interfaces: Vec::new(),
            conns: Table::default(),
            sockets: Table::default(),
            resolver: Resolver::new(config.dns.clone()),
            cache: Cache::new(config.dns.cache_capacity),
            history: History::new(config.history),
            timers: BinaryHeap::new(),
            outputs: VecDeque::new(),
            stats: Stats::default(),
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The interfaces as last reported.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            dns_dropped: self.resolver.dropped,
            dns_sent: self.resolver.sent,
            ..self.stats
        }
    }

    /// The connection's lifecycle state.
    pub fn state(&self, conn: ConnectionId) -> Option<ConnectionState> {
        self.conns.get(conn).map(|c| c.state)
    }

    /// The connection's race trace.
    pub fn trace(&self, conn: ConnectionId) -> Option<&Trace> {
        self.conns.get(conn).map(|c| &c.race.trace)
    }

    /// The connection's race.
    pub fn race(&self, conn: ConnectionId) -> Option<&Race> {
        self.conns.get(conn).map(|c| &c.race)
    }

    /// The properties actually in effect, once established (RFC 9622 §8.1).
    pub fn properties(&self, conn: ConnectionId) -> Option<EffectiveProperties> {
        let c = self.conns.get(conn)?;
        if c.state != ConnectionState::Established {
            return None;
        }
        let winner = c.race.winner()?;
        let interface = c
            .race
            .candidate(winner)
            .and_then(|w| c.race.path_interface(w.path));
        let iface = interface.and_then(|i| self.interfaces.iter().find(|x| x.index == i));
        Some(c.properties.effective_for_tcp(false, iface))
    }

    /// The machine's connection history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Forgets every cached DNS answer.
    pub fn flush_dns_cache(&mut self) {
        self.cache.clear();
    }

    /// Live connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Whether nothing is in flight: no connection establishing, no DNS
    /// transaction, no socket but established ones, no output waiting.
    pub fn is_idle(&self) -> bool {
        self.outputs.is_empty()
            && self.resolver.is_empty()
            && self
                .conns
                .iter()
                .all(|(_, c)| c.state != ConnectionState::Establishing)
    }

    /// The name of interface `index`, for waterfalls.
    pub fn interface_name(&self, index: u32) -> Option<String> {
        self.interfaces
            .iter()
            .find(|i| i.index == index)
            .map(|i| i.name.clone())
    }

    /// Starts establishing a connection (RFC 9622 §7.1 `Initiate`).
    pub fn initiate(
        &mut self,
        now: Instant,
        pre: &Preconnection,
    ) -> Result<ConnectionId, InitiateError> {
        if self.conns.len() >= self.config.max_connections {
            return Err(InitiateError::TooManyConnections(
                self.config.max_connections,
            ));
        }
        let host = match &pre.remote.host {
            None => return Err(InitiateError::NoHost),
            Some(Host::Service(_)) => return Err(InitiateError::ServiceResolutionUnsupported),
            Some(h) => h,
        };
        let port = pre.remote.effective_port().ok_or(InitiateError::NoPort)?;
        if let Some(conflict) = pre.properties.selection.tcp_conflict(false) {
            return Err(InitiateError::Properties(conflict));
        }
        let bound = pre
            .local
            .as_ref()
            .and_then(|l| l.interface.as_deref())
            .or(pre.remote.interface.as_deref());
        let paths = derive_paths(&self.interfaces, &pre.properties.selection, bound)
            .map_err(InitiateError::Path)?;
        let local = pre.local.as_ref().and_then(|l| match l.host {
            Some(Host::Ip(ip)) => Some(SocketAddr::new(ip, l.port.unwrap_or(0))),
            _ => None,
        });
        let race_config = pre.race.unwrap_or(self.config.race);
        let (has_v4, has_v6) = connectivity(&paths, &self.interfaces);
        let seed = self.rng.next_u64();
        let conn_timeout = pre.properties.connection.conn_timeout;

        let (qname, expected) = match host {
            Host::Ip(ip) => (
                None,
                Expected {
                    v4: ip.is_ipv4(),
                    v6: ip.is_ipv6(),
                    svcb: false,
                },
            ),
            Host::Name(name) => (
                Some(name.clone()),
                Expected {
                    v4: has_v4 || !has_v6,
                    v6: has_v6,
                    svcb: race_config.uses_svcb(),
                },
            ),
            Host::Service(_) => return Err(InitiateError::ServiceResolutionUnsupported),
        };
        let https_qname = match (&qname, expected.svcb) {
            (Some(name), true) if port != 443 => {
                HostName::new(&format!("_{port}._https.{}", name.as_str())).ok()
            }
            _ => None,
        };
        let race = Race::new(now, race_config, port, &paths, expected, conn_timeout, seed);
        let id = self.conns.insert(Conn {
            state: ConnectionState::Establishing,
            race,
            qname,
            https_qname,
            dns: [None; 3],
            sockets: SmallVec::new(),
            socket: None,
            properties: pre.properties.clone(),
            local,
            timer: None,
        });

        match host {
            Host::Ip(ip) => {
                let family = Family::of(*ip);
                self.record(
                    id,
                    now,
                    TraceKind::DnsAnswer {
                        qtype: if family == Family::V4 {
                            QueryType::A
                        } else {
                            QueryType::Aaaa
                        },
                        outcome: DnsOutcome::Positive { count: 1, ttl: 0 },
                        local: Some(LocalSource::Literal),
                    },
                );
                self.deliver_addresses(now, id, family, AddressAnswer::Positive(&[*ip]));
            }
            Host::Name(name) => self.resolve(now, id, name, expected),
            Host::Service(_) => {}
        }
        self.after_conn_change(now, id);
        Ok(id)
    }

    /// Hosts file, `localhost`, cache, then the wire: HTTPS, AAAA, A in the
    /// order HEv3 §4.1 gives.
    fn resolve(&mut self, now: Instant, id: ConnectionId, name: &HostName, expected: Expected) {
        let local = self.config.hosts.lookup(name);
        let (local, source) = if !local.is_empty() {
            (local, LocalSource::HostsFile)
        } else if let Some(l) = localhost_addresses(name) {
            (l, LocalSource::Localhost)
        } else {
            (&[][..], LocalSource::HostsFile)
        };
        if !local.is_empty() {
            let local: SmallVec<[IpAddr; 4]> = local.iter().copied().collect();
            if expected.svcb {
                self.record(
                    id,
                    now,
                    TraceKind::DnsAnswer {
                        qtype: QueryType::Https,
                        outcome: DnsOutcome::NoData,
                        local: Some(source),
                    },
                );
                self.deliver_answer(now, id, QueryType::Https, None);
            }
            for (family, qtype) in [(Family::V6, QueryType::Aaaa), (Family::V4, QueryType::A)] {
                let addrs: SmallVec<[IpAddr; 4]> = local
                    .iter()
                    .copied()
                    .filter(|a| Family::of(*a) == family)
                    .collect();
                let outcome = if addrs.is_empty() {
                    DnsOutcome::NoData
                } else {
                    DnsOutcome::Positive {
                        count: addrs.len() as u16,
                        ttl: 0,
                    }
                };
                self.record(
                    id,
                    now,
                    TraceKind::DnsAnswer {
                        qtype,
                        outcome,
                        local: Some(source),
                    },
                );
                let answer = if addrs.is_empty() {
                    AddressAnswer::Negative
                } else {
                    AddressAnswer::Positive(&addrs)
                };
                self.deliver_addresses(now, id, family, answer);
            }
            return;
        }
        let wanted = [
            (expected.svcb, QueryType::Https),
            (expected.v6, QueryType::Aaaa),
            (expected.v4, QueryType::A),
        ];
        for (on, qtype) in wanted {
            if !on {
                continue;
            }
            let Some(conn) = self.conns.get(id) else {
                return;
            };
            let Some(qname) = conn.qname(qtype) else {
                continue;
            };
            if let Some((answer, ttl)) = self.cache.get(now, qname, qtype) {
                self.stats.cache_hits += 1;
                let mut outcome = outcome_of(answer);
                if let DnsOutcome::Positive { ttl: t, .. } = &mut outcome {
                    *t = ttl;
                }
                let answer = answer.clone();
                self.record(
                    id,
                    now,
                    TraceKind::DnsAnswer {
                        qtype,
                        outcome,
                        local: Some(LocalSource::Cache),
                    },
                );
                self.deliver_answer(now, id, qtype, Some(&answer));
            } else {
                let Some(conn) = self.conns.get(id) else {
                    return;
                };
                let Some(qname) = conn.qname(qtype) else {
                    continue;
                };
                self.resolver.query(now, id, qname, qtype, &mut self.rng);
                self.process_dns(now);
            }
        }
    }

    /// Closes a connection (RFC 9622 §10 `Close`): its sockets close, its DNS
    /// stops, and `Closed` is the last event it sends. Its id is freed.
    pub fn close(&mut self, now: Instant, conn: ConnectionId) {
        let Some(c) = self.conns.get_mut(conn) else {
            self.stats.stale_inputs += 1;
            return;
        };
        let was = c.state;
        c.race.trace.record(now, TraceKind::Closed);
        let txns: SmallVec<[DnsTxnId; 3]> = c.dns.iter().flatten().copied().collect();
        let sockets: SmallVec<[SocketId; 4]> = c.sockets.iter().map(|(_, s)| *s).collect();
        self.resolver.abandon(&txns);
        self.flush_dns_actions();
        for s in sockets {
            if self.sockets.remove(s).is_some() {
                self.outputs.push_back(Output::CloseSocket { socket: s });
            }
        }
        self.conns.remove(conn);
        if was != ConnectionState::Closed {
            self.outputs
                .push_back(Output::Event(Event::Closed { conn }));
        }
        self.purge_timers();
    }

    /// Feeds one report from the world.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::DnsDatagram { txn, from, payload } => {
                let Some((conn, qtype)) = self.resolver.txn_owner(txn) else {
                    self.stats.stale_inputs += 1;
                    return;
                };
                let Some(name) = self.conns.get(conn).and_then(|c| c.qname(qtype)) else {
                    self.stats.stale_inputs += 1;
                    return;
                };
                self.resolver
                    .on_datagram(now, txn, from, payload, name, &mut self.rng);
                self.process_dns(now);
            }
            Input::DnsStreamData { txn, data } => {
                let Some((conn, qtype)) = self.resolver.txn_owner(txn) else {
                    self.stats.stale_inputs += 1;
                    return;
                };
                let Some(name) = self.conns.get(conn).and_then(|c| c.qname(qtype)) else {
                    self.stats.stale_inputs += 1;
                    return;
                };
                self.resolver
                    .on_stream_data(now, txn, data, name, &mut self.rng);
                self.process_dns(now);
            }
            Input::DnsTransportFailed { txn } => {
                let Some((conn, qtype)) = self.resolver.txn_owner(txn) else {
                    self.stats.stale_inputs += 1;
                    return;
                };
                let Some(name) = self.conns.get(conn).and_then(|c| c.qname(qtype)) else {
                    self.stats.stale_inputs += 1;
                    return;
                };
                self.resolver
                    .on_transport_failed(now, txn, name, &mut self.rng);
                self.process_dns(now);
            }
            Input::SocketConnected { socket } => {
                let Some(sock) = self.sockets.get(socket).copied() else {
                    self.stats.stale_inputs += 1;
                    return;
                };
                if let Some(c) = self.conns.get_mut(sock.conn) {
                    c.race.on_connected(now, sock.candidate);
                }
                self.after_conn_change(now, sock.conn);
            }
            Input::SocketFailed { socket, reason } => {
                let Some(sock) = self.sockets.get(socket).copied() else {
                    self.stats.stale_inputs += 1;
                    return;
                };
                let Some(c) = self.conns.get_mut(sock.conn) else {
                    return;
                };
                if c.socket == Some(socket) {
                    // The established connection broke.
                    c.state = ConnectionState::Closed;
                    c.socket = None;
                    c.sockets.retain(|(_, s)| *s != socket);
                    self.sockets.remove(socket);
                    self.outputs.push_back(Output::CloseSocket { socket });
                    self.outputs
                        .push_back(Output::Event(Event::ConnectionError {
                            conn: sock.conn,
                            reason,
                        }));
                    return;
                }
                c.race.on_failed(now, sock.candidate, reason);
                // Every OpenTcp is answered by exactly one CloseSocket, so the
                // adapter frees resources in one place; the id is freed now
                // and a late report about it counts as stale.
                self.sockets.remove(socket);
                c.sockets.retain(|(_, s)| *s != socket);
                self.outputs.push_back(Output::CloseSocket { socket });
                self.after_conn_change(now, sock.conn);
            }
            Input::InterfacesChanged(list) => self.set_interfaces(now, list),
        }
        self.purge_timers();
    }

    /// Replaces the interface list; attempts on interfaces that went down or
    /// vanished fail, and later paths take over.
    pub fn set_interfaces(&mut self, now: Instant, list: Vec<Interface>) {
        let gone: SmallVec<[u32; 4]> = self
            .interfaces
            .iter()
            .filter(|old| old.up && !list.iter().any(|n| n.index == old.index && n.up))
            .map(|i| i.index)
            .collect();
        self.interfaces = list;
        if gone.is_empty() {
            return;
        }
        let ids: Vec<ConnectionId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.state == ConnectionState::Establishing)
            .map(|(id, _)| id)
            .collect();
        for id in ids {
            if let Some(c) = self.conns.get_mut(id) {
                for index in &gone {
                    c.race.on_interface_down(now, *index);
                }
            }
            self.after_conn_change(now, id);
        }
        self.purge_timers();
    }

    /// The next output. Drain until `None` after every call.
    pub fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest deadline, if any timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Conn(id) => {
                    let Some(c) = self.conns.get_mut(id) else {
                        continue;
                    };
                    if c.timer != Some(at) {
                        continue;
                    }
                    c.timer = None;
                    c.race.handle_timeout(now);
                    self.after_conn_change(now, id);
                }
                Timer::Dns(txn) => {
                    if self.resolver.deadline(txn) != Some(at) {
                        continue;
                    }
                    let Some((conn, qtype)) = self.resolver.txn_owner(txn) else {
                        continue;
                    };
                    let Some(name) = self.conns.get(conn).and_then(|c| c.qname(qtype)) else {
                        continue;
                    };
                    self.resolver.on_timeout(now, txn, name, &mut self.rng);
                    self.process_dns(now);
                }
            }
        }
        self.purge_timers();
    }

    fn record(&mut self, id: ConnectionId, now: Instant, kind: TraceKind) {
        if let Some(c) = self.conns.get_mut(id) {
            c.race.trace.record(now, kind);
        }
    }

    fn flush_dns_actions(&mut self) {
        while let Some(a) = self.resolver.poll_action() {
            self.outputs.push_back(Output::Dns(a));
        }
    }

    /// Applies the resolver's notes: traces, the cache, the races.
    fn process_dns(&mut self, now: Instant) {
        self.flush_dns_actions();
        while let Some(note) = self.resolver.poll_note() {
            match note {
                DnsNote::Sent {
                    conn,
                    qtype,
                    txn,
                    server,
                    tcp,
                    retransmit,
                } => {
                    if let Some(c) = self.conns.get_mut(conn) {
                        c.dns[qslot(qtype)] = Some(txn);
                        if c.state == ConnectionState::Establishing {
                            c.race.trace.record(
                                now,
                                TraceKind::DnsQuery {
                                    qtype,
                                    server,
                                    tcp,
                                    retransmit,
                                },
                            );
                        }
                    }
                    if let Some(deadline) = self.resolver.deadline(txn) {
                        self.timers.push(Reverse((deadline, Timer::Dns(txn))));
                    }
                }
                DnsNote::Retrying {
                    conn,
                    qtype,
                    outcome,
                } => {
                    self.record(conn, now, TraceKind::DnsRetry { qtype, outcome });
                }
                DnsNote::Dropped {
                    conn,
                    qtype,
                    reason,
                } => {
                    self.record(conn, now, TraceKind::DnsDropped { qtype, reason });
                }
                DnsNote::Settled {
                    conn,
                    qtype,
                    answer,
                    outcome,
                    lingering,
                } => {
                    let Some(c) = self.conns.get_mut(conn) else {
                        continue;
                    };
                    c.dns[qslot(qtype)] = None;
                    if let (Some(a), Some(name)) = (&answer, c.qname(qtype)) {
                        self.cache.insert(now, name, qtype, a);
                    }
                    if lingering || c.state != ConnectionState::Establishing {
                        continue;
                    }
                    c.race.trace.record(
                        now,
                        TraceKind::DnsAnswer {
                            qtype,
                            outcome,
                            local: None,
                        },
                    );
                    self.deliver_answer(now, conn, qtype, answer.as_ref());
                }
            }
        }
    }

    fn deliver_answer(
        &mut self,
        now: Instant,
        id: ConnectionId,
        qtype: QueryType,
        answer: Option<&Answer>,
    ) {
        match qtype {
            QueryType::A | QueryType::Aaaa => {
                let family = if qtype == QueryType::A {
                    Family::V4
                } else {
                    Family::V6
                };
                let addrs = match answer {
                    Some(Answer::Addresses { addrs, .. }) => AddressAnswer::Positive(addrs),
                    _ => AddressAnswer::Negative,
                };
                self.deliver_addresses(now, id, family, addrs);
            }
            QueryType::Https => {
                let env = RaceEnv {
                    interfaces: &self.interfaces,
                    history: &self.history,
                };
                let Some(c) = self.conns.get_mut(id) else {
                    return;
                };
                let records = match answer {
                    Some(Answer::Https { records, .. }) => Some(&records[..]),
                    _ => None,
                };
                c.race.on_service_info(now, env, records);
                self.after_conn_change(now, id);
            }
        }
    }

    fn deliver_addresses(
        &mut self,
        now: Instant,
        id: ConnectionId,
        family: Family,
        answer: AddressAnswer<'_>,
    ) {
        let env = RaceEnv {
            interfaces: &self.interfaces,
            history: &self.history,
        };
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.race.on_addresses(now, env, family, answer);
        self.after_conn_change(now, id);
    }

    /// Carries out the race's actions and re-arms its timer: the one place
    /// where race decisions become outputs.
    fn after_conn_change(&mut self, now: Instant, id: ConnectionId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        while let Some(action) = c.race.poll_action() {
            match action {
                RaceAction::Start {
                    candidate,
                    remote,
                    interface,
                } => {
                    let socket = self.sockets.insert(Sock {
                        conn: id,
                        candidate,
                    });
                    c.sockets.push((candidate, socket));
                    self.stats.attempts_started += 1;
                    self.outputs.push_back(Output::OpenTcp {
                        socket,
                        remote,
                        interface,
                        local: c.local,
                    });
                }
                RaceAction::Cancel { candidate } => {
                    if let Some(pos) = c.sockets.iter().position(|(cand, _)| *cand == candidate) {
                        let (_, socket) = c.sockets.swap_remove(pos);
                        if self.sockets.remove(socket).is_some() {
                            self.outputs.push_back(Output::CloseSocket { socket });
                        }
                    }
                }
                RaceAction::Won { candidate } => {
                    let Some(&(_, socket)) = c.sockets.iter().find(|(cand, _)| *cand == candidate)
                    else {
                        continue;
                    };
                    let Some(w) = c.race.candidate(candidate) else {
                        continue;
                    };
                    let (remote, interface) = (w.remote, c.race.path_interface(w.path));
                    c.state = ConnectionState::Established;
                    c.socket = Some(socket);
                    self.outputs.push_back(Output::Event(Event::Ready {
                        conn: id,
                        socket,
                        remote,
                        interface,
                    }));
                }
                RaceAction::Failed => {
                    let reason = c.race.failure().unwrap_or(RaceFailure::AllAttemptsFailed);
                    c.state = ConnectionState::Closed;
                    let error = EstablishmentError::from_trace(reason, &c.race.trace);
                    self.outputs
                        .push_back(Output::Event(Event::EstablishmentError { conn: id, error }));
                }
            }
        }
        if c.race.is_settled() && c.state != ConnectionState::Establishing {
            for (path, addr, outcome) in c.race.outcomes() {
                self.history.record(now, path, addr, outcome);
            }
            let txns: SmallVec<[DnsTxnId; 3]> = c.dns.iter().flatten().copied().collect();
            self.resolver.linger(now, id, &txns);
            for txn in txns {
                if let Some(deadline) = self.resolver.deadline(txn) {
                    self.timers.push(Reverse((deadline, Timer::Dns(txn))));
                }
            }
            // History is recorded once: from now on the race is inert.
            c.timer = None;
            return;
        }
        let next = c.race.poll_timeout();
        if next != c.timer {
            c.timer = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, Timer::Conn(id))));
            }
        }
    }

    /// Drops timer entries that no longer match their owner's deadline, so
    /// the top of the heap is always a live timer.
    fn purge_timers(&mut self) {
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            let live = match timer {
                Timer::Conn(id) => self.conns.get(id).is_some_and(|c| c.timer == Some(at)),
                Timer::Dns(txn) => self.resolver.deadline(txn) == Some(at),
            };
            if live {
                break;
            }
            self.timers.pop();
        }
    }
}

/// Which families the paths can send: HEv3 §4.1 "connectivity" is a local
/// address of the family (link-local IPv6 does not count). The system
/// default path is assumed to have both.
fn connectivity(paths: &[PathBranch], interfaces: &[Interface]) -> (bool, bool) {
    let (mut v4, mut v6) = (false, false);
    for p in paths {
        match p
            .interface
            .and_then(|i| interfaces.iter().find(|x| x.index == i))
        {
            None => return (true, true),
            Some(iface) => {
                for a in &iface.addrs {
                    match a.addr {
                        IpAddr::V4(_) => v4 = true,
                        IpAddr::V6(x) => v6 |= (x.segments()[0] & 0xffc0) != 0xfe80,
                    }
                }
            }
        }
    }
    (v4, v6)
}
