//! Management paths as exactly-once as a fire (issue 12, items 1, 2, 4, 5,
//! 9): pause, reschedule, resume, replace and remove racing fires and each
//! other, through the public API only. Each test failed before its fix.

use cronlane::{Schedule, Scheduler, TaskId, TaskState};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

mod common;
use common::{manual, t0, SECOND};

type Fires = Arc<Mutex<Vec<(TaskId, i64)>>>;

/// Registers an every-second task that records `(id, scheduled)` per fire.
fn recording(s: &Scheduler, schedule: Schedule, fires: &Fires) -> TaskId {
    let fires = fires.clone();
    s.add(schedule)
        .run_with_context(move |ctx| {
            fires
                .lock()
                .unwrap()
                .push((ctx.id(), ctx.scheduled().timestamp_millis()));
        })
        .unwrap()
}

#[test]
fn pause_reschedule_resume_keeps_a_recurring_task() {
    let (s, clock) = manual();
    let fires: Fires = Arc::default();
    let id = recording(&s, Schedule::every(SECOND), &fires);
    s.pause(id).unwrap();
    s.reschedule(id, Schedule::every(SECOND)).unwrap();
    assert_eq!(s.info(id).unwrap().state, TaskState::Paused);
    assert_eq!(s.next_fire(id).unwrap(), None);
    s.resume(id).unwrap();
    assert_eq!(s.info(id).unwrap().state, TaskState::Scheduled);
    let next = s.next_fire(id).unwrap().expect("scheduled after resume");
    assert!(next > s.now(), "next fire {next} is not after now");
    for _ in 0..5 {
        clock.advance(SECOND);
        s.run_pending();
    }
    assert_eq!(fires.lock().unwrap().len(), 5);
}

#[test]
fn pause_reschedule_resume_keeps_a_one_shot() {
    let (s, clock) = manual();
    let fires: Fires = Arc::default();
    let id = recording(&s, Schedule::after(SECOND), &fires);
    s.pause(id).unwrap();
    s.reschedule(id, Schedule::after(2 * SECOND)).unwrap();
    s.resume(id).unwrap();
    clock.advance(2 * SECOND);
    s.run_pending();
    assert_eq!(fires.lock().unwrap().len(), 1);
    assert!(s.is_empty());
}

#[test]
fn resume_after_a_backward_jump_never_refires_an_instant() {
    let (s, clock) = manual();
    let fires: Fires = Arc::default();
    let id = recording(&s, Schedule::every(SECOND), &fires);
    for _ in 0..10 {
        clock.advance(SECOND);
        s.run_pending();
    }
    s.pause(id).unwrap();
    clock.set(t0());
    s.resume(id).unwrap();
    s.reschedule(id, Schedule::every(SECOND).starting_at(t0()))
        .unwrap();
    for _ in 0..20 {
        clock.advance(SECOND);
        s.run_pending();
    }
    let fires = fires.lock().unwrap();
    let mut seen = HashMap::new();
    for &(_, at) in fires.iter() {
        *seen.entry(at).or_insert(0) += 1;
    }
    assert!(
        seen.values().all(|&n| n == 1),
        "an instant fired twice: {seen:?}"
    );
    assert!(
        fires.windows(2).all(|w| w[0].1 < w[1].1),
        "instants out of order"
    );
    // 10 before the jump, then 11..=20 once the clock is back past them.
    assert_eq!(fires.len(), 20);
}

#[test]
fn reschedule_during_a_run_starts_after_the_instant_that_ran() {
    let (s, clock) = manual();
    let fires: Fires = Arc::default();
    let id = {
        let (fires, clock) = (fires.clone(), clock.clone());
        s.add(Schedule::every(SECOND))
            .run_with_context(move |ctx| {
                fires
                    .lock()
                    .unwrap()
                    .push((ctx.id(), ctx.scheduled().timestamp_millis()));
                // Same grid, from a clock that went back during the run.
                clock.set(t0());
                ctx.scheduler()
                    .reschedule(ctx.id(), Schedule::every(SECOND).starting_at(t0()))
                    .unwrap();
            })
            .unwrap()
    };
    clock.advance(SECOND);
    s.run_pending();
    assert_eq!(
        s.next_fire(id).unwrap().unwrap(),
        t0() + chrono::Duration::seconds(2),
        "the new plan starts at or before the instant that just ran"
    );
    clock.set(t0() + chrono::Duration::seconds(1));
    s.run_pending();
    clock.set(t0() + chrono::Duration::seconds(2));
    s.run_pending();
    let fires = fires.lock().unwrap();
    let at: Vec<i64> = fires
        .iter()
        .map(|f| f.1 - t0().timestamp_millis())
        .collect();
    assert_eq!(at, [1_000, 2_000]);
}

