//! Assets (data-aware scheduling): which tasks update which assets and which DAGs wait for
//! them (`asset_ref`, rewritten with each parse of a DAG), the events a producing task's
//! success records in its own transaction, the queue of events per consumer DAG, and the
//! creation of an asset-triggered run that consumes its queue in one transaction.

use crate::runs::{NewRun, RunRow, insert_run};
use crate::tis::TaskSeed;
use crate::{Result, Store};
use sqlx::{Any, Row, Transaction};
use std::collections::BTreeSet;
use weir_core::{AssetCondition, Dag, RunType, Schedule};

/// One update of an asset.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetEventRow {
    pub id: i64,
    pub asset: String,
    pub source_dag_id: Option<String>,
    pub source_run_id: Option<String>,
    pub source_task_id: Option<String>,
    pub source_map_index: i64,
    pub timestamp: i64,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// An asset as the parsed DAGs and its events know it.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetRow {
    pub name: String,
    /// `(dag_id, task_id)` of the tasks that list it in `outlets`.
    pub producers: Vec<(String, String)>,
    /// DAGs scheduled on it.
    pub consumers: Vec<String>,
    pub last_event: Option<i64>,
    pub events: i64,
}

const EVENT_COLUMNS: &str = "e.id, e.asset, e.source_dag_id, e.source_run_id, e.source_task_id, \
     e.source_map_index, e.timestamp, e.extra";

fn event_row(row: &sqlx::any::AnyRow) -> Result<AssetEventRow> {
    let extra: String = row.try_get(7)?;
    Ok(AssetEventRow {
        id: row.try_get(0)?,
        asset: row.try_get(1)?,
        source_dag_id: row.try_get(2)?,
        source_run_id: row.try_get(3)?,
        source_task_id: row.try_get(4)?,
        source_map_index: row.try_get(5)?,
        timestamp: row.try_get(6)?,
        extra: serde_json::from_str(&extra).unwrap_or_default(),
    })
}

