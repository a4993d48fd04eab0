//! Unit tests: errors, Quartz dialect, explanations, edge cases.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::explain::describe;
use super::{CronErrorKind, CronExpr, CronField, Dialect};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn next_n(expr: &CronExpr, after: DateTime<Utc>, tz: Tz, n: usize) -> Vec<String> {
    expr.iter_after(after, tz)
        .take(n)
        .map(|t| {
            t.with_timezone(&super::utc_offset(&tz, t).unwrap())
                .to_rfc3339()
        })
        .collect()
}

fn err(expr: &str) -> super::CronError {
    CronExpr::parse(expr).expect_err(expr)
}

#[test]
fn error_names_field_position_and_reason() {
    let e = err("0 0 * * 8");
    assert_eq!(e.field(), Some(CronField::DayOfWeek));
    assert_eq!(e.position(), 8);
    assert_eq!(
        e.kind(),
        &CronErrorKind::OutOfRange {
            value: 8,
            min: 0,
            max: 7
        }
    );
    assert_eq!(
        e.to_string(),
        "invalid cron expression: day-of-week: value 8 is out of range 0-7\n  0 0 * * 8\n          ^"
    );
}

#[test]
fn caret_points_at_offending_character() {
    for (expr, pos, field) in [
        ("60 * * * *", 0, Some(CronField::Minute)),
        ("* 24 * * *", 2, Some(CronField::Hour)),
        ("1,,2 * * * *", 2, Some(CronField::Minute)),
        ("* * * * 1-5,", 11, Some(CronField::DayOfWeek)),
        ("*/0 * * * *", 2, Some(CronField::Minute)),
        ("5-1 * * * *", 0, Some(CronField::Minute)),
        ("1.5 * * * *", 1, Some(CronField::Minute)),
        ("0 0 * * *;", 9, Some(CronField::DayOfWeek)),
        ("* * * * * * *", 12, None),
        ("* * * *", 7, None),
        ("0 0 * * MONDAY", 8, Some(CronField::DayOfWeek)),
        ("0 0 1- * *", 6, Some(CronField::DayOfMonth)),
    ] {
        let e = err(expr);
        assert_eq!((e.position(), e.field()), (pos, field), "{expr}: {e}");
        let caret_line = e.to_string().lines().last().unwrap().to_owned();
        assert_eq!(caret_line.find('^'), Some(pos + 2), "{expr}");
    }
}

#[test]
fn error_kinds() {
    assert_eq!(err("").kind(), &CronErrorKind::Empty);
    assert_eq!(err("   ").kind(), &CronErrorKind::Empty);
    assert_eq!(err("*/0 * * * *").kind(), &CronErrorKind::ZeroStep);
    assert_eq!(err("1,,2 * * * *").kind(), &CronErrorKind::EmptyListItem);
    assert_eq!(err(",1 * * * *").kind(), &CronErrorKind::EmptyListItem);
    assert!(matches!(
        err("5-1 * * * *").kind(),
        CronErrorKind::ReversedRange { start: 5, end: 1 }
    ));
    assert!(matches!(
        err("@every 5m").kind(),
        CronErrorKind::MacroWithFields
    ));
    assert!(matches!(
        err("@fortnightly").kind(),
        CronErrorKind::UnknownMacro(_)
    ));
    assert!(matches!(
        err("0 0 * * 1#6").kind(),
        CronErrorKind::BadOccurrence(6)
    ));
    assert!(matches!(
        err("? * * * *").kind(),
        CronErrorKind::QuestionMarkNotAllowed
    ));
    assert!(matches!(
        err("9999999 * * * *").kind(),
        CronErrorKind::NumberTooLarge
    ));
    assert!(matches!(
        err("* * * * * * *").kind(),
        CronErrorKind::ExtraField { .. }
    ));
    assert!(matches!(
        err("٠ 0 * * *").kind(),
        CronErrorKind::UnexpectedChar('٠')
    ));
    // Non-ASCII before the error: position counts characters, not bytes.
    let e = CronExpr::parse_with("é 0 0 * * * 1", Dialect::Quartz).unwrap_err();
    assert_eq!(e.position(), 0);
}

