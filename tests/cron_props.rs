//! Property tests for the cron subsystem.
//!
//! - Arbitrary strings never panic the parser (nor the evaluator, if they parse).
//! - Random valid expressions, built from the field grammars, agree with a
//!   brute-force oracle that walks every minute (every second for 6-field
//!   expressions) over a bounded window and applies the DST rules directly
//!   with chrono-tz. The oracle interprets the generated structure, not the
//!   text, so it shares no code with the parser.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use cronlane::cron::{CronExpr, Dialect};
use proptest::prelude::*;

const ZONES: [Tz; 4] = [
    Tz::UTC,
    chrono_tz::Europe::Berlin,
    chrono_tz::America::New_York,
    chrono_tz::Australia::Lord_Howe,
];

/// One item of a field list.
#[derive(Debug, Clone)]
enum Item {
    Star(u32),
    Value(u32),
    Range(u32, u32, u32),
    From(u32, u32),
    /// Day of month: `L`, `LW`, `nW`. Day of week: `nL`, `n#k`.
    Last,
    LastWeekday,
    Nearest(u32),
    LastOf(u32),
    Nth(u32, u32),
}

#[derive(Debug, Clone)]
struct Expr {
    seconds: Option<Vec<Item>>,
    minute: Vec<Item>,
    hour: Vec<Item>,
    dom: Vec<Item>,
    month: Vec<Item>,
    dow: Vec<Item>,
    quartz: bool,
}

fn plain(min: u32, max: u32) -> BoxedStrategy<Item> {
    prop_oneof![
        3 => (1..=max).prop_map(Item::Star),
        3 => (min..=max).prop_map(Item::Value),
        2 => (min..=max, min..=max, 1..=max)
            .prop_map(|(a, b, s)| Item::Range(a.min(b), a.max(b), s)),
        1 => (min..=max, 1..=max).prop_map(|(a, s)| Item::From(a, s)),
    ]
    .boxed()
}

fn list(item: BoxedStrategy<Item>, star_weight: u32) -> BoxedStrategy<Vec<Item>> {
    prop_oneof![
        star_weight => Just(vec![Item::Star(1)]),
        4 => prop::collection::vec(item, 1..=3),
    ]
    .boxed()
}

fn dom_items() -> BoxedStrategy<Item> {
    prop_oneof![
        6 => plain(1, 31),
        1 => Just(Item::Last),
        1 => Just(Item::LastWeekday),
        1 => (1u32..=31).prop_map(Item::Nearest),
    ]
    .boxed()
}

fn dow_items(max: u32) -> BoxedStrategy<Item> {
    prop_oneof![
        6 => plain(0, max),
        1 => (0u32..=6).prop_map(Item::LastOf),
        1 => (0u32..=6, 1u32..=5).prop_map(|(d, k)| Item::Nth(d, k)),
    ]
    .boxed()
}

fn expr_strategy(with_seconds: bool, quartz: bool) -> impl Strategy<Value = Expr> {
    let secs = if with_seconds {
        list(plain(0, 59), 2).prop_map(Some).boxed()
    } else {
        Just(None).boxed()
    };
    (
        secs,
        list(plain(0, 59), 2),
        list(plain(0, 23), if with_seconds { 6 } else { 3 }),
        list(dom_items(), 8),
        list(plain(1, 12), 8),
        list(dow_items(if quartz { 6 } else { 7 }), 4),
    )
        .prop_map(move |(seconds, minute, hour, dom, month, dow)| Expr {
            seconds,
            minute,
            hour,
            dom,
            month,
            dow,
            quartz,
        })
}

impl Expr {
    /// Weekdays are generated 0-7 (Vixie, 0 and 7 Sunday) or 0-6 and shifted
    /// to Quartz's 1-7 when rendering.
    fn render_field(items: &[Item], dow_shift: u32) -> String {
        let items: Vec<String> = items
            .iter()
            .map(|i| match *i {
                Item::Star(1) => "*".to_owned(),
                Item::Star(s) => format!("*/{s}"),
                Item::Value(a) => format!("{}", a + dow_shift),
                Item::Range(a, b, 1) => format!("{}-{}", a + dow_shift, b + dow_shift),
                Item::Range(a, b, s) => format!("{}-{}/{s}", a + dow_shift, b + dow_shift),
                Item::From(a, s) => format!("{}/{s}", a + dow_shift),
                Item::Last => "L".to_owned(),
                Item::LastWeekday => "LW".to_owned(),
                Item::Nearest(n) => format!("{n}W"),
                Item::LastOf(d) => format!("{}L", d + dow_shift),
                Item::Nth(d, k) => format!("{}#{k}", d + dow_shift),
            })
            .collect();
        items.join(",")
    }

