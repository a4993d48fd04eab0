//! Running one claimed fire: start, run policies, callback, finish.
//!
//! The owner of a claim (the thread that won [`Task::claim`]) calls
//! [`Core::execute`]. In order:
//!
//! 1. **start**: `CLAIMED` to `RUNNING`; a removal, pause or reschedule that
//!    got in after the claim wins, and the fire is reported as skipped.
//! 2. **misfire and collapse**: [`policy::decide`] says whether the fire runs
//!    and for which instant — a fire later than its grace period is handled
//!    by the task's [`Misfire`](crate::Misfire) policy (run once, skip, or
//!    catch up), and when several instants are due at once the run is for
//!    the latest of them — and reports, in one event, every instant that
//!    will not run.
//! 3. **overlap `Allow`**: the next fire is put on the timeline *before* the
//!    callback, so another thread may start it while this one runs.
//! 4. **callback**: payload opened (if any), panics caught, events emitted,
//!    statistics recorded, all inside a `tracing` span named after the task.
//! 5. **finish**: the next fire is computed (overlap `Skip` drops instants
//!    that came due during the run, `Queue` keeps the latest of them) and put
//!    on the timeline, or the task completes.

use crate::engine::task::{word, After, FireContext, Task, TaskRef, CLAIMED, SCHEDULED};
use crate::engine::timeline::Claimed;
use crate::policy::SkipReason;
use crate::policy::{self, Delivery, Overlap};
use crate::run::core::Core;
use crate::run::events::{emit, EventKind};
use crate::run::policy::decide;
use crate::run::report::Outcome;
use crate::stats::Policies;
use crate::sync::{HandleArc as Arc, Ordering};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// Most skipped cron instants counted for one report (intervals: exact).
const SKIP_COUNT_CAP: u64 = crate::run::policy::CRON_COUNT_CAP;

/// A fire that started: its callback may run now. The hand-off half of the
/// execution seam ([`Core::begin`]); whoever runs the callback gives it
/// back to [`Core::complete`] with the outcome, on any thread, at any time
/// later (an async job does so when its future is done). Everything that
/// depends on completion (overlap, statistics, the listener's outcome
/// event, the next entry, durable progress) happens there.
pub(crate) struct Begun {
    pub(crate) task: TaskRef,
    gen: u64,
    /// The instant that runs (the latest due one, or this one under
    /// catch-up) and when it was due (plus jitter).
    pub(crate) scheduled: i64,
    pub(crate) due: i64,
    /// When the fire started, by the scheduler's clock.
    pub(crate) started: i64,
    /// The next instant as the run policies chose it at the start.
    next: Option<i64>,
    /// A durable task's delivery policy (`None`: not durable).
    durable: Option<Delivery>,
    /// What the store's claim of this fire did (durable fires only).
    pub(crate) claim: Claim,
    /// A catch-up in progress: the next fire follows this instant, not now.
    streak: bool,
    /// `Overlap::Allow`: the next fire is already on the timeline.
    allowed: bool,
    /// `Overlap::Allow`: the task's running count holds this run.
    counted: bool,
}

impl Begun {
    /// The next instant as chosen at the start (`None`: the task ends).
    pub(crate) fn next_instant(&self) -> Option<i64> {
        self.next
    }

    /// `Overlap::Allow`: the next fire was put on the timeline at the start.
    pub(crate) fn overlaps(&self) -> bool {
        self.allowed
    }
}

/// What a store's claim did with a durable fire, carried to its
/// completion (which writes accordingly; see `run::durable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Nothing the completion must know (every non-durable fire).
    Open,
    /// An at-most-once claim that already deleted the task's record.
    EndWritten,
    /// The claim failed: the fire did not run and nothing is written.
    Failed,
}

/// What [`Core::begin`] did with a claimed fire.
pub(crate) enum Begin {
    /// The fire does not run its callback (cancelled after the claim,
    /// dropped by the misfire policy, over an overlap limit); all of its
    /// bookkeeping is done.
    Skipped,
    /// The callback runs now: call it, then [`Core::complete`].
    Run(Begun),
}

