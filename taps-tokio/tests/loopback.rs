//! Loopback tests of the tokio adapter with real sockets, real TLS (an
//! rcgen CA) and real framing: IPv4 and IPv6 `localhost`, stream and
//! message modes, InitiateWithSend with fast open, a listener with many
//! clients, and peers that vanish, stall or send garbage.
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::TestCa;
use taps_tokio::framer::FramerFactory;
use taps_tokio::{
    ConnectionEvent, Error, ListenerConfig, Message, Preconnection, SecurityParameters, Taps,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A taps listener that echoes every stream byte back.
async fn echo_listener(taps: &Taps, config: ListenerConfig) -> SocketAddr {
    let mut listener = taps.listen(config).await.unwrap();
    let at = listener.local_addrs()[0];
    tokio::spawn(async move {
        while let Some(conn) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(conn);
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localhost_prefers_ipv6_and_falls_back_to_ipv4() {
    // Without a hosts file entry, `localhost` is answered by RFC 6761 §6.3
    // rules: ::1 and 127.0.0.1. (This machine's /etc/hosts may name only
    // 127.0.0.1, and a hosts file entry wins, as with glibc.)
    let config = taps_tokio::Config {
        hosts: Default::default(),
        ..Taps::system_config().unwrap()
    };
    let taps = Taps::with_config(config).unwrap();
    // Only ::1 listens: `localhost` wins on v6.
    let v6 = TcpListener::bind("[::1]:0").await.unwrap();
    let port6 = v6.local_addr().unwrap().port();
    let server6 = tokio::spawn(async move { v6.accept().await.unwrap().1 });
    let conn = taps
        .initiate(&Preconnection::parse(&format!("localhost:{port6}")).unwrap())
        .await
        .unwrap();
    assert!(conn.remote_addr().is_ipv6(), "{}", conn.remote_addr());
    assert!(server6.await.unwrap().is_ipv6());
    // Only 127.0.0.1 listens: ::1 is refused and IPv4 takes over at once.
    let v4 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port4 = v4.local_addr().unwrap().port();
    let server4 = tokio::spawn(async move { v4.accept().await.unwrap().1 });
    let started = Instant::now();
    let conn = taps
        .initiate(&Preconnection::parse(&format!("localhost:{port4}")).unwrap())
        .await
        .unwrap();
    assert!(conn.remote_addr().is_ipv4(), "{}", conn.remote_addr());
    assert!(server4.await.unwrap().is_ipv4());
    // Generous: a refused attempt starts the next at once, far below the
    // 250 ms Connection Attempt Delay plus scheduling noise.
    assert!(started.elapsed() < Duration::from_secs(2));
    let waterfall = conn.waterfall().unwrap();
    assert!(waterfall.contains("connection refused"), "{waterfall}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_mode_echoes_a_megabyte_both_ways() {
    let taps = Taps::new().unwrap();
    for local in ["127.0.0.1:0", "[::1]:0"] {
        let at = echo_listener(&taps, ListenerConfig::on(vec![addr(local)])).await;
        let conn = taps
            .initiate(&Preconnection::new(
                taps_tokio::RemoteEndpoint::new()
                    .with_ip(at.ip())
                    .with_port(at.port()),
            ))
            .await
            .unwrap();
        assert_eq!(conn.remote_addr(), at);
        let props = conn.properties().unwrap();
        assert!(props.reliability && props.preserve_order);
        let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
        let (mut r, mut w) = tokio::io::split(conn);
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&sent).await.unwrap();
            w.shutdown().await.unwrap();
            w
        });
        let mut back = Vec::new();
        r.read_to_end(&mut back).await.unwrap();
        let _w = writer.await.unwrap();
        assert_eq!(back.len(), data.len());
        assert!(back == data, "echo differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_test_ca_and_a_clear_error_for_an_unknown_one() {
    let taps = Taps::new().unwrap();
    let ca = TestCa::new("taps-tokio test CA");
    let config = ListenerConfig::on(vec![addr("127.0.0.1:0")])
        .with_security(SecurityParameters::server(ca.leaf(&["localhost"])).alpn(["taps-test"]));
    let at = echo_listener(&taps, config).await;
    let pre = Preconnection::parse(&format!("localhost:{}", at.port()))
        .unwrap()
        .with_security(SecurityParameters::with_roots(vec![ca.root()]).alpn(["taps-test"]));
    let mut conn = taps.initiate(&pre).await.unwrap();
    assert_eq!(conn.alpn().as_deref(), Some(&b"taps-test"[..]));
    conn.write_all(b"over TLS").await.unwrap();
    let mut buf = [0u8; 8];
    conn.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"over TLS");
    conn.close().await.unwrap();

    // Another CA: every attempt fails, and the error says why.
    let other = TestCa::new("another CA");
    let pre = Preconnection::parse(&format!("localhost:{}", at.port()))
        .unwrap()
        .with_security(SecurityParameters::with_roots(vec![other.root()]));
    match taps.initiate(&pre).await {
        Err(Error::Establishment(f)) => {
            let text = f.error.to_string();
            assert!(text.contains("issuer unknown"), "{text}");
            assert!(!f.trace.events.is_empty());
        }
        other => panic!("expected an establishment error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_mode_with_lines_and_length_prefixes() {
    let taps = Taps::new().unwrap();
    for framer in [
        FramerFactory::lines(1024),
        FramerFactory::length_prefixed(1 << 16),
    ] {
        let mut listener = taps
            .listen(ListenerConfig::on(vec![addr("[::1]:0")]).with_framer(framer.clone()))
            .await
            .unwrap();
        let at = listener.local_addrs()[0];
        // The server answers each message with its reverse.
        tokio::spawn(async move {
            let conn = listener.accept().await.unwrap();
            while let Some(m) = conn.receive().await.unwrap() {
                assert!(m.end_of_message);
                let mut data = m.data;
                data.reverse();
                conn.send(Message::new(data)).await.unwrap();
            }
            conn.close().await.unwrap();
        });
        let pre = Preconnection::parse(&at.to_string())
            .unwrap()
            .with_framer(framer);
        let mut conn = taps.initiate(&pre).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..100u32 {
            ids.push(
                conn.send(Message::new(format!("message {i}")))
                    .await
                    .unwrap(),
            );
        }
        for i in 0..100u32 {
            let m = conn.receive().await.unwrap().unwrap();
            let mut want = format!("message {i}").into_bytes();
            want.reverse();
            assert_eq!(m.data, want);
        }
        // Every message was reported Sent, in order.
        let mut sent = Vec::new();
        while sent.len() < ids.len() {
            match conn.next_event().await.unwrap() {
                ConnectionEvent::Sent(id) => sent.push(id),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(sent, ids);
        conn.close().await.unwrap();
        assert_eq!(conn.next_event().await, Some(ConnectionEvent::Closed));
        assert_eq!(conn.next_event().await, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initiate_with_send_carries_the_first_message_with_fast_open() {
    let taps = Taps::new().unwrap();
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = server.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        let (mut s, _) = server.accept().await.unwrap();
        let mut got = vec![0u8; 5];
        s.read_exact(&mut got).await.unwrap();
        s.write_all(b"world").await.unwrap();
        got
    });
    let pre = Preconnection::parse(&at.to_string()).unwrap();
    let before = taps.stats().early_data_attempts;
    let conn = taps
        .initiate_with_send(&pre, Message::new(*b"hello").safely_replayable())
        .await
        .unwrap();
    assert_eq!(accept.await.unwrap(), b"hello");
    // The attempt asked for TCP Fast Open (TCP_FASTOPEN_CONNECT) and put the
    // message in the SYN's data (the kernel sends it after the handshake
    // when it holds no cookie for the server).
    assert_eq!(taps.stats().early_data_attempts, before + 1);
    let reply = conn.receive().await.unwrap().unwrap();
    assert_eq!(reply.data, b"world");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_serves_many_clients_at_once() {
    let taps = Taps::new().unwrap();
    let at = echo_listener(&taps, ListenerConfig::on(vec![addr("127.0.0.1:0")])).await;
    let clients = 300;
    let mut tasks = Vec::new();
    for i in 0..clients {
        let taps = taps.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = taps
                .initiate(&Preconnection::parse(&at.to_string()).unwrap())
                .await
                .unwrap();
            let line = format!("client {i}\n");
            conn.write_all(line.as_bytes()).await.unwrap();
            conn.shutdown().await.unwrap();
            let mut back = String::new();
            conn.read_to_string(&mut back).await.unwrap();
            assert_eq!(back, line);
            conn.close().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Everything was released, on both sides.
    let deadline = Instant::now() + Duration::from_secs(5);
    while taps.live_sockets() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(taps.live_sockets(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanishing_peer_is_a_clear_error_and_disturbs_nothing_else() {
    let taps = Taps::new().unwrap();
    let at = echo_listener(&taps, ListenerConfig::on(vec![addr("127.0.0.1:0")])).await;
    let mut healthy = taps
        .initiate(&Preconnection::parse(&at.to_string()).unwrap())
        .await
        .unwrap();
    // A peer that accepts, then vanishes with a reset.
    let raw = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raw_at = raw.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = raw.accept().await.unwrap();
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(s);
    });
    let mut doomed = taps
        .initiate(&Preconnection::parse(&raw_at.to_string()).unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let err = doomed.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    assert_eq!(
        doomed.next_event().await,
        Some(ConnectionEvent::ConnectionError(
            taps_tokio::trace::FailureReason::Reset
        ))
    );
    // The other connection carries on.
    healthy.write_all(b"still here").await.unwrap();
    let mut back = [0u8; 10];
    healthy.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_peer_times_out_with_the_reason() {
    let taps = Taps::new().unwrap();
    // Accepts TCP, never says a word of TLS.
    let raw = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = raw.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = raw.accept().await {
            held.push(s);
        }
    });
    let ca = TestCa::new("stall CA");
    let pre = Preconnection::parse(&at.to_string())
        .unwrap()
        .with_security(SecurityParameters::with_roots(vec![ca.root()]))
        .with_timeout(Duration::from_millis(500));
    let started = Instant::now();
    match taps.initiate(&pre).await {
        Err(Error::Establishment(f)) => {
            assert!(f.error.to_string().contains("connTimeout"), "{}", f.error);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_fails_only_the_connection_that_got_it() {
    let taps = Taps::new().unwrap();
    let ca = TestCa::new("garbage CA");
    // A "TLS server" that answers with garbage.
    let raw = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = raw.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = raw.accept().await {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let pre = Preconnection::parse(&at.to_string())
        .unwrap()
        .with_security(SecurityParameters::with_roots(vec![ca.root()]));
    match taps.initiate(&pre).await {
        Err(Error::Establishment(f)) => {
            assert!(f.error.to_string().contains("TLS"), "{}", f.error);
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }

    // A framed connection whose peer sends an oversized frame: a framing
    // error on that connection only.
    let framer = FramerFactory::length_prefixed(1024);
    let raw = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = raw.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = raw.accept().await.unwrap();
        s.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let conn = taps
        .initiate(
            &Preconnection::parse(&at.to_string())
                .unwrap()
                .with_framer(framer),
        )
        .await
        .unwrap();
    match conn.receive().await {
        Err(Error::Connection(reason)) => {
            assert!(reason.to_string().contains("framing"), "{reason}")
        }
        other => panic!("expected a framing error, got {other:?}"),
    }

    // A TLS listener fed garbage by one client still serves the next.
    let config = ListenerConfig::on(vec![addr("127.0.0.1:0")])
        .with_security(SecurityParameters::server(ca.leaf(&["localhost"])));
    let at = echo_listener(&taps, config).await;
    let mut junk = tokio::net::TcpStream::connect(at).await.unwrap();
    junk.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 9, 9, 9, 9, 9, 9, 9])
        .await
        .unwrap();
    let pre = Preconnection::parse(&format!("localhost:{}", at.port()))
        .unwrap()
        .with_security(SecurityParameters::with_roots(vec![ca.root()]));
    let mut good = taps.initiate(&pre).await.unwrap();
    good.write_all(b"ok").await.unwrap();
    let mut back = [0u8; 2];
    good.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_hosts_file_answers_localhost() {
    // Whatever /etc/hosts says localhost is, a connection to it works.
    let taps = Taps::new().unwrap();
    let v4 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let v6 = TcpListener::bind(("::1", v4.local_addr().unwrap().port())).await;
    let port = v4.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _keep = v6;
        let _ = v4.accept().await;
    });
    let conn = taps
        .initiate(&Preconnection::parse(&format!("localhost:{port}")).unwrap())
        .await
        .unwrap();
    assert!(conn.remote_addr().ip().is_loopback());
}
