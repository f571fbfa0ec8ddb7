//! taps on a real (virtual) network: a client and a server network
//! namespace joined by two dual-stack veth pairs, a real DNS server, and
//! `tapscat` as the client. Needs root and `ip` (iproute2); otherwise it
//! prints why and skips. CI runs as root.
//!
//! How the pieces run:
//! - The **client** is the `tapscat` binary started with
//!   `ip netns exec CLIENT`, so the whole process (its interface list,
//!   netlink monitor and sockets) lives in the client namespace, and
//!   `ip netns exec` bind-mounts `/etc/netns/CLIENT/resolv.conf` over
//!   `/etc/resolv.conf`, so tapscat reads the test's DNS server from the
//!   system configuration as it would anywhere.
//! - The **servers** run in this test process: a thread enters the server
//!   namespace (`setns`), binds the sockets there and leaves; a socket
//!   stays in the namespace it was made in, so plain threads serve them.
//!   The TCP servers answer `from <source address>`, so the test sees which
//!   path a connection took from the server's side.
//! - The **DNS server** is a small authoritative server over UDP whose
//!   responses are real DNS messages built with hickory-proto
//!   (`taps_core::dns::responder`).
//!
//! Addresses (documentation ranges, RFC 5737 and RFC 3849):
//!
//! ```text
//! client ns                                server ns
//!  tA  198.51.100.1  2001:db8:a::1  <--->  sA  198.51.100.2  2001:db8:a::2
//!  tB  203.0.113.1   2001:db8:b::1  <--->  sB  203.0.113.2   2001:db8:b::2 (DNS :53)
//!                                          lo  192.0.2.80    2001:db8:f::80 (service)
//! ```
//!
//! The client reaches the service addresses through tA (metric 100) and tB
//! (metric 200); a socket bound to an interface (`SO_BINDTODEVICE`) takes
//! that interface's route. A path is made black by a permanent neighbour
//! entry to a MAC address that nobody has: SYNs leave and vanish.
//!
//! Bounds are generous (under 2 s where a sequential connect would wait
//! for the kernel's SYN retries, over 60 s); exact timing is the
//! simulator's business.
#![allow(missing_docs, clippy::unwrap_used)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use taps_core::dns::responder::{build_response, parse_query};
use taps_core::dns::wire::{Answer, QueryType};

const TAPSCAT: &str = env!("CARGO_BIN_EXE_tapscat");
const BOGUS_MAC: &str = "02:00:00:00:00:99";
const SERVICE_V4: &str = "192.0.2.80";
const SERVICE_V6: &str = "2001:db8:f::80";

