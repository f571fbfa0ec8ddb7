//! Socket tasks that run where the work is: parked until something wakes
//! them, then carried by a runtime task, or polled by an application
//! future that waits for their outcome.
//!
//! Why: every socket has a task that performs the machine's actions on it
//! (ARCHITECTURE.md "The async layer"). Spawned as an ordinary runtime task, it is woken
//! by the same readiness as the application future waiting for the result
//! (a connect, the peer's end after `close`), and the two then meet on the
//! shared lock from two threads, and hand the outcome over with one more
//! wake-up: on loopback that doubled the futex calls and context switches
//! of a connect and a close. A parked task is polled by nobody until a
//! wake-up; the first one spawns its *carrier*, a runtime task that polls it
//! from then on with its own waker, like any spawned task. An application
//! future may instead [`Parked::claim`] it whenever it is idle and poll it
//! with its own context: the readiness then wakes the application's task
//! directly, and the socket's work is done there, on one thread, with no
//! hand-over. Dropping the claim hands the task back: one poll with the
//! carrier's (or the parked) waker points every wait it is in back to it.
//! A connect and a close claimed from start to end never need a runtime
//! task at all.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use super::{Runtime, Task};

/// One socket task, parked, claimed, or carried by a runtime task.
pub(crate) struct Parked {
    runtime: Arc<dyn Runtime>,
    state: Mutex<State>,
}

struct State {
    slot: Slot,
    /// A wake-up came while the task was being polled: it is polled again.
    woken: bool,
    /// The waker of the runtime task that carries this one, once the task
    /// was first woken: from then on it runs there like any spawned task
    /// (its waits wake the carrier directly), except while claimed.
    carrier: Option<Waker>,
}

enum Slot {
    /// Pending, and nobody is polling it.
    Idle(Task),
    /// Being polled: by its carrier, by a claimer, or where it was started.
    Busy,
    /// Finished.
    Done,
}

