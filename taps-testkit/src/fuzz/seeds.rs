//! The seed corpora of `fuzz/corpus/<target>/`, generated from real
//! inputs: DNS messages written by the responder (the one the simulator's
//! servers use) and by hickory-proto, endpoint texts from the grammar,
//! framed streams, TLS ClientHello and server flights captured from an
//! in-memory handshake between two machines, and `machine` sessions written
//! from readable scripts ([`super::script`]), some of them regression inputs
//! of `fuzz/artifacts/machine/`.
//!
//! taps-core's replay test checks that every seed is checked in (byte for
//! byte where the generator is deterministic; TLS handshakes draw fresh
//! randomness, so only their presence is checked) and rewrites the files
//! when run with `TAPS_FUZZ_WRITE_SEEDS=1`. Campaigns add their own finds
//! (distilled with `-merge=1`) beside the generated seeds.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Message as DnsMessage, OpCode, Query};
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use taps_core::dns::{Answer, HttpsRecord, QueryType};
use taps_core::framer::{Delimited, Framer, LengthPrefixed};

use super::dns_answer::{DnsMode, alias_only};
use super::framer::{FramerCase, FramerKind};
use super::pair::Pair;
use super::script::{Enc, P};
use super::tls_records::{TlsMode, TlsOp};
use super::{DNS_NAME, host, question};
use crate::dns::build_response;

/// Collects into whatever list type a field has (`Vec`, `SmallVec`).
fn collect<T, C: FromIterator<T>>(items: impl IntoIterator<Item = T>) -> C {
    items.into_iter().collect()
}

/// One corpus file.
#[derive(Clone, Debug)]
pub struct Seed {
    /// The target's name (its corpus directory).
    pub target: &'static str,
    /// The file name.
    pub name: String,
    /// The contents.
    pub bytes: Vec<u8>,
    /// Whether the generator always writes the same bytes.
    pub deterministic: bool,
    /// `corpus` for seeds, `artifacts` for inputs that once crashed a
    /// target (regressions written from a readable script).
    pub dir: &'static str,
}

fn seed(target: &'static str, name: &str, bytes: Vec<u8>) -> Seed {
    Seed {
        target,
        name: name.to_string(),
        bytes,
        deterministic: true,
        dir: "corpus",
    }
}

/// Every generated seed.
pub fn all() -> Vec<Seed> {
    let mut out = dns();
    out.extend(endpoints());
    out.extend(framed());
    out.extend(tls());
    out.extend(machine());
    out.extend(history_files());
    out
}

/// History files: one written by the core's encoder (every record kind),
/// and the same lines for the sealing mode, read later so some expire.
fn history_files() -> Vec<Seed> {
    use core::time::Duration;
    use taps_core::race::{Outcome, SavedHistory, SavedHttps, SavedOutcome};
    let saved = SavedHistory {
        outcomes: vec![
            SavedOutcome {
                interface: Some("eth0".into()),
                addr: ip("2001:db8::1"),
                outcome: Outcome::Unfinished,
                age: Duration::from_secs(3),
                won_age: Some(Duration::from_secs(200)),
            },
            SavedOutcome {
                interface: Some("eth0".into()),
                addr: ip("192.0.2.1"),
                outcome: Outcome::Won {
                    rtt: Duration::from_micros(2500),
                },
                age: Duration::from_secs(3),
                won_age: Some(Duration::from_secs(3)),
            },
            SavedOutcome {
                interface: None,
                addr: ip("198.51.100.9"),
                outcome: Outcome::Failed,
                age: Duration::from_secs(500),
                won_age: None,
            },
        ],
        https: vec![
            SavedHttps {
                name: host(DNS_NAME),
                ttl_left: 300,
                records: vec![HttpsRecord {
                    priority: 1,
                    target: None,
                    alpn: vec!["h2".into(), "http/1.1".into()],
                    no_default_alpn: false,
                    port: Some(8443),
                    ipv4hint: collect([ip4("192.0.2.7")]),
                    ipv6hint: collect([ip6("2001:db8::7")]),
                    ech: true,
                }],
                nxdomain: false,
            },
            SavedHttps {
                name: host("_8080._https.example.com"),
                ttl_left: 5,
                records: vec![],
                nxdomain: true,
            },
        ],
    };
    let file = saved.encode(1_800_000_000);
    let mut raw = vec![0u8];
    raw.extend_from_slice(file.as_bytes());
    // Mode 1 seals the lines itself: the records without header and end.
    let mut lines = vec![1u8];
    for l in file.lines().skip(1).filter(|l| !l.starts_with("end ")) {
        lines.extend_from_slice(l.as_bytes());
        lines.push(b'\n');
    }
    // Mode 9: read 388 s later, when the 5 s answer has expired.
    let mut later = lines.clone();
    later[0] = 9;
    vec![
        seed("history_file", "written", raw),
        seed("history_file", "sealed-lines", lines),
        seed("history_file", "sealed-lines-later", later),
    ]
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("constant address")
}

