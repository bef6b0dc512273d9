//! DuckDB: one shared database instance per file in this process, a connection per user, and
//! blocking calls moved off the async runtime.

use crate::{Result, Rows, sql_error};
use duckdb::types::ValueRef;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// The open database of one file.
struct Shared {
    base: Mutex<duckdb::Connection>,
}

/// A file's open database and how many connections use it.
struct Entry {
    shared: Arc<Shared>,
    users: usize,
    idle_since: Option<Instant>,
}

/// How long a database stays open after its last user, so a run of SQL tasks does not reopen
/// (and checkpoint) the file between every two tasks; then it closes and releases the file.
const LINGER: Duration = Duration::from_secs(3);

/// Every open and close happens under this lock: closing a database (which checkpoints and
/// deletes its WAL) while another task opens the same file fails inside DuckDB.
static OPEN: LazyLock<Mutex<HashMap<PathBuf, Entry>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A connection to a DuckDB database.
pub(crate) struct Duck {
    conn: Option<Arc<Mutex<duckdb::Connection>>>,
    /// Stops the statement running on `conn` when the task waiting for it goes away.
    interrupt: Arc<duckdb::InterruptHandle>,
    /// The file, for the registry; `None` in memory.
    path: Option<PathBuf>,
    /// An in-memory database lives as long as its connections.
    _memory: Option<Arc<Shared>>,
}

impl Drop for Duck {
    fn drop(&mut self) {
        // The connection goes first, then the count; the database closes later, under the lock.
        drop(self.conn.take());
        let Some(path) = self.path.take() else {
            return;
        };
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = open.get_mut(&path) else {
            return;
        };
        entry.users = entry.users.saturating_sub(1);
        if entry.users > 0 {
            return;
        }
        entry.idle_since = Some(Instant::now());
        drop(open);
        std::thread::spawn(move || {
            std::thread::sleep(LINGER);
            let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
            let idle = open.get(&path).is_some_and(|e| {
                e.users == 0 && e.idle_since.is_some_and(|t| t.elapsed() >= LINGER)
            });
            if idle {
                // Dropped while the lock is held: nobody opens the file while it closes.
                open.remove(&path);
            }
        });
    }
}

/// Closes every database of this process that no connection uses now (checkpointing it),
/// without waiting for [`LINGER`]: before a process that holds warehouses exits.
pub fn close_idle() {
    let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    open.retain(|_, entry| entry.users > 0);
}

impl Duck {
    /// Opens `path` (None: in memory), sharing an instance already open in this process.
    pub(crate) async fn open(path: Option<PathBuf>) -> std::result::Result<Duck, String> {
        tokio::task::spawn_blocking(move || Duck::open_blocking(path))
            .await
            .map_err(|e| format!("opening DuckDB panicked: {e}"))?
    }

    fn open_blocking(path: Option<PathBuf>) -> std::result::Result<Duck, String> {
        let Some(path) = path else {
            let conn = duckdb::Connection::open_in_memory().map_err(|e| e.to_string())?;
            let shared = Arc::new(Shared {
                base: Mutex::new(conn.try_clone().map_err(|e| e.to_string())?),
            });
            return Ok(Duck {
                interrupt: conn.interrupt_handle(),
                conn: Some(Arc::new(Mutex::new(conn))),
                path: None,
                _memory: Some(shared),
            });
        };
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        if !open.contains_key(&path) {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            let conn = duckdb::Connection::open(&path).map_err(|e| {
                let text = e.to_string();
                if text.contains("lock") {
                    format!(
                        "cannot open {}: another process holds it ({text})\nhint: DuckDB allows one process per file; stop the other weir process or use it",
                        path.display()
                    )
                } else {
                    format!("cannot open {}: {text}", path.display())
                }
            })?;
            open.insert(
                path.clone(),
                Entry {
                    shared: Arc::new(Shared {
                        base: Mutex::new(conn),
                    }),
                    users: 0,
                    idle_since: None,
                },
            );
        }
        let entry = open.get_mut(&path).expect("inserted above");
        let conn = entry
            .shared
            .base
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_clone()
            .map_err(|e| e.to_string())?;
        entry.users += 1;
        entry.idle_since = None;
        Ok(Duck {
            interrupt: conn.interrupt_handle(),
            conn: Some(Arc::new(Mutex::new(conn))),
            path: Some(path),
            _memory: None,
        })
    }

