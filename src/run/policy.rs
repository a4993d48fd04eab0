//! The decision for one fire: whether it runs, for which instant, what is
//! skipped and the next instant, under the rules of [`crate::policy`]
//! (misfire, collapse, catch-up). A pure function of the task's plan and
//! the clock reading.

use crate::policy::{Misfire, SkipReason};
use crate::schedule::Plan;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::jitter;

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