#[test]
fn display_and_as_str_are_the_expression() {
    let e = CronExpr::parse("  0 9 * * mon-fri ").unwrap();
    assert_eq!(e.to_string(), "  0 9 * * mon-fri ");
    assert_eq!(e.as_str(), "  0 9 * * mon-fri ");
    assert!(e.is_fixed_time());
    assert!(!CronExpr::parse("*/5 9 * * *").unwrap().is_fixed_time());
    assert!(!CronExpr::parse("0 0 9 * * *").unwrap().is_fixed_time());
}

#[test]
fn never_fires_is_none_quickly() {
    let after = utc(2025, 1, 1, 0, 0, 0);
    for expr in ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2-4/2 *"] {
        let e = CronExpr::parse(expr).unwrap();
        assert_eq!(e.next_after(after, &Tz::UTC), None);
        assert_eq!(e.next_after(after, &chrono_tz::Europe::Berlin), None);
    }
    // Rare but real: 29 February on a Monday (every 28 years or so).
    let e = CronExpr::parse("0 0 29 2 MON").unwrap();
    assert!(e.next_after(after, &Tz::UTC).is_some());
}

#[test]
fn extremes_do_not_panic() {
    let e = CronExpr::parse("* * * * * *").unwrap();
    assert_eq!(e.next_after(DateTime::<Utc>::MAX_UTC, &Tz::UTC), None);
    assert!(e.next_after(DateTime::<Utc>::MIN_UTC, &Tz::UTC).is_some());
    // At the very edge of the representable range a zone offset may not fit:
    // no answer is fine, a panic is not.
    let _ = e.next_after(DateTime::<Utc>::MIN_UTC, &chrono_tz::America::New_York);
    assert_eq!(
        e.next_after(DateTime::<Utc>::MAX_UTC, &chrono_tz::Asia::Tokyo),
        None
    );
}

#[test]
fn quartz_dialect() {
    let q = |s: &str| CronExpr::parse_with(s, Dialect::Quartz).unwrap();
    let after = utc(2025, 6, 15, 13, 47, 23); // a Sunday
                                              // 1 = Sunday, 2 = Monday; `?` leaves the day of month unrestricted.
    assert_eq!(
        next_n(&q("0 0 12 ? * 2"), after, Tz::UTC, 2),
        ["2025-06-16T12:00:00+00:00", "2025-06-23T12:00:00+00:00"]
    );
    assert_eq!(
        next_n(&q("0 0 0 ? * SUN"), after, Tz::UTC, 1),
        ["2025-06-22T00:00:00+00:00"]
    );
    // Day fields combine with AND: the 13th, only when a Friday.
    assert_eq!(
        next_n(&q("0 0 0 13 * 6"), after, Tz::UTC, 2),
        ["2026-02-13T00:00:00+00:00", "2026-03-13T00:00:00+00:00"]
    );
    // Year field.
    assert_eq!(
        next_n(&q("0 0 0 1 1 ? 2030-2031"), after, Tz::UTC, 3),
        ["2030-01-01T00:00:00+00:00", "2031-01-01T00:00:00+00:00"]
    );
    // L-3, 6L (last Friday), 6#3 (third Friday), L alone in day-of-week (Saturday).
    assert_eq!(
        next_n(&q("0 0 0 L-3 * ?"), after, Tz::UTC, 2),
        ["2025-06-27T00:00:00+00:00", "2025-07-28T00:00:00+00:00"]
    );
    assert_eq!(
        next_n(&q("0 0 0 ? * 6L"), after, Tz::UTC, 1),
        ["2025-06-27T00:00:00+00:00"]
    );
    assert_eq!(
        next_n(&q("0 0 0 ? * FRI#3"), after, Tz::UTC, 1),
        ["2025-06-20T00:00:00+00:00"]
    );
    assert_eq!(
        next_n(&q("0 0 0 ? * L"), after, Tz::UTC, 1),
        ["2025-06-21T00:00:00+00:00"]
    );
    assert_eq!(
        next_n(&q("@daily"), after, Tz::UTC, 1),
        ["2025-06-16T00:00:00+00:00"]
    );
    // Field counts and ranges.
    let bad = |s: &str| CronExpr::parse_with(s, Dialect::Quartz).unwrap_err();
    assert!(matches!(
        bad("0 0 * * *").kind(),
        CronErrorKind::MissingFields { .. }
    ));
    assert_eq!(bad("0 0 0 * * 0").field(), Some(CronField::DayOfWeek));
    assert_eq!(bad("0 0 0 * * ? 1969").field(), Some(CronField::Year));
    assert_eq!(bad("0 0 0 * * ? 2000 1").position(), 17);
    // The same text means different things in each dialect.
    assert_ne!(
        CronExpr::parse("0 0 12 * * 1")
            .unwrap()
            .next_after(after, &Tz::UTC),
        q("0 0 12 * * 1").next_after(after, &Tz::UTC)
    );
}

