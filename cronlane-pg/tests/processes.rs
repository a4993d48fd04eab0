//! Across processes: the chaos command's node processes, calm (no faults)
//! and in chaos (bounded), against `CRONLANE_PG_URL`. The command checks
//! the design's assertions itself and exits non-zero on a violation.

mod common;

use std::process::Command;

fn chaos(args: &[&str]) {
    // The same availability rule as the other cluster tests.
    if common::db("procs").is_none() {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_cronlane-pg-chaos"))
        .arg("run")
        .args(args)
        .env("CRONLANE_PG_URL", common::url())
        .output()
        .expect("run the chaos command");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "chaos run failed:\n{stdout}");
    assert!(stdout.contains("gaps 0 "), "{stdout}");
    assert!(stdout.contains("duplicate effects 0"), "{stdout}");
}

#[test]
fn each_fire_runs_once_across_three_processes() {
    chaos(&["--calm", "--secs", "12", "--nodes", "3", "--tasks", "40"]);
}

/// The bounded chaos run of CI (`CRONLANE_CHAOS_SECS`, default 60): kill -9
/// and restart, SIGSTOP past the lease, every backend of the run
/// terminated (a database fault that touches no other user of the server),
/// ±3 s skew. The longer run with a real server restart is documented in
/// docs/cluster.md.
#[test]
fn chaos_bounded() {
    let secs = std::env::var("CRONLANE_CHAOS_SECS").unwrap_or_else(|_| "60".into());
    chaos(&["--secs", &secs, "--pg-fault", "terminate"]);
}