    fn render(&self) -> String {
        let shift = u32::from(self.quartz);
        let mut f = Vec::new();
        if let Some(s) = &self.seconds {
            f.push(Self::render_field(s, 0));
        }
        for items in [&self.minute, &self.hour, &self.dom, &self.month] {
            f.push(Self::render_field(items, 0));
        }
        f.push(Self::render_field(&self.dow, shift));
        f.join(" ")
    }

    fn starts_with_star(items: &[Item]) -> bool {
        matches!(items.first(), Some(Item::Star(_)))
    }

    fn fixed_time(&self) -> bool {
        self.seconds.is_none()
            && !Self::starts_with_star(&self.minute)
            && !Self::starts_with_star(&self.hour)
    }

    fn matches(&self, w: NaiveDateTime) -> bool {
        let plain = |items: &[Item], v: u32, max: u32| {
            items.iter().any(|i| match *i {
                Item::Star(s) => v % s == 0 || (max == 7 && v == 0 && 7 % s == 0),
                Item::Value(a) => a == v || (max == 7 && a == 7 && v == 0),
                Item::Range(a, b, s) => in_steps(a, b, s, v, max),
                Item::From(a, s) => in_steps(a, max, s, v, max),
                _ => false,
            })
        };
        let star_min = |items: &[Item], v: u32, min: u32, max: u32| {
            items.iter().any(|i| match *i {
                Item::Star(s) => (v - min) % s == 0 && v <= max,
                _ => plain(std::slice::from_ref(i), v, max),
            })
        };
        let sec_ok = match &self.seconds {
            Some(s) => plain(s, w.second(), 59),
            None => w.second() == 0,
        };
        if !(sec_ok
            && plain(&self.minute, w.minute(), 59)
            && plain(&self.hour, w.hour(), 23)
            && star_min(&self.month, w.month(), 1, 12))
        {
            return false;
        }
        let date = w.date();
        let day = date.day();
        let dim = days_in_month(date.year(), date.month());
        let is_weekday = |d: u32| {
            let wd = date.with_day(d).map(|x| x.weekday().num_days_from_sunday());
            matches!(wd, Some(1..=5))
        };
        let dom_ok = self.dom.iter().any(|i| match *i {
            Item::Last => day == dim,
            Item::LastWeekday => (day..=dim).filter(|&d| is_weekday(d)).eq([day]),
            Item::Nearest(n) => {
                // The weekday closest to min(n, last day), staying in the month.
                let n = n.min(dim);
                let best = (1..=dim)
                    .filter(|&d| is_weekday(d))
                    .min_by_key(|&d| (d.abs_diff(n), d));
                best == Some(day)
            }
            _ => star_min(std::slice::from_ref(i), day, 1, 31),
        });
        let wd = date.weekday().num_days_from_sunday();
        let dow_max = if self.quartz { 6 } else { 7 };
        let dow_ok = self.dow.iter().any(|i| match *i {
            Item::LastOf(d) => d % 7 == wd && day + 7 > dim,
            Item::Nth(d, k) => d % 7 == wd && (day - 1) / 7 + 1 == k,
            _ => plain(std::slice::from_ref(i), wd, dow_max),
        });
        let and =
            self.quartz || Self::starts_with_star(&self.dom) || Self::starts_with_star(&self.dow);
        if and {
            dom_ok && dow_ok
        } else {
            dom_ok || dow_ok
        }
    }
}

/// `v` is one of `a, a+s, ..` up to `b` (for weekdays, 7 counts as 0).
fn in_steps(a: u32, b: u32, s: u32, v: u32, max: u32) -> bool {
    (a..=b)
        .step_by(s as usize)
        .any(|x| x == v || (max == 7 && x == 7 && v == 0))
}

