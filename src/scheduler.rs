//! The public [`Scheduler`] handle: registration, management, queries and
//! `run_pending`.
//!
//! `Scheduler` is a cheap, cloneable handle on a shared `Core`. Registration
//! resolves the schedule, allocates the task and pushes it on the intake queue
//! (plus, for a named task, one insert into the name index). `run_pending`
//! works in three phases with no shared state held across them: collect due
//! fires (draining intake, claiming timeline entries), run them through the
//! dispatcher, and put recurring tasks back. Management calls (remove, pause,
//! resume, reschedule) settle races with firing threads through each task's
//! state word; see [`crate::task`] for the states.

use crate::builder::SchedulerBuilder;
use crate::clock::Clock;
use crate::dispatch::{Dispatch, Dispatcher, Job};
use crate::error::Error;
use crate::events::Listener;
use crate::policy::{Misfire, Overlap};
use crate::registry::{NameClaim, Registry};
use crate::report::{info, next_fire, RunReport, Stats, StatsCells, TaskInfo};
use crate::runner::{RunnerHandle, RunnerSignal};
use crate::schedule::Schedule;
use crate::stats::{Histogram, Policies, TaskStats};
use crate::sync::{AtomicU64, AtomicUsize, HandleArc as Arc, Ordering};
use crate::task::{Callback, FireContext, Task, TaskId, TaskRef, TaskResult};
use crate::timeline::{Claimed, Timeline};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::fmt;
use std::time::Duration;

/// How many fires one pass of `run_pending` collects before running them.
const BATCH: usize = 1024;

/// The scheduler: register tasks, then call [`run_pending`](Self::run_pending)
/// (or [`start`](Self::start) a background runner).
///
/// Cloning gives another handle on the same scheduler.
///
/// ```
/// use cronlane::{Dispatcher, Scheduler};
/// let scheduler = Scheduler::new(Dispatcher::default());
/// scheduler.register_task("minute_task", "* * * * *", || println!("Task executed!"))?;
/// scheduler.run_pending();
/// # Ok::<(), cronlane::Error>(())
/// ```
#[derive(Clone)]
pub struct Scheduler {
    pub(crate) core: Arc<Core>,
}

/// The shared state behind every [`Scheduler`] handle.
pub(crate) struct Core {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) timeline: Timeline,
    pub(crate) registry: Registry,
    pub(crate) dispatch: Dispatch,
    pub(crate) tz: Tz,
    pub(crate) test_mode: bool,
    pub(crate) seal: crate::seal::Sealer,
    /// The next task id; ids start at 1, so `next_id - 1` ids were taken.
    pub(crate) next_id: AtomicU64,
    /// Tasks that took an id and are not live: removed, finished, or whose
    /// registration failed after taking it. `len()` is `next_id - 1 - gone`:
    /// registration pays no counter of its own besides the id.
    pub(crate) gone: AtomicU64,
    /// Jobs handed to a pool or executor and not finished.
    pub(crate) jobs: AtomicUsize,
    pub(crate) stats: StatsCells,
    pub(crate) runner: RunnerSignal,
    /// Misfire grace period, nanoseconds.
    pub(crate) grace: i64,
    /// Default misfire policy.
    pub(crate) misfire: Misfire,
    /// Jitter seed.
    pub(crate) seed: u64,
    pub(crate) listener: Option<Arc<dyn Listener>>,
    /// Fire lag of every run.
    pub(crate) lag: Histogram,
}

/// Says which task a management call is about: a [`TaskId`] or a name.
pub trait TaskKey {
    /// The key in a form the scheduler can look up.
    fn task_key(&self) -> KeyRef<'_>;
}

/// A borrowed task key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef<'a> {
    /// By id.
    Id(TaskId),
    /// By name.
    Name(&'a str),
}

impl TaskKey for TaskId {
    fn task_key(&self) -> KeyRef<'_> {
        KeyRef::Id(*self)
    }
}

impl TaskKey for &str {
    fn task_key(&self) -> KeyRef<'_> {
        KeyRef::Name(self)
    }
}

