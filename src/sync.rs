//! The one place cronlane takes its synchronisation primitives from.
//!
//! Everything concurrent in the crate imports atomics, `Arc`, the intake queue,
//! the ordered map and the swappable pointer from here. Under
//! `--cfg cronlane_loom` each is replaced by a loom-visible equivalent so that
//! loom explores *our* protocol (claims, the task state machine, intake
//! hand-over, reschedule, park/wake, shutdown) instead of the internals of
//! crossbeam or arc-swap, which loom cannot see:
//!
//! | here            | normal build                         | `cronlane_loom`                 |
//! | --------------- | ------------------------------------ | ------------------------------- |
//! | [`Queue`]       | `crossbeam_queue::SegQueue`          | `Mutex<VecDeque>`               |
//! | [`OrderedMap`]  | `crossbeam_skiplist::base::SkipList` | `Mutex<BTreeMap>`               |
//! | [`SwapOption`]  | `arc_swap::ArcSwapOption`            | `RwLock<Option<Arc<_>>>`        |
//! | [`Swap`]        | `arc_swap::ArcSwap`                  | `RwLock<Arc<_>>`                |
//! | atomics, `Arc`  | `std::sync`                          | `loom::sync`                    |
//!
//! The wrappers expose only what the engine needs, with the same contract in
//! both builds: in particular [`OrderedMap::take_front`] hands each removed
//! entry to exactly one caller.

#[cfg(not(cronlane_loom))]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
#[cfg(not(cronlane_loom))]
pub(crate) use std::sync::Arc;

#[cfg(cronlane_loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
#[cfg(cronlane_loom)]
pub(crate) use loom::sync::Arc;

#[cfg(cronlane_loom)]
pub(crate) use loom::thread::{
    current as current_thread, Builder as ThreadBuilder, JoinHandle, Thread,
};
#[cfg(not(cronlane_loom))]
pub(crate) use std::thread::{
    current as current_thread, Builder as ThreadBuilder, JoinHandle, Thread,
};

/// `Arc` for the scheduler core and for trait objects (`dyn Clock`,
/// `dyn Executor`): std's in both builds. Their reference counts take no
/// part in the protocol, and loom's `Arc` supports neither unsized coercion
/// nor `self: &Arc<Self>`. Tasks, plans and everything the protocol shares
/// between threads use [`Arc`].
pub(crate) use std::sync::Arc as HandleArc;

/// Parks the current thread for at most `timeout` (loom: until unparked).
pub(crate) fn park_timeout(timeout: std::time::Duration) {
    #[cfg(not(cronlane_loom))]
    std::thread::park_timeout(timeout);
    #[cfg(cronlane_loom)]
    {
        let _ = timeout;
        loom::thread::park();
    }
}

/// Atomics for reports (counters, histograms) that take no part in any
/// protocol: std's even under loom, so that loom models do not track
/// hundreds of histogram buckets.
pub(crate) mod plain {
    /// The intake-shard counter (not used under loom: one shard).
    #[cfg(not(cronlane_loom))]
    pub(crate) use std::sync::atomic::AtomicUsize;
    pub(crate) use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
}

/// Waiting for another thread in a loop: spin a little, then yield. (Not
/// crossbeam's `Backoff`: under loom every step must yield to loom.)
#[derive(Default)]
pub(crate) struct Backoff(u32);

impl Backoff {
    /// One step of waiting.
    #[inline]
    pub(crate) fn snooze(&mut self) {
        self.0 = self.0.saturating_add(1);
        #[cfg(not(cronlane_loom))]
        if self.0 < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
        #[cfg(cronlane_loom)]
        loom::thread::yield_now();
    }
}

/// Yield the thread (used when a short spin did not succeed).
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(cronlane_loom))]
    std::thread::yield_now();
    #[cfg(cronlane_loom)]
    loom::thread::yield_now();
}

/// What [`OrderedMap::take_front`] should do with the entry it is looking at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take {
    /// Remove it and hand it to the caller.
    Yes,
    /// Leave it in place and look at the next one.
    Skip,
    /// Leave it and stop looking.
    Stop,
}

#[cfg(not(cronlane_loom))]
mod imp {
    use super::Take;

