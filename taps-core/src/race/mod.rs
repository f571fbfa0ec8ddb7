//! The racing engine: RFC 9623 §4 candidate gathering and racing, with the
//! Happy Eyeballs v3 (draft-04) timing rules.
//!
//! A [`Race`] is the sans-IO state of one connection's establishment. It is fed
//! typed DNS results and attempt outcomes and answers with [`RaceAction`]s
//! (start, cancel, won, failed). The machine wraps it with DNS and sockets; the
//! benchmarks and table tests drive it directly.
//!
//! # The candidate tree (RFC 9623 §4.1)
//!
//! Path → protocol option → derived endpoint. Paths are the branches that
//! `path::derive_paths` produced; protocol options are the services of the
//! HTTPS records (HEv3 §5.1 and §5.2: grouped by ALPN set, sorted by SvcPriority,
//! ties shuffled from the seed, unassociated addresses last) or one default
//! option when there are none; endpoints are the addresses, ordered by
//! `order` (RFC 6724, HEv3 history rules, family interleaving) and then by
//! history demotion.
//!
//! # Lanes
//!
//! The tree is flattened into *lanes*, each an ordered list of candidates with
//! a racing mode (RFC 9623 §4.1.3: simultaneous, staggered, failover):
//!
//! | policy       | lanes per path                        | within a lane              |
//! |--------------|---------------------------------------|----------------------------|
//! | `hev3`       | one, interleaved families             | staggered by the CAD       |
//! | `rfc6555`    | preferred family, then the other 300 ms later | failover (one at a time) |
//! | `sequential` | one, RFC 6724 order                   | failover                   |
//!
//! The first path's lanes start when racing starts; each further path's lanes
//! start `path_delay` later, or as soon as every lane before them is exhausted
//! (the primary branch failed). A lane whose attempt fails starts its next
//! candidate at once (but never within 10 ms of its previous start, HEv3 §6).
//!
//! # Start rule (HEv3 §4.2)
//!
//! `hev3` starts once there is a positive address answer (or SVCB hint), the
//! preferred family has answered and the SVCB/HTTPS query has settled; or,
//! with a positive answer in hand, once the Resolution Delay has passed. The
//! other presets wait for every address query, as `getaddrinfo` does.
//! One extension: when every candidate known so far is demoted by history
//! (it failed or hung last time), `hev3` treats the answers as not yet
//! sufficient and waits, at most the Resolution Delay, for the other family.

pub(crate) mod delay;
pub(crate) mod history;
pub(crate) mod history_file;
pub(crate) mod order;

pub use delay::{
    AttemptDelay, DEFAULT_MIN_ATTEMPT_DELAY, DelaySource, KernelRtt, RTT_GRANULARITY,
    RTT_PREFIX_V4, RTT_PREFIX_V6, RttEstimate, rtt_prefix, rtt_prefix_len,
};
pub use history::{History, HistoryConfig, Outcome};
pub use history_file::{
    HISTORY_FILE_VERSION, HistoryFileError, MAX_ALPN_IDS, MAX_FILE_BYTES, MAX_LINE_BYTES,
    MAX_SAVED_NAMES, MAX_SAVED_OUTCOMES, SavedHistory, SavedHttps, SavedOutcome,
    history_file_checksum,
};

use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use smallvec::SmallVec;

use crate::dns::wire::HttpsRecord;
use crate::interface::Interface;
use crate::nat64::{Pref64Set, RaceNat64};
use crate::path::PathBranch;
use crate::rng::Rng;
use crate::time::Instant;
use crate::trace::{FailureReason, TlsDetails, Trace, TraceKind};
use order::{HistoryHint, SortKey};

/// HEv3 §6: "a subsequent connection MUST NOT be started within 10
/// milliseconds of the previous attempt".
pub const MIN_ATTEMPT_DELAY: Duration = Duration::from_millis(10);
/// HEv3 §4.2.1: a ServiceMode TargetName other than "." needs its own A and
/// AAAA answers. At most this many distinct targets are resolved per
/// connection; records naming further targets use their hints only.
pub const MAX_SVCB_TARGETS: usize = 2;

/// HEv3 §9: the recommended Maximum Connection Attempt Delay.
pub const MAX_ATTEMPT_DELAY: Duration = Duration::from_secs(2);

/// A named set of racing rules; all are presets of the one engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Happy Eyeballs v3: staggered, interleaved, history-aware (default).
    Hev3,
    /// RFC 6555 as Go's dialer and hyper-util do it: the preferred family's
    /// addresses one after another, the other family's 300 ms later.
    Rfc6555,
    /// One address at a time in `getaddrinfo` order, as a plain connect loop.
    Sequential,
}

impl Policy {
    /// The policy's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Hev3 => "hev3",
            Policy::Rfc6555 => "rfc6555",
            Policy::Sequential => "sequential",
        }
    }
}

impl core::str::FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hev3" => Ok(Policy::Hev3),
            "rfc6555" => Ok(Policy::Rfc6555),
            "sequential" => Ok(Policy::Sequential),
            other => Err(format!(
                "unknown racing policy {other:?}: expected hev3, rfc6555 or sequential"
            )),
        }
    }
}

/// How the branches below one tree node are raced (RFC 9623 §4.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RacingMode {
    /// All at once.
    Simultaneous,
    /// One after another with this delay, or sooner when one fails.
    Staggered(Duration),
    /// The next only when the previous has failed.
    Failover,
}

/// The racing engine's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RaceConfig {
    /// Which preset the engine follows.
    pub policy: Policy,
    /// HEv3 §4.2 Resolution Delay. Default 50 ms.
    pub resolution_delay: Duration,
    /// HEv3 §6 Connection Attempt Delay. Default 250 ms; the engine clamps it
    /// to 10 ms – 2 s (see [`RaceConfig::attempt_delay`]). With
    /// [`rtt_attempt_delay`](Self::rtt_attempt_delay), the delay when there
    /// is no RTT data.
    pub connection_attempt_delay: Duration,
    /// HEv3 §6: after an attempt, wait the RFC 6298 retransmission timeout
    /// of its destination (estimated from the history's handshakes to its
    /// prefix, the kernel's TCP metrics, or the path's handshakes; see
    /// [`History::attempt_rtt`]) instead of the fixed delay. On in the
    /// `hev3` preset; only `hev3` staggers attempts.
    pub rtt_attempt_delay: bool,
    /// HEv3 §6 Minimum Connection Attempt Delay under an RTT-derived delay.
    /// Default 100 ms; never under 10 ms (see
    /// [`RaceConfig::min_attempt_delay`]).
    pub min_attempt_delay: Duration,
    /// HEv3 §5.3 Preferred ("First") Address Family Count. Default 1.
    pub first_address_family_count: u8,
    /// How paths (interfaces) race: by default a secondary path starts
    /// `path_delay` (1 s) after the one before it, or at once when that one has
    /// failed; `Failover` waits for failure only.
    pub path_mode: RacingMode,
    /// The RFC 6555 fallback delay of the `rfc6555` preset. Default 300 ms.
    pub fallback_delay: Duration,
    /// Bound on attempts in flight at once for one connection. Default 8.
    pub max_concurrent_attempts: u16,
    /// Bound on candidates per connection (all paths, options and
    /// addresses). Default 64; further candidates are ignored and counted.
    pub max_candidates: u16,
}

impl Default for RaceConfig {
    fn default() -> Self {
        RaceConfig::hev3()
    }
}

