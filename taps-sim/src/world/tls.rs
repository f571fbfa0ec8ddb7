//! Modelled TLS ([`crate::server`]): the handshake as flights of the sizes
//! a real one has, with no bytes and no crypto, carried over a flow of the
//! TCP model so delay, bandwidth and loss apply to them. What population
//! runs and the benchmarks use, because it costs nothing per connection.
//!
//! When TCP is up the client sends its ClientHello; the server answers as
//! its `accept` says (its flight `tls_time` later, a RST, a FIN, or
//! nothing), and the world reports the socket connected only when the
//! server's flight arrives, so the core sees the whole stack become ready
//! at once. A client without TLS is ready when TCP is, and only sends the
//! ACK a server that resets or closes reacts to.
//!
//! Models RFC 8446 §2: the full handshake is one round trip, the
//! ClientHello and then the server's flight (ServerHello … Finished); the
//! client's own Finished needs no answer.

use super::tcp::{Flight, FlowKey};
use super::{Ctx, Ev, World};
use crate::net::Dir;
use crate::server::{ServerReply, tls_reply};

impl World {
    /// TCP is up on a modelled connection: its TLS sends the ClientHello.
    /// Without TLS the stack is up at once, and a server that resets or
    /// closes gets the client's ACK to do it on.
    pub(super) fn tls_start(&mut self, cx: &mut Ctx<'_>, key: FlowKey, server: Option<usize>) {
        if cx.sc.connect.tls {
            self.send_flight(cx, key, Flight::ClientHello, Dir::Up, 0);
            return;
        }
        // TCP alone: the stack is up.
        self.connected(cx, key);
        let reply = server
            .and_then(|s| cx.sc.servers.get(s))
            .map(|s| tls_reply(s, false));
        if matches!(reply, Some(ServerReply::Reset | ServerReply::Close)) {
            self.send_flight(cx, key, Flight::Ack, Dir::Up, 0);
        }
    }

    /// The client's flight (its ClientHello, or the ACK of a client without
    /// TLS) reached the server: it answers as its `accept` says.
    pub(super) fn tls_flight_at_server(&mut self, cx: &mut Ctx<'_>, key: FlowKey, flight: Flight) {
        let now = self.now;
        let Some(server) = self
            .flow_mut(key)
            .and_then(|f| f.server)
            .and_then(|s| cx.sc.servers.get(s))
        else {
            return;
        };
        match tls_reply(server, flight == Flight::ClientHello) {
            ServerReply::Flight { after, .. } => {
                self.schedule(now + after, Ev::ServerSend(key, Flight::ServerHello));
            }
            ServerReply::Reset => self.send_down(cx, key, Ev::RstAtClient(key)),
            ServerReply::Close => self.send_down(cx, key, Ev::FinAtClient(key)),
            ServerReply::Silent => {}
        }
    }
}
