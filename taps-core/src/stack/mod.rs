//! The protocol stack of one attempt or one accepted connection (RFC 9623
//! §4.2, §6): TCP (as socket actions), then optional TLS, then an optional
//! framer. Every attempt owns its own instances, so handshakes run in
//! parallel and a failure in one stack never touches another.
//!
//! The stack only moves bytes between layers: `tx` holds wire bytes for the
//! adapter to write, `rx` holds decrypted bytes for the framer or the
//! application. It is *ready* when every layer is: TCP connected, TLS
//! handshake complete, framer handshake complete (HEv3 §6.1: "an attempt
//! wins only when its whole stack is ready").

pub(crate) mod framer;
pub(crate) mod tls;

use std::collections::VecDeque;

use crate::trace::{FailureReason, FramingFailure};
use framer::{Framer, Progress};
use tls::TlsSession;

/// What reaches a stack while its TLS session is checked out
/// ([`Stack::check_out_tls`]), applied in order when it comes back, so a
/// checked-out stack never mistakes itself for a plain one (which would
/// put plaintext on the wire or ciphertext in `rx`).
#[derive(Debug, Default)]
struct HeldForTls {
    /// Bytes to encrypt (a queued message pumped meanwhile).
    plaintext: Vec<u8>,
    /// Records the socket's loop read meanwhile (during a write).
    records: Vec<u8>,
    close_notify: bool,
}

/// Where the stack stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StackState {
    /// TCP is not up yet.
    Connecting,
    /// TCP is up, an upper layer is still handshaking.
    Handshaking,
    /// Every layer is ready.
    Ready,
}

pub(crate) struct Stack {
    /// Boxed: a checkout moves it out and back on every stream read or
    /// write.
    tls: Option<Box<TlsSession>>,
    /// `Some` while the TLS session is checked out.
    held: Option<HeldForTls>,
    framer: Option<Box<dyn Framer>>,
    framer_ready: bool,
    transport_up: bool,
    /// Wire bytes waiting for the adapter.
    pub(crate) tx: VecDeque<u8>,
    /// Bytes ever queued into `tx`; stream offset of its end.
    pub(crate) tx_total: u64,
    /// Plaintext received and not yet consumed.
    pub(crate) rx: VecDeque<u8>,
    /// The peer sent FIN (or TLS close_notify).
    pub(crate) peer_eof: bool,
    /// Bytes of the first message this attempt sent early (TFO or 0-RTT).
    pub(crate) early_sent: usize,
    scratch: Vec<u8>,
}

impl core::fmt::Debug for Stack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Stack")
            .field("tls", &self.tls.is_some())
            .field("framer", &self.framer.as_ref().map(|x| x.name()))
            .field("state", &self.state())
            .field("tx", &self.tx.len())
            .field("rx", &self.rx.len())
            .finish()
    }
}

impl Stack {
    pub(crate) fn new(tls: Option<TlsSession>, framer: Option<Box<dyn Framer>>) -> Self {
        Stack {
            tls: tls.map(Box::new),
            held: None,
            framer,
            framer_ready: false,
            transport_up: false,
            tx: VecDeque::new(),
            tx_total: 0,
            rx: VecDeque::new(),
            peer_eof: false,
            early_sent: 0,
            scratch: Vec::new(),
        }
    }

    pub(crate) fn state(&self) -> StackState {
        if !self.transport_up {
            StackState::Connecting
        } else if self.tls.as_deref().is_some_and(TlsSession::is_handshaking)
            || (self.framer.is_some() && !self.framer_ready)
        {
            StackState::Handshaking
        } else {
            StackState::Ready
        }
    }

    /// What this stack's TLS negotiated, once its handshake is done.
    pub(crate) fn tls_details(&self) -> Option<crate::trace::TlsDetails> {
        self.tls.as_deref().and_then(TlsSession::details)
    }

    pub(crate) fn has_framer(&self) -> bool {
        self.framer.as_ref().is_some_and(|f| !f.passthrough())
    }

    pub(crate) fn has_tls(&self) -> bool {
        self.tls.is_some() || self.held.is_some()
    }

