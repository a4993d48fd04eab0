//! A task: its identity, plan, callback and atomic state machine.
//!
//! # Ground rules
//!
//! Every task has one state word, an `AtomicU64`:
//!
//! ```text
//!  63 ............ 8 | 7..5 | 4     | 3       | 2      | 1..0
//!  generation        | 0    | DIRTY | REMOVED | PAUSED | phase
//! ```
//!
//! Phases:
//!
//! | phase       | meaning                                                           |
//! | ----------- | ----------------------------------------------------------------- |
//! | `SCHEDULED` | one live entry tagged with the current generation exists (intake or timeline) |
//! | `CLAIMED`   | one thread won that entry's fire; the callback has not started    |
//! | `RUNNING`   | the callback of that fire is running                              |
//! | `IDLE`      | no live entry (paused, or finished for good)                      |
//!
//! Who may change what:
//!
//! * **claim** (any firing thread): CAS `(g, SCHEDULED, no flags)` to
//!   `(g, CLAIMED)` with the generation `g` carried by the entry. At most one
//!   thread wins; an entry whose generation is old, or whose task is paused or
//!   removed, is *stale* and is dropped by whoever finds it.
//! * **start** (claim owner only): CAS `(g, CLAIMED, no flags)` to `(g, RUNNING)`
//!   just before the callback. A task removed, paused or rescheduled between
//!   claim and start is not run: removal therefore wins over a fire that has
//!   not started, and "removed" means "never starts again".
//! * **finish** (claim owner only): from `RUNNING`, either to the next
//!   generation `(g+1, SCHEDULED)` followed by inserting the next entry, or to
//!   `IDLE | PAUSED`, or to `IDLE | REMOVED` (a one-shot, or a plan with no
//!   next instant). `DIRTY` (set by a reschedule during the run) makes finish
//!   take the new plan from now instead of from the scheduled instant.
//! * **pause / resume / reschedule** (managers): serialised per task by the
//!   `manage` flag (a tiny spin guard among managers only: firing threads
//!   never touch it and never wait for it), then CAS on the state word
//!   against firing threads. **remove** takes no guard: it is one `fetch_or`
//!   of `REMOVED`, which every other transition fails against, and every
//!   publisher checks for it afterwards (see below).
//! * `REMOVED` is terminal. Exactly one thread sets it (a manager's `remove`,
//!   or a finish that completes the task) and that thread does the clean-up:
//!   registry and name index, the live-task count, the timeline entry.
//!
//! Orderings: every transition is an `AcqRel` RMW (and loads are `Acquire`), so
//! the thread that moves the word to a state sees all writes made by the thread
//! that moved it to the previous one (the plan, the slot key, the counters).
//! Where a transition must be seen against an *insert* into another structure
//! (the registry, the timeline) both sides add a `SeqCst` fence; see
//! [`Task::removed_after_publish`].

use crate::clock::from_nanos;
use crate::id::TaskId;
use crate::schedule::Plan;
use crate::stats::{Extras, Policies};
use crate::sync::{fence, Arc, AtomicBool, AtomicI64, AtomicU64, Backoff, Ordering};
use chrono::{DateTime, Utc};
use std::fmt;

/// A callback's verdict: `()` or `Result<(), E>` for any displayable `E`.
pub trait TaskResult {
    /// `Err` carries the message that is logged and counted.
    fn into_outcome(self) -> Result<(), String>;
}

