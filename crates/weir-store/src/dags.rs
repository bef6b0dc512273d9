//! DAG definitions as last parsed, and the import errors of files that failed to parse.

use crate::{Result, Store, StoreError};
use sqlx::Row;
use weir_core::Dag;

/// A DAG as the store knows it.
#[derive(Debug, Clone)]
pub struct DagRow {
    pub dag_id: String,
    pub fileloc: String,
    pub is_paused: bool,
    pub is_active: bool,
    pub schedule: String,
    pub timezone: String,
    pub owner: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub hash: String,
    pub last_parsed: i64,
}

/// A file that failed to parse, with the rendered error list.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportErrorRow {
    pub filename: String,
    pub message: String,
    pub timestamp: i64,
}

const DAG_COLUMNS: &str = "dag_id, fileloc, is_paused, is_active, schedule, timezone, owner, description, tags, hash, last_parsed";

fn dag_row(row: &sqlx::any::AnyRow) -> Result<DagRow> {
    let tags: String = row.try_get("tags")?;
    Ok(DagRow {
        dag_id: row.try_get("dag_id")?,
        fileloc: row.try_get("fileloc")?,
        is_paused: row.try_get::<i64, _>("is_paused")? != 0,
        is_active: row.try_get::<i64, _>("is_active")? != 0,
        schedule: row.try_get("schedule")?,
        timezone: row.try_get("timezone")?,
        owner: row.try_get("owner")?,
        description: row.try_get("description")?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        hash: row.try_get("hash")?,
        last_parsed: row.try_get("last_parsed")?,
    })
}

impl Store {
    /// Writes parsed DAGs (with their file hashes) in one transaction. New DAGs start paused
    /// when `dag.is_paused_upon_creation` says so, else per `paused_by_default`; existing DAGs
    /// keep their paused flag and become active again.
    pub async fn upsert_dags(
        &self,
        dags: &[(&Dag, &str)],
        paused_by_default: bool,
        now: i64,
    ) -> Result<()> {
        self.write_dags(dags, paused_by_default, now, true).await
    }

    /// Writes rows for DAGs the store does not know yet, leaving existing rows alone: for a
    /// CLI command (pause) on a DAG no scheduler has parsed yet. The DAG processor still owns
    /// every parsed field and overwrites them at its next parse.
    pub async fn insert_new_dags(
        &self,
        dags: &[(&Dag, &str)],
        paused_by_default: bool,
        now: i64,
    ) -> Result<()> {
        self.write_dags(dags, paused_by_default, now, false).await
    }

