//! Test-only hooks for the loom models in `loom-tests/`. Compiled only under
//! `--cfg cronlane_loom`; not part of the API and not covered by semver.
//!
//! Each `BREAK_*` switch turns one piece of the concurrency protocol into a
//! deliberately broken twin, so that a `#[should_panic]` model can show loom
//! catching the bug that piece prevents. The switches are std atomics (loom
//! must not explore them) and are read with `Relaxed`: they are set before a
//! model starts and cleared after it ends.

use std::sync::atomic::{AtomicBool, Ordering};

/// `Task::claim` becomes a plain load, then a store (not a CAS): a remove,
/// pause or reschedule between the two is overwritten.
pub static BREAK_CLAIM: AtomicBool = AtomicBool::new(false);
/// The ordered map's `take_front` decides and removes in two critical
/// sections and hands the entry out whether or not its removal succeeded
/// (crossbeam's `Entry::remove()` result ignored).
pub static BREAK_TAKE: AtomicBool = AtomicBool::new(false);
/// The intake queue's `pop` peeks, then pops in a second critical section,
/// and returns what it peeked.
pub static BREAK_POP: AtomicBool = AtomicBool::new(false);
/// `Task::start` moves a claimed fire to running with a plain store, without
/// checking for a remove (or pause, or reschedule) since the claim.
pub static BREAK_START: AtomicBool = AtomicBool::new(false);
/// `Task::finish` ignores `REMOVED` and schedules the next generation.
pub static BREAK_FINISH: AtomicBool = AtomicBool::new(false);
/// The intake drain does not hold the hand-over counter, so `settle` (and a
/// lookup by id) may return before a popped task is indexed.
pub static BREAK_HANDOVER: AtomicBool = AtomicBool::new(false);
/// `RunnerSignal::wake` does not unpark the runner.
pub static BREAK_WAKE: AtomicBool = AtomicBool::new(false);
/// `RunnerHandle::shutdown` raises `stop` but does not unpark the runner.
pub static BREAK_SHUTDOWN: AtomicBool = AtomicBool::new(false);

/// `Task::removed_after_publish` never reports a removal: a thread that
/// puts an entry on the timeline while the task is being removed leaves it
/// there.
pub static BREAK_PUBLISH: AtomicBool = AtomicBool::new(false);

/// `Sealer::open` loads the key ring before the payload's record (the
/// ground rules say record first).
pub static BREAK_SEAL_ORDER: AtomicBool = AtomicBool::new(false);

/// The fewest plain one-shots a drain groups into a timeline run (normal
/// build: 32). Off (`usize::MAX`) unless a model turns it on, so the models
/// that predate runs explore what they always did; the `*_runs` models set
/// it to 1.
pub static RUN_MIN: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(usize::MAX);

/// The drain does not put a run into the id lookup of runs: a run's tasks
/// are on the timeline but not found by id.
pub static BREAK_RUN_LOOKUP: AtomicBool = AtomicBool::new(false);

/// `claim_due` drops what is left of a run when it stops inside it, instead
/// of putting the rest back on the timeline.
pub static BREAK_RUN_REST: AtomicBool = AtomicBool::new(false);

/// A compaction takes the old run out of the id lookup before it publishes
/// the new one: a lookup in between misses a live task.
pub static BREAK_COMPACT_ORDER: AtomicBool = AtomicBool::new(false);

/// A compaction does not look for tasks removed while it rebuilt the run
/// (`Timeline::recheck`): one removed meanwhile may stay in the new run.
pub static BREAK_RECHECK: AtomicBool = AtomicBool::new(false);

/// `Task::finish` ignores a pause that came during the run and schedules
/// the next generation: a task paused while it ran keeps firing.
pub static BREAK_PAUSE_FINISH: AtomicBool = AtomicBool::new(false);

/// `Core::reschedule` of a running task does not mark it `DIRTY`: the
/// fire's owner puts back the next instant of the old plan.
pub static BREAK_DIRTY: AtomicBool = AtomicBool::new(false);

/// `Core::reschedule` of an idle (paused) task drops the `IDLE` phase, as
/// before issue 12: `resume` then finds a "scheduled" task with no entry.
pub static BREAK_RESCHEDULE_IDLE: AtomicBool = AtomicBool::new(false);

/// `Registry::claim_name` with `replace` reads the old holder, then
/// inserts, in two steps (as before issue 12): two replacers may both
/// displace the same old task, and one of the new ones is orphaned.
pub static BREAK_REPLACE: AtomicBool = AtomicBool::new(false);

/// `Registry::forget` takes the name out of the index whoever holds it,
/// not only if it still points at the task being cleaned up.
pub static BREAK_NAME_FORGET: AtomicBool = AtomicBool::new(false);

/// The intake drain leaves the hand-over (decrements the counter) before
/// it publishes the plain one-shots it popped.
pub static BREAK_HANDOVER_EARLY: AtomicBool = AtomicBool::new(false);

/// Entries on `scheduler`'s timeline, stale ones included (what a model can
/// not see through the API: an entry left behind for a removed task).
pub fn timeline_len(scheduler: &crate::Scheduler) -> usize {
    scheduler.core.timeline.len()
}

/// Whether `switch` is on.
#[inline]
pub(crate) fn broken(switch: &AtomicBool) -> bool {
    switch.load(Ordering::Relaxed)
}

/// An excursion (a run view off the timeline to be put back) is not
/// counted as ended: a `run_pending` that looked while the view was away
/// takes the word for quiet and returns with a due task unfired.
pub static BREAK_EXCURSION: AtomicBool = AtomicBool::new(false);

/// `Core::reschedule` stores the new plan before it moves the state word:
/// a fire running meanwhile can compute its next instant from the new plan
/// and finish without seeing `DIRTY` (a recurring task rescheduled to a
/// one-shot during its run is then completed and removed).
pub static BREAK_REPLAN_EARLY: AtomicBool = AtomicBool::new(false);

/// `Core::release` drops the claimed fire instead of putting it back: a fire
/// the runner claimed but had not started when `stop` was raised is lost.
pub static BREAK_RELEASE: AtomicBool = AtomicBool::new(false);

/// `Timeline::compact` reports "hint not lowered" even when republishing
/// the run lowered it, so the remover that compacted does not wake the
/// runner.
pub static BREAK_COMPACT_HINT: AtomicBool = AtomicBool::new(false);

/// `Overlap::Allow { max }`: the `running` counter is decremented before the
/// callback instead of after it.
pub static BREAK_OVERLAP_EARLY: AtomicBool = AtomicBool::new(false);

/// `Overlap::Allow { max }`: a fire over `max` runs anyway (the check of the
/// `running` counter is skipped).
pub static BREAK_OVERLAP_CHECK: AtomicBool = AtomicBool::new(false);
