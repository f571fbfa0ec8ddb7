//! The proxy harnesses against a client the project did not write: curl
//! through danted (SOCKS5, `--socks5` and `--socks5-hostname`, with and
//! without RFC 1929 credentials) and through tinyproxy (HTTP CONNECT,
//! `--proxytunnel`, with and without Basic credentials), to the origin
//! in a third namespace that the client has no route to. Each checks the
//! bytes the origin sent, including the address it saw (the proxy's
//! outside address), and that wrong or missing credentials fail with
//! curl's exit code for it. Each prints how long its proxy took to
//! start listening.

use std::net::{IpAddr, SocketAddr};
use std::process::Output;

use taps_testkit::netns::require_root;
use taps_testkit::proxies::{
    Credentials, Dante, Lab, ORIGIN_ADDR, ORIGIN_ADDR_V6, ORIGIN_NAME, Origin, PROXY_INSIDE,
    PROXY_INSIDE_V6, PROXY_OUTSIDE, PROXY_OUTSIDE_V6, Tinyproxy,
};

const ORIGIN_PORT: u16 = 8080;

fn lab_with_origin(test: &str) -> (Lab, Origin) {
    require_root(test);
    let lab = Lab::new();
    let origin = Origin::start(
        &lab.origin,
        &[
            SocketAddr::from((ORIGIN_ADDR, ORIGIN_PORT)),
            SocketAddr::from((ORIGIN_ADDR_V6, ORIGIN_PORT)),
        ],
    );
    (lab, origin)
}

/// curl in the client namespace with `args`, 10 s at most.
fn curl(lab: &Lab, args: &[&str]) -> Output {
    lab.client
        .command("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(args)
        .output()
        .expect("these tests need curl")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// curl succeeded and printed exactly what the origin sends the proxy
/// (from its outside address of either family: a name the proxy resolves
/// has both).
fn through_proxy(out: &Output, case: &str, log: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{case}: curl failed: {}\nproxy log:\n{log}",
        text(&out.stderr)
    );
    let said = text(&out.stdout);
    assert!(
        said == Origin::body_for(IpAddr::V4(PROXY_OUTSIDE))
            || said == Origin::body_for(IpAddr::V6(PROXY_OUTSIDE_V6)),
        "{case}: {said:?}"
    );
}

/// curl failed with `code`, and its message says `says`.
fn refused(out: &Output, code: i32, says: &str, case: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{case}: stdout {:?} stderr {:?}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains(says),
        "{case}: {}",
        text(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "{case}: the origin's bytes came through"
    );
}

fn origin_url() -> String {
    format!("http://{ORIGIN_ADDR}:{ORIGIN_PORT}/")
}

#[test]
#[ignore = "needs root"]
fn dante_socks5_without_auth() {
    let (lab, origin) = lab_with_origin("dante_socks5_without_auth");
    let dante = Dante::start(
        &lab.proxy,
        &[SocketAddr::from((PROXY_INSIDE, 1080))],
        &[IpAddr::V4(PROXY_OUTSIDE)],
        None,
    );
    eprintln!("danted (no auth) listening after {:?}", dante.started_in());
    let proxy = dante.addr().to_string();

    // The client cannot reach the origin itself.
    let direct = curl(&lab, &[&origin_url()]);
    refused(&direct, 7, "Failed to connect", "direct");

    // socks5: curl resolves (here: an address) and sends the address.
    let out = curl(&lab, &["--socks5", &proxy, &origin_url()]);
    through_proxy(&out, "--socks5", &dante.log());

    // socks5h: the proxy resolves the name, which only its namespace knows;
    // curl resolving it itself fails (curl 7.88.1 says so with exit 97,
    // its SOCKS handshake error, not 6).
    let by_name = format!("http://{ORIGIN_NAME}:{ORIGIN_PORT}/");
    let out = curl(&lab, &["--socks5-hostname", &proxy, &by_name]);
    through_proxy(&out, "--socks5-hostname", &dante.log());
    let out = curl(&lab, &["--socks5", &proxy, &by_name]);
    refused(
        &out,
        97,
        "Could not resolve host: origin.proxy.test",
        "--socks5 with a name only the proxy knows",
    );

    let seen = origin.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter().all(|p| p.ip() == IpAddr::V4(PROXY_OUTSIDE)),
        "{seen:?}"
    );
    assert!(dante.log().contains("tcp/connect"), "{}", dante.log());
}

