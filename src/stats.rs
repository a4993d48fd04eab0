//! Statistics: counters and fire-lag histograms, per task and overall.
//!
//! Everything here is written with relaxed atomic adds: the numbers are
//! reports, not synchronisation, and no reader relies on seeing two of them
//! consistently.
//!
//! A task's detailed statistics live in an `Extras` block allocated on first
//! need: at registration when the task has non-default policies, on the first
//! fire of a recurring task, or on the first failure, skip or misfire. A
//! one-shot that fires cleanly never allocates one, so the common fire path
//! allocates nothing.
//!
//! Lag histograms are log-linear and cover every lag an `i64` of nanoseconds
//! can hold (up to 2^63 ns, 292 years), each keeping the exact maximum:
//!
//! * the scheduler-wide one has 4 buckets per power of two (248 `u64`
//!   buckets, 1,984 bytes, one per scheduler; at most 25 % relative error per
//!   bucket);
//! * a task's own has 1 bucket per power of two (64 buckets; percentiles
//!   within a factor of 2): the first six buckets its lags fall in are held
//!   inline in the task's `Extras` block (72 bytes with the maximum), the
//!   full array of 64 `u32` counts (256 bytes) is allocated only when a
//!   seventh is needed. Its counts stop at `u32::MAX` per bucket (4.29 billion
//!   runs with lags within one power of two, 50 days of a 1 ms task): from
//!   then on that task's `count` and percentiles understate. The
//!   scheduler-wide counts are 64-bit.
//!
//! An `Extras` block is 208 bytes (the cursor, the last start and the end policies included), in one allocation (measured with
//! `size_of`, checked by a test below).

use crate::clock::from_nanos;
use crate::policy::{Misfire, Overlap};
use crate::schedule::Plan;
use crate::sync::plain::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use crate::sync::SwapOption;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The largest power of two (in ns) below a lag: lags are `i64`
/// nanoseconds, at most `2^63 - 1`.
const MAX_EXP: u32 = 62;

/// Sub-buckets per power of two, as a power of two: scheduler-wide (4).
const FINE_SUB: u32 = 2;

/// Sub-buckets per power of two, as a power of two: per task (1).
const TASK_SUB: u32 = 0;

/// Buckets of a histogram with `2^sub` buckets per power of two: exact
/// values below `2^(sub+1)`, then `2^sub` per power up to `2^MAX_EXP`.
const fn bucket_count(sub: u32) -> usize {
    (1usize << (sub + 1)) + ((MAX_EXP - sub) as usize) * (1 << sub)
}

const TASK_BUCKETS: usize = bucket_count(TASK_SUB);

/// Lag distribution summary.
///
/// ```
/// use cronlane::{ManualClock, Schedule, Scheduler};
/// use std::time::Duration;
///
/// let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
/// let s = Scheduler::builder().clock(clock.clone()).build();
/// s.add(Schedule::after(Duration::from_secs(1))).name("late").run(|| ())?;
/// clock.advance(Duration::from_millis(1_250)); // 250 ms after its instant
/// s.run_pending();
/// let lag = s.stats().lag;
/// assert_eq!(lag.count, 1);
/// assert_eq!(lag.max, Duration::from_millis(250)); // the maximum is exact
/// # Ok::<(), cronlane::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LagSummary {
    /// Fires measured.
    pub count: u64,
    /// Median lag (upper bound of its histogram bucket).
    pub p50: Duration,
    /// 99th percentile lag (upper bound of its histogram bucket).
    pub p99: Duration,
    /// Largest lag seen (exact).
    pub max: Duration,
}

/// The bucket of `v` with `2^sub` buckets per power of two.
fn index(sub: u32, v: u64) -> usize {
    let s = sub;
    if v < 1 << (s + 1) {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= s + 1
    let m = ((v >> (e - s)) & ((1 << s) - 1)) as usize;
    let i = (1usize << (s + 1)) + ((e - s - 1) as usize) * (1 << s) + m;
    // Only `v >= 2^63` (never a lag) would pass the last bucket.
    i.min(bucket_count(sub) - 1)
}

/// The largest value that lands in bucket `i`.
fn upper(sub: u32, i: usize) -> u64 {
    let s = sub;
    let exact = 1usize << (s + 1);
    if i < exact {
        return i as u64;
    }
    let j = i - exact;
    let e = (j >> s) as u32 + s + 1;
    let m = (j & ((1 << s) - 1)) as u64;
    // At most (2^(s+1) << (MAX_EXP - s)) - 1 = 2^63 - 1.
    (((1u64 << s) + m + 1) << (e - s)) - 1
}

/// Percentiles from bucket counts (upper bounds of buckets, capped by the
/// exact maximum).
fn summarize(sub: u32, counts: &[u64], max: u64) -> LagSummary {
    let total: u64 = counts.iter().sum();
    let pick = |q: f64| {
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(sub, i).min(max);
            }
        }
        max
    };
    LagSummary {
        count: total,
        p50: Duration::from_nanos(if total == 0 { 0 } else { pick(0.50) }),
        p99: Duration::from_nanos(if total == 0 { 0 } else { pick(0.99) }),
        max: Duration::from_nanos(max),
    }
}