impl TaskResult for () {
    #[inline]
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display> TaskResult for Result<(), E> {
    #[inline]
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// What a callback is told about the fire it is running for.
///
/// ```
/// use cronlane::{ManualClock, Schedule, Scheduler};
/// use std::time::Duration;
///
/// let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
/// let s = Scheduler::builder().clock(clock.clone()).test_mode(true).build();
/// s.add(Schedule::after(Duration::from_secs(1)))
///     .name("bootstrap")
///     .run_with_context(|ctx| {
///         assert_eq!(ctx.name(), Some("bootstrap"));
///         assert!(ctx.started() >= ctx.scheduled());
///         // A callback may register tasks (or remove, reschedule itself).
///         ctx.scheduler()
///             .add(Schedule::every(Duration::from_secs(60)))
///             .name("steady")
///             .run(|| ())
///             .map(|_id| ())
///     })?;
/// clock.advance(Duration::from_secs(1));
/// s.run_pending();
/// assert!(s.info("steady").is_ok());
/// # Ok::<(), cronlane::Error>(())
/// ```
pub struct FireContext<'a> {
    pub(crate) task: &'a Task,
    pub(crate) scheduled: i64,
    pub(crate) started: i64,
    /// Whoever runs the callback (the `run` layer lends its shared core);
    /// opaque to the engine. [`FireContext::scheduler`] (in the `api`
    /// layer) turns it back into a handle. A borrow, so building a context
    /// costs nothing per fire.
    pub(crate) host: &'a (dyn std::any::Any + Send + Sync),
    pub(crate) payload: Option<&'a [u8]>,
}

impl FireContext<'_> {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.task.id
    }
    /// The task's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.task.name()
    }
    /// The instant this fire was scheduled for.
    pub fn scheduled(&self) -> DateTime<Utc> {
        from_nanos(self.scheduled)
    }
    /// The instant the callback actually started (by the scheduler's clock).
    pub fn started(&self) -> DateTime<Utc> {
        from_nanos(self.started)
    }
    /// The task's payload, opened for this fire (`None` if it has none). In
    /// production mode these bytes live in a buffer that is wiped as soon as
    /// the callback returns: copy them only if you must, and wipe the copy.
    pub fn payload(&self) -> Option<&[u8]> {
        self.payload
    }
}

pub(crate) type Callback = Box<dyn Fn(&FireContext<'_>) -> Result<(), String> + Send + Sync>;

pub(crate) const SCHEDULED: u64 = 0;
pub(crate) const CLAIMED: u64 = 1;
pub(crate) const RUNNING: u64 = 2;
pub(crate) const IDLE: u64 = 3;
const PHASE: u64 = 0b11;
pub(crate) const PAUSED: u64 = 1 << 2;
pub(crate) const REMOVED: u64 = 1 << 3;
pub(crate) const DIRTY: u64 = 1 << 4;
const FLAGS: u64 = PAUSED | REMOVED | DIRTY;
const GEN_SHIFT: u32 = 8;

#[inline]
pub(crate) fn word(gen: u64, bits: u64) -> u64 {
    (gen << GEN_SHIFT) | bits
}
#[inline]
pub(crate) fn gen_of(w: u64) -> u64 {
    w >> GEN_SHIFT
}
#[inline]
pub(crate) fn phase_of(w: u64) -> u64 {
    w & PHASE
}

/// What the claim owner should do after `start` failed or `finish` ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Insert the next entry `(at, gen)` into the timeline.
    Reschedule { at: i64, gen: u64 },
    /// This thread set `REMOVED` (the task is done): clean up.
    Completed,
    /// Nothing to do (paused, removed by someone else, or taken over by a
    /// reschedule).
    Nothing,
}

/// A scheduled task. Shared as `Arc<Task>` between intake, timeline,
/// registry and the threads firing it.
///
/// Kept to what every task needs on the hot paths (56 bytes: id, state
/// word, callback, cold-block pointer). Everything else lives in a [`Cold`]
/// block that a plain anonymous one-shot never allocates unless it is
/// paused, resumed or rescheduled, its fire is released unrun, or its fire
/// fails, misfires or is skipped (each of those goes through [`Task::cold`]).
pub(crate) struct Task {
    pub(crate) id: TaskId,
    state: AtomicU64,
    callback: Callback,
    cold: std::sync::OnceLock<Box<Cold>>,
}

