//! Quick start: a background runner firing a cron task, an interval task and a
//! one-shot for a few seconds, then a clean shutdown.
//!
//! `cargo run --release --example quickstart`

use cronlane::{Dispatcher, Schedule, Scheduler};
use std::time::Duration;

fn main() -> Result<(), cronlane::Error> {
    let scheduler = Scheduler::new(Dispatcher::default());

    // The seed's call: a named task on a cron expression (here every second,
    // 6 fields with leading seconds).
    scheduler.register_task("every_second", "* * * * * *", || {
        println!("[cron]     every_second fired");
    })?;

    // A fixed interval, sub-second, with the fire context.
    scheduler
        .add(Schedule::every(Duration::from_millis(700)))
        .name("interval")
        .run_with_context(|ctx| {
            let lag = ctx.started() - ctx.scheduled();
            println!(
                "[interval] {} scheduled {} (started {} µs late)",
                ctx.name().unwrap_or("?"),
                ctx.scheduled().format("%H:%M:%S%.3f"),
                lag.num_microseconds().unwrap_or(-1)
            );
        })?;

    // A one-shot that reschedules the interval task from inside a callback.
    scheduler
        .add(Schedule::after(Duration::from_secs(2)))
        .name("one_shot")
        .run_with_context(|ctx| {
            println!("[once]     one_shot fired; slowing `interval` to every 1.5 s");
            ctx.scheduler()
                .reschedule("interval", Schedule::every(Duration::from_millis(1500)))
        })?;

    // A task whose errors are counted and logged, never propagated.
    scheduler
        .add(Schedule::every(Duration::from_secs(2)))
        .name("flaky")
        .run(|| Err::<(), _>("upstream unavailable"))?;

    let runner = scheduler.start()?;
    std::thread::sleep(Duration::from_secs(5));
    runner.shutdown(Duration::from_secs(5))?;

    println!("\ntasks after 5 s:");
    for t in scheduler.tasks() {
        println!(
            "  {:<13} {:<32} runs {:>2}  failures {}",
            t.name.as_deref().unwrap_or("-"),
            t.schedule,
            t.runs,
            t.failures
        );
    }
    let stats = scheduler.stats();
    println!(
        "total: {} runs ({} ok, {} failed), {} skipped",
        stats.fired, stats.succeeded, stats.failed, stats.skipped
    );
    Ok(())
}
