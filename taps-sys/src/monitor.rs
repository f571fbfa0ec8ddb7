//! The path monitor: tells the adapter when the interface list changed, so
//! it can hand the core an interfaces-changed input (RFC 9623 §4.1.1.2:
//! paths come and go with interfaces; RFC 9622 §8.3.2 path change events).
//!
//! On Linux it listens to rtnetlink(7) (netlink(7), `NETLINK_ROUTE`) on the
//! multicast groups `RTMGRP_LINK`, `RTMGRP_IPV4_IFADDR` and
//! `RTMGRP_IPV6_IFADDR`: the kernel sends a message for every link and
//! address change. The messages are not parsed: any of them means "list
//! again" ([`list_interfaces`]), and a change is reported only when the new
//! list differs from the last. Listing is cheap and is the one source of
//! truth, so the monitor cannot drift from what getifaddrs says.
//!
//! Where netlink is unavailable (another Unix, or a sandbox that forbids
//! netlink sockets), [`PathMonitor::polling`] lists again on every
//! [`PathMonitor::poll_change`], which the adapter calls every
//! [`POLL_INTERVAL`].
//!
//! # Driving it
//!
//! The monitor is a descriptor the adapter registers with its reactor
//! (tokio's `AsyncFd`, async-io's `Async`) for readability:
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use taps_sys::monitor::{PathMonitor, POLL_INTERVAL};
//!
//! let mut monitor = PathMonitor::new()?;
//! let initial = monitor.interfaces().to_vec();
//! // ... when the descriptor is readable, or every POLL_INTERVAL if
//! // monitor.is_polling():
//! if let Some(interfaces) = monitor.poll_change()? {
//!     // feed `interfaces` to the core
//! }
//! # Ok(()) }
//! ```

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

#[cfg(target_os = "linux")]
use nix::errno::Errno;

use super::interfaces::list_interfaces;
use super::{Stage, context};
use taps_core::Interface;

/// How often to call [`PathMonitor::poll_change`] on a polling monitor.
/// Two seconds notices a lost Wi-Fi well before a connection attempt
/// would time out, for the cost of one getifaddrs call.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Netlink datagrams read per [`PathMonitor::poll_change`] before it stops
/// draining, so that a flood of changes cannot hold the adapter's loop; the
/// rest wait for the next call (the descriptor stays readable).
const MAX_DRAIN: usize = 256;

/// Receive buffer for one netlink datagram. The kernel sizes datagrams to
/// the page size (up to 8 KiB); a longer one is truncated, which does not
/// matter since only its arrival counts.
const RECV_BUF: usize = 8192;

/// Watches the interfaces for changes; see the module docs.
#[derive(Debug)]
pub struct PathMonitor {
    source: Source,
    last: Vec<Interface>,
    buf: Box<[u8]>,
}

#[derive(Debug)]
enum Source {
    /// A netlink route socket subscribed to link and address changes.
    #[cfg(target_os = "linux")]
    Netlink(socket2::Socket),
    /// No notifications: the read end of a pipe whose write end is kept
    /// open and never written, so the descriptor never becomes readable
    /// (adapters register it all the same and rely on their timer).
    Polling {
        reader: io::PipeReader,
        _writer: io::PipeWriter,
    },
}

impl PathMonitor {
    /// Opens a netlink monitor, or a polling one when netlink is
    /// unavailable, and takes the first interface list.
    ///
    /// The socket is subscribed before the first listing, so no change
    /// between the two can be missed.
    pub fn new() -> io::Result<PathMonitor> {
        #[cfg(target_os = "linux")]
        if let Ok(socket) = netlink_socket() {
            return Ok(PathMonitor {
                source: Source::Netlink(socket),
                last: list_interfaces()?,
                buf: vec![0; RECV_BUF].into_boxed_slice(),
            });
        }
        PathMonitor::polling()
    }

    /// Opens a polling monitor (no netlink), and takes the first interface
    /// list.
    pub fn polling() -> io::Result<PathMonitor> {
        let (reader, writer) = io::pipe()
            .map_err(|e| context(e, Stage::Setup, "create the polling monitor's pipe"))?;
        Ok(PathMonitor {
            source: Source::Polling {
                reader,
                _writer: writer,
            },
            last: list_interfaces()?,
            buf: Box::default(),
        })
    }