/// The parts of a task that a plain anonymous one-shot does without.
///
/// Allocated at registration for a task with a name, a recurring plan, a
/// payload or non-default policies; otherwise on first need
/// ([`Task::cold`]), built from the one-shot's id: without policies its
/// scheduled instant is its due instant, `id.first_at`.
struct Cold {
    /// Immutable; `std::sync::Arc` because loom's `Arc` cannot hold a `str`.
    name: Option<std::sync::Arc<str>>,
    plan: Plan,
    /// Key of the current timeline entry (best effort, for clean-up and
    /// `next_fire`): the fire instant and the entry's sequence number.
    slot_at: AtomicI64,
    slot_seq: AtomicU64,
    /// The generation of the entry the slot names: a slot write for an
    /// older generation than the one recorded is dropped, so a finish that
    /// puts an entry back while a manager re-plans the task cannot leave
    /// the slot naming its stale entry instead of the manager's live one.
    slot_gen: AtomicU64,
    /// Guards the three slot fields together (writers and readers; a few
    /// instructions, never held across anything else).
    slot_lock: AtomicBool,
    manage: AtomicBool,
    /// Set once, by whoever puts the task in the id registry.
    in_registry: AtomicBool,
    /// An async task (the `run` layer's; feature `tokio`): set before the
    /// task is published, whose push orders it before any read.
    asynch: AtomicBool,
    /// Set (Release) after the first store to the extras' `replan`: a task
    /// never rescheduled reads its own plan without an arc-swap load (two
    /// per fire of a recurring task; issue 18's profile).
    replanned: AtomicBool,
    /// Policies and detailed statistics, allocated on first need (see
    /// [`crate::stats`]).
    extras: std::sync::OnceLock<Box<Extras>>,
    /// Sealed (production) or clear (test mode) payload; see [`crate::seal`].
    /// Boxed: most tasks have none (8 bytes here instead of 32).
    payload: Option<Box<crate::seal::Payload>>,
}

impl Cold {
    fn new(id: TaskId, name: Option<std::sync::Arc<str>>, plan: Plan) -> Cold {
        let (at, seq) = initial_slot(id);
        Cold {
            name,
            plan,
            slot_at: AtomicI64::new(at),
            slot_seq: AtomicU64::new(seq),
            slot_gen: AtomicU64::new(0),
            slot_lock: AtomicBool::new(false),
            manage: AtomicBool::new(false),
            in_registry: AtomicBool::new(false),
            asynch: AtomicBool::new(false),
            replanned: AtomicBool::new(false),
            extras: std::sync::OnceLock::new(),
            payload: None,
        }
    }
}

/// The key of a task's first timeline entry (see
/// [`crate::engine::timeline::Timeline::probe`]).
#[inline]
pub(crate) fn initial_slot(id: TaskId) -> (i64, u64) {
    (id.first_at, id.n << 1)
}

pub(crate) type TaskRef = Arc<Task>;

impl Task {
    /// A plain anonymous one-shot (no name, payload or non-default
    /// policy, first due at `id.first_at`): the registration fast path's
    /// task, as [`Task::new`] builds it. Inlined so the task is written
    /// straight into its allocation: built by the out-of-line `new` and then
    /// moved into the `Arc`, its 56 bytes went through the stack with loads
    /// wider than the stores that wrote them (store-forwarding stalls;
    /// perf, issue 13).
    #[inline]
    pub(crate) fn plain_once(id: TaskId, callback: Callback) -> Task {
        if cfg!(cronlane_loom) {
            // Every task has its cold block under loom (see `new`).
            let plan = Plan::Once(id.first_at);
            return Task::new(id, None, plan, callback, None, Policies::default());
        }
        Task::with_cold(id, callback, std::sync::OnceLock::new())
    }

    /// The task's hot part around its (maybe empty) cold block.
    #[inline]
    fn with_cold(id: TaskId, callback: Callback, cold: std::sync::OnceLock<Box<Cold>>) -> Task {
        Task {
            id,
            state: AtomicU64::new(word(0, SCHEDULED)),
            callback,
            cold,
        }
    }

