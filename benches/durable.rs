//! Durable tasks on the redb store (issue 14), against raw redb commits of
//! the same record bytes (the bound), in the same run. Every criterion group
//! reports `Throughput::Elements` (tasks, fires or records per second).
//!
//! * `durable_register/single/{1,2}`: named recurring durable tasks, one
//!   `register()` call each, on 1 and 2 threads (a `Barrier` lines them up;
//!   only the contended part is timed). Concurrent calls share commits
//!   (group commit); the tasks per commit of the run are printed.
//! * `durable_register/batch/N`: one `Scheduler::register_all` of N tasks.
//! * `raw_redb/records_per_commit/K`: the store's writes for one task (its
//!   encoded record into `tasks`, its cursor into `cursors`) straight on a
//!   redb `Database`, K tasks per durable commit: K = 1 is the commit-rate
//!   bound, K = 2 the bound of a 2-thread group commit, larger K a batch's.
//! * `durable_fire/{at_most_once,at_least_once,not_durable}/100000`: 100k
//!   recurring tasks due together, one `run_pending` pass (ManualClock).
//! * `raw_redb/cursors_per_commit[_sorted]/100000`: the fire-progress
//!   bound, 100k stored cursors rewritten in one commit.
//! * ratio: single registrations on 1 and 2 threads against raw commits
//!   times the tasks per commit of the same round, in alternating rounds
//!   (printed): the "0.8 x (commits/s x tasks per group commit)".
//! * recovery (100k, 1M tasks: open the store, build the scheduler, register
//!   the handler, which arms every task) and bytes on disk per task: plain
//!   timed runs after the criterion groups (printed; a few runs each).
//!
//! Run: `cargo bench --features redb --bench durable` (BENCHMARKS.md has the
//! full command). `CRONLANE_DURABLE=register,raw,fire,ratio,recovery` picks parts.

use chrono::{DateTime, Utc};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use cronlane::store::{RedbStore, TaskRecord};
use cronlane::{Delivery, Dispatcher, ManualClock, Schedule, Scheduler};
use redb::{ReadableDatabase, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// The cron expression of the registered tasks (every 5 minutes).
const CRON: &str = "*/5 * * * *";

static FIRED: AtomicU64 = AtomicU64::new(0);
static DIRS: AtomicU64 = AtomicU64::new(0);

fn t0() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().expect("valid instant")
}

/// A fresh directory for one store file, removed on drop.
struct TempStore(PathBuf);

