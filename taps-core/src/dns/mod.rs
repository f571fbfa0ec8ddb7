//! DNS for the core: queries built and parsed with hickory-proto, sent as
//! datagram actions, and checked before they are believed.
//!
//! - `wire`: RFC 1035 messages, CNAME chains, RFC 2308 negative answers and
//!   RFC 9460 HTTPS records.
//! - `config`: resolv.conf(5) and hosts(5) text, RFC 6761 `localhost`.
//! - `cache`: the TTL cache.
//! - `lookup`: the resolv.conf(5) search list and RFC 9460 §3 AliasMode
//!   chains, above single questions.
//! - this module: the `Resolver`, the transactions: one query message to one
//!   server, retransmitted on timeout, moved to the next server after
//!   `attempts` tries or a SERVFAIL/REFUSED, and retried over TCP when the
//!   answer is truncated (RFC 7766 §5).
//!
//! A question already in flight is not asked twice: a connection that needs
//! the answer to the same (name, type) joins the transaction carrying it
//! (at most [`MAX_WAITERS_PER_TRANSACTION`] connections each), wherever it
//! has got to in the server list, and every waiter gets its answer. A
//! connection that goes away only leaves the transaction; the last one to
//! leave ends it.
//!
//! An answer is accepted only when it comes from the server the query went
//! to, carries the query's id and repeats its question (RFC 5452 §9.1). Any
//! other datagram is dropped, counted and traced, and the query keeps waiting:
//! a forged answer must not be able to end a lookup.

pub(crate) mod cache;
pub(crate) mod config;
pub(crate) mod lookup;
pub(crate) mod wire;

pub use config::{
    HostsFile, MAX_NAMESERVERS, MAX_SEARCH_DOMAINS, MAX_WARNINGS, ResolvConf, localhost_addresses,
    parse_hosts, parse_resolv_conf, search_names,
};
pub use lookup::MAX_ALIAS_HOPS;
pub use wire::{
    Answer, DnsWireError, EDNS_UDP_PAYLOAD, HttpsRecord, MAX_ADDRESSES_PER_ANSWER, MAX_CNAME_DEPTH,
    MAX_HTTPS_RECORDS_PER_ANSWER, MAX_NEGATIVE_TTL, MAX_TTL, MalformedError, MalformedReason,
    QueryType, Response, TcpResponseReader, encode_query, frame_for_tcp, parse_response,
};

use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use smallvec::SmallVec;

use crate::endpoint::HostName;
use crate::hash::FxBuildHasher;
use crate::id::{ConnectionId, DnsTxnId, Table};
use crate::rng::Rng;
use crate::time::Instant;
use crate::trace::{DnsOutcome, DropReason};

/// How DNS queries are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsConfig {
    /// Servers, tried in this order.
    pub servers: Vec<SocketAddr>,
    /// How long to wait for an answer to one transmission. Default 1 s.
    pub timeout: Duration,
    /// Transmissions per server before moving on. Default 2.
    pub attempts: u8,
    /// Bound on cached names. Default 1024.
    pub cache_capacity: usize,
    /// After a race settles, outstanding queries may still fill the cache
    /// for this long (HEv3 §6 recommends 1 s) before they are abandoned.
    pub linger: Duration,
    /// resolv.conf(5) `search`/`domain`: domains appended to a name that is
    /// not absolute, in the order [`search_names`] gives. Empty by default.
    pub search: Vec<HostName>,
    /// resolv.conf(5) `options ndots:n`: a name with at least this many
    /// dots is tried as is before the search list. Default 1.
    pub ndots: u8,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            servers: Vec::new(),
            timeout: Duration::from_secs(1),
            attempts: 2,
            cache_capacity: 1024,
            linger: Duration::from_secs(1),
            search: Vec::new(),
            ndots: 1,
        }
    }
}

impl DnsConfig {
    /// The servers, timeout, attempts, search list and `ndots` of a parsed
    /// resolv.conf.
    pub fn from_resolv_conf(conf: &config::ResolvConf) -> Self {
        DnsConfig {
            servers: conf.nameservers.clone(),
            timeout: conf.timeout,
            attempts: conf.attempts.max(1),
            search: conf.search.clone(),
            ndots: conf.ndots,
            ..DnsConfig::default()
        }
    }
}

