//! Next-fire and parse speed: cronlane against the `cron` (0.17) and `croner`
//! (4) crates, in the same run.
//!
//! Each iteration asks for the next fire after one of 256 instants spread over
//! a year (cycled), so the numbers are not one memoised input.
//!
//! Run: `cargo bench --bench cron_next -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs)]

use std::hint::black_box;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cronlane::cron::CronExpr;

/// 256 instants spread over 2025 (a fixed LCG, so every run sees the same).
fn instants() -> Vec<DateTime<Utc>> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..256)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let secs = 1_735_689_600 + (x >> 33) as i64 % 31_536_000;
            DateTime::from_timestamp(secs, 0).unwrap_or_default()
        })
        .collect()
}

struct Case {
    name: &'static str,
    vixie: &'static str,
    /// The same schedule for the `cron` crate (seconds first, 1 = Sunday).
    cron_crate: &'static str,
    tz: Tz,
}

const CASES: [Case; 2] = [
    Case {
        name: "every 5s (*/5 * * * * *) UTC",
        vixie: "*/5 * * * * *",
        cron_crate: "*/5 * * * * *",
        tz: Tz::UTC,
    },
    Case {
        name: "weekdays 09:00 (0 9 * * MON-FRI) Europe/Berlin",
        vixie: "0 9 * * MON-FRI",
        cron_crate: "0 0 9 * * Mon-Fri",
        tz: chrono_tz::Europe::Berlin,
    },
];

fn next_fire(c: &mut Criterion) {
    let ats = instants();
    let mut group = c.benchmark_group("next_fire");
    group.throughput(Throughput::Elements(1));
    for case in &CASES {
        let tz = case.tz;
        let ours = CronExpr::parse(case.vixie).expect("cronlane parses");
        let mut i = 0usize;
        group.bench_function(BenchmarkId::new("cronlane", case.name), |b| {
            b.iter(|| {
                i = (i + 1) & 255;
                black_box(ours.next_after(black_box(ats[i]), &tz))
            })
        });

        let theirs = cron::Schedule::from_str(case.cron_crate).expect("cron parses");
        let local: Vec<DateTime<Tz>> = ats.iter().map(|t| t.with_timezone(&tz)).collect();
        group.bench_function(BenchmarkId::new("cron 0.17", case.name), |b| {
            b.iter(|| {
                i = (i + 1) & 255;
                black_box(theirs.after(black_box(&local[i])).next())
            })
        });

        let croner = croner::Cron::from_str(case.vixie).expect("croner parses");
        group.bench_function(BenchmarkId::new("croner 4", case.name), |b| {
            b.iter(|| {
                i = (i + 1) & 255;
                black_box(
                    croner
                        .find_next_occurrence(black_box(&local[i]), false)
                        .ok(),
                )
            })
        });
    }
    group.finish();
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    for (vixie, cron_crate) in [
        ("0 9 * * MON-FRI", "0 0 9 * * Mon-Fri"),
        ("*/15 9-17 1,15 * 1-5", "0 */15 9-17 1,15 * 2-6"),
    ] {
        group.bench_function(BenchmarkId::new("cronlane", vixie), |b| {
            b.iter(|| black_box(CronExpr::parse(black_box(vixie))))
        });
        group.bench_function(BenchmarkId::new("cron 0.17", vixie), |b| {
            b.iter(|| black_box(cron::Schedule::from_str(black_box(cron_crate))))
        });
        group.bench_function(BenchmarkId::new("croner 4", vixie), |b| {
            b.iter(|| black_box(croner::Cron::from_str(black_box(vixie))))
        });
    }
    group.finish();
}

criterion_group!(benches, next_fire, parse);
criterion_main!(benches);