fn dns_seed(name: &str, mode: DnsMode, message: Vec<u8>) -> Seed {
    let mut bytes = vec![mode.to_byte()];
    bytes.extend(message);
    seed("dns_answer", name, bytes)
}

fn udp(qtype: QueryType) -> DnsMode {
    DnsMode {
        qtype,
        stream: false,
        spoofed: false,
        keep_id: false,
        raw_stream: false,
        chunk: usize::MAX,
    }
}

/// A hickory response to our question, for what the responder cannot
/// write (CNAME chains).
fn hickory(qtype: QueryType, records: Vec<Record>) -> Vec<u8> {
    let mut m = DnsMessage::response(0x1234, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    let qname = Name::from_ascii(format!("{DNS_NAME}.")).expect("constant name");
    m.add_query(Query::query(qname, RecordType::from(qtype.code())));
    for r in records {
        m.add_answer(r);
    }
    m.to_vec().expect("encodable constant message")
}

fn dn(text: &str) -> Name {
    Name::from_ascii(text).expect("constant name")
}

fn dns() -> Vec<Seed> {
    let q = |qtype| question(0x1234, DNS_NAME, qtype);
    let a = |list: &[&str], ttl| Answer::Addresses {
        addrs: collect(list.iter().map(|t| ip(t))),
        ttl,
    };
    let https = HttpsRecord {
        priority: 1,
        target: None,
        alpn: vec!["h2".into(), "http/1.1".into()],
        no_default_alpn: false,
        port: Some(8443),
        ipv4hint: collect([ip4("192.0.2.30")]),
        ipv6hint: collect([ip6("2001:db8::30")]),
        ech: true,
    };
    let elsewhere = HttpsRecord {
        priority: 2,
        target: Some(host("svc.example.net")),
        alpn: vec!["h3".into()],
        no_default_alpn: true,
        port: None,
        ipv4hint: collect([ip4("192.0.2.31"), ip4("192.0.2.32")]),
        ipv6hint: Default::default(),
        ech: false,
    };
    let alias = alias_only(&HttpsRecord {
        target: Some(host("alias.example.net")),
        ..https.clone()
    });
    let mut out = vec![
        dns_seed(
            "a-one",
            udp(QueryType::A),
            build_response(&q(QueryType::A), &a(&["192.0.2.1"], 300), false),
        ),
        dns_seed(
            "a-three",
            udp(QueryType::A),
            build_response(
                &q(QueryType::A),
                &a(&["192.0.2.1", "192.0.2.2", "192.0.2.3"], 60),
                false,
            ),
        ),
        dns_seed(
            "aaaa-two",
            udp(QueryType::Aaaa),
            build_response(
                &q(QueryType::Aaaa),
                &a(&["2001:db8::1", "2001:db8::2"], 120),
                false,
            ),
        ),
        dns_seed(
            "https-hints-alpn-port",
            udp(QueryType::Https),
            build_response(
                &q(QueryType::Https),
                &Answer::Https {
                    records: collect([https.clone(), elsewhere]),
                    ttl: 300,
                },
                false,
            ),
        ),
        dns_seed(
            "https-alias",
            udp(QueryType::Https),
            build_response(
                &q(QueryType::Https),
                &Answer::Https {
                    records: collect([alias]),
                    ttl: 300,
                },
                false,
            ),
        ),
        dns_seed(
            "nodata-soa",
            udp(QueryType::Aaaa),
            build_response(
                &q(QueryType::Aaaa),
                &Answer::NoData { negative_ttl: 900 },
                false,
            ),
        ),
        dns_seed(
            "nxdomain-soa",
            udp(QueryType::A),
            build_response(
                &q(QueryType::A),
                &Answer::NxDomain { negative_ttl: 3600 },
                false,
            ),
        ),
        dns_seed(
            "servfail",
            udp(QueryType::A),
            build_response(&q(QueryType::A), &Answer::ServFail, false),
        ),
        dns_seed(
            "truncated",
            udp(QueryType::A),
            build_response(&q(QueryType::A), &a(&["192.0.2.1"], 300), true),
        ),
    ];
    // CNAME chains (RFC 1034 §3.6.2), written by hickory with name
    // compression: one that resolves, one that loops, one too deep.
    let cname =
        |from: &str, to: &str| Record::from_rdata(dn(from), 60, RData::CNAME(CNAME(dn(to))));
    let a_rec = |owner: &str, v4: &str| Record::from_rdata(dn(owner), 60, RData::A(A(ip4(v4))));
    let aaaa_rec =
        |owner: &str, v6: &str| Record::from_rdata(dn(owner), 60, RData::AAAA(AAAA(ip6(v6))));
    out.push(dns_seed(
        "cname-chain-a",
        udp(QueryType::A),
        hickory(
            QueryType::A,
            vec![
                cname("www.example.com.", "a.example.net."),
                cname("a.example.net.", "b.example.org."),
                a_rec("b.example.org.", "192.0.2.7"),
                a_rec("b.example.org.", "192.0.2.8"),
            ],
        ),
    ));
    out.push(dns_seed(
        "cname-chain-aaaa",
        udp(QueryType::Aaaa),
        hickory(
            QueryType::Aaaa,
            vec![
                cname("www.example.com.", "v6.example.net."),
                aaaa_rec("v6.example.net.", "2001:db8::7"),
                aaaa_rec("unrelated.example.", "2001:db8::99"),
            ],
        ),
    ));
    out.push(dns_seed(
        "cname-loop",
        udp(QueryType::A),
        hickory(
            QueryType::A,
            vec![
                cname("www.example.com.", "a.example.net."),
                cname("a.example.net.", "www.example.com."),
            ],
        ),
    ));
    let mut deep = Vec::new();
    let mut from = "www.example.com.".to_string();
    for i in 0..=MAX_CNAME_DEPTH_SEED {
        let to = format!("hop{i}.example.net.");
        deep.push(cname(&from, &to));
        from = to;
    }
    deep.push(a_rec(&from, "192.0.2.9"));
    out.push(dns_seed(
        "cname-too-deep",
        udp(QueryType::A),
        hickory(QueryType::A, deep),
    ));
    // The same answers over TCP, framed and in small pieces.
    let tcp = DnsMode {
        stream: true,
        chunk: 7,
        ..udp(QueryType::A)
    };
    out.push(dns_seed(
        "tcp-a-chunked",
        tcp,
        build_response(
            &q(QueryType::A),
            &a(&["192.0.2.1", "192.0.2.2"], 300),
            false,
        ),
    ));
    let tcp_https = DnsMode {
        stream: true,
        chunk: 1,
        ..udp(QueryType::Https)
    };
    out.push(dns_seed(
        "tcp-https-bytewise",
        tcp_https,
        build_response(
            &q(QueryType::Https),
            &Answer::Https {
                records: collect([https]),
                ttl: 60,
            },
            false,
        ),
    ));
    out.push(dns_seed(
        "spoofed-source",
        DnsMode {
            spoofed: true,
            ..udp(QueryType::A)
        },
        build_response(&q(QueryType::A), &a(&["203.0.113.9"], 300), false),
    ));
    out
}

/// One hop more than the parser follows.
const MAX_CNAME_DEPTH_SEED: usize = taps_core::dns::MAX_CNAME_DEPTH;

fn ip4(text: &str) -> Ipv4Addr {
    text.parse().expect("constant address")
}

fn ip6(text: &str) -> Ipv6Addr {
    text.parse().expect("constant address")
}

fn endpoints() -> Vec<Seed> {
    const TEXTS: [&str; 24] = [
        "example.com:443",
        "example.com:https",
        "example.com:https=8443",
        "192.0.2.1:80%eth0",
        "[2001:db8::1]:443",
        "[fe80::1%eth0]:443",
        "2001:db8::1",
        "[192.0.2.1]:80",
        "myserver._http._tcp.local",
        "My\\.Box._http._tcp.local",
        "_http._tcp.example.com",
        "quic://example.com:8443",
        "TCP://EXAMPLE.com:80",
        "*:443",
        ":443",
        "%en0",
        "*",
        "localhost",
        "192.0.2.256",
        "example.com:65536",
        "[2001:db8::1%]:443",
        "xn--bcher-kva.example:443",
        "a-.example.com",
        "Käse._http._tcp.local",
    ];
    TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            seed(
                "endpoint_parse",
                &format!("text-{i:02}"),
                t.as_bytes().to_vec(),
            )
        })
        .collect()
}

