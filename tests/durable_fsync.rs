//! fsync counts: one per durable commit (concurrent registrations share
//! commits), one per `run_pending` pass with durable progress of one
//! delivery policy, none on the path of a non-durable task. Counted twice:
//! through the fault-injecting backend's `sync_data` calls (exact, in this
//! process), and with `strace -c` on a child process on a real file.
#![cfg(feature = "redb")]

use cronlane::store::RedbStore;
use cronlane::{Delivery, ManualClock, Schedule, Scheduler};
use std::path::Path;
use std::process::Command;
use std::sync::Barrier;
use std::time::Duration;

mod common;
mod fault;
use common::{t0, SECOND};
use fault::Disk;

fn on_disk(disk: &Disk, clock: &ManualClock) -> Scheduler {
    let store = RedbStore::builder("fsync.redb")
        .backend(disk.backend())
        .open()
        .unwrap();
    let s = Scheduler::builder()
        .clock(clock.clone())
        .test_mode(true)
        .store(store)
        .build();
    s.handler("h", |_| ()).unwrap();
    s
}

fn durable(s: &Scheduler, name: &str, delivery: Delivery) {
    s.add(Schedule::every(SECOND).starting_at(t0() + SECOND))
        .name(name)
        .delivery(delivery)
        .durable("h")
        .register()
        .unwrap();
}

/// Commits that `f` caused: its syncs, less the one redb adds when a
/// commit grows the file (it makes the new length durable before a header
/// names it). Checks that it did not grow the file more than once per
/// commit.
fn syncs(disk: &Disk, f: impl FnOnce()) -> u64 {
    let (before, grown) = (disk.counts().1, disk.grows());
    f();
    let (syncs, grows) = (disk.counts().1 - before, disk.grows() - grown);
    assert!(grows * 2 <= syncs, "{syncs} syncs, {grows} growths");
    syncs - grows
}

#[test]
fn one_sync_per_definition_commit_and_per_pass_none_for_non_durable_tasks() {
    let disk = Disk::new();
    let clock = ManualClock::new(t0());
    let s = on_disk(&disk, &clock);

    let n = syncs(&disk, || {
        for i in 0..20 {
            durable(&s, &format!("amo{i}"), Delivery::AtMostOnce);
        }
    });
    assert_eq!(n, 20, "20 sequential registrations");

    let n = syncs(&disk, || {
        s.register_all((0..100).map(|i| {
            s.add(Schedule::every(SECOND).starting_at(t0() + SECOND))
                .name(format!("alo{i}"))
                .delivery(Delivery::AtLeastOnce)
                .durable("h")
        }))
        .unwrap();
    });
    assert_eq!(n, 1, "a batch of 100 is one commit");

    let n = syncs(&disk, || {
        s.pause("amo0").unwrap();
        s.resume("amo0").unwrap();
        s.reschedule(
            "amo1",
            Schedule::every(SECOND / 2).starting_at(t0() + SECOND),
        )
        .unwrap();
        s.remove("amo2").unwrap();
    });
    assert_eq!(n, 4, "pause, resume, reschedule, remove");

    // Non-durable tasks on a scheduler with a store: no sync at all.
    for i in 0..50 {
        s.add(Schedule::every(SECOND / 2))
            .name(format!("plain{i}"))
            .run(|| ())
            .unwrap();
    }
    // A pass with 119 durable fires of both policies and 50 plain ones:
    // one claim commit (at most once) and one completion commit (at least
    // once).
    clock.advance(SECOND);
    let mut fired = 0;
    let n = syncs(&disk, || fired = s.run_pending().fired);
    assert_eq!(fired, 19 + 100 + 50);
    assert_eq!(n, 2, "one commit before the callbacks, one after");

    // Only at-least-once fires due: one commit.
    let amo: Vec<String> = (0..20)
        .filter(|&i| i != 2)
        .map(|i| format!("amo{i}"))
        .collect();
    for name in &amo {
        s.pause(name.as_str()).unwrap();
    }
    clock.advance(SECOND);
    let n = syncs(&disk, || fired = s.run_pending().fired);
    assert_eq!(fired, 100 + 50);
    assert_eq!(n, 1, "at-least-once only: one commit after the callbacks");

    // Only at-most-once fires due: one commit.
    for name in &amo {
        s.resume(name.as_str()).unwrap();
    }
    for i in 0..100 {
        s.pause(format!("alo{i}").as_str()).unwrap();
    }
    clock.advance(SECOND);
    let n = syncs(&disk, || fired = s.run_pending().fired);
    assert_eq!(fired, 19 + 50);
    assert_eq!(n, 1, "at-most-once only: one commit before the callbacks");

    // Only non-durable fires due: none.
    for name in &amo {
        s.pause(name.as_str()).unwrap();
    }
    let n = syncs(&disk, || {
        for _ in 0..10 {
            clock.advance(SECOND / 2);
            fired = s.run_pending().fired;
            assert_eq!(fired, 50);
        }
    });
    assert_eq!(n, 0, "non-durable fires on a scheduler with a store");
    let n = syncs(&disk, || {
        clock.advance(SECOND);
        s.run_pending();
    });
    assert_eq!(n, 0, "a pass without durable fires");
}

