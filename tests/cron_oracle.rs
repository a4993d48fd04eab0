//! Differential test: `CronExpr::next_after` against a brute-force oracle
//! written from docs/cron.md's rules, on random expressions, in zones with
//! awkward transitions, from start instants at and around those transitions.
//!
//! The oracle shares no code with the crate. It matches wall times against
//! value sets it builds from the generated structure (not from the text), and
//! applies the daylight-saving rules as docs/cron.md states them:
//! - a **fixed-time job** (5 fields, minute and hour not starting with `*`)
//!   walks wall minutes; a wall time that happens twice maps to its first
//!   pass, one that does not exist to the first real instant after the gap;
//! - **every other job** walks real instants (second by second for 6 fields)
//!   and fires when the local time matches.
//!
//! Offsets come from chrono-tz before 2100 and, from 2100-01-01T00:00Z on
//! (where chrono-tz's tables end), from each zone's POSIX TZ rule as the tz
//! database states it, written out by hand below and checked against
//! chrono-tz over 2090-2099 by `posix_rules_agree_with_chrono_tz_2090_2099`.
//!
//! Zones: Europe/Berlin, America/Havana and America/Santiago (midnight
//! gaps), Asia/Tehran (midnight gaps until 2022), Australia/Lord_Howe
//! (30-minute shifts), Antarctica/Troll (2 hours), Pacific/Kwajalein (the day
//! it skipped in 1993), America/New_York, UTC. Start instants are a
//! transition itself, a second either side, a minute or an hour before, or
//! somewhere in the two days around it, in 2025, in a random year 1970-2099
//! or in a random year 2100-2400.
//!
//! Bounded for CI: 600 cases by default (a few seconds in a debug build).
//! `CRON_ORACLE_CASES=20000 cargo test --release --test cron_oracle` runs
//! more; `CRON_ORACLE_SEED=n` picks another seed (the seed is printed on
//! failure).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use cronlane::cron::CronExpr;

/// 2100-01-01T00:00:00Z.
const TABLE_END: i64 = 4_102_444_800;

// ---------------------------------------------------------------------------
// Zones: chrono-tz, then the POSIX rule.

/// `Mm.w.d/time`: the `w`-th (5 = last) weekday `d` (0 = Sunday) of month
/// `m`, at `time` seconds of local time (the offset before the change).
#[derive(Clone, Copy, Debug)]
struct Mwd {
    m: u32,
    w: u32,
    d: u32,
    time: i64,
}

/// A POSIX TZ rule: standard offset, and optionally the DST offset with its
/// start and end (offsets in seconds east of UTC).
#[derive(Clone, Copy, Debug)]
struct Posix {
    std: i64,
    dst: Option<(i64, Mwd, Mwd)>,
}

const H: i64 = 3600;

const fn mwd(m: u32, w: u32, d: u32, time: i64) -> Mwd {
    Mwd { m, w, d, time }
}

/// The zones, with their TZ strings from the tz database.
fn zones() -> Vec<(Tz, Posix)> {
    use chrono_tz::{America, Antarctica, Asia, Australia, Europe, Pacific};
    let fixed = |std| Posix { std, dst: None };
    let dst = |std, dst, start, end| Posix {
        std,
        dst: Some((dst, start, end)),
    };
    vec![
        // CET-1CEST,M3.5.0,M10.5.0/3
        (
            Europe::Berlin,
            dst(H, 2 * H, mwd(3, 5, 0, 2 * H), mwd(10, 5, 0, 3 * H)),
        ),
        // CST5CDT,M3.2.0/0,M11.1.0/1
        (
            America::Havana,
            dst(-5 * H, -4 * H, mwd(3, 2, 0, 0), mwd(11, 1, 0, H)),
        ),
        // <+0330>-3:30
        (Asia::Tehran, fixed(3 * H + 1800)),
        // <-04>4<-03>,M9.1.6/24,M4.1.6/24
        (
            America::Santiago,
            dst(-4 * H, -3 * H, mwd(9, 1, 6, 24 * H), mwd(4, 1, 6, 24 * H)),
        ),
        // <+1030>-10:30<+11>-11,M10.1.0,M4.1.0
        (
            Australia::Lord_Howe,
            dst(
                10 * H + 1800,
                11 * H,
                mwd(10, 1, 0, 2 * H),
                mwd(4, 1, 0, 2 * H),
            ),
        ),
        // <+00>0<+02>-2,M3.5.0/1,M10.5.0/3
        (
            Antarctica::Troll,
            dst(0, 2 * H, mwd(3, 5, 0, H), mwd(10, 5, 0, 3 * H)),
        ),
        // <+12>-12
        (Pacific::Kwajalein, fixed(12 * H)),
        // EST5EDT,M3.2.0,M11.1.0
        (
            America::New_York,
            dst(-5 * H, -4 * H, mwd(3, 2, 0, 2 * H), mwd(11, 1, 0, 2 * H)),
        ),
        (Tz::UTC, fixed(0)),
    ]
}

