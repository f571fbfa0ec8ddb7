//! The machine's NAT64 glue (HEv3 §8): starting PREF64 discovery (RFC 7050
//! §3) for connections on IPv6-only paths, handing its result, or a Router
//! Advertisement's PREF64 (RFC 8781), to the races, and forgetting a
//! discovered prefix when the network changes. The rules live in
//! `crate::nat64`; the races synthesize and de-synthesize with them.

use smallvec::SmallVec;

use super::establish::connectivity;
use super::{Conn, Machine};
use std::net::IpAddr;

use crate::dns::wire::{Answer, QueryType};
use crate::endpoint::Host;
use crate::id::{ConnectionId, DnsTxnId};
use crate::interface::Interface;
use crate::nat64::{DISCOVERY_SLOT, Pref64, Pref64Source};
use crate::path::PathBranch;
use crate::time::Instant;
use crate::trace::TraceKind;

/// What `start` needs to decide a connection's queries.
pub(super) struct Nat64Plan {
    /// The connection's paths are IPv6-only.
    pub(super) v6_only: bool,
    /// It starts a discovery.
    pub(super) discover: bool,
    /// HEv3 §4.1/§8.1: it asks for A records because a PREF64 is known or
    /// being discovered.
    pub(super) wants_a: bool,
    /// NAT64 concerns the connection at all: not when the application
    /// named an IPv6 literal, which it chose and which is neither
    /// de-synthesized nor re-routed.
    pub(super) applies: bool,
}

/// Whether NAT64 concerns a connection to `host` (see
/// [`Nat64Plan::applies`]).
fn applies(host: Option<&Host>) -> bool {
    !matches!(host, Some(Host::Ip(IpAddr::V6(_))))
}

impl Machine {
    /// HEv3 §8.1 for a connection about to start over `paths`. They are
    /// IPv6-only when their non-loopback interfaces (HEv3 §4.1 counts no
    /// loopback address as connectivity) have IPv6 and no IPv4: a real
    /// host's `lo` always has 127.0.0.1.
    pub(super) fn nat64_plan(&self, now: Instant, paths: &[PathBranch], host: &Host) -> Nat64Plan {
        if !applies(Some(host)) {
            return Nat64Plan {
                v6_only: false,
                discover: false,
                wants_a: false,
                applies: false,
            };
        }
        let outside: SmallVec<[PathBranch; 4]> = paths
            .iter()
            .copied()
            .filter(|p| {
                !p.interface
                    .and_then(|i| self.interfaces.iter().find(|x| x.index == i))
                    .is_some_and(Interface::is_loopback)
            })
            .collect();
        let (has_v4, has_v6) = if outside.is_empty() {
            (false, false)
        } else {
            connectivity(&outside, &self.interfaces)
        };
        let v6_only = has_v6 && !has_v4;
        let discover = self.nat64.wants_discovery(now, v6_only);
        let wants_a =
            self.nat64.known(now).is_some() || discover || (v6_only && self.nat64.pending());
        Nat64Plan {
            v6_only,
            discover,
            wants_a,
            applies: true,
        }
    }

    /// Starts the discovery if `plan` says so, then tells the new
    /// connection's race what is known. Called before any answer reaches
    /// the race, so the literal, hosts-file and cache answers are
    /// synthesized too.
    pub(super) fn nat64_begin(&mut self, now: Instant, id: ConnectionId, plan: &Nat64Plan) {
        if plan.discover {
            self.nat64.started();
            // RFC 8880 §7.2: the name goes to the configured servers like
            // any other; not the hosts file, not the cache.
            self.resolver.query(
                now,
                (id, DISCOVERY_SLOT),
                &self.nat64.qname,
                QueryType::Aaaa,
                &mut self.rng,
            );
            self.process_dns(now);
        }
        if !plan.applies {
            return;
        }
        let known = self.nat64.known(now);
        let pending = plan.v6_only && self.nat64.pending();
        if known.is_none() && !pending {
            return;
        }
        let Some((race, env)) = self.race_with_env(id) else {
            return;
        };
        let changed = race.set_nat64(now, env, known.as_ref().map(|k| &k.0), pending);
        if let (true, Some((set, source))) = (changed, known) {
            race.trace.record(
                now,
                TraceKind::Nat64Prefix {
                    prefix: Some(set.primary()),
                    source,
                },
            );
        }
    }

