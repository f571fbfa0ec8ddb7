//! Scenario files: the TOML schema, parsed and checked into a
//! typed [`Scenario`].
//!
//! ```toml
//! name = "v6-blackhole"
//! seed = 7
//! [client]
//! interfaces = [{ name = "wlan0", kind = "wifi", addrs = ["192.168.1.10/24", "2001:db8:1::10/64"] }]
//! dns = ["192.168.1.1"]
//! [dns.records."example.com"]
//! a = ["192.0.2.1"]
//! aaaa = ["2001:db8::1"]
//! delay = { a = "10ms", aaaa = "10ms", https = "10ms" }
//! [[server]]
//! listen = ["192.0.2.1:443", "[2001:db8::1]:443"]
//! [[link]]
//! to = "2001:db8::/32"
//! action = "blackhole"
//! [connect]
//! remote = "example.com:443"
//! [expect]
//! outcome = "ready"
//! ```
//!
//! Every key, its default and its meaning are in `taps-sim/REFERENCE.toml`
//! (`taps-sim schema` prints it); a test keeps it complete.
//!
//! Parsing happens in three steps, and each reports every problem it finds,
//! with its key path and line, before the next runs:
//!
//! 1. [`crate::schema::check`] reads the TOML and compares it with the
//!    shape of the raw structs below (read from their serde impls): unknown
//!    keys (with the nearest valid one), missing keys and wrong types.
//! 2. Serde reads the text into those loose "raw" structs, which cannot
//!    fail after step 1.
//! 3. [`Scenario::parse`] checks every value and names the offending key
//!    (`line 7: link[1].to: "2001:db8::/129" is not a prefix: ...`). Each
//!    section and each `[[server]]`, `[[link]]` and `[[event]]` is checked
//!    on its own, and within `[client]`, `[connect]` and a `[[link]]` each
//!    key is, so one mistake does not hide the next; elsewhere an entry
//!    reports its first bad value.
//!
//! Nothing here panics on any input: the parser is a fuzz target.

use core::fmt;
use core::time::Duration;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;

use serde::Deserialize;
use taps_core::{
    Host, HostName, Interface, InterfaceAddress, InterfaceKind, InterfaceSelector, Preconnection,
    Preference, RemoteEndpoint, TransportProperties,
    dns::{HttpsRecord, MAX_ADDRESSES_PER_ANSWER, MAX_HTTPS_RECORDS_PER_ANSWER, QueryType},
    race::{KernelRtt, Policy, RaceConfig},
};

use crate::schema::{self, Problem, Shape};
use crate::units::{parse_bandwidth, parse_duration};

/// Bounds that keep a hostile or mistaken file from asking for unbounded
/// work; each is far above what a real scenario needs.
pub mod limits {
    /// Client interfaces.
    pub const INTERFACES: usize = 64;
    /// Names in `[dns.records]`.
    pub const NAMES: usize = 1024;
    /// `[[server]]` tables.
    pub const SERVERS: usize = 1024;
    /// `[[link]]` tables.
    pub const LINKS: usize = 1024;
    /// `[[event]]` tables.
    pub const EVENTS: usize = 10_000;
    /// `connect.repeat`.
    pub const REPEAT: u32 = 10_000;
    /// `client.tcp_metrics` entries.
    pub const TCP_METRICS: usize = 4096;
    /// Latest event time and longest single delay: one day.
    pub const MAX_TIME_SECS: u64 = 86_400;
}

/// Why a scenario file was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScenarioError {
    /// The file could not be read.
    Io {
        /// The path.
        path: String,
        /// The operating system's message.
        error: String,
    },
    /// Everything wrong with the text, in file order (never empty).
    Invalid(Vec<Problem>),
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScenarioError::Io { path, error } => write!(f, "cannot read {path}: {error}"),
            ScenarioError::Invalid(problems) => {
                for (i, p) in problems.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ScenarioError {}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid(vec![Problem {
        line: None,
        key: key.into(),
        problem: problem.into(),
    }])
}

fn problem(key: impl Into<String>, problem: impl Into<String>) -> Problem {
    Problem {
        line: None,
        key: key.into(),
        problem: problem.into(),
    }
}

/// Checks each entry of a `[[key]]` list on its own, keeping every entry's
/// problems; at most `limit` entries.
fn listed<R, T>(
    key: &str,
    things: &str,
    limit: usize,
    raw: Vec<R>,
    check: impl Fn(usize, R) -> Result<T, ScenarioError>,
) -> Result<Vec<T>, ScenarioError> {
    if raw.len() > limit {
        return Err(invalid(key, format!("at most {limit} {things}")));
    }
    let mut problems = Vec::new();
    let out: Vec<T> = raw
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| keep(check(i, r), &mut problems))
        .collect();
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(ScenarioError::Invalid(problems))
    }
}

/// Keeps the value of `r`, or its problems in `into`.
fn keep<T>(r: Result<T, ScenarioError>, into: &mut Vec<Problem>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(ScenarioError::Invalid(p)) => {
            into.extend(p);
            None
        }
        Err(e @ ScenarioError::Io { .. }) => {
            into.push(Problem {
                line: None,
                key: String::new(),
                problem: e.to_string(),
            });
            None
        }
    }
}

/// The shape of a scenario file, read once from the raw structs.
pub fn shape() -> Result<&'static Shape, &'static str> {
    static SHAPE: OnceLock<Result<Shape, String>> = OnceLock::new();
    SHAPE
        .get_or_init(schema::shape_of::<RawScenario>)
        .as_ref()
        .map_err(String::as_str)
}

