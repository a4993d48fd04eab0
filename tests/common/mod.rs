//! Helpers shared by the integration tests (sealing, runs).
#![allow(dead_code)]

use chrono::{DateTime, Utc};
#[cfg(feature = "seal")]
use cronlane::{Key, KeyRing};
use cronlane::{ManualClock, Schedule, Scheduler};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) const SECOND: Duration = Duration::from_secs(1);

pub(crate) fn t0() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

/// A test-mode scheduler on a manual clock reading [`t0`].
pub(crate) fn manual() -> (Scheduler, ManualClock) {
    let clock = ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .test_mode(true)
        .build();
    (s, clock)
}

#[cfg(feature = "seal")]
pub(crate) fn key(id: u32) -> Key {
    Key::from_bytes(id, [id as u8; 32])
}

#[cfg(feature = "seal")]
pub(crate) fn ring(ids: &[u32]) -> KeyRing {
    let mut r = KeyRing::new(key(ids[0]));
    for &id in &ids[1..] {
        r = r.with_previous(key(id)).unwrap();
    }
    r
}

#[cfg(feature = "seal")]
pub(crate) fn production(ids: &[u32]) -> (Scheduler, ManualClock) {
    let clock = ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .keys(ring(ids))
        .build();
    (s, clock)
}

/// Registers a recurring (every second) task that records each payload it
/// is lent.
pub(crate) fn recorder(s: &Scheduler, name: &str, payload: &[u8]) -> Arc<Mutex<Vec<Vec<u8>>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    s.add(Schedule::every(SECOND))
        .name(name)
        .payload(payload.to_vec())
        .run_with_context(move |ctx| {
            seen2
                .lock()
                .unwrap()
                .push(ctx.payload().expect("payload").to_vec());
        })
        .unwrap();
    seen
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
