//! Use cases on the settings tasks read: variables, connections and pools, each recorded in
//! the audit log with who changed it (never the secret values).

use crate::{Actor, Result, Services};
use serde_json::json;
use weir_core::connection::Connection;
use weir_store::{NewEvent, VariableRow};

impl Services {
    async fn audit_setting(
        &self,
        actor: &Actor,
        event: &str,
        extra: serde_json::Value,
    ) -> Result<()> {
        self.store
            .record_event(&NewEvent {
                event: event.into(),
                owner: actor.user.clone(),
                dag_id: None,
                run_id: None,
                task_id: None,
                extra: Some(extra),
            })
            .await?;
        Ok(())
    }

    /// Creates or replaces a variable.
    pub async fn set_variable(&self, actor: &Actor, v: &VariableRow) -> Result<()> {
        self.store.set_variable(v).await?;
        self.audit_setting(actor, "variable.set", json!({"key": v.key}))
            .await
    }

    /// Deletes a variable; false if there was none.
    pub async fn delete_variable(&self, actor: &Actor, key: &str) -> Result<bool> {
        let deleted = self.store.delete_variable(key).await?;
        if deleted {
            self.audit_setting(actor, "variable.delete", json!({"key": key}))
                .await?;
        }
        Ok(deleted)
    }

    /// Creates or replaces a connection.
    pub async fn set_connection(&self, actor: &Actor, c: &Connection) -> Result<()> {
        self.store.set_connection(c).await?;
        self.audit_setting(actor, "connection.set", json!({"conn_id": c.conn_id}))
            .await
    }

    /// Deletes a connection; false if there was none.
    pub async fn delete_connection(&self, actor: &Actor, conn_id: &str) -> Result<bool> {
        let deleted = self.store.delete_connection(conn_id).await?;
        if deleted {
            self.audit_setting(actor, "connection.delete", json!({"conn_id": conn_id}))
                .await?;
        }
        Ok(deleted)
    }

    /// Creates or resizes a pool.
    pub async fn set_pool(
        &self,
        actor: &Actor,
        name: &str,
        slots: i64,
        description: Option<&str>,
    ) -> Result<()> {
        self.store.set_pool(name, slots, description).await?;
        self.audit_setting(actor, "pool.set", json!({"pool": name, "slots": slots}))
            .await?;
        if let Some(wake) = &self.waker {
            wake();
        }
        Ok(())
    }

    /// Deletes a pool; false if there was none.
    pub async fn delete_pool(&self, actor: &Actor, name: &str) -> Result<bool> {
        let deleted = self.store.delete_pool(name).await?;
        if deleted {
            self.audit_setting(actor, "pool.delete", json!({"pool": name}))
                .await?;
        }
        Ok(deleted)
    }
}
