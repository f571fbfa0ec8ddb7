//! Answers read in one wake-up are decided together (ARCHITECTURE.md "The
//! core contract"; RFC 6724 §6, HEv3 §4), over real UDP sockets and a real
//! tokio reactor.
//!
//! A and AAAA are separate DNS transactions, each with its own socket and
//! task. When both answers are already waiting, whichever task runs first
//! must not start the race on its answer alone: the driver reads the other
//! transaction's socket before it drains the machine.
#![allow(missing_docs, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use taps_core::dns::{Answer, QueryType};
use taps_testkit::dns::{build_response, parse_query};
use taps_tokio::Preconnection;

const LIMIT: Duration = Duration::from_secs(10);

/// A resolver that answers HTTPS at once and holds A and AAAA until told:
/// then it sends the AAAA answer and the A answer back to back.
fn held_resolver(
    have_both: mpsc::Sender<()>,
    go: mpsc::Receiver<()>,
    sent: mpsc::Sender<()>,
) -> SocketAddr {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let at = udp.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut a, mut aaaa) = (None, None);
        let mut buf = [0u8; 1500];
        while a.is_none() || aaaa.is_none() {
            let Ok((n, from)) = udp.recv_from(&mut buf) else {
                return;
            };
            let Ok(q) = parse_query(&buf[..n]) else {
                continue;
            };
            match q.qtype {
                QueryType::A => a = a.or(Some((q, from))),
                QueryType::Aaaa => aaaa = aaaa.or(Some((q, from))),
                _ => {
                    let none = Answer::NoData { negative_ttl: 5 };
                    let _ = udp.send_to(&build_response(&q, &none, false), from);
                }
            }
        }
        let (Some((a, a_from)), Some((aaaa, aaaa_from))) = (a, aaaa) else {
            return;
        };
        let _ = have_both.send(());
        if go.recv().is_err() {
            return;
        }
        let v6 = Answer::Addresses {
            addrs: vec![IpAddr::V6(Ipv6Addr::LOCALHOST)].into(),
            ttl: 5,
        };
        let v4 = Answer::Addresses {
            addrs: vec![IpAddr::from([127, 0, 0, 1])].into(),
            ttl: 5,
        };
        udp.send_to(&build_response(&aaaa, &v6, false), aaaa_from)
            .unwrap();
        udp.send_to(&build_response(&a, &v4, false), a_from)
            .unwrap();
        let _ = sent.send(());
    });
    at
}

#[test]
fn a_and_aaaa_answers_waiting_together_start_the_race_together() {
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = service.local_addr().unwrap().port();
    let (have_tx, have_both) = mpsc::channel();
    let (go, go_rx) = mpsc::channel();
    let (sent_tx, sent) = mpsc::channel();
    let resolver = held_resolver(have_tx, go_rx, sent_tx);

    // One thread runs every task, so while it blocks below no task can
    // read an answer: both are queued before either is seen.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut config = taps_tokio::Taps::system_config().unwrap();
        config.dns.servers = vec![resolver];
        config.hosts = Default::default();
        let taps = taps_tokio::with_config(config).unwrap();
        let pre = Preconnection::parse(&format!("pair.taps.test:{port}")).unwrap();
        let connecting = tokio::spawn(async move { pre.initiate(&taps).await });

        let deadline = Instant::now() + LIMIT;
        loop {
            match have_both.try_recv() {
                Ok(()) => break,
                Err(mpsc::TryRecvError::Empty) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(e) => panic!("the resolver never got both A and AAAA queries: {e}"),
            }
        }
        go.send(()).unwrap();
        sent.recv_timeout(LIMIT)
            .expect("the resolver sent both answers");

        let conn = tokio::time::timeout(LIMIT, connecting)
            .await
            .expect("connected within 10 s")
            .unwrap()
            .expect("connected to the IPv4 listener");
        assert_eq!(conn.remote_addr(), service.local_addr().unwrap());
        let waterfall = conn.waterfall().unwrap();
        assert!(
            waterfall.contains("race     started with 2 candidate(s)"),
            "both answers were waiting, so the race must start with both:\n{waterfall}"
        );
    });
}
