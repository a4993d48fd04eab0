//! A fixed workload for instruction counts under callgrind (not a criterion
//! bench: `harness = false`, no timing). `scripts/callgrind.sh` runs it at
//! two sizes and reports instructions per operation as the difference
//! divided by the difference in size, so set-up and process start cancel
//! out. Workloads (`CRONLANE_OPS=<kind>`, size `CRONLANE_N`):
//!
//! * `register`: N anonymous one-shots at one instant (the fast path);
//! * `dispatch`: the same, then one `run_pending` that fires them all
//!   (minus `register`: instructions per fire);
//! * `recurring`: N `every(1 s)` tasks registered and drained, then one
//!   clock step and one `run_pending` (fire plus re-plan);
//! * `steady` / `steady_named`: N `every(1 s)` tasks (anonymous / named)
//!   registered, drained and fired once, then `CRONLANE_PASSES` more
//!   periods (clock step + `run_pending`): the steady state of recurring
//!   tasks, per fire, is the difference between two pass counts.

use cronlane::{ManualClock, Schedule, Scheduler};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let kind = std::env::var("CRONLANE_OPS").unwrap_or_else(|_| "dispatch".into());
    let n: usize = std::env::var("CRONLANE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let t0 = "2026-01-01T00:00:00Z".parse().expect("instant");
    let clock = ManualClock::new(t0);
    let s = Scheduler::builder().clock(clock.clone()).build();
    let count = Arc::new(AtomicU64::new(0));
    match kind.as_str() {
        "register" | "dispatch" => {
            for _ in 0..n {
                let c = count.clone();
                s.add(Schedule::once(t0))
                    .run(move || {
                        c.fetch_add(1, Ordering::Relaxed);
                    })
                    .expect("register");
            }
            if kind == "dispatch" {
                s.run_pending();
                assert_eq!(count.load(Ordering::Relaxed), n as u64);
            }
        }
        "recurring" => {
            for _ in 0..n {
                let c = count.clone();
                s.add(Schedule::every(Duration::from_secs(1)))
                    .run(move || {
                        c.fetch_add(1, Ordering::Relaxed);
                    })
                    .expect("register");
            }
            s.run_pending();
            clock.advance(Duration::from_secs(1));
            s.run_pending();
            assert_eq!(count.load(Ordering::Relaxed), n as u64);
        }
        "steady" | "steady_named" => {
            let passes: u64 = std::env::var("CRONLANE_PASSES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2);
            for i in 0..n {
                let c = count.clone();
                let b = s.add(Schedule::every(Duration::from_secs(1)));
                let b = if kind == "steady_named" {
                    b.name(format!("task-{i}"))
                } else {
                    b
                };
                b.run(move || {
                    c.fetch_add(1, Ordering::Relaxed);
                })
                .expect("register");
            }
            s.run_pending();
            for _ in 0..=passes {
                clock.advance(Duration::from_secs(1));
                s.run_pending();
            }
            assert_eq!(count.load(Ordering::Relaxed), n as u64 * (passes + 1));
        }
        other => panic!("unknown CRONLANE_OPS={other}"),
    }
}
