//! TLS environments for runs in virtual time (the core takes its
//! [`TlsEnvironment`] from outside).
//!
//! - [`wall_clock`]: ring's algorithms and randomness with the wall clock,
//!   as on a real network, for tests whose certificates are made now.
//! - [`with_random`]: the same, with a random source of the test's own.
//! - [`seeded`]: every random byte a handshake draws (ClientHello random,
//!   key shares, session tickets) comes from a seed and the clock is fixed,
//!   so a run with real TLS repeats byte for byte: the simulator's, and
//!   the determinism tests'. It offers only X25519 key exchange
//!   (x25519-dalek with seeded secrets: ring's own key generation cannot
//!   take a seeded source), and servers must sign with Ed25519, whose
//!   signatures are deterministic. Its randomness is predictable by
//!   construction: never use it on a network.

use std::sync::{Arc, Mutex};

use rustls::crypto::{ActiveKeyExchange, CryptoProvider, SecureRandom, SharedSecret};
use rustls::crypto::{GetRandomFailed, SupportedKxGroup};
use rustls::pki_types::UnixTime;
use rustls::time_provider::TimeProvider;
use rustls::{Error, NamedGroup, PeerMisbehaved};
use taps_core::{Rng, TlsEnvironment};

/// ring's algorithms and randomness, and the wall clock.
pub fn wall_clock() -> TlsEnvironment {
    TlsEnvironment::new(
        Arc::new(rustls::crypto::ring::default_provider()),
        Arc::new(rustls::time_provider::DefaultTimeProvider),
    )
}

/// ring's algorithms and the wall clock, with `random` as the secure
/// random source: for tests of what the core draws from it (DNS query ids).
pub fn with_random(random: &'static dyn SecureRandom) -> TlsEnvironment {
    let provider = CryptoProvider {
        secure_random: random,
        ..rustls::crypto::ring::default_provider()
    };
    TlsEnvironment::new(
        Arc::new(provider),
        Arc::new(rustls::time_provider::DefaultTimeProvider),
    )
}

/// Seeded randomness and a clock fixed at `unix_seconds` (see the module
/// docs). rustls holds its random source and key-exchange groups as
/// `'static`, so each call leaks one small allocation: make one
/// environment per simulated host, not one per connection.
pub fn seeded(seed: u64, unix_seconds: u64) -> TlsEnvironment {
    let source: &'static SeededSource =
        Box::leak(Box::new(SeededSource(Mutex::new(Rng::new(seed)))));
    let provider = CryptoProvider {
        kx_groups: vec![source],
        secure_random: source,
        ..rustls::crypto::ring::default_provider()
    };
    TlsEnvironment::new(Arc::new(provider), Arc::new(FixedTime(unix_seconds)))
}

/// A seeded byte source, serving as both the random source and the X25519
/// group, so one environment's handshakes draw from one stream.
#[derive(Debug)]
struct SeededSource(Mutex<Rng>);

impl SeededSource {
    fn fill_bytes(&self, buf: &mut [u8]) {
        // A poisoned lock still holds a valid generator.
        let mut rng = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for chunk in buf.chunks_mut(8) {
            let bytes = rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

impl SecureRandom for SeededSource {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        self.fill_bytes(buf);
        Ok(())
    }
}

impl SupportedKxGroup for SeededSource {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let mut secret = [0u8; 32];
        self.fill_bytes(&mut secret);
        let secret = x25519_dalek::StaticSecret::from(secret);
        let public = x25519_dalek::PublicKey::from(&secret);
        Ok(Box::new(X25519Exchange {
            secret,
            public: public.to_bytes(),
        }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

/// One X25519 exchange (RFC 7748 §6.1) from a seeded secret.
struct X25519Exchange {
    secret: x25519_dalek::StaticSecret,
    public: [u8; 32],
}

impl ActiveKeyExchange for X25519Exchange {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        let peer: [u8; 32] = peer
            .try_into()
            .map_err(|_| Error::from(PeerMisbehaved::InvalidKeyShare))?;
        let shared = self
            .secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(peer));
        // RFC 7748 §6.1: an all-zero result means a low-order point.
        if !shared.was_contributory() {
            return Err(Error::from(PeerMisbehaved::InvalidKeyShare));
        }
        Ok(SharedSecret::from(&shared.as_bytes()[..]))
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

/// A clock that always reads the same second.
#[derive(Debug)]
struct FixedTime(u64);

impl TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            self.0,
        )))
    }
}
