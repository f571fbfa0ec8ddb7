//! Transport Properties: what the application asks of a Connection.
//!
//! Implements, from RFC 9622:
//! - §6.2 Selection Properties with the five [`Preference`] levels, every
//!   property of §6.2.1 to §6.2.18 with the default the RFC lists
//!   ([`SelectionProperties`]), and the read-back as booleans once a Connection
//!   is established ([`EffectiveProperties`]);
//! - §6.3 Security Parameters, as far as taps implements them
//!   ([`SecurityParameters`]);
//! - §8.1 Generic Connection Properties and §8.2 TCP User Timeout
//!   ([`ConnectionProperties`]);
//! - §9.1.3 Message Properties, as the defaults a `TransportProperties` carries
//!   ([`MessageProperties`]);
//! - Appendix B.1 convenience setters (`require`, `prefer`, ...) and B.2 the
//!   three Transport Property Profiles.
//!
//! It also answers, for the protocol selection of RFC 9623 §3.1, whether TCP
//! can honour the Require and Prohibit settings
//! ([`SelectionProperties::tcp_conflict`]).
//!
//! Where RFC 9622 gives a default that depends on how the Connection is made
//! (`useTemporaryLocalAddress`, `multipath`), [`Default`] holds the value for
//! Connections made by Initiate; [`SelectionProperties::listener_defaults`] and
//! [`SelectionProperties::rendezvous_defaults`] hold the others.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use smallvec::SmallVec;

use crate::interface::{Interface, InterfaceKind, InterfaceSelector};
use crate::socket_options::{AppliedTcpOptions, OptionResult, TcpSocketOptions};

/// How strongly the application wants a property (RFC 9622 §6.2, Table 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Preference {
    /// Select only protocols/paths providing the property, fail otherwise.
    Require,
    /// Prefer protocols/paths providing the property, proceed otherwise.
    Prefer,
    /// No preference.
    #[default]
    NoPreference,
    /// Prefer protocols/paths not providing the property, proceed otherwise.
    Avoid,
    /// Select only protocols/paths not providing the property, fail otherwise.
    Prohibit,
}

impl Preference {
    /// Every level, strongest "yes" first.
    pub const ALL: [Preference; 5] = [
        Preference::Require,
        Preference::Prefer,
        Preference::NoPreference,
        Preference::Avoid,
        Preference::Prohibit,
    ];

    /// Whether a protocol or path that does (`provides`) or does not provide
    /// the property may be selected at all: only Require and Prohibit exclude.
    pub fn admits(self, provides: bool) -> bool {
        match self {
            Preference::Require => provides,
            Preference::Prohibit => !provides,
            Preference::Prefer | Preference::NoPreference | Preference::Avoid => true,
        }
    }

    /// Whether the application asked for the property (Require or Prefer), the
    /// test a stack uses to decide if an optional feature is switched on.
    pub fn wants(self) -> bool {
        matches!(self, Preference::Require | Preference::Prefer)
    }

    /// The RFC's spelling of the level.
    pub fn as_str(self) -> &'static str {
        match self {
            Preference::Require => "Require",
            Preference::Prefer => "Prefer",
            Preference::NoPreference => "No Preference",
            Preference::Avoid => "Avoid",
            Preference::Prohibit => "Prohibit",
        }
    }

    /// The level as a past participle, for sentences such as
    /// "property reliability is Prohibited".
    fn participle(self) -> &'static str {
        match self {
            Preference::Require => "Required",
            Preference::Prefer => "Preferred",
            Preference::NoPreference => "set to No Preference",
            Preference::Avoid => "Avoided",
            Preference::Prohibit => "Prohibited",
        }
    }
}

impl fmt::Display for Preference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Selection Properties whose type is [`Preference`] (RFC 9622 §6.2), so
/// they can be named in code, in configuration and in error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SelectionProperty {
    /// `reliability`, §6.2.1.
    Reliability,
    /// `preserveMsgBoundaries`, §6.2.2.
    PreserveMsgBoundaries,
    /// `perMsgReliability`, §6.2.3.
    PerMsgReliability,
    /// `preserveOrder`, §6.2.4.
    PreserveOrder,
    /// `zeroRttMsg`, §6.2.5.
    ZeroRttMsg,
    /// `multistreaming`, §6.2.6.
    Multistreaming,
    /// `fullChecksumSend`, §6.2.7.
    FullChecksumSend,
    /// `fullChecksumRecv`, §6.2.8.
    FullChecksumRecv,
    /// `congestionControl`, §6.2.9.
    CongestionControl,
    /// `keepAlive`, §6.2.10.
    KeepAlive,
    /// `useTemporaryLocalAddress`, §6.2.13.
    UseTemporaryLocalAddress,
    /// `softErrorNotify`, §6.2.17.
    SoftErrorNotify,
    /// `activeReadBeforeSend`, §6.2.18.
    ActiveReadBeforeSend,
}

impl SelectionProperty {
    /// Every Preference-typed Selection Property, in RFC order.
    pub const ALL: [SelectionProperty; 13] = [
        SelectionProperty::Reliability,
        SelectionProperty::PreserveMsgBoundaries,
        SelectionProperty::PerMsgReliability,
        SelectionProperty::PreserveOrder,
        SelectionProperty::ZeroRttMsg,
        SelectionProperty::Multistreaming,
        SelectionProperty::FullChecksumSend,
        SelectionProperty::FullChecksumRecv,
        SelectionProperty::CongestionControl,
        SelectionProperty::KeepAlive,
        SelectionProperty::UseTemporaryLocalAddress,
        SelectionProperty::SoftErrorNotify,
        SelectionProperty::ActiveReadBeforeSend,
    ];

    /// The RFC 9622 name (`preserveMsgBoundaries`).
    pub fn name(self) -> &'static str {
        match self {
            SelectionProperty::Reliability => "reliability",
            SelectionProperty::PreserveMsgBoundaries => "preserveMsgBoundaries",
            SelectionProperty::PerMsgReliability => "perMsgReliability",
            SelectionProperty::PreserveOrder => "preserveOrder",
            SelectionProperty::ZeroRttMsg => "zeroRttMsg",
            SelectionProperty::Multistreaming => "multistreaming",
            SelectionProperty::FullChecksumSend => "fullChecksumSend",
            SelectionProperty::FullChecksumRecv => "fullChecksumRecv",
            SelectionProperty::CongestionControl => "congestionControl",
            SelectionProperty::KeepAlive => "keepAlive",
            SelectionProperty::UseTemporaryLocalAddress => "useTemporaryLocalAddress",
            SelectionProperty::SoftErrorNotify => "softErrorNotify",
            SelectionProperty::ActiveReadBeforeSend => "activeReadBeforeSend",
        }
    }

    /// The Rust field name (`preserve_msg_boundaries`).
    pub fn field_name(self) -> &'static str {
        match self {
            SelectionProperty::Reliability => "reliability",
            SelectionProperty::PreserveMsgBoundaries => "preserve_msg_boundaries",
            SelectionProperty::PerMsgReliability => "per_msg_reliability",
            SelectionProperty::PreserveOrder => "preserve_order",
            SelectionProperty::ZeroRttMsg => "zero_rtt_msg",
            SelectionProperty::Multistreaming => "multistreaming",
            SelectionProperty::FullChecksumSend => "full_checksum_send",
            SelectionProperty::FullChecksumRecv => "full_checksum_recv",
            SelectionProperty::CongestionControl => "congestion_control",
            SelectionProperty::KeepAlive => "keep_alive",
            SelectionProperty::UseTemporaryLocalAddress => "use_temporary_local_address",
            SelectionProperty::SoftErrorNotify => "soft_error_notify",
            SelectionProperty::ActiveReadBeforeSend => "active_read_before_send",
        }
    }
}