fn days_in_month(y: i32, m: u32) -> u32 {
    let next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    chrono::NaiveDate::from_ymd_opt(next.0, next.1, 1)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

/// The first fire strictly after `after` within `window`, by brute force.
fn oracle(e: &Expr, after: DateTime<Utc>, tz: Tz, window: Duration) -> Option<DateTime<Utc>> {
    let step = if e.seconds.is_some() {
        Duration::seconds(1)
    } else {
        Duration::minutes(1)
    };
    let end = after + window;
    if e.fixed_time() {
        // Walk wall minutes; a repeated one counts once (earlier instant), one
        // in a gap counts at the first instant that exists after it.
        let mut w = (after - Duration::hours(4))
            .with_timezone(&tz)
            .naive_local();
        w = w.with_second(0)?;
        let stop = end.with_timezone(&tz).naive_local();
        let mut best: Option<DateTime<Utc>> = None;
        while w <= stop {
            if e.matches(w) {
                let t = match tz.from_local_datetime(&w) {
                    LocalResult::Single(t) => t,
                    LocalResult::Ambiguous(a, b) => a.min(b),
                    LocalResult::None => {
                        let mut g = w;
                        loop {
                            g += Duration::minutes(1);
                            if let Some(t) = tz.from_local_datetime(&g).earliest() {
                                // The gap ends at g's instant minus however far
                                // into the hour g is past the end of the gap.
                                break gap_end(t, w);
                            }
                        }
                    }
                }
                .with_timezone(&Utc);
                if t > after && t <= end && !matches!(best, Some(b) if b <= t) {
                    best = Some(t);
                }
            }
            w += Duration::minutes(1);
        }
        best
    } else {
        let mut t = after.with_nanosecond(0)? + step;
        if step == Duration::minutes(1) {
            t = t.with_second(0)?;
            if t <= after {
                t += step;
            }
        }
        while t <= end {
            if e.matches(t.with_timezone(&tz).naive_local()) {
                return Some(t);
            }
            t += step;
        }
        None
    }
}

/// Walk back from `t` (first whole minute after the gap) to the first instant
/// whose wall time is past `gap_wall`: the end of the gap.
fn gap_end(mut t: DateTime<Tz>, gap_wall: NaiveDateTime) -> DateTime<Tz> {
    loop {
        let prev = t - Duration::seconds(1);
        if prev.naive_local() > gap_wall {
            t = prev;
        } else {
            return t;
        }
    }
}

fn instant_strategy() -> impl Strategy<Value = DateTime<Utc>> {
    // Near the 2025 transitions of the DST zones, or anywhere in 2000-2040.
    let transitions = [
        1_743_296_400i64, // 2025-03-30 01:00Z Berlin spring
        1_761_440_400,    // 2025-10-26 01:00Z Berlin fall
        1_741_503_600,    // 2025-03-09 07:00Z New York spring
        1_762_063_200,    // 2025-11-02 06:00Z New York fall
        1_743_865_200,    // 2025-04-05 15:00Z Lord Howe fall
        1_759_591_800,    // 2025-10-04 15:30Z Lord Howe spring
    ];
    prop_oneof![
        (
            prop::sample::select(transitions.to_vec()),
            -30_000i64..10_000
        )
            .prop_map(|(t, d)| t + d),
        946_684_800i64..2_208_988_800,
    ]
    .prop_map(|s| DateTime::from_timestamp(s, 0).unwrap_or_default())
}

fn check_against_oracle(e: &Expr, after: DateTime<Utc>, tz: Tz, window: Duration) {
    let text = e.render();
    let dialect = if e.quartz {
        Dialect::Quartz
    } else {
        Dialect::Vixie
    };
    let parsed = CronExpr::parse_with(&text, dialect)
        .unwrap_or_else(|err| panic!("generated expression rejected: {err}"));
    let mut at = after;
    for _ in 0..3 {
        let want = oracle(e, at, tz, window);
        let got = parsed.next_after(at, &tz);
        match want {
            Some(w) => assert_eq!(got, Some(w), "`{text}` in {tz} after {at}"),
            None => assert!(
                !matches!(got, Some(g) if g <= at + window),
                "`{text}` in {tz} after {at}: got {got:?}, oracle found nothing before {}",
                at + window
            ),
        }
        match got {
            Some(g) => at = g,
            None => break,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,40}", t in "[0-9a-zA-Z*/,#?@LW\\- \t]{0,40}") {
        let after = Utc.with_ymd_and_hms(2025, 3, 30, 0, 30, 0).unwrap();
        for text in [&s, &t] {
            for dialect in [Dialect::Vixie, Dialect::Quartz] {
                if let Ok(e) = CronExpr::parse_with(text, dialect) {
                    for tz in ZONES {
                        let a = e.next_after(after, &tz);
                        let b = a.and_then(|a| e.next_after(a, &tz));
                        if let (Some(a), Some(b)) = (a, b) {
                            prop_assert!(after < a && a < b, "`{text}` {tz}: {a} {b}");
                        }
                        let _ = e.explain();
                    }
                } else if let Err(err) = CronExpr::parse_with(text, dialect) {
                    let _ = err.to_string();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn five_field_matches_brute_force(
        e in expr_strategy(false, false),
        after in instant_strategy(),
        tz in prop::sample::select(ZONES.to_vec()),
    ) {
        check_against_oracle(&e, after, tz, Duration::hours(36));
    }

    #[test]
    fn six_field_matches_brute_force(
        e in expr_strategy(true, false),
        after in instant_strategy(),
        tz in prop::sample::select(ZONES.to_vec()),
    ) {
        check_against_oracle(&e, after, tz, Duration::hours(3));
    }

    #[test]
    fn quartz_matches_brute_force(
        e in expr_strategy(true, true),
        after in instant_strategy(),
        tz in prop::sample::select(ZONES.to_vec()),
    ) {
        check_against_oracle(&e, after, tz, Duration::hours(3));
    }
}