// ---------------------------------------------------------------------------
// Raw (serde) form
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    description: Option<String>,
    seed: Option<u64>,
    client: RawClient,
    #[serde(default)]
    dns: RawDns,
    #[serde(default)]
    server: Vec<RawServer>,
    #[serde(default)]
    link: Vec<RawLink>,
    #[serde(default)]
    event: Vec<RawEvent>,
    connect: RawConnect,
    expect: Option<RawExpect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    interfaces: Vec<RawInterface>,
    #[serde(default)]
    dns: Vec<String>,
    #[serde(default)]
    search: Vec<String>,
    ndots: Option<u8>,
    #[serde(default)]
    tcp_metrics: Vec<RawTcpMetric>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTcpMetric {
    remote: String,
    #[serde(default)]
    local: Option<String>,
    rtt: String,
    #[serde(default)]
    rttvar: Option<String>,
    #[serde(default)]
    age: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    name: String,
    kind: String,
    #[serde(default)]
    addrs: Vec<String>,
    #[serde(default)]
    expensive: bool,
    #[serde(default)]
    constrained: bool,
    up: Option<bool>,
    mtu: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDns {
    #[serde(default)]
    records: BTreeMap<String, RawRecords>,
    timeout: Option<String>,
    attempts: Option<u8>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPerType {
    a: Option<String>,
    aaaa: Option<String>,
    https: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecords {
    #[serde(default)]
    a: Vec<String>,
    #[serde(default)]
    aaaa: Vec<String>,
    #[serde(default)]
    https: Vec<RawHttps>,
    ttl: Option<String>,
    #[serde(default)]
    delay: RawPerType,
    #[serde(default)]
    fail: RawPerType,
    #[serde(default)]
    forge: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttps {
    priority: u16,
    target: Option<String>,
    #[serde(default)]
    alpn: Vec<String>,
    #[serde(default)]
    no_default_alpn: bool,
    port: Option<u16>,
    #[serde(default)]
    ipv4hint: Vec<String>,
    #[serde(default)]
    ipv6hint: Vec<String>,
    #[serde(default)]
    ech: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Vec<String>,
    tls: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    accept: Option<String>,
    tls_time: Option<String>,
    cert: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    interface: Option<String>,
    to: Option<String>,
    delay: Option<String>,
    jitter: Option<String>,
    loss: Option<f64>,
    bandwidth: Option<String>,
    action: Option<String>,
    direction: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    at: String,
    interface: Option<String>,
    up: Option<bool>,
    link: Option<i64>,
    action: Option<String>,
    delay: Option<String>,
    jitter: Option<String>,
    loss: Option<f64>,
    bandwidth: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawInterfacePrefs {
    #[serde(default)]
    require: Vec<String>,
    #[serde(default)]
    prohibit: Vec<String>,
    #[serde(default)]
    prefer: Vec<String>,
    #[serde(default)]
    avoid: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnect {
    remote: String,
    tls: Option<bool>,
    #[serde(default)]
    alpn: Vec<String>,
    policy: Option<String>,
    attempt_delay: Option<String>,
    resolution_delay: Option<String>,
    timeout: Option<String>,
    #[serde(default)]
    interfaces: RawInterfacePrefs,
    #[serde(default)]
    prohibit_expensive: bool,
    #[serde(default)]
    prohibit_constrained: bool,
    repeat: Option<u32>,
    gap: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    outcome: Option<String>,
    winner: Option<String>,
    interface: Option<String>,
    ready_within: Option<String>,
    ready_at: Option<String>,
    attempts: Option<u32>,
    attempts_at_most: Option<u32>,
    attempt_results: Option<Vec<String>>,
    dns_queries: Option<u32>,
    dns_dropped: Option<u32>,
    error_contains: Option<String>,
    oracle: Option<String>,
    #[serde(default)]
    connection: Vec<RawExpect>,
}

// ---------------------------------------------------------------------------
// Typed form
// ---------------------------------------------------------------------------

/// A checked scenario: everything the simulator needs to build a world.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Its name, used in reports and replay commands.
    pub name: String,
    /// What it shows, for people reading the library.
    pub description: Option<String>,
    /// The seed of every random choice; `--seed` overrides it. Default 1.
    pub seed: u64,
    /// The client host.
    pub client: Client,
    /// The resolvers' zone data and the client's DNS timing.
    pub dns: Dns,
    /// The server hosts.
    pub servers: Vec<Server>,
    /// The paths from the client to destinations.
    pub links: Vec<Link>,
    /// Changes over time, sorted by time (stable: file order among equals).
    pub events: Vec<WorldEvent>,
    /// What the application asks for.
    pub connect: Connect,
    /// What `taps-sim check` asserts.
    pub expect: Option<Expect>,
}

/// The client host.
#[derive(Clone, Debug, PartialEq)]
pub struct Client {
    /// Its interfaces in the core's form; index = position + 1, the first
    /// listed is the primary.
    pub interfaces: Vec<Interface>,
    /// Resolver addresses, tried in order.
    pub resolvers: Vec<SocketAddr>,
    /// resolv.conf(5) `search` domains, in order.
    pub search: Vec<HostName>,
    /// resolv.conf(5) `options ndots:n` (default 1).
    pub ndots: u8,
    /// What the client's kernel remembers of earlier TCP connections
    /// (Linux `tcp_metrics`), reported to the machine at the start of the
    /// run as `Input::KernelRtts`.
    pub tcp_metrics: Vec<KernelRtt>,
}

impl Client {
    /// The 1-based index of the interface called `name`.
    pub fn interface_index(&self, name: &str) -> Option<u32> {
        self.interfaces
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.index)
    }

    /// The name of interface `index`.
    pub fn interface_name(&self, index: u32) -> Option<&str> {
        self.interfaces
            .iter()
            .find(|i| i.index == index)
            .map(|i| i.name.as_str())
    }
}

/// Zone data and client DNS settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Dns {
    /// Records per name, sorted by name.
    pub records: Vec<Records>,
    /// The client's wait for one transmission. Default 1 s.
    pub timeout: Duration,
    /// The client's transmissions per server. Default 2.
    pub attempts: u8,
}

impl Dns {
    /// The records of `name` (compared without case and trailing dot).
    pub fn lookup(&self, name: &str) -> Option<&Records> {
        let name = name.trim_end_matches('.');
        self.records
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
    }
}

/// A value per DNS record type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerType<T> {
    /// For A queries.
    pub a: T,
    /// For AAAA queries.
    pub aaaa: T,
    /// For HTTPS queries.
    pub https: T,
}

impl<T: Copy> PerType<T> {
    /// The value for `qtype`.
    pub fn get(&self, qtype: QueryType) -> T {
        match qtype {
            QueryType::A => self.a,
            QueryType::Aaaa => self.aaaa,
            QueryType::Https => self.https,
        }
    }
}

/// How a resolver fails one record type (`fail = { aaaa = "timeout" }`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DnsFail {
    /// Never answers.
    Timeout,
    /// Answers SERVFAIL.
    ServFail,
    /// Answers NXDOMAIN.
    NxDomain,
    /// Answers UDP with TC=1 and no records; TCP answers in full.
    Truncate,
    /// Answers with bytes that are not a DNS message.
    Garbage,
}

/// A forged answer the world sends just before each real UDP answer, to show
/// the client ignores it (RFC 5452 §9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Forgery {
    /// The real answer with its id off by one.
    WrongId,
    /// The real answer from an address that is not the server's.
    WrongSource,
}

/// The records of one name.
#[derive(Clone, Debug, PartialEq)]
pub struct Records {
    /// The name, lowercase, without trailing dot.
    pub name: String,
    /// IPv4 addresses.
    pub a: Vec<Ipv4Addr>,
    /// IPv6 addresses.
    pub aaaa: Vec<Ipv6Addr>,
    /// HTTPS records.
    pub https: Vec<HttpsRecord>,
    /// TTL of every record, and the negative TTL of empty answers.
    pub ttl: u32,
    /// The resolver's time to answer, per type.
    pub delay: PerType<Duration>,
    /// Failures, per type.
    pub fail: PerType<Option<DnsFail>>,
    /// Forged answers sent ahead of each real UDP answer.
    pub forge: Vec<Forgery>,
}

/// Which TLS a server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerTls {
    /// A real rustls server: a server-side `taps_core` machine with a
    /// certificate for `names` from the scenario's test CA, exchanging real
    /// TLS 1.3 bytes with the client's per-attempt rustls over the simulated
    /// links (see [`crate::server`]). With `connect.tls = false` the client
    /// speaks no TLS and only the TCP handshake matters.
    Real,
    /// A modelled handshake: one round trip plus `tls_time`, no crypto.
    Modelled,
    /// Plain TCP; a client that starts TLS here fails.
    None,
}

/// Which certificate a `tls = "real"` server presents (`cert = "..."`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Cert {
    /// `ok`: for its `names`, signed by the CA the client trusts, valid now.
    #[default]
    Ok,
    /// `other-ca`: signed by a CA the client does not trust
    /// (`TLS: unknown issuer: the chain does not lead to a trusted root; …`).
    OtherCa,
    /// `expired`: its validity ended before the simulation's TLS clock.
    Expired,
    /// `not-yet-valid`: its validity starts after the simulation's TLS clock.
    NotYetValid,
}

/// What a server does with a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Accept {
    /// Completes TCP and TLS.
    Ok,
    /// Completes TCP, then resets the connection when the client's first
    /// bytes arrive (without TLS: as soon as the handshake completes).
    Reset,
    /// Completes TCP, then closes it (FIN) at the same moment `reset` would.
    Close,
    /// Completes TCP and never reads or writes again.
    StallAfterTcp,
    /// Completes TCP, starts TLS and never finishes it.
    StallTls,
}

/// One server host.
#[derive(Clone, Debug, PartialEq)]
pub struct Server {
    /// The addresses and ports it listens on.
    pub listen: Vec<SocketAddr>,
    /// Its TLS.
    pub tls: ServerTls,
    /// Names on its certificate (DNS names, `*.` wildcards or addresses):
    /// the subject alternative names of a `tls = "real"` server's leaf. When
    /// empty, the leaf is for `connect.remote`'s host.
    pub names: Vec<String>,
    /// Which certificate a `tls = "real"` server presents.
    pub cert: Cert,
    /// What it does with connections.
    pub accept: Accept,
    /// Server-side handshake time, on top of the handshake's round trip:
    /// modelled TLS sends its flight this long after the ClientHello
    /// arrives; a real server's machine reads each of the client's flights
    /// this long after it arrives (so its own flight leaves as late).
    pub tls_time: Duration,
}

/// What a link does with packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Delivers them (subject to loss).
    Pass,
    /// Drops them silently.
    Blackhole,
    /// Drops them and answers: TCP RST to a SYN, ICMP unreachable to UDP.
    Reject,
}

/// Which way a link entry applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Both ways.
    Both,
    /// Client to destination only.
    Up,
    /// Destination to client only.
    Down,
}

/// An address prefix, or every address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prefix {
    /// `"*"`.
    Any,
    /// `addr/len`.
    Net {
        /// The network address.
        addr: IpAddr,
        /// Prefix length.
        len: u8,
    },
}

impl Prefix {
    /// Whether `ip` lies in the prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (*self, ip) {
            (Prefix::Any, _) => true,
            (
                Prefix::Net {
                    addr: IpAddr::V4(n),
                    len,
                },
                IpAddr::V4(a),
            ) => {
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(len))
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (
                Prefix::Net {
                    addr: IpAddr::V6(n),
                    len,
                },
                IpAddr::V6(a),
            ) => {
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(len))
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }

    /// How specific it is: `"*"` is -1, then the prefix length.
    pub fn specificity(&self) -> i16 {
        match self {
            Prefix::Any => -1,
            Prefix::Net { len, .. } => i16::from(*len),
        }
    }
}

/// The behaviour of a link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkParams {
    /// One-way delay.
    pub delay: Duration,
    /// Extra delay per packet, drawn uniformly from 0 to this (whole µs).
    pub jitter: Duration,
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Bits per second; `None`: unlimited.
    pub bandwidth: Option<u64>,
    /// Pass, blackhole or reject.
    pub action: Action,
}

impl LinkParams {
    /// An instant, lossless, unlimited link.
    pub const PASS: LinkParams = LinkParams {
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        loss: 0.0,
        bandwidth: None,
        action: Action::Pass,
    };
}

