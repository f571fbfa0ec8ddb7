//! The race as `tracing` spans and events (feature `tracing`): one span
//! per race (RFC 9622 §7.1 `Initiate`), per DNS transaction (RFC 1035
//! §4, HEv3 §4) and per connection attempt (HEv3 §6, RFC 8305 §5), with
//! an event for each transition the core's trace records (ARCHITECTURE.md
//! "Where tracing lives").
//!
//! The core records its transitions as plain data ([`Trace`]) and knows
//! nothing of `tracing`; this module reads each watched connection's trace
//! after every dispatch of the driver, from a cursor, so the spans and
//! events come out while the race runs, not only when it ends. Nothing is
//! watched (and nothing formatted) unless a subscriber is interested in
//! the race span when the race starts: with none, the cost is one
//! level check per `initiate` and one emptiness check per dispatch.
//!
//! Spans (target [`TARGET`]):
//! - `race` (INFO): `host`, `stack` (`tcp`, `tcp+tls`, `tcp+framer`,
//!   `tcp+tls+framer`); recorded later: `candidates`, `outcome` (`won`,
//!   `failed`, `cancelled`), `winner` (the winning candidate), `reason`.
//! - `dns` (DEBUG, child of `race`): `qtype`, `server`; recorded later:
//!   `outcome`, `source` (`cache`, `hosts_file`, `localhost`, `literal`
//!   for answers that needed no query).
//! - `attempt` (INFO, child of `race`): `attempt` (its number in the
//!   trace), `candidate` (remote address), `interface`, `stack`, `nat64`
//!   (the IPv4 address a synthesized candidate stands for, RFC 6052);
//!   recorded later: `outcome` (`won`, `failed`, `cancelled`), `reason`.
//!
//! Every event carries `at_ms`, the trace's time in milliseconds from
//! `initiate`, so the logs agree with `tapscat --trace` to the microsecond.

use smallvec::SmallVec;
use taps_core::{
    ConnectionId, DnsOutcome, FailureReason, IdMap, Instant, LocalSource, Machine, Preconnection,
    Trace, TraceEvent, TraceKind,
};
use tracing::field::{Empty, display};
use tracing::{Level, Span};

/// The target of every span and event here (`RUST_LOG=taps_io::race=debug`).
pub const TARGET: &str = "taps_io::race";

/// The races being logged, by connection.
#[derive(Debug, Default)]
pub(crate) struct RaceSpans {
    races: IdMap<ConnectionId, RaceLog>,
}

/// One race's spans and how far into its trace they are.
#[derive(Debug)]
struct RaceLog {
    span: Span,
    stack: &'static str,
    /// The trace's start: a connection id the core reuses for a new
    /// connection has another.
    start: Instant,
    /// Trace events already emitted.
    cursor: usize,
    /// Open DNS transactions, by query type name (`A`, `AAAA`, `HTTPS`).
    dns: SmallVec<[(&'static str, Span); 3]>,
    attempts: SmallVec<[(u16, std::net::SocketAddr, Span); 4]>,
    /// The latest attempt failure, as the failed race's reason.
    last_failure: Option<FailureReason>,
    /// The latest DNS answer that gave no address, the reason when no
    /// attempt was made.
    last_dns_failure: Option<DnsOutcome>,
    decided: bool,
}

/// The protocol stack a preconnection asks for, as the spans name it.
fn stack_name(pre: &Preconnection) -> &'static str {
    match (pre.security.is_some(), pre.framer.is_some()) {
        (false, false) => "tcp",
        (true, false) => "tcp+tls",
        (false, true) => "tcp+framer",
        (true, true) => "tcp+tls+framer",
    }
}

fn local_source(local: LocalSource) -> &'static str {
    match local {
        LocalSource::Cache => "cache",
        LocalSource::HostsFile => "hosts_file",
        LocalSource::Localhost => "localhost",
        LocalSource::Literal => "literal",
    }
}

/// An attempt's interface as the waterfall names it.
fn interface_name(machine: &Machine, interface: Option<u32>) -> String {
    match interface {
        None => "default".to_string(),
        Some(i) => {
            crate::connection::interface_name(machine, i).unwrap_or_else(|| format!("if#{i}"))
        }
    }
}