impl fmt::Display for SelectionProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no Preference-typed Selection Property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownProperty(pub String);

impl fmt::Display for UnknownProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown selection property {:?}: expected one of the RFC 9622 §6.2 names, such as reliability or preserveMsgBoundaries",
            self.0
        )
    }
}

impl std::error::Error for UnknownProperty {}

impl FromStr for SelectionProperty {
    type Err = UnknownProperty;

    /// Accepts the RFC name (`preserveMsgBoundaries`) or the field name
    /// (`preserve_msg_boundaries`), so configuration files can use either.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SelectionProperty::ALL
            .into_iter()
            .find(|p| p.name() == s || p.field_name() == s)
            .ok_or_else(|| UnknownProperty(s.to_owned()))
    }
}

/// RFC 9622 §6.2.14 `multipath`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MultipathPreference {
    /// Do not use several paths once established (default for Initiate and
    /// Rendezvous).
    #[default]
    Disabled,
    /// Negotiate the use of several paths if the transport can.
    Active,
    /// Accept several paths if the peer asks (default for Listeners).
    Passive,
}

/// RFC 9622 §6.2.16 `direction`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Send and receive.
    #[default]
    Bidirectional,
    /// Send only.
    UnidirectionalSend,
    /// Receive only.
    UnidirectionalReceive,
}

/// RFC 9622 §6.2: the properties that select protocols and paths.
///
/// [`Default`] gives the RFC defaults for a Connection made by Initiate, a
/// configuration TCP can satisfy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectionProperties {
    /// §6.2.1 `reliability`; default Require.
    pub reliability: Preference,
    /// §6.2.2 `preserveMsgBoundaries`; default No Preference.
    pub preserve_msg_boundaries: Preference,
    /// §6.2.3 `perMsgReliability`; default No Preference.
    pub per_msg_reliability: Preference,
    /// §6.2.4 `preserveOrder`; default Require.
    pub preserve_order: Preference,
    /// §6.2.5 `zeroRttMsg`; default No Preference.
    pub zero_rtt_msg: Preference,
    /// §6.2.6 `multistreaming`; default Prefer.
    pub multistreaming: Preference,
    /// §6.2.7 `fullChecksumSend`; default Require.
    pub full_checksum_send: Preference,
    /// §6.2.8 `fullChecksumRecv`; default Require.
    pub full_checksum_recv: Preference,
    /// §6.2.9 `congestionControl`; default Require.
    pub congestion_control: Preference,
    /// §6.2.10 `keepAlive`; default No Preference.
    pub keep_alive: Preference,
    /// §6.2.11 `interface`: (interface instance or type, preference) pairs;
    /// default empty. A later entry for the same selector overrides an
    /// earlier one; see the machine's path derivation (RFC 9623 §4.1.1.2) for how paths are derived from it.
    pub interface: Vec<(InterfaceSelector, Preference)>,
    /// §6.2.12 `pvd`: (provisioning domain, preference) pairs; default empty.
    /// taps learns no provisioning domains from the system, so Require fails
    /// path derivation and the other levels have nothing to act on.
    pub pvd: Vec<(String, Preference)>,
    /// §6.2.13 `useTemporaryLocalAddress`; default Prefer (Avoid for
    /// Listeners and Rendezvous, see [`Self::listener_defaults`]).
    pub use_temporary_local_address: Preference,
    /// §6.2.14 `multipath`; default Disabled (Passive for Listeners).
    pub multipath: MultipathPreference,
    /// §6.2.15 `advertisesAltaddr`; default false.
    pub advertises_alt_address: bool,
    /// §6.2.16 `direction`; default Bidirectional.
    pub direction: Direction,
    /// §6.2.17 `softErrorNotify`; default No Preference.
    pub soft_error_notify: Preference,
    /// §6.2.18 `activeReadBeforeSend`; default No Preference.
    pub active_read_before_send: Preference,
    /// Never use an interface the system marks expensive (metered). RFC 9622
    /// §6.2.11 asks for "another specific property" for metered access rather
    /// than treating interface types as a proxy; this is it, as in
    /// Network.framework's `prohibitExpensivePaths`. Default false.
    pub prohibit_expensive: bool,
    /// Never use an interface the system marks constrained (low data mode),
    /// as Network.framework's `prohibitConstrainedPaths`. Default false.
    pub prohibit_constrained: bool,
}

impl Default for SelectionProperties {
    fn default() -> Self {
        SelectionProperties {
            reliability: Preference::Require,
            preserve_msg_boundaries: Preference::NoPreference,
            per_msg_reliability: Preference::NoPreference,
            preserve_order: Preference::Require,
            zero_rtt_msg: Preference::NoPreference,
            multistreaming: Preference::Prefer,
            full_checksum_send: Preference::Require,
            full_checksum_recv: Preference::Require,
            congestion_control: Preference::Require,
            keep_alive: Preference::NoPreference,
            interface: Vec::new(),
            pvd: Vec::new(),
            use_temporary_local_address: Preference::Prefer,
            multipath: MultipathPreference::Disabled,
            advertises_alt_address: false,
            direction: Direction::Bidirectional,
            soft_error_notify: Preference::NoPreference,
            active_read_before_send: Preference::NoPreference,
            prohibit_expensive: false,
            prohibit_constrained: false,
        }
    }
}

impl SelectionProperties {
    /// The RFC defaults for a Listener: `useTemporaryLocalAddress` Avoid
    /// (§6.2.13) and `multipath` Passive (§6.2.14), the rest as [`Default`].
    pub fn listener_defaults() -> Self {
        SelectionProperties {
            use_temporary_local_address: Preference::Avoid,
            multipath: MultipathPreference::Passive,
            ..SelectionProperties::default()
        }
    }

    /// The RFC defaults for Rendezvous: `useTemporaryLocalAddress` Avoid
    /// (§6.2.13), `multipath` Disabled (§6.2.14), the rest as [`Default`].
    pub fn rendezvous_defaults() -> Self {
        SelectionProperties {
            use_temporary_local_address: Preference::Avoid,
            ..SelectionProperties::default()
        }
    }

    /// The value of a Preference-typed property.
    pub fn get(&self, property: SelectionProperty) -> Preference {
        match property {
            SelectionProperty::Reliability => self.reliability,
            SelectionProperty::PreserveMsgBoundaries => self.preserve_msg_boundaries,
            SelectionProperty::PerMsgReliability => self.per_msg_reliability,
            SelectionProperty::PreserveOrder => self.preserve_order,
            SelectionProperty::ZeroRttMsg => self.zero_rtt_msg,
            SelectionProperty::Multistreaming => self.multistreaming,
            SelectionProperty::FullChecksumSend => self.full_checksum_send,
            SelectionProperty::FullChecksumRecv => self.full_checksum_recv,
            SelectionProperty::CongestionControl => self.congestion_control,
            SelectionProperty::KeepAlive => self.keep_alive,
            SelectionProperty::UseTemporaryLocalAddress => self.use_temporary_local_address,
            SelectionProperty::SoftErrorNotify => self.soft_error_notify,
            SelectionProperty::ActiveReadBeforeSend => self.active_read_before_send,
        }
    }

