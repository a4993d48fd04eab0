//! A fault-injecting redb storage backend for the crash-safety tests: an
//! in-memory "disk" that counts its writes and syncs, fails its Nth I/O
//! (an I/O error, or a power loss that keeps only what was synced), and
//! hands back the bytes that survive so a test can reopen them with a
//! clean backend. Written for these tests (redb's own
//! `tests/crash_consistency.rs` gave the idea of a live and a durable
//! image).
#![allow(dead_code)]

pub(crate) mod check;

use redb::StorageBackend;
use std::io;
use std::sync::{Arc, Mutex};

/// How the Nth I/O fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// That I/O returns an error (a full disk, a failed fsync); the ones
    /// after it work again (redb itself refuses them until reopened).
    Error,
    /// The power goes: that I/O and every later one fail, and only what
    /// was synced before it survives ([`Disk::durable`]).
    PowerLoss,
}

#[derive(Debug, Default)]
struct State {
    /// The file as the OS sees it: every write applied.
    live: Vec<u8>,
    /// The file as of the last completed sync.
    durable: Vec<u8>,
    /// Writes since the last completed sync, in order (for torn images).
    unsynced: Vec<(u64, Vec<u8>)>,
    writes: u64,
    syncs: u64,
    /// `set_len` calls that made the file longer (redb syncs each growth
    /// before a header can name the new length).
    grows: u64,
    /// Writes, `set_len`s and syncs so far.
    ios: u64,
    fail_at: Option<(u64, Fault)>,
    /// Set once the injected fault fired.
    fired: Option<IoKind>,
    dead: bool,
    /// How long a sync takes (a device's fsync latency).
    latency: Option<std::time::Duration>,
}

/// Which kind of I/O the fault hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IoKind {
    /// A write (or a `set_len`).
    Write,
    /// A `sync_data`.
    Sync,
}

/// The shared state of one simulated disk; clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Disk(Arc<Mutex<State>>);

impl Disk {
    /// An empty disk.
    pub(crate) fn new() -> Disk {
        Disk::default()
    }

    /// A disk holding `image`, all of it synced.
    pub(crate) fn from_image(image: Vec<u8>) -> Disk {
        let d = Disk::default();
        {
            let mut s = d.0.lock().unwrap();
            s.live = image.clone();
            s.durable = image;
        }
        d
    }

    /// The `n`th I/O from now on (1-based, counting writes, `set_len`s and
    /// syncs) fails as `fault`.
    pub(crate) fn fail_at(&self, n: u64, fault: Fault) {
        let mut s = self.0.lock().unwrap();
        let at = s.ios + n;
        s.fail_at = Some((at, fault));
    }

    /// Every sync takes `latency` (what an fsync costs on a real device),
    /// so that concurrent commits have something to share.
    pub(crate) fn sync_latency(&self, latency: std::time::Duration) {
        self.0.lock().unwrap().latency = Some(latency);
    }

    /// The kind of I/O the injected fault hit, once it did.
    pub(crate) fn fired(&self) -> Option<IoKind> {
        self.0.lock().unwrap().fired
    }

    /// `(writes, syncs)` so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let s = self.0.lock().unwrap();
        (s.writes, s.syncs)
    }

    /// Growths of the file so far.
    pub(crate) fn grows(&self) -> u64 {
        self.0.lock().unwrap().grows
    }

    /// The bytes as the OS has them (a process crash keeps these).
    pub(crate) fn live(&self) -> Vec<u8> {
        self.0.lock().unwrap().live.clone()
    }

    /// The bytes as of the last completed sync (a power loss keeps these).
    pub(crate) fn durable(&self) -> Vec<u8> {
        self.0.lock().unwrap().durable.clone()
    }

    /// A power loss that tore the unsynced writes: the durable bytes with a
    /// subset of the writes made since the last sync applied (`keep` picks
    /// them, by index).
    pub(crate) fn torn(&self, mut keep: impl FnMut(usize) -> bool) -> Vec<u8> {
        let s = self.0.lock().unwrap();
        let mut image = s.durable.clone();
        for (i, (offset, data)) in s.unsynced.iter().enumerate() {
            if keep(i) {
                let at = *offset as usize;
                if image.len() < at + data.len() {
                    image.resize(at + data.len(), 0);
                }
                image[at..at + data.len()].copy_from_slice(data);
            }
        }
        image
    }

    /// A backend on this disk, for `RedbStoreBuilder::backend`.
    pub(crate) fn backend(&self) -> FaultBackend {
        FaultBackend(self.clone())
    }

    /// Counts one I/O of `kind`; the error if it is the one to fail (or the
    /// power is gone).
    fn io(&self, s: &mut State, kind: IoKind) -> io::Result<()> {
        if s.dead {
            return Err(io::Error::other("injected fault: the power is off"));
        }
        s.ios += 1;
        match s.fail_at {
            Some((at, fault)) if at == s.ios => {
                s.fired = Some(kind);
                if fault == Fault::PowerLoss {
                    s.dead = true;
                }
                Err(match kind {
                    IoKind::Write => io::Error::from(io::ErrorKind::StorageFull),
                    IoKind::Sync => io::Error::other("injected fault: fsync failed"),
                })
            }
            _ => Ok(()),
        }
    }
}

/// A redb [`StorageBackend`] on a [`Disk`].
#[derive(Debug)]
pub(crate) struct FaultBackend(Disk);

impl StorageBackend for FaultBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0 .0.lock().unwrap().live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let s = self.0 .0.lock().unwrap();
        let at = offset as usize;
        if at + out.len() > s.live.len() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        out.copy_from_slice(&s.live[at..at + out.len()]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.0 .0.lock().unwrap();
        self.0.io(&mut s, IoKind::Write)?;
        if len as usize > s.live.len() {
            s.grows += 1;
        }
        s.live.resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut s = self.0 .0.lock().unwrap();
        self.0.io(&mut s, IoKind::Sync)?;
        s.syncs += 1;
        s.durable = s.live.clone();
        s.unsynced.clear();
        let latency = s.latency;
        drop(s);
        if let Some(l) = latency {
            // The device's fsync latency, not a synchronisation.
            std::thread::sleep(l);
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut s = self.0 .0.lock().unwrap();
        self.0.io(&mut s, IoKind::Write)?;
        s.writes += 1;
        let at = offset as usize;
        if s.live.len() < at + data.len() {
            s.live.resize(at + data.len(), 0);
        }
        s.live[at..at + data.len()].copy_from_slice(data);
        s.unsynced.push((offset, data.to_vec()));
        Ok(())
    }
}

/// A tiny seeded xorshift64* generator (no dependency, reproducible).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `1 / n`.
    pub(crate) fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// A seed from `CRONLANE_SEED`, or a fixed one.
pub(crate) fn seed() -> u64 {
    std::env::var("CRONLANE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_CAFE)
}

/// A number from the environment variable `var`, or `default`.
pub(crate) fn env_count(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
