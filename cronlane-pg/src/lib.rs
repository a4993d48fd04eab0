//! Cluster mode for [cronlane] on PostgreSQL: several processes
//! (replicas of one service) share a set of durable tasks through one
//! database, and **each fire `(task, scheduled instant)` runs once across
//! all of them**. No leader: the fire table's primary key decides.
//!
//! Switching a program from the embedded store is one builder line:
//!
//! ```no_run
//! use cronlane::{Schedule, Scheduler};
//! use cronlane_pg::PgStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgStore::builder("postgres://postgres@127.0.0.1:5432/test")
//!     .schema("sched")
//!     .connect()?;
//! let pg = store.handle();
//! let s = Scheduler::builder().store(store).build();
//! s.handler("report", move |ctx| {
//!     // Exactly-once effects: written in the fenced completion.
//!     pg.complete_in(ctx, |tx| {
//!         tx.execute("SELECT 1", &[])?;
//!         Ok(())
//!     })
//!     .map_err(|e| e.to_string())
//! })?;
//! s.add(Schedule::every(std::time::Duration::from_secs(5)))
//!     .name("report")
//!     .durable("report")
//!     .register()?;
//! let runner = s.start()?;
//! # drop(runner);
//! # Ok(())
//! # }
//! ```
//!
//! # Guarantees
//!
//! - A claim is exactly-once as long as PostgreSQL commits are durable.
//! - Execution is at-most-once under `abandon` and at-least-once under
//!   `rerun`: a killed or paused owner's run repeats, and a paused node can
//!   overlap its successor until its next heartbeat fails.
//! - Effects are exactly-once only inside the fenced completion
//!   transaction, or when the callee dedupes on `(task, fire_time, fence)`.
//!
//! # The protocol
//!
//! Nodes hold leases on the database clock with a fresh UUID per process
//! (and per rejoin); each fire is claimed with one `INSERT … ON CONFLICT DO
//! NOTHING` keyed by `(task, scheduled instant)`, guarded by database time
//! (not earlier than 500 ms before the instant, not past the misfire
//! threshold, only by a node whose lease is live) and handing out a fence;
//! batches are sorted by key; nodes are ranked per task by rendezvous
//! hashing (rank `r` claims `r × 200 ms` later, through the reconciler);
//! completion is fenced; a sweep takes over fires whose owner's lease
//! expired. See `docs/cluster.md` in the repository for all of it, the
//! faults handled and the figures.

mod builder;
mod error;
mod fenced;
mod schema;
mod store;
mod tasks;

pub use builder::{OnOwnerDeath, PgStoreBuilder};
pub use error::PgError;
pub use fenced::FencedTx;
pub use schema::SUPPORTED as SCHEMA_VERSION;
pub use store::{PgHandle, PgStats, PgStore};
pub use tokio_postgres;
pub use uuid::Uuid;

/// `docs/cluster.md`'s examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/cluster.md")]
struct ClusterDoc;
