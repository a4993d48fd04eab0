//! Running fires: one claimed fire from start to finish with its misfire,
//! overlap and jitter policies ([`fire`]), where callbacks run
//! ([`dispatch`]), the background runner ([`runner`]), listener events
//! ([`events`]), run reports and counters ([`report`]), management of live
//! tasks against firing threads ([`manage`]), the service life cycle
//! (ordered shutdown, stopper, signals: [`lifecycle`]), async jobs on tokio
//! (feature `tokio`: `tokio`), and the shared state all of them work on
//! ([`core`]).
//!
//! # Ground rules
//!
//! * This layer owns the **execution seam**: a claimed fire leaves
//!   `run_pending` as a [`dispatch::Job`] (inline, pool, or the user's
//!   executor); everything that depends on the fire's *completion* (overlap,
//!   per-task and overall statistics, lag, listener events, the next entry)
//!   happens in [`fire`] when the callback has returned, on whichever
//!   thread ran it, never at hand-off. An async job keeps this: its fire
//!   is begun at hand-off and completed by its future (`run::tokio`).
//! * No lock is held while a callback runs, and no shared state is held
//!   across the three phases of a pass (collect, run, put back).
//! * It uses the engine below and never names the public handle above: a
//!   callback reaches its scheduler through the context's opaque host.

pub(crate) mod core;
pub(crate) mod dispatch;
pub(crate) mod durable;
pub(crate) mod events;
pub(crate) mod fire;
pub(crate) mod lifecycle;
pub(crate) mod link;
pub(crate) mod manage;
pub(crate) mod policy;
pub(crate) mod report;
pub(crate) mod runner;
#[cfg(feature = "tokio")]
pub(crate) mod tokio;
