//! Intake queue + timeline skiplist and the claim protocol: the only place
//! that touches both.
//!
//! # Ground rules
//!
//! * **Intake** (`Queue`s, lock-free MPSC in practice, MPMC in fact, one per
//!   shard; a registering thread always pushes to its own shard): new tasks
//!   are pushed here by registering threads and nothing else happens on
//!   registration. Any thread that runs `run_pending` (or needs an up-to-date
//!   view, such as a lookup by id) drains it; drainers may run concurrently and
//!   each item is popped by exactly one of them.
//! * **Hand-over**: a drainer holds `handover` above zero from before its first
//!   pop until every task it popped is published (indexed and on the timeline)
//!   or claimed. [`Timeline::settle`] drains and then waits for `handover` to
//!   reach zero, so any task registered before `settle` began is findable by
//!   id afterwards. Drainers never run callbacks while holding it, so the wait
//!   is short and a callback may call `settle` without deadlock.
//! * **Timeline** (`OrderedMap`, a skiplist) is keyed by `(fire_at, seq)`;
//!   `seq` is unique per insert, so no insert ever replaces another entry. The
//!   value carries the task's generation at insert time. An entry whose
//!   generation no longer matches the task is stale and is dropped when met.
//! * **Claiming** takes due entries off the front: the thread whose removal of
//!   an entry succeeds owns it, and then must win the task's claim CAS
//!   ([`Task::claim`]) to own the fire. Entries inserted after a `run_pending`
//!   began (`seq >= limit`) are left for the next call, so a callback that
//!   reschedules itself to "now" cannot keep one call running forever.
//! * **Runs**: a drain that moves at least [`run_min`] plain anonymous
//!   one-shots whose ids fall in one block of [`BLOCK`] ids puts them on the
//!   timeline as one *run*: an immutable array sorted by `(due, id)`
//!   ([`Run`]), entered in `runs` once, under the key of its first task
//!   still pending (a [`View`]: the run and where it starts), instead of one
//!   skiplist entry per task. Claiming takes a view off the front like any
//!   entry (so one thread owns that stretch of the run), claims each due
//!   task with the same CAS (generation 0: a run holds first entries only),
//!   and puts the rest back as a new view under its new first key (storing
//!   the new start in the run first). Runs are found by id through
//!   `run_ids`, keyed by `(block, run number)`: a lookup binary-searches the
//!   few runs of its id's block by the instant its `TaskId` carries. A run
//!   leaves `run_ids` when its last view is used up.
//! * **Groups**: a `run_pending` batch (up to 1,024 fires run inline by one
//!   thread) opens a [`Batch`] on its thread; the next entries of the
//!   recurring tasks it finishes that are due after the pass's clock wait in
//!   it ([`Timeline::insert_after_run`]) and, when it closes, go on the
//!   timeline together as one *group*: a [`Run`] whose entries carry their
//!   own generation and scheduled instant, under the key `(due of its first
//!   entry, group number)` (odd, so a group put back during a pass is left
//!   for the next one, like any re-insert), entered in `groups` by its
//!   number. Fewer than [`run_min`] go in one by one. Each task's slot names
//!   its group entry from the moment it is deferred; a clean-up that finds
//!   the group counts the task dead in it (compaction as for runs); one that
//!   came before the group was published is caught by the group's
//!   [`recheck`](Timeline::recheck) after a fence (the store-buffering pair
//!   of [`Task::removed_after_publish`](crate::engine::task::Task::removed_after_publish)).
//!   Claiming a group is claiming a run with each entry's generation: the
//!   claim CAS is the same, so exactly-once is the same. An entry due by the
//!   pass's clock (a catch-up) and every entry finished off a batch (pool,
//!   executor, `Overlap::Allow`) is inserted at once, as before.
//! * **Compaction**: a task re-planned, paused or removed while in a run
//!   stays in it as a stale entry, but [`Timeline::unlink`] counts it dead in
//!   every run that holds it, and once half of what a run has left is dead,
//!   that thread tries to take the run's view off the timeline (by the key of
//!   its stored start). If it gets it, it owns the rest of the run as a
//!   claimer would, and republishes the tasks still waiting (a new run, or
//!   single entries) *before* it takes the old run out of `run_ids`, so a
//!   lookup by id always finds a live task in one of the two. A remover marks
//!   its task, fences, and then looks for runs; the compactor publishes the
//!   new run, fences, and then looks for removed tasks in it
//!   (`recheck`): one of the two sees the other, so a removal racing a
//!   compaction is not left behind in the new run.
//! * **Excursions**: a claimer that takes run views off the timeline to put
//!   their rest back, and a compactor that takes a view off to rebuild it,
//!   hold an *excursion* from before the view leaves the timeline until
//!   what is left of it is back. `excursions` packs the number held now (low
//!   32 bits) and the number ended so far (high 32 bits) in one word. A
//!   `run_pending` that finds nothing due compares the word with the one it
//!   read before it looked ([`Timeline::quiet_since`]): if an excursion was
//!   under way or ended meanwhile, a due task may have been off the timeline
//!   while it looked, so it waits for the excursions to end (short: nobody
//!   runs a callback while holding one) and looks again. So every task due
//!   when a `run_pending` began is fired by it, or by whoever holds it.
//! * **Earliest hint**: `earliest` is a lower bound on the first fire instant
//!   added since the runner last looked. Inserts lower it with `fetch_min`;
//!   the runner resets it before it looks. An insert that lowers it tells its
//!   caller to wake the runner.

