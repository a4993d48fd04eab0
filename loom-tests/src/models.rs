//! The models of issue 4, one function each. Every model builds its own
//! scheduler on a [`ManualClock`] (loom objects must be created inside the
//! model), uses only the public API, and checks its guarantee by counting
//! fires per task.

use crate::thread;
use crate::{race, Counter, Flag, Notify};
use chrono::{DateTime, Utc};
use cronlane::{ManualClock, Schedule, Scheduler, TaskId};
use std::time::Duration;

/// The instant every model starts at.
pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default() // 2026-01-01T00:00:00Z
}

/// A scheduler (inline dispatch) on a manual clock reading [`t0`].
pub fn scheduler() -> (Scheduler, ManualClock) {
    let clock = ManualClock::new(t0());
    let s = Scheduler::builder().clock(clock.clone()).build();
    (s, clock)
}

const SECOND: Duration = Duration::from_secs(1);

/// Registers a one-shot at `t0 + delay` that counts its fires.
fn once_counting(s: &Scheduler, delay: Duration, n: &Counter) -> TaskId {
    let n = n.clone();
    s.add(Schedule::once(t0() + delay))
        .run(move || n.inc())
        .expect("register")
}

/// `run_pending` on a second thread and on this one at once.
fn two_threads_run_pending(s: &Scheduler) {
    let s2 = s.clone();
    race(
        move || {
            s2.run_pending();
        },
        || {
            s.run_pending();
        },
    );
}

/// Model 1: two threads call `run_pending` on the same due task (already on
/// the timeline): the callback runs exactly once.
pub fn two_threads_fire_one_task() {
    let (s, clock) = scheduler();
    let n = Counter::new();
    once_counting(&s, SECOND, &n);
    s.run_pending(); // not due yet: moves it from intake to the timeline
    clock.advance(SECOND);
    two_threads_run_pending(&s);
    assert_eq!(n.get(), 1, "a due task fired {} times", n.get());
    assert!(s.is_empty(), "a fired one-shot is still live");
}

/// Model 2: registration concurrent with `run_pending`. One thread
/// registers A (due now); another runs `run_pending`; the main thread
/// registers B (due now) and runs `run_pending` too. Each task is fired by
/// one of them or stays scheduled and is fired by a later `run_pending`:
/// never lost, never twice.
pub fn registration_vs_run_pending() {
    let (s, _clock) = scheduler();
    let (a, b) = (Counter::new(), Counter::new());
    let (s1, a1) = (s.clone(), a.clone());
    let registrar = thread::spawn(move || {
        once_counting(&s1, Duration::ZERO, &a1);
    });
    let s2 = s.clone();
    let runner = thread::spawn(move || {
        s2.run_pending();
    });
    once_counting(&s, Duration::ZERO, &b);
    s.run_pending();
    registrar.join().expect("join");
    runner.join().expect("join");
    s.run_pending();
    assert_eq!((a.get(), b.get()), (1, 1), "fires of (A, B)");
    assert!(s.is_empty(), "a fired one-shot is still live");
}

/// Model 3: `remove` concurrent with a fire of a one-shot on the timeline.
/// Either it fired once (and `remove` may fail, the task being done), or
/// `remove` won and it never fires; either way it is gone afterwards.
///
/// "Never fires after `remove` returned `Ok`" is checked by what happens
/// after both threads are done (no fire, nothing live), not by a flag read
/// in the callback: a fire that started before `remove` may enter its
/// callback after `remove` returned, which is allowed (the run was already
/// in progress), so such a flag would report false positives.
pub fn remove_vs_fire() {
    let (s, clock) = scheduler();
    let n = Counter::new();
    let id = once_counting(&s, SECOND, &n);
    s.run_pending(); // onto the timeline (and the id index)
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
    assert_eq!(n.get(), fired, "m3: fired after remove");
    assert!(fired <= 1, "m3: fired {fired} times");
    assert!(
        ok || fired == 1,
        "m3: remove failed, yet the task never fired"
    );
    // A fire that overwrote the removal would clean up a second time.
    assert!(s.is_empty(), "m3: the task is still live");
    assert!(s.info(id).is_err(), "m3: the task is still listed");
}

/// Model 4: a recurring task's reschedule (its fire's `finish` putting the
/// next entry on the timeline) concurrent with `remove`: once `remove` has
/// returned `Ok`, the task never comes back, however far time moves.
pub fn reschedule_vs_remove() {
    let (s, clock) = scheduler();
    let n = Counter::new();
    let n1 = n.clone();
    let id = s
        .add(Schedule::every(SECOND).starting_at(t0() + SECOND))
        .run(move || n1.inc())
        .expect("register");
    s.run_pending(); // onto the timeline
    clock.advance(SECOND);
    let s2 = s.clone();
    race(
        move || {
            s2.run_pending();
        },
        || {
            s.remove(id)
                .expect("a recurring task is removable until removed")
        },
    );
    let fired = n.get();
    clock.advance(SECOND * 5);
    s.run_pending();
    assert_eq!(n.get(), fired, "m4: the task came back after remove");
    assert!(fired <= 1, "m4: fired {fired} times at one instant");
    assert!(s.is_empty(), "m4: the removed task is still live");
    assert!(s.info(id).is_err(), "m4: the removed task is still listed");
}

