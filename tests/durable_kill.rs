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
//!   no restart reaches, so the misfire policy accounts for no instant);
//! * no instant at or before the cursor read after the previous kill
//!   starts.
//!
//! `CRONLANE_KILL_LOOPS=N` for more than the default 200 kills;
//! `CRONLANE_SEED` to vary the seed.
#![cfg(feature = "redb")]

use cronlane::store::{RedbStore, Store, TaskRecord};
use cronlane::{Delivery, ManualClock, Misfire, Schedule, Scheduler};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
mod fault;
use common::t0;
use fault::Rng;

const DIR: &str = "CRONLANE_KILL_DIR";
/// Clock time between the starts of two runs; a run advances less.
const GAP: i64 = 120 * S;
const S: i64 = 1_000_000_000;
const PERIODS: [i64; 3] = [20 * S, 30 * S, 45 * S];
const CATCH_UP: Misfire = Misfire::CatchUp { max: 1000 };

fn t0_ns() -> i64 {
    t0().timestamp_nanos_opt().unwrap()
}

fn at(ns: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_nanos(ns)
}

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

/// What a schedule is, as the log and the store name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sched {
    Every(i64),
    Once(i64),
}

impl Sched {
    fn text(self) -> String {
        match self {
            Sched::Every(p) => format!("every {p} from {}", t0_ns()),
            Sched::Once(at) => format!("once {at}"),
        }
    }

    fn schedule(self) -> Schedule {
        match self {
            Sched::Every(p) => Schedule::every(Duration::from_nanos(p as u64)).starting_at(t0()),
            Sched::Once(ns) => Schedule::once(at(ns)),
        }
    }

    fn log(self) -> String {
        match self {
            Sched::Every(p) => format!("every {p}"),
            Sched::Once(at) => format!("once {at}"),
        }
    }

    fn parse(kind: &str, v: &str) -> Sched {
        let v = v.parse().unwrap();
        match kind {
            "every" => Sched::Every(v),
            "once" => Sched::Once(v),
            k => panic!("bad schedule kind {k}"),
        }
    }
}

