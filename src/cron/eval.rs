//! Next-fire search: first in wall-clock time with the field bitsets, then
//! mapped to a real instant under the daylight-saving rules.
//!
//! Ground rules:
//! - [`Schedule::next_wall`] works on naive wall time only. It walks the fields
//!   from month down to second with `trailing_zeros` on the bitsets, skipping
//!   whole months and days that cannot match, and gives up after
//!   [`HORIZON_YEARS`] (the Gregorian calendar repeats every 400 years, so an
//!   expression that matches nothing in that window never matches).
//! - [`next_after`] owns the time-zone rules (see `docs/cron.md`):
//!   * UTC: wall time *is* the instant; no zone lookup at all.
//!   * fixed-time jobs (5 fields, minute and hour not starting with `*`): walk
//!     wall times in order; a repeated wall time maps to its first pass only, a
//!     wall time in a gap maps to the first instant after the gap.
//!   * every other job follows the wall clock: an instant fires when its local
//!     time matches, so gap times never happen and repeated times fire twice.
//!   * offsets and wall-time resolution come from [`Zone`]: chrono-tz's
//!     tables up to 2100, the zone's ongoing rule after (`zone.rs`).
//! - Everything is a pure function of `&Schedule`; nothing is cached between
//!   calls (a `Zone` lives for one call).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::field::{civil_from_days, days_from_civil, next_bit, Schedule};
use super::zone::{Resolved, Zone};

/// How far ahead (in years of wall time) the search looks before giving up.
pub(crate) const HORIZON_YEARS: i64 = 400;

/// Largest DST shift we plan for when looking for an upcoming fall-back.
const MAX_SHIFT_SECS: i64 = 3 * 3600;

/// Safety net on the number of wall-time candidates examined per call.
const MAX_CANDIDATES: u32 = 4096;

/// A naive wall-clock time, one field per cron field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wall {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
}

impl Wall {
    /// The wall time `secs` seconds after 1970-01-01T00:00:00 (naive).
    pub(crate) fn from_secs(secs: i64) -> Wall {
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Wall {
            year,
            month,
            day,
            hour: sod / 3600,
            minute: sod / 60 % 60,
            second: sod % 60,
        }
    }

    /// Seconds since 1970-01-01T00:00:00 (naive).
    pub(crate) fn to_secs(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
    }

    fn first_of_month(year: i64, month: u32) -> Wall {
        Wall {
            year,
            month,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        }
    }
}

