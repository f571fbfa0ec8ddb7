//! The race trace for people and programs: the core's text waterfall, and
//! the whole trace as JSON (`tapscat --trace-json`).
//!
//! The JSON is one object: `remote`, `start` (always 0), and `events`, each
//! with `at_ms` (milliseconds from initiate, fractional) and `kind`, plus
//! the fields of that kind (`qtype`, `server`, `attempt`, `remote`,
//! `interface`, `reason`, and for `tls_established` `version`,
//! `cipher_suite`, `alpn`, `peer_subject`, `peer_names`, `resumed`, `early_data_accepted`,
//! ...). Written by hand to keep serde out of the
//! dependency tree; strings are escaped per RFC 8259 §7.

use std::fmt::Write as _;

use taps_core::race::DelaySource;
use taps_core::{LocalSource, NameStep};

pub use taps_core::{FailureReason, Trace, TraceEvent, TraceKind};

/// The text waterfall: the event log, then one bar per attempt.
pub fn waterfall(
    trace: &Trace,
    remote: &str,
    interface_name: &dyn Fn(u32) -> Option<String>,
) -> String {
    trace.waterfall(remote, interface_name)
}

/// The whole trace as JSON.
pub fn to_json(
    trace: &Trace,
    remote: &str,
    interface_name: &dyn Fn(u32) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(256 + 96 * trace.events.len());
    out.push_str("{\"remote\":");
    string(&mut out, remote);
    out.push_str(",\"events\":[");
    for (i, e) in trace.events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"at_ms\":{:.3}", e.at.millis_since(trace.start));
        let iface = |out: &mut String, i: Option<u32>| {
            out.push_str(",\"interface\":");
            match i {
                None => out.push_str("null"),
                Some(i) => string(out, &interface_name(i).unwrap_or_else(|| format!("if#{i}"))),
            }
        };
        match e.kind {
            TraceKind::DnsQuery {
                qtype,
                server,
                tcp,
                retransmit,
            } => {
                kind(&mut out, "dns_query");
                field(&mut out, "qtype", qtype.name());
                field(&mut out, "server", &server.to_string());
                let _ = write!(out, ",\"tcp\":{tcp},\"retransmit\":{retransmit}");
            }
            TraceKind::DnsAnswer {
                qtype,
                outcome,
                local,
            } => {
                kind(&mut out, "dns_answer");
                field(&mut out, "qtype", qtype.name());
                field(&mut out, "outcome", &outcome.to_string());
                out.push_str(",\"local\":");
                match local {
                    None => out.push_str("null"),
                    Some(l) => string(
                        &mut out,
                        match l {
                            LocalSource::Cache => "cache",
                            LocalSource::HostsFile => "hosts_file",
                            LocalSource::Localhost => "localhost",
                            LocalSource::Literal => "literal",
                        },
                    ),
                }
            }
            TraceKind::DnsRetry { qtype, outcome } => {
                kind(&mut out, "dns_retry");
                field(&mut out, "qtype", qtype.name());
                field(&mut out, "outcome", &outcome.to_string());
            }
            TraceKind::DnsDropped { qtype, reason } => {
                kind(&mut out, "dns_dropped");
                field(&mut out, "qtype", qtype.name());
                field(&mut out, "reason", &format!("{reason:?}"));
            }
            TraceKind::DnsJoined { qtype, server } => {
                kind(&mut out, "dns_joined");
                field(&mut out, "qtype", qtype.name());
                field(&mut out, "server", &server.to_string());
            }
            TraceKind::DnsName { name, step } => {
                kind(&mut out, "dns_name");
                field(&mut out, "name", name.as_str());
                match step {
                    NameStep::Search { index, of } => {
                        field(&mut out, "why", "search");
                        let _ = write!(out, ",\"index\":{index},\"of\":{of}");
                    }
                    NameStep::Alias { hop } => {
                        field(&mut out, "why", "alias");
                        let _ = write!(out, ",\"hop\":{hop}");
                    }
                }
            }
            TraceKind::ResolutionDelayStarted => kind(&mut out, "resolution_delay"),
            TraceKind::RacingStarted { candidates } => {
                kind(&mut out, "racing_started");
                let _ = write!(out, ",\"candidates\":{candidates}");
            }
            TraceKind::PathStarted { interface } => {
                kind(&mut out, "path_started");
                iface(&mut out, interface);
            }
            TraceKind::AttemptStarted {
                attempt,
                remote,
                interface,
                nat64,
            } => {
                kind(&mut out, "attempt_started");
                let _ = write!(out, ",\"attempt\":{attempt}");
                field(&mut out, "remote", &remote.to_string());
                iface(&mut out, interface);
                // HEv3 §8.3: the IPv4 destination `remote` was synthesized from.
                if let Some(v4) = nat64 {
                    field(&mut out, "nat64", &v4.to_string());
                }
            }
            TraceKind::Nat64Query { server } => {
                kind(&mut out, "nat64_query");
                field(&mut out, "server", &server.to_string());
            }
            TraceKind::Nat64Prefix { prefix, source } => {
                kind(&mut out, "nat64_prefix");
                out.push_str(",\"prefix\":");
                match prefix {
                    None => out.push_str("null"),
                    Some(p) => string(&mut out, &p.to_string()),
                }
                field(&mut out, "source", &source.to_string());
            }
            TraceKind::AttemptTransportUp { attempt } => {
                kind(&mut out, "attempt_transport_up");
                let _ = write!(out, ",\"attempt\":{attempt}");
            }
            TraceKind::AttemptDelay { attempt, delay } => {
                kind(&mut out, "attempt_delay");
                let _ = write!(
                    out,
                    ",\"attempt\":{attempt},\"delay_us\":{},\"rto_us\":{}",
                    delay.delay_us, delay.rto_us
                );
                let (source, samples) = match delay.source {
                    DelaySource::Configured => ("configured", None),
                    DelaySource::Prefix { samples } => ("prefix", Some(samples)),
                    DelaySource::Kernel => ("kernel", None),
                    DelaySource::Path { samples } => ("path", Some(samples)),
                    DelaySource::KernelPrefix { samples } => ("kernel_prefix", Some(samples)),
                    DelaySource::KernelPath { samples } => ("kernel_path", Some(samples)),
                };
                field(&mut out, "source", source);
                if let Some(n) = samples {
                    let _ = write!(out, ",\"samples\":{n}");
                }
            }
            TraceKind::TlsEstablished { attempt } => {
                kind(&mut out, "tls_established");
                let _ = write!(out, ",\"attempt\":{attempt}");
                if let Some(details) = trace.tls_details(attempt) {
                    field(&mut out, "version", details.version.as_str());
                    field(&mut out, "cipher_suite", details.cipher_suite.as_str());
                    field(&mut out, "alpn", details.alpn.as_str());
                    field(&mut out, "peer_subject", details.peer_subject.as_str());
                    field(&mut out, "peer_names", details.peer_names.as_str());
                    let _ = write!(
                        out,
                        ",\"resumed\":{},\"early_data_accepted\":{}",
                        details.resumed, details.early_data_accepted
                    );
                }
            }
            TraceKind::AttemptConnected { attempt } => {
                kind(&mut out, "attempt_connected");
                let _ = write!(out, ",\"attempt\":{attempt}");
            }
            TraceKind::AttemptFailed { attempt, reason } => {
                kind(&mut out, "attempt_failed");
                let _ = write!(out, ",\"attempt\":{attempt}");
                field(&mut out, "reason", &reason.to_string());
            }
            TraceKind::AttemptCancelled { attempt } => {
                kind(&mut out, "attempt_cancelled");
                let _ = write!(out, ",\"attempt\":{attempt}");
            }
            TraceKind::Winner { attempt } => {
                kind(&mut out, "winner");
                let _ = write!(out, ",\"attempt\":{attempt}");
            }
            TraceKind::EstablishmentFailed => kind(&mut out, "establishment_failed"),
            TraceKind::Closed => kind(&mut out, "closed"),
        }
        out.push('}');
    }
    out.push_str("]}");
    out
}

