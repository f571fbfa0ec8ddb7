//! The runtimes' stream traits on [`Connection`](crate::Connection),
//! each behind its feature, as quinn does for its streams: tokio's
//! `AsyncRead`/`AsyncWrite` (`tokio`) and `futures_io`'s (`futures-io`).
//! Both forward to the connection's own `poll_read`, `poll_write` and
//! `poll_shutdown`, so the two behave alike.

#[cfg(feature = "futures-io")]
mod futures_io;
#[cfg(feature = "tokio")]
mod tokio;
