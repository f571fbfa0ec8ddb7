//! The mio example end to end: `mio_server` and `mio_client` run as
//! processes against each other on loopback, plain, with TLS (a
//! certificate made for the test, as OpenSSL 3 makes them by default),
//! and with a name resolved by a DNS server over UDP. The client's output
//! is checked: the echoed line on standard output, the ready line and the
//! race's trace on standard error. Nothing here needs root.

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use taps_core::dns::{Answer, QueryType};
use taps_testkit::dns::{build_response, parse_query};

/// Far above what a loopback exchange needs; only there so that a hang
/// fails the test instead of the CI run.
const BOUND: Duration = Duration::from_secs(30);

/// A running `mio_server --once`, and where it listens.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: BufReader<ChildStderr>,
}

impl Server {
    /// Starts the server and waits for its "listening on" line.
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mio_server"))
            .arg("--once")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let Some(addrs) = line.trim().strip_prefix("mio_server: listening on ") else {
            let _ = child.kill();
            panic!("the server did not say where it listens: {line:?}");
        };
        let addr = addrs.split(", ").next().unwrap().parse().unwrap();
        Server {
            child,
            addr,
            stderr,
        }
    }

    /// Waits for the server to exit (`--once`: after its connection
    /// closed); its exit status must be success. Returns what it printed.
    fn finish(mut self) -> String {
        let status = wait_bounded(&mut self.child, "mio_server");
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut self.stderr, &mut rest);
        assert!(status.success(), "mio_server: {status}; it said:\n{rest}");
        rest
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_bounded(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} still ran after {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the client to its end. Its output is read while it runs: a
/// reply larger than a pipe's buffer would otherwise block it.
fn client(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mio_client"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let collect = |mut from: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = from.read_to_end(&mut all);
            all
        })
    };
    let stdout = collect(Box::new(child.stdout.take().unwrap()));
    let stderr = collect(Box::new(child.stderr.take().unwrap()));
    let status = wait_bounded(&mut child, "mio_client");
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The client succeeded, printed exactly the echoed line, and showed the
/// ready line and the race that won. Returns its standard error.
fn assert_echoed(out: &Output, line: &str) -> String {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{}:\n{stderr}", out.status);
    assert_eq!(stdout, format!("{line}\n"), "stderr:\n{stderr}");
    assert!(
        stderr.contains("mio_client: ready: connected to "),
        "{stderr}"
    );
    assert!(stderr.contains("won: ready"), "the race's trace: {stderr}");
    stderr
}

/// A file in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("mio-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn plain_echo_over_an_ip_literal() {
    let server = Server::start(&["127.0.0.1:0"]);
    let out = client(&[&server.addr.to_string(), "plain hello"]);
    assert_echoed(&out, "plain hello");
    let said = server.finish();
    assert!(said.contains("connection from 127.0.0.1:"), "{said}");
    assert!(said.contains("connection closed"), "{said}");
}

#[test]
fn tls_echo_with_a_certificate_made_for_the_test() {
    let (cert, key) = taps_testkit::pki::openssl_style_self_signed_pem(&["localhost"]);
    let (cert, key) = (
        TempFile::new("cert.pem", &cert),
        TempFile::new("key.pem", &key),
    );
    let server = Server::start(&["--cert", cert.path(), "--key", key.path(), "127.0.0.1:0"]);
    let target = format!("localhost:{}", server.addr.port());
    let out = client(&["--ca", cert.path(), &target, "secret line"]);
    let stderr = assert_echoed(&out, "secret line");
    assert!(
        stderr.contains("TLS: TLSv1_3"),
        "the trace shows the handshake: {stderr}"
    );
    assert!(stderr.contains("CN=localhost"), "{stderr}");
    server.finish();
}

