//! The path monitor: tells the adapter when the interface list changed, so
//! it can hand the core an interfaces-changed input (RFC 9623 §4.1.1.2:
//! paths come and go with interfaces; RFC 9622 §8.3.2 path change events).
//!
//! On Linux it listens to rtnetlink(7) (netlink(7), `NETLINK_ROUTE`) on the
//! multicast groups `RTNLGRP_LINK`, `RTNLGRP_IPV4_IFADDR`,
//! `RTNLGRP_IPV6_IFADDR`, `RTNLGRP_IPV4_ROUTE` and `RTNLGRP_IPV6_ROUTE`,
//! through netlink-sys's plain (blocking-capable, runtime-free) socket.
//! Each message is parsed by netlink-packet-route and decides whether to
//! list again ([`list_interfaces`]): any link or address message does, and
//! a route message does when it adds or removes a default route of the main
//! table, since that can move the primary interface
//! ([`crate::routes`]); other route churn (on-link prefixes, cached
//! exceptions) does not. A message that cannot be parsed, or a lost one
//! (`ENOBUFS`), lists again, so nothing is missed by parsing. A change is
//! reported only when the new list differs from the last, order included:
//! the default route moving to another interface is a change even when no
//! interface changed. Listing is the one source of truth, so the monitor
//! cannot drift from what getifaddrs and the route table say.
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

use std::io;
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

/// Receive buffer for one netlink datagram. The kernel sizes notification
/// datagrams to the page size (up to 8 KiB); a longer one is truncated,
/// fails to parse, and so lists again.
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
    /// A netlink route socket subscribed to link, address and route
    /// changes.
    #[cfg(target_os = "linux")]
    Netlink(netlink_sys::Socket),
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
                for _ in 0..MAX_DRAIN {
                    let mut into: &mut [u8] = &mut self.buf;
                    match socket.recv(&mut into, 0) {
                        Ok(n) => {
                            let datagram = &self.buf[..n.min(self.buf.len())];
                            notified |= notification_matters(datagram);
                        }
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

/// Whether a notification datagram (one or more rtnetlink messages) can
/// change the interface list or its order: see the module docs. Never
/// panics; what cannot be parsed counts, since listing again is always
/// safe.
#[cfg(target_os = "linux")]
pub fn notification_matters(datagram: &[u8]) -> bool {
    use netlink_packet_core::{NetlinkBuffer, NetlinkMessage, NetlinkPayload};
    use netlink_packet_route::RouteNetlinkMessage as M;

    let mut offset = 0;
    while offset < datagram.len() {
        let rest = &datagram[offset..];
        let Ok(buffer) = NetlinkBuffer::new_checked(rest) else {
            return true;
        };
        let len = buffer.length() as usize;
        let Ok(message) = NetlinkMessage::<M>::deserialize(&rest[..len]) else {
            return true;
        };
        let matters = match message.payload {
            NetlinkPayload::InnerMessage(
                M::NewLink(_) | M::DelLink(_) | M::NewAddress(_) | M::DelAddress(_),
            ) => true,
            NetlinkPayload::InnerMessage(M::NewRoute(route) | M::DelRoute(route)) => {
                crate::routes::route_is_default(&route).is_some()
            }
            NetlinkPayload::Overrun(_) => true,
            _ => false,
        };
        if matters {
            return true;
        }
        offset += len.next_multiple_of(4);
    }
    false
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

/// The rtnetlink multicast groups (`enum rtnetlink_groups` in
/// linux/rtnetlink.h) the monitor joins: links, IPv4 and IPv6 addresses,
/// IPv4 and IPv6 routes.
#[cfg(target_os = "linux")]
const GROUPS: [(u32, &str); 5] = [
    (1, "RTNLGRP_LINK"),
    (5, "RTNLGRP_IPV4_IFADDR"),
    (7, "RTNLGRP_IPV4_ROUTE"),
    (9, "RTNLGRP_IPV6_IFADDR"),
    (11, "RTNLGRP_IPV6_ROUTE"),
];

/// A non-blocking, close-on-exec netlink route socket (netlink-sys opens
/// it with `SOCK_CLOEXEC`) in the link, address and route groups.
#[cfg(target_os = "linux")]
fn netlink_socket() -> io::Result<netlink_sys::Socket> {
    use netlink_sys::{Socket, protocols::NETLINK_ROUTE};

    let setup = |e: io::Error, what: &str| context(e, Stage::Setup, what.to_owned());
    let mut socket =
        Socket::new(NETLINK_ROUTE).map_err(|e| setup(e, "create a netlink route socket"))?;
    socket
        .set_non_blocking(true)
        .map_err(|e| setup(e, "set O_NONBLOCK on the netlink socket"))?;
    // A bigger queue makes ENOBUFS (lost notifications) rarer during bursts,
    // such as a VPN coming up; failure only leaves the default.
    let _ = socket.set_rx_buf_sz(256 * 1024);
    // The kernel assigns the port id.
    socket
        .bind_auto()
        .map_err(|e| setup(e, "bind the netlink socket"))?;
    for (group, name) in GROUPS {
        socket
            .add_membership(group)
            .map_err(|e| setup(e, &format!("join the netlink group {name}")))?;
    }
    Ok(socket)
}

#[cfg(test)]
mod tests;
