//! tapscat: a netcat for taps.
//!
//! `tapscat [OPTIONS] HOST:PORT` connects (racing every address and path
//! with Happy Eyeballs v3) and pipes standard input to the connection and
//! the connection to standard output. `tapscat -l [ADDR:]PORT` listens,
//! takes one connection, and does the same.
//!
//! Run `tapscat --help` for the options and `tapscat --version` for the
//! version. As with curl, a usage mistake is reported on one line, with a
//! hint for the common ones (an IPv6 address without brackets, a missing
//! port, a URL), followed by `try 'tapscat --help' for more information`;
//! a value outside its bounds (`--attempt-delay 5`) is clamped with a
//! warning. A failed connect is reported as curl does: `failed to connect
//! to localhost port 8001 after 0 ms: connection refused`, one line per
//! attempt when there were several; `--trace` shows the whole race as a
//! waterfall, `-v` logs the race, its attempts and their outcomes as they
//! happen (`tracing` spans, printed to standard error), `-vv` adds DNS and
//! every transition.
//!
//! Exit status:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success: both directions ended in order |
//! | 1 | a local problem: a file could not be read, the system configuration or a listening socket failed |
//! | 2 | bad usage, every mistake in `HOST:PORT` included (no port, a bad port, no host, IPv6 without brackets, a URL) |
//! | 3 | establishment failed: every attempt failed (each is named with its reason), no path meets the requirements, or `--timeout` passed |
//! | 4 | the connection failed after it was established (reset, TLS or framing error) |
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use taps_tokio::framer::FramerFactory;
use taps_tokio::{
    Connection, EndpointParseError, Error, Host, Identity, InterfaceKind, ListenerConfig,
    LocalEndpoint, Message, Policy, Preconnection, RaceConfig, SecurityParameters, Taps,
    TransportProperties, well_known_port,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const USAGE: &str = "\
usage: tapscat [OPTIONS] HOST:PORT
       tapscat -l [ADDR:]PORT [OPTIONS]

Connects to HOST:PORT (or listens on PORT and takes one connection) and
pipes standard input to the connection and the connection to standard
output.

options:
  -l, --listen            listen instead of connecting
      --tls               use TLS (implied by --ca, --alpn, --cert)
      --ca FILE           trust the PEM certificates in FILE instead of the
                          system's roots
      --alpn LIST         offer these ALPN protocols (comma-separated)
      --cert FILE         (listening) the server's PEM certificate chain
      --key FILE          (listening) the server's PEM private key
      --interface NAME    every attempt leaves by interface NAME
      --prohibit WHAT     never use interfaces of this kind (wired, wifi,
                          cellular, loopback, other) or with this name;
                          may be repeated
      --require WHAT      use only interfaces of this kind or name; may be
                          repeated (any of them)
      --policy NAME       racing policy: hev3 (default), rfc6555, sequential
      --attempt-delay MS  the Connection Attempt Delay (10-2000 ms)
      --framing KIND      message mode: each input line is one message,
                          framed as `lines` or `length` (4-byte prefix);
                          each message received is printed on a line
      --timeout SECS      give up establishing after SECS (fractions allowed)
      --history FILE      remember which addresses worked, failed or hung
                          (and HTTPS records) in FILE across runs: read
                          before connecting, saved (merged) after
      --trace             print the race as a waterfall on standard error
  -v, --verbose           log the race as it runs on standard error: each
                          attempt and its outcome; -vv adds DNS and every
                          transition (TCP up, TLS established, ...)
      --trace-json FILE   write the whole race trace as JSON to FILE
  -h, --help              this text
  -V, --version           print the version

HOST:PORT is a name or address and a port: example.com:443, 192.0.2.1:80,
[2001:db8::1]:443 (IPv6 addresses in brackets). Not a URL.

exit status: 0 success, 1 local problem (files, system, listening socket),
2 bad usage, 3 establishment failed, 4 connection failed after it was up";

/// Exit statuses (documented in the module docs and `--help`).
mod exit {
    pub(crate) const LOCAL: u8 = 1;
    pub(crate) const USAGE: u8 = 2;
    pub(crate) const ESTABLISHMENT: u8 = 3;
    pub(crate) const CONNECTION: u8 = 4;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Lines,
    Length,
}

/// An interface named by kind or by name.
#[derive(Clone, Debug)]
enum Which {
    Kind(InterfaceKind),
    Name(String),
}

impl Which {
    fn parse(s: &str) -> Which {
        match InterfaceKind::from_str(s) {
            Ok(kind) => Which::Kind(kind),
            Err(_) => Which::Name(s.to_owned()),
        }
    }
}

#[derive(Debug, Default)]
struct Options {
    listen: bool,
    target: Option<String>,
    tls: bool,
    ca: Option<PathBuf>,
    alpn: Vec<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    interface: Option<String>,
    prohibit: Vec<Which>,
    require: Vec<Which>,
    policy: Option<Policy>,
    attempt_delay: Option<Duration>,
    framing: Option<Framing>,
    timeout: Option<Duration>,
    trace: bool,
    /// `-v` 1 (races, attempts, outcomes), `-vv` 2 (DNS, every transition).
    verbose: u8,
    trace_json: Option<PathBuf>,
    history: Option<PathBuf>,
}

/// A usage error, or a request for help or the version.
enum Usage {
    Help,
    Version,
    Bad(String),
}

/// How a usage error ends, after its one line (curl's wording).
const TRY_HELP: &str = "try 'tapscat --help' for more information";

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, Usage> {
    let mut o = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // `--name=value` is accepted as well as `--name value`.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, Usage> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| Usage::Bad(format!("option {name}: needs {what}")))
        };
        match name.as_str() {
            "-h" | "--help" => return Err(Usage::Help),
            "-V" | "--version" => return Err(Usage::Version),
            "-l" | "--listen" => o.listen = true,
            "--tls" => o.tls = true,
            "--ca" => o.ca = Some(value("a file")?.into()),
            "--alpn" => {
                o.alpn = value("a list")?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            "--cert" => o.cert = Some(value("a file")?.into()),
            "--key" => o.key = Some(value("a file")?.into()),
            "--interface" => o.interface = Some(value("an interface name")?),
            "--prohibit" => o.prohibit.push(Which::parse(&value("a kind or name")?)),
            "--require" => o.require.push(Which::parse(&value("a kind or name")?)),
            "--policy" => {
                o.policy = Some(value("a policy")?.parse().map_err(Usage::Bad)?);
            }
            "--attempt-delay" => {
                let v = value("milliseconds")?;
                let ms: u64 = v.parse().map_err(|_| {
                    Usage::Bad(format!(
                        "--attempt-delay {v:?}: not a number of milliseconds"
                    ))
                })?;
                o.attempt_delay = Some(Duration::from_millis(ms));
            }
            "--framing" => {
                o.framing = Some(match value("lines or length")?.as_str() {
                    "lines" => Framing::Lines,
                    "length" => Framing::Length,
                    other => {
                        return Err(Usage::Bad(format!(
                            "--framing {other:?}: expected lines or length"
                        )));
                    }
                })
            }
            "--timeout" => {
                let v = value("seconds")?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 1e9)
                    .ok_or_else(|| {
                        Usage::Bad(format!("--timeout {v:?}: not a positive number of seconds"))
                    })?;
                o.timeout = Some(Duration::from_secs_f64(secs));
            }
            "--trace" => o.trace = true,
            "--verbose" => o.verbose = o.verbose.saturating_add(1),
            // `-v`, `-vv`, `-vvv`...: one level per `v`.
            s if s.len() > 1 && s.starts_with('-') && s[1..].bytes().all(|b| b == b'v') => {
                o.verbose = o.verbose.saturating_add((s.len() - 1) as u8);
            }
            "--trace-json" => o.trace_json = Some(value("a file")?.into()),
            "--history" => o.history = Some(value("a file")?.into()),
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(Usage::Bad(format!("option {s}: is unknown")));
            }
            _ => {
                if o.target.replace(arg).is_some() {
                    return Err(Usage::Bad("more than one address given".into()));
                }
            }
        }
    }
    if o.target.is_none() {
        return Err(Usage::Bad(if o.listen {
            "no port to listen on".into()
        } else {
            "no HOST:PORT to connect to".into()
        }));
    }
    if o.cert.is_some() != o.key.is_some() {
        return Err(Usage::Bad("--cert and --key go together".into()));
    }
    if o.cert.is_some() && !o.listen {
        return Err(Usage::Bad("--cert and --key are for listening (-l)".into()));
    }
    if o.listen && o.history.is_some() {
        return Err(Usage::Bad(
            "--history is for connecting, not listening".into(),
        ));
    }
    if o.listen && o.tls && o.cert.is_none() {
        return Err(Usage::Bad("a TLS listener needs --cert and --key".into()));
    }
    if o.ca.is_some() || !o.alpn.is_empty() || o.cert.is_some() {
        o.tls = true;
    }
    // Every mistake in the address is bad usage (exit 2), found before
    // anything starts, not an establishment failure later.
    let target = o.target.as_deref().unwrap_or_default();
    if o.listen {
        listen_addrs(target).map_err(Usage::Bad)?;
    } else {
        remote(target).map_err(Usage::Bad)?;
    }
    Ok(o)
}

