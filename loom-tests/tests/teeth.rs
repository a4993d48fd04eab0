//! The broken twins: each model again with one piece of the protocol broken
//! on purpose (`cronlane::__loom::BREAK_*`). Loom must find the interleaving
//! that breaks the guarantee, or the model proves nothing. Loom only.
#![cfg(cronlane_loom)]

use cronlane::__loom::{
    BREAK_CLAIM, BREAK_COMPACT_ORDER, BREAK_EXCURSION, BREAK_FINISH, BREAK_HANDOVER, BREAK_POP,
    BREAK_PUBLISH, BREAK_RECHECK, BREAK_REPLAN_EARLY, BREAK_RUN_LOOKUP, BREAK_RUN_REST,
    BREAK_SEAL_ORDER, BREAK_SHUTDOWN, BREAK_START, BREAK_TAKE, BREAK_WAKE,
};
use cronlane::__loom::{
    BREAK_DIRTY, BREAK_HANDOVER_EARLY, BREAK_NAME_FORGET, BREAK_PAUSE_FINISH, BREAK_REPLACE,
    BREAK_RESCHEDULE_IDLE,
};
use loom_tests::{broken, broken_with_runs, models};

/// Model 1's guarantee is held three times over (the timeline entry is
/// removed by one thread, the claim is a CAS, start is a CAS): the twin
/// breaks all three.
#[test]
#[should_panic(expected = "a due task fired 2 times")]
fn m1_broken_take_claim_start_fires_twice() {
    broken(
        &[&BREAK_TAKE, &BREAK_CLAIM, &BREAK_START],
        models::two_threads_fire_one_task,
    );
}

#[test]
#[should_panic(expected = "fires of (A, B)")]
fn m2_broken_intake_pop_loses_a_task() {
    broken(&[&BREAK_POP], models::registration_vs_run_pending);
}

/// The claim's store overwrites `REMOVED`: the fire runs although `remove`
/// returned `Ok`, then completes the task and cleans it up a second time.
#[test]
#[should_panic(expected = "m3: the task is still live")]
fn m3_broken_claim_fires_after_remove() {
    broken(&[&BREAK_CLAIM], models::remove_vs_fire);
}

/// Start's store overwrites `REMOVED`, with the same outcome.
#[test]
#[should_panic(expected = "m3: the task is still live")]
fn m3_broken_start_fires_after_remove() {
    broken(&[&BREAK_START], models::remove_vs_fire);
}

#[test]
#[should_panic(expected = "m4: the task came back after remove")]
fn m4_broken_finish_brings_a_removed_task_back() {
    broken(&[&BREAK_FINISH], models::reschedule_vs_remove);
}

/// The rescheduler does not look for a removal after putting its entry on
/// the timeline: when `remove` read the task's slot before the entry was
/// there, nobody takes it back.
#[test]
#[should_panic(expected = "m8: an entry was left on the timeline")]
fn m8_broken_publish_leaves_an_entry() {
    broken(&[&BREAK_PUBLISH], models::remove_vs_reschedule);
}

#[test]
#[should_panic(expected = "remove(B) from a callback missed a live task")]
fn m5_broken_handover_loses_a_task_to_lookup() {
    broken(&[&BREAK_HANDOVER], models::callback_registers_and_removes);
}

#[test]
#[should_panic(expected = "deadlock")]
fn m6a_broken_wake_loses_the_wake_up() {
    broken(&[&BREAK_WAKE], models::runner_wakes_for_sooner_task);
}

#[test]
#[should_panic(expected = "deadlock")]
fn m6b_broken_shutdown_never_joins() {
    broken(&[&BREAK_SHUTDOWN], models::shutdown_vs_wake);
}

/// Ring first, then record: the fire may hold the old ring `{k1}` and then
/// meet the record that a concurrent `reseal_payloads` sealed with `k2`.
#[test]
#[should_panic(expected = "m7: the fire did not open its payload")]
fn m7a_broken_seal_order_fails_to_open() {
    broken(&[&BREAK_SEAL_ORDER], models::rotation_vs_open);
}

