//! A zone's UTC offsets for the evaluator: chrono-tz's tables up to their end,
//! and from 2100 on the zone's ongoing daylight-saving rule.
//!
//! chrono-tz's tables stop with the 2099 transitions; after the last one they
//! hold that offset for ever, so a summer instant in 2100 would come out an
//! hour wrong. The tz database states the ongoing rule (a POSIX TZ string such
//! as `CET-1CEST,M3.5.0,M10.5.0/3`) but chrono-tz does not expose it, so
//! [`Rule::infer`] recovers it from the tables' last years: each transition of
//! 2099 is read as "the k-th (or last) weekday of a month, at a wall time of
//! the offset before" (times may pass midnight, as in Santiago's `M9.1.6/24`),
//! and a candidate is kept only if it reproduces every transition of
//! 2090-2099.
//!
//! Ground rules:
//! - Instants before [`TABLE_END`] (2100-01-01T00:00Z) are answered by
//!   chrono-tz, later ones by the rule. The rule is accepted only if it agrees
//!   with the table at `TABLE_END` and has no transition within
//!   [`YEAR_MARGIN_DAYS`] of a new year, so the two halves join seamlessly.
//! - A zone whose tables end in a pattern that is not one rule (none in the
//!   bundled chrono-tz: a unit test infers every zone) has no answer past
//!   `TABLE_END`: [`Zone::offset_at`] and [`Zone::resolve`] return `None`,
//!   and the search stops there rather than give a wrong instant.
//! - The rule is inferred at most once per [`Zone`], lazily, only when an
//!   instant past `TABLE_END` is asked about. A `Zone` lives for one
//!   `next_after` call; nothing is shared between calls or threads.

use std::cell::OnceCell;

use chrono::{DateTime, LocalResult, Offset, TimeZone};
use chrono_tz::{GapInfo, Tz};

use super::field::{civil_from_days, days_from_civil, days_in_month, weekday};

/// 2100-01-01T00:00:00Z: from here on offsets come from the rule.
pub(crate) const TABLE_END: i64 = 4_102_444_800;

/// First and last year whose transitions a rule must reproduce.
const CHECK_YEARS: (i64, i64) = (2090, 2099);

/// How often inference samples the table for transitions (a week).
const INFER_SAMPLE_SECS: i64 = 7 * 86_400;

/// Transitions closer than this to a new year are not accepted in a rule.
const YEAR_MARGIN_DAYS: i64 = 10;

/// Largest offset magnitude any zone has had (Kiribati's +14 plus slack).
const MAX_OFFSET_SECS: i64 = 26 * 3600;

/// What a wall time is in a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// One instant.
    Single(i64),
    /// Both passes, earlier first.
    Repeated(i64, i64),
    /// In a gap; the first instant after it, if known.
    Gap(Option<i64>),
}

/// One transition of the rule: the `week`-th (5 = last) `weekday` (0 =
/// Sunday) of `month`, at `time` seconds after that day's midnight in the
/// offset in force before the transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edge {
    month: u32,
    week: u32,
    weekday: u32,
    time: i64,
}

impl Edge {
    /// The instant of this transition in `year`, `before` being the offset
    /// in force until then.
    fn instant(self, year: i64, before: i64) -> i64 {
        let first = weekday(days_from_civil(year, self.month, 1));
        let dim = days_in_month(year, self.month);
        let first_match = 1 + (self.weekday + 7 - first) % 7;
        let day = if self.week == 5 {
            let mut d = first_match;
            while d + 7 <= dim {
                d += 7;
            }
            d
        } else {
            first_match + 7 * (self.week - 1)
        };
        days_from_civil(year, self.month, day) * 86_400 + self.time - before
    }
}

/// A zone's offsets from [`TABLE_END`] on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// No daylight saving: one offset.
    Fixed(i64),
    /// Two offsets a year: `jan` (in force on 1 January) until `to_other`,
    /// `other` until `back`, then `jan` again.
    Dst {
        jan: i64,
        other: i64,
        to_other: Edge,
        back: Edge,
    },
}

