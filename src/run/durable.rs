//! Durable tasks on the run side: the handler table, the definitions this
//! scheduler holds for its store, arming a stored task in the engine, and
//! the store calls of a `run_pending` pass (see [`crate::store`] for what is
//! written when).
//!
//! # Ground rules
//!
//! * A durable task is an engine task like any other: named, with
//!   non-default policies whose `durable` field holds its delivery policy,
//!   and whose callback is its handler. Nothing below this module knows
//!   it is durable.
//! * Definition writes for one name are serialised by a stripe lock held
//!   across the store write and the engine operation, so store and memory
//!   see one name's changes in the same order; different names commit
//!   together (the store groups concurrent writes into one commit). No
//!   firing thread ever takes a stripe.
//! * `defs` is this scheduler's view of its store: every durable task it
//!   knows, armed (it has an engine id) or waiting for its handler. It is
//!   locked briefly and never across a store call.
//! * A pass with durable fires: begin each (the engine's start, misfire
//!   and collapse rules, cursor) as the pass drains them, batch after
//!   batch, one [`Store::claim`] for all of them once the pass has drained
//!   everything due (or once [`CLAIM_AT`] wait), and only then their
//!   callbacks. A begun fire is out of the timeline like a running one, so
//!   waiting for the claim is, to the engine, a slower start. Completions
//!   wait in `done` and go to the store in one [`Store::complete`] at the
//!   end of the pass, from a pool worker once its fire completed, or once
//!   [`FLUSH_AT`] are waiting.

use crate::engine::task::{FireContext, TaskRef};
use crate::engine::timeline::Claimed;
use crate::error::Error;
use crate::id::TaskId;
use crate::policy::{Delivery, SkipReason};
use crate::run::core::Core;
use crate::run::dispatch::{Dispatch, Job};
use crate::run::fire::{Begin, Begun, Claim};
use crate::run::report::{Outcome, RunReport};
use crate::run::runner::RunnerSignal;
use crate::schedule::Plan;
use crate::seal::Payload;
use crate::stats::Policies;
use crate::store::{FireClaim, FireDone, Op, PayloadRecord, Store, StoreError, TaskRecord};
use crate::sync::HandleArc as Arc;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};

/// Completions written at once when this many wait (inline dispatch:
/// a pass writes its own at its end, so this only bounds what a pass of
/// more fires than [`CLAIM_AT`] keeps waiting; pool workers write theirs
/// after each fire, sharing the store's group commits).
pub(crate) const FLUSH_AT: usize = CLAIM_AT;

/// Durable fires a pass begins before it claims them in one store call
/// (one commit): every fire of a pass of up to this many, so that 100k
/// recurring tasks due together cost one commit, not one per engine batch.
pub(crate) const CLAIM_AT: usize = 1 << 17;

/// The durable fires of a `run_pending` pass that are begun and wait for
/// their claim ([`Core::claim_durable`]).
pub(crate) struct DurablePass {
    begun: Vec<Begun>,
    claims: Vec<FireClaim>,
    /// The pass's clock: inline fires put their recurring tasks back as
    /// groups of the engine's batches, as a pass without a store does.
    now: i64,
    /// Whether a group that lowers the earliest instant wakes the runner
    /// (not when the runner is the one running the pass).
    wake: bool,
}

impl DurablePass {
    /// A pass at `now`; `runner`: the runner runs it (no wake-up needed).
    pub(crate) fn new(now: i64, runner: bool) -> DurablePass {
        DurablePass {
            begun: Vec::new(),
            claims: Vec::new(),
            now,
            wake: !runner,
        }
    }
}

/// Stripe locks for definition writes (by name hash).
const STRIPES: usize = 64;