    /// Whether this monitor polls (its descriptor never becomes readable):
    /// call [`poll_change`](Self::poll_change) every [`POLL_INTERVAL`].
    pub fn is_polling(&self) -> bool {
        matches!(self.source, Source::Polling { .. })
    }

    /// The interface list as of the last change (or the start).
    pub fn interfaces(&self) -> &[Interface] {
        &self.last
    }

    /// Drains pending notifications and, if there were any (always, when
    /// polling), lists the interfaces again. Returns the new list when it
    /// differs from the last one, and `None` when nothing changed.
    ///
    /// Never blocks. A netlink receive queue overflow (`ENOBUFS`: changes
    /// were lost) counts as a notification, since listing again recovers
    /// from it.
    pub fn poll_change(&mut self) -> io::Result<Option<Vec<Interface>>> {
        if !self.drain()? {
            return Ok(None);
        }
        let now = list_interfaces()?;
        if now == self.last {
            return Ok(None);
        }
        self.last.clone_from(&now);
        Ok(Some(now))
    }

    /// Reads what is pending; whether the interfaces may have changed.
    fn drain(&mut self) -> io::Result<bool> {
        match &self.source {
            Source::Polling { .. } => Ok(true),
            #[cfg(target_os = "linux")]
            Source::Netlink(socket) => {
                let mut notified = false;
                let mut reader: &socket2::Socket = socket;
                for _ in 0..MAX_DRAIN {
                    match reader.read(&mut self.buf) {
                        Ok(_) => notified = true,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(notified),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.raw_os_error() == Some(Errno::ENOBUFS as i32) => {
                            notified = true
                        }
                        Err(e) => {
                            return Err(context(e, Stage::Other, "read netlink notifications"));
                        }
                    }
                }
                Ok(notified)
            }
        }
    }
}

impl AsFd for PathMonitor {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.source {
            #[cfg(target_os = "linux")]
            Source::Netlink(socket) => socket.as_fd(),
            Source::Polling { reader, .. } => reader.as_fd(),
        }
    }
}

impl AsRawFd for PathMonitor {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// `RTMGRP_LINK` from linux/rtnetlink.h: link (interface) changes.
#[cfg(target_os = "linux")]
const RTMGRP_LINK: u32 = 0x1;
/// `RTMGRP_IPV4_IFADDR` from linux/rtnetlink.h: IPv4 address changes.
#[cfg(target_os = "linux")]
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
/// `RTMGRP_IPV6_IFADDR` from linux/rtnetlink.h: IPv6 address changes.
#[cfg(target_os = "linux")]
const RTMGRP_IPV6_IFADDR: u32 = 0x100;

/// A non-blocking, close-on-exec netlink route socket bound to the link and
/// address multicast groups.
#[cfg(target_os = "linux")]
fn netlink_socket() -> io::Result<socket2::Socket> {
    use nix::sys::socket::{AddressFamily, NetlinkAddr, SockProtocol, bind};
    use socket2::{Domain, Protocol, Socket, Type};

    let socket = Socket::new(
        Domain::from(AddressFamily::Netlink as i32),
        Type::DGRAM,
        Some(Protocol::from(SockProtocol::NetlinkRoute as i32)),
    )
    .map_err(|e| context(e, Stage::Setup, "create a netlink route socket"))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| context(e, Stage::Setup, "set O_NONBLOCK on the netlink socket"))?;
    // A bigger queue makes ENOBUFS (lost notifications) rarer during bursts,
    // such as a VPN coming up; failure only leaves the default.
    let _ = socket.set_recv_buffer_size(256 * 1024);

    // nl_pid 0: the kernel assigns the port id.
    let addr = NetlinkAddr::new(0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR);
    bind(socket.as_raw_fd(), &addr).map_err(|errno| {
        context(
            io::Error::from(errno),
            Stage::Setup,
            "bind the netlink socket to the link and address groups",
        )
    })?;
    Ok(socket)
}

#[cfg(test)]
mod tests;
