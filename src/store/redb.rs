//! The embedded store: durable tasks in one redb file.
//!
//! # Layout
//!
//! Three tables: `meta` (`"format"` → this layout's version, 1),
//! `tasks` (name → [`TaskRecord::encode`]) and `cursors` (name → the
//! task's cursor, nanoseconds). Fire progress touches only `cursors` (a
//! fixed 8-byte value, no record decoded); a definition write replaces the
//! record and raises the cursor. On load a task's cursor is the larger of
//! the two.
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

/// This build's layout version (the `meta` table's `"format"`).
pub(crate) const FORMAT: u64 = 1;

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
}

/// Opens the database on a test backend.
type Opener = Box<dyn FnOnce(&redb::Builder) -> Result<redb::Database, redb::DatabaseError> + Send>;

impl RedbStoreBuilder {
    /// The durability of every commit (default [`Durability::Immediate`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
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
        let (loaded, unreadable) = load(&db, &path)?;
        let (tx, rx) = mpsc::channel::<Request>();
        let commits = Arc::new(AtomicU64::new(0));
        let committer = Committer {
            db,
            durability: self.durability,
            rx,
            commits: commits.clone(),
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
}

impl Committer {
    fn run(self) {
        while let Ok(first) = self.rx.recv() {
            let mut group = vec![first];
            while group.len() < GROUP {
                match self.rx.try_recv() {
                    Ok(r) => group.push(r),
                    Err(_) => break,
                }
            }
            let result = self.commit(&group);
            // Relaxed: a statistic, read after the replies it counts.
            self.commits.fetch_add(1, Ordering::Relaxed);
            for r in group {
                let _ = r.reply.send(result.clone());
            }
        }
    }

    fn commit(&self, group: &[Request]) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(io)?;
        let durability = match self.durability {
            Durability::Immediate => redb::Durability::Immediate,
            Durability::None => redb::Durability::None,
        };
        txn.set_durability(durability).map_err(io)?;
        {
            let mut tasks = txn.open_table(TASKS).map_err(io)?;
            let mut cursors = txn.open_table(CURSORS).map_err(io)?;
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
        txn.commit().map_err(io)
    }
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

/// What [`load`] found: the records, and the unreadable ones as
/// `(name, why)`.
type Loaded = (Vec<TaskRecord>, Vec<(String, String)>);

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
            txn.commit().map_err(io)?;
            return Ok((Vec::new(), Vec::new()));
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
    for (name, why) in &unreadable {
        tracing::error!(store = %path, task = %name, error = %why, "cronlane: unreadable task record; kept in the store, not loaded");
    }
    Ok((out, unreadable))
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