/// How a query message travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DnsTransport {
    /// One datagram each way, from a fresh socket with a random source port.
    Udp,
    /// A TCP connection; the payload already carries the RFC 1035 §4.2.2
    /// two-byte length prefix, and answers come back as stream bytes.
    Tcp,
}

/// Connections that may wait on one DNS transaction. The one after starts
/// a transaction of its own, which later connections then join.
pub const MAX_WAITERS_PER_TRANSACTION: usize = 64;

/// The connections waiting for one transaction's answer: (connection, its
/// name slot).
pub(crate) type Waiters = SmallVec<[(ConnectionId, u8); 1]>;

/// What the resolver tells the machine about a query.
// The settled answer is carried inline: notes are drained at once, and
// boxing it would cost an allocation per answer on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsNote {
    /// A transmission went out (its transaction is the query's current one).
    Sent {
        /// Owning connection.
        conn: ConnectionId,
        /// Which of its names (0: the endpoint's, 1..: SVCB targets).
        slot: u8,
        /// Record type.
        qtype: QueryType,
        /// The transaction now carrying the query.
        txn: DnsTxnId,
        /// Server asked.
        server: SocketAddr,
        /// Over TCP.
        tcp: bool,
        /// A repeat to the same server.
        retransmit: bool,
    },
    /// A datagram was rejected.
    Dropped {
        /// Owning connection.
        conn: ConnectionId,
        /// Which of its names (0: the endpoint's, 1..: SVCB targets).
        slot: u8,
        /// Record type.
        qtype: QueryType,
        /// Why.
        reason: DropReason,
    },
    /// This server's answer was not usable; asking again (over TCP after a
    /// truncation, else the next server).
    Retrying {
        /// Owning connection.
        conn: ConnectionId,
        /// Which of its names (0: the endpoint's, 1..: SVCB targets).
        slot: u8,
        /// Record type.
        qtype: QueryType,
        /// What went wrong.
        outcome: DnsOutcome,
    },
    /// The connection joined a transaction already asking its question.
    Joined {
        /// The joining connection.
        conn: ConnectionId,
        /// Which of its names.
        slot: u8,
        /// Record type.
        qtype: QueryType,
        /// The transaction carrying the query.
        txn: DnsTxnId,
        /// The server it is asking now.
        server: SocketAddr,
    },
    /// The question is settled.
    Settled {
        /// The connections still waiting for it (none when every race that
        /// asked has settled and the answer only feeds the cache).
        waiters: Waiters,
        /// The name asked about.
        name: HostName,
        /// Record type.
        qtype: QueryType,
        /// The answer (`None` when every server failed or timed out).
        answer: Option<Answer>,
        /// A summary for the trace.
        outcome: DnsOutcome,
    },
}

/// A DNS message the adapter must send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsSend {
    /// Quote this in the answer's input.
    pub txn: DnsTxnId,
    /// Where to.
    pub server: SocketAddr,
    /// How.
    pub transport: DnsTransport,
    /// The message bytes.
    pub payload: Vec<u8>,
}

/// What the resolver asks the adapter to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsAction {
    /// Send a query.
    Send(DnsSend),
    /// The transaction is over: close its socket.
    Release(DnsTxnId),
}

#[derive(Debug)]
struct Txn {
    /// The connections waiting, each with its name slot (0 the endpoint's,
    /// 1.. SVCB targets). Empty: lingering, only to fill the cache.
    waiters: Waiters,
    name: HostName,
    qtype: QueryType,
    server: usize,
    id: u16,
    transport: DnsTransport,
    tries: u8,
    deadline: Instant,
    tcp: Option<TcpResponseReader>,
}

impl Txn {
    fn lingering(&self) -> bool {
        self.waiters.is_empty()
    }
}

