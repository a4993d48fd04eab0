//! Native stress versions of the loom models (`loom-tests/`, `docs/loom.md`):
//! the same scenarios on real threads, many iterations each, the racing
//! threads lined up on a `Barrier` every iteration. No sleeps: time is a
//! manual clock, and the runner scenarios wait on channels with a generous
//! bound (a failure, not a timing assertion).

use chrono::{DateTime, Utc};
use cronlane::{ManualClock, Schedule, Scheduler, TaskId};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

const ITERATIONS: usize = 2_000;
const RUNNER_ITERATIONS: usize = 200;
const SECOND: Duration = Duration::from_secs(1);
const PATIENCE: Duration = Duration::from_secs(20);

fn t0() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn manual() -> (Scheduler, ManualClock) {
    let clock = ManualClock::new(t0());
    (Scheduler::builder().clock(clock.clone()).build(), clock)
}

#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

impl Counter {
    fn inc(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn once_counting(s: &Scheduler, delay: Duration, n: &Counter) -> TaskId {
    let n = n.clone();
    s.add(Schedule::once(t0() + delay))
        .run(move || n.inc())
        .unwrap()
}

/// Runs `a` on a new thread and `b` on this one, released together.
fn race(a: impl FnOnce() + Send + 'static, b: impl FnOnce()) {
    let gate = Arc::new(Barrier::new(2));
    let g = gate.clone();
    let t = thread::spawn(move || {
        g.wait();
        a();
    });
    gate.wait();
    b();
    t.join().unwrap();
}

/// Model 1: two threads `run_pending` on the same due task: it fires once.
#[test]
fn m1_two_threads_fire_one_task_once() {
    for i in 0..ITERATIONS {
        let (s, clock) = manual();
        let n = Counter::default();
        once_counting(&s, SECOND, &n);
        s.run_pending();
        clock.advance(SECOND);
        let s2 = s.clone();
        race(
            move || {
                s2.run_pending();
            },
            || {
                s.run_pending();
            },
        );
        assert_eq!(n.get(), 1, "iteration {i}");
        assert!(s.is_empty(), "iteration {i}");
    }
}

/// Model 2: registrations concurrent with `run_pending` on two threads:
/// never lost, never twice.
#[test]
fn m2_registration_vs_run_pending() {
    for i in 0..ITERATIONS {
        let (s, _clock) = manual();
        let (a, b) = (Counter::default(), Counter::default());
        let gate = Arc::new(Barrier::new(3));
        let (s1, a1, g1) = (s.clone(), a.clone(), gate.clone());
        let registrar = thread::spawn(move || {
            g1.wait();
            once_counting(&s1, Duration::ZERO, &a1);
        });
        let (s2, g2) = (s.clone(), gate.clone());
        let runner = thread::spawn(move || {
            g2.wait();
            s2.run_pending();
        });
        gate.wait();
        once_counting(&s, Duration::ZERO, &b);
        s.run_pending();
        registrar.join().unwrap();
        runner.join().unwrap();
        s.run_pending();
        assert_eq!((a.get(), b.get()), (1, 1), "iteration {i}");
        assert!(s.is_empty(), "iteration {i}");
    }
}

/// Model 3: remove concurrent with a fire: fired once or removed unfired,
/// gone either way, and no fire after `remove` returned `Ok` (checked after
/// the race: a fire that started before `remove` may enter its callback
/// after `remove` returned, which is allowed).
#[test]
fn m3_remove_vs_fire() {
    for i in 0..ITERATIONS {
        let (s, clock) = manual();
        let n = Counter::default();
        let id = once_counting(&s, SECOND, &n);
        s.run_pending();
        clock.advance(SECOND);
        let s2 = s.clone();
        let mut ok = false;
        race(
            move || {
                s2.run_pending();
            },
            || ok = s.remove(id).is_ok(),
        );
        let fired = n.get();
        clock.advance(SECOND * 5);
        s.run_pending();
        assert_eq!(n.get(), fired, "iteration {i}: fired after remove");
        assert!(fired <= 1, "iteration {i}");
        assert!(ok || fired == 1, "iteration {i}");
        assert!(s.is_empty(), "iteration {i}");
    }
}

/// Model 4: a recurring task's reschedule concurrent with remove: it never
/// comes back.
#[test]
fn m4_reschedule_vs_remove() {
    for i in 0..ITERATIONS {
        let (s, clock) = manual();
        let n = Counter::default();
        let n1 = n.clone();
        let id = s
            .add(Schedule::every(SECOND).starting_at(t0() + SECOND))
            .run(move || n1.inc())
            .unwrap();
        s.run_pending();
        clock.advance(SECOND);
        let s2 = s.clone();
        race(
            move || {
                s2.run_pending();
            },
            || s.remove(id).unwrap(),
        );
        let fired = n.get();
        clock.advance(SECOND * 5);
        s.run_pending();
        assert_eq!(n.get(), fired, "iteration {i}: came back after remove");
        assert!(fired <= 1, "iteration {i}");
        assert!(s.is_empty(), "iteration {i}");
        assert!(s.info(id).is_err(), "iteration {i}");
    }
}

/// Model 5: a callback registers one task and removes another while a
/// second thread fires.
#[test]
fn m5_callback_registers_and_removes() {
    for i in 0..ITERATIONS {
        let (s, _clock) = manual();
        let (a, b, c) = (Counter::default(), Counter::default(), Counter::default());
        let removed_b = Arc::new(AtomicBool::new(false));
        let b1 = b.clone();
        let b_id = s
            .add(Schedule::every(SECOND * 3600))
            .run(move || b1.inc())
            .unwrap();
        let (a1, c1, removed_b1) = (a.clone(), c.clone(), removed_b.clone());
        s.add(Schedule::once(t0()))
            .run_with_context(move |ctx| {
                a1.inc();
                let s = ctx.scheduler();
                let c2 = c1.clone();
                s.add(Schedule::once(t0())).run(move || c2.inc()).unwrap();
                if s.remove(b_id).is_ok() {
                    removed_b1.store(true, Ordering::SeqCst);
                }
            })
            .unwrap();
        let s2 = s.clone();
        race(
            move || {
                s2.run_pending();
            },
            || {
                s.run_pending();
            },
        );
        s.run_pending();
        assert!(removed_b.load(Ordering::SeqCst), "iteration {i}");
        assert_eq!((a.get(), b.get(), c.get()), (1, 0, 1), "iteration {i}");
        assert!(s.is_empty(), "iteration {i}");
    }
}

/// Model 6a: the runner, parked on a task an hour away, is woken by a
/// registration due now, fires it, and shuts down.
#[test]
fn m6a_runner_wakes_for_a_sooner_task() {
    for i in 0..RUNNER_ITERATIONS {
        let (s, _clock) = manual();
        let far = Counter::default();
        once_counting(&s, SECOND * 3600, &far);
        let runner = s.start().unwrap();
        let (tx, rx) = mpsc::channel();
        let s1 = s.clone();
        race(
            move || {
                s1.add(Schedule::once(t0()))
                    .run(move || {
                        let _ = tx.send(());
                    })
                    .unwrap();
            },
            || {},
        );
        rx.recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("iteration {i}: the sooner task did not fire"));
        runner.shutdown(PATIENCE).unwrap();
        assert_eq!(far.get(), 0, "iteration {i}");
    }
}

/// Model 6b: shutdown concurrent with a wake-up: the runner exits and joins.
#[test]
fn m6b_shutdown_vs_wake() {
    for i in 0..RUNNER_ITERATIONS {
        let (s, _clock) = manual();
        let n = Counter::default();
        let runner = s.start().unwrap();
        let (s1, n1) = (s.clone(), n.clone());
        race(
            move || {
                once_counting(&s1, SECOND * 3600, &n1);
            },
            move || runner.shutdown(PATIENCE).unwrap(),
        );
        assert_eq!(n.get(), 0, "iteration {i}");
        assert_eq!(s.len(), 1, "iteration {i}");
    }
}

/// Model 7: a key's retirement (rotate to `{k2, k1}`, re-seal, check, rotate
/// to `{k2}`) concurrent with a fire that opens the task's payload.
#[test]
fn m7_key_retirement_vs_open() {
    use cronlane::{Key, KeyRing};
    let key = |id: u32| Key::from_bytes(id, [id as u8; 32]);
    for i in 0..ITERATIONS {
        let clock = ManualClock::new(t0());
        let s = Scheduler::builder()
            .clock(clock.clone())
            .keys(KeyRing::new(key(1)))
            .build();
        let opened = Counter::default();
        let opened1 = opened.clone();
        s.add(Schedule::every(SECOND).starting_at(t0() + SECOND))
            .payload(b"payload".to_vec())
            .run_with_context(move |ctx| {
                if ctx.payload() == Some(&b"payload"[..]) {
                    opened1.inc();
                }
            })
            .unwrap();
        s.run_pending();
        clock.advance(SECOND);
        let s2 = s.clone();
        race(
            move || {
                s2.run_pending();
            },
            || {
                s.rotate_keys(KeyRing::new(key(2)).with_previous(key(1)).unwrap());
                s.reseal_payloads().unwrap();
                if s.payloads_sealed_with(1) == 0 {
                    s.rotate_keys(KeyRing::new(key(2)));
                }
            },
        );
        assert_eq!(opened.get(), 1, "iteration {i}: the fire did not open");
    }
}
