//! Exactly-once effects: a callback's writes committed in the fenced
//! completion transaction ([`PgHandle::complete_in`]).

use crate::error::PgError;
use crate::store::{to_ts, PgHandle};
use cronlane::FireContext;
use tokio_postgres::types::ToSql;

/// The transaction a [`PgHandle::complete_in`] closure writes in: the
/// fire's fenced completion is already in it, so its writes commit if and
/// only if this fire still owns its fence.
pub struct FencedTx<'a> {
    tx: deadpool_postgres::Transaction<'a>,
    rt: &'a tokio::runtime::Handle,
}

impl FencedTx<'_> {
    /// Runs a statement in the transaction; the number of rows changed.
    pub fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        self.rt.block_on(self.tx.execute(sql, params))
    }

    /// Runs a query in the transaction.
    pub fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        self.rt.block_on(self.tx.query(sql, params))
    }
}

impl PgHandle {
    /// Completes the running fire of `ctx` under its fence and runs `f`'s
    /// writes in the same transaction: both commit, or neither. Call it
    /// from the callback of a durable task on a scheduler whose store is
    /// this one (not from an async runtime's worker thread). Returns
    /// [`PgError::Stale`] (nothing written) when the fence is no longer
    /// this fire's (it was taken over: this run is a zombie) or the fire
    /// was completed already, and `f`'s own error (rolled back) as
    /// [`PgError::Db`].
    pub fn complete_in<F>(&self, ctx: &FireContext<'_>, f: F) -> Result<(), PgError>
    where
        F: FnOnce(&mut FencedTx<'_>) -> Result<(), tokio_postgres::Error>,
    {
        let fence = ctx
            .fence()
            .ok_or(PgError::NotFenced("the fire has no fence"))?;
        let name = ctx
            .name()
            .ok_or(PgError::NotFenced("the task has no name"))?;
        let at = to_ts(ctx.scheduled().timestamp_nanos_opt().unwrap_or(i64::MIN));
        let inner = &self.inner;
        let rt = &inner.rt;
        let mut client = rt.block_on(inner.pool.get())?;
        let tx = rt.block_on(client.transaction())?;
        let n = rt.block_on(tx.execute(&inner.sql.fenced_done, &[&name, &at, &(fence as i64)]))?;
        if n == 0 {
            rt.block_on(tx.rollback())?;
            inner
                .stats
                .zombies
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(PgError::Stale {
                task: name.to_owned(),
                fire_time: at.to_rfc3339(),
                fence,
            });
        }
        let mut fenced = FencedTx { tx, rt };
        f(&mut fenced)?;
        rt.block_on(fenced.tx.commit())?;
        Ok(())
    }
}