    /// Sets a Preference-typed property (RFC 9622 §6.2 `Set`), overriding the
    /// previous value.
    pub fn set(&mut self, property: SelectionProperty, preference: Preference) {
        let slot = match property {
            SelectionProperty::Reliability => &mut self.reliability,
            SelectionProperty::PreserveMsgBoundaries => &mut self.preserve_msg_boundaries,
            SelectionProperty::PerMsgReliability => &mut self.per_msg_reliability,
            SelectionProperty::PreserveOrder => &mut self.preserve_order,
            SelectionProperty::ZeroRttMsg => &mut self.zero_rtt_msg,
            SelectionProperty::Multistreaming => &mut self.multistreaming,
            SelectionProperty::FullChecksumSend => &mut self.full_checksum_send,
            SelectionProperty::FullChecksumRecv => &mut self.full_checksum_recv,
            SelectionProperty::CongestionControl => &mut self.congestion_control,
            SelectionProperty::KeepAlive => &mut self.keep_alive,
            SelectionProperty::UseTemporaryLocalAddress => &mut self.use_temporary_local_address,
            SelectionProperty::SoftErrorNotify => &mut self.soft_error_notify,
            SelectionProperty::ActiveReadBeforeSend => &mut self.active_read_before_send,
        };
        *slot = preference;
    }

    /// Sets the preference for one interface instance or type (RFC 9622
    /// §6.2.11). An earlier entry for the same selector is replaced, because
    /// setting a property overrides its previous value; No Preference removes
    /// the entry.
    pub fn set_interface(&mut self, selector: InterfaceSelector, preference: Preference) {
        self.interface.retain(|(s, _)| *s != selector);
        if preference != Preference::NoPreference {
            self.interface.push((selector, preference));
        }
    }

    /// Sets the preference for one provisioning domain (RFC 9622 §6.2.12),
    /// replacing an earlier entry for it; No Preference removes the entry.
    pub fn set_pvd(&mut self, pvd: &str, preference: Preference) {
        self.pvd.retain(|(p, _)| p != pvd);
        if preference != Preference::NoPreference {
            self.pvd.push((pvd.to_owned(), preference));
        }
    }

    /// The first reason TCP cannot honour these properties' Require and
    /// Prohibit settings, or `None` if TCP may be selected (RFC 9622 §6.2:
    /// "The implementation MUST ensure an outcome that is consistent with all
    /// application requirements expressed using Require and Prohibit").
    ///
    /// `has_framer`: whether a Message Framer (RFC 9622 §9.1.2) sits on the
    /// stack, which is what lets TCP preserve message boundaries.
    pub fn tcp_conflict(&self, has_framer: bool) -> Option<PropertyConflict> {
        self.tcp_conflicts(has_framer).into_iter().next()
    }

    /// Every reason TCP cannot honour these properties, in RFC order; see
    /// [`Self::tcp_conflict`].
    pub fn tcp_conflicts(&self, has_framer: bool) -> SmallVec<[PropertyConflict; 2]> {
        SelectionProperty::ALL
            .into_iter()
            .filter_map(|property| {
                let preference = self.get(property);
                let reason = tcp_refusal(property, preference, has_framer)?;
                Some(PropertyConflict {
                    property,
                    preference,
                    reason,
                })
            })
            .collect()
    }
}

/// Why TCP cannot take `preference` for `property`, if it cannot.
///
/// Properties TCP can switch on or leave off per connection (zeroRttMsg via
/// TCP Fast Open or TLS early data, keepAlive, activeReadBeforeSend,
/// useTemporaryLocalAddress, which is a matter of source address) never
/// conflict.
fn tcp_refusal(
    property: SelectionProperty,
    preference: Preference,
    has_framer: bool,
) -> Option<&'static str> {
    use Preference::{Prohibit, Require};
    use SelectionProperty as P;
    match (property, preference) {
        (P::Reliability, Prohibit) => Some("TCP always retransmits lost data"),
        (P::PreserveMsgBoundaries, Require) if !has_framer => {
            Some("TCP cannot preserve message boundaries without a framer")
        }
        (P::PreserveMsgBoundaries, Prohibit) if has_framer => {
            Some("the framer on this TCP stack preserves message boundaries")
        }
        (P::PerMsgReliability, Require) => {
            Some("TCP cannot relax reliability for individual messages")
        }
        (P::PreserveOrder, Prohibit) => Some("TCP always delivers data in order"),
        (P::Multistreaming, Require) => {
            Some("TCP carries one stream per connection and cannot multiplex a connection group")
        }
        (P::FullChecksumSend | P::FullChecksumRecv, Prohibit) => {
            Some("TCP always checksums whole segments")
        }
        (P::CongestionControl, Prohibit) => Some("TCP is always congestion controlled"),
        // RFC 1122 lets TCP report soft errors, but taps does not deliver
        // SoftError events on TCP connections, so claiming it would mislead.
        (P::SoftErrorNotify, Require) => {
            Some("taps does not deliver ICMP soft errors (SoftError events) on TCP connections")
        }
        _ => None,
    }
}

/// A Require or Prohibit that a protocol cannot honour (RFC 9622 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PropertyConflict {
    /// The property.
    pub property: SelectionProperty,
    /// What the application asked for (Require or Prohibit).
    pub preference: Preference,
    /// Why the protocol cannot, as a sentence fragment naming the protocol.
    pub reason: &'static str,
}

impl fmt::Display for PropertyConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "property {} is {} but {}",
            self.property,
            self.preference.participle(),
            self.reason
        )
    }
}

impl std::error::Error for PropertyConflict {}

/// Checksum coverage: RFC 9622 §8.1.1 `recvChecksumLen` and §9.1.3.6
/// `msgChecksumLen`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChecksumCoverage {
    /// The whole message is covered (the RFC's `Full Coverage`).
    #[default]
    Full,
    /// At least this many bytes from the start are covered; 0 allows no
    /// checksum at all.
    Bytes(u32),
}

/// RFC 9622 §8.1.5 `connScheduler`: the RFC 8260 §3 schedulers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ConnScheduler {
    /// RFC 8260 §3.1 First-Come, First-Served.
    FirstComeFirstServed,
    /// RFC 8260 §3.2 Round-Robin.
    RoundRobin,
    /// RFC 8260 §3.3 Round-Robin per Packet.
    RoundRobinPerPacket,
    /// RFC 8260 §3.4 Priority-Based.
    PriorityBased,
    /// RFC 8260 §3.5 Fair Capacity.
    FairCapacity,
    /// RFC 8260 §3.6 Weighted Fair Queueing, the RFC 9622 default.
    #[default]
    WeightedFairQueueing,
}

/// RFC 9622 §8.1.6 `connCapacityProfile` (and §9.1.3.8 `msgCapacityProfile`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CapacityProfile {
    /// No information; DSCP Default Forwarding.
    #[default]
    Default,
    /// Not interactive, no urgency; DSCP Less than Best Effort.
    Scavenger,
    /// Interactive, prefers loss to latency; disables Nagle.
    LowLatencyInteractive,
    /// Not interactive, prefers loss to latency.
    LowLatencyNonInteractive,
    /// Constant rate after establishment.
    ConstantRateStreaming,
    /// As fast as congestion control allows, for a long time.
    CapacitySeeking,
}

/// RFC 9622 §8.1.2: `connPriority`'s default.
pub(crate) const DEFAULT_CONN_PRIORITY: u32 = 100;

/// RFC 9622 §8.1.7 `multipathPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MultipathPolicy {
    /// Move to another path only when the current one fails (default).
    #[default]
    Handover,
    /// Use several paths to cut latency for interactive traffic.
    Interactive,
    /// Use several paths at once for capacity.
    Aggregate,
}

