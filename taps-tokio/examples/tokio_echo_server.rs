//! A taps echo server on tokio: listens on both loopback families and
//! sends every byte back to whoever sent it, one task per connection.
//!
//! ```text
//! cargo run -p taps-tokio --example tokio_echo_server -- 7007
//! ```

use taps_tokio::ListenerConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Display (`{}`), not the Debug form `main` would print if it returned
    // the error: "failed to connect to localhost port 7007 after 0 ms: ...".
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args().nth(1).map_or(Ok(7007), |p| p.parse())?;
    let taps = taps_tokio::new()?;
    let mut listener = taps
        .listen(ListenerConfig::on(vec![
            ([0, 0, 0, 0, 0, 0, 0, 1], port).into(),
            ([127, 0, 0, 1], port).into(),
        ]))
        .await?;
    eprintln!("echoing on {:?}", listener.local_addrs());
    while let Some(conn) = listener.accept().await {
        let peer = conn.remote_addr();
        tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(conn);
            match tokio::io::copy(&mut r, &mut w).await {
                Ok(n) => eprintln!("{peer}: echoed {n} bytes"),
                Err(e) => eprintln!("{peer}: {e}"),
            }
            // The peer ended its side: end ours.
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut w).await;
        });
    }
    Ok(())
}
