//! RFC 9622 §6.3 Security Parameters and RFC 9623 §4.2.3 security
//! establishment: what an application says about TLS.
//!
//! Security is on by default: a preconnection with `SecurityParameters`
//! verifies the server's chain against the trusted roots and its name against
//! the endpoint's host (RFC 6125). Turning verification off takes the
//! explicitly named [`SecurityParameters::danger_disable_verification`].
//! Certificate pinning (`pinned_spki_sha256`) is an additional check, never a
//! replacement. Nothing here ever falls back to weaker security by itself:
//! a connection is raced only against stacks with the same parameters
//! (RFC 9623 §4.2.3), because one preconnection carries one set.

use core::fmt;
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use crate::stack::tls::{TlsConfigError, TlsEnvironment};

/// How server certificates are checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CertificateVerification {
    /// Verify the peer's certificate chain and name (default).
    #[default]
    Verify,
    /// Accept any certificate. Only reachable through
    /// [`SecurityParameters::danger_disable_verification`]; it removes all
    /// protection against an active attacker.
    DisabledForTesting,
}

/// A certificate chain and its private key: a server's identity, or a
/// client's for mutual TLS (RFC 9622 §6.3.1 `serverCertificate`,
/// `clientCertificate`).
pub struct Identity {
    /// End-entity certificate first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The end-entity certificate's key.
    pub key: PrivateKeyDer<'static>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("Identity")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// RFC 9622 §6.3.3 session cache options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionCacheLimits {
    /// Sessions (TLS 1.3 tickets count one each) kept for resumption.
    /// Default 32; 0 disables resumption and so 0-RTT.
    pub max_sessions: usize,
}

impl Default for SessionCacheLimits {
    fn default() -> Self {
        SessionCacheLimits { max_sessions: 32 }
    }
}

/// RFC 9622 §6.3 Security Parameters, as far as taps implements them.
#[derive(Clone, Debug, Default)]
pub struct SecurityParameters {
    /// The name to send in SNI and to verify the certificate against; `None`
    /// uses the Remote Endpoint's host name.
    pub server_name: Option<String>,
    /// §6.3.2 `alpn`: protocols to offer, most preferred first.
    pub alpn: Vec<String>,
    /// Trust anchors for server (or, on a listener, client) certificates.
    /// The adapters load the system's; the core uses exactly what it is given.
    pub trusted_roots: Vec<CertificateDer<'static>>,
    /// SHA-256 hashes of acceptable SubjectPublicKeyInfo structures of the
    /// end-entity certificate (RFC 7469 §2.4 style pins). Empty: no pinning.
    /// Checked after, never instead of, chain verification.
    pub pinned_spki_sha256: Vec<[u8; 32]>,
    /// The client's certificate for mutual TLS.
    pub client_identity: Option<Arc<Identity>>,
    /// The server's certificate, for listeners.
    pub server_identity: Option<Arc<Identity>>,
    /// Listeners: require clients to present a certificate that chains to
    /// `trusted_roots`.
    pub require_client_certificate: bool,
    /// §6.3.3 session cache limits.
    pub session_cache: SessionCacheLimits,
    /// Allow TLS 1.3 early data for safely replayable first messages
    /// (RFC 9622 §7.2 `InitiateWithSend`). Default true.
    pub allow_early_data: bool,
    verification: CertificateVerification,
}

impl PartialEq for SecurityParameters {
    fn eq(&self, other: &Self) -> bool {
        let same_identity = |a: &Option<Arc<Identity>>, b: &Option<Arc<Identity>>| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        self.server_name == other.server_name
            && self.alpn == other.alpn
            && self.trusted_roots == other.trusted_roots
            && self.pinned_spki_sha256 == other.pinned_spki_sha256
            && same_identity(&self.client_identity, &other.client_identity)
            && same_identity(&self.server_identity, &other.server_identity)
            && self.require_client_certificate == other.require_client_certificate
            && self.session_cache == other.session_cache
            && self.allow_early_data == other.allow_early_data
            && self.verification == other.verification
    }
}

impl SecurityParameters {
    /// TLS that verifies against `roots`, with early data allowed.
    pub fn with_roots(roots: Vec<CertificateDer<'static>>) -> Self {
        SecurityParameters {
            trusted_roots: roots,
            allow_early_data: true,
            ..SecurityParameters::default()
        }
    }

    /// A TLS server identity for listeners.
    pub fn server(identity: Identity) -> Self {
        SecurityParameters {
            server_identity: Some(Arc::new(identity)),
            allow_early_data: true,
            ..SecurityParameters::default()
        }
    }

    /// Offers these ALPN protocols, most preferred first.
    pub fn alpn<S: Into<String>>(mut self, protocols: impl IntoIterator<Item = S>) -> Self {
        self.alpn = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a SubjectPublicKeyInfo SHA-256 pin.
    pub fn pin_spki_sha256(mut self, hash: [u8; 32]) -> Self {
        self.pinned_spki_sha256.push(hash);
        self
    }

    /// Turns certificate verification off. Anyone on the path can then
    /// impersonate the server; use it only against throwaway test servers.
    pub fn danger_disable_verification(mut self) -> Self {
        self.verification = CertificateVerification::DisabledForTesting;
        self
    }

    /// Whether certificates are verified.
    pub fn verification(&self) -> CertificateVerification {
        self.verification
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_is_on_unless_named_off() {
        // RFC 9622 §6.3: security is the default; switching it off is explicit.
        let s = SecurityParameters::default();
        assert_eq!(s.verification(), CertificateVerification::Verify);
        assert_eq!(
            SecurityParameters::with_roots(vec![]).verification(),
            CertificateVerification::Verify
        );
        let off = SecurityParameters::default().danger_disable_verification();
        assert_eq!(
            off.verification(),
            CertificateVerification::DisabledForTesting
        );
        assert_ne!(s, off);
    }
}