/// A link from the client towards a set of destinations.
///
/// For a packet, the matching entry with the longest prefix wins; among
/// equals, one naming the packet's interface beats one for every interface;
/// among equals still, the first listed wins. Destinations no entry matches
/// are reached instantly and without loss ([`LinkParams::PASS`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// The client interface (1-based index), or every interface.
    pub interface: Option<u32>,
    /// The destinations.
    pub to: Prefix,
    /// Which way it applies.
    pub direction: Direction,
    /// How it behaves (events may change it).
    pub params: LinkParams,
}

/// A change to the world at a set time.
#[derive(Clone, Debug, PartialEq)]
pub struct WorldEvent {
    /// When, from the start of the run.
    pub at: Duration,
    /// What changes.
    pub change: Change,
}

/// What a [`WorldEvent`] changes.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// An interface goes up or down.
    Interface {
        /// 1-based index.
        index: u32,
        /// Up or down.
        up: bool,
    },
    /// A link's behaviour changes; `None` fields keep their value.
    Link {
        /// Position in `[[link]]`.
        link: usize,
        /// New action.
        action: Option<Action>,
        /// New delay.
        delay: Option<Duration>,
        /// New jitter.
        jitter: Option<Duration>,
        /// New loss.
        loss: Option<f64>,
        /// New bandwidth.
        bandwidth: Option<u64>,
    },
}

/// Interface preferences of the connection (RFC 9622 §6.2.11).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfacePrefs {
    /// Only these.
    pub require: Vec<InterfaceSelector>,
    /// Never these.
    pub prohibit: Vec<InterfaceSelector>,
    /// These first.
    pub prefer: Vec<InterfaceSelector>,
    /// These last.
    pub avoid: Vec<InterfaceSelector>,
}

/// What the application asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Connect {
    /// Where to.
    pub remote: RemoteEndpoint,
    /// `remote` as written, for reports.
    pub remote_text: String,
    /// Whether the stack has TLS over TCP.
    pub tls: bool,
    /// ALPN ids offered by the client, and accepted by `tls = "real"`
    /// servers.
    pub alpn: Vec<String>,
    /// Racing policy.
    pub policy: Policy,
    /// Connection Attempt Delay override.
    pub attempt_delay: Option<Duration>,
    /// Resolution Delay override.
    pub resolution_delay: Option<Duration>,
    /// `connTimeout`.
    pub timeout: Option<Duration>,
    /// Interface preferences.
    pub interfaces: InterfacePrefs,
    /// Never use expensive interfaces.
    pub prohibit_expensive: bool,
    /// Never use constrained interfaces.
    pub prohibit_constrained: bool,
    /// Connections made one after another on one machine.
    pub repeat: u32,
    /// Wait between one connection settling and the next starting.
    pub gap: Duration,
}

impl Connect {
    /// The racing settings for `policy` with this scenario's overrides.
    pub fn race_config(&self, policy: Policy) -> RaceConfig {
        let mut race = RaceConfig::for_policy(policy);
        if let Some(d) = self.attempt_delay {
            race.connection_attempt_delay = d;
        }
        if let Some(d) = self.resolution_delay {
            race.resolution_delay = d;
        }
        race
    }

    /// The transport properties: interface preferences, `connTimeout`.
    pub fn properties(&self) -> TransportProperties {
        let mut p = TransportProperties::default();
        let levels = [
            (&self.interfaces.require, Preference::Require),
            (&self.interfaces.prohibit, Preference::Prohibit),
            (&self.interfaces.prefer, Preference::Prefer),
            (&self.interfaces.avoid, Preference::Avoid),
        ];
        for (selectors, preference) in levels {
            for s in selectors {
                p = p.interface(s.clone(), preference);
            }
        }
        if self.prohibit_expensive {
            p = p.prohibit_expensive();
        }
        if self.prohibit_constrained {
            p = p.prohibit_constrained();
        }
        p.connection.conn_timeout = self.timeout;
        p
    }

    /// The preconnection for `policy`.
    pub fn preconnection(&self, policy: Policy) -> Preconnection {
        Preconnection::new(self.remote.clone())
            .with_properties(self.properties())
            .with_race(self.race_config(policy))
    }

    /// The port connections go to.
    pub fn port(&self) -> u16 {
        self.remote.effective_port().unwrap_or(0)
    }

    /// The host name, if the remote is a name.
    pub fn host_name(&self) -> Option<&str> {
        match &self.remote.host {
            Some(Host::Name(n)) => Some(n.as_str()),
            _ => None,
        }
    }
}

/// Expected outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A connection became ready.
    Ready,
    /// Establishment failed.
    Failed,
}

/// Expectations about one connection. Every key is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpectConn {
    /// `outcome`: ready | failed.
    pub outcome: Option<Outcome>,
    /// `winner`: the winning remote, `"192.0.2.1:443"`.
    pub winner: Option<SocketAddr>,
    /// `interface`: the winner's interface name.
    pub interface: Option<String>,
    /// `ready_within`: time to ready at most this.
    pub ready_within: Option<Duration>,
    /// `ready_at`: time to ready exactly this.
    pub ready_at: Option<Duration>,
    /// `attempts`: exactly this many attempts.
    pub attempts: Option<u32>,
    /// `attempts_at_most`.
    pub attempts_at_most: Option<u32>,
    /// `attempt_results`: every attempt, as the report prints it:
    /// `"[2001:db8::1]:443 wlan0 failed: timed out"`.
    pub attempt_results: Option<Vec<String>>,
    /// `dns_queries`: DNS transmissions recorded in the trace.
    pub dns_queries: Option<u32>,
    /// `dns_dropped`: datagrams the client refused as answers.
    pub dns_dropped: Option<u32>,
    /// `error_contains`: text the establishment error must contain.
    pub error_contains: Option<String>,
    /// `oracle`: the oracle's time to ready, exactly.
    pub oracle: Option<Duration>,
}

/// The `[expect]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// Keys at the top of `[expect]`: they apply to every connection.
    pub all: ExpectConn,
    /// `[[expect.connection]]`: the n-th entry applies to connection n.
    pub each: Vec<ExpectConn>,
}

// ---------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------

