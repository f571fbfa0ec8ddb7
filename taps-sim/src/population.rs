//! Population runs: many random worlds drawn from a profile, each raced
//! under every policy, with the oracle alongside.
//!
//! # Profile `seed-telemetry`
//!
//! A world is one client making one connection to `example.com:443` (TLS,
//! modelled) through a resolver on its LAN. Every draw below comes from the
//! run's seed, so a population replays exactly. "Log-normal" means
//! `median · e^(σ·Z)` with `Z` the Irwin–Hall approximation of a standard
//! normal (the sum of twelve uniforms minus six, so |Z| ≤ 6), computed with
//! basic float operations only, so the numbers are the same on every
//! platform.
//!
//! | what | distribution |
//! |---|---|
//! | interfaces | 80%: `wlan0` (Wi-Fi) alone; 20%: `wlan0` and `rmnet0` (cellular, expensive), both usable |
//! | client IPv6 | `wlan0`: 70% dual-stack, else IPv4 only; `rmnet0`: 50% dual-stack |
//! | destination addresses | 53%: one A record; 47%: several: 1–2 AAAA (or none, 25%) and 1–3 A, at least two in all |
//! | broken first address | 5% of multi-address destinations: the address a client tries first (first AAAA for a client with IPv6 on `wlan0`, else first A) is broken: 50% silently (blackhole), 50% by reset (RST to the SYN, one round trip later). For an IPv4-only client the broken A may be its only usable address, so some worlds fail under every policy and the oracle |
//! | HTTPS record | 15% of destinations: ServiceMode, `alpn = ["h2"]`, hints equal to the addresses |
//! | Wi-Fi RTT | log-normal, median 30 ms, σ 0.7, clamped to 2 ms–3 s |
//! | cellular RTT | log-normal, median 60 ms, σ 0.6, clamped to 2 ms–3 s |
//! | IPv6 path | the interface's RTT times a log-normal factor, median 1.0, σ 0.15 |
//! | jitter | up to 10% of the one-way delay, per packet |
//! | loss | 3% of clients: 0.5–3% per packet on every path |
//! | resolver | 2 ms away on the LAN; time per answer log-normal, median 15 ms, σ 1.0 (shared by the three types) times a per-type factor (median 1.0, σ 0.3); 2% of destinations answer AAAA a further log-normal 150 ms (σ 0.5) late |
//! | TLS server time | log-normal, median 3 ms, σ 0.5 |
//! | kernel TCP metrics (`client.tcp_metrics`) | per interface, 70%: the device has been online a while, and the kernel remembers 1–8 connections other processes made over it (Linux keeps them an hour; the core uses those under 10 minutes), each from the interface's IPv4 address, or its IPv6 address (half of them, when dual-stack), to another host (198.51.100.0/24, or its own 2001:db8:77:k::/64), with the path's RTT times a log-normal factor (median 1.2, σ 0.4: other servers sit at other distances), RTTVAR the RTT times a log-normal (median 0.25, σ 0.5), updated uniformly 0–5 minutes before; of those clients, 20% on `wlan0` also reached the destination's own addresses before (not a broken one), at the path's RTT |
//!
//! The kernel's memory is what HEv3 §6's RTT-derived Connection Attempt
//! Delay can use on a first connection to a host: every world makes one
//! connection on a fresh machine, so the machine's own history is empty.
//! It is drawn from a stream of its own (seeded from the world's seed), so
//! every other draw is as it was before it existed, and `hev3-static`
//! (which ignores it) gives exactly the figures `hev3` gave then.
//!
//! # Reported per policy and for the oracle
//!
//! Policies are [`VARIANTS`]: `hev3` (with the RTT-derived delay),
//! `hev3-static` (the fixed 250 ms), `rfc6555` and `sequential`.
//!
//! - time to ready of the connections that became ready: p50, p90, p99
//!   (nearest rank);
//! - regret p90 and p99: per connection ready under both, its time to
//!   ready minus the oracle's, at those percentiles (a percentile of
//!   differences, not a difference of percentiles: the worlds where a
//!   policy loses time, not the slowest worlds);
//! - where the regret tail comes from: of the connections whose regret is
//!   at or above the p90 (and the p99) value, the share per cause
//!   ([`RegretCause`]: waiting for DNS with the oracle's endpoint, earlier
//!   attempts before it, or another family, address or interface than
//!   the oracle's), so a policy change can be aimed at the part it can
//!   move;
//! - attempts per connection (the oracle makes one);
//! - the share of ready connections won by a *non-first address*: a remote
//!   other than that of attempt #1 (for the oracle: other than `hev3`'s
//!   attempt #1);
//! - the share won over a *non-primary interface* (not the first listed);
//! - failures: connections that never became ready.

