//! Keep-alive and the TCP user timeout go from a Connection's properties
//! to its socket, and its properties read back what the socket has (RFC
//! 9622 §6.2.10 keepAlive, §8.1.4 keepAliveTimeout, §8.2 user timeout).

use std::time::Duration;

use taps_core::{
    AppliedTcpOptions, Config, ConnectionId, FailureReason, Input, OptionResult, Preconnection,
    SelectionProperty, SocketId, TcpSocketOptions, TransportProperties,
};
use taps_testkit::harness::Harness;

fn keep_alive_properties() -> TransportProperties {
    let mut p = TransportProperties::new().require(SelectionProperty::KeepAlive);
    p.connection.keep_alive_timeout = Some(Duration::from_secs(30));
    p.connection.tcp_user_timeout.enabled = true;
    p.connection.tcp_user_timeout.value = Some(Duration::from_secs(7));
    p
}

/// A connect to one IPv4 literal with `properties`: the harness, the
/// connection and its one socket.
fn connect(properties: TransportProperties) -> (Harness, ConnectionId, SocketId) {
    let mut h = Harness::manual(Config::new(1));
    let pre = Preconnection::new("192.0.2.1:443".parse().unwrap()).with_properties(properties);
    let now = h.now;
    let conn = h.initiate(now, &pre).unwrap();
    let socket = h.opened[0].socket;
    (h, conn, socket)
}

#[test]
fn open_tcp_carries_the_options_the_properties_ask_for() {
    let (h, _, _) = connect(keep_alive_properties());
    let (plain, _, _) = connect(TransportProperties::new());
    assert!(plain.opened[0].options.is_plain());
    assert_eq!(
        h.opened[0].options,
        TcpSocketOptions {
            keep_alive: true,
            keep_alive_idle: Some(Duration::from_secs(30)),
            user_timeout: Some(Duration::from_secs(7)),
        }
    );
}

#[test]
fn properties_read_back_only_what_the_socket_reported() {
    for (applied, keep_alive, user_timeout, reasons) in [
        (
            AppliedTcpOptions {
                keep_alive: OptionResult::InEffect,
                user_timeout: OptionResult::InEffect,
            },
            true,
            Some(Duration::from_secs(7)),
            0,
        ),
        (
            AppliedTcpOptions {
                keep_alive: OptionResult::InEffect,
                user_timeout: OptionResult::Refused { errno: 92 },
            },
            true,
            None,
            1,
        ),
    ] {
        let (mut h, conn, socket) = connect(keep_alive_properties());
        h.handle(Input::SocketOptionsApplied { socket, applied });
        h.handle(Input::SocketConnected { socket });
        let e = h
            .machine
            .connection_info(conn)
            .and_then(|c| c.properties())
            .expect("established");
        assert_eq!(e.keep_alive, keep_alive, "{applied:?}");
        assert_eq!(e.tcp_user_timeout, user_timeout, "{applied:?}");
        assert_eq!(e.not_in_effect.len(), reasons, "{:?}", e.not_in_effect);
    }

    // An adapter that never reports (the simulator has no real sockets):
    // nothing asked for reads as on.
    let (mut h, conn, socket) = connect(keep_alive_properties());
    h.handle(Input::SocketConnected { socket });
    let e = h
        .machine
        .connection_info(conn)
        .and_then(|c| c.properties())
        .unwrap();
    assert!(!e.keep_alive && e.tcp_user_timeout.is_none());
    assert!(
        e.not_in_effect.iter().all(|r| r.contains("did not report")),
        "{:?}",
        e.not_in_effect
    );
}

#[test]
fn a_required_keep_alive_the_socket_refuses_fails_the_attempt() {
    let (mut h, conn, socket) = connect(keep_alive_properties());
    let refused = AppliedTcpOptions {
        keep_alive: OptionResult::Refused { errno: 95 },
        user_timeout: OptionResult::InEffect,
    };
    h.handle(Input::SocketOptionsApplied {
        socket,
        applied: refused,
    });
    h.settle();
    let error = h.error(conn).expect("the only attempt failed");
    assert_eq!(
        error.attempts[0].failure,
        Some(FailureReason::SocketSetup(95)),
        "{error}"
    );

    // Preferred, not required: the same refusal leaves the attempt alone,
    // and the read-back says keep-alive is off, and why.
    let mut p = keep_alive_properties();
    p.selection
        .set(SelectionProperty::KeepAlive, taps_core::Preference::Prefer);
    let (mut h, conn, socket) = connect(p);
    h.handle(Input::SocketOptionsApplied {
        socket,
        applied: refused,
    });
    h.handle(Input::SocketConnected { socket });
    let e = h
        .machine
        .connection_info(conn)
        .and_then(|c| c.properties())
        .unwrap();
    assert!(!e.keep_alive);
    assert!(
        e.not_in_effect[0].contains("keepAlive"),
        "{:?}",
        e.not_in_effect
    );
}
