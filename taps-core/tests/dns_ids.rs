//! DNS query ids come from the TLS environment's secure random source
//! (RFC 5452 §9.2: ids an off-path attacker cannot predict), not from the
//! machine's seed; a source that fails sends no query at all rather than a
//! predictable one.

use rustls::crypto::{GetRandomFailed, SecureRandom};
use taps_core::{Config, Machine, Output, Preconnection, dns::DnsAction};
use taps_testkit::harness::Harness;
use taps_testkit::tls::with_random;

#[derive(Debug)]
struct Constant;

impl SecureRandom for Constant {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        buf.fill(0xA5);
        Ok(())
    }
}

#[derive(Debug)]
struct Broken;

impl SecureRandom for Broken {
    fn fill(&self, _: &mut [u8]) -> Result<(), GetRandomFailed> {
        Err(GetRandomFailed)
    }
}

fn config(seed: u64) -> Config {
    let mut config = Config::new(seed);
    config.dns.servers = vec!["192.0.2.53:53".parse().unwrap()];
    config
}

/// The ids of every query the first connect to `ids.test` sends.
fn query_ids(mut machine: Machine) -> Vec<u16> {
    let pre = Preconnection::new("ids.test:443".parse().unwrap());
    machine.initiate(taps_core::Instant::ZERO, &pre).unwrap();
    std::iter::from_fn(|| machine.poll())
        .filter_map(|out| match out {
            Output::Dns(DnsAction::Send(send)) => {
                Some(u16::from_be_bytes([send.payload[0], send.payload[1]]))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn query_ids_come_from_the_secure_source_whatever_the_seed() {
    for seed in [1, 2, 0xDEAD_BEEF] {
        let mut config = config(seed);
        config.tls = Some(with_random(&Constant));
        let ids = query_ids(Machine::new(config));
        assert_eq!(ids.len(), 3, "AAAA, A and HTTPS queries");
        assert!(
            ids.iter().all(|&id| id == 0xA5A5),
            "seed {seed}: {ids:04x?}"
        );
    }
    // Without an environment the seeded generator is all there is, so the
    // ids follow the seed: proof the ids above did not.
    let a = query_ids(Machine::new(config(1)));
    let b = query_ids(Machine::new(config(2)));
    assert_ne!(a, b);
}

#[test]
fn a_failing_secure_source_sends_no_query_and_says_why() {
    let mut config = config(1);
    config.tls = Some(with_random(&Broken));
    let mut h = Harness::manual(config);
    let now = h.now;
    let conn = h
        .initiate(now, &Preconnection::new("ids.test:443".parse().unwrap()))
        .unwrap();
    h.settle();
    assert!(
        h.queries.is_empty(),
        "no query may go out with a predictable id"
    );
    let error = h.error(conn).expect("the connect failed").to_string();
    assert!(error.contains("secure random source failed"), "{error}");
}

/// Counts its fills and gives bytes 0, 1, 2, ... so each id shows where in
/// the stream it came from.
#[derive(Debug)]
struct Counting;

static FILLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl SecureRandom for Counting {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        FILLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = i as u8;
        }
        Ok(())
    }
}

#[test]
fn ids_are_drawn_many_at_a_time_and_never_repeat_within_a_draw() {
    let mut c = config(1);
    c.tls = Some(with_random(&Counting));
    let mut machine = Machine::new(c);
    let mut ids = Vec::new();
    for host in ["a.test:443", "b.test:443", "c.test:443"] {
        machine
            .initiate(
                taps_core::Instant::ZERO,
                &Preconnection::new(host.parse().unwrap()),
            )
            .unwrap();
        ids.extend(
            std::iter::from_fn(|| machine.poll()).filter_map(|out| match out {
                Output::Dns(DnsAction::Send(send)) => {
                    Some(u16::from_be_bytes([send.payload[0], send.payload[1]]))
                }
                _ => None,
            }),
        );
    }
    assert_eq!(ids.len(), 9);
    // One fill served nine queries: each id is the next two bytes of it.
    assert_eq!(FILLS.load(std::sync::atomic::Ordering::SeqCst), 1);
    let want: Vec<u16> = (0..9u8)
        .map(|i| u16::from_ne_bytes([2 * i, 2 * i + 1]))
        .collect();
    assert_eq!(ids, want);
}
