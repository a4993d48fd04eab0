//! Schedules: when a task fires. Pure functions of time, no shared state.
//!
//! A [`Schedule`] is what the user writes (a cron expression, an interval, an
//! instant). At registration it is resolved against the scheduler's clock and
//! default time zone into a [`Plan`], which answers one question fast: the
//! next fire instant strictly after a given one.
//!
//! Recurring plans are anchored: an interval fires at `start + k * period` and
//! a cron plan at the expression's instants, so rescheduling from the
//! *scheduled* instant never drifts, however late a callback ran.

use crate::clock::{duration_nanos, from_nanos, to_nanos};
use crate::cron::{CronExpr, Dialect};
use crate::error::Error;
use crate::sync::Arc;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::fmt;
use std::time::Duration;

/// When a task fires: a cron expression, a fixed interval or one instant.
///
/// ```
/// use cronlane::Schedule;
/// use std::time::Duration;
/// let weekdays = Schedule::cron("0 9 * * MON-FRI")?.in_tz(chrono_tz::Europe::Berlin);
/// let fast = Schedule::every(Duration::from_millis(250));
/// let later = Schedule::after(Duration::from_secs(30));
/// # Ok::<(), cronlane::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// The instant, and the same in nanoseconds since the epoch (`None`
    /// if out of range), converted once here instead of at every
    /// registration that clones this schedule.
    Once(DateTime<Utc>, Option<i64>),
    After(Duration),
    Every {
        period: Duration,
        start: Option<DateTime<Utc>>,
    },
    Cron {
        expr: Arc<CronExpr>,
        tz: Option<Tz>,
    },
}

impl Schedule {
    /// A Vixie-cron expression (5 fields, or 6 with leading seconds),
    /// evaluated in the scheduler's default time zone unless [`in_tz`](Self::in_tz) says otherwise.
    pub fn cron(expr: &str) -> Result<Schedule, Error> {
        Self::cron_dialect(expr, Dialect::Vixie)
    }

    /// A cron expression in an explicitly chosen dialect.
    pub fn cron_dialect(expr: &str, dialect: Dialect) -> Result<Schedule, Error> {
        Ok(Self::from(CronExpr::parse_with(expr, dialect)?))
    }

    /// Fires every `period` (sub-second periods are fine). The first fire is
    /// one period after registration unless [`starting_at`](Self::starting_at)
    /// names it. A zero period is rejected at registration.
    pub fn every(period: Duration) -> Schedule {
        Schedule {
            kind: Kind::Every {
                period,
                start: None,
            },
        }
    }

    /// Fires once at `at`; an instant already past fires at the next `run_pending`.
    pub fn once(at: DateTime<Utc>) -> Schedule {
        Schedule {
            kind: Kind::Once(at, to_nanos(at)),
        }
    }

    /// Fires once, `delay` after registration.
    pub fn after(delay: Duration) -> Schedule {
        Schedule {
            kind: Kind::After(delay),
        }
    }

    /// For an interval: the anchor of its grid, `first + k * period` for
    /// `k` = 0, 1, 2, ... The task first fires at the first grid instant at or
    /// after registration: `first` itself when it is now or later (so
    /// `starting_at(now)` fires at once, then every period), otherwise the
    /// next instant of the grid. Any instant in the supported range (years
    /// 1677–2262) may be the anchor. No effect on other schedules.
    #[must_use]
    pub fn starting_at(mut self, first: DateTime<Utc>) -> Schedule {
        if let Kind::Every { start, .. } = &mut self.kind {
            *start = Some(first);
        }
        self
    }

    /// For a cron schedule: the time zone it is evaluated in. No effect on
    /// other schedules (their instants are absolute).
    #[must_use]
    pub fn in_tz(mut self, zone: Tz) -> Schedule {
        if let Kind::Cron { tz, .. } = &mut self.kind {
            *tz = Some(zone);
        }
        self
    }

    /// Whether the schedule is relative to when it is registered (an
    /// interval without `starting_at`, a one-shot after a delay): a
    /// durable task registered again at a restart keeps its stored anchor.
    pub(crate) fn is_relative(&self) -> bool {
        matches!(self.kind, Kind::After(_) | Kind::Every { start: None, .. })
    }

    /// The instant of a one-shot (at an instant, or after a delay from
    /// `now`, read only then), in nanoseconds, when it is valid: such a
    /// plan needs no time zone and no search. `None` for anything else.
    #[inline]
    pub(crate) fn one_shot_instant(&self, now: impl FnOnce() -> i64) -> Option<i64> {
        match self.kind {
            Kind::Once(_, nanos) => nanos,
            Kind::After(delay) => Some(now().saturating_add(duration_nanos(delay))),
            _ => None,
        }
    }

