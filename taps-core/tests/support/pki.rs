//! A throwaway certificate authority for TLS tests (rcgen).
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use taps_core::Identity;

pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// Set for a deterministic CA: leaves get Ed25519 keys from this seed.
    seed: Option<u8>,
}

/// An Ed25519 key from a 32-byte seed (RFC 8410 PKCS#8 v1 framing), so
/// keys, certificates and signatures repeat exactly.
fn ed25519_from_seed(seed: [u8; 32]) -> KeyPair {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(der), &rcgen::PKCS_ED25519)
        .unwrap()
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    pub fn new() -> Self {
        Self::named("taps test CA")
    }

    /// A CA with its own name (two CAs of one name confuse chain building).
    pub fn named(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
            seed: None,
        }
    }

    /// A CA whose every key and certificate is a function of `seed`
    /// (Ed25519, fixed serials and dates): for byte-exact replays.
    pub fn deterministic(seed: u8) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "taps deterministic CA");
        params.serial_number = Some(rcgen::SerialNumber::from(vec![1]));
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2035, 1, 1);
        let key = ed25519_from_seed([seed; 32]);
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).unwrap(),
            seed: Some(seed),
        }
    }

    pub fn root(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A leaf for `names`, valid from a year ago for ten years.
    pub fn leaf(&self, names: &[&str]) -> Identity {
        self.leaf_valid(names, (2025, 1, 1), (2035, 1, 1))
    }

    /// A leaf valid between two dates (year, month, day).
    pub fn leaf_valid(&self, names: &[&str], from: (i32, u8, u8), to: (i32, u8, u8)) -> Identity {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        let key = match self.seed {
            Some(seed) => {
                params.serial_number = Some(rcgen::SerialNumber::from(vec![2]));
                ed25519_from_seed([seed.wrapping_add(1); 32])
            }
            None => KeyPair::generate().unwrap(),
        };
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Identity {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}
