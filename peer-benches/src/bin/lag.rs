//! Runner fire lag: from a task's scheduled instant to the start of its
//! callback, with cronlane's background runner (`Scheduler::start`) on the
//! system clock. Prints p50/p99/max and a text histogram; never a pass/fail
//! test. Writes the raw lags (ns, one a line) to the path in `LAG_OUT`
//! (default `target/lag.txt`) for `scripts/charts.py`.
//!
//! Run: `cargo run --release --bin lag [-- TASKS SPACING_US]`.

use chrono::Utc;
use cronlane::{Dispatcher, Schedule, Scheduler};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let tasks: usize = args.next().map_or(3_000, |a| a.parse().expect("TASKS"));
    let spacing_us: i64 = args
        .next()
        .map_or(2_000, |a| a.parse().expect("SPACING_US"));
    let out = std::env::var("LAG_OUT").unwrap_or_else(|_| "target/lag.txt".to_owned());

    // Diagnostic knob: the timer slack (ns) of this thread, inherited by the
    // runner thread `start` spawns. Linux's default is 50 us.
    if let Some(slack) = std::env::var("LAG_TIMERSLACK_NS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only
        // changes this thread's timer slack.
        let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, slack as libc::c_ulong, 0, 0, 0) };
        assert_eq!(rc, 0, "prctl(PR_SET_TIMERSLACK)");
        println!("timer slack set to {slack} ns");
    }
    park_floor();

    let scheduler = Scheduler::new(Dispatcher::default());
    let runner = scheduler.start().expect("runner");
    let lags: Arc<Vec<AtomicI64>> = Arc::new((0..tasks).map(|_| AtomicI64::new(-1)).collect());
    let done = Arc::new(AtomicUsize::new(0));
    let first = Utc::now() + chrono::Duration::milliseconds(200);
    for i in 0..tasks {
        let at = first + chrono::Duration::microseconds(i as i64 * spacing_us);
        let (lags, done) = (lags.clone(), done.clone());
        scheduler
            .add(Schedule::once(at))
            .run_with_context(move |ctx| {
                // Callback start, read first thing.
                let now = Utc::now();
                let lag = (now - ctx.scheduled())
                    .num_nanoseconds()
                    .unwrap_or(i64::MAX);
                lags[i].store(lag, Ordering::Relaxed);
                done.fetch_add(1, Ordering::Release);
            })
            .expect("registered");
    }
    let span = Duration::from_micros((tasks as i64 * spacing_us) as u64);
    std::thread::sleep(Duration::from_millis(200) + span);
    while done.load(Ordering::Acquire) < tasks {
        std::thread::sleep(Duration::from_millis(10));
    }
    runner.shutdown(Duration::from_secs(5)).expect("shutdown");

    let mut v: Vec<i64> = lags.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    v.sort_unstable();
    let pct = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    let us = |ns: i64| ns as f64 / 1_000.0;
    println!(
        "runner fire lag over {tasks} one-shot fires {spacing_us} us apart (system clock, inline dispatch)"
    );
    println!(
        "min {:.1} us  p50 {:.1} us  p90 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  max {:.1} us",
        us(v[0]),
        us(pct(0.5)),
        us(pct(0.9)),
        us(pct(0.99)),
        us(pct(0.999)),
        us(*v.last().expect("at least one fire"))
    );
    // Histogram: log2 buckets in microseconds.
    let mut buckets = std::collections::BTreeMap::new();
    for &ns in &v {
        let b = if ns < 1_000 {
            0
        } else {
            64 - ((ns / 1_000) as u64).leading_zeros()
        };
        *buckets.entry(b).or_insert(0usize) += 1;
    }
    let max_count = *buckets.values().max().unwrap_or(&1);
    for (b, count) in &buckets {
        let (lo, hi) = if *b == 0 {
            (0, 1)
        } else {
            (1u64 << (b - 1), 1u64 << b)
        };
        let bar = "#".repeat((count * 50).div_ceil(max_count));
        println!("[{lo:>7} us, {hi:>7} us) {count:>6} {bar}");
    }
    if let Some(parent) = std::path::Path::new(&out).parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let text: String = v.iter().map(|ns| format!("{ns}\n")).collect();
    std::fs::write(&out, text).expect("write lag output");
    println!("raw lags (ns) written to {out}");
}

/// The floor under any parked runner: how late `thread::park_timeout` itself
/// returns on this machine (what the runner uses to wait for the next fire).
fn park_floor() {
    let mut over: Vec<i64> = (0..500)
        .map(|_| {
            let want = Duration::from_micros(2_000);
            let start = std::time::Instant::now();
            std::thread::park_timeout(want);
            start.elapsed().as_nanos() as i64 - want.as_nanos() as i64
        })
        .collect();
    over.sort_unstable();
    let pct = |p: f64| over[((over.len() as f64 - 1.0) * p).round() as usize] as f64 / 1_000.0;
    println!(
        "floor: thread::park_timeout(2 ms) overshoot over 500 calls: p50 {:.1} us  p99 {:.1} us  max {:.1} us",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}
