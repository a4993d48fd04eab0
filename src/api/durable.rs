//! Durable tasks, the public side: handlers by name, durable registration
//! (one task or a batch), the management calls' store writes, and the list
//! of stored tasks. The run side (arming, fire progress) is
//! `run::durable`; the seam and its record are [`crate::store`].
//!
//! Every durable change follows one order under the task name's stripe:
//! validate, write the store (durable when it returns), then change the
//! engine. A store failure returns `Error::Store` with nothing changed; an
//! engine refusal after the write (the task went away meanwhile) is put
//! right in the store before the error returns.

use crate::api::scheduler::{key_error, Scheduler, TaskBuilder};
use crate::engine::task::{FireContext, TaskRef, TaskResult};
use crate::error::Error;
use crate::id::{KeyRef, TaskId};
use crate::policy::Delivery;
use crate::run::durable::{lock, Def, Handler};
use crate::schedule::Plan;
use crate::store::{Op, PayloadRecord, TaskRecord};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Stored tasks armed per lock of every stripe when a handler arrives.
const ARM_CHUNK: usize = 1024;

/// The plan of a stored schedule text; cron texts are read once into
/// `plans` (intervals and one-shots are a few integers to read).
fn plan_of(plans: &mut HashMap<String, Plan>, text: &str) -> Result<Plan, Error> {
    if !text.starts_with("cron ") {
        return Plan::from_text(text);
    }
    if let Some(plan) = plans.get(text) {
        return Ok(plan.clone());
    }
    let plan = Plan::from_text(text)?;
    plans.insert(text.to_owned(), plan.clone());
    Ok(plan)
}

/// A management call on a durable task.
pub(crate) enum Change {
    Remove,
    Pause,
    Resume,
    /// The new plan and its first instant from now.
    Reschedule(Plan, i64),
}

/// A durable task as the store holds it ([`Scheduler::durable_tasks`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DurableTask {
    /// Its stable name.
    pub name: String,
    /// The handler it runs.
    pub handler: String,
    /// Its schedule, as stored (see [`TaskRecord::schedule`]).
    pub schedule: String,
    /// Paused in the store.
    pub paused: bool,
    /// Its engine id while armed: `None` while its handler is not
    /// registered (it is kept, and fires once the handler is), or when it
    /// could not be armed (`problem`).
    pub id: Option<TaskId>,
    /// Why it is not armed although its handler is registered (say, its
    /// schedule text is damaged): the record is kept as it is.
    pub problem: Option<String>,
}

impl TaskBuilder<'_> {
    /// Makes the task durable: it runs the handler registered under
    /// `handler` ([`Scheduler::handler`]), and its definition is kept in the
    /// scheduler's store before [`register`](Self::register) returns, so it
    /// survives restarts, crashes and deploys. It needs a [`name`](Self::name),
    /// its identity across restarts. Finish with `.register()`.
    pub fn durable(mut self, handler: impl Into<String>) -> Self {
        self.handler = Some(handler.into());
        self
    }

    /// A durable task's delivery policy (default [`Delivery::AtLeastOnce`]).
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// Registers a durable task (see [`durable`](Self::durable)). Registering
    /// the same name again with the same definition (as a program does at
    /// every start) returns the stored task's id and keeps its cursor; a
    /// different definition is [`Error::DuplicateName`] unless
    /// [`replace_existing`](Self::replace_existing), which stores the new one
    /// (instants at or before the old cursor still never fire again).
    pub fn register(self) -> Result<TaskId, Error> {
        let scheduler = self.scheduler;
        scheduler.register_all([self]).map(|ids| ids[0])
    }
}

/// What a registration finds under its name.
enum Existing {
    /// Nothing stored: write and arm it.
    New,
    /// Stored as it is, and armed.
    Armed(TaskId),
    /// Stored as it is, waiting to be armed.
    Waiting,
}

/// A validated durable registration, before it is written.
struct Pending {
    record: TaskRecord,
    relative: bool,
    replace: bool,
    handler: Handler,
}

