//! The embedded store: durable tasks in one redb file.
//!
//! # Layout
//!
//! Four tables: `meta` (`"format"` → this layout's version, 2),
//! `tasks` (name → [`TaskRecord::encode`]), `cursors` (name → the task's
//! cursor, nanoseconds) and `progress` (commit number → the cursor moves
//! of one commit of fire progress, `Marks::encode`). A definition write
//! replaces the record and raises the cursor row. Fire progress is written
//! as **one `progress` row per commit** (one value of a few bytes per fire,
//! not one B-tree update per fire), and *folded* into `cursors` (each
//! cursor row becomes the larger of itself and the largest logged move of
//! its task; moves of tasks no longer stored are dropped) by the commit
//! that needs it: any commit that changes a definition (a register,
//! remove, pause, resume, reschedule, or a fire that ends its task) folds
//! the log first, and a progress commit folds it, with its own moves, once
//! the log holds `LOG_ROWS` rows or `LOG_MARKS` moves. So the log only
//! ever holds moves made since the last definition change, and applying
//! them later gives what applying them at once would have given (cursors
//! only rise, and no task came or went in between). On load a task's
//! cursor is the largest of its record's, its cursor row's and its logged
//! moves.
//!
//! Format 1 (no `progress` table) is migrated on open: one commit adds the
//! table and the new version. A newer version is [`StoreError::TooNew`].
//!
//! # Ground rules
//!
//! * **One committer thread** owns every write transaction. Callers send
//!   their request and wait for its reply; the committer takes every
//!   request waiting when it starts a transaction (up to [`GROUP`]) and
//!   commits them together: one fsync for all of them (group commit). A
//!   failed commit fails every request in it, and none of it is on disk.
//! * **Cursors only rise**: every cursor write keeps the larger of the
//!   stored and the new value, so the order in which definition writes
//!   and fire progress arrive does not matter.
//! * Reads happen once, at open, before the committer starts.
//! * The file is locked by redb for as long as the store is open: a second
//!   open (another process, or this one) is [`StoreError::Locked`].

use crate::policy::Delivery;
use crate::store::{FireClaim, FireDone, Op, Store, StoreError, TaskRecord};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");
const CURSORS: TableDefinition<&str, i64> = TableDefinition::new("cursors");
const PROGRESS: TableDefinition<u64, &[u8]> = TableDefinition::new("progress");

/// This build's layout version (the `meta` table's `"format"`): 2 added
/// the `progress` log.
pub(crate) const FORMAT: u64 = 2;

/// A progress commit folds the log into `cursors` once it holds this many
/// rows (one per progress commit since the last fold)...
pub(crate) const LOG_ROWS: u64 = 8;
/// ... or this many cursor moves.
pub(crate) const LOG_MARKS: u64 = 1 << 20;

/// Most requests one commit takes.
const GROUP: usize = 4096;

/// What a commit promises once it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync per commit (the default): on disk when the call returns.
    #[default]
    Immediate,
    /// No fsync: the file stays consistent after a crash, but the changes
    /// of the last moments before it may be lost (the OS writes them back
    /// when it chooses; a clean close makes them durable).
    None,
}

/// Opens a [`RedbStore`] with options.
#[must_use]
pub struct RedbStoreBuilder {
    path: PathBuf,
    durability: Durability,
    backend: Option<Opener>,
    log_rows: u64,
}

/// Opens the database on a test backend.
type Opener = Box<dyn FnOnce(&redb::Builder) -> Result<redb::Database, redb::DatabaseError> + Send>;

impl RedbStoreBuilder {
    /// The durability of every commit (default [`Durability::Immediate`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Folds the progress log once it holds `rows` rows (default 8;
    /// 0 and 1: every progress commit writes `cursors`
    /// itself, as format 1 did): for tests reaching every kind of commit
    /// in few steps, and benchmarks. Outside semver.
    #[doc(hidden)]
    pub fn log_rows(mut self, rows: u64) -> Self {
        self.log_rows = rows;
        self
    }