impl Mwd {
    fn instant(self, year: i32, before: i64) -> i64 {
        let first = NaiveDate::from_ymd_opt(year, self.m, 1).unwrap();
        let dim = days_in_month(year, self.m);
        let wd1 = first.weekday().num_days_from_sunday();
        let mut day = 1 + (self.d + 7 - wd1) % 7 + 7 * (self.w.min(5) - 1);
        while day > dim {
            day -= 7;
        }
        let date = first.with_day(day).unwrap();
        date.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp() + self.time - before
    }
}

impl Posix {
    fn offset(&self, t: i64) -> i64 {
        let Some((dst, start, end)) = self.dst else {
            return self.std;
        };
        let year = DateTime::from_timestamp(t, 0).unwrap().year();
        let s = start.instant(year, self.std);
        let e = end.instant(year, dst);
        let in_dst = if s < e {
            t >= s && t < e
        } else {
            t < e || t >= s
        };
        if in_dst {
            dst
        } else {
            self.std
        }
    }
}

#[derive(Clone, Copy)]
struct Zone {
    tz: Tz,
    posix: Posix,
}

impl Zone {
    /// Seconds east of UTC at instant `t`.
    fn offset(&self, t: i64) -> i64 {
        if t >= TABLE_END {
            return self.posix.offset(t);
        }
        let utc = DateTime::from_timestamp(t, 0).unwrap().naive_utc();
        i64::from(
            self.tz
                .offset_from_utc_datetime(&utc)
                .fix()
                .local_minus_utc(),
        )
    }

