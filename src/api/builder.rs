//! [`SchedulerBuilder`]: the one way to configure a [`Scheduler`].

use crate::api::scheduler::Scheduler;
use crate::clock::{Clock, SystemClock};
use crate::engine::registry::Registry;
use crate::engine::timeline::Timeline;
use crate::error::Error;
use crate::policy::{Misfire, DEFAULT_MISFIRE_GRACE};
use crate::run::core::Core;
use crate::run::dispatch::Dispatcher;
use crate::run::events::Listener;
use crate::run::report::StatsCells;
use crate::run::runner::RunnerSignal;
use crate::stats::Histogram;
use crate::sync::{AtomicU64, AtomicUsize, HandleArc as Arc};
use chrono_tz::Tz;
use std::time::Duration;

/// Builds a [`Scheduler`]: clock, dispatcher, default time zone, test mode.
///
/// ```
/// use cronlane::{Dispatcher, ManualClock, Misfire, Scheduler};
/// use std::time::Duration;
///
/// let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
/// let scheduler = Scheduler::builder()
///     .clock(clock.clone())                   // default: the system clock
///     .dispatcher(Dispatcher::pool(4))        // default: inline
///     .time_zone_named("Europe/Berlin")?      // default zone of cron schedules (UTC)
///     .misfire_grace(Duration::from_secs(5))  // default 1 s
///     .misfire(Misfire::Skip)                 // default for tasks that don't choose
///     .test_mode(true)
///     .build();
/// assert!(scheduler.is_test_mode());
/// # Ok::<(), cronlane::Error>(())
/// ```
#[must_use]
pub struct SchedulerBuilder {
    clock: Arc<dyn Clock>,
    dispatcher: Dispatcher,
    tz: Tz,
    test_mode: bool,
    keys: Option<crate::seal::KeyRing>,
    grace: Duration,
    misfire: Misfire,
    seed: Option<u64>,
    listener: Option<Arc<dyn Listener>>,
    store: Option<Box<dyn crate::store::Store>>,
    /// The runtime async tasks are spawned on (`api::asynch`).
    #[cfg(feature = "tokio")]
    pub(super) tokio: Option<::tokio::runtime::Handle>,
}

impl Default for SchedulerBuilder {
    fn default() -> Self {
        SchedulerBuilder {
            clock: Arc::new(SystemClock),
            dispatcher: Dispatcher::default(),
            tz: Tz::UTC,
            test_mode: false,
            keys: None,
            store: None,
            grace: DEFAULT_MISFIRE_GRACE,
            misfire: Misfire::default(),
            seed: None,
            listener: None,
            #[cfg(feature = "tokio")]
            tokio: None,
        }
    }
}

impl SchedulerBuilder {
    /// The clock (default: [`SystemClock`]). Tests pass a [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Where callbacks run (default: inline).
    pub fn dispatcher(mut self, dispatcher: Dispatcher) -> Self {
        self.dispatcher = dispatcher;
        self
    }

    /// The zone cron schedules are evaluated in unless they name their own
    /// (default: UTC).
    pub fn time_zone(mut self, tz: Tz) -> Self {
        self.tz = tz;
        self
    }

    /// Like [`time_zone`](Self::time_zone), by IANA name (`"Europe/Berlin"`).
    pub fn time_zone_named(self, name: &str) -> Result<Self, Error> {
        let tz: Tz = name
            .parse()
            .map_err(|_| Error::UnknownTimeZone(name.to_owned()))?;
        Ok(self.time_zone(tz))
    }

    /// Test mode. Not covered by semver: meant for tests of code that uses
    /// cronlane. Marks the scheduler as a test scheduler
    /// ([`Scheduler::is_test_mode`]); pair it with a manual clock.
    pub fn test_mode(mut self, on: bool) -> Self {
        self.test_mode = on;
        self
    }

    /// The key ring that task payloads are sealed with (production mode).
    /// Without one, registering a task with a payload fails with
    /// [`Error::NoKey`] unless the scheduler is in test mode, where payloads
    /// are kept in the clear. See `docs/seal.md`. Needs the `seal` feature
    /// (on by default).
    ///
    /// ```
    /// use cronlane::{Key, KeyRing, Scheduler};
    /// let ring = KeyRing::new(Key::generate(1)?);
    /// let scheduler = Scheduler::builder().keys(ring).build();
    /// # let _ = scheduler;
    /// # Ok::<(), cronlane::Error>(())
    /// ```
    #[cfg(feature = "seal")]
    pub fn keys(mut self, ring: crate::seal::KeyRing) -> Self {
        self.keys = Some(ring);
        self
    }

    /// How late a fire may start and still be on time (default
    /// [`DEFAULT_MISFIRE_GRACE`], 1 s). Later than that it is a misfire.
    pub fn misfire_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The misfire policy of tasks that do not choose their own (default
    /// [`Misfire::FireOnce`]).
    pub fn misfire(mut self, policy: Misfire) -> Self {
        self.misfire = policy;
        self
    }

    /// The seed of the jitter delays, for deterministic tests (default: drawn
    /// from the system clock at build time).
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// A listener for fire events (started, succeeded, failed, misfired,
    /// skipped). Without one the engine pays one branch per fire.
    pub fn listener(mut self, listener: impl Listener) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Keeps durable tasks in `store` (e.g. `RedbStore`
    /// with the `redb` feature): the scheduler loads its tasks at build and
    /// arms each once its handler is registered ([`Scheduler::handler`]).
    /// Non-durable tasks on the same scheduler are unaffected.
    pub fn store(mut self, store: impl crate::store::Store) -> Self {
        self.store = Some(Box::new(store));
        self
    }

    /// Builds the scheduler.
    pub fn build(self) -> Scheduler {
        let seed = self.seed.unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            now ^ (&self as *const Self as u64).rotate_left(32)
        });
        let scheduler = Scheduler {
            core: Arc::new(Core {
                clock: self.clock,
                timeline: Timeline::new(),
                registry: Registry::new(),
                dispatch: self.dispatcher.build(),
                tz: self.tz,
                test_mode: self.test_mode,
                seal: crate::seal::Sealer::new(self.keys),
                next_id: AtomicU64::new(1),
                gone: AtomicU64::new(0),
                jobs: AtomicUsize::new(0),
                stats: StatsCells::default(),
                runner: RunnerSignal::new(),
                grace: crate::clock::duration_nanos(self.grace),
                misfire: self.misfire,
                seed,
                listener: self.listener,
                lag: Histogram::fine(),
                durable: self
                    .store
                    .map(|s| Box::new(crate::run::durable::Durable::new(s))),
                #[cfg(feature = "tokio")]
                asynch: match self.tokio {
                    Some(h) => std::sync::OnceLock::from(Box::new(
                        crate::run::tokio::AsyncSide::new(Some(h)),
                    )),
                    None => std::sync::OnceLock::new(),
                },
            }),
        };
        crate::run::link::attach(&scheduler.core);
        scheduler
    }
}