impl Scheduler {
    /// Registers `f` as the handler named `name`, which durable tasks run
    /// ([`TaskBuilder::durable`]). Stored tasks that name it and were waiting
    /// for it are armed now: each fires next at the first instant after its
    /// cursor, and instants missed while the process was down go through
    /// its misfire policy. Returns how many stored tasks it armed.
    pub fn handler<F, R>(&self, name: &str, f: F) -> Result<usize, Error>
    where
        F: Fn(&FireContext<'_>) -> R + Send + Sync + 'static,
        R: TaskResult,
    {
        let durable = self.core.durable_or(name)?;
        let handler: Handler = std::sync::Arc::new(move |ctx| f(ctx).into_outcome());
        if !durable.add_handler(name, handler.clone()) {
            return Err(Error::DuplicateHandler(name.to_owned()));
        }
        let mut waiting: Vec<String> = lock(&durable.defs)
            .iter()
            .filter(|(_, d)| d.id.is_none() && d.record.handler == name)
            .map(|(n, _)| n.clone())
            .collect();
        // In name order: the engine's name index is an ordered map, and
        // inserting in its order keeps its search paths in cache (hash order
        // is random: a cache miss per level at 1M tasks).
        waiting.sort_unstable();
        let mut armed = 0;
        // Each distinct cron text is read once (a program's tasks share a
        // few schedules; the plans share one parsed expression).
        let mut plans: HashMap<String, Plan> = HashMap::new();
        for chunk in waiting.chunks(ARM_CHUNK) {
            // Every stripe, in order, as a batch registration takes them:
            // no definition write for these names runs meanwhile, and
            // `defs` is locked once per chunk, not per task (arming makes
            // no store call).
            let _stripes = durable.all_stripes();
            let mut ended = Vec::new();
            {
                let mut defs = lock(&durable.defs);
                for name in chunk {
                    // Still waiting (nothing registered or removed it meanwhile)?
                    let Some(def) = defs.get_mut(name).filter(|d| d.id.is_none()) else {
                        continue;
                    };
                    let armed_now = plan_of(&mut plans, &def.record.schedule)
                        .and_then(|plan| self.core.arm_plan(&def.record, plan, handler.clone()));
                    match armed_now {
                        Ok(Some(id)) => {
                            armed += 1;
                            def.id = Some(id);
                            def.problem = None;
                        }
                        // Ended while the process was down: its last instant
                        // was before its cursor or past its end.
                        Ok(None) => ended.push(name.clone()),
                        Err(e) => {
                            tracing::error!(task = %name, error = %e, "cronlane: stored task could not be armed; kept in the store");
                            def.problem = Some(e.to_string());
                        }
                    }
                }
            }
            if !ended.is_empty() {
                let ops = ended.iter().cloned().map(Op::Delete).collect();
                if durable.write(ops).is_ok() {
                    let mut defs = lock(&durable.defs);
                    for name in &ended {
                        defs.remove(name);
                    }
                }
            }
        }
        Ok(armed)
    }

    /// Registers durable tasks in one store transaction: all are stored, or
    /// none (the first error is returned and nothing changed). Each builder
    /// must be [`durable`](TaskBuilder::durable) and named.
    pub fn register_all<'a>(
        &'a self,
        tasks: impl IntoIterator<Item = TaskBuilder<'a>>,
    ) -> Result<Vec<TaskId>, Error> {
        let specs: Vec<TaskBuilder<'a>> = tasks.into_iter().collect();
        let mut pending = Vec::with_capacity(specs.len());
        for spec in specs {
            pending.push(self.validate_durable(spec)?);
        }
        let Some(first) = pending.first() else {
            return Ok(Vec::new());
        };
        let durable = self.core.durable_or(&first.record.name)?;
        // One name, one stripe; a batch takes every stripe, in order.
        let _stripes: Vec<_> = if pending.len() == 1 {
            vec![durable.stripe(&pending[0].record.name)]
        } else {
            durable.all_stripes()
        };
        let mut seen = std::collections::HashSet::with_capacity(pending.len());
        for p in &pending {
            if !seen.insert(p.record.name.as_str()) {
                return Err(Error::DuplicateName(p.record.name.clone()));
            }
        }
        // What is already stored or registered under each name.
        let mut ids: Vec<Existing> = Vec::with_capacity(pending.len());
        let mut replaced: Vec<Option<TaskRef>> = Vec::with_capacity(pending.len());
        let mut ops = Vec::with_capacity(pending.len());
        {
            let defs = lock(&durable.defs);
            for p in &mut pending {
                let name = p.record.name.clone();
                let live = self.core.registry.by_name(&name);
                match defs.get(&name) {
                    Some(def) if self.same_definition(&def.record, p) => {
                        // Re-registered as it is stored: keep it.
                        ids.push(match def.id {
                            Some(id) => Existing::Armed(id),
                            None => Existing::Waiting,
                        });
                        replaced.push(None);
                        continue;
                    }
                    Some(def) if p.replace => {
                        p.record.cursor = p.record.cursor.max(def.record.cursor);
                    }
                    Some(_) => return Err(Error::DuplicateName(name)),
                    None if live.is_some() && !p.replace => {
                        return Err(Error::DuplicateName(name));
                    }
                    None => {}
                }
                ids.push(Existing::New);
                replaced.push(live);
                ops.push(Op::Put(p.record.clone()));
            }
        }
        if !ops.is_empty() {
            durable.write(ops)?;
        }
        let mut out = Vec::with_capacity(pending.len());
        // Each distinct cron text of the batch is read back once.
        let mut plans = HashMap::new();
        for ((p, id), old) in pending.into_iter().zip(ids).zip(replaced) {
            match id {
                Existing::Armed(id) => out.push(id),
                Existing::Waiting => {
                    // Stored as it is and not armed yet (its handler came
                    // later): arm the stored one, cursor and all.
                    let def = lock(&durable.defs).get(&p.record.name).cloned();
                    let record = def.map_or(p.record, |d| d.record);
                    out.push(self.arm_new(record, p.handler, &mut plans)?);
                }
                Existing::New => {
                    if let Some(old) = old {
                        let _ = self.core.remove(&old);
                    }
                    out.push(self.arm_new(p.record, p.handler, &mut plans)?);
                }
            }
        }
        Ok(out)
    }

