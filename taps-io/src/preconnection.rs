//! [`Preconnection`]: what the application wants before a connection
//! exists (RFC 9622 §6): the remote endpoint, transport properties,
//! security parameters and a framer.

use std::borrow::Cow;
use std::time::Duration;

use taps_core::{
    CertificateVerification, EndpointParseError, LocalEndpoint, Message, RemoteEndpoint,
    SecurityParameters, TransportProperties, framer::FramerFactory, race::RaceConfig,
};

use super::error::Error;
use super::{Connection, Taps};
use taps_sys::roots;

/// A connection to be: build it, then initiate it with an adapter's
/// `Taps` ([`Preconnection::initiate`]).
#[derive(Clone, Debug)]
pub struct Preconnection {
    pub(crate) inner: taps_core::Preconnection,
}

impl Preconnection {
    /// A preconnection to `remote` with default properties (a reliable,
    /// ordered stream) and no TLS.
    pub fn new(remote: RemoteEndpoint) -> Self {
        Preconnection {
            inner: taps_core::Preconnection::new(remote),
        }
    }

    /// Parses the remote endpoint (`host:port`, `[2001:db8::1]:443`,
    /// `192.0.2.1:80%eth0`, `example.com:https`).
    ///
    /// # Errors
    ///
    /// When the text is not an endpoint.
    pub fn parse(remote: &str) -> Result<Self, EndpointParseError> {
        Ok(Self::new(remote.parse()?))
    }

    /// Replaces the transport properties (RFC 9622 §6.2, §8.1).
    pub fn with_properties(mut self, properties: TransportProperties) -> Self {
        self.inner.properties = properties;
        self
    }

    /// Uses TLS with these parameters. When they name no trusted roots
    /// (and verification is on), the system's are used.
    pub fn with_security(mut self, security: SecurityParameters) -> Self {
        self.inner.security = Some(security);
        self
    }

    /// Frames messages with `framer` (RFC 9622 §9.1.2), for
    /// [`Connection::send`](super::Connection::send) and
    /// [`Connection::receive`](super::Connection::receive).
    pub fn with_framer(mut self, framer: FramerFactory) -> Self {
        self.inner.framer = Some(framer);
        self
    }

    /// Sets the local endpoint (an address to bind, or an interface every
    /// attempt must leave by).
    pub fn with_local(mut self, local: LocalEndpoint) -> Self {
        self.inner.local = Some(local);
        self
    }

    /// Races with these settings instead of the `Taps`' own (a policy
    /// preset, another Connection Attempt Delay).
    pub fn with_race(mut self, race: RaceConfig) -> Self {
        self.inner.race = Some(race);
        self
    }

    /// Gives up establishing after `timeout` (RFC 9622 §8.1.3 `connTimeout`).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.inner.properties.connection.conn_timeout = Some(timeout);
        self
    }

    /// The core's preconnection.
    pub fn core(&self) -> &taps_core::Preconnection {
        &self.inner
    }

    /// RFC 9622 §7.1 `Initiate` of this preconnection on `taps`
    /// ([`Taps::initiate`](super::Taps::initiate)).
    ///
    /// # Errors
    ///
    /// As [`Taps::initiate`](super::Taps::initiate).
    pub async fn initiate(&self, taps: &Taps) -> Result<Connection, Error> {
        taps.initiate(self).await
    }

    /// RFC 9622 §7.2 `InitiateWithSend` of this preconnection on `taps`
    /// ([`Taps::initiate_with_send`](super::Taps::initiate_with_send)).
    ///
    /// # Errors
    ///
    /// As [`Taps::initiate`](super::Taps::initiate).
    pub async fn initiate_with_send(
        &self,
        taps: &Taps,
        message: Message,
    ) -> Result<Connection, Error> {
        taps.initiate_with_send(self, message).await
    }

    /// The preconnection the core is given: the system's roots filled in
    /// where the application named none. Borrowed when there is nothing to
    /// fill in (no copy per connect).
    pub(crate) fn resolved(&self) -> Result<Cow<'_, taps_core::Preconnection>, Error> {
        let mut pre = Cow::Borrowed(&self.inner);
        if self.inner.security.as_ref().is_some_and(needs_roots)
            && let Some(security) = pre.to_mut().security.as_mut()
        {
            fill_roots(security)?;
        }
        Ok(pre)
    }
}

/// Gives `security` the system's roots when it verifies without any.
pub(crate) fn fill_roots(security: &mut SecurityParameters) -> Result<(), Error> {
    if needs_roots(security) {
        security.trusted_roots = roots::system_roots()?;
    }
    Ok(())
}

/// Whether `security` verifies without roots of its own.
fn needs_roots(security: &SecurityParameters) -> bool {
    security.trusted_roots.is_empty() && security.verification() == CertificateVerification::Verify
}
