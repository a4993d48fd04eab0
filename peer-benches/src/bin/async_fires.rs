//! Async fires on tokio, in one run: cronlane's `run_async` one-shots
//! (the background runner on the system clock) against
//! tokio-cron-scheduler's async one-shots and against raw
//! `tokio::time::sleep_until` tasks (the bound). All on one multi-thread
//! runtime with 2 workers; each job's run records its lag (due instant to
//! the start of its future) and its completion.
//!
//! * **burst**: N one-shots all due at one instant, at least 50 ms after
//!   registration began (plus 10 us per job, so that registration is over
//!   before the instant for every contender); fires/s = N / (last
//!   completion - due instant), and the lag distribution of the burst.
//! * **trickle**: N one-shots due 0.5 ms apart from such an instant; lag
//!   p50/p99 of fires that do not queue behind each other.
//!
//! Run: `cargo run --release --bin async_fires [-- BURST TRICKLE TCS_BURST]`
//! (defaults 20000 2000 2000). Prints a table; never a pass/fail test.
//! cronlane's runner is a task on the runtime (`start_on_runtime`);
//! `RUNNER=thread` gives it a thread of its own (`start`) instead.

use chrono::Utc;
use cronlane::{Schedule, Scheduler};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-run records: lag (ns) per job, completions, latest completion.
struct Record {
    lags: Vec<AtomicI64>,
    done: AtomicUsize,
    /// Latest completion, ns after `origin`.
    last: AtomicU64,
    origin: Instant,
}

impl Record {
    fn new(n: usize) -> Arc<Record> {
        Arc::new(Record {
            lags: (0..n).map(|_| AtomicI64::new(i64::MIN)).collect(),
            done: AtomicUsize::new(0),
            last: AtomicU64::new(0),
            origin: Instant::now(),
        })
    }
    fn started(&self, i: usize, lag_ns: i64) {
        self.lags[i].store(lag_ns, Ordering::Relaxed);
    }
    fn finished(&self) {
        let t = self.origin.elapsed().as_nanos() as u64;
        self.last.fetch_max(t, Ordering::Relaxed);
        self.done.fetch_add(1, Ordering::Release);
    }
    fn wait(&self, n: usize, limit: Duration) -> usize {
        let start = Instant::now();
        while self.done.load(Ordering::Acquire) < n && start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.done.load(Ordering::Acquire)
    }
}

/// What one contender's run measured.
struct Sample {
    n: usize,
    fired: usize,
    registration: Duration,
    /// Registration began this long before the first due instant.
    lead: Duration,
    /// Due instant (of the first job) to the last completion.
    span: Duration,
    lags: Vec<i64>,
}

/// Now minus `due`, in ns, negative when early.
fn signed_since(due: Instant) -> i64 {
    let now = Instant::now();
    match now.checked_duration_since(due) {
        Some(d) => d.as_nanos() as i64,
        None => -(due.duration_since(now).as_nanos() as i64),
    }
}

/// The `p` quantile in microseconds (negative: early).
fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1e3
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// When the first job is due: 50 ms after now, plus 10 us per job (100 us
/// for tokio-cron-scheduler, whose `add` is awaited per job and takes
/// tens of microseconds), so that registration is over before it.
fn lead(n: usize, per_job_us: u64) -> Duration {
    Duration::from_millis(50) + Duration::from_micros(per_job_us * n as u64)
}

fn collect(rec: &Record, n: usize, registration: Duration, start: Instant, lead: Duration) -> Sample {
    let due = start + lead;
    let fired = rec.wait(n, Duration::from_secs(30));
    let last = rec.origin + Duration::from_nanos(rec.last.load(Ordering::Relaxed));
    let mut lags: Vec<i64> = rec
        .lags
        .iter()
        .map(|l| l.load(Ordering::Relaxed))
        .filter(|&l| l != i64::MIN)
        .collect();
    lags.sort_unstable();
    Sample {
        n,
        fired,
        registration,
        lead,
        span: last.saturating_duration_since(due),
        lags,
    }
}

fn cronlane(rt: &tokio::runtime::Runtime, n: usize, spacing: Duration) -> Sample {
    let s = Scheduler::builder()
        .tokio_handle(rt.handle().clone())
        .build();
    // The runner as a task on the runtime (`start_on_runtime`), or with
    // `RUNNER=thread` a thread of its own (`start`).
    let runner = if std::env::var("RUNNER").is_ok_and(|r| r == "thread") {
        s.start()
    } else {
        s.start_on_runtime()
    }
    .expect("runner");
    let rec = Record::new(n);
    let lead = lead(n, 10);
    let start = Instant::now();
    let first = Utc::now() + chrono::Duration::from_std(lead).expect("lead");
    for i in 0..n {
        let at = first + chrono::Duration::from_std(spacing * i as u32).expect("spacing");
        let rec = rec.clone();
        s.add(Schedule::once(at))
            .run_async(move |ctx| {
                let rec = rec.clone();
                async move {
                    let lag = (Utc::now() - ctx.scheduled()).num_nanoseconds().unwrap_or(i64::MAX);
                    rec.started(i, lag);
                    rec.finished();
                }
            })
            .expect("registered");
    }
    let registration = start.elapsed();
    let sample = collect(&rec, n, registration, start, lead);
    runner.shutdown(Duration::from_secs(5)).expect("shutdown");
    sample
}