use core::fmt::Write as _;
use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant as WallInstant;

use serde::Serialize;
use taps_core::{
    Instant, Interface, InterfaceAddress, InterfaceKind, Rng, TraceKind,
    race::{KernelRtt, Policy},
};

use crate::oracle::{OracleChoice, oracle};
use crate::report::trace_hash;
use crate::scenario::{
    Accept, Action, Cert, Client, Connect, Direction, Dns, InterfacePrefs, Link, LinkParams,
    PerType, Prefix, Records, Scenario, Server, ServerTls,
};
use crate::units::millis;
use crate::world::{ConnOutcome, RunOptions, SimError, World};

/// The columns of a population run: a name, the policy, and whether the
/// `hev3` preset's RTT-derived Connection Attempt Delay is turned off
/// (`hev3-static`: the fixed 250 ms, for comparison).
pub const VARIANTS: [(&str, Policy, bool); 4] = [
    ("hev3", Policy::Hev3, false),
    ("hev3-static", Policy::Hev3, true),
    ("rfc6555", Policy::Rfc6555, false),
    ("sequential", Policy::Sequential, false),
];

/// The profiles `population` knows.
pub const PROFILES: [&str; 1] = ["seed-telemetry"];

/// A uniform draw in [0, 1).
fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
}

fn chance(rng: &mut Rng, p: f64) -> bool {
    unit(rng) < p
}

/// Irwin–Hall: the sum of twelve uniforms minus six.
fn normal(rng: &mut Rng) -> f64 {
    (0..12).map(|_| unit(rng)).sum::<f64>() - 6.0
}

/// `e^x` from basic operations only (range reduction by ln 2, then a
/// Taylor series), so results do not depend on the platform's libm.
pub fn exp(x: f64) -> f64 {
    const LN2: f64 = core::f64::consts::LN_2;
    if !x.is_finite() {
        return if x > 0.0 { f64::INFINITY } else { 0.0 };
    }
    let x = x.clamp(-700.0, 700.0);
    let k = (x / LN2).round();
    let r = x - k * LN2;
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 1..=16 {
        term *= r / f64::from(n);
        sum += term;
    }
    let k = k as i64;
    // 2^k by building the float's exponent directly.
    let scale = f64::from_bits(((k + 1023).clamp(1, 2046) as u64) << 52);
    sum * scale
}

fn lognormal(rng: &mut Rng, median: f64, sigma: f64) -> f64 {
    median * exp(sigma * normal(rng))
}

fn ms_f(v: f64) -> Duration {
    Duration::from_micros((v * 1000.0).round().max(0.0) as u64)
}

fn iface(
    name: &str,
    index: u32,
    kind: InterfaceKind,
    v4: &str,
    v6: Option<&str>,
    expensive: bool,
) -> Interface {
    let mut addrs = vec![InterfaceAddress {
        addr: v4.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        prefix_len: 24,
        deprecated: false,
    }];
    if let Some(v6) = v6 {
        addrs.push(InterfaceAddress {
            addr: v6.parse().unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            prefix_len: 64,
            deprecated: false,
        });
    }
    Interface {
        name: name.into(),
        index,
        kind,
        addrs,
        mtu: 1500,
        expensive,
        constrained: false,
        up: true,
    }
}

const RESOLVER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);

/// The scenario every world of the profile starts from.
fn template() -> Scenario {
    Scenario {
        name: "seed-telemetry".into(),
        description: None,
        seed: 0,
        client: Client {
            interfaces: Vec::new(),
            resolvers: vec![SocketAddr::new(IpAddr::V4(RESOLVER), 53)],
            search: Vec::new(),
            ndots: 1,
            tcp_metrics: Vec::new(),
        },
        dns: Dns {
            records: vec![Records {
                name: "example.com".into(),
                a: Vec::new(),
                aaaa: Vec::new(),
                https: Vec::new(),
                ttl: 300,
                delay: PerType::default(),
                fail: PerType::default(),
                forge: Vec::new(),
            }],
            timeout: Duration::from_secs(1),
            attempts: 2,
        },
        servers: vec![Server {
            listen: Vec::new(),
            tls: ServerTls::Modelled,
            cert: Cert::Ok,
            names: vec!["example.com".into()],
            accept: Accept::Ok,
            tls_time: Duration::ZERO,
        }],
        links: Vec::new(),
        events: Vec::new(),
        connect: Connect {
            remote: "example.com:443".parse().unwrap_or_default(),
            remote_text: "example.com:443".into(),
            tls: true,
            alpn: vec!["h2".into()],
            policy: Policy::Hev3,
            attempt_delay: None,
            resolution_delay: None,
            timeout: None,
            interfaces: InterfacePrefs::default(),
            prohibit_expensive: false,
            prohibit_constrained: false,
            repeat: 1,
            gap: Duration::ZERO,
        },
        expect: None,
    }
}

