//! Table-driven tests of the racing engine, in the manner of
//! mozilla/happy-eyeballs: each row quotes the draft section it checks, feeds
//! typed DNS answers and attempt outcomes at virtual times, and compares the
//! exact log of what the race did and when.

use super::*;
use crate::interface::InterfaceKind;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Something the world does at a virtual time.
#[derive(Clone, Debug)]
enum Ev {
    A(&'static [&'static str]),
    Aaaa(&'static [&'static str]),
    ANeg,
    AaaaNeg,
    Https(Vec<HttpsRecord>),
    HttpsNeg,
    /// The attempt to this address (on any path; `addr%ifindex` for one path)
    /// connects.
    Up(&'static str),
    /// The attempt to this address fails (refused).
    Fail(&'static str),
    IfDown(u32),
}

struct Driver {
    race: Race,
    now: Instant,
    log: Vec<String>,
    interfaces: Vec<Interface>,
    history: History,
}

impl Driver {
    fn new(
        config: RaceConfig,
        paths: &[PathBranch],
        expected: Expected,
        timeout: Option<Duration>,
    ) -> Self {
        Driver {
            race: Race::new(Instant::ZERO, config, 443, paths, expected, timeout, 1),
            now: Instant::ZERO,
            log: Vec::new(),
            interfaces: two_interfaces(),
            history: History::default(),
        }
    }

    fn ms(&self) -> u64 {
        self.now.as_nanos() / 1_000_000
    }

    fn drain(&mut self) {
        while let Some(a) = self.race.poll_action() {
            let t = self.ms();
            let line = match a {
                RaceAction::Start {
                    remote, interface, ..
                } => format!("{t}: start {remote}{}", ifx(interface)),
                RaceAction::Cancel { candidate } => {
                    let c = self.race.candidate(candidate).unwrap();
                    format!(
                        "{t}: cancel {}{}",
                        c.remote,
                        ifx(self.race.path_interface(c.path))
                    )
                }
                RaceAction::Won { candidate } => {
                    let c = self.race.candidate(candidate).unwrap();
                    format!(
                        "{t}: won {}{}",
                        c.remote,
                        ifx(self.race.path_interface(c.path))
                    )
                }
                RaceAction::Failed => format!("{t}: failed {:?}", self.race.failure().unwrap()),
            };
            self.log.push(line);
        }
    }

    /// Runs timers up to `until`.
    fn run_until(&mut self, until: Instant) {
        while let Some(t) = self.race.poll_timeout() {
            if t > until {
                break;
            }
            assert!(t >= self.now, "a timer in the past: {t} < {}", self.now);
            self.now = t;
            self.race.handle_timeout(t);
            self.drain();
        }
        self.now = until;
    }

    fn find(&self, spec: &str) -> CandidateId {
        let (addr, iface) = match spec.split_once('%') {
            Some((a, i)) => (a, Some(i.parse::<u32>().unwrap())),
            None => (spec, None),
        };
        let ip: IpAddr = addr.parse().unwrap();
        let idx = self
            .race
            .candidates()
            .iter()
            .position(|c| {
                c.remote.ip() == ip
                    && matches!(c.state, CandidateState::Running { .. })
                    && iface.is_none_or(|i| self.race.path_interface(c.path) == Some(i))
            })
            .unwrap_or_else(|| panic!("no running attempt to {spec}"));
        CandidateId(idx as u16)
    }

    fn apply(&mut self, ev: Ev) {
        let env = RaceEnv {
            interfaces: &self.interfaces,
            history: &self.history,
        };
        let now = self.now;
        let ips = |l: &[&str]| {
            l.iter()
                .map(|s| s.parse::<IpAddr>().unwrap())
                .collect::<Vec<_>>()
        };
        match ev {
            Ev::A(l) => {
                self.race
                    .on_addresses(now, env, Family::V4, AddressAnswer::Positive(&ips(l)))
            }
            Ev::Aaaa(l) => {
                self.race
                    .on_addresses(now, env, Family::V6, AddressAnswer::Positive(&ips(l)))
            }
            Ev::ANeg => self
                .race
                .on_addresses(now, env, Family::V4, AddressAnswer::Negative),
            Ev::AaaaNeg => self
                .race
                .on_addresses(now, env, Family::V6, AddressAnswer::Negative),
            Ev::Https(r) => self.race.on_service_info(now, env, Some(&r)),
            Ev::HttpsNeg => self.race.on_service_info(now, env, None),
            Ev::Up(a) => {
                let id = self.find(a);
                self.race.on_connected(now, id);
            }
            Ev::Fail(a) => {
                let id = self.find(a);
                self.race.on_failed(now, id, FailureReason::Refused);
            }
            Ev::IfDown(i) => {
                for iface in self.interfaces.iter_mut().filter(|x| x.index == i) {
                    iface.up = false;
                }
                self.race.on_interface_down(now, i);
            }
        }
        self.drain();
    }

    fn play(mut self, script: &[(u64, Ev)], horizon_ms: u64) -> Vec<String> {
        self.drain();
        for (at, ev) in script {
            self.run_until(Instant::from_millis(*at));
            self.apply(ev.clone());
        }
        self.run_until(Instant::from_millis(horizon_ms));
        self.log
    }
}

fn ifx(i: Option<u32>) -> String {
    i.map_or(String::new(), |i| format!("%{i}"))
}

fn iface(name: &str, index: u32, kind: InterfaceKind, addrs: &[&str]) -> Interface {
    Interface::new(name, index, kind, addrs).unwrap()
}

fn two_interfaces() -> Vec<Interface> {
    vec![
        iface(
            "wlan0",
            2,
            InterfaceKind::Wifi,
            &["192.168.1.10/24", "2001:db8:1::10/64"],
        ),
        iface(
            "rmnet0",
            3,
            InterfaceKind::Cellular,
            &["100.64.0.7/10", "2001:db8:9::7/64"],
        ),
    ]
}

const DEFAULT_PATH: &[PathBranch] = &[PathBranch { interface: None }];
const TWO_PATHS: &[PathBranch] = &[
    PathBranch { interface: Some(2) },
    PathBranch { interface: Some(3) },
];
const ALL: Expected = Expected {
    v4: true,
    v6: true,
    svcb: true,
};
const NO_SVCB: Expected = Expected {
    v4: true,
    v6: true,
    svcb: false,
};

fn https(priority: u16, port: Option<u16>, alpn: &[&str], v4: &[&str], v6: &[&str]) -> HttpsRecord {
    HttpsRecord {
        priority,
        target: None,
        alpn: alpn.iter().map(|s| s.to_string()).collect(),
        no_default_alpn: false,
        port,
        ipv4hint: v4.iter().map(|s| s.parse::<Ipv4Addr>().unwrap()).collect(),
        ipv6hint: v6.iter().map(|s| s.parse::<Ipv6Addr>().unwrap()).collect(),
        ech: false,
    }
}

fn cad(ms: u64) -> RaceConfig {
    RaceConfig {
        connection_attempt_delay: Duration::from_millis(ms),
        ..RaceConfig::hev3()
    }
}

struct Row {
    name: &'static str,
    /// The spec text the row checks.
    quote: &'static str,
    config: RaceConfig,
    paths: &'static [PathBranch],
    expected: Expected,
    timeout: Option<Duration>,
    script: Vec<(u64, Ev)>,
    horizon_ms: u64,
    want: &'static [&'static str],
}