/// The claimer that stops inside a run drops its rest: B never fires.
#[test]
#[should_panic(expected = "m9: fires of (A, B) at t0 + 2 s")]
fn m9_broken_run_rest_loses_a_task() {
    broken_with_runs(&[&BREAK_RUN_REST], models::run_split_between_two_threads);
}

/// Both threads take the run's view and both claim and start A.
#[test]
#[should_panic(expected = "m9: fires of (A, B) at t0 + 1 s")]
fn m9_broken_take_claim_start_fires_a_run_task_twice() {
    broken_with_runs(
        &[&BREAK_TAKE, &BREAK_CLAIM, &BREAK_START],
        models::run_split_between_two_threads,
    );
}

/// Model 3's claim twin, the task in a run.
#[test]
#[should_panic(expected = "m3: the task is still live")]
fn m3r_broken_claim_fires_after_remove_in_a_run() {
    broken_with_runs(&[&BREAK_CLAIM], models::remove_vs_fire);
}

/// A run that is not in the run lookup: `remove` cannot find its task.
#[test]
#[should_panic(expected = "m10: remove did not find the task")]
fn m10_broken_run_lookup_misses_the_task() {
    broken_with_runs(&[&BREAK_RUN_LOOKUP], models::remove_vs_reschedule_in_run);
}

/// Model 8's publish twin, the task in a run.
#[test]
#[should_panic(expected = "m10: an entry was left on the timeline")]
fn m10_broken_publish_leaves_an_entry() {
    broken_with_runs(&[&BREAK_PUBLISH], models::remove_vs_reschedule_in_run);
}

/// The compaction takes the old run out of the lookup before the new one is
/// in: `remove(B)` may look in between and miss it.
#[test]
#[should_panic(expected = "m11: remove(A), remove(B) found")]
fn m11_broken_compact_order_misses_a_task() {
    broken_with_runs(&[&BREAK_COMPACT_ORDER], models::compaction_vs_lookup);
}

/// The compaction does not look again for tasks removed while it rebuilt
/// the run: B, removed meanwhile by a thread that looked at the old run,
/// stays in the new one.
#[test]
#[should_panic(expected = "m11: an entry was left on the timeline")]
fn m11_broken_recheck_leaves_a_removed_task_in_a_run() {
    broken_with_runs(&[&BREAK_RECHECK], models::compaction_vs_lookup);
}

/// Shutdown's release drops the claimed fire: the fire the runner had not
/// started when `stop` was raised is lost.
#[test]
#[should_panic(expected = "m20: fires of (A, B)")]
fn m20_broken_release_drops_a_claimed_fire() {
    broken(
        &[&cronlane::__loom::BREAK_RELEASE],
        models::shutdown_puts_claimed_fires_back,
    );
}

/// A compaction that lowered the hint says it did not: nobody wakes the
/// runner, parked while B was a second away, after the clock reached B.
#[test]
#[should_panic(expected = "deadlock")]
fn m21_broken_compact_hint_leaves_the_runner_parked() {
    broken_with_runs(
        &[&cronlane::__loom::BREAK_COMPACT_HINT],
        models::compaction_wakes_the_runner,
    );
}

/// `running` decremented before the callback: a second run starts while
/// the first one's callback still runs.
#[test]
#[should_panic(expected = "m22: 2 callbacks of the task ran at once")]
fn m22_broken_overlap_early_decrement_runs_two_at_once() {
    broken(
        &[&cronlane::__loom::BREAK_OVERLAP_EARLY],
        models::overlap_allow_max,
    );
}

/// The check against `max` skipped: the same.
#[test]
#[should_panic(expected = "m22: 2 callbacks of the task ran at once")]
fn m22_broken_overlap_check_runs_two_at_once() {
    broken(
        &[&cronlane::__loom::BREAK_OVERLAP_CHECK],
        models::overlap_allow_max,
    );
}

