//! Building tables idempotently: full refresh (build beside, swap in), incremental (delete the
//! unique keys that arrive, insert), replace partition (delete the interval's rows, insert), and
//! bulk loads of rows and CSV files. Each is one transaction.

use crate::{
    Dialect, LoadMode, Result, Rows, Warehouse, WarehouseError, literal, quote_name, split_table,
    value_literal,
};
use serde_json::Value;
use std::path::Path;

/// Column → value pairs that select one partition (`{event_date: "2026-01-15"}`).
pub type Partition = Vec<(String, Value)>;

/// How a `sql` task's SELECT becomes a table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Materialization {
    FullRefresh,
    Incremental { unique_key: Vec<String> },
    ReplacePartition(Partition),
}

/// Creates the table's schema when missing, in its own transaction and under its own lock:
/// DuckDB reports a catalog conflict when two transactions create the same schema at once.
async fn ensure_schema(wh: &Warehouse, table: &str) -> Result<()> {
    match (split_table(table).0, wh.dialect()) {
        (None, _) | (Some("main"), Dialect::Sqlite) => Ok(()),
        (Some(schema), Dialect::Sqlite) => Err(WarehouseError::Usage(format!(
            "table '{table}': SQLite has no schemas\nhint: name the table without '{schema}.' on a sqlite connection"
        ))),
        (Some(schema), _) => {
            let _turn = wh.lock_table(&format!("schema {schema}")).await;
            let found = wh
                .query(&format!(
                    "SELECT 1 FROM information_schema.schemata WHERE schema_name = {}",
                    literal(schema)
                ))
                .await?;
            if found.rows.is_empty() {
                let mut statements: Vec<String> = wh
                    .advisory_lock(&format!("schema {schema}"))
                    .into_iter()
                    .collect();
                statements.push(format!(
                    "CREATE SCHEMA IF NOT EXISTS {}",
                    quote_name(schema)
                ));
                wh.execute_all(&statements).await?;
            }
            Ok(())
        }
    }
}

