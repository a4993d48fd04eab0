//! Dispatchers: re-entrant `run_pending` from callbacks running on a pool.
//!
//! A scenario that could deadlock runs on its own thread; the test waits for
//! it on a channel with a generous bound (a deadlock detector, not a timing
//! assertion) and fails instead of hanging.

use chrono::{DateTime, Utc};
use cronlane::{Dispatcher, ManualClock, Schedule, Scheduler};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

/// How long a scenario may take before the test calls it a deadlock.
const DEADLOCK: Duration = Duration::from_secs(60);

fn t0() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

/// A scheduler on a manual clock reading [`t0`] with `dispatcher`.
fn scheduler(dispatcher: Dispatcher) -> Scheduler {
    Scheduler::builder()
        .clock(ManualClock::new(t0()))
        .dispatcher(dispatcher)
        .build()
}

/// Runs `scenario` on its own thread and fails the test if it has not
/// finished within [`DEADLOCK`].
fn finishes(what: &str, scenario: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        scenario();
        let _ = tx.send(());
    });
    if rx.recv_timeout(DEADLOCK).is_err() {
        panic!("{what}: not finished after {DEADLOCK:?} (deadlock)");
    }
}

/// `reentrant` tasks due now, each of whose callbacks waits until all of
/// them are running (one per worker), registers `each` tasks due now and
/// calls `ctx.scheduler().run_pending()`. Returns once every one of those
/// tasks has fired, counted through a channel.
fn reentrant_fires(threads: usize, reentrant: usize, each: usize) {
    let s = scheduler(Dispatcher::pool(threads));
    let total = reentrant * each;
    let fired = Arc::new(AtomicUsize::new(0));
    let (all_tx, all_rx) = mpsc::sync_channel(1);
    let together = Arc::new(Barrier::new(reentrant));
    for _ in 0..reentrant {
        let (fired, all_tx, together) = (fired.clone(), all_tx.clone(), together.clone());
        s.add(Schedule::once(t0()))
            .run_with_context(move |ctx| {
                together.wait();
                let s = ctx.scheduler();
                for _ in 0..each {
                    let (fired, all_tx) = (fired.clone(), all_tx.clone());
                    s.add(Schedule::once(t0()))
                        .run(move || {
                            if fired.fetch_add(1, Ordering::SeqCst) + 1 == total {
                                let _ = all_tx.send(());
                            }
                        })
                        .expect("register from a callback");
                }
                s.run_pending();
            })
            .expect("register");
    }
    let report = s.run_pending();
    assert_eq!(
        report.dispatched as usize, reentrant,
        "the re-entrant tasks"
    );
    all_rx
        .recv_timeout(DEADLOCK)
        .expect("not every task registered by the callbacks fired");
    assert_eq!(fired.load(Ordering::SeqCst), total, "fires");
}

/// One worker (queue of 256): its callback's `run_pending` dispatches 1,000
/// fires to the pool it runs on. Before the fix the worker blocked in the
/// queue's `send` once 256 waited, with nobody left to drain it.
#[test]
fn reentrant_run_pending_on_a_one_worker_pool_does_not_deadlock() {
    finishes("pool(1)", || reentrant_fires(1, 1, 1_000));
}

/// Two workers (queue of 512), both inside a callback that calls
/// `run_pending` with 600 fires each to dispatch: neither may wait for the
/// other to drain the queue.
#[test]
fn reentrant_run_pending_on_every_worker_of_a_pool_does_not_deadlock() {
    finishes("pool(2)", || reentrant_fires(2, 2, 600));
}
