//! Each model of issue 4 under loom (`--cfg cronlane_loom`), or a few plain
//! runs on std threads in the ordinary build. See `loom-tests/src/models.rs`.

use loom_tests::{model, model_with_runs, models};

#[test]
fn m1_two_threads_fire_one_task_once() {
    model(models::two_threads_fire_one_task);
}

#[test]
fn m2_registration_vs_run_pending_never_lost_never_twice() {
    model(models::registration_vs_run_pending);
}

#[test]
fn m3_remove_vs_fire_never_fires_after_remove() {
    model(models::remove_vs_fire);
}

#[test]
fn m4_reschedule_vs_remove_never_comes_back() {
    model(models::reschedule_vs_remove);
}

#[test]
fn m8_remove_vs_reschedule_leaves_nothing() {
    model(models::remove_vs_reschedule);
}

#[test]
fn m5_callback_registers_and_removes_while_another_thread_fires() {
    model(models::callback_registers_and_removes);
}

#[test]
fn m6a_runner_wakes_for_a_sooner_task() {
    model(models::runner_wakes_for_sooner_task);
}

#[test]
fn m6b_shutdown_vs_wake_exits_and_joins() {
    model(models::shutdown_vs_wake);
}

#[test]
fn m7a_key_rotation_vs_open() {
    model(models::rotation_vs_open);
}

#[test]
fn m7b_key_retirement_vs_open() {
    model(models::retirement_vs_open);
}

#[test]
fn m9_run_split_between_two_threads_fires_each_once() {
    model_with_runs(models::run_split_between_two_threads);
}

/// Model 3 again, the task in a run.
#[test]
fn m3r_remove_vs_fire_in_a_run() {
    model_with_runs(models::remove_vs_fire);
}

#[test]
fn m10_remove_vs_reschedule_in_a_run_leaves_nothing() {
    model_with_runs(models::remove_vs_reschedule_in_run);
}

#[test]
fn m11_compaction_vs_lookup_finds_both() {
    model_with_runs(models::compaction_vs_lookup);
}

#[test]
fn m12_compaction_vs_claim_fires_each_once() {
    model_with_runs(models::compaction_vs_claim);
}

#[test]
fn m20_shutdown_puts_claimed_fires_back() {
    model(models::shutdown_puts_claimed_fires_back);
}

#[test]
fn m21_compaction_wakes_the_runner() {
    model_with_runs(models::compaction_wakes_the_runner);
}

#[test]
fn m22_overlap_allow_max_never_exceeds_max() {
    model(models::overlap_allow_max);
}

#[test]
fn m13_pause_vs_fire_no_fire_after_pause_each_instant_once_after_resume() {
    model(models::pause_vs_fire);
}

#[test]
fn m14_reschedule_vs_fire_each_instant_once_in_order_none_lost() {
    model(models::reschedule_vs_fire);
}

#[test]
fn m15_pause_reschedule_resume_vs_fire_never_loses_the_task() {
    model(models::pause_reschedule_resume_vs_fire);
}

#[test]
fn m16_two_replacers_leave_one_live_holder() {
    model(models::two_replacers_of_one_name);
}

#[test]
fn m17_register_vs_remove_of_one_name_never_two_live() {
    model(models::register_vs_remove_of_one_name);
}

#[test]
fn m18_plain_handover_vs_remove_finds_the_task() {
    model(models::plain_handover_vs_remove);
}

#[test]
fn m19_run_pending_vs_compaction_fires_what_was_due() {
    model_with_runs(models::run_pending_vs_compaction);
}

#[test]
fn m23_reschedule_to_one_shot_vs_fire_keeps_the_task() {
    model(models::reschedule_to_one_shot_vs_fire);
}

#[test]
fn m24_group_put_back_vs_remove_fires_once_and_releases_the_removed() {
    model_with_runs(models::group_put_back_vs_remove);
}
