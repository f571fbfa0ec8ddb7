//! Property tests over random worlds.
//!
//! A random world has one or two client interfaces, up to three A and three
//! AAAA records with random per-type delays (and, when it publishes no HTTPS
//! hints, random DNS failures), an optional HTTPS record whose hints repeat
//! the addresses, and per address a server behaviour (ok, reset, close,
//! stall-after-tcp, stall-tls, or no server) and a link (delay, action,
//! optionally jitter and loss). Every policy runs in every world.
//!
//! Properties:
//!
//! 1. **Core invariants** (every world, every policy): at most one winner,
//!    no attempt after the race settled, every attempt ends, the machine is
//!    idle once every connection settled, every `OpenTcp` gets exactly one
//!    `CloseSocket` and every DNS transaction a `Release` (the world records
//!    any breach as a violation); and the run is deterministic: the same
//!    seed gives the same trace hash.
//! 2. **The oracle is a lower bound** in worlds without jitter, loss or
//!    bandwidth: no policy is ready before the oracle.
//! 3. **Bounded regret** (`hev3`; worlds without jitter, loss, bandwidth
//!    limits, scenario events or DNS failures, whose HTTPS hints repeat the
//!    address records, with at most `max_concurrent_attempts` = 8
//!    candidates): with `T` hev3's time to ready and `O` the oracle's,
//!
//!    ```text
//!    T ≤ O + RD + CAD · m + PD · p
//!    ```
//!
//!    where RD is the Resolution Delay, CAD the Connection Attempt Delay,
//!    `m` the number of attempts hev3 started before it was ready, not
//!    counting attempts to the oracle's own endpoint and interface, PD the
//!    path delay (1 s) and `p` the position of the oracle's interface among
//!    the connection's paths (0 for the primary). See
//!    [`bounded_regret`] for why, and why the naive statement (the
//!    CADs of the attempts started before the *winner*) is not true.
//! 4. **hev3 against sequential**: in the same worlds without connTimeout,
//!    when the first address is fine, `T_hev3 ≤ T_sequential + RD`; see
//!    [`hev3_never_much_slower_than_sequential`] and the three world classes
//!    pinned after it, where the unconditional statement fails (a fourth,
//!    a late HTTPS answer repeating a refused attempt, was a core bug and is
//!    pinned as fixed).
//! 5. **Real TLS** (fewer worlds): with every server a real rustls server,
//!    property 1 holds, every TLS byte replays, and property 2 holds in
//!    worlds without jitter, loss or DNS failures.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use proptest::prelude::*;
use taps_core::{
    Interface, InterfaceAddress, InterfaceKind, TraceKind,
    dns::HttpsRecord,
    race::{Policy, RaceConfig},
};
use taps_sim::oracle::oracle;
use taps_sim::report::trace_hash;
use taps_sim::scenario::{
    Accept, Action, Cert, Client, Connect, Direction, DnsFail, InterfacePrefs, Link, LinkParams,
    PerType, Prefix, Records, Scenario, Server, ServerTls,
};
use taps_sim::{POLICIES, RunOptions, World};

#[derive(Clone, Debug)]
struct Dest {
    server: Option<Accept>,
    tls_time_ms: u64,
    action: Action,
    delay_ms: u64,
}

#[derive(Clone, Debug)]
struct WorldSpec {
    two_interfaces: bool,
    client_v6: bool,
    v4: Vec<Dest>,
    v6: Vec<Dest>,
    dns_delay_ms: [u64; 3],
    dns_fail: [Option<DnsFail>; 3],
    https: bool,
    second_if_delay_ms: u64,
    jitter_ms: u64,
    loss: f64,
    tls: bool,
    conn_timeout_ms: Option<u64>,
    attempt_delay_ms: u64,
    seed: u64,
}

fn dest() -> impl Strategy<Value = Dest> {
    (
        prop_oneof![
            6 => Just(Some(Accept::Ok)),
            1 => Just(Some(Accept::Reset)),
            1 => Just(Some(Accept::Close)),
            1 => Just(Some(Accept::StallAfterTcp)),
            1 => Just(Some(Accept::StallTls)),
            1 => Just(None),
        ],
        0u64..20,
        prop_oneof![5 => Just(Action::Pass), 2 => Just(Action::Blackhole), 1 => Just(Action::Reject)],
        1u64..300,
    )
        .prop_map(|(server, tls_time_ms, action, delay_ms)| Dest {
            server,
            tls_time_ms,
            action,
            delay_ms,
        })
}

