//! The store seam's up-calls and hooks, on an in-memory store: a fire the
//! backend runs with `StoreLink::run_now` follows the task's overlap
//! policy, and the runner tells the store when it starts and before it
//! stops.

use cronlane::store::{FireClaim, FireDone, Op, RunNow, Store, StoreError, StoreLink, TaskRecord};
use cronlane::{ManualClock, Overlap, Schedule, Scheduler};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// Keeps nothing, wins every claim with fence 7, keeps the link and the
/// runner calls.
#[derive(Clone, Default)]
struct Memory {
    link: Arc<Mutex<Option<StoreLink>>>,
    runner: Arc<Mutex<Vec<bool>>>,
}

impl Store for Memory {
    fn loaded(&self) -> Vec<TaskRecord> {
        Vec::new()
    }
    fn write(&self, _ops: Vec<Op>) -> Result<(), StoreError> {
        Ok(())
    }
    fn claim(&self, fires: &mut [FireClaim]) -> Result<(), StoreError> {
        for f in fires {
            f.fence = 7;
        }
        Ok(())
    }
    fn complete(&self, _fires: &[FireDone]) -> Result<(), StoreError> {
        Ok(())
    }
    fn attach(&self, link: StoreLink) {
        *self.link.lock().unwrap() = Some(link);
    }
    fn runner(&self, running: bool) {
        self.runner.lock().unwrap().push(running);
    }
}

const T0: i64 = 1_800_000_000_000_000_000;

/// While a pass runs the task's callback (held on a channel), a
/// `run_now` of the same task returns what `expect` says.
fn run_now_during_a_run(overlap: Overlap, expect: RunNow) {
    let clock = ManualClock::new(chrono::DateTime::from_timestamp_nanos(T0));
    let store = Memory::default();
    let s = Scheduler::builder()
        .clock(clock.clone())
        .test_mode(true)
        .store(store.clone())
        .build();
    let (started, is_started) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let calls = Arc::new(Mutex::new(0u32));
    let c = calls.clone();
    s.handler("h", move |_ctx| {
        let first = {
            let mut n = c.lock().unwrap();
            *n += 1;
            *n == 1
        };
        if first {
            started.send(()).unwrap();
            released
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10))
                .unwrap();
        }
    })
    .unwrap();
    s.add(Schedule::every(Duration::from_secs(60)))
        .name("t")
        .overlap(overlap)
        .durable("h")
        .register()
        .unwrap();
    clock.advance(Duration::from_secs(60));
    let pass = {
        let s = s.clone();
        std::thread::spawn(move || s.run_pending())
    };
    is_started.recv_timeout(Duration::from_secs(10)).unwrap();
    let link = store.link.lock().unwrap().clone().unwrap();
    let at = T0 + 60_000_000_000;
    assert_eq!(link.run_now("t", at, 9), Some(expect));
    release.send(()).unwrap();
    pass.join().unwrap();
    // Nothing runs any more: a run_now runs.
    assert_eq!(link.run_now("t", at, 9), Some(RunNow::Succeeded));
    let ran = *calls.lock().unwrap();
    let expected = if expect == RunNow::Skipped { 2 } else { 3 };
    assert_eq!(ran, expected, "callbacks run");
}

#[test]
fn run_now_is_skipped_while_a_run_goes_on_under_overlap_skip() {
    run_now_during_a_run(Overlap::Skip, RunNow::Skipped);
}

#[test]
fn run_now_is_skipped_under_overlap_queue_too() {
    run_now_during_a_run(Overlap::Queue, RunNow::Skipped);
}

#[test]
fn run_now_respects_allow_max() {
    run_now_during_a_run(Overlap::Allow { max: Some(1) }, RunNow::Skipped);
}

#[test]
fn run_now_overlaps_under_allow_without_max() {
    run_now_during_a_run(Overlap::Allow { max: None }, RunNow::Succeeded);
}

#[test]
fn the_store_is_told_when_the_runner_starts_and_before_it_stops() {
    let store = Memory::default();
    let s = Scheduler::builder().store(store.clone()).build();
    let r = s.start().unwrap();
    assert_eq!(*store.runner.lock().unwrap(), vec![true]);
    r.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(*store.runner.lock().unwrap(), vec![true, false]);
    // A second shutdown path: the graceful one, and a stopper.
    let r = s.start().unwrap();
    let _ = r.shutdown_graceful(Duration::from_secs(5));
    assert_eq!(
        *store.runner.lock().unwrap(),
        vec![true, false, true, false]
    );
}
