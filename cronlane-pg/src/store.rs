//! [`PgStore`]: the store seam on PostgreSQL, and [`PgHandle`], a clonable
//! view of it for statistics and fenced effects.
//!
//! # Ground rules
//!
//! * Every guard compares **database time** (`now()` inside the statement):
//!   a claim is not early, not past the misfire threshold, and made by a
//!   node whose lease is live, all in the claim's own `INSERT`. The local
//!   clock only decides *when to ask*.
//! * The fire key is `(task, scheduled instant)` at microsecond precision;
//!   the primary key decides the winner, whatever ranking or retry asked.
//! * A pass's claims (`claim`) are the scheduler's; fires claimed outside a
//!   pass (deferred ranks, claims retried after an error, takeovers) run
//!   through [`StoreLink::run_now`] on a thread of this backend and are
//!   completed by it. Nothing here calls the link from a `Store` method.
//! * This node's id changes when it rejoins after its lease lapsed; a
//!   completion carries the fence of its claim, so whatever a previous
//!   incarnation runs late is rejected by the fence, not by the id.
//! * Shutdown (drop): stop claiming, let this backend's own runs finish
//!   (grace) and complete them, stop the loops, leave (delete the node
//!   row), and only then stop the heartbeat.

use crate::builder::{OnOwnerDeath, PgStoreBuilder};
use crate::error::{db_text, PgError};
use crate::schema::{fnv, fnv_from, Sql};
use chrono::{DateTime, Utc};
use cronlane::store::{FireClaim, FireDone, Op, RunNow, Store, StoreError, StoreLink, TaskRecord};
use cronlane::Delivery;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The PostgreSQL cluster backend: pass it to
/// `Scheduler::builder().store(..)` exactly like the embedded store. Every
/// scheduler (usually one per process) connected to the same schema is a
/// node of one cluster; each fire runs once across them (see the crate
/// docs for the exact guarantees). Dropping it leaves the cluster in the
/// design's shutdown order.
pub struct PgStore {
    inner: Arc<Inner>,
    loaded: Mutex<Vec<TaskRecord>>,
    rt: Option<tokio::runtime::Runtime>,
    loops: Vec<tokio::task::JoinHandle<()>>,
    completer: Option<tokio::task::JoinHandle<()>>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

/// A clonable view of a [`PgStore`] that outlives handing the store to a
/// scheduler: statistics, this node's id, and fenced effects
/// ([`PgHandle::complete_in`]).
#[derive(Clone)]
pub struct PgHandle {
    pub(crate) inner: Arc<Inner>,
}

/// Counters of one node since it connected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgStats {
    /// Claims this node won (passes, retries and deferred ranks).
    pub claims_won: u64,
    /// Claims another node had won (or past the misfire threshold).
    pub claims_lost: u64,
    /// Fires deferred to the reconciler (a lower rendezvous rank, early by
    /// database time, or the claim failed).
    pub deferred: u64,
    /// Claim statements that failed (connection lost, server down).
    pub claim_errors: u64,
    /// Claims refused locally: the lease had not been renewed in time (a
    /// paused or cut-off node) or the store is shutting down.
    pub refused_unhealthy: u64,
    /// Fenced completions accepted.
    pub completed: u64,
    /// Completions rejected by the fence (a zombie's late result).
    pub zombies_rejected: u64,
    /// Fires of dead owners taken over to run again.
    pub takeovers_rerun: u64,
    /// Fires of dead owners marked abandoned.
    pub takeovers_abandoned: u64,
    /// Times this node found its lease lapsed and rejoined with a new id.
    pub rejoins: u64,
    /// Definition changes applied from other nodes (notify or resync).
    pub applied: u64,
    /// Full resyncs run.
    pub resyncs: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) won: AtomicU64,
    pub(crate) lost: AtomicU64,
    pub(crate) deferred: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) zombies: AtomicU64,
    pub(crate) rerun: AtomicU64,
    pub(crate) abandoned: AtomicU64,
    pub(crate) rejoins: AtomicU64,
    pub(crate) applied: AtomicU64,
    pub(crate) resyncs: AtomicU64,
}

/// This node's membership.
pub(crate) struct Node {
    pub(crate) id: Uuid,
    /// When the last heartbeat that renewed the lease was *sent* (local
    /// monotonic time): the lease runs at least until then + lease.
    pub(crate) renewed: Instant,
    /// Live nodes, sorted (rendezvous ranking).
    pub(crate) live: Vec<Uuid>,
    /// Last measured database clock minus local clock, ms.
    pub(crate) offset_ms: i64,
}

/// A fire to claim outside a pass.
#[derive(Debug, Clone)]
pub(crate) struct Retry {
    pub(crate) name: Arc<str>,
    pub(crate) scheduled: i64,
    pub(crate) not_before: Instant,
}

/// A key to claim: task, instant (ns), and the caller's tag.
pub(crate) struct Key {
    pub(crate) name: Arc<str>,
    pub(crate) at: i64,
    pub(crate) tag: usize,
}

/// What a batch claim answered.
pub(crate) struct Batch {
    /// The fence of each key won, aligned with the (sorted) keys.
    pub(crate) fences: Vec<Option<u64>>,
    pub(crate) alive: bool,
    pub(crate) db_now: DateTime<Utc>,
    /// The node id the claim was made under.
    pub(crate) node: Uuid,
}

/// A claim made ahead of its instant (see [`Ahead`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pre {
    /// The claim statement is under way.
    InFlight,
    /// Under way, and the pass that asked for it did not wait (refused
    /// it): if won, the run pool runs it.
    InFlightRefused,
    /// Won under `node` with `fence`; the pass takes it.
    Won { fence: u64, node: Uuid },
    /// Another node has it, or what happened is not known (a failed
    /// statement: the reconciler claims it with adoption): the pass
    /// refuses it.
    Lost,
    /// Handed to the run pool (the pass never asked in time): the pass
    /// refuses it.
    Handed,
}