fn fail() -> impl Strategy<Value = Option<DnsFail>> {
    prop_oneof![
        12 => Just(None),
        1 => Just(Some(DnsFail::Timeout)),
        1 => Just(Some(DnsFail::ServFail)),
        1 => Just(Some(DnsFail::NxDomain)),
        1 => Just(Some(DnsFail::Truncate)),
        1 => Just(Some(DnsFail::Garbage)),
    ]
}

/// Worlds; `clean` leaves out jitter, loss and DNS failures.
fn world(clean: bool) -> impl Strategy<Value = WorldSpec> {
    (
        (
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(dest(), 0..=3),
            prop::collection::vec(dest(), 0..=3),
            [0u64..400, 0u64..400, 0u64..400],
            [fail(), fail(), fail()],
            prop::bool::weighted(0.3),
        ),
        (
            1u64..300,
            0u64..5,
            prop_oneof![3 => Just(0.0), 1 => 0.01f64..0.3],
            prop::bool::weighted(0.8),
            prop::option::weighted(0.5, 500u64..20_000),
            prop_oneof![3 => Just(250u64), 1 => 1u64..2500],
            any::<u64>(),
        ),
    )
        .prop_map(
            move |(
                (two_interfaces, client_v6, v4, v6, dns_delay_ms, dns_fail, https),
                (second_if_delay_ms, jitter_ms, loss, tls, conn_timeout_ms, attempt_delay_ms, seed),
            )| {
                let mut w = WorldSpec {
                    two_interfaces,
                    client_v6,
                    v4,
                    v6,
                    dns_delay_ms,
                    dns_fail,
                    https,
                    second_if_delay_ms,
                    jitter_ms,
                    loss,
                    tls,
                    conn_timeout_ms,
                    attempt_delay_ms,
                    seed,
                };
                // Hints stand for the address answers; a failed address
                // query would contradict them (see the module doc).
                if clean || w.https {
                    w.dns_fail = [None; 3];
                }
                if clean {
                    w.jitter_ms = 0;
                    w.loss = 0.0;
                    // At most max_concurrent_attempts (8) candidates: see
                    // `eight_blackholes_suspend_the_stagger`.
                    if w.two_interfaces {
                        w.v4.truncate(2);
                        w.v6.truncate(2);
                    }
                }
                w
            },
        )
}

fn iface(name: &str, index: u32, kind: InterfaceKind, addrs: &[IpAddr]) -> Interface {
    Interface {
        name: name.into(),
        index,
        kind,
        addrs: addrs
            .iter()
            .map(|a| InterfaceAddress {
                addr: *a,
                prefix_len: if a.is_ipv4() { 24 } else { 64 },
                deprecated: false,
            })
            .collect(),
        mtu: 1500,
        expensive: kind == InterfaceKind::Cellular,
        constrained: false,
        up: true,
    }
}

