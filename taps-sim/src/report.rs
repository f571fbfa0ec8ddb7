//! Reports of a run: per-connection attempts and DNS rows read from the
//! trace, the text report with the core's waterfall, the JSON object
//! (`--json`), and the trace hash.
//!
//! The trace hash is FNV-1a 64 (Fowler, Noll, Vo) over a canonical byte
//! encoding of every connection's trace: times as nanoseconds, each event
//! kind as a tag byte followed by its fields in declaration order, integers
//! little-endian, addresses as their octets and port. It does not use
//! `std`'s `DefaultHasher`, whose output may change between Rust releases,
//! so hashes printed today still compare tomorrow.

use core::fmt::Write as _;
use core::time::Duration;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;
use taps_core::race::DelaySource;
use taps_core::{
    DnsOutcome, DropReason, FailureReason, Instant, LocalSource, NameStep, Trace, TraceKind,
    dns::QueryType,
};

use crate::scenario::Scenario;
use crate::units::millis;
use crate::world::{ConnOutcome, ConnRun, RunResult};

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptEnd {
    /// It won.
    Won,
    /// It failed for this reason.
    Failed(FailureReason),
    /// Another won, or the race ended.
    Cancelled,
    /// Still running when the trace was taken.
    Running,
}

impl AttemptEnd {
    /// `won`, `failed`, `cancelled` or `running`.
    pub fn word(self) -> &'static str {
        match self {
            AttemptEnd::Won => "won",
            AttemptEnd::Failed(_) => "failed",
            AttemptEnd::Cancelled => "cancelled",
            AttemptEnd::Running => "running",
        }
    }
}

/// One attempt, read from the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRow {
    /// Attempt number.
    pub attempt: u16,
    /// Where its socket connected.
    pub remote: SocketAddr,
    /// The IPv4 destination `remote` was synthesized from (NAT64).
    pub nat64: Option<std::net::Ipv4Addr>,
    /// Interface index (`None`: default path).
    pub interface: Option<u32>,
    /// Interface name.
    pub interface_name: String,
    /// Start, from the connection's start.
    pub start: Duration,
    /// End, from the connection's start (`None`: running).
    pub end: Option<Duration>,
    /// When its TCP came up while upper layers (TLS) still handshook, from
    /// the connection's start; `None` when the trace shows no such moment
    /// (TCP never came up, or modelled TLS reports the stack up at once).
    pub tcp_up: Option<Duration>,
    /// How it ended.
    pub result: AttemptEnd,
}

/// A stretch of an attempt's bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// From the start until TCP came up (with modelled TLS: until the
    /// whole stack was up, which the trace does not split).
    Connecting,
    /// TCP up, the TLS handshake running.
    TcpUp,
}

impl Phase {
    /// How legends name it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::TcpUp => "TCP up, TLS handshake",
        }
    }
}

impl AttemptRow {
    /// The destination as people read it (with NAT64: both addresses).
    pub fn target(&self) -> taps_core::AttemptAddr {
        taps_core::AttemptAddr {
            remote: self.remote,
            nat64: self.nat64,
        }
    }

    /// The attempt's phases as (phase, from, to), in order; a running
    /// attempt's last phase ends at `now`.
    pub fn phases(&self, now: Duration) -> Vec<(Phase, Duration, Duration)> {
        let end = self.end.unwrap_or(now);
        match self.tcp_up {
            Some(up) => vec![(Phase::Connecting, self.start, up), (Phase::TcpUp, up, end)],
            None => vec![(Phase::Connecting, self.start, end)],
        }
    }

    /// The form `[expect] attempt_results` compares: `"192.0.2.1:443 wlan0
    /// won"`, `"[2001:db8::1]:443 wlan0 failed: timed out"`.
    pub fn summary(&self) -> String {
        match self.result {
            AttemptEnd::Failed(r) => {
                format!("{} {} failed: {r}", self.target(), self.interface_name)
            }
            other => format!("{} {} {}", self.target(), self.interface_name, other.word()),
        }
    }
}

