//! The adapter conformance suite (`taps-conformance`) over taps-tokio: the
//! shim below is all this adapter adds.
#![allow(missing_docs, clippy::unwrap_used)]

use std::future::Future;
use std::io;
use std::time::Duration;

use taps_tokio::{Config, Connection, Error, Taps};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Tokio;

impl taps_conformance::Shim for Tokio {
    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) {
        drop(tokio::spawn(f));
    }
    async fn sleep(duration: Duration) {
        tokio::time::sleep(duration).await;
    }
    fn taps(config: Config) -> Result<Taps, Error> {
        taps_tokio::with_config(config)
    }
    async fn write_all(conn: &mut Connection, data: &[u8]) -> io::Result<()> {
        AsyncWriteExt::write_all(conn, data).await
    }
    async fn read_exact(conn: &mut Connection, buf: &mut [u8]) -> io::Result<()> {
        AsyncReadExt::read_exact(conn, buf).await.map(|_| ())
    }
    async fn read_to_end(conn: &mut Connection) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        AsyncReadExt::read_to_end(conn, &mut out).await?;
        Ok(out)
    }
    async fn shutdown(conn: &mut Connection) -> io::Result<()> {
        AsyncWriteExt::shutdown(conn).await
    }
    async fn exchange(conn: Connection, data: Vec<u8>) -> io::Result<Vec<u8>> {
        let (mut r, mut w) = tokio::io::split(conn);
        let write = async move {
            w.write_all(&data).await?;
            w.shutdown().await
        };
        let read = async move {
            let mut back = Vec::new();
            r.read_to_end(&mut back).await.map(|_| back)
        };
        let (written, read) = tokio::join!(write, read);
        written?;
        read
    }
    async fn echo(conn: Connection) {
        let (mut r, mut w) = tokio::io::split(conn);
        let _ = tokio::io::copy(&mut r, &mut w).await;
        let _ = w.shutdown().await;
    }
}

taps_conformance::conformance_tests!(Tokio);
