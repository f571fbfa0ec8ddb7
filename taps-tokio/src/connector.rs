//! taps as hyper's client connector (feature `hyper`, on by default):
//! [`TapsConnector`] is a `tower_service::Service<http::Uri>` that
//! hyper-util's legacy `Client`
//! connects through, so every HTTP connection is a taps connection: a
//! Happy Eyeballs v3 race over the names and paths, with taps' TLS.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use taps_tokio::connector::TapsConnector;
//! # type Body = http_body_util::Empty<bytes::Bytes>;
//!
//! let taps = taps_tokio::new()?;
//! let client = Client::builder(TokioExecutor::new())
//!     .build::<_, Body>(TapsConnector::new(taps));
//! let response = client.get("https://example.com/".parse()?).await?;
//! println!("{} over {:?}", response.status(), response.version());
//! # Ok(()) }
//! ```
//!
//! What a URI becomes (RFC 9622 §6, a Preconnection per request; §7.1
//! `Initiate`):
//!
//! - `http://host[:port]`: a reliable, in-order stream (TCP) to the host,
//!   port 80 by default (RFC 9110 §4.2.1).
//! - `https://host[:port]`: the same with TLS (RFC 9110 §4.2.2, port 443
//!   by default), the certificate verified against the system's roots
//!   (read once per connector, on its first `https` connection) or the
//!   roots it was given ([`TapsConnector::with_roots`]), offering ALPN
//!   `h2, http/1.1` (RFC 7301). When the server picks `h2` the connection
//!   says so ([`Connected::negotiated_h2`]) and hyper speaks HTTP/2 over it
//!   (RFC 9113 §3.2). Nothing falls back to plain text or to unverified
//!   certificates on its own.
//! - Any other scheme, or no host, is a [`ConnectError::Uri`].
//!
//! A failed race is a [`ConnectError::Taps`] whose text is taps' own
//! (`failed to connect to localhost port 8001 after 0 ms: connection
//! refused`, one line per attempt when there were several). Every response
//! carries the connection's [`TapsInfo`] in its extensions (the address
//! the race won with, the ALPN, and, when asked for with
//! [`TapsConnector::with_waterfall`], the race's waterfall).
//!
//! # reqwest
//!
//! reqwest 0.12 cannot be given this connector. Its only hook into
//! connecting, `ClientBuilder::connector_layer`
//! (<https://docs.rs/reqwest/0.12/reqwest/struct.ClientBuilder.html#method.connector_layer>),
//! takes tower layers *around* its own connector: the layered service must
//! be a `Service<Unnameable, Response = Conn>`, both types reqwest's own,
//! which another crate can neither name nor make. So a layer can time,
//! limit or observe reqwest's connects, but the socket and the TLS session
//! always come from reqwest's own `HttpConnector` and TLS backend: there
//! is no hook that replaces the transport, which is what a Happy Eyeballs
//! v3 race needs. The missing piece is a builder method taking a
//! `Service<Uri>` whose response is any `hyper::rt::Read + Write +
//! Connection`, as hyper-util's `Client::builder(..).build(connector)`
//! does.
//! hyper-util's `Client`, which reqwest is built on, is the way in.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection as HyperConnection};
use hyper_util::rt::TokioIo;
use rustls_pki_types::CertificateDer;

use taps_core::CertificateVerification;

use crate::{
    Connection, Error, Preconnection, RaceConfig, RemoteEndpoint, SecurityParameters, Taps,
    TransportProperties,
};

/// The ALPN protocols an `https` connection offers by default, most
/// preferred first.
const ALPN: [&str; 2] = ["h2", "http/1.1"];

/// hyper-util's client connector over a [`Taps`] instance: see the
/// [module documentation](self). Cloning is cheap and shares the instance
/// and the settings.
#[derive(Clone, Debug)]
pub struct TapsConnector {
    taps: Taps,
    settings: Arc<Settings>,
}