/// One DNS question, read from the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsRow {
    /// Record type.
    pub qtype: QueryType,
    /// First transmission, from the connection's start (`None`: answered
    /// locally).
    pub sent: Option<Duration>,
    /// When it settled (`None`: never, or after the race).
    pub answered: Option<Duration>,
    /// What it came to.
    pub outcome: Option<DnsOutcome>,
    /// Answered without the wire, and from where.
    pub local: Option<LocalSource>,
    /// Transmissions (retransmissions, other servers and TCP included).
    pub transmissions: u32,
    /// Whether TCP was used.
    pub tcp: bool,
}

impl DnsRow {
    /// The outcome as the report prints it.
    pub fn result(&self) -> String {
        let Some(o) = self.outcome else {
            return "unanswered while racing".into();
        };
        let local = match self.local {
            None => "",
            Some(LocalSource::Cache) => " (cache)",
            Some(LocalSource::HostsFile) => " (hosts file)",
            Some(LocalSource::Localhost) => " (localhost)",
            Some(LocalSource::Literal) => " (address literal)",
        };
        format!("{o}{local}{}", if self.tcp { " over TCP" } else { "" })
    }
}

/// Attempts of a trace, in start order.
pub fn attempts(trace: &Trace, names: &dyn Fn(Option<u32>) -> String) -> Vec<AttemptRow> {
    let since = |t: Instant| t - trace.start;
    let mut rows: Vec<AttemptRow> = Vec::new();
    for e in &trace.events {
        let (n, end) = match e.kind {
            TraceKind::AttemptStarted {
                attempt,
                remote,
                interface,
                nat64,
            } => {
                rows.push(AttemptRow {
                    attempt,
                    remote,
                    nat64,
                    interface,
                    interface_name: names(interface),
                    start: since(e.at),
                    end: None,
                    tcp_up: None,
                    result: AttemptEnd::Running,
                });
                continue;
            }
            TraceKind::AttemptTransportUp { attempt } => {
                if let Some(r) = rows
                    .iter_mut()
                    .find(|r| r.attempt == attempt && r.result == AttemptEnd::Running)
                {
                    r.tcp_up = Some(since(e.at));
                }
                continue;
            }
            TraceKind::Winner { attempt } => (attempt, AttemptEnd::Won),
            TraceKind::AttemptFailed { attempt, reason } => (attempt, AttemptEnd::Failed(reason)),
            TraceKind::AttemptCancelled { attempt } => (attempt, AttemptEnd::Cancelled),
            _ => continue,
        };
        if let Some(r) = rows
            .iter_mut()
            .find(|r| r.attempt == n && r.result == AttemptEnd::Running)
        {
            r.end = Some(since(e.at));
            r.result = end;
        }
    }
    rows
}

/// DNS questions of a trace: HTTPS, AAAA, A, those that were asked, each
/// from its first query to the answer that settled it (with a search list,
/// the last name's).
pub fn dns_rows(trace: &Trace) -> Vec<DnsRow> {
    let since = |t: Instant| t - trace.start;
    let mut rows = Vec::new();
    for qtype in [QueryType::Https, QueryType::Aaaa, QueryType::A] {
        let mut row = DnsRow {
            qtype,
            sent: None,
            answered: None,
            outcome: None,
            local: None,
            transmissions: 0,
            tcp: false,
        };
        let mut seen = false;
        for e in &trace.events {
            match e.kind {
                TraceKind::DnsQuery { qtype: q, tcp, .. } if q == qtype => {
                    seen = true;
                    row.transmissions += 1;
                    row.tcp |= tcp;
                    row.sent.get_or_insert(since(e.at));
                }
                TraceKind::DnsJoined { qtype: q, .. } if q == qtype => {
                    seen = true;
                    row.sent.get_or_insert(since(e.at));
                }
                // The search list moved on: the question is answered by
                // the next name, so the row runs to its answer.
                TraceKind::DnsName {
                    step: NameStep::Search { .. },
                    ..
                } => row.outcome = None,
                TraceKind::DnsAnswer {
                    qtype: q,
                    outcome,
                    local,
                } if q == qtype && row.outcome.is_none() => {
                    seen = true;
                    row.answered = Some(since(e.at));
                    row.outcome = Some(outcome);
                    row.local = local;
                }
                _ => {}
            }
        }
        if seen {
            rows.push(row);
        }
    }
    rows
}

