//! The default routes, which decide the primary interface: the one the
//! system sends new traffic by when nothing else is asked for (RFC 9623
//! §4.1.1.2: paths are derived from the interfaces, the primary first;
//! RFC 9623 §4.1.3: among equally preferred paths the system's order
//! stands).
//!
//! On Linux the main routing table is dumped over rtnetlink(7)
//! (`RTM_GETROUTE` with `NLM_F_DUMP`) through netlink-sys's blocking
//! socket, and its messages are parsed by netlink-packet-route; nothing of
//! the wire format is hand-written here.
//!
//! # Which interface is primary
//!
//! [`order_by_default_route`] puts first the interface that carries the
//! best default route, and the rest after it:
//!
//! 1. A default route is a unicast route of the main table (254) with a
//!    zero-length destination, IPv4 (`0.0.0.0/0`) or IPv6 (`::/0`). Its
//!    interfaces are its output interface (`RTA_OIF`), or every next hop's
//!    for a multipath route.
//! 2. An interface ranks by its best default route: the lowest metric
//!    (`RTA_PRIORITY`; absent means 0, as the kernel omits it then). IPv4
//!    and IPv6 routes are compared by metric alike: NetworkManager and
//!    systemd-networkd give both families of one link the same metric, so
//!    the link they rank first comes first whatever the family.
//! 3. Ties: at equal metric an IPv6 default route ranks before an IPv4
//!    one (HEv3 §4 and RFC 6724 prefer IPv6, so the interface that can
//!    carry the preferred family leads); then the lower interface index.
//! 4. Interfaces with no default route follow in index order; so does
//!    everything when the table cannot be read (another Unix, or a
//!    sandbox without netlink): the list is then what it was before the
//!    routes were consulted.
//!
//! Cost, on the project's 2-core machine (`cargo run --release -p taps-sys
//! --example interfaces 2000`): the dump takes 23-27 µs of a listing's
//! 244-311 µs (getifaddrs, if_nametoindex and sysfs are the rest; the
//! listing took 207-264 µs before routes were read). The monitor lists
//! again only for link, address and default-route messages.
//!
//! Policy routing (`ip rule` pointing at other tables) is not followed:
//! what "the default route" means to a user, and to `ip route`, is the
//! main table's.

use std::io;

use taps_core::Interface;

/// One interface's default route: what [`order_by_default_route`] ranks by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefaultRoute {
    /// The output interface's index.
    pub interface: u32,
    /// The route's metric (`RTA_PRIORITY`); lower wins.
    pub metric: u32,
    /// An IPv6 (`::/0`) rather than IPv4 (`0.0.0.0/0`) default route.
    pub ipv6: bool,
}

impl DefaultRoute {
    /// The rank within the table: lower is better (see the module docs).
    fn rank(&self) -> (u32, bool) {
        (self.metric, !self.ipv6)
    }
}

/// Moves the interface with the best default route to the front, then the
/// others that have one, in rank order, then the rest in the order given
/// (index order, from [`list_interfaces`](crate::interfaces::list_interfaces)).
/// The sort is stable and decided by the module docs' rules.
pub fn order_by_default_route(interfaces: &mut [Interface], routes: &[DefaultRoute]) {
    interfaces.sort_by_key(|interface| {
        routes
            .iter()
            .filter(|r| r.interface == interface.index)
            .map(DefaultRoute::rank)
            .min()
            .map_or((1, 0, false, interface.index), |(metric, v4)| {
                (0, metric, v4, interface.index)
            })
    });
}

#[cfg(target_os = "linux")]
pub use linux::{DumpParse, default_routes, parse_dump_datagram, route_is_default};