/// RFC 9622 §8.2 TCP User Timeout Option (RFC 5482) settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpUserTimeout {
    /// `tcp.userTimeoutValue`: the timeout to advertise; `None` is the TCP
    /// default.
    pub value: Option<Duration>,
    /// `tcp.userTimeoutEnabled`; default false.
    pub enabled: bool,
    /// `tcp.userTimeoutChangeable`: whether a peer's UTO may change
    /// `connTimeout`; default true.
    pub changeable: bool,
}

impl Default for TcpUserTimeout {
    fn default() -> Self {
        TcpUserTimeout {
            value: None,
            enabled: false,
            changeable: true,
        }
    }
}

/// RFC 9622 §8.1: the generic Connection Properties an application can set,
/// and §8.2 for TCP. [`Default`] holds the RFC defaults.
///
/// Rates are bits per second at the application layer (§8.1.8); `None` is the
/// RFC's `Unlimited`, as `None` for timeouts is its `Disabled`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionProperties {
    /// §8.1.1 `recvChecksumLen`; default Full Coverage.
    pub recv_checksum_len: ChecksumCoverage,
    /// §8.1.2 `connPriority`: lower is more important; default 100.
    pub conn_priority: u32,
    /// §8.1.3 `connTimeout`; default `None` (Disabled).
    pub conn_timeout: Option<Duration>,
    /// §8.1.4 `keepAliveTimeout`; default `None` (Disabled).
    pub keep_alive_timeout: Option<Duration>,
    /// §8.1.5 `connScheduler`; default Weighted Fair Queueing.
    pub conn_scheduler: ConnScheduler,
    /// §8.1.6 `connCapacityProfile`; default Default (best effort).
    pub conn_capacity_profile: CapacityProfile,
    /// §8.1.7 `multipathPolicy`; default Handover.
    pub multipath_policy: MultipathPolicy,
    /// §8.1.8 `minSendRate`; default Unlimited.
    pub min_send_rate: Option<u64>,
    /// §8.1.8 `minRecvRate`; default Unlimited.
    pub min_recv_rate: Option<u64>,
    /// §8.1.8 `maxSendRate`; default Unlimited.
    pub max_send_rate: Option<u64>,
    /// §8.1.8 `maxRecvRate`; default Unlimited.
    pub max_recv_rate: Option<u64>,
    /// §8.1.9 `groupConnLimit`; default `None` (Unlimited).
    pub group_conn_limit: Option<u32>,
    /// §8.1.10 `isolateSession`; default false.
    pub isolate_session: bool,
    /// §8.2 TCP User Timeout Option settings.
    pub tcp_user_timeout: TcpUserTimeout,
}

impl Default for ConnectionProperties {
    fn default() -> Self {
        ConnectionProperties {
            recv_checksum_len: ChecksumCoverage::Full,
            conn_priority: DEFAULT_CONN_PRIORITY,
            conn_timeout: None,
            keep_alive_timeout: None,
            conn_scheduler: ConnScheduler::WeightedFairQueueing,
            conn_capacity_profile: CapacityProfile::Default,
            multipath_policy: MultipathPolicy::Handover,
            min_send_rate: None,
            min_recv_rate: None,
            max_send_rate: None,
            max_recv_rate: None,
            group_conn_limit: None,
            isolate_session: false,
            tcp_user_timeout: TcpUserTimeout::default(),
        }
    }
}

/// RFC 9622 §9.1.3 Message Properties, as the defaults for Messages sent
/// without their own context. `None` in `ordered`, `reliable` and
/// `capacity_profile` means "follow the Connection", as the RFC's defaults do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageProperties {
    /// §9.1.3.1 `msgLifetime`; `None` is infinite, the default.
    pub lifetime: Option<Duration>,
    /// §9.1.3.2 `msgPriority`: lower is more important; default 100.
    pub priority: u32,
    /// §9.1.3.3 `msgOrdered`; default: whether `preserveOrder` is in effect.
    pub ordered: Option<bool>,
    /// §9.1.3.4 `safelyReplayable`; default false.
    pub safely_replayable: bool,
    /// §9.1.3.5 `final`; default false.
    pub is_final: bool,
    /// §9.1.3.6 `msgChecksumLen`; default Full Coverage.
    pub checksum_len: ChecksumCoverage,
    /// §9.1.3.7 `msgReliable`; default: whether `reliability` is in effect.
    pub reliable: Option<bool>,
    /// §9.1.3.8 `msgCapacityProfile`; default: `connCapacityProfile`.
    pub capacity_profile: Option<CapacityProfile>,
    /// §9.1.3.9 `noFragmentation`; default false.
    pub no_fragmentation: bool,
    /// §9.1.3.10 `noSegmentation`; default false.
    pub no_segmentation: bool,
}

impl Default for MessageProperties {
    fn default() -> Self {
        MessageProperties {
            lifetime: None,
            priority: 100,
            ordered: None,
            safely_replayable: false,
            is_final: false,
            checksum_len: ChecksumCoverage::Full,
            reliable: None,
            capacity_profile: None,
            no_fragmentation: false,
            no_segmentation: false,
        }
    }
}

/// RFC 9622 §6.2 `TransportProperties`: Selection Properties, Connection
/// Properties and Message Property defaults, as a Preconnection holds them.
/// [`Default`] (and [`Self::new`]) gives the RFC defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportProperties {
    /// How protocols and paths are chosen.
    pub selection: SelectionProperties,
    /// How the chosen stack is configured.
    pub connection: ConnectionProperties,
    /// Defaults for Messages sent without their own properties.
    pub message: MessageProperties,
}

impl TransportProperties {
    /// RFC 9622 §6.2 `NewTransportProperties()`: all defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// RFC 9622 Appendix B.2.1 reliable-inorder-stream (what TCP provides):
    /// reliability, preserveOrder and congestionControl Require,
    /// preserveMsgBoundaries No Preference.
    pub fn reliable_inorder_stream() -> Self {
        Self::new()
            .require(SelectionProperty::Reliability)
            .require(SelectionProperty::PreserveOrder)
            .require(SelectionProperty::CongestionControl)
            .no_preference(SelectionProperty::PreserveMsgBoundaries)
    }

    /// RFC 9622 Appendix B.2.2 reliable-message (what SCTP provides):
    /// reliability, preserveOrder, congestionControl and
    /// preserveMsgBoundaries Require.
    pub fn reliable_message() -> Self {
        Self::new()
            .require(SelectionProperty::Reliability)
            .require(SelectionProperty::PreserveOrder)
            .require(SelectionProperty::CongestionControl)
            .require(SelectionProperty::PreserveMsgBoundaries)
    }

    /// RFC 9622 Appendix B.2.3 unreliable-datagram (what UDP provides):
    /// reliability and preserveOrder Avoid, congestionControl No Preference,
    /// preserveMsgBoundaries Require, and Messages safely replayable.
    pub fn unreliable_datagram() -> Self {
        let mut properties = Self::new()
            .avoid(SelectionProperty::Reliability)
            .avoid(SelectionProperty::PreserveOrder)
            .no_preference(SelectionProperty::CongestionControl)
            .require(SelectionProperty::PreserveMsgBoundaries);
        properties.message.safely_replayable = true;
        properties
    }

    /// Sets `property` to `preference` (RFC 9622 §6.2 `Set`).
    pub fn set(mut self, property: SelectionProperty, preference: Preference) -> Self {
        self.selection.set(property, preference);
        self
    }

    /// RFC 9622 Appendix B.1 `Require(property)`.
    pub fn require(self, property: SelectionProperty) -> Self {
        self.set(property, Preference::Require)
    }

    /// RFC 9622 Appendix B.1 `Prefer(property)`.
    pub fn prefer(self, property: SelectionProperty) -> Self {
        self.set(property, Preference::Prefer)
    }

