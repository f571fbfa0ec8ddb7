//! NAT64 in the race: the PREF64, address synthesis and extraction, and
//! prefix discovery (HEv3 editors' copy §8 "Handling NAT64 Networks").
//!
//! - **RFC 6052 §2.2** (IPv4-embedded IPv6 address format): the IPv4
//!   address sits right after a prefix of 32, 40, 48, 56, 64 or 96 bits,
//!   skipping bits 64-71 (the "u" octet, which MUST be zero); the suffix is
//!   zero. [`Pref64::synthesize`] builds such an address, [`Pref64::extract`]
//!   reads the IPv4 address back. **§2.4**'s text-representation table is
//!   the unit tests' oracle.
//! - **RFC 7050 §3** (discovery): the AAAA answers for `ipv4only.arpa` are
//!   the well-known IPv4 addresses 192.0.0.170 and 192.0.0.171 synthesized
//!   by the network's DNS64; [`discover`] finds at which prefix length each
//!   answer embeds one and so recovers the prefix. **RFC 8880 §7.2**: the
//!   name is not special to a resolver library, so the query goes to the
//!   configured servers like any other (the machine skips the hosts file
//!   and its cache for it, which only a stub would hold).
//! - **RFC 8781**: a Router Advertisement's PREF64 option gives the prefix
//!   directly; the adapter reports it as `Input::Pref64`, and it wins over
//!   discovery (HEv3 §8.1: discovery is for networks that do not advertise).
//! - **HEv3 §8.2**: AAAA answers inside a known PREF64 are DNS64 synthesis
//!   and are de-synthesized to IPv4 before sorting; **§8.3**: an IPv4
//!   destination on a path with no IPv4 route is synthesized with the
//!   PREF64, except the host- and link-scoped ranges it lists
//!   ([`never_synthesized`]). An IPv6 literal the application names is
//!   its own choice and is used as given, even inside a PREF64.
//!
//! Waiting for discovery: the first connection on an IPv6-only path sends
//! the discovery query beside its own, and asks A too (sparing an A-only
//! name a second round trip when a prefix turns up). A native AAAA answer
//! races at once, without waiting; but its race counts its DNS as
//! complete, and so gives up, only once the discovery has settled, so an
//! A-only name or an IPv4 literal waits for it. The wait is bounded by the
//! resolver's own schedule (`DnsConfig::attempts` × `timeout` per server,
//! 2 × 1 s by default) and by `connTimeout`; an RA's prefix arriving
//! meanwhile ends it at once.
//!
//! Several prefixes: RFC 7050 §3 lets a network answer with more than one
//! Pref64::/n. taps keeps every distinct one found (up to [`MAX_PREF64`],
//! in answer order) in a [`Pref64Set`]: all of them are recognised when
//! de-synthesizing, so a DNS64 that uses any of them is undone, and the
//! first is used to synthesize, so the choice is deterministic.

use core::fmt;
use core::str::FromStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smallvec::SmallVec;

use crate::dns::wire::Answer;
use crate::endpoint::HostName;
use crate::id::DnsTxnId;
use crate::interface::Interface;
use crate::race::order;
use crate::time::Instant;

/// The prefix lengths RFC 6052 §2.2 allows, in the order discovery tries
/// them.
pub(crate) const PREFIX_LENGTHS: [u8; 6] = [32, 40, 48, 56, 64, 96];

/// RFC 7050 (Terminology): the well-known IPv4 addresses that `ipv4only.arpa`
/// resolves to.
pub(crate) const WELL_KNOWN_IPV4: [Ipv4Addr; 2] =
    [Ipv4Addr::new(192, 0, 0, 170), Ipv4Addr::new(192, 0, 0, 171)];

/// RFC 7050 (Terminology): the well-known IPv4-only name asked to discover the prefix.
pub(crate) const IPV4ONLY_ARPA: &str = "ipv4only.arpa";

/// Bound on the distinct prefixes one discovery keeps; further ones are
/// ignored.
pub(crate) const MAX_PREF64: usize = 4;

/// A NAT64 prefix (RFC 6052 §2.2): an IPv6 prefix of 32, 40, 48, 56, 64 or
/// 96 bits, with every bit after the length zero, and for /96 the u octet
/// (bits 64-71) zero as well.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pref64 {
    prefix: Ipv6Addr,
    len: u8,
}

