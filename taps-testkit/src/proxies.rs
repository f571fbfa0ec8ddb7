//! Real proxies for tests, from Debian's packages, in network namespaces
//! ([`crate::netns`]): dante-server's `danted` for SOCKS5 (RFC 1928, with
//! RFC 1929 username/password) and `tinyproxy` for HTTP CONNECT
//! (RFC 9110 §9.3.6, with Basic `Proxy-Authorization`). The test picks the
//! addresses and credentials; the harness writes the configuration into
//! a temporary directory, starts the proxy in the namespace, waits
//! (at most [`START_LIMIT`]) until it accepts TCP on its address, and
//! stops it, with every process it forked, when dropped. The proxy's log
//! goes to a file in that directory; [`ProxyProcess::log`] reads it, a
//! failed start panics with it, and a drop during a panic prints it
//! before the directory is removed.
//!
//! [`Lab`] is the three-namespace topology the harness tests use, and
//! [`Origin`] a small HTTP server that says which address reached it.
//!
//! Needs root, `ip`, `danted` (Debian `dante-server`), `tinyproxy`
//! (Debian `tinyproxy-bin`, the binary without its service) and, for
//! dante's password method, `openssl` (to hash the password).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::netns::{Netns, ip, veth};

/// How long a proxy may take to accept TCP on its address after being
/// started, before the harness gives up and shows its log.
pub const START_LIMIT: Duration = Duration::from_secs(10);

/// A proxy program running in a namespace: its process group, its
/// temporary directory (configuration and log), and how long it took to
/// listen.
pub struct ProxyProcess {
    program: &'static str,
    child: Child,
    dir: PathBuf,
    log: PathBuf,
    listen: SocketAddr,
    started_in: Duration,
}

impl ProxyProcess {
    /// Starts `program` with `args` in `ns`, with `config` written to
    /// `dir/name`, and waits until `listen` accepts TCP.
    fn start(
        ns: &Netns,
        program: &'static str,
        config: (&str, &str),
        args: impl Fn(&Path) -> Vec<String>,
        listen: SocketAddr,
    ) -> ProxyProcess {
        let dir = temp_dir(program);
        let conf = dir.join(config.0);
        fs::write(&conf, config.1).unwrap();
        let log = dir.join(format!("{program}.log"));
        let out = File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let started = Instant::now();
        let child = ns
            .command(binary(program))
            .args(args(&conf))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group: danted forks helpers, and the group
            // is what [`Drop`] stops.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program} in {}: {e}", ns.name()));
        let mut p = ProxyProcess {
            program,
            child,
            dir,
            log,
            listen,
            started_in: Duration::ZERO,
        };
        p.wait_listening(ns, started);
        p
    }

    fn wait_listening(&mut self, ns: &Netns, started: Instant) {
        let addr = self.listen;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before listening on {addr}; its log:\n{}",
                    self.program,
                    self.log()
                );
            }
            // From inside the proxy's namespace: the test's own may have
            // no route to it.
            let up = ns.enter(move || {
                TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            });
            if up {
                self.started_in = started.elapsed();
                return;
            }
            if started.elapsed() > START_LIMIT {
                panic!(
                    "{} did not listen on {addr} within {START_LIMIT:?}; its log:\n{}",
                    self.program,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// From its start until it accepted a TCP connection (the readiness
    /// probe included).
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// Its temporary directory (configuration and log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        // `ip netns exec` execs the program, so the child is the proxy and
        // leads its group. TERM to it alone: danted then stops its helpers
        // itself (those that exit after it are reaped by init). Whatever
        // of the group is left after 2 s is killed.
        let leader = Pid::from_raw(self.child.id() as i32);
        let _ = kill(leader, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = killpg(leader, Signal::SIGKILL);
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- {} log:\n{}--- end of {} log",
                self.program,
                self.log(),
                self.program
            );
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir(program: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "taps-{program}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The program's path; panics naming the Debian package that has it.
fn binary(program: &str) -> &'static str {
    let (paths, package): (&[&'static str], _) = match program {
        "danted" => (&["/usr/sbin/danted", "/usr/bin/danted"], "dante-server"),
        _ => (
            &["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"],
            "tinyproxy-bin",
        ),
    };
    paths
        .iter()
        .copied()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| panic!("this test needs {program} (Debian: apt-get install {package})"))
}

/// A username and password.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl Credentials {
    /// `user` with `password`.
    pub fn new(user: &str, password: &str) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }
}

