//! What a machine learned that is worth keeping between processes, borrowed
//! as a view (ARCHITECTURE.md "One way in"): the connection history
//! (RFC 9623 §4.2.1, HEv3 §5.3) and the DNS cache's HTTPS answers
//! (RFC 9460 §2, with their remaining TTL, RFC 1035 §7.4), as a
//! [`SavedHistory`] whose file format is `race::history_file`'s.
//!
//! History is keyed by interface index inside a machine and by interface
//! name in a [`SavedHistory`]: an index means nothing to the next process
//! (a re-created interface gets a new one), a name is what the system is
//! configured with. The translation uses the interfaces as last reported,
//! so restore after [`Input::InterfacesChanged`](super::Input::InterfacesChanged).

use core::time::Duration;

use super::Machine;
use crate::dns::QueryType;
use crate::dns::wire::{Answer, MAX_HTTPS_RECORDS_PER_ANSWER, MAX_NEGATIVE_TTL, MAX_TTL};
use crate::race::{SavedHistory, SavedHttps, SavedOutcome};
use crate::time::Instant;

/// A machine's memory across processes, borrowed ([`Machine::memory`]).
#[derive(Debug)]
pub struct MemoryView<'a> {
    pub(super) machine: &'a mut Machine,
}

/// What [`MemoryView::restore`] took in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// History entries now known.
    pub outcomes: usize,
    /// HTTPS answers now cached.
    pub https: usize,
    /// Entries left out: expired, on an interface this machine does not
    /// have, or older than what it already knows.
    pub skipped: usize,
}