/// A registered handler: the code durable tasks name.
pub(crate) type Handler =
    std::sync::Arc<dyn Fn(&FireContext<'_>) -> Result<(), String> + Send + Sync>;

/// One durable task as this scheduler knows it.
#[derive(Clone)]
pub(crate) struct Def {
    /// The definition as last written (its cursor as of that write: the
    /// store keeps the larger of it and the progress written since).
    pub(crate) record: TaskRecord,
    /// Its engine id while armed.
    pub(crate) id: Option<TaskId>,
    /// Why it is not armed, besides a missing handler.
    pub(crate) problem: Option<String>,
}

/// The durable side of a scheduler with a store.
pub(crate) struct Durable {
    pub(crate) store: Box<dyn Store>,
    handlers: RwLock<HashMap<String, Handler>>,
    pub(crate) defs: Mutex<HashMap<String, Def>>,
    stripes: Vec<Mutex<()>>,
    done: Mutex<Vec<FireDone>>,
    /// Fences of won claims still running, by `(name, instant)`: only for
    /// a backend that hands fences out (non-zero), taken at completion.
    fences: Mutex<HashMap<(std::sync::Arc<str>, i64), u64>>,
    /// Entries in `fences` (changed under its lock): a fire looks at the
    /// map only when it is not empty, so a store without fences costs a
    /// fire one load, not a lock, a name clone and a hash.
    fenced: AtomicUsize,
    /// Store calls that failed (each also logged).
    pub(crate) failures: AtomicU64,
}

/// Locks a mutex whatever a panicking holder left: every structure behind
/// these locks is valid between statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Durable {
    pub(crate) fn new(store: Box<dyn Store>) -> Durable {
        let loaded = store.loaded();
        let mut defs = HashMap::with_capacity(loaded.len());
        defs.extend(loaded.into_iter().map(|record| {
            let name = record.name.clone();
            let def = Def {
                record,
                id: None,
                problem: None,
            };
            (name, def)
        }));
        Durable {
            store,
            handlers: RwLock::new(HashMap::new()),
            defs: Mutex::new(defs),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            done: Mutex::new(Vec::new()),
            fences: Mutex::new(HashMap::new()),
            fenced: AtomicUsize::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// The stripe that serialises definition writes for `name`.
    pub(crate) fn stripe(&self, name: &str) -> MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        lock(&self.stripes[(h.finish() as usize) % STRIPES])
    }

    /// Every stripe, in order (a batch registration).
    pub(crate) fn all_stripes(&self) -> Vec<MutexGuard<'_, ()>> {
        self.stripes.iter().map(lock).collect()
    }

    pub(crate) fn handler(&self, name: &str) -> Option<Handler> {
        self.handlers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Adds a handler; `false` if the name is taken.
    pub(crate) fn add_handler(&self, name: &str, handler: Handler) -> bool {
        let mut handlers = self
            .handlers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if handlers.contains_key(name) {
            return false;
        }
        handlers.insert(name.to_owned(), handler);
        true
    }

    /// Writes definition changes; counts and logs a failure.
    pub(crate) fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.store.write(ops).inspect_err(|e| {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "cronlane: store write failed; nothing changed");
        })
    }

    /// Queues a completion; true when enough wait to write them now.
    fn push_done(&self, done: FireDone) -> bool {
        let mut q = lock(&self.done);
        q.push(done);
        q.len() >= FLUSH_AT
    }

    /// Writes every waiting completion in one call. On failure they stay
    /// queued (in order) for the next call.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        let batch = std::mem::take(&mut *lock(&self.done));
        if batch.is_empty() {
            return Ok(());
        }
        match self.store.complete(&batch) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, fires = batch.len(), "cronlane: writing fire progress failed; kept for the next pass");
                let mut q = lock(&self.done);
                let newer = std::mem::replace(&mut *q, batch);
                q.extend(newer);
                Err(e)
            }
        }
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        // Best effort: what a pass left queued (an at-least-once fire not
        // written would only run again after a restart).
        let _ = self.flush();
    }
}

impl Core {
    /// The durable side of this scheduler, or the error for `name`.
    pub(crate) fn durable_or(&self, name: &str) -> Result<&Durable, Error> {
        self.durable
            .as_deref()
            .ok_or_else(|| Error::NoStore(name.to_owned()))
    }

