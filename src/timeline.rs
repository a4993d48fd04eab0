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
//! * **Earliest hint**: `earliest` is a lower bound on the first fire instant
//!   added since the runner last looked. Inserts lower it with `fetch_min`;
//!   the runner resets it before it looks. An insert that lowers it tells its
//!   caller to wake the runner.

use crate::registry::Registry;
use crate::sync::{AtomicI64, AtomicU64, AtomicUsize, Backoff, Ordering};
use crate::sync::{OrderedMap, Queue, Take};
use crate::task::TaskRef;

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
    seq: AtomicU64,
    handover: AtomicUsize,
    earliest: AtomicI64,
}

impl Timeline {
    pub(crate) fn new() -> Self {
        Timeline {
            intake: std::array::from_fn(|_| Queue::new()),
            map: OrderedMap::new(),
            seq: AtomicU64::new(0),
            handover: AtomicUsize::new(0),
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

    /// The first entry of a task drained from intake: keyed by the task's
    /// own id, `(first_at, n << 1)`, so that [`probe`](Self::probe) finds it
    /// from the `TaskId` alone.
    fn insert_initial(&self, task: &TaskRef, scheduled: i64) -> bool {
        let (at, seq) = crate::task::initial_slot(task.id);
        self.put(task, 0, scheduled, at, seq)
    }

    fn put(&self, task: &TaskRef, gen: u64, scheduled: i64, at: i64, seq: u64) -> bool {
        task.set_slot(at, seq);
        self.map.insert(
            (at, seq),
            Slot {
                task: task.clone(),
                gen,
                scheduled,
            },
        );
        if task.removed_after_publish() {
            self.unlink(task);
        }
        self.lower_hint(at)
    }

    /// Removes the task's current entry, if it is still there (clean-up after
    /// remove, pause or reschedule; a missed one is dropped as stale later).
    pub(crate) fn unlink(&self, task: &TaskRef) {
        let key = task.slot();
        self.map
            .remove_if(&key, |slot| crate::sync::Arc::ptr_eq(&slot.task, task));
    }

    /// The count of re-inserts so far: a re-insert entry (odd sequence
    /// number) whose count is at or past it was inserted after this call.
    pub(crate) fn seq_limit(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// The task with this id, if it still waits at its first entry (the one
    /// drained from intake): anonymous one-shots are found this way, with
    /// no id index to keep up to date on every fire.
    pub(crate) fn probe(&self, id: crate::task::TaskId) -> Option<TaskRef> {
        self.map
            .get(&crate::task::initial_slot(id))
            .map(|slot| slot.task)
            .filter(|t| t.id == id && !t.is_removed())
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
            if task.load() == crate::task::word(0, crate::task::SCHEDULED) {
                self.insert_initial(&task, scheduled);
            }
        }
        if handover {
            self.handover.fetch_sub(1, Ordering::SeqCst);
        }
        moved
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
    pub(crate) fn claim_due(&self, now: i64, limit: u64, out: &mut Vec<Claimed>, max: usize) {
        if out.len() >= max {
            return;
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
    }

    /// Entries on the timeline, stale ones included (loom models only).
    #[cfg(cronlane_loom)]
    pub(crate) fn len(&self) -> usize {
        let mut n = 0;
        self.map.for_each(|_, _| n += 1);
        n
    }

    /// The earliest entry's instant, if any (stale entries included: a wake-up
    /// for a stale entry only costs a spurious pass).
    pub(crate) fn front(&self) -> Option<i64> {
        self.map.front_key().map(|(at, _)| at)
    }

    /// What each intake shard holds now: a `run_pending` drains at most
    /// this much, so that what callbacks register during the call waits for
    /// the next one, while everything registered before it is taken, whatever
    /// the shards the callbacks push to.
    pub(crate) fn intake_budget(&self) -> IntakeBudget {
        IntakeBudget(std::array::from_fn(|i| self.intake[i].len()))
    }
}