impl RaceConfig {
    /// The Happy Eyeballs v3 preset with the draft's recommended values.
    pub const fn hev3() -> Self {
        RaceConfig {
            policy: Policy::Hev3,
            resolution_delay: Duration::from_millis(50),
            connection_attempt_delay: Duration::from_millis(250),
            rtt_attempt_delay: true,
            min_attempt_delay: DEFAULT_MIN_ATTEMPT_DELAY,
            first_address_family_count: 1,
            path_mode: RacingMode::Staggered(Duration::from_secs(1)),
            fallback_delay: Duration::from_millis(300),
            max_concurrent_attempts: 8,
            max_candidates: 64,
        }
    }

    /// The RFC 6555 two-lane preset (Go's dialer, hyper-util).
    pub const fn rfc6555() -> Self {
        RaceConfig {
            policy: Policy::Rfc6555,
            ..RaceConfig::hev3()
        }
    }

    /// The `hev3` preset with the fixed Connection Attempt Delay only (no
    /// RTT-derived delay), for comparison.
    pub const fn hev3_static() -> Self {
        RaceConfig {
            rtt_attempt_delay: false,
            ..RaceConfig::hev3()
        }
    }

    /// The one-at-a-time preset.
    pub const fn sequential() -> Self {
        RaceConfig {
            policy: Policy::Sequential,
            ..RaceConfig::hev3()
        }
    }

    /// The preset named by `policy`.
    pub const fn for_policy(policy: Policy) -> Self {
        match policy {
            Policy::Hev3 => RaceConfig::hev3(),
            Policy::Rfc6555 => RaceConfig::rfc6555(),
            Policy::Sequential => RaceConfig::sequential(),
        }
    }

    /// The Connection Attempt Delay in force: the configured value clamped to
    /// HEv3 §6's 10 ms floor and 2 s ceiling.
    pub fn attempt_delay(&self) -> Duration {
        self.connection_attempt_delay
            .clamp(MIN_ATTEMPT_DELAY, MAX_ATTEMPT_DELAY)
    }

    /// The Minimum Connection Attempt Delay in force: the configured value
    /// raised to HEv3 §6's 10 ms ("MUST NOT be started within 10
    /// milliseconds") and capped by the 2 s Maximum.
    pub fn min_attempt_delay(&self) -> Duration {
        self.min_attempt_delay
            .clamp(MIN_ATTEMPT_DELAY, MAX_ATTEMPT_DELAY)
    }

    /// The delay after an attempt whose destination has `estimate`: its
    /// RTO within [`min_attempt_delay`](Self::min_attempt_delay) and the
    /// configured [`attempt_delay`](Self::attempt_delay), or the configured
    /// delay without an estimate or with
    /// [`rtt_attempt_delay`](Self::rtt_attempt_delay) off.
    ///
    /// An RTT only ever shortens the wait. HEv3 §6 allows up to the 2 s
    /// Maximum, but a long estimate is as likely to be evidence gone bad as
    /// a slow path: Linux's `tcp_metrics` keep the RTT of a handshake whose
    /// first SYN was lost (a fresh link still resolving neighbours), and a
    /// race that trusted one waited 2 s behind a blackholed address where
    /// the fixed delay would have waited 250 ms. Waiting longer than the
    /// configured delay on such evidence can cost up to the whole
    /// difference; starting the next attempt early costs one SYN.
    pub fn attempt_delay_for(&self, estimate: Option<(RttEstimate, DelaySource)>) -> AttemptDelay {
        let configured = self.attempt_delay();
        AttemptDelay::choose(
            estimate.filter(|_| self.rtt_attempt_delay),
            configured,
            self.min_attempt_delay().min(configured),
            configured,
        )
    }

    /// The Connection Attempt Delay's clamp, when it bites: the configured
    /// value and the one [`attempt_delay`](Self::attempt_delay) uses
    /// instead. `None` when the configured value is used as is. Tools warn
    /// with it rather than clamp silently, and without a copy of the
    /// bounds.
    pub fn attempt_delay_clamp(&self) -> Option<Clamp> {
        let used = self.attempt_delay();
        (used != self.connection_attempt_delay).then_some(Clamp {
            configured: self.connection_attempt_delay,
            used,
        })
    }

    /// Whether this policy sends an HTTPS query (only `hev3` uses SVCB).
    pub fn uses_svcb(&self) -> bool {
        self.policy == Policy::Hev3
    }

    fn uses_history(&self) -> bool {
        self.policy == Policy::Hev3
    }
}

/// A setting outside its bounds, and the bound used instead
/// ([`RaceConfig::attempt_delay_clamp`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Clamp {
    /// The value as configured.
    pub configured: Duration,
    /// The value in force: the nearest bound.
    pub used: Duration,
}

impl Clamp {
    /// Whether the configured value was below the minimum (else above the
    /// maximum).
    pub fn raised(&self) -> bool {
        self.used > self.configured
    }
}

/// An address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (A records).
    V4,
    /// IPv6 (AAAA records).
    V6,
}

impl Family {
    /// The family of `addr`.
    pub fn of(addr: IpAddr) -> Family {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// Names a candidate within one race.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CandidateId(pub u16);

/// What the race asks its owner to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaceAction {
    /// Start a connection attempt.
    Start {
        /// The candidate, to quote in `on_connected`/`on_failed`.
        candidate: CandidateId,
        /// Where to connect.
        remote: SocketAddr,
        /// Leave by this interface (`None`: let the system choose).
        interface: Option<u32>,
    },
    /// Abandon a running attempt (another won, or the race ended).
    Cancel {
        /// The candidate whose attempt to close.
        candidate: CandidateId,
    },
    /// The race is won by this candidate; nothing further will start.
    Won {
        /// The winner.
        candidate: CandidateId,
    },
    /// The race failed; see [`Race::failure`].
    Failed,
}

/// Why a race failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RaceFailure {
    /// Every DNS answer was negative: there is nothing to connect to.
    NoAddresses,
    /// There were addresses, but none is reachable over any allowed path.
    NoReachableAddress,
    /// Every attempt failed.
    AllAttemptsFailed,
    /// `connTimeout` expired first.
    Timeout,
}

impl core::fmt::Display for RaceFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            RaceFailure::NoAddresses => "the name resolved to no address",
            RaceFailure::NoReachableAddress => {
                "no resolved address is reachable over an allowed path"
            }
            RaceFailure::AllAttemptsFailed => "every connection attempt failed",
            RaceFailure::Timeout => "connTimeout expired before any attempt succeeded",
        })
    }
}

impl std::error::Error for RaceFailure {}

/// The answer to one address query.
#[derive(Clone, Copy, Debug)]
pub enum AddressAnswer<'a> {
    /// These addresses.
    Positive(&'a [IpAddr]),
    /// None (NODATA, NXDOMAIN, failure or timeout alike: HEv3 §4.2 counts
    /// them all as negative).
    Negative,
}

/// Which answers the race will wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    /// An A query is out.
    pub v4: bool,
    /// An AAAA query is out.
    pub v6: bool,
    /// An HTTPS query is out.
    pub svcb: bool,
}

