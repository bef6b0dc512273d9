//! Variables: key/value settings that templates read as `var.value.KEY`.

use crate::{Result, Store};
use sqlx::Row;

/// A variable as stored. `val` is ciphertext when `is_encrypted` (the caller encrypts).
#[derive(Debug, Clone, PartialEq)]
pub struct VariableRow {
    pub key: String,
    pub val: String,
    pub description: Option<String>,
    pub is_encrypted: bool,
}

fn variable_row(r: &sqlx::any::AnyRow) -> Result<VariableRow> {
    Ok(VariableRow {
        key: r.try_get(0)?,
        val: r.try_get(1)?,
        description: r.try_get(2)?,
        is_encrypted: r.try_get::<i64, _>(3)? != 0,
    })
}

impl Store {
    pub async fn set_variable(&self, v: &VariableRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO variable (key, val, description, is_encrypted) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET val = excluded.val, description = excluded.description, \
             is_encrypted = excluded.is_encrypted",
        )
        .bind(&v.key)
        .bind(&v.val)
        .bind(v.description.clone())
        .bind(v.is_encrypted as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_variable(&self, key: &str) -> Result<Option<VariableRow>> {
        let row =
            sqlx::query("SELECT key, val, description, is_encrypted FROM variable WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(variable_row).transpose()
    }

    /// Deletes a variable; false if it did not exist.
    pub async fn delete_variable(&self, key: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM variable WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn list_variables(&self) -> Result<Vec<VariableRow>> {
        let rows =
            sqlx::query("SELECT key, val, description, is_encrypted FROM variable ORDER BY key")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(variable_row).collect()
    }
}