/// Claims ahead of the instant. A pass that claims a task's fire as rank
/// 0 plans the task's next instant; the ahead loop claims it `claim_ahead`
/// before the instant (database time as last measured; the claim's own
/// guard refuses anything more than 500 ms early), and the pass that
/// comes at the instant takes the result from here without a round trip.
#[derive(Default)]
pub(crate) struct Ahead {
    /// `(instant, task)` to claim ahead.
    pub(crate) planned: std::collections::BTreeSet<(i64, Arc<str>)>,
    /// Claims made ahead, by task: `(key instant, state)`.
    pub(crate) made: HashMap<Arc<str>, Vec<(i64, Pre)>>,
    /// Won claims the scheduler moved past (it asked for a later instant
    /// of the task): completed as skipped.
    pub(crate) skip: Vec<(Arc<str>, i64, u64)>,
}

/// A fire for the run pool: `(task, scheduled instant, fence)`.
pub(crate) type RunJob = (Arc<str>, i64, u64);

/// Work for the applier thread (the only caller of the link).
pub(crate) enum Apply {
    Upsert(TaskRecord),
    Remove(String),
    Run {
        name: Arc<str>,
        scheduled: i64,
        fence: u64,
    },
}

pub(crate) struct Inner {
    pub(crate) opts: PgStoreBuilder,
    pub(crate) sql: Sql,
    pub(crate) pool: Pool,
    /// The heartbeat's own connection.
    pub(crate) beat_pool: Pool,
    pub(crate) rt: tokio::runtime::Handle,
    pub(crate) node: Mutex<Node>,
    pub(crate) stopping: AtomicBool,
    pub(crate) link: OnceLock<StoreLink>,
    pub(crate) versions: Mutex<HashMap<String, i64>>,
    pub(crate) retry: Mutex<Vec<Retry>>,
    pub(crate) inflight: AtomicUsize,
    pub(crate) stats: Counters,
    pub(crate) apply: Mutex<Option<std::sync::mpsc::Sender<Apply>>>,
    pub(crate) applier: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub(crate) runs: Mutex<Option<std::sync::mpsc::Sender<RunJob>>>,
    pub(crate) wake_heartbeat: tokio::sync::Notify,
    pub(crate) wake_resync: tokio::sync::Notify,
    /// The first `LISTEN` is in place.
    pub(crate) listening: AtomicBool,
    /// Claims made ahead of the instant.
    pub(crate) ahead: Mutex<Ahead>,
    /// Signalled when an ahead claim in flight is answered.
    pub(crate) ahead_done: std::sync::Condvar,
    /// No runner runs (the scheduler's `Store::runner(false)`): nothing is
    /// claimed outside a pass.
    pub(crate) claims_off: AtomicBool,
    /// Completions the scheduler handed over, committed by the completer
    /// (one transaction for all that wait).
    pub(crate) done_q: Mutex<Vec<Done>>,
    pub(crate) wake_completer: tokio::sync::Notify,
    /// The completer writes what is queued and ends (shutdown).
    pub(crate) completer_stop: AtomicBool,
}