impl Core {
    /// Runs one claimed fire to the end on this thread. Without `call`, the
    /// fire is released instead (put back as it was).
    #[inline]
    pub(crate) fn execute(self: &Arc<Self>, claimed: Claimed, call: bool) -> Outcome {
        if !call {
            self.release(claimed);
            return Outcome::Skipped;
        }
        match self.begin(claimed) {
            Begin::Skipped => Outcome::Skipped,
            Begin::Run(begun) => {
                let outcome =
                    self.run_callback(&begun.task, begun.scheduled, begun.due, begun.started);
                self.complete(begun, outcome)
            }
        }
    }

    /// Starts a claimed fire: the state word to `RUNNING`, the misfire,
    /// collapse and end policies decided, the cursor moved, and under
    /// `Overlap::Allow` the next fire put on the timeline.
    #[inline(always)]
    pub(crate) fn begin(self: &Arc<Self>, claimed: Claimed) -> Begin {
        let Claimed {
            task,
            scheduled,
            gen,
            due,
        } = claimed;
        if let Err(after) = task.start(gen) {
            self.after(&task, after);
            self.skipped(&task, scheduled, SkipReason::Cancelled, 1, true);
            return Begin::Skipped;
        }
        let started = self.clock.now_nanos();
        let policies = task.policies();
        let streak = task
            .extras()
            .map_or(0, |e| e.streak.load(Ordering::Relaxed));
        // No drift: the next instant follows a scheduled one (the latest due,
        // or this one under catch-up), never the clock. One plan evaluation
        // per fire when only this instant is due.
        let decision = task.with_plan(|p| {
            decide(
                p,
                policies.misfire,
                self.grace,
                scheduled,
                due,
                started,
                streak,
            )
        });
        if decision.misfired {
            self.misfired(&task, scheduled, started.saturating_sub(due), decision.run);
        }
        if decision.streak != streak {
            task.extras_or_init()
                .streak
                .store(decision.streak, Ordering::Relaxed);
        }
        if decision.skipped > 0 {
            // Without a run, one of them is this fire's own outcome.
            let own = !decision.run;
            self.skipped(&task, scheduled, decision.reason, decision.skipped, own);
        }
        // The task's end (`until`, `times`): runs so far, and this one if it
        // runs. Tasks without an end pay one branch.
        let mut next = decision.next;
        if policies.ends() {
            next = policies.bound(next, runs(&task) + u64::from(decision.run));
        }
        if !decision.run {
            let after = task.finish(gen, scheduled, started, next);
            if let Some(delivery) = policies.durable {
                // Ended without a run (a one-shot's misfire skipped).
                if after == After::Completed {
                    self.durable_done(&task, delivery, scheduled, None, true, Claim::Open);
                }
            }
            self.after(&task, after);
            return Begin::Skipped;
        }
        // The run is for the latest instant due (see `policy`).
        // The cursor: the latest instant whose run started. Written before
        // `finish` (whose CAS publishes it to managers), so nothing re-plans
        // the task at or before it (see `Plan::first_after_cursor`).
        // Instants skipped without a run leave it where it was.
        task.advance_cursor(decision.scheduled);
        let (scheduled, due) = if decision.scheduled == scheduled {
            (scheduled, due)
        } else {
            (decision.scheduled, self.due(&task, decision.scheduled))
        };
        let (mut allowed, mut counted) = (false, false);
        if let Overlap::Allow { max } = policies.overlap {
            if next.is_some() {
                // Next fire first, then this run: runs may overlap.
                let extras = task.extras_or_init();
                // The count of runs of this task from before its callback
                // until after it: the one whose increment takes it over
                // `max` skips, so at most `max` callbacks run at once. (An
                // RMW reads the latest value whatever its ordering; AcqRel
                // orders the callbacks of two runs that follow each other.)
                let running = extras.running.fetch_add(1, Ordering::AcqRel) + 1;
                let after = task.finish(gen, scheduled, started, next);
                self.after(&task, after);
                #[cfg(cronlane_loom)]
                let (early, check) = (
                    crate::__loom::broken(&crate::__loom::BREAK_OVERLAP_EARLY),
                    !crate::__loom::broken(&crate::__loom::BREAK_OVERLAP_CHECK),
                );
                #[cfg(not(cronlane_loom))]
                let (early, check) = (false, true);
                if early {
                    // The twin: the count drops before the callback.
                    extras.running.fetch_sub(1, Ordering::AcqRel);
                }
                if check && max.is_some_and(|m| running > m) {
                    if !early {
                        extras.running.fetch_sub(1, Ordering::AcqRel);
                    }
                    self.skipped(&task, scheduled, SkipReason::Overlap, 1, true);
                    return Begin::Skipped;
                }
                allowed = true;
                counted = !early;
            }
        }
        // Built last, from locals: nothing borrows it before it is handed
        // back, so it can live in registers when begin and complete inline.
        Begin::Run(Begun {
            task,
            gen,
            scheduled,
            due,
            started,
            next,
            durable: policies.durable,
            streak: decision.streak != 0,
            allowed,
            counted,
            claim: Claim::Open,
        })
    }

