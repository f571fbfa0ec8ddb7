//! Real sockets on loopback.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::sleep;
use std::time::Instant;

use super::*;

/// How long a loopback connect may take before the test gives up; far
/// above what it needs, only there so a bug cannot hang the suite.
const BOUND: Duration = Duration::from_secs(5);

/// Waits (bounded) until `socket`'s connect finishes.
fn wait_connected(socket: &Socket) -> io::Result<()> {
    let deadline = Instant::now() + BOUND;
    loop {
        // Polled without waiting for writability: confirmed.
        match connect_result(socket, true)? {
            ConnectProgress::Connected => return Ok(()),
            _ if Instant::now() > deadline => panic!("connect did not finish within {BOUND:?}"),
            _ => sleep(Duration::from_millis(5)),
        }
    }
}

/// A blocking std listener on `addr`, or `None` (with a note) when the
/// machine lacks that family.
fn listener(addr: &str) -> Option<TcpListener> {
    match TcpListener::bind(addr) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("skipping {addr}: cannot listen there: {e}");
            None
        }
    }
}

/// Accepts one connection (bounded) and checks that the two ends agree.
fn accept_from(listener: &TcpListener, client: &Socket) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + BOUND;
    let (stream, peer) = loop {
        match listener.accept() {
            Ok(pair) => break pair,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    assert_eq!(Some(peer), client.local_addr().unwrap().as_socket());
    stream.set_nonblocking(false).unwrap();
    stream
}

/// Writes `data` from the client and checks the server reads it.
fn exchange(client: &Socket, server: &mut TcpStream, data: &[u8]) {
    let deadline = Instant::now() + BOUND;
    let mut written = 0;
    let mut writer: &Socket = client;
    while written < data.len() {
        match writer.write(&data[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    server.set_read_timeout(Some(BOUND)).unwrap();
    let mut got = vec![0; data.len()];
    server.read_exact(&mut got).unwrap();
    assert_eq!(got, data);
}

/// Connects with `opts` to a fresh listener on `listen_at` and exchanges a
/// few bytes.
fn connect_and_talk(listen_at: &str, opts: &TcpOptions) -> Option<OpenedTcp> {
    let listener = listener(listen_at)?;
    let remote = listener.local_addr().unwrap();
    let opened = open_tcp(remote, opts).unwrap();
    assert!(opened.socket.nonblocking().unwrap());
    wait_connected(&opened.socket).unwrap();
    let mut server = accept_from(&listener, &opened.socket);
    exchange(&opened.socket, &mut server, b"hello over taps");
    Some(opened)
}

#[test]
fn connects_over_ipv4_and_ipv6_loopback() {
    for at in ["127.0.0.1:0", "[::1]:0"] {
        let Some(opened) = connect_and_talk(at, &TcpOptions::default()) else {
            continue;
        };
        assert!(!opened.multipath);
        assert!(!opened.fast_open);
        assert_ne!(opened.connect_started, ConnectProgress::Deferred);
        assert!(opened.socket.tcp_nodelay().unwrap(), "nodelay defaults on");
    }
}

#[test]
fn a_loopback_connect_that_finished_inside_connect_is_reported_connected() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let remote = listener.local_addr().unwrap();
    // The handshake runs inside connect(2) unless the kernel defers its
    // packet processing (a loaded machine): most tries find it finished.
    let mut finished = 0;
    for _ in 0..20 {
        let opened = open_tcp(remote, &TcpOptions::default()).unwrap();
        if opened.connect_started == ConnectProgress::Connected {
            finished += 1;
            // Really connected: the server gets it, and the bytes.
            let mut server = accept_from(&listener, &opened.socket);
            exchange(&opened.socket, &mut server, b"no wait");
        } else {
            assert_eq!(opened.connect_started, ConnectProgress::InProgress);
            wait_connected(&opened.socket).unwrap();
            accept_from(&listener, &opened.socket);
        }
    }
    assert!(finished > 0, "no loopback connect was seen finished");
}

#[test]
fn nodelay_off_keepalive_and_user_timeout_are_what_getsockopt_reads() {
    let opts = TcpOptions {
        nodelay: false,
        options: TcpSocketOptions {
            keep_alive: true,
            keep_alive_idle: Some(Duration::from_secs(30)),
            user_timeout: Some(Duration::from_secs(7)),
        },
        ..TcpOptions::default()
    };
    let opened = connect_and_talk("127.0.0.1:0", &opts).unwrap();
    assert!(!opened.socket.tcp_nodelay().unwrap());
    assert!(opened.socket.keepalive().unwrap());
    assert_eq!(
        opened.socket.tcp_keepalive_time().unwrap(),
        Duration::from_secs(30)
    );
    assert_eq!(
        opened.socket.tcp_keepalive_interval().unwrap(),
        Duration::from_secs(30)
    );
    assert_eq!(
        opened.socket.tcp_user_timeout().unwrap(),
        Some(Duration::from_secs(7))
    );
    assert_eq!(
        opened.applied,
        AppliedTcpOptions {
            keep_alive: OptionResult::InEffect,
            user_timeout: OptionResult::InEffect,
        }
    );

    // Keep-alive with the system's timing, and nothing else asked for.
    let opts = TcpOptions {
        options: TcpSocketOptions {
            keep_alive: true,
            ..TcpSocketOptions::default()
        },
        ..TcpOptions::default()
    };
    let opened = connect_and_talk("127.0.0.1:0", &opts).unwrap();
    assert!(opened.socket.keepalive().unwrap());
    assert_eq!(opened.socket.tcp_user_timeout().unwrap(), None);
    assert_eq!(opened.applied.user_timeout, OptionResult::NotAsked);

    // A plain socket has neither.
    let opened = connect_and_talk("127.0.0.1:0", &TcpOptions::default()).unwrap();
    assert!(!opened.socket.keepalive().unwrap());
    assert_eq!(opened.applied, AppliedTcpOptions::default());
}

#[test]
fn closed_port_is_refused() {
    for at in ["127.0.0.1:0", "[::1]:0"] {
        let Some(listener) = listener(at) else {
            continue;
        };
        let remote = listener.local_addr().unwrap();
        drop(listener);
        // Loopback refuses either at once or, usually, through SO_ERROR.
        let err = match open_tcp(remote, &TcpOptions::default()) {
            Err(e) => e,
            Ok(opened) => wait_connected(&opened.socket).unwrap_err(),
        };
        assert_eq!(failure_reason(&err), FailureReason::Refused, "{err}");
        assert!(err.to_string().contains("connect"), "{err}");
    }
}

/// Waits (bounded) until poll(2) reports `socket` writable, leaving
/// `SO_ERROR` as it is.
fn wait_writable(socket: &Socket) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLOUT)];
    let timeout = PollTimeout::try_from(BOUND).unwrap();
    let n = poll(&mut fds, timeout).unwrap_or(-1);
    assert_eq!(n, 1, "not writable within {BOUND:?}");
}

