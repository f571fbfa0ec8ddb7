//! The `tapscat` binary end to end on loopback: piping both ways, TLS with
//! files, message framing, the trace outputs, and every exit status.
#![cfg(feature = "tapscat")]
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::TestCa;

const TAPSCAT: &str = env!("CARGO_BIN_EXE_tapscat");

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(TAPSCAT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A free loopback port (bound and released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `tapscat -l` with `args` and `stdin`, and waits until it listens.
fn listen(args: &[&str], stdin: &'static [u8]) -> std::thread::JoinHandle<Output> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut child = Command::new(TAPSCAT)
            .arg("-l")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        // "listening on" comes first on stderr.
        let mut stderr = child.stderr.take().unwrap();
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !text(&seen).contains('\n') && stderr.read(&mut byte).unwrap() == 1 {
            seen.push(byte[0]);
        }
        tx.send(()).unwrap();
        let mut out = child.wait_with_output().unwrap();
        let mut rest = Vec::new();
        stderr.read_to_end(&mut rest).unwrap();
        seen.extend(rest);
        out.stderr = seen;
        out
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    handle
}

#[test]
fn pipes_both_ways_and_exits_zero() {
    let port = free_port().to_string();
    let server = listen(&[&format!("127.0.0.1:{port}")], b"from the server\n");
    let client = run(&[&format!("127.0.0.1:{port}")], b"from the client\n");
    let server = server.join().unwrap();
    assert_eq!(client.status.code(), Some(0), "{}", text(&client.stderr));
    assert_eq!(server.status.code(), Some(0), "{}", text(&server.stderr));
    assert_eq!(text(&client.stdout), "from the server\n");
    assert_eq!(text(&server.stdout), "from the client\n");
    assert!(text(&server.stderr).contains("connection from 127.0.0.1:"));
}

#[test]
fn tls_from_pem_files_with_alpn_and_a_trace() {
    let ca = TestCa::new("tapscat CA");
    let dir = std::env::temp_dir().join(format!("tapscat-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = ca.leaf_pem(&["localhost"]);
    let (ca_file, cert_file, key_file, json) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("trace.json"),
    );
    std::fs::write(&ca_file, ca.root_pem()).unwrap();
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let port = free_port().to_string();
    let server = listen(
        &[
            &format!("127.0.0.1:{port}"),
            "--cert",
            cert_file.to_str().unwrap(),
            "--key",
            key_file.to_str().unwrap(),
            "--alpn",
            "demo",
        ],
        b"secret reply\n",
    );
    let client = run(
        &[
            "--ca",
            ca_file.to_str().unwrap(),
            "--alpn",
            "demo",
            "--trace",
            "--trace-json",
            json.to_str().unwrap(),
            &format!("localhost:{port}"),
        ],
        b"secret\n",
    );
    let server = server.join().unwrap();
    assert_eq!(client.status.code(), Some(0), "{}", text(&client.stderr));
    assert_eq!(text(&client.stdout), "secret reply\n");
    assert_eq!(text(&server.stdout), "secret\n");
    let waterfall = text(&client.stderr);
    assert!(waterfall.contains("race to localhost:"), "{waterfall}");
    assert!(waterfall.contains("won"), "{waterfall}");
    let json = std::fs::read_to_string(&json).unwrap();
    assert!(json.starts_with("{\"remote\":\"localhost:"), "{json}");
    assert!(json.contains("\"kind\":\"winner\""), "{json}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn message_mode_sends_lines_as_messages() {
    for framing in ["lines", "length"] {
        let port = free_port().to_string();
        let server = listen(
            &[&format!("127.0.0.1:{port}"), "--framing", framing],
            b"x\ny\n",
        );
        let client = run(
            &["--framing", framing, &format!("127.0.0.1:{port}")],
            b"one\ntwo\nthree\n",
        );
        let server = server.join().unwrap();
        assert_eq!(client.status.code(), Some(0), "{}", text(&client.stderr));
        assert_eq!(text(&server.stdout), "one\ntwo\nthree\n", "{framing}");
        assert_eq!(text(&client.stdout), "x\ny\n", "{framing}");
    }
}

#[test]
fn exit_status_tells_usage_establishment_and_connection_failures() {
    // Bad usage: 2.
    for args in [
        &["--policy", "fastest", "x:1"][..],
        &[],
        &["--timeout", "soon", "x:1"],
    ] {
        let out = run(args, b"");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        // One line and a pointer to --help, not the whole help (curl's way).
        let err = text(&out.stderr);
        assert!(err.ends_with(&format!("\n{TRY_HELP}\n")), "{err}");
        assert_eq!(err.lines().count(), 2, "{err}");
    }
    // Establishment failure: 3, curl's one line naming the address, the
    // port and the reason.
    let port = free_port();
    let out = run(&[&format!("127.0.0.1:{port}")], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_refused_line(&text(&out.stderr), port);
    // No interface meets a requirement: 3 as well.
    let out = run(&["--require", "cellular", "127.0.0.1:9"], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Require cellular"),
        "{}",
        text(&out.stderr)
    );
    // A local problem: 1.
    let out = run(&["--ca", "/nonexistent/ca.pem", "127.0.0.1:9"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // The connection breaks after it was set up (the peer resets): 4.
    let raw = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = raw.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (s, _) = raw.accept().unwrap();
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        drop(s);
    });
    let mut child = Command::new(TAPSCAT)
        .arg(at.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep standard input open: only the reset can end it.
    let _stdin = child.stdin.take();
    let out = child.wait_with_output().unwrap();
    peer.join().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("reset"), "{}", text(&out.stderr));
}

/// `text` is exactly curl's line for a refused loopback port: `tapscat:
/// failed to connect to 127.0.0.1 port P after N ms: connection refused`.
/// N is whole milliseconds; it is left free because a loaded machine may
/// take more than one.
fn assert_refused_line(text: &str, port: u16) {
    let head = format!("tapscat: failed to connect to 127.0.0.1 port {port} after ");
    let ms = text
        .strip_prefix(&head)
        .and_then(|rest| rest.strip_suffix(" ms: connection refused\n"));
    assert!(
        ms.is_some_and(|ms| !ms.is_empty() && ms.bytes().all(|b| b.is_ascii_digit())),
        "{text:?}"
    );
}

const TRY_HELP: &str = "try 'tapscat --help' for more information";

/// Each mistake in the command line: its exact one-line message, the pointer
/// to --help, and exit status 2, with nothing started.
#[test]
fn usage_errors_are_one_line_with_a_hint_and_exit_two() {
    for (args, message) in [
        (&["--foo", "x:1"][..], "option --foo: is unknown"),
        (&["--ca"], "option --ca: needs a file"),
        (&["localhost"], "needs a port: localhost:PORT"),
        (
            &["::1:8000"],
            "write IPv6 addresses in brackets: [::1]:8000",
        ),
        (
            &["::1"],
            "write IPv6 addresses in brackets, with a port: [::1]:PORT",
        ),
        (
            &["-l", "::1:8000"],
            "write IPv6 addresses in brackets: [::1]:8000",
        ),
        (
            &["https://example.com/index.html"],
            "takes HOST:PORT, not a URL: try example.com:443 --tls",
        ),
        (
            &["http://example.com:8080"],
            "takes HOST:PORT, not a URL: try example.com:8080",
        ),
        (&[":80"], "\":80\" has no host: write HOST:PORT"),
        (
            &["localhost:99999"],
            "\"localhost:99999\": port `99999` is out of range (at most 65535)",
        ),
        (
            &["localhost:nope"],
            "\"localhost:nope\": unknown service \"nope\": give a port number",
        ),
        (&[], "no HOST:PORT to connect to"),
    ] {
        let out = run(args, b"");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stderr),
            format!("tapscat: {message}\n{TRY_HELP}\n"),
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn version_prints_the_crate_version() {
    for flag in ["--version", "-V"] {
        let out = run(&[flag], b"");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            format!("tapscat {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

/// HEv3's 10 ms floor is applied with a warning, not silently; the
/// connect then goes ahead (here to a closed port: exit 3).
#[test]
fn a_clamped_attempt_delay_is_warned_about() {
    let port = free_port();
    let out = run(&["--attempt-delay", "5", &format!("127.0.0.1:{port}")], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(
            "tapscat: warning: --attempt-delay 5 ms is below the minimum 10 ms (RFC 8305 §5 / HEv3); using 10 ms\n"
        ),
        "{err}"
    );
    // In bounds: no warning.
    let out = run(
        &["--attempt-delay", "10", &format!("127.0.0.1:{port}")],
        b"",
    );
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
}

/// `--trace`: the waterfall, then the one-line error.
#[test]
fn trace_prints_the_waterfall() {
    let port = free_port();
    let out = run(&["--trace", &format!("127.0.0.1:{port}")], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!("race to 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(
        err.contains("attempt  #1 failed: connection refused"),
        "{err}"
    );
    let last = err.lines().last().unwrap_or_default();
    assert_refused_line(&format!("{last}\n"), port);
}

/// `-v` logs the race through `tracing` as it runs (the race span with the
/// host, the attempt with its candidate, its failure and reason, the
/// race's outcome), not the waterfall; then the one-line error. `-vv`
/// adds the DEBUG transitions (the literal's DNS answer).
#[test]
fn dash_v_logs_the_race_and_dash_vv_its_transitions() {
    let port = free_port();
    let target = format!("127.0.0.1:{port}");
    let out = run(&["-v", &target], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(!err.contains("race to "), "-v is not the waterfall: {err}");
    let failed = err
        .lines()
        .find(|l| l.contains("attempt failed"))
        .unwrap_or_else(|| panic!("no attempt failed line: {err}"));
    for field in [
        format!("host={target}"),
        format!("candidate={target}"),
        "outcome=\"failed\"".to_string(),
        "reason=connection refused".to_string(),
    ] {
        assert!(failed.contains(&field), "{field} missing: {failed}");
    }
    assert!(err.contains("race failed"), "{err}");
    assert!(!err.contains("DEBUG"), "-v is INFO only: {err}");
    let last = err.lines().last().unwrap_or_default();
    assert_refused_line(&format!("{last}\n"), port);

    let out = run(&["-vv", &target], b"");
    let err = text(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.contains("DEBUG") && l.contains("dns answer") && l.contains("literal")),
        "-vv shows the DNS answer: {err}"
    );
}

/// Writes an OpenSSL-3-default style self-signed certificate (CA:TRUE, SAN
/// localhost) and its key to a fresh directory: (dir, cert, key).
fn openssl_style_files(tag: &str) -> (std::path::PathBuf, String, String) {
    let dir = std::env::temp_dir().join(format!("tapscat-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = taps_testkit::pki::openssl_style_self_signed_pem(&["localhost"]);
    let (cert_file, key_file) = (dir.join("c.pem"), dir.join("k.pem"));
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let path = |p: std::path::PathBuf| p.to_str().unwrap().to_string();
    (dir, path(cert_file), path(key_file))
}

#[test]
fn a_self_signed_openssl_style_server_verifies_with_its_own_cert_and_the_trace_shows_tls() {
    // `tapscat -l --cert c.pem --key k.pem` then `tapscat --ca c.pem`, as
    // with `curl --cacert c.pem`.
    let (dir, cert, key) = openssl_style_files("self-signed");
    let port = free_port().to_string();
    let server = listen(
        &[
            &format!("127.0.0.1:{port}"),
            "--cert",
            &cert,
            "--key",
            &key,
            "--alpn",
            "demo",
        ],
        b"hello back\n",
    );
    let client = run(
        &[
            "--ca",
            &cert,
            "--alpn",
            "demo",
            "--trace",
            &format!("localhost:{port}"),
        ],
        b"hello\n",
    );
    let server = server.join().unwrap();
    let stderr = text(&client.stderr);
    assert_eq!(client.status.code(), Some(0), "{stderr}");
    assert_eq!(text(&client.stdout), "hello back\n");
    assert_eq!(text(&server.stdout), "hello\n");
    assert!(
        stderr.contains("TLS: TLSv1_3, TLS13_") && stderr.contains("ALPN demo"),
        "{stderr}"
    );
    assert!(
        stderr.contains("peer certificate CN=localhost for `localhost`, full handshake"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_listener_logs_a_failed_handshake_and_the_client_names_the_certificate_problem() {
    let (dir, cert, key) = openssl_style_files("untrusted");
    let (_, other, _) = openssl_style_files("other");
    let port = free_port().to_string();
    let server = listen(
        &[&format!("127.0.0.1:{port}"), "--cert", &cert, "--key", &key],
        b"",
    );
    // Trusting some other self-signed certificate: refused, and said why.
    let refused = run(&["--ca", &other, &format!("localhost:{port}")], b"");
    let stderr = text(&refused.stderr);
    assert_ne!(refused.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "is a CA certificate (basicConstraints CA:TRUE) and is not in the trusted roots"
        ),
        "{stderr}"
    );
    // The listener logged that handshake and still serves the next client.
    let ok = run(&["--ca", &cert, &format!("localhost:{port}")], b"after\n");
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let server = server.join().unwrap();
    let log = text(&server.stderr);
    assert!(log.contains("tapscat: handshake with 127.0.0.1:"), "{log}");
    // The client's alert reaches the server, which says what it means
    // (rustls answers a CA:TRUE end entity with certificate_unknown).
    assert!(
        log.contains(
            " failed: TLS: peer sent TLS alert 46 (certificate_unknown: the peer refused our certificate)"
        ),
        "{log}"
    );
    assert_eq!(text(&server.stdout), "after\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_alpn_mismatch_is_named_on_the_client_and_logged_by_the_listener() {
    let (dir, cert, key) = openssl_style_files("alpn");
    let port = free_port().to_string();
    let server = listen(
        &[
            &format!("127.0.0.1:{port}"),
            "--cert",
            &cert,
            "--key",
            &key,
            "--alpn",
            "x",
        ],
        b"",
    );
    let refused = run(
        &["--ca", &cert, "--alpn", "h2", &format!("localhost:{port}")],
        b"",
    );
    let stderr = text(&refused.stderr);
    assert_ne!(refused.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("TLS: ALPN mismatch: the server rejected the offered ALPN protocols (h2)"),
        "{stderr}"
    );
    // The listener logged it and still serves a client that offers x.
    let ok = run(
        &["--ca", &cert, "--alpn", "x", &format!("localhost:{port}")],
        b"",
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let log = text(&server.join().unwrap().stderr);
    assert!(
        log.contains(
            "failed: TLS: ALPN mismatch: the client offered none of the ALPN protocols this server accepts (x)"
        ),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads a history file the way the library does; panics if it is not a
/// whole, valid file.
fn history_file(path: &std::path::Path) -> taps_core::race::SavedHistory {
    let bytes = std::fs::read(path).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    taps_core::race::SavedHistory::decode(&bytes, now)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), text(&bytes)))
}

#[test]
fn history_file_is_created_warned_about_when_bad_and_never_torn() {
    let dir = std::env::temp_dir().join(format!("tapscat-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("history");
    let path = file.to_str().unwrap();
    // Nothing listens there: a refused attempt to remember.
    let refused = format!("127.0.0.1:{}", free_port());

    // First run: no file yet, one warning line saying so; the file is
    // written after the race, with the failure in it.
    let out = run(&["--history", path, &refused], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("does not exist yet"), "{err}");
    let saved = history_file(&file);
    assert!(
        saved
            .outcomes
            .iter()
            .any(|o| o.addr.to_string() == "127.0.0.1"
                && o.outcome == taps_core::race::Outcome::Failed),
        "{saved:?}"
    );

    // A damaged, a truncated and a future file: one warning line each,
    // the connect goes on as without history, and the file is replaced.
    let good = std::fs::read(&file).unwrap();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x04;
    for (bad, says) in [
        (flipped, "damaged"),
        (good[..good.len() - 5].to_vec(), "cut short"),
        (b"taps-history 99\n".to_vec(), "version 99"),
    ] {
        std::fs::write(&file, &bad).unwrap();
        let out = run(&["--history", path, &refused], b"");
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
        assert_eq!(warnings.len(), 1, "{err}");
        assert!(warnings[0].contains(says), "{err}");
        history_file(&file);
    }

    // Processes saving the same file at once: every one leaves it whole.
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(TAPSCAT)
                .args(["--history", path, &refused])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for _ in 0..200 {
        history_file(&file);
    }
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        assert!(
            !text(&out.stderr).contains("warning"),
            "{}",
            text(&out.stderr)
        );
    }
    history_file(&file);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 1, "temporary files left: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