/// The scheduler-wide histogram: a lock-free log-linear histogram of
/// nanosecond values, 4 buckets per power of two, exact below 8.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Histogram {
    /// The scheduler-wide resolution: 4 buckets per power of two.
    pub(crate) fn fine() -> Self {
        Histogram {
            buckets: (0..bucket_count(FINE_SUB))
                .map(|_| AtomicU64::new(0))
                .collect(),
            max: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, nanos: i64) {
        let v = nanos.max(0) as u64;
        // One read-modify-write per record on the common path: the count is
        // the sum of the buckets, and the maximum is only written when beaten.
        self.buckets[index(FINE_SUB, v)].fetch_add(1, Ordering::Relaxed);
        if v > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(v, Ordering::Relaxed);
        }
    }

    pub(crate) fn summary(&self) -> LagSummary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        summarize(FINE_SUB, &counts, self.max.load(Ordering::Relaxed))
    }
}

/// Lag buckets a task's histogram holds inline (see [`TaskHistogram`]).
const TASK_SLOTS: usize = 6;

/// A task's histogram: 1 bucket per power of two, `u32` counts saturating
/// at `u32::MAX`. The first [`TASK_SLOTS`] distinct buckets a task's lags
/// fall in are held inline, one word each (bucket number + 1 in the top 8
/// bits, count below); a seventh distinct bucket allocates the full array
/// of 64 counts, which holds every bucket not inline. A bucket lives in one
/// place for good: slots fill in order and are never freed, and a record
/// scans them in order, so a racing second record of a new bucket meets
/// the slot the first one claimed. Lags spanning up to 6 powers of two
/// (say 4 µs to 256 µs) cost 72 bytes instead of 264.
pub(crate) struct TaskHistogram {
    slots: [AtomicU64; TASK_SLOTS],
    max: AtomicU64,
    full: std::sync::OnceLock<Box<[AtomicU32; TASK_BUCKETS]>>,
}

const SLOT_SHIFT: u32 = 56;
const SLOT_COUNT: u64 = (1 << SLOT_SHIFT) - 1;

impl TaskHistogram {
    pub(crate) fn new() -> Self {
        TaskHistogram {
            slots: [const { AtomicU64::new(0) }; TASK_SLOTS],
            max: AtomicU64::new(0),
            full: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn record(&self, nanos: i64) {
        let v = nanos.max(0) as u64;
        self.add(index(TASK_SUB, v));
        if v > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(v, Ordering::Relaxed);
        }
    }

    /// One more lag in bucket `i`.
    fn add(&self, i: usize) {
        let tag = (i as u64 + 1) << SLOT_SHIFT;
        for slot in &self.slots {
            let mut w = slot.load(Ordering::Relaxed);
            if w == 0 {
                match slot.compare_exchange(0, tag | 1, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => return,
                    Err(actual) => w = actual,
                }
            }
            if w & !SLOT_COUNT == tag {
                // A saturating add (counts stop at u32::MAX, as in the
                // full array): one CAS, uncontended but for overlapping
                // runs of one task.
                let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                    (w & SLOT_COUNT < u64::from(u32::MAX)).then_some(w + 1)
                });
                return;
            }
        }
        let full = self
            .full
            .get_or_init(|| Box::new([const { AtomicU32::new(0) }; TASK_BUCKETS]));
        let _ = full[i].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_add(1));
    }

    pub(crate) fn summary(&self) -> LagSummary {
        let mut counts: Vec<u64> = match self.full.get() {
            Some(full) => full
                .iter()
                .map(|b| u64::from(b.load(Ordering::Relaxed)))
                .collect(),
            None => vec![0; TASK_BUCKETS],
        };
        for slot in &self.slots {
            let w = slot.load(Ordering::Relaxed);
            if w != 0 {
                counts[(w >> SLOT_SHIFT) as usize - 1] += w & SLOT_COUNT;
            }
        }
        summarize(TASK_SUB, &counts, self.max.load(Ordering::Relaxed))
    }
}

