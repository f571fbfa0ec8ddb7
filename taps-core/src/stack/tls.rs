//! TLS for one attempt or one accepted connection, over rustls 0.23 driven
//! through `read_tls`/`write_tls` on in-memory buffers (RFC 9623 §4.2.3,
//! RFC 8446). This is the only file that names rustls: an upgrade touches
//! nothing else.
//!
//! - Client configurations are built once per distinct
//!   [`SecurityParameters`] and cached by the machine, so the session store
//!   (and with it resumption and 0-RTT) is shared only by connections with
//!   identical security: a ticket won under weaker checks is never used
//!   where stronger ones apply.
//! - rustls's in-memory session store hands out each TLS 1.3 ticket once
//!   (`take_tls13_ticket`), so one ticket is never used by two attempts.
//! - A self-signed server certificate that the caller trusts byte for byte
//!   verifies as its own trust anchor, as OpenSSL and curl accept it:
//!   OpenSSL 3's `req -x509` marks it basicConstraints CA:TRUE, which
//!   WebPKI refuses as an end entity (RFC 5280 §4.2.1.9). Its validity
//!   period (RFC 5280 §4.1.2.5) and name (RFC 9525 §6) are still checked,
//!   and so is the handshake signature (RFC 8446 §4.4.3). System roots and
//!   any other CA get nothing of this: see [`SelfSignedAnchor`].
//! - Certificate pinning wraps that verifier: the chain is verified
//!   first, then the end-entity SPKI must match a pin.
//! - Each certificate failure keeps its detail (dates, names) in
//!   [`TlsFailure`], so the message says what was wrong and what fixes it.
//! - An established stream's session can also be driven straight against
//!   a socket (`read_records`/`write_records`, for
//!   [`crate::machine::CheckedOutTls`]), so its crypto runs where the
//!   application's read or write runs.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::crypto::hash::{Hash, HashAlgorithm};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, Error, OtherError,
    RootCertStore, ServerConfig, ServerConnection, SignatureScheme, SupportedCipherSuite,
};

use crate::security::{CertificateVerification, SecurityParameters};
use crate::trace::{CertText, TlsDetails, TlsFailure};

/// The most plaintext a TLS layer buffers for sending before it pushes back.
const MAX_EARLY_DATA: u32 = 16 * 1024;

/// A TLS session as the protocol stack sees it.
pub(crate) struct TlsSession {
    conn: rustls::Connection,
    /// This side's ALPN list (offered or accepted), to name in an ALPN
    /// failure: rustls does not hand its configuration back.
    alpn_list: CertText,
    /// The peer's close_notify was processed: no more application data.
    peer_closed: bool,
}

/// What [`TlsSession::read_plaintext`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plaintext {
    /// This many bytes were copied out.
    Data(usize),
    /// Nothing decrypted is waiting: more records are needed.
    Empty,
    /// The peer closed (close_notify) and everything was read.
    Closed,
}

/// Why a TLS configuration could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfigError(pub String);

impl core::fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "TLS configuration: {}", self.0)
    }
}

impl std::error::Error for TlsConfigError {}

/// A ready-to-use client configuration for one set of security parameters.
#[derive(Clone)]
pub(crate) struct ClientTls {
    config: Arc<ClientConfig>,
}

impl core::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ClientTls")
    }
}

/// A ready-to-use server configuration.
#[derive(Clone)]
pub(crate) struct ServerTls {
    config: Arc<ServerConfig>,
}

/// Where TLS takes its cryptography, randomness and clock from: a rustls
/// [`CryptoProvider`] and a [`TimeProvider`](rustls::time_provider::TimeProvider).
///
/// The core never reaches for the operating system's randomness or clock
/// (ARCHITECTURE.md "The core contract"), so it is handed both: `taps-sys`
/// makes the system's (ring and the wall clock), which `taps-io` fills in
/// when a configuration names none; the simulator and the test kit make
/// seeded ones, so a run with real TLS replays byte for byte.
#[derive(Clone)]
pub struct TlsEnvironment {
    provider: Arc<CryptoProvider>,
    time: Arc<dyn rustls::time_provider::TimeProvider>,
}