    /// Whether the TLS session has seen the peer's close_notify.
    pub(crate) fn tls_peer_closed(&self) -> bool {
        self.tls.as_deref().is_some_and(TlsSession::peer_closed)
    }

    /// Takes the TLS session out, for stream I/O run outside the machine
    /// (`Machine::check_out_tls`); with `take_tx`, the wire bytes waiting
    /// too, which go out before any new record. Until
    /// [`Stack::check_in_tls`], what reaches the stack is held.
    pub(crate) fn check_out_tls(
        &mut self,
        take_tx: bool,
    ) -> Option<(Box<TlsSession>, VecDeque<u8>)> {
        let tls = self.tls.take()?;
        self.held = Some(HeldForTls::default());
        let tx = if take_tx {
            core::mem::take(&mut self.tx)
        } else {
            VecDeque::new()
        };
        Some((tls, tx))
    }

    /// Puts the session back: `pending` (wire bytes not written yet) goes
    /// before anything queued meanwhile, `encrypted` record bytes were made
    /// outside (written straight to the socket, or among `pending`), `unread` (ciphertext the checkout read but
    /// did not decrypt) is received before what was held; then decrypted
    /// bytes the session still holds move to `rx`.
    pub(crate) fn check_in_tls(
        &mut self,
        tls: Box<TlsSession>,
        mut pending: VecDeque<u8>,
        encrypted: u64,
        unread: &[u8],
    ) -> Result<(), FailureReason> {
        let held = self.held.take().unwrap_or_default();
        self.tls = Some(tls);
        self.tx_total += encrypted;
        pending.append(&mut self.tx);
        self.tx = pending;
        if !held.plaintext.is_empty() {
            self.write_raw(&held.plaintext);
        }
        if held.close_notify {
            self.close_notify();
        }
        if !unread.is_empty() {
            self.on_data(unread)?;
        }
        self.on_data(&held.records).map(|_| ())
    }

