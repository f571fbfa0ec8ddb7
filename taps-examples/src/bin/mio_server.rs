//! An echo server on [`taps_examples::EventLoop`]: every connection gets
//! back what it sends, until it closes. Any number of connections at once,
//! on one thread.
//!
//! ```sh
//! mio_server [--cert FILE --key FILE] [--once] [ADDR:]PORT
//! ```
//!
//! With only a PORT it listens on `[::]` and `0.0.0.0`. `--cert`/`--key`
//! serve TLS with that PEM chain and key. `--once` exits after the first
//! connection closes. It prints where it listens, and each connection,
//! on standard error.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use taps_core::{
    ConnectionId, Event, ListenerConfig, LocalEndpoint, SecurityParameters, StreamError,
};
use taps_examples::{EventLoop, read_identity};

struct Options {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    once: bool,
    local: Vec<SocketAddr>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        cert: None,
        key: None,
        once: false,
        local: Vec::new(),
    };
    let mut it = args.iter();
    let mut target = None;
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--cert" => o.cert = Some(it.next().ok_or("--cert needs a file")?.into()),
            "--key" => o.key = Some(it.next().ok_or("--key needs a file")?.into()),
            "--once" => o.once = true,
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ if target.is_some() => return Err("expected one [ADDR:]PORT".to_owned()),
            _ => target = Some(arg.clone()),
        }
    }
    let target = target.ok_or("expected [ADDR:]PORT")?;
    o.local = match target.parse::<u16>() {
        // Both families, as the core's ListenerConfig::new does for a port.
        Ok(port) => {
            let local = LocalEndpoint::new().with_port(port);
            ListenerConfig::new(&local)
                .map_err(|e| e.to_string())?
                .local
        }
        Err(_) => vec![
            target
                .parse()
                .map_err(|_| format!("{target:?}: expected PORT or ADDR:PORT"))?,
        ],
    };
    if o.cert.is_some() != o.key.is_some() {
        return Err("--cert and --key go together".to_owned());
    }
    Ok(o)
}

/// One connection's bytes read but not yet written back (the peer reads
/// slower than it writes: `write` said WouldBlock, `Writable` resumes).
#[derive(Default)]
struct Echo {
    pending: Vec<u8>,
    /// The peer finished sending: close once `pending` is out.
    done: bool,
}

/// Reads what `conn` has and writes it back, as far as the machine takes
/// it; closes after the peer's end once everything is echoed.
fn echo(lp: &mut EventLoop, conn: ConnectionId, state: &mut Echo) {
    lp.with_machine(|m, now| {
        let mut view = m.connection(conn);
        let mut buf = [0u8; 16 * 1024];
        loop {
            while !state.pending.is_empty() {
                match view.write(&state.pending) {
                    Ok(n) => drop(state.pending.drain(..n)),
                    Err(_) => break,
                }
            }
            // Read more only when the last read is written back: the
            // machine's send buffer is the bound, not this map.
            if !state.pending.is_empty() || state.done {
                break;
            }
            match view.read(&mut buf) {
                Ok(0) => state.done = true,
                Ok(n) => state.pending.extend_from_slice(&buf[..n]),
                Err(StreamError::WouldBlock) | Err(_) => break,
            }
        }
        if state.done && state.pending.is_empty() {
            view.close(now);
        }
    });
}

fn run(o: &Options) -> Result<(), String> {
    let mut lp = EventLoop::new().map_err(|e| format!("setting up: {e}"))?;
    let mut config = ListenerConfig::on(o.local.clone());
    if let (Some(cert), Some(key)) = (&o.cert, &o.key) {
        config = config.with_security(SecurityParameters::server(read_identity(cert, key)?));
    }
    let listener = lp
        .with_machine(|m, _| m.listen(config))
        .map_err(|e| format!("listen: {e}"))?;
    // The Listen outputs were performed by the drain that with_machine ran.
    let (bound, error) = lp.listening(listener);
    if bound.is_empty() {
        return Err(format!("listen: {}", error.unwrap_or_default()));
    }
    let addrs: Vec<String> = bound.iter().map(ToString::to_string).collect();
    eprintln!("mio_server: listening on {}", addrs.join(", "));

    let mut conns: HashMap<ConnectionId, Echo> = HashMap::new();
    loop {
        while let Some(event) = lp.next_event() {
            match event {
                Event::ConnectionReceived { conn, remote, .. } => {
                    eprintln!("mio_server: connection from {remote}");
                    let mut state = Echo::default();
                    // Bytes may have come with the handshake.
                    echo(&mut lp, conn, &mut state);
                    conns.insert(conn, state);
                }
                Event::Readable { conn } | Event::Writable { conn } => {
                    if let Some(state) = conns.get_mut(&conn) {
                        echo(&mut lp, conn, state);
                    }
                }
                Event::Closed { conn } if conns.remove(&conn).is_some() => {
                    eprintln!("mio_server: connection closed");
                    if o.once {
                        return Ok(());
                    }
                }
                Event::ConnectionError { conn, reason } => {
                    conns.remove(&conn);
                    eprintln!("mio_server: connection failed: {reason}");
                    if o.once {
                        return Err("the one connection failed".to_owned());
                    }
                }
                // A client whose TLS handshake failed: say why, keep going.
                Event::HandshakeFailed { remote, reason, .. } => {
                    eprintln!("mio_server: handshake with {remote} failed: {reason}");
                }
                Event::ListenerError { reason, .. } => return Err(format!("listener: {reason}")),
                _ => {}
            }
        }
        lp.turn(None)
            .map_err(|e| format!("waiting for sockets: {e}"))?;
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "mio_server: {e}\nusage: mio_server [--cert FILE --key FILE] [--once] [ADDR:]PORT"
            );
            return ExitCode::from(2);
        }
    };
    match run(&o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mio_server: {e}");
            ExitCode::from(1)
        }
    }
}
