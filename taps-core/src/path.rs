//! Network interfaces and the path branches derived from them.
//!
//! Implements RFC 9623 §4.1.1.2 (network paths as the first branch level of
//! the candidate tree), §4.1.3 (sorting branches: "Prohibit, Require, Prefer,
//! Avoid") and RFC 9622 §6.2.11 (`interface`), §6.2.12 (`pvd`) and §6.1.2
//! (a Local Endpoint's interface binds every candidate to it).
//!
//! Adapters report [`Interface`]s; [`derive_paths`] turns them, the Selection
//! Properties and the Local Endpoint's interface into ordered [`PathBranch`]es
//! for the racing layer. The rules, in the order applied:
//!
//! 1. **Provisioning domains.** taps learns no PvDs from the system, so a
//!    Require on a `pvd` fails with [`PathError::UnknownProvisioningDomain`];
//!    the other levels have nothing to act on and are ignored.
//! 2. **No interfaces reported.** The result is one branch,
//!    [`PathBranch::DEFAULT`] (the kernel chooses), unless a Require selector
//!    or a bound interface is given: those cannot be checked, so derivation
//!    fails with [`PathError::NoInterfaceMeetsRequirement`]. Prohibit and
//!    `prohibit_expensive` cannot be enforced on an unknown path; an adapter
//!    that can list interfaces must do so.
//! 3. **Exclusion.** An interface is dropped when it is down, has no
//!    addresses, repeats the index of an earlier one (an adapter bug, ignored
//!    rather than raced twice), matches any Prohibit selector, is expensive
//!    while `prohibit_expensive` is set, is constrained while
//!    `prohibit_constrained` is set, is not the bound interface, or, when any
//!    Require selector is given, matches none of them. Several Require
//!    selectors therefore mean "any of these" (RFC 9622 §6.2.11: Require
//!    "strictly limits path selection" to the interfaces named), and Prohibit
//!    wins over Require, as RFC 9623 §4.1.3 processes Prohibit first. The
//!    bound interface is a further Require by name that must hold as well.
//! 4. **Errors.** If nothing is left, derivation fails:
//!    [`PathError::NoInterfaceMeetsRequirement`] when a Require or bound
//!    interface was given, else [`PathError::AllInterfacesExcluded`]; both list
//!    every interface with its kind and the reasons it was dropped.
//! 5. **Order.** A stable sort by: matched a Prefer selector first; then, as
//!    RFC 9623 §4.1.3's tiebreaker, matched an Avoid selector last; then
//!    loopback interfaces after the others unless a Prefer, Require or the
//!    bound interface named them. Ties keep the adapter's order, which lists
//!    the primary interface first. So: Prefer-only, Prefer-and-Avoid, neither
//!    (loopback last), Avoid-only.
//!
//! Within `interface`, a later entry for the same selector overrides an
//! earlier one, as setting a property overrides its previous value.
//!
//! The result has one branch per eligible interface; capping how many are
//! raced is the racing layer's business.

use core::fmt;

use smallvec::{SmallVec, smallvec};

use crate::interface::{Interface, InterfaceKind, InterfaceSelector};
use crate::properties::{Preference, SelectionProperties};

/// One network-path branch of the candidate tree (RFC 9623 §4.1.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathBranch {
    /// The OS index of the interface to use; `None` is the system's default
    /// path, where the kernel chooses (used when the adapter reports no
    /// interfaces).
    pub interface: Option<u32>,
}

impl PathBranch {
    /// The system's default path.
    pub const DEFAULT: PathBranch = PathBranch { interface: None };
}

/// Why an interface was left out of path derivation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExclusionReason {
    /// It is down.
    Down,
    /// It has no addresses.
    NoAddresses,
    /// An earlier interface in the list has the same index.
    DuplicateIndex,
    /// A Prohibit selector matches it.
    Prohibited(InterfaceSelector),
    /// It is expensive and `prohibit_expensive` is set.
    Expensive,
    /// It is constrained and `prohibit_constrained` is set.
    Constrained,
    /// It is not the interface the Local Endpoint is bound to.
    NotBound,
    /// Require selectors are given and it matches none of them.
    NotRequired,
}

