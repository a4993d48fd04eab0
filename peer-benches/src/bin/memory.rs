//! Heap bytes per scheduled task, measured with a counting global allocator:
//! live heap bytes after registering N tasks (and letting each scheduler put
//! them where they wait) minus live bytes before, divided by N. Callbacks
//! capture nothing, so the figure is the scheduler's own cost per task.
//!
//! Run: `cargo run --release --bin memory [-- N]` (default N = 1,000,000;
//! tokio-cron-scheduler and delay_timer are measured at N / 10 because they
//! register at tens of thousands per second).

use chrono::{DateTime, Utc};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged and only
// counts sizes on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn t0() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().expect("valid instant")
}

fn far_future() -> DateTime<Utc> {
    "2200-01-01T00:00:00Z".parse().expect("valid instant")
}

/// Runs `f`, which builds a scheduler holding `n` tasks and returns it; the
/// live-byte delta (scheduler included) divided by `n`.
fn per_task<T>(n: usize, f: impl FnOnce(usize) -> T) -> f64 {
    let before = live();
    let kept = f(n);
    let after = live();
    drop(kept);
    (after - before) as f64 / n as f64
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().expect("N"));
    let small = n / 10;
    let mut rows: Vec<(String, usize, f64)> = Vec::new();

    {
        use cronlane::{Dispatcher, ManualClock, Schedule, Scheduler};
        let build = || {
            Scheduler::builder()
                .clock(ManualClock::new(t0()))
                .dispatcher(Dispatcher::default())
                .build()
        };
        let once = Schedule::once(far_future());
        let b = per_task(n, |n| {
            let s = build();
            for _ in 0..n {
                s.add(once.clone()).run(|| {}).expect("registered");
            }
            // Drain intake into the timeline (nothing is due).
            assert_eq!(s.run_pending().fired, 0);
            s
        });
        rows.push(("cronlane one-shot (on the timeline)".into(), n, b));
        let b = per_task(n, |n| {
            let s = build();
            for _ in 0..n {
                s.add(once.clone()).run(|| {}).expect("registered");
            }
            s
        });
        rows.push(("cronlane one-shot (still in intake)".into(), n, b));
        let cron = Schedule::cron("*/5 * * * *").expect("valid cron");
        let b = per_task(n, |n| {
            let s = build();
            for _ in 0..n {
                s.add(cron.clone()).run(|| {}).expect("registered");
            }
            assert_eq!(s.run_pending().fired, 0);
            s
        });
        rows.push(("cronlane cron, shared parsed expr".into(), n, b));
        let b = per_task(n, |n| {
            let s = build();
            for _ in 0..n {
                let cron = Schedule::cron("*/5 * * * *").expect("valid cron");
                s.add(cron).run(|| {}).expect("registered");
            }
            assert_eq!(s.run_pending().fired, 0);
            s
        });
        rows.push(("cronlane cron, parsed per task".into(), n, b));
    }

    {
        // The bench file's baseline: Mutex<BinaryHeap> of (at, id, period, Box<dyn Fn>).
        type Job = Box<dyn Fn() + Send + Sync>;
        let b = per_task(n, |n| {
            let h = std::sync::Mutex::new(std::collections::BinaryHeap::new());
            for i in 0..n as u64 {
                let job: Job = Box::new(|| {});
                h.lock()
                    .expect("lock")
                    .push((std::cmp::Reverse((i64::MAX, i, 0i64)), SortIgnore(job)));
            }
            h
        });
        rows.push(("Mutex<BinaryHeap> baseline".into(), n, b));
    }

    {
        use clokwerk::{Interval, Job as _, Scheduler};
        let b = per_task(n, |n| {
            let mut s = Scheduler::with_tz(Utc);
            for _ in 0..n {
                s.every(Interval::Weeks(52)).once().run(|| {});
            }
            s
        });
        rows.push(("clokwerk every(52w).once()".into(), n, b));
    }

    {
        use job_scheduler_ng::{Job, JobScheduler, Schedule};
        let cron: Schedule = "0 0 0 1 1 * 2099".parse().expect("valid cron");
        let b = per_task(n, |n| {
            let mut s = JobScheduler::new();
            for _ in 0..n {
                s.add(Job::new(cron.clone(), || {}));
            }
            s
        });
        rows.push(("job_scheduler_ng cron (cloned schedule)".into(), n, b));
    }

    {
        use tokio_cron_scheduler::{Job, JobScheduler};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let far = Duration::from_secs(100 * 365 * 24 * 3600);
        let b = per_task(small, |n| {
            rt.block_on(async {
                let s = JobScheduler::new().await.expect("scheduler");
                for _ in 0..n {
                    let job = Job::new_one_shot(far, |_id, _l| {}).expect("job");
                    s.add(job).await.expect("added");
                }
                s
            })
        });
        rows.push(("tokio-cron-scheduler one-shot".into(), small, b));
    }

    {
        use delay_timer::prelude::*;
        let b = per_task(small, |n| {
            let timer = DelayTimerBuilder::default().build();
            for i in 0..n {
                let task = TaskBuilder::default()
                    .set_task_id(i as u64)
                    .set_frequency_once_by_seconds(100 * 365 * 24 * 3600)
                    .spawn_routine(|| {})
                    .expect("task");
                timer.add_task(task).expect("added");
            }
            // add_task hands the task to the timer's thread; let it settle.
            std::thread::sleep(Duration::from_secs(2));
            timer
        });
        rows.push(("delay_timer once (after 2 s settle)".into(), small, b));
    }

    println!("| scheduler / task kind | tasks | heap bytes per task |");
    println!("| --- | ---: | ---: |");
    for (name, n, b) in rows {
        println!("| {name} | {n} | {b:.1} |");
    }
}

/// Lets a boxed closure ride in a heap tuple without being compared.
struct SortIgnore<T>(T);
impl<T> PartialEq for SortIgnore<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for SortIgnore<T> {}
impl<T> PartialOrd for SortIgnore<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for SortIgnore<T> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}