impl Parked {
    /// A parked task not started yet: [`Parked::run`] starts it (after the
    /// caller put it where claimers find it).
    pub(crate) fn new(runtime: Arc<dyn Runtime>) -> Arc<Parked> {
        Arc::new(Parked {
            runtime,
            state: Mutex::new(State {
                slot: Slot::Busy,
                woken: false,
                carrier: None,
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Polls `task` (held as busy) once, in the caller's context, with the
    /// waker its waits should wake: the carrier's if it has one, else the
    /// parked waker. Then parks it; a wake-up that came meanwhile goes to
    /// the runtime (not polled again here: a runtime may wake a task at
    /// once to make it yield, as tokio's cooperative budget does from
    /// inside a readiness poll, and polling again here would spin). Not
    /// under the shared lock: the task takes it.
    pub(crate) fn run(self: &Arc<Self>, mut task: Task) {
        let waker = self
            .state()
            .carrier
            .clone()
            .unwrap_or_else(|| Waker::from(self.clone()));
        let done = task
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready();
        let mut state = self.state();
        if done {
            self.finish(state);
            return;
        }
        state.slot = Slot::Idle(task);
        if std::mem::take(&mut state.woken) {
            self.schedule(state);
        }
    }

    /// The task finished away from its carrier: the carrier, if there is
    /// one, is woken to see it and end.
    fn finish(&self, mut state: MutexGuard<'_, State>) {
        state.slot = Slot::Done;
        if let Some(carrier) = state.carrier.take() {
            drop(state);
            carrier.wake();
        }
    }

    /// Has the idle task polled on the runtime: by its carrier, started
    /// with the first wake-up.
    fn schedule(self: &Arc<Self>, state: MutexGuard<'_, State>) {
        match &state.carrier {
            Some(carrier) => carrier.wake_by_ref(),
            None => {
                drop(state);
                let carrier = Carrier {
                    parked: self.clone(),
                };
                self.runtime.spawn(Box::pin(carrier));
            }
        }
    }

    /// Takes the task to poll in the caller's task, if it is idle (not
    /// being polled elsewhere, not finished).
    pub(crate) fn claim(self: &Arc<Self>) -> Option<Claim> {
        let mut state = self.state();
        match std::mem::replace(&mut state.slot, Slot::Busy) {
            Slot::Idle(task) => Some(Claim {
                parked: self.clone(),
                task: Some(task),
            }),
            other => {
                state.slot = other;
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
        match state.slot {
            Slot::Idle(_) => self.schedule(state),
            Slot::Busy => state.woken = true,
            Slot::Done => {}
        }
    }
}

/// The runtime task that polls a parked task once it was woken, with its
/// own waker, for the rest of its life; it only stands aside while the
/// task is claimed.
struct Carrier {
    parked: Arc<Parked>,
}

impl Future for Carrier {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let parked = &self.parked;
        let mut state = parked.state();
        if !state
            .carrier
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.carrier = Some(cx.waker().clone());
        }
        let mut task = match std::mem::replace(&mut state.slot, Slot::Busy) {
            Slot::Idle(task) => task,
            Slot::Done => {
                state.slot = Slot::Done;
                return Poll::Ready(());
            }
            // Being polled elsewhere (claimed, or handed back, or started):
            // whoever polls it polls it again, or has the carrier do so,
            // for this wake-up, which it may have missed.
            Slot::Busy => {
                state.woken = true;
                return Poll::Pending;
            }
        };
        state.woken = false;
        drop(state);
        if task.as_mut().poll(cx).is_ready() {
            parked.state().slot = Slot::Done;
            return Poll::Ready(());
        }
        let mut state = parked.state();
        state.slot = Slot::Idle(task);
        if std::mem::take(&mut state.woken) {
            // Woken while polled (by the parked waker of an old wait):
            // once more, after yielding.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
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
            // Its waits point to the claimer's waker: one poll with its
            // own (the carrier's, or the parked one) points them back, and
            // sees whatever a wake-up during the claim was for.
            Some(task) => {
                self.parked.state().woken = false;
                self.parked.run(task);
            }
            None => {
                let state = self.parked.state();
                self.parked.finish(state);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::os::fd::OwnedFd;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;
    use crate::{ReadyFd, ReadyListener, ReadyTcp, ReadyUdp};

    /// A runtime task of [`Executor`]: runnable when woken.
    struct Spawned {
        task: Mutex<Option<Task>>,
        scheduled: AtomicBool,
    }

    impl Wake for Spawned {
        fn wake(self: Arc<Self>) {
            self.scheduled.store(true, Ordering::SeqCst);
        }
    }

    /// A runtime the test drives by hand.
    #[derive(Default)]
    struct Executor(Mutex<Vec<Arc<Spawned>>>);

    impl Executor {
        /// Runtime tasks ever spawned.
        fn spawned(&self) -> usize {
            self.0.lock().unwrap().len()
        }
        /// Runtime tasks not finished.
        fn live(&self) -> usize {
            let list = self.0.lock().unwrap();
            list.iter()
                .filter(|s| s.task.lock().unwrap().is_some())
                .count()
        }
        /// Polls each woken runtime task once; how many were polled.
        fn run_once(&self) -> usize {
            let list: Vec<_> = self.0.lock().unwrap().clone();
            let mut polled = 0;
            for spawned in list {
                if !spawned.scheduled.swap(false, Ordering::SeqCst) {
                    continue;
                }
                let waker = Waker::from(spawned.clone());
                let mut slot = spawned.task.lock().unwrap();
                if let Some(task) = slot.as_mut() {
                    polled += 1;
                    if task
                        .as_mut()
                        .poll(&mut Context::from_waker(&waker))
                        .is_ready()
                    {
                        *slot = None;
                    }
                }
            }
            polled
        }
    }

    impl Runtime for Executor {
        fn spawn(&self, task: Task) {
            self.0.lock().unwrap().push(Arc::new(Spawned {
                task: Mutex::new(Some(task)),
                scheduled: AtomicBool::new(true),
            }));
        }
        fn sleep_until(&self, _: std::time::Instant) -> Task {
            Box::pin(std::future::pending())
        }
        fn tcp(&self, _: TcpStream) -> io::Result<Arc<dyn ReadyTcp>> {
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

    /// A socket task stand-in: keeps the waker of its latest poll, ends
    /// once told, may wake itself from inside a poll.
    #[derive(Default)]
    struct Probe {
        polls: AtomicUsize,
        waker: Mutex<Option<Waker>>,
        finish: AtomicBool,
        wake_in_poll: AtomicBool,
        /// Runs once inside the next poll (what another thread might do
        /// meanwhile).
        during_poll: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    }

    impl Probe {
        fn task(self: &Arc<Self>) -> Task {
            let probe = self.clone();
            Box::pin(std::future::poll_fn(move |cx| {
                probe.polls.fetch_add(1, Ordering::SeqCst);
                if let Some(hook) = probe.during_poll.lock().unwrap().take() {
                    hook();
                }
                if probe.finish.load(Ordering::SeqCst) {
                    return Poll::Ready(());
                }
                *probe.waker.lock().unwrap() = Some(cx.waker().clone());
                if probe.wake_in_poll.load(Ordering::SeqCst) {
                    cx.waker().wake_by_ref();
                }
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
        fn waits_on(&self, waker: &Waker) -> bool {
            self.waker
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|w| w.will_wake(waker))
        }
    }

    fn started(probe: &Arc<Probe>) -> (Arc<Executor>, Arc<Parked>) {
        let executor = Arc::new(Executor::default());
        let parked = Parked::new(executor.clone());
        parked.run(probe.task());
        (executor, parked)
    }

    #[test]
    fn a_parked_task_gets_a_carrier_at_its_first_wake_up_and_keeps_it() {
        let probe = Arc::new(Probe::default());
        let (executor, _parked) = started(&probe);
        assert_eq!(probe.polls(), 1, "the first poll is the caller's");
        assert_eq!(executor.spawned(), 0, "nothing on the runtime until woken");
        probe.wake();
        assert_eq!(probe.polls(), 1, "a wake-up does not poll in the waker");
        assert_eq!(executor.spawned(), 1);
        assert_eq!(executor.run_once(), 1);
        assert_eq!(probe.polls(), 2);
        // Its waits now wake the carrier itself: no new runtime task.
        probe.wake();
        assert_eq!(executor.run_once(), 1);
        assert_eq!(probe.polls(), 3);
        assert_eq!(executor.spawned(), 1);
        probe.finish.store(true, Ordering::SeqCst);
        probe.wake();
        assert_eq!(executor.run_once(), 1);
        assert_eq!(probe.polls(), 4);
        assert_eq!(executor.live(), 0, "the carrier ends with the task");
    }

    #[test]
    fn a_claimed_task_is_polled_by_the_claimer_and_handed_back_to_its_carrier() {
        let probe = Arc::new(Probe::default());
        let (executor, parked) = started(&probe);
        probe.wake();
        assert_eq!(executor.run_once(), 1, "the carrier starts");
        let mut claim = parked.claim().expect("idle, so claimable");
        assert!(parked.claim().is_none(), "one claimer at a time");
        let claimer = Waker::from(Arc::new(Flag::default()));
        assert!(!claim.poll(&mut Context::from_waker(&claimer)));
        assert!(probe.waits_on(&claimer), "its wake-ups reach the claimer");
        // The carrier, woken while the task is claimed, leaves it alone.
        let polls = probe.polls();
        Waker::from(parked.clone()).wake();
        executor.run_once();
        assert_eq!(probe.polls(), polls);
        drop(claim);
        assert_eq!(probe.polls(), polls + 1, "the hand-back polls it once");
        assert!(!probe.waits_on(&claimer), "and points its waits back");
        probe.wake();
        assert_eq!(executor.run_once(), 1, "the carrier carries it again");
        assert_eq!(executor.spawned(), 1);
    }

    #[test]
    fn a_carrier_woken_while_the_task_is_polled_elsewhere_is_not_lost() {
        // The hand-back polls the task on the application's thread while
        // the reactor wakes its carrier on another: the carrier finds it
        // busy, and the wake-up must still reach a poll afterwards.
        let probe = Arc::new(Probe::default());
        let (executor, parked) = started(&probe);
        probe.wake();
        executor.run_once();
        let carrier = probe.waker.lock().unwrap().clone().unwrap();
        let mut claim = parked.claim().unwrap();
        assert!(!claim.poll(&mut Context::from_waker(Waker::noop())));
        let on_other_thread = executor.clone();
        *probe.during_poll.lock().unwrap() = Some(Box::new(move || {
            carrier.wake();
            assert_eq!(on_other_thread.run_once(), 1, "the carrier runs");
        }));
        let polls = probe.polls();
        drop(claim);
        assert_eq!(probe.polls(), polls + 1, "the hand-back's poll");
        assert_eq!(executor.run_once(), 1, "the carrier is woken again");
        assert_eq!(probe.polls(), polls + 2, "and polls it for that wake-up");
    }

    #[test]
    fn a_task_finished_under_a_claim_ends_its_carrier() {
        let probe = Arc::new(Probe::default());
        let (executor, parked) = started(&probe);
        probe.wake();
        executor.run_once();
        let mut claim = parked.claim().unwrap();
        probe.finish.store(true, Ordering::SeqCst);
        assert!(claim.poll(&mut Context::from_waker(Waker::noop())));
        drop(claim);
        assert!(parked.claim().is_none());
        executor.run_once();
        assert_eq!(executor.live(), 0);
    }

    #[test]
    fn a_claim_before_any_wake_up_needs_no_runtime_task() {
        let probe = Arc::new(Probe::default());
        let (executor, parked) = started(&probe);
        let mut claim = parked.claim().unwrap();
        assert!(!claim.poll(&mut Context::from_waker(Waker::noop())));
        drop(claim);
        assert_eq!(executor.spawned(), 0, "connect and close stay in place");
        probe.wake();
        assert_eq!(executor.spawned(), 1, "handed back to the parked waker");
    }

    #[test]
    fn a_task_woken_while_it_is_polled_is_not_polled_again_in_place() {
        // tokio's cooperative budget wakes a task from inside a readiness
        // poll to make it yield: polling again at once would never end.
        let probe = Arc::new(Probe::default());
        probe.wake_in_poll.store(true, Ordering::SeqCst);
        let (executor, _parked) = started(&probe);
        assert_eq!(probe.polls(), 1);
        assert_eq!(executor.spawned(), 1, "the next poll is the runtime's");
        for round in 2..5 {
            assert_eq!(executor.run_once(), 1);
            assert_eq!(probe.polls(), round, "one poll per runtime turn");
        }
    }

    #[derive(Default)]
    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}
