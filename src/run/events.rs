//! What the engine tells a listener: one event per fire started, succeeded,
//! failed, misfired or skipped.
//!
//! A listener is called on the thread that runs the fire, outside any shared
//! state, so it may call back into the scheduler. With no listener the cost is
//! one branch per fire. A listener that panics is caught and logged, like a
//! callback.

use crate::clock::from_nanos;
use crate::id::TaskId;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Receives engine events.
///
/// Any `Fn(&Event)` is a listener:
///
/// ```
/// use cronlane::{Event, EventKind, ManualClock, Schedule, Scheduler};
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// let failures = Arc::new(Mutex::new(Vec::new()));
/// let seen = failures.clone();
/// let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
/// let s = Scheduler::builder()
///     .clock(clock.clone())
///     .listener(move |e: &Event<'_>| {
///         if let EventKind::Failed { message, .. } = &e.kind {
///             seen.lock().unwrap().push(format!("{:?}: {message}", e.name));
///         }
///     })
///     .build();
/// s.add(Schedule::every(Duration::from_secs(1)))
///     .name("flaky")
///     .run(|| Err::<(), _>("upstream unavailable"))?;
/// clock.advance(Duration::from_secs(1));
/// s.run_pending();
/// assert_eq!(*failures.lock().unwrap(), ["Some(\"flaky\"): upstream unavailable"]);
/// # Ok::<(), cronlane::Error>(())
/// ```
pub trait Listener: Send + Sync + 'static {
    /// Called once per event.
    fn on_event(&self, event: &Event<'_>);
}

impl<F> Listener for F
where
    F: Fn(&Event<'_>) + Send + Sync + 'static,
{
    fn on_event(&self, event: &Event<'_>) {
        self(event)
    }
}

/// Something that happened to one fire of one task.
///
/// ```
/// use cronlane::{Event, EventKind, ManualClock, Schedule, Scheduler};
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let l = log.clone();
/// let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
/// let s = Scheduler::builder()
///     .clock(clock.clone())
///     .listener(move |e: &Event<'_>| {
///         l.lock().unwrap().push((e.name.map(str::to_owned), e.scheduled.to_rfc3339()))
///     })
///     .build();
/// s.add(Schedule::after(Duration::from_secs(1))).name("once").run(|| ())?;
/// clock.advance(Duration::from_secs(1));
/// s.run_pending();
/// // Started, then Succeeded, both for the one fire.
/// let log = log.lock().unwrap();
/// assert_eq!(log.len(), 2);
/// assert_eq!(log[0], (Some("once".to_owned()), "2026-01-01T00:00:01+00:00".to_owned()));
/// # Ok::<(), cronlane::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// The task.
    pub task: TaskId,
    /// Its name, if any.
    pub name: Option<&'a str>,
    /// The fire's scheduled instant (without jitter).
    pub scheduled: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind<'a>,
}

/// The kinds of [`Event`].
///
/// ```
/// use cronlane::{Event, EventKind, SkipReason};
///
/// fn describe(e: &Event<'_>) -> String {
///     match &e.kind {
///         EventKind::Started { lag } => format!("started {lag:?} late"),
///         EventKind::Succeeded => "ok".into(),
///         EventKind::Failed { message, panicked: true } => format!("panicked: {message}"),
///         EventKind::Failed { message, .. } => format!("failed: {message}"),
///         EventKind::Misfired { late_by, runs } => format!("{late_by:?} late, runs: {runs}"),
///         EventKind::Skipped { reason: SkipReason::Overlap, count } => format!("{count} overlapped"),
///         EventKind::Skipped { reason, count } => format!("{count} skipped ({reason:?})"),
///     }
/// }
/// # let _ = describe;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind<'a> {
    /// The callback is about to run; `lag` is due instant to start.
    Started {
        /// Due instant (scheduled plus jitter) to callback start.
        lag: Duration,
    },
    /// The callback returned `Ok`.
    Succeeded,
    /// The callback returned `Err`, panicked, or its payload did not open.
    Failed {
        /// The error or panic message (never a payload).
        message: &'a str,
        /// True for a panic.
        panicked: bool,
    },
    /// The fire started later than the grace period allows.
    Misfired {
        /// How late it was.
        late_by: Duration,
        /// Whether it runs anyway (policy `FireOnce` or `CatchUp`).
        runs: bool,
    },
    /// Fires that did not run. `scheduled` is the first of them.
    Skipped {
        /// Why.
        reason: SkipReason,
        /// How many instants this event stands for: several were due when
        /// a fire started, or passed during a long run. Counted exactly for
        /// intervals; for cron, up to 10,000 beyond the fire's own instant
        /// (a clock jump of a year on a every-second expression is not
        /// walked instant by instant).
        count: u64,
    },
}

use crate::policy::SkipReason;

pub(crate) fn emit(
    listener: &dyn Listener,
    task: TaskId,
    name: Option<&str>,
    scheduled: i64,
    kind: EventKind<'_>,
) {
    let event = Event {
        task,
        name,
        scheduled: from_nanos(scheduled),
        kind,
    };
    let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        listener.on_event(&event);
    }));
    if called.is_err() {
        tracing::error!(task = %task, "cronlane: event listener panicked");
    }
}
