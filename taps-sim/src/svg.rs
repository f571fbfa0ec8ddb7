//! The waterfall as an SVG picture: one panel per connection, with a time
//! axis, a bar per DNS question (sent to answered), a bar per attempt split
//! into its phases (connecting, then TCP up with TLS handshaking) and
//! capped by how it ended, the winner starred and the moment of readiness
//! (and the oracle's) marked by vertical lines.

use core::fmt::Write as _;
use core::time::Duration;

use crate::report::{AttemptEnd, Phase, Report};
use crate::units::millis;
use taps_core::DnsOutcome;

const WIDTH: f64 = 1120.0;
const LABEL_W: f64 = 330.0;
const CHART_X: f64 = 340.0;
const CHART_W: f64 = 520.0;
const ROW_H: f64 = 24.0;
const BAR_H: f64 = 14.0;

/// Colour of a won attempt.
pub const WON: &str = "#2e9d44";
/// Colour of a failed attempt.
pub const FAILED: &str = "#d0453a";
/// Colour of a cancelled attempt.
pub const CANCELLED: &str = "#a3a3a3";
/// Colour of an attempt still running.
pub const RUNNING: &str = "#e0a020";
/// Colour of an attempt's connecting phase.
pub const CONNECTING: &str = "#9cc3e6";
/// Colour of an attempt's phase after TCP came up (the TLS handshake).
pub const TCP_UP: &str = "#2f5f9e";
/// Width of the cap that shows how an attempt ended.
const CAP_W: f64 = 6.0;
/// Colour of a DNS question that got an answer.
pub const DNS: &str = "#4f7fd8";
/// Colour of a DNS question that failed or got nothing.
pub const DNS_FAILED: &str = "#9b6fd0";

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A tick step near `span / 6` from the 1-2-5 series, in milliseconds.
fn tick_step(span_ms: f64) -> f64 {
    let raw = (span_ms / 6.0).max(1e-3);
    let mag = 10f64.powi(raw.log10().floor() as i32);
    for m in [1.0, 2.0, 5.0, 10.0] {
        if mag * m >= raw {
            return mag * m;
        }
    }
    mag * 10.0
}

