//! Engine benchmarks: registration, dispatch, recurring reschedule and removal,
//! for cronlane and for a plain `Mutex<BinaryHeap>` baseline written here, in
//! the same run. Every group reports `Throughput::Elements` (tasks per second).
//!
//! Set-up (building a scheduler, registering the tasks to fire or remove) and
//! tear-down (dropping it) are kept out of the timed part with `iter_custom`;
//! on two threads a `Barrier` lines the threads up and only the contended part
//! (from the start barrier to the end barrier) is timed.
//!
//! Run: `cargo bench --bench engine` (see BENCHMARKS.md for the full command).

use chrono::{DateTime, Utc};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use cronlane::{Dispatcher, ManualClock, Schedule, Scheduler};
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashSet};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

/// Task counts.
const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];
/// The cron expression of the cron cases (every 5 minutes).
const CRON: &str = "*/5 * * * *";

/// What every dispatch callback does: one atomic increment. A static, so the
/// closure captures nothing and the measured cost is the engine's.
static FIRED: AtomicU64 = AtomicU64::new(0);

fn t0() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().expect("valid instant")
}

/// Far enough that nothing registered for it fires during a bench.
fn far_future() -> DateTime<Utc> {
    "2200-01-01T00:00:00Z".parse().expect("valid instant")
}

fn scheduler() -> (Scheduler, ManualClock) {
    let clock = ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .dispatcher(Dispatcher::default())
        .build();
    (s, clock)
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, n: usize) {
    group.throughput(Throughput::Elements(n as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(if n >= 1_000_000 { 10 } else { 20 });
}

// ---------------------------------------------------------------------------
// The plain baseline: a Mutex<BinaryHeap> scheduler with a pop-due loop.
// ---------------------------------------------------------------------------

type Job = Box<dyn Fn() + Send + Sync>;

/// One heap entry; ordered so the `BinaryHeap` (a max-heap) pops the earliest.
struct Entry {
    at: i64,
    id: u64,
    /// 0 for a one-shot.
    period: i64,
    job: Job,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.id) == (other.at, other.id)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.at, other.id).cmp(&(self.at, self.id))
    }
}

/// The simplest thread-safe scheduler one would write: register = lock +
/// push; dispatch = lock, pop every due entry, unlock, run them, push the
/// recurring ones back (lock + push). Removal is lazy (a tombstone set checked
/// at fire time), the usual way with a binary heap, which has no removal by key.
#[derive(Default)]
struct HeapScheduler {
    heap: Mutex<BinaryHeap<Entry>>,
    next_id: AtomicU64,
    removed: Mutex<HashSet<u64>>,
}

impl HeapScheduler {
    fn add(&self, at: i64, period: i64, job: Job) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            at,
            id,
            period,
            job,
        };
        self.heap.lock().expect("heap lock").push(entry);
        id
    }

    fn remove(&self, id: u64) {
        self.removed.lock().expect("tombstone lock").insert(id);
    }

    fn run_pending(&self, now: i64) -> usize {
        let mut due = Vec::new();
        {
            let mut heap = self.heap.lock().expect("heap lock");
            while heap.peek().is_some_and(|e| e.at <= now) {
                due.extend(heap.pop());
            }
        }
        let mut fired = 0;
        let check_removed = !self.removed.lock().expect("tombstone lock").is_empty();
        for mut e in due {
            if check_removed && self.removed.lock().expect("tombstone lock").remove(&e.id) {
                continue;
            }
            (e.job)();
            fired += 1;
            if e.period > 0 {
                e.at += e.period;
                self.heap.lock().expect("heap lock").push(e);
            }
        }
        fired
    }
}

const SEC: i64 = 1_000_000_000;

fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().expect("in range")
}

// ---------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------

