//! The system's TLS environment: ring's algorithms and CSPRNG, and the wall
//! clock for certificate validity (RFC 5280 §4.1.2.5). The core takes its
//! [`TlsEnvironment`] from outside; this is the one every real connection
//! runs in.

use std::sync::Arc;

use taps_core::TlsEnvironment;

/// The operating system's randomness and clock, with ring's algorithms.
pub fn system_environment() -> TlsEnvironment {
    TlsEnvironment::new(
        Arc::new(rustls::crypto::ring::default_provider()),
        Arc::new(rustls::time_provider::DefaultTimeProvider),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_environment_can_hash_pins() {
        // A certificate that does not parse has no pin; the provider's
        // SHA-256 is found (a provider without one could not check pins).
        let env = system_environment();
        let garbage = rustls_pki_types::CertificateDer::from(vec![0x30, 0x03, 1, 2, 3]);
        assert_eq!(env.spki_sha256(&garbage), None);
    }
}
