//! Async jobs on tokio: completion reported back (stats, overlap policies),
//! cancellation on remove and on shutdown, the ordered shutdown and its
//! report, and no runtime worker ever blocked. Time moves by hand (a manual
//! clock); runs wait on semaphores and channels, never on sleeps.
#![cfg(feature = "tokio")]

mod common;

use common::{manual, t0, SECOND};
use cronlane::{Error, Overlap, Schedule, Scheduler, ShutdownReport};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// Generous bound for anything that should happen at once.
const PATIENCE: Duration = Duration::from_secs(20);

/// Waits (yielding, never sleeping) until `done` holds; panics after
/// [`PATIENCE`].
async fn until(what: &str, done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::task::yield_now().await;
    }
}

/// Waits until `n` fires completed (succeeded or failed) by `stats()`.
async fn fired(s: &Scheduler, n: u64) {
    until(&format!("{n} completed fires"), || s.stats().fired >= n).await;
}

// --- basics, on both runtime flavours ---------------------------------------

async fn fires_and_completes() {
    let (s, clock) = manual();
    let runs = Arc::new(AtomicU64::new(0));
    let r = runs.clone();
    let id = s
        .add(Schedule::every(SECOND))
        .name("tick")
        .run_async(move |ctx| {
            let r = r.clone();
            async move {
                assert_eq!(ctx.name(), Some("tick"));
                tokio::task::yield_now().await;
                r.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    for i in 1..=3 {
        clock.advance(SECOND);
        let report = s.run_pending();
        assert_eq!(report.dispatched, 1, "{report:?}");
        fired(&s, i).await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    let st = s.task_stats(id).unwrap();
    assert_eq!((st.runs, st.failures), (3, 0));
    assert_eq!(s.stats().succeeded, 3);
    // The next entry went back on completion.
    assert_eq!(s.next_fire(id).unwrap(), Some(t0() + SECOND * 4));
}

#[tokio::test(flavor = "current_thread")]
async fn fires_and_completes_current_thread() {
    fires_and_completes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fires_and_completes_multi_thread() {
    fires_and_completes().await;
}

/// Many one-shots, each run exactly once (counted per task id).
async fn exactly_once(n: usize) {
    let (s, clock) = manual();
    let seen: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    for i in 0..n {
        let seen = seen.clone();
        let at = t0() + Duration::from_millis(i as u64 % 7);
        s.add(Schedule::once(at))
            .run_async(move |ctx| {
                let seen = seen.clone();
                async move {
                    tokio::task::yield_now().await;
                    *seen.lock().unwrap().entry(ctx.id().as_u64()).or_default() += 1;
                }
            })
            .unwrap();
    }
    clock.advance(SECOND);
    let report = s.run_pending();
    assert_eq!(report.dispatched, n as u64);
    fired(&s, n as u64).await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), n);
    assert!(seen.values().all(|&c| c == 1));
    assert!(s.is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn exactly_once_current_thread() {
    exactly_once(2_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_multi_thread() {
    exactly_once(5_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_panics_are_counted() {
    let (s, clock) = manual();
    let failing = s
        .add(Schedule::once(t0()))
        .run_async(|_| async { Err::<(), _>("disk full") })
        .unwrap();
    let panicking = s
        .add(Schedule::once(t0()))
        .run_async(|_| async {
            tokio::task::yield_now().await;
            if true {
                panic!("boom");
            }
        })
        .unwrap();
    let panicking_early = s
        .add(Schedule::every(SECOND))
        .run_async(|_| -> std::future::Ready<()> { panic!("before the future") })
        .unwrap();
    let _ = (failing, panicking);
    clock.advance(SECOND);
    s.run_pending();
    fired(&s, 3).await;
    let st = s.stats();
    assert_eq!((st.succeeded, st.failed), (0, 3));
    let early = s.task_stats(panicking_early).unwrap();
    assert_eq!(early.failures, 1);
    assert_eq!(early.last_error.as_deref(), Some("before the future"));
    // A recurring task goes on after a panic.
    assert!(s.next_fire(panicking_early).unwrap().is_some());
}

#[tokio::test]
async fn context_carries_the_fire() {
    let (s, clock) = manual();
    let (tx, mut rx) = mpsc::unbounded_channel();
    s.add(Schedule::once(t0() + SECOND))
        .name("with-payload")
        .payload(b"secret".to_vec())
        .run_async(move |ctx| {
            let tx = tx.clone();
            async move {
                let inner = ctx.scheduler();
                tx.send((
                    ctx.payload().map(<[u8]>::to_vec),
                    ctx.scheduled(),
                    ctx.started(),
                    ctx.is_cancelled(),
                    inner.len(),
                ))
                .unwrap();
            }
        })
        .unwrap();
    clock.advance(SECOND * 2);
    s.run_pending();
    let (payload, scheduled, started, cancelled, live) = rx.recv().await.unwrap();
    assert_eq!(payload.as_deref(), Some(&b"secret"[..]));
    assert_eq!(scheduled, t0() + SECOND);
    assert_eq!(started, t0() + SECOND * 2);
    assert!(!cancelled);
    assert_eq!(live, 1, "the one-shot is live until its run ends");
    fired(&s, 1).await;
    assert!(s.is_empty());
    // Lag is measured from the due instant to the run's first poll.
    assert_eq!(s.stats().lag.max, SECOND);
}

#[test]
fn no_runtime_is_a_typed_error() {
    let (s, _clock) = manual();
    let err = s
        .add(Schedule::every(SECOND))
        .run_async(|_| async {})
        .unwrap_err();
    assert!(matches!(err, Error::NoRuntime), "{err}");
    assert!(s.is_empty());
}

#[test]
fn a_handle_given_to_the_builder_is_used_outside_the_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let clock = cronlane::ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .tokio_handle(rt.handle().clone())
        .build();
    let (tx, rx) = std::sync::mpsc::channel();
    s.add(Schedule::once(t0()))
        .run_async(move |_| {
            let tx = tx.clone();
            async move {
                tx.send(std::thread::current().name().map(str::to_owned))
                    .unwrap()
            }
        })
        .unwrap();
    assert_eq!(s.run_pending().dispatched, 1);
    let thread = rx.recv_timeout(PATIENCE).unwrap();
    assert_ne!(thread.as_deref(), Some("main"));
}

// --- overlap policies, with slow runs held on a semaphore -------------------

/// A recurring task every second whose runs each wait for a permit of
/// `gate` and count themselves in `running`/`peak`.
fn slow_task(
    s: &Scheduler,
    overlap: Overlap,
    gate: &Arc<Semaphore>,
) -> (cronlane::TaskId, Arc<AtomicU64>) {
    let peak = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicU64::new(0));
    let (g, p) = (gate.clone(), peak.clone());
    let id = s
        .add(Schedule::every(SECOND))
        .overlap(overlap)
        .run_async(move |_| {
            let (g, p, running) = (g.clone(), p.clone(), running.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                g.acquire().await.unwrap().forget();
                running.fetch_sub(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    (id, peak)
}

async fn overlap_skip() {
    let (s, clock) = manual();
    let gate = Arc::new(Semaphore::new(0));
    let (id, peak) = slow_task(&s, Overlap::Skip, &gate);
    clock.advance(SECOND);
    assert_eq!(s.run_pending().dispatched, 1);
    // Two more instants come due while the run waits: no entry is on the
    // timeline until it completes.
    for _ in 0..2 {
        clock.advance(SECOND);
        assert_eq!(s.run_pending().dispatched, 0);
    }
    gate.add_permits(1);
    fired(&s, 1).await;
    // Skip: the instants due during the run (t0+2 s, t0+3 s) are skipped,
    // the next fire is the first after the completion.
    let st = s.task_stats(id).unwrap();
    assert_eq!((st.runs, st.skips), (1, 2));
    assert_eq!(s.next_fire(id).unwrap(), Some(t0() + SECOND * 4));
    assert_eq!(peak.load(Ordering::SeqCst), 1);
}

async fn overlap_queue() {
    let (s, clock) = manual();
    let gate = Arc::new(Semaphore::new(0));
    let (id, peak) = slow_task(&s, Overlap::Queue, &gate);
    clock.advance(SECOND);
    assert_eq!(s.run_pending().dispatched, 1);
    clock.advance(SECOND * 2);
    assert_eq!(s.run_pending().dispatched, 0);
    gate.add_permits(1);
    fired(&s, 1).await;
    // Queue: the latest instant due during the run (t0+3 s) runs next, the
    // earlier one (t0+2 s) is skipped.
    let st = s.task_stats(id).unwrap();
    assert_eq!((st.runs, st.skips), (1, 1));
    assert_eq!(s.next_fire(id).unwrap(), Some(t0() + SECOND * 3));
    gate.add_permits(1);
    assert_eq!(s.run_pending().dispatched, 1);
    fired(&s, 2).await;
    assert_eq!(peak.load(Ordering::SeqCst), 1);
}

async fn overlap_allow() {
    let (s, clock) = manual();
    let gate = Arc::new(Semaphore::new(0));
    let (id, peak) = slow_task(&s, Overlap::Allow { max: Some(2) }, &gate);
    // Three instants in a row while no run finishes: the third is over
    // the limit.
    let mut dispatched = 0;
    for _ in 0..3 {
        clock.advance(SECOND);
        dispatched += s.run_pending().dispatched;
    }
    assert_eq!(dispatched, 2);
    let st = s.task_stats(id).unwrap();
    assert_eq!(st.skips, 1);
    // Both runs really run at once (each counts itself before the gate).
    until("two runs at once", || peak.load(Ordering::SeqCst) == 2).await;
    gate.add_permits(2);
    fired(&s, 2).await;
    // With the count back at 0, the next instant runs again.
    clock.advance(SECOND);
    gate.add_permits(1);
    assert_eq!(s.run_pending().dispatched, 1);
    fired(&s, 3).await;
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn overlap_policies_current_thread() {
    overlap_skip().await;
    overlap_queue().await;
    overlap_allow().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_policies_multi_thread() {
    overlap_skip().await;
    overlap_queue().await;
    overlap_allow().await;
}

// --- cancellation ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_task_cancels_its_runs() {
    let (s, clock) = manual();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let id = s
        .add(Schedule::every(SECOND))
        .overlap(Overlap::Allow { max: None })
        .run_async(move |ctx| {
            let started_tx = started_tx.clone();
            async move {
                started_tx.send(()).unwrap();
                ctx.cancelled().await;
                assert!(ctx.is_cancelled());
                Err::<(), _>("cancelled")
            }
        })
        .unwrap();
    let other_cancelled = Arc::new(AtomicBool::new(false));
    let o = other_cancelled.clone();
    let gate = Arc::new(Semaphore::new(0));
    let g = gate.clone();
    s.add(Schedule::every(SECOND))
        .run_async(move |ctx| {
            let (o, g) = (o.clone(), g.clone());
            async move {
                g.acquire().await.unwrap().forget();
                o.store(ctx.is_cancelled(), Ordering::SeqCst);
            }
        })
        .unwrap();
    for _ in 0..2 {
        clock.advance(SECOND);
        s.run_pending();
    }
    // Two runs of the first task wait on their signals, one of the second.
    for _ in 0..2 {
        started.recv().await.unwrap();
    }
    assert_eq!(s.stats().fired, 0);
    s.remove(id).unwrap();
    fired(&s, 2).await;
    assert_eq!(s.stats().failed, 2);
    // The other task's run was not cancelled.
    gate.add_permits(1);
    fired(&s, 3).await;
    assert!(!other_cancelled.load(Ordering::SeqCst));
}

/// A one-shot per run, each waiting on a gate; with `obey`, a run also
/// returns when cancelled.
fn gated_one_shots(s: &Scheduler, n: usize, gate: &Arc<Semaphore>, obey: bool) -> Gated {
    let gated = Gated::default();
    for _ in 0..n {
        let (g, c, st) = (gate.clone(), gated.cancelled.clone(), gated.started.clone());
        s.add(Schedule::once(t0()))
            .run_async(move |ctx| {
                let (g, c, st) = (g.clone(), c.clone(), st.clone());
                async move {
                    st.fetch_add(1, Ordering::SeqCst);
                    if obey {
                        tokio::select! {
                            p = g.acquire() => p.unwrap().forget(),
                            _ = ctx.cancelled() => { c.fetch_add(1, Ordering::SeqCst); }
                        }
                    } else {
                        g.acquire().await.unwrap().forget();
                    }
                }
            })
            .unwrap();
    }
    gated
}

/// Counters of [`gated_one_shots`]' runs.
#[derive(Default)]
struct Gated {
    /// Runs that saw their cancellation signal.
    cancelled: Arc<AtomicU64>,
    /// Runs whose future started: handed out, not merely claimed (a
    /// claimed fire not yet handed out is handed back by a stop).
    started: Arc<AtomicU64>,
}

impl Gated {
    async fn all_started(&self, n: u64) {
        until(&format!("{n} runs started"), || {
            self.started.load(Ordering::SeqCst) >= n
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_runs_finish_then_cancels_the_rest() {
    let (s, _clock) = manual();
    let gate = Arc::new(Semaphore::new(0));
    let gated = gated_one_shots(&s, 10, &gate, true);
    let runner = s.start().unwrap();
    gated.all_started(10).await;
    // Four finish (some of them within the grace period, some perhaps
    // before the runner stopped); six are cancelled after it.
    let g = gate.clone();
    tokio::spawn(async move { g.add_permits(4) });
    let report = runner.shutdown_async(Duration::from_millis(300)).await;
    assert!((6..=10).contains(&report.running), "{report:?}");
    assert_eq!(report.handed_back, 0);
    assert_eq!(report.finished, report.running - 6, "{report:?}");
    assert_eq!(report.cancelled, 6, "{report:?}");
    assert_eq!(report.unfinished, 0, "{report:?}");
    assert!(report.is_clean());
    assert_eq!(gated.cancelled.load(Ordering::SeqCst), 6);
    assert_eq!(s.stats().fired, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_ignores_cancellation_is_reported_and_still_completes() {
    let (s, _clock) = manual();
    let gate = Arc::new(Semaphore::new(0));
    let gated = gated_one_shots(&s, 3, &gate, false);
    let runner = s.start().unwrap();
    gated.all_started(3).await;
    // The runner thread is stopped first: until it has exited the report
    // counts it as running too (it could be inside an inline callback),
    // and on a loaded machine it may take longer than the 50 ms grace to
    // be scheduled (this test failed 1 run in 3 under load 6 that way).
    runner.stopper().stop();
    until("the runner thread stopped", || runner.is_stopped()).await;
    let report = runner.shutdown_async(Duration::from_millis(50)).await;
    assert_eq!(
        (report.running, report.cancelled, report.unfinished),
        (3, 3, 3),
        "{report:?}"
    );
    assert!(!report.is_clean());
    // They go on, and are completed and counted when they return.
    gate.add_permits(3);
    fired(&s, 3).await;
    assert!(s.is_empty());
}

// --- shutdown under load -----------------------------------------------------

/// The runner stops in the middle of a batch (a sync callback stops it):
/// every fire of that batch is either run or handed back, and the handed
/// back ones all run at the next `run_pending`. Counted per task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_loses_nothing() {
    const N: usize = 800;
    let (s, clock) = manual();
    let runs: Arc<Vec<AtomicU64>> = Arc::new((0..=N).map(|_| AtomicU64::new(0)).collect());
    let stopper: Arc<Mutex<Option<cronlane::Stopper>>> = Arc::default();
    let st = stopper.clone();
    let (r, at) = (runs.clone(), t0() + SECOND);
    // First in the batch (the earliest instant): stops the runner from
    // inside the pass.
    s.add(Schedule::once(at - Duration::from_millis(1)))
        .run(move || {
            r[0].fetch_add(1, Ordering::SeqCst);
            if let Some(s) = st.lock().unwrap().as_ref() {
                s.stop();
            }
        })
        .unwrap();
    for i in 1..=N {
        let r = runs.clone();
        s.add(Schedule::once(at))
            .run_async(move |_| {
                let r = r.clone();
                async move {
                    tokio::task::yield_now().await;
                    r[i].fetch_add(1, Ordering::SeqCst);
                }
            })
            .unwrap();
    }
    let runner = s.start().unwrap();
    *stopper.lock().unwrap() = Some(runner.stopper());
    clock.advance(SECOND);
    let runner = tokio::task::spawn_blocking(move || {
        runner.wait();
        runner
    })
    .await
    .unwrap();
    let report: ShutdownReport = runner.shutdown_async(PATIENCE).await;
    assert!(report.is_clean(), "{report:?}");
    let ran = runs
        .iter()
        .filter(|c| c.load(Ordering::SeqCst) == 1)
        .count() as u64;
    assert!(runs.iter().all(|c| c.load(Ordering::SeqCst) <= 1));
    assert_eq!(ran, s.stats().fired);
    // Nothing lost: what did not run was handed back and is still live.
    assert!(report.handed_back >= 1, "{report:?}");
    assert_eq!(ran + report.handed_back, N as u64 + 1, "{report:?}");
    assert_eq!(s.len() as u64, report.handed_back);
    // ... and runs once at the next pass.
    s.run_pending();
    fired(&s, N as u64 + 1).await;
    assert!(runs.iter().all(|c| c.load(Ordering::SeqCst) == 1));
    assert!(s.is_empty());
}

#[test]
fn wait_returns_once_a_stopper_stops_the_runner() {
    let (s, _clock) = manual();
    let runner = s.start().unwrap();
    let stopper = runner.stopper();
    assert!(!runner.is_stopped());
    let t = std::thread::spawn(move || stopper.stop());
    runner.wait();
    t.join().unwrap();
    assert!(runner.is_stopped());
    let report = runner.shutdown_graceful(Duration::from_secs(1));
    assert_eq!(report, ShutdownReport::default());
    // The registration was given back: a new runner starts.
    s.start().unwrap().shutdown(Duration::from_secs(1)).unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn run_until_shuts_down_when_told() {
    let (s, _clock) = manual();
    let gate = Arc::new(Semaphore::new(0));
    let gated = gated_one_shots(&s, 2, &gate, true);
    let runner = s.start().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serve =
        // The grace bounds both waits of the shutdown (the runner thread's
        // exit, then the cancelled runs on this one runtime thread): 20 ms
        // was too short on a loaded machine (1 run in 12 under load 4).
        tokio::spawn(runner.run_until(async { rx.await.unwrap() }, Duration::from_secs(1)));
    gated.all_started(2).await;
    tx.send(()).unwrap();
    let report = serve.await.unwrap();
    assert_eq!(
        (report.running, report.cancelled, report.unfinished),
        (2, 2, 0),
        "{report:?}"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "current_thread")]
async fn sigterm_shuts_down_in_order() {
    let (s, _clock) = manual();
    let runner = s.start().unwrap();
    let serve = tokio::spawn(runner.run_until_signal_async(Duration::from_secs(1)));
    // On a current-thread runtime, yielding lets the spawned task run up
    // to its first await: its signal handlers are installed by then.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let report = serve.await.unwrap().unwrap();
    assert!(report.is_clean());
}

#[tokio::test]
async fn the_blocking_signal_helper_refuses_a_runtime_thread() {
    let (s, _clock) = manual();
    let runner = s.start().unwrap();
    let err = runner
        .run_until_signal(Duration::from_millis(10))
        .unwrap_err();
    assert!(matches!(err, Error::Signal(_)), "{err}");
}

// --- no runtime worker blocked -----------------------------------------------

/// On a current-thread runtime, a ticker task must keep making progress
/// while async runs wait on it and a sync callback blocks: the sync
/// callback waits for the ticker, which could never run if the callback
/// held the runtime's only thread.
#[tokio::test(flavor = "current_thread")]
async fn no_runtime_worker_is_blocked() {
    let clock = cronlane::ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .tokio_handle(tokio::runtime::Handle::current())
        .build();
    let ticks = Arc::new(AtomicU64::new(0));
    let (tick_tx, tick_rx) = std::sync::mpsc::channel::<u64>();
    let tick_rx = Arc::new(Mutex::new(tick_rx));
    let main_thread = std::thread::current().id();
    let sync_thread = Arc::new(Mutex::new(None));
    let st = sync_thread.clone();
    // A sync callback that blocks until the ticker has ticked.
    s.add(Schedule::once(t0()))
        .run(move || {
            *st.lock().unwrap() = Some(std::thread::current().id());
            let got = tick_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10));
            assert!(
                got.is_ok(),
                "the ticker never ticked: a runtime thread was blocked"
            );
        })
        .unwrap();
    // Async runs that wait for the ticker too.
    for _ in 0..50 {
        let t = ticks.clone();
        s.add(Schedule::once(t0()))
            .run_async(move |_| {
                let t = t.clone();
                async move {
                    let seen = t.load(Ordering::SeqCst);
                    while t.load(Ordering::SeqCst) < seen + 3 {
                        tokio::task::yield_now().await;
                    }
                }
            })
            .unwrap();
    }
    let t = ticks.clone();
    let ticker = tokio::spawn(async move {
        for i in 0.. {
            t.fetch_add(1, Ordering::SeqCst);
            if i == 10 {
                let _ = tick_tx.send(i);
            }
            tokio::task::yield_now().await;
        }
    });
    // Called on the runtime's only thread: the sync fire goes to the
    // blocking pool, the async ones are spawned.
    let report = s.run_pending();
    assert_eq!((report.fired, report.dispatched), (0, 51), "{report:?}");
    fired(&s, 51).await;
    assert_eq!(s.stats().failed, 0);
    assert_ne!(sync_thread.lock().unwrap().unwrap(), main_thread);
    ticker.abort();
}

/// The runner thread is not a runtime thread: sync callbacks run on it
/// inline, async runs go to the runtime.
#[tokio::test(flavor = "current_thread")]
async fn the_runner_runs_sync_callbacks_off_the_runtime() {
    let (s, _clock) = manual();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tx2 = tx.clone();
    s.add(Schedule::once(t0()))
        .run(move || {
            tx.send(("sync", std::thread::current().name().map(str::to_owned)))
                .unwrap()
        })
        .unwrap();
    s.add(Schedule::once(t0()))
        .run_async(move |_| {
            let tx = tx2.clone();
            async move {
                tx.send(("async", std::thread::current().name().map(str::to_owned)))
                    .unwrap()
            }
        })
        .unwrap();
    let runner = s.start().unwrap();
    let mut got = HashMap::new();
    for _ in 0..2 {
        let (kind, thread) = rx.recv().await.unwrap();
        got.insert(kind, thread);
    }
    assert_eq!(got["sync"].as_deref(), Some("cronlane-runner"));
    assert_eq!(
        got["async"],
        std::thread::current().name().map(str::to_owned)
    );
    let report = runner.shutdown_async(PATIENCE).await;
    assert!(report.is_clean());
}

// --- listener and replacement ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_hears_async_runs_on_completion() {
    let clock = cronlane::ManualClock::new(t0());
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let e = events.clone();
    let s = Scheduler::builder()
        .clock(clock.clone())
        .listener(move |ev: &cronlane::Event<'_>| {
            let kind = match &ev.kind {
                cronlane::EventKind::Started { .. } => "started".to_owned(),
                cronlane::EventKind::Succeeded => "succeeded".to_owned(),
                cronlane::EventKind::Failed { message, panicked } => {
                    format!("failed({message},{panicked})")
                }
                other => format!("{other:?}"),
            };
            e.lock()
                .unwrap()
                .push(format!("{}:{kind}", ev.name.unwrap_or("")));
        })
        .build();
    let gate = Arc::new(Semaphore::new(0));
    let g = gate.clone();
    s.add(Schedule::once(t0()))
        .name("ok")
        .run_async(move |_| {
            let g = g.clone();
            async move { g.acquire().await.unwrap().forget() }
        })
        .unwrap();
    s.add(Schedule::once(t0()))
        .name("bad")
        .run_async(|_| async { Err::<(), _>("nope") })
        .unwrap();
    s.run_pending();
    fired(&s, 1).await;
    // The gated run has started but not succeeded: events follow completion.
    until("ok started", || {
        events.lock().unwrap().iter().any(|e| e == "ok:started")
    })
    .await;
    assert!(!events.lock().unwrap().iter().any(|e| e == "ok:succeeded"));
    gate.add_permits(1);
    fired(&s, 2).await;
    let mut got = events.lock().unwrap().clone();
    got.sort();
    assert_eq!(
        got,
        [
            "bad:failed(nope,false)",
            "bad:started",
            "ok:started",
            "ok:succeeded"
        ]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn replacing_a_task_cancels_the_old_runs() {
    let (s, clock) = manual();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tx2 = tx.clone();
    s.add(Schedule::every(SECOND))
        .name("job")
        .run_async(move |ctx| {
            let tx = tx.clone();
            async move {
                ctx.cancelled().await;
                tx.send("old cancelled").unwrap();
            }
        })
        .unwrap();
    clock.advance(SECOND);
    assert_eq!(s.run_pending().dispatched, 1);
    s.add(Schedule::every(SECOND))
        .name("job")
        .replace_existing()
        .run_async(move |_| {
            let tx = tx2.clone();
            async move { tx.send("new ran").unwrap() }
        })
        .unwrap();
    assert_eq!(rx.recv().await, Some("old cancelled"));
    clock.advance(SECOND);
    s.run_pending();
    assert_eq!(rx.recv().await, Some("new ran"));
}

// --- a runtime that goes away -------------------------------------------------

/// Runs dropped by their runtime are completed by the engine: a run that
/// had started as failed, one never polled as skipped. Nothing is left
/// running or live.
#[test]
fn runs_dropped_with_their_runtime_are_completed() {
    // Started, then the runtime shuts down under it.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let clock = cronlane::ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .tokio_handle(rt.handle().clone())
        .build();
    let (tx, rx) = std::sync::mpsc::channel();
    s.add(Schedule::once(t0()))
        .run_async(move |_| {
            let tx = tx.clone();
            async move {
                tx.send(()).unwrap();
                std::future::pending::<()>().await;
            }
        })
        .unwrap();
    assert_eq!(s.run_pending().dispatched, 1);
    rx.recv_timeout(PATIENCE).unwrap();
    drop(rt);
    let st = s.stats();
    assert_eq!((st.fired, st.failed), (1, 1), "{st:?}");
    assert!(s.is_empty());

    // Spawned on a runtime that never polls it, then dropped.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let s = Scheduler::builder()
        .clock(clock)
        .tokio_handle(rt.handle().clone())
        .build();
    s.add(Schedule::every(SECOND))
        .run_async(|_| async {})
        .unwrap();
    s.add(Schedule::once(t0())).run_async(|_| async {}).unwrap();
    let _ = s.run_pending();
    drop(rt);
    let st = s.stats();
    assert_eq!((st.fired, st.skipped), (0, 1), "{st:?}");
    assert_eq!(s.len(), 1, "the recurring task goes on");
}

// --- the runner as a task on the runtime (start_on_runtime) ------------------

/// N one-shots fired by a runner task: each runs exactly once, and the
/// ordered shutdown finds nothing left.
async fn runner_task_fires_exactly_once(n: usize) {
    let (s, clock) = manual();
    let runs: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    for i in 0..n {
        let r = runs.clone();
        s.add(Schedule::once(t0() + SECOND))
            .run_async(move |_| {
                let r = r.clone();
                async move {
                    tokio::task::yield_now().await;
                    r[i].fetch_add(1, Ordering::SeqCst);
                }
            })
            .unwrap();
    }
    let runner = s.start_on_runtime().unwrap();
    assert!(matches!(
        s.start_on_runtime(),
        Err(Error::RunnerAlreadyStarted)
    ));
    assert!(matches!(s.start(), Err(Error::RunnerAlreadyStarted)));
    clock.advance(SECOND);
    fired(&s, n as u64).await;
    let report = runner.shutdown_async(PATIENCE).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.handed_back, 0, "{report:?}");
    assert!(runs.iter().all(|c| c.load(Ordering::SeqCst) == 1));
    assert_eq!(s.stats().fired, n as u64);
    assert!(s.is_empty());
    // The registration was given back: a runner starts again.
    s.start_on_runtime().unwrap().shutdown_async(PATIENCE).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_runner_task_fires_exactly_once_current_thread() {
    runner_task_fires_exactly_once(3000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_task_fires_exactly_once_multi_thread() {
    runner_task_fires_exactly_once(3000).await;
}

/// On a current-thread runtime, the runner task yields while a fire is
/// about due (the manual clock stands still inside its spin window), and
/// a sync callback it fires goes to the blocking pool: a ticker task keeps
/// making progress throughout, and the sync callback, which waits for the
/// ticker, sees it tick.
#[tokio::test(flavor = "current_thread")]
async fn a_runner_task_blocks_no_runtime_thread() {
    let clock = cronlane::ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .tokio_handle(tokio::runtime::Handle::current())
        .build();
    let soon = t0() + Duration::from_micros(500);
    assert!(Duration::from_micros(500) < cronlane::RUNTIME_SPIN_WINDOW);
    let ticks = Arc::new(AtomicU64::new(0));
    let main_thread = std::thread::current().id();
    let sync_thread = Arc::new(Mutex::new(None));
    let (st, t) = (sync_thread.clone(), ticks.clone());
    s.add(Schedule::once(soon))
        .run(move || {
            *st.lock().unwrap() = Some(std::thread::current().id());
            let seen = t.load(Ordering::SeqCst);
            let start = std::time::Instant::now();
            while t.load(Ordering::SeqCst) < seen + 10 {
                assert!(start.elapsed() < PATIENCE, "a runtime thread was blocked");
                std::thread::yield_now();
            }
        })
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    s.add(Schedule::once(soon))
        .run_async(move |_| {
            let d = d.clone();
            async move { d.store(true, Ordering::SeqCst) }
        })
        .unwrap();
    let t = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            t.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
        }
    });
    let runner = s.start_on_runtime().unwrap();
    // The runner spins on this thread (nothing due yet, the clock stands
    // still): the ticker must still run.
    let before = ticks.load(Ordering::SeqCst);
    until("the ticker ticking beside the spinning runner", || {
        ticks.load(Ordering::SeqCst) >= before + 1000
    })
    .await;
    assert_eq!(s.stats().fired, 0);
    clock.advance(Duration::from_millis(1));
    fired(&s, 2).await;
    assert!(done.load(Ordering::SeqCst));
    assert_eq!(s.stats().failed, 0);
    assert_ne!(sync_thread.lock().unwrap().unwrap(), main_thread);
    let report = runner.shutdown_async(PATIENCE).await;
    assert!(report.is_clean(), "{report:?}");
    ticker.abort();
}

/// The ordered shutdown with a runner task: as with the thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_task_shuts_down_in_order() {
    let (s, _clock) = manual();
    let gate = Arc::new(Semaphore::new(0));
    let gated = gated_one_shots(&s, 10, &gate, true);
    let runner = s.start_on_runtime().unwrap();
    gated.all_started(10).await;
    let g = gate.clone();
    tokio::spawn(async move { g.add_permits(4) });
    let report = runner.shutdown_async(Duration::from_millis(300)).await;
    // Some of the four may finish before the runner stopped.
    assert!((6..=10).contains(&report.running), "{report:?}");
    assert_eq!(report.handed_back, 0);
    assert_eq!(report.finished, report.running - 6, "{report:?}");
    assert_eq!(report.cancelled, 6, "{report:?}");
    assert_eq!(report.unfinished, 0, "{report:?}");
    assert_eq!(gated.cancelled.load(Ordering::SeqCst), 6);
    assert_eq!(s.stats().fired, 10);
}

/// A stopper stops a runner task; the blocking wait (off the runtime)
/// returns, and a handle dropped on a runtime thread stops its runner
/// without waiting there.
#[tokio::test(flavor = "current_thread")]
async fn a_runner_task_stops_by_stopper_and_by_drop() {
    let (s, _clock) = manual();
    let runner = s.start_on_runtime().unwrap();
    runner.stopper().stop();
    let runner = tokio::task::spawn_blocking(move || {
        runner.wait();
        runner
    })
    .await
    .unwrap();
    assert!(runner.is_stopped());
    assert_eq!(
        runner.shutdown_async(PATIENCE).await,
        ShutdownReport::default()
    );
    drop(s.start_on_runtime().unwrap());
    // Told to stop, it exits at its next poll: then a runner starts again.
    let again = loop {
        match s.start_on_runtime() {
            Ok(r) => break r,
            Err(Error::RunnerStillStopping) => tokio::task::yield_now().await,
            Err(e) => panic!("{e}"),
        }
    };
    assert!(again.shutdown_async(PATIENCE).await.is_clean());
}

/// A runner task whose runtime shuts down gives its registration back
/// (its future is dropped, which may finish on a worker after `drop`
/// returned): the handle's shutdown returns without a timeout, and a
/// runner starts again.
#[test]
fn a_runner_task_dropped_with_its_runtime_exits() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let s = Scheduler::builder()
        .tokio_handle(rt.handle().clone())
        .build();
    let runner = s.start_on_runtime().unwrap();
    drop(rt);
    runner.shutdown(PATIENCE).unwrap();
    s.start().unwrap().shutdown(Duration::from_secs(1)).unwrap();
}

#[test]
fn a_runner_task_needs_a_runtime_and_its_timer() {
    let (s, _clock) = manual();
    assert!(matches!(s.start_on_runtime(), Err(Error::NoRuntime)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let s = Scheduler::builder()
        .tokio_handle(rt.handle().clone())
        .build();
    assert!(matches!(s.start_on_runtime(), Err(Error::Spawn(_))));
    // Nothing was registered: the thread runner starts.
    s.start().unwrap().shutdown(Duration::from_secs(1)).unwrap();
}

/// A runner task never polled (its current-thread runtime is never
/// driven) and dropped with its runtime still gives its registration back.
#[test]
fn a_runner_task_never_polled_gives_its_registration_back() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = Scheduler::builder()
        .tokio_handle(rt.handle().clone())
        .build();
    let runner = s.start_on_runtime().unwrap();
    assert!(!runner.is_stopped());
    drop(rt);
    assert!(runner.is_stopped());
    runner.shutdown(PATIENCE).unwrap();
    s.start().unwrap().shutdown(Duration::from_secs(1)).unwrap();
}
