//! OS glue that every runtime adapter shares: the one place where taps
//! talks to the operating system.
//!
//! The state machine (`taps-core`) never depends on this crate: it only
//! describes what it wants (open a TCP socket on this path, send a DNS
//! datagram) and the adapters (`taps-tokio`, `taps-smol`, through
//! `taps-io`) use the functions here to do it, so both runtimes open
//! sockets, list interfaces and read the system's configuration the same
//! way.
//!
//! - [`system_config`]: the core's `Config` with this system's DNS servers,
//!   hosts file, TLS environment and a fresh seed: where an embedder of
//!   `taps-core` starts.
//! - [`socket`]: TCP, listener and DNS sockets through socket2 (socket(2),
//!   connect(2), socket(7), tcp(7), ipv6(7), mptcp(7)), and the mapping of
//!   OS errors to [`FailureReason`](taps_core::FailureReason).
//! - [`interfaces`]: the interface list from getifaddrs(3), classified
//!   through `/sys/class/net` (sysfs-class-net), as
//!   [`Interface`](taps_core::Interface) values for path derivation
//!   (RFC 9623 §4.1.1.2).
//! - [`dns_config`]: `/etc/resolv.conf` (resolv.conf(5)) and `/etc/hosts`
//!   (hosts(5)) read from disk and parsed by the core's own parsers.
//! - [`monitor`]: interface and default-route changes from rtnetlink(7)
//!   (Linux), with a polling fallback elsewhere (RFC 9622 §8.3.2 path
//!   change events).
//! - [`routes`]: the default routes, which put the primary interface first
//!   in the list.
//! - [`roots`]: the system's trusted root certificates.
//! - [`tls`]: the system's TLS environment (ring, the OS's randomness and
//!   the wall clock), which the core is handed.
//!
//! # Platforms
//!
//! Unix only; Linux is the platform this is built and tested on. Elsewhere
//! the Linux-only parts degrade: `SO_BINDTODEVICE` is an `Unsupported`
//! setup error, Fast Open and MPTCP are reported as not in use, interface
//! kinds fall back to the loopback flag (no `/sys/class/net`), and the path
//! monitor polls instead of listening to netlink.
//!
//! # No unsafe code
//!
//! The crate forbids `unsafe`. System calls go through std, socket2 and,
//! for what those two do not wrap, nix's safe wrappers: getifaddrs(3) and
//! if_nametoindex(3) (`nix::ifaddrs`, `nix::net::if_`) and the
//! `TCP_FASTOPEN_CONNECT` setsockopt(2) (`nix::sys::socket::sockopt`).
//! rtnetlink goes through netlink-sys's socket and netlink-packet-route's
//! messages (the route dump and the path monitor).
//!
//! # Errors
//!
//! Every function returns [`io::Error`]s whose message says what was being
//! done (`"connect to 192.0.2.1:443: Connection refused (os error 111)"`).
//! The OS error code stays reachable through [`os_error_code`], and
//! [`socket::failure_reason`] turns an error into the core's failure reason.

#![forbid(unsafe_code)]

use std::error::Error;
use std::fmt;
use std::io;

#[cfg(not(unix))]
compile_error!("taps-sys supports Unix only");

mod config;
pub mod dns_config;
pub mod interfaces;
pub mod monitor;
pub mod roots;
pub mod routes;
pub mod socket;
pub mod tcp_metrics;
pub mod tls;

pub use config::{random_seed, system_config};

/// At what step an operation failed; decides whether an error is a socket
/// setup failure or a failure of the connection itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Creating or configuring a socket, before any packet left.
    Setup,
    /// Connecting, or anything after.
    Connect,
    /// Reading configuration or system state.
    Other,
}

/// An [`io::Error`] with a note of what was being done. It is stored inside
/// the returned `io::Error` (keeping the original's kind) so the caller sees
/// one readable message, and [`os_error_code`] can still find the code.
#[derive(Debug)]
struct Context {
    what: String,
    stage: Stage,
    source: io::Error,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

/// The Display already ends with the cause's message, so `source` gives
/// nothing more: the text appears once in a chain. [`os_error_code`]
/// still finds the cause's code.
impl Error for Context {}

/// Wraps `err` with a description of what failed, keeping its kind.
pub(crate) fn context(err: io::Error, stage: Stage, what: impl Into<String>) -> io::Error {
    io::Error::new(
        err.kind(),
        Context {
            what: what.into(),
            stage,
            source: err,
        },
    )
}

/// The innermost [`Context`] of `err`, if this module made it.
fn find_context(err: &io::Error) -> Option<&Context> {
    // Nesting is at most a couple of levels deep; the bound only guards
    // against a pathological chain built by someone else.
    let mut current: &io::Error = err;
    let mut found = None;
    for _ in 0..8 {
        let Some(ctx) = current.get_ref().and_then(|e| e.downcast_ref::<Context>()) else {
            break;
        };
        found = Some(ctx);
        current = &ctx.source;
    }
    found
}

/// Whether `err` came from creating or configuring a socket (as opposed to
/// connecting it).
pub(crate) fn is_setup_error(err: &io::Error) -> bool {
    find_context(err).is_some_and(|c| c.stage == Stage::Setup)
}

/// The operating system's error code (`errno`) behind `err`, also when this
/// module wrapped it with context.
pub fn os_error_code(err: &io::Error) -> Option<i32> {
    err.raw_os_error()
        .or_else(|| find_context(err).and_then(|c| c.source.raw_os_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_kind_code_and_message() {
        let inner = io::Error::from_raw_os_error(111);
        let kind = inner.kind();
        let err = context(inner, Stage::Connect, "connect to 192.0.2.1:80");
        assert_eq!(err.kind(), kind);
        assert_eq!(os_error_code(&err), Some(111));
        assert!(!is_setup_error(&err));
        let text = err.to_string();
        assert!(text.starts_with("connect to 192.0.2.1:80: "), "{text}");

        let nested = context(err, Stage::Setup, "outer");
        assert_eq!(os_error_code(&nested), Some(111));
        // The innermost stage decides.
        assert!(!is_setup_error(&nested));

        let plain = io::Error::other("no code");
        assert_eq!(os_error_code(&plain), None);
        assert!(!is_setup_error(&plain));
    }
}
