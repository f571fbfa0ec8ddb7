//! taps under hyper: hyper-util's legacy `Client` over [`TapsConnector`]
//! against a real hyper 1.x server on loopback (`support/hyper_server.rs`):
//! HTTP/1.1 over TCP with the connection kept alive, HTTP/2 chosen by ALPN
//! over taps' TLS with a test CA, HTTP/1.1 over TLS when the server offers
//! only that, an unknown CA refused, a refused port and bad URIs as errors
//! that say what failed. In network namespaces (root): a request whose
//! host's IPv6 is blackholed still succeeds, over IPv4.
#![allow(missing_docs)]

#[path = "support/hyper_server.rs"]
mod hyper_server;
mod support;

use std::error::Error as StdError;
use std::net::{TcpListener, UdpSocket};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{StatusCode, Uri, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use taps_tokio::connector::{ConnectError, TapsConnector, TapsInfo};
use tower_service::Service;

use hyper_server::HyperServer;
use support::TestCa;
use taps_conformance::netns::{self, SERVICE_V4, SERVICE_V6, Topology};

type HttpClient = Client<TapsConnector, Empty<Bytes>>;

fn client(connector: TapsConnector) -> HttpClient {
    Client::builder(TokioExecutor::new()).build(connector)
}

/// GETs `uri`: the status, the version, the body, and the connection's
/// info.
async fn get(client: &HttpClient, uri: &str) -> (StatusCode, Version, String, TapsInfo) {
    let response = client.get(uri.parse().unwrap()).await.unwrap();
    let (status, version) = (response.status(), response.version());
    let info = response
        .extensions()
        .get::<TapsInfo>()
        .expect("every response carries its TapsInfo")
        .clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        version,
        String::from_utf8(body.to_vec()).unwrap(),
        info,
    )
}

