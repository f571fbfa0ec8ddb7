//! `[expect]` checking: what `taps-sim check` asserts about a run.
//!
//! Keys at the top of `[expect]` apply to every connection; the n-th
//! `[[expect.connection]]` table applies to connection n as well. Every
//! mismatch is reported, not just the first, each naming the key, the
//! expected and the actual value.

use crate::report::{Report, ms};
use crate::scenario::{Expect, ExpectConn, Outcome};

/// Every mismatch between `report` and `expect`, plus every contract
/// violation the run observed.
pub fn check(expect: &Expect, report: &Report) -> Vec<String> {
    let mut failures: Vec<String> = report
        .run
        .violations
        .iter()
        .map(|v| format!("contract violated: {v}"))
        .collect();
    for i in 0..report.connections.len() {
        let label = if report.connections.len() > 1 {
            format!("connection {}: ", i + 1)
        } else {
            String::new()
        };
        let oracle = report.oracle.get(i).copied().flatten();
        check_conn(
            &expect.all,
            "expect",
            report,
            i,
            oracle,
            &label,
            &mut failures,
        );
        if let Some(e) = expect.each.get(i) {
            check_conn(
                e,
                &format!("expect.connection[{i}]"),
                report,
                i,
                oracle,
                &label,
                &mut failures,
            );
        }
    }
    failures
}

#[allow(clippy::too_many_arguments)]
fn check_conn(
    e: &ExpectConn,
    key: &str,
    report: &Report,
    i: usize,
    oracle: Option<core::time::Duration>,
    label: &str,
    out: &mut Vec<String>,
) {
    let Some(c) = report.connections.get(i) else {
        return;
    };
    let mut fail = |k: &str, expected: String, actual: String| {
        out.push(format!(
            "{label}{key}.{k}: expected {expected}, got {actual}"
        ));
    };
    if let Some(o) = e.outcome {
        let want = match o {
            Outcome::Ready => "ready",
            Outcome::Failed => "failed",
        };
        if c.outcome != want {
            let why = c
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            fail("outcome", want.into(), format!("{}{why}", c.outcome));
        }
    }
    if let Some(w) = e.winner {
        let actual = c.winner.as_ref().map(|(r, _)| *r);
        if actual != Some(w) {
            fail(
                "winner",
                w.to_string(),
                actual.map_or_else(|| "no winner".into(), |a| a.to_string()),
            );
        }
    }
    if let Some(iface) = &e.interface {
        let actual = c.winner.as_ref().map(|(_, i)| i.as_str());
        if actual != Some(iface.as_str()) {
            fail(
                "interface",
                iface.clone(),
                actual.unwrap_or("no winner").to_string(),
            );
        }
    }
    let ttr = || {
        c.time_to_ready
            .map_or_else(|| "never ready".to_string(), ms)
    };
    if let Some(limit) = e.ready_within
        && c.time_to_ready.is_none_or(|t| t > limit)
    {
        fail("ready_within", format!("at most {}", ms(limit)), ttr());
    }
    if let Some(exact) = e.ready_at
        && c.time_to_ready != Some(exact)
    {
        fail("ready_at", ms(exact), ttr());
    }
    let n = c.attempts.len() as u32;
    if let Some(a) = e.attempts
        && n != a
    {
        fail("attempts", a.to_string(), n.to_string());
    }
    if let Some(a) = e.attempts_at_most
        && n > a
    {
        fail("attempts_at_most", format!("at most {a}"), n.to_string());
    }
    if let Some(list) = &e.attempt_results {
        let actual: Vec<String> = c.attempts.iter().map(|a| a.summary()).collect();
        if &actual != list {
            fail(
                "attempt_results",
                format!("{list:?}"),
                format!("{actual:?}"),
            );
        }
    }
    if let Some(q) = e.dns_queries
        && c.dns_queries != q
    {
        fail("dns_queries", q.to_string(), c.dns_queries.to_string());
    }
    if let Some(d) = e.dns_dropped
        && c.dns_dropped != d
    {
        fail("dns_dropped", d.to_string(), c.dns_dropped.to_string());
    }
    if let Some(text) = &e.error_contains {
        let has = c
            .error
            .as_deref()
            .is_some_and(|err| err.contains(text.as_str()));
        if !has {
            fail(
                "error_contains",
                format!("an error containing {text:?}"),
                c.error
                    .clone()
                    .map_or_else(|| "no error".into(), |e| format!("{e:?}")),
            );
        }
    }
    if let Some(o) = e.oracle
        && oracle != Some(o)
    {
        fail(
            "oracle",
            ms(o),
            oracle.map_or_else(|| "no oracle".into(), ms),
        );
    }
}
