//! The `kill -9` loop: this test binary runs itself as a child process
//! (`kill_child`, selected by `CRONLANE_KILL_DIR`) that opens a store on a
//! manual clock, recovers, registers / batch-registers / removes / pauses /
//! resumes / reschedules durable tasks of both delivery policies and fires
//! them, appending to an fsync'ed log every operation it is about to make
//! (`I`), every one acknowledged (`A`, after the call returned `Ok`), every
//! callback start and end (`S`/`E`, task and scheduled instant) and every
//! pass whose progress is written (`P`, `Q` for a run's first pass). The
//! parent SIGKILLs it at random points, reopens the store after each kill
//! and checks it against the log; at the end it recovers once more itself.
//!
//! Checked after every kill (tasks are never re-registered under a name
//! once removed, so a name is one task):
//! * the stored tasks are exactly those acknowledged (registered and not
//!   removed, a one-shot not acknowledged as fired), with the acknowledged
//!   paused flag and schedule; an operation in flight at the kill may or
//!   may not be there, a batch all or nothing;
//! * at most once: no (task, instant) starts twice across all runs, and a
//!   task's stored cursor is at or after every instant that started (the
//!   claim was durable before the callback);
//! * at least once: no instant whose completion was acknowledged starts
//!   again; an instant that started and was interrupted (no `E`) is not
//!   lost: the stored cursor stays before it, and the next run's recovery
//!   pass runs it again (every task uses `Misfire::CatchUp`, with a cap
//!   no restart reaches, so the misfire policy accounts for no instant;
//!   and one task runs one instant at a time, each written before the
//!   next starts, so an interrupted instant is the first after its stored
//!   cursor). Unless the recovery's clock is before the instant (a run
//!   whose clock went back): then a later pass runs it, or that run
//!   removes, pauses or reschedules the task first, which releases it
//!   (its fate is open: the task is gone, a paused one does not run and
//!   its resume is effective from then, a new plan may not have the
//!   instant);
//! * no instant at or before the cursor read after the previous kill
//!   starts (every fifth run starts with the clock set back to before the
//!   previous run's start, as if it went backwards while down).
//!
//! `CRONLANE_KILL_LOOPS=N` for more than the default 200 kills;
//! `CRONLANE_SEED` to vary the seed.
#![cfg(feature = "redb")]

use cronlane::store::RedbStore;
use cronlane::{ManualClock, Misfire, Scheduler};
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod fault;
use fault::check::{at, delivery_of, records, t0_ns, Model, Sched, S};
use fault::Rng;

const DIR: &str = "CRONLANE_KILL_DIR";
/// Clock time between the starts of two runs; a run advances less.
const GAP: i64 = 120 * S;
const PERIODS: [i64; 3] = [20 * S, 30 * S, 45 * S];
const CATCH_UP: Misfire = Misfire::CatchUp { max: 1000 };

/// The log: one line per `write(2)` on an `O_APPEND` file. Acknowledgements
/// (`A`, `P`, `Q`) and callback starts (`S`) are followed by `fdatasync`;
/// intents and ends are not (a kill keeps the page cache, so the order of
/// the lines is what the parent reads either way; skipping those syncs
/// lets a run get further before its kill, and the sync after `S` is the
/// callback's work, the window in which a kill interrupts it).
struct Log(File);

impl Log {
    fn line(&mut self, line: &str) {
        let mut buf = line.as_bytes().to_vec();
        buf.push(b'\n');
        self.0.write_all(&buf).unwrap();
        if matches!(buf[0], b'A' | b'P' | b'Q' | b'S') {
            self.0.sync_data().unwrap();
        }
    }
}

/// A run's clock at its start: each run starts after the previous one's
/// clock, except every fifth, whose clock went back while it was down
/// (to before the previous run's start).
fn start_of(run: i64) -> i64 {
    let back = if run % 5 == 4 { 3 * GAP / 2 } else { 0 };
    t0_ns() + run * GAP - back
}

// ---- the child ----