impl TempStore {
    fn new(tag: &str) -> TempStore {
        let dir = std::env::temp_dir().join(format!(
            "cronlane-bench-{}-{tag}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempStore(dir.join("tasks.redb"))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A test-mode, inline-dispatch scheduler on `path` with the handler "h"
/// (one atomic increment), and the store's commit counter.
fn durable(path: &Path, clock: &ManualClock) -> (Scheduler, Arc<AtomicU64>) {
    let store = RedbStore::open(path).unwrap();
    let commits = store.commit_counter();
    let s = Scheduler::builder()
        .clock(clock.clone())
        .dispatcher(Dispatcher::inline())
        .test_mode(true)
        .store(store)
        .build();
    s.handler("h", |_ctx| {
        FIRED.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    (s, commits)
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, n: usize) {
    group.throughput(Throughput::Elements(n as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
}

fn wanted(part: &str) -> bool {
    match std::env::var("CRONLANE_DURABLE") {
        Ok(parts) => parts.split(',').any(|p| p == part),
        Err(_) => true,
    }
}

// ---------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------

/// Registrations per thread per timed run of the single-call cases.
const SINGLE: usize = 300;
const BATCHES: [usize; 3] = [1_000, 10_000, 100_000];

fn register(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_register");
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    let cron = Schedule::cron(CRON).unwrap();
    for threads in [1usize, 2] {
        let n = SINGLE * threads;
        configure(&mut group, n);
        let (tasks, commits) = (AtomicU64::new(0), AtomicU64::new(0));
        group.bench_function(BenchmarkId::new("single", threads), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let store = TempStore::new("single");
                    let clock = ManualClock::new(t0());
                    let (s, counter) = durable(store.path(), &clock);
                    let before = counter.load(Ordering::Relaxed);
                    let barrier = Barrier::new(threads + 1);
                    let elapsed = std::thread::scope(|scope| {
                        for t in 0..threads {
                            let (s, barrier, cron) = (&s, &barrier, &cron);
                            scope.spawn(move || {
                                barrier.wait();
                                for i in 0..SINGLE {
                                    s.add(cron.clone())
                                        .name(format!("t{t}-{i}"))
                                        .durable("h")
                                        .register()
                                        .unwrap();
                                }
                                barrier.wait();
                            });
                        }
                        barrier.wait();
                        let start = Instant::now();
                        barrier.wait();
                        start.elapsed()
                    });
                    tasks.fetch_add(n as u64, Ordering::Relaxed);
                    commits.fetch_add(counter.load(Ordering::Relaxed) - before, Ordering::Relaxed);
                    total += elapsed;
                    drop(s);
                }
                total
            })
        });
        let (t, k) = (
            tasks.load(Ordering::Relaxed),
            commits.load(Ordering::Relaxed),
        );
        println!(
            "durable_register/single/{threads}: {t} registrations in {k} commits: {:.2} tasks per group commit",
            t as f64 / k.max(1) as f64
        );
    }
    for n in BATCHES {
        configure(&mut group, n);
        group.bench_function(BenchmarkId::new("batch", n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let store = TempStore::new("batch");
                    let clock = ManualClock::new(t0());
                    let (s, _) = durable(store.path(), &clock);
                    let names: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
                    let start = Instant::now();
                    let ids = s
                        .register_all(
                            names
                                .into_iter()
                                .map(|name| s.add(cron.clone()).name(name).durable("h")),
                        )
                        .unwrap();
                    total += start.elapsed();
                    assert_eq!(ids.len(), n);
                    drop(s);
                }
                total
            })
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// The bound: raw redb commits of the same writes
// ---------------------------------------------------------------------------

const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");
const CURSORS: TableDefinition<&str, i64> = TableDefinition::new("cursors");

/// The record the durable registration cases write for `name`.
fn record(name: String) -> TaskRecord {
    TaskRecord {
        name,
        handler: "h".into(),
        schedule: format!("cron vixie UTC {CRON}"),
        misfire: Default::default(),
        overlap: Default::default(),
        jitter: 0,
        until: None,
        times: None,
        delivery: Delivery::AtLeastOnce,
        paused: false,
        cursor: 1_767_225_899_999_999_999,
        payload: None,
    }
}

/// Commits of `k` records each for the raw redb cases.
fn raw_commits(k: usize) -> usize {
    match k {
        1 | 2 => 200,
        1_000 => 20,
        _ => 1,
    }
}

fn raw(c: &mut Criterion) {
    let mut group = c.benchmark_group("raw_redb");
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    for k in [1usize, 2, 1_000, 10_000, 100_000] {
        let commits = raw_commits(k);
        configure(&mut group, k * commits);
        group.bench_function(BenchmarkId::new("records_per_commit", k), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let store = TempStore::new("raw");
                    let db = redb::Database::create(store.path()).unwrap();
                    let recs: Vec<(String, Vec<u8>, i64)> = (0..k * commits)
                        .map(|i| {
                            let r = record(format!("t{i}"));
                            let bytes = r.encode();
                            (r.name, bytes, r.cursor)
                        })
                        .collect();
                    let start = Instant::now();
                    for chunk in recs.chunks(k) {
                        let txn = db.begin_write().unwrap();
                        {
                            let mut tasks = txn.open_table(TASKS).unwrap();
                            let mut cursors = txn.open_table(CURSORS).unwrap();
                            for (name, bytes, cursor) in chunk {
                                tasks.insert(name.as_str(), bytes.as_slice()).unwrap();
                                cursors.insert(name.as_str(), *cursor).unwrap();
                            }
                        }
                        txn.commit().unwrap();
                    }
                    total += start.elapsed();
                    let read = db.begin_read().unwrap();
                    assert!(read.open_table(TASKS).is_ok());
                }
                total
            })
        });
    }
    // The fire-progress bound: 100k cursor updates (existing rows) in one
    // commit, in the order the tasks were registered and in name order.
    for (case, sorted) in [
        ("cursors_per_commit", false),
        ("cursors_per_commit_sorted", true),
    ] {
        let k = FIRES;
        configure(&mut group, k);
        group.bench_function(BenchmarkId::new(case, k), |b| {
            b.iter_custom(|iters| {
                let store = TempStore::new("rawcur");
                let db = redb::Database::create(store.path()).unwrap();
                let mut names: Vec<String> = (0..k).map(|i| format!("t{i}")).collect();
                let txn = db.begin_write().unwrap();
                {
                    let mut cursors = txn.open_table(CURSORS).unwrap();
                    for name in &names {
                        cursors.insert(name.as_str(), 0).unwrap();
                    }
                }
                txn.commit().unwrap();
                if sorted {
                    names.sort();
                }
                let mut total = Duration::ZERO;
                for it in 0..iters {
                    let start = Instant::now();
                    let txn = db.begin_write().unwrap();
                    {
                        let mut cursors = txn.open_table(CURSORS).unwrap();
                        for name in &names {
                            cursors.insert(name.as_str(), it as i64 + 1).unwrap();
                        }
                    }
                    txn.commit().unwrap();
                    total += start.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// Single registrations against the commit rate, paired in one loop
// ---------------------------------------------------------------------------

/// Raw redb: `commits` commits of `k` records; commits per second.
fn raw_rate(k: usize, commits: usize) -> f64 {
    let store = TempStore::new("ratio-raw");
    let db = redb::Database::create(store.path()).unwrap();
    let recs: Vec<TaskRecord> = (0..k * commits).map(|i| record(format!("t{i}"))).collect();
    let start = Instant::now();
    for chunk in recs.chunks(k) {
        let txn = db.begin_write().unwrap();
        {
            let mut tasks = txn.open_table(TASKS).unwrap();
            let mut cursors = txn.open_table(CURSORS).unwrap();
            for r in chunk {
                tasks
                    .insert(r.name.as_str(), r.encode().as_slice())
                    .unwrap();
                cursors.insert(r.name.as_str(), r.cursor).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    commits as f64 / start.elapsed().as_secs_f64()
}

/// cronlane: `per` single `register()` calls on each of `threads` threads;
/// registrations per second and tasks per commit.
fn single_rate(threads: usize, per: usize) -> (f64, f64) {
    let cron = Schedule::cron(CRON).unwrap();
    let store = TempStore::new("ratio");
    let clock = ManualClock::new(t0());
    let (s, counter) = durable(store.path(), &clock);
    let before = counter.load(Ordering::Relaxed);
    let barrier = Barrier::new(threads + 1);
    let elapsed = std::thread::scope(|scope| {
        for t in 0..threads {
            let (s, barrier, cron) = (&s, &barrier, &cron);
            scope.spawn(move || {
                barrier.wait();
                for i in 0..per {
                    s.add(cron.clone())
                        .name(format!("t{t}-{i}"))
                        .durable("h")
                        .register()
                        .unwrap();
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    });
    let commits = counter.load(Ordering::Relaxed) - before;
    let n = (threads * per) as f64;
    (n / elapsed.as_secs_f64(), n / commits.max(1) as f64)
}

/// Rounds of (raw 1-record commits, cronlane on 1 thread, raw 2-record
/// commits, cronlane on 2 threads), so that each ratio compares
/// neighbours in time on a noisy disk.
fn ratio() {
    const ROUNDS: usize = 7;
    const PER: usize = 150;
    let mut r1 = Vec::new();
    let mut r2 = Vec::new();
    for round in 0..ROUNDS {
        let raw1 = raw_rate(1, PER);
        let (one, g1) = single_rate(1, PER);
        let raw2 = raw_rate(2, PER);
        let (two, g2) = single_rate(2, PER);
        let (b1, b2) = (raw1 * g1, raw2 * g2);
        println!(
            "ratio round {round}: raw 1-record commits {raw1:.0}/s; 1 thread {one:.0} reg/s ({g1:.2} tasks/commit) = {:.2} x bound; raw 2-record commits {raw2:.0}/s; 2 threads {two:.0} reg/s ({g2:.2} tasks/commit) = {:.2} x bound",
            one / b1,
            two / b2
        );
        r1.push(one / b1);
        r2.push(two / b2);
    }
    r1.sort_by(f64::total_cmp);
    r2.sort_by(f64::total_cmp);
    println!(
        "ratio median over {ROUNDS} rounds: 1 thread {:.2} x (commits/s x tasks per commit), 2 threads {:.2} x (target 0.8)",
        r1[ROUNDS / 2],
        r2[ROUNDS / 2]
    );
}

// ---------------------------------------------------------------------------
// Fires with durable progress
// ---------------------------------------------------------------------------

const FIRES: usize = 100_000;
const PERIOD: Duration = Duration::from_secs(60);

fn fire(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_fire");
    group.measurement_time(Duration::from_secs(5));
    group.warm_up_time(Duration::from_secs(1));
    configure(&mut group, FIRES);
    let every = Schedule::every(PERIOD).starting_at(t0() + PERIOD);
    for (case, delivery) in [
        ("at_most_once", Some(Delivery::AtMostOnce)),
        ("at_least_once", Some(Delivery::AtLeastOnce)),
        ("not_durable", None),
    ] {
        let store = TempStore::new("fire");
        let clock = ManualClock::new(t0());
        let (s, counter) = match delivery {
            Some(d) => {
                let (s, counter) = durable(store.path(), &clock);
                for chunk in (0..FIRES).collect::<Vec<_>>().chunks(100_000) {
                    s.register_all(chunk.iter().map(|i| {
                        s.add(every.clone())
                            .name(format!("t{i}"))
                            .durable("h")
                            .delivery(d)
                    }))
                    .unwrap();
                }
                (s, counter)
            }
            None => {
                let s = Scheduler::builder()
                    .clock(clock.clone())
                    .dispatcher(Dispatcher::inline())
                    .build();
                for i in 0..FIRES {
                    s.add(every.clone())
                        .name(format!("t{i}"))
                        .run(|| {
                            FIRED.fetch_add(1, Ordering::Relaxed);
                        })
                        .unwrap();
                }
                (s, Arc::new(AtomicU64::new(0)))
            }
        };
        let (passes, commits) = (AtomicU64::new(0), AtomicU64::new(0));
        group.bench_function(BenchmarkId::new(case, FIRES), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    clock.advance(PERIOD);
                    let before = counter.load(Ordering::Relaxed);
                    let start = Instant::now();
                    let report = s.run_pending();
                    total += start.elapsed();
                    assert_eq!(report.fired as usize, FIRES);
                    passes.fetch_add(1, Ordering::Relaxed);
                    commits.fetch_add(counter.load(Ordering::Relaxed) - before, Ordering::Relaxed);
                }
                total
            })
        });
        println!(
            "durable_fire/{case}/{FIRES}: {:.2} store commits per pass",
            commits.load(Ordering::Relaxed) as f64 / passes.load(Ordering::Relaxed).max(1) as f64
        );
        drop(s);
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// Recovery and bytes on disk (plain timed runs)
// ---------------------------------------------------------------------------

fn recovery() {
    let cron = Schedule::cron(CRON).unwrap();
    let sizes: Vec<usize> = std::env::var("CRONLANE_RECOVERY")
        .map(|v| v.split(',').map(|n| n.parse().unwrap()).collect())
        .unwrap_or_else(|_| vec![100_000, 1_000_000]);
    for n in sizes {
        let runs = if n >= 1_000_000 { 3 } else { 5 };
        let store = TempStore::new("recovery");
        let clock = ManualClock::new(t0());
        {
            let (s, _) = durable(store.path(), &clock);
            for start in (0..n).step_by(100_000) {
                s.register_all(
                    (start..(start + 100_000).min(n))
                        .map(|i| s.add(cron.clone()).name(format!("t{i:07}")).durable("h")),
                )
                .unwrap();
            }
        }
        let size = std::fs::metadata(store.path()).unwrap().len();
        // Down for an hour: every task missed fires (misfire policy: the
        // default, fire once).
        clock.advance(Duration::from_secs(3600));
        let mut times = Vec::new();
        for _ in 0..runs {
            let start = Instant::now();
            let store_ = RedbStore::open(store.path()).unwrap();
            let opened = start.elapsed();
            let s = Scheduler::builder()
                .clock(clock.clone())
                .dispatcher(Dispatcher::inline())
                .test_mode(true)
                .store(store_)
                .build();
            let built = start.elapsed();
            let armed = s
                .handler("h", |_ctx| {
                    FIRED.fetch_add(1, Ordering::Relaxed);
                })
                .unwrap();
            let elapsed = start.elapsed();
            assert_eq!(armed, n);
            println!(
                "recovery/{n} run: open (load every record) {:.3} s, build {:.3} s, handler (arm) {:.3} s",
                opened.as_secs_f64(),
                (built - opened).as_secs_f64(),
                (elapsed - built).as_secs_f64()
            );
            times.push(elapsed);
            drop(s);
        }
        times.sort();
        println!(
            "recovery/{n}: open + build + handler (arms every task): min {:.3} s, median {:.3} s, max {:.3} s over {runs} runs ({:.0} tasks/s at the median)",
            times[0].as_secs_f64(),
            times[runs / 2].as_secs_f64(),
            times[runs - 1].as_secs_f64(),
            n as f64 / times[runs / 2].as_secs_f64()
        );
        let mut db = redb::Database::create(store.path()).unwrap();
        db.compact().unwrap();
        drop(db);
        let compacted = std::fs::metadata(store.path()).unwrap().len();
        println!(
            "bytes_on_disk/{n}: {size} B as written by register_all batches of 100k = {:.1} B/task; after redb compact(): {compacted} B = {:.1} B/task (record {} B + cursor 8 B + name key twice)",
            size as f64 / n as f64,
            compacted as f64 / n as f64,
            record("t0000000".into()).encode().len()
        );
    }
}

/// Instruction counts (callgrind) of durable fires: `CRONLANE_DURABLE=profile`
/// with `CRONLANE_N` tasks (default 20,000), `CRONLANE_PASSES` passes
/// (default 2) and `CRONLANE_DELIVERY=most|least`; no criterion. Per fire
/// = (Ir(4 passes) - Ir(2 passes)) / (2 N) (`scripts/callgrind_durable.sh`).
fn profile() {
    let var = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (n, passes) = (var("CRONLANE_N", 20_000), var("CRONLANE_PASSES", 2));
    let delivery = match std::env::var("CRONLANE_DELIVERY").as_deref() {
        Ok("least") => Delivery::AtLeastOnce,
        _ => Delivery::AtMostOnce,
    };
    let store = TempStore::new("profile");
    let clock = ManualClock::new(t0());
    let (s, _) = durable(store.path(), &clock);
    let every = Schedule::every(PERIOD).starting_at(t0() + PERIOD);
    s.register_all((0..n).map(|i| {
        s.add(every.clone())
            .name(format!("t{i}"))
            .durable("h")
            .delivery(delivery)
    }))
    .unwrap();
    for _ in 0..passes {
        clock.advance(PERIOD);
        assert_eq!(s.run_pending().fired as usize, n);
    }
}

fn main() {
    if std::env::var("CRONLANE_DURABLE").as_deref() == Ok("profile") {
        return profile();
    }
    let mut c = Criterion::default().configure_from_args();
    if wanted("register") {
        register(&mut c);
    }
    if wanted("raw") {
        raw(&mut c);
    }
    if wanted("fire") {
        fire(&mut c);
    }
    c.final_summary();
    if wanted("ratio") {
        ratio();
    }
    if wanted("recovery") {
        recovery();
    }
}