    /// Uses `backend` instead of the file at the path (which then only
    /// names the store in errors): for fault-injection tests (a backend
    /// that fails its Nth write or sync). Outside semver.
    #[doc(hidden)]
    pub fn backend(mut self, backend: impl redb::StorageBackend) -> Self {
        self.backend = Some(Box::new(move |b: &redb::Builder| {
            let len = backend.len().map_err(io_error)?;
            if unfinished(len, |at, out| backend.read(at, out)).map_err(io_error)? {
                backend.set_len(0).map_err(io_error)?;
            }
            b.create_with_backend(backend)
        }));
        self
    }

    /// Opens (or creates) the store and reads every task in it.
    pub fn open(self) -> Result<RedbStore, StoreError> {
        let path = self.path.display().to_string();
        let builder = redb::Database::builder();
        let db = match self.backend {
            Some(open) => open(&builder).map_err(|e| open_error(&path, e)),
            None => reset_unfinished(&self.path)
                .map_err(|e| StoreError::Io(format!("{path}: {e}")))
                .and_then(|()| builder.create(&self.path).map_err(|e| open_error(&path, e))),
        }?;
        let (loaded, unreadable, log) = load(&db, &path)?;
        let (tx, rx) = mpsc::channel::<Request>();
        let commits = Arc::new(AtomicU64::new(0));
        let committer = Committer {
            db,
            durability: self.durability,
            rx,
            commits: commits.clone(),
            log,
            log_rows: self.log_rows,
        };
        let thread = std::thread::Builder::new()
            .name("cronlane-store".into())
            .spawn(move || committer.run())
            .map_err(|e| {
                StoreError::Io(format!("cannot start the store's committer thread: {e}"))
            })?;
        Ok(RedbStore {
            path,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            loaded: Mutex::new(loaded),
            unreadable,
            commits,
        })
    }
}

/// Durable tasks in one redb file (see the module docs and
/// `SchedulerBuilder::store`).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use cronlane::store::RedbStore;
/// use cronlane::{Schedule, Scheduler};
/// let dir = std::env::temp_dir().join(format!("cronlane-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("tasks.redb");
/// # let _ = std::fs::remove_file(&path);
/// let scheduler = Scheduler::builder()
///     .test_mode(true)
///     .store(RedbStore::open(&path)?)
///     .build();
/// scheduler.handler("send-report", |ctx| println!("report for {}", ctx.scheduled()))?;
/// scheduler
///     .add(Schedule::cron("0 9 * * MON-FRI")?)
///     .name("daily-report")
///     .durable("send-report")
///     .register()?;
/// assert_eq!(scheduler.durable_tasks().len(), 1);
/// # drop(scheduler); std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
pub struct RedbStore {
    path: String,
    tx: Mutex<Option<Sender<Request>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    loaded: Mutex<Vec<TaskRecord>>,
    unreadable: Vec<(String, String)>,
    commits: Arc<AtomicU64>,
}

impl RedbStore {
    /// Opens (or creates) the store at `path` with the default durability.
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStore, StoreError> {
        RedbStore::builder(path).open()
    }

    /// Options before opening.
    pub fn builder(path: impl AsRef<Path>) -> RedbStoreBuilder {
        RedbStoreBuilder {
            path: path.as_ref().to_path_buf(),
            durability: Durability::default(),
            backend: None,
            log_rows: LOG_ROWS,
        }
    }

    /// Records found at open that could not be decoded: `(name, why)`.
    /// They stay in the file untouched (nothing is deleted for being
    /// unreadable) and their tasks are not loaded.
    pub fn unreadable(&self) -> &[(String, String)] {
        &self.unreadable
    }

