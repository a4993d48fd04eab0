//! The background runner: park until the earliest fire instant, wake early
//! when something due sooner arrives, stop on shutdown.
//!
//! # Ground rules
//!
//! * The runner loop is: reset the earliest-deadline hint, `run_pending`,
//!   then park until `min(timeline front, hint)` (at most [`MAX_PARK`]).
//! * Any insert that lowers the hint calls [`RunnerSignal::wake`], which
//!   unparks the runner thread. Because the runner resets the hint *before*
//!   it looks at intake and timeline, an insert made after the look lowers
//!   the hint and unparks; `unpark` before `park` leaves a token, so the
//!   wake-up is never lost.
//! * Shutdown raises `STOP` and unparks. Fires the runner has claimed but not
//!   started are released back to the timeline, never dropped; a callback
//!   that is running is waited for, up to the caller's timeout.
//! * **Registration** is one word, `state`: a generation, `ACTIVE` and
//!   `STOP`. `start` takes it with a CAS (not `ACTIVE` to `ACTIVE` with the
//!   next generation: one runner per scheduler); the runner thread publishes
//!   itself in `thread`. Only that handle's `shutdown` raises `STOP`, and
//!   only while its own generation is registered (a CAS). The runner thread,
//!   and only it, gives the registration back, as the last thing it does
//!   (also when its loop panics): `thread`, then `state` (generation kept,
//!   flags cleared), and only then does it tell `shutdown` it has finished.
//!   So a `start` after a `shutdown` that returned `Ok` succeeds, and so
//!   does a `start` after a `shutdown` that timed out, once the old thread
//!   has left its callback; until then `start` says
//!   [`Error::RunnerStillStopping`].
//! * The ordered shutdown (grace, cancel, report), [`RunnerHandle::wait`]
//!   and the stopper are in `run::lifecycle`; they use this registration
//!   and the count of fires handed back at a stop (`handed_back`).

use crate::error::Error;
use crate::run::core::Core;
use crate::sync::{
    current_thread, park_timeout, yield_now, AtomicU64, HandleArc as Arc, JoinHandle, Ordering,
    SwapOption, Thread, ThreadBuilder,
};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The longest the runner parks without looking at the clock again; bounds
/// the delay after a clock that jumps (or a manual clock that is advanced).
pub const MAX_PARK: Duration = Duration::from_millis(100);

/// The runner parks until this long before the next fire instant and yields
/// the CPU in a loop for the rest, because a parked thread wakes up tens of
/// microseconds after its timeout. Costs at most this much CPU per fire.
pub const SPIN_WINDOW: Duration = Duration::from_micros(200);

/// How long dropping a [`RunnerHandle`] waits for running callbacks.
pub const DROP_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// `state`: a runner is registered (its thread has not exited).
const ACTIVE: u64 = 1;
/// `state`: its `shutdown` has asked it to stop.
const STOP: u64 = 2;
/// `state`: the generation, counted by `start`, above the flags.
const GEN: u64 = 4;

/// How registering threads (and `run_pending`) reach the runner.
pub(crate) struct RunnerSignal {
    /// Generation and flags (see the ground rules).
    state: AtomicU64,
    thread: SwapOption<Thread>,
    /// Fires released unrun because a runner was told to stop (for the
    /// shutdown report, `run::lifecycle`).
    handed_back: AtomicU64,
    /// Wakes a runner that is a task on a tokio runtime
    /// ([`Scheduler::start_on_runtime`](crate::Scheduler::start_on_runtime)):
    /// it has no thread to unpark. A permit given while it is not waiting
    /// is kept, as `unpark` before `park` leaves a token.
    #[cfg(feature = "tokio")]
    pub(crate) notify: ::tokio::sync::Notify,
}

impl RunnerSignal {
    pub(crate) fn new() -> Self {
        RunnerSignal {
            state: AtomicU64::new(0),
            thread: SwapOption::empty(),
            handed_back: AtomicU64::new(0),
            #[cfg(feature = "tokio")]
            notify: ::tokio::sync::Notify::new(),
        }
    }

