//! Lookup of live tasks by id and by name.
//!
//! # Ground rules
//!
//! * The **name index** is written at registration (uniqueness must be
//!   decided there, synchronously) and cleaned by whoever sets a task's
//!   `REMOVED` bit. An entry is only ever removed if it still points at the
//!   task being cleaned up, so a replacement under the same name survives the
//!   clean-up of the task it replaced.
//! * The **id index** holds recurring tasks and re-planned one-shots. It is
//!   written lazily, by the thread that drains a task from the intake queue
//!   (recurring tasks), or by whoever re-plans a one-shot (a manager, a
//!   released fire), so registration stays a queue push and a one-shot's fire
//!   pays no index removal. A one-shot waiting at its first timeline entry is
//!   found there instead: its `TaskId` carries that entry's key
//!   ([`Timeline::probe`](crate::engine::timeline::Timeline::probe)). A one-shot that
//!   is already due when drained is claimed on the spot: by the time anyone
//!   could look it up, its fire is under way, and it is not found by id.
//!   Lookups by id that miss first wait for the intake hand-over to settle
//!   (see [`Timeline::settle`](crate::engine::timeline::Timeline::settle)).
//! * Publishing into either index is followed by
//!   [`Task::removed_after_publish`]: if the task was removed meanwhile, the
//!   publisher takes its entry back itself.

use crate::engine::task::{Task, TaskRef};
use crate::id::TaskId;
use crate::sync::{Arc, OrderedMap};

pub(crate) struct Registry {
    by_id: OrderedMap<u64, TaskRef>,
    by_name: OrderedMap<std::sync::Arc<str>, TaskRef>,
}

/// Outcome of claiming a name.
pub(crate) enum NameClaim {
    /// The name now maps to the new task.
    Claimed,
    /// The name maps to another live task.
    Taken,
}

/// What a replacing registration does with a task it took the name from.
pub(crate) trait Displaced {
    /// Removes `old`, whose name index entry this thread just took out.
    fn displace(&self, old: &TaskRef);
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            by_id: OrderedMap::new(),
            by_name: OrderedMap::new(),
        }
    }

    /// Claims `task`'s name for it. With `replace`, each live holder met is
    /// displaced: the thread whose `remove_if` takes the holder's entry out
    /// (exactly one can) hands it to `displaced` to be removed, and tries
    /// again. The name's entry is only ever taken out by the thread that
    /// then removes its task, and only ever put in if absent, so two
    /// replacers racing cannot both keep a task under one name: every task
    /// that ever held the name is either still its holder or removed.
    pub(crate) fn claim_name(
        &self,
        task: &TaskRef,
        replace: bool,
        displaced: &impl Displaced,
    ) -> NameClaim {
        let Some(name) = task.name_arc().cloned() else {
            return NameClaim::Claimed;
        };
        loop {
            let holder = self.by_name.get_or_insert(name.clone(), task.clone());
            if Arc::ptr_eq(&holder, task) {
                return NameClaim::Claimed;
            }
            let finished = holder.is_removed();
            if !finished && !replace {
                return NameClaim::Taken;
            }
            // A finished task whose clean-up has not reached the index yet,
            // or a live one being replaced: take its entry out and try again.
            #[cfg(cronlane_loom)]
            if replace && crate::__loom::broken(&crate::__loom::BREAK_REPLACE) {
                // Broken twin: read, then overwrite (two steps).
                self.by_name.insert(name.clone(), task.clone());
                displaced.displace(&holder);
                return NameClaim::Claimed;
            }
            if self
                .by_name
                .remove_if(&name, |cur| Arc::ptr_eq(cur, &holder))
                && !finished
            {
                displaced.displace(&holder);
            }
        }
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<TaskRef> {
        self.by_name.get(name).filter(|t| !t.is_removed())
    }

    pub(crate) fn by_id(&self, id: TaskId) -> Option<TaskRef> {
        self.by_id.get(&id.n).filter(|t| !t.is_removed())
    }

    /// Indexes a drained task by id (once).
    pub(crate) fn index(&self, task: &TaskRef) {
        task.set_in_registry();
        self.by_id.insert(task.id.n, task.clone());
        if task.removed_after_publish() {
            self.forget(task);
        }
    }

    /// Indexes `task` by id unless it already is: called by whoever moves a
    /// one-shot off its first timeline entry (a manager re-planning it, a
    /// released fire), so that it stays findable by id.
    pub(crate) fn index_once(&self, task: &TaskRef) {
        if !task.in_registry() {
            self.index(task);
        }
    }

    /// Drops every index entry that points at `task`.
    pub(crate) fn forget(&self, task: &Task) {
        if task.in_registry() {
            self.by_id
                .remove_if(&task.id.n, |cur| std::ptr::eq(&**cur, task));
        }
        if let Some(name) = task.name_arc() {
            #[cfg(cronlane_loom)]
            if crate::__loom::broken(&crate::__loom::BREAK_NAME_FORGET) {
                // Broken twin: whoever holds the name loses it.
                self.by_name.remove_if(name, |_| true);
                return;
            }
            self.by_name
                .remove_if(name, |cur| std::ptr::eq(&**cur, task));
        }
    }

    pub(crate) fn for_each(&self, mut f: impl FnMut(&TaskRef)) {
        self.by_id.for_each(|_, t| f(t));
    }

    /// Named tasks not (yet) in the id index, for listings.
    pub(crate) fn for_each_named_unindexed(&self, mut f: impl FnMut(&TaskRef)) {
        self.by_name.for_each(|_, t| {
            if !t.in_registry() {
                f(t)
            }
        });
    }
}