/// A task's run policies, resolved at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Policies {
    pub(crate) misfire: Misfire,
    pub(crate) overlap: Overlap,
    pub(crate) jitter: i64,
    /// No instant after this one (`TaskBuilder::until`).
    pub(crate) until: Option<i64>,
    /// At most this many runs (`TaskBuilder::times`).
    pub(crate) times: Option<std::num::NonZeroU64>,
    /// A durable task's delivery policy (`None`: not durable). Read once
    /// per fire with the rest, and only on a scheduler with a store.
    pub(crate) durable: Option<crate::policy::Delivery>,
}

impl Policies {
    /// Whether the task has an end (`until` or `times`).
    #[inline]
    pub(crate) fn ends(&self) -> bool {
        self.until.is_some() || self.times.is_some()
    }

    /// `next` within the task's end: `None` past `until`, or once `runs`
    /// (counting the run being decided) reached `times`.
    #[inline]
    pub(crate) fn bound(&self, next: Option<i64>, runs: u64) -> Option<i64> {
        if self.times.is_some_and(|n| runs >= n.get()) {
            return None;
        }
        next.filter(|&at| self.until.is_none_or(|u| at <= u))
    }
}

/// A task's rarely-needed state: policies and detailed statistics.
pub(crate) struct Extras {
    pub(crate) policies: Policies,
    pub(crate) runs: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) skips: AtomicU64,
    pub(crate) misfires: AtomicU64,
    pub(crate) last_run: AtomicI64,
    /// When the last run's callback started (the scheduler's clock).
    pub(crate) last_started: AtomicI64,
    pub(crate) last_error: SwapOption<String>,
    pub(crate) lag: TaskHistogram,
    /// Catch-up runs in a row (misfire policy `CatchUp`).
    pub(crate) streak: AtomicU32,
    /// Runs in progress (overlap policy `Allow`). Part of a protocol (at
    /// most `max` callbacks at once), so from the sync facade: loom sees it.
    pub(crate) running: crate::sync::AtomicU32,
    /// A plan set by `reschedule`; overrides the task's own once set.
    pub(crate) replan: SwapOption<Plan>,
    /// The latest scheduled instant whose run started (instants skipped
    /// without a run leave it); `i64::MIN` before the first. Written
    /// (`fetch_max`) by the claim owner after `start` and before `finish`,
    /// whose `AcqRel` CAS publishes it to any manager that later loads the
    /// state word; see [`Plan::first_after_cursor`].
    pub(crate) cursor: AtomicI64,
}

impl Extras {
    pub(crate) fn new(policies: Policies) -> Self {
        Extras {
            policies,
            runs: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            skips: AtomicU64::new(0),
            misfires: AtomicU64::new(0),
            last_run: AtomicI64::new(i64::MIN),
            last_started: AtomicI64::new(i64::MIN),
            last_error: SwapOption::empty(),
            lag: TaskHistogram::new(),
            streak: AtomicU32::new(0),
            running: crate::sync::AtomicU32::new(0),
            replan: SwapOption::empty(),
            cursor: AtomicI64::new(i64::MIN),
        }
    }

    pub(crate) fn snapshot(&self) -> TaskStats {
        let last_run = self.last_run.load(Ordering::Relaxed);
        TaskStats {
            runs: self.runs.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            skips: self.skips.load(Ordering::Relaxed),
            misfires: self.misfires.load(Ordering::Relaxed),
            last_run: (last_run != i64::MIN).then(|| from_nanos(last_run)),
            last_started: {
                let t = self.last_started.load(Ordering::Relaxed);
                (t != i64::MIN).then(|| from_nanos(t))
            },
            last_error: self.last_error.load().map(|e| e.as_str().to_owned()),
            lag: self.lag.summary(),
        }
    }
}

