//! cronlane: a lock-free, high-throughput in-process scheduler engine.
#![deny(missing_docs)]

pub mod cron;