fn link(interface: Option<u32>, to: Prefix, delay: Duration, jitter: Duration, loss: f64) -> Link {
    Link {
        interface,
        to,
        direction: Direction::Both,
        params: LinkParams {
            delay,
            jitter,
            loss,
            bandwidth: None,
            action: Action::Pass,
        },
    }
}

/// What [`draw`] chose that [`kernel_memory`] builds on.
#[derive(Clone, Copy, Debug, Default)]
struct Drawn {
    /// Per interface (wlan0, rmnet0): its IPv4 and IPv6 RTT, ms.
    rtt: [Option<(f64, f64)>; 2],
    /// The address a client tries first, when it is broken.
    broken: Option<IpAddr>,
}

/// Draws world `n` of profile `seed-telemetry` into `sc` (reusing its
/// buffers).
fn draw(rng: &mut Rng, sc: &mut Scenario) -> Drawn {
    let mut drawn = Drawn::default();
    let two = chance(rng, 0.20);
    let wlan_v6 = chance(rng, 0.70);
    let rmnet_v6 = chance(rng, 0.50);
    sc.client.interfaces.clear();
    sc.client.interfaces.push(iface(
        "wlan0",
        1,
        InterfaceKind::Wifi,
        "192.168.1.10",
        wlan_v6.then_some("2001:db8:1::10"),
        false,
    ));
    if two {
        sc.client.interfaces.push(iface(
            "rmnet0",
            2,
            InterfaceKind::Cellular,
            "100.64.0.7",
            rmnet_v6.then_some("2001:db8:2::7"),
            true,
        ));
    }

    let multi = chance(rng, 0.47);
    let (n6, n4) = if !multi {
        (0, 1)
    } else {
        let n6 = if chance(rng, 0.25) {
            0
        } else {
            1 + rng.below(2) as usize
        };
        let n4 = 1 + rng.below(3) as usize;
        if n6 + n4 < 2 { (n6, 2) } else { (n6, n4) }
    };
    let r = &mut sc.dns.records[0];
    r.a.clear();
    r.aaaa.clear();
    r.https.clear();
    for i in 0..n4 {
        r.a.push(Ipv4Addr::new(192, 0, 2, 1 + i as u8));
    }
    for i in 0..n6 {
        r.aaaa
            .push(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1 + i as u16));
    }
    if chance(rng, 0.15) {
        r.https.push(taps_core::dns::HttpsRecord {
            priority: 1,
            target: None,
            alpn: vec!["h2".into()],
            no_default_alpn: false,
            port: None,
            ipv4hint: r.a.iter().copied().collect(),
            ipv6hint: r.aaaa.iter().copied().collect(),
            ech: false,
        });
    }
    let base = lognormal(rng, 15.0, 1.0);
    let mut per_type = || ms_f(base * lognormal(rng, 1.0, 0.3));
    r.delay = PerType {
        a: per_type(),
        aaaa: per_type(),
        https: per_type(),
    };
    if chance(rng, 0.02) {
        r.delay.aaaa += ms_f(lognormal(rng, 150.0, 0.5));
    }

    let s = &mut sc.servers[0];
    s.listen.clear();
    s.listen
        .extend(r.a.iter().map(|a| SocketAddr::new(IpAddr::V4(*a), 443)));
    s.listen
        .extend(r.aaaa.iter().map(|a| SocketAddr::new(IpAddr::V6(*a), 443)));
    s.tls_time = ms_f(lognormal(rng, 3.0, 0.5));

    let lossy = chance(rng, 0.03);
    let loss = if lossy {
        0.005 + 0.025 * unit(rng)
    } else {
        0.0
    };
    sc.links.clear();
    sc.links.push(link(
        None,
        Prefix::Net {
            addr: IpAddr::V4(RESOLVER),
            len: 32,
        },
        Duration::from_millis(2),
        Duration::ZERO,
        loss,
    ));
    let v6_dest = Prefix::Net {
        addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)),
        len: 48,
    };
    // The primary's one-way delays, which a broken address's link keeps.
    let mut primary = (Duration::ZERO, Duration::ZERO);
    for (index, median, sigma) in [(1u32, 30.0, 0.7), (2, 60.0, 0.6)] {
        if index == 2 && !two {
            continue;
        }
        let rtt = lognormal(rng, median, sigma).clamp(2.0, 3000.0);
        let rtt6 = rtt * lognormal(rng, 1.0, 0.15);
        drawn.rtt[index as usize - 1] = Some((rtt, rtt6));
        for (v6, to, rtt) in [(false, Prefix::Any, rtt), (true, v6_dest, rtt6)] {
            let one_way = ms_f(rtt / 2.0);
            if index == 1 {
                if v6 {
                    primary.1 = one_way;
                } else {
                    primary.0 = one_way;
                }
            }
            sc.links
                .push(link(Some(index), to, one_way, one_way / 10, loss));
        }
    }
    if multi && chance(rng, 0.05) {
        let first: IpAddr = match (r.aaaa.first(), r.a.first()) {
            (Some(v6), _) if wlan_v6 => IpAddr::V6(*v6),
            (_, Some(v4)) => IpAddr::V4(*v4),
            (Some(v6), None) => IpAddr::V6(*v6),
            (None, None) => return drawn,
        };
        drawn.broken = Some(first);
        let action = if chance(rng, 0.5) {
            Action::Blackhole
        } else {
            Action::Reject
        };
        let mut l = link(
            None,
            Prefix::Net {
                addr: first,
                len: if first.is_ipv4() { 32 } else { 128 },
            },
            if first.is_ipv4() {
                primary.0
            } else {
                primary.1
            },
            Duration::ZERO,
            0.0,
        );
        // Silently: SYNs vanish. By reset: a RST one round trip later.
        l.params.action = action;
        sc.links.push(l);
    }
    drawn
}

