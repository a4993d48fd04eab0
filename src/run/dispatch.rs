//! Where callbacks run: inline, on a worker pool, or on the user's executor.
//!
//! A fire leaves `run_pending` as a [`Job`]: the claimed task, its scheduled
//! instant and its generation. Running a job starts the task (a removal that
//! got in first wins), runs the callback with panics caught, and puts a
//! recurring task back on the timeline. A job dropped without being run is
//! not lost: it is released (counted as skipped) and a recurring task is
//! rescheduled as if the run had happened.
//!
//! No allocation per fire: a job is a few words moved by value.
//!
//! # Ground rules
//!
//! * A pool's queue is bounded: a thread that calls `run_pending` waits
//!   while it is full (back-pressure), because the pool's workers drain it.
//! * A worker thread never waits on a pool's queue. A callback may call
//!   `ctx.scheduler().run_pending()` (the README promises that this does not
//!   deadlock); on a worker, that call's fires go to the queue only if there
//!   is room, and otherwise run there and then, on the worker. A worker that
//!   waited could wait forever: the only threads that drain the queue are
//!   the workers, and every one of them may be inside such a call. Running
//!   inline is back-pressure too (the callback's `run_pending` returns once
//!   its fires ran).
//! * A user [`Executor`] is held to the same rule; see its documentation.

use crate::engine::timeline::Claimed;
use crate::run::core::Core;
use crate::run::fire::Begun;
use crate::run::report::Outcome;
use crate::sync::HandleArc as Arc;
use crossbeam_channel::TrySendError;
use crossbeam_channel::{Receiver, Sender};
use std::cell::Cell;
use std::fmt;
use std::sync::OnceLock;

thread_local! {
    /// Set on the worker threads of every pool: they never wait on a
    /// pool's queue (see the ground rules).
    static WORKER: Cell<bool> = const { Cell::new(false) };
}

/// Runs jobs somewhere else than the thread calling `run_pending`.
///
/// Each job handed to [`execute`](Executor::execute) must be run (or
/// dropped, which releases it) exactly once. Blocking inside `execute` is how
/// an executor applies back-pressure; a job must never be silently discarded.
///
/// # Re-entrant calls
///
/// A callback may call `ctx.scheduler().run_pending()`, so `execute` may be
/// called from inside a job, on one of the executor's own threads. Such a
/// call must not wait for capacity that only the executor's own threads can
/// free: they may all be inside such calls, and none would return. When
/// `execute` is called on one of its own threads and has no room, an
/// executor runs the job there and then ([`Job::run`]) or queues it without
/// a bound. [`Dispatcher::pool`] does the first.
///
/// ```
/// use cronlane::{Dispatcher, Executor, Job, ManualClock, Schedule, Scheduler};
/// use std::time::Duration;
///
/// /// Runs every job on a fresh thread (a real executor would reuse threads).
/// struct ThreadPerJob;
///
/// impl Executor for ThreadPerJob {
///     fn execute(&self, job: Job) {
///         std::thread::spawn(move || job.run());
///     }
/// }
///
/// let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
/// let s = Scheduler::builder()
///     .clock(clock.clone())
///     .dispatcher(Dispatcher::executor(ThreadPerJob))
///     .build();
/// s.add(Schedule::every(Duration::from_secs(1))).run(|| ())?;
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(s.run_pending().dispatched, 1); // handed to the executor
/// # Ok::<(), cronlane::Error>(())
/// ```
pub trait Executor: Send + Sync + 'static {
    /// Runs `job`, now or later, on any thread.
    fn execute(&self, job: Job);
}

/// One claimed fire, ready to run. Call [`Job::run`].
///
/// ```
/// use cronlane::{Dispatcher, Executor, Job, ManualClock, Schedule, Scheduler};
/// use std::sync::Mutex;
/// use std::time::Duration;
///
/// /// Keeps jobs until the test runs them.
/// #[derive(Default)]
/// struct Held(std::sync::Arc<Mutex<Vec<Job>>>);
///
/// impl Executor for Held {
///     fn execute(&self, job: Job) {
///         self.0.lock().unwrap().push(job);
///     }
/// }
///
/// let held = Held::default();
/// let jobs = held.0.clone();
/// let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
/// let s = Scheduler::builder()
///     .clock(clock.clone())
///     .dispatcher(Dispatcher::executor(held))
///     .build();
/// s.add(Schedule::after(Duration::from_secs(1))).run(|| ())?;
/// clock.advance(Duration::from_secs(1));
/// s.run_pending();
/// let job = jobs.lock().unwrap().pop().expect("one job");
/// job.run(); // the callback runs here, on this thread
/// assert_eq!(s.stats().succeeded, 1);
/// # Ok::<(), cronlane::Error>(())
/// ```
pub struct Job {
    inner: Option<(Arc<Core>, Stage)>,
}

/// How far a job's fire got before the hand-off.
enum Stage {
    /// Claimed; `run` starts it (the common case).
    Claimed(Claimed),
    /// Already started (a durable fire, claimed in the store before any
    /// callback of its pass); `run` calls the callback and completes it.
    Begun(Begun),
}

impl Job {
    pub(crate) fn new(core: Arc<Core>, claimed: Claimed) -> Job {
        core.job_started();
        Job {
            inner: Some((core, Stage::Claimed(claimed))),
        }
    }

    pub(crate) fn begun(core: Arc<Core>, begun: Begun) -> Job {
        core.job_started();
        Job {
            inner: Some((core, Stage::Begun(begun))),
        }
    }

