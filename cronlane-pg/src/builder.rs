//! Connect options ([`PgStoreBuilder`]) and the owner-death policy.

use crate::error::PgError;
use crate::store::PgStore;
use std::time::Duration;

/// What happens to a fire whose owner died (its lease expired while the
/// fire was `running`), when another node's sweep finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnOwnerDeath {
    /// Run it again on the node that took it over, with a new fence and
    /// `attempt + 1`, while `attempt < max_attempts` (then abandoned).
    /// Execution is at-least-once. Tasks with
    /// [`Delivery::AtMostOnce`](cronlane::Delivery::AtMostOnce) are always
    /// abandoned.
    Rerun {
        /// Most attempts of one fire, the first included (at least 1).
        max_attempts: u32,
    },
    /// Mark it `abandoned` (a new fence rejects the dead owner's late
    /// completion): execution is at-most-once.
    Abandon,
}

/// Options of a [`PgStore`]; [`PgStore::builder`]. Defaults follow the
/// design: lease 15 s, heartbeat 3 s, resync 30 s, sweep 5 s, misfire
/// threshold 60 s, rerun up to 3 attempts, retention 1 day, claims made
/// 400 ms ahead of the instant.
#[must_use]
#[derive(Debug, Clone)]
pub struct PgStoreBuilder {
    pub(crate) url: String,
    pub(crate) listen_url: Option<String>,
    pub(crate) listen: bool,
    pub(crate) schema: String,
    pub(crate) lease: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) resync: Duration,
    pub(crate) sweep: Duration,
    pub(crate) misfire_threshold: Duration,
    pub(crate) stagger: Duration,
    pub(crate) claim_ahead: Duration,
    pub(crate) on_owner_death: OnOwnerDeath,
    pub(crate) retention: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) pool_size: usize,
    pub(crate) grace: Duration,
    pub(crate) run_threads: usize,
    pub(crate) hostname: String,
}

impl PgStoreBuilder {
    pub(crate) fn new(url: &str) -> PgStoreBuilder {
        PgStoreBuilder {
            url: url.to_owned(),
            listen_url: None,
            listen: true,
            schema: "sched".to_owned(),
            lease: Duration::from_secs(15),
            heartbeat: Duration::from_secs(3),
            resync: Duration::from_secs(30),
            sweep: Duration::from_secs(5),
            misfire_threshold: Duration::from_secs(60),
            stagger: Duration::from_millis(200),
            claim_ahead: Duration::from_millis(400),
            on_owner_death: OnOwnerDeath::Rerun { max_attempts: 3 },
            retention: Duration::from_secs(86_400),
            connect_timeout: Duration::from_secs(30),
            pool_size: 4,
            grace: Duration::from_secs(10),
            run_threads: 16,
            hostname: std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown".to_owned()),
        }
    }

    /// The schema holding the tables (default `sched`); created and
    /// migrated at connect. A plain lower-case identifier.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// How long a node's lease lasts without a heartbeat (default 15 s).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often the lease is renewed (default 3 s; keep it well under
    /// the lease).
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    /// How often every definition is compared with the database (default
    /// 30 s; also after every reconnect of the listener).
    pub fn resync(mut self, every: Duration) -> Self {
        self.resync = every;
        self
    }

    /// How often to look for fires whose owner died (default 5 s).
    pub fn sweep(mut self, every: Duration) -> Self {
        self.sweep = every;
        self
    }

    /// A fire later than this (by database time) is not claimed any more
    /// (default 60 s). Keep it under the retention.
    pub fn misfire_threshold(mut self, threshold: Duration) -> Self {
        self.misfire_threshold = threshold;
        self
    }

    /// The delay between rendezvous ranks (default 200 ms): the node of
    /// rank `r` for a task claims its fire `r × stagger` after rank 0.
    pub fn stagger(mut self, stagger: Duration) -> Self {
        self.stagger = stagger;
        self
    }

    /// How long before its instant (by the database clock, as last
    /// measured) a fire is claimed ahead (default 400 ms; zero: claim at
    /// the instant, in the pass). The callback still starts at the
    /// instant; claiming ahead takes the claim's round trip and commit off
    /// the fire's lag. Only the next fire of a task this node claimed as
    /// rank 0 is claimed ahead. Must be under the 500 ms the claim allows
    /// (the database refuses earlier claims), with room for the clock
    /// offset's error: at most 450 ms.
    pub fn claim_ahead(mut self, lead: Duration) -> Self {
        self.claim_ahead = lead;
        self
    }

    /// What happens to fires of a dead owner (default rerun, 3 attempts).
    pub fn on_owner_death(mut self, policy: OnOwnerDeath) -> Self {
        self.on_owner_death = policy;
        self
    }

    /// How long finished fires are kept (default 1 day; each task's newest
    /// is always kept).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How long `connect` retries an unreachable database, with backoff,
    /// before [`PgError::Unreachable`] (default 30 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Pooled connections for claims, completions and writes (default 4).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// A separate URL for the `LISTEN` session (for instance the server
    /// itself when `url` goes through a transaction-mode pooler, where
    /// `LISTEN` does not work).
    pub fn listen_url(mut self, url: impl Into<String>) -> Self {
        self.listen_url = Some(url.into());
        self
    }

    /// `false`: no `LISTEN` at all; definitions changed elsewhere arrive
    /// with the periodic resync only.
    pub fn listen(mut self, on: bool) -> Self {
        self.listen = on;
        self
    }

    /// How long dropping the store waits for fires it runs itself
    /// (takeovers, deferred claims) before it leaves (default 10 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Threads for the fires this backend claims outside a pass (deferred
    /// ranks, retried claims, takeovers; default 16). The reconciler claims
    /// at most four per thread ahead, leaving the rest to other nodes.
    pub fn run_threads(mut self, threads: usize) -> Self {
        self.run_threads = threads.max(1);
        self
    }

    /// Connects (retrying with backoff up to the connect timeout),
    /// migrates the schema, joins as a new node and loads the definitions.
    pub fn connect(self) -> Result<PgStore, PgError> {
        crate::schema::check_name(&self.schema)?;
        if self.heartbeat >= self.lease {
            return Err(PgError::Db(format!(
                "heartbeat {:?} must be shorter than the lease {:?}",
                self.heartbeat, self.lease
            )));
        }
        if self.claim_ahead > Duration::from_millis(450) {
            return Err(PgError::Db(format!(
                "claim_ahead {:?} must be at most 450 ms (the claim refuses more than 500 ms early)",
                self.claim_ahead
            )));
        }
        PgStore::open(self)
    }
}