    /// Transitions in `[from, to)`, found by sampling every 6 hours and
    /// narrowing each change to the second.
    fn transitions(&self, from: i64, to: i64) -> Vec<i64> {
        let mut out = Vec::new();
        let mut t = from;
        let mut o = self.offset(t);
        while t < to {
            let next = t + 6 * H;
            let o2 = self.offset(next);
            if o2 != o {
                let (mut lo, mut hi) = (t, next);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if self.offset(mid) == o2 {
                        hi = mid;
                    } else {
                        lo = mid;
                    }
                }
                out.push(hi);
            }
            (t, o) = (next, o2);
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Expressions.

/// One list item of a field.
#[derive(Clone, Debug)]
enum Item {
    Star,
    StarStep(u32),
    Val(u32),
    Range(u32, u32),
    RangeStep(u32, u32, u32),
    /// `a/n`: `a` to the field's maximum, step `n`.
    From(u32, u32),
    /// Day of month `L`.
    Last,
    /// Day of week `dL`.
    LastOf(u32),
    /// Day of week `d#k`.
    Nth(u32, u32),
}

#[derive(Clone, Debug)]
struct Expr {
    seconds: Option<Vec<Item>>,
    minute: Vec<Item>,
    hour: Vec<Item>,
    dom: Vec<Item>,
    month: Vec<Item>,
    dow: Vec<Item>,
    /// Write weekdays and months as names where possible.
    names: bool,
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

impl Expr {
    fn render(&self) -> String {
        let day = |v: u32| {
            if self.names && v < 7 {
                DAY_NAMES[v as usize].to_owned()
            } else {
                v.to_string()
            }
        };
        let month = |v: u32| {
            if self.names {
                MONTH_NAMES[v as usize - 1].to_owned()
            } else {
                v.to_string()
            }
        };
        let plain = |v: u32| v.to_string();
        let field = |items: &[Item], name: &dyn Fn(u32) -> String| -> String {
            let parts: Vec<String> = items
                .iter()
                .map(|i| match *i {
                    Item::Star => "*".to_owned(),
                    Item::StarStep(n) => format!("*/{n}"),
                    Item::Val(v) => name(v),
                    Item::Range(a, b) => format!("{}-{}", name(a), name(b)),
                    Item::RangeStep(a, b, n) => format!("{}-{}/{n}", name(a), name(b)),
                    Item::From(a, n) => format!("{}/{n}", name(a)),
                    Item::Last => "L".to_owned(),
                    Item::LastOf(d) => format!("{}L", name(d)),
                    Item::Nth(d, k) => format!("{}#{k}", name(d)),
                })
                .collect();
            parts.join(",")
        };
        let mut out = Vec::new();
        if let Some(s) = &self.seconds {
            out.push(field(s, &plain));
        }
        out.push(field(&self.minute, &plain));
        out.push(field(&self.hour, &plain));
        out.push(field(&self.dom, &plain));
        out.push(field(&self.month, &month));
        out.push(field(&self.dow, &day));
        out.join(" ")
    }

    fn fixed_time(&self) -> bool {
        self.seconds.is_none()
            && !matches!(self.minute[0], Item::Star | Item::StarStep(_))
            && !matches!(self.hour[0], Item::Star | Item::StarStep(_))
    }
}

/// The values `min..=max` that the plain items of a field select.
fn value_set(items: &[Item], min: u32, max: u32) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for i in items {
        let (a, b, n) = match *i {
            Item::Star => (min, max, 1),
            Item::StarStep(n) => (min, max, n),
            Item::Val(v) => (v, v, 1),
            Item::Range(a, b) => (a, b, 1),
            Item::RangeStep(a, b, n) => (a, b, n),
            Item::From(a, n) => (a, max, n),
            _ => continue,
        };
        out.extend((a..=b).step_by(n as usize));
    }
    out
}

/// What the oracle matches wall times against.
struct Matcher {
    seconds: BTreeSet<u32>,
    minutes: BTreeSet<u32>,
    hours: BTreeSet<u32>,
    dom: BTreeSet<u32>,
    dom_last: bool,
    months: BTreeSet<u32>,
    /// 0-6, 0 = Sunday (7 folded onto 0).
    dow: BTreeSet<u32>,
    dow_last: BTreeSet<u32>,
    dow_nth: BTreeSet<(u32, u32)>,
    /// Day of month AND day of week (either starts with `*`), else OR.
    and_days: bool,
}

impl Matcher {
    fn new(e: &Expr) -> Matcher {
        let starts_star = |items: &[Item]| matches!(items[0], Item::Star | Item::StarStep(_));
        Matcher {
            seconds: e
                .seconds
                .as_ref()
                .map_or_else(|| BTreeSet::from([0]), |s| value_set(s, 0, 59)),
            minutes: value_set(&e.minute, 0, 59),
            hours: value_set(&e.hour, 0, 23),
            dom: value_set(&e.dom, 1, 31),
            dom_last: e.dom.iter().any(|i| matches!(i, Item::Last)),
            months: value_set(&e.month, 1, 12),
            dow: value_set(&e.dow, 0, 7).into_iter().map(|d| d % 7).collect(),
            dow_last: e
                .dow
                .iter()
                .filter_map(|i| match *i {
                    Item::LastOf(d) => Some(d % 7),
                    _ => None,
                })
                .collect(),
            dow_nth: e
                .dow
                .iter()
                .filter_map(|i| match *i {
                    Item::Nth(d, k) => Some((d % 7, k)),
                    _ => None,
                })
                .collect(),
            and_days: starts_star(&e.dom) || starts_star(&e.dow),
        }
    }

    /// Whether the minute of wall time `w` matches (all but the seconds).
    fn matches_minute(&self, w: NaiveDateTime) -> bool {
        if !(self.minutes.contains(&w.minute())
            && self.hours.contains(&w.hour())
            && self.months.contains(&w.month()))
        {
            return false;
        }
        let (day, dim) = (w.day(), days_in_month(w.year(), w.month()));
        let wd = w.weekday().num_days_from_sunday();
        let dom = self.dom.contains(&day) || (self.dom_last && day == dim);
        let dow = self.dow.contains(&wd)
            || (self.dow_last.contains(&wd) && day + 7 > dim)
            || self.dow_nth.contains(&(wd, (day - 1) / 7 + 1));
        if self.and_days {
            dom && dow
        } else {
            dom || dow
        }
    }
}

fn days_in_month(y: i32, m: u32) -> u32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    NaiveDate::from_ymd_opt(ny, nm, 1)
        .unwrap()
        .pred_opt()
        .unwrap()
        .day()
}

fn wall(secs: i64) -> NaiveDateTime {
    DateTime::from_timestamp(secs, 0).unwrap().naive_utc()
}

// ---------------------------------------------------------------------------
// The oracle.

/// What the oracle found: the first fire strictly after `after`, or that
/// there is none before `searched_to` (exclusive).
enum Found {
    At(i64),
    NoneBefore(i64),
}

fn oracle(e: &Expr, m: &Matcher, zone: &Zone, after: i64, window: i64) -> Found {
    if e.fixed_time() {
        oracle_fixed(m, zone, after, window)
    } else {
        oracle_wall_clock(m, zone, after, window)
    }
}

/// Every other job: walk instants, fire when the local time matches. The
/// walk goes a minute at a time and then through the matching seconds:
/// offsets change on whole minutes in these zones since 1970, so an instant
/// minute is a local minute.
fn oracle_wall_clock(m: &Matcher, zone: &Zone, after: i64, window: i64) -> Found {
    let end = after + window;
    let mut minute = (after + 1) - (after + 1).rem_euclid(60);
    while minute <= end {
        if m.matches_minute(wall(minute + zone.offset(minute))) {
            let t = m
                .seconds
                .iter()
                .map(|&s| minute + i64::from(s))
                .find(|&t| t > after && t <= end);
            if let Some(t) = t {
                return Found::At(t);
            }
        }
        minute += 60;
    }
    Found::NoneBefore(end + 1)
}

/// Fixed-time jobs: walk wall minutes; a repeated wall time fires on its
/// first pass, a skipped one at the first instant after the gap.
fn oracle_fixed(m: &Matcher, zone: &Zone, after: i64, window: i64) -> Found {
    // Every offset in force around the search (sampled every 15 minutes).
    let span = (after - 2 * 86_400, after + window + 2 * 86_400);
    let offsets: BTreeSet<i64> = (span.0..span.1)
        .step_by(900)
        .map(|t| zone.offset(t))
        .collect();
    let (min_o, max_o) = (*offsets.first().unwrap(), *offsets.last().unwrap());
    let start_wall = after + min_o - 2 * 86_400;
    let start_wall = start_wall - start_wall.rem_euclid(60);
    let end_wall = after + max_o + window;
    let mut best: Option<i64> = None;
    let mut w = start_wall;
    while w <= end_wall {
        if best.is_some_and(|b| w - max_o > b) {
            break;
        }
        if m.matches_minute(wall(w)) {
            let passes: Vec<i64> = offsets
                .iter()
                .map(|o| w - o)
                .filter(|&t| zone.offset(t) == w - t)
                .collect();
            let t = match passes.iter().min() {
                Some(&first) => first,
                None => first_instant_past(zone, w, max_o),
            };
            if t > after && best.is_none_or(|b| t < b) {
                best = Some(t);
            }
        }
        w += 60;
    }
    match best {
        Some(t) => Found::At(t),
        None => Found::NoneBefore(end_wall - max_o),
    }
}

/// The first instant whose local time is later than `w` (for `w` in a gap:
/// the end of the gap), by walking forward a minute, then a second, at a time.
fn first_instant_past(zone: &Zone, w: i64, max_o: i64) -> i64 {
    let mut t = w - max_o - 60;
    while t + 60 + zone.offset(t + 60) <= w {
        t += 60;
    }
    while t + zone.offset(t) <= w {
        t += 1;
    }
    t
}

// ---------------------------------------------------------------------------
// Random cases.

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.range(0, xs.len() as i64 - 1) as usize]
    }

    fn chance(&mut self, percent: i64) -> bool {
        self.range(0, 99) < percent
    }
}