/// One task's statistics, from [`Scheduler::task_stats`](crate::Scheduler::task_stats).
///
/// ```
/// use cronlane::{ManualClock, Schedule, Scheduler};
/// use std::time::Duration;
///
/// let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
/// let s = Scheduler::builder().clock(clock.clone()).build();
/// s.add(Schedule::every(Duration::from_secs(1))).name("flaky").run(|| Err::<(), _>("timeout"))?;
/// clock.advance(Duration::from_secs(1));
/// s.run_pending();
/// let st = s.task_stats("flaky")?;
/// assert_eq!((st.runs, st.failures), (1, 1));
/// assert_eq!(st.last_error.as_deref(), Some("timeout"));
/// assert_eq!(st.last_run, st.last_started); // on time with a manual clock
/// # Ok::<(), cronlane::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskStats {
    /// Runs (callbacks started), successful or not.
    pub runs: u64,
    /// Runs that returned `Err` or panicked, or whose payload did not open.
    pub failures: u64,
    /// Instants that did not run: overlap, misfire, collapsed into a run of a
    /// later instant, removed or paused after claim.
    pub skips: u64,
    /// Fires that started later than their grace period.
    pub misfires: u64,
    /// Scheduled instant of the last run (what its `ctx.scheduled()` said).
    pub last_run: Option<DateTime<Utc>>,
    /// When the last run's callback actually started, by the scheduler's
    /// clock (its `ctx.started()`): `last_started - last_run` is its lateness.
    pub last_started: Option<DateTime<Utc>>,
    /// Message of the last failure.
    pub last_error: Option<String>,
    /// Fire lag (due instant to callback start).
    pub lag: LagSummary,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_cover_every_lag() {
        assert_eq!(bucket_count(FINE_SUB), 248);
        assert_eq!(TASK_BUCKETS, 64);
        let top = i64::MAX as u64;
        let year = 365 * 24 * 3600 * 1_000_000_000u64;
        let wide: Vec<u64> = (0..63)
            .flat_map(|e| [1u64 << e, (1u64 << e) + 1, (1u64 << e) * 3 / 2])
            .chain((1..64).map(|e| (1u64 << e) - 1))
            .chain([year, 2 * 3600 * 1_000_000_000, top])
            .collect();
        for (sub, err) in [(FINE_SUB, 1.25), (TASK_SUB, 2.0)] {
            let mut values: Vec<u64> = (0..100_000u64).chain(wide.iter().copied()).collect();
            values.sort_unstable();
            let mut last = 0;
            for v in values {
                let i = index(sub, v);
                assert!(i >= last, "index not monotonic at {v}");
                assert!(i < bucket_count(sub), "{v} past the last bucket");
                last = i;
                assert!(upper(sub, i) >= v, "{v} above its bucket's upper bound");
                assert!(
                    upper(sub, i) as f64 <= v as f64 * err + 1.0,
                    "{v}: bucket too wide"
                );
                if i > 0 {
                    assert!(upper(sub, i - 1) < v, "{v} belongs in a lower bucket");
                }
            }
            assert_eq!(
                index(sub, top),
                bucket_count(sub) - 1,
                "the last bucket is used"
            );
            assert_eq!(upper(sub, bucket_count(sub) - 1), top);
        }
    }

    #[test]
    fn a_task_histogram_saturates_instead_of_wrapping() {
        let h = TaskHistogram::new();
        h.record(5);
        let tag = h.slots[0].load(Ordering::Relaxed) & !SLOT_COUNT;
        h.slots[0].store(tag | u64::from(u32::MAX - 1), Ordering::Relaxed);
        for _ in 0..3 {
            h.record(5);
        }
        h.record(1_000);
        let s = h.summary();
        assert_eq!(s.count, u64::from(u32::MAX) + 1);
        assert_eq!(s.p50, Duration::from_nanos(7), "upper bound of [4, 8)");
        // The same in the full array, past the inline slots.
        let h = TaskHistogram::new();
        for e in 0..TASK_SLOTS as u32 {
            h.record(1 << (20 + e));
        }
        assert!(h.full.get().is_none(), "six buckets fit inline");
        h.record(5);
        h.full.get().expect("spilled")[index(TASK_SUB, 5)].store(u32::MAX - 1, Ordering::Relaxed);
        for _ in 0..3 {
            h.record(5);
        }
        assert_eq!(h.summary().count, u64::from(u32::MAX) + TASK_SLOTS as u64);
    }

    #[test]
    fn a_task_histogram_counts_the_same_inline_and_spilled() {
        // Lags over 40 powers of two: the first six buckets inline, the
        // rest in the full array; every one counted once, in its bucket.
        let h = TaskHistogram::new();
        let mut want = vec![0u64; TASK_BUCKETS];
        for k in 0..4000u64 {
            let v = (k * 7919) % (1 << 40);
            h.record(v as i64);
            want[index(TASK_SUB, v)] += 1;
        }
        let max = (0..4000u64)
            .map(|k| (k * 7919) % (1 << 40))
            .max()
            .unwrap_or(0);
        assert_eq!(h.summary(), summarize(TASK_SUB, &want, max));
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_extras_block_is_one_allocation_of_208_bytes() {
        // The figure in the module doc and docs/architecture.md's "Bytes per
        // task" (plus 256 for a task whose lags span more than six powers
        // of two: its full bucket array).
        assert_eq!(std::mem::size_of::<TaskHistogram>(), 72);
        assert_eq!(std::mem::size_of::<Extras>(), 208);
    }

    #[test]
    fn summary_picks_percentiles() {
        let h = Histogram::fine();
        for v in 1..=100 {
            h.record(v * 1_000);
        }
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.max, Duration::from_micros(100));
        assert!(s.p50 >= Duration::from_micros(50) && s.p50 <= Duration::from_micros(63));
        assert!(s.p99 >= Duration::from_micros(99) && s.p99 <= Duration::from_micros(100));
    }
}