    /// Registers a new runner; its generation's `state` word (`ACTIVE`).
    pub(crate) fn register(&self) -> Result<u64, Error> {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            if cur & ACTIVE != 0 {
                return Err(if cur & STOP != 0 {
                    Error::RunnerStillStopping
                } else {
                    Error::RunnerAlreadyStarted
                });
            }
            let mine = (cur & !(GEN - 1)).wrapping_add(GEN) | ACTIVE;
            // Acquire: see the old runner's clean-up, done before its
            // Release store of the cleared word.
            match self
                .state
                .compare_exchange(cur, mine, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(mine),
                Err(now) => cur = now,
            }
        }
    }

    /// Asks the runner registered as `mine` to stop; does nothing if it has
    /// exited already. Release pairs with the runner's Acquire loads.
    pub(crate) fn raise_stop(&self, mine: u64) {
        let _ = self
            .state
            .compare_exchange(mine, mine | STOP, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Whether `mine` is the registered runner and has not been asked to
    /// stop.
    pub(crate) fn is_running(&self, mine: u64) -> bool {
        self.state.load(Ordering::Acquire) == mine
    }

    /// Whether the registered runner was asked to stop (the runner's loop,
    /// and `run_pending` on the runner, before each fire).
    #[inline]
    pub(crate) fn stop_raised(&self) -> bool {
        self.state.load(Ordering::Acquire) & STOP != 0
    }

    /// Counts a fire handed back at a stop.
    pub(crate) fn handed_back_one(&self) {
        self.handed_back.fetch_add(1, Ordering::Relaxed);
    }

    /// Fires handed back at stops so far.
    pub(crate) fn handed_back(&self) -> u64 {
        self.handed_back.load(Ordering::Relaxed)
    }

    /// Gives the registration `mine` back (the runner thread, as it exits).
    pub(crate) fn clear(&self, mine: u64) {
        self.thread.store(None);
        // Release: a `start` that takes the word sees `thread` reset.
        self.state.store(mine & !(GEN - 1), Ordering::Release);
    }

    /// Unparks the runner, if there is one.
    #[inline]
    pub(crate) fn wake(&self) {
        if self.state.load(Ordering::Acquire) & ACTIVE != 0 {
            if let Some(t) = self.thread.load() {
                #[cfg(cronlane_loom)]
                if crate::__loom::broken(&crate::__loom::BREAK_WAKE) {
                    return;
                }
                t.unpark();
            }
            // No thread: the runner is a task on a runtime (or a thread
            // runner that has not published itself yet, which looks at the
            // timeline before it first parks).
            #[cfg(feature = "tokio")]
            if self.thread.load().is_none() {
                self.notify.notify_one();
            }
        }
    }
}

/// The running background runner. [`shutdown`](Self::shutdown) stops it;
/// dropping it does the same with [`DROP_SHUTDOWN_TIMEOUT`] (a runner task,
/// feature `tokio`'s `Scheduler::start_on_runtime`, dropped on a runtime
/// thread is told to stop and not waited for).
///
/// ```
/// use cronlane::{Schedule, Scheduler};
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let scheduler = Scheduler::builder().build();
/// let (tx, rx) = mpsc::channel();
/// scheduler
///     .add(Schedule::after(Duration::from_millis(10)))
///     .run(move || tx.send(()).map_err(|e| e.to_string()))?;
///
/// let runner = scheduler.start()?;
/// rx.recv_timeout(Duration::from_secs(10))?; // the runner fired the one-shot
/// runner.shutdown(Duration::from_secs(5))?;  // stop, wait for running callbacks
/// # Ok(())
/// # }
/// ```
pub struct RunnerHandle {
    pub(crate) core: Arc<Core>,
    /// This runner's registration (`state` word while it runs).
    pub(crate) mine: u64,
    pub(crate) done: std::sync::Arc<(Mutex<bool>, Condvar)>,
    pub(crate) join: Option<Driver>,
    /// Fires handed back before this runner started (its shutdown report
    /// counts from here).
    pub(crate) handed_base: u64,
}

impl RunnerHandle {
    pub(crate) fn start(core: Arc<Core>) -> Result<RunnerHandle, Error> {
        let mine = core.runner.register()?;
        if let Some(durable) = core.durable.as_deref() {
            durable.store.runner(true);
        }
        let handed_base = core.runner.handed_back();
        let done = std::sync::Arc::new((Mutex::new(false), Condvar::new()));
        let (c, d) = (core.clone(), done.clone());
        let spawned = ThreadBuilder::new()
            .name("cronlane-runner".into())
            .spawn(move || {
                // Whatever happens in the loop, the registration is given
                // back and `shutdown` told, in that order (ground rules).
                let _exit = Exit {
                    core: &c,
                    mine,
                    done: &d,
                };
                c.runner
                    .thread
                    .store(Some(crate::sync::Arc::new(current_thread())));
                run(&c);
            });
        match spawned {
            Ok(join) => Ok(RunnerHandle {
                core,
                mine,
                done,
                join: Some(Driver::Thread(join)),
                handed_base,
            }),
            Err(e) => {
                core.runner.clear(mine);
                Err(Error::Spawn(e.to_string()))
            }
        }
    }

    /// Stops firing and waits up to `timeout` for callbacks already running
    /// (on the runner and, with a pool or executor, on their threads).
    pub fn shutdown(mut self, timeout: Duration) -> Result<(), Error> {
        self.stop_and_wait(timeout)
    }

    fn stop_and_wait(&mut self, timeout: Duration) -> Result<(), Error> {
        let Some(join) = self.join.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + timeout;
        self.core.stop_runner(self.mine);
        #[cfg(cronlane_loom)]
        let unpark = !crate::__loom::broken(&crate::__loom::BREAK_SHUTDOWN);
        #[cfg(not(cronlane_loom))]
        let unpark = true;
        if unpark {
            join.unpark(&self.core);
        }
        // Under loom a condvar wait would block every model thread (they
        // share one OS thread): join first; `finished` is then set.
        #[cfg(cronlane_loom)]
        join.join();
        let (lock, cv) = &*self.done;
        let mut finished = lock.lock().map_err(|_| Error::ShutdownTimeout(timeout))?;
        while !*finished {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // The runner is inside a callback that outlived the timeout;
                // it exits when that callback returns.
                return Err(Error::ShutdownTimeout(timeout));
            }
            finished = cv
                .wait_timeout(finished, left)
                .map_err(|_| Error::ShutdownTimeout(timeout))?
                .0;
        }
        drop(finished);
        #[cfg(not(cronlane_loom))]
        join.join();
        // The runner thread gave its registration back before `finished`
        // (clearing it here could clear a runner started since).
        // Jobs handed to a pool or executor: wait for them too.
        while self.core.jobs_in_flight() > 0 {
            if Instant::now() >= deadline {
                return Err(Error::ShutdownTimeout(timeout));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}

impl Drop for RunnerHandle {
    fn drop(&mut self) {
        // A loom model that failed unwinds its threads after loom has
        // stopped scheduling them: touching a loom object then aborts the
        // test binary instead of failing the model.
        #[cfg(cronlane_loom)]
        if std::thread::panicking() {
            return;
        }
        // A runner task dropped on a runtime thread: waiting here could
        // keep the very runtime it needs from polling it (a current-thread
        // one, surely). Told to stop, it exits at its next poll.
        #[cfg(feature = "tokio")]
        if matches!(self.join, Some(Driver::Task))
            && ::tokio::runtime::Handle::try_current().is_ok()
        {
            self.core.stop_runner(self.mine);
            self.core.runner.wake();
            self.join = None;
            return;
        }
        if let Err(e) = self.stop_and_wait(DROP_SHUTDOWN_TIMEOUT) {
            tracing::warn!("cronlane: runner dropped: {e}");
        }
    }
}

impl std::fmt::Debug for RunnerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerHandle")
            .field("running", &self.join.is_some())
            .finish()
    }
}

/// What runs a runner: its thread, or (feature `tokio`) a task on a
/// runtime, which reports its exit through `done` only.
pub(crate) enum Driver {
    Thread(JoinHandle<()>),
    #[cfg(feature = "tokio")]
    Task,
}

impl Driver {
    /// Wakes the runner (to see its `STOP`).
    #[cfg_attr(not(feature = "tokio"), allow(unused_variables))]
    pub(crate) fn unpark(&self, core: &Core) {
        match self {
            Driver::Thread(join) => join.thread().unpark(),
            #[cfg(feature = "tokio")]
            Driver::Task => core.runner.wake(),
        }
    }

    /// Joins the runner thread (once it has set `done`); a task has
    /// nothing to join.
    pub(crate) fn join(self) {
        match self {
            Driver::Thread(join) => {
                let _ = join.join();
            }
            #[cfg(feature = "tokio")]
            Driver::Task => {}
        }
    }
}

/// Run by the runner as it exits, by return or by panic (or, for a runner
/// task, by its future being dropped with its runtime): gives the
/// registration back, then tells `shutdown` the runner has finished.
pub(crate) struct Exit<'a> {
    pub(crate) core: &'a Core,
    pub(crate) mine: u64,
    pub(crate) done: &'a (Mutex<bool>, Condvar),
}

