//! Scale: 10,000 concurrent connections on loopback from one `Taps`. All
//! complete, no descriptor leaks after they close, memory reported.
//!
//! The server runs in a child process (this test binary again, see
//! `scale_server_helper`): a process's descriptor limit may not be raised
//! past its hard limit without privileges a sandbox may deny, and 10,000
//! connections need 10,000 descriptors on each side.
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{open_fds, rss_kib};
use taps_tokio::Preconnection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Barrier, Semaphore};

const CONNECTIONS: usize = 10_000;
const SERVER_ENV: &str = "TAPS_SCALE_SERVER";

/// Not a test: the server, when started by the scale test (this binary
/// again, `--exact --ignored`): accepts on loopback, echoes one byte per
/// connection and closes when the client does. CI skips it by name.
#[test]
#[ignore = "entry point of the scale test's server process"]
fn scale_server_helper() {
    if std::env::var_os(SERVER_ENV).is_none() {
        return;
    }
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_reuse_address(true).unwrap();
        socket
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        socket.listen(4096).unwrap();
        socket.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(socket.into()).unwrap();
        println!("PORT {}", listener.local_addr().unwrap().port());
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut b = [0u8; 1];
                if s.read_exact(&mut b).await.is_ok() && s.write_all(&b).await.is_ok() {
                    let mut rest = Vec::new();
                    let _ = s.read_to_end(&mut rest).await;
                }
            });
        }
    });
}

#[test]
#[ignore = "needs RLIMIT_NOFILE of 10,512 (root can raise it)"]
fn ten_thousand_concurrent_connections_from_one_taps() {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    let needed = CONNECTIONS as u64 + 512;
    assert!(
        limit >= needed,
        "RLIMIT_NOFILE is {limit} and cannot be raised to the {needed} this test needs"
    );
    let mut server = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "scale_server_helper",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(SERVER_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let port: u16 = BufReader::new(server.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        // libtest may print "test scale_server_helper ... " on the same line.
        .find_map(|l| l.split("PORT ").nth(1).map(|p| p.trim().parse().unwrap()))
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(server);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let taps = taps_tokio::new().unwrap();
        let pre = Arc::new(Preconnection::parse(&format!("127.0.0.1:{port}")).unwrap());
        // One connection first, closed again: the runtime and the Taps open
        // their own descriptors (epoll, the netlink monitor, started by a
        // task), which stay; measure from after they exist.
        {
            let mut warm = taps.initiate(&pre).await.unwrap();
            warm.write_all(b"x").await.unwrap();
            let mut b = [0u8; 1];
            warm.read_exact(&mut b).await.unwrap();
            warm.close().await.unwrap();
        }
        // The warm-up socket's descriptor closes in its task, a moment after
        // the core frees it: wait until the count holds still.
        let settle = Instant::now() + Duration::from_secs(5);
        let mut steady = 0;
        let mut last = open_fds();
        while (taps.live_sockets() > 0 || steady < 5) && Instant::now() < settle {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now_fds = open_fds();
            steady = if now_fds == last { steady + 1 } else { 0 };
            last = now_fds;
        }
        let fds_before = open_fds();
        let rss_before = rss_kib();
        // Connects at most 64 at a time (a loopback SYN storm makes some kernels, gVisor among them, drop SYNs and retry after 1 s), but
        // holds every connection open until all 10,000 are up at once.
        let connecting = Arc::new(Semaphore::new(64));
        let all_up = Arc::new(Barrier::new(CONNECTIONS + 1));
        let closed = Arc::new(Barrier::new(CONNECTIONS + 1));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let (taps, pre, connecting, all_up, closed) = (
                taps.clone(),
                pre.clone(),
                connecting.clone(),
                all_up.clone(),
                closed.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let permit = connecting.acquire().await.unwrap();
                let mut conn = taps.initiate(&pre).await.unwrap();
                conn.write_all(b"x").await.unwrap();
                let mut b = [0u8; 1];
                conn.read_exact(&mut b).await.unwrap();
                assert_eq!(&b, b"x");
                drop(permit);
                all_up.wait().await;
                // Everyone waits until the count and memory were taken.
                all_up.wait().await;
                conn.close().await.unwrap();
                closed.wait().await;
            }));
        }
        all_up.wait().await;
        let up = started.elapsed();
        let live = taps.connection_count();
        let fds_peak = open_fds();
        let rss_peak = rss_kib();
        all_up.wait().await;
        closed.wait().await;
        for t in tasks {
            t.await.unwrap();
        }
        let total = started.elapsed();
        assert_eq!(live, CONNECTIONS, "all established at once");
        assert!(
            fds_peak >= fds_before + CONNECTIONS,
            "{fds_peak} descriptors at the peak"
        );
        // Closed in order: nothing of them is left in the core, the driver,
        // or the descriptor table.
        let deadline = Instant::now() + Duration::from_secs(10);
        while (taps.live_sockets() > 0 || open_fds() > fds_before) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(taps.connection_count(), 0);
        assert_eq!(taps.live_sockets(), 0);
        let fds_after = open_fds();
        assert_eq!(fds_after, fds_before, "descriptors leaked");
        let per_conn = (rss_peak.saturating_sub(rss_before) * 1024) / CONNECTIONS as u64;
        eprintln!(
            "scale: {CONNECTIONS} connections up in {up:?}, all closed after {total:?}; \
             descriptors {fds_before} -> {fds_peak} -> {fds_after}; \
             RSS {rss_before} KiB -> {rss_peak} KiB at the peak (~{per_conn} bytes per \
             connection, tasks and buffers included) -> {} KiB after",
            rss_kib()
        );
    });
}
