//! Crash at every commit point, including during recovery: a fixed
//! sequence of durable operations and passes runs on the fault-injecting
//! backend, which loses power at its Nth I/O (write, `set_len` or sync),
//! for N = 1, 2, … until the sequence completes untouched. Each time, the
//! surviving bytes (what was synced; and a torn variant with a random part
//! of the unsynced writes) are reopened with a clean backend and checked
//! against what was acknowledged (the model of `tests/durable_kill.rs`);
//! then recovery itself is crashed at each of its I/Os, and what survives
//! that is checked and recovered once more.
#![cfg(feature = "redb")]

use cronlane::store::{RedbStore, Store, TaskRecord};
use cronlane::{Error, ManualClock, Misfire, Scheduler};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod fault;
use fault::check::{at, delivery_of, t0_ns, Model, Sched, S};
use fault::{Disk, Fault, Rng};

type Lines = Arc<Mutex<Vec<String>>>;

thread_local! {
    /// The progress log's fold threshold of the stores this test's thread
    /// opens (`RedbStoreBuilder::log_rows`).
    static LOG_ROWS: std::cell::Cell<u64> = const { std::cell::Cell::new(8) };
}

fn open(disk: &Disk, clock: &ManualClock, lines: &Lines) -> Result<Scheduler, Error> {
    let store = RedbStore::builder("crash.redb")
        .backend(disk.backend())
        .log_rows(LOG_ROWS.with(|r| r.get()))
        .open()?;
    let s = Scheduler::builder()
        .clock(clock.clone())
        .test_mode(true)
        .store(store)
        .build();
    let l = lines.clone();
    s.handler("h", move |ctx| {
        let (name, t) = (
            ctx.name().unwrap(),
            ctx.scheduled().timestamp_nanos_opt().unwrap(),
        );
        let mut l = l.lock().unwrap();
        l.push(format!("S {name} {t}"));
        l.push(format!("E {name} {t}"));
    })?;
    Ok(s)
}

fn push(lines: &Lines, line: String) {
    lines.lock().unwrap().push(line);
}

/// One durable operation, as the log names it.
fn op(s: &Scheduler, words: &[&str]) -> Result<(), Error> {
    let builder = |name: &str, sched: Sched| {
        s.add(sched.schedule())
            .name(name)
            .misfire(Misfire::CatchUp { max: 1000 })
            .delivery(delivery_of(name))
            .durable("h")
    };
    match words[0] {
        "reg" => builder(words[1], Sched::parse(words[2], words[3]))
            .register()
            .map(drop),
        "batch" => s
            .register_all(
                words[1..]
                    .chunks(3)
                    .map(|w| builder(w[0], Sched::parse(w[1], w[2]))),
            )
            .map(drop),
        "rm" => s.remove(words[1]),
        "pause" => s.pause(words[1]),
        "resume" => s.resume(words[1]),
        "resched" => s.reschedule(words[1], Sched::parse(words[2], words[3]).schedule()),
        w => panic!("bad op {w}"),
    }
}

/// Runs `steps` (operations, and `pass <seconds>`: advance and run), logging
/// intents and acknowledgements; stops at the first store failure.
fn run(s: &Scheduler, clock: &ManualClock, lines: &Lines, steps: &[String]) -> bool {
    for step in steps {
        let words: Vec<&str> = step.split(' ').collect();
        if words[0] == "pass" {
            clock.advance(Duration::from_secs(words[1].parse().unwrap()));
            let now = clock.now().timestamp_nanos_opt().unwrap();
            push(lines, format!("I pass {now}"));
            s.run_pending();
            match s.flush_store() {
                Ok(()) => push(lines, "P".into()),
                Err(Error::Store(_)) => return false,
                Err(e) => panic!("{e}"),
            }
            continue;
        }
        push(lines, format!("I {step}"));
        match op(s, &words) {
            Ok(()) => push(lines, format!("A {step}")),
            Err(Error::Store(_)) => return false,
            Err(e) => panic!("{step}: {e}"),
        }
    }
    true
}

