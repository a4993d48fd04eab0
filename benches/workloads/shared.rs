//! The real workloads of issue 18, as plain functions that return the timed
//! part of one measurement and check exactly-once themselves: cronlane's
//! cases and the `Mutex<BinaryHeap>` baseline. Shared by
//! `benches/workloads.rs` (cronlane and the heap) and
//! `peer-benches/benches/workloads.rs` (the same cases next to the peers,
//! in one binary, so their ratios come from one run).
//!
//! The callback is the same everywhere: one shared atomic add and one
//! per-task byte ([`Counters::hit`]); after each measurement the per-task
//! bytes and the shared count are compared with what should have fired
//! ([`Counters::check`]), so a task fired twice or never fails the bench.

#![allow(dead_code, unreachable_pub)] // shared by two bench binaries, each using part of it

use chrono::{DateTime, Utc};
use cronlane::{Dispatcher, ManualClock, Schedule, Scheduler, TaskId};
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashSet};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// Seconds of the recurring interval.
pub const PERIOD_S: u64 = 2;
/// The cron of the recurring cron case: every 2 seconds (leading seconds).
pub const CRON_EVERY_2S: &str = "*/2 * * * * *";
/// The cron of the registration cases (issue 18's `0 */5 * * * *`).
pub const CRON_REG: &str = "0 */5 * * * *";

pub fn t0() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().expect("valid instant")
}

pub fn far_future() -> DateTime<Utc> {
    "2200-01-01T00:00:00Z".parse().expect("valid instant")
}

pub fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().expect("in range")
}

/// What every callback touches: one shared count and one byte of its own.
pub struct Counters {
    pub total: AtomicU64,
    pub bytes: Box<[AtomicU8]>,
}

impl Counters {
    pub fn new(n: usize) -> Arc<Counters> {
        Arc::new(Counters {
            total: AtomicU64::new(0),
            bytes: (0..n).map(|_| AtomicU8::new(0)).collect(),
        })
    }

    /// The callback's work.
    #[inline]
    pub fn hit(&self, i: usize) {
        self.total.fetch_add(1, Ordering::Relaxed);
        self.bytes[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Every task fired exactly `passes` times (bytes wrap at 256).
    pub fn check(&self, passes: u64) {
        let n = self.bytes.len() as u64;
        assert_eq!(
            self.total.load(Ordering::Relaxed),
            n * passes,
            "total fires"
        );
        let want = passes as u8;
        for (i, b) in self.bytes.iter().enumerate() {
            assert_eq!(b.load(Ordering::Relaxed), want, "task {i} fires");
        }
    }
}

pub fn scheduler() -> (Scheduler, ManualClock) {
    let clock = ManualClock::new(t0());
    let s = Scheduler::builder()
        .clock(clock.clone())
        .dispatcher(Dispatcher::default())
        .build();
    (s, clock)
}

/// Runs `work(thread)` on `threads` threads and returns the time from the
/// start barrier to the end barrier.
pub fn on_threads(threads: usize, work: &(dyn Fn(usize) + Sync)) -> Duration {
    if threads == 1 {
        let start = Instant::now();
        work(0);
        return start.elapsed();
    }
    let start_line = Barrier::new(threads + 1);
    let finish_line = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (start_line, finish_line) = (&start_line, &finish_line);
            scope.spawn(move || {
                start_line.wait();
                work(t);
                finish_line.wait();
            });
        }
        start_line.wait();
        let start = Instant::now();
        finish_line.wait();
        start.elapsed()
    })
}

/// The split of `0..n` that thread `t` of `threads` works on.
pub fn share(n: usize, threads: usize, t: usize) -> std::ops::Range<usize> {
    let per = n.div_ceil(threads);
    (t * per).min(n)..((t + 1) * per).min(n)
}

pub fn name_of(i: usize) -> String {
    format!("task-{i:07}")
}

// ---------------------------------------------------------------------------
// cronlane
// ---------------------------------------------------------------------------

/// What a recurring case registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recur {
    /// `every(2 s)`, anonymous.
    Every,
    /// `*/2 * * * * *`, anonymous.
    Cron,
    /// `every(2 s)`, each with its own name.
    NamedEvery,
}

impl Recur {
    pub fn label(self) -> &'static str {
        match self {
            Recur::Every => "every",
            Recur::Cron => "cron",
            Recur::NamedEvery => "named_every",
        }
    }
}