/// Why a prefix is not a PREF64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pref64Error {
    /// The length is not one of 32, 40, 48, 56, 64, 96.
    Length(u8),
    /// Bits after the prefix length are set.
    HostBits {
        /// The prefix as given.
        prefix: Ipv6Addr,
        /// Its length.
        len: u8,
    },
    /// A /96 prefix with bits 64-71 set: RFC 6052 §2.2 says they MUST be zero.
    UOctet(Ipv6Addr),
    /// The text is not `address/length`.
    Syntax,
}

impl fmt::Display for Pref64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pref64Error::Length(len) => write!(
                f,
                "a NAT64 prefix length must be 32, 40, 48, 56, 64 or 96 (RFC 6052 §2.2), not {len}"
            ),
            Pref64Error::HostBits { prefix, len } => write!(
                f,
                "the NAT64 prefix {prefix}/{len} has bits set after its length; write the network, e.g. {}/{len}",
                mask(*prefix, *len)
            ),
            Pref64Error::UOctet(prefix) => write!(
                f,
                "the NAT64 prefix {prefix}/96 sets bits 64-71, which RFC 6052 §2.2 requires to be zero"
            ),
            Pref64Error::Syntax => {
                f.write_str("a NAT64 prefix is written as an IPv6 prefix, e.g. 64:ff9b::/96")
            }
        }
    }
}

impl std::error::Error for Pref64Error {}

fn mask(addr: Ipv6Addr, len: u8) -> Ipv6Addr {
    let bits = u128::from(addr);
    let kept = if len == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - u32::from(len)))
    };
    Ipv6Addr::from(kept)
}

/// Where the 32 IPv4 bits sit for a prefix length: the octet indexes of the
/// address, skipping the u octet (index 8), per RFC 6052 §2.2's figure.
fn v4_octets(len: u8) -> [usize; 4] {
    let start = usize::from(len / 8);
    let mut out = [0; 4];
    let mut i = start;
    for slot in &mut out {
        if i == 8 {
            i += 1;
        }
        *slot = i;
        i += 1;
    }
    out
}

impl Pref64 {
    /// RFC 6052 §2.1: the Well-Known Prefix 64:ff9b::/96.
    pub const WELL_KNOWN: Pref64 = Pref64 {
        prefix: Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0),
        len: 96,
    };

    /// A PREF64 of `prefix/len`, checked as the type's doc says.
    pub fn new(prefix: Ipv6Addr, len: u8) -> Result<Self, Pref64Error> {
        if !PREFIX_LENGTHS.contains(&len) {
            return Err(Pref64Error::Length(len));
        }
        if mask(prefix, len) != prefix {
            return Err(Pref64Error::HostBits { prefix, len });
        }
        if len == 96 && prefix.octets()[8] != 0 {
            return Err(Pref64Error::UOctet(prefix));
        }
        Ok(Pref64 { prefix, len })
    }

    /// The prefix bits (the rest zero).
    pub fn prefix(&self) -> Ipv6Addr {
        self.prefix
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `addr` begins with this prefix.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        mask(addr, self.len) == self.prefix
    }

    /// RFC 6052 §2.2: the IPv4-embedded IPv6 address of `v4`, with the u
    /// octet and the suffix zero.
    pub fn synthesize(&self, v4: Ipv4Addr) -> Ipv6Addr {
        let mut octets = self.prefix.octets();
        for (at, byte) in v4_octets(self.len).into_iter().zip(v4.octets()) {
            octets[at] = byte;
        }
        Ipv6Addr::from(octets)
    }

    /// RFC 6052 §2.2 read backwards: the IPv4 address `addr` embeds, when
    /// it lies in this prefix and its u octet is zero (an address with the
    /// u octet set is not IPv4-embedded, whatever its prefix). The suffix
    /// is not checked: RFC 6052 reserves it, and a translator ignores it.
    pub fn extract(&self, addr: Ipv6Addr) -> Option<Ipv4Addr> {
        if !self.contains(addr) {
            return None;
        }
        let octets = addr.octets();
        if octets[8] != 0 {
            return None;
        }
        let [a, b, c, d] = v4_octets(self.len).map(|i| octets[i]);
        Some(Ipv4Addr::new(a, b, c, d))
    }
}

