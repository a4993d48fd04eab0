//! cronlane's durable store against the same record writes through SQLite
//! (WAL, `synchronous=FULL`) and through raw redb, in the same run. Every
//! group reports `Throughput::Elements` (records, tasks or fires per second).
//!
//! * `durable_store/{sqlite,redb}/records_per_commit/K`: K tasks' writes
//!   (the encoded `TaskRecord` into `tasks`, the cursor into `cursors`,
//!   keeping the larger cursor) per durable commit: one transaction per
//!   commit, the grouping cronlane's committer makes (K = 1: one caller;
//!   K = 2: two threads' group commit; larger K: a batch registration).
//! * `durable_store/{sqlite,redb}/cursors_per_commit/100000`: one pass's fire
//!   progress, 100k stored cursors raised in one commit.
//! * `durable_store/cronlane/...`: the same work through cronlane's API:
//!   `register()` on one thread, `register_all` of K tasks, and one
//!   `run_pending` pass firing 100k recurring `AtMostOnce` tasks.
//!
//! Run: `cd peer-benches && cargo bench --bench durable`.

use chrono::{DateTime, Utc};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use cronlane::store::{RedbStore, TaskRecord};
use cronlane::{Delivery, Dispatcher, ManualClock, Schedule, Scheduler};
use redb::TableDefinition;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CRON: &str = "*/5 * * * *";
const FIRES: usize = 100_000;
const PERIOD: Duration = Duration::from_secs(60);

static FIRED: AtomicU64 = AtomicU64::new(0);
static DIRS: AtomicU64 = AtomicU64::new(0);

fn t0() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().expect("valid instant")
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "cronlane-peer-{}-{tag}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, n: usize) {
    group.throughput(Throughput::Elements(n as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
}

/// The record cronlane writes for a task registered with `CRON`.
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

fn records(n: usize) -> Vec<(String, Vec<u8>, i64)> {
    (0..n)
        .map(|i| {
            let r = record(format!("t{i}"));
            let bytes = r.encode();
            (r.name, bytes, r.cursor)
        })
        .collect()
}

/// Commits per timed run for K records per commit.
fn commits_for(k: usize) -> usize {
    match k {
        1 | 2 => 200,
        1_000 => 20,
        _ => 1,
    }
}

const KS: [usize; 4] = [1, 2, 1_000, 100_000];

// --- SQLite (WAL, synchronous=FULL) ----------------------------------------

fn sqlite_open(path: &Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(path).unwrap();
    db.pragma_update(None, "journal_mode", "WAL").unwrap();
    db.pragma_update(None, "synchronous", "FULL").unwrap();
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS tasks (name TEXT PRIMARY KEY, record BLOB NOT NULL) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, cursor INTEGER NOT NULL) WITHOUT ROWID;",
    )
    .unwrap();
    db
}

const SQL_PUT: &str = "INSERT OR REPLACE INTO tasks (name, record) VALUES (?1, ?2)";
const SQL_RAISE: &str = "INSERT INTO cursors (name, cursor) VALUES (?1, ?2)
     ON CONFLICT(name) DO UPDATE SET cursor = max(cursor, excluded.cursor)";