/// A scheduler with `n` recurring tasks registered and drained (none due
/// yet), ready for [`lane_steady_pass`].
pub struct LaneSteady {
    pub s: Scheduler,
    pub clock: ManualClock,
    pub counters: Arc<Counters>,
    pub passes: u64,
    pub n: usize,
}

pub fn lane_steady(n: usize, kind: Recur) -> LaneSteady {
    let (s, clock) = scheduler();
    let counters = Counters::new(n);
    let every = Schedule::every(Duration::from_secs(PERIOD_S));
    let cron = Schedule::cron(CRON_EVERY_2S).expect("valid cron");
    for i in 0..n {
        let c = counters.clone();
        let f = move || c.hit(i);
        match kind {
            Recur::Every => s.add(every.clone()).run(f),
            Recur::Cron => s.add(cron.clone()).run(f),
            Recur::NamedEvery => s.add(every.clone()).name(name_of(i)).run(f),
        }
        .expect("registered");
    }
    assert_eq!(s.run_pending().fired, 0);
    LaneSteady {
        s,
        clock,
        counters,
        passes: 0,
        n,
    }
}

/// One period: the clock moves 2 s, and `threads` threads call
/// `run_pending` at once; every task fires once. Returns the timed part.
pub fn lane_steady_pass(st: &mut LaneSteady, threads: usize) -> Duration {
    st.clock.advance(Duration::from_secs(PERIOD_S));
    let fired = AtomicU64::new(0);
    let d = on_threads(threads, &|_| {
        let r = st.s.run_pending();
        fired.fetch_add(r.fired, Ordering::Relaxed);
    });
    assert_eq!(fired.load(Ordering::Relaxed), st.n as u64);
    st.passes += 1;
    d
}

/// N one-shots all due at one instant (`t0 + 1 s`), registered while none is
/// due, then the clock moves past it and one pass fires them all (the drain
/// from intake included). Timed: the pass.
pub fn lane_once_due(n: usize) -> Duration {
    let (s, clock) = scheduler();
    let counters = Counters::new(n);
    let at = Schedule::once(t0() + chrono::Duration::seconds(1));
    for i in 0..n {
        let c = counters.clone();
        s.add(at.clone()).run(move || c.hit(i)).expect("registered");
    }
    clock.advance(Duration::from_secs(1));
    let start = Instant::now();
    let r = s.run_pending();
    let d = start.elapsed();
    assert_eq!(r.fired, n as u64);
    counters.check(1);
    d
}

/// The same N one-shots (one instant) already drained onto the timeline by
/// an earlier pass before they are due. Timed: the pass that fires them.
pub fn lane_once_due_drained(n: usize) -> Duration {
    let (s, clock) = scheduler();
    let counters = Counters::new(n);
    let at = Schedule::once(t0() + chrono::Duration::seconds(1));
    for i in 0..n {
        let c = counters.clone();
        s.add(at.clone()).run(move || c.hit(i)).expect("registered");
    }
    assert_eq!(s.run_pending().fired, 0);
    clock.advance(Duration::from_secs(1));
    let start = Instant::now();
    let r = s.run_pending();
    let d = start.elapsed();
    assert_eq!(r.fired, n as u64);
    counters.check(1);
    d
}

/// What a registration case registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    /// Anonymous one-shot, far future.
    Once,
    /// Anonymous `every(2 s)`.
    Every,
    /// Named `every(2 s)`.
    NamedEvery,
    /// Anonymous cron, pre-parsed schedule cloned.
    Cron,
    /// Anonymous cron, expression parsed per registration.
    CronParse,
}

impl Reg {
    pub fn label(self) -> &'static str {
        match self {
            Reg::Once => "once",
            Reg::Every => "every",
            Reg::NamedEvery => "named_every",
            Reg::Cron => "cron",
            Reg::CronParse => "cron_parse",
        }
    }
}

/// Registers N tasks of `kind` on `threads` threads (names made before the
/// timed part). Timed: the registrations.
pub fn lane_register(n: usize, kind: Reg, threads: usize) -> Duration {
    let (s, _clock) = scheduler();
    let counters = Counters::new(n);
    let once = Schedule::once(far_future());
    let every = Schedule::every(Duration::from_secs(PERIOD_S));
    let cron = Schedule::cron(CRON_REG).expect("valid cron");
    let names: Vec<String> = if kind == Reg::NamedEvery {
        (0..n).map(name_of).collect()
    } else {
        Vec::new()
    };
    let d = on_threads(threads, &|t| {
        for i in share(n, threads, t) {
            let c = counters.clone();
            let f = move || c.hit(i);
            let id = match kind {
                Reg::Once => s.add(once.clone()).run(f),
                Reg::Every => s.add(every.clone()).run(f),
                Reg::NamedEvery => s.add(every.clone()).name(names[i].as_str()).run(f),
                Reg::Cron => s.add(cron.clone()).run(f),
                Reg::CronParse => {
                    let schedule = Schedule::cron(black_box(CRON_REG)).expect("valid cron");
                    s.add(schedule).run(f)
                }
            };
            black_box(id.expect("registered"));
        }
    });
    assert_eq!(s.len(), n);
    drop(s);
    d
}