fn workload() -> Vec<String> {
    let t2 = t0_ns() + 2 * S;
    [
        "reg m1 every 1000000000".to_owned(),
        "reg l1 every 1000000000".to_owned(),
        format!("batch m2 once {t2} l2 once {t2} l3 every 2000000000"),
        "pass 1".into(),
        "pause l3".into(),
        "pass 1".into(),
        "resume l3".into(),
        "resched m1 every 3000000000".into(),
        "pass 1".into(),
        "rm l1".into(),
        "pass 2".into(),
        "reg m4 every 1000000000".into(),
        "pass 1".into(),
    ]
    .into()
}

/// The lines as a power loss leaves them: the fires that ended in a pass
/// whose progress write failed are `U` (ended, completion unknown: a
/// commit can fail at an I/O after its sync and be on disk all the same;
/// the store read next tells which, see `fault::check::Fire::unsure`).
fn as_power_loss(lines: &[String]) -> Vec<String> {
    let last_pass = lines.iter().rposition(|l| l.starts_with("I pass"));
    match last_pass {
        Some(i) if !lines[i..].iter().any(|l| l == "P" || l == "Q") => lines
            .iter()
            .enumerate()
            .map(|(j, l)| match l.strip_prefix("E ") {
                Some(rest) if j > i => format!("U {rest}"),
                _ => l.clone(),
            })
            .collect(),
        _ => lines.to_vec(),
    }
}

fn records(image: Vec<u8>) -> Vec<TaskRecord> {
    let store = RedbStore::builder("crash.redb")
        .backend(Disk::from_image(image).backend())
        .open()
        .unwrap_or_else(|e| panic!("the surviving bytes do not open: {e}"));
    assert!(store.unreadable().is_empty(), "{:?}", store.unreadable());
    store.loaded()
}

/// A recovery on `disk` at `now`: open, bind the handler, one pass.
fn recover(disk: &Disk, now: i64, run_no: i64) -> Vec<String> {
    let lines: Lines = Arc::new(Mutex::new(vec![format!("R {run_no} {now}")]));
    let clock = ManualClock::new(at(now));
    if let Ok(s) = open(disk, &clock, &lines) {
        push(&lines, format!("I pass {now}"));
        s.run_pending();
        // A pass whose claim failed skips its fires (they run after the
        // next restart) and says so only in the log and the store's
        // failure count: the pass is written only if no I/O failed.
        if s.flush_store().is_ok() && disk.fired().is_none() {
            push(&lines, "Q".into());
        }
    }
    let out = lines.lock().unwrap().clone();
    out
}

