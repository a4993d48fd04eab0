//! Fuzz target: parse arbitrary UTF-8 in both dialects; for anything that
//! parses, ask for a few next fire times in a few zones and check they are
//! strictly increasing and strictly after the start. Also renders errors and
//! explanations (they must not panic either).
#![no_main]

use chrono::DateTime;
use chrono_tz::Tz;
use cronlane::cron::{CronExpr, Dialect};
use libfuzzer_sys::fuzz_target;

const ZONES: [Tz; 3] = [
    Tz::UTC,
    chrono_tz::Europe::Berlin,
    chrono_tz::Australia::Lord_Howe,
];

fuzz_target!(|data: &[u8]| {
    // The first 4 bytes pick the start instant; the rest is the expression.
    let (seed, text) = if data.len() >= 4 {
        let (a, b) = data.split_at(4);
        (u32::from_le_bytes([a[0], a[1], a[2], a[3]]), b)
    } else {
        (0, data)
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    // 2000-01-01 plus up to ~136 years.
    let start = DateTime::from_timestamp(946_684_800 + i64::from(seed), 0).unwrap_or_default();
    for dialect in [Dialect::Vixie, Dialect::Quartz] {
        match CronExpr::parse_with(text, dialect) {
            Err(e) => {
                let _ = e.to_string();
            }
            Ok(expr) => {
                let _ = expr.explain();
                assert_eq!(expr.as_str(), text);
                for tz in ZONES {
                    let mut last = start;
                    for _ in 0..4 {
                        match expr.next_after(last, &tz) {
                            Some(t) => {
                                assert!(t > last, "{text:?} in {tz}: {t} after {last}");
                                last = t;
                            }
                            None => break,
                        }
                    }
                }
            }
        }
    }
});
