//! The Connection Attempt Delay from round-trip estimates: HEv3 (editors'
//! copy) §6, with RFC 6298 §2 for the estimator and its retransmission
//! timeout.
//!
//! HEv3 §6: "A more nuanced implementation's delay should correspond to the
//! time when the previous attempt is retrying its handshake (such as sending
//! a second TCP SYN ...), based on the retransmission timer ... If the client
//! has historical RTT data gathered from other connections to the same host
//! or prefix, it can use this information to influence its delay. Note that
//! this algorithm should only try to approximate the time of the first
//! handshake packet retransmission".
//!
//! So the delay after an attempt to address X is the RFC 6298 retransmission
//! timeout an established connection to X would run with:
//! `RTO = SRTT + max(G, 4·RTTVAR)` (RFC 6298 §2.3), with G = 1 ms (RFC 9002
//! §6.2.1's `kGranularity`). Two departures from RFC 6298, both because the
//! draft asks for the *first* retransmission of a connection whose path is
//! already known, not for a timer that must be safe with no knowledge:
//!
//! - no 1 s floor (RFC 6298 §2.4 rounds every RTO up to 1 s; that is the
//!   kernel's SYN timer, which the draft wants the delay to beat); HEv3 §6's
//!   Minimum Connection Attempt Delay (100 ms by default, never under 10 ms)
//!   takes its place, and the 2 s Maximum caps it;
//! - no exponential backoff ("not any further retransmissions").
//!
//! The estimate comes from, in this order (see
//! [`History::attempt_rtt`](super::History::attempt_rtt)):
//!
//! 1. handshakes this machine finished on the same path to the same
//!    destination *prefix*: IPv6 /64, IPv4 /24 ([`rtt_prefix`]);
//! 2. the kernel's per-destination TCP metrics (Linux `tcp_metrics`), which
//!    the adapter reports with [`Input::KernelRtts`](crate::Input::KernelRtts):
//!    they cover connections other processes made; for the destination
//!    itself, then for its prefix;
//! 3. handshakes this machine finished on the same path to any destination,
//!    since the access link often dominates the round trip; then the
//!    kernel's metrics from the path's local addresses to any destination.
//!
//! With none of these, the configured delay (250 ms by default) is used.

use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// RFC 9002 §6.2.1 `kGranularity`, standing in for RFC 6298's clock
/// granularity G: the core's clock is exact, so G only keeps a
/// zero-variance estimate from timing out exactly at SRTT.
pub const RTT_GRANULARITY: Duration = Duration::from_millis(1);

/// HEv3 §6: "The recommended minimum value is 100 milliseconds, which is
/// referred to as the 'Minimum Connection Attempt Delay'".
pub const DEFAULT_MIN_ATTEMPT_DELAY: Duration = Duration::from_millis(100);

/// The IPv6 prefix length whose destinations share an RTT estimate: /64 is
/// the size of one IPv6 subnet (RFC 4291 §2.5.4, RFC 7421), so the hosts of
/// one site or server farm sit behind it and share its path.
pub const RTT_PREFIX_V6: u8 = 64;
/// The IPv4 prefix length whose destinations share an RTT estimate: /24 is
/// the longest prefix routed between networks, so addresses inside one /24
/// reach the client by the same route.
pub const RTT_PREFIX_V4: u8 = 24;

/// The prefix of `addr` whose destinations share an RTT estimate, as an
/// address with the host bits cleared.
pub fn rtt_prefix(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX << (32 - u32::from(RTT_PREFIX_V4));
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX << (128 - u32::from(RTT_PREFIX_V6));
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

/// The prefix length [`rtt_prefix`] uses for `addr`'s family.
pub fn rtt_prefix_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        RTT_PREFIX_V4
    } else {
        RTT_PREFIX_V6
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// An RFC 6298 §2 round-trip estimate: smoothed RTT and its variation, in
/// microseconds, with the number of samples behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RttEstimate {
    /// SRTT, µs.
    pub srtt_us: u32,
    /// RTTVAR, µs.
    pub rttvar_us: u32,
    /// Samples folded in (saturating).
    pub samples: u16,
}

impl RttEstimate {
    /// RFC 6298 §2.2: the first measurement R gives SRTT = R, RTTVAR = R/2.
    pub fn first(rtt: Duration) -> Self {
        let r = micros(rtt);
        RttEstimate {
            srtt_us: r,
            rttvar_us: r / 2,
            samples: 1,
        }
    }

    /// A kernel's estimate taken as is (it already smoothed its samples).
    pub fn from_kernel(srtt: Duration, rttvar: Duration) -> Self {
        RttEstimate {
            srtt_us: micros(srtt),
            rttvar_us: micros(rttvar),
            samples: 1,
        }
    }

    /// RFC 6298 §2.3: RTTVAR = 3/4 RTTVAR + 1/4 |SRTT − R'|, then
    /// SRTT = 7/8 SRTT + 1/8 R' (in that order).
    pub fn update(&mut self, rtt: Duration) {
        let r = u64::from(micros(rtt));
        let srtt = u64::from(self.srtt_us);
        let var = u64::from(self.rttvar_us);
        let diff = srtt.abs_diff(r);
        let var = (3 * var + diff) / 4;
        let srtt = (7 * srtt + r) / 8;
        self.rttvar_us = u32::try_from(var).unwrap_or(u32::MAX);
        self.srtt_us = u32::try_from(srtt).unwrap_or(u32::MAX);
        self.samples = self.samples.saturating_add(1);
    }