impl Drop for Exit<'_> {
    fn drop(&mut self) {
        // See `RunnerHandle::drop` (a failed loom model unwinding).
        #[cfg(cronlane_loom)]
        if std::thread::panicking() {
            return;
        }
        self.core.runner.clear(self.mine);
        let (lock, cv) = self.done;
        let mut finished = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *finished = true;
        drop(finished);
        cv.notify_all();
    }
}

fn run(core: &Arc<Core>) {
    while !core.runner.stop_raised() {
        let Some(wait) = core.runner_turn() else {
            break;
        };
        if wait.is_zero() {
            continue;
        }
        if wait <= SPIN_WINDOW {
            // The OS wakes a parked thread tens of microseconds late; for the
            // last stretch, yield instead of parking.
            yield_now();
            continue;
        }
        park_timeout((wait - SPIN_WINDOW).min(MAX_PARK));
    }
}

impl Core {
    /// One turn of a runner, its thread's or (feature `tokio`) its task's:
    /// runs what is due, then says how long until the next instant it
    /// knows of (zero: due already), or `None` once it was told to stop.
    pub(crate) fn runner_turn(self: &Arc<Self>) -> Option<Duration> {
        // Reset the hint before looking, so that anything inserted after the
        // look lowers it again and wakes the runner (see the ground rules).
        self.timeline.take_hint();
        self.run_pending(Some(&self.runner));
        if self.runner.stop_raised() {
            return None;
        }
        let now = self.clock.now_nanos();
        let next = self
            .timeline
            .front()
            .unwrap_or(i64::MAX)
            .min(self.timeline.hint());
        Some(Duration::from_nanos(
            u64::try_from(next.saturating_sub(now)).unwrap_or(0),
        ))
    }
}
