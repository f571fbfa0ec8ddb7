//! Real TLS in the simulator: server machines with certificates from the
//! scenario's CA, real bytes over the links, TLS failure reasons, accept
//! behaviours, and byte-exact replays.

use std::time::Duration;

use taps_core::{FailureReason, TlsFailure, TraceKind};
use taps_sim::report::{AttemptEnd, attempts};
use taps_sim::{RunOptions, Scenario, World, run_scenario};

/// A dual-stack client, 10 ms each way to everything, resolver answers
/// after 30 ms; `servers` and `link` are appended as written.
fn scenario(servers: &str, link: &str) -> Scenario {
    let text = format!(
        r#"
name = "t"
[client]
interfaces = [{{ name = "wlan0", kind = "wifi", addrs = ["192.168.1.10/24", "2001:db8:1::10/64"] }}]
dns = ["192.168.1.1"]
[dns.records."example.com"]
a = ["192.0.2.1"]
aaaa = ["2001:db8::1"]
delay = {{ a = "10ms", aaaa = "10ms", https = "10ms" }}
{servers}
[[link]]
to = "*"
delay = "10ms"
{link}
[connect]
remote = "example.com:443"
alpn = ["h2"]
"#
    );
    Scenario::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

const BOTH_REAL: &str = r#"
[[server]]
listen = ["192.0.2.1:443", "[2001:db8::1]:443"]
tls = "real"
names = ["example.com"]
tls_time = "2ms"
"#;

/// IPv6 with `v6` (extra keys), IPv4 a good real server.
fn v6_then_v4(v6: &str) -> Scenario {
    scenario(
        &format!(
            "[[server]]\nlisten = [\"[2001:db8::1]:443\"]\ntls = \"real\"\n{v6}\n\
             [[server]]\nlisten = [\"192.0.2.1:443\"]\ntls = \"real\"\nnames = [\"example.com\"]\n"
        ),
        "",
    )
}

fn run(sc: &Scenario) -> taps_sim::RunResult {
    World::new().run(sc, RunOptions::of(sc)).unwrap()
}

#[test]
fn a_real_handshake_takes_the_modelled_round_trips_and_carries_bytes() {
    let real = run(&scenario(BOTH_REAL, ""));
    let modelled = run(&scenario(
        &BOTH_REAL.replace("\"real\"", "\"modelled\""),
        "",
    ));
    // 30 ms DNS, a 20 ms TCP round trip, a 20 ms TLS round trip, 2 ms of
    // server time: the model's figure, now from rustls on both ends.
    assert_eq!(
        real.connections[0].time_to_ready(),
        Some(Duration::from_millis(72))
    );
    assert_eq!(
        modelled.connections[0].time_to_ready(),
        real.connections[0].time_to_ready()
    );
    assert!(real.violations.is_empty(), "{:?}", real.violations);
    assert!(real.wire_bytes > 500, "{} bytes", real.wire_bytes);
    assert_eq!(modelled.wire_bytes, 0, "modelled TLS carries no bytes");
    // Real TLS reports TCP first; modelled TLS reports the stack at once.
    let up = |r: &taps_sim::RunResult| {
        r.connections[0]
            .trace
            .events
            .iter()
            .any(|e| matches!(e.kind, TraceKind::AttemptTransportUp { .. }))
    };
    assert!(up(&real));
    assert!(!up(&modelled));
    let f = real.tls_flights[0];
    assert!(
        f.client > 100 && f.server > f.client,
        "a ClientHello, then a flight with a certificate: {f:?}"
    );
}

#[test]
fn every_tls_byte_replays_from_the_seed() {
    let sc = scenario(BOTH_REAL, "");
    let (a, b) = (run(&sc), run(&sc));
    assert_eq!((a.wire_bytes, a.wire_hash), (b.wire_bytes, b.wire_hash));
    let hash = |r| run_scenario(&sc, r, false).unwrap().trace_hash;
    assert_eq!(hash(RunOptions::of(&sc)), hash(RunOptions::of(&sc)));
    // The check has teeth: another seed draws other keys and randoms.
    let other = World::new()
        .run(
            &sc,
            RunOptions {
                seed: 2,
                ..RunOptions::of(&sc)
            },
        )
        .unwrap();
    assert_ne!(a.wire_hash, other.wire_hash);
}

#[test]
fn a_rejected_certificate_fails_its_attempt_with_the_tls_reason() {
    type Want = fn(&TlsFailure) -> bool;
    let cases: [(&str, Want); 4] = [
        ("names = [\"other.example\"]", |t| {
            matches!(t, TlsFailure::NameMismatch { .. })
        }),
        ("cert = \"other-ca\"", |t| *t == TlsFailure::UnknownIssuer),
        ("cert = \"expired\"", |t| {
            matches!(t, TlsFailure::CertificateExpired { .. })
        }),
        ("cert = \"not-yet-valid\"", |t| {
            matches!(t, TlsFailure::CertificateNotYetValid { .. })
        }),
    ];
    for (v6, want) in cases {
        let sc = v6_then_v4(v6);
        let report = run_scenario(&sc, RunOptions::of(&sc), true).unwrap();
        let c = &report.connections[0];
        assert_eq!(c.outcome, "ready", "{v6}");
        assert!(
            matches!(c.attempts[0].result, AttemptEnd::Failed(FailureReason::Tls(t)) if want(&t)),
            "{v6}: {:?}",
            c.attempts[0].result
        );
        assert_eq!(c.attempts[0].end, Some(Duration::from_millis(70)), "{v6}");
        // The IPv4 attempt starts when the IPv6 one fails and wins.
        assert_eq!(
            c.winner.as_ref().map(|w| w.0),
            Some("192.0.2.1:443".parse().unwrap())
        );
        assert_eq!(c.time_to_ready, Some(Duration::from_millis(110)), "{v6}");
        // The oracle knows the bad certificate never becomes ready.
        assert_eq!(report.oracle[0], Some(Duration::from_millis(70)), "{v6}");
    }
}

#[test]
fn accept_behaviours_apply_to_real_tls() {
    let reason = |v6: &str| {
        let r = run(&v6_then_v4(v6));
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        let rows = attempts(&r.connections[0].trace, &|_| String::new());
        (
            rows[0].result,
            rows[0].end,
            r.connections[0].time_to_ready(),
        )
    };
    // The client's ClientHello (sent at 50 ms) meets a RST or a FIN.
    assert_eq!(
        reason("accept = \"reset\"").0,
        AttemptEnd::Failed(FailureReason::Reset)
    );
    assert_eq!(
        reason("accept = \"close\"").0,
        AttemptEnd::Failed(FailureReason::PeerClosed)
    );
    // A stalled server never answers: IPv4 starts after the Connection
    // Attempt Delay (250 ms) and wins; IPv6 is cancelled.
    for stall in ["accept = \"stall-tls\"", "accept = \"stall-after-tcp\""] {
        let (result, end, ready) = reason(stall);
        assert_eq!(result, AttemptEnd::Cancelled, "{stall}");
        assert_eq!(end, Some(Duration::from_millis(320)), "{stall}");
        assert_eq!(ready, Some(Duration::from_millis(320)), "{stall}");
    }
}

#[test]
fn a_stalled_tls_server_shows_the_transport_up_first() {
    let r = run(&v6_then_v4("accept = \"stall-tls\""));
    let kinds: Vec<TraceKind> = r.connections[0]
        .trace
        .events
        .iter()
        .map(|e| e.kind)
        .collect();
    let up = kinds
        .iter()
        .position(|k| matches!(k, TraceKind::AttemptTransportUp { attempt: 1 }));
    let cancelled = kinds
        .iter()
        .position(|k| matches!(k, TraceKind::AttemptCancelled { attempt: 1 }));
    assert!(
        up.is_some() && up < cancelled,
        "TCP up, then cancelled: {kinds:?}"
    );
}

#[test]
fn tls_time_delays_the_real_servers_flight() {
    let slow = BOTH_REAL.replace("tls_time = \"2ms\"", "tls_time = \"40ms\"");
    let r = run(&scenario(&slow, ""));
    assert_eq!(
        r.connections[0].time_to_ready(),
        Some(Duration::from_millis(110))
    );
}

#[test]
fn bandwidth_and_loss_apply_to_real_bytes() {
    // 1 Mbit/s: every byte of the real flights costs 8 µs each way; the
    // oracle counts the same flights, so the run meets it exactly.
    let sc = scenario(BOTH_REAL, "bandwidth = \"1mbit\"");
    let report = run_scenario(&sc, RunOptions::of(&sc), true).unwrap();
    let t = report.connections[0].time_to_ready.unwrap();
    assert!(t > Duration::from_millis(80), "{t:?}");
    assert_eq!(report.oracle[0], Some(t));
    // A lossy link costs retransmissions, never a reordered byte: every
    // seed still completes its handshake.
    for seed in 1..=8 {
        let sc = scenario(BOTH_REAL, "loss = 0.2\njitter = \"3ms\"");
        let r = World::new()
            .run(
                &sc,
                RunOptions {
                    seed,
                    ..RunOptions::of(&sc)
                },
            )
            .unwrap();
        assert!(r.violations.is_empty(), "seed {seed}: {:?}", r.violations);
        assert!(
            r.connections[0].time_to_ready().is_some(),
            "seed {seed}: {:?}",
            r.connections[0].outcome
        );
    }
}

#[test]
fn repeated_connections_to_real_servers_all_become_ready() {
    let sc = Scenario::parse(
        &format!(
            "{}\n",
            std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../scenarios/repeated-connections.toml")
            )
            .unwrap()
        )
        .replace("tls = \"modelled\"", "tls = \"real\""),
    )
    .unwrap();
    assert!(sc.real_tls());
    let r = run(&sc);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    let ready: Vec<Option<Duration>> = r.connections.iter().map(|c| c.time_to_ready()).collect();
    assert_eq!(
        ready,
        [322, 42, 42].map(|ms| Some(Duration::from_millis(ms)))
    );
}