    /// The discovery query went out as `txn` to `server`, on behalf of
    /// `owner`, whose trace shows it while it is still establishing.
    pub(super) fn nat64_sent(
        &mut self,
        now: Instant,
        owner: ConnectionId,
        txn: DnsTxnId,
        server: std::net::SocketAddr,
    ) {
        self.nat64.sent(txn);
        if let Some(race) = self
            .conns
            .get_mut(owner)
            .filter(|c| c.state == super::ConnectionState::Establishing)
            .and_then(Conn::race_mut)
        {
            race.trace.record(now, TraceKind::Nat64Query { server });
        }
    }

    /// The discovery settled: every race waiting for it takes the result.
    pub(super) fn nat64_settled(&mut self, now: Instant, answer: Option<&Answer>) {
        if self.nat64.settled(now, answer) {
            self.nat64_tell_races(now, true);
        }
    }

    /// `Input::Pref64`: an RA's PREF64 option (RFC 8781) applies at once to
    /// every race still establishing.
    pub(super) fn set_advertised_pref64(&mut self, now: Instant, prefix: Option<Pref64>) {
        self.nat64.set_advertised(prefix);
        self.nat64_tell_races(now, false);
    }

    /// Hands what is known now to the races establishing (only those
    /// waiting for a discovery when `waiting`), and records it in their
    /// traces when it is a prefix or ends their wait.
    fn nat64_tell_races(&mut self, now: Instant, waiting: bool) {
        let known = self.nat64.known(now);
        for id in self.racing(|r| !waiting || r.nat64_pending()) {
            if self
                .conns
                .get(id)
                .is_some_and(|c| !applies(c.remote.as_ref().map(|r| &r.0)))
            {
                continue;
            }
            let discovering = self.nat64.pending();
            let Some((race, env)) = self.race_with_env(id) else {
                continue;
            };
            let was_pending = race.nat64_pending();
            let pending = known.is_none() && discovering && was_pending;
            // A Router Advertisement repeats itself: only news is recorded.
            if !race.set_nat64(now, env, known.as_ref().map(|k| &k.0), pending) {
                continue;
            }
            if known.is_some() || (was_pending && !pending) {
                race.trace.record(
                    now,
                    TraceKind::Nat64Prefix {
                        prefix: known.as_ref().map(|k| k.0.primary()),
                        source: known.as_ref().map_or(Pref64Source::Discovered, |k| k.1),
                    },
                );
            }
            self.undecided(now, id);
        }
    }

    /// The interface list changed from `old`: when any address changed, a
    /// discovered prefix may belong to the old network, so it is forgotten,
    /// a discovery in flight is cancelled, and races waiting for one get a
    /// fresh one.
    pub(super) fn nat64_interfaces_changed(&mut self, now: Instant, old: &[Interface]) {
        let addrs = |list: &[Interface]| -> Vec<(u32, bool, Vec<std::net::IpAddr>)> {
            list.iter()
                .map(|i| (i.index, i.up, i.addrs.iter().map(|a| a.addr).collect()))
                .collect()
        };
        if addrs(old) == addrs(&self.interfaces) {
            return;
        }
        if let Some(txn) = self.nat64.network_changed() {
            self.resolver.abandon(&[txn]);
            self.flush_dns_actions();
        }
        if let Some(&owner) = self.racing(|r| r.nat64_pending()).first() {
            let plan = Nat64Plan {
                v6_only: true,
                discover: true,
                wants_a: true,
                applies: true,
            };
            self.nat64_begin(now, owner, &plan);
        }
    }
}
