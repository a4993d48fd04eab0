//! The public face: the [`Scheduler`](scheduler::Scheduler) handle and its
//! management and query calls ([`scheduler`]), the one builder
//! ([`builder`]), and key management for sealed payloads ([`keys`]).
//!
//! # Ground rules
//!
//! * A `Scheduler` is a cheap handle on the shared core (`run::core`); this
//!   layer validates input (a bad schedule, name or payload is a typed
//!   error that changes nothing) and then calls down. Nothing below names
//!   anything here.

#[cfg(feature = "tokio")]
pub(crate) mod asynch;
pub(crate) mod builder;
pub(crate) mod durable;
pub(crate) mod keys;
pub(crate) mod scheduler;