    /// A pass's batch on a scheduler with a store: non-durable fires go
    /// out as usual; durable ones are begun and wait in `pass` for one
    /// claim of the whole pass ([`Core::claim_durable`], called once the
    /// pass has drained everything due, or here once [`CLAIM_AT`] wait).
    // Out of line: `run_pending`'s loop stays as it was for schedulers
    // without a store.
    #[inline(never)]
    pub(crate) fn dispatch_durable(
        self: &Arc<Self>,
        durable: &Durable,
        batch: &mut Vec<Claimed>,
        pass: &mut DurablePass,
        report: &mut RunReport,
        stop: Option<&RunnerSignal>,
    ) {
        for claimed in batch.drain(..) {
            if stop.is_some_and(RunnerSignal::stop_raised) {
                self.hand_back(claimed, report);
                continue;
            }
            let Some(delivery) = claimed.task.policies().durable else {
                self.dispatch(claimed, report);
                continue;
            };
            match self.begin(claimed) {
                Begin::Skipped => report.add(Outcome::Skipped),
                Begin::Run(b) => {
                    pass.claims.push(FireClaim {
                        name: name_of(&b.task),
                        scheduled: b.scheduled,
                        delivery,
                        last: b.ends_task(),
                        next: b.next_instant(),
                        won: true,
                        fence: 0,
                    });
                    pass.begun.push(b);
                }
            }
        }
        if pass.begun.len() >= CLAIM_AT {
            self.claim_durable(durable, pass, report);
        }
    }

