//! Socket tasks that run where the work is: parked until something wakes
//! them, and then run on the runtime for one poll, or polled by an
//! application future that waits for their outcome.
//!
//! Why: every socket has a task that performs the machine's actions on it
//! (DESIGN.md "Adapters"). Spawned as an ordinary runtime task, it is woken
//! by the same readiness as the application future waiting for the result
//! (a connect, the peer's end after `close`), and the two then meet on the
//! shared lock from two threads, and hand the outcome over with one more
//! wake-up. On loopback that doubled the futex calls of a connect and a
//! close. A parked task is polled by nobody until a wake-up: then a fresh
//! runtime task polls it once and parks it again. An application future may
//! instead [`Parked::claim`] it and poll it with its own context, so the
//! readiness wakes the application's task directly and the socket's work
//! is done there, on one thread, with no hand-over. Dropping the claim
//! hands the task back (polled once with the parked waker, so every wait
//! it is in points to the parked task again).

use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use super::{Runtime, Task};

/// One socket task, parked or running.
pub(crate) struct Parked {
    runtime: Arc<dyn Runtime>,
    state: Mutex<State>,
}

enum State {
    /// Pending, polled by nobody; a wake-up runs it on the runtime.
    Idle(Task),
    /// Being polled (by a run on the runtime, or under a claim); `woken`: a
    /// wake-up came meanwhile, so it is polled again before it parks.
    Busy { woken: bool },
    /// Finished.
    Done,
}