/// Model 9 (run with timeline runs on): one-shots A (due at t0 + 1 s) and
/// B (t0 + 2 s) drained together into one run; at t0 + 1 s two threads run
/// `run_pending`. Whoever takes the run's view fires A and puts the rest (B)
/// back; the other finds nothing due. At t0 + 2 s B fires. Each fires once
/// and nothing is left on the timeline.
pub fn run_split_between_two_threads() {
    let (s, clock) = scheduler();
    let (a, b) = (Counter::new(), Counter::new());
    once_counting(&s, SECOND, &a);
    once_counting(&s, SECOND * 2, &b);
    s.run_pending(); // both onto the timeline, as one run
    clock.advance(SECOND);
    two_threads_run_pending(&s);
    assert_eq!(
        (a.get(), b.get()),
        (1, 0),
        "m9: fires of (A, B) at t0 + 1 s"
    );
    clock.advance(SECOND);
    s.run_pending();
    assert_eq!(
        (a.get(), b.get()),
        (1, 1),
        "m9: fires of (A, B) at t0 + 2 s"
    );
    assert!(s.is_empty(), "m9: a fired one-shot is still live");
    #[cfg(cronlane_loom)]
    assert_eq!(
        cronlane::__loom::timeline_len(&s),
        0,
        "m9: an entry was left on the timeline"
    );
}

/// Model 8: `remove`, which takes no manager guard, racing a `reschedule`
/// of the same one-shot (a manager putting a new entry on the timeline):
/// once `remove` has returned `Ok`, the task never fires, is not live, and
/// leaves no entry on the timeline (the rescheduler takes its own entry back
/// if it published it after the removal: `Task::removed_after_publish`).
pub fn remove_vs_reschedule() {
    remove_vs_reschedule_leaving_nothing("m8");
}

/// Model 10 (run with timeline runs on): model 8 for a task in a run.
/// `remove` finds it through the run lookup; whichever of the two moves the
/// task off the run also compacts the run (all of it is dead), so here too
/// nothing is left on the timeline.
pub fn remove_vs_reschedule_in_run() {
    remove_vs_reschedule_leaving_nothing("m10");
}

/// Model 11 (run with timeline runs on): one-shots A and B wait in one
/// run; one thread removes A, which compacts the run (half of it is dead:
/// B moves to a new run), while another removes B, looking it up by id
/// meanwhile. Both removals find their task; nothing is left live, on the
/// timeline, or fires later.
pub fn compaction_vs_lookup() {
    let (s, clock) = scheduler();
    let n = Counter::new();
    let a = once_counting(&s, SECOND, &n);
    let b = once_counting(&s, SECOND * 2, &n);
    s.run_pending(); // both onto the timeline, as one run
    let s2 = s.clone();
    let mut removed = (false, false);
    let found_a = Flag::new();
    let found_a1 = found_a.clone();
    race(
        move || {
            if s2.remove(a).is_ok() {
                found_a1.raise();
            }
        },
        || removed.1 = s.remove(b).is_ok(),
    );
    removed.0 = found_a.is_raised();
    assert_eq!(removed, (true, true), "m11: remove(A), remove(B) found");
    assert_gone_for_good("m11", &s, &clock, &n);
}

/// Model 12 (run with timeline runs on): one-shots A, B and C in one run;
/// at A's instant one thread runs `run_pending` (it fires A and puts B and
/// C back) while another removes C, which may compact what is left of the
/// run if it can take it. A fires once, B once at its instant, C never;
/// nothing is left.
pub fn compaction_vs_claim() {
    let (s, clock) = scheduler();
    let (a, b, c) = (Counter::new(), Counter::new(), Counter::new());
    once_counting(&s, SECOND, &a);
    once_counting(&s, SECOND * 2, &b);
    let c_id = once_counting(&s, SECOND * 3, &c);
    s.run_pending(); // onto the timeline, as one run
    clock.advance(SECOND);
    let s2 = s.clone();
    let mut removed = false;
    race(
        move || {
            s2.run_pending();
        },
        || removed = s.remove(c_id).is_ok(),
    );
    assert!(removed, "m12: remove(C) did not find it");
    assert_eq!(a.get(), 1, "m12: A fired {} times", a.get());
    clock.advance(SECOND * 4);
    s.run_pending();
    assert_eq!((b.get(), c.get()), (1, 0), "m12: fires of (B, C)");
    assert!(s.is_empty(), "m12: tasks left live");
    #[cfg(cronlane_loom)]
    assert_eq!(
        cronlane::__loom::timeline_len(&s),
        0,
        "m12: an entry was left on the timeline"
    );
}