/// dante-server's `danted` as a SOCKS5 proxy (RFC 1928): CONNECT only,
/// from any client to any destination, with no authentication or with
/// RFC 1929 username/password.
///
/// Pitfalls met while making it work in a namespace (Dante 1.4.2):
///
/// - **`internal:` and `external:`.** `internal:` is where it listens,
///   `external:` the address it connects out from, which is the address
///   the origin sees. In a namespace with a veth pair on each side,
///   `internal` is the address on the client's link and `external` the
///   one on the origin's; the harness takes both as addresses the test
///   assigned, so the test knows the source the origin will see. An
///   `internal:` address must already be on an interface: danted exits
///   at once with "addinternal(): could not find address … on any
///   network interface" otherwise (so bring the link up and add the
///   address before starting it).
/// - **`0/0`, not `0.0.0.0/0`, in `from:` and `to:`**, or IPv6 clients
///   and destinations match no rule. One `external:` address per family
///   it should reach.
/// - **One keyword per line inside a rule.** `socks pass { from: … to: …
///   command: connect log: error }` on one line is "syntax error near
///   token l": after `command:` the parser reads the rest of the line as
///   commands.
/// - **`socksmethod: username` checks the system's password database**
///   (`getpwnam`, then the shadow hash with `crypt`), not a file of its
///   own. The harness gives the namespace a private `passwd` and
///   `shadow` holding root, nobody and the test's user
///   (`/etc/netns/NS/`, which `ip netns exec` binds over `/etc`), so no
///   user is added to the machine. The hash is SHA-512 crypt, made by
///   `openssl passwd -6` from standard input.
/// - **It forks helpers** (negotiate, request and I/O processes), which
///   a SIGKILL to the main process alone would leave serving. SIGTERM to
///   the main process makes it stop them ("exiting on signal 15" from
///   each in the log). The harness starts it as a process group leader,
///   sends TERM to the leader, and KILLs whatever of the group is left
///   after 2 s.
/// - **`logoutput: stderr`**, captured into the log file, since syslog
///   may not exist in a test machine.
pub struct Dante {
    process: ProxyProcess,
}

impl Dante {
    /// Starts danted in `ns`, listening on `listen` (one or more
    /// addresses, of either family), connecting out from `external` (one
    /// address per family it should reach), and requiring `auth` when
    /// given (its user is added to `ns`'s private password database).
    /// It is ready when the first listening address accepts TCP.
    pub fn start(
        ns: &Netns,
        listen: &[SocketAddr],
        external: &[IpAddr],
        auth: Option<&Credentials>,
    ) -> Dante {
        assert!(
            !listen.is_empty() && !external.is_empty(),
            "danted needs an internal and an external address"
        );
        let method = match auth {
            Some(c) => {
                install_user(ns, c);
                "username"
            }
            None => "none",
        };
        let mut config = String::from("logoutput: stderr\n");
        for a in listen {
            config.push_str(&format!("internal: {} port = {}\n", a.ip(), a.port()));
        }
        for a in external {
            config.push_str(&format!("external: {a}\n"));
        }
        // `0/0` is any address of either family; `0.0.0.0/0` would be
        // IPv4 only, and IPv6 clients would match no rule.
        config.push_str(&format!(
            "socksmethod: {method}\n\
             clientmethod: none\n\
             user.privileged: root\n\
             user.unprivileged: nobody\n\
             client pass {{\n  from: 0/0 to: 0/0\n  log: error connect disconnect\n}}\n\
             socks pass {{\n  from: 0/0 to: 0/0\n  command: connect\n  \
             log: error connect disconnect\n}}\n"
        ));
        let process = ProxyProcess::start(
            ns,
            "danted",
            ("danted.conf", &config),
            |conf| vec!["-f".into(), conf.display().to_string()],
            listen[0],
        );
        Dante { process }
    }
}

impl std::ops::Deref for Dante {
    type Target = ProxyProcess;
    fn deref(&self) -> &ProxyProcess {
        &self.process
    }
}

