//! Plain-English descriptions of expressions (what crontab.guru shows).
//!
//! Works on the text of an expression that already parsed, field by field:
//! a time phrase ("At 09:00", "Every 15 minutes, between 09:00 and 17:59"),
//! then day, month and year phrases, joined with commas; then a second
//! sentence on daylight saving (fixed-time or wall-clock job, as
//! `docs/cron.md` defines them), or that the expression never fires.
//!
//! Conventions: weekdays read in calendar order, Monday first, with runs of
//! three or more as "Monday through Friday"; day of month OR day of week reads
//! "…, or on …", AND reads "…, if it is …".

use super::Dialect;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const ORDINALS: [&str; 5] = ["first", "second", "third", "fourth", "fifth"];

/// What a fixed-time job does when the clocks change (`docs/cron.md`).
pub(crate) const FIXED_TIME_DST: &str = "Fixed-time job: where the clocks change, a skipped \
    time fires once right after the jump and a repeated time fires once, on its first pass.";

/// What every other job does when the clocks change.
pub(crate) const WALL_CLOCK_DST: &str = "Wall-clock job: where the clocks change, skipped \
    times do not fire and repeated times fire on both passes.";

/// What an expression that matches no date gets instead of a DST note.
pub(crate) const NEVER_FIRES: &str = "It never fires: no date matches it.";

/// The whole explanation: the schedule, then how it meets daylight saving
/// (or that it never fires).
pub(crate) fn explain(expr: &str, dialect: Dialect, fixed_time: bool, never: bool) -> String {
    let note = match (never, fixed_time) {
        (true, _) => NEVER_FIRES,
        (false, true) => FIXED_TIME_DST,
        (false, false) => WALL_CLOCK_DST,
    };
    format!("{}. {note}", describe(expr, dialect))
}

/// Describes the schedule of `expr` (already known to parse in `dialect`),
/// as one phrase without a final stop.
pub(crate) fn describe(expr: &str, dialect: Dialect) -> String {
    let fields: Vec<&str> = expr.split([' ', '\t']).filter(|f| !f.is_empty()).collect();
    if let [one] = fields.as_slice() {
        if one.starts_with('@') {
            return macro_phrase(one).to_owned();
        }
    }
    let (sec, rest) = match (dialect, fields.len()) {
        (Dialect::Vixie, 5) => (None, &fields[..]),
        _ if fields.len() >= 6 => (Some(fields[0]), &fields[1..]),
        _ => return expr.to_owned(),
    };
    let [min, hour, dom, mon, dow, ..] = rest else {
        return expr.to_owned();
    };
    // A `*` item makes a whole list unrestricted (`5,*` is every minute).
    // For the day fields that also depends on how they combine: with AND
    // the other field alone decides; with OR every day matches.
    let sec = sec.map(unrestricted);
    let (min, hour, mon) = (unrestricted(min), unrestricted(hour), unrestricted(mon));
    let and_days = dialect == Dialect::Quartz || starts_star(dom) || starts_star(dow);
    let (dom, dow) = match (has_star_item(dom), has_star_item(dow)) {
        (false, false) => (*dom, *dow),
        _ if !and_days => ("*", "*"),
        (true, true) => ("*", "*"),
        (true, false) => ("*", *dow),
        (false, true) => (*dom, "*"),
    };
    let mut parts = vec![time_phrase(sec, min, hour)];
    match (dom_phrase(dom), dow_days(dow, dialect)) {
        (Some(a), Some(b)) if and_days => {
            parts.push(format!("{a}, if it is {}", join_with(&b.items(), "or")))
        }
        (Some(a), Some(b)) => parts.push(format!("{a}, or on {}", join_and(&b.items()))),
        (Some(a), None) => parts.push(a),
        (None, Some(b)) => parts.push(b.standalone()),
        (None, None) => {}
    }
    if let Some(p) = list_phrase(mon, "month", |v| name_of(v, &MONTHS, 1)) {
        parts.push(in_phrase(p));
    }
    if let Some(year) = rest.get(5).map(|y| unrestricted(y)) {
        if let Some(p) = list_phrase(year, "year", |v| v.to_owned()) {
            parts.push(in_phrase(p));
        }
    }
    parts.join(", ")
}

