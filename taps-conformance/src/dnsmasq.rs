//! Name resolution against a real resolver: dnsmasq on a loopback high
//! port, configured by the test, asked through the adapter with real
//! sockets. It checks what the core's table tests check in virtual time,
//! against another implementation's answers: the resolv.conf(5) search
//! list and `ndots`, the TLS name of a search-expanded connection, an HTTPS
//! AliasMode chain and its ALPN (RFC 9460 §3, §7.1), an alias loop, and a
//! plain connection that an HTTPS record must not move (RFC 9460 §9.5).
//!
//! Needs the `dnsmasq` binary (Debian `dnsmasq-base`); no root.

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use taps_core::dns::{DnsConfig, QueryType, encode_query};
use taps_core::race::RaceFailure;
use taps_core::{Config, HostName, ListenerConfig, SecurityParameters, TraceKind};
use taps_io::{Error, Preconnection};

use crate::Shim;
use crate::cases::echo_listener;
use crate::support::{TestCa, raw_server, within, write_quietly};

/// A dnsmasq process serving one configuration; killed when dropped.
struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    conf: PathBuf,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.conf);
    }
}

fn dnsmasq_binary() -> PathBuf {
    ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("this test needs dnsmasq (Debian: apt-get install dnsmasq-base)"))
}

impl Dnsmasq {
    /// Starts dnsmasq on a free loopback port with `lines` after the
    /// settings that make it answer only from its configuration.
    fn start(lines: &[String]) -> Dnsmasq {
        let binary = dnsmasq_binary();
        for _ in 0..20 {
            // A port free for both UDP and TCP, released just before
            // dnsmasq binds it; another process may take it in between, so
            // a failed start tries another.
            let Some(port) = (0..100).find_map(|_| {
                let udp = UdpSocket::bind("127.0.0.1:0").ok()?;
                let port = udp.local_addr().ok()?.port();
                TcpListener::bind(("127.0.0.1", port)).ok()?;
                Some(port)
            }) else {
                continue;
            };
            let conf = std::env::temp_dir()
                .join(format!("taps-dnsmasq-{}-{port}.conf", std::process::id()));
            let mut text = format!(
                "no-resolv\nno-hosts\nport={port}\nlisten-address=127.0.0.1\nbind-interfaces\n\
                 local=/test/\n"
            );
            for line in lines {
                text.push_str(line);
                text.push('\n');
            }
            fs::write(&conf, text).unwrap();
            let child = Command::new(&binary)
                .arg("--keep-in-foreground")
                .arg(format!("--conf-file={}", conf.display()))
                .arg("--pid-file=")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
            let mut server = Dnsmasq {
                child,
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                conf,
            };
            if server.wait_ready() {
                return server;
            }
        }
        panic!("dnsmasq did not start on any free port");
    }

    /// Whether dnsmasq answers a query within 10 s; `false` when it exited
    /// (its port was taken), a panic with its words on anything else.
    fn wait_ready(&mut self) -> bool {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut query = Vec::new();
        encode_query(
            0x7a9c,
            &HostName::new("probe.test").unwrap(),
            QueryType::A,
            &mut query,
        );
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut said = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut said);
                }
                if said.contains("in use") {
                    return false;
                }
                panic!("dnsmasq exited ({status}): {said}");
            }
            let _ = probe.send_to(&query, self.addr);
            let mut buf = [0u8; 512];
            if probe.recv_from(&mut buf).is_ok() {
                return true;
            }
        }
        panic!("dnsmasq did not answer on {} within 10 s", self.addr);
    }
}