/// Query ids from a secure random source, drawn 32 at a time: one
/// getrandom(2) per 32 queries instead of one per query, which had made a
/// dual-stack establishment 40 % slower (3.2 to 4.5 µs). Ids drawn ahead are
/// as unpredictable as the source (RFC 5452 §9.2); a source that fails
/// gives none.
struct SecureIds {
    source: &'static dyn rustls::crypto::SecureRandom,
    pool: [u8; 64],
    next: usize,
}

impl SecureIds {
    fn new(source: &'static dyn rustls::crypto::SecureRandom) -> Self {
        SecureIds {
            source,
            pool: [0; 64],
            next: 64,
        }
    }

    fn next(&mut self) -> Option<u16> {
        if self.next + 2 > self.pool.len() {
            self.source.fill(&mut self.pool).ok()?;
            self.next = 0;
        }
        let id = u16::from_ne_bytes([self.pool[self.next], self.pool[self.next + 1]]);
        self.next += 2;
        Some(id)
    }
}

impl core::fmt::Debug for SecureIds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The ids to come are not for logs.
        f.debug_struct("SecureIds").finish_non_exhaustive()
    }
}

/// The DNS transactions of one machine.
#[derive(Debug)]
pub(crate) struct Resolver {
    config: DnsConfig,
    /// Where query ids come from: the TLS environment's secure random
    /// when the machine has one; the machine's seeded `Rng` only for an
    /// embedder that gave no environment (ARCHITECTURE.md "The core
    /// contract" rule 1).
    secure_ids: Option<SecureIds>,
    txns: Table<DnsTxnId, Txn>,
    /// The transaction asking each (name, type), for others to join, by
    /// the name's hash: a collision only makes a second transaction (the
    /// name is compared before joining), so the fixed Fx hash is safe.
    asking: HashMap<(u64, QueryType), DnsTxnId, FxBuildHasher>,
    actions: VecDeque<DnsAction>,
    notes: VecDeque<DnsNote>,
    /// Datagrams rejected (wrong source, id, question, or unparsable).
    pub dropped: u64,
    /// Transmissions sent, retransmissions included.
    pub sent: u64,
}

impl Resolver {
    /// A resolver with no transactions.
    pub(crate) fn new(
        config: DnsConfig,
        secure_random: Option<&'static dyn rustls::crypto::SecureRandom>,
    ) -> Self {
        Resolver {
            config,
            secure_ids: secure_random.map(SecureIds::new),
            txns: Table::default(),
            asking: HashMap::default(),
            actions: VecDeque::new(),
            notes: VecDeque::new(),
            dropped: 0,
            sent: 0,
        }
    }

    /// The next action for the adapter. Drain after every call.
    pub(crate) fn poll_action(&mut self) -> Option<DnsAction> {
        self.actions.pop_front()
    }

    /// The next note for the machine. Drain after every call.
    pub(crate) fn poll_note(&mut self) -> Option<DnsNote> {
        self.notes.pop_front()
    }

    /// Whether `txn` is live.
    pub(crate) fn is_live(&self, txn: DnsTxnId) -> bool {
        self.txns.contains(txn)
    }

    /// The transaction's deadline, to validate a timer.
    pub(crate) fn deadline(&self, txn: DnsTxnId) -> Option<Instant> {
        self.txns.get(txn).map(|t| t.deadline)
    }

    /// Whether no transaction is live.
    pub(crate) fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// Asks the question (`name`, `qtype`) for name `slot` of `conn`: joins
    /// a transaction already asking it, or sends it to the first server.
    pub(crate) fn query(
        &mut self,
        now: Instant,
        (conn, slot): (ConnectionId, u8),
        name: &HostName,
        qtype: QueryType,
        rng: &mut Rng,
    ) {
        let key = (name_hash(name), qtype);
        let joinable = self.asking.get(&key).copied().filter(|txn| {
            self.txns.get(*txn).is_some_and(|t| {
                t.qtype == qtype
                    && t.name == *name
                    && t.waiters.len() < MAX_WAITERS_PER_TRANSACTION
                    && !t.waiters.iter().any(|w| w.0 == conn)
            })
        });
        if let Some((txn, t)) = joinable.and_then(|id| Some((id, self.txns.get_mut(id)?))) {
            t.waiters.push((conn, slot));
            let server = self.config.servers[t.server];
            self.notes.push_back(DnsNote::Joined {
                conn,
                slot,
                qtype,
                txn,
                server,
            });
            return;
        }
        let waiters: Waiters = smallvec::smallvec![(conn, slot)];
        self.send_to_server(now, waiters, name.clone(), qtype, 0, DnsTransport::Udp, rng);
    }

