//! Async jobs on tokio (feature `tokio`): spawning a claimed fire's future,
//! reporting its completion back to the engine, cancellation, and keeping
//! sync callbacks off runtime threads. User-facing guide: `docs/async.md`.
//!
//! # Ground rules
//!
//! * An async task is an engine task like any other: marked async
//!   ([`Task::mark_async`](crate::engine::task::Task::mark_async)), and its callback, called with a [`Slot`] as the fire
//!   context's host, hands out the task's [`AsyncJob`] (the user's future
//!   maker and the runtime handle) instead of running anything. Nothing
//!   below this module knows it is async. Called with any other host (no
//!   path of the run layer does that), it fails the fire loudly.
//! * A scheduler with no [`AsyncSide`] (no async task was ever registered
//!   and the builder was given no handle) never reaches this module: it
//!   pays one load per `run_pending` batch ([`Core::asynch`]). With one,
//!   each fire of the batch reads its task's async mark.
//! * An async fire is *begun* on the thread that claimed it (state word,
//!   misfire and collapse policies, cursor, `Overlap::Allow` bookkeeping:
//!   [`Core::begin`]) and then spawned. Its future does the callback's start
//!   bookkeeping at its first poll (the lag is measured then), runs the
//!   user's future with panics caught, and completes the fire
//!   ([`Core::complete`]: overlap, next entry, statistics, events) when it is
//!   done, on the runtime thread that polled it last. A fire whose future is
//!   dropped before it is done (its runtime shut down, or it was never
//!   polled) is completed by the drop guard ([`Fire`]): skipped if it never
//!   started, failed otherwise. No fire is lost.
//! * Each spawned fire counts in `Core::jobs` from spawn to completion, so
//!   every shutdown waits for it as for a pool's job.
//! * Cancellation is a broadcast: [`AsyncSide::notify`] wakes every waiting
//!   [`CancelSignal`] when an async task is removed and when a shutdown
//!   cancels; each waiter then checks its own condition (its task's job
//!   was marked cancelled, or the side's epoch moved past the fire's).
//!   Removals are rare next to fires, so the broadcast costs nothing on the
//!   fire path: a fire that never waits on its signal never registers.

use crate::engine::task::{FireContext, TaskRef};
use crate::engine::timeline::Claimed;
use crate::error::Error;
use crate::id::TaskId;
use crate::policy::SkipReason;
use crate::run::core::Core;
use crate::run::dispatch::{Dispatch, Job};
use crate::run::fire::{Begin, Begun};
use crate::run::lifecycle::either;
use crate::run::report::{Outcome, RunReport};
use crate::run::runner::{Driver, Exit, RunnerHandle, RunnerSignal, MAX_PARK};
use crate::sync::HandleArc as Arc;
use ::tokio::runtime::Handle;
use ::tokio::sync::Notify;
use chrono::{DateTime, Utc};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::task::{Context, Poll};
use tracing::Instrument;
use zeroize::Zeroizing;

/// What `run_async` was given, type-erased at the spawn: it spawns one
/// begun fire on the runtime (through [`Spawn::spawn_on`], which keeps the
/// user's future inline in the tokio task: no box of its own per fire).
pub(crate) type SpawnRun = Box<dyn Fn(Spawn, &Handle) + Send + Sync>;

/// The async side of a scheduler: created by
/// [`SchedulerBuilder::tokio_handle`](crate::SchedulerBuilder::tokio_handle)
/// or by the first `run_async`.
pub(crate) struct AsyncSide {
    /// The runtime fires are spawned on: the builder's, or else the one
    /// current at the first `run_async`. One per scheduler, so that a
    /// batch's fires are spawned together (see [`Core::spawn_all`]).
    pub(crate) handle: OnceLock<Handle>,
    /// Moved by every cancelling shutdown: a fire started under an older
    /// epoch is cancelled.
    epoch: AtomicU64,
    /// Wakes waiting cancel signals (see the ground rules).
    notify: Notify,
}

impl AsyncSide {
    pub(crate) fn new(handle: Option<Handle>) -> AsyncSide {
        AsyncSide {
            handle: handle.map_or_else(OnceLock::new, OnceLock::from),
            epoch: AtomicU64::new(0),
            notify: Notify::new(),
        }
    }
}

/// One async task's code: shared by its callback and its runs.
pub(crate) struct AsyncJob {
    spawn: SpawnRun,
    /// Set once, when the task is removed: its runs' signals fire.
    cancelled: AtomicBool,
}

