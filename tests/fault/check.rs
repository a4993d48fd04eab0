//! The model of what a durable-task log acknowledged, shared by the kill
//! loop and the crash-point test: it reads a run's log lines (`R` run, `I`
//! intent, `A` acknowledged, `S`/`E` callback start/end, `P`/`Q` a written
//! pass, `Q` a run's first, recovering pass, `X` a finished run) and checks
//! a store's records against them (see `tests/durable_kill.rs` for what
//! is checked).

use cronlane::store::{RedbStore, Store, TaskRecord};
use cronlane::{Delivery, Schedule};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

pub(crate) const S: i64 = 1_000_000_000;

pub(crate) fn t0() -> chrono::DateTime<chrono::Utc> {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

pub(crate) fn t0_ns() -> i64 {
    t0().timestamp_nanos_opt().unwrap()
}

pub(crate) fn at(ns: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_nanos(ns)
}

/// What a schedule is, as the log and the store name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sched {
    Every(i64),
    Once(i64),
}

impl Sched {
    pub(crate) fn text(self) -> String {
        match self {
            Sched::Every(p) => format!("every {p} from {}", t0_ns()),
            Sched::Once(at) => format!("once {at}"),
        }
    }

    pub(crate) fn schedule(self) -> Schedule {
        match self {
            Sched::Every(p) => Schedule::every(Duration::from_nanos(p as u64)).starting_at(t0()),
            Sched::Once(ns) => Schedule::once(at(ns)),
        }
    }

    pub(crate) fn log(self) -> String {
        match self {
            Sched::Every(p) => format!("every {p}"),
            Sched::Once(at) => format!("once {at}"),
        }
    }

    pub(crate) fn parse(kind: &str, v: &str) -> Sched {
        let v = v.parse().unwrap();
        match kind {
            "every" => Sched::Every(v),
            "once" => Sched::Once(v),
            k => panic!("bad schedule kind {k}"),
        }
    }
}

