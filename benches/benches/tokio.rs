//! taps-tokio's benchmarks: taps-tokio against plain tokio, side by side in
//! one run, each printed as a ratio (taps / tokio for rates, so higher is
//! better; bytes for memory):
//!
//! - stream throughput on loopback, 1 GiB in 64 KiB writes, taps
//!   `Connection` on both ends against `TcpStream` on both ends (target
//!   ≥ 0.95): each end on its own `Taps` (a client and a server, as two
//!   processes would be), and both on one (one instance's lock serves
//!   both ends);
//! - TLS stream throughput, the same with TLS 1.3 on both ends, against
//!   tokio-rustls with the same rustls provider (target ≥ 0.95);
//! - connection establishment rate on loopback, connect then close, one at
//!   a time, against `TcpStream::connect` (target ≥ 0.80): "close" both as
//!   a dropped handle (FIN, nobody waits) and as an awaited orderly close
//!   (both wait for the peer's FIN);
//! - memory per idle established connection against a `TcpStream` with the
//!   same (kernel default) buffers, each measured in a fresh process.
//!
//! Throughputs are measured in 5 alternating rounds and printed as best and
//! median (loopback throughput on a shared 2-core machine varies by tens of
//! percent from run to run); rates are the best of 5.
//! `TAPS_BENCH_BYTES` overrides the 1 GiB. Run:
//! `cargo bench -p taps-benches --bench tokio`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use taps_testkit::pki::TestCa;
use taps_tokio::{Identity, ListenerConfig, Preconnection, SecurityParameters, Taps};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CHUNK: usize = 64 * 1024;
const ROUNDS: usize = 5;
const CONNECTS: usize = 1000;
const IDLE: usize = 2000;
const MEMORY_ENV: &str = "TAPS_BENCH_MEMORY";

fn total_bytes() -> u64 {
    std::env::var("TAPS_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30)
}

/// Writes `total` bytes in 64 KiB writes, then ends the stream.
async fn send_all<W: AsyncWrite + Unpin>(w: &mut W, total: u64) {
    let chunk = vec![0x5au8; CHUNK];
    let mut left = total;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        w.write_all(&chunk[..n]).await.unwrap();
        left -= n as u64;
    }
    w.shutdown().await.unwrap();
}

/// Reads to the end; the byte count.
async fn drain<R: AsyncRead + Unpin>(r: &mut R) -> u64 {
    let mut buf = vec![0u8; CHUNK];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf).await.unwrap();
        if k == 0 {
            return n;
        }
        n += k as u64;
    }
}

struct Pki {
    root: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Pki {
    fn new() -> Pki {
        let ca = TestCa::new();
        let leaf = ca.leaf(&["localhost"]);
        Pki {
            root: ca.root(),
            chain: leaf.chain,
            key: leaf.key,
        }
    }

    fn identity(&self) -> Identity {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }

    fn rustls(&self) -> (tokio_rustls::TlsConnector, tokio_rustls::TlsAcceptor) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.root.clone()).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .unwrap();
        (
            tokio_rustls::TlsConnector::from(Arc::new(client)),
            tokio_rustls::TlsAcceptor::from(Arc::new(server)),
        )
    }
}

fn rate(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / (1u64 << 30) as f64
}

/// Plain tokio: the time to move `total` bytes from a client to a server.
async fn tokio_stream(total: u64) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        drain(&mut s).await
    });
    let mut c = TcpStream::connect(at).await.unwrap();
    c.set_nodelay(true).unwrap();
    let start = Instant::now();
    send_all(&mut c, total).await;
    assert_eq!(server.await.unwrap(), total);
    start.elapsed()
}

