//! The contracts the world checks the machines against, and the words a
//! broken one is reported in ([`RunResult::violations`]).
//!
//! Two kinds: the client machine's outputs must keep the core's output
//! contract (handles, one winner, RFC 9622 event order) as the test kit's
//! one [`Checker`] states it, and be ones the world can perform; and, read
//! from the traces once the run is over, every connection starts no attempt
//! after the race settled, ends every attempt, and leaves nothing open. The
//! world performs outputs in the rest of [`crate::world`] and tells this
//! module what it saw; a run has to keep going after a broken contract, so
//! a violation is recorded, never a panic.
//!
//! No RFC is modelled here: these are `taps_core`'s own contracts (see
//! `taps_core::Output`), and the race's, which the traces show.
//!
//! [`RunResult::violations`]: super::RunResult::violations

use taps_core::{ConnectionId, Output, SocketId, Trace, TraceKind};
use taps_testkit::contract::Checker;

/// The broken contracts of one run, in the order they were seen: the
/// output contract's, found by a recording [`Checker`], and the world's
/// own, reported into the same list.
pub(super) struct Violations(Checker);

impl Default for Violations {
    fn default() -> Self {
        Violations(Checker::recording())
    }
}

impl Violations {
    /// Forgets the last run's, and every handle it saw.
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// Hands them over to a finished run's result.
    pub(super) fn take(&mut self) -> Vec<String> {
        self.0.take_violations()
    }

    /// The client's `initiate` returned `conn`.
    pub(super) fn initiated(&mut self, conn: ConnectionId) {
        self.0.initiated(conn);
    }

    /// The client machine's next output, before the world performs it.
    pub(super) fn output(&mut self, output: &Output) {
        self.0.output(output);
    }

    /// The client asked for an output the world has no model of.
    pub(super) fn unperformable(&mut self, output: &Output) {
        self.0.report(format_args!(
            "an output the simulator cannot perform: {output:?}"
        ));
    }

    /// `OpenTcp` named a socket whose slot is still open: a fresh id (so
    /// the checker is content) that reuses the slot of a socket not yet
    /// closed, which the world's one-entry-per-slot table notices.
    pub(super) fn opened_twice(&mut self, socket: SocketId) {
        self.0
            .report(format_args!("OpenTcp of {socket:?}, which is already open"));
    }

    /// A server machine asked for an output the world has no model of.
    pub(super) fn unperformable_by_server(&mut self, output: &Output) {
        self.0.report(format_args!(
            "a server asked for what the simulator cannot do: {output:?}"
        ));
    }

    /// Every connection settled and nothing more will happen, yet the
    /// machine still holds work: something it keeps would never be freed.
    pub(super) fn not_idle(&mut self) {
        self.0.report(
            "every connection settled and the world is silent, but the machine is not idle",
        );
    }

    /// Sockets and DNS transactions still open after every connection was
    /// aborted: the machine forgot to close or release them.
    pub(super) fn leaks(&mut self, sockets: usize, txns: usize) {
        if sockets != 0 {
            self.0
                .report(format!("{sockets} socket(s) opened and never closed"));
        }
        if txns != 0 {
            self.0
                .report(format!("{txns} DNS transaction(s) never released"));
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
                        self.0.report(format!(
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
            self.0.report(format!("connection {n}: {winners} winners"));
        }
        for a in open {
            self.0
                .report(format!("connection {n}: attempt #{a} never ended"));
        }
    }
}