#[test]
fn tls_with_an_untrusted_certificate_fails_and_says_so() {
    let (cert, key) = taps_testkit::pki::openssl_style_self_signed_pem(&["localhost"]);
    let (other, _) = taps_testkit::pki::openssl_style_self_signed_pem(&["localhost"]);
    let (cert, key) = (
        TempFile::new("c2.pem", &cert),
        TempFile::new("k2.pem", &key),
    );
    let other = TempFile::new("other.pem", &other);
    let server = Server::start(&["--cert", cert.path(), "--key", key.path(), "127.0.0.1:0"]);
    let target = format!("localhost:{}", server.addr.port());
    let out = client(&["--ca", other.path(), &target, "never"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing is echoed: {}",
        text(&out.stdout)
    );
    assert!(stderr.contains("certificate"), "the reason: {stderr}");
    // The server heard why, and keeps listening (it is killed on drop).
    let mut line = String::new();
    let mut server = server;
    server.stderr.read_line(&mut line).unwrap();
    assert!(line.contains("handshake with"), "{line}");
}

/// Answers A with 127.0.0.1 and AAAA with ::1 for `echo.test` (anything
/// else, such as the HTTPS question's `_PORT._https.echo.test`: NXDOMAIN),
/// recording the query types.
fn dns_server() -> (SocketAddr, Arc<Mutex<Vec<QueryType>>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let Ok(q) = parse_query(&buf[..n]) else {
                continue;
            };
            log.lock().unwrap().push(q.qtype);
            let answer = match (q.name.as_str().trim_end_matches('.'), q.qtype) {
                ("echo.test", QueryType::A) => Answer::Addresses {
                    addrs: ["127.0.0.1".parse().unwrap()].into_iter().collect(),
                    ttl: 5,
                },
                ("echo.test", QueryType::Aaaa) => Answer::Addresses {
                    addrs: ["::1".parse().unwrap()].into_iter().collect(),
                    ttl: 5,
                },
                _ => Answer::NxDomain { negative_ttl: 5 },
            };
            let _ = socket.send_to(&build_response(&q, &answer, false), from);
        }
    });
    (addr, seen)
}

#[test]
fn a_name_resolved_over_udp_connects_over_ipv6_first() {
    let (dns, seen) = dns_server();
    // One dual-stack socket: ::1 and 127.0.0.1 reach the same server.
    let server = Server::start(&["[::]:0"]);
    let target = format!("echo.test.:{}", server.addr.port());
    let out = client(&["--dns", &dns.to_string(), &target, "by name"]);
    let stderr = assert_echoed(&out, "by name");
    let seen = seen.lock().unwrap().clone();
    for qtype in [QueryType::A, QueryType::Aaaa] {
        assert!(seen.contains(&qtype), "{qtype:?} asked: {seen:?}");
    }
    // The datagrams went out and came back through the loop's UDP
    // sockets: the trace shows the queries and the AAAA answer, and the
    // race starts on it (HEv3 §4) and wins over IPv6 on loopback.
    assert!(
        stderr.contains(&format!("AAAA  query to {dns}")),
        "{stderr}"
    );
    assert!(stderr.contains("AAAA  1 record(s)"), "{stderr}");
    assert!(stderr.contains("connected to [::1]:"), "{stderr}");
    server.finish();
}

#[test]
fn a_line_larger_than_one_read_comes_back_whole() {
    // 120 000 bytes (under Linux's 128 KiB limit for one argument) take
    // many reads and writes on each side: edge-triggered readiness must
    // be drained to WouldBlock, or the exchange stalls.
    let line: String = (0..120_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let server = Server::start(&["127.0.0.1:0"]);
    let out = client(&[&server.addr.to_string(), &line]);
    assert_echoed(&out, &line);
    server.finish();
}

#[test]
fn a_refused_port_is_an_error_that_says_so() {
    // Bind and drop: nobody listens on the port now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = client(&[&format!("127.0.0.1:{port}"), "x"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(stderr.contains("refused"), "{stderr}");
}
