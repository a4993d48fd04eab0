//! A service's life cycle on top of the runner: wait until stopped, stop
//! from elsewhere, and the ordered shutdown with its report. The async and
//! signal forms (feature `tokio`) are at the end.
//!
//! # Ground rules
//!
//! * The ordered shutdown goes: **stop claiming** (the runner's `STOP`;
//!   fires it claimed and did not start are handed back to the timeline,
//!   counted) → **let running fires finish** within the grace period →
//!   **cancel** what is left (async runs' `CancelSignal`s fire; sync
//!   callbacks have no signal and are only waited for) → **wait** for them,
//!   up to the grace period again → **report** ([`ShutdownReport`]). Nothing
//!   is dropped silently: a fire is either completed (and counted in
//!   `stats()`), handed back (and fires at the next `run_pending` or start),
//!   or reported as still running when shutdown returned (and completed and
//!   counted when it returns).
//! * Only the handle's own registration is stopped (the `STOP` CAS of
//!   [`RunnerSignal`](crate::run::runner::RunnerSignal)); a [`Stopper`] carries
//!   that registration, so a stale stopper cannot stop a later runner.

use crate::run::core::Core;
use crate::run::runner::RunnerHandle;
use crate::sync::HandleArc as Arc;
use std::time::{Duration, Instant};

/// What an ordered shutdown did with the fires it found
/// ([`RunnerHandle::shutdown_graceful`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Fires the runner had claimed but not started when it stopped
    /// claiming: put back on the timeline as they were (never dropped);
    /// they fire at the next `run_pending` or runner start.
    pub handed_back: u64,
    /// Runs going when the runner had stopped claiming: async runs, and
    /// sync callbacks on a pool, an executor or the runner itself.
    pub running: u64,
    /// Of those, the runs that finished within the grace period.
    pub finished: u64,
    /// Runs still going at the end of the grace period, then told to stop:
    /// each async run's `CancelSignal` fired (feature `tokio`).
    pub cancelled: u64,
    /// Runs still going when the shutdown returned (they ignored their
    /// signal, or are sync callbacks that outlived both waits). They go on
    /// in the background; each is completed and counted when it returns.
    pub unfinished: u64,
}

impl ShutdownReport {
    /// True when every run finished before the shutdown returned.
    pub fn is_clean(&self) -> bool {
        self.unfinished == 0
    }
}

/// Stops a runner from elsewhere (another thread, a signal handler's
/// task): [`RunnerHandle::wait`] then returns. Cheap to clone.
#[derive(Clone)]
pub struct Stopper {
    core: Arc<Core>,
    mine: u64,
}

impl Stopper {
    /// Asks the runner to stop claiming and exit; returns at once. Fires
    /// it had claimed and not started are handed back to the timeline. A
    /// runner that already stopped, or a later one, is not affected.
    pub fn stop(&self) {
        self.core.stop_runner(self.mine);
        self.core.runner.wake();
    }
}

impl std::fmt::Debug for Stopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stopper").finish_non_exhaustive()
    }
}

/// How often the shutdown looks at the count of running fires.
const POLL: Duration = Duration::from_millis(1);

impl RunnerHandle {
    /// Blocks until the runner has stopped: by a [`Stopper`], a signal
    /// (`run_until_signal`, feature `tokio`), or a panic in its
    /// loop. Fires handed out before it stopped may still be running; follow
    /// with [`shutdown_graceful`](Self::shutdown_graceful) to wait for them
    /// and get the report.
    pub fn wait(&self) {
        block_until_finished(&self.done);
    }

    /// Whether the runner thread has exited.
    pub fn is_stopped(&self) -> bool {
        finished(&self.done)
    }

    /// A handle that stops this runner from elsewhere.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            core: self.core.clone(),
            mine: self.mine,
        }
    }

    /// The ordered shutdown (see the module's ground rules): stop claiming,
    /// let running fires finish within `grace`, cancel what is left, wait
    /// up to `grace` again, and report. Blocks the calling thread: from
    /// async code use `shutdown_async` (feature `tokio`).
    ///
    /// Unlike [`shutdown`](Self::shutdown) it never fails: what did not
    /// finish is in the report.
    pub fn shutdown_graceful(mut self, grace: Duration) -> ShutdownReport {
        self.graceful(grace)
    }

    fn graceful(&mut self, grace: Duration) -> ShutdownReport {
        let Some(join) = self.join.take() else {
            return ShutdownReport::default();
        };
        let core = self.core.clone();
        // 1. Stop claiming: the runner releases what it claimed and did not
        // start, and exits (once a callback it runs inline has returned).
        core.stop_runner(self.mine);
        join.unpark(&core);
        let mut deadline = Instant::now() + grace;
        self.wait_until(deadline, |h| h.is_stopped());
        let running = self.in_flight();
        // 2. Let what runs finish within the grace period.
        self.wait_until(deadline, |h| h.in_flight() == 0);
        let left = self.in_flight();
        // 3. Cancel the rest, and 4. wait for it.
        if left > 0 {
            core.cancel_runs();
            deadline = Instant::now() + grace;
            self.wait_until(deadline, |h| h.in_flight() == 0);
        }
        let unfinished = self.in_flight();
        if self.is_stopped() {
            join.join();
        }
        // 5. Report.
        ShutdownReport {
            handed_back: core.runner.handed_back() - self.handed_base,
            running,
            finished: running - left.min(running),
            cancelled: left,
            unfinished,
        }
    }

    /// Runs still going: handed-out fires, and a callback the runner thread
    /// itself is inside.
    fn in_flight(&self) -> u64 {
        self.core.jobs_in_flight() as u64 + u64::from(!self.is_stopped())
    }

    fn wait_until(&self, deadline: Instant, done: impl Fn(&Self) -> bool) {
        while !done(self) && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
    }
}

