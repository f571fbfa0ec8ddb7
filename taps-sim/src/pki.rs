//! The scenario's public key infrastructure for `tls = "real"` servers: a
//! test certificate authority the client trusts, and one leaf certificate
//! per server for its `names`, all made from the run's seed.
//!
//! Everything here is a function of the seed, so a run replays byte for
//! byte: keys are Ed25519 (RFC 8032 signatures are deterministic, unlike
//! ECDSA's) made from 32 seeded bytes, and serial numbers and validity
//! dates are fixed; the test kit's [`taps_testkit::pki`] makes the keys and
//! the authorities. The TLS clock of the run
//! ([`TLS_CLOCK_UNIX`]) lies inside the normal validity period, so the
//! `expired` and `not-yet-valid` certificates fail for the reason they name.
//!
//! A second authority, which the client does not trust, signs the
//! certificates of servers with `cert = "other-ca"`.

use core::fmt;

use rcgen::{CertificateParams, CertifiedIssuer, DnType, KeyPair, SerialNumber};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use taps_core::{Identity, Rng};
use taps_testkit::pki::{self, ed25519_key};

use crate::scenario::Cert;

/// The fixed wall clock TLS sees in a simulation: 2026-05-28 (Unix
/// seconds). Certificate validity is judged against it, and it is what makes
/// session tickets' ages repeat.
pub const TLS_CLOCK_UNIX: u64 = 1_780_000_000;

/// Why certificates could not be made (rcgen refused a value; the scenario
/// parser checks names first, so this is not expected).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiError(pub String);

impl fmt::Display for PkiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot make the scenario's test certificates: {}",
            self.0
        )
    }
}

impl std::error::Error for PkiError {}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError(e.to_string())
    }
}

/// The trusted authority and the untrusted one, made from one seed.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    other: CertifiedIssuer<'static, KeyPair>,
    rng: Rng,
    serial: u8,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

/// An Ed25519 key pair from the next 32 bytes of `rng`.
fn ed25519(rng: &mut Rng) -> Result<KeyPair, PkiError> {
    let mut seed = [0; 32];
    for chunk in seed.chunks_exact_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    Ok(ed25519_key(seed)?)
}

/// A certificate authority with the next key of `rng`.
fn authority(
    name: &str,
    serial: u8,
    rng: &mut Rng,
) -> Result<CertifiedIssuer<'static, KeyPair>, PkiError> {
    Ok(pki::authority(name, serial, ed25519(rng)?)?)
}

impl Pki {
    /// The authorities of a run with this seed.
    pub fn new(seed: u64) -> Result<Pki, PkiError> {
        // A stream of its own, apart from the machine's and the world's.
        let mut rng = Rng::new(seed ^ 0x504b_495f_4341_5f31);
        let ca = authority("taps-sim scenario CA", 1, &mut rng)?;
        let other = authority("taps-sim untrusted CA", 2, &mut rng)?;
        Ok(Pki {
            ca,
            other,
            rng,
            serial: 16,
        })
    }

    /// The certificate the client trusts.
    pub fn root(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// A server identity for `names` (DNS names or IP addresses), as `cert`
    /// says: signed by the trusted authority and valid now, or broken in one
    /// way. Call in a fixed order (the servers' order) for repeatable keys.
    pub fn leaf(&mut self, names: &[String], cert: Cert) -> Result<Identity, PkiError> {
        let mut params = CertificateParams::new(names.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().map_or("", String::as_str));
        self.serial = self.serial.wrapping_add(1);
        params.serial_number = Some(SerialNumber::from(vec![self.serial]));
        let (from, to) = match cert {
            Cert::Ok | Cert::OtherCa => ((2025, 1, 1), (2035, 1, 1)),
            Cert::Expired => ((2020, 1, 1), (2021, 1, 1)),
            Cert::NotYetValid => ((2030, 1, 1), (2035, 1, 1)),
        };
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        let key = ed25519(&mut self.rng)?;
        let issuer = match cert {
            Cert::OtherCa => &self.other,
            _ => &self.ca,
        };
        let leaf = params.signed_by(&key, issuer)?;
        Ok(Identity {
            chain: vec![leaf.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_certificates() {
        let make = |seed| {
            let mut pki = Pki::new(seed).unwrap();
            let leaf = pki.leaf(&["example.com".into()], Cert::Ok).unwrap();
            (pki.root(), leaf.chain[0].clone())
        };
        assert_eq!(make(7), make(7));
        assert_ne!(make(7).0, make(8).0);
    }

    #[test]
    fn addresses_become_ip_subject_alternative_names() {
        let mut pki = Pki::new(1).unwrap();
        assert!(
            pki.leaf(&["192.0.2.1".into(), "*.example.com".into()], Cert::Expired)
                .is_ok()
        );
    }
}
