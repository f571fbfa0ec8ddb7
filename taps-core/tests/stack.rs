//! The stack end to end: in-memory client and server machines exchanging
//! real bytes in virtual time — TLS 1.3 with rcgen certificates, ALPN,
//! pinning, bad certificates, 0-RTT on resumed sessions, a TCP-up but
//! TLS-stalled race, framed messages with their properties, back-pressure,
//! close and abort on both sides, listener limits and hostile clients.

use std::time::Duration;

use taps_core::{
    Config, ConnectionId, Event, FailureReason, Input, Instant, IoLimits, ListenerConfig,
    ListenerId, Machine, Message, Preconnection, SecurityParameters, SendError, StreamError,
    TlsCheckout, TlsFailure, TraceKind, ZeroRttOutcome, dns::parse_hosts, framer::FramerFactory,
    race::RaceFailure,
};
use taps_testkit::net::{Behaviour, Net};
use taps_testkit::pki::{TestCa, openssl_style_self_signed};
use taps_testkit::wire::{Through, read_through};

const V6: &str = "[2001:db8::10]:443";
const V4: &str = "192.0.2.10:443";

fn machine(seed: u64) -> Machine {
    Machine::new(Config {
        seed,
        hosts: parse_hosts("2001:db8::10 example.com\n192.0.2.10 example.com\n"),
        ..taps_testkit::config(0)
    })
}

fn ms(v: u64) -> Instant {
    Instant::from_millis(v)
}

/// Client = machine 0, server = machine 1 listening on both addresses.
fn setup(ca: &TestCa, names: &[&str], framer: Option<FramerFactory>) -> (Net, ListenerId) {
    let mut net = Net::new(vec![machine(1), machine(2)], Duration::from_millis(10));
    let mut server = SecurityParameters::server(ca.leaf(names)).alpn(["h2", "http/1.1"]);
    server.trusted_roots = vec![ca.root()];
    let mut config =
        ListenerConfig::on(vec![V6.parse().unwrap(), V4.parse().unwrap()]).with_security(server);
    config.framer = framer;
    let listener = net.machines[1].listen(config).unwrap();
    net.drain();
    (net, listener)
}

fn client_security(ca: &TestCa) -> SecurityParameters {
    SecurityParameters::with_roots(vec![ca.root()]).alpn(["h2"])
}

fn pre(security: SecurityParameters, framer: Option<FramerFactory>) -> Preconnection {
    let mut p = Preconnection::new("example.com:443".parse().unwrap()).with_security(security);
    p.framer = framer;
    p
}

fn server_conn(net: &Net) -> Option<ConnectionId> {
    net.events_of(1).iter().find_map(|e| match e {
        Event::ConnectionReceived { conn, .. } => Some(*conn),
        _ => None,
    })
}

fn last_server_conn(net: &Net) -> ConnectionId {
    net.events_of(1)
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::ConnectionReceived { conn, .. } => Some(*conn),
            _ => None,
        })
        .expect("a ConnectionReceived")
}

fn ready(net: &Net, m: usize, conn: ConnectionId) -> bool {
    net.events_of(m)
        .iter()
        .any(|e| matches!(e, Event::Ready { conn: c, .. } if *c == conn))
}

fn establishment_error(net: &Net, conn: ConnectionId) -> Option<taps_core::EstablishmentError> {
    net.events_of(0).into_iter().find_map(|e| match e {
        Event::EstablishmentError { conn: c, error } if c == conn => Some(error),
        _ => None,
    })
}

fn received(net: &Net, m: usize, conn: ConnectionId) -> Vec<Vec<u8>> {
    net.events_of(m)
        .into_iter()
        .filter_map(|e| match e {
            Event::Received { conn: c, data } if c == conn => Some(data),
            _ => None,
        })
        .collect()
}

#[test]
fn tls13_handshake_alpn_and_framed_messages_both_ways() {
    // RFC 9623 §4.2.3: security is part of the stack; an attempt is ready
    // only when TLS is. ALPN (RFC 7301) is negotiated per attempt.
    let ca = TestCa::new();
    let framer = FramerFactory::length_prefixed(1 << 20);
    let (mut net, _) = setup(&ca, &["example.com"], Some(framer.clone()));
    let c = net.machines[0]
        .initiate(ms(0), &pre(client_security(&ca), Some(framer)))
        .unwrap();
    net.run_for(Duration::from_secs(1));
    assert!(ready(&net, 0, c), "{:?}", net.events_of(0));
    let s = server_conn(&net).expect("ConnectionReceived");
    assert_eq!(
        net.machines[0].connection_info(c).and_then(|c| c.alpn()),
        Some(&b"h2"[..])
    );
    assert_eq!(
        net.machines[1].connection_info(s).and_then(|c| c.alpn()),
        Some(&b"h2"[..])
    );
    // The attempt won only after TLS: TCP up at 20 ms, TLS 1.3 one more RTT.
    let trace = net.machines[0]
        .connection_info(c)
        .map(|c| c.trace())
        .unwrap();
    let winner_at = trace
        .events
        .iter()
        .find(|e| matches!(e.kind, TraceKind::Winner { .. }))
        .unwrap()
        .at;
    assert_eq!(winner_at, ms(40));
    // The trace records what TLS negotiated, on both sides, just before
    // the attempt is connected.
    let tls = |t: &taps_core::Trace| {
        t.events.iter().find_map(|e| match e.kind {
            TraceKind::TlsEstablished { attempt } => t.tls_details(attempt).map(|d| d.to_string()),
            _ => None,
        })
    };
    assert_eq!(
        tls(trace).as_deref(),
        Some(
            "TLSv1_3, TLS13_AES_256_GCM_SHA384, ALPN h2, peer certificate CN=rcgen self signed cert for `example.com`, full handshake"
        ),
    );
    assert!(
        trace
            .waterfall("example.com", &|_| None)
            .contains("attempt  #1 TLS: TLSv1_3, "),
        "{}",
        trace.waterfall("example.com", &|_| None)
    );
    let server_trace = net.machines[1]
        .connection_info(s)
        .map(|c| c.trace())
        .unwrap();
    assert_eq!(
        tls(server_trace).as_deref(),
        Some("TLSv1_3, TLS13_AES_256_GCM_SHA384, ALPN h2, no peer certificate, full handshake"),
    );
    assert!(
        trace
            .events
            .iter()
            .any(|e| matches!(e.kind, TraceKind::AttemptTransportUp { .. }))
    );

    for m in [&b"hello"[..], &[][..], &[7u8; 5000][..]] {
        net.machines[0]
            .connection(c)
            .send(net.now, Message::new(m))
            .unwrap();
    }
    for _ in 0..3 {
        net.machines[1]
            .connection(s)
            .receive(net.now, 1, 1 << 20)
            .unwrap();
    }
    net.run_for(Duration::from_secs(1));
    assert_eq!(
        received(&net, 1, s),
        vec![b"hello".to_vec(), vec![], vec![7u8; 5000]]
    );
    net.machines[1]
        .connection(s)
        .send(net.now, Message::new(&b"pong"[..]))
        .unwrap();
    net.machines[0]
        .connection(c)
        .receive(net.now, 1, 100)
        .unwrap();
    net.run_for(Duration::from_secs(1));
    assert_eq!(received(&net, 0, c), vec![b"pong".to_vec()]);
    // Sent events came in order for all three.
    let sent: Vec<u64> = net
        .events_of(0)
        .iter()
        .filter_map(|e| match e {
            Event::Sent { message, .. } => Some(message.0),
            _ => None,
        })
        .collect();
    assert_eq!(sent, [0, 1, 2]);
}