fn framed() -> Vec<Seed> {
    let lp = |messages: &[&[u8]]| {
        let mut f = LengthPrefixed::new(1024);
        let mut out = Vec::new();
        for m in messages {
            f.encode(m, &mut out).expect("constant message fits");
        }
        out
    };
    let delimited = |d: &[u8], messages: &[&[u8]]| {
        let mut f = Delimited::new(d.to_vec(), 1024);
        let mut out = Vec::new();
        for m in messages {
            f.encode(m, &mut out).expect("constant message fits");
        }
        out
    };
    let case = |name: &str, kind: FramerKind, max: u16, chunk: u8, stream: Vec<u8>| {
        let c = FramerCase {
            kind,
            max,
            chunk,
            stream,
        };
        seed("framer", name, c.encode())
    };
    let mut claim = 5000u32.to_be_bytes().to_vec();
    claim.extend_from_slice(b"the rest never comes");
    vec![
        case(
            "length-prefixed-three",
            FramerKind::LengthPrefixed,
            1024,
            0,
            lp(&[b"hello", b"", b"a longer message of some bytes"]),
        ),
        case(
            "length-prefixed-chunked",
            FramerKind::LengthPrefixed,
            64,
            3,
            lp(&[b"one", b"two", b"three"]),
        ),
        case(
            "length-prefixed-over-limit",
            FramerKind::LengthPrefixed,
            1024,
            0,
            claim,
        ),
        case(
            "length-prefixed-partial",
            FramerKind::LengthPrefixed,
            1024,
            1,
            lp(&[b"complete", b"cut short"])[..18].to_vec(),
        ),
        case(
            "lines",
            FramerKind::Lines,
            80,
            0,
            delimited(b"\n", &[b"GET / HTTP/1.0", b"Host: x", b""]),
        ),
        case(
            "lines-chunked",
            FramerKind::Lines,
            16,
            5,
            delimited(b"\n", &[b"alpha", b"beta", b"gamma"]),
        ),
        case(
            "line-too-long",
            FramerKind::Lines,
            8,
            2,
            b"0123456789abcdef\n".to_vec(),
        ),
        case(
            "crlf",
            FramerKind::Delimited(b"\r\n".to_vec()),
            64,
            1,
            delimited(b"\r\n", &[b"a\rb", b"c\nd", b"e"]),
        ),
        case(
            "four-byte-delimiter",
            FramerKind::Delimited(b"\r\n\r\n".to_vec()),
            64,
            2,
            delimited(b"\r\n\r\n", &[b"head\r\ner", b"body"]),
        ),
    ]
}