/// The connect target as a preconnection. The parsing is the core's; this
/// adds hints for the usual mistakes and insists on a host and a port, so
/// that `tapscat localhost` is a usage error rather than a failed connect.
fn remote(target: &str) -> Result<Preconnection, String> {
    let pre = match Preconnection::parse(target) {
        Ok(pre) => pre,
        Err(EndpointParseError::UnknownProtocol { protocol }) => {
            return Err(url_hint(target, &protocol));
        }
        Err(e) => return Err(format!("{target:?}: {e}")),
    };
    let endpoint = &pre.core().remote;
    let Some(host) = &endpoint.host else {
        return Err(format!("{target:?} has no host: write HOST:PORT"));
    };
    if endpoint.effective_port().is_some() {
        return Ok(pre);
    }
    Err(match host {
        // `::1:8000` is a valid IPv6 address without a port: the last group
        // was probably meant as the port.
        Host::Ip(IpAddr::V6(_)) => ipv6_hint(target).unwrap_or_else(|| {
            format!("write IPv6 addresses in brackets, with a port: [{host}]:PORT")
        }),
        _ => match &endpoint.service {
            Some(service) => format!("{target:?}: unknown service {service:?}: give a port number"),
            None => format!("needs a port: {host}:PORT"),
        },
    })
}

