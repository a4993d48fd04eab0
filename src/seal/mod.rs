//! Sealed task payloads: XChaCha20-Poly1305 at rest, opened only to run.
//!
//! A task may carry a payload ([`TaskBuilder::payload`](crate::TaskBuilder::payload)),
//! bytes lent to its callback at fire time through
//! [`FireContext::payload`](crate::FireContext::payload). This module owns how
//! that payload is kept:
//!
//! * **production mode** (the default): sealed at registration with the
//!   current key of the scheduler's [`KeyRing`] into a [`record`] bound to the
//!   task's id and name; the caller's buffer is wiped. At each fire it is
//!   opened into a fresh zeroizing buffer, lent to the callback, and wiped
//!   when the callback returns.
//! * **test mode**: kept in the clear (in a buffer wiped on drop); no key.
//!
//! # The `seal` feature
//!
//! The cipher (`chacha20poly1305`, its RustCrypto stack and `getrandom`),
//! [`Key`], [`KeyRing`], the key files and the key-management calls of the
//! handle are compiled only with the default-on `seal` feature. Without it
//! test mode works as above, and a production-mode scheduler refuses a
//! payload at registration with `Error::SealingDisabled` (checked in
//! `api::scheduler` before anything changes): a payload is never kept in the
//! clear outside test mode. The error types, [`SealStats`] and
//! [`ResealReport`] exist either way, so code matching on them builds with
//! the feature on or off.
//!
//! User documentation (key encoding, rotation, retirement, failures):
//! `docs/seal.md`.
//!
//! # Ground rules
//!
//! * The key ring sits in a [`SwapOption`]: [`Scheduler::rotate_keys`](crate::Scheduler::rotate_keys) stores
//!   a new ring; firing threads borrow whichever ring is current and never
//!   wait. The ring is `None` only on a scheduler built without keys, and a
//!   production scheduler then refuses payload tasks at registration
//!   (`Error::NoKey`), so a sealed payload always finds a ring.
//! * Each sealed payload sits in a [`Swap`] slot. Its associated data is
//!   fixed at registration. Only *re-sealing* writes the slot, and only with
//!   a compare-and-swap against the record it opened, so two re-sealers (a
//!   fire and [`Scheduler::reseal_payloads`](crate::Scheduler::reseal_payloads)) never overwrite each other's
//!   newer record with an older one, and every stored record opens to the
//!   same plaintext.
//! * A firing thread loads the **record first, then the ring**. A record
//!   sealed with key *k* was written by a thread that had already seen a ring
//!   holding *k*; loading that record (acquire) therefore makes that ring, or
//!   a newer one, visible to the ring load that follows. Rotation cannot make
//!   a fire miss a key that the ring still holds.
//! * A record that fails to open is not a failure yet if the slot has moved
//!   on: a fire that loaded a record sealed with *k*, then a ring from which
//!   *k* was retired, raced with the documented retirement (re-seal, then
//!   drop *k*); the retiring ring was stored after the re-sealed record, so
//!   the fire reloads the slot and opens the newer record. Only a failure on
//!   the record still in the slot counts (found by the loom model 7b,
//!   `docs/loom.md`).
//! * Re-seal on next use: a fire that opens a record sealed with a key other
//!   than the ring's current one seals the plaintext again with the current
//!   key and swaps it in (best effort: a failed swap or seal leaves the old
//!   record, which still opens).
//! * A fire whose payload does not open runs no callback; it is counted as a
//!   failed run and logged with the task id, name and [`SealError`] only.

mod error;
#[cfg(feature = "seal")]
mod key;
#[cfg(feature = "seal")]
mod record;

pub use error::{KeyError, SealError};
#[cfg(feature = "seal")]
pub use key::{Key, KeyRing, DEFAULT_KEYS_VAR};
#[cfg(feature = "seal")]
pub(crate) use record::Record;

/// Without the `seal` feature no key ring can exist: the builder's key slot
/// is `Option<KeyRing>` either way and is always `None` here.
#[cfg(not(feature = "seal"))]
#[derive(Debug)]
pub(crate) enum KeyRing {}

