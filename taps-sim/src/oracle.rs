//! The oracle: the best any client could have done in a world.
//!
//! For each connection, the oracle's time to ready is the earliest moment
//! the fastest full stack would be ready if it were started the moment its
//! address was known:
//!
//! - an endpoint is *known* at the earliest arrival of an A or AAAA answer
//!   containing it, or of an HTTPS answer whose `ipv4hint`/`ipv6hint` has it
//!   (at the record's port), or at the start for an address literal. Arrival
//!   times are those of the `hev3` run of the same world, read from its trace
//!   (`hev3` asks all three questions; answers from the cache arrive at the
//!   connection's start);
//! - it is *ready* one jitter-free, loss-free TCP handshake round trip later
//!   over the best interface the connection's properties allow (the same
//!   `derive_paths` the core uses, so prohibitions hold), plus, with TLS, the
//!   handshake's round trip and the server's `tls_time`; serialization time
//!   on links with a bandwidth counts, queueing does not. The handshake's
//!   two flights have the modelled sizes, or for `tls = "real"` servers the
//!   sizes of the real ClientHello and server flight the run saw (to that
//!   remote, else to any; the smallest seen);
//! - an endpoint whose server stalls, resets, closes or is missing never
//!   becomes ready, nor does a real server whose certificate the client
//!   rejects. Links and interfaces are taken as the scenario's
//!   `[[event]]`s have set them at each packet's time; a packet dropped then
//!   is retried on the kernel's schedule (SYN after 1, 2, 4 … s; data after
//!   the RTO), so a path that heals later still counts, as it would for a
//!   real attempt.
//!
//! Because the oracle uses no jitter and no loss, it is a lower bound of any
//! policy's time to ready in worlds whose DNS timing matches the `hev3` run.

use core::time::Duration;
use std::net::{IpAddr, SocketAddr};

use taps_core::{DnsOutcome, Host, Instant, Trace, TraceKind, derive_paths, dns::QueryType};

use crate::net::{
    CONTROL_BYTES, DATA_RETRIES, Dir, MSS, Net, RTO_AFTER_SYN_LOSS, RTO_MIN, SYN_RETRIES, SYN_RTO,
    TCP_OVERHEAD,
};
use crate::scenario::{Action, Scenario, ServerTls};
use crate::server::{CLIENT_HELLO_BYTES, SERVER_FLIGHT_BYTES, ServerReply, tls_reply};
use crate::world::{RunResult, TlsFlights};

/// The oracle's pick for one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OracleChoice {
    /// Time to ready from the connection's start.
    pub time_to_ready: Duration,
    /// The endpoint.
    pub remote: SocketAddr,
    /// The interface index.
    pub interface: u32,
    /// When its address was known, from the connection's start.
    pub known: Duration,
}

/// The oracle for every connection of `hev3` (a run of `sc` with the `hev3`
/// policy).
pub fn oracle(sc: &Scenario, hev3: &RunResult) -> Vec<Option<OracleChoice>> {
    let mut cache = NetAt::new(sc);
    hev3.connections
        .iter()
        .map(|c| oracle_conn(sc, &c.trace, &hev3.tls_flights, &mut cache))
        .collect()
}

/// Endpoints the trace shows known, with the time each became known.
pub fn known_endpoints(sc: &Scenario, trace: &Trace) -> Vec<(SocketAddr, Instant)> {
    let port = sc.connect.port();
    let mut known: Vec<(SocketAddr, Instant)> = Vec::new();
    let mut add = |addr: SocketAddr, at: Instant| match known.iter_mut().find(|(a, _)| *a == addr) {
        Some((_, t)) => *t = (*t).min(at),
        None => known.push((addr, at)),
    };
    if let Some(Host::Ip(ip)) = &sc.connect.remote.host {
        add(SocketAddr::new(*ip, port), trace.start);
        return known;
    }
    let Some(records) = sc.connect.host_name().and_then(|n| sc.dns.lookup(n)) else {
        return known;
    };
    for e in &trace.events {
        let TraceKind::DnsAnswer {
            qtype,
            outcome: DnsOutcome::Positive { .. },
            ..
        } = e.kind
        else {
            continue;
        };
        match qtype {
            QueryType::A => {
                for a in &records.a {
                    add(SocketAddr::new(IpAddr::V4(*a), port), e.at);
                }
            }
            QueryType::Aaaa => {
                for a in &records.aaaa {
                    add(SocketAddr::new(IpAddr::V6(*a), port), e.at);
                }
            }
            QueryType::Https => {
                for r in records.https.iter().filter(|r| r.priority > 0) {
                    let p = r.port.unwrap_or(port);
                    for a in &r.ipv4hint {
                        add(SocketAddr::new(IpAddr::V4(*a), p), e.at);
                    }
                    for a in &r.ipv6hint {
                        add(SocketAddr::new(IpAddr::V6(*a), p), e.at);
                    }
                }
            }
        }
    }
    known
}

fn oracle_conn(
    sc: &Scenario,
    trace: &Trace,
    flights: &[TlsFlights],
    nets: &mut NetAt<'_>,
) -> Option<OracleChoice> {
    let known = known_endpoints(sc, trace);
    let interfaces = nets.at(trace.start).interfaces().to_vec();
    let props = sc.connect.properties();
    let paths = derive_paths(&interfaces, &props.selection, None).ok()?;
    let mut best: Option<OracleChoice> = None;
    for (remote, at) in known {
        for path in &paths {
            let Some(index) = path.interface else {
                continue;
            };
            let usable = interfaces
                .iter()
                .any(|i| i.index == index && i.has_family(remote.is_ipv6()));
            if !usable {
                continue;
            }
            let Some(ready) = ideal_stack(sc, nets, flights, at, index, remote) else {
                continue;
            };
            let choice = OracleChoice {
                time_to_ready: ready - trace.start,
                remote,
                interface: index,
                known: at - trace.start,
            };
            if best.is_none_or(|b| choice.time_to_ready < b.time_to_ready) {
                best = Some(choice);
            }
        }
    }
    best
}

