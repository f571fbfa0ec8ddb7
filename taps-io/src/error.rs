//! The errors of the async API, each with a message a person can act on.

use core::fmt;
use std::io;

use taps_core::{
    EstablishmentError, FailureReason, InitiateError, ListenError, ReceiveError, SendError, Trace,
};

/// Why establishment failed (RFC 9622 §7.1 `EstablishmentError`), with the
/// race's trace for a waterfall (see [`super::trace`]).
#[derive(Clone, Debug)]
pub struct EstablishmentFailure {
    /// Every attempt and why it failed.
    pub error: EstablishmentError,
    /// The race as it ran.
    pub trace: Trace,
    /// The remote endpoint as the application gave it.
    pub remote: String,
}

/// The core's curl-style text; the trace and the remote text add nothing
/// to it (the trace is for `--trace`-style detail).
impl fmt::Display for EstablishmentFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)
    }
}

/// The text appears once in a chain: no `source`.
impl std::error::Error for EstablishmentFailure {}

/// An error of the async API.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `initiate` was refused before anything was tried (no path meets the
    /// requirements, properties TCP cannot give, unusable TLS settings...).
    Initiate(InitiateError),
    /// Every attempt failed, or `connTimeout` passed. The Display reads like
    /// curl's (`failed to connect to localhost port 8001 after 0 ms:
    /// connection refused`), one line per attempt when there were several;
    /// the trace holds the rest.
    Establishment(Box<EstablishmentFailure>),
    /// The established connection broke, or was aborted.
    Connection(FailureReason),
    /// The connection is closed; nothing more can be sent.
    Closed,
    /// A message was refused (framing limits, a final message was sent).
    Send(SendError),
    /// A message is larger than the whole send queue
    /// ([`IoLimits::max_queued_bytes`](taps_core::IoLimits)):
    /// it could never be sent.
    MessageTooLarge {
        /// Its size.
        len: usize,
        /// The queue's bound.
        limit: usize,
    },
    /// A receive was refused (too many pending).
    Receive(ReceiveError),
    /// `listen` was refused.
    Listen(ListenError),
    /// A listening socket could not be opened or failed.
    Listener(String),
    /// The system: its configuration could not be read, no runtime, no
    /// trusted roots found.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Initiate(e) => write!(f, "cannot initiate: {e}"),
            // The core's error already names the host and port, curl-style.
            Error::Establishment(e) => write!(f, "{e}"),
            Error::Connection(reason) => write!(f, "connection failed: {reason}"),
            Error::Closed => f.write_str("the connection is closed"),
            Error::Send(e) => write!(f, "message refused: {e}"),
            Error::MessageTooLarge { len, limit } => write!(
                f,
                "a {len}-byte message can never fit the {limit}-byte send queue"
            ),
            Error::Receive(e) => write!(f, "receive refused: {e}"),
            Error::Listen(e) => write!(f, "cannot listen: {e}"),
            Error::Listener(e) => write!(f, "listener failed: {e}"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Each variant's Display already carries the message of what it wraps, so
/// `source` gives nothing more: the text appears once in a chain.
impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            Error::Connection(reason) => reason_to_io(reason),
            Error::Closed => io::Error::new(io::ErrorKind::BrokenPipe, e.to_string()),
            other => io::Error::other(other.to_string()),
        }
    }
}

/// An [`io::Error`] for a connection's failure, with the closest kind.
pub fn reason_to_io(reason: FailureReason) -> io::Error {
    use io::ErrorKind as K;
    let kind = match reason {
        FailureReason::Refused => K::ConnectionRefused,
        FailureReason::Reset => K::ConnectionReset,
        FailureReason::TimedOut | FailureReason::ConnTimeout => K::TimedOut,
        FailureReason::LocalAbort => K::ConnectionAborted,
        FailureReason::PeerClosed => K::UnexpectedEof,
        FailureReason::Unreachable => K::NetworkUnreachable,
        FailureReason::InterfaceDown => K::NetworkDown,
        FailureReason::Tls(_) | FailureReason::Framing(_) => K::InvalidData,
        _ => K::Other,
    };
    io::Error::new(kind, format!("connection failed: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every error of the async API is a `std::error::Error`
    /// (ARCHITECTURE.md "Conventions"): this does not compile otherwise.
    #[test]
    fn errors_are_std_errors() {
        fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
        is_error::<Error>();
        is_error::<EstablishmentFailure>();
    }
}