/// The report of one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnReport {
    /// `ready`, `failed` or `stalled`.
    pub outcome: &'static str,
    /// Time from initiate to ready.
    pub time_to_ready: Option<Duration>,
    /// Winner: remote and interface name.
    pub winner: Option<(SocketAddr, String)>,
    /// Every attempt.
    pub attempts: Vec<AttemptRow>,
    /// Every DNS question.
    pub dns: Vec<DnsRow>,
    /// Why it failed.
    pub error: Option<String>,
    /// DNS transmissions.
    pub dns_queries: u32,
    /// Datagrams refused as answers.
    pub dns_dropped: u32,
    /// The core's event list of the race, one line per trace event.
    pub events: String,
    /// When it started, from the run's start.
    pub started: Duration,
}

impl ConnReport {
    /// The time a picture of the connection spans: everything that
    /// happened, and `oracle` when given.
    pub fn span(&self, oracle: Option<Duration>) -> Duration {
        let mut span = oracle.unwrap_or_default();
        for d in &self.dns {
            span = span.max(d.answered.or(d.sent).unwrap_or_default());
        }
        for a in &self.attempts {
            span = span.max(a.end.unwrap_or(a.start));
        }
        if let Some(t) = self.time_to_ready {
            span = span.max(t);
        }
        span
    }
}

/// The interface-name function for a scenario.
pub fn namer(sc: &Scenario) -> impl Fn(Option<u32>) -> String + '_ {
    move |i| match i {
        None => "default".to_string(),
        Some(i) => sc
            .client
            .interface_name(i)
            .map_or_else(|| format!("if#{i}"), str::to_string),
    }
}

/// The report of connection `c` of a run of `sc`.
pub fn conn_report(sc: &Scenario, c: &ConnRun) -> ConnReport {
    let names = namer(sc);
    let attempts = attempts(&c.trace, &names);
    let dns = dns_rows(&c.trace);
    let mut dns_dropped = 0;
    let mut dns_queries = 0;
    for e in &c.trace.events {
        match e.kind {
            TraceKind::DnsDropped { .. } => dns_dropped += 1,
            TraceKind::DnsQuery { .. } => dns_queries += 1,
            _ => {}
        }
    }
    let (outcome, winner, error) = match &c.outcome {
        ConnOutcome::Ready { remote, interface } => {
            ("ready", Some((*remote, names(*interface))), None)
        }
        ConnOutcome::Failed(e) => ("failed", None, Some(e.to_string())),
        ConnOutcome::Refused(e) => ("failed", None, Some(format!("initiate refused: {e}"))),
        ConnOutcome::Stalled => (
            "stalled",
            None,
            Some("still establishing when nothing more could happen (no connect.timeout)".into()),
        ),
    };
    let host = &sc.connect.remote_text;
    let waterfall = c
        .trace
        .waterfall(host, &|i| sc.client.interface_name(i).map(str::to_string));
    // The core's waterfall is its event list, a blank line, then its own
    // bars; the report draws bars with the attempts' phases instead.
    let events = waterfall
        .split_once("\n\n")
        .map_or(waterfall.as_str(), |(events, _)| events)
        .to_string()
        + "\n";
    ConnReport {
        outcome,
        time_to_ready: c.time_to_ready(),
        winner,
        attempts,
        dns,
        error,
        dns_queries,
        dns_dropped,
        events,
        started: c.started - Instant::ZERO,
    }
}

/// A run with its reports.
#[derive(Clone, Debug)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The run.
    pub run: RunResult,
    /// One report per connection.
    pub connections: Vec<ConnReport>,
    /// The oracle's time to ready per connection, when computed.
    pub oracle: Vec<Option<Duration>>,
    /// The trace hash.
    pub trace_hash: u64,
    /// Wall-clock time of the run.
    pub wall: Duration,
    /// The stack name: `tcp+tls` or `tcp`.
    pub stack: &'static str,
    /// The question's name (for the JSON `dns` rows).
    pub qname: String,
    /// The port connected to.
    pub port: u16,
}