    /// The store's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A counter of the committer's transactions (successful or not) since
    /// open, still readable once the store is moved into a scheduler: for
    /// benchmarks measuring requests per group commit. Outside semver.
    #[doc(hidden)]
    pub fn commit_counter(&self) -> Arc<AtomicU64> {
        self.commits.clone()
    }

    fn call(&self, work: Work) -> Result<(), StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        {
            let tx = self
                .tx
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let tx = tx.as_ref().ok_or(StoreError::Closed)?;
            tx.send(Request { work, reply })
                .map_err(|_| StoreError::Closed)?;
        }
        answer.recv().map_err(|_| StoreError::Closed)?
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        // Closing the channel ends the committer after what it holds.
        drop(
            self.tx
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store for RedbStore {
    fn loaded(&self) -> Vec<TaskRecord> {
        std::mem::take(
            &mut *self
                .loaded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.call(Work::Ops(ops))
    }

    fn claim(&self, fires: &mut [FireClaim]) -> Result<(), StoreError> {
        // At most once: the cursor moves before the callbacks. At least
        // once writes nothing now.
        let mut marks = Marks::with_capacity(fires.len());
        for f in fires.iter().filter(|f| f.delivery == Delivery::AtMostOnce) {
            marks.push(&f.name, f.scheduled, f.last);
        }
        self.progress(marks)
    }

    fn complete(&self, fires: &[FireDone]) -> Result<(), StoreError> {
        let mut marks = Marks::with_capacity(fires.len());
        for f in fires {
            marks.push(&f.name, f.scheduled, f.last);
        }
        self.progress(marks)
    }
}

impl RedbStore {
    /// Writes cursor moves in one commit (none: no commit).
    fn progress(&self, marks: Marks) -> Result<(), StoreError> {
        if marks.is_empty() {
            return Ok(());
        }
        self.call(Work::Progress(marks))
    }
}

/// Cursor moves (and, with `last`, ends of tasks), compact: the names
/// copied into one string, one fixed-size entry per move. No per-fire
/// allocation or reference count (the committer thread never touches the
/// scheduler's names, whose cache lines stay with the firing thread).
struct Marks {
    names: String,
    marks: Vec<Mark>,
}

/// One move: its name ends at `end` in [`Marks::names`].
struct Mark {
    end: usize,
    cursor: i64,
    last: bool,
}

impl Marks {
    fn with_capacity(n: usize) -> Marks {
        Marks {
            names: String::with_capacity(n * 16),
            marks: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, name: &str, cursor: i64, last: bool) {
        self.names.push_str(name);
        self.marks.push(Mark {
            end: self.names.len(),
            cursor,
            last,
        });
    }

    fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    fn len(&self) -> usize {
        self.marks.len()
    }

    /// Whether a move ends its task (a definition change: see the layout).
    fn any_last(&self) -> bool {
        self.marks.iter().any(|m| m.last)
    }

    /// The `progress` row of these moves (none may be `last`): per move,
    /// the name's length (u32 LE), the name, the cursor (i64 LE).
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.names.len() + 12 * self.marks.len());
        for (name, cursor, _) in self.iter() {
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&cursor.to_le_bytes());
        }
        out
    }

    /// Each move as `(name, cursor, last)`, in order.
    fn iter(&self) -> impl Iterator<Item = (&str, i64, bool)> {
        let mut start = 0;
        self.marks.iter().map(move |m| {
            // In bounds and on character boundaries: `end` was the
            // string's length right after a whole `&str` was pushed.
            let name = self.names.get(start..m.end).unwrap_or_default();
            start = m.end;
            (name, m.cursor, m.last)
        })
    }
}

/// The moves of a `progress` row, appended to `out`; `None`: the row is
/// damaged.
fn decode_marks<'a>(mut row: &'a [u8], out: &mut Vec<(&'a str, i64)>) -> Option<()> {
    while !row.is_empty() {
        let (len, rest) = row.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return None;
        }
        let (name, rest) = rest.split_at(len);
        let (cursor, rest) = rest.split_first_chunk::<8>()?;
        out.push((std::str::from_utf8(name).ok()?, i64::from_le_bytes(*cursor)));
        row = rest;
    }
    Some(())
}