/// Why the namespace tests cannot run here, if they cannot.
fn skip_reason() -> Option<String> {
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

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The two namespaces and their links; removed on drop.
struct Topology {
    client: String,
    server: String,
}

impl Topology {
    fn new() -> Topology {
        let tag = std::process::id() % 100_000;
        let t = Topology {
            client: format!("tapsc{tag}"),
            server: format!("tapss{tag}"),
        };
        let (c, s) = (t.client.as_str(), t.server.as_str());
        ip(&["netns", "add", c]);
        ip(&["netns", "add", s]);
        for (cl, sv, v4c, v4s, v6c, v6s) in [
            (
                "tA",
                "sA",
                "198.51.100.1/24",
                "198.51.100.2/24",
                "2001:db8:a::1/64",
                "2001:db8:a::2/64",
            ),
            (
                "tB",
                "sB",
                "203.0.113.1/24",
                "203.0.113.2/24",
                "2001:db8:b::1/64",
                "2001:db8:b::2/64",
            ),
        ] {
            ip(&[
                "-n", c, "link", "add", cl, "type", "veth", "peer", "name", sv, "netns", s,
            ]);
            ip(&["-n", c, "addr", "add", v4c, "dev", cl]);
            ip(&["-n", c, "addr", "add", v6c, "dev", cl, "nodad"]);
            ip(&["-n", s, "addr", "add", v4s, "dev", sv]);
            ip(&["-n", s, "addr", "add", v6s, "dev", sv, "nodad"]);
            ip(&["-n", c, "link", "set", cl, "up"]);
            ip(&["-n", s, "link", "set", sv, "up"]);
        }
        for ns in [c, s] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "-n",
            s,
            "addr",
            "add",
            &format!("{SERVICE_V4}/32"),
            "dev",
            "lo",
        ]);
        ip(&[
            "-n",
            s,
            "addr",
            "add",
            &format!("{SERVICE_V6}/128"),
            "dev",
            "lo",
            "nodad",
        ]);
        let v4 = format!("{SERVICE_V4}/32");
        let v6 = format!("{SERVICE_V6}/128");
        ip(&[
            "-n",
            c,
            "route",
            "add",
            &v4,
            "via",
            "198.51.100.2",
            "dev",
            "tA",
            "metric",
            "100",
        ]);
        ip(&[
            "-n",
            c,
            "route",
            "add",
            &v4,
            "via",
            "203.0.113.2",
            "dev",
            "tB",
            "metric",
            "200",
        ]);
        ip(&[
            "-n",
            c,
            "-6",
            "route",
            "add",
            &v6,
            "via",
            "2001:db8:a::2",
            "dev",
            "tA",
            "metric",
            "100",
        ]);
        ip(&[
            "-n",
            c,
            "-6",
            "route",
            "add",
            &v6,
            "via",
            "2001:db8:b::2",
            "dev",
            "tB",
            "metric",
            "200",
        ]);
        // tapscat's system DNS configuration inside the client namespace.
        let etc = format!("/etc/netns/{c}");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            format!("{etc}/resolv.conf"),
            "nameserver 203.0.113.2\noptions timeout:1 attempts:2\n",
        )
        .unwrap();
        t
    }

    /// Waits until each interface carries each family (fresh links may
    /// lose their first packets while neighbour discovery starts), so the
    /// cases below measure racing, not link bring-up.
    fn settle(&self) {
        for dev in ["tA", "tB"] {
            for target in [format!("[{SERVICE_V6}]:8080"), format!("{SERVICE_V4}:8080")] {
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let (out, _) = self.tapscat(&["--interface", dev, "--timeout", "0.5", &target]);
                    if out.status.success() {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{target} via {dev} never worked: {}",
                        text(&out.stderr)
                    );
                }
            }
        }
    }

    /// Makes the client's path through `dev` to `gateway` black.
    fn blackhole(&self, dev: &str, gateway: &str) {
        let family = if gateway.contains(':') { "-6" } else { "-4" };
        ip(&[
            "-n",
            &self.client,
            family,
            "neigh",
            "replace",
            gateway,
            "lladdr",
            BOGUS_MAC,
            "dev",
            dev,
            "nud",
            "permanent",
        ]);
    }

    /// Undoes [`Topology::blackhole`].
    fn heal(&self, dev: &str, gateway: &str) {
        let family = if gateway.contains(':') { "-6" } else { "-4" };
        ip(&[
            "-n",
            &self.client,
            family,
            "neigh",
            "del",
            gateway,
            "dev",
            dev,
        ]);
    }

    /// Runs tapscat in the client namespace.
    fn tapscat(&self, args: &[&str]) -> (Output, Duration) {
        let started = Instant::now();
        let out = Command::new("ip")
            .args(["netns", "exec", &self.client, TAPSCAT])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (out, started.elapsed())
    }

    /// Binds sockets inside the server namespace.
    fn in_server<T: Send + 'static>(&self, make: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.server);
        std::thread::spawn(move || {
            let ns = File::open(&path).unwrap();
            // Only this thread moves; the sockets it makes stay in the
            // server namespace after it ends.
            setns(&ns, CloneFlags::CLONE_NEWNET).unwrap();
            make()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.client, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.client));
    }
}