#[test]
#[ignore = "needs root"]
fn dante_socks5_with_username_and_password() {
    let (lab, origin) = lab_with_origin("dante_socks5_with_username_and_password");
    let alice = Credentials::new("alice", "pass word:with colon");
    let dante = Dante::start(
        &lab.proxy,
        &[SocketAddr::from((PROXY_INSIDE, 1081))],
        &[IpAddr::V4(PROXY_OUTSIDE)],
        Some(&alice),
    );
    eprintln!("danted (username) listening after {:?}", dante.started_in());
    let proxy = dante.addr().to_string();
    let good = format!("{}:{}", alice.user, alice.password);

    let out = curl(
        &lab,
        &["--socks5", &proxy, "--proxy-user", &good, &origin_url()],
    );
    through_proxy(&out, "right credentials", &dante.log());

    // curl's exit 97: "Proxy handshake error".
    let out = curl(
        &lab,
        &[
            "--socks5",
            &proxy,
            "--proxy-user",
            "alice:wrong",
            &origin_url(),
        ],
    );
    refused(&out, 97, "rejected", "wrong password");
    let out = curl(
        &lab,
        &[
            "--socks5",
            &proxy,
            "--proxy-user",
            "mallory:pass",
            &origin_url(),
        ],
    );
    refused(&out, 97, "rejected", "unknown user");
    let out = curl(&lab, &["--socks5", &proxy, &origin_url()]);
    refused(
        &out,
        97,
        "No authentication method was acceptable",
        "no credentials",
    );

    assert_eq!(origin.seen.lock().unwrap().len(), 1);
    assert!(
        dante
            .log()
            .contains("password authentication failed for user \"alice\""),
        "{}",
        dante.log()
    );
}

#[test]
#[ignore = "needs root"]
fn tinyproxy_connect_without_auth() {
    let (lab, origin) = lab_with_origin("tinyproxy_connect_without_auth");
    let tiny = Tinyproxy::start(&lab.proxy, SocketAddr::from((PROXY_INSIDE, 3128)), None);
    eprintln!(
        "tinyproxy (no auth) listening after {:?}",
        tiny.started_in()
    );
    let proxy = format!("http://{}", tiny.addr());

    let out = curl(&lab, &["--proxytunnel", "--proxy", &proxy, &origin_url()]);
    through_proxy(&out, "CONNECT to an address", &tiny.log());
    // CONNECT names the host; the proxy resolves it.
    let by_name = format!("http://{ORIGIN_NAME}:{ORIGIN_PORT}/");
    let out = curl(&lab, &["--proxytunnel", "--proxy", &proxy, &by_name]);
    through_proxy(&out, "CONNECT to a name", &tiny.log());

    // A name the proxy cannot resolve: curl reports the proxy's refusal.
    let out = curl(
        &lab,
        &["-p", "--proxy", &proxy, "http://nowhere.proxy.test:8080/"],
    );
    refused(&out, 56, "CONNECT tunnel failed", "an unknown name");

    assert_eq!(origin.seen.lock().unwrap().len(), 2);
    let log = tiny.log();
    assert!(
        log.contains(&format!("CONNECT {ORIGIN_NAME}:{ORIGIN_PORT}")),
        "{log}"
    );
}

