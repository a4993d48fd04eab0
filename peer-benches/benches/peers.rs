//! cronlane against the schedulers a Rust user would pick instead, doing the
//! same work through each one's own API, in the same run:
//!
//! * `register`: N one-shot tasks far in the future (N = 1,000 and 100,000).
//! * `fire`: N tasks that are all due, fired by one pass of the scheduler.
//!
//! Where a peer's API cannot do exactly the same thing, the comment at its
//! case says what it does instead. Set-up and tear-down are outside the timed
//! part (`iter_custom`). Callbacks do one atomic increment.

use chrono::{DateTime, Utc};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SIZES: [usize; 2] = [1_000, 100_000];

static FIRED: AtomicU64 = AtomicU64::new(0);

fn t0() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().expect("valid instant")
}

fn far_future() -> DateTime<Utc> {
    "2200-01-01T00:00:00Z".parse().expect("valid instant")
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, n: usize) {
    group.throughput(Throughput::Elements(n as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
}

// --- cronlane --------------------------------------------------------------

mod lane {
    use super::*;
    use cronlane::{Dispatcher, ManualClock, Schedule, Scheduler};

    pub(super) fn scheduler() -> (Scheduler, ManualClock) {
        let clock = ManualClock::new(t0());
        let s = Scheduler::builder()
            .clock(clock.clone())
            .dispatcher(Dispatcher::default())
            .build();
        (s, clock)
    }

    pub(super) fn register(n: usize) -> Duration {
        let (s, _clock) = scheduler();
        let once = Schedule::once(far_future());
        let start = Instant::now();
        for _ in 0..n {
            black_box(s.add(once.clone()).run(|| {}).expect("registered"));
        }
        start.elapsed()
    }

    /// N one-shots spread over the next second, drained onto the timeline
    /// while none is due; then the clock moves 1 s and one run_pending fires
    /// them all.
    pub(super) fn fire(n: usize) -> Duration {
        let (s, clock) = scheduler();
        let base = t0();
        for i in 0..n {
            let at = base + chrono::Duration::nanoseconds(1 + i as i64);
            s.add(Schedule::once(at))
                .run(|| {
                    FIRED.fetch_add(1, Ordering::Relaxed);
                })
                .expect("registered");
        }
        s.run_pending();
        clock.advance(Duration::from_secs(1));
        let start = Instant::now();
        let report = s.run_pending();
        let d = start.elapsed();
        assert_eq!(report.fired, n as u64);
        d
    }
}

// --- clokwerk ----------------------------------------------------------------
//
// `clokwerk::Scheduler` is a `Vec` of jobs behind `&mut self`: registration is
// a push, not thread-safe (share it and you add your own lock). It has no
// "at this instant": a one-shot is `every(interval).once()`, due one interval
// after registration. `run_pending` walks every job (O(total), not O(due)).
// Time comes from a `TimeProvider`; we give it a manual clock like cronlane's.

mod clok {
    use super::*;
    use clokwerk::timeprovider::TimeProvider;
    use clokwerk::{Interval, Job as _, Scheduler};

    static NOW: AtomicI64 = AtomicI64::new(0);

    pub(super) struct BenchTime;
    impl TimeProvider for BenchTime {
        fn now<Tz>(tz: &Tz) -> chrono::DateTime<Tz>
        where
            Tz: chrono::TimeZone + Sync + Send,
        {
            chrono::TimeZone::timestamp_nanos(&Utc, NOW.load(Ordering::Relaxed)).with_timezone(tz)
        }
    }

    fn scheduler() -> Scheduler<Utc, BenchTime> {
        NOW.store(
            t0().timestamp_nanos_opt().expect("in range"),
            Ordering::Relaxed,
        );
        Scheduler::with_tz_and_provider::<Utc, BenchTime>(Utc)
    }

    /// One-shot "far away": `every(52 weeks).once()` (clokwerk has no absolute
    /// instant).
    pub(super) fn register(n: usize) -> Duration {
        let mut s = scheduler();
        let start = Instant::now();
        for _ in 0..n {
            s.every(Interval::Weeks(52)).once().run(|| {});
        }
        let d = start.elapsed();
        black_box(&s);
        d
    }

    /// N `every(1 second).once()` jobs; the clock moves 1 s; one run_pending.
    pub(super) fn fire(n: usize) -> Duration {
        let mut s = scheduler();
        for _ in 0..n {
            s.every(Interval::Seconds(1)).once().run(|| {
                FIRED.fetch_add(1, Ordering::Relaxed);
            });
        }
        let before = FIRED.load(Ordering::Relaxed);
        NOW.fetch_add(1_000_000_000, Ordering::Relaxed);
        let start = Instant::now();
        s.run_pending();
        let d = start.elapsed();
        assert_eq!(FIRED.load(Ordering::Relaxed) - before, n as u64);
        d
    }
}

// --- job_scheduler_ng ---------------------------------------------------------
//
// Cron jobs only (no one-shot, no interval): we register a pre-parsed cron
// schedule (`Schedule` cloned, as for cronlane's cron case; the one-shot case
// has no equivalent). Each job gets a random v4 UUID. `tick()` walks every job
// and reads the system clock (no clock injection): to make N jobs due without
// sleeping, each job's `last_tick` is set 2 s in the past, so a `* * * * * *`
// job has exactly one missed second to fire. Single-threaded `&mut self`.

mod jsng {
    use super::*;
    use job_scheduler_ng::{Job, JobScheduler, Schedule};

    pub(super) fn register(n: usize) -> Duration {
        let mut s = JobScheduler::new();
        let cron: Schedule = "0 0 0 1 1 * 2099".parse().expect("valid cron");
        let start = Instant::now();
        for _ in 0..n {
            black_box(s.add(Job::new(cron.clone(), || {})));
        }
        let d = start.elapsed();
        black_box(&s);
        d
    }

    pub(super) fn fire(n: usize) -> Duration {
        let mut s = JobScheduler::new();
        let cron: Schedule = "* * * * * *".parse().expect("valid cron");
        let past = (Utc::now() - chrono::Duration::seconds(2)).fixed_offset();
        for _ in 0..n {
            let mut job = Job::new(cron.clone(), || {
                FIRED.fetch_add(1, Ordering::Relaxed);
            });
            job.last_tick(Some(past));
            s.add(job);
        }
        let before = FIRED.load(Ordering::Relaxed);
        let start = Instant::now();
        s.tick();
        let d = start.elapsed();
        assert!(FIRED.load(Ordering::Relaxed) - before >= n as u64);
        d
    }
}

// --- tokio-cron-scheduler -----------------------------------------------------
//
// Async: every call goes through the tokio runtime (a multi-thread runtime
// with 2 workers here, = the cores). `add(Job::new_one_shot(..))` is awaited
// per task. No clock injection and no "run due jobs now" call: its own
// background loop fires jobs. So `fire` registers N one-shots due after 0 s
// before `start()`, then times from `start()` until the N-th callback has
// run; the number includes the loop's start-up and tick cadence. Its one-shot
// instants have 1 s resolution (stored as whole seconds).

/// Jobs tokio-cron-scheduler never fired, and jobs it was given, in the
/// fire benchmark (printed at the end of the run).
static TCS_LOST: AtomicU64 = AtomicU64::new(0);
static TCS_GIVEN: AtomicU64 = AtomicU64::new(0);

mod tcs {
    use super::*;
    use tokio_cron_scheduler::{Job, JobScheduler};

    pub(super) fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    }

    pub(super) fn register(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
        rt.block_on(async {
            let s = JobScheduler::new().await.expect("scheduler");
            let far = Duration::from_secs(100 * 365 * 24 * 3600);
            let start = Instant::now();
            for _ in 0..n {
                let job = Job::new_one_shot(far, |_id, _l| {}).expect("job");
                black_box(s.add(job).await.expect("added"));
            }
            start.elapsed()
        })
    }

    pub(super) fn fire(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
        rt.block_on(async {
            // Its notifications travel on tokio broadcast channels of this
            // capacity (default 200); with more jobs due at once than that,
            // notifications lag and are dropped, and those jobs never fire.
            let mut s = JobScheduler::new_with_channel_size(2 * n + 200)
                .await
                .expect("scheduler");
            let count = Arc::new(AtomicU64::new(0));
            for _ in 0..n {
                let count = count.clone();
                let job = Job::new_one_shot(Duration::ZERO, move |_id, _l| {
                    count.fetch_add(1, Ordering::Relaxed);
                })
                .expect("job");
                s.add(job).await.expect("added");
            }
            let start = Instant::now();
            s.start().await.expect("started");
            // Even with the large channel it sometimes never fires a few
            // jobs (7 of 100,000 in one run). Rather than fail the whole
            // bench run, stop once nothing has fired for 2 s, time what did
            // fire, and report the loss (printed at the end of the run; see
            // BENCHMARKS.md).
            let (mut seen, mut last) = (0, start.elapsed());
            loop {
                let fired = count.load(Ordering::Relaxed);
                if fired >= n as u64 {
                    last = start.elapsed();
                    break;
                }
                if fired > seen {
                    (seen, last) = (fired, start.elapsed());
                } else if start.elapsed() - last > Duration::from_secs(2) {
                    TCS_LOST.fetch_add(n as u64 - fired, Ordering::Relaxed);
                    break;
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            TCS_GIVEN.fetch_add(n as u64, Ordering::Relaxed);
            s.shutdown().await.expect("shutdown");
            last
        })
    }
}

// --- delay_timer ----------------------------------------------------------------
//
// Tasks are built with `TaskBuilder` and added by id (`add_task`, which sends
// the task to the timer's own event thread over a channel). Its timing wheel
// ticks once a second on the system clock, with no clock injection and no
// "run due now" call, so only registration is measured; see BENCHMARKS.md.

mod dt {
    use super::*;
    use delay_timer::prelude::*;

    pub(super) fn register(n: usize) -> Duration {
        let timer = DelayTimerBuilder::default().build();
        let start = Instant::now();
        for i in 0..n {
            let task = TaskBuilder::default()
                .set_task_id(i as u64)
                .set_frequency_once_by_seconds(100 * 365 * 24 * 3600)
                .spawn_routine(|| {})
                .expect("task");
            timer.add_task(task).expect("added");
        }
        let d = start.elapsed();
        let _ = timer.stop_delay_timer();
        d
    }
}

/// One peer's case at size `n`: each iteration is one timed call of `f`.
fn run(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, n: usize, f: &dyn Fn() -> Duration) {
    group.bench_function(BenchmarkId::new(name, n), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| f()).sum());
    });
}

