//! Schema creation and versioned migrations, and the SQL of the protocol
//! with the schema name filled in.
//!
//! `schema_version(version)` holds the newest migration applied. A
//! connect takes a transaction-scoped advisory lock (so nodes starting
//! together migrate once), creates the schema if needed, refuses a version
//! newer than [`SUPPORTED`] ([`PgError::SchemaTooNew`]) and applies the
//! missing migrations in order, each in the same transaction.

use crate::error::PgError;
use deadpool_postgres::Client;

/// The newest schema version this build knows.
pub const SUPPORTED: i32 = 2;

/// Migration `i` takes the schema from version `i` to `i + 1`; `{s}` is the
/// schema name.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE SEQUENCE {s}.fence_seq;
CREATE SEQUENCE {s}.change_seq;
CREATE TABLE {s}.node (
  node_id     uuid PRIMARY KEY,
  hostname    text NOT NULL,
  started_at  timestamptz NOT NULL DEFAULT now(),
  lease_until timestamptz NOT NULL,
  clock_offset_ms integer
) WITH (fillfactor = 50);
CREATE TABLE {s}.task (
  task_id     text PRIMARY KEY,
  handler     text NOT NULL,
  schedule    text NOT NULL,
  paused      boolean NOT NULL DEFAULT false,
  def         bytea NOT NULL,
  cursor_ns   bigint NOT NULL,
  on_owner_death text NOT NULL DEFAULT 'rerun' CHECK (on_owner_death IN ('rerun','abandon')),
  max_attempts int NOT NULL DEFAULT 3,
  deleted     boolean NOT NULL DEFAULT false,
  version     bigint NOT NULL DEFAULT 1,
  change_seq  bigint NOT NULL DEFAULT nextval('{s}.change_seq'),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {s}.fire (
  task_id     text NOT NULL,
  fire_time   timestamptz NOT NULL,
  owner       uuid NOT NULL,
  fence       bigint NOT NULL,
  attempt     int NOT NULL DEFAULT 1,
  state       text NOT NULL DEFAULT 'running'
              CHECK (state IN ('running','done','failed','abandoned','skipped')),
  claimed_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  PRIMARY KEY (task_id, fire_time)
);
CREATE INDEX fire_running_idx ON {s}.fire (owner) WHERE state = 'running';
CREATE INDEX fire_time_idx ON {s}.fire (fire_time);
"#,
    // 2: retention finds old fires through a BRIN index (fire rows are
    // appended in about fire-time order): one B-tree less to write per claim
    // and per completion.
    r#"
DROP INDEX {s}.fire_time_idx;
CREATE INDEX fire_time_brin ON {s}.fire USING brin (fire_time);
"#,
];

/// Checks a schema name: a plain identifier, so it can be spliced into SQL.
pub(crate) fn check_name(schema: &str) -> Result<(), PgError> {
    let mut chars = schema.chars();
    let ok = schema.len() <= 48
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(PgError::BadSchema(schema.to_owned()))
    }
}

/// Creates or migrates `schema`; returns the version it is at.
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> Result<i32, PgError> {
    let tx = client.transaction().await?;
    let key = fnv(schema.as_bytes()) as i64;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])
        .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_version (version int NOT NULL);"
    ))
    .await?;
    let found: i32 = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {schema}.schema_version"),
            &[],
        )
        .await?
        .get(0);
    if found > SUPPORTED {
        return Err(PgError::SchemaTooNew {
            schema: schema.to_owned(),
            found,
            supported: SUPPORTED,
        });
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(&m.replace("{s}", schema)).await?;
        let v = i as i32 + 1;
        tx.execute(
            &format!("INSERT INTO {schema}.schema_version (version) VALUES ($1)"),
            &[&v],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(SUPPORTED)
}

/// FNV-1a, 64 bits: stable across processes and builds (rendezvous
/// ranking and lock keys must agree on every node).
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    fnv_from(0xcbf2_9ce4_8422_2325, bytes)
}

