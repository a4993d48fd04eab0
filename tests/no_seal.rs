//! Built without the `seal` feature (`--no-default-features`): test mode keeps
//! payloads in the clear as with it, and a production-mode scheduler refuses
//! a payload with a typed error and changes nothing. Never a payload in the
//! clear outside test mode.
#![cfg(not(feature = "seal"))]

mod common;
use common::*;
use cronlane::{Error, ManualClock, Schedule, Scheduler};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn production_mode_refuses_a_payload_and_changes_nothing() {
    let clock = ManualClock::new(t0());
    let s = Scheduler::builder().clock(clock.clone()).build();
    let err = s
        .add(Schedule::every(SECOND))
        .name("job")
        .payload(b"secret".to_vec())
        .run(|| ())
        .unwrap_err();
    assert!(matches!(err, Error::SealingDisabled), "{err:?}");
    assert!(err.to_string().contains("`seal` feature"), "{err}");
    assert_eq!(s.len(), 0);
    // The name was not taken: the same name registers without a payload.
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    s.add(Schedule::every(SECOND))
        .name("job")
        .run(move || {
            r.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    clock.advance(SECOND);
    s.run_pending();
    assert_eq!(runs.load(Ordering::Relaxed), 1);
}

#[test]
fn test_mode_keeps_payloads_in_the_clear() {
    let (s, clock) = manual();
    let seen = recorder(&s, "job", b"--token=abc");
    clock.advance(SECOND);
    s.run_pending();
    assert_eq!(*seen.lock().unwrap(), vec![b"--token=abc".to_vec()]);
}