fn run(rows: Vec<Row>) {
    for row in rows {
        let got = Driver::new(row.config, row.paths, row.expected, row.timeout)
            .play(&row.script, row.horizon_ms);
        assert_eq!(
            got, row.want,
            "\nrow: {}\nchecks: {}\n",
            row.name, row.quote
        );
    }
}

#[test]
fn resolution_delay() {
    run(vec![
        Row {
            name: "all answers in: start at once, IPv6 first",
            quote: "HEv3 §4.2: positive answers AND the preferred family AND SVCB received",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: vec![
                (5, Ev::HttpsNeg),
                (10, Ev::Aaaa(&["2001:db8::1"])),
                (12, Ev::A(&["192.0.2.1"])),
            ],
            horizon_ms: 600,
            want: &["10: start [2001:db8::1]:443", "260: start 192.0.2.1:443"],
        },
        Row {
            name: "A first, AAAA within the Resolution Delay",
            quote: "HEv3 §4.2: a resolution time delay ... provides a chance to receive preferred addresses",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: vec![
                (0, Ev::HttpsNeg),
                (10, Ev::A(&["192.0.2.1"])),
                (40, Ev::Aaaa(&["2001:db8::1"])),
            ],
            horizon_ms: 600,
            want: &["40: start [2001:db8::1]:443", "290: start 192.0.2.1:443"],
        },
        Row {
            name: "A first, AAAA after the Resolution Delay: A starts at +50 ms",
            quote: "HEv3 §4.2: positive answers AND a resolution time delay has passed",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: vec![
                (0, Ev::HttpsNeg),
                (10, Ev::A(&["192.0.2.1"])),
                (100, Ev::Aaaa(&["2001:db8::1"])),
            ],
            horizon_ms: 600,
            want: &["60: start 192.0.2.1:443", "310: start [2001:db8::1]:443"],
        },
        Row {
            name: "slow HTTPS holds the start until the Resolution Delay",
            quote: "HEv3 §4.2: SVCB/HTTPS service information has been received (or ... negative)",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: vec![
                (10, Ev::Aaaa(&["2001:db8::1"])),
                (10, Ev::A(&["192.0.2.1"])),
                (500, Ev::HttpsNeg),
            ],
            horizon_ms: 400,
            want: &["60: start [2001:db8::1]:443", "310: start 192.0.2.1:443"],
        },
        Row {
            name: "only negative answers: the race fails when the last one lands",
            quote: "HEv3 §4.2: If all answers come back with negative answers, the connection establishment will fail",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: vec![(1, Ev::HttpsNeg), (5, Ev::AaaaNeg), (30, Ev::ANeg)],
            horizon_ms: 100,
            want: &["30: failed NoAddresses"],
        },
    ]);
}

