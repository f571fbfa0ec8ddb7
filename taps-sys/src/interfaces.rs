//! The interface list that path derivation starts from (RFC 9623 §4.1.1.2;
//! RFC 9622 §6.2.11 interface types), as [`Interface`] values.
//!
//! OS facilities: getifaddrs(3) for names, flags and addresses;
//! if_nametoindex(3) for the index (both through nix's safe wrappers); sysfs-class-net
//! (`/sys/class/net/NAME/{type,mtu,wireless,phy80211,uevent,device/driver}`,
//! Documentation/ABI/testing/sysfs-class-net in the kernel) for the MTU and
//! the kind; `/proc/net/if_inet6` (proc(5)) for the deprecated flag of IPv6
//! addresses (RFC 4862 §5.5.4).
//!
//! Decisions, since the OS does not state them directly:
//!
//! - **up** is `IFF_UP && IFF_RUNNING` (netdevice(7)): administratively up
//!   *and* the driver reports carrier. An interface that is up without a
//!   cable cannot carry an attempt.
//! - **kind**, first match wins:
//!   1. `IFF_LOOPBACK`, the name `lo`, or ARP type 772 → loopback;
//!   2. a `wireless` or `phy80211` entry, or `DEVTYPE=wlan` in `uevent` →
//!      Wi-Fi;
//!   3. `DEVTYPE=wwan`, a WWAN name (`ww*` as in `wwan0` and systemd's
//!      `wwp0s20f0u6`, `rmnet*`, `ccmni*`, `pdp*`), or a WWAN modem driver
//!      (`qmi_wwan`, `cdc_mbim`, `sierra_net`, `huawei_cdc_ncm`, `mhi_net`,
//!      `ipa`) → cellular. `usb*` is deliberately *not* a cellular name: it
//!      is as often a USB gadget or a docking-station NIC as a phone's
//!      tethering;
//!   4. ARP type 1 (`ARPHRD_ETHER`) → wired. That includes virtual Ethernet
//!      (veth, bridges, dummies): from a path's point of view they are
//!      cable-like links with no metering;
//!   5. anything else (tunnels, raw-IP links) → other.
//! - **expensive** is "cellular"; Linux has no system-wide flag for metered
//!   links (NetworkManager keeps its own, out of reach here).
//! - **constrained** is always `false`: Linux has no low-data mode.
//! - **mtu** comes from sysfs, 1500 when unreadable.
//! - **order**: the primary interface first, the one carrying the best
//!   default route of the main table, then the others with a default
//!   route, then the rest by index ([`crate::routes`] has the rule and its
//!   tie-break). The core keeps this order among equally preferred paths
//!   (`taps_core::derive_paths`), so the first path raced is the one the
//!   system itself would use. Addresses keep the kernel's order (the
//!   primary IPv4 address first). An interface that vanished between
//!   getifaddrs and if_nametoindex (index 0) is left out, as is a name that
//!   is not UTF-8 (nix hands such a name over with U+FFFD in place of the
//!   bad bytes, so a name holding U+FFFD is left out).

use std::collections::HashSet;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

use nix::ifaddrs::getifaddrs;
use nix::net::if_::{InterfaceFlags, if_nametoindex};
use nix::sys::socket::SockaddrStorage;

use super::{Stage, context, routes};
use taps_core::{Interface, InterfaceAddress, InterfaceKind};

/// Where sysfs lists network interfaces.
pub const SYS_CLASS_NET: &str = "/sys/class/net";
/// Where procfs lists IPv6 addresses with their flags.
pub const PROC_IF_INET6: &str = "/proc/net/if_inet6";
/// The MTU assumed when sysfs does not say (Ethernet's).
pub const DEFAULT_MTU: u32 = 1500;

/// `IFA_F_DEPRECATED` from linux/if_addr.h.
const IFA_F_DEPRECATED: u32 = 0x20;
/// `ARPHRD_ETHER` from linux/if_arp.h.
const ARPHRD_ETHER: u32 = 1;
/// `ARPHRD_LOOPBACK` from linux/if_arp.h.
const ARPHRD_LOOPBACK: u32 = 772;

/// Name prefixes of cellular (WWAN) interfaces.
const CELLULAR_PREFIXES: &[&str] = &["ww", "rmnet", "ccmni", "pdp"];
/// Drivers of cellular modems that present a network interface.
const CELLULAR_DRIVERS: &[&str] = &[
    "qmi_wwan",
    "cdc_mbim",
    "sierra_net",
    "huawei_cdc_ncm",
    "mhi_net",
    "ipa",
];