impl fmt::Display for ExclusionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExclusionReason::Down => f.write_str("down"),
            ExclusionReason::NoAddresses => f.write_str("no addresses"),
            ExclusionReason::DuplicateIndex => {
                f.write_str("index already listed by another interface")
            }
            ExclusionReason::Prohibited(selector) => write!(f, "Prohibit {selector}"),
            ExclusionReason::Expensive => f.write_str("expensive, which is prohibited"),
            ExclusionReason::Constrained => f.write_str("constrained, which is prohibited"),
            ExclusionReason::NotBound => f.write_str("not the local endpoint's interface"),
            ExclusionReason::NotRequired => f.write_str("matches no Require"),
        }
    }
}

/// An interface left out of path derivation and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExcludedInterface {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: InterfaceKind,
    /// Every reason, in the order the rules are applied.
    pub reasons: Vec<ExclusionReason>,
}

impl fmt::Display for ExcludedInterface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.name, self.kind)?;
        for (i, reason) in self.reasons.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { ", " })?;
            write!(f, "{reason}")?;
        }
        f.write_str(")")
    }
}

/// Why no path could be derived.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// A Require selector or the Local Endpoint's interface names no usable
    /// interface.
    NoInterfaceMeetsRequirement {
        /// The requirement, as the application would recognise it
        /// ("Require wifi", "local endpoint interface eth1").
        requirement: String,
        /// Every interface the adapter reported, with why it did not qualify;
        /// empty when it reported none.
        interfaces: Vec<ExcludedInterface>,
    },
    /// Without any Require, every interface was excluded (all down, all
    /// prohibited, ...).
    AllInterfacesExcluded {
        /// Every interface, with why it was excluded.
        interfaces: Vec<ExcludedInterface>,
    },
    /// A provisioning domain is Required, but taps learns none from the
    /// system, so no path can be shown to belong to it.
    UnknownProvisioningDomain {
        /// The PvD the application named.
        pvd: String,
    },
}

/// Writes "interfaces are a (..), b (..)" or says none were reported.
fn write_interfaces(f: &mut fmt::Formatter<'_>, interfaces: &[ExcludedInterface]) -> fmt::Result {
    if interfaces.is_empty() {
        return f.write_str("the system reported no interfaces");
    }
    f.write_str("interfaces are ")?;
    for (i, iface) in interfaces.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{iface}")?;
    }
    Ok(())
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::NoInterfaceMeetsRequirement {
                requirement,
                interfaces,
            } => {
                write!(f, "no interface satisfies {requirement}: ")?;
                write_interfaces(f, interfaces)
            }
            PathError::AllInterfacesExcluded { interfaces } => {
                f.write_str("every interface is excluded by the selection properties: ")?;
                write_interfaces(f, interfaces)
            }
            PathError::UnknownProvisioningDomain { pvd } => write!(
                f,
                "provisioning domain {pvd:?} is Required, but taps learns no provisioning domains from the system, so no path can be shown to belong to it"
            ),
        }
    }
}

impl std::error::Error for PathError {}

/// The `interface` entries that count: the last one for each selector.
fn effective_interface_prefs(
    entries: &[(InterfaceSelector, Preference)],
) -> SmallVec<[(&InterfaceSelector, Preference); 8]> {
    entries
        .iter()
        .enumerate()
        .filter(|(i, (selector, _))| !entries[i + 1..].iter().any(|(s, _)| s == selector))
        .map(|(_, (selector, preference))| (selector, *preference))
        .collect()
}

/// Sort key of an eligible interface: (not preferred, avoided, demoted
/// loopback); smaller is tried first.
type Rank = (bool, bool, bool);

