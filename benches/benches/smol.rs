//! The adapter benchmarks, side by side in one run, each printed as a ratio
//! (higher is better):
//!
//! - stream throughput on loopback, 1 GiB in 64 KiB writes: taps-smol
//!   `Connection` on both ends against `async_io::Async<TcpStream>` on
//!   both ends (target ≥ 0.95);
//! - connection establishment rate on loopback, connect then close, one at
//!   a time, against `Async::<TcpStream>::connect` (target ≥ 0.80), with
//!   "close" both as a dropped handle (FIN, nobody waits) and as an
//!   awaited orderly close (both wait for the peer's FIN);
//! - taps-smol against taps-tokio on the same work (the same throughput
//!   and establishment runs, taps-tokio on a 2-worker tokio runtime).
//!
//! Five alternating rounds; each kind's best figure is printed, and the
//! ratios' best and median, each ratio taken within one round (what a
//! disturbance of the shared machine changes least). `TAPS_BENCH_BYTES`
//! overrides the 1 GiB. Run: `cargo bench -p taps-benches --bench smol`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::future::Future;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use taps_benches::closing;

const CHUNK: usize = 64 * 1024;
const ROUNDS: usize = 5;
const CONNECTS: usize = 1000;

fn total_bytes() -> u64 {
    std::env::var("TAPS_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30)
}

fn gib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / (1u64 << 30) as f64
}

/// Writes `total` bytes in 64 KiB writes, then ends the stream with
/// `close` (which is only a flush for a bare `Async<TcpStream>`: its
/// caller shuts it down itself).
async fn send_all<W: AsyncWrite + Unpin>(w: &mut W, total: u64) {
    let chunk = vec![0x5au8; CHUNK];
    let mut left = total;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        w.write_all(&chunk[..n]).await.unwrap();
        left -= n as u64;
    }
    w.close().await.unwrap();
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

/// Plain async-io: the time to move `total` bytes from a client to a
/// server (the server on smol's executor thread, as taps' tasks are on
/// theirs).
async fn raw_stream(total: u64) -> Duration {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    let at = listener.get_ref().local_addr().unwrap();
    let server = smol::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        drain(&mut s).await
    });
    let mut c = Async::<TcpStream>::connect(at).await.unwrap();
    c.get_ref().set_nodelay(true).unwrap();
    let start = Instant::now();
    send_all(&mut c, total).await;
    c.get_ref().shutdown(Shutdown::Write).unwrap();
    assert_eq!(server.await, total);
    start.elapsed()
}

/// taps-smol on both ends: the time to move `total` bytes.
async fn smol_stream(taps: &taps_smol::Taps, server: &taps_smol::Taps, total: u64) -> Duration {
    let config = taps_smol::ListenerConfig::on(vec!["127.0.0.1:0".parse().unwrap()]);
    let mut listener = server.listen(config).await.unwrap();
    let at = listener.local_addrs()[0];
    let server = smol::spawn(async move {
        let mut conn = listener.accept().await.unwrap();
        let n = drain(&mut conn).await;
        let _ = conn.close().await;
        n
    });
    let pre = taps_smol::Preconnection::parse(&at.to_string()).unwrap();
    let mut c = taps.initiate(&pre).await.unwrap();
    let start = Instant::now();
    send_all(&mut c, total).await;
    assert_eq!(server.await, total);
    let d = start.elapsed();
    let _ = c.close().await;
    d
}

/// taps-tokio on both ends, on a tokio runtime: the time to move `total`
/// bytes.
async fn tokio_stream(taps: &taps_tokio::Taps, server: &taps_tokio::Taps, total: u64) -> Duration {
    // taps-smol's Connection is taps-tokio's (both are taps-io's, with
    // both runtimes' traits in this build): futures_lite's extension
    // traits are in scope too, so tokio's are named.
    use tokio::io::{AsyncReadExt as TokioRead, AsyncWriteExt as TokioWrite};
    let config = taps_tokio::ListenerConfig::on(vec!["127.0.0.1:0".parse().unwrap()]);
    let mut listener = server.listen(config).await.unwrap();
    let at = listener.local_addrs()[0];
    let server = tokio::spawn(async move {
        let mut conn = listener.accept().await.unwrap();
        let mut buf = vec![0u8; CHUNK];
        let mut n = 0u64;
        loop {
            let k = TokioRead::read(&mut conn, &mut buf).await.unwrap();
            if k == 0 {
                break;
            }
            n += k as u64;
        }
        let _ = conn.close().await;
        n
    });
    let pre = taps_tokio::Preconnection::parse(&at.to_string()).unwrap();
    let mut c = taps.initiate(&pre).await.unwrap();
    let chunk = vec![0x5au8; CHUNK];
    let start = Instant::now();
    let mut left = total;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        TokioWrite::write_all(&mut c, &chunk[..n]).await.unwrap();
        left -= n as u64;
    }
    TokioWrite::shutdown(&mut c).await.unwrap();
    assert_eq!(server.await.unwrap(), total);
    let d = start.elapsed();
    let _ = c.close().await;
    d
}

#[derive(Clone, Copy, Debug)]
enum CloseHow {
    /// Drop the handle: FIN goes out, nobody waits.
    Drop,
    /// Orderly: end our side and wait for the peer's end.
    Await,
}