/// After every task of a model was removed: nothing live, nothing left on
/// the timeline, and nothing fires however far time moves.
fn assert_gone_for_good(model: &str, s: &Scheduler, clock: &ManualClock, fires: &Counter) {
    assert!(s.is_empty(), "{model}: a removed task is still live");
    #[cfg(cronlane_loom)]
    assert_eq!(
        cronlane::__loom::timeline_len(s),
        0,
        "{model}: an entry was left on the timeline"
    );
    clock.advance(SECOND * 5);
    s.run_pending();
    assert_eq!(fires.get(), 0, "{model}: a removed task fired");
}

/// Models 8 and 10.
fn remove_vs_reschedule_leaving_nothing(model: &str) {
    let (s, clock) = scheduler();
    let n = Counter::new();
    let id = once_counting(&s, SECOND, &n);
    s.run_pending(); // onto the timeline (in a run for model 10)
    let s2 = s.clone();
    let mut removed = false;
    race(
        move || {
            // Fails if the removal got in first; either way is fine.
            let _ = s2.reschedule(id, Schedule::once(t0() + SECOND * 2));
        },
        // Checked after the join: a panic while the other loom thread
        // still runs aborts the process instead of failing the model.
        || removed = s.remove(id).is_ok(),
    );
    assert!(removed, "{model}: remove did not find the task");
    assert_gone_for_good(model, &s, &clock, &n);
    assert!(
        s.info(id).is_err(),
        "{model}: the removed task is still listed"
    );
}

/// Model 5: a callback that registers and removes tasks while another
/// thread fires. B (recurring, not due) and A (due now, whose callback
/// registers C due now and removes B) wait in intake; two threads run
/// `run_pending`. The callback's `remove(B)` succeeds even while the other
/// thread holds B between intake and index (the hand-over); A fires once, B
/// never, C exactly once by the end.
pub fn callback_registers_and_removes() {
    let (s, _clock) = scheduler();
    let (a, b, c) = (Counter::new(), Counter::new(), Counter::new());
    let removed_b = Flag::new();
    let b1 = b.clone();
    let b_id = s
        .add(Schedule::every(SECOND * 3600))
        .run(move || b1.inc())
        .expect("register B");
    let (a1, c1, removed_b1) = (a.clone(), c.clone(), removed_b.clone());
    s.add(Schedule::once(t0()))
        .run_with_context(move |ctx| {
            a1.inc();
            let s = ctx.scheduler();
            let c2 = c1.clone();
            s.add(Schedule::once(t0()))
                .run(move || c2.inc())
                .expect("register C from a callback");
            if s.remove(b_id).is_ok() {
                removed_b1.raise();
            }
        })
        .expect("register A");
    two_threads_run_pending(&s);
    s.run_pending();
    assert!(
        removed_b.is_raised(),
        "remove(B) from a callback missed a live task"
    );
    assert_eq!((a.get(), b.get(), c.get()), (1, 0, 1), "fires of (A, B, C)");
    assert!(s.is_empty(), "tasks left live");
}

/// Model 6a: the runner parks (its only task is an hour away) while another
/// thread registers a task due now: the registration wakes it and the task
/// fires without anyone calling `run_pending` (a lost wake-up leaves the
/// runner parked and the main thread waiting forever: loom reports the
/// deadlock). Then shutdown returns and joins the runner.
pub fn runner_wakes_for_sooner_task() {
    let (s, _clock) = scheduler();
    let (far, soon) = (Counter::new(), Counter::new());
    once_counting(&s, SECOND * 3600, &far);
    let runner = s.start().expect("start the runner");
    let fired = Notify::new();
    let (s1, soon1, fired1) = (s.clone(), soon.clone(), fired.clone());
    let registrar = thread::spawn(move || {
        s1.add(Schedule::once(t0()))
            .run(move || {
                soon1.inc();
                fired1.notify();
            })
            .expect("register");
    });
    fired.wait();
    runner
        .shutdown(Duration::from_secs(5))
        .expect("shutdown after the fire");
    registrar.join().expect("join");
    assert_eq!((far.get(), soon.get()), (0, 1), "fires of (far, soon)");
}

/// Model 6b: shutdown concurrent with a wake-up (a registration that lowers
/// the earliest hint): the runner exits and `shutdown` joins it.
pub fn shutdown_vs_wake() {
    let (s, _clock) = scheduler();
    let n = Counter::new();
    let runner = s.start().expect("start the runner");
    let (s1, n1) = (s.clone(), n.clone());
    let registrar = thread::spawn(move || {
        once_counting(&s1, SECOND * 3600, &n1);
    });
    // A branch point before shutdown, so that loom also runs the runner to
    // its park first (needed while `stop` was a std atomic; kept so the
    // model explores what it always did).
    let _ = s.len();
    runner
        .shutdown(Duration::from_secs(5))
        .expect("shutdown returns");
    registrar.join().expect("join");
    assert_eq!(n.get(), 0, "a task an hour away fired");
    assert_eq!(s.len(), 1, "the registered task is still live");
}