/// Sorted by name, one move per name (its largest).
fn largest_per_name(moves: &mut Vec<(&str, i64)>) {
    moves.sort_unstable();
    // Sorted by (name, cursor): the last of each name is its largest.
    moves.reverse();
    moves.dedup_by(|later, kept| later.0 == kept.0);
    moves.reverse();
}

enum Work {
    Ops(Vec<Op>),
    Progress(Marks),
}

struct Request {
    work: Work,
    reply: SyncSender<Result<(), StoreError>>,
}

struct Committer {
    db: redb::Database,
    durability: Durability,
    rx: Receiver<Request>,
    commits: Arc<AtomicU64>,
    /// What the `progress` table holds (as of the last successful commit).
    log: Log,
    /// [`RedbStoreBuilder::log_rows`].
    log_rows: u64,
}

/// The state of the `progress` log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Log {
    /// Its rows and the moves in them.
    rows: u64,
    marks: u64,
    /// The key of the next row (one more than the largest so far).
    next: u64,
}

impl Committer {
    fn run(mut self) {
        while let Ok(first) = self.rx.recv() {
            let mut group = vec![first];
            while group.len() < GROUP {
                match self.rx.try_recv() {
                    Ok(r) => group.push(r),
                    Err(_) => break,
                }
            }
            let result = match self.commit(&group) {
                Ok(log) => {
                    self.log = log;
                    Ok(())
                }
                Err(e) => Err(e),
            };
            // Relaxed: a statistic, read after the replies it counts.
            self.commits.fetch_add(1, Ordering::Relaxed);
            for r in group {
                let _ = r.reply.send(result.clone());
            }
        }
    }

    /// One transaction for `group`; the log's state after it.
    fn commit(&self, group: &[Request]) -> Result<Log, StoreError> {
        let mut txn = self.db.begin_write().map_err(io)?;
        let durability = match self.durability {
            Durability::Immediate => redb::Durability::Immediate,
            Durability::None => redb::Durability::None,
        };
        txn.set_durability(durability).map_err(io)?;
        let mut log = self.log;
        {
            let mut tasks = txn.open_table(TASKS).map_err(io)?;
            let mut cursors = txn.open_table(CURSORS).map_err(io)?;
            let mut progress_log = txn.open_table(PROGRESS).map_err(io)?;
            // A definition change (or a fire ending its task) applies
            // every move directly, in order, after folding what the log
            // holds (see the layout: the log never spans a definition
            // change).
            let defs = group.iter().any(|r| match &r.work {
                Work::Ops(_) => true,
                Work::Progress(m) => m.any_last(),
            });
            let moves: u64 = group
                .iter()
                .map(|r| match &r.work {
                    Work::Progress(m) => m.len() as u64,
                    Work::Ops(_) => 0,
                })
                .sum();
            let full = log.rows + 1 >= self.log_rows || log.marks + moves >= LOG_MARKS;
            if !defs && !full {
                // Progress only: one row.
                let mut row = Vec::new();
                for r in group {
                    if let Work::Progress(m) = &r.work {
                        row.extend_from_slice(&m.encode());
                    }
                }
                progress_log.insert(log.next, row.as_slice()).map_err(io)?;
                log.rows += 1;
                log.marks += moves;
                log.next += 1;
            } else if !defs {
                // Progress only, the log full: fold it with these moves.
                let extra: Vec<&Marks> = group
                    .iter()
                    .filter_map(|r| match &r.work {
                        Work::Progress(m) => Some(m),
                        Work::Ops(_) => None,
                    })
                    .collect();
                fold(&tasks, &mut cursors, &mut progress_log, log, &extra)?;
                log.rows = 0;
                log.marks = 0;
            } else {
                if log.rows > 0 {
                    fold(&tasks, &mut cursors, &mut progress_log, log, &[])?;
                    log.rows = 0;
                    log.marks = 0;
                }
                // One encoding buffer for the whole commit.
                let mut buf = Vec::new();
                for r in group {
                    match &r.work {
                        Work::Ops(ops) => {
                            for op in ops {
                                match op {
                                    Op::Put(rec) => {
                                        buf.clear();
                                        rec.encode_into(&mut buf);
                                        tasks
                                            .insert(rec.name.as_str(), buf.as_slice())
                                            .map_err(io)?;
                                        raise(&mut cursors, &rec.name, rec.cursor)?;
                                    }
                                    Op::Delete(name) => {
                                        tasks.remove(name.as_str()).map_err(io)?;
                                        cursors.remove(name.as_str()).map_err(io)?;
                                    }
                                }
                            }
                        }
                        Work::Progress(marks) => {
                            for (name, cursor, last) in marks.iter() {
                                if last {
                                    tasks.remove(name).map_err(io)?;
                                    cursors.remove(name).map_err(io)?;
                                } else {
                                    progress(&tasks, &mut cursors, name, cursor)?;
                                }
                            }
                        }
                    }
                }
            }
        }
        txn.commit().map_err(io)?;
        Ok(log)
    }
}