#[test]
fn connection_attempt_delay_and_clamps() {
    let both = || {
        vec![
            (0, Ev::HttpsNeg),
            (0, Ev::Aaaa(&["2001:db8::1", "2001:db8::2"])),
            (0, Ev::A(&["192.0.2.1"])),
        ]
    };
    run(vec![
        Row {
            name: "default 250 ms",
            quote: "HEv3 §6: One recommended value for a default delay is 250 milliseconds",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: both(),
            horizon_ms: 1000,
            want: &[
                "0: start [2001:db8::1]:443",
                "250: start 192.0.2.1:443",
                "500: start [2001:db8::2]:443",
            ],
        },
        Row {
            name: "configured 100 ms",
            quote: "HEv3 §9: Connection Attempt Delay ... configurable",
            config: cad(100),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: both(),
            horizon_ms: 1000,
            want: &[
                "0: start [2001:db8::1]:443",
                "100: start 192.0.2.1:443",
                "200: start [2001:db8::2]:443",
            ],
        },
        Row {
            name: "1 ms is clamped up to 10 ms",
            quote: "HEv3 §6: a subsequent connection MUST NOT be started within 10 milliseconds of the previous attempt",
            config: cad(1),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: both(),
            horizon_ms: 1000,
            want: &[
                "0: start [2001:db8::1]:443",
                "10: start 192.0.2.1:443",
                "20: start [2001:db8::2]:443",
            ],
        },
        Row {
            name: "10 s is clamped down to 2 s",
            quote: "HEv3 §6: The Connection Attempt Delay SHOULD have an upper bound ... 2 seconds",
            config: cad(10_000),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: both(),
            horizon_ms: 5000,
            want: &[
                "0: start [2001:db8::1]:443",
                "2000: start 192.0.2.1:443",
                "4000: start [2001:db8::2]:443",
            ],
        },
    ]);
}

#[test]
fn interleaving_with_first_address_family_count() {
    let answers = || {
        vec![
            (0, Ev::HttpsNeg),
            (0, Ev::Aaaa(&["2001:db8::1", "2001:db8::2", "2001:db8::3"])),
            (0, Ev::A(&["192.0.2.1", "192.0.2.2"])),
        ]
    };
    run(vec![
        Row {
            name: "count 1: v6, v4, v6, v4, v6",
            quote: "HEv3 §5.3: the first IPv4 endpoint should be moved up in the list to be second",
            config: cad(100),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: answers(),
            horizon_ms: 1000,
            want: &[
                "0: start [2001:db8::1]:443",
                "100: start 192.0.2.1:443",
                "200: start [2001:db8::2]:443",
                "300: start 192.0.2.2:443",
                "400: start [2001:db8::3]:443",
            ],
        },
        Row {
            name: "count 2: v6, v6, v4, v6, v4",
            quote: "HEv3 §5.3: allowing multiple addresses of that family to be attempted before trying the next",
            config: RaceConfig {
                first_address_family_count: 2,
                ..cad(100)
            },
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: answers(),
            horizon_ms: 1000,
            want: &[
                "0: start [2001:db8::1]:443",
                "100: start [2001:db8::2]:443",
                "200: start 192.0.2.1:443",
                "300: start [2001:db8::3]:443",
                "400: start 192.0.2.2:443",
            ],
        },
        Row {
            name: "AAAA after an A-only start is sorted in next",
            quote: "HEv3 §7: an IPv4 [here IPv6] address endpoint should be placed next in the list ... as if it had been available initially",
            config: cad(100),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: vec![
                (0, Ev::HttpsNeg),
                (0, Ev::A(&["192.0.2.1", "192.0.2.2"])),
                (120, Ev::Aaaa(&["2001:db8::1"])),
            ],
            horizon_ms: 1000,
            want: &[
                "50: start 192.0.2.1:443",
                "150: start [2001:db8::1]:443",
                "250: start 192.0.2.2:443",
            ],
        },
    ]);
}

