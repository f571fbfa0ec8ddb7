//! DNS between the client machine and the scenario's resolvers: queries
//! over UDP, and over TCP on a flow of the TCP model (`tcp.rs`), answered
//! by the [`Responder`] with real messages after the delay its plan says,
//! plus forged answers just before the real one when the scenario asks for
//! them. A datagram that cannot leave, or that a rejecting link answers,
//! fails the transaction at once, as an ICMP unreachable would.
//!
//! Models RFC 1035 §4.2.1 (over UDP, a query and its answer are one
//! datagram each), §4.2.2 with RFC 7766 §8 (over TCP, each message behind
//! its two-byte length), and the forgeries RFC 5452 §9.1 has the client
//! ignore (an answer with the wrong id, or from the wrong source).
//!
//! [`Responder`]: crate::server::Responder

use std::net::SocketAddr;
use std::rc::Rc;

use taps_core::{
    DnsTxnId, Input,
    dns::{DnsSend, DnsTransport},
};

use super::tcp::{Flight, Flow, FlowKey, FlowState};
use super::{Ctx, Ev, World};
use crate::net::{Dir, Fate, MSS, UDP_OVERHEAD};
use crate::scenario::Forgery;
use crate::server::{DnsReply, GARBAGE, Plan};

/// The DNS transaction a TCP flow carries.
#[derive(Debug)]
pub(super) struct DnsFlow {
    txn: DnsTxnId,
    /// The query's id, which the answer is sent back with.
    id: u16,
    /// Bytes of the query on the stream, length included.
    pub(super) query_len: u32,
    /// What the resolver answers.
    plan: Plan,
}

impl DnsFlow {
    /// Bytes of the answer on the stream: the message behind its two-byte
    /// length.
    pub(super) fn reply_bytes(&self) -> u32 {
        match &self.plan.reply {
            DnsReply::Message(m) => m.len() as u32 + 2,
            DnsReply::Garbage => GARBAGE.len() as u32 + 2,
            DnsReply::Silent => 0,
        }
    }
}

/// A DNS transaction over UDP.
#[derive(Debug)]
pub(super) struct UdpTxn {
    server: SocketAddr,
    interface: u32,
    id: u16,
    plan: Plan,
}

impl World {
    /// The machine sends a query: over UDP, a datagram to the resolver; over
    /// TCP, a new flow whose first flight is the query.
    pub(super) fn dns_send(&mut self, cx: &mut Ctx<'_>, send: DnsSend) {
        let DnsSend {
            txn,
            server,
            transport,
            payload,
        } = send;
        let route = self.net.route(server.ip(), None);
        match transport {
            DnsTransport::Udp => {
                let id = query_id(&payload);
                let plan = self.responder.plan(&cx.sc.dns, &payload, false);
                self.udp.insert(
                    txn.to_raw(),
                    UdpTxn {
                        server,
                        interface: route.unwrap_or(0),
                        id,
                        plan,
                    },
                );
                let Some(interface) = route else {
                    self.schedule(self.now, Ev::UdpUnreachable(txn));
                    return;
                };
                let bytes = payload.len() as u32 + UDP_OVERHEAD;
                match self.net.transmit(
                    self.now,
                    interface,
                    server.ip(),
                    Dir::Up,
                    bytes,
                    &mut cx.rng,
                ) {
                    Fate::Arrive(at) => self.schedule(at, Ev::UdpAtServer(txn)),
                    Fate::Lost => {}
                    Fate::Rejected(at) => self.schedule(at, Ev::UdpUnreachable(txn)),
                }
            }
            DnsTransport::Tcp => {
                let message = payload.get(2..).unwrap_or_default();
                let id = query_id(message);
                let plan = self.responder.plan(&cx.sc.dns, message, true);
                let key = FlowKey::Dns(txn);
                let dns = DnsFlow {
                    txn,
                    id,
                    query_len: payload.len() as u32,
                    plan,
                };
                let flow = Flow::new(self.now, route.unwrap_or(0), server, None, Some(dns), None);
                self.dns_tcp.insert(txn.to_raw(), flow);
                self.connect(cx, key, route);
            }
        }
    }

    /// The machine is done with `txn`: whichever transport carried it
    /// forgets it.
    pub(super) fn dns_release(&mut self, txn: DnsTxnId) {
        // A release of something never sent is the contract checker's to
        // report; the world only frees what it holds.
        self.udp.remove(txn.to_raw());
        self.dns_tcp.remove(txn.to_raw());
    }

    /// A query reached the resolver: it answers after the plan's delay,
    /// unless it stays silent.
    pub(super) fn udp_at_server(&mut self, txn: DnsTxnId) {
        let now = self.now;
        let Some(t) = self.udp.get_mut(txn.to_raw()) else {
            return;
        };
        match t.plan.reply {
            DnsReply::Silent => {}
            _ => {
                let at = now + t.plan.delay;
                self.schedule(at, Ev::UdpReplySend(txn));
            }
        }
    }

