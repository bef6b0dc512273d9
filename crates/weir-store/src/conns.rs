//! Connections: where tasks find warehouses and APIs. Secrets are encrypted when the store has
//! a [`crate::Cipher`]; `WEIR_CONN_<ID>` in the environment takes precedence, as in Airflow.

use crate::{Result, Store, StoreError};
use serde_json::{Map, Value};
use sqlx::Row;
use weir_core::connection::Connection;

const COLUMNS: &str = "conn_id, conn_type, description, host, schema_name, login, password, port, extra, is_encrypted";

impl Store {
    fn seal(&self, plain: Option<String>) -> Option<String> {
        match (&self.cipher, plain) {
            (Some(c), Some(p)) => Some(c.encrypt(&p)),
            (_, p) => p,
        }
    }

    fn open_secret(&self, stored: Option<String>, encrypted: bool) -> Result<Option<String>> {
        match (stored, encrypted, &self.cipher) {
            (Some(s), true, Some(c)) => Ok(Some(c.decrypt(&s)?)),
            (Some(_), true, None) => Err(StoreError::Secret(
                "a stored secret is encrypted but no fernet key is configured\nhint: set [core] fernet_key or WEIR__CORE__FERNET_KEY".into(),
            )),
            (s, _, _) => Ok(s),
        }
    }

    fn connection_row(&self, r: &sqlx::any::AnyRow) -> Result<Connection> {
        let encrypted = r.try_get::<i64, _>(9)? != 0;
        let conn_id: String = r.try_get(0)?;
        let extra_text = self.open_secret(r.try_get(8)?, encrypted)?;
        let extra = match extra_text.as_deref().map(serde_json::from_str::<Value>) {
            None => Map::new(),
            Some(Ok(Value::Object(m))) => m,
            Some(_) => {
                return Err(StoreError::Corrupt {
                    table: "connection",
                    reason: format!("extra of '{conn_id}' is not a JSON object"),
                });
            }
        };
        Ok(Connection {
            conn_id,
            conn_type: r.try_get(1)?,
            description: r.try_get(2)?,
            host: r.try_get(3)?,
            schema: r.try_get(4)?,
            login: r.try_get(5)?,
            password: self.open_secret(r.try_get(6)?, encrypted)?,
            port: r
                .try_get::<Option<i64>, _>(7)?
                .and_then(|p| u16::try_from(p).ok()),
            extra,
        })
    }

    /// Creates or replaces a connection.
    pub async fn set_connection(&self, c: &Connection) -> Result<()> {
        let extra = (!c.extra.is_empty()).then(|| Value::Object(c.extra.clone()).to_string());
        sqlx::query(
            "INSERT INTO connection (conn_id, conn_type, description, host, schema_name, login, password, port, extra, is_encrypted) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (conn_id) DO UPDATE SET conn_type = excluded.conn_type, description = excluded.description, \
             host = excluded.host, schema_name = excluded.schema_name, login = excluded.login, password = excluded.password, \
             port = excluded.port, extra = excluded.extra, is_encrypted = excluded.is_encrypted",
        )
        .bind(&c.conn_id)
        .bind(&c.conn_type)
        .bind(c.description.clone())
        .bind(c.host.clone())
        .bind(c.schema.clone())
        .bind(c.login.clone())
        .bind(self.seal(c.password.clone()))
        .bind(c.port.map(i64::from))
        .bind(self.seal(extra))
        .bind(self.cipher.is_some() as i64)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// A connection from the metadata database only.
    pub async fn get_connection(&self, conn_id: &str) -> Result<Option<Connection>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM connection WHERE conn_id = $1"
        )))
        .bind(conn_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(|r| self.connection_row(r)).transpose()
    }

    /// A connection as tasks see it: `WEIR_CONN_<ID>` (a URI or Airflow's JSON) first, then
    /// the metadata database.
    pub async fn resolve_connection(&self, conn_id: &str) -> Result<Option<Connection>> {
        if let Some(c) = env_connection(conn_id)? {
            return Ok(Some(c));
        }
        self.get_connection(conn_id).await
    }

    pub async fn list_connections(&self) -> Result<Vec<Connection>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM connection ORDER BY conn_id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.connection_row(r)).collect()
    }

    /// Deletes a connection; false if it did not exist.
    pub async fn delete_connection(&self, conn_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM connection WHERE conn_id = $1")
            .bind(conn_id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// `WEIR_CONN_<ID>` (ID upper-cased) from the environment.
pub fn env_connection(conn_id: &str) -> Result<Option<Connection>> {
    let name = format!("WEIR_CONN_{}", conn_id.to_ascii_uppercase());
    let Ok(text) = std::env::var(&name) else {
        return Ok(None);
    };
    let parsed = if text.trim_start().starts_with('{') {
        serde_json::from_str::<Value>(&text)
            .map_err(|e| format!("{e}"))
            .and_then(|v| Connection::from_airflow_json(conn_id, &v))
    } else {
        Connection::from_uri(conn_id, &text)
    };
    parsed
        .map(Some)
        .map_err(|e| StoreError::Secret(format!("environment variable {name}: {e}")))
}
