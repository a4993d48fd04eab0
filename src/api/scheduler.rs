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
//! state word; see [`crate::engine::task`] for the states.

use crate::api::builder::SchedulerBuilder;
use crate::engine::registry::NameClaim;
use crate::engine::task::{Callback, FireContext, Task, TaskRef, TaskResult};
use crate::error::Error;
use crate::id::{KeyRef, TaskId, TaskKey};
use crate::policy::{Misfire, Overlap};
use crate::run::core::Core;
use crate::run::dispatch::Dispatcher;
use crate::run::report::{info, next_fire, RunReport, Stats, TaskInfo};
use crate::run::runner::RunnerHandle;
use crate::schedule::Schedule;
use crate::stats::{Policies, TaskStats};
use crate::sync::{HandleArc as Arc, Ordering};
use chrono::{DateTime, Utc};
use std::fmt;
use std::time::Duration;

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

/// Registers one task: name it, choose replacement, then give the callback.
///
/// From [`Scheduler::add`]: the schedule first, then options, then the
/// callback, which registers the task and returns its [`TaskId`].
///
/// ```
/// use cronlane::{Misfire, Overlap, Schedule, Scheduler};
/// use std::time::Duration;
///
/// let s = Scheduler::builder().test_mode(true).build();
/// let id = s
///     .add(Schedule::every(Duration::from_secs(30)))
///     .name("poll")                         // unique; optional
///     .replace_existing()                   // take the name over if it is taken
///     .misfire(Misfire::CatchUp { max: 3 })
///     .overlap(Overlap::Queue)
///     .jitter(Duration::from_millis(500))
///     .times(100)                           // or .until(an instant)
///     .run_with_context(|ctx| {
///         println!("{:?} for {}", ctx.name(), ctx.scheduled());
///         Ok::<(), std::io::Error>(())      // Err is counted and logged
///     })?;
/// assert_eq!(s.info(id)?.name.as_deref(), Some("poll"));
/// # Ok::<(), cronlane::Error>(())
/// ```
#[must_use = "a task is registered only by .run(..) or .run_with_context(..)"]
pub struct TaskBuilder<'s> {
    pub(super) scheduler: &'s Scheduler,
    pub(super) schedule: Schedule,
    pub(super) name: Option<String>,
    pub(super) replace: bool,
    pub(super) payload: Option<Vec<u8>>,
    pub(super) misfire: Option<Misfire>,
    pub(super) overlap: Overlap,
    pub(super) jitter: Duration,
    pub(super) until: Option<DateTime<Utc>>,
    pub(super) times: Option<u64>,
    /// A durable task's handler (see [`TaskBuilder::durable`]).
    pub(super) handler: Option<String>,
    pub(super) delivery: crate::policy::Delivery,
}

