//! A real hyper 1.x server on loopback for the connector's tests, example
//! and benchmark (`benches/benches/hyper.rs` includes this file): HTTP/1.1
//! and HTTP/2 through hyper-util's auto builder, over plain TCP or behind
//! tokio-rustls with ALPN `h2, http/1.1`. Each response's body is the
//! version the server saw and the path (`HTTP/2.0 /x`), so a test can tell
//! what went over the wire.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

/// A running server; it stops when dropped.
pub struct HyperServer {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl HyperServer {
    /// Plain HTTP on `bind` (`127.0.0.1:0`).
    pub async fn http(bind: &str) -> HyperServer {
        Self::start(bind, None).await
    }

    /// HTTPS with this certificate chain and key, offering `alpn`.
    pub async fn https(
        bind: &str,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        alpn: &[&str],
    ) -> HyperServer {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Self::start(
            bind,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
        .await
    }

    /// Plain HTTP on a listening socket made elsewhere (in another
    /// network namespace); call inside a tokio runtime.
    pub fn http_on(listener: std::net::TcpListener) -> HyperServer {
        listener.set_nonblocking(true).unwrap();
        Self::serve(TcpListener::from_std(listener).unwrap(), None)
    }

    async fn start(bind: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> HyperServer {
        Self::serve(TcpListener::bind(bind).await.unwrap(), tls)
    }

    fn serve(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) -> HyperServer {
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                tcp.set_nodelay(true).unwrap();
                count.fetch_add(1, Ordering::Relaxed);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(|req: Request<Incoming>| async move {
                        let body = format!("{:?} {}", req.version(), req.uri().path());
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    // A client that goes away mid-request is no failure of
                    // the server's.
                    let _ = match tls {
                        None => builder.serve_connection(TokioIo::new(tcp), service).await,
                        Some(acceptor) => match acceptor.accept(tcp).await {
                            Ok(stream) => {
                                builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await
                            }
                            Err(_) => return,
                        },
                    };
                });
            }
        });
        HyperServer {
            addr,
            accepted,
            task,
        }
    }

    /// The TCP connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for HyperServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