#[test]
fn kill_child() {
    let Ok(dir) = std::env::var(DIR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let run: i64 = std::env::var("CRONLANE_KILL_RUN").unwrap().parse().unwrap();
    let mut rng = Rng::new(fault::seed() ^ (run as u64).wrapping_mul(0x1234_5678_9ABC));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log"))
        .unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Log(file)));
    let start = start_of(run);
    let clock = ManualClock::new(at(start));
    log.lock().unwrap().line(&format!("R {run} {start}"));
    let s = Scheduler::builder()
        .clock(clock.clone())
        .test_mode(true)
        .store(RedbStore::open(dir.join("tasks.redb")).unwrap())
        .build();
    let l = log.clone();
    s.handler("h", move |ctx| {
        let (name, t) = (
            ctx.name().unwrap().to_owned(),
            ctx.scheduled().timestamp_nanos_opt().unwrap(),
        );
        l.lock().unwrap().line(&format!("S {name} {t}"));
        l.lock().unwrap().line(&format!("E {name} {t}"));
    })
    .unwrap();
    let pass = |first: bool| {
        let now = clock.now().timestamp_nanos_opt().unwrap();
        log.lock().unwrap().line(&format!("I pass {now}"));
        s.run_pending();
        s.flush_store().unwrap();
        log.lock().unwrap().line(if first { "Q" } else { "P" });
    };
    // Recovery: the first pass runs what was missed (and interrupted).
    pass(true);
    let mut k = 0;
    let mut new_name = |rng: &mut Rng| {
        k += 1;
        let d = if rng.one_in(2) { 'm' } else { 'l' };
        format!("{d}{run}.{k}")
    };
    let new_sched = |rng: &mut Rng, now: i64| {
        if rng.one_in(4) {
            Sched::Once(now + (1 + rng.below(60) as i64) * S)
        } else {
            Sched::Every(PERIODS[rng.below(3) as usize])
        }
    };
    let mut advanced = 0;
    for _ in 0..15 {
        let now = clock.now().timestamp_nanos_opt().unwrap();
        let tasks = s.durable_tasks();
        let pick = |rng: &mut Rng, paused: Option<bool>| {
            let c: Vec<_> = tasks
                .iter()
                .filter(|t| paused.is_none_or(|p| t.paused == p))
                .collect();
            (!c.is_empty()).then(|| c[rng.below(c.len() as u64) as usize].name.clone())
        };
        let op = |line: String, f: &mut dyn FnMut()| {
            log.lock().unwrap().line(&format!("I {line}"));
            f();
            log.lock().unwrap().line(&format!("A {line}"));
        };
        match rng.below(20) {
            0..=7 => {
                if advanced < GAP - 30 * S {
                    let by = (1 + rng.below(20) as i64) * S;
                    advanced += by;
                    clock.advance(Duration::from_nanos(by as u64));
                }
                pass(false);
            }
            8..=10 if tasks.len() < 12 => {
                let (name, sched) = (new_name(&mut rng), new_sched(&mut rng, now));
                op(format!("reg {name} {}", sched.log()), &mut || {
                    s.add(sched.schedule())
                        .name(name.as_str())
                        .misfire(CATCH_UP)
                        .delivery(delivery_of(&name))
                        .durable("h")
                        .register()
                        .unwrap();
                });
            }
            11 if tasks.len() < 12 => {
                let batch: Vec<(String, Sched)> = (0..2 + rng.below(2))
                    .map(|_| (new_name(&mut rng), new_sched(&mut rng, now)))
                    .collect();
                let line: Vec<String> = batch
                    .iter()
                    .map(|(n, sc)| format!("{n} {}", sc.log()))
                    .collect();
                op(format!("batch {}", line.join(" ")), &mut || {
                    s.register_all(batch.iter().map(|(name, sched)| {
                        s.add(sched.schedule())
                            .name(name.as_str())
                            .misfire(CATCH_UP)
                            .delivery(delivery_of(name))
                            .durable("h")
                    }))
                    .unwrap();
                });
            }
            8..=13 => {
                if let Some(name) = pick(&mut rng, None) {
                    op(format!("rm {name}"), &mut || {
                        s.remove(name.as_str()).unwrap()
                    });
                }
            }
            14 | 15 => {
                if let Some(name) = pick(&mut rng, Some(false)) {
                    op(format!("pause {name}"), &mut || {
                        s.pause(name.as_str()).unwrap()
                    });
                }
            }
            16 | 17 => {
                if let Some(name) = pick(&mut rng, Some(true)) {
                    op(format!("resume {name}"), &mut || {
                        s.resume(name.as_str()).unwrap()
                    });
                }
            }
            _ => {
                let every = tasks.iter().filter(|t| t.schedule.starts_with("every"));
                let names: Vec<String> = every.map(|t| t.name.clone()).collect();
                if !names.is_empty() {
                    let name = names[rng.below(names.len() as u64) as usize].clone();
                    let sched = Sched::Every(PERIODS[rng.below(3) as usize]);
                    op(format!("resched {name} {}", sched.log()), &mut || {
                        s.reschedule(name.as_str(), sched.schedule()).unwrap()
                    });
                }
            }
        }
    }
    log.lock().unwrap().line("X");
}

