//! Users of the web UI and REST API (argon2 hashes, computed by the caller) and revoked tokens.

use crate::{Result, Store};
use sqlx::Row;

/// A user as stored. The hash is a PHC string; the store never sees a password.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: i64,
    pub last_login: Option<i64>,
}

const USER_COLUMNS: &str = "id, username, password_hash, role, created_at, last_login";

fn user_row(r: &sqlx::any::AnyRow) -> Result<UserRow> {
    Ok(UserRow {
        id: r.try_get(0)?,
        username: r.try_get(1)?,
        password_hash: r.try_get(2)?,
        role: r.try_get(3)?,
        created_at: r.try_get(4)?,
        last_login: r.try_get(5)?,
    })
}

impl Store {
    /// Creates a user; false when the username is taken.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO app_user (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (username) DO NOTHING",
        )
        .bind(username)
        .bind(password_hash)
        .bind(role)
        .bind(weir_core::now_micros())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn get_user(&self, username: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM app_user WHERE username = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    pub async fn list_users(&self) -> Result<Vec<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM app_user ORDER BY username");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_row).collect()
    }

    /// Deletes a user; false if there was none.
    pub async fn delete_user(&self, username: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM app_user WHERE username = $1")
            .bind(username)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces a user's password hash; false if there is no such user.
    pub async fn set_password_hash(&self, username: &str, password_hash: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE app_user SET password_hash = $1 WHERE username = $2")
            .bind(password_hash)
            .bind(username)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn record_login(&self, username: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE app_user SET last_login = $1 WHERE username = $2")
            .bind(at)
            .bind(username)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Refuses a token (by its `jti`) until it expires; expired entries are dropped.
    pub async fn revoke_token(&self, jti: &str, expires_at: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM revoked_token WHERE expires_at < $1")
            .bind(weir_core::now_micros())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO revoked_token (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn is_token_revoked(&self, jti: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM revoked_token WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }
}
