//! The decisions of one name lookup above single questions: which name of
//! the resolv.conf(5) search list is asked next, and where an HTTPS
//! AliasMode chain leads (RFC 9460 §2.4.2, §3).
//!
//! Both are pure state machines fed the answers the machine receives; the
//! machine sends the queries and hands the results to the race.
//!
//! # The search list
//!
//! The names come from [`search_names`](super::config::search_names) in
//! glibc's order. The A, AAAA and HTTPS questions go out for one name at a
//! time, and that name is kept (the lookup *commits* to it) as soon as any
//! of them is positive: addresses, or HTTPS records (AliasMode included).
//! Once the A and AAAA questions both said the name has nothing (NXDOMAIN,
//! NODATA, or SERVFAIL, on which glibc's `res_search` also moves on) and
//! the HTTPS question has settled without records, the next name is asked.
//! Any other failure of A or AAAA (a timeout, REFUSED, another error) ends
//! the search on that name, as it ends glibc's ("anything else implies
//! that we're done"). An HTTPS question alone never ends the search: only
//! its positive answer counts (a name may exist only through its HTTPS
//! record, RFC 9460 §2.4.2 AliasMode at a zone apex), and any other outcome,
//! a timeout included, counts as "nothing here", since many networks answer
//! HTTPS queries badly. The last name's answers go to the race as they
//! come; a lookup with one name never waits.
//!
//! TLS always verifies the name the application gave, never a
//! search-expanded one, as curl does with getaddrinfo's search list: the
//! expansion is the local network's, the certificate names the service.
//!
//! # HTTPS AliasMode
//!
//! RFC 9460 §3: "If an AliasMode SVCB record is returned for $QNAME (after
//! following CNAMEs), set $QNAME to its TargetName (without additional
//! prefixes) and loop back to step 2, subject to chain length limits and
//! loop detection heuristics". The chain is followed for at most
//! [`MAX_ALIAS_HOPS`] hops; a loop or a longer chain fails the HTTPS
//! question only (the A/AAAA answers still race). An AliasMode TargetName
//! of "." means "service not available" (§2.5): the HTTPS question is
//! negative. When a chain ends, its ServiceMode records whose TargetName is
//! "." name the chain's last name, and "if at least one AliasMode record
//! was processed, SVCB-optional clients SHALL append to the priority list
//! an endpoint consisting of the final value of $QNAME, the authority
//! endpoint's port number, and no SvcParams" (§3).

use smallvec::SmallVec;

use super::wire::{Answer, HttpsRecord, QueryType};
use crate::endpoint::HostName;
use crate::trace::DnsOutcome;

/// Largest number of HTTPS AliasMode hops followed for one connection
/// (RFC 9460 §3 asks for a "chain length limit"; 8, as for CNAME chains,
/// [`MAX_CNAME_DEPTH`](super::wire::MAX_CNAME_DEPTH)). The ninth hop fails
/// the HTTPS question with [`DnsOutcome::AliasChainTooLong`].
pub const MAX_ALIAS_HOPS: u8 = 8;

/// What to do with an answer for the search list's current name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SearchStep {
    /// The lookup is committed to its name: give the race this answer, and
    /// first a negative answer for each type in `held`.
    Deliver {
        /// Negative answers of this name held back so far.
        held: SmallVec<[QueryType; 3]>,
    },
    /// Keep it back: the name may yet turn out not to exist.
    Hold,
    /// The name has nothing: ask the next one (abandoning this name's
    /// outstanding questions).
    Next,
}

/// The search-list state of one lookup.
#[derive(Clone, Debug)]
pub(crate) struct NameSearch {
    names: Vec<HostName>,
    index: u8,
    committed: bool,
    /// Negative answers held for the current name: A, AAAA, HTTPS.
    negative: [bool; 3],
    expects_v4: bool,
    expects_v6: bool,
    expects_https: bool,
}

fn slot(qtype: QueryType) -> usize {
    match qtype {
        QueryType::A => 0,
        QueryType::Aaaa => 1,
        QueryType::Https => 2,
    }
}

impl NameSearch {
    /// A search over `names` (at least one), asking A when `v4`, AAAA
    /// when `v6` and HTTPS when `https`.
    pub(crate) fn new(names: Vec<HostName>, v4: bool, v6: bool, https: bool) -> NameSearch {
        debug_assert!(!names.is_empty());
        let committed = names.len() <= 1;
        NameSearch {
            names,
            index: 0,
            committed,
            negative: [false; 3],
            expects_v4: v4,
            expects_v6: v6,
            expects_https: https,
        }
    }

