//! What the engine reports: run reports, totals, task snapshots.

use crate::clock::from_nanos;
use crate::engine::task::{phase_of, Task, TaskRef, CLAIMED, PAUSED, REMOVED, RUNNING, SCHEDULED};
use crate::id::TaskId;
use crate::stats::LagSummary;
use crate::sync::{AtomicU64, Ordering};
use chrono::{DateTime, Utc};

/// What one call of [`Scheduler::run_pending`](crate::Scheduler::run_pending) did.
///
/// ```
/// use cronlane::{ManualClock, Schedule, Scheduler};
/// use std::time::Duration;
///
/// let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
/// let s = Scheduler::builder().clock(clock.clone()).build();
/// s.add(Schedule::after(Duration::from_secs(1))).run(|| ())?;
/// s.add(Schedule::after(Duration::from_secs(1))).run(|| Err::<(), _>("boom"))?;
/// clock.advance(Duration::from_secs(1));
/// let r = s.run_pending();
/// assert_eq!((r.fired, r.succeeded, r.failed, r.skipped), (2, 1, 1, 0));
/// # Ok::<(), cronlane::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Callbacks started (inline dispatch): `succeeded + failed`.
    pub fired: u64,
    /// Callbacks that returned `Ok` (inline dispatch).
    pub succeeded: u64,
    /// Callbacks that returned `Err` or panicked, or whose payload did not
    /// open (inline dispatch).
    pub failed: u64,
    /// Fires of this call that did not run their callback: cancelled after
    /// the claim (removed, paused or rescheduled in between), dropped by the
    /// misfire policy, over an `Overlap::Allow` limit, or released unrun at
    /// runner shutdown. (Other instants counted as skipped, such as ones
    /// collapsed into a run, show in [`Scheduler::stats`](crate::Scheduler::stats).)
    pub skipped: u64,
    /// Fires handed to a worker pool or executor; their outcome shows in
    /// [`Scheduler::stats`](crate::Scheduler::stats).
    pub dispatched: u64,
}

impl RunReport {
    pub(crate) fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Fired => {
                self.fired += 1;
                self.succeeded += 1;
            }
            Outcome::Failed => {
                self.fired += 1;
                self.failed += 1;
            }
            Outcome::Skipped => self.skipped += 1,
        }
    }
}

/// Totals since the scheduler was built.
///
/// ```
/// use cronlane::{ManualClock, Schedule, Scheduler};
/// use std::time::Duration;
///
/// let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
/// let s = Scheduler::builder().clock(clock.clone()).build();
/// s.add(Schedule::every(Duration::from_secs(1))).run(|| ())?;
/// for _ in 0..3 {
///     clock.advance(Duration::from_secs(1));
///     s.run_pending();
/// }
/// let st = s.stats();
/// assert_eq!((st.fired, st.succeeded, st.failed), (3, 3, 0));
/// println!("lag p99 {:?}", st.lag.p99);
/// # Ok::<(), cronlane::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Callbacks started: `succeeded + failed`.
    pub fired: u64,
    /// Callbacks that returned `Ok`.
    pub succeeded: u64,
    /// Callbacks that returned `Err` or panicked (or whose payload did not open).
    pub failed: u64,
    /// Instants that did not run: cancelled after the claim, dropped by the
    /// misfire policy, collapsed into a run of a later instant, or skipped
    /// by the overlap policy.
    pub skipped: u64,
    /// Fires that started later than the grace period (run or not).
    pub misfired: u64,
    /// Fire lag (due instant to callback start) of every run.
    pub lag: LagSummary,
}

#[derive(Default)]
pub(crate) struct StatsCells {
    succeeded: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    misfired: AtomicU64,
}

impl StatsCells {
    pub(crate) fn snapshot(&self, lag: LagSummary) -> Stats {
        let succeeded = self.succeeded.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        Stats {
            fired: succeeded + failed,
            succeeded,
            failed,
            skipped: self.skipped.load(Ordering::Relaxed),
            misfired: self.misfired.load(Ordering::Relaxed),
            lag,
        }
    }

    pub(crate) fn misfired(&self) {
        self.misfired.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn skipped_extra(&self, n: u64) {
        self.skipped.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn record(&self, o: Outcome) {
        let cell = match o {
            Outcome::Fired => &self.succeeded,
            Outcome::Failed => &self.failed,
            Outcome::Skipped => &self.skipped,
        };
        cell.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn add(&self, r: &RunReport) {
        for (cell, n) in [
            (&self.succeeded, r.succeeded),
            (&self.failed, r.failed),
            (&self.skipped, r.skipped),
        ] {
            if n > 0 {
                cell.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// How one fire ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Fired,
    Failed,
    Skipped,
}

/// Where a task stands, in a [`TaskInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting for its next fire.
    Scheduled,
    /// A fire is claimed or its callback is running.
    Running,
    /// Paused: will not fire until resumed.
    Paused,
}

/// A snapshot of one task, from [`Scheduler::tasks`](crate::Scheduler::tasks) or [`Scheduler::info`](crate::Scheduler::info).
///
/// ```
/// use cronlane::{Schedule, Scheduler, TaskState};
/// use std::time::Duration;
///
/// let s = Scheduler::builder().test_mode(true).build();
/// s.add(Schedule::every(Duration::from_secs(60))).name("sync").run(|| ())?;
/// s.pause("sync")?;
/// let info = s.info("sync")?;
/// assert_eq!(info.state, TaskState::Paused);
/// assert_eq!(info.next_fire, None); // not while paused
/// for t in s.tasks() {
///     println!("{:?} {} runs {}", t.name, t.schedule, t.runs);
/// }
/// # Ok::<(), cronlane::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    /// The task's id.
    pub id: TaskId,
    /// The task's name, if any.
    pub name: Option<String>,
    /// The schedule in force, described.
    pub schedule: String,
    /// The next fire instant, when known (not while paused or running).
    pub next_fire: Option<DateTime<Utc>>,
    /// Scheduled, running or paused.
    pub state: TaskState,
    /// Runs so far (successful or not).
    pub runs: u64,
    /// Runs that returned `Err` or panicked.
    pub failures: u64,
}

pub(crate) fn next_fire(task: &Task) -> Option<DateTime<Utc>> {
    let w = task.load();
    if phase_of(w) == SCHEDULED && Task::flags(w) == 0 {
        Some(from_nanos(task.slot().0))
    } else {
        None
    }
}

pub(crate) fn info(task: &TaskRef) -> Option<TaskInfo> {
    let w = task.load();
    if w & REMOVED != 0 {
        return None;
    }
    let state = if w & PAUSED != 0 {
        TaskState::Paused
    } else if matches!(phase_of(w), CLAIMED | RUNNING) {
        TaskState::Running
    } else {
        TaskState::Scheduled
    };
    let (runs, failures) = task.counts();
    Some(TaskInfo {
        id: task.id,
        name: task.name().map(str::to_owned),
        schedule: task.with_plan(|p| p.to_string()),
        next_fire: next_fire(task),
        state,
        runs,
        failures,
    })
}

impl Outcome {
    /// `Some(ok)` when the callback ran, `None` when it did not.
    #[inline]
    pub(crate) fn ran(self) -> Option<bool> {
        match self {
            Outcome::Fired => Some(true),
            Outcome::Failed => Some(false),
            Outcome::Skipped => None,
        }
    }
}
