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
use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::endpoint::HostName;
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
    /// The question is settled.
    Settled {
        /// Owning connection.
        conn: ConnectionId,
        /// Which of its names (0: the endpoint's, 1..: SVCB targets).
        slot: u8,
        /// Record type.
        qtype: QueryType,
        /// The answer (`None` when every server failed or timed out).
        answer: Option<Answer>,
        /// A summary for the trace.
        outcome: DnsOutcome,
        /// True when the race had already settled and the answer only feeds
        /// the cache.
        lingering: bool,
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
    conn: ConnectionId,
    /// Which of the connection's names: 0 the endpoint's, 1.. SVCB targets.
    slot: u8,
    qtype: QueryType,
    server: usize,
    id: u16,
    transport: DnsTransport,
    tries: u8,
    deadline: Instant,
    lingering: bool,
    tcp: Option<TcpResponseReader>,
}

/// The DNS transactions of one machine.
#[derive(Debug)]
pub(crate) struct Resolver {
    config: DnsConfig,
    txns: Table<DnsTxnId, Txn>,
    actions: VecDeque<DnsAction>,
    notes: VecDeque<DnsNote>,
    /// Datagrams rejected (wrong source, id, question, or unparsable).
    pub dropped: u64,
    /// Transmissions sent, retransmissions included.
    pub sent: u64,
}

impl Resolver {
    /// A resolver with no transactions.
    pub(crate) fn new(config: DnsConfig) -> Self {
        Resolver {
            config,
            txns: Table::default(),
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

    /// The connection, name slot and record type a transaction serves.
    pub(crate) fn txn_owner(&self, txn: DnsTxnId) -> Option<(ConnectionId, u8, QueryType)> {
        self.txns.get(txn).map(|t| (t.conn, t.slot, t.qtype))
    }

    /// The transaction's deadline, to validate a timer.
    pub(crate) fn deadline(&self, txn: DnsTxnId) -> Option<Instant> {
        self.txns.get(txn).map(|t| t.deadline)
    }

    /// Whether no transaction is live.
    pub(crate) fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// Sends the question (`name`, `qtype`) for name `slot` of `conn` to the
    /// first server.
    pub(crate) fn query(
        &mut self,
        now: Instant,
        (conn, slot): (ConnectionId, u8),
        name: &HostName,
        qtype: QueryType,
        rng: &mut Rng,
    ) {
        self.send_to_server(now, (conn, slot), name, qtype, 0, DnsTransport::Udp, rng);
    }

    #[allow(clippy::too_many_arguments)]
    fn send_to_server(
        &mut self,
        now: Instant,
        (conn, slot): (ConnectionId, u8),
        name: &HostName,
        qtype: QueryType,
        server: usize,
        transport: DnsTransport,
        rng: &mut Rng,
    ) -> Option<DnsTxnId> {
        let Some(&server_addr) = self.config.servers.get(server) else {
            let outcome = if self.config.servers.is_empty() {
                DnsOutcome::NoServers
            } else {
                DnsOutcome::Timeout
            };
            self.settle_unanswered((conn, slot), qtype, outcome, false);
            return None;
        };
        let id = rng.next_u16();
        let txn = self.txns.insert(Txn {
            conn,
            slot,
            qtype,
            server,
            id,
            transport,
            tries: 1,
            deadline: now + self.config.timeout,
            lingering: false,
            tcp: (transport == DnsTransport::Tcp).then(TcpResponseReader::default),
        });
        self.sent += 1;
        self.actions.push_back(DnsAction::Send(DnsSend {
            txn,
            server: server_addr,
            transport,
            payload: encode(id, name, qtype, transport),
        }));
        self.notes.push_back(DnsNote::Sent {
            conn,
            slot,
            qtype,
            txn,
            server: server_addr,
            tcp: transport == DnsTransport::Tcp,
            retransmit: false,
        });
        Some(txn)
    }

    /// A datagram arrived on `txn`'s socket from `from`. `name` is the name
    /// the query asked about.
    pub(crate) fn on_datagram(
        &mut self,
        now: Instant,
        txn: DnsTxnId,
        from: SocketAddr,
        payload: &[u8],
        name: &HostName,
        rng: &mut Rng,
    ) {
        let Some(t) = self.txns.get(txn) else { return };
        if t.transport != DnsTransport::Udp {
            return;
        }
        if self.config.servers.get(t.server) != Some(&from) {
            self.dropped += 1;
            self.notes.push_back(DnsNote::Dropped {
                conn: t.conn,
                slot: t.slot,
                qtype: t.qtype,
                reason: DropReason::WrongSource,
            });
            return;
        }
        self.on_message(now, txn, payload, name, rng);
    }

    /// The question settles with no usable answer, for `outcome`.
    fn settle_unanswered(
        &mut self,
        (conn, slot): (ConnectionId, u8),
        qtype: QueryType,
        outcome: DnsOutcome,
        lingering: bool,
    ) {
        self.notes.push_back(DnsNote::Settled {
            conn,
            slot,
            qtype,
            answer: None,
            outcome,
            lingering,
        });
    }

    /// Bytes arrived on `txn`'s TCP connection.
    pub(crate) fn on_stream_data(
        &mut self,
        now: Instant,
        txn: DnsTxnId,
        data: &[u8],
        name: &HostName,
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
            self.on_message(now, txn, &message, name, rng);
        }
    }

    fn on_message(
        &mut self,
        now: Instant,
        txn: DnsTxnId,
        payload: &[u8],
        name: &HostName,
        rng: &mut Rng,
    ) {
        let Some(t) = self.txns.get(txn) else { return };
        let (conn, slot, qtype, id, server, transport, lingering) = (
            t.conn,
            t.slot,
            t.qtype,
            t.id,
            t.server,
            t.transport,
            t.lingering,
        );
        let response = match wire::parse_response(payload, id, name, qtype) {
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
                self.release(txn);
                self.settle_unanswered((conn, slot), qtype, outcome, lingering);
                return;
            }
            Err(e) => {
                self.dropped += 1;
                let reason = match e {
                    DnsWireError::IdMismatch { .. } => DropReason::WrongId,
                    DnsWireError::QuestionMismatch => DropReason::WrongQuestion,
                    _ => DropReason::Malformed,
                };
                self.notes.push_back(DnsNote::Dropped {
                    conn,
                    slot,
                    qtype,
                    reason,
                });
                // A garbled TCP stream cannot resynchronise: try the next server.
                if transport == DnsTransport::Tcp {
                    self.next_server(now, txn, DnsOutcome::Malformed, name, rng);
                }
                return;
            }
        };
        if response.truncated && transport == DnsTransport::Udp {
            self.notes.push_back(DnsNote::Retrying {
                conn,
                slot,
                qtype,
                outcome: DnsOutcome::Truncated,
            });
            self.release(txn);
            let tcp = self.send_to_server(
                now,
                (conn, slot),
                name,
                qtype,
                server,
                DnsTransport::Tcp,
                rng,
            );
            if let Some(t) = tcp.and_then(|id| self.txns.get_mut(id)) {
                t.lingering = lingering;
            }
            return;
        }
        let outcome = outcome_of(&response.answer);
        match response.answer {
            // RFC 1035 §7.2: a server failure is a reason to ask another.
            Answer::ServFail | Answer::Refused | Answer::OtherError { .. }
                if server + 1 < self.config.servers.len() =>
            {
                self.next_server(now, txn, outcome, name, rng);
            }
            answer => {
                self.release(txn);
                self.notes.push_back(DnsNote::Settled {
                    conn,
                    slot,
                    qtype,
                    answer: Some(answer),
                    outcome,
                    lingering,
                });
            }
        }
    }