/// Folds the `progress` log (its `log.rows` rows, below `log.next`) and
/// `extra` moves into `cursors` (each task's largest move, in name order,
/// through [`progress`]) and empties the log.
fn fold(
    tasks: &redb::Table<'_, &'static str, &'static [u8]>,
    cursors: &mut redb::Table<'_, &'static str, i64>,
    progress_log: &mut redb::Table<'_, u64, &'static [u8]>,
    log: Log,
    extra: &[&Marks],
) -> Result<(), StoreError> {
    let mut rows = Vec::with_capacity(log.rows as usize);
    for row in progress_log.iter().map_err(io)? {
        let (k, v) = row.map_err(io)?;
        rows.push((k.value(), v.value().to_vec()));
    }
    let mut moves = Vec::with_capacity((log.marks as usize).saturating_add(16));
    for (_, row) in &rows {
        decode_marks(row, &mut moves).ok_or_else(|| StoreError::Corrupt {
            path: String::new(),
            detail: "a damaged progress row".into(),
        })?;
    }
    for m in extra {
        moves.extend(m.iter().map(|(name, cursor, _)| (name, cursor)));
    }
    largest_per_name(&mut moves);
    for (name, cursor) in moves {
        progress(tasks, cursors, name, cursor)?;
    }
    for (k, _) in rows {
        progress_log.remove(k).map_err(io)?;
    }
    Ok(())
}

/// The cursor of `name` becomes the larger of the stored one and `to`:
/// one B-tree operation when it rises (the common case); the old value is
/// put back when it was the larger.
fn raise(
    cursors: &mut redb::Table<'_, &'static str, i64>,
    name: &str,
    to: i64,
) -> Result<(), StoreError> {
    let old = cursors.insert(name, to).map_err(io)?.map(|g| g.value());
    if let Some(old) = old.filter(|&o| o > to) {
        cursors.insert(name, old).map_err(io)?;
    }
    Ok(())
}

/// Fire progress for `name`: its cursor rises to `to` if the task is still
/// stored. Every stored task has a cursor row (a definition write puts
/// both, a delete removes both), so in the common case the cursor row
/// answers "still stored" within the one insert that raises it, and the
/// record is not read. Without a cursor row the record is looked up: a
/// task that is gone gets no cursor; one stored without a cursor row (a
/// file written otherwise) gets it, as before.
fn progress(
    tasks: &redb::Table<'_, &'static str, &'static [u8]>,
    cursors: &mut redb::Table<'_, &'static str, i64>,
    name: &str,
    to: i64,
) -> Result<(), StoreError> {
    let old = cursors.insert(name, to).map_err(io)?.map(|g| g.value());
    match old {
        Some(old) if old > to => {
            cursors.insert(name, old).map_err(io)?;
        }
        Some(_) => {}
        None => {
            if tasks.get(name).map_err(io)?.is_none() {
                cursors.remove(name).map_err(io)?;
            }
        }
    }
    Ok(())
}

