//! Run policies (misfire, overlap, jitter, clock jumps) and what the engine
//! reports, all driven by a manual clock with exact expected counts.

use chrono::{DateTime, Utc};
use cronlane::{
    Dispatcher, Event, EventKind, Executor, Job, ManualClock, Misfire, Overlap, Schedule,
    Scheduler, SkipReason,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

fn t0() -> DateTime<Utc> {
    "2026-03-02T10:00:00Z".parse().unwrap()
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

fn manual(policy: Misfire) -> (Scheduler, ManualClock) {
    let clock = ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .misfire(policy)
        .jitter_seed(7)
        .build();
    (s, clock)
}

/// An every-minute task; returns the scheduled instants it ran for.
fn every_minute(s: &Scheduler) -> Arc<Mutex<Vec<DateTime<Utc>>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    s.add(Schedule::every(Duration::from_secs(60)))
        .name("minutely")
        .run_with_context(move |ctx| seen2.lock().unwrap().push(ctx.scheduled()))
        .unwrap();
    seen
}

/// Calls run_pending until a call fires nothing; returns the number of calls.
fn settle(s: &Scheduler) -> u32 {
    let mut calls = 1;
    while s.run_pending().fired + s.run_pending().failed > 0 {
        calls += 1;
        assert!(calls < 1_000, "run_pending keeps firing");
    }
    calls
}

fn stall_run(policy: Misfire) -> (Vec<DateTime<Utc>>, cronlane::TaskStats) {
    let (s, clock) = manual(policy);
    let seen = every_minute(&s);
    clock.advance(Duration::from_secs(60));
    s.run_pending(); // 10:01 on time
    clock.advance(Duration::from_secs(10 * 60 + 30)); // stall: 10:11:30
    settle(&s);
    clock.advance(Duration::from_secs(30)); // 10:12:00, back on time
    settle(&s);
    let seen = seen.lock().unwrap().clone();
    (seen, s.task_stats("minutely").unwrap())
}

#[test]
fn ten_minute_stall_fire_once_collapses_into_one_run() {
    let (seen, stats) = stall_run(Misfire::FireOnce);
    // 10:01, then one run for 10:02..10:11 (scheduled 10:11, the latest;
    // 10:02..10:10 skipped and counted), then 10:12.
    assert_eq!(
        seen,
        vec![t0() + secs(60), t0() + secs(660), t0() + secs(720)]
    );
    assert_eq!((stats.runs, stats.misfires, stats.skips), (3, 1, 9));
}

#[test]
fn ten_minute_stall_skip_drops_the_missed_fires() {
    let (seen, stats) = stall_run(Misfire::Skip);
    assert_eq!(seen, vec![t0() + secs(60), t0() + secs(720)]);
    // 10:02..10:11 dropped, all ten counted.
    assert_eq!((stats.runs, stats.misfires, stats.skips), (2, 1, 10));
}

#[test]
fn ten_minute_stall_catch_up_runs_each_missed_fire_up_to_the_cap() {
    let (seen, stats) = stall_run(Misfire::CatchUp { max: 4 });
    // 10:01 on time; 10:02..10:05 caught up (4, oldest first); 10:06 is past
    // the cap and dropped with the rest (10:06..10:11, all six counted);
    // then 10:12 on time.
    let mut want: Vec<_> = (1..=5).map(|m| t0() + secs(60 * m)).collect();
    want.push(t0() + secs(720));
    assert_eq!(seen, want);
    assert_eq!((stats.runs, stats.misfires, stats.skips), (6, 5, 6));
}

#[test]
fn catch_up_without_a_stall_beyond_the_cap_runs_everything() {
    let (seen, stats) = {
        let (s, clock) = manual(Misfire::CatchUp { max: 100 });
        let seen = every_minute(&s);
        clock.advance(Duration::from_secs(10 * 60));
        settle(&s);
        let v = seen.lock().unwrap().clone();
        (v, s.task_stats("minutely").unwrap())
    };
    let want: Vec<_> = (1..=10).map(|m| t0() + secs(60 * m)).collect();
    assert_eq!(seen, want);
    assert_eq!(stats.misfires, 9, "10:10 started within the grace period");
}

#[test]
fn a_one_year_forward_jump_is_bounded_work() {
    for (policy, runs) in [
        (Misfire::FireOnce, 1),
        (Misfire::Skip, 0),
        (Misfire::CatchUp { max: 50 }, 50),
    ] {
        let (s, clock) = manual(policy);
        let n = Arc::new(AtomicU32::new(0));
        let n2 = n.clone();
        s.add(Schedule::every(Duration::from_millis(1)))
            .run(move || {
                n2.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        let m = Arc::new(AtomicU32::new(0));
        let m2 = m.clone();
        s.add(Schedule::cron("0 9 * * *").unwrap())
            .run(move || {
                m2.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        clock.advance(Duration::from_secs(366 * 24 * 3600));
        let calls = settle(&s);
        assert!(calls <= 60, "{policy:?}: {calls} calls");
        // 31.6 billion missed millisecond fires: at most the cap ran.
        assert_eq!(n.load(Ordering::Relaxed), runs, "{policy:?}");
        assert_eq!(
            m.load(Ordering::Relaxed),
            runs.min(1) + u32::from(runs > 1) * 49,
            "{policy:?}"
        );
        assert_eq!(s.len(), 2, "{policy:?}");
        assert!(s.stats().misfired >= 2, "{policy:?}");
    }
}

#[test]
fn a_backward_jump_never_fires_an_instant_twice_and_does_not_stall() {
    let (s, clock) = manual(Misfire::FireOnce);
    let seen = every_minute(&s);
    for _ in 0..5 {
        clock.advance(Duration::from_secs(60));
        s.run_pending();
    }
    assert_eq!(seen.lock().unwrap().len(), 5); // 10:01 .. 10:05
    clock.set(t0() - secs(3600) + secs(300)); // back to 09:05
                                              // New work still runs while the clock catches up.
    let fresh = Arc::new(AtomicU32::new(0));
    let f = fresh.clone();
    s.add(Schedule::every(Duration::from_secs(60)))
        .run(move || {
            f.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    for _ in 0..62 {
        clock.advance(Duration::from_secs(60));
        s.run_pending();
    }
    // Now 10:07: the old task ran 10:06 and 10:07 only, never 10:01..10:05 again.
    let seen = seen.lock().unwrap().clone();
    let want: Vec<_> = (1..=7).map(|m| t0() + secs(60 * m)).collect();
    assert_eq!(seen, want);
    assert_eq!(fresh.load(Ordering::Relaxed), 62);
}

/// A callback that takes `slow` of manual-clock time on its first run.
fn slow_task(
    s: &Scheduler,
    clock: &ManualClock,
    overlap: Overlap,
    slow: Duration,
) -> Arc<Mutex<Vec<DateTime<Utc>>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (seen2, clock) = (seen.clone(), clock.clone());
    s.add(Schedule::every(Duration::from_secs(1)))
        .name("slow")
        .overlap(overlap)
        .run_with_context(move |ctx| {
            let mut v = seen2.lock().unwrap();
            if v.is_empty() {
                clock.advance(slow);
            }
            v.push(ctx.scheduled());
        })
        .unwrap();
    seen
}

#[test]
fn overlap_skip_drops_fires_that_came_due_during_the_run() {
    let (s, clock) = manual(Misfire::FireOnce);
    let seen = slow_task(&s, &clock, Overlap::Skip, Duration::from_millis(2_500));
    clock.advance(Duration::from_secs(1)); // 10:00:01
    s.run_pending(); // runs until 10:00:03.5: 10:00:02 and :03 came due
    settle(&s);
    clock.advance(Duration::from_millis(500)); // 10:00:04
    settle(&s);
    assert_eq!(*seen.lock().unwrap(), vec![t0() + secs(1), t0() + secs(4)]);
    let st = s.task_stats("slow").unwrap();
    assert_eq!((st.runs, st.skips, st.misfires), (2, 2, 0));
}

#[test]
fn overlap_queue_runs_one_right_after_and_skips_the_rest() {
    let (s, clock) = manual(Misfire::FireOnce);
    let seen = slow_task(&s, &clock, Overlap::Queue, Duration::from_millis(2_500));
    clock.advance(Duration::from_secs(1));
    s.run_pending(); // 10:00:01 runs until :03.5; :02 skipped, :03 queued
    s.run_pending(); // the queued :03 runs now (0.5 s late: on time)
    settle(&s);
    clock.advance(Duration::from_millis(500)); // :04
    settle(&s);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![t0() + secs(1), t0() + secs(3), t0() + secs(4)]
    );
    let st = s.task_stats("slow").unwrap();
    assert_eq!((st.runs, st.skips, st.misfires), (3, 1, 0));
    assert_eq!(s.stats().skipped, 1, "each instant counted once");
}

/// Runs every job on a thread of its own: real overlap.
struct ThreadPerJob;
impl Executor for ThreadPerJob {
    fn execute(&self, job: Job) {
        std::thread::spawn(move || job.run());
    }
}

fn allow_run(max: Option<u32>) -> (u32, cronlane::TaskStats, cronlane::Stats) {
    let clock = ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .dispatcher(Dispatcher::executor(ThreadPerJob))
        .build();
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let entered = Arc::new(AtomicU32::new(0));
    let e = entered.clone();
    s.add(Schedule::every(Duration::from_secs(1)))
        .name("allow")
        .overlap(Overlap::Allow { max })
        .run(move || {
            e.fetch_add(1, Ordering::SeqCst);
            let _ = entered_tx.send(());
            let _ = release_rx.lock().unwrap().recv();
        })
        .unwrap();
    clock.advance(Duration::from_secs(1));
    s.run_pending();
    entered_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("first run");
    // The next fire was scheduled before the first callback started.
    clock.advance(Duration::from_secs(1));
    assert_eq!(s.run_pending().dispatched, 1);
    let second = entered_rx.recv_timeout(Duration::from_millis(if max.is_some() {
        200
    } else {
        20_000
    }));
    assert_eq!(second.is_ok(), max.is_none());
    let _ = release_tx.send(());
    let _ = release_tx.send(());
    // Let the jobs finish through the scheduler's own accounting.
    s.start()
        .unwrap()
        .shutdown(Duration::from_secs(20))
        .unwrap();
    (
        entered.load(Ordering::SeqCst),
        s.task_stats("allow").unwrap(),
        s.stats(),
    )
}

#[test]
fn overlap_allow_runs_concurrently_up_to_the_limit() {
    let (entered, _, _) = allow_run(None);
    assert_eq!(entered, 2, "two runs at once");
    let (entered, stats, all) = allow_run(Some(1));
    assert_eq!(entered, 1);
    assert_eq!(
        stats.skips, 1,
        "the run over the limit is skipped and reported"
    );
    assert_eq!(all.skipped, 1, "and counted once overall");
}

#[test]
fn jitter_stays_within_bounds_and_is_deterministic() {
    let offsets = |seed: u64| {
        let clock = ManualClock::new(t0());
        let s = Scheduler::builder()
            .clock(clock.clone())
            .jitter_seed(seed)
            .build();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        s.add(Schedule::every(Duration::from_secs(10)))
            .jitter(Duration::from_secs(5))
            .run_with_context(move |ctx| {
                seen2.lock().unwrap().push((ctx.scheduled(), ctx.started()));
            })
            .unwrap();
        for _ in 0..1_060 {
            clock.advance(Duration::from_millis(100));
            s.run_pending();
        }
        let v = seen.lock().unwrap().clone();
        v
    };
    let a = offsets(42);
    assert_eq!(a.len(), 10);
    for (i, (scheduled, started)) in a.iter().enumerate() {
        assert_eq!(
            *scheduled,
            t0() + secs(10 * (i as i64 + 1)),
            "callback sees the unjittered instant"
        );
        let delay = (*started - *scheduled).num_milliseconds();
        assert!(
            (0..=5_100).contains(&delay),
            "delay {delay} ms out of bounds"
        );
    }
    assert_eq!(a, offsets(42), "same seed, same delays");
    assert_ne!(a, offsets(43), "another seed, other delays");
    let distinct: std::collections::HashSet<_> = a.iter().map(|(s, t)| *t - *s).collect();
    assert!(distinct.len() > 1, "delays vary from fire to fire");
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Started(String),
    Succeeded(String),
    Failed(String, String, bool),
    Misfired(String, bool),
    Skipped(String, SkipReason, u64),
}

#[test]
fn the_listener_receives_every_event_exactly_once() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let clock = ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .misfire(Misfire::Skip)
        .listener(move |e: &Event<'_>| {
            let name = e.name.unwrap_or("-").to_owned();
            let seen = match &e.kind {
                EventKind::Started { .. } => Seen::Started(name),
                EventKind::Succeeded => Seen::Succeeded(name),
                EventKind::Failed { message, panicked } => {
                    Seen::Failed(name, message.to_string(), *panicked)
                }
                EventKind::Misfired { runs, .. } => Seen::Misfired(name, *runs),
                EventKind::Skipped { reason, count } => Seen::Skipped(name, *reason, *count),
            };
            ev.lock().unwrap().push(seen);
        })
        .build();
    s.add(Schedule::after(Duration::from_secs(1)))
        .name("ok")
        .run(|| ())
        .unwrap();
    s.add(Schedule::after(Duration::from_secs(1)))
        .name("err")
        .run(|| Err::<(), _>("nope"))
        .unwrap();
    s.add(Schedule::after(Duration::from_secs(1)))
        .name("boom")
        .run(|| -> () { panic!("kaboom") })
        .unwrap();
    clock.advance(Duration::from_secs(1));
    s.run_pending();
    // A fire 10 s late under `Skip`: misfired, skipped, not run.
    s.add(Schedule::after(Duration::from_secs(1)))
        .name("late")
        .run(|| ())
        .unwrap();
    clock.advance(Duration::from_secs(11));
    s.run_pending();
    s.run_pending();

    let mut got = events.lock().unwrap().clone();
    got.sort_by_key(|e| format!("{e:?}"));
    let mut want = vec![
        Seen::Started("ok".into()),
        Seen::Succeeded("ok".into()),
        Seen::Started("err".into()),
        Seen::Failed("err".into(), "nope".into(), false),
        Seen::Started("boom".into()),
        Seen::Failed("boom".into(), "kaboom".into(), true),
        Seen::Misfired("late".into(), false),
        Seen::Skipped("late".into(), SkipReason::Misfire, 1),
    ];
    want.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(got, want);
    let st = s.stats();
    assert_eq!(
        (st.fired, st.succeeded, st.failed, st.skipped, st.misfired),
        (3, 1, 2, 1, 1)
    );
    assert_eq!(st.lag.count, 3);
}

#[test]
fn statistics_per_task_and_overall() {
    let (s, clock) = manual(Misfire::FireOnce);
    let n = Arc::new(AtomicU32::new(0));
    let n2 = n.clone();
    s.add(Schedule::every(Duration::from_secs(1)))
        .name("flaky")
        .run(move || {
            if n2.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
                Err("odd run")
            } else {
                Ok(())
            }
        })
        .unwrap();
    for _ in 0..10 {
        clock.advance(Duration::from_millis(1_250));
        s.run_pending();
    }
    let st = s.task_stats("flaky").unwrap();
    assert_eq!((st.runs, st.failures, st.misfires), (10, 5, 0));
    assert_eq!(st.last_error.as_deref(), Some("odd run"));
    assert_eq!(st.last_run, Some(t0() + secs(12)));
    assert_eq!(st.lag.count, 10);
    // Run every 1.25 s: scheduled 1, 2, 3, 5, 6, 7, 8, 10, 11, 12 s with lags
    // 0 .. 0.75 s; at 5 s and 10 s two instants were due, the later ran and
    // 4 s and 9 s were collapsed into it (on time, counted as skipped).
    assert_eq!(st.skips, 2);
    assert_eq!(st.lag.max, Duration::from_millis(750));
    assert!(st.lag.p50 <= st.lag.p99 && st.lag.p99 <= st.lag.max);
    assert_eq!(s.stats().lag.count, 10);
}

/// Registration has a fast path for anonymous one-shots at an instant; the
/// scheduler-wide misfire policy must still reach them (and jitter, set on
/// the task, must still move them).
#[test]
fn anonymous_one_shots_at_an_instant_keep_scheduler_and_task_policies() {
    for (policy, want) in [(Misfire::Skip, 0), (Misfire::FireOnce, 1)] {
        let (s, clock) = manual(policy);
        let n = Arc::new(AtomicU32::new(0));
        let n2 = n.clone();
        s.add(Schedule::once(t0() + secs(1)))
            .run(move || {
                n2.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        clock.advance(Duration::from_secs(30)); // far past the 1 s grace
        s.run_pending();
        assert_eq!(n.load(Ordering::Relaxed), want, "{policy:?}");
        assert!(s.is_empty());
    }
    let (s, _clock) = manual(Misfire::FireOnce);
    let id = s
        .add(Schedule::once(t0() + secs(60)))
        .jitter(Duration::from_secs(30))
        .run(|| ())
        .unwrap();
    let next = s.next_fire(id).unwrap().unwrap();
    // Jittered: strictly after the instant (the seed is fixed, so this is
    // deterministic), within the 30 s bound.
    assert!(next > t0() + secs(60) && next < t0() + secs(90), "{next}");
}

// Several instants already due when a fire starts (#12 items 8 and 12): the
// callback runs once, for the latest of them (or, under `CatchUp`, for each
// in turn); every instant that does not run is counted and reported.

/// A scheduler whose listener keeps every `Skipped` and `Misfired` event.
fn observed(policy: Misfire) -> (Scheduler, ManualClock, Arc<Mutex<Vec<Seen>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let clock = ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .misfire(policy)
        .listener(move |e: &Event<'_>| {
            let name = e.name.unwrap_or("-").to_owned();
            let seen = match &e.kind {
                EventKind::Misfired { runs, .. } => Seen::Misfired(name, *runs),
                EventKind::Skipped { reason, count } => Seen::Skipped(name, *reason, *count),
                _ => return,
            };
            ev.lock().unwrap().push(seen);
        })
        .build();
    (s, clock, events)
}

/// A named task on `schedule`; returns the scheduled instants it ran for.
fn named(s: &Scheduler, name: &str, schedule: Schedule) -> Arc<Mutex<Vec<DateTime<Utc>>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    s.add(schedule)
        .name(name)
        .run_with_context(move |ctx| seen2.lock().unwrap().push(ctx.scheduled()))
        .unwrap();
    seen
}

fn ms(n: i64) -> chrono::Duration {
    chrono::Duration::milliseconds(n)
}

#[test]
fn instants_collapsed_within_the_grace_period_are_counted_and_reported() {
    for policy in [Misfire::FireOnce, Misfire::Skip] {
        let (s, clock, events) = observed(policy);
        let seen = named(&s, "fast", Schedule::every(Duration::from_millis(1)));
        clock.advance(Duration::from_secs(1)); // 1,000 instants due, the oldest 999 ms ago
        assert_eq!(s.run_pending().fired, 1, "{policy:?}");
        assert_eq!(*seen.lock().unwrap(), vec![t0() + secs(1)], "the latest");
        let st = s.task_stats("fast").unwrap();
        assert_eq!((st.runs, st.skips, st.misfires), (1, 999, 0), "{policy:?}");
        assert_eq!(s.stats().skipped, 999, "{policy:?}");
        assert_eq!(s.stats().misfired, 0, "{policy:?}");
        assert_eq!(
            *events.lock().unwrap(),
            vec![Seen::Skipped("fast".into(), SkipReason::Collapsed, 999)],
            "{policy:?}"
        );
        assert_eq!(s.next_fire("fast").unwrap(), Some(t0() + ms(1_001)));
    }
}

#[test]
fn fire_once_after_a_five_second_step_runs_the_latest_instant() {
    let (s, clock, events) = observed(Misfire::FireOnce);
    let seen = named(&s, "sec", Schedule::every(Duration::from_secs(1)));
    clock.advance(Duration::from_secs(5)); // 1..=5 s due; 1 s is 4 s late
    assert_eq!(s.run_pending().fired, 1);
    assert_eq!(*seen.lock().unwrap(), vec![t0() + secs(5)]);
    let st = s.task_stats("sec").unwrap();
    assert_eq!((st.runs, st.misfires, st.skips), (1, 1, 4));
    assert_eq!(st.last_run, Some(t0() + secs(5)));
    assert_eq!((s.stats().misfired, s.stats().skipped), (1, 4));
    assert_eq!(
        *events.lock().unwrap(),
        vec![
            Seen::Misfired("sec".into(), true),
            Seen::Skipped("sec".into(), SkipReason::Misfire, 4),
        ]
    );
    assert_eq!(s.next_fire("sec").unwrap(), Some(t0() + secs(6)));
}

#[test]
fn skip_after_a_five_second_step_runs_nothing_and_counts_all_five() {
    let (s, clock, events) = observed(Misfire::Skip);
    let seen = named(&s, "sec", Schedule::every(Duration::from_secs(1)));
    clock.advance(Duration::from_secs(5));
    let report = s.run_pending();
    assert_eq!((report.fired, report.skipped), (0, 1), "one fire, skipped");
    assert!(seen.lock().unwrap().is_empty());
    let st = s.task_stats("sec").unwrap();
    assert_eq!((st.runs, st.misfires, st.skips), (0, 1, 5));
    assert_eq!((s.stats().misfired, s.stats().skipped), (1, 5));
    assert_eq!(
        *events.lock().unwrap(),
        vec![
            Seen::Misfired("sec".into(), false),
            Seen::Skipped("sec".into(), SkipReason::Misfire, 5),
        ]
    );
    assert_eq!(s.next_fire("sec").unwrap(), Some(t0() + secs(6)));
}

#[test]
fn catch_up_after_a_five_second_step_runs_up_to_the_cap_and_counts_the_rest() {
    let (s, clock, _events) = observed(Misfire::CatchUp { max: 2 });
    let seen = named(&s, "sec", Schedule::every(Duration::from_secs(1)));
    clock.advance(Duration::from_secs(5));
    settle(&s);
    // 1 s and 2 s caught up (oldest first); at 3 s the cap drops 3, 4 and 5 s.
    assert_eq!(*seen.lock().unwrap(), vec![t0() + secs(1), t0() + secs(2)]);
    let st = s.task_stats("sec").unwrap();
    assert_eq!((st.runs, st.misfires, st.skips), (2, 3, 3));
    assert_eq!(s.stats().skipped, 3);
    assert_eq!(s.next_fire("sec").unwrap(), Some(t0() + secs(6)));
}

#[test]
fn catch_up_runs_every_instant_within_the_grace_period() {
    let (s, clock, events) = observed(Misfire::CatchUp { max: 1 });
    let seen = named(&s, "fast", Schedule::every(Duration::from_millis(10)));
    clock.advance(Duration::from_secs(1)); // 100 instants, none late
    settle(&s);
    let want: Vec<_> = (1..=100).map(|i| t0() + ms(10 * i)).collect();
    assert_eq!(*seen.lock().unwrap(), want, "each ran, oldest first");
    let st = s.task_stats("fast").unwrap();
    assert_eq!((st.runs, st.misfires, st.skips), (100, 0, 0));
    assert!(events.lock().unwrap().is_empty());
}

#[test]
fn a_collapsed_run_that_overruns_counts_the_instants_due_during_it_once() {
    let (s, clock, events) = observed(Misfire::FireOnce);
    let seen = slow_task(&s, &clock, Overlap::Skip, Duration::from_millis(2_500));
    clock.advance(Duration::from_secs(5)); // 1..=5 s due: runs 5 s until 7.5 s
    s.run_pending();
    clock.advance(Duration::from_millis(500)); // 8 s
    settle(&s);
    assert_eq!(*seen.lock().unwrap(), vec![t0() + secs(5), t0() + secs(8)]);
    let st = s.task_stats("slow").unwrap();
    // 1..=4 s collapsed (misfire), 6 and 7 s came due during the run.
    assert_eq!((st.runs, st.misfires, st.skips), (2, 1, 6));
    assert_eq!(s.stats().skipped, 6);
    assert_eq!(
        *events.lock().unwrap(),
        vec![
            Seen::Misfired("slow".into(), true),
            Seen::Skipped("slow".into(), SkipReason::Misfire, 4),
            Seen::Skipped("slow".into(), SkipReason::Overlap, 2),
        ]
    );
}

#[test]
fn a_one_year_jump_is_counted_exactly_for_intervals_and_up_to_the_cap_for_cron() {
    let year = Duration::from_secs(366 * 24 * 3600);
    let ms_instants: u64 = 366 * 24 * 3600 * 1_000;
    for (policy, runs, ms_skips, cron_skips) in [
        (Misfire::FireOnce, 1, ms_instants - 1, 10_000),
        (Misfire::Skip, 0, ms_instants, 10_001),
    ] {
        let (s, clock, _events) = observed(policy);
        let fast = named(&s, "ms", Schedule::every(Duration::from_millis(1)));
        let cron = named(&s, "cron", Schedule::cron("* * * * * *").unwrap());
        clock.advance(year);
        settle(&s);
        let now = t0() + chrono::Duration::from_std(year).unwrap();
        let want: Vec<_> = (0..runs).map(|_| now).collect();
        assert_eq!(
            *fast.lock().unwrap(),
            want,
            "{policy:?}: the latest instant"
        );
        assert_eq!(
            *cron.lock().unwrap(),
            want,
            "{policy:?}: the latest instant"
        );
        let st = s.task_stats("ms").unwrap();
        assert_eq!((st.runs, st.misfires, st.skips), (runs as u64, 1, ms_skips));
        // Cron instants are counted up to 10,000 besides the claimed one.
        let st = s.task_stats("cron").unwrap();
        assert_eq!(
            (st.runs, st.misfires, st.skips),
            (runs as u64, 1, cron_skips)
        );
        assert_eq!(s.stats().skipped, ms_skips + cron_skips, "{policy:?}");
        assert_eq!(s.next_fire("ms").unwrap(), Some(now + ms(1)));
        assert_eq!(s.next_fire("cron").unwrap(), Some(now + secs(1)));
    }
}