/// The state of a candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CandidateState {
    /// Waiting its turn.
    Queued,
    /// An attempt is running.
    Running {
        /// Attempt number (1-based start order).
        attempt: u16,
        /// When it started.
        since: Instant,
    },
    /// This attempt won.
    Won {
        /// Attempt number.
        attempt: u16,
        /// Handshake time.
        rtt: Duration,
    },
    /// The attempt failed.
    Failed {
        /// Attempt number.
        attempt: u16,
        /// Why.
        reason: FailureReason,
    },
    /// The attempt was cancelled.
    Cancelled {
        /// Attempt number.
        attempt: u16,
    },
    /// No longer in the tree (a contradicted SVCB hint; its path went down).
    Dropped,
}

/// Where a candidate's address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A/AAAA answer (or literal, hosts file, cache).
    Answer,
    /// An SVCB `ipv4hint`/`ipv6hint`, standing in until answers arrive.
    Hint,
}

/// One leaf of the candidate tree.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    /// Index into the race's paths.
    pub path: u8,
    /// Index into the race's protocol options.
    pub option: u8,
    /// The destination as sorted, grouped and remembered by the history:
    /// for a NAT64 destination, the IPv4 address (HEv3 §8.2).
    pub remote: SocketAddr,
    /// HEv3 §8.3: the IPv6 address synthesized with the PREF64 that the
    /// attempt connects to instead, on a path with no IPv4 route.
    pub via: Option<Ipv6Addr>,
    /// Where the address came from.
    pub origin: Origin,
    /// Its state.
    pub state: CandidateState,
    key: SortKey,
    demoted: bool,
    /// HEv3 §6: how long the next attempt waits after this one.
    delay: AttemptDelay,
    /// When its transport came up, how long after the attempt started.
    transport_rtt: Option<Duration>,
}

impl Candidate {
    /// Where the attempt's socket connects: the synthesized address of a
    /// NAT64 destination, else `remote`.
    pub fn connect_to(&self) -> SocketAddr {
        self.via.map_or(self.remote, |v6| {
            SocketAddr::new(v6.into(), self.remote.port())
        })
    }

    /// The IPv4 address a NAT64 destination stands for.
    pub fn nat64_of(&self) -> Option<Ipv4Addr> {
        match (self.via, self.remote.ip()) {
            (Some(_), IpAddr::V4(v4)) => Some(v4),
            _ => None,
        }
    }
}

/// One protocol option: the endpoint's own port and ALPN, or one SVCB service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ProtocolOption {
    /// Smaller ranks are tried first.
    rank: u32,
    port: u16,
    /// Index of the HTTPS record it came from.
    record: Option<u8>,
    /// Takes the owner name's A/AAAA answers (TargetName "." or the
    /// unassociated group).
    owner_addresses: bool,
    /// Takes the A/AAAA answers of this SVCB target (index into `targets`).
    target: Option<u8>,
}

/// The resolution of one SVCB TargetName.
#[derive(Clone, Debug)]
struct Target {
    name: crate::endpoint::HostName,
    v4: AnswerState,
    v6: AnswerState,
    v4_addrs: SmallVec<[IpAddr; 4]>,
    v6_addrs: SmallVec<[IpAddr; 4]>,
    requested: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AnswerState {
    NotExpected,
    Pending,
    Positive,
    Negative,
}

impl AnswerState {
    fn settled(self) -> bool {
        self != AnswerState::Pending
    }
}

#[derive(Clone, Debug)]
struct Lane {
    path: u8,
    family: Option<Family>,
    mode: RacingMode,
    /// Activated this long after `after`'s activation (None: only once every
    /// earlier lane is exhausted).
    after: Option<(u8, Option<Duration>)>,
    activated_at: Option<Instant>,
    last_start: Option<Instant>,
    /// An attempt in this lane failed: start the next without waiting.
    hurry: bool,
    /// HEv3 §6.1: an attempt's TCP is up and its TLS still running, so the
    /// next attempt waits at least until then.
    extend_until: Option<Instant>,
    /// The delay its last started attempt set for the next (HEv3 §6: "the
    /// delay value can be different for each connection attempt"); `None`:
    /// the lane's mode's.
    next_delay: Option<Duration>,
    dead: bool,
    order: SmallVec<[u16; 16]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Resolving,
    Racing,
    Won(CandidateId),
    Failed(RaceFailure),
}

/// What the race needs to know about the world when it sorts.
#[derive(Clone, Copy, Debug)]
pub struct RaceEnv<'a> {
    /// The interfaces, as the adapter last reported them.
    pub interfaces: &'a [Interface],
    /// The machine's connection history.
    pub history: &'a History,
}

/// The racing state of one connection.
#[derive(Debug)]
pub struct Race {
    config: RaceConfig,
    port: u16,
    started: Instant,
    deadline: Option<Instant>,
    phase: Phase,
    paths: SmallVec<[PathBranch; 2]>,
    lanes: SmallVec<[Lane; 2]>,
    options: SmallVec<[ProtocolOption; 2]>,
    candidates: SmallVec<[Candidate; 8]>,
    v4: AnswerState,
    v6: AnswerState,
    svcb: AnswerState,
    v4_addrs: SmallVec<[IpAddr; 4]>,
    v6_addrs: SmallVec<[IpAddr; 4]>,
    https: Vec<HttpsRecord>,
    targets: SmallVec<[Target; 2]>,
    resolution_deadline: Option<Instant>,
    attempts_started: u16,
    dropped_candidates: u32,
    rng: Rng,
    actions: SmallVec<[RaceAction; 4]>,
    /// Set by a DNS change, with its time: the start rule and the lanes
    /// are decided when the actions are next drained (or a timer runs),
    /// so answers known at one instant are sorted together (see
    /// [`Race::poll_action`]).
    decision_due: Option<Instant>,
    /// HEv3 §8: the PREF64 this race synthesizes with, if any.
    nat64: RaceNat64,
    /// The record of every transition.
    pub trace: Trace,
}

impl Race {
    /// A race that starts at `now` towards `port` over `paths`, waiting for
    /// the answers `expected` describes. `conn_timeout` bounds the whole
    /// establishment; `seed` drives tie shuffles.
    pub fn new(
        now: Instant,
        config: RaceConfig,
        port: u16,
        paths: &[PathBranch],
        expected: Expected,
        conn_timeout: Option<Duration>,
        seed: u64,
    ) -> Race {
        let state = |on: bool| {
            if on {
                AnswerState::Pending
            } else {
                AnswerState::NotExpected
            }
        };
        let mut race = Race {
            config,
            port,
            started: now,
            deadline: conn_timeout.map(|t| now + t),
            phase: Phase::Resolving,
            paths: paths.iter().copied().collect(),
            lanes: SmallVec::new(),
            options: SmallVec::new(),
            candidates: SmallVec::new(),
            v4: state(expected.v4),
            v6: state(expected.v6),
            svcb: state(expected.svcb && config.uses_svcb()),
            v4_addrs: SmallVec::new(),
            v6_addrs: SmallVec::new(),
            https: Vec::new(),
            targets: SmallVec::new(),
            resolution_deadline: None,
            attempts_started: 0,
            dropped_candidates: 0,
            rng: Rng::new(seed),
            actions: SmallVec::new(),
            decision_due: None,
            nat64: RaceNat64::default(),
            trace: Trace::new(now),
        };
        race.options.push(ProtocolOption {
            rank: 0,
            port,
            record: None,
            owner_addresses: true,
            target: None,
        });
        race.build_lanes();
        race
    }

