//! The route dump's parsing, on bytes this project's build machine's kernel
//! sent and on messages built with netlink-packet-route's own emitter, and
//! the primary interface's choice.

use super::*;
use taps_core::InterfaceKind;

fn iface(name: &str, index: u32) -> Interface {
    Interface::new(name, index, InterfaceKind::Wired, &[]).unwrap()
}

fn names(list: &[Interface]) -> Vec<&str> {
    list.iter().map(|i| i.name.as_str()).collect()
}

fn route(interface: u32, metric: u32, ipv6: bool) -> DefaultRoute {
    DefaultRoute {
        interface,
        metric,
        ipv6,
    }
}

#[test]
fn the_default_routes_interface_goes_first_even_with_a_higher_index() {
    let mut list = vec![iface("lo", 1), iface("eth0", 2), iface("wlan0", 3)];
    order_by_default_route(&mut list, &[route(3, 600, false)]);
    assert_eq!(names(&list), ["wlan0", "lo", "eth0"]);
}

#[test]
fn the_lowest_metric_wins_across_families() {
    let mut list = vec![iface("eth0", 2), iface("wlan0", 3), iface("wwan0", 4)];
    let routes = [
        route(2, 600, false),
        route(4, 700, true),
        route(3, 100, true),
        route(2, 1024, true),
    ];
    order_by_default_route(&mut list, &routes);
    assert_eq!(names(&list), ["wlan0", "eth0", "wwan0"]);
}

#[test]
fn at_equal_metric_ipv6_then_the_lower_index_breaks_the_tie() {
    let mut list = vec![iface("a", 2), iface("b", 3), iface("c", 4)];
    order_by_default_route(
        &mut list,
        &[
            route(2, 100, false),
            route(4, 100, true),
            route(3, 100, false),
        ],
    );
    assert_eq!(names(&list), ["c", "a", "b"]);
}

