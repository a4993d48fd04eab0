//! The shared state behind every `Scheduler` handle, and `run_pending`'s
//! three phases: collect due fires, run them through the dispatcher, put
//! recurring tasks back.

use crate::clock::Clock;
use crate::engine::registry::Registry;
use crate::engine::task::TaskRef;
use crate::engine::timeline::{Claimed, Timeline};
use crate::error::Error;
use crate::id::{KeyRef, TaskId};
use crate::policy::Misfire;
use crate::run::dispatch::{Dispatch, Job};
use crate::run::durable::{Durable, DurablePass};
use crate::run::events::Listener;
use crate::run::report::{RunReport, StatsCells};
use crate::run::runner::RunnerSignal;
use crate::stats::Histogram;
use crate::sync::{AtomicU64, AtomicUsize, HandleArc as Arc, Ordering};
use chrono_tz::Tz;

/// How many fires one pass of `run_pending` collects before running them.
pub(crate) const BATCH: usize = 1024;

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
    /// The store seam: `None` on a scheduler without a store, which then
    /// never reaches `run::durable` (one check per `run_pending` call).
    pub(crate) durable: Option<Box<Durable>>,
    /// The async side (feature `tokio`): unset on a scheduler that never
    /// registered an async task nor was given a runtime handle, which then
    /// never reaches `run::tokio` (one load per `run_pending` batch).
    #[cfg(feature = "tokio")]
    pub(crate) asynch: std::sync::OnceLock<Box<crate::run::tokio::AsyncSide>>,
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

    /// Asks the runner registered as `mine` to stop; a store is told first
    /// (it stops claiming outside passes before the runner stops: the
    /// first step of the ordered shutdown).
    pub(crate) fn stop_runner(&self, mine: u64) {
        if let Some(durable) = self.durable.as_deref() {
            if self.runner.is_running(mine) {
                durable.store.runner(false);
            }
        }
        self.runner.raise_stop(mine);
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

    /// A new task with the next id, first due at `first` (plus jitter).
    pub(crate) fn new_task(
        &self,
        name: Option<std::sync::Arc<str>>,
        plan: crate::schedule::Plan,
        first: i64,
        callback: crate::engine::task::Callback,
        payload: Option<crate::seal::Payload>,
        policies: crate::stats::Policies,
    ) -> TaskRef {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let due = first.saturating_add(crate::policy::jitter(self.seed, n, first, policies.jitter));
        let id = TaskId::new(n, due);
        TaskRef::new(crate::engine::task::Task::new(
            id, name, plan, callback, payload, policies,
        ))
    }

    /// Keeps a new task paused instead of publishing it: findable by id
    /// and name, on no timeline until resumed.
    pub(crate) fn park(&self, task: TaskRef) {
        task.park_new();
        self.registry.index_once(&task);
    }

    /// Puts a new task in the intake (first scheduled at `first`) and wakes
    /// the runner if it is due sooner than anything the runner knows of.
    #[inline]
    pub(crate) fn publish(&self, task: TaskRef, first: i64) -> TaskId {
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
        let mut durable_pass = DurablePass::new(now, stop.is_some());
        loop {
            let excursions = self.timeline.excursions();
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
                // Done, unless a run's view was off the timeline while we
                // looked (another thread claiming from it or compacting it):
                // then wait for it to come back and look again, so that
                // every task due when this call began is fired.
                if intake.is_spent() && self.timeline.quiet_since(excursions) {
                    break;
                }
                continue;
            }
            if let Some(durable) = self.durable.as_deref() {
                self.dispatch_durable(durable, &mut batch, &mut durable_pass, &mut report, stop);
                continue;
            }
            #[cfg(feature = "tokio")]
            if self.asynch.get().is_some() {
                self.dispatch_async(&mut batch, &mut report, stop);
                continue;
            }
            // Recurring tasks this batch puts back go on the timeline
            // together when it closes (`Timeline::insert_after_run`).
            let group = self.timeline.open_batch(now);
            for claimed in batch.drain(..) {
                if stop.is_some_and(RunnerSignal::stop_raised) {
                    self.hand_back(claimed, &mut report);
                    continue;
                }
                self.dispatch_sync(claimed, &mut report);
            }
            if group.close() && stop.is_none() {
                self.runner.wake();
            }
        }
        if let Some(durable) = self.durable.as_deref() {
            // One claim for the pass's durable fires, then one write for
            // its at-least-once progress.
            self.claim_durable(durable, &mut durable_pass, &mut report);
            let _ = durable.flush();
        }
        self.stats.add(&report);
        report
    }

    /// [`Core::after`] for a fire that completed: the next entry may wait
    /// for the pass's batch to close ([`Timeline::insert_after_run`]).
    pub(crate) fn after_run(&self, task: &TaskRef, after: crate::engine::task::After) {
        match after {
            crate::engine::task::After::Reschedule { at, gen } => {
                if self
                    .timeline
                    .insert_after_run(task, gen, at, self.due(task, at))
                {
                    self.runner.wake();
                }
            }
            other => self.after(task, other),
        }
    }

    /// A fire claimed by a runner that was told to stop: put back as it
    /// was (never dropped), and counted for the shutdown's report.
    #[cold]
    pub(crate) fn hand_back(&self, claimed: Claimed, report: &mut RunReport) {
        self.release(claimed);
        report.skipped += 1;
        self.runner.handed_back_one();
    }

    /// One fire of a batch that may hold async ones (the store's pass).
    pub(crate) fn dispatch(self: &Arc<Self>, claimed: Claimed, report: &mut RunReport) {
        #[cfg(feature = "tokio")]
        if self.asynch.get().is_some() {
            let blocking = self.blocking_handle();
            return self.dispatch_one(claimed, report, blocking.as_ref());
        }
        self.dispatch_sync(claimed, report);
    }

    /// One sync fire: inline, or handed to the pool or executor.
    pub(crate) fn dispatch_sync(self: &Arc<Self>, claimed: Claimed, report: &mut RunReport) {
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
