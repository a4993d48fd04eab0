//! The jobs of the loaded crontab, registered as named engine tasks, and
//! what a reload changes.
//!
//! # Ground rules
//!
//! * A job is registered through one function, [`Jobs::register`], from a
//!   crontab [`Entry`] and a **stable name**: the `# name:` comment, else
//!   `FILE:LINE` (the file's base name) at the time the job first appeared.
//!   That name is the engine task's name and is what the durable store
//!   (`--state`) keys a job's last fire on, and the key the cluster
//!   backend (`--postgres`) shares between daemons.
//! * With `--state` or `--postgres` every cron job is a **durable task** named by its
//!   stable name, running the handler of the same name; the handler looks
//!   the job up in `live` at each fire, so a name removed by one reload and
//!   added back by another reuses the handler registered the first time
//!   (the library has no way to unregister one). Registration uses
//!   `replace_existing`: the same definition keeps the stored cursor, a
//!   changed one replaces the stored task (instants at or before its cursor
//!   still never fire again). `@reboot` jobs stay plain tasks: they run at
//!   every start by definition, there is nothing to remember.
//! * Across a reload a job is matched by its [`Entry::identity`]
//!   (schedule, zone, command, shell, environment, `# name:`; not the line
//!   number), with a counter for identical lines. A match keeps its engine
//!   task, its statistics and any running process; only its log tag follows
//!   the line. Entries with no match are registered, jobs with no entry are
//!   removed from the engine (a run under way completes).
//! * `live` maps engine task names to jobs. It is written only by the
//!   thread that applies a crontab (start and reloads) and read by the
//!   engine's listener and the metrics endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use cronlane::{Delivery, Event, EventKind, FireContext, Overlap, Schedule, Scheduler, SkipReason};

use crate::run::crontab::{Crontab, CrontabError, CrontabErrorKind, Entry, When};
use crate::run::exec::{describe, Outcome, Supervisor};
use crate::run::log::{Level, Log, Val};

/// At most one "skipped" warning per job in this long; the others are
/// counted and reported with the next one.
pub(crate) const SKIP_WARN_EVERY: Duration = Duration::from_secs(60);

/// Counters of one job, for the log and `/metrics`.
#[derive(Debug, Default, Clone)]
pub(crate) struct JobStats {
    /// Fires whose process was started, or tried to be.
    pub(crate) runs: u64,
    /// Runs that did not exit 0 (timeouts and failed starts included).
    pub(crate) failures: u64,
    /// Fires skipped (overlap, misfire).
    pub(crate) skips: u64,
    /// Total and last run time, in seconds.
    pub(crate) duration_sum: f64,
    pub(crate) duration_last: f64,
    /// Total and last start lag (process start after the scheduled
    /// instant), in seconds.
    pub(crate) lag_sum: f64,
    pub(crate) lag_last: f64,
    /// When the last successful run ended.
    pub(crate) last_success: Option<DateTime<Utc>>,
    /// Processes of this job running now.
    pub(crate) running: u64,
}

#[derive(Debug, Default)]
struct SkipNote {
    last_warned: Option<Instant>,
    suppressed: u64,
}

