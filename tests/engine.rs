//! Engine behaviour, driven by a manual clock (no test sleeps to wait for a fire).

use cronlane::{Dispatcher, Error, ManualClock, Schedule, Scheduler, TaskState};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

mod common;
use common::{manual, t0};

#[test]
fn exactly_once_under_contention() {
    const TASKS: usize = 200_000;
    const SPAN_MS: u64 = 2_000;
    let (s, clock) = manual();
    let counts: Arc<Vec<AtomicU32>> = Arc::new((0..TASKS).map(|_| AtomicU32::new(0)).collect());
    let registered = Arc::new(AtomicUsize::new(0));
    let advancing_done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(7));

    let mut handles = Vec::new();
    for half in 0..2 {
        let (s, counts, registered, start) =
            (s.clone(), counts.clone(), registered.clone(), start.clone());
        handles.push(std::thread::spawn(move || {
            start.wait();
            for i in (half..TASKS).step_by(2) {
                let at = t0() + chrono::Duration::milliseconds((i as u64 % SPAN_MS) as i64);
                let counts = counts.clone();
                s.add(Schedule::once(at))
                    .run(move || {
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    })
                    .unwrap();
                registered.fetch_add(1, Ordering::Release);
            }
        }));
    }
    {
        let (clock, start, done, registered) = (
            clock.clone(),
            start.clone(),
            advancing_done.clone(),
            registered.clone(),
        );
        handles.push(std::thread::spawn(move || {
            start.wait();
            // Move through the range while registration goes on, then past it.
            for _ in 0..SPAN_MS {
                clock.advance(Duration::from_millis(1));
                std::thread::yield_now();
            }
            while registered.load(Ordering::Acquire) < TASKS {
                std::thread::yield_now();
            }
            clock.advance(Duration::from_secs(1));
            done.store(true, Ordering::Release);
        }));
    }
    let fired_total = Arc::new(AtomicU64::new(0));
    for _ in 0..4 {
        let (s, start, done, fired_total) = (
            s.clone(),
            start.clone(),
            advancing_done.clone(),
            fired_total.clone(),
        );
        handles.push(std::thread::spawn(move || {
            start.wait();
            loop {
                let finished = done.load(Ordering::Acquire);
                let r = s.run_pending();
                fired_total.fetch_add(r.fired, Ordering::Relaxed);
                if finished && r.fired == 0 {
                    break;
                }
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    // Everything registered was due by the end; one more pass changes nothing.
    assert_eq!(s.run_pending().fired, 0);
    let mut wrong = 0;
    for (i, c) in counts.iter().enumerate() {
        let n = c.load(Ordering::Relaxed);
        if n != 1 {
            wrong += 1;
            if wrong < 10 {
                eprintln!("task {i} fired {n} times");
            }
        }
    }
    assert_eq!(wrong, 0, "tasks not fired exactly once");
    assert_eq!(fired_total.load(Ordering::Relaxed), TASKS as u64);
    assert_eq!(s.stats().fired, TASKS as u64);
    assert!(s.is_empty(), "one-shots are gone after firing: {}", s.len());
}

#[test]
fn every_second_for_an_hour_fires_3600_times_on_the_grid() {
    let (s, clock) = manual();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    s.add(Schedule::every(Duration::from_secs(1)))
        .name("tick")
        .run_with_context(move |ctx| seen2.lock().unwrap().push((ctx.scheduled(), ctx.started())))
        .unwrap();
    for _ in 0..3600 {
        clock.advance(Duration::from_secs(1));
        s.run_pending();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3600);
    for (i, (scheduled, started)) in seen.iter().enumerate() {
        let want = t0() + chrono::Duration::seconds(i as i64 + 1);
        assert_eq!(*scheduled, want);
        assert_eq!(*started, want);
    }
    assert_eq!(s.info("tick").unwrap().runs, 3600);
}

#[test]
fn sub_second_interval_and_no_drift_when_late() {
    let (s, clock) = manual();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    s.add(Schedule::every(Duration::from_millis(250)))
        .run_with_context(move |ctx| seen2.lock().unwrap().push(ctx.scheduled()))
        .unwrap();
    // Run late each time (every 300 ms): fires stay on the 250 ms grid.
    for _ in 0..10 {
        clock.advance(Duration::from_millis(300));
        s.run_pending();
    }
    let seen = seen.lock().unwrap();
    for at in seen.iter() {
        let ms = (*at - t0()).num_milliseconds();
        assert_eq!(ms % 250, 0, "fire at {ms} ms is off the grid");
    }
    // 3 s passed: fires for 250..=3000 that were reached, one per pass at most.
    assert_eq!(seen.len(), 10);
    // A long stall collapses into one fire, then back on the grid.
    drop(seen);
    clock.advance(Duration::from_secs(60));
    assert_eq!(s.run_pending().fired, 1);
    assert_eq!(s.run_pending().fired, 0);
}

#[test]
fn callback_registers_removes_and_reschedules_itself() {
    let (s, clock) = manual();
    let child_fired = Arc::new(AtomicU32::new(0));
    let victim_fired = Arc::new(AtomicU32::new(0));
    let spawner_fired = Arc::new(AtomicU32::new(0));

    let v = victim_fired.clone();
    s.add(Schedule::every(Duration::from_secs(1)))
        .name("victim")
        .run(move || {
            v.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();

    let (c, sp) = (child_fired.clone(), spawner_fired.clone());
    s.add(Schedule::every(Duration::from_secs(1)))
        .name("spawner")
        .run_with_context(move |ctx| {
            let n = sp.fetch_add(1, Ordering::SeqCst);
            let sched = ctx.scheduler();
            if n == 0 {
                let c = c.clone();
                sched
                    .add(Schedule::after(Duration::ZERO))
                    .name("child")
                    .run(move || {
                        c.fetch_add(1, Ordering::SeqCst);
                    })?;
                // `victim` may already have fired in this pass; either way it
                // never fires again.
                sched.remove("victim")?;
                sched.reschedule(ctx.id(), Schedule::every(Duration::from_secs(10)))?;
            }
            Ok::<(), Error>(())
        })
        .unwrap();

    clock.advance(Duration::from_secs(1));
    let r = s.run_pending();
    assert_eq!(r.failed, 0);
    assert_eq!(spawner_fired.load(Ordering::SeqCst), 1);
    assert_eq!(
        child_fired.load(Ordering::SeqCst),
        0,
        "registered during the pass: next pass"
    );
    let victim_before = victim_fired.load(Ordering::SeqCst);
    assert!(victim_before <= 1);
    assert!(s.info("victim").is_err());

    s.run_pending();
    assert_eq!(child_fired.load(Ordering::SeqCst), 1);
    // Rescheduled to every 10 s from the first fire: nothing at +2 s .. +10 s.
    for _ in 0..9 {
        clock.advance(Duration::from_secs(1));
        s.run_pending();
    }
    assert_eq!(spawner_fired.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(1));
    s.run_pending();
    assert_eq!(spawner_fired.load(Ordering::SeqCst), 2);
    assert_eq!(victim_fired.load(Ordering::SeqCst), victim_before);
    assert_eq!(
        child_fired.load(Ordering::SeqCst),
        1,
        "a one-shot fires once"
    );
}

#[test]
fn a_task_can_remove_itself() {
    let (s, clock) = manual();
    let fired = Arc::new(AtomicU32::new(0));
    let f = fired.clone();
    s.add(Schedule::every(Duration::from_secs(1)))
        .run_with_context(move |ctx| {
            if f.fetch_add(1, Ordering::SeqCst) == 2 {
                ctx.scheduler().remove(ctx.id())?;
            }
            Ok::<(), Error>(())
        })
        .unwrap();
    for _ in 0..10 {
        clock.advance(Duration::from_secs(1));
        s.run_pending();
    }
    assert_eq!(fired.load(Ordering::SeqCst), 3);
    assert!(s.is_empty());
}

#[test]
fn remove_racing_fire_never_fires_after_removed() {
    for round in 0..300 {
        let (s, clock) = manual();
        let started = Arc::new(AtomicU32::new(0));
        let st = started.clone();
        let id = s
            .add(Schedule::every(Duration::from_millis(1)))
            .run(move || {
                st.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let stop = Arc::new(AtomicBool::new(false));
        let firer = {
            let (s, clock, barrier, stop) =
                (s.clone(), clock.clone(), barrier.clone(), stop.clone());
            std::thread::spawn(move || {
                barrier.wait();
                while !stop.load(Ordering::Acquire) {
                    clock.advance(Duration::from_millis(1));
                    s.run_pending();
                }
            })
        };
        barrier.wait();
        for _ in 0..(round % 7) {
            std::thread::yield_now();
        }
        s.remove(id).unwrap();
        let at_remove = started.load(Ordering::SeqCst);
        stop.store(true, Ordering::Release);
        firer.join().unwrap();
        // At most the one run already in progress when remove returned.
        let after_join = started.load(Ordering::SeqCst);
        assert!(
            after_join <= at_remove + 1,
            "round {round}: {at_remove} -> {after_join}"
        );
        for _ in 0..5 {
            clock.advance(Duration::from_millis(1));
            s.run_pending();
        }
        assert_eq!(
            started.load(Ordering::SeqCst),
            after_join,
            "round {round}: fired after removal"
        );
        assert!(matches!(s.remove(id), Err(Error::NoSuchId(_))));
        assert!(s.is_empty());
    }
}

#[test]
fn panics_and_errors_are_counted_and_others_fire() {
    let (s, clock) = manual();
    let ok = Arc::new(AtomicU32::new(0));
    s.add(Schedule::every(Duration::from_secs(1)))
        .name("panics")
        .run(|| -> () { panic!("boom") })
        .unwrap();
    s.add(Schedule::every(Duration::from_secs(1)))
        .name("errs")
        .run(|| Err::<(), _>("bad input"))
        .unwrap();
    let o = ok.clone();
    s.add(Schedule::every(Duration::from_secs(1)))
        .name("fine")
        .run(move || {
            o.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    for pass in 1..=3u64 {
        clock.advance(Duration::from_secs(1));
        let r = s.run_pending();
        assert_eq!(
            (r.fired, r.succeeded, r.failed),
            (3, 1, 2),
            "pass {pass}: fired counts every started callback"
        );
        let st = s.stats();
        assert_eq!(
            (st.fired, st.succeeded, st.failed),
            (3 * pass, pass, 2 * pass)
        );
    }
    assert_eq!(ok.load(Ordering::SeqCst), 3);
    let panics = s.info("panics").unwrap();
    assert_eq!((panics.runs, panics.failures), (3, 3));
    assert_eq!(
        panics.state,
        TaskState::Scheduled,
        "a failing task stays scheduled"
    );
    assert_eq!(s.info("errs").unwrap().failures, 3);
    assert_eq!(s.info("fine").unwrap().failures, 0);
}

#[test]
fn bad_input_is_rejected_and_changes_nothing() {
    let (s, clock) = manual();
    let fired = Arc::new(AtomicU32::new(0));
    let f = fired.clone();
    s.add(Schedule::every(Duration::from_secs(1)))
        .name("job")
        .run(move || {
            f.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let before = s.tasks();

    let err = s.register_task("other", "61 * * * *", || ()).unwrap_err();
    assert!(matches!(err, Error::InvalidCron(_)), "{err}");
    let err = s
        .add(Schedule::every(Duration::from_secs(5)))
        .name("job")
        .run(|| ())
        .unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateName(n) if n == "job"),
        "{err}"
    );
    assert!(err.to_string().contains("`job`"));
    let err = s
        .add(Schedule::every(Duration::ZERO))
        .run(|| ())
        .unwrap_err();
    assert!(matches!(err, Error::ZeroInterval));
    let err = s
        .add(Schedule::every(Duration::from_secs(1)))
        .name("")
        .run(|| ())
        .unwrap_err();
    assert!(matches!(err, Error::EmptyName));
    assert!(matches!(s.remove("nope"), Err(Error::NoSuchName(n)) if n == "nope"));

    assert_eq!(s.tasks(), before);
    assert_eq!(s.len(), 1);
    clock.advance(Duration::from_secs(1));
    s.run_pending();
    assert_eq!(
        fired.load(Ordering::SeqCst),
        1,
        "the original `job` still fires"
    );
}

#[test]
fn replace_existing_takes_over_the_name() {
    let (s, clock) = manual();
    let which = Arc::new(AtomicU32::new(0));
    let w = which.clone();
    let old = s
        .add(Schedule::every(Duration::from_secs(1)))
        .name("job")
        .run(move || w.store(1, Ordering::SeqCst))
        .unwrap();
    let w = which.clone();
    let new = s
        .add(Schedule::every(Duration::from_secs(1)))
        .name("job")
        .replace_existing()
        .run(move || w.store(2, Ordering::SeqCst))
        .unwrap();
    assert_ne!(old, new);
    assert_eq!(s.len(), 1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(s.run_pending().fired, 1);
    assert_eq!(which.load(Ordering::SeqCst), 2);
    assert!(s.remove(old).is_err());
    assert_eq!(s.info("job").unwrap().id, new);
}

#[test]
fn pause_resume_reschedule_next_fire_and_listing() {
    let (s, clock) = manual();
    let fired = Arc::new(AtomicU32::new(0));
    let f = fired.clone();
    let id = s
        .add(Schedule::every(Duration::from_secs(10)))
        .name("job")
        .run(move || {
            f.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert_eq!(
        s.next_fire(id).unwrap(),
        Some(t0() + chrono::Duration::seconds(10))
    );
    s.pause("job").unwrap();
    assert_eq!(s.info(id).unwrap().state, TaskState::Paused);
    assert_eq!(s.next_fire(id).unwrap(), None);
    clock.advance(Duration::from_secs(35));
    assert_eq!(s.run_pending().fired, 0, "paused tasks do not fire");
    s.resume(id).unwrap();
    // Missed instants are skipped: next is the first grid instant after now.
    assert_eq!(
        s.next_fire(id).unwrap(),
        Some(t0() + chrono::Duration::seconds(40))
    );
    clock.advance(Duration::from_secs(5));
    assert_eq!(s.run_pending().fired, 1);
    s.reschedule("job", Schedule::every(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(
        s.next_fire(id).unwrap(),
        Some(t0() + chrono::Duration::seconds(41))
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(s.run_pending().fired, 1);
    let list = s.tasks();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name.as_deref(), Some("job"));
    assert_eq!(list[0].runs, 2);
    assert_eq!(list[0].schedule, "every 1s");
    assert_eq!(fired.load(Ordering::SeqCst), 2);
    s.remove(id).unwrap();
    assert!(s.tasks().is_empty());
    assert!(matches!(s.pause(id), Err(Error::NoSuchId(_))));
}

#[test]
fn anonymous_tasks_are_managed_by_id_before_and_after_draining() {
    let (s, clock) = manual();
    let fired = Arc::new(AtomicU32::new(0));
    let f = fired.clone();
    let id = s
        .add(Schedule::after(Duration::from_secs(5)))
        .run(move || {
            f.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    // Still in the intake queue: found all the same.
    assert_eq!(
        s.next_fire(id).unwrap(),
        Some(t0() + chrono::Duration::seconds(5))
    );
    s.reschedule(id, Schedule::after(Duration::from_secs(1)))
        .unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(s.run_pending().fired, 1);
    clock.advance(Duration::from_secs(10));
    assert_eq!(s.run_pending().fired, 0, "the original instant is gone");
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    assert!(s.is_empty());
}

#[test]
fn pool_dispatcher_fires_everything_once() {
    let clock = ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .dispatcher(Dispatcher::pool(2))
        .build();
    let counts: Arc<Vec<AtomicU32>> = Arc::new((0..5_000).map(|_| AtomicU32::new(0)).collect());
    for i in 0..5_000 {
        let c = counts.clone();
        s.add(Schedule::once(t0()))
            .run(move || {
                c[i].fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
    }
    let r = s.run_pending();
    assert_eq!(r.dispatched, 5_000);
    // Wait for the workers through the scheduler's own accounting.
    let runner = s.start().unwrap();
    runner.shutdown(Duration::from_secs(30)).unwrap();
    assert!(counts.iter().all(|c| c.load(Ordering::SeqCst) == 1));
    assert_eq!(s.stats().fired, 5_000);
}

#[test]
fn anonymous_one_shots_on_the_timeline_are_found_by_id_and_listed() {
    let (s, clock) = manual();
    let fired = Arc::new(AtomicU32::new(0));
    let mut ids = Vec::new();
    for k in 1..=3 {
        let f = fired.clone();
        ids.push(
            s.add(Schedule::after(Duration::from_secs(10 * k)))
                .run(move || {
                    f.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap(),
        );
    }
    assert_eq!(s.run_pending().fired, 0); // drained onto the timeline
    assert_eq!(s.tasks().len(), 3, "anonymous timeline tasks are listed");
    assert_eq!(
        s.next_fire(ids[0]).unwrap(),
        Some(t0() + chrono::Duration::seconds(10))
    );
    s.pause(ids[0]).unwrap();
    s.remove(ids[1]).unwrap();
    assert!(matches!(s.remove(ids[1]), Err(Error::NoSuchId(_))));
    clock.advance(Duration::from_secs(60));
    assert_eq!(s.run_pending().fired, 1, "only the third fires");
    // Paused past its instant, then resumed: a one-shot fires at once.
    assert_eq!(s.info(ids[0]).unwrap().state, TaskState::Paused);
    s.resume(ids[0]).unwrap();
    assert_eq!(s.run_pending().fired, 1);
    assert_eq!(fired.load(Ordering::SeqCst), 2);
    assert!(s.is_empty());
    assert!(s.tasks().is_empty());
}

/// `run_pending` fires everything registered before it (from any thread,
/// whichever intake shard it went to), while what its callbacks register
/// waits for the next call, even when the callbacks' shard is drained first.
#[test]
fn run_pending_takes_all_earlier_registrations_and_defers_callbacks_ones() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 600; // more than one drain batch in all
    let (s, _clock) = manual();
    let due = t0() - chrono::Duration::seconds(1);
    let early = Arc::new(AtomicUsize::new(0));
    let late = Arc::new(AtomicUsize::new(0));
    // The main thread registers first, so its shard is taken before the
    // spawned threads pick theirs (round-robin): most of them land after it.
    // A due task that counts its fire in `late`, registered by a callback.
    fn add_late(s: &Scheduler, due: chrono::DateTime<chrono::Utc>, late: &Arc<AtomicUsize>) {
        let late = late.clone();
        s.add(Schedule::once(due))
            .run(move || {
                late.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
    }
    let (s2, late2) = (s.clone(), late.clone());
    // When it fires, it registers one more due task from the firing (main)
    // thread, like every task below.
    s.add(Schedule::once(due))
        .run(move || add_late(&s2, due, &late2))
        .unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (s, early, late) = (s.clone(), early.clone(), late.clone());
            std::thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    let (s, early, late) = (s.clone(), early.clone(), late.clone());
                    s.clone()
                        .add(Schedule::once(due))
                        .run(move || {
                            early.fetch_add(1, Ordering::SeqCst);
                            add_late(&s, due, &late);
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let first = s.run_pending();
    assert_eq!(
        early.load(Ordering::SeqCst),
        THREADS * PER_THREAD,
        "every task registered before the call fires in it"
    );
    assert_eq!(first.fired as usize, THREADS * PER_THREAD + 1);
    assert_eq!(
        late.load(Ordering::SeqCst),
        0,
        "what callbacks register waits for the next call"
    );
    let second = s.run_pending();
    assert_eq!(second.fired as usize, THREADS * PER_THREAD + 1);
    assert_eq!(late.load(Ordering::SeqCst), THREADS * PER_THREAD + 1);
    assert!(s.is_empty());
}