/// FNV-1a of what was hashed into `h`, followed by `bytes`.
pub(crate) fn fnv_from(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The protocol's statements for one schema.
pub(crate) struct Sql {
    pub(crate) join: String,
    pub(crate) heartbeat: String,
    pub(crate) live: String,
    pub(crate) leave: String,
    pub(crate) claim: String,
    pub(crate) complete: String,
    pub(crate) end_tasks: String,
    pub(crate) load: String,
    pub(crate) load_one: String,
    pub(crate) existing: String,
    pub(crate) upsert: String,
    pub(crate) delete: String,
    pub(crate) dead_fires: String,
    pub(crate) take_over: String,
    pub(crate) retention: String,
    pub(crate) old_nodes: String,
    pub(crate) fenced_done: String,
    pub(crate) skip: String,
    pub(crate) taken: String,
    pub(crate) channel: String,
}

impl Sql {
    pub(crate) fn new(s: &str) -> Sql {
        let alive =
            format!("EXISTS (SELECT 1 FROM {s}.node WHERE node_id = $3 AND lease_until > now())");
        Sql {
            join: format!(
                "INSERT INTO {s}.node (node_id, hostname, lease_until) \
                 VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING now()"
            ),
            heartbeat: format!(
                "UPDATE {s}.node SET lease_until = now() + make_interval(secs => $2), clock_offset_ms = $3 \
                 WHERE node_id = $1 AND lease_until > now() RETURNING now()"
            ),
            live: format!("SELECT node_id FROM {s}.node WHERE lease_until > now() ORDER BY node_id"),
            leave: format!("DELETE FROM {s}.node WHERE node_id = $1"),
            // $1 names, $2 instants (sorted by the caller), $3 node, $4
            // misfire threshold (s), $5 adopt: also return rows this node
            // owns and runs (a claim whose answer was lost).
            claim: format!(
                "WITH req AS (SELECT * FROM unnest($1::text[], $2::timestamptz[]) AS r(task_id, fire_time)), \
                 ok AS (SELECT {alive} AS alive), \
                 ins AS (INSERT INTO {s}.fire (task_id, fire_time, owner, fence) \
                   SELECT r.task_id, r.fire_time, $3, nextval('{s}.fence_seq') FROM req r, ok \
                   WHERE ok.alive AND now() >= r.fire_time - interval '500 ms' \
                     AND now() < r.fire_time + make_interval(secs => $4) \
                     AND NOT EXISTS (SELECT 1 FROM {s}.fire g \
                       WHERE g.task_id = r.task_id AND g.fire_time = r.fire_time) \
                   ORDER BY r.task_id, r.fire_time \
                   ON CONFLICT (task_id, fire_time) DO NOTHING RETURNING task_id, fire_time, fence) \
                 SELECT task_id, fire_time, fence, now() AS db_now, (SELECT alive FROM ok) FROM ins \
                 UNION ALL SELECT f.task_id, f.fire_time, f.fence, now(), (SELECT alive FROM ok) \
                   FROM {s}.fire f JOIN req r USING (task_id, fire_time) \
                   WHERE $5 AND f.owner = $3 AND f.state = 'running' \
                 UNION ALL SELECT NULL, NULL, NULL, now(), (SELECT alive FROM ok)"
            ),
            complete: format!(
                "UPDATE {s}.fire f SET state = CASE WHEN f.state <> 'running' THEN f.state \
                   WHEN u.ok THEN 'done' ELSE 'failed' END, \
                   finished_at = coalesce(f.finished_at, now()) \
                 FROM (SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::int8[], $4::bool[]) \
                   AS u(task_id, fire_time, fence, ok) ORDER BY task_id, fire_time) u \
                 WHERE f.task_id = u.task_id AND f.fire_time = u.fire_time AND f.fence = u.fence \
                 RETURNING f.task_id, f.fire_time"
            ),
            end_tasks: format!(
                "UPDATE {s}.task SET deleted = true, version = version + 1, \
                   change_seq = nextval('{s}.change_seq'), updated_at = now() \
                 WHERE task_id = ANY($1) AND NOT deleted RETURNING task_id"
            ),
            load: format!(
                "SELECT t.task_id, t.def, t.cursor_ns, t.version, t.deleted, \
                   (extract(epoch FROM l.last) * 1000000)::int8 AS last_us \
                 FROM {s}.task t LEFT JOIN LATERAL (SELECT fire_time AS last FROM {s}.fire f \
                   WHERE f.task_id = t.task_id ORDER BY fire_time DESC LIMIT 1) l ON true"
            ),
            load_one: format!(
                "SELECT t.task_id, t.def, t.cursor_ns, t.version, t.deleted, \
                   (extract(epoch FROM l.last) * 1000000)::int8 AS last_us \
                 FROM {s}.task t LEFT JOIN LATERAL (SELECT fire_time AS last FROM {s}.fire f \
                   WHERE f.task_id = t.task_id ORDER BY fire_time DESC LIMIT 1) l ON true \
                 WHERE t.task_id = $1"
            ),
            existing: format!(
                "SELECT task_id, def, deleted FROM {s}.task WHERE task_id = ANY($1) ORDER BY task_id FOR UPDATE"
            ),
            upsert: format!(
                "INSERT INTO {s}.task (task_id, handler, schedule, paused, def, cursor_ns, on_owner_death, max_attempts) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (task_id) DO UPDATE SET handler = EXCLUDED.handler, schedule = EXCLUDED.schedule, \
                   paused = EXCLUDED.paused, def = EXCLUDED.def, \
                   cursor_ns = GREATEST({s}.task.cursor_ns, EXCLUDED.cursor_ns), \
                   on_owner_death = EXCLUDED.on_owner_death, max_attempts = EXCLUDED.max_attempts, \
                   deleted = false, version = {s}.task.version + 1, \
                   change_seq = nextval('{s}.change_seq'), updated_at = now() \
                 RETURNING version"
            ),
            delete: format!(
                "UPDATE {s}.task SET deleted = true, version = version + 1, \
                   change_seq = nextval('{s}.change_seq'), updated_at = now() \
                 WHERE task_id = $1 AND NOT deleted RETURNING version"
            ),
            dead_fires: format!(
                "SELECT f.task_id, f.fire_time, f.attempt, t.on_owner_death, t.max_attempts \
                 FROM {s}.fire f JOIN {s}.task t USING (task_id) \
                 WHERE f.state = 'running' AND NOT EXISTS (SELECT 1 FROM {s}.node n \
                   WHERE n.node_id = f.owner AND n.lease_until > now()) \
                 ORDER BY f.task_id, f.fire_time LIMIT 100 FOR UPDATE OF f SKIP LOCKED"
            ),
            take_over: format!(
                "UPDATE {s}.fire f SET owner = $4, fence = nextval('{s}.fence_seq'), attempt = f.attempt + 1, \
                   claimed_at = now(), state = u.state, \
                   finished_at = CASE WHEN u.state = 'running' THEN NULL ELSE now() END \
                 FROM (SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[]) \
                   AS u(task_id, fire_time, state) ORDER BY task_id, fire_time) u \
                 WHERE f.task_id = u.task_id AND f.fire_time = u.fire_time AND f.state = 'running' \
                   AND EXISTS (SELECT 1 FROM {s}.node WHERE node_id = $4 AND lease_until > now()) \
                 RETURNING f.task_id, f.fire_time, f.fence, f.state"
            ),
            retention: format!(
                "DELETE FROM {s}.fire WHERE ctid IN (SELECT f.ctid FROM {s}.fire f \
                   WHERE f.fire_time < now() - make_interval(secs => $1) AND f.state <> 'running' \
                     AND f.fire_time < (SELECT max(g.fire_time) FROM {s}.fire g WHERE g.task_id = f.task_id) \
                   LIMIT $2)"
            ),
            old_nodes: format!(
                "DELETE FROM {s}.node WHERE lease_until < now() - interval '1 hour' \
                   AND NOT EXISTS (SELECT 1 FROM {s}.fire f WHERE f.owner = node_id AND f.state = 'running')"
            ),
            fenced_done: format!(
                "UPDATE {s}.fire SET state = 'done', finished_at = now() \
                 WHERE task_id = $1 AND fire_time = $2 AND fence = $3 AND state = 'running'"
            ),
            skip: format!(
                "UPDATE {s}.fire f SET state = 'skipped', finished_at = now() \
                 FROM (SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::int8[]) \
                   AS u(task_id, fire_time, fence) ORDER BY task_id, fire_time) u \
                 WHERE f.task_id = u.task_id AND f.fire_time = u.fire_time AND f.fence = u.fence \
                   AND f.state = 'running'"
            ),
            // $1 names, $2 instants, $3 this node: the indexes (from 1) of
            // keys already claimed by someone else (rows this node owns
            // and runs are adopted by the claim instead).
            taken: format!(
                "SELECT r.i FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS r(task_id, fire_time, i) \
                 WHERE EXISTS (SELECT 1 FROM {s}.fire f WHERE f.task_id = r.task_id \
                   AND f.fire_time = r.fire_time AND NOT (f.owner = $3 AND f.state = 'running'))"
            ),
            channel: format!("cronlane_{s}"),
        }
    }
}
