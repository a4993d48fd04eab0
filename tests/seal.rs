//! Sealed payloads: round trips in both modes, tampering, binding to the task,
//! key rotation under concurrent firing, retirement, failure accounting, and
//! what `Debug` output may show. Driven by a manual clock; no test sleeps.
#![cfg(feature = "seal")]

use cronlane::{
    Error, Key, KeyError, KeyRing, ManualClock, Schedule, Scheduler, SealError, TaskState,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};

mod common;
use common::*;

#[test]
fn production_round_trip_keeps_the_payload_sealed() {
    let (s, clock) = production(&[1]);
    let secret = b"job arguments: --token=PLAINTEXT-MARKER";
    let seen = recorder(&s, "job", secret);
    let record = s
        .__sealed_record("job")
        .unwrap()
        .expect("sealed in production");
    assert!(!contains(&record, b"PLAINTEXT-MARKER"));
    assert_eq!(record.len(), 1 + 4 + 24 + secret.len() + 16);
    for _ in 0..3 {
        clock.advance(SECOND);
        let r = s.run_pending();
        assert_eq!((r.fired, r.failed), (1, 0));
    }
    assert_eq!(*seen.lock().unwrap(), vec![secret.to_vec(); 3]);
    assert_eq!(s.seal_stats().open_failures, 0);
}

#[test]
fn test_mode_round_trip_needs_no_key() {
    let clock = ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .test_mode(true)
        .build();
    let seen = recorder(&s, "job", b"in the clear");
    assert_eq!(s.__sealed_record("job").unwrap(), None);
    clock.advance(SECOND);
    assert_eq!(s.run_pending().fired, 1);
    assert_eq!(*seen.lock().unwrap(), vec![b"in the clear".to_vec()]);
}

#[test]
fn tasks_without_payload_see_none() {
    let (s, clock) = production(&[1]);
    let saw = Arc::new(Mutex::new(Some(Vec::new())));
    let saw2 = saw.clone();
    s.add(Schedule::every(SECOND))
        .run_with_context(move |ctx| *saw2.lock().unwrap() = ctx.payload().map(<[u8]>::to_vec))
        .unwrap();
    clock.advance(SECOND);
    assert_eq!(s.run_pending().fired, 1);
    assert_eq!(*saw.lock().unwrap(), None);
}

#[test]
fn missing_key_is_a_registration_error() {
    let s = Scheduler::builder().clock(ManualClock::new(t0())).build();
    let err = s
        .add(Schedule::every(SECOND))
        .name("job")
        .payload(b"x".to_vec())
        .run(|| ())
        .unwrap_err();
    assert!(matches!(err, Error::NoKey), "{err:?}");
    assert!(s.is_empty());
    // The name was not taken, and payload-free tasks are fine.
    s.add(Schedule::every(SECOND))
        .name("job")
        .run(|| ())
        .unwrap();
    // A ring set later enables payloads.
    s.rotate_keys(ring(&[1]));
    s.add(Schedule::every(SECOND))
        .name("job2")
        .payload(b"x".to_vec())
        .run(|| ())
        .unwrap();
}

#[test]
fn tampering_with_any_byte_fails_the_fire_and_the_engine_goes_on() {
    let (s, clock) = production(&[1]);
    let seen = recorder(&s, "job", &[0x5a; 64]);
    let ran = Arc::new(AtomicU64::new(0));
    let ran2 = ran.clone();
    s.add(Schedule::every(SECOND))
        .name("bystander")
        .run(move || {
            ran2.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let good = s.__sealed_record("job").unwrap().unwrap();
    let mut rounds = 0u64;
    for i in 0..good.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[i] ^= flip;
            assert!(s.__replace_sealed_record("job", bad).unwrap());
            clock.advance(SECOND);
            let r = s.run_pending();
            rounds += 1;
            assert_eq!((r.succeeded, r.failed), (1, 1), "byte {i} flip {flip:#x}");
        }
    }
    // Truncated records fail too.
    for len in [0, 1, 5, 29, 44, good.len() - 1] {
        s.__replace_sealed_record("job", good[..len].to_vec())
            .unwrap();
        clock.advance(SECOND);
        assert_eq!(s.run_pending().failed, 1, "len {len}");
        rounds += 1;
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "callback ran on a bad record"
    );
    assert_eq!(ran.load(Ordering::Relaxed), rounds);
    let info = s.info("job").unwrap();
    assert_eq!((info.runs, info.failures), (rounds, rounds));
    assert_eq!(info.state, TaskState::Scheduled, "task stays scheduled");
    assert_eq!(s.stats().failed, rounds);
    assert_eq!(s.seal_stats().open_failures, rounds);
    // Restored, it opens again.
    s.__replace_sealed_record("job", good).unwrap();
    clock.advance(SECOND);
    assert_eq!(s.run_pending().failed, 0);
    assert_eq!(*seen.lock().unwrap(), vec![vec![0x5a; 64]]);
}