    fn build_lanes(&mut self) {
        let delay = self.config.attempt_delay();
        let path_after = |prev_first_lane: Option<u8>| {
            prev_first_lane.map(|l| {
                let d = match self.config.path_mode {
                    RacingMode::Simultaneous => Some(Duration::ZERO),
                    RacingMode::Staggered(d) => Some(d),
                    RacingMode::Failover => None,
                };
                (l, d)
            })
        };
        let mut prev_first: Option<u8> = None;
        for p in 0..self.paths.len() as u8 {
            let first = self.lanes.len() as u8;
            let after = path_after(prev_first);
            let lane = |family, mode, after| Lane {
                path: p,
                family,
                mode,
                after,
                activated_at: None,
                last_start: None,
                hurry: false,
                extend_until: None,
                next_delay: None,
                dead: false,
                order: SmallVec::new(),
            };
            match self.config.policy {
                Policy::Hev3 => self
                    .lanes
                    .push(lane(None, RacingMode::Staggered(delay), after)),
                Policy::Sequential => self.lanes.push(lane(None, RacingMode::Failover, after)),
                Policy::Rfc6555 => {
                    // Families are assigned when racing starts and the
                    // preferred family is known (see `assign_rfc6555_families`).
                    self.lanes
                        .push(lane(Some(Family::V6), RacingMode::Failover, after));
                    self.lanes.push(lane(
                        Some(Family::V4),
                        RacingMode::Failover,
                        Some((first, Some(self.config.fallback_delay))),
                    ));
                }
            }
            prev_first = Some(first);
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &RaceConfig {
        &self.config
    }

    /// When the race began.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Every candidate known so far, in insertion order.
    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    /// The candidate `id`.
    pub fn candidate(&self, id: CandidateId) -> Option<&Candidate> {
        self.candidates.get(usize::from(id.0))
    }

    /// The interface index of path `path`.
    pub fn path_interface(&self, path: u8) -> Option<u32> {
        self.paths.get(usize::from(path)).and_then(|p| p.interface)
    }

    /// The HTTPS record a candidate's protocol option came from, for its
    /// ALPN list.
    pub fn service_record(&self, id: CandidateId) -> Option<&HttpsRecord> {
        let c = self.candidate(id)?;
        let record = self.options.get(usize::from(c.option))?.record?;
        self.https.get(usize::from(record))
    }

    /// The winner, once there is one.
    pub fn winner(&self) -> Option<CandidateId> {
        match self.phase {
            Phase::Won(c) => Some(c),
            _ => None,
        }
    }

    /// Why the race failed, once it has.
    pub fn failure(&self) -> Option<RaceFailure> {
        match self.phase {
            Phase::Failed(f) => Some(f),
            _ => None,
        }
    }

    /// Whether the race is over (won or failed).
    pub fn is_settled(&self) -> bool {
        matches!(self.phase, Phase::Won(_) | Phase::Failed(_))
    }

    /// Candidates that were not used because a bound was reached.
    pub fn dropped_candidates(&self) -> u32 {
        self.dropped_candidates
    }

    /// The next action, if any. Drain after every input.
    ///
    /// DNS answers only record what they say; whether to start, and in
    /// which order, is decided here, when the caller drains. So answers
    /// that arrive together (the hosts file, the cache, several datagrams
    /// handled before one drain) are sorted together by RFC 6724 §6 before
    /// the first attempt, instead of the first one handled starting the
    /// race alone. An answer that arrives earlier is drained earlier and
    /// starts the race at once, as HEv3 §4 wants.
    pub fn poll_action(&mut self) -> Option<RaceAction> {
        self.decide();
        if self.actions.is_empty() {
            None
        } else {
            Some(self.actions.remove(0))
        }
    }

    /// HEv3 §8: the machine's NAT64 knowledge changed: `prefixes` is the
    /// PREF64 to use (`None`: none), and `pending` says a discovery is still
    /// out, which the race waits for before it counts its DNS as complete
    /// (an A-only name on an IPv6-only path has nothing to try until then).
    /// Returns whether anything changed.
    pub(crate) fn set_nat64(
        &mut self,
        now: Instant,
        env: RaceEnv<'_>,
        prefixes: Option<&Pref64Set>,
        pending: bool,
    ) -> bool {
        let nat64 = RaceNat64 {
            prefixes: prefixes.cloned(),
            pending,
        };
        if self.is_settled() || self.nat64 == nat64 {
            return false;
        }
        self.nat64 = nat64;
        self.refresh(now, env);
        true
    }

    /// Whether the race waits for NAT64 discovery.
    pub(crate) fn nat64_pending(&self) -> bool {
        self.nat64.pending && !self.is_settled()
    }

    /// The answer to the A or AAAA query arrived.
    pub fn on_addresses(
        &mut self,
        now: Instant,
        env: RaceEnv<'_>,
        family: Family,
        answer: AddressAnswer<'_>,
    ) {
        if self.is_settled() {
            return;
        }
        let (state, addrs) = match family {
            Family::V4 => (&mut self.v4, &mut self.v4_addrs),
            Family::V6 => (&mut self.v6, &mut self.v6_addrs),
        };
        match answer {
            AddressAnswer::Positive(list) => {
                addrs.clear();
                addrs.extend(list.iter().copied().filter(|a| Family::of(*a) == family));
                *state = if addrs.is_empty() {
                    AnswerState::Negative
                } else {
                    AnswerState::Positive
                };
            }
            AddressAnswer::Negative => {
                if *state == AnswerState::Pending || *state == AnswerState::NotExpected {
                    *state = AnswerState::Negative;
                }
            }
        }
        self.refresh(now, env);
    }

    /// The HTTPS query settled: `Some(records)` (ServiceMode records only;
    /// AliasMode is the resolver's business) or `None` for a negative answer.
    pub fn on_service_info(
        &mut self,
        now: Instant,
        env: RaceEnv<'_>,
        records: Option<&[HttpsRecord]>,
    ) {
        if self.is_settled() {
            return;
        }
        self.svcb = AnswerState::Negative;
        if let Some(records) = records {
            self.https.clear();
            self.https.extend(
                records
                    .iter()
                    .filter(|r| r.priority > 0 && tcp_capable(r))
                    .cloned(),
            );
            if !self.https.is_empty() {
                self.svcb = AnswerState::Positive;
                self.rebuild_options();
            }
        }
        self.refresh(now, env);
    }

    /// HEv3 §5.1/§5.2: one option per usable service, by SvcPriority with
    /// seeded shuffling of ties; addresses without a service last.
    fn rebuild_options(&mut self) {
        // Keep options that running or finished candidates refer to; the
        // default option stays at index 0.
        let mut ranked: SmallVec<[(u16, u32, u8); 4]> = SmallVec::new();
        for (i, r) in self.https.iter().enumerate() {
            ranked.push((r.priority, self.rng.next_u64() as u32, i as u8));
        }
        ranked.sort_unstable();
        let has_owner_service = self.https.iter().any(|r| r.target.is_none());
        // The default option becomes the unassociated group: last, and only
        // when no ServiceMode record covers the owner name.
        self.options[0].rank = u32::MAX;
        self.options[0].owner_addresses = !has_owner_service;
        self.options.truncate(1);
        for (rank, (_, _, record)) in ranked.into_iter().enumerate() {
            let r = &self.https[usize::from(record)];
            let target = r.target.as_ref().and_then(|name| {
                if let Some(i) = self.targets.iter().position(|t| t.name == *name) {
                    return Some(i as u8);
                }
                (self.targets.len() < MAX_SVCB_TARGETS).then(|| {
                    let state = |expected: AnswerState| {
                        if expected == AnswerState::NotExpected {
                            AnswerState::NotExpected
                        } else {
                            AnswerState::Pending
                        }
                    };
                    self.targets.push(Target {
                        name: name.clone(),
                        v4: state(self.v4),
                        v6: state(self.v6),
                        v4_addrs: SmallVec::new(),
                        v6_addrs: SmallVec::new(),
                        requested: false,
                    });
                    (self.targets.len() - 1) as u8
                })
            });
            self.options.push(ProtocolOption {
                rank: rank as u32,
                port: r.port.unwrap_or(self.port),
                record: Some(record),
                owner_addresses: r.target.is_none(),
                target,
            });
        }
    }

    fn expected_all_settled(&self) -> bool {
        !self.nat64.pending
            && self.v4.settled()
            && self.v6.settled()
            && self.svcb.settled()
            && self
                .targets
                .iter()
                .all(|t| t.v4.settled() && t.v6.settled())
    }

    /// SVCB targets whose A/AAAA queries the owner has not yet sent:
    /// (target index, name). Each is handed out once.
    pub fn take_target_requests(&mut self) -> SmallVec<[(u8, crate::endpoint::HostName); 2]> {
        let mut out = SmallVec::new();
        for (i, t) in self.targets.iter_mut().enumerate() {
            if !t.requested {
                t.requested = true;
                out.push((i as u8, t.name.clone()));
            }
        }
        out
    }

    /// Whether target `index` waits for this family.
    pub fn target_expects(&self, index: u8, family: Family) -> bool {
        self.targets
            .get(usize::from(index))
            .is_some_and(|t| match family {
                Family::V4 => t.v4 != AnswerState::NotExpected,
                Family::V6 => t.v6 != AnswerState::NotExpected,
            })
    }

    /// The A or AAAA answer for SVCB target `index` arrived: its addresses
    /// replace the record's hints (HEv3 §4.2.1).
    pub fn on_target_addresses(
        &mut self,
        now: Instant,
        env: RaceEnv<'_>,
        index: u8,
        family: Family,
        answer: AddressAnswer<'_>,
    ) {
        if self.is_settled() {
            return;
        }
        let Some(t) = self.targets.get_mut(usize::from(index)) else {
            return;
        };
        let (state, addrs) = match family {
            Family::V4 => (&mut t.v4, &mut t.v4_addrs),
            Family::V6 => (&mut t.v6, &mut t.v6_addrs),
        };
        addrs.clear();
        if let AddressAnswer::Positive(list) = answer {
            addrs.extend(list.iter().copied().filter(|a| Family::of(*a) == family));
        }
        *state = if addrs.is_empty() {
            AnswerState::Negative
        } else {
            AnswerState::Positive
        };
        self.refresh(now, env);
    }

    fn hints(&self, family: Family) -> impl Iterator<Item = (u8, IpAddr)> + '_ {
        self.options.iter().enumerate().flat_map(move |(i, o)| {
            let record = o.record.and_then(|r| self.https.get(usize::from(r)));
            let v4 = record
                .into_iter()
                .flat_map(|r| r.ipv4hint.iter().map(|a| IpAddr::V4(*a)))
                .filter(move |_| family == Family::V4);
            let v6 = record
                .into_iter()
                .flat_map(|r| r.ipv6hint.iter().map(|a| IpAddr::V6(*a)))
                .filter(move |_| family == Family::V6);
            v4.chain(v6).map(move |a| (i as u8, a))
        })
    }

    fn has_positive(&self) -> bool {
        !self.v4_addrs.is_empty()
            || !self.v6_addrs.is_empty()
            || self
                .targets
                .iter()
                .any(|t| !t.v4_addrs.is_empty() || !t.v6_addrs.is_empty())
            || self.hints(Family::V4).next().is_some()
            || self.hints(Family::V6).next().is_some()
    }

    /// Re-derives the candidate set after any DNS change; the start rule
    /// and the lane orders wait for [`Race::decide`].
    fn refresh(&mut self, now: Instant, env: RaceEnv<'_>) {
        self.rebuild_candidates(now, env);
        self.decision_due = Some(now);
    }

    /// Applies the start rule and starts what is due, once for every DNS
    /// change since the last decision, at the time of the latest.
    fn decide(&mut self) {
        let Some(now) = self.decision_due.take() else {
            return;
        };
        if self.is_settled() {
            return;
        }
        if self.phase == Phase::Resolving {
            self.check_start_rule(now);
        }
        if self.phase == Phase::Racing {
            self.sort_lanes();
            self.advance(now);
        }
    }

    fn check_start_rule(&mut self, now: Instant) {
        let positive = self.has_positive();
        let start = match self.config.policy {
            Policy::Hev3 => {
                let preferred = if self.v6 != AnswerState::NotExpected {
                    self.v6
                } else {
                    self.v4
                };
                // History extension: when every candidate so far is one that
                // failed or hung last time, wait (up to the Resolution Delay)
                // for the other family rather than start with a known loser.
                let promising = self
                    .candidates
                    .iter()
                    .any(|c| c.state == CandidateState::Queued && !c.demoted)
                    || (self.v4.settled() && self.v6.settled());
                positive && promising && preferred.settled() && self.svcb.settled()
            }
            Policy::Rfc6555 | Policy::Sequential => {
                positive && self.v4.settled() && self.v6.settled()
            }
        };
        if start || (positive && self.resolution_deadline.is_some_and(|d| now >= d)) {
            self.start_racing(now);
        } else if positive
            && self.resolution_deadline.is_none()
            && self.config.policy == Policy::Hev3
        {
            self.resolution_deadline = Some(now + self.config.resolution_delay);
            self.trace.record(now, TraceKind::ResolutionDelayStarted);
        } else if !positive && self.expected_all_settled() {
            self.fail(now, RaceFailure::NoAddresses);
        }
    }

    fn start_racing(&mut self, now: Instant) {
        self.phase = Phase::Racing;
        self.resolution_deadline = None;
        if self.config.policy == Policy::Rfc6555 {
            self.assign_rfc6555_families();
        }
        self.sort_lanes();
        let known = self
            .candidates
            .iter()
            .filter(|c| c.state == CandidateState::Queued)
            .count();
        self.trace.record(
            now,
            TraceKind::RacingStarted {
                candidates: known as u16,
            },
        );
        self.activate_due_lanes(now);
    }

    /// The `rfc6555` preset's first lane per path takes the family that RFC
    /// 6724 ranks first, as Go's dialer splits "primaries" and "fallbacks".
    fn assign_rfc6555_families(&mut self) {
        let best_is_v6 = self
            .candidates
            .iter()
            .filter(|c| c.state == CandidateState::Queued)
            .min_by_key(|c| (c.demoted, self.options[usize::from(c.option)].rank, c.key))
            .is_none_or(|c| c.remote.is_ipv6());
        let (first, second) = if best_is_v6 {
            (Family::V6, Family::V4)
        } else {
            (Family::V4, Family::V6)
        };
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            lane.family = Some(if i % 2 == 0 { first } else { second });
        }
    }

