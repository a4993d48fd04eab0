//! Key management on the public handle: rotation, re-sealing, counters,
//! and the test hooks on sealed records. The sealing itself (records, key
//! ring, the `Sealer`) is the side layer `seal`, which knows nothing of
//! the handle.

use crate::api::scheduler::Scheduler;
#[cfg(feature = "seal")]
use crate::error::Error;
#[cfg(feature = "seal")]
use crate::id::TaskKey;
use crate::seal::SealStats;
#[cfg(feature = "seal")]
use crate::seal::{KeyRing, Payload, Record, ResealReport};
#[cfg(feature = "seal")]
use crate::sync::Arc;
use crate::sync::Ordering;

/// One payload's fate in [`Scheduler::reseal_payloads`].
#[cfg(feature = "seal")]
enum Step {
    Current,
    Unreadable,
    Resealed,
    Retry,
}

/// Sealing and key management.
impl Scheduler {
    /// Replaces the key ring. New payloads are sealed with its current key;
    /// records sealed with a key it still holds keep opening, and are
    /// re-sealed with the current key the next time they are opened (or all
    /// at once by [`reseal_payloads`](Self::reseal_payloads)). Firing
    /// threads never wait for this.
    ///
    /// To retire key *k*: rotate to a ring whose current key is new and that
    /// still holds *k*; call `reseal_payloads()`; once
    /// [`payloads_sealed_with(k)`](Self::payloads_sealed_with) is 0, rotate
    /// to a ring without *k*.
    #[cfg(feature = "seal")]
    pub fn rotate_keys(&self, ring: KeyRing) {
        self.core().seal.ring.store(Some(Arc::new(ring)));
    }

    /// How many live tasks hold a payload sealed with key `key_id`.
    #[cfg(feature = "seal")]
    pub fn payloads_sealed_with(&self, key_id: u32) -> usize {
        self.core()
            .live_tasks()
            .iter()
            .filter(|t| match t.payload() {
                Some(Payload::Sealed { record, .. }) => record.load().key_id() == Some(key_id),
                _ => false,
            })
            .count()
    }

    /// Re-seals now, with the current key, every live payload sealed with an
    /// older one. Runs concurrently with firing; a payload that does not open
    /// is left as it is and counted in [`ResealReport::unreadable`].
    ///
    /// Fails with [`Error::NoKey`] on a production scheduler without a ring,
    /// or [`Error::Seal`] if the random generator fails.
    #[cfg(feature = "seal")]
    pub fn reseal_payloads(&self) -> Result<ResealReport, Error> {
        let core = self.core();
        let mut report = ResealReport::default();
        for task in core.live_tasks() {
            let Some(Payload::Sealed { aad, record: slot }) = task.payload() else {
                continue;
            };
            loop {
                let rec = slot.load();
                let step = core.seal.ring.with(|ring| {
                    let ring = ring.ok_or(Error::NoKey)?;
                    if rec.key_id() == Some(ring.current_id()) {
                        return Ok(Step::Current);
                    }
                    let Ok(plain) = rec.open(ring, aad) else {
                        return Ok(Step::Unreadable);
                    };
                    let new = Record::seal(ring.current(), aad, &plain)?;
                    if slot.compare_and_swap(&rec, Arc::new(new)) {
                        core.seal.resealed.fetch_add(1, Ordering::Relaxed);
                        Ok(Step::Resealed)
                    } else {
                        // A fire re-sealed it meanwhile: look again.
                        Ok::<_, Error>(Step::Retry)
                    }
                })?;
                match step {
                    Step::Current => report.current += 1,
                    Step::Unreadable => report.unreadable += 1,
                    Step::Resealed => report.resealed += 1,
                    Step::Retry => continue,
                }
                break;
            }
        }
        report.stored = self.reseal_stored()?;
        Ok(report)
    }

    /// Counters of the sealing layer since the scheduler was built.
    pub fn seal_stats(&self) -> SealStats {
        let s = &self.core().seal;
        SealStats {
            open_failures: s.open_failures.load(Ordering::Relaxed),
            resealed: s.resealed.load(Ordering::Relaxed),
        }
    }

    /// Test hook, outside semver: the task's sealed record bytes (`None` for
    /// no payload or a test-mode payload).
    #[cfg(feature = "seal")]
    #[doc(hidden)]
    pub fn __sealed_record(&self, key: impl TaskKey) -> Result<Option<Vec<u8>>, Error> {
        let task = self.core().find(key.task_key())?;
        Ok(match task.payload() {
            Some(Payload::Sealed { record, .. }) => Some(record.load().as_bytes().to_vec()),
            _ => None,
        })
    }

    /// Test hook, outside semver: replaces the task's sealed record with
    /// `bytes` (false if the task has no sealed payload).
    #[cfg(feature = "seal")]
    #[doc(hidden)]
    pub fn __replace_sealed_record(
        &self,
        key: impl TaskKey,
        bytes: Vec<u8>,
    ) -> Result<bool, Error> {
        let task = self.core().find(key.task_key())?;
        Ok(match task.payload() {
            Some(Payload::Sealed { record, .. }) => {
                record.store(Arc::new(Record::from_bytes(bytes)));
                true
            }
            _ => false,
        })
    }
}
