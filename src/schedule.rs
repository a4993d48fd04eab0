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
    #[inline]
    pub(crate) fn next_after(&self, t: i64) -> Option<i64> {
        match self {
            Plan::Once(_) => None,
            Plan::Every { anchor, period } => match t.checked_add(1) {
                Some(t) => grid_at_or_after(*anchor, *period, t),
                None => None,
            },
            Plan::Cron { expr, tz } => expr.next_after(from_nanos(t), tz).and_then(to_nanos),
        }
    }

    pub(crate) fn is_once(&self) -> bool {
        matches!(self, Plan::Once(_))
    }
}

/// The first instant of the grid `anchor + k * period` (`k` = 0, 1, 2, ...)
/// at or after `t`: the anchor itself if `t <= anchor`. Computed in `i128`,
/// where `t - anchor` cannot overflow whatever the two `i64`s are; `None`
/// only when that instant is past `i64::MAX`.
fn grid_at_or_after(anchor: i64, period: i64, t: i64) -> Option<i64> {
    if t <= anchor {
        return Some(anchor);
    }
    let (anchor, period) = (i128::from(anchor), i128::from(period));
    let periods = (i128::from(t) - anchor + period - 1) / period;
    i64::try_from(anchor + periods * period).ok()
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