/// When a stack to `remote` over `interface` started at `start` would be
/// ready on ideal links, if ever. A packet a link drops at the time (a
/// blackhole or reject that an `[[event]]` later lifts, an interface that
/// comes back) is retried on the kernel's schedule, as the real attempt
/// would: SYNs after 1, 2, 4 … s (six retries), data after the RTO.
/// `flights`: the real TLS flight sizes a run saw ([`RunResult::tls_flights`]).
pub fn ideal_stack(
    sc: &Scenario,
    nets: &mut NetAt<'_>,
    flights: &[TlsFlights],
    start: Instant,
    interface: u32,
    remote: SocketAddr,
) -> Option<Instant> {
    let server = sc.server_at(remote)?;
    let ip = remote.ip();
    // The TCP handshake, the SYN resent until a SYN-ACK comes back.
    let mut connected = None;
    let mut syn_at = start;
    for n in 0..=SYN_RETRIES {
        if rejects(nets, syn_at, interface, ip) {
            // A RST: the attempt fails, nothing is retried.
            return None;
        }
        let up = nets
            .at(syn_at)
            .ideal(syn_at, interface, ip, Dir::Up, CONTROL_BYTES);
        let down = up.and_then(|t| nets.at(t).ideal(t, interface, ip, Dir::Down, CONTROL_BYTES));
        if let Some(t) = down {
            connected = Some((t, n));
            break;
        }
        syn_at += SYN_RTO * (1u32 << n);
    }
    let (t2, retries) = connected?;
    if !sc.connect.tls {
        return Some(t2);
    }
    let ServerReply::Flight {
        after,
        completes: true,
        ..
    } = tls_reply(server, true)
    else {
        return None;
    };
    let (hello, flight) = if server.tls == ServerTls::Real {
        if !sc.certificate_verifies(server) {
            return None;
        }
        let seen = flights
            .iter()
            .find(|f| f.remote == remote)
            .copied()
            .or_else(|| {
                flights.iter().copied().reduce(|a, b| TlsFlights {
                    client: a.client.min(b.client),
                    server: a.server.min(b.server),
                    ..a
                })
            });
        seen.map_or((CLIENT_HELLO_BYTES, SERVER_FLIGHT_BYTES), |f| {
            (f.client, f.server)
        })
    } else {
        (CLIENT_HELLO_BYTES, SERVER_FLIGHT_BYTES)
    };
    let rtt = t2 - syn_at;
    let rto = if retries > 0 {
        RTO_AFTER_SYN_LOSS
    } else {
        rtt + RTO_MIN.max(rtt * 2)
    };
    let hello = hello + TCP_OVERHEAD * hello.div_ceil(MSS).max(1);
    let t3 = deliver(nets, t2, interface, ip, Dir::Up, hello, rto)?;
    let flight = flight + TCP_OVERHEAD * flight.div_ceil(MSS).max(1);
    deliver(nets, t3 + after, interface, ip, Dir::Down, flight, rto)
}

/// The arrival of a flight sent at `at` and resent after `rto`, doubling,
/// until a link lets it through (at most [`DATA_RETRIES`] resends).
fn deliver(
    nets: &mut NetAt<'_>,
    mut at: Instant,
    interface: u32,
    ip: IpAddr,
    dir: Dir,
    bytes: u32,
    rto: Duration,
) -> Option<Instant> {
    for n in 0..=u32::from(DATA_RETRIES) {
        if dir == Dir::Up && rejects(nets, at, interface, ip) {
            return None;
        }
        if let Some(t) = nets.at(at).ideal(at, interface, ip, dir, bytes) {
            return Some(t);
        }
        at += rto * (1u32 << n.min(16));
    }
    None
}

/// Whether the link towards `ip` answers packets with a RST at `at`.
fn rejects(nets: &mut NetAt<'_>, at: Instant, interface: u32, ip: IpAddr) -> bool {
    let net = nets.at(at);
    net.interfaces()
        .iter()
        .any(|i| i.index == interface && i.up)
        && net.params(interface, ip, Dir::Up).action == Action::Reject
}

/// The network as the scenario's events have shaped it at a given time.
pub struct NetAt<'s> {
    sc: &'s Scenario,
    net: Net,
    /// Events applied to `net` so far; rebuilt when asked for an earlier time.
    applied: usize,
    at: Instant,
}

impl<'s> NetAt<'s> {
    /// The network at time zero.
    pub fn new(sc: &'s Scenario) -> Self {
        let mut net = Net::default();
        net.reset(&sc.links, &sc.client.interfaces);
        NetAt {
            sc,
            net,
            applied: 0,
            at: Instant::ZERO,
        }
    }

    /// The network at `t`.
    pub fn at(&mut self, t: Instant) -> &Net {
        if t < self.at {
            self.net.reset(&self.sc.links, &self.sc.client.interfaces);
            self.applied = 0;
        }
        self.at = t;
        while let Some(e) = self.sc.events.get(self.applied) {
            if Instant::ZERO + e.at > t {
                break;
            }
            self.net.apply(&e.change);
            self.applied += 1;
        }
        &self.net
    }
}