    /// Lock-free MPMC queue (crossbeam's `SegQueue`).
    pub(crate) struct Queue<T>(crossbeam_queue::SegQueue<T>);

    impl<T> Queue<T> {
        pub(crate) fn new() -> Self {
            Queue(crossbeam_queue::SegQueue::new())
        }
        #[inline]
        pub(crate) fn push(&self, value: T) {
            self.0.push(value)
        }
        #[inline]
        pub(crate) fn pop(&self) -> Option<T> {
            self.0.pop()
        }
        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
    }

    /// Lock-free ordered map: crossbeam-skiplist's base `SkipList`, used
    /// with one epoch guard per call. (Its `SkipMap` wrapper pins the epoch
    /// and bumps a node reference count for every entry it hands out; a
    /// walk over due entries under one guard does neither per entry.)
    pub(crate) struct OrderedMap<K, V>(crossbeam_skiplist::base::SkipList<K, V>);

    impl<K: Ord + Send + 'static, V: Send + 'static> OrderedMap<K, V> {
        pub(crate) fn new() -> Self {
            OrderedMap(crossbeam_skiplist::base::SkipList::new(
                crossbeam_epoch::default_collector().clone(),
            ))
        }
        /// Inserts, replacing an entry with an equal key.
        pub(crate) fn insert(&self, key: K, value: V) {
            let guard = crossbeam_epoch::pin();
            self.0.insert(key, value, &guard).release(&guard);
        }
        /// Inserts unless the key is present; returns the value now in the map
        /// (ours or the one already there).
        pub(crate) fn get_or_insert(&self, key: K, value: V) -> V
        where
            V: Clone,
        {
            let guard = crossbeam_epoch::pin();
            let entry = self.0.get_or_insert(key, value, &guard);
            let value = entry.value().clone();
            entry.release(&guard);
            value
        }
        pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
        where
            V: Clone,
            K: std::borrow::Borrow<Q>,
            Q: Ord + ?Sized,
        {
            let guard = crossbeam_epoch::pin();
            self.0.get(key, &guard).map(|e| e.value().clone())
        }
        /// Removes the entry at `key` if `pred` accepts its value; true if this
        /// call removed it.
        pub(crate) fn remove_if(&self, key: &K, pred: impl FnOnce(&V) -> bool) -> bool {
            let guard = crossbeam_epoch::pin();
            match self.0.get(key, &guard) {
                Some(e) if pred(e.value()) => e.remove(),
                _ => false,
            }
        }
        /// Walks entries from the front; `decide` says which to remove. Each
        /// removed entry is passed to `taken` by exactly one caller across all
        /// threads (the one whose `Entry::remove` returned true).
        pub(crate) fn take_front(
            &self,
            mut decide: impl FnMut(&K, &V) -> Take,
            mut taken: impl FnMut(&K, &V) -> bool,
        ) {
            let guard = crossbeam_epoch::pin();
            let mut cur = self.0.front(&guard);
            while let Some(e) = cur {
                match decide(e.key(), e.value()) {
                    Take::Stop => return,
                    Take::Skip => cur = e.next(),
                    Take::Yes => {
                        // Step before removing: `next` on a removed node
                        // falls back to a full key search (O(log n)); on a
                        // live one it follows the level-0 link.
                        let next = e.next();
                        if e.remove() && !taken(e.key(), e.value()) {
                            return;
                        }
                        cur = next;
                    }
                }
            }
        }
        pub(crate) fn front_key(&self) -> Option<K>
        where
            K: Clone,
        {
            let guard = crossbeam_epoch::pin();
            self.0.front(&guard).map(|e| e.key().clone())
        }
        pub(crate) fn for_each(&self, mut f: impl FnMut(&K, &V)) {
            let guard = crossbeam_epoch::pin();
            for e in self.0.iter(&guard) {
                f(e.key(), e.value());
            }
        }
        /// Calls `f` on each entry with a key in `lo..hi`, in key order,
        /// until it returns false.
        pub(crate) fn for_range(&self, lo: &K, hi: &K, mut f: impl FnMut(&K, &V) -> bool) {
            let guard = crossbeam_epoch::pin();
            // One search for the first entry, then level-0 links (the
            // `range` iterator searches again for its upper bound).
            let mut cur = self.0.lower_bound(std::ops::Bound::Included(lo), &guard);
            while let Some(e) = cur {
                if e.key() >= hi || !f(e.key(), e.value()) {
                    return;
                }
                cur = e.next();
            }
        }
    }