#[derive(Clone, Debug)]
struct Settings {
    /// The `https` parameters as configured: without roots (and verifying),
    /// the system's are filled in on first use.
    security: SecurityParameters,
    /// `security` with its roots, once an `https` URI asked for it: read
    /// once, not per connection.
    resolved: OnceLock<Result<SecurityParameters, String>>,
    properties: Option<TransportProperties>,
    timeout: Option<Duration>,
    race: Option<RaceConfig>,
    waterfall: bool,
}

impl TapsConnector {
    /// Connects with `taps`: `https` verifies with the system's roots and
    /// offers ALPN `h2, http/1.1`.
    pub fn new(taps: Taps) -> Self {
        TapsConnector {
            taps,
            settings: Arc::new(Settings {
                security: SecurityParameters::with_roots(Vec::new()).alpn(ALPN),
                resolved: OnceLock::new(),
                properties: None,
                timeout: None,
                race: None,
                waterfall: false,
            }),
        }
    }

    /// Trusts these roots for `https` instead of the system's.
    pub fn with_roots(self, roots: Vec<CertificateDer<'static>>) -> Self {
        let mut security = self.settings.security.clone();
        security.trusted_roots = roots;
        self.with_security(security)
    }

    /// Uses these TLS parameters for `https` (roots, pins, a client
    /// certificate, other ALPN protocols: offering only `http/1.1` keeps
    /// hyper on HTTP/1.1). Without roots (and with verification on), the
    /// system's are used. The server name is the URI's host unless they
    /// name one.
    pub fn with_security(self, security: SecurityParameters) -> Self {
        self.update(|s| {
            s.security = security;
            s.resolved = OnceLock::new();
        })
    }

    /// Connects with these transport properties (RFC 9622 §6.2), e.g.
    /// prohibiting cellular interfaces.
    pub fn with_properties(self, properties: TransportProperties) -> Self {
        self.update(|s| s.properties = Some(properties))
    }

    /// Gives up a connection's establishment after `timeout` (RFC 9622
    /// §8.1.3 `connTimeout`).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.update(|s| s.timeout = Some(timeout))
    }

    /// Races with these settings instead of the instance's own.
    pub fn with_race(self, race: RaceConfig) -> Self {
        self.update(|s| s.race = Some(race))
    }

    /// Records each connection's race as a text waterfall in its
    /// [`TapsInfo`] (formatting it costs a little on every connect, so it
    /// is off by default).
    pub fn with_waterfall(self, on: bool) -> Self {
        self.update(|s| s.waterfall = on)
    }

    /// The instance this connector connects with.
    pub fn taps(&self) -> &Taps {
        &self.taps
    }

    fn update(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(Arc::make_mut(&mut self.settings));
        self
    }

    /// The preconnection for `uri`.
    fn preconnection(&self, uri: &Uri) -> Result<Preconnection, ConnectError> {
        let bad = |reason: String| ConnectError::Uri {
            uri: uri.to_string(),
            reason,
        };
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => {
                return Err(bad(format!("taps connects http and https, not {other}")));
            }
            None => return Err(bad("no scheme (http or https)".into())),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host".into()))?;
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        let remote = match literal.unwrap_or(host).parse::<IpAddr>() {
            Ok(ip) => RemoteEndpoint::new().with_ip(ip),
            Err(_) => RemoteEndpoint::new()
                .with_host_name(host)
                .map_err(|e| bad(e.to_string()))?,
        }
        .with_port(port);
        let s = &*self.settings;
        let mut pre = Preconnection::new(remote);
        if let Some(p) = &s.properties {
            pre = pre.with_properties(p.clone());
        }
        if let Some(t) = s.timeout {
            pre = pre.with_timeout(t);
        }
        if let Some(r) = s.race {
            pre = pre.with_race(r);
        }
        if tls {
            let security = s
                .resolved
                .get_or_init(|| with_roots(&s.security))
                .clone()
                .map_err(ConnectError::Roots)?;
            pre = pre.with_security(security);
        }
        Ok(pre)
    }
}

