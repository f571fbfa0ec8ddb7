//! A whole taps client with no async runtime: one thread that drives
//! `taps-core` by hand, with `taps-sys`'s sockets, and blocks in poll(2).
//!
//! ```sh
//! cargo run -p taps-sys --example blocking_client -- HOST:PORT [LINE]
//! ```
//!
//! It races every address and path of HOST with Happy Eyeballs v3, writes
//! LINE and a newline, prints what the server sends until the server
//! closes, closes, and prints the race's trace to standard error.
//!
//! The loop is the core contract (`ARCHITECTURE.md`, "The core
//! contract"): report what happened as an `Input`, drain `poll()` and
//! perform each `Output`, then sleep until a socket is ready or
//! `poll_timeout()` passes. Everything the async adapters do is here in
//! its plainest form, without their speed paths (reading delegated to the
//! application, TLS checked out of the machine) and without listeners.
//! What a real embedder would add is marked "not here".

use std::collections::VecDeque;
use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use socket2::Socket;
use taps_core::dns::{DnsAction, DnsSend, DnsTransport};
use taps_core::{
    ConnectionId, DnsTxnId, Event, IdMap, Input, Instant, Machine, Output, Preconnection, SocketId,
    StreamError, TcpSocketOptions,
};
use taps_sys::socket::{ConnectProgress, TcpOptions, connect_result, failure_reason, open_tcp};

/// How much one read takes from a socket.
const READ_CHUNK: usize = 64 * 1024;

/// A connection attempt's (or the winner's) socket.
struct Tcp {
    socket: Socket,
    /// The connect has not finished: wait for writability.
    connecting: bool,
    /// The machine asked for the write side to be shut down.
    shutdown_wanted: bool,
    /// The peer's FIN was read and reported.
    eof: bool,
}

/// A DNS transaction's socket.
enum Dns {
    /// One datagram each way; the kernel drops datagrams from anyone but
    /// the server (`open_dns_udp` connects the socket).
    Udp(UdpSocket),
    /// DNS over TCP (RFC 7766): the payloads carry their length prefixes.
    Tcp {
        socket: Socket,
        connecting: bool,
        outbox: Vec<u8>,
    },
}

/// The machine and the sockets it asked for.
struct Client {
    machine: Machine,
    /// The core's time zero: the core has its own clock type and never
    /// reads one, so the embedder maps the OS's monotonic clock onto it.
    origin: std::time::Instant,
    tcp: IdMap<SocketId, Tcp>,
    dns: IdMap<DnsTxnId, Dns>,
    /// Events for the application, in order.
    events: VecDeque<Event>,
    buf: Vec<u8>,
}

impl Client {
    fn new() -> io::Result<Client> {
        // resolv.conf, the hosts file, the system's TLS environment and a
        // fresh seed; then the interfaces, which are an input, not
        // configuration (not here: watching them with taps_sys::monitor).
        let mut client = Client {
            machine: Machine::new(taps_sys::system_config()?),
            origin: std::time::Instant::now(),
            tcp: IdMap::default(),
            dns: IdMap::default(),
            events: VecDeque::new(),
            buf: vec![0; READ_CHUNK],
        };
        let interfaces = taps_sys::interfaces::list_interfaces()?;
        let now = client.now();
        client
            .machine
            .handle(now, Input::InterfacesChanged(interfaces));
        client.drain();
        Ok(client)
    }

    fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// Reports one input, then performs what the machine asks for.
    fn handle(&mut self, input: Input<'_>) {
        let now = self.now();
        self.machine.handle(now, input);
        self.drain();
    }

    /// Performs every output the machine has: after every call into it.
    fn drain(&mut self) {
        while let Some(output) = self.machine.poll() {
            match output {
                Output::Dns(DnsAction::Send(send)) => self.send_dns(send),
                // Dropping the socket closes it.
                Output::Dns(DnsAction::Release(txn)) => drop(self.dns.remove(&txn)),
                Output::OpenTcp {
                    socket,
                    remote,
                    interface,
                    local,
                    fast_open: _, // not here: a deferred Fast Open connect
                    options,
                } => self.open_tcp(socket, remote, interface, local, options),
                // Writes happen when poll(2) says the socket has room: the
                // wait below asks for writability while the machine has
                // bytes for the socket. The same holds for reading again.
                Output::Transmit { .. } | Output::ResumeReading { .. } => {}
                Output::ShutdownWrite { socket } => {
                    if let Some(tcp) = self.tcp.get_mut(&socket) {
                        tcp.shutdown_wanted = true;
                    }
                }
                Output::CloseSocket { socket } => {
                    if let Some(tcp) = self.tcp.remove(&socket) {
                        // What the machine still has goes out before FIN.
                        let data = self.machine.socket(socket).transmit_data();
                        let _ = (&tcp.socket).write(data);
                    }
                }
                Output::AbortSocket { socket } => {
                    if let Some(tcp) = self.tcp.remove(&socket) {
                        // SO_LINGER 0: close(2) sends a reset.
                        let _ = tcp.socket.set_linger(Some(Duration::ZERO));
                    }
                }
                Output::Event(event) => self.events.push_back(event),
                // Not here: listeners (Listen, StopListening), and kinds of
                // work a newer core may ask for. Nothing is opened for
                // them, so nothing answers, and the machine's timers fail
                // what waits on them.
                _ => {}
            }
        }
    }

