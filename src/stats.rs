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
//! allocates nothing. The lag histogram has [`BUCKETS`] buckets (about 1.3 KiB)
//! with at most 25% relative error per bucket; the maximum is exact.

use crate::clock::from_nanos;
use crate::policy::{Misfire, Overlap};
use crate::schedule::Plan;
use crate::sync::plain::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use crate::sync::SwapOption;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Number of histogram buckets: 8 exact ones below 8 ns, then 4 per power of
/// two up to 2^40 ns (about 18 minutes); larger values land in the last.
pub(crate) const BUCKETS: usize = 8 + 38 * 4;

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

/// A lock-free log-linear histogram of nanosecond values.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    fn index(v: u64) -> usize {
        if v < 8 {
            return v as usize;
        }
        let e = 63 - v.leading_zeros() as usize; // >= 3
        let m = ((v >> (e - 2)) & 3) as usize;
        (8 + (e - 3) * 4 + m).min(BUCKETS - 1)
    }

    /// The largest value that lands in bucket `i`.
    fn upper(i: usize) -> u64 {
        if i < 8 {
            return i as u64;
        }
        let e = (i - 8) / 4 + 3;
        let m = ((i - 8) % 4) as u64;
        ((4 + m + 1) << (e - 2)) - 1
    }

    pub(crate) fn record(&self, nanos: i64) {
        let v = nanos.max(0) as u64;
        // One read-modify-write per record on the common path: the count is
        // the sum of the buckets, and the maximum is only written when beaten.
        self.buckets[Self::index(v)].fetch_add(1, Ordering::Relaxed);
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
                    return Self::upper(i).min(max);
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
    /// Runs in progress (overlap policy `Allow`).
    pub(crate) running: AtomicU32,
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
            lag: Histogram::new(),
            streak: AtomicU32::new(0),
            running: AtomicU32::new(0),
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
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 20, 1 << 30, (1 << 40) - 1]) {
            let i = Histogram::index(v);
            assert!(i >= last || v < 8, "index not monotonic at {v}");
            last = i;
            assert!(
                Histogram::upper(i) >= v,
                "{v} above its bucket's upper bound"
            );
            if v >= 8 {
                // At most 25% relative error.
                assert!(Histogram::upper(i) as f64 <= v as f64 * 1.25 + 1.0);
            }
        }
    }

    #[test]
    fn summary_picks_percentiles() {
        let h = Histogram::new();
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
