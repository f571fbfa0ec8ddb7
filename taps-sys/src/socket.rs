//! Socket setup through socket2: the sockets an adapter opens when the core
//! asks for a connection attempt, a listener, or a DNS transmission.
//!
//! OS facilities and their documentation:
//!
//! - non-blocking connect: connect(2) (`EINPROGRESS`, then `SO_ERROR` from
//!   socket(7) once the socket is writable);
//! - `SO_BINDTODEVICE` (socket(7)), so each path's attempt really leaves by
//!   its interface (RFC 9623 §4.1.1.2: a path is an interface; binding only
//!   the source address would still let the routing table pick another
//!   interface);
//! - `SO_REUSEADDR` (socket(7)) and `IPV6_V6ONLY` (ipv6(7), RFC 3493 §5.3)
//!   for listeners;
//! - `TCP_NODELAY`, `TCP_FASTOPEN_CONNECT` (tcp(7); TCP Fast Open is
//!   RFC 7413) and keep-alive (`SO_KEEPALIVE`, `TCP_KEEPIDLE`);
//! - MPTCP sockets, `IPPROTO_MPTCP` (mptcp(7); RFC 8684).
//!
//! Everything is non-blocking: the adapter registers the socket with its
//! reactor and waits for writability, then calls [`connect_result`].

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use nix::errno::Errno;
use socket2::{Domain, Protocol, SockAddr, Socket, TcpKeepalive, Type};

use super::{Stage, context, is_setup_error, os_error_code};
use taps_core::{AppliedTcpOptions, FailureReason, Interface, OptionResult, TcpSocketOptions};

/// How to set up an outgoing TCP socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpOptions {
    /// `TCP_NODELAY`: send small writes at once instead of waiting for
    /// Nagle's algorithm. Default `true`, since the core hands whole
    /// messages and TLS records to the socket and wants them out now.
    pub nodelay: bool,
    /// `TCP_FASTOPEN_CONNECT`: let the first write ride on the SYN when the
    /// kernel holds a Fast Open cookie for the server (RFC 7413). Default
    /// `false`. A kernel that does not support it is not an error: see
    /// [`OpenedTcp::fast_open`].
    pub fast_open: bool,
    /// Open an MPTCP socket (RFC 8684), falling back to plain TCP when the
    /// kernel refuses. Default `false`. See [`OpenedTcp::multipath`].
    pub multipath: bool,
    /// Bind to this interface by name (`SO_BINDTODEVICE`). Linux only;
    /// elsewhere setting it is an `Unsupported` setup error. Default `None`.
    pub bind_interface: Option<String>,
    /// Bind to this local address (and port, `0` for any) before connecting.
    /// Its family must be the remote's. Default `None`: the kernel picks.
    pub local: Option<SocketAddr>,
    /// Keep-alive (`SO_KEEPALIVE`, `TCP_KEEPIDLE`, `TCP_KEEPINTVL`) and
    /// the user timeout (`TCP_USER_TIMEOUT`), as the core asked. A refusal
    /// does not fail the socket: [`OpenedTcp::applied`] reports it and the
    /// core decides. Default: none.
    pub options: TcpSocketOptions,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            nodelay: true,
            fast_open: false,
            multipath: false,
            bind_interface: None,
            local: None,
            options: TcpSocketOptions::default(),
        }
    }
}

/// Where a non-blocking connect stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectProgress {
    /// The connection is established.
    Connected,
    /// The handshake is under way: wait until the socket is writable, then
    /// call [`connect_result`].
    InProgress,
    /// TCP Fast Open deferred the handshake until the first write (the
    /// kernel holds a cookie for this server): the socket is writable at
    /// once, and the first data written leaves in the SYN. The connection's
    /// fate is known only after that write, from [`connect_result`] or from
    /// the next read or write.
    Deferred,
}

/// A TCP socket that [`open_tcp`] opened and started connecting.
#[derive(Debug)]
pub struct OpenedTcp {
    /// The socket, non-blocking and close-on-exec.
    pub socket: Socket,
    /// Whether it is an MPTCP socket. `false` when MPTCP was not asked for,
    /// or when the kernel refused it and plain TCP was used instead.
    pub multipath: bool,
    /// Whether `TCP_FASTOPEN_CONNECT` is set. `false` when not asked for or
    /// when the kernel does not support it (the connection then simply
    /// uses a normal handshake).
    pub fast_open: bool,
    /// What the non-blocking connect returned.
    pub connect_started: ConnectProgress,
    /// What became of each of [`TcpOptions::options`].
    pub applied: AppliedTcpOptions,
}