/// `security`, with the system's roots when it verifies against none.
fn with_roots(security: &SecurityParameters) -> Result<SecurityParameters, String> {
    let mut security = security.clone();
    if security.trusted_roots.is_empty()
        && security.verification() == CertificateVerification::Verify
    {
        security.trusted_roots =
            crate::roots::system_roots().map_err(|e| format!("no trusted roots for https: {e}"))?;
    }
    Ok(security)
}

impl tower_service::Service<Uri> for TapsConnector {
    type Response = TapsStream;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<TapsStream, ConnectError>> + Send>>;

    /// Always ready: each call is a race of its own on the shared instance.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let pre = self.preconnection(&uri);
        let taps = self.taps.clone();
        let waterfall = self.settings.waterfall;
        Box::pin(async move {
            let pre = pre?;
            let tls = pre.core().security.is_some();
            let conn = taps.initiate(&pre).await.map_err(ConnectError::Taps)?;
            let alpn = if tls { conn.alpn() } else { None };
            let info = TapsInfo {
                remote_addr: conn.remote_addr(),
                alpn: alpn.clone(),
                waterfall: if waterfall {
                    conn.waterfall().map(Arc::from)
                } else {
                    None
                },
            };
            Ok(TapsStream {
                io: TokioIo::new(conn),
                info,
            })
        })
    }
}

/// What the connection of a response is: in every response's extensions
/// (`response.extensions().get::<TapsInfo>()`), and from
/// [`TapsStream::info`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapsInfo {
    /// The address the race won with.
    pub remote_addr: SocketAddr,
    /// The ALPN protocol TLS negotiated (`h2`, `http/1.1`); `None` over
    /// plain TCP or when the server chose none.
    pub alpn: Option<Vec<u8>>,
    /// The race as a text waterfall (as `tapscat --trace` prints it), when
    /// the connector records it ([`TapsConnector::with_waterfall`]).
    pub waterfall: Option<Arc<str>>,
}

/// One connection made by [`TapsConnector`]: a taps [`Connection`] with
/// hyper's I/O traits.
#[derive(Debug)]
pub struct TapsStream {
    io: TokioIo<Connection>,
    info: TapsInfo,
}

impl TapsStream {
    /// What the connection is.
    pub fn info(&self) -> &TapsInfo {
        &self.info
    }

    /// The taps connection (its events, properties, trace).
    pub fn connection(&self) -> &Connection {
        self.io.inner()
    }

    /// The taps connection, for closing it or using it as a stream again.
    pub fn into_connection(self) -> Connection {
        self.io.into_inner()
    }
}

impl HyperConnection for TapsStream {
    fn connected(&self) -> Connected {
        let connected = Connected::new().extra(self.info.clone());
        if self.info.alpn.as_deref() == Some(b"h2") {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl hyper::rt::Read for TapsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for TapsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Why [`TapsConnector`] could not connect.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URI is not one to connect to: no host, or a scheme other than
    /// `http` and `https`.
    Uri {
        /// The URI as given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `https` needs the system's trusted roots and they could not be read.
    Roots(String),
    /// taps could not connect; the text is taps' own (curl-style, naming
    /// the host and port, one line per failed attempt).
    Taps(Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Uri { uri, reason } => write!(f, "cannot connect to {uri}: {reason}"),
            ConnectError::Roots(e) => f.write_str(e),
            ConnectError::Taps(e) => write!(f, "{e}"),
        }
    }
}

/// The text appears once in a chain: no `source` (as taps' [`Error`]).
impl std::error::Error for ConnectError {}

impl From<ConnectError> for io::Error {
    fn from(e: ConnectError) -> io::Error {
        match e {
            ConnectError::Taps(e) => e.into(),
            other => io::Error::other(other.to_string()),
        }
    }
}
