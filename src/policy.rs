//! Run policies: what happens when a fire is late (misfire), when a fire comes
//! due while the previous run of the same task is still going (overlap), and
//! random delays to spread load (jitter). Pure functions of time and of the
//! task's plan; the engine applies them in `Core::execute`.
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
//!   plan walks at most [`CRON_COUNT_CAP`] (10,000) instants, counting them,
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

use crate::schedule::Plan;
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

/// Most instants counted, besides the fire's own, when a cron task finds
/// several due at once (a walk of one evaluation each); intervals count
/// exactly. Also the cap for instants that came due during a run.
pub(crate) const CRON_COUNT_CAP: u64 = 10_000;

/// What the fire that is starting does: whether its callback runs, for which
/// instant, what is skipped, and the next instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Run the callback.
    pub(crate) run: bool,
    /// The fire is late beyond the grace period.
    pub(crate) misfired: bool,
    /// The instant the callback runs for (`ctx.scheduled()`): the claimed
    /// one, or the latest instant due when several are.
    pub(crate) scheduled: i64,
    /// Instants that do not run: with `run`, older instants collapsed into
    /// this run; without, the fire's own instant and every other one due.
    pub(crate) skipped: u64,
    /// Why those were skipped.
    pub(crate) reason: SkipReason,
    /// The next instant (`None`: the plan has no more).
    pub(crate) next: Option<i64>,
    /// The catch-up streak after this fire.
    pub(crate) streak: u32,
}

/// Decides a fire of `plan` scheduled at `scheduled`, due (with jitter) at
/// `due`, that starts at `now`; `streak` is the number of catch-up runs in a
/// row so far. See the module rules. When only this instant is due (the
/// common case) it costs one `next_after`, which is also the next instant.
pub(crate) fn decide(
    plan: &Plan,
    misfire: Misfire,
    grace: i64,
    scheduled: i64,
    due: i64,
    now: i64,
    streak: u32,
) -> Decision {
    let late = now.saturating_sub(due) > grace;
    let after = plan.next_after(scheduled);
    // Several instants due: the latest, and how many lie after this one.
    let latest = || match after {
        Some(second) if second <= now => plan.latest_due(scheduled, second, now, CRON_COUNT_CAP),
        _ => (scheduled, 0),
    };
    let decision = |run, scheduled, skipped, reason, next, streak| Decision {
        run,
        misfired: late,
        scheduled,
        skipped,
        reason,
        next,
        streak,
    };
    match misfire {
        // Oldest first: each instant runs, the next is the one right after.
        Misfire::CatchUp { .. } if !late => {
            decision(true, scheduled, 0, SkipReason::Misfire, after, 0)
        }
        Misfire::CatchUp { max } if streak < max => {
            decision(true, scheduled, 0, SkipReason::Misfire, after, streak + 1)
        }
        // Late under `Skip`, or the catch-up cap reached: drop every
        // instant due, this one included.
        Misfire::Skip | Misfire::CatchUp { .. } if late => {
            let (last, more) = latest();
            let next = if more == 0 {
                after
            } else {
                plan.next_after(last)
            };
            let skipped = more.saturating_add(1);
            decision(false, scheduled, skipped, SkipReason::Misfire, next, 0)
        }
        // `FireOnce`, or on time: one run, for the latest instant due.
        _ => {
            let (last, more) = latest();
            let next = if more == 0 {
                after
            } else {
                plan.next_after(last)
            };
            let reason = if late {
                SkipReason::Misfire
            } else {
                SkipReason::Collapsed
            };
            decision(true, last, more, reason, next, 0)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn every_second() -> Plan {
        Plan::Every {
            anchor: 0,
            period: S,
        }
    }

    #[test]
    fn on_time_fires_run_and_reset_the_streak() {
        let p = every_second();
        let d = decide(
            &p,
            Misfire::CatchUp { max: 3 },
            S,
            10 * S,
            10 * S,
            10 * S + 1,
            2,
        );
        assert_eq!((d.run, d.misfired, d.streak), (true, false, 0));
        assert_eq!((d.scheduled, d.skipped, d.next), (10 * S, 0, Some(11 * S)));
    }

    #[test]
    fn catch_up_runs_oldest_first_then_caps() {
        let (p, m) = (every_second(), Misfire::CatchUp { max: 2 });
        let d = decide(&p, m, S, 10 * S, 10 * S, 100 * S, 0);
        assert_eq!((d.run, d.next, d.streak), (true, Some(11 * S), 1));
        let d = decide(&p, m, S, 11 * S, 11 * S, 100 * S, 1);
        assert_eq!((d.run, d.next, d.streak), (true, Some(12 * S), 2));
        // Cap reached: 12..=100 s dropped, all counted.
        let d = decide(&p, m, S, 12 * S, 12 * S, 100 * S, 2);
        assert_eq!((d.run, d.next, d.streak), (false, Some(101 * S), 0));
        assert_eq!((d.skipped, d.reason), (89, SkipReason::Misfire));
        // Not late: the next instant even if it is due already.
        let d = decide(&p, m, S, 10 * S, 10 * S, 10 * S + S / 2, 2);
        assert_eq!((d.run, d.misfired, d.next), (true, false, Some(11 * S)));
    }

    #[test]
    fn skip_drops_every_due_instant_and_fire_once_runs_the_latest() {
        let p = every_second();
        let d = decide(&p, Misfire::Skip, S, 10 * S, 10 * S, 100 * S, 0);
        assert_eq!((d.run, d.misfired, d.next), (false, true, Some(101 * S)));
        assert_eq!((d.skipped, d.reason), (91, SkipReason::Misfire));
        let d = decide(&p, Misfire::FireOnce, S, 10 * S, 10 * S, 100 * S, 0);
        assert_eq!((d.run, d.misfired, d.next), (true, true, Some(101 * S)));
        assert_eq!(
            (d.scheduled, d.skipped, d.reason),
            (100 * S, 90, SkipReason::Misfire)
        );
        // A one-shot late under `Skip`: its own instant only.
        let d = decide(
            &Plan::Once(10 * S),
            Misfire::Skip,
            S,
            10 * S,
            10 * S,
            100 * S,
            0,
        );
        assert_eq!((d.run, d.skipped, d.next), (false, 1, None));
    }

    #[test]
    fn on_time_instants_collapse_into_the_latest_under_any_policy_but_catch_up() {
        let p = Plan::Every {
            anchor: 0,
            period: S / 1_000,
        };
        for m in [Misfire::FireOnce, Misfire::Skip] {
            let d = decide(&p, m, S, S / 1_000, S / 1_000, S, 0);
            assert_eq!((d.run, d.misfired, d.scheduled), (true, false, S), "{m:?}");
            assert_eq!((d.skipped, d.reason), (999, SkipReason::Collapsed), "{m:?}");
            assert_eq!(d.next, Some(S + S / 1_000), "{m:?}");
        }
    }

    #[test]
    fn jitter_is_bounded_and_deterministic() {
        for t in 0..1000 {
            let j = jitter(42, 7, t * S, S);
            assert!((0..=S).contains(&j));
            assert_eq!(j, jitter(42, 7, t * S, S));
        }
        assert_ne!(jitter(1, 7, 0, S), jitter(2, 7, 0, S));
        assert_eq!(jitter(1, 7, 0, 0), 0);
    }
}