#[test]
#[ignore = "needs root"]
fn tinyproxy_connect_with_basic_auth() {
    let (lab, origin) = lab_with_origin("tinyproxy_connect_with_basic_auth");
    let bob = Credentials::new("bob", "s3cret");
    let tiny = Tinyproxy::start(
        &lab.proxy,
        SocketAddr::from((PROXY_INSIDE, 3129)),
        Some(&bob),
    );
    eprintln!(
        "tinyproxy (basic auth) listening after {:?}",
        tiny.started_in()
    );
    let proxy = format!("http://{}", tiny.addr());

    let out = curl(
        &lab,
        &[
            "-p",
            "--proxy",
            &proxy,
            "--proxy-user",
            "bob:s3cret",
            &origin_url(),
        ],
    );
    through_proxy(&out, "right credentials", &tiny.log());
    // Credentials in the proxy URL work the same.
    let in_url = format!("http://bob:s3cret@{}", tiny.addr());
    let out = curl(&lab, &["-p", "--proxy", &in_url, &origin_url()]);
    through_proxy(&out, "credentials in the proxy URL", &tiny.log());

    // tinyproxy 1.11.1 answers wrong credentials with 401, missing ones
    // with 407; curl's exit 56 either way.
    let out = curl(
        &lab,
        &[
            "-p",
            "--proxy",
            &proxy,
            "--proxy-user",
            "bob:wrong",
            &origin_url(),
        ],
    );
    refused(&out, 56, "response 401", "wrong password");
    let out = curl(&lab, &["-p", "--proxy", &proxy, &origin_url()]);
    refused(&out, 56, "response 407", "no credentials");

    assert_eq!(origin.seen.lock().unwrap().len(), 2);
}

/// A proxy that cannot start fails the test with its own words: danted
/// told to listen on an address its namespace does not have.
#[test]
#[ignore = "needs root"]
// The panic carries danted's own words from its log.
#[should_panic(expected = "could not find address 192.0.2.99 on any network interface")]
fn a_failed_start_shows_the_log() {
    let (lab, _origin) = lab_with_origin("a_failed_start_shows_the_log");
    let _ = Dante::start(
        &lab.proxy,
        &["192.0.2.99:1080".parse().unwrap()],
        &[IpAddr::V4(PROXY_OUTSIDE)],
        None,
    );
}

/// Both families: danted listening on an IPv4 and an IPv6 address with an
/// external address of each, and tinyproxy on every address. curl reaches
/// each proxy over IPv6 and over IPv4, to the origin's IPv6 and IPv4
/// addresses; the origin sees the proxy's outside address of the
/// destination's family.
#[test]
#[ignore = "needs root"]
fn both_families() {
    let (lab, origin) = lab_with_origin("both_families");
    let dante = Dante::start(
        &lab.proxy,
        &[
            SocketAddr::from((PROXY_INSIDE_V6, 1080)),
            SocketAddr::from((PROXY_INSIDE, 1080)),
        ],
        &[IpAddr::V4(PROXY_OUTSIDE), IpAddr::V6(PROXY_OUTSIDE_V6)],
        None,
    );
    let tiny = Tinyproxy::start(&lab.proxy, "[::]:3128".parse().unwrap(), None);
    eprintln!(
        "dual-stack danted listening after {:?}, tinyproxy after {:?}",
        dante.started_in(),
        tiny.started_in()
    );
    let v6_origin = format!("http://[{ORIGIN_ADDR_V6}]:{ORIGIN_PORT}/");
    let saw_v6 = Origin::body_for(IpAddr::V6(PROXY_OUTSIDE_V6));
    let saw_v4 = Origin::body_for(IpAddr::V4(PROXY_OUTSIDE));
    for (proxy_flag, proxy, target, want) in [
        (
            "--socks5",
            format!("[{PROXY_INSIDE_V6}]:1080"),
            v6_origin.clone(),
            &saw_v6,
        ),
        (
            "--socks5",
            format!("[{PROXY_INSIDE_V6}]:1080"),
            origin_url(),
            &saw_v4,
        ),
        (
            "--socks5",
            format!("{PROXY_INSIDE}:1080"),
            v6_origin.clone(),
            &saw_v6,
        ),
        (
            "--proxy",
            format!("http://[{PROXY_INSIDE_V6}]:3128"),
            v6_origin.clone(),
            &saw_v6,
        ),
        (
            "--proxy",
            format!("http://{PROXY_INSIDE}:3128"),
            origin_url(),
            &saw_v4,
        ),
    ] {
        let out = curl(&lab, &["-p", proxy_flag, &proxy, &target]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{proxy_flag} {proxy} {target}: {}\n{}\n{}",
            text(&out.stderr),
            dante.log(),
            tiny.log()
        );
        assert_eq!(&text(&out.stdout), want, "{proxy_flag} {proxy} {target}");
    }
    assert_eq!(origin.seen.lock().unwrap().len(), 5);
}
