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
//! Lag histograms are log-linear: the scheduler-wide one has 4 buckets per
//! power of two (160 buckets, 1.3 KiB, at most 25% relative error per
//! bucket); a task's own has 1 per power of two (42 buckets, 336 bytes,
//! percentiles within a factor of 2). Both go up to 2^40 ns (about 18
//! minutes; larger values land in the last bucket) and keep the exact maximum.

use crate::clock::from_nanos;
use crate::policy::{Misfire, Overlap};
use crate::schedule::Plan;
use crate::sync::plain::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use crate::sync::SwapOption;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The largest power of two (in ns) a histogram resolves.
const MAX_EXP: u32 = 40;

/// Lag distribution summary.
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

/// A lock-free log-linear histogram of nanosecond values: `2^sub` buckets
/// per power of two, exact below `2^(sub+1)`.
pub(crate) struct Histogram {
    sub: u32,
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Histogram {
    /// The scheduler-wide resolution: 4 buckets per power of two.
    pub(crate) fn fine() -> Self {
        Self::with_sub(2)
    }

    /// A task's resolution: 1 bucket per power of two.
    pub(crate) fn coarse() -> Self {
        Self::with_sub(0)
    }

    fn with_sub(sub: u32) -> Self {
        let len = (1usize << (sub + 1)) + ((MAX_EXP - sub) as usize) * (1 << sub);
        Histogram {
            sub,
            buckets: (0..len).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    fn index(&self, v: u64) -> usize {
        let s = self.sub;
        if v < 1 << (s + 1) {
            return v as usize;
        }
        let e = 63 - v.leading_zeros(); // >= s + 1
        let m = ((v >> (e - s)) & ((1 << s) - 1)) as usize;
        let i = (1usize << (s + 1)) + ((e - s - 1) as usize) * (1 << s) + m;
        i.min(self.buckets.len() - 1)
    }

    /// The largest value that lands in bucket `i`.
    fn upper(&self, i: usize) -> u64 {
        let s = self.sub;
        let exact = 1usize << (s + 1);
        if i < exact {
            return i as u64;
        }
        let j = i - exact;
        let e = (j >> s) as u32 + s + 1;
        let m = (j & ((1 << s) - 1)) as u64;
        (((1u64 << s) + m + 1) << (e - s)) - 1
    }

    pub(crate) fn record(&self, nanos: i64) {
        let v = nanos.max(0) as u64;
        // One read-modify-write per record on the common path: the count is
        // the sum of the buckets, and the maximum is only written when beaten.
        self.buckets[self.index(v)].fetch_add(1, Ordering::Relaxed);
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
        let total: u64 = counts.iter().sum();
        let max = self.max.load(Ordering::Relaxed);
        let pick = |q: f64| {
            let rank = ((total as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return self.upper(i).min(max);
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
}

/// A task's run policies, resolved at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Policies {
    pub(crate) misfire: Misfire,
    pub(crate) overlap: Overlap,
    pub(crate) jitter: i64,
}

/// A task's rarely-needed state: policies and detailed statistics.
pub(crate) struct Extras {
    pub(crate) policies: Policies,
    pub(crate) runs: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) skips: AtomicU64,
    pub(crate) misfires: AtomicU64,
    pub(crate) last_run: AtomicI64,
    pub(crate) last_error: SwapOption<String>,
    pub(crate) lag: Histogram,
    /// Catch-up runs in a row (misfire policy `CatchUp`).
    pub(crate) streak: AtomicU32,
    /// Runs in progress (overlap policy `Allow`). Part of a protocol (at
    /// most `max` callbacks at once), so from the sync facade: loom sees it.
    pub(crate) running: crate::sync::AtomicU32,
    /// A plan set by `reschedule`; overrides the task's own once set.
    pub(crate) replan: SwapOption<Plan>,
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
            last_error: SwapOption::empty(),
            lag: Histogram::coarse(),
            streak: AtomicU32::new(0),
            running: crate::sync::AtomicU32::new(0),
            replan: SwapOption::empty(),
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
            last_error: self.last_error.load().map(|e| e.as_str().to_owned()),
            lag: self.lag.summary(),
        }
    }
}

/// One task's statistics, from [`Scheduler::task_stats`](crate::Scheduler::task_stats).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskStats {
    /// Runs (callbacks started), successful or not.
    pub runs: u64,
    /// Runs that returned `Err` or panicked, or whose payload did not open.
    pub failures: u64,
    /// Fires skipped (overlap, misfire `Skip`, removed or paused after claim).
    pub skips: u64,
    /// Fires that started later than their grace period.
    pub misfires: u64,
    /// Scheduled instant of the last run.
    pub last_run: Option<DateTime<Utc>>,
    /// Message of the last failure.
    pub last_error: Option<String>,
    /// Fire lag (due instant to callback start).
    pub lag: LagSummary,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_cover_their_values() {
        for (h, err) in [(Histogram::fine(), 1.25), (Histogram::coarse(), 2.0)] {
            assert_eq!(h.buckets.len(), if h.sub == 2 { 160 } else { 42 });
            let mut last = 0;
            for v in (0..100_000u64).chain([1 << 20, 1 << 30, (1 << 40) - 1]) {
                let i = h.index(v);
                assert!(i >= last, "index not monotonic at {v}");
                last = i;
                assert!(h.upper(i) >= v, "{v} above its bucket's upper bound");
                assert!(
                    h.upper(i) as f64 <= v as f64 * err + 1.0,
                    "{v}: bucket too wide"
                );
                if i > 0 {
                    assert!(h.upper(i - 1) < v, "{v} belongs in a lower bucket");
                }
            }
        }
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
