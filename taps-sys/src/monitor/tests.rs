//! The monitor against real interface changes: a veth pair (or a dummy
//! interface where veth is missing) made with ip(8). Changing interfaces
//! needs root and `ip`, so those tests are `#[ignore]`d (run them with
//! `--include-ignored`) and fail, saying why, when their needs are not
//! met; what needs neither is checked by tests that always run.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::process::Command;
use std::thread::sleep;
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::geteuid;

use super::*;
use taps_core::InterfaceAddress;

/// Far above what a change needs to arrive; only there so a bug cannot hang
/// the suite.
const BOUND: Duration = Duration::from_secs(5);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Panics, saying why, unless this process can change interfaces: it
/// must be root and have ip(8). For the `#[ignore]`d tests, so that
/// running them where they cannot work fails instead of passing.
fn require_root_and_ip() {
    assert!(
        geteuid().is_root(),
        "this test changes interfaces and needs root (euid is {})",
        geteuid()
    );
    if let Err(e) = Command::new("ip").arg("-V").output() {
        panic!("this test changes interfaces with ip(8), which cannot run: {e}");
    }
}

/// A test interface, deleted on drop (also when the test fails).
struct TestLink {
    name: String,
}

impl TestLink {
    /// Creates `name` (a veth pair `name`/`name`p, or a dummy), gives it
    /// `addr`/32 and brings it up.
    fn create(name: &str, addr: Ipv4Addr) -> TestLink {
        let peer = format!("{name}p");
        let veth = ip(&["link", "add", name, "type", "veth", "peer", "name", &peer]);
        let link = TestLink {
            name: name.to_owned(),
        };
        match veth {
            Ok(()) => ip(&["link", "set", &peer, "up"]).unwrap(),
            Err(veth_err) => {
                if let Err(dummy_err) = ip(&["link", "add", name, "type", "dummy"]) {
                    panic!("running as root with ip, yet no test link: {veth_err}; {dummy_err}");
                }
            }
        }
        ip(&["addr", "add", &format!("{addr}/32"), "dev", name]).unwrap();
        ip(&["link", "set", name, "up"]).unwrap();
        link
    }
}