impl RaceSpans {
    /// Starts logging the race of `id`, initiated from `pre`, when a
    /// subscriber wants its span; emits what its trace holds already.
    pub(crate) fn watch(&mut self, machine: &Machine, id: ConnectionId, pre: &Preconnection) {
        let stack = stack_name(pre);
        let span = tracing::info_span!(
            target: TARGET,
            "race",
            host = %pre.remote,
            stack,
            candidates = Empty,
            outcome = Empty,
            winner = Empty,
            reason = Empty,
        );
        // A callsite another thread's subscriber enabled makes an enabled
        // span here too, with no subscriber behind it: nobody listens.
        if span.is_disabled()
            || tracing::dispatcher::get_default(|d| d.is::<tracing::subscriber::NoSubscriber>())
        {
            return;
        }
        let Some(info) = machine.connection_info(id) else {
            return;
        };
        let log = RaceLog {
            span,
            stack,
            start: info.trace().start,
            cursor: 0,
            dns: SmallVec::new(),
            attempts: SmallVec::new(),
            last_failure: None,
            last_dns_failure: None,
            decided: false,
        };
        self.races.insert(id, log);
        self.emit_one(machine, id);
    }

    /// Whether no race is logged (the driver's fast path).
    pub(crate) fn is_empty(&self) -> bool {
        self.races.is_empty()
    }

    /// How many races are logged.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.races.len()
    }

    /// Emits every watched race's new trace events; forgets races that
    /// are over.
    pub(crate) fn emit(&mut self, machine: &Machine) {
        self.races.retain(|id, log| log.advance(machine, *id));
    }

    fn emit_one(&mut self, machine: &Machine, id: ConnectionId) {
        if let Some(log) = self.races.get_mut(&id)
            && !log.advance(machine, id)
        {
            self.races.remove(&id);
        }
    }
}

impl RaceLog {
    /// Emits the trace's new events; `false` once nothing more will come
    /// (decided with no attempt left open, or the connection is gone).
    fn advance(&mut self, machine: &Machine, id: ConnectionId) -> bool {
        let Some(info) = machine.connection_info(id) else {
            self.gone();
            return false;
        };
        let trace = info.trace();
        if trace.start != self.start || trace.events.len() < self.cursor {
            self.gone();
            return false;
        }
        for event in &trace.events[self.cursor..] {
            self.event(machine, trace, event);
        }
        self.cursor = trace.events.len();
        !(self.decided && self.attempts.is_empty())
    }

    /// The connection was freed before its race ended (the `initiate`
    /// future was dropped): what is still open was cancelled.
    fn gone(&mut self) {
        for (_, _, span) in self.attempts.drain(..) {
            span.record("outcome", "cancelled");
        }
        if !self.decided {
            self.span.record("outcome", "cancelled");
            tracing::event!(target: TARGET, parent: &self.span, Level::INFO, "race cancelled");
        }
    }

    fn dns_span(&mut self, qtype: &'static str) -> &Span {
        let at = match self.dns.iter().position(|(q, _)| *q == qtype) {
            Some(at) => at,
            None => {
                let span = tracing::debug_span!(
                    target: TARGET,
                    parent: &self.span,
                    "dns",
                    qtype,
                    server = Empty,
                    outcome = Empty,
                    source = Empty,
                );
                self.dns.push((qtype, span));
                self.dns.len() - 1
            }
        };
        &self.dns[at].1
    }

    fn attempt(&self, attempt: u16) -> Option<&Span> {
        self.attempts
            .iter()
            .find(|(a, _, _)| *a == attempt)
            .map(|(_, _, s)| s)
    }

    /// Closes `attempt`'s span (dropping the last handle ends it).
    fn end_attempt(&mut self, attempt: u16) {
        self.attempts.retain(|(a, _, _)| *a != attempt);
    }