impl Report {
    /// Builds the report of `run`.
    pub fn new(
        sc: &Scenario,
        run: RunResult,
        wall: Duration,
        oracle: Vec<Option<Duration>>,
    ) -> Report {
        let connections = run.connections.iter().map(|c| conn_report(sc, c)).collect();
        let trace_hash = trace_hash(run.connections.iter().map(|c| &c.trace));
        Report {
            scenario: sc.name.clone(),
            connections,
            oracle,
            trace_hash,
            wall,
            stack: if sc.connect.tls { "tcp+tls" } else { "tcp" },
            qname: sc
                .connect
                .host_name()
                .map_or_else(|| sc.connect.remote_text.clone(), str::to_string),
            port: sc.connect.port(),
            run,
        }
    }

    /// The text report: per connection its outcome, the core's event list,
    /// the bars and a summary. `wall`: include the wall-clock line (golden
    /// files leave it out, since it differs from run to run).
    pub fn text(&self, wall: bool) -> String {
        self.render(wall, true)
    }

    /// The text report without what a comparison table already says:
    /// per connection the bars alone (and any violation), without the
    /// legend, which goes once under all policies. What `taps-sim` shows
    /// per policy under its table.
    pub fn brief(&self) -> String {
        self.render(false, false)
    }

    fn render(&self, wall: bool, full: bool) -> String {
        let mut out = String::new();
        let r = &self.run;
        if !full {
            let _ = writeln!(out, "{} (seed {})", r.policy.name(), r.seed);
            let n = self.connections.len();
            for (i, _) in self.connections.iter().enumerate() {
                if n > 1 {
                    let _ = writeln!(out, "connection {}/{n}", i + 1);
                }
                out.push_str(&self.bars(i));
            }
            for v in &r.violations {
                let _ = writeln!(out, "VIOLATION: {v}");
            }
            return out;
        }
        let _ = writeln!(
            out,
            "scenario {} · policy {} · seed {}",
            self.scenario,
            r.policy.name(),
            r.seed
        );
        let n = self.connections.len();
        for (i, c) in self.connections.iter().enumerate() {
            let _ = writeln!(out);
            let head = match (&c.winner, c.time_to_ready) {
                (Some((remote, iface)), Some(t)) => {
                    format!(
                        "ready after {} via {remote} on {iface} ({})",
                        ms(t),
                        self.stack
                    )
                }
                _ => format!("{}: {}", c.outcome, c.error.as_deref().unwrap_or("")),
            };
            let _ = writeln!(
                out,
                "== connection {}/{n} (started at {}): {head}",
                i + 1,
                ms(c.started)
            );
            let _ = writeln!(out);
            out.push_str(&c.events);
            let _ = writeln!(out);
            out.push_str(&self.bars(i));
            out.push_str(&bar_legend());
            let oracle = self.oracle.get(i).copied().flatten();
            let mut summary = match c.time_to_ready {
                Some(t) => format!("ready in {}", ms(t)),
                None => c.outcome.to_string(),
            };
            if let Some(o) = oracle {
                let _ = write!(summary, "; oracle {}", ms(o));
                if let Some(t) = c.time_to_ready {
                    let _ = write!(summary, " (regret {})", ms(t.saturating_sub(o)));
                }
            }
            let _ = write!(
                summary,
                "; {} attempt(s); {} DNS transmission(s)",
                c.attempts.len(),
                c.dns_queries
            );
            if c.dns_dropped > 0 {
                let _ = write!(
                    summary,
                    "; {} forged or broken answer(s) dropped",
                    c.dns_dropped
                );
            }
            let _ = writeln!(out, "summary: {summary}");
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "trace hash {:016x}; simulated {} in {} steps",
            self.trace_hash,
            ms(r.end - Instant::ZERO),
            r.steps
        );
        for v in &r.violations {
            let _ = writeln!(out, "VIOLATION: {v}");
        }
        if wall {
            let sim = r.end - Instant::ZERO;
            let ratio = sim.as_secs_f64() / self.wall.as_secs_f64().max(1e-9);
            let _ = writeln!(
                out,
                "wall time {:.3} ms ({ratio:.0}× faster than real time)",
                millis(self.wall)
            );
        }
        out
    }