/// Trickle: N one-shots at distinct instants (1 µs apart, all in the next
/// second), each registered and followed by a `run_pending` (nothing due);
/// then the clock moves 1 s and one pass fires them all. Returns (register +
/// tick, fire).
pub fn lane_trickle(n: usize) -> (Duration, Duration) {
    let (s, clock) = scheduler();
    let counters = Counters::new(n);
    let base = t0();
    let start = Instant::now();
    for i in 0..n {
        let c = counters.clone();
        let at = base + chrono::Duration::microseconds(1 + i as i64);
        s.add(Schedule::once(at))
            .run(move || c.hit(i))
            .expect("registered");
        black_box(s.run_pending());
    }
    let reg = start.elapsed();
    clock.advance(Duration::from_secs(1));
    let start = Instant::now();
    let r = s.run_pending();
    let fire = start.elapsed();
    assert_eq!(r.fired, n as u64);
    counters.check(1);
    (reg, fire)
}

/// Bulk: the same N one-shots registered together and drained by one pass.
/// Timed: the pass that fires them.
pub fn lane_bulk_fire(n: usize) -> Duration {
    let (s, clock) = scheduler();
    let counters = Counters::new(n);
    let base = t0();
    for i in 0..n {
        let c = counters.clone();
        let at = base + chrono::Duration::microseconds(1 + i as i64);
        s.add(Schedule::once(at))
            .run(move || c.hit(i))
            .expect("registered");
    }
    assert_eq!(s.run_pending().fired, 0);
    clock.advance(Duration::from_secs(1));
    let start = Instant::now();
    let r = s.run_pending();
    let d = start.elapsed();
    assert_eq!(r.fired, n as u64);
    counters.check(1);
    d
}

/// How a management case finds its task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Id,
    Name,
}

impl By {
    pub fn label(self) -> &'static str {
        match self {
            By::Id => "by_id",
            By::Name => "by_name",
        }
    }
}

/// N recurring `every(2 s)` tasks (named for `By::Name`), drained; remove
/// every one of them. Timed: the removals.
pub fn lane_remove(n: usize, by: By, threads: usize) -> Duration {
    let (s, ids, names) = lane_managed(n, by);
    let d = on_threads(threads, &|t| {
        for i in share(n, threads, t) {
            match by {
                By::Id => s.remove(ids[i]),
                By::Name => s.remove(names[i].as_str()),
            }
            .expect("removed");
        }
    });
    assert!(s.is_empty());
    d
}

/// N recurring tasks as for [`lane_remove`]; look each one up (`next_fire`).
/// Timed: the lookups.
pub fn lane_lookup(n: usize, by: By, threads: usize) -> Duration {
    let (s, ids, names) = lane_managed(n, by);
    let want = t0() + chrono::Duration::seconds(PERIOD_S as i64);
    let d = on_threads(threads, &|t| {
        for i in share(n, threads, t) {
            let next = match by {
                By::Id => s.next_fire(ids[i]),
                By::Name => s.next_fire(names[i].as_str()),
            }
            .expect("found");
            assert_eq!(next, Some(want));
        }
    });
    d
}

fn lane_managed(n: usize, by: By) -> (Scheduler, Vec<TaskId>, Vec<String>) {
    let (s, _clock) = scheduler();
    let every = Schedule::every(Duration::from_secs(PERIOD_S));
    let names: Vec<String> = (0..n).map(name_of).collect();
    let ids = (0..n)
        .map(|i| {
            let b = s.add(every.clone());
            let b = if by == By::Name {
                b.name(names[i].as_str())
            } else {
                b
            };
            b.run(|| {}).expect("registered")
        })
        .collect();
    s.run_pending();
    (s, ids, names)
}

// ---------------------------------------------------------------------------
// The plain baseline: a Mutex<BinaryHeap> scheduler (as in benches/engine.rs).
// ---------------------------------------------------------------------------

