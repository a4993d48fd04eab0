//! Loom models of cronlane's concurrency guarantees (issue 4).
//!
//! Run them under loom with
//!
//! ```text
//! RUSTFLAGS="--cfg cronlane_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     CARGO_TARGET_DIR=target/loom cargo test -p loom-tests --release
//! ```
//!
//! Under `--cfg cronlane_loom` the library swaps its atomics, `Arc`, queue,
//! ordered map and swappable pointers for loom's (see `src/sync.rs`), and
//! [`model`] is `loom::model`: every interleaving of the model's threads is
//! explored, up to the preemption bound. In the ordinary build the same
//! models compile and run a few times on std threads, as a smoke test, so a
//! change that breaks them is seen by `cargo test --workspace`.
//!
//! The models themselves are in [`models`]; `tests/models.rs` runs each one
//! and `tests/teeth.rs` (loom only) runs each again with a deliberately
//! broken piece of the protocol (`cronlane::__loom::BREAK_*`), expecting loom
//! to find the interleaving that breaks the guarantee.
#![deny(missing_docs)]

pub mod models;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};

/// Threads: loom's under the cfg, std's otherwise.
pub mod thread {
    #[cfg(cronlane_loom)]
    pub use loom::thread::{spawn, JoinHandle};
    #[cfg(not(cronlane_loom))]
    pub use std::thread::{spawn, JoinHandle};
}

/// How many times a model runs in the ordinary build (no loom).
#[cfg(not(cronlane_loom))]
pub const SMOKE_RUNS: usize = 16;

/// Runs `a` on a new thread and `b` on this one, then joins. Under loom the
/// two simply race (loom explores their interleavings); on std threads a
/// `Barrier` releases them together, so that the native stress runs
/// (`loom-tests/tests/stress.rs`) overlap them as much as a real machine can.
pub fn race<A, B>(a: A, b: B)
where
    A: FnOnce() + Send + 'static,
    B: FnOnce(),
{
    #[cfg(cronlane_loom)]
    {
        let t = thread::spawn(a);
        b();
        t.join().expect("join");
    }
    #[cfg(not(cronlane_loom))]
    {
        let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
        let g = gate.clone();
        let t = thread::spawn(move || {
            g.wait();
            a();
        });
        gate.wait();
        b();
        t.join().expect("join");
    }
}

/// Serialises models against broken twins: ordinary models share the lock,
/// a broken twin holds it alone while its switch is on (the switches are
/// process-wide statics, and the test harness runs tests in parallel).
static SWITCHES: RwLock<()> = RwLock::new(());

/// Runs `f` as a loom model (every interleaving, up to the preemption bound;
/// `LOOM_MAX_PREEMPTIONS` overrides the default of 2) or, without loom,
/// [`SMOKE_RUNS`] times on std threads.
pub fn model<F>(f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let _shared = SWITCHES.read().unwrap_or_else(PoisonError::into_inner);
    run(f);
}

#[cfg(cronlane_loom)]
fn run<F>(f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    builder.check(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        f()
    });
    eprintln!(
        "loom: {} interleavings explored (preemption bound {:?})",
        runs.load(Ordering::Relaxed),
        builder.preemption_bound
    );
}

#[cfg(not(cronlane_loom))]
fn run<F>(f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    for _ in 0..SMOKE_RUNS {
        f();
    }
}

/// Runs model `f` with timeline runs on: under loom a drain groups even a
/// single plain one-shot into a run (`cronlane::__loom::RUN_MIN` = 1), so
/// the model explores the run path of the claim protocol. In the ordinary
/// build runs need 32 tasks of one id block, which these small models do
/// not register: there this is [`model`] (a smoke run of the one-entry
/// path; `tests/runs.rs` in the main crate covers runs natively).
pub fn model_with_runs<F>(f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    #[cfg(cronlane_loom)]
    {
        let _alone = SWITCHES.write().unwrap_or_else(PoisonError::into_inner);
        let _runs = RunsOn::new();
        run(f);
    }
    #[cfg(not(cronlane_loom))]
    model(f);
}

/// Turns runs on for single tasks while it lives (loom only).
#[cfg(cronlane_loom)]
struct RunsOn;

#[cfg(cronlane_loom)]
impl RunsOn {
    fn new() -> RunsOn {
        cronlane::__loom::RUN_MIN.store(1, Ordering::SeqCst);
        RunsOn
    }
}

#[cfg(cronlane_loom)]
impl Drop for RunsOn {
    fn drop(&mut self) {
        cronlane::__loom::RUN_MIN.store(usize::MAX, Ordering::SeqCst);
    }
}

