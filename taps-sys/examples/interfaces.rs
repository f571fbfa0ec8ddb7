//! Prints the interface list as taps sees it, primary first, and what one
//! listing costs (the work the path monitor repeats on every change), and
//! the route dump's share of it.
//!
//! ```sh
//! cargo run --release -p taps-sys --example interfaces [ROUNDS]
//! ```

use std::time::Instant;

fn main() -> std::io::Result<()> {
    let rounds: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    for interface in taps_sys::interfaces::list_interfaces()? {
        let addrs: Vec<String> = interface
            .addrs
            .iter()
            .map(|a| format!("{}/{}", a.addr, a.prefix_len))
            .collect();
        println!(
            "{:>3} {:<12} {:?} up={} {}",
            interface.index,
            interface.name,
            interface.kind,
            interface.up,
            addrs.join(" ")
        );
    }
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(taps_sys::interfaces::list_interfaces()?);
    }
    let per = start.elapsed() / rounds.max(1);
    println!("one listing: {per:?} (mean of {rounds})");
    // The part of it that reads the default routes (the primary's choice).
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(taps_sys::routes::default_routes()?);
    }
    let per = start.elapsed() / rounds.max(1);
    println!("of which the route dump: {per:?} (mean of {rounds})");
    Ok(())
}
