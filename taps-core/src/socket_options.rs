//! TCP socket options decided from a Connection's properties, and what the
//! adapter reports became of them, so that a Connection's properties read
//! back what its socket really has (RFC 9622 §6.2: a property queried on a
//! Connection gives "the actual value"; never `true` for a feature the
//! socket does not have).
//!
//! - §6.2.10 `keepAlive` and §8.1.4 `keepAliveTimeout`: keep-alive probes
//!   (RFC 1122 §4.2.3.6; `SO_KEEPALIVE`, with the timeout as the idle time
//!   before the first probe and between probes, `TCP_KEEPIDLE` and
//!   `TCP_KEEPINTVL`).
//! - §8.2 TCP User Timeout (RFC 5482): `tcp.userTimeoutEnabled` with
//!   `tcp.userTimeoutValue` sets how long sent data may stay unacknowledged
//!   before the connection is dropped (`TCP_USER_TIMEOUT`). taps sets the
//!   local timeout; the option itself is not sent to the peer (Linux has no
//!   UTO option), which the read-back does not claim either.
//!
//! The machine asks in [`Output::OpenTcp`](crate::Output::OpenTcp), the
//! adapter answers with [`Input::SocketOptionsApplied`](crate::Input), and
//! a keep-alive the application required but the socket refused fails
//! that attempt (RFC 9622 §6.2: Require means only protocols that provide
//! it).

use core::time::Duration;

use crate::properties::{Preference, TransportProperties};

/// The options the machine asks for on an attempt's TCP socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpSocketOptions {
    /// Send keep-alive probes (`SO_KEEPALIVE`).
    pub keep_alive: bool,
    /// Idle time before the first probe and between probes (`TCP_KEEPIDLE`,
    /// `TCP_KEEPINTVL`); `None`: the system's (two hours on Linux).
    pub keep_alive_idle: Option<Duration>,
    /// How long sent data may go unacknowledged before the connection is
    /// dropped (`TCP_USER_TIMEOUT`); `None`: the system's.
    pub user_timeout: Option<Duration>,
}

impl TcpSocketOptions {
    /// What `properties` ask of a TCP socket: keep-alive when `keepAlive`
    /// is Require or Prefer or a `keepAliveTimeout` is set (§8.1.4: setting
    /// it "enables keep-alive"), and the user timeout when §8.2's
    /// `userTimeoutEnabled` is set with a value.
    pub fn for_properties(properties: &TransportProperties) -> Self {
        let keep_alive_timeout = properties.connection.keep_alive_timeout;
        let uto = properties.connection.tcp_user_timeout;
        TcpSocketOptions {
            keep_alive: properties.selection.keep_alive.wants() || keep_alive_timeout.is_some(),
            keep_alive_idle: keep_alive_timeout,
            user_timeout: uto.value.filter(|_| uto.enabled),
        }
    }

    /// Whether anything differs from a plain socket's defaults (then the
    /// adapter has nothing to set and nothing to report).
    pub fn is_plain(&self) -> bool {
        *self == TcpSocketOptions::default()
    }

    /// Whether the properties require keep-alive, so a socket without it
    /// cannot serve the Connection.
    pub(crate) fn keep_alive_required(properties: &TransportProperties) -> bool {
        properties.selection.keep_alive == Preference::Require
    }
}

/// What became of one option the machine asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OptionResult {
    /// It was not asked for.
    #[default]
    NotAsked,
    /// It was asked for and the adapter has not said what became of it
    /// (an adapter with no real sockets, such as the simulator).
    Unreported,
    /// The socket has it.
    InEffect,
    /// The socket refused it: setsockopt(2) failed with this errno.
    Refused {
        /// The error number.
        errno: i32,
    },
}

impl OptionResult {
    /// Why the option is not in effect, for a read-back; `None` when it is,
    /// or was not asked for.
    pub fn why_not(self, option: &str) -> Option<String> {
        match self {
            OptionResult::NotAsked | OptionResult::InEffect => None,
            OptionResult::Unreported => Some(format!(
                "{option}: the adapter did not report setting it, so it is not known to be in effect"
            )),
            OptionResult::Refused { errno } => Some(format!(
                "{option}: the socket refused it (setsockopt error {errno})"
            )),
        }
    }
}

