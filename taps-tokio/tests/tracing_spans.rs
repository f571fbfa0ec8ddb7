//! The race as `tracing` spans (taps-io's feature `tracing`), as a
//! subscriber sees them: a recording layer keeps every span (name,
//! fields, parent) and event, over real loopback races.
//!
//! One subscriber for the whole process (the spans are emitted by
//! whichever thread dispatches: runtime workers, too), so the tests share
//! it and tell their races apart by host.
#![cfg(feature = "tracing")]

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read as _;
use std::net::TcpListener;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use taps_tokio::{Config, Preconnection, SecurityParameters};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

/// What the subscriber saw.
#[derive(Clone, Debug, Default)]
struct Seen {
    spans: Vec<SpanRec>,
    events: Vec<EventRec>,
}

#[derive(Clone, Debug)]
struct SpanRec {
    name: &'static str,
    fields: BTreeMap<String, String>,
    /// Index into `Seen::spans`.
    parent: Option<usize>,
    closed: bool,
}

#[derive(Clone, Debug)]
struct EventRec {
    message: String,
    fields: BTreeMap<String, String>,
    /// Index into `Seen::spans`.
    parent: Option<usize>,
}

/// A span's index in `Seen::spans` (registry ids are reused; these are not).
struct Serial(usize);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

struct Recorder(&'static Mutex<Seen>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let span = ctx.span(id).expect("a new span is registered");
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Serial>().map(|s| s.0));
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut seen = self.0.lock().unwrap();
        seen.spans.push(SpanRec {
            name: attrs.metadata().name(),
            fields,
            parent,
            closed: false,
        });
        span.extensions_mut().insert(Serial(seen.spans.len() - 1));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(serial) = ctx
            .span(id)
            .and_then(|s| s.extensions().get::<Serial>().map(|s| s.0))
        else {
            return;
        };
        values.record(&mut Fields(
            &mut self.0.lock().unwrap().spans[serial].fields,
        ));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let parent = ctx
            .event_span(event)
            .and_then(|s| s.extensions().get::<Serial>().map(|s| s.0));
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        self.0.lock().unwrap().events.push(EventRec {
            message,
            fields,
            parent,
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(serial) = ctx
            .span(&id)
            .and_then(|s| s.extensions().get::<Serial>().map(|s| s.0))
        {
            self.0.lock().unwrap().spans[serial].closed = true;
        }
    }
}

/// The process's recorder, installed once as the global subscriber.
fn recorder() -> &'static Mutex<Seen> {
    static SEEN: OnceLock<&'static Mutex<Seen>> = OnceLock::new();
    SEEN.get_or_init(|| {
        let seen: &'static Mutex<Seen> = Box::leak(Box::default());
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(Recorder(seen)),
        )
        .expect("no other subscriber in this test binary");
        seen
    })
}

fn snapshot() -> Seen {
    recorder().lock().unwrap().clone()
}

/// The one race span for `host`, and its index.
fn race_for(seen: &Seen, host: &str) -> (usize, SpanRec) {
    let races: Vec<_> = seen
        .spans
        .iter()
        .enumerate()
        .filter(|(_, s)| s.name == "race" && s.fields.get("host").map(String::as_str) == Some(host))
        .collect();
    assert_eq!(races.len(), 1, "one race span for {host}: {seen:#?}");
    (races[0].0, races[0].1.clone())
}

fn children<'a>(seen: &'a Seen, parent: usize, name: &str) -> Vec<(usize, &'a SpanRec)> {
    seen.spans
        .iter()
        .enumerate()
        .filter(|(_, s)| s.parent == Some(parent) && s.name == name)
        .collect()
}

fn field<'a>(span: &'a SpanRec, name: &str) -> &'a str {
    span.fields.get(name).map_or("", String::as_str)
}

/// A port on which 127.0.0.1 alone listens (and takes one connection).
fn ipv4_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let _ = listener.accept();
    });
    port
}