/// `finish` ignores a pause that came during the run: the paused task is
/// put back on the timeline and fires again.
#[test]
#[should_panic(expected = "m13: fired while paused")]
fn m13_broken_pause_finish_fires_while_paused() {
    broken(&[&BREAK_PAUSE_FINISH], models::pause_vs_fire);
}

/// A reschedule during the run does not mark the task `DIRTY`: the fire's
/// owner puts back the old plan's next instant (`t0 + 2 s`).
#[test]
#[should_panic(expected = "m14: fires after reschedule")]
fn m14_broken_dirty_fires_the_old_plan() {
    broken(&[&BREAK_DIRTY], models::reschedule_vs_fire);
}

/// The reschedule of a paused task drops its `IDLE` phase (the bug of
/// issue 12): `resume` takes it for a claimed or running task and leaves
/// it with no entry.
#[test]
#[should_panic(expected = "m15: fires after resume")]
fn m15_broken_reschedule_idle_loses_the_task() {
    broken(
        &[&BREAK_RESCHEDULE_IDLE],
        models::pause_reschedule_resume_vs_fire,
    );
}

/// Replacement as a read of the holder and then an insert (the bug of
/// issue 12): both replacers displace O, the later insert orphans the
/// other replacer's task, still live and firing, reached by no name.
#[test]
#[should_panic(expected = "m16: live tasks after two replacements")]
fn m16_broken_replace_orphans_a_task() {
    broken(&[&BREAK_REPLACE], models::two_replacers_of_one_name);
}

/// O's clean-up takes the name out of the index although N holds it by
/// then: N is live but the name leads nowhere.
#[test]
#[should_panic(expected = "m17: the task the name leads to")]
fn m17_broken_name_forget_unnames_the_new_task() {
    broken(
        &[&BREAK_NAME_FORGET],
        models::register_vs_remove_of_one_name,
    );
}

/// The drainer leaves the hand-over before it publishes the plain
/// one-shot it popped: `settle` returns early and `remove` misses it.
#[test]
#[should_panic(expected = "m18: remove missed a task in the hand-over")]
fn m18_broken_handover_early_misses_a_plain_task() {
    broken(&[&BREAK_HANDOVER_EARLY], models::plain_handover_vs_remove);
}

/// The excursion of a run's view (off the timeline while a compaction
/// rebuilds it) is not counted as ended: a `run_pending` that looked while
/// the view was away takes the timeline for quiet and returns with A, due
/// when it began, unfired.
#[test]
#[should_panic(expected = "m19: A, due when run_pending began, was not fired by it")]
fn m19_broken_excursion_leaves_a_due_task() {
    broken_with_runs(&[&BREAK_EXCURSION], models::run_pending_vs_compaction);
}

/// The new plan is stored before the state word moves: the fire computes
/// "no next instant" from the one-shot, finishes without `DIRTY` and
/// completes the task, so `reschedule` no longer finds it.
#[test]
#[should_panic(expected = "m23: reschedule did not find the task")]
fn m23_broken_replan_order_loses_the_task() {
    broken(
        &[&BREAK_REPLAN_EARLY],
        models::reschedule_to_one_shot_vs_fire,
    );
}

/// The group of a pass is published without looking for tasks removed
/// while it was being built: A stays in it, closure and all.
#[test]
#[should_panic(expected = "m24: the removed task A is still held on the timeline")]
fn m24_broken_recheck_keeps_a_removed_task_in_a_group() {
    broken_with_runs(&[&BREAK_RECHECK], models::group_put_back_vs_remove);
}

/// A removal during A's run is written over by its finish: A is put back
/// in the group (where loom finds it still held, before it can fire again).
#[test]
#[should_panic(expected = "m24: the removed task A is still held on the timeline")]
fn m24_broken_finish_puts_a_removed_task_back_in_a_group() {
    broken_with_runs(&[&BREAK_FINISH], models::group_put_back_vs_remove);
}
