//! Sealed payloads: the added cost per fire of opening a payload.
//!
//! Each sample builds a scheduler, registers `N` one-shot tasks that are due
//! at once, and times only `run_pending` (with `iter_custom`): the fire path
//! of N tasks with no payload, with a payload in the clear (test mode), and
//! with a sealed payload (production mode: XChaCha20-Poly1305 open into a
//! zeroizing buffer, wiped after the callback), for 64-byte and 4 KiB
//! payloads. The difference from "none" is the per-fire cost of the payload.
//! `Throughput::Elements` reads as fires per second.
//!
//! Run: `cargo bench --bench seal -- --warm-up-time 1 --measurement-time 3`
//! (figures in docs/seal.md).

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cronlane::{Key, KeyRing, ManualClock, Schedule, Scheduler};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Tasks fired per sample.
const N: usize = 1_000;

/// What every callback does: read the payload's length and add it up.
static SEEN: AtomicU64 = AtomicU64::new(0);

fn t0() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().expect("valid instant")
}

#[derive(Clone, Copy)]
enum Mode {
    None,
    Clear(usize),
    Sealed(usize),
}

impl Mode {
    fn id(self) -> BenchmarkId {
        match self {
            Mode::None => BenchmarkId::new("no_payload", 0),
            Mode::Clear(n) => BenchmarkId::new("clear_test_mode", n),
            Mode::Sealed(n) => BenchmarkId::new("sealed", n),
        }
    }
}

/// A scheduler with `N` due one-shots in `mode`.
fn loaded(mode: Mode) -> Scheduler {
    let clock = ManualClock::new(t0());
    let mut b = Scheduler::builder().clock(clock);
    match mode {
        Mode::Clear(_) => b = b.test_mode(true),
        _ => b = b.keys(KeyRing::new(Key::from_bytes(1, [7; 32]))),
    }
    let s = b.build();
    for i in 0..N {
        let task = s.add(Schedule::once(t0()));
        let task = match mode {
            Mode::None => task,
            Mode::Clear(n) | Mode::Sealed(n) => task.payload(vec![i as u8; n]),
        };
        task.run_with_context(|ctx| {
            let len = ctx.payload().map_or(0, |p| p.len());
            SEEN.fetch_add(black_box(len) as u64, Ordering::Relaxed);
        })
        .expect("registered");
    }
    s
}

fn fire(c: &mut Criterion) {
    let mut group = c.benchmark_group("seal/fire");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20);
    for mode in [
        Mode::None,
        Mode::Clear(64),
        Mode::Sealed(64),
        Mode::Clear(4096),
        Mode::Sealed(4096),
    ] {
        group.bench_function(mode.id(), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let s = loaded(mode);
                    let start = Instant::now();
                    let report = s.run_pending();
                    total += start.elapsed();
                    assert_eq!(report.fired, N as u64);
                    assert_eq!(report.failed, 0);
                    drop(black_box(s));
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fire);
criterion_main!(benches);
