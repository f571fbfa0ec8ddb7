//! Network namespaces for tests on real sockets: making and removing
//! them, veth links between them, running a program or a thread inside
//! one, and per-namespace `/etc` files. The conformance suite's
//! topologies and the proxy harnesses ([`crate::proxies`]) are built from
//! these. Everything here needs root and `ip` (iproute2); tests that use
//! it are `#[ignore = "needs root"]` and call [`unmet_needs`] first, so a
//! machine that cannot run them fails them with the reason.
//!
//! Two properties of `ip netns exec NS PROGRAM` carry the design:
//! - it `exec`s the program, so the child's process id is the program's
//!   own, and stopping it stops the program;
//! - it gives the program a mount namespace in which every file of
//!   `/etc/netns/NS/` is bind-mounted over the same name in `/etc`
//!   ([`Netns::etc_file`]): a `resolv.conf`, `hosts`, or a private
//!   `passwd` and `shadow` for that namespace's programs alone, with the
//!   host's files untouched.

use std::fs::File;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sched::{CloneFlags, setns};

/// Why namespace tests cannot run here, if they cannot: not root, or no
/// `ip`.
pub fn unmet_needs() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        .unwrap_or("?");
    if uid != "0" {
        return Some(format!("not root (effective uid {uid})"));
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`ip -V` failed: {}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => Some(format!("no `ip` command (iproute2): {e}")),
    }
}

/// Panics with `test`'s needs when [`unmet_needs`] finds one.
pub fn require_root(test: &str) {
    if let Some(why) = unmet_needs() {
        panic!("{test} needs root and `ip` (iproute2): {why}");
    }
}

/// Runs `ip` with `args`; panics with its error output on failure.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a shell command in namespace `ns` and returns its output;
/// panics on failure.
pub fn sh_in(ns: &str, command: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", command])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "in {ns}: {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `make` on a thread that has entered namespace `ns`: the sockets
/// it makes stay in that namespace after the thread ends, so plain
/// threads of this process can serve them.
pub fn enter<T: Send + 'static>(ns: &str, make: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // Only this thread moves.
        setns(&file, CloneFlags::CLONE_NEWNET).unwrap();
        make()
    })
    .join()
    .unwrap()
}

/// A named network namespace with `lo` up; deleted, with its
/// `/etc/netns` files, on drop. Processes still running in it keep it
/// alive: stop them first (the proxy harnesses do, on their own drop).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// A new namespace named `{prefix}{pid}x{n}`, unique within this
    /// machine's concurrent test processes and threads. `prefix` should
    /// be short: `ip` takes names of up to 255 bytes, but they show in
    /// every command line.
    pub fn new(prefix: &str) -> Netns {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// Its name, for `ip -n` and `ip netns exec`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/etc/netns/NAME/file`, which programs started in the namespace
    /// ([`Netns::command`]) see as `/etc/file` (when `/etc/file` exists).
    pub fn etc_file(&self, file: &str, contents: &str) {
        let dir = format!("/etc/netns/{}", self.name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{file}"), contents).unwrap();
    }

    /// `program` to be run inside the namespace (`ip netns exec`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `make` on a thread inside the namespace ([`enter`]).
    pub fn enter<T: Send + 'static>(&self, make: impl FnOnce() -> T + Send + 'static) -> T {
        enter(&self.name, make)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.name));
    }
}

/// A veth pair: `a_if` in `a` with address `a_addr` (CIDR), `b_if` in `b`
/// with `b_addr`, both up. IPv6 addresses skip duplicate address
/// detection, which would hold them back for a second or more.
pub fn veth(a: &Netns, a_if: &str, a_addr: &str, b: &Netns, b_if: &str, b_addr: &str) {
    ip(&[
        "-n",
        a.name(),
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ]);
    for (ns, dev, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
        if addr.contains(':') {
            ip(&["-n", ns.name(), "addr", "add", addr, "dev", dev, "nodad"]);
        } else {
            ip(&["-n", ns.name(), "addr", "add", addr, "dev", dev]);
        }
        ip(&["-n", ns.name(), "link", "set", dev, "up"]);
    }
}