    /// RFC 9622 Appendix B.1 `NoPreference(property)`.
    pub fn no_preference(self, property: SelectionProperty) -> Self {
        self.set(property, Preference::NoPreference)
    }

    /// RFC 9622 Appendix B.1 `Avoid(property)`.
    pub fn avoid(self, property: SelectionProperty) -> Self {
        self.set(property, Preference::Avoid)
    }

    /// RFC 9622 Appendix B.1 `Prohibit(property)`.
    pub fn prohibit(self, property: SelectionProperty) -> Self {
        self.set(property, Preference::Prohibit)
    }

    /// Sets the preference for an interface instance or type (§6.2.11),
    /// replacing any earlier one for the same selector.
    pub fn interface(mut self, selector: InterfaceSelector, preference: Preference) -> Self {
        self.selection.set_interface(selector, preference);
        self
    }

    /// Use only interfaces of this kind (or of another required one).
    pub fn require_interface_kind(self, kind: InterfaceKind) -> Self {
        self.interface(InterfaceSelector::Kind(kind), Preference::Require)
    }

    /// Try interfaces of this kind first.
    pub fn prefer_interface_kind(self, kind: InterfaceKind) -> Self {
        self.interface(InterfaceSelector::Kind(kind), Preference::Prefer)
    }

    /// Try interfaces of this kind last.
    pub fn avoid_interface_kind(self, kind: InterfaceKind) -> Self {
        self.interface(InterfaceSelector::Kind(kind), Preference::Avoid)
    }

    /// Never use interfaces of this kind.
    pub fn prohibit_interface_kind(self, kind: InterfaceKind) -> Self {
        self.interface(InterfaceSelector::Kind(kind), Preference::Prohibit)
    }

    /// Use only the interface with this name (or another required one).
    pub fn require_interface_name(self, name: &str) -> Self {
        self.interface(
            InterfaceSelector::Name(name.to_owned()),
            Preference::Require,
        )
    }

    /// Try the interface with this name first.
    pub fn prefer_interface_name(self, name: &str) -> Self {
        self.interface(InterfaceSelector::Name(name.to_owned()), Preference::Prefer)
    }

    /// Try the interface with this name last.
    pub fn avoid_interface_name(self, name: &str) -> Self {
        self.interface(InterfaceSelector::Name(name.to_owned()), Preference::Avoid)
    }

    /// Never use the interface with this name.
    pub fn prohibit_interface_name(self, name: &str) -> Self {
        self.interface(
            InterfaceSelector::Name(name.to_owned()),
            Preference::Prohibit,
        )
    }

    /// Never use interfaces the system marks expensive.
    pub fn prohibit_expensive(mut self) -> Self {
        self.selection.prohibit_expensive = true;
        self
    }

    /// Never use interfaces the system marks constrained.
    pub fn prohibit_constrained(mut self) -> Self {
        self.selection.prohibit_constrained = true;
        self
    }

    /// The properties in effect on an established TCP Connection, as RFC 9622
    /// §6.2 has them read back: each Preference becomes a boolean, `true`
    /// when the stack supports the feature or uses the path.
    ///
    /// `has_framer`: whether a Message Framer is on the stack. `path`: the
    /// interface the Connection runs over, if known (`None` for the system's
    /// default path).
    ///
    /// `socket` is what the Connection's socket was asked for and what the
    /// adapter said became of it: keepAlive and the TCP user timeout read
    /// back as in effect only when the socket has them, and
    /// [`EffectiveProperties::not_in_effect`] says why any asked for is
    /// not. zeroRttMsg reads `true` only when the first Message went as
    /// accepted early data (`zero_rtt`); when the application asked for it
    /// (Require or Prefer) and it did not, `not_in_effect` says why.
    pub fn effective_for_tcp(
        &self,
        has_framer: bool,
        path: Option<&Interface>,
        socket: &(TcpSocketOptions, AppliedTcpOptions),
        zero_rtt: ZeroRttOutcome,
    ) -> EffectiveProperties {
        let s = &self.selection;
        let (asked, applied) = socket;
        let zero_rtt_why_not = zero_rtt
            .why_not()
            .filter(|_| s.zero_rtt_msg.wants())
            .map(|why| format!("zeroRttMsg: {why}"));
        let not_in_effect = [
            applied.keep_alive.why_not("keepAlive"),
            applied.user_timeout.why_not("tcpUserTimeout"),
            zero_rtt_why_not,
        ]
        .into_iter()
        .flatten()
        .collect();
        EffectiveProperties {
            reliability: true,
            preserve_msg_boundaries: has_framer,
            per_msg_reliability: false,
            preserve_order: true,
            zero_rtt_msg: zero_rtt == ZeroRttOutcome::Accepted,
            zero_rtt,
            multistreaming: false,
            full_checksum_send: true,
            full_checksum_recv: true,
            congestion_control: true,
            keep_alive: applied.keep_alive == OptionResult::InEffect,
            keep_alive_timeout: asked
                .keep_alive_idle
                .filter(|_| applied.keep_alive == OptionResult::InEffect),
            tcp_user_timeout: asked
                .user_timeout
                .filter(|_| applied.user_timeout == OptionResult::InEffect),
            not_in_effect,
            // The kernel picks the source address; taps does not learn here
            // whether it was a temporary one.
            use_temporary_local_address: None,
            // taps has no MPTCP yet, so TCP stays on one path.
            multipath: MultipathPreference::Disabled,
            advertises_alt_address: false,
            direction: s.direction,
            soft_error_notify: false,
            active_read_before_send: true,
            interface: path.map(|i| i.name.clone()),
            interface_kind: path.map(|i| i.kind),
            pvd: None,
            expensive: path.is_some_and(|i| i.expensive),
            constrained: path.is_some_and(|i| i.constrained),
            conn_timeout: self.connection.conn_timeout,
            conn_priority: self.connection.conn_priority,
        }
    }
}

/// Selection Properties read back from an established Connection (RFC 9622
/// §6.2): `true` means the stack supports the feature or uses the path.
/// Properties that are not Preferences keep their type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveProperties {
    /// §6.2.1 all data arrives, without loss or duplication.
    pub reliability: bool,
    /// §6.2.2 message boundaries are kept.
    pub preserve_msg_boundaries: bool,
    /// §6.2.3 reliability can be set per message.
    pub per_msg_reliability: bool,
    /// §6.2.4 data arrives in order.
    pub preserve_order: bool,
    /// §6.2.5 the first Message went out with establishment and the peer
    /// took it: TLS 1.3 0-RTT data the server accepted.
    pub zero_rtt_msg: bool,
    /// What became of the first Message in detail (why `zero_rtt_msg` is
    /// `false`, for instance).
    pub zero_rtt: ZeroRttOutcome,
    /// §6.2.6 group Connections share one transport connection as streams.
    pub multistreaming: bool,
    /// §6.2.7 all sent data is checksummed.
    pub full_checksum_send: bool,
    /// §6.2.8 all received data is checksummed.
    pub full_checksum_recv: bool,
    /// §6.2.9 the Connection is congestion controlled.
    pub congestion_control: bool,
    /// §6.2.10 keep-alive packets are sent: the socket has `SO_KEEPALIVE`.
    pub keep_alive: bool,
    /// §8.1.4 `keepAliveTimeout` in effect: the idle time the socket was
    /// given (`None`: keep-alive off, or the system's timing).
    pub keep_alive_timeout: Option<Duration>,
    /// §8.2 the TCP user timeout the socket has (`TCP_USER_TIMEOUT`).
    pub tcp_user_timeout: Option<Duration>,
    /// Properties the application asked for that the socket does not have,
    /// each with why (a refused setsockopt, or an adapter that did not
    /// report). Never read such a property as on.
    pub not_in_effect: Vec<String>,
    /// §6.2.13 the local address is temporary; `None` when unknown.
    pub use_temporary_local_address: Option<bool>,
    /// §6.2.14 multipath mode in effect.
    pub multipath: MultipathPreference,
    /// §6.2.15 alternative addresses are advertised.
    pub advertises_alt_address: bool,
    /// §6.2.16 direction in effect.
    pub direction: Direction,
    /// §6.2.17 ICMP soft errors are reported.
    pub soft_error_notify: bool,
    /// §6.2.18 the initiator may read before it writes.
    pub active_read_before_send: bool,
    /// §6.2.11 the name of the interface in use; `None` for the system's
    /// default path.
    pub interface: Option<String>,
    /// §6.2.11 the kind of the interface in use, if known.
    pub interface_kind: Option<InterfaceKind>,
    /// §6.2.12 the provisioning domain in use; taps knows none yet.
    pub pvd: Option<String>,
    /// The interface in use is marked expensive.
    pub expensive: bool,
    /// The interface in use is marked constrained.
    pub constrained: bool,
    /// §8.1.3 `connTimeout` in effect.
    pub conn_timeout: Option<Duration>,
    /// §8.1.2 `connPriority` in effect.
    pub conn_priority: u32,
}