/// The authoritative answers of the test zone.
fn answer(name: &str, qtype: QueryType) -> Answer {
    let v4: IpAddr = SERVICE_V4.parse().unwrap();
    let v6: IpAddr = SERVICE_V6.parse().unwrap();
    let addrs: Vec<IpAddr> = match (
        name.trim_end_matches('.').to_ascii_lowercase().as_str(),
        qtype,
    ) {
        ("dual.taps.test", QueryType::A) => vec![v4],
        ("dual.taps.test", QueryType::Aaaa) => vec![v6],
        ("dual.taps.test", QueryType::Https) => vec![],
        _ => return Answer::NxDomain { negative_ttl: 5 },
    };
    if addrs.is_empty() {
        Answer::NoData { negative_ttl: 5 }
    } else {
        Answer::Addresses {
            addrs: addrs.into(),
            ttl: 5,
        }
    }
}

/// Serves DNS over UDP on `socket` forever (a daemon thread).
fn dns_server(socket: UdpSocket, queries: Arc<Mutex<u32>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            let Ok(question) = parse_query(&buf[..n]) else {
                continue;
            };
            *queries.lock().unwrap() += 1;
            let reply = build_response(
                &question,
                &answer(question.name.as_str(), question.qtype),
                false,
            );
            let _ = socket.send_to(&reply, from);
        }
    });
}

/// Answers every connection with `from <source address>`; remembers them.
fn tcp_server(listener: TcpListener, seen: Arc<Mutex<Vec<SocketAddr>>>) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let Ok(peer) = stream.peer_addr() else {
                continue;
            };
            seen.lock().unwrap().push(peer);
            let _ = stream.write_all(format!("from {}\n", peer.ip()).as_bytes());
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
        }
    });
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts tapscat succeeded and returns what the server said (the source
/// address it saw) and the trace JSON.
fn expect_ok(out: &Output, elapsed: Duration, bound: Duration, case: &str) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{case}: tapscat failed:\n{stderr}"
    );
    assert!(
        elapsed < bound,
        "{case}: took {elapsed:?} (bound {bound:?})\n{stderr}"
    );
    let said = text(&out.stdout);
    said.trim()
        .strip_prefix("from ")
        .unwrap_or_else(|| panic!("{case}: server said {said:?}"))
        .to_owned()
}