    /// The resolver sends its answer (or garbage) back; the scenario's
    /// forgeries, if any, go just before it.
    pub(super) fn udp_reply(&mut self, cx: &mut Ctx<'_>, txn: DnsTxnId) {
        let now = self.now;
        let Some(t) = self.udp.get_mut(txn.to_raw()) else {
            return;
        };
        let (server, interface, id) = (t.server, t.interface, t.id);
        let (bytes, size) = match &t.plan.reply {
            DnsReply::Silent => return,
            DnsReply::Message(m) => (Some(m.clone()), m.len()),
            DnsReply::Garbage => (None, GARBAGE.len()),
        };
        let records = t.plan.records;
        let size = size as u32 + UDP_OVERHEAD;
        let Fate::Arrive(at) =
            self.net
                .transmit(now, interface, server.ip(), Dir::Down, size, &mut cx.rng)
        else {
            return;
        };
        let forge = records
            .and_then(|r| cx.sc.dns.records.get(r))
            .map(|r| r.forge.as_slice())
            .unwrap_or_default();
        if let Some(b) = &bytes {
            for f in forge {
                let ev = match f {
                    Forgery::WrongId => Ev::UdpAtClient {
                        txn,
                        forged_source: false,
                        bytes: Some(b.clone()),
                        id: id.wrapping_add(1),
                    },
                    Forgery::WrongSource => Ev::UdpAtClient {
                        txn,
                        forged_source: true,
                        bytes: Some(b.clone()),
                        id,
                    },
                };
                self.schedule(at, ev);
            }
        }
        self.schedule(
            at,
            Ev::UdpAtClient {
                txn,
                forged_source: false,
                bytes,
                id,
            },
        );
    }

    /// A datagram reached the client: the answer (with `id` patched in) or
    /// garbage, from the resolver or, forged, from another port of it.
    pub(super) fn udp_at_client(
        &mut self,
        cx: &mut Ctx<'_>,
        txn: DnsTxnId,
        forged_source: bool,
        bytes: Option<Rc<[u8]>>,
        id: u16,
    ) {
        let now = self.now;
        let Some(t) = self.udp.get(txn.to_raw()) else {
            return;
        };
        let from = if forged_source {
            SocketAddr::new(t.server.ip(), 5353)
        } else {
            t.server
        };
        self.scratch.clear();
        match &bytes {
            Some(b) => {
                self.scratch.extend_from_slice(b);
                if self.scratch.len() >= 2 {
                    self.scratch[..2].copy_from_slice(&id.to_be_bytes());
                }
            }
            None => self.scratch.extend_from_slice(GARBAGE),
        }
        let payload = std::mem::take(&mut self.scratch);
        cx.machine.handle(
            now,
            Input::DnsDatagram {
                txn,
                from,
                payload: &payload,
            },
        );
        self.scratch = payload;
        self.drain(cx);
    }

    /// The query could not leave or was rejected (ICMP unreachable): the
    /// transaction fails at once rather than timing out.
    pub(super) fn udp_unreachable(&mut self, cx: &mut Ctx<'_>, txn: DnsTxnId) {
        if self.udp.contains(txn.to_raw()) {
            cx.machine
                .handle(self.now, Input::DnsTransportFailed { txn });
            self.drain(cx);
        }
    }

    /// A query reached the resolver over TCP: it answers after the plan's
    /// delay, unless it stays silent.
    pub(super) fn dns_query_at_server(&mut self, key: FlowKey, flight: Flight) {
        let now = self.now;
        let Some(d) = self.flow_mut(key).and_then(|f| f.dns.as_ref()) else {
            return;
        };
        let answer = (flight == Flight::DnsQuery && d.plan.reply != DnsReply::Silent)
            .then_some(d.plan.delay);
        if let Some(delay) = answer {
            self.schedule(now + delay, Ev::ServerSend(key, Flight::DnsReply));
        }
    }

    /// The resolver's answer reached the client over TCP: the transaction
    /// reads it, framed, with its own id patched in.
    pub(super) fn dns_reply_at_client(&mut self, cx: &mut Ctx<'_>, key: FlowKey) {
        let now = self.now;
        let Some(f) = self.flow_mut(key) else { return };
        let Some(d) = &f.dns else { return };
        let (txn, id, reply) = (d.txn, d.id, d.plan.reply.clone());
        f.state = FlowState::Done;
        let mut data = std::mem::take(&mut self.scratch);
        data.clear();
        match &reply {
            DnsReply::Message(m) => {
                data.extend_from_slice(&(m.len() as u16).to_be_bytes());
                data.extend_from_slice(m);
                if data.len() >= 4 {
                    data[2..4].copy_from_slice(&id.to_be_bytes());
                }
            }
            DnsReply::Garbage => {
                data.extend_from_slice(&(GARBAGE.len() as u16).to_be_bytes());
                data.extend_from_slice(GARBAGE);
            }
            DnsReply::Silent => {}
        }
        // Deliver segment by segment, as a socket read would.
        for chunk in data.chunks(MSS as usize) {
            cx.machine
                .handle(now, Input::DnsStreamData { txn, data: chunk });
            self.drain(cx);
        }
        self.scratch = data;
    }
}

/// The id of a DNS message (its first two bytes; 0 if it is shorter).
fn query_id(message: &[u8]) -> u16 {
    message
        .get(..2)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
}
