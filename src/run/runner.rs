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
//! * Shutdown raises `stop` and unparks. Fires the runner has claimed but not
//!   started are released back to the timeline, never dropped; a callback
//!   that is running is waited for, up to the caller's timeout.

use crate::error::Error;
use crate::run::core::Core;
use crate::sync::{
    current_thread, park_timeout, yield_now, AtomicBool, HandleArc as Arc, JoinHandle, Ordering,
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

/// How registering threads reach the runner.
pub(crate) struct RunnerSignal {
    active: AtomicBool,
    thread: SwapOption<Thread>,
}

impl RunnerSignal {
    pub(crate) fn new() -> Self {
        RunnerSignal {
            active: AtomicBool::new(false),
            thread: SwapOption::empty(),
        }
    }

    /// Unparks the runner, if there is one.
    #[inline]
    pub(crate) fn wake(&self) {
        if self.active.load(Ordering::Acquire) {
            if let Some(t) = self.thread.load() {
                #[cfg(cronlane_loom)]
                if crate::__loom::broken(&crate::__loom::BREAK_WAKE) {
                    return;
                }
                t.unpark();
            }
        }
    }
}

/// The running background runner. [`shutdown`](Self::shutdown) stops it;
/// dropping it does the same with [`DROP_SHUTDOWN_TIMEOUT`].
pub struct RunnerHandle {
    core: Arc<Core>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    done: std::sync::Arc<(Mutex<bool>, Condvar)>,
    join: Option<JoinHandle<()>>,
}

impl RunnerHandle {
    pub(crate) fn start(core: Arc<Core>) -> Result<RunnerHandle, Error> {
        if core
            .runner
            .active
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(Error::RunnerAlreadyStarted);
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = std::sync::Arc::new((Mutex::new(false), Condvar::new()));
        let (c, s, d) = (core.clone(), stop.clone(), done.clone());
        let spawned = ThreadBuilder::new()
            .name("cronlane-runner".into())
            .spawn(move || {
                c.runner
                    .thread
                    .store(Some(crate::sync::Arc::new(current_thread())));
                run(&c, &s);
                let (lock, cv) = &*d;
                if let Ok(mut finished) = lock.lock() {
                    *finished = true;
                }
                cv.notify_all();
            });
        match spawned {
            Ok(join) => Ok(RunnerHandle {
                core,
                stop,
                done,
                join: Some(join),
            }),
            Err(e) => {
                core.runner.active.store(false, Ordering::Release);
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
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        #[cfg(cronlane_loom)]
        let unpark = !crate::__loom::broken(&crate::__loom::BREAK_SHUTDOWN);
        #[cfg(not(cronlane_loom))]
        let unpark = true;
        if unpark {
            join.thread().unpark();
        }
        // Under loom a condvar wait would block every model thread (they
        // share one OS thread): join first; `finished` is then set.
        #[cfg(cronlane_loom)]
        let _ = join.join();
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
        let _ = join.join();
        self.core.runner.thread.store(None);
        self.core.runner.active.store(false, Ordering::Release);
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

fn run(core: &Arc<Core>, stop: &std::sync::atomic::AtomicBool) {
    let stopped = || stop.load(std::sync::atomic::Ordering::Acquire);
    while !stopped() {
        // Reset the hint before looking, so that anything inserted after the
        // look lowers it again and unparks us (see the ground rules).
        core.timeline.take_hint();
        core.run_pending(Some(stop));
        if stopped() {
            break;
        }
        let now = core.clock.now_nanos();
        let next = core
            .timeline
            .front()
            .unwrap_or(i64::MAX)
            .min(core.timeline.hint());
        if next <= now {
            continue;
        }
        let wait = Duration::from_nanos(u64::try_from(next - now).unwrap_or(u64::MAX));
        if wait <= SPIN_WINDOW {
            // The OS wakes a parked thread tens of microseconds late; for the
            // last stretch, yield instead of parking.
            yield_now();
            continue;
        }
        park_timeout((wait - SPIN_WINDOW).min(MAX_PARK));
    }
}
