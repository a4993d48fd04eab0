//! Async tasks on the public face (feature `tokio`): `run_async` on the
//! task builder, the runtime handle on the scheduler builder, and the
//! scheduler handle of an async run's context. The run side is
//! `run::tokio`; the guide is `docs/async.md`.

use crate::api::builder::SchedulerBuilder;
use crate::api::scheduler::{Scheduler, TaskBuilder};
use crate::engine::task::{Callback, TaskResult};
use crate::error::Error;
use crate::id::TaskId;
use crate::run::runner::RunnerHandle;
use crate::run::tokio::{AsyncContext, AsyncJob, Slot, Spawn, SpawnRun};
use std::future::Future;

impl TaskBuilder<'_> {
    /// Registers an async task: each fire calls `f` with the run's
    /// [`AsyncContext`] and spawns the future on the scheduler's tokio
    /// runtime: the one given to [`SchedulerBuilder::tokio_handle`], or
    /// else the one current at the scheduler's first `run_async`
    /// (registration fails with [`Error::NoRuntime`] if there is none). The fire's **completion** is what counts, exactly as for a
    /// sync callback: overlap policies, statistics, lag, listener events and
    /// the next fire all act when the future is done. An `Err` output or a
    /// panic is counted and logged like a sync one.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cronlane::Error> {
    /// use cronlane::{Schedule, Scheduler};
    /// use std::time::Duration;
    /// let scheduler = Scheduler::builder().build();
    /// scheduler
    ///     .add(Schedule::every(Duration::from_secs(10)))
    ///     .name("cleanup")
    ///     .run_async(|ctx| async move {
    ///         tokio::select! {
    ///             _ = tokio::time::sleep(Duration::from_millis(5)) => Ok(()),
    ///             _ = ctx.cancelled() => Err("cancelled"),
    ///         }
    ///     })?;
    /// # Ok(()) }
    /// ```
    pub fn run_async<F, Fut, R>(self, f: F) -> Result<TaskId, Error>
    where
        F: Fn(AsyncContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: TaskResult + 'static,
    {
        if self.handler.is_some() {
            return Err(Error::NotDurable {
                name: self.name.unwrap_or_default(),
                why: "a durable task runs its handler: finish it with .register(), not .run_async(..)",
            });
        }
        let core = self.scheduler.core();
        let side = core.async_side();
        if side.handle.get().is_none() {
            let current = ::tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
            // A registration racing with this one may have set it first.
            let _ = side.handle.set(current);
        }
        let f = std::sync::Arc::new(f);
        let spawn: SpawnRun = Box::new(move |one: Spawn, handle| {
            let f = f.clone();
            one.spawn_on(handle, move |ctx| {
                let fut = f(ctx);
                async move { fut.await.into_outcome() }
            });
        });
        let job = std::sync::Arc::new(AsyncJob::new(spawn));
        // The engine calls this only to get the job (`run::tokio`).
        let callback: Callback = Box::new(move |ctx| match ctx.host.downcast_ref::<Slot>() {
            Some(slot) => {
                slot.offer(&job);
                Ok(())
            }
            None => Err("an async task's fire reached the sync path".to_owned()),
        });
        let core = core.clone();
        core.register_as(self, callback, true)
    }
}

impl Scheduler {
    /// Starts the background runner as a **task on the scheduler's tokio
    /// runtime** instead of a thread of its own: the one given to
    /// [`SchedulerBuilder::tokio_handle`], or else the scheduler's (its
    /// first `run_async`'s), or else the one current now
    /// ([`Error::NoRuntime`] if there is none). One runner per scheduler,
    /// as with [`start`](Self::start); the same [`RunnerHandle`], stopped
    /// and shut down the same ways.
    ///
    /// The runner then competes with no runtime worker for the CPU, and
    /// spawns its async runs from a worker onto that worker's own queue.
    /// It parks on tokio's timer (the runtime needs its time driver:
    /// `enable_time`, else [`Error::Spawn`]) until
    /// [`RUNTIME_SPIN_WINDOW`](crate::RUNTIME_SPIN_WINDOW) before the next
    /// fire instant and yields to the runtime for the rest, so fires start
    /// on time despite the timer's 1 ms granularity. A `run_pending` pass
    /// runs on the worker without yielding (claiming and spawning only);
    /// sync callbacks still never run on a runtime thread: with inline
    /// dispatch they go to the runtime's blocking pool, else to the pool
    /// or executor. A scheduler with a store keeps a runner thread (its
    /// claims and writes block), as [`start`](Self::start) gives.
    ///
    /// From async code shut it down with
    /// [`shutdown_async`](RunnerHandle::shutdown_async) (or `run_until*`):
    /// the blocking forms wait on the calling thread, which may be the
    /// worker the runner needs. Dropped on a runtime thread, the handle
    /// tells the runner to stop and returns without waiting.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cronlane::Error> {
    /// use cronlane::{Schedule, Scheduler};
    /// use std::time::Duration;
    /// let scheduler = Scheduler::builder().build();
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// let tx = std::sync::Mutex::new(Some(tx));
    /// scheduler
    ///     .add(Schedule::after(Duration::from_millis(5)))
    ///     .run_async(move |_| {
    ///         let tx = tx.lock().unwrap().take();
    ///         async move { tx.map(|tx| tx.send(())); }
    ///     })?;
    /// let runner = scheduler.start_on_runtime()?;
    /// rx.await.expect("fired");
    /// let report = runner.shutdown_async(Duration::from_secs(5)).await;
    /// assert!(report.is_clean());
    /// # Ok(()) }
    /// ```
    pub fn start_on_runtime(&self) -> Result<RunnerHandle, Error> {
        RunnerHandle::start_on_runtime(self.core().clone())
    }
}

impl SchedulerBuilder {
    /// The tokio runtime async tasks are spawned on (default: the runtime
    /// current at the first `run_async`). Also keeps sync callbacks off it:
    /// a `run_pending` called on a runtime thread (with inline dispatch)
    /// sends them to the runtime's blocking pool. See `docs/async.md`.
    pub fn tokio_handle(mut self, handle: ::tokio::runtime::Handle) -> Self {
        self.tokio = Some(handle);
        self
    }
}

impl AsyncContext {
    /// A handle to the scheduler running this task: register, remove or
    /// reschedule tasks (this one included) from inside a run.
    pub fn scheduler(&self) -> Scheduler {
        Scheduler::from_core(self.core().clone())
    }
}