    /// RFC 6298 §2.3 `RTO = SRTT + max(G, K·RTTVAR)` with K = 4 and
    /// G = [`RTT_GRANULARITY`]; no 1 s floor (see the module doc).
    pub fn rto(&self) -> Duration {
        let var = Duration::from_micros(u64::from(self.rttvar_us) * 4);
        Duration::from_micros(u64::from(self.srtt_us)) + var.max(RTT_GRANULARITY)
    }
}

/// Where a Connection Attempt Delay came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DelaySource {
    /// No RTT data: the configured delay.
    Configured,
    /// Handshakes this machine finished to the destination's prefix
    /// ([`rtt_prefix`]) on the same path.
    Prefix {
        /// Samples behind the estimate.
        samples: u16,
    },
    /// The kernel's TCP metrics for the destination.
    Kernel,
    /// The kernel's TCP metrics for other destinations in its prefix.
    KernelPrefix {
        /// Destinations behind the estimate.
        samples: u16,
    },
    /// Handshakes this machine finished on the same path, to any
    /// destination.
    Path {
        /// Samples behind the estimate.
        samples: u16,
    },
    /// The kernel's TCP metrics for any destination, from the path's local
    /// addresses.
    KernelPath {
        /// Destinations behind the estimate.
        samples: u16,
    },
}

/// The Connection Attempt Delay chosen after one attempt, for the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AttemptDelay {
    /// The delay used, µs: the RTO within the Minimum and Maximum.
    pub delay_us: u32,
    /// The RFC 6298 RTO before the bounds, µs (0 for
    /// [`DelaySource::Configured`]).
    pub rto_us: u32,
    /// Where it came from.
    pub source: DelaySource,
}

impl AttemptDelay {
    /// The delay used.
    pub fn delay(&self) -> Duration {
        Duration::from_micros(u64::from(self.delay_us))
    }

    /// The delay from `estimate` within `[min, max]`, or `configured` when
    /// there is no estimate.
    pub(crate) fn choose(
        estimate: Option<(RttEstimate, DelaySource)>,
        configured: Duration,
        min: Duration,
        max: Duration,
    ) -> AttemptDelay {
        match estimate {
            None => AttemptDelay {
                delay_us: micros(configured),
                rto_us: 0,
                source: DelaySource::Configured,
            },
            Some((e, source)) => {
                let rto = e.rto();
                AttemptDelay {
                    delay_us: micros(rto.clamp(min, max)),
                    rto_us: micros(rto),
                    source,
                }
            }
        }
    }
}

/// One destination the kernel keeps TCP metrics for (Linux `tcp_metrics`,
/// `ip tcp_metrics show`), reported with
/// [`Input::KernelRtts`](crate::Input::KernelRtts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KernelRtt {
    /// The local (source) address of the connections measured, when the
    /// kernel keys its metrics by it; it ties the entry to the interface
    /// holding that address.
    pub local: Option<IpAddr>,
    /// The destination.
    pub remote: IpAddr,
    /// The kernel's smoothed RTT.
    pub rtt: Duration,
    /// The kernel's RTT variation.
    pub rttvar: Duration,
    /// How long ago the kernel last updated the entry.
    pub age: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimator_follows_rfc6298() {
        // RFC 6298 §2.2: first sample R: SRTT = R, RTTVAR = R/2, so
        // RTO = R + 4·R/2 = 3R.
        let mut e = RttEstimate::first(Duration::from_millis(40));
        assert_eq!((e.srtt_us, e.rttvar_us), (40_000, 20_000));
        assert_eq!(e.rto(), Duration::from_millis(120));
        // §2.3 with R' = 40 ms: RTTVAR = 3/4·20 + 1/4·0 = 15, SRTT = 40.
        e.update(Duration::from_millis(40));
        assert_eq!((e.srtt_us, e.rttvar_us, e.samples), (40_000, 15_000, 2));
        assert_eq!(e.rto(), Duration::from_millis(100));
        // R' = 80 ms: RTTVAR = 3/4·15 + 1/4·40 = 21.25, SRTT = 35 + 10 = 45.
        e.update(Duration::from_millis(80));
        assert_eq!((e.srtt_us, e.rttvar_us), (45_000, 21_250));
        // A steady path converges to SRTT + G, never to SRTT itself.
        let mut s = RttEstimate::first(Duration::from_millis(30));
        for _ in 0..200 {
            s.update(Duration::from_millis(30));
        }
        assert_eq!(s.rto(), Duration::from_millis(31));
    }

    #[test]
    fn prefixes_clear_the_host_bits() {
        let p = |s: &str| rtt_prefix(s.parse().unwrap()).to_string();
        assert_eq!(p("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
        assert_eq!(p("192.0.2.77"), "192.0.2.0");
        assert_eq!(rtt_prefix_len("::1".parse().unwrap()), 64);
        assert_eq!(rtt_prefix_len("10.0.0.1".parse().unwrap()), 24);
    }

    #[test]
    fn huge_values_saturate_instead_of_panicking() {
        let mut e = RttEstimate::first(Duration::from_secs(1 << 40));
        e.update(Duration::MAX);
        assert_eq!(e.srtt_us, u32::MAX);
        let d = AttemptDelay::choose(
            Some((e, DelaySource::Kernel)),
            Duration::from_millis(250),
            Duration::from_millis(100),
            Duration::from_secs(2),
        );
        assert_eq!(d.delay(), Duration::from_secs(2));
    }
}
