//! Run policies: what happens when a fire is late (misfire), when a fire comes
//! due while the previous run of the same task is still going (overlap), and
//! random delays to spread load (jitter), and how a durable fire's progress is
//! written (delivery). The types and rules live here, below everything; the
//! decision for one fire is `run::policy::decide`, applied in `run::fire`.
//!
//! # Rules
//!
//! * A fire is a **misfire** when it starts later than its due instant (the
//!   scheduled instant plus any jitter) plus the grace period
//!   ([`DEFAULT_MISFIRE_GRACE`] unless the builder says otherwise).
//! * **Several instants due at once.** A fire that starts at `now` may find
//!   instants `s1 < s2 < ... < sk <= now` of its task due (`s1` is its own;
//!   `k > 1` after a stall, a clock step, or instants closer together than
//!   the engine's pace). It is late when `now - due(s1) > grace`. Then:
//!   - `FireOnce` (late or not), and any policy when not late except
//!     `CatchUp`: the callback runs **once, for `sk`, the latest instant
//!     due** (`ctx.scheduled()`, as a Kubernetes CronJob starts only the
//!     latest missed time); `s1 .. s(k-1)` are counted as skipped, with
//!     [`SkipReason::Misfire`] when late and [`SkipReason::Collapsed`] when
//!     not. A late fire counts one misfire.
//!   - `Skip`, when late: nothing runs; all `k` are counted as skipped
//!     (reason `Misfire`), and one misfire.
//!   - `CatchUp { max }`: `s1` runs and the next fire is `s2`, so every
//!     instant runs, oldest first. Late runs in a row are capped at `max`;
//!     at the cap that fire and every other instant due are counted as
//!     skipped (reason `Misfire`). Instants within the grace period are
//!     never capped.
//!
//!   Except under catch-up, the next instant is the first after `sk`, that
//!   is after `now`. Every instant that does not run is counted once: per
//!   task (`skips`), in `stats().skipped`, and in one listener `Skipped`
//!   event (whose `scheduled` is `s1`). The run's lag is measured from the
//!   due instant of the instant it runs for.
//! * **Cost.** When only `s1` is due (the common case) a fire costs one
//!   next-instant computation, which is also its next instant. For `k > 1`,
//!   an interval finds `sk` and `k` by arithmetic and counts exactly; a cron
//!   plan walks at most `CRON_COUNT_CAP` (10,000) instants, counting them,
//!   then finds `sk` by bisection (at most 64 evaluations), so cron counts
//!   stop at 10,000 beyond `s1` and a year-long jump costs at most that
//!   many evaluations per task.
//! * **Overlap.** Instants that come due *during* a run (they were not due
//!   when it started) are the overlap policy's: `Skip` counts them all and
//!   goes on after them; `Queue` keeps the latest (which then runs right
//!   after, with nothing more to collapse) and counts the earlier ones;
//!   `Allow` puts the next fire on the timeline before the callback, so
//!   they are ordinary fires. Counted with the same caps.
//! * Each task keeps the instant of its last run; the next instant is always
//!   computed strictly after a scheduled instant that already ran, so a clock
//!   that jumps backwards never fires an instant twice: tasks wait until the
//!   clock reaches their next instant again. A forward jump costs a bounded
//!   amount of work per task (above; cron searches give up after a bounded
//!   window), and catch-up is capped.

use std::time::Duration;

/// The default grace period: a fire that starts within 1 s of its due
/// instant is on time.
pub const DEFAULT_MISFIRE_GRACE: Duration = Duration::from_secs(1);

/// What to do with fires that were missed (the engine was stalled, the clock
/// jumped, the machine slept).
///
/// ```
/// use cronlane::{ManualClock, Misfire, Schedule, Scheduler};
/// use std::time::Duration;
///
/// let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
/// let s = Scheduler::builder().clock(clock.clone()).build();
/// s.add(Schedule::every(Duration::from_secs(60)))
///     .name("catch_up")
///     .misfire(Misfire::CatchUp { max: 10 })
///     .run(|| ())?;
/// s.add(Schedule::every(Duration::from_secs(60)))
///     .name("skip")
///     .misfire(Misfire::Skip)
///     .run(|| ())?;
///
/// clock.advance(Duration::from_secs(300)); // 5 minutes stalled: 5 instants missed
/// for _ in 0..10 {
///     s.run_pending(); // CatchUp runs one missed instant per pass
/// }
/// assert_eq!(s.task_stats("catch_up")?.runs, 5); // each missed instant ran
/// assert_eq!(s.task_stats("skip")?.runs, 0);     // dropped, counted as skips
/// assert!(s.task_stats("skip")?.skips >= 4);
/// # Ok::<(), cronlane::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Misfire {
    /// All missed fires collapse into one run now, for the latest of them
    /// (`ctx.scheduled()`); the older ones are counted as skipped. Then the
    /// task returns to its schedule (the default).
    #[default]
    FireOnce,
    /// Missed fires are dropped (counted and reported, not run); the task
    /// waits for its next scheduled instant. A one-shot that misfires is
    /// dropped.
    Skip,
    /// Each missed fire runs, oldest first, at most `max` late runs in a
    /// row; beyond that the rest are dropped (counted and reported) and the
    /// task returns to its schedule.
    CatchUp {
        /// The most missed fires run in a row.
        max: u32,
    },
}