    fn rebuild_candidates(&mut self, now: Instant, env: RaceEnv<'_>) {
        // Desired leaves: (path, option, address, origin).
        let mut desired: SmallVec<[(u8, u8, IpAddr, Origin); 16]> = SmallVec::new();
        for (pi, path) in self.paths.iter().enumerate() {
            let iface = path
                .interface
                .and_then(|i| env.interfaces.iter().find(|x| x.index == i));
            if path.interface.is_some() && iface.is_none_or(|i| !i.up) {
                continue;
            }
            for (oi, option) in self.options.iter().enumerate() {
                for family in [Family::V6, Family::V4] {
                    let (state, answers) = match family {
                        Family::V4 => (self.v4, &self.v4_addrs),
                        Family::V6 => (self.v6, &self.v6_addrs),
                    };
                    let answered = state == AnswerState::Positive || state == AnswerState::Negative;
                    if option.owner_addresses {
                        for a in answers {
                            desired.push((pi as u8, oi as u8, *a, Origin::Answer));
                        }
                    }
                    let target = option.target.and_then(|t| self.targets.get(usize::from(t)));
                    let target_answered = target.is_some_and(|t| {
                        let st = if family == Family::V4 { t.v4 } else { t.v6 };
                        st == AnswerState::Positive || st == AnswerState::Negative
                    });
                    if let Some(t) = target {
                        let list = if family == Family::V4 {
                            &t.v4_addrs
                        } else {
                            &t.v6_addrs
                        };
                        for a in list {
                            desired.push((pi as u8, oi as u8, *a, Origin::Answer));
                        }
                    }
                    // HEv3 §4.2.1 / §7: hints stand in until the answers for
                    // the target arrive, then only those the answers confirm
                    // remain.
                    let confirm = (option.owner_addresses && answered) || target_answered;
                    for (hint_option, a) in self.hints(family) {
                        if hint_option as usize == oi && !confirm {
                            desired.push((pi as u8, oi as u8, a, Origin::Hint));
                        }
                    }
                }
            }
            // HEv3 §8.2: DNS64 answers are sorted as the IPv4 they stand for.
            for d in desired.iter_mut().filter(|d| d.0 == pi as u8) {
                d.2 = self.nat64.logical(d.2);
            }
            if let Some(iface) = iface {
                desired.retain(|(p, _, a, _)| {
                    *p != pi as u8
                        || order::reachable(*a, Some(iface))
                        || self.nat64.via(*a, Some(iface)).is_some()
                });
            }
        }
        // Queued candidates no longer desired drop out; started ones stay
        // (HEv3 §7: "SHOULD NOT be canceled").
        for c in self.candidates.iter_mut() {
            if c.state == CandidateState::Queued
                && !desired
                    .iter()
                    .any(|(p, o, a, _)| c.path == *p && c.option == *o && c.remote.ip() == *a)
            {
                c.state = CandidateState::Dropped;
            }
        }
        for (p, o, addr, origin) in desired {
            let port = self.options[usize::from(o)].port;
            let remote = SocketAddr::new(addr, port);
            // One attempt per (path, stack, address). Every attempt of a
            // connection runs the same stack (TCP, then the preconnection's
            // TLS and framer: SVCB options differ in port, which is part of
            // the address, not in the stack), so a service that names an
            // address another service already tried does not try it again.
            // A dropped leaf comes back under the option that wants it now.
            let if_index = self.paths[usize::from(p)].interface;
            let iface = if_index.and_then(|i| env.interfaces.iter().find(|x| x.index == i));
            let via = self.nat64.via(addr, iface);
            let existing = self
                .candidates
                .iter_mut()
                .find(|c| c.path == p && c.remote == remote);
            if let Some(c) = existing {
                if c.state == CandidateState::Dropped {
                    c.state = CandidateState::Queued;
                    c.option = o;
                    c.origin = origin;
                }
                if c.state == CandidateState::Queued {
                    c.via = via;
                }
                continue;
            }
            if self.candidates.len() >= usize::from(self.config.max_candidates) {
                self.dropped_candidates += 1;
                continue;
            }
            let hint = if self.config.uses_history() {
                env.history.hint(now, if_index, addr)
            } else {
                HistoryHint::default()
            };
            let delay = self.config.attempt_delay_for(
                self.config
                    .rtt_attempt_delay
                    .then(|| env.history.attempt_rtt(now, if_index, iface, addr))
                    .flatten(),
            );
            self.candidates.push(Candidate {
                path: p,
                option: o,
                remote,
                via,
                origin,
                state: CandidateState::Queued,
                // The IPv4 source rules do not apply to a synthesized
                // destination: the NAT64 is its IPv4 source.
                key: order::sort_key(addr, if via.is_some() { None } else { iface }, hint),
                demoted: hint.demoted,
                delay,
                transport_rtt: None,
            });
        }
    }

