//! The adapter conformance suite of taps: one set of behaviour tests,
//! written once, that every runtime adapter runs.
//!
//! An adapter implements [`Shim`] (its runtime's `block_on`, `spawn` and
//! `sleep`, how to make its `Taps`, and stream I/O through its own
//! `AsyncRead`/`AsyncWrite`), then instantiates every test with one line
//! in an integration test file:
//!
//! ```ignore
//! struct Tokio;
//! impl taps_conformance::Shim for Tokio { /* ... */ }
//! taps_conformance::conformance_tests!(Tokio);
//! ```
//!
//! Everything else goes through the API all adapters share (`taps-io`'s
//! `Taps` and `Connection`, which every adapter hands out), and the
//! peers that misbehave (stall, reset, send garbage) are plain blocking
//! std sockets on threads, so no case names a runtime. A third adapter
//! needs only its shim (about 80 lines).
//!
//! What it covers ([`cases`]): loopback stream and message modes (lines
//! and length prefixes), TLS with an rcgen CA and the error for an unknown
//! one, InitiateWithSend with TCP Fast Open, `localhost` over both
//! families, a listener with many clients, close and abort as the peer
//! sees them, a peer that resets, one that stalls and one that sends
//! garbage, DNS over TCP after a truncated UDP answer; and ([`netns`]) racing over real paths in network namespaces:
//! IPv6 blackhole, IPv6 refused, a dead first interface, and interface
//! prohibit/require checked from the server's side (root and `ip` needed:
//! ignored with `#[ignore = "needs root and ip (network namespaces)"]`, and
//! run by CI as root with `--ignored`); and ([`dnsmasq`]) name
//! resolution against a real resolver: the resolv.conf search list, HTTPS
//! AliasMode and its ALPN, HTTPS records and plain connections (the
//! `dnsmasq` binary needed: `#[ignore = "needs dnsmasq"]`, which CI
//! installs and runs with `--ignored`).
#![forbid(unsafe_code)]
// A test suite: a failed expectation is a panic with the reason.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod cases;
pub mod dnsmasq;
pub mod netns;
pub mod support;

use std::future::Future;
use std::io;
use std::time::Duration;

use taps_core::Config;
use taps_io::{Connection, Error, Taps};

/// What the suite needs from one adapter and its runtime.
pub trait Shim: 'static {
    /// Runs `future` to completion on the runtime (a test's body).
    fn block_on<F: Future>(future: F) -> F::Output;
    /// Runs `future` in the background; called inside [`Shim::block_on`].
    fn spawn<F: Future<Output = ()> + Send + 'static>(future: F);
    /// The runtime's timer.
    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send;
    /// A `Taps` on the adapter's runtime with this configuration; called inside
    /// [`Shim::block_on`].
    ///
    /// # Errors
    ///
    /// As the adapter's constructor.
    fn taps(config: Config) -> Result<Taps, Error>;

    /// Writes all of `data` with the adapter's `AsyncWrite`.
    fn write_all<'a>(
        conn: &'a mut Connection,
        data: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a;
    /// Fills `buf` with the adapter's `AsyncRead`.
    fn read_exact<'a>(
        conn: &'a mut Connection,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a;
    /// Reads until the end of the stream.
    fn read_to_end(conn: &mut Connection) -> impl Future<Output = io::Result<Vec<u8>>> + Send + '_;
    /// Ends the sending side (`shutdown`, or `futures_io`'s `close`).
    fn shutdown(conn: &mut Connection) -> impl Future<Output = io::Result<()>> + Send + '_;
    /// Splits `conn` into halves, writes `data` and ends the sending side
    /// while reading to the end, and returns what was read.
    fn exchange(
        conn: Connection,
        data: Vec<u8>,
    ) -> impl Future<Output = io::Result<Vec<u8>>> + Send + 'static;
    /// Splits `conn` and copies everything it reads back to it, then ends
    /// the sending side (an echo server's connection).
    fn echo(conn: Connection) -> impl Future<Output = ()> + Send + 'static;
}

/// Instantiates every conformance test for the [`Shim`] `$shim`, as
/// `#[test]` functions in the invoking module.
#[macro_export]
macro_rules! conformance_tests {
    ($shim:ty) => {
        $crate::conformance_tests!(@tests $shim;
            localhost_prefers_ipv6_and_falls_back_to_ipv4,
            stream_mode_echoes_a_megabyte_both_ways,
            tls_with_a_test_ca_and_a_clear_error_for_an_unknown_one,
            message_mode_with_lines_and_length_prefixes,
            a_peer_that_speaks_at_once_is_heard,
            initiate_with_send_carries_the_first_message_with_fast_open,
            a_listener_serves_many_clients_at_once,
            close_waits_for_the_peer_and_abort_resets,
            stream_waits_on_the_socket_give_way_to_receive_and_abort,
            a_vanishing_peer_is_a_clear_error_and_disturbs_nothing_else,
            a_stalled_tls_peer_times_out_with_the_reason,
            garbage_fails_only_the_connection_that_got_it,
            the_system_hosts_file_answers_localhost,
            a_truncated_dns_answer_is_asked_again_over_tcp,
            many_tls_connections_on_one_taps_keep_their_bytes_apart,
            keep_alive_and_user_timeout_are_on_the_socket,
        );
        /// Name resolution against a real resolver (dnsmasq).
        #[test]
        #[ignore = "needs dnsmasq"]
        fn resolving_through_dnsmasq() {
            $crate::dnsmasq::resolving_through_dnsmasq::<$shim>();
        }
        /// Racing over real paths in network namespaces.
        #[test]
        #[ignore = "needs root and ip (network namespaces)"]
        fn racing_over_real_paths_in_network_namespaces() {
            $crate::netns::racing::<$shim>();
        }
        /// Not a test: the client half of the namespace test, which starts
        /// this test binary again in the client namespace with this entry
        /// point (`--exact --ignored`). CI skips it by name.
        #[test]
        #[ignore = "entry point of the namespace test's client process"]
        fn netns_client_child() {
            $crate::netns::client_child::<$shim>();
        }
    };
    (@tests $shim:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::cases::$name::<$shim>();
            }
        )*
    };
}