impl Parked {
    /// A parked task not started yet: [`Parked::run`] starts it (after the
    /// caller put it where claimers find it).
    pub(crate) fn new(runtime: Arc<dyn Runtime>) -> Arc<Parked> {
        Arc::new(Parked {
            runtime,
            state: Mutex::new(State::Busy { woken: false }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Polls `task` once with the parked waker, in the caller's context,
    /// then parks it, or, when it was woken meanwhile, runs it again on the
    /// runtime. Not again here: a runtime may wake a task at once to make
    /// it yield (tokio's cooperative budget does, from inside a socket's
    /// readiness poll), and polling again in the same context would spin.
    /// Not under the shared lock: the task takes it.
    pub(crate) fn run(self: &Arc<Self>, mut task: Task) {
        let waker = Waker::from(self.clone());
        if task
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready()
        {
            *self.state() = State::Done;
            return;
        }
        let mut state = self.state();
        if let State::Busy { woken: true } = *state {
            *state = State::Busy { woken: false };
            drop(state);
            self.schedule(task);
            return;
        }
        *state = State::Idle(task);
    }

    /// Runs `task` (which this parked task holds as busy) on the runtime.
    fn schedule(self: &Arc<Self>, task: Task) {
        let parked = self.clone();
        self.runtime
            .spawn(Box::pin(async move { parked.run(task) }));
    }

    /// Takes the task to poll in the caller's task, if it is parked (not
    /// running elsewhere, not finished).
    pub(crate) fn claim(self: &Arc<Self>) -> Option<Claim> {
        let mut state = self.state();
        match std::mem::replace(&mut *state, State::Busy { woken: false }) {
            State::Idle(task) => Some(Claim {
                parked: self.clone(),
                task: Some(task),
            }),
            other => {
                *state = other;
                None
            }
        }
    }
}

impl Wake for Parked {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut state = self.state();
        match &mut *state {
            State::Idle(_) => {
                let State::Idle(task) =
                    std::mem::replace(&mut *state, State::Busy { woken: false })
                else {
                    return;
                };
                drop(state);
                self.schedule(task);
            }
            State::Busy { woken } => *woken = true,
            State::Done => {}
        }
    }
}

/// A parked task taken by an application future ([`Parked::claim`]).
pub(crate) struct Claim {
    parked: Arc<Parked>,
    task: Option<Task>,
}

impl Claim {
    /// Polls the task with the caller's context; `true` once it finished.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(task) = self.task.as_mut() else {
            return true;
        };
        if let Poll::Ready(()) = task.as_mut().poll(cx) {
            self.task = None;
            return true;
        }
        false
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        match self.task.take() {
            // Its waits point to the claimer's waker: one poll with the
            // parked waker points them back, and sees whatever a wake-up
            // during the claim was for.
            Some(task) => {
                *self.parked.state() = State::Busy { woken: false };
                self.parked.run(task);
            }
            None => *self.parked.state() = State::Done,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::os::fd::OwnedFd;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::super::{ReadyFd, ReadyListener, ReadyTcp, ReadyUdp};
    use super::*;

    /// Keeps what it is given to spawn; the test runs it.
    #[derive(Default)]
    struct Spawns(Mutex<Vec<Task>>);

    impl Spawns {
        fn run_all(&self) -> usize {
            let tasks = std::mem::take(&mut *self.0.lock().unwrap());
            let n = tasks.len();
            let waker = Waker::noop();
            for mut task in tasks {
                assert!(
                    task.as_mut()
                        .poll(&mut Context::from_waker(waker))
                        .is_ready()
                );
            }
            n
        }
    }

    impl Runtime for Spawns {
        fn spawn(&self, task: Task) {
            self.0.lock().unwrap().push(task);
        }
        fn sleep_until(&self, _: std::time::Instant) -> Task {
            Box::pin(std::future::pending())
        }
        fn tcp(&self, _: TcpStream) -> io::Result<Box<dyn ReadyTcp>> {
            Err(io::ErrorKind::Unsupported.into())
        }
        fn udp(&self, _: UdpSocket) -> io::Result<Box<dyn ReadyUdp>> {
            Err(io::ErrorKind::Unsupported.into())
        }
        fn listener(&self, _: TcpListener) -> io::Result<Box<dyn ReadyListener>> {
            Err(io::ErrorKind::Unsupported.into())
        }
        fn readable(&self, _: OwnedFd) -> io::Result<Box<dyn ReadyFd>> {
            Err(io::ErrorKind::Unsupported.into())
        }
    }

    /// A task that keeps the waker of its latest poll and ends once told.
    #[derive(Default)]
    struct Probe {
        polls: AtomicUsize,
        waker: Mutex<Option<Waker>>,
        finish: AtomicBool,
    }

    impl Probe {
        fn task(self: &Arc<Self>) -> Task {
            let probe = self.clone();
            Box::pin(std::future::poll_fn(move |cx| {
                probe.polls.fetch_add(1, Ordering::SeqCst);
                if probe.finish.load(Ordering::SeqCst) {
                    return Poll::Ready(());
                }
                *probe.waker.lock().unwrap() = Some(cx.waker().clone());
                Poll::Pending
            }))
        }
        fn polls(&self) -> usize {
            self.polls.load(Ordering::SeqCst)
        }
        fn wake(&self) {
            if let Some(w) = self.waker.lock().unwrap().take() {
                w.wake();
            }
        }
    }

    fn started(probe: &Arc<Probe>) -> (Arc<Spawns>, Arc<Parked>) {
        let spawns = Arc::new(Spawns::default());
        let parked = Parked::new(spawns.clone());
        parked.run(probe.task());
        (spawns, parked)
    }

    #[test]
    fn a_parked_task_runs_on_the_runtime_once_per_wake_up() {
        let probe = Arc::new(Probe::default());
        let (spawns, parked) = started(&probe);
        assert_eq!(probe.polls(), 1, "the first poll is the caller's");
        assert_eq!(spawns.run_all(), 0, "nothing runs until a wake-up");
        probe.wake();
        assert_eq!(probe.polls(), 1, "a wake-up does not poll in the waker");
        assert_eq!(spawns.run_all(), 1);
        assert_eq!(probe.polls(), 2);
        probe.finish.store(true, Ordering::SeqCst);
        probe.wake();
        assert_eq!(spawns.run_all(), 1);
        assert_eq!(probe.polls(), 3);
        // Finished: a stray wake-up of an old waker starts nothing.
        parked.wake_by_ref();
        assert_eq!(spawns.run_all(), 0);
    }

    #[test]
    fn a_claimed_task_is_polled_by_the_claimer_and_handed_back() {
        let probe = Arc::new(Probe::default());
        let (spawns, parked) = started(&probe);
        let mut claim = parked.claim().expect("parked, so claimable");
        assert!(parked.claim().is_none(), "one claimer at a time");
        let claimer_waker = Waker::from(Arc::new(Flag::default()));
        assert!(!claim.poll(&mut Context::from_waker(&claimer_waker)));
        // Its wake-ups now reach the claimer, not the runtime.
        assert!(
            probe
                .waker
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|w| w.will_wake(&claimer_waker))
        );
        // A wake-up of the parked waker while claimed starts nothing: the
        // hand-back polls it anyway, and leaves its waits pointing to the
        // parked task.
        parked.wake_by_ref();
        assert_eq!(spawns.run_all(), 0);
        let polls = probe.polls();
        drop(claim);
        assert_eq!(probe.polls(), polls + 1);
        assert_eq!(spawns.run_all(), 0);
        probe.wake();
        assert_eq!(spawns.run_all(), 1, "parked again: a wake-up runs it");
    }

    #[test]
    fn a_task_finished_under_a_claim_stays_finished() {
        let probe = Arc::new(Probe::default());
        let (spawns, parked) = started(&probe);
        let mut claim = parked.claim().unwrap();
        probe.finish.store(true, Ordering::SeqCst);
        assert!(claim.poll(&mut Context::from_waker(Waker::noop())));
        drop(claim);
        assert!(parked.claim().is_none());
        parked.wake_by_ref();
        assert_eq!(spawns.run_all(), 0);
    }

    #[test]
    fn a_running_task_cannot_be_claimed_and_a_wake_up_meanwhile_is_not_lost() {
        let probe = Arc::new(Probe::default());
        let (spawns, parked) = started(&probe);
        probe.wake();
        // Scheduled on the runtime, not run yet: not claimable.
        assert!(parked.claim().is_none());
        // Woken again before the run: after its poll, the run leaves
        // another on the runtime, so no wake-up is lost...
        parked.wake_by_ref();
        assert_eq!(spawns.run_all(), 1);
        assert_eq!(probe.polls(), 2);
        assert_eq!(spawns.run_all(), 1);
        assert_eq!(probe.polls(), 3);
        assert!(parked.claim().is_some());
    }

    #[test]
    fn a_task_woken_while_it_is_polled_is_not_polled_again_in_place() {
        // tokio's cooperative budget wakes a task from inside a readiness
        // poll to make it yield: polling again at once would never end.
        let spawns = Arc::new(Spawns::default());
        let parked = Parked::new(spawns.clone());
        let polls = Arc::new(AtomicUsize::new(0));
        let counted = polls.clone();
        parked.run(Box::pin(std::future::poll_fn(move |cx| {
            counted.fetch_add(1, Ordering::SeqCst);
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        })));
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        assert_eq!(spawns.run_all(), 1, "the next poll is the runtime's");
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[derive(Default)]
    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}