fn sqlite_records(k: usize, commits: usize) -> Duration {
    let dir = TempDir::new("sqlite");
    let mut db = sqlite_open(&dir.file("tasks.sqlite"));
    let recs = records(k * commits);
    let start = Instant::now();
    for chunk in recs.chunks(k) {
        let txn = db.transaction().unwrap();
        {
            let mut put = txn.prepare_cached(SQL_PUT).unwrap();
            let mut raise = txn.prepare_cached(SQL_RAISE).unwrap();
            for (name, bytes, cursor) in chunk {
                put.execute(rusqlite::params![name, bytes]).unwrap();
                raise.execute(rusqlite::params![name, cursor]).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    start.elapsed()
}

fn sqlite_cursors(iters: u64) -> Duration {
    let dir = TempDir::new("sqlite-cur");
    let mut db = sqlite_open(&dir.file("tasks.sqlite"));
    let names: Vec<String> = (0..FIRES).map(|i| format!("t{i}")).collect();
    let seed = |db: &mut rusqlite::Connection, v: i64| {
        let txn = db.transaction().unwrap();
        {
            let mut raise = txn.prepare_cached(SQL_RAISE).unwrap();
            for name in &names {
                raise.execute(rusqlite::params![name, v]).unwrap();
            }
        }
        txn.commit().unwrap();
    };
    seed(&mut db, 0);
    let mut total = Duration::ZERO;
    for it in 0..iters {
        let start = Instant::now();
        seed(&mut db, it as i64 + 1);
        total += start.elapsed();
    }
    total
}

// --- raw redb ----------------------------------------------------------------

const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");
const CURSORS: TableDefinition<&str, i64> = TableDefinition::new("cursors");

fn redb_records(k: usize, commits: usize) -> Duration {
    let dir = TempDir::new("redb");
    let db = redb::Database::create(dir.file("tasks.redb")).unwrap();
    let recs = records(k * commits);
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
    start.elapsed()
}

fn redb_cursors(iters: u64) -> Duration {
    let dir = TempDir::new("redb-cur");
    let db = redb::Database::create(dir.file("tasks.redb")).unwrap();
    let names: Vec<String> = (0..FIRES).map(|i| format!("t{i}")).collect();
    let seed = |v: i64| {
        let txn = db.begin_write().unwrap();
        {
            let mut cursors = txn.open_table(CURSORS).unwrap();
            for name in &names {
                cursors.insert(name.as_str(), v).unwrap();
            }
        }
        txn.commit().unwrap();
    };
    seed(0);
    let mut total = Duration::ZERO;
    for it in 0..iters {
        let start = Instant::now();
        seed(it as i64 + 1);
        total += start.elapsed();
    }
    total
}

// --- cronlane ------------------------------------------------------------------

fn lane(path: &Path, clock: &ManualClock) -> Scheduler {
    let s = Scheduler::builder()
        .clock(clock.clone())
        .dispatcher(Dispatcher::inline())
        .test_mode(true)
        .store(RedbStore::open(path).unwrap())
        .build();
    s.handler("h", |_ctx| {
        FIRED.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    s
}

fn lane_single(n: usize) -> Duration {
    let dir = TempDir::new("lane");
    let clock = ManualClock::new(t0());
    let s = lane(&dir.file("tasks.redb"), &clock);
    let cron = Schedule::cron(CRON).unwrap();
    let start = Instant::now();
    for i in 0..n {
        s.add(cron.clone())
            .name(format!("t{i}"))
            .durable("h")
            .register()
            .unwrap();
    }
    start.elapsed()
}

fn lane_batch(n: usize) -> Duration {
    let dir = TempDir::new("lane");
    let clock = ManualClock::new(t0());
    let s = lane(&dir.file("tasks.redb"), &clock);
    let cron = Schedule::cron(CRON).unwrap();
    let names: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let start = Instant::now();
    s.register_all(
        names
            .into_iter()
            .map(|name| s.add(cron.clone()).name(name).durable("h")),
    )
    .unwrap();
    let elapsed = start.elapsed();
    drop(s);
    elapsed
}

// --- the groups ------------------------------------------------------------------

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_store");
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    for k in KS {
        let commits = commits_for(k);
        configure(&mut group, k * commits);
        group.bench_function(BenchmarkId::new("sqlite/records_per_commit", k), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| sqlite_records(k, commits)).sum())
        });
        group.bench_function(BenchmarkId::new("redb/records_per_commit", k), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| redb_records(k, commits)).sum())
        });
        if k == 1 {
            group.bench_function(BenchmarkId::new("cronlane/register", 1), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| lane_single(commits)).sum())
            });
        } else if k > 2 {
            let n = k * commits;
            configure(&mut group, n);
            group.bench_function(BenchmarkId::new("cronlane/register_all", n), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| lane_batch(n)).sum())
            });
        }
    }
    configure(&mut group, FIRES);
    group.bench_function(BenchmarkId::new("sqlite/cursors_per_commit", FIRES), |b| {
        b.iter_custom(sqlite_cursors)
    });
    group.bench_function(BenchmarkId::new("redb/cursors_per_commit", FIRES), |b| {
        b.iter_custom(redb_cursors)
    });
    {
        let dir = TempDir::new("lane-fire");
        let clock = ManualClock::new(t0());
        let s = lane(&dir.file("tasks.redb"), &clock);
        let every = Schedule::every(PERIOD).starting_at(t0() + PERIOD);
        s.register_all((0..FIRES).map(|i| {
            s.add(every.clone())
                .name(format!("t{i}"))
                .durable("h")
                .delivery(Delivery::AtMostOnce)
        }))
        .unwrap();
        group.bench_function(BenchmarkId::new("cronlane/fire_at_most_once", FIRES), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    clock.advance(PERIOD);
                    let start = Instant::now();
                    let report = s.run_pending();
                    total += start.elapsed();
                    assert_eq!(report.fired as usize, FIRES);
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