    /// Claims every durable fire begun in `pass` in one store call, and
    /// only then runs them (or hands them out).
    // Out of line: `run_pending`'s loop stays as it was for schedulers
    // without a store.
    #[inline(never)]
    pub(crate) fn claim_durable(
        self: &Arc<Self>,
        durable: &Durable,
        pass: &mut DurablePass,
        report: &mut RunReport,
    ) {
        if pass.begun.is_empty() {
            return;
        }
        let mut claims = std::mem::take(&mut pass.claims);
        let begun = std::mem::take(&mut pass.begun);
        match durable.store.claim(&mut claims) {
            Ok(()) => {
                // The callbacks start after the commit: measure from then.
                let now = self.clock.now_nanos();
                durable.keep_fences(&claims);
                let mut claims = claims.iter();
                let mut begun = begun.into_iter();
                // The fires won first, then the refused ones (another
                // replica runs them): a refusal never delays a callback.
                let mut refused = Vec::new();
                loop {
                    // Recurring tasks put back inline go on the timeline
                    // together per engine batch (`core::BATCH`), as in a pass
                    // without a store (`Timeline::insert_after_run`).
                    let group = self.timeline.open_batch(pass.now);
                    let mut any = false;
                    for (mut b, c) in begun
                        .by_ref()
                        .zip(claims.by_ref())
                        .take(crate::run::core::BATCH)
                    {
                        any = true;
                        if c.won && c.last && c.delivery == Delivery::AtMostOnce {
                            // The claim deleted the record: completion writes
                            // nothing more (a second commit per pass otherwise).
                            b.claim = Claim::EndWritten;
                        }
                        if c.won {
                            b.started = now.max(b.started);
                            self.dispatch_begun(b, report);
                        } else {
                            refused.push(b);
                        }
                    }
                    if group.close() && pass.wake {
                        self.runner.wake();
                    }
                    if !any {
                        break;
                    }
                }
                for b in refused {
                    self.skipped(&b.task, b.scheduled, SkipReason::Cancelled, 1, true);
                    report.add(self.complete(b, Outcome::Skipped));
                }
            }
            Err(e) => {
                durable.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, fires = begun.len(), "cronlane: claiming durable fires failed; they do not run");
                for mut b in begun {
                    self.skipped(&b.task, b.scheduled, SkipReason::Cancelled, 1, true);
                    // Nothing of a fire that did not run is written: a
                    // one-shot (or a last run) keeps its record, and runs
                    // after a restart. (Unless this failed claim's commit
                    // is on disk all the same, a failed fsync after its
                    // writes: then an at-most-once one's record is gone,
                    // and it never runs, which at most once allows.)
                    b.claim = Claim::Failed;
                    report.add(self.complete(b, Outcome::Skipped));
                }
            }
        }
    }

    /// Runs (inline) or hands out (pool, executor) a begun fire.
    fn dispatch_begun(self: &Arc<Self>, begun: Begun, report: &mut RunReport) {
        match &self.dispatch {
            Dispatch::Inline => report.add(self.run_begun(begun)),
            Dispatch::Pool(pool) => {
                report.dispatched += 1;
                pool.submit(Job::begun(self.clone(), begun));
            }
            Dispatch::Executor(e) => {
                report.dispatched += 1;
                e.execute(Job::begun(self.clone(), begun));
            }
        }
    }

    /// The callback and completion of a begun fire, on this thread.
    pub(crate) fn run_begun(self: &Arc<Self>, begun: Begun) -> Outcome {
        let _fence = self.durable.as_deref().and_then(|d| d.enter_fence(&begun));
        let outcome = self.run_callback(&begun.task, begun.scheduled, begun.due, begun.started);
        self.complete(begun, outcome)
    }

    /// A durable fire ended (its callback returned, or the task ended
    /// without it): queue its progress under the delivery policy.
    #[cold]
    pub(crate) fn durable_done(
        &self,
        task: &TaskRef,
        delivery: Delivery,
        scheduled: i64,
        ran: Option<bool>,
        last: bool,
        claim: Claim,
    ) {
        let Some(durable) = self.durable.as_deref() else {
            return;
        };
        // At most once: the cursor moved at the claim; only an end the
        // claim did not foresee is written now.
        let name = task.name().unwrap_or("");
        if claim == Claim::Failed {
            // It did not run and nothing of it is written (a one-shot's
            // record stays).
            if last {
                // Its engine task is gone; the stored one waits (listed,
                // not armed) for a restart or a registration of the same
                // definition.
                if let Some(d) = lock(&durable.defs).get_mut(name) {
                    d.id = None;
                    d.problem = Some(
                        "its last fire could not be claimed (store error); it runs after a restart, \
                         unless the failed claim reached the disk all the same"
                        .into(),
                    );
                }
            }
            return;
        }
        // A fenced claim is always completed (the backend's record of it
        // waits for its end).
        let fence = durable.take_fence(task, scheduled);
        let foreseen = last && claim == Claim::EndWritten;
        let write = fence != 0
            || (!foreseen && (last || (delivery == Delivery::AtLeastOnce && ran.is_some())));
        if !write {
            if foreseen {
                lock(&durable.defs).remove(name);
            }
            return;
        }
        let full = durable.push_done(FireDone {
            name: name_of(task),
            scheduled,
            delivery,
            last,
            fence,
            ok: ran == Some(true),
        });
        if full {
            let _ = durable.flush();
        }
        if last {
            if let Some(name) = task.name() {
                lock(&durable.defs).remove(name);
            }
        }
    }

    /// [`Core::arm_plan`] with the record's own schedule text parsed here.
    pub(crate) fn arm(
        self: &Arc<Self>,
        record: &TaskRecord,
        handler: Handler,
    ) -> Result<Option<TaskId>, Error> {
        let plan = Plan::from_text(&record.schedule)?;
        self.arm_plan(record, plan, handler)
    }

    /// Arms a stored task in the engine with its handler: named, its cursor
    /// restored, first due at the first instant after the cursor (however
    /// far in the past: the misfire policy then decides, exactly as for a
    /// late fire), or parked if paused. `Ok(None)`: the task has no instant
    /// left (it ended while the process was down).
    /// `plan` is `Plan::from_text(&record.schedule)`, read by the caller
    /// (once per distinct cron text of a batch or a recovery).
    pub(crate) fn arm_plan(
        self: &Arc<Self>,
        record: &TaskRecord,
        plan: Plan,
        handler: Handler,
    ) -> Result<Option<TaskId>, Error> {
        let cursor = record.cursor;
        let first = match &plan {
            Plan::Once(at) => (*at > cursor).then_some(*at),
            p => p.next_after(cursor),
        }
        .filter(|&at| record.until.is_none_or(|u| at <= u));
        let Some(first) = first else {
            return Ok(None);
        };
        let policies = Policies {
            misfire: record.misfire,
            overlap: record.overlap,
            jitter: record.jitter,
            until: record.until,
            times: record.times.and_then(std::num::NonZeroU64::new),
            durable: Some(record.delivery),
        };
        let payload = match record.payload.clone() {
            None => None,
            Some(PayloadRecord::Clear(b)) => Some(Payload::from_store(false, b, &record.name)?),
            Some(PayloadRecord::Sealed(b)) => Some(Payload::from_store(true, b, &record.name)?),
        };
        let callback: crate::engine::task::Callback = Box::new(move |ctx| handler(ctx));
        let task = self.new_task(
            Some(std::sync::Arc::from(record.name.as_str())),
            plan,
            first,
            callback,
            payload,
            policies,
        );
        if cursor > i64::MIN {
            task.advance_cursor(cursor);
        }
        if let crate::engine::registry::NameClaim::Taken =
            self.registry.claim_name(&task, false, &**self)
        {
            self.gone.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            return Err(Error::DuplicateName(record.name.clone()));
        }
        let id = task.id;
        if record.paused {
            self.park(task);
        } else {
            self.publish(task, first);
        }
        Ok(Some(id))
    }
}