/// `::1:8000` → `[::1]:8000`: an IPv6 address whose last group was
/// probably meant as the port.
fn ipv6_hint(target: &str) -> Option<String> {
    let (ip, port) = target.rsplit_once(':')?;
    (ip.parse::<Ipv6Addr>().is_ok() && port.parse::<u16>().is_ok())
        .then(|| format!("write IPv6 addresses in brackets: [{ip}]:{port}"))
}

/// `https://example.com/path` → what tapscat takes instead.
fn url_hint(target: &str, scheme: &str) -> String {
    let rest = target.split_once("://").map_or(target, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Credentials (`user@`) are not tapscat's business.
    let authority = match authority.rsplit_once('@').map_or(authority, |(_, a)| a) {
        "" => "HOST",
        a => a,
    };
    let scheme = scheme.to_ascii_lowercase();
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.ends_with(':') && p.parse::<u16>().is_ok());
    let hostport = match well_known_port(&scheme) {
        _ if has_port => authority.to_owned(),
        Some(port) => format!("{authority}:{port}"),
        None => format!("{authority}:PORT"),
    };
    let tls = if scheme == "https" { " --tls" } else { "" };
    format!("takes HOST:PORT, not a URL: try {hostport}{tls}")
}

impl Options {
    /// The racing settings the options ask for (`None`: the defaults).
    fn race(&self) -> Option<RaceConfig> {
        if self.policy.is_none() && self.attempt_delay.is_none() {
            return None;
        }
        let mut race = RaceConfig::for_policy(self.policy.unwrap_or(Policy::Hev3));
        if let Some(d) = self.attempt_delay {
            race.connection_attempt_delay = d;
        }
        Some(race)
    }
}