fn tls() -> Vec<Seed> {
    // A real handshake; its ClientHello and the server's first flight
    // (ServerHello to Finished) are the raw-mode seeds.
    let Some(pair) = Pair::establish(true) else {
        violated!("a TLS handshake between two machines failed");
    };
    let client_hello = pair.sent[0].first().cloned().unwrap_or_default();
    let server_flight = pair.sent[1].first().cloned().unwrap_or_default();
    let raw = |server: bool, chunk: u8, bytes: &[u8]| {
        let mut out = vec![
            TlsMode {
                server,
                established: false,
            }
            .to_byte(),
            chunk,
        ];
        out.extend_from_slice(bytes);
        out
    };
    let ops = |server: bool, ops: &[TlsOp]| {
        let mut out = vec![
            TlsMode {
                server,
                established: true,
            }
            .to_byte(),
        ];
        out.extend(TlsOp::encode_all(ops));
        out
    };
    let mut out = vec![
        seed(
            "tls_records",
            "raw-server-client-hello",
            raw(true, 0, &client_hello),
        ),
        seed(
            "tls_records",
            "raw-server-client-hello-chunked",
            raw(true, 5, &client_hello),
        ),
        seed(
            "tls_records",
            "raw-client-server-flight",
            raw(false, 0, &server_flight),
        ),
        seed(
            "tls_records",
            "raw-client-server-flight-chunked",
            raw(false, 100, &server_flight),
        ),
    ];
    for s in &mut out {
        s.deterministic = false;
    }
    use TlsOp::*;
    out.extend([
        seed(
            "tls_records",
            "client-receives-then-peer-closes",
            ops(
                false,
                &[
                    PeerWrite(300),
                    Deliver(0xffff),
                    Receive,
                    PeerClose,
                    Deliver(0xffff),
                    Close,
                ],
            ),
        ),
        seed(
            "tls_records",
            "client-corrupted-record",
            ops(
                false,
                &[PeerWrite(64), Flip(20, 0x40), Deliver(0xffff), Receive],
            ),
        ),
        seed(
            "tls_records",
            "client-record-cut-short",
            ops(false, &[PeerWrite(64), Drop(3), Deliver(10), Eof]),
        ),
        seed(
            "tls_records",
            "server-garbage-after-handshake",
            ops(
                true,
                &[
                    Write(100),
                    Receive,
                    Inject(vec![0x17, 3, 3, 0, 2, 0xde, 0xad]),
                    Deliver(0xffff),
                ],
            ),
        ),
        seed(
            "tls_records",
            "server-peer-aborts",
            ops(true, &[Receive, PeerAbort, Deliver(0xffff), Read(100)]),
        ),
        seed(
            "tls_records",
            "server-slow-peer",
            ops(
                true,
                &[
                    PeerWrite(2000),
                    Deliver(5),
                    Tick(10),
                    Deliver(100),
                    Tick(255),
                    Read(4096),
                ],
            ),
        ),
        seed(
            "tls_records",
            "client-reads-and-writes-through-checkouts",
            ops(
                false,
                &[
                    PeerWrite(3000),
                    ReadThrough(1000),
                    ReadThrough(0xffff),
                    WriteThrough(40_000, 500),
                    WriteThrough(100, 0xffff),
                    Flip(10, 1),
                    PeerWrite(10),
                    ReadThrough(64),
                    PeerClose,
                    ReadThrough(64),
                ],
            ),
        ),
        seed(
            "tls_records",
            "server-checkout-meets-the-peers-reset",
            ops(
                true,
                &[
                    PeerWrite(100),
                    WriteThrough(2000, 0),
                    PeerAbort,
                    ReadThrough(4096),
                    WriteThrough(10, 10),
                ],
            ),
        ),
    ]);
    out
}