/// One job of the crontab.
#[derive(Debug)]
pub(crate) struct Job {
    /// The engine task's name (stable; see the module docs).
    pub(crate) name: String,
    /// The crontab entry it runs.
    pub(crate) entry: Entry,
    tag: Mutex<Arc<str>>,
    stats: Mutex<JobStats>,
    skip_note: Mutex<SkipNote>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Job {
    /// The tag in logs and metrics (`# name:` or `lineN`).
    pub(crate) fn tag(&self) -> Arc<str> {
        lock(&self.tag).clone()
    }

    /// A copy of the counters.
    pub(crate) fn stats(&self) -> JobStats {
        lock(&self.stats).clone()
    }

    /// One fire: run the process to its end, log and count it.
    fn fire(&self, sup: &Supervisor, log: &Log, ctx: &FireContext<'_>) -> Result<(), String> {
        let _under_way = sup.enter();
        let tag = self.tag();
        let scheduled = ctx.scheduled();
        // By the scheduler's clock (which `--now` may shift).
        let lag = (ctx.started() - scheduled)
            .to_std()
            .unwrap_or(Duration::ZERO);
        let lag_s = lag.as_secs_f64();
        {
            let mut st = lock(&self.stats);
            st.runs += 1;
            st.running += 1;
            st.lag_sum += lag_s;
            st.lag_last = lag_s;
        }
        let outcome = sup.run(
            &self.entry,
            &tag,
            &[
                (
                    "scheduled",
                    scheduled
                        .to_rfc3339_opts(SecondsFormat::Millis, true)
                        .into(),
                ),
                ("lag_ms", (lag_s * 1000.0).into()),
            ],
        );
        let took = match &outcome {
            Outcome::Ended { took, .. } => took.as_secs_f64(),
            Outcome::NotStarted(_) => 0.0,
        };
        let ok = outcome.success();
        {
            let mut st = lock(&self.stats);
            st.running = st.running.saturating_sub(1);
            st.duration_sum += took;
            st.duration_last = took;
            if ok {
                st.last_success = Some(Utc::now());
            } else {
                st.failures += 1;
            }
        }
        let sched = scheduled.to_rfc3339_opts(SecondsFormat::Millis, true);
        match outcome {
            Outcome::Ended {
                exit, timed_out, ..
            } => {
                let (word, code, signal) = describe(exit);
                let level = if ok { Level::Info } else { Level::Warn };
                let msg = if timed_out {
                    format!("stopped by --timeout ({word})")
                } else {
                    word.clone()
                };
                let mut fields = vec![
                    ("code", Val::from(code)),
                    ("duration_s", took.into()),
                    ("timed_out", timed_out.into()),
                    ("scheduled", sched.into()),
                ];
                if let Some(sig) = signal {
                    fields.push(("signal", sig.into()));
                }
                log.event(level, Some(&tag), "exit", &msg, &fields);
                if ok {
                    Ok(())
                } else {
                    Err(msg)
                }
            }
            Outcome::NotStarted(why) => {
                log.event(
                    Level::Error,
                    Some(&tag),
                    "not_started",
                    &why,
                    &[("scheduled", sched.into())],
                );
                Err(why)
            }
        }
    }

    /// Counts skipped fires and warns, at most once per [`SKIP_WARN_EVERY`].
    fn skipped(&self, log: &Log, count: u64, reason: SkipReason) {
        lock(&self.stats).skips += count;
        let mut note = lock(&self.skip_note);
        let due = note
            .last_warned
            .is_none_or(|t| t.elapsed() >= SKIP_WARN_EVERY);
        if !due {
            note.suppressed += count;
            return;
        }
        let earlier = std::mem::take(&mut note.suppressed);
        note.last_warned = Some(Instant::now());
        drop(note);
        let msg = match reason {
            SkipReason::Overlap => {
                "skipped: the previous run is still going (--overlapping allows overlapping runs)"
            }
            SkipReason::Misfire | SkipReason::Collapsed => "skipped: the daemon was late",
            SkipReason::Cancelled => "skipped: removed or changed by a reload",
        };
        log.event(
            Level::Warn,
            Some(&self.tag()),
            "skip",
            msg,
            &[
                ("count", count.into()),
                ("not_warned_before", earlier.into()),
                ("next_warning_after_s", SKIP_WARN_EVERY.as_secs().into()),
            ],
        );
    }
}

/// Jobs by engine task name: shared with the listener and `/metrics`.
pub(crate) type Live = Arc<RwLock<HashMap<String, Arc<Job>>>>;

/// The engine listener: skip warnings and misfires, by job.
///
/// `cluster` (`--postgres`): a fire another daemon claimed is reported by
/// the engine as skipped (`Cancelled`); that is the cluster working, not a
/// skip, so it is neither counted nor logged.
pub(crate) fn listener(
    live: Live,
    log: Arc<Log>,
    cluster: bool,
) -> impl Fn(&Event<'_>) + Send + Sync + 'static {
    move |e: &Event<'_>| {
        let job = || {
            let live = live
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            e.name.and_then(|n| live.get(n).cloned())
        };
        match e.kind {
            EventKind::Skipped {
                reason: SkipReason::Cancelled,
                ..
            } if cluster => {}
            EventKind::Skipped { reason, count } => {
                if let Some(job) = job() {
                    job.skipped(&log, count, reason);
                }
            }
            EventKind::Misfired { late_by, runs } => {
                let tag = job().map(|j| j.tag());
                log.event(
                    Level::Warn,
                    tag.as_deref(),
                    "misfire",
                    if runs {
                        "late (the daemon was down, stalled or the host slept): running now"
                    } else {
                        "late: skipped"
                    },
                    &[("late_by_s", late_by.as_secs_f64().into())],
                );
            }
            EventKind::Failed {
                message,
                panicked: true,
            } => {
                let tag = job().map(|j| j.tag());
                log.event(Level::Error, tag.as_deref(), "panic", message, &[]);
            }
            _ => {}
        }
    }
}

/// What [`Jobs::apply`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Applied {
    pub(crate) kept: usize,
    pub(crate) added: usize,
    pub(crate) removed: usize,
}