#[test]
fn once_writable_so_error_alone_tells_how_the_connect_ended() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let opened = open_tcp(listener.local_addr().unwrap(), &TcpOptions::default()).unwrap();
    wait_writable(&opened.socket);
    assert_eq!(
        connect_result(&opened.socket, false).unwrap(),
        ConnectProgress::Connected
    );
    let mut server = accept_from(&listener, &opened.socket);
    exchange(&opened.socket, &mut server, b"no getpeername needed");

    let closed = listener.local_addr().unwrap();
    drop((listener, server));
    let err = match open_tcp(closed, &TcpOptions::default()) {
        Err(e) => e,
        Ok(opened) => {
            wait_writable(&opened.socket);
            connect_result(&opened.socket, false).unwrap_err()
        }
    };
    assert_eq!(failure_reason(&err), FailureReason::Refused, "{err}");
}

#[test]
fn only_a_loopback_address_on_the_loopback_path_goes_unbound() {
    use taps_core::InterfaceKind;
    let lo = Interface::new(
        "lo",
        1,
        InterfaceKind::Loopback,
        &["127.0.0.1/8", "::1/128"],
    )
    .unwrap();
    let eth = Interface::new("eth0", 2, InterfaceKind::Wired, &["192.0.2.2/24"]).unwrap();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(!binding_needed(&lo, ip("127.0.0.1")));
    assert!(!binding_needed(&lo, ip("127.1.2.3")));
    assert!(!binding_needed(&lo, ip("::1")));
    // The host's own address on another interface also routes through lo,
    // but only because of that interface's address: bound.
    assert!(binding_needed(&lo, ip("192.0.2.2")));
    // A mapped address is not loopback to the IPv6 stack.
    assert!(binding_needed(&lo, ip("::ffff:127.0.0.1")));
    // Another path must really be taken, or fail.
    assert!(binding_needed(&eth, ip("127.0.0.1")));
    assert!(binding_needed(&eth, ip("192.0.2.1")));
}