impl AsyncJob {
    pub(crate) fn new(spawn: SpawnRun) -> AsyncJob {
        AsyncJob {
            spawn,
            cancelled: AtomicBool::new(false),
        }
    }
}

/// The host an async task's callback hands its job to (see the ground
/// rules). Built by the run layer only.
pub(crate) struct Slot(OnceLock<std::sync::Arc<AsyncJob>>);

impl Slot {
    /// Called by an async task's callback: hands out its job.
    pub(crate) fn offer(&self, job: &std::sync::Arc<AsyncJob>) {
        let _ = self.0.set(job.clone());
    }
}

/// The job of an async task (`None` for any other task).
fn async_job(task: &TaskRef) -> Option<std::sync::Arc<AsyncJob>> {
    if !task.is_async() {
        return None;
    }
    let slot = Slot(OnceLock::new());
    let ctx = FireContext {
        task,
        scheduled: 0,
        started: 0,
        host: &slot,
        payload: None,
    };
    let _ = task.run_callback(&ctx);
    slot.0.into_inner()
}

/// What an async run is told about its fire: an owned context, so the
/// future may keep it across `.await`s and move it into spawned tasks.
///
/// The payload, if the task has one, is a copy that is wiped when the
/// context is dropped.
pub struct AsyncContext {
    task: TaskRef,
    scheduled: i64,
    started: i64,
    payload: Option<Zeroizing<Vec<u8>>>,
    cancel: CancelSignal,
}

impl AsyncContext {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.task.id
    }

    /// The task's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.task.name()
    }

    /// The instant this fire was scheduled for.
    pub fn scheduled(&self) -> DateTime<Utc> {
        crate::clock::from_nanos(self.scheduled)
    }

    /// The instant the run started (its first poll, by the scheduler's clock).
    pub fn started(&self) -> DateTime<Utc> {
        crate::clock::from_nanos(self.started)
    }

    /// The task's payload, opened for this run (`None` if it has none): a
    /// copy in a buffer that is wiped when the context is dropped.
    pub fn payload(&self) -> Option<&[u8]> {
        self.payload.as_deref().map(Vec::as_slice)
    }

    /// This run's cancellation signal (clone it to hand it on).
    pub fn cancel(&self) -> &CancelSignal {
        &self.cancel
    }

    /// The scheduler's core (for `AsyncContext::scheduler`, in `api`).
    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.cancel.core
    }

    /// Whether this run was asked to stop (see [`CancelSignal`]).
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when this run is asked to stop (see [`CancelSignal`]).
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }
}

impl std::fmt::Debug for AsyncContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncContext")
            .field("id", &self.task.id)
            .field("name", &self.task.name())
            .field("scheduled", &self.scheduled())
            .finish_non_exhaustive()
    }
}

/// An async run's cancellation signal: it fires when the run's task is
/// removed (or replaced) and when a shutdown cancels the runs still going
/// after its grace period
/// ([`RunnerHandle::shutdown_graceful`](crate::RunnerHandle::shutdown_graceful)).
///
/// Cancellation is cooperative: nothing stops a run that does not look.
/// A run that ignores it goes on until it returns; its completion is
/// still recorded then (statistics, listener, next fire), and a shutdown
/// that returned before reports it as unfinished.
#[derive(Clone)]
pub struct CancelSignal {
    job: std::sync::Arc<AsyncJob>,
    core: Arc<Core>,
    epoch: u64,
}