/// Checks `image` against `model`, then recovers it; with `crash`, crashes
/// that recovery at every I/O and checks what survives, recovered once
/// more. Returns the recovery crash points.
fn check_image(model: &Model, image: Vec<u8>, strict: bool, now: i64, crash: bool) -> u64 {
    let mut model = model.clone();
    model.check_store(&records(image.clone()), strict);
    let mut points = 0;
    for m in 1.. {
        let disk = Disk::from_image(image.clone());
        if crash {
            disk.fail_at(m, Fault::PowerLoss);
        }
        let lines = recover(&disk, now, 1);
        let mut m2 = model.clone();
        if disk.fired().is_none() {
            m2.read_run(&lines.iter().map(String::as_str).collect::<Vec<_>>());
            m2.check_store(&records(disk.live()), true);
            break;
        }
        points += 1;
        let lines = as_power_loss(&lines);
        m2.read_run(&lines.iter().map(String::as_str).collect::<Vec<_>>());
        let survived = disk.durable();
        m2.check_store(&records(survived.clone()), true);
        // Recover what the crashed recovery left.
        let again = Disk::from_image(survived);
        let lines = recover(&again, now, 2);
        m2.read_run(&lines.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(lines.last().is_some_and(|l| l == "Q"), "{lines:?}");
        m2.check_store(&records(again.live()), true);
    }
    points
}

/// Passes in a row (two progress commits each: the at-most-once claim and
/// the at-least-once completions): the progress log gets rows, is folded
/// when full (`log_rows(3)`) and by a definition change, and recovery
/// reads it.
fn passes_in_a_row() -> Vec<String> {
    let mut steps: Vec<String> = vec![
        "reg m1 every 1000000000".into(),
        "reg l1 every 1000000000".into(),
        "reg m2 every 2000000000".into(),
    ];
    steps.extend((0..5).map(|_| "pass 1".to_owned()));
    steps.push("rm m2".into());
    steps.extend((0..3).map(|_| "pass 1".to_owned()));
    steps
}

#[test]
fn a_crash_at_every_io_loses_nothing_acknowledged_even_during_recovery() {
    crash_everywhere(workload(), 8);
}

#[test]
fn a_crash_at_every_io_of_the_progress_log_and_its_folds_loses_nothing() {
    crash_everywhere(passes_in_a_row(), 3);
}

fn crash_everywhere(steps: Vec<String>, log_rows: u64) {
    LOG_ROWS.with(|r| r.set(log_rows));
    let mut rng = Rng::new(fault::seed());
    let (mut points, mut recovery_points, mut torn) = (0u64, 0u64, 0u64);
    // Power losses between the same two syncs leave the same bytes: their
    // recovery is crashed at every I/O once.
    let mut recovered = std::collections::HashSet::new();
    for n in 1.. {
        let disk = Disk::new();
        disk.fail_at(n, Fault::PowerLoss);
        let clock = ManualClock::new(at(t0_ns()));
        let lines: Lines = Arc::new(Mutex::new(vec![format!("R 0 {}", t0_ns())]));
        let completed = match open(&disk, &clock, &lines) {
            Ok(s) => run(&s, &clock, &lines, &steps),
            Err(Error::Store(_)) => false,
            Err(e) => panic!("{e}"),
        };
        let lines = lines.lock().unwrap().clone();
        let now = clock.now().timestamp_nanos_opt().unwrap();
        if disk.fired().is_none() {
            assert!(completed, "the sequence completes without a fault");
            let mut model = Model::default();
            model.read_run(&lines.iter().map(String::as_str).collect::<Vec<_>>());
            assert!(
                model.fires.len() >= 10,
                "the sequence fired: {}",
                model.fires.len()
            );
            model.check_store(&records(disk.live()), true);
            break;
        }
        // (A fault after the last step hits the close: nothing to lose.)
        let _ = completed;
        points += 1;
        // Power loss: what was synced survives.
        let strict = as_power_loss(&lines);
        let mut model = Model::default();
        model.read_run(&strict.iter().map(String::as_str).collect::<Vec<_>>());
        let image = disk.durable();
        let crash = recovered.insert(image.clone());
        recovery_points += check_image(&model, image, true, now, crash);
        // A torn power loss: part of the unsynced writes reached the disk.
        let mut model = Model::default();
        model.read_run(&lines.iter().map(String::as_str).collect::<Vec<_>>());
        let image = disk.torn(|_| rng.one_in(2));
        if image != disk.durable() {
            torn += 1;
        }
        recovery_points += check_image(&model, image, false, now, false);
    }
    println!(
        "crashed at {points} I/O points of the sequence, {torn} of them also torn; \
         {recovery_points} crashes during the recovery of the {} distinct images",
        recovered.len()
    );
    assert!(points > 20, "{points}");
}

#[test]
fn instants_skipped_while_paused_do_not_fire_after_a_restart() {
    for delivery in ["m", "l"] {
        let disk = Disk::new();
        let clock = ManualClock::new(at(t0_ns()));
        let lines: Lines = Arc::default();
        let name = format!("{delivery}1");
        {
            let s = open(&disk, &clock, &lines).unwrap();
            op(&s, &["reg", &name, "every", "1000000000"]).unwrap();
            clock.advance(Duration::from_millis(500));
            op(&s, &["pause", &name]).unwrap();
            clock.advance(Duration::from_secs(10));
            op(&s, &["resume", &name]).unwrap();
            assert_eq!(s.run_pending().fired, 0, "resume plans from now");
        }
        // A restart right after the resume: the same plan.
        let s = open(&Disk::from_image(disk.live()), &clock, &lines).unwrap();
        assert_eq!(
            s.run_pending().fired,
            0,
            "{name}: the instants skipped while paused are not missed fires"
        );
        clock.advance(Duration::from_millis(500));
        assert_eq!(s.run_pending().fired, 1);
    }
}

/// A store whose claims fail while `fail` is set (a transient failure:
/// redb itself refuses all I/O after one failed until reopened, so only a
/// wrapper shows what happens when the store comes back).
struct FlakyClaims {
    inner: RedbStore,
    fail: Arc<std::sync::atomic::AtomicBool>,
}

impl Store for FlakyClaims {
    fn loaded(&self) -> Vec<TaskRecord> {
        self.inner.loaded()
    }
    fn write(&self, ops: Vec<cronlane::store::Op>) -> Result<(), cronlane::store::StoreError> {
        self.inner.write(ops)
    }
    fn claim(
        &self,
        fires: &mut [cronlane::store::FireClaim],
    ) -> Result<(), cronlane::store::StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(cronlane::store::StoreError::Io(
                "injected claim failure".into(),
            ));
        }
        self.inner.claim(fires)
    }
    fn complete(
        &self,
        fires: &[cronlane::store::FireDone],
    ) -> Result<(), cronlane::store::StoreError> {
        self.inner.complete(fires)
    }
}

