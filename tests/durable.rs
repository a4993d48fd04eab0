//! Durable tasks on the embedded redb store: definitions survive a
//! restart (a new scheduler on the same file), fire progress follows the
//! delivery policy, missed fires go through the misfire policy, handlers
//! bind stored tasks, and bad input changes nothing.
#![cfg(feature = "redb")]

use cronlane::store::{RedbStore, StoreError};
use cronlane::{Delivery, Error, ManualClock, Misfire, Schedule, Scheduler};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;
use common::{t0, SECOND};

/// A fresh store path in the target dir's temp area, removed on drop.
struct TempStore(PathBuf);

impl TempStore {
    fn new(tag: &str) -> TempStore {
        let dir = std::env::temp_dir().join(format!(
            "cronlane-durable-{}-{tag}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempStore(dir.join("tasks.redb"))
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

type Log = Arc<Mutex<Vec<(String, i64)>>>;

/// A test-mode scheduler on `clock` with the store at `path`, and a
/// handler "h" recording `(name, scheduled ms)`.
fn open(path: &PathBuf, clock: &ManualClock, log: &Log) -> Scheduler {
    let s = Scheduler::builder()
        .clock(clock.clone())
        .test_mode(true)
        .store(RedbStore::open(path).unwrap())
        .build();
    let log = log.clone();
    s.handler("h", move |ctx| {
        log.lock().unwrap().push((
            ctx.name().unwrap_or("").to_owned(),
            ctx.scheduled().timestamp_millis(),
        ));
    })
    .unwrap();
    s
}

fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

#[test]
fn a_durable_task_survives_a_restart_and_keeps_its_cursor() {
    let store = TempStore::new("restart");
    let clock = ManualClock::new(t0());
    let log: Log = Arc::default();
    {
        let s = open(&store.0, &clock, &log);
        s.add(Schedule::every(SECOND).starting_at(t0() + SECOND))
            .name("tick")
            .durable("h")
            .register()
            .unwrap();
        clock.advance(SECOND);
        assert_eq!(s.run_pending().fired, 1);
        clock.advance(SECOND);
        assert_eq!(s.run_pending().fired, 1);
    }
    // Restart at the same instant: the task is back, nothing fires twice.
    let s = open(&store.0, &clock, &log);
    assert_eq!(s.durable_tasks().len(), 1);
    assert!(s.durable_tasks()[0].id.is_some());
    assert_eq!(s.run_pending().fired, 0);
    clock.advance(SECOND);
    assert_eq!(s.run_pending().fired, 1);
    let got: Vec<i64> = log.lock().unwrap().iter().map(|e| e.1).collect();
    let base = ms(t0());
    assert_eq!(got, vec![base + 1000, base + 2000, base + 3000]);
}

#[test]
fn registering_the_same_definition_again_keeps_the_stored_task() {
    let store = TempStore::new("idempotent");
    let clock = ManualClock::new(t0());
    let log: Log = Arc::default();
    let first = {
        let s = open(&store.0, &clock, &log);
        s.add(Schedule::every(SECOND))
            .name("tick")
            .durable("h")
            .register()
            .unwrap()
    };
    clock.advance(Duration::from_millis(300));
    let s = open(&store.0, &clock, &log);
    // A relative interval registered again at a later instant is the same
    // definition: its stored anchor stands.
    let again = s
        .add(Schedule::every(SECOND))
        .name("tick")
        .durable("h")
        .register()
        .unwrap();
    assert_eq!(s.durable_tasks().len(), 1);
    assert_eq!(s.len(), 1);
    let _ = first;
    assert_eq!(Some(again), s.durable_tasks()[0].id);
    // A different definition is refused unless replacing.
    let err = s
        .add(Schedule::every(2 * SECOND))
        .name("tick")
        .durable("h")
        .register()
        .unwrap_err();
    assert!(
        matches!(err, Error::DuplicateName(ref n) if n == "tick"),
        "{err}"
    );
    s.add(Schedule::every(2 * SECOND))
        .name("tick")
        .durable("h")
        .replace_existing()
        .register()
        .unwrap();
    assert_eq!(s.len(), 1);
    assert!(s.durable_tasks()[0]
        .schedule
        .starts_with("every 2000000000"));
}

#[test]
fn missed_fires_go_through_the_misfire_policy_at_restart() {
    for (misfire, expect) in [
        (Misfire::Skip, 0usize),
        (Misfire::FireOnce, 1),
        (Misfire::CatchUp { max: 3 }, 3),
    ] {
        let store = TempStore::new("misfire");
        let clock = ManualClock::new(t0());
        let log: Log = Arc::default();
        {
            let s = open(&store.0, &clock, &log);
            s.add(Schedule::every(SECOND).starting_at(t0() + SECOND))
                .name("tick")
                .misfire(misfire)
                .durable("h")
                .register()
                .unwrap();
        }
        // Down for 10 s.
        clock.advance(10 * SECOND + Duration::from_millis(500));
        let s = open(&store.0, &clock, &log);
        let mut fired = 0;
        for _ in 0..5 {
            fired += s.run_pending().fired as usize;
        }
        assert_eq!(fired, expect, "{misfire:?}");
        if misfire == Misfire::FireOnce {
            // The latest missed instant.
            assert_eq!(log.lock().unwrap()[0].1, ms(t0()) + 10_000);
        }
    }
}

#[test]
fn a_stored_task_waits_for_its_handler_and_is_listed() {
    let store = TempStore::new("unbound");
    let clock = ManualClock::new(t0());
    let log: Log = Arc::default();
    {
        let s = open(&store.0, &clock, &log);
        s.handler("other", |_| ()).unwrap();
        s.add(Schedule::every(SECOND).starting_at(t0() + SECOND))
            .name("later")
            .durable("other")
            .register()
            .unwrap();
    }
    clock.advance(SECOND);
    let fired: Arc<Mutex<u32>> = Arc::default();
    let s = open(&store.0, &clock, &log);
    let listed = s.durable_tasks();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, None, "not armed without its handler");
    assert_eq!(s.run_pending().fired, 0);
    let f = fired.clone();
    assert_eq!(
        s.handler("other", move |_| *f.lock().unwrap() += 1)
            .unwrap(),
        1
    );
    assert_eq!(s.run_pending().fired, 1);
    assert_eq!(*fired.lock().unwrap(), 1);
}

#[test]
fn pause_resume_reschedule_and_remove_are_stored() {
    let store = TempStore::new("manage");
    let clock = ManualClock::new(t0());
    let log: Log = Arc::default();
    {
        let s = open(&store.0, &clock, &log);
        for name in ["a", "b", "c"] {
            s.add(Schedule::every(SECOND).starting_at(t0() + SECOND))
                .name(name)
                .durable("h")
                .register()
                .unwrap();
        }
        s.pause("a").unwrap();
        s.remove("b").unwrap();
        s.reschedule(
            "c",
            Schedule::every(5 * SECOND).starting_at(t0() + 5 * SECOND),
        )
        .unwrap();
    }
    let s = open(&store.0, &clock, &log);
    let tasks = s.durable_tasks();
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
    assert!(tasks[0].paused);
    assert!(tasks[1].schedule.starts_with("every 5000000000"));
    clock.advance(5 * SECOND);
    s.run_pending();
    let got: Vec<String> = log.lock().unwrap().iter().map(|e| e.0.clone()).collect();
    assert_eq!(got, ["c"], "a is paused, b removed");
    s.resume("a").unwrap();
    drop(s);
    let s = open(&store.0, &clock, &log);
    assert!(!s.durable_tasks()[0].paused);
}

#[test]
fn a_one_shot_is_deleted_once_fired() {
    for delivery in [Delivery::AtMostOnce, Delivery::AtLeastOnce] {
        let store = TempStore::new("once");
        let clock = ManualClock::new(t0());
        let log: Log = Arc::default();
        {
            let s = open(&store.0, &clock, &log);
            s.add(Schedule::once(t0() + SECOND))
                .name("once")
                .delivery(delivery)
                .durable("h")
                .register()
                .unwrap();
            clock.advance(SECOND);
            assert_eq!(s.run_pending().fired, 1);
        }
        let s = open(&store.0, &clock, &log);
        assert!(s.durable_tasks().is_empty(), "{delivery:?}");
        clock.advance(SECOND);
        assert_eq!(s.run_pending().fired, 0);
    }
}

#[test]
fn bad_input_is_a_typed_error_and_changes_nothing() {
    let store = TempStore::new("bad");
    let clock = ManualClock::new(t0());
    let log: Log = Arc::default();
    let s = open(&store.0, &clock, &log);
    let every = || Schedule::every(SECOND);
    assert!(matches!(
        s.add(every()).durable("h").register(),
        Err(Error::DurableNeedsName)
    ));
    assert!(matches!(
        s.add(every()).name("x").durable("nope").register(),
        Err(Error::UnknownHandler(ref h)) if h == "nope"
    ));
    assert!(matches!(
        s.add(every()).name("x").durable("h").times(3).register(),
        Err(Error::NotDurable { .. })
    ));
    assert!(matches!(
        s.add(every()).name("x").durable("h").run(|| ()),
        Err(Error::NotDurable { .. })
    ));
    assert!(matches!(
        s.handler("h", |_| ()),
        Err(Error::DuplicateHandler(ref h)) if h == "h"
    ));
    // A batch with one bad entry stores none of it.
    let err = s
        .register_all([
            s.add(every()).name("ok").durable("h"),
            s.add(every()).name("bad").durable("missing"),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::UnknownHandler(_)));
    assert!(s.durable_tasks().is_empty());
    assert_eq!(s.len(), 0);
    // Without a store.
    let plain = Scheduler::builder().test_mode(true).build();
    assert!(matches!(plain.handler("h", |_| ()), Err(Error::NoStore(_))));
}

#[test]
fn a_second_open_of_the_same_file_is_locked() {
    let store = TempStore::new("lock");
    let _first = RedbStore::open(&store.0).unwrap();
    match RedbStore::open(&store.0) {
        Err(StoreError::Locked { path }) => assert!(path.ends_with("tasks.redb")),
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn a_foreign_or_truncated_file_is_refused() {
    let store = TempStore::new("foreign");
    std::fs::write(&store.0, b"this is not a database at all, just text").unwrap();
    let err = RedbStore::open(&store.0).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(
        std::fs::read(&store.0).unwrap(),
        b"this is not a database at all, just text",
        "the file is left as it was"
    );
}

#[test]
fn a_batch_registers_many_in_one_call() {
    let store = TempStore::new("batch");
    let clock = ManualClock::new(t0());
    let log: Log = Arc::default();
    {
        let s = open(&store.0, &clock, &log);
        let ids = s
            .register_all((0..1000).map(|i| {
                s.add(Schedule::once(t0() + SECOND))
                    .name(format!("t{i}"))
                    .durable("h")
            }))
            .unwrap();
        assert_eq!(ids.len(), 1000);
    }
    clock.advance(SECOND);
    let s = open(&store.0, &clock, &log);
    assert_eq!(s.durable_tasks().len(), 1000);
    assert_eq!(s.run_pending().fired, 1000);
    drop(s);
    let s = open(&store.0, &clock, &log);
    assert!(s.durable_tasks().is_empty());
}

#[cfg(feature = "seal")]
mod sealed {
    use super::*;
    use crate::common::ring;

    fn production(
        path: &PathBuf,
        clock: &ManualClock,
        ids: &[u32],
        seen: &Arc<Mutex<Vec<Vec<u8>>>>,
    ) -> Scheduler {
        let s = Scheduler::builder()
            .clock(clock.clone())
            .keys(ring(ids))
            .store(RedbStore::open(path).unwrap())
            .build();
        let seen = seen.clone();
        s.handler("h", move |ctx| {
            seen.lock()
                .unwrap()
                .push(ctx.payload().unwrap_or_default().to_vec());
        })
        .unwrap();
        s
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn payloads_are_sealed_at_rest_and_rotation_reseals_them_in_place() {
        let store = TempStore::new("sealed");
        let clock = ManualClock::new(t0());
        let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        const SECRET: &[u8] = b"postgres://admin:hunter2@db/prod";
        {
            let s = production(&store.0, &clock, &[1], &seen);
            s.add(Schedule::every(SECOND).starting_at(t0() + SECOND))
                .name("secret")
                .payload(SECRET.to_vec())
                .durable("h")
                .register()
                .unwrap();
        }
        // `strings` on the file must not show the payload.
        let bytes = std::fs::read(&store.0).unwrap();
        assert!(
            !contains(&bytes, SECRET),
            "the payload is on disk in the clear"
        );
        assert!(!contains(&bytes, b"hunter2"));
        // Rotate to key 2 (key 1 still known), re-seal in place.
        {
            let s = production(&store.0, &clock, &[1], &seen);
            s.rotate_keys(ring(&[2, 1]));
            let report = s.reseal_payloads().unwrap();
            assert_eq!(report.stored, 1, "{report:?}");
        }
        // Key 1 retired: the stored record opens with key 2 alone.
        clock.advance(SECOND);
        let s = production(&store.0, &clock, &[2], &seen);
        assert_eq!(s.run_pending().fired, 1);
        assert_eq!(seen.lock().unwrap().as_slice(), &[SECRET.to_vec()]);
        let bytes = std::fs::read(&store.0).unwrap();
        assert!(!contains(&bytes, SECRET));
    }
}

#[test]
fn a_non_durable_task_replacing_a_durable_one_takes_it_out_of_the_store() {
    let store = TempStore::new("displace");
    let clock = ManualClock::new(t0());
    let log: Log = Arc::default();
    {
        let s = open(&store.0, &clock, &log);
        s.add(Schedule::every(SECOND))
            .name("x")
            .durable("h")
            .register()
            .unwrap();
        s.add(Schedule::every(SECOND))
            .name("x")
            .replace_existing()
            .run(|| ())
            .unwrap();
        assert_eq!(s.len(), 1);
    }
    let s = open(&store.0, &clock, &log);
    assert!(s.durable_tasks().is_empty());
}