impl CancelSignal {
    /// Whether the run was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        // Acquire: pairs with the Release of `remove` and `cancel_all`.
        self.job.cancelled.load(Ordering::Acquire)
            || self
                .core
                .asynch
                .get()
                .is_some_and(|s| s.epoch.load(Ordering::Acquire) != self.epoch)
    }

    /// Completes when the run is asked to stop (at once if it was).
    /// Cancel-safe: drop it and call it again at will.
    pub async fn cancelled(&self) {
        let Some(side) = self.core.asynch.get() else {
            // Unreachable (a run exists only on a scheduler with an async
            // side); never fire rather than fire for nothing.
            return std::future::pending().await;
        };
        loop {
            // Register first, then look: a cancel between the two wakes
            // this waiter (`notify_waiters` wakes registered ones).
            let mut notified = std::pin::pin!(side.notify.notified());
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

impl std::fmt::Debug for CancelSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelSignal")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// A spawned fire until it completes. Dropped unfinished (its runtime shut
/// down, or the future was never polled), it completes the fire itself.
struct Fire {
    core: Arc<Core>,
    begun: Option<Begun>,
    /// When the run started (its first poll).
    started: Option<i64>,
}

impl Fire {
    fn finish(mut self, outcome: Outcome) {
        if let Some(begun) = self.begun.take() {
            let outcome = self.core.complete(begun, outcome);
            self.core.stats().record(outcome);
            self.core.job_ended();
        }
    }
}

impl Drop for Fire {
    fn drop(&mut self) {
        let Some(begun) = self.begun.take() else {
            return;
        };
        let (task, scheduled) = (begun.task.clone(), begun.scheduled);
        let outcome = match self.started {
            None => {
                tracing::warn!(task = %task.id, "cronlane: async run dropped before it started (its runtime shut down); its fire is skipped");
                self.core
                    .skipped(&task, scheduled, SkipReason::Cancelled, 1, true);
                Outcome::Skipped
            }
            Some(started) => {
                let message =
                    "the run's future was dropped before it finished (its runtime shut down)";
                tracing::warn!(task = %task.id, "cronlane: {message}");
                self.core.failed(&task, scheduled, started, message, false);
                Outcome::Failed
            }
        };
        let outcome = self.core.complete(begun, outcome);
        self.core.stats().record(outcome);
        self.core.job_ended();
    }
}

/// A begun async fire and its task's job, ready to spawn.
pub(crate) struct Spawn {
    fire: Fire,
    job: std::sync::Arc<AsyncJob>,
}

impl Spawn {
    /// Spawns the run on `handle`, in its task's span; `make` gives its
    /// future (called at the first poll).
    pub(crate) fn spawn_on<M, Fut>(self, handle: &Handle, make: M)
    where
        M: FnOnce(AsyncContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let task = self.fire.begun.as_ref().map(|b| &b.task);
        let span = match task {
            Some(t) => {
                tracing::info_span!("cronlane.run", task = %t.id, name = t.name().unwrap_or(""))
            }
            None => tracing::Span::none(),
        };
        let run = run_fire(self.fire, self.job, make);
        // No subscriber wants the span: the run goes without its wrapper
        // (a smaller task to move into place, no enter/exit per poll).
        if span.is_disabled() {
            drop(handle.spawn(run));
        } else {
            drop(handle.spawn(run.instrument(span)));
        }
    }

    /// Hands the run to its task's code, which spawns it.
    fn spawn(self, handle: &Handle) {
        let job = self.job.clone();
        (job.spawn)(self, handle);
    }
}

/// Polls a run's future with panics caught.
struct CatchUnwind<'a, F>(Pin<&'a mut F>);

impl<F: Future> Future for CatchUnwind<'_, F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(r)) => Poll::Ready(Ok(r)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// One async fire, from its first poll to its completion.
async fn run_fire<M, Fut>(mut fire: Fire, job: std::sync::Arc<AsyncJob>, make: M)
where
    M: FnOnce(AsyncContext) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    // Borrowed, not cloned: the core's count is one cache line shared by
    // every thread that fires (the context takes one clone, for its
    // scheduler handle and signal).
    let core = &fire.core;
    let Some((task, scheduled, due)) = fire
        .begun
        .as_ref()
        .map(|b| (b.task.clone(), b.scheduled, b.due))
    else {
        return;
    };
    let started = core.clock.now_nanos();
    fire.started = Some(started);
    core.callback_started(&task, scheduled, due, started);
    // The payload is opened for the copy only; the copy is wiped with the
    // context.
    let payload = match core.open_payload(&task, scheduled, started) {
        Ok(opened) => opened.map(|o| Zeroizing::new(o.bytes().to_vec())),
        Err(()) => return fire.finish(Outcome::Failed),
    };
    let epoch = core
        .asynch
        .get()
        .map_or(0, |s| s.epoch.load(Ordering::Acquire));
    let ctx = AsyncContext {
        task: task.clone(),
        scheduled,
        started,
        payload,
        cancel: CancelSignal {
            job: job.clone(),
            core: core.clone(),
            epoch,
        },
    };
    let result = match catch_unwind(AssertUnwindSafe(|| make(ctx))) {
        Ok(fut) => {
            let fut = std::pin::pin!(fut);
            CatchUnwind(fut).await
        }
        Err(panic) => Err(panic),
    };
    let outcome = core.callback_ended(&task, scheduled, started, result);
    fire.finish(outcome);
}