/// `localhost` with only 127.0.0.1 listening: the race tries ::1 first
/// (RFC 6724 order), is refused, and 127.0.0.1 wins. One race span with
/// the host; under it two attempt spans naming their candidates, the
/// refused one `failed` with its reason, the other `won`; DNS spans for
/// the local answers; the events in the spans they belong to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_then_won_race_is_one_race_span_with_two_attempts() {
    recorder();
    let port = ipv4_listener();
    // No hosts file: `localhost` is the core's own (RFC 6761 §6.3), ::1
    // and 127.0.0.1 on every machine.
    let config = Config {
        hosts: Default::default(),
        ..taps_tokio::Taps::system_config().unwrap()
    };
    let taps = taps_tokio::with_config(config).unwrap();
    let host = format!("localhost:{port}");
    let conn = Preconnection::parse(&host)
        .unwrap()
        .initiate(&taps)
        .await
        .unwrap();
    assert!(conn.remote_addr().is_ipv4(), "{}", conn.remote_addr());

    let seen = snapshot();
    let (race, race_span) = race_for(&seen, &host);
    assert_eq!(field(&race_span, "stack"), "tcp");
    assert_eq!(field(&race_span, "outcome"), "won", "{race_span:#?}");
    let v4 = format!("127.0.0.1:{port}");
    let v6 = format!("[::1]:{port}");
    assert_eq!(field(&race_span, "winner"), v4);
    assert_eq!(field(&race_span, "candidates"), "2");

    let attempts = children(&seen, race, "attempt");
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    let (refused_at, refused) = attempts
        .iter()
        .find(|(_, a)| field(a, "candidate") == v6)
        .copied()
        .expect("an attempt to ::1");
    let (won_at, won) = attempts
        .iter()
        .find(|(_, a)| field(a, "candidate") == v4)
        .copied()
        .expect("an attempt to 127.0.0.1");
    assert_eq!(field(refused, "outcome"), "failed");
    assert_eq!(field(refused, "reason"), "connection refused");
    assert_eq!(field(won, "outcome"), "won");
    assert_eq!(field(won, "reason"), "", "a winner has no failure reason");
    for a in [refused, won] {
        assert_eq!(field(a, "stack"), "tcp");
        assert!(!field(a, "interface").is_empty(), "{a:#?}");
        assert!(a.closed, "an ended attempt's span is closed: {a:#?}");
    }

    // DNS: the local answers for `localhost`, as spans under the race.
    let dns = children(&seen, race, "dns");
    assert!(!dns.is_empty(), "no dns span: {seen:#?}");
    assert!(
        dns.iter().all(|(_, d)| field(d, "source") == "localhost"),
        "{dns:#?}"
    );

    // Each transition is an event in the span it concerns, in order.
    let in_span = |at: usize| -> Vec<&str> {
        seen.events
            .iter()
            .filter(|e| e.parent == Some(at))
            .map(|e| e.message.as_str())
            .collect()
    };
    let refused_events = in_span(refused_at);
    assert_eq!(
        refused_events.first(),
        Some(&"attempt started"),
        "{refused_events:?}"
    );
    assert_eq!(
        refused_events.last(),
        Some(&"attempt failed"),
        "{refused_events:?}"
    );
    assert!(!refused_events.contains(&"TCP up"), "{refused_events:?}");
    let won_events = in_span(won_at);
    assert_eq!(
        won_events.first(),
        Some(&"attempt started"),
        "{won_events:?}"
    );
    assert!(won_events.contains(&"attempt connected"), "{won_events:?}");
    assert_eq!(won_events.last(), Some(&"attempt won"), "{won_events:?}");
    let race_events = in_span(race);
    assert_eq!(
        race_events.first(),
        Some(&"race started"),
        "{race_events:?}"
    );
    assert_eq!(race_events.last(), Some(&"race won"), "{race_events:?}");
    let failed = seen
        .events
        .iter()
        .find(|e| e.parent == Some(refused_at) && e.message == "attempt failed")
        .unwrap();
    assert_eq!(failed.fields["reason"], "connection refused");
    assert!(failed.fields.contains_key("at_ms"), "{failed:?}");
    drop(conn);
}

