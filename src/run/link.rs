//! The up-calls of a shared store ([`crate::store::StoreLink`]) and the
//! fence of the running durable fire.
//!
//! # Ground rules
//!
//! * A link holds its scheduler's core **weakly**: the core owns the store,
//!   the store owns the link, and a strong reference would keep both alive
//!   forever. Every call upgrades first and does nothing once it fails.
//! * Up-calls change a definition under the name's stripe, exactly like a
//!   local registration, so a registration racing a notification for the
//!   same name sees one order: whichever takes the stripe second finds the
//!   other's definition and, if it is the same one, does nothing. They
//!   never write the store (the change came from it).
//! * The fence of a durable fire reaches its callback through a
//!   thread-local set only around durable callbacks (a pass's durable fire
//!   on whichever thread runs it, or [`StoreLink::run_now`]); it is tagged
//!   with the task and instant, so a context only ever sees its own fence.
//!   Non-durable fires never touch it.

use crate::engine::task::TaskRef;
use crate::id::TaskId;
use crate::policy::{Overlap, SkipReason};
use crate::run::core::Core;
use crate::run::durable::{lock, Def};
use crate::run::report::Outcome;
use crate::store::{LinkTarget, RunNow, StoreLink, TaskRecord};
use crate::sync::Ordering;
use std::cell::Cell;
use std::sync::{Arc, Weak};

thread_local! {
    /// `(task id, scheduled instant, fence)` of the durable callback
    /// running on this thread; fence 0 = none.
    static FENCE: Cell<(u64, i64, u64)> = const { Cell::new((0, 0, 0)) };
}

/// Clears the thread's fence when the callback is over (also on unwind).
pub(crate) struct FenceScope(());

impl Drop for FenceScope {
    fn drop(&mut self) {
        FENCE.with(|f| f.set((0, 0, 0)));
    }
}

/// Sets the fence for the durable callback about to run on this thread.
pub(crate) fn enter_fence(task: TaskId, scheduled: i64, fence: u64) -> FenceScope {
    FENCE.with(|f| f.set((task.as_u64(), scheduled, fence)));
    FenceScope(())
}

/// The fence of the durable fire of `task` at `scheduled` running on this
/// thread, if any.
pub(crate) fn current_fence(task: TaskId, scheduled: i64) -> Option<u64> {
    let (id, at, fence) = FENCE.with(Cell::get);
    (fence != 0 && id == task.as_u64() && at == scheduled).then_some(fence)
}

/// Hands the store its link, once, at build.
pub(crate) fn attach(core: &Arc<Core>) {
    if let Some(durable) = core.durable.as_deref() {
        let target: Arc<dyn LinkTarget> = Arc::new(CoreLink {
            core: Arc::downgrade(core),
        });
        durable.store.attach(StoreLink::new(target));
    }
}

struct CoreLink {
    core: Weak<Core>,
}

/// Two definitions are the same, cursor aside.
fn same(a: &TaskRecord, b: &TaskRecord) -> bool {
    let mut b = b.clone();
    b.cursor = a.cursor;
    *a == b
}

impl LinkTarget for CoreLink {
    fn alive(&self) -> bool {
        self.core.strong_count() > 0
    }

    fn upsert(&self, mut record: TaskRecord) -> bool {
        let Some(core) = self.core.upgrade() else {
            return false;
        };
        let Some(durable) = core.durable.as_deref() else {
            return true;
        };
        let name = record.name.clone();
        let _stripe = durable.stripe(&name);
        let old = lock(&durable.defs).get(&name).cloned();
        if let Some(old) = &old {
            if same(&old.record, &record) {
                return true;
            }
            record.cursor = record.cursor.max(old.record.cursor);
            if old.id.is_some() {
                if let Some(task) = core.registry.by_name(&name) {
                    let _ = core.remove(&task);
                }
            }
        }
        let mut def = Def {
            record,
            id: None,
            problem: None,
        };
        if let Some(handler) = durable.handler(&def.record.handler) {
            match core.arm(&def.record, handler) {
                Ok(Some(id)) => def.id = Some(id),
                Ok(None) => {
                    // Nothing left to fire: the owner of the change ends it.
                    lock(&durable.defs).remove(&name);
                    return true;
                }
                Err(e) => {
                    tracing::error!(task = %name, error = %e, "cronlane: a task changed in the store could not be armed");
                    def.problem = Some(e.to_string());
                }
            }
        }
        lock(&durable.defs).insert(name, def);
        true
    }

    fn remove(&self, name: &str) -> bool {
        let Some(core) = self.core.upgrade() else {
            return false;
        };
        let Some(durable) = core.durable.as_deref() else {
            return true;
        };
        let _stripe = durable.stripe(name);
        let old = lock(&durable.defs).remove(name);
        if old.is_some_and(|d| d.id.is_some()) {
            if let Some(task) = core.registry.by_name(name) {
                let _ = core.remove(&task);
            }
        }
        true
    }

    fn runs(&self, name: &str) -> bool {
        let Some(core) = self.core.upgrade() else {
            return false;
        };
        let Some(durable) = core.durable.as_deref() else {
            return false;
        };
        let armed = lock(&durable.defs)
            .get(name)
            .is_some_and(|d| d.id.is_some());
        armed && durable_task(&core, name).is_some()
    }

    fn run_now(&self, name: &str, scheduled: i64, fence: u64) -> Option<RunNow> {
        let core = self.core.upgrade()?;
        let task = durable_task(&core, name)?;
        // The overlap policy, as a pass applies it: `running` counts the
        // runs started here (and, under `Allow`, a pass's too).
        let extras = task.extras_or_init();
        let running = extras.running.fetch_add(1, Ordering::AcqRel) + 1;
        let _count = Running(&extras.running);
        let overlaps = match task.policies().overlap {
            Overlap::Allow { max } => max.is_some_and(|m| running > m),
            _ => running > 1 || task.is_running(),
        };
        if overlaps {
            core.skipped(&task, scheduled, SkipReason::Overlap, 1, false);
            return Some(RunNow::Skipped);
        }
        let _fence = enter_fence(task.id, scheduled, fence);
        let started = core.clock.now_nanos();
        let outcome = core.run_callback(&task, scheduled, scheduled, started);
        Some(if outcome == Outcome::Fired {
            RunNow::Succeeded
        } else {
            RunNow::Failed
        })
    }
}

/// Drops a run from the task's running count (also on unwind).
struct Running<'a>(&'a crate::sync::AtomicU32);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The live engine task of a durable task's name.
fn durable_task(core: &Core, name: &str) -> Option<TaskRef> {
    core.registry
        .by_name(name)
        .filter(|t| t.policies().durable.is_some())
}