/// Runs model `f` with the given `BREAK_*` switches on (loom only). The
/// caller is a `#[should_panic]` test: loom must find an interleaving in
/// which the model's assertion fails.
#[cfg(cronlane_loom)]
pub fn broken<F>(switches: &[&'static std::sync::atomic::AtomicBool], f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    broken_inner(switches, false, f)
}

/// [`broken`] for a model of [`model_with_runs`]: runs on as well.
#[cfg(cronlane_loom)]
pub fn broken_with_runs<F>(switches: &[&'static std::sync::atomic::AtomicBool], f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    broken_inner(switches, true, f)
}

#[cfg(cronlane_loom)]
fn broken_inner<F>(switches: &[&'static std::sync::atomic::AtomicBool], runs: bool, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    struct Off<'a>(&'a [&'static std::sync::atomic::AtomicBool]);
    impl Drop for Off<'_> {
        fn drop(&mut self) {
            for s in self.0 {
                s.store(false, Ordering::SeqCst);
            }
        }
    }
    let _alone = SWITCHES.write().unwrap_or_else(PoisonError::into_inner);
    let _runs = runs.then(RunsOn::new);
    for s in switches {
        s.store(true, Ordering::SeqCst);
    }
    let _off = Off(switches);
    run(f);
}

/// A shared counter. Observation only: a std atomic, which loom does not
/// see. Models read counters (and [`Flag`]s) only after joining the threads
/// that write them: loom's partial-order reduction does not reorder
/// operations it cannot see, so a std atomic must never be used to compare
/// the timing of two model threads (see `docs/loom.md`).
#[derive(Clone, Default)]
pub struct Counter(std::sync::Arc<AtomicUsize>);

impl Counter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    /// The count.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A flag set once, for observations such as "remove has returned `Ok`".
#[derive(Clone, Default)]
pub struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Flag {
    /// A lowered flag.
    pub fn new() -> Self {
        Self::default()
    }
    /// Raises it.
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether it is raised.
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A one-shot signal a model thread can block on: loom's `Notify` (so that
/// a wait nobody will end is reported as a deadlock) or, without loom, a
/// mutex and condvar.
#[derive(Clone)]
pub struct Notify {
    /// Loom's `Notify` may wake spuriously: `wait` loops on this.
    #[cfg(cronlane_loom)]
    given: Flag,
    #[cfg(cronlane_loom)]
    inner: loom::sync::Arc<loom::sync::Notify>,
    #[cfg(not(cronlane_loom))]
    inner: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl Notify {
    /// A signal not yet given.
    pub fn new() -> Self {
        Notify {
            #[cfg(cronlane_loom)]
            given: Flag::new(),
            inner: Default::default(),
        }
    }
    /// Gives the signal.
    pub fn notify(&self) {
        #[cfg(cronlane_loom)]
        {
            self.given.raise();
            self.inner.notify();
        }
        #[cfg(not(cronlane_loom))]
        {
            let (lock, cv) = &*self.inner;
            *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
            cv.notify_all();
        }
    }
    /// Waits for the signal (on std threads at most 20 s, then panics).
    pub fn wait(&self) {
        #[cfg(cronlane_loom)]
        while !self.given.is_raised() {
            self.inner.wait();
        }
        #[cfg(not(cronlane_loom))]
        {
            // Bounded on std threads: a signal that never comes is a test
            // failure after 20 s, not a hang (under loom, a deadlock report).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            let (lock, cv) = &*self.inner;
            let mut given = lock.lock().unwrap_or_else(PoisonError::into_inner);
            while !*given {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                assert!(!left.is_zero(), "Notify::wait: no signal within 20 s");
                given = cv
                    .wait_timeout(given, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
    }
}

impl Default for Notify {
    fn default() -> Self {
        Self::new()
    }
}

/// How many model threads are inside a section at once, and the most ever
/// seen. Entering and leaving are loom-visible atomics, so loom runs other
/// threads between them (a second thread may enter meanwhile); the most
/// seen is an observation, read only after the join, like a [`Counter`].
#[derive(Clone)]
pub struct Gauge {
    #[cfg(cronlane_loom)]
    inside: loom::sync::Arc<loom::sync::atomic::AtomicUsize>,
    #[cfg(not(cronlane_loom))]
    inside: std::sync::Arc<AtomicUsize>,
    most: std::sync::Arc<AtomicUsize>,
}

impl Gauge {
    /// Nobody inside, none seen.
    pub fn new() -> Self {
        Gauge {
            inside: Default::default(),
            most: Default::default(),
        }
    }
    /// One more thread inside.
    pub fn enter(&self) {
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }
    /// One thread fewer inside.
    pub fn leave(&self) {
        self.inside.fetch_sub(1, Ordering::SeqCst);
    }
    /// The most threads inside at once so far.
    pub fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
}

impl Default for Gauge {
    fn default() -> Self {
        Self::new()
    }
}

/// Holds a loom object (a clock, a [`Notify`]) on the stack of a model
/// thread that may be the one where loom reports a deadlock. That report
/// is a panic; loom has stopped scheduling by then, so dropping a loom
/// object while the thread unwinds panics again and aborts the whole test
/// binary (a broken twin expecting the deadlock then takes every test of
/// the binary down with it). While the thread panics, this leaks the object
/// instead; otherwise it drops it as usual.
pub struct KeepOnPanic<T>(Option<T>);

impl<T> KeepOnPanic<T> {
    /// Holds `value`.
    pub fn new(value: T) -> Self {
        KeepOnPanic(Some(value))
    }
}

impl<T> std::ops::Deref for KeepOnPanic<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_ref().expect("held until dropped")
    }
}

impl<T> Drop for KeepOnPanic<T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::mem::forget(self.0.take());
        }
    }
}