impl Scenario {
    /// Parses and checks scenario text; a refusal lists every problem.
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        if let Ok(shape) = shape() {
            let problems = schema::check(text, shape);
            if !problems.is_empty() {
                return Err(ScenarioError::Invalid(problems));
            }
        }
        // After the shape check serde has nothing left to refuse; should it
        // still, its message goes out without its type names' context.
        let raw: RawScenario = toml::from_str(text).map_err(|e| {
            ScenarioError::Invalid(vec![Problem {
                line: e.span().map(|s| schema::line_at(text, s.start)),
                key: String::new(),
                problem: e.message().trim().to_string(),
            }])
        })?;
        Scenario::from_raw(raw).map_err(|e| match e {
            ScenarioError::Invalid(mut problems) => {
                schema::locate(text, &mut problems);
                schema::sort(&mut problems);
                ScenarioError::Invalid(problems)
            }
            other => other,
        })
    }

    /// Reads, parses and checks a scenario file, and finds what is legal
    /// but probably not meant ([`Scenario::warnings`], with their lines).
    pub fn load_with_warnings(
        path: &std::path::Path,
    ) -> Result<(Scenario, Vec<Problem>), ScenarioError> {
        let text = read(path)?;
        let sc = Scenario::parse(&text)?;
        let mut warnings = sc.warnings();
        schema::locate(&text, &mut warnings);
        Ok((sc, warnings))
    }

    /// What is legal but probably a mistake: a client and a server that
    /// disagree on TLS, whose attempts fail (or never run TLS) for a reason
    /// the run itself only shows as "peer closed the connection".
    pub fn warnings(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for (i, s) in self.servers.iter().enumerate() {
            // A server on another port is never reached, so it cannot
            // disagree (the library's all-addresses-dead has one on purpose).
            if !s.listen.iter().any(|l| l.port() == self.connect.port()) {
                continue;
            }
            let problem = match (self.connect.tls, s.tls) {
                (true, ServerTls::None) => {
                    "the server speaks plain TCP (tls = \"none\") but connect.tls is true \
                     (the default): every attempt to it fails when the server closes the \
                     connection on the ClientHello; set connect.tls = false, or give the \
                     server tls = \"modelled\" or \"real\""
                }
                (false, ServerTls::Real) => {
                    "the server speaks TLS (tls = \"real\") but connect.tls is false: the \
                     client connects with plain TCP and no TLS runs; set connect.tls = true, \
                     or leave the server's tls out"
                }
                _ => continue,
            };
            out.push(Problem {
                line: None,
                key: format!("server[{i}].tls"),
                problem: problem.to_string(),
            });
        }
        out
    }

    /// Reads, parses and checks a scenario file.
    pub fn load(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
        Scenario::parse(&read(path)?)
    }

    fn from_raw(raw: RawScenario) -> Result<Scenario, ScenarioError> {
        // Each section, and each entry of a list, is checked on its own so
        // that every mistake is reported; a section others refer to (the
        // client's interfaces, the links) must be right before those are
        // checked, or they would report its mistakes again.
        let mut p = Vec::new();
        if raw.name.trim().is_empty() {
            p.push(problem("name", "must not be empty"));
        }
        let client = keep(client(raw.client), &mut p);
        let dns = keep(dns(raw.dns), &mut p);
        let servers = keep(
            listed("server", "servers", limits::SERVERS, raw.server, server),
            &mut p,
        );
        let links = client.as_ref().and_then(|c| {
            keep(
                listed("link", "links", limits::LINKS, raw.link, |i, l| {
                    link(i, l, c)
                }),
                &mut p,
            )
        });
        let links_len = links.as_ref().map(Vec::len);
        let events = client.as_ref().zip(links_len).and_then(|(c, n)| {
            keep(
                listed("event", "events", limits::EVENTS, raw.event, |i, e| {
                    event(i, e, c, n)
                }),
                &mut p,
            )
        });
        let repeat = raw.connect.repeat.unwrap_or(1);
        let connect = client
            .as_ref()
            .and_then(|c| keep(connect(raw.connect, c), &mut p));
        if let (Some(servers), Some(connect)) = (&servers, &connect) {
            keep(check_tls_mix(servers, connect), &mut p);
        }
        let expect = raw.expect.and_then(|e| keep(expect(e, repeat), &mut p));
        match (client, dns, servers, links, events, connect) {
            (
                Some(client),
                Some(dns),
                Some(servers),
                Some(links),
                Some(mut events),
                Some(connect),
            ) if p.is_empty() => {
                events.sort_by_key(|e| e.at);
                Ok(Scenario {
                    name: raw.name,
                    description: raw.description,
                    seed: raw.seed.unwrap_or(1),
                    client,
                    dns,
                    servers,
                    links,
                    events,
                    connect,
                    expect,
                })
            }
            _ => Err(ScenarioError::Invalid(p)),
        }
    }

    /// Whether the client runs real TLS: `connect.tls` and at least one
    /// `tls = "real"` server. The client's preconnection then carries
    /// security parameters trusting the scenario's CA, and every attempt
    /// runs rustls over the simulated TCP byte stream.
    pub fn real_tls(&self) -> bool {
        self.connect.tls && self.servers.iter().any(|s| s.tls == ServerTls::Real)
    }

    /// The names a `tls = "real"` server's certificate is for: its `names`,
    /// or else `connect.remote`'s host.
    pub fn certificate_names(&self, server: &Server) -> Vec<String> {
        if !server.names.is_empty() {
            return server.names.clone();
        }
        match &self.connect.remote.host {
            Some(Host::Name(n)) => vec![n.as_str().trim_end_matches('.').to_string()],
            Some(Host::Ip(ip)) => vec![ip.to_string()],
            _ => vec!["localhost".to_string()],
        }
    }

    /// Whether the client accepts the certificate of `server` (a
    /// `tls = "real"` one): `cert = "ok"` and a name that covers
    /// `connect.remote`'s host (RFC 6125 §6.4: equal without case, or a
    /// `*.` wildcard standing for exactly the leftmost label; an address
    /// only as an address). The oracle counts no other as ever ready.
    pub fn certificate_verifies(&self, server: &Server) -> bool {
        if server.cert != Cert::Ok {
            return false;
        }
        let names = self.certificate_names(server);
        match &self.connect.remote.host {
            Some(Host::Ip(ip)) => names.iter().any(|n| n.parse::<IpAddr>() == Ok(*ip)),
            Some(Host::Name(host)) => {
                let host = host.as_str().trim_end_matches('.');
                names.iter().any(|n| {
                    let n = n.trim_end_matches('.');
                    match n.strip_prefix("*.") {
                        Some(base) => host
                            .split_once('.')
                            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(base)),
                        None => n.eq_ignore_ascii_case(host),
                    }
                })
            }
            _ => false,
        }
    }

    /// The server listening on `addr`, if any.
    pub fn server_at(&self, addr: SocketAddr) -> Option<&Server> {
        self.servers.iter().find(|s| s.listen.contains(&addr))
    }

    /// Whether some server host has the address `ip` (on any port).
    pub fn host_exists(&self, ip: IpAddr) -> bool {
        self.servers
            .iter()
            .any(|s| s.listen.iter().any(|l| l.ip() == ip))
    }
}

fn read(path: &std::path::Path) -> Result<String, ScenarioError> {
    std::fs::read_to_string(path).map_err(|e| ScenarioError::Io {
        path: path.display().to_string(),
        error: e.to_string(),
    })
}

fn duration(key: &str, text: &str) -> Result<Duration, ScenarioError> {
    let d = parse_duration(text).map_err(|e| invalid(key, e.to_string()))?;
    if d > Duration::from_secs(limits::MAX_TIME_SECS) {
        return Err(invalid(
            key,
            format!("{text:?} is longer than a day; the simulator stops there"),
        ));
    }
    Ok(d)
}

fn opt_duration(key: &str, text: Option<&str>) -> Result<Option<Duration>, ScenarioError> {
    text.map(|t| duration(key, t)).transpose()
}

fn loss(key: &str, value: f64) -> Result<f64, ScenarioError> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(invalid(
            key,
            format!("{value} is not a probability: write a number from 0.0 to 1.0"),
        ))
    }
}

fn action(key: &str, text: &str) -> Result<Action, ScenarioError> {
    match text {
        "pass" => Ok(Action::Pass),
        "blackhole" => Ok(Action::Blackhole),
        "reject" => Ok(Action::Reject),
        other => Err(invalid(
            key,
            format!("unknown action {other:?}: expected pass, blackhole or reject"),
        )),
    }
}

fn cidr(key: &str, text: &str) -> Result<InterfaceAddress, ScenarioError> {
    let (ip, len) = match text.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (text, None),
    };
    let addr: IpAddr = ip.trim().parse().map_err(|_| {
        invalid(
            key,
            format!("{text:?} is not an address: write \"192.168.1.10/24\" or \"2001:db8::10/64\""),
        )
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix_len = match len {
        None => max,
        Some(l) => match l.trim().parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                return Err(invalid(
                    key,
                    format!("{text:?}: the prefix length must be 0 to {max}"),
                ));
            }
        },
    };
    Ok(InterfaceAddress {
        addr,
        prefix_len,
        deprecated: false,
    })
}

