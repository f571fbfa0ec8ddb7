//! taps-smol under different executors: its futures only wait on wakers,
//! so they run under an executor that knows nothing of async-io; and
//! `Taps::with_executor` puts every task on the application's executor.
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use taps_smol::{Executor, ListenerConfig, Preconnection, Taps};

/// A listener and a client of `taps` exchange a line and close.
async fn round_trip(taps: &Taps) {
    let mut listener = taps
        .listen(ListenerConfig::on(vec!["127.0.0.1:0".parse().unwrap()]))
        .await
        .unwrap();
    let at = listener.local_addrs()[0];
    let client = async {
        let mut conn = taps
            .initiate(&Preconnection::parse(&at.to_string()).unwrap())
            .await
            .unwrap();
        conn.write_all(b"ping\n").await.unwrap();
        let mut back = [0u8; 5];
        conn.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"pong\n");
        conn.close().await.unwrap();
    };
    let server = async {
        let mut conn = listener.accept().await.unwrap();
        let mut got = [0u8; 5];
        conn.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping\n");
        conn.write_all(b"pong\n").await.unwrap();
        // Until the client's close reaches us: the end of its stream.
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).await.unwrap();
        conn.close().await.unwrap();
    };
    future::zip(client, server).await;
}

#[test]
fn works_under_an_executor_without_a_reactor() {
    // futures-lite's block_on only parks the thread: no async-io reactor
    // runs here, nor on the global executor's thread; async-io's own
    // thread drives it whenever no `async_io::block_on` does.
    future::block_on(async {
        let taps = taps_smol::new().unwrap();
        round_trip(&taps).await;
    });
}

#[test]
fn with_executor_runs_every_task_on_the_applications_executor() {
    let ex = Arc::new(Executor::new());
    let taps = taps_smol::with_executor(Taps::system_config().unwrap(), ex.clone()).unwrap();
    // Nothing runs the executor yet: a listener's accept task cannot
    // start, so `listen` (which returns once the socket is bound) cannot
    // get anywhere. (A connect would: `initiate` runs its attempts' socket
    // work in its own future, see taps_io::parked.)
    let stalled = future::block_on(future::or(
        async {
            let config = ListenerConfig::on(vec!["127.0.0.1:0".parse().unwrap()]);
            taps.listen(config).await.err().map(|e| e.to_string())
        },
        async {
            async_io::Timer::after(Duration::from_millis(200)).await;
            Some("still waiting".to_owned())
        },
    ));
    assert_eq!(stalled.as_deref(), Some("still waiting"));
    // Run by the application: everything works.
    async_io::block_on(ex.run(round_trip(&taps)));
}
