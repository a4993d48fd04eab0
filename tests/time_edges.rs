//! Time at its edges: interval grids anchored anywhere in the supported range
//! (1677–2262), an interval that starts at "now", and lags of hours and years
//! in the histograms. All on a manual clock.

use chrono::{DateTime, Utc};
use cronlane::{Error, ManualClock, Misfire, Schedule, Scheduler};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn scheduler(now: DateTime<Utc>) -> (Scheduler, ManualClock) {
    let clock = ManualClock::new(now);
    let s = Scheduler::builder()
        .clock(clock.clone())
        .misfire(Misfire::FireOnce)
        .build();
    (s, clock)
}

/// Registers `schedule` under `name`; returns the scheduled instants it ran for.
fn record(s: &Scheduler, name: &str, schedule: Schedule) -> Arc<Mutex<Vec<DateTime<Utc>>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    s.add(schedule)
        .name(name)
        .run_with_context(move |ctx| seen2.lock().unwrap().push(ctx.scheduled()))
        .unwrap();
    seen
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn an_interval_anchored_in_1700_fires_on_its_grid_today() {
    let now = at("2026-03-02T10:00:00.250Z");
    let (s, clock) = scheduler(now);
    let seen = record(
        &s,
        "old",
        Schedule::every(Duration::from_secs(1)).starting_at(at("1700-01-01T00:00:00Z")),
    );
    // The grid is whole seconds since 1700, so whole UTC seconds.
    assert_eq!(
        s.next_fire("old").unwrap(),
        Some(at("2026-03-02T10:00:01Z"))
    );
    for _ in 0..3 {
        clock.advance(Duration::from_secs(1));
        s.run_pending();
    }
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            at("2026-03-02T10:00:01Z"),
            at("2026-03-02T10:00:02Z"),
            at("2026-03-02T10:00:03Z"),
        ]
    );
}

#[test]
fn an_hourly_interval_anchored_in_1735_keeps_firing() {
    let (s, clock) = scheduler(at("2028-06-01T00:30:00Z"));
    let seen = record(
        &s,
        "hourly",
        Schedule::every(HOUR).starting_at(at("1735-01-01T00:00:00Z")),
    );
    for _ in 0..3 {
        clock.advance(HOUR);
        s.run_pending();
    }
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            at("2028-06-01T01:00:00Z"),
            at("2028-06-01T02:00:00Z"),
            at("2028-06-01T03:00:00Z"),
        ]
    );
    assert_eq!(s.len(), 1, "the task is still registered");
    assert_eq!(
        s.next_fire("hourly").unwrap(),
        Some(at("2028-06-01T04:00:00Z"))
    );
}

#[test]
fn an_anchor_at_each_end_of_the_range_resolves() {
    // The earliest representable instant as the anchor, a clock near the end.
    let (s, _clock) = scheduler(at("2262-04-01T00:00:00Z"));
    let first = at("1677-09-21T00:12:43.145224192Z");
    s.add(Schedule::every(Duration::from_secs(7)).starting_at(first))
        .name("early")
        .run(|| ())
        .unwrap();
    let next = s.next_fire("early").unwrap().unwrap();
    let since = next - first;
    assert_eq!(since.subsec_nanos(), 0, "on the grid");
    assert_eq!(since.num_seconds() % 7, 0, "on the grid");
    assert!(next >= at("2262-04-01T00:00:00Z") && next < at("2262-04-01T00:00:07Z"));
    // An anchor in range whose grid has no instant left before the end of
    // the range never fires: that, and only that, is `NeverFires`.
    let (s, _clock) = scheduler(at("2262-04-11T23:47:16Z"));
    let err = s
        .add(Schedule::every(HOUR).starting_at(at("2262-04-11T23:00:00Z")))
        .run(|| ());
    assert!(matches!(err, Err(Error::NeverFires(_))), "{err:?}");
}

#[test]
fn starting_at_now_fires_now_then_every_period() {
    let now = at("2026-03-02T10:00:00Z");
    let (s, clock) = scheduler(now);
    let seen = record(
        &s,
        "now",
        Schedule::every(Duration::from_secs(10)).starting_at(now),
    );
    assert_eq!(s.next_fire("now").unwrap(), Some(now));
    assert_eq!(s.run_pending().fired, 1, "fires at the instant it names");
    clock.advance(Duration::from_secs(10));
    s.run_pending();
    assert_eq!(*seen.lock().unwrap(), vec![now, at("2026-03-02T10:00:10Z")]);
}