#[test]
fn a_payload_moved_to_another_task_is_refused() {
    let (s, clock) = production(&[1]);
    let a = recorder(&s, "a", b"for a");
    let b = recorder(&s, "b", b"for b");
    let a_record = s.__sealed_record("a").unwrap().unwrap();
    s.__replace_sealed_record("b", a_record.clone()).unwrap();
    clock.advance(SECOND);
    let r = s.run_pending();
    assert_eq!((r.succeeded, r.failed), (1, 1));
    assert_eq!(*a.lock().unwrap(), vec![b"for a".to_vec()]);
    assert!(b.lock().unwrap().is_empty());

    // Same name, new task (replace_existing): a new id, so the old record
    // does not open for it either.
    let c = Arc::new(AtomicU64::new(0));
    let c2 = c.clone();
    s.add(Schedule::every(SECOND))
        .name("a")
        .replace_existing()
        .payload(b"new a".to_vec())
        .run(move || {
            c2.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    s.__replace_sealed_record("a", a_record).unwrap();
    clock.advance(SECOND);
    let r = s.run_pending();
    assert_eq!(r.failed, 2, "both a (old record) and b fail");
    assert_eq!(c.load(Ordering::Relaxed), 0);
}

#[test]
fn unknown_key_id_fails_the_fire_counted_and_the_engine_goes_on() {
    let (s, clock) = production(&[1]);
    let old = recorder(&s, "old", b"sealed with 1");
    // Rotate to a ring that dropped key 1 (retired too early).
    s.rotate_keys(ring(&[2]));
    assert_eq!(s.payloads_sealed_with(1), 1);
    let new = recorder(&s, "new", b"sealed with 2");
    assert_eq!(s.payloads_sealed_with(2), 1);
    for _ in 0..2 {
        clock.advance(SECOND);
        let r = s.run_pending();
        assert_eq!((r.succeeded, r.failed), (1, 1));
    }
    assert!(old.lock().unwrap().is_empty());
    assert_eq!(new.lock().unwrap().len(), 2);
    assert_eq!(s.info("old").unwrap().failures, 2);
    assert_eq!(s.seal_stats().open_failures, 2);
    // reseal_payloads cannot help it: it is reported unreadable.
    let report = s.reseal_payloads().unwrap();
    assert_eq!(
        (report.resealed, report.current, report.unreadable),
        (0, 1, 1)
    );
    // Putting key 1 back heals it (and the next open re-seals it with 2).
    s.rotate_keys(ring(&[2, 1]));
    clock.advance(SECOND);
    assert_eq!(s.run_pending().failed, 0);
    assert_eq!(*old.lock().unwrap(), vec![b"sealed with 1".to_vec()]);
    assert_eq!(s.payloads_sealed_with(1), 0);
    assert_eq!(s.payloads_sealed_with(2), 2);
}

#[test]
fn one_shot_whose_payload_fails_is_consumed_like_any_failed_run() {
    let (s, clock) = production(&[1]);
    s.add(Schedule::once(t0() + chrono::Duration::seconds(1)))
        .name("once")
        .payload(b"x".to_vec())
        .run::<_, ()>(|| panic!("must not run"))
        .unwrap();
    s.rotate_keys(ring(&[2]));
    clock.advance(SECOND);
    let r = s.run_pending();
    assert_eq!((r.succeeded, r.failed), (0, 1));
    assert!(s.is_empty());
}

#[test]
fn retirement_reseal_on_use_and_reseal_all() {
    let (s, clock) = production(&[1]);
    let tasks: Vec<_> = (0..10)
        .map(|i| recorder(&s, &format!("t{i}"), format!("payload {i}").as_bytes()))
        .collect();
    s.rotate_keys(ring(&[2, 1]));
    assert_eq!(s.payloads_sealed_with(1), 10);
    // On use: one fire of every task re-seals them all.
    clock.advance(SECOND);
    assert_eq!(s.run_pending().fired, 10);
    assert_eq!(s.payloads_sealed_with(1), 0);
    assert_eq!(s.seal_stats().resealed, 10);
    // All at once: rotate again and re-seal without firing.
    s.rotate_keys(ring(&[3, 2]));
    let report = s.reseal_payloads().unwrap();
    assert_eq!(
        (report.resealed, report.current, report.unreadable),
        (10, 0, 0)
    );
    assert_eq!(s.payloads_sealed_with(2), 0);
    assert_eq!(s.payloads_sealed_with(3), 10);
    // Key 2 is retired; everything still opens.
    s.rotate_keys(ring(&[3]));
    clock.advance(SECOND);
    let r = s.run_pending();
    assert_eq!((r.fired, r.failed), (10, 0));
    for (i, t) in tasks.iter().enumerate() {
        let want = format!("payload {i}").into_bytes();
        assert_eq!(*t.lock().unwrap(), vec![want.clone(), want]);
    }
}

#[test]
fn rotation_while_other_threads_fire() {
    const TASKS: usize = 64;
    const ROUNDS: usize = 300;
    const FIRERS: usize = 2;
    let (s, clock) = production(&[1]);
    let ok = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    for i in 0..TASKS {
        let (ok, bad) = (ok.clone(), bad.clone());
        let want = format!("payload of task {i}").into_bytes();
        s.add(Schedule::every(SECOND))
            .name(format!("t{i}"))
            .payload(want.clone())
            .run_with_context(move |ctx| {
                if ctx.payload() == Some(&want[..]) {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    bad.fetch_add(1, Ordering::Relaxed);
                }
            })
            .unwrap();
    }
    let start = Arc::new(Barrier::new(FIRERS + 2));
    let done = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for _ in 0..FIRERS {
        let (s, start, done) = (s.clone(), start.clone(), done.clone());
        handles.push(std::thread::spawn(move || {
            start.wait();
            while !done.load(Ordering::Acquire) {
                s.run_pending();
            }
        }));
    }
    {
        // Rotator: every ring keeps all earlier keys, so every record stays
        // openable; re-seal on use and reseal_payloads race with fires.
        let (s, start) = (s.clone(), start.clone());
        handles.push(std::thread::spawn(move || {
            start.wait();
            for next in 2..=40u32 {
                let ids: Vec<u32> = (1..=next).rev().collect();
                s.rotate_keys(ring(&ids));
                if next % 4 == 0 {
                    s.reseal_payloads().unwrap();
                }
                std::thread::yield_now();
            }
        }));
    }
    start.wait();
    for _ in 0..ROUNDS {
        clock.advance(SECOND);
        std::thread::yield_now();
    }
    let rotator = handles.pop().unwrap();
    rotator.join().unwrap();
    clock.advance(SECOND);
    done.store(true, Ordering::Release);
    for h in handles {
        h.join().unwrap();
    }
    s.run_pending();
    let stats = s.stats();
    assert_eq!(bad.load(Ordering::Relaxed), 0);
    assert_eq!(stats.failed, 0, "a payload failed to open during rotation");
    assert_eq!(s.seal_stats().open_failures, 0);
    assert!(
        s.seal_stats().resealed > 0,
        "no re-seal raced with the fires"
    );
    assert_eq!(ok.load(Ordering::Relaxed), stats.succeeded);
    assert!(stats.fired >= TASKS as u64, "fired {}", stats.fired);
    // Retire everything but the current key.
    s.reseal_payloads().unwrap();
    for old in 1..40 {
        assert_eq!(s.payloads_sealed_with(old), 0, "key {old}");
    }
    s.rotate_keys(ring(&[40]));
    clock.advance(SECOND);
    let r = s.run_pending();
    assert_eq!((r.fired, r.failed), (TASKS as u64, 0));
}

#[test]
fn debug_output_shows_no_key_or_payload() {
    let hex: String = "ab".repeat(32);
    let ring = KeyRing::decode(&format!("7:{hex}")).unwrap();
    let key_bytes = [0xab_u8; 32];
    let outputs = [
        format!("{ring:?}"),
        format!("{:?}", Key::from_bytes(7, key_bytes)),
        format!(
            "{:?}",
            KeyRing::decode(&format!("7:{}zz", &hex[..62])).unwrap_err()
        ),
        format!(
            "{}",
            KeyRing::decode(&format!("7:{}zz", &hex[..62])).unwrap_err()
        ),
        format!("{:?}", KeyRing::decode(&format!("7:{hex}00")).unwrap_err()),
        format!("{:?}", Error::NoKey),
        format!("{}", Error::Seal(SealError::Rejected { key_id: 7 })),
    ];
    let clock = ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .keys(ring.clone())
        .build();
    let secret = "PAYLOAD-MARKER";
    s.add(Schedule::every(SECOND))
        .name("job")
        .payload(secret)
        .run(|| ())
        .unwrap();
    let more = [
        format!("{s:?}"),
        format!("{:?}", s.info("job").unwrap()),
        format!("{:?}", s.tasks()),
        format!("{:?}", s.seal_stats()),
    ];
    for out in outputs.iter().chain(more.iter()) {
        assert!(!out.contains(&hex[..16]), "key hex in {out}");
        assert!(
            !out.to_lowercase().contains("0xab") && !out.contains("171,"),
            "key bytes in {out}"
        );
        assert!(!out.contains(secret), "payload in {out}");
    }
    assert!(format!("{ring:?}").contains('7'));
}

#[test]
fn key_ring_encoding() {
    let a = "0f".repeat(32);
    let b = "F0".repeat(32);
    let r = KeyRing::decode(&format!(" 3:{a} , 2:{b}")).unwrap();
    assert_eq!(r.current_id(), 3);
    assert_eq!(r.ids(), vec![3, 2]);
    assert!(matches!(
        KeyRing::decode(""),
        Err(KeyError::EmptyEntry { index: 0 })
    ));
    assert!(matches!(
        KeyRing::decode(&format!("3:{a},")),
        Err(KeyError::EmptyEntry { index: 1 })
    ));
    assert!(matches!(
        KeyRing::decode(&a),
        Err(KeyError::MissingColon { index: 0 })
    ));
    assert!(matches!(
        KeyRing::decode(&format!("x:{a}")),
        Err(KeyError::BadId { index: 0 })
    ));
    assert!(matches!(
        KeyRing::decode("1:abcd"),
        Err(KeyError::BadLength {
            index: 0,
            digits: 4
        })
    ));
    assert!(matches!(
        KeyRing::decode(&format!("1:{a},1:{b}")),
        Err(KeyError::DuplicateId { id: 1 })
    ));
    // From the environment (a variable no other test uses).
    std::env::set_var("CRONLANE_TEST_SEAL_KEYS", format!("5:{a}"));
    assert_eq!(
        KeyRing::from_env("CRONLANE_TEST_SEAL_KEYS")
            .unwrap()
            .current_id(),
        5
    );
    assert!(matches!(
        KeyRing::from_env("CRONLANE_TEST_SEAL_KEYS_UNSET"),
        Err(KeyError::Missing { .. })
    ));
    // Same bytes, same key: a record sealed under the env ring opens under
    // the decoded one.
    let clock = ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .keys(KeyRing::from_env("CRONLANE_TEST_SEAL_KEYS").unwrap())
        .build();
    let seen = recorder(&s, "job", b"x");
    s.rotate_keys(KeyRing::decode(&format!("5:{}", a.to_uppercase())).unwrap());
    clock.advance(SECOND);
    assert_eq!(s.run_pending().failed, 0);
    assert_eq!(seen.lock().unwrap().len(), 1);
}