/// What one registration case registers.
#[derive(Clone, Copy)]
enum Kind {
    /// Anonymous one-shot, far future, pre-built schedule cloned.
    Once,
    /// Anonymous cron task, pre-built schedule cloned.
    Cron,
    /// Anonymous cron task, expression parsed per registration.
    CronParse,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Once => "once",
            Kind::Cron => "cron",
            Kind::CronParse => "cron_parse",
        }
    }
}

fn register_n(s: &Scheduler, kind: Kind, n: usize, once: &Schedule, cron: &Schedule) {
    match kind {
        Kind::Once => {
            for _ in 0..n {
                black_box(s.add(once.clone()).run(|| {}).expect("registered"));
            }
        }
        Kind::Cron => {
            for _ in 0..n {
                black_box(s.add(cron.clone()).run(|| {}).expect("registered"));
            }
        }
        Kind::CronParse => {
            for _ in 0..n {
                let schedule = Schedule::cron(black_box(CRON)).expect("valid cron");
                black_box(s.add(schedule).run(|| {}).expect("registered"));
            }
        }
    }
}

/// Runs `work(thread_index)` on `threads` threads at once and returns the
/// time from the start barrier to the end barrier (only the contended part).
fn timed_on_threads(threads: usize, work: &(dyn Fn(usize) + Sync)) -> Duration {
    if threads == 1 {
        let start = Instant::now();
        work(0);
        return start.elapsed();
    }
    let start_line = Barrier::new(threads + 1);
    let finish_line = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (start_line, finish_line) = (&start_line, &finish_line);
            scope.spawn(move || {
                start_line.wait();
                work(t);
                finish_line.wait();
            });
        }
        start_line.wait();
        let start = Instant::now();
        finish_line.wait();
        start.elapsed()
    })
}

fn bench_register(c: &mut Criterion) {
    let once = Schedule::once(far_future());
    let cron = Schedule::cron(CRON).expect("valid cron");
    for threads in [1usize, 2] {
        let mut group = c.benchmark_group(format!("register/{threads}t"));
        for n in SIZES {
            configure(&mut group, n);
            for kind in [Kind::Once, Kind::Cron, Kind::CronParse] {
                let id = BenchmarkId::new(format!("cronlane_{}", kind.label()), n);
                group.bench_with_input(id, &n, |b, &n| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let (s, _clock) = scheduler();
                            total += timed_on_threads(threads, &|_| {
                                register_n(&s, kind, n / threads, &once, &cron);
                            });
                            drop(s);
                        }
                        total
                    });
                });
            }
            let id = BenchmarkId::new("heap_once", n);
            let at = nanos(far_future());
            group.bench_with_input(id, &n, |b, &n| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let h = HeapScheduler::default();
                        total += timed_on_threads(threads, &|_| {
                            for _ in 0..n / threads {
                                black_box(h.add(at, 0, Box::new(|| {})));
                            }
                        });
                        drop(h);
                    }
                    total
                });
            });
        }
        group.finish();
    }
}

// ---------------------------------------------------------------------------
// Dispatch: N one-shots all due, one run_pending fires them all.
// ---------------------------------------------------------------------------

