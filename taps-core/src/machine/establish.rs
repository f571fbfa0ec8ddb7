//! Establishment: `initiate`, name resolution (hosts file, `localhost`,
//! cache, DNS transactions) and the race's decisions turned into outputs
//! (RFC 9623 §4.1-§4.3, HEv3 §4-§6). Each attempt gets its own protocol
//! stack; the first message of `initiate_with_send` rides early where that
//! is safe (RFC 9622 §7.2, RFC 9623 §4.3).

use std::cmp::Reverse;
use std::net::{IpAddr, SocketAddr};

use smallvec::SmallVec;

use super::{
    Conn, ConnectionState, EstablishmentError, Event, InitiateError, MAX_TLS_CONFIGS, Machine,
    Output, Preconnection, Role, Sock, Timer,
};
use crate::connection::{ConnIo, Message, MessageId};
use crate::dns::config::localhost_addresses;
use crate::dns::lookup::{AliasChain, AliasStep, NameSearch, SearchStep};
use crate::dns::wire::{Answer, HttpsRecord, QueryType};
use crate::dns::{DnsNote, outcome_of, search_names};
use crate::endpoint::{Host, HostName, Protocol};
use crate::id::{ConnectionId, DnsTxnId};
use crate::interface::Interface;
use crate::nat64::DISCOVERY_SLOT;
use crate::path::{PathBranch, derive_paths};
use crate::properties::ZeroRttOutcome;
use crate::race::{
    AddressAnswer, CandidateId, Expected, Family, Race, RaceAction, RaceEnv, RaceFailure,
};
use crate::security::SecurityParameters;
use crate::socket_options::{AppliedTcpOptions, TcpSocketOptions};
use crate::stack::Stack;
use crate::stack::tls::ClientTls;
use crate::time::Instant;
use crate::trace::{CertText, DnsOutcome, FailureReason, LocalSource, NameStep, TraceKind};

impl Machine {
    /// Starts establishing a connection (RFC 9622 §7.1 `Initiate`).
    pub fn initiate(
        &mut self,
        now: Instant,
        pre: &Preconnection,
    ) -> Result<ConnectionId, InitiateError> {
        self.start(now, pre, None).map(|(id, _)| id)
    }

    /// `InitiateWithSend` (RFC 9622 §7.2): starts establishing and queues
    /// `message` as the first message. When it is safely replayable, every
    /// attempt that can carries it early (TCP Fast Open, TLS 1.3 early data);
    /// the winner sends whatever did not go early. A message that is not
    /// safely replayable is never sent early.
    pub fn initiate_with_send(
        &mut self,
        now: Instant,
        pre: &Preconnection,
        message: Message,
    ) -> Result<(ConnectionId, MessageId), InitiateError> {
        let (id, msg) = self.start(now, pre, Some(message))?;
        Ok((id, msg.unwrap_or(MessageId(0))))
    }

