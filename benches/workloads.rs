//! Issue 18's real workloads, cronlane against the `Mutex<BinaryHeap>`
//! baseline in the same run (the peers run the same cases next to theirs in
//! `peer-benches/benches/workloads.rs`). The cases themselves, with their
//! exactly-once checks, are in `benches/workloads/shared.rs`.
//!
//! Run: `cargo bench --bench workloads` (sizes 10,000 and 100,000; set
//! `WL_SIZES=10000,100000,1000000` for more).

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion};
use criterion::{SamplingMode, Throughput};
use std::time::Duration;

#[path = "workloads/shared.rs"]
mod shared;
use shared::*;

fn sizes() -> Vec<usize> {
    std::env::var("WL_SIZES")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().parse().expect("size"))
                .collect()
        })
        .unwrap_or_else(|| vec![10_000, 100_000])
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, n: usize) {
    group.throughput(Throughput::Elements(n as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
}

/// One case: each iteration is one call of `f`, which returns its timed part.
fn case(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, n: usize, f: &dyn Fn() -> Duration) {
    group.bench_function(BenchmarkId::new(name, n), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| f()).sum());
    });
}

fn bench_steady(c: &mut Criterion) {
    for threads in [1usize, 2] {
        let mut group = c.benchmark_group(format!("wl_steady/{threads}t"));
        for n in sizes() {
            configure(&mut group, n);
            for kind in [Recur::Every, Recur::Cron, Recur::NamedEvery] {
                let id = BenchmarkId::new(format!("cronlane_{}", kind.label()), n);
                group.bench_function(id, |b| {
                    let mut st = lane_steady(n, kind);
                    b.iter_custom(|iters| {
                        (0..iters).map(|_| lane_steady_pass(&mut st, threads)).sum()
                    });
                    st.counters.check(st.passes);
                });
            }
            group.bench_function(BenchmarkId::new("heap_every", n), |b| {
                let mut st = heap_steady(n);
                b.iter_custom(|iters| (0..iters).map(|_| heap_steady_pass(&mut st, threads)).sum());
                st.counters.check(st.passes);
            });
        }
        group.finish();
    }
}

fn bench_once_due(c: &mut Criterion) {
    let mut group = c.benchmark_group("wl_once_due");
    for n in sizes() {
        configure(&mut group, n);
        case(&mut group, "cronlane", n, &|| lane_once_due(n));
        case(&mut group, "cronlane_drained", n, &|| {
            lane_once_due_drained(n)
        });
        case(&mut group, "heap", n, &|| heap_once_due(n));
    }
    group.finish();
}

fn bench_register(c: &mut Criterion) {
    for threads in [1usize, 2] {
        let mut group = c.benchmark_group(format!("wl_register/{threads}t"));
        for n in sizes() {
            configure(&mut group, n);
            for kind in [
                Reg::Once,
                Reg::Every,
                Reg::NamedEvery,
                Reg::Cron,
                Reg::CronParse,
            ] {
                case(
                    &mut group,
                    &format!("cronlane_{}", kind.label()),
                    n,
                    &|| lane_register(n, kind, threads),
                );
            }
            case(&mut group, "heap_every", n, &|| heap_register(n, threads));
        }
        group.finish();
    }
}

fn bench_trickle(c: &mut Criterion) {
    let mut group = c.benchmark_group("wl_trickle");
    for n in sizes() {
        configure(&mut group, n);
        case(&mut group, "cronlane_register_tick", n, &|| {
            lane_trickle(n).0
        });
        case(&mut group, "cronlane_fire_trickled", n, &|| {
            lane_trickle(n).1
        });
        case(&mut group, "cronlane_fire_bulk", n, &|| lane_bulk_fire(n));
    }
    group.finish();
}

fn bench_manage(c: &mut Criterion) {
    for threads in [1usize, 2] {
        let mut group = c.benchmark_group(format!("wl_manage/{threads}t"));
        for n in sizes() {
            configure(&mut group, n);
            for by in [By::Id, By::Name] {
                case(
                    &mut group,
                    &format!("cronlane_remove_{}", by.label()),
                    n,
                    &|| lane_remove(n, by, threads),
                );
                case(
                    &mut group,
                    &format!("cronlane_lookup_{}", by.label()),
                    n,
                    &|| lane_lookup(n, by, threads),
                );
            }
            case(&mut group, "heap_tombstone", n, &|| heap_remove(n, threads));
        }
        group.finish();
    }
}

criterion_group!(
    benches,
    bench_steady,
    bench_once_due,
    bench_register,
    bench_trickle,
    bench_manage
);
criterion_main!(benches);
