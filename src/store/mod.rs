//! The store seam: where durable tasks meet a backend that keeps them.
//!
//! A *durable* task is a named task whose code is a registered *handler*
//! (code is not data) and whose definition — name, handler name, schedule
//! as text, policies, delivery, payload (sealed in production mode),
//! paused flag and **cursor** — lives in a [`Store`]. The same seam serves
//! the embedded store (one process, a local file; `RedbStore` with the
//! `redb` feature) and a cluster backend shared by replicas (one claim per
//! fire across all of them).
//!
//! # Ground rules
//!
//! * **What is written when** (the scheduler calls these; a backend calls
//!   up only through the [`StoreLink`] it was handed, from its own threads):
//!   - [`Store::write`]: definitions, at register, remove, pause, resume
//!     and reschedule of a durable task, durable before it returns; many
//!     threads may call it at once and a backend shares one commit among
//!     them (group commit). A batch registration is one call.
//!   - [`Store::claim`]: once per `run_pending` pass, for every durable
//!     fire of the pass, **before** any of their callbacks starts. A
//!     backend moves the cursor of `AtMostOnce` fires here and may refuse
//!     a fire (a cluster backend: another replica has it).
//!   - [`Store::complete`]: **after** the callbacks, batched (at the end of
//!     a pass, or when enough completions are waiting): the cursor of
//!     `AtLeastOnce` fires moves here.
//!   - A fire marked [`FireClaim::last`] / [`FireDone::last`] ends its task
//!     (a one-shot, or the end of `until`/`times`): the backend deletes the
//!     definition under that fire's delivery policy.
//!   - [`Store::loaded`]: the records read when the backend was opened,
//!     handed to the scheduler once, at build.
//!   - [`Store::attach`]: once, at build, after `loaded`: the scheduler
//!     hands a [`StoreLink`], the only way up. A backend shared with other
//!     schedulers (a cluster) uses it for definitions changed elsewhere
//!     and for fires it took over; the embedded store ignores it.
//! * **A cursor never goes back**: a backend keeps the larger of the stored
//!   and the written cursor whatever the order of the calls (a definition
//!   write carrying an older cursor races a pass's progress).
//! * A scheduler without a store, and a non-durable task on a scheduler
//!   with one, never reach this module: the fire path checks one
//!   `Option` per `run_pending` call (not per fire) and one byte of the
//!   task's policies per fire only when a store is present.
//! * This module knows nothing of the engine or the public handle: it
//!   names only plain data (records, instants in nanoseconds since the
//!   Unix epoch) and its own errors.

mod record;
#[cfg(feature = "redb")]
mod redb;

pub use record::{PayloadRecord, RecordError, TaskRecord};
#[cfg(feature = "redb")]
pub use redb::{Durability, RedbStore, RedbStoreBuilder};

pub use crate::policy::Delivery;
use std::fmt;
use std::sync::Arc;

/// One change to the definitions, for [`Store::write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Creates or replaces the definition of `record.name` (the stored
    /// cursor is kept if it is the larger).
    Put(TaskRecord),
    /// Deletes the definition of the named task (no error if absent).
    Delete(String),
}

/// A durable fire about to start, for [`Store::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FireClaim {
    /// The task's stable name.
    pub name: Arc<str>,
    /// The scheduled instant that runs, nanoseconds since the Unix epoch.
    pub scheduled: i64,
    /// The task's delivery policy.
    pub delivery: Delivery,
    /// This fire ends the task (a one-shot, or the last run of its end).
    pub last: bool,
    /// The task's next instant as planned when this fire started
    /// (nanoseconds since the Unix epoch; `None`: none, or not known). A
    /// backend may claim that fire ahead of time (a cluster backend does,
    /// within its early window); the scheduler still asks for it with
    /// [`Store::claim`] when it is due, or never (the task was paused,
    /// removed, or its overlap or misfire policy skipped that instant).
    pub next: Option<i64>,
    /// Set by the backend: `false` refuses the fire (it does not run, and
    /// is reported as skipped). Starts `true`.
    pub won: bool,
    /// Set by the backend: a fencing token handed to the callback
    /// (0 for backends without one).
    pub fence: u64,
}

/// A durable fire whose callback returned, for [`Store::complete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FireDone {
    /// The task's stable name.
    pub name: Arc<str>,
    /// The scheduled instant that ran, nanoseconds since the Unix epoch.
    pub scheduled: i64,
    /// The task's delivery policy.
    pub delivery: Delivery,
    /// This fire ended the task.
    pub last: bool,
    /// The fence the claim returned.
    pub fence: u64,
    /// Whether the callback succeeded.
    pub ok: bool,
}

/// Why a store call failed. Each names what was wrong; after a failed
/// write the scheduler changed nothing. What the file holds is known again
/// once the store is reopened: a commit whose I/O failed after all of its
/// pages and header were written (a failed fsync, most often) can be there
/// after all (tests/durable_model.rs counts how often).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process (or another store in this one) has the file open.
    #[error("store {path} is locked by another process or store")]
    Locked {
        /// The store's path.
        path: String,
    },
    /// The file is not a cronlane store, or its structure is damaged.
    #[error("store {path} is corrupt or not a cronlane store: {detail}")]
    Corrupt {
        /// The store's path.
        path: String,
        /// What was found.
        detail: String,
    },
    /// The file was written by a newer format version than this build reads.
    #[error("store {path} has format version {found}; this build reads up to {supported}")]
    TooNew {
        /// The store's path.
        path: String,
        /// The version in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// An I/O error (a full disk among them) during a commit or a read.
    #[error("store I/O error: {0}")]
    Io(String),
    /// A record could not be decoded.
    #[error("store record {name:?} is unreadable: {source}")]
    Record {
        /// The record's key.
        name: String,
        /// What was wrong.
        source: RecordError,
    },
    /// The store was closed (its committer is gone).
    #[error("store is closed")]
    Closed,
}

