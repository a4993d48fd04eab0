//! Cluster benchmarks (BENCHMARKS.md, "Cluster mode"): claims/s and
//! fires/s across 1, 3 and 5 nodes with every task sharing one second, fire
//! lag p50/p99 against a single node without a database, and takeover
//! latency after a `kill -9` with the default lease (15 s), heartbeat (3 s)
//! and sweep (5 s).
//!
//! `cronlane-pg-bench [--tasks 5000] [--secs 10] [--nodes 1,3,5]
//! [--takeover] [--url URL]`

use chrono::Utc;
use cronlane::store::{Op, Store, TaskRecord};
use cronlane::{Delivery, Misfire, Overlap, Scheduler};
use cronlane_pg::PgStore;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

type Lags = Arc<Mutex<Vec<i64>>>;

/// `(scheduled second, lag)` of every measured fire, for
/// `CRONLANE_BENCH_SECONDS=1` (a per-second breakdown).
static PER_SECOND: Mutex<Vec<(i64, i64)>> = Mutex::new(Vec::new());

fn pct(v: &mut [i64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1e6
}

/// Records the lag of every fire scheduled in `FROM..TO` (ns): the
/// measured seconds, not the warm-up nor the shutdown.
/// The measured window (ns), set once every node has started.
static FROM: AtomicI64 = AtomicI64::new(i64::MAX);
static TO: AtomicI64 = AtomicI64::new(i64::MAX);

fn recorder(s: &Scheduler, lags: &Lags) {
    let lags = lags.clone();
    s.handler("b", move |ctx| {
        let at = ctx.scheduled().timestamp_nanos_opt().unwrap_or(0);
        if at < FROM.load(Ordering::Acquire) || at >= TO.load(Ordering::Acquire) {
            return;
        }
        let lag = (ctx.started() - ctx.scheduled())
            .num_microseconds()
            .unwrap_or(0)
            * 1000;
        lags.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(lag);
        if std::env::var_os("CRONLANE_BENCH_SECONDS").is_some() {
            PER_SECOND
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((ctx.scheduled().timestamp(), lag));
        }
    })
    .expect("handler");
}

fn client(url: &str) -> (tokio::runtime::Runtime, tokio_postgres::Client) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (c, conn) = rt
        .block_on(tokio_postgres::connect(url, tokio_postgres::NoTls))
        .expect("connect");
    rt.spawn(async move {
        let _ = conn.await;
    });
    (rt, c)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = arg(
        &args,
        "--url",
        &std::env::var("CRONLANE_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
    );
    let tasks: usize = arg(&args, "--tasks", "5000").parse().unwrap_or(5000);
    let secs: u64 = arg(&args, "--secs", "10").parse().unwrap_or(10);
    let nodes: Vec<usize> = arg(&args, "--nodes", "1,3,5")
        .split(',')
        .filter_map(|n| n.parse().ok())
        .collect();
    let (rt, db) = client(&url);
    // Baseline: one node, no database, the same tasks and callback.
    {
        let lags: Lags = Arc::default();
        let s = Scheduler::builder().build();
        let start = Utc::now() + chrono::Duration::seconds(2);
        let start = chrono::DateTime::from_timestamp(start.timestamp(), 0).unwrap_or(start);
        for i in 0..tasks {
            let lags = lags.clone();
            s.add(cronlane::Schedule::every(Duration::from_secs(1)).starting_at(start))
                .name(format!("b{i}"))
                .run_with_context(move |ctx: &cronlane::FireContext<'_>| {
                    let lag = (ctx.started() - ctx.scheduled())
                        .num_microseconds()
                        .unwrap_or(0)
                        * 1000;
                    lags.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(lag);
                })
                .expect("task");
        }
        let r = s.start().expect("start");
        std::thread::sleep(Duration::from_secs(secs + 2));
        let _ = r.shutdown(Duration::from_secs(5));
        let mut l = lags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let n = l.len();
        println!(
            "baseline (no database, 1 node): {tasks} tasks sharing each second, {n} fires, lag p50 {:.2} ms p99 {:.2} ms",
            pct(&mut l, 0.5),
            pct(&mut l, 0.99)
        );
    }
    for &n in &nodes {
        let schema = format!("cronlane_bench_{}_{n}", std::process::id());
        let _ = rt.block_on(db.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")));
        // Every task fires on each whole second from when the nodes run
        // (the first fire after start-up is the misfire policy's one).
        let base = Utc::now().timestamp() * 1_000_000_000;
        FROM.store(i64::MAX, Ordering::Release);
        {
            let w = PgStore::builder(&url)
                .schema(schema.clone())
                .connect()
                .expect("connect");
            let ops = (0..tasks)
                .map(|i| {
                    Op::Put(TaskRecord {
                        name: format!("b{i:05}"),
                        handler: "b".into(),
                        schedule: format!("every 1000000000 from {base}"),
                        misfire: Misfire::FireOnce,
                        overlap: Overlap::Skip,
                        jitter: 0,
                        until: None,
                        times: None,
                        delivery: Delivery::AtLeastOnce,
                        paused: false,
                        cursor: base - 1,
                        payload: None,
                    })
                })
                .collect();
            let t = Instant::now();
            w.write(ops).expect("definitions");
            if std::env::var_os("CRONLANE_BENCH_SECONDS").is_some() {
                println!("  definitions written in {:?}", t.elapsed());
            }
            let t = Instant::now();
            drop(w);
            if std::env::var_os("CRONLANE_BENCH_SECONDS").is_some() {
                println!("  writer left in {:?}", t.elapsed());
            }
        }
        let lags: Lags = Arc::default();
        let mut handles = Vec::new();
        let scheds: Vec<Scheduler> = (0..n)
            .map(|_| {
                let st = PgStore::builder(&url)
                    .schema(schema.clone())
                    .connect()
                    .expect("connect");
                handles.push(st.handle());
                let s = Scheduler::builder().store(st).build();
                recorder(&s, &lags);
                s
            })
            .collect();
        let runners: Vec<_> = scheds.iter().map(|s| s.start().expect("start")).collect();
        let anchor = (Utc::now().timestamp() + 1) * 1_000_000_000;
        if std::env::var_os("CRONLANE_BENCH_SECONDS").is_some() {
            println!(
                "  started {:.2} s before the first instant",
                (anchor - Utc::now().timestamp_nanos_opt().unwrap_or(0)) as f64 / 1e9
            );
        }
        // Measure whole seconds after a warm-up second.
        let from = anchor + 2_000_000_000;
        let to = from + secs as i64 * 1_000_000_000;
        TO.store(to, Ordering::Release);
        FROM.store(from, Ordering::Release);
        let wait = to - Utc::now().timestamp_nanos_opt().unwrap_or(0) + 1_500_000_000;
        let claims_before: u64 = 0;
        std::thread::sleep(Duration::from_nanos(wait.max(0) as u64));
        for r in runners {
            let _ = r.shutdown(Duration::from_secs(10));
        }
        let claims: u64 = handles
            .iter()
            .map(|h| {
                let s = h.stats();
                s.claims_won + s.claims_lost
            })
            .sum::<u64>()
            - claims_before;
        if std::env::var_os("CRONLANE_BENCH_SECONDS").is_some() {
            for h in &handles {
                println!("  {:?}", h.stats());
            }
        }
        let elapsed = (to - anchor) as f64 / 1e9 + 1.5;
        drop(scheds);
        let done: i64 = rt
            .block_on(db.query_one(
                &format!(
                    "SELECT count(*) FROM {schema}.fire WHERE state = 'done' \
                     AND fire_time >= to_timestamp({}) AND fire_time < to_timestamp({})",
                    from / 1_000_000_000,
                    to / 1_000_000_000
                ),
                &[],
            ))
            .map(|r| r.get(0))
            .unwrap_or(-1);
        let mut l = lags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let expected = tasks as i64 * secs as i64;
        println!(
            "{n} node(s), {tasks} tasks sharing each second: {:.0} fires/s ({done}/{expected} fires done), \
             {:.0} claim attempts/s (all nodes, whole run), lag p50 {:.2} ms p99 {:.2} ms",
            done as f64 / secs as f64,
            claims as f64 / elapsed,
            pct(&mut l, 0.5),
            pct(&mut l, 0.99)
        );
        let mut per = std::mem::take(
            &mut *PER_SECOND
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        per.sort_unstable();
        for chunk in per.chunk_by(|a, b| a.0 == b.0) {
            let mut l: Vec<i64> = chunk.iter().map(|p| p.1).collect();
            println!(
                "  second {}: {} fires, lag min {:.2} p50 {:.2} p99 {:.2} max {:.2} ms",
                chunk[0].0,
                l.len(),
                pct(&mut l, 0.0),
                pct(&mut l, 0.5),
                pct(&mut l, 0.99),
                pct(&mut l, 1.0)
            );
        }
        if std::env::var("CRONLANE_BENCH_KEEP").is_err() {
            let _ =
                rt.block_on(db.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")));
        }
    }
    if args.iter().any(|a| a == "--takeover") {
        takeover(&url, &rt, &db);
    }
}

/// Kills the owner of a running fire (`kill -9`) and times, by database
/// time, until another node re-claimed it.
fn takeover(url: &str, rt: &tokio::runtime::Runtime, db: &tokio_postgres::Client) {
    let schema = format!("cronlane_bench_to_{}", std::process::id());
    let _ = rt.block_on(db.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")));
    let anchor = (Utc::now().timestamp() + 1) * 1_000_000_000;
    {
        let w = PgStore::builder(url)
            .schema(schema.clone())
            .connect()
            .expect("connect");
        let ops = (0..20)
            .map(|i| {
                Op::Put(TaskRecord {
                    name: format!("k{i:02}"),
                    handler: "chaos".into(),
                    schedule: format!("every 3600000000000 from {anchor}"),
                    misfire: Misfire::FireOnce,
                    overlap: Overlap::Skip,
                    jitter: 0,
                    until: None,
                    times: None,
                    delivery: Delivery::AtLeastOnce,
                    paused: false,
                    cursor: anchor - 1,
                    payload: None,
                })
            })
            .collect();
        w.write(ops).expect("definitions");
    }
    let _ = rt.block_on(db.batch_execute(&format!(
        "CREATE TABLE {schema}.fires (task text, fire_time timestamptz, node text, fence int8, attempt int, started_at timestamptz);
         CREATE TABLE {schema}.effects (task text, fire_time timestamptz, fence int8, node text)"
    )));
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("cronlane-pg-chaos")))
        .expect("chaos binary beside this one");
    let spawn = |i: usize| {
        Command::new(&exe)
            .args([
                "node",
                "--url",
                url,
                "--schema",
                &schema,
                "--index",
                &i.to_string(),
                "--lease-ms",
                "15000",
                "--sweep-ms",
                "5000",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("node")
    };
    let mut a = spawn(0);
    // The victim: the first node to start a fire (B joins after).
    let deadline = Instant::now() + Duration::from_secs(20);
    let victim_pid = a.id();
    loop {
        let n: i64 = rt
            .block_on(db.query_one(&format!("SELECT count(*) FROM {schema}.fires"), &[]))
            .map(|r| r.get(0))
            .unwrap_or(0);
        if n > 0 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut b = spawn(1);
    let _ = Command::new("kill")
        .args(["-9", &victim_pid.to_string()])
        .status();
    let _ = a.wait();
    let killed_at: chrono::DateTime<Utc> = rt
        .block_on(db.query_one("SELECT now()", &[]))
        .map(|r| r.get(0))
        .unwrap_or_else(|_| Utc::now());
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut latency = None;
    while Instant::now() < deadline {
        let row = rt
            .block_on(db.query_one(
                &format!("SELECT min(claimed_at) FROM {schema}.fire WHERE attempt > 1"),
                &[],
            ))
            .ok();
        if let Some(Some(t)) = row.map(|r| r.get::<_, Option<chrono::DateTime<Utc>>>(0)) {
            latency = Some((t - killed_at).num_milliseconds());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(b.stdin.take());
    let _ = b.wait();
    match latency {
        Some(ms) => println!(
            "takeover after kill -9 (lease 15 s, heartbeat 3 s, sweep 5 s): {:.1} s",
            ms as f64 / 1000.0
        ),
        None => println!("takeover after kill -9: not seen within 40 s"),
    }
    let _ = rt.block_on(db.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")));
}
