//! A tokio service with cronlane: a cleanup every 10 s, a weekday 09:00
//! report in Europe/Berlin, one-shot reminders added by a (simulated)
//! request handler, logs through tracing-subscriber, and Ctrl-C (or
//! SIGTERM) for a graceful shutdown.
//!
//! Run: `cargo run --example tokio_service --features tokio`, then Ctrl-C.

use cronlane::{Overlap, Schedule, Scheduler, Tz};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .init();

    // Async tasks spawn on this runtime; sync callbacks never run on it.
    let scheduler = Scheduler::builder()
        .tokio_handle(tokio::runtime::Handle::current())
        .build();

    // Every 10 s. A run still going when the next instant comes due makes
    // that instant skip (the default overlap policy), and a shutdown's
    // cancel signal ends it early.
    scheduler
        .add(Schedule::every(Duration::from_secs(10)))
        .name("cleanup")
        .overlap(Overlap::Skip)
        .run_async(|ctx| async move {
            tokio::select! {
                removed = clean_up() => {
                    tracing::info!(removed, "cleanup done");
                    Ok(())
                }
                _ = ctx.cancelled() => Err("cleanup cancelled"),
            }
        })?;

    // Monday to Friday at 09:00, Berlin time (daylight saving included).
    let berlin: Tz = "Europe/Berlin".parse()?;
    scheduler
        .add(Schedule::cron("0 9 * * MON-FRI")?.in_tz(berlin))
        .name("daily-report")
        .run_async(|ctx| async move {
            tracing::info!(scheduled = %ctx.scheduled(), "sending the daily report");
            send_report().await
        })?;

    // The background runner: a thread of its own, off the runtime.
    let runner = scheduler.start()?;
    if let Some(next) = scheduler.next_fire("daily-report")? {
        tracing::info!(%next, "next daily report");
    }

    // A request handler that adds one-shot reminders (here: simulated
    // requests, one every 2 s).
    let requests = tokio::spawn(handle_requests(scheduler.clone()));

    // Until Ctrl-C or SIGTERM; then stop claiming, let runs finish within
    // 5 s, cancel what is left, and report.
    let report = runner
        .run_until_signal_async(Duration::from_secs(5))
        .await?;
    requests.abort();
    tracing::info!(?report, stats = ?scheduler.stats(), "shut down");
    Ok(())
}

/// Simulated requests: each asks for a reminder a few seconds from now.
async fn handle_requests(scheduler: Scheduler) {
    let next_user = AtomicU64::new(1);
    let mut every = tokio::time::interval(Duration::from_secs(2));
    loop {
        every.tick().await;
        let user = next_user.fetch_add(1, Ordering::Relaxed);
        let message: Arc<str> = format!("reminder for user {user}").into();
        let added = scheduler
            .add(Schedule::after(Duration::from_secs(3)))
            .run_async(move |_| {
                let message = message.clone();
                async move { tracing::info!(%message, "reminder") }
            });
        match added {
            Ok(id) => tracing::info!(%id, user, "reminder scheduled"),
            Err(e) => tracing::warn!(error = %e, "could not schedule a reminder"),
        }
    }
}

async fn clean_up() -> u64 {
    tokio::time::sleep(Duration::from_millis(20)).await;
    3
}

async fn send_report() -> Result<(), std::io::Error> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}
