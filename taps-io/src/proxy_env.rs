//! The proxy variables of this process's environment, snapshotted into
//! the core's [`ProxyEnvironment`], whose rules (curl's) decide which
//! proxy, if any, a connection uses. Reading the environment is the only
//! thing done here (ARCHITECTURE.md "Layers": decisions in taps-core,
//! performing them in taps-io); RFC 9623 §4.1 makes a proxy one of the
//! protocol options a candidate may race.

use taps_core::proxy_env::ProxyEnvironment;

/// Reads the proxy variables (`https_proxy`, `HTTPS_PROXY`, `http_proxy`,
/// `all_proxy`, `ALL_PROXY`, `no_proxy`, `NO_PROXY`; never `HTTP_PROXY`,
/// see [`ProxyEnvironment`]) from the process environment now.
///
/// A [`Taps`](crate::Taps) calls it once, when it is built, and keeps the
/// snapshot ([`Taps::proxy_environment`](crate::Taps::proxy_environment)):
/// variables changed later do not affect it, as they would not affect a
/// running curl, and a connection never reads the environment while
/// another thread may be changing it.
///
/// A value that is not UTF-8 is read lossily, so it reaches the proxy
/// parser and fails there with its text shown, rather than vanishing as
/// if unset.
pub fn proxy_environment() -> ProxyEnvironment {
    ProxyEnvironment::from_lookup(|name| {
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    })
}
