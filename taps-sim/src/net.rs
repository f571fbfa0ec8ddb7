//! The network between the client and everything else: links with delay,
//! jitter, loss, bandwidth and an action (pass, blackhole, reject), chosen
//! per client interface, destination prefix and direction; routing of
//! unbound sockets; and the kernel's TCP timing constants.
//!
//! Every random choice (loss, jitter) draws from the world's seeded
//! [`Rng`], in event order, so a run replays exactly from its seed.

use core::time::Duration;
use std::net::IpAddr;

use taps_core::{Instant, Interface, Rng};

use crate::scenario::{Action, Change, Direction, Link, LinkParams};

/// Linux's initial SYN retransmission timeout (RFC 6298 §2.1: 1 s).
pub const SYN_RTO: Duration = Duration::from_secs(1);
/// Linux `tcp_syn_retries` default: six retransmissions, so with the
/// doubling timeout a connect to a black hole gives up after
/// 1 + 2 + 4 + 8 + 16 + 32 + 64 = 127 s.
pub const SYN_RETRIES: u8 = 6;
/// Linux `TCP_RTO_MIN`: the floor of the data retransmission timeout.
pub const RTO_MIN: Duration = Duration::from_millis(200);
/// RFC 6298 §5.7: after a retransmitted SYN the data RTO restarts at 3 s.
pub const RTO_AFTER_SYN_LOSS: Duration = Duration::from_secs(3);
/// Data retransmissions before the sender gives up (Linux `tcp_retries2`).
pub const DATA_RETRIES: u8 = 15;
/// Bytes on the wire of a SYN, SYN-ACK, ACK, RST or FIN with options.
pub const CONTROL_BYTES: u32 = 64;
/// IP and UDP headers added to a DNS message over UDP (IPv6 size; the
/// difference to IPv4 is below anything a link here can resolve).
pub const UDP_OVERHEAD: u32 = 48;
/// IP and TCP headers per data segment.
pub const TCP_OVERHEAD: u32 = 60;
/// Payload bytes per TCP segment.
pub const MSS: u32 = 1400;

/// Which way a packet travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client to destination.
    Up,
    /// Destination to client.
    Down,
}

/// What becomes of one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It arrives at this time.
    Arrive(Instant),
    /// It is dropped silently (loss, blackhole, interface down).
    Lost,
    /// It is dropped and the sender told: the answer (RST or ICMP) reaches
    /// the client at this time, one round trip after sending.
    Rejected(Instant),
}

/// The mutable state of the network.
#[derive(Clone, Debug, Default)]
pub struct Net {
    links: Vec<Link>,
    /// Per link and direction, when its transmitter is free again.
    busy: Vec<[Instant; 2]>,
    interfaces: Vec<Interface>,
}

impl Net {
    /// Resets to the scenario's initial links and interfaces, keeping the
    /// buffers' capacity.
    pub fn reset(&mut self, links: &[Link], interfaces: &[Interface]) {
        self.links.clear();
        self.links.extend_from_slice(links);
        self.busy.clear();
        self.busy.resize(links.len(), [Instant::ZERO; 2]);
        self.interfaces.clear();
        self.interfaces.extend_from_slice(interfaces);
    }

    /// The interfaces as they are now.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Sets interface `index` up or down; whether anything changed.
    pub fn set_interface(&mut self, index: u32, up: bool) -> bool {
        match self.interfaces.iter_mut().find(|i| i.index == index) {
            Some(i) if i.up != up => {
                i.up = up;
                true
            }
            _ => false,
        }
    }

    /// The link `n`, to change it.
    pub fn link_mut(&mut self, n: usize) -> Option<&mut LinkParams> {
        self.links.get_mut(n).map(|l| &mut l.params)
    }

    /// Applies a scenario event; whether the interface list changed.
    pub fn apply(&mut self, change: &Change) -> bool {
        match change {
            Change::Interface { index, up } => self.set_interface(*index, *up),
            Change::Link {
                link,
                action,
                delay,
                jitter,
                loss,
                bandwidth,
            } => {
                if let Some(p) = self.link_mut(*link) {
                    p.action = action.unwrap_or(p.action);
                    p.delay = delay.unwrap_or(p.delay);
                    p.jitter = jitter.unwrap_or(p.jitter);
                    p.loss = loss.unwrap_or(p.loss);
                    p.bandwidth = bandwidth.or(p.bandwidth);
                }
                false
            }
        }
    }