use crate::id::TaskId;
use crate::sync::AtomicU64;
#[cfg(feature = "seal")]
use crate::sync::{Arc, Ordering, Swap, SwapOption};
use std::fmt;
#[cfg(feature = "seal")]
use zeroize::Zeroize;
use zeroize::Zeroizing;

/// A task's payload as the engine keeps it.
pub(crate) enum Payload {
    /// Test mode: in the clear, wiped on drop.
    Clear(Zeroizing<Vec<u8>>),
    /// Production mode: sealed for this task.
    #[cfg(feature = "seal")]
    Sealed {
        /// The task's binding (associated data); fixed for its life.
        aad: Box<[u8]>,
        /// The current record; replaced only by re-sealing.
        record: Swap<Record>,
    },
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::Clear(b) => f
                .debug_struct("Clear")
                .field("len", &b.len())
                .finish_non_exhaustive(),
            #[cfg(feature = "seal")]
            Payload::Sealed { record, .. } => record.load().fmt(f),
        }
    }
}

/// A payload opened for one fire: borrowed (test mode) or decrypted into a
/// buffer wiped on drop.
pub(crate) enum Opened<'a> {
    Clear(&'a [u8]),
    #[cfg(feature = "seal")]
    Sealed(Zeroizing<Vec<u8>>),
}

impl Opened<'_> {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Opened::Clear(b) => b,
            #[cfg(feature = "seal")]
            Opened::Sealed(b) => b,
        }
    }
}

/// Without the `seal` feature an opened payload only borrows a clear one:
/// nothing to wipe. The run layer still drops it explicitly the moment the
/// callback returns (the place a sealed one is wiped); this impl keeps that
/// drop meaningful in both builds.
#[cfg(not(feature = "seal"))]
impl Drop for Opened<'_> {
    fn drop(&mut self) {}
}

/// The scheduler's sealing state: key ring and counters.
pub(crate) struct Sealer {
    #[cfg(feature = "seal")]
    pub(crate) ring: SwapOption<KeyRing>,
    pub(crate) open_failures: AtomicU64,
    pub(crate) resealed: AtomicU64,
}

#[cfg(feature = "seal")]
impl Sealer {
    pub(crate) fn new(ring: Option<KeyRing>) -> Sealer {
        let sealer = Sealer {
            ring: SwapOption::empty(),
            open_failures: AtomicU64::new(0),
            resealed: AtomicU64::new(0),
        };
        if let Some(ring) = ring {
            sealer.ring.store(Some(Arc::new(ring)));
        }
        sealer
    }

    /// Whether payloads can be sealed (a ring is set).
    pub(crate) fn has_ring(&self) -> bool {
        self.ring.with(|r| r.is_some())
    }

    /// Takes a task's payload at registration: sealed for `(id, name)` in
    /// production mode, kept in the clear in test mode. The input buffer is
    /// wiped once sealed.
    pub(crate) fn payload(
        &self,
        mut plaintext: Vec<u8>,
        test_mode: bool,
        id: TaskId,
        name: Option<&str>,
    ) -> Result<Payload, SealError> {
        if test_mode {
            return Ok(Payload::Clear(Zeroizing::new(plaintext)));
        }
        let sealed = self.seal_for(record::binding(id, name), &plaintext);
        plaintext.zeroize();
        sealed
    }

    /// Seals `plaintext` with the ring's current key for the binding `aad`.
    fn seal_for(&self, aad: Box<[u8]>, plaintext: &[u8]) -> Result<Payload, SealError> {
        let sealed = self.ring.with(|ring| match ring {
            Some(ring) => Record::seal(ring.current(), &aad, plaintext),
            None => Err(SealError::NoKey),
        })?;
        Ok(Payload::Sealed {
            aad,
            record: Swap::new(Arc::new(sealed)),
        })
    }