impl TaskKey for String {
    fn task_key(&self) -> KeyRef<'_> {
        KeyRef::Name(self)
    }
}

impl TaskKey for &String {
    fn task_key(&self) -> KeyRef<'_> {
        KeyRef::Name(self)
    }
}

/// Registers one task: name it, choose replacement, then give the callback.
#[must_use = "a task is registered only by .run(..) or .run_with_context(..)"]
pub struct TaskBuilder<'s> {
    scheduler: &'s Scheduler,
    schedule: Schedule,
    name: Option<String>,
    replace: bool,
    payload: Option<Vec<u8>>,
    misfire: Option<Misfire>,
    overlap: Overlap,
    jitter: Duration,
}

impl TaskBuilder<'_> {
    /// This task's misfire policy (default: the scheduler's, itself
    /// [`Misfire::FireOnce`] unless the builder says otherwise).
    pub fn misfire(mut self, policy: Misfire) -> Self {
        self.misfire = Some(policy);
        self
    }

    /// This task's overlap policy (default [`Overlap::Skip`]).
    pub fn overlap(mut self, policy: Overlap) -> Self {
        self.overlap = policy;
        self
    }

    /// Delays each fire by a random amount up to `max` after its scheduled
    /// instant, to spread load. The callback still sees the scheduled
    /// instant ([`FireContext::scheduled`]); the delays are deterministic for
    /// a given [`SchedulerBuilder::jitter_seed`].
    pub fn jitter(mut self, max: Duration) -> Self {
        self.jitter = max;
        self
    }

    /// The task's unique name. Without one the task is anonymous (managed by
    /// id only) and registration skips the name index.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// If a task with this name exists, remove it and take its place
    /// (default: registering a taken name is an error).
    pub fn replace_existing(mut self) -> Self {
        self.replace = true;
        self
    }

    /// Bytes handed to the callback at each fire through
    /// [`FireContext::payload`]. In production mode they are sealed at
    /// registration (the buffer given here is wiped) and opened only for the
    /// moment a fire runs; registration fails with [`Error::NoKey`] if the
    /// scheduler has no key ring. In test mode they are kept in the clear.
    /// See `docs/seal.md`.
    pub fn payload(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.payload = Some(bytes.into());
        self
    }

    /// Registers with a zero-argument callback.
    pub fn run<F, R>(self, f: F) -> Result<TaskId, Error>
    where
        F: Fn() -> R + Send + Sync + 'static,
        R: TaskResult,
    {
        self.run_with_context(move |_: &FireContext<'_>| f())
    }

    /// Registers with a callback that receives the [`FireContext`].
    pub fn run_with_context<F, R>(self, f: F) -> Result<TaskId, Error>
    where
        F: Fn(&FireContext<'_>) -> R + Send + Sync + 'static,
        R: TaskResult,
    {
        let callback: Callback = Box::new(move |ctx| f(ctx).into_outcome());
        let core = &self.scheduler.core;
        core.register(self, callback)
    }
}

impl Scheduler {
    /// A scheduler with the given dispatcher and every other setting at its
    /// default (system clock, UTC). Use [`Scheduler::builder`] for the rest.
    pub fn new(dispatcher: Dispatcher) -> Scheduler {
        Scheduler::builder().dispatcher(dispatcher).build()
    }

    /// The builder.
    pub fn builder() -> SchedulerBuilder {
        SchedulerBuilder::default()
    }

    pub(crate) fn from_core(core: Arc<Core>) -> Scheduler {
        Scheduler { core }
    }

    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// The seed's call: a named task on a Vixie-cron expression, evaluated in
    /// the default time zone.
    pub fn register_task<F, R>(&self, name: &str, cron: &str, f: F) -> Result<TaskId, Error>
    where
        F: Fn() -> R + Send + Sync + 'static,
        R: TaskResult,
    {
        self.add(Schedule::cron(cron)?).name(name).run(f)
    }

    /// Starts registering a task on `schedule`; finish with `.run(..)`.
    pub fn add(&self, schedule: Schedule) -> TaskBuilder<'_> {
        TaskBuilder {
            scheduler: self,
            schedule,
            name: None,
            replace: false,
            payload: None,
            misfire: None,
            overlap: Overlap::default(),
            jitter: Duration::ZERO,
        }
    }

    /// Fires every task that is due now, each exactly once across all threads
    /// calling this concurrently. Tasks registered or rescheduled by the
    /// callbacks of this call are left for the next call.
    pub fn run_pending(&self) -> RunReport {
        self.core.run_pending(None)
    }

    /// Removes a task (by [`TaskId`] or name). Once this returns `Ok`, the task
    /// never starts another run; a run already in progress completes.
    pub fn remove(&self, key: impl TaskKey) -> Result<(), Error> {
        let task = self.core.find(key.task_key())?;
        self.core.remove(&task).map_err(|()| key_error(&task))
    }

    /// Pauses a task: it will not fire until [`resume`](Self::resume)d.
    /// Pausing a paused task is a no-op.
    pub fn pause(&self, key: impl TaskKey) -> Result<(), Error> {
        let task = self.core.find(key.task_key())?;
        self.core.pause(&task).map_err(|()| key_error(&task))
    }

    /// Resumes a paused task: a recurring task fires next at its first
    /// instant after now (instants missed while paused are skipped); a
    /// one-shot whose instant passed fires at once.
    pub fn resume(&self, key: impl TaskKey) -> Result<(), Error> {
        let task = self.core.find(key.task_key())?;
        self.core.resume(&task).map_err(|()| key_error(&task))
    }

    /// Gives a task a new schedule, effective from now. A run in progress
    /// completes; the next fire follows the new schedule.
    pub fn reschedule(&self, key: impl TaskKey, schedule: Schedule) -> Result<(), Error> {
        let task = self.core.find(key.task_key())?;
        let now = self.core.clock.now_nanos();
        let (plan, first) = schedule.resolve(now, self.core.tz)?;
        self.core
            .reschedule(&task, plan, first)
            .map_err(|()| key_error(&task))
    }

    /// The task's next fire instant (`None` while paused or running).
    pub fn next_fire(&self, key: impl TaskKey) -> Result<Option<DateTime<Utc>>, Error> {
        let task = self.core.find(key.task_key())?;
        Ok(next_fire(&task))
    }

    /// A snapshot of one task.
    pub fn info(&self, key: impl TaskKey) -> Result<TaskInfo, Error> {
        let task = self.core.find(key.task_key())?;
        info(&task).ok_or_else(|| key_error(&task))
    }

    /// One task's statistics: runs, failures, skips, misfires, last run, last
    /// error and its fire-lag distribution.
    pub fn task_stats(&self, key: impl TaskKey) -> Result<TaskStats, Error> {
        let task = self.core.find(key.task_key())?;
        Ok(task.extras().map(|e| e.snapshot()).unwrap_or_default())
    }

    /// A snapshot of every live task, ordered by id. One-shots whose fire is
    /// already under way are not listed.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.core.live_tasks().iter().filter_map(info).collect()
    }

    /// Live tasks: registered and neither removed nor finished (a one-shot
    /// counts until its run ends).
    pub fn len(&self) -> usize {
        self.core.live()
    }

    /// True when no task is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Totals of fires, failures and skips since the scheduler was built.
    pub fn stats(&self) -> Stats {
        self.core.stats.snapshot(self.core.lag.summary())
    }

    /// The scheduler's clock reading.
    pub fn now(&self) -> DateTime<Utc> {
        self.core.clock.now()
    }

    /// Whether the scheduler was built in test mode.
    pub fn is_test_mode(&self) -> bool {
        self.core.test_mode
    }

    /// Starts the background runner: a thread that fires tasks on time, parks
    /// until the earliest fire instant and is woken early when a task due
    /// sooner is registered. Stop it with [`RunnerHandle::shutdown`] (dropping
    /// the handle shuts down too). One runner per scheduler.
    pub fn start(&self) -> Result<RunnerHandle, Error> {
        RunnerHandle::start(self.core.clone())
    }
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("live", &self.len())
            .field("time_zone", &self.core.tz)
            .finish_non_exhaustive()
    }
}