impl Schedule {
    /// The smallest matching wall time at or after `w`, if any within the horizon.
    pub(crate) fn next_wall(&self, mut w: Wall) -> Option<Wall> {
        let limit = w.year.saturating_add(HORIZON_YEARS);
        'month: loop {
            if w.year > limit {
                return None;
            }
            if let Some(years) = &self.years {
                let y = years.next_at_or_after(w.year)?;
                if y != w.year {
                    w = Wall::first_of_month(y, 1);
                }
            }
            match next_bit(u64::from(self.months), w.month) {
                None => {
                    w = Wall::first_of_month(w.year + 1, 1);
                    continue 'month;
                }
                Some(m) if m != w.month => w = Wall::first_of_month(w.year, m),
                Some(_) => {}
            }
            let days = self.day_mask(w.year, w.month);
            'day: loop {
                match next_bit(u64::from(days), w.day) {
                    None => {
                        w = next_month(w);
                        continue 'month;
                    }
                    Some(d) if d != w.day => {
                        w.day = d;
                        w.hour = 0;
                        w.minute = 0;
                        w.second = 0;
                    }
                    Some(_) => {}
                }
                'hour: loop {
                    match next_bit(u64::from(self.hours), w.hour) {
                        None => {
                            w.day += 1;
                            w.hour = 0;
                            w.minute = 0;
                            w.second = 0;
                            continue 'day;
                        }
                        Some(h) if h != w.hour => {
                            w.hour = h;
                            w.minute = 0;
                            w.second = 0;
                        }
                        Some(_) => {}
                    }
                    loop {
                        match next_bit(self.minutes, w.minute) {
                            None => {
                                w.hour += 1;
                                w.minute = 0;
                                w.second = 0;
                                continue 'hour;
                            }
                            Some(m) if m != w.minute => {
                                w.minute = m;
                                w.second = 0;
                            }
                            Some(_) => {}
                        }
                        match next_bit(self.seconds, w.second) {
                            None => {
                                w.minute += 1;
                                w.second = 0;
                            }
                            Some(s) => {
                                w.second = s;
                                return Some(w);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn next_month(w: Wall) -> Wall {
    if w.month >= 12 {
        Wall::first_of_month(w.year + 1, 1)
    } else {
        Wall::first_of_month(w.year, w.month + 1)
    }
}

/// Whether no wall time ever matches. The calendar repeats every 400 years
/// and Quartz years end in 2099, so one search from 1970 over the horizon
/// settles it; `next_after` then answers `None` without searching.
pub(crate) fn never_fires(s: &Schedule) -> bool {
    s.next_wall(Wall::first_of_month(1970, 1)).is_none()
}

/// Whether `tz` is UTC under another name, so no lookup is needed.
fn is_utc(tz: &Tz) -> bool {
    matches!(
        tz,
        Tz::UTC | Tz::Etc__UTC | Tz::Etc__UCT | Tz::Etc__Zulu | Tz::Etc__GMT | Tz::GMT
    )
}

/// The next fire instant strictly after `after` (see the module rules).
pub(crate) fn next_after(s: &Schedule, after: DateTime<Utc>, tz: &Tz) -> Option<DateTime<Utc>> {
    if s.never {
        return None;
    }
    // Fire times are whole seconds, so "strictly after" is "at or after start".
    let start = after.timestamp().checked_add(1)?;
    let t = if is_utc(tz) {
        s.next_wall(Wall::from_secs(start))?.to_secs()
    } else if s.fixed_time {
        next_fixed(s, start, &Zone::new(tz))?
    } else {
        next_wall_clock(s, start, &Zone::new(tz))?
    };
    DateTime::from_timestamp(t, 0)
}

/// Fixed-time jobs: wall times in order, first pass of a repeat, gap to its end.
fn next_fixed(s: &Schedule, start: i64, tz: &Zone<'_>) -> Option<i64> {
    // The wall-to-instant map used here never decreases, so walls before the
    // local time of `start` cannot give an instant at or after `start` --
    // except the walls of a gap that ends exactly at `start`, which map to
    // `start` itself. Reading `start`'s wall time with the smaller of the
    // offsets just before and at `start` includes them (and changes nothing
    // elsewhere: away from a transition the two offsets are the same, and at
    // a fall-back the later one is the smaller).
    let mut ws = start + tz.offset_at(start - 1)?.min(tz.offset_at(start)?);
    for _ in 0..MAX_CANDIDATES {
        let w = s.next_wall(Wall::from_secs(ws))?.to_secs();
        let t = match tz.resolve(w)? {
            Resolved::Single(t) | Resolved::Repeated(t, _) | Resolved::Gap(Some(t)) => Some(t),
            Resolved::Gap(None) => None,
        };
        if let Some(t) = t.filter(|&t| t >= start) {
            return Some(t);
        }
        ws = w + 1;
    }
    None
}

/// Every other job: the first instant at or after `start` whose local time matches.
fn next_wall_clock(s: &Schedule, start: i64, tz: &Zone<'_>) -> Option<i64> {
    let o1 = tz.offset_at(start)?;
    let mut ws = start + o1;
    // If the clocks are about to fall back and `start` lies in the stretch that
    // will be replayed, the replayed wall times (second pass) are still ahead.
    let o2 = tz.offset_at(start + MAX_SHIFT_SECS)?;
    if o2 < o1 && tz.offset_at(start + (o1 - o2))? == o2 {
        let t = transition(tz, start, start + (o1 - o2), o2)?;
        ws = t + o2;
    }
    let mut best: Option<i64> = None;
    let pick = |best: Option<i64>, t: i64| Some(best.map_or(t, |b| b.min(t)));
    for _ in 0..MAX_CANDIDATES {
        let Some(w) = s.next_wall(Wall::from_secs(ws)) else {
            return best;
        };
        let w = w.to_secs();
        ws = w + 1;
        match tz.resolve(w)? {
            Resolved::Single(t) if t >= start => return pick(best, t),
            Resolved::Single(_) => {}
            Resolved::Repeated(a, _) if a >= start => return pick(best, a),
            Resolved::Repeated(a, b) => {
                if b >= start {
                    best = pick(best, b);
                    // Later repeated walls have later second passes; only a
                    // first pass at or after `start` can still come earlier.
                    ws = ws.max(start + (w - a));
                }
            }
            Resolved::Gap(Some(end)) => ws = ws.max(end + tz.offset_at(end)?),
            Resolved::Gap(None) => {}
        }
    }
    best
}

/// The first instant in `(lo, hi]` whose offset is `o_hi` (`hi` has it, `lo` not).
fn transition(tz: &Zone<'_>, mut lo: i64, mut hi: i64, o_hi: i64) -> Option<i64> {
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if tz.offset_at(mid)? == o_hi {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}