#[test]
fn the_interface_to_bind_is_looked_up_by_index_and_needed() {
    use taps_core::InterfaceKind;
    let list = [
        Interface::new("eth0", 4, InterfaceKind::Wired, &["192.0.2.2/24"]).unwrap(),
        Interface::new("lo", 1, InterfaceKind::Loopback, &["127.0.0.1/8"]).unwrap(),
    ];
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        interface_to_bind(&list, Some(4), ip("192.0.2.1")).as_deref(),
        Some("eth0")
    );
    assert_eq!(interface_to_bind(&list, Some(1), ip("127.0.0.1")), None);
    assert_eq!(
        interface_to_bind(&list, Some(1), ip("192.0.2.1")).as_deref(),
        Some("lo")
    );
    // The default path, and an interface gone from the list.
    assert_eq!(interface_to_bind(&list, None, ip("192.0.2.1")), None);
    assert_eq!(interface_to_bind(&list, Some(9), ip("192.0.2.1")), None);
}

#[test]
fn binds_to_the_loopback_interface_and_a_local_address() {
    let opts = TcpOptions {
        bind_interface: Some("lo".into()),
        local: Some("127.0.0.1:0".parse().unwrap()),
        ..TcpOptions::default()
    };
    let opened = connect_and_talk("127.0.0.1:0", &opts).unwrap();
    assert_eq!(opened.socket.device().unwrap().as_deref(), Some(&b"lo"[..]));
}

#[test]
fn an_unknown_interface_is_a_setup_failure() {
    let opts = TcpOptions {
        bind_interface: Some("tapsnope0".into()),
        ..TcpOptions::default()
    };
    let err = open_tcp("127.0.0.1:9".parse().unwrap(), &opts).unwrap_err();
    assert_eq!(
        failure_reason(&err),
        FailureReason::SocketSetup(Errno::ENODEV as i32),
        "{err}"
    );
    assert!(err.to_string().contains("tapsnope0"), "{err}");
}

#[test]
fn mismatched_local_family_is_a_setup_failure() {
    let opts = TcpOptions {
        local: Some("127.0.0.1:0".parse().unwrap()),
        ..TcpOptions::default()
    };
    let err = open_tcp("[::1]:9".parse().unwrap(), &opts).unwrap_err();
    assert_eq!(
        failure_reason(&err),
        FailureReason::SocketSetup(Errno::EAFNOSUPPORT as i32)
    );
}

#[test]
fn fast_open_is_accepted_and_the_connection_works() {
    let opts = TcpOptions {
        fast_open: true,
        ..TcpOptions::default()
    };
    let opened = connect_and_talk("127.0.0.1:0", &opts).unwrap();
    // Linux has had TCP_FASTOPEN_CONNECT since 4.11. Without a cookie for
    // this listener (it does not enable Fast Open) the handshake is a
    // normal one, so connect reports progress, not a deferral.
    if cfg!(target_os = "linux") {
        assert!(opened.fast_open, "TCP_FASTOPEN_CONNECT refused");
    }
}