/// Opens a non-blocking TCP (or MPTCP) socket set up as `opts` says and
/// starts connecting it to `remote`. A loopback connect whose handshake
/// finished inside connect(2) (the usual case) is reported
/// [`ConnectProgress::Connected`] at once.
///
/// Setup order: socket (MPTCP if asked), non-blocking, `SO_BINDTODEVICE`,
/// `TCP_NODELAY`, keep-alive, `TCP_FASTOPEN_CONNECT`, bind to the local
/// address, connect. If the kernel refuses MPTCP (`EPROTONOSUPPORT`,
/// `EINVAL` or `ENOPROTOOPT` when the socket is created: MPTCP missing or
/// `net.mptcp.enabled = 0`), or refuses one of the options on the MPTCP
/// socket (`ENOPROTOOPT`, `EOPNOTSUPP`: older kernels), the whole setup is
/// redone with plain TCP and [`OpenedTcp::multipath`] says so: multipath is
/// a preference, the interface binding is not.
///
/// # Errors
///
/// A failure to create or configure the socket is a setup error
/// ([`failure_reason`] gives [`FailureReason::SocketSetup`]); a connect that
/// fails at once (no route, say) is a connection failure mapped by the
/// same function.
pub fn open_tcp(remote: SocketAddr, opts: &TcpOptions) -> io::Result<OpenedTcp> {
    if let Some(local) = opts.local
        && local.is_ipv4() != remote.is_ipv4()
    {
        return Err(context(
            io::Error::from_raw_os_error(Errno::EAFNOSUPPORT as i32),
            Stage::Setup,
            format!("bind to {local} for a connection to {remote} (address families differ)"),
        ));
    }
    let domain = Domain::for_address(remote);
    let mptcp = mptcp_protocol().filter(|_| opts.multipath);
    let (socket, multipath, fast_open) = if let Some(mptcp) = mptcp {
        match configured_tcp(domain, mptcp, opts) {
            Ok((socket, fast_open)) => (socket, true, fast_open),
            Err(failed) if failed.mptcp_refused => {
                let (socket, fast_open) =
                    configured_tcp(domain, Protocol::TCP, opts).map_err(Failed::into_error)?;
                (socket, false, fast_open)
            }
            Err(failed) => return Err(failed.into_error()),
        }
    } else {
        let (socket, fast_open) =
            configured_tcp(domain, Protocol::TCP, opts).map_err(Failed::into_error)?;
        (socket, false, fast_open)
    };

    let connect_started = match socket.connect(&SockAddr::from(remote)) {
        // With TCP_FASTOPEN_CONNECT and a cookie in hand, connect(2) returns
        // at once without sending anything (tcp(7)); a plain connect that
        // returns 0 has really finished (possible on loopback).
        Ok(()) if fast_open => ConnectProgress::Deferred,
        Ok(()) => ConnectProgress::Connected,
        // Over loopback the whole handshake usually runs inside connect(2):
        // the peer's SYN-ACK waits in the socket's backlog while the call
        // holds the socket, and is processed (ACK sent, connected) as the
        // call lets go of it. A getpeername(2) that succeeds says so, and
        // spares the wait for writability: a reactor round, often a hand-
        // over between threads. Elsewhere the handshake takes a round trip
        // at least, so nothing is probed.
        Err(e) if connect_in_progress(&e) => {
            if remote.ip().is_loopback() && socket.peer_addr().is_ok() {
                ConnectProgress::Connected
            } else {
                ConnectProgress::InProgress
            }
        }
        Err(e) => return Err(context(e, Stage::Connect, format!("connect to {remote}"))),
    };
    let applied = apply_options(&socket, &opts.options);
    Ok(OpenedTcp {
        socket,
        multipath,
        fast_open,
        connect_started,
        applied,
    })
}

/// Whether a connection to `remote` over the path of `interface` needs
/// `SO_BINDTODEVICE` to leave by that interface. Not when both are
/// loopback: a loopback address (127.0.0.0/8, ::1) is never sent outside
/// the host (RFC 1122 §3.2.1.3, RFC 4291 §2.5.3), so Linux routes it only
/// through the loopback interface (the `local` routing table, looked up
/// first), and the path derivation races a loopback address over nothing
/// else (`race::order::reachable`). The binding then changes nothing and
/// costs a setsockopt(2) with a device lookup per connect. Every other
/// pair is bound, so each path's attempt leaves by its interface or fails
/// (a loopback address over a wired path, say).
pub fn binding_needed(interface: &Interface, remote: IpAddr) -> bool {
    !(interface.is_loopback() && remote.is_loopback())
}

