//! Racing over a real (virtual) network: a client and a server network
//! namespace joined by two dual-stack veth pairs, a real DNS server, and
//! a client program in the client namespace. Needs root and `ip`
//! (iproute2): the tests are `#[ignore]`d, and fail with the reason when
//! asked for on a machine that cannot run them. CI runs them as root.
//!
//! The same [`scenarios`] run against any client that speaks tapscat's
//! arguments and exit statuses: `tapscat` itself (taps-tokio's own test),
//! and, for the conformance suite, the adapter's test binary started again
//! in the client namespace, where [`client_child`] plays a tapscat subset
//! over that adapter ([`racing`]).
//!
//! How the pieces run:
//! - The **client** is started with `ip netns exec CLIENT`, so the whole
//!   process (its interface list, netlink monitor and sockets) lives in the
//!   client namespace, and `ip netns exec` bind-mounts
//!   `/etc/netns/CLIENT/resolv.conf` over `/etc/resolv.conf`, so it reads
//!   the test's DNS server from the system configuration as it would
//!   anywhere.
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

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use taps_core::{
    InterfaceKind, LocalEndpoint, Message, TransportProperties,
    dns::{Answer, QueryType},
    race::{Policy, RaceConfig},
};
use taps_io::{Config, Error, Preconnection, trace};
use taps_testkit::dns::{build_response, parse_query};

use crate::Shim;
use crate::support::within;

/// A MAC address that nobody has: neighbour entries to it make a path black.
pub const BOGUS_MAC: &str = "02:00:00:00:00:99";
/// The service's IPv4 address (on the server namespace's loopback).
pub const SERVICE_V4: &str = "192.0.2.80";
/// The service's IPv6 address.
pub const SERVICE_V6: &str = "2001:db8:f::80";

use taps_testkit::netns::{enter, sh_in as in_namespace};
pub use taps_testkit::netns::{ip, unmet_needs};

/// Builds the client's command (program, arguments, environment) for a
/// client invocation with tapscat-style arguments.
pub type ClientCommand = Box<dyn Fn(&[&str]) -> Command>;

/// The two namespaces and their links; removed on drop.
pub struct Topology {
    /// The client namespace's name.
    pub client: String,
    /// The server namespace's name.
    pub server: String,
    command: ClientCommand,
}