/// Serves `identity` on machine 1 and connects to `host` from machine 0
/// trusting `roots` (and `alpn` offered by the client, `server_alpn`
/// accepted by the server); the client's establishment error, or `None`
/// if it became ready.
fn connect_to(
    identity: taps_core::Identity,
    roots: Vec<rustls_pki_types::CertificateDer<'static>>,
    host: &str,
    alpn: (&[&str], &[&str]),
) -> (Net, Option<taps_core::EstablishmentError>) {
    let mut net = Net::new(vec![machine(1), machine(2)], Duration::from_millis(10));
    net.machines[1]
        .listen(
            // Every address `host` resolves to: example.com's from the
            // hosts file, and loopback for localhost (RFC 6761).
            ListenerConfig::on(
                [V6, V4, "[::1]:443", "127.0.0.1:443"]
                    .map(|a| a.parse().unwrap())
                    .to_vec(),
            )
            .with_security(SecurityParameters::server(identity).alpn(alpn.1.iter().copied())),
        )
        .unwrap();
    net.drain();
    let security = SecurityParameters::with_roots(roots).alpn(alpn.0.iter().copied());
    let remote = format!("{host}:443").parse().unwrap();
    let c = net.machines[0]
        .initiate(ms(0), &Preconnection::new(remote).with_security(security))
        .unwrap();
    net.run_for(Duration::from_secs(5));
    let err = establishment_error(&net, c);
    assert_eq!(err.is_none(), ready(&net, 0, c), "{err:?}");
    (net, err)
}

