//! The outbox: side effects of state changes (notifications), written in the same transaction
//! as the change and delivered at least once by whoever claims them. A claim is a lease: a
//! deliverer that dies mid-delivery leaves the message to be claimed again when it expires.

use crate::{Result, Store};
use sqlx::{Any, Row, Transaction};

/// A message waiting to be delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    pub attempts: i64,
}

/// A message to write with a state change. `dedup_key` makes a second write of the same
/// effect (a restarted scheduler re-deciding an sla miss) a no-op.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub kind: String,
    pub payload: serde_json::Value,
    pub dedup_key: Option<String>,
}

/// One stored message, for listings and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub payload: serde_json::Value,
}

impl NewMessage {
    /// One message per notification target of `callbacks` for `event`.
    pub fn notifications(
        callbacks: &serde_json::Value,
        event: &weir_core::notify::Event,
    ) -> Vec<NewMessage> {
        weir_core::notify::messages(callbacks, event)
            .into_iter()
            .map(|payload| NewMessage {
                kind: weir_core::notify::KIND.into(),
                payload,
                dedup_key: None,
            })
            .collect()
    }
}

pub(crate) async fn insert_messages(
    tx: &mut Transaction<'static, Any>,
    messages: &[NewMessage],
    now: i64,
) -> Result<()> {
    for m in messages {
        sqlx::query(
            "INSERT INTO outbox (kind, payload, dedup_key, created_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (dedup_key) DO NOTHING",
        )
        .bind(&m.kind)
        .bind(m.payload.to_string())
        .bind(m.dedup_key.as_deref())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Writes messages on their own (for a state change that is not a task instance's).
    pub async fn enqueue(&self, messages: &[NewMessage]) -> Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        insert_messages(&mut tx, messages, weir_core::now_micros()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `limit` due messages for `deliverer` until `lease_until`: pending ones
    /// whose next attempt is due, and claimed ones whose claim expired.
    pub async fn claim_messages(
        &self,
        deliverer: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>> {
        // A materialized pick, as `Store::claim` does: PostgreSQL runs it once.
        let (lock, materialized) = match self.backend {
            crate::Backend::Postgres => (" FOR UPDATE SKIP LOCKED", "MATERIALIZED "),
            crate::Backend::Sqlite => ("", ""),
        };
        let sql = format!(
            "WITH picked AS {materialized}(SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $3 \
             AND (claimed_until IS NULL OR claimed_until < $3) ORDER BY id LIMIT $4{lock}) \
             UPDATE outbox SET claimed_by = $1, claimed_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM picked) \
             RETURNING id, kind, payload, attempts"
        );
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(deliverer)
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut out: Vec<OutboxMessage> = rows
            .iter()
            .map(|r| {
                let payload: String = r.try_get(2)?;
                Ok(OutboxMessage {
                    id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    payload: serde_json::from_str(&payload).unwrap_or_default(),
                    attempts: r.try_get(3)?,
                })
            })
            .collect::<Result<_>>()?;
        out.sort_by_key(|m| m.id);
        Ok(out)
    }

    /// Records a delivery: `Ok` marks it delivered; `Err` schedules another attempt at
    /// `retry_at`, or, with `None`, gives up and marks it failed.
    pub async fn message_done(
        &self,
        id: i64,
        deliverer: &str,
        outcome: std::result::Result<(), (String, Option<i64>)>,
        now: i64,
    ) -> Result<()> {
        let q = match outcome {
            Ok(()) => sqlx::query(
                "UPDATE outbox SET state = 'delivered', delivered_at = $1, claimed_by = NULL, claimed_until = NULL \
                 WHERE id = $2 AND claimed_by = $3",
            )
            .bind(now)
            .bind(id)
            .bind(deliverer),
            Err((error, Some(retry_at))) => sqlx::query(
                "UPDATE outbox SET last_error = $1, next_attempt_at = $2, claimed_by = NULL, claimed_until = NULL \
                 WHERE id = $3 AND claimed_by = $4",
            )
            .bind(error)
            .bind(retry_at)
            .bind(id)
            .bind(deliverer),
            Err((error, None)) => sqlx::query(
                "UPDATE outbox SET state = 'failed', last_error = $1, claimed_by = NULL, claimed_until = NULL \
                 WHERE id = $2 AND claimed_by = $3",
            )
            .bind(error)
            .bind(id)
            .bind(deliverer),
        };
        q.execute(&self.writer).await?;
        Ok(())
    }

    /// Every message, oldest first.
    pub async fn outbox(&self) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query(
            "SELECT id, kind, state, attempts, last_error, payload FROM outbox ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let payload: String = r.try_get(5)?;
                Ok(OutboxRow {
                    id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    state: r.try_get(2)?,
                    attempts: r.try_get(3)?,
                    last_error: r.try_get(4)?,
                    payload: serde_json::from_str(&payload).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Whether any message is waiting (pending), so a process about to exit can wait for them.
    pub async fn pending_messages(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