/// What derivation checks each interface against.
struct Rules<'a> {
    prefs: SmallVec<[(&'a InterfaceSelector, Preference); 8]>,
    bound: Option<&'a str>,
    prohibit_expensive: bool,
    prohibit_constrained: bool,
}

impl Rules<'_> {
    fn has_require(&self) -> bool {
        self.prefs.iter().any(|(_, p)| *p == Preference::Require)
    }

    fn matches(&self, iface: &Interface, level: Preference) -> bool {
        self.prefs
            .iter()
            .any(|(s, p)| *p == level && s.matches(iface))
    }

    fn requirement(&self) -> String {
        let requires: SmallVec<[String; 4]> = self
            .prefs
            .iter()
            .filter(|(_, p)| *p == Preference::Require)
            .map(|(s, _)| format!("Require {s}"))
            .collect();
        let any_of = requires.join(" or ");
        match (self.bound, requires.len()) {
            (Some(bound), 0) => format!("local endpoint interface {bound}"),
            (Some(bound), 1) => format!("local endpoint interface {bound} and {any_of}"),
            (Some(bound), _) => format!("local endpoint interface {bound} and ({any_of})"),
            (None, _) => any_of,
        }
    }

    /// Why `iface` is excluded; empty if it is eligible.
    fn exclusions(&self, iface: &Interface, duplicate: bool) -> Vec<ExclusionReason> {
        let mut reasons = Vec::new();
        self.each_exclusion(iface, duplicate, |r| reasons.push(r));
        reasons
    }

    /// Whether `iface` is eligible, without spelling out why not (the
    /// reasons are only for the error when no interface is).
    fn eligible(&self, iface: &Interface, duplicate: bool) -> bool {
        let mut eligible = true;
        self.each_exclusion(iface, duplicate, |_| eligible = false);
        eligible
    }

    /// Calls `reason` with each reason `iface` is excluded for.
    fn each_exclusion(
        &self,
        iface: &Interface,
        duplicate: bool,
        mut reason: impl FnMut(ExclusionReason),
    ) {
        if !iface.up {
            reason(ExclusionReason::Down);
        }
        if iface.addrs.is_empty() {
            reason(ExclusionReason::NoAddresses);
        }
        if duplicate {
            reason(ExclusionReason::DuplicateIndex);
        }
        for (selector, preference) in &self.prefs {
            if *preference == Preference::Prohibit && selector.matches(iface) {
                reason(ExclusionReason::Prohibited((*selector).clone()));
            }
        }
        if self.prohibit_expensive && iface.expensive {
            reason(ExclusionReason::Expensive);
        }
        if self.prohibit_constrained && iface.constrained {
            reason(ExclusionReason::Constrained);
        }
        if self.bound.is_some_and(|b| b != iface.name) {
            reason(ExclusionReason::NotBound);
        }
        if self.has_require() && !self.matches(iface, Preference::Require) {
            reason(ExclusionReason::NotRequired);
        }
    }

    /// Sort key: smaller is tried first (see the module doc, rule 5).
    fn rank(&self, iface: &Interface) -> Rank {
        let preferred = self.matches(iface, Preference::Prefer);
        let avoided = self.matches(iface, Preference::Avoid);
        let named = preferred
            || self.matches(iface, Preference::Require)
            || self.bound == Some(iface.name.as_str());
        (!preferred, avoided, iface.is_loopback() && !named)
    }
}

/// Paths (interfaces) one connection races over at most: the most
/// preferred usable ones, in [`derive_paths`]'s order.
pub const MAX_PATHS_PER_CONNECTION: usize = 16;