fn starts_star(field: &str) -> bool {
    field.starts_with(['*', '?'])
}

fn has_star_item(field: &str) -> bool {
    field.split(',').any(|i| i == "*" || i == "?")
}

/// `field`, or `"*"` if one of its items is `*`.
fn unrestricted(field: &str) -> &str {
    if has_star_item(field) {
        "*"
    } else {
        field
    }
}

fn macro_phrase(m: &str) -> &'static str {
    match m.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "At 00:00, on day 1 of the month, only in January",
        "@monthly" => "At 00:00, on day 1 of the month",
        "@weekly" => "At 00:00, only on Sunday",
        "@daily" | "@midnight" => "At 00:00",
        _ => "Every hour",
    }
}

fn in_phrase(p: String) -> String {
    if p.starts_with("every") {
        p
    } else {
        format!("only in {p}")
    }
}

fn is_num(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn num(s: &str) -> u32 {
    s.parse().unwrap_or(0)
}

fn time_phrase(sec: Option<&str>, min: &str, hour: &str) -> String {
    let sec_fixed = match sec {
        None => true,
        Some(s) => is_num(s),
    };
    let hours: Vec<&str> = hour.split(',').collect();
    if sec_fixed && is_num(min) && hours.iter().all(|h| is_num(h)) && hours.len() <= 6 {
        let s = sec.map(num).unwrap_or(0);
        let times: Vec<String> = hours
            .iter()
            .map(|h| {
                if s == 0 {
                    format!("{:02}:{:02}", num(h), num(min))
                } else {
                    format!("{:02}:{:02}:{:02}", num(h), num(min), s)
                }
            })
            .collect();
        return format!("At {}", join_and(&times));
    }
    let mut parts = Vec::new();
    let sec_p = sec.filter(|s| *s != "0").map(|s| unit_phrase(s, "second"));
    let min_p = if min == "*" && sec_p.is_some() {
        None
    } else {
        Some(unit_phrase(min, "minute"))
    };
    parts.extend(sec_p);
    parts.extend(min_p);
    if hour != "*" {
        parts.push(hour_phrase(hour));
    }
    let mut out = parts.join(", ");
    if let Some(first) = out.get(..1) {
        out = first.to_ascii_uppercase() + &out[1..];
    }
    out
}

/// "every minute", "every 5 minutes", "at minute 30", "minutes 10 through 20".
fn unit_phrase(field: &str, unit: &str) -> String {
    let items: Vec<String> = field
        .split(',')
        .map(|item| match item.split_once('/') {
            Some(("*", step)) => format!("every {step} {unit}s"),
            Some((range, step)) => match range.split_once('-') {
                Some((a, b)) => format!("every {step} {unit}s from {a} through {b}"),
                None => format!("every {step} {unit}s starting at {unit} {range}"),
            },
            None if item == "*" => format!("every {unit}"),
            None => match item.split_once('-') {
                Some((a, b)) => format!("{unit}s {a} through {b}"),
                None => format!("{unit} {item}"),
            },
        })
        .collect();
    if field.split(',').all(is_num) {
        let nums: Vec<String> = field.split(',').map(str::to_owned).collect();
        let s = if nums.len() > 1 { "s" } else { "" };
        let suffix = if unit == "minute" {
            " past the hour"
        } else {
            ""
        };
        return format!("at {unit}{s} {}{suffix}", join_and(&nums));
    }
    join_and(&items)
}

fn hour_phrase(hour: &str) -> String {
    let items: Vec<String> = hour
        .split(',')
        .map(|item| match item.split_once('/') {
            Some(("*", step)) => format!("every {step} hours"),
            Some((range, step)) => match range.split_once('-') {
                Some((a, b)) => {
                    format!(
                        "every {step} hours between {:02}:00 and {:02}:59",
                        num(a),
                        num(b)
                    )
                }
                None => format!("every {step} hours starting at {:02}:00", num(range)),
            },
            None => match item.split_once('-') {
                Some((a, b)) => format!("between {:02}:00 and {:02}:59", num(a), num(b)),
                None => format!("between {:02}:00 and {:02}:59", num(item), num(item)),
            },
        })
        .collect();
    join_and(&items)
}

fn dom_phrase(dom: &str) -> Option<String> {
    if dom == "*" || dom == "?" {
        return None;
    }
    if dom.split(',').all(is_num) {
        let nums: Vec<String> = dom.split(',').map(str::to_owned).collect();
        let s = if nums.len() > 1 { "s" } else { "" };
        return Some(format!("on day{s} {} of the month", join_and(&nums)));
    }
    let items: Vec<String> = dom
        .split(',')
        .map(|item| {
            let up = item.to_ascii_uppercase();
            if up == "L" {
                "the last day".to_owned()
            } else if up == "LW" {
                "the last weekday".to_owned()
            } else if let Some(n) = up.strip_prefix("L-") {
                format!("{n} days before the last day")
            } else if let Some(n) = up.strip_suffix('W').or_else(|| up.strip_prefix('W')) {
                format!("the weekday nearest day {n}")
            } else if let Some((range, step)) = item.split_once('/') {
                match range.split_once('-') {
                    Some((a, b)) => format!("every {step} days from day {a} through {b}"),
                    None if range == "*" => format!("every {step} days from day 1"),
                    None => format!("every {step} days from day {range}"),
                }
            } else if let Some((a, b)) = item.split_once('-') {
                format!("days {a} through {b}")
            } else {
                format!("day {item}")
            }
        })
        .collect();
    let joined = join_and(&items);
    Some(if joined.starts_with("every") {
        format!("{joined} of the month")
    } else {
        format!("on {joined} of the month")
    })
}

/// A weekday as written (a number in the dialect's numbering, or a name) as
/// its raw value: Vixie 0-7 with 0 and 7 Sunday, Quartz 1-7 with 1 Sunday.
fn dow_raw(v: &str, dialect: Dialect) -> u32 {
    if is_num(v) {
        return num(v);
    }
    let i = DAYS.iter().position(|d| d[..3].eq_ignore_ascii_case(v));
    i.map_or(0, |i| i as u32 + u32::from(dialect == Dialect::Quartz))
}

/// A raw weekday value to 0-6, 0 = Sunday.
fn dow_index(raw: u32, dialect: Dialect) -> usize {
    match dialect {
        Dialect::Vixie => raw as usize % 7,
        Dialect::Quartz => (raw as usize + 6) % 7,
    }
}

/// The weekdays (bit 0 = Sunday) a plain item selects: `d`, `a-b`, `a-b/n`,
/// `a/n`, `*/n`, `*`, or Quartz's `L` (Saturday).
fn dow_plain(item: &str, dialect: Dialect) -> u8 {
    let (range, step) = match item.split_once('/') {
        Some((r, s)) => (r, num(s).max(1) as usize),
        None => (item, 1),
    };
    let top = 7;
    let bottom = u32::from(dialect == Dialect::Quartz);
    let (lo, hi) = match range.split_once('-') {
        Some((a, b)) => (dow_raw(a, dialect), dow_raw(b, dialect)),
        None if range == "*" => (bottom, top),
        None if range.eq_ignore_ascii_case("L") => (7, 7),
        None if item.contains('/') => (dow_raw(range, dialect), top),
        None => {
            let v = dow_raw(range, dialect);
            (v, v)
        }
    };
    (lo..=hi)
        .step_by(step)
        .fold(0, |m, v| m | 1 << dow_index(v, dialect))
}

/// What a day-of-week field selects, ready to be phrased.
struct DowDays {
    /// Plain weekdays, bit 0 = Sunday.
    plain: u8,
    /// `nL` and `n#k` items, phrased, in the order written.
    special: Vec<String>,
}

impl DowDays {
    /// The plain days in calendar order, Monday first, with runs of three or
    /// more as "Monday through Friday"; then the special items.
    fn items(&self) -> Vec<String> {
        let mut out = Vec::new();
        let on = |p: usize| self.plain & (1 << ((p + 1) % 7)) != 0;
        let mut p = 0;
        while p < 7 {
            if !on(p) {
                p += 1;
                continue;
            }
            let mut q = p;
            while q + 1 < 7 && on(q + 1) {
                q += 1;
            }
            let name = |p: usize| DAYS[(p + 1) % 7].to_owned();
            if q - p >= 2 {
                out.push(format!("{} through {}", name(p), name(q)));
            } else {
                out.extend((p..=q).map(name));
            }
            p = q + 1;
        }
        out.extend(self.special.iter().cloned());
        out
    }

    /// The phrase when day-of-month does not restrict the day: a single run
    /// reads "Monday through Friday", other plain days "only on ...", and
    /// anything with `nL` / `n#k` "on ...".
    fn standalone(&self) -> String {
        let items = self.items();
        let joined = join_and(&items);
        if !self.special.is_empty() {
            format!("on {joined}")
        } else if items.len() == 1 && joined.contains(" through ") {
            joined
        } else {
            format!("only on {joined}")
        }
    }
}

fn dow_days(dow: &str, dialect: Dialect) -> Option<DowDays> {
    if dow == "*" || dow == "?" {
        return None;
    }
    let mut days = DowDays {
        plain: 0,
        special: Vec::new(),
    };
    for item in dow.split(',') {
        let up = item.to_ascii_uppercase();
        if let Some((d, k)) = item.split_once('#') {
            // `d#k`, or `a-b#k`: the k-th of each weekday of the range.
            let ord = ORDINALS
                .get(num(k).saturating_sub(1) as usize)
                .unwrap_or(&"");
            let (lo, hi) = match d.split_once('-') {
                Some((a, b)) => (dow_raw(a, dialect), dow_raw(b, dialect)),
                None => (dow_raw(d, dialect), dow_raw(d, dialect)),
            };
            let each: Vec<String> = (lo..=hi)
                .map(|v| format!("{ord} {}", DAYS[dow_index(v, dialect)]))
                .collect();
            days.special
                .push(format!("the {} of the month", join_and(&each)));
        } else if up != "L" && up.ends_with('L') {
            let d = &item[..item.len() - 1];
            let name = DAYS[dow_index(dow_raw(d, dialect), dialect)];
            days.special.push(format!("the last {name} of the month"));
        } else {
            days.plain |= dow_plain(item, dialect);
        }
    }
    Some(days)
}

fn name_of(v: &str, names: &[&str], first: usize) -> String {
    if is_num(v) {
        return names
            .get((num(v) as usize).wrapping_sub(first))
            .map_or_else(|| v.to_owned(), |s| (*s).to_owned());
    }
    names
        .iter()
        .find(|n| n[..3].eq_ignore_ascii_case(v))
        .map_or_else(|| v.to_owned(), |s| (*s).to_owned())
}

/// Months or years: "January", "January through March", "every 3 months".
fn list_phrase(field: &str, unit: &str, name: impl Fn(&str) -> String) -> Option<String> {
    if field == "*" || field == "?" {
        return None;
    }
    let items: Vec<String> = field
        .split(',')
        .map(|item| match item.split_once('/') {
            Some((range, step)) => {
                let from = match range.split_once('-') {
                    Some((a, b)) => format!(" from {} through {}", name(a), name(b)),
                    None if range == "*" => String::new(),
                    None => format!(" starting in {}", name(range)),
                };
                format!("every {step} {unit}s{from}")
            }
            None => match item.split_once('-') {
                Some((a, b)) => format!("{} through {}", name(a), name(b)),
                None => name(item),
            },
        })
        .collect();
    Some(join_and(&items))
}

/// "a", "a and b", "a, b and c".
fn join_and(items: &[String]) -> String {
    join_with(items, "and")
}

/// "a", "a or b", "a, b or c" (with `word` = "or").
fn join_with(items: &[String], word: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {word} {last}", init.join(", ")),
    }
}