fn build(w: &WorldSpec) -> Scenario {
    let mut wlan: Vec<IpAddr> = vec![Ipv4Addr::new(192, 168, 1, 10).into()];
    if w.client_v6 {
        wlan.push(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10).into());
    }
    let mut interfaces = vec![iface("wlan0", 1, InterfaceKind::Wifi, &wlan)];
    if w.two_interfaces {
        let mut cell: Vec<IpAddr> = vec![Ipv4Addr::new(100, 64, 0, 7).into()];
        if w.client_v6 {
            cell.push(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 7).into());
        }
        interfaces.push(iface("rmnet0", 2, InterfaceKind::Cellular, &cell));
    }
    let a: Vec<Ipv4Addr> = (0..w.v4.len())
        .map(|i| Ipv4Addr::new(192, 0, 2, 1 + i as u8))
        .collect();
    let aaaa: Vec<Ipv6Addr> = (0..w.v6.len())
        .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1 + i as u16))
        .collect();
    let ms = Duration::from_millis;
    let mut servers = Vec::new();
    let mut links = vec![Link {
        interface: None,
        to: Prefix::Any,
        direction: Direction::Both,
        params: LinkParams {
            delay: ms(5),
            jitter: ms(w.jitter_ms),
            loss: w.loss,
            bandwidth: None,
            action: Action::Pass,
        },
    }];
    let addrs: Vec<(IpAddr, &Dest)> = a
        .iter()
        .map(|x| IpAddr::V4(*x))
        .zip(&w.v4)
        .chain(aaaa.iter().map(|x| IpAddr::V6(*x)).zip(&w.v6))
        .collect();
    for (ip, d) in &addrs {
        if let Some(accept) = d.server {
            servers.push(Server {
                listen: vec![SocketAddr::new(*ip, 443)],
                tls: ServerTls::Modelled,
                cert: Cert::Ok,
                names: Vec::new(),
                accept,
                tls_time: ms(d.tls_time_ms),
            });
        }
        let to = Prefix::Net {
            addr: *ip,
            len: if ip.is_ipv4() { 32 } else { 128 },
        };
        links.push(Link {
            interface: Some(1),
            to,
            direction: Direction::Both,
            params: LinkParams {
                delay: ms(d.delay_ms),
                jitter: ms(w.jitter_ms),
                loss: w.loss,
                bandwidth: None,
                action: d.action,
            },
        });
        // The second interface reaches every address, on its own delay.
        links.push(Link {
            interface: Some(2),
            to,
            direction: Direction::Both,
            params: LinkParams {
                delay: ms(w.second_if_delay_ms),
                jitter: ms(w.jitter_ms),
                loss: w.loss,
                bandwidth: None,
                action: Action::Pass,
            },
        });
    }
    let https = if w.https && !addrs.is_empty() {
        vec![HttpsRecord {
            priority: 1,
            target: None,
            alpn: vec!["h2".into()],
            no_default_alpn: false,
            port: None,
            ipv4hint: a.iter().copied().collect(),
            ipv6hint: aaaa.iter().copied().collect(),
            ech: false,
        }]
    } else {
        Vec::new()
    };
    let [da, daaaa, dhttps] = w.dns_delay_ms;
    let [fa, faaaa, fhttps] = w.dns_fail;
    Scenario {
        name: "random".into(),
        description: None,
        seed: w.seed,
        client: Client {
            interfaces,
            resolvers: vec!["192.168.1.1:53".parse().unwrap()],
            search: Vec::new(),
            ndots: 1,
            tcp_metrics: Vec::new(),
        },
        dns: taps_sim::scenario::Dns {
            records: vec![Records {
                name: "example.com".into(),
                a,
                aaaa,
                https,
                ttl: 300,
                delay: PerType {
                    a: ms(da),
                    aaaa: ms(daaaa),
                    https: ms(dhttps),
                },
                fail: PerType {
                    a: fa,
                    aaaa: faaaa,
                    https: fhttps,
                },
                forge: Vec::new(),
            }],
            timeout: Duration::from_secs(1),
            attempts: 2,
        },
        servers,
        links,
        events: Vec::new(),
        connect: Connect {
            remote: "example.com:443".parse().unwrap(),
            remote_text: "example.com:443".into(),
            tls: w.tls,
            alpn: Vec::new(),
            policy: Policy::Hev3,
            attempt_delay: Some(ms(w.attempt_delay_ms)),
            resolution_delay: None,
            timeout: w.conn_timeout_ms.map(ms),
            interfaces: InterfacePrefs::default(),
            prohibit_expensive: false,
            prohibit_constrained: false,
            repeat: 1,
            gap: Duration::ZERO,
        },
        expect: None,
    }
}

fn run(sc: &Scenario, policy: Policy) -> taps_sim::RunResult {
    World::new()
        .run(
            sc,
            RunOptions {
                policy,
                ..RunOptions::of(sc)
            },
        )
        .expect("the run finishes")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Property 1: the core's invariants and determinism, in every world
    /// under every policy.
    #[test]
    fn invariants_and_determinism(w in world(false)) {
        let sc = build(&w);
        for policy in POLICIES {
            let r = run(&sc, policy);
            prop_assert!(r.violations.is_empty(), "{policy:?}: {:?}", r.violations);
            let again = run(&sc, policy);
            let hash = |r: &taps_sim::RunResult| trace_hash(r.connections.iter().map(|c| &c.trace));
            prop_assert_eq!(hash(&r), hash(&again));
            prop_assert_eq!(r.end, again.end);
            let c = &r.connections[0];
            if w.conn_timeout_ms.is_some() {
                prop_assert!(c.settled.is_some(), "with connTimeout every connection settles");
            }
        }
    }

    /// Properties 2 and 3: the oracle bounds every policy from below, and
    /// hev3's regret is bounded.
    #[test]
    fn oracle_and_bounded_regret(w in world(true)) {
        let sc = build(&w);
        let hev3 = run(&sc, Policy::Hev3);
        let o = oracle(&sc, &hev3)[0];
        for policy in POLICIES {
            let r = if policy == Policy::Hev3 { hev3.clone() } else { run(&sc, policy) };
            if let Some(t) = r.connections[0].time_to_ready() {
                let o = o.expect("a policy got ready, so the oracle can");
                prop_assert!(o.time_to_ready <= t, "{policy:?} ready at {t:?}, before the oracle's {:?}", o.time_to_ready);
            }
        }
        let paths = if w.two_interfaces { 2 } else { 1 };
        prop_assert!((w.v4.len() + w.v6.len()) * paths <= 8);
        if let (Some(t), Some(o)) = (hev3.connections[0].time_to_ready(), o) {
            let bound = bounded_regret(&sc, &hev3.connections[0].trace, o.remote, o.interface, o.time_to_ready, t);
            prop_assert!(t <= bound, "hev3 ready at {t:?}, above the bound {bound:?} (oracle {o:?})");
        }
    }
}