/// Draws what the client's kernel remembers of earlier connections
/// (`client.tcp_metrics`, see the module doc), from a stream of its own so
/// that the rest of the world is drawn exactly as before.
fn kernel_memory(rng: &mut Rng, drawn: &Drawn, sc: &mut Scenario) {
    sc.client.tcp_metrics.clear();
    let locals = [
        ("192.168.1.10", "2001:db8:1::10"),
        ("100.64.0.7", "2001:db8:2::7"),
    ];
    for (i, iface) in sc.client.interfaces.iter().enumerate() {
        let (Some((rtt4, rtt6)), Some((l4, l6))) =
            (drawn.rtt.get(i).copied().flatten(), locals.get(i))
        else {
            continue;
        };
        if !chance(rng, 0.70) {
            continue;
        }
        let v6 = iface.addrs.iter().any(|a| a.addr.is_ipv6());
        let n = 1 + rng.below(8);
        for k in 0..n {
            let six = v6 && chance(rng, 0.5);
            let (local, base): (IpAddr, f64) = if six {
                (
                    l6.parse().unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
                    rtt6,
                )
            } else {
                (
                    l4.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                    rtt4,
                )
            };
            let remote = if six {
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x77, k as u16, 0, 0, 0, 1))
            } else {
                IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1 + k as u8))
            };
            let rtt = (base * lognormal(rng, 1.2, 0.4)).clamp(2.0, 3000.0);
            sc.client.tcp_metrics.push(KernelRtt {
                local: Some(local),
                remote,
                rtt: ms_f(rtt),
                rttvar: ms_f(rtt * lognormal(rng, 0.25, 0.5)),
                age: ms_f(300_000.0 * unit(rng)),
            });
        }
        // Only the primary's connections went to example.com before.
        if i == 0 && chance(rng, 0.20) {
            let r = &sc.dns.records[0];
            let dests = r.a.iter().map(|a| (IpAddr::V4(*a), *l4, rtt4));
            let dests6 = r.aaaa.iter().map(|a| (IpAddr::V6(*a), *l6, rtt6));
            for (remote, local, rtt) in dests.chain(dests6.filter(|_| v6)) {
                if Some(remote) == drawn.broken {
                    continue;
                }
                sc.client.tcp_metrics.push(KernelRtt {
                    local: local.parse().ok(),
                    remote,
                    rtt: ms_f(rtt),
                    rttvar: ms_f(rtt * lognormal(rng, 0.25, 0.5)),
                    age: ms_f(300_000.0 * unit(rng)),
                });
            }
        }
    }
}

/// Statistics of one policy (or the oracle) over a population.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PolicyStats {
    /// `hev3`, `rfc6555`, `sequential` or `oracle`.
    pub policy: String,
    /// Median time to ready.
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Per connection, its time to ready minus the oracle's: median.
    pub regret_p50_ms: Option<f64>,
    /// 90th percentile of the per-connection regret.
    pub regret_p90_ms: Option<f64>,
    /// 99th percentile of the per-connection regret.
    pub regret_p99_ms: Option<f64>,
    /// The connections with a positive regret at or above the p90 value,
    /// share per cause.
    pub regret_p90_causes: RegretCauses,
    /// The same at or above the p99 value.
    pub regret_p99_causes: RegretCauses,
    /// Mean attempts per connection.
    pub attempts_per_connection: f64,
    /// Share of ready connections won by a remote other than attempt #1's.
    pub non_first_address_share: f64,
    /// Share of ready connections won over a non-primary interface.
    pub non_primary_interface_share: f64,
    /// Connections that never became ready.
    pub failures: u64,
}