/// A backend that keeps durable tasks. See the module's ground rules for
/// what is called when; every method may be called from several threads
/// at once.
pub trait Store: Send + Sync + 'static {
    /// The records read when the store was opened, handed over once (later
    /// calls return nothing).
    fn loaded(&self) -> Vec<TaskRecord>;
    /// Applies `ops` in one transaction, durable (per the store's
    /// durability setting) before returning. All or nothing.
    fn write(&self, ops: Vec<Op>) -> Result<(), StoreError>;
    /// Fires about to start, before their callbacks. All or nothing; on
    /// `Err` none of them runs.
    fn claim(&self, fires: &mut [FireClaim]) -> Result<(), StoreError>;
    /// Fires whose callbacks returned. On `Err` the scheduler keeps them
    /// and hands them again with the next call.
    fn complete(&self, fires: &[FireDone]) -> Result<(), StoreError>;
    /// Receives the scheduler's [`StoreLink`], once, at build (after
    /// [`loaded`](Self::loaded)). The default ignores it: a store only this
    /// scheduler writes has nothing to tell it.
    fn attach(&self, link: StoreLink) {
        let _ = link;
    }
    /// The scheduler's runner is about to stop (`running == false`, called
    /// before it stops claiming: the first step of the ordered shutdown)
    /// or has started (`true`). A backend that claims fires outside a pass
    /// (a cluster backend's reconciler, takeovers, claims made ahead) stops
    /// doing so while no runner runs, so nothing it claims is left
    /// unrun. The default ignores it.
    fn runner(&self, running: bool) {
        let _ = running;
    }
}

/// What a [`StoreLink`] reaches: the scheduler side (`run::durable`),
/// which holds its scheduler weakly (each call is a no-op once it is gone).
pub(crate) trait LinkTarget: Send + Sync {
    fn alive(&self) -> bool;
    fn upsert(&self, record: TaskRecord) -> bool;
    fn remove(&self, name: &str) -> bool;
    fn runs(&self, name: &str) -> bool;
    fn run_now(&self, name: &str, scheduled: i64, fence: u64) -> Option<RunNow>;
}

/// What [`StoreLink::run_now`] did with a fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunNow {
    /// The callback ran and succeeded.
    Succeeded,
    /// The callback ran and failed (an error or a panic).
    Failed,
    /// The task's overlap policy skipped it: another run of the task was
    /// going (`Overlap::Skip` / `Queue`), or `max` of them (`Allow`).
    Skipped,
}

/// The scheduler's handle for its store's up-calls ([`Store::attach`]):
/// definitions changed by another scheduler sharing the store, and fires
/// the store claimed outside a pass (a takeover). It does not keep the
/// scheduler alive: once the scheduler is gone every call does nothing
/// (and says so). Call it from the backend's own threads, never from
/// inside a [`Store`] method (the scheduler may hold the task's lock
/// there).
#[derive(Clone)]
pub struct StoreLink {
    target: Arc<dyn LinkTarget>,
}

impl StoreLink {
    pub(crate) fn new(target: Arc<dyn LinkTarget>) -> StoreLink {
        StoreLink { target }
    }

    /// Whether the scheduler still exists.
    pub fn is_alive(&self) -> bool {
        self.target.alive()
    }

    /// A definition was created or changed elsewhere: this scheduler holds
    /// it from now on (armed if its handler is registered here, replacing
    /// an older definition of the name), without writing it back. An
    /// unchanged definition (the cursor aside) is a no-op. `false`: the
    /// scheduler is gone.
    pub fn upsert(&self, record: TaskRecord) -> bool {
        self.target.upsert(record)
    }

    /// A definition was deleted elsewhere: this scheduler forgets the task
    /// (no store write). `false`: the scheduler is gone.
    pub fn remove(&self, name: &str) -> bool {
        self.target.remove(name)
    }

    /// Whether this scheduler can run the named task now (it is armed: its
    /// handler is registered here). A backend claims nothing else.
    pub fn runs(&self, name: &str) -> bool {
        self.target.runs(name)
    }

    /// Runs the named task's handler once, now, on this thread, for the
    /// instant `scheduled` (nanoseconds since the Unix epoch) with `fence`
    /// (`FireContext::fence`): a fire the
    /// backend claimed outside a pass (a takeover, a deferred claim). The
    /// task's own timeline is not touched and the scheduler writes no
    /// progress for it: the backend completes it. It follows the task's
    /// overlap policy as a pass would: under `Skip` or `Queue` it does not
    /// run while another run of the task is going (a pass's or another
    /// `run_now`'s), under `Allow { max }` not beyond `max` at once
    /// ([`RunNow::Skipped`], reported as an overlap skip). `None`: no such
    /// armed task here, or the scheduler is gone.
    pub fn run_now(&self, name: &str, scheduled: i64, fence: u64) -> Option<RunNow> {
        self.target.run_now(name, scheduled, fence)
    }
}

impl fmt::Debug for StoreLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreLink")
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Store")
    }
}