fn tokio_cron_scheduler(rt: &tokio::runtime::Runtime, n: usize, spacing: Duration) -> Sample {
    use tokio_cron_scheduler::{Job, JobScheduler};
    let rec = Record::new(n);
    let lead = lead(n, 100);
    let (s, start, registration) = rt.block_on(async {
        // Its notifications travel on broadcast channels of this capacity;
        // with more jobs due at once than that, jobs are lost.
        let s = JobScheduler::new_with_channel_size(2 * n + 200)
            .await
            .expect("scheduler");
        let start = Instant::now();
        for i in 0..n {
            let due = start + lead + spacing * i as u32;
            let rec = rec.clone();
            let job = Job::new_one_shot_at_instant_async(due, move |_id, _l| {
                let rec = rec.clone();
                Box::pin(async move {
                    let lag = signed_since(due);
                    rec.started(i, lag);
                    rec.finished();
                })
            })
            .expect("job");
            s.add(job).await.expect("added");
        }
        let registration = start.elapsed();
        s.start().await.expect("started");
        (s, start, registration)
    });
    let sample = collect(&rec, n, registration, start, lead);
    let mut s = s;
    rt.block_on(async { s.shutdown().await.expect("shutdown") });
    sample
}

fn raw_tokio(rt: &tokio::runtime::Runtime, n: usize, spacing: Duration) -> Sample {
    let rec = Record::new(n);
    let lead = lead(n, 10);
    let start = Instant::now();
    for i in 0..n {
        let due = start + lead + spacing * i as u32;
        let rec = rec.clone();
        rt.spawn(async move {
            tokio::time::sleep_until(due.into()).await;
            let lag = signed_since(due);
            rec.started(i, lag);
            rec.finished();
        });
    }
    let registration = start.elapsed();
    collect(&rec, n, registration, start, lead)
}

fn print(kind: &str, name: &str, s: &Sample) {
    let rate = s.fired as f64 / s.span.as_secs_f64().max(1e-9);
    let p50 = percentile(&s.lags, 0.50);
    let p99 = percentile(&s.lags, 0.99);
    let max = percentile(&s.lags, 1.0);
    println!(
        "| {kind} | {name} | {} | {} | {:.1} ms | {} | {:.0} | {:.0} us | {:.0} us | {:.0} us |",
        s.n,
        s.fired,
        s.registration.as_secs_f64() * 1e3,
        if s.registration < s.lead { "yes" } else { "NO" },
        if kind == "burst" { rate } else { f64::NAN },
        p50,
        p99,
        max,
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let burst: usize = args.next().map_or(20_000, |a| a.parse().expect("BURST"));
    let trickle: usize = args.next().map_or(2_000, |a| a.parse().expect("TRICKLE"));
    let tcs_burst: usize = args.next().map_or(2_000, |a| a.parse().expect("TCS_BURST"));
    // Diagnostic: `ONLY=cronlane` (or `raw`, `tcs`) runs one contender.
    let only = std::env::var("ONLY").unwrap_or_default();
    let on = |name: &str| only.is_empty() || name.contains(only.as_str());
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(2);
    let rt = runtime();
    let spacing = Duration::from_micros(500);
    println!("| shape | contender | jobs | fired | registration | done before due | fires/s | lag p50 | lag p99 | lag max |");
    println!("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |");
    for _ in 0..rounds {
        if on("cronlane") {
            print("burst", "cronlane run_async", &cronlane(&rt, burst, Duration::ZERO));
        }
        if on("raw") {
            print("burst", "raw tokio sleep_until", &raw_tokio(&rt, burst, Duration::ZERO));
        }
        if on("tcs") {
            let s = tokio_cron_scheduler(&rt, tcs_burst, Duration::ZERO);
            print("burst", "tokio-cron-scheduler", &s);
        }
        if on("cronlane") {
            print("trickle", "cronlane run_async", &cronlane(&rt, trickle, spacing));
        }
        if on("raw") {
            print("trickle", "raw tokio sleep_until", &raw_tokio(&rt, trickle, spacing));
        }
        if on("tcs") {
            let s = tokio_cron_scheduler(&rt, trickle, spacing);
            print("trickle", "tokio-cron-scheduler", &s);
        }
    }
}