impl Core {
    /// Tells every run still going to stop (async runs; sync callbacks
    /// have no signal).
    fn cancel_runs(&self) {
        #[cfg(feature = "tokio")]
        self.cancel_all();
    }
}

#[cfg(feature = "tokio")]
impl RunnerHandle {
    /// [`shutdown_graceful`](Self::shutdown_graceful) for async code: the
    /// waiting happens on tokio's blocking pool, never on a runtime worker,
    /// so the runs being waited for keep being polled (also on a
    /// current-thread runtime). Must be awaited on a tokio runtime.
    pub async fn shutdown_async(self, grace: Duration) -> ShutdownReport {
        match ::tokio::task::spawn_blocking(move || self.shutdown_graceful(grace)).await {
            Ok(report) => report,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => {
                // The runtime is shutting down; the handle was dropped on
                // the blocking pool, which stopped the runner anyway.
                tracing::warn!("cronlane: shutdown_async was cancelled: {e}");
                ShutdownReport::default()
            }
        }
    }

    /// Runs until `signal` completes, then shuts down in order
    /// ([`shutdown_async`](Self::shutdown_async)). Also returns if the
    /// runner stops on its own (a [`Stopper`]).
    pub async fn run_until<F: std::future::Future>(
        self,
        signal: F,
        grace: Duration,
    ) -> ShutdownReport {
        either(signal, self.stopped_async()).await;
        self.shutdown_async(grace).await
    }

    /// Runs until the process gets SIGINT (Ctrl-C) or, on Unix, SIGTERM,
    /// then shuts down in order. Needs a runtime with its I/O driver
    /// (`enable_all`, as `#[tokio::main]` builds).
    pub async fn run_until_signal_async(
        self,
        grace: Duration,
    ) -> Result<ShutdownReport, crate::Error> {
        let signal = termination()?;
        Ok(self.run_until(signal, grace).await)
    }

    /// Blocks until the process gets SIGINT (Ctrl-C) or, on Unix, SIGTERM,
    /// then shuts down in order ([`shutdown_graceful`](Self::shutdown_graceful)).
    /// For a sync `main`: it waits on a small private runtime, and
    /// fails with [`Error::Signal`](crate::Error::Signal) if called on a
    /// tokio runtime (use `run_until_signal_async` there).
    pub fn run_until_signal(self, grace: Duration) -> Result<ShutdownReport, crate::Error> {
        if ::tokio::runtime::Handle::try_current().is_ok() {
            return Err(crate::Error::Signal(
                "run_until_signal blocks: on a tokio runtime, await run_until_signal_async".into(),
            ));
        }
        let rt = ::tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| crate::Error::Signal(e.to_string()))?;
        let stopper = self.stopper();
        let done = self.done.clone();
        rt.block_on(async move {
            let signal = termination()?;
            let stopped = async move {
                while !finished(&done) {
                    ::tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            either(signal, stopped).await;
            // A signal, or the runner stopped by itself: stop (a no-op then).
            stopper.stop();
            Ok::<(), crate::Error>(())
        })?;
        Ok(self.shutdown_graceful(grace))
    }

    /// Completes once the runner thread has exited: a wait on the
    /// blocking pool (no timer needed), which ends at the latest when the
    /// shutdown that follows has stopped the runner.
    fn stopped_async(&self) -> impl std::future::Future<Output = ()> + 'static {
        let done = self.done.clone();
        let waiter = ::tokio::task::spawn_blocking(move || block_until_finished(&done));
        async move {
            let _ = waiter.await;
        }
    }
}

/// SIGINT or (Unix) SIGTERM, whichever comes first; the handlers are
/// installed now, so a signal that arrives before the future is polled is
/// not missed.
#[cfg(feature = "tokio")]
fn termination() -> Result<impl std::future::Future<Output = ()>, crate::Error> {
    let err = |e: std::io::Error| crate::Error::Signal(e.to_string());
    #[cfg(unix)]
    let mut term = ::tokio::signal::unix::signal(::tokio::signal::unix::SignalKind::terminate())
        .map_err(err)?;
    #[cfg(unix)]
    let mut int = ::tokio::signal::unix::signal(::tokio::signal::unix::SignalKind::interrupt())
        .map_err(err)?;
    Ok(async move {
        #[cfg(unix)]
        {
            either(term.recv(), int.recv()).await;
            tracing::info!("cronlane: SIGINT or SIGTERM: shutting down");
        }
        #[cfg(not(unix))]
        {
            let _ = ::tokio::signal::ctrl_c().await;
            tracing::info!("cronlane: Ctrl-C: shutting down");
        }
    })
}

/// Completes when either future does (the other is dropped).
#[cfg(feature = "tokio")]
pub(crate) async fn either<A: std::future::Future, B: std::future::Future>(a: A, b: B) {
    use std::task::Poll;
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(|cx| {
        if a.as_mut().poll(cx).is_ready() || b.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

/// Whether the runner thread has set its `done` flag.
fn finished(done: &(std::sync::Mutex<bool>, std::sync::Condvar)) -> bool {
    *done
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Blocks until the runner thread sets its `done` flag.
fn block_until_finished(done: &(std::sync::Mutex<bool>, std::sync::Condvar)) {
    let (lock, cv) = done;
    let mut flag = lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    while !*flag {
        flag = cv
            .wait(flag)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}
