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
//! ([`timeline`](crate::timeline) module docs); `run_pending` drains the queue
//! into a skiplist keyed by fire instant, claims due entries with an atomic
//! state transition per task ([`task`](crate::task) module docs), runs the
//! callbacks through the [`Dispatcher`], and puts recurring tasks back.
#![deny(missing_docs)]
#![warn(unreachable_pub)]

#[cfg(cronlane_loom)]
#[doc(hidden)]
pub mod __loom;
mod builder;
mod clock;
pub mod cron;
mod dispatch;
mod error;
mod events;
mod fire;
mod manage;
mod policy;
mod registry;
mod report;
mod runner;
mod schedule;
mod scheduler;
mod seal;
mod stats;
mod sync;
mod task;
mod timeline;

pub use builder::SchedulerBuilder;
pub use chrono_tz::Tz;
pub use clock::{Clock, ManualClock, SystemClock};
pub use cron::{CronExpr, Dialect};
pub use dispatch::{Dispatcher, Executor, Job};
pub use error::Error;
pub use events::{Event, EventKind, Listener, SkipReason};
pub use policy::{Misfire, Overlap, DEFAULT_MISFIRE_GRACE};
pub use report::{RunReport, Stats, TaskInfo, TaskState};
pub use runner::{RunnerHandle, DROP_SHUTDOWN_TIMEOUT, MAX_PARK, SPIN_WINDOW};
pub use schedule::Schedule;
pub use scheduler::{KeyRef, Scheduler, TaskBuilder, TaskKey};
pub use seal::{Key, KeyError, KeyRing, ResealReport, SealError, SealStats, DEFAULT_KEYS_VAR};
pub use stats::{LagSummary, TaskStats};
pub use task::{FireContext, TaskId, TaskResult};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
