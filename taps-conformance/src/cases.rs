//! The loopback cases, each generic over the adapter's [`Shim`]: real
//! sockets, real TLS (an rcgen CA), real framing.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use taps_core::{
    Config, FailureReason, ListenerConfig, Message, RemoteEndpoint, SecurityParameters,
    framer::FramerFactory,
};
use taps_io::{ConnectionEvent, Error, Preconnection};

use crate::Shim;
use crate::support::{
    PEER_TIMEOUT, TestCa, poll_once, raw_server, read_until_end, within, write_quietly,
};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn system<S: Shim>() -> taps_io::Taps {
    S::taps(taps_io::Taps::system_config().unwrap()).unwrap()
}

fn pre(at: SocketAddr) -> Preconnection {
    Preconnection::new(RemoteEndpoint::new().with_ip(at.ip()).with_port(at.port()))
}

async fn connect(taps: &taps_io::Taps, pre: &Preconnection) -> taps_io::Connection {
    pre.initiate(taps).await.unwrap()
}

/// A taps listener that echoes every stream byte back, through the
/// adapter's own stream traits.
pub(crate) async fn echo_listener<S: Shim>(
    taps: &taps_io::Taps,
    config: ListenerConfig,
) -> SocketAddr {
    let mut listener = taps.listen(config).await.unwrap();
    let at = listener.local_addrs()[0];
    S::spawn(async move {
        while let Some(conn) = listener.accept().await {
            S::spawn(S::echo(conn));
        }
    });
    at
}

/// Without a hosts file entry, `localhost` is answered by RFC 6761 §6.3
/// rules: ::1 and 127.0.0.1, IPv6 first (RFC 6724 §6, HEv3 §4).
pub fn localhost_prefers_ipv6_and_falls_back_to_ipv4<S: Shim>() {
    S::block_on(async {
        let config = Config {
            hosts: Default::default(),
            ..taps_io::Taps::system_config().unwrap()
        };
        let taps = S::taps(config).unwrap();
        for (listen, v6) in [("[::1]:0", true), ("127.0.0.1:0", false)] {
            let (tx, rx) = mpsc::channel();
            let at = raw_server(listen, move |s| {
                let _ = tx.send(s.peer_addr().unwrap());
            });
            let started = Instant::now();
            let pre = Preconnection::parse(&format!("localhost:{}", at.port())).unwrap();
            let conn = connect(&taps, &pre).await;
            assert_eq!(conn.remote_addr().is_ipv6(), v6, "{}", conn.remote_addr());
            assert_eq!(rx.recv_timeout(PEER_TIMEOUT).unwrap().is_ipv6(), v6);
            if !v6 {
                // Only 127.0.0.1 listens: ::1 is refused and IPv4 starts at
                // once (generous: far below the 250 ms Connection Attempt
                // Delay plus scheduling noise).
                assert!(started.elapsed() < Duration::from_secs(2));
                let waterfall = conn.waterfall().unwrap();
                assert!(waterfall.contains("connection refused"), "{waterfall}");
                // Named as the application asked, not by the address won.
                let named = format!("race to localhost:{} ", at.port());
                assert!(waterfall.starts_with(&named), "{waterfall}");
            }
        }
    });
}

/// Stream mode over both families: a megabyte through a taps echo server
/// and back, through the adapter's `AsyncRead`/`AsyncWrite`.
pub fn stream_mode_echoes_a_megabyte_both_ways<S: Shim>() {
    S::block_on(async {
        let taps = system::<S>();
        for local in ["127.0.0.1:0", "[::1]:0"] {
            let at = echo_listener::<S>(&taps, ListenerConfig::on(vec![addr(local)])).await;
            let conn = connect(&taps, &pre(at)).await;
            assert_eq!(conn.remote_addr(), at);
            let props = conn.properties().unwrap();
            assert!(props.reliability && props.preserve_order);
            let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
            let back = S::exchange(conn, data.clone()).await.unwrap();
            assert_eq!(back.len(), data.len());
            assert!(back == data, "echo differs");
        }
    });
}