    /// A new task, built in place (registration is hot: no builder-style
    /// moves of the whole struct). Only a task that needs a [`Cold`] block
    /// (name, recurring plan, payload, non-default policies) costs a second
    /// allocation, and only non-default policies a third.
    pub(crate) fn new(
        id: TaskId,
        name: Option<std::sync::Arc<str>>,
        plan: Plan,
        callback: Callback,
        payload: Option<crate::seal::Payload>,
        policies: Policies,
    ) -> Task {
        let plain = policies == Policies::default();
        // Under loom the cold block is always built here: loom cannot see
        // the synchronisation inside std's `OnceLock`, so a block (holding
        // loom atomics) created lazily by one thread and read by another
        // would look like a data race to it. Laziness itself is std's, not
        // part of the protocol the models check.
        let lazy = !cfg!(cronlane_loom);
        let cold = if lazy && name.is_none() && plan.is_once() && payload.is_none() && plain {
            std::sync::OnceLock::new()
        } else {
            let mut cold = Cold::new(id, name, plan);
            cold.payload = payload.map(Box::new);
            if !plain {
                cold.extras = std::sync::OnceLock::from(Box::new(Extras::new(policies)));
            }
            std::sync::OnceLock::from(Box::new(cold))
        };
        Task::with_cold(id, callback, cold)
    }

    /// The cold block, allocated now if the task had none (a plain one-shot:
    /// its plan is its id's instant).
    #[inline]
    fn cold(&self) -> &Cold {
        self.cold
            .get_or_init(|| Box::new(Cold::new(self.id, None, self.bare_plan())))
    }

    /// The plan of a task without a cold block: a one-shot without
    /// policies, so its scheduled instant is its due instant.
    #[inline]
    fn bare_plan(&self) -> Plan {
        Plan::Once(self.id.first_at)
    }

    /// The task's name, if it has one.
    #[inline]
    pub(crate) fn name(&self) -> Option<&str> {
        self.cold.get().and_then(|c| c.name.as_deref())
    }

    /// The name as the registry keys it.
    pub(crate) fn name_arc(&self) -> Option<&std::sync::Arc<str>> {
        self.cold.get().and_then(|c| c.name.as_ref())
    }

    /// The task's extras, if allocated.
    #[inline]
    pub(crate) fn extras(&self) -> Option<&Extras> {
        self.cold.get().and_then(|c| c.extras.get()).map(|b| &**b)
    }

    /// The task's extras, allocated now if needed (default policies).
    pub(crate) fn extras_or_init(&self) -> &Extras {
        self.cold()
            .extras
            .get_or_init(|| Box::new(Extras::new(Policies::default())))
    }

    #[inline]
    pub(crate) fn policies(&self) -> Policies {
        self.extras().map(|e| e.policies).unwrap_or_default()
    }

    #[inline]
    pub(crate) fn payload(&self) -> Option<&crate::seal::Payload> {
        self.cold.get().and_then(|c| c.payload.as_deref())
    }

    /// Marks a new, unpublished task as async (its callback hands out its
    /// job instead of running: see `run::tokio`). Needs no policies block,
    /// so an async one-shot costs what a sync one with a cold block does.
    pub(crate) fn mark_async(&self) {
        self.cold().asynch.store(true, Ordering::Relaxed);
    }

    /// Whether the task was marked async (read by `run::tokio` only).
    #[inline]
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn is_async(&self) -> bool {
        self.cold
            .get()
            .is_some_and(|c| c.asynch.load(Ordering::Relaxed))
    }

    /// Whether the task is in the id registry.
    #[inline]
    pub(crate) fn in_registry(&self) -> bool {
        self.cold
            .get()
            .is_some_and(|c| c.in_registry.load(Ordering::Relaxed))
    }