#[test]
fn vixie_extensions() {
    let v = |s: &str| CronExpr::parse(s).unwrap();
    let after = utc(2025, 6, 15, 13, 47, 23);
    assert_eq!(
        next_n(&v("0 0 LW * *"), after, Tz::UTC, 2),
        ["2025-06-30T00:00:00+00:00", "2025-07-31T00:00:00+00:00"]
    );
    assert_eq!(
        next_n(&v("0 0 * * FRIL"), after, Tz::UTC, 1),
        ["2025-06-27T00:00:00+00:00"]
    );
    assert!(CronExpr::parse("0 0 L-3 * *").is_err());
    assert!(CronExpr::parse("0 0 * * 1-5#2").is_err());
}

#[test]
fn six_field_seconds() {
    let e = CronExpr::parse("*/5 * * * * *").unwrap();
    let after = utc(2025, 6, 15, 23, 59, 57);
    assert_eq!(
        next_n(&e, after, Tz::UTC, 2),
        ["2025-06-16T00:00:00+00:00", "2025-06-16T00:00:05+00:00"]
    );
    let sub = after + chrono::Duration::milliseconds(500);
    assert_eq!(e.next_after(sub, &Tz::UTC), Some(utc(2025, 6, 16, 0, 0, 0)));
}

#[test]
fn explain_phrases() {
    let x = |s: &str| describe(s, Dialect::Vixie);
    let q = |s: &str| describe(s, Dialect::Quartz);
    assert_eq!(x("0 9 * * MON-FRI"), "At 09:00, Monday through Friday");
    assert_eq!(x("0 9 * * 1-5"), "At 09:00, Monday through Friday");
    assert_eq!(x("* * * * *"), "Every minute");
    assert_eq!(x("*/5 * * * * *"), "Every 5 seconds");
    assert_eq!(
        x("*/15 9-17 * * 1-5"),
        "Every 15 minutes, between 09:00 and 17:59, Monday through Friday"
    );
    assert_eq!(x("0 0 L * *"), "At 00:00, on the last day of the month");
    assert_eq!(x("0 0 * * 5L"), "At 00:00, on the last Friday of the month");
    assert_eq!(
        x("0 0 * * 1#2"),
        "At 00:00, on the second Monday of the month"
    );
    assert_eq!(
        x("0 12 * JAN-MAR *"),
        "At 12:00, only in January through March"
    );
    assert_eq!(x("0 8,17 * * *"), "At 08:00 and 17:00");
    assert_eq!(x("@hourly"), "Every hour");
    assert_eq!(x("5 * * * *"), "At minute 5 past the hour");
    assert_eq!(q("0 0 12 ? * 2"), "At 12:00, only on Monday");
    assert_eq!(
        x("0 12 * * 1/2"),
        "At 12:00, only on Monday, Wednesday, Friday and Sunday"
    );
    assert_eq!(
        x("0 0 1,15 * */3"),
        "At 00:00, on days 1 and 15 of the month, if it is Wednesday, Saturday or Sunday"
    );
    assert_eq!(
        x("0 0 */10 * *"),
        "At 00:00, every 10 days from day 1 of the month"
    );
    assert_eq!(
        q("0 0 0 ? * */2"),
        "At 00:00, only on Tuesday, Thursday, Saturday and Sunday"
    );
    assert_eq!(
        q("0 30 9 15 * ? 2030"),
        "At 09:30, on day 15 of the month, only in 2030"
    );
}