async fn raw_connects(at: SocketAddr, how: CloseHow) -> f64 {
    let start = Instant::now();
    for _ in 0..CONNECTS {
        let mut c = Async::<TcpStream>::connect(at).await.unwrap();
        c.get_ref().set_nodelay(true).unwrap();
        if let CloseHow::Await = how {
            c.get_ref().shutdown(Shutdown::Write).unwrap();
            let mut buf = [0u8; 8];
            while c.read(&mut buf).await.unwrap() > 0 {}
        }
    }
    CONNECTS as f64 / start.elapsed().as_secs_f64()
}

async fn smol_connects(taps: &taps_smol::Taps, at: SocketAddr, how: CloseHow) -> f64 {
    let pre = taps_smol::Preconnection::parse(&at.to_string()).unwrap();
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
        async_io::Timer::after(Duration::from_millis(5)).await;
    }
    r
}

async fn tokio_connects(taps: &taps_tokio::Taps, at: SocketAddr, how: CloseHow) -> f64 {
    let pre = taps_tokio::Preconnection::parse(&at.to_string()).unwrap();
    let start = Instant::now();
    for _ in 0..CONNECTS {
        let c = taps.initiate(&pre).await.unwrap();
        if let CloseHow::Await = how {
            c.close().await.unwrap();
        }
    }
    let r = CONNECTS as f64 / start.elapsed().as_secs_f64();
    while taps.live_sockets() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    r
}

/// Per kind, every round's figure (`ROUNDS` alternating rounds).
fn rounds<const N: usize>(mut run: impl FnMut() -> [f64; N]) -> Vec<[f64; N]> {
    (0..ROUNDS).map(|_| run()).collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Kind `i`'s best figure over the rounds, and the best and median of its
/// ratio to kind `j` measured in the same round (the ratio within a round
/// is what a disturbance of the shared machine changes least).
fn summary<const N: usize>(all: &[[f64; N]], i: usize, j: usize) -> (f64, f64, f64) {
    let ratios: Vec<f64> = all.iter().map(|r| r[i] / r[j]).collect();
    let best = ratios.iter().copied().fold(0.0, f64::max);
    let top = all.iter().map(|r| r[i]).fold(0.0, f64::max);
    (top, best, median(ratios))
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn on_tokio<F: Future>(rt: &tokio::runtime::Runtime, f: F) -> F::Output {
    rt.block_on(f)
}

/// Prints one workload's figures: each kind's best, and taps-smol's ratios
/// (best and median) to async-io and to taps-tokio.
fn report(what: &str, all: &[[f64; 3]], target: f64) {
    let (raw, _, _) = summary(all, 0, 0);
    let (smol, best_raw, median_raw) = summary(all, 1, 0);
    let (_, best_tokio, median_tokio) = summary(all, 1, 2);
    let tokio_best = all.iter().map(|r| r[2]).fold(0.0, f64::max);
    println!("{what}: best async-io {raw:.2}, taps-smol {smol:.2}, taps-tokio {tokio_best:.2}");
    println!(
        "  taps-smol / async-io: best {best_raw:.3}, median {median_raw:.3} (target >= {target:.2}); taps-smol / taps-tokio: best {best_tokio:.3}, median {median_tokio:.3}"
    );
    // The spread within each kind is what moves the ratios between runs.
    let kind = |i: usize| {
        all.iter()
            .map(|r| format!("{:.2}", r[i]))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "    every round: async-io {}; taps-smol {}; taps-tokio {}",
        kind(0),
        kind(1),
        kind(2)
    );
}

fn main() {
    // `cargo bench` passes --bench; a filter argument selects sections.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f));
    let total = total_bytes();
    let rt = tokio_rt();
    let smol_taps = smol::block_on(async { taps_smol::new().unwrap() });
    let tokio_taps = on_tokio(&rt, async { taps_tokio::new().unwrap() });

    // The server end on its own `Taps` (as a server in another process),
    // and on the client's (one instance's lock then serves both ends).
    let smol_server = smol::block_on(async { taps_smol::new().unwrap() });
    let tokio_server = on_tokio(&rt, async { taps_tokio::new().unwrap() });
    if wanted("throughput") {
        for (what, smol_end, tokio_end) in [
            ("each end its own Taps", &smol_server, &tokio_server),
            ("both ends on one Taps", &smol_taps, &tokio_taps),
        ] {
            let all = rounds(|| {
                let raw = gib_per_s(total, smol::block_on(raw_stream(total)));
                let smol = gib_per_s(
                    total,
                    smol::block_on(smol_stream(&smol_taps, smol_end, total)),
                );
                let tokio = gib_per_s(
                    total,
                    on_tokio(&rt, tokio_stream(&tokio_taps, tokio_end, total)),
                );
                [raw, smol, tokio]
            });
            report(
                &format!(
                    "throughput, {} MiB in 64 KiB writes, {what} (GiB/s)",
                    total >> 20
                ),
                &all,
                0.95,
            );
        }
    }
    if wanted("establish") {
        let at = closing::spawn();
        for how in [CloseHow::Drop, CloseHow::Await] {
            let all = rounds(|| {
                let raw = smol::block_on(raw_connects(at, how));
                let smol = smol::block_on(smol_connects(&smol_taps, at, how));
                let tokio = on_tokio(&rt, tokio_connects(&tokio_taps, at, how));
                [raw, smol, tokio]
            });
            report(
                &format!("connect + close ({how:?}), {CONNECTS} one at a time (per s)"),
                &all,
                0.80,
            );
        }
    }
}