#[test]
fn multipath_gives_mptcp_or_reports_the_fallback() {
    let opts = TcpOptions {
        multipath: true,
        ..TcpOptions::default()
    };
    for at in ["127.0.0.1:0", "[::1]:0"] {
        let Some(opened) = connect_and_talk(at, &opts) else {
            continue;
        };
        // The listener is plain TCP, so MPTCP falls back to TCP on the wire
        // (RFC 8684 §3.7); the socket still is an MPTCP one.
        let protocol = opened.socket.protocol().unwrap();
        if opened.multipath {
            assert_eq!(protocol, Some(Protocol::MPTCP));
        } else {
            eprintln!("{at}: kernel refused MPTCP; plain TCP was used");
            assert_eq!(protocol, Some(Protocol::TCP));
        }
    }
}

#[test]
fn multipath_with_fast_open_interface_and_keepalive() {
    // Every option on the MPTCP socket at once: either the kernel takes
    // them, or the setup falls back to TCP; never an error.
    let opts = TcpOptions {
        multipath: true,
        fast_open: true,
        bind_interface: Some("lo".into()),
        options: TcpSocketOptions {
            keep_alive: true,
            keep_alive_idle: Some(Duration::from_secs(10)),
            user_timeout: None,
        },
        ..TcpOptions::default()
    };
    let opened = connect_and_talk("127.0.0.1:0", &opts).unwrap();
    assert_ne!(opened.applied.keep_alive, OptionResult::NotAsked);
    assert_ne!(opened.applied.keep_alive, OptionResult::Unreported);
    eprintln!(
        "multipath {} fast_open {}",
        opened.multipath, opened.fast_open
    );
}

#[test]
fn v6_only_listener_shares_its_port_with_a_v4_listener() {
    let opts = ListenOptions {
        v6_only: Some(true),
        ..ListenOptions::default()
    };
    let v6 = match open_listener("[::]:0".parse().unwrap(), &opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skipping: no IPv6 listener: {e}");
            return;
        }
    };
    assert!(v6.only_v6().unwrap());
    assert!(v6.nonblocking().unwrap());
    assert!(v6.reuse_address().unwrap());
    let port = v6.local_addr().unwrap().as_socket().unwrap().port();
    let v4 = open_listener(
        SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port),
        &ListenOptions::default(),
    )
    .unwrap();

    // Nothing is waiting yet: a non-blocking accept says so.
    assert_eq!(v4.accept().unwrap_err().kind(), io::ErrorKind::WouldBlock);
    // Each family reaches its own socket.
    for (listener, remote) in [
        (&v4, SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)),
        (&v6, SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port)),
    ] {
        let client = TcpStream::connect_timeout(&remote, BOUND).unwrap();
        let deadline = Instant::now() + BOUND;
        let (_conn, peer) = loop {
            match listener.accept() {
                Ok(pair) => break pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept on {remote}: {e}"),
            }
        };
        assert_eq!(peer.as_socket(), Some(client.local_addr().unwrap()));
    }
}

#[test]
fn dual_stack_listener_takes_the_v4_port_too() {
    // The counterpart of the test above: without IPV6_V6ONLY the IPv6
    // socket also owns the IPv4 port, so the second bind fails.
    let opts = ListenOptions {
        v6_only: Some(false),
        backlog: 8,
        ..ListenOptions::default()
    };
    let Ok(v6) = open_listener("[::]:0".parse().unwrap(), &opts) else {
        eprintln!("skipping: no IPv6 listener");
        return;
    };
    let port = v6.local_addr().unwrap().as_socket().unwrap().port();
    let err = open_listener(
        SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port),
        &ListenOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        failure_reason(&err),
        FailureReason::SocketSetup(Errno::EADDRINUSE as i32)
    );
}