#[test]
fn starting_at_in_the_past_or_future_picks_the_first_grid_instant_at_or_after_now() {
    let now = at("2026-03-02T10:00:00Z");
    let (s, _clock) = scheduler(now);
    let every = |start: &str| Schedule::every(Duration::from_secs(10)).starting_at(at(start));
    let cases = [
        ("2026-03-02T09:59:45Z", "2026-03-02T10:00:05Z"), // off the grid: next one
        ("2026-03-02T09:58:00Z", "2026-03-02T10:00:00Z"), // on the grid: now
        ("2026-03-02T10:05:00Z", "2026-03-02T10:05:00Z"), // future: the anchor
    ];
    for (start, want) in cases {
        let id = s.add(every(start)).run(|| ()).unwrap();
        assert_eq!(s.next_fire(id).unwrap(), Some(at(want)), "from {start}");
    }
    // A plain interval still starts one period after registration.
    let id = s
        .add(Schedule::every(Duration::from_secs(10)))
        .run(|| ())
        .unwrap();
    assert_eq!(s.next_fire(id).unwrap(), Some(at("2026-03-02T10:00:10Z")));
}

/// One run of a recurring task that starts `late` after its instant; returns
/// (task p50, task max, scheduler p50) in nanoseconds.
fn one_late_run(period: Duration, late: Duration) -> (u128, u128, u128) {
    let (s, clock) = scheduler(at("2026-03-02T10:00:00Z"));
    s.add(Schedule::every(period))
        .name("late")
        .run(|| ())
        .unwrap();
    clock.advance(period + late);
    assert_eq!(s.run_pending().fired, 1);
    let task = s.task_stats("late").unwrap().lag;
    let all = s.stats().lag;
    assert_eq!((task.count, all.count), (1, 1));
    assert_eq!(task.max, late, "the maximum is exact");
    assert_eq!(all.max, late);
    (task.p50.as_nanos(), task.max.as_nanos(), all.p50.as_nanos())
}

#[test]
fn a_two_hour_lag_is_measured_within_the_documented_precision() {
    let late = 2 * HOUR;
    let (task_p50, task_max, all_p50) = one_late_run(Duration::from_secs(24 * 3600), late);
    assert!(task_p50 >= late.as_nanos() && task_p50 <= task_max);
    assert!(all_p50 >= late.as_nanos());

    // Three lags a minute apart (one bucket at either precision): p50 is read
    // from the buckets, within a factor of 2 per task and 25 % overall.
    let t0 = at("2026-03-02T10:00:00Z");
    let (s, clock) = scheduler(t0);
    let day = chrono::Duration::days(1);
    s.add(Schedule::every(Duration::from_secs(24 * 3600)))
        .name("daily")
        .run(|| ())
        .unwrap();
    for (k, extra) in [(1, 0), (2, 60), (3, 120)] {
        clock.set(t0 + day * k + chrono::Duration::seconds(7200 + extra));
        assert_eq!(s.run_pending().fired, 1);
    }
    let task = s.task_stats("daily").unwrap().lag;
    let all = s.stats().lag;
    assert_eq!((task.count, all.count), (3, 3));
    let median = (late + Duration::from_secs(60)).as_nanos() as f64;
    let p50 = task.p50.as_nanos() as f64;
    assert!(
        p50 >= median && p50 <= 2.0 * median,
        "task p50 {:?}",
        task.p50
    );
    let p50 = all.p50.as_nanos() as f64;
    assert!(
        p50 >= median && p50 <= 1.25 * median,
        "overall p50 {:?}",
        all.p50
    );
    assert_eq!(all.max, late + Duration::from_secs(120));
}

#[test]
fn a_one_year_lag_is_covered() {
    let year = Duration::from_secs(365 * 24 * 3600);
    let (task_p50, _, all_p50) = one_late_run(10 * year, year);
    // Percentiles are upper bounds of their buckets, capped by the exact
    // maximum: a histogram that saturates below a year reports less.
    assert_eq!(task_p50, year.as_nanos());
    assert_eq!(all_p50, year.as_nanos());
}