    /// Runs `f` with the connection on a blocking thread. Dropped before it ends (a try that
    /// timed out or was stopped), it interrupts the statement instead of leaving it running.
    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut duckdb::Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        struct InterruptOnDrop<'a>(Option<&'a duckdb::InterruptHandle>);
        impl Drop for InterruptOnDrop<'_> {
            fn drop(&mut self) {
                if let Some(handle) = self.0 {
                    handle.interrupt();
                }
            }
        }
        let conn = self.conn.clone().expect("open until dropped");
        let mut pending = InterruptOnDrop(Some(&self.interrupt));
        let ended = tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await;
        pending.0 = None;
        ended.map_err(sql_error)?
    }

    pub(crate) async fn execute_all(&self, statements: Vec<String>) -> Result<()> {
        self.with(move |conn| {
            let tx = conn.transaction().map_err(sql_error)?;
            for sql in &statements {
                tx.execute_batch(sql).map_err(sql_error)?;
            }
            tx.commit().map_err(sql_error)
        })
        .await
    }

    pub(crate) async fn query(&self, sql: String) -> Result<Rows> {
        self.with(move |conn| query_blocking(conn, &sql)).await
    }
}

pub(crate) fn query_blocking(conn: &duckdb::Connection, sql: &str) -> Result<Rows> {
    let mut stmt = conn.prepare(sql).map_err(sql_error)?;
    let mut rows = stmt.query([]).map_err(sql_error)?;
    let mut out = Vec::new();
    let mut columns: Option<Vec<String>> = None;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let stmt = row.as_ref();
        let names = columns.get_or_insert_with(|| stmt.column_names());
        let mut values = Vec::with_capacity(names.len());
        for i in 0..names.len() {
            values.push(to_json(row.get_ref(i).map_err(sql_error)?));
        }
        out.push(values);
    }
    drop(rows);
    let columns = match columns {
        Some(c) => c,
        None => stmt.column_names(),
    };
    Ok(Rows { columns, rows: out })
}

fn to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Boolean(b) => Value::Bool(b),
        ValueRef::TinyInt(i) => i.into(),
        ValueRef::SmallInt(i) => i.into(),
        ValueRef::Int(i) => i.into(),
        ValueRef::BigInt(i) => i.into(),
        ValueRef::UTinyInt(i) => i.into(),
        ValueRef::USmallInt(i) => i.into(),
        ValueRef::UInt(i) => i.into(),
        ValueRef::UBigInt(i) => i.into(),
        ValueRef::HugeInt(i) => i64::try_from(i)
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(i.to_string())),
        ValueRef::UHugeInt(i) => i64::try_from(i)
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(i.to_string())),
        ValueRef::Float(f) => serde_json::Number::from_f64(f as f64)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        ValueRef::Double(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        ValueRef::Decimal(d) => {
            let text = d.to_string();
            text.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .unwrap_or(Value::String(text))
        }
        ValueRef::Text(bytes) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        ValueRef::Blob(bytes) | ValueRef::Geometry(bytes) => {
            Value::String(String::from_utf8_lossy(bytes).into_owned())
        }
        ValueRef::Date32(days) => {
            let date = jiff_date(days);
            Value::String(date)
        }
        ValueRef::Timestamp(unit, v) => Value::String(timestamp_text(unit.to_micros(v))),
        ValueRef::Time64(unit, v) => {
            let micros = unit.to_micros(v);
            let secs = micros / 1_000_000;
            Value::String(format!(
                "{:02}:{:02}:{:02}",
                secs / 3600,
                (secs / 60) % 60,
                secs % 60
            ))
        }
        ValueRef::Interval {
            months,
            days,
            nanos,
        } => Value::String(format!("{months} months {days} days {nanos} ns")),
        other => Value::String(format!("{other:?}")),
    }
}

fn jiff_date(days: i32) -> String {
    timestamp_text(i64::from(days) * 86_400_000_000)[..10].to_string()
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` of microseconds since the epoch (as DuckDB prints them).
fn timestamp_text(micros: i64) -> String {
    match jiff::Timestamp::from_microsecond(micros) {
        Ok(ts) => {
            let civil = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
            if micros % 1_000_000 == 0 {
                civil.strftime("%Y-%m-%d %H:%M:%S").to_string()
            } else {
                civil.strftime("%Y-%m-%d %H:%M:%S%.6f").to_string()
            }
        }
        Err(_) => micros.to_string(),
    }
}