/// A key for the sealing models (fixed bytes: the models need no secrecy).
fn key(id: u32) -> cronlane::Key {
    cronlane::Key::from_bytes(id, [id as u8; 32])
}

/// A scheduler on a manual clock in production mode with key ring `{k1}`,
/// and a recurring task (due now) whose callback counts fires that saw its
/// payload intact.
fn sealed_scheduler(opened: &Counter) -> (Scheduler, TaskId) {
    let clock = ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .keys(cronlane::KeyRing::new(key(1)))
        .build();
    let opened1 = opened.clone();
    let id = s
        .add(Schedule::every(SECOND).starting_at(t0() + SECOND))
        .payload(b"payload".to_vec())
        .run_with_context(move |ctx| {
            if ctx.payload() == Some(&b"payload"[..]) {
                opened1.inc();
            }
        })
        .expect("register");
    s.run_pending(); // onto the timeline
    clock.advance(SECOND);
    (s, id)
}

/// Rotates to `{k2 current, k1 previous}` and re-seals every payload.
fn rotate_to_k2_and_reseal(s: &Scheduler) {
    let ring = cronlane::KeyRing::new(key(2))
        .with_previous(key(1))
        .expect("ring");
    s.rotate_keys(ring);
    s.reseal_payloads().expect("reseal");
}

/// Model 7a: key rotation (to a ring whose current key is new and that
/// still holds the old one) and `reseal_payloads`, concurrent with a fire
/// that opens the payload: the fire always opens it, and afterwards no
/// payload is left sealed with the old key.
pub fn rotation_vs_open() {
    let opened = Counter::new();
    let (s, _id) = sealed_scheduler(&opened);
    let s2 = s.clone();
    race(
        move || {
            s2.run_pending();
        },
        || rotate_to_k2_and_reseal(&s),
    );
    assert_eq!(opened.get(), 1, "m7: the fire did not open its payload");
    assert_eq!(
        s.payloads_sealed_with(1),
        0,
        "m7: a payload kept the old key"
    );
}

/// Model 7b: the documented retirement of a key (rotate to `{k2, k1}`,
/// `reseal_payloads`, check `payloads_sealed_with(k1) == 0`, rotate to
/// `{k2}`) concurrent with a fire: the fire still opens its payload.
pub fn retirement_vs_open() {
    let opened = Counter::new();
    let (s, _id) = sealed_scheduler(&opened);
    let s2 = s.clone();
    race(
        move || {
            s2.run_pending();
        },
        || {
            rotate_to_k2_and_reseal(&s);
            if s.payloads_sealed_with(1) == 0 {
                s.rotate_keys(cronlane::KeyRing::new(key(2)));
            }
        },
    );
    assert_eq!(opened.get(), 1, "m7: the fire did not open its payload");
}

/// Model 20: shutdown puts claimed fires back. One-shots A and B, both due,
/// are claimed by the runner in one batch; the first callback tells the
/// main thread, which shuts the runner down meanwhile. A fire the runner
/// claimed but had not started when `stop` was raised is released back to
/// the timeline, never dropped: after `shutdown`, one `run_pending` fires
/// what the runner did not, so each fires exactly once and nothing is left.
pub fn shutdown_puts_claimed_fires_back() {
    let (s, _clock) = scheduler();
    let (a, b) = (Counter::new(), Counter::new());
    let started = Notify::new();
    for n in [&a, &b] {
        let (n, started) = (n.clone(), started.clone());
        s.add(Schedule::once(t0()))
            .run(move || {
                n.inc();
                started.notify();
            })
            .expect("register");
    }
    let runner = s.start().expect("start the runner");
    started.wait();
    runner
        .shutdown(Duration::from_secs(5))
        .expect("shutdown returns");
    s.run_pending();
    assert_eq!(
        (a.get(), b.get()),
        (1, 1),
        "m20: fires of (A, B) after shutdown and run_pending"
    );
    assert!(s.is_empty(), "m20: a one-shot is still live");
    #[cfg(cronlane_loom)]
    assert_eq!(
        cronlane::__loom::timeline_len(&s),
        0,
        "m20: an entry was left on the timeline"
    );
}