/// Many threads reschedule one recurring task while two fire it: no
/// `(task, instant)` twice, instants in order.
#[test]
fn reschedule_storm_racing_fires_never_runs_an_instant_twice() {
    let (s, clock) = manual();
    let fires: Fires = Arc::default();
    let id = recording(&s, Schedule::every(Duration::from_millis(10)), &fires);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(3));
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let (s, stop, start) = (&s, &stop, &start);
            scope.spawn(move || {
                start.wait();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) || n < 100 {
                    // One fixed grid: a reschedule never pushes the next
                    // instant out of reach (a plain `every` from now would
                    // starve the task under a storm), and a first instant
                    // computed from a stale clock lands on an instant that
                    // may already have run.
                    let grid = Schedule::every(Duration::from_millis(10)).starting_at(t0());
                    s.reschedule(id, grid).unwrap();
                    n += 1;
                    if n > 200_000 {
                        break;
                    }
                }
            });
        }
        start.wait();
        for _ in 0..20_000 {
            clock.advance(Duration::from_millis(10));
            s.run_pending();
        }
        stop.store(true, Ordering::Relaxed);
    });
    let fires = fires.lock().unwrap();
    assert!(!fires.is_empty());
    for w in fires.windows(2) {
        assert!(w[0].1 < w[1].1, "instant {} ran after {}", w[1].1, w[0].1);
    }
}

