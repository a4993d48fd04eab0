//! Native stress runs of the loom models (`loom-tests/src/models.rs`,
//! `docs/loom.md`): the same scenarios, the same assertions, on real threads,
//! thousands of iterations each; the racing threads are released together by
//! a `Barrier` ([`loom_tests::race`]). No sleeps: time is a manual clock, and
//! the runner models wait on a condition variable. Not under loom (there the
//! models explore interleavings instead: `tests/models.rs`).
#![cfg(not(cronlane_loom))]

use loom_tests::models;

const ITERATIONS: usize = 2_000;
const RUNNER_ITERATIONS: usize = 200;

fn stress(iterations: usize, model: fn()) {
    for _ in 0..iterations {
        model();
    }
}

#[test]
fn m1_two_threads_fire_one_task_once() {
    stress(ITERATIONS, models::two_threads_fire_one_task);
}

#[test]
fn m2_registration_vs_run_pending() {
    stress(ITERATIONS, models::registration_vs_run_pending);
}

#[test]
fn m3_remove_vs_fire() {
    stress(ITERATIONS, models::remove_vs_fire);
}

#[test]
fn m4_reschedule_vs_remove() {
    stress(ITERATIONS, models::reschedule_vs_remove);
}

#[test]
fn m8_remove_vs_reschedule() {
    stress(ITERATIONS, models::remove_vs_reschedule);
}

#[test]
fn m5_callback_registers_and_removes() {
    stress(ITERATIONS, models::callback_registers_and_removes);
}

#[test]
fn m6a_runner_wakes_for_a_sooner_task() {
    stress(RUNNER_ITERATIONS, models::runner_wakes_for_sooner_task);
}

#[test]
fn m6b_shutdown_vs_wake() {
    stress(RUNNER_ITERATIONS, models::shutdown_vs_wake);
}

#[test]
fn m7a_key_rotation_vs_open() {
    stress(ITERATIONS, models::rotation_vs_open);
}

#[test]
fn m7b_key_retirement_vs_open() {
    stress(ITERATIONS, models::retirement_vs_open);
}

#[test]
fn m9_run_split_between_two_threads() {
    stress(ITERATIONS, models::run_split_between_two_threads);
}

#[test]
fn m10_remove_vs_reschedule_in_run() {
    stress(ITERATIONS, models::remove_vs_reschedule_in_run);
}

#[test]
fn m11_compaction_vs_lookup() {
    stress(ITERATIONS, models::compaction_vs_lookup);
}

#[test]
fn m12_compaction_vs_claim() {
    stress(ITERATIONS, models::compaction_vs_claim);
}

#[test]
fn m20_shutdown_puts_claimed_fires_back() {
    stress(RUNNER_ITERATIONS, models::shutdown_puts_claimed_fires_back);
}

#[test]
fn m21_compaction_wakes_the_runner() {
    stress(RUNNER_ITERATIONS, models::compaction_wakes_the_runner);
}

#[test]
fn m22_overlap_allow_max() {
    stress(ITERATIONS, models::overlap_allow_max);
}

#[test]
fn m13_pause_vs_fire() {
    stress(ITERATIONS, models::pause_vs_fire);
}

#[test]
fn m14_reschedule_vs_fire() {
    stress(ITERATIONS, models::reschedule_vs_fire);
}

#[test]
fn m15_pause_reschedule_resume_vs_fire() {
    stress(ITERATIONS, models::pause_reschedule_resume_vs_fire);
}

#[test]
fn m16_two_replacers_of_one_name() {
    stress(ITERATIONS, models::two_replacers_of_one_name);
}

#[test]
fn m17_register_vs_remove_of_one_name() {
    stress(ITERATIONS, models::register_vs_remove_of_one_name);
}

#[test]
fn m18_plain_handover_vs_remove() {
    stress(ITERATIONS, models::plain_handover_vs_remove);
}

#[test]
fn m19_run_pending_vs_compaction() {
    stress(ITERATIONS, models::run_pending_vs_compaction);
}

#[test]
fn m23_reschedule_to_one_shot_vs_fire() {
    stress(ITERATIONS, models::reschedule_to_one_shot_vs_fire);
}

#[test]
fn m24_group_put_back_vs_remove() {
    stress(ITERATIONS, models::group_put_back_vs_remove);
}