/// Every message in an error's chain, joined.
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(e) = next {
        text.push_str(" / ");
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_over_tcp_with_the_connection_kept_alive() {
    let server = HyperServer::http("127.0.0.1:0").await;
    let port = server.addr.port();
    let client = client(TapsConnector::new(taps_tokio::new().unwrap()).with_waterfall(true));
    // `localhost` is raced over both families: ::1 refuses, 127.0.0.1 wins.
    let (status, version, body, info) =
        get(&client, &format!("http://localhost:{port}/first")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(version, Version::HTTP_11);
    assert_eq!(body, "HTTP/1.1 /first");
    assert_eq!(info.remote_addr, server.addr);
    assert_eq!(info.alpn, None, "no TLS, no ALPN");
    let waterfall = info.waterfall.expect("asked for");
    assert!(
        waterfall.contains("127.0.0.1"),
        "the waterfall shows the winner: {waterfall}"
    );
    // hyper-util puts an HTTP/1.1 connection back in its pool from a task
    // of its own once the response is read: give it a moment, or the next
    // request may open a second connection through no fault of the stream.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, _, body, _) = get(&client, &format!("http://localhost:{port}/second")).await;
    assert_eq!(body, "HTTP/1.1 /second");
    assert_eq!(
        server.accepted(),
        1,
        "the second request went over the pooled connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_literal_in_brackets_is_the_address() {
    let server = HyperServer::http("[::1]:0").await;
    let client = client(TapsConnector::new(taps_tokio::new().unwrap()));
    let uri = format!("http://[::1]:{}/v6", server.addr.port());
    let (status, _, body, info) = get(&client, &uri).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "HTTP/1.1 /v6");
    assert_eq!(info.remote_addr, server.addr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_over_tls_when_the_server_picks_it_by_alpn() {
    let ca = TestCa::new("taps hyper test CA");
    let leaf = ca.leaf(&["localhost"]);
    let server = HyperServer::https("127.0.0.1:0", leaf.chain, leaf.key, &["h2", "http/1.1"]).await;
    let port = server.addr.port();
    let client = client(TapsConnector::new(taps_tokio::new().unwrap()).with_roots(vec![ca.root()]));
    let (status, version, body, info) = get(&client, &format!("https://localhost:{port}/h2")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(version, Version::HTTP_2, "hyper spoke HTTP/2");
    assert_eq!(body, "HTTP/2.0 /h2", "the server saw HTTP/2");
    assert_eq!(info.alpn.as_deref(), Some(&b"h2"[..]));
    // HTTP/2 multiplexes: more requests, still one connection.
    let again = futures_join(&client, port).await;
    assert!(
        again.iter().all(|b| b.starts_with("HTTP/2.0 /many")),
        "{again:?}"
    );
    assert_eq!(server.accepted(), 1);
}

/// Four requests at once on `client`, their bodies.
async fn futures_join(client: &HttpClient, port: u16) -> Vec<String> {
    let mut tasks = Vec::new();
    for i in 0..4 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            get(&client, &format!("https://localhost:{port}/many{i}"))
                .await
                .2
        }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        bodies.push(t.await.unwrap());
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_over_tls_when_the_server_offers_only_that() {
    let ca = TestCa::new("taps hyper test CA");
    let leaf = ca.leaf(&["localhost"]);
    let server = HyperServer::https("127.0.0.1:0", leaf.chain, leaf.key, &["http/1.1"]).await;
    let client = client(TapsConnector::new(taps_tokio::new().unwrap()).with_roots(vec![ca.root()]));
    let uri = format!("https://localhost:{}/one", server.addr.port());
    let (status, version, body, info) = get(&client, &uri).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(version, Version::HTTP_11);
    assert_eq!(body, "HTTP/1.1 /one");
    assert_eq!(info.alpn.as_deref(), Some(&b"http/1.1"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let ca = TestCa::new("taps hyper test CA");
    let leaf = ca.leaf(&["localhost"]);
    let server = HyperServer::https("127.0.0.1:0", leaf.chain, leaf.key, &["h2"]).await;
    let other = TestCa::new("another CA");
    let client =
        client(TapsConnector::new(taps_tokio::new().unwrap()).with_roots(vec![other.root()]));
    let uri = format!("https://127.0.0.1:{}/", server.addr.port());
    let e = client.get(uri.parse().unwrap()).await.unwrap_err();
    let text = chain(&e);
    assert!(e.is_connect(), "{text}");
    assert!(text.contains("127.0.0.1"), "names the host: {text}");
    assert!(
        text.contains("TLS: unknown issuer"),
        "says the certificate was the problem: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_port_is_an_error_naming_the_host_and_port() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = client(TapsConnector::new(taps_tokio::new().unwrap()));
    let e = client
        .get(format!("http://127.0.0.1:{port}/").parse().unwrap())
        .await
        .unwrap_err();
    assert!(e.is_connect());
    let text = chain(&e);
    assert!(
        text.contains(&format!("failed to connect to 127.0.0.1 port {port}")),
        "taps' text, naming the host and port: {text}"
    );
    assert!(text.contains("refused"), "{text}");
    // The connector's error is there to downcast, with taps' own inside.
    let source = e.source().expect("hyper-util keeps the connector's error");
    let connect = source
        .downcast_ref::<ConnectError>()
        .expect("a ConnectError");
    assert!(
        matches!(
            connect,
            ConnectError::Taps(taps_tokio::Error::Establishment(_))
        ),
        "{connect:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uris_that_are_not_http_are_refused_by_name() {
    let mut connector = TapsConnector::new(taps_tokio::new().unwrap());
    for (uri, expect) in [
        ("ftp://example.com/", "not ftp"),
        ("/just/a/path", "no scheme"),
        (
            "http://exa_mple.com/",
            "cannot connect to http://exa_mple.com/",
        ),
    ] {
        let uri: Uri = uri.parse().unwrap();
        let e = connector.call(uri.clone()).await.unwrap_err();
        assert!(matches!(e, ConnectError::Uri { .. }), "{uri}: {e:?}");
        assert!(e.to_string().contains(expect), "{uri}: {e}");
    }
}

/// In the child process of the namespace test: the URL to fetch.
const CHILD_URL: &str = "TAPS_HYPER_NETNS_URL";

/// The client side of the namespace test, run in the client namespace
/// (does nothing unless [`CHILD_URL`] is set): fetches the URL, prints
/// `remote ADDR` and `body BODY`, exits 0; or prints the error, exits 1.
#[test]
#[ignore = "needs root (the child of the namespace test)"]
fn netns_hyper_child() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let code = rt.block_on(async {
        let client = client(TapsConnector::new(taps_tokio::new().unwrap()));
        match client.get(url.parse().unwrap()).await {
            Ok(response) => {
                let info = response.extensions().get::<TapsInfo>().unwrap().clone();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                println!("remote {}", info.remote_addr);
                println!("body {}", String::from_utf8_lossy(&body));
                0
            }
            Err(e) => {
                println!("error {}", chain(&e));
                1
            }
        }
    });
    // The harness's own report must not follow.
    std::process::exit(code);
}

/// A request to a dual-stack name whose IPv6 is blackholed on every path
/// (SYNs leave and vanish) succeeds over IPv4, about one Connection Attempt
/// Delay late instead of after the kernel's SYN retries; the server's IPv6
/// socket never sees a connection.
#[test]
#[ignore = "needs root"]
fn a_request_whose_ipv6_is_blackholed_succeeds_over_ipv4() {
    if let Some(why) = netns::unmet_needs() {
        panic!("needs root and `ip` (iproute2): {why}");
    }
    let tapscat = env!("CARGO_BIN_EXE_tapscat");
    let topo = Topology::new(Box::new(move |args| {
        let mut c = Command::new(tapscat);
        c.args(args);
        c
    }));
    let (dns, probes, web) = topo.in_server(|| {
        (
            UdpSocket::bind("203.0.113.2:53").unwrap(),
            [
                TcpListener::bind((SERVICE_V4, 8080)).unwrap(),
                TcpListener::bind((SERVICE_V6, 8080)).unwrap(),
            ],
            [
                TcpListener::bind((SERVICE_V4, 8090)).unwrap(),
                TcpListener::bind((SERVICE_V6, 8090)).unwrap(),
            ],
        )
    });
    netns::dns_server(dns, Arc::new(Mutex::new(0)));
    for probe in probes {
        netns::tcp_server(probe, Arc::new(Mutex::new(Vec::new())));
    }
    // Every path works before any is made black.
    topo.settle();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let [v4, v6] = web;
    let (v4, v6) = {
        let _in = rt.enter();
        (HyperServer::http_on(v4), HyperServer::http_on(v6))
    };
    topo.blackhole("tA", "2001:db8:a::2");
    topo.blackhole("tB", "2001:db8:b::2");
    let started = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &topo.client])
        .arg(std::env::current_exe().unwrap())
        .args([
            "netns_hyper_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_URL, "http://dual.taps.test:8090/v6-black")
        .output()
        .unwrap();
    let took = started.elapsed();
    let said = netns::text(&out.stdout);
    assert!(out.status.success(), "{said}{}", netns::text(&out.stderr));
    assert!(
        said.contains(&format!("remote {SERVICE_V4}:8090")),
        "over IPv4: {said}"
    );
    assert!(said.contains("body HTTP/1.1 /v6-black"), "{said}");
    assert_eq!((v4.accepted(), v6.accepted()), (1, 0));
    assert!(
        took < Duration::from_secs(3),
        "not after the kernel's SYN retries: {took:?}"
    );
}