#[test]
fn concurrent_replacements_leave_one_task_under_the_name() {
    for _ in 0..5 {
        let (s, clock) = manual();
        let fired = Arc::new(Mutex::new(HashMap::<TaskId, u32>::new()));
        let start = Arc::new(Barrier::new(2));
        std::thread::scope(|scope| {
            for _ in 0..2 {
                let (s, start, fired) = (&s, &start, &fired);
                scope.spawn(move || {
                    start.wait();
                    for _ in 0..5_000 {
                        let fired = fired.clone();
                        s.add(Schedule::every(SECOND))
                            .name("x")
                            .replace_existing()
                            .run_with_context(move |ctx| {
                                *fired.lock().unwrap().entry(ctx.id()).or_insert(0) += 1;
                            })
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(s.len(), 1, "live tasks after replacements");
        let named: Vec<_> = s
            .tasks()
            .into_iter()
            .filter(|t| t.name.as_deref() == Some("x"))
            .collect();
        assert_eq!(named.len(), 1);
        clock.advance(SECOND);
        s.run_pending();
        assert_eq!(fired.lock().unwrap().len(), 1, "orphans fired");
        s.remove("x").unwrap();
        clock.advance(SECOND);
        s.run_pending();
        assert_eq!(fired.lock().unwrap().values().sum::<u32>(), 1);
        assert!(s.is_empty());
    }
}

#[test]
fn register_racing_remove_of_one_name_never_leaves_two() {
    let (s, _clock) = manual();
    let start = Arc::new(Barrier::new(2));
    let registered = AtomicU32::new(0);
    std::thread::scope(|scope| {
        let (s1, start1, registered) = (&s, &start, &registered);
        scope.spawn(move || {
            start1.wait();
            for _ in 0..5_000 {
                if s1.add(Schedule::every(SECOND)).name("y").run(|| ()).is_ok() {
                    registered.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let (s2, start2) = (&s, &start);
        scope.spawn(move || {
            start2.wait();
            for _ in 0..5_000 {
                let _ = s2.remove("y");
            }
        });
    });
    assert!(s.len() <= 1, "{} live tasks", s.len());
    assert!(registered.load(Ordering::Relaxed) >= 1);
    let _ = s.remove("y");
    assert!(s.is_empty());
}

/// A `run_pending` fires every task that was due when it began, even while
/// another thread's removals compact the runs it is claiming from.
#[test]
fn run_pending_fires_every_due_task_while_removals_compact_runs() {
    const N: usize = 8_192;
    for _ in 0..10 {
        let (s, clock) = manual();
        let fired: Arc<Vec<AtomicU32>> = Arc::new((0..N).map(|_| AtomicU32::new(0)).collect());
        let ids: Vec<TaskId> = (0..N)
            .map(|i| {
                let fired = fired.clone();
                s.add(Schedule::once(
                    t0() + chrono::Duration::milliseconds(1 + (i * 7_919 % 3_000) as i64),
                ))
                .run(move || {
                    fired[i].fetch_add(1, Ordering::Relaxed);
                })
                .unwrap()
            })
            .collect();
        s.run_pending(); // into runs
        clock.advance(Duration::from_secs(4));
        let start = Barrier::new(2);
        let removed: Vec<bool> = std::thread::scope(|scope| {
            let remover = scope.spawn(|| {
                start.wait();
                ids.iter()
                    .enumerate()
                    .map(|(i, &id)| i % 2 == 0 && s.remove(id).is_ok())
                    .collect()
            });
            start.wait();
            s.run_pending();
            // Everything this call did not fire is either removed or a bug:
            // look before the remover is joined (it may still be removing).
            remover.join().unwrap()
        });
        for (i, f) in fired.iter().enumerate() {
            let n = f.load(Ordering::Relaxed);
            assert!(n <= 1, "task {i} fired {n} times");
            if !removed[i] {
                assert_eq!(n, 1, "task {i}, due and not removed, was not fired");
            }
        }
        assert!(s.is_empty(), "{} left", s.len());
    }
}

#[test]
fn task_ids_debug_as_their_number() {
    let (s, _clock) = manual();
    let id = s.add(Schedule::every(SECOND)).run(|| ()).unwrap();
    assert_eq!(format!("{id:?}"), format!("TaskId({})", id.as_u64()));
    assert_eq!(format!("{id}"), format!("#{}", id.as_u64()));
}

/// A recurring task rescheduled to a one-shot while it runs keeps its new
/// plan: the run that was under way does not complete the task on the
/// one-shot's "no next instant".
#[test]
fn rescheduling_a_running_recurring_task_to_a_one_shot_keeps_it() {
    let (s, clock) = manual();
    let fires: Fires = Arc::default();
    let id = {
        let fires = fires.clone();
        s.add(Schedule::every(SECOND))
            .run_with_context(move |ctx| {
                let n = {
                    let mut f = fires.lock().unwrap();
                    f.push((ctx.id(), ctx.scheduled().timestamp_millis()));
                    f.len()
                };
                if n == 1 {
                    ctx.scheduler()
                        .reschedule(
                            ctx.id(),
                            Schedule::once(t0() + chrono::Duration::seconds(5)),
                        )
                        .unwrap();
                }
            })
            .unwrap()
    };
    clock.advance(SECOND);
    s.run_pending();
    assert_eq!(
        s.next_fire(id).unwrap(),
        Some(t0() + chrono::Duration::seconds(5))
    );
    clock.advance(4 * SECOND);
    s.run_pending();
    assert_eq!(fires.lock().unwrap().len(), 2);
    assert!(s.is_empty());
}

/// An interval's first instant is "at or after now": resuming (or
/// rescheduling onto the same grid) exactly at the instant that just ran
/// must not run it again.
#[test]
fn resume_or_reschedule_on_the_instant_that_just_ran_does_not_rerun_it() {
    let (s, clock) = manual();
    let fires: Fires = Arc::default();
    let id = recording(&s, Schedule::every(SECOND), &fires);
    clock.advance(SECOND);
    s.run_pending();
    s.pause(id).unwrap();
    s.resume(id).unwrap();
    s.run_pending();
    s.reschedule(id, Schedule::every(SECOND).starting_at(s.now()))
        .unwrap();
    s.run_pending();
    assert_eq!(fires.lock().unwrap().len(), 1);
    clock.advance(SECOND);
    s.run_pending();
    assert_eq!(fires.lock().unwrap().len(), 2);
}

#[test]
fn task_stats_give_the_scheduled_and_the_started_instant_of_the_last_run() {
    let (s, clock) = manual();
    s.add(Schedule::every(SECOND))
        .name("late")
        .run(|| ())
        .unwrap();
    clock.advance(Duration::from_millis(1_400)); // due at +1 s, starts at +1.4 s
    s.run_pending();
    let st = s.task_stats("late").unwrap();
    assert_eq!(st.last_run, Some(t0() + chrono::Duration::seconds(1)));
    assert_eq!(
        st.last_started,
        Some(t0() + chrono::Duration::milliseconds(1_400))
    );
}

#[test]
fn until_ends_a_recurring_task_after_its_last_instant() {
    let (s, clock) = manual();
    let fires: Fires = Arc::default();
    let fires2 = fires.clone();
    s.add(Schedule::every(SECOND))
        .name("bounded")
        .until(t0() + chrono::Duration::seconds(3))
        .run_with_context(move |ctx| {
            fires2
                .lock()
                .unwrap()
                .push((ctx.id(), ctx.scheduled().timestamp_millis()));
        })
        .unwrap();
    for _ in 0..6 {
        clock.advance(SECOND);
        s.run_pending();
    }
    let at: Vec<i64> = fires
        .lock()
        .unwrap()
        .iter()
        .map(|f| (f.1 - t0().timestamp_millis()) / 1_000)
        .collect();
    assert_eq!(
        at,
        [1, 2, 3],
        "an instant equal to the end fires, none after"
    );
    assert!(s.is_empty(), "the task is finished after its end");
    assert!(matches!(
        s.info("bounded"),
        Err(cronlane::Error::NoSuchName(_))
    ));
}

#[test]
fn times_runs_a_task_at_most_n_times_and_failures_count() {
    let (s, clock) = manual();
    let runs = Arc::new(AtomicU32::new(0));
    let r = runs.clone();
    s.add(Schedule::every(SECOND))
        .times(3)
        .run(move || {
            // The second run fails: it still counts as a run.
            if r.fetch_add(1, Ordering::SeqCst) == 1 {
                Err("no")
            } else {
                Ok(())
            }
        })
        .unwrap();
    for _ in 0..6 {
        clock.advance(SECOND);
        s.run_pending();
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert!(s.is_empty());
}

#[test]
fn an_end_before_the_first_instant_or_zero_times_is_rejected_and_changes_nothing() {
    let (s, _clock) = manual();
    let early = s.add(Schedule::every(SECOND)).until(t0()).run(|| ());
    assert!(
        matches!(early, Err(cronlane::Error::NeverFires(_))),
        "{early:?}"
    );
    let zero = s.add(Schedule::every(SECOND)).times(0).run(|| ());
    assert!(
        matches!(zero, Err(cronlane::Error::NeverFires(_))),
        "{zero:?}"
    );
    assert!(s.is_empty());
}

#[test]
fn resume_after_the_end_finishes_the_task() {
    let (s, clock) = manual();
    let id = s
        .add(Schedule::every(SECOND))
        .until(t0() + chrono::Duration::seconds(2))
        .run(|| ())
        .unwrap();
    s.pause(id).unwrap();
    clock.advance(5 * SECOND);
    s.resume(id).unwrap();
    assert!(s.is_empty(), "no instant is left before the end");
}

/// A one-shot paused and rescheduled (to a recurring plan) while it runs,
/// then resumed after the clock went back: the new plan starts after the
/// instant that ran, even though the one-shot had no cursor of its own.
#[test]
fn a_one_shot_paused_and_rescheduled_mid_run_never_goes_back_in_time() {
    let (s, clock) = manual();
    let fires: Fires = Arc::default();
    let id = {
        let (fires, clock) = (fires.clone(), clock.clone());
        s.add(Schedule::once(t0() + chrono::Duration::seconds(3)))
            .name("one")
            .run_with_context(move |ctx| {
                fires
                    .lock()
                    .unwrap()
                    .push((ctx.id(), ctx.scheduled().timestamp_millis()));
                if fires.lock().unwrap().len() == 1 {
                    let s = ctx.scheduler();
                    s.pause("one").unwrap();
                    s.reschedule("one", Schedule::every(SECOND).starting_at(t0()))
                        .unwrap();
                    clock.set(t0());
                }
            })
            .unwrap()
    };
    clock.advance(3 * SECOND);
    s.run_pending();
    s.resume(id).unwrap();
    for _ in 0..5 {
        clock.advance(SECOND);
        s.run_pending();
    }
    let fires = fires.lock().unwrap();
    assert!(
        fires.windows(2).all(|w| w[0].1 < w[1].1),
        "an instant ran after a later one: {fires:?}"
    );
    assert_eq!(fires.len(), 3, "t0+3 s, then t0+4 s and t0+5 s: {fires:?}");
}
