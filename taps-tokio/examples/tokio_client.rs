//! A taps client on tokio: connects (racing every address of the name with
//! Happy Eyeballs v3), sends one line, ends its sending side, and prints
//! what comes back, then the race as a waterfall.
//!
//! ```text
//! cargo run -p taps-tokio --example tokio_echo_server &
//! cargo run -p taps-tokio --example tokio_client -- localhost:7007 "hello, taps"
//! ```

use taps_tokio::Preconnection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_else(|| "localhost:7007".into());
    let line = args.next().unwrap_or_else(|| "hello, taps".into());

    let taps = taps_tokio::new()?;
    let pre = Preconnection::parse(&target)?;
    let mut conn = taps.initiate(&pre).await?;
    eprintln!("connected to {} ({target})", conn.remote_addr());

    conn.write_all(format!("{line}\n").as_bytes()).await?;
    conn.shutdown().await?; // FIN after the line: the echo ends too
    let mut reply = String::new();
    conn.read_to_string(&mut reply).await?;
    print!("{reply}");

    if let Some(waterfall) = conn.waterfall() {
        eprint!("{waterfall}");
    }
    conn.close().await?;
    Ok(())
}
