//! Real TLS in the simulated world: the server hosts of `tls = "real"`
//! (server-side `taps_core` machines) and the byte streams that join them
//! to the client's attempts.
//!
//! When a scenario [runs real TLS](crate::Scenario::real_tls), the world
//! carries the very bytes the two machines write, in both directions, over
//! the same links, fates and retransmission timers as the modelled flights
//! (see [`crate::world`]): each write is sent as MSS-sized segments and is
//! resent whole after the RTO when a segment is lost. A [`Pipe`] per
//! direction numbers the writes and hands them to the reader in order, the
//! way TCP's reassembly does, so jitter or a retransmission never reorders
//! bytes; a FIN travels in the same order, after the last byte.
//!
//! Determinism: the client and every server host get their own
//! [`taps_testkit::tls::seeded`] (seeded randomness, X25519 from seeded
//! secrets, the fixed clock [`TLS_CLOCK_UNIX`]), and certificates come from
//! [`Pki`], so every TLS byte repeats from the run's seed.

use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use taps_core::{
    Config, Instant, ListenerConfig, ListenerId, Machine, SecurityParameters, SocketId,
    TlsEnvironment,
};

use crate::pki::{Pki, PkiError, TLS_CLOCK_UNIX};
use crate::scenario::{Accept, Scenario, ServerTls};

/// Largest piece of bytes handed to a machine in one `SocketData`, as one
/// socket read would return.
pub const READ_CHUNK: usize = 16 * 1024;

/// One direction of a TCP connection carrying real bytes: writes numbered
/// in sending order, reassembled in that order at the receiver.
#[derive(Debug, Default)]
pub struct Pipe {
    next_seq: u32,
    expect: u32,
    /// Writes that arrived ahead of an earlier one still being resent
    /// (`None`: the FIN).
    early: Vec<(u32, Option<Rc<[u8]>>)>,
    /// Bytes delivered in order that the reader has not taken yet (its read
    /// capacity was smaller).
    pub inbox: VecDeque<u8>,
    /// The FIN arrived; the reader sees end of stream once `inbox` is empty.
    pub eof: bool,
    /// The sender's FIN is on its way: nothing more is sent.
    pub fin_sent: bool,
}

impl Pipe {
    /// The sequence number of the next write.
    pub fn next_seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    /// Write `seq` arrived: moves it, and any later writes it unblocks, to
    /// the inbox (or marks the end of stream).
    pub fn arrive(&mut self, seq: u32, data: Option<Rc<[u8]>>) {
        if seq != self.expect {
            self.early.push((seq, data));
            return;
        }
        let mut item = Some(data);
        while let Some(data) = item.take() {
            self.expect = self.expect.wrapping_add(1);
            match data {
                Some(bytes) => self.inbox.extend(bytes.iter()),
                None => self.eof = true,
            }
            if let Some(i) = self.early.iter().position(|(s, _)| *s == self.expect) {
                item = Some(self.early.swap_remove(i).1);
            }
        }
    }
}

/// A TCP connection of the client's that carries real bytes.
#[derive(Debug, Default)]
pub struct Wire {
    /// The server host (machine) behind the remote address, if the server
    /// there runs real TLS and accepts.
    pub host: Option<usize>,
    /// The connection's socket at the server machine, once accepted.
    pub server_sock: Option<SocketId>,
    /// Client to server.
    pub up: Pipe,
    /// Server to client.
    pub down: Pipe,
    /// A server without a machine (reset, close, stalls, plaintext) has
    /// reacted to the client's first bytes.
    pub answered: bool,
    /// Bytes of the first write each way (ClientHello, the server's first
    /// flight), for the oracle.
    pub first: [Option<u32>; 2],
}

