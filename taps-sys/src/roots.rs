//! The system's trusted root certificates, loaded once per process and
//! given to the core when an application asks for TLS without naming its
//! own roots (the core uses exactly what it is given; see
//! `SecurityParameters::trusted_roots`). They are the trust anchors of
//! certificate path validation (RFC 5280 §6.1.1 (d)).
//!
//! Where they come from is rustls-native-certs' business, so taps finds
//! the roots every other rustls client on the machine finds: when
//! `SSL_CERT_FILE` or `SSL_CERT_DIR` (OpenSSL's variables) is set, only
//! what they name; otherwise the platform's store (on Linux and the BSDs
//! the distribution's bundle, found by openssl-probe; the keychain on
//! macOS; the system store on Windows). An earlier hand-written loader
//! knew six bundle paths and neither `SSL_CERT_DIR` nor the platform
//! stores.

use std::io;
use std::path::Path;
use std::sync::OnceLock;

use rustls_native_certs::CertificateResult;
use rustls_pki_types::CertificateDer;

static ROOTS: OnceLock<Result<Vec<CertificateDer<'static>>, String>> = OnceLock::new();

/// The system's trusted roots (read once; later calls share the result).
///
/// # Errors
///
/// When no root is found: TLS without roots of the application's own
/// cannot verify anything, so it must not start. The message names every
/// place that was tried and failed, and the fix.
pub fn system_roots() -> io::Result<Vec<CertificateDer<'static>>> {
    ROOTS
        .get_or_init(|| {
            usable(rustls_native_certs::load_native_certs()).map_err(|why| {
                format!(
                    "no trusted root certificates found ({why}); set SSL_CERT_FILE or \
                     SSL_CERT_DIR, or give the roots in SecurityParameters"
                )
            })
        })
        .clone()
        .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e))
}

/// Reads the certificates of one PEM file (`tapscat --ca FILE`).
///
/// # Errors
///
/// When the file cannot be read or holds no certificate.
pub fn read_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    usable(rustls_native_certs::load_certs_from_paths(Some(path), None)).map_err(|e| {
        if e.contains(&path.display().to_string()) {
            e
        } else {
            format!("{}: {e}", path.display())
        }
    })
}

/// The certificates found, or, when there are none, why: every place
/// that failed, or that there was no certificate. Errors beside
/// certificates (an unreadable file in a directory of good ones) leave
/// the good ones usable.
fn usable(found: CertificateResult) -> Result<Vec<CertificateDer<'static>>, String> {
    if !found.certs.is_empty() {
        return Ok(found.certs);
    }
    let tried: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
    Err(if tried.is_empty() {
        "no PEM certificates".to_owned()
    } else {
        tried.join("; ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test-root.pem")
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("taps-roots-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_bundle_file_gives_its_certificates() {
        let roots = read_bundle(&fixture()).unwrap();
        assert_eq!(roots.len(), 1);
    }

    #[test]
    fn a_certificate_directory_is_read_as_ssl_cert_dir_would_be() {
        let dir = scratch("dir");
        std::fs::copy(fixture(), dir.join("root.pem")).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a certificate").unwrap();
        let roots = usable(rustls_native_certs::load_certs_from_paths(None, Some(&dir))).unwrap();
        assert_eq!(roots, read_bundle(&fixture()).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn nothing_found_is_an_error_naming_the_place() {
        let missing = scratch("missing").join("nope.pem");
        let e = read_bundle(&missing).unwrap_err();
        assert!(e.contains("nope.pem"), "{e}");

        let empty = scratch("empty").join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let e = read_bundle(&empty).unwrap_err();
        assert!(
            e.contains("empty.pem") && e.contains("no PEM certificates"),
            "{e}"
        );
    }

    #[test]
    fn this_machine_has_roots() {
        // CI machines carry a distribution bundle (ca-certificates).
        let roots = system_roots().expect("the platform's roots");
        assert!(roots.len() > 10, "{} roots", roots.len());
    }
}
