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
        /// intervals; for cron, up to 1,000 beyond the fire's own instant
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