/// The interface name an `Output::OpenTcp` must bind to
/// ([`TcpOptions::bind_interface`]): the path's interface (`index`) looked
/// up in the machine's `interfaces`, when [`binding_needed`] says so;
/// `None` for the default path, an interface no longer listed, or a
/// binding that would change nothing.
pub fn interface_to_bind(
    interfaces: &[Interface],
    index: Option<u32>,
    remote: IpAddr,
) -> Option<String> {
    let interface = interfaces.iter().find(|x| Some(x.index) == index)?;
    binding_needed(interface, remote).then(|| interface.name.clone())
}

/// Opens a non-blocking TCP socket to a DNS server (for queries whose UDP
/// answer was truncated, RFC 7766), with the default [`TcpOptions`].
pub fn open_dns_tcp(server: SocketAddr) -> io::Result<OpenedTcp> {
    open_tcp(server, &TcpOptions::default())
}

/// Where a socket's non-blocking connect stands now; call it when the
/// socket became writable.
///
/// Reads and clears `SO_ERROR` (socket2's `take_error`): a failed connect is
/// returned as the error, once. Without a pending error, and with
/// `confirm` false, the socket is connected: connect(2) says that a socket
/// whose connect returned `EINPROGRESS` becomes writable once the connect
/// has finished, and `SO_ERROR` then tells how (tokio and async-io trust
/// the same). With `confirm` true the socket is connected only if it has a
/// peer address (getpeername(2), one syscall more); otherwise (`ENOTCONN`)
/// it is still [`ConnectProgress::InProgress`]. Confirm when writability
/// does not prove the end of the connect: a Fast Open connect deferred to
/// the first write ([`ConnectProgress::Deferred`]: writable at once), or a
/// check made before the socket was reported writable.
pub fn connect_result(socket: &Socket, confirm: bool) -> io::Result<ConnectProgress> {
    if let Some(err) = socket
        .take_error()
        .map_err(|e| context(e, Stage::Other, "read SO_ERROR"))?
    {
        return Err(context(err, Stage::Connect, connect_what(socket)));
    }
    if !confirm {
        return Ok(ConnectProgress::Connected);
    }
    match socket.peer_addr() {
        Ok(_) => Ok(ConnectProgress::Connected),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(ConnectProgress::InProgress),
        Err(e) => Err(context(e, Stage::Connect, connect_what(socket))),
    }
}

/// How to set up a listening TCP socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenOptions {
    /// `IPV6_V6ONLY` for an IPv6 listener: `Some(true)` when the caller
    /// listens on both families with two sockets (the IPv6 one must then
    /// leave IPv4 to the other, or the second bind fails); `Some(false)` for
    /// one dual-stack socket that also accepts IPv4 as mapped addresses;
    /// `None` keeps the system default (`net.ipv6.bindv6only`, normally
    /// off). Ignored for an IPv4 address. Default `None`.
    pub v6_only: Option<bool>,
    /// The listen(2) backlog: completed connections waiting for accept. The
    /// kernel caps it at `net.core.somaxconn`. Default 1024.
    pub backlog: i32,
    /// Accept only through this interface (`SO_BINDTODEVICE`). Linux only.
    /// Default `None`.
    pub bind_interface: Option<String>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            v6_only: None,
            backlog: 1024,
            bind_interface: None,
        }
    }
}

/// Opens a non-blocking TCP listener on `local` (port `0` for any).
///
/// `SO_REUSEADDR` is always set so that a restarted server can bind again
/// while old connections linger in TIME-WAIT (socket(7)); on Linux it does
/// not let two live listeners share a port.
pub fn open_listener(local: SocketAddr, opts: &ListenOptions) -> io::Result<Socket> {
    let setup = |e: io::Error, what: &str| context(e, Stage::Setup, format!("{what} ({local})"));
    let socket = Socket::new(
        Domain::for_address(local),
        Type::STREAM,
        Some(Protocol::TCP),
    )
    .map_err(|e| setup(e, "create a TCP listener socket"))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| setup(e, "set O_NONBLOCK"))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| setup(e, "set SO_REUSEADDR"))?;
    if let (true, Some(v6_only)) = (local.is_ipv6(), opts.v6_only) {
        socket
            .set_only_v6(v6_only)
            .map_err(|e| setup(e, "set IPV6_V6ONLY"))?;
    }
    if let Some(name) = &opts.bind_interface {
        bind_device(&socket, name).map_err(|e| setup(e, &format!("bind to interface {name:?}")))?;
    }
    socket
        .bind(&SockAddr::from(local))
        .map_err(|e| setup(e, "bind"))?;
    socket
        .listen(opts.backlog)
        .map_err(|e| setup(e, "listen"))?;
    Ok(socket)
}

