//! The engine: the lock-free core. A task's state word and cold block
//! ([`task`]), the intake queues and the timeline of single entries and
//! runs with the claim protocol ([`timeline`]), and lookup by id and by
//! name ([`registry`]).
//!
//! # Ground rules
//!
//! * The engine knows nothing of the public handle, the dispatcher or the
//!   runner: it stores tasks, hands out claimed fires and settles races
//!   between claimers and managers through each task's state word. Whoever
//!   calls a callback lends it a context ([`task::FireContext`]) whose host
//!   is opaque here (the `run` layer puts the shared core in it; the `api`
//!   layer turns it back into a `Scheduler`).
//! * Each module states its own protocol: the state word's phases and who
//!   may move them in [`task`]; intake hand-over, runs, compaction,
//!   excursions and the earliest hint in [`timeline`]; the name and id
//!   indexes in [`registry`].

pub(crate) mod registry;
pub(crate) mod task;
pub(crate) mod timeline;