impl Begun {
    /// This fire ends its task (no next instant): a one-shot, or the last
    /// run of its end policies.
    pub(crate) fn ends_task(&self) -> bool {
        self.next_instant().is_none() && !self.overlaps()
    }
}

/// A durable task's name as the store keys it.
fn name_of(task: &TaskRef) -> std::sync::Arc<str> {
    match task.name_arc() {
        Some(n) => n.clone(),
        // Durable tasks are always named (registration checks it).
        None => std::sync::Arc::from(""),
    }
}

/// Fences (a backend that hands them out): kept from the claim to the
/// completion, and set for the callback (see `run::link`).
impl Durable {
    fn keep_fences(&self, claims: &[FireClaim]) {
        if claims.iter().all(|c| c.fence == 0 || !c.won) {
            return;
        }
        let mut fences = lock(&self.fences);
        for c in claims.iter().filter(|c| c.won && c.fence != 0) {
            fences.insert((c.name.clone(), c.scheduled), c.fence);
        }
        // Release: pairs with the Acquire loads of the fires' threads
        // (which also see it through the hand-off of their fire).
        self.fenced.store(fences.len(), Ordering::Release);
    }

    /// Whether any fence is kept (see `fenced`). A fire's own fence was
    /// kept before its fire was handed to the thread that asks.
    fn any_fence(&self) -> bool {
        self.fenced.load(Ordering::Acquire) != 0
    }

    fn enter_fence(&self, begun: &Begun) -> Option<crate::run::link::FenceScope> {
        if !self.any_fence() {
            return None;
        }
        let name = begun.task.name_arc()?.clone();
        let fence = *lock(&self.fences).get(&(name, begun.scheduled))?;
        Some(crate::run::link::enter_fence(
            begun.task.id,
            begun.scheduled,
            fence,
        ))
    }

    fn take_fence(&self, task: &TaskRef, scheduled: i64) -> u64 {
        if !self.any_fence() {
            return 0;
        }
        let Some(name) = task.name_arc() else {
            return 0;
        };
        let mut fences = lock(&self.fences);
        let fence = fences.remove(&(name.clone(), scheduled)).unwrap_or(0);
        self.fenced.store(fences.len(), Ordering::Release);
        fence
    }
}