/// TLS with a test CA and ALPN, a megabyte each way; another CA fails
/// every attempt with a reason that says so (RFC 9622 §6.3).
pub fn tls_with_a_test_ca_and_a_clear_error_for_an_unknown_one<S: Shim>() {
    S::block_on(async {
        let taps = system::<S>();
        let ca = TestCa::new("taps conformance CA");
        let config = ListenerConfig::on(vec![addr("127.0.0.1:0")])
            .with_security(SecurityParameters::server(ca.leaf(&["localhost"])).alpn(["taps-test"]));
        let at = echo_listener::<S>(&taps, config).await;
        let pre = Preconnection::parse(&format!("localhost:{}", at.port()))
            .unwrap()
            .with_security(SecurityParameters::with_roots(vec![ca.root()]).alpn(["taps-test"]));
        let mut conn = connect(&taps, &pre).await;
        assert_eq!(conn.alpn().as_deref(), Some(&b"taps-test"[..]));
        S::write_all(&mut conn, b"over TLS").await.unwrap();
        let mut buf = [0u8; 8];
        S::read_exact(&mut conn, &mut buf).await.unwrap();
        assert_eq!(&buf, b"over TLS");
        conn.close().await.unwrap();

        // A megabyte each way, stream writes mixed with a message (without
        // a framer its bytes are stream bytes): every byte comes back in
        // order, whether a read or write ran through the checked-out
        // session or through the machine (the echo reads in 8 KiB pieces,
        // smaller than a record).
        let mut conn = connect(&taps, &pre).await;
        S::write_all(&mut conn, b"head:").await.unwrap();
        conn.send(Message::new(b"message:".to_vec())).await.unwrap();
        let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 13 % 251) as u8).collect();
        let back = S::exchange(conn, data.clone()).await.unwrap();
        let expected = [&b"head:message:"[..], &data].concat();
        assert_eq!(back.len(), expected.len());
        assert!(back == expected, "TLS echo differs");

        let other = TestCa::new("another CA");
        let pre = Preconnection::parse(&format!("localhost:{}", at.port()))
            .unwrap()
            .with_security(SecurityParameters::with_roots(vec![other.root()]));
        match taps.initiate(&pre).await {
            Err(Error::Establishment(f)) => {
                let text = f.error.to_string();
                assert!(text.contains("unknown issuer"), "{text}");
                assert!(!f.trace.events.is_empty());
            }
            other => panic!("expected an establishment error, got {other:?}"),
        }
    });
}

/// Message mode (RFC 9622 §9.2, §9.3) with both framers: whole messages
/// each way, `Sent` for each in order, then `Closed` and nothing after.
pub fn message_mode_with_lines_and_length_prefixes<S: Shim>() {
    S::block_on(async {
        let taps = system::<S>();
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
            S::spawn(async move {
                let conn = listener.accept().await.unwrap();
                while let Some(m) = conn.receive().await.unwrap() {
                    assert!(m.end_of_message);
                    let mut data = m.data;
                    data.reverse();
                    conn.send(Message::new(data)).await.unwrap();
                }
                conn.close().await.unwrap();
            });
            let mut conn = connect(&taps, &pre(at).with_framer(framer)).await;
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
    });
}

/// A peer that speaks first, at once (a banner), then ends: its message
/// and its end are received (RFC 9622 §9.3), though the connection's
/// socket task waits for readability after the connect instead of trying
/// a read, and the bytes may be there before that wait begins.
pub fn a_peer_that_speaks_at_once_is_heard<S: Shim>() {
    S::block_on(async {
        let taps = system::<S>();
        let at = raw_server("127.0.0.1:0", |mut s| {
            write_quietly(&mut s, b"220 ready\n");
        });
        for _ in 0..20 {
            let pre = pre(at).with_framer(FramerFactory::lines(1024));
            let conn = connect(&taps, &pre).await;
            let banner = within::<S, _>(PEER_TIMEOUT, conn.receive())
                .await
                .expect("the banner was received")
                .unwrap()
                .unwrap();
            assert_eq!(banner.data, b"220 ready");
            let end = within::<S, _>(PEER_TIMEOUT, conn.receive()).await;
            assert!(matches!(end, Some(Ok(None))), "{end:?}");
        }
    });
}