#[test]
fn svcb_hints_priority_and_ports() {
    run(vec![
        Row {
            name: "hints stand in for slow A/AAAA",
            quote: "HEv3 §4.2.1: When these are received, they SHOULD be considered as positive non-empty answers",
            config: cad(100),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: vec![(
                10,
                Ev::Https(vec![https(
                    1,
                    None,
                    &["h2"],
                    &["192.0.2.7"],
                    &["2001:db8::7"],
                )]),
            )],
            horizon_ms: 400,
            want: &["60: start [2001:db8::7]:443", "160: start 192.0.2.7:443"],
        },
        Row {
            name: "answers replace the hints they contradict",
            quote: "HEv3 §7: endpoints from SVCB IP hints SHOULD be removed ... if the endpoints from the hints are absent from the received records",
            config: cad(100),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: vec![
                (
                    10,
                    Ev::Https(vec![https(
                        1,
                        None,
                        &["h2"],
                        &["192.0.2.7"],
                        &["2001:db8::7"],
                    )]),
                ),
                (70, Ev::A(&["192.0.2.8"])),
                (80, Ev::Aaaa(&["2001:db8::7", "2001:db8::9"])),
            ],
            horizon_ms: 500,
            // The v6 hint was started before the answers and keeps running;
            // the v4 hint is dropped for the real A answer.
            want: &[
                "60: start [2001:db8::7]:443",
                "160: start 192.0.2.8:443",
                "260: start [2001:db8::9]:443",
            ],
        },
        Row {
            name: "service priority and port",
            quote: "HEv3 §5.2: SVCB answers with the lowest numerical value (such as 1) are sorted first",
            config: cad(100),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: vec![
                (
                    0,
                    Ev::Https(vec![
                        https(2, Some(8443), &["h2"], &["192.0.2.2"], &[]),
                        https(1, None, &["h2"], &["192.0.2.1"], &[]),
                    ]),
                ),
                (0, Ev::AaaaNeg),
                (0, Ev::A(&["192.0.2.1"])),
            ],
            horizon_ms: 500,
            // The A answer confirms 192.0.2.1 and contradicts the 192.0.2.2
            // hint; both services are "." so both take the A answer.
            want: &["0: start 192.0.2.1:443", "100: start 192.0.2.1:8443"],
        },
        Row {
            name: "a late service naming addresses that already failed does not retry them",
            quote: "taps: no (path, stack, address) is attempted twice; HEv3 §7: added endpoints are sorted in, not repeated",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: vec![
                (0, Ev::Aaaa(&["2001:db8::1"])),
                (0, Ev::A(&["192.0.2.1"])),
                (52, Ev::Fail("2001:db8::1")),
                (62, Ev::Fail("192.0.2.1")),
                (70, Ev::Https(vec![https(1, None, &["h2"], &[], &[])])),
            ],
            horizon_ms: 500,
            want: &[
                "50: start [2001:db8::1]:443",
                "60: start 192.0.2.1:443",
                "70: failed AllAttemptsFailed",
            ],
        },
        Row {
            name: "h3-only services are skipped over TCP",
            quote: "HEv3 §6.2: The client SHOULD NOT attempt to make a connection to a service endpoint whose SVCB ALPN set does not contain any protocols that the client supports",
            config: cad(100),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: vec![
                (
                    0,
                    Ev::Https(vec![HttpsRecord {
                        no_default_alpn: true,
                        ..https(1, None, &["h3"], &["192.0.2.3"], &[])
                    }]),
                ),
                (0, Ev::AaaaNeg),
                (0, Ev::A(&["192.0.2.1"])),
            ],
            horizon_ms: 500,
            want: &["0: start 192.0.2.1:443"],
        },
    ]);
}

#[test]
fn failures_wins_and_timeouts() {
    let answers = || {
        vec![
            (0, Ev::HttpsNeg),
            (0, Ev::Aaaa(&["2001:db8::1", "2001:db8::2"])),
            (0, Ev::A(&["192.0.2.1"])),
        ]
    };
    let mut fail_fast = answers();
    fail_fast.push((40, Ev::Fail("2001:db8::1")));
    let mut fail_very_fast = answers();
    fail_very_fast.push((3, Ev::Fail("2001:db8::1")));
    let mut win = answers();
    win.push((270, Ev::Up("192.0.2.1")));
    run(vec![
        Row {
            name: "a failed attempt starts the next at once",
            quote: "RFC 9623 §4.2.2: If a child node fails to establish connectivity ... before the delay time has expired for the next child, the next child should be started immediately",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: fail_fast,
            horizon_ms: 300,
            want: &[
                "0: start [2001:db8::1]:443",
                "40: start 192.0.2.1:443",
                "290: start [2001:db8::2]:443",
            ],
        },
        Row {
            name: "but never within 10 ms of the previous start",
            quote: "HEv3 §6: MUST NOT be started within 10 milliseconds of the previous attempt",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: fail_very_fast,
            horizon_ms: 100,
            want: &["0: start [2001:db8::1]:443", "10: start 192.0.2.1:443"],
        },
        Row {
            name: "a win cancels the others and starts nothing new",
            quote: "HEv3 §6: all other connections attempts that have not yet succeeded SHOULD be canceled",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: None,
            script: win,
            horizon_ms: 2000,
            want: &[
                "0: start [2001:db8::1]:443",
                "250: start 192.0.2.1:443",
                "270: cancel [2001:db8::1]:443",
                "270: won 192.0.2.1:443",
            ],
        },
        Row {
            name: "connTimeout ends the race and lists every attempt",
            quote: "RFC 9622 §8.1.3: connTimeout ... the time after which ... the Connection fails",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            expected: ALL,
            timeout: Some(Duration::from_millis(600)),
            script: answers(),
            horizon_ms: 5000,
            want: &[
                "0: start [2001:db8::1]:443",
                "250: start 192.0.2.1:443",
                "500: start [2001:db8::2]:443",
                "600: cancel [2001:db8::1]:443",
                "600: cancel [2001:db8::2]:443",
                "600: cancel 192.0.2.1:443",
                "600: failed Timeout",
            ],
        },
        Row {
            name: "every attempt refused: failed when the last one fails",
            quote: "RFC 9623 §4.1: the Connection fails when all candidates fail",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            expected: NO_SVCB,
            timeout: None,
            script: vec![
                (0, Ev::Aaaa(&["2001:db8::1"])),
                (0, Ev::A(&["192.0.2.1"])),
                (20, Ev::Fail("2001:db8::1")),
                (30, Ev::Fail("192.0.2.1")),
            ],
            horizon_ms: 1000,
            want: &[
                "0: start [2001:db8::1]:443",
                "20: start 192.0.2.1:443",
                "30: failed AllAttemptsFailed",
            ],
        },
    ]);
}