pub(crate) fn delivery_of(name: &str) -> Delivery {
    if name.starts_with('m') {
        Delivery::AtMostOnce
    } else {
        Delivery::AtLeastOnce
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub(crate) sched: Sched,
    pub(crate) paused: bool,
}

/// A fire's history.
#[derive(Debug, Default, Clone)]
pub(crate) struct Fire {
    pub(crate) starts: u32,
    /// Its completion is acknowledged (at least once).
    pub(crate) acked: bool,
    /// Started and did not end, not run again since.
    pub(crate) interrupted: bool,
    /// Ended (at least once) in a pass whose progress write failed at a
    /// crash: that write may be on disk all the same (a commit whose later
    /// I/O failed after its sync). The store read next settles it: a
    /// cursor at or past it means the completion landed, before it means
    /// the fire is interrupted (and must run again at recovery).
    pub(crate) unsure: bool,
}

#[derive(Default, Clone)]
pub(crate) struct Model {
    pub(crate) tasks: BTreeMap<String, Task>,
    pub(crate) fires: HashMap<(String, i64), Fire>,
    /// The cursor of each task as read after the last kill.
    pub(crate) cursors: HashMap<String, i64>,
    /// This run's fires that ended and are not yet written (`E` before `P`).
    pub(crate) ended: Vec<(String, i64)>,
    /// This run's starts before its first `Q`.
    pub(crate) recovered: HashSet<(String, i64)>,
    /// The line about to be acknowledged (`I`), if any.
    pub(crate) in_flight: Option<Vec<String>>,
    /// The clock of the pass in flight.
    pub(crate) pass_at: Option<i64>,
    pub(crate) run_done: bool,
    pub(crate) checks: u64,
    /// Every log line read, and after each check the stored records
    /// (`C name cursor paused schedule`): a failure prints a task's story.
    pub(crate) trail: Vec<String>,
}

impl Model {
    /// The lines of the trail about `name` (and every run's start).
    pub(crate) fn story(&self, name: &str) -> String {
        self.trail
            .iter()
            .filter(|l| l.starts_with('R') || l.split(' ').any(|w| w == name))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

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
                self.release(words[1]);
            }
            "pause" => {
                self.tasks.get_mut(words[1]).unwrap().paused = true;
                self.release(words[1]);
            }
            "resume" => self.tasks.get_mut(words[1]).unwrap().paused = false,
            "resched" => {
                self.tasks.get_mut(words[1]).unwrap().sched = Sched::parse(words[2], words[3]);
                self.release(words[1]);
            }
            w => panic!("bad op {w}"),
        }
    }

    /// A removal, pause or reschedule of `name` (landed, or in flight at a
    /// kill) releases its interrupted fires: their fate is open. The task
    /// is gone, does not run while paused (and a resume is effective from
    /// then on), or its new plan may not have the instant (and is
    /// effective from the clock of the call). Only a run whose clock went
    /// back to before an interrupted instant gets to an operation before
    /// the recovery pass that runs it again.
    fn release(&mut self, name: &str) {
        for ((n, _), f) in self.fires.iter_mut() {
            if n == name {
                f.interrupted = false;
            }
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
    pub(crate) fn read_run(&mut self, lines: &[&str]) {
        self.run_done = false;
        self.ended.clear();
        self.recovered.clear();
        self.in_flight = None;
        self.pass_at = None;
        let mut first_pass_done = false;
        for line in lines {
            self.trail.push((*line).to_owned());
            let w: Vec<&str> = line.split(' ').collect();
            match w[0] {
                "R" => {}
                "S" => self.start(w[1], w[2].parse().unwrap(), line),
                "E" => {
                    let key = (w[1].to_owned(), w[2].parse().unwrap());
                    self.fires.get_mut(&key).unwrap().interrupted = false;
                    self.ended.push(key);
                }
                "U" => {
                    let key = (w[1].to_owned(), w[2].parse().unwrap());
                    let f = self.fires.get_mut(&key).unwrap();
                    f.interrupted = false;
                    f.unsure = true;
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
                                panic!(
                                    "at least once: interrupted {name}@{t} did not run again at recovery \
                                     (pass at {now}); its story:\n{}",
                                    self.story(name)
                                );
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
    /// settles what was in flight by what the store shows. `strict`: the
    /// records are what survived a power loss at the failed I/O of the
    /// call in flight, so none of that call is there (a kill, or a torn
    /// write, leaves it open).
    pub(crate) fn check_store(&mut self, stored: &[TaskRecord], strict: bool) {
        let stored: BTreeMap<&str, &TaskRecord> =
            stored.iter().map(|r| (r.name.as_str(), r)).collect();
        for r in stored.values() {
            self.trail.push(format!(
                "C {} {} {} {}",
                r.name, r.cursor, r.paused, r.schedule
            ));
        }
        // Names whose state the kill left open.
        let mut open: HashSet<String> = HashSet::new();
        if strict {
            self.in_flight = None;
            self.pass_at = None;
        }
        if let Some(op) = self.in_flight.clone() {
            let names = Model::names(&op);
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
            if matches!(op[0].as_str(), "rm" | "pause" | "resched") {
                for name in &names {
                    self.release(name);
                }
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
        // Fires whose completion may or may not have landed: the store says.
        for ((name, t), f) in self.fires.iter_mut().filter(|(_, f)| f.unsure) {
            f.unsure = false;
            match stored.get(name.as_str()) {
                Some(rec) if rec.cursor >= *t => f.acked = true,
                Some(_) => f.interrupted = true,
                None => {}
            }
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

pub(crate) fn records(path: &Path) -> Vec<TaskRecord> {
    let store = RedbStore::open(path).unwrap();
    assert!(store.unreadable().is_empty(), "{:?}", store.unreadable());
    store.loaded()
}