impl Core {
    /// The async side, created now if this scheduler had none.
    pub(crate) fn async_side(&self) -> &AsyncSide {
        self.asynch.get_or_init(|| Box::new(AsyncSide::new(None)))
    }

    /// A pass's batch on a scheduler with an async side.
    pub(crate) fn dispatch_async(
        self: &Arc<Self>,
        batch: &mut Vec<Claimed>,
        report: &mut RunReport,
        stop: Option<&RunnerSignal>,
    ) {
        // Once per batch: whether this thread is a runtime's. The runner
        // (`stop`) on a runtime thread is a runner task on the scheduler's
        // runtime ([`drive`]): it spawns its runs from that worker.
        let current = Handle::try_current().ok();
        let local = stop.is_some() && current.is_some();
        let blocking = match self.dispatch {
            Dispatch::Inline => current,
            _ => None,
        };
        let mut spawns = Vec::new();
        for claimed in batch.drain(..) {
            if stop.is_some_and(RunnerSignal::stop_raised) {
                self.hand_back(claimed, report);
                continue;
            }
            if claimed.task.is_async() {
                spawns.extend(self.begin_async(claimed, report));
                continue;
            }
            self.dispatch_other(claimed, report, blocking.as_ref());
        }
        self.spawn_all(spawns, local);
    }

    /// The runtime whose blocking pool takes this thread's sync fires: on
    /// a runtime thread with inline dispatch, a sync callback would block
    /// the runtime, so it goes to `spawn_blocking` instead.
    pub(crate) fn blocking_handle(&self) -> Option<Handle> {
        match self.dispatch {
            Dispatch::Inline => Handle::try_current().ok(),
            _ => None,
        }
    }

    /// One fire on a scheduler with an async side: spawned if its task is
    /// async, to the blocking pool if `blocking`, else as usual.
    pub(crate) fn dispatch_one(
        self: &Arc<Self>,
        claimed: Claimed,
        report: &mut RunReport,
        blocking: Option<&Handle>,
    ) {
        if claimed.task.is_async() {
            let spawn = self.begin_async(claimed, report);
            return self.spawn_all(spawn.into_iter().collect(), false);
        }
        self.dispatch_other(claimed, report, blocking);
    }

    /// A sync fire on a scheduler with an async side: to the blocking pool
    /// if `blocking`, else as usual.
    fn dispatch_other(
        self: &Arc<Self>,
        claimed: Claimed,
        report: &mut RunReport,
        blocking: Option<&Handle>,
    ) {
        match blocking {
            Some(handle) => {
                report.dispatched += 1;
                let job = Job::new(self.clone(), claimed);
                // Dropped unrun (the runtime is shutting down), the job is
                // released, not lost.
                drop(handle.spawn_blocking(move || job.run()));
            }
            None => self.dispatch_sync(claimed, report),
        }
    }

    /// Begins an async task's fire: its run, ready to spawn.
    fn begin_async(self: &Arc<Self>, claimed: Claimed, report: &mut RunReport) -> Option<Spawn> {
        let begun = match self.begin(claimed) {
            Begin::Skipped => {
                report.add(Outcome::Skipped);
                return None;
            }
            Begin::Run(begun) => begun,
        };
        let Some(job) = async_job(&begun.task) else {
            // Not reachable: only `run_async` sets the flag.
            let message = "an async task without its job";
            self.failed(&begun.task, begun.scheduled, begun.started, message, false);
            report.add(self.complete(begun, Outcome::Failed));
            return None;
        };
        report.dispatched += 1;
        self.job_started();
        let fire = Fire {
            core: self.clone(),
            begun: Some(begun),
            started: None,
        };
        Some(Spawn { fire, job })
    }

    /// Spawns a batch's runs on the scheduler's runtime. From one of its
    /// workers (`local`: the runner task) each goes to that worker's own
    /// queue, no lock nor wake-up of its own. Else more than one go out in
    /// one task that spawns them from a runtime thread: one remote spawn (a
    /// lock and a wake-up) per batch instead of one per fire. Dropped
    /// unspawned (the runtime shut down), each run completes as skipped
    /// ([`Fire`]).
    fn spawn_all(&self, mut spawns: Vec<Spawn>, local: bool) {
        let Some(handle) = self.asynch.get().and_then(|s| s.handle.get()) else {
            // Not reachable: an async task registers only with a runtime.
            return;
        };
        if local {
            for one in spawns {
                one.spawn(handle);
            }
            return;
        }
        match spawns.len() {
            0 => {}
            1 => {
                if let Some(one) = spawns.pop() {
                    one.spawn(handle);
                }
            }
            _ => drop(handle.spawn(async move {
                let here = Handle::current();
                for one in spawns {
                    one.spawn(&here);
                }
            })),
        }
    }

