//! weir-store: the metadata database, the only code that speaks SQL to it.
//!
//! Owns the schema (one migration folder per backend: `migrations/sqlite`, `migrations/postgres`),
//! and every read and write of DAGs, runs, task instances, tries, XComs, variables, pools,
//! jobs and assets. Key type: [`Store`]. SQLite (WAL) is the default; PostgreSQL is selected by a
//! `postgres://` URL. Both speak the same SQL with `$N` placeholders; the few statements that
//! differ (row locking on claim) are chosen by [`Backend`].
//!
//! Architecture invariants: task-instance state moves only by compare-and-set (an update that
//! names the state it expects and reports whether the row moved); a worker claims queued task
//! instances in one statement; every value is bound, never formatted into SQL.
//!
//! Must not know about YAML, templates, processes or HTTP.

mod assets;
mod audit;
mod conns;
mod crypto;
mod dags;
mod outbox;
mod runs;
mod tis;
mod users;
mod vars;
mod workers;

pub use assets::{AssetEventRow, AssetRow};
pub use audit::{BackfillRow, EventLogRow, NewEvent};
pub use conns::env_connection;
pub use crypto::Cipher;
pub use dags::{DagRow, ImportErrorRow};
pub use outbox::{NewMessage, OutboxMessage, OutboxRow};
pub use runs::{NewRun, RunRow};
pub use tis::{
    CapacityCounts, ClaimedTi, Finish, Finished, TaskSeed, TiCell, TiRow, Transition, TryRow,
};
pub use users::UserRow;
pub use vars::VariableRow;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, SqlSafeStr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Errors from the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("metadata migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("bad metadata database url '{url}': {reason}")]
    BadUrl { url: String, reason: String },
    #[error("corrupt row in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Secret(String),
    #[error("cannot lock {path} for migrating: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the metadata database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    /// Reads (on SQLite several connections; WAL lets them run beside the writer).
    pool: AnyPool,
    /// Writes. On SQLite one connection: writers queue here, in order, instead of meeting
    /// on the file lock, whose busy handler sleeps; on PostgreSQL the same pool as `pool`.
    writer: AnyPool,
    backend: Backend,
    /// Encrypts connection secrets and variables at rest; `None` stores plain text.
    cipher: Option<Cipher>,
    /// Beside a SQLite file, the file whose lock one process holds while it migrates.
    migrate_lock: Option<PathBuf>,
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "connections",
        include_str!("../migrations/sqlite/0002_connections.sql"),
    ),
    (
        3,
        "map_index_leases_outbox",
        include_str!("../migrations/sqlite/0003_map_index_leases_outbox.sql"),
    ),
    (
        4,
        "backfill_event_log",
        include_str!("../migrations/sqlite/0004_backfill_event_log.sql"),
    ),
    (
        5,
        "users",
        include_str!("../migrations/sqlite/0005_users.sql"),
    ),
    (
        6,
        "control_flow",
        include_str!("../migrations/sqlite/0006_control_flow.sql"),
    ),
    (
        7,
        "mapping",
        include_str!("../migrations/sqlite/0007_mapping.sql"),
    ),
    (
        8,
        "sensors",
        include_str!("../migrations/sqlite/0008_sensors.sql"),
    ),
    (
        9,
        "assets",
        include_str!("../migrations/sqlite/0009_assets.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "connections",
        include_str!("../migrations/postgres/0002_connections.sql"),
    ),
    (
        3,
        "map_index_leases_outbox",
        include_str!("../migrations/postgres/0003_map_index_leases_outbox.sql"),
    ),
    (
        4,
        "backfill_event_log",
        include_str!("../migrations/postgres/0004_backfill_event_log.sql"),
    ),
    (
        5,
        "users",
        include_str!("../migrations/postgres/0005_users.sql"),
    ),
    (
        6,
        "control_flow",
        include_str!("../migrations/postgres/0006_control_flow.sql"),
    ),
    (
        7,
        "mapping",
        include_str!("../migrations/postgres/0007_mapping.sql"),
    ),
    (
        8,
        "sensors",
        include_str!("../migrations/postgres/0008_sensors.sql"),
    ),
    (
        9,
        "assets",
        include_str!("../migrations/postgres/0009_assets.sql"),
    ),
];