#[cfg(not(target_os = "linux"))]
/// The default routes; no platform but Linux is read, so none.
pub fn default_routes() -> io::Result<Vec<DefaultRoute>> {
    Ok(Vec::new())
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use crate::{Stage, context};

    use netlink_packet_core::{
        NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer, NetlinkMessage, NetlinkPayload,
    };
    use netlink_packet_route::route::{RouteAttribute, RouteHeader, RouteMessage, RouteType};
    use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

    /// The main routing table's id (`RT_TABLE_MAIN`).
    const MAIN_TABLE: u32 = RouteHeader::RT_TABLE_MAIN as u32;
    /// Receive buffer for one dump datagram: the kernel fills dump
    /// datagrams up to 32 KiB (`NLMSG_GOODSIZE` and its larger dump skbs).
    const DUMP_BUF: usize = 64 * 1024;
    /// Datagrams read per dump at most, so that a kernel that never says
    /// `NLMSG_DONE` cannot hold the caller; a main table this long is
    /// already unheard of for a host.
    const MAX_DUMP_DATAGRAMS: usize = 1024;

    /// Whether `message` is a default route of the main table (see the
    /// module docs), with the interfaces it goes out by.
    pub fn route_is_default(message: &RouteMessage) -> Option<(bool, Vec<u32>)> {
        let header = &message.header;
        let ipv6 = match header.address_family {
            AddressFamily::Inet => false,
            AddressFamily::Inet6 => true,
            _ => return None,
        };
        // RTA_TABLE holds the full id; the header's byte is 252
        // (RT_TABLE_COMPAT) for ids above 255.
        let table = message
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Table(t) => Some(*t),
                _ => None,
            })
            .unwrap_or(u32::from(header.table));
        if header.destination_prefix_length != 0
            || header.kind != RouteType::Unicast
            || table != MAIN_TABLE
        {
            return None;
        }
        let mut interfaces = Vec::new();
        for attribute in &message.attributes {
            match attribute {
                RouteAttribute::Oif(index) => interfaces.push(*index),
                RouteAttribute::MultiPath(hops) => {
                    interfaces.extend(hops.iter().map(|h| h.interface_index))
                }
                _ => {}
            }
        }
        Some((ipv6, interfaces))
    }

    /// The default routes in `message`'s attributes, appended to `out`.
    fn collect(message: &RouteMessage, out: &mut Vec<DefaultRoute>) {
        let Some((ipv6, interfaces)) = route_is_default(message) else {
            return;
        };
        let metric = message
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Priority(p) => Some(*p),
                _ => None,
            })
            .unwrap_or(0);
        for interface in interfaces {
            out.push(DefaultRoute {
                interface,
                metric,
                ipv6,
            });
        }
    }

    /// What one datagram of a route dump held.
    #[derive(Debug, PartialEq, Eq)]
    pub enum DumpParse {
        /// More datagrams follow.
        More,
        /// `NLMSG_DONE`: the dump is complete.
        Done,
    }

    /// Parses one datagram of an `RTM_GETROUTE` dump (one or more netlink
    /// messages back to back), appending its default routes to `out`.
    ///
    /// Never panics: a message netlink-packet-route cannot parse, or a
    /// length that overruns the datagram, is an error naming it; a route
    /// message of a kind this does not use is skipped.
    pub fn parse_dump_datagram(
        datagram: &[u8],
        out: &mut Vec<DefaultRoute>,
    ) -> Result<DumpParse, String> {
        let mut offset = 0;
        while offset < datagram.len() {
            let rest = &datagram[offset..];
            let len = NetlinkBuffer::new_checked(rest)
                .map_err(|e| format!("netlink message at byte {offset}: {e}"))?
                .length() as usize;
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rest[..len])
                .map_err(|e| format!("netlink route message at byte {offset}: {e}"))?;
            match message.payload {
                NetlinkPayload::Done(_) => return Ok(DumpParse::Done),
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(format!("the kernel refused the route dump: {}", e.to_io()));
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)) => {
                    collect(&route, out)
                }
                _ => {}
            }
            // Messages are 4-byte aligned (NLMSG_ALIGN); a zero length
            // was refused by new_checked, so this always advances.
            offset += len.next_multiple_of(4);
        }
        Ok(DumpParse::More)
    }

    /// The main table's default routes, from a fresh rtnetlink dump.
    pub fn default_routes() -> io::Result<Vec<DefaultRoute>> {
        let fail = |e: io::Error, what: &str| context(e, Stage::Other, what.to_owned());
        let mut socket =
            Socket::new(NETLINK_ROUTE).map_err(|e| fail(e, "create a netlink route socket"))?;
        socket
            .bind_auto()
            .map_err(|e| fail(e, "bind the netlink route socket"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| fail(e, "connect the netlink route socket to the kernel"))?;

        let mut request = RouteMessage::default();
        // AF_UNSPEC: both families in one dump.
        request.header.address_family = AddressFamily::Unspec;
        let mut message = NetlinkMessage::from(RouteNetlinkMessage::GetRoute(request));
        message.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        message.finalize();
        let mut bytes = vec![0; message.buffer_len()];
        message.serialize(&mut bytes);
        socket
            .send(&bytes, 0)
            .map_err(|e| fail(e, "ask the kernel for its routes"))?;

        let mut routes = Vec::new();
        let mut buf = Vec::with_capacity(DUMP_BUF);
        for _ in 0..MAX_DUMP_DATAGRAMS {
            buf.clear();
            let n = loop {
                match socket.recv(&mut buf, 0) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other.map_err(|e| fail(e, "read the kernel's routes"))?,
                }
            };
            if n > buf.len() {
                return Err(io::Error::other(format!(
                    "a route dump datagram of {n} bytes is longer than {DUMP_BUF}"
                )));
            }
            match parse_dump_datagram(&buf, &mut routes).map_err(io::Error::other)? {
                DumpParse::Done => return Ok(routes),
                DumpParse::More => {}
            }
        }
        Err(io::Error::other(format!(
            "the route dump did not end within {MAX_DUMP_DATAGRAMS} datagrams"
        )))
    }
}

#[cfg(test)]
mod tests;