impl Topology {
    /// Makes the namespaces, links, addresses and routes; `command` is the
    /// client program, run in the client namespace by
    /// [`Topology::run_client`].
    pub fn new(command: ClientCommand) -> Topology {
        let t = Topology::namespaces(command, "");
        let (c, s) = (t.client.as_str(), t.server.as_str());
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
        // TCP Fast Open on the server side for every listener (0x400, set
        // before they listen) and on the client side (1): see
        // [`fast_open`]. The setting is the namespace's own.
        in_namespace(s, "echo 1027 > /proc/sys/net/ipv4/tcp_fastopen");
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

    /// A client and a server namespace, with `lo` up in both and nothing
    /// else; `flavour` keeps the names apart from another topology of the
    /// same process.
    fn namespaces(command: ClientCommand, flavour: &str) -> Topology {
        // Unique per process and per adapter's test binary (both may run
        // on one machine, one after the other or at once).
        let tag = std::process::id() % 100_000;
        let t = Topology {
            client: format!("tapsc{flavour}{tag}"),
            server: format!("tapss{flavour}{tag}"),
            command,
        };
        for ns in [&t.client, &t.server] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        t
    }

    /// Waits until each interface carries each family (fresh links may
    /// lose their first packets while neighbour discovery starts), so the
    /// cases below measure racing, not link bring-up.
    pub fn settle(&self) {
        for dev in ["tA", "tB"] {
            for target in [format!("[{SERVICE_V6}]:8080"), format!("{SERVICE_V4}:8080")] {
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let (out, _) =
                        self.run_client(&["--interface", dev, "--timeout", "0.5", &target]);
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
    pub fn blackhole(&self, dev: &str, gateway: &str) {
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
    pub fn heal(&self, dev: &str, gateway: &str) {
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

    /// Runs the client in the client namespace with tapscat-style
    /// arguments; its output and how long it took.
    pub fn run_client(&self, args: &[&str]) -> (Output, Duration) {
        let inner = (self.command)(args);
        let started = Instant::now();
        let out = Command::new("ip")
            .args(["netns", "exec", &self.client])
            .arg(inner.get_program())
            .args(inner.get_args())
            .envs(
                inner
                    .get_envs()
                    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
            )
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (out, started.elapsed())
    }

    /// Binds sockets inside the server namespace.
    pub fn in_server<T: Send + 'static>(&self, make: impl FnOnce() -> T + Send + 'static) -> T {
        enter(&self.server, make)
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
pub fn answer(name: &str, qtype: QueryType) -> Answer {
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
pub fn dns_server(socket: UdpSocket, queries: Arc<Mutex<u32>>) {
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

/// A `TcpExt` counter of namespace `ns`'s kernel (`/proc/net/netstat`).
fn tcp_ext_counter(ns: &str, name: &str) -> u64 {
    let netstat = in_namespace(ns, "cat /proc/net/netstat");
    let mut rows = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (rows.next(), rows.next()) else {
        panic!("no TcpExt rows in {ns}'s /proc/net/netstat");
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no TcpExt counter {name}"))
}

/// Answers every connection with `from <source address>`; remembers them.
/// Each connection is served on its own thread: one whose client's end
/// never arrives (its link went down) must not hold up the next.
pub fn tcp_server(listener: TcpListener, seen: Arc<Mutex<Vec<SocketAddr>>>) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let Ok(peer) = stream.peer_addr() else {
                continue;
            };
            seen.lock().unwrap().push(peer);
            std::thread::spawn(move || {
                let _ = stream.write_all(format!("from {}\n", peer.ip()).as_bytes());
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest);
            });
        }
    });
}

/// Bytes as text, for messages.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts the client succeeded and returns what the server said (the
/// source address it saw).
pub fn expect_ok(out: &Output, elapsed: Duration, bound: Duration, case: &str) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{case}: the client failed:\n{stderr}"
    );
    assert!(
        elapsed < bound,
        "{case}: took {elapsed:?} (bound {bound:?})\n{stderr}"
    );
    // A test binary's harness may print lines of its own.
    let said = text(&out.stdout);
    said.lines()
        .find_map(|l| l.trim().strip_prefix("from "))
        .unwrap_or_else(|| panic!("{case}: server said {said:?}"))
        .to_owned()
}

/// The namespaces with their servers running, ready for [`scenarios`];
/// `None` (after saying why) where they cannot be made.
pub struct Network {
    /// The namespaces.
    pub topo: Topology,
    queries: Arc<Mutex<u32>>,
    seen: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Network {
    /// Builds the topology, starts the DNS and TCP servers, and waits
    /// until every path works.
    ///
    /// # Panics
    ///
    /// When this machine cannot (not root, no `ip`): the tests that call it
    /// are `#[ignore]`d, so they run only when asked for, and then a
    /// machine that cannot run them fails them rather than passing them.
    pub fn start(test: &str, command: ClientCommand) -> Network {
        if let Some(why) = unmet_needs() {
            panic!("{test} needs root and `ip` (iproute2): {why}");
        }
        let topo = Topology::new(command);
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
        topo.settle();
        Network {
            topo,
            queries,
            seen,
        }
    }
}

/// The NAT64 service: 192.0.2.80 ([`SERVICE_V4`]) synthesized with the
/// Well-Known Prefix 64:ff9b::/96 (RFC 6052 §2.1), as a NAT64 would
/// present it.
pub const NAT64_SERVICE: &str = "64:ff9b::c000:250";

/// NAT64 (HEv3 §8) on real sockets: an IPv6-only client namespace, and a
/// server namespace where dnsmasq answers `ipv4only.arpa` with
/// 64:ff9b::c000:aa (RFC 7050 §3) and `v4only.taps.test` with an A record
/// only, and the service listens on [`NAT64_SERVICE`]. The NAT64 itself
/// is invisible to a client, so the server plays it by owning the
/// synthesized address.
///
/// ```text
/// client ns (IPv6 only)          server ns
///  tA  2001:db8:a::1  <--->  sA  2001:db8:a::2 (dnsmasq :53)
///                            lo  64:ff9b::c000:250 (service :8080)
/// ```
pub struct Nat64Network {
    /// The namespaces.
    pub topo: Topology,
    dnsmasq: std::process::Child,
    seen: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Nat64Network {
    /// Builds the namespaces, starts dnsmasq and the service, and waits
    /// until the path works.
    ///
    /// # Panics
    ///
    /// Without root, `ip` or `dnsmasq` (Debian: dnsmasq-base).
    pub fn start(test: &str, command: ClientCommand) -> Nat64Network {
        if let Some(why) = unmet_needs() {
            panic!("{test} needs root and `ip` (iproute2): {why}");
        }
        let topo = Topology::namespaces(command, "n");
        let (c, s) = (topo.client.as_str(), topo.server.as_str());
        ip(&[
            "-n", c, "link", "add", "tA", "type", "veth", "peer", "name", "sA", "netns", s,
        ]);
        ip(&[
            "-n",
            c,
            "addr",
            "add",
            "2001:db8:a::1/64",
            "dev",
            "tA",
            "nodad",
        ]);
        ip(&[
            "-n",
            s,
            "addr",
            "add",
            "2001:db8:a::2/64",
            "dev",
            "sA",
            "nodad",
        ]);
        ip(&["-n", c, "link", "set", "tA", "up"]);
        ip(&["-n", s, "link", "set", "sA", "up"]);
        let service = format!("{NAT64_SERVICE}/128");
        ip(&["-n", s, "addr", "add", &service, "dev", "lo", "nodad"]);
        ip(&[
            "-n",
            c,
            "-6",
            "route",
            "add",
            "64:ff9b::/96",
            "via",
            "2001:db8:a::2",
            "dev",
            "tA",
        ]);
        let etc = format!("/etc/netns/{c}");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            format!("{etc}/resolv.conf"),
            "nameserver 2001:db8:a::2\noptions timeout:1 attempts:2\n",
        )
        .unwrap();
        let dnsmasq = Command::new("ip")
            .args(["netns", "exec", s, "dnsmasq"])
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=2001:db8:a::2",
                "--port=53",
                "--user=root",
                "--pid-file=",
                "--host-record=ipv4only.arpa,64:ff9b::c000:aa",
                &format!("--host-record=v4only.taps.test,{SERVICE_V4}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{test} needs dnsmasq (Debian: dnsmasq-base): {e}"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener = topo.in_server(|| TcpListener::bind((NAT64_SERVICE, 8080)).unwrap());
        tcp_server(listener, seen.clone());
        let net = Nat64Network {
            topo,
            dnsmasq,
            seen,
        };
        // The path and dnsmasq are up once a name resolves and connects.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (out, _) =
                net.topo
                    .run_client(&["--timeout", "0.5", &format!("[{NAT64_SERVICE}]:8080")]);
            if out.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the NAT64 service never answered: {}",
                text(&out.stderr)
            );
        }
        net
    }
}

impl Drop for Nat64Network {
    fn drop(&mut self) {
        let _ = self.dnsmasq.kill();
        let _ = self.dnsmasq.wait();
    }
}

/// HEv3 §8 end to end: an A-only name and an IPv4 literal, both reached
/// through the synthesized address after the client discovers the PREF64
/// from dnsmasq's `ipv4only.arpa` answer.
pub fn nat64_scenarios(net: &Nat64Network) {
    let topo = &net.topo;
    let five_s = Duration::from_secs(5);
    for (case, target) in [
        ("A-only name", "v4only.taps.test:8080"),
        ("IPv4 literal", "192.0.2.80:8080"),
    ] {
        let before = net.seen.lock().unwrap().len();
        let (out, t) = topo.run_client(&["--trace", target]);
        assert_eq!(expect_ok(&out, t, five_s, case), "2001:db8:a::1", "{case}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "{SERVICE_V4}:8080 via [{NAT64_SERVICE}]:8080 (NAT64)"
            )),
            "{case}: the trace names both addresses:\n{stderr}"
        );
        assert!(
            stderr.contains("PREF64 64:ff9b::/96 (ipv4only.arpa, RFC 7050)"),
            "{case}: the trace names the discovered prefix:\n{stderr}"
        );
        assert_eq!(net.seen.lock().unwrap().len(), before + 1, "{case}");
    }
}

/// The namespace scenarios: healthy dual stack, IPv6 blackhole (with its
/// control), IPv6 refused, a dead first interface, and prohibit/require
/// checked from the server's side, plus the errors when every path is
/// prohibited.
pub fn scenarios(net: &Network) {
    let topo = &net.topo;
    let two_s = Duration::from_secs(2);

    // Healthy: IPv6 is preferred, over the primary interface (tA).
    let (out, t) = topo.run_client(&["--trace", "dual.taps.test:8080"]);
    assert_eq!(expect_ok(&out, t, two_s, "healthy"), "2001:db8:a::1");
    assert!(
        *net.queries.lock().unwrap() >= 2,
        "the DNS server was asked"
    );

    // IPv6 blackhole on tA: SYNs vanish. IPv4 wins about one Connection
    // Attempt Delay (250 ms) later, not after the kernel's SYN retries.
    topo.blackhole("tA", "2001:db8:a::2");
    // Control: the IPv6 path alone really is black.
    let (out, t) = topo.run_client(&[
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
    let (out, t) = topo.run_client(&[
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
    let (out, t) = topo.run_client(&[
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
    let (out, t) = topo.run_client(&["--trace", "dual.taps.test:8080"]);
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
        let before = net.seen.lock().unwrap().len();
        let mut all = args.to_vec();
        all.push("dual.taps.test:8080");
        let (out, t) = topo.run_client(&all);
        assert_eq!(
            expect_ok(&out, t, two_s, &format!("{args:?}")),
            want,
            "{args:?}"
        );
        let new: Vec<SocketAddr> = net.seen.lock().unwrap()[before..].to_vec();
        assert!(
            new.iter().all(|a| a.ip().to_string() == want),
            "{args:?}: the server saw {new:?}"
        );
    }
    // Prohibiting every path is an establishment failure that says why.
    let (out, _) = topo.run_client(&[
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
    let (out, _) = topo.run_client(&[
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

/// The adapters' own client only (tapscat has no such option), after
/// [`scenarios`], since a link taken down loses its routes: the connection
/// over tB hears of it from the path monitor (netlink) as a soft error and
/// a path change, and stays established (RFC 9622 §8.3).
pub fn path_events(net: &Network) {
    let topo = &net.topo;
    let (out, t) = topo.run_client(&[
        "--require",
        "tB",
        "--down-after-connect",
        "tB",
        "dual.taps.test:8080",
    ]);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", text(&out.stderr));
    assert!(
        said.contains("EVENTS SoftError(InterfaceDown) PathChange STATE Some(Established)"),
        "path events: {said}"
    );
    assert!(t < Duration::from_secs(8), "took {t:?}");
}

/// tapscat only (`--history FILE`): connection history outlives the
/// process (RFC 9623 §4.2.1, HEv3 §5.3). With IPv6 black on tA, a first
/// run tries IPv6, waits one Connection Attempt Delay, and wins over IPv4;
/// it saves that IPv6 hung. A second run, a new process, reads the file
/// and goes to IPv4 at once: its trace has no IPv6 attempt, and it takes a
/// fraction of the first run's time. The HTTPS answer (NODATA, 5 s TTL)
/// comes back from the file too, so the second run does not ask for it.
/// Prints both times.
pub fn history_across_processes(net: &Network) {
    let topo = &net.topo;
    let dir = std::env::temp_dir().join(format!("taps-netns-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let history = dir.join("history");
    let v6_attempt = format!("\"remote\":\"[{SERVICE_V6}]:8080\"");
    let v4_attempt = format!("\"remote\":\"{SERVICE_V4}:8080\"");
    topo.blackhole("tA", "2001:db8:a::2");
    let run = |n: u32| {
        let json = dir.join(format!("run{n}.json"));
        let (out, t) = topo.run_client(&[
            "--require",
            "tA",
            "--history",
            history.to_str().unwrap(),
            "--trace-json",
            json.to_str().unwrap(),
            "dual.taps.test:8080",
        ]);
        let source = expect_ok(&out, t, Duration::from_secs(2), &format!("history run {n}"));
        assert_eq!(source, "198.51.100.1", "run {n}");
        (
            std::fs::read_to_string(&json).unwrap(),
            text(&out.stderr),
            t,
        )
    };
    let (first, err1, t1) = run(1);
    let (second, err2, t2) = run(2);
    topo.heal("tA", "2001:db8:a::2");
    eprintln!("history across processes: first run {t1:?}, second run {t2:?}");
    assert!(
        err1.contains("does not exist yet") && err1.lines().count() == 1,
        "first run: one warning, no file yet: {err1}"
    );
    assert!(err2.is_empty(), "second run: no warning: {err2}");
    assert!(
        first.contains(&v6_attempt) && first.contains(&v4_attempt),
        "the first run tried IPv6, then IPv4: {first}"
    );
    assert_eq!(
        second.matches(&v6_attempt).count(),
        0,
        "the second run made no IPv6 attempt: {second}"
    );
    assert!(second.contains(&v4_attempt), "{second}");
    let https_from_cache = second.split('{').any(|event| {
        event.contains("\"dns_answer\"")
            && event.contains("\"qtype\":\"HTTPS\"")
            && event.contains("\"local\":\"cache\"")
    });
    assert!(
        https_from_cache,
        "the second run took the HTTPS answer from the file: {second}"
    );
    assert!(
        t2 < t1 / 2,
        "the second run took {t2:?}, not under half the first's {t1:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The adapters' own client only (`--send-first`): `InitiateWithSend`
/// (RFC 9622 §7.2) with a safely replayable first message uses TCP Fast
/// Open (RFC 7413) over a real path. The first connection gets a cookie
/// (its data follows the handshake); the second carries its first message
/// in the SYN, as the server's kernel counts it (`TCPFastOpenPassive`).
pub fn fast_open(net: &Network) {
    let topo = &net.topo;
    let target = format!("[{SERVICE_V6}]:8080");
    let args = ["--interface", "tA", "--send-first", "hello", &target];
    let before = tcp_ext_counter(&topo.server, "TCPFastOpenPassive");
    for _ in 0..2 {
        let (out, t) = topo.run_client(&args);
        assert_eq!(
            expect_ok(&out, t, Duration::from_secs(2), "fast open"),
            "2001:db8:a::1"
        );
    }
    let after = tcp_ext_counter(&topo.server, "TCPFastOpenPassive");
    assert!(
        after > before,
        "no SYN carried data: TCPFastOpenPassive {before} -> {after}"
    );
}

/// The environment variable that makes [`client_child`] act: the client's
/// arguments, separated by `\x1f`.
pub const CHILD_ENV: &str = "TAPS_CONFORMANCE_NETNS_CLIENT";

/// The namespace test for adapter `S`: its own test binary, started again
/// in the client namespace, is the client.
pub fn racing<S: Shim>() {
    let test = "racing_over_real_paths_in_network_namespaces";
    let exe = std::env::current_exe().unwrap();
    let command: ClientCommand = Box::new(move |args| {
        let mut c = Command::new(&exe);
        c.args([
            "netns_client_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, args.join("\x1f"));
        c
    });
    let net = Network::start(test, command);
    scenarios(&net);
    path_events(&net);
    fast_open(&net);
}

/// Exit statuses, as tapscat's.
const EXIT_USAGE: i32 = 2;
const EXIT_ESTABLISHMENT: i32 = 3;
const EXIT_CONNECTION: i32 = 4;

/// The client side of [`racing`], in the child process: a tapscat subset
/// (`--trace`, `--trace-json FILE`, `--interface`, `--require`,
/// `--prohibit`, `--timeout`, `--attempt-delay`, and its own
/// `--down-after-connect DEV` and `--send-first TEXT`, then `HOST:PORT`) over
/// adapter `S`. It connects, ends its sending side, prints what the server
/// sent, and exits with tapscat's statuses. Does nothing unless
/// [`CHILD_ENV`] is set.
pub fn client_child<S: Shim>() {
    let Ok(args) = std::env::var(CHILD_ENV) else {
        return;
    };
    let args: Vec<String> = args.split('\x1f').map(str::to_owned).collect();
    let code = S::block_on(child_main::<S>(&args));
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // Exit here: the harness's own report must not follow.
    std::process::exit(code);
}

async fn child_main<S: Shim>(args: &[String]) -> i32 {
    let mut props = TransportProperties::reliable_inorder_stream();
    let (mut trace_text, mut trace_json, mut target) = (false, None, None);
    let mut pre_local = None;
    let (mut timeout, mut delay) = (None, None);
    let mut down_after_connect: Option<String> = None;
    let mut send_first: Option<String> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_default();
        match arg.as_str() {
            "--trace" => trace_text = true,
            "--trace-json" => trace_json = Some(value()),
            "--interface" => pre_local = Some(value()),
            "--require" | "--prohibit" => {
                let which = value();
                let require = arg == "--require";
                props = match (InterfaceKind::from_str(&which), require) {
                    (Ok(k), true) => props.require_interface_kind(k),
                    (Ok(k), false) => props.prohibit_interface_kind(k),
                    (Err(_), true) => props.require_interface_name(&which),
                    (Err(_), false) => props.prohibit_interface_name(&which),
                };
            }
            "--timeout" => timeout = value().parse::<f64>().ok(),
            "--attempt-delay" => delay = value().parse::<u64>().ok(),
            "--down-after-connect" => down_after_connect = Some(value()),
            "--send-first" => send_first = Some(value()),
            other if !other.starts_with('-') => target = Some(other.to_owned()),
            other => {
                eprintln!("client: unknown option {other}");
                return EXIT_USAGE;
            }
        }
    }
    let Some(target) = target else {
        return EXIT_USAGE;
    };
    let Ok(mut pre) = Preconnection::parse(&target) else {
        return EXIT_USAGE;
    };
    pre = pre.with_properties(props);
    if let Some(name) = pre_local {
        pre = pre.with_local(LocalEndpoint::new().with_interface(&name));
    }
    if let Some(ms) = delay {
        let mut race = RaceConfig::for_policy(Policy::Hev3);
        race.connection_attempt_delay = Duration::from_millis(ms);
        pre = pre.with_race(race);
    }
    if let Some(secs) = timeout {
        pre = pre.with_timeout(Duration::from_secs_f64(secs));
    }
    let taps = match S::taps(taps_io::Taps::system_config().unwrap_or_else(|_| Config::new(0))) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("client: {e}");
            return EXIT_CONNECTION;
        }
    };
    let report = |t: &trace::Trace| {
        let name = |i: u32| taps.interface_name(i);
        if trace_text {
            eprint!("{}", trace::waterfall(t, &target, &name));
        }
        if let Some(path) = &trace_json {
            let _ = std::fs::write(path, trace::to_json(t, &target, &name) + "\n");
        }
    };
    let connected = match send_first {
        Some(first) => {
            let message = Message::new(first.into_bytes()).safely_replayable();
            pre.initiate_with_send(&taps, message).await
        }
        None => pre.initiate(&taps).await,
    };
    let mut conn: taps_io::Connection = match connected {
        Ok(c) => c,
        Err(Error::Establishment(f)) => {
            report(&f.trace);
            eprintln!("client: {}", Error::Establishment(f));
            return EXIT_ESTABLISHMENT;
        }
        Err(e @ Error::Initiate(_)) => {
            eprintln!("client: {e}");
            return EXIT_ESTABLISHMENT;
        }
        Err(e) => {
            eprintln!("client: {e}");
            return EXIT_CONNECTION;
        }
    };
    if let Some(t) = conn.trace() {
        report(&t);
    }
    if let Some(dev) = down_after_connect {
        return path_events_after_down::<S>(&mut conn, &dev).await;
    }
    // As tapscat with no input: end the sending side, print everything.
    if let Err(e) = S::shutdown(&mut conn).await {
        eprintln!("client: {e}");
        return EXIT_CONNECTION;
    }
    match S::read_to_end(&mut conn).await {
        Ok(said) => {
            // On a line of its own: the harness has begun one ("test ... ").
            let mut stdout = std::io::stdout();
            let _ = stdout.write_all(b"\n");
            let _ = stdout.write_all(&said);
            0
        }
        Err(e) => {
            eprintln!("client: {e}");
            EXIT_CONNECTION
        }
    }
}

/// `--down-after-connect DEV`: takes the connection's interface down and
/// prints the connection events that follow (RFC 9622 §8.3: a soft error,
/// then a path change; the connection stays), then brings it back up.
async fn path_events_after_down<S: Shim>(conn: &mut taps_io::Connection, dev: &str) -> i32 {
    let set = |state: &str| {
        Command::new("ip")
            .args(["link", "set", "dev", dev, state])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !set("down") {
        eprintln!("client: cannot take {dev} down");
        return EXIT_CONNECTION;
    }
    let mut events = Vec::new();
    while events.len() < 2 {
        match within::<S, _>(Duration::from_secs(5), conn.next_event()).await {
            Some(Some(event)) => events.push(format!("{event:?}")),
            Some(None) | None => break,
        }
    }
    let still = conn.state();
    let _ = set("up");
    println!("\nEVENTS {} STATE {still:?}", events.join(" "));
    0
}