/// Gives `ns` a `passwd` and `shadow` of its own with `c`'s user in them.
fn install_user(ns: &Netns, c: &Credentials) {
    assert!(
        !c.user.contains([':', '\n']) && !c.user.is_empty(),
        "a user name for passwd(5): {:?}",
        c.user
    );
    let mut openssl = Command::new("openssl")
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dante's password method needs openssl to hash the password");
    openssl
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", c.password).as_bytes())
        .unwrap();
    let out = openssl.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl passwd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).unwrap();
    let user = &c.user;
    ns.etc_file(
        "passwd",
        &format!(
            "root:x:0:0:root:/root:/bin/sh\n\
             nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
             {user}:x:4242:4242::/nonexistent:/usr/sbin/nologin\n"
        ),
    );
    ns.etc_file(
        "shadow",
        &format!(
            "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n{user}:{}:19000:0:99999:7:::\n",
            hash.trim()
        ),
    );
}

/// tinyproxy as an HTTP CONNECT proxy (RFC 9110 §9.3.6) to any port, with
/// Basic `Proxy-Authorization` when credentials are given.
///
/// Pitfalls (tinyproxy 1.11.1):
///
/// - `-d` keeps it in the foreground, and with no `LogFile` or `Syslog`
///   it logs to its standard streams, which the harness captures.
/// - With no `ConnectPort` line every port may be tunnelled to
///   (tinyproxy.conf(5): "If no ConnectPort line is found, all ports are
///   allowed"); the origin's port is not 443.
/// - Started as root without `User`, it stays root; the test namespaces
///   hold nothing else.
/// - Missing credentials get `407 Proxy Authentication Required`, but
///   wrong ones get `401 Unauthorized`, so a client's message for a
///   rejected CONNECT should not rely on 407 alone.
pub struct Tinyproxy {
    process: ProxyProcess,
}

impl Tinyproxy {
    /// Starts tinyproxy in `ns`, listening on `listen`, requiring `auth`
    /// when given. tinyproxy takes one `Listen` address; an unspecified
    /// one (`0.0.0.0` or `::`) means every address of both families.
    pub fn start(ns: &Netns, listen: SocketAddr, auth: Option<&Credentials>) -> Tinyproxy {
        let mut config = format!(
            "Port {}\nTimeout 30\nMaxClients 32\nLogLevel Info\nDisableViaHeader Yes\n",
            listen.port()
        );
        let probe = if listen.ip().is_unspecified() {
            SocketAddr::from((Ipv6Addr::LOCALHOST, listen.port()))
        } else {
            config.push_str(&format!("Listen {}\n", listen.ip()));
            listen
        };
        if let Some(c) = auth {
            // tinyproxy's BasicAuth takes two words.
            assert!(
                !c.user.contains(char::is_whitespace) && !c.password.contains(char::is_whitespace),
                "tinyproxy's BasicAuth takes no blanks in a user or password"
            );
            config.push_str(&format!("BasicAuth {} {}\n", c.user, c.password));
        }
        let process = ProxyProcess::start(
            ns,
            "tinyproxy",
            ("tinyproxy.conf", &config),
            |conf| vec!["-d".into(), "-c".into(), conf.display().to_string()],
            probe,
        );
        Tinyproxy { process }
    }
}

impl std::ops::Deref for Tinyproxy {
    type Target = ProxyProcess;
    fn deref(&self) -> &ProxyProcess {
        &self.process
    }
}

/// Three namespaces in a line, so the client reaches the origin only
/// through the proxy (it has no route to the origin's network):
///
/// ```text
/// client                  proxy                          origin
///  cp 10.201.1.1      <->  pc 10.201.1.2      (listens)
///     2001:db8:201:1::1       2001:db8:201:1::2
///                          po 10.201.2.1      (connects out) <-> op 10.201.2.2
///                             2001:db8:201:2::1                     2001:db8:201:2::2
/// ```
///
/// Both links carry both families (documentation prefixes, RFC 5737 is
/// not used for IPv4 so the conformance topology's addresses stay apart).
///
/// In the proxy namespace (only there) [`ORIGIN_NAME`] resolves to the
/// origin, through its own `hosts` file: a proxy that resolves names
/// (`socks5h`, CONNECT) can reach it by name, the client cannot.
pub struct Lab {
    /// The client's namespace.
    pub client: Netns,
    /// The proxy's.
    pub proxy: Netns,
    /// The origin's.
    pub origin: Netns,
}