impl Rule {
    /// The transitions of `year`: `(instant, offset before, offset after)`.
    fn transitions(&self, year: i64) -> Option<[(i64, i64, i64); 2]> {
        match *self {
            Rule::Fixed(_) => None,
            Rule::Dst {
                jan,
                other,
                to_other,
                back,
            } => Some([
                (to_other.instant(year, jan), jan, other),
                (back.instant(year, other), other, jan),
            ]),
        }
    }

    /// The offset at instant `t`.
    pub(crate) fn offset_at(&self, t: i64) -> i64 {
        match *self {
            Rule::Fixed(o) => o,
            Rule::Dst { jan, other, .. } => {
                let (year, _, _) = civil_from_days(t.div_euclid(86_400));
                match self.transitions(year) {
                    Some([(a, ..), (b, ..)]) if t >= a && t < b => other,
                    _ => jan,
                }
            }
        }
    }

    /// What wall time `wall` is under this rule.
    pub(crate) fn resolve(&self, wall: i64) -> Resolved {
        let (jan, other) = match *self {
            Rule::Fixed(o) => return Resolved::Single(wall - o),
            Rule::Dst { jan, other, .. } => (jan, other),
        };
        let valid = |o: i64| (self.offset_at(wall - o) == o).then_some(wall - o);
        match (valid(jan), valid(other)) {
            (Some(a), Some(b)) => Resolved::Repeated(a.min(b), a.max(b)),
            (Some(t), None) | (None, Some(t)) => Resolved::Single(t),
            (None, None) => {
                let (year, _, _) = civil_from_days(wall.div_euclid(86_400));
                let end = (year - 1..=year + 1)
                    .filter_map(|y| self.transitions(y))
                    .flatten()
                    .find(|&(t, before, after)| t + before <= wall && wall < t + after)
                    .map(|(t, ..)| t);
                Resolved::Gap(end)
            }
        }
    }

    /// The zone's rule from [`TABLE_END`] on, read off chrono-tz's tables.
    pub(crate) fn infer(tz: &Tz) -> Option<Rule> {
        let (first_year, last_year) = CHECK_YEARS;
        let from = days_from_civil(last_year - 1, 1, 1) * 86_400;
        let found = table_transitions(tz, from, INFER_SAMPLE_SECS)?;
        let end_offset = table_offset(tz, TABLE_END)?;
        let rule = match found.as_slice() {
            [] => return Some(Rule::Fixed(end_offset)),
            [a1, b1, a2, b2] => {
                let (jan, other) = (a2.1, a2.2);
                let alternates = [a1, a2].iter().all(|t| (t.1, t.2) == (jan, other))
                    && [b1, b2].iter().all(|t| (t.1, t.2) == (other, jan));
                if !alternates {
                    return None;
                }
                let fits = |edge: Edge, before: i64, after: i64| {
                    (first_year..=last_year).all(|y| {
                        let t = edge.instant(y, before);
                        table_offset(tz, t - 1) == Some(before)
                            && table_offset(tz, t) == Some(after)
                    })
                };
                let to_other = candidates(a2.0, jan).find(|&e| fits(e, jan, other))?;
                let back = candidates(b2.0, other).find(|&e| fits(e, other, jan))?;
                Rule::Dst {
                    jan,
                    other,
                    to_other,
                    back,
                }
            }
            _ => return None,
        };
        // Two transitions a year, both well inside it; the rule and the
        // tables agree where they meet.
        let year_start = |y: i64| days_from_civil(y, 1, 1) * 86_400;
        let margin = YEAR_MARGIN_DAYS * 86_400;
        let found_again = (last_year - 1..=last_year)
            .filter_map(|y| rule.transitions(y))
            .flatten()
            .collect::<Vec<_>>();
        let inside = (last_year - 1..=last_year + 1).all(|y| {
            rule.transitions(y).is_some_and(|[a, b]| {
                a.0 - year_start(y) >= margin && b.0 > a.0 && year_start(y + 1) - b.0 >= margin
            })
        });
        (found_again == found && inside && rule.offset_at(TABLE_END) == end_offset).then_some(rule)
    }
}