/// A failure with its exit status.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn local(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::LOCAL,
            message: message.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = match &e {
            Error::Initiate(_) | Error::Establishment(_) => exit::ESTABLISHMENT,
            Error::Connection(_) | Error::Closed | Error::Send(_) | Error::Receive(_) => {
                exit::CONNECTION
            }
            _ => exit::LOCAL,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(Usage::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(Usage::Version) => {
            println!("tapscat {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(Usage::Bad(why)) => {
            eprintln!("tapscat: {why}\n{TRY_HELP}");
            return ExitCode::from(exit::USAGE);
        }
    };
    if let Some(clamp) = options.race().and_then(|r| r.attempt_delay_clamp()) {
        let side = if clamp.raised() {
            "below the minimum"
        } else {
            "above the maximum"
        };
        eprintln!(
            "tapscat: warning: --attempt-delay {} ms is {side} {} ms (RFC 8305 §5 / HEv3); using {} ms",
            clamp.configured.as_millis(),
            clamp.used.as_millis(),
            clamp.used.as_millis()
        );
    }
    if options.verbose > 0 {
        log_races(options.verbose);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tapscat: cannot start the runtime: {e}");
            return ExitCode::from(exit::LOCAL);
        }
    };
    let result = runtime.block_on(run(options));
    // Standard input may still be blocked in a read; do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("tapscat: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Prints taps' race spans and events on standard error (`-v`: INFO,
/// races, attempts and outcomes; `-vv`: DEBUG, DNS and every transition).
/// Only taps' target: other crates' logs stay out of a netcat's output.
fn log_races(verbose: u8) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let level = if verbose >= 2 {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colours only for a person: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(Targets::new().with_target(taps_tokio::TRACING_TARGET, level));
    // Fails only when a subscriber is set already, which nothing here does.
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

async fn run(o: Options) -> Result<(), Failure> {
    let taps = taps_tokio::new().map_err(|e| Failure::local(e.to_string()))?;
    if let Some(path) = &o.history {
        // A bad file is one warning, never a failure: it is replaced on save.
        if let Err(warning) = taps.load_history(path) {
            eprintln!("tapscat: warning: {warning}");
        }
    }
    let conn = if o.listen {
        accept_one(&taps, &o).await?
    } else {
        connect(&taps, &o).await?
    };
    match o.framing {
        None => pipe_stream(conn).await,
        Some(_) => pipe_messages(conn).await,
    }
}

fn read_file(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::local(format!("{}: {e}", path.display())))
}

fn framer(o: &Options) -> Option<FramerFactory> {
    o.framing.map(|f| match f {
        Framing::Lines => FramerFactory::lines(1 << 20),
        Framing::Length => FramerFactory::length_prefixed(16 << 20),
    })
}

fn properties(o: &Options) -> TransportProperties {
    let mut p = TransportProperties::reliable_inorder_stream();
    for w in &o.prohibit {
        p = match w {
            Which::Kind(k) => p.prohibit_interface_kind(*k),
            Which::Name(n) => p.prohibit_interface_name(n),
        };
    }
    for w in &o.require {
        p = match w {
            Which::Kind(k) => p.require_interface_kind(*k),
            Which::Name(n) => p.require_interface_name(n),
        };
    }
    p
}

async fn connect(taps: &Taps, o: &Options) -> Result<Connection, Failure> {
    let target = o.target.as_deref().unwrap_or_default();
    // Checked in `parse_args`; an error here would still be bad usage.
    let mut pre = remote(target).map_err(|message| Failure {
        code: exit::USAGE,
        message,
    })?;
    pre = pre.with_properties(properties(o));
    if let Some(name) = &o.interface {
        pre = pre.with_local(LocalEndpoint::new().with_interface(name));
    }
    if let Some(race) = o.race() {
        pre = pre.with_race(race);
    }
    if let Some(t) = o.timeout {
        pre = pre.with_timeout(t);
    }
    if let Some(f) = framer(o) {
        pre = pre.with_framer(f);
    }
    if o.tls {
        let mut security = match &o.ca {
            Some(path) => SecurityParameters::with_roots(
                taps_tokio::roots::read_bundle(path).map_err(Failure::local)?,
            ),
            None => SecurityParameters::with_roots(Vec::new()),
        };
        security = security.alpn(o.alpn.iter().cloned());
        pre = pre.with_security(security);
    }
    let result = taps.initiate(&pre).await;
    // Saved as soon as the race is over (won or lost), not at exit: a
    // long session should not hold back what the next run can use.
    if let Some(path) = &o.history
        && let Err(e) = taps.save_history(path)
    {
        eprintln!("tapscat: warning: history not saved: {e}");
    }
    match result {
        Ok(conn) => {
            report_trace(o, conn.trace().as_ref(), target, taps)?;
            Ok(conn)
        }
        Err(Error::Establishment(f)) => {
            report_trace(o, Some(&f.trace), target, taps)?;
            Err(Error::Establishment(f).into())
        }
        Err(e) => Err(e.into()),
    }
}

fn report_trace(
    o: &Options,
    trace: Option<&taps_tokio::trace::Trace>,
    remote: &str,
    taps: &Taps,
) -> Result<(), Failure> {
    let Some(trace) = trace else { return Ok(()) };
    let name = |i: u32| taps.interface_name(i);
    if o.trace {
        eprint!("{}", taps_tokio::trace::waterfall(trace, remote, &name));
    }
    if let Some(path) = &o.trace_json {
        let json = taps_tokio::trace::to_json(trace, remote, &name);
        std::fs::write(path, json + "\n")
            .map_err(|e| Failure::local(format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

/// `[ADDR:]PORT`: an address and port, or a port alone (both families).
fn listen_addrs(target: &str) -> Result<Vec<SocketAddr>, String> {
    if let Ok(port) = target.parse::<u16>() {
        return Ok(vec![
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        ]);
    }
    target.parse::<SocketAddr>().map(|a| vec![a]).map_err(|_| {
        ipv6_hint(target).unwrap_or_else(|| {
            format!("{target:?}: expected PORT or ADDR:PORT ([ADDR]:PORT for IPv6)")
        })
    })
}

async fn accept_one(taps: &Taps, o: &Options) -> Result<Connection, Failure> {
    let target = o.target.as_deref().unwrap_or_default();
    let local = listen_addrs(target).map_err(|message| Failure {
        code: exit::USAGE,
        message,
    })?;
    let mut config = ListenerConfig::on(local);
    config.properties = properties(o);
    if let Some(f) = framer(o) {
        config = config.with_framer(f);
    }
    if let (Some(cert), Some(key)) = (&o.cert, &o.key) {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read_file(cert)?)
            .filter_map(Result::ok)
            .collect();
        if chain.is_empty() {
            return Err(Failure::local(format!(
                "{}: no PEM certificates",
                cert.display()
            )));
        }
        let key = PrivateKeyDer::from_pem_slice(&read_file(key)?)
            .map_err(|e| Failure::local(format!("{}: {e}", key.display())))?;
        let mut security = SecurityParameters::server(Identity { chain, key });
        security = security.alpn(o.alpn.iter().cloned());
        config = config.with_security(security);
    }
    let mut listener = taps.listen(config).await?;
    let addrs: Vec<String> = listener
        .local_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    eprintln!("tapscat: listening on {}", addrs.join(", "));
    let conn = accept_logging_failures(&mut listener).await?;
    listener.stop();
    eprintln!("tapscat: connection from {}", conn.remote_addr());
    report_trace(
        o,
        conn.trace().as_ref(),
        &conn.remote_addr().to_string(),
        taps,
    )?;
    Ok(conn)
}

/// The first connection that gets through; each client whose handshake
/// fails (certificate refused, ALPN mismatch, timeout) is logged with its
/// reason, and the listener keeps waiting.
async fn accept_logging_failures(
    listener: &mut taps_tokio::Listener,
) -> Result<Connection, Failure> {
    loop {
        match listener.next_incoming().await {
            Some(taps_tokio::Incoming::Connection(conn)) => return Ok(conn),
            Some(taps_tokio::Incoming::HandshakeFailed { remote, reason }) => {
                eprintln!("tapscat: handshake with {remote} failed: {reason}");
            }
            Some(_) => {}
            None => return Err(Failure::local("the listener stopped")),
        }
    }
}

/// Stream mode: stdin → connection (then end our side), connection →
/// stdout until the peer ends; done when both directions are.
async fn pipe_stream(conn: Connection) -> Result<(), Failure> {
    let (mut r, mut w) = tokio::io::split(conn);
    let upload = tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let copied = tokio::io::copy(&mut stdin, &mut w).await;
        let ended = w.shutdown().await;
        (w, copied.and(ended))
    });
    let mut stdout = tokio::io::stdout();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf).await.map_err(|e| Failure {
            code: exit::CONNECTION,
            message: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        stdout
            .write_all(&buf[..n])
            .await
            .map_err(|e| Failure::local(format!("standard output: {e}")))?;
    }
    stdout
        .flush()
        .await
        .map_err(|e| Failure::local(format!("standard output: {e}")))?;
    // The peer ended; what standard input still holds goes out before we
    // end our side (as `nc -N` does), and its failure is the connection's.
    let (w, uploaded) = upload
        .await
        .map_err(|e| Failure::local(format!("the upload task failed: {e}")))?;
    uploaded.map_err(|e| Failure {
        code: exit::CONNECTION,
        message: e.to_string(),
    })?;
    // Everything written must reach the peer before the process exits.
    r.unsplit(w).close().await?;
    Ok(())
}

/// Message mode: each stdin line is a message; each message received is
/// printed on its own line.
async fn pipe_messages(conn: Connection) -> Result<(), Failure> {
    let conn = std::sync::Arc::new(conn);
    let sender = conn.clone();
    let upload = tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        // One line of lookahead: the last line goes as the final message
        // (RFC 9622 §9.1.3.5), which ends our side while the peer's
        // messages keep coming. Empty input sends an empty final message.
        let mut held: Option<String> = None;
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(previous) = held.replace(line) {
                sender.send(Message::new(previous)).await?;
            }
        }
        sender
            .send(Message::new(held.unwrap_or_default()).final_message())
            .await
            .map(|_| ())
    });
    let mut stdout = std::io::stdout();
    loop {
        match conn.receive().await {
            Ok(Some(m)) => {
                let mut out = m.data;
                if m.end_of_message {
                    out.push(b'\n');
                }
                stdout
                    .write_all(&out)
                    .and_then(|()| stdout.flush())
                    .map_err(|e| Failure::local(format!("standard output: {e}")))?;
            }
            Ok(None) => break,
            Err(e) => return Err(e.into()),
        }
    }
    upload
        .await
        .map_err(|e| Failure::local(format!("the upload task failed: {e}")))??;
    // Everything sent must reach the peer before the process exits.
    conn.close().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Options, Usage> {
        parse_args(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn options_parse_and_bad_usage_is_refused() {
        let o = args("--policy sequential --attempt-delay=100 --prohibit wifi --require eth1 --timeout 1.5 example.com:443").ok().unwrap();
        assert_eq!(o.policy, Some(Policy::Sequential));
        assert_eq!(o.attempt_delay, Some(Duration::from_millis(100)));
        assert!(matches!(o.prohibit[0], Which::Kind(InterfaceKind::Wifi)));
        assert!(matches!(&o.require[0], Which::Name(n) if n == "eth1"));
        assert_eq!(o.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(o.target.as_deref(), Some("example.com:443"));
        assert!(
            args("--alpn h2 x:1").ok().unwrap().tls,
            "--alpn implies TLS"
        );
        assert_eq!(
            args("--history h.txt x:1").ok().unwrap().history,
            Some(PathBuf::from("h.txt"))
        );
        for bad in [
            "",
            "-l 8000 --history h.txt",
            "--history",
            "--policy fast x:1",
            "--framing json x:1",
            "--timeout -1 x:1",
            "--cert a x:1",
            "-l --cert a --key b",
            "--bogus x:1",
            "a:1 b:2",
            "--ca",
            "localhost",
            "::1:8000",
            ":80",
            "https://example.com",
            "-l ::1:8000",
        ] {
            assert!(matches!(args(bad), Err(Usage::Bad(_))), "{bad:?} accepted");
        }
        assert!(matches!(args("-h"), Err(Usage::Help)));
        assert!(matches!(args("--version"), Err(Usage::Version)));
        assert!(args("--trace x:1").ok().unwrap().trace);
        let v = args("-v x:1").ok().unwrap();
        assert_eq!(
            (v.verbose, v.trace),
            (1, false),
            "-v logs, it is not --trace"
        );
        assert_eq!(args("-vv x:1").ok().unwrap().verbose, 2);
        assert_eq!(args("-v --verbose x:1").ok().unwrap().verbose, 2);
        assert!(
            matches!(args("-vx x:1"), Err(Usage::Bad(_))),
            "-vx accepted"
        );
    }

    #[test]
    fn urls_get_the_host_port_they_mean() {
        for (url, hint) in [
            ("https://example.com/a?b", "example.com:443 --tls"),
            ("HTTPS://user@example.com:8443", "example.com:8443 --tls"),
            ("https://[::1]/", "[::1]:443 --tls"),
            ("http://example.com", "example.com:80"),
            ("gopher://example.com", "example.com:PORT"),
            ("https://", "HOST:443 --tls"),
        ] {
            let scheme = url.split_once("://").unwrap().0;
            assert_eq!(
                url_hint(url, scheme),
                format!("takes HOST:PORT, not a URL: try {hint}"),
                "{url}"
            );
        }
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(listen_addrs("8080").unwrap().len(), 2);
        assert_eq!(
            listen_addrs("[::1]:80").unwrap(),
            vec!["[::1]:80".parse::<SocketAddr>().unwrap()]
        );
        assert!(listen_addrs("nope").is_err());
    }
}
