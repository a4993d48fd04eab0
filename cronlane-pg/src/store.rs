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
use crate::schema::{fnv, Sql};
use chrono::{DateTime, Utc};
use cronlane::store::{FireClaim, FireDone, Op, Store, StoreError, StoreLink, TaskRecord};
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
}

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
            opts,
        });
        let heartbeat = rt.spawn(crate::tasks::heartbeat(inner.clone()));
        let mut loops = vec![
            rt.spawn(crate::tasks::sweep(inner.clone())),
            rt.spawn(crate::tasks::reconcile(inner.clone())),
            rt.spawn(crate::tasks::resync(inner.clone())),
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
        let score = |id: &Uuid| {
            let mut b = id.as_bytes().to_vec();
            b.extend_from_slice(name.as_bytes());
            mix(fnv(&b))
        };
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

    /// One batch claim (keys sorted here). Returns the fence per won key,
    /// whether this node's lease was live, and the database time.
    pub(crate) async fn claim_batch(
        &self,
        keys: &mut [(Arc<str>, i64)],
        adopt: bool,
    ) -> Result<(HashMap<(String, i64), u64>, bool, DateTime<Utc>), PgError> {
        keys.sort_by(|a, b| (&*a.0, a.1).cmp(&(&*b.0, b.1)));
        let names: Vec<&str> = keys.iter().map(|k| &*k.0).collect();
        let times: Vec<DateTime<Utc>> = keys.iter().map(|k| to_ts(k.1)).collect();
        let node = self.node_id();
        let threshold = self.opts.misfire_threshold.as_secs_f64();
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(&self.sql.claim).await?;
        let rows = client
            .query(&stmt, &[&names, &times, &node, &threshold, &adopt])
            .await?;
        let mut won = HashMap::new();
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
                won.insert((name, from_ts(at)), fence as u64);
            }
        }
        lock(&self.node).offset_ms = db_now.timestamp_millis() - local_now_ms();
        Ok((won, alive, db_now))
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
        // `None`: the scheduler is gone (the fire stays running and is
        // taken over once this node has left).
        let Some(ok) = link.run_now(&name, scheduled, fence) else {
            return;
        };
        let done = [(name.clone(), scheduled, fence, ok, false)];
        let deadline = Instant::now() + self.opts.lease * 4;
        loop {
            match self.rt.block_on(self.complete_batch(&done)) {
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
                    inner.defer(f.name.clone(), f.scheduled, Duration::ZERO);
                }
                inner.wake_heartbeat.notify_one();
            }
            return Ok(());
        }
        let mut now_keys: Vec<(Arc<str>, i64)> = Vec::with_capacity(fires.len());
        {
            let node = lock(&inner.node);
            for f in fires.iter() {
                let rank = inner.rank(&f.name, &node);
                if rank == 0 {
                    now_keys.push((f.name.clone(), f.scheduled));
                } else {
                    // Rank r claims r × stagger after the instant, by the
                    // database clock as last measured (this clock may run
                    // ahead: then it waits for the instant too).
                    let db_now =
                        Utc::now().timestamp_nanos_opt().unwrap_or(0) + node.offset_ms * 1_000_000;
                    let ahead = (f.scheduled - db_now).max(0);
                    let after =
                        Duration::from_nanos(ahead as u64) + inner.opts.stagger * rank as u32;
                    inner.defer(f.name.clone(), f.scheduled, after);
                }
            }
        }
        if now_keys.is_empty() {
            return Ok(());
        }
        let result = inner.block(|| inner.claim_batch(&mut now_keys, false));
        let (won, alive, db_now) = match result {
            Ok(r) => r,
            Err(e) => {
                inner.stats.errors.fetch_add(1, Ordering::Relaxed);
                for (name, at) in now_keys {
                    inner.defer(name, at, Duration::from_millis(100));
                }
                return Err(e.into());
            }
        };
        if !alive {
            inner.wake_heartbeat.notify_one();
        }
        let db_now_ns = from_ts(db_now);
        for f in fires.iter_mut() {
            if let Some(fence) = won.get(&(f.name.to_string(), to_key(f.scheduled))) {
                f.won = true;
                f.fence = *fence;
                inner.stats.won.fetch_add(1, Ordering::Relaxed);
            } else if !alive || db_now_ns < to_key(f.scheduled) - 500_000_000 {
                // Early by database time (this clock runs ahead), or the
                // lease lapsed: try again when it is time / after rejoin.
                if now_keys_contains(&now_keys, f) {
                    // (Rank 0 here: claim at the instant by database time.)
                    let wait = (to_key(f.scheduled) - db_now_ns).max(0);
                    inner.defer(
                        f.name.clone(),
                        f.scheduled,
                        Duration::from_nanos(wait as u64),
                    );
                }
            } else if now_keys_contains(&now_keys, f) {
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
        let inner = &self.inner;
        inner.block(|| inner.complete_batch(&done))?;
        Ok(())
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

fn now_keys_contains(keys: &[(Arc<str>, i64)], f: &FireClaim) -> bool {
    keys.iter().any(|k| k.0 == f.name && k.1 == f.scheduled)
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
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl Shutdown {
    /// `me`: runs of the pool this thread is one of (it does not wait for
    /// itself).
    fn run(&mut self, me: usize) {
        let inner = &self.inner;
        // 1. Stop claiming.
        inner.stopping.store(true, Ordering::Release);
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
