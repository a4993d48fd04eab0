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
//! * Each task keeps the instant of its last run; the next instant is always
//!   computed strictly after a scheduled instant that already ran, so a clock
//!   that jumps backwards never fires an instant twice: tasks wait until the
//!   clock reaches their next instant again. A forward jump costs one
//!   next-instant computation per task (bounded: cron searches give up after
//!   a bounded window), and catch-up is capped.

use crate::schedule::Plan;
use std::time::Duration;

/// The default grace period: a fire that starts within 1 s of its due
/// instant is on time.
pub const DEFAULT_MISFIRE_GRACE: Duration = Duration::from_secs(1);

/// What to do with fires that were missed (the engine was stalled, the clock
/// jumped, the machine slept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Misfire {
    /// All missed fires collapse into one run now; then the task returns to
    /// its schedule (the default).
    #[default]
    FireOnce,
    /// Missed fires are dropped (reported, not run); the task waits for its
    /// next scheduled instant. A one-shot that misfires is dropped.
    Skip,
    /// Each missed fire runs, oldest first, at most `max` in a row; beyond
    /// that the rest are dropped and the task returns to its schedule.
    CatchUp {
        /// The most missed fires run in a row.
        max: u32,
    },
}

/// What to do when a fire comes due while the previous run of the same task
/// is still going (possible with a worker pool or executor, or a slow callback).
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
    /// The fire runs right after the current run ends; at most one waits,
    /// further ones are skipped.
    Queue,
}

/// Whether the fire that is starting runs, and from which instant the next
/// one is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Run the callback for this fire.
    pub(crate) run: bool,
    /// The fire is late beyond the grace period.
    pub(crate) misfired: bool,
    /// Compute the next instant strictly after this one.
    pub(crate) next_from: i64,
    /// The catch-up streak after this fire.
    pub(crate) streak: u32,
}

/// Decides a fire scheduled at `scheduled`, due (with jitter) at `due`, that
/// starts at `now`; `streak` is the number of catch-up runs in a row so far.
pub(crate) fn decide(
    misfire: Misfire,
    grace: i64,
    scheduled: i64,
    due: i64,
    now: i64,
    streak: u32,
) -> Decision {
    let late = now.saturating_sub(due) > grace;
    if !late {
        return Decision {
            run: true,
            misfired: false,
            next_from: scheduled.max(now),
            streak: 0,
        };
    }
    match misfire {
        Misfire::FireOnce => Decision {
            run: true,
            misfired: true,
            next_from: scheduled.max(now),
            streak: 0,
        },
        Misfire::Skip => Decision {
            run: false,
            misfired: true,
            next_from: scheduled.max(now),
            streak: 0,
        },
        Misfire::CatchUp { max } => {
            if streak < max {
                // Oldest first: the next one is the one right after this.
                Decision {
                    run: true,
                    misfired: true,
                    next_from: scheduled,
                    streak: streak + 1,
                }
            } else {
                // Cap reached: drop the rest.
                Decision {
                    run: false,
                    misfired: true,
                    next_from: scheduled.max(now),
                    streak: 0,
                }
            }
        }
    }
}

/// How many instants of `plan` lie in `(after, until]`, counting at most
/// `cap` (reports of skipped fires; never unbounded work).
pub(crate) fn instants_between(plan: &Plan, after: i64, until: i64, cap: u64) -> u64 {
    let mut n = 0;
    let mut t = after;
    while n < cap {
        match plan.next_after(t) {
            Some(next) if next <= until => {
                n += 1;
                t = next;
            }
            _ => break,
        }
    }
    n
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

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn on_time_fires_run_and_reset_the_streak() {
        let d = decide(
            Misfire::CatchUp { max: 3 },
            S,
            10 * S,
            10 * S,
            10 * S + 1,
            2,
        );
        assert_eq!((d.run, d.misfired, d.streak), (true, false, 0));
    }

    #[test]
    fn catch_up_runs_oldest_first_then_caps() {
        let p = Misfire::CatchUp { max: 2 };
        let d = decide(p, S, 10 * S, 10 * S, 100 * S, 0);
        assert_eq!((d.run, d.next_from, d.streak), (true, 10 * S, 1));
        let d = decide(p, S, 11 * S, 11 * S, 100 * S, 1);
        assert_eq!((d.run, d.next_from, d.streak), (true, 11 * S, 2));
        let d = decide(p, S, 12 * S, 12 * S, 100 * S, 2);
        assert_eq!((d.run, d.next_from, d.streak), (false, 100 * S, 0));
    }

    #[test]
    fn skip_drops_and_fire_once_collapses() {
        let d = decide(Misfire::Skip, S, 10 * S, 10 * S, 100 * S, 0);
        assert_eq!((d.run, d.misfired, d.next_from), (false, true, 100 * S));
        let d = decide(Misfire::FireOnce, S, 10 * S, 10 * S, 100 * S, 0);
        assert_eq!((d.run, d.misfired, d.next_from), (true, true, 100 * S));
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

    #[test]
    fn counting_instants_is_capped() {
        let p = Plan::Every {
            anchor: 0,
            period: 1,
        };
        assert_eq!(instants_between(&p, 0, 10, 100), 10);
        assert_eq!(instants_between(&p, 0, i64::MAX, 100), 100);
    }
}
