//! taps under hyper: requests per second through hyper-util's legacy
//! `Client` with taps' `TapsConnector` against the same client with
//! hyper-util's own `HttpConnector`, side by side in one run, against one
//! hyper server on loopback (`taps-tokio/tests/support/hyper_server.rs`,
//! the connector tests' server):
//!
//! - over NEW connections: the pool keeps nothing
//!   (`pool_max_idle_per_host(0)`), so every request connects, sends one
//!   GET, reads the response and closes (target ≥ 0.90 of `HttpConnector`);
//! - over a POOLED connection: one kept-alive HTTP/1.1 connection carries
//!   every request (target ≥ 0.98), which measures the stream path alone.
//!
//! Both connectors set `TCP_NODELAY` (taps always does; `HttpConnector`
//! is told to), and both get `http://127.0.0.1:PORT/`, so no name is
//! resolved. Requests go one at a time. Each round runs both back to back,
//! alternating which goes first, so a round's two rates saw the same load
//! (the machine is shared with other builds, and its load moves by tens of
//! percent within seconds). Printed: each round's ratio (taps /
//! HttpConnector, higher is better) as median and range, and the best
//! and median rates of each.
//! Run: `cargo bench -p taps-benches --bench hyper` (`new` or `pooled` as
//! an argument selects one). For profiling one side alone (strace, perf),
//! `TAPS_BENCH_ONLY=taps` or `=http` runs only that connector's rounds
//! (and prints no ratios).
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "../../taps-tokio/tests/support/hyper_server.rs"]
mod hyper_server;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;
use taps_tokio::Taps;
use taps_tokio::connector::TapsConnector;

use hyper_server::HyperServer;

const ROUNDS: usize = 21;
const NEW_REQUESTS: usize = 400;
const POOLED_REQUESTS: usize = 3000;

type Body = Empty<Bytes>;

fn client<C: Connect + Clone>(connector: C, pooled: bool) -> Client<C, Body> {
    let mut b = Client::builder(TokioExecutor::new());
    if !pooled {
        b.pool_max_idle_per_host(0);
    }
    b.build(connector)
}

/// The process's CPU time so far (user and system, both ends of every
/// connection), from `/proc/self/stat`, in clock ticks (USER_HZ, 100/s).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name's closing parenthesis: utime and stime are
    // the 12th and 13th fields.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    f.get(11).unwrap_or(&0) + f.get(12).unwrap_or(&0)
}

/// Requests per second: `n` GETs of `uri`, one at a time, each body read;
/// the CPU ticks they took are added to `cpu`.
async fn requests<C>(client: &Client<C, Body>, uri: &Uri, n: usize, cpu: &mut u64) -> f64
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let ticks = cpu_ticks();
    let start = Instant::now();
    let n = if skipped(client) { 0 } else { n };
    for _ in 0..n {
        let response = client.get(uri.clone()).await.unwrap();
        assert!(response.status().is_success());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"HTTP/1.1 /");
    }
    let rate = n.max(1) as f64 / start.elapsed().as_secs_f64();
    *cpu += cpu_ticks() - ticks;
    rate
}

/// Whether `TAPS_BENCH_ONLY` leaves this client's connector out.
fn skipped<C: 'static, B: 'static>(_: &Client<C, B>) -> bool {
    let taps = std::any::TypeId::of::<C>() == std::any::TypeId::of::<TapsConnector>();
    match std::env::var("TAPS_BENCH_ONLY").as_deref() {
        Ok("taps") => !taps,
        Ok("http") => taps,
        _ => false,
    }
}

fn http_connector() -> HttpConnector {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    c
}

/// One connector's rounds: requests per second in each, the CPU ticks
/// they took, and the connections the server accepted meanwhile.
#[derive(Default)]
struct Side {
    rates: Vec<f64>,
    cpu: u64,
    opened: usize,
}

impl Side {
    async fn round<C>(
        &mut self,
        client: &Client<C, Body>,
        server: &HyperServer,
        uri: &Uri,
        n: usize,
    ) where
        C: Connect + Clone + Send + Sync + 'static,
    {
        let before = server.accepted();
        self.rates
            .push(requests(client, uri, n, &mut self.cpu).await);
        self.opened += server.accepted() - before;
    }
}