/// A field list; `hot` values (transition hours) are favoured.
fn field(rng: &mut Rng, min: u32, max: u32, star_pct: i64, hot: &[u32]) -> Vec<Item> {
    if rng.chance(star_pct) {
        return vec![Item::Star];
    }
    let n = rng.range(1, 3);
    (0..n)
        .map(|_| {
            let v = |rng: &mut Rng| {
                if !hot.is_empty() && rng.chance(60) {
                    rng.pick(hot)
                } else {
                    rng.range(i64::from(min), i64::from(max)) as u32
                }
            };
            match rng.range(0, 9) {
                0..=4 => Item::Val(v(rng)),
                5 | 6 => {
                    let (a, b) = (v(rng), v(rng));
                    Item::Range(a.min(b), a.max(b))
                }
                7 => {
                    let (a, b) = (v(rng), v(rng));
                    Item::RangeStep(a.min(b), a.max(b), rng.range(1, 7) as u32)
                }
                8 => Item::From(v(rng), rng.range(1, 20) as u32),
                _ => Item::StarStep(rng.range(2, 30) as u32),
            }
        })
        .collect()
}

/// A random expression; `hot_hours` (the local hours around the start's
/// transition) are favoured.
fn random_expr(rng: &mut Rng, hot_hours: &[u32]) -> Expr {
    let seconds = rng.chance(20).then(|| {
        let s = field(rng, 0, 59, 10, &[0, 30]);
        // Keep second-by-second walks short: not every second.
        if matches!(s[0], Item::Star) {
            vec![Item::StarStep(15)]
        } else {
            s
        }
    });
    let minute = match rng.range(0, 9) {
        0..=5 => field(rng, 0, 59, 0, &[0, 15, 30, 45, 59]),
        6 | 7 => vec![Item::StarStep(rng.pick(&[5, 10, 15, 20, 30]))],
        _ => vec![Item::Star],
    };
    let hour = field(rng, 0, 23, 25, hot_hours);
    let dom = if rng.chance(75) {
        vec![Item::Star]
    } else if rng.chance(20) {
        vec![Item::Last]
    } else {
        field(rng, 1, 31, 0, &[1, 7, 8, 14, 15, 21, 22, 28, 29, 30, 31])
    };
    let month = field(rng, 1, 12, 70, &[3, 4, 9, 10, 11]);
    let dow = if rng.chance(65) {
        vec![Item::Star]
    } else {
        match rng.range(0, 4) {
            0 => vec![Item::LastOf(rng.range(0, 6) as u32)],
            1 => vec![Item::Nth(rng.range(0, 6) as u32, rng.range(1, 5) as u32)],
            _ => field(rng, 0, 7, 0, &[0, 6, 7]),
        }
    };
    Expr {
        seconds,
        minute,
        hour,
        dom,
        month,
        dow,
        names: rng.chance(30),
    }
}