/// Model 21 (run with timeline runs on): a compaction that lowers the
/// earliest hint wakes the runner. One-shots B (t0 + 1 s) and A (t0 + 2 s)
/// wait in one run; the runner starts while neither is due and parks (B is
/// a second away). The main thread moves the clock to B's instant (which
/// tells nobody) and removes A, which compacts the run (half of it is dead)
/// and republishes B: that lowers the hint, and the remover must wake the
/// runner, or B never fires (loom reports the main thread's wait as a
/// deadlock). A runner that had not parked yet finds B due by itself.
pub fn compaction_wakes_the_runner() {
    // Loom may report the deadlock on this thread (see `KeepOnPanic`).
    let (s, clock) = scheduler();
    let clock = crate::KeepOnPanic::new(clock);
    let (a, b) = (Counter::new(), Counter::new());
    let fired = crate::KeepOnPanic::new(Notify::new());
    let (b1, fired1) = (b.clone(), fired.clone());
    s.add(Schedule::once(t0() + SECOND))
        .run(move || {
            b1.inc();
            fired1.notify();
        })
        .expect("register B");
    let a_id = once_counting(&s, SECOND * 2, &a);
    s.run_pending(); // both onto the timeline, as one run
    let runner = s.start().expect("start the runner");
    clock.advance(SECOND);
    let removed = s.remove(a_id).is_ok();
    fired.wait();
    runner
        .shutdown(Duration::from_secs(5))
        .expect("shutdown after the fire");
    assert!(removed, "m21: remove(A) did not find it");
    // A view the runner held while A was removed stays (stale) until the
    // clock passes A's instant: move it there.
    clock.advance(SECOND * 5);
    s.run_pending();
    assert_eq!((a.get(), b.get()), (0, 1), "m21: fires of (A, B)");
    assert!(s.is_empty(), "m21: a task is still live");
    #[cfg(cronlane_loom)]
    assert_eq!(
        cronlane::__loom::timeline_len(&s),
        0,
        "m21: an entry was left on the timeline"
    );
}

/// Model 22: `Overlap::Allow { max: 1 }` with two threads firing. A
/// recurring task (every second from t0 + 1 s) puts its next fire on the
/// timeline before its callback runs; the callback of the t0 + 1 s fire
/// moves the clock to t0 + 2 s, so the other thread's `run_pending` may
/// take the next fire while the first callback still runs. Never more than
/// one callback of the task at once; each instant runs once or is skipped
/// and counted (never lost, never twice), and the task goes on: t0 + 3 s
/// fires once.
pub fn overlap_allow_max() {
    let (s, clock) = scheduler();
    let inside = crate::Gauge::new();
    let runs: std::sync::Arc<std::sync::Mutex<Vec<DateTime<Utc>>>> = Default::default();
    let (inside1, runs1, clock1) = (inside.clone(), runs.clone(), clock.clone());
    let id = s
        .add(Schedule::every(SECOND).starting_at(t0() + SECOND))
        .overlap(cronlane::Overlap::Allow { max: Some(1) })
        .run_with_context(move |ctx| {
            inside1.enter();
            if ctx.scheduled() == t0() + SECOND {
                clock1.set(t0() + SECOND * 2);
            }
            runs1
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(ctx.scheduled());
            inside1.leave();
        })
        .expect("register");
    s.run_pending(); // onto the timeline
    clock.advance(SECOND);
    two_threads_run_pending(&s);
    s.run_pending(); // t0 + 2 s, if neither thread took it
    let at = |k: u32| t0() + SECOND * k;
    let count = |k: u32| {
        runs.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|&&t| t == at(k))
            .count()
    };
    assert!(
        inside.most() <= 1,
        "m22: {} callbacks of the task ran at once (max 1)",
        inside.most()
    );
    let skips = s.task_stats(id).expect("stats").skips;
    assert_eq!(
        (count(1), count(2) + skips as usize),
        (1, 1),
        "m22: runs at t0 + 1 s, runs and skips at t0 + 2 s"
    );
    assert_eq!(
        s.next_fire(id).expect("live"),
        Some(at(3)),
        "m22: the next fire"
    );
    clock.set(at(3));
    s.run_pending();
    assert_eq!(count(3), 1, "m22: runs at t0 + 3 s");
}

/// The scheduled instants a task fired for, in seconds after [`t0`], in
/// the order its callback ran. Observation only (a std mutex, which loom
/// does not see): read after the joins, like [`Counter`].
#[derive(Clone, Default)]
struct Instants(std::sync::Arc<std::sync::Mutex<Vec<i64>>>);