/// What [`load`] found: the records, the unreadable ones as
/// `(name, why)`, and the state of the progress log.
type Loaded = (Vec<TaskRecord>, Vec<(String, String)>, Log);

/// Reads every record (and checks or writes the format version).
fn load(db: &redb::Database, path: &str) -> Result<Loaded, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.to_owned(),
        detail,
    };
    let read = db.begin_read().map_err(io)?;
    let format = match read.open_table(META) {
        Ok(meta) => meta.get("format").map_err(io)?.map(|g| g.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(corrupt(e.to_string())),
    };
    match format {
        Some(FORMAT) => {}
        Some(1) => {
            // Format 1: the same tables without the progress log. One
            // commit adds it (a crash before it leaves format 1, migrated
            // again at the next open).
            drop(read);
            let txn = db.begin_write().map_err(io)?;
            txn.open_table(PROGRESS).map_err(io)?;
            txn.open_table(META)
                .map_err(io)?
                .insert("format", FORMAT)
                .map_err(io)?;
            txn.commit().map_err(io)?;
            tracing::info!(store = %path, "cronlane: store migrated from format 1 to {FORMAT}");
            return load(db, path);
        }
        Some(found) if found > FORMAT => {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found: u32::try_from(found).unwrap_or(u32::MAX),
                supported: FORMAT as u32,
            })
        }
        Some(found) => return Err(corrupt(format!("unknown format version {found}"))),
        None => {
            // A new file, or a redb file that is not ours.
            let tables = read.list_tables().map_err(io)?.count();
            if tables > 0 {
                return Err(corrupt("a redb file without cronlane's tables".into()));
            }
            drop(read);
            let txn = db.begin_write().map_err(io)?;
            txn.open_table(META)
                .map_err(io)?
                .insert("format", FORMAT)
                .map_err(io)?;
            txn.open_table(TASKS).map_err(io)?;
            txn.open_table(CURSORS).map_err(io)?;
            txn.open_table(PROGRESS).map_err(io)?;
            txn.commit().map_err(io)?;
            return Ok((Vec::new(), Vec::new(), Log::default()));
        }
    }
    let tasks = read.open_table(TASKS).map_err(|e| corrupt(e.to_string()))?;
    let cursors = read
        .open_table(CURSORS)
        .map_err(|e| corrupt(e.to_string()))?;
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    // Both tables are in name order: walk them together (a merge join)
    // rather than looking each cursor up.
    let mut cursor_rows = cursors.iter().map_err(io)?;
    let mut next_cursor = cursor_rows.next().transpose().map_err(io)?;
    for item in tasks.iter().map_err(io)? {
        let (k, v) = item.map_err(io)?;
        let name = k.value();
        let mut stored = None;
        while let Some(order) = next_cursor.as_ref().map(|(ck, _)| ck.value().cmp(name)) {
            match order {
                std::cmp::Ordering::Less => {
                    next_cursor = cursor_rows.next().transpose().map_err(io)?;
                }
                std::cmp::Ordering::Equal => {
                    stored = next_cursor.as_ref().map(|(_, cv)| cv.value());
                    break;
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        match TaskRecord::decode(v.value()) {
            Ok(mut rec) if rec.name == name => {
                if let Some(c) = stored {
                    rec.cursor = rec.cursor.max(c);
                }
                out.push(rec);
            }
            Ok(rec) => unreadable.push((
                name.to_owned(),
                format!("record names another task: {:?}", rec.name),
            )),
            Err(e) => unreadable.push((name.to_owned(), e.to_string())),
        }
    }
    // The progress log: each task's largest logged move raises its cursor
    // (both in name order: a merge again).
    let progress_log = read
        .open_table(PROGRESS)
        .map_err(|e| corrupt(e.to_string()))?;
    let mut log = Log::default();
    let mut rows = Vec::new();
    for row in progress_log.iter().map_err(io)? {
        let (k, v) = row.map_err(io)?;
        log.rows += 1;
        log.next = k.value() + 1;
        rows.push(v);
    }
    if !rows.is_empty() {
        let mut moves = Vec::new();
        for row in &rows {
            decode_marks(row.value(), &mut moves)
                .ok_or_else(|| corrupt("a damaged progress row".into()))?;
        }
        log.marks = moves.len() as u64;
        largest_per_name(&mut moves);
        let mut moves = moves.into_iter().peekable();
        for rec in &mut out {
            while moves.next_if(|(n, _)| *n < rec.name.as_str()).is_some() {}
            if let Some((_, c)) = moves.next_if(|(n, _)| *n == rec.name.as_str()) {
                rec.cursor = rec.cursor.max(c);
            }
        }
    }
    for (name, why) in &unreadable {
        tracing::error!(store = %path, task = %name, error = %why, "cronlane: unreadable task record; kept in the store, not loaded");
    }
    Ok((out, unreadable, log))
}

/// Whether the bytes are a file redb began to create and never finished:
/// redb writes the magic number last, once the rest of the new file is
/// synced, and refuses a file without it forever after. A crash during a
/// store's first open leaves such a file: a header without its magic
/// number and nothing past the first 4 KiB (or only part of that header, when the
/// file's length was not synced). Nothing was ever stored in it
/// (the open never returned), so it is created again; a file that has
/// anything else is left alone (a foreign file stays [`StoreError::Corrupt`]).
fn unfinished(
    len: u64,
    read: impl Fn(u64, &mut [u8]) -> std::io::Result<()>,
) -> std::io::Result<bool> {
    const PAGE: u64 = 4096;
    // redb's first layout is small; a bigger file is not a creation.
    if !(9..=(1 << 20)).contains(&len) {
        return Ok(false);
    }
    let mut magic = [0u8; 9];
    read(0, &mut magic)?;
    if magic != [0; 9] {
        return Ok(false);
    }
    if len <= PAGE {
        return Ok(true);
    }
    let mut rest = vec![0u8; (len - PAGE) as usize];
    read(PAGE, &mut rest)?;
    Ok(rest.iter().all(|&b| b == 0))
}

/// [`unfinished`] for the file at `path` (truncated to empty when it is).
fn reset_unfinished(path: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let read = |at: u64, out: &mut [u8]| {
        let mut f = &file;
        f.seek(SeekFrom::Start(at))?;
        f.read_exact(out)
    };
    if unfinished(len, read)? {
        tracing::warn!(store = %path.display(), "cronlane: the store's creation was interrupted (a crash during its first open); creating it again");
        file.set_len(0)?;
        file.sync_all()?;
    }
    Ok(())
}

fn io_error(e: std::io::Error) -> redb::DatabaseError {
    redb::DatabaseError::Storage(redb::StorageError::Io(e))
}

fn open_error(path: &str, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
            path: path.to_owned(),
        },
        redb::DatabaseError::UpgradeRequired(v) => StoreError::TooNew {
            path: path.to_owned(),
            found: u32::from(v),
            supported: FORMAT as u32,
        },
        redb::DatabaseError::Storage(redb::StorageError::Io(e))
            if e.kind() != std::io::ErrorKind::InvalidData =>
        {
            StoreError::Io(format!("{path}: {e}"))
        }
        e => StoreError::Corrupt {
            path: path.to_owned(),
            detail: e.to_string(),
        },
    }
}

fn io(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(detail) => StoreError::Corrupt {
            path: String::new(),
            detail,
        },
        e => StoreError::Io(e.to_string()),
    }
}