/// A fenced completion: task, instant, fence, success, last fire.
pub(crate) type Done = (Arc<str>, i64, u64, bool, bool);

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Nanoseconds since the epoch to a key instant (microseconds).
pub(crate) fn to_ts(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(ns.div_euclid(1000)).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A key instant back to nanoseconds.
pub(crate) fn from_ts(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros().saturating_mul(1000)
}

fn local_now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

thread_local! {
    /// Set on this backend's run threads (a drop there must not wait for
    /// itself).
    static RUN_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl PgStore {
    /// Connects with the default options ([`PgStoreBuilder`]): schema
    /// `sched`, lease 15 s, heartbeat 3 s.
    pub fn connect(url: &str) -> Result<PgStore, PgError> {
        PgStore::builder(url).connect()
    }

    /// Options before connecting.
    pub fn builder(url: &str) -> PgStoreBuilder {
        PgStoreBuilder::new(url)
    }

    /// A clonable handle (statistics, node id, fenced effects) that stays
    /// valid after the store is handed to a scheduler.
    pub fn handle(&self) -> PgHandle {
        PgHandle {
            inner: self.inner.clone(),
        }
    }

    pub(crate) fn open(opts: PgStoreBuilder) -> Result<PgStore, PgError> {
        let mut cfg: tokio_postgres::Config = opts
            .url
            .parse()
            .map_err(|e: tokio_postgres::Error| PgError::BadUrl(e.to_string()))?;
        cfg.connect_timeout(Duration::from_secs(2));
        if cfg.get_application_name().is_none() {
            cfg.application_name("cronlane");
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cronlane-pg")
            .enable_all()
            .build()
            .map_err(|e| PgError::Db(format!("runtime: {e}")))?;
        let target = target_of(&cfg);
        // The heartbeat has a connection of its own: claims, completions
        // and claims ahead never make the lease wait for the pool.
        let beat_pool = Pool::builder(Manager::from_config(
            cfg.clone(),
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        ))
        .max_size(1)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(2)))
        .create_timeout(Some(Duration::from_secs(2)))
        .build()
        .map_err(|e| PgError::Db(e.to_string()))?;
        let manager = Manager::from_config(
            cfg,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(3)))
            .build()
            .map_err(|e| PgError::Db(e.to_string()))?;
        let sql = Sql::new(&opts.schema);
        let id = Uuid::new_v4();
        let (loaded, versions) = rt.block_on(async {
            let started = Instant::now();
            let mut attempts = 0u32;
            let mut backoff = Duration::from_millis(100);
            let mut client = loop {
                attempts += 1;
                match pool.get().await {
                    Ok(c) => break c,
                    Err(e) => {
                        if started.elapsed() + backoff > opts.connect_timeout {
                            return Err(PgError::Unreachable {
                                target: target.clone(),
                                attempts,
                                waited_ms: started.elapsed().as_millis() as u64,
                                last: e.to_string(),
                            });
                        }
                        tracing::warn!(target = %target, attempt = attempts, error = %e, "cronlane-pg: database unreachable; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            };
            crate::schema::migrate(&mut client, &opts.schema).await?;
            let lease = opts.lease.as_secs_f64();
            client
                .query_one(&sql.join, &[&id, &opts.hostname, &lease])
                .await?;
            let rows = client.query(&sql.load, &[]).await?;
            let mut loaded = Vec::new();
            let mut versions = HashMap::new();
            for row in rows {
                let name: String = row.get(0);
                let version: i64 = row.get(3);
                versions.insert(name.clone(), version);
                if row.get::<_, bool>(4) {
                    continue;
                }
                match record_of(&row) {
                    Ok(r) => loaded.push(r),
                    Err(e) => {
                        tracing::error!(task = %name, error = %e, "cronlane-pg: stored definition unreadable; kept in the database")
                    }
                }
            }
            Ok::<_, PgError>((loaded, versions))
        })?;
        let inner = Arc::new(Inner {
            sql,
            pool,
            beat_pool,
            rt: rt.handle().clone(),
            node: Mutex::new(Node {
                id,
                renewed: Instant::now(),
                live: vec![id],
                offset_ms: 0,
            }),
            stopping: AtomicBool::new(false),
            link: OnceLock::new(),
            versions: Mutex::new(versions),
            retry: Mutex::new(Vec::new()),
            inflight: AtomicUsize::new(0),
            stats: Counters::default(),
            apply: Mutex::new(None),
            applier: Mutex::new(None),
            runs: Mutex::new(None),
            wake_heartbeat: tokio::sync::Notify::new(),
            wake_resync: tokio::sync::Notify::new(),
            listening: AtomicBool::new(false),
            ahead: Mutex::new(Ahead::default()),
            ahead_done: std::sync::Condvar::new(),
            claims_off: AtomicBool::new(false),
            done_q: Mutex::new(Vec::new()),
            wake_completer: tokio::sync::Notify::new(),
            completer_stop: AtomicBool::new(false),
            opts,
        });
        let heartbeat = rt.spawn(crate::tasks::heartbeat(inner.clone()));
        let completer = rt.spawn(crate::tasks::completer(inner.clone()));
        let mut loops = vec![
            rt.spawn(crate::tasks::sweep(inner.clone())),
            rt.spawn(crate::tasks::reconcile(inner.clone())),
            rt.spawn(crate::tasks::resync(inner.clone())),
            rt.spawn(crate::tasks::ahead(inner.clone())),
        ];
        if inner.opts.listen {
            loops.push(rt.spawn(crate::tasks::listen(inner.clone())));
            // Changes made by others from now on are notified: wait (a
            // little) for the session, so a fresh node misses none.
            let deadline = Instant::now() + Duration::from_secs(3);
            while !inner.listening.load(Ordering::Acquire) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Ok(PgStore {
            inner,
            loaded: Mutex::new(loaded),
            rt: Some(rt),
            loops,
            completer: Some(completer),
            heartbeat: Some(heartbeat),
        })
    }
}

/// `host:port` of a config, for errors (never the password).
fn target_of(cfg: &tokio_postgres::Config) -> String {
    let host = cfg
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(s) => s.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

/// A definition row (`task_id, def, cursor_ns, version, deleted, last_us`)
/// as a record whose cursor is the later of the stored one and the last
/// claimed fire.
pub(crate) fn record_of(row: &tokio_postgres::Row) -> Result<TaskRecord, PgError> {
    let def: Vec<u8> = row.get(1);
    let mut record = TaskRecord::decode(&def).map_err(|e| PgError::Db(e.to_string()))?;
    let cursor: i64 = row.get(2);
    let last: Option<i64> = row.get(5);
    record.cursor = cursor.max(last.map_or(i64::MIN, |us| us.saturating_mul(1000)));
    Ok(record)
}

impl Inner {
    /// Runs a database call to completion from synchronous code. Inside an
    /// async runtime (the scheduler dropped by a link call on one of this
    /// backend's loops, or a user's executor) blocking is not allowed, so
    /// it runs on a scoped thread of its own.
    pub(crate) fn block<F, T>(&self, make: impl FnOnce() -> F + Send) -> T
    where
        F: std::future::Future<Output = T>,
        T: Send,
    {
        if tokio::runtime::Handle::try_current().is_err() {
            return self.rt.block_on(make());
        }
        std::thread::scope(|s| {
            s.spawn(|| self.rt.block_on(make()))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    fn node_id(&self) -> Uuid {
        lock(&self.node).id
    }

    /// The lease was renewed recently enough to act: at most
    /// `lease - heartbeat` ago (local monotonic time, so a pause shows).
    pub(crate) fn healthy(&self) -> bool {
        let margin = self.opts.lease.saturating_sub(self.opts.heartbeat);
        lock(&self.node).renewed.elapsed() < margin
    }

    /// This node's rendezvous rank for `name` among the live nodes.
    fn rank(&self, name: &str, node: &Node) -> usize {
        // FNV-1a of the id's bytes then the name's (streamed: no buffer).
        let score = |id: &Uuid| mix(fnv_from(fnv(id.as_bytes()), name.as_bytes()));
        let mine = score(&node.id);
        node.live
            .iter()
            .filter(|id| **id != node.id && score(id) > mine)
            .count()
    }

    pub(crate) fn defer(&self, name: Arc<str>, scheduled: i64, after: Duration) {
        self.stats.deferred.fetch_add(1, Ordering::Relaxed);
        lock(&self.retry).push(Retry {
            name,
            scheduled,
            not_before: Instant::now() + after,
        });
    }

    /// One batch claim (keys sorted here). Returns the fence of each key
    /// won (aligned with the sorted keys), whether this node's lease was
    /// live, the database time, and the node id the claim was made under.
    pub(crate) async fn claim_batch(
        &self,
        keys: &mut [Key],
        adopt: bool,
    ) -> Result<Batch, PgError> {
        keys.sort_by(|a, b| (&*a.name, a.at).cmp(&(&*b.name, b.at)));
        let names: Vec<&str> = keys.iter().map(|k| &*k.name).collect();
        let times: Vec<DateTime<Utc>> = keys.iter().map(|k| to_ts(k.at)).collect();
        let node = self.node_id();
        let threshold = self.opts.misfire_threshold.as_secs_f64();
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.claim).await?;
        let rows = client
            .query(&stmt, &[&names, &times, &node, &threshold, &adopt])
            .await?;
        let index: HashMap<(&str, i64), usize> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| ((&*k.name, to_key(k.at)), i))
            .collect();
        let mut fences = vec![None; keys.len()];
        let mut alive = false;
        let mut db_now = Utc::now();
        for row in rows {
            db_now = row.get(3);
            alive = row.get::<_, Option<bool>>(4).unwrap_or(false);
            if let (Some(name), Some(at), Some(fence)) = (
                row.get::<_, Option<String>>(0),
                row.get::<_, Option<DateTime<Utc>>>(1),
                row.get::<_, Option<i64>>(2),
            ) {
                if let Some(&i) = index.get(&(name.as_str(), from_ts(at))) {
                    fences[i] = Some(fence as u64);
                }
            }
        }
        lock(&self.node).offset_ms = db_now.timestamp_millis() - local_now_ms();
        Ok(Batch {
            fences,
            alive,
            db_now,
            node,
        })
    }

    /// Drops from `keys` those another node claimed already (one read, no
    /// write): a deferred rank's claim mostly finds its key taken.
    /// Returns how many were dropped.
    pub(crate) async fn drop_taken(&self, keys: &mut Vec<Key>) -> Result<usize, PgError> {
        let names: Vec<&str> = keys.iter().map(|k| &*k.name).collect();
        let times: Vec<DateTime<Utc>> = keys.iter().map(|k| to_ts(k.at)).collect();
        let node = self.node_id();
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.taken).await?;
        let rows = client.query(&stmt, &[&names, &times, &node]).await?;
        let mut taken = vec![false; keys.len()];
        for r in &rows {
            let i: i64 = r.get(0);
            if let Some(t) = usize::try_from(i - 1).ok().and_then(|i| taken.get_mut(i)) {
                *t = true;
            }
        }
        let mut i = 0;
        keys.retain(|_| {
            i += 1;
            !taken[i - 1]
        });
        Ok(rows.len())
    }

    /// The database clock now, as last measured, in nanoseconds.
    pub(crate) fn db_now_estimate(&self) -> i64 {
        let offset = lock(&self.node).offset_ms;
        Utc::now().timestamp_nanos_opt().unwrap_or(0) + offset * 1_000_000
    }

    /// Takes the pass's fires claimed ahead (waiting up to 1 s for a
    /// claim still in flight; then the pass refuses it and the run pool
    /// runs it if it was won): won ones are set, refused ones (another node, an
    /// unknown outcome, handed to the run pool) are done; `todo` says
    /// which still need a claim. Won claims of a task older than the
    /// instant asked for are ones the scheduler moved past (its overlap or
    /// misfire policy skipped them): queued to be completed as skipped.
    /// Returns how many were won here.
    pub(crate) fn take_ahead(&self, fires: &mut [FireClaim], todo: &mut [bool]) -> usize {
        if self.opts.claim_ahead.is_zero() {
            return 0;
        }
        let me = self.node_id();
        let db_now = self.db_now_estimate();
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut won = 0;
        let mut guard = lock(&self.ahead);
        loop {
            let mut waiting = false;
            {
                let Ahead {
                    planned,
                    made,
                    skip,
                } = &mut *guard;
                if made.is_empty() && planned.is_empty() {
                    return won;
                }
                for (i, f) in fires.iter_mut().enumerate() {
                    if !todo[i] {
                        continue;
                    }
                    let key = to_key(f.scheduled);
                    if !planned.is_empty() {
                        planned.remove(&(f.scheduled, f.name.clone()));
                    }
                    let Some(v) = made.get_mut(&f.name) else {
                        continue;
                    };
                    if let Some(pos) = v.iter().position(|e| e.0 == key) {
                        match v[pos].1 {
                            Pre::InFlight if Instant::now() < deadline => {
                                waiting = true;
                                continue;
                            }
                            Pre::InFlight | Pre::InFlightRefused => {
                                // The pass does not wait longer: refused
                                // here, run by the run pool if won.
                                v[pos].1 = Pre::InFlightRefused;
                                todo[i] = false;
                                continue;
                            }
                            Pre::Won { fence, node } if node == me => {
                                f.won = true;
                                f.fence = fence;
                                won += 1;
                                self.stats.won.fetch_add(1, Ordering::Relaxed);
                            }
                            // Won under a previous id (this node rejoined):
                            // whoever sweeps it takes it over. Or another
                            // node's, or not known, or handed on.
                            _ => {
                                self.stats.lost.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        v.swap_remove(pos);
                        todo[i] = false;
                    }
                    // (Only for a pass on time by database time: a pass of a
                    // clock running ahead asks before the instant.)
                    let mut j = 0;
                    while j < v.len() && key <= db_now + 500_000_000 {
                        match v[j].1 {
                            Pre::Won { fence, node } if v[j].0 < key && node == me => {
                                skip.push((f.name.clone(), v[j].0, fence));
                                v.swap_remove(j);
                            }
                            _ => j += 1,
                        }
                    }
                    if v.is_empty() {
                        made.remove(&f.name);
                    }
                }
            }
            if !waiting {
                return won;
            }
            guard = self
                .ahead_done
                .wait_timeout(guard, Duration::from_millis(10))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// A pass refuses `f` without a claim (this node is not healthy):
    /// whether the reconciler should claim it (with adoption). A claim made
    /// ahead and won is left to it (marked handed on, so nothing here
    /// touches it again); one in flight is run by the run pool if won;
    /// one lost or handed on already is done.
    pub(crate) fn refuse_ahead(&self, f: &FireClaim) -> bool {
        let mut a = lock(&self.ahead);
        a.planned.remove(&(f.scheduled, f.name.clone()));
        let Some(v) = a.made.get_mut(&f.name) else {
            return true;
        };
        let key = to_key(f.scheduled);
        let Some(e) = v.iter_mut().find(|e| e.0 == key) else {
            return true;
        };
        match e.1 {
            Pre::Won { .. } => {
                e.1 = Pre::Handed;
                true
            }
            Pre::InFlight | Pre::InFlightRefused => {
                e.1 = Pre::InFlightRefused;
                false
            }
            Pre::Lost | Pre::Handed => false,
        }
    }

    /// Hands every claim made ahead and not taken yet to the run pool
    /// (it runs each at its instant) and forgets what was planned: the
    /// runner stops, or the store shuts down.
    pub(crate) fn release_ahead(self: &Arc<Self>) {
        let me = self.node_id();
        let mut handed = Vec::new();
        {
            let mut a = lock(&self.ahead);
            a.planned.clear();
            for (name, v) in a.made.iter_mut() {
                for e in v.iter_mut() {
                    if let Pre::Won { fence, node } = e.1 {
                        if node == me {
                            handed.push((name.clone(), e.0, fence));
                        }
                        e.1 = Pre::Handed;
                    }
                }
            }
        }
        self.ahead_done.notify_all();
        for (name, at, fence) in handed {
            self.spawn_run(name, at, fence);
        }
    }

    /// A task was removed: its claims made ahead are completed as
    /// skipped, and nothing more of it is planned.
    pub(crate) fn forget_ahead(&self, name: &str) {
        let me = self.node_id();
        let mut a = lock(&self.ahead);
        a.planned.retain(|(_, n)| &**n != name);
        if let Some(v) = a.made.remove(name) {
            let name: Arc<str> = Arc::from(name);
            for (at, pre) in v {
                if let Pre::Won { fence, node } = pre {
                    if node == me {
                        a.skip.push((name.clone(), at, fence));
                    }
                }
            }
        }
    }

    /// Completes fires claimed ahead and never run as `skipped` (under
    /// their fence).
    pub(crate) async fn skip_batch(&self, fires: &[(Arc<str>, i64, u64)]) -> Result<u64, PgError> {
        let mut sorted: Vec<&(Arc<str>, i64, u64)> = fires.iter().collect();
        sorted.sort_by(|a, b| (&*a.0, a.1).cmp(&(&*b.0, b.1)));
        let names: Vec<&str> = sorted.iter().map(|d| &*d.0).collect();
        let times: Vec<DateTime<Utc>> = sorted.iter().map(|d| to_ts(d.1)).collect();
        let fences: Vec<i64> = sorted.iter().map(|d| d.2 as i64).collect();
        let client = self.pool.get().await?;
        Ok(client
            .execute(&self.sql.skip, &[&names, &times, &fences])
            .await?)
    }

    /// Fenced completion of a batch; returns how many were accepted.
    pub(crate) async fn complete_batch(
        &self,
        done: &[(Arc<str>, i64, u64, bool, bool)],
    ) -> Result<usize, PgError> {
        let names: Vec<&str> = done.iter().map(|d| &*d.0).collect();
        let times: Vec<DateTime<Utc>> = done.iter().map(|d| to_ts(d.1)).collect();
        let fences: Vec<i64> = done.iter().map(|d| d.2 as i64).collect();
        let oks: Vec<bool> = done.iter().map(|d| d.3).collect();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(&self.sql.complete, &[&names, &times, &fences, &oks])
            .await?;
        let accepted: HashSet<(String, i64)> = rows
            .iter()
            .map(|r| (r.get::<_, String>(0), from_ts(r.get(1))))
            .collect();
        // Tasks that ended with an accepted completion: their definitions go.
        let ended: Vec<&str> = done
            .iter()
            .filter(|d| d.4 && accepted.contains(&(d.0.to_string(), to_key(d.1))))
            .map(|d| &*d.0)
            .collect();
        if !ended.is_empty() {
            let rows = tx.query(&self.sql.end_tasks, &[&ended]).await?;
            for r in rows {
                let name: String = r.get(0);
                tx.execute("SELECT pg_notify($1, $2)", &[&self.sql.channel, &name])
                    .await?;
            }
        }
        tx.commit().await?;
        let n = accepted.len();
        self.stats.completed.fetch_add(n as u64, Ordering::Relaxed);
        let rejected = done.len().saturating_sub(n);
        if rejected > 0 {
            self.stats
                .zombies
                .fetch_add(rejected as u64, Ordering::Relaxed);
            tracing::warn!(
                rejected,
                "cronlane-pg: completions rejected by their fence (taken over meanwhile)"
            );
        }
        Ok(n)
    }

    /// Sends work to the applier (no-op once shut down).
    pub(crate) fn send(&self, work: Apply) {
        if let Some(tx) = lock(&self.apply).as_ref() {
            let _ = tx.send(work);
        }
    }

    /// Runs a fire this backend claimed outside a pass, on its own thread,
    /// and completes it under its fence.
    pub(crate) fn spawn_run(self: &Arc<Self>, name: Arc<str>, scheduled: i64, fence: u64) {
        let guard = lock(&self.runs);
        let Some(tx) = guard.as_ref() else {
            return;
        };
        self.inflight.fetch_add(1, Ordering::AcqRel);
        if tx.send((name, scheduled, fence)).is_err() {
            self.inflight.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Room in the run pool: how many more fires the reconciler may claim
    /// now (at most four queued per thread).
    pub(crate) fn run_room(&self) -> usize {
        (self.opts.run_threads * 4).saturating_sub(self.inflight.load(Ordering::Acquire))
    }

    /// Starts the run pool: `run_threads` threads running the fires this
    /// backend claimed outside a pass, then completing them under their
    /// fence (retried while the database is away, bounded).
    fn start_runs(self: &Arc<Self>, link: StoreLink) {
        let (tx, rx) = std::sync::mpsc::channel::<RunJob>();
        *lock(&self.runs) = Some(tx);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..self.opts.run_threads {
            let (inner, rx, link) = (self.clone(), rx.clone(), link.clone());
            let _ = std::thread::Builder::new()
                .name("cronlane-pg-run".into())
                .spawn(move || {
                    RUN_THREAD.with(|r| r.set(true));
                    loop {
                        let job = lock(&rx).recv();
                        let Ok((name, scheduled, fence)) = job else {
                            break;
                        };
                        inner.run_one(&link, name, scheduled, fence);
                        inner.inflight.fetch_sub(1, Ordering::AcqRel);
                    }
                });
        }
    }

    fn run_one(&self, link: &StoreLink, name: Arc<str>, scheduled: i64, fence: u64) {
        // A fire claimed ahead (handed on at a stop) or taken over from a
        // node that left before its instant: it starts at the instant, by
        // the database clock as last measured.
        let early = to_key(scheduled) - self.db_now_estimate();
        if early > 0 {
            std::thread::sleep(Duration::from_nanos(early.min(1_000_000_000) as u64));
        }
        // `None`: the scheduler is gone (the fire stays running and is
        // taken over once this node has left).
        let Some(outcome) = link.run_now(&name, scheduled, fence) else {
            return;
        };
        if outcome != RunNow::Skipped {
            // Committed by the completer with whatever else waits.
            lock(&self.done_q).push((name, scheduled, fence, outcome == RunNow::Succeeded, false));
            self.wake_completer.notify_one();
            return;
        }
        // The overlap policy skipped it: the fire is `skipped`.
        let skip = [(name.clone(), scheduled, fence)];
        let deadline = Instant::now() + self.opts.lease * 4;
        loop {
            match self.rt.block_on(self.skip_batch(&skip)) {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => {
                    tracing::warn!(error = %e, "cronlane-pg: completion failed; retrying");
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => {
                    tracing::error!(error = %e, task = %name, "cronlane-pg: completion failed; the fire stays running and will be taken over");
                    break;
                }
            }
        }
    }

    fn snapshot(&self) -> PgStats {
        let s = &self.stats;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PgStats {
            claims_won: g(&s.won),
            claims_lost: g(&s.lost),
            deferred: g(&s.deferred),
            claim_errors: g(&s.errors),
            refused_unhealthy: g(&s.refused),
            completed: g(&s.completed),
            zombies_rejected: g(&s.zombies),
            takeovers_rerun: g(&s.rerun),
            takeovers_abandoned: g(&s.abandoned),
            rejoins: g(&s.rejoins),
            applied: g(&s.applied),
            resyncs: g(&s.resyncs),
        }
    }
}

/// A 64-bit finaliser (splitmix64's): FNV alone leaves the high bits of
/// keys that share a long prefix (the node id) nearly ordered, so one node
/// would rank first for almost every task.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A nanosecond instant as the key compares it (microseconds, in ns).
fn to_key(ns: i64) -> i64 {
    ns.div_euclid(1000) * 1000
}

impl PgHandle {
    /// This node's current id (a new one after each rejoin).
    pub fn node_id(&self) -> Uuid {
        self.inner.node_id()
    }

    /// Counters since connect.
    pub fn stats(&self) -> PgStats {
        self.inner.snapshot()
    }

    /// The schema this store uses.
    pub fn schema(&self) -> &str {
        &self.inner.opts.schema
    }

    /// The last measured offset of the database clock from this process's
    /// clock, in milliseconds (positive: the database is ahead).
    pub fn clock_offset_ms(&self) -> i64 {
        lock(&self.inner.node).offset_ms
    }
}

impl std::fmt::Debug for PgHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgHandle")
            .field("schema", &self.inner.opts.schema)
            .field("node", &self.inner.node_id())
            .finish()
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.handle().fmt(f)
    }
}

impl Store for PgStore {
    fn loaded(&self) -> Vec<TaskRecord> {
        std::mem::take(&mut *lock(&self.loaded))
    }

    fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let inner = &self.inner;
        for op in &ops {
            if let Op::Delete(name) = op {
                inner.forget_ahead(name);
            }
        }
        let changed = inner.block(move || write_ops(inner, ops))?;
        let mut versions = lock(&inner.versions);
        for (name, v) in changed {
            versions.insert(name, v);
        }
        Ok(())
    }

    fn claim(&self, fires: &mut [FireClaim]) -> Result<(), StoreError> {
        let inner = &self.inner;
        for f in fires.iter_mut() {
            f.won = false;
        }
        if inner.stopping.load(Ordering::Acquire) || !inner.healthy() {
            // A paused or cut-off node does nothing before its heartbeat
            // says where it stands; the reconciler claims these (if still
            // in time) once it does.
            inner
                .stats
                .refused
                .fetch_add(fires.len() as u64, Ordering::Relaxed);
            if !inner.stopping.load(Ordering::Acquire) {
                for f in fires.iter() {
                    if inner.refuse_ahead(f) {
                        inner.defer(f.name.clone(), f.scheduled, Duration::ZERO);
                    }
                }
                inner.wake_heartbeat.notify_one();
            }
            return Ok(());
        }
        // 1. Claims made ahead of the instant: no round trip.
        let mut todo = vec![true; fires.len()];
        let taken = inner.take_ahead(fires, &mut todo);
        // 2. The rest, ranked: rank 0 claims now, the others defer. A fire
        //    this node claims as rank 0 plans its task's next instant, to be
        //    claimed ahead.
        let mut lead =
            !inner.opts.claim_ahead.is_zero() && !inner.claims_off.load(Ordering::Acquire);
        let mut keys: Vec<Key> = Vec::new();
        let mut plan: Vec<(i64, Arc<str>)> = Vec::new();
        {
            let node = lock(&inner.node);
            // Rank r claims r × stagger after the instant, by the database
            // clock as last measured (this clock may run ahead: then it
            // waits for the instant too).
            let db_now = Utc::now().timestamp_nanos_opt().unwrap_or(0) + node.offset_ms * 1_000_000;
            // A pass later than the stagger by database time (a scheduler
            // clock behind, a runner falling behind) plans nothing ahead:
            // the next rank claims sooner than this node would run it.
            // Nor does one early by database time (a scheduler clock
            // ahead: its pass would ask before the claim is made).
            let latest = fires.iter().map(|f| f.scheduled).max().unwrap_or(i64::MAX);
            let earliest = fires.iter().map(|f| f.scheduled).min().unwrap_or(i64::MIN);
            if db_now - latest > inner.opts.stagger.as_nanos() as i64
                || db_now < earliest.saturating_sub(500_000_000)
            {
                lead = false;
            }
            for (i, f) in fires.iter().enumerate() {
                let rank = inner.rank(&f.name, &node);
                if rank == 0 {
                    if let Some(next) = f.next.filter(|&n| lead && n > f.scheduled) {
                        plan.push((next, f.name.clone()));
                    }
                    if todo[i] {
                        keys.push(Key {
                            name: f.name.clone(),
                            at: f.scheduled,
                            tag: i,
                        });
                    }
                } else if todo[i] {
                    let ahead = (f.scheduled - db_now).max(0);
                    let after =
                        Duration::from_nanos(ahead as u64) + inner.opts.stagger * rank as u32;
                    inner.defer(f.name.clone(), f.scheduled, after);
                }
            }
        }
        if !plan.is_empty() {
            lock(&inner.ahead).planned.extend(plan);
        }
        if keys.is_empty() {
            return Ok(());
        }
        let result = inner.block(|| inner.claim_batch(&mut keys, false));
        let batch = match result {
            Ok(b) => b,
            Err(e) => {
                inner.stats.errors.fetch_add(1, Ordering::Relaxed);
                for k in keys {
                    inner.defer(k.name, k.at, Duration::from_millis(100));
                }
                if taken > 0 {
                    // Fires claimed ahead run; the others are refused and
                    // go to the reconciler (with adoption).
                    tracing::warn!(error = %e, "cronlane-pg: claim failed; retrying outside the pass");
                    return Ok(());
                }
                return Err(e.into());
            }
        };
        if !batch.alive {
            inner.wake_heartbeat.notify_one();
        }
        let db_now_ns = from_ts(batch.db_now);
        for (k, fence) in keys.iter().zip(&batch.fences) {
            let f = &mut fires[k.tag];
            if let Some(fence) = fence {
                f.won = true;
                f.fence = *fence;
                inner.stats.won.fetch_add(1, Ordering::Relaxed);
            } else if !batch.alive || db_now_ns < to_key(f.scheduled) - 500_000_000 {
                // Early by database time (this clock runs ahead), or the
                // lease lapsed: try again when it is time / after rejoin.
                let wait = (to_key(f.scheduled) - db_now_ns).max(0);
                inner.defer(
                    f.name.clone(),
                    f.scheduled,
                    Duration::from_nanos(wait as u64),
                );
            } else {
                inner.stats.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn complete(&self, fires: &[FireDone]) -> Result<(), StoreError> {
        let done: Vec<(Arc<str>, i64, u64, bool, bool)> = fires
            .iter()
            .filter(|f| f.fence != 0)
            .map(|f| (f.name.clone(), f.scheduled, f.fence, f.ok, f.last))
            .collect();
        if done.is_empty() {
            return Ok(());
        }
        // Queued for the completer: the scheduler's pass does not wait for
        // the commit. A completion not committed when the node dies leaves
        // its fire running, taken over like any fire of a dead owner.
        let inner = &self.inner;
        lock(&inner.done_q).extend(done);
        inner.wake_completer.notify_one();
        Ok(())
    }

    fn runner(&self, running: bool) {
        let inner = &self.inner;
        inner.claims_off.store(!running, Ordering::Release);
        if running {
            return;
        }
        // Stop claiming outside passes first (the reconciler, the sweep
        // and the ahead loop look at `claims_off`), then run what was
        // claimed ahead at its instant, and let this backend's own runs
        // finish (grace) while the scheduler still exists to run them.
        inner.release_ahead();
        let deadline = Instant::now() + inner.opts.grace;
        let me = usize::from(RUN_THREAD.with(std::cell::Cell::get));
        while inner.inflight.load(Ordering::Acquire) > me && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn attach(&self, link: StoreLink) {
        let (tx, rx) = std::sync::mpsc::channel::<Apply>();
        *lock(&self.inner.apply) = Some(tx);
        if self.inner.link.set(link.clone()).is_err() {
            return;
        }
        self.inner.start_runs(link.clone());
        let inner = self.inner.clone();
        let applier = std::thread::Builder::new()
            .name("cronlane-pg-apply".into())
            .spawn(move || {
                for work in rx {
                    match work {
                        Apply::Upsert(record) => {
                            link.upsert(record);
                            inner.stats.applied.fetch_add(1, Ordering::Relaxed);
                        }
                        Apply::Remove(name) => {
                            link.remove(&name);
                            inner.forget_ahead(&name);
                            inner.stats.applied.fetch_add(1, Ordering::Relaxed);
                        }
                        Apply::Run {
                            name,
                            scheduled,
                            fence,
                        } => inner.spawn_run(name, scheduled, fence),
                    }
                }
            });
        *lock(&self.inner.applier) = applier.ok();
    }
}

/// A definition write: one transaction, a notification per changed task.
async fn write_ops(inner: &Inner, ops: Vec<Op>) -> Result<Vec<(String, i64)>, PgError> {
    let mut client = inner.pool.get().await?;
    let tx = client.transaction().await?;
    let mut names: Vec<&str> = ops
        .iter()
        .map(|op| match op {
            Op::Put(r) => r.name.as_str(),
            Op::Delete(n) => n.as_str(),
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    let existing: HashMap<String, (Vec<u8>, bool)> = tx
        .query(&inner.sql.existing, &[&names])
        .await?
        .into_iter()
        .map(|r| (r.get::<_, String>(0), (r.get(1), r.get(2))))
        .collect();
    let mut changed = Vec::new();
    for op in &ops {
        match op {
            Op::Put(record) => {
                let mut def = record.clone();
                def.cursor = 0;
                let bytes = def.encode();
                if existing
                    .get(&record.name)
                    .is_some_and(|(b, deleted)| !deleted && *b == bytes)
                {
                    continue;
                }
                let (death, max) = match (inner.opts.on_owner_death, record.delivery) {
                    (_, Delivery::AtMostOnce) | (OnOwnerDeath::Abandon, _) => ("abandon", 1),
                    (OnOwnerDeath::Rerun { max_attempts }, _) => {
                        ("rerun", max_attempts.max(1) as i32)
                    }
                };
                let row = tx
                    .query_one(
                        &inner.sql.upsert,
                        &[
                            &record.name,
                            &record.handler,
                            &record.schedule,
                            &record.paused,
                            &bytes,
                            &record.cursor,
                            &death,
                            &max,
                        ],
                    )
                    .await?;
                changed.push((record.name.clone(), row.get::<_, i64>(0)));
            }
            Op::Delete(name) => {
                if let Some(row) = tx.query_opt(&inner.sql.delete, &[name]).await? {
                    changed.push((name.clone(), row.get::<_, i64>(0)));
                }
            }
        }
    }
    for (name, _) in &changed {
        tx.execute("SELECT pg_notify($1, $2)", &[&inner.sql.channel, name])
            .await?;
    }
    tx.commit().await.map_err(|e| PgError::Db(db_text(&e)))?;
    Ok(changed)
}

impl Drop for PgStore {
    fn drop(&mut self) {
        let mut parts = Shutdown {
            inner: self.inner.clone(),
            rt: self.rt.take(),
            loops: std::mem::take(&mut self.loops),
            completer: self.completer.take(),
            heartbeat: self.heartbeat.take(),
        };
        // The scheduler may be dropped last by one of this backend's own
        // loops (a link call on a runtime thread): blocking there is not
        // allowed, so the ordered shutdown goes on on a thread of its own.
        if tokio::runtime::Handle::try_current().is_ok() {
            parts.inner.stopping.store(true, Ordering::Release);
            let spawned = std::thread::Builder::new()
                .name("cronlane-pg-shutdown".into())
                .spawn(move || parts.run(0));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cronlane-pg: shutdown thread failed; the lease expires instead");
            }
            return;
        }
        let me = usize::from(RUN_THREAD.with(std::cell::Cell::get));
        parts.run(me);
    }
}

/// What the ordered shutdown needs, movable to another thread.
struct Shutdown {
    inner: Arc<Inner>,
    rt: Option<tokio::runtime::Runtime>,
    loops: Vec<tokio::task::JoinHandle<()>>,
    completer: Option<tokio::task::JoinHandle<()>>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl Shutdown {
    /// `me`: runs of the pool this thread is one of (it does not wait for
    /// itself).
    fn run(&mut self, me: usize) {
        let inner = &self.inner;
        // 1. Stop claiming; what was claimed ahead runs at its instant.
        inner.stopping.store(true, Ordering::Release);
        inner.release_ahead();
        // 2. Let this backend's own runs finish and complete (grace).
        let deadline = Instant::now() + inner.opts.grace;
        while inner.inflight.load(Ordering::Acquire) > me && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // 3. Nothing claims any more: stop the loops, then let the
        //    applier start what was claimed already, and wait for it.
        for l in self.loops.drain(..) {
            l.abort();
        }
        lock(&inner.apply).take();
        let applier = lock(&inner.applier).take();
        if let Some(applier) = applier {
            if applier.thread().id() != std::thread::current().id() {
                let _ = applier.join();
            }
        }
        lock(&inner.runs).take();
        while inner.inflight.load(Ordering::Acquire) > me && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // 3b. Commit the completions queued (bounded by the grace).
        inner.completer_stop.store(true, Ordering::Release);
        inner.wake_completer.notify_one();
        if let (Some(rt), Some(c)) = (&self.rt, self.completer.take()) {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(2));
            if rt
                .block_on(async move { tokio::time::timeout(left, c).await })
                .is_err()
            {
                tracing::warn!("cronlane-pg: completions not all written before leaving; their fires are taken over");
            }
        }
        // 4. Leave: fires still running here (past the grace) are taken
        //    over by the others at once, not after the lease.
        let id = inner.node_id();
        if let Some(rt) = &self.rt {
            let leave = rt.block_on(async {
                let client = inner.pool.get().await?;
                client.execute(&inner.sql.leave, &[&id]).await?;
                Ok::<_, PgError>(())
            });
            if let Err(e) = leave {
                tracing::warn!(error = %e, "cronlane-pg: leaving the cluster failed; the lease expires instead");
            }
        }
        // 5. Only then stop the heartbeat.
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}