/// The same world with real TLS: the client runs rustls and every server
/// is a server machine with a certificate from the scenario's CA.
fn real_tls(mut sc: Scenario) -> Scenario {
    for s in &mut sc.servers {
        s.tls = ServerTls::Real;
    }
    sc.connect.tls = true;
    sc
}

proptest! {
    // Real handshakes cost milliseconds each in a debug build: fewer cases.
    #![proptest_config(ProptestConfig { cases: cases().div_ceil(8), ..ProptestConfig::default() })]

    /// Properties 1 and 2 with real TLS: the invariants, runs that repeat
    /// byte for byte, and the oracle (which counts the real flights' sizes)
    /// still a lower bound in clean worlds.
    #[test]
    fn real_tls_keeps_the_invariants_and_replays(w in world(false)) {
        let sc = real_tls(build(&w));
        prop_assert!(sc.servers.is_empty() || sc.real_tls());
        let clean = w.jitter_ms == 0 && w.loss == 0.0 && w.dns_fail == [None; 3];
        let hev3 = run(&sc, Policy::Hev3);
        let o = oracle(&sc, &hev3)[0];
        for policy in POLICIES {
            let r = run(&sc, policy);
            prop_assert!(r.violations.is_empty(), "{policy:?}: {:?}", r.violations);
            let again = run(&sc, policy);
            let hash = |r: &taps_sim::RunResult| trace_hash(r.connections.iter().map(|c| &c.trace));
            prop_assert_eq!(hash(&r), hash(&again));
            prop_assert_eq!((r.wire_bytes, r.wire_hash), (again.wire_bytes, again.wire_hash));
            if let (true, Some(t)) = (clean, r.connections[0].time_to_ready()) {
                let o = o.expect("a policy got ready, so the oracle can");
                prop_assert!(o.time_to_ready <= t, "{policy:?} ready at {t:?}, before the oracle's {:?}", o.time_to_ready);
            }
        }
    }
}

/// The bound of property 3, for a connection hev3 made ready at `t`, whose
/// oracle is (`remote`, `interface`) at `o`.
///
/// Why it holds: let `k` be when the oracle's endpoint became known and `S`
/// its stack time, so `O = k + S`. hev3 starts racing at `R ≤ first
/// positive answer + RD ≤ k + RD` (HEv3 §4.2). The endpoint's lane (on the
/// primary path) is active from `R`; on the p-th path it is active by
/// `R + p·PD`. From `t0 = max(k, activation)` the endpoint is queued, and a
/// staggered lane starts its next attempt at most one CAD after the
/// previous one (sooner after a failure), the first one at once. So the
/// endpoint's attempt starts by `t0 + CAD · (attempts started before it)`,
/// and is ready `S` later (no jitter, no loss); if hev3 wins first, it wins
/// before that start. Either way `T ≤ k + RD + p·PD + CAD·m + S`.
///
/// A first statement of this bound counted only the attempts started before
/// the *winner*. That is false: when the first attempt wins slowly (a slow
/// TLS server, 240 ms) while the second address would have been quick
/// (10 ms), hev3 is ready at 240 ms with no attempt before the winner, but
/// `O + RD = 60 ms`. What delays hev3 is the queue in front of the oracle's
/// endpoint, so the attempts counted are those started before readiness,
/// whichever won. The bound is tight: a world whose first m addresses are
/// blackholed and whose oracle endpoint's answer comes RD before the start
/// of racing reaches it exactly (see `the_bound_is_tight`).
fn bounded_regret(
    sc: &Scenario,
    trace: &taps_core::Trace,
    remote: SocketAddr,
    interface: u32,
    o: Duration,
    t: Duration,
) -> Duration {
    let race = RaceConfig::hev3();
    let rd = sc.connect.resolution_delay.unwrap_or(race.resolution_delay);
    let mut cfg = race;
    if let Some(d) = sc.connect.attempt_delay {
        cfg.connection_attempt_delay = d;
    }
    let cad = cfg.attempt_delay();
    let ready_at = trace.start + t;
    let m = trace
        .events
        .iter()
        .filter(|e| e.at <= ready_at)
        .filter(|e| matches!(e.kind, TraceKind::AttemptStarted { remote: r, interface: i, .. } if (r, i) != (remote, Some(interface))))
        .count() as u32;
    let p = sc
        .client
        .interfaces
        .iter()
        .position(|i| i.index == interface)
        .unwrap_or(0) as u32;
    o + rd + cad * m + Duration::from_secs(1) * p
}