    /// Records that the task is in the id registry.
    pub(crate) fn set_in_registry(&self) {
        self.cold().in_registry.store(true, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn load(&self) -> u64 {
        self.state.load(Ordering::Acquire)
    }

    #[inline]
    fn cas(&self, from: u64, to: u64) -> Result<u64, u64> {
        self.state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
    }

    /// Whether the original plan is a one-shot (reschedule may change the
    /// current plan, but not how the task entered the engine).
    #[inline]
    pub(crate) fn is_once(&self) -> bool {
        self.cold.get().is_none_or(|c| c.plan.is_once())
    }

    /// A plain anonymous one-shot, as registered and not managed since: no
    /// name, payload, policies or id-index entry. Only such tasks go into
    /// timeline runs (see [`crate::engine::timeline`]).
    pub(crate) fn is_plain_once(&self) -> bool {
        self.cold.get().is_none_or(|c| {
            c.name.is_none()
                && c.plan.is_once()
                && c.payload.is_none()
                && c.extras.get().is_none()
                && !c.in_registry.load(Ordering::Relaxed)
        })
    }

    pub(crate) fn is_removed(&self) -> bool {
        self.load() & REMOVED != 0
    }

    /// A callback of this task is running, started by a pass (the store
    /// seam's `run_now` follows the overlap policy with it).
    pub(crate) fn is_running(&self) -> bool {
        phase_of(self.load()) == RUNNING
    }

    /// The plan in force: the rescheduled one if any.
    pub(crate) fn with_plan<R>(&self, f: impl FnOnce(&Plan) -> R) -> R {
        // Only a rescheduled task has extras with a plan in them: the common
        // fire path touches no arc-swap at all.
        let Some(cold) = self.cold.get() else {
            return f(&self.bare_plan());
        };
        match cold.extras.get() {
            // Acquire: pairs with `set_replan`'s Release, so a task seen
            // as rescheduled has its new plan in `replan`.
            Some(e) if cold.replanned.load(Ordering::Acquire) => {
                e.replan.with(|replan| f(replan.unwrap_or(&cold.plan)))
            }
            Some(_) => f(&cold.plan),
            None => f(&cold.plan),
        }
    }

    /// The latest scheduled instant whose fire started (`i64::MIN` if none,
    /// or if the task never needed its extras: a plain one-shot).
    pub(crate) fn cursor(&self) -> i64 {
        self.extras()
            .map_or(i64::MIN, |e| e.cursor.load(Ordering::Relaxed))
    }

    /// Records that the fire scheduled at `scheduled` started (claim owner,
    /// after `start`, before `finish`). A plain one-shot without extras
    /// records nothing: it completes when it finishes, and a reschedule
    /// during its run reaches `finish` with the instant that ran.
    pub(crate) fn advance_cursor(&self, scheduled: i64) {
        let extras = if self.is_once() {
            self.extras()
        } else {
            Some(self.extras_or_init())
        };
        if let Some(e) = extras {
            e.cursor.fetch_max(scheduled, Ordering::Relaxed);
        }
    }

    pub(crate) fn set_replan(&self, plan: Plan) {
        self.extras_or_init().replan.store(Some(Arc::new(plan)));
        self.cold().replanned.store(true, Ordering::Release);
    }

    /// A new task that was never published starts paused instead (a stored
    /// task loaded paused): `IDLE | PAUSED`, so `resume` plans it.
    pub(crate) fn park_new(&self) {
        self.state.store(word(1, IDLE | PAUSED), Ordering::Release);
    }

    /// Claims the fire of the entry tagged `gen`. True for exactly one caller.
    #[inline]
    pub(crate) fn claim(&self, gen: u64) -> bool {
        #[cfg(cronlane_loom)]
        if crate::__loom::broken(&crate::__loom::BREAK_CLAIM) {
            // Broken twin: load, then store.
            if self.load() != word(gen, SCHEDULED) {
                return false;
            }
            self.state.store(word(gen, CLAIMED), Ordering::Release);
            return true;
        }
        self.cas(word(gen, SCHEDULED), word(gen, CLAIMED)).is_ok()
    }

    /// Moves a claimed fire to running. `Err` tells the owner what to do
    /// instead of running the callback.
    #[inline]
    pub(crate) fn start(&self, gen: u64) -> Result<(), After> {
        #[cfg(cronlane_loom)]
        if crate::__loom::broken(&crate::__loom::BREAK_START) {
            // Broken twin: no check for what happened since the claim.
            self.state.store(word(gen, RUNNING), Ordering::Release);
            return Ok(());
        }
        let mut cur = word(gen, CLAIMED);
        loop {
            match self.cas(cur, word(gen, RUNNING)) {
                Ok(_) => return Ok(()),
                Err(actual) => {
                    if gen_of(actual) != gen || actual & REMOVED != 0 || phase_of(actual) != CLAIMED
                    {
                        // Removed (its remover cleans up) or taken over by a
                        // reschedule that already inserted a new entry.
                        return Err(After::Nothing);
                    }
                    if actual & PAUSED != 0 {
                        // Paused after the claim: park the task, unscheduled.
                        match self.cas(actual, word(gen + 1, IDLE | PAUSED)) {
                            Ok(_) => return Err(After::Nothing),
                            Err(_) => {
                                cur = word(gen, CLAIMED);
                                continue;
                            }
                        }
                    }
                    cur = actual;
                }
            }
        }
    }

    /// Ends the run of generation `gen` at `now` and says what comes next:
    /// `next` (the plan's next instant, as the run policies chose it), or, if
    /// the task was rescheduled during the run, the new plan's first instant
    /// from `now`. `None` completes the task.
    pub(crate) fn finish(&self, gen: u64, ran: i64, now: i64, next: Option<i64>) -> After {
        let mut cur = self.load();
        #[cfg(cronlane_loom)]
        if crate::__loom::broken(&crate::__loom::BREAK_FINISH) {
            // Broken twin: a removal during the run is written over.
            cur = self.state.fetch_and(!REMOVED, Ordering::AcqRel) & !REMOVED;
        }
        loop {
            debug_assert_eq!(gen_of(cur), gen);
            debug_assert_eq!(phase_of(cur), RUNNING);
            if cur & REMOVED != 0 {
                // Removed during the run; the remover did the clean-up.
                match self.cas(cur, word(gen, IDLE | REMOVED)) {
                    Ok(_) => return After::Nothing,
                    Err(a) => {
                        cur = a;
                        continue;
                    }
                }
            }
            if cur & (DIRTY | PAUSED) != 0 {
                // The task goes on past this run under management (a new
                // plan, or a resume later): record the instant that ran even
                // for a one-shot that has no cursor of its own yet, before
                // the CAS below publishes it, so no later plan starts at or
                // before it.
                self.extras_or_init()
                    .cursor
                    .fetch_max(ran, Ordering::Relaxed);
            }
            let next = if cur & DIRTY != 0 {
                // Rescheduled during the run: wait for the rescheduler to
                // have stored the new plan (it sets DIRTY first, then the
                // plan, under the manage guard; see `Core::reschedule`).
                // Rare, short, and no manager ever waits for a firing
                // thread, so this cannot deadlock. Never at or before the
                // instant that just ran (nor one that ran before it).
                let _guard = self.manage();
                let cursor = self.cursor().max(ran);
                let until = self.policies().until;
                self.with_plan(|p| p.first_after_cursor(now, cursor))
                    .filter(|&at| until.is_none_or(|u| at <= u))
            } else {
                // Computed by the caller from the plan in force during the
                // run (a reschedule since would have set DIRTY).
                next
            };
            #[cfg(cronlane_loom)]
            let paused =
                cur & PAUSED != 0 && !crate::__loom::broken(&crate::__loom::BREAK_PAUSE_FINISH);
            #[cfg(not(cronlane_loom))]
            let paused = cur & PAUSED != 0;
            let (to, after) = match next {
                None => (word(gen, IDLE | REMOVED), After::Completed),
                Some(_) if paused => (word(gen + 1, IDLE | PAUSED), After::Nothing),
                Some(at) => (
                    word(gen + 1, SCHEDULED),
                    After::Reschedule { at, gen: gen + 1 },
                ),
            };
            match self.cas(cur, to) {
                Ok(_) => return after,
                Err(a) => cur = a,
            }
        }
    }

    /// After publishing the task somewhere (registry, timeline entry) a
    /// thread calls this; if it returns true a remover may have missed the
    /// publication and the caller must take it back itself.
    ///
    /// The remover does the mirror image: set `REMOVED`, fence, then look.
    /// With a `SeqCst` fence on both sides at least one of the two sees the
    /// other (the store-buffering pattern), so nothing stays published for a
    /// removed task.
    pub(crate) fn removed_after_publish(&self) -> bool {
        fence(Ordering::SeqCst);
        #[cfg(cronlane_loom)]
        if crate::__loom::broken(&crate::__loom::BREAK_PUBLISH) {
            return false;
        }
        self.is_removed()
    }

    pub(crate) fn run_callback(&self, ctx: &FireContext<'_>) -> Result<(), String> {
        (self.callback)(ctx)
    }

    /// Runs and failures so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        self.extras().map_or((0, 0), |e| {
            (
                e.runs.load(Ordering::Relaxed),
                e.failures.load(Ordering::Relaxed),
            )
        })
    }

    pub(crate) fn set_slot(&self, at: i64, seq: u64, gen: u64) {
        // A task without a cold block is at its first entry, which is also
        // where a cold block starts: nothing to record.
        if self.cold.get().is_none() && (at, seq) == initial_slot(self.id) {
            return;
        }
        let cold = self.cold();
        let _lock = SlotLock::take(cold);
        if gen >= cold.slot_gen.load(Ordering::Relaxed) {
            cold.slot_gen.store(gen, Ordering::Relaxed);
            cold.slot_at.store(at, Ordering::Relaxed);
            cold.slot_seq.store(seq, Ordering::Relaxed);
        }
    }
    pub(crate) fn slot(&self) -> (i64, u64) {
        match self.cold.get() {
            None => initial_slot(self.id),
            Some(c) => {
                let _lock = SlotLock::take(c);
                (
                    c.slot_at.load(Ordering::Relaxed),
                    c.slot_seq.load(Ordering::Relaxed),
                )
            }
        }
    }

    /// Serialises managers of this task. Firing threads never call this.
    pub(crate) fn manage(&self) -> ManageGuard<'_> {
        let manage = &self.cold().manage;
        let mut backoff = Backoff::default();
        while manage
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            backoff.snooze();
        }
        ManageGuard(self)
    }

    /// CAS used by managers (under [`Task::manage`]).
    pub(crate) fn transition(&self, from: u64, to: u64) -> Result<u64, u64> {
        self.cas(from, to)
    }

    /// Marks removed; returns the previous word. The caller cleans up if the
    /// previous word was not already removed.
    pub(crate) fn mark_removed(&self) -> u64 {
        let prev = self.state.fetch_or(REMOVED, Ordering::AcqRel);
        fence(Ordering::SeqCst);
        prev
    }

    pub(crate) fn flags(w: u64) -> u64 {
        w & FLAGS
    }
}

