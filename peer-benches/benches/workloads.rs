//! Issue 18's real workloads: cronlane, the `Mutex<BinaryHeap>` baseline and
//! the peers in one binary, so every ratio comes from one run. cronlane's and
//! the heap's cases are `benches/workloads/shared.rs` of the root crate
//! (included by path); the peers' are below, driven through their own APIs
//! with the same callback (one shared atomic add, one per-task byte) and the
//! same exactly-once check after each measurement.
//!
//! * clokwerk: a `Vec` of jobs behind `&mut self`, one thread only; no
//!   names, no removal, no cron (its registration case is
//!   `every(5 minutes)`, the nearest it has to `0 */5 * * * *`); time from a
//!   manual `TimeProvider` like cronlane's `ManualClock`.
//! * job_scheduler_ng: cron only, reads the system clock (no injection), so
//!   its steady state is measured outside criterion: N `* * * * * *` jobs,
//!   one `tick()` just after each of 3 second boundaries, median printed.
//!   `remove` is a linear scan (measured at 10,000 only).
//!
//! Run: `cd peer-benches && cargo bench --bench workloads` (sizes 10,000 and
//! 100,000; `WL_SIZES=10000,100000,1000000` for more).

use criterion::measurement::WallTime;
use criterion::{criterion_group, BenchmarkGroup, BenchmarkId, Criterion};
use criterion::{SamplingMode, Throughput};
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../../benches/workloads/shared.rs"]
mod shared;
use shared::*;

fn sizes() -> Vec<usize> {
    std::env::var("WL_SIZES")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().parse().expect("size"))
                .collect()
        })
        .unwrap_or_else(|| vec![10_000, 100_000])
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, n: usize) {
    group.throughput(Throughput::Elements(n as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
}

fn case(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, n: usize, f: &dyn Fn() -> Duration) {
    group.bench_function(BenchmarkId::new(name, n), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| f()).sum());
    });
}

// --- clokwerk ----------------------------------------------------------------

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
            chrono::TimeZone::timestamp_nanos(&chrono::Utc, NOW.load(Ordering::Relaxed))
                .with_timezone(tz)
        }
    }

    pub(super) type Sched = Scheduler<chrono::Utc, BenchTime>;

    pub(super) fn scheduler() -> Sched {
        NOW.store(nanos(t0()), Ordering::Relaxed);
        Scheduler::with_tz_and_provider::<chrono::Utc, BenchTime>(chrono::Utc)
    }

    pub(super) struct Steady {
        pub(super) s: Sched,
        pub(super) counters: Arc<Counters>,
        pub(super) passes: u64,
        n: usize,
    }

    pub(super) fn steady(n: usize) -> Steady {
        let mut s = scheduler();
        let counters = Counters::new(n);
        for i in 0..n {
            let c = counters.clone();
            s.every(Interval::Seconds(PERIOD_S as u32))
                .run(move || c.hit(i));
        }
        s.run_pending();
        Steady {
            s,
            counters,
            passes: 0,
            n,
        }
    }

    pub(super) fn steady_pass(st: &mut Steady) -> Duration {
        let before = st.counters.total.load(Ordering::Relaxed);
        NOW.fetch_add(PERIOD_S as i64 * SEC, Ordering::Relaxed);
        let start = Instant::now();
        st.s.run_pending();
        let d = start.elapsed();
        assert_eq!(
            st.counters.total.load(Ordering::Relaxed) - before,
            st.n as u64
        );
        st.passes += 1;
        d
    }

    /// N `every(1 s).once()` jobs (its one-shot: one interval after
    /// registration); the clock moves 1 s; one `run_pending`.
    pub(super) fn once_due(n: usize) -> Duration {
        let mut s = scheduler();
        let counters = Counters::new(n);
        for i in 0..n {
            let c = counters.clone();
            s.every(Interval::Seconds(1)).once().run(move || c.hit(i));
        }
        NOW.fetch_add(SEC, Ordering::Relaxed);
        let start = Instant::now();
        s.run_pending();
        let d = start.elapsed();
        counters.check(1);
        d
    }

    pub(super) fn register(n: usize, ival: Interval, once: bool) -> Duration {
        let mut s = scheduler();
        let counters = Counters::new(n);
        let start = Instant::now();
        for i in 0..n {
            let c = counters.clone();
            let job = s.every(ival);
            if once {
                job.once().run(move || c.hit(i));
            } else {
                job.run(move || c.hit(i));
            }
        }
        let d = start.elapsed();
        black_box(&s);
        d
    }
}

// --- job_scheduler_ng -----------------------------------------------------------

mod jsng {
    use super::*;
    use job_scheduler_ng::{Job, JobScheduler, Schedule};

    pub(super) fn register(n: usize, parse: bool) -> Duration {
        let mut s = JobScheduler::new();
        let counters = Counters::new(n);
        let cron: Schedule = CRON_REG.parse().expect("valid cron");
        let start = Instant::now();
        for i in 0..n {
            let c = counters.clone();
            let schedule = if parse {
                black_box(CRON_REG).parse().expect("valid cron")
            } else {
                cron.clone()
            };
            black_box(s.add(Job::new(schedule, move || c.hit(i))));
        }
        let d = start.elapsed();
        black_box(&s);
        d
    }