/// Rewrites what `dag` produces and consumes, with the write of its row.
pub(crate) async fn write_refs(tx: &mut Transaction<'static, Any>, dag: &Dag) -> Result<()> {
    sqlx::query("DELETE FROM asset_ref WHERE dag_id = $1")
        .bind(&dag.dag_id)
        .execute(&mut **tx)
        .await?;
    let mut refs: BTreeSet<(String, &str, String)> = BTreeSet::new();
    for task in &dag.tasks {
        for asset in &task.outlets {
            refs.insert((asset.clone(), "producer", task.task_id.clone()));
        }
    }
    if let Schedule::Assets { condition, .. } = &dag.schedule {
        for asset in condition.assets() {
            refs.insert((asset, "consumer", String::new()));
        }
    }
    for (asset, kind, task_id) in refs {
        sqlx::query("INSERT INTO asset_ref (dag_id, asset, kind, task_id) VALUES ($1, $2, $3, $4)")
            .bind(&dag.dag_id)
            .bind(asset)
            .bind(kind)
            .bind(task_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Records an event for each asset the task of `ti_id` produces (as last parsed) and queues
/// it for every DAG scheduled on that asset: called in the transaction of the task's success,
/// so there is no success without its events and no event without the success.
pub(crate) async fn record_events(
    tx: &mut Transaction<'static, Any>,
    ti_id: i64,
    now: i64,
) -> Result<()> {
    let events = sqlx::query(
        "INSERT INTO asset_event (asset, source_dag_id, source_run_id, source_task_id, source_map_index, timestamp) \
         SELECT r.asset, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, $2 FROM task_instance ti \
         JOIN asset_ref r ON r.dag_id = ti.dag_id AND r.task_id = ti.task_id AND r.kind = 'producer' \
         WHERE ti.id = $1 RETURNING id, asset",
    )
    .bind(ti_id)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    for e in events {
        let id: i64 = e.try_get(0)?;
        let asset: String = e.try_get(1)?;
        enqueue(tx, id, &asset).await?;
    }
    Ok(())
}

async fn enqueue(tx: &mut Transaction<'static, Any>, event_id: i64, asset: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO asset_queue (dag_id, event_id, asset) \
         SELECT DISTINCT r.dag_id, $1, r.asset FROM asset_ref r JOIN dag d ON d.dag_id = r.dag_id \
         WHERE r.asset = $2 AND r.kind = 'consumer' AND d.is_active = 1 \
         ON CONFLICT DO NOTHING",
    )
    .bind(event_id)
    .bind(asset)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Records an update of `asset` from outside any task (`source_*` empty), queued for its
    /// consumers.
    pub async fn record_asset_event(
        &self,
        asset: &str,
        extra: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO asset_event (asset, timestamp, extra) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(asset)
        .bind(weir_core::now_micros())
        .bind(serde_json::Value::Object(extra.clone()).to_string())
        .fetch_one(&mut *tx)
        .await?;
        enqueue(&mut tx, id, asset).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// `(dag_id, asset)` of every asset with events queued for a DAG.
    pub async fn queued_assets(&self) -> Result<Vec<(String, String)>> {
        let rows =
            sqlx::query("SELECT DISTINCT dag_id, asset FROM asset_queue ORDER BY dag_id, asset")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Creates an asset-triggered run of `dag_id` if the events queued for it meet
    /// `condition`, consuming every one of them, in one transaction: the queue rows are taken
    /// by a `DELETE ... RETURNING`, so of two schedulers only one gets them (the other's
    /// delete finds nothing) and an event is consumed once. The run's logical date is the
    /// newest consumed event's timestamp (Airflow 3's `run_after`) and its data interval
    /// spans the consumed events. `None` when the condition is not met (nothing changes).
    pub async fn create_asset_triggered_run(
        &self,
        dag_id: &str,
        condition: &AssetCondition,
        tasks: &[TaskSeed],
    ) -> Result<Option<RunRow>> {
        let mut tx = self.begin_write().await?;
        let taken =
            sqlx::query("DELETE FROM asset_queue WHERE dag_id = $1 RETURNING event_id, asset")
                .bind(dag_id)
                .fetch_all(&mut *tx)
                .await?;
        let mut ids = Vec::with_capacity(taken.len());
        let mut updated = BTreeSet::new();
        for r in &taken {
            ids.push(r.try_get::<i64, _>(0)?);
            updated.insert(r.try_get::<String, _>(1)?);
        }
        if ids.is_empty() || !condition.is_met(&updated) {
            tx.rollback().await?;
            return Ok(None);
        }
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT MIN(timestamp), MAX(timestamp) FROM asset_event WHERE id IN ({})",
                crate::placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            let row = q.fetch_one(&mut *tx).await?;
            first = first.min(row.try_get::<Option<i64>, _>(0)?.unwrap_or(i64::MAX));
            last = last.max(row.try_get::<Option<i64>, _>(1)?.unwrap_or(i64::MIN));
        }
        // A manual run may hold that instant already: the next free microsecond.
        let mut created = None;
        for bump in 0..16 {
            let at = last + bump;
            let new = NewRun {
                dag_id: dag_id.to_string(),
                run_id: weir_core::run_id(RunType::AssetTriggered, weir_core::timestamp(at)),
                run_type: RunType::AssetTriggered,
                logical_date: at,
                data_interval_start: first,
                data_interval_end: at,
                conf: serde_json::Map::new(),
                backfill_id: None,
                parent_ti_id: None,
            };
            if let Some(run) = insert_run(&mut tx, &new, tasks).await? {
                created = Some(run);
                break;
            }
        }
        let Some(run) = created else {
            tx.rollback().await?;
            return Ok(None);
        };
        for id in &ids {
            sqlx::query("INSERT INTO dag_run_asset_event (run_pk, event_id) VALUES ($1, $2)")
                .bind(run.id)
                .bind(*id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(run))
    }

    /// The events an asset-triggered run consumed, oldest first.
    pub async fn run_asset_events(&self, run_pk: i64) -> Result<Vec<AssetEventRow>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM asset_event e JOIN dag_run_asset_event c ON c.event_id = e.id \
             WHERE c.run_pk = $1 ORDER BY e.timestamp, e.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(run_pk)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_row).collect()
    }

    /// Events of one asset or all, newest first, each with the runs that consumed it.
    pub async fn asset_events(
        &self,
        asset: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(AssetEventRow, Vec<(String, String)>)>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM asset_event e WHERE ($1 IS NULL OR e.asset = $1) \
             ORDER BY e.id DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(asset)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let events: Vec<AssetEventRow> = rows.iter().map(event_row).collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let runs = sqlx::query(
                "SELECT r.dag_id, r.run_id FROM dag_run_asset_event c JOIN dag_run r ON r.id = c.run_pk \
                 WHERE c.event_id = $1 ORDER BY r.dag_id, r.id",
            )
            .bind(e.id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<(String, String)>>>()?;
            out.push((e, runs));
        }
        Ok(out)
    }

    /// Every asset an active DAG produces or consumes, or that has events, by name.
    pub async fn assets(&self) -> Result<Vec<AssetRow>> {
        let mut out: std::collections::BTreeMap<String, AssetRow> = Default::default();
        let row = |name: &str| AssetRow {
            name: name.to_string(),
            producers: Vec::new(),
            consumers: Vec::new(),
            last_event: None,
            events: 0,
        };
        let refs = sqlx::query(
            "SELECT r.asset, r.kind, r.dag_id, r.task_id FROM asset_ref r JOIN dag d ON d.dag_id = r.dag_id \
             WHERE d.is_active = 1 ORDER BY r.asset, r.dag_id, r.task_id",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in refs {
            let asset: String = r.try_get(0)?;
            let kind: String = r.try_get(1)?;
            let entry = out.entry(asset.clone()).or_insert_with(|| row(&asset));
            if kind == "producer" {
                entry.producers.push((r.try_get(2)?, r.try_get(3)?));
            } else {
                entry.consumers.push(r.try_get(2)?);
            }
        }
        let stats =
            sqlx::query("SELECT asset, MAX(timestamp), COUNT(*) FROM asset_event GROUP BY asset")
                .fetch_all(&self.pool)
                .await?;
        for r in stats {
            let asset: String = r.try_get(0)?;
            let entry = out.entry(asset.clone()).or_insert_with(|| row(&asset));
            entry.last_event = r.try_get(1)?;
            entry.events = r.try_get(2)?;
        }
        Ok(out.into_values().collect())
    }
}