/// Why a connection was ready later than the oracle's, judged by what
/// it won with against what the oracle chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RegretCause {
    /// The oracle's endpoint, as the first attempt: the time went on
    /// waiting for DNS (HEv3's Resolution Delay, the HTTPS answer).
    DnsWait,
    /// The oracle's endpoint, after earlier attempts: the time went on
    /// attempts that failed or hung (the Connection Attempt Delay).
    EarlierAttempts,
    /// An endpoint of the other address family than the oracle's.
    OtherFamily,
    /// Another address of the oracle's family.
    OtherAddress,
    /// Another interface than the oracle's.
    OtherInterface,
}

impl RegretCause {
    /// What the cause is, for people.
    pub fn label(self) -> &'static str {
        match self {
            RegretCause::DnsWait => "DNS wait",
            RegretCause::EarlierAttempts => "earlier attempts",
            RegretCause::OtherFamily => "other family",
            RegretCause::OtherAddress => "other address",
            RegretCause::OtherInterface => "other interface",
        }
    }

    /// The cause of a connection's regret: it won with `remote` over
    /// `interface` (with its first attempt or not), where the oracle chose
    /// `o`.
    fn of(remote: SocketAddr, interface: Option<u32>, first_won: bool, o: &OracleChoice) -> Self {
        if interface != Some(o.interface) {
            RegretCause::OtherInterface
        } else if remote == o.remote && first_won {
            RegretCause::DnsWait
        } else if remote == o.remote {
            RegretCause::EarlierAttempts
        } else if remote.is_ipv4() != o.remote.is_ipv4() {
            RegretCause::OtherFamily
        } else {
            RegretCause::OtherAddress
        }
    }
}

/// Shares (0–1) of a regret tail per [`RegretCause`]; all zero when no
/// connection in the tail lost time.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RegretCauses {
    /// [`RegretCause::DnsWait`].
    pub dns_wait: f64,
    /// [`RegretCause::EarlierAttempts`].
    pub earlier_attempts: f64,
    /// [`RegretCause::OtherFamily`].
    pub other_family: f64,
    /// [`RegretCause::OtherAddress`].
    pub other_address: f64,
    /// [`RegretCause::OtherInterface`].
    pub other_interface: f64,
}

impl RegretCauses {
    /// The shares among the positive regrets at or above `threshold` in
    /// `regret`.
    fn of_tail(regret: &[(i64, RegretCause)], threshold: Option<i64>) -> Self {
        let mut counts = [0u64; 5];
        let mut total = 0u64;
        for &(r, cause) in regret {
            if r > 0 && threshold.is_some_and(|t| r >= t) {
                counts[cause as usize] += 1;
                total += 1;
            }
        }
        let share = |i: usize| counts[i] as f64 / total.max(1) as f64;
        RegretCauses {
            dns_wait: share(RegretCause::DnsWait as usize),
            earlier_attempts: share(RegretCause::EarlierAttempts as usize),
            other_family: share(RegretCause::OtherFamily as usize),
            other_address: share(RegretCause::OtherAddress as usize),
            other_interface: share(RegretCause::OtherInterface as usize),
        }
    }

    /// One line: each cause with a share, largest first.
    fn text(&self) -> String {
        let mut parts = [
            (self.dns_wait, RegretCause::DnsWait),
            (self.earlier_attempts, RegretCause::EarlierAttempts),
            (self.other_family, RegretCause::OtherFamily),
            (self.other_address, RegretCause::OtherAddress),
            (self.other_interface, RegretCause::OtherInterface),
        ];
        parts.sort_by(|a, b| b.0.total_cmp(&a.0));
        let shown: Vec<String> = parts
            .iter()
            .filter(|(share, _)| *share > 0.0)
            .map(|(share, cause)| format!("{} {:.0}%", cause.label(), share * 100.0))
            .collect();
        if shown.is_empty() {
            "-".into()
        } else {
            shown.join(" · ")
        }
    }
}

#[derive(Default)]
struct Acc {
    ready: Vec<u64>,
    /// Time to ready minus the oracle's, ns, of connections ready under
    /// both, with its cause.
    regret: Vec<(i64, RegretCause)>,
    attempts: u64,
    non_first: u64,
    non_primary: u64,
    failures: u64,
}