    #[allow(clippy::too_many_arguments)]
    fn send_to_server(
        &mut self,
        now: Instant,
        waiters: Waiters,
        name: HostName,
        qtype: QueryType,
        server: usize,
        transport: DnsTransport,
        rng: &mut Rng,
    ) {
        let Some(&server_addr) = self.config.servers.get(server) else {
            let outcome = if self.config.servers.is_empty() {
                DnsOutcome::NoServers
            } else {
                DnsOutcome::Timeout
            };
            self.notes.push_back(DnsNote::Settled {
                waiters,
                name,
                qtype,
                answer: None,
                outcome,
            });
            return;
        };
        let id = match self.secure_ids.as_mut() {
            None => rng.next_u16(),
            Some(ids) => {
                let Some(id) = ids.next() else {
                    self.notes.push_back(DnsNote::Settled {
                        waiters,
                        name,
                        qtype,
                        answer: None,
                        outcome: DnsOutcome::NoRandomness,
                    });
                    return;
                };
                id
            }
        };
        let payload = encode(id, &name, qtype, transport);
        let notes: Waiters = waiters.clone();
        let key = (name_hash(&name), qtype);
        let txn = self.txns.insert(Txn {
            waiters,
            name,
            qtype,
            server,
            id,
            transport,
            tries: 1,
            deadline: now + self.config.timeout,
            tcp: (transport == DnsTransport::Tcp).then(TcpResponseReader::default),
        });
        self.asking.insert(key, txn);
        self.sent += 1;
        self.actions.push_back(DnsAction::Send(DnsSend {
            txn,
            server: server_addr,
            transport,
            payload,
        }));
        for (conn, slot) in notes {
            self.notes.push_back(DnsNote::Sent {
                conn,
                slot,
                qtype,
                txn,
                server: server_addr,
                tcp: transport == DnsTransport::Tcp,
                retransmit: false,
            });
        }
    }

    /// One note per waiter of `txn`.
    fn tell_waiters(&mut self, txn: DnsTxnId, note: impl Fn(ConnectionId, u8) -> DnsNote) {
        if let Some(t) = self.txns.get(txn) {
            for &(conn, slot) in &t.waiters {
                self.notes.push_back(note(conn, slot));
            }
        }
    }

    /// A datagram arrived on `txn`'s socket from `from`.
    pub(crate) fn on_datagram(
        &mut self,
        now: Instant,
        txn: DnsTxnId,
        from: SocketAddr,
        payload: &[u8],
        rng: &mut Rng,
    ) {
        let Some(t) = self.txns.get(txn) else { return };
        if t.transport != DnsTransport::Udp {
            return;
        }
        if self.config.servers.get(t.server) != Some(&from) {
            self.dropped += 1;
            let qtype = t.qtype;
            self.tell_waiters(txn, |conn, slot| DnsNote::Dropped {
                conn,
                slot,
                qtype,
                reason: DropReason::WrongSource,
            });
            return;
        }
        self.on_message(now, txn, payload, rng);
    }

    /// Bytes arrived on `txn`'s TCP connection.
    pub(crate) fn on_stream_data(
        &mut self,
        now: Instant,
        txn: DnsTxnId,
        data: &[u8],
        rng: &mut Rng,
    ) {
        let Some(t) = self.txns.get_mut(txn) else {
            return;
        };
        let Some(reader) = t.tcp.as_mut() else { return };
        // Only the first complete message matters: it settles or drops the
        // query; bytes after it would answer nothing we asked.
        let _consumed = reader.push(data);
        if let Some(message) = reader.take_message() {
            self.on_message(now, txn, &message, rng);
        }
    }

