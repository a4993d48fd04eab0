//! Lookup of live tasks by id and by name.
//!
//! # Ground rules
//!
//! * The **name index** is written at registration (uniqueness must be
//!   decided there, synchronously) and cleaned by whoever sets a task's
//!   `REMOVED` bit. An entry is only ever removed if it still points at the
//!   task being cleaned up, so a replacement under the same name survives the
//!   clean-up of the task it replaced. A task only ever enters the index by
//!   `get_or_insert`; a replacement that finds another holder takes that
//!   holder's entry out (`remove_if`, which succeeds for one thread only),
//!   removes the holder if it did, and tries again: concurrent replacers
//!   never leave two live tasks under one name.
//! * The **id index** holds recurring tasks and re-planned one-shots. It is
//!   written lazily, by the thread that drains a task from the intake queue
//!   (recurring tasks), or by whoever re-plans a one-shot (a manager, a
//!   released fire), so registration stays a queue push and a one-shot's fire
//!   pays no index removal. A one-shot waiting at its first timeline entry is
//!   found there instead: its `TaskId` carries that entry's key
//!   ([`Timeline::probe`](crate::timeline::Timeline::probe)). A one-shot that
//!   is already due when drained is claimed on the spot: by the time anyone
//!   could look it up, its fire is under way, and it is not found by id.
//!   Lookups by id that miss first wait for the intake hand-over to settle
//!   (see [`Timeline::settle`](crate::timeline::Timeline::settle)).
//! * Publishing into either index is followed by
//!   [`Task::removed_after_publish`]: if the task was removed meanwhile, the
//!   publisher takes its entry back itself.

use crate::sync::{Arc, OrderedMap};
use crate::task::{Task, TaskId, TaskRef};

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

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            by_id: OrderedMap::new(),
            by_name: OrderedMap::new(),
        }
    }

    /// Claims `task`'s name for it. With `replace`, each live holder taken
    /// out of the index for it is handed to `displace` (the caller removes
    /// it) before the next try: exactly one of several concurrent replacers
    /// takes out a given holder, so none is left live under the name.
    pub(crate) fn claim_name(
        &self,
        task: &TaskRef,
        replace: bool,
        mut displace: impl FnMut(&TaskRef),
    ) -> NameClaim {
        let Some(name) = task.name_arc().cloned() else {
            return NameClaim::Claimed;
        };
        loop {
            #[cfg(cronlane_loom)]
            if replace && crate::__loom::broken(&crate::__loom::BREAK_REPLACE) {
                // Broken twin: read the holder, then insert (two steps).
                let old = self.by_name.get(&name);
                self.by_name.insert(name.clone(), task.clone());
                if let Some(old) = old.filter(|o| !Arc::ptr_eq(o, task)) {
                    displace(&old);
                }
                return NameClaim::Claimed;
            }
            let holder = self.by_name.get_or_insert(name.clone(), task.clone());
            if Arc::ptr_eq(&holder, task) {
                return NameClaim::Claimed;
            }
            if holder.is_removed() || replace {
                // A finished task whose clean-up has not reached the index
                // yet, or the task to replace: take its entry out and try
                // again. Only the thread whose removal of the entry
                // succeeded displaces the holder.
                let out = self
                    .by_name
                    .remove_if(&name, |cur| Arc::ptr_eq(cur, &holder));
                if out && replace {
                    displace(&holder);
                }
                continue;
            }
            return NameClaim::Taken;
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