#[test]
fn the_bound_is_tight() {
    // Two A records, the first blackholed; the A answer arrives at 10 ms,
    // AAAA (empty) and HTTPS only at 210 ms, so hev3 waits out the
    // Resolution Delay and starts at 60 ms with the dead address, then the
    // good one at 310 ms: ready at 350 ms. The oracle starts the good
    // address at 10 ms: 50 ms. The bound, 50 + RD 50 + 1 CAD 250 = 350 ms,
    // is met exactly.
    let ok = Dest {
        server: Some(Accept::Ok),
        tls_time_ms: 0,
        action: Action::Pass,
        delay_ms: 10,
    };
    let dead = Dest {
        action: Action::Blackhole,
        ..ok.clone()
    };
    let w = WorldSpec {
        two_interfaces: false,
        client_v6: true,
        v4: vec![dead, ok],
        v6: Vec::new(),
        dns_delay_ms: [0, 200, 200],
        dns_fail: [None; 3],
        https: false,
        second_if_delay_ms: 10,
        jitter_ms: 0,
        loss: 0.0,
        tls: true,
        conn_timeout_ms: None,
        attempt_delay_ms: 250,
        seed: 1,
    };
    let sc = build(&w);
    let hev3 = run(&sc, Policy::Hev3);
    let o = oracle(&sc, &hev3)[0].unwrap();
    let t = hev3.connections[0].time_to_ready().unwrap();
    assert_eq!(o.remote, "192.0.2.2:443".parse().unwrap());
    assert_eq!(o.time_to_ready, Duration::from_millis(50));
    assert_eq!(t, Duration::from_millis(350));
    let bound = bounded_regret(
        &sc,
        &hev3.connections[0].trace,
        o.remote,
        o.interface,
        o.time_to_ready,
        t,
    );
    assert_eq!(bound, t, "the bound is met exactly");
}

fn first_attempt(r: &taps_sim::RunResult) -> Option<(SocketAddr, Option<u32>)> {
    r.connections[0]
        .trace
        .events
        .iter()
        .find_map(|e| match e.kind {
            TraceKind::AttemptStarted {
                remote, interface, ..
            } => Some((remote, interface)),
            _ => None,
        })
}

fn winning_attempt(r: &taps_sim::RunResult) -> Option<u16> {
    r.connections[0]
        .trace
        .events
        .iter()
        .find_map(|e| match e.kind {
            TraceKind::Winner { attempt } => Some(attempt),
            _ => None,
        })
}