#[test]
fn policy_presets() {
    let answers = || {
        vec![
            (0, Ev::Aaaa(&["2001:db8::1", "2001:db8::2"])),
            (20, Ev::A(&["192.0.2.1", "192.0.2.2"])),
            (400, Ev::Fail("2001:db8::1")),
        ]
    };
    run(vec![
        Row {
            name: "rfc6555: preferred family one at a time, the other family 300 ms later",
            quote: "RFC 6555 §5.5 / Go dialParallel: fallback after 300 ms; addresses within a family in sequence",
            config: RaceConfig::rfc6555(),
            paths: DEFAULT_PATH,
            expected: NO_SVCB,
            timeout: None,
            script: answers(),
            horizon_ms: 2000,
            want: &[
                "20: start [2001:db8::1]:443",
                "320: start 192.0.2.1:443",
                "400: start [2001:db8::2]:443",
            ],
        },
        Row {
            name: "sequential: one address at a time in RFC 6724 order",
            quote: "a plain connect loop over getaddrinfo results",
            config: RaceConfig::sequential(),
            paths: DEFAULT_PATH,
            expected: NO_SVCB,
            timeout: None,
            script: answers(),
            horizon_ms: 2000,
            want: &[
                "20: start [2001:db8::1]:443",
                "400: start [2001:db8::2]:443",
            ],
        },
        Row {
            name: "hev3 on the same world",
            quote: "HEv3 §6",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            expected: NO_SVCB,
            timeout: None,
            script: answers(),
            horizon_ms: 1000,
            want: &[
                "0: start [2001:db8::1]:443",
                "250: start 192.0.2.1:443",
                "400: start [2001:db8::2]:443",
                "650: start 192.0.2.2:443",
            ],
        },
    ]);
}

#[test]
fn interface_branches() {
    let answers = || {
        vec![
            (0, Ev::HttpsNeg),
            (0, Ev::Aaaa(&["2001:db8::1"])),
            (0, Ev::A(&["192.0.2.1"])),
        ]
    };
    let mut primary_fails = answers();
    primary_fails.push((30, Ev::Fail("2001:db8::1%2")));
    primary_fails.push((80, Ev::Fail("192.0.2.1%2")));
    let mut down = answers();
    down.push((100, Ev::IfDown(2)));
    run(vec![
        Row {
            name: "the secondary path starts after the path delay",
            quote: "RFC 9623 §4.1.2: the primary path's branch goes first; a secondary path after a delay",
            config: RaceConfig::hev3(),
            paths: TWO_PATHS,
            expected: ALL,
            timeout: None,
            script: answers(),
            horizon_ms: 1300,
            want: &[
                "0: start [2001:db8::1]:443%2",
                "250: start 192.0.2.1:443%2",
                "1000: start [2001:db8::1]:443%3",
                "1250: start 192.0.2.1:443%3",
            ],
        },
        Row {
            name: "the secondary path starts at once when the primary branch fails",
            quote: "RFC 9623 §4.2.2: If a child node fails ... the next child should be started immediately (the next child here is the secondary path)",
            config: RaceConfig::hev3(),
            paths: TWO_PATHS,
            expected: ALL,
            timeout: None,
            script: primary_fails,
            horizon_ms: 400,
            want: &[
                "0: start [2001:db8::1]:443%2",
                "30: start 192.0.2.1:443%2",
                "80: start [2001:db8::1]:443%3",
                "330: start 192.0.2.1:443%3",
            ],
        },
        Row {
            name: "an interface going down fails its attempts and hands over",
            quote: "RFC 9623 §4.1.2 paths; taps: interface changes reach the core",
            config: RaceConfig::hev3(),
            paths: TWO_PATHS,
            expected: ALL,
            timeout: None,
            script: down,
            horizon_ms: 300,
            want: &[
                "0: start [2001:db8::1]:443%2",
                "100: cancel [2001:db8::1]:443%2",
                "100: start [2001:db8::1]:443%3",
            ],
        },
        Row {
            name: "failover path mode waits for failure only",
            quote: "RFC 9623 §4.1.3: failover",
            config: RaceConfig {
                path_mode: RacingMode::Failover,
                ..RaceConfig::hev3()
            },
            paths: TWO_PATHS,
            expected: ALL,
            timeout: None,
            script: answers(),
            horizon_ms: 3000,
            want: &["0: start [2001:db8::1]:443%2", "250: start 192.0.2.1:443%2"],
        },
    ]);
}