    /// Completes a started fire with the outcome of its callback: under
    /// `Overlap::Allow` the run's count drops; otherwise the overlap policy
    /// deals with instants that came due while it ran, and the next entry
    /// goes on the timeline (or the task completes).
    #[inline(always)]
    pub(crate) fn complete(self: &Arc<Self>, begun: Begun, outcome: Outcome) -> Outcome {
        let Begun {
            task,
            gen,
            scheduled,
            started,
            mut next,
            durable,
            streak,
            allowed,
            counted,
            claim,
            ..
        } = begun;
        if allowed {
            // Its next fire went on the timeline at the start.
            if counted {
                task.extras_or_init().running.fetch_sub(1, Ordering::AcqRel);
            }
            if let Some(delivery) = durable {
                self.durable_done(&task, delivery, scheduled, outcome.ran(), false, claim);
            }
            return outcome;
        }
        let mut now = started;
        // Only a recurring task (with a next instant) needs its policies
        // again; a one-shot's completion reads none.
        let policies = match next {
            Some(_) => task.policies(),
            None => Policies::default(),
        };
        // A catch-up (a streak, or an on-time instant whose successor was
        // already due at the start) goes on from this instant instead.
        if next.is_some_and(|n| n > started) && !streak {
            // Instants that came due while the callback ran.
            now = self.clock.now_nanos();
            if let Some(first) = next.filter(|&f| f <= now) {
                let skipped = task.with_plan(|p| match policies.overlap {
                    // Skip them all: the next fire is the first after now.
                    Overlap::Skip => {
                        next = p.next_after(now);
                        p.count_in(first - 1, now, SKIP_COUNT_CAP)
                    }
                    // Keep the latest (it runs right after, so it finds
                    // nothing more to collapse), skip the ones before it.
                    _ => match p.next_after(first) {
                        Some(second) if second <= now => {
                            let (last, earlier) = p.latest_due(first, second, now, SKIP_COUNT_CAP);
                            next = Some(last);
                            earlier
                        }
                        _ => 0,
                    },
                });
                if skipped > 0 {
                    self.skipped(&task, scheduled, SkipReason::Overlap, skipped, false);
                }
            }
        }
        if policies.ends() {
            // Instants the overlap policy moved `next` to, and this run counted.
            next = policies.bound(next, runs(&task));
        }
        let after = task.finish(gen, scheduled, now, next);
        if let Some(delivery) = durable {
            let last = after == After::Completed;
            self.durable_done(&task, delivery, scheduled, outcome.ran(), last, claim);
        }
        self.after_run(&task, after);
        outcome
    }

