//! What a run is asked and what it returns: the options, the per-connection
//! outcomes and traces, and why a run can fail to finish. The simulation
//! itself lives in the rest of [`crate::world`]; these types are its public
//! face, re-exported there. They model no RFC.

use core::fmt;
use core::time::Duration;
use std::net::SocketAddr;

use taps_core::{ConnectionId, EstablishmentError, Instant, Stats, Trace, race::Policy};

use crate::scenario::Scenario;

/// Default bound on steps (events and timer firings) of one run.
pub const DEFAULT_MAX_STEPS: u64 = 10_000_000;
/// Virtual time after which a run is abandoned: two days.
pub const HORIZON: Duration = Duration::from_secs(2 * 86_400);

/// How to run a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// The racing policy.
    pub policy: Policy,
    /// The seed of the machine and of the world.
    pub seed: u64,
    /// Bound on steps; exceeding it is [`SimError::StepLimit`].
    pub max_steps: u64,
    /// Turn off the RTT-derived Connection Attempt Delay (HEv3 §6) of the
    /// `hev3` preset, so every attempt waits the fixed delay: the
    /// `hev3-static` column of population runs.
    pub static_attempt_delay: bool,
}

impl RunOptions {
    /// The scenario's own policy and seed.
    pub fn of(scenario: &Scenario) -> Self {
        RunOptions {
            policy: scenario.connect.policy,
            seed: scenario.seed,
            max_steps: DEFAULT_MAX_STEPS,
            static_attempt_delay: false,
        }
    }
}

/// Why a run could not finish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// More steps than allowed: a livelock, or a scenario too big for the
    /// bound.
    StepLimit {
        /// The bound.
        steps: u64,
        /// Virtual time when it was hit.
        at: Instant,
    },
    /// Virtual time passed [`HORIZON`].
    Horizon {
        /// Virtual time when it was hit.
        at: Instant,
    },
    /// The certificates or server machines of `tls = "real"` could not be
    /// set up.
    Tls(String),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::StepLimit { steps, at } => write!(
                f,
                "the run took more than {steps} steps (virtual time {at}): a livelock, or raise the step bound"
            ),
            SimError::Horizon { at } => write!(
                f,
                "virtual time reached {at}, past the simulator's two-day horizon"
            ),
            SimError::Tls(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SimError {}

/// How one connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnOutcome {
    /// Ready over this remote and interface.
    Ready {
        /// The winning remote.
        remote: SocketAddr,
        /// Its interface (`None`: default path).
        interface: Option<u32>,
    },
    /// Establishment failed.
    Failed(EstablishmentError),
    /// `initiate` refused at once.
    Refused(String),
    /// Still establishing when the world fell silent: the core had no timer
    /// left and nothing more would ever arrive (set `connect.timeout`).
    Stalled,
}

/// One connection of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnRun {
    /// When `initiate` was called.
    pub started: Instant,
    /// When it became ready or failed.
    pub settled: Option<Instant>,
    /// How it ended.
    pub outcome: ConnOutcome,
    /// Its trace as it stood when it settled (or when the run ended).
    pub trace: Trace,
    /// The machine's id for it (`None`: `initiate` refused).
    pub(super) id: Option<ConnectionId>,
}

impl ConnRun {
    /// Time from `initiate` to ready, if it became ready.
    pub fn time_to_ready(&self) -> Option<Duration> {
        match self.outcome {
            ConnOutcome::Ready { .. } => self.settled.map(|t| t - self.started),
            _ => None,
        }
    }
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The policy raced.
    pub policy: Policy,
    /// The seed used.
    pub seed: u64,
    /// Every connection, in order.
    pub connections: Vec<ConnRun>,
    /// Virtual time when the world fell silent.
    pub end: Instant,
    /// Steps taken.
    pub steps: u64,
    /// Broken contracts observed (empty when all is well).
    pub violations: Vec<String>,
    /// The machine's counters.
    pub stats: Stats,
    /// With real TLS: the size of the handshake's first write each way, per
    /// remote (the smallest seen), for the oracle.
    pub tls_flights: Vec<TlsFlights>,
    /// With real TLS: bytes the machines read from the wire, both ways.
    pub wire_bytes: u64,
    /// FNV-1a 64 over those bytes in the order they were read: equal runs
    /// carry equal bytes (`--check-determinism` compares it).
    pub wire_hash: u64,
}

/// The first writes of real TLS handshakes to one remote: the ClientHello
/// and the server's first flight (ServerHello … Finished), in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsFlights {
    /// The server address.
    pub remote: SocketAddr,
    /// The client's first write.
    pub client: u32,
    /// The server's first write.
    pub server: u32,
}