/// The ways to read a transition at `t` (offset `before` until then) as an
/// [`Edge`]: its wall date or up to three days before or after it, as the
/// k-th or the last such weekday of that month.
fn candidates(t: i64, before: i64) -> impl Iterator<Item = Edge> {
    let wall = t + before;
    let (days, sod) = (wall.div_euclid(86_400), wall.rem_euclid(86_400));
    [0i64, 1, -1, 2, -2, 3, -3].into_iter().flat_map(move |j| {
        let d = days - j;
        let (year, month, day) = civil_from_days(d);
        let (wd, time) = (weekday(d), sod + j * 86_400);
        let nth = (day <= 28).then_some(Edge {
            month,
            week: (day - 1) / 7 + 1,
            weekday: wd,
            time,
        });
        let last = (day + 7 > days_in_month(year, month)).then_some(Edge {
            month,
            week: 5,
            weekday: wd,
            time,
        });
        nth.into_iter().chain(last)
    })
}

/// chrono-tz's offset at instant `t`, in seconds east of UTC.
fn table_offset(tz: &Tz, t: i64) -> Option<i64> {
    let utc = DateTime::from_timestamp(t, 0)?.naive_utc();
    Some(i64::from(
        tz.offset_from_utc_datetime(&utc).fix().local_minus_utc(),
    ))
}

/// The table's transitions in `[from, TABLE_END)`: `(instant, before, after)`.
/// Samples every `step` seconds and bisects each change, so a stretch shorter
/// than `step` could be missed: inference samples weekly (no zone has a
/// shorter stretch in its last years; the unit test looks daily).
fn table_transitions(tz: &Tz, from: i64, step: i64) -> Option<Vec<(i64, i64, i64)>> {
    let mut out = Vec::new();
    let mut t = from;
    let mut o = table_offset(tz, t)?;
    while t < TABLE_END {
        let next = (t + step).min(TABLE_END);
        let o2 = table_offset(tz, next)?;
        if o2 != o {
            let (mut lo, mut hi) = (t, next);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if table_offset(tz, mid)? == o2 {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            out.push((hi, o, o2));
        }
        (t, o) = (next, o2);
    }
    Some(out)
}

/// A zone for one search: the table, and the rule once it is needed.
pub(crate) struct Zone<'a> {
    tz: &'a Tz,
    rule: OnceCell<Option<Rule>>,
}