use crate::engine::registry::Registry;
use crate::engine::task::TaskRef;
use crate::sync::{Arc, AtomicI64, AtomicU64, AtomicUsize, Backoff, Ordering};
use crate::sync::{OrderedMap, Queue, Take};

/// A fire owned by the thread that claimed it.
pub(crate) struct Claimed {
    pub(crate) task: TaskRef,
    pub(crate) scheduled: i64,
    pub(crate) gen: u64,
    /// When the fire was due: `scheduled` plus the task's jitter, if any.
    pub(crate) due: i64,
}

#[derive(Clone)]
struct Slot {
    task: TaskRef,
    gen: u64,
    /// The scheduled instant; the key holds the due instant (with jitter).
    scheduled: i64,
}

#[cfg_attr(cronlane_loom, derive(Clone))]
struct Intake {
    task: TaskRef,
    /// The first scheduled instant; the due one (with jitter) is the key
    /// carried by the task's id.
    scheduled: i64,
}

/// Ids per block: a run holds tasks of one block only, so a lookup by id
/// looks at the runs of one block.
const BLOCK: u64 = 1024;

/// The fewest plain one-shots of one id block that a drain puts on the
/// timeline as a run (fewer go in one by one): below this a run's own
/// overhead (its entries in two maps, its header and three arrays)
/// outweighs what it saves.
#[inline]
fn run_min() -> usize {
    #[cfg(cronlane_loom)]
    {
        crate::__loom::RUN_MIN.load(std::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(not(cronlane_loom))]
    {
        32
    }
}

/// Plain one-shots drained together, sorted by `(due, id)`; immutable.
/// For each task its scheduled instant is its due instant (no policies, so
/// no jitter) and its entry's generation is 0.
pub(crate) struct Run {
    /// Key in `run_ids`: the block and a number unique to the run (so a
    /// run that replaces another never replaces its entry: a lookup always
    /// finds one of the two).
    key: (u64, u64),
    /// Where the run's view starts (set by whoever puts a view back, before
    /// it does): what a compaction needs to find the view.
    start: AtomicUsize,
    /// Tasks that left the run early (removed, paused, re-planned), as
    /// reported to [`Timeline::unlink`]; a hint for compaction, not a count
    /// the protocol relies on.
    dead: AtomicUsize,
    /// Each task's due instant.
    ats: Box<[i64]>,
    /// Each task's id number within the block: with `ats`, the sort key,
    /// so a lookup binary-searches two flat arrays. Empty in a group.
    offs: Box<[u16]>,
    tasks: Box<[TaskRef]>,
    /// A *group* (recurring tasks put back together by one pass, see
    /// [`Timeline::insert_after_run`]): its sequence number, the second
    /// half of its view's key and its key in `groups`. `None`: a run of
    /// first entries.
    group: Option<u64>,
    /// A group's entries: each one's generation and scheduled instant
    /// (`ats` holds the due ones). Empty in a run (generation 0,
    /// scheduled = due).
    gens: Box<[u64]>,
    scheds: Box<[i64]>,
}

const _: () = assert!(BLOCK <= 1 << 16, "block offsets are u16");

impl Run {
    /// The task with this id, if the run holds it (passed or not).
    fn find(&self, id: crate::id::TaskId) -> Option<&TaskRef> {
        let key = (id.first_at, offset(id.n));
        let (mut lo, mut hi) = (0, self.ats.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if (self.ats[mid], self.offs[mid]) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        self.tasks.get(lo).filter(|t| t.id == id)
    }

    /// The timeline key of a view of this run starting at `start`: the
    /// first-entry key of the task there.
    fn view_key(&self, start: usize) -> (i64, u64) {
        match self.group {
            Some(seq) => (self.ats[start], group_seq(seq)),
            None => crate::engine::task::initial_slot(self.tasks[start].id),
        }
    }

    /// Entry `i`'s generation and scheduled instant.
    #[inline]
    fn entry(&self, i: usize) -> (u64, i64) {
        match self.group {
            Some(_) => (self.gens[i], self.scheds[i]),
            None => (0, self.ats[i]),
        }
    }
}

/// The sequence part of a group's keys (its view's, and each of its tasks'
/// slot): odd, like every re-insert, so `seq_limit` applies to it.
#[inline]
fn group_seq(seq: u64) -> u64 {
    (seq << 1) | 1
}

/// Recurring tasks finished by this thread's current `run_pending` batch
/// and not yet back on the timeline (see [`Timeline::insert_after_run`]).
struct Deferred {
    /// The timeline they go back on (an address, compared only).
    timeline: usize,
    /// The pass's clock: only entries due after it are deferred.
    now: i64,
    /// The group's sequence number, taken at the first deferral.
    seq: Option<u64>,
    /// `(due, id number, task, generation, scheduled)`.
    items: Vec<(i64, u64, TaskRef, u64, i64)>,
}

#[cfg(not(cronlane_loom))]
std::thread_local! {
    static DEFERRED: std::cell::RefCell<Option<Deferred>> = const { std::cell::RefCell::new(None) };
}
#[cfg(cronlane_loom)]
loom::thread_local! {
    static DEFERRED: std::cell::RefCell<Option<Deferred>> = std::cell::RefCell::new(None);
}

/// A batch of a `run_pending` pass, open on this thread: recurring tasks
/// its fires put back are collected and go on the timeline as one group
/// when it closes ([`Batch::close`], or on drop). Restores the batch it
/// interrupted (a callback's own `run_pending`).
pub(crate) struct Batch<'a> {
    timeline: &'a Timeline,
    outer: Option<Deferred>,
    closed: bool,
}

impl Batch<'_> {
    /// Puts what the batch collected on the timeline; true if that lowered
    /// the earliest hint (the caller wakes the runner).
    pub(crate) fn close(mut self) -> bool {
        self.closed = true;
        self.end()
    }

    fn end(&mut self) -> bool {
        let outer = self.outer.take();
        let mine = DEFERRED.with(|d| std::mem::replace(&mut *d.borrow_mut(), outer));
        match mine {
            Some(d) => self.timeline.publish_group(d),
            None => false,
        }
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if !self.closed {
            // Unwinding (or not closed): nothing may stay off the timeline.
            let _ = self.end();
        }
    }
}

