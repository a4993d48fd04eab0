//! The chaos test of the cluster design, as a command.
//!
//! `cronlane-pg-chaos run [--secs 120] [--nodes 5] [--tasks 200]
//! [--pg-fault terminate|restart|none] [--calm] [--url URL]` starts `--nodes` node
//! processes (this binary, `node` subcommand) sharing `--tasks` durable
//! tasks (half every 1 s, half every 5 s) in a fresh schema; two nodes run
//! with ±3 s injected clock skew. The callback inserts into `fires` (no
//! unique key: duplicates stay visible), sleeps 0–3 s, and writes `effects`
//! in its fenced completion transaction. Chaos: `kill -9` of a random node
//! (restarted) about every 45 s (at least twice), one node `SIGSTOP`ped for
//! twice the lease then `SIGCONT`, one database fault (`terminate`: every
//! backend of this run is terminated, which touches no other user of the
//! server; `restart`: `pg_ctlcluster … restart -m immediate`, for a machine
//! of your own), then a drain. Asserts, over the instants of the chaos
//! window: exactly one effect per (task, instant) and no gaps; extra `fires`
//! rows only from killed or paused incarnations, with a lower fence than
//! the effect's; nothing started more than 500 ms early by database time.
//! Prints the counts; exits non-zero on a violation.

use chrono::{DateTime, Utc};
use cronlane::store::{Op, Store, TaskRecord};
use cronlane::{Clock, Delivery, Dispatcher, Misfire, Overlap, Scheduler};
use cronlane_pg::{PgError, PgStore};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LEASE: Duration = Duration::from_secs(4);

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match args.get(1).map(String::as_str) {
        Some("node") => node(&args),
        Some("run") => run(&args),
        _ => {
            eprintln!("usage: cronlane-pg-chaos run [--secs N] [--nodes N] [--tasks N] [--pg-fault terminate|restart|none] [--url URL]");
            2
        }
    };
    std::process::exit(code);
}

fn default_url() -> String {
    std::env::var("CRONLANE_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The wall clock moved by a fixed offset (injected skew).
struct SkewClock(i64);

impl Clock for SkewClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.0)
    }
}

/// A small xorshift (no dependency for dice).
struct Dice(u64);

impl Dice {
    fn new() -> Dice {
        let t = Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64;
        Dice(t ^ (u64::from(std::process::id()) << 32) | 1)
    }
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// A blocking client for the orchestrator and the nodes' `fires` inserts.
struct Db {
    rt: tokio::runtime::Runtime,
    pool: deadpool_postgres::Pool,
}

impl Db {
    fn new(url: &str, size: usize) -> Db {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let cfg: tokio_postgres::Config = url.parse().expect("url");
        let mgr = deadpool_postgres::Manager::new(cfg, tokio_postgres::NoTls);
        let pool = deadpool_postgres::Pool::builder(mgr)
            .max_size(size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(2)))
            .wait_timeout(Some(Duration::from_secs(5)))
            .build()
            .expect("pool");
        Db { rt, pool }
    }