    /// Opens a payload for one fire (see the ground rules for the load
    /// order and re-sealing).
    pub(crate) fn open<'a>(&self, payload: &'a Payload) -> Result<Opened<'a>, SealError> {
        let (aad, slot) = match payload {
            Payload::Clear(b) => return Ok(Opened::Clear(b)),
            Payload::Sealed { aad, record } => (aad, record),
        };
        // Record first, then ring: see the ground rules.
        let mut rec = slot.load();
        loop {
            #[cfg(cronlane_loom)]
            if crate::__loom::broken(&crate::__loom::BREAK_SEAL_ORDER) {
                // Broken twin: the ring is loaded before the record.
                let ring = self.ring.load();
                rec = slot.load();
                let ring = ring.ok_or(SealError::NoKey)?;
                return rec.open(&ring, aad).map(Opened::Sealed);
            }
            let opened = self.ring.with(|ring| {
                let ring = ring.ok_or(SealError::NoKey)?;
                let plain = rec.open(ring, aad)?;
                if rec.key_id() != Some(ring.current_id()) {
                    self.reseal(slot, &rec, ring, aad, &plain);
                }
                Ok(plain)
            });
            match opened {
                Ok(plain) => return Ok(Opened::Sealed(plain)),
                Err(e) => {
                    // The record was re-sealed since we loaded it, and the
                    // ring we then saw no longer holds the old key (it was
                    // retired once no stored record used it): open the new
                    // record. Found by loom (`loom-tests`, model 7b).
                    let now = slot.load();
                    if !Arc::ptr_eq(&now, &rec) {
                        rec = now;
                        continue;
                    }
                    self.open_failures.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
    }

    /// Seals `plain` with the ring's current key and swaps it in for `old`.
    /// True if this call replaced `old`.
    fn reseal(
        &self,
        slot: &Swap<Record>,
        old: &Arc<Record>,
        ring: &KeyRing,
        aad: &[u8],
        plain: &[u8],
    ) -> bool {
        match Record::seal(ring.current(), aad, plain) {
            Ok(new) => {
                let swapped = slot.compare_and_swap(old, Arc::new(new));
                if swapped {
                    self.resealed.fetch_add(1, Ordering::Relaxed);
                }
                swapped
            }
            Err(e) => {
                tracing::debug!(error = %e, "cronlane: re-sealing a payload failed; the old record stays");
                false
            }
        }
    }
}

/// Without the `seal` feature: clear payloads in test mode, nothing else.
#[cfg(not(feature = "seal"))]
impl Sealer {
    pub(crate) fn new(ring: Option<KeyRing>) -> Sealer {
        // `KeyRing` is uninhabited here: `ring` is `None`.
        if let Some(ring) = ring {
            match ring {}
        }
        Sealer {
            open_failures: AtomicU64::new(0),
            resealed: AtomicU64::new(0),
        }
    }

    /// No ring can be set without the feature.
    pub(crate) fn has_ring(&self) -> bool {
        false
    }

    /// Test mode keeps the payload in the clear. Production mode cannot
    /// seal: the api layer refuses such a registration first
    /// (`Error::SealingDisabled`); should a caller get here anyway, it is
    /// refused again, never kept in the clear.
    pub(crate) fn payload(
        &self,
        plaintext: Vec<u8>,
        test_mode: bool,
        _id: TaskId,
        _name: Option<&str>,
    ) -> Result<Payload, SealError> {
        if test_mode {
            return Ok(Payload::Clear(Zeroizing::new(plaintext)));
        }
        // Wiped as it drops.
        drop(Zeroizing::new(plaintext));
        Err(SealError::NoKey)
    }

    /// Lends a clear payload for one fire.
    pub(crate) fn open<'a>(&self, payload: &'a Payload) -> Result<Opened<'a>, SealError> {
        match payload {
            Payload::Clear(b) => Ok(Opened::Clear(b)),
        }
    }
}

/// Counters of the sealing layer, from [`Scheduler::seal_stats`](crate::Scheduler::seal_stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SealStats {
    /// Fires whose payload did not open (each also counts as a failed run).
    pub open_failures: u64,
    /// Payloads re-sealed with the current key (on use or by
    /// [`Scheduler::reseal_payloads`](crate::Scheduler::reseal_payloads)).
    pub resealed: u64,
}