/// What the adapter did with a socket's [`TcpSocketOptions`], reported
/// with [`Input::SocketOptionsApplied`](crate::Input).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AppliedTcpOptions {
    /// `SO_KEEPALIVE`, with the idle time when one was asked for.
    pub keep_alive: OptionResult,
    /// `TCP_USER_TIMEOUT`.
    pub user_timeout: OptionResult,
}

impl AppliedTcpOptions {
    /// The state before the adapter reports: every option asked for is
    /// [`OptionResult::Unreported`].
    pub fn unreported(asked: &TcpSocketOptions) -> Self {
        let state = |asked: bool| {
            if asked {
                OptionResult::Unreported
            } else {
                OptionResult::NotAsked
            }
        };
        AppliedTcpOptions {
            keep_alive: state(asked.keep_alive),
            user_timeout: state(asked.user_timeout.is_some()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::properties::SelectionProperty as P;

    #[test]
    fn properties_decide_the_socket_options() {
        let secs = Duration::from_secs;
        let with = |f: &dyn Fn(&mut TransportProperties)| {
            let mut p = TransportProperties::new();
            f(&mut p);
            TcpSocketOptions::for_properties(&p)
        };
        let table: &[(&str, TcpSocketOptions, TcpSocketOptions)] = &[
            (
                "§6.2.10 keepAlive defaults to No Preference: nothing to set",
                with(&|_| {}),
                TcpSocketOptions::default(),
            ),
            (
                "§6.2.10 keepAlive Require: SO_KEEPALIVE with the system's timing",
                with(&|p| p.selection.set(P::KeepAlive, Preference::Require)),
                TcpSocketOptions {
                    keep_alive: true,
                    ..TcpSocketOptions::default()
                },
            ),
            (
                "§6.2.10 keepAlive Prefer: asked for too",
                with(&|p| p.selection.set(P::KeepAlive, Preference::Prefer)),
                TcpSocketOptions {
                    keep_alive: true,
                    ..TcpSocketOptions::default()
                },
            ),
            (
                "§6.2.10 keepAlive Avoid: not asked for",
                with(&|p| p.selection.set(P::KeepAlive, Preference::Avoid)),
                TcpSocketOptions::default(),
            ),
            (
                "§8.1.4 a keepAliveTimeout turns keep-alive on with that idle time",
                with(&|p| p.connection.keep_alive_timeout = Some(secs(30))),
                TcpSocketOptions {
                    keep_alive: true,
                    keep_alive_idle: Some(secs(30)),
                    ..TcpSocketOptions::default()
                },
            ),
            (
                "§8.2 userTimeoutValue without userTimeoutEnabled is not set",
                with(&|p| p.connection.tcp_user_timeout.value = Some(secs(7))),
                TcpSocketOptions::default(),
            ),
            (
                "§8.2 userTimeoutEnabled with a value sets TCP_USER_TIMEOUT",
                with(&|p| {
                    p.connection.tcp_user_timeout.value = Some(secs(7));
                    p.connection.tcp_user_timeout.enabled = true;
                }),
                TcpSocketOptions {
                    user_timeout: Some(secs(7)),
                    ..TcpSocketOptions::default()
                },
            ),
        ];
        for (rule, got, want) in table {
            assert_eq!(got, want, "{rule}");
        }
    }

    #[test]
    fn only_what_was_asked_waits_for_a_report() {
        let asked = TcpSocketOptions {
            keep_alive: true,
            ..TcpSocketOptions::default()
        };
        let state = AppliedTcpOptions::unreported(&asked);
        assert_eq!(state.keep_alive, OptionResult::Unreported);
        assert_eq!(state.user_timeout, OptionResult::NotAsked);
        assert!(state.keep_alive.why_not("keepAlive").is_some());
        assert_eq!(OptionResult::InEffect.why_not("keepAlive"), None);
        let refused = OptionResult::Refused { errno: 92 }
            .why_not("tcpUserTimeout")
            .unwrap();
        assert!(
            refused.contains("92") && refused.contains("tcpUserTimeout"),
            "{refused}"
        );
    }
}