impl fmt::Display for Pref64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.prefix, self.len)
    }
}

impl FromStr for Pref64 {
    type Err = Pref64Error;

    /// `64:ff9b::/96`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s.trim().split_once('/').ok_or(Pref64Error::Syntax)?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| Pref64Error::Syntax)?;
        let len: u8 = len.parse().map_err(|_| Pref64Error::Syntax)?;
        Pref64::new(addr, len)
    }
}

/// Where a PREF64 came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Pref64Source {
    /// [`Config::pref64`](crate::Config::pref64).
    Configured,
    /// A Router Advertisement's PREF64 option (RFC 8781), reported as
    /// `Input::Pref64`.
    RouterAdvertisement,
    /// The AAAA answers for `ipv4only.arpa` (RFC 7050 §3).
    Discovered,
}

impl fmt::Display for Pref64Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pref64Source::Configured => "configured",
            Pref64Source::RouterAdvertisement => "router advertisement, RFC 8781",
            Pref64Source::Discovered => "ipv4only.arpa, RFC 7050",
        })
    }
}

/// HEv3 §8.3: IPv4 ranges scoped to a host or link, which are never
/// synthesized (0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, 255.255.255.255/32).
pub(crate) fn never_synthesized(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    a == 0 || a == 127 || (a == 169 && b == 254) || v4.is_broadcast()
}

/// The PREF64s known for a network: the first synthesizes, all are
/// recognised (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Pref64Set {
    list: SmallVec<[Pref64; 1]>,
}

impl Pref64Set {
    /// One prefix.
    pub(crate) fn one(prefix: Pref64) -> Self {
        Pref64Set {
            list: SmallVec::from_buf([prefix]),
        }
    }

    /// Every prefix, the synthesizing one first.
    #[cfg(test)]
    pub(crate) fn prefixes(&self) -> &[Pref64] {
        &self.list
    }

    /// The prefix that synthesizes.
    pub(crate) fn primary(&self) -> Pref64 {
        self.list[0]
    }

    /// HEv3 §8.2: the IPv4 address an AAAA answer stands for when it lies in
    /// any known prefix (DNS64 synthesis), else the address as it is.
    pub(crate) fn desynthesize(&self, addr: IpAddr) -> IpAddr {
        match addr {
            IpAddr::V6(v6) => self
                .list
                .iter()
                .find_map(|p| p.extract(v6))
                .map_or(addr, IpAddr::V4),
            IpAddr::V4(_) => addr,
        }
    }

    /// HEv3 §8.3: the IPv6 destination for `v4` on a path with no IPv4
    /// route; `None` for the ranges that are never synthesized.
    pub(crate) fn synthesize(&self, v4: Ipv4Addr) -> Option<Ipv6Addr> {
        (!never_synthesized(v4)).then(|| self.primary().synthesize(v4))
    }
}

/// The name slot of the discovery query among a connection's DNS
/// transactions (slot 0 is the endpoint's name, `1 + i` SVCB targets).
pub(crate) const DISCOVERY_SLOT: u8 = u8::MAX;

/// The machine's NAT64 knowledge: a configured prefix, an advertised one
/// (RFC 8781) and a discovered one (RFC 7050), in that order of trust, and
/// the state of discovery.
///
/// Discovery runs when a connection starts on an IPv6-only path (HEv3
/// §4.1: IPv6 connectivity without IPv4) and no prefix is known (HEv3
/// §8.1: only when the network does not advertise one). Its query belongs
/// to the connection that needed it first but outlives it: every
/// connection waiting on an IPv6-only path takes the result. A discovery
/// that finds nothing is not repeated until the network changes; a found
/// prefix lasts for its answer's TTL, and the network changing (an
/// interface's addresses) forgets it and cancels a discovery in flight.
#[derive(Debug)]
pub(crate) struct Nat64State {
    configured: Option<Pref64>,
    advertised: Option<Pref64>,
    discovered: Option<(Pref64Set, Instant)>,
    discovery: Discovery,
    /// `ipv4only.arpa`, asked by every discovery.
    pub(crate) qname: HostName,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Discovery {
    Idle,
    /// The query is out (its transaction, once sent).
    Running(Option<DnsTxnId>),
    /// It found no prefix on this network.
    Failed,
}

impl Nat64State {
    pub(crate) fn new(configured: Option<Pref64>) -> Self {
        Nat64State {
            configured,
            advertised: None,
            discovered: None,
            discovery: Discovery::Idle,
            qname: HostName::new(IPV4ONLY_ARPA).expect("ipv4only.arpa is a valid host name"),
        }
    }

