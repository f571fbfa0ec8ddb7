//! A line client on [`taps_examples::EventLoop`]: races every address and
//! path of HOST (Happy Eyeballs v3), sends LINE and a newline, prints the
//! line the server sends back, closes, and prints the race on standard
//! error.
//!
//! ```sh
//! mio_client [--tls] [--ca FILE] [--dns ADDR:PORT] HOST:PORT [LINE]
//! ```
//!
//! `--ca FILE` trusts the PEM certificates in FILE (and implies `--tls`);
//! `--tls` alone trusts the system's roots. `--dns ADDR:PORT` asks that
//! DNS server instead of resolv.conf's (which can only name port 53).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use taps_core::{ConnectionId, Event, Preconnection, SecurityParameters, StreamError};
use taps_examples::EventLoop;

struct Options {
    tls: bool,
    ca: Option<PathBuf>,
    dns: Option<std::net::SocketAddr>,
    target: String,
    line: String,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        tls: false,
        ca: None,
        dns: None,
        target: String::new(),
        line: "hello".to_owned(),
    };
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--tls" => o.tls = true,
            "--ca" => {
                o.ca = Some(it.next().ok_or("--ca needs a file")?.into());
                o.tls = true;
            }
            "--dns" => {
                let server = it.next().ok_or("--dns needs ADDR:PORT")?;
                o.dns = Some(
                    server
                        .parse()
                        .map_err(|_| format!("--dns {server:?}: expected ADDR:PORT"))?,
                );
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => rest.push(arg.clone()),
        }
    }
    match rest.as_slice() {
        [target] => o.target = target.clone(),
        [target, line] => (o.target, o.line) = (target.clone(), line.clone()),
        _ => return Err("expected HOST:PORT [LINE]".to_owned()),
    }
    Ok(o)
}

/// Turns the loop until `conn` has an event for the application.
fn next_event(lp: &mut EventLoop, conn: ConnectionId) -> Result<Event, String> {
    loop {
        // Events of other connections (none here) would be someone else's.
        while let Some(event) = lp.next_event() {
            if event.connection() == Some(conn) {
                return Ok(event);
            }
        }
        if lp.is_idle() {
            return Err("the machine has nothing left to do".to_owned());
        }
        lp.turn(None)
            .map_err(|e| format!("waiting for sockets: {e}"))?;
    }
}

fn run(o: &Options) -> Result<(), String> {
    let setup = |e: std::io::Error| format!("setting up: {e}");
    let mut config = taps_sys::system_config().map_err(setup)?;
    if let Some(server) = o.dns {
        config.dns.servers = vec![server];
    }
    let mut lp = EventLoop::with_config(config).map_err(setup)?;
    let mut pre = Preconnection::new(o.target.parse().map_err(|e| format!("{}: {e}", o.target))?);
    if o.tls {
        let roots = match &o.ca {
            Some(path) => taps_sys::roots::read_bundle(path)?,
            None => taps_sys::roots::system_roots().map_err(|e| e.to_string())?,
        };
        pre = pre.with_security(SecurityParameters::with_roots(roots));
    }
    let conn = lp
        .with_machine(|m, now| m.initiate(now, &pre))
        .map_err(|e| e.to_string())?;
    loop {
        match next_event(&mut lp, conn)? {
            Event::Ready {
                remote, interface, ..
            } => {
                let via = interface
                    .and_then(|i| lp.machine().interfaces().iter().find(|x| x.index == i))
                    .map_or("the default path".to_owned(), |x| x.name.clone());
                eprintln!("mio_client: ready: connected to {remote} via {via}");
                break;
            }
            Event::EstablishmentError { error, .. } => {
                return Err(format!("mio_client: {error}"));
            }
            _ => {}
        }
    }

    let mut request = o.line.clone().into_bytes();
    request.push(b'\n');
    let mut written = 0;
    let mut reply = Vec::new();
    let mut buf = vec![0; 16 * 1024];
    let mut ended = false;
    // Write the line, read until the reply's newline (or the end).
    while !(reply.ends_with(b"\n") || ended) {
        lp.with_machine(|m, _| -> Result<(), String> {
            let mut view = m.connection(conn);
            while written < request.len() {
                match view.write(&request[written..]) {
                    Ok(n) => written += n,
                    Err(StreamError::WouldBlock) => break,
                    Err(e) => return Err(format!("write: {e}")),
                }
            }
            loop {
                match view.read(&mut buf) {
                    Ok(0) => {
                        ended = true;
                        return Ok(());
                    }
                    Ok(n) => reply.extend_from_slice(&buf[..n]),
                    Err(StreamError::WouldBlock) => return Ok(()),
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
        })?;
        if reply.ends_with(b"\n") || ended {
            break;
        }
        match next_event(&mut lp, conn)? {
            Event::ConnectionError { reason, .. } => return Err(format!("connection: {reason}")),
            Event::Closed { .. } => ended = true,
            // Readable, Writable: go round.
            _ => {}
        }
    }
    std::io::stdout()
        .write_all(&reply)
        .map_err(|e| format!("stdout: {e}"))?;

    let trace = lp
        .machine()
        .connection_info(conn)
        .map(|info| info.trace().to_string())
        .unwrap_or_default();
    lp.with_machine(|m, now| m.connection(conn).close(now));
    loop {
        match next_event(&mut lp, conn)? {
            Event::Closed { .. } => break,
            Event::ConnectionError { reason, .. } => return Err(format!("closing: {reason}")),
            _ => {}
        }
    }
    eprintln!("mio_client: the race:\n{trace}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "mio_client: {e}\nusage: mio_client [--tls] [--ca FILE] [--dns ADDR:PORT] HOST:PORT [LINE]"
            );
            return ExitCode::from(2);
        }
    };
    match run(&o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