impl Seed {
    /// The seed as a regression input of `fuzz/artifacts/`.
    fn artifact(mut self) -> Self {
        self.dir = "artifacts";
        self
    }
}

/// `machine` seeds and regression inputs, written as scripts.
fn machine() -> Vec<Seed> {
    let s = |name: &str, f: &dyn Fn(&mut Enc)| {
        let mut e = Enc::default();
        f(&mut e);
        Seed {
            target: "machine",
            name: name.to_string(),
            bytes: e.0,
            deterministic: true,
            dir: "corpus",
        }
    };
    let lp = Some((0, 4096));
    vec![
        s("plain-framed-exchange", &|e| {
            e.default_config().connect(false, lp, None);
            e.send(P::Nth(0), (100, false, false)).flow();
            e.receive(P::Latest)
                .send(P::Latest, (50, false, false))
                .flow();
            e.receive(P::Nth(0)).close(P::Nth(0)).flow().advance(3000);
        }),
        s("tls-stream-exchange", &|e| {
            e.default_config().connect(true, None, None);
            e.write(P::Nth(0), 3000)
                .trickle(700)
                .flow()
                .read(P::Latest, 4096);
            e.write(P::Latest, 10)
                .flow()
                .read(P::Nth(0), 100)
                .close(P::Latest)
                .flow();
            e.advance(3000);
        }),
        s("plain-stream-pass-through", &|e| {
            e.default_config().connect(false, None, None);
            e.plain_through(P::Nth(0), true, 3000)
                .delegate_reading(P::Latest)
                .plain_through(P::Latest, false, 4096)
                .plain_through(P::Latest, true, 500)
                .receive(P::Latest)
                .flow();
            e.close(P::Nth(0)).flow().advance(3000);
        }),
        s("tls-stream-checked-out", &|e| {
            e.default_config().connect(true, None, None);
            e.tls_through(P::Nth(0), true, 40_000, 1000)
                .tls_through(P::Latest, false, 700, 0)
                .tls_through(P::Latest, false, 0xffff, 0)
                .flow()
                .tls_through(P::Latest, true, 10, 0xffff)
                .tls_through(P::Nth(0), false, 64, 0)
                .close(P::Latest)
                .flow()
                .tls_through(P::Nth(0), false, 64, 0);
            e.advance(3000);
        }),
        s("tls-early-data", &|e| {
            e.default_config()
                .connect(true, None, None)
                .close(P::Nth(0))
                .flow();
            e.advance(3000);
            e.connect(true, None, Some((200, true, false)))
                .flow()
                .receive(P::Latest);
            e.flow().abort(P::Latest).flow();
        }),
        s("dns-race", &|e| {
            e.default_config().initiate(2, false, None, None);
            e.dns_nodata(P::Nth(0)).dns_addrs(P::Nth(1), &[0x80, 0x81]);
            e.dns_addrs(P::Nth(2), &[0, 1])
                .advance(300)
                .connected(P::Nth(1));
            e.advance(1000).close(P::Latest).advance(2000);
        }),
        s("listener-limit-and-stop", &|e| {
            e.default_config().listen(true, Some(1));
            e.accept(P::Latest, 1).accept(P::Latest, 2).eof(P::Nth(0));
            e.stop(P::Latest).accept(P::Latest, 3).advance(11000);
        }),
        s("interfaces-change-mid-race", &|e| {
            e.config(0, [0, 1, 1, 8, 0], 250);
            e.interfaces(&[(0, true, true, true), (1, true, false, true)]);
            e.initiate(4, false, None, None).advance(100);
            e.interfaces(&[(1, true, false, true)])
                .advance(2000)
                .connected(P::Latest);
        }),
        s("backpressure", &|e| {
            e.default_config().connect(false, lp, None);
            e.bulk(P::Nth(0), (4000, false, false), 255).trickle(1000);
            e.flood(P::Latest, 60000)
                .receive(P::Latest)
                .flow()
                .advance(100);
        }),
        // Regressions (see the commits that fixed them).
        s("dead-lane-deadline-spins-timers", &|e| {
            // Sequential, a path every 15.9 s; the third path's interface
            // goes down before its lane starts.
            e.config(0, [2, 0, 0, 5, 15], 15941);
            e.interfaces(&[
                (0, true, true, true),
                (3, true, false, true),
                (1, true, false, true),
            ]);
            e.initiate(4, false, None, Some(59367));
            e.interfaces(&[
                (0, true, true, true),
                (3, true, false, true),
                (1, false, false, false),
            ]);
            e.advance(59178);
        })
        .artifact(),
        s("connection-received-after-stopped", &|e| {
            // A TLS connection is accepted, the listener stops, then the
            // handshake completes.
            e.default_config()
                .listen(true, None)
                .initiate(0, true, None, None);
            e.link(P::Latest, P::Latest).stop(P::Latest).flow();
        })
        .artifact(),
        s("dns-transaction-outlives-connection", &|e| {
            // The race times out at once; its DNS queries linger; the
            // connection is freed before they end.
            e.default_config().initiate(2, false, None, Some(0));
            e.timeout_now().close(P::Latest);
        })
        .artifact(),
    ]
}
