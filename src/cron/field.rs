//! The compiled form of an expression: one bitset per field, plus the day
//! extensions (`L`, `W`, `nL`, `n#k`), and the calendar arithmetic that turns
//! them into "which days of this month match".
//!
//! Bit `n` set means value `n` matches. Weekdays are stored 0-6 with 0 = Sunday
//! whatever the dialect wrote.

/// Day-of-month field: plain days plus `L`, `L-n`, `LW` and `nW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct DomSpec {
    /// Days 1..=31 (bit 0 unused).
    pub(crate) days: u32,
    /// `L`-style: bit `o` = the day `o` days before the last (`L` is `o = 0`).
    pub(crate) from_last: u32,
    /// `LW`: the last weekday (Mon-Fri) of the month.
    pub(crate) last_weekday: bool,
    /// `nW`: bit `n` = the weekday nearest day `n`.
    pub(crate) nearest: u32,
    /// The field was written starting with `*` or `?`.
    pub(crate) star: bool,
}

/// Day-of-week field: plain weekdays plus `nL` and `n#k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct DowSpec {
    /// Weekdays 0..=6, 0 = Sunday.
    pub(crate) days: u8,
    /// `nL`: the last such weekday of the month.
    pub(crate) last: u8,
    /// `n#k`: `nth[k - 1]` holds the weekdays whose k-th occurrence matches.
    pub(crate) nth: [u8; 5],
    /// The field was written starting with `*` or `?`.
    pub(crate) star: bool,
}

/// Years a Quartz expression is restricted to (bit `y - YEAR_MIN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct YearSet(pub(crate) [u64; 3]);

/// Smallest year of the Quartz year field.
pub(crate) const YEAR_MIN: u32 = 1970;
/// Largest year of the Quartz year field.
pub(crate) const YEAR_MAX: u32 = 2099;

impl YearSet {
    /// The first year in the set at or after `year`.
    pub(crate) fn next_at_or_after(&self, year: i64) -> Option<i64> {
        let mut y = year.max(i64::from(YEAR_MIN));
        while y <= i64::from(YEAR_MAX) {
            let i = (y - i64::from(YEAR_MIN)) as usize;
            let word = self.0[i / 64] >> (i % 64);
            if word != 0 {
                return Some(y + i64::from(word.trailing_zeros()));
            }
            y += 64 - (i % 64) as i64;
        }
        None
    }
}

/// The whole compiled schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Schedule {
    pub(crate) seconds: u64,
    pub(crate) minutes: u64,
    pub(crate) hours: u32,
    pub(crate) dom: DomSpec,
    /// Months 1..=12 (bit 0 unused).
    pub(crate) months: u16,
    pub(crate) dow: DowSpec,
    pub(crate) years: Option<YearSet>,
    /// Combine day-of-month and day-of-week with AND (else OR).
    pub(crate) and_days: bool,
    /// A fixed-time job for the DST rules (5 fields, minute and hour fixed).
    pub(crate) fixed_time: bool,
    /// No wall time ever matches (`0 0 30 2 *`); set once after parsing.
    pub(crate) never: bool,
}

impl Schedule {
    /// Bitmask (bit `d` = day `d`) of the days of `month` in `year` that match.
    pub(crate) fn day_mask(&self, year: i64, month: u32) -> u32 {
        let dim = days_in_month(year, month);
        let valid = (((1u64 << (dim + 1)) - 2) & 0xffff_fffe) as u32;
        let first = weekday(days_from_civil(year, month, 1));
        let dom = self.dom.mask(dim, first) & valid;
        let dow = self.dow.mask(dim, first) & valid;
        if self.and_days {
            dom & dow
        } else {
            dom | dow
        }
    }
}

impl DomSpec {
    fn mask(&self, dim: u32, first: u32) -> u32 {
        let mut m = self.days;
        let mut offs = self.from_last;
        while offs != 0 {
            let o = offs.trailing_zeros();
            offs &= offs - 1;
            if o < dim {
                m |= 1 << (dim - o);
            }
        }
        if self.last_weekday {
            let wd = (first + dim - 1) % 7;
            let d = match wd {
                6 => dim - 1,
                0 => dim - 2,
                _ => dim,
            };
            m |= 1 << d;
        }
        let mut near = self.nearest;
        while near != 0 {
            let n = near.trailing_zeros().min(dim);
            near &= near - 1;
            let wd = (first + n - 1) % 7;
            let d = match wd {
                6 if n == 1 => 3,
                6 => n - 1,
                0 if n == dim => n - 2,
                0 => n + 1,
                _ => n,
            };
            m |= 1 << d;
        }
        m
    }
}

impl DowSpec {
    fn mask(&self, dim: u32, first: u32) -> u32 {
        let b = u64::from(self.days & 0x7f);
        // Bit i of `week` = day 1 + i matches (its weekday is (first + i) % 7).
        let week = ((b >> first) | (b << (7 - first))) & 0x7f;
        let month = week | week << 7 | week << 14 | week << 21 | week << 28;
        let mut m = ((month << 1) & 0xffff_fffe) as u32;
        if self.last != 0 {
            let last_wd = (first + dim - 1) % 7;
            for w in 0..7 {
                if self.last & (1 << w) != 0 {
                    m |= 1 << (dim - (last_wd + 7 - w) % 7);
                }
            }
        }
        for (k, &days) in self.nth.iter().enumerate() {
            if days == 0 {
                continue;
            }
            for w in 0..7u32 {
                if days & (1 << w) != 0 {
                    let d = 1 + (w + 7 - first) % 7 + 7 * k as u32;
                    if d <= dim {
                        m |= 1 << d;
                    }
                }
            }
        }
        m
    }
}

/// Smallest set bit at or above `from`.
#[inline]
pub(crate) fn next_bit(bits: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let x = bits & (!0u64 << from);
    (x != 0).then(|| x.trailing_zeros())
}

/// Whether `year` is a Gregorian leap year.
#[inline]
pub(crate) fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1-12) of `year`.
#[inline]
pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
#[inline]
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` of a day count since 1970-01-01.
#[inline]
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Weekday (0 = Sunday) of a day count since 1970-01-01 (a Thursday).
#[inline]
pub(crate) fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for d in [-800_000i64, -1, 0, 1, 19_000, 20_000, 2_000_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(weekday(days_from_civil(2025, 6, 16)), 1);
    }

    #[test]
    fn nearest_weekday() {
        let dom = DomSpec {
            nearest: 1 << 1 | 1 << 15,
            ..DomSpec::default()
        };
        // June 2025: the 1st is a Sunday.
        let first = weekday(days_from_civil(2025, 6, 1));
        assert_eq!(first, 0);
        let m = dom.mask(30, first);
        assert_eq!(m, 1 << 2 | 1 << 16); // 1st Sun -> Mon 2nd, 15th Sun -> Mon 16th
    }
}