    fn up_with_family(&self, index: u32, v6: bool) -> bool {
        self.interfaces
            .iter()
            .any(|i| i.index == index && i.up && i.has_family(v6))
    }

    /// The interface a packet to `ip` leaves by: `bound` if it is up and has
    /// an address of the family, else (unbound) the first interface in the
    /// scenario's order that does, as a default route would.
    pub fn route(&self, ip: IpAddr, bound: Option<u32>) -> Option<u32> {
        let v6 = ip.is_ipv6();
        match bound {
            Some(index) => self.up_with_family(index, v6).then_some(index),
            None => self
                .interfaces
                .iter()
                .find(|i| i.up && i.has_family(v6))
                .map(|i| i.index),
        }
    }

    /// The link entry that governs packets on `interface` to or from `ip`
    /// going `dir` (see [`Link`] for the precedence).
    pub fn find(&self, interface: u32, ip: IpAddr, dir: Dir) -> Option<usize> {
        let mut best: Option<(usize, (i16, bool))> = None;
        for (n, l) in self.links.iter().enumerate() {
            let applies = matches!(
                (l.direction, dir),
                (Direction::Both, _) | (Direction::Up, Dir::Up) | (Direction::Down, Dir::Down)
            );
            if !applies || l.interface.is_some_and(|i| i != interface) || !l.to.contains(ip) {
                continue;
            }
            let rank = (l.to.specificity(), l.interface.is_some());
            if best.is_none_or(|(_, r)| rank > r) {
                best = Some((n, rank));
            }
        }
        best.map(|(n, _)| n)
    }

    /// The parameters for a packet, ignoring the transmitter queue.
    pub fn params(&self, interface: u32, ip: IpAddr, dir: Dir) -> LinkParams {
        self.find(interface, ip, dir)
            .map_or(LinkParams::PASS, |n| self.links[n].params)
    }

    /// The jitter-free round trip to `ip` over `interface`.
    pub fn rtt(&self, interface: u32, ip: IpAddr) -> Duration {
        self.params(interface, ip, Dir::Up).delay + self.params(interface, ip, Dir::Down).delay
    }

    /// Sends a packet of `bytes` at `now`; decides its fate.
    pub fn transmit(
        &mut self,
        now: Instant,
        interface: u32,
        ip: IpAddr,
        dir: Dir,
        bytes: u32,
        rng: &mut Rng,
    ) -> Fate {
        if !self.interfaces.iter().any(|i| i.index == interface && i.up) {
            return Fate::Lost;
        }
        let Some(n) = self.find(interface, ip, dir) else {
            return Fate::Arrive(now);
        };
        let p = self.links[n].params;
        match (p.action, dir) {
            (Action::Pass, _) => {}
            (Action::Blackhole, _) | (Action::Reject, Dir::Down) => return Fate::Lost,
            (Action::Reject, Dir::Up) => return Fate::Rejected(now + self.rtt(interface, ip)),
        }
        // Draw only when the link is lossy, so adding a lossless link does
        // not shift every later random choice.
        if p.loss > 0.0 && (rng.next_u64() as f64) < p.loss * 18_446_744_073_709_551_616.0 {
            return Fate::Lost;
        }
        let mut at = now;
        if let Some(bps) = p.bandwidth {
            let slot = &mut self.busy[n][dir as usize];
            let start = at.max(*slot);
            let nanos = u64::from(bytes) * 8 * 1_000_000_000 / bps.max(1);
            *slot = start + Duration::from_nanos(nanos);
            at = *slot;
        }
        at += p.delay;
        if !p.jitter.is_zero() {
            let max_us = u32::try_from(p.jitter.as_micros()).unwrap_or(u32::MAX);
            at += Duration::from_micros(u64::from(rng.below(max_us.saturating_add(1))));
        }
        Fate::Arrive(at)
    }