    pub(super) fn remove(n: usize) -> Duration {
        let mut s = JobScheduler::new();
        let cron: Schedule = CRON_REG.parse().expect("valid cron");
        let ids: Vec<_> = (0..n)
            .map(|_| s.add(Job::new(cron.clone(), || {})))
            .collect();
        let start = Instant::now();
        for id in ids {
            assert!(s.remove(id));
        }
        start.elapsed()
    }

    /// Steady state on the system clock (see the module doc): fires per
    /// second of `tick()`, median of 3 passes.
    pub(super) fn steady(n: usize) -> f64 {
        let mut s = JobScheduler::new();
        let counters = Counters::new(n);
        let cron: Schedule = "* * * * * *".parse().expect("valid cron");
        for i in 0..n {
            let c = counters.clone();
            s.add(Job::new(cron.clone(), move || c.hit(i)));
        }
        s.tick(); // first tick: records last_tick only
        let mut rates = Vec::new();
        for pass in 1..=3u64 {
            let now = chrono::Utc::now();
            let into = now.timestamp_subsec_nanos() as u64;
            std::thread::sleep(Duration::from_nanos(1_000_000_000 - into + 20_000_000));
            let start = Instant::now();
            s.tick();
            let d = start.elapsed();
            counters.check(pass);
            rates.push(n as f64 / d.as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        rates[1]
    }
}

// --- the groups -------------------------------------------------------------------

fn bench_steady(c: &mut Criterion) {
    let mut group = c.benchmark_group("pw_steady");
    for n in sizes() {
        configure(&mut group, n);
        for kind in [Recur::Every, Recur::Cron, Recur::NamedEvery] {
            group.bench_function(
                BenchmarkId::new(format!("cronlane_{}", kind.label()), n),
                |b| {
                    let mut st = lane_steady(n, kind);
                    b.iter_custom(|iters| (0..iters).map(|_| lane_steady_pass(&mut st, 1)).sum());
                    st.counters.check(st.passes);
                },
            );
        }
        group.bench_function(BenchmarkId::new("heap_every", n), |b| {
            let mut st = heap_steady(n);
            b.iter_custom(|iters| (0..iters).map(|_| heap_steady_pass(&mut st, 1)).sum());
            st.counters.check(st.passes);
        });
        group.bench_function(BenchmarkId::new("clokwerk_every", n), |b| {
            let mut st = clok::steady(n);
            b.iter_custom(|iters| (0..iters).map(|_| clok::steady_pass(&mut st)).sum());
            st.counters.check(st.passes);
        });
    }
    group.finish();
}

fn bench_once_due(c: &mut Criterion) {
    let mut group = c.benchmark_group("pw_once_due");
    for n in sizes() {
        configure(&mut group, n);
        case(&mut group, "cronlane", n, &|| lane_once_due(n));
        case(&mut group, "heap", n, &|| heap_once_due(n));
        case(&mut group, "clokwerk", n, &|| clok::once_due(n));
    }
    group.finish();
}

fn bench_register(c: &mut Criterion) {
    use clokwerk::Interval;
    let mut group = c.benchmark_group("pw_register");
    for n in sizes() {
        configure(&mut group, n);
        for kind in [
            Reg::Once,
            Reg::Every,
            Reg::NamedEvery,
            Reg::Cron,
            Reg::CronParse,
        ] {
            case(
                &mut group,
                &format!("cronlane_{}", kind.label()),
                n,
                &|| lane_register(n, kind, 1),
            );
        }
        case(&mut group, "heap_every", n, &|| heap_register(n, 1));
        case(&mut group, "clokwerk_once", n, &|| {
            clok::register(n, Interval::Weeks(52), true)
        });
        case(&mut group, "clokwerk_every", n, &|| {
            clok::register(n, Interval::Seconds(PERIOD_S as u32), false)
        });
        case(&mut group, "clokwerk_every_5min", n, &|| {
            clok::register(n, Interval::Minutes(5), false)
        });
        case(&mut group, "jsng_cron", n, &|| jsng::register(n, false));
        case(&mut group, "jsng_cron_parse", n, &|| {
            jsng::register(n, true)
        });
    }
    group.finish();
}

fn bench_remove(c: &mut Criterion) {
    let mut group = c.benchmark_group("pw_remove");
    for n in sizes() {
        configure(&mut group, n);
        case(&mut group, "cronlane_by_id", n, &|| {
            lane_remove(n, By::Id, 1)
        });
        case(&mut group, "cronlane_by_name", n, &|| {
            lane_remove(n, By::Name, 1)
        });
        case(&mut group, "heap_tombstone", n, &|| heap_remove(n, 1));
        if n <= 10_000 {
            case(&mut group, "jsng", n, &|| jsng::remove(n));
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_steady,
    bench_once_due,
    bench_register,
    bench_remove
);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::var_os("WL_NO_JSNG").is_none() {
        for n in sizes() {
            let rate = jsng::steady(n);
            println!(
                "jsng steady state (system clock, median of 3 ticks): n={n} {rate:.0} fires/s"
            );
        }
    }
}