    /// Text bars of connection `i`: one per DNS question and per attempt
    /// on one time axis, each attempt split into its [`Phase`]s and ended
    /// by how it ended ([`bar_legend`] says which mark is which).
    pub fn bars(&self, i: usize) -> String {
        const WIDTH: usize = 48;
        let mut out = String::new();
        let Some(c) = self.connections.get(i) else {
            return out;
        };
        let span = c.span(None);
        let span_ms = millis(span).max(1.0);
        let col = |d: Duration| ((millis(d) / span_ms) * WIDTH as f64).round() as usize;
        let span_label = format!("{span_ms:.0}ms");
        let _ = writeln!(out, "{:<36} 0ms{span_label:>w$}", "", w = WIDTH - 1);
        let ms1 = |d: Duration| format!("{:.1}", millis(d));
        for d in &c.dns {
            let from = d.sent.or(d.answered).unwrap_or_default();
            let to = d.answered.unwrap_or(span);
            let mut cells = vec![' '; WIDTH + 1];
            fill(&mut cells, col(from), col(to), '.');
            mark(&mut cells, col(to), '|');
            let label = format!(
                "dns {} {}",
                d.qtype.name(),
                dns_name(&self.qname, d.qtype, self.port)
            );
            let _ = writeln!(
                out,
                "  {label:<34} [{}] {} ({}-{}ms)",
                cells.iter().collect::<String>(),
                d.result(),
                ms1(from),
                ms1(to)
            );
        }
        for a in &c.attempts {
            let mut cells = vec![' '; WIDTH + 1];
            for (phase, from, to) in a.phases(span) {
                let ch = match phase {
                    Phase::Connecting => '-',
                    Phase::TcpUp => '=',
                };
                fill(&mut cells, col(from), col(to), ch);
            }
            let end = a.end.unwrap_or(span);
            let (ch, word) = match a.result {
                AttemptEnd::Won => ('*', "won".to_string()),
                AttemptEnd::Failed(r) => ('x', format!("failed: {r}")),
                AttemptEnd::Cancelled => ('/', "cancelled".to_string()),
                AttemptEnd::Running => ('>', "running".to_string()),
            };
            mark(&mut cells, col(end), ch);
            let up = a
                .tcp_up
                .map_or_else(String::new, |t| format!("; TCP up at {}ms", ms1(t)));
            let label = format!("#{} {} {}", a.attempt, a.target(), a.interface_name);
            let _ = writeln!(
                out,
                "  {label:<34} [{}] {word} ({}-{}ms{up})",
                cells.iter().collect::<String>(),
                ms1(a.start),
                ms1(end)
            );
        }
        if c.attempts.is_empty() {
            let _ = writeln!(out, "  no attempts");
        }
        out
    }

