//! Workloads for the stack benchmarks: message round trips through the
//! length-prefixed framer between two machines in memory, and one TLS
//! establishment through the core next to a bare rustls handshake with the
//! same configurations.

use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use taps_core::{
    Config, ConnectionId, Event, Identity, Input, Instant, ListenerConfig, ListenerId, Machine,
    Message, Output, Preconnection, SecurityParameters, SocketId, framer::FramerFactory,
};
use taps_testkit::pki::TestCa;

const SERVER: &str = "192.0.2.10:443";

/// Moves every byte each side has for the other and performs the outputs
/// the two machines ask for, until both are quiet. Returns events seen.
fn shuttle(
    now: Instant,
    client: &mut Machine,
    server: &mut Machine,
    link: &mut Link,
    events: &mut Vec<(bool, Event)>,
) {
    loop {
        let mut moved = false;
        for side in [true, false] {
            let (from, to) = if side {
                (&mut *client, &mut *server)
            } else {
                (&mut *server, &mut *client)
            };
            while let Some(out) = from.poll() {
                moved = true;
                match out {
                    Output::OpenTcp { socket, .. } => link.client = Some(socket),
                    Output::Listen { listener, .. } => link.listener = Some(listener),
                    Output::Event(e) => events.push((side, e)),
                    _ => {}
                }
            }
            let (Some(a), Some(b)) = (link.client, link.server) else {
                continue;
            };
            let (src, dst) = if side { (a, b) } else { (b, a) };
            loop {
                let data = from.socket(src).transmit_data();
                if data.is_empty() {
                    break;
                }
                moved = true;
                let n = data.len().min(to.socket(dst).read_capacity());
                if n == 0 {
                    break;
                }
                // The receiving machine copies into its own buffers, so the
                // slice can be passed straight across.
                let chunk = data[..n].to_vec();
                from.handle(
                    now,
                    Input::Transmitted {
                        socket: src,
                        len: n,
                    },
                );
                to.handle(
                    now,
                    Input::SocketData {
                        socket: dst,
                        data: &chunk,
                    },
                );
            }
        }
        if !moved {
            break;
        }
    }
}

/// Accepts the client's TCP connection on `listener`, reports it connected,
/// and moves bytes until both stacks are ready; returns the server's id for
/// the connection. Shared by the message pair and the TLS benchmark.
fn complete(
    now: Instant,
    client: &mut Machine,
    server: &mut Machine,
    link: &mut Link,
    events: &mut Vec<(bool, Event)>,
) -> ConnectionId {
    let (Some(c), Some(l)) = (link.client, link.listener) else {
        panic!("no socket or listener")
    };
    link.server = Some(
        server
            .listener(l)
            .accept(now, "198.51.100.1:40000".parse().expect("literal"))
            .expect("accept"),
    );
    client.handle(now, Input::SocketConnected { socket: c });
    shuttle(now, client, server, link, events);
    let server_conn = events
        .iter()
        .find_map(|(_, e)| match e {
            Event::ConnectionReceived { conn, .. } => Some(*conn),
            _ => None,
        })
        .expect("the server received the connection");
    assert!(
        events.iter().any(|(_, e)| matches!(e, Event::Ready { .. })),
        "client ready"
    );
    server_conn
}

#[derive(Default)]
struct Link {
    client: Option<SocketId>,
    server: Option<SocketId>,
    listener: Option<ListenerId>,
}

/// Two machines with one established connection between them.
pub struct Pair {
    client: Machine,
    server: Machine,
    link: Link,
    conn: ConnectionId,
    server_conn: ConnectionId,
    events: Vec<(bool, Event)>,
    now: Instant,
}

fn connect(
    security: Option<(SecurityParameters, SecurityParameters)>,
    framer: Option<FramerFactory>,
) -> Pair {
    let mut client = Machine::new(taps_testkit::config(0));
    let mut server = Machine::new(Config {
        seed: 2,
        ..taps_testkit::config(0)
    });
    let mut link = Link::default();
    let mut events = Vec::new();
    let now = Instant::from_millis(1);
    let mut listener = ListenerConfig::on(vec![SERVER.parse().expect("literal")]);
    let mut pre = Preconnection::new(SERVER.parse().expect("literal"));
    listener.framer = framer.clone();
    pre.framer = framer;
    if let Some((c, s)) = security {
        listener.security = Some(s);
        pre.security = Some(c);
    }
    server.listen(listener).expect("listen");
    let conn = client.initiate(now, &pre).expect("initiate");
    shuttle(now, &mut client, &mut server, &mut link, &mut events);
    let server_conn = complete(now, &mut client, &mut server, &mut link, &mut events);
    events.clear();
    Pair {
        client,
        server,
        link,
        conn,
        server_conn,
        events,
        now,
    }
}

impl Pair {
    /// An established plain-TCP connection with the length-prefixed framer.
    pub fn framed() -> Self {
        connect(None, Some(FramerFactory::length_prefixed(1 << 20)))
    }