    fn on_message(&mut self, now: Instant, txn: DnsTxnId, payload: &[u8], rng: &mut Rng) {
        let Some(t) = self.txns.get(txn) else { return };
        let (qtype, id, server, transport) = (t.qtype, t.id, t.server, t.transport);
        let response = match wire::parse_response(payload, id, &t.name, qtype) {
            Ok(r) => r,
            // The server's own answer (id, question and source matched),
            // well formed, but unusable: the question settles with the
            // reason, so the failure names it (a wrong id or question, or
            // garbage, is dropped: it may not be the server's).
            Err(e @ (DnsWireError::CnameChainTooDeep | DnsWireError::CnameLoop)) => {
                let outcome = if e == DnsWireError::CnameLoop {
                    DnsOutcome::CnameLoop
                } else {
                    DnsOutcome::CnameChainTooDeep
                };
                self.settle(txn, None, outcome);
                return;
            }
            Err(e) => {
                self.dropped += 1;
                let reason = match e {
                    DnsWireError::IdMismatch { .. } => DropReason::WrongId,
                    DnsWireError::QuestionMismatch => DropReason::WrongQuestion,
                    _ => DropReason::Malformed,
                };
                self.tell_waiters(txn, |conn, slot| DnsNote::Dropped {
                    conn,
                    slot,
                    qtype,
                    reason,
                });
                // A garbled TCP stream cannot resynchronise: try the next server.
                if transport == DnsTransport::Tcp {
                    self.next_server(now, txn, DnsOutcome::Malformed, rng);
                }
                return;
            }
        };
        if response.truncated && transport == DnsTransport::Udp {
            self.tell_waiters(txn, |conn, slot| DnsNote::Retrying {
                conn,
                slot,
                qtype,
                outcome: DnsOutcome::Truncated,
            });
            // Lingering, nobody waits: the cache does without this answer
            // rather than keep a TCP connection that no one's timer ends.
            if let Some(t) = self.release(txn).filter(|t| !t.lingering()) {
                self.send_to_server(
                    now,
                    t.waiters,
                    t.name,
                    qtype,
                    server,
                    DnsTransport::Tcp,
                    rng,
                );
            }
            return;
        }
        let outcome = outcome_of(&response.answer);
        match response.answer {
            // RFC 1035 §7.2: a server failure is a reason to ask another.
            Answer::ServFail | Answer::Refused | Answer::OtherError { .. }
                if server + 1 < self.config.servers.len() =>
            {
                self.next_server(now, txn, outcome, rng);
            }
            answer => self.settle(txn, Some(answer), outcome),
        }
    }

    /// `txn` is over: its waiters (and the cache) get `answer`.
    fn settle(&mut self, txn: DnsTxnId, answer: Option<Answer>, outcome: DnsOutcome) {
        if let Some(t) = self.release(txn) {
            self.notes.push_back(DnsNote::Settled {
                waiters: t.waiters,
                name: t.name,
                qtype: t.qtype,
                answer,
                outcome,
            });
        }
    }

    fn next_server(&mut self, now: Instant, txn: DnsTxnId, why: DnsOutcome, rng: &mut Rng) {
        let Some(t) = self.release(txn) else { return };
        // Lingering: nobody waits for more servers.
        if t.lingering() {
            return;
        }
        if t.server + 1 < self.config.servers.len() {
            for &(conn, slot) in &t.waiters {
                self.notes.push_back(DnsNote::Retrying {
                    conn,
                    slot,
                    qtype: t.qtype,
                    outcome: why,
                });
            }
        }
        self.send_to_server(
            now,
            t.waiters,
            t.name,
            t.qtype,
            t.server + 1,
            DnsTransport::Udp,
            rng,
        );
    }

    /// The adapter could not send on, or lost the connection of, `txn`.
    pub(crate) fn on_transport_failed(&mut self, now: Instant, txn: DnsTxnId, rng: &mut Rng) {
        if self.txns.contains(txn) {
            self.next_server(now, txn, DnsOutcome::TransportFailed, rng);
        }
    }