/// The registered jobs of a daemon.
pub(crate) struct Jobs {
    scheduler: Scheduler,
    sup: Arc<Supervisor>,
    log: Arc<Log>,
    /// Base name of the crontab, for `FILE:LINE` names.
    file: String,
    overlap: Overlap,
    /// `Some` with `--state`: cron jobs are durable tasks with this
    /// delivery.
    durable: Option<Delivery>,
    live: Live,
    /// Jobs by identity (`identity#k` for the k-th identical entry).
    by_identity: HashMap<String, Arc<Job>>,
}

impl Jobs {
    /// An empty set of jobs on `scheduler`.
    pub(crate) fn new(
        scheduler: Scheduler,
        sup: Arc<Supervisor>,
        log: Arc<Log>,
        file: String,
        overlap: Overlap,
        durable: Option<Delivery>,
        live: Live,
    ) -> Jobs {
        Jobs {
            scheduler,
            sup,
            log,
            file,
            overlap,
            durable,
            live,
            by_identity: HashMap::new(),
        }
    }

    /// Registers `entry` as the engine task `name`. The one place a job
    /// enters the engine: a durable store or cluster backend hooks in here.
    pub(crate) fn register(&self, entry: Entry, name: String) -> Result<Arc<Job>, cronlane::Error> {
        let schedule = match &entry.when {
            When::Cron { expr, tz } => Schedule::cron(expr.as_str())?.in_tz(*tz),
            When::Reboot => Schedule::once(self.scheduler.now()),
        };
        let job = Arc::new(Job {
            name: name.clone(),
            tag: Mutex::new(entry.tag().into()),
            entry,
            stats: Mutex::new(JobStats::default()),
            skip_note: Mutex::new(SkipNote::default()),
        });
        // In the map before the first fire can look it up.
        self.live_mut().insert(name.clone(), job.clone());
        let registered = match (self.durable, &job.entry.when) {
            (Some(delivery), When::Cron { .. }) => self.register_durable(schedule, &name, delivery),
            _ => {
                let (j, sup, log) = (job.clone(), self.sup.clone(), self.log.clone());
                self.scheduler
                    .add(schedule)
                    .name(name.clone())
                    .overlap(self.overlap)
                    .run_with_context(move |ctx| j.fire(&sup, &log, ctx))
                    .map(|_| ())
            }
        };
        if let Err(e) = registered {
            self.live_mut().remove(&name);
            return Err(e);
        }
        Ok(job)
    }