impl Instants {
    fn new() -> Self {
        Self::default()
    }
    fn push(&self, at: DateTime<Utc>) {
        let secs = (at - t0()).num_seconds();
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(secs);
    }
    fn get(&self) -> Vec<i64> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// A recurring task every second from `t0 + 1 s` that logs the instant of
/// each fire, moved onto the timeline (and into the id index); the clock
/// is then moved to `t0 + 1 s`, so its first fire is due.
fn every_second_logging(s: &Scheduler, clock: &ManualClock, log: &Instants) -> TaskId {
    let log = log.clone();
    let id = s
        .add(Schedule::every(SECOND).starting_at(t0() + SECOND))
        .run_with_context(move |ctx| log.push(ctx.scheduled()))
        .expect("register");
    s.run_pending(); // onto the timeline
    clock.advance(SECOND);
    id
}

/// Moves the clock on by one second and runs what is due, `steps` times.
fn step_seconds(s: &Scheduler, clock: &ManualClock, steps: usize) {
    for _ in 0..steps {
        clock.advance(SECOND);
        s.run_pending();
    }
}

/// The fires of the race itself: the instant due during it (`t0 + 1 s`)
/// at most once; what follows it in `fires` is returned.
fn after_the_race(model: &str, fires: &[i64]) -> Vec<i64> {
    let during = fires.iter().take_while(|&&at| at == 1).count();
    assert!(
        during <= 1,
        "{model}: t0 + 1 s fired {during} times: {fires:?}"
    );
    fires[during..].to_vec()
}

/// Model 13: `pause` racing a fire of a recurring task (another thread in
/// `run_pending` at its instant). Once `pause` has returned, no fire
/// starts: moving time on fires nothing, and nothing waits on the
/// timeline. `resume` brings it back: it then fires once per instant of
/// its plan, none lost, none twice.
pub fn pause_vs_fire() {
    let (s, clock) = scheduler();
    let log = Instants::new();
    let id = every_second_logging(&s, &clock, &log);
    let s2 = s.clone();
    let mut paused = false;
    race(
        move || {
            s2.run_pending();
        },
        || paused = s.pause(id).is_ok(),
    );
    assert!(paused, "m13: pause did not find the task");
    let raced = log.get();
    step_seconds(&s, &clock, 1); // t0 + 2 s, paused
    assert_eq!(log.get(), raced, "m13: fired while paused");
    #[cfg(cronlane_loom)]
    assert_eq!(
        cronlane::__loom::timeline_len(&s),
        0,
        "m13: a paused task has an entry on the timeline"
    );
    s.resume(id).expect("resume");
    step_seconds(&s, &clock, 2); // t0 + 3 s and t0 + 4 s
    let fires = log.get();
    assert_eq!(
        after_the_race("m13", &fires),
        [3, 4],
        "m13: fires after resume: {fires:?}"
    );
    assert_eq!(s.len(), 1, "m13: live tasks");
}

/// Model 14: `reschedule` (from every second on the `t0 + 1 s` grid to
/// every 2 s from now, first at `t0 + 3 s`) racing a fire at `t0 + 1 s`.
/// Whichever wins, the task fires each instant at most once and in order,
/// and after the race exactly the new plan's instants (`t0 + 3 s`,
/// `t0 + 5 s`): none of the old plan's, none lost; then one entry waits
/// on the timeline. (Right after the race a stale entry may wait there
/// too: a manager finds the entry to unlink through the task's slot key,
/// which is best effort.)
pub fn reschedule_vs_fire() {
    let (s, clock) = scheduler();
    let log = Instants::new();
    let id = every_second_logging(&s, &clock, &log);
    let s2 = s.clone();
    let mut rescheduled = false;
    race(
        move || {
            s2.run_pending();
        },
        || rescheduled = s.reschedule(id, Schedule::every(SECOND * 2)).is_ok(),
    );
    assert!(rescheduled, "m14: reschedule did not find the task");
    step_seconds(&s, &clock, 4); // t0 + 2 s .. t0 + 5 s
    let fires = log.get();
    assert!(
        fires.windows(2).all(|w| w[0] < w[1]),
        "m14: an instant twice or out of order: {fires:?}"
    );
    assert_eq!(
        after_the_race("m14", &fires),
        [3, 5],
        "m14: fires after reschedule: {fires:?}"
    );
    assert_eq!(s.len(), 1, "m14: live tasks");
    #[cfg(cronlane_loom)]
    assert_eq!(
        cronlane::__loom::timeline_len(&s),
        1,
        "m14: entries on the timeline at the end"
    );
}

/// Model 15: one thread pauses a recurring task, reschedules it (every
/// second from now: first at `t0 + 2 s`) and resumes it, while another
/// runs `run_pending` at its instant. The task is never lost: it fires at
/// `t0 + 2 s` and `t0 + 3 s`, once each, and then has one entry on the
/// timeline.
pub fn pause_reschedule_resume_vs_fire() {
    let (s, clock) = scheduler();
    let log = Instants::new();
    let id = every_second_logging(&s, &clock, &log);
    let s2 = s.clone();
    let mut managed = Ok(());
    race(
        move || {
            s2.run_pending();
        },
        || {
            managed = s
                .pause(id)
                .and_then(|()| s.reschedule(id, Schedule::every(SECOND)))
                .and_then(|()| s.resume(id));
        },
    );
    assert!(managed.is_ok(), "m15: {managed:?}");
    step_seconds(&s, &clock, 2); // t0 + 2 s and t0 + 3 s
    let fires = log.get();
    assert_eq!(
        after_the_race("m15", &fires),
        [2, 3],
        "m15: fires after resume: {fires:?}"
    );
    assert_eq!(s.len(), 1, "m15: live tasks");
    #[cfg(cronlane_loom)]
    assert_eq!(
        cronlane::__loom::timeline_len(&s),
        1,
        "m15: entries on the timeline at the end"
    );
}

/// Registers a task named `x` every second from `t0 + 1 s`, counting its
/// fires, replacing whoever holds the name if `replace`.
fn named_x(s: &Scheduler, replace: bool, n: &Counter) -> Result<TaskId, cronlane::Error> {
    let n = n.clone();
    let b = s
        .add(Schedule::every(SECOND).starting_at(t0() + SECOND))
        .name("x");
    let b = if replace { b.replace_existing() } else { b };
    b.run(move || n.inc())
}

/// Model 16: task O holds the name `x`; two threads each register a task
/// named `x` with `.replace_existing()` (P and Q). Both succeed; afterwards
/// exactly one live task is left, it holds the name, and only it fires:
/// the displaced ones (O and one of P, Q) never fire again, and once the
/// holder is removed by name nothing fires.
pub fn two_replacers_of_one_name() {
    let (s, clock) = scheduler();
    let (o, p, q) = (Counter::new(), Counter::new(), Counter::new());
    named_x(&s, false, &o).expect("register O");
    s.run_pending(); // O onto the timeline
    let (s2, p1) = (s.clone(), p.clone());
    let replaced_p = Flag::new();
    let replaced_p1 = replaced_p.clone();
    let mut replaced_q = false;
    race(
        move || {
            if named_x(&s2, true, &p1).is_ok() {
                replaced_p1.raise();
            }
        },
        || replaced_q = named_x(&s, true, &q).is_ok(),
    );
    let replaced = (replaced_p.is_raised(), replaced_q);
    assert_eq!(replaced, (true, true), "m16: replacements (P, Q) succeeded");
    assert_eq!(s.len(), 1, "m16: live tasks after two replacements");
    let holder = s.info("x").expect("m16: nobody holds the name").id;
    step_seconds(&s, &clock, 1); // t0 + 1 s
    let fires = (o.get(), p.get(), q.get());
    assert!(
        fires == (0, 1, 0) || fires == (0, 0, 1),
        "m16: fires of (O, P, Q): {fires:?}"
    );
    s.remove("x").expect("m16: remove the holder by name");
    assert!(s.info(holder).is_err(), "m16: the holder is still listed");
    step_seconds(&s, &clock, 1); // t0 + 2 s
    assert_eq!(
        (o.get(), p.get(), q.get()),
        fires,
        "m16: a displaced task fired after the holder was removed"
    );
    assert!(s.is_empty(), "m16: tasks left live");
}

/// Model 17: task O holds the name `x`; one thread removes `x` by name
/// while another registers a new task N named `x` (no replacement). The
/// removal always finds O; N is registered only if it found O removed.
/// Never two live tasks; the name leads to the live task (N, or nobody);
/// `len()` agrees with the listing; only N fires, if registered.
pub fn register_vs_remove_of_one_name() {
    let (s, clock) = scheduler();
    let (o, n) = (Counter::new(), Counter::new());
    named_x(&s, false, &o).expect("register O");
    s.run_pending(); // O onto the timeline
    let s2 = s.clone();
    let removed = Flag::new();
    let removed1 = removed.clone();
    let mut registered = None;
    race(
        move || {
            if s2.remove("x").is_ok() {
                removed1.raise();
            }
        },
        || registered = named_x(&s, false, &n).ok(),
    );
    assert!(removed.is_raised(), "m17: remove(\"x\") did not find O");
    let live = usize::from(registered.is_some());
    assert_eq!(
        s.len(),
        live,
        "m17: live tasks (N registered: {registered:?})"
    );
    assert_eq!(s.tasks().len(), live, "m17: tasks listed");
    assert_eq!(
        s.info("x").ok().map(|i| i.id),
        registered,
        "m17: the task the name leads to"
    );
    step_seconds(&s, &clock, 1); // t0 + 1 s
    assert_eq!((o.get(), n.get()), (0, live), "m17: fires of (O, N)");
}

/// Model 18: a plain anonymous one-shot waits in intake while one thread
/// runs `run_pending` (which drains it onto the timeline: it is not due)
/// and another removes it by id. The lookup, however it meets the drain,
/// finds the task (`settle` waits for the hand-over until the drainer has
/// published what it popped), so `remove` succeeds, and the task never
/// fires.
pub fn plain_handover_vs_remove() {
    let (s, clock) = scheduler();
    let n = Counter::new();
    let id = once_counting(&s, SECOND, &n);
    let s2 = s.clone();
    let mut removed = false;
    race(
        move || {
            s2.run_pending();
        },
        || removed = s.remove(id).is_ok(),
    );
    assert!(removed, "m18: remove missed a task in the hand-over");
    assert_gone_for_good("m18", &s, &clock, &n);
}
/// Model 19 (issue 12, item 9): a `run_pending` fires every task that was
/// due when it began, even while another thread's removal compacts the run
/// the task is in (the compactor holds the run's view off the timeline
/// while it rebuilds it). A (due) and C (not due) in one run; one thread
/// runs `run_pending` while the other removes C, which compacts the run
/// (half of it is dead): A is fired by that `run_pending`, not left for a
/// later one.
pub fn run_pending_vs_compaction() {
    let (s, clock) = scheduler();
    let (a, c) = (Counter::new(), Counter::new());
    once_counting(&s, SECOND, &a);
    let c_id = once_counting(&s, SECOND * 3, &c);
    s.run_pending(); // onto the timeline, as one run
    clock.advance(SECOND);
    let s2 = s.clone();
    let mut removed = false;
    race(
        move || {
            s2.run_pending();
        },
        || removed = s.remove(c_id).is_ok(),
    );
    assert!(removed, "m19: remove(C) did not find it");
    assert_eq!(
        a.get(),
        1,
        "m19: A, due when run_pending began, was not fired by it"
    );
    clock.advance(SECOND * 4);
    s.run_pending();
    assert_eq!((a.get(), c.get()), (1, 0), "m19: fires of (A, C)");
    assert!(s.is_empty(), "m19: tasks left live");
}

/// Model 23: `reschedule` of a recurring task to a one-shot (at `t0 + 3 s`)
/// racing its fire at `t0 + 1 s`. The fire never completes the task on the
/// one-shot's "no next instant" (the new plan is stored only after the
/// state word says so): `reschedule` finds the task, it fires at `t0 + 3 s`,
/// once, and is then done.
pub fn reschedule_to_one_shot_vs_fire() {
    let (s, clock) = scheduler();
    let log = Instants::new();
    let id = every_second_logging(&s, &clock, &log);
    let s2 = s.clone();
    let mut rescheduled = false;
    race(
        move || {
            s2.run_pending();
        },
        || rescheduled = s.reschedule(id, Schedule::once(t0() + SECOND * 3)).is_ok(),
    );
    assert!(rescheduled, "m23: reschedule did not find the task");
    step_seconds(&s, &clock, 3); // t0 + 2 s .. t0 + 4 s
    let fires = log.get();
    assert_eq!(
        after_the_race("m23", &fires),
        [3],
        "m23: fires after the reschedule: {fires:?}"
    );
    assert!(s.is_empty(), "m23: the one-shot is still live");
}

/// Model 24 (run with timeline runs on): recurring tasks A and B (every
/// second) are due; one thread's `run_pending` fires them and puts both
/// back as one *group* (one timeline entry for the batch), while another
/// thread removes A. A fires at most once and never after the removal
/// returned, B once per instant, and A's closure is released once the
/// removal and the pass are done: a removal that came while the group was
/// being built (its slot named a group not published yet) is caught by the
/// group's `recheck`, which compacts A out.
pub fn group_put_back_vs_remove() {
    let (s, clock) = scheduler();
    let (a, b) = (Counter::new(), Counter::new());
    let token = std::sync::Arc::new(());
    let (a1, t1) = (a.clone(), token.clone());
    let a_id = s
        .add(Schedule::every(SECOND))
        .run(move || {
            let _hold = &t1;
            a1.inc();
        })
        .expect("register");
    let b1 = b.clone();
    s.add(Schedule::every(SECOND))
        .run(move || b1.inc())
        .expect("register");
    s.run_pending(); // both onto the timeline
    clock.advance(SECOND);
    let s2 = s.clone();
    let mut removed = false;
    race(
        move || {
            s2.run_pending();
        },
        || removed = s.remove(a_id).is_ok(),
    );
    assert!(removed, "m24: remove(A) did not find it");
    let fired_a = a.get();
    assert!(fired_a <= 1, "m24: A fired {fired_a} times");
    assert_eq!(b.get(), 1, "m24: B fired {} times at t0 + 1 s", b.get());
    // Under loom the maps free what they drop at once (crossbeam's epoch
    // collector frees later, so the count is only exact under loom).
    #[cfg(cronlane_loom)]
    assert_eq!(
        std::sync::Arc::strong_count(&token),
        1,
        "m24: the removed task A is still held on the timeline"
    );
    clock.advance(SECOND);
    s.run_pending();
    assert_eq!(
        (a.get(), b.get()),
        (fired_a, 2),
        "m24: fires of (A, B) at t0 + 2 s"
    );
    assert_eq!(s.len(), 1, "m24: live tasks");
}
