//! An endpoint scoped to a protocol (RFC 9622 §6.1.3, `udp://`, `quic://`)
//! is never served by another: taps runs TCP only, so those are refused
//! with an error naming the protocol, instead of connecting over TCP.

use taps_core::{
    Config, InitiateError, ListenError, ListenerConfig, LocalEndpoint, Machine, Output,
    Preconnection, Protocol,
};

#[test]
fn udp_and_quic_endpoints_are_refused_not_served_by_tcp() {
    // (endpoint, the refusal, or None: it connects over TCP)
    let table = [
        ("udp://192.0.2.1:53", Some(Protocol::Udp)),
        ("QUIC://[2001:db8::1]:443", Some(Protocol::Quic)),
        ("quic://example.com:443", Some(Protocol::Quic)),
        ("tcp://192.0.2.1:80", None),
        ("192.0.2.1:80", None),
    ];
    for (text, refused) in table {
        let mut m = Machine::new(Config::new(1));
        let pre = Preconnection::new(text.parse().unwrap());
        let result = m.initiate(taps_core::Instant::ZERO, &pre);
        let mut opened = 0;
        while let Some(out) = m.poll() {
            opened += usize::from(matches!(out, Output::OpenTcp { .. }));
        }
        match refused {
            Some(protocol) => {
                assert_eq!(
                    result,
                    Err(InitiateError::ProtocolUnsupported(protocol)),
                    "{text}"
                );
                let message = result.unwrap_err().to_string();
                assert!(
                    message.contains(&format!("{protocol}://")) && message.contains("not used"),
                    "{message}"
                );
                assert_eq!(opened, 0, "{text}: no TCP socket in its place");
            }
            None => {
                assert!(result.is_ok(), "{text}: {result:?}");
                assert_eq!(opened, 1, "{text}");
            }
        }
    }
}

#[test]
fn udp_and_quic_listeners_are_refused() {
    for (text, protocol) in [
        ("udp://0.0.0.0:5353", Some(Protocol::Udp)),
        ("quic://[::]:443", Some(Protocol::Quic)),
        ("tcp://[::]:443", None),
    ] {
        let local: LocalEndpoint = text.parse().unwrap();
        let config = ListenerConfig::new(&local);
        match protocol {
            Some(p) => {
                let e = config
                    .err()
                    .unwrap_or_else(|| panic!("{text} was accepted"));
                assert_eq!(e, ListenError::ProtocolUnsupported(p));
                assert!(e.to_string().contains(&format!("{p}://")), "{e}");
            }
            None => assert!(config.is_ok(), "{text}"),
        }
    }
}