fn key_error(task: &Task) -> Error {
    match task.name() {
        Some(n) => Error::NoSuchName(n.to_string()),
        None => Error::NoSuchId(task.id),
    }
}

impl Core {
    pub(crate) fn find(&self, key: KeyRef<'_>) -> Result<TaskRef, Error> {
        match key {
            KeyRef::Name(name) => self
                .registry
                .by_name(name)
                .ok_or_else(|| Error::NoSuchName(name.to_owned())),
            KeyRef::Id(id) => {
                let look = || self.timeline.probe(id).or_else(|| self.registry.by_id(id));
                if let Some(t) = look() {
                    return Ok(t);
                }
                // It may still be in the intake queue: settle and look again.
                self.timeline.settle(self.clock.now_nanos(), &self.registry);
                look().ok_or(Error::NoSuchId(id))
            }
        }
    }

    pub(crate) fn stats(&self) -> &StatsCells {
        &self.stats
    }

    /// Every live task once, ordered by id (settles the intake first).
    pub(crate) fn live_tasks(&self) -> Vec<TaskRef> {
        self.timeline.settle(self.clock.now_nanos(), &self.registry);
        let mut out = Vec::new();
        self.registry.for_each(|t| out.push(t.clone()));
        self.registry
            .for_each_named_unindexed(|t| out.push(t.clone()));
        self.timeline.for_each_unindexed(|t| out.push(t.clone()));
        out.retain(|t| !t.is_removed());
        out.sort_by_key(|t| t.id);
        out.dedup_by_key(|t| t.id);
        out
    }