impl Drop for TestLink {
    fn drop(&mut self) {
        // Deleting one end of a veth pair deletes both.
        if let Err(e) = ip(&["link", "del", &self.name]) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Whether `list` has `name` up with `addr`.
fn has_up_with(list: &[Interface], name: &str, addr: Ipv4Addr) -> bool {
    let want = InterfaceAddress {
        addr: addr.into(),
        prefix_len: 32,
        deprecated: false,
    };
    list.iter()
        .any(|i| i.name == name && i.up && i.addrs.contains(&want))
}

/// Waits up to `timeout` for the monitor's descriptor to be readable, as a
/// reactor would; whether it became readable.
fn readable(monitor: &PathMonitor, timeout: Duration) -> bool {
    let mut fds = [PollFd::new(monitor.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    let n = poll(&mut fds, timeout).unwrap_or(-1);
    n > 0
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN))
}

/// Calls `poll_change` (waiting for readability first unless polling)
/// until `done` holds for a reported list, within [`BOUND`].
fn wait_for(monitor: &mut PathMonitor, what: &str, done: impl Fn(&[Interface]) -> bool) {
    let deadline = Instant::now() + BOUND;
    while Instant::now() < deadline {
        if monitor.is_polling() {
            sleep(Duration::from_millis(20));
        } else if !readable(monitor, Duration::from_millis(100)) {
            continue;
        }
        if let Some(list) = monitor.poll_change().unwrap() {
            assert_eq!(list, monitor.interfaces());
            if done(&list) {
                return;
            }
        }
    }
    panic!(
        "no change reported within {BOUND:?}: {what}; last list {:?}",
        monitor.interfaces()
    );
}

#[test]
fn netlink_monitor_opens_and_lists_loopback() {
    let monitor = PathMonitor::new().unwrap();
    assert!(!monitor.is_polling(), "netlink is available on Linux");
    assert!(monitor.interfaces().iter().any(|i| i.name == "lo"));
}

#[test]
#[ignore = "needs root and ip(8)"]
fn netlink_reports_a_new_interface_and_its_removal() {
    require_root_and_ip();
    let mut monitor = PathMonitor::new().unwrap();
    assert!(!monitor.is_polling(), "netlink is available on Linux");
    assert!(monitor.interfaces().iter().any(|i| i.name == "lo"));
    let name = format!("tmon{}", std::process::id());
    let addr = Ipv4Addr::new(198, 18, 0, 1);
    let link = TestLink::create(&name, addr);
    wait_for(&mut monitor, "link added", |list| {
        has_up_with(list, &name, addr)
    });
    drop(link);
    wait_for(&mut monitor, "link removed", |list| {
        list.iter().all(|i| i.name != name)
    });
}

#[test]
fn polling_fallback_never_wakes_the_reactor() {
    let mut monitor = PathMonitor::polling().unwrap();
    assert!(monitor.is_polling());
    assert!(!readable(&monitor, Duration::ZERO));
    // Some other test may be changing interfaces meanwhile, so a first
    // call may or may not report a change; it must not fail.
    monitor.poll_change().unwrap();
    assert!(!readable(&monitor, Duration::ZERO));
}

#[test]
#[ignore = "needs root and ip(8)"]
fn polling_fallback_reports_changes_and_never_wakes_the_reactor() {
    require_root_and_ip();
    let mut monitor = PathMonitor::polling().unwrap();
    assert!(monitor.is_polling());
    assert!(!readable(&monitor, Duration::ZERO));
    // Some other test may be changing interfaces meanwhile, so a first
    // call may or may not report a change; it must not fail.
    monitor.poll_change().unwrap();
    let name = format!("tpol{}", std::process::id());
    let addr = Ipv4Addr::new(198, 18, 0, 2);
    let link = TestLink::create(&name, addr);
    wait_for(&mut monitor, "link added", |list| {
        has_up_with(list, &name, addr)
    });
    drop(link);
    wait_for(&mut monitor, "link removed", |list| {
        list.iter().all(|i| i.name != name)
    });
    assert!(!readable(&monitor, Duration::ZERO));
}

#[test]
fn a_change_is_reported_only_when_the_list_differs() {
    let mut monitor = PathMonitor::new().unwrap();
    for _ in 0..3 {
        let before = monitor.interfaces().to_vec();
        // Another test may be changing interfaces meanwhile; whatever is
        // reported must then differ from the list before.
        if let Some(list) = monitor.poll_change().unwrap() {
            assert_ne!(list, before);
        }
    }
}

/// Notifications built with netlink-packet-route's emitter, as the kernel
/// sends them to the monitor's groups.
mod notifications {
    use super::super::notification_matters;
    use netlink_packet_core::NetlinkMessage;
    use netlink_packet_route::link::LinkMessage;
    use netlink_packet_route::neighbour::NeighbourMessage;
    use netlink_packet_route::route::{RouteAttribute, RouteHeader, RouteMessage, RouteType};
    use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

    fn emitted(message: RouteNetlinkMessage) -> Vec<u8> {
        let mut nl = NetlinkMessage::from(message);
        nl.finalize();
        let mut bytes = vec![0; nl.buffer_len()];
        nl.serialize(&mut bytes);
        bytes
    }

    fn route(prefix_len: u8) -> RouteMessage {
        let mut r = RouteMessage::default();
        r.header.address_family = AddressFamily::Inet6;
        r.header.destination_prefix_length = prefix_len;
        r.header.table = RouteHeader::RT_TABLE_MAIN;
        r.header.kind = RouteType::Unicast;
        r.attributes = vec![RouteAttribute::Oif(3), RouteAttribute::Priority(1024)];
        r
    }

    #[test]
    fn default_routes_links_and_addresses_matter_other_routes_do_not() {
        let new_default = emitted(RouteNetlinkMessage::NewRoute(route(0)));
        let del_default = emitted(RouteNetlinkMessage::DelRoute(route(0)));
        let prefix = emitted(RouteNetlinkMessage::NewRoute(route(64)));
        let link = emitted(RouteNetlinkMessage::NewLink(LinkMessage::default()));
        let neighbour = emitted(RouteNetlinkMessage::NewNeighbour(
            NeighbourMessage::default(),
        ));
        assert!(notification_matters(&new_default));
        assert!(notification_matters(&del_default));
        assert!(notification_matters(&link));
        assert!(!notification_matters(&prefix), "an on-link prefix");
        assert!(!notification_matters(&neighbour), "a neighbour entry");
        // Several messages in one datagram: one that matters is enough.
        let both = [prefix.clone(), del_default].concat();
        assert!(notification_matters(&both));
        assert!(!notification_matters(&[prefix.clone(), neighbour].concat()));
    }

    #[test]
    fn what_cannot_be_parsed_lists_again() {
        let prefix = emitted(RouteNetlinkMessage::NewRoute(route(64)));
        // Cut inside its header or body: unknown, so it counts.
        for end in 1..prefix.len() {
            assert!(notification_matters(&prefix[..end]), "cut at {end}");
        }
        assert!(notification_matters(&[0xff; 40]));
    }
}

/// A network namespace made with `ip netns`, deleted on drop, which a
/// thread can enter (setns(2) moves only the calling thread).
struct Netns {
    name: String,
}

impl Netns {
    fn create(name: &str) -> Netns {
        let _ = ip(&["netns", "del", name]);
        ip(&["netns", "add", name]).unwrap();
        Netns {
            name: name.to_owned(),
        }
    }

    /// Runs `f` on a thread that has entered the namespace.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap();
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// `ip -n NS COMMAND` (words split at spaces); panics on failure.
fn ip_in(ns: &str, command: &str) {
    let mut all = vec!["-n", ns];
    all.extend(command.split(' '));
    ip(&all).unwrap();
}

/// `high` first, then every other interface by index.
fn high_leads(list: &[Interface]) -> bool {
    list.first().is_some_and(|i| i.name == "high")
        && list[1..].windows(2).all(|w| w[0].index < w[1].index)
}

/// The names in a list, primary first.
fn order(list: &[Interface]) -> Vec<String> {
    list.iter().map(|i| i.name.clone()).collect()
}

#[test]
#[ignore = "needs root and ip(8)"]
fn the_primary_interface_is_the_default_routes_and_follows_it() {
    require_root_and_ip();
    let ns = Netns::create(&format!("tprim{}", std::process::id()));
    let name = ns.name.clone();
    // No IPv6: its link-local addresses and their DAD would send address
    // notifications late, which could hide a route change the monitor
    // missed.
    let exec = Command::new("ip")
        .args(["netns", "exec", &name, "sysctl", "-qw"])
        .args([
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ])
        .status()
        .unwrap();
    assert!(exec.success(), "sysctl in the namespace: {exec}");
    // Two links, veth pairs with both ends in the namespace (so each has
    // carrier). `low` is made first, so it has the lower index, and the
    // default route goes on `high`: index order would put `low` first.
    for (link, addr) in [("low", "10.71.0.1/24"), ("high", "10.72.0.1/24")] {
        ip_in(
            &name,
            &format!("link add {link} type veth peer name {link}p"),
        );
        ip_in(&name, &format!("addr add {addr} dev {link}"));
        ip_in(&name, &format!("link set {link}p up"));
        ip_in(&name, &format!("link set {link} up"));
    }
    ip_in(&name, "route add default via 10.72.0.254 dev high");
    ns.run(move || {
        let mut monitor = PathMonitor::new().unwrap();
        assert!(!monitor.is_polling(), "netlink is available on Linux");
        let index = |n: &str| {
            monitor
                .interfaces()
                .iter()
                .find(|i| i.name == n)
                .unwrap()
                .index
        };
        assert!(index("high") > index("low"), "{:?}", monitor.interfaces());
        assert!(
            high_leads(monitor.interfaces()),
            "the default route's link leads: {:?}",
            order(monitor.interfaces())
        );

        // Carrier comes up late (the kernel's linkwatch), with link
        // notifications of its own: wait for it and for the monitor to be
        // quiet, so that what follows is reported because of the routes
        // alone. (`lo` stays down: nobody brought it up in the namespace.)
        let links_up = |list: &[Interface]| list.iter().all(|i| i.up || i.name == "lo");
        if !links_up(monitor.interfaces()) {
            wait_for(&mut monitor, "every link up", links_up);
        }
        while readable(&monitor, Duration::from_millis(300)) {
            monitor.poll_change().unwrap();
        }
        assert!(
            high_leads(monitor.interfaces()),
            "{:?}",
            order(monitor.interfaces())
        );

        // `high`'s route becomes metric 200 and `low` gets one of metric
        // 100: the lower metric wins, and `high` still has a default.
        ip_in(&name, "route del default via 10.72.0.254 dev high");
        ip_in(
            &name,
            "route add default via 10.72.0.254 dev high metric 200",
        );
        ip_in(
            &name,
            "route add default via 10.71.0.254 dev low metric 100",
        );
        wait_for(&mut monitor, "the default route moved to low", |list| {
            order(list)[..3] == ["low", "high", "lo"]
        });

        // Only the route changes: no link or address does, yet the
        // monitor reports the new order.
        ip_in(
            &name,
            "route del default via 10.71.0.254 dev low metric 100",
        );
        wait_for(
            &mut monitor,
            "the default route is back on high",
            high_leads,
        );
    });
}