#[test]
fn a_one_shot_whose_claim_failed_is_kept_and_runs_after_a_restart() {
    let disk = Disk::new();
    let clock = ManualClock::new(at(t0_ns()));
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let t1 = t0_ns() + S;
    {
        let store = RedbStore::builder("flaky.redb")
            .backend(disk.backend())
            .open()
            .unwrap();
        let s = Scheduler::builder()
            .clock(clock.clone())
            .test_mode(true)
            .store(FlakyClaims {
                inner: store,
                fail: fail.clone(),
            })
            .build();
        s.handler("h", |_| ()).unwrap();
        op(&s, &["reg", "m1", "once", &t1.to_string()]).unwrap();
        op(&s, &["reg", "l1", "once", &t1.to_string()]).unwrap();
        fail.store(true, std::sync::atomic::Ordering::SeqCst);
        clock.advance(Duration::from_secs(1));
        assert_eq!(s.run_pending().fired, 0, "a failed claim runs nothing");
        fail.store(false, std::sync::atomic::Ordering::SeqCst);
        // The store works again: nothing deleted the one-shots that did
        // not run, and the scheduler still lists them (not armed).
        s.flush_store().unwrap();
        let listed = s.durable_tasks();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(listed.iter().all(|t| t.id.is_none() && t.problem.is_some()));
    }
    let lines: Lines = Arc::default();
    let s = open(&Disk::from_image(disk.live()), &clock, &lines).unwrap();
    assert_eq!(s.durable_tasks().len(), 2, "both kept in the store");
    assert_eq!(s.run_pending().fired, 2, "and they run after the restart");
    assert!(s.durable_tasks().is_empty());
}

/// The image of `disk` turned back into format 1 (no progress log).
fn as_format_1(image: Vec<u8>) -> Vec<u8> {
    use redb::TableDefinition;
    let disk = Disk::from_image(image);
    let db = redb::Database::builder()
        .create_with_backend(disk.backend())
        .unwrap();
    let txn = db.begin_write().unwrap();
    assert!(txn
        .delete_table(TableDefinition::<u64, &[u8]>::new("progress"))
        .unwrap());
    txn.open_table(TableDefinition::<&str, u64>::new("meta"))
        .unwrap()
        .insert("format", 1)
        .unwrap();
    txn.commit().unwrap();
    drop(db);
    disk.live()
}