    /// Called once per task, by whoever set `REMOVED`; `unlink` when the
    /// task may still have an entry on the timeline.
    pub(crate) fn cleanup(&self, task: &TaskRef, unlink: bool) {
        if unlink && self.timeline.unlink(task) {
            self.runner.wake();
        }
        self.registry.forget(task);
        self.gone.fetch_add(1, Ordering::AcqRel);
    }

    /// Live tasks (see [`Core::gone`]).
    pub(crate) fn live(&self) -> usize {
        // `gone` first: every task counted in it took its id before (and
        // that happened before its clean-up), so the later read of
        // `next_id` covers it and `taken >= gone`. A task cleaned up twice (a
        // protocol bug) would break that: wrapping makes it show as an
        // absurd count, which the loom models check, instead of hiding it.
        let gone = self.gone.load(Ordering::Acquire);
        let taken = self.next_id.load(Ordering::Acquire) - 1;
        usize::try_from(taken.wrapping_sub(gone)).unwrap_or(usize::MAX)
    }

    pub(crate) fn job_started(&self) {
        self.jobs.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn job_ended(&self) {
        self.jobs.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn jobs_in_flight(&self) -> usize {
        self.jobs.load(Ordering::Acquire)
    }

    fn register(&self, spec: TaskBuilder<'_>, callback: Callback) -> Result<TaskId, Error> {
        // The bulk case first: an anonymous one-shot (at an instant or after
        // a delay) with default policies and no payload needs no schedule
        // resolution, jitter, seal or name work (the general path below would
        // come to the same task).
        let plain = spec.name.is_none()
            && spec.payload.is_none()
            && spec.misfire.unwrap_or(self.misfire) == Misfire::default()
            && spec.overlap == Overlap::default()
            && spec.jitter.is_zero();
        if plain {
            if let Some(at) = spec.schedule.one_shot_instant(|| self.clock.now_nanos()) {
                let id = TaskId::new(self.next_id.fetch_add(1, Ordering::Relaxed), at);
                let plan = crate::schedule::Plan::Once(at);
                let policies = Policies::default();
                let task = TaskRef::new(Task::new(id, None, plan, callback, None, policies));
                return Ok(self.publish(task, at));
            }
        }
        let TaskBuilder {
            schedule,
            name,
            replace,
            payload,
            misfire,
            overlap,
            jitter,
            ..
        } = spec;
        if name.as_deref() == Some("") {
            return Err(Error::EmptyName);
        }
        if payload.is_some() && !self.test_mode && !self.seal.has_ring() {
            return Err(Error::NoKey);
        }
        let now = self.clock.now_nanos();
        let (plan, first) = schedule.resolve(now, self.tz)?;
        let policies = Policies {
            misfire: misfire.unwrap_or(self.misfire),
            overlap,
            jitter: crate::clock::duration_nanos(jitter),
        };
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let due = first.saturating_add(crate::policy::jitter(self.seed, n, first, policies.jitter));
        let id = TaskId::new(n, due);
        let payload = match payload
            .map(|p| self.seal.payload(p, self.test_mode, id, name.as_deref()))
            .transpose()
        {
            Ok(p) => p,
            Err(e) => {
                self.gone.fetch_add(1, Ordering::AcqRel);
                return Err(e);
            }
        };
        let name = name.map(std::sync::Arc::from);
        let task = TaskRef::new(Task::new(id, name, plan, callback, payload, policies));
        if task.name().is_some() {
            match self.registry.claim_name(&task, replace) {
                (NameClaim::Taken, _) => {
                    self.gone.fetch_add(1, Ordering::AcqRel);
                    let name = task.name().unwrap_or_default().to_owned();
                    return Err(Error::DuplicateName(name));
                }
                (NameClaim::Claimed, Some(old)) => {
                    // Replaced: the old task stops firing; a race with its
                    // own removal elsewhere is fine either way.
                    let _ = self.remove(&old);
                }
                (NameClaim::Claimed, None) => {}
            }
        }
        Ok(self.publish(task, first))
    }

    /// Puts a new task in the intake (first scheduled at `first`) and wakes
    /// the runner if it is due sooner than anything the runner knows of.
    #[inline]
    fn publish(&self, task: TaskRef, first: i64) -> TaskId {
        let id = task.id;
        if self.timeline.push_new(task, first) {
            self.runner.wake();
        }
        id
    }

    /// The three phases, batch by batch: collect due fires, run them, put
    /// recurring tasks back (done by each fire's `finish`). With `stop`, fires
    /// not yet started when it is raised are released, not lost.
    pub(crate) fn run_pending(self: &Arc<Self>, stop: Option<&RunnerSignal>) -> RunReport {
        let now = self.clock.now_nanos();
        let limit = self.timeline.seq_limit();
        // Only what was registered before this call: callbacks' registrations
        // wait for the next one.
        let mut intake = self.timeline.intake_budget();
        let mut report = RunReport::default();
        let mut batch: Vec<Claimed> = Vec::new();
        loop {
            if !intake.is_spent() {
                self.timeline
                    .drain(now, &self.registry, Some(&mut batch), &mut intake, BATCH);
            }
            // A run's rest went back under an instant the runner may have
            // missed while it was off the timeline: wake it, unless this
            // is the runner (the only caller with `stop`), which looks at
            // the timeline again before it parks.
            if self.timeline.claim_due(now, limit, &mut batch, BATCH) && stop.is_none() {
                self.runner.wake();
            }
            if batch.is_empty() {
                if intake.is_spent() {
                    break;
                }
                continue;
            }
            for claimed in batch.drain(..) {
                if stop.is_some_and(RunnerSignal::stop_raised) {
                    self.release(claimed);
                    report.skipped += 1;
                    continue;
                }
                self.dispatch(claimed, &mut report);
            }
        }
        self.stats.add(&report);
        report
    }

    fn dispatch(self: &Arc<Self>, claimed: Claimed, report: &mut RunReport) {
        match &self.dispatch {
            Dispatch::Inline => report.add(self.execute(claimed, true)),
            Dispatch::Pool(pool) => {
                report.dispatched += 1;
                pool.submit(Job::new(self.clone(), claimed));
            }
            Dispatch::Executor(e) => {
                report.dispatched += 1;
                e.execute(Job::new(self.clone(), claimed));
            }
        }
    }
}