pub type HeapJob = Box<dyn Fn() + Send + Sync>;

struct Entry {
    at: i64,
    id: u64,
    /// 0 for a one-shot.
    period: i64,
    job: HeapJob,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.id) == (other.at, other.id)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.at, other.id).cmp(&(self.at, self.id))
    }
}

/// Register = lock + push; run_pending = lock, pop every due entry, unlock,
/// run them, push the recurring ones back (lock + push each); removal is a
/// tombstone set checked at fire time.
#[derive(Default)]
pub struct HeapScheduler {
    heap: Mutex<BinaryHeap<Entry>>,
    next_id: AtomicU64,
    removed: Mutex<HashSet<u64>>,
}

impl HeapScheduler {
    pub fn add(&self, at: i64, period: i64, job: HeapJob) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            at,
            id,
            period,
            job,
        };
        self.heap.lock().expect("heap lock").push(entry);
        id
    }

    pub fn remove(&self, id: u64) {
        self.removed.lock().expect("tombstone lock").insert(id);
    }

    pub fn run_pending(&self, now: i64) -> usize {
        let mut due = Vec::new();
        {
            let mut heap = self.heap.lock().expect("heap lock");
            while heap.peek().is_some_and(|e| e.at <= now) {
                due.extend(heap.pop());
            }
        }
        let mut fired = 0;
        let check_removed = !self.removed.lock().expect("tombstone lock").is_empty();
        for mut e in due {
            if check_removed && self.removed.lock().expect("tombstone lock").remove(&e.id) {
                continue;
            }
            (e.job)();
            fired += 1;
            if e.period > 0 {
                e.at += e.period;
                self.heap.lock().expect("heap lock").push(e);
            }
        }
        fired
    }
}

pub const SEC: i64 = 1_000_000_000;

pub struct HeapSteady {
    pub h: HeapScheduler,
    pub now: i64,
    pub counters: Arc<Counters>,
    pub passes: u64,
    pub n: usize,
}

pub fn heap_steady(n: usize) -> HeapSteady {
    let h = HeapScheduler::default();
    let now = nanos(t0());
    let counters = Counters::new(n);
    for i in 0..n {
        let c = counters.clone();
        h.add(
            now + PERIOD_S as i64 * SEC,
            PERIOD_S as i64 * SEC,
            Box::new(move || c.hit(i)),
        );
    }
    HeapSteady {
        h,
        now,
        counters,
        passes: 0,
        n,
    }
}

pub fn heap_steady_pass(st: &mut HeapSteady, threads: usize) -> Duration {
    st.now += PERIOD_S as i64 * SEC;
    let fired = AtomicU64::new(0);
    let now = st.now;
    let d = on_threads(threads, &|_| {
        fired.fetch_add(st.h.run_pending(now) as u64, Ordering::Relaxed);
    });
    assert_eq!(fired.load(Ordering::Relaxed), st.n as u64);
    st.passes += 1;
    d
}

pub fn heap_once_due(n: usize) -> Duration {
    let h = HeapScheduler::default();
    let counters = Counters::new(n);
    let at = nanos(t0()) + SEC;
    for i in 0..n {
        let c = counters.clone();
        h.add(at, 0, Box::new(move || c.hit(i)));
    }
    let start = Instant::now();
    let fired = h.run_pending(at);
    let d = start.elapsed();
    assert_eq!(fired, n);
    counters.check(1);
    d
}

pub fn heap_register(n: usize, threads: usize) -> Duration {
    let h = HeapScheduler::default();
    let counters = Counters::new(n);
    let at = nanos(far_future());
    let d = on_threads(threads, &|t| {
        for i in share(n, threads, t) {
            let c = counters.clone();
            black_box(h.add(at, PERIOD_S as i64 * SEC, Box::new(move || c.hit(i))));
        }
    });
    drop(h);
    d
}

/// N recurring entries; tombstone every one of them. Timed: the removals.
pub fn heap_remove(n: usize, threads: usize) -> Duration {
    let h = HeapScheduler::default();
    let at = nanos(t0()) + PERIOD_S as i64 * SEC;
    let ids: Vec<u64> = (0..n)
        .map(|_| h.add(at, PERIOD_S as i64 * SEC, Box::new(|| {})))
        .collect();
    on_threads(threads, &|t| {
        for i in share(n, threads, t) {
            h.remove(ids[i]);
        }
    })
}