    /// The prefixes in force at `now` and where they came from.
    pub(crate) fn known(&self, now: Instant) -> Option<(Pref64Set, Pref64Source)> {
        if let Some(p) = self.configured {
            return Some((Pref64Set::one(p), Pref64Source::Configured));
        }
        if let Some(p) = self.advertised {
            return Some((Pref64Set::one(p), Pref64Source::RouterAdvertisement));
        }
        self.discovered
            .as_ref()
            // Through the instant its TTL ends, so an answer with TTL 0
            // (dnsmasq's default for its own records) still serves the
            // races that waited for it.
            .filter(|(_, until)| now <= *until)
            .map(|(set, _)| (set.clone(), Pref64Source::Discovered))
    }

    /// Whether a connection whose paths are IPv6-only (`v6_only`) should
    /// start a discovery now.
    pub(crate) fn wants_discovery(&self, now: Instant, v6_only: bool) -> bool {
        v6_only && self.known(now).is_none() && self.discovery == Discovery::Idle
    }

    /// A discovery is out.
    pub(crate) fn pending(&self) -> bool {
        matches!(self.discovery, Discovery::Running(_))
    }

    pub(crate) fn started(&mut self) {
        self.discovery = Discovery::Running(None);
    }

    /// The discovery query went out as `txn`.
    pub(crate) fn sent(&mut self, txn: DnsTxnId) {
        if self.pending() {
            self.discovery = Discovery::Running(Some(txn));
        }
    }

    /// The discovery settled with `answer` (`None`: no answer). Returns
    /// false when no discovery was out (it was cancelled meanwhile).
    pub(crate) fn settled(&mut self, now: Instant, answer: Option<&Answer>) -> bool {
        if !self.pending() {
            return false;
        }
        let found = match answer {
            Some(Answer::Addresses { addrs, ttl }) => discover(addrs).map(|set| {
                let until = now + core::time::Duration::from_secs(u64::from(*ttl));
                (set, until)
            }),
            _ => None,
        };
        self.discovery = if found.is_some() {
            Discovery::Idle
        } else {
            Discovery::Failed
        };
        self.discovered = found;
        true
    }

    /// An RA's PREF64 option (RFC 8781) arrived, or lapsed (`None`).
    pub(crate) fn set_advertised(&mut self, prefix: Option<Pref64>) {
        self.advertised = prefix;
    }

    /// The network changed: what was discovered may not hold. Returns the
    /// transaction of a discovery in flight, to cancel.
    pub(crate) fn network_changed(&mut self) -> Option<DnsTxnId> {
        self.discovered = None;
        match std::mem::replace(&mut self.discovery, Discovery::Idle) {
            Discovery::Running(txn) => txn,
            _ => None,
        }
    }
}

/// NAT64 as one race sees it: the prefixes to use, and whether a
/// discovery is still out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RaceNat64 {
    pub(crate) prefixes: Option<Pref64Set>,
    pub(crate) pending: bool,
}

impl RaceNat64 {
    /// HEv3 §8.2: the address to sort, group and remember.
    pub(crate) fn logical(&self, addr: IpAddr) -> IpAddr {
        self.prefixes
            .as_ref()
            .map_or(addr, |p| p.desynthesize(addr))
    }

    /// HEv3 §8.3: the synthesized destination for `dest` over `path`, when
    /// `dest` is IPv4, the path has no IPv4 route (the race's test for one:
    /// an IPv4 source address, as `order::reachable` checks) and can reach
    /// the synthesized IPv6 address. The default path (no interface list)
    /// leaves routing to the kernel, so nothing is synthesized for it.
    pub(crate) fn via(&self, dest: IpAddr, path: Option<&Interface>) -> Option<Ipv6Addr> {
        let (IpAddr::V4(v4), Some(iface)) = (dest, path) else {
            return None;
        };
        if order::reachable(dest, Some(iface)) {
            return None;
        }
        let v6 = self.prefixes.as_ref()?.synthesize(v4)?;
        order::reachable(IpAddr::V6(v6), Some(iface)).then_some(v6)
    }
}