/// The `explain` fixes of issue 19, each checked against what `next` does.
#[test]
fn explain_agrees_with_the_evaluator() {
    let x = |s: &str| describe(s, Dialect::Vixie);
    let q = |s: &str| describe(s, Dialect::Quartz);
    let after = utc(2025, 6, 1, 0, 0, 0);
    // Quartz `L` alone in day-of-week is Saturday -- every Saturday.
    assert_eq!(q("0 0 12 ? * L"), "At 12:00, only on Saturday");
    let sat = CronExpr::parse_with("0 0 12 ? * L", Dialect::Quartz).unwrap();
    assert_eq!(
        next_n(&sat, after, Tz::UTC, 2),
        ["2025-06-07T12:00:00+00:00", "2025-06-14T12:00:00+00:00"]
    );
    // Day of month OR day of week: one pattern, "…, or on …".
    assert_eq!(
        x("30 4 1,15 * 5"),
        "At 04:30, on days 1 and 15 of the month, or on Friday"
    );
    assert_eq!(
        x("0 0 1 * 1-5"),
        "At 00:00, on day 1 of the month, or on Monday through Friday"
    );
    assert_eq!(
        x("0 0 L * 5L"),
        "At 00:00, on the last day of the month, or on the last Friday of the month"
    );
    assert_eq!(
        x("0 0 1 * 0,6"),
        "At 00:00, on day 1 of the month, or on Saturday and Sunday"
    );
    // `MON-FRI#2` is the second Monday, the second Tuesday, … (five days
    // that may straddle two calendar weeks), as docs/cron.md says.
    assert_eq!(
        x("0 0 * * MON-FRI#2"),
        "At 00:00, on the second Monday, second Tuesday, second Wednesday, \
         second Thursday and second Friday of the month"
    );
    let nth = CronExpr::parse("0 0 * * MON-FRI#2").unwrap();
    assert_eq!(
        next_n(&nth, utc(2025, 7, 1, 0, 0, 0), Tz::UTC, 5),
        [
            "2025-07-08T00:00:00+00:00",
            "2025-07-09T00:00:00+00:00",
            "2025-07-10T00:00:00+00:00",
            "2025-07-11T00:00:00+00:00",
            "2025-07-14T00:00:00+00:00"
        ]
    );
    // Calendar order, Monday first, whatever the spelling.
    assert_eq!(x("0 0 * * 0,6"), "At 00:00, only on Saturday and Sunday");
    assert_eq!(x("0 0 * * 6,0"), "At 00:00, only on Saturday and Sunday");
    assert_eq!(
        x("0 0 * * SAT,SUN"),
        "At 00:00, only on Saturday and Sunday"
    );
    assert_eq!(
        x("0 0 * * */2"),
        "At 00:00, only on Tuesday, Thursday, Saturday and Sunday"
    );
    assert_eq!(x("0 0 * * 5-7"), "At 00:00, Friday through Sunday");
    assert_eq!(
        x("0 0 * * 5,1-3"),
        "At 00:00, only on Monday through Wednesday and Friday"
    );
    // A `*` item makes its list unrestricted; with OR that is every day.
    assert_eq!(x("0 0 *,5 * MON"), "At 00:00, only on Monday");
    assert_eq!(x("0 0 5,* * MON"), "At 00:00");
    assert_eq!(x("*,3 * * * *"), "Every minute");
    assert_eq!(x("0 *,3 * * *"), "At minute 0 past the hour");
}

#[test]
fn explain_says_how_daylight_saving_treats_the_job() {
    let fixed = CronExpr::parse("30 2 * * *").unwrap();
    let wall = CronExpr::parse("0 30 2 * * *").unwrap();
    assert!(fixed.is_fixed_time() && !wall.is_fixed_time());
    assert_eq!(
        fixed.explain(),
        format!("At 02:30. {}", super::explain::FIXED_TIME_DST)
    );
    assert_eq!(
        wall.explain(),
        format!("At 02:30. {}", super::explain::WALL_CLOCK_DST)
    );
    assert_eq!(
        CronExpr::parse("@hourly").unwrap().explain(),
        format!("Every hour. {}", super::explain::WALL_CLOCK_DST)
    );
    assert_eq!(
        CronExpr::parse("0 0 30 2 *").unwrap().explain(),
        "At 00:00, on day 30 of the month, only in February. It never fires: no date matches it."
    );
    assert!(super::explain::FIXED_TIME_DST.contains("first pass"));
    assert!(super::explain::WALL_CLOCK_DST.contains("both passes"));
}

