//! Races a built-in dual-stack world through the core and prints the
//! waterfall: `example.com` has an AAAA and an A record, the IPv6 address
//! swallows SYNs (a blackhole), the IPv4 one answers in 20 ms. Each policy
//! preset runs on the same world so their behaviour can be compared.
//!
//! Run with `cargo run -p taps-core --example race`.

use std::time::Duration;

use taps_core::{
    Config, Machine, Preconnection,
    dns::DnsConfig,
    dns::{Answer, QueryType},
    race::{Policy, RaceConfig},
};
use taps_testkit::world::{Tcp, World, addrs, ms};

const DNS: &str = "192.168.1.1:53";

fn main() {
    for policy in [Policy::Hev3, Policy::Rfc6555, Policy::Sequential] {
        let machine = Machine::new(Config {
            seed: 7,
            race: RaceConfig::for_policy(policy),
            dns: DnsConfig {
                servers: vec![DNS.parse().expect("literal")],
                ..DnsConfig::default()
            },
            ..taps_testkit::config(0)
        });
        let mut w = World::new(machine);
        w.rule(
            DNS,
            "example.com",
            QueryType::Https,
            12,
            Answer::NoData { negative_ttl: 60 },
        );
        w.rule(
            DNS,
            "example.com",
            QueryType::Aaaa,
            15,
            addrs(&["2001:db8::1"], 300),
        );
        w.rule(
            DNS,
            "example.com",
            QueryType::A,
            10,
            addrs(&["192.0.2.1"], 300),
        );
        w.tcp("[2001:db8::1]:443", Tcp::Blackhole);
        w.tcp("192.0.2.1:443", Tcp::Accept(Duration::from_millis(20)));
        let pre = Preconnection::new("example.com:443".parse().expect("literal"));
        let conn = w.initiate(ms(0), &pre).expect("initiate");
        w.run_until(ms(600_000));
        println!("== policy {} ==", policy.name());
        let trace = w
            .machine
            .connection_info(conn)
            .map(|c| c.trace())
            .expect("connection");
        print!(
            "{}",
            trace.waterfall("example.com:443", &|i| w
                .machine
                .interfaces()
                .iter()
                .find(|x| x.index == i)
                .map(|x| x.name.clone()))
        );
        match w.ready(conn) {
            Some((at, remote, _)) => println!("ready via {remote} after {at}\n"),
            None => match w.error(conn) {
                Some(e) => println!("{e}\n"),
                None => println!("neither ready nor failed\n"),
            },
        }
    }
}
