//! The real loopback interface, and classification against a fake sysfs.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::*;

#[test]
fn lists_loopback() {
    let interfaces = list_interfaces().unwrap();
    let lo = interfaces
        .iter()
        .find(|i| i.name == "lo")
        .unwrap_or_else(|| panic!("no lo in {interfaces:?}"));
    assert_eq!(lo.kind, InterfaceKind::Loopback);
    assert!(lo.up);
    assert!(lo.index > 0);
    assert_eq!(lo.mtu, 65536);
    assert!(!lo.expensive && !lo.constrained);
    let v4 = InterfaceAddress {
        addr: Ipv4Addr::LOCALHOST.into(),
        prefix_len: 8,
        deprecated: false,
    };
    assert!(lo.addrs.contains(&v4), "{:?}", lo.addrs);
    // IPv6 may be disabled on a machine; then the kernel lists no IPv6
    // addresses in procfs at all.
    let ipv6_on = fs::read_to_string(PROC_IF_INET6).is_ok_and(|t| t.contains(" lo"));
    if ipv6_on {
        let v6 = InterfaceAddress {
            addr: Ipv6Addr::LOCALHOST.into(),
            prefix_len: 128,
            deprecated: false,
        };
        assert!(lo.addrs.contains(&v6), "{:?}", lo.addrs);
    }
    // Indexes unique; primary first (the default route's interface), the
    // rest by index: the same order the route table gives now.
    let mut by_index = interfaces.clone();
    by_index.sort_by_key(|i| i.index);
    assert!(by_index.windows(2).all(|w| w[0].index < w[1].index));
    crate::routes::order_by_default_route(&mut by_index, &crate::routes::default_routes().unwrap());
    assert_eq!(interfaces, by_index);
}

#[test]
fn every_listed_interface_matches_if_nametoindex() {
    for interface in list_interfaces().unwrap() {
        // It may vanish meanwhile; then the index lookup gives None.
        if let Some(index) = name_to_index(&interface.name) {
            assert_eq!(index, interface.index, "{}", interface.name);
        }
        for a in &interface.addrs {
            let max = if a.is_ipv6() { 128 } else { 32 };
            assert!(a.prefix_len <= max, "{a:?}");
        }
    }
}

/// A fake `/sys/class/net` under the temp dir, removed on drop.
struct FakeSys(PathBuf);

impl FakeSys {
    fn new() -> FakeSys {
        let dir = std::env::temp_dir().join(format!(
            "taps-sys-class-net-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        FakeSys(dir)
    }

    /// Adds an interface with an ARP type and extra entries: a name ending
    /// in `/` is a directory, `name=text` a file, `name->target` a symlink.
    fn add(&self, name: &str, arp_type: Option<u32>, entries: &[&str]) {
        let dir = self.0.join(name);
        fs::create_dir_all(&dir).unwrap();
        if let Some(t) = arp_type {
            fs::write(dir.join("type"), format!("{t}\n")).unwrap();
        }
        for entry in entries {
            if let Some(d) = entry.strip_suffix('/') {
                fs::create_dir_all(dir.join(d)).unwrap();
            } else if let Some((file, text)) = entry.split_once('=') {
                let path = dir.join(file);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, text).unwrap();
            } else if let Some((link, target)) = entry.split_once("->") {
                let path = dir.join(link);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(target, path).unwrap();
            } else {
                panic!("bad fake entry {entry}");
            }
        }
    }
}

impl Drop for FakeSys {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn classification_table() {
    use InterfaceKind::*;
    let sys = FakeSys::new();
    let driver = |d: &str| format!("device/driver->../../../bus/usb/drivers/{d}");
    let qmi = driver("qmi_wwan");
    let e1000 = driver("e1000e");
    // (name, ARP type, sysfs entries, loopback flag, expected kind)
    type Row<'a> = (&'a str, Option<u32>, &'a [&'a str], bool, InterfaceKind);
    let table: &[Row<'_>] = &[
        ("lo", Some(772), &[], true, Loopback),
        ("lo", None, &[], false, Loopback),
        ("loop7", Some(772), &[], false, Loopback),
        ("wlan0", Some(1), &["wireless/"], false, Wifi),
        ("wlp2s0", Some(1), &["phy80211/"], false, Wifi),
        (
            "wifi9",
            Some(1),
            &["uevent=DEVTYPE=wlan\nINTERFACE=wifi9\n"],
            false,
            Wifi,
        ),
        ("wwan0", Some(65534), &[], false, Cellular),
        ("wwp0s20f0u6", Some(1), &[], false, Cellular),
        ("rmnet_data0", Some(519), &[], false, Cellular),
        ("ccmni1", Some(1), &[], false, Cellular),
        ("pdp_ip0", None, &[], false, Cellular),
        ("modem0", Some(1), &[qmi.as_str()], false, Cellular),
        (
            "mbim0",
            Some(1),
            &["uevent=INTERFACE=mbim0\nDEVTYPE=wwan\n"],
            false,
            Cellular,
        ),
        (
            "eth0",
            Some(1),
            &[e1000.as_str(), "mtu=1500\n"],
            false,
            Wired,
        ),
        ("enp3s0", Some(1), &[], false, Wired),
        ("usb0", Some(1), &[], false, Wired),
        ("veth1", Some(1), &[], false, Wired),
        ("tun0", Some(65534), &[], false, Other),
        ("sit0", Some(776), &[], false, Other),
        ("ghost0", None, &[], false, Other),
    ];
    for (name, arp_type, entries, loopback, _) in table {
        if !*loopback {
            sys.add(name, *arp_type, entries);
        }
    }
    for (name, _, _, loopback, expected) in table {
        assert_eq!(
            classify(&sys.0, name, *loopback),
            *expected,
            "{name} (loopback flag {loopback})"
        );
    }
    // Names that would leave the directory are never looked up.
    for name in ["..", ".", "", "a/b"] {
        assert_eq!(classify(&sys.0, name, false), Other, "{name:?}");
    }
    assert_eq!(read_u32(&sys.0, "eth0", "mtu"), Some(1500));
    assert_eq!(read_u32(&sys.0, "ghost0", "mtu"), None);
    assert_eq!(read_u32(&sys.0, "../eth0", "mtu"), None);
}