    /// Orders each lane: protocol option rank, then RFC 6724 + history keys,
    /// then family interleaving, then history demotion (HEv3 §5).
    fn sort_lanes(&mut self) {
        let interleave = self.config.policy == Policy::Hev3;
        let demote = self.config.uses_history();
        let fafc = usize::from(self.config.first_address_family_count.max(1));
        for lane in self.lanes.iter_mut() {
            lane.order.clear();
            for (i, c) in self.candidates.iter().enumerate() {
                if c.path == lane.path
                    && c.state != CandidateState::Dropped
                    && lane.family.is_none_or(|f| f == Family::of(c.remote.ip()))
                {
                    lane.order.push(i as u16);
                }
            }
            let cands = &self.candidates;
            let options = &self.options;
            let rank = |i: &u16| {
                let c = &cands[usize::from(*i)];
                (options[usize::from(c.option)].rank, c.key)
            };
            lane.order.sort_by_key(rank);
            // Interleave and demote within each protocol option group.
            let mut start = 0;
            while start < lane.order.len() {
                let group = options[usize::from(cands[usize::from(lane.order[start])].option)].rank;
                let end = lane.order[start..]
                    .iter()
                    .position(|i| options[usize::from(cands[usize::from(*i)].option)].rank != group)
                    .map_or(lane.order.len(), |n| start + n);
                let slice = &mut lane.order[start..end];
                if interleave {
                    order::interleave(slice, fafc, |i| cands[usize::from(*i)].remote.is_ipv6());
                }
                if demote {
                    slice.sort_by_key(|i| cands[usize::from(*i)].demoted);
                }
                start = end;
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.candidates
            .iter()
            .filter(|c| matches!(c.state, CandidateState::Running { .. }))
            .count()
    }

    fn dns_complete(&self) -> bool {
        self.expected_all_settled()
    }

    fn lane_exhausted(&self, lane: &Lane) -> bool {
        if lane.dead {
            return true;
        }
        if lane.activated_at.is_none() {
            return false;
        }
        let busy = lane.order.iter().any(|i| {
            matches!(
                self.candidates[usize::from(*i)].state,
                CandidateState::Queued | CandidateState::Running { .. }
            )
        });
        !busy && self.dns_complete()
    }

    /// Activates every lane whose time has come: the first lanes at once,
    /// later ones after their delay, or when all lanes before them are
    /// exhausted.
    fn activate_due_lanes(&mut self, now: Instant) {
        loop {
            let mut changed = false;
            for li in 0..self.lanes.len() {
                if self.lanes[li].activated_at.is_some() || self.lanes[li].dead {
                    continue;
                }
                let due = match self.lanes[li].after {
                    None => true,
                    Some((prev, delay)) => {
                        let prev_at = self.lanes[usize::from(prev)].activated_at;
                        let timed =
                            matches!((prev_at, delay), (Some(at), Some(d)) if now >= at + d);
                        let earlier_exhausted =
                            (0..li).all(|j| self.lane_exhausted(&self.lanes[j]));
                        timed || earlier_exhausted
                    }
                };
                if due {
                    let first_of_path = (0..li).all(|j| self.lanes[j].path != self.lanes[li].path);
                    self.lanes[li].activated_at = Some(now);
                    if first_of_path {
                        let interface = self.paths[usize::from(self.lanes[li].path)].interface;
                        self.trace.record(now, TraceKind::PathStarted { interface });
                    }
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// Starts every attempt that is due, then checks whether the race is lost.
    fn advance(&mut self, now: Instant) {
        if self.phase != Phase::Racing {
            return;
        }
        self.activate_due_lanes(now);
        for li in 0..self.lanes.len() {
            while self.lane_may_start(li, now) {
                let Some(next) = self.next_queued(li) else {
                    break;
                };
                self.start_attempt(li, next, now);
                if matches!(
                    self.lanes[li].mode,
                    RacingMode::Failover | RacingMode::Staggered(_)
                ) {
                    break;
                }
            }
        }
        self.activate_due_lanes(now);
        if self.dns_complete()
            && !self.candidates.iter().any(|c| {
                matches!(
                    c.state,
                    CandidateState::Queued | CandidateState::Running { .. }
                )
            })
        {
            let ever_started = self.attempts_started > 0;
            self.fail(
                now,
                if ever_started {
                    RaceFailure::AllAttemptsFailed
                } else {
                    RaceFailure::NoReachableAddress
                },
            );
        }
    }

    fn next_queued(&self, li: usize) -> Option<u16> {
        self.lanes[li]
            .order
            .iter()
            .copied()
            .find(|i| self.candidates[usize::from(*i)].state == CandidateState::Queued)
    }

    fn lane_running(&self, li: usize) -> bool {
        self.lanes[li].order.iter().any(|i| {
            matches!(
                self.candidates[usize::from(*i)].state,
                CandidateState::Running { .. }
            )
        })
    }

    /// When lane `li` may next start an attempt, or `None` if it must wait
    /// for an event rather than a time.
    fn lane_next_start(&self, li: usize) -> Option<Instant> {
        let lane = &self.lanes[li];
        lane.activated_at?;
        if lane.dead {
            return None;
        }
        let floor = lane
            .last_start
            .map_or(Instant::ZERO, |t| t + MIN_ATTEMPT_DELAY);
        match lane.mode {
            RacingMode::Simultaneous => Some(Instant::ZERO),
            RacingMode::Failover => (!self.lane_running(li)).then_some(Instant::ZERO),
            RacingMode::Staggered(d) => match lane.last_start {
                None => Some(Instant::ZERO),
                Some(last) if lane.hurry || !self.lane_running(li) => Some(floor.max(last)),
                Some(last) => Some(
                    (last + lane.next_delay.unwrap_or(d))
                        .max(lane.extend_until.unwrap_or(Instant::ZERO)),
                ),
            },
        }
    }

    fn lane_may_start(&self, li: usize, now: Instant) -> bool {
        self.in_flight() < usize::from(self.config.max_concurrent_attempts)
            && self.next_queued(li).is_some()
            && self.lane_next_start(li).is_some_and(|t| t <= now)
    }

    fn start_attempt(&mut self, li: usize, idx: u16, now: Instant) {
        self.attempts_started += 1;
        let attempt = self.attempts_started;
        let lane = &mut self.lanes[li];
        lane.last_start = Some(now);
        lane.hurry = false;
        lane.extend_until = None;
        let staggered = matches!(lane.mode, RacingMode::Staggered(_));
        let c = &mut self.candidates[usize::from(idx)];
        c.state = CandidateState::Running {
            attempt,
            since: now,
        };
        let delay = c.delay;
        let rtt_delay = staggered && delay.source != DelaySource::Configured;
        lane.next_delay = rtt_delay.then(|| delay.delay());
        let interface = self.paths[usize::from(c.path)].interface;
        let (remote, nat64) = (c.connect_to(), c.nat64_of());
        self.trace.record(
            now,
            TraceKind::AttemptStarted {
                attempt,
                remote,
                interface,
                nat64,
            },
        );
        // Only a delay RTT data chose is recorded: without one the lane
        // waits the configured delay, as the trace's reader expects.
        if rtt_delay {
            self.trace
                .record(now, TraceKind::AttemptDelay { attempt, delay });
        }
        self.actions.push(RaceAction::Start {
            candidate: CandidateId(idx),
            remote,
            interface,
        });
    }

    /// The attempt of `id` has its whole stack up: it wins unless the race is
    /// already settled (then it is cancelled).
    pub fn on_connected(&mut self, now: Instant, id: CandidateId) {
        // Answers of this instant first: what happens next builds on them.
        self.decide();
        let Some(c) = self.candidates.get_mut(usize::from(id.0)) else {
            return;
        };
        let CandidateState::Running { attempt, since } = c.state else {
            return;
        };
        if self.phase != Phase::Racing {
            c.state = CandidateState::Cancelled { attempt };
            self.trace
                .record(now, TraceKind::AttemptCancelled { attempt });
            self.actions.push(RaceAction::Cancel { candidate: id });
            return;
        }
        c.state = CandidateState::Won {
            attempt,
            rtt: now.saturating_duration_since(since),
        };
        self.trace
            .record(now, TraceKind::AttemptConnected { attempt });
        self.phase = Phase::Won(id);
        self.cancel_running(now);
        self.trace.record(now, TraceKind::Winner { attempt });
        self.actions.push(RaceAction::Won { candidate: id });
    }

    /// The attempt of `id` finished its TLS handshake with `details`:
    /// recorded in the trace (call before [`Race::on_connected`]). Ignored
    /// for an attempt that is not running.
    pub fn on_tls_established(&mut self, now: Instant, id: CandidateId, details: TlsDetails) {
        let Some(c) = self.candidates.get(usize::from(id.0)) else {
            return;
        };
        let CandidateState::Running { attempt, .. } = c.state else {
            return;
        };
        self.trace.record_tls(now, attempt, details);
    }

    /// The attempt of `id` has its transport (TCP) up but its upper layers
    /// are still handshaking. HEv3 §6.1: the Next Connection Attempt Timer is
    /// extended to cover the rest of the establishment, estimated as one
    /// more round trip of the TCP handshake's length.
    pub fn on_transport_up(&mut self, now: Instant, id: CandidateId) {
        // Answers of this instant first: what happens next builds on them.
        self.decide();
        let Some(c) = self.candidates.get(usize::from(id.0)) else {
            return;
        };
        let CandidateState::Running { attempt, since } = c.state else {
            return;
        };
        if self.phase != Phase::Racing {
            return;
        }
        let measured = now.saturating_duration_since(since);
        let rtt = measured.max(MIN_ATTEMPT_DELAY);
        let path = c.path;
        if let Some(c) = self.candidates.get_mut(usize::from(id.0)) {
            c.transport_rtt = Some(measured);
        }
        self.trace
            .record(now, TraceKind::AttemptTransportUp { attempt });
        let last = self
            .lanes
            .iter()
            .filter(|l| l.path == path && l.order.contains(&id.0))
            .filter_map(|l| l.last_start)
            .max();
        for lane in self
            .lanes
            .iter_mut()
            .filter(|l| l.path == path && l.order.contains(&id.0))
        {
            // Only the lane's most recent attempt holds back the next one.
            if lane.last_start == last && last == Some(since) {
                let until = now + rtt;
                lane.extend_until = Some(lane.extend_until.map_or(until, |u| u.max(until)));
            }
        }
    }

    /// The attempt of `id` failed.
    pub fn on_failed(&mut self, now: Instant, id: CandidateId, reason: FailureReason) {
        // Answers of this instant first: what happens next builds on them.
        self.decide();
        let Some(c) = self.candidates.get_mut(usize::from(id.0)) else {
            return;
        };
        let CandidateState::Running { attempt, .. } = c.state else {
            return;
        };
        c.state = CandidateState::Failed { attempt, reason };
        let path = c.path;
        self.trace
            .record(now, TraceKind::AttemptFailed { attempt, reason });
        for lane in self
            .lanes
            .iter_mut()
            .filter(|l| l.path == path && l.order.contains(&id.0))
        {
            lane.hurry = true;
        }
        self.advance(now);
    }

    /// The interface `index` went down or vanished: its attempts fail, its
    /// queued candidates drop out, and later paths may start at once.
    pub fn on_interface_down(&mut self, now: Instant, index: u32) {
        // Answers of this instant first: what happens next builds on them.
        self.decide();
        if self.is_settled() {
            return;
        }
        let dead: SmallVec<[u8; 2]> = (0..self.paths.len() as u8)
            .filter(|p| self.paths[usize::from(*p)].interface == Some(index))
            .collect();
        if dead.is_empty() {
            return;
        }
        for i in 0..self.candidates.len() {
            let c = &mut self.candidates[i];
            if !dead.contains(&c.path) {
                continue;
            }
            match c.state {
                CandidateState::Running { attempt, .. } => {
                    c.state = CandidateState::Failed {
                        attempt,
                        reason: FailureReason::InterfaceDown,
                    };
                    self.trace.record(
                        now,
                        TraceKind::AttemptFailed {
                            attempt,
                            reason: FailureReason::InterfaceDown,
                        },
                    );
                    self.actions.push(RaceAction::Cancel {
                        candidate: CandidateId(i as u16),
                    });
                }
                CandidateState::Queued => c.state = CandidateState::Dropped,
                _ => {}
            }
        }
        for lane in self.lanes.iter_mut().filter(|l| dead.contains(&l.path)) {
            lane.dead = true;
        }
        if self.phase == Phase::Racing {
            self.advance(now);
        } else if self.phase == Phase::Resolving && self.lanes.iter().all(|l| l.dead) {
            self.fail(now, RaceFailure::NoReachableAddress);
        }
    }

    fn cancel_running(&mut self, now: Instant) {
        for i in 0..self.candidates.len() {
            if let CandidateState::Running { attempt, .. } = self.candidates[i].state {
                self.candidates[i].state = CandidateState::Cancelled { attempt };
                self.trace
                    .record(now, TraceKind::AttemptCancelled { attempt });
                self.actions.push(RaceAction::Cancel {
                    candidate: CandidateId(i as u16),
                });
            }
        }
    }

    fn fail(&mut self, now: Instant, why: RaceFailure) {
        if self.is_settled() {
            return;
        }
        if why == RaceFailure::Timeout {
            for i in 0..self.candidates.len() {
                if let CandidateState::Running { attempt, .. } = self.candidates[i].state {
                    let reason = FailureReason::ConnTimeout;
                    self.candidates[i].state = CandidateState::Failed { attempt, reason };
                    self.trace
                        .record(now, TraceKind::AttemptFailed { attempt, reason });
                    self.actions.push(RaceAction::Cancel {
                        candidate: CandidateId(i as u16),
                    });
                }
            }
        } else {
            self.cancel_running(now);
        }
        self.phase = Phase::Failed(why);
        self.trace.record(now, TraceKind::EstablishmentFailed);
        self.actions.push(RaceAction::Failed);
    }

    /// The earliest instant at which [`Race::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_settled() {
            return None;
        }
        let mut next = self.deadline;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.decision_due);
        match self.phase {
            Phase::Resolving => consider(self.resolution_deadline),
            Phase::Racing => {
                for li in 0..self.lanes.len() {
                    let lane = &self.lanes[li];
                    // A dead lane never activates: its due time is no deadline.
                    if lane.dead {
                        continue;
                    }
                    if lane.activated_at.is_none() {
                        if let Some((prev, Some(d))) = lane.after {
                            consider(self.lanes[usize::from(prev)].activated_at.map(|t| t + d));
                        }
                    } else if self.next_queued(li).is_some()
                        && self.in_flight() < usize::from(self.config.max_concurrent_attempts)
                    {
                        consider(self.lane_next_start(li));
                    }
                }
            }
            Phase::Won(_) | Phase::Failed(_) => {}
        }
        next
    }

    /// Runs the timers that are due at `now`. Calling it early or twice is
    /// harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.decide();
        if self.is_settled() {
            return;
        }
        if self.deadline.is_some_and(|d| now >= d) {
            self.fail(now, RaceFailure::Timeout);
            return;
        }
        if self.phase == Phase::Resolving && self.resolution_deadline.is_some_and(|d| now >= d) {
            self.check_start_rule(now);
        }
        self.advance(now);
    }

    /// How each started attempt ended, for the machine's history: every
    /// attempt that ran, with its path's interface and address.
    pub fn outcomes(&self) -> impl Iterator<Item = (Option<u32>, IpAddr, Outcome)> + '_ {
        self.candidates.iter().filter_map(move |c| {
            let outcome = match c.state {
                CandidateState::Won { rtt, .. } => Outcome::Won { rtt },
                CandidateState::Failed {
                    reason: FailureReason::ConnTimeout,
                    ..
                } => Outcome::Unfinished,
                CandidateState::Failed { .. } => Outcome::Failed,
                CandidateState::Cancelled { .. } | CandidateState::Running { .. } => {
                    Outcome::Unfinished
                }
                CandidateState::Queued | CandidateState::Dropped => return None,
            };
            Some((
                self.paths[usize::from(c.path)].interface,
                c.remote.ip(),
                outcome,
            ))
        })
    }
}

impl Race {
    /// The handshake round trips this race measured, for the history's RTT
    /// estimates (HEv3 §6): every attempt whose transport came up, with
    /// the TCP handshake's time, and the winner, with the whole stack's
    /// time when its transport was not seen separately.
    pub fn rtt_samples(&self) -> impl Iterator<Item = (Option<u32>, IpAddr, Duration)> + '_ {
        self.candidates.iter().filter_map(move |c| {
            let rtt = match c.state {
                CandidateState::Won { rtt, .. } => c.transport_rtt.unwrap_or(rtt),
                _ => c.transport_rtt?,
            };
            Some((
                self.paths[usize::from(c.path)].interface,
                c.remote.ip(),
                rtt,
            ))
        })
    }
}

/// HEv3 §6.2 / RFC 9460 §7.1.2: a service is usable over TCP when its ALPN
/// set (including the default `http/1.1` unless `no-default-alpn`) has a
/// protocol that does not need QUIC.
fn tcp_capable(r: &HttpsRecord) -> bool {
    (!r.no_default_alpn) || r.alpn.iter().any(|a| !a.starts_with("h3"))
}

#[cfg(test)]
mod tests;