/// Derives the ordered network-path branches for a connection (RFC 9623
/// §4.1.1.2, §4.1.3) from the adapter's `interfaces` (primary first), the
/// `selection` properties and the Local Endpoint's interface
/// (`bound_interface`). See the module documentation for the rules.
pub fn derive_paths(
    interfaces: &[Interface],
    selection: &SelectionProperties,
    bound_interface: Option<&str>,
) -> Result<SmallVec<[PathBranch; 4]>, PathError> {
    let required_pvd = selection
        .pvd
        .iter()
        .enumerate()
        .filter(|(i, (pvd, _))| !selection.pvd[i + 1..].iter().any(|(p, _)| p == pvd))
        .find(|(_, (_, preference))| *preference == Preference::Require);
    if let Some((_, (pvd, _))) = required_pvd {
        return Err(PathError::UnknownProvisioningDomain { pvd: pvd.clone() });
    }

    let rules = Rules {
        prefs: effective_interface_prefs(&selection.interface),
        bound: bound_interface,
        prohibit_expensive: selection.prohibit_expensive,
        prohibit_constrained: selection.prohibit_constrained,
    };
    let constrained_by_requirement = rules.has_require() || rules.bound.is_some();

    if interfaces.is_empty() {
        if constrained_by_requirement {
            return Err(PathError::NoInterfaceMeetsRequirement {
                requirement: rules.requirement(),
                interfaces: Vec::new(),
            });
        }
        return Ok(smallvec![PathBranch::DEFAULT]);
    }

    let duplicate = |i: usize| {
        interfaces[..i]
            .iter()
            .any(|o| o.index == interfaces[i].index)
    };
    let mut kept: SmallVec<[(Rank, u32); 8]> = SmallVec::new();
    for (i, iface) in interfaces.iter().enumerate() {
        if rules.eligible(iface, duplicate(i)) {
            kept.push((rules.rank(iface), iface.index));
        }
    }

    if kept.is_empty() {
        // Every interface is excluded: the error says each one's reasons.
        let excluded: Vec<ExcludedInterface> = interfaces
            .iter()
            .enumerate()
            .map(|(i, iface)| ExcludedInterface {
                name: iface.name.clone(),
                kind: iface.kind,
                reasons: rules.exclusions(iface, duplicate(i)),
            })
            .collect();
        return Err(if constrained_by_requirement {
            PathError::NoInterfaceMeetsRequirement {
                requirement: rules.requirement(),
                interfaces: excluded,
            }
        } else {
            PathError::AllInterfacesExcluded {
                interfaces: excluded,
            }
        });
    }
    // Stable, so ties keep the adapter's (primary-first) order.
    kept.sort_by_key(|(rank, _)| *rank);
    // The most preferred paths only: the race names paths with small
    // indices, and staggering them one path delay apart makes the
    // sixteenth start 15 s late anyway.
    kept.truncate(MAX_PATHS_PER_CONNECTION);
    Ok(kept
        .into_iter()
        .map(|(_, index)| PathBranch {
            interface: Some(index),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::interface::InterfaceAddress;
    use crate::properties::TransportProperties;
    use InterfaceKind::*;
    use Preference::*;
    use proptest::prelude::*;

    fn iface(name: &str, index: u32, kind: InterfaceKind) -> Interface {
        let addr: IpAddr = if kind == Loopback {
            [127, 0, 0, 1].into()
        } else {
            [192, 0, 2, index as u8].into()
        };
        Interface {
            name: name.to_owned(),
            index,
            kind,
            addrs: vec![InterfaceAddress {
                addr,
                prefix_len: 24,
                deprecated: false,
            }],
            mtu: 1500,
            expensive: false,
            constrained: false,
            up: true,
        }
    }

    /// A phone-like laptop: loopback listed first as Linux does, then the
    /// primary wired interface, Wi-Fi, and an expensive cellular modem.
    fn host() -> Vec<Interface> {
        let mut cell = iface("rmnet0", 4, Cellular);
        cell.expensive = true;
        vec![
            iface("lo", 1, Loopback),
            iface("eth0", 2, Wired),
            iface("wlan0", 3, Wifi),
            cell,
        ]
    }

    fn with(mut list: Vec<Interface>, name: &str, f: impl Fn(&mut Interface)) -> Vec<Interface> {
        list.iter_mut().filter(|i| i.name == name).for_each(f);
        list
    }

    fn kind(k: InterfaceKind) -> InterfaceSelector {
        InterfaceSelector::Kind(k)
    }

    fn name(n: &str) -> InterfaceSelector {
        InterfaceSelector::Name(n.to_owned())
    }

    fn sel(prefs: &[(InterfaceSelector, Preference)]) -> SelectionProperties {
        SelectionProperties {
            interface: prefs.to_vec(),
            ..SelectionProperties::default()
        }
    }

    enum Expect {
        Paths(&'static [&'static str]),
        /// The full Display text of the error.
        Error(&'static str),
    }

    struct Row {
        /// The section the row checks, quoted.
        rfc: &'static str,
        interfaces: Vec<Interface>,
        selection: SelectionProperties,
        bound: Option<&'static str>,
        expect: Expect,
    }

    fn rows() -> Vec<Row> {
        use Expect::*;
        let expensive_prohibited = SelectionProperties {
            prohibit_expensive: true,
            ..SelectionProperties::default()
        };
        let constrained_prohibited = SelectionProperties {
            prohibit_constrained: true,
            ..SelectionProperties::default()
        };
        vec![
            Row {
                rfc: "RFC 9622 §6.2.11 Default: Empty (not setting a preference for any interface); loopback last",
                interfaces: host(),
                selection: SelectionProperties::default(),
                bound: None,
                expect: Paths(&["eth0", "wlan0", "rmnet0", "lo"]),
            },
            Row {
                rfc: "RFC 9623 §4.1.3: if the application specifies an interface type to be required ... exclude the non-conforming paths",
                interfaces: host(),
                selection: sel(&[(kind(Wifi), Require)]),
                bound: None,
                expect: Paths(&["wlan0"]),
            },
            Row {
                rfc: "RFC 9622 §6.2.11: select specific network interfaces or categories ... to Require (several Require = any of them)",
                interfaces: host(),
                selection: sel(&[(kind(Cellular), Require), (kind(Wifi), Require)]),
                bound: None,
                expect: Paths(&["wlan0", "rmnet0"]),
            },
            Row {
                rfc: "RFC 9622 §6.2.11: marking a specific interface as Require strictly limits path selection to that single interface",
                interfaces: host(),
                selection: sel(&[(name("eth0"), Require)]),
                bound: None,
                expect: Paths(&["eth0"]),
            },
            Row {
                rfc: "RFC 9623 §4.1.3: interface type ... prohibited, an implementation is expected to exclude the non-conforming paths",
                interfaces: host(),
                selection: sel(&[(kind(Cellular), Prohibit)]),
                bound: None,
                expect: Paths(&["eth0", "wlan0", "lo"]),
            },
            Row {
                rfc: "RFC 9622 §6.2.11: specific network interfaces ... it wants to Prohibit",
                interfaces: host(),
                selection: sel(&[(name("wlan0"), Prohibit)]),
                bound: None,
                expect: Paths(&["eth0", "rmnet0", "lo"]),
            },
            Row {
                rfc: "RFC 9623 §4.1.3: if the application specifies an interface type to be preferred ... rank the paths",
                interfaces: host(),
                selection: sel(&[(kind(Cellular), Prefer)]),
                bound: None,
                expect: Paths(&["rmnet0", "eth0", "wlan0", "lo"]),
            },
            Row {
                rfc: "RFC 9623 §4.1.3: ... preferred or avoided, implementations should accordingly rank the paths",
                interfaces: host(),
                selection: sel(&[(kind(Wired), Avoid)]),
                bound: None,
                expect: Paths(&["wlan0", "rmnet0", "lo", "eth0"]),
            },
            Row {
                rfc: "RFC 9623 §4.1.3: order the branches according to the preferred properties, and finally use any avoided properties as a tiebreaker",
                interfaces: vec![
                    iface("eth0", 2, Wired),
                    iface("wlan0", 3, Wifi),
                    iface("wlan1", 5, Wifi),
                ],
                selection: sel(&[(kind(Wifi), Prefer), (name("wlan0"), Avoid)]),
                bound: None,
                expect: Paths(&["wlan1", "wlan0", "eth0"]),
            },
            Row {
                rfc: "RFC 9622 §6.2.11: If an application needs to prohibit metered interfaces, this should be specified via ... another specific property",
                interfaces: host(),
                selection: expensive_prohibited.clone(),
                bound: None,
                expect: Paths(&["eth0", "wlan0", "lo"]),
            },
            Row {
                rfc: "RFC 9623 §3.2: any protocol or path used for a Connection must conform to all three sources of constraints (prohibit constrained)",
                interfaces: with(host(), "wlan0", |i| i.constrained = true),
                selection: constrained_prohibited,
                bound: None,
                expect: Paths(&["eth0", "rmnet0", "lo"]),
            },
            Row {
                rfc: "RFC 9623 §4.1.1.2: the list of available paths should be constrained by ... system policy (down interface)",
                interfaces: with(host(), "eth0", |i| i.up = false),
                selection: SelectionProperties::default(),
                bound: None,
                expect: Paths(&["wlan0", "rmnet0", "lo"]),
            },
            Row {
                rfc: "RFC 9623 §4.1.1.2: a path has a coherent set of addresses (an interface without any is no path)",
                interfaces: with(host(), "wlan0", |i| i.addrs.clear()),
                selection: SelectionProperties::default(),
                bound: None,
                expect: Paths(&["eth0", "rmnet0", "lo"]),
            },
            Row {
                rfc: "RFC 9623 §4: using the system's current default path (i.e., using the default interface)",
                interfaces: Vec::new(),
                selection: sel(&[(kind(Cellular), Prohibit)]),
                bound: None,
                expect: Paths(&["default"]),
            },
            Row {
                rfc: "RFC 9622 §6.2: Require: select only protocols/paths providing the property, fail otherwise",
                interfaces: Vec::new(),
                selection: sel(&[(kind(Wifi), Require)]),
                bound: None,
                expect: Error(
                    "no interface satisfies Require wifi: the system reported no interfaces",
                ),
            },
            Row {
                rfc: "RFC 9622 §6.1.2: an interface on a Local Endpoint explicitly binds all candidates",
                interfaces: Vec::new(),
                selection: SelectionProperties::default(),
                bound: Some("eth1"),
                expect: Error(
                    "no interface satisfies local endpoint interface eth1: the system reported no interfaces",
                ),
            },
            Row {
                rfc: "RFC 9622 §6.2.11: interfaces it wants to ... Prefer (loopback named by Prefer is not demoted)",
                interfaces: host(),
                selection: sel(&[(kind(Loopback), Prefer)]),
                bound: None,
                expect: Paths(&["lo", "eth0", "wlan0", "rmnet0"]),
            },
            Row {
                rfc: "RFC 9622 §6.2.11: Require ... strictly limits path selection (loopback)",
                interfaces: host(),
                selection: sel(&[(name("lo"), Require), (kind(Wired), Require)]),
                bound: None,
                expect: Paths(&["lo", "eth0"]),
            },
            Row {
                rfc: "RFC 9622 §6.1.2: an interface on a Local Endpoint explicitly binds all candidates",
                interfaces: host(),
                selection: sel(&[(kind(Wifi), Prefer)]),
                bound: Some("eth0"),
                expect: Paths(&["eth0"]),
            },
            Row {
                rfc: "RFC 9622 §6.1.2: Local Endpoint binding and Selection Properties both constrain",
                interfaces: host(),
                selection: sel(&[(kind(Wired), Require)]),
                bound: Some("wlan0"),
                expect: Error(
                    "no interface satisfies local endpoint interface wlan0 and Require wired: interfaces are \
                     lo (loopback: not the local endpoint's interface, matches no Require), \
                     eth0 (wired: not the local endpoint's interface), \
                     wlan0 (wifi: matches no Require), \
                     rmnet0 (cellular: not the local endpoint's interface, matches no Require)",
                ),
            },
            Row {
                rfc: "RFC 9622 §6.2: Require ... fail otherwise (the only Wi-Fi is down)",
                interfaces: with(host(), "wlan0", |i| i.up = false),
                selection: sel(&[(kind(Wifi), Require)]),
                bound: None,
                expect: Error(
                    "no interface satisfies Require wifi: interfaces are \
                     lo (loopback: matches no Require), eth0 (wired: matches no Require), \
                     wlan0 (wifi: down), rmnet0 (cellular: matches no Require)",
                ),
            },
            Row {
                rfc: "RFC 9623 §4.1.3: Prohibit, Require, Prefer, Avoid (Prohibit is applied before Require)",
                interfaces: vec![iface("eth0", 2, Wired), iface("wlan0", 3, Wifi)],
                selection: sel(&[(kind(Wifi), Require), (name("wlan0"), Prohibit)]),
                bound: None,
                expect: Error(
                    "no interface satisfies Require wifi: interfaces are \
                     eth0 (wired: matches no Require), wlan0 (wifi: Prohibit interface wlan0)",
                ),
            },
            Row {
                rfc: "RFC 9622 §6.2: Prohibit: select only ... paths not providing the property, fail otherwise",
                interfaces: vec![iface("eth0", 2, Wired), iface("lo", 1, Loopback)],
                selection: sel(&[(kind(Wired), Prohibit), (kind(Loopback), Prohibit)]),
                bound: None,
                expect: Error(
                    "every interface is excluded by the selection properties: interfaces are \
                     eth0 (wired: Prohibit wired), lo (loopback: Prohibit loopback)",
                ),
            },
            Row {
                rfc: "RFC 9622 §6.2: Require ... fail otherwise (the only cellular interface is expensive)",
                interfaces: host(),
                selection: SelectionProperties {
                    interface: vec![(kind(Cellular), Require)],
                    ..expensive_prohibited
                },
                bound: None,
                expect: Error(
                    "no interface satisfies Require cellular: interfaces are \
                     lo (loopback: matches no Require), eth0 (wired: matches no Require), \
                     wlan0 (wifi: matches no Require), rmnet0 (cellular: expensive, which is prohibited)",
                ),
            },
            Row {
                rfc: "RFC 9622 §6.2.12: requiring a specific PvD strictly limits the path selection",
                interfaces: host(),
                selection: SelectionProperties {
                    pvd: vec![("pvd.example.net".to_owned(), Require)],
                    ..SelectionProperties::default()
                },
                bound: None,
                expect: Error(
                    "provisioning domain \"pvd.example.net\" is Required, but taps learns no provisioning domains from the system, so no path can be shown to belong to it",
                ),
            },
            Row {
                rfc: "RFC 9622 §6.2.12: PvD Prefer/Avoid/Prohibit have nothing to act on",
                interfaces: host(),
                selection: SelectionProperties {
                    pvd: vec![
                        ("a.example".to_owned(), Prohibit),
                        ("b.example".to_owned(), Require),
                        ("b.example".to_owned(), Prefer),
                    ],
                    ..SelectionProperties::default()
                },
                bound: None,
                expect: Paths(&["eth0", "wlan0", "rmnet0", "lo"]),
            },
            Row {
                rfc: "RFC 9622 §6.2: Setting a Transport Property to a value overrides the previous value",
                interfaces: host(),
                selection: sel(&[(kind(Wifi), Prohibit), (kind(Wifi), Prefer)]),
                bound: None,
                expect: Paths(&["wlan0", "eth0", "rmnet0", "lo"]),
            },
            Row {
                rfc: "ARCHITECTURE.md, the core contract, rule 3: bad input is not a panic (duplicate index raced once)",
                interfaces: vec![iface("eth0", 2, Wired), iface("eth0:1", 2, Wired)],
                selection: SelectionProperties::default(),
                bound: None,
                expect: Paths(&["eth0"]),
            },
        ]
    }

    fn names(interfaces: &[Interface], paths: &[PathBranch]) -> Vec<String> {
        paths
            .iter()
            .map(|p| match p.interface {
                None => "default".to_owned(),
                Some(index) => interfaces
                    .iter()
                    .find(|i| i.index == index)
                    .map_or_else(|| format!("#{index}"), |i| i.name.clone()),
            })
            .collect()
    }

    #[test]
    fn derivation_table() {
        for row in rows() {
            let got = derive_paths(&row.interfaces, &row.selection, row.bound);
            match (row.expect, got) {
                (Expect::Paths(want), Ok(paths)) => {
                    assert_eq!(names(&row.interfaces, &paths), want, "{}", row.rfc)
                }
                (Expect::Error(want), Err(e)) => assert_eq!(e.to_string(), want, "{}", row.rfc),
                (Expect::Paths(want), Err(e)) => {
                    panic!("{}: wanted {want:?}, got error {e}", row.rfc)
                }
                (Expect::Error(want), Ok(paths)) => panic!(
                    "{}: wanted error {want:?}, got {:?}",
                    row.rfc,
                    names(&row.interfaces, &paths)
                ),
            }
        }
    }

    #[test]
    fn builders_feed_derivation() {
        let p = TransportProperties::reliable_inorder_stream()
            .prohibit_interface_kind(Cellular)
            .avoid_interface_name("eth0");
        let got = derive_paths(&host(), &p.selection, None).unwrap();
        assert_eq!(names(&host(), &got), ["wlan0", "lo", "eth0"]);
    }

    #[test]
    fn interface_kind_parsing() {
        for k in InterfaceKind::ALL {
            assert_eq!(k.to_string().parse::<InterfaceKind>(), Ok(k));
        }
        for (word, k) in [
            ("Ethernet", Wired),
            ("WLAN", Wifi),
            ("wireless", Wifi),
            ("Wi-Fi", Wifi),
        ] {
            assert_eq!(word.parse::<InterfaceKind>(), Ok(k), "{word}");
        }
        let err = "modem".parse::<InterfaceKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown interface kind \"modem\": expected wired, wifi, cellular, loopback or other"
        );
    }

    #[test]
    fn interface_helpers() {
        let mut i = iface("eth0", 2, Wired);
        i.addrs.insert(
            0,
            InterfaceAddress {
                addr: "2001:db8::1".parse().unwrap(),
                prefix_len: 64,
                deprecated: true,
            },
        );
        i.addrs.push(InterfaceAddress {
            addr: "2001:db8::2".parse().unwrap(),
            prefix_len: 64,
            deprecated: false,
        });
        assert!(i.has_family(true) && i.has_family(false));
        let order: Vec<String> = i.source_addresses().map(|a| a.addr.to_string()).collect();
        assert_eq!(order, ["192.0.2.2", "2001:db8::2", "2001:db8::1"]);
        assert!(!iface("lo", 1, Loopback).has_family(true));
        assert!(name("eth0").matches(&i) && !name("eth1").matches(&i));
        assert!(kind(Wired).matches(&i) && !kind(Wifi).matches(&i));
        assert_eq!(InterfaceSelector::from(Wifi), kind(Wifi));
    }

    // Property tests: random hosts and preferences.

    const NAMES: [&str; 6] = ["lo", "eth0", "eth1", "wlan0", "rmnet0", "tun0"];

    fn arb_kind() -> impl Strategy<Value = InterfaceKind> {
        prop::sample::select(InterfaceKind::ALL.to_vec())
    }

    fn arb_interface() -> impl Strategy<Value = Interface> {
        (
            0..NAMES.len(),
            1u32..8,
            arb_kind(),
            0usize..3,
            any::<(bool, bool, bool)>(),
        )
            .prop_map(|(n, index, kind, n_addrs, (expensive, constrained, up))| {
                let mut i = iface(NAMES[n], index, kind);
                i.addrs.truncate(n_addrs.min(1));
                i.expensive = expensive;
                i.constrained = constrained;
                i.up = up;
                i
            })
    }

    fn arb_selector() -> impl Strategy<Value = InterfaceSelector> {
        prop_oneof![
            arb_kind().prop_map(InterfaceSelector::Kind),
            (0..NAMES.len()).prop_map(|n| InterfaceSelector::Name(NAMES[n].to_owned())),
        ]
    }

    fn arb_selection() -> impl Strategy<Value = SelectionProperties> {
        (
            prop::collection::vec(
                (
                    arb_selector(),
                    prop::sample::select(Preference::ALL.to_vec()),
                ),
                0..5,
            ),
            any::<(bool, bool)>(),
        )
            .prop_map(|(interface, (prohibit_expensive, prohibit_constrained))| {
                SelectionProperties {
                    interface,
                    prohibit_expensive,
                    prohibit_constrained,
                    ..SelectionProperties::default()
                }
            })
    }

    /// The preference that counts for `selector`: the last entry for it.
    fn last(s: &SelectionProperties, selector: &InterfaceSelector) -> Preference {
        s.interface
            .iter()
            .rev()
            .find(|(x, _)| x == selector)
            .map_or(NoPreference, |(_, p)| *p)
    }

    fn matches_level(s: &SelectionProperties, i: &Interface, level: Preference) -> bool {
        s.interface
            .iter()
            .any(|(x, _)| last(s, x) == level && x.matches(i))
    }

    /// An independent statement of eligibility (module doc, rule 3).
    fn eligible(
        s: &SelectionProperties,
        bound: Option<&str>,
        list: &[Interface],
        n: usize,
    ) -> bool {
        let i = &list[n];
        let any_require = s.interface.iter().any(|(x, _)| last(s, x) == Require);
        i.up && !i.addrs.is_empty()
            && list[..n].iter().all(|o| o.index != i.index)
            && !matches_level(s, i, Prohibit)
            && !(s.prohibit_expensive && i.expensive)
            && !(s.prohibit_constrained && i.constrained)
            && bound.is_none_or(|b| b == i.name)
            && (!any_require || matches_level(s, i, Require))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn derivation_invariants(
            list in prop::collection::vec(arb_interface(), 0..6),
            s in arb_selection(),
            bound in prop::option::of(0..NAMES.len()),
        ) {
            let bound = bound.map(|n| NAMES[n]);
            let want: Vec<usize> =
                (0..list.len()).filter(|&n| eligible(&s, bound, &list, n)).collect();
            match derive_paths(&list, &s, bound) {
                Ok(paths) if list.is_empty() => {
                    prop_assert_eq!(paths.as_slice(), &[PathBranch::DEFAULT]);
                    prop_assert!(bound.is_none());
                    prop_assert!(s.interface.iter().all(|(x, _)| last(&s, x) != Require));
                }
                Ok(paths) => {
                    // Exactly the eligible interfaces, each once.
                    let mut got: Vec<u32> = paths.iter().filter_map(|p| p.interface).collect();
                    prop_assert_eq!(got.len(), paths.len());
                    let ranked: Vec<&Interface> = got
                        .iter()
                        .filter_map(|ix| {
                            want.iter().map(|&n| &list[n]).find(|i| i.index == *ix)
                        })
                        .collect();
                    prop_assert_eq!(ranked.len(), got.len());
                    got.sort_unstable();
                    let mut want_ix: Vec<u32> = want.iter().map(|&n| list[n].index).collect();
                    want_ix.sort_unstable();
                    prop_assert_eq!(got, want_ix);
                    // Prefer before the rest; Avoid-only after the rest.
                    for pair in ranked.windows(2) {
                        let (a, b) = (pair[0], pair[1]);
                        let pa = matches_level(&s, a, Prefer);
                        let pb = matches_level(&s, b, Prefer);
                        prop_assert!(pa || !pb, "{} before preferred {}", a.name, b.name);
                        if pa == pb {
                            let aa = matches_level(&s, a, Avoid);
                            let ab = matches_level(&s, b, Avoid);
                            prop_assert!(!aa || ab, "avoided {} before {}", a.name, b.name);
                        }
                    }
                }
                Err(e) => {
                    prop_assert!(want.is_empty(), "error {} but eligible {:?}", e, want);
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}