/// `ROUNDS` rounds of `n` requests on each client after a warm-up, the
/// two back to back in each round, alternating which goes first.
async fn compare<T, K>(
    taps: &Taps,
    t: &Client<T, Body>,
    k: &Client<K, Body>,
    server: &HyperServer,
    n: usize,
    pooled: bool,
) -> (Side, Side)
where
    T: Connect + Clone + Send + Sync + 'static,
    K: Connect + Clone + Send + Sync + 'static,
{
    let uri: Uri = format!("http://{}/", server.addr).parse().unwrap();
    // Warm both (the first connect of a Taps reads the interfaces' state,
    // the allocator grows, a pooled client opens its connection).
    requests(t, &uri, 50, &mut 0).await;
    requests(k, &uri, 50, &mut 0).await;
    let (mut ts, mut ks) = (Side::default(), Side::default());
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            ks.round(k, server, &uri, n).await;
            ts.round(t, server, &uri, n).await;
        } else {
            ts.round(t, server, &uri, n).await;
            ks.round(k, server, &uri, n).await;
        }
        // Let dropped connections' closes finish between rounds (bounded:
        // a slow close must not hang the benchmark). A pooled client keeps
        // its connection: nothing to wait for.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pooled && taps.live_sockets() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    (ts, ks)
}

/// Prints the per-round ratios (median and range), the best and median
/// rates of each, the CPU per request and the connections opened.
fn report(what: &str, target: f64, n: usize, taps: &Side, them: &Side) {
    let every = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "    every round (requests/s): taps {}; HttpConnector {}",
        every(&taps.rates),
        every(&them.rates)
    );
    let sorted = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v
    };
    let ratios = sorted(
        &taps
            .rates
            .iter()
            .zip(&them.rates)
            .map(|(t, k)| t / k)
            .collect::<Vec<_>>(),
    );
    let (t, k) = (sorted(&taps.rates), sorted(&them.rates));
    let (last, mid) = (ratios.len() - 1, ratios.len() / 2);
    println!(
        "{what}: ratio taps/HttpConnector per round median {:.3} (range {:.3}-{:.3}; target >= {target:.2}); best taps {:.0}/s, HttpConnector {:.0}/s ({:.3}); median taps {:.0}/s, HttpConnector {:.0}/s ({:.3})",
        ratios[mid],
        ratios[0],
        ratios[last],
        t[last],
        k[last],
        t[last] / k[last],
        t[mid],
        k[mid],
        t[mid] / k[mid]
    );
    // CPU time is what the load on a shared machine disturbs least.
    let per = |ticks: u64| ticks as f64 * 10_000.0 / (n * ROUNDS) as f64;
    println!(
        "    CPU per request (both ends): taps {:.1} us, HttpConnector {:.1} us ({:.3}); connections opened: taps {}, HttpConnector {}",
        per(taps.cpu),
        per(them.cpu),
        per(taps.cpu) / per(them.cpu).max(f64::MIN_POSITIVE),
        taps.opened,
        them.opened
    );
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = HyperServer::http("127.0.0.1:0").await;
        let taps = taps_tokio::new().unwrap();
        println!(
            "taps connector vs HttpConnector under hyper-util's Client, {ROUNDS} alternating rounds"
        );
        for (name, pooled, n, target) in [
            ("new", false, NEW_REQUESTS, 0.90),
            ("pooled", true, POOLED_REQUESTS, 0.98),
        ] {
            if !wanted(name) {
                continue;
            }
            let t = client(TapsConnector::new(taps.clone()), pooled);
            let k = client(http_connector(), pooled);
            let (ts, ks) = compare(&taps, &t, &k, &server, n, pooled).await;
            let what = if pooled {
                format!("pooled connection ({n} requests one at a time)")
            } else {
                format!("new connection per request ({n} one at a time)")
            };
            report(&what, target, n, &ts, &ks);
        }
    });
}