    fn exec(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, String> {
        self.rt.block_on(async {
            let c = self.pool.get().await.map_err(|e| e.to_string())?;
            c.execute(sql, params).await.map_err(|e| e.to_string())
        })
    }

    fn query(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        self.rt
            .block_on(async {
                let c = self.pool.get().await.map_err(|e| e.to_string())?;
                c.query(sql, &[]).await.map_err(|e| e.to_string())
            })
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// One node process: runs until its stdin closes, then shuts down in
/// order and prints its counters.
fn node(args: &[String]) -> i32 {
    let url = arg(args, "--url", &default_url());
    let schema = arg(args, "--schema", "");
    let index = arg(args, "--index", "0");
    let skew: i64 = arg(args, "--skew-ms", "0").parse().unwrap_or(0);
    let me = format!("{index}:{}", std::process::id());
    let app_url = format!(
        "{url}{}application_name=chaos_{schema}",
        if url.contains('?') { "&" } else { "?" }
    );
    let lease = Duration::from_millis(arg(args, "--lease-ms", "4000").parse().unwrap_or(4000));
    let sweep = Duration::from_millis(arg(args, "--sweep-ms", "1000").parse().unwrap_or(1000));
    let store = match PgStore::builder(&app_url)
        .schema(schema.clone())
        .lease(lease)
        .heartbeat(lease / 5)
        .sweep(sweep)
        .resync(Duration::from_secs(10))
        .pool_size(8)
        .run_threads(48)
        .connect()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("node {me}: {e}");
            return 1;
        }
    };
    let pg = store.handle();
    let stats = pg.clone();
    let db = std::sync::Arc::new(Db::new(&app_url, 8));
    let s = Scheduler::builder()
        .clock(SkewClock(skew))
        .dispatcher(Dispatcher::pool(48))
        .store(store)
        .build();
    let fires_sql =
        format!("INSERT INTO {schema}.fires (task, fire_time, node, fence, attempt, started_at) \
                 SELECT $1, $2, $3, $4, (SELECT attempt FROM {schema}.fire WHERE task_id = $1 AND fire_time = $2), now()");
    let effects_sql = format!(
        "INSERT INTO {schema}.effects (task, fire_time, fence, node) VALUES ($1, $2, $3, $4)"
    );
    let me2 = me.clone();
    let handler = s.handler("chaos", move |ctx| {
        let name = ctx.name().unwrap_or("").to_owned();
        let at: DateTime<Utc> = ctx.scheduled();
        let fence = ctx.fence().unwrap_or(0) as i64;
        let deadline = Instant::now() + Duration::from_secs(30);
        // Retried through a database fault (bounded).
        while let Err(e) = db.exec(&fires_sql, &[&name, &at, &me2, &fence]) {
            if Instant::now() > deadline {
                return Err(format!("fires insert: {e}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let nap = {
            let mut d = Dice(fence as u64 ^ 0x9e37_79b9_7f4a_7c15 | 1);
            d.next(3000)
        };
        std::thread::sleep(Duration::from_millis(nap));
        loop {
            match pg.complete_in(ctx, |tx| {
                tx.execute(&effects_sql, &[&name, &at, &fence, &me2])?;
                Ok(())
            }) {
                Ok(()) => return Ok(()),
                Err(e @ PgError::Stale { .. }) => return Err(e.to_string()),
                Err(e) if Instant::now() > deadline => return Err(e.to_string()),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    });
    if let Err(e) = handler {
        eprintln!("node {me}: {e}");
        return 1;
    }
    let runner = match s.start() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("node {me}: {e}");
            return 1;
        }
    };
    // Until the orchestrator closes stdin.
    let mut line = String::new();
    while std::io::stdin()
        .lock()
        .read_line(&mut line)
        .is_ok_and(|n| n > 0)
    {
        line.clear();
    }
    let _ = runner.shutdown(Duration::from_secs(10));
    let fired = s.stats().fired;
    drop(s);
    let st = stats.stats();
    println!(
        "STATS node {me} fired={fired} won={} lost={} deferred={} claim_errors={} refused={} completed={} zombies_rejected={} reruns={} abandoned={} rejoins={}",
        st.claims_won, st.claims_lost, st.deferred, st.claim_errors, st.refused_unhealthy,
        st.completed, st.zombies_rejected, st.takeovers_rerun, st.takeovers_abandoned, st.rejoins
    );
    let _ = std::io::stdout().flush();
    0
}

struct Proc {
    child: Child,
    index: usize,
    skew: i64,
}

fn spawn(url: &str, schema: &str, index: usize, skew: i64) -> Proc {
    let exe = std::env::current_exe().expect("exe");
    let child = Command::new(exe)
        .args([
            "node",
            "--url",
            url,
            "--schema",
            schema,
            "--index",
            &index.to_string(),
            "--skew-ms",
            &skew.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn node");
    Proc { child, index, skew }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

fn run(args: &[String]) -> i32 {
    let url = arg(args, "--url", &default_url());
    let secs: u64 = arg(args, "--secs", "120").parse().unwrap_or(120);
    let n_nodes: usize = arg(args, "--nodes", "5").parse().unwrap_or(5);
    let n_tasks: usize = arg(args, "--tasks", "200").parse().unwrap_or(200);
    let fault = arg(args, "--pg-fault", "terminate");
    // `--calm`: no chaos at all (the cross-process once-per-fire test).
    let calm = args.iter().any(|a| a == "--calm");
    let schema = format!("cronlane_chaos_{}", std::process::id());
    let db = Db::new(&url, 2);
    if let Err(e) = db.exec("SELECT 1", &[]) {
        let msg = format!("chaos cannot run: no PostgreSQL at {url} ({e}); set CRONLANE_PG_URL");
        eprintln!("{msg}");
        return if std::env::var("CI").is_ok_and(|v| v == "true") {
            1
        } else {
            0
        };
    }
    let _ = db.exec(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"), &[]);
    // The definitions, anchored at a whole second.
    let anchor_s = Utc::now().timestamp() + 2;
    let anchor = anchor_s * 1_000_000_000;
    {
        let writer = PgStore::builder(&url)
            .schema(schema.clone())
            .connect()
            .expect("connect");
        let ops = (0..n_tasks)
            .map(|i| {
                let period: i64 = if i < n_tasks / 2 { 1 } else { 5 };
                Op::Put(TaskRecord {
                    name: format!("t{i:03}"),
                    handler: "chaos".into(),
                    schedule: format!("every {} from {anchor}", period * 1_000_000_000),
                    misfire: Misfire::FireOnce,
                    overlap: Overlap::Allow { max: None },
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
        writer.write(ops).expect("definitions");
    }
    db.rt
        .block_on(async {
            let c = db.pool.get().await.map_err(|e| e.to_string())?;
            c.batch_execute(&format!(
                "CREATE TABLE {schema}.fires (task text, fire_time timestamptz, node text, fence int8, attempt int, started_at timestamptz);
                 CREATE TABLE {schema}.effects (task text, fire_time timestamptz, fence int8, node text)"
            ))
            .await
            .map_err(|e| e.to_string())
        })
    .expect("chaos tables");
    let skews = [3000i64, -3000];
    let mut procs: Vec<Proc> = (0..n_nodes)
        .map(|i| spawn(&url, &schema, i, skews.get(i).copied().unwrap_or(0)))
        .collect();
    let mut dice = Dice::new();
    let start = Instant::now();
    let window_start = anchor + 5_000_000_000;
    let at = |f: f64| Duration::from_secs_f64(secs as f64 * f);
    let mut kills_at: Vec<Duration> = if calm {
        Vec::new()
    } else {
        vec![at(0.2), at(0.65)]
    };
    let mut t = 45.0;
    while !calm && t < secs as f64 * 0.9 {
        if !kills_at.iter().any(|k| (k.as_secs_f64() - t).abs() < 10.0) {
            kills_at.push(Duration::from_secs_f64(t));
        }
        t += 45.0;
    }
    kills_at.sort();
    let stop_at = at(0.35);
    let fault_at = at(0.5);
    let mut killed: HashSet<String> = HashSet::new();
    let mut paused: HashSet<String> = HashSet::new();
    let mut events: Vec<String> = Vec::new();
    let mut stopped = calm;
    let mut faulted = calm;
    let ident = |p: &Proc| format!("{}:{}", p.index, p.child.id());
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(100));
        if kills_at.first().is_some_and(|k| start.elapsed() >= *k) {
            kills_at.remove(0);
            let i = dice.next(procs.len() as u64) as usize;
            let p = &mut procs[i];
            killed.insert(ident(p));
            events.push(format!(
                "{:>5.1}s kill -9 node {}",
                start.elapsed().as_secs_f64(),
                ident(p)
            ));
            let _ = p.child.kill();
            let _ = p.child.wait();
            std::thread::sleep(Duration::from_secs(1));
            let (index, skew) = (p.index, p.skew);
            *p = spawn(&url, &schema, index, skew);
            events.push(format!(
                "{:>5.1}s restarted as {}",
                start.elapsed().as_secs_f64(),
                ident(p)
            ));
        }
        if !stopped && start.elapsed() >= stop_at {
            stopped = true;
            let i = (dice.next(procs.len() as u64) as usize)
                .max(2)
                .min(procs.len() - 1);
            let p = &procs[i];
            paused.insert(ident(p));
            events.push(format!(
                "{:>5.1}s SIGSTOP node {} for {:?}",
                start.elapsed().as_secs_f64(),
                ident(p),
                LEASE * 2
            ));
            signal(p.child.id(), "-STOP");
            std::thread::sleep(LEASE * 2);
            signal(p.child.id(), "-CONT");
            events.push(format!("{:>5.1}s SIGCONT", start.elapsed().as_secs_f64()));
        }
        if !faulted && start.elapsed() >= fault_at {
            faulted = true;
            match fault.as_str() {
                "restart" => {
                    let version = std::fs::read_dir("/etc/postgresql")
                        .ok()
                        .and_then(|mut d| d.next())
                        .and_then(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .unwrap_or_else(|| "15".into());
                    let st = Command::new("pg_ctlcluster")
                        .args([
                            "--skip-systemctl-redirect",
                            &version,
                            "main",
                            "restart",
                            "-m",
                            "immediate",
                        ])
                        .status();
                    events.push(format!(
                        "{:>5.1}s PostgreSQL restarted ({st:?})",
                        start.elapsed().as_secs_f64()
                    ));
                }
                "terminate" => {
                    let n = db.query(&format!(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                         WHERE application_name = 'chaos_{schema}'"
                    ));
                    let n: i64 = n[0].get(0);
                    events.push(format!(
                        "{:>5.1}s terminated {n} backends of this run",
                        start.elapsed().as_secs_f64()
                    ));
                }
                _ => {}
            }
        }
    }
    let window_end = anchor + (start.elapsed().as_secs() as i64 - 2) * 1_000_000_000;
    // Drain: takeovers of the last victims (lease + sweep + the longest run).
    std::thread::sleep(LEASE + Duration::from_secs(8));
    let mut stats = Vec::new();
    for p in &mut procs {
        drop(p.child.stdin.take());
    }
    for p in &mut procs {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match p.child.try_wait() {
                Ok(Some(_)) => break,
                _ if Instant::now() > deadline => {
                    let _ = p.child.kill();
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        if let Some(out) = p.child.stdout.take() {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if line.starts_with("STATS") {
                    stats.push(line);
                }
            }
        }
    }
    let code = check(
        &db,
        &schema,
        n_tasks,
        anchor,
        window_start,
        window_end,
        &killed,
        &paused,
    );
    for e in &events {
        println!("{e}");
    }
    for s in &stats {
        println!("{s}");
    }
    if code == 0 {
        let _ = db.exec(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"), &[]);
    } else {
        println!("schema {schema} kept for inspection");
    }
    code
}

/// One `fires` row: fence, node incarnation, attempt.
type Run = (i64, String, Option<i32>);

#[allow(clippy::too_many_arguments)]
fn check(
    db: &Db,
    schema: &str,
    n_tasks: usize,
    anchor: i64,
    from: i64,
    to: i64,
    killed: &HashSet<String>,
    paused: &HashSet<String>,
) -> i32 {
    let us = |t: DateTime<Utc>| t.timestamp_micros() * 1000;
    let mut effects: HashMap<(String, i64), Vec<i64>> = HashMap::new();
    for r in db.query(&format!(
        "SELECT task, fire_time, fence FROM {schema}.effects"
    )) {
        effects
            .entry((r.get(0), us(r.get(1))))
            .or_default()
            .push(r.get(2));
    }
    let mut fires: HashMap<(String, i64), Vec<Run>> = HashMap::new();
    for r in db.query(&format!(
        "SELECT task, fire_time, fence, node, attempt FROM {schema}.fires"
    )) {
        fires
            .entry((r.get(0), us(r.get(1))))
            .or_default()
            .push((r.get(2), r.get(3), r.get(4)));
    }
    let early = db.query(&format!(
        "SELECT count(*) FROM {schema}.fires WHERE started_at < fire_time - interval '500 ms'"
    ))[0]
        .get::<_, i64>(0);
    let (mut expected, mut gaps, mut dup_effects, mut extra_runs, mut bad_extra) = (0, 0, 0, 0, 0);
    let mut gap_examples = Vec::new();
    for i in 0..n_tasks {
        let name = format!("t{i:03}");
        let period: i64 = if i < n_tasks / 2 {
            1_000_000_000
        } else {
            5_000_000_000
        };
        let mut at = anchor;
        while at <= to {
            if at >= from {
                expected += 1;
                let key = (name.clone(), at);
                match effects.get(&key).map(Vec::len) {
                    None | Some(0) => {
                        gaps += 1;
                        if gap_examples.len() < 5 {
                            gap_examples.push(format!("{name}@{at}"));
                        }
                    }
                    Some(1) => {}
                    Some(_) => dup_effects += 1,
                }
                if let (Some(runs), Some(eff)) = (fires.get(&key), effects.get(&key)) {
                    let winner = eff[0];
                    for (fence, node, _) in runs.iter().filter(|r| r.0 != winner) {
                        extra_runs += 1;
                        let known = killed.contains(node) || paused.contains(node);
                        if *fence >= winner || !known {
                            bad_extra += 1;
                        }
                    }
                }
            }
            at += period;
        }
    }
    let rows = db.query(&format!(
        "SELECT count(*) FILTER (WHERE attempt > 1), count(*) FILTER (WHERE state = 'abandoned'), \
                count(*) FILTER (WHERE state = 'failed'), count(*) FILTER (WHERE state = 'running') FROM {schema}.fire"
    ));
    let (reruns, abandoned, failed, running): (i64, i64, i64, i64) = (
        rows[0].get(0),
        rows[0].get(1),
        rows[0].get(2),
        rows[0].get(3),
    );
    println!(
        "chaos: expected fires {expected}; effects exactly once: {}; gaps {gaps} {gap_examples:?}; \
         duplicate effects {dup_effects}; extra runs {extra_runs} (all from killed/paused owners with a lower fence: {}); \
         started > 500 ms early {early}; taken over and re-run {reruns}; abandoned {abandoned}; failed {failed}; still running {running}",
        expected - gaps - dup_effects,
        bad_extra == 0
    );
    i32::from(gaps > 0 || dup_effects > 0 || bad_extra > 0 || early > 0)
}