/// The nearest-rank percentile `p` of `sorted`.
fn nearest_rank<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    let len = sorted.len();
    let rank = ((p * len as f64).ceil() as usize).clamp(1, len.max(1));
    sorted.get(rank - 1).copied()
}

impl Acc {
    fn stats(&mut self, policy: &str, n: usize) -> PolicyStats {
        self.ready.sort_unstable();
        self.regret.sort_unstable();
        let pct = |p: f64| nearest_rank(&self.ready, p).map(|v| v as f64 / 1e6);
        let regret_ns = |p: f64| nearest_rank(&self.regret, p).map(|(v, _)| v);
        let regret = |p: f64| regret_ns(p).map(|v| v as f64 / 1e6);
        let ready = self.ready.len().max(1) as f64;
        PolicyStats {
            policy: policy.into(),
            p50_ms: pct(0.50),
            p90_ms: pct(0.90),
            p99_ms: pct(0.99),
            regret_p50_ms: regret(0.50),
            regret_p90_ms: regret(0.90),
            regret_p99_ms: regret(0.99),
            regret_p90_causes: RegretCauses::of_tail(&self.regret, regret_ns(0.90)),
            regret_p99_causes: RegretCauses::of_tail(&self.regret, regret_ns(0.99)),
            attempts_per_connection: self.attempts as f64 / n.max(1) as f64,
            non_first_address_share: self.non_first as f64 / ready,
            non_primary_interface_share: self.non_primary as f64 / ready,
            failures: self.failures,
        }
    }
}

/// The result of a population run.
#[derive(Clone, Debug)]
pub struct PopulationReport {
    /// Profile name.
    pub profile: String,
    /// Seed.
    pub seed: u64,
    /// Worlds drawn.
    pub connections: usize,
    /// Per policy, then the oracle.
    pub stats: Vec<PolicyStats>,
    /// FNV-1a over every run's trace hash, in order.
    pub hash: u64,
    /// Contract violations seen (should be 0).
    pub violations: usize,
    /// Establishments simulated (worlds × policies).
    pub establishments: usize,
    /// Virtual time simulated, summed over runs.
    pub simulated: Duration,
    /// Wall time.
    pub wall: Duration,
}

impl PopulationReport {
    /// The text table.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "population {} · {} worlds · seed {}\n",
            self.profile, self.connections, self.seed
        );
        let _ = writeln!(
            t,
            "{:<11} {:>11} {:>11} {:>11} {:>22} {:>10} {:>10} {:>12} {:>9}",
            "policy",
            "p50",
            "p90",
            "p99",
            "regret p90 / p99",
            "attempts",
            "non-first",
            "non-primary",
            "failures"
        );
        let f = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.1} ms"));
        for s in &self.stats {
            let regret = if s.policy == "oracle" {
                String::new()
            } else {
                format!("{} / {}", f(s.regret_p90_ms), f(s.regret_p99_ms))
            };
            let _ = writeln!(
                t,
                "{:<11} {:>11} {:>11} {:>11} {:>22} {:>10.3} {:>9.2}% {:>11.2}% {:>9}",
                s.policy,
                f(s.p50_ms),
                f(s.p90_ms),
                f(s.p99_ms),
                regret,
                s.attempts_per_connection,
                s.non_first_address_share * 100.0,
                s.non_primary_interface_share * 100.0,
                s.failures
            );
        }
        let _ = writeln!(
            t,
            "\nwhere the regret tail comes from (connections at or above the p90 / p99 regret):"
        );
        for s in self.stats.iter().filter(|s| s.policy != "oracle") {
            let _ = writeln!(
                t,
                "{:<11} p90: {}\n{:<11} p99: {}",
                s.policy,
                s.regret_p90_causes.text(),
                "",
                s.regret_p99_causes.text()
            );
        }
        let secs = self.wall.as_secs_f64().max(1e-9);
        let _ = writeln!(
            t,
            "\n{} establishments in {:.1} ms wall: {:.0} per second; {:.0}× faster than real time",
            self.establishments,
            millis(self.wall),
            self.establishments as f64 / secs,
            self.simulated.as_secs_f64() / secs
        );
        let _ = writeln!(
            t,
            "population hash {:016x}; {} contract violation(s)",
            self.hash, self.violations
        );
        t
    }

    /// The JSON object.
    pub fn json(&self) -> String {
        #[derive(Serialize)]
        struct J<'a> {
            profile: &'a str,
            seed: u64,
            connections: usize,
            policies: &'a [PolicyStats],
            hash: String,
            violations: usize,
            establishments: usize,
            wall_ms: f64,
            establishments_per_second: f64,
        }
        let j = J {
            profile: &self.profile,
            seed: self.seed,
            connections: self.connections,
            policies: &self.stats,
            hash: format!("{:016x}", self.hash),
            violations: self.violations,
            establishments: self.establishments,
            wall_ms: millis(self.wall),
            establishments_per_second: self.establishments as f64
                / self.wall.as_secs_f64().max(1e-9),
        };
        serde_json::to_string(&j).unwrap_or_default()
    }
}