/// One simulated server host with `tls = "real"`: its machine, listening on
/// every address of its `[[server]]` entry.
pub struct Host {
    /// The server-side machine.
    pub machine: Machine,
    /// Its listener over the entry's `listen` addresses.
    pub listener: ListenerId,
    /// Index of its `[[server]]` entry.
    pub server: usize,
    /// Extra processing time (`tls_time`): the machine reads each of the
    /// client's writes this long after it arrives.
    pub delay: Duration,
    /// The client's socket for each of the machine's sockets.
    pub clients: HashMap<SocketId, SocketId>,
}

/// Everything a run with real TLS needs beyond the modelled world.
pub struct RealTls {
    /// The server hosts, in `[[server]]` order.
    pub hosts: Vec<Host>,
    /// For each `[[server]]` entry, its host (real TLS and `accept = "ok"`).
    pub by_server: Vec<Option<usize>>,
    /// The client's TLS environment.
    pub client_env: TlsEnvironment,
    /// The client's security parameters: the scenario CA, `connect.alpn`.
    pub security: SecurityParameters,
}

impl core::fmt::Debug for RealTls {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RealTls")
            .field("hosts", &self.hosts.len())
            .finish_non_exhaustive()
    }
}

/// Seeds the TLS environments apart from each other and from the machine.
const ENV_SALT: u64 = 0x544c_535f_454e_5630;

impl RealTls {
    /// The certificates, server machines and client parameters of a run of
    /// `sc` with `seed`. Servers that reset, close or stall never read a
    /// byte, so only `accept = "ok"` servers get a machine.
    pub fn new(sc: &Scenario, seed: u64) -> Result<RealTls, PkiError> {
        let mut pki = Pki::new(seed)?;
        let mut hosts = Vec::new();
        let mut by_server = Vec::with_capacity(sc.servers.len());
        for (i, s) in sc.servers.iter().enumerate() {
            if s.tls != ServerTls::Real || s.accept != Accept::Ok {
                by_server.push(None);
                continue;
            }
            let identity = pki.leaf(&sc.certificate_names(s), s.cert)?;
            let host_seed = seed ^ ENV_SALT ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut machine = Machine::new(Config {
                tls: Some(taps_testkit::tls::seeded(host_seed, TLS_CLOCK_UNIX)),
                ..Config::new(host_seed)
            });
            let security =
                SecurityParameters::server(identity).alpn(sc.connect.alpn.iter().cloned());
            let listener = machine
                .listen(ListenerConfig::on(s.listen.clone()).with_security(security))
                .map_err(|e| PkiError(format!("server[{i}]: {e}")))?;
            // The world knows where each server listens: the `Listen`
            // outputs need no sockets.
            while machine.poll().is_some() {}
            by_server.push(Some(hosts.len()));
            hosts.push(Host {
                machine,
                listener,
                server: i,
                delay: s.tls_time,
                clients: HashMap::new(),
            });
        }
        Ok(RealTls {
            hosts,
            by_server,
            client_env: taps_testkit::tls::seeded(seed ^ ENV_SALT, TLS_CLOCK_UNIX),
            security: SecurityParameters::with_roots(vec![pki.root()])
                .alpn(sc.connect.alpn.iter().cloned()),
        })
    }

    /// The earliest timer of any server machine, and whose (the first host
    /// among equals).
    pub fn next_timer(&self) -> Option<(Instant, usize)> {
        self.hosts
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.machine.poll_timeout().map(|t| (t, i)))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_deliver_in_order_whatever_the_arrival_order() {
        let mut p = Pipe::default();
        let (a, b, c) = (p.next_seq(), p.next_seq(), p.next_seq());
        p.arrive(c, None);
        p.arrive(b, Some(Rc::from(&b"world"[..])));
        assert!(p.inbox.is_empty() && !p.eof, "write 0 is still missing");
        p.arrive(a, Some(Rc::from(&b"hello "[..])));
        assert_eq!(p.inbox.iter().copied().collect::<Vec<u8>>(), b"hello world");
        assert!(p.eof, "the FIN comes after the last byte");
    }
}