    fn send_dns(&mut self, send: DnsSend) {
        let DnsSend {
            txn,
            server,
            transport,
            payload,
        } = send;
        let failed = match (self.dns.get_mut(&txn), transport) {
            (Some(Dns::Udp(udp)), _) => udp.send(&payload).is_err(),
            (Some(Dns::Tcp { outbox, .. }), _) => {
                outbox.extend_from_slice(&payload);
                false
            }
            (None, DnsTransport::Udp) => match taps_sys::socket::open_dns_udp(server) {
                Ok(udp) => {
                    let failed = udp.send(&payload).is_err();
                    self.dns.insert(txn, Dns::Udp(udp));
                    failed
                }
                Err(_) => true,
            },
            (None, _) => match taps_sys::socket::open_dns_tcp(server) {
                Ok(opened) => {
                    let connecting = opened.connect_started != ConnectProgress::Connected;
                    self.dns.insert(
                        txn,
                        Dns::Tcp {
                            socket: opened.socket,
                            connecting,
                            outbox: payload,
                        },
                    );
                    false
                }
                Err(_) => true,
            },
        };
        if failed {
            // The resolver moves on to its next server or transport.
            self.dns.remove(&txn);
            self.handle(Input::DnsTransportFailed { txn });
        }
    }

    fn open_tcp(
        &mut self,
        socket: SocketId,
        remote: SocketAddr,
        interface: Option<u32>,
        local: Option<SocketAddr>,
        options: TcpSocketOptions,
    ) {
        let bind_interface = interface
            .and_then(|i| self.machine.interfaces().iter().find(|x| x.index == i))
            .filter(|x| taps_sys::socket::binding_needed(x, remote.ip()))
            .map(|x| x.name.clone());
        let opts = TcpOptions {
            bind_interface,
            local,
            options,
            ..TcpOptions::default()
        };
        match open_tcp(remote, &opts) {
            Ok(opened) => {
                // Keep-alive and the user timeout: the machine reads back
                // only what the socket really has.
                if !options.is_plain() {
                    self.handle(Input::SocketOptionsApplied {
                        socket,
                        applied: opened.applied,
                    });
                }
                let connecting = opened.connect_started != ConnectProgress::Connected;
                self.tcp.insert(
                    socket,
                    Tcp {
                        socket: opened.socket,
                        connecting,
                        shutdown_wanted: false,
                        eof: false,
                    },
                );
                if !connecting {
                    self.handle(Input::SocketConnected { socket });
                }
            }
            Err(e) => self.handle(Input::SocketFailed {
                socket,
                reason: failure_reason(&e),
            }),
        }
    }