    /// The JSON report (`--json`): one object per run.
    pub fn json(&self) -> String {
        let conns = self
            .connections
            .iter()
            .map(|c| JsonConn {
                outcome: c.outcome,
                time_to_ready_ms: c.time_to_ready.map(millis),
                winner: c.winner.as_ref().map(|(remote, iface)| JsonWinner {
                    remote: remote.to_string(),
                    interface: iface.clone(),
                    stack: self.stack,
                }),
                attempts: c
                    .attempts
                    .iter()
                    .map(|a| JsonAttempt {
                        remote: a.remote.to_string(),
                        interface: a.interface_name.clone(),
                        stack: self.stack,
                        start_ms: millis(a.start),
                        end_ms: a.end.map(millis),
                        result: a.result.word(),
                        reason: match a.result {
                            AttemptEnd::Failed(r) => Some(r.to_string()),
                            _ => None,
                        },
                    })
                    .collect(),
                dns: c
                    .dns
                    .iter()
                    .map(|d| JsonDns {
                        name: dns_name(&self.qname, d.qtype, self.port),
                        qtype: d.qtype.name(),
                        sent_ms: d.sent.map(millis),
                        answered_ms: d.answered.map(millis),
                        result: d.result(),
                    })
                    .collect(),
            })
            .collect();
        let j = JsonRun {
            scenario: &self.scenario,
            seed: self.run.seed,
            policy: self.run.policy.name(),
            connections: conns,
            trace_hash: format!("{:016x}", self.trace_hash),
            sim_ms: millis(self.run.end - Instant::ZERO),
            wall_ms: millis(self.wall),
        };
        serde_json::to_string(&j).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// What the marks of [`Report::bars`] mean, as one line.
pub fn bar_legend() -> String {
    format!(
        "  . DNS question  - {}  = {}  * won  x failed  / cancelled  > running\n",
        Phase::Connecting.name(),
        Phase::TcpUp.name()
    )
}

/// Fills `cells[from..to]` with `ch`, within the row.
fn fill(cells: &mut [char], from: usize, to: usize, ch: char) {
    let to = to.min(cells.len());
    for c in cells.iter_mut().take(to).skip(from) {
        *c = ch;
    }
}

/// Puts `ch` at `at`, or at the row's last cell if `at` is past it.
fn mark(cells: &mut [char], at: usize, ch: char) {
    if let Some(last) = cells.len().checked_sub(1) {
        cells[at.min(last)] = ch;
    }
}

/// The name a question asks about: the host, or for HTTPS on a port other
/// than 443 the RFC 9460 §9.1 port-prefixed name the core asks.
fn dns_name(qname: &str, qtype: QueryType, port: u16) -> String {
    if qtype == QueryType::Https && port != 443 {
        format!("_{port}._https.{qname}")
    } else {
        qname.to_string()
    }
}

/// Milliseconds with three decimals: `"250.000 ms"`.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", millis(d))
}

#[derive(Serialize)]
struct JsonRun<'a> {
    scenario: &'a str,
    seed: u64,
    policy: &'a str,
    connections: Vec<JsonConn>,
    trace_hash: String,
    sim_ms: f64,
    wall_ms: f64,
}

#[derive(Serialize)]
struct JsonConn {
    outcome: &'static str,
    time_to_ready_ms: Option<f64>,
    winner: Option<JsonWinner>,
    attempts: Vec<JsonAttempt>,
    dns: Vec<JsonDns>,
}

#[derive(Serialize)]
struct JsonWinner {
    remote: String,
    interface: String,
    stack: &'static str,
}

#[derive(Serialize)]
struct JsonAttempt {
    remote: String,
    interface: String,
    stack: &'static str,
    start_ms: f64,
    end_ms: Option<f64>,
    result: &'static str,
    reason: Option<String>,
}

#[derive(Serialize)]
struct JsonDns {
    name: String,
    #[serde(rename = "type")]
    qtype: &'static str,
    sent_ms: Option<f64>,
    answered_ms: Option<f64>,
    result: String,
}

/// FNV-1a 64 over a canonical encoding of the traces.
pub fn trace_hash<'a>(traces: impl IntoIterator<Item = &'a Trace>) -> u64 {
    let mut h = Fnv::new();
    for t in traces {
        h.u8(0xff);
        h.u64(t.start.as_nanos());
        h.u64(t.events.len() as u64);
        for e in &t.events {
            h.u64(e.at.as_nanos());
            encode_kind(&mut h, t, &e.kind);
        }
    }
    h.0
}