/// What [`Scheduler::reseal_payloads`](crate::Scheduler::reseal_payloads) did.
///
/// Retiring a key (see [`Scheduler::rotate_keys`](crate::Scheduler::rotate_keys)):
///
/// ```
/// use cronlane::{Key, KeyRing, Schedule, Scheduler};
/// use std::time::Duration;
///
/// let old = || Key::from_bytes(1, [1u8; 32]);
/// let s = Scheduler::builder().keys(KeyRing::new(old())).build();
/// s.add(Schedule::every(Duration::from_secs(60))).payload(b"args".to_vec()).run(|| ())?;
///
/// // A new current key; the old one stays to open what it sealed.
/// s.rotate_keys(KeyRing::new(Key::from_bytes(2, [2u8; 32])).with_previous(old())?);
/// let report = s.reseal_payloads()?;
/// assert_eq!((report.resealed, report.current, report.unreadable), (1, 0, 0));
/// assert_eq!(s.payloads_sealed_with(1), 0);   // key 1 can now be dropped
/// s.rotate_keys(KeyRing::new(Key::from_bytes(2, [2u8; 32])));
/// assert_eq!(s.seal_stats().resealed, 1);
/// # Ok::<(), cronlane::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResealReport {
    /// Payloads re-sealed with the current key by this call.
    pub resealed: usize,
    /// Payloads already sealed with the current key.
    pub current: usize,
    /// Payloads that did not open (unknown key id, or altered); left as they
    /// were.
    pub unreadable: usize,
    /// Durable tasks whose stored record was rewritten with the current key
    /// (in place, in one store commit).
    pub stored: usize,
}

/// Durable tasks (see the store module): a payload bound to the task's name
/// alone, because ids are per process, and its bytes as a store keeps them.
impl Sealer {
    /// A durable task's payload at registration: sealed for `name` in
    /// production mode, clear in test mode; the input buffer is wiped.
    pub(crate) fn durable_payload(
        &self,
        plaintext: Vec<u8>,
        test_mode: bool,
        name: &str,
    ) -> Result<Payload, SealError> {
        if test_mode {
            return Ok(Payload::Clear(Zeroizing::new(plaintext)));
        }
        #[cfg(feature = "seal")]
        {
            let mut plaintext = plaintext;
            let sealed = self.seal_for(record::durable_binding(name), &plaintext);
            plaintext.zeroize();
            sealed
        }
        #[cfg(not(feature = "seal"))]
        {
            let _ = name;
            drop(Zeroizing::new(plaintext));
            Err(SealError::NoKey)
        }
    }
}

#[cfg(feature = "seal")]
impl Sealer {
    /// Whether sealed `bytes` name the ring's current key.
    pub(crate) fn current_key_of(&self, bytes: &[u8]) -> bool {
        let rec = Record::from_bytes(bytes.to_vec());
        self.ring
            .with(|ring| ring.is_some_and(|r| rec.key_id() == Some(r.current_id())))
    }
}

impl Payload {
    /// A durable task's payload as loaded from a store: `sealed` bytes are
    /// a record bound to `name` (opened only at fire time). Without the
    /// `seal` feature a sealed record cannot be kept (it could never open).
    pub(crate) fn from_store(
        sealed: bool,
        bytes: Vec<u8>,
        name: &str,
    ) -> Result<Payload, SealError> {
        if !sealed {
            return Ok(Payload::Clear(Zeroizing::new(bytes)));
        }
        #[cfg(feature = "seal")]
        {
            Ok(Payload::Sealed {
                aad: record::durable_binding(name),
                record: Swap::new(Arc::new(Record::from_bytes(bytes))),
            })
        }
        #[cfg(not(feature = "seal"))]
        {
            let _ = (bytes, name);
            Err(SealError::NoKey)
        }
    }

    /// The bytes a store keeps: `(sealed, bytes)`. Clear bytes only ever
    /// come from a test-mode scheduler.
    pub(crate) fn to_store(&self) -> (bool, Vec<u8>) {
        match self {
            Payload::Clear(b) => (false, b.to_vec()),
            #[cfg(feature = "seal")]
            Payload::Sealed { record, .. } => (true, record.load().as_bytes().to_vec()),
        }
    }
}