#[test]
fn history_sends_the_next_race_straight_to_what_worked() {
    // RFC 9623 §4.2.1 / HEv3 §5.3: a host whose IPv6 is silently broken.
    let mut history = History::default();
    let script = vec![
        (0, Ev::HttpsNeg),
        (0, Ev::Aaaa(&["2001:db8::1"])),
        (0, Ev::A(&["192.0.2.1"])),
        (270, Ev::Up("192.0.2.1")),
    ];
    let mut first = Driver::new(RaceConfig::hev3(), DEFAULT_PATH, ALL, None);
    first.history = History::default();
    let log = first.play_keep(&script, 1000);
    assert_eq!(log.0[0], "0: start [2001:db8::1]:443");
    for (p, a, o) in log.1.race.outcomes() {
        history.record(Instant::from_millis(300), p, a, o);
    }
    let mut second = Driver::new(RaceConfig::hev3(), DEFAULT_PATH, ALL, None);
    second.history = history;
    second.now = Instant::from_millis(1000);
    // AAAA lands first; the known-bad IPv6 must not get a head start.
    let second_script = vec![
        (1000, Ev::HttpsNeg),
        (1000, Ev::Aaaa(&["2001:db8::1"])),
        (1010, Ev::A(&["192.0.2.1"])),
        (1030, Ev::Up("192.0.2.1")),
    ];
    let (log2, _) = second.play_keep(&second_script, 3000);
    assert_eq!(
        log2,
        ["1010: start 192.0.2.1:443", "1030: won 192.0.2.1:443"]
    );
}

impl Driver {
    fn play_keep(mut self, script: &[(u64, Ev)], horizon_ms: u64) -> (Vec<String>, Driver) {
        self.drain();
        for (at, ev) in script {
            self.run_until(Instant::from_millis(*at));
            self.apply(ev.clone());
        }
        self.run_until(Instant::from_millis(horizon_ms));
        (core::mem::take(&mut self.log), self)
    }
}

/// HEv3 §6: "a subsequent connection MUST NOT be started within 10
/// milliseconds of the previous attempt"; the clamp is reported, so tools
/// can warn, and the value reported is the one the engine uses.
#[test]
fn attempt_delay_clamp_is_reported() {
    let with = |ms: u64| RaceConfig {
        connection_attempt_delay: Duration::from_millis(ms),
        ..RaceConfig::hev3()
    };
    assert_eq!(with(250).attempt_delay_clamp(), None);
    assert_eq!(with(10).attempt_delay_clamp(), None);
    assert_eq!(with(2000).attempt_delay_clamp(), None);
    let low = with(5).attempt_delay_clamp().unwrap();
    assert_eq!(low.configured, Duration::from_millis(5));
    assert_eq!(low.used, MIN_ATTEMPT_DELAY);
    assert_eq!(low.used, with(5).attempt_delay());
    assert!(low.raised());
    let high = with(5000).attempt_delay_clamp().unwrap();
    assert_eq!(high.used, MAX_ATTEMPT_DELAY);
    assert!(!high.raised());
}

/// What a row of [`rtt_attempt_delay`] knows before its race.
type Seed = fn(&mut History);

fn sample(h: &mut History, at_ms: u64, path: Option<u32>, addr: &str, rtt_ms: u64) {
    h.record_rtt(
        Instant::from_millis(at_ms),
        path,
        addr.parse().unwrap(),
        Duration::from_millis(rtt_ms),
    );
}

fn kernel(h: &mut History, addr: &str, local: Option<&str>, rtt_ms: u64, var_ms: u64) {
    h.record_kernel_rtts(
        Instant::ZERO,
        &[KernelRtt {
            local: local.map(|l| l.parse().unwrap()),
            remote: addr.parse().unwrap(),
            rtt: Duration::from_millis(rtt_ms),
            rttvar: Duration::from_millis(var_ms),
            age: Duration::ZERO,
        }],
    );
}