#[test]
fn a_one_shot_pass_is_one_commit() {
    for delivery in [Delivery::AtMostOnce, Delivery::AtLeastOnce] {
        let disk = Disk::new();
        let clock = ManualClock::new(t0());
        let s = on_disk(&disk, &clock);
        s.register_all((0..10).map(|i| {
            s.add(Schedule::once(t0() + SECOND))
                .name(format!("once{i}"))
                .delivery(delivery)
                .durable("h")
        }))
        .unwrap();
        clock.advance(SECOND);
        let n = syncs(&disk, || assert_eq!(s.run_pending().fired, 10));
        assert_eq!(n, 1, "{delivery:?}: 10 one-shots fired and deleted");
        assert!(s.durable_tasks().is_empty());
    }
}

#[test]
fn concurrent_registrations_share_commits() {
    const THREADS: usize = 8;
    const EACH: usize = 25;
    let disk = Disk::new();
    // What an fsync costs on a device: commits take long enough to share.
    disk.sync_latency(Duration::from_millis(2));
    let clock = ManualClock::new(t0());
    let s = on_disk(&disk, &clock);
    let start = Barrier::new(THREADS);
    let n = syncs(&disk, || {
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                let (s, start) = (&s, &start);
                scope.spawn(move || {
                    start.wait();
                    for i in 0..EACH {
                        durable(s, &format!("t{t}-{i}"), Delivery::AtLeastOnce);
                    }
                });
            }
        });
    });
    let total = (THREADS * EACH) as u64;
    assert_eq!(s.durable_tasks().len(), total as usize);
    println!(
        "{total} concurrent registrations on {THREADS} threads: {n} commits ({:.1} per commit)",
        total as f64 / n as f64
    );
    assert!(n * 4 <= total * 3, "{n} commits for {total} registrations");
}

// ---- strace on a child process, on a real file ----

const CHILD: &str = "CRONLANE_FSYNC_CHILD";