/// The proxy's address on the client's link.
pub const PROXY_INSIDE: Ipv4Addr = Ipv4Addr::new(10, 201, 1, 2);
/// The proxy's address on the origin's link: what the origin sees.
pub const PROXY_OUTSIDE: Ipv4Addr = Ipv4Addr::new(10, 201, 2, 1);
/// The origin's address.
pub const ORIGIN_ADDR: Ipv4Addr = Ipv4Addr::new(10, 201, 2, 2);
/// The proxy's IPv6 address on the client's link.
pub const PROXY_INSIDE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x201, 1, 0, 0, 0, 2);
/// The proxy's IPv6 address on the origin's link.
pub const PROXY_OUTSIDE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x201, 2, 0, 0, 0, 1);
/// The origin's IPv6 address.
pub const ORIGIN_ADDR_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x201, 2, 0, 0, 0, 2);
/// The origin's name (both addresses), known in the proxy namespace only.
pub const ORIGIN_NAME: &str = "origin.proxy.test";

impl Lab {
    /// Makes the namespaces and links.
    pub fn new() -> Lab {
        let lab = Lab {
            client: Netns::new("tpxc"),
            proxy: Netns::new("tpxp"),
            origin: Netns::new("tpxo"),
        };
        veth(
            &lab.client,
            "cp",
            "10.201.1.1/24",
            &lab.proxy,
            "pc",
            &format!("{PROXY_INSIDE}/24"),
        );
        veth(
            &lab.proxy,
            "po",
            &format!("{PROXY_OUTSIDE}/24"),
            &lab.origin,
            "op",
            &format!("{ORIGIN_ADDR}/24"),
        );
        for (ns, dev, addr) in [
            (&lab.client, "cp", "2001:db8:201:1::1/64".to_string()),
            (&lab.proxy, "pc", format!("{PROXY_INSIDE_V6}/64")),
            (&lab.proxy, "po", format!("{PROXY_OUTSIDE_V6}/64")),
            (&lab.origin, "op", format!("{ORIGIN_ADDR_V6}/64")),
        ] {
            ip(&["-n", ns.name(), "addr", "add", &addr, "dev", dev, "nodad"]);
        }
        lab.proxy.etc_file(
            "hosts",
            &format!(
                "127.0.0.1 localhost\n::1 localhost\n{ORIGIN_ADDR} {ORIGIN_NAME}\n\
                 {ORIGIN_ADDR_V6} {ORIGIN_NAME}\n"
            ),
        );
        lab
    }
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}

/// An HTTP/1.1 server in a namespace: it reads a request head and answers
/// `200` with the body `origin saw <peer address>\n`, then closes. The
/// peers it saw are kept.
pub struct Origin {
    /// Where it listens.
    pub addrs: Vec<SocketAddr>,
    /// Every peer that connected, in order.
    pub seen: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Origin {
    /// Listens on each of `addrs` in `ns` and serves on daemon threads.
    pub fn start(ns: &Netns, addrs: &[SocketAddr]) -> Origin {
        let seen = Arc::new(Mutex::new(Vec::new()));
        for &addr in addrs {
            let listener = ns.enter(move || {
                TcpListener::bind(addr).unwrap_or_else(|e| panic!("origin on {addr}: {e}"))
            });
            let record = seen.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { return };
                    let Ok(peer) = stream.peer_addr() else {
                        continue;
                    };
                    record.lock().unwrap().push(peer);
                    std::thread::spawn(move || serve(stream, peer));
                }
            });
        }
        Origin {
            addrs: addrs.to_vec(),
            seen,
        }
    }

    /// The body it sends a peer from `ip`.
    pub fn body_for(ip: IpAddr) -> String {
        format!("origin saw {ip}\n")
    }
}

fn serve(mut stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    // At most 16 KiB of request head.
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let body = Origin::body_for(peer.ip());
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
}