fn fmt_ms(v: f64) -> String {
    if v >= 1000.0 && (v / 1000.0).fract() == 0.0 {
        format!("{} s", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

/// Renders the report as an SVG document.
pub fn render(report: &Report) -> String {
    let mut body = String::new();
    let mut y = 58.0;
    for (i, c) in report.connections.iter().enumerate() {
        let rows = c.dns.len() + c.attempts.len().max(1);
        // The axis spans everything that happened, and the oracle.
        let oracle = report.oracle.get(i).copied().flatten();
        let span = c.span(oracle);
        let span_ms = millis(span).max(1.0);
        let step = tick_step(span_ms);
        let axis_ms = (span_ms / step).ceil() * step;
        let x = |d: Duration| CHART_X + millis(d) / axis_ms * CHART_W;

        let head = match (&c.winner, c.time_to_ready) {
            (Some((remote, iface)), Some(t)) => {
                format!(
                    "connection {}: ready after {} via {remote} on {iface}",
                    i + 1,
                    fmt_ms(millis(t))
                )
            }
            _ => format!("connection {}: {}", i + 1, c.outcome),
        };
        let _ = writeln!(
            body,
            r#"<text x="12" y="{y:.1}" class="h2">{}</text>"#,
            esc(&head)
        );
        y += 14.0;
        let top = y;
        let bottom = top + rows as f64 * ROW_H + 6.0;
        // Grid and axis labels.
        let mut t = 0.0;
        while t <= axis_ms + 1e-9 {
            let gx = CHART_X + t / axis_ms * CHART_W;
            let _ = writeln!(
                body,
                r##"<line x1="{gx:.1}" y1="{top:.1}" x2="{gx:.1}" y2="{bottom:.1}" stroke="#e4e4e4"/><text x="{gx:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"##,
                bottom + 12.0,
                fmt_ms(t)
            );
            t += step;
        }
        let mut row = 0usize;
        let bar = |body: &mut String,
                   row: usize,
                   from: Duration,
                   to: Duration,
                   colour: &str,
                   label: &str,
                   note: &str,
                   bold: bool| {
            let ry = top + row as f64 * ROW_H;
            let x0 = x(from);
            let w = (x(to) - x0).max(2.0);
            let class = if bold { "lbl b" } else { "lbl" };
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{:.1}" class="{class}" text-anchor="end">{}</text><rect x="{x0:.1}" y="{:.1}" width="{w:.1}" height="{BAR_H}" rx="2" fill="{colour}"><title>{}</title></rect><text x="{:.1}" y="{:.1}" class="note">{}</text>"#,
                LABEL_W,
                ry + 11.0 + 4.0,
                esc(label),
                ry + 4.0,
                esc(&format!("{label}: {note}")),
                CHART_X + CHART_W + 8.0,
                ry + 15.0,
                esc(note)
            );
        };
        for d in &c.dns {
            let from = d.sent.or(d.answered).unwrap_or_default();
            let to = d.answered.unwrap_or(span);
            let good = matches!(
                d.outcome,
                Some(DnsOutcome::Positive { .. } | DnsOutcome::NoData)
            );
            let label = format!("dns {} {}", d.qtype.name(), report.qname);
            bar(
                &mut body,
                row,
                from,
                to,
                if good { DNS } else { DNS_FAILED },
                &label,
                &d.result(),
                false,
            );
            row += 1;
        }
        if c.attempts.is_empty() {
            let ry = top + row as f64 * ROW_H;
            let _ = writeln!(
                body,
                r#"<text x="{LABEL_W:.1}" y="{:.1}" class="lbl" text-anchor="end">no attempts</text>"#,
                ry + 15.0
            );
        }
        for a in &c.attempts {
            let (colour, note) = match a.result {
                AttemptEnd::Won => (WON, "★ won".to_string()),
                AttemptEnd::Failed(r) => (FAILED, format!("failed: {r}")),
                AttemptEnd::Cancelled => (CANCELLED, "cancelled".to_string()),
                AttemptEnd::Running => (RUNNING, "running".to_string()),
            };
            let label = format!("#{} {} · {}", a.attempt, a.target(), a.interface_name);
            let note = format!(
                "{note} ({}–{})",
                fmt_ms(millis(a.start)),
                a.end.map_or_else(|| "…".to_string(), |e| fmt_ms(millis(e)))
            );
            let won = a.result == AttemptEnd::Won;
            let end = a.end.unwrap_or(span);
            // The label and note, with the bar in the colour of how it
            // ended; the phases are drawn over it, leaving the end as a cap.
            bar(&mut body, row, a.start, end, colour, &label, &note, won);
            let ry = top + row as f64 * ROW_H + 4.0;
            let phases = a.phases(span);
            let last = phases.len().saturating_sub(1);
            for (k, (phase, from, to)) in phases.into_iter().enumerate() {
                let x0 = x(from);
                // Only the last phase leaves room for the cap.
                let cap = if k == last { CAP_W } else { 0.0 };
                let w = (x(to) - x0 - cap).max(0.0);
                if w <= 0.0 {
                    continue;
                }
                let fill = match phase {
                    Phase::Connecting => CONNECTING,
                    Phase::TcpUp => TCP_UP,
                };
                let _ = writeln!(
                    body,
                    r#"<rect x="{x0:.1}" y="{ry:.1}" width="{w:.1}" height="{BAR_H}" fill="{fill}" class="phase"><title>{}</title></rect>"#,
                    esc(&format!(
                        "#{} {}: {} {}–{}",
                        a.attempt,
                        a.target(),
                        phase.name(),
                        fmt_ms(millis(from)),
                        fmt_ms(millis(to))
                    ))
                );
            }
            if won {
                let ry = top + row as f64 * ROW_H;
                let _ = writeln!(
                    body,
                    r##"<text x="{:.1}" y="{:.1}" class="star" text-anchor="middle">★</text>"##,
                    x(a.end.unwrap_or(span)),
                    ry + 2.0
                );
            }
            row += 1;
        }
        if let Some(t) = c.time_to_ready {
            let rx = x(t);
            let _ = writeln!(
                body,
                r##"<line x1="{rx:.1}" y1="{:.1}" x2="{rx:.1}" y2="{bottom:.1}" stroke="{WON}" stroke-dasharray="4 3"/><text x="{rx:.1}" y="{:.1}" class="mark" fill="{WON}" text-anchor="middle">ready {}</text>"##,
                top - 2.0,
                top - 4.0,
                fmt_ms(millis(t))
            );
        }
        if let Some(o) = oracle {
            let ox = x(o);
            let _ = writeln!(
                body,
                r##"<line x1="{ox:.1}" y1="{top:.1}" x2="{ox:.1}" y2="{bottom:.1}" stroke="#555" stroke-dasharray="1 3"/><text x="{ox:.1}" y="{:.1}" class="tick" text-anchor="middle">oracle {}</text>"##,
                bottom + 24.0,
                fmt_ms(millis(o))
            );
        }
        y = bottom + 44.0;
    }
    // Legend.
    let mut lx = 12.0;
    let mut legend = String::new();
    for (colour, name) in [
        (DNS, "DNS answer"),
        (DNS_FAILED, "DNS failure"),
        (CONNECTING, Phase::Connecting.name()),
        (TCP_UP, Phase::TcpUp.name()),
        (WON, "won"),
        (FAILED, "failed"),
        (CANCELLED, "cancelled"),
        (RUNNING, "running"),
    ] {
        let _ = write!(
            legend,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" rx="2" fill="{colour}"/><text x="{:.1}" y="{:.1}" class="tick">{name}</text>"#,
            y - 10.0,
            lx + 16.0,
            y
        );
        lx += 16.0 + 7.0 * name.len() as f64 + 14.0;
    }
    let height = y + 16.0;
    let title = format!(
        "{} · policy {} · seed {}",
        report.scenario,
        report.run.policy.name(),
        report.run.seed
    );
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.0}" height="{height:.0}" viewBox="0 0 {WIDTH:.0} {height:.0}" font-family="Helvetica, Arial, sans-serif">
<style>.h1{{font-size:16px;font-weight:bold}} .h2{{font-size:13px;font-weight:bold}} .lbl{{font-size:12px}} .b{{font-weight:bold}} .note{{font-size:11px;fill:#333}} .tick{{font-size:10px;fill:#666}} .mark{{font-size:10px;font-weight:bold}} .star{{font-size:16px;fill:#e8b400}}</style>
<rect width="100%" height="100%" fill="white"/>
<text x="12" y="24" class="h1">{}</text>
<text x="12" y="40" class="tick">times from initiate; trace hash {:016x}</text>
{body}{legend}
</svg>
"##,
        esc(&title),
        report.trace_hash
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_follow_one_two_five() {
        assert_eq!(tick_step(300.0), 50.0);
        assert_eq!(tick_step(127_000.0), 50_000.0);
        assert_eq!(tick_step(12.0), 2.0);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