/// The one TLS failure of the attempts in `err`.
fn tls_failure(err: &taps_core::EstablishmentError) -> TlsFailure {
    err.attempts
        .iter()
        .find_map(|a| match a.failure {
            Some(FailureReason::Tls(t)) => Some(t),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no TLS failure: {err}"))
}

#[test]
fn certificate_failures_reach_establishment_error_with_a_reason() {
    type MakeLeaf = Box<dyn Fn(&TestCa) -> taps_core::Identity>;
    type Want = fn(&TlsFailure) -> bool;
    let cases: [(&str, MakeLeaf, Want, &[&str]); 3] = [
        (
            "expired",
            Box::new(|ca: &TestCa| ca.leaf_valid(&["example.com"], (2010, 1, 1), (2011, 1, 1))),
            |t| matches!(t, TlsFailure::CertificateExpired { .. }),
            &["the certificate expired on 2011-01-01 00:00:00 UTC (now 20"],
        ),
        (
            "wrong name",
            Box::new(|ca: &TestCa| ca.leaf(&["other.example"])),
            |t| matches!(t, TlsFailure::NameMismatch { .. }),
            &["the certificate is for `other.example`, not `example.com`"],
        ),
        (
            "unknown issuer",
            Box::new(|_: &TestCa| TestCa::named("some other CA").leaf(&["example.com"])),
            |t| *t == TlsFailure::UnknownIssuer,
            &[
                "unknown issuer: the chain does not lead to a trusted root; pass the issuing CA with --ca",
            ],
        ),
    ];
    for (name, leaf, want, texts) in cases {
        let ca = TestCa::new();
        let (_, err) = connect_to(leaf(&ca), vec![ca.root()], "example.com", (&[], &[]));
        let err = err.unwrap_or_else(|| panic!("{name}: no error"));
        assert_eq!(err.reason, RaceFailure::AllAttemptsFailed, "{name}");
        let failure = tls_failure(&err);
        assert!(want(&failure), "{name}: {err}");
        assert!(
            err.to_string().contains(&failure.to_string()),
            "{name}: {err}"
        );
        for text in texts {
            assert!(err.to_string().contains(text), "{name}: {err}");
        }
    }
}

#[test]
fn a_trusted_openssl_style_self_signed_ca_certificate_verifies() {
    // OpenSSL 3's `req -x509` default: CA:TRUE and a SAN. curl accepts it
    // with --cacert; so do we, when it is the very certificate trusted.
    let id = openssl_style_self_signed(&["localhost"], (2025, 1, 1), (2035, 1, 1));
    let root = id.chain[0].clone();
    let (_, err) = connect_to(id, vec![root], "localhost", (&[], &[]));
    assert!(err.is_none(), "{err:?}");
}

#[test]
fn a_trusted_self_signed_ca_certificate_still_has_its_name_checked() {
    let id = openssl_style_self_signed(
        &["example.org", "www.example.org"],
        (2025, 1, 1),
        (2035, 1, 1),
    );
    let root = id.chain[0].clone();
    let (_, err) = connect_to(id, vec![root], "localhost", (&[], &[]));
    let err = err.expect("a certificate for other names must fail");
    assert!(
        matches!(tls_failure(&err), TlsFailure::NameMismatch { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("the certificate is for `example.org`, `www.example.org`, not `localhost`"),
        "{err}"
    );
}

#[test]
fn an_expired_trusted_self_signed_ca_cert_still_fails_as_expired() {
    // Also holds the verifier's reliance on WebPKI checking validity
    // before basicConstraints to account.
    let id = openssl_style_self_signed(&["localhost"], (2020, 1, 1), (2021, 2, 3));
    let root = id.chain[0].clone();
    let (_, err) = connect_to(id, vec![root], "localhost", (&[], &[]));
    let err = err.expect("an expired certificate must fail");
    assert!(
        matches!(tls_failure(&err), TlsFailure::CertificateExpired { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("the certificate expired on 2021-02-03 00:00:00 UTC (now 20"),
        "{err}"
    );
}

#[test]
fn an_untrusted_self_signed_ca_certificate_fails_naming_ca_true() {
    // Trusting some other certificate must not make this one trusted.
    let id = openssl_style_self_signed(&["localhost"], (2025, 1, 1), (2035, 1, 1));
    let other = openssl_style_self_signed(&["localhost"], (2025, 1, 1), (2035, 1, 1));
    let (_, err) = connect_to(id, vec![other.chain[0].clone()], "localhost", (&[], &[]));
    let err = err.expect("an untrusted certificate must fail");
    assert_eq!(
        tls_failure(&err),
        TlsFailure::CaCertificateNotTrusted,
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("is a CA certificate (basicConstraints CA:TRUE) and is not in the trusted roots (unknown issuer)"),
        "{text}"
    );
    // Nor does trusting the CA that is a leaf's issuer make a CA-flagged
    // certificate it issued an end entity.
    let ca = TestCa::new();
    let (_, err) = connect_to(
        ca.ca_flagged_leaf(&["localhost"]),
        vec![ca.root()],
        "localhost",
        (&[], &[]),
    );
    let err = err.expect("a CA certificate as end entity must fail");
    assert_eq!(
        tls_failure(&err),
        TlsFailure::CaCertificateNotTrusted,
        "{err}"
    );
}

#[test]
fn a_leaf_of_an_untrusted_ca_fails_as_unknown_issuer() {
    let trusted = TestCa::new();
    let other = TestCa::named("untrusted CA");
    let (_, err) = connect_to(
        other.leaf(&["localhost"]),
        vec![trusted.root()],
        "localhost",
        (&[], &[]),
    );
    let err = err.expect("an untrusted issuer must fail");
    assert_eq!(tls_failure(&err), TlsFailure::UnknownIssuer, "{err}");
    assert!(
        err.to_string()
            .contains("unknown issuer: the chain does not lead to a trusted root; pass the issuing CA with --ca"),
        "{err}"
    );
}

#[test]
fn an_alpn_mismatch_is_named_by_the_listener_and_it_keeps_listening() {
    // RFC 7301 §3.2: the server refuses with no_application_protocol. The
    // listener hears why (HandshakeFailed) and still accepts the next one.
    let ca = TestCa::new();
    let (mut net, err) = connect_to(
        ca.leaf(&["localhost"]),
        vec![ca.root()],
        "localhost",
        (&["h2"], &["x"]),
    );
    // The client hears the server's no_application_protocol alert, not a
    // bare close.
    let err = err.expect("no common ALPN must not connect");
    assert!(
        matches!(
            tls_failure(&err),
            TlsFailure::NoApplicationProtocol { server: false, .. }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(
            "TLS: ALPN mismatch: the server rejected the offered ALPN protocols (h2); offer one the server accepts (--alpn)"
        ),
        "{err}"
    );
    let failures: Vec<String> = net
        .events_of(1)
        .iter()
        .filter_map(|e| match e {
            Event::HandshakeFailed { reason, .. } => Some(reason.to_string()),
            _ => None,
        })
        .collect();
    assert!(!failures.is_empty(), "{:?}", net.events_of(1));
    for f in &failures {
        assert!(
            f == "TLS: ALPN mismatch: the client offered none of the ALPN protocols this server accepts (x)",
            "{f}"
        );
    }
    assert!(server_conn(&net).is_none());
    // The same listener still accepts a client that offers what it takes.
    let security = SecurityParameters::with_roots(vec![ca.root()]).alpn(["x"]);
    let c = net.machines[0]
        .initiate(
            net.now,
            &Preconnection::new("localhost:443".parse().unwrap()).with_security(security),
        )
        .unwrap();
    net.run_for(Duration::from_secs(5));
    assert!(ready(&net, 0, c), "{:?}", establishment_error(&net, c));
    assert!(server_conn(&net).is_some());
}

#[test]
fn pinning_passes_with_the_right_key_and_fails_with_another() {
    // RFC 7469-style SPKI pins are checked after chain verification.
    let ca = TestCa::new();
    let leaf = ca.leaf(&["example.com"]);
    let pin = taps_testkit::tls::wall_clock()
        .spki_sha256(&leaf.chain[0])
        .unwrap();
    for (pins, ok) in [(pin, true), ([0u8; 32], false)] {
        let mut net = Net::new(vec![machine(1), machine(2)], Duration::from_millis(10));
        let id = taps_core::Identity {
            chain: leaf.chain.clone(),
            key: leaf.key.clone_key(),
        };
        net.machines[1]
            .listen(
                ListenerConfig::on(vec![V4.parse().unwrap()])
                    .with_security(SecurityParameters::server(id)),
            )
            .unwrap();
        net.drain();
        let security = SecurityParameters::with_roots(vec![ca.root()]).pin_spki_sha256(pins);
        let c = net.machines[0]
            .initiate(ms(0), &pre(security, None))
            .unwrap();
        net.run_for(Duration::from_secs(5));
        if ok {
            assert!(ready(&net, 0, c));
        } else {
            let err = establishment_error(&net, c).unwrap();
            assert!(
                err.attempts
                    .iter()
                    .any(|a| a.failure == Some(FailureReason::Tls(TlsFailure::PinMismatch))),
                "{err}"
            );
            assert!(!ready(&net, 0, c));
        }
    }
}

#[test]
fn verification_cannot_be_skipped_by_accident_and_can_be_by_name() {
    let ca = TestCa::new();
    let (mut net, _) = setup(&ca, &["example.com"], None);
    // No roots: refused at once rather than trusting nothing or everything.
    let err = net.machines[0]
        .initiate(ms(0), &pre(SecurityParameters::default(), None))
        .unwrap_err();
    assert!(err.to_string().contains("no trusted roots"), "{err}");
    let c = net.machines[0]
        .initiate(
            ms(0),
            &pre(
                SecurityParameters::default().danger_disable_verification(),
                None,
            ),
        )
        .unwrap();
    net.run_for(Duration::from_secs(1));
    assert!(ready(&net, 0, c));
}

/// Connection `c`'s read-back `zeroRttMsg` and what became of its first
/// message.
fn zero_rtt(net: &Net, c: ConnectionId) -> (bool, ZeroRttOutcome) {
    let e = net.machines[0]
        .connection_info(c)
        .and_then(|c| c.properties())
        .expect("established");
    (e.zero_rtt_msg, e.zero_rtt)
}

#[test]
fn zero_rtt_on_a_resumed_session_and_never_for_unsafe_messages() {
    // RFC 9622 §7.2 InitiateWithSend; RFC 8446 §2.3 early data.
    let ca = TestCa::new();
    let framer = FramerFactory::length_prefixed(1 << 16);
    let (mut net, _) = setup(&ca, &["example.com"], Some(framer.clone()));
    let p = pre(client_security(&ca), Some(framer));
    // First connection: full handshake, tickets arrive.
    // It sends a replayable first message, which has no session to ride.
    let (first, _) = net.machines[0]
        .initiate_with_send(ms(0), &p, Message::new(&b"hello"[..]).safely_replayable())
        .unwrap();
    net.run_for(Duration::from_millis(500));
    assert!(
        ready(&net, 0, first)
            && !net.machines[0]
                .connection_info(first)
                .is_some_and(|c| c.resumed())
    );
    assert_eq!(
        zero_rtt(&net, first),
        (false, ZeroRttOutcome::NoResumableSession)
    );
    net.machines[0].connection(first).close(net.now);
    net.run_for(Duration::from_secs(3));

    // Second: resumed, the safely replayable first message rides early.
    let before = net.machines[0].stats().early_data_attempts;
    let (c, msg) = net.machines[0]
        .initiate_with_send(
            net.now,
            &p,
            Message::new(&b"GET / early"[..]).safely_replayable(),
        )
        .unwrap();
    net.run_for(Duration::from_millis(500));
    assert!(ready(&net, 0, c));
    assert!(
        net.machines[0]
            .connection_info(c)
            .is_some_and(|c| c.resumed())
    );
    assert!(
        net.machines[0].stats().early_data_attempts > before,
        "early data went out"
    );
    // RFC 9622 §6.2.5: zeroRttMsg reads back what happened.
    assert_eq!(zero_rtt(&net, c), (true, ZeroRttOutcome::Accepted));
    let s = last_server_conn(&net);
    net.machines[1]
        .connection(s)
        .receive(net.now, 1, 1000)
        .unwrap();
    net.run_for(Duration::from_millis(100));
    assert_eq!(received(&net, 1, s), vec![b"GET / early".to_vec()]);
    assert!(
        net.events_of(0)
            .iter()
            .any(|e| matches!(e, Event::Sent { conn, message } if *conn == c && *message == msg))
    );
    net.machines[0].connection(c).close(net.now);
    net.run_for(Duration::from_secs(3));

    // Not safely replayable: never early, still delivered after the handshake.
    let before = net.machines[0].stats().early_data_attempts;
    let (c, _) = net.machines[0]
        .initiate_with_send(net.now, &p, Message::new(&b"POST /pay"[..]))
        .unwrap();
    net.run_for(Duration::from_millis(500));
    assert!(ready(&net, 0, c));
    assert_eq!(net.machines[0].stats().early_data_attempts, before);
    assert_eq!(
        zero_rtt(&net, c),
        (false, ZeroRttOutcome::NotSafelyReplayable)
    );
    let s = last_server_conn(&net);
    net.machines[1]
        .connection(s)
        .receive(net.now, 1, 1000)
        .unwrap();
    net.run_for(Duration::from_millis(100));
    assert_eq!(received(&net, 1, s), vec![b"POST /pay".to_vec()]);
}

#[test]
fn tcp_fast_open_carries_a_replayable_first_message_on_plain_tcp() {
    let mut net = Net::new(vec![machine(1), machine(2)], Duration::from_millis(10));
    let framer = FramerFactory::lines(1024);
    net.machines[1]
        .listen(ListenerConfig::on(vec![V4.parse().unwrap()]).with_framer(framer.clone()))
        .unwrap();
    net.drain();
    let mut p = Preconnection::new("192.0.2.10:443".parse().unwrap());
    p.framer = Some(framer);
    let (c, _) = net.machines[0]
        .initiate_with_send(ms(0), &p, Message::new(&b"hi"[..]).safely_replayable())
        .unwrap();
    net.run_for(Duration::from_millis(100));
    assert!(ready(&net, 0, c));
    assert!(net.opened[0].3, "OpenTcp asked for fast open");
    // Whether the SYN carried it is the kernel's secret: not read as on.
    assert_eq!(
        zero_rtt(&net, c),
        (false, ZeroRttOutcome::FastOpenUnconfirmed)
    );
    let s = server_conn(&net).unwrap();
    net.machines[1]
        .connection(s)
        .receive(net.now, 1, 100)
        .unwrap();
    net.run_for(Duration::from_millis(10));
    assert_eq!(received(&net, 1, s), vec![b"hi".to_vec()]);
}

#[test]
fn a_tcp_up_but_tls_stalled_attempt_loses_to_one_that_finishes_tls() {
    // HEv3 §6.1: "clients SHOULD wait for the TLS handshake to successfully
    // complete before cancelling other connection attempts".
    let ca = TestCa::new();
    let (mut net, _) = setup(&ca, &["example.com"], None);
    net.behaviour
        .insert(V6.parse().unwrap(), Behaviour::StallAfterTcp);
    let c = net.machines[0]
        .initiate(ms(0), &pre(client_security(&ca), None))
        .unwrap();
    net.run_for(Duration::from_secs(2));
    let (_, _, e) = net
        .events
        .iter()
        .find(|(_, m, e)| *m == 0 && matches!(e, Event::Ready { .. }))
        .unwrap();
    let Event::Ready { remote, .. } = e else {
        unreachable!()
    };
    assert_eq!(*remote, V4.parse().unwrap());
    let trace = net.machines[0]
        .connection_info(c)
        .map(|c| c.trace())
        .unwrap();
    let kinds: Vec<TraceKind> = trace.events.iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&TraceKind::AttemptTransportUp { attempt: 1 }));
    assert!(kinds.contains(&TraceKind::AttemptCancelled { attempt: 1 }));
    assert!(kinds.contains(&TraceKind::Winner { attempt: 2 }));
}

#[test]
fn tcp_up_late_extends_the_attempt_timer_to_cover_tls() {
    // HEv3 §6.1: "the timer SHOULD be extended to a new value that represents
    // an estimated time for the full connection establishment". TCP takes
    // 200 ms, so the next attempt waits until 200 + 200 = 400 ms, not 250.
    let ca = TestCa::new();
    let (mut net, _) = setup(&ca, &["example.com"], None);
    net.delay = Duration::from_millis(100);
    net.behaviour
        .insert(V6.parse().unwrap(), Behaviour::StallAfterTcp);
    net.machines[0]
        .initiate(ms(0), &pre(client_security(&ca), None))
        .unwrap();
    net.run_for(Duration::from_secs(2));
    let starts: Vec<Instant> = net.opened.iter().map(|o| o.0).collect();
    assert_eq!(starts, [ms(0), ms(400)]);
}

#[test]
fn message_properties_priority_lifetime_and_final() {
    let framer = FramerFactory::length_prefixed(1 << 16);
    let mut net = Net::new(vec![machine(1), machine(2)], Duration::from_millis(10));
    net.machines[1]
        .listen(ListenerConfig::on(vec![V4.parse().unwrap()]).with_framer(framer.clone()))
        .unwrap();
    net.drain();
    let mut p = Preconnection::new("192.0.2.10:443".parse().unwrap());
    p.framer = Some(framer);
    let c = net.machines[0].initiate(ms(0), &p).unwrap();
    // Queued before Ready: priority orders them (RFC 9622 §9.1.3.2); the
    // 1 ms lifetime lapses before the 20 ms handshake (§9.1.3.1).
    let m = &mut net.machines[0];
    let low = m
        .connection(c)
        .send(ms(0), Message::new(&b"low"[..]).priority(200))
        .unwrap();
    let gone = m
        .connection(c)
        .send(
            ms(0),
            Message::new(&b"stale"[..]).lifetime(Duration::from_millis(1)),
        )
        .unwrap();
    let high = m
        .connection(c)
        .send(ms(0), Message::new(&b"high"[..]).priority(1))
        .unwrap();
    let last = m
        .connection(c)
        .send(
            ms(0),
            Message::new(&b"bye"[..]).priority(300).final_message(),
        )
        .unwrap();
    assert_eq!(
        m.connection(c).send(ms(0), Message::new(&b"late"[..])),
        Err(SendError::NotOpen),
        "nothing after final"
    );
    net.run_for(Duration::from_millis(100));
    let s = server_conn(&net).unwrap();
    for _ in 0..4 {
        net.machines[1]
            .connection(s)
            .receive(net.now, 1, 100)
            .unwrap();
    }
    net.run_for(Duration::from_millis(100));
    assert_eq!(
        received(&net, 1, s),
        vec![b"high".to_vec(), b"low".to_vec(), b"bye".to_vec()]
    );
    let client_events = net.events_of(0);
    assert!(client_events.contains(&Event::Expired {
        conn: c,
        message: gone
    }));
    let sent: Vec<_> = client_events
        .iter()
        .filter_map(|e| match e {
            Event::Sent { message, .. } => Some(*message),
            _ => None,
        })
        .collect();
    assert_eq!(sent, [high, low, last], "Sent in the order they went out");
    // The final message half-closed: the server's fourth receive sees the end.
    assert!(
        net.events_of(1).contains(&Event::ReceivedPartial {
            conn: s,
            data: vec![],
            end_of_message: true
        }),
        "{:?}",
        net.events_of(1)
    );
}

#[test]
fn back_pressure_keeps_memory_flat_when_the_peer_stops_reading() {
    let framer = FramerFactory::length_prefixed(1 << 20);
    let limits = IoLimits {
        max_queued_bytes: 256 << 10,
        max_receive_buffer: 128 << 10,
        transmit_high_water: 64 << 10,
        ..IoLimits::default()
    };
    let config = |seed| Config {
        seed,
        io: limits,
        ..taps_testkit::config(0)
    };
    let mut net = Net::new(
        vec![Machine::new(config(1)), Machine::new(config(2))],
        Duration::from_millis(5),
    );
    net.machines[1]
        .listen(ListenerConfig::on(vec![V4.parse().unwrap()]).with_framer(framer.clone()))
        .unwrap();
    net.drain();
    let mut p = Preconnection::new("192.0.2.10:443".parse().unwrap());
    p.framer = Some(framer);
    let c = net.machines[0].initiate(ms(0), &p).unwrap();
    net.run_for(Duration::from_millis(50));
    // The server never calls receive. The client sends until refused.
    let mut accepted = 0;
    let mut refused = false;
    for _ in 0..1000 {
        match net.machines[0]
            .connection(c)
            .send(net.now, Message::new(vec![1u8; 16 * 1024]))
        {
            Ok(_) => accepted += 1,
            Err(SendError::BufferFull) => {
                refused = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
        net.run_for(Duration::from_millis(5));
    }
    assert!(refused, "back-pressure reached the sender");
    // Bounded: at most send queue + transmit high water + receive buffer +
    // what the pipe holds, nowhere near 1000 × 16 KiB.
    assert!(accepted * 16 < 1024, "{accepted} messages accepted");
    assert!(
        net.max_inbox <= 1 << 20,
        "the pipe held {} bytes",
        net.max_inbox
    );
    // The server starts reading: the client hears Writable and can send.
    let s = server_conn(&net).unwrap();
    for _ in 0..accepted {
        net.machines[1]
            .connection(s)
            .receive(net.now, 1, 1 << 20)
            .unwrap();
        net.run_for(Duration::from_millis(5));
    }
    net.run_for(Duration::from_millis(100));
    assert!(net.events_of(0).contains(&Event::Writable { conn: c }));
    assert_eq!(received(&net, 1, s).len(), accepted);
    assert!(
        net.machines[0]
            .connection(c)
            .send(net.now, Message::new(vec![2u8; 10]))
            .is_ok()
    );
}

#[test]
fn check_send_reports_back_pressure_without_taking_the_message() {
    // An adapter with an async `send` must wait when the queue is full and
    // keep the message meanwhile: `check_send` says BufferFull without
    // consuming anything, and the Writable that follows says when to retry.
    let framer = FramerFactory::length_prefixed(1 << 20);
    let limits = IoLimits {
        max_queued_bytes: 256 << 10,
        max_receive_buffer: 128 << 10,
        transmit_high_water: 64 << 10,
        ..IoLimits::default()
    };
    let config = |seed| Config {
        seed,
        io: limits,
        ..taps_testkit::config(0)
    };
    let mut net = Net::new(
        vec![Machine::new(config(1)), Machine::new(config(2))],
        Duration::from_millis(5),
    );
    net.machines[1]
        .listen(ListenerConfig::on(vec![V4.parse().unwrap()]).with_framer(framer.clone()))
        .unwrap();
    net.drain();
    let mut p = Preconnection::new("192.0.2.10:443".parse().unwrap());
    p.framer = Some(framer);
    let c = net.machines[0].initiate(ms(0), &p).unwrap();
    net.run_for(Duration::from_millis(50));
    let size = 16 * 1024;
    let mut accepted = 0;
    loop {
        match net.machines[0].connection(c).check_send(size) {
            Ok(()) => {
                net.machines[0]
                    .connection(c)
                    .send(net.now, Message::new(vec![1u8; size]))
                    .expect("check_send said it fits");
                accepted += 1;
            }
            Err(SendError::BufferFull) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(accepted < 1000, "back-pressure never came");
        net.run_for(Duration::from_millis(5));
    }
    // Asking again changes nothing and is not an error of its own.
    assert_eq!(
        net.machines[0].connection(c).check_send(size),
        Err(SendError::BufferFull)
    );
    let s = server_conn(&net).unwrap();
    for _ in 0..accepted {
        net.machines[1]
            .connection(s)
            .receive(net.now, 1, 1 << 20)
            .unwrap();
        net.run_for(Duration::from_millis(5));
    }
    net.run_for(Duration::from_millis(100));
    // The refusal by check_send alone armed Writable.
    assert!(net.events_of(0).contains(&Event::Writable { conn: c }));
    assert_eq!(net.machines[0].connection(c).check_send(size), Ok(()));
    assert_eq!(received(&net, 1, s).len(), accepted);
    // Unknown and closed connections are refused as send refuses them.
    net.machines[0].connection(c).close(net.now);
    assert_eq!(
        net.machines[0].connection(c).check_send(1),
        Err(SendError::NotOpen)
    );
}

#[test]
fn close_and_abort_on_both_sides() {
    let ca = TestCa::new();
    let (mut net, _) = setup(&ca, &["example.com"], None);
    // Client closes: close_notify + FIN; the server sees the end of the
    // stream, closes too; both get Closed.
    let c = net.machines[0]
        .initiate(ms(0), &pre(client_security(&ca), None))
        .unwrap();
    net.run_for(Duration::from_millis(200));
    let s = server_conn(&net).unwrap();
    net.machines[0].connection(c).close(net.now);
    net.machines[1]
        .connection(s)
        .receive(net.now, 1, 100)
        .unwrap();
    net.run_for(Duration::from_millis(100));
    assert!(net.events_of(1).contains(&Event::ReceivedPartial {
        conn: s,
        data: vec![],
        end_of_message: true
    }));
    net.machines[1].connection(s).close(net.now);
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.events_of(0).last(), Some(&Event::Closed { conn: c }));
    assert_eq!(net.events_of(1).last(), Some(&Event::Closed { conn: s }));

    // Server aborts: RST; the client gets ConnectionError(reset), the server
    // ConnectionError("local abort").
    let c = net.machines[0]
        .initiate(net.now, &pre(client_security(&ca), None))
        .unwrap();
    net.run_for(Duration::from_millis(200));
    let s = last_server_conn(&net);
    net.machines[1].connection(s).abort(net.now);
    net.run_for(Duration::from_millis(100));
    assert_eq!(
        net.events_of(1).last(),
        Some(&Event::ConnectionError {
            conn: s,
            reason: FailureReason::LocalAbort
        })
    );
    assert_eq!(
        net.events_of(0).last(),
        Some(&Event::ConnectionError {
            conn: c,
            reason: FailureReason::Reset
        })
    );
    assert_eq!(net.resets, 1);
    assert_eq!(
        FailureReason::LocalAbort.to_string(),
        "local abort",
        "the reason reads as plain words"
    );
}

#[test]
fn listener_limit_stop_and_hostile_clients() {
    let ca = TestCa::new();
    let (mut net, listener) = setup(&ca, &["example.com"], None);
    net.machines[1]
        .listener(listener)
        .set_new_connection_limit(Some(2));
    // A client that speaks plain TCP garbage to the TLS listener.
    let plain = Preconnection::new("192.0.2.10:443".parse().unwrap());
    let (g, _) = net.machines[0]
        .initiate_with_send(ms(0), &plain, Message::new(&b"\x16\x03\x01garbage!"[..]))
        .unwrap();
    net.run_for(Duration::from_millis(200));
    assert!(ready(&net, 0, g), "TCP itself connected");
    assert_eq!(
        net.machines[1].stats().failed_handshakes,
        1,
        "the listener dropped the garbage"
    );
    // Two good clients are served, a third is refused by the limit.
    let mut ok = 0;
    for _ in 0..3 {
        let c = net.machines[0]
            .initiate(net.now, &pre(client_security(&ca), None))
            .unwrap();
        net.run_for(Duration::from_millis(500));
        ok += usize::from(ready(&net, 0, c));
    }
    assert_eq!(ok, 1, "the garbage connection used one of the two");
    assert!(net.machines[1].stats().accepts_refused >= 1);
    net.machines[1].listener(listener).stop();
    net.drain();
    assert_eq!(net.events_of(1).last(), Some(&Event::Stopped { listener }));
}

#[test]
fn mutual_tls_with_a_client_certificate() {
    // RFC 9622 §6.3.1: a client identity; the listener requires one.
    let ca = TestCa::new();
    let mut net = Net::new(vec![machine(1), machine(2)], Duration::from_millis(10));
    let mut server = SecurityParameters::server(ca.leaf(&["example.com"]));
    server.trusted_roots = vec![ca.root()];
    server.require_client_certificate = true;
    net.machines[1]
        .listen(ListenerConfig::on(vec![V4.parse().unwrap()]).with_security(server))
        .unwrap();
    net.drain();
    // Without a certificate the server refuses the handshake.
    let anonymous = net.machines[0]
        .initiate(ms(0), &pre(client_security(&ca), None))
        .unwrap();
    net.run_for(Duration::from_secs(1));
    // (TLS 1.3 clients finish first, so the refusal shows on the server.)
    let _ = anonymous;
    assert_eq!(server_conn(&net), None);
    assert_eq!(net.machines[1].stats().failed_handshakes, 1);
    // With one it is served.
    let mut with_cert = client_security(&ca);
    with_cert.client_identity = Some(std::sync::Arc::new(ca.leaf(&["client.example"])));
    let c = net.machines[0]
        .initiate(net.now, &pre(with_cert, None))
        .unwrap();
    net.run_for(Duration::from_secs(1));
    assert!(ready(&net, 0, c));
    assert!(server_conn(&net).is_some());
}

#[test]
fn one_ticket_is_never_used_by_two_attempts() {
    // RFC 8446 §C.4: tickets are single-use; rustls hands each out once, so
    // with two tickets in store only two of three racing attempts can send
    // early data.
    let ca = TestCa::new();
    let hosts = "192.0.2.10 example.com\n192.0.2.11 example.com\n192.0.2.12 example.com\n";
    let client = Machine::new(Config {
        seed: 1,
        hosts: parse_hosts(hosts),
        ..taps_testkit::config(0)
    });
    let mut net = Net::new(vec![client, machine(2)], Duration::from_millis(10));
    let addrs: Vec<std::net::SocketAddr> = ["192.0.2.10:443", "192.0.2.11:443", "192.0.2.12:443"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    net.machines[1]
        .listen(
            ListenerConfig::on(addrs.clone())
                .with_security(SecurityParameters::server(ca.leaf(&["example.com"]))),
        )
        .unwrap();
    net.drain();
    let p = pre(SecurityParameters::with_roots(vec![ca.root()]), None);
    let first = net.machines[0].initiate(ms(0), &p).unwrap();
    net.run_for(Duration::from_millis(300));
    assert!(ready(&net, 0, first));
    net.machines[0].connection(first).close(net.now);
    net.run_for(Duration::from_secs(3));

    net.behaviour.insert(addrs[0], Behaviour::StallAfterTcp);
    net.behaviour.insert(addrs[1], Behaviour::StallAfterTcp);
    let (c, _) = net.machines[0]
        .initiate_with_send(
            net.now,
            &p,
            Message::new(vec![b'x'; 100]).safely_replayable(),
        )
        .unwrap();
    net.run_for(Duration::from_secs(2));
    assert!(ready(&net, 0, c));
    assert_eq!(
        net.opened.iter().filter(|o| o.2.port() == 443).count(),
        4,
        "first connection + three attempts"
    );
    assert_eq!(net.machines[0].stats().early_data_attempts, 2);
}

#[test]
fn a_first_message_larger_than_early_data_arrives_whole_once() {
    // RFC 9623 §4.3: what an attempt sent early counts; the winner sends the
    // rest (the server allows 16 KiB of early data; this message is 40 KiB).
    let ca = TestCa::new();
    let framer = FramerFactory::length_prefixed(1 << 20);
    let (mut net, _) = setup(&ca, &["example.com"], Some(framer.clone()));
    let p = pre(client_security(&ca), Some(framer));
    let first = net.machines[0].initiate(ms(0), &p).unwrap();
    net.run_for(Duration::from_millis(300));
    net.machines[0].connection(first).close(net.now);
    net.run_for(Duration::from_secs(3));
    let big: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let (c, _) = net.machines[0]
        .initiate_with_send(net.now, &p, Message::new(big.clone()).safely_replayable())
        .unwrap();
    net.run_for(Duration::from_millis(500));
    assert!(ready(&net, 0, c));
    assert!(
        net.machines[0]
            .connection_info(c)
            .is_some_and(|c| c.resumed())
    );
    let s = last_server_conn(&net);
    net.machines[1]
        .connection(s)
        .receive(net.now, 1, 1 << 20)
        .unwrap();
    net.machines[1]
        .connection(s)
        .receive(net.now, 1, 1 << 20)
        .unwrap();
    net.run_for(Duration::from_millis(200));
    assert_eq!(received(&net, 1, s), vec![big]);
}

#[test]
fn deterministic_tls_replays_byte_for_byte() {
    // ARCHITECTURE.md, core contract rule 1: same inputs and seed give the
    // same outputs. With the simulator's TLS environment (seeded randomness,
    // fixed clock, Ed25519 certificates) even the TLS bytes repeat.
    fn run(seeded: bool) -> (Vec<u8>, u64) {
        let ca = TestCa::deterministic(7);
        let config = |seed| Config {
            seed,
            hosts: parse_hosts("192.0.2.10 example.com\n"),
            tls: Some(if seeded {
                taps_testkit::tls::seeded(seed, 1_780_000_000)
            } else {
                taps_testkit::tls::wall_clock()
            }),
            ..taps_testkit::config(0)
        };
        let mut net = Net::new(
            vec![Machine::new(config(1)), Machine::new(config(2))],
            Duration::from_millis(10),
        );
        let server = SecurityParameters::server(ca.leaf(&["example.com"]));
        net.machines[1]
            .listen(ListenerConfig::on(vec![V4.parse().unwrap()]).with_security(server))
            .unwrap();
        net.drain();
        let c = net.machines[0]
            .initiate(
                ms(0),
                &pre(SecurityParameters::with_roots(vec![ca.root()]), None),
            )
            .unwrap();
        net.run_for(Duration::from_secs(1));
        assert!(ready(&net, 0, c), "{:?}", net.events_of(0));
        (format!("{:?}", net.events).into_bytes(), net.wire_hash)
    }
    let (events_a, wire_a) = run(true);
    let (events_b, wire_b) = run(true);
    assert_eq!(events_a, events_b);
    assert_eq!(wire_a, wire_b, "every TLS byte repeats");
    // The check has teeth: the system's randomness gives other bytes.
    assert_ne!(run(false).1, run(false).1);
}

#[test]
fn bytes_after_the_peers_close_notify_are_ignored_not_looped_on() {
    // Found by fuzzing: rustls reads nothing after close_notify, so feeding
    // it more bytes must not spin. RFC 8446 §6.1: data after close_notify is
    // ignored.
    let ca = TestCa::new();
    let (mut net, _) = setup(&ca, &["example.com"], None);
    let c = net.machines[0]
        .initiate(ms(0), &pre(client_security(&ca), None))
        .unwrap();
    net.run_for(Duration::from_millis(100));
    let socket = net
        .events_of(0)
        .iter()
        .find_map(|e| match e {
            Event::Ready { socket, .. } => Some(*socket),
            _ => None,
        })
        .unwrap();
    let s = server_conn(&net).unwrap();
    net.machines[1].connection(s).close(net.now);
    net.run_for(Duration::from_millis(20));
    let now = net.now;
    net.machines[0].handle(
        now,
        Input::SocketData {
            socket,
            data: &[0x17, 3, 3, 0, 1, 0],
        },
    );
    net.drain();
    assert!(
        net.machines[0]
            .connection_info(c)
            .map(|c| c.state())
            .is_some()
    );
}

#[test]
fn stop_drops_connections_still_handshaking() {
    // Found by fuzzing: RFC 9622 §7.2, after Stopped a listener delivers
    // nothing more, not even a connection accepted before Stop.
    let ca = TestCa::new();
    let (mut net, listener) = setup(&ca, &["example.com"], None);
    net.machines[0]
        .initiate(ms(0), &pre(client_security(&ca), None))
        .unwrap();
    // TCP is accepted at 10 ms (one-way delay); TLS would finish at 40 ms.
    net.run_for(Duration::from_millis(15));
    assert_eq!(
        net.machines[1].stats().live_connections,
        1,
        "one connection handshaking"
    );
    net.machines[1].listener(listener).stop();
    net.run_for(Duration::from_secs(1));
    let server_events = net.events_of(1);
    assert_eq!(server_events.last(), Some(&Event::Stopped { listener }));
    assert!(
        !server_events
            .iter()
            .any(|e| matches!(e, Event::ConnectionReceived { .. }))
    );
    assert_eq!(net.machines[1].stats().live_connections, 0);
    assert_eq!(
        net.machines[1].stats().live_sockets,
        0,
        "its socket was closed"
    );
}

#[test]
fn messages_and_stream_writes_larger_than_the_tls_buffer_arrive_whole() {
    // rustls buffers at most 64 KiB of records by default and takes only
    // part of a larger write; the stack must hand over every byte (RFC 9622
    // §9.2: a message accepted by Send is sent whole), here 300 KiB
    // messages framed and 256 KiB of stream bytes in one write.
    let ca = TestCa::new();
    let (mut net, c, s) = tls_pair(&ca, Some(FramerFactory::length_prefixed(1 << 20)));
    let big = pattern(300 * 1024);
    for _ in 0..2 {
        net.machines[0]
            .connection(c)
            .send(net.now, Message::new(big.clone()))
            .unwrap();
        net.machines[1]
            .connection(s)
            .receive(net.now, 1, 1 << 20)
            .unwrap();
    }
    net.run_for(Duration::from_secs(5));
    assert_eq!(received(&net, 1, s), vec![big.clone(), big]);

    // Stream bytes, no framer: one write as large as the transmit queue.
    let (mut net, c, s) = tls_stream(&ca);
    let data = pattern(256 * 1024);
    let n = net.machines[0].connection(c).write(&data).unwrap();
    assert_eq!(n, data.len(), "the whole write fits the transmit queue");
    net.run_for(Duration::from_secs(5));
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(k @ 1..) = net.machines[1].connection(s).read(&mut buf) {
        got.extend_from_slice(&buf[..k]);
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data, "stream bytes arrive in order and intact");
}

// --- TLS stream pass-through (`Machine::check_out_tls`) ------------------
//
// An adapter checks an established TLS stream's session out for one read or
// write, runs the crypto and the socket call itself, and checks it back in.
// RFC 9622 §9.2-§9.3: the application's bytes arrive whole and in order;
// RFC 8446 §5: the records of one session go out in the order they were
// made, whoever writes them.

/// An established TLS stream (no framer): (net, client conn, server conn).
fn tls_stream(ca: &TestCa) -> (Net, ConnectionId, ConnectionId) {
    tls_pair(ca, None)
}

/// An established TLS connection with `framer` on both ends.
fn tls_pair(ca: &TestCa, framer: Option<FramerFactory>) -> (Net, ConnectionId, ConnectionId) {
    let (mut net, _) = setup(ca, &["example.com"], framer.clone());
    let c = net.machines[0]
        .initiate(ms(0), &pre(client_security(ca), framer))
        .unwrap();
    net.run_for(Duration::from_millis(200));
    let s = server_conn(&net).expect("ConnectionReceived");
    assert!(ready(&net, 0, c));
    (net, c, s)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Writes all of `data` from machine `m`'s `conn` through checkouts whose
/// socket takes `room` bytes each time.
fn write_through_all(net: &mut Net, m: usize, conn: ConnectionId, data: &[u8], room: usize) {
    let mut sent = 0;
    while sent < data.len() {
        match net.tls_write_through(m, conn, &data[sent..], room) {
            Some(Ok(Through::Done(n))) => sent += n,
            // The machine's socket loop writes what was left meanwhile.
            Some(Ok(Through::WouldBlock)) => net.run_for(Duration::from_millis(10)),
            other => panic!("write through: {other:?}"),
        }
    }
}

/// Reads `conn` on machine `m` to the end of the stream in `buf_len`
/// reads, through checkouts when `through` (else through the machine),
/// falling back to the machine whenever a checkout is refused.
fn read_to_end(
    net: &mut Net,
    m: usize,
    conn: ConnectionId,
    buf_len: usize,
    through: bool,
) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; buf_len];
    for _ in 0..100_000 {
        if through {
            match net.tls_read_through(m, conn, &mut buf) {
                Some(Ok(Through::Done(n))) => {
                    got.extend_from_slice(&buf[..n]);
                    continue;
                }
                Some(Ok(Through::WouldBlock)) => {
                    net.run_for(Duration::from_millis(10));
                    continue;
                }
                Some(Ok(Through::Ended)) | None => {}
                Some(Err(e)) => panic!("read through: {e}"),
            }
        }
        match net.machines[m].connection(conn).read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(StreamError::WouldBlock) => net.run_for(Duration::from_millis(10)),
            Err(e) => panic!("read: {e:?}"),
        }
    }
    panic!("the stream never ended ({} bytes read)", got.len());
}

#[test]
fn tls_stream_bytes_arrive_whole_and_in_order_through_checkouts() {
    let ca = TestCa::new();
    // (bytes the socket takes per write, reader's buffer, reader checks
    // out): a full socket leaves every record to the machine's loop; a
    // small one splits records; a small read buffer leaves decrypted bytes
    // over, which go to the machine's receive buffer.
    let rows = [
        (0, 64 * 1024, true),
        (100, 64 * 1024, true),
        (5_000, 1_000, true),
        (17_000, 64 * 1024, false),
        (usize::MAX, 7, true),
        (usize::MAX, 64 * 1024, true),
    ];
    for (room, buf_len, through) in rows {
        let (mut net, c, s) = tls_stream(&ca);
        let data = pattern(if buf_len < 100 { 20_000 } else { 300_000 });
        write_through_all(&mut net, 0, c, &data, room);
        net.machines[0].connection(c).close(net.now);
        net.run_for(Duration::from_millis(50));
        let got = read_to_end(&mut net, 1, s, buf_len, through);
        assert_eq!(got.len(), data.len(), "room {room}, buffer {buf_len}");
        assert!(got == data, "room {room}, buffer {buf_len}: bytes changed");
        net.machines[1].connection(s).close(net.now);
        net.run_for(Duration::from_millis(100));
        assert_eq!(net.events_of(0).last(), Some(&Event::Closed { conn: c }));
    }
}

#[test]
fn what_reaches_a_checked_out_stack_is_held_and_applied_in_order() {
    let ca = TestCa::new();
    let (mut net, c, s) = tls_stream(&ca);
    let socket = net.machines[0]
        .connection_info(c)
        .and_then(|c| c.socket())
        .unwrap();

    // Records arriving while a write is checked out: the socket loop still
    // reads them, and they are decrypted at check-in.
    let session = net.machines[0]
        .connection(c)
        .check_out_tls(TlsCheckout::Write)
        .unwrap();
    net.machines[1].connection(s).write(b"pong").unwrap();
    net.run_for(Duration::from_millis(50));
    assert_eq!(net.unread((0, socket)), 0, "the loop read the records");
    let mut buf = [0u8; 16];
    assert_eq!(
        net.machines[0].connection(c).read(&mut buf),
        Err(StreamError::WouldBlock)
    );
    net.machines[0].handle(net.now, Input::TlsCheckIn(session));
    assert_eq!(net.machines[0].connection(c).read(&mut buf), Ok(4));
    assert_eq!(&buf[..4], b"pong");

    // A message sent while a read is checked out is encrypted at check-in:
    // nothing goes on the wire meanwhile, and never as plaintext.
    let secret = b"a secret that must never cross the wire in the clear";
    let session = net.machines[0]
        .connection(c)
        .check_out_tls(TlsCheckout::Read)
        .unwrap();
    net.machines[0]
        .connection(c)
        .send(net.now, Message::new(&secret[..]))
        .unwrap();
    assert!(net.machines[0].socket(socket).transmit_data().is_empty());
    net.machines[0].handle(net.now, Input::TlsCheckIn(session));
    let wire = net.machines[0].socket(socket).transmit_data().to_vec();
    assert!(
        !wire.is_empty(),
        "the message's record waits for the socket"
    );
    assert!(
        !wire.windows(secret.len()).any(|w| w == &secret[..]),
        "plaintext on the wire"
    );
    net.run_for(Duration::from_millis(50));
    let mut got = vec![0u8; 100];
    let n = net.machines[1].connection(s).read(&mut got).unwrap();
    assert_eq!(&got[..n], &secret[..]);
}

#[test]
fn a_session_is_checked_out_only_when_nothing_the_machine_holds_needs_it() {
    use TlsCheckout::{Read, Write};
    let ca = TestCa::new();
    type Setup = fn(&mut Net, ConnectionId, ConnectionId);
    // (what happened, may a read check out, may a write check out)
    let rows: [(&str, Setup, bool, bool); 8] = [
        ("nothing: an idle stream", |_, _, _| {}, true, true),
        (
            "a receive request waits",
            |n, c, _| {
                n.machines[0].connection(c).receive(n.now, 1, 100).unwrap();
            },
            false,
            false,
        ),
        (
            "decrypted bytes wait in the buffer",
            |n, _, s| {
                n.machines[1].connection(s).write(b"unread").unwrap();
                n.run_for(Duration::from_millis(50));
            },
            false,
            false,
        ),
        (
            "a message is in flight",
            |n, c, _| {
                n.machines[0]
                    .connection(c)
                    .send(n.now, Message::new(&b"m"[..]))
                    .unwrap();
            },
            true,
            false,
        ),
        (
            "the write side was shut (final message)",
            |n, c, _| {
                n.machines[0]
                    .connection(c)
                    .send(n.now, Message::new(Vec::new()).final_message())
                    .unwrap();
                n.run_for(Duration::from_millis(50));
            },
            true,
            false,
        ),
        (
            "the peer sent close_notify and FIN",
            |n, _, s| {
                n.machines[1].connection(s).close(n.now);
                n.run_for(Duration::from_millis(50));
            },
            false,
            false,
        ),
        (
            "closing",
            |n, c, _| n.machines[0].connection(c).close(n.now),
            false,
            false,
        ),
        (
            "aborted",
            |n, c, _| n.machines[0].connection(c).abort(n.now),
            false,
            false,
        ),
    ];
    for (what, make, read, write) in rows {
        let (mut net, c, s) = tls_stream(&ca);
        make(&mut net, c, s);
        for (purpose, expected) in [(Read, read), (Write, write)] {
            let out = net.machines[0].connection(c).check_out_tls(purpose);
            assert_eq!(out.is_some(), expected, "{what}: {purpose:?}");
            if let Some(session) = out {
                assert!(
                    net.machines[0].connection(c).check_out_tls(Read).is_none(),
                    "{what}: one checkout at a time"
                );
                net.machines[0].handle(net.now, Input::TlsCheckIn(session));
            }
        }
    }

    // Not TLS streams: plain TCP, framed messages, a connection still
    // racing.
    let (mut net, _) = setup(&ca, &["example.com"], None);
    let plain = net.machines[0]
        .initiate(
            ms(0),
            &Preconnection::new("example.com:443".parse().unwrap()),
        )
        .unwrap();
    assert!(
        net.machines[0]
            .connection(plain)
            .check_out_tls(Read)
            .is_none(),
        "establishing"
    );
    net.run_for(Duration::from_millis(200));
    assert!(ready(&net, 0, plain));
    assert!(
        net.machines[0]
            .connection(plain)
            .check_out_tls(Read)
            .is_none(),
        "plain"
    );
    let framer = FramerFactory::length_prefixed(1 << 20);
    let (mut net, _) = setup(&ca, &["example.com"], Some(framer.clone()));
    let framed = net.machines[0]
        .initiate(ms(0), &pre(client_security(&ca), Some(framer)))
        .unwrap();
    net.run_for(Duration::from_millis(200));
    assert!(ready(&net, 0, framed));
    assert!(
        net.machines[0]
            .connection(framed)
            .check_out_tls(Write)
            .is_none(),
        "framed"
    );
}

#[test]
fn a_checked_out_read_hands_the_end_and_failures_to_the_machine() {
    let ca = TestCa::new();
    // Records that are not TLS: the connection fails with the TLS reason.
    let (mut net, c, _) = tls_stream(&ca);
    let mut session = net.machines[0]
        .connection(c)
        .check_out_tls(TlsCheckout::Read)
        .unwrap();
    let mut garbage: &[u8] = &[0x17, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5];
    let mut buf = [0u8; 64];
    assert_eq!(
        read_through(&mut session, &mut garbage, &mut buf).unwrap(),
        Through::Ended
    );
    net.machines[0].handle(net.now, Input::TlsCheckIn(session));
    net.drain();
    assert!(
        matches!(
            net.events_of(0).last(),
            Some(Event::ConnectionError { conn, reason: FailureReason::Tls(_) }) if *conn == c
        ),
        "{:?}",
        net.events_of(0).last()
    );

    // The socket's end (FIN without close_notify): the stream ends.
    let (mut net, c, _) = tls_stream(&ca);
    let mut session = net.machines[0]
        .connection(c)
        .check_out_tls(TlsCheckout::Read)
        .unwrap();
    let mut end: &[u8] = &[];
    assert_eq!(
        read_through(&mut session, &mut end, &mut buf).unwrap(),
        Through::Ended
    );
    net.machines[0].handle(net.now, Input::TlsCheckIn(session));
    assert_eq!(net.machines[0].connection(c).read(&mut buf), Ok(0));

    // The connection went while the session was out: its check-in is a
    // stale input, and nothing else is disturbed.
    let (mut net, c, s) = tls_stream(&ca);
    let session = net.machines[0]
        .connection(c)
        .check_out_tls(TlsCheckout::Write)
        .unwrap();
    net.machines[0].connection(c).abort(net.now);
    net.machines[0].handle(net.now, Input::TlsCheckIn(session));
    net.run_for(Duration::from_millis(50));
    assert_eq!(
        net.events_of(1).last(),
        Some(&Event::ConnectionError {
            conn: s,
            reason: FailureReason::Reset
        })
    );
}

#[test]
fn an_empty_first_message_does_not_ask_for_fast_open() {
    // A Fast Open socket sends its SYN with its first data (tcp(7),
    // TCP_FASTOPEN_CONNECT); with nothing to carry the connect would never
    // start. An empty stream message goes after the handshake instead.
    let mut net = Net::new(vec![machine(1), machine(2)], Duration::from_millis(10));
    net.machines[1]
        .listen(ListenerConfig::on(vec![V4.parse().unwrap()]))
        .unwrap();
    net.drain();
    let p = Preconnection::new("192.0.2.10:443".parse().unwrap());
    let (c, m) = net.machines[0]
        .initiate_with_send(ms(0), &p, Message::new(Vec::new()).safely_replayable())
        .unwrap();
    net.run_for(Duration::from_millis(100));
    assert!(ready(&net, 0, c));
    assert!(
        !net.opened[0].3,
        "OpenTcp asked for fast open with nothing to send"
    );
    assert!(
        net.events_of(0).contains(&Event::Sent {
            conn: c,
            message: m
        }),
        "{:?}",
        net.events_of(0)
    );
}
