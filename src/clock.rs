//! Clocks: where the engine reads "now".
//!
//! The clock is injected through the builder. Production uses [`SystemClock`];
//! tests use [`ManualClock`] and move time by hand, so no test ever sleeps to
//! wait for a fire. Internally instants are `i64` nanoseconds since the Unix
//! epoch (years 1677 to 2262), which keeps the timeline key small and the
//! comparisons on the hot path to a single integer compare.

use crate::sync::{Arc, AtomicI64, Ordering};
use chrono::{DateTime, TimeZone, Utc};
use std::time::Duration;

/// A source of the current instant.
///
/// [`SystemClock`] and [`ManualClock`] are the two clocks most code needs; a
/// custom one is a type with `now`:
///
/// ```
/// use chrono::{DateTime, Utc};
/// use cronlane::{Clock, Scheduler};
///
/// /// The system clock, shifted (say, to replay a day).
/// struct Shifted(chrono::Duration);
///
/// impl Clock for Shifted {
///     fn now(&self) -> DateTime<Utc> {
///         Utc::now() + self.0
///     }
/// }
///
/// let s = Scheduler::builder().clock(Shifted(chrono::Duration::hours(-24))).build();
/// assert!(s.now() < Utc::now());
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// The current instant as nanoseconds since the Unix epoch. Override when
    /// the clock can produce it more cheaply than through `DateTime`.
    fn now_nanos(&self) -> i64 {
        to_nanos(self.now()).unwrap_or(i64::MAX)
    }
}

/// The operating system's wall clock.
///
/// ```
/// use cronlane::{Scheduler, SystemClock};
/// let s = Scheduler::builder().clock(SystemClock).build(); // the default
/// # let _ = s;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn now_nanos(&self) -> i64 {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
        }
    }
}

/// A clock that only moves when told to; cloning shares the same time.
///
/// ```
/// use cronlane::ManualClock;
/// use std::time::Duration;
/// let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now().to_rfc3339(), "2026-01-01T00:01:30+00:00");
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicI64>,
}

impl ManualClock {
    /// A manual clock reading `start` (clamped to the supported range).
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            nanos: Arc::new(AtomicI64::new(clamp_nanos(start))),
        }
    }

    /// The instant the clock reads.
    pub fn now(&self) -> DateTime<Utc> {
        from_nanos(self.nanos.load(Ordering::Acquire))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        // Release pairs with the Acquire in `now_nanos`: anything done before
        // advancing is visible to whoever reads the new time.
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(by))
            });
    }

    /// Sets the clock to `to` (forwards or backwards).
    pub fn set(&self, to: DateTime<Utc>) {
        self.nanos.store(clamp_nanos(to), Ordering::Release);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        ManualClock::now(self)
    }

    fn now_nanos(&self) -> i64 {
        self.nanos.load(Ordering::Acquire)
    }
}

/// `DateTime` to engine nanoseconds; `None` outside years 1677-2262.
pub(crate) fn to_nanos(t: DateTime<Utc>) -> Option<i64> {
    t.timestamp_nanos_opt()
}

fn clamp_nanos(t: DateTime<Utc>) -> i64 {
    to_nanos(t).unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// Engine nanoseconds to `DateTime` (total: every `i64` is representable).
pub(crate) fn from_nanos(n: i64) -> DateTime<Utc> {
    Utc.timestamp_nanos(n)
}

/// A `Duration` as engine nanoseconds, saturating.
pub(crate) fn duration_nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}