fn client(raw: RawClient) -> Result<Client, ScenarioError> {
    if raw.interfaces.is_empty() {
        return Err(invalid(
            "client.interfaces",
            "list at least one interface; the first is the primary",
        ));
    }
    if raw.interfaces.len() > limits::INTERFACES {
        return Err(invalid(
            "client.interfaces",
            format!("at most {} interfaces", limits::INTERFACES),
        ));
    }
    // Each interface, each of its keys and each resolver is checked on its
    // own, so every mistake in [client] is reported.
    let mut p = Vec::new();
    let mut interfaces: Vec<Interface> = Vec::with_capacity(raw.interfaces.len());
    // Every name, even of an interface with another mistake, so that a
    // duplicate of it is still found.
    let mut names: Vec<String> = Vec::with_capacity(raw.interfaces.len());
    for (i, r) in raw.interfaces.into_iter().enumerate() {
        let key = format!("client.interfaces[{i}]");
        if r.name.trim().is_empty() {
            p.push(problem(format!("{key}.name"), "must not be empty"));
        } else if names.contains(&r.name) {
            p.push(problem(
                format!("{key}.name"),
                format!("{:?} is listed twice", r.name),
            ));
        }
        let kind = keep(
            r.kind
                .parse::<InterfaceKind>()
                .map_err(|e| invalid(format!("{key}.kind"), e.to_string())),
            &mut p,
        );
        if r.addrs.len() > 64 {
            p.push(problem(format!("{key}.addrs"), "at most 64 addresses"));
        }
        let addrs: Vec<InterfaceAddress> = r
            .addrs
            .iter()
            .take(64)
            .enumerate()
            .filter_map(|(j, a)| keep(cidr(&format!("{key}.addrs[{j}]"), a), &mut p))
            .collect();
        names.push(r.name.clone());
        if let Some(kind) = kind {
            interfaces.push(Interface {
                name: r.name,
                index: i as u32 + 1,
                kind,
                addrs,
                mtu: r.mtu.unwrap_or(1500),
                expensive: r.expensive,
                constrained: r.constrained,
                up: r.up.unwrap_or(true),
            });
        }
    }
    if raw.dns.len() > 16 {
        p.push(problem("client.dns", "at most 16 resolvers"));
    }
    let resolvers: Vec<SocketAddr> = raw
        .dns
        .iter()
        .take(16)
        .enumerate()
        .filter_map(|(i, d)| {
            let key = format!("client.dns[{i}]");
            if let Ok(ip) = d.trim().parse::<IpAddr>() {
                return Some(SocketAddr::new(ip, 53));
            }
            keep(d.trim().parse::<SocketAddr>().map_err(|_| {
                invalid(key, format!("{d:?} is not a resolver address: write \"192.168.1.1\" or \"[2001:db8::53]:53\""))
            }), &mut p)
        })
        .collect();
    if raw.search.len() > taps_core::dns::MAX_SEARCH_DOMAINS {
        p.push(problem(
            "client.search",
            format!("at most {} domains", taps_core::dns::MAX_SEARCH_DOMAINS),
        ));
    }
    let search: Vec<HostName> = raw
        .search
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            keep(
                HostName::new(d.trim()).map_err(|e| {
                    invalid(
                        format!("client.search[{i}]"),
                        format!("{d:?} is not a domain: {e}"),
                    )
                }),
                &mut p,
            )
        })
        .collect();
    if raw.ndots.is_some_and(|n| n > 15) {
        p.push(problem(
            "client.ndots",
            "at most 15 (resolv.conf caps it there)",
        ));
    }
    if raw.tcp_metrics.len() > limits::TCP_METRICS {
        p.push(problem(
            "client.tcp_metrics",
            format!("at most {} entries", limits::TCP_METRICS),
        ));
    }
    let mut tcp_metrics = Vec::with_capacity(raw.tcp_metrics.len().min(limits::TCP_METRICS));
    for (i, m) in raw.tcp_metrics.iter().take(limits::TCP_METRICS).enumerate() {
        let key = format!("client.tcp_metrics[{i}]");
        let addr = |k: &str, t: &str| {
            t.trim().parse::<IpAddr>().map_err(|_| {
                invalid(
                    format!("{key}.{k}"),
                    format!("{t:?} is not an IP address: write \"192.0.2.1\" or \"2001:db8::1\""),
                )
            })
        };
        let remote = keep(addr("remote", &m.remote), &mut p);
        let local = match m.local.as_deref() {
            Some(l) => keep(addr("local", l), &mut p).map(Some),
            None => Some(None),
        };
        let rtt = keep(duration(&format!("{key}.rtt"), &m.rtt), &mut p);
        let rttvar = keep(
            opt_duration(&format!("{key}.rttvar"), m.rttvar.as_deref()),
            &mut p,
        );
        let age = keep(
            opt_duration(&format!("{key}.age"), m.age.as_deref()),
            &mut p,
        );
        if let (Some(remote), Some(local), Some(rtt), Some(rttvar), Some(age)) =
            (remote, local, rtt, rttvar, age)
        {
            tcp_metrics.push(KernelRtt {
                local,
                remote,
                rtt,
                rttvar: rttvar.unwrap_or(rtt / 2),
                age: age.unwrap_or_default(),
            });
        }
    }
    if !p.is_empty() {
        return Err(ScenarioError::Invalid(p));
    }
    Ok(Client {
        interfaces,
        resolvers,
        search,
        ndots: raw.ndots.unwrap_or(1),
        tcp_metrics,
    })
}

fn fail(key: &str, text: Option<&str>) -> Result<Option<DnsFail>, ScenarioError> {
    text.map(|t| match t {
        "timeout" => Ok(DnsFail::Timeout),
        "servfail" => Ok(DnsFail::ServFail),
        "nxdomain" => Ok(DnsFail::NxDomain),
        "truncate" => Ok(DnsFail::Truncate),
        "garbage" => Ok(DnsFail::Garbage),
        other => Err(invalid(
            key,
            format!("unknown failure {other:?}: expected timeout, servfail, nxdomain, truncate or garbage"),
        )),
    })
    .transpose()
}