impl core::fmt::Debug for TlsEnvironment {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsEnvironment")
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl TlsEnvironment {
    /// TLS with `provider`'s algorithms and randomness, and `time`'s clock
    /// for certificate validity.
    pub fn new(
        provider: Arc<CryptoProvider>,
        time: Arc<dyn rustls::time_provider::TimeProvider>,
    ) -> Self {
        TlsEnvironment { provider, time }
    }

    /// The provider's secure random source. DNS query ids come from it too
    /// (RFC 5452 §9.2 wants them unpredictable): the operating system's
    /// CSPRNG in the system's environment, a seeded stream in the test
    /// kit's, so simulated runs still repeat.
    pub(crate) fn secure_random(&self) -> &'static dyn rustls::crypto::SecureRandom {
        self.provider.secure_random
    }

    /// The hash RFC 7469 §2.4 pins: SHA-256 over the DER
    /// SubjectPublicKeyInfo of a certificate, with the provider's SHA-256.
    /// `None` if the certificate cannot be parsed or the provider has no
    /// SHA-256.
    pub fn spki_sha256(&self, cert: &CertificateDer<'_>) -> Option<[u8; 32]> {
        spki_sha256(sha256(&self.provider)?, cert)
    }
}

/// The provider's SHA-256, from any of its cipher suites that hashes with it.
fn sha256(provider: &CryptoProvider) -> Option<&'static dyn Hash> {
    provider.cipher_suites.iter().find_map(|suite| {
        let hash = match suite {
            SupportedCipherSuite::Tls13(s) => s.common.hash_provider,
            SupportedCipherSuite::Tls12(s) => s.common.hash_provider,
        };
        (hash.algorithm() == HashAlgorithm::SHA256).then_some(hash)
    })
}

/// SHA-256 with `hash` over `cert`'s SubjectPublicKeyInfo.
fn spki_sha256(hash: &dyn Hash, cert: &CertificateDer<'_>) -> Option<[u8; 32]> {
    let cert = webpki::EndEntityCert::try_from(cert).ok()?;
    hash.hash(cert.subject_public_key_info().as_ref())
        .as_ref()
        .try_into()
        .ok()
}

fn roots(params: &SecurityParameters) -> Result<RootCertStore, TlsConfigError> {
    let mut store = RootCertStore::empty();
    for root in &params.trusted_roots {
        store
            .add(root.clone())
            .map_err(|e| TlsConfigError(format!("bad trusted root: {e}")))?;
    }
    Ok(store)
}

/// The environment TLS runs in, or the error that says none was given.
fn environment(env: Option<&TlsEnvironment>) -> Result<&TlsEnvironment, TlsConfigError> {
    env.ok_or_else(|| {
        TlsConfigError(
            "the machine has no TLS environment (Config::tls); taps-io fills in the system's"
                .into(),
        )
    })
}