    fn start(
        &mut self,
        now: Instant,
        pre: &Preconnection,
        first: Option<Message>,
    ) -> Result<(ConnectionId, Option<MessageId>), InitiateError> {
        if self.conns.len() >= self.config.max_connections {
            return Err(InitiateError::TooManyConnections(
                self.config.max_connections,
            ));
        }
        let host = match &pre.remote.host {
            None => return Err(InitiateError::NoHost),
            Some(Host::Service(_)) => return Err(InitiateError::ServiceResolutionUnsupported),
            Some(h) => h.clone(),
        };
        let port = pre.remote.effective_port().ok_or(InitiateError::NoPort)?;
        if let Some(protocol @ (Protocol::Udp | Protocol::Quic)) = pre.remote.protocol {
            return Err(InitiateError::ProtocolUnsupported(protocol));
        }
        if let Some(conflict) = pre.properties.selection.tcp_conflict(pre.framer.is_some()) {
            return Err(InitiateError::Properties(conflict));
        }
        let bound = pre
            .local
            .as_ref()
            .and_then(|l| l.interface.as_deref())
            .or(pre.remote.interface.as_deref());
        let paths = derive_paths(&self.interfaces, &pre.properties.selection, bound)
            .map_err(InitiateError::Path)?;
        let tls = match &pre.security {
            Some(params) => Some(self.client_tls(params).map_err(InitiateError::Tls)?),
            None => None,
        };
        let local = pre.local.as_ref().and_then(|l| match l.host {
            Some(Host::Ip(ip)) => Some(SocketAddr::new(ip, l.port.unwrap_or(0))),
            _ => None,
        });
        let race_config = pre.race.unwrap_or(self.config.race);
        let (has_v4, has_v6) = connectivity(&paths, &self.interfaces);
        let nat64 = self.nat64_plan(now, &paths, &host);
        let seed = self.rng.next_u64();
        let conn_timeout = pre.properties.connection.conn_timeout;

        let (search, expected) = match &host {
            Host::Ip(ip) => (
                None,
                Expected {
                    v4: ip.is_ipv4(),
                    v6: ip.is_ipv6(),
                    svcb: false,
                },
            ),
            Host::Name(name) => {
                let expected = Expected {
                    v4: has_v4 || !has_v6 || nat64.wants_a,
                    v6: has_v6,
                    svcb: race_config.uses_svcb(),
                };
                let dns = &self.config.dns;
                let names = search_names(name, &dns.search, dns.ndots);
                let search = NameSearch::new(names, expected.v4, expected.v6, expected.svcb);
                (Some(search), expected)
            }
            Host::Service(_) => return Err(InitiateError::ServiceResolutionUnsupported),
        };
        let https_qname = search
            .as_ref()
            .and_then(|s| https_name(s.name(), port, expected.svcb));
        // Only TLS uses it (`start_attempt`): a plain connection does not
        // spell out its address.
        let server_name = pre.security.as_ref().and_then(|s| {
            s.server_name.clone().or_else(|| match &host {
                Host::Name(n) => Some(n.as_str().to_string()),
                Host::Ip(ip) => Some(ip.to_string()),
                Host::Service(_) => None,
            })
        });
        let mut io = ConnIo::new(self.config.io);
        // Decided here when the first Message cannot go early; otherwise
        // the winning attempt decides it (`on_won`).
        let mut zero_rtt = ZeroRttOutcome::NoFirstMessage;
        let first_id = match first {
            None => None,
            Some(message) => {
                let replayable = message.properties.safely_replayable;
                let early_ok = pre.security.as_ref().is_none_or(|s| s.allow_early_data);
                zero_rtt = match (replayable, early_ok) {
                    (false, _) => ZeroRttOutcome::NotSafelyReplayable,
                    (true, false) => ZeroRttOutcome::DisallowedBySecurity,
                    (true, true) => ZeroRttOutcome::NoResumableSession,
                };
                let data = (replayable && early_ok).then(|| message.data.clone());
                let id = io.enqueue(now, message).map_err(InitiateError::Send)?;
                if let Some(data) = data {
                    io.set_early(id, data);
                }
                Some(id)
            }
        };
        let race = Race::new(now, race_config, port, &paths, expected, conn_timeout, seed);
        let id = self.conns.insert(Conn {
            state: ConnectionState::Establishing,
            role: Role::Active(Box::new(race)),
            search,
            https_qname,
            alias: AliasChain::default(),
            dns: SmallVec::new(),
            targets: SmallVec::new(),
            sockets: SmallVec::new(),
            socket: None,
            properties: pre.properties.clone(),
            local,
            timer: None,
            io,
            tls,
            server_name,
            framer: pre.framer.clone(),
            close_deadline: None,
            path_interface: None,
            detached: false,
            terminated: false,
            race_recorded: false,
            remote: Some((host.clone(), port)),
            zero_rtt,
        });
        self.nat64_begin(now, id, &nat64);

        match &host {
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
        self.purge_timers();
        Ok((id, first_id))
    }

    /// The cached TLS configuration for `params`, built on first use.
    fn client_tls(
        &mut self,
        params: &SecurityParameters,
    ) -> Result<ClientTls, crate::stack::tls::TlsConfigError> {
        if let Some(pos) = self.client_tls.iter().position(|(p, _)| p == params) {
            let entry = self.client_tls.remove(pos);
            let tls = entry.1.clone();
            self.client_tls.push(entry);
            return Ok(tls);
        }
        let tls = ClientTls::new(params, self.config.tls.as_ref())?;
        if self.client_tls.len() >= MAX_TLS_CONFIGS {
            self.client_tls.remove(0);
        }
        self.client_tls.push((params.clone(), tls.clone()));
        Ok(tls)
    }

    /// Hosts file, `localhost`, cache, then the wire: HTTPS, AAAA, A in the
    /// order HEv3 §4.1 gives.
    fn resolve(&mut self, now: Instant, id: ConnectionId, name: &HostName, expected: Expected) {
        let hosts = self.config.hosts.lookup(name);
        let (local, source) = if !hosts.is_empty() {
            (hosts, LocalSource::HostsFile)
        } else if let Some(l) = localhost_addresses(name) {
            (l, LocalSource::Localhost)
        } else {
            (&[][..], LocalSource::HostsFile)
        };
        if !local.is_empty() {
            if let Some(search) = self.conns.get_mut(id).and_then(|c| c.search.as_mut()) {
                search.settle_locally();
            }
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
                self.deliver_answer(now, id, 0, QueryType::Https, None);
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
        self.query_search_name(now, id);
    }

    /// Asks every question about the search list's current name, naming it
    /// in the trace when the list has more than one.
    fn query_search_name(&mut self, now: Instant, id: ConnectionId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let Some(search) = c.search.as_ref() else {
            return;
        };
        let questions = search.questions();
        if search.is_search() {
            let (index, of) = search.position();
            let name = CertText::new(search.name().as_str());
            c.trace_mut().record(
                now,
                TraceKind::DnsName {
                    name,
                    step: NameStep::Search { index, of },
                },
            );
        }
        for qtype in questions {
            self.query_name(now, id, 0, qtype);
        }
    }

    /// The search list's current name has nothing: its outstanding
    /// questions are dropped (their answers would be taken for the next
    /// name's) and the next name is asked.
    fn next_search_name(&mut self, now: Instant, id: ConnectionId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let stale: SmallVec<[DnsTxnId; 3]> =
            c.dns.iter().filter(|d| d.0 == 0).map(|d| d.2).collect();
        c.dns.retain(|d| d.0 != 0);
        let port = c.remote.as_ref().map_or(0, |r| r.1);
        let svcb = c
            .search
            .as_ref()
            .is_some_and(|s| s.questions().contains(&QueryType::Https));
        c.https_qname = c
            .search
            .as_ref()
            .and_then(|s| https_name(s.name(), port, svcb));
        self.resolver.leave(id, &stale);
        self.flush_dns_actions();
        self.query_search_name(now, id);
    }

    /// Answers (name `slot`, `qtype`) of `id` from the cache, or asks the
    /// servers: one path for the endpoint's names and for SVCB targets.
    fn query_name(&mut self, now: Instant, id: ConnectionId, slot: u8, qtype: QueryType) {
        let Some(qname) = self.conns.get(id).and_then(|c| c.qname(slot, qtype)) else {
            return;
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
            self.deliver_answer(now, id, slot, qtype, Some(&answer));
        } else {
            self.resolver
                .query(now, (id, slot), qname, qtype, &mut self.rng);
            self.process_dns(now);
        }
    }

    /// Replaces the interface list; attempts on interfaces that went down or
    /// vanished fail, and later paths take over.
    pub(super) fn set_interfaces(&mut self, now: Instant, list: Vec<Interface>) {
        let gone: SmallVec<[u32; 4]> = self
            .interfaces
            .iter()
            .filter(|old| old.up && !list.iter().any(|n| n.index == old.index && n.up))
            .map(|i| i.index)
            .collect();
        let old = std::mem::replace(&mut self.interfaces, list);
        self.report_path_changes(&old);
        self.nat64_interfaces_changed(now, &old);
        if gone.is_empty() {
            return;
        }
        for id in self.racing(|_| true) {
            if let Some(race) = self.conns.get_mut(id).and_then(Conn::race_mut) {
                for index in &gone {
                    race.on_interface_down(now, *index);
                }
            }
            self.after_conn_change(now, id);
        }
        self.purge_timers();
    }

    /// The connections still establishing whose race `wants`.
    pub(super) fn racing(&self, wants: impl Fn(&Race) -> bool) -> Vec<ConnectionId> {
        self.conns
            .iter()
            .filter(|(_, c)| {
                c.state == ConnectionState::Establishing && c.race().is_some_and(&wants)
            })
            .map(|(id, _)| id)
            .collect()
    }

    /// RFC 9622 §8.3: `PathChange` for every established connection whose
    /// interface changed between `old` and the current list (up/down,
    /// MTU, addresses), and `SoftError(InterfaceDown)` first when it went
    /// down or vanished. The connection itself stays: TCP may recover when
    /// the interface comes back, and fails by itself if it does not.
    fn report_path_changes(&mut self, old: &[Interface]) {
        let state_of = |list: &[Interface], index: u32| {
            list.iter()
                .find(|i| i.index == index)
                .map(|i| (i.up, i.mtu, i.addrs.clone()))
        };
        let mut reports: Vec<(ConnectionId, u32, bool)> = Vec::new();
        for (id, c) in self.conns.iter() {
            let Some(index) = c.path_interface else {
                continue;
            };
            if !matches!(
                c.state,
                ConnectionState::Established | ConnectionState::Closing
            ) {
                continue;
            }
            let before = state_of(old, index);
            let after = state_of(&self.interfaces, index);
            if before != after {
                let was_up = before.as_ref().is_some_and(|b| b.0);
                let is_up = after.as_ref().is_some_and(|a| a.0);
                reports.push((id, index, was_up && !is_up));
            }
        }
        for (conn, interface, went_down) in reports {
            if went_down {
                self.emit(Event::SoftError {
                    conn,
                    reason: FailureReason::InterfaceDown,
                });
            }
            self.emit(Event::PathChange { conn, interface });
        }
    }

    /// Whether `txn` is live; a stale one is counted.
    fn live_txn(&mut self, txn: DnsTxnId) -> bool {
        let live = self.resolver.is_live(txn);
        if !live {
            self.stats.stale_inputs += 1;
        }
        live
    }

    pub(super) fn on_dns_datagram(
        &mut self,
        now: Instant,
        txn: DnsTxnId,
        from: SocketAddr,
        payload: &[u8],
    ) {
        if self.live_txn(txn) {
            self.resolver
                .on_datagram(now, txn, from, payload, &mut self.rng);
            self.process_dns(now);
        }
    }

    pub(super) fn on_dns_stream(&mut self, now: Instant, txn: DnsTxnId, data: &[u8]) {
        if self.live_txn(txn) {
            self.resolver.on_stream_data(now, txn, data, &mut self.rng);
            self.process_dns(now);
        }
    }

    pub(super) fn on_dns_transport_failed(&mut self, now: Instant, txn: DnsTxnId) {
        if self.live_txn(txn) {
            self.resolver.on_transport_failed(now, txn, &mut self.rng);
            self.process_dns(now);
        }
    }

    pub(super) fn on_dns_timer(&mut self, now: Instant, txn: DnsTxnId, at: Instant) {
        if self.resolver.deadline(txn) != Some(at) {
            return;
        }
        self.resolver.on_timeout(now, txn, &mut self.rng);
        self.process_dns(now);
    }

    pub(super) fn flush_dns_actions(&mut self) {
        while let Some(a) = self.resolver.poll_action() {
            self.outputs.push_back(Output::Dns(a));
        }
    }

    /// Applies the resolver's notes: traces, the cache, the races.
    pub(super) fn process_dns(&mut self, now: Instant) {
        self.flush_dns_actions();
        while let Some(note) = self.resolver.poll_note() {
            match note {
                DnsNote::Sent {
                    conn,
                    slot,
                    qtype,
                    txn,
                    server,
                    tcp,
                    retransmit,
                } => {
                    let query = TraceKind::DnsQuery {
                        qtype,
                        server,
                        tcp,
                        retransmit,
                    };
                    if slot == DISCOVERY_SLOT {
                        self.nat64_sent(now, conn, txn, server);
                    } else {
                        self.waiting_on(now, (conn, slot, qtype), txn, query);
                    }
                    if let Some(deadline) = self.resolver.deadline(txn) {
                        self.timers.push(Reverse((deadline, Timer::Dns(txn))));
                    }
                }
                // The discovery's retries are not the connection's AAAA
                // query's: its trace records only the outcome.
                DnsNote::Retrying { slot, .. } | DnsNote::Dropped { slot, .. }
                    if slot == DISCOVERY_SLOT => {}
                DnsNote::Retrying {
                    conn,
                    qtype,
                    outcome,
                    ..
                } => {
                    self.record(conn, now, TraceKind::DnsRetry { qtype, outcome });
                }
                DnsNote::Dropped {
                    conn,
                    qtype,
                    reason,
                    ..
                } => {
                    self.record(conn, now, TraceKind::DnsDropped { qtype, reason });
                }
                DnsNote::Joined {
                    conn,
                    slot,
                    qtype,
                    txn,
                    server,
                } => {
                    if slot == DISCOVERY_SLOT {
                        self.nat64_sent(now, conn, txn, server);
                    } else {
                        let joined = TraceKind::DnsJoined { qtype, server };
                        self.waiting_on(now, (conn, slot, qtype), txn, joined);
                    }
                }
                DnsNote::Settled {
                    waiters,
                    name,
                    qtype,
                    answer,
                    outcome,
                } => {
                    if let Some(a) = &answer {
                        self.cache.insert(now, &name, qtype, a);
                    }
                    if waiters.iter().any(|w| w.1 == DISCOVERY_SLOT) {
                        self.nat64_settled(now, answer.as_ref());
                    }
                    for (conn, slot) in waiters {
                        if slot == DISCOVERY_SLOT {
                            continue;
                        }
                        let Some(c) = self.conns.get_mut(conn) else {
                            continue;
                        };
                        c.set_dns(slot, qtype, None);
                        if c.state != ConnectionState::Establishing {
                            continue;
                        }
                        c.trace_mut().record(
                            now,
                            TraceKind::DnsAnswer {
                                qtype,
                                outcome,
                                local: None,
                            },
                        );
                        self.deliver_answer(now, conn, slot, qtype, answer.as_ref());
                    }
                }
            }
        }
    }

    /// Question (`slot`, `qtype`) of `conn` is now carried by `txn`, as
    /// `kind` records (a query sent, or one joined).
    fn waiting_on(
        &mut self,
        now: Instant,
        (conn, slot, qtype): (ConnectionId, u8, QueryType),
        txn: DnsTxnId,
        kind: TraceKind,
    ) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.set_dns(slot, qtype, Some(txn));
            if c.state == ConnectionState::Establishing {
                c.trace_mut().record(now, kind);
            }
        }
    }