    async fn write_dags(
        &self,
        dags: &[(&Dag, &str)],
        paused_by_default: bool,
        now: i64,
        replace: bool,
    ) -> Result<()> {
        let on_conflict = if replace {
            "DO UPDATE SET fileloc = excluded.fileloc, is_active = 1, \
             schedule = excluded.schedule, timezone = excluded.timezone, owner = excluded.owner, \
             description = excluded.description, tags = excluded.tags, hash = excluded.hash, \
             dag_json = excluded.dag_json, last_parsed = excluded.last_parsed"
        } else {
            "DO NOTHING"
        };
        let sql = format!(
            "INSERT INTO dag (dag_id, fileloc, is_paused, is_active, schedule, timezone, owner, description, tags, hash, dag_json, last_parsed) \
             VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (dag_id) {on_conflict}"
        );
        if dags.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for (dag, hash) in dags {
            let json = serde_json::to_string(dag).map_err(|e| StoreError::Corrupt {
                table: "dag",
                reason: e.to_string(),
            })?;
            let paused = dag.is_paused_upon_creation.unwrap_or(paused_by_default);
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(&dag.dag_id)
                .bind(&dag.fileloc)
                .bind(paused as i64)
                .bind(dag.schedule.text())
                .bind(&dag.timezone)
                .bind(dag.owner.clone())
                .bind(dag.description.clone())
                .bind(serde_json::to_string(&dag.tags).unwrap_or_else(|_| "[]".into()))
                .bind(*hash)
                .bind(json)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if replace {
                crate::assets::write_refs(&mut tx, dag).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Marks every active DAG whose id is not in `keep` inactive (its file was deleted or
    /// broke). Returns the ids deactivated.
    pub async fn deactivate_dags_except(&self, keep: &[String]) -> Result<Vec<String>> {
        let active: Vec<String> = sqlx::query_scalar("SELECT dag_id FROM dag WHERE is_active = 1")
            .fetch_all(&self.pool)
            .await?;
        let gone: Vec<String> = active.into_iter().filter(|id| !keep.contains(id)).collect();
        for id in &gone {
            sqlx::query("UPDATE dag SET is_active = 0 WHERE dag_id = $1")
                .bind(id)
                .execute(&self.writer)
                .await?;
        }
        Ok(gone)
    }

    /// `(dag_id, is_paused)` of every active DAG: what run creation needs, without the rest.
    pub async fn paused_flags(&self) -> Result<Vec<(String, bool)>> {
        let rows = sqlx::query("SELECT dag_id, is_paused FROM dag WHERE is_active = 1")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get::<i64, _>(1)? != 0)))
            .collect()
    }

    pub async fn list_dags(&self) -> Result<Vec<DagRow>> {
        let sql = format!("SELECT {DAG_COLUMNS} FROM dag WHERE is_active = 1 ORDER BY dag_id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(dag_row).collect()
    }

    pub async fn dag_row(&self, dag_id: &str) -> Result<Option<DagRow>> {
        let sql = format!("SELECT {DAG_COLUMNS} FROM dag WHERE dag_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(dag_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(dag_row).transpose()
    }

    /// The DAG definition as last parsed, with its paused flag.
    pub async fn get_dag(&self, dag_id: &str) -> Result<Option<(Dag, bool)>> {
        let row = sqlx::query("SELECT dag_json, is_paused FROM dag WHERE dag_id = $1")
            .bind(dag_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let json: String = row.try_get("dag_json")?;
        let dag = serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
            table: "dag",
            reason: e.to_string(),
        })?;
        Ok(Some((dag, row.try_get::<i64, _>("is_paused")? != 0)))
    }

    /// Every active DAG definition with its paused flag.
    pub async fn active_dags(&self) -> Result<Vec<(Dag, bool)>> {
        let rows =
            sqlx::query("SELECT dag_json, is_paused FROM dag WHERE is_active = 1 ORDER BY dag_id")
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let json: String = row.try_get("dag_json")?;
            let dag = serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
                table: "dag",
                reason: e.to_string(),
            })?;
            out.push((dag, row.try_get::<i64, _>("is_paused")? != 0));
        }
        Ok(out)
    }

    /// Pauses or unpauses; false if the DAG does not exist.
    pub async fn set_paused(&self, dag_id: &str, paused: bool) -> Result<bool> {
        let done = sqlx::query("UPDATE dag SET is_paused = $1 WHERE dag_id = $2")
            .bind(paused as i64)
            .bind(dag_id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records (or with `None`, clears) the import error of `filename`.
    pub async fn set_import_error(
        &self,
        filename: &str,
        message: Option<&str>,
        now: i64,
    ) -> Result<()> {
        match message {
            Some(message) => {
                sqlx::query(
                    "INSERT INTO import_error (filename, message, timestamp) VALUES ($1, $2, $3) \
                     ON CONFLICT (filename) DO UPDATE SET message = excluded.message, timestamp = excluded.timestamp",
                )
                .bind(filename)
                .bind(message)
                .bind(now)
                .execute(&self.writer)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM import_error WHERE filename = $1")
                    .bind(filename)
                    .execute(&self.writer)
                    .await?;
            }
        }
        Ok(())
    }

    /// Drops import errors of files not in `files` (they were deleted).
    pub async fn retain_import_errors(&self, files: &[String]) -> Result<()> {
        for e in self.import_errors().await? {
            if !files.contains(&e.filename) {
                self.set_import_error(&e.filename, None, 0).await?;
            }
        }
        Ok(())
    }

    pub async fn import_errors(&self) -> Result<Vec<ImportErrorRow>> {
        let rows =
            sqlx::query("SELECT filename, message, timestamp FROM import_error ORDER BY filename")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(ImportErrorRow {
                    filename: r.try_get("filename")?,
                    message: r.try_get("message")?,
                    timestamp: r.try_get("timestamp")?,
                })
            })
            .collect()
    }
}