/// The spans are live: a TLS attempt whose server never answers shows
/// "TCP up" while `initiate` is still waiting (not only once the race
/// ends), and dropping `initiate` ends the race span as `cancelled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_come_out_while_the_race_runs_and_a_dropped_initiate_is_cancelled() {
    recorder();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and reads, never answers: the TLS handshake waits.
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let _ = s.read_to_end(&mut Vec::new());
        }
    });
    let taps = taps_tokio::new().unwrap();
    let host = format!("127.0.0.1:{port}");
    let pre = Preconnection::parse(&host)
        .unwrap()
        .with_security(SecurityParameters::with_roots(Vec::new()).danger_disable_verification())
        .with_timeout(Duration::from_secs(600));
    let initiate = tokio::spawn(async move { pre.initiate(&taps).await.map(drop) });

    // Generous: a loopback connect takes well under a millisecond.
    let deadline = Instant::now() + Duration::from_secs(20);
    let attempt = loop {
        let seen = snapshot();
        let tcp_up = seen.events.iter().find_map(|e| {
            let span = &seen.spans[e.parent?];
            let race = &seen.spans[span.parent?];
            (e.message == "TCP up" && field(race, "host") == host).then_some(e.parent?)
        });
        if let Some(attempt) = tcp_up {
            break attempt;
        }
        assert!(Instant::now() < deadline, "no TCP up logged: {seen:#?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(
        !initiate.is_finished(),
        "the handshake cannot have finished"
    );
    let seen = snapshot();
    let (_, race_span) = race_for(&seen, &host);
    assert_eq!(field(&race_span, "stack"), "tcp+tls");
    assert_eq!(field(&race_span, "outcome"), "", "undecided while it runs");
    assert_eq!(field(&seen.spans[attempt], "stack"), "tcp+tls");

    initiate.abort();
    let _ = initiate.await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = snapshot();
        let (_, race_span) = race_for(&seen, &host);
        if field(&race_span, "outcome") == "cancelled" {
            assert_eq!(field(&seen.spans[attempt], "outcome"), "cancelled");
            assert!(race_span.closed && seen.spans[attempt].closed);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the race was not cancelled: {race_span:#?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A resolver on loopback answering A with 127.0.0.1 and everything else
/// with no data, for as long as the test runs.
fn resolver() -> std::net::SocketAddr {
    use taps_core::dns::{Answer, QueryType};
    use taps_testkit::dns::{build_response, parse_query};
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let at = udp.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            let Ok(q) = parse_query(&buf[..n]) else {
                continue;
            };
            let answer = match q.qtype {
                QueryType::A => Answer::Addresses {
                    addrs: vec![std::net::IpAddr::from([127, 0, 0, 1])].into(),
                    ttl: 5,
                },
                _ => Answer::NoData { negative_ttl: 5 },
            };
            let _ = udp.send_to(&build_response(&q, &answer, false), from);
        }
    });
    at
}

/// A name resolved over the network: one `dns` span per question under
/// the race, naming the server; the query and the answer are events in
/// it; the A answer's outcome is on the span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_transactions_are_spans_under_the_race() {
    recorder();
    let port = ipv4_listener();
    let server = resolver();
    let mut config = taps_tokio::Taps::system_config().unwrap();
    config.dns.servers = vec![server];
    config.hosts = Default::default();
    let taps = taps_tokio::with_config(config).unwrap();
    let host = format!("spans.taps.test:{port}");
    let conn = Preconnection::parse(&host)
        .unwrap()
        .initiate(&taps)
        .await
        .unwrap();
    assert!(conn.remote_addr().is_ipv4());

    let seen = snapshot();
    let (race, race_span) = race_for(&seen, &host);
    assert_eq!(field(&race_span, "outcome"), "won");
    let dns = children(&seen, race, "dns");
    let a = dns
        .iter()
        .find(|(_, d)| field(d, "qtype") == "A")
        .unwrap_or_else(|| panic!("no A transaction: {dns:#?}"));
    assert_eq!(field(a.1, "server"), server.to_string());
    assert_eq!(field(a.1, "outcome"), "1 record(s), ttl 5s");
    assert_eq!(field(a.1, "source"), "", "asked over the network");
    assert!(a.1.closed, "an answered transaction's span is closed");
    let events: Vec<_> = seen
        .events
        .iter()
        .filter(|e| e.parent == Some(a.0))
        .collect();
    assert_eq!(
        events.first().map(|e| e.message.as_str()),
        Some("dns query sent")
    );
    assert_eq!(events[0].fields["server"], server.to_string());
    assert_eq!(
        events.last().map(|e| e.message.as_str()),
        Some("dns answer")
    );
    let aaaa = dns
        .iter()
        .find(|(_, d)| field(d, "qtype") == "AAAA")
        .unwrap_or_else(|| panic!("no AAAA transaction: {dns:#?}"));
    assert_eq!(field(aaaa.1, "outcome"), "no data");
}