/// An id number's place in its block.
#[inline]
fn offset(n: u64) -> u16 {
    // Lossless: BLOCK <= 2^16 (checked above).
    (n % BLOCK) as u16
}

/// How many tasks ahead of the one being claimed a run walk prefetches.
const PREFETCH_AHEAD: usize = 8;

/// Asks the CPU to bring `task` into cache: a claim walks a run's tasks in
/// order, and each claim's CAS touches a task's own cache line. Measured in
/// an A/B (BENCHMARKS.md, "Prefetch"): dispatch at 100,000 due tasks 14.5,
/// 12.6 -> 15.7, 16.3 M/s, at 1,000,000 9.97, 10.5 -> 11.6, 11.7 M/s. A
/// no-op off x86_64 and under loom.
#[inline]
fn prefetch(task: &TaskRef) {
    #[cfg(all(target_arch = "x86_64", not(cronlane_loom)))]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let line = std::sync::Arc::as_ptr(task).cast::<i8>();
        // SAFETY: `_mm_prefetch` needs the `sse` target feature, which every
        // x86_64 target has (it is part of the architecture's baseline), and
        // nothing else: a prefetch is a hint that performs no architectural
        // load, cannot fault even on an invalid address, and has no effect
        // on the program's semantics. (The address is a live task here
        // anyway: the run holds its `Arc`.)
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line) };
    }
    #[cfg(not(all(target_arch = "x86_64", not(cronlane_loom))))]
    let _ = task;
}

/// The pending part of a run: its tasks from `start` on. On the timeline
/// under the key of `tasks[start]`'s first entry.
#[derive(Clone)]
struct View {
    run: Arc<Run>,
    start: usize,
}

impl View {
    fn key(&self) -> (i64, u64) {
        self.run.view_key(self.start)
    }
}

/// Intake shards. A registering thread always pushes to the same shard,
/// picked round-robin at its first registration, so threads registering at
/// once do not all fight over one queue's tail (and its cache lines). Order
/// is kept per thread, which is all registration ever promised. Under loom:
/// one shard, the protocol is the same.
const SHARDS: usize = if cfg!(cronlane_loom) { 1 } else { 8 };

/// This thread's intake shard.
#[inline]
fn shard() -> usize {
    #[cfg(cronlane_loom)]
    {
        0
    }
    #[cfg(not(cronlane_loom))]
    {
        use crate::sync::plain::{AtomicUsize, Ordering};
        // A std atomic in a static (the shard only spreads threads; it is
        // no part of any protocol). Relaxed: any order of threads will do.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        std::thread_local! {
            static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
        }
        SHARD.with(|s| *s)
    }
}

/// How many tasks a drain may still take from each intake shard.
pub(crate) struct IntakeBudget([usize; SHARDS]);

impl IntakeBudget {
    /// Nothing left to take.
    pub(crate) fn is_spent(&self) -> bool {
        self.0.iter().all(|&n| n == 0)
    }
}

pub(crate) struct Timeline {
    /// One intake queue per shard (see [`shard`]).
    intake: [Queue<Intake>; SHARDS],
    map: OrderedMap<(i64, u64), Slot>,
    /// Runs on the timeline, one view each (see the ground rules).
    runs: OrderedMap<(i64, u64), View>,
    /// Runs not used up yet, for lookups by id.
    run_ids: OrderedMap<(u64, u64), Arc<Run>>,
    /// Groups not used up yet, by sequence number: where a clean-up finds
    /// the group its task's slot names.
    groups: OrderedMap<u64, Arc<Run>>,
    /// Numbers runs (the second half of a `run_ids` key).
    run_seq: AtomicU64,
    seq: AtomicU64,
    handover: AtomicUsize,
    /// Excursions held (low 32 bits) and ended (high 32 bits); see the
    /// ground rules.
    excursions: AtomicU64,
    earliest: AtomicI64,
}

/// One excursion ended and no longer held, in one add.
const EXCURSION_END: u64 = (1 << 32) - 1;
const EXCURSIONS_HELD: u64 = (1 << 32) - 1;

impl Timeline {
    pub(crate) fn new() -> Self {
        Timeline {
            intake: std::array::from_fn(|_| Queue::new()),
            map: OrderedMap::new(),
            runs: OrderedMap::new(),
            run_ids: OrderedMap::new(),
            groups: OrderedMap::new(),
            run_seq: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            handover: AtomicUsize::new(0),
            excursions: AtomicU64::new(0),
            earliest: AtomicI64::new(i64::MAX),
        }
    }

    /// Registration: one queue push. True if the earliest hint was lowered
    /// (the caller wakes the runner).
    #[inline]
    pub(crate) fn push_new(&self, task: TaskRef, scheduled: i64) -> bool {
        let due = task.id.first_at;
        self.intake[shard()].push(Intake { task, scheduled });
        self.lower_hint(due)
    }

