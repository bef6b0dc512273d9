//! Variables: key/value settings that templates read as `var.value.KEY`.

use crate::{Result, Store};
use sqlx::Row;

/// A variable. `val` is plain text here; the store encrypts it at rest when it has a cipher.
#[derive(Debug, Clone, PartialEq)]
pub struct VariableRow {
    pub key: String,
    pub val: String,
    pub description: Option<String>,
    pub is_encrypted: bool,
}

impl Store {
    /// A row as callers see it: decrypted (`is_encrypted` then says it was stored encrypted).
    fn variable_row(&self, r: &sqlx::any::AnyRow) -> Result<VariableRow> {
        let is_encrypted = r.try_get::<i64, _>(3)? != 0;
        let stored: String = r.try_get(1)?;
        let val = match (&self.cipher, is_encrypted) {
            (Some(c), true) => c.decrypt(&stored)?,
            (None, true) => {
                return Err(crate::StoreError::Secret(
                    "variables are encrypted but no fernet key is configured\nhint: set [core] fernet_key or WEIR__CORE__FERNET_KEY".into(),
                ));
            }
            (_, false) => stored,
        };
        Ok(VariableRow {
            key: r.try_get(0)?,
            val,
            description: r.try_get(2)?,
            is_encrypted,
        })
    }

    /// Creates or updates a variable, encrypting its value when the store has a cipher
    /// (`v.is_encrypted` is ignored).
    pub async fn set_variable(&self, v: &VariableRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO variable (key, val, description, is_encrypted) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET val = excluded.val, description = excluded.description, \
             is_encrypted = excluded.is_encrypted",
        )
        .bind(&v.key)
        .bind(match &self.cipher {
            Some(c) => c.encrypt(&v.val),
            None => v.val.clone(),
        })
        .bind(v.description.clone())
        .bind(self.cipher.is_some() as i64)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn get_variable(&self, key: &str) -> Result<Option<VariableRow>> {
        let row =
            sqlx::query("SELECT key, val, description, is_encrypted FROM variable WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(|r| self.variable_row(r)).transpose()
    }

    /// Deletes a variable; false if it did not exist.
    pub async fn delete_variable(&self, key: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM variable WHERE key = $1")
            .bind(key)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn list_variables(&self) -> Result<Vec<VariableRow>> {
        let rows =
            sqlx::query("SELECT key, val, description, is_encrypted FROM variable ORDER BY key")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| self.variable_row(r)).collect()
    }
}