proptest! {
    // The precondition rejects about half the worlds.
    #![proptest_config(ProptestConfig { cases: cases(), max_global_rejects: cases() * 4, ..ProptestConfig::default() })]

    /// Property 4: when the first address is fine, hev3 is never slower
    /// than `sequential` by more than the Resolution Delay.
    ///
    /// "The first address is fine" means: `sequential`'s first attempt wins,
    /// and hev3's first attempt goes to the same endpoint over the same
    /// interface. The worlds have no connTimeout: one that expires less than
    /// RD after `sequential` is ready fails hev3 outright. Then hev3 starts it at most RD after the first positive
    /// answer, and `sequential` cannot start before that answer, so hev3's
    /// copy of the winning attempt is ready at most RD after `sequential`'s
    /// (no jitter or loss), and anything hev3 wins with is sooner still.
    ///
    /// Beyond that precondition the statement is false, and not only by a
    /// little; each class is pinned by a test below:
    /// `rd_expiry_commits_to_the_other_family`,
    /// `interleaving_puts_a_slow_address_first`,
    /// `fast_failures_pay_the_ten_millisecond_spacing`
    /// (`a_late_https_answer_does_not_repeat_an_attempt` pins the fix of a
    /// fourth).
    #[test]
    fn hev3_never_much_slower_than_sequential(w in world(true)) {
        // A connTimeout falling less than RD after sequential's readiness
        // cuts hev3 off (it is up to RD late by design): not a regret but a
        // deadline, so these worlds have none.
        let w = WorldSpec { conn_timeout_ms: None, ..w };
        let sc = build(&w);
        let hev3 = run(&sc, Policy::Hev3);
        let seq = run(&sc, Policy::Sequential);
        let first_is_fine = winning_attempt(&seq) == Some(1)
            && first_attempt(&seq).is_some()
            && first_attempt(&seq) == first_attempt(&hev3);
        prop_assume!(first_is_fine);
        let s = seq.connections[0].time_to_ready().expect("sequential won");
        let h = hev3.connections[0].time_to_ready().expect("hev3 races the same winning attempt");
        let rd = RaceConfig::hev3().resolution_delay;
        prop_assert!(h <= s + rd, "hev3 {h:?}, sequential {s:?}");
    }
}

fn d(server: Accept, action: Action, delay_ms: u64) -> Dest {
    Dest {
        server: Some(server),
        tls_time_ms: 0,
        action,
        delay_ms,
    }
}

fn base(v4: Vec<Dest>, v6: Vec<Dest>, dns_delay_ms: [u64; 3]) -> WorldSpec {
    WorldSpec {
        two_interfaces: false,
        client_v6: true,
        v4,
        v6,
        dns_delay_ms,
        dns_fail: [None; 3],
        https: false,
        second_if_delay_ms: 1,
        jitter_ms: 0,
        loss: 0.0,
        tls: false,
        conn_timeout_ms: None,
        attempt_delay_ms: 250,
        seed: 0,
    }
}

fn hev3_and_sequential(w: &WorldSpec) -> (Duration, Duration) {
    let sc = build(w);
    let h = run(&sc, Policy::Hev3).connections[0]
        .time_to_ready()
        .unwrap();
    let s = run(&sc, Policy::Sequential).connections[0]
        .time_to_ready()
        .unwrap();
    (h, s)
}

const MS: fn(u64) -> Duration = Duration::from_millis;

/// Class 1. The A answer comes at 10 ms, AAAA at 61 ms: one millisecond
/// after the Resolution Delay ran out, so hev3 has already committed to
/// IPv4, a slow path (328 ms round trip). The IPv6 address waits for the
/// next Connection Attempt Delay tick (310 ms) and wins at 312 ms;
/// `sequential`, which waits for both answers, goes to IPv6 first at 61 ms
/// and is ready at 63 ms. hev3 is 249 ms slower: up to one CAD.
#[test]
fn rd_expiry_commits_to_the_other_family() {
    let w = base(
        vec![d(Accept::Ok, Action::Pass, 164)],
        vec![d(Accept::Ok, Action::Pass, 1)],
        [0, 51, 0],
    );
    assert_eq!(hev3_and_sequential(&w), (MS(312), MS(63)));
}

/// Class 2. Both start with the same IPv6 address, which is refused after
/// 260 ms. `sequential` moves to the second IPv6 address (2 ms away) and is
/// ready at 279 ms; hev3 interleaves families (HEv3 §5.3), so its next
/// attempt is the IPv4 address, 156 ms away: ready at 426 ms, 147 ms later.
#[test]
fn interleaving_puts_a_slow_address_first() {
    let mut w = base(
        vec![d(Accept::Ok, Action::Pass, 78)],
        vec![
            d(Accept::Ok, Action::Reject, 130),
            d(Accept::Ok, Action::Pass, 1),
        ],
        [7, 0, 0],
    );
    w.attempt_delay_ms = 260;
    assert_eq!(hev3_and_sequential(&w), (MS(426), MS(279)));
}