/// Opens a non-blocking UDP socket for DNS queries to `server`: bound to the
/// unspecified address of the server's family on port 0, so the kernel
/// picks a random ephemeral port (Linux randomises UDP source ports; RFC
/// 5452 §9.2 wants that against spoofed answers), and connected to the
/// server so that datagrams from anyone else are dropped by the kernel.
pub fn open_dns_udp(server: SocketAddr) -> io::Result<UdpSocket> {
    let any: IpAddr = match server {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let setup = |e: io::Error, what: &str| {
        context(e, Stage::Setup, format!("{what} (DNS socket for {server})"))
    };
    let socket = UdpSocket::bind(SocketAddr::new(any, 0)).map_err(|e| setup(e, "bind"))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| setup(e, "set O_NONBLOCK"))?;
    // A UDP connect only records the peer; an error here (no route) is about
    // the path, not the socket, so it is reported as a connect failure.
    socket
        .connect(server)
        .map_err(|e| context(e, Stage::Connect, format!("connect to DNS server {server}")))?;
    Ok(socket)
}

/// Whether `err` says the process or the system ran out of descriptors
/// or memory (accept(2): `EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`): the
/// connection waits in the backlog, and retrying at once would spin.
pub fn is_resource_exhaustion(err: &io::Error) -> bool {
    matches!(
        os_error_code(err).map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}

/// The core's reason for an attempt's failure, from the error that
/// [`open_tcp`], [`connect_result`] or a later read or write returned.
///
/// Errors from creating or configuring a socket (this module's setup
/// errors) become [`FailureReason::SocketSetup`] with the OS code. Others
/// map by code: `ECONNREFUSED` → `Refused`; `ENETUNREACH`, `EHOSTUNREACH`,
/// `ENETDOWN` → `Unreachable`; `ETIMEDOUT` → `TimedOut`; `ECONNRESET`,
/// `EPIPE` → `Reset`; anything else → `Os(code)`, with code 0 for an error
/// that carries no OS code.
pub fn failure_reason(err: &io::Error) -> FailureReason {
    let code = os_error_code(err);
    if is_setup_error(err) {
        return FailureReason::SocketSetup(code.unwrap_or(0));
    }
    // std decodes exactly these codes into these kinds (its errno table),
    // and matching kinds also covers errors built from a kind alone.
    use io::ErrorKind as K;
    match err.kind() {
        K::ConnectionRefused => FailureReason::Refused,
        K::NetworkUnreachable | K::HostUnreachable | K::NetworkDown => FailureReason::Unreachable,
        K::TimedOut => FailureReason::TimedOut,
        K::ConnectionReset | K::BrokenPipe => FailureReason::Reset,
        _ => FailureReason::Os(code.unwrap_or(0)),
    }
}

/// A setup step failed; remembers whether it is one that MPTCP explains.
struct Failed {
    err: io::Error,
    mptcp_refused: bool,
}

impl Failed {
    fn into_error(self) -> io::Error {
        self.err
    }
}

/// Creates and configures (but does not connect) a TCP socket with
/// `protocol`; returns it and whether Fast Open got set.
fn configured_tcp(
    domain: Domain,
    protocol: Protocol,
    opts: &TcpOptions,
) -> Result<(Socket, bool), Failed> {
    let mptcp = Some(protocol) == mptcp_protocol();
    let proto_name = if mptcp { "MPTCP" } else { "TCP" };
    // At socket(2), these codes mean "no MPTCP here" (mptcp(7)).
    let create_refusals = [Errno::EPROTONOSUPPORT, Errno::EINVAL, Errno::ENOPROTOOPT];
    // At setsockopt(2), these mean "not on an MPTCP socket of this kernel".
    let option_refusals = [Errno::ENOPROTOOPT, Errno::EOPNOTSUPP];
    let fail = |e: io::Error, what: &str, refusals: &[Errno]| Failed {
        mptcp_refused: mptcp
            && e.raw_os_error()
                .is_some_and(|c| refusals.contains(&Errno::from_raw(c))),
        err: context(e, Stage::Setup, format!("{what} ({proto_name} socket)")),
    };

    // Non-blocking from socket(2) on (SOCK_NONBLOCK): two fcntl(2) calls
    // fewer per attempt.
    let socket = Socket::new(domain, Type::STREAM.nonblocking(), Some(protocol))
        .map_err(|e| fail(e, "create socket", &create_refusals))?;
    if let Some(name) = &opts.bind_interface {
        bind_device(&socket, name).map_err(|e| {
            fail(
                e,
                &format!("bind to interface {name:?} (SO_BINDTODEVICE)"),
                &option_refusals,
            )
        })?;
    }
    socket
        .set_tcp_nodelay(opts.nodelay)
        .map_err(|e| fail(e, "set TCP_NODELAY", &option_refusals))?;

    // A kernel without Fast Open (or an MPTCP socket of a kernel before
    // 6.2) refuses the option; the connection then just uses a normal
    // handshake, which is what the application would get elsewhere anyway.
    let fast_open = opts.fast_open && set_fastopen_connect(&socket).is_ok();
    if let Some(local) = opts.local {
        socket
            .bind(&SockAddr::from(local))
            .map_err(|e| fail(e, &format!("bind to {local}"), &[]))?;
    }
    Ok((socket, fast_open))
}

/// Sets keep-alive and the user timeout as asked, and says what became of
/// each: a refusal is the core's to judge (a Required keep-alive fails
/// the attempt, a preferred one reads back as not in effect).
fn apply_options(socket: &Socket, asked: &TcpSocketOptions) -> AppliedTcpOptions {
    let result = |r: io::Result<()>| match r {
        Ok(()) => OptionResult::InEffect,
        Err(e) => OptionResult::Refused {
            errno: e.raw_os_error().unwrap_or(0),
        },
    };
    let mut applied = AppliedTcpOptions::default();
    if asked.keep_alive {
        let keepalive = match asked.keep_alive_idle {
            // The idle time before the first probe is also the time between
            // probes (RFC 9622 §8.1.4: "how often keep-alive packets" go).
            Some(idle) => TcpKeepalive::new().with_time(idle).with_interval(idle),
            None => TcpKeepalive::new(),
        };
        applied.keep_alive = result(if asked.keep_alive_idle.is_some() {
            socket.set_tcp_keepalive(&keepalive)
        } else {
            socket.set_keepalive(true)
        });
    }
    if let Some(timeout) = asked.user_timeout {
        applied.user_timeout = result(set_user_timeout(socket, timeout));
    }
    applied
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_user_timeout(socket: &Socket, timeout: Duration) -> io::Result<()> {
    socket.set_tcp_user_timeout(Some(timeout))
}

/// No `TCP_USER_TIMEOUT` here: the option reads back as refused.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_user_timeout(_: &Socket, _: Duration) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(Errno::ENOPROTOOPT as i32))
}

/// The MPTCP protocol number where the platform has MPTCP sockets.
#[cfg(target_os = "linux")]
fn mptcp_protocol() -> Option<Protocol> {
    Some(Protocol::MPTCP)
}

/// No MPTCP sockets here: asking for multipath gives plain TCP, reported
/// through [`OpenedTcp::multipath`].
#[cfg(not(target_os = "linux"))]
fn mptcp_protocol() -> Option<Protocol> {
    None
}

/// `SO_BINDTODEVICE` (socket(7)).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn bind_device(socket: &Socket, name: &str) -> io::Result<()> {
    socket.bind_device(Some(name.as_bytes()))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn bind_device(_socket: &Socket, _name: &str) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "binding a socket to an interface is implemented for Linux only",
    ))
}

/// `TCP_FASTOPEN_CONNECT` (tcp(7), Linux 4.11+), which socket2 does not
/// wrap; nix does.
#[cfg(target_os = "linux")]
fn set_fastopen_connect(socket: &Socket) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt::TcpFastOpenConnect};
    setsockopt(socket, TcpFastOpenConnect, &true).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn set_fastopen_connect(_socket: &Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "TCP_FASTOPEN_CONNECT is Linux-only",
    ))
}

/// Whether a non-blocking connect's error only means "started".
fn connect_in_progress(err: &io::Error) -> bool {
    err.raw_os_error() == Some(Errno::EINPROGRESS as i32)
}

/// Describes a connect for an error message, naming the peer when the
/// kernel still knows it.
fn connect_what(socket: &Socket) -> String {
    match socket.peer_addr().ok().and_then(|a| a.as_socket()) {
        Some(peer) => format!("connect to {peer}"),
        None => "connect".to_owned(),
    }
}

#[cfg(test)]
mod tests;