    /// A rarely-written, often-read optional `Arc` (arc-swap).
    pub(crate) struct SwapOption<T>(arc_swap::ArcSwapOption<T>);

    impl<T> SwapOption<T> {
        pub(crate) fn empty() -> Self {
            SwapOption(arc_swap::ArcSwapOption::empty())
        }
        pub(crate) fn load(&self) -> Option<std::sync::Arc<T>> {
            self.0.load_full()
        }
        /// Borrows the current value without touching its reference count.
        #[inline]
        pub(crate) fn with<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
            f(self.0.load().as_deref())
        }
        pub(crate) fn store(&self, value: Option<std::sync::Arc<T>>) {
            self.0.store(value)
        }
    }

    /// A rarely-written, often-read `Arc` that is always set (arc-swap).
    #[cfg(feature = "seal")]
    pub(crate) struct Swap<T>(arc_swap::ArcSwap<T>);

    #[cfg(feature = "seal")]
    impl<T> Swap<T> {
        pub(crate) fn new(value: std::sync::Arc<T>) -> Self {
            Swap(arc_swap::ArcSwap::new(value))
        }
        pub(crate) fn load(&self) -> std::sync::Arc<T> {
            self.0.load_full()
        }
        pub(crate) fn store(&self, value: std::sync::Arc<T>) {
            self.0.store(value)
        }
        /// Stores `new` if the current value is `current` (by pointer); true
        /// if it did.
        pub(crate) fn compare_and_swap(
            &self,
            current: &std::sync::Arc<T>,
            new: std::sync::Arc<T>,
        ) -> bool {
            let prev = self.0.compare_and_swap(current, new);
            std::sync::Arc::ptr_eq(&prev, current)
        }
    }
}

#[cfg(cronlane_loom)]
mod imp {
    use super::Take;
    use loom::sync::{Mutex, RwLock};
    use std::collections::{BTreeMap, VecDeque};

    pub(crate) struct Queue<T>(Mutex<VecDeque<T>>);

    // `Clone` only for the broken twin of `pop` (`__loom::BREAK_POP`).
    impl<T: Clone> Queue<T> {
        pub(crate) fn new() -> Self {
            Queue(Mutex::new(VecDeque::new()))
        }
        pub(crate) fn push(&self, value: T) {
            self.0.lock().unwrap().push_back(value)
        }
        pub(crate) fn pop(&self) -> Option<T> {
            if crate::__loom::broken(&crate::__loom::BREAK_POP) {
                // Broken twin: peek, then pop in a second critical section
                // and hand out what was peeked, not what was popped.
                let front = self.0.lock().unwrap().front().cloned();
                let _ = self.0.lock().unwrap().pop_front();
                return front;
            }
            self.0.lock().unwrap().pop_front()
        }
        pub(crate) fn len(&self) -> usize {
            self.0.lock().unwrap().len()
        }
    }

    pub(crate) struct OrderedMap<K, V>(Mutex<BTreeMap<K, V>>);