    fn event(&mut self, machine: &Machine, trace: &Trace, e: &TraceEvent) {
        let at_ms = e.at.millis_since(trace.start);
        match e.kind {
            TraceKind::DnsQuery {
                qtype,
                server,
                tcp,
                retransmit,
            } => {
                let span = self.dns_span(qtype.name());
                span.record("server", display(server));
                tracing::event!(target: TARGET, parent: span, Level::DEBUG, at_ms, %server, tcp, retransmit, "dns query sent");
            }
            TraceKind::DnsJoined { qtype, server } => {
                let span = self.dns_span(qtype.name());
                span.record("server", display(server));
                tracing::event!(target: TARGET, parent: span, Level::DEBUG, at_ms, %server, "dns joined a transaction already asking");
            }
            TraceKind::DnsName { name, step } => {
                tracing::event!(target: TARGET, parent: &self.span, Level::DEBUG, at_ms, %name, ?step, "dns asking about another name");
            }
            TraceKind::Nat64Query { server } => {
                tracing::event!(target: TARGET, parent: &self.span, Level::DEBUG, at_ms, %server, "nat64 prefix discovery query (ipv4only.arpa AAAA)");
            }
            TraceKind::Nat64Prefix { prefix, source } => match prefix {
                Some(prefix) => {
                    tracing::event!(target: TARGET, parent: &self.span, Level::DEBUG, at_ms, %prefix, %source, "nat64 prefix");
                }
                None => {
                    tracing::event!(target: TARGET, parent: &self.span, Level::DEBUG, at_ms, %source, "nat64 no prefix");
                }
            },
            TraceKind::DnsAnswer {
                qtype,
                outcome,
                local,
            } => {
                if !matches!(outcome, DnsOutcome::Positive { .. }) {
                    self.last_dns_failure = Some(outcome);
                }
                let span = self.dns_span(qtype.name());
                span.record("outcome", display(outcome));
                if let Some(local) = local {
                    span.record("source", local_source(local));
                }
                tracing::event!(target: TARGET, parent: span, Level::DEBUG, at_ms, %outcome, "dns answer");
                // The answer settles the transaction: its span ends.
                self.dns.retain(|(q, _)| *q != qtype.name());
            }
            TraceKind::DnsRetry { qtype, outcome } => {
                let span = self.dns_span(qtype.name());
                tracing::event!(target: TARGET, parent: span, Level::DEBUG, at_ms, %outcome, "dns asking again");
            }
            TraceKind::DnsDropped { qtype, reason } => {
                let span = self.dns_span(qtype.name());
                tracing::event!(target: TARGET, parent: span, Level::DEBUG, at_ms, ?reason, "dns dropped a datagram");
            }
            TraceKind::ResolutionDelayStarted => {
                tracing::event!(target: TARGET, parent: &self.span, Level::DEBUG, at_ms, "waiting for the Resolution Delay");
            }
            TraceKind::RacingStarted { candidates } => {
                self.span.record("candidates", candidates);
                tracing::event!(target: TARGET, parent: &self.span, Level::INFO, at_ms, candidates, "race started");
            }
            TraceKind::PathStarted { interface } => {
                if tracing::enabled!(target: TARGET, Level::DEBUG) {
                    let interface = interface_name(machine, interface);
                    tracing::event!(target: TARGET, parent: &self.span, Level::DEBUG, at_ms, interface, "path eligible");
                }
            }
            TraceKind::AttemptStarted {
                attempt,
                remote,
                interface,
                nat64,
            } => {
                let span = tracing::info_span!(
                    target: TARGET,
                    parent: &self.span,
                    "attempt",
                    attempt,
                    candidate = %remote,
                    interface = interface_name(machine, interface),
                    stack = self.stack,
                    nat64 = Empty,
                    outcome = Empty,
                    reason = Empty,
                );
                if let Some(v4) = nat64 {
                    // The IPv4 address the synthesized candidate stands for.
                    span.record("nat64", display(v4));
                }
                tracing::event!(target: TARGET, parent: &span, Level::INFO, at_ms, "attempt started");
                self.attempts.push((attempt, remote, span));
            }
            TraceKind::AttemptDelay { attempt, delay } => {
                let delay_ms = f64::from(delay.delay_us) / 1000.0;
                let rto_ms = f64::from(delay.rto_us) / 1000.0;
                let span = self.attempt(attempt).unwrap_or(&self.span);
                tracing::event!(target: TARGET, parent: span, Level::DEBUG, at_ms, delay_ms, rto_ms, source = ?delay.source, "next attempt delay");
            }
            TraceKind::AttemptTransportUp { attempt } => {
                let span = self.attempt(attempt).unwrap_or(&self.span);
                tracing::event!(target: TARGET, parent: span, Level::DEBUG, at_ms, "TCP up");
            }
            TraceKind::TlsEstablished { attempt } => {
                let span = self.attempt(attempt).unwrap_or(&self.span);
                match trace.tls_details(attempt) {
                    Some(tls) => {
                        tracing::event!(target: TARGET, parent: span, Level::DEBUG, at_ms, %tls, "TLS established");
                    }
                    None => {
                        tracing::event!(target: TARGET, parent: span, Level::DEBUG, at_ms, "TLS established");
                    }
                }
            }
            TraceKind::AttemptConnected { attempt } => {
                let span = self.attempt(attempt).unwrap_or(&self.span);
                tracing::event!(target: TARGET, parent: span, Level::DEBUG, at_ms, "attempt connected");
            }
            TraceKind::AttemptFailed { attempt, reason } => {
                self.last_failure = Some(reason);
                if let Some(span) = self.attempt(attempt) {
                    span.record("outcome", "failed");
                    span.record("reason", display(reason));
                    tracing::event!(target: TARGET, parent: span, Level::INFO, at_ms, %reason, "attempt failed");
                }
                self.end_attempt(attempt);
            }
            TraceKind::AttemptCancelled { attempt } => {
                if let Some(span) = self.attempt(attempt) {
                    span.record("outcome", "cancelled");
                    tracing::event!(target: TARGET, parent: span, Level::INFO, at_ms, "attempt cancelled");
                }
                self.end_attempt(attempt);
            }
            TraceKind::Winner { attempt } => {
                if let Some((_, remote, span)) =
                    self.attempts.iter().find(|(a, _, _)| *a == attempt)
                {
                    span.record("outcome", "won");
                    tracing::event!(target: TARGET, parent: span, Level::INFO, at_ms, "attempt won");
                    self.span.record("winner", display(remote));
                }
                self.span.record("outcome", "won");
                tracing::event!(target: TARGET, parent: &self.span, Level::INFO, at_ms, attempt, "race won");
                self.end_attempt(attempt);
                self.decided = true;
            }
            TraceKind::EstablishmentFailed => {
                self.span.record("outcome", "failed");
                match self.last_failure {
                    Some(reason) => {
                        self.span.record("reason", display(reason));
                        tracing::event!(target: TARGET, parent: &self.span, Level::INFO, at_ms, %reason, "race failed");
                    }
                    None => {
                        let reason = match self.last_dns_failure {
                            Some(dns) => format!("no address to try: DNS {dns}"),
                            None => "no address to try".to_string(),
                        };
                        self.span.record("reason", reason.as_str());
                        tracing::event!(target: TARGET, parent: &self.span, Level::INFO, at_ms, reason, "race failed");
                    }
                }
                self.decided = true;
            }
            TraceKind::Closed => {
                tracing::event!(target: TARGET, parent: &self.span, Level::DEBUG, at_ms, "connection closed");
                self.decided = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::driver::{Driver, Work};
    use taps_core::{Config, Machine, Preconnection};

    /// A driver that has just initiated a plain-TCP race to a literal,
    /// watched as `Taps::initiate` watches it; and that race's socket.
    fn initiated() -> (Driver, taps_core::SocketId) {
        let mut d = Driver::new(Machine::new(Config::new(0)));
        let pre = Preconnection::new("192.0.2.1:80".parse().unwrap());
        let conn = d.command(|m, now| m.initiate(now, &pre).unwrap());
        d.watch_race(conn, &pre);
        let Some(Work::OpenTcp { socket, .. }) = d.take_work() else {
            panic!("no OpenTcp");
        };
        (d, socket)
    }

    /// With no subscriber the race span is disabled, so nothing is
    /// watched: no trace is read after any dispatch.
    #[test]
    fn nothing_is_watched_while_no_subscriber_listens() {
        let (d, _) = initiated();
        assert_eq!(d.watched_races(), 0);
    }

    /// With one, the race is watched until it is decided and its last
    /// attempt span ended, then forgotten.
    #[test]
    fn a_race_is_watched_until_it_is_decided() {
        let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry());
        let (mut d, socket) = initiated();
        assert_eq!(d.watched_races(), 1);
        d.connected(socket, Ok(()));
        assert_eq!(d.watched_races(), 0, "the won race is still watched");
    }
}