#[test]
fn with_no_default_route_the_index_order_stands() {
    let mut list = vec![iface("lo", 1), iface("eth0", 2), iface("eth1", 3)];
    order_by_default_route(&mut list, &[]);
    assert_eq!(names(&list), ["lo", "eth0", "eth1"]);
    // A route naming an interface that is not listed changes nothing.
    order_by_default_route(&mut list, &[route(9, 0, false)]);
    assert_eq!(names(&list), ["lo", "eth0", "eth1"]);
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use netlink_packet_core::{NLM_F_MULTIPART, NetlinkMessage, NetlinkPayload};
    use netlink_packet_route::route::{
        RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteNextHop, RouteType,
    };
    use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
    use std::net::Ipv4Addr;

    /// One datagram of an `RTM_GETROUTE` dump (`AF_UNSPEC`) as the kernel
    /// of the machine this was written on sent it: `default via 192.0.2.1
    /// dev eth0` (ifindex 4, no metric), `default via fd00::1 dev eth0
    /// metric 1024`, their on-link routes and the local table's routes.
    const THIS_HOST_DUMP: &[u8] = include_bytes!("this-host-dump.bin");
    /// The dump's last datagram: `NLMSG_DONE`.
    const THIS_HOST_DONE: &[u8] = include_bytes!("this-host-done.bin");

    #[test]
    fn a_real_dump_yields_its_two_default_routes() {
        let mut routes = Vec::new();
        assert_eq!(
            parse_dump_datagram(THIS_HOST_DUMP, &mut routes),
            Ok(DumpParse::More)
        );
        assert_eq!(routes, [route(4, 0, false), route(4, 1024, true)]);
        assert_eq!(
            parse_dump_datagram(THIS_HOST_DONE, &mut routes),
            Ok(DumpParse::Done)
        );
        assert_eq!(routes.len(), 2, "NLMSG_DONE adds nothing");
    }

    #[test]
    fn every_truncation_of_a_real_dump_is_an_error_or_a_prefix_never_a_panic() {
        for end in 0..THIS_HOST_DUMP.len() {
            let mut routes = Vec::new();
            match parse_dump_datagram(&THIS_HOST_DUMP[..end], &mut routes) {
                // Cut at a message boundary: what came before it.
                Ok(DumpParse::More) => assert!(routes.len() <= 2, "{end}: {routes:?}"),
                Ok(DumpParse::Done) => panic!("{end}: a cut dump cannot be done"),
                Err(e) => assert!(e.contains("netlink"), "{end}: {e}"),
            }
        }
        let mut flipped = THIS_HOST_DUMP.to_vec();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = parse_dump_datagram(&flipped, &mut Vec::new());
            flipped[i] ^= 0xff;
        }
    }

    /// A route message as the kernel would send it in a dump, built and
    /// serialized by netlink-packet-route.
    fn emitted(message: RouteMessage) -> Vec<u8> {
        let mut nl = NetlinkMessage::from(RouteNetlinkMessage::NewRoute(message));
        nl.header.flags = NLM_F_MULTIPART;
        nl.finalize();
        let mut bytes = vec![0; nl.buffer_len()];
        nl.serialize(&mut bytes);
        bytes
    }

    fn v4_route(prefix_len: u8, table: u8, kind: RouteType, attrs: Vec<RouteAttribute>) -> Vec<u8> {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        message.header.destination_prefix_length = prefix_len;
        message.header.table = table;
        message.header.kind = kind;
        message.attributes = attrs;
        emitted(message)
    }

    #[test]
    fn only_unicast_main_table_zero_length_routes_count() {
        let main = RouteHeader::RT_TABLE_MAIN;
        let gateway = RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::new(10, 0, 0, 1)));
        let mut datagram = Vec::new();
        // The default route, metric 50, by ifindex 7: counts.
        datagram.extend(v4_route(
            0,
            main,
            RouteType::Unicast,
            vec![
                gateway.clone(),
                RouteAttribute::Oif(7),
                RouteAttribute::Priority(50),
            ],
        ));
        // A /24: not a default route.
        datagram.extend(v4_route(
            24,
            main,
            RouteType::Unicast,
            vec![RouteAttribute::Oif(8)],
        ));
        // Another table's default (policy routing): not followed.
        datagram.extend(v4_route(
            0,
            100,
            RouteType::Unicast,
            vec![RouteAttribute::Oif(9)],
        ));
        // A table id above 255 names main only through RTA_TABLE.
        datagram.extend(v4_route(
            0,
            252,
            RouteType::Unicast,
            vec![RouteAttribute::Table(1000), RouteAttribute::Oif(10)],
        ));
        // An unreachable default: no interface carries it.
        datagram.extend(v4_route(0, main, RouteType::Unreachable, vec![]));
        // A multipath default: each next hop's interface, at its metric.
        let hop = |index| {
            let mut h = RouteNextHop::default();
            h.interface_index = index;
            h
        };
        datagram.extend(v4_route(
            0,
            main,
            RouteType::Unicast,
            vec![RouteAttribute::MultiPath(vec![hop(11), hop(12)])],
        ));
        let mut routes = Vec::new();
        assert_eq!(
            parse_dump_datagram(&datagram, &mut routes),
            Ok(DumpParse::More)
        );
        assert_eq!(
            routes,
            [
                route(7, 50, false),
                route(11, 0, false),
                route(12, 0, false)
            ]
        );
    }

    #[test]
    fn a_kernel_error_is_reported() {
        let mut nl = NetlinkMessage::<RouteNetlinkMessage>::new(
            Default::default(),
            NetlinkPayload::Error({
                let mut e = netlink_packet_core::ErrorMessage::default();
                e.code = std::num::NonZeroI32::new(-1);
                e
            }),
        );
        nl.finalize();
        let mut bytes = vec![0; nl.buffer_len()];
        nl.serialize(&mut bytes);
        let err = parse_dump_datagram(&bytes, &mut Vec::new()).unwrap_err();
        assert!(err.contains("refused the route dump"), "{err}");
    }

    #[test]
    fn this_hosts_table_can_be_read() {
        // Whatever the table holds, reading it works and every route names
        // an interface index the kernel gives out (never 0).
        let routes = default_routes().unwrap();
        assert!(routes.iter().all(|r| r.interface != 0), "{routes:?}");
    }
}