fn bench_dispatch(c: &mut Criterion) {
    let mut group = c.benchmark_group("dispatch_once");
    for n in SIZES {
        configure(&mut group, n);
        group.bench_with_input(BenchmarkId::new("cronlane", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (s, clock) = scheduler();
                    let base = t0();
                    // Spread over the next second, so they sit on the timeline
                    // (drained by a run_pending when none is due), then all
                    // become due at once.
                    for i in 0..n {
                        let at = base + chrono::Duration::nanoseconds(1 + i as i64);
                        s.add(Schedule::once(at))
                            .run(|| {
                                FIRED.fetch_add(1, Ordering::Relaxed);
                            })
                            .expect("registered");
                    }
                    assert_eq!(s.run_pending().fired, 0);
                    clock.advance(Duration::from_secs(1));
                    let start = Instant::now();
                    let report = s.run_pending();
                    total += start.elapsed();
                    assert_eq!(report.fired, n as u64);
                    drop(s);
                }
                total
            });
        });
        group.bench_with_input(BenchmarkId::new("heap", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let base = nanos(t0());
                for _ in 0..iters {
                    let h = HeapScheduler::default();
                    for i in 0..n {
                        h.add(
                            base + 1 + i as i64,
                            0,
                            Box::new(|| {
                                FIRED.fetch_add(1, Ordering::Relaxed);
                            }),
                        );
                    }
                    let start = Instant::now();
                    let fired = h.run_pending(base + SEC);
                    total += start.elapsed();
                    assert_eq!(fired, n);
                    drop(h);
                }
                total
            });
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// Recurring: N every-1s tasks; advance 1 s; run_pending fires and reschedules
// each. The scheduler is built once per benchmark and reused by every
// iteration (each one advances the clock by one period).
// ---------------------------------------------------------------------------

fn bench_reschedule(c: &mut Criterion) {
    let mut group = c.benchmark_group("reschedule_every");
    for n in SIZES {
        configure(&mut group, n);
        group.bench_with_input(BenchmarkId::new("cronlane", n), &n, |b, &n| {
            let (s, clock) = scheduler();
            let every = Schedule::every(Duration::from_secs(1));
            for _ in 0..n {
                s.add(every.clone())
                    .run(|| {
                        FIRED.fetch_add(1, Ordering::Relaxed);
                    })
                    .expect("registered");
            }
            assert_eq!(s.run_pending().fired, 0);
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    clock.advance(Duration::from_secs(1));
                    let start = Instant::now();
                    let report = s.run_pending();
                    total += start.elapsed();
                    assert_eq!(report.fired, n as u64);
                }
                total
            });
        });
        group.bench_with_input(BenchmarkId::new("heap", n), &n, |b, &n| {
            let h = HeapScheduler::default();
            let mut now = nanos(t0());
            for _ in 0..n {
                h.add(
                    now + SEC,
                    SEC,
                    Box::new(|| {
                        FIRED.fetch_add(1, Ordering::Relaxed);
                    }),
                );
            }
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    now += SEC;
                    let start = Instant::now();
                    let fired = h.run_pending(now);
                    total += start.elapsed();
                    assert_eq!(fired, n);
                }
                total
            });
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// Remove by id: N scheduled one-shots (already on the timeline), remove all.
// ---------------------------------------------------------------------------

fn bench_remove(c: &mut Criterion) {
    let mut group = c.benchmark_group("remove");
    let once = Schedule::once(far_future());
    for n in SIZES {
        configure(&mut group, n);
        group.bench_with_input(BenchmarkId::new("cronlane", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (s, _clock) = scheduler();
                    let ids: Vec<_> = (0..n)
                        .map(|_| s.add(once.clone()).run(|| {}).expect("registered"))
                        .collect();
                    s.run_pending();
                    let start = Instant::now();
                    for id in &ids {
                        s.remove(*id).expect("removed");
                    }
                    total += start.elapsed();
                    assert!(s.is_empty());
                    drop(s);
                }
                total
            });
        });
        group.bench_with_input(BenchmarkId::new("heap_tombstone", n), &n, |b, &n| {
            let at = nanos(far_future());
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let h = HeapScheduler::default();
                    let ids: Vec<_> = (0..n).map(|_| h.add(at, 0, Box::new(|| {}))).collect();
                    let start = Instant::now();
                    for id in &ids {
                        h.remove(*id);
                    }
                    total += start.elapsed();
                    drop(h);
                }
                total
            });
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// Dispatch floor: the same keys and entry size as cronlane's timeline in a
// crossbeam-skiplist base `SkipList`, taken off the front one at a time the
// way cronlane does (one epoch guard, step to the next entry, then remove),
// with no task behind them: the floor of any timeline with one skiplist
// entry per task. Runs after every other bench, so that the epoch garbage it
// leaves is not collected inside a cronlane case.
// ---------------------------------------------------------------------------