// ---- the parent ----

#[test]
fn kill_nine_loop() {
    if std::env::var(DIR).is_ok() {
        return;
    }
    let kills = fault::env_count("CRONLANE_KILL_LOOPS", 200);
    let seed = fault::seed();
    let mut rng = Rng::new(seed);
    let dir = std::env::temp_dir().join(format!("cronlane-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    let began = Instant::now();
    let mut model = Model::default();
    let (mut killed, mut finished, mut read) = (0u64, 0u64, 0usize);
    // Kill anywhere in a run: the delay is uniform up to a little more
    // than a whole run takes (learned from the runs that finish), so most
    // runs are killed, at every point of them, and some finish.
    let mut run_us = 50_000f64;
    let mut run = 0i64;
    let mut check_time = Duration::ZERO;
    while killed < kills {
        let mut child = Command::new(&exe)
            .args(["--exact", "kill_child", "--nocapture", "--test-threads=1"])
            .env(DIR, &dir)
            .env("CRONLANE_KILL_RUN", run.to_string())
            .env("CRONLANE_SEED", seed.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let spawned = Instant::now();
        let delay = Duration::from_micros(rng.below((run_us * 1.1) as u64 + 1));
        let deadline = spawned + delay;
        // A kill at a random point of the child's run is the point here.
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        match status {
            Some(status) => {
                let mut err = String::new();
                use std::io::Read;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                assert!(status.success(), "child run {run} failed: {status}\n{err}");
                finished += 1;
                let took = spawned.elapsed().as_micros() as f64;
                run_us = (0.8 * run_us + 0.2 * took).min(120_000.0);
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                // Killed: runs may take longer than learned (a loaded
                // machine); reach a little further next time, within a
                // bound that keeps 200 kills well under a minute.
                run_us = (run_us * 1.03).min(120_000.0);
                killed += 1;
            }
        }
        // This run's lines (complete ones only).
        let text = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        let lines: Vec<&str> = text[read..complete].lines().collect();
        read = complete;
        model.read_run(&lines);
        let path = dir.join("tasks.redb");
        let checking = Instant::now();
        if path.exists() {
            model.check_store(&records(&path), false);
        }
        check_time += checking.elapsed();
        run += 1;
    }
    // A last recovery, here: every interrupted at-least-once fire runs.
    let clock = ManualClock::new(at(t0_ns() + run * GAP));
    let started = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let s = Scheduler::builder()
            .clock(clock.clone())
            .test_mode(true)
            .store(RedbStore::open(dir.join("tasks.redb")).unwrap())
            .build();
        let st = started.clone();
        s.handler("h", move |ctx| {
            st.lock().unwrap().push((
                ctx.name().unwrap().to_owned(),
                ctx.scheduled().timestamp_nanos_opt().unwrap(),
            ));
        })
        .unwrap();
        let listed: Vec<String> = s.durable_tasks().into_iter().map(|t| t.name).collect();
        let expected: Vec<String> = model.tasks.keys().cloned().collect();
        assert_eq!(
            listed, expected,
            "the last recovery lists the acknowledged tasks"
        );
        assert!(s.durable_tasks().iter().all(|t| t.id.is_some()));
        s.run_pending();
        s.flush_store().unwrap();
    }
    let now = t0_ns() + run * GAP;
    let mut lines = vec![format!("R {run} {now}"), format!("I pass {now}")];
    for (name, t) in started.lock().unwrap().iter() {
        lines.push(format!("S {name} {t}"));
        lines.push(format!("E {name} {t}"));
    }
    lines.push("Q".into());
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    model.read_run(&refs);
    model.check_store(&records(&dir.join("tasks.redb")), false);
    let fires = model.fires.len();
    let reruns = model.fires.values().filter(|f| f.starts > 1).count();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "kill -9 loop (seed {seed}): {killed} kills, {finished} runs finished, \
         {fires} distinct fires, {reruns} at-least-once fires run again after a kill, \
         {} checks ({check_time:.1?} reopening and checking), {} tasks at the end, {:.1?}",
        model.checks,
        model.tasks.len(),
        began.elapsed()
    );
    assert!(killed >= kills);
    assert!(
        fires > 0 && reruns > 0,
        "the loop exercised interrupted fires"
    );
}
