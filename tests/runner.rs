//! The background runner on the system clock. Waits are on channels with a
//! generous bound (a failure, not a timing assertion).

use cronlane::{Error, Schedule, Scheduler};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn runner_fires_a_task_due_shortly_ahead() {
    let s = Scheduler::builder().build();
    let runner = s.start().unwrap();
    // Registered after the runner parked with nothing to do: it must be woken.
    let (tx, rx) = mpsc::channel();
    s.add(Schedule::after(Duration::from_millis(30)))
        .run_with_context(move |ctx| {
            let _ = tx.send((ctx.scheduled(), ctx.started()));
        })
        .unwrap();
    let (scheduled, started) = rx.recv_timeout(PATIENCE).expect("task did not fire");
    assert!(started >= scheduled, "never fires early");
    assert!(matches!(s.start(), Err(Error::RunnerAlreadyStarted)));
    runner.shutdown(PATIENCE).unwrap();
    assert!(s.is_empty());
}

#[test]
fn shutdown_waits_for_a_running_callback_with_a_timeout() {
    let s = Scheduler::builder().build();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    s.add(Schedule::after(Duration::ZERO))
        .run(move || {
            let _ = entered_tx.send(());
            let _ = release_rx.lock().unwrap().recv();
            f.store(true, Ordering::SeqCst);
        })
        .unwrap();
    let runner = s.start().unwrap();
    entered_rx
        .recv_timeout(PATIENCE)
        .expect("callback did not start");
    let waiter = std::thread::spawn(move || {
        let r = runner.shutdown(PATIENCE);
        (r.is_ok(), finished.load(Ordering::SeqCst))
    });
    release_tx.send(()).unwrap();
    let (ok, finished_when_returned) = waiter.join().unwrap();
    assert!(ok);
    assert!(
        finished_when_returned,
        "shutdown returned before the callback ended"
    );
}

#[test]
fn shutdown_times_out_while_a_callback_is_stuck() {
    let s = Scheduler::builder().build();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
    s.add(Schedule::after(Duration::ZERO))
        .run(move || {
            let _ = entered_tx.send(());
            let _ = release_rx.lock().unwrap().recv();
        })
        .unwrap();
    let runner = s.start().unwrap();
    entered_rx
        .recv_timeout(PATIENCE)
        .expect("callback did not start");
    let r = runner.shutdown(Duration::from_millis(20));
    assert!(matches!(r, Err(Error::ShutdownTimeout(_))), "{r:?}");
    release_tx.send(()).unwrap();
}

#[test]
fn dropping_the_handle_stops_firing() {
    let s = Scheduler::builder().build();
    let runner = s.start().unwrap();
    drop(runner);
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    s.add(Schedule::after(Duration::ZERO))
        .run(move || f.store(true, Ordering::SeqCst))
        .unwrap();
    // No runner: nothing fires until someone calls run_pending.
    assert!(!fired.load(Ordering::SeqCst));
    assert_eq!(s.run_pending().fired, 1);
    assert!(fired.load(Ordering::SeqCst));
    // A new runner can start after the old one stopped.
    s.start().unwrap().shutdown(PATIENCE).unwrap();
}

/// Issue 12, item 7: a shutdown that timed out (the runner stuck in a
/// callback) left the runner registered after its thread had exited, and
/// every later `start()` said `RunnerAlreadyStarted`. The runner thread now
/// clears its own registration when it exits.
#[test]
fn start_works_again_once_a_timed_out_runner_has_exited() {
    let s = Scheduler::builder().build();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    s.add(Schedule::after(Duration::ZERO))
        .run(move || {
            let _ = entered_tx.send(());
            let _ = release_rx.lock().unwrap().recv();
        })
        .unwrap();
    let runner = s.start().unwrap();
    entered_rx
        .recv_timeout(PATIENCE)
        .expect("callback did not start");
    let r = runner.shutdown(Duration::from_millis(20));
    assert!(matches!(r, Err(Error::ShutdownTimeout(_))), "{r:?}");
    // Still inside the callback: `start` refuses, and says why.
    let early = s.start();
    assert!(
        matches!(early, Err(Error::RunnerStillStopping)),
        "{early:?}"
    );
    release_tx.send(()).unwrap();
    // Bounded polling of `start` itself: it refuses while the old runner is
    // still inside the callback (or on its way out), and must succeed once
    // the old thread is gone.
    let deadline = std::time::Instant::now() + PATIENCE;
    let runner = loop {
        match s.start() {
            Ok(runner) => break runner,
            Err(e) => {
                assert!(matches!(e, Error::RunnerStillStopping), "{e}");
                assert!(
                    std::time::Instant::now() < deadline,
                    "start still fails {PATIENCE:?} after the old runner's callback returned: {e}"
                );
                std::thread::yield_now();
            }
        }
    };
    let (tx, rx) = mpsc::channel();
    s.add(Schedule::after(Duration::ZERO))
        .run(move || {
            let _ = tx.send(());
        })
        .unwrap();
    rx.recv_timeout(PATIENCE)
        .expect("the new runner did not fire");
    runner.shutdown(PATIENCE).unwrap();
}