/// A start instant at or near a transition of `zone` in some year, and the
/// local hours on either side of that transition.
fn random_start(rng: &mut Rng, zone: &Zone) -> (i64, Vec<u32>) {
    let year = match rng.range(0, 9) {
        0..=3 => match zone.tz {
            // Zones with no transitions in 2025: the years they had some.
            chrono_tz::Asia::Tehran => rng.range(2008, 2022),
            chrono_tz::Pacific::Kwajalein => 1993,
            _ => 2025,
        },
        4..=6 => rng.range(1970, 2099),
        _ => rng.range(2100, 2400),
    } as i32;
    let from = at_year(year);
    let to = from + 366 * 86_400;
    let transitions = zone.transitions(from, to);
    let base = if transitions.is_empty() {
        rng.range(from, to)
    } else {
        rng.pick(&transitions)
    };
    let hour = |t: i64| wall(t + zone.offset(t)).hour();
    let mut hot = vec![hour(base - 1), hour(base), hour(base + H)];
    hot.push((hot[0] + 1) % 24);
    let start = base
        + match rng.range(0, 9) {
            0..=2 => -1,
            3 => 0,
            4 => 1,
            5 => -60,
            6 => -H,
            _ => rng.range(-86_400, 86_400),
        };
    (start, hot)
}