/// HEv3 §6's Connection Attempt Delay from RTT data, in exact virtual
/// time. Each row's history is seeded at 0 ms and its race starts at
/// 1000 ms; answers arrive at once.
#[test]
fn rtt_attempt_delay() {
    struct R {
        name: &'static str,
        quote: &'static str,
        config: RaceConfig,
        paths: &'static [PathBranch],
        seed: Seed,
        aaaa: &'static [&'static str],
        a: &'static [&'static str],
        want: &'static [&'static str],
    }
    let wlan: &'static [PathBranch] = &[PathBranch { interface: Some(2) }];
    let rows = [
        R {
            name: "no data: the 250 ms default",
            quote: "HEv3 §6: One recommended value for a default delay is 250 milliseconds",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            seed: |_| {},
            aaaa: &["2001:db8::1"],
            a: &["192.0.2.1"],
            want: &["1000: start [2001:db8::1]:443", "1250: start 192.0.2.1:443"],
        },
        R {
            name: "one 50 ms sample to the /64: RTO = 50 + 4·25 = 150 ms",
            quote: "HEv3 §6: the delay should correspond to the time when the previous attempt is retrying its handshake ... based on the retransmission timer (RFC 6298)",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            seed: |h| sample(h, 0, None, "2001:db8::99", 50),
            aaaa: &["2001:db8::1"],
            a: &["192.0.2.1"],
            want: &["1000: start [2001:db8::1]:443", "1150: start 192.0.2.1:443"],
        },
        R {
            name: "two samples: RFC 6298 §2.3 smoothing",
            quote: "HEv3 §6: If the client has historical RTT data gathered from other connections to the same host or prefix, it can use this information",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            seed: |h| {
                sample(h, 0, None, "192.0.2.7", 60);
                sample(h, 0, None, "192.0.2.8", 60);
            },
            aaaa: &[],
            a: &["192.0.2.1", "192.0.2.2"],
            // SRTT 60, RTTVAR 3/4·30 = 22.5: RTO 60 + 90 = 150 ms.
            want: &["1000: start 192.0.2.1:443", "1150: start 192.0.2.2:443"],
        },
        R {
            name: "a fast path is held at the 100 ms Minimum",
            quote: "HEv3 §6: The recommended minimum value is 100 milliseconds ... the 'Minimum Connection Attempt Delay'",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            seed: |h| sample(h, 0, None, "2001:db8::99", 10),
            aaaa: &["2001:db8::1"],
            a: &["192.0.2.1"],
            want: &["1000: start [2001:db8::1]:443", "1100: start 192.0.2.1:443"],
        },
        R {
            name: "a Minimum configured below 10 ms is raised to 10 ms",
            quote: "HEv3 §6: a subsequent connection MUST NOT be started within 10 milliseconds of the previous attempt",
            config: RaceConfig {
                min_attempt_delay: Duration::from_millis(2),
                ..RaceConfig::hev3()
            },
            paths: DEFAULT_PATH,
            seed: |h| sample(h, 0, None, "2001:db8::99", 2),
            aaaa: &["2001:db8::1"],
            a: &["192.0.2.1"],
            want: &["1000: start [2001:db8::1]:443", "1010: start 192.0.2.1:443"],
        },
        R {
            name: "an RTT only shortens the wait: a slow path's 2.7 s RTO waits the configured 250 ms",
            quote: "HEv3 §6: One recommended value for a default delay is 250 milliseconds (taps never waits longer on RTT evidence: RaceConfig::attempt_delay_for)",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            seed: |h| sample(h, 0, None, "2001:db8::99", 900),
            aaaa: &["2001:db8::1"],
            a: &["192.0.2.1"],
            want: &["1000: start [2001:db8::1]:443", "1250: start 192.0.2.1:443"],
        },
        R {
            name: "configured at the Maximum, a slow path is capped at 2 s",
            quote: "HEv3 §6: The Connection Attempt Delay SHOULD have an upper bound ... The current recommended value is 2 seconds",
            config: RaceConfig {
                connection_attempt_delay: Duration::from_secs(2),
                ..RaceConfig::hev3()
            },
            paths: DEFAULT_PATH,
            seed: |h| sample(h, 0, None, "2001:db8::99", 900),
            aaaa: &["2001:db8::1"],
            a: &["192.0.2.1"],
            want: &["1000: start [2001:db8::1]:443", "3000: start 192.0.2.1:443"],
        },
        R {
            name: "each attempt's delay is its own destination's: 120 ms after IPv6, 250 ms after IPv4 (its 600 ms RTO is longer than the configured delay)",
            quote: "HEv3 §6: the delay value can be different for each connection attempt (depending on the protocol being used and the estimated RTT)",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            seed: |h| {
                sample(h, 0, None, "2001:db8::99", 40);
                sample(h, 0, None, "192.0.2.99", 200);
            },
            aaaa: &["2001:db8::1", "2001:db8::2"],
            a: &["192.0.2.1"],
            want: &[
                "1000: start [2001:db8::1]:443",
                "1120: start 192.0.2.1:443",
                "1370: start [2001:db8::2]:443",
            ],
        },
        R {
            name: "no data for the prefix: the path's handshakes to elsewhere",
            quote: "HEv3 §6: historical RTT data gathered from other connections",
            config: RaceConfig::hev3(),
            paths: wlan,
            seed: |h| {
                sample(h, 0, Some(2), "198.51.100.1", 40);
                // Another path's samples do not count.
                sample(h, 0, Some(3), "198.51.100.1", 400);
            },
            aaaa: &["2001:db8::1"],
            a: &["192.0.2.1"],
            want: &[
                "1000: start [2001:db8::1]:443%2",
                "1120: start 192.0.2.1:443%2",
            ],
        },
        R {
            name: "the kernel's metrics for the destination, from the path's address",
            quote: "HEv3 §6: historical RTT data gathered from other connections to the same host",
            config: RaceConfig::hev3(),
            paths: wlan,
            seed: |h| {
                kernel(h, "2001:db8::1", Some("2001:db8:1::10"), 60, 15);
                // Measured from rmnet0's address: not this path's.
                kernel(h, "192.0.2.1", Some("100.64.0.7"), 10, 1);
            },
            aaaa: &["2001:db8::1", "2001:db8::2"],
            a: &["192.0.2.1"],
            want: &[
                "1000: start [2001:db8::1]:443%2",
                "1120: start 192.0.2.1:443%2",
                // After IPv4, with nothing for 192.0.2.0/24 from this path:
                // the path's one kernel entry as a first sample, 3 × 60 ms.
                "1300: start [2001:db8::2]:443%2",
            ],
        },
        R {
            name: "the kernel's metrics for other destinations in the prefix, folded as RFC 6298 samples",
            quote: "HEv3 §6: historical RTT data gathered from other connections to the same host or prefix",
            config: RaceConfig::hev3(),
            paths: wlan,
            seed: |h| {
                // SRTT 60, RTTVAR 30 then 22.5: RTO 150 ms.
                kernel(h, "2001:db8::50", Some("2001:db8:1::10"), 60, 1);
                kernel(h, "2001:db8::51", Some("2001:db8:1::10"), 60, 1);
            },
            aaaa: &["2001:db8::1", "2001:db8::2"],
            a: &["192.0.2.1"],
            // IPv4 has no prefix data: the same two entries as the path's.
            want: &[
                "1000: start [2001:db8::1]:443%2",
                "1150: start 192.0.2.1:443%2",
                "1300: start [2001:db8::2]:443%2",
            ],
        },
        R {
            name: "the kernel's metrics from the path's own address to anywhere, last",
            quote: "HEv3 §6: historical RTT data gathered from other connections",
            config: RaceConfig::hev3(),
            paths: wlan,
            seed: |h| {
                kernel(h, "198.51.100.1", Some("192.168.1.10"), 80, 1);
                // From rmnet0's address: another path.
                kernel(h, "198.51.100.2", Some("100.64.0.7"), 10, 1);
            },
            aaaa: &["2001:db8::1"],
            a: &["192.0.2.1"],
            want: &[
                "1000: start [2001:db8::1]:443%2",
                "1240: start 192.0.2.1:443%2",
            ],
        },
        R {
            name: "the machine's own samples to the prefix come before the kernel's",
            quote: "HEv3 §6: historical RTT data gathered from other connections to the same host or prefix",
            config: RaceConfig::hev3(),
            paths: DEFAULT_PATH,
            seed: |h| {
                kernel(h, "2001:db8::1", None, 300, 100);
                sample(h, 0, None, "2001:db8::5", 50);
            },
            aaaa: &["2001:db8::1"],
            a: &["192.0.2.1"],
            want: &["1000: start [2001:db8::1]:443", "1150: start 192.0.2.1:443"],
        },
        R {
            name: "the static preset ignores RTT data",
            quote: "HEv3 §6: A simple implementation can have a fixed delay",
            config: RaceConfig::hev3_static(),
            paths: DEFAULT_PATH,
            seed: |h| sample(h, 0, None, "2001:db8::99", 50),
            aaaa: &["2001:db8::1"],
            a: &["192.0.2.1"],
            want: &["1000: start [2001:db8::1]:443", "1250: start 192.0.2.1:443"],
        },
    ];
    for row in rows {
        let mut d = Driver::new(row.config, row.paths, NO_SVCB, None);
        d.race = Race::new(
            Instant::from_millis(1000),
            row.config,
            443,
            row.paths,
            NO_SVCB,
            None,
            1,
        );
        (row.seed)(&mut d.history);
        d.now = Instant::from_millis(1000);
        let mut script = vec![(1000, Ev::Aaaa(row.aaaa)), (1000, Ev::A(row.a))];
        if row.aaaa.is_empty() {
            script[0].1 = Ev::AaaaNeg;
        }
        let (got, _) = d.play_keep(&script, 5000);
        assert_eq!(
            got, row.want,
            "\nrow: {}\nchecks: {}\n",
            row.name, row.quote
        );
    }
}