    /// Runs the fire on the current thread (callback panics are caught).
    pub fn run(mut self) {
        if let Some((core, stage)) = self.inner.take() {
            let outcome = match stage {
                Stage::Claimed(claimed) => core.execute(claimed, true),
                Stage::Begun(begun) => {
                    let outcome = core.run_begun(begun);
                    if let Some(durable) = core.durable.as_deref() {
                        // A worker's completion is written now (concurrent
                        // writers share the store's commits).
                        let _ = durable.flush();
                    }
                    outcome
                }
            };
            core.stats().record(outcome);
            core.job_ended();
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some((core, stage)) = self.inner.take() {
            let outcome = match stage {
                Stage::Claimed(claimed) => {
                    tracing::warn!(task = %claimed.task.id, "cronlane: job dropped without running; released");
                    core.execute(claimed, false)
                }
                Stage::Begun(begun) => {
                    // Started (its store claim is written): it completes
                    // without its callback, counted as skipped.
                    tracing::warn!(task = %begun.task.id, "cronlane: job dropped without running; its fire is skipped");
                    core.skipped(
                        &begun.task,
                        begun.scheduled,
                        crate::policy::SkipReason::Cancelled,
                        1,
                        true,
                    );
                    core.complete(begun, Outcome::Skipped)
                }
            };
            core.stats().record(outcome);
            core.job_ended();
        }
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (task, scheduled) = match &self.inner {
            Some((_, Stage::Claimed(c))) => (c.task.id, c.scheduled),
            Some((_, Stage::Begun(b))) => (b.task.id, b.scheduled),
            None => return f.write_str("Job(done)"),
        };
        f.debug_struct("Job")
            .field("task", &task)
            .field("scheduled", &crate::clock::from_nanos(scheduled))
            .finish()
    }
}

/// Where callbacks run. Chosen once, at build time.
///
/// ```
/// use cronlane::{Dispatcher, Scheduler};
///
/// let inline = Scheduler::new(Dispatcher::inline()); // on the caller of run_pending
/// let pooled = Scheduler::new(Dispatcher::pool(4));  // on 4 worker threads
/// // Dispatcher::executor(e) hands each fire to your own `Executor`.
/// # let _ = (inline, pooled);
/// ```
#[derive(Clone, Default)]
pub struct Dispatcher {
    kind: Kind,
}

#[derive(Clone, Default)]
enum Kind {
    #[default]
    Inline,
    Pool {
        threads: usize,
        queue: usize,
    },
    Executor(Arc<dyn Executor>),
}

impl Dispatcher {
    /// Callbacks run on the thread that called `run_pending` (the default).
    pub fn inline() -> Dispatcher {
        Dispatcher { kind: Kind::Inline }
    }

    /// Callbacks run on `threads` worker threads fed through a bounded queue
    /// (`threads * 256` jobs). When the queue is full, `run_pending` waits:
    /// back-pressure, never a dropped fire. A `run_pending` called by a
    /// callback (on a worker) never waits for the queue: when it is full,
    /// that call runs the fire on the worker itself. `threads` is at least 1.
    pub fn pool(threads: usize) -> Dispatcher {
        let threads = threads.max(1);
        Dispatcher {
            kind: Kind::Pool {
                threads,
                queue: threads * 256,
            },
        }
    }

    /// Callbacks run on a user-supplied executor.
    pub fn executor(executor: impl Executor) -> Dispatcher {
        Dispatcher {
            kind: Kind::Executor(Arc::new(executor)),
        }
    }

    pub(crate) fn build(&self) -> Dispatch {
        match &self.kind {
            Kind::Inline => Dispatch::Inline,
            Kind::Pool { threads, queue } => Dispatch::Pool(Pool::new(*threads, *queue)),
            Kind::Executor(e) => Dispatch::Executor(e.clone()),
        }
    }
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Inline => f.write_str("Dispatcher::inline()"),
            Kind::Pool { threads, .. } => write!(f, "Dispatcher::pool({threads})"),
            Kind::Executor(_) => f.write_str("Dispatcher::executor(..)"),
        }
    }
}

/// The dispatcher at run time.
pub(crate) enum Dispatch {
    Inline,
    Pool(Pool),
    Executor(Arc<dyn Executor>),
}

/// A fixed pool of worker threads behind a bounded channel.
pub(crate) struct Pool {
    tx: Sender<Job>,
    rx: Receiver<Job>,
    /// Workers started (set once, on first use).
    workers: OnceLock<usize>,
    threads: usize,
}

impl Pool {
    fn new(threads: usize, queue: usize) -> Pool {
        let (tx, rx) = crossbeam_channel::bounded(queue);
        Pool {
            tx,
            rx,
            workers: OnceLock::new(),
            threads,
        }
    }

    /// Starts the workers (detached: each exits when the scheduler, which
    /// holds the sending side, is gone) and returns how many started. They
    /// need no scheduler reference: each job carries its own.
    fn spawn_workers(&self) -> usize {
        let mut started = 0;
        for i in 0..self.threads {
            let rx = self.rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("cronlane-worker-{i}"))
                .spawn(move || {
                    WORKER.with(|w| w.set(true));
                    while let Ok(job) = rx.recv() {
                        job.run();
                    }
                });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::error!("cronlane: cannot start worker thread: {e}"),
            }
        }
        started
    }

    pub(crate) fn submit(&self, job: Job) {
        // Workers start on first use, once.
        if *self.workers.get_or_init(|| self.spawn_workers()) == 0 {
            // No worker could start: run it here rather than block forever
            // on a queue nobody drains.
            job.run();
            return;
        }
        if WORKER.with(Cell::get) {
            // A callback's `run_pending` on a worker: never wait for the
            // queue, which only workers drain (see the ground rules).
            match self.tx.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => job.run(),
            }
            return;
        }
        if let Err(e) = self.tx.send(job) {
            // Unreachable while the pool holds `rx`; run it here rather than lose it.
            e.into_inner().run();
        }
    }
}