    /// Resolves against `now` and the default zone into a plan and its first
    /// fire instant (an error if it never fires).
    pub(crate) fn resolve(&self, now: i64, default_tz: Tz) -> Result<(Plan, i64), Error> {
        let plan = match &self.kind {
            Kind::Once(at, nanos) => Plan::Once(nanos.ok_or_else(|| out_of_range(at))?),
            Kind::After(delay) => Plan::Once(now.saturating_add(duration_nanos(*delay))),
            Kind::Every { period, start } => {
                let period = duration_nanos(*period);
                if period == 0 {
                    return Err(Error::ZeroInterval);
                }
                let anchor = match start {
                    Some(s) => to_nanos(*s).ok_or_else(|| out_of_range(s))?,
                    None => now.saturating_add(period),
                };
                Plan::Every { anchor, period }
            }
            Kind::Cron { expr, tz } => Plan::Cron {
                expr: expr.clone(),
                tz: tz.unwrap_or(default_tz),
            },
        };
        match plan.first(now) {
            Some(first) => Ok((plan, first)),
            None => Err(Error::NeverFires(self.to_string())),
        }
    }
}

fn out_of_range(t: &DateTime<Utc>) -> Error {
    Error::OutOfRange(t.to_rfc3339())
}

impl From<CronExpr> for Schedule {
    fn from(expr: CronExpr) -> Schedule {
        Schedule {
            kind: Kind::Cron {
                expr: Arc::new(expr),
                tz: None,
            },
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Once(at, _) => write!(f, "once at {}", at.to_rfc3339()),
            Kind::After(d) => write!(f, "once after {d:?}"),
            Kind::Every { period, .. } => write!(f, "every {period:?}"),
            Kind::Cron { expr, tz: Some(tz) } => write!(f, "cron `{}` in {tz}", expr.as_str()),
            Kind::Cron { expr, tz: None } => write!(f, "cron `{}`", expr.as_str()),
        }
    }
}

/// A resolved schedule: absolute instants in engine nanoseconds.
#[derive(Debug, Clone)]
pub(crate) enum Plan {
    Once(i64),
    Every { anchor: i64, period: i64 },
    Cron { expr: Arc<CronExpr>, tz: Tz },
}

/// The cron arm of [`Plan::next_after`], kept out of line so the interval
/// arm inlines into the fire path without the cron walk beside it.
#[inline(never)]
fn cron_next_after(expr: &CronExpr, tz: &Tz, t: i64) -> Option<i64> {
    expr.next_after(from_nanos(t), tz).and_then(to_nanos)
}

impl Plan {
    /// The first fire instant for a task registered (or resumed, or
    /// rescheduled) at `now`. A one-shot in the past fires at once; an
    /// interval fires at its first grid instant *at or after* `now` (the
    /// anchor itself when it is not in the past); a cron plan at its first
    /// instant strictly after `now`.
    pub(crate) fn first(&self, now: i64) -> Option<i64> {
        match self {
            Plan::Once(at) => Some(*at),
            Plan::Every { anchor, period } => grid_at_or_after(*anchor, *period, now),
            Plan::Cron { .. } => self.next_after(now),
        }
    }

    /// The fire instant strictly after `t`, if any. For an interval `None`
    /// only means that the next grid instant is past the end of the
    /// representable range.
    ///
    /// Always inlined: the interval arm is a few instructions on every
    /// recurring fire; the cron arm stays out of line
    /// ([`cron_next_after`]) so it does not bloat the callers.
    #[inline(always)]
    pub(crate) fn next_after(&self, t: i64) -> Option<i64> {
        match self {
            Plan::Once(_) => None,
            Plan::Every { anchor, period } => match t.checked_add(1) {
                Some(t) => grid_at_or_after(*anchor, *period, t),
                None => None,
            },
            Plan::Cron { expr, tz } => cron_next_after(expr, tz, t),
        }
    }

    /// How many instants lie in `(after, until]`: exactly for an interval
    /// (arithmetic), at most `cap` for cron (walked instant by instant).
    pub(crate) fn count_in(&self, after: i64, until: i64, cap: u64) -> u64 {
        match self {
            Plan::Once(_) => 0,
            Plan::Every { anchor, period } => {
                let Some(first) = after.checked_add(1) else {
                    return 0;
                };
                match grid_at_or_after(*anchor, *period, first) {
                    Some(first) if first <= until => {
                        let last = grid_at_or_before(*anchor, *period, until);
                        // Whole periods from first to last, plus first itself.
                        let n = (i128::from(last) - i128::from(first)) / i128::from(*period) + 1;
                        u64::try_from(n).unwrap_or(u64::MAX)
                    }
                    _ => 0,
                }
            }
            Plan::Cron { .. } => self.walk(after, until, cap).1,
        }
    }