fn format_of(image: Vec<u8>) -> u64 {
    use redb::{ReadableDatabase, TableDefinition};
    let disk = Disk::from_image(image);
    let db = redb::Database::builder()
        .create_with_backend(disk.backend())
        .unwrap();
    let read = db.begin_read().unwrap();
    let meta = read
        .open_table(TableDefinition::<&str, u64>::new("meta"))
        .unwrap();
    let format = meta.get("format").unwrap().unwrap().value();
    drop(meta);
    format
}

#[test]
fn a_format_1_store_is_migrated_on_open_even_through_a_crash() {
    // A format-1 store: two tasks, one with progress (its cursor row).
    let disk = Disk::new();
    let clock = ManualClock::new(at(t0_ns()));
    let lines: Lines = Arc::default();
    {
        let s = open(&disk, &clock, &lines).unwrap();
        op(&s, &["reg", "m1", "every", "1000000000"]).unwrap();
        op(&s, &["reg", "l1", "every", "1000000000"]).unwrap();
        clock.advance(Duration::from_secs(1));
        assert_eq!(s.run_pending().fired, 2);
        s.flush_store().unwrap();
        // A definition change folds the pass's progress into `cursors`.
        op(&s, &["pause", "m1"]).unwrap();
    }
    let v1 = as_format_1(disk.live());
    assert_eq!(format_of(v1.clone()), 1);
    let expect = |image: Vec<u8>| {
        let recs = records(image);
        let cursors: Vec<(&str, i64)> = recs.iter().map(|r| (r.name.as_str(), r.cursor)).collect();
        assert_eq!(cursors, [("l1", t0_ns()), ("m1", t0_ns())]);
        assert!(recs.iter().any(|r| r.name == "m1" && r.paused));
    };
    // Crash the migrating open at each of its I/Os: what survives is
    // format 1 or 2, and opens with both tasks and their cursors.
    let mut points = 0;
    for n in 1.. {
        let disk = Disk::from_image(v1.clone());
        disk.fail_at(n, Fault::PowerLoss);
        let opened = RedbStore::builder("crash.redb")
            .backend(disk.backend())
            .open();
        if disk.fired().is_none() {
            let store = opened.unwrap();
            assert_eq!(store.loaded().len(), 2);
            drop(store);
            assert_eq!(format_of(disk.live()), 2);
            expect(disk.live());
            break;
        }
        drop(opened);
        points += 1;
        let survived = disk.durable();
        assert!([1, 2].contains(&format_of(survived.clone())));
        expect(survived);
    }
    assert!(points > 0);
    // Migrated, it works as any store: a restart fires from the cursors.
    let s = open(&Disk::from_image(disk.live()), &clock, &lines).unwrap();
    assert_eq!(
        s.run_pending().fired,
        1,
        "l1 (m1 is paused), nothing at or before its cursor"
    );
}

#[test]
fn a_store_of_a_newer_format_is_refused() {
    use redb::TableDefinition;
    let disk = Disk::new();
    drop(
        RedbStore::builder("crash.redb")
            .backend(disk.backend())
            .open()
            .unwrap(),
    );
    {
        let db = redb::Database::builder()
            .create_with_backend(disk.backend())
            .unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(TableDefinition::<&str, u64>::new("meta"))
            .unwrap()
            .insert("format", 3)
            .unwrap();
        txn.commit().unwrap();
    }
    let e = RedbStore::builder("crash.redb")
        .backend(Disk::from_image(disk.live()).backend())
        .open()
        .unwrap_err();
    assert!(
        matches!(
            e,
            cronlane::store::StoreError::TooNew {
                found: 3,
                supported: 2,
                ..
            }
        ),
        "{e}"
    );
}
