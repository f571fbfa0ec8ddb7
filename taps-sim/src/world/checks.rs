//! The contracts the world checks the machines against, and the words a
//! broken one is reported in ([`RunResult::violations`]).
//!
//! Two kinds: the client machine's outputs must name what they may (no
//! `CloseSocket` or `Release` of something not open, no `OpenTcp` of a
//! socket already open) and be ones the world can perform; and, read from
//! the traces once the run is over, every connection settles once with at
//! most one winner, starts no attempt after the race settled, ends every
//! attempt, and leaves nothing open. The world performs outputs in the rest
//! of [`crate::world`] and tells this module where a contract broke; a run
//! has to keep going after one, so a violation is recorded, never a panic.
//!
//! No RFC is modelled here: these are `taps_core`'s own contracts (see
//! `taps_core::Output`), and the race's, which the traces show.
//!
//! [`RunResult::violations`]: super::RunResult::violations

use taps_core::{ConnectionId, DnsTxnId, Output, SocketId, Trace, TraceKind};

/// The broken contracts of one run, in the order they were seen.
#[derive(Default)]
pub(super) struct Violations(Vec<String>);

impl Violations {
    /// Forgets the last run's.
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// Hands them over to a finished run's result.
    pub(super) fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.0)
    }

    /// The client asked for an output the world has no model of.
    pub(super) fn unperformable(&mut self, output: &Output) {
        self.0.push(format!(
            "an output the simulator cannot perform: {output:?}"
        ));
    }

    /// A server machine asked for an output the world has no model of.
    pub(super) fn unperformable_by_server(&mut self, output: &Output) {
        self.0.push(format!(
            "a server asked for what the simulator cannot do: {output:?}"
        ));
    }

    /// `OpenTcp` named a socket whose slot is still open.
    pub(super) fn opened_twice(&mut self, socket: SocketId) {
        self.0
            .push(format!("OpenTcp of {socket:?}, which is already open"));
    }

    /// `CloseSocket` or `AbortSocket` named a socket that is not open.
    pub(super) fn closed_unopened(&mut self, socket: SocketId) {
        self.0
            .push(format!("CloseSocket of {socket:?}, which is not open"));
    }

    /// `Release` named a DNS transaction that is not open.
    pub(super) fn released_unopened(&mut self, txn: DnsTxnId) {
        self.0
            .push(format!("Release of {txn:?}, which is not open"));
    }

    /// An event named a connection the world never initiated.
    pub(super) fn unknown_connection(&mut self, conn: ConnectionId) {
        self.0.push(format!(
            "an event for {conn:?}, which the world never initiated"
        ));
    }

    /// Connection `n` (from 1) was reported ready or failed a second time.
    pub(super) fn settled_twice(&mut self, n: usize) {
        self.0.push(format!("connection {n} settled twice"));
    }

    /// Every connection settled and nothing more will happen, yet the
    /// machine still holds work: something it keeps would never be freed.
    pub(super) fn not_idle(&mut self) {
        self.0.push(
            "every connection settled and the world is silent, but the machine is not idle".into(),
        );
    }

    /// Sockets and DNS transactions still open after every connection was
    /// aborted: the machine forgot to close or release them.
    pub(super) fn leaks(&mut self, sockets: usize, txns: usize) {
        if sockets != 0 {
            self.0
                .push(format!("{sockets} socket(s) opened and never closed"));
        }
        if txns != 0 {
            self.0
                .push(format!("{txns} DNS transaction(s) never released"));
        }
    }

    /// The race's contracts, read from the settled trace of connection `n`
    /// (from 1): at most one winner, no attempt after the race settled, and
    /// every attempt ended.
    pub(super) fn check_trace(&mut self, n: usize, trace: &Trace) {
        let mut winners = 0;
        let mut settled = false;
        let mut open: Vec<u16> = Vec::new();
        for e in &trace.events {
            match e.kind {
                TraceKind::Winner { .. } => {
                    winners += 1;
                    settled = true;
                }
                TraceKind::EstablishmentFailed => settled = true,
                TraceKind::AttemptStarted { attempt, .. } => {
                    if settled {
                        self.0.push(format!(
                            "connection {n}: attempt #{attempt} started after the race settled"
                        ));
                    }
                    open.push(attempt);
                }
                TraceKind::AttemptFailed { attempt, .. }
                | TraceKind::AttemptCancelled { attempt }
                | TraceKind::AttemptConnected { attempt } => open.retain(|a| *a != attempt),
                _ => {}
            }
        }
        if winners > 1 {
            self.0.push(format!("connection {n}: {winners} winners"));
        }
        for a in open {
            self.0
                .push(format!("connection {n}: attempt #{a} never ended"));
        }
    }
}