/// Draws `n` worlds of `profile` from `seed` and races each under every
/// policy; the oracle comes from the `hev3` run.
pub fn run_population(profile: &str, n: usize, seed: u64) -> Result<PopulationReport, SimError> {
    let wall = WallInstant::now();
    let mut rng = Rng::new(seed);
    let mut sc = template();
    let mut world = World::new();
    let mut accs: Vec<Acc> = (0..=VARIANTS.len()).map(|_| Acc::default()).collect();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut violations = 0;
    let mut simulated = Duration::ZERO;
    for _ in 0..n {
        let drawn = draw(&mut rng, &mut sc);
        let world_seed = rng.next_u64();
        kernel_memory(
            &mut Rng::new(world_seed ^ 0x4b45_524e_454c_5254),
            &drawn,
            &mut sc,
        );
        let mut first_remote = None;
        // The oracle's time per connection, from the first (`hev3`) run.
        let mut best: Vec<Option<OracleChoice>> = Vec::new();
        for (p, (_, policy, static_attempt_delay)) in VARIANTS.into_iter().enumerate() {
            let oracle_run = policy == Policy::Hev3 && !static_attempt_delay;
            let run = world.run(
                &sc,
                RunOptions {
                    policy,
                    seed: world_seed,
                    static_attempt_delay,
                    ..RunOptions::of(&sc)
                },
            )?;
            simulated += run.end - Instant::ZERO;
            violations += run.violations.len();
            let h = trace_hash(run.connections.iter().map(|c| &c.trace));
            for b in h.to_le_bytes() {
                hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
            if oracle_run {
                best = oracle(&sc, &run);
            }
            let acc = &mut accs[p];
            for (j, c) in run.connections.iter().enumerate() {
                let first = c.trace.events.iter().find_map(|e| match e.kind {
                    TraceKind::AttemptStarted { remote, .. } => Some(remote),
                    _ => None,
                });
                if oracle_run {
                    first_remote = first;
                }
                acc.attempts += c
                    .trace
                    .events
                    .iter()
                    .filter(|e| matches!(e.kind, TraceKind::AttemptStarted { .. }))
                    .count() as u64;
                match (&c.outcome, c.time_to_ready()) {
                    (ConnOutcome::Ready { remote, interface }, Some(t)) => {
                        let t = t.as_nanos() as u64;
                        acc.ready.push(t);
                        if let Some(Some(o)) = best.get(j) {
                            let regret = t as i64 - o.time_to_ready.as_nanos() as i64;
                            let first_won = first == Some(*remote);
                            let cause = RegretCause::of(*remote, *interface, first_won, o);
                            acc.regret.push((regret, cause));
                        }
                        acc.non_first += u64::from(first != Some(*remote));
                        acc.non_primary += u64::from(*interface != Some(1));
                    }
                    _ => acc.failures += 1,
                }
            }
            if oracle_run {
                let acc = &mut accs[VARIANTS.len()];
                for o in oracle(&sc, &run) {
                    match o {
                        Some(o) => {
                            acc.ready.push(o.time_to_ready.as_nanos() as u64);
                            acc.regret.push((0, RegretCause::DnsWait));
                            acc.attempts += 1;
                            acc.non_first += u64::from(first_remote != Some(o.remote));
                            acc.non_primary += u64::from(o.interface != 1);
                        }
                        None => acc.failures += 1,
                    }
                }
            }
        }
    }
    let mut stats = Vec::new();
    for (p, (name, ..)) in VARIANTS.into_iter().enumerate() {
        stats.push(accs[p].stats(name, n));
    }
    stats.push(accs[VARIANTS.len()].stats("oracle", n));
    Ok(PopulationReport {
        profile: profile.into(),
        seed,
        connections: n,
        stats,
        hash,
        violations,
        establishments: n * VARIANTS.len(),
        simulated,
        wall: wall.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regret_causes_name_what_the_connection_did_differently() {
        let v4 = |last: u8| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)), 443);
        let v6: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        let oracle = OracleChoice {
            time_to_ready: Duration::from_millis(80),
            remote: v4(1),
            interface: 1,
            known: Duration::from_millis(20),
        };
        // (won with, over, its first attempt won, cause)
        let table = [
            (v4(1), Some(1), true, RegretCause::DnsWait),
            (v4(1), Some(1), false, RegretCause::EarlierAttempts),
            (v6, Some(1), true, RegretCause::OtherFamily),
            (v4(2), Some(1), false, RegretCause::OtherAddress),
            (v4(1), Some(2), true, RegretCause::OtherInterface),
            (v4(1), None, true, RegretCause::OtherInterface),
        ];
        for (remote, interface, first_won, cause) in table {
            assert_eq!(
                RegretCause::of(remote, interface, first_won, &oracle),
                cause,
                "{remote} over {interface:?}"
            );
        }
        // Only positive regrets at or above the threshold count.
        let tail = [
            (-5, RegretCause::OtherFamily),
            (0, RegretCause::OtherAddress),
            (10, RegretCause::OtherInterface),
            (40, RegretCause::DnsWait),
            (50, RegretCause::DnsWait),
            (60, RegretCause::EarlierAttempts),
        ];
        let causes = RegretCauses::of_tail(&tail, Some(40));
        assert_eq!(
            (causes.dns_wait, causes.earlier_attempts),
            (2.0 / 3.0, 1.0 / 3.0)
        );
        assert_eq!(causes.other_interface + causes.other_family, 0.0);
        assert_eq!(causes.text(), "DNS wait 67% · earlier attempts 33%");
        assert_eq!(RegretCauses::of_tail(&tail, None).text(), "-");
    }

    #[test]
    fn exp_is_accurate() {
        for x in [-5.0, -1.0, -0.1, 0.0, 0.5, 1.0, 2.3, 7.0] {
            let (a, b) = (exp(x), f64::exp(x));
            assert!(((a - b) / b).abs() < 1e-14, "exp({x}) = {a}, libm says {b}");
        }
    }

    #[test]
    fn the_profile_draws_what_it_documents() {
        let mut rng = Rng::new(42);
        let mut sc = template();
        let n = 20_000;
        let (mut multi, mut two, mut https) = (0, 0, 0);
        for _ in 0..n {
            draw(&mut rng, &mut sc);
            let r = &sc.dns.records[0];
            multi += usize::from(r.a.len() + r.aaaa.len() > 1);
            two += usize::from(sc.client.interfaces.len() == 2);
            https += usize::from(!r.https.is_empty());
        }
        let share = |k: usize| k as f64 / n as f64;
        assert!((share(multi) - 0.47).abs() < 0.015, "{}", share(multi));
        assert!((share(two) - 0.20).abs() < 0.015, "{}", share(two));
        assert!((share(https) - 0.15).abs() < 0.015, "{}", share(https));
    }

    #[test]
    fn the_kernel_memory_is_what_the_doc_says() {
        let mut rng = Rng::new(7);
        let mut sc = template();
        let n = 20_000;
        let (mut remembered, mut entries, mut own, mut broken_seen) = (0, 0, 0, 0);
        let mut wlan_only = 0;
        for w in 0..n {
            let drawn = draw(&mut rng, &mut sc);
            kernel_memory(&mut Rng::new(w), &drawn, &mut sc);
            if sc.client.interfaces.len() != 1 {
                continue;
            }
            wlan_only += 1;
            let m = &sc.client.tcp_metrics;
            let r = &sc.dns.records[0];
            let is_own = |a: &IpAddr| match a {
                IpAddr::V4(a) => r.a.contains(a),
                IpAddr::V6(a) => r.aaaa.contains(a),
            };
            let others = m.iter().filter(|k| !is_own(&k.remote)).count();
            remembered += usize::from(others > 0);
            entries += others;
            own += usize::from(m.iter().any(|k| is_own(&k.remote)));
            broken_seen += usize::from(m.iter().any(|k| Some(k.remote) == drawn.broken));
            for k in m {
                assert!(k.age < Duration::from_secs(300));
                let rtt = drawn.rtt[0].unwrap();
                assert!(k.rtt >= ms_f(2.0) && k.rtt <= ms_f(3000.0_f64.max(rtt.0).max(rtt.1)));
            }
        }
        let share = |k: usize| k as f64 / wlan_only as f64;
        assert!(
            (share(remembered) - 0.70).abs() < 0.015,
            "{}",
            share(remembered)
        );
        // 1–8 entries, 4.5 on average.
        let mean = entries as f64 / remembered as f64;
        assert!((mean - 4.5).abs() < 0.1, "{mean}");
        assert!((share(own) - 0.70 * 0.20).abs() < 0.015, "{}", share(own));
        assert_eq!(broken_seen, 0, "the kernel never measured a broken address");
    }
}
