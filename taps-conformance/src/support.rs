//! Helpers of the suite (and of the adapters' own tests): a throwaway
//! certificate authority, raw peers on threads, descriptor counts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::task::Poll;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use taps_core::Identity;

use crate::Shim;

/// A throwaway certificate authority (rcgen).
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA with this common name.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// The CA's certificate.
    pub fn root(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// The CA's certificate as PEM.
    pub fn root_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server identity for `names`, valid from 2025 for ten years.
    pub fn leaf(&self, names: &[&str]) -> Identity {
        let (chain, key) = self.leaf_der(names);
        Identity { chain, key }
    }

    fn leaf_params(names: &[&str]) -> CertificateParams {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2035, 1, 1);
        params
    }

    /// A leaf's chain and key.
    pub fn leaf_der(
        &self,
        names: &[&str],
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let cert = Self::leaf_params(names)
            .signed_by(&key, &self.issuer)
            .unwrap();
        (
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }

    /// A leaf's certificate and key as PEM text.
    pub fn leaf_pem(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = Self::leaf_params(names)
            .signed_by(&key, &self.issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Resident memory of this process in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A plain blocking listener on `at` whose accepted connections are each
/// handed to `serve` on a thread of their own; the listener's address.
pub fn raw_server(
    at: &str,
    serve: impl Fn(TcpStream) + Send + Sync + Clone + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind(at).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let serve = serve.clone();
            std::thread::spawn(move || serve(stream));
        }
    });
    addr
}

/// Reads until the peer ends or fails; what arrived, and how it ended.
pub fn read_until_end(stream: &mut TcpStream) -> (Vec<u8>, std::io::Result<()>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (got, Err(e)),
        }
    }
}

/// Writes `data`, ignoring a peer that went away.
pub fn write_quietly(stream: &mut TcpStream, data: &[u8]) {
    let _ = stream.write_all(data);
}

/// A read timeout for raw peers, so a test that fails cannot hang.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// Polls `future` once: its output if that finished it. A stream read or
/// write that is still pending is dropped, as a `select!` or a timeout
/// drops it.
pub async fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// `future`, or `None` after `limit`: a test that fails ends instead of
/// hanging.
pub async fn within<S: Shim, F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut timer = std::pin::pin!(S::sleep(limit));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}
