//! Plain-English descriptions of expressions (what crontab.guru shows).
//!
//! Works on the text of an expression that already parsed, field by field:
//! a time phrase ("At 09:00", "Every 15 minutes, between 09:00 and 17:59"),
//! then day, month and year phrases, joined with commas.

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

/// Describes `expr` (already known to parse in `dialect`).
pub(crate) fn explain(expr: &str, dialect: Dialect) -> String {
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
    let mut parts = vec![time_phrase(sec, min, hour)];
    let dom_p = dom_phrase(dom);
    let dow_p = dow_phrase(dow, dialect);
    match (dom_p, dow_p) {
        (Some(a), Some(b)) => {
            let both_restricted = !dom.starts_with(['*', '?']) && !dow.starts_with(['*', '?']);
            if dialect == Dialect::Vixie && both_restricted {
                parts.push(format!("{a} or {b}"));
            } else {
                let b = b.trim_start_matches("only on ");
                let b = match b.rsplit_once(" and ") {
                    Some((head, last)) if !b.starts_with("on ") => format!("{head} or {last}"),
                    _ => b.to_owned(),
                };
                parts.push(format!("{a}, if it is {b}"));
            }
        }
        (Some(a), None) | (None, Some(a)) => parts.push(a),
        (None, None) => {}
    }
    if let Some(p) = list_phrase(mon, "month", |v| name_of(v, &MONTHS, 1)) {
        parts.push(in_phrase(p));
    }
    if let Some(year) = rest.get(5) {
        if let Some(p) = list_phrase(year, "year", |v| v.to_owned()) {
            parts.push(in_phrase(p));
        }
    }
    parts.join(", ")
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

/// The weekdays (0 = Sunday) a plain `a-b/n`, `a/n` or `*/n` item selects.
fn dow_step_days(range: &str, step: &str, dialect: Dialect) -> Vec<usize> {
    let value = |v: &str| -> u32 {
        if is_num(v) {
            num(v)
        } else {
            let i = DAYS.iter().position(|d| d[..3].eq_ignore_ascii_case(v));
            i.map_or(0, |i| i as u32 + u32::from(dialect == Dialect::Quartz))
        }
    };
    let (lo, hi) = match (dialect, range.split_once('-')) {
        (_, Some((a, b))) => (value(a), value(b)),
        (Dialect::Vixie, None) if range == "*" => (0, 7),
        (Dialect::Quartz, None) if range == "*" => (1, 7),
        (_, None) => (value(range), 7),
    };
    let mut days: Vec<usize> = (lo..=hi)
        .step_by(num(step).max(1) as usize)
        .map(|v| match dialect {
            Dialect::Vixie => v as usize % 7,
            Dialect::Quartz => (v as usize + 6) % 7,
        })
        .collect();
    days.sort_unstable();
    days.dedup();
    // Read Monday first, Sunday last.
    days.sort_by_key(|&d| (d + 6) % 7);
    days
}

fn dow_name(v: &str, dialect: Dialect) -> String {
    if is_num(v) {
        let n = num(v) as usize;
        let i = match dialect {
            Dialect::Vixie => n % 7,
            Dialect::Quartz => (n + 6) % 7,
        };
        return DAYS[i].to_owned();
    }
    name_of(v, &DAYS, 0)
}

fn dow_phrase(dow: &str, dialect: Dialect) -> Option<String> {
    if dow == "*" || dow == "?" {
        return None;
    }
    let mut only = false;
    let items: Vec<String> = dow
        .split(',')
        .map(|item| {
            let up = item.to_ascii_uppercase();
            if let Some((d, k)) = item.split_once('#') {
                let ord = ORDINALS
                    .get(num(k).saturating_sub(1) as usize)
                    .unwrap_or(&"");
                let days = match d.split_once('-') {
                    Some((a, b)) => {
                        format!("{} through {}", dow_name(a, dialect), dow_name(b, dialect))
                    }
                    None => dow_name(d, dialect),
                };
                format!("the {ord} {days} of the month")
            } else if up == "L" {
                "the last Saturday of the month".to_owned()
            } else if let Some(d) = up.strip_suffix('L') {
                format!("the last {} of the month", dow_name(d, dialect))
            } else if let Some((range, step)) = item.split_once('/') {
                only = true;
                let names: Vec<String> = dow_step_days(range, step, dialect)
                    .into_iter()
                    .map(|d| DAYS[d].to_owned())
                    .collect();
                join_and(&names)
            } else if let Some((a, b)) = item.split_once('-') {
                format!("{} through {}", dow_name(a, dialect), dow_name(b, dialect))
            } else {
                only = true;
                dow_name(item, dialect)
            }
        })
        .collect();
    let joined = join_and(&items);
    Some(if items.len() == 1 && items[0].starts_with("the ") {
        format!("on {joined}")
    } else if only && items.len() == dow.split(',').count() {
        format!("only on {joined}")
    } else {
        joined
    })
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
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
