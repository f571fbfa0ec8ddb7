//! `taps_io::proxy_environment` reads the real process environment: this
//! test binary is started again with proxy variables set (a process's own
//! environment cannot be changed safely while threads run), and the child
//! reports what the snapshot decides.

use std::process::Command;

const CHILD: &str = "TAPS_PROXY_ENV_CHILD";

/// The child's side: prints the decisions for a few hosts. Does nothing
/// unless started by [`snapshot_of_the_process_environment`].
#[test]
fn proxy_env_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let env = taps_io::proxy_environment();
    for (host, tls) in [
        ("origin.test", true),
        ("origin.test", false),
        ("intra.corp.test", true),
    ] {
        let chosen = env
            .proxy_for(host, tls)
            .map(|p| format!("{} {}", p.variable, p.url));
        println!(
            "\nPROXY {host} {tls} {}",
            chosen.unwrap_or_else(|| "direct".into())
        );
    }
    println!("\nDEBUG {env:?}");
}

#[test]
fn snapshot_of_the_process_environment() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "proxy_env_child",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env_clear()
        .env(CHILD, "1")
        .env("HTTPS_PROXY", "http://user:pw@tls-proxy.test:3128")
        .env("HTTP_PROXY", "http://cgi-injected.test:80")
        .env("ALL_PROXY", "socks5h://all.test:1080")
        .env("no_proxy", ".corp.test")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = said.lines().filter(|l| l.starts_with("PROXY ")).collect();
    assert_eq!(
        lines,
        [
            "PROXY origin.test true HTTPS_PROXY http://user:pw@tls-proxy.test:3128",
            // HTTP_PROXY is never read: ALL_PROXY serves the plain connection.
            "PROXY origin.test false ALL_PROXY socks5h://all.test:1080",
            "PROXY intra.corp.test true direct",
        ],
        "{said}"
    );
    let debug = said.lines().find(|l| l.starts_with("DEBUG ")).unwrap();
    assert!(debug.contains("***@tls-proxy.test"), "{debug}");
    assert!(!debug.contains("pw@"), "{debug}");
}