/// Holds a task's slot fields (see `Cold::slot_lock`).
struct SlotLock<'a>(&'a Cold);

impl<'a> SlotLock<'a> {
    fn take(cold: &'a Cold) -> SlotLock<'a> {
        let mut backoff = Backoff::default();
        while cold
            .slot_lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            backoff.snooze();
        }
        SlotLock(cold)
    }
}

impl Drop for SlotLock<'_> {
    fn drop(&mut self) {
        self.0.slot_lock.store(false, Ordering::Release);
    }
}

pub(crate) struct ManageGuard<'a>(&'a Task);

impl Drop for ManageGuard<'_> {
    fn drop(&mut self) {
        self.0.cold().manage.store(false, Ordering::Release);
    }
}

#[cfg(all(test, not(cronlane_loom)))]
mod tests {
    use super::*;

    #[test]
    fn tasks_stay_small() {
        // id 16 + state 8 + callback 16 + cold pointer 16: the hot part of
        // every task. Growing it costs memory and registration throughput
        // on every task (see BENCHMARKS.md).
        assert!(
            std::mem::size_of::<Task>() <= 56,
            "{}",
            std::mem::size_of::<Task>()
        );
        // The cold block of a recurring or named task.
        assert!(
            std::mem::size_of::<Cold>() <= 96,
            "{}",
            std::mem::size_of::<Cold>()
        );
    }
}
