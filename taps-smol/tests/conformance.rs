//! The adapter conformance suite (`taps-conformance`) over taps-smol: the
//! shim below is all this adapter adds.
#![allow(missing_docs, clippy::unwrap_used)]

use std::future::Future;
use std::io;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt, future, io as fio};
use taps_smol::{Config, Connection, Error, Taps};

struct Smol;

impl taps_conformance::Shim for Smol {
    fn block_on<F: Future>(f: F) -> F::Output {
        smol::block_on(f)
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) {
        smol::spawn(f).detach();
    }
    async fn sleep(duration: Duration) {
        async_io_sleep(duration).await;
    }
    fn taps(config: Config) -> Result<Taps, Error> {
        taps_smol::with_config(config)
    }
    async fn write_all(conn: &mut Connection, data: &[u8]) -> io::Result<()> {
        AsyncWriteExt::write_all(conn, data).await
    }
    async fn read_exact(conn: &mut Connection, buf: &mut [u8]) -> io::Result<()> {
        AsyncReadExt::read_exact(conn, buf).await
    }
    async fn read_to_end(conn: &mut Connection) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        AsyncReadExt::read_to_end(conn, &mut out).await?;
        Ok(out)
    }
    async fn shutdown(conn: &mut Connection) -> io::Result<()> {
        AsyncWriteExt::close(conn).await
    }
    async fn exchange(conn: Connection, data: Vec<u8>) -> io::Result<Vec<u8>> {
        let (mut r, mut w) = fio::split(conn);
        let write = async move {
            w.write_all(&data).await?;
            w.close().await
        };
        let read = async move {
            let mut back = Vec::new();
            r.read_to_end(&mut back).await.map(|_| back)
        };
        let (written, read) = future::zip(write, read).await;
        written?;
        read
    }
    async fn echo(conn: Connection) {
        let (r, mut w) = fio::split(conn);
        let _ = fio::copy(r, &mut w).await;
        let _ = w.close().await;
    }
}

async fn async_io_sleep(duration: Duration) {
    smol::Timer::after(duration).await;
}

taps_conformance::conformance_tests!(Smol);