/// RFC 7050 §3: the PREF64s that the AAAA answers for `ipv4only.arpa`
/// reveal, in answer order without repeats, at most [`MAX_PREF64`]; `None`
/// when no answer embeds a well-known address (the network has no DNS64,
/// or the answers are not synthesis).
///
/// An answer may embed a well-known address at more than one of the six
/// positions (2001:db8:c000:aa::c000:aa does at /32 and /96). Such an
/// answer counts only at the positions where another answer of the set
/// embeds the other well-known address under the same prefix, which is
/// what a DNS64 that synthesized both A records of `ipv4only.arpa`
/// returns; with no such confirmation it is ambiguous, and skipped rather
/// than guessed.
pub(crate) fn discover(answers: &[IpAddr]) -> Option<Pref64Set> {
    let positions = |v6: Ipv6Addr| -> SmallVec<[(Pref64, Ipv4Addr); 2]> {
        PREFIX_LENGTHS
            .iter()
            .filter_map(|&len| {
                let p = Pref64::new(mask(v6, len), len).ok()?;
                let v4 = p.extract(v6)?;
                WELL_KNOWN_IPV4.contains(&v4).then_some((p, v4))
            })
            .collect()
    };
    let v6s = || {
        answers.iter().filter_map(|a| match a {
            IpAddr::V6(v6) => Some(*v6),
            IpAddr::V4(_) => None,
        })
    };
    let mut list: SmallVec<[Pref64; 1]> = SmallVec::new();
    for v6 in v6s() {
        let found = positions(v6);
        let chosen: SmallVec<[Pref64; 2]> = if found.len() <= 1 {
            found.iter().map(|(p, _)| *p).collect()
        } else {
            found
                .iter()
                .filter(|(p, wka)| {
                    v6s().any(|other| {
                        other != v6
                            && p.extract(other)
                                .is_some_and(|o| o != *wka && WELL_KNOWN_IPV4.contains(&o))
                    })
                })
                .map(|(p, _)| *p)
                .collect()
        };
        if chosen.len() != 1 {
            continue;
        }
        if !list.contains(&chosen[0]) && list.len() < MAX_PREF64 {
            list.push(chosen[0]);
        }
    }
    (!list.is_empty()).then_some(Pref64Set { list })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// RFC 6052 §2.4, Table 1 ("Text Representation of IPv4-Embedded IPv6
    /// Addresses"), every row, as printed:
    ///
    /// ```text
    /// | Network-Specific Prefix | IPv4 address | IPv4-embedded IPv6 address   |
    /// | 2001:db8::/32           | 192.0.2.33   | 2001:db8:c000:221::          |
    /// | 2001:db8:100::/40       | 192.0.2.33   | 2001:db8:1c0:2:21::          |
    /// | 2001:db8:122::/48       | 192.0.2.33   | 2001:db8:122:c000:2:2100::   |
    /// | 2001:db8:122:300::/56   | 192.0.2.33   | 2001:db8:122:3c0:0:221::     |
    /// | 2001:db8:122:344::/64   | 192.0.2.33   | 2001:db8:122:344:c0:2:2100:0 |
    /// | 2001:db8:122:344::/96   | 192.0.2.33   | 2001:db8:122:344::192.0.2.33 |
    /// ```
    ///
    /// plus §2.4's Well-Known Prefix example, 64:ff9b::/96 with 192.0.2.33
    /// giving 64:ff9b::192.0.2.33.
    const RFC6052_TABLE: [(&str, &str, &str); 7] = [
        ("2001:db8::/32", "192.0.2.33", "2001:db8:c000:221::"),
        ("2001:db8:100::/40", "192.0.2.33", "2001:db8:1c0:2:21::"),
        (
            "2001:db8:122::/48",
            "192.0.2.33",
            "2001:db8:122:c000:2:2100::",
        ),
        (
            "2001:db8:122:300::/56",
            "192.0.2.33",
            "2001:db8:122:3c0:0:221::",
        ),
        (
            "2001:db8:122:344::/64",
            "192.0.2.33",
            "2001:db8:122:344:c0:2:2100:0",
        ),
        (
            "2001:db8:122:344::/96",
            "192.0.2.33",
            "2001:db8:122:344::192.0.2.33",
        ),
        ("64:ff9b::/96", "192.0.2.33", "64:ff9b::192.0.2.33"),
    ];

    #[test]
    fn rfc6052_table_synthesizes_extracts_and_prints() {
        for (prefix, v4, embedded) in RFC6052_TABLE {
            let p: Pref64 = prefix.parse().unwrap();
            let v4: Ipv4Addr = v4.parse().unwrap();
            let want = v6(embedded);
            assert_eq!(p.synthesize(v4), want, "synthesize {v4} in {prefix}");
            assert_eq!(
                p.extract(want),
                Some(v4),
                "extract {embedded} from {prefix}"
            );
            assert_eq!(p.to_string(), prefix);
        }
    }

    #[test]
    fn rfc6052_u_octet_is_zero_and_skipped() {
        // RFC 6052 §2.2: "Bits 64 to 71 of the address are reserved ... These
        // bits MUST be set to zero." Every length below 96 straddles or
        // passes them, so an all-ones IPv4 address shows where they fall.
        for len in [32u8, 40, 48, 56, 64] {
            let p = Pref64::new(mask(v6("2001:db8:ffff:ffff:ffff:ffff::"), len), len).unwrap();
            let a = p.synthesize(Ipv4Addr::BROADCAST);
            assert_eq!(a.octets()[8], 0, "/{len}: u octet");
            // 32 IPv4 bits after the prefix and the u octet, then a zero suffix.
            let ones = u128::from(a) & !u128::from(p.prefix());
            assert_eq!(
                ones.count_ones(),
                32,
                "/{len}: only the IPv4 bits are added"
            );
            let mut set_u = a.octets();
            set_u[8] = 1;
            assert_eq!(
                p.extract(Ipv6Addr::from(set_u)),
                None,
                "/{len}: u octet set"
            );
        }
    }

    #[test]
    fn extract_outside_the_prefix_is_none() {
        let p = Pref64::WELL_KNOWN;
        assert_eq!(p.extract(v6("2001:db8::c000:221")), None);
        assert_eq!(p.extract(v6("64:ff9b:1::c000:221")), None);
    }

    #[test]
    fn bad_prefixes_are_errors_that_say_why() {
        let cases: [(&str, Pref64Error); 5] = [
            ("64:ff9b::/95", Pref64Error::Length(95)),
            ("64:ff9b::/128", Pref64Error::Length(128)),
            (
                "64:ff9b::1/96",
                Pref64Error::HostBits {
                    prefix: v6("64:ff9b::1"),
                    len: 96,
                },
            ),
            (
                "64:ff9b:0:0:100::/96",
                Pref64Error::UOctet(v6("64:ff9b:0:0:100::")),
            ),
            ("64:ff9b::", Pref64Error::Syntax),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Pref64>(), Err(want), "{text}");
            assert!(!want.to_string().is_empty());
        }
        assert!(
            Pref64Error::HostBits {
                prefix: v6("64:ff9b::1"),
                len: 96
            }
            .to_string()
            .contains("64:ff9b::/96")
        );
    }

    #[test]
    fn hev3_8_3_scoped_ranges_are_never_synthesized() {
        // HEv3 §8.3: "Some IPv4 prefixes are scoped to a given host or network
        // and do not require synthesis, such as 0.0.0.0/8, 127.0.0.0/8,
        // 169.254.0.0/16, and 255.255.255.255/32."
        let set = Pref64Set::one(Pref64::WELL_KNOWN);
        for (v4, never) in [
            ("0.0.0.0", true),
            ("0.255.255.255", true),
            ("127.0.0.1", true),
            ("127.255.0.1", true),
            ("169.254.1.1", true),
            ("255.255.255.255", true),
            ("1.0.0.0", false),
            ("126.255.255.255", false),
            ("128.0.0.0", false),
            ("169.253.1.1", false),
            ("169.255.0.0", false),
            ("255.255.255.254", false),
            ("192.0.2.1", false),
        ] {
            let v4: Ipv4Addr = v4.parse().unwrap();
            assert_eq!(never_synthesized(v4), never, "{v4}");
            assert_eq!(set.synthesize(v4).is_none(), never, "{v4}");
        }
        assert_eq!(
            set.synthesize(Ipv4Addr::new(192, 0, 2, 1)),
            Some(v6("64:ff9b::c000:201"))
        );
    }

    #[test]
    fn desynthesize_recognises_every_known_prefix() {
        let a: Pref64 = "2001:db8:64::/96".parse().unwrap();
        let set = Pref64Set {
            list: SmallVec::from_vec(vec![Pref64::WELL_KNOWN, a]),
        };
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(set.desynthesize("64:ff9b::c000:201".parse().unwrap()), v4);
        assert_eq!(
            set.desynthesize("2001:db8:64::c000:201".parse().unwrap()),
            v4
        );
        let native: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(set.desynthesize(native), native);
        assert_eq!(set.desynthesize(v4), v4);
        // Synthesis uses the first only.
        assert_eq!(
            set.synthesize(Ipv4Addr::new(192, 0, 2, 1)),
            Some(v6("64:ff9b::c000:201"))
        );
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn rfc7050_discovery_at_every_length() {
        // RFC 7050 §3: the WKAs 192.0.0.170/171 are found in the AAAA
        // answers at the position of the prefix length used.
        for len in PREFIX_LENGTHS {
            let p = Pref64::new(mask(v6("2001:db8:122:344::"), len), len).unwrap();
            let answers: Vec<IpAddr> = WELL_KNOWN_IPV4
                .iter()
                .map(|w| IpAddr::V6(p.synthesize(*w)))
                .collect();
            assert_eq!(discover(&answers), Some(Pref64Set::one(p)), "/{len}");
            // One answer alone is enough.
            assert_eq!(discover(&answers[1..]), Some(Pref64Set::one(p)), "/{len}");
        }
    }

    #[test]
    fn rfc7050_discovery_table() {
        let wkp = Pref64::WELL_KNOWN;
        let other: Pref64 = "2001:db8:64::/96".parse().unwrap();
        // (what, the AAAA answers, the prefixes found)
        type Case = (&'static str, Vec<IpAddr>, Option<Vec<Pref64>>);
        let cases: [Case; 7] = [
            (
                "the usual DNS64",
                ips(&["64:ff9b::c000:aa", "64:ff9b::c000:ab"]),
                Some(vec![wkp]),
            ),
            ("no answers", ips(&[]), None),
            (
                "native addresses only",
                ips(&["2001:db8::1", "192.0.0.170"]),
                None,
            ),
            (
                "two prefixes, in answer order",
                ips(&[
                    "2001:db8:64::c000:aa",
                    "64:ff9b::c000:aa",
                    "64:ff9b::c000:ab",
                ]),
                Some(vec![other, wkp]),
            ),
            (
                "a non-synthesized answer beside a synthesized one",
                ips(&["2001:db8::1", "64:ff9b::c000:ab"]),
                Some(vec![wkp]),
            ),
            // 2001:db8:c000:aa::c000:aa embeds 192.0.0.170 at /32 and /96.
            ("ambiguous alone", ips(&["2001:db8:c000:aa::c000:aa"]), None),
            (
                // The .171 answer places the prefix at /96.
                "ambiguity settled by the other WKA",
                ips(&["2001:db8:c000:aa::c000:aa", "2001:db8:c000:aa::c000:ab"]),
                Some(vec!["2001:db8:c000:aa::/96".parse().unwrap()]),
            ),
        ];
        for (what, answers, want) in cases {
            let got = discover(&answers).map(|s| s.prefixes().to_vec());
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn discovery_is_bounded() {
        let answers: Vec<IpAddr> = (0..10u16)
            .map(|i| {
                IpAddr::V6(
                    Pref64::new(Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 0), 96)
                        .unwrap()
                        .synthesize(WELL_KNOWN_IPV4[0]),
                )
            })
            .collect();
        let set = discover(&answers).unwrap();
        assert_eq!(set.prefixes().len(), MAX_PREF64);
        assert_eq!(set.primary().prefix(), v6("2001:db8::"));
    }
}
