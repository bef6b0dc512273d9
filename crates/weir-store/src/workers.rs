//! Worker leases: a worker is alive while its lease in the store is current. A try whose
//! worker's lease ran out is a zombie, on any host; a worker that finds its lease gone stops
//! every try it runs.

use crate::{Result, Store};

impl Store {
    /// Registers `worker` with a lease until `lease_until` (replacing a stale row of the same id).
    pub async fn register_worker(
        &self,
        worker: &str,
        hostname: &str,
        pid: i64,
        now: i64,
        lease_until: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO worker (worker_id, hostname, pid, started_at, lease_until) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (worker_id) DO UPDATE SET lease_until = excluded.lease_until",
        )
        .bind(worker)
        .bind(hostname)
        .bind(pid)
        .bind(now)
        .bind(lease_until)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Extends a live lease. Returns false when the lease had already run out (or was
    /// removed): the worker was taken for dead and its tries are someone else's now.
    pub async fn renew_lease(&self, worker: &str, now: i64, lease_until: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE worker SET lease_until = $1 WHERE worker_id = $2 AND lease_until >= $3",
        )
        .bind(lease_until)
        .bind(worker)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ids of the workers whose lease runs past `now`.
    pub async fn live_leases(&self, now: i64) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT worker_id FROM worker WHERE lease_until >= $1")
                .bind(now)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Removes a worker's lease (a clean shutdown, or a reaper that found it expired).
    pub async fn end_lease(&self, worker: &str) -> Result<()> {
        sqlx::query("DELETE FROM worker WHERE worker_id = $1")
            .bind(worker)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Removes leases that ran out before `before` and hold no running try any more.
    pub async fn drop_expired_leases(&self, before: i64) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM worker WHERE lease_until < $1 AND NOT EXISTS \
             (SELECT 1 FROM task_instance ti WHERE ti.worker = worker.worker_id AND ti.state IN ('running', 'restarting'))",
        )
        .bind(before)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }
}
