//! Managing live tasks: remove, pause, resume, reschedule.
//!
//! Pause, resume and reschedule of one task are serialised by the task's
//! `manage` guard (firing threads never take it; `remove` needs none); each
//! then settles its race with firing threads by CAS on the task's state
//! word. See the ground rules in [`crate::engine::task`].

use crate::engine::task::{
    gen_of, phase_of, word, Task, TaskRef, DIRTY, IDLE, PAUSED, REMOVED, RUNNING, SCHEDULED,
};
use crate::run::core::Core;
use crate::schedule::Plan;

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
        #[cfg(feature = "tokio")]
        self.cancel_removed(task);
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
            let cursor = task.cursor();
            let until = task.policies().until;
            let first = task.with_plan(|p| p.first_after_cursor(now, cursor));
            match first.filter(|&at| until.is_none_or(|u| at <= u)) {
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

    /// Gives `task` the plan `plan`. Its first instant is computed here,
    /// under the guard, from a clock read taken after the guard and the
    /// task's cursor read after the state word: a fire that started before
    /// either is then seen (its cursor, or its `RUNNING` phase), so the new
    /// plan never starts at or before an instant that already ran.
    ///
    /// The new plan is stored only *after* the state word has moved (to a
    /// new generation, or `DIRTY`): a fire that reads the new plan then
    /// always finds `DIRTY` (or its generation gone) when it finishes, and
    /// never completes the task on a plan it was not running under (a
    /// recurring task rescheduled to a one-shot during its run would
    /// otherwise compute "no next instant" from the one-shot and be
    /// removed). A finish that finds `DIRTY` takes this guard before it
    /// reads the plan, so it reads the new one.
    pub(crate) fn reschedule(&self, task: &TaskRef, plan: Plan) -> Result<(), ()> {
        let _guard = task.manage();
        self.registry.index_once(task);
        #[cfg(cronlane_loom)]
        let early = crate::__loom::broken(&crate::__loom::BREAK_REPLAN_EARLY);
        #[cfg(not(cronlane_loom))]
        let early = false;
        if early {
            // Broken twin: the plan is visible before the state word says so.
            task.set_replan(plan.clone());
        }
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
                        task.set_replan(plan);
                        return Ok(());
                    }
                    if task.transition(cur, cur | DIRTY).is_ok() {
                        task.set_replan(plan);
                        return Ok(());
                    }
                }
                IDLE => {
                    // Paused (the only live IDLE state): stays paused and
                    // unscheduled under the new plan; resume schedules it.
                    // The phase must stay IDLE, or resume would take the task
                    // for one with a live entry and never schedule it.
                    #[cfg(cronlane_loom)]
                    let keep = !crate::__loom::broken(&crate::__loom::BREAK_RESCHEDULE_IDLE);
                    #[cfg(not(cronlane_loom))]
                    let keep = true;
                    let phase = if keep { IDLE } else { 0 };
                    let to = word(gen, phase | (Task::flags(cur) & !DIRTY));
                    if task.transition(cur, to).is_ok() {
                        task.set_replan(plan);
                        return Ok(());
                    }
                }
                _ if cur & PAUSED != 0 => {
                    // Claimed while paused: stays paused, under the new plan.
                    if task.transition(cur, word(gen, IDLE | PAUSED)).is_ok() {
                        task.set_replan(plan);
                        return Ok(());
                    }
                }
                phase => {
                    let now = self.clock.now_nanos();
                    let cursor = task.cursor();
                    let until = task.policies().until;
                    let first = plan.first_after_cursor(now, cursor);
                    let Some(at) = first.filter(|&at| until.is_none_or(|u| at <= u)) else {
                        // No instant left after the last that ran and before
                        // the task's end (`until`): the task is done.
                        if task.transition(cur, word(gen, IDLE | REMOVED)).is_ok() {
                            self.cleanup(task, phase == SCHEDULED);
                            return Ok(());
                        }
                        continue;
                    };
                    if task.transition(cur, word(gen, SCHEDULED)).is_ok() {
                        // Before the new entry exists: its claimer reads it.
                        task.set_replan(plan);
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