impl ClientTls {
    pub(crate) fn new(
        params: &SecurityParameters,
        env: Option<&TlsEnvironment>,
    ) -> Result<Self, TlsConfigError> {
        let env = environment(env)?;
        let provider = env.provider.clone();
        let builder = ClientConfig::builder_with_details(provider.clone(), env.time.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsConfigError(e.to_string()))?;
        let verifier: Arc<dyn ServerCertVerifier> = match params.verification() {
            CertificateVerification::DisabledForTesting => Arc::new(AcceptAnything(provider)),
            CertificateVerification::Verify => {
                let roots = roots(params)?;
                if roots.is_empty() {
                    return Err(TlsConfigError(
                        "no trusted roots given; refusing to verify against nothing".into(),
                    ));
                }
                let pin_hash = sha256(&provider);
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| TlsConfigError(e.to_string()))?;
                let webpki: Arc<dyn ServerCertVerifier> = Arc::new(SelfSignedAnchor {
                    inner: webpki,
                    trusted: params.trusted_roots.clone(),
                });
                if params.pinned_spki_sha256.is_empty() {
                    webpki
                } else {
                    let sha256 = pin_hash.ok_or_else(|| {
                        TlsConfigError(
                            "the crypto provider has no SHA-256 to check pins with".into(),
                        )
                    })?;
                    Arc::new(Pinned {
                        inner: webpki,
                        pins: params.pinned_spki_sha256.clone(),
                        sha256,
                    })
                }
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &params.client_identity {
            None => builder.with_no_client_auth(),
            Some(id) => builder
                .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                .map_err(|e| TlsConfigError(format!("client certificate: {e}")))?,
        };
        config.alpn_protocols = params.alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
        config.resumption =
            rustls::client::Resumption::in_memory_sessions(params.session_cache.max_sessions);
        config.enable_early_data = params.allow_early_data;
        Ok(ClientTls {
            config: Arc::new(config),
        })
    }

    /// A session for one attempt towards `server_name`, offering `alpn`
    /// instead of the configuration's list when given (an HTTPS record's
    /// protocols, RFC 9460 §7.1).
    pub(crate) fn session(
        &self,
        server_name: &str,
        alpn: Option<Vec<Vec<u8>>>,
    ) -> Result<TlsSession, TlsFailure> {
        let name =
            ServerName::try_from(server_name.to_string()).map_err(|_| TlsFailure::BadServerName)?;
        let conn = match alpn {
            None => ClientConnection::new(self.config.clone(), name)
                .map(|c| TlsSession::new(c.into(), &self.config.alpn_protocols)),
            Some(alpn) => ClientConnection::new_with_alpn(self.config.clone(), name, alpn.clone())
                .map(|c| TlsSession::new(c.into(), &alpn)),
        };
        conn.map_err(|e| failure(&e))
    }

    /// The ALPN ids the application offers, most preferred first.
    pub(crate) fn alpn(&self) -> &[Vec<u8>] {
        &self.config.alpn_protocols
    }
}

impl ServerTls {
    pub(crate) fn new(
        params: &SecurityParameters,
        env: Option<&TlsEnvironment>,
    ) -> Result<Self, TlsConfigError> {
        let env = environment(env)?;
        let identity = params
            .server_identity
            .as_ref()
            .ok_or_else(|| TlsConfigError("a TLS listener needs a server identity".into()))?;
        let provider = env.provider.clone();
        let builder = ServerConfig::builder_with_details(provider.clone(), env.time.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsConfigError(e.to_string()))?;
        let builder = if params.require_client_certificate {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(params)?), provider)
                    .build()
                    .map_err(|e| TlsConfigError(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
            .with_single_cert(identity.chain.clone(), identity.key.clone_key())
            .map_err(|e| TlsConfigError(format!("server certificate: {e}")))?;
        config.alpn_protocols = params.alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
        if params.allow_early_data {
            config.max_early_data_size = MAX_EARLY_DATA;
        }
        Ok(ServerTls {
            config: Arc::new(config),
        })
    }

    pub(crate) fn session(&self) -> Result<TlsSession, TlsFailure> {
        let conn = ServerConnection::new(self.config.clone()).map_err(|e| failure(&e))?;
        Ok(TlsSession::new(conn.into(), &self.config.alpn_protocols))
    }
}

impl TlsSession {
    fn new(mut conn: rustls::Connection, alpn: &[Vec<u8>]) -> TlsSession {
        // rustls's own 64 KiB limit makes its writer take only part of a
        // larger write, and `send` hands over whole messages: the rest was
        // lost. The connection layer bounds what it hands over
        // (`IoLimits`), and the records go straight on to the transmit
        // queue, so rustls's buffers never hold more than one write.
        conn.set_buffer_limit(None);
        TlsSession {
            conn,
            alpn_list: CertText::from_fmt(format_args!("{}", AlpnList(alpn))),
            peer_closed: false,
        }
    }

    /// Hands rustls records read from the socket; returns how many bytes
    /// it took (it takes at most one read's worth, and nothing after the
    /// peer's close_notify). Follow with [`TlsSession::process_records`].
    pub(crate) fn feed_records(&mut self, mut records: &[u8]) -> std::io::Result<usize> {
        self.conn.read_tls(&mut records)
    }

    /// Decrypts the records read. An error is final for the session.
    pub(crate) fn process_records(&mut self) -> Result<(), TlsFailure> {
        let state = self
            .conn
            .process_new_packets()
            .map_err(|e| self.with_alpn(failure(&e)))?;
        self.peer_closed |= state.peer_has_closed();
        Ok(())
    }

    /// An ALPN failure names this side's protocol list, which only the
    /// session knows (rustls keeps it in its configuration).
    fn with_alpn(&self, failure: TlsFailure) -> TlsFailure {
        let TlsFailure::NoApplicationProtocol { server, .. } = failure else {
            return failure;
        };
        TlsFailure::NoApplicationProtocol {
            ours: self.alpn_list,
            server,
        }
    }