/// Lists the system's network interfaces (see the module docs for how each
/// field is decided).
///
/// A route table that cannot be read (a sandbox without netlink) leaves
/// the index order: a listing without a primary is still a listing.
pub fn list_interfaces() -> io::Result<Vec<Interface>> {
    let mut list = list_interfaces_in(Path::new(SYS_CLASS_NET), Path::new(PROC_IF_INET6))?;
    if let Ok(routes) = routes::default_routes() {
        routes::order_by_default_route(&mut list, &routes);
    }
    Ok(list)
}

/// [`list_interfaces`] with the sysfs directory and the `if_inet6` file
/// given, so tests can point them at a fake tree.
pub(crate) fn list_interfaces_in(sys_net: &Path, if_inet6: &Path) -> io::Result<Vec<Interface>> {
    let entries = getifaddrs_entries()?;
    let deprecated = fs::read_to_string(if_inet6)
        .map(|text| parse_deprecated(&text))
        .unwrap_or_default();

    // Group by name in first-seen order; getifaddrs yields one entry per
    // address plus one per link (AF_PACKET), so address-less interfaces
    // are listed too.
    let mut interfaces: Vec<Interface> = Vec::new();
    for entry in entries {
        let position = match interfaces.iter().position(|i| i.name == entry.name) {
            Some(p) => p,
            None => {
                let loopback = entry.flags.contains(InterfaceFlags::IFF_LOOPBACK);
                let up = entry
                    .flags
                    .contains(InterfaceFlags::IFF_UP | InterfaceFlags::IFF_RUNNING);
                let kind = classify(sys_net, &entry.name, loopback);
                interfaces.push(Interface {
                    index: 0,
                    kind,
                    addrs: Vec::new(),
                    mtu: read_u32(sys_net, &entry.name, "mtu").unwrap_or(DEFAULT_MTU),
                    expensive: kind == InterfaceKind::Cellular,
                    constrained: false,
                    up,
                    name: entry.name.clone(),
                });
                interfaces.len() - 1
            }
        };
        let interface = &mut interfaces[position];
        if let Some((addr, prefix_len)) = entry.addr
            && !interface.addrs.iter().any(|a| a.addr == addr)
        {
            let deprecated = match addr {
                IpAddr::V6(v6) => deprecated.contains(&(entry.name.clone(), v6)),
                IpAddr::V4(_) => false,
            };
            interface.addrs.push(InterfaceAddress {
                addr,
                prefix_len,
                deprecated,
            });
        }
    }

    let mut out: Vec<Interface> = interfaces
        .into_iter()
        .filter_map(|mut interface| {
            interface.index = name_to_index(&interface.name)?;
            Some(interface)
        })
        .collect();
    out.sort_by(|a, b| a.index.cmp(&b.index).then_with(|| a.name.cmp(&b.name)));
    Ok(out)
}

/// Classifies an interface from its name, its loopback flag and what sysfs
/// under `sys_net` says about it (see the module docs for the rules).
pub(crate) fn classify(sys_net: &Path, name: &str, loopback_flag: bool) -> InterfaceKind {
    if loopback_flag || name == "lo" {
        return InterfaceKind::Loopback;
    }
    let arp_type = read_u32(sys_net, name, "type");
    if arp_type == Some(ARPHRD_LOOPBACK) {
        return InterfaceKind::Loopback;
    }
    let devtype = sys_file(sys_net, name, "uevent")
        .and_then(|path| fs::read_to_string(path).ok())
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("DEVTYPE=").map(|v| v.trim().to_owned()))
        });
    let exists = |entry: &str| sys_file(sys_net, name, entry).is_some_and(|p| p.exists());

    if exists("wireless") || exists("phy80211") || devtype.as_deref() == Some("wlan") {
        return InterfaceKind::Wifi;
    }
    let driver = sys_file(sys_net, name, "device/driver")
        .and_then(|p| fs::read_link(p).ok())
        .and_then(|target| target.file_name()?.to_str().map(str::to_owned));
    if devtype.as_deref() == Some("wwan")
        || CELLULAR_PREFIXES.iter().any(|p| name.starts_with(p))
        || driver.is_some_and(|d| CELLULAR_DRIVERS.contains(&d.as_str()))
    {
        return InterfaceKind::Cellular;
    }
    if arp_type == Some(ARPHRD_ETHER) {
        return InterfaceKind::Wired;
    }
    InterfaceKind::Other
}