    /// `txn`'s deadline passed: retransmit, move on, or give up.
    pub(crate) fn on_timeout(&mut self, now: Instant, txn: DnsTxnId, rng: &mut Rng) {
        let Some(t) = self.txns.get_mut(txn) else {
            return;
        };
        if now < t.deadline {
            return;
        }
        if t.lingering() {
            self.release(txn);
            return;
        }
        if t.tries < self.config.attempts && t.transport == DnsTransport::Udp {
            t.tries += 1;
            t.deadline = now + self.config.timeout;
            let (qtype, id, server) = (t.qtype, t.id, t.server);
            let server_addr = self.config.servers[server];
            let payload = encode(id, &t.name, qtype, DnsTransport::Udp);
            self.sent += 1;
            self.actions.push_back(DnsAction::Send(DnsSend {
                txn,
                server: server_addr,
                transport: DnsTransport::Udp,
                payload,
            }));
            self.tell_waiters(txn, |conn, slot| DnsNote::Sent {
                conn,
                slot,
                qtype,
                txn,
                server: server_addr,
                tcp: false,
                retransmit: true,
            });
            return;
        }
        self.next_server(now, txn, DnsOutcome::Timeout, rng);
    }

    /// The race of `conn` settled: it stops waiting on `txns`. One nobody
    /// else waits for may run on for the linger time to fill the cache,
    /// without retransmissions or further servers.
    pub(crate) fn linger(&mut self, now: Instant, conn: ConnectionId, txns: &[DnsTxnId]) {
        let until = now + self.config.linger;
        for id in txns {
            if let Some(t) = self.txns.get_mut(*id) {
                t.waiters.retain(|w| w.0 != conn);
                if t.lingering() {
                    t.deadline = t.deadline.min(until);
                }
            }
        }
    }

    /// `conn` is gone or no longer needs `txns`: it leaves them, and a
    /// transaction nobody waits for any more ends at once.
    pub(crate) fn leave(&mut self, conn: ConnectionId, txns: &[DnsTxnId]) {
        for id in txns {
            let Some(t) = self.txns.get_mut(*id) else {
                continue;
            };
            t.waiters.retain(|w| w.0 != conn);
            if t.lingering() {
                self.release(*id);
            }
        }
    }

    /// Ends `txns` whoever waits on them (NAT64 discovery for a network
    /// that is gone).
    pub(crate) fn abandon(&mut self, txns: &[DnsTxnId]) {
        for txn in txns {
            self.release(*txn);
        }
    }

    fn release(&mut self, txn: DnsTxnId) -> Option<Txn> {
        let t = self.txns.remove(txn)?;
        let key = (name_hash(&t.name), t.qtype);
        if self.asking.get(&key) == Some(&txn) {
            self.asking.remove(&key);
        }
        self.actions.push_back(DnsAction::Release(txn));
        Some(t)
    }
}

fn name_hash(name: &HostName) -> u64 {
    use core::hash::BuildHasher;
    FxBuildHasher::default().hash_one(name)
}

fn encode(id: u16, name: &HostName, qtype: QueryType, transport: DnsTransport) -> Vec<u8> {
    let mut message = Vec::with_capacity(64);
    wire::encode_query(id, name, qtype, &mut message);
    match transport {
        DnsTransport::Udp => message,
        DnsTransport::Tcp => {
            let mut framed = Vec::with_capacity(message.len() + 2);
            wire::frame_for_tcp(&message, &mut framed);
            framed
        }
    }
}

/// The trace summary of an answer.
pub(crate) fn outcome_of(answer: &Answer) -> DnsOutcome {
    match answer {
        Answer::Addresses { addrs, ttl } => DnsOutcome::Positive {
            count: addrs.len() as u16,
            ttl: *ttl,
        },
        Answer::Https { records, ttl } => DnsOutcome::Positive {
            count: records.len() as u16,
            ttl: *ttl,
        },
        Answer::NoData { .. } => DnsOutcome::NoData,
        Answer::NxDomain { .. } => DnsOutcome::NxDomain,
        Answer::ServFail => DnsOutcome::ServFail,
        Answer::Refused => DnsOutcome::Refused,
        Answer::OtherError { rcode } => DnsOutcome::Error(*rcode),
    }
}