    /// `--state`: the job `name` as a durable task running the handler
    /// `name` (see the module docs).
    fn register_durable(
        &self,
        schedule: Schedule,
        name: &str,
        delivery: Delivery,
    ) -> Result<(), cronlane::Error> {
        let (live, sup, log) = (self.live.clone(), self.sup.clone(), self.log.clone());
        let key = name.to_owned();
        let handler = self.scheduler.handler(name, move |ctx: &FireContext<'_>| {
            let job = live
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&key)
                .cloned();
            match job {
                Some(job) => job.fire(&sup, &log, ctx),
                None => Err(format!("{key}: no longer in the crontab")),
            }
        });
        match handler {
            Ok(_) | Err(cronlane::Error::DuplicateHandler(_)) => {}
            Err(e) => return Err(e),
        }
        self.scheduler
            .add(schedule)
            .name(name)
            .overlap(self.overlap)
            .delivery(delivery)
            .replace_existing()
            .durable(name)
            .register()
            .map(|_| ())
    }

    /// `--state`, at start: removes from the store the tasks of jobs that
    /// are no longer in the crontab (or whose `FILE:LINE` name changed).
    /// Returns the names removed and those that could not be.
    pub(crate) fn forget_stored(&self) -> (Vec<String>, Vec<(String, String)>) {
        let keep: std::collections::HashSet<&str> = self
            .by_identity
            .values()
            .filter(|j| j.entry.when != When::Reboot)
            .map(|j| j.name.as_str())
            .collect();
        let (mut gone, mut failed) = (Vec::new(), Vec::new());
        for t in self.scheduler.durable_tasks() {
            if keep.contains(t.name.as_str()) {
                continue;
            }
            match self.scheduler.remove(t.name.as_str()) {
                Ok(()) => gone.push(t.name),
                Err(e) => failed.push((t.name, e.to_string())),
            }
        }
        (gone, failed)
    }

    fn live_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Job>>> {
        self.live
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A name for a new job: `# name:`, else `FILE:LINE`, made unique
    /// against the jobs kept by a reload.
    fn stable_name(&self, entry: &Entry) -> String {
        let base = match &entry.name {
            Some(n) => n.clone(),
            None => format!("{}:{}", self.file, entry.line),
        };
        let live = self
            .live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !live.contains_key(&base) {
            return base;
        }
        (2..)
            .map(|k| format!("{base}~{k}"))
            .find(|n| !live.contains_key(n))
            .unwrap_or(base)
    }

    /// Makes the registered jobs those of `crontab` (validated with
    /// [`validate`] first). `@reboot` jobs run only when `starting`.
    pub(crate) fn apply(&mut self, crontab: Crontab, starting: bool) -> Applied {
        let mut applied = Applied::default();
        let mut next: HashMap<String, Arc<Job>> = HashMap::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut fresh = Vec::new();
        for entry in crontab.entries {
            let base = entry.identity();
            let k = seen.entry(base.clone()).or_insert(0);
            *k += 1;
            let id = format!("{base}#{k}");
            match self.by_identity.remove(&id) {
                Some(job) => {
                    *lock(&job.tag) = entry.tag().into();
                    next.insert(id, job);
                    applied.kept += 1;
                }
                None => fresh.push((id, entry)),
            }
        }
        for (_, job) in self.by_identity.drain() {
            // A fired @reboot job is already gone from the engine.
            let _ = self.scheduler.remove(job.name.as_str());
            self.live
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&job.name);
            applied.removed += 1;
            self.log.event(
                Level::Info,
                Some(&job.tag()),
                "removed",
                "no longer in the crontab: not scheduled any more",
                &[("name", job.name.clone().into())],
            );
        }
        for (id, entry) in fresh {
            if entry.when == When::Reboot && !starting {
                self.log.event(
                    Level::Info,
                    Some(&entry.tag()),
                    "added",
                    "@reboot job added by a reload: it runs at the next start",
                    &[],
                );
                // Tracked unregistered, so that a later reload keeps it.
                let job = Arc::new(Job {
                    name: self.stable_name(&entry),
                    tag: Mutex::new(entry.tag().into()),
                    entry,
                    stats: Mutex::new(JobStats::default()),
                    skip_note: Mutex::new(SkipNote::default()),
                });
                next.insert(id, job);
                applied.added += 1;
                continue;
            }
            let name = self.stable_name(&entry);
            let tag = entry.tag();
            match self.register(entry, name.clone()) {
                Ok(job) => {
                    next.insert(id, job);
                    applied.added += 1;
                }
                Err(e) => self.log.event(
                    Level::Error,
                    Some(&tag),
                    "register",
                    &format!("cannot schedule the job: {e}"),
                    &[("name", name.into())],
                ),
            }
        }
        self.by_identity = next;
        applied
    }
}

/// Checks what the parser cannot: every cron line fires again after `now`.
pub(crate) fn validate(
    file: &str,
    crontab: &Crontab,
    now: DateTime<Utc>,
) -> Result<(), CrontabError> {
    for e in &crontab.entries {
        if let When::Cron { expr, tz } = &e.when {
            if expr.next_after(now, tz).is_none() {
                return Err(CrontabError {
                    file: file.to_owned(),
                    line: e.line,
                    column: 1,
                    kind: CrontabErrorKind::NeverFires(expr.as_str().to_owned()),
                });
            }
        }
    }
    Ok(())
}
