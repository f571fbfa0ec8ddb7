//! A taps echo server on smol: listens on both loopback families and
//! sends every byte back to whoever sent it, one task per connection.
//!
//! ```text
//! cargo run -p taps-smol --example smol_echo_server -- 7007
//! ```

use futures_lite::{AsyncWriteExt, io};
use taps_smol::ListenerConfig;

fn main() -> std::process::ExitCode {
    // Display (`{}`), not the Debug form `main` would print if it returned
    // the error: "failed to connect to localhost port 7007 after 0 ms: ...".
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args().nth(1).map_or(Ok(7007), |p| p.parse())?;
    smol::block_on(async {
        let taps = taps_smol::new()?;
        let mut listener = taps
            .listen(ListenerConfig::on(vec![
                ([0, 0, 0, 0, 0, 0, 0, 1], port).into(),
                ([127, 0, 0, 1], port).into(),
            ]))
            .await?;
        eprintln!("echoing on {:?}", listener.local_addrs());
        while let Some(conn) = listener.accept().await {
            let peer = conn.remote_addr();
            smol::spawn(async move {
                let (r, mut w) = io::split(conn);
                match io::copy(r, &mut w).await {
                    Ok(n) => eprintln!("{peer}: echoed {n} bytes"),
                    Err(e) => eprintln!("{peer}: {e}"),
                }
                // The peer ended its side: end ours.
                let _ = w.close().await;
            })
            .detach();
        }
        Ok(())
    })
}
