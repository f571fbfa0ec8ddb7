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