type FloorList<V> = crossbeam_skiplist::base::SkipList<(i64, u64), V>;

/// One floor case: each iteration fills a fresh skiplist keyed like
/// cronlane's timeline (untimed), then times taking every entry off the
/// front the way cronlane does (one epoch guard, step to the next entry,
/// then remove), `claim` counting the tasks each removed value yields.
fn floor_case<V: Send + 'static>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    n: usize,
    fill: impl Fn(&FloorList<V>, &crossbeam_epoch::Guard),
    claim: impl Fn(&V) -> usize,
) {
    group.bench_with_input(BenchmarkId::new(name, n), &n, |b, &n| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let list = FloorList::new(crossbeam_epoch::default_collector().clone());
                fill(&list, &crossbeam_epoch::pin());
                let start = Instant::now();
                let mut taken = 0usize;
                {
                    let guard = crossbeam_epoch::pin();
                    let mut cur = list.front(&guard);
                    while let Some(e) = cur {
                        let next = e.next();
                        if e.remove() {
                            taken += claim(e.value());
                        }
                        cur = next;
                    }
                }
                total += start.elapsed();
                assert_eq!(taken, n);
                drop(list);
            }
            total
        });
    });
}

fn bench_dispatch_floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("dispatch_once");
    let base = nanos(t0());
    for n in SIZES {
        configure(&mut group, n);
        // One entry per task, value the size of cronlane's `Slot`.
        floor_case(
            &mut group,
            "skiplist_pop_floor",
            n,
            |list, guard| {
                for i in 0..n as u64 {
                    let key = (base + 1 + i as i64, i << 1);
                    list.insert(key, [i; 3], guard).release(guard);
                }
            },
            |value: &[u64; 3]| {
                FIRED.fetch_add(black_box(value)[0] & 1, Ordering::Relaxed);
                1
            },
        );
        // The same entries in immutable sorted arrays of 1,024 (one skiplist
        // entry per array, keyed by its first instant), each entry pointing
        // at a task-like state word that is claimed with a CAS: the floor of
        // a batch-claimable timeline (BENCHMARKS.md, "Dispatch").
        floor_case(
            &mut group,
            "chunked_claim_floor",
            n,
            |list, guard| {
                for first in (0..n as u64).step_by(1024) {
                    let entries: Vec<(i64, std::sync::Arc<AtomicU64>)> = (first
                        ..(first + 1024).min(n as u64))
                        .map(|i| (base + 1 + i as i64, std::sync::Arc::new(AtomicU64::new(0))))
                        .collect();
                    list.insert((entries[0].0, first), entries, guard)
                        .release(guard);
                }
            },
            |entries: &Vec<(i64, std::sync::Arc<AtomicU64>)>| {
                let mut claimed = 0;
                for (_, state) in entries {
                    if state
                        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        FIRED.fetch_add(1, Ordering::Relaxed);
                        claimed += 1;
                    }
                }
                claimed
            },
        );
        // What a directly addressed id table with arc-swap slots would add
        // per fire: each task's slot cleared with a swap (the chunked floor
        // above plus this is the floor of that design).
        group.bench_with_input(BenchmarkId::new("arcswap_slot_clear", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let slots: Vec<arc_swap::ArcSwapOption<AtomicU64>> = (0..n)
                        .map(|_| arc_swap::ArcSwapOption::from_pointee(AtomicU64::new(0)))
                        .collect();
                    let start = Instant::now();
                    let taken = slots.iter().filter(|s| s.swap(None).is_some()).count();
                    total += start.elapsed();
                    assert_eq!(taken, n);
                    drop(slots);
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_register,
    bench_dispatch,
    bench_reschedule,
    bench_remove,
    bench_dispatch_floor
);
criterion_main!(benches);
