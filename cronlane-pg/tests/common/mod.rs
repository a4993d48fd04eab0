//! Shared by the cluster tests: the server to use, a fresh schema per test,
//! a small synchronous client for looking at the tables, and polling with
//! a deadline.
#![allow(dead_code)]

use cronlane_pg::tokio_postgres::{self, NoTls, Row};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// `CRONLANE_PG_URL`, or the local server of the project's machines.
pub(crate) fn url() -> String {
    std::env::var("CRONLANE_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A synchronous client on a current-thread runtime.
pub(crate) struct Db {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    pub(crate) schema: String,
}

static N: AtomicU32 = AtomicU32::new(0);

/// A fresh schema for this test, or `None` (printed why) when there is no
/// server; under `CI=true` no server is a failure.
pub(crate) fn db(tag: &str) -> Option<Db> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = url();
    let connected = rt.block_on(async {
        let mut cfg: tokio_postgres::Config = url.parse()?;
        cfg.connect_timeout(Duration::from_secs(3));
        cfg.connect(NoTls).await
    });
    let client = match connected {
        Ok((client, conn)) => {
            rt.spawn(async move {
                let _ = conn.await;
            });
            client
        }
        Err(e) => {
            let msg = format!(
                "cluster test {tag} cannot run: no PostgreSQL at {url} ({e}). \
                 Start one (pg_ctlcluster --skip-systemctl-redirect 15 main start) \
                 or point CRONLANE_PG_URL at a server where schemas may be created."
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg} (CI=true: this is a failure, not a skip)");
            }
            eprintln!("SKIPPED: {msg}");
            return None;
        }
    };
    let schema = format!(
        "cronlane_test_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        tag
    );
    let db = Db { rt, client, schema };
    db.exec(&format!("DROP SCHEMA IF EXISTS {} CASCADE", db.schema));
    Some(db)
}

impl Db {
    pub(crate) fn exec(&self, sql: &str) -> u64 {
        self.rt
            .block_on(self.client.execute(sql, &[]))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub(crate) fn query(&self, sql: &str) -> Vec<Row> {
        self.rt
            .block_on(self.client.query(sql, &[]))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub(crate) fn count(&self, sql: &str) -> i64 {
        self.query(sql)[0].get(0)
    }

    /// Polls `sql` (one int8) until `ok` holds, or panics at the deadline.
    pub(crate) fn wait_for(&self, sql: &str, within: Duration, ok: impl Fn(i64) -> bool) -> i64 {
        let deadline = Instant::now() + within;
        loop {
            let n = self.count(sql);
            if ok(n) {
                return n;
            }
            assert!(Instant::now() < deadline, "timed out: {sql} = {n}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = self.rt.block_on(self.client.execute(
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema),
                &[],
            ));
        }
    }
}

/// Polls `f` until it is true, or panics at the deadline.
pub(crate) fn wait_until(what: &str, within: Duration, f: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