    /// The questions asked about each name, in the order HEv3 §4.1 sends
    /// them: HTTPS, AAAA, A.
    pub(crate) fn questions(&self) -> SmallVec<[QueryType; 3]> {
        [
            (self.expects_https, QueryType::Https),
            (self.expects_v6, QueryType::Aaaa),
            (self.expects_v4, QueryType::A),
        ]
        .into_iter()
        .filter_map(|(on, q)| on.then_some(q))
        .collect()
    }

    /// The first name was answered locally (hosts file, `localhost`): the
    /// lookup stops there, as glibc's `files` source comes before DNS.
    pub(crate) fn settle_locally(&mut self) {
        self.committed = true;
    }

    /// The name being asked about.
    pub(crate) fn name(&self) -> &HostName {
        // `new` is given at least one name, and `index` never passes the last.
        &self.names[usize::from(self.index).min(self.names.len() - 1)]
    }

    /// The 1-based position of the current name and how many there are.
    pub(crate) fn position(&self) -> (u8, u8) {
        (self.index + 1, self.names.len() as u8)
    }

    /// Whether more than one name may be asked (the trace then names each).
    pub(crate) fn is_search(&self) -> bool {
        self.names.len() > 1
    }

    /// The answer to `qtype` for the current name (`None`: no server
    /// answered).
    pub(crate) fn on_answer(&mut self, qtype: QueryType, answer: Option<&Answer>) -> SearchStep {
        if self.committed {
            return SearchStep::Deliver {
                held: SmallVec::new(),
            };
        }
        let positive = match answer {
            Some(Answer::Addresses { addrs, .. }) => !addrs.is_empty(),
            Some(Answer::Https { records, .. }) => !records.is_empty(),
            _ => false,
        };
        // glibc res_search: NXDOMAIN and NODATA "keep trying", SERVFAIL
        // tries "next search element, if any"; "anything else implies that
        // we're done".
        let moves_on = matches!(
            answer,
            Some(Answer::NxDomain { .. } | Answer::NoData { .. } | Answer::ServFail)
        );
        if positive || (qtype != QueryType::Https && !moves_on) {
            return self.commit();
        }
        self.negative[slot(qtype)] = true;
        let v4_done = !self.expects_v4 || self.negative[0];
        let v6_done = !self.expects_v6 || self.negative[1];
        let https_done = !self.expects_https || self.negative[2];
        if v4_done && v6_done && https_done {
            self.index += 1;
            self.negative = [false; 3];
            self.committed = usize::from(self.index) + 1 >= self.names.len();
            SearchStep::Next
        } else {
            SearchStep::Hold
        }
    }

    fn commit(&mut self) -> SearchStep {
        self.committed = true;
        let held = [QueryType::A, QueryType::Aaaa, QueryType::Https]
            .into_iter()
            .filter(|q| self.negative[slot(*q)])
            .collect();
        self.negative = [false; 3];
        SearchStep::Deliver { held }
    }
}

/// What an HTTPS answer means for the alias chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AliasStep {
    /// The chain is over: these ServiceMode records (possibly none) are the
    /// HTTPS answer, rewritten as RFC 9460 §3 says when a chain was followed.
    Done(Vec<HttpsRecord>),
    /// Ask HTTPS about this name next (hop `hop`, from 1).
    Follow {
        /// The AliasMode TargetName.
        target: HostName,
        /// Its hop number.
        hop: u8,
    },
    /// The chain loops or is too long: the HTTPS question fails with this.
    Fail(DnsOutcome),
}

/// The AliasMode chain of one connection's HTTPS question.
#[derive(Clone, Debug, Default)]
pub(crate) struct AliasChain {
    /// The names asked so far after the first, in order.
    seen: SmallVec<[HostName; 1]>,
}

impl AliasChain {
    /// The name HTTPS is being asked about, when an alias was followed.
    pub(crate) fn current(&self) -> Option<&HostName> {
        self.seen.last()
    }