#[test]
fn listing_against_a_fake_tree_falls_back_for_mtu_and_kind() {
    // With no sysfs entries, MTU is the default and lo is still loopback by
    // its flag; nothing is read from the real /sys.
    let sys = FakeSys::new();
    let interfaces = list_interfaces_in(&sys.0, &sys.0.join("no-if_inet6")).unwrap();
    let lo = interfaces.iter().find(|i| i.name == "lo").unwrap();
    assert_eq!(lo.kind, InterfaceKind::Loopback);
    assert_eq!(lo.mtu, DEFAULT_MTU);
    for i in interfaces.iter().filter(|i| i.name != "lo") {
        assert_eq!(i.kind, InterfaceKind::Other, "{}", i.name);
    }
}

#[test]
fn deprecated_flags_from_if_inet6() {
    let text = "\
fd000000000000000000000000000002 04 40 00 82     eth0
20010db8000000000000000000000001 04 40 00 20     eth0
20010db8000000000000000000000002 04 40 00 a0     wlan0
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
00000000000000000000000000000001 01 80 10 80       lo
garbage line
2001db8 04 40 00 20 eth0
zz010db8000000000000000000000001 04 40 00 20     eth0
";
    let deprecated = parse_deprecated(text);
    let expected: HashSet<(String, Ipv6Addr)> = [
        ("eth0".to_owned(), "2001:db8::1".parse().unwrap()),
        ("wlan0".to_owned(), "2001:db8::2".parse().unwrap()),
    ]
    .into_iter()
    .collect();
    assert_eq!(deprecated, expected);
}

#[test]
fn prefix_lengths_from_netmasks() {
    let v4: IpAddr = Ipv4Addr::new(10, 0, 0, 1).into();
    let v6: IpAddr = Ipv6Addr::LOCALHOST.into();
    let m = |s: &str| Some(s.parse::<IpAddr>().unwrap());
    assert_eq!(prefix_len(v4, m("255.0.0.0")), 8);
    assert_eq!(prefix_len(v4, m("255.255.255.255")), 32);
    assert_eq!(prefix_len(v4, m("0.0.0.0")), 0);
    assert_eq!(prefix_len(v4, None), 32);
    assert_eq!(prefix_len(v6, m("ffff:ffff:ffff:ffff::")), 64);
    assert_eq!(prefix_len(v6, m("255.255.0.0")), 128);
    assert_eq!(prefix_len(v6, None), 128);
}