    /// Arms a task whose definition is stored, from its stored schedule
    /// text (`plans`: the cron texts this batch has read); on failure the
    /// definition is taken out of the store again.
    fn arm_new(
        &self,
        record: TaskRecord,
        handler: Handler,
        plans: &mut HashMap<String, Plan>,
    ) -> Result<TaskId, Error> {
        let durable = self.core.durable_or(&record.name)?;
        let name = record.name.clone();
        let armed = plan_of(plans, &record.schedule)
            .and_then(|plan| self.core.arm_plan(&record, plan, handler));
        match armed {
            Ok(Some(id)) => {
                lock(&durable.defs).insert(
                    name,
                    Def {
                        record,
                        id: Some(id),
                        problem: None,
                    },
                );
                Ok(id)
            }
            Ok(None) => {
                let _ = durable.write(vec![Op::Delete(name.clone())]);
                lock(&durable.defs).remove(&name);
                Err(Error::NeverFires(record.schedule))
            }
            Err(e) => {
                let _ = durable.write(vec![Op::Delete(name.clone())]);
                lock(&durable.defs).remove(&name);
                Err(e)
            }
        }
    }

    /// Checks one durable registration and builds its record.
    fn validate_durable(&self, spec: TaskBuilder<'_>) -> Result<Pending, Error> {
        let core = &self.core;
        let name = spec.name.clone().ok_or(Error::DurableNeedsName)?;
        if name.is_empty() {
            return Err(Error::EmptyName);
        }
        let durable = core.durable_or(&name)?;
        let Some(handler_name) = spec.handler.clone() else {
            return Err(Error::NotDurable {
                name,
                why: "register() is for durable tasks: call .durable(handler) first, or .run(..)",
            });
        };
        let handler = durable
            .handler(&handler_name)
            .ok_or_else(|| Error::UnknownHandler(handler_name.clone()))?;
        if spec.times.is_some() {
            return Err(Error::NotDurable {
                name,
                why: "times(n) is not kept across restarts; give the task an end with until(t)",
            });
        }
        let now = core.clock.now_nanos();
        let relative = spec.schedule.is_relative();
        let (plan, first) = spec.schedule.resolve(now, core.tz)?;
        let until = match spec.until {
            None => None,
            Some(t) => Some(to_nanos(t)?),
        };
        if until.is_some_and(|u| first > u) {
            return Err(Error::NeverFires(spec.schedule.to_string()));
        }
        let payload = match spec.payload {
            None => None,
            Some(bytes) => {
                #[cfg(not(feature = "seal"))]
                if !core.test_mode {
                    return Err(Error::SealingDisabled);
                }
                if !core.test_mode && !core.seal.has_ring() {
                    return Err(Error::NoKey);
                }
                let sealed = core
                    .seal
                    .durable_payload(bytes, core.test_mode, &name)
                    .map_err(|e| match e {
                        crate::seal::SealError::NoKey => Error::NoKey,
                        e => Error::Seal(e),
                    })?;
                Some(match sealed.to_store() {
                    (true, b) => PayloadRecord::Sealed(b),
                    (false, b) => PayloadRecord::Clear(b),
                })
            }
        };
        let record = TaskRecord {
            name,
            handler: handler_name,
            schedule: plan.to_text(),
            misfire: spec.misfire.unwrap_or(core.misfire),
            overlap: spec.overlap,
            jitter: crate::clock::duration_nanos(spec.jitter),
            until,
            times: None,
            delivery: spec.delivery,
            paused: false,
            // Everything before the first instant is not a missed fire.
            cursor: first.saturating_sub(1),
            payload,
        };
        Ok(Pending {
            record,
            relative,
            replace: spec.replace,
            handler,
        })
    }

