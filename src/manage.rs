//! Managing live tasks: remove, pause, resume, reschedule.
//!
//! Pause, resume and reschedule of one task are serialised by the task's
//! `manage` guard (firing threads never take it; `remove` needs none); each
//! then settles its race with firing threads by CAS on the task's state
//! word. See the ground rules in [`crate::task`].

use crate::schedule::Plan;
use crate::scheduler::Core;
use crate::task::{
    gen_of, phase_of, word, TaskRef, DIRTY, IDLE, PAUSED, REMOVED, RUNNING, SCHEDULED,
};

impl Core {
    /// Removal takes no `manage` guard: it is one `fetch_or` that every
    /// other transition fails against, and whoever publishes an entry or an
    /// index slot for the task checks `REMOVED` afterwards
    /// ([`Task::removed_after_publish`]), so a manager racing with it cannot
    /// leave anything behind. (Taking the guard would also allocate the
    /// cold block of a plain one-shot just to remove it.)
    pub(crate) fn remove(&self, task: &TaskRef) -> Result<(), ()> {
        let prev = task.mark_removed();
        if prev & REMOVED != 0 {
            return Err(());
        }
        self.cleanup(task, true);
        Ok(())
    }

    pub(crate) fn pause(&self, task: &TaskRef) -> Result<(), ()> {
        let _guard = task.manage();
        self.registry.index_once(task);
        loop {
            let cur = task.load();
            if cur & REMOVED != 0 {
                return Err(());
            }
            if cur & PAUSED != 0 {
                return Ok(());
            }
            let scheduled = phase_of(cur) == SCHEDULED;
            let to = if scheduled {
                word(gen_of(cur) + 1, IDLE | PAUSED)
            } else {
                cur | PAUSED
            };
            if task.transition(cur, to).is_ok() {
                if scheduled && self.timeline.unlink(task) {
                    self.runner.wake();
                }
                return Ok(());
            }
        }
    }

    pub(crate) fn resume(&self, task: &TaskRef) -> Result<(), ()> {
        let _guard = task.manage();
        self.registry.index_once(task);
        loop {
            let cur = task.load();
            if cur & REMOVED != 0 {
                return Err(());
            }
            if cur & PAUSED == 0 {
                return Ok(());
            }
            if phase_of(cur) != IDLE {
                // Claimed or running: the fire's owner carries on unpaused.
                if task.transition(cur, cur & !PAUSED).is_ok() {
                    return Ok(());
                }
                continue;
            }
            let now = self.clock.now_nanos();
            let gen = gen_of(cur) + 1;
            match task.with_plan(|p| p.first(now)) {
                Some(at) => {
                    if task.transition(cur, word(gen, SCHEDULED)).is_ok() {
                        if self.timeline.insert(task, gen, at, self.due(task, at)) {
                            self.runner.wake();
                        }
                        return Ok(());
                    }
                }
                None => {
                    if task.transition(cur, word(gen, IDLE | REMOVED)).is_ok() {
                        self.cleanup(task, false);
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Gives `task` the plan `plan`, whose first instant is `at`.
    pub(crate) fn reschedule(&self, task: &TaskRef, plan: Plan, at: i64) -> Result<(), ()> {
        let _guard = task.manage();
        self.registry.index_once(task);
        task.set_replan(plan);
        loop {
            let cur = task.load();
            if cur & REMOVED != 0 {
                return Err(());
            }
            let gen = gen_of(cur) + 1;
            match phase_of(cur) {
                RUNNING => {
                    #[cfg(cronlane_loom)]
                    if crate::__loom::broken(&crate::__loom::BREAK_DIRTY) {
                        // Broken twin: the fire's owner is not told.
                        return Ok(());
                    }
                    if task.transition(cur, cur | DIRTY).is_ok() {
                        return Ok(());
                    }
                }
                IDLE => {
                    // Stays idle (paused) under the new plan: `resume` puts
                    // it on the timeline.
                    let to = word(gen, IDLE | PAUSED);
                    #[cfg(cronlane_loom)]
                    let to = if crate::__loom::broken(&crate::__loom::BREAK_RESCHEDULE_IDLE) {
                        // Broken twin: the phase is dropped (the old bug).
                        word(gen, crate::task::Task::flags(cur))
                    } else {
                        to
                    };
                    if task.transition(cur, to).is_ok() {
                        return Ok(());
                    }
                }
                _ if cur & PAUSED != 0 => {
                    // Claimed while paused: stays paused, under the new plan.
                    if task.transition(cur, word(gen, IDLE | PAUSED)).is_ok() {
                        return Ok(());
                    }
                }
                phase => {
                    if task.transition(cur, word(gen, SCHEDULED)).is_ok() {
                        if phase == SCHEDULED && self.timeline.unlink(task) {
                            self.runner.wake();
                        }
                        if self.timeline.insert(task, gen, at, self.due(task, at)) {
                            self.runner.wake();
                        }
                        return Ok(());
                    }
                }
            }
        }
    }
}
