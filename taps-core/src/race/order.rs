//! Candidate ordering: RFC 6724 §6 destination address selection, the HEv3
//! history rules, and address family interleaving.
//!
//! Implements, for the addresses of one group (one path, one protocol option):
//!
//! - RFC 6724 §6 rules that need no routing table: 1 (avoid unusable: no
//!   source address of the family on the path), 2 (matching scope), 3 (avoid
//!   deprecated sources), 5 (matching label), 6 (higher precedence), 8
//!   (smaller scope) and 9 (longest matching prefix, capped at the source's
//!   prefix length as RFC 6724 §2.2 defines `CommonPrefixLen`). Rules 4 (home
//!   addresses) and 7 (native transport) need information no adapter reports
//!   and are skipped; both only reorder addresses that tie on every
//!   rule before them.
//! - HEv3 §5.3 ("Sorting Destination Endpoints Within Groups"): between rules 8
//!   and 9, prefer lower historical RTT, then addresses used before.
//! - HEv3 §5.3 interleaving with the Preferred ("First") Address Family Count.
//!
//! Source address selection is simplified RFC 6724 §5 (rules 1, 2, 3, 6, 8);
//! it is only used to rank destinations, the kernel still picks the real
//! source when the socket is not bound.
//!
//! Each candidate gets a [`SortKey`] once, when it enters the race; sorting is
//! then a plain lexicographic comparison, which is a total order (the pairwise
//! rules of RFC 6724 are each "A has property P and B has not", which is the
//! same as comparing P as a boolean).

use std::net::{IpAddr, Ipv6Addr};

use crate::interface::{Interface, InterfaceAddress};

/// RFC 6724 §3.1 scope values.
mod scope {
    pub(super) const LINK_LOCAL: u8 = 0x2;
    pub(super) const SITE_LOCAL: u8 = 0x5;
    pub(super) const GLOBAL: u8 = 0xe;
}

/// The ranking facts of one destination, compared lexicographically; smaller
/// sorts first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SortKey {
    unusable: bool,
    scope_mismatch: bool,
    deprecated_source: bool,
    label_mismatch: bool,
    neg_precedence: i16,
    scope: u8,
    /// HEv3 §5.3 RTT rule (between RFC 6724 rules 8 and 9); `u32::MAX` = unknown.
    rtt_micros: u32,
    /// HEv3 §5.3 "used before" rule.
    unused_before: bool,
    neg_common_prefix: i16,
}

/// What the history knows about one destination on one path, for sorting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryHint {
    /// A recent successful connection's RTT, in microseconds.
    pub rtt_micros: Option<u32>,
    /// A connection to this destination succeeded before.
    pub used_before: bool,
    /// The last attempt failed or was left unfinished: try it after the others.
    pub demoted: bool,
}

/// RFC 6724 §2.1 default policy table: (prefix, length, precedence, label).
const POLICY_TABLE: [(Ipv6Addr, u8, i16, u8); 9] = [
    (Ipv6Addr::LOCALHOST, 128, 50, 0),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, 35, 4),
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, 30, 2),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, 5, 5),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, 3, 13),
    (Ipv6Addr::UNSPECIFIED, 96, 1, 3),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, 1, 11),
    (Ipv6Addr::new(0x3ffe, 0, 0, 0, 0, 0, 0, 0), 16, 1, 12),
    (Ipv6Addr::UNSPECIFIED, 0, 40, 1),
];