impl MemoryView<'_> {
    /// Everything worth keeping at `now`: history entries still alive, on
    /// interfaces that still have a name, and fresh HTTPS answers
    /// (records, or none: NODATA or NXDOMAIN).
    pub fn save(&self, now: Instant) -> SavedHistory {
        let m = &*self.machine;
        let name = |index: u32| {
            m.interfaces
                .iter()
                .find(|i| i.index == index)
                .map(|i| i.name.clone())
        };
        let outcomes = m
            .history
            .export(now)
            .filter_map(|(path, addr, outcome, age, won_age)| {
                let interface = match path {
                    None => None,
                    Some(i) => Some(name(i)?),
                };
                Some(SavedOutcome {
                    interface,
                    addr,
                    outcome,
                    age,
                    won_age,
                })
            })
            .collect();
        let https = m
            .cache
            .https_answers(now)
            .filter_map(|(name, answer, ttl_left)| {
                let (records, nxdomain) = match answer {
                    Answer::Https { records, .. } => (records.to_vec(), false),
                    Answer::NoData { .. } => (Vec::new(), false),
                    Answer::NxDomain { .. } => (Vec::new(), true),
                    _ => return None,
                };
                Some(SavedHttps {
                    name: name.clone(),
                    ttl_left,
                    records,
                    nxdomain,
                })
            })
            .collect();
        let mut saved = SavedHistory {
            outcomes,
            https: Vec::new(),
        };
        // Through merge for its order and bounds.
        saved.merge(
            SavedHistory {
                outcomes: Vec::new(),
                https,
            },
            Duration::MAX,
        );
        saved
    }

    /// Takes in what an earlier process saved, as of `now`. Nothing it
    /// already knows is replaced by something older; HTTPS answers fill
    /// only names the cache has no fresh HTTPS answer for.
    pub fn restore(&mut self, now: Instant, saved: &SavedHistory) -> Restored {
        let m = &mut *self.machine;
        let mut done = Restored::default();
        for o in &saved.outcomes {
            let path = match &o.interface {
                None => Some(None),
                Some(n) => m
                    .interfaces
                    .iter()
                    .find(|i| &i.name == n)
                    .map(|i| Some(i.index)),
            };
            let taken = path.is_some_and(|path| {
                m.history
                    .import(now, path, o.addr, o.outcome, o.age, o.won_age)
            });
            if taken {
                done.outcomes += 1;
            } else {
                done.skipped += 1;
            }
        }
        for h in &saved.https {
            if h.ttl_left == 0
                || h.records.len() > MAX_HTTPS_RECORDS_PER_ANSWER
                || m.cache.get(now, &h.name, QueryType::Https).is_some()
            {
                done.skipped += 1;
                continue;
            }
            let negative_ttl = h.ttl_left.min(MAX_NEGATIVE_TTL);
            let answer = if h.records.is_empty() && h.nxdomain {
                Answer::NxDomain { negative_ttl }
            } else if h.records.is_empty() {
                Answer::NoData { negative_ttl }
            } else {
                Answer::Https {
                    records: h.records.iter().cloned().collect(),
                    ttl: h.ttl_left.min(MAX_TTL),
                }
            };
            m.cache.insert(now, &h.name, QueryType::Https, &answer);
            if m.cache.get(now, &h.name, QueryType::Https).is_some() {
                done.https += 1;
            } else {
                done.skipped += 1;
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::HostName;
    use crate::interface::{Interface, InterfaceKind};
    use crate::machine::{Config, Input};
    use crate::race::Outcome;
    use smallvec::smallvec;
    use std::net::IpAddr;

    fn machine_with(name: &str, index: u32, now: Instant) -> Machine {
        let mut m = Machine::new(Config::new(1));
        let i = Interface::new(name, index, InterfaceKind::Wired, &["192.0.2.10/24"]).unwrap();
        m.handle(now, Input::InterfacesChanged(vec![i]));
        m
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_new_process_restores_by_interface_name_with_ages_and_ttls() {
        let t0 = Instant::from_millis(3_600_000);
        let mut a = machine_with("eth0", 2, t0);
        a.history
            .record(t0, Some(2), ip("2001:db8::1"), Outcome::Unfinished);
        a.history.record(
            t0,
            Some(2),
            ip("192.0.2.1"),
            Outcome::Won {
                rtt: Duration::from_millis(7),
            },
        );
        // An interface that is gone by saving time has no name to key by.
        a.history
            .record(t0, Some(9), ip("192.0.2.2"), Outcome::Failed);
        let name = HostName::new("svc.example").unwrap();
        let records = smallvec![crate::dns::HttpsRecord {
            priority: 1,
            target: None,
            alpn: vec!["h2".into()],
            no_default_alpn: false,
            port: Some(8443),
            ipv4hint: smallvec![],
            ipv6hint: smallvec![],
            ech: false,
        }];
        a.cache.insert(
            t0,
            &name,
            QueryType::Https,
            &Answer::Https {
                records: records.clone(),
                ttl: 300,
            },
        );
        let t1 = t0 + Duration::from_secs(100);
        let saved = a.memory().save(t1);
        assert_eq!(saved.outcomes.len(), 2, "{saved:?}");
        assert_eq!(saved.https.len(), 1);
        assert_eq!(saved.https[0].ttl_left, 200);
        // Through the file, read 10 s later by a process whose clock has
        // another origin and whose eth0 has another index.
        let text = saved.encode(1_800_000_000);
        let read = SavedHistory::decode(text.as_bytes(), 1_800_000_010).unwrap();
        let u = Instant::from_millis(7_200_000);
        let mut b = machine_with("eth0", 5, u);
        let done = b.memory().restore(u, &read);
        assert_eq!(
            done,
            Restored {
                outcomes: 2,
                https: 1,
                skipped: 0
            }
        );
        assert!(b.history().hint(u, Some(5), ip("2001:db8::1")).demoted);
        let won = b.history().hint(u, Some(5), ip("192.0.2.1"));
        assert!(won.used_before && !won.demoted);
        // 110 s old: past the 2 min RTT lifetime? Not yet.
        assert_eq!(won.rtt_micros, Some(7_000));
        let (answer, left) = b.cache.get(u, &name, QueryType::Https).unwrap();
        assert_eq!(left, 190);
        assert_eq!(answer, &Answer::Https { records, ttl: 190 });
        // The entries age on from when they were recorded: 600 s after t0.
        let expiry = u + Duration::from_secs(600 - 110);
        assert!(!b.history().hint(expiry, Some(5), ip("2001:db8::1")).demoted);
        // A process without eth0 takes none of it.
        let mut c = machine_with("wlan0", 2, u);
        let done = c.memory().restore(u, &read);
        assert_eq!((done.outcomes, done.skipped), (0, 2));
        assert!(!c.history().hint(u, Some(2), ip("2001:db8::1")).demoted);
    }
}

#[cfg(test)]
mod race_tests {
    use super::*;
    use crate::dns::parse_hosts;
    use crate::interface::{Interface, InterfaceKind};
    use crate::machine::{Config, Input, Output, Preconnection};
    use crate::race::Outcome;
    use std::net::SocketAddr;

    /// The first connects a fresh machine asks for, in virtual time, with
    /// or without a history restored from a file.
    fn first_connects(saved: Option<&SavedHistory>) -> Vec<(Instant, SocketAddr)> {
        let mut config = Config::new(3);
        config.hosts = parse_hosts("2001:db8::80 dual.example\n192.0.2.80 dual.example\n");
        let mut m = Machine::new(config);
        let t0 = Instant::from_millis(3_600_000);
        let eth0 = Interface::new(
            "eth0",
            4,
            InterfaceKind::Wired,
            &["192.0.2.10/24", "2001:db8::10/64"],
        )
        .unwrap();
        m.handle(t0, Input::InterfacesChanged(vec![eth0]));
        if let Some(saved) = saved {
            assert_eq!(m.memory().restore(t0, saved).outcomes, 1);
        }
        m.initiate(t0, &Preconnection::new("dual.example:80".parse().unwrap()))
            .unwrap();
        let mut opened = Vec::new();
        let mut now = t0;
        // Nothing answers: every connect hangs, as into a blackhole.
        while now < t0 + core::time::Duration::from_millis(300) {
            while let Some(out) = m.poll() {
                if let Output::OpenTcp { remote, .. } = out {
                    opened.push((now, remote));
                }
            }
            match m.poll_timeout() {
                Some(t) => {
                    now = t.max(now);
                    m.handle_timeout(now);
                }
                None => break,
            }
        }
        opened
    }

    #[test]
    fn a_restored_hang_sends_the_first_attempt_to_the_other_family() {
        let t0 = Instant::from_millis(3_600_000);
        // Without history: IPv6 first (RFC 6724), IPv4 one Connection
        // Attempt Delay (250 ms, HEv3 §6) later.
        let fresh = first_connects(None);
        assert_eq!(fresh[0], (t0, "[2001:db8::80]:80".parse().unwrap()));
        assert_eq!(
            fresh[1],
            (
                t0 + Duration::from_millis(250),
                "192.0.2.80:80".parse().unwrap()
            )
        );
        // An earlier process saw IPv6 hang over eth0 (HEv3 §5.3): IPv4
        // goes first, at once.
        let saved = SavedHistory {
            outcomes: vec![SavedOutcome {
                interface: Some("eth0".into()),
                addr: "2001:db8::80".parse().unwrap(),
                outcome: Outcome::Unfinished,
                age: Duration::from_secs(30),
                won_age: None,
            }],
            https: Vec::new(),
        };
        let remembered = first_connects(Some(&saved));
        assert_eq!(remembered[0], (t0, "192.0.2.80:80".parse().unwrap()));
    }
}
