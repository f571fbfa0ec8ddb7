//! Only N connects, one at a time, for counting what each costs with
//! load-insensitive tools (`perf stat -e instructions`, `strace -c`); run
//! it with N and with 0 and take the difference per connect.
//!
//! `connects serve` runs the peer (reads each connection to its end, then
//! closes it) and prints its address; then
//! `connects <tokio|taps-tokio|async-io|taps-smol> <drop|await> <n> <addr>`
//! connects `n` times to it (`here` instead of the address: the peer on
//! a thread of this process, as the benches run it).
#![allow(missing_docs, clippy::unwrap_used)]

use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use async_io::Async;
use futures_lite::AsyncReadExt;

use taps_benches::closing;

fn serve() {
    let listener = closing::bind();
    println!("{}", listener.local_addr().unwrap());
    closing::run(listener);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        return serve();
    }
    let kind = args[0].as_str();
    let wait = args[1] == "await";
    let n: usize = args[2].parse().unwrap();
    // "here": the server on a thread of this process, as in the benches.
    let at: SocketAddr = if args[3] == "here" {
        closing::spawn()
    } else {
        args[3].parse().unwrap()
    };
    let start = Instant::now();
    match kind {
        "tokio" | "taps-tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if kind == "tokio" {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    for _ in 0..n {
                        let mut c = tokio::net::TcpStream::connect(at).await.unwrap();
                        c.set_nodelay(true).unwrap();
                        if wait {
                            c.shutdown().await.unwrap();
                            let mut buf = [0u8; 8];
                            while c.read(&mut buf).await.unwrap() > 0 {}
                        }
                    }
                } else {
                    let taps = taps_tokio::new().unwrap();
                    let pre = taps_tokio::Preconnection::parse(&at.to_string()).unwrap();
                    for _ in 0..n {
                        let c = taps.initiate(&pre).await.unwrap();
                        if wait {
                            c.close().await.unwrap();
                        }
                    }
                    while taps.live_sockets() > 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            });
        }
        "async-io" => smol::block_on(async {
            for _ in 0..n {
                let mut c = Async::<TcpStream>::connect(at).await.unwrap();
                c.get_ref().set_nodelay(true).unwrap();
                if wait {
                    c.get_ref().shutdown(Shutdown::Write).unwrap();
                    let mut buf = [0u8; 8];
                    while c.read(&mut buf).await.unwrap() > 0 {}
                }
            }
        }),
        "taps-smol" => smol::block_on(async {
            let taps = taps_smol::new().unwrap();
            let pre = taps_smol::Preconnection::parse(&at.to_string()).unwrap();
            for _ in 0..n {
                let c = taps.initiate(&pre).await.unwrap();
                if wait {
                    c.close().await.unwrap();
                }
            }
            while taps.live_sockets() > 0 {
                async_io::Timer::after(Duration::from_millis(1)).await;
            }
        }),
        other => panic!("unknown kind {other}"),
    }
    let d = start.elapsed();
    eprintln!(
        "{kind} {}: {n} in {d:?}, {:.0}/s",
        args[1],
        n as f64 / d.as_secs_f64()
    );
}
