//! The crate's error types.
//!
//! Every fallible public call returns [`Error`]; each variant says what was
//! wrong and, where it helps, carries what was rejected. A call that returns an
//! error has changed nothing.

use crate::cron::CronError;
use crate::id::TaskId;
use crate::seal::{KeyError, SealError};
use crate::store::StoreError;

/// Everything that can go wrong when talking to a [`Scheduler`](crate::Scheduler).
///
/// ```
/// use cronlane::{Error, Schedule, Scheduler};
///
/// let s = Scheduler::builder().test_mode(true).build();
/// match Schedule::cron("0 9 * * MON-FRX") {
///     Err(Error::InvalidCron(e)) => {
///         assert_eq!(e.position(), 12); // the caret goes under `FRX`
///         println!("{e}");
///     }
///     other => panic!("{other:?}"),
/// }
/// s.register_task("report", "0 9 * * *", || ())?;
/// let taken = s.register_task("report", "0 10 * * *", || ()).unwrap_err();
/// assert!(matches!(taken, Error::DuplicateName(ref n) if n == "report"));
/// assert!(matches!(s.remove("nope"), Err(Error::NoSuchName(_))));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The cron expression did not parse; the inner error names the field and
    /// the character position.
    #[error(transparent)]
    InvalidCron(#[from] CronError),

    /// A task with this name is already registered (and replacement was not
    /// asked for).
    #[error("a task named `{0}` is already registered (use .replace_existing() to replace it)")]
    DuplicateName(String),

    /// The task name is empty.
    #[error("task names must not be empty")]
    EmptyName,

    /// An interval schedule with a zero period would fire forever.
    #[error("interval must be greater than zero")]
    ZeroInterval,

    /// The instant lies outside what the engine can represent (years
    /// 1677-2262, nanosecond precision).
    #[error("instant {0} is outside the supported range (years 1677 to 2262)")]
    OutOfRange(String),

    /// The schedule has no fire time at or after now: a one-shot in the past
    /// is fine (it fires at once), but a cron expression that can never match
    /// again (say `0 0 30 2 *`) is rejected.
    /// The string is the schedule's `Display` (``cron `0 0 30 2 *` ``), which
    /// quotes the expression itself.
    #[error("schedule {0} never fires after now")]
    NeverFires(String),

    /// No live task has this id.
    #[error("no task with id {0}")]
    NoSuchId(TaskId),

    /// No live task has this name.
    #[error("no task named `{0}`")]
    NoSuchName(String),

    /// The time zone name is not a known IANA zone.
    #[error("unknown time zone `{0}`")]
    UnknownTimeZone(String),

    /// A runner is already running for this scheduler.
    #[error("a runner is already started for this scheduler")]
    RunnerAlreadyStarted,

    /// The runner of an earlier [`RunnerHandle::shutdown`](crate::RunnerHandle::shutdown)
    /// that timed out is still inside a callback; `start` succeeds once that
    /// callback has returned and the old runner thread has exited.
    #[error("the runner that was shut down is still finishing a callback; start again once it has returned")]
    RunnerStillStopping,

    /// The operating system refused to start a thread.
    #[error("cannot start thread: {0}")]
    Spawn(String),

    /// `shutdown` timed out while callbacks were still running.
    #[error("shutdown timed out after {0:?} with callbacks still running")]
    ShutdownTimeout(std::time::Duration),

    /// A task with a payload was registered on a production scheduler that
    /// has no key ring (see [`SchedulerBuilder::keys`](crate::SchedulerBuilder::keys)).
    #[error("this scheduler seals payloads but has no key ring: set one with SchedulerBuilder::keys or Scheduler::rotate_keys, or build it in test mode")]
    NoKey,

    /// A task with a payload was registered on a production-mode scheduler
    /// of a build without the `seal` feature: such a build cannot seal, and
    /// never keeps a payload in the clear outside test mode. Enable the
    /// feature (it is on by default) or build the scheduler in test mode.
    /// The registration changed nothing. Never returned with the feature on.
    #[error("this build of cronlane has no payload sealing (the `seal` feature is off): a production-mode scheduler refuses payloads; enable the `seal` feature or use test mode")]
    SealingDisabled,

    /// A payload could not be sealed.
    #[error(transparent)]
    Seal(#[from] SealError),

    /// A key or key ring could not be built.
    #[error(transparent)]
    Key(#[from] KeyError),

    /// The store failed (I/O, a full disk, a lock, a corrupt file); the
    /// call changed nothing.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// An async task (`run_async`, feature `tokio`) was registered with no
    /// tokio runtime to run on: none was given to
    /// `SchedulerBuilder::tokio_handle` and none is current.
    #[error("run_async needs a tokio runtime: register on one, or give the scheduler one with SchedulerBuilder::tokio_handle")]
    NoRuntime,

    /// The SIGINT/SIGTERM helpers (feature `tokio`) could not wait for a
    /// signal (their handlers could not be installed, or the blocking form
    /// was called on a runtime).
    #[error("cannot wait for a termination signal: {0}")]
    Signal(String),

    /// A durable task was asked for on a scheduler built without a store.
    #[error("task `{0}` is durable but this scheduler has no store (SchedulerBuilder::store)")]
    NoStore(String),

    /// A durable task needs a name: its identity across restarts.
    #[error("a durable task needs a name (TaskBuilder::name): its identity across restarts")]
    DurableNeedsName,

    /// A durable task names a handler that is not registered
    /// ([`Scheduler::handler`](crate::Scheduler::handler)).
    #[error("no handler named `{0}` is registered (Scheduler::handler)")]
    UnknownHandler(String),

    /// A handler with this name is already registered.
    #[error("a handler named `{0}` is already registered")]
    DuplicateHandler(String),

    /// What a durable task was given does not fit one: a closure instead of
    /// a handler, or an option durable tasks do not keep.
    #[error("durable task `{name}`: {why}")]
    NotDurable {
        /// The task's name.
        name: String,
        /// What does not fit.
        why: &'static str,
    },

    /// A record in the store could not be turned back into a task (its
    /// schedule text or payload is damaged); the record is kept.
    #[error("unreadable durable record: {0}")]
    BadRecord(String),
}
