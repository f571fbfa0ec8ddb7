//! A taps client on smol: connects (racing every address of the name with
//! Happy Eyeballs v3), sends one line, ends its sending side, and prints
//! what comes back, then the race as a waterfall.
//!
//! ```text
//! cargo run -p taps-smol --example smol_echo_server &
//! cargo run -p taps-smol --example smol_client -- localhost:7007 "hello, taps"
//! ```

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use taps_smol::Preconnection;

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
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_else(|| "localhost:7007".into());
    let line = args.next().unwrap_or_else(|| "hello, taps".into());

    smol::block_on(async {
        let taps = taps_smol::new()?;
        let pre = Preconnection::parse(&target)?;
        let mut conn = taps.initiate(&pre).await?;
        eprintln!("connected to {} ({target})", conn.remote_addr());

        conn.write_all(format!("{line}\n").as_bytes()).await?;
        // futures_io's close ends the sending side (FIN): the echo ends too.
        AsyncWriteExt::close(&mut conn).await?;
        let mut reply = String::new();
        conn.read_to_string(&mut reply).await?;
        print!("{reply}");

        if let Some(waterfall) = conn.waterfall() {
            eprint!("{waterfall}");
        }
        conn.close().await?; // RFC 9622 Close of the whole connection
        Ok(())
    })
}