    /// Blocks until a socket is ready or the machine's next deadline,
    /// then reports what happened. `false` when there is nothing to wait
    /// for.
    fn wait_and_report(&mut self) -> bool {
        let deadline = self.machine.poll_timeout();
        let mut waits: Vec<(Waiter, BorrowedFd<'_>, PollFlags)> = Vec::new();
        for (&id, tcp) in &self.tcp {
            let mut flags = PollFlags::empty();
            if tcp.connecting || !self.machine.socket(id).transmit_data().is_empty() {
                flags |= PollFlags::POLLOUT;
            }
            if !tcp.connecting && !tcp.eof && self.machine.socket(id).read_capacity() > 0 {
                flags |= PollFlags::POLLIN;
            }
            if !flags.is_empty() {
                waits.push((Waiter::Tcp(id), tcp.socket.as_fd(), flags));
            }
        }
        for (&txn, dns) in &self.dns {
            let (fd, flags) = match dns {
                Dns::Udp(udp) => (udp.as_fd(), PollFlags::POLLIN),
                Dns::Tcp {
                    socket,
                    connecting,
                    outbox,
                } if *connecting || !outbox.is_empty() => (socket.as_fd(), PollFlags::POLLOUT),
                Dns::Tcp { socket, .. } => (socket.as_fd(), PollFlags::POLLIN),
            };
            waits.push((Waiter::Dns(txn), fd, flags));
        }
        if waits.is_empty() && deadline.is_none() {
            return false;
        }
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(t) => {
                let left = t.saturating_duration_since(self.now());
                // Round up: waking a millisecond early would only spin.
                let ms = left.as_micros().div_ceil(1000);
                PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds: Vec<PollFd<'_>> = waits
            .iter()
            .map(|(_, fd, f)| PollFd::new(*fd, *f))
            .collect();
        // EINTR: treat as a timeout; the loop comes back here.
        let _ = poll(&mut fds, timeout);
        let ready: Vec<Waiter> = waits
            .iter()
            .zip(&fds)
            .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|((w, _, _), _)| *w)
            .collect();
        drop(fds);
        drop(waits);
        for waiter in ready {
            match waiter {
                Waiter::Tcp(id) => self.tcp_ready(id),
                Waiter::Dns(txn) => self.dns_ready(txn),
            }
        }
        let now = self.now();
        if self.machine.poll_timeout().is_some_and(|t| t <= now) {
            self.machine.handle_timeout(now);
            self.drain();
        }
        true
    }

    /// One step of a ready TCP socket: finish its connect, write what the
    /// machine has, shut down when asked, read what the machine can take.
    fn tcp_ready(&mut self, id: SocketId) {
        let Some(tcp) = self.tcp.get_mut(&id) else {
            return;
        };
        if tcp.connecting {
            match connect_result(&tcp.socket, false) {
                Ok(ConnectProgress::Connected) => {
                    tcp.connecting = false;
                    self.handle(Input::SocketConnected { socket: id });
                }
                Ok(_) => {}
                Err(e) => {
                    self.tcp.remove(&id);
                    self.handle(Input::SocketFailed {
                        socket: id,
                        reason: failure_reason(&e),
                    });
                }
            }
            return;
        }
        let now = self.now();
        loop {
            let Some(tcp) = self.tcp.get(&id) else { return };
            let data = self.machine.socket(id).transmit_data();
            if data.is_empty() {
                break;
            }
            match (&tcp.socket).write(data) {
                Ok(n) => self
                    .machine
                    .handle(now, Input::Transmitted { socket: id, len: n }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.tcp_failed(id, &e),
            }
        }
        if let Some(tcp) = self.tcp.get_mut(&id)
            && tcp.shutdown_wanted
            && self.machine.socket(id).transmit_data().is_empty()
        {
            tcp.shutdown_wanted = false;
            let _ = tcp.socket.shutdown(std::net::Shutdown::Write);
        }
        let capacity = self.machine.socket(id).read_capacity().min(self.buf.len());
        if let Some(tcp) = self.tcp.get_mut(&id)
            && capacity > 0
            && !tcp.eof
        {
            match (&tcp.socket).read(&mut self.buf[..capacity]) {
                Ok(0) => {
                    tcp.eof = true;
                    self.machine.handle(now, Input::SocketEof { socket: id });
                }
                Ok(n) => {
                    let data = &self.buf[..n];
                    self.machine
                        .handle(now, Input::SocketData { socket: id, data });
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return self.tcp_failed(id, &e),
            }
        }
        self.drain();
    }

    fn tcp_failed(&mut self, id: SocketId, e: &io::Error) {
        self.tcp.remove(&id);
        self.handle(Input::SocketFailed {
            socket: id,
            reason: failure_reason(e),
        });
    }

    /// One step of a ready DNS socket.
    fn dns_ready(&mut self, txn: DnsTxnId) {
        let now = self.now();
        let Some(dns) = self.dns.get_mut(&txn) else {
            return;
        };
        let failed = match dns {
            Dns::Udp(udp) => match udp.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    let payload = &self.buf[..n];
                    // The machine checks id, question and source itself.
                    self.machine
                        .handle(now, Input::DnsDatagram { txn, from, payload });
                    false
                }
                Err(e) => !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ),
            },
            Dns::Tcp {
                socket,
                connecting,
                outbox,
            } => {
                if *connecting {
                    match connect_result(socket, false) {
                        Ok(ConnectProgress::Connected) => *connecting = false,
                        Ok(_) => {}
                        Err(_) => return self.dns_failed(txn),
                    }
                }
                if !*connecting && !outbox.is_empty() {
                    match (&*socket).write(outbox) {
                        Ok(n) => drop(outbox.drain(..n)),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => return self.dns_failed(txn),
                    }
                }
                if !*connecting && outbox.is_empty() {
                    match (&*socket).read(&mut self.buf) {
                        // The server closed before answering.
                        Ok(0) => true,
                        Ok(n) => {
                            let data = &self.buf[..n];
                            self.machine.handle(now, Input::DnsStreamData { txn, data });
                            false
                        }
                        Err(e) => !matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ),
                    }
                } else {
                    false
                }
            }
        };
        if failed {
            return self.dns_failed(txn);
        }
        self.drain();
    }

    fn dns_failed(&mut self, txn: DnsTxnId) {
        self.dns.remove(&txn);
        self.handle(Input::DnsTransportFailed { txn });
    }

    /// Runs the loop until `conn` has an event for the application.
    fn next_event(&mut self, conn: ConnectionId) -> Option<Event> {
        loop {
            if let Some(i) = self
                .events
                .iter()
                .position(|e| e.connection() == Some(conn))
            {
                return self.events.remove(i);
            }
            if !self.wait_and_report() {
                return None;
            }
        }
    }
}