    fn next_server(
        &mut self,
        now: Instant,
        txn: DnsTxnId,
        why: DnsOutcome,
        name: &HostName,
        rng: &mut Rng,
    ) {
        let Some(t) = self.txns.get(txn) else { return };
        let (conn, slot, qtype, server, lingering) =
            (t.conn, t.slot, t.qtype, t.server, t.lingering);
        self.release(txn);
        if lingering {
            return;
        }
        if server + 1 < self.config.servers.len() {
            self.notes.push_back(DnsNote::Retrying {
                conn,
                slot,
                qtype,
                outcome: why,
            });
        }
        self.send_to_server(
            now,
            (conn, slot),
            name,
            qtype,
            server + 1,
            DnsTransport::Udp,
            rng,
        );
    }

    /// The adapter could not send on, or lost the connection of, `txn`.
    pub(crate) fn on_transport_failed(
        &mut self,
        now: Instant,
        txn: DnsTxnId,
        name: &HostName,
        rng: &mut Rng,
    ) {
        if self.txns.contains(txn) {
            self.next_server(now, txn, DnsOutcome::TransportFailed, name, rng);
        }
    }

    /// `txn`'s deadline passed: retransmit, move on, or give up.
    pub(crate) fn on_timeout(
        &mut self,
        now: Instant,
        txn: DnsTxnId,
        name: &HostName,
        rng: &mut Rng,
    ) {
        let Some(t) = self.txns.get_mut(txn) else {
            return;
        };
        if now < t.deadline {
            return;
        }
        if t.lingering {
            self.release(txn);
            return;
        }
        if t.tries < self.config.attempts && t.transport == DnsTransport::Udp {
            t.tries += 1;
            t.deadline = now + self.config.timeout;
            let (conn, slot, qtype, id, server) = (t.conn, t.slot, t.qtype, t.id, t.server);
            let server_addr = self.config.servers[server];
            self.sent += 1;
            self.actions.push_back(DnsAction::Send(DnsSend {
                txn,
                server: server_addr,
                transport: DnsTransport::Udp,
                payload: encode(id, name, qtype, DnsTransport::Udp),
            }));
            self.notes.push_back(DnsNote::Sent {
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
        self.next_server(now, txn, DnsOutcome::Timeout, name, rng);
    }

    /// The race of `conn` settled: its queries may run on for the linger
    /// time to fill the cache, without retransmissions or further servers.
    pub(crate) fn linger(&mut self, now: Instant, conn: ConnectionId, txns: &[DnsTxnId]) {
        let until = now + self.config.linger;
        for id in txns {
            if let Some(t) = self.txns.get_mut(*id).filter(|t| t.conn == conn) {
                t.lingering = true;
                t.deadline = t.deadline.min(until);
            }
        }
    }

    /// Drops `txns` at once (their connection is gone).
    pub(crate) fn abandon(&mut self, txns: &[DnsTxnId]) {
        for id in txns {
            self.release(*id);
        }
    }

    fn release(&mut self, txn: DnsTxnId) {
        if self.txns.remove(txn).is_some() {
            self.actions.push_back(DnsAction::Release(txn));
        }
    }
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