/// RTT data older than `rtt_lifetime` no longer sets the delay (HEv3 §5.3:
/// clients "eventually converge"), and the trace names the delay and its
/// source.
#[test]
fn rtt_attempt_delay_decays_and_is_traced() {
    let at = |ms: u64| {
        let mut d = Driver::new(RaceConfig::hev3(), DEFAULT_PATH, NO_SVCB, None);
        d.race = Race::new(
            Instant::from_millis(ms),
            RaceConfig::hev3(),
            443,
            DEFAULT_PATH,
            NO_SVCB,
            None,
            1,
        );
        sample(&mut d.history, 0, None, "2001:db8::7", 30);
        sample(&mut d.history, 0, None, "2001:db8::8", 30);
        sample(&mut d.history, 0, None, "2001:db8::9", 30);
        d.now = Instant::from_millis(ms);
        let script = [
            (ms, Ev::Aaaa(&["2001:db8::1"])),
            (ms, Ev::A(&["192.0.2.1"])),
        ];
        d.play_keep(&script, ms + 3000)
    };
    let (fresh, d) = at(1000);
    // SRTT 30, RTTVAR 15 → 11.25 → 8.43: RTO 63.75 ms, raised to 100.
    assert_eq!(fresh[1], "1100: start 192.0.2.1:443");
    let text = d.race.trace.to_string();
    assert!(
        text.contains(
            "race     after #1: next attempt in 100.0 ms (RTO 63.7 ms from 3 RTT samples to 2001:db8::/64 on default, raised to the minimum)"
        ),
        "{text}"
    );
    let lifetime = HistoryConfig::default().rtt_lifetime.as_millis() as u64;
    let (stale, d) = at(lifetime + 1);
    assert_eq!(stale[1], format!("{}: start 192.0.2.1:443", lifetime + 251));
    assert!(!d.race.trace.to_string().contains("next attempt"));
}
