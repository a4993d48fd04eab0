//! `cronlane run CRONTAB`: cron for containers, on the cronlane engine.
//!
//! The moving parts, one file each:
//!
//! * `options`: the command line of `run`;
//! * `crontab`: the file format, parsed into entries (pure);
//! * `jobs`: entries registered as named engine tasks, reloads, the
//!   engine listener (skip warnings);
//! * `exec`: one fire's process (process group, output, timeouts) and the
//!   reaper;
//! * `log`: text or JSON records;
//! * `signals`: signal handlers and the self-pipe they write to;
//! * `metrics`: the `/metrics` and `/healthz` endpoint;
//! * `check`: the `--test` report.
//!
//! This file wires them: load and check the crontab, install the signal
//! handlers, start the reaper, the scheduler with its
//! background runner and the metrics server, then take signals on the main
//! thread until told to stop. Each fire runs on a thread of its own
//! ([`ThreadPerFire`]) and blocks there until its process ends, so the
//! engine's overlap policy acts on process lifetimes and the runner thread
//! never waits for a process.

pub(crate) mod check;
pub(crate) mod crontab;
pub(crate) mod exec;
pub(crate) mod jobs;
pub(crate) mod log;
pub(crate) mod metrics;
pub(crate) mod options;
pub(crate) mod signals;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cronlane::{Clock, Dispatcher, Executor, Job, Overlap, Scheduler};

use crate::run::crontab::Crontab;
use crate::run::exec::{Limits, Supervisor};
use crate::run::jobs::{Jobs, Live};
use crate::run::log::{Level, Log, Val};
use crate::run::metrics::DaemonCounters;
use crate::run::options::RunOptions;

/// Exit status for an unusable crontab or bad options.
const EXIT_USAGE: u8 = 2;
/// Exit status when the daemon cannot run (unreadable file, port taken…).
const EXIT_RUNTIME: u8 = 1;

/// Stack of a fire's thread (it formats log lines and waits).
const FIRE_STACK: usize = 256 * 1024;

/// Runs every fire on a new thread, so a fire that waits for its process
/// holds no pool worker and never delays the runner. If the thread cannot
/// be started the job is dropped, which the engine releases (not lost).
///
/// With `--state` or `--postgres`, `store` holds the scheduler: once a
/// fire has completed (its at-least-once progress queued), the thread
/// writes it to the store at once rather than at the engine's next pass,
/// which for an hourly job may be an hour away (a `kill -9` in between
/// would run it again). It is emptied at shutdown, which breaks the cycle
/// (the scheduler holds its executor) so the store is dropped: the cluster
/// backend leaves the cluster in its drop.
struct ThreadPerFire {
    store: Arc<RwLock<Option<Scheduler>>>,
}

impl Executor for ThreadPerFire {
    fn execute(&self, job: Job) {
        let store = self.store.clone();
        let _ = std::thread::Builder::new()
            .name("cronlane-fire".into())
            .stack_size(FIRE_STACK)
            .spawn(move || {
                job.run();
                let scheduler = store
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                if let Some(s) = scheduler {
                    // On failure the progress stays queued for the next
                    // pass; the library counts the failure.
                    let _ = s.flush_store();
                }
            });
    }
}

/// The system clock shifted so that it read `start` when the daemon
/// started (hidden `--now`, for tests). Moves at the real pace.
struct ShiftedClock {
    offset: chrono::Duration,
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }
}

fn load(o: &RunOptions, now: DateTime<Utc>) -> Result<Crontab, (u8, String)> {
    let file = o.crontab.display().to_string();
    let crontab = crontab::load(&o.crontab, o.tz).map_err(|e| {
        let code = match e.kind {
            crontab::CrontabErrorKind::Read(_) => EXIT_RUNTIME,
            _ => EXIT_USAGE,
        };
        (code, e.to_string())
    })?;
    jobs::validate(&file, &crontab, now).map_err(|e| (EXIT_USAGE, e.to_string()))?;
    Ok(crontab)
}