    /// The HTTPS records answered for the current name (`first`: the name
    /// the chain started from). `default_alpn` is the ALPN list the
    /// appended "no SvcParams" endpoint stands for: the application's own.
    pub(crate) fn on_records(
        &mut self,
        first: &HostName,
        records: &[HttpsRecord],
        default_alpn: &[String],
    ) -> AliasStep {
        // RFC 9460 §2.4.1: "If an RRset contains a record in AliasMode, the
        // recipient MUST ignore any ServiceMode records in the set."
        if let Some(alias) = records.iter().find(|r| r.priority == 0) {
            let Some(target) = &alias.target else {
                // §2.5: an AliasMode TargetName of "." is "service not
                // available"; the records of any earlier hop are void too.
                return AliasStep::Done(Vec::new());
            };
            if target == first || self.seen.contains(target) {
                return AliasStep::Fail(DnsOutcome::AliasLoop);
            }
            if self.seen.len() >= usize::from(MAX_ALIAS_HOPS) {
                return AliasStep::Fail(DnsOutcome::AliasChainTooLong);
            }
            self.seen.push(target.clone());
            return AliasStep::Follow {
                target: target.clone(),
                hop: self.seen.len() as u8,
            };
        }
        let mut out: Vec<HttpsRecord> = records.to_vec();
        if let Some(last) = self.current() {
            // §2.5.2: a ServiceMode TargetName of "." is the owner name,
            // which is now the chain's last name, not the application's.
            for r in &mut out {
                if r.target.is_none() {
                    r.target = Some(last.clone());
                }
            }
            let mut fallback = HttpsRecord::alias_fallback(last.clone());
            fallback.alpn = default_alpn.to_vec();
            out.push(fallback);
        }
        AliasStep::Done(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> HostName {
        HostName::new(s).expect("valid test name")
    }

    fn nx() -> Answer {
        Answer::NxDomain { negative_ttl: 0 }
    }

    fn nodata() -> Answer {
        Answer::NoData { negative_ttl: 0 }
    }

    fn addrs() -> Answer {
        Answer::Addresses {
            addrs: ["192.0.2.1".parse().expect("ip")].into_iter().collect(),
            ttl: 60,
        }
    }

    fn search(n: usize) -> NameSearch {
        let names = (0..n).map(|i| name(&format!("n{i}.example"))).collect();
        NameSearch::new(names, true, true, true)
    }

    fn held(list: &[QueryType]) -> SearchStep {
        SearchStep::Deliver {
            held: list.iter().copied().collect(),
        }
    }

    // glibc res_search (the behaviour resolv.conf(5) describes as "attempted
    // using each component of the search path in turn until a match is
    // found"): NXDOMAIN/NODATA keep trying, SERVFAIL tries the next search
    // element, anything else ends the search. A name is a match when any of
    // its answers is positive; HTTPS counts only when positive.
    #[test]
    fn search_steps() {
        use QueryType::{A, Aaaa, Https};
        let servfail = Answer::ServFail;
        let refused = Answer::Refused;
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            usize,
            Vec<(QueryType, Option<Answer>, SearchStep, u8)>,
        )> = vec![
            (
                "both families and HTTPS negative: next name",
                3,
                vec![
                    (A, Some(nx()), SearchStep::Hold, 1),
                    (Aaaa, Some(nodata()), SearchStep::Hold, 1),
                    (Https, Some(nx()), SearchStep::Next, 2),
                ],
            ),
            (
                "a name with only an HTTPS record is kept",
                3,
                vec![
                    (A, Some(nx()), SearchStep::Hold, 1),
                    (Aaaa, Some(nx()), SearchStep::Hold, 1),
                    (Https, Some(https_alias()), held(&[A, Aaaa]), 1),
                ],
            ),
            (
                "SERVFAIL moves on like NXDOMAIN",
                2,
                vec![
                    (Aaaa, Some(servfail.clone()), SearchStep::Hold, 1),
                    (Https, Some(nodata()), SearchStep::Hold, 1),
                    (A, Some(nx()), SearchStep::Next, 2),
                    // the last name's answers are delivered as they come
                    (A, Some(nx()), held(&[]), 2),
                ],
            ),
            (
                "a positive A commits, with the held negatives",
                3,
                vec![
                    (Https, Some(nodata()), SearchStep::Hold, 1),
                    (Aaaa, Some(nx()), SearchStep::Hold, 1),
                    (A, Some(addrs()), held(&[Aaaa, Https]), 1),
                    (Https, Some(nx()), held(&[]), 1),
                ],
            ),
            (
                "a timeout ends the search on this name",
                3,
                vec![
                    (A, Some(nx()), SearchStep::Hold, 1),
                    (Aaaa, None, held(&[A]), 1),
                ],
            ),
            (
                "REFUSED ends the search on this name",
                3,
                vec![(A, Some(refused), held(&[]), 1)],
            ),
            (
                "an HTTPS timeout counts as nothing here and ends nothing",
                2,
                vec![
                    (Https, None, SearchStep::Hold, 1),
                    (A, Some(nx()), SearchStep::Hold, 1),
                    (Aaaa, Some(nx()), SearchStep::Next, 2),
                ],
            ),
            (
                "one name: nothing is held",
                1,
                vec![(A, Some(nx()), held(&[]), 1)],
            ),
        ];
        for (what, n, steps) in cases {
            let mut s = search(n);
            for (i, (qtype, answer, want, position)) in steps.into_iter().enumerate() {
                let got = s.on_answer(qtype, answer.as_ref());
                assert_eq!(got, want, "{what}: step {i}");
                assert_eq!(s.position().0, position, "{what}: step {i}");
            }
        }
    }

    #[test]
    fn search_with_one_family_moves_on_after_it() {
        let mut s = NameSearch::new(
            vec![name("a.example"), name("b.example")],
            true,
            false,
            false,
        );
        assert_eq!(s.on_answer(QueryType::A, Some(&nx())), SearchStep::Next);
        assert_eq!(s.name(), &name("b.example"));
    }

    fn https_alias() -> Answer {
        Answer::Https {
            records: [alias("target.example")].into_iter().collect(),
            ttl: 60,
        }
    }

    fn alias(target: &str) -> HttpsRecord {
        let mut r = HttpsRecord::alias_fallback(name(target));
        r.priority = 0;
        r
    }

    fn service(priority: u16, target: Option<&str>, alpn: &[&str]) -> HttpsRecord {
        let mut r = HttpsRecord::alias_fallback(name("placeholder.example"));
        r.priority = priority;
        r.target = target.map(name);
        r.alpn = alpn.iter().map(|a| a.to_string()).collect();
        r
    }

    // RFC 9460 §3 step 3 and the closing paragraph; §2.4.1 "If an RRset
    // contains a record in AliasMode, the recipient MUST ignore any
    // ServiceMode records in the set."
    #[test]
    fn alias_chain_is_followed_and_rewritten() {
        let first = name("_8443._https.svc.example");
        let mut chain = AliasChain::default();
        let step = chain.on_records(
            &first,
            &[alias("a1.example"), service(1, None, &["h2"])],
            &["h2".into()],
        );
        assert_eq!(
            step,
            AliasStep::Follow {
                target: name("a1.example"),
                hop: 1
            }
        );
        let step = chain.on_records(&first, &[alias("a2.example")], &[]);
        assert_eq!(
            step,
            AliasStep::Follow {
                target: name("a2.example"),
                hop: 2
            }
        );
        let AliasStep::Done(records) = chain.on_records(
            &first,
            &[
                service(1, None, &["h2"]),
                service(2, Some("far.example"), &[]),
            ],
            &["http/1.1".into()],
        ) else {
            panic!("a ServiceMode answer ends the chain");
        };
        let targets: Vec<_> = records
            .iter()
            .map(|r| (r.priority, r.target.clone(), r.alpn.clone()))
            .collect();
        assert_eq!(
            targets,
            [
                (1, Some(name("a2.example")), vec!["h2".to_string()]),
                (2, Some(name("far.example")), vec![]),
                (
                    u16::MAX,
                    Some(name("a2.example")),
                    vec!["http/1.1".to_string()]
                ),
            ]
        );
    }

    #[test]
    fn no_alias_leaves_records_alone() {
        let first = name("svc.example");
        let records = [service(1, None, &["h2"])];
        assert_eq!(
            AliasChain::default().on_records(&first, &records, &[]),
            AliasStep::Done(records.to_vec())
        );
    }

    // RFC 9460 §2.5: "For AliasMode SVCB RRs, a TargetName of '.' indicates
    // that the service is not available or does not exist."
    #[test]
    fn alias_to_root_is_service_not_available() {
        let mut root = alias("x.example");
        root.target = None;
        assert_eq!(
            AliasChain::default().on_records(&name("svc.example"), &[root], &[]),
            AliasStep::Done(Vec::new())
        );
    }

    // RFC 9460 §3: "subject to chain length limits and loop detection
    // heuristics". A loop, back to the first name or to any hop, and a
    // ninth hop fail the HTTPS question.
    #[test]
    fn alias_loops_and_long_chains_fail() {
        let first = name("svc.example");
        let mut chain = AliasChain::default();
        assert_eq!(
            chain.on_records(&first, &[alias("svc.example")], &[]),
            AliasStep::Fail(DnsOutcome::AliasLoop)
        );
        let mut chain = AliasChain::default();
        assert!(matches!(
            chain.on_records(&first, &[alias("a.example")], &[]),
            AliasStep::Follow { .. }
        ));
        assert!(matches!(
            chain.on_records(&first, &[alias("b.example")], &[]),
            AliasStep::Follow { .. }
        ));
        assert_eq!(
            chain.on_records(&first, &[alias("a.example")], &[]),
            AliasStep::Fail(DnsOutcome::AliasLoop)
        );
        let mut chain = AliasChain::default();
        for hop in 1..=MAX_ALIAS_HOPS {
            assert_eq!(
                chain.on_records(&first, &[alias(&format!("h{hop}.example"))], &[]),
                AliasStep::Follow {
                    target: name(&format!("h{hop}.example")),
                    hop
                }
            );
        }
        assert_eq!(
            chain.on_records(&first, &[alias("h9.example")], &[]),
            AliasStep::Fail(DnsOutcome::AliasChainTooLong)
        );
    }
}