    /// Copies decrypted application data into `buf` (not empty).
    pub(crate) fn read_plaintext(&mut self, buf: &mut [u8]) -> Plaintext {
        match self.conn.reader().read(buf) {
            Ok(0) if !buf.is_empty() => Plaintext::Closed,
            Ok(n) => Plaintext::Data(n),
            Err(_) if self.peer_closed => Plaintext::Closed,
            Err(_) => Plaintext::Empty,
        }
    }

    /// The peer's close_notify was processed.
    pub(crate) fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Appends every waiting record to `wire`.
    pub(crate) fn take_records(&mut self, wire: &mut Vec<u8>) {
        while self.conn.wants_write() {
            match self.conn.write_tls(wire) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    /// Feeds bytes from the peer; decrypted application data is appended to
    /// `plaintext`. An error is final for the session.
    pub(crate) fn receive(
        &mut self,
        mut data: &[u8],
        plaintext: &mut VecDeque<u8>,
    ) -> Result<(), TlsFailure> {
        let mut chunk = [0u8; 4096];
        loop {
            if !data.is_empty() {
                match self.conn.read_tls(&mut data) {
                    // rustls takes nothing after the peer's close_notify;
                    // RFC 8446 §6.1 says to ignore what follows it, and
                    // looping on it would never end.
                    Ok(0) => data = &[],
                    Ok(_) => {}
                    Err(_) => return Err(TlsFailure::ProtocolError),
                }
            }
            self.process_records()?;
            // A server reads 0-RTT data through its own reader.
            if let rustls::Connection::Server(server) = &mut self.conn
                && let Some(mut early) = server.early_data()
            {
                while let Ok(n @ 1..) = early.read(&mut chunk) {
                    plaintext.extend(&chunk[..n]);
                }
            }
            loop {
                match self.conn.reader().read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => plaintext.extend(&chunk[..n]),
                }
            }
            if data.is_empty() {
                return Ok(());
            }
        }
    }

    /// Moves pending TLS records into `wire`.
    pub(crate) fn drain_output(&mut self, wire: &mut VecDeque<u8>) {
        let mut sink = QueueWriter(wire);
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    /// Encrypts application data (buffered by rustls until the handshake is
    /// done).
    pub(crate) fn send(&mut self, data: &[u8]) {
        // Without rustls's buffer limit (see `new`) the writer takes all
        // of it; the connection layer bounds what it hands over.
        let _ = self.conn.writer().write_all(data);
    }

    /// Writes as much of `data` as TLS 1.3 early data allows; 0 when this
    /// session has no ticket that permits it.
    pub(crate) fn send_early(&mut self, data: &[u8]) -> usize {
        match &mut self.conn {
            rustls::Connection::Client(c) => match c.early_data() {
                Some(mut early) => early.write(data).unwrap_or(0),
                None => 0,
            },
            rustls::Connection::Server(_) => 0,
        }
    }

    /// After the handshake: whether the server took the early data.
    pub(crate) fn early_data_accepted(&self) -> bool {
        match &self.conn {
            rustls::Connection::Client(c) => c.is_early_data_accepted(),
            rustls::Connection::Server(_) => false,
        }
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    pub(crate) fn close_notify(&mut self) {
        self.conn.send_close_notify();
    }

    /// The negotiated ALPN protocol.
    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// What the handshake negotiated, for the trace; `None` while it runs.
    pub(crate) fn details(&self) -> Option<TlsDetails> {
        if self.conn.is_handshaking() {
            return None;
        }
        // Written straight into inline text: a handshake's record
        // allocates nothing (ARCHITECTURE.md "The core contract" rule 4).
        let debug = |v: Option<&dyn core::fmt::Debug>| match v {
            Some(v) => CertText::from_fmt(format_args!("{v:?}")),
            None => CertText::new(""),
        };
        let end_entity = self
            .conn
            .peer_certificates()
            .and_then(|chain| chain.first());
        let peer_subject = CertText::new(
            end_entity
                .and_then(|cert| subject_common_name(cert))
                .unwrap_or(""),
        );
        // The end entity's subjectAltName DNS names, as WebPKI reads them.
        let peer_names =
            match end_entity.and_then(|cert| webpki::EndEntityCert::try_from(cert).ok()) {
                Some(cert) => CertText::from_fmt(format_args!("{}", QuotedNames(&cert))),
                None => CertText::new(""),
            };
        let version = self.conn.protocol_version();
        let suite = self.conn.negotiated_cipher_suite().map(|s| s.suite());
        Some(TlsDetails {
            version: debug(version.as_ref().map(|v| v as &dyn core::fmt::Debug)),
            cipher_suite: debug(suite.as_ref().map(|s| s as &dyn core::fmt::Debug)),
            alpn: match self.conn.alpn_protocol().map(core::str::from_utf8) {
                Some(Ok(alpn)) => CertText::new(alpn),
                Some(Err(_)) => CertText::new("(not UTF-8)"),
                None => CertText::new(""),
            },
            peer_subject,
            peer_names,
            resumed: self.resumed(),
            early_data_accepted: self.early_data_accepted(),
        })
    }

    /// Whether this session resumed an earlier one.
    pub(crate) fn resumed(&self) -> bool {
        matches!(
            self.conn.handshake_kind(),
            Some(rustls::HandshakeKind::Resumed)
        )
    }
}

/// One DER element (X.690 §8.1): its tag, its contents and what follows.
/// `None` for anything truncated or longer than the input says; only the
/// definite lengths DER allows (X.690 §10.1), up to four length octets.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || rest.len() < octets {
            return None;
        }
        let (len, rest) = rest.split_at(octets);
        (
            len.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b)),
            rest,
        )
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The subject's common name (the last `CN`, OID 2.5.4.3) of a DER
/// certificate, for the trace: RFC 5280 §4.1 (Certificate, TBSCertificate,
/// Name). WebPKI checks names and chains but does not read the subject, and
/// a full X.509 parser would be a dependency for one line of a trace; this
/// walks only the fields before the subject. `None` when there is no
/// readable common name or the encoding is not what RFC 5280 says.
fn subject_common_name(cert: &[u8]) -> Option<&str> {
    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const OID: u8 = 0x06;
    const VERSION: u8 = 0xa0; // [0] EXPLICIT, present from v2 on
    const COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];
    let (SEQUENCE, certificate, _) = der_element(cert)? else {
        return None;
    };
    let (SEQUENCE, mut tbs, _) = der_element(certificate)? else {
        return None;
    };
    if tbs.first() == Some(&VERSION) {
        tbs = der_element(tbs)?.2;
    }
    // serialNumber, signature, issuer, validity: skipped whole.
    for _ in 0..4 {
        tbs = der_element(tbs)?.2;
    }
    let (SEQUENCE, mut name, _) = der_element(tbs)? else {
        return None;
    };
    let mut common_name = None;
    while !name.is_empty() {
        let (tag, mut rdn, rest) = der_element(name)?;
        name = rest;
        if tag != SET {
            return None;
        }
        while !rdn.is_empty() {
            let (tag, attribute, rest) = der_element(rdn)?;
            rdn = rest;
            let (OID, oid, value) = der_element(attribute)? else {
                return None;
            };
            if tag != SEQUENCE || oid != COMMON_NAME {
                continue;
            }
            // UTF8String, PrintableString, IA5String: text as it stands.
            if let Some((0x0c | 0x13 | 0x16, text, _)) = der_element(value) {
                common_name = core::str::from_utf8(text).ok();
            }
        }
    }
    common_name
}

/// ALPN protocol ids as `h2, http/1.1`.
struct AlpnList<'a>(&'a [Vec<u8>]);