/// IPv4 is looked up as its IPv4-mapped IPv6 form (RFC 6724 §2.1).
fn as_v6(addr: IpAddr) -> Ipv6Addr {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

fn common_prefix_len(a: Ipv6Addr, b: Ipv6Addr) -> u8 {
    (u128::from(a) ^ u128::from(b)).leading_zeros() as u8
}

fn policy(addr: IpAddr) -> (i16, u8) {
    let a = as_v6(addr);
    // The table is ordered most specific first except for ::/96 vs the
    // ::ffff:0:0/96 row, which do not overlap, so the first match is the
    // longest match.
    POLICY_TABLE
        .iter()
        .find(|(prefix, len, _, _)| common_prefix_len(a, *prefix) >= *len)
        .map_or((40, 1), |&(_, _, p, l)| (p, l))
}

/// RFC 6724 §3.1 / §3.2 scope of a unicast or multicast address.
pub(crate) fn scope_of(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(a) => {
            if a.is_loopback() || a.is_link_local() {
                scope::LINK_LOCAL
            } else {
                scope::GLOBAL
            }
        }
        IpAddr::V6(a) => {
            let seg0 = a.segments()[0];
            if a.is_multicast() {
                (seg0 & 0x000f) as u8
            } else if a.is_loopback() || (seg0 & 0xffc0) == 0xfe80 {
                scope::LINK_LOCAL
            } else if (seg0 & 0xffc0) == 0xfec0 {
                scope::SITE_LOCAL
            } else {
                scope::GLOBAL
            }
        }
    }
}

/// Picks the source address the kernel would most likely use for `dest` among
/// `sources` (simplified RFC 6724 §5).
pub(crate) fn select_source<'a>(
    dest: IpAddr,
    sources: impl IntoIterator<Item = &'a InterfaceAddress>,
) -> Option<&'a InterfaceAddress> {
    let dest_scope = scope_of(dest);
    let dest_label = policy(dest).1;
    sources
        .into_iter()
        .filter(|s| s.addr.is_ipv4() == dest.is_ipv4())
        .min_by_key(|s| {
            let s_scope = scope_of(s.addr);
            // Rule 2: the smallest scope that still reaches the destination,
            // else the largest.
            let scope_rank = if s_scope >= dest_scope {
                i16::from(s_scope)
            } else {
                100 - i16::from(s_scope)
            };
            (
                s.addr != dest,
                scope_rank,
                s.deprecated,
                policy(s.addr).1 != dest_label,
                core::cmp::Reverse(common_prefix_len(as_v6(s.addr), as_v6(dest))),
            )
        })
}

/// Computes the sort key of `dest` reached over `path` (`None`: the system's
/// default path, whose sources are unknown).
pub(crate) fn sort_key(dest: IpAddr, path: Option<&Interface>, history: HistoryHint) -> SortKey {
    let (precedence, label) = policy(dest);
    let dest_scope = scope_of(dest);
    let mut key = SortKey {
        unusable: false,
        scope_mismatch: false,
        deprecated_source: false,
        label_mismatch: false,
        neg_precedence: -precedence,
        scope: dest_scope,
        rtt_micros: history.rtt_micros.unwrap_or(u32::MAX),
        unused_before: !history.used_before,
        neg_common_prefix: 0,
    };
    if let Some(iface) = path {
        match select_source(dest, &iface.addrs) {
            None => key.unusable = true,
            Some(src) => {
                key.scope_mismatch = scope_of(src.addr) != dest_scope;
                key.deprecated_source = src.deprecated;
                key.label_mismatch = policy(src.addr).1 != label;
                // RFC 6724 §2.2: CommonPrefixLen stops at the source prefix.
                let max = if src.addr.is_ipv4() {
                    src.prefix_len.saturating_add(96)
                } else {
                    src.prefix_len
                };
                let cpl = common_prefix_len(as_v6(src.addr), as_v6(dest)).min(max);
                key.neg_common_prefix = -i16::from(cpl);
            }
        }
    }
    key
}

/// Whether `dest` can be reached over `path` at all: loopback destinations
/// only over loopback interfaces (or the default path), and only families the
/// path has a source address for.
pub(crate) fn reachable(dest: IpAddr, path: Option<&Interface>) -> bool {
    let Some(iface) = path else { return true };
    let dest_is_loopback = dest.is_loopback();
    let iface_is_loopback = iface.kind == crate::interface::InterfaceKind::Loopback;
    dest_is_loopback == iface_is_loopback
        && iface
            .addrs
            .iter()
            .any(|a| a.addr.is_ipv4() == dest.is_ipv4())
}