impl<'a> Zone<'a> {
    pub(crate) fn new(tz: &'a Tz) -> Zone<'a> {
        Zone {
            tz,
            rule: OnceCell::new(),
        }
    }

    fn rule(&self) -> Option<&Rule> {
        self.rule.get_or_init(|| Rule::infer(self.tz)).as_ref()
    }

    /// The offset at instant `t`, in seconds east of UTC.
    pub(crate) fn offset_at(&self, t: i64) -> Option<i64> {
        if t < TABLE_END {
            table_offset(self.tz, t)
        } else {
            Some(self.rule()?.offset_at(t))
        }
    }

    /// What wall time `wall` (seconds since 1970 in naive local time) is.
    pub(crate) fn resolve(&self, wall: i64) -> Option<Resolved> {
        // Walls this early can only be instants before `TABLE_END` plus a
        // day, where the table's last offset still holds (checked when the
        // rule is inferred), so chrono-tz answers them.
        if wall >= TABLE_END + MAX_OFFSET_SECS {
            return Some(self.rule()?.resolve(wall));
        }
        let naive = DateTime::from_timestamp(wall, 0)?.naive_utc();
        let secs = |o: &<Tz as TimeZone>::Offset| wall - i64::from(o.fix().local_minus_utc());
        Some(match self.tz.offset_from_local_datetime(&naive) {
            LocalResult::Single(o) => Resolved::Single(secs(&o)),
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (secs(&a), secs(&b));
                Resolved::Repeated(a.min(b), a.max(b))
            }
            LocalResult::None => Resolved::Gap(
                GapInfo::new(&naive, self.tz).and_then(|g| g.end.map(|e| e.timestamp())),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_zone_has_a_rule_matching_its_table_from_2087() {
        // Until 2086 Gaza's and Hebron's tables follow Ramadan, not a rule.
        let from = days_from_civil(2087, 1, 1) * 86_400;
        let mut with_dst = 0;
        for tz in chrono_tz::TZ_VARIANTS {
            let rule = Rule::infer(&tz).unwrap_or_else(|| panic!("{tz}: no rule"));
            let table = table_transitions(&tz, from, 86_400).unwrap();
            let predicted: Vec<_> = (2087..=2099)
                .filter_map(|y| rule.transitions(y))
                .flatten()
                .collect();
            match rule {
                Rule::Fixed(o) => {
                    assert_eq!(Some(o), table_offset(&tz, TABLE_END), "{tz}");
                    assert!(predicted.is_empty());
                }
                Rule::Dst { .. } => {
                    with_dst += 1;
                    assert_eq!(predicted, table, "{tz}: {rule:?}");
                }
            }
        }
        assert!(with_dst > 150, "{with_dst} zones with daylight saving");
    }

    #[test]
    fn known_rules() {
        // Europe/Berlin: CET-1CEST,M3.5.0,M10.5.0/3.
        let berlin = Rule::infer(&chrono_tz::Europe::Berlin).unwrap();
        let edge = |month, week, weekday, time| Edge {
            month,
            week,
            weekday,
            time,
        };
        assert_eq!(
            berlin,
            Rule::Dst {
                jan: 3600,
                other: 7200,
                to_other: edge(3, 5, 0, 2 * 3600),
                back: edge(10, 5, 0, 3 * 3600),
            }
        );
        // America/Santiago: <-04>4<-03>,M9.1.6/24,M4.1.6/24 (January in DST).
        let santiago = Rule::infer(&chrono_tz::America::Santiago).unwrap();
        assert_eq!(
            santiago,
            Rule::Dst {
                jan: -3 * 3600,
                other: -4 * 3600,
                to_other: edge(4, 1, 6, 24 * 3600),
                back: edge(9, 1, 6, 24 * 3600),
            }
        );
        // Asia/Jerusalem: IST-2IDT,M3.4.4/26,M10.5.0.
        let jerusalem = Rule::infer(&chrono_tz::Asia::Jerusalem).unwrap();
        assert_eq!(
            jerusalem,
            Rule::Dst {
                jan: 7200,
                other: 10_800,
                to_other: edge(3, 4, 4, 26 * 3600),
                back: edge(10, 5, 0, 2 * 3600),
            }
        );
        assert_eq!(
            Rule::infer(&chrono_tz::Asia::Tehran),
            Some(Rule::Fixed(12_600))
        );
    }

    #[test]
    fn rule_resolves_gaps_and_repeats() {
        let zone = Zone::new(&chrono_tz::Europe::Berlin);
        // 2100-03-28 is the last Sunday of March 2100.
        let day = days_from_civil(2100, 3, 28) * 86_400;
        let jump = day + 3600; // 01:00Z
        assert_eq!(zone.offset_at(jump - 1), Some(3600));
        assert_eq!(zone.offset_at(jump), Some(7200));
        assert_eq!(
            zone.resolve(day + 2 * 3600 + 1800),
            Some(Resolved::Gap(Some(jump)))
        );
        assert_eq!(zone.resolve(day + 3 * 3600), Some(Resolved::Single(jump)));
        // 2100-10-31: 02:30 happens twice.
        let day = days_from_civil(2100, 10, 31) * 86_400;
        assert_eq!(
            zone.resolve(day + 2 * 3600 + 1800),
            Some(Resolved::Repeated(day + 1800, day + 3600 + 1800))
        );
    }
}