impl core::fmt::Display for AlpnList<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&String::from_utf8_lossy(p))?;
        }
        Ok(())
    }
}

/// A certificate's DNS names as `` `a`, `b` ``.
struct QuotedNames<'a, 'c>(&'a webpki::EndEntityCert<'c>);

impl core::fmt::Display for QuotedNames<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, name) in self.0.valid_dns_names().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{name}`")?;
        }
        Ok(())
    }
}

struct QueueWriter<'a>(&'a mut VecDeque<u8>);

impl Write for QueueWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A readable reason for a rustls error.
fn failure(e: &Error) -> TlsFailure {
    match e {
        Error::InvalidCertificate(c) => match c {
            CertificateError::Expired => TlsFailure::CertificateExpired {
                not_after: None,
                now: None,
            },
            CertificateError::ExpiredContext { time, not_after } => {
                TlsFailure::CertificateExpired {
                    not_after: Some(not_after.as_secs()),
                    now: Some(time.as_secs()),
                }
            }
            CertificateError::NotValidYet => TlsFailure::CertificateNotYetValid {
                not_before: None,
                now: None,
            },
            CertificateError::NotValidYetContext { time, not_before } => {
                TlsFailure::CertificateNotYetValid {
                    not_before: Some(not_before.as_secs()),
                    now: Some(time.as_secs()),
                }
            }
            CertificateError::NotValidForName => TlsFailure::NameMismatch {
                expected: CertText::new(""),
                presented: CertText::new(""),
            },
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => {
                let names: Vec<String> = presented
                    .iter()
                    .map(|n| format!("`{}`", presented_name(n)))
                    .collect();
                TlsFailure::NameMismatch {
                    expected: CertText::new(&expected.to_str()),
                    presented: CertText::new(&names.join(", ")),
                }
            }
            CertificateError::UnknownIssuer => TlsFailure::UnknownIssuer,
            CertificateError::Other(other)
                if matches!(
                    other.0.downcast_ref::<webpki::Error>(),
                    Some(webpki::Error::CaUsedAsEndEntity)
                ) =>
            {
                TlsFailure::CaCertificateNotTrusted
            }
            CertificateError::Revoked => TlsFailure::Revoked,
            CertificateError::BadSignature => TlsFailure::BadSignature,
            CertificateError::ApplicationVerificationFailure => TlsFailure::PinMismatch,
            _ => TlsFailure::CertificateInvalid,
        },
        // RFC 7301 §3.2: the server answers an ALPN offer it cannot
        // meet with this alert; say so instead of a bare alert number.
        Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol) => {
            TlsFailure::NoApplicationProtocol {
                ours: CertText::new(""),
                server: false,
            }
        }
        Error::AlertReceived(alert) => TlsFailure::AlertReceived(u8::from(*alert)),
        Error::NoApplicationProtocol => TlsFailure::NoApplicationProtocol {
            ours: CertText::new(""),
            server: true,
        },
        Error::NoCertificatesPresented => TlsFailure::NoCertificate,
        Error::InvalidMessage(_)
        | Error::PeerMisbehaved(_)
        | Error::InappropriateMessage { .. } => TlsFailure::ProtocolError,
        Error::PeerIncompatible(_) => TlsFailure::Incompatible,
        _ => TlsFailure::HandshakeFailed,
    }
}

/// The name inside WebPKI's rendering of a subjectAltName entry
/// (`DnsName("example.org")`, `IpAddress(192.0.2.1)`): what a person
/// would type. Anything else is shown as WebPKI wrote it.
fn presented_name(entry: &str) -> &str {
    ["DnsName(\"", "IpAddress(", "UniformResourceIdentifier(\""]
        .iter()
        .find_map(|kind| entry.strip_prefix(kind))
        .and_then(|rest| rest.strip_suffix(')'))
        .map(|inner| inner.trim_end_matches('"'))
        .unwrap_or(entry)
}

/// WebPKI, plus OpenSSL's rule for a trusted self-signed server: a
/// certificate byte-identical to one of the caller's own trusted roots is
/// accepted as its own trust anchor even when it is flagged CA:TRUE
/// (RFC 5280 §4.2.1.9), which WebPKI refuses as an end entity.
///
/// Nothing else is relaxed. The exception needs the exact bytes the caller
/// passed (`SecurityParameters::trusted_roots`), so no CA in the system
/// roots and no certificate it issued gains anything; the name is checked
/// here (RFC 9525 §6); the validity period was already checked by WebPKI
/// before it looked at basicConstraints (`check_issuer_independent_properties`
/// checks validity first; the test `an_expired_trusted_self_signed_ca_cert_still_fails_as_expired`
/// holds that order to account); and the handshake signature goes through
/// WebPKI as for any certificate (RFC 8446 §4.4.3).
#[derive(Debug)]
struct SelfSignedAnchor {
    inner: Arc<WebPkiServerVerifier>,
    /// The caller's trusted roots, compared byte for byte.
    trusted: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for SelfSignedAnchor {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(CertificateError::Other(other)))
                if matches!(
                    other.0.downcast_ref::<webpki::Error>(),
                    Some(webpki::Error::CaUsedAsEndEntity)
                ) && self
                    .trusted
                    .iter()
                    .any(|t| t.as_ref() == end_entity.as_ref()) =>
            {
                let cert = webpki::EndEntityCert::try_from(end_entity)
                    .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
                cert.verify_is_valid_for_subject_name(server_name)
                    .map_err(|e| match e {
                        webpki::Error::CertNotValidForName(cx) => {
                            Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                                expected: cx.expected,
                                presented: cx.presented,
                            })
                        }
                        e => Error::InvalidCertificate(CertificateError::Other(OtherError(
                            Arc::new(e),
                        ))),
                    })?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Verifies the chain (see [`SelfSignedAnchor`]), then requires an SPKI
/// pin match.
struct Pinned {
    inner: Arc<dyn ServerCertVerifier>,
    pins: Vec<[u8; 32]>,
    /// The provider's SHA-256.
    sha256: &'static dyn Hash,
}

impl core::fmt::Debug for Pinned {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pinned")
            .field("pins", &self.pins.len())
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let verified =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
        let digest = spki_sha256(self.sha256, end_entity)
            .ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if self.pins.contains(&digest) {
            Ok(verified)
        } else {
            Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `danger_disable_verification`: checks signatures (so the handshake is
/// still a real TLS handshake) but trusts any certificate.
#[derive(Debug)]
struct AcceptAnything(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_common_name_is_read_from_a_real_certificate() {
        let identity = taps_testkit::pki::openssl_style_self_signed(
            &["localhost"],
            (2025, 1, 1),
            (2035, 1, 1),
        );
        assert_eq!(subject_common_name(&identity.chain[0]), Some("localhost"));
    }

    #[test]
    fn a_truncated_or_altered_certificate_gives_no_name_and_never_panics() {
        let identity = taps_testkit::pki::openssl_style_self_signed(
            &["localhost"],
            (2025, 1, 1),
            (2035, 1, 1),
        );
        let der: &[u8] = &identity.chain[0];
        // Every prefix: the outer length no longer fits, so nothing is read.
        for len in 0..der.len() {
            assert_eq!(
                subject_common_name(&der[..len]),
                None,
                "prefix of {len} bytes"
            );
        }
        // Every single byte flipped: whatever comes out, it comes out.
        let mut bytes = der.to_vec();
        for i in 0..bytes.len() {
            bytes[i] ^= 0xff;
            let _ = subject_common_name(&bytes);
            bytes[i] ^= 0xff;
        }
        // Length octets beyond what DER allows here.
        assert_eq!(der_element(&[0x30, 0x85, 1, 0, 0, 0, 0]), None);
        assert_eq!(der_element(&[0x30, 0x80]), None);
    }

    #[test]
    fn alpn_refusals_read_as_an_alpn_mismatch_on_both_sides() {
        // RFC 7301 §3.2: the client receives the server's
        // no_application_protocol alert; the server fails on its own.
        let client = failure(&Error::AlertReceived(
            rustls::AlertDescription::NoApplicationProtocol,
        ));
        let server = failure(&Error::NoApplicationProtocol);
        assert!(
            matches!(
                client,
                TlsFailure::NoApplicationProtocol { server: false, .. }
            ),
            "{client:?}"
        );
        assert!(
            matches!(
                server,
                TlsFailure::NoApplicationProtocol { server: true, .. }
            ),
            "{server:?}"
        );
        assert!(client.to_string().starts_with("ALPN mismatch: "));
        // Other alerts keep their number.
        assert_eq!(
            failure(&Error::AlertReceived(
                rustls::AlertDescription::HandshakeFailure
            )),
            TlsFailure::AlertReceived(40)
        );
    }

    #[test]
    fn presented_names_are_shown_as_typed() {
        assert_eq!(presented_name("DnsName(\"example.org\")"), "example.org");
        assert_eq!(presented_name("IpAddress(192.0.2.1)"), "192.0.2.1");
        assert_eq!(presented_name("DirectoryName"), "DirectoryName");
    }
}