    /// A removed task's runs are cancelled (called by `remove`).
    pub(crate) fn cancel_removed(&self, task: &TaskRef) {
        let Some(side) = self.asynch.get() else {
            return;
        };
        if let Some(job) = async_job(task) {
            // Release: pairs with the signals' Acquire loads.
            job.cancelled.store(true, Ordering::Release);
            side.notify.notify_waiters();
        }
    }

    /// Every async run started so far is cancelled (a shutdown past its
    /// grace period).
    pub(crate) fn cancel_all(&self) {
        if let Some(side) = self.asynch.get() {
            side.epoch.fetch_add(1, Ordering::AcqRel);
            side.notify.notify_waiters();
        }
    }
}

/// A runner task parks (on tokio's timer) until this long before the next
/// fire instant and yields to the runtime in a loop for the rest: tokio's
/// timer has a 1 ms granularity and fires up to a tick late, so the
/// yielding covers that tick and the wake-up. Costs at most this much of a
/// worker's time per fire instant, spent yielding: every other task of the
/// runtime is polled meanwhile.
pub const RUNTIME_SPIN_WINDOW: std::time::Duration = std::time::Duration::from_micros(1500);

impl RunnerHandle {
    /// Starts the runner as a task on the scheduler's runtime (see
    /// [`Scheduler::start_on_runtime`](crate::Scheduler::start_on_runtime)).
    pub(crate) fn start_on_runtime(core: Arc<Core>) -> Result<RunnerHandle, Error> {
        if core.durable.is_some() {
            // A store's claims and writes block: they stay on a thread.
            return RunnerHandle::start(core);
        }
        let side = core.async_side();
        if side.handle.get().is_none() {
            let current = Handle::try_current().map_err(|_| Error::NoRuntime)?;
            let _ = side.handle.set(current);
        }
        let Some(handle) = side.handle.get().cloned() else {
            return Err(Error::NoRuntime);
        };
        // The runner task parks on tokio's timer: without a time driver
        // that would panic in the task; refuse now instead.
        {
            let _in = handle.enter();
            let probe = catch_unwind(|| drop(::tokio::time::sleep(std::time::Duration::ZERO)));
            if probe.is_err() {
                return Err(Error::Spawn(
                    "the runtime has no time driver (build it with enable_time or enable_all)"
                        .into(),
                ));
            }
        }
        let mine = core.runner.register()?;
        let handed_base = core.runner.handed_back();
        let done = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let exit = TaskExit {
            core: core.clone(),
            mine,
            done: done.clone(),
        };
        drop(handle.spawn(drive(exit)));
        Ok(RunnerHandle {
            core,
            mine,
            done,
            join: Some(Driver::Task),
            handed_base,
        })
    }
}

/// A runner task's [`Exit`], owned: handed to [`drive`] as an argument, so
/// that it runs also when the task's future is dropped before its first
/// poll (its runtime shut down at once), when the body's locals do not
/// exist yet.
struct TaskExit {
    core: Arc<Core>,
    mine: u64,
    done: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl Drop for TaskExit {
    fn drop(&mut self) {
        drop(Exit {
            core: &self.core,
            mine: self.mine,
            done: &self.done,
        });
    }
}

/// The runner as a task: the loop of the runner thread (`run::runner`),
/// with tokio's timer and the runner's [`Notify`] for the park, and
/// [`RUNTIME_SPIN_WINDOW`] of yielding before each fire instant. Whatever
/// ends the task (return, panic, or its future dropped with its runtime,
/// polled or not), `exit` gives the registration back and tells
/// `shutdown`.
async fn drive(exit: TaskExit) {
    let core = &exit.core;
    while !core.runner.stop_raised() {
        // An insert after the turn's look lowers the hint again and
        // notifies (a kept permit if we are not waiting yet).
        let Some(wait) = core.runner_turn() else {
            break;
        };
        if wait <= RUNTIME_SPIN_WINDOW {
            // Due, or nearly: let the runtime poll its other tasks (the
            // runs just spawned among them), then look again.
            ::tokio::task::yield_now().await;
            continue;
        }
        let park = (wait - RUNTIME_SPIN_WINDOW).min(MAX_PARK);
        either(::tokio::time::sleep(park), core.runner.notify.notified()).await;
    }
}