#[test]
fn racing_over_real_paths_in_network_namespaces() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED racing_over_real_paths_in_network_namespaces: {why}");
        return;
    }
    let topo = Topology::new();
    let queries = Arc::new(Mutex::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (dns, both, v4_only) = topo.in_server(|| {
        (
            UdpSocket::bind("203.0.113.2:53").unwrap(),
            (
                TcpListener::bind((SERVICE_V4, 8080)).unwrap(),
                TcpListener::bind((SERVICE_V6, 8080)).unwrap(),
            ),
            TcpListener::bind((SERVICE_V4, 8081)).unwrap(),
        )
    });
    dns_server(dns, queries.clone());
    tcp_server(both.0, seen.clone());
    tcp_server(both.1, seen.clone());
    tcp_server(v4_only, seen.clone());
    let two_s = Duration::from_secs(2);
    topo.settle();

    // Healthy: IPv6 is preferred, over the primary interface (tA).
    let (out, t) = topo.tapscat(&["--trace", "dual.taps.test:8080"]);
    assert_eq!(expect_ok(&out, t, two_s, "healthy"), "2001:db8:a::1");
    assert!(*queries.lock().unwrap() >= 2, "the DNS server was asked");

    // IPv6 blackhole on tA: SYNs vanish. IPv4 wins about one Connection
    // Attempt Delay (250 ms) later, not after the kernel's SYN retries.
    topo.blackhole("tA", "2001:db8:a::2");
    // Control: the IPv6 path alone really is black.
    let (out, t) = topo.tapscat(&[
        "--require",
        "tA",
        "--timeout",
        "1",
        &format!("[{SERVICE_V6}]:8080"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "blackhole control: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("connTimeout"),
        "{}",
        text(&out.stderr)
    );
    assert!(t >= Duration::from_millis(900));
    let dir = std::env::temp_dir().join(format!("taps-netns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("blackhole.json");
    let (out, t) = topo.tapscat(&[
        "--require",
        "tA",
        "--trace",
        "--trace-json",
        json.to_str().unwrap(),
        "dual.taps.test:8080",
    ]);
    assert_eq!(expect_ok(&out, t, two_s, "IPv6 blackhole"), "198.51.100.1");
    let trace = std::fs::read_to_string(&json).unwrap();
    let first_v6 = trace
        .find(&format!("\"remote\":\"[{SERVICE_V6}]:8080\""))
        .unwrap();
    let v4 = trace
        .find(&format!("\"remote\":\"{SERVICE_V4}:8080\""))
        .unwrap();
    assert!(first_v6 < v4, "IPv6 was tried first: {trace}");
    topo.heal("tA", "2001:db8:a::2");

    // IPv6 refused (the server listens on IPv4 only): IPv4 at once. With a
    // 2 s Connection Attempt Delay, only the refusal can start it early.
    let (out, t) = topo.tapscat(&[
        "--require",
        "tA",
        "--attempt-delay",
        "2000",
        "--trace",
        "dual.taps.test:8081",
    ]);
    assert_eq!(
        expect_ok(&out, t, Duration::from_millis(1500), "IPv6 refused"),
        "198.51.100.1"
    );
    assert!(
        text(&out.stderr).contains("connection refused"),
        "{}",
        text(&out.stderr)
    );

    // Two interfaces, the first one dead (both families black on tA): the
    // second path (tB) starts one path delay (1 s) later and wins.
    topo.blackhole("tA", "2001:db8:a::2");
    topo.blackhole("tA", "198.51.100.2");
    let (out, t) = topo.tapscat(&["--trace", "dual.taps.test:8080"]);
    let source = expect_ok(&out, t, Duration::from_millis(2500), "first interface dead");
    assert!(
        source == "2001:db8:b::1" || source == "203.0.113.1",
        "won over {source}, not tB"
    );
    topo.heal("tA", "2001:db8:a::2");
    topo.heal("tA", "198.51.100.2");

    // --prohibit and --require (and --interface): the server sees the
    // connection come from the interface allowed, never the other.
    for (args, want) in [
        (&["--prohibit", "tA"][..], "2001:db8:b::1"),
        (&["--require", "tB"][..], "2001:db8:b::1"),
        (&["--interface", "tB"][..], "2001:db8:b::1"),
        (&["--require", "tA"][..], "2001:db8:a::1"),
        (&["--prohibit", "tB"][..], "2001:db8:a::1"),
    ] {
        let before = seen.lock().unwrap().len();
        let mut all = args.to_vec();
        all.push("dual.taps.test:8080");
        let (out, t) = topo.tapscat(&all);
        assert_eq!(
            expect_ok(&out, t, two_s, &format!("{args:?}")),
            want,
            "{args:?}"
        );
        let new: Vec<SocketAddr> = seen.lock().unwrap()[before..].to_vec();
        assert!(
            new.iter().all(|a| a.ip().to_string() == want),
            "{args:?}: the server saw {new:?}"
        );
    }
    // Prohibiting every path is an establishment failure that says why.
    let (out, _) = topo.tapscat(&[
        "--prohibit",
        "tA",
        "--prohibit",
        "tB",
        "dual.taps.test:8080",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    // Only loopback is left, and it reaches no resolved address.
    assert!(
        text(&out.stderr).contains("no resolved address is reachable over an allowed path"),
        "{}",
        text(&out.stderr)
    );
    let (out, _) = topo.tapscat(&[
        "--prohibit",
        "tA",
        "--prohibit",
        "tB",
        "--prohibit",
        "loopback",
        "dual.taps.test:8080",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("every interface is excluded")
            && err.contains("tA (wired: Prohibit interface tA)"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