/// `cronlane run`.
pub(crate) fn main(o: RunOptions) -> ExitCode {
    let started_at = o.now.unwrap_or_else(Utc::now);
    let crontab = match load(&o, started_at) {
        Ok(c) => c,
        Err((code, msg)) => {
            eprintln!("cronlane: {msg}\ncronlane: nothing runs");
            return ExitCode::from(code);
        }
    };
    if o.test {
        print!(
            "{}",
            check::report(&o.crontab.display().to_string(), &crontab, started_at)
        );
        return ExitCode::SUCCESS;
    }
    match daemon(&o, crontab) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("cronlane: {msg}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn daemon(o: &RunOptions, crontab: Crontab) -> Result<(), String> {
    let signals =
        signals::install().map_err(|e| format!("cannot install the signal handlers: {e}"))?;
    let log = Arc::new(Log::new(o.json, o.split_logs));
    let limits = Limits {
        timeout: o.timeout,
        kill_timeout: o.kill_timeout,
        max_line: o.max_line,
    };
    let sup = Supervisor::start(log.clone(), limits)
        .map_err(|e| format!("cannot start the reaper thread: {e}"))?;
    let live: Live = Arc::new(RwLock::new(HashMap::new()));
    let counters = Arc::new(DaemonCounters::default());
    let store_handle = Arc::new(RwLock::new(None));
    let mut builder = Scheduler::builder()
        .dispatcher(Dispatcher::executor(ThreadPerFire {
            store: store_handle.clone(),
        }))
        .misfire(o.misfire)
        .listener(jobs::listener(
            live.clone(),
            log.clone(),
            o.postgres.is_some(),
        ));
    if let Some(path) = &o.state {
        let store = cronlane::store::RedbStore::open(path)
            .map_err(|e| format!("--state {}: cannot open the store: {e}", path.display()))?;
        builder = builder.store(store);
    }
    let mut cluster = None;
    if let Some(url) = &o.postgres {
        let mut b = cronlane_pg::PgStore::builder(url).grace(o.grace);
        if let Some(schema) = &o.pg_schema {
            b = b.schema(schema.as_str());
        }
        // The error never holds the password.
        let store = b
            .connect()
            .map_err(|e| format!("--postgres: cannot use the database: {e}"))?;
        let pg = store.handle();
        cluster = Some((pg.schema().to_owned(), pg.node_id()));
        builder = builder.store(store);
    }
    let durable = o.state.is_some() || o.postgres.is_some();
    if let Some(now) = o.now {
        builder = builder.clock(ShiftedClock {
            offset: now - Utc::now(),
        });
    }
    let scheduler = builder.build();
    let stored_before = scheduler.durable_tasks().len();
    if durable {
        // A cycle (the scheduler holds its executor), broken at shutdown
        // once the store is flushed.
        *store_handle
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(scheduler.clone());
    }
    let overlap = if o.overlapping {
        Overlap::Allow { max: None }
    } else {
        Overlap::Skip
    };
    let file_label = o.crontab.file_name().map_or_else(
        || o.crontab.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut jobs = Jobs::new(
        scheduler.clone(),
        sup.clone(),
        log.clone(),
        file_label,
        overlap,
        durable.then_some(o.delivery),
        live.clone(),
    );
    if let Some(addr) = &o.metrics {
        let bound = metrics::serve(addr, live.clone(), counters.clone())
            .map_err(|e| format!("--metrics {addr}: cannot listen: {e}"))?;
        log.event(
            Level::Info,
            None,
            "metrics",
            "serving /metrics and /healthz",
            &[("addr", bound.to_string().into())],
        );
    }
    let n = crontab.entries.len();
    let applied = jobs.apply(crontab, true);
    if durable {
        let (gone, failed) = jobs.forget_stored();
        for name in gone {
            log.event(
                Level::Info,
                None,
                "forgotten",
                "a stored job is no longer in the crontab: removed from the store",
                &[("name", name.into())],
            );
        }
        for (name, error) in failed {
            log.event(
                Level::Error,
                None,
                "forget_failed",
                "a job no longer in the crontab could not be removed from the store",
                &[("name", name.into()), ("error", error.into())],
            );
        }
    }
    if let Some((schema, node)) = &cluster {
        log.event(
            Level::Info,
            None,
            "cluster",
            &format!(
                "--postgres: node {node} in schema {schema}; {stored_before} job(s) stored \
                 before this start, {} now; each fire runs once across the daemons \
                 sharing the database",
                scheduler.durable_tasks().len()
            ),
            &[
                ("schema", schema.clone().into()),
                ("node", node.to_string().into()),
                ("stored_before", Val::from(stored_before as u64)),
                ("stored", Val::from(scheduler.durable_tasks().len() as u64)),
            ],
        );
    }
    if let Some(path) = &o.state {
        log.event(
            Level::Info,
            None,
            "state",
            &format!(
                "--state {}: {stored_before} job(s) stored before this start, {} now; \
                 missed fires: --misfire {}",
                path.display(),
                scheduler.durable_tasks().len(),
                misfire_word(o.misfire)
            ),
            &[
                ("state", path.display().to_string().into()),
                ("stored_before", Val::from(stored_before as u64)),
                ("stored", Val::from(scheduler.durable_tasks().len() as u64)),
            ],
        );
    }
    let handle = scheduler
        .start()
        .map_err(|e| format!("cannot start the scheduler: {e}"))?;
    log.event(
        Level::Info,
        None,
        "ready",
        &format!("cronlane run: {} of {n} jobs scheduled", applied.added),
        &[
            ("crontab", o.crontab.display().to_string().into()),
            ("jobs", Val::from(applied.added as u64)),
            ("pid", i64::from(std::process::id()).into()),
        ],
    );
    let stop = loop {
        let sig = signals.wait();
        match sig {
            libc::SIGHUP | libc::SIGUSR2 => reload(o, &mut jobs, &log, &counters, &scheduler, sig),
            other => break other,
        }
    };
    shutdown(o, handle, &sup, &log, stop);
    if let Err(e) = scheduler.flush_store() {
        log.event(
            Level::Error,
            None,
            "state_write",
            "the last fires' progress could not be written to the store \
             (at-least-once jobs among them run again at the next start)",
            &[("error", e.to_string().into())],
        );
    }
    // The last clones of the scheduler: the store drops with it (with
    // --postgres, the node leaves the cluster).
    store_handle
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    drop(jobs);
    drop(scheduler);
    Ok(())
}

fn misfire_word(m: cronlane::Misfire) -> String {
    match m {
        cronlane::Misfire::Skip => "skip".into(),
        cronlane::Misfire::CatchUp { max } => format!("catchup (at most {max} in a row)"),
        _ => "once".into(),
    }
}

fn reload(
    o: &RunOptions,
    jobs: &mut Jobs,
    log: &Log,
    counters: &DaemonCounters,
    scheduler: &Scheduler,
    sig: libc::c_int,
) {
    let name = signals::name(sig);
    match load(o, scheduler.now()) {
        Ok(crontab) => {
            let a = jobs.apply(crontab, false);
            counters.reloads.fetch_add(1, Ordering::Relaxed);
            log.event(
                Level::Info,
                None,
                "reload",
                &format!("{name}: crontab reloaded"),
                &[
                    ("kept", Val::from(a.kept as u64)),
                    ("added", Val::from(a.added as u64)),
                    ("removed", Val::from(a.removed as u64)),
                ],
            );
        }
        Err((_, msg)) => {
            counters.reload_failures.fetch_add(1, Ordering::Relaxed);
            log.event(
                Level::Error,
                None,
                "reload_refused",
                &format!("{name}: the crontab has errors; the jobs loaded before keep running"),
                &[("error", msg.into())],
            );
        }
    }
}

/// Stop scheduling, give running jobs `--grace`, then SIGTERM their
/// process groups, and SIGKILL after `--kill-timeout`.
fn shutdown(
    o: &RunOptions,
    handle: cronlane::RunnerHandle,
    sup: &Supervisor,
    log: &Log,
    sig: libc::c_int,
) {
    let running = sup.running();
    log.event(
        Level::Info,
        None,
        "stopping",
        &format!(
            "{}: no new runs; waiting up to {:?} for {running} running job(s)",
            signals::name(sig),
            o.grace
        ),
        &[
            ("running", Val::from(running as u64)),
            ("grace_s", o.grace.as_secs_f64().into()),
        ],
    );
    // Waits for fires already started (their processes) up to the grace.
    let waited = handle.shutdown(o.grace);
    if waited.is_err() || !sup.wait_idle(Duration::ZERO, true) {
        let n = sup.signal_all(libc::SIGTERM);
        log.event(
            Level::Warn,
            None,
            "terminate",
            "SIGTERM sent to the process groups still running (jobs past --grace, or \
             processes a finished job left behind)",
            &[("groups", Val::from(n as u64))],
        );
        if !sup.wait_idle(o.kill_timeout, true) {
            let n = sup.signal_all(libc::SIGKILL);
            log.event(
                Level::Warn,
                None,
                "kill",
                "still running after --kill-timeout: SIGKILL sent",
                &[("groups", Val::from(n as u64))],
            );
            sup.wait_idle(Duration::from_secs(5), true);
        }
        // The fires log their exit once their process is reaped.
        sup.wait_fires(Duration::from_secs(2));
    }
    log.event(Level::Info, None, "stopped", "cronlane run stopped", &[]);
}