/// Reorders `items` (already sorted by preference) so that families alternate
/// after the first `first_family_count` entries of the leading family
/// (HEv3 §5.3). `is_v6` tells an item's family. Stable within each family.
pub(crate) fn interleave<T: Copy>(
    items: &mut [T],
    first_family_count: usize,
    is_v6: impl Fn(&T) -> bool,
) {
    let Some(first) = items.first() else { return };
    let lead_v6 = is_v6(first);
    let mut out: smallvec::SmallVec<[T; 16]> = smallvec::SmallVec::with_capacity(items.len());
    let (mut lead_i, mut other_i) = (0usize, 0usize);
    let next_of = |from: &mut usize, want_v6: bool, items: &[T]| -> Option<T> {
        while *from < items.len() {
            let it = items[*from];
            *from += 1;
            if is_v6(&it) == want_v6 {
                return Some(it);
            }
        }
        None
    };
    let mut lead_budget = first_family_count.max(1);
    let mut lead_turn = true;
    while out.len() < items.len() {
        let pick = if lead_turn {
            next_of(&mut lead_i, lead_v6, items).or_else(|| next_of(&mut other_i, !lead_v6, items))
        } else {
            next_of(&mut other_i, !lead_v6, items).or_else(|| next_of(&mut lead_i, lead_v6, items))
        };
        match pick {
            Some(it) => out.push(it),
            None => break,
        }
        if lead_turn {
            lead_budget -= 1;
            if lead_budget == 0 {
                lead_turn = false;
            }
        } else {
            lead_turn = true;
            lead_budget = 1;
        }
    }
    items.copy_from_slice(&out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interface::InterfaceKind;

    fn iface(addrs: &[(&str, u8)]) -> Interface {
        Interface {
            name: "eth0".into(),
            index: 2,
            kind: InterfaceKind::Wired,
            addrs: addrs
                .iter()
                .map(|(a, p)| InterfaceAddress {
                    addr: a.parse().unwrap(),
                    prefix_len: *p,
                    deprecated: false,
                })
                .collect(),
            mtu: 1500,
            expensive: false,
            constrained: false,
            up: true,
        }
    }

    fn sorted(dests: &[&str], path: Option<&Interface>) -> Vec<String> {
        let mut v: Vec<IpAddr> = dests.iter().map(|d| d.parse().unwrap()).collect();
        v.sort_by_key(|d| sort_key(*d, path, HistoryHint::default()));
        v.iter().map(ToString::to_string).collect()
    }

    /// Table of RFC 6724 §10.2 examples (destination address selection),
    /// each row: (sources, destinations in input order, expected order).
    #[test]
    fn rfc6724_section_10_2_examples() {
        /// (source addresses with prefix lengths, destinations in input order, expected order)
        type Row = (
            &'static [(&'static str, u8)],
            &'static [&'static str],
            &'static [&'static str],
        );
        let rows: &[Row] = &[
            // "Prefer matching scope": candidate source addresses 2001:db8:1::2
            // and fe80::1 and 169.254.13.78; 2001:db8:1::1 before 198.51.100.121.
            (
                &[
                    ("2001:db8:1::2", 64),
                    ("fe80::1", 64),
                    ("169.254.13.78", 16),
                ],
                &["2001:db8:1::1", "198.51.100.121"],
                &["2001:db8:1::1", "198.51.100.121"],
            ),
            // "Prefer matching scope": sources fe80::1 and 198.51.100.117 →
            // 198.51.100.121 before 2001:db8:1::1.
            (
                &[("fe80::1", 64), ("198.51.100.117", 24)],
                &["2001:db8:1::1", "198.51.100.121"],
                &["198.51.100.121", "2001:db8:1::1"],
            ),
            // "Prefer higher precedence": sources 2001:db8:1::2, fe80::1,
            // 10.1.2.4 → 2001:db8:1::1 before 10.1.2.3.
            (
                &[("2001:db8:1::2", 64), ("fe80::1", 64), ("10.1.2.4", 8)],
                &["10.1.2.3", "2001:db8:1::1"],
                &["2001:db8:1::1", "10.1.2.3"],
            ),
            // "Prefer smaller scope": fe80::1 before 2001:db8:1::1.
            (
                &[("2001:db8:1::2", 64), ("fe80::2", 64)],
                &["2001:db8:1::1", "fe80::1"],
                &["fe80::1", "2001:db8:1::1"],
            ),
            // "Longest matching prefix": 2001:db8:1::1 before 2001:db8:3ffe::1
            // with sources 2001:db8:1::2 (prefix /64) and 2001:db8:3f44::2.
            (
                &[
                    ("2001:db8:1::2", 64),
                    ("2001:db8:3f44::2", 64),
                    ("fe80::2", 64),
                ],
                &["2001:db8:3ffe::1", "2001:db8:1::1"],
                &["2001:db8:1::1", "2001:db8:3ffe::1"],
            ),
            // "Prefer matching label": sources 2002:c633:6401::2 and fe80::2;
            // 2002:c633:6401::1 (6to4) before 2001:db8:1::1.
            (
                &[("2002:c633:6401::2", 64), ("fe80::2", 64)],
                &["2001:db8:1::1", "2002:c633:6401::1"],
                &["2002:c633:6401::1", "2001:db8:1::1"],
            ),
            // "Avoid unusable destinations": no IPv6 source → IPv4 first.
            (
                &[("192.0.2.10", 24)],
                &["2001:db8::1", "192.0.2.1"],
                &["192.0.2.1", "2001:db8::1"],
            ),
        ];
        for (sources, dests, expected) in rows {
            let path = iface(sources);
            assert_eq!(sorted(dests, Some(&path)), *expected, "sources {sources:?}");
        }
    }

    #[test]
    fn default_path_prefers_ipv6_by_precedence() {
        // RFC 6724 §2.1: ::/0 precedence 40 beats ::ffff:0:0/96 precedence 35.
        assert_eq!(
            sorted(&["192.0.2.1", "2001:db8::1"], None),
            ["2001:db8::1", "192.0.2.1"]
        );
    }

    #[test]
    fn hev3_rtt_rule_sits_between_rules_8_and_9() {
        // HEv3 §5.3: lower RTT first, but only after precedence/scope rules.
        let fast = HistoryHint {
            rtt_micros: Some(10_000),
            used_before: true,
            demoted: false,
        };
        let slow = HistoryHint {
            rtt_micros: Some(90_000),
            used_before: true,
            demoted: false,
        };
        let a: IpAddr = "2001:db8::a".parse().unwrap();
        let b: IpAddr = "2001:db8::b".parse().unwrap();
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(sort_key(b, None, fast) < sort_key(a, None, slow));
        // Precedence (rule 6) still wins over RTT.
        assert!(sort_key(a, None, slow) < sort_key(v4, None, fast));
    }

    #[test]
    fn interleave_with_first_address_family_count() {
        // HEv3 §5.3: "if the first endpoint in the sorted list has an IPv6
        // address, then the first IPv4 endpoint should be moved up ... to be
        // second"; with a count of 2, two IPv6 endpoints lead.
        let list = [6, 6, 6, 4, 4, 4];
        let mut one = list;
        interleave(&mut one, 1, |x| *x == 6);
        assert_eq!(one, [6, 4, 6, 4, 6, 4]);
        let mut two = list;
        interleave(&mut two, 2, |x| *x == 6);
        assert_eq!(two, [6, 6, 4, 6, 4, 4]);
        let mut lopsided = [4, 6, 6, 6];
        interleave(&mut lopsided, 1, |x| *x == 6);
        assert_eq!(lopsided, [4, 6, 6, 6]);
    }

    #[test]
    fn reachability_pairs_loopback_with_loopback() {
        let mut lo = iface(&[("127.0.0.1", 8), ("::1", 128)]);
        lo.kind = InterfaceKind::Loopback;
        let eth = iface(&[("192.0.2.10", 24)]);
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(reachable(v4, Some(&eth)));
        assert!(!reachable(v6, Some(&eth)), "no IPv6 source on eth0");
        assert!(!reachable(local, Some(&eth)));
        assert!(reachable(local, Some(&lo)));
        assert!(!reachable(v4, Some(&lo)));
        assert!(reachable(v6, None));
    }
}