    #[inline]
    fn lower_hint(&self, at: i64) -> bool {
        // Release: if the runner's reset (`take_hint`, Acquire) reads our
        // value, it must also see the push or insert made before it, or it
        // could take the hint away, miss the task and park. (On x86 this
        // costs nothing over Relaxed: both are a locked CAS loop.)
        let prev = self.earliest.fetch_min(at, Ordering::Release);
        at < prev
    }

    /// Resets the hint to "nothing new"; returns what it was.
    pub(crate) fn take_hint(&self) -> i64 {
        self.earliest.swap(i64::MAX, Ordering::AcqRel)
    }

    pub(crate) fn hint(&self) -> i64 {
        self.earliest.load(Ordering::Acquire)
    }

    /// Puts the entry `(at, gen)` for `task`, scheduled at `scheduled` (and
    /// due at `at`, which includes jitter), on the timeline. The caller has
    /// just moved the task to `(gen, SCHEDULED)`. True if the hint was lowered.
    pub(crate) fn insert(&self, task: &TaskRef, gen: u64, scheduled: i64, at: i64) -> bool {
        // Odd sequence numbers: re-inserts, counted (see `seq_limit`).
        let seq = (self.seq.fetch_add(1, Ordering::Relaxed) << 1) | 1;
        self.put(task, gen, scheduled, at, seq)
    }