/// What to do when a fire comes due while the previous run of the same task
/// is still going (possible with a worker pool or executor, or a slow callback).
///
/// ```
/// use cronlane::{Dispatcher, Overlap, Schedule, Scheduler};
/// use std::time::Duration;
///
/// let s = Scheduler::new(Dispatcher::pool(4));
/// s.add(Schedule::every(Duration::from_secs(1)))
///     .name("slow_export")
///     .overlap(Overlap::Queue)               // one waits, runs when the run ends
///     .run(|| ())?;
/// s.add(Schedule::every(Duration::from_secs(1)))
///     .name("fan_out")
///     .overlap(Overlap::Allow { max: Some(3) }) // at most 3 runs at once
///     .run(|| ())?;
/// # Ok::<(), cronlane::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlap {
    /// The fire is skipped and reported (the default).
    #[default]
    Skip,
    /// Runs may overlap, at most `max` at once (`None`: no limit). A fire over
    /// the limit is skipped and reported.
    Allow {
        /// The most runs of this task at once.
        max: Option<u32>,
    },
    /// The latest of the fires that came due during the run runs right after
    /// it ends; at most one waits, the earlier ones are skipped.
    Queue,
}

/// Deterministic jitter in `[0, max]` for one fire of one task: a hash of the
/// scheduler's seed, the task id and the scheduled instant. No shared RNG
/// state, so no contention and the same seed gives the same delays.
pub(crate) fn jitter(seed: u64, task: u64, scheduled: i64, max: i64) -> i64 {
    if max <= 0 {
        return 0;
    }
    let mut x =
        seed ^ task.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (scheduled as u64).rotate_left(17);
    // splitmix64 finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x % (max as u64 + 1)) as i64
}

/// Why a fire was skipped.
///
/// ```
/// use cronlane::{Event, EventKind, ManualClock, Schedule, Scheduler, SkipReason};
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// let skipped = Arc::new(Mutex::new(Vec::new()));
/// let seen = skipped.clone();
/// let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
/// let s = Scheduler::builder()
///     .clock(clock.clone())
///     .listener(move |e: &Event<'_>| {
///         if let EventKind::Skipped { reason, count } = e.kind {
///             seen.lock().unwrap().push((reason, count));
///         }
///     })
///     .build();
/// s.add(Schedule::every(Duration::from_millis(300))).run(|| ())?;
/// // Within the grace period (1 s), but three instants due at once: the run
/// // takes the latest, the other two are superseded.
/// clock.advance(Duration::from_millis(900));
/// assert_eq!(s.run_pending().fired, 1);
/// assert_eq!(*skipped.lock().unwrap(), [(SkipReason::Collapsed, 2)]);
/// # Ok::<(), cronlane::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// It came due while the previous run was still going (overlap policy).
    Overlap,
    /// It misfired: under policy `Skip`, beyond the catch-up cap, or an
    /// older instant collapsed into the run of the latest one (`FireOnce`).
    Misfire,
    /// Not late, but a later instant of the task was due too when the fire
    /// started (instants closer together than the engine's pace, or a clock
    /// step within the grace period): the run took the latest instant and
    /// this one was superseded. Not under `CatchUp`, which runs each.
    Collapsed,
    /// The task was removed, paused or rescheduled between claim and start.
    Cancelled,
}

/// When a durable fire's progress is written, relative to its callback
/// (see the store module).
///
/// The default is **at least once**: a process killed while a callback
/// runs repeats that fire after restart, so a crash never silently loses a
/// scheduled run (the nightly report still goes out); the price is that a
/// callback must tolerate, or deduplicate on `(name, scheduled instant)`,
/// one repeat of a fire that was interrupted. Choose **at most once** for
/// effects that must never happen twice and may be lost instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Delivery {
    /// The cursor moves past an instant *before* its callback starts (one
    /// commit per pass, before the pass's callbacks): a crash mid-run loses
    /// that run and never repeats it.
    AtMostOnce,
    /// The cursor moves past an instant *after* its callback returned (one
    /// commit per pass, after them): a crash mid-run repeats that run once
    /// after restart.
    #[default]
    AtLeastOnce,
}