/// What a child does (run under strace by the parent).
#[test]
fn fsync_child() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let path = std::env::var("CRONLANE_FSYNC_PATH").unwrap();
    let clock = ManualClock::new(t0());
    if mode == "no-store" {
        let s = Scheduler::builder()
            .clock(clock.clone())
            .test_mode(true)
            .build();
        for i in 0..100 {
            s.add(Schedule::every(SECOND))
                .name(format!("p{i}"))
                .run(|| ())
                .unwrap();
        }
        for _ in 0..10 {
            clock.advance(SECOND);
            assert_eq!(s.run_pending().fired, 100);
        }
        return;
    }
    let s = Scheduler::builder()
        .clock(clock.clone())
        .test_mode(true)
        .store(RedbStore::open(&path).unwrap())
        .build();
    s.handler("h", |_| ()).unwrap();
    match mode.as_str() {
        "open" => {}
        "non-durable" => {
            for i in 0..100 {
                s.add(Schedule::every(SECOND))
                    .name(format!("p{i}"))
                    .run(|| ())
                    .unwrap();
            }
            for _ in 0..10 {
                clock.advance(SECOND);
                assert_eq!(s.run_pending().fired, 100);
            }
        }
        "sequential" => {
            for i in 0..20 {
                durable(&s, &format!("d{i}"), Delivery::AtMostOnce);
            }
        }
        "batch" | "passes" => {
            s.register_all((0..100).map(|i| {
                s.add(Schedule::every(SECOND).starting_at(t0() + SECOND))
                    .name(format!("d{i}"))
                    .delivery(Delivery::AtMostOnce)
                    .durable("h")
            }))
            .unwrap();
            if mode == "passes" {
                for _ in 0..10 {
                    clock.advance(SECOND);
                    assert_eq!(s.run_pending().fired, 100);
                }
            }
        }
        "concurrent" => {
            let start = Barrier::new(8);
            std::thread::scope(|scope| {
                for t in 0..8 {
                    let (s, start) = (&s, &start);
                    scope.spawn(move || {
                        start.wait();
                        for i in 0..25 {
                            durable(s, &format!("t{t}-{i}"), Delivery::AtLeastOnce);
                        }
                    });
                }
            });
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// fdatasync + fsync calls and ftruncate calls (the file's length changes)
/// of a child in `mode`, or why they cannot be counted.
fn strace(mode: &str, dir: &Path) -> Result<(u64, u64), String> {
    let out = dir.join(format!("{mode}.strace"));
    let path = dir.join(format!("{mode}.redb"));
    let status = Command::new("strace")
        .args(["-f", "-c", "-e", "trace=fdatasync,fsync,ftruncate", "-o"])
        .arg(&out)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "fsync_child", "--nocapture", "--test-threads=1"])
        .env(CHILD, mode)
        .env("CRONLANE_FSYNC_PATH", &path)
        .output()
        .map_err(|e| format!("cannot run strace: {e}"))?;
    if !status.status.success() {
        return Err(format!(
            "strace or the child failed ({}): {}",
            status.status,
            String::from_utf8_lossy(&status.stderr)
        ));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
    let (mut syncs, mut truncates) = (0, 0);
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let calls = || cols[3].parse::<u64>().map_err(|e| format!("{line}: {e}"));
        match cols.last() {
            Some(&"fdatasync") | Some(&"fsync") => syncs += calls()?,
            Some(&"ftruncate") => truncates += calls()?,
            _ => {}
        }
    }
    Ok((syncs, truncates))
}

#[test]
fn strace_counts_fsyncs_of_a_child_on_a_real_file() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("cronlane-fsync-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let count = |mode: &str| strace(mode, &dir);
    let no_store = match count("no-store") {
        Ok((n, _)) => n,
        Err(why) => {
            let _ = std::fs::remove_dir_all(&dir);
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("strace is needed under CI=true and failed: {why}");
            }
            eprintln!("SKIPPED: cannot count fsyncs with strace here: {why}");
            return;
        }
    };
    let open = count("open").unwrap().0;
    let non_durable = count("non-durable").unwrap().0;
    let sequential = count("sequential").unwrap().0;
    let (batch, batch_len) = count("batch").unwrap();
    let (passes, passes_len) = count("passes").unwrap();
    let concurrent = count("concurrent").unwrap().0;
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "strace fsync+fdatasync: no store {no_store}; open a new store {open}; \
         + 1000 non-durable fires {non_durable}; + 20 registrations {sequential}; \
         + a batch of 100 {batch}; + 10 passes of 100 at-most-once fires {passes}; \
         + 200 registrations on 8 threads {concurrent} ({:.1} per commit)",
        200.0 / (concurrent - open) as f64
    );
    assert_eq!(no_store, 0, "a scheduler without a store never syncs");
    assert_eq!(non_durable, open, "non-durable fires on a store never sync");
    assert_eq!(sequential - open, 20, "one per registration");
    // One commit, and one more sync if it grew the file (redb makes a new
    // length durable before a header names it).
    assert!(
        (1..=2).contains(&(batch - open)),
        "a batch: {}",
        batch - open
    );
    // One per pass, and at most one more per growth of the file.
    let grown = passes_len - batch_len;
    println!(
        "10 passes: {} syncs, {grown} length changes",
        passes - batch
    );
    assert!(
        (10..=10 + grown).contains(&(passes - batch)),
        "one per pass: {} syncs, {grown} length changes",
        passes - batch
    );
    assert!(
        (concurrent - open) * 4 <= 200 * 3,
        "group commit: {} commits for 200 registrations",
        concurrent - open
    );
}
