//! Fetches a URL with hyper-util's `Client` over taps
//! (`taps_tokio::connector::TapsConnector`): the status line and headers
//! on stdout, then the race that made the connection as a waterfall on
//! stderr. The body is not printed (`--body` prints it).
//!
//! ```text
//! python3 -m http.server 8080 &
//! cargo run -p taps-tokio --example fetch -- http://localhost:8080/
//! cargo run -p taps-tokio --example fetch -- --ca cert.pem https://localhost:8443/
//! ```

use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use taps_tokio::connector::{TapsConnector, TapsInfo};

const USAGE: &str = "usage: fetch [--ca FILE] [--body] URL";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        // Every message of the chain: hyper-util's "client error
        // (Connect)" says little, taps' text under it says what failed.
        Err(e) => {
            let mut text = e.to_string();
            let mut next = e.source();
            while let Some(e) = next {
                text.push_str(": ");
                text.push_str(&e.to_string());
                next = e.source();
            }
            eprintln!("fetch: {text}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (mut url, mut ca, mut body) = (None, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ca" => ca = Some(args.next().ok_or(USAGE)?),
            "--body" => body = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ if url.is_none() && !arg.starts_with('-') => url = Some(arg),
            _ => return Err(format!("unexpected {arg:?}\n{USAGE}").into()),
        }
    }
    let url = url.ok_or(USAGE)?.parse()?;

    let taps = taps_tokio::new()?;
    let mut connector = TapsConnector::new(taps).with_waterfall(true);
    if let Some(path) = ca {
        connector = connector.with_roots(taps_tokio::roots::read_bundle(path.as_ref())?);
    }
    let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector);
    let response = client.get(url).await?;
    println!("{:?} {}", response.version(), response.status());
    for (name, value) in response.headers() {
        println!("{name}: {}", value.to_str().unwrap_or("(not text)"));
    }
    if let Some(info) = response.extensions().get::<TapsInfo>() {
        eprintln!("connected to {}", info.remote_addr);
        if let Some(waterfall) = &info.waterfall {
            eprint!("{waterfall}");
        }
    }
    let bytes = response.into_body().collect().await?.to_bytes();
    if body {
        println!();
        print!("{}", String::from_utf8_lossy(&bytes));
    }
    Ok(())
}