/// `sys_net/name/entry`, unless the name could step outside `sys_net`
/// (the kernel never makes such names, but this is data from outside).
fn sys_file(sys_net: &Path, name: &str, entry: &str) -> Option<std::path::PathBuf> {
    let safe = !name.is_empty() && name != "." && name != ".." && !name.contains('/');
    safe.then(|| sys_net.join(name).join(entry))
}

/// A sysfs attribute holding one decimal number.
fn read_u32(sys_net: &Path, name: &str, entry: &str) -> Option<u32> {
    let text = fs::read_to_string(sys_file(sys_net, name, entry)?).ok()?;
    text.trim().parse().ok()
}

/// The deprecated IPv6 addresses in `/proc/net/if_inet6` text, as
/// (interface name, address). Each line is: address (32 hex digits), index,
/// prefix length, scope, flags (all hex), name. Malformed lines are skipped.
pub(crate) fn parse_deprecated(text: &str) -> HashSet<(String, Ipv6Addr)> {
    let mut out = HashSet::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let [addr, _index, _prefix, _scope, flags, name] = fields[..] else {
            continue;
        };
        // Exactly 32 digits: a shorter field would parse to another address.
        if addr.len() != 32 {
            continue;
        }
        let (Ok(addr), Ok(flags)) = (
            u128::from_str_radix(addr, 16),
            u32::from_str_radix(flags, 16),
        ) else {
            continue;
        };
        if flags & IFA_F_DEPRECATED != 0 {
            out.insert((name.to_owned(), Ipv6Addr::from(addr)));
        }
    }
    out
}

/// One getifaddrs entry, as nix copied it out of the C list.
struct RawEntry {
    name: String,
    flags: InterfaceFlags,
    /// The address and its prefix length, for IPv4 and IPv6 entries.
    addr: Option<(IpAddr, u8)>,
}

/// Every entry of getifaddrs(3), through nix (which frees the C list).
///
/// nix turns a name that is not UTF-8 into a lossy string, with U+FFFD in
/// place of the bad bytes; such an entry is left out, so that it can
/// neither be mistaken for another interface nor looked up by a name the
/// kernel does not know.
fn getifaddrs_entries() -> io::Result<Vec<RawEntry>> {
    let list = getifaddrs().map_err(|errno| {
        context(
            io::Error::from(errno),
            Stage::Other,
            "list interfaces (getifaddrs)",
        )
    })?;
    Ok(list
        .filter(|entry| !entry.interface_name.contains(char::REPLACEMENT_CHARACTER))
        .map(|entry| {
            let addr = ip_of(entry.address.as_ref())
                .map(|addr| (addr, prefix_len(addr, ip_of(entry.netmask.as_ref()))));
            RawEntry {
                name: entry.interface_name,
                flags: entry.flags,
                addr,
            }
        })
        .collect())
}

/// The IP address in a socket address, for `AF_INET` and `AF_INET6`.
fn ip_of(sa: Option<&SockaddrStorage>) -> Option<IpAddr> {
    let sa = sa?;
    if let Some(sin) = sa.as_sockaddr_in() {
        return Some(IpAddr::V4(sin.ip()));
    }
    sa.as_sockaddr_in6().map(|sin6| IpAddr::V6(sin6.ip()))
}

/// The prefix length of a netmask (its leading one bits), interpreted in
/// the address's family; a missing or foreign-family mask means a host
/// route (32 or 128).
fn prefix_len(addr: IpAddr, mask: Option<IpAddr>) -> u8 {
    // `leading_ones` of a u32 or u128 is at most 128, so the casts hold.
    match (addr, mask) {
        (IpAddr::V4(_), Some(IpAddr::V4(m))) => u32::from(m).leading_ones() as u8,
        (IpAddr::V6(_), Some(IpAddr::V6(m))) => u128::from(m).leading_ones() as u8,
        (IpAddr::V4(_), _) => 32,
        (IpAddr::V6(_), _) => 128,
    }
}

/// if_nametoindex(3); `None` when the interface is gone (or the name
/// cannot be a C string: nix refuses an interior NUL with `EINVAL`).
fn name_to_index(name: &str) -> Option<u32> {
    if_nametoindex(name).ok()
}

#[cfg(test)]
mod tests;
