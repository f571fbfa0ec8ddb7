//! Attempt phases in the text and SVG waterfalls: an attempt whose TCP came
//! up and still lost shows its TCP-up phase in both, from the trace.

use std::path::PathBuf;

use taps_sim::{RunOptions, Scenario, run_scenario, svg};

fn report(name: &str) -> taps_sim::Report {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.toml"));
    let sc = Scenario::load(&path).unwrap();
    run_scenario(&sc, RunOptions::of(&sc), true).unwrap()
}

#[test]
fn a_losing_attempt_whose_tcp_came_up_shows_it_in_text_and_svg() {
    // Real TLS: attempt #1's server completes TCP at 50 ms and stalls TLS;
    // #2 wins at 322 ms and #1 is cancelled.
    let r = report("tls-stalled-first-address-real-tls");
    let text = r.text(false);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("#1 [2001:db8::1]:443"))
        .unwrap_or_else(|| panic!("no bar for #1 in\n{text}"));
    assert!(
        line.ends_with("] cancelled (30.0-322.0ms; TCP up at 50.0ms)"),
        "{line}"
    );
    // The bar is the 49 cells before the last "] ".
    let close = line.rfind("] ").unwrap();
    let bar = line[close - 49..close].trim();
    // Connecting from 30 to 50 ms, then TCP up to the cancel at 322 ms.
    assert!(bar.starts_with("---="), "{bar}");
    assert!(bar.ends_with("=/"), "{bar}");
    assert!(
        text.contains("- connecting  = TCP up, TLS handshake"),
        "{text}"
    );

    let picture = svg::render(&r);
    assert!(
        picture.contains(&format!(
            r#"fill="{}" class="phase"><title>#1 [2001:db8::1]:443: TCP up, TLS handshake 50 ms–322 ms</title>"#,
            svg::TCP_UP
        )),
        "{picture}"
    );
    assert!(picture.contains("#1 [2001:db8::1]:443: connecting 30 ms–50 ms"));
    assert!(picture.contains(">TCP up, TLS handshake</text>"), "legend");
}

#[test]
fn modelled_tls_has_no_tcp_up_phase_to_show() {
    // The modelled handshake reports the stack up at once, so the trace
    // has no TCP-up moment and the bars must not invent one.
    let r = report("v6-blackhole");
    let text = r.text(false);
    let bars: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .collect();
    assert!(!bars.is_empty(), "{text}");
    for b in bars {
        assert!(!b.contains('=') && !b.contains("TCP up at"), "{b}");
    }
    let picture = svg::render(&r);
    assert!(!picture.contains(&format!(r#"fill="{}" class="phase""#, svg::TCP_UP)));
    assert!(picture.contains(&format!(r#"fill="{}" class="phase""#, svg::CONNECTING)));
}