impl Store {
    /// Connects to `url` (`sqlite:///abs/path.db`, `sqlite://rel.db`, `postgres://...`),
    /// creating a SQLite file if missing. Does not migrate.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::BadUrl {
                url: url.to_string(),
                reason: "expected a sqlite:// or postgres:// url".into(),
            });
        };
        let migrate_lock = match backend {
            Backend::Sqlite => sqlite_file(url).map(|db| {
                let mut name = db.into_os_string();
                name.push(".migrate-lock");
                PathBuf::from(name)
            }),
            Backend::Postgres => None,
        };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url).map_err(|e| StoreError::BadUrl {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let sqlite = |connections: u32| {
            AnyPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        use sqlx::Executor;
                        // Temporary tables in memory: a statement that sorts or materialises
                        // a subquery (the claim's pick, a batch's VALUES) otherwise opens a
                        // temporary file; the claim took 165 µs so and 45 µs in memory.
                        conn.execute(
                            "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                             PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                             PRAGMA temp_store = MEMORY;",
                        )
                        .await?;
                        Ok(())
                    })
                })
        };
        let (pool, writer) = match backend {
            Backend::Sqlite => {
                let writer = sqlite(1).connect_with(options.clone()).await?;
                (sqlite(4).connect_with(options).await?, writer)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                (pool.clone(), pool)
            }
        };
        Ok(Store {
            pool,
            writer,
            backend,
            cipher: None,
            migrate_lock,
        })
    }

    /// The same store, encrypting secrets with `cipher` from now on.
    pub fn with_cipher(mut self, cipher: Cipher) -> Store {
        self.cipher = Some(cipher);
        self
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that will write. On SQLite it takes the write lock up front (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads first and writes later fails at once with
    /// "database is locked" when another writer got in between, instead of waiting its turn.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        })
    }

    fn migrator(&self) -> Migrator {
        let list = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        Migrator::with_migrations(
            list.iter()
                .map(|(version, name, sql)| {
                    Migration::new(
                        *version,
                        (*name).into(),
                        MigrationType::Simple,
                        sql.into_sql_str(),
                        false,
                    )
                })
                .collect(),
        )
    }

    /// Applies pending migrations.
    ///
    /// Several processes may open a fresh SQLite file at once (`weir standalone` and a CLI
    /// command). sqlx takes no migration lock on SQLite, so without one both apply the same
    /// migration and one fails with "table already exists"; each process therefore holds an
    /// exclusive lock on a file beside the database while it migrates (PostgreSQL has sqlx's
    /// advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        let _held = match &self.migrate_lock {
            Some(path) => Some(lock_exclusively(path.clone()).await?),
            None => None,
        };
        self.migrator().run(&self.writer).await?;
        Ok(())
    }

    /// Versions of the migrations not yet applied (empty when the schema is current).
    pub async fn pending_migrations(&self) -> Result<Vec<i64>> {
        // No migrations table yet means nothing is applied.
        let applied: Vec<i64> = sqlx::query_scalar::<_, i64>(
            "SELECT version FROM _sqlx_migrations WHERE success = TRUE",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap_or_default();
        Ok(self
            .migrator()
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    /// Connects and migrates: what every command that uses the store does first.
    pub async fn open(url: &str) -> Result<Store> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// A trivial round trip, for health checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// Registers a scheduler or worker job, returning its id.
    pub async fn start_job(&self, job_type: &str, hostname: &str, now: i64) -> Result<i64> {
        let id = sqlx::query_scalar::<_, i64>(
            "INSERT INTO job (job_type, hostname, state, start_date, latest_heartbeat) \
             VALUES ($1, $2, 'running', $3, $3) RETURNING id",
        )
        .bind(job_type)
        .bind(hostname)
        .bind(now)
        .fetch_one(&self.writer)
        .await?;
        Ok(id)
    }

    pub async fn heartbeat_job(&self, job_id: i64, now: i64) -> Result<()> {
        sqlx::query("UPDATE job SET latest_heartbeat = $1 WHERE id = $2")
            .bind(now)
            .bind(job_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn end_job(&self, job_id: i64, now: i64) -> Result<()> {
        sqlx::query("UPDATE job SET state = 'success', latest_heartbeat = $1 WHERE id = $2")
            .bind(now)
            .bind(job_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The most recent heartbeat of any running job of `job_type`.
    pub async fn latest_job_heartbeat(&self, job_type: &str) -> Result<Option<i64>> {
        let hb = sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(latest_heartbeat) FROM job WHERE job_type = $1 AND state = 'running'",
        )
        .bind(job_type)
        .fetch_one(&self.pool)
        .await?;
        Ok(hb)
    }

    /// Deletes finished runs (and their task instances, tries and XComs) that ended before
    /// `before`, and old job rows. Returns the number of runs deleted.
    pub async fn clean_before(&self, before: i64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        for sql in [
            "DELETE FROM xcom WHERE run_pk IN (SELECT id FROM dag_run WHERE state IN ('success','failed') AND end_date < $1)",
            "DELETE FROM task_try WHERE ti_id IN (SELECT ti.id FROM task_instance ti JOIN dag_run r ON r.id = ti.run_pk WHERE r.state IN ('success','failed') AND r.end_date < $1)",
            "DELETE FROM task_instance WHERE run_pk IN (SELECT id FROM dag_run WHERE state IN ('success','failed') AND end_date < $1)",
        ] {
            sqlx::query(sql).bind(before).execute(&mut *tx).await?;
        }
        let deleted = sqlx::query(
            "DELETE FROM dag_run WHERE state IN ('success','failed') AND end_date < $1",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM job WHERE state <> 'running' AND latest_heartbeat < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}

/// `$start, $start+1, ...` placeholders for an `IN (...)` list of `n` values.
pub(crate) fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `rows` rows of a VALUES list, each of `types.len()` numbered placeholders from `$start`, cast
/// to those SQL types (so PostgreSQL knows the type of a column that is NULL in every row).
/// A VALUES list's columns are `column1`, `column2`, ... in SQLite and PostgreSQL alike.
pub(crate) fn typed_values(start: usize, types: &[&str], rows: usize) -> String {
    (0..rows)
        .map(|row| {
            let cells: Vec<String> = types
                .iter()
                .enumerate()
                .map(|(i, ty)| format!("CAST(${} AS {ty})", start + row * types.len() + i))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn parse_state<T: FromStr<Err = String>>(table: &'static str, text: &str) -> Result<T> {
    text.parse()
        .map_err(|reason| StoreError::Corrupt { table, reason })
}

/// Helpers for test suites that need a PostgreSQL database of their own.
pub mod testing {
    use sqlx::Executor;
    use sqlx::any::AnyPoolOptions;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Creates an empty database on the server of `admin_url` and returns its name.
    pub async fn fresh_database(admin_url: &str) -> crate::Result<String> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        sqlx::any::install_default_drivers();
        let name = format!(
            "weir_test_{}_{}_{}",
            std::process::id(),
            weir_core::now_micros(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(admin_url)
            .await?;
        // The name is generated above from digits and underscores only.
        pool.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await?;
        pool.close().await;
        Ok(name)
    }
}

/// The file a `sqlite:` url names, or `None` for an in-memory database.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
}

/// Opens `path` (0600, created if missing) and waits for an exclusive lock on it; the lock
/// lasts as long as the returned file.
async fn lock_exclusively(path: PathBuf) -> Result<std::fs::File> {
    let at = path.clone();
    let locked = tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&at)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .unwrap_or_else(|joined| Err(std::io::Error::other(joined)));
    locked.map_err(|source| StoreError::Lock { path, source })
}