    /// The callback part of a fire: payload, context, span, events, stats.
    pub(crate) fn run_callback(
        self: &Arc<Self>,
        task: &Task,
        scheduled: i64,
        due: i64,
        started: i64,
    ) -> Outcome {
        let _span =
            tracing::info_span!("cronlane.run", task = %task.id, name = task.name().unwrap_or(""))
                .entered();
        self.callback_started(task, scheduled, due, started);
        // The payload, if any, is opened for this fire only (see `seal`).
        let Ok(opened) = self.open_payload(task, scheduled, started) else {
            return Outcome::Failed;
        };
        let ctx = FireContext {
            task,
            scheduled,
            started,
            host: self,
            payload: opened.as_ref().map(crate::seal::Opened::bytes),
        };
        let result = catch_unwind(AssertUnwindSafe(|| task.run_callback(&ctx)));
        // Wipe the opened payload as soon as the callback is done.
        drop(opened);
        self.callback_ended(task, scheduled, started, result)
    }

    /// The start of a callback (sync or async): lag, the task's run
    /// counters, the listener's `Started` event.
    #[inline(always)]
    pub(crate) fn callback_started(&self, task: &Task, scheduled: i64, due: i64, started: i64) {
        let lag = started.saturating_sub(due);
        self.lag.record(lag);
        let extras = if task.is_once() {
            task.extras()
        } else {
            Some(task.extras_or_init())
        };
        if let Some(e) = extras {
            e.runs.fetch_add(1, Ordering::Relaxed);
            e.last_run.store(scheduled, Ordering::Relaxed);
            e.last_started.store(started, Ordering::Relaxed);
            e.lag.record(lag);
        }
        if self.listener.is_some() {
            let lag = Duration::from_nanos(lag.max(0) as u64);
            self.notify(task, scheduled, EventKind::Started { lag });
        }
    }