/// Class 3. An IPv4-only client; the first two IPv4 addresses refuse at
/// once (2 ms round trip), the third works; the HTTPS answer is slow, so
/// hev3 waits the full Resolution Delay. `sequential` fails over
/// immediately: attempts at 10, 12 and 14 ms, ready at 16 ms. hev3 may not
/// start an attempt within 10 ms of the previous one (HEv3 §6): 60, 70 and
/// 80 ms, ready at 82 ms, which is RD plus 2 × 8 ms behind.
#[test]
fn fast_failures_pay_the_ten_millisecond_spacing() {
    let refuse = || d(Accept::Ok, Action::Reject, 1);
    let mut w = base(
        vec![refuse(), refuse(), d(Accept::Ok, Action::Pass, 1)],
        Vec::new(),
        [0, 0, 300],
    );
    w.client_v6 = false;
    assert_eq!(hev3_and_sequential(&w), (MS(82), MS(16)));
}

/// Formerly class 4, now fixed in the core. An IPv4-only destination reached
/// over a rejecting Wi-Fi (cellular works) whose HTTPS record arrives at
/// 61 ms, after hev3 started racing at 60 ms. The record makes a new
/// protocol option (ALPN h2) for the same address; the core used to attempt
/// it on Wi-Fi again (ready at 74 ms against `sequential`'s 14 ms). Every
/// attempt runs the same stack, so a refused address is not tried again
/// under another service: the cellular path goes next and hev3 is ready at
/// 64 ms, within the Resolution Delay of `sequential`.
#[test]
fn a_late_https_answer_does_not_repeat_an_attempt() {
    let mut w = base(
        vec![d(Accept::Ok, Action::Reject, 1)],
        Vec::new(),
        [0, 0, 51],
    );
    w.two_interfaces = true;
    w.client_v6 = false;
    w.https = true;
    assert_eq!(hev3_and_sequential(&w), (MS(64), MS(14)));
    let sc = build(&w);
    let attempts: Vec<_> = run(&sc, Policy::Hev3).connections[0]
        .trace
        .events
        .iter()
        .filter_map(|e| match e.kind {
            TraceKind::AttemptStarted {
                remote, interface, ..
            } => Some((remote, interface)),
            _ => None,
        })
        .collect();
    let addr: SocketAddr = "192.0.2.1:443".parse().unwrap();
    assert_eq!(attempts, vec![(addr, Some(1)), (addr, Some(2))]);
}

/// The bound of property 3 needs the stagger to keep going: with more
/// than `max_concurrent_attempts` (8) blackholed candidates in flight, the
/// ninth waits for one of them to time out (127 s). Nine A records, the
/// first eight blackholed: hev3 is ready at 127 052 ms, far above
/// O + RD + 8 · CAD = 52 + 50 + 2000 ms.
#[test]
fn eight_blackholes_suspend_the_stagger() {
    let mut text = String::from(
        "name = \"nine\"\n[client]\ninterfaces = [{ name = \"eth0\", kind = \"wired\", addrs = [\"192.168.1.10/24\"] }]\ndns = [\"192.168.1.1\"]\n",
    );
    let addrs: Vec<String> = (1..=9).map(|i| format!("\"192.0.2.{i}\"")).collect();
    text += &format!(
        "[dns.records.\"example.com\"]\na = [{}]\n",
        addrs.join(", ")
    );
    text += "[[server]]\nlisten = [\"192.0.2.9:443\"]\ntls_time = \"2ms\"\n";
    text += "[[link]]\ndelay = \"5ms\"\n[[link]]\nto = \"192.0.2.0/29\"\naction = \"blackhole\"\n[[link]]\nto = \"192.0.2.8\"\naction = \"blackhole\"\n";
    text += "[connect]\nremote = \"example.com:443\"\n";
    let sc = Scenario::parse(&text).unwrap();
    let hev3 = run(&sc, Policy::Hev3);
    let t = hev3.connections[0].time_to_ready().unwrap();
    let o = oracle(&sc, &hev3)[0].unwrap();
    assert_eq!(o.time_to_ready, MS(10 + 22));
    assert_eq!(t, MS(10 + 127_000 + 22));
    let bound = bounded_regret(
        &sc,
        &hev3.connections[0].trace,
        o.remote,
        o.interface,
        o.time_to_ready,
        t,
    );
    assert!(t > bound, "the bound needs at most 8 candidates");
}

/// 256 cases, or `PROPTEST_CASES` for a longer hunt.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}
