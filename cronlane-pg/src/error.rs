//! The backend's typed errors.

/// Why connecting, migrating or a call of the PostgreSQL backend failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The connection URL could not be parsed.
    #[error("bad PostgreSQL URL: {0}")]
    BadUrl(String),
    /// The schema name is not a plain lower-case identifier.
    #[error("bad schema name {0:?}: use [a-z_][a-z0-9_]* (at most 48 characters)")]
    BadSchema(String),
    /// The database did not answer within the connect timeout.
    #[error(
        "PostgreSQL at {target} unreachable after {attempts} attempts over {waited_ms} ms: {last}"
    )]
    Unreachable {
        /// Host and port tried (no password).
        target: String,
        /// Connection attempts made (with backoff).
        attempts: u32,
        /// How long it tried.
        waited_ms: u64,
        /// The last error.
        last: String,
    },
    /// The schema was created by a newer version of this crate.
    #[error("schema {schema} has version {found}; this build knows up to {supported}")]
    SchemaTooNew {
        /// The schema.
        schema: String,
        /// The version found in `schema_version`.
        found: i32,
        /// The newest version this build migrates to.
        supported: i32,
    },
    /// This node's lease lapsed (it was paused, or cut off, past its
    /// lease): its fire was taken over or it must rejoin first.
    #[error("this node's lease lapsed")]
    LeaseLost,
    /// The fire's fence is stale: another node took it over (a zombie), or
    /// it was completed already.
    #[error("fence {fence} of {task} at {fire_time} is stale: the fire was taken over or is done")]
    Stale {
        /// The task.
        task: String,
        /// The scheduled instant.
        fire_time: String,
        /// The fence presented.
        fence: u64,
    },
    /// The context is not a fenced fire of this backend (no fence, no name).
    #[error("not a fenced durable fire: {0}")]
    NotFenced(&'static str),
    /// A database error.
    #[error("PostgreSQL: {0}")]
    Db(String),
    /// The store is shut down.
    #[error("the store is shut down")]
    Closed,
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> PgError {
        PgError::Db(db_text(&e))
    }
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(e: deadpool_postgres::PoolError) -> PgError {
        PgError::Db(e.to_string())
    }
}

/// An error's text with the server's message when there is one.
pub(crate) fn db_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

impl From<PgError> for cronlane::store::StoreError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Closed => cronlane::store::StoreError::Closed,
            e => cronlane::store::StoreError::Io(e.to_string()),
        }
    }
}
