//! Heap bytes per task, measured with a counting global allocator (issue 18:
//! at most 200 B per named recurring task, its statistics included). The
//! figure is the live-byte delta of a scheduler holding N tasks (built,
//! drained onto the timeline, and fired once so that a recurring task's
//! statistics exist), divided by N. Callbacks capture nothing, and names are
//! 10 bytes (`t-0000000`..), so the figure is the engine's own cost.
//!
//! Run `cargo test --release --test task_memory -- --nocapture` to see the
//! figures.

use cronlane::{ManualClock, Schedule, Scheduler};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged and only
// counts sizes on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 20_000;

/// Today's figure plus a margin (see the test).
const LIMIT: f64 = 650.0;

/// Bytes per task of a scheduler holding N recurring `every(1 s)` tasks
/// (named if `named`) after `fires` periods.
fn per_task(named: bool, fires: u32) -> f64 {
    let names: Vec<String> = (0..N).map(|i| format!("t-{i:07}")).collect();
    let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().expect("instant"));
    // Scheduler-wide state (histograms, queues) is counted out: measured
    // after the build.
    let s = Scheduler::builder().clock(clock.clone()).build();
    s.run_pending();
    settle_garbage();
    let before = LIVE.load(Ordering::Relaxed);
    let every = Schedule::every(Duration::from_secs(1));
    for name in &names {
        let b = s.add(every.clone());
        let b = if named { b.name(name.as_str()) } else { b };
        b.run(|| {}).expect("registered");
    }
    s.run_pending();
    for _ in 0..fires {
        clock.advance(Duration::from_secs(1));
        assert_eq!(s.run_pending().fired, N as u64);
    }
    settle_garbage();
    let after = LIVE.load(Ordering::Relaxed);
    drop(s);
    settle_garbage();
    (after - before) as f64 / N as f64
}

/// Lets crossbeam's epoch collector free what earlier steps left to it
/// (removed skiplist nodes, replaced groups), so the live count is what
/// the scheduler holds, not garbage waiting for collection.
fn settle_garbage() {
    for _ in 0..256 {
        crossbeam_epoch::pin().flush();
    }
}

#[test]
fn bytes_per_recurring_task() {
    // One test, so no other test's allocations land in the count.
    let rows = [
        ("anonymous every(1 s), drained", per_task(false, 0)),
        ("anonymous every(1 s), after 3 fires", per_task(false, 3)),
        ("named every(1 s), drained", per_task(true, 0)),
        ("named every(1 s), after 3 fires", per_task(true, 3)),
    ];
    for (what, b) in rows {
        println!("{what}: {b:.1} B per task");
    }
    // Issue 18's target is 200 B; what stands in the way is in
    // BENCHMARKS.md. This bound catches a regression from today's figure.
    let named = rows[3].1;
    assert!(
        named <= LIMIT,
        "a named recurring task (statistics included) takes {named:.1} B (bound {LIMIT})"
    );
}