impl TaskBuilder<'_> {
    /// Ends a recurring task: it fires at no instant after `end` (an
    /// instant equal to `end` still fires) and is then finished, as a
    /// one-shot is once it fired (APScheduler's `end_date`). A schedule whose
    /// first instant is already after `end` is [`Error::NeverFires`].
    pub fn until(mut self, end: DateTime<Utc>) -> Self {
        self.until = Some(end);
        self
    }

    /// Runs the task at most `n` times (callbacks started, failed or not),
    /// then it is finished (clokwerk's `.times(n)`). `times(0)` is
    /// [`Error::NeverFires`].
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

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
    /// Built without the `seal` feature, a production-mode scheduler refuses
    /// a payload with [`Error::SealingDisabled`] (test mode still takes it).
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
        // A durable builder (`.durable(..)`) is refused on the general path
        // (`Core::register_as`): a check here would make this generic
        // function too big to inline into every caller, which then moves
        // the whole builder into it per registration (issue 13).
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
            until: None,
            times: None,
            handler: None,
            delivery: crate::policy::Delivery::default(),
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
        let task = match self.core.find(key.task_key()) {
            Ok(task) => task,
            // A stored task waiting for its handler is removed from the store.
            Err(e) => return self.remove_unarmed(key.task_key()).unwrap_or(Err(e)),
        };
        if task.policies().durable.is_some() {
            return self.manage_durable(&task, key.task_key(), super::durable::Change::Remove);
        }
        self.core
            .remove(&task)
            .map_err(|()| key_error(key.task_key()))
    }

    /// Pauses a task: it will not fire until [`resume`](Self::resume)d.
    /// Pausing a paused task is a no-op.
    pub fn pause(&self, key: impl TaskKey) -> Result<(), Error> {
        let task = self.core.find(key.task_key())?;
        if task.policies().durable.is_some() {
            return self.manage_durable(&task, key.task_key(), super::durable::Change::Pause);
        }
        self.core
            .pause(&task)
            .map_err(|()| key_error(key.task_key()))
    }

    /// Resumes a paused task: a recurring task fires next at its first
    /// instant after now (instants missed while paused are skipped); a
    /// one-shot whose instant passed fires at once.
    pub fn resume(&self, key: impl TaskKey) -> Result<(), Error> {
        let task = self.core.find(key.task_key())?;
        if task.policies().durable.is_some() {
            return self.manage_durable(&task, key.task_key(), super::durable::Change::Resume);
        }
        self.core
            .resume(&task)
            .map_err(|()| key_error(key.task_key()))
    }

    /// Gives a task a new schedule, effective from now. A run in progress
    /// completes; the next fire follows the new schedule.
    pub fn reschedule(&self, key: impl TaskKey, schedule: Schedule) -> Result<(), Error> {
        let task = self.core.find(key.task_key())?;
        // Validated here (a schedule that never fires is an error and
        // changes nothing); the first instant is computed under the task's
        // guard (see `Core::reschedule`).
        let now = self.core.clock.now_nanos();
        let (plan, first) = schedule.resolve(now, self.core.tz)?;
        if task.policies().durable.is_some() {
            let change = super::durable::Change::Reschedule(plan, first);
            return self.manage_durable(&task, key.task_key(), change);
        }
        self.core
            .reschedule(&task, plan)
            .map_err(|()| key_error(key.task_key()))
    }

    /// The task's next fire instant (`None` while paused or running).
    pub fn next_fire(&self, key: impl TaskKey) -> Result<Option<DateTime<Utc>>, Error> {
        let task = self.core.find(key.task_key())?;
        Ok(next_fire(&task))
    }

    /// A snapshot of one task.
    pub fn info(&self, key: impl TaskKey) -> Result<TaskInfo, Error> {
        let task = self.core.find(key.task_key())?;
        info(&task).ok_or_else(|| key_error(key.task_key()))
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

/// The error for a key whose task was found but is gone by the time the
/// call acts on it (removed or finished meanwhile): named as the caller
/// named it, by id or by name.
pub(super) fn key_error(key: KeyRef<'_>) -> Error {
    match key {
        KeyRef::Name(n) => Error::NoSuchName(n.to_owned()),
        KeyRef::Id(id) => Error::NoSuchId(id),
    }
}

impl crate::engine::registry::Displaced for Core {
    fn displace(&self, old: &TaskRef) {
        // Replaced: the old task stops firing; a race with its own removal
        // elsewhere is fine either way (exactly one of them cleans up).
        if old.policies().durable.is_some() {
            // A durable task replaced by a non-durable one leaves the store
            // too, or it would come back at the next start.
            if let (Some(durable), Some(name)) = (self.durable.as_deref(), old.name()) {
                if durable
                    .write(vec![crate::store::Op::Delete(name.to_owned())])
                    .is_ok()
                {
                    crate::run::durable::lock(&durable.defs).remove(name);
                }
            }
        }
        let _ = self.remove(old);
    }
}

impl Core {
    #[inline]
    pub(crate) fn register(
        &self,
        spec: TaskBuilder<'_>,
        callback: Callback,
    ) -> Result<TaskId, Error> {
        // The bulk case first: an anonymous one-shot (at an instant or after
        // a delay) with default policies and no payload needs no schedule
        // resolution, jitter, seal or name work (the general path below would
        // come to the same task).
        //
        // The builder is taken apart first and every owned field is tested,
        // so on the plain path the compiler sees each one is `None` and
        // drops nothing but the schedule inline. Testing the fields through
        // `spec` instead left the builder to be dropped whole on this path:
        // an out-of-line destructor call per registration, ~25 % of a
        // plain registration's time (BENCHMARKS.md, issue 13).
        let TaskBuilder {
            scheduler,
            schedule,
            name,
            replace,
            payload,
            misfire,
            overlap,
            jitter,
            until,
            times,
            handler,
            delivery,
        } = spec;
        let plain = name.is_none()
            && payload.is_none()
            && handler.is_none()
            && misfire.unwrap_or(self.misfire) == Misfire::default()
            && overlap == Overlap::default()
            && jitter.is_zero()
            && until.is_none()
            && times.is_none();
        if plain {
            if let Some(at) = schedule.one_shot_instant(|| self.clock.now_nanos()) {
                let id = TaskId::new(self.next_id.fetch_add(1, Ordering::Relaxed), at);
                let task = TaskRef::new(Task::plain_once(id, callback));
                return Ok(self.publish(task, at));
            }
        }
        let spec = TaskBuilder {
            scheduler,
            schedule,
            name,
            replace,
            payload,
            misfire,
            overlap,
            jitter,
            until,
            times,
            handler,
            delivery,
        };
        self.register_as(spec, callback, false)
    }

    /// Registration's general path; `asynch` marks an async task (feature
    /// `tokio`), which never takes the plain path above.
    #[inline(never)]
    pub(crate) fn register_as(
        &self,
        spec: TaskBuilder<'_>,
        callback: Callback,
        asynch: bool,
    ) -> Result<TaskId, Error> {
        let TaskBuilder {
            schedule,
            name,
            replace,
            payload,
            misfire,
            overlap,
            jitter,
            until,
            times,
            handler,
            ..
        } = spec;
        if handler.is_some() {
            return Err(Error::NotDurable {
                name: name.unwrap_or_default(),
                why: if asynch {
                    "a durable task runs its handler: finish it with .register(), not .run_async(..)"
                } else {
                    "a durable task runs its handler: finish it with .register(), not .run(..)"
                },
            });
        }
        if name.as_deref() == Some("") {
            return Err(Error::EmptyName);
        }
        #[cfg(not(feature = "seal"))]
        if payload.is_some() && !self.test_mode {
            return Err(Error::SealingDisabled);
        }
        if payload.is_some() && !self.test_mode && !self.seal.has_ring() {
            return Err(Error::NoKey);
        }
        let now = self.clock.now_nanos();
        let (plan, first) = schedule.resolve(now, self.tz)?;
        let until = match until {
            None => None,
            Some(t) => {
                Some(crate::clock::to_nanos(t).ok_or_else(|| Error::OutOfRange(t.to_rfc3339()))?)
            }
        };
        if until.is_some_and(|u| first > u) || times == Some(0) {
            return Err(Error::NeverFires(schedule.to_string()));
        }
        let policies = Policies {
            misfire: misfire.unwrap_or(self.misfire),
            overlap,
            jitter: crate::clock::duration_nanos(jitter),
            until,
            times: times.and_then(std::num::NonZeroU64::new),
            durable: None,
        };
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let due = first.saturating_add(crate::policy::jitter(self.seed, n, first, policies.jitter));
        let id = TaskId::new(n, due);
        let payload = match payload
            .map(|p| {
                self.seal
                    .payload(p, self.test_mode, id, name.as_deref())
                    .map_err(|e| match e {
                        crate::seal::SealError::NoKey => Error::NoKey,
                        e => Error::Seal(e),
                    })
            })
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
        if asynch {
            task.mark_async();
        }
        if task.name().is_some() {
            if let NameClaim::Taken = self.registry.claim_name(&task, replace, self) {
                self.gone.fetch_add(1, Ordering::AcqRel);
                let name = task.name().unwrap_or_default().to_owned();
                return Err(Error::DuplicateName(name));
            }
        }
        Ok(self.publish(task, first))
    }
}

impl FireContext<'_> {
    /// A handle to the scheduler running this task: register, remove or
    /// reschedule tasks (this one included) from inside a callback. Changes
    /// take effect for the next `run_pending`.
    pub fn scheduler(&self) -> Scheduler {
        match self.host.downcast_ref::<Arc<Core>>() {
            Some(core) => Scheduler::from_core(core.clone()),
            // The run layer always lends its core (`run::fire`).
            None => unreachable!("a fire context's host is the scheduler's core"),
        }
    }
}