    /// The task's payload opened for one fire (`Ok(None)`: it has none).
    /// `Err`: it did not open; the fire has been failed and reported.
    #[inline(always)]
    pub(crate) fn open_payload<'t>(
        &self,
        task: &'t Task,
        scheduled: i64,
        started: i64,
    ) -> Result<Option<crate::seal::Opened<'t>>, ()> {
        match task.payload() {
            None => Ok(None),
            Some(p) => match self.seal.open(p) {
                Ok(opened) => Ok(Some(opened)),
                Err(e) => {
                    let message = format!("payload did not open: {e}");
                    tracing::error!(task = %task.id, name = task.name().unwrap_or(""), error = %e, "cronlane: task payload did not open; the callback was not run");
                    self.failed(task, scheduled, started, &message, false);
                    Err(())
                }
            },
        }
    }

    /// The end of a callback (sync or async) with its result, panics
    /// caught: the listener's outcome event, failures counted and logged.
    #[inline(always)]
    pub(crate) fn callback_ended(
        &self,
        task: &Task,
        scheduled: i64,
        started: i64,
        result: std::thread::Result<Result<(), String>>,
    ) -> Outcome {
        match result {
            Ok(Ok(())) => {
                self.notify(task, scheduled, EventKind::Succeeded);
                Outcome::Fired
            }
            Ok(Err(message)) => {
                tracing::warn!(task = %task.id, name = task.name().unwrap_or(""), error = %message, "cronlane: task returned an error");
                self.failed(task, scheduled, started, &message, false);
                Outcome::Failed
            }
            Err(panic) => {
                let message = panic_message(&*panic);
                tracing::error!(task = %task.id, name = task.name().unwrap_or(""), panic = %message, "cronlane: task panicked");
                self.failed(task, scheduled, started, &message, true);
                Outcome::Failed
            }
        }
    }

    pub(crate) fn failed(
        &self,
        task: &Task,
        scheduled: i64,
        started: i64,
        message: &str,
        panicked: bool,
    ) {
        let e = task.extras_or_init();
        if task.is_once() && e.runs.load(Ordering::Relaxed) == 0 {
            // A one-shot's extras were created just now: count its run.
            e.runs.fetch_add(1, Ordering::Relaxed);
            e.last_run.store(scheduled, Ordering::Relaxed);
            e.last_started.store(started, Ordering::Relaxed);
        }
        e.failures.fetch_add(1, Ordering::Relaxed);
        e.last_error
            .store(Some(crate::sync::Arc::new(message.to_owned())));
        self.notify(task, scheduled, EventKind::Failed { message, panicked });
    }

    fn misfired(&self, task: &Task, scheduled: i64, late_by: i64, runs: bool) {
        task.extras_or_init()
            .misfires
            .fetch_add(1, Ordering::Relaxed);
        self.stats().misfired();
        let late_by = Duration::from_nanos(late_by.max(0) as u64);
        tracing::warn!(task = %task.id, name = task.name().unwrap_or(""), late_by = ?late_by, runs, "cronlane: misfire");
        self.notify(task, scheduled, EventKind::Misfired { late_by, runs });
    }

    /// Reports `count` instants that did not run, in one event. With `own`,
    /// one of them is this fire's own, returned as `Outcome::Skipped` and
    /// counted in the run report (and from there in `stats()`); the others
    /// are counted in `stats()` here.
    pub(crate) fn skipped(
        &self,
        task: &Task,
        scheduled: i64,
        reason: SkipReason,
        count: u64,
        own: bool,
    ) {
        task.extras_or_init()
            .skips
            .fetch_add(count, Ordering::Relaxed);
        let others = count - u64::from(own);
        if others > 0 {
            self.stats().skipped_extra(others);
        }
        self.notify(task, scheduled, EventKind::Skipped { reason, count });
    }

    /// Tells the listener, if there is one.
    #[inline]
    fn notify(&self, task: &Task, scheduled: i64, kind: EventKind<'_>) {
        if let Some(l) = &self.listener {
            emit(&**l, task.id, task.name(), scheduled, kind);
        }
    }

    /// The instant a fire scheduled at `scheduled` is due: plus the task's
    /// jitter, if it has one.
    pub(crate) fn due(&self, task: &TaskRef, scheduled: i64) -> i64 {
        let max = task.policies().jitter;
        if max == 0 {
            return scheduled;
        }
        scheduled.saturating_add(policy::jitter(self.seed, task.id.n, scheduled, max))
    }

    /// Puts a claimed, not started fire back as it was (a new generation of
    /// the same entry), unless the task was removed, paused or rescheduled.
    pub(crate) fn release(&self, claimed: Claimed) {
        #[cfg(cronlane_loom)]
        if crate::__loom::broken(&crate::__loom::BREAK_RELEASE) {
            // The twin: the claim is dropped, the task left `CLAIMED` with
            // no entry anywhere.
            return;
        }
        let Claimed {
            task,
            scheduled,
            gen,
            due,
        } = claimed;
        match task.transition(word(gen, CLAIMED), word(gen + 1, SCHEDULED)) {
            Ok(_) => {
                // Off its first entry for good: keep it findable by id.
                self.registry.index_once(&task);
                if self.timeline.insert(&task, gen + 1, scheduled, due) {
                    self.runner.wake();
                }
            }
            Err(_) => {
                // Paused, removed or taken over: `start` knows what to do.
                if let Err(after) = task.start(gen) {
                    self.after(&task, after);
                }
            }
        }
    }

    pub(crate) fn after(&self, task: &TaskRef, after: After) {
        match after {
            After::Reschedule { at, gen } => {
                if self.timeline.insert(task, gen, at, self.due(task, at)) {
                    self.runner.wake();
                }
            }
            // The claim took the entry off the timeline: nothing to unlink.
            After::Completed => self.cleanup(task, false),
            After::Nothing => {}
        }
    }
}

/// Runs of a task so far (its end policies count them).
#[inline]
fn runs(task: &TaskRef) -> u64 {
    task.extras().map_or(0, |e| e.runs.load(Ordering::Relaxed))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