#[test]
fn listener_on_the_loopback_interface() {
    let opts = ListenOptions {
        bind_interface: Some("lo".into()),
        ..ListenOptions::default()
    };
    let socket = open_listener("127.0.0.1:0".parse().unwrap(), &opts).unwrap();
    assert_eq!(socket.device().unwrap().as_deref(), Some(&b"lo"[..]));
}

#[test]
fn dns_udp_uses_an_ephemeral_port_and_only_hears_its_server() {
    for at in ["127.0.0.1:0", "[::1]:0"] {
        let Ok(server) = UdpSocket::bind(at) else {
            eprintln!("skipping {at}: no UDP socket");
            continue;
        };
        let server_addr = server.local_addr().unwrap();
        let client = open_dns_udp(server_addr).unwrap();
        let local = client.local_addr().unwrap();
        assert_ne!(local.port(), 0);
        assert_eq!(local.is_ipv6(), server_addr.is_ipv6());
        assert_eq!(client.peer_addr().unwrap(), server_addr);

        client.send(b"query").unwrap();
        server.set_read_timeout(Some(BOUND)).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"query");
        assert_eq!(from.port(), local.port());

        // A datagram from anyone but the server is dropped by the kernel.
        let stranger = UdpSocket::bind(at).unwrap();
        stranger.send_to(b"spoof", from).unwrap();
        server.send_to(b"answer", from).unwrap();
        let deadline = Instant::now() + BOUND;
        let n = loop {
            match client.recv(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("recv: {e}"),
            }
        };
        assert_eq!(&buf[..n], b"answer");
    }
}

#[test]
fn dns_udp_ports_differ() {
    // The kernel picks each port at random; two sockets in a row getting
    // the same one is impossible while both are open.
    let server: SocketAddr = "127.0.0.1:53".parse().unwrap();
    let a = open_dns_udp(server).unwrap();
    let b = open_dns_udp(server).unwrap();
    assert_ne!(a.local_addr().unwrap(), b.local_addr().unwrap());
}

#[test]
fn dns_tcp_connects() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let opened = open_dns_tcp(listener.local_addr().unwrap()).unwrap();
    wait_connected(&opened.socket).unwrap();
    assert!(opened.socket.tcp_nodelay().unwrap());
    let mut server = accept_from(&listener, &opened.socket);
    exchange(&opened.socket, &mut server, &[0, 5, 1, 2, 3, 4, 5]);
}

#[test]
fn failure_reasons_by_code() {
    let cases = [
        (Errno::ECONNREFUSED as i32, FailureReason::Refused),
        (Errno::ENETUNREACH as i32, FailureReason::Unreachable),
        (Errno::EHOSTUNREACH as i32, FailureReason::Unreachable),
        (Errno::ENETDOWN as i32, FailureReason::Unreachable),
        (Errno::ETIMEDOUT as i32, FailureReason::TimedOut),
        (Errno::ECONNRESET as i32, FailureReason::Reset),
        (Errno::EPIPE as i32, FailureReason::Reset),
        (
            Errno::EACCES as i32,
            FailureReason::Os(Errno::EACCES as i32),
        ),
    ];
    for (code, reason) in cases {
        let err = io::Error::from_raw_os_error(code);
        assert_eq!(failure_reason(&err), reason, "{err}");
        // Context added by this module does not hide the code.
        let wrapped = context(
            io::Error::from_raw_os_error(code),
            Stage::Connect,
            "connect",
        );
        assert_eq!(failure_reason(&wrapped), reason, "{wrapped}");
        // The same code while setting a socket up is a setup failure.
        let setup = context(io::Error::from_raw_os_error(code), Stage::Setup, "bind");
        assert_eq!(failure_reason(&setup), FailureReason::SocketSetup(code));
    }
    assert_eq!(
        failure_reason(&io::Error::other("no code")),
        FailureReason::Os(0)
    );
    assert_eq!(
        failure_reason(&io::Error::from(io::ErrorKind::ConnectionRefused)),
        FailureReason::Refused
    );
}