/// What became of an initiated Connection's first Message with respect
/// to going out during establishment (RFC 9622 §6.2.5 `zeroRttMsg` and
/// §7.2 initiate with send): TLS 1.3 0-RTT (RFC 8446 §2.3) or TCP Fast
/// Open (RFC 7413). [`EffectiveProperties::zero_rtt_msg`] reads `true` only
/// for [`ZeroRttOutcome::Accepted`]: the feature read back is what
/// happened, not what was asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ZeroRttOutcome {
    /// No first Message came with initiate (or the Connection was
    /// accepted by a Listener).
    #[default]
    NoFirstMessage,
    /// The first Message was not marked `safelyReplayable` (RFC 9622
    /// §9.1.3.4), so it waited for establishment.
    NotSafelyReplayable,
    /// The Security Parameters turn early data off.
    DisallowedBySecurity,
    /// The first Message framed to nothing, so nothing could go early.
    EmptyFirstMessage,
    /// The winning attempt had no resumable TLS session for the server
    /// that allows early data (RFC 8446 §4.2.10: 0-RTT needs a ticket
    /// with `max_early_data_size`), so the Message waited for the
    /// handshake.
    NoResumableSession,
    /// The server rejected the 0-RTT data; the Message went again after
    /// the handshake (RFC 8446 §4.2.10).
    RejectedByServer,
    /// The server accepted the Message as TLS 1.3 0-RTT data.
    Accepted,
    /// The Message went with TCP Fast Open. The socket does not say
    /// whether the SYN carried it: without a cookie the kernel sends it
    /// after the handshake (RFC 7413 §4.1), and taps cannot tell which.
    FastOpenUnconfirmed,
}