    /// When more than one instant is due at `now`: `first` is an instant of
    /// this plan and `second` the next one, both at or before `now`. Returns
    /// the latest instant at or before `now` and how many instants lie in
    /// `(first, latest]`. For an interval both are arithmetic and the count
    /// is exact. For cron the count stops at `cap` (a walk of at most `cap`
    /// evaluations); the latest instant is then found by bisection over
    /// `(last instant walked, now]`, one evaluation per halving (at most 64),
    /// so a year-long jump on an every-second expression stays cheap.
    pub(crate) fn latest_due(&self, first: i64, second: i64, now: i64, cap: u64) -> (i64, u64) {
        debug_assert!(first < second && second <= now);
        match self {
            Plan::Once(_) => (first, 0),
            Plan::Every { anchor, period } => (
                grid_at_or_before(*anchor, *period, now),
                self.count_in(first, now, cap),
            ),
            Plan::Cron { .. } => {
                let (last, n) = self.walk(first, now, cap.max(1));
                if n < cap.max(1) {
                    return (last, n);
                }
                // Capped: some instant in (last, now] may still be due. The
                // predicate "no instant in (t, now]" is false at `last` (or
                // `last` is the latest) and true at `now`; bisect for the
                // smallest `t` where it holds, which is the latest instant.
                if self.next_after(last).is_none_or(|t| t > now) {
                    return (last, n);
                }
                let (mut lo, mut hi) = (last, now);
                while hi - lo > 1 {
                    let mid = ((i128::from(lo) + i128::from(hi)) / 2) as i64;
                    if self.next_after(mid).is_some_and(|t| t <= now) {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                (hi, n)
            }
        }
    }

    /// Walks instants in `(after, until]`: the last one reached (`after` if
    /// none) and how many, at most `cap`.
    fn walk(&self, after: i64, until: i64, cap: u64) -> (i64, u64) {
        let (mut t, mut n) = (after, 0);
        while n < cap {
            match self.next_after(t) {
                Some(next) if next <= until => {
                    t = next;
                    n += 1;
                }
                _ => break,
            }
        }
        (t, n)
    }

    pub(crate) fn is_once(&self) -> bool {
        matches!(self, Plan::Once(_))
    }

    /// The first instant for a task (re)planned at `now` whose latest
    /// started fire was scheduled at `cursor`: [`first`](Self::first), but
    /// for a recurring plan never at or before `cursor`. Resume and
    /// reschedule go through this, so that neither a clock that went back
    /// nor a fire racing them can run an instant twice or out of order. A
    /// one-shot plan is an explicit order for its instant and is not
    /// clamped.
    pub(crate) fn first_after_cursor(&self, now: i64, cursor: i64) -> Option<i64> {
        let first = self.first(now)?;
        if first > cursor || self.is_once() {
            Some(first)
        } else {
            self.next_after(cursor)
        }
    }
}

impl Plan {
    /// The plan as text, for a store: `cron <dialect> <zone> <expression>`,
    /// `every <period ns> from <anchor ns>`, or `once <instant ns>`.
    /// [`Plan::from_text`] reads it back.
    pub(crate) fn to_text(&self) -> String {
        match self {
            Plan::Once(at) => format!("once {at}"),
            Plan::Every { anchor, period } => format!("every {period} from {anchor}"),
            Plan::Cron { expr, tz } => {
                let dialect = match expr.dialect() {
                    Dialect::Vixie => "vixie",
                    Dialect::Quartz => "quartz",
                };
                format!("cron {dialect} {} {}", tz.name(), expr.as_str())
            }
        }
    }

    /// Reads [`Plan::to_text`]'s form back; anything else is an error
    /// naming what was wrong.
    pub(crate) fn from_text(text: &str) -> Result<Plan, Error> {
        let bad = |why: &str| Error::BadRecord(format!("schedule {text:?}: {why}"));
        let int = |s: Option<&str>, what: &str| -> Result<i64, Error> {
            s.and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| bad(&format!("{what} is not an integer")))
        };
        let mut words = text.splitn(4, ' ');
        match words.next() {
            Some("once") => Ok(Plan::Once(int(words.next(), "instant")?)),
            Some("every") => {
                let period = int(words.next(), "period")?;
                if words.next() != Some("from") {
                    return Err(bad("expected `from`"));
                }
                let anchor = int(words.next(), "anchor")?;
                if period <= 0 {
                    return Err(bad("period is not positive"));
                }
                Ok(Plan::Every { anchor, period })
            }
            Some("cron") => {
                let dialect = match words.next() {
                    Some("vixie") => Dialect::Vixie,
                    Some("quartz") => Dialect::Quartz,
                    _ => return Err(bad("unknown dialect")),
                };
                let tz: Tz = words
                    .next()
                    .and_then(|z| z.parse().ok())
                    .ok_or_else(|| bad("unknown time zone"))?;
                let expr = words.next().ok_or_else(|| bad("no expression"))?;
                let expr = CronExpr::parse_with(expr, dialect)?;
                Ok(Plan::Cron {
                    expr: Arc::new(expr),
                    tz,
                })
            }
            _ => Err(bad("unknown kind")),
        }
    }
}

/// The first instant of the grid `anchor + k * period` (`k` = 0, 1, 2, ...)
/// at or after `t`: the anchor itself if `t <= anchor`. `None` only when
/// that instant is past `i64::MAX`.
#[inline]
fn grid_at_or_after(anchor: i64, period: i64, t: i64) -> Option<i64> {
    if t <= anchor {
        return Some(anchor);
    }
    // In `i64` when nothing overflows (every fire of an interval comes
    // here, and an `i128` division is a library call) ...
    if let Some(d) = t.checked_sub(anchor) {
        let periods = (d - 1) / period + 1;
        if let Some(at) = periods
            .checked_mul(period)
            .and_then(|o| anchor.checked_add(o))
        {
            return Some(at);
        }
    }
    // ... else in `i128`, where `t - anchor` cannot overflow whatever the
    // two `i64`s are (an anchor in 1700 and a clock in 2026 differ by more
    // than `i64::MAX` nanoseconds).
    let (anchor, period) = (i128::from(anchor), i128::from(period));
    let periods = (i128::from(t) - anchor + period - 1) / period;
    i64::try_from(anchor + periods * period).ok()
}

/// The last instant of the grid `anchor + k * period` (`k` = 0, 1, 2, ...)
/// at or before `t`, for `t >= anchor`.
fn grid_at_or_before(anchor: i64, period: i64, t: i64) -> i64 {
    debug_assert!(t >= anchor);
    let (a, p) = (i128::from(anchor), i128::from(period));
    // Between `anchor` and `t`, both `i64`: fits.
    (a + (i128::from(t) - a) / p * p) as i64
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Plan::Once(at) => write!(f, "once at {}", from_nanos(*at).to_rfc3339()),
            Plan::Every { period, .. } => {
                write!(f, "every {:?}", Duration::from_nanos(*period as u64))
            }
            Plan::Cron { expr, tz } => write!(f, "cron `{}` in {tz}", expr.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_is_anchored_and_strictly_after() {
        let p = Plan::Every {
            anchor: 1_000,
            period: 100,
        };
        assert_eq!(p.next_after(0), Some(1_000));
        assert_eq!(p.next_after(1_000), Some(1_100));
        assert_eq!(p.next_after(1_099), Some(1_100));
        assert_eq!(p.next_after(1_100), Some(1_200));
        assert_eq!(p.first(5_000), Some(5_000), "on the grid: now");
        assert_eq!(p.first(5_001), Some(5_100));
        assert_eq!(p.first(0), Some(1_000), "before the anchor: the anchor");
    }

    #[test]
    fn every_works_over_the_whole_range() {
        let p = Plan::Every {
            anchor: i64::MIN,
            period: 1,
        };
        assert_eq!(p.first(i64::MIN), Some(i64::MIN));
        assert_eq!(p.next_after(i64::MAX - 1), Some(i64::MAX));
        assert_eq!(p.next_after(i64::MAX), None);
        assert_eq!(p.first(i64::MAX), Some(i64::MAX));
        let p = Plan::Every {
            anchor: i64::MIN,
            period: 1_000,
        };
        // i64::MIN = -9_223_372_036_854_776_000 + 192: the grid is 192 mod 1,000.
        assert_eq!(p.next_after(0), Some(192));
        assert_eq!(p.first(192), Some(192));
        assert_eq!(p.first(193), Some(1_192));
        let p = Plan::Every {
            anchor: i64::MAX - 5,
            period: 10,
        };
        assert_eq!(p.first(0), Some(i64::MAX - 5));
        assert_eq!(p.next_after(i64::MAX - 5), None, "past the end");
    }

    #[test]
    fn counting_instants_is_exact_for_intervals_and_capped_for_cron() {
        let p = Plan::Every {
            anchor: 0,
            period: 1,
        };
        assert_eq!(p.count_in(0, 10, 100), 10);
        assert_eq!(p.count_in(0, i64::MAX, 100), i64::MAX as u64, "exact");
        assert_eq!(p.count_in(i64::MAX, i64::MAX, 100), 0);
        let p = Plan::Every {
            anchor: 1_000,
            period: 100,
        };
        assert_eq!(p.count_in(0, 999, 9), 0, "before the anchor");
        assert_eq!(p.count_in(0, 1_000, 9), 1);
        assert_eq!(p.count_in(1_000, 1_299, 9), 2);
        assert_eq!(p.count_in(1_050, 1_300, 9), 3);
        assert_eq!(p.latest_due(1_000, 1_100, 1_399, 1), (1_300, 3));
        let p = Plan::Every {
            anchor: i64::MIN,
            period: 1,
        };
        assert_eq!(
            p.latest_due(i64::MIN, i64::MIN + 1, i64::MAX, 1),
            (i64::MAX, u64::MAX)
        );
        let cron = |e: &str| Plan::Cron {
            expr: Arc::new(CronExpr::parse_with(e, Dialect::Vixie).unwrap()),
            tz: Tz::UTC,
        };
        const S: i64 = 1_000_000_000;
        let p = cron("* * * * * *");
        assert_eq!(p.count_in(0, 10 * S, 100), 10);
        assert_eq!(p.count_in(0, 1_000 * S, 100), 100, "capped");
        assert_eq!(p.latest_due(S, 2 * S, 10 * S + 5, 100), (10 * S, 9));
        assert_eq!(p.latest_due(S, 2 * S, 1_000 * S + 5, 100), (1_000 * S, 100));
        // Sparse: Feb 29 at midnight; from 2000-02-29 to 2025: latest 2024.
        let p = cron("0 0 29 2 *");
        let at = |s: &str| to_nanos(s.parse().unwrap()).unwrap();
        let first = at("2000-02-29T00:00:00Z");
        let second = at("2004-02-29T00:00:00Z");
        let now = at("2025-06-01T00:00:00Z");
        assert_eq!(
            p.latest_due(first, second, now, 2),
            (at("2024-02-29T00:00:00Z"), 2)
        );
        assert_eq!(
            p.latest_due(first, second, now, 100),
            (at("2024-02-29T00:00:00Z"), 6)
        );
    }

    #[test]
    fn the_latest_due_cron_instant_matches_a_full_walk_across_dst() {
        const S: i64 = 1_000_000_000;
        let at = |s: &str| to_nanos(s.parse().unwrap()).unwrap();
        // Around both 2025 changes in Berlin (30 March, 26 October).
        for expr in ["*/7 * * * * *", "30 2 * * *", "*/20 * * * *", "0 0 29 2 *"] {
            let p = Plan::Cron {
                expr: Arc::new(CronExpr::parse_with(expr, Dialect::Vixie).unwrap()),
                tz: chrono_tz::Europe::Berlin,
            };
            for from in ["2025-03-29T23:00:00Z", "2025-10-25T23:00:00Z"] {
                let first = p.next_after(at(from)).unwrap();
                let second = p.next_after(first).unwrap();
                for span in [3 * S, 3_600 * S, 26 * 3_600 * S, 9 * 86_400 * S] {
                    let now = first + span + 123;
                    if second > now {
                        continue;
                    }
                    let (want, n) = p.walk(first, now, u64::MAX);
                    for cap in [1, 5, 1_000] {
                        let got = p.latest_due(first, second, now, cap);
                        assert_eq!(
                            got,
                            (want, n.min(cap)),
                            "{expr} from {from} +{span} cap {cap}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn zero_interval_is_rejected() {
        let err = Schedule::every(Duration::ZERO).resolve(0, Tz::UTC);
        assert!(matches!(err, Err(Error::ZeroInterval)));
    }

    #[test]
    fn once_in_the_past_still_fires() {
        let (plan, first) = Schedule::once(from_nanos(10))
            .resolve(1_000, Tz::UTC)
            .unwrap();
        assert_eq!(first, 10);
        assert_eq!(plan.first(1_000), Some(10));
        assert_eq!(plan.next_after(10), None);
    }
}