/// RFC 9622 §7.2 `InitiateWithSend`: a safely replayable first message
/// asks for TCP Fast Open and reaches the server.
pub fn initiate_with_send_carries_the_first_message_with_fast_open<S: Shim>() {
    S::block_on(async {
        let taps = system::<S>();
        let (tx, rx) = mpsc::channel();
        let at = raw_server("127.0.0.1:0", move |mut s| {
            let mut got = vec![0u8; 5];
            s.set_read_timeout(Some(PEER_TIMEOUT)).unwrap();
            s.read_exact(&mut got).unwrap();
            s.write_all(b"world").unwrap();
            let _ = tx.send(got);
            let _ = read_until_end(&mut s);
        });
        let before = taps.stats().early_data_attempts;
        let conn = taps
            .initiate_with_send(&pre(at), Message::new(*b"hello").safely_replayable())
            .await
            .unwrap();
        let reply = conn.receive().await.unwrap().unwrap();
        assert_eq!(reply.data, b"world");
        assert_eq!(rx.recv_timeout(PEER_TIMEOUT).unwrap(), b"hello");
        assert_eq!(taps.stats().early_data_attempts, before + 1);
    });
}

/// One listener, many concurrent clients, and every socket released on
/// both sides afterwards.
pub fn a_listener_serves_many_clients_at_once<S: Shim>() {
    S::block_on(async {
        let taps = system::<S>();
        let at = echo_listener::<S>(&taps, ListenerConfig::on(vec![addr("127.0.0.1:0")])).await;
        let clients = 200;
        let (tx, rx) = mpsc::channel();
        for i in 0..clients {
            let taps = taps.clone();
            let tx = tx.clone();
            S::spawn(async move {
                let mut conn = connect(&taps, &pre(at)).await;
                let line = format!("client {i}\n");
                S::write_all(&mut conn, line.as_bytes()).await.unwrap();
                S::shutdown(&mut conn).await.unwrap();
                let back = S::read_to_end(&mut conn).await.unwrap();
                assert_eq!(back, line.as_bytes());
                conn.close().await.unwrap();
                tx.send(i).unwrap();
            });
        }
        drop(tx);
        all_clients_finish::<S>(&rx, clients, Duration::from_secs(30)).await;
        sockets_released::<S>(&taps, Duration::from_secs(5)).await;
    });
}

/// Waits until `clients` spawned clients reported on `rx`; fails when one
/// failed (its sender went without a report) or after `limit`.
async fn all_clients_finish<S: Shim>(rx: &mpsc::Receiver<u32>, clients: u32, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut done = 0;
    while done < clients {
        match rx.try_recv() {
            Ok(_) => done += 1,
            Err(mpsc::TryRecvError::Empty) => {
                assert!(Instant::now() < deadline, "only {done} clients finished");
                S::sleep(Duration::from_millis(5)).await;
            }
            Err(mpsc::TryRecvError::Disconnected) => {
                panic!("a client failed after {done} finished")
            }
        }
    }
}