    /// The jitter-free, loss-free arrival of a packet sent at `now` (no
    /// queueing, but the packet's own serialization time), or `None` when it
    /// would not arrive: the oracle's view of a link.
    pub fn ideal(
        &self,
        now: Instant,
        interface: u32,
        ip: IpAddr,
        dir: Dir,
        bytes: u32,
    ) -> Option<Instant> {
        if !self.interfaces.iter().any(|i| i.index == interface && i.up) {
            return None;
        }
        let p = self.params(interface, ip, dir);
        if p.action != Action::Pass {
            return None;
        }
        let ser = p
            .bandwidth
            .map_or(0, |bps| u64::from(bytes) * 8 * 1_000_000_000 / bps.max(1));
        Some(now + Duration::from_nanos(ser) + p.delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Prefix;
    use taps_core::{InterfaceAddress, InterfaceKind};

    fn iface(index: u32, addrs: &[&str]) -> Interface {
        Interface {
            name: format!("if{index}"),
            index,
            kind: InterfaceKind::Wifi,
            addrs: addrs
                .iter()
                .map(|a| InterfaceAddress {
                    addr: a.parse().unwrap(),
                    prefix_len: 24,
                    deprecated: false,
                })
                .collect(),
            mtu: 1500,
            expensive: false,
            constrained: false,
            up: true,
        }
    }

    fn link(
        interface: Option<u32>,
        to: Prefix,
        direction: Direction,
        delay_ms: u64,
        action: Action,
    ) -> Link {
        Link {
            interface,
            to,
            direction,
            params: LinkParams {
                delay: Duration::from_millis(delay_ms),
                action,
                ..LinkParams::PASS
            },
        }
    }

    #[test]
    fn the_most_specific_link_wins() {
        let v6: Prefix = Prefix::Net {
            addr: "2001:db8::".parse().unwrap(),
            len: 32,
        };
        let mut net = Net::default();
        net.reset(
            &[
                link(None, Prefix::Any, Direction::Both, 10, Action::Pass),
                link(None, v6, Direction::Both, 20, Action::Pass),
                link(Some(1), v6, Direction::Up, 30, Action::Blackhole),
            ],
            &[
                iface(1, &["192.168.1.10", "2001:db8:1::10"]),
                iface(2, &["10.0.0.2"]),
            ],
        );
        let ip6: IpAddr = "2001:db8::1".parse().unwrap();
        let ip4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(net.find(1, ip4, Dir::Up), Some(0));
        assert_eq!(net.find(1, ip6, Dir::Up), Some(2));
        assert_eq!(net.find(1, ip6, Dir::Down), Some(1));
        assert_eq!(net.find(2, ip6, Dir::Up), Some(1));
        let mut rng = Rng::new(1);
        assert_eq!(
            net.transmit(Instant::ZERO, 1, ip6, Dir::Up, 64, &mut rng),
            Fate::Lost
        );
        assert_eq!(
            net.transmit(Instant::ZERO, 1, ip4, Dir::Up, 64, &mut rng),
            Fate::Arrive(Instant::from_millis(10))
        );
        assert_eq!(net.route(ip6, None), Some(1));
        assert_eq!(net.route(ip6, Some(2)), None);
        net.set_interface(1, false);
        assert_eq!(
            net.route(ip4, None),
            Some(2),
            "if2 has 10.0.0.2, so it routes IPv4"
        );
        assert_eq!(
            net.route(ip6, None),
            None,
            "no interface that is up has IPv6"
        );
    }

    #[test]
    fn reject_answers_after_one_round_trip_and_bandwidth_queues() {
        let mut net = Net::default();
        let mut l = link(None, Prefix::Any, Direction::Both, 10, Action::Reject);
        l.params.bandwidth = Some(8_000_000);
        net.reset(&[l], &[iface(1, &["192.168.1.10"])]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mut rng = Rng::new(1);
        assert_eq!(
            net.transmit(Instant::ZERO, 1, ip, Dir::Up, 64, &mut rng),
            Fate::Rejected(Instant::from_millis(20))
        );
        *net.link_mut(0).unwrap() = LinkParams {
            action: Action::Pass,
            ..net.params(1, ip, Dir::Up)
        };
        // 1000 bytes at 8 Mbit/s take 1 ms each on the wire; the second waits.
        assert_eq!(
            net.transmit(Instant::ZERO, 1, ip, Dir::Up, 1000, &mut rng),
            Fate::Arrive(Instant::from_millis(11))
        );
        assert_eq!(
            net.transmit(Instant::ZERO, 1, ip, Dir::Up, 1000, &mut rng),
            Fate::Arrive(Instant::from_millis(12))
        );
    }
}