/// The last second before a spring-forward gap: a fixed-time job whose time
/// falls in the gap still fires at the gap's end (issue 19, cron edge 1).
#[test]
fn fixed_time_gap_fire_survives_a_start_in_the_last_second_before_the_gap() {
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    for (expr, tz, after, want) in [
        (
            "30 2 * * *",
            chrono_tz::Europe::Berlin,
            "2025-03-30T01:59:59+01:00",
            "2025-03-30T03:00:00+02:00",
        ),
        // Midnight gaps: Havana (00:00 -> 01:00), Santiago (24:00 Saturday).
        (
            "30 0 * * *",
            chrono_tz::America::Havana,
            "2025-03-08T23:59:59-05:00",
            "2025-03-09T01:00:00-04:00",
        ),
        (
            "0 0 * * *",
            chrono_tz::America::Santiago,
            "2025-09-06T23:59:59-04:00",
            "2025-09-07T01:00:00-03:00",
        ),
        // Tehran's last spring-forward, at midnight (2022).
        (
            "15 0 * * *",
            chrono_tz::Asia::Tehran,
            "2022-03-21T23:59:59+03:30",
            "2022-03-22T01:00:00+04:30",
        ),
        // Lord Howe's 30-minute gap (02:00 -> 02:30).
        (
            "15 2 * * *",
            chrono_tz::Australia::Lord_Howe,
            "2025-10-05T01:59:59+10:30",
            "2025-10-05T02:30:00+11:00",
        ),
        // Troll's two hours (01:00 -> 03:00).
        (
            "0 1,2 * * *",
            chrono_tz::Antarctica::Troll,
            "2025-03-30T00:59:59+00:00",
            "2025-03-30T03:00:00+02:00",
        ),
        // Kwajalein skipped 21 August 1993 altogether.
        (
            "0 12 * * *",
            chrono_tz::Pacific::Kwajalein,
            "1993-08-20T23:59:59-12:00",
            "1993-08-22T00:00:00+12:00",
        ),
    ] {
        let e = CronExpr::parse(expr).unwrap();
        let got = e.next_after(at(after), &tz).map(|t| t.with_timezone(&tz));
        assert_eq!(
            got.map(|t| t.to_rfc3339()),
            Some(want.to_owned()),
            "`{expr}` in {tz} after {after}"
        );
        // And the one-second-earlier start agrees.
        let earlier = at(after) - chrono::Duration::seconds(1);
        assert_eq!(e.next_after(earlier, &tz), Some(at(want)), "{expr} {tz}");
    }
}

/// From 2100 on offsets follow the zone's ongoing rule, not chrono-tz's last
/// offset (issue 19, cron edge 2).
#[test]
fn fire_times_from_2100_follow_the_zones_rule() {
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    let e = CronExpr::parse("0 12 1 7 *").unwrap();
    let berlin = chrono_tz::Europe::Berlin;
    assert_eq!(
        e.next_after(at("2099-12-31T12:00:00+01:00"), &berlin),
        Some(at("2100-07-01T12:00:00+02:00"))
    );
    // Far ahead, and a southern zone (January in summer time).
    assert_eq!(
        e.next_after(at("2424-12-31T00:00:00Z"), &berlin),
        Some(at("2425-07-01T12:00:00+02:00"))
    );
    let santiago = chrono_tz::America::Santiago;
    let noon_jan = CronExpr::parse("0 12 15 1 *").unwrap();
    assert_eq!(
        noon_jan.next_after(at("2150-01-01T00:00:00Z"), &santiago),
        Some(at("2150-01-15T12:00:00-03:00"))
    );
    assert_eq!(
        e.next_after(at("2150-01-01T00:00:00Z"), &santiago),
        Some(at("2150-07-01T12:00:00-04:00"))
    );
    // DST rules past 2100: Berlin springs forward on 2100-03-28 and falls
    // back on 2100-10-31.
    let fixed = CronExpr::parse("30 2 * * *").unwrap();
    assert_eq!(
        next_n(&fixed, at("2100-03-27T12:00:00Z"), berlin, 3),
        [
            "2100-03-28T03:00:00+02:00",
            "2100-03-29T02:30:00+02:00",
            "2100-03-30T02:30:00+02:00"
        ]
    );
    // chrono-tz alone would show that summer instant at +01:00.
    let t = at("2100-07-01T12:00:00+02:00");
    assert_eq!(
        t.with_timezone(&berlin).to_rfc3339(),
        "2100-07-01T11:00:00+01:00"
    );
    let wall = CronExpr::parse("0 30 2 * * *").unwrap();
    assert_eq!(
        next_n(&wall, at("2100-10-30T12:00:00Z"), berlin, 3),
        [
            "2100-10-31T02:30:00+02:00",
            "2100-10-31T02:30:00+01:00",
            "2100-11-01T02:30:00+01:00"
        ]
    );
}