struct Fnv(u64);

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    fn new() -> Self {
        Fnv(Self::OFFSET)
    }
    fn bytes(&mut self, b: &[u8]) {
        for byte in b {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }
    fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    fn addr(&mut self, a: SocketAddr) {
        match a.ip() {
            IpAddr::V4(v4) => {
                self.u8(4);
                self.bytes(&v4.octets());
            }
            IpAddr::V6(v6) => {
                self.u8(6);
                self.bytes(&v6.octets());
            }
        }
        self.u16(a.port());
    }
    fn iface(&mut self, i: Option<u32>) {
        match i {
            None => self.u8(0),
            Some(i) => {
                self.u8(1);
                self.u32(i);
            }
        }
    }
    fn qtype(&mut self, q: QueryType) {
        self.u16(q.code());
    }
    fn outcome(&mut self, o: DnsOutcome) {
        match o {
            DnsOutcome::Positive { count, ttl } => {
                self.u8(0);
                self.u16(count);
                self.u32(ttl);
            }
            DnsOutcome::NoData => self.u8(1),
            DnsOutcome::NxDomain => self.u8(2),
            DnsOutcome::ServFail => self.u8(3),
            DnsOutcome::Refused => self.u8(4),
            DnsOutcome::Error(c) => {
                self.u8(5);
                self.u16(c);
            }
            DnsOutcome::Timeout => self.u8(6),
            DnsOutcome::Malformed => self.u8(7),
            DnsOutcome::Truncated => self.u8(8),
            DnsOutcome::NoServers => self.u8(9),
            DnsOutcome::TransportFailed => self.u8(10),
            DnsOutcome::CnameChainTooDeep => self.u8(11),
            DnsOutcome::CnameLoop => self.u8(12),
            DnsOutcome::NoRandomness => self.u8(13),
            DnsOutcome::AliasLoop => self.u8(15),
            DnsOutcome::AliasChainTooLong => self.u8(16),
        }
    }
    fn reason(&mut self, r: FailureReason) {
        match r {
            FailureReason::Refused => self.u8(0),
            FailureReason::Unreachable => self.u8(1),
            FailureReason::TimedOut => self.u8(2),
            FailureReason::Reset => self.u8(3),
            FailureReason::InterfaceDown => self.u8(4),
            FailureReason::ConnTimeout => self.u8(5),
            FailureReason::SocketSetup(e) => {
                self.u8(6);
                self.u32(e as u32);
            }
            FailureReason::Os(e) => {
                self.u8(7);
                self.u32(e as u32);
            }
            FailureReason::Tls(t) => {
                self.u8(8);
                // The failure's text is stable and names every variant.
                for b in t.to_string().bytes() {
                    self.u8(b);
                }
            }
            FailureReason::Framing(f) => {
                self.u8(9);
                for b in f.to_string().bytes() {
                    self.u8(b);
                }
            }
            FailureReason::PeerClosed => self.u8(10),
            FailureReason::LocalAbort => self.u8(11),
            // A reason of a newer core: its text names it.
            other => {
                self.u8(255);
                for b in other.to_string().bytes() {
                    self.u8(b);
                }
            }
        }
    }
}