    /// Opens a batch of a `run_pending` pass on this thread (see [`Batch`]):
    /// until it closes, [`insert_after_run`](Self::insert_after_run) collects
    /// recurring tasks due after `now` instead of inserting them one by one.
    pub(crate) fn open_batch(&self, now: i64) -> Batch<'_> {
        let mine = Deferred {
            timeline: self as *const Timeline as usize,
            now,
            seq: None,
            items: Vec::new(),
        };
        let outer = DEFERRED.with(|d| d.borrow_mut().replace(mine));
        Batch {
            timeline: self,
            outer,
            closed: false,
        }
    }

    /// [`insert`](Self::insert) for the next entry of a task whose run just
    /// finished. Inside a batch of this timeline, an entry due after the
    /// pass's clock waits for the batch to close and goes on the timeline
    /// with the batch's other ones as one group: one skiplist entry and
    /// one fence for the lot instead of one insert (a node allocation, a
    /// search, a fence) each. The task's slot names its group entry at
    /// once, so `next_fire` and clean-ups see it meanwhile (a clean-up
    /// that finds no group yet is caught by the group's `recheck`). An
    /// entry due by the pass's clock (a catch-up) goes in at once, as
    /// before. False when deferred (the batch reports the hint).
    pub(crate) fn insert_after_run(
        &self,
        task: &TaskRef,
        gen: u64,
        scheduled: i64,
        at: i64,
    ) -> bool {
        let me = self as *const Timeline as usize;
        let deferred = DEFERRED.with(|d| {
            let mut d = d.borrow_mut();
            match d.as_mut() {
                Some(b) if b.timeline == me && at > b.now => {
                    let seq = *b
                        .seq
                        .get_or_insert_with(|| self.seq.fetch_add(1, Ordering::Relaxed));
                    task.set_slot(at, group_seq(seq), gen);
                    b.items.push((at, task.id.n, task.clone(), gen, scheduled));
                    true
                }
                _ => false,
            }
        });
        if deferred {
            return false;
        }
        self.insert(task, gen, scheduled, at)
    }

    /// Puts a batch's deferred entries on the timeline: fewer than
    /// [`run_min`] one by one, more as one group sorted by `(due, id)`,
    /// entered in `groups` and then on the timeline under the key of its
    /// first entry; then (fence) every task is checked for a removal its
    /// remover may have looked for before the group was there. With
    /// `seq` unset (a compaction's rebuild) a new group number is taken and
    /// each task's slot moved to it. True if the hint was lowered.
    fn publish_group(&self, d: Deferred) -> bool {
        let Deferred { seq, mut items, .. } = d;
        if items.is_empty() {
            return false;
        }
        if items.len() < run_min() {
            let mut lowered = false;
            for (at, _, task, gen, scheduled) in items {
                lowered |= self.insert(&task, gen, scheduled, at);
            }
            return lowered;
        }
        let (seq, moved) = match seq {
            Some(seq) => (seq, false),
            None => (self.seq.fetch_add(1, Ordering::Relaxed), true),
        };
        items.sort_unstable_by_key(|&(at, n, ..)| (at, n));
        let len = items.len();
        let (mut ats, mut gens, mut scheds, mut tasks) = (
            Vec::with_capacity(len),
            Vec::with_capacity(len),
            Vec::with_capacity(len),
            Vec::with_capacity(len),
        );
        for (at, _, task, gen, scheduled) in items {
            if moved {
                task.set_slot(at, group_seq(seq), gen);
            }
            ats.push(at);
            gens.push(gen);
            scheds.push(scheduled);
            tasks.push(task);
        }
        let run = Arc::new(Run {
            key: (u64::MAX, seq),
            start: AtomicUsize::new(0),
            dead: AtomicUsize::new(0),
            ats: ats.into_boxed_slice(),
            offs: Box::new([]),
            tasks: tasks.into_boxed_slice(),
            group: Some(seq),
            gens: gens.into_boxed_slice(),
            scheds: scheds.into_boxed_slice(),
        });
        self.groups.insert(seq, run.clone());
        let view = View {
            run: run.clone(),
            start: 0,
        };
        self.runs.insert(view.key(), view);
        self.lower_hint(run.ats[0]) | self.recheck(&run)
    }

    /// The first entry of a task drained from intake: keyed by the task's
    /// own id, `(first_at, n << 1)`, so that [`probe`](Self::probe) finds it
    /// from the `TaskId` alone.
    fn insert_initial(&self, task: &TaskRef, scheduled: i64) -> bool {
        let (at, seq) = crate::engine::task::initial_slot(task.id);
        self.put(task, 0, scheduled, at, seq)
    }

    fn put(&self, task: &TaskRef, gen: u64, scheduled: i64, at: i64, seq: u64) -> bool {
        task.set_slot(at, seq, gen);
        self.map.insert(
            (at, seq),
            Slot {
                task: task.clone(),
                gen,
                scheduled,
            },
        );
        let mut lowered = false;
        if task.removed_after_publish() {
            lowered = self.unlink(task);
        }
        self.lower_hint(at) | lowered
    }

    /// Removes the task's current entry, if it is still there (clean-up after
    /// remove, pause or reschedule; a missed one is dropped as stale later).
    /// A task that waits in a run cannot be taken out of it: the run is
    /// compacted instead once at least half of what it has left is dead
    /// ([`compact`](Self::compact)), so that removed tasks (and what their
    /// closures hold) do not stay until the clock passes them. True if that
    /// lowered the earliest hint (the caller wakes the runner).
    pub(crate) fn unlink(&self, task: &TaskRef) -> bool {
        let key = task.slot();
        let unlinked = self
            .map
            .remove_if(&key, |slot| crate::sync::Arc::ptr_eq(&slot.task, task));
        if unlinked {
            return false;
        }
        if key.1 & 1 == 1 {
            // A re-insert: a single entry (gone already) or a group's.
            let Some(run) = self.groups.get(&(key.1 >> 1)) else {
                return false;
            };
            let start = run.start.load(Ordering::Acquire);
            let pending = run.tasks.len().saturating_sub(start);
            let dead = run.dead.fetch_add(1, Ordering::Relaxed) + 1;
            return dead * 2 >= pending && self.compact(&run, start);
        }
        if key != crate::engine::task::initial_slot(task.id) {
            return false;
        }
        // Every run that holds it: while a compaction rebuilds a run, the
        // task may be in the old run and the new one (see `recheck`).
        let mut lowered = false;
        let (first, more) = self.runs_of(task.id);
        for run in first.into_iter().chain(more) {
            let start = run.start.load(Ordering::Acquire);
            let pending = run.tasks.len().saturating_sub(start);
            let dead = run.dead.fetch_add(1, Ordering::Relaxed) + 1;
            if dead * 2 >= pending {
                lowered |= self.compact(&run, start);
            }
        }
        lowered
    }

    /// Rebuilds what is left of `run` from `start` with only the tasks still
    /// waiting at their first entry, if this thread can take the run's view
    /// off the timeline (otherwise a claimer is walking it, or the view has
    /// moved on: a later clean-up tries again). Holding the view, this
    /// thread owns the rest of the run as a claimer would; it publishes the
    /// new run (or single entries) before it takes the old run out of the
    /// lookup, so a lookup by id finds every task in one or the other.
    /// True if the hint was lowered.
    fn compact(&self, run: &Arc<Run>, start: usize) -> bool {
        if start >= run.tasks.len() {
            return false;
        }
        self.excursion_begins();
        if !self
            .runs
            .remove_if(&run.view_key(start), |v| Arc::ptr_eq(&v.run, run))
        {
            self.excursion_ends();
            return false;
        }
        let waiting = |i: usize| {
            run.tasks[i].load()
                == crate::engine::task::word(run.entry(i).0, crate::engine::task::SCHEDULED)
        };
        if let Some(seq) = run.group {
            let items = (start..run.tasks.len())
                .filter(|&i| waiting(i))
                .map(|i| {
                    let (gen, scheduled) = run.entry(i);
                    (
                        run.ats[i],
                        run.tasks[i].id.n,
                        run.tasks[i].clone(),
                        gen,
                        scheduled,
                    )
                })
                .collect();
            let rebuilt = Deferred {
                timeline: self as *const Timeline as usize,
                now: i64::MIN,
                seq: None,
                items,
            };
            let lowered = self.publish_group(rebuilt);
            self.excursion_ends();
            self.groups.remove_if(&seq, |r| Arc::ptr_eq(r, run));
            return lowered;
        }
        let live: Vec<(i64, u64, TaskRef)> = (start..run.tasks.len())
            .filter(|&i| waiting(i))
            .map(|i| (run.ats[i], run.tasks[i].id.n, run.tasks[i].clone()))
            .collect();
        #[cfg(cronlane_loom)]
        let order = !crate::__loom::broken(&crate::__loom::BREAK_COMPACT_ORDER);
        #[cfg(not(cronlane_loom))]
        let order = true;
        if !order {
            self.run_ids.remove_if(&run.key, |r| Arc::ptr_eq(r, run));
        }
        let lowered = self.publish_plain(live, true);
        self.excursion_ends();
        self.run_ids.remove_if(&run.key, |r| Arc::ptr_eq(r, run));
        #[cfg(cronlane_loom)]
        if crate::__loom::broken(&crate::__loom::BREAK_COMPACT_HINT) {
            return false;
        }
        lowered
    }

    /// Before a view leaves the timeline to come back (see the ground
    /// rules). `SeqCst`, with [`quiet_since`](Self::quiet_since)'s load: a
    /// `run_pending` that missed the view (its removal came before the
    /// look) reads a word that counts this excursion as held or ended.
    fn excursion_begins(&self) {
        self.excursions.fetch_add(1, Ordering::SeqCst);
    }

    /// After what is left of the view is back on the timeline.
    fn excursion_ends(&self) {
        #[cfg(cronlane_loom)]
        if crate::__loom::broken(&crate::__loom::BREAK_EXCURSION) {
            // Broken twin: ended, but counted as if it never began.
            self.excursions.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        self.excursions.fetch_add(EXCURSION_END, Ordering::SeqCst);
    }

    /// The excursion word, read before looking for due entries.
    pub(crate) fn excursions(&self) -> u64 {
        self.excursions.load(Ordering::SeqCst)
    }

    /// True if no excursion was held or ended since `before` was read
    /// ([`excursions`](Self::excursions)): nothing due was off the timeline
    /// while the caller looked. Otherwise waits until none is held, and the
    /// caller looks again.
    pub(crate) fn quiet_since(&self, before: u64) -> bool {
        let now = self.excursions.load(Ordering::SeqCst);
        if now == before && now & EXCURSIONS_HELD == 0 {
            return true;
        }
        let mut backoff = Backoff::default();
        while self.excursions.load(Ordering::SeqCst) & EXCURSIONS_HELD != 0 {
            backoff.snooze();
        }
        false
    }

    /// The runs not used up yet that hold the task with this id: one (the
    /// first), or more while a compaction rebuilds its run (allocated only
    /// then).
    fn runs_of(&self, id: crate::id::TaskId) -> (Option<Arc<Run>>, Vec<Arc<Run>>) {
        let (mut first, mut more) = (None, Vec::new());
        self.each_run_holding(id, |run, _| {
            match first {
                None => first = Some(run.clone()),
                Some(_) => more.push(run.clone()),
            }
            true
        });
        (first, more)
    }

    /// Calls `f` with each run not used up yet that holds the task with this
    /// id (and the task), in `run_ids` order, until it returns false.
    fn each_run_holding(
        &self,
        id: crate::id::TaskId,
        mut f: impl FnMut(&Arc<Run>, &TaskRef) -> bool,
    ) {
        let block = id.n / BLOCK;
        self.run_ids
            .for_range(&(block, 0), &(block + 1, 0), |_, run| {
                run.find(id).is_none_or(|task| f(run, task))
            });
    }

    /// The count of re-inserts so far: a re-insert entry (odd sequence
    /// number) whose count is at or past it was inserted after this call.
    pub(crate) fn seq_limit(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// The task with this id, if it still waits at its first entry (the one
    /// drained from intake): anonymous one-shots are found this way, with
    /// no id index to keep up to date on every fire.
    pub(crate) fn probe(&self, id: crate::id::TaskId) -> Option<TaskRef> {
        self.map
            .get(&crate::engine::task::initial_slot(id))
            .map(|slot| slot.task)
            .filter(|t| t.id == id)
            .or_else(|| self.find_in_runs(id))
            .filter(|t| !t.is_removed())
    }

    /// The task with this id if a run not used up yet holds it. A task the
    /// run has already passed may be found too: it is claimed (removal then
    /// still wins over a fire that has not started), stale (re-planned, and
    /// the same task the id index holds) or done (removed, filtered out).
    fn find_in_runs(&self, id: crate::id::TaskId) -> Option<TaskRef> {
        let mut found = None;
        self.each_run_holding(id, |_, task| {
            found = Some(task.clone());
            false
        });
        found
    }

    /// Every task with an entry on the timeline that is in neither index
    /// (anonymous one-shots at their first entry), for listings.
    pub(crate) fn for_each_unindexed(&self, mut f: impl FnMut(&TaskRef)) {
        self.map.for_each(|_, slot| {
            let t = &slot.task;
            if t.name().is_none() && !t.in_registry() && !t.is_removed() {
                f(t)
            }
        });
        // Through `run_ids`, not the views: a view being claimed is off the
        // timeline for a moment, a run stays in `run_ids` until used up.
        let waiting = crate::engine::task::word(0, crate::engine::task::SCHEDULED);
        self.run_ids.for_each(|_, run| {
            for t in run.tasks.iter() {
                if t.load() == waiting && !t.in_registry() {
                    f(t)
                }
            }
        });
    }

    /// Moves up to `max` tasks from intake to the index and timeline, taking
    /// from each shard at most what `budget` allows it (and counting them
    /// off). With `due`, tasks already due at `now` are claimed into it
    /// instead of going on the timeline (a due one-shot is then never
    /// indexed at all).
    pub(crate) fn drain(
        &self,
        now: i64,
        registry: &Registry,
        mut due: Option<&mut Vec<Claimed>>,
        budget: &mut IntakeBudget,
        max: usize,
    ) -> usize {
        // SeqCst: pairs with the SeqCst load in `settle`; see the ground rules.
        #[cfg(cronlane_loom)]
        let handover = !crate::__loom::broken(&crate::__loom::BREAK_HANDOVER);
        #[cfg(not(cronlane_loom))]
        let handover = true;
        if handover {
            self.handover.fetch_add(1, Ordering::SeqCst);
        }
        let mut moved = 0;
        let mut shard = 0;
        // Plain one-shots for the timeline: `(due, id number, task)`, put
        // there together at the end (as runs where there are enough).
        let mut plain: Vec<(i64, u64, TaskRef)> = Vec::new();
        while moved < max && shard < SHARDS {
            let left = &mut budget.0[shard];
            if *left == 0 {
                shard += 1;
                continue;
            }
            let Some(Intake { task, scheduled }) = self.intake[shard].pop() else {
                // Taken by a concurrent drainer: nothing more for us here.
                *left = 0;
                continue;
            };
            *left -= 1;
            let at = task.id.first_at;
            moved += 1;
            if let Some(due) = due.as_deref_mut() {
                if at <= now && task.claim(0) {
                    if !task.is_once() {
                        registry.index(&task);
                    }
                    due.push(Claimed {
                        task,
                        scheduled,
                        gen: 0,
                        due: at,
                    });
                    continue;
                }
            }
            if task.is_removed() {
                continue;
            }
            // Recurring tasks come back under new keys: index them by id. A
            // one-shot is found at its first entry (`probe`); whoever
            // re-plans it indexes it first.
            if !task.is_once() {
                registry.index(&task);
            }
            // Still the registration's generation and scheduled? Then the entry
            // is live; otherwise a manager has already re-planned the task.
            debug_assert_eq!(at, task.id.first_at);
            if task.load() == crate::engine::task::word(0, crate::engine::task::SCHEDULED) {
                if scheduled == at && task.is_plain_once() {
                    plain.push((at, task.id.n, task));
                } else {
                    self.insert_initial(&task, scheduled);
                }
            }
        }
        #[cfg(cronlane_loom)]
        let early = handover && crate::__loom::broken(&crate::__loom::BREAK_HANDOVER_EARLY);
        #[cfg(cronlane_loom)]
        if early {
            // Broken twin: out of the hand-over before publishing.
            self.handover.fetch_sub(1, Ordering::SeqCst);
        }
        #[cfg(not(cronlane_loom))]
        let early = false;
        // Registration lowered the hint for each of them already.
        let _ = self.publish_plain(plain, false);
        if handover && !early {
            self.handover.fetch_sub(1, Ordering::SeqCst);
        }
        moved
    }

    /// Puts drained plain one-shots on the timeline: grouped by id block,
    /// a group of at least [`run_min`] as one run, smaller ones entry by
    /// entry. Called by the drainer before it leaves the hand-over, so a
    /// lookup after `settle` finds every task (in `run_ids` or at its
    /// entry). With `recheck` (a compaction's rebuild, whose tasks a
    /// remover may have marked since they were copied, and whose remover may
    /// have looked at the old run), each new run is checked for removed
    /// tasks once it is published, and compacted in turn if enough are.
    /// True if the earliest hint was lowered.
    fn publish_plain(&self, mut plain: Vec<(i64, u64, TaskRef)>, recheck: bool) -> bool {
        let min = run_min();
        let one_by_one = |group: Vec<(i64, u64, TaskRef)>| {
            let mut lowered = false;
            for (at, _, task) in group {
                lowered |= self.insert_initial(&task, at);
            }
            lowered
        };
        if plain.len() < min {
            return one_by_one(plain);
        }
        let mut lowered = false;
        plain.sort_unstable_by_key(|&(at, n, _)| (n / BLOCK, at, n));
        let mut rest = plain.into_iter().peekable();
        while let Some(first) = rest.next() {
            let block = first.1 / BLOCK;
            let mut group = vec![first];
            while let Some(next) = rest.next_if(|(_, n, _)| n / BLOCK == block) {
                group.push(next);
            }
            if group.len() < min {
                lowered |= one_by_one(group);
                continue;
            }
            let key = (block, self.run_seq.fetch_add(1, Ordering::Relaxed));
            let mut ats = Vec::with_capacity(group.len());
            let mut offs = Vec::with_capacity(group.len());
            let mut tasks = Vec::with_capacity(group.len());
            for (at, n, task) in group {
                ats.push(at);
                offs.push(offset(n));
                tasks.push(task);
            }
            let run = Arc::new(Run {
                key,
                start: AtomicUsize::new(0),
                dead: AtomicUsize::new(0),
                ats: ats.into_boxed_slice(),
                offs: offs.into_boxed_slice(),
                tasks: tasks.into_boxed_slice(),
                group: None,
                gens: Box::new([]),
                scheds: Box::new([]),
            });
            // Findable by id first, then on the timeline: a claimer that
            // uses the run up removes it from `run_ids` after its insert.
            #[cfg(cronlane_loom)]
            let lookup = !crate::__loom::broken(&crate::__loom::BREAK_RUN_LOOKUP);
            #[cfg(not(cronlane_loom))]
            let lookup = true;
            if lookup {
                self.run_ids.insert(key, run.clone());
            }
            let view = View {
                run: run.clone(),
                start: 0,
            };
            let at = run.ats[0];
            self.runs.insert(view.key(), view);
            lowered |= self.lower_hint(at);
            if recheck {
                lowered |= self.recheck(&run);
            }
        }
        lowered
    }

    /// A remover marks its task and then (fence) looks for its run; this
    /// thread has published `run` and then (fence) looks at its tasks. One
    /// of the two sees the other (the store-buffering pattern of
    /// [`Task::removed_after_publish`](crate::engine::task::Task::removed_after_publish)),
    /// so a task removed while its run was being rebuilt is counted dead in
    /// the new run by one of them. True if a compaction lowered the hint.
    fn recheck(&self, run: &Arc<Run>) -> bool {
        #[cfg(cronlane_loom)]
        if crate::__loom::broken(&crate::__loom::BREAK_RECHECK) {
            return false;
        }
        crate::sync::fence(Ordering::SeqCst);
        let removed = run.tasks.iter().filter(|t| t.is_removed()).count();
        if removed == 0 {
            return false;
        }
        let dead = run.dead.fetch_add(removed, Ordering::Relaxed) + removed;
        dead * 2 >= run.tasks.len() && self.compact(run, 0)
    }

    /// Drains the intake and waits until every concurrent drainer has
    /// published what it popped. Afterwards every task registered before the
    /// call is findable in the id index (or already claimed for firing).
    pub(crate) fn settle(&self, now: i64, registry: &Registry) {
        let mut all = IntakeBudget([usize::MAX; SHARDS]);
        while self.drain(now, registry, None, &mut all, usize::MAX) > 0 {}
        let mut backoff = Backoff::default();
        while self.handover.load(Ordering::SeqCst) != 0 {
            backoff.snooze();
        }
    }

    /// Claims due entries (`fire_at <= now`, inserted before `limit`) into
    /// `out`, at most `max` of them. Stale entries met on the way are dropped.
    ///
    /// Runs first, then single entries. True if the rest of a run went back
    /// on the timeline under an instant that lowered the earliest hint (the
    /// caller wakes the runner, which may have looked while the run was off
    /// the timeline).
    pub(crate) fn claim_due(
        &self,
        now: i64,
        limit: u64,
        out: &mut Vec<Claimed>,
        max: usize,
    ) -> bool {
        if out.len() >= max {
            return false;
        }
        let lowered = self.claim_runs(now, limit, out, max);
        if out.len() >= max {
            return lowered;
        }
        self.map.take_front(
            |&(at, seq), _| {
                if at > now {
                    Take::Stop
                } else if seq & 1 == 1 && seq >> 1 >= limit {
                    Take::Skip
                } else {
                    Take::Yes
                }
            },
            |&(at, _), slot| {
                if slot.task.claim(slot.gen) {
                    out.push(Claimed {
                        task: slot.task.clone(),
                        scheduled: slot.scheduled,
                        gen: slot.gen,
                        due: at,
                    });
                }
                out.len() < max
            },
        );
        lowered
    }

    /// Claims due tasks from runs; see [`claim_due`](Self::claim_due).
    fn claim_runs(&self, now: i64, limit: u64, out: &mut Vec<Claimed>, max: usize) -> bool {
        // What is left of the views taken, put back once the walk is over
        // (a view put back during it would be met again).
        let mut rest: Vec<View> = Vec::new();
        let mut used_up: Vec<Arc<Run>> = Vec::new();
        let mut away = false;
        self.runs.take_front(
            |&(at, seq), _| {
                if at > now {
                    Take::Stop
                } else if seq & 1 == 1 && seq >> 1 >= limit {
                    // A group put back since this pass began.
                    Take::Skip
                } else {
                    if !away {
                        // Before the first view leaves the timeline.
                        away = true;
                        self.excursion_begins();
                    }
                    Take::Yes
                }
            },
            |_, view| {
                let run = &view.run;
                let mut i = view.start;
                while i < run.tasks.len() && run.ats[i] <= now && out.len() < max {
                    if let Some(ahead) = run.tasks.get(i + PREFETCH_AHEAD) {
                        prefetch(ahead);
                    }
                    let task = &run.tasks[i];
                    let (gen, scheduled) = run.entry(i);
                    if task.claim(gen) {
                        out.push(Claimed {
                            task: task.clone(),
                            scheduled,
                            gen,
                            due: run.ats[i],
                        });
                    }
                    i += 1;
                }
                if i < run.tasks.len() {
                    rest.push(View {
                        run: run.clone(),
                        start: i,
                    });
                } else {
                    used_up.push(run.clone());
                }
                out.len() < max
            },
        );
        for run in used_up {
            match run.group {
                Some(seq) => self.groups.remove_if(&seq, |r| Arc::ptr_eq(r, &run)),
                None => self.run_ids.remove_if(&run.key, |r| Arc::ptr_eq(r, &run)),
            };
        }
        #[cfg(cronlane_loom)]
        if crate::__loom::broken(&crate::__loom::BREAK_RUN_REST) {
            rest.clear();
        }
        let mut lowered = false;
        for view in rest {
            let at = view.run.ats[view.start];
            view.run.start.store(view.start, Ordering::Release);
            self.runs.insert(view.key(), view);
            lowered |= self.lower_hint(at);
        }
        if away {
            self.excursion_ends();
        }
        lowered
    }

    /// Entries on the timeline, stale ones included (loom models only).
    #[cfg(cronlane_loom)]
    pub(crate) fn len(&self) -> usize {
        let mut n = 0;
        self.map.for_each(|_, _| n += 1);
        self.runs.for_each(|_, _| n += 1);
        n
    }

    /// The earliest entry's instant, if any (stale entries included: a wake-up
    /// for a stale entry only costs a spurious pass).
    pub(crate) fn front(&self) -> Option<i64> {
        let single = self.map.front_key().map(|(at, _)| at);
        let run = self.runs.front_key().map(|(at, _)| at);
        match (single, run) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What each intake shard holds now: a `run_pending` drains at most
    /// this much, so that what callbacks register during the call waits for
    /// the next one, while everything registered before it is taken, whatever
    /// the shards the callbacks push to.
    pub(crate) fn intake_budget(&self) -> IntakeBudget {
        IntakeBudget(std::array::from_fn(|i| self.intake[i].len()))
    }
}