    impl<K: Ord + Clone + Send + 'static, V: Clone + Send + 'static> OrderedMap<K, V> {
        pub(crate) fn new() -> Self {
            OrderedMap(Mutex::new(BTreeMap::new()))
        }
        pub(crate) fn insert(&self, key: K, value: V) {
            self.0.lock().unwrap().insert(key, value);
        }
        pub(crate) fn get_or_insert(&self, key: K, value: V) -> V {
            self.0.lock().unwrap().entry(key).or_insert(value).clone()
        }
        pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
        where
            K: std::borrow::Borrow<Q>,
            Q: Ord + ?Sized,
        {
            self.0.lock().unwrap().get(key).cloned()
        }
        pub(crate) fn remove_if(&self, key: &K, pred: impl FnOnce(&V) -> bool) -> bool {
            let mut map = self.0.lock().unwrap();
            match map.get(key) {
                Some(v) if pred(v) => map.remove(key).is_some(),
                _ => false,
            }
        }
        pub(crate) fn take_front(
            &self,
            mut decide: impl FnMut(&K, &V) -> Take,
            mut taken: impl FnMut(&K, &V) -> bool,
        ) {
            // Entries are removed one at a time, each under the lock, so that
            // other threads interleave between removals as they would with the
            // skiplist.
            let mut after: Option<K> = None;
            loop {
                let next = {
                    let mut map = self.0.lock().unwrap();
                    let found = match &after {
                        None => map.iter().next().map(|(k, v)| (k.clone(), v.clone())),
                        Some(a) => map
                            .range((
                                std::ops::Bound::Excluded(a.clone()),
                                std::ops::Bound::Unbounded,
                            ))
                            .next()
                            .map(|(k, v)| (k.clone(), v.clone())),
                    };
                    match found {
                        None => return,
                        Some((k, v)) => match decide(&k, &v) {
                            Take::Stop => return,
                            Take::Skip => Some((k, v, false)),
                            Take::Yes => {
                                if !crate::__loom::broken(&crate::__loom::BREAK_TAKE) {
                                    map.remove(&k);
                                }
                                Some((k, v, true))
                            }
                        },
                    }
                };
                if let Some((k, v, removed)) = next {
                    if removed && crate::__loom::broken(&crate::__loom::BREAK_TAKE) {
                        // Broken twin: removed in a second step whose result
                        // is ignored, so two callers may both take the entry.
                        self.0.lock().unwrap().remove(&k);
                    }
                    if removed && !taken(&k, &v) {
                        return;
                    }
                    after = Some(k);
                }
            }
        }
        pub(crate) fn front_key(&self) -> Option<K> {
            self.0.lock().unwrap().keys().next().cloned()
        }
        pub(crate) fn for_each(&self, mut f: impl FnMut(&K, &V)) {
            let snapshot: Vec<(K, V)> = self
                .0
                .lock()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (k, v) in &snapshot {
                f(k, v);
            }
        }
        pub(crate) fn for_range(&self, lo: &K, hi: &K, mut f: impl FnMut(&K, &V) -> bool) {
            let snapshot: Vec<(K, V)> = self
                .0
                .lock()
                .unwrap()
                .range(lo.clone()..hi.clone())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (k, v) in &snapshot {
                if !f(k, v) {
                    return;
                }
            }
        }
    }

    pub(crate) struct SwapOption<T>(RwLock<Option<loom::sync::Arc<T>>>);

    impl<T> SwapOption<T> {
        pub(crate) fn empty() -> Self {
            SwapOption(RwLock::new(None))
        }
        pub(crate) fn load(&self) -> Option<loom::sync::Arc<T>> {
            self.0.read().unwrap().clone()
        }
        pub(crate) fn with<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
            f(self.0.read().unwrap().as_deref())
        }
        pub(crate) fn store(&self, value: Option<loom::sync::Arc<T>>) {
            *self.0.write().unwrap() = value;
        }
    }

    #[cfg(feature = "seal")]
    pub(crate) struct Swap<T>(RwLock<loom::sync::Arc<T>>);

    #[cfg(feature = "seal")]
    impl<T> Swap<T> {
        pub(crate) fn new(value: loom::sync::Arc<T>) -> Self {
            Swap(RwLock::new(value))
        }
        pub(crate) fn load(&self) -> loom::sync::Arc<T> {
            self.0.read().unwrap().clone()
        }
        pub(crate) fn store(&self, value: loom::sync::Arc<T>) {
            *self.0.write().unwrap() = value;
        }
        pub(crate) fn compare_and_swap(
            &self,
            current: &loom::sync::Arc<T>,
            new: loom::sync::Arc<T>,
        ) -> bool {
            let mut slot = self.0.write().unwrap();
            if loom::sync::Arc::ptr_eq(&slot, current) {
                *slot = new;
                true
            } else {
                false
            }
        }
    }
}

#[cfg(feature = "seal")]
pub(crate) use imp::Swap;
pub(crate) use imp::{OrderedMap, Queue, SwapOption};