fn encode_kind(h: &mut Fnv, trace: &Trace, k: &TraceKind) {
    match *k {
        TraceKind::DnsQuery {
            qtype,
            server,
            tcp,
            retransmit,
        } => {
            h.u8(1);
            h.qtype(qtype);
            h.addr(server);
            h.bool(tcp);
            h.bool(retransmit);
        }
        TraceKind::DnsAnswer {
            qtype,
            outcome,
            local,
        } => {
            h.u8(2);
            h.qtype(qtype);
            h.outcome(outcome);
            h.u8(match local {
                None => 0,
                Some(LocalSource::Cache) => 1,
                Some(LocalSource::HostsFile) => 2,
                Some(LocalSource::Localhost) => 3,
                Some(LocalSource::Literal) => 4,
            });
        }
        TraceKind::DnsRetry { qtype, outcome } => {
            h.u8(3);
            h.qtype(qtype);
            h.outcome(outcome);
        }
        TraceKind::DnsDropped { qtype, reason } => {
            h.u8(4);
            h.qtype(qtype);
            h.u8(match reason {
                DropReason::WrongSource => 0,
                DropReason::WrongId => 1,
                DropReason::WrongQuestion => 2,
                DropReason::Malformed => 3,
            });
        }
        TraceKind::ResolutionDelayStarted => h.u8(5),
        TraceKind::DnsJoined { qtype, server } => {
            h.u8(16);
            h.qtype(qtype);
            h.addr(server);
        }
        TraceKind::DnsName { name, step } => {
            h.u8(15);
            for b in name.as_str().bytes() {
                h.u8(b);
            }
            match step {
                NameStep::Search { index, of } => {
                    h.u8(0);
                    h.u8(index);
                    h.u8(of);
                }
                NameStep::Alias { hop } => {
                    h.u8(1);
                    h.u8(hop);
                }
            }
        }
        TraceKind::RacingStarted { candidates } => {
            h.u8(6);
            h.u16(candidates);
        }
        TraceKind::PathStarted { interface } => {
            h.u8(7);
            h.iface(interface);
        }
        TraceKind::AttemptStarted {
            attempt,
            remote,
            interface,
            nat64,
        } => {
            h.u8(8);
            h.u16(attempt);
            h.addr(remote);
            h.iface(interface);
            // Only when present, so traces without NAT64 hash as before.
            if let Some(v4) = nat64 {
                h.u8(46);
                h.bytes(&v4.octets());
            }
        }
        TraceKind::Nat64Query { server } => {
            h.u8(25);
            h.addr(server);
            h.u16(server.port());
        }
        TraceKind::Nat64Prefix { prefix, source } => {
            h.u8(24);
            match prefix {
                None => h.u8(0),
                Some(p) => {
                    h.u8(p.prefix_len());
                    h.bytes(&p.prefix().octets());
                }
            }
            h.u8(match source {
                taps_core::Pref64Source::Configured => 0,
                taps_core::Pref64Source::RouterAdvertisement => 1,
                _ => 2,
            });
        }
        TraceKind::AttemptConnected { attempt } => {
            h.u8(9);
            h.u16(attempt);
        }
        TraceKind::AttemptTransportUp { attempt } => {
            h.u8(20);
            h.u16(attempt);
        }
        TraceKind::AttemptDelay { attempt, delay } => {
            h.u8(22);
            h.u16(attempt);
            for b in delay
                .delay_us
                .to_le_bytes()
                .into_iter()
                .chain(delay.rto_us.to_le_bytes())
            {
                h.u8(b);
            }
            let (kind, samples) = match delay.source {
                DelaySource::Configured => (0, 0),
                DelaySource::Prefix { samples } => (1, samples),
                DelaySource::Kernel => (2, 0),
                DelaySource::Path { samples } => (3, samples),
                DelaySource::KernelPrefix { samples } => (4, samples),
                DelaySource::KernelPath { samples } => (5, samples),
            };
            h.u8(kind);
            h.u16(samples);
        }
        TraceKind::TlsEstablished { attempt } => {
            h.u8(21);
            h.u16(attempt);
            // The details' text is stable and names every field.
            if let Some(details) = trace.tls_details(attempt) {
                for b in details.to_string().bytes() {
                    h.u8(b);
                }
            }
        }
        TraceKind::AttemptFailed { attempt, reason } => {
            h.u8(10);
            h.u16(attempt);
            h.reason(reason);
        }
        TraceKind::AttemptCancelled { attempt } => {
            h.u8(11);
            h.u16(attempt);
        }
        TraceKind::Winner { attempt } => {
            h.u8(12);
            h.u16(attempt);
        }
        TraceKind::EstablishmentFailed => h.u8(13),
        TraceKind::Closed => h.u8(14),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        // From the FNV reference test suite.
        let mut h = Fnv::new();
        assert_eq!(h.0, 0xcbf29ce484222325);
        h.bytes(b"a");
        assert_eq!(h.0, 0xaf63dc4c8601ec8c);
        let mut h = Fnv::new();
        h.bytes(b"foobar");
        assert_eq!(h.0, 0x85944171f73967e8);
    }

    #[test]
    fn the_hash_sees_every_field() {
        let mut a = Trace::new(Instant::ZERO);
        a.record(
            Instant::from_millis(1),
            TraceKind::AttemptCancelled { attempt: 1 },
        );
        let mut b = a.clone();
        assert_eq!(trace_hash([&a]), trace_hash([&b]));
        b.events[0].kind = TraceKind::AttemptCancelled { attempt: 2 };
        assert_ne!(trace_hash([&a]), trace_hash([&b]));
        let mut c = a.clone();
        c.events[0].at = Instant::from_nanos(1_000_001);
        assert_ne!(trace_hash([&a]), trace_hash([&c]));
    }
}