/// What a poll(2) entry belongs to.
#[derive(Clone, Copy)]
enum Waiter {
    Tcp(SocketId),
    Dns(DnsTxnId),
}

/// Connects to `target`, writes `line` and a newline, and copies what the
/// server sends to `out` until it closes. Returns the race's trace.
fn run(
    target: &str,
    line: &str,
    out: &mut dyn io::Write,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut client = Client::new()?;
    let pre = Preconnection::new(target.parse()?);
    let now = client.now();
    let conn = client.machine.initiate(now, &pre)?;
    client.drain();
    loop {
        match client.next_event(conn) {
            Some(Event::Ready { .. }) => break,
            Some(Event::EstablishmentError { error, .. }) => return Err(error.into()),
            Some(_) => {}
            None => return Err("the machine has nothing left to do and no connection".into()),
        }
    }
    let mut request = line.as_bytes().to_vec();
    request.push(b'\n');
    let mut written = 0;
    let mut buf = vec![0; READ_CHUNK];
    loop {
        let mut view = client.machine.connection(conn);
        while written < request.len() {
            match view.write(&request[written..]) {
                Ok(n) => written += n,
                Err(StreamError::WouldBlock) => break,
                Err(e) => return Err(e.into()),
            }
        }
        let mut ended = false;
        loop {
            match view.read(&mut buf) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(n) => out.write_all(&buf[..n])?,
                Err(StreamError::WouldBlock) => break,
                Err(e) => return Err(e.into()),
            }
        }
        client.drain();
        if ended {
            break;
        }
        match client.next_event(conn) {
            Some(Event::ConnectionError { reason, .. }) => return Err(reason.to_string().into()),
            Some(Event::Closed { .. }) | None => break,
            // Readable, Writable, Sent, ...: go round and try again.
            Some(_) => {}
        }
    }
    let trace = match client.machine.connection_info(conn) {
        Some(info) => info.trace().to_string(),
        None => String::new(),
    };
    let now = client.now();
    client.machine.connection(conn).close(now);
    client.drain();
    while let Some(event) = client.next_event(conn) {
        if matches!(event, Event::Closed { .. } | Event::ConnectionError { .. }) {
            break;
        }
    }
    Ok(trace)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (target, line) = match args.as_slice() {
        [target] => (target.as_str(), "hello"),
        [target, line] => (target.as_str(), line.as_str()),
        _ => {
            eprintln!("usage: blocking_client HOST:PORT [LINE]");
            return std::process::ExitCode::from(2);
        }
    };
    match run(target, line, &mut io::stdout()) {
        Ok(trace) => {
            eprintln!("{trace}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("blocking_client: {e}");
            std::process::ExitCode::from(3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead as _, BufReader};
    use std::net::TcpListener;

    /// A server this project did not write would be better; std's own
    /// listener is the next best, and the behaviour under test is the
    /// client's loop, not the server.
    fn echo_once_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            (&stream)
                .write_all(format!("echo: {line}").as_bytes())
                .unwrap();
            // Dropping the stream closes it: the client sees the end.
        });
        addr
    }

    #[test]
    fn connects_writes_and_reads_until_the_server_closes() {
        let addr = echo_once_server();
        let mut out = Vec::new();
        let trace = run(&addr.to_string(), "ping", &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "echo: ping\n");
        assert!(!trace.is_empty(), "the race leaves a trace");
    }

    #[test]
    fn a_name_from_the_hosts_file_connects_too() {
        let addr = echo_once_server();
        let mut out = Vec::new();
        run(&format!("localhost:{}", addr.port()), "by name", &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "echo: by name\n");
    }

    #[test]
    fn a_refused_port_is_an_error_that_says_so() {
        // Bind and drop: nobody listens on the port now.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = run(&format!("127.0.0.1:{port}"), "x", &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
    }
}