    /// Sends `count` messages of `size` bytes client → server and receives
    /// them all. Returns how many arrived.
    pub fn round(&mut self, count: usize, size: usize) -> usize {
        for i in 0..count {
            self.client
                .connection(self.conn)
                .send(self.now, Message::new(vec![0x5a; size]))
                .expect("send");
            self.server
                .connection(self.server_conn)
                .receive(self.now, 1, 1 << 20)
                .expect("receive");
            // Move bytes in batches, as an adapter does per readiness event,
            // and within the receive-request bound.
            if i % 32 == 31 {
                shuttle(
                    self.now,
                    &mut self.client,
                    &mut self.server,
                    &mut self.link,
                    &mut self.events,
                );
            }
        }
        shuttle(
            self.now,
            &mut self.client,
            &mut self.server,
            &mut self.link,
            &mut self.events,
        );
        let got = self
            .events
            .iter()
            .filter(|(side, e)| !side && matches!(e, Event::Received { .. }))
            .count();
        self.events.clear();
        got
    }
}

/// A CA and a server identity for `example.com`, made once.
pub struct Pki {
    root: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

impl Pki {
    /// Fresh keys (ECDSA P-256, rcgen's default) from the test kit's CA.
    pub fn new() -> Self {
        let ca = TestCa::new();
        let leaf = ca.leaf(&["example.com"]);
        Pki {
            root: ca.root(),
            chain: leaf.chain,
            key: leaf.key,
        }
    }

    fn client(&self) -> SecurityParameters {
        let mut p = SecurityParameters::with_roots(vec![self.root.clone()]);
        p.server_name = Some("example.com".into());
        // Resumption would make later iterations cheaper than the first.
        p.session_cache.max_sessions = 0;
        p
    }

    fn server(&self) -> SecurityParameters {
        SecurityParameters::server(Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        })
    }

    /// Two long-lived machines for repeated TLS establishments: the client
    /// caches its TLS configuration and the server keeps its listener, as a
    /// running application would.
    pub fn machines(&self) -> TlsPair {
        let mut client = Machine::new(taps_testkit::config(0));
        let mut server = Machine::new(Config {
            seed: 2,
            ..taps_testkit::config(0)
        });
        let now = Instant::from_millis(1);
        let mut listener = ListenerConfig::on(vec![SERVER.parse().expect("literal")]);
        listener.security = Some(self.server());
        let l = server.listen(listener).expect("listen");
        while server.poll().is_some() {}
        let pre = Preconnection::new(SERVER.parse().expect("literal")).with_security(self.client());
        let _ = &mut client;
        TlsPair {
            client,
            server,
            listener: l,
            pre,
            now,
        }
    }

    /// The same handshake with bare rustls connections over in-memory
    /// buffers, with configurations built the same way.
    pub fn establish_bare(
        &self,
        client: &Arc<rustls::ClientConfig>,
        server: &Arc<rustls::ServerConfig>,
    ) {
        let name = ServerName::try_from("example.com").expect("name");
        let mut c = rustls::ClientConnection::new(client.clone(), name).expect("client");
        let mut s = rustls::ServerConnection::new(server.clone()).expect("server");
        let mut buf = Vec::new();
        while c.is_handshaking() || s.is_handshaking() {
            buf.clear();
            while c.wants_write() {
                c.write_tls(&mut buf).expect("write");
            }
            if !buf.is_empty() {
                s.read_tls(&mut &buf[..]).expect("read");
                s.process_new_packets().expect("server");
            }
            buf.clear();
            while s.wants_write() {
                s.write_tls(&mut buf).expect("write");
            }
            if !buf.is_empty() {
                c.read_tls(&mut &buf[..]).expect("read");
                c.process_new_packets().expect("client");
            }
        }
    }

    /// rustls configurations equivalent to what the core builds.
    pub fn bare_configs(&self) -> (Arc<rustls::ClientConfig>, Arc<rustls::ServerConfig>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.root.clone()).expect("root");
        let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        // As in the core's configuration for this benchmark: no resumption.
        client.resumption = rustls::client::Resumption::disabled();
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .expect("cert");
        (Arc::new(client), Arc::new(server))
    }
}

/// Long-lived client and server machines for TLS establishments.
pub struct TlsPair {
    client: Machine,
    server: Machine,
    listener: ListenerId,
    pre: Preconnection,
    now: Instant,
}

impl TlsPair {
    /// One TLS establishment: initiate, TCP, TLS 1.3, Ready and
    /// ConnectionReceived; then both ends are aborted to free them.
    pub fn establish(&mut self) {
        let mut link = Link {
            listener: Some(self.listener),
            ..Link::default()
        };
        let mut events = Vec::new();
        let conn = self.client.initiate(self.now, &self.pre).expect("initiate");
        shuttle(
            self.now,
            &mut self.client,
            &mut self.server,
            &mut link,
            &mut events,
        );
        let server_conn = complete(
            self.now,
            &mut self.client,
            &mut self.server,
            &mut link,
            &mut events,
        );
        self.client.connection(conn).abort(self.now);
        self.server.connection(server_conn).abort(self.now);
        while self.client.poll().is_some() {}
        while self.server.poll().is_some() {}
    }
}
