//! The backend's loops on its own runtime: heartbeat (lease, live nodes,
//! rejoin), listener (`LISTEN`, reconnect), resync, sweep (takeover and
//! retention) and the reconciler (claims outside a pass).

use crate::error::PgError;
use crate::store::{from_ts, lock, record_of, Apply, Inner, Key, Pre, Retry};
use chrono::Utc;
use futures_util::StreamExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Renews the lease every heartbeat (or when woken); 0 rows: the lease
/// lapsed, so rejoin with a fresh id.
pub(crate) async fn heartbeat(inner: Arc<Inner>) {
    loop {
        let sent = Instant::now();
        match beat(&inner, sent).await {
            Ok(()) => {}
            Err(e) => tracing::warn!(error = %e, "cronlane-pg: heartbeat failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(inner.opts.heartbeat) => {}
            _ = inner.wake_heartbeat.notified() => {}
        }
    }
}

async fn beat(inner: &Inner, sent: Instant) -> Result<(), PgError> {
    let (id, offset) = {
        let n = lock(&inner.node);
        (n.id, n.offset_ms)
    };
    let client = inner.beat_pool.get().await?;
    let lease = inner.opts.lease.as_secs_f64();
    let offset = offset.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
    let renewed = client
        .query_opt(&inner.sql.heartbeat, &[&id, &lease, &offset])
        .await?;
    if renewed.is_none() {
        // Declared dead (paused or cut off past the lease): whatever this
        // incarnation still runs is a zombie; join again as a new node.
        let new = uuid::Uuid::new_v4();
        client
            .query_one(&inner.sql.join, &[&new, &inner.opts.hostname, &lease])
            .await?;
        inner.stats.rejoins.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(old = %id, new = %new, "cronlane-pg: lease lapsed; rejoined as a new node");
        lock(&inner.node).id = new;
        inner.wake_resync.notify_one();
    }
    let live: Vec<uuid::Uuid> = client
        .query(&inner.sql.live, &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut n = lock(&inner.node);
    n.renewed = sent;
    n.live = live;
    Ok(())
}

/// Keys per statement of a large claim ahead or completion; the chunks of
/// one batch go out on several pooled connections at once.
const CHUNK: usize = 4096;

/// Commits the completions the scheduler queued: everything waiting in
/// one fenced transaction, retried while the database is away; at
/// shutdown, what is queued and then ends.
pub(crate) async fn completer(inner: Arc<Inner>) {
    loop {
        let batch = std::mem::take(&mut *lock(&inner.done_q));
        if batch.is_empty() {
            if inner.completer_stop.load(Ordering::Acquire) {
                return;
            }
            tokio::select! {
                _ = inner.wake_completer.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            continue;
        }
        let chunks: Vec<&[crate::store::Done]> = batch.chunks(CHUNK).collect();
        let results =
            futures_util::future::join_all(chunks.iter().map(|c| inner.complete_batch(c))).await;
        let mut failed = Vec::new();
        let mut error = None;
        for (c, r) in chunks.iter().zip(results) {
            if let Err(e) = r {
                failed.extend_from_slice(c);
                error = Some(e);
            }
        }
        if let Some(e) = error {
            tracing::warn!(error = %e, fires = failed.len(), "cronlane-pg: completion failed; retrying");
            {
                let mut q = lock(&inner.done_q);
                let newer = std::mem::replace(&mut *q, failed);
                q.extend(newer);
            }
            if inner.completer_stop.load(Ordering::Acquire) {
                // At shutdown: a few tries (bounded by the caller's timeout).
                tokio::time::sleep(Duration::from_millis(100)).await;
            } else {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Takes over fires whose owner's lease expired; every tenth round, the
/// retention clean-up.
pub(crate) async fn sweep(inner: Arc<Inner>) {
    let mut round = 0u64;
    loop {
        tokio::time::sleep(inner.opts.sweep).await;
        if inner.stopping.load(Ordering::Acquire)
            || inner.claims_off.load(Ordering::Acquire)
            || !inner.healthy()
        {
            continue;
        }
        if let Err(e) = take_over(&inner).await {
            tracing::warn!(error = %e, "cronlane-pg: takeover sweep failed");
        }
        round += 1;
        if round % 10 == 1 {
            if let Err(e) = retention(&inner).await {
                tracing::warn!(error = %e, "cronlane-pg: retention failed");
            }
        }
    }
}

pub(crate) async fn take_over(inner: &Inner) -> Result<usize, PgError> {
    let Some(link) = inner.link.get() else {
        return Ok(0);
    };
    let mut client = inner.pool.get().await?;
    let tx = client.transaction().await?;
    let rows = tx.query(&inner.sql.dead_fires, &[]).await?;
    let mut names = Vec::new();
    let mut times = Vec::new();
    let mut states = Vec::new();
    for r in &rows {
        let name: String = r.get(0);
        let attempt: i32 = r.get(2);
        let policy: String = r.get(3);
        let max: i32 = r.get(4);
        let state = if policy == "abandon" || attempt >= max {
            "abandoned"
        } else if link.runs(&name) {
            "running"
        } else {
            // Another node with the handler takes it.
            continue;
        };
        names.push(name);
        times.push(r.get::<_, chrono::DateTime<Utc>>(1));
        states.push(state);
    }
    if names.is_empty() {
        return Ok(0);
    }
    let me = lock(&inner.node).id;
    let taken = tx
        .query(&inner.sql.take_over, &[&names, &times, &states, &me])
        .await?;
    tx.commit().await?;
    for r in &taken {
        let name: String = r.get(0);
        let at = from_ts(r.get(1));
        let fence: i64 = r.get(2);
        let state: String = r.get(3);
        if state == "running" {
            inner.stats.rerun.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(task = %name, fence, "cronlane-pg: took over a fire of a dead node; running it again");
            inner.send(Apply::Run {
                name: Arc::from(name.as_str()),
                scheduled: at,
                fence: fence as u64,
            });
        } else {
            inner.stats.abandoned.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(task = %name, "cronlane-pg: a fire of a dead node abandoned");
        }
    }
    Ok(taken.len())
}

async fn retention(inner: &Inner) -> Result<(), PgError> {
    let client = inner.pool.get().await?;
    let keep = inner.opts.retention.as_secs_f64();
    let batch: i64 = 5000;
    loop {
        let n = client
            .execute(&inner.sql.retention, &[&keep, &batch])
            .await?;
        if n < batch as u64 {
            break;
        }
    }
    client.execute(&inner.sql.old_nodes, &[]).await?;
    Ok(())
}

/// Claims deferred fires once they are due (rank stagger, early by
/// database time, a failed claim) while still inside the misfire
/// threshold, and runs the ones won.
pub(crate) async fn reconcile(inner: Arc<Inner>) {
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if inner.stopping.load(Ordering::Acquire)
            || inner.claims_off.load(Ordering::Acquire)
            || !inner.healthy()
        {
            continue;
        }
        let Some(link) = inner.link.get() else {
            continue;
        };
        let now = Instant::now();
        let threshold = inner.opts.misfire_threshold.as_nanos() as i64;
        let local_ns = Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        let due: Vec<Retry> = {
            let mut retry = lock(&inner.retry);
            // Past the threshold by this clock plus a generous skew: gone.
            retry.retain(|r| r.scheduled + threshold + 10_000_000_000 > local_ns);
            let (due, wait): (Vec<Retry>, Vec<Retry>) =
                retry.drain(..).partition(|r| r.not_before <= now);
            *retry = wait;
            due
        };
        if due.is_empty() {
            continue;
        }
        let mut keys: Vec<Key> = due
            .iter()
            .filter(|r| link.runs(&r.name))
            .map(|r| Key {
                name: r.name.clone(),
                at: r.scheduled,
                tag: 0,
            })
            .collect();
        keys.sort_by(|a, b| (&*a.name, a.at).cmp(&(&*b.name, b.at)));
        keys.dedup_by(|a, b| a.name == b.name && a.at == b.at);
        // Most deferred fires were claimed by their rank 0: one read drops
        // them before any claim (a failed read: the claim decides).
        if let Ok(n) = inner.drop_taken(&mut keys).await {
            inner.stats.lost.fetch_add(n as u64, Ordering::Relaxed);
        }
        // Claim no more than the run pool can take; the rest waits a
        // tick (and is most likely claimed by another node meanwhile).
        let room = inner.run_room();
        if keys.len() > room {
            let later = Instant::now() + Duration::from_millis(50);
            lock(&inner.retry).extend(keys.drain(room..).map(|k| Retry {
                name: k.name,
                scheduled: k.at,
                not_before: later,
            }));
        }
        if keys.is_empty() {
            continue;
        }
        match inner.claim_batch(&mut keys, true).await {
            Ok(batch) => {
                let db_ns = from_ts(batch.db_now);
                let mut again = Vec::new();
                for (k, fence) in keys.into_iter().zip(batch.fences) {
                    let key_at = k.at.div_euclid(1000) * 1000;
                    if let Some(fence) = fence {
                        inner.stats.won.fetch_add(1, Ordering::Relaxed);
                        inner.send(Apply::Run {
                            name: k.name,
                            scheduled: k.at,
                            fence,
                        });
                    } else if !batch.alive || db_ns < key_at - 500_000_000 {
                        let wait = (key_at - 500_000_000 - db_ns).clamp(50_000_000, 1_000_000_000);
                        again.push(Retry {
                            name: k.name,
                            scheduled: k.at,
                            not_before: Instant::now() + Duration::from_nanos(wait as u64),
                        });
                    } else {
                        inner.stats.lost.fetch_add(1, Ordering::Relaxed);
                    }
                }
                lock(&inner.retry).extend(again);
                if !batch.alive {
                    inner.wake_heartbeat.notify_one();
                }
            }
            Err(e) => {
                inner.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "cronlane-pg: deferred claims failed; retrying");
                let later = Instant::now() + Duration::from_millis(250);
                lock(&inner.retry).extend(keys.into_iter().map(|k| Retry {
                    name: k.name,
                    scheduled: k.at,
                    not_before: later,
                }));
            }
        }
    }
}

/// Claims ahead of the instant what the passes planned (see
/// [`crate::store::Ahead`]), completes as skipped what the scheduler moved
/// past, and hands to the run pool a claim the scheduler never asked for
/// long after its instant.
pub(crate) async fn ahead(inner: Arc<Inner>) {
    let lead = inner.opts.claim_ahead;
    if lead.is_zero() {
        return;
    }
    let lead_ns = lead.as_nanos() as i64;
    // A claim made ahead that its pass has not taken this long after the
    // instant (a runner falling behind) runs on the run pool instead: a
    // fire claimed ahead is never held by a slow runner.
    let stale_ns = 1_000_000_000i64;
    let mut round = 0u64;
    loop {
        let first = lock(&inner.ahead).planned.first().map(|p| p.0);
        let wait = first.map_or(20_000_000, |at| at - lead_ns - inner.db_now_estimate());
        tokio::time::sleep(Duration::from_nanos(
            wait.clamp(1_000_000, 20_000_000) as u64
        ))
        .await;
        if inner.stopping.load(Ordering::Acquire)
            || inner.claims_off.load(Ordering::Acquire)
            || !inner.healthy()
        {
            continue;
        }
        let Some(link) = inner.link.get() else {
            continue;
        };
        round += 1;
        let now = inner.db_now_estimate();
        // Completions as skipped; claims never asked for; old tombstones.
        let (skip, handed) = {
            let mut a = lock(&inner.ahead);
            let skip = std::mem::take(&mut a.skip);
            let mut handed = Vec::new();
            if round.is_multiple_of(10) {
                let me = lock(&inner.node).id;
                let forget = inner.opts.misfire_threshold.as_nanos() as i64 + 10_000_000_000;
                a.made.retain(|name, v| {
                    v.retain_mut(|e| match e.1 {
                        Pre::Won { fence, node } if e.0 + stale_ns < now => {
                            if node == me {
                                handed.push((name.clone(), e.0, fence));
                            }
                            e.1 = Pre::Handed;
                            true
                        }
                        Pre::Lost | Pre::Handed => e.0 + forget > now,
                        _ => true,
                    });
                    !v.is_empty()
                });
            }
            (skip, handed)
        };
        for (name, at, fence) in handed {
            tracing::warn!(task = %name, "cronlane-pg: a fire claimed ahead was never asked for; running it on the run pool");
            inner.send(Apply::Run {
                name,
                scheduled: at,
                fence,
            });
        }
        if !skip.is_empty() {
            if let Err(e) = inner.skip_batch(&skip).await {
                tracing::warn!(error = %e, "cronlane-pg: completing skipped fires failed; retrying");
                lock(&inner.ahead).skip.extend(skip);
            }
        }
        let mut keys = Vec::new();
        {
            let mut guard = lock(&inner.ahead);
            let a = &mut *guard;
            while let Some((at, _)) = a.planned.first() {
                if at - lead_ns > now {
                    break;
                }
                let Some((at, name)) = a.planned.pop_first() else {
                    break;
                };
                let key = at.div_euclid(1000) * 1000;
                let v = a.made.entry(name.clone()).or_default();
                if v.iter().any(|e| e.0 == key) {
                    continue;
                }
                v.push((key, Pre::InFlight));
                keys.push(Key { name, at, tag: 0 });
            }
        }
        if keys.is_empty() {
            continue;
        }
        // A task not armed here is not claimed (its entry goes).
        let (mut keys, gone): (Vec<Key>, Vec<Key>) =
            keys.into_iter().partition(|k| link.runs(&k.name));
        // Large batches in chunks on several connections at once (disjoint
        // keys, each chunk sorted: no lock cycle).
        keys.sort_by(|a, b| (&*a.name, a.at).cmp(&(&*b.name, b.at)));
        let mut chunks: Vec<Vec<Key>> = Vec::new();
        while !keys.is_empty() {
            let rest = keys.split_off(keys.len().min(CHUNK));
            chunks.push(std::mem::replace(&mut keys, rest));
        }
        let results =
            futures_util::future::join_all(chunks.iter_mut().map(|c| inner.claim_batch(c, false)))
                .await;
        let mut defer = Vec::new();
        let mut late_won = Vec::new();
        let mut retry = Vec::new();
        {
            let mut a = lock(&inner.ahead);
            let mut set = |name: &Arc<str>, at: i64, pre: Option<Pre>| {
                let key = at.div_euclid(1000) * 1000;
                if let Some(v) = a.made.get_mut(name) {
                    if let Some(pos) = v.iter().position(|e| e.0 == key) {
                        let refused = v[pos].1 == Pre::InFlightRefused;
                        match pre {
                            // Its pass did not wait: the run pool runs it.
                            Some(Pre::Won { fence, .. }) if refused => {
                                late_won.push((name.clone(), at, fence));
                                v[pos].1 = Pre::Handed;
                            }
                            // Not claimed (early, or the lease lapsed) and
                            // its pass refused it: the reconciler claims it.
                            None if refused => {
                                retry.push((name.clone(), at));
                                v.swap_remove(pos);
                            }
                            Some(p) => v[pos].1 = p,
                            None => {
                                v.swap_remove(pos);
                            }
                        }
                    }
                    if v.is_empty() {
                        a.made.remove(name);
                    }
                }
            };
            for k in &gone {
                set(&k.name, k.at, None);
            }
            for (keys, result) in chunks.iter().zip(results) {
                match result {
                    Ok(batch) => {
                        let db_ns = from_ts(batch.db_now);
                        for (k, fence) in keys.iter().zip(&batch.fences) {
                            let key = k.at.div_euclid(1000) * 1000;
                            let pre = match fence {
                                Some(fence) => Some(Pre::Won {
                                    fence: *fence,
                                    node: batch.node,
                                }),
                                // Too early (the offset was off) or the
                                // lease lapsed: the pass claims it at the
                                // instant.
                                None if !batch.alive || db_ns < key - 500_000_000 => None,
                                None => Some(Pre::Lost),
                            };
                            set(&k.name, k.at, pre);
                        }
                        if !batch.alive {
                            inner.wake_heartbeat.notify_one();
                        }
                    }
                    Err(e) => {
                        // Not known whether it committed: the pass refuses
                        // these, the reconciler claims them with adoption.
                        inner.stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "cronlane-pg: claims ahead failed; the reconciler retries them");
                        for k in keys {
                            set(&k.name, k.at, Some(Pre::Lost));
                            defer.push((k.name.clone(), k.at));
                        }
                    }
                }
            }
        }
        inner.ahead_done.notify_all();
        for (name, at, fence) in late_won {
            inner.send(Apply::Run {
                name,
                scheduled: at,
                fence,
            });
        }
        defer.extend(retry);
        for (name, at) in defer {
            let wait = (at - inner.db_now_estimate()).max(0);
            inner.defer(name, at, Duration::from_nanos(wait as u64));
        }
    }
}

/// Compares every definition's version with what this node holds, every
/// resync interval or when woken (a reconnect, a rejoin).
pub(crate) async fn resync(inner: Arc<Inner>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(inner.opts.resync) => {}
            _ = inner.wake_resync.notified() => {}
        }
        if inner.stopping.load(Ordering::Acquire) {
            continue;
        }
        match resync_once(&inner).await {
            Ok(()) => {
                inner.stats.resyncs.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cronlane-pg: resync failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                inner.wake_resync.notify_one();
            }
        }
    }
}

async fn resync_once(inner: &Inner) -> Result<(), PgError> {
    let client = inner.pool.get().await?;
    let rows = client.query(&inner.sql.load, &[]).await?;
    for row in &rows {
        let name: String = row.get(0);
        let version: i64 = row.get(3);
        apply_row(inner, row, name, version);
    }
    Ok(())
}

/// Applies one definition row if it is newer than what this node holds.
fn apply_row(inner: &Inner, row: &tokio_postgres::Row, name: String, version: i64) {
    {
        let mut versions = lock(&inner.versions);
        if versions.get(&name).is_some_and(|v| *v >= version) {
            return;
        }
        versions.insert(name.clone(), version);
    }
    if row.get::<_, bool>(4) {
        inner.send(Apply::Remove(name));
        return;
    }
    match record_of(row) {
        Ok(record) => inner.send(Apply::Upsert(record)),
        Err(e) => {
            tracing::error!(task = %name, error = %e, "cronlane-pg: changed definition unreadable")
        }
    }
}

/// `LISTEN` on a session connection of its own; a notification names a
/// changed task, fetched and applied. Reconnects with backoff and resyncs
/// after each reconnect (notifications are lost meanwhile).
pub(crate) async fn listen(inner: Arc<Inner>) {
    let url = inner
        .opts
        .listen_url
        .clone()
        .unwrap_or_else(|| inner.opts.url.clone());
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    loop {
        match listen_session(&inner, &url, &mut first).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => tracing::warn!(error = %e, "cronlane-pg: LISTEN session lost; reconnecting"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn listen_session(inner: &Inner, url: &str, first: &mut bool) -> Result<(), PgError> {
    let mut cfg: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| PgError::BadUrl(e.to_string()))?;
    cfg.connect_timeout(Duration::from_secs(2));
    let (client, mut conn) = cfg.connect(tokio_postgres::NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {}", inner.sql.channel))
        .await?;
    // What changed between the load (or the lost session) and this LISTEN
    // was not notified: resync once now.
    inner.wake_resync.notify_one();
    if std::mem::take(first) {
        inner.listening.store(true, Ordering::Release);
    }
    while let Some(name) = rx.recv().await {
        if let Some(row) = client.query_opt(&inner.sql.load_one, &[&name]).await? {
            let version: i64 = row.get(3);
            apply_row(inner, &row, name, version);
        }
    }
    driver.abort();
    Err(PgError::Db("LISTEN connection closed".into()))
}
