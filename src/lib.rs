//! cronlane: a lock-free, high-throughput in-process scheduler engine.
//!
//! Register tasks on a cron expression, a fixed interval or one instant; the
//! engine fires each callback exactly once per fire time, whichever and however
//! many threads call [`Scheduler::run_pending`], and never takes a lock on the
//! registration or firing paths.
//!
//! ```
//! use cronlane::{Dispatcher, Scheduler};
//! let scheduler = Scheduler::new(Dispatcher::default());
//! scheduler.register_task("minute_task", "* * * * *", || println!("Task executed!"))?;
//! scheduler.run_pending(); // typically in a loop, or use scheduler.start()
//! # Ok::<(), cronlane::Error>(())
//! ```
//!
//! The path of a task: `register` pushes it on a lock-free intake queue
//! (see `docs/architecture.md`); `run_pending` drains the queue
//! into a skiplist keyed by fire instant, claims due entries with an atomic
//! state transition per task, runs the
//! callbacks through the [`Dispatcher`], and puts recurring tasks back.
//!
//! With the off-by-default `tokio` feature, tasks may also be async
//! (`TaskBuilder::run_async`): each fire's future is spawned on a tokio
//! runtime and the fire completes when it does; the feature also brings
//! cancellation signals, `RunnerHandle::shutdown_async` and the
//! SIGINT/SIGTERM helpers (`docs/async.md`). The ordered shutdown
//! ([`RunnerHandle::shutdown_graceful`], [`ShutdownReport`]) needs no feature.
#![deny(missing_docs)]
#![warn(unreachable_pub)]

#[cfg(cronlane_loom)]
#[doc(hidden)]
pub mod __loom;
// Layers, bottom to top (a module names only modules above it in this
// list; see `docs/architecture.md`): sync, clock, id, cron, seal, error,
// schedule, policy, stats, engine, store, run, api.
mod api;
mod clock;
pub mod cron;
mod engine;
mod error;
mod id;
mod policy;
mod run;
mod schedule;
mod seal;
mod stats;
pub mod store;
mod sync;

pub use api::builder::SchedulerBuilder;
pub use api::scheduler::{Scheduler, TaskBuilder};
pub use chrono_tz::Tz;
pub use clock::{Clock, ManualClock, SystemClock};
pub use cron::{CronExpr, Dialect};
pub use engine::task::{FireContext, TaskResult};
pub use error::Error;
pub use id::TaskId;
pub use id::{KeyRef, TaskKey};
pub use policy::{Delivery, Misfire, Overlap, SkipReason, DEFAULT_MISFIRE_GRACE};
pub use run::dispatch::{Dispatcher, Executor, Job};
pub use run::events::{Event, EventKind, Listener};
pub use run::lifecycle::{ShutdownReport, Stopper};
pub use run::report::{RunReport, Stats, TaskInfo, TaskState};
pub use run::runner::{RunnerHandle, DROP_SHUTDOWN_TIMEOUT, MAX_PARK, SPIN_WINDOW};
#[cfg(feature = "tokio")]
pub use run::tokio::{AsyncContext, CancelSignal};
pub use schedule::Schedule;
pub use seal::{Key, KeyError, KeyRing, ResealReport, SealError, SealStats, DEFAULT_KEYS_VAR};
pub use stats::{LagSummary, TaskStats};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