/// Waits (at most `limit`) until `taps` holds no socket, and fails if one
/// is left.
async fn sockets_released<S: Shim>(taps: &taps_io::Taps, limit: Duration) {
    let deadline = Instant::now() + limit;
    while taps.live_sockets() > 0 && Instant::now() < deadline {
        S::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(taps.live_sockets(), 0, "sockets left behind");
}

/// RFC 9622 §10: `Close` sends what was queued, then FIN, and returns once
/// the peer closed too; `Abort` resets at once (the peer sees RST) and
/// ends with `ConnectionError(local abort)`.
pub fn close_waits_for_the_peer_and_abort_resets<S: Shim>() {
    S::block_on(async {
        let taps = system::<S>();
        let (tx, rx) = mpsc::channel();
        let at = raw_server("127.0.0.1:0", move |mut s| {
            s.set_read_timeout(Some(PEER_TIMEOUT)).unwrap();
            let (got, end) = read_until_end(&mut s);
            // Answer the FIN with ours (close completes only now).
            drop(s);
            let _ = tx.send((got, end.map_err(|e| e.kind())));
        });
        // Close: every byte arrives before the peer sees the end.
        let mut conn = connect(&taps, &pre(at)).await;
        let data = vec![0x5a_u8; 256 << 10];
        S::write_all(&mut conn, &data).await.unwrap();
        conn.close().await.unwrap();
        let (got, end) = rx.recv_timeout(PEER_TIMEOUT).unwrap();
        assert_eq!(end, Ok(()));
        assert_eq!(got.len(), data.len());
        assert_eq!(conn.next_event().await, Some(ConnectionEvent::Closed));
        assert_eq!(conn.next_event().await, None);
        // Writing after close is refused, not lost silently.
        assert!(S::write_all(&mut conn, b"late").await.is_err());

        // Abort: the peer sees a reset, the connection its own abort.
        let mut conn = connect(&taps, &pre(at)).await;
        S::write_all(&mut conn, b"partial").await.unwrap();
        S::sleep(Duration::from_millis(50)).await;
        conn.abort();
        let (_, end) = rx.recv_timeout(PEER_TIMEOUT).unwrap();
        assert_eq!(end, Err(ErrorKind::ConnectionReset));
        assert_eq!(
            conn.next_event().await,
            Some(ConnectionEvent::ConnectionError(FailureReason::LocalAbort))
        );
        match conn.send(Message::new(*b"x")).await {
            Err(Error::Connection(FailureReason::LocalAbort) | Error::Closed) => {}
            other => panic!("send after abort: {other:?}"),
        }
    });
}

/// The stream pass-through of plain TCP (a reader waiting on the socket
/// itself, a writer waiting for room in it) hands the socket back when
/// the application turns to `receive`, and a waiting writer does not keep
/// an aborted socket from resetting at once.
pub fn stream_waits_on_the_socket_give_way_to_receive_and_abort<S: Shim>() {
    S::block_on(async {
        let taps = system::<S>();
        let at = raw_server("127.0.0.1:0", |mut s| {
            write_quietly(&mut s, b"hello");
            std::thread::sleep(Duration::from_millis(100));
            write_quietly(&mut s, b"world");
            s.set_read_timeout(Some(PEER_TIMEOUT)).unwrap();
            let _ = read_until_end(&mut s);
        });
        let mut conn = connect(&taps, &pre(at)).await;
        let mut hello = [0u8; 5];
        S::read_exact(&mut conn, &mut hello).await.unwrap();
        assert_eq!(&hello, b"hello");
        // A read that waits for "world" on the socket, then is given up.
        let mut more = [0u8; 1];
        assert!(
            poll_once(S::read_exact(&mut conn, &mut more))
                .await
                .is_none()
        );
        let got = within::<S, _>(PEER_TIMEOUT, conn.receive())
            .await
            .expect("receive answered after the stream read gave up")
            .unwrap()
            .unwrap();
        assert_eq!(got.data, b"world");
        conn.close().await.unwrap();

        // A peer that never reads: the writer ends up waiting for room.
        let (tx, rx) = mpsc::channel();
        let at = raw_server("127.0.0.1:0", move |mut s| {
            std::thread::sleep(Duration::from_millis(200));
            s.set_read_timeout(Some(PEER_TIMEOUT)).unwrap();
            let (_, end) = read_until_end(&mut s);
            let _ = tx.send(end.map_err(|e| e.kind()));
        });
        let mut conn = connect(&taps, &pre(at)).await;
        let chunk = vec![0x33_u8; 64 << 10];
        let mut blocked = false;
        for _ in 0..4096 {
            if poll_once(S::write_all(&mut conn, &chunk)).await.is_none() {
                blocked = true;
                break;
            }
        }
        assert!(blocked, "256 MiB went into a socket nobody reads");
        conn.abort();
        // The reset arrives while the handle still exists.
        let end = rx.recv_timeout(PEER_TIMEOUT).unwrap();
        assert_eq!(end, Err(ErrorKind::ConnectionReset));
        drop(conn);
    });
}

/// A peer that resets: a clear error on that connection only.
pub fn a_vanishing_peer_is_a_clear_error_and_disturbs_nothing_else<S: Shim>() {
    S::block_on(async {
        let taps = system::<S>();
        let at = echo_listener::<S>(&taps, ListenerConfig::on(vec![addr("127.0.0.1:0")])).await;
        let mut healthy = connect(&taps, &pre(at)).await;
        let raw_at = raw_server("127.0.0.1:0", |s| {
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
            drop(s);
        });
        let mut doomed = connect(&taps, &pre(raw_at)).await;
        let mut buf = [0u8; 16];
        let err = S::read_exact(&mut doomed, &mut buf).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
        assert_eq!(
            doomed.next_event().await,
            Some(ConnectionEvent::ConnectionError(FailureReason::Reset))
        );
        S::write_all(&mut healthy, b"still here").await.unwrap();
        let mut back = [0u8; 10];
        S::read_exact(&mut healthy, &mut back).await.unwrap();
        assert_eq!(&back, b"still here");
    });
}

/// A peer that accepts TCP and never says a word of TLS: `connTimeout`
/// (RFC 9622 §8.1.3) ends the establishment with that reason.
pub fn a_stalled_tls_peer_times_out_with_the_reason<S: Shim>() {
    S::block_on(async {
        let taps = system::<S>();
        let at = raw_server("127.0.0.1:0", |mut s| {
            s.set_read_timeout(Some(PEER_TIMEOUT)).unwrap();
            let _ = read_until_end(&mut s);
        });
        let ca = TestCa::new("stall CA");
        let pre = pre(at)
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
    });
}

/// Garbage from a peer fails only the connection that got it: TLS
/// establishment, a framed connection, and a TLS listener that goes on
/// serving the next client.
pub fn garbage_fails_only_the_connection_that_got_it<S: Shim>() {
    S::block_on(async {
        let taps = system::<S>();
        let ca = TestCa::new("garbage CA");
        let at = raw_server("127.0.0.1:0", |mut s| {
            write_quietly(&mut s, b"HTTP/1.1 400 Bad Request\r\n\r\n");
        });
        let tls = pre(at).with_security(SecurityParameters::with_roots(vec![ca.root()]));
        match taps.initiate(&tls).await {
            Err(Error::Establishment(f)) => {
                assert!(f.error.to_string().contains("TLS"), "{}", f.error);
            }
            other => panic!("expected a TLS failure, got {other:?}"),
        }

        let at = raw_server("127.0.0.1:0", |mut s| {
            write_quietly(&mut s, &[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
            std::thread::sleep(Duration::from_secs(5));
        });
        let framed = pre(at).with_framer(FramerFactory::length_prefixed(1024));
        let conn = connect(&taps, &framed).await;
        match conn.receive().await {
            Err(Error::Connection(reason)) => {
                assert!(reason.to_string().contains("framing"), "{reason}")
            }
            other => panic!("expected a framing error, got {other:?}"),
        }

        let config = ListenerConfig::on(vec![addr("127.0.0.1:0")])
            .with_security(SecurityParameters::server(ca.leaf(&["localhost"])));
        let at = echo_listener::<S>(&taps, config).await;
        let mut junk = TcpStream::connect(at).unwrap();
        junk.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 9, 9, 9, 9, 9, 9, 9])
            .unwrap();
        let pre = Preconnection::parse(&format!("localhost:{}", at.port()))
            .unwrap()
            .with_security(SecurityParameters::with_roots(vec![ca.root()]));
        let mut good = connect(&taps, &pre).await;
        S::write_all(&mut good, b"ok").await.unwrap();
        let mut back = [0u8; 2];
        S::read_exact(&mut good, &mut back).await.unwrap();
        assert_eq!(&back, b"ok");
    });
}

/// Whatever /etc/hosts says localhost is, a connection to it works.
pub fn the_system_hosts_file_answers_localhost<S: Shim>() {
    S::block_on(async {
        let taps = system::<S>();
        let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = v4.local_addr().unwrap().port();
        let v6 = TcpListener::bind(("::1", port));
        std::thread::spawn(move || {
            let _keep = v6;
            let _ = v4.accept();
        });
        let pre = Preconnection::parse(&format!("localhost:{port}")).unwrap();
        let conn = connect(&taps, &pre).await;
        assert!(conn.remote_addr().ip().is_loopback());
    });
}

/// DNS over UDP, then over TCP when the answer comes back truncated (RFC
/// 1035 §4.2.1, RFC 7766 §5): a resolver on loopback sets TC on every UDP
/// answer and leaves it empty, and answers in full over TCP (2-byte length
/// prefixes, several queries on one connection allowed). The name
/// resolves, the connection is made to what the TCP answer said, and both
/// transports were asked.
pub fn a_truncated_dns_answer_is_asked_again_over_tcp<S: Shim>() {
    use std::net::{IpAddr, UdpSocket};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use taps_core::dns::{Answer, QueryType};
    use taps_testkit::dns::{build_response, parse_query};

    fn answer(qtype: QueryType) -> Answer {
        match qtype {
            QueryType::A => Answer::Addresses {
                addrs: vec![IpAddr::from([127, 0, 0, 1])].into(),
                ttl: 5,
            },
            _ => Answer::NoData { negative_ttl: 5 },
        }
    }

    S::block_on(async {
        let service = raw_server("127.0.0.1:0", |mut s| {
            write_quietly(&mut s, b"served");
        });
        // One port for both transports: the system picks a free UDP port,
        // whose TCP twin may be taken by another test's socket; try again.
        let (udp, tcp) = (0..100)
            .find_map(|_| {
                let udp = UdpSocket::bind("127.0.0.1:0").ok()?;
                let tcp = TcpListener::bind(udp.local_addr().ok()?).ok()?;
                Some((udp, tcp))
            })
            .expect("a port free for both UDP and TCP");
        let resolver = udp.local_addr().unwrap();
        let (over_udp, over_tcp) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let counted = over_udp.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                if let Ok(q) = parse_query(&buf[..n]) {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let _ = udp.send_to(&build_response(&q, &answer(q.qtype), true), from);
                }
            }
        });
        let counted = over_tcp.clone();
        std::thread::spawn(move || {
            for stream in tcp.incoming() {
                let Ok(mut s) = stream else { return };
                let counted = counted.clone();
                std::thread::spawn(move || {
                    s.set_read_timeout(Some(PEER_TIMEOUT)).unwrap();
                    let mut len = [0u8; 2];
                    while s.read_exact(&mut len).is_ok() {
                        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if s.read_exact(&mut query).is_err() {
                            return;
                        }
                        let Ok(q) = parse_query(&query) else { return };
                        counted.fetch_add(1, Ordering::SeqCst);
                        let reply = build_response(&q, &answer(q.qtype), false);
                        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&reply);
                        if s.write_all(&framed).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let mut config = taps_io::Taps::system_config().unwrap();
        config.dns.servers = vec![resolver];
        config.hosts = Default::default();
        let taps = S::taps(config).unwrap();
        let pre = Preconnection::parse(&format!("tcp.taps.test:{}", service.port())).unwrap();
        let mut conn = within::<S, _>(Duration::from_secs(10), connect(&taps, &pre))
            .await
            .expect("resolved over TCP and connected within 10 s");
        assert_eq!(conn.remote_addr(), service);
        let mut said = [0u8; 6];
        S::read_exact(&mut conn, &mut said).await.unwrap();
        assert_eq!(&said, b"served");
        assert!(over_udp.load(Ordering::SeqCst) >= 1, "asked over UDP first");
        assert!(
            over_tcp.load(Ordering::SeqCst) >= 1,
            "asked again over TCP after the truncated answer"
        );
        let trace = conn.waterfall().unwrap();
        assert!(trace.contains("127.0.0.1"), "{trace}");
    });
}

/// Many TLS connections on one `Taps`, client and server ends both: each
/// echoes its own 256 KiB through a TLS listener of the same instance, all
/// at once. Their sessions are checked out of the one machine for every
/// read and write (crypto outside its lock, in parallel); no connection's
/// bytes may reach another, be lost or be reordered, and every socket is
/// released afterwards.
pub fn many_tls_connections_on_one_taps_keep_their_bytes_apart<S: Shim>() {
    S::block_on(async {
        let taps = system::<S>();
        let ca = TestCa::new("taps conformance CA");
        let config = ListenerConfig::on(vec![addr("127.0.0.1:0")])
            .with_security(SecurityParameters::server(ca.leaf(&["localhost"])));
        let at = echo_listener::<S>(&taps, config).await;
        let pre = Preconnection::parse(&format!("localhost:{}", at.port()))
            .unwrap()
            .with_security(SecurityParameters::with_roots(vec![ca.root()]));
        let clients: u32 = 24;
        let (tx, rx) = mpsc::channel();
        for i in 0..clients {
            let (taps, pre, tx) = (taps.clone(), pre.clone(), tx.clone());
            S::spawn(async move {
                let conn = connect(&taps, &pre).await;
                let data: Vec<u8> = (0..256 * 1024u32)
                    .map(|k| (k.wrapping_mul(31).wrapping_add(i * 97) % 251) as u8)
                    .collect();
                let back = S::exchange(conn, data.clone()).await.unwrap();
                assert_eq!(back.len(), data.len(), "client {i}");
                assert!(back == data, "client {i}: bytes changed");
                tx.send(i).unwrap();
            });
        }
        drop(tx);
        all_clients_finish::<S>(&rx, clients, Duration::from_secs(60)).await;
        sockets_released::<S>(&taps, Duration::from_secs(10)).await;
    });
}

/// RFC 9622 §6.2.10 keepAlive with §8.1.4 keepAliveTimeout and §8.2's user
/// timeout reach the real socket, and the properties read back say so. The
/// socket is checked from outside too: `ss -o` shows the kernel's
/// keep-alive timer on it, armed with the timeout asked for.
pub fn keep_alive_and_user_timeout_are_on_the_socket<S: Shim>() {
    use taps_core::{SelectionProperty, TransportProperties};
    S::block_on(async {
        let (tx, rx) = mpsc::channel::<()>();
        let (client_tx, client_rx) = mpsc::channel();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(Some(rx)));
        let at = raw_server("127.0.0.1:0", move |s| {
            let _ = client_tx.send(s.peer_addr().unwrap());
            // Hold the connection until the test is done with it.
            if let Some(rx) = rx.lock().unwrap().take() {
                let _ = rx.recv_timeout(PEER_TIMEOUT);
            }
        });
        let mut properties = TransportProperties::new().require(SelectionProperty::KeepAlive);
        properties.connection.keep_alive_timeout = Some(Duration::from_secs(45));
        properties.connection.tcp_user_timeout.enabled = true;
        properties.connection.tcp_user_timeout.value = Some(Duration::from_secs(7));
        let taps = system::<S>();
        let conn = connect(&taps, &pre(at).with_properties(properties)).await;
        let e = conn.properties().expect("established");
        assert!(e.keep_alive, "{:?}", e.not_in_effect);
        assert_eq!(e.keep_alive_timeout, Some(Duration::from_secs(45)));
        assert_eq!(e.tcp_user_timeout, Some(Duration::from_secs(7)));
        assert!(e.not_in_effect.is_empty(), "{:?}", e.not_in_effect);

        // What the kernel says about the client's socket.
        let local = client_rx.recv_timeout(PEER_TIMEOUT).unwrap();
        let filter = format!("( sport = :{} and dport = :{} )", local.port(), at.port());
        match std::process::Command::new("ss")
            .args(["-tno", "state", "established", &filter])
            .output()
        {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(text.contains("timer:(keepalive,"), "ss -tno says:\n{text}");
            }
            // Without ss (iproute2) the getsockopt checks of taps-sys's
            // tests are the evidence; CI installs it.
            Ok(out) => panic!("ss failed: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                eprintln!("ss not found: the kernel's view of the socket was not checked")
            }
            Err(e) => panic!("ss: {e}"),
        }
        drop(tx);
        drop(conn);
    });
}