    fn deliver_answer(
        &mut self,
        now: Instant,
        id: ConnectionId,
        slot: u8,
        qtype: QueryType,
        answer: Option<&Answer>,
    ) {
        if slot == 0 {
            let Some(c) = self.conns.get_mut(id) else {
                return;
            };
            // An alias target's HTTPS answer comes after the search
            // committed; the search only judges the names it lists.
            let step = match c.search.as_mut() {
                Some(search) if !(qtype == QueryType::Https && c.alias.current().is_some()) => {
                    search.on_answer(qtype, answer)
                }
                _ => SearchStep::Deliver {
                    held: SmallVec::new(),
                },
            };
            match step {
                SearchStep::Hold => return,
                SearchStep::Next => {
                    self.next_search_name(now, id);
                    return;
                }
                SearchStep::Deliver { held } => {
                    for q in held {
                        self.deliver_to_race(now, id, 0, q, None);
                    }
                }
            }
        }
        self.deliver_to_race(now, id, slot, qtype, answer);
    }

    fn deliver_to_race(
        &mut self,
        now: Instant,
        id: ConnectionId,
        slot: u8,
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
                if slot == 0 {
                    self.deliver_addresses(now, id, family, addrs);
                } else {
                    let Some((race, env)) = self.race_with_env(id) else {
                        return;
                    };
                    race.on_target_addresses(now, env, slot - 1, family, addrs);
                    self.undecided(now, id);
                }
            }
            QueryType::Https => {
                let records = match answer {
                    Some(Answer::Https { records, .. }) => &records[..],
                    _ => &[][..],
                };
                let Some(records) = self.service_records(now, id, records) else {
                    return;
                };
                let Some((race, env)) = self.race_with_env(id) else {
                    return;
                };
                race.on_service_info(now, env, (!records.is_empty()).then_some(&records[..]));
                // HEv3 §4.2.1: TargetNames other than "." get their own A
                // and AAAA queries.
                let requests = race.take_target_requests();
                let mut queries: SmallVec<[(u8, QueryType); 4]> = SmallVec::new();
                for (index, _) in &requests {
                    if race.target_expects(*index, Family::V6) {
                        queries.push((index + 1, QueryType::Aaaa));
                    }
                    if race.target_expects(*index, Family::V4) {
                        queries.push((index + 1, QueryType::A));
                    }
                }
                if let Some(c) = self.conns.get_mut(id) {
                    c.targets.extend(requests.into_iter().map(|(_, name)| name));
                }
                self.undecided(now, id);
                for (slot, qtype) in queries {
                    self.query_name(now, id, slot, qtype);
                }
            }
        }
    }

    /// The HTTPS records a connection may race on, from the answer for its
    /// current HTTPS name; `None` while an AliasMode chain is followed (the
    /// next hop's question is out).
    ///
    /// - Without TLS, a record never changes where the connection goes:
    ///   HTTPS records describe endpoints of "https" origins (RFC 9460 §9,
    ///   §9.5), which a plain connection is not, and taps never changes
    ///   the application's choice of security. Only ServiceMode records
    ///   for the name itself on the endpoint's port are kept (their
    ///   address hints are the name's own addresses), and AliasMode is not
    ///   followed.
    /// - With TLS, AliasMode is followed (RFC 9460 §3); and when the
    ///   application offers ALPN ids, a record none of whose protocols it
    ///   offers is skipped (RFC 9460 §7.1: "Clients filter the set of ALPN
    ///   identifiers to match the protocol suites they support"; an empty
    ///   result leaves nothing to speak).
    fn service_records(
        &mut self,
        now: Instant,
        id: ConnectionId,
        records: &[HttpsRecord],
    ) -> Option<Vec<HttpsRecord>> {
        let c = self.conns.get_mut(id)?;
        let port = c.remote.as_ref().map_or(0, |r| r.1);
        let Some(tls) = &c.tls else {
            if records.iter().any(|r| r.priority == 0) {
                return Some(Vec::new());
            }
            return Some(
                records
                    .iter()
                    .filter(|r| r.target.is_none() && r.port.is_none_or(|p| p == port))
                    .cloned()
                    .collect(),
            );
        };
        let offered: SmallVec<[String; 2]> = tls
            .alpn()
            .iter()
            .filter_map(|a| core::str::from_utf8(a).ok().map(str::to_owned))
            .collect();
        let first = c
            .https_qname
            .clone()
            .or(c.search.as_ref().map(|s| s.name().clone()))?;
        let mut list = match c.alias.on_records(&first, records, &offered) {
            AliasStep::Follow { target, hop } => {
                let name = CertText::new(target.as_str());
                c.trace_mut().record(
                    now,
                    TraceKind::DnsName {
                        name,
                        step: NameStep::Alias { hop },
                    },
                );
                self.query_name(now, id, 0, QueryType::Https);
                return None;
            }
            AliasStep::Fail(outcome) => {
                c.trace_mut().record(
                    now,
                    TraceKind::DnsAnswer {
                        qtype: QueryType::Https,
                        outcome,
                        local: None,
                    },
                );
                Vec::new()
            }
            AliasStep::Done(list) => list,
        };
        if !offered.is_empty() {
            list.retain(|r| offered.iter().any(|p| r.offers_alpn(p)));
        }
        Some(list)
    }

    fn deliver_addresses(
        &mut self,
        now: Instant,
        id: ConnectionId,
        family: Family,
        answer: AddressAnswer<'_>,
    ) {
        let Some((race, env)) = self.race_with_env(id) else {
            return;
        };
        race.on_addresses(now, env, family, answer);
        self.undecided(now, id);
    }

    /// `id`'s race, with what it reads of the machine while it changes.
    pub(super) fn race_with_env(&mut self, id: ConnectionId) -> Option<(&mut Race, RaceEnv<'_>)> {
        let env = RaceEnv {
            interfaces: &self.interfaces,
            history: &self.history,
        };
        let race = self.conns.get_mut(id).and_then(Conn::race_mut)?;
        Some((race, env))
    }

    /// A DNS answer changed `id`'s race: it is decided at the next drain
    /// or timer run, with whatever else arrives before then.
    pub(super) fn undecided(&mut self, now: Instant, id: ConnectionId) {
        match self.undecided.iter_mut().find(|(c, _)| *c == id) {
            Some(entry) => entry.1 = now,
            None => self.undecided.push((id, now)),
        }
    }

    /// Carries out the race's actions and re-arms its timer: the one place
    /// where race decisions become outputs.
    pub(super) fn after_conn_change(&mut self, now: Instant, id: ConnectionId) {
        self.undecided.retain(|(c, _)| *c != id);
        loop {
            let Some(c) = self.conns.get_mut(id) else {
                return;
            };
            let Some(race) = c.race_mut() else { break };
            let Some(action) = race.poll_action() else {
                break;
            };
            match action {
                RaceAction::Start {
                    candidate,
                    remote,
                    interface,
                } => self.start_attempt(now, id, candidate, remote, interface),
                RaceAction::Cancel { candidate } => {
                    let Some(c) = self.conns.get_mut(id) else {
                        return;
                    };
                    if let Some(pos) = c.sockets.iter().position(|(cand, _)| *cand == candidate) {
                        let (_, socket) = c.sockets.swap_remove(pos);
                        self.close_socket(socket);
                    }
                }
                RaceAction::Won { candidate } => self.on_won(now, id, candidate),
                RaceAction::Failed => {
                    let Some(c) = self.conns.get_mut(id) else {
                        return;
                    };
                    let Some(race) = c.race() else { return };
                    let reason = race.failure().unwrap_or(RaceFailure::AllAttemptsFailed);
                    // Only an active connection races, so `remote` is set;
                    // the fallback keeps a broken invariant from panicking.
                    let remote = c
                        .remote
                        .clone()
                        .unwrap_or((Host::Ip(std::net::Ipv4Addr::UNSPECIFIED.into()), 0));
                    let interfaces = &self.interfaces;
                    let name = |i: u32| {
                        interfaces
                            .iter()
                            .find(|x| x.index == i)
                            .map(|x| x.name.clone())
                    };
                    let error =
                        EstablishmentError::from_trace(reason, &race.trace, now, remote, &name);
                    c.state = ConnectionState::Closed;
                    self.emit(Event::EstablishmentError { conn: id, error });
                }
            }
        }
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if !c.race_recorded && c.race().is_some_and(Race::is_settled) {
            c.race_recorded = true;
            if let Some(race) = c.race() {
                for (path, addr, outcome) in race.outcomes() {
                    self.history.record(now, path, addr, outcome);
                }
                for (path, addr, rtt) in race.rtt_samples() {
                    self.history.record_rtt(now, path, addr, rtt);
                }
            }
            {
                // The race is over: DNS may linger to fill the cache.
                let txns: SmallVec<[DnsTxnId; 3]> = c.dns.iter().map(|d| d.2).collect();
                self.resolver.linger(now, id, &txns);
                for txn in txns {
                    if let Some(deadline) = self.resolver.deadline(txn) {
                        self.timers.push(Reverse((deadline, Timer::Dns(txn))));
                    }
                }
            }
        }
        self.reschedule(id);
    }

    /// RFC 9623 §4.2: a fresh stack for one attempt, early data included.
    fn start_attempt(
        &mut self,
        now: Instant,
        id: ConnectionId,
        candidate: CandidateId,
        remote: SocketAddr,
        interface: Option<u32>,
    ) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        // RFC 9460 §7.1: an attempt on an HTTPS record's endpoint offers
        // the protocols both the record and the application name, in the
        // application's order (records with none in common were skipped).
        // Other attempts, and an application that names no ALPN, offer the
        // application's list as it is.
        let alpn: Option<Vec<Vec<u8>>> =
            match (&c.tls, c.race().and_then(|r| r.service_record(candidate))) {
                (Some(tls), Some(record)) if !tls.alpn().is_empty() => Some(
                    tls.alpn()
                        .iter()
                        .filter(|p| core::str::from_utf8(p).is_ok_and(|p| record.offers_alpn(p)))
                        .cloned()
                        .collect(),
                ),
                _ => None,
            };
        let tls = match (&c.tls, &c.server_name) {
            (Some(tls), Some(name)) => match tls.session(name, alpn) {
                Ok(s) => Some(s),
                Err(f) => {
                    if let Some(race) = c.race_mut() {
                        race.on_failed(now, candidate, FailureReason::Tls(f));
                    }
                    return;
                }
            },
            (Some(_), None) => {
                if let Some(race) = c.race_mut() {
                    race.on_failed(
                        now,
                        candidate,
                        FailureReason::Tls(crate::trace::TlsFailure::BadServerName),
                    );
                }
                return;
            }
            (None, _) => None,
        };
        let mut stack = Stack::new(tls, c.framer.as_ref().map(|f| f.make()));
        stack.start_client();
        let mut fast_open = false;
        if let Some((_, data)) = &c.io.early {
            match stack.frame(data) {
                Ok(framed) => {
                    // An empty first message has nothing to carry: a
                    // Fast Open socket sends its SYN only with data.
                    fast_open = !stack.has_tls() && !framed.is_empty();
                    if stack.send_early(&framed, fast_open) > 0 {
                        self.stats.early_data_attempts += 1;
                    }
                }
                Err(e) => {
                    if let Some(race) = c.race_mut() {
                        race.on_failed(now, candidate, FailureReason::Framing(e));
                    }
                    return;
                }
            }
        }
        let local = c.local;
        let options = TcpSocketOptions::for_properties(&c.properties);
        let socket = self.sockets.insert(Sock {
            conn: id,
            options: (options, AppliedTcpOptions::unreported(&options)),
            candidate: Some(candidate),
            stack,
            announced: false,
            connected: false,
            fast_open,
            read_paused: false,
            shut: false,
            linger_until: None,
        });
        if let Some(c) = self.conns.get_mut(id) {
            c.sockets.push((candidate, socket));
        }
        self.stats.attempts_started += 1;
        self.outputs.push_back(Output::OpenTcp {
            socket,
            remote,
            interface,
            local,
            fast_open,
            options,
        });
        self.announce(socket);
    }

    /// The race has a winner: the connection is established on its socket.
    fn on_won(&mut self, now: Instant, id: ConnectionId, candidate: CandidateId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let Some(&(_, socket)) = c.sockets.iter().find(|(cand, _)| *cand == candidate) else {
            return;
        };
        let Some(race) = c.race() else { return };
        let Some(w) = race.candidate(candidate) else {
            return;
        };
        let (remote, interface) = (w.connect_to(), race.path_interface(w.path));
        c.state = ConnectionState::Established;
        c.socket = Some(socket);
        c.path_interface = interface;
        c.sockets.retain(|(cand, _)| *cand != candidate);
        self.emit(Event::Ready {
            conn: id,
            socket,
            remote,
            interface,
        });
        // The first message: what went early and counted need not go again;
        // the winner sends the rest of it now (RFC 9623 §4.3). Rejected early
        // data leaves the whole message in the queue.
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let early = c.io.early.take();
        if let (Some((msg, data)), Some(sock)) = (early, self.sockets.get_mut(socket)) {
            let sent = sock.stack.early_sent;
            let counted = sock.stack.early_data_counted();
            c.zero_rtt = match (sent > 0, sock.stack.has_tls(), counted) {
                (true, true, true) => ZeroRttOutcome::Accepted,
                (true, true, false) => ZeroRttOutcome::RejectedByServer,
                (true, false, _) => ZeroRttOutcome::FastOpenUnconfirmed,
                (false, true, _) => ZeroRttOutcome::NoResumableSession,
                (false, false, _) => ZeroRttOutcome::EmptyFirstMessage,
            };
            if sent > 0
                && counted
                && let Ok(framed) = sock.stack.frame(&data)
            {
                if let Some(rest) = framed.get(sent..).filter(|r| !r.is_empty()) {
                    sock.stack.write_raw(rest);
                }
                let mut events = Vec::new();
                c.io.sent_early(msg, &mut events);
                self.apply_io_events(now, id, events);
            }
        }
        self.pump(now, id);
        self.deliver(now, id);
    }
}

/// RFC 9460 §9.1: the HTTPS query name of `name` on `port`: the name
/// itself on 443, else `_port._https.name`.
fn https_name(name: &HostName, port: u16, svcb: bool) -> Option<HostName> {
    (svcb && port != 443)
        .then(|| HostName::new(&format!("_{port}._https.{}", name.as_str())).ok())
        .flatten()
}

/// Which families the paths can send: HEv3 §4.1 "connectivity" is a local
/// address of the family (link-local IPv6 does not count). The system
/// default path is assumed to have both.
pub(super) fn connectivity(paths: &[PathBranch], interfaces: &[Interface]) -> (bool, bool) {
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