    /// Whether a stored definition is the one being registered: the same
    /// handler, policies and payload, and the same schedule (for a schedule
    /// relative to registration — an interval without `starting_at`, a
    /// one-shot `after` a delay — the same kind and period: its stored
    /// anchor stands).
    fn same_definition(&self, old: &TaskRecord, new: &Pending) -> bool {
        let n = &new.record;
        let schedule = if new.relative {
            let kind = |s: &str| s.split(" from ").next().map(str::to_owned);
            match n.schedule.split(' ').next() {
                Some("once") => old.schedule.starts_with("once "),
                _ => kind(&old.schedule) == kind(&n.schedule),
            }
        } else {
            old.schedule == n.schedule
        };
        schedule
            && old.handler == n.handler
            && old.misfire == n.misfire
            && old.overlap == n.overlap
            && old.jitter == n.jitter
            && old.until == n.until
            && old.delivery == n.delivery
            && self.same_payload(old, n)
    }

    fn same_payload(&self, old: &TaskRecord, new: &TaskRecord) -> bool {
        let open = |p: &PayloadRecord| -> Option<Vec<u8>> {
            let payload = match p {
                PayloadRecord::Clear(b) => return Some(b.clone()),
                PayloadRecord::Sealed(b) => {
                    crate::seal::Payload::from_store(true, b.clone(), &old.name).ok()?
                }
            };
            self.core
                .seal
                .open(&payload)
                .ok()
                .map(|o| o.bytes().to_vec())
        };
        match (&old.payload, &new.payload) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                let (a, b) = (open(a), open(b));
                a.is_some() && a == b
            }
            _ => false,
        }
    }

    /// Remove, pause, resume or reschedule a durable task: store first,
    /// then the engine.
    pub(super) fn manage_durable(
        &self,
        task: &TaskRef,
        key: KeyRef<'_>,
        change: Change,
    ) -> Result<(), Error> {
        let name = task.name().unwrap_or_default().to_owned();
        let durable = self.core.durable_or(&name)?;
        let _stripe = durable.stripe(&name);
        let Some(mut def) = lock(&durable.defs).get(&name).cloned() else {
            return Err(key_error(key));
        };
        if def.id != Some(task.id) {
            return Err(key_error(key));
        }
        let engine = match change {
            Change::Remove => {
                durable.write(vec![Op::Delete(name.clone())])?;
                lock(&durable.defs).remove(&name);
                return self.core.remove(task).map_err(|()| key_error(key));
            }
            Change::Pause => {
                def.record.paused = true;
                durable.write(vec![Op::Put(def.record.clone())])?;
                self.core.pause(task)
            }
            Change::Resume => {
                def.record.paused = false;
                // Effective from now, as the engine's resume: the instants
                // skipped while paused are not missed fires after a restart.
                let now = self.core.clock.now_nanos();
                let first = Plan::from_text(&def.record.schedule)
                    .ok()
                    .and_then(|p| p.first_after_cursor(now, def.record.cursor));
                if let Some(first) = first {
                    def.record.cursor = def.record.cursor.max(first.saturating_sub(1));
                }
                durable.write(vec![Op::Put(def.record.clone())])?;
                self.core.resume(task)
            }
            Change::Reschedule(plan, first) => {
                def.record.schedule = plan.to_text();
                // Effective from now: instants of the new plan before its
                // first are not missed fires after a restart.
                def.record.cursor = def.record.cursor.max(first.saturating_sub(1));
                durable.write(vec![Op::Put(def.record.clone())])?;
                self.core.reschedule(task, plan)
            }
        };
        match engine {
            Ok(()) => {
                lock(&durable.defs).insert(name, def);
                Ok(())
            }
            Err(()) => {
                // Gone meanwhile (removed, or it ended): so is its record.
                let _ = durable.write(vec![Op::Delete(name.clone())]);
                lock(&durable.defs).remove(&name);
                Err(key_error(key))
            }
        }
    }

    /// `remove` of a stored task that is not armed (its handler is not
    /// registered): `None` if there is no such task.
    pub(super) fn remove_unarmed(&self, key: KeyRef<'_>) -> Option<Result<(), Error>> {
        let KeyRef::Name(name) = key else {
            return None;
        };
        let durable = self.core.durable.as_deref()?;
        let _stripe = durable.stripe(name);
        let unarmed = lock(&durable.defs)
            .get(name)
            .is_some_and(|d| d.id.is_none());
        if !unarmed {
            return None;
        }
        Some(
            durable
                .write(vec![Op::Delete(name.to_owned())])
                .map_err(Error::from)
                .map(|()| {
                    lock(&durable.defs).remove(name);
                }),
        )
    }

    /// Rewrites, in one store commit, every stored payload that is not
    /// sealed with the ring's current key: armed tasks with their (just
    /// re-sealed) in-memory record, tasks waiting for a handler by opening
    /// and sealing again. Records that do not open are left as they are.
    #[cfg(feature = "seal")]
    pub(super) fn reseal_stored(&self) -> Result<usize, Error> {
        let Some(durable) = self.core.durable.as_deref() else {
            return Ok(0);
        };
        let _stripes = durable.all_stripes();
        let defs: Vec<Def> = lock(&durable.defs).values().cloned().collect();
        let mut puts = Vec::new();
        for mut def in defs {
            let Some(PayloadRecord::Sealed(old)) = &def.record.payload else {
                continue;
            };
            let live = def
                .id
                .and_then(|id| self.core.find(KeyRef::Id(id)).ok())
                .and_then(|t| t.payload().map(crate::seal::Payload::to_store));
            let new = match live {
                Some((true, bytes)) => bytes,
                _ => {
                    let Ok(payload) =
                        crate::seal::Payload::from_store(true, old.clone(), &def.record.name)
                    else {
                        continue;
                    };
                    let Ok(plain) = self.core.seal.open(&payload).map(|o| o.bytes().to_vec())
                    else {
                        continue;
                    };
                    match self
                        .core
                        .seal
                        .durable_payload(plain, false, &def.record.name)?
                        .to_store()
                    {
                        (true, bytes) => bytes,
                        (false, _) => continue,
                    }
                }
            };
            if &new != old && self.core.seal.current_key_of(&new) {
                def.record.payload = Some(PayloadRecord::Sealed(new));
                puts.push(def);
            }
        }
        let n = puts.len();
        if n > 0 {
            durable.write(puts.iter().map(|d| Op::Put(d.record.clone())).collect())?;
            let mut defs = lock(&durable.defs);
            for d in puts {
                if let Some(cur) = defs.get_mut(&d.record.name) {
                    cur.record.payload = d.record.payload;
                }
            }
        }
        Ok(n)
    }

    /// Every durable task this scheduler's store holds, armed or waiting for
    /// its handler, ordered by name. Empty without a store.
    pub fn durable_tasks(&self) -> Vec<DurableTask> {
        let Some(durable) = self.core.durable.as_deref() else {
            return Vec::new();
        };
        let mut out: Vec<DurableTask> = lock(&durable.defs)
            .values()
            .map(|d| DurableTask {
                name: d.record.name.clone(),
                handler: d.record.handler.clone(),
                schedule: d.record.schedule.clone(),
                paused: d.record.paused,
                id: d.id,
                problem: d.problem.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Writes the fire progress still waiting (at-least-once completions
    /// of fires that ran on a pool since the last pass). A pass writes its
    /// own; call this before a planned exit to lose nothing.
    pub fn flush_store(&self) -> Result<(), Error> {
        match self.core.durable.as_deref() {
            Some(d) => d.flush().map_err(Error::from),
            None => Ok(()),
        }
    }
}

fn to_nanos(t: DateTime<Utc>) -> Result<i64, Error> {
    crate::clock::to_nanos(t).ok_or_else(|| Error::OutOfRange(t.to_rfc3339()))
}

impl FireContext<'_> {
    /// The fencing token of this fire, from a store that hands them out (a
    /// cluster backend bumps it on every claim and takeover, so a run that
    /// was taken over carries an older one); `None` for a non-durable fire
    /// or a store without fences. A callee that dedupes on
    /// `(task, scheduled, fence)` gets exactly-once effects.
    pub fn fence(&self) -> Option<u64> {
        crate::run::link::current_fence(self.task.id, self.scheduled)
    }
}