fn delivery_of(name: &str) -> Delivery {
    if name.starts_with('m') {
        Delivery::AtMostOnce
    } else {
        Delivery::AtLeastOnce
    }
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
    let start = t0_ns() + run * GAP;
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

// ---- the parent: the model the log implies, and the checks ----

#[derive(Debug, Clone)]
struct Task {
    sched: Sched,
    paused: bool,
}

/// A fire's history.
#[derive(Debug, Default)]
struct Fire {
    starts: u32,
    /// Its completion is acknowledged (at least once).
    acked: bool,
    /// Started and did not end, not run again since.
    interrupted: bool,
}

#[derive(Default)]
struct Model {
    tasks: BTreeMap<String, Task>,
    fires: HashMap<(String, i64), Fire>,
    /// The cursor of each task as read after the last kill.
    cursors: HashMap<String, i64>,
    /// This run's fires that ended and are not yet written (`E` before `P`).
    ended: Vec<(String, i64)>,
    /// This run's starts before its first `Q`.
    recovered: HashSet<(String, i64)>,
    /// The line about to be acknowledged (`I`), if any.
    in_flight: Option<Vec<String>>,
    /// The clock of the pass in flight.
    pass_at: Option<i64>,
    run_done: bool,
    checks: u64,
}

impl Model {
    fn start(&mut self, name: &str, t: i64, run_line: &str) {
        if let Some(&c) = self.cursors.get(name) {
            assert!(
                t > c,
                "{name}@{t} started at or before its stored cursor {c} ({run_line})"
            );
        }
        let fire = self.fires.entry((name.to_owned(), t)).or_default();
        match delivery_of(name) {
            Delivery::AtMostOnce => assert_eq!(
                fire.starts, 0,
                "at most once: {name}@{t} started twice ({run_line})"
            ),
            _ => assert!(
                !fire.acked,
                "at least once: {name}@{t} started again after its completion was acknowledged ({run_line})"
            ),
        }
        fire.starts += 1;
        fire.interrupted = true;
        self.recovered.insert((name.to_owned(), t));
        self.checks += 1;
    }

    fn apply(&mut self, words: &[&str]) {
        match words[0] {
            "reg" => {
                self.tasks.insert(
                    words[1].to_owned(),
                    Task {
                        sched: Sched::parse(words[2], words[3]),
                        paused: false,
                    },
                );
            }
            "batch" => {
                for w in words[1..].chunks(3) {
                    self.apply(&["reg", w[0], w[1], w[2]]);
                }
            }
            "rm" => {
                self.tasks.remove(words[1]);
            }
            "pause" => self.tasks.get_mut(words[1]).unwrap().paused = true,
            "resume" => self.tasks.get_mut(words[1]).unwrap().paused = false,
            "resched" => {
                self.tasks.get_mut(words[1]).unwrap().sched = Sched::parse(words[2], words[3])
            }
            w => panic!("bad op {w}"),
        }
    }

    /// The names an operation touches.
    fn names(words: &[String]) -> Vec<String> {
        match words[0].as_str() {
            "batch" => words[1..].chunks(3).map(|w| w[0].clone()).collect(),
            _ => vec![words[1].clone()],
        }
    }

    /// Reads one run's log lines.
    fn read_run(&mut self, lines: &[&str]) {
        self.run_done = false;
        self.ended.clear();
        self.recovered.clear();
        self.in_flight = None;
        self.pass_at = None;
        let mut first_pass_done = false;
        for line in lines {
            let w: Vec<&str> = line.split(' ').collect();
            match w[0] {
                "R" => {}
                "S" => self.start(w[1], w[2].parse().unwrap(), line),
                "E" => {
                    let key = (w[1].to_owned(), w[2].parse().unwrap());
                    self.fires.get_mut(&key).unwrap().interrupted = false;
                    self.ended.push(key);
                }
                "I" if w[1] == "pass" => self.pass_at = Some(w[2].parse().unwrap()),
                "I" => self.in_flight = Some(w[1..].iter().map(|s| s.to_string()).collect()),
                "A" => {
                    assert_eq!(
                        self.in_flight.take().as_deref(),
                        Some(&w[1..].iter().map(|s| s.to_string()).collect::<Vec<_>>()[..])
                    );
                    self.apply(&w[1..]);
                }
                "P" | "Q" => {
                    let now = self.pass_at.take().unwrap();
                    if w[0] == "Q" {
                        // Every interrupted at-least-once fire of an
                        // earlier run ran again in this recovery pass.
                        for ((name, t), f) in &self.fires {
                            if f.interrupted
                                && delivery_of(name) == Delivery::AtLeastOnce
                                && *t <= now
                                && !self.recovered.contains(&(name.clone(), *t))
                            {
                                panic!("at least once: interrupted {name}@{t} did not run again at recovery");
                            }
                        }
                        first_pass_done = true;
                    }
                    for key in self.ended.drain(..) {
                        if delivery_of(&key.0) == Delivery::AtLeastOnce {
                            self.fires.get_mut(&key).unwrap().acked = true;
                        }
                        // A one-shot that ran is gone once acknowledged.
                        if matches!(self.tasks.get(&key.0), Some(t) if t.sched == Sched::Once(key.1))
                        {
                            self.tasks.remove(&key.0);
                        }
                    }
                }
                "X" => self.run_done = true,
                _ => panic!("bad log line {line:?}"),
            }
            if w[0] == "S" && delivery_of(w[1]) == Delivery::AtMostOnce {
                // An at-most-once one-shot is gone once claimed.
                let t: i64 = w[2].parse().unwrap();
                if matches!(self.tasks.get(w[1]), Some(task) if task.sched == Sched::Once(t)) {
                    self.tasks.remove(w[1]);
                }
            }
        }
        let _ = first_pass_done;
    }

    /// Checks the stored records against the model after a kill, then
    /// settles what was in flight by what the store shows.
    fn check_store(&mut self, stored: &[TaskRecord]) {
        let stored: BTreeMap<&str, &TaskRecord> =
            stored.iter().map(|r| (r.name.as_str(), r)).collect();
        // Names whose state the kill left open.
        let mut open: HashSet<String> = HashSet::new();
        if let Some(op) = &self.in_flight {
            let names = Model::names(op);
            let there: Vec<bool> = names
                .iter()
                .map(|n| stored.contains_key(n.as_str()))
                .collect();
            if op[0] == "batch" {
                assert!(
                    there.iter().all(|&b| b) || there.iter().all(|&b| !b),
                    "a batch in flight is all or nothing: {op:?} {there:?}"
                );
            }
            open.extend(names);
        }
        if let Some(now) = self.pass_at {
            // A pass in flight: at-most-once one-shots due may be claimed
            // (deleted) without a start logged; one-shots that ended and
            // were not acknowledged may be gone.
            for (name, t) in &self.tasks {
                if let Sched::Once(at) = t.sched {
                    let amo = delivery_of(name) == Delivery::AtMostOnce;
                    if (amo && at <= now && !t.paused) || self.ended.contains(&(name.clone(), at)) {
                        open.insert(name.clone());
                    }
                }
            }
        }
        for (name, task) in &self.tasks {
            if open.contains(name) {
                continue;
            }
            let rec = stored
                .get(name.as_str())
                .unwrap_or_else(|| panic!("acknowledged task {name} is not in the store"));
            assert_eq!(rec.paused, task.paused, "{name}: paused");
            assert_eq!(rec.schedule, task.sched.text(), "{name}: schedule");
            assert_eq!(rec.delivery, delivery_of(name), "{name}: delivery");
        }
        for name in stored.keys() {
            assert!(
                self.tasks.contains_key(*name) || open.contains(*name),
                "{name} is in the store but was removed (or never acknowledged)"
            );
        }
        // Cursors against the fires.
        for ((name, t), f) in &self.fires {
            let Some(rec) = stored.get(name.as_str()) else {
                continue;
            };
            let c = rec.cursor;
            match delivery_of(name) {
                Delivery::AtMostOnce => assert!(
                    c >= *t,
                    "at most once: {name}@{t} started but the stored cursor is {c}"
                ),
                _ if f.acked => assert!(
                    c >= *t,
                    "at least once: {name}@{t} acknowledged but the stored cursor is {c}"
                ),
                _ if f.interrupted => assert!(
                    c < *t,
                    "at least once: {name}@{t} was interrupted but the stored cursor {c} is past it"
                ),
                _ => {}
            }
            self.checks += 1;
        }
        // Settle what was open by what the store holds.
        for name in open {
            match stored.get(name.as_str()) {
                Some(rec) => {
                    let sched = match rec.schedule.split(' ').collect::<Vec<_>>()[..] {
                        ["every", p, "from", _] => Sched::Every(p.parse().unwrap()),
                        ["once", at] => Sched::Once(at.parse().unwrap()),
                        _ => panic!("{name}: schedule {}", rec.schedule),
                    };
                    self.tasks.insert(
                        name,
                        Task {
                            sched,
                            paused: rec.paused,
                        },
                    );
                }
                None => {
                    self.tasks.remove(&name);
                }
            }
        }
        self.cursors = stored
            .iter()
            .map(|(n, r)| ((*n).to_owned(), r.cursor))
            .collect();
        // Fires that ended but were never acknowledged: their fate is open
        // (they may run again, or not).
        for key in self.ended.drain(..) {
            if let Some(f) = self.fires.get_mut(&key) {
                f.interrupted = false;
            }
        }
        self.checks += 1;
    }
}

fn records(path: &Path) -> Vec<TaskRecord> {
    let store = RedbStore::open(path).unwrap();
    assert!(store.unreadable().is_empty(), "{:?}", store.unreadable());
    store.loaded()
}

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
    // A run takes some tens of ms; kill anywhere in it (and sometimes
    // let it finish).
    let mut limit_ms = 80u64;
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
        let delay = Duration::from_micros(rng.below(limit_ms * 1000));
        let deadline = Instant::now() + delay;
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
                // Finished before the kill: kill later next time.
                limit_ms = (limit_ms + 5).min(300);
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
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
            model.check_store(&records(&path));
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
    model.check_store(&records(&dir.join("tasks.redb")));
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