impl ZeroRttOutcome {
    /// Why the first Message did not go as accepted early data; `None`
    /// for [`ZeroRttOutcome::Accepted`].
    pub fn why_not(self) -> Option<&'static str> {
        Some(match self {
            ZeroRttOutcome::Accepted => return None,
            ZeroRttOutcome::NoFirstMessage => "no first Message came with initiate",
            ZeroRttOutcome::NotSafelyReplayable => {
                "the first Message was not marked safelyReplayable"
            }
            ZeroRttOutcome::DisallowedBySecurity => "the Security Parameters disallow early data",
            ZeroRttOutcome::EmptyFirstMessage => "the first Message was empty",
            ZeroRttOutcome::NoResumableSession => {
                "no resumable TLS session with early data for this server; it went after the handshake"
            }
            ZeroRttOutcome::RejectedByServer => {
                "the server rejected the 0-RTT data; it went again after the handshake"
            }
            ZeroRttOutcome::FastOpenUnconfirmed => {
                "it went with TCP Fast Open, and the socket does not say whether the SYN carried it"
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interface::InterfaceAddress;
    use Preference::*;
    use SelectionProperty as P;

    #[test]
    fn selection_defaults_match_rfc_9622() {
        // (property, RFC 9622 section, default the RFC lists)
        let table: [(P, &str, Preference); 13] = [
            (P::Reliability, "§6.2.1 Default: Require", Require),
            (
                P::PreserveMsgBoundaries,
                "§6.2.2 Default: No Preference",
                NoPreference,
            ),
            (
                P::PerMsgReliability,
                "§6.2.3 Default: No Preference",
                NoPreference,
            ),
            (P::PreserveOrder, "§6.2.4 Default: Require", Require),
            (P::ZeroRttMsg, "§6.2.5 Default: No Preference", NoPreference),
            (P::Multistreaming, "§6.2.6 Default: Prefer", Prefer),
            (P::FullChecksumSend, "§6.2.7 Default: Require", Require),
            (P::FullChecksumRecv, "§6.2.8 Default: Require", Require),
            (P::CongestionControl, "§6.2.9 Default: Require", Require),
            (P::KeepAlive, "§6.2.10 Default: No Preference", NoPreference),
            (
                P::UseTemporaryLocalAddress,
                "§6.2.13 Default: Prefer for other Connections",
                Prefer,
            ),
            (
                P::SoftErrorNotify,
                "§6.2.17 Default: No Preference",
                NoPreference,
            ),
            (
                P::ActiveReadBeforeSend,
                "§6.2.18 Default: No Preference",
                NoPreference,
            ),
        ];
        let d = SelectionProperties::default();
        for (property, section, expected) in table {
            assert_eq!(d.get(property), expected, "{property}: {section}");
        }
        // §6.2.11 / §6.2.12 Default: Empty.
        assert!(d.interface.is_empty());
        assert!(d.pvd.is_empty());
        // §6.2.14 Default: Disabled for Connections created through initiate.
        assert_eq!(d.multipath, MultipathPreference::Disabled);
        // §6.2.15 Default: false.
        assert!(!d.advertises_alt_address);
        // §6.2.16 Default: Bidirectional.
        assert_eq!(d.direction, Direction::Bidirectional);
        assert!(!d.prohibit_expensive && !d.prohibit_constrained);
        assert_eq!(TransportProperties::default().selection, d);
    }

    #[test]
    fn role_dependent_defaults() {
        // §6.2.13 "Avoid for Listeners and Rendezvous Connections";
        // §6.2.14 "Passive for Listeners".
        let l = SelectionProperties::listener_defaults();
        assert_eq!(l.use_temporary_local_address, Avoid);
        assert_eq!(l.multipath, MultipathPreference::Passive);
        let r = SelectionProperties::rendezvous_defaults();
        assert_eq!(r.use_temporary_local_address, Avoid);
        assert_eq!(r.multipath, MultipathPreference::Disabled);
    }

    #[test]
    fn connection_and_message_defaults_match_rfc_9622() {
        let c = ConnectionProperties::default();
        // §8.1.1 Default: Full Coverage.
        assert_eq!(c.recv_checksum_len, ChecksumCoverage::Full);
        // §8.1.2 Default: 100.
        assert_eq!(c.conn_priority, 100);
        // §8.1.3 / §8.1.4 Default: Disabled.
        assert_eq!(c.conn_timeout, None);
        assert_eq!(c.keep_alive_timeout, None);
        // §8.1.5 Default: Weighted Fair Queueing.
        assert_eq!(c.conn_scheduler, ConnScheduler::WeightedFairQueueing);
        // §8.1.6 Default: Default Profile (Best Effort).
        assert_eq!(c.conn_capacity_profile, CapacityProfile::Default);
        // §8.1.7 Default: Handover.
        assert_eq!(c.multipath_policy, MultipathPolicy::Handover);
        // §8.1.8 / §8.1.9 Default: Unlimited.
        assert_eq!(
            (
                c.min_send_rate,
                c.min_recv_rate,
                c.max_send_rate,
                c.max_recv_rate
            ),
            (None, None, None, None)
        );
        assert_eq!(c.group_conn_limit, None);
        // §8.1.10 Default: false.
        assert!(!c.isolate_session);
        // §8.2: the TCP default, false, true.
        assert_eq!(
            c.tcp_user_timeout,
            TcpUserTimeout {
                value: None,
                enabled: false,
                changeable: true
            }
        );
        let m = MessageProperties::default();
        // §9.1.3.1 infinite, §9.1.3.2 100, §9.1.3.4-5 false, §9.1.3.6 Full
        // Coverage, §9.1.3.9-10 false; ordered/reliable/profile follow the
        // Connection.
        assert_eq!(m.lifetime, None);
        assert_eq!(m.priority, 100);
        assert!(!m.safely_replayable && !m.is_final);
        assert_eq!(m.checksum_len, ChecksumCoverage::Full);
        assert!(!m.no_fragmentation && !m.no_segmentation);
        assert_eq!(
            (m.ordered, m.reliable, m.capacity_profile),
            (None, None, None)
        );
    }

    #[test]
    fn profiles_match_rfc_9622_appendix_b2() {
        // (profile, reliability, preserveOrder, congestionControl,
        //  preserveMsgBoundaries, safelyReplayable), Tables 2-4.
        let table = [
            (
                "reliable-inorder-stream",
                TransportProperties::reliable_inorder_stream(),
                Require,
                Require,
                Require,
                NoPreference,
                false,
            ),
            (
                "reliable-message",
                TransportProperties::reliable_message(),
                Require,
                Require,
                Require,
                Require,
                false,
            ),
            (
                "unreliable-datagram",
                TransportProperties::unreliable_datagram(),
                Avoid,
                Avoid,
                NoPreference,
                Require,
                true,
            ),
        ];
        for (name, p, rel, ord, cc, bounds, replay) in table {
            let s = &p.selection;
            assert_eq!(s.reliability, rel, "{name} reliability");
            assert_eq!(s.preserve_order, ord, "{name} preserveOrder");
            assert_eq!(s.congestion_control, cc, "{name} congestionControl");
            assert_eq!(
                s.preserve_msg_boundaries, bounds,
                "{name} preserveMsgBoundaries"
            );
            assert_eq!(
                p.message.safely_replayable, replay,
                "{name} safelyReplayable"
            );
            // Everything the profile does not list keeps its default.
            assert_eq!(s.multistreaming, Prefer, "{name}");
            assert_eq!(p.connection, ConnectionProperties::default(), "{name}");
        }
    }

    #[test]
    fn tcp_conflicts() {
        // RFC 9622 §6.2: "The implementation MUST ensure an outcome that is
        // consistent with all application requirements expressed using
        // Require and Prohibit". (property, preference, framer, expected)
        let table: &[(P, Preference, bool, Option<&str>)] = &[
            (P::Reliability, Require, false, None),
            (
                P::Reliability,
                Prohibit,
                false,
                Some("property reliability is Prohibited but TCP always retransmits lost data"),
            ),
            (
                P::PreserveMsgBoundaries,
                Require,
                false,
                Some(
                    "property preserveMsgBoundaries is Required but TCP cannot preserve message boundaries without a framer",
                ),
            ),
            (P::PreserveMsgBoundaries, Require, true, None),
            (P::PreserveMsgBoundaries, Prohibit, false, None),
            (
                P::PreserveMsgBoundaries,
                Prohibit,
                true,
                Some(
                    "property preserveMsgBoundaries is Prohibited but the framer on this TCP stack preserves message boundaries",
                ),
            ),
            (
                P::PerMsgReliability,
                Require,
                false,
                Some(
                    "property perMsgReliability is Required but TCP cannot relax reliability for individual messages",
                ),
            ),
            (P::PerMsgReliability, Prohibit, false, None),
            (
                P::PreserveOrder,
                Prohibit,
                false,
                Some("property preserveOrder is Prohibited but TCP always delivers data in order"),
            ),
            (P::ZeroRttMsg, Require, false, None),
            (P::ZeroRttMsg, Prohibit, false, None),
            (
                P::Multistreaming,
                Require,
                false,
                Some(
                    "property multistreaming is Required but TCP carries one stream per connection and cannot multiplex a connection group",
                ),
            ),
            (P::Multistreaming, Prohibit, false, None),
            (
                P::FullChecksumSend,
                Prohibit,
                false,
                Some(
                    "property fullChecksumSend is Prohibited but TCP always checksums whole segments",
                ),
            ),
            (
                P::FullChecksumRecv,
                Prohibit,
                false,
                Some(
                    "property fullChecksumRecv is Prohibited but TCP always checksums whole segments",
                ),
            ),
            (
                P::CongestionControl,
                Prohibit,
                false,
                Some(
                    "property congestionControl is Prohibited but TCP is always congestion controlled",
                ),
            ),
            (P::KeepAlive, Require, false, None),
            (P::KeepAlive, Prohibit, false, None),
            (P::UseTemporaryLocalAddress, Require, false, None),
            (
                P::SoftErrorNotify,
                Require,
                false,
                Some(
                    "property softErrorNotify is Required but taps does not deliver ICMP soft errors (SoftError events) on TCP connections",
                ),
            ),
            (P::ActiveReadBeforeSend, Require, false, None),
        ];
        for &(property, preference, framer, expected) in table {
            let p = TransportProperties::new().set(property, preference);
            let got = p.selection.tcp_conflict(framer).map(|c| c.to_string());
            assert_eq!(
                got.as_deref(),
                expected,
                "{property} {preference} framer={framer}"
            );
        }
        // Every default, and every profile TCP is meant to carry, fits TCP.
        assert_eq!(SelectionProperties::default().tcp_conflict(false), None);
        let stream = TransportProperties::reliable_inorder_stream();
        assert_eq!(stream.selection.tcp_conflict(false), None);
        let message = TransportProperties::reliable_message();
        assert!(message.selection.tcp_conflict(false).is_some());
        assert_eq!(message.selection.tcp_conflict(true), None);
        // unreliable-datagram only Avoids reliability, so TCP with a framer
        // stays admissible (Avoid never excludes).
        let dgram = TransportProperties::unreliable_datagram();
        assert_eq!(dgram.selection.tcp_conflict(true), None);
        // Several conflicts are all reported, in RFC order.
        let many = TransportProperties::new()
            .prohibit(P::CongestionControl)
            .prohibit(P::Reliability);
        let all = many.selection.tcp_conflicts(false);
        assert_eq!(
            all.iter().map(|c| c.property).collect::<Vec<_>>(),
            [P::Reliability, P::CongestionControl]
        );
    }

    #[test]
    fn effective_for_tcp() {
        // RFC 9622 §6.2: "Upon reading, the Preference type of a Selection
        // Property changes into Boolean".
        let wlan = Interface {
            name: "wlan0".into(),
            index: 3,
            kind: InterfaceKind::Wifi,
            addrs: vec![InterfaceAddress {
                addr: [192, 0, 2, 7].into(),
                prefix_len: 24,
                deprecated: false,
            }],
            mtu: 1500,
            expensive: true,
            constrained: false,
            up: true,
        };
        let mut p = TransportProperties::new().prefer(P::KeepAlive);
        p.connection.conn_timeout = Some(Duration::from_secs(30));
        p.connection.conn_priority = 7;
        let asked = TcpSocketOptions::for_properties(&p);
        let applied = AppliedTcpOptions {
            keep_alive: OptionResult::InEffect,
            ..AppliedTcpOptions::default()
        };
        let e = p.effective_for_tcp(
            false,
            Some(&wlan),
            &(asked, applied),
            ZeroRttOutcome::NoFirstMessage,
        );
        assert!(e.reliability && e.preserve_order && e.congestion_control);
        assert!(e.full_checksum_send && e.full_checksum_recv);
        assert!(!e.preserve_msg_boundaries && !e.multistreaming && !e.per_msg_reliability);
        assert!(e.keep_alive && !e.zero_rtt_msg && !e.soft_error_notify);
        assert!(e.active_read_before_send);
        assert_eq!(e.use_temporary_local_address, None);
        assert_eq!(e.multipath, MultipathPreference::Disabled);
        assert_eq!(e.direction, Direction::Bidirectional);
        assert_eq!(e.interface.as_deref(), Some("wlan0"));
        assert_eq!(e.interface_kind, Some(InterfaceKind::Wifi));
        assert!(e.expensive && !e.constrained);
        assert_eq!(e.conn_timeout, Some(Duration::from_secs(30)));
        assert_eq!(e.conn_priority, 7);

        let framed = TransportProperties::reliable_message().effective_for_tcp(
            true,
            None,
            &Default::default(),
            ZeroRttOutcome::NoFirstMessage,
        );
        assert!(framed.preserve_msg_boundaries);
        assert_eq!(framed.interface, None);
        assert!(!framed.expensive && !framed.keep_alive);
        assert!(framed.not_in_effect.is_empty());
    }

    #[test]
    fn zero_rtt_msg_reads_back_what_happened() {
        // RFC 9622 §6.2.5 zeroRttMsg: the application "would like to supply
        // a Message ... that will then be reliably transferred to the other
        // side before or during connection establishment". Read back, it is
        // whether that happened; asked for and not done, it says why.
        use ZeroRttOutcome as O;
        let table: [(O, bool, &str); 8] = [
            (O::Accepted, true, ""),
            (O::NoFirstMessage, false, "no first Message"),
            (O::NotSafelyReplayable, false, "safelyReplayable"),
            (O::DisallowedBySecurity, false, "disallow early data"),
            (O::EmptyFirstMessage, false, "was empty"),
            (O::NoResumableSession, false, "no resumable TLS session"),
            (O::RejectedByServer, false, "rejected the 0-RTT data"),
            (O::FastOpenUnconfirmed, false, "TCP Fast Open"),
        ];
        let wanted = TransportProperties::new().prefer(P::ZeroRttMsg);
        let unasked = TransportProperties::new();
        for (outcome, on, why) in table {
            let e = wanted.effective_for_tcp(false, None, &Default::default(), outcome);
            assert_eq!((e.zero_rtt_msg, e.zero_rtt), (on, outcome), "{outcome:?}");
            match why {
                "" => assert!(e.not_in_effect.is_empty(), "{outcome:?}"),
                why => assert!(
                    matches!(e.not_in_effect.as_slice(), [r] if r.starts_with("zeroRttMsg: ") && r.contains(why)),
                    "{outcome:?}: {:?}",
                    e.not_in_effect
                ),
            }
            // Not asked for: the same read-back, and nothing to explain.
            let e = unasked.effective_for_tcp(false, None, &Default::default(), outcome);
            assert_eq!(e.zero_rtt_msg, on, "{outcome:?}");
            assert!(e.not_in_effect.is_empty(), "{outcome:?}");
        }
    }

    #[test]
    fn keep_alive_and_user_timeout_read_back_what_the_socket_has() {
        let secs = Duration::from_secs;
        let mut p = TransportProperties::new().require(P::KeepAlive);
        p.connection.keep_alive_timeout = Some(secs(30));
        p.connection.tcp_user_timeout.enabled = true;
        p.connection.tcp_user_timeout.value = Some(secs(7));
        let asked = TcpSocketOptions::for_properties(&p);
        let read = |keep_alive, user_timeout| {
            p.effective_for_tcp(
                false,
                None,
                &(
                    asked,
                    AppliedTcpOptions {
                        keep_alive,
                        user_timeout,
                    },
                ),
                ZeroRttOutcome::NoFirstMessage,
            )
        };
        let on = read(OptionResult::InEffect, OptionResult::InEffect);
        assert!(on.keep_alive);
        assert_eq!(on.keep_alive_timeout, Some(secs(30)));
        assert_eq!(on.tcp_user_timeout, Some(secs(7)));
        assert!(on.not_in_effect.is_empty());

        // RFC 9622 §6.2: the actual value. Asked for is not in effect.
        let unknown = read(OptionResult::Unreported, OptionResult::Unreported);
        assert!(!unknown.keep_alive);
        assert_eq!(
            (unknown.keep_alive_timeout, unknown.tcp_user_timeout),
            (None, None)
        );
        assert_eq!(
            unknown.not_in_effect.len(),
            2,
            "{:?}",
            unknown.not_in_effect
        );

        let refused = read(OptionResult::InEffect, OptionResult::Refused { errno: 92 });
        assert!(refused.keep_alive);
        assert_eq!(refused.tcp_user_timeout, None);
        assert!(
            refused.not_in_effect[0].contains("tcpUserTimeout"),
            "{:?}",
            refused.not_in_effect
        );
    }

    #[test]
    fn setters_override_previous_values() {
        // RFC 9622 §6.2: "Setting a Transport Property to a value overrides
        // the previous value of this Transport Property."
        let p = TransportProperties::new()
            .prefer_interface_kind(InterfaceKind::Wifi)
            .prohibit_interface_kind(InterfaceKind::Wifi)
            .avoid_interface_name("eth0")
            .require_interface_name("eth1")
            .prohibit_expensive()
            .prohibit_constrained();
        assert_eq!(
            p.selection.interface,
            vec![
                (InterfaceSelector::Kind(InterfaceKind::Wifi), Prohibit),
                (InterfaceSelector::Name("eth0".into()), Avoid),
                (InterfaceSelector::Name("eth1".into()), Require),
            ]
        );
        assert!(p.selection.prohibit_expensive && p.selection.prohibit_constrained);
        let cleared = p.interface(InterfaceSelector::Name("eth0".into()), NoPreference);
        assert_eq!(cleared.selection.interface.len(), 2);

        let mut s = SelectionProperties::default();
        s.set_pvd("example.net", Prefer);
        s.set_pvd("example.net", Require);
        assert_eq!(s.pvd, vec![("example.net".to_owned(), Require)]);
        for property in P::ALL {
            for preference in Preference::ALL {
                s.set(property, preference);
                assert_eq!(s.get(property), preference);
            }
        }
    }

    #[test]
    fn property_names_round_trip() {
        for property in P::ALL {
            assert_eq!(property.name().parse::<P>(), Ok(property));
            assert_eq!(property.field_name().parse::<P>(), Ok(property));
        }
        let err = "reliable".parse::<P>().unwrap_err();
        assert!(err.to_string().contains("\"reliable\""));
        assert_eq!(Preference::NoPreference.to_string(), "No Preference");
        assert!(Require.admits(true) && !Require.admits(false));
        assert!(!Prohibit.admits(true) && Prohibit.admits(false));
        assert!(Avoid.admits(true) && Prefer.admits(false));
    }
}
