//! cronlane: a lock-free, high-throughput in-process scheduler engine.
//!
//! Register tasks on a cron expression, a fixed interval or one instant; the
//! engine fires each callback exactly once per fire time, whichever and however
//! many threads call [`Scheduler::run_pending`], and never takes a lock on the
//! registration or firing paths. A background runner ([`Scheduler::start`])
//! fires them on time for you.
//!
//! This page is a guide: a service, its tests, the run policies and payloads.
//! Every type has its own example; the internals (layers, the path of a task,
//! the claim protocol) are in the repository's `docs/architecture.md`.
//!
//! # Cargo features
//!
//! * `seal` (on by default): sealed payloads (XChaCha20-Poly1305) and key
//!   management ([`Key`], [`KeyRing`], [`SchedulerBuilder::keys`],
//!   [`Scheduler::rotate_keys`]). With `default-features = false` the AEAD
//!   stack is not compiled; test mode still keeps payloads in the clear, and
//!   a production-mode scheduler refuses a payload with
//!   [`Error::SealingDisabled`].
//!
//! # A service: the background runner and graceful shutdown
//!
//! Build a scheduler, register tasks, [`start`](Scheduler::start) the runner
//! and keep its [`RunnerHandle`]. At shutdown,
//! [`RunnerHandle::shutdown`] stops firing and waits (up to a timeout) for
//! callbacks already running; fires claimed but not started are put back,
//! never dropped.
//!
//! ```
//! use cronlane::{Dispatcher, Schedule, Scheduler};
//! use std::sync::mpsc;
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let scheduler = Scheduler::new(Dispatcher::pool(2)); // callbacks on 2 workers
//! scheduler.register_task("report", "0 9 * * MON-FRI", || println!("good morning"))?;
//!
//! let (tx, rx) = mpsc::channel();
//! scheduler
//!     .add(Schedule::every(Duration::from_millis(20)))
//!     .name("heartbeat")
//!     .run(move || tx.send("beat").map_err(|e| e.to_string()))?;
//!
//! let runner = scheduler.start()?; // one background thread
//! // The runner fires `heartbeat` every 20 ms; wait for a beat, with a bound.
//! assert_eq!(rx.recv_timeout(Duration::from_secs(10))?, "beat");
//!
//! // Graceful shutdown: stop firing, wait up to 5 s for running callbacks.
//! runner.shutdown(Duration::from_secs(5))?;
//! assert!(scheduler.stats().fired >= 1);
//! # Ok(())
//! # }
//! ```
//!
//! In a real service, call `shutdown` from your signal handler or at the end
//! of `main`; dropping the handle also shuts down (with a 5 s timeout,
//! [`DROP_SHUTDOWN_TIMEOUT`]). [`Scheduler::run_pending`] is the other way
//! to drive the engine: it fires everything due now, from any thread.
//!
//! # Testing with a manual clock
//!
//! A [`ManualClock`] moves only when told; a test advances it and calls
//! [`run_pending`](Scheduler::run_pending), which returns a [`RunReport`]. No
//! sleeping. [`test_mode`](SchedulerBuilder::test_mode) marks the scheduler
//! as a test one (payloads kept in the clear; outside semver).
//!
//! ```
//! use cronlane::{ManualClock, Schedule, Scheduler};
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let clock = ManualClock::new("2026-01-05T08:59:00Z".parse().unwrap());
//! let scheduler = Scheduler::builder().clock(clock.clone()).test_mode(true).build();
//!
//! let runs = Arc::new(AtomicU32::new(0));
//! let r = runs.clone();
//! scheduler.add(Schedule::cron("0 9 * * MON-FRI")?).name("report").run(move || {
//!     r.fetch_add(1, Ordering::Relaxed);
//! })?;
//!
//! assert_eq!(scheduler.run_pending().fired, 0); // 08:59: not yet
//! clock.advance(Duration::from_secs(60));       // 09:00 on a Monday
//! let report = scheduler.run_pending();
//! assert_eq!((report.fired, report.succeeded), (1, 1));
//! assert_eq!(runs.load(Ordering::Relaxed), 1);
//! assert_eq!(
//!     scheduler.next_fire("report")?.map(|t| t.to_rfc3339()),
//!     Some("2026-01-06T09:00:00+00:00".to_string()),
//! );
//! # Ok::<(), cronlane::Error>(())
//! ```
//!
//! # Run policies: late, slow and bounded tasks
//!
//! A fire that starts later than its grace period is a *misfire*
//! ([`Misfire`] decides what happens); a fire due while the task's previous
//! run is still going is an *overlap* ([`Overlap`]). Every instant that does
//! not run is counted. A recurring task can end: [`TaskBuilder::until`] and
//! [`TaskBuilder::times`].
//!
//! ```
//! use cronlane::{ManualClock, Misfire, Overlap, Schedule, Scheduler};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
//! let s = Scheduler::builder().clock(clock.clone()).test_mode(true).build();
//! s.add(Schedule::every(Duration::from_secs(1)))
//!     .name("sync")
//!     .misfire(Misfire::FireOnce) // the default: missed instants collapse into one run
//!     .overlap(Overlap::Skip)     // the default: no second run while one is going
//!     .times(3)                   // then the task is finished
//!     .run(|| ())?;
//!
//! clock.advance(Duration::from_secs(10)); // ten instants due at once
//! assert_eq!(s.run_pending().fired, 1);  // one run, for the latest
//! assert_eq!(s.task_stats("sync")?.skips, 9);
//! # Ok::<(), cronlane::Error>(())
//! ```
//!
//! # Payloads
//!
//! A task can carry bytes, lent to its callback at each fire
//! ([`FireContext::payload`]). In production mode they are sealed with the
//! scheduler's [`KeyRing`] and opened only while the callback runs; in test
//! mode they are kept in the clear.
//!
//! ```
//! use cronlane::{Key, KeyRing, ManualClock, Schedule, Scheduler};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
//! let s = Scheduler::builder()
//!     .clock(clock.clone())
//!     .keys(KeyRing::new(Key::generate(1)?)) // production mode: sealed at rest
//!     .build();
//! s.add(Schedule::every(Duration::from_secs(60)))
//!     .payload(b"--token=abc".to_vec())
//!     .run_with_context(|ctx| assert_eq!(ctx.payload(), Some(&b"--token=abc"[..])))?;
//! clock.advance(Duration::from_secs(60));
//! assert_eq!(s.run_pending().succeeded, 1);
//! # Ok::<(), cronlane::Error>(())
//! ```
//!
//! # Cron
//!
//! [`CronExpr`] parses and evaluates cron expressions on its own (Vixie
//! semantics by default, [`Dialect::Quartz`] on request), in any IANA zone
//! ([`Tz`]) with documented daylight-saving rules; the [`cron`] module has
//! the details and `docs/cron.md` every rule.
//!
//! # Async jobs (feature `tokio`)
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
pub use run::tokio::{AsyncContext, CancelSignal, RUNTIME_SPIN_WINDOW};
pub use schedule::Schedule;
#[cfg(feature = "seal")]
pub use seal::{Key, KeyRing, DEFAULT_KEYS_VAR};
pub use seal::{KeyError, ResealReport, SealError, SealStats};
pub use stats::{LagSummary, TaskStats};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// `docs/architecture.md`'s examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/architecture.md")]
pub struct ArchitectureDoctests;

/// `docs/cron.md`'s examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/cron.md")]
pub struct CronDocDoctests;

/// `docs/cron-bench.md`'s examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/cron-bench.md")]
pub struct CronBenchDoctests;

/// `docs/loom.md`'s examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/loom.md")]
pub struct LoomDocDoctests;

/// `docs/async.md`'s examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "tokio"))]
#[doc = include_str!("../docs/async.md")]
pub struct AsyncDocDoctests;

/// `docs/cli.md`'s examples (shell and crontab only today; a Rust block
/// added later is compiled).
#[cfg(doctest)]
#[doc = include_str!("../docs/cli.md")]
pub struct CliDocDoctests;

/// `docs/seal.md`'s examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "seal"))]
#[doc = include_str!("../docs/seal.md")]
pub struct SealDocDoctests;