fn check_case(e: &Expr, zone: &Zone, after: i64) -> Result<(), String> {
    let text = e.render();
    let parsed =
        CronExpr::parse(&text).map_err(|err| format!("generated `{text}` rejected: {err}"))?;
    let matcher = Matcher::new(e);
    let window = if e.seconds.is_some() {
        3 * H
    } else {
        3 * 86_400
    };
    let mut at = after;
    for step in 0..3 {
        let got = parsed
            .next_after(DateTime::from_timestamp(at, 0).unwrap(), &zone.tz)
            .map(|t| t.timestamp());
        let show = |t: i64| {
            let o = zone.offset(t);
            let fixed = chrono::FixedOffset::east_opt(o as i32).unwrap();
            DateTime::from_timestamp(t, 0)
                .unwrap()
                .with_timezone(&fixed)
                .to_rfc3339()
        };
        let context = || {
            format!(
                "`{text}` in {} after {} (step {step}, fixed-time: {})",
                zone.tz,
                show(at),
                e.fixed_time()
            )
        };
        match oracle(e, &matcher, zone, at, window) {
            Found::At(want) => {
                if got != Some(want) {
                    return Err(format!(
                        "{}: got {:?}, oracle {}",
                        context(),
                        got.map(show),
                        show(want)
                    ));
                }
                at = want;
            }
            Found::NoneBefore(limit) => {
                if let Some(g) = got.filter(|&g| g < limit) {
                    return Err(format!(
                        "{}: got {}, oracle found nothing before {}",
                        context(),
                        show(g),
                        show(limit)
                    ));
                }
                return Ok(());
            }
        }
    }
    Ok(())
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn engine_matches_brute_force_oracle() {
    let cases = env_number("CRON_ORACLE_CASES", 600);
    let seed = env_number("CRON_ORACLE_SEED", 0x000c_0ffe_e019);
    let mut rng = Rng(seed);
    let zones = zones();
    let mut failures = Vec::new();
    for _ in 0..cases {
        let (tz, posix) = rng.pick(&zones);
        let zone = Zone { tz, posix };
        let (after, hot_hours) = random_start(&mut rng, &zone);
        let e = random_expr(&mut rng, &hot_hours);
        if let Err(msg) = check_case(&e, &zone, after) {
            failures.push(msg);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ (CRON_ORACLE_SEED={seed}):\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}

/// The fuzz's findings of issue 19, pinned.
#[test]
fn issue_19_cases() {
    let zones = zones();
    let zone = |tz: Tz| {
        let (tz, posix) = *zones.iter().find(|z| z.0 == tz).unwrap();
        Zone { tz, posix }
    };
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp();
    let daily_0230 = Expr {
        seconds: None,
        minute: vec![Item::Val(30)],
        hour: vec![Item::Val(2)],
        dom: vec![Item::Star],
        month: vec![Item::Star],
        dow: vec![Item::Star],
        names: false,
    };
    let berlin = zone(chrono_tz::Europe::Berlin);
    check_case(&daily_0230, &berlin, at("2025-03-30T01:59:59+01:00")).unwrap();
    let july_noon = Expr {
        minute: vec![Item::Val(0)],
        hour: vec![Item::Val(12)],
        dom: vec![Item::Val(1)],
        month: vec![Item::Val(7)],
        ..daily_0230
    };
    check_case(&july_noon, &berlin, at("2099-12-31T12:00:00+01:00")).unwrap();
}

/// The hand-written TZ rules say what chrono-tz says where both are known.
#[test]
fn posix_rules_agree_with_chrono_tz_2090_2099() {
    let from = at_year(2090);
    for (tz, posix) in zones() {
        let zone = Zone { tz, posix };
        let table = zone.transitions(from, TABLE_END);
        let mut t = from;
        while t < TABLE_END {
            assert_eq!(zone.offset(t), posix.offset(t), "{tz} at {t}");
            t += 6 * H;
        }
        for &x in &table {
            assert_eq!(posix.offset(x - 1), zone.offset(x - 1), "{tz} before {x}");
            assert_eq!(posix.offset(x), zone.offset(x), "{tz} at {x}");
        }
    }
}

fn at_year(y: i32) -> i64 {
    NaiveDate::from_ymd_opt(y, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp()
}

#[test]
fn oracle_sanity() {
    // The oracle itself, on the documented Berlin examples (docs/cron.md).
    let (tz, posix) = zones()[0];
    let zone = Zone { tz, posix };
    let e = Expr {
        seconds: None,
        minute: vec![Item::Val(30)],
        hour: vec![Item::Val(2)],
        dom: vec![Item::Star],
        month: vec![Item::Star],
        dow: vec![Item::Star],
        names: false,
    };
    let m = Matcher::new(&e);
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp();
    let Found::At(t) = oracle(&e, &m, &zone, at("2025-03-29T12:00:00Z"), 86_400 * 3) else {
        panic!("no fire");
    };
    assert_eq!(t, at("2025-03-30T03:00:00+02:00"));
    let Found::At(t) = oracle(&e, &m, &zone, at("2025-10-26T00:00:00+02:00"), 86_400 * 3) else {
        panic!("no fire");
    };
    assert_eq!(t, at("2025-10-26T02:30:00+02:00"));
    let Found::At(t) = oracle(&e, &m, &zone, t, 86_400 * 3) else {
        panic!("no fire");
    };
    assert_eq!(t, at("2025-10-27T02:30:00+01:00"));
}
