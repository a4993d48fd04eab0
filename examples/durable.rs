//! Durable tasks that survive a restart: run this twice.
//!
//! `cargo run --release --features redb --example durable`
//!
//! The first run creates `cronlane-durable-example.redb` (or the path given
//! as the first argument), registers two durable tasks and lets them fire for
//! a few seconds. Stop it (or let it end), wait a few seconds, run it again:
//! the second run lists the tasks the first one stored, and the fires missed
//! while it was down go through each task's misfire policy (the heartbeat
//! fires once for the latest missed instant, the catch-up task runs every
//! missed instant, capped at 5), reported by the listener below.

use cronlane::store::RedbStore;
use cronlane::{Event, EventKind, Misfire, Schedule, Scheduler};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "cronlane-durable-example.redb".to_owned());
    let secs: u64 = std::env::var("CRONLANE_EXAMPLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);

    let store = RedbStore::open(&path)?;
    let scheduler = Scheduler::builder()
        // Payloads would be sealed in production mode; this example has none
        // and runs in test mode so it needs no key ring.
        .test_mode(true)
        .listener(|e: &Event<'_>| match e.kind {
            EventKind::Misfired { late_by, runs } => println!(
                "  missed: {} at {} ({:.1} s late, {})",
                e.name.unwrap_or("?"),
                e.scheduled.format("%H:%M:%S"),
                late_by.as_secs_f64(),
                if runs { "runs now" } else { "skipped" }
            ),
            EventKind::Skipped { count, reason } => println!(
                "  skipped {count} instant(s) of {} ({reason:?})",
                e.name.unwrap_or("?")
            ),
            _ => {}
        })
        .store(store)
        .build();

    let stored = scheduler.durable_tasks();
    if stored.is_empty() {
        println!("{path}: new store; registering two durable tasks");
    } else {
        println!("{path}: {} task(s) from an earlier run:", stored.len());
        for t in &stored {
            println!("  {} -> handler {:?}, {}", t.name, t.handler, t.schedule);
        }
    }

    // Code is not data: durable tasks name a handler, registered at every
    // start. Registering one arms the stored tasks that name it.
    scheduler.handler("beat", |ctx| {
        println!(
            "beat     {} for {}",
            ctx.name().unwrap_or("?"),
            ctx.scheduled().format("%H:%M:%S")
        );
    })?;
    scheduler.handler("catch-up", |ctx| {
        println!(
            "catch-up {} for {}",
            ctx.name().unwrap_or("?"),
            ctx.scheduled().format("%H:%M:%S")
        );
    })?;

    // Registered at every start; the same definition keeps the stored task
    // (its cursor and anchor), so nothing fires twice.
    scheduler
        .add(Schedule::every(Duration::from_secs(1)))
        .name("heartbeat")
        .durable("beat")
        .register()?;
    scheduler
        .add(Schedule::cron("*/2 * * * * *")?)
        .name("every-2s")
        .misfire(Misfire::CatchUp { max: 5 })
        .durable("catch-up")
        .register()?;

    let runner = scheduler.start()?;
    std::thread::sleep(Duration::from_secs(secs));
    runner.shutdown(Duration::from_secs(5))?;
    scheduler.flush_store()?;
    println!("stopped after {secs} s; run me again to see the restart");
    Ok(())
}