    /// Moves any TLS records into `tx`.
    fn flush_tls(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            let before = self.tx.len();
            tls.drain_output(&mut self.tx);
            self.tx_total += (self.tx.len() - before) as u64;
        }
    }

    /// A client stack starts its handshake before TCP is up, so the
    /// ClientHello can ride in a fast-open SYN.
    pub(crate) fn start_client(&mut self) {
        self.flush_tls();
    }

    /// TCP is up.
    pub(crate) fn on_transport_up(&mut self) -> Result<StackState, FailureReason> {
        self.transport_up = true;
        self.flush_tls();
        self.advance_framer()?;
        Ok(self.state())
    }

    /// Bytes arrived from the peer.
    pub(crate) fn on_data(&mut self, data: &[u8]) -> Result<StackState, FailureReason> {
        if let Some(held) = self.held.as_mut() {
            held.records.extend_from_slice(data);
            return Ok(self.state());
        }
        match self.tls.as_mut() {
            Some(tls) => {
                let result = tls.receive(data, &mut self.rx);
                self.flush_tls();
                result.map_err(FailureReason::Tls)?;
            }
            None => self.rx.extend(data),
        }
        self.advance_framer()?;
        Ok(self.state())
    }

    /// Runs the framer's handshake once the layers below are ready.
    fn advance_framer(&mut self) -> Result<(), FailureReason> {
        if self.framer_ready
            || !self.transport_up
            || self.tls.as_deref().is_some_and(TlsSession::is_handshaking)
        {
            return Ok(());
        }
        let Some(framer) = self.framer.as_mut() else {
            return Ok(());
        };
        let mut out = core::mem::take(&mut self.scratch);
        out.clear();
        let mut progress = framer.start(&mut out).map_err(FailureReason::Framing)?;
        while progress == Progress::Pending {
            let input = self.rx.make_contiguous();
            let (used, p) = framer
                .handshake(input, &mut out)
                .map_err(FailureReason::Framing)?;
            self.rx.drain(..used.min(self.rx.len()));
            progress = p;
            if used == 0 {
                break;
            }
        }
        self.framer_ready = progress == Progress::Ready;
        if !out.is_empty() {
            self.write_raw(&out);
        }
        self.scratch = out;
        Ok(())
    }

    /// No TLS: the wire bytes are the application's own.
    pub(crate) fn is_plain(&self) -> bool {
        !self.has_tls()
    }

    /// Writes already-framed bytes through TLS (or straight to the wire).
    pub(crate) fn write_raw(&mut self, bytes: &[u8]) {
        if let Some(held) = self.held.as_mut() {
            held.plaintext.extend_from_slice(bytes);
            return;
        }
        match self.tls.as_mut() {
            Some(tls) => {
                tls.send(bytes);
                self.flush_tls();
            }
            None => {
                self.tx.extend(bytes);
                self.tx_total += bytes.len() as u64;
            }
        }
    }

    /// Frames one message (when there is a framer) and writes it.
    pub(crate) fn write_message(&mut self, message: &[u8]) -> Result<(), FramingFailure> {
        match self.framer.as_mut().filter(|f| !f.passthrough()) {
            None => {
                self.write_raw(message);
                Ok(())
            }
            Some(framer) => {
                let mut out = core::mem::take(&mut self.scratch);
                out.clear();
                let result = framer.encode(message, &mut out);
                if result.is_ok() {
                    self.write_raw(&out);
                }
                self.scratch = out;
                result
            }
        }
    }

    /// Frames `message` into a byte string (for early data).
    pub(crate) fn frame(&mut self, message: &[u8]) -> Result<Vec<u8>, FramingFailure> {
        match self.framer.as_mut().filter(|f| !f.passthrough()) {
            None => Ok(message.to_vec()),
            Some(framer) => {
                let mut out = Vec::with_capacity(message.len() + 8);
                framer.encode(message, &mut out)?;
                Ok(out)
            }
        }
    }

    /// Sends `framed` as early data (TLS 1.3 0-RTT, or TCP Fast Open for a
    /// plain stack). Returns how much went early.
    pub(crate) fn send_early(&mut self, framed: &[u8], fast_open: bool) -> usize {
        let sent = match self.tls.as_mut() {
            Some(tls) => {
                let n = tls.send_early(framed);
                self.flush_tls();
                n
            }
            None if fast_open => {
                self.tx.extend(framed);
                self.tx_total += framed.len() as u64;
                framed.len()
            }
            None => 0,
        };
        self.early_sent = sent;
        sent
    }

    /// Whether what went early counts as delivered: always for TCP, and for
    /// TLS when the server accepted the early data.
    pub(crate) fn early_data_counted(&self) -> bool {
        match self.tls.as_ref() {
            Some(tls) => tls.early_data_accepted(),
            None => true,
        }
    }

    /// Takes the next decoded message off the front of `rx`.
    pub(crate) fn next_message(&mut self) -> Result<Option<Vec<u8>>, FramingFailure> {
        let Some(framer) = self.framer.as_mut().filter(|f| !f.passthrough()) else {
            return Ok(None);
        };
        let input = self.rx.make_contiguous();
        match framer.decode(input)? {
            framer::Decoded::NeedMore => Ok(None),
            framer::Decoded::Message {
                header,
                len,
                trailer,
            } => {
                let end = header.saturating_add(len);
                let message =
                    input
                        .get(header..end)
                        .map(<[u8]>::to_vec)
                        .ok_or(FramingFailure::Malformed(
                            "the framer pointed outside the buffered bytes",
                        ))?;
                self.rx
                    .drain(..end.saturating_add(trailer).min(self.rx.len()));
                Ok(Some(message))
            }
        }
    }

    /// Starts an orderly close of the upper layers (TLS close_notify).
    pub(crate) fn close_notify(&mut self) {
        if let Some(held) = self.held.as_mut() {
            held.close_notify = true;
            return;
        }
        if let Some(tls) = self.tls.as_mut() {
            tls.close_notify();
            self.flush_tls();
        }
    }

    /// The negotiated ALPN protocol, if TLS negotiated one.
    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        self.tls.as_deref().and_then(TlsSession::alpn)
    }

    /// Whether TLS resumed a session.
    pub(crate) fn resumed(&self) -> bool {
        self.tls.as_deref().is_some_and(TlsSession::resumed)
    }
}
