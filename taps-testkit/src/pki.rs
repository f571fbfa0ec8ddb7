//! Throwaway certificate authorities for TLS tests (rcgen): [`TestCa`]
//! issues server identities, with fresh keys or, for byte-exact replays,
//! keys and certificates that are a function of a seed. [`ed25519_key`] and
//! [`authority`] are the deterministic building blocks, shared with the
//! simulator's scenario PKI.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use taps_core::Identity;

/// An Ed25519 key pair from 32 seed bytes (RFC 8410 §7 PKCS#8 v1 framing):
/// Ed25519 signatures are deterministic (RFC 8032), so keys, certificates
/// and signatures repeat exactly.
pub fn ed25519_key(seed: [u8; 32]) -> Result<KeyPair, rcgen::Error> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(der), &rcgen::PKCS_ED25519)
}

/// A self-signed certificate authority named `name` with this serial
/// number and `key`, valid from 2025-01-01 to 2035-01-01: every byte of it
/// is a function of its arguments when `key` is (see [`ed25519_key`]).
pub fn authority(
    name: &str,
    serial: u8,
    key: KeyPair,
) -> Result<CertifiedIssuer<'static, KeyPair>, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.serial_number = Some(rcgen::SerialNumber::from(vec![serial]));
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    CertifiedIssuer::self_signed(params, key)
}

/// A self-signed server identity shaped like OpenSSL 3's
/// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=<first name>
/// -addext subjectAltName=DNS:<names>`: a P-256 key, and (OpenSSL's
/// default) basicConstraints CA:TRUE, so the one certificate is both its
/// own trust anchor and the server's end entity. Valid between two dates
/// (year, month, day). Test-only key material: it panics on failure.
pub fn openssl_style_self_signed(
    names: &[&str],
    from: (i32, u8, u8),
    to: (i32, u8, u8),
) -> Identity {
    let (cert, key) = openssl_style(names, from, to);
    Identity {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// [`openssl_style_self_signed`] as PEM files hold it, valid 2025-2035:
/// (certificate, PKCS#8 key), for tools such as `tapscat --cert --key`.
pub fn openssl_style_self_signed_pem(names: &[&str]) -> (String, String) {
    let (cert, key) = openssl_style(names, (2025, 1, 1), (2035, 1, 1));
    (cert.pem(), key.serialize_pem())
}

fn openssl_style(
    names: &[&str],
    from: (i32, u8, u8),
    to: (i32, u8, u8),
) -> (rcgen::Certificate, KeyPair) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("self-signed parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, *first);
    }
    params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
    let cert = params.self_signed(&key).expect("self-signed certificate");
    (cert, key)
}

/// A certificate authority that issues server identities. Test-only key
/// material: a failure to make it is a broken build environment, so its
/// methods panic.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// Set for a deterministic CA: leaves get Ed25519 keys from this seed.
    seed: Option<u8>,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// A CA with a fresh key, named "taps test CA".
    pub fn new() -> Self {
        Self::named("taps test CA")
    }

    /// A CA with a fresh key and its own name (two CAs of one name confuse
    /// chain building).
    pub fn named(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
            seed: None,
        }
    }

    /// A CA whose every key and certificate is a function of `seed`
    /// (Ed25519, fixed serials and dates): for byte-exact replays.
    pub fn deterministic(seed: u8) -> Self {
        let key = ed25519_key([seed; 32]).expect("CA key");
        TestCa {
            issuer: authority("taps deterministic CA", 1, key).expect("CA certificate"),
            seed: Some(seed),
        }
    }

    /// The CA's certificate, for a client's roots.
    pub fn root(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A leaf for `names` (DNS names or IP addresses), valid from
    /// 2025-01-01 for ten years.
    pub fn leaf(&self, names: &[&str]) -> Identity {
        self.leaf_valid(names, (2025, 1, 1), (2035, 1, 1))
    }

    /// A leaf valid between two dates (year, month, day).
    pub fn leaf_valid(&self, names: &[&str], from: (i32, u8, u8), to: (i32, u8, u8)) -> Identity {
        self.issue(names, from, to, IsCa::NoCa)
    }

    /// A server certificate for `names` that is wrongly flagged
    /// basicConstraints CA:TRUE: no client may accept it as an end entity.
    pub fn ca_flagged_leaf(&self, names: &[&str]) -> Identity {
        self.issue(
            names,
            (2025, 1, 1),
            (2035, 1, 1),
            IsCa::Ca(BasicConstraints::Unconstrained),
        )
    }

    fn issue(
        &self,
        names: &[&str],
        from: (i32, u8, u8),
        to: (i32, u8, u8),
        is_ca: IsCa,
    ) -> Identity {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("leaf parameters");
        params.is_ca = is_ca;
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        let key = match self.seed {
            Some(seed) => {
                params.serial_number = Some(rcgen::SerialNumber::from(vec![2]));
                ed25519_key([seed.wrapping_add(1); 32]).expect("leaf key")
            }
            None => KeyPair::generate().expect("leaf key"),
        };
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Identity {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}