/// taps on both ends: the time to move `total` bytes from a connection of
/// `taps` to a listener of `server` (the same instance, or another one as
/// a server in another process would have).
async fn taps_stream(taps: &Taps, server: &Taps, total: u64, tls: Option<&Pki>) -> Duration {
    let mut config = ListenerConfig::on(vec!["127.0.0.1:0".parse().unwrap()]);
    if let Some(pki) = tls {
        config = config.with_security(SecurityParameters::server(pki.identity()));
    }
    let mut listener = server.listen(config).await.unwrap();
    let at = listener.local_addrs()[0];
    let server = tokio::spawn(async move {
        let mut conn = listener.accept().await.unwrap();
        let n = drain(&mut conn).await;
        let _ = conn.close().await;
        n
    });
    let pre = match tls {
        Some(pki) => Preconnection::parse(&format!("localhost:{}", at.port()))
            .unwrap()
            .with_security(SecurityParameters::with_roots(vec![pki.root.clone()])),
        None => Preconnection::parse(&at.to_string()).unwrap(),
    };
    let mut c = taps.initiate(&pre).await.unwrap();
    let start = Instant::now();
    send_all(&mut c, total).await;
    assert_eq!(server.await.unwrap(), total);
    let d = start.elapsed();
    let _ = c.close().await;
    d
}

/// tokio-rustls on both ends: the time to move `total` bytes.
async fn rustls_stream(pki: &Pki, total: u64) -> Duration {
    let (connector, acceptor) = pki.rustls();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        let mut s = acceptor.accept(s).await.unwrap();
        drain(&mut s).await
    });
    let tcp = TcpStream::connect(at).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut c = connector.connect(name, tcp).await.unwrap();
    let start = Instant::now();
    send_all(&mut c, total).await;
    assert_eq!(server.await.unwrap(), total);
    start.elapsed()
}

/// A server that reads each connection to its end, then closes it.
async fn closing_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    at
}

#[derive(Clone, Copy)]
enum CloseHow {
    /// Drop the handle: FIN goes out, nobody waits.
    Drop,
    /// Orderly: end our side and wait for the peer's end.
    Await,
}

/// Connections per second, one at a time.
async fn tokio_connects(at: SocketAddr, how: CloseHow) -> f64 {
    let start = Instant::now();
    for _ in 0..CONNECTS {
        let mut c = TcpStream::connect(at).await.unwrap();
        c.set_nodelay(true).unwrap();
        if let CloseHow::Await = how {
            c.shutdown().await.unwrap();
            let mut buf = [0u8; 8];
            while c.read(&mut buf).await.unwrap() > 0 {}
        }
    }
    CONNECTS as f64 / start.elapsed().as_secs_f64()
}

