//! Shared workloads for taps' criterion benchmarks and for the allocation
//! budget tests, so both measure exactly the same thing.
//!
//! - [`DualStackEstablishment`]: one whole dual-stack establishment through
//!   the machine: HTTPS, AAAA and A queries as real DNS messages, their
//!   answers (HTTPS negative), an IPv6 attempt, the IPv4 attempt one
//!   Connection Attempt Delay later, the IPv6 win, and close.
//! - [`race_only`]: the racing layer alone, fed typed DNS results: HTTPS
//!   negative, AAAA and A positive with one address each, IPv6 wins.
//! - [`closing`]: the peer of the loopback connect benchmarks.

pub mod closing;
pub mod stack;

use std::net::IpAddr;
use std::time::Duration;

use taps_core::{
    Config, Event, HostName, Input, Instant, Machine, Output, PathBranch, Preconnection, SocketId,
    dns::{Answer, QueryType, encode_query},
    dns::{DnsAction, DnsConfig},
    race::History,
    race::{AddressAnswer, Expected, Family, Race, RaceAction, RaceConfig, RaceEnv},
};
use taps_testkit::dns::{build_response, parse_query};

const SERVER: &str = "192.0.2.53:53";

/// A machine and pre-built DNS answers for repeated establishments.
pub struct DualStackEstablishment {
    machine: Machine,
    pre: Preconnection,
    /// Responses for HTTPS, AAAA, A, in the order the machine asks (HEv3
    /// §4.1); each iteration patches in the query's id.
    responses: [Vec<u8>; 3],
    now: Instant,
}

fn response(name: &HostName, qtype: QueryType, answer: &Answer) -> Vec<u8> {
    let mut query = Vec::new();
    encode_query(0, name, qtype, &mut query);
    let question = parse_query(&query).expect("our own query parses");
    build_response(&question, answer, false)
}

impl Default for DualStackEstablishment {
    fn default() -> Self {
        Self::new()
    }
}

impl DualStackEstablishment {
    /// A machine with one DNS server and answers for `example.com`.
    pub fn new() -> Self {
        let machine = Machine::new(Config {
            seed: 1,
            dns: DnsConfig {
                servers: vec![SERVER.parse().expect("literal")],
                ..DnsConfig::default()
            },
            ..taps_testkit::config(0)
        });
        let name = HostName::new("example.com").expect("literal");
        let v6: IpAddr = "2001:db8::1".parse().expect("literal");
        let v4: IpAddr = "192.0.2.1".parse().expect("literal");
        let responses = [
            response(
                &name,
                QueryType::Https,
                &Answer::NoData { negative_ttl: 300 },
            ),
            response(
                &name,
                QueryType::Aaaa,
                &Answer::Addresses {
                    addrs: [v6].into_iter().collect(),
                    ttl: 300,
                },
            ),
            response(
                &name,
                QueryType::A,
                &Answer::Addresses {
                    addrs: [v4].into_iter().collect(),
                    ttl: 300,
                },
            ),
        ];
        let pre = Preconnection::new("example.com:443".parse().expect("literal"));
        DualStackEstablishment {
            machine,
            pre,
            responses,
            now: Instant::from_millis(1),
        }
    }

    /// Runs one establishment and closes it. Returns the number of
    /// connection attempts started (2 when all went as designed).
    pub fn run(&mut self) -> usize {
        let m = &mut self.machine;
        // Each establishment starts cold: every answer comes off the wire.
        m.flush_dns_cache();
        let t0 = self.now;
        let server = SERVER.parse().expect("literal");
        let conn = m.initiate(t0, &self.pre).expect("initiate");
        let mut seen = Seen::default();
        while let Some(out) = m.poll() {
            seen.take(out);
        }
        let t_answer = t0 + Duration::from_millis(10);
        for (i, (txn, id)) in seen.sends.into_iter().enumerate() {
            let Some(txn) = txn else { continue };
            let payload = &mut self.responses[i];
            payload[..2].copy_from_slice(&id.to_be_bytes());
            m.handle(
                t_answer,
                Input::DnsDatagram {
                    txn,
                    from: server,
                    payload,
                },
            );
            while let Some(out) = m.poll() {
                seen.take(out);
            }
        }
        // The Connection Attempt Delay starts the IPv4 attempt...
        let t_second = m.poll_timeout().expect("attempt timer");
        m.handle_timeout(t_second);
        while let Some(out) = m.poll() {
            seen.take(out);
        }
        // ...and then the IPv6 attempt connects and wins.
        let t_win = t_second + Duration::from_millis(5);
        if let Some(v6) = seen.sockets[0] {
            m.handle(t_win, Input::SocketConnected { socket: v6 });
        }
        let mut ready = false;
        while let Some(out) = m.poll() {
            ready |= matches!(out, Output::Event(Event::Ready { .. }));
        }
        assert!(ready, "the establishment completed");
        m.connection(conn).close(t_win);
        while m.poll().is_some() {}
        self.now = t_win + Duration::from_secs(2);
        // Let lingering DNS finish so every iteration starts alike.
        m.handle_timeout(self.now);
        seen.attempts
    }
}

/// What one establishment's outputs asked for.
#[derive(Default)]
struct Seen {
    /// (transaction, DNS id) of the three queries, in send order.
    sends: [(Option<taps_core::DnsTxnId>, u16); 3],
    queries: usize,
    sockets: [Option<SocketId>; 2],
    attempts: usize,
}

impl Seen {
    fn take(&mut self, out: Output) {
        match out {
            Output::Dns(DnsAction::Send(s)) if self.queries < 3 => {
                self.sends[self.queries] = (
                    Some(s.txn),
                    u16::from_be_bytes([s.payload[0], s.payload[1]]),
                );
                self.queries += 1;
            }
            Output::OpenTcp { socket, .. } => {
                self.sockets[self.attempts % 2] = Some(socket);
                self.attempts += 1;
            }
            _ => {}
        }
    }
}

/// The racing layer alone: HTTPS negative, AAAA and A with one address each,
/// the IPv6 attempt wins. Returns the winner's address.
pub fn race_only(history: &History) -> Option<std::net::SocketAddr> {
    const V6: [IpAddr; 1] = [IpAddr::V6(std::net::Ipv6Addr::new(
        0x2001, 0xdb8, 0, 0, 0, 0, 0, 1,
    ))];
    const V4: [IpAddr; 1] = [IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1))];
    let t0 = Instant::from_millis(1);
    let env = RaceEnv {
        interfaces: &[],
        history,
    };
    let expected = Expected {
        v4: true,
        v6: true,
        svcb: true,
    };
    let mut race = Race::new(
        t0,
        RaceConfig::hev3(),
        443,
        &[PathBranch { interface: None }],
        expected,
        None,
        1,
    );
    race.on_service_info(t0, env, None);
    race.on_addresses(t0, env, Family::V6, AddressAnswer::Positive(&V6));
    race.on_addresses(t0, env, Family::V4, AddressAnswer::Positive(&V4));
    let mut started = None;
    while let Some(a) = race.poll_action() {
        if let RaceAction::Start { candidate, .. } = a {
            started.get_or_insert(candidate);
        }
    }
    race.on_connected(t0 + Duration::from_millis(20), started?);
    let mut winner = None;
    while let Some(a) = race.poll_action() {
        if let RaceAction::Won { candidate } = a {
            winner = race.candidate(candidate).map(|c| c.remote);
        }
    }
    winner
}