fn kind(out: &mut String, name: &str) {
    field(out, "kind", name);
}

fn field(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, ",\"{name}\":");
    string(out, value);
}

/// A JSON string literal (RFC 8259 §7).
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use taps_core::Instant;

    #[test]
    fn json_names_every_attempt_and_escapes_strings() {
        let t0 = Instant::from_nanos(1_000_000);
        let mut trace = Trace::new(t0);
        trace.record(
            Instant::from_nanos(1_500_000),
            TraceKind::AttemptStarted {
                attempt: 1,
                remote: "[2001:db8::1]:443".parse().unwrap(),
                interface: Some(3),
                nat64: None,
            },
        );
        trace.record(
            Instant::from_nanos(3_000_000),
            TraceKind::AttemptFailed {
                attempt: 1,
                reason: FailureReason::Refused,
            },
        );
        let json = to_json(&trace, "a \"quoted\"\nname", &|i| Some(format!("eth{i}")));
        assert_eq!(
            json,
            "{\"remote\":\"a \\\"quoted\\\"\\nname\",\"events\":[\
             {\"at_ms\":0.500,\"kind\":\"attempt_started\",\"attempt\":1,\"remote\":\"[2001:db8::1]:443\",\"interface\":\"eth3\"},\
             {\"at_ms\":2.000,\"kind\":\"attempt_failed\",\"attempt\":1,\"reason\":\"connection refused\"}]}"
        );
    }
}