async fn taps_connects(taps: &Taps, at: SocketAddr, how: CloseHow) -> f64 {
    let pre = Preconnection::parse(&at.to_string()).unwrap();
    let start = Instant::now();
    for _ in 0..CONNECTS {
        let c = taps.initiate(&pre).await.unwrap();
        if let CloseHow::Await = how {
            c.close().await.unwrap();
        }
    }
    let r = CONNECTS as f64 / start.elapsed().as_secs_f64();
    // Let the dropped connections' closes finish before the next round.
    while taps.live_sockets() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    r
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// In a child process: bytes of RSS per idle established client connection
/// (the server's accepted sockets are counted out by measuring them alone
/// first).
async fn memory_child(kind: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let _ = tx.send(s);
        }
    });
    let taps = taps_tokio::new().unwrap();
    let pre = Preconnection::parse(&at.to_string()).unwrap();
    // Warm up both kinds once, so one-off allocations are not counted.
    let warm = taps.initiate(&pre).await.unwrap();
    let warm_raw = TcpStream::connect(at).await.unwrap();
    let mut held_server = vec![rx.recv().await.unwrap(), rx.recv().await.unwrap()];
    let before = rss_kib();
    let mut taps_conns = Vec::new();
    let mut raw_conns = Vec::new();
    for _ in 0..IDLE {
        match kind {
            "taps" => taps_conns.push(taps.initiate(&pre).await.unwrap()),
            _ => {
                let c = TcpStream::connect(at).await.unwrap();
                c.set_nodelay(true).unwrap();
                raw_conns.push(c);
            }
        }
        held_server.push(rx.recv().await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = rss_kib();
    println!(
        "BYTES {}",
        (after.saturating_sub(before) * 1024) / IDLE as u64
    );
    drop((warm, warm_raw, taps_conns, raw_conns, held_server));
}

fn memory_per_connection(kind: &str) -> u64 {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(MEMORY_ENV, kind)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("BYTES ").and_then(|v| v.parse().ok()))
        .unwrap_or_else(|| {
            panic!(
                "memory child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// Prints best and median of both, and their ratios (target ≥ 0.95).
fn report(what: &str, other: &str, total: u64, mut taps: Vec<Duration>, mut them: Vec<Duration>) {
    taps.sort();
    them.sort();
    let (tb, kb) = (taps[0], them[0]);
    let (tm, km) = (taps[taps.len() / 2], them[them.len() / 2]);
    println!(
        "{what}: best taps {:.2} GiB/s, {other} {:.2} GiB/s, ratio {:.3}; median taps {:.2}, {other} {:.2}, ratio {:.3} (target >= 0.95)",
        rate(total, tb),
        rate(total, kb),
        kb.as_secs_f64() / tb.as_secs_f64(),
        rate(total, tm),
        rate(total, km),
        km.as_secs_f64() / tm.as_secs_f64()
    );
    let rounds = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.2}", rate(total, *d)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "    every round (GiB/s): taps {}; {other} {}",
        rounds(&taps),
        rounds(&them)
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn main() {
    if let Ok(kind) = std::env::var(MEMORY_ENV) {
        runtime().block_on(memory_child(&kind));
        return;
    }
    // `cargo bench` passes --bench; a filter argument selects sections.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let total = total_bytes();
    let rt = runtime();
    let pki = Pki::new();
    rt.block_on(async {
        let taps = taps_tokio::new().unwrap();
        println!("taps-tokio vs tokio, {ROUNDS} alternating rounds, best of each");
        // Each end its own `Taps` (as a client and a server in two
        // processes), and both ends on one (whose one lock both then take).
        let server_taps = taps_tokio::new().unwrap();
        if wanted("stream") {
            let (mut t, mut s1, mut k) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                k.push(tokio_stream(total).await);
                t.push(taps_stream(&taps, &server_taps, total, None).await);
                s1.push(taps_stream(&taps, &taps, total, None).await);
            }
            report(&format!("stream throughput ({} MiB in 64 KiB writes)", total >> 20), "tokio", total, t, k.clone());
            report("  the same, both ends on one Taps", "tokio", total, s1, k);
        }
        if wanted("tls") {
            let (mut t, mut s1, mut k) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                k.push(rustls_stream(&pki, total).await);
                t.push(taps_stream(&taps, &server_taps, total, Some(&pki)).await);
                s1.push(taps_stream(&taps, &taps, total, Some(&pki)).await);
            }
            report(&format!("TLS stream throughput ({} MiB)", total >> 20), "tokio-rustls", total, t, k.clone());
            report("  the same, both ends on one Taps", "tokio-rustls", total, s1, k);
        }
        if wanted("connect") {
            let at = closing_server().await;
            for (how, name) in [(CloseHow::Drop, "dropped"), (CloseHow::Await, "awaited close")] {
                let (mut t, mut k) = (0f64, 0f64);
                for _ in 0..ROUNDS {
                    k = k.max(tokio_connects(at, how).await);
                    t = t.max(taps_connects(&taps, at, how).await);
                }
                println!(
                    "connect + close ({name}, {CONNECTS} one at a time): taps {t:.0}/s, tokio {k:.0}/s, ratio {:.3} (target >= 0.80)",
                    t / k
                );
            }
        }
    });
    if wanted("memory") {
        let taps = memory_per_connection("taps");
        let raw = memory_per_connection("tokio");
        println!(
            "memory per idle established connection ({IDLE} held): taps {taps} B, tokio TcpStream {raw} B, ratio {:.2}",
            taps as f64 / raw.max(1) as f64
        );
    }
}
