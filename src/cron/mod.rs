//! Cron expressions: parsing, next-fire evaluation in any time zone, and
//! plain-English explanations.
//!
//! Two dialects, always chosen explicitly (never guessed):
//! - [`Dialect::Vixie`] (default): the crontab people know. 5 fields
//!   (`min hour dom mon dow`) or 6 with leading seconds; lists, ranges, steps,
//!   names, 0 and 7 = Sunday, `@daily`-style macros, `L`, `nL`, `n#k`, `nW`,
//!   `LW`; day-of-month and day-of-week combine with OR when both are
//!   restricted, with AND when either starts with `*`.
//! - [`Dialect::Quartz`]: 6 or 7 fields (seconds first, optional year), weekday
//!   1-7 with 1 = Sunday, `?`, day fields combined with AND.
//!
//! The full rules, including daylight saving, are in `docs/cron.md`.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use cronlane::cron::CronExpr;
//!
//! let expr = CronExpr::parse("0 9 * * MON-FRI").unwrap();
//! let after = Utc.with_ymd_and_hms(2025, 6, 13, 12, 0, 0).unwrap(); // a Friday
//! let next = expr.next_after(after, &chrono_tz::Europe::Berlin).unwrap();
//! assert_eq!(next, Utc.with_ymd_and_hms(2025, 6, 16, 7, 0, 0).unwrap());
//! assert!(expr.explain().starts_with("At 09:00, Monday through Friday. Fixed-time job:"));
//! ```
//!
//! Module map: `lex` (fields, macros), `parse` (text to bitsets), `field`
//! (bitsets and calendar arithmetic), `eval` (next-fire search and DST),
//! `zone` (offsets: chrono-tz's tables, then the zone's ongoing rule from
//! 2100), `explain`, `error`.

use std::fmt;

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;

mod error;
mod eval;
mod explain;
mod field;
mod lex;
mod parse;
mod zone;

pub use error::{CronError, CronErrorKind, CronField};

/// Which cron dialect an expression is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// Vixie/Debian crontab: 5 fields, or 6 with leading seconds.
    #[default]
    Vixie,
    /// Quartz / `cron` crate: 6 or 7 fields, seconds first, optional year.
    Quartz,
}

/// A compiled cron expression.
///
/// Cheap to evaluate: every field is a bitset, and [`CronExpr::next_after`]
/// takes `&self` and caches nothing, so one expression can be shared between
/// threads.
///
/// ```
/// use cronlane::{CronExpr, Dialect};
///
/// let expr = CronExpr::parse("30 2 * * *")?;
/// let after = "2025-03-30T00:00:00Z".parse().unwrap();
/// // Berlin skips 02:00-03:00 that night: a fixed-time job fires right after the gap.
/// let next = expr.next_after(after, &chrono_tz::Europe::Berlin).unwrap();
/// assert_eq!(next.to_rfc3339(), "2025-03-30T01:00:00+00:00"); // 03:00 CEST
/// assert!(expr.is_fixed_time());
///
/// let quartz = CronExpr::parse_with("0 0 12 ? * MON-FRI", Dialect::Quartz)?;
/// assert_eq!(quartz.dialect(), Dialect::Quartz);
///
/// let err = CronExpr::parse("0 25 * * *").unwrap_err(); // hour 25
/// assert_eq!(err.position(), 2);
/// # Ok::<(), cronlane::cron::CronError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    source: String,
    dialect: Dialect,
    schedule: field::Schedule,
}

impl CronExpr {
    /// Parses a Vixie-dialect expression.
    pub fn parse(expr: &str) -> Result<CronExpr, CronError> {
        Self::parse_with(expr, Dialect::Vixie)
    }

    /// Parses an expression in the given dialect.
    pub fn parse_with(expr: &str, dialect: Dialect) -> Result<CronExpr, CronError> {
        let mut schedule = parse::parse(expr, dialect)?;
        schedule.never = eval::never_fires(&schedule);
        Ok(CronExpr {
            source: expr.to_owned(),
            dialect,
            schedule,
        })
    }

    /// The next fire instant strictly after `after`, evaluated in `tz`.
    ///
    /// `None` means the expression never fires again (looking up to 400 years
    /// ahead). Runs in bounded time and never panics.
    pub fn next_after(&self, after: DateTime<Utc>, tz: &Tz) -> Option<DateTime<Utc>> {
        eval::next_after(&self.schedule, after, tz)
    }

    /// An iterator over the fire instants strictly after `after`, in order.
    pub fn iter_after(
        &self,
        after: DateTime<Utc>,
        tz: Tz,
    ) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let mut last = Some(after);
        std::iter::from_fn(move || {
            let next = self.next_after(last?, &tz);
            last = next;
            next
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The dialect the expression was parsed in.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Whether the daylight-saving rules treat this as a fixed-time job (5
    /// fields, minute and hour not starting with `*`): such a job fires once in
    /// a repeated hour and once right after a skipped one.
    pub fn is_fixed_time(&self) -> bool {
        self.schedule.fixed_time
    }

    /// The expression in plain English: the schedule, then how it meets
    /// daylight saving (a fixed-time or a wall-clock job, see
    /// [`is_fixed_time`](CronExpr::is_fixed_time)), or that it never fires.
    ///
    /// ```
    /// use cronlane::cron::CronExpr;
    ///
    /// let e = CronExpr::parse("30 2 * * *").unwrap();
    /// assert!(e.explain().starts_with("At 02:30. Fixed-time job: "));
    /// let e = CronExpr::parse("0 30 2 * * *").unwrap();
    /// assert!(e.explain().starts_with("At 02:30. Wall-clock job: "));
    /// let e = CronExpr::parse("0 0 30 2 *").unwrap();
    /// assert_eq!(
    ///     e.explain(),
    ///     "At 00:00, on day 30 of the month, only in February. It never fires: no date matches it."
    /// );
    /// ```
    pub fn explain(&self) -> String {
        explain::explain(
            &self.source,
            self.dialect,
            self.schedule.fixed_time,
            self.schedule.never,
        )
    }
}

/// The UTC offset of `tz` at `at` as the evaluator sees it: chrono-tz's
/// tables up to 2099, and from 2100 on the zone's ongoing daylight-saving
/// rule (chrono-tz alone keeps the zone's last 2099 offset for ever, so its
/// `with_timezone` shows a summer fire time in 2100 an hour off). `None` only
/// at the edges of chrono's range.
///
/// ```
/// use chrono::{TimeZone, Utc};
///
/// let berlin = chrono_tz::Europe::Berlin;
/// let summer = Utc.with_ymd_and_hms(2100, 7, 1, 10, 0, 0).unwrap();
/// let offset = cronlane::cron::utc_offset(&berlin, summer).unwrap();
/// assert_eq!(summer.with_timezone(&offset).to_rfc3339(), "2100-07-01T12:00:00+02:00");
/// ```
pub fn utc_offset(tz: &Tz, at: DateTime<Utc>) -> Option<FixedOffset> {
    let secs = zone::Zone::new(tz).offset_at(at.timestamp())?;
    FixedOffset::east_opt(i32::try_from(secs).ok()?)
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for CronExpr {
    type Err = CronError;

    fn from_str(s: &str) -> Result<CronExpr, CronError> {
        CronExpr::parse(s)
    }
}

#[cfg(test)]
mod tests;