/// `L` on the end of a weekday range used to be dropped (`MON-FRIL` fired
/// every weekday); `?` inside a list read as "day ?" (issue 19).
#[test]
fn last_on_a_range_and_question_mark_in_a_list_are_rejected_with_a_caret() {
    for (expr, dialect, pos, kind) in [
        (
            "0 0 * * MON-FRIL",
            Dialect::Vixie,
            15,
            CronErrorKind::LastOnRange,
        ),
        (
            "0 0 * * SUN-SATL#2",
            Dialect::Vixie,
            15,
            CronErrorKind::LastOnRange,
        ),
        (
            "0 0 * * 1-5L",
            Dialect::Vixie,
            11,
            CronErrorKind::LastOnRange,
        ),
        (
            "0 0 * * mon-fril",
            Dialect::Vixie,
            15,
            CronErrorKind::LastOnRange,
        ),
        (
            "0 0 0 ? * 2-6L",
            Dialect::Quartz,
            13,
            CronErrorKind::LastOnRange,
        ),
        (
            "0 0 ?,5 * *",
            Dialect::Vixie,
            4,
            CronErrorKind::QuestionMarkInList,
        ),
        (
            "0 0 5,? * *",
            Dialect::Vixie,
            6,
            CronErrorKind::QuestionMarkInList,
        ),
        (
            "0 0 * * ?,5",
            Dialect::Vixie,
            8,
            CronErrorKind::QuestionMarkInList,
        ),
        (
            "0 0 12 ?,5 * ?",
            Dialect::Quartz,
            7,
            CronErrorKind::QuestionMarkInList,
        ),
    ] {
        let e = CronExpr::parse_with(expr, dialect).expect_err(expr);
        assert_eq!((e.kind(), e.position()), (&kind, pos), "{expr}: {e}");
        let caret_line = e.to_string().lines().last().unwrap().to_owned();
        assert_eq!(caret_line.find('^'), Some(pos + 2), "{expr}");
    }
    assert_eq!(
        err("0 0 * * MON-FRIL").to_string(),
        "invalid cron expression: day-of-week: `L` (the last such weekday of the month) \
         takes one weekday, not a range\n  0 0 * * MON-FRIL\n                 ^"
    );
    // Still fine: `L` on one weekday, `?` alone, a range with `#`.
    for ok in [
        "0 0 * * FRIL",
        "0 0 * * 5L",
        "0 0 ? * 5",
        "0 0 * * MON-FRI#2",
    ] {
        assert!(CronExpr::parse(ok).is_ok(), "{ok}");
    }
}

/// The engine's error for a cron schedule that never fires quotes the
/// expression once (it used to nest backticks: ``schedule `cron `…`` ``).
#[test]
fn never_fires_error_reads_cleanly() {
    let s = crate::Scheduler::builder().test_mode(true).build();
    let e = s
        .register_task("feb30", "0 0 30 2 *", || {})
        .expect_err("never fires");
    assert!(matches!(e, crate::Error::NeverFires(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "schedule cron `0 0 30 2 *` never fires after now"
    );
    let e = s
        .add(
            crate::Schedule::cron("0 0 31 4 *")
                .unwrap()
                .in_tz(chrono_tz::Asia::Tokyo),
        )
        .run(|| {})
        .expect_err("never fires");
    assert_eq!(
        e.to_string(),
        "schedule cron `0 0 31 4 *` in Asia/Tokyo never fires after now"
    );
}