fn bench_register(c: &mut Criterion) {
    let rt = tcs::runtime();
    let mut group = c.benchmark_group("peers_register");
    for n in SIZES {
        configure(&mut group, n);
        run(&mut group, "cronlane", n, &|| lane::register(n));
        run(&mut group, "clokwerk", n, &|| clok::register(n));
        run(&mut group, "job_scheduler_ng", n, &|| jsng::register(n));
        run(&mut group, "tokio_cron_scheduler", n, &|| {
            tcs::register(&rt, n)
        });
        run(&mut group, "delay_timer", n, &|| dt::register(n));
    }
    group.finish();
}

fn bench_fire(c: &mut Criterion) {
    let rt = tcs::runtime();
    let mut group = c.benchmark_group("peers_fire");
    for n in SIZES {
        configure(&mut group, n);
        run(&mut group, "cronlane", n, &|| lane::fire(n));
        run(&mut group, "clokwerk", n, &|| clok::fire(n));
        run(&mut group, "job_scheduler_ng", n, &|| jsng::fire(n));
        run(&mut group, "tokio_cron_scheduler", n, &|| tcs::fire(&rt, n));
    }
    group.finish();
}

criterion_group!(benches, bench_register, bench_fire);
fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let (lost, given) = (
        TCS_LOST.load(Ordering::Relaxed),
        TCS_GIVEN.load(Ordering::Relaxed),
    );
    if given > 0 {
        println!("tokio-cron-scheduler fire: {lost} of {given} due jobs never fired");
    }
}
