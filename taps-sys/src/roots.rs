//! The system's trusted root certificates, loaded once per process and
//! given to the core when an application asks for TLS without naming its
//! own roots (the core uses exactly what it is given; see
//! `SecurityParameters::trusted_roots`). They are the trust anchors of
//! certificate path validation (RFC 5280 §6.1.1 (d)).
//!
//! Where they come from, first found wins: the file named by
//! `SSL_CERT_FILE` (OpenSSL's variable, which users already set to point
//! tools at a private CA bundle), then the bundles of the common
//! distributions: Debian and Ubuntu's `ca-certificates`, Fedora and RHEL's
//! `ca-trust`, openSUSE, Alpine, and FreeBSD.

use std::io;
use std::path::Path;
use std::sync::OnceLock;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Bundles tried when `SSL_CERT_FILE` is not set.
pub const BUNDLE_PATHS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/usr/local/share/certs/ca-root-nss.crt",
];

static ROOTS: OnceLock<Result<Vec<CertificateDer<'static>>, String>> = OnceLock::new();

/// The system's trusted roots (read once; later calls share the result).
///
/// # Errors
///
/// When no bundle exists or none holds a certificate: TLS without roots
/// of the application's own cannot verify anything, so it must not start.
pub fn system_roots() -> io::Result<Vec<CertificateDer<'static>>> {
    ROOTS
        .get_or_init(load)
        .clone()
        .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e))
}

fn load() -> Result<Vec<CertificateDer<'static>>, String> {
    if let Some(file) = std::env::var_os("SSL_CERT_FILE") {
        return read_bundle(Path::new(&file));
    }
    let mut tried = Vec::new();
    for path in BUNDLE_PATHS {
        match read_bundle(Path::new(path)) {
            Ok(roots) => return Ok(roots),
            Err(e) => tried.push(e),
        }
    }
    Err(format!(
        "no trusted root certificates found ({}); set SSL_CERT_FILE or give the roots in SecurityParameters",
        tried.join("; ")
    ))
}

/// Reads the certificates of one PEM bundle.
pub fn read_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let roots: Vec<_> = CertificateDer::pem_slice_iter(&text)
        .filter_map(Result::ok)
        .collect();
    if roots.is_empty() {
        return Err(format!("{}: no PEM certificates", path.display()));
    }
    Ok(roots)
}