/// RFC 9460 §2.2 RDATA as dnsmasq's `--dns-rr` takes it: colon-separated
/// hex of SvcPriority, TargetName ("" is "."), and the SvcParams in key
/// order.
fn svcb_rdata(priority: u16, target: &str, params: &[(u16, Vec<u8>)]) -> String {
    let mut rdata = priority.to_be_bytes().to_vec();
    for label in target.split('.').filter(|l| !l.is_empty()) {
        rdata.push(label.len() as u8);
        rdata.extend_from_slice(label.as_bytes());
    }
    rdata.push(0);
    for (key, value) in params {
        rdata.extend_from_slice(&key.to_be_bytes());
        rdata.extend_from_slice(&(value.len() as u16).to_be_bytes());
        rdata.extend_from_slice(value);
    }
    rdata
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `alpn` (key 1): length-prefixed ids (RFC 9460 §7.1).
fn alpn(ids: &[&str]) -> (u16, Vec<u8>) {
    let mut v = Vec::new();
    for id in ids {
        v.push(id.len() as u8);
        v.extend_from_slice(id.as_bytes());
    }
    (1, v)
}

/// `no-default-alpn` (key 2).
fn no_default_alpn() -> (u16, Vec<u8>) {
    (2, Vec::new())
}

/// `port` (key 3).
fn port(p: u16) -> (u16, Vec<u8>) {
    (3, p.to_be_bytes().to_vec())
}

fn https_rr(owner: &str, rdata: String) -> String {
    format!("dns-rr={owner},65,{rdata}")
}

/// The whole scenario; one dnsmasq, one `Taps` whose resolv.conf says
/// `search corp.test` (`ndots` 1).
pub fn resolving_through_dnsmasq<S: Shim>() {
    S::block_on(async {
        let ca = TestCa::new("taps resolver CA");
        let base = taps_io::Taps::system_config().unwrap();
        let listener_taps = S::taps(base.clone()).unwrap();
        // A TLS echo server whose certificate names what the application
        // types (`intranet`, `svc.test`, `loop.test`), preferring
        // http/1.1 over h2 (rustls servers choose by their own order).
        let names = ["intranet", "svc.test", "loop.test"];
        let good = echo_listener::<S>(
            &listener_taps,
            ListenerConfig::on(vec!["127.0.0.1:0".parse().unwrap()]).with_security(
                SecurityParameters::server(ca.leaf(&names)).alpn(["http/1.1", "h2"]),
            ),
        )
        .await;
        // One whose certificate names only the search-expanded name.
        let expanded_only = echo_listener::<S>(
            &listener_taps,
            ListenerConfig::on(vec!["127.0.0.1:0".parse().unwrap()])
                .with_security(SecurityParameters::server(ca.leaf(&["intranet.corp.test"]))),
        )
        .await;
        let plain = raw_server("127.0.0.1:0", |mut s| write_quietly(&mut s, b"plain"));
        let moved = raw_server("127.0.0.1:0", |mut s| write_quietly(&mut s, b"moved"));
        let (g, p, m) = (good.port(), plain.port(), moved.port());
        let dns = Dnsmasq::start(&[
            "host-record=intranet.corp.test,127.0.0.1".into(),
            "host-record=end.test,127.0.0.1".into(),
            "host-record=loop.test,127.0.0.1".into(),
            "host-record=plain.test,127.0.0.1".into(),
            "host-record=far.test,127.0.0.1".into(),
            // svc.test has no address: an AliasMode chain of two hops
            // leads to end.test, whose ServiceMode record offers h2 only.
            https_rr(
                &format!("_{g}._https.svc.test"),
                svcb_rdata(0, "hop.test", &[]),
            ),
            https_rr("hop.test", svcb_rdata(0, "end.test", &[])),
            https_rr(
                "end.test",
                svcb_rdata(1, "", &[alpn(&["h2"]), no_default_alpn(), port(g)]),
            ),
            // loop.test's chain loops back to where it started.
            https_rr(
                &format!("_{g}._https.loop.test"),
                svcb_rdata(0, "back.test", &[]),
            ),
            https_rr(
                "back.test",
                svcb_rdata(0, &format!("_{g}._https.loop.test"), &[]),
            ),
            // plain.test's record would move a TLS connection to the
            // `moved` server (far.test, its port).
            https_rr(
                &format!("_{p}._https.plain.test"),
                svcb_rdata(1, "far.test", &[port(m)]),
            ),
        ]);
        let mut config: Config = base;
        config.hosts = Default::default();
        config.dns = DnsConfig {
            servers: vec![dns.addr],
            search: vec![HostName::new("corp.test").unwrap()],
            ndots: 1,
            ..DnsConfig::default()
        };
        let taps = S::taps(config).unwrap();
        let roots = || SecurityParameters::with_roots(vec![ca.root()]);
        let limit = Duration::from_secs(20);
        let connect = |pre: Preconnection| {
            let taps = taps.clone();
            async move {
                within::<S, _>(limit, pre.initiate(&taps))
                    .await
                    .expect("settles in 20 s")
            }
        };

        // resolv.conf(5): "intranet" has fewer dots than ndots, so
        // intranet.corp.test is asked first, and answers; TLS verifies the
        // name typed.
        let pre = Preconnection::parse(&format!("intranet:{g}"))
            .unwrap()
            .with_security(roots());
        let mut conn = connect(pre).await.expect("intranet via the search list");
        assert_eq!(conn.remote_addr(), good);
        let waterfall = conn.waterfall().unwrap();
        assert!(
            waterfall.contains("asking about intranet.corp.test (search list, name 1 of 2)"),
            "{waterfall}"
        );
        S::write_all(&mut conn, b"hi").await.unwrap();
        let mut back = [0u8; 2];
        S::read_exact(&mut conn, &mut back).await.unwrap();
        assert_eq!(&back, b"hi");
        conn.close().await.unwrap();

        // The certificate of the search-expanded name does not do: the
        // application asked for `intranet`.
        let pre = Preconnection::parse(&format!("intranet:{}", expanded_only.port()))
            .unwrap()
            .with_security(roots());
        match connect(pre).await {
            Err(Error::Establishment(f)) => {
                let text = f.error.to_string();
                assert!(text.contains("not `intranet`"), "{text}");
            }
            other => panic!("the expanded name's certificate was accepted: {other:?}"),
        }

        // A trailing dot is absolute: no search, and `intranet.` alone does
        // not exist.
        let pre = Preconnection::parse(&format!("intranet.:{g}"))
            .unwrap()
            .with_security(roots());
        match connect(pre).await {
            Err(Error::Establishment(f)) => {
                assert_eq!(f.error.reason, RaceFailure::NoAddresses, "{}", f.error);
                let searched = f
                    .trace
                    .events
                    .iter()
                    .any(|e| matches!(e.kind, TraceKind::DnsName { .. }));
                assert!(!searched, "{}", f.trace);
            }
            other => panic!("an absolute name was searched: {other:?}"),
        }

        // RFC 9460 §3: svc.test → hop.test → end.test, whose ServiceMode
        // record says h2 only; the attempt offers the intersection with
        // the application's [http/1.1, h2], so the server, which prefers
        // http/1.1, must choose h2.
        let pre = Preconnection::parse(&format!("svc.test:{g}"))
            .unwrap()
            .with_security(roots().alpn(["http/1.1", "h2"]));
        let conn = connect(pre)
            .await
            .expect("svc.test through its alias chain");
        assert_eq!(conn.remote_addr(), good);
        assert_eq!(conn.alpn().as_deref(), Some(&b"h2"[..]));
        let waterfall = conn.waterfall().unwrap();
        assert!(
            waterfall.contains("HTTPS AliasMode hop 2: asking about end.test"),
            "{waterfall}"
        );
        conn.close().await.unwrap();

        // A looping chain fails the HTTPS question only: loop.test's own
        // address still connects, with the application's ALPN preference.
        let pre = Preconnection::parse(&format!("loop.test:{g}"))
            .unwrap()
            .with_security(roots().alpn(["http/1.1", "h2"]));
        let conn = connect(pre).await.expect("loop.test by its address");
        assert_eq!(conn.alpn().as_deref(), Some(&b"http/1.1"[..]));
        let waterfall = conn.waterfall().unwrap();
        assert!(
            waterfall.contains("HTTPS AliasMode chain loops"),
            "{waterfall}"
        );
        conn.close().await.unwrap();

        // RFC 9460 §9.5: without TLS the record does not move the
        // connection to far.test and the `moved` server's port.
        let pre = Preconnection::parse(&format!("plain.test:{p}")).unwrap();
        let mut conn = connect(pre).await.expect("plain.test on its own port");
        assert_eq!(conn.remote_addr(), plain);
        let mut said = [0u8; 5];
        S::read_exact(&mut conn, &mut said).await.unwrap();
        assert_eq!(&said, b"plain");
        drop(dns);
    });
}