/// `"a", "b", "c"`.
fn quoted_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quote_name(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `schema.name` + suffix, quoted: the build-beside table of a full refresh.
fn sibling(table: &str, suffix: &str) -> String {
    match split_table(table) {
        (Some(schema), name) => format!(
            "{}.{}",
            quote_name(schema),
            quote_name(&format!("{name}{suffix}"))
        ),
        (None, name) => quote_name(&format!("{name}{suffix}")),
    }
}

fn partition_filter(partition: &Partition) -> String {
    partition
        .iter()
        .map(|(col, value)| match value {
            Value::Null => format!("{} IS NULL", quote_name(col)),
            v => format!("{} = {}", quote_name(col), value_literal(v)),
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

pub(crate) async fn materialize(
    wh: &Warehouse,
    table: &str,
    select: &str,
    how: &Materialization,
) -> Result<()> {
    let select = select.trim().trim_end_matches(';').trim();
    let target = quote_name(table);
    let _turn = wh.lock_table(table).await;
    ensure_schema(wh, table).await?;
    let mut statements: Vec<String> = wh.advisory_lock(table).into_iter().collect();
    let exists = wh.table_exists(table).await?;
    match how {
        Materialization::FullRefresh => {
            let new = sibling(table, "__weir_new");
            let (_, name) = split_table(table);
            statements.push(format!("DROP TABLE IF EXISTS {new}"));
            statements.push(format!("CREATE TABLE {new} AS {select}"));
            statements.push(format!("DROP TABLE IF EXISTS {target}"));
            statements.push(format!("ALTER TABLE {new} RENAME TO {}", quote_name(name)));
        }
        _ if !exists => {
            statements.push(format!("CREATE TABLE {target} AS {select}"));
        }
        Materialization::Incremental { unique_key } => {
            let columns = wh.columns(table).await?;
            let cols = quoted_list(&columns);
            let staged = quote_name("weir__incoming");
            statements.push(format!("DROP TABLE IF EXISTS {staged}"));
            statements.push(format!("CREATE TEMP TABLE {staged} AS {select}"));
            if !unique_key.is_empty() {
                let matches = unique_key
                    .iter()
                    .map(|k| format!("i.{k} = {target}.{k}", k = quote_name(k)))
                    .collect::<Vec<_>>()
                    .join(" AND ");
                statements.push(format!(
                    "DELETE FROM {target} WHERE EXISTS (SELECT 1 FROM {staged} AS i WHERE {matches})"
                ));
            }
            statements.push(format!(
                "INSERT INTO {target} ({cols}) SELECT {cols} FROM {staged}"
            ));
            statements.push(format!("DROP TABLE {staged}"));
        }
        Materialization::ReplacePartition(partition) => {
            if partition.is_empty() {
                return Err(WarehouseError::Usage(
                    "replace_partition needs `partition: {column: value}`".into(),
                ));
            }
            let columns = wh.columns(table).await?;
            let cols = quoted_list(&columns);
            statements.push(format!(
                "DELETE FROM {target} WHERE {}",
                partition_filter(partition)
            ));
            statements.push(format!(
                "INSERT INTO {target} ({cols}) SELECT {cols} FROM ({select}) AS weir__q"
            ));
        }
    }
    wh.execute_all(&statements).await
}

/// The SQL type of a column from its values: all integers, all numbers, all booleans, or text.
fn column_type(values: impl Iterator<Item = Value>, dialect: Dialect) -> &'static str {
    let (mut ints, mut nums, mut bools, mut any) = (true, true, true, false);
    for v in values {
        match v {
            Value::Null => continue,
            Value::Number(n) => {
                any = true;
                bools = false;
                if !n.is_i64() {
                    ints = false;
                }
            }
            Value::Bool(_) => {
                any = true;
                ints = false;
                nums = false;
            }
            _ => {
                any = true;
                ints = false;
                nums = false;
                bools = false;
            }
        }
    }
    match (any, ints, nums, bools, dialect) {
        (true, true, _, _, _) => "BIGINT",
        (true, _, true, _, Dialect::Sqlite) => "REAL",
        (true, _, true, _, _) => "DOUBLE PRECISION",
        (true, _, _, true, _) => "BOOLEAN",
        _ => "TEXT",
    }
}

fn with_partition_columns(data: &Rows, mode: &LoadMode) -> Rows {
    let LoadMode::ReplacePartition(partition) = mode else {
        return data.clone();
    };
    let mut out = data.clone();
    for (col, value) in partition {
        if !out.columns.iter().any(|c| c == col) {
            out.columns.push(col.clone());
            for row in &mut out.rows {
                row.push(value.clone());
            }
        }
    }
    out
}

pub(crate) async fn load_rows(
    wh: &Warehouse,
    table: &str,
    data: &Rows,
    mode: &LoadMode,
) -> Result<u64> {
    let data = with_partition_columns(data, mode);
    if data.columns.is_empty() {
        return Err(WarehouseError::Usage(format!(
            "nothing to load into '{table}': the data has no columns"
        )));
    }
    let target = quote_name(table);
    let _turn = wh.lock_table(table).await;
    ensure_schema(wh, table).await?;
    let mut statements: Vec<String> = wh.advisory_lock(table).into_iter().collect();
    let exists = wh.table_exists(table).await?;
    let create = format!(
        "CREATE TABLE {target} ({})",
        data.columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!(
                "{} {}",
                quote_name(c),
                column_type(
                    data.rows
                        .iter()
                        .map(|r| r.get(i).cloned().unwrap_or(Value::Null)),
                    wh.dialect()
                )
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    match mode {
        LoadMode::Replace => {
            statements.push(format!("DROP TABLE IF EXISTS {target}"));
            statements.push(create);
        }
        _ if !exists => statements.push(create),
        LoadMode::Append => {}
        LoadMode::ReplacePartition(partition) => {
            statements.push(format!(
                "DELETE FROM {target} WHERE {}",
                partition_filter(partition)
            ));
        }
    }
    let cols = quoted_list(&data.columns);
    for chunk in data.rows.chunks(500) {
        let values = chunk
            .iter()
            .map(|row| {
                let cells: Vec<String> = (0..data.columns.len())
                    .map(|i| {
                        row.get(i)
                            .map(value_literal)
                            .unwrap_or_else(|| "NULL".into())
                    })
                    .collect();
                format!("({})", cells.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ");
        statements.push(format!("INSERT INTO {target} ({cols}) VALUES {values}"));
    }
    wh.execute_all(&statements).await?;
    Ok(data.rows.len() as u64)
}

pub(crate) async fn load_csv(
    wh: &Warehouse,
    table: &str,
    path: &Path,
    mode: &LoadMode,
) -> Result<u64> {
    if wh.duck().is_none() {
        let data = read_csv(path)?;
        return load_rows(wh, table, &data, mode).await;
    }
    // DuckDB reads the file itself: far faster than inserting parsed rows.
    let header = read_csv_header(path)?;
    let mut extra = String::new();
    if let LoadMode::ReplacePartition(partition) = mode {
        for (col, value) in partition {
            if !header.iter().any(|h| h == col) {
                extra.push_str(&format!(
                    ", {} AS {}",
                    value_literal(value),
                    quote_name(col)
                ));
            }
        }
    }
    let source = format!(
        "SELECT *{extra} FROM read_csv({}, header = true)",
        literal(&path.display().to_string())
    );
    let target = quote_name(table);
    let _turn = wh.lock_table(table).await;
    ensure_schema(wh, table).await?;
    let mut statements: Vec<String> = Vec::new();
    let exists = wh.table_exists(table).await?;
    match mode {
        LoadMode::Replace => {
            statements.push(format!("CREATE OR REPLACE TABLE {target} AS {source}"));
        }
        _ if !exists => statements.push(format!("CREATE TABLE {target} AS {source}")),
        LoadMode::Append => statements.push(format!("INSERT INTO {target} BY NAME {source}")),
        LoadMode::ReplacePartition(partition) => {
            statements.push(format!(
                "DELETE FROM {target} WHERE {}",
                partition_filter(partition)
            ));
            statements.push(format!("INSERT INTO {target} BY NAME {source}"));
        }
    }
    wh.execute_all(&statements).await?;
    let count = wh
        .query(&format!(
            "SELECT count(*) FROM read_csv({}, header = true)",
            literal(&path.display().to_string())
        ))
        .await?;
    Ok(count.first_value().and_then(Value::as_u64).unwrap_or(0))
}

fn read_csv_header(path: &Path) -> Result<Vec<String>> {
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| WarehouseError::Usage(format!("cannot read {}: {e}", path.display())))?;
    Ok(reader
        .headers()
        .map_err(|e| WarehouseError::Usage(format!("{}: {e}", path.display())))?
        .iter()
        .map(str::to_string)
        .collect())
}

/// A CSV file with a header row as rows of strings (empty fields are NULL).
pub fn read_csv(path: &Path) -> Result<Rows> {
    let file = std::fs::File::open(path)
        .map_err(|e| WarehouseError::Usage(format!("cannot read {}: {e}", path.display())))?;
    csv_rows(file).map_err(|e| WarehouseError::Usage(format!("{}: {e}", path.display())))
}

/// CSV with a header row as rows of strings (empty fields are NULL); errors name the row.
pub fn csv_rows(input: impl std::io::Read) -> std::result::Result<Rows, String> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(input);
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| format!("the CSV header cannot be read: {e}"))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| match e.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!(
                "CSV row {} has {len} fields, the header has {expected_len}",
                i + 2
            ),
            _ => format!("CSV row {}: {e}", i + 2),
        })?;
        rows.push(
            record
                .iter()
                .map(|f| {
                    if f.is_empty() {
                        Value::Null
                    } else {
                        Value::String(f.to_string())
                    }
                })
                .collect(),
        );
    }
    Ok(Rows { columns, rows })
}