fn dns(raw: RawDns) -> Result<Dns, ScenarioError> {
    if raw.records.len() > limits::NAMES {
        return Err(invalid(
            "dns.records",
            format!("at most {} names", limits::NAMES),
        ));
    }
    let mut records: Vec<Records> = Vec::with_capacity(raw.records.len());
    let timeout = raw.timeout;
    let attempts = raw.attempts;
    for (name, r) in raw.records {
        let key = format!("dns.records.{name:?}");
        let clean = name.trim_end_matches('.').to_ascii_lowercase();
        HostName::new(&clean)
            .map_err(|e| invalid(&key, format!("{name:?} is not a host name: {e}")))?;
        if records.iter().any(|x| x.name == clean) {
            return Err(invalid(
                &key,
                "the same name is listed twice (names are compared without case)",
            ));
        }
        let a = addresses(
            &format!("{key}.a"),
            &r.a,
            |ip| match ip {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            },
            "IPv4",
        )?;
        let aaaa = addresses(
            &format!("{key}.aaaa"),
            &r.aaaa,
            |ip| match ip {
                IpAddr::V6(v6) => Some(v6),
                IpAddr::V4(_) => None,
            },
            "IPv6",
        )?;
        if r.https.len() > MAX_HTTPS_RECORDS_PER_ANSWER {
            return Err(invalid(
                format!("{key}.https"),
                format!("at most {MAX_HTTPS_RECORDS_PER_ANSWER} records"),
            ));
        }
        let https = r
            .https
            .into_iter()
            .enumerate()
            .map(|(i, h)| https(&format!("{key}.https[{i}]"), h))
            .collect::<Result<Vec<_>, _>>()?;
        let ttl = match r.ttl {
            None => 300,
            Some(t) => {
                let d = duration(&format!("{key}.ttl"), &t)?;
                if d.subsec_nanos() != 0 {
                    return Err(invalid(
                        format!("{key}.ttl"),
                        format!("{t:?}: a TTL is whole seconds"),
                    ));
                }
                u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
            }
        };
        let delay = PerType {
            a: opt_duration(&format!("{key}.delay.a"), r.delay.a.as_deref())?.unwrap_or_default(),
            aaaa: opt_duration(&format!("{key}.delay.aaaa"), r.delay.aaaa.as_deref())?
                .unwrap_or_default(),
            https: opt_duration(&format!("{key}.delay.https"), r.delay.https.as_deref())?
                .unwrap_or_default(),
        };
        let fail = PerType {
            a: fail(&format!("{key}.fail.a"), r.fail.a.as_deref())?,
            aaaa: fail(&format!("{key}.fail.aaaa"), r.fail.aaaa.as_deref())?,
            https: fail(&format!("{key}.fail.https"), r.fail.https.as_deref())?,
        };
        let forge = r
            .forge
            .iter()
            .enumerate()
            .map(|(i, f)| match f.as_str() {
                "wrong-id" => Ok(Forgery::WrongId),
                "wrong-source" => Ok(Forgery::WrongSource),
                other => Err(invalid(
                    format!("{key}.forge[{i}]"),
                    format!("unknown forgery {other:?}: expected wrong-id or wrong-source"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        records.push(Records {
            name: clean,
            a,
            aaaa,
            https,
            ttl,
            delay,
            fail,
            forge,
        });
    }
    records.sort_by(|x, y| x.name.cmp(&y.name));
    let timeout =
        opt_duration("dns.timeout", timeout.as_deref())?.unwrap_or(Duration::from_secs(1));
    if timeout.is_zero() {
        return Err(invalid("dns.timeout", "must be more than zero"));
    }
    let attempts = attempts.unwrap_or(2);
    if attempts == 0 {
        return Err(invalid("dns.attempts", "must be at least 1"));
    }
    Ok(Dns {
        records,
        timeout,
        attempts,
    })
}

fn addresses<T>(
    key: &str,
    list: &[String],
    pick: impl Fn(IpAddr) -> Option<T>,
    family: &str,
) -> Result<Vec<T>, ScenarioError> {
    if list.len() > MAX_ADDRESSES_PER_ANSWER {
        return Err(invalid(
            key,
            format!("at most {MAX_ADDRESSES_PER_ANSWER} addresses"),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, text)| {
            let k = format!("{key}[{i}]");
            let ip: IpAddr = text
                .trim()
                .parse()
                .map_err(|_| invalid(&k, format!("{text:?} is not an IP address")))?;
            pick(ip).ok_or_else(|| invalid(&k, format!("{text:?} is not an {family} address")))
        })
        .collect()
}

fn https(key: &str, h: RawHttps) -> Result<HttpsRecord, ScenarioError> {
    let target = match h.target.as_deref().map(str::trim) {
        None | Some(".") | Some("") => None,
        Some(t) => Some(HostName::new(t.trim_end_matches('.')).map_err(|e| {
            invalid(
                format!("{key}.target"),
                format!("{t:?} is not a host name: {e}"),
            )
        })?),
    };
    if h.alpn.len() > 16 || h.alpn.iter().any(|a| a.is_empty() || a.len() > 255) {
        return Err(invalid(
            format!("{key}.alpn"),
            "at most 16 ALPN ids of 1 to 255 bytes",
        ));
    }
    let ipv4hint = addresses(
        &format!("{key}.ipv4hint"),
        &h.ipv4hint,
        |ip| match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        },
        "IPv4",
    )?;
    let ipv6hint = addresses(
        &format!("{key}.ipv6hint"),
        &h.ipv6hint,
        |ip| match ip {
            IpAddr::V6(v6) => Some(v6),
            IpAddr::V4(_) => None,
        },
        "IPv6",
    )?;
    Ok(HttpsRecord {
        priority: h.priority,
        target,
        alpn: h.alpn,
        no_default_alpn: h.no_default_alpn,
        port: h.port,
        ipv4hint: ipv4hint.into_iter().collect(),
        ipv6hint: ipv6hint.into_iter().collect(),
        ech: h.ech,
    })
}

fn server(i: usize, r: RawServer) -> Result<Server, ScenarioError> {
    let key = format!("server[{i}]");
    if r.listen.is_empty() {
        return Err(invalid(
            format!("{key}.listen"),
            "list at least one address and port",
        ));
    }
    if r.listen.len() > 64 {
        return Err(invalid(format!("{key}.listen"), "at most 64 addresses"));
    }
    let listen = r
        .listen
        .iter()
        .enumerate()
        .map(|(j, l)| {
            l.trim().parse::<SocketAddr>().map_err(|_| {
                invalid(
                    format!("{key}.listen[{j}]"),
                    format!("{l:?} is not an address and port: write \"192.0.2.1:443\" or \"[2001:db8::1]:443\""),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tls = match r.tls.as_deref().unwrap_or("modelled") {
        "real" => ServerTls::Real,
        "modelled" => ServerTls::Modelled,
        "none" => ServerTls::None,
        other => {
            return Err(invalid(
                format!("{key}.tls"),
                format!("unknown TLS {other:?}: expected real, modelled or none"),
            ));
        }
    };
    let accept = match r.accept.as_deref().unwrap_or("ok") {
        "ok" => Accept::Ok,
        "reset" => Accept::Reset,
        "close" => Accept::Close,
        "stall-after-tcp" => Accept::StallAfterTcp,
        "stall-tls" => Accept::StallTls,
        other => {
            return Err(invalid(
                format!("{key}.accept"),
                format!(
                    "unknown behaviour {other:?}: expected ok, reset, close, stall-after-tcp or stall-tls"
                ),
            ));
        }
    };
    let tls_time =
        opt_duration(&format!("{key}.tls_time"), r.tls_time.as_deref())?.unwrap_or_default();
    if r.names.len() > 64 {
        return Err(invalid(format!("{key}.names"), "at most 64 names"));
    }
    for (j, n) in r.names.iter().enumerate() {
        certificate_name(&format!("{key}.names[{j}]"), n)?;
    }
    let cert = match r.cert.as_deref().unwrap_or("ok") {
        "ok" => Cert::Ok,
        "other-ca" => Cert::OtherCa,
        "expired" => Cert::Expired,
        "not-yet-valid" => Cert::NotYetValid,
        other => {
            return Err(invalid(
                format!("{key}.cert"),
                format!(
                    "unknown certificate {other:?}: expected ok, other-ca, expired or not-yet-valid"
                ),
            ));
        }
    };
    if cert != Cert::Ok && tls != ServerTls::Real {
        return Err(invalid(
            format!("{key}.cert"),
            "only a tls = \"real\" server presents a certificate",
        ));
    }
    Ok(Server {
        listen,
        tls,
        names: r.names,
        cert,
        accept,
        tls_time,
    })
}

/// A name that can go on a certificate: an IP address, a host name, or a
/// `*.` wildcard over one.
fn certificate_name(key: &str, name: &str) -> Result<(), ScenarioError> {
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let host = name.strip_prefix("*.").unwrap_or(name);
    HostName::new(host).map(|_| ()).map_err(|e| {
        invalid(
            key,
            format!("{name:?} is not a host name, \"*.\" wildcard or address: {e}"),
        )
    })
}

/// A client runs TLS against every server or none: with `connect.tls` and a
/// `tls = "real"` server, its attempts run rustls, which a modelled server
/// (a handshake time without bytes) cannot answer.
fn check_tls_mix(servers: &[Server], connect: &Connect) -> Result<(), ScenarioError> {
    if !connect.tls || !servers.iter().any(|s| s.tls == ServerTls::Real) {
        return Ok(());
    }
    match servers.iter().position(|s| s.tls == ServerTls::Modelled) {
        Some(i) => Err(invalid(
            format!("server[{i}].tls"),
            "\"modelled\" cannot be mixed with \"real\" servers when connect.tls is on: \
             the client runs real TLS against every address; make both \"real\" (or both \"modelled\")",
        )),
        None => Ok(()),
    }
}

fn interface_ref(key: &str, name: &str, client: &Client) -> Result<u32, ScenarioError> {
    client.interface_index(name).ok_or_else(|| {
        let known: Vec<&str> = client.interfaces.iter().map(|i| i.name.as_str()).collect();
        invalid(
            key,
            format!(
                "no client interface is called {name:?} (known: {})",
                known.join(", ")
            ),
        )
    })
}

fn bandwidth(key: &str, text: Option<&str>) -> Result<Option<u64>, ScenarioError> {
    text.map(|t| parse_bandwidth(t).map_err(|e| invalid(key, e.to_string())))
        .transpose()
}

/// One `[[link]]`: each key is checked on its own, so every mistake in the
/// entry is reported.
fn link(i: usize, r: RawLink, client: &Client) -> Result<Link, ScenarioError> {
    let key = format!("link[{i}]");
    let mut p = Vec::new();
    let interface = keep(
        r.interface
            .as_deref()
            .map(|n| interface_ref(&format!("{key}.interface"), n, client))
            .transpose(),
        &mut p,
    );
    let to = keep(
        match r.to.as_deref().map(str::trim) {
            None | Some("*") => Ok(Prefix::Any),
            Some(t) => cidr(&format!("{key}.to"), t)
                .map(|a| Prefix::Net {
                    addr: a.addr,
                    len: a.prefix_len,
                })
                .map_err(|_| {
                    invalid(
                        format!("{key}.to"),
                        format!("{t:?} is not a prefix: write \"2001:db8::/32\", \"192.0.2.0/24\", an address, or \"*\""),
                    )
                }),
        },
        &mut p,
    );
    let direction = keep(
        match r.direction.as_deref() {
            None | Some("both") => Ok(Direction::Both),
            Some("up") => Ok(Direction::Up),
            Some("down") => Ok(Direction::Down),
            Some(other) => Err(invalid(
                format!("{key}.direction"),
                format!("unknown direction {other:?}: expected both, up or down"),
            )),
        },
        &mut p,
    );
    let delay = keep(
        opt_duration(&format!("{key}.delay"), r.delay.as_deref()),
        &mut p,
    );
    let jitter = keep(
        opt_duration(&format!("{key}.jitter"), r.jitter.as_deref()),
        &mut p,
    );
    let loss = keep(
        r.loss.map(|l| loss(&format!("{key}.loss"), l)).transpose(),
        &mut p,
    );
    let bandwidth = keep(
        bandwidth(&format!("{key}.bandwidth"), r.bandwidth.as_deref()),
        &mut p,
    );
    let action = keep(
        r.action
            .as_deref()
            .map(|a| action(&format!("{key}.action"), a))
            .transpose(),
        &mut p,
    );
    match (
        interface, to, direction, delay, jitter, loss, bandwidth, action,
    ) {
        (
            Some(interface),
            Some(to),
            Some(direction),
            Some(delay),
            Some(jitter),
            Some(loss),
            Some(bandwidth),
            Some(action),
        ) if p.is_empty() => Ok(Link {
            interface,
            to,
            direction,
            params: LinkParams {
                delay: delay.unwrap_or_default(),
                jitter: jitter.unwrap_or_default(),
                loss: loss.unwrap_or(0.0),
                bandwidth,
                action: action.unwrap_or(Action::Pass),
            },
        }),
        _ => Err(ScenarioError::Invalid(p)),
    }
}

fn event(
    i: usize,
    r: RawEvent,
    client: &Client,
    links: usize,
) -> Result<WorldEvent, ScenarioError> {
    let key = format!("event[{i}]");
    let at = duration(&format!("{key}.at"), &r.at)?;
    let link_fields = r.action.is_some()
        || r.delay.is_some()
        || r.jitter.is_some()
        || r.loss.is_some()
        || r.bandwidth.is_some();
    let change = match (r.interface, r.link) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                &key,
                "an event changes an interface or a link, not both: split it in two",
            ));
        }
        (Some(name), None) => {
            if link_fields {
                return Err(invalid(&key, "an interface event takes only `up`"));
            }
            let index = interface_ref(&format!("{key}.interface"), &name, client)?;
            let up = r.up.ok_or_else(|| {
                invalid(
                    format!("{key}.up"),
                    "an interface event needs `up = true` or `up = false`",
                )
            })?;
            Change::Interface { index, up }
        }
        (None, Some(n)) => {
            let link = usize::try_from(n)
                .ok()
                .filter(|n| *n < links)
                .ok_or_else(|| {
                    invalid(
                        format!("{key}.link"),
                        format!("{n} names no [[link]] (there are {links}, counted from 0)"),
                    )
                })?;
            if r.up.is_some() {
                return Err(invalid(
                    format!("{key}.up"),
                    "`up` belongs to interface events",
                ));
            }
            if !link_fields {
                return Err(invalid(
                    &key,
                    "a link event needs action, delay, jitter, loss or bandwidth",
                ));
            }
            Change::Link {
                link,
                action: r
                    .action
                    .as_deref()
                    .map(|a| action(&format!("{key}.action"), a))
                    .transpose()?,
                delay: opt_duration(&format!("{key}.delay"), r.delay.as_deref())?,
                jitter: opt_duration(&format!("{key}.jitter"), r.jitter.as_deref())?,
                loss: r
                    .loss
                    .map(|l| loss(&format!("{key}.loss"), l))
                    .transpose()?,
                bandwidth: bandwidth(&format!("{key}.bandwidth"), r.bandwidth.as_deref())?,
            }
        }
        (None, None) => {
            return Err(invalid(
                &key,
                "an event needs `interface` (with `up`) or `link` (with what changes)",
            ));
        }
    };
    Ok(WorldEvent { at, change })
}

fn selector(key: &str, text: &str, client: &Client) -> Result<InterfaceSelector, ScenarioError> {
    if client.interface_index(text).is_some() {
        return Ok(InterfaceSelector::Name(text.to_string()));
    }
    text.parse::<InterfaceKind>()
        .map(InterfaceSelector::Kind)
        .map_err(|_| {
            invalid(
                key,
                format!("{text:?} is neither a client interface name nor an interface kind (wired, wifi, cellular, loopback, other)"),
            )
        })
}

fn remote(text: &str) -> Result<RemoteEndpoint, ScenarioError> {
    let remote: RemoteEndpoint = text.trim().parse().map_err(|e| {
        invalid(
            "connect.remote",
            format!("{text:?} is not an endpoint: {e}"),
        )
    })?;
    if remote.host.is_none() {
        return Err(invalid("connect.remote", "needs a host name or address"));
    }
    if matches!(remote.host, Some(Host::Service(_))) {
        return Err(invalid(
            "connect.remote",
            "DNS-SD service names cannot be resolved yet",
        ));
    }
    if remote.effective_port().is_none() {
        return Err(invalid(
            "connect.remote",
            format!("{text:?} needs a port: \"example.com:443\""),
        ));
    }
    Ok(remote)
}

/// `[connect]`: each key is checked on its own, so every mistake in the
/// table is reported.
fn connect(r: RawConnect, client: &Client) -> Result<Connect, ScenarioError> {
    let mut p = Vec::new();
    let remote = keep(remote(&r.remote), &mut p);
    let policy = keep(
        r.policy.as_deref().map_or(Ok(Policy::Hev3), |text| {
            text.parse()
                .map_err(|e: String| invalid("connect.policy", e))
        }),
        &mut p,
    );
    let mut sel = |level: &str, list: &[String]| {
        let all: Vec<InterfaceSelector> = list
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let key = format!("connect.interfaces.{level}[{i}]");
                keep(selector(&key, t, client), &mut p)
            })
            .collect();
        all
    };
    let interfaces = InterfacePrefs {
        require: sel("require", &r.interfaces.require),
        prohibit: sel("prohibit", &r.interfaces.prohibit),
        prefer: sel("prefer", &r.interfaces.prefer),
        avoid: sel("avoid", &r.interfaces.avoid),
    };
    let repeat = r.repeat.unwrap_or(1);
    if repeat == 0 || repeat > limits::REPEAT {
        p.push(problem(
            "connect.repeat",
            format!("must be 1 to {}", limits::REPEAT),
        ));
    }
    let timeout = keep(
        opt_duration("connect.timeout", r.timeout.as_deref()),
        &mut p,
    )
    .flatten();
    if timeout.is_some_and(|t| t.is_zero()) {
        p.push(problem(
            "connect.timeout",
            "must be more than zero (leave it out for no timeout)",
        ));
    }
    let attempt_delay = keep(
        opt_duration("connect.attempt_delay", r.attempt_delay.as_deref()),
        &mut p,
    );
    let resolution_delay = keep(
        opt_duration("connect.resolution_delay", r.resolution_delay.as_deref()),
        &mut p,
    );
    let gap = keep(opt_duration("connect.gap", r.gap.as_deref()), &mut p);
    match (remote, policy, attempt_delay, resolution_delay, gap) {
        (Some(remote), Some(policy), Some(attempt_delay), Some(resolution_delay), Some(gap))
            if p.is_empty() =>
        {
            Ok(Connect {
                remote,
                remote_text: r.remote.trim().to_string(),
                tls: r.tls.unwrap_or(true),
                alpn: r.alpn,
                policy,
                attempt_delay,
                resolution_delay,
                timeout,
                interfaces,
                prohibit_expensive: r.prohibit_expensive,
                prohibit_constrained: r.prohibit_constrained,
                repeat,
                gap: gap.unwrap_or_default(),
            })
        }
        _ => Err(ScenarioError::Invalid(p)),
    }
}

fn expect_conn(key: &str, r: &RawExpect) -> Result<ExpectConn, ScenarioError> {
    let outcome = r
        .outcome
        .as_deref()
        .map(|o| match o {
            "ready" => Ok(Outcome::Ready),
            "failed" => Ok(Outcome::Failed),
            other => Err(invalid(
                format!("{key}.outcome"),
                format!("unknown outcome {other:?}: expected ready or failed"),
            )),
        })
        .transpose()?;
    let winner = r
        .winner
        .as_deref()
        .map(|w| {
            w.trim().parse::<SocketAddr>().map_err(|_| {
                invalid(
                    format!("{key}.winner"),
                    format!("{w:?} is not an address and port: \"192.0.2.1:443\""),
                )
            })
        })
        .transpose()?;
    Ok(ExpectConn {
        outcome,
        winner,
        interface: r.interface.clone(),
        ready_within: opt_duration(&format!("{key}.ready_within"), r.ready_within.as_deref())?,
        ready_at: opt_duration(&format!("{key}.ready_at"), r.ready_at.as_deref())?,
        attempts: r.attempts,
        attempts_at_most: r.attempts_at_most,
        attempt_results: r.attempt_results.clone(),
        dns_queries: r.dns_queries,
        dns_dropped: r.dns_dropped,
        error_contains: r.error_contains.clone(),
        oracle: opt_duration(&format!("{key}.oracle"), r.oracle.as_deref())?,
    })
}

fn expect(r: RawExpect, repeat: u32) -> Result<Expect, ScenarioError> {
    let all = expect_conn("expect", &r)?;
    if r.connection.len() > repeat as usize {
        return Err(invalid(
            "expect.connection",
            format!(
                "{} entries, but connect.repeat makes only {repeat} connection(s)",
                r.connection.len()
            ),
        ));
    }
    let each = r
        .connection
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let key = format!("expect.connection[{i}]");
            if !c.connection.is_empty() {
                return Err(invalid(format!("{key}.connection"), "cannot nest"));
            }
            expect_conn(&key, c)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Expect { all, each })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL_EXAMPLE: &str = r#"
name = "v6-blackhole"
seed = 7                                   # default; --seed overrides

[client]
interfaces = [
  { name = "wlan0", kind = "wifi", addrs = ["192.168.1.10/24", "2001:db8:1::10/64"] },
  { name = "rmnet0", kind = "cellular", addrs = ["100.64.0.7/10"], expensive = true },
]                                          # first listed = primary
dns = ["192.168.1.1"]                      # resolver addresses, tried in order

[dns.records."example.com"]
a = ["192.0.2.1"]
aaaa = ["2001:db8::1"]
https = [{ priority = 1, target = ".", alpn = ["h2"], port = 443, ipv4hint = ["192.0.2.1"] }]
ttl = "300s"
delay = { a = "10ms", aaaa = "10ms", https = "10ms" }   # per record type
fail = { aaaa = "timeout" }                # timeout | servfail | nxdomain | truncate | garbage

[[server]]
listen = ["192.0.2.1:443", "[2001:db8::1]:443"]
tls = "real"                               # real | modelled | none
names = ["example.com"]
accept = "ok"                              # ok | reset | close | stall-after-tcp | stall-tls
tls_time = "0ms"                           # extra server time (modelled TLS: whole handshake)

[[link]]                                   # client -> destination; both directions unless `direction`
interface = "wlan0"                        # optional: every interface
to = "2001:db8::/32"                       # prefix, or "*"
delay = "20ms"                             # one way
jitter = "0ms"
loss = 0.0
action = "blackhole"                       # pass | blackhole | reject

[[event]]
at = "1s"
interface = "wlan0"
up = false                                 # or: link = 0, action = "pass"

[connect]
remote = "example.com:443"
tls = true
alpn = ["h2"]
policy = "hev3"                            # hev3 | rfc6555 | sequential
attempt_delay = "250ms"                    # optional
timeout = "30s"
interfaces = { require = [], prohibit = ["cellular"], prefer = [], avoid = [] }
repeat = 1                                 # N connections one after another on one machine

[expect]                                   # checked by `taps-sim check`
outcome = "ready"
winner = "192.0.2.1:443"
interface = "wlan0"
ready_within = "300ms"
attempts_at_most = 2
"#;

    #[test]
    fn a_full_example_parses_with_every_key() {
        let s = Scenario::parse(FULL_EXAMPLE).unwrap();
        assert_eq!(s.name, "v6-blackhole");
        assert_eq!(s.seed, 7);
        assert_eq!(s.client.interfaces.len(), 2);
        assert!(s.client.interfaces[1].expensive);
        assert_eq!(s.client.resolvers, vec!["192.168.1.1:53".parse().unwrap()]);
        let r = &s.dns.records[0];
        assert_eq!(r.name, "example.com");
        assert_eq!(r.ttl, 300);
        assert_eq!(r.https[0].port, Some(443));
        assert_eq!(r.fail.aaaa, Some(DnsFail::Timeout));
        assert_eq!(r.delay.https, Duration::from_millis(10));
        assert_eq!(s.servers[0].tls, ServerTls::Real);
        assert_eq!(s.links[0].interface, Some(1));
        assert_eq!(s.links[0].params.action, Action::Blackhole);
        assert_eq!(
            s.events[0].change,
            Change::Interface {
                index: 1,
                up: false
            }
        );
        assert_eq!(
            s.connect.interfaces.prohibit,
            vec![InterfaceSelector::Kind(InterfaceKind::Cellular)]
        );
        assert_eq!(s.connect.timeout, Some(Duration::from_secs(30)));
        let e = s.expect.unwrap().all;
        assert_eq!(e.outcome, Some(Outcome::Ready));
        assert_eq!(e.attempts_at_most, Some(2));
    }

    fn error_of(text: &str) -> String {
        Scenario::parse(text).unwrap_err().to_string()
    }

    const MINIMAL: &str = "name = \"x\"\n[client]\ninterfaces = [{ name = \"eth0\", kind = \"wired\", addrs = [\"192.0.2.10/24\"] }]\n[connect]\nremote = \"example.com:443\"\n";

    #[test]
    fn errors_name_the_key_and_the_problem() {
        assert!(Scenario::parse(MINIMAL).is_ok());
        let with = |extra: &str| format!("{MINIMAL}{extra}");
        let e = error_of(&with("[[link]]\nto = \"2001:db8::/129\"\n"));
        assert!(
            e.starts_with("line 7: link[0].to: \"2001:db8::/129\" is not a prefix"),
            "{e}"
        );
        let e = error_of(&with("[[link]]\ndelay = \"20 parsecs\"\n"));
        assert!(
            e.starts_with("line 7: link[0].delay: \"20 parsecs\" is not a duration"),
            "{e}"
        );
        let e = error_of(&with("[[link]]\nloss = 1.5\n"));
        assert!(
            e.starts_with("line 7: link[0].loss: 1.5 is not a probability"),
            "{e}"
        );
        let e = error_of(&with(
            "[[server]]\nlisten = [\"192.0.2.1:443\"]\naccept = \"maybe\"\n",
        ));
        assert!(
            e.starts_with("line 8: server[0].accept: unknown behaviour \"maybe\""),
            "{e}"
        );
        let e = error_of(&with(
            "[[event]]\nat = \"1s\"\ninterface = \"wlan9\"\nup = false\n",
        ));
        assert!(
            e.starts_with("line 8: event[0].interface: no client interface is called \"wlan9\""),
            "{e}"
        );
        let e = error_of(&with(
            "[[event]]\nat = \"1s\"\nlink = 3\naction = \"pass\"\n",
        ));
        assert!(
            e.starts_with("line 8: event[0].link: 3 names no [[link]]"),
            "{e}"
        );
        let e = error_of(&with(
            "[dns.records.\"example.com\"]\na = [\"2001:db8::1\"]\n",
        ));
        assert!(
            e.starts_with(
                "line 7: dns.records.\"example.com\".a[0]: \"2001:db8::1\" is not an IPv4 address"
            ),
            "{e}"
        );
        let e = error_of(&with("[expect]\noutcome = \"maybe\"\n"));
        assert!(
            e.starts_with("line 7: expect.outcome: unknown outcome"),
            "{e}"
        );
        // Shape errors carry the line and the key, and suggest the nearest.
        let e = error_of(&with("[[link]]\ndelya = \"20ms\"\n"));
        assert_eq!(
            e,
            "line 7: link[0].delya: unknown key; did you mean \"delay\"?"
        );
        let e = error_of("name = \"x\"\n");
        assert_eq!(
            e,
            "client: required, but missing (a table)\nconnect: required, but missing (a table)"
        );
    }

    #[test]
    fn certificates_are_checked_and_real_tls_is_not_mixed_with_modelled() {
        let with = |extra: &str| format!("{MINIMAL}{extra}");
        let e = error_of(&with(
            "[[server]]\nlisten = [\"192.0.2.1:443\"]\ntls = \"real\"\ncert = \"forged\"\n",
        ));
        assert!(
            e.starts_with("line 9: server[0].cert: unknown certificate \"forged\""),
            "{e}"
        );
        let e = error_of(&with(
            "[[server]]\nlisten = [\"192.0.2.1:443\"]\ncert = \"expired\"\n",
        ));
        assert!(
            e.starts_with("line 8: server[0].cert: only a tls = \"real\" server"),
            "{e}"
        );
        let e = error_of(&with(
            "[[server]]\nlisten = [\"192.0.2.1:443\"]\nnames = [\"exa mple.com\"]\n",
        ));
        assert!(
            e.starts_with("line 8: server[0].names[0]: \"exa mple.com\" is not a host name"),
            "{e}"
        );
        let two = "[[server]]\nlisten = [\"192.0.2.1:443\"]\ntls = \"real\"\n\
                   [[server]]\nlisten = [\"192.0.2.2:443\"]\n";
        let e = error_of(&with(two));
        assert!(
            e.starts_with("line 9: server[1].tls: \"modelled\" cannot be mixed with \"real\""),
            "{e}"
        );
        // Without TLS on the client, servers' TLS never matters.
        let plain = Scenario::parse(&with(two).replace(
            "remote = \"example.com:443\"\n",
            "remote = \"example.com:443\"\ntls = false\n",
        ))
        .unwrap();
        assert!(!plain.real_tls());
    }

    #[test]
    fn certificate_names_cover_the_host_as_rfc_6125_says() {
        let sc = |names: &str, cert: &str, remote: &str| {
            Scenario::parse(&format!(
                "name = \"x\"\n[client]\ninterfaces = [{{ name = \"eth0\", kind = \"wired\", addrs = [\"192.0.2.10/24\"] }}]\n\
                 [[server]]\nlisten = [\"192.0.2.1:443\"]\ntls = \"real\"\nnames = [{names}]\ncert = \"{cert}\"\n\
                 [connect]\nremote = \"{remote}\"\n"
            ))
            .unwrap()
        };
        let verifies = |s: Scenario| s.certificate_verifies(&s.servers[0]);
        assert!(
            verifies(sc("", "ok", "Example.COM:443")),
            "defaults to the host"
        );
        assert!(verifies(sc("\"example.com\"", "ok", "example.com:443")));
        assert!(verifies(sc(
            "\"*.example.com\"",
            "ok",
            "www.example.com:443"
        )));
        // A wildcard stands for exactly one label (RFC 6125 §6.4.3).
        assert!(!verifies(sc("\"*.example.com\"", "ok", "example.com:443")));
        assert!(!verifies(sc(
            "\"*.example.com\"",
            "ok",
            "a.b.example.com:443"
        )));
        assert!(!verifies(sc("\"other.example\"", "ok", "example.com:443")));
        assert!(verifies(sc("\"192.0.2.1\"", "ok", "192.0.2.1:443")));
        assert!(!verifies(sc(
            "\"example.com\"",
            "other-ca",
            "example.com:443"
        )));
        assert!(!verifies(sc(
            "\"example.com\"",
            "expired",
            "example.com:443"
        )));
        assert!(sc("", "ok", "example.com:443").real_tls());
    }

    #[test]
    fn prefixes_match() {
        let p = Prefix::Net {
            addr: "2001:db8::".parse().unwrap(),
            len: 32,
        };
        assert!(p.contains("2001:db8::1".parse().unwrap()));
        assert!(!p.contains("2001:db9::1".parse().unwrap()));
        assert!(!p.contains("192.0.2.1".parse().unwrap()));
        let q = Prefix::Net {
            addr: "0.0.0.0".parse().unwrap(),
            len: 0,
        };
        assert!(q.contains("192.0.2.1".parse().unwrap()));
        assert!(Prefix::Any.contains("::1".parse().unwrap()));
    }
}
