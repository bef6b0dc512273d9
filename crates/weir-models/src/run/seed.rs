//! Seeds as dbt loads them: the column types come from agate's type inference over the CSV
//! (what dbt-core reads seeds with), mapped to SQL types as dbt's SQL adapters do, with the
//! seed's `column_types` winning; then the table is created with those types and filled.
//!
//! Inference, per column and over every row (a value is null when, trimmed, it is empty or
//! `null` in any case): the first of Number, Date (`%Y-%m-%d`), DateTime
//! (`%Y-%m-%d %H:%M:%S`), ISO date-time (`<date>T<time>`), Boolean (`true`/`false`) and Text
//! that every non-null value parses as. A Number column is `integer` unless a value has
//! significant decimal places (`2.50`, not `2.0`), then `float8`; dates are `date`, date-times
//! `timestamp without time zone`, booleans `boolean`, text `text`. A column named in
//! `column_types` is read as text and created with the given type.
//!
//! DuckDB loads the file itself into the typed table (`COPY ... FROM`, as dbt-duckdb does);
//! other warehouses get the parsed values inserted (`null` text is NULL there, as in dbt).

use std::path::Path;

use serde_json::{Map, Value as Json};

use super::adapter::{WarehouseAdapter, literal};
use super::materialize::{Response, existing_kind};
use crate::jinja::adapter::quote_identifier;
use crate::jinja::{Adapter, AdapterError, Relation};

/// The type agate infers for a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inferred {
    /// `decimals`: some value has significant digits after the decimal point.
    Number {
        decimals: bool,
    },
    Date,
    DateTime,
    Boolean,
    Text,
}

impl Inferred {
    /// The SQL type dbt's SQL adapters create the column with.
    pub fn sql_type(self) -> &'static str {
        match self {
            Inferred::Number { decimals: true } => "float8",
            Inferred::Number { decimals: false } => "integer",
            Inferred::Date => "date",
            Inferred::DateTime => "timestamp without time zone",
            Inferred::Boolean => "boolean",
            Inferred::Text => "text",
        }
    }
}

fn is_null(value: Option<&str>) -> bool {
    value.is_none_or(|v| {
        let v = v.trim();
        v.is_empty() || v.eq_ignore_ascii_case("null")
    })
}

/// A number as agate's Number reads it: `%`, a leading `-`, currency symbols and `,` group
/// separators are ignored, the rest is a Python `Decimal`. Returns the normalized value's
/// decimal places (`None` when it is not a number).
fn number_places(value: &str) -> Option<Option<usize>> {
    const CURRENCY: &[char] = &[
        '؋', '$', 'ƒ', '៛', '¥', '₡', '₱', '£', '€', '¢', '﷼', '₪', '₩', '₭', '₮', '₦', '฿', '₤',
        '₫',
    ];
    let mut d = value.trim().trim_matches('%');
    if let Some(rest) = d.strip_prefix('-') {
        d = rest;
    }
    let d = d.trim_matches(CURRENCY).replace(',', "");
    let d = d.trim();
    let unsigned = d.strip_prefix(['+', '-']).unwrap_or(d);
    let lower = unsigned.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan" | "snan") {
        // Not finite: counts for no decimal places.
        return Some(None);
    }
    let (mantissa, exponent) = match lower.split_once('e') {
        Some((m, e)) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '_') {
                return None;
            }
            (m, e.replace('_', "").parse::<i64>().ok()?)
        }
        None => (lower.as_str(), 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digit_ok = |s: &str| s.chars().all(|c| c.is_ascii_digit() || c == '_');
    if (whole.is_empty() && fraction.is_empty()) || !digit_ok(whole) || !digit_ok(fraction) {
        return None;
    }
    let fraction = fraction.replace('_', "");
    let significant = fraction.trim_end_matches('0');
    let all_zero = whole.chars().all(|c| c == '0' || c == '_') && significant.is_empty();
    if all_zero {
        return Some(Some(0));
    }
    let places = significant.len() as i64 - exponent;
    Some(Some(places.max(0) as usize))
}

fn date_parts(value: &str) -> Option<(i32, u32, u32)> {
    let mut parts = value.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str, min: usize, max: usize| {
        (min..=max).contains(&s.len()) && s.chars().all(|c| c.is_ascii_digit())
    };
    if !digits(y, 4, 4) || !digits(m, 1, 2) || !digits(d, 1, 2) {
        return None;
    }
    let (y, m, d) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    jiff::civil::Date::new(y, m as i8, d as i8).ok()?;
    Some((y as i32, m, d))
}

fn is_date(value: &str) -> bool {
    date_parts(value.trim()).is_some()
}

fn time_ok(value: &str, fraction_and_zone: bool) -> bool {
    let (clock, _zone) = if fraction_and_zone {
        match value.find(['Z', 'z', '+']).or_else(|| value.rfind('-')) {
            Some(i) => (&value[..i], Some(&value[i..])),
            None => (value, None),
        }
    } else {
        (value, None)
    };
    let (clock, fraction) = match clock.split_once(['.', ',']) {
        Some((c, f)) if fraction_and_zone => (c, Some(f)),
        Some(_) => return false,
        None => (clock, None),
    };
    if fraction.is_some_and(|f| f.is_empty() || !f.chars().all(|c| c.is_ascii_digit())) {
        return false;
    }
    let parts: Vec<&str> = clock.split(':').collect();
    let max = [23, 59, 61];
    let (min_len, max_len) = if fraction_and_zone { (2, 2) } else { (1, 2) };
    (parts.len() == 3 || (fraction_and_zone && parts.len() == 2))
        && parts.iter().zip(max).all(|(p, max)| {
            (min_len..=max_len).contains(&p.len())
                && p.chars().all(|c| c.is_ascii_digit())
                && p.parse::<u32>().is_ok_and(|n| n <= max)
        })
}

/// `%Y-%m-%d %H:%M:%S`.
fn is_datetime(value: &str) -> bool {
    let v = value.trim();
    match v.split_once(' ') {
        Some((date, time)) => is_date(date) && time_ok(time, false),
        None => false,
    }
}

/// ISO 8601 `<date>T<time>` with optional fraction and zone (what `isodate` reads).
fn is_iso_datetime(value: &str) -> bool {
    let v = value.trim();
    match v.split_once('T') {
        Some((date, time)) => {
            let date_ok = date_parts(date).is_some_and(|_| date.len() == 10)
                || (date.len() == 8
                    && date.chars().all(|c| c.is_ascii_digit())
                    && is_date(&format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..])));
            date_ok && time_ok(time, true)
        }
        None => false,
    }
}

fn is_boolean(value: &str) -> bool {
    let v = value.replace(',', "");
    let v = v.trim();
    v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")
}

/// The type agate infers for one column's values (`None` cells are empty).
pub fn infer<'a>(values: impl Iterator<Item = Option<&'a str>> + Clone) -> Inferred {
    let present = || values.clone().filter(|v| !is_null(*v)).flatten();
    let places: Option<Vec<Option<usize>>> = present().map(number_places).collect();
    if let Some(places) = places {
        let decimals = places.into_iter().flatten().any(|p| p > 0);
        return Inferred::Number { decimals };
    }
    if present().all(is_date) {
        return Inferred::Date;
    }
    if present().all(|v| is_datetime(v) || is_iso_datetime(v)) {
        // agate tries the two formats as separate types: one of them must read every value.
        if present().all(is_datetime) || present().all(is_iso_datetime) {
            return Inferred::DateTime;
        }
    }
    if present().all(is_boolean) {
        return Inferred::Boolean;
    }
    Inferred::Text
}

/// The seed's CSV as rows of optional strings, with its header.
struct Csv {
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

fn read_csv(adapter: &WarehouseAdapter, path: &Path, delimiter: &str) -> Result<Csv, AdapterError> {
    if adapter.dialect() == "duckdb" {
        // DuckDB reads the file as text, with the delimiter the seed configures.
        let sql = format!(
            "select * from read_csv({}, header = true, all_varchar = true, delim = {}, quote = '\"', escape = '\"')",
            literal(&path.display().to_string()),
            literal(delimiter),
        );
        let rows = adapter.query(&sql)?;
        return Ok(Csv {
            columns: rows.columns,
            rows: rows
                .rows
                .into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .collect(),
        });
    }
    if delimiter != "," {
        return Err(AdapterError(format!(
            "seed delimiter {delimiter:?} is supported on DuckDB only (this target reads ',')"
        )));
    }
    let rows = weir_warehouse::read_csv(path).map_err(|e| AdapterError(e.to_string()))?;
    Ok(Csv {
        columns: rows
            .columns
            .into_iter()
            .map(|c| c.trim_start_matches('\u{feff}').to_string())
            .collect(),
        rows: rows
            .rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| match v {
                        Json::String(s) => Some(s),
                        Json::Null => None,
                        other => Some(other.to_string()),
                    })
                    .collect()
            })
            .collect(),
    })
}

/// The column types a seed's table is created with, in file order.
pub fn column_types(
    columns: &[String],
    rows: &[Vec<Option<String>>],
    overrides: &Map<String, Json>,
) -> Vec<String> {
    columns
        .iter()
        .enumerate()
        .map(|(i, name)| match overrides.get(name) {
            Some(Json::String(t)) => t.clone(),
            _ => infer(
                rows.iter()
                    .map(move |r| r.get(i).and_then(|v| v.as_deref())),
            )
            .sql_type()
            .to_string(),
        })
        .collect()
}

/// The value inserted for one cell of a column of type `kind` (non-DuckDB warehouses).
fn cell(value: Option<&str>, kind: Inferred) -> Json {
    if is_null(value) {
        return Json::Null;
    }
    let v = value.unwrap_or_default();
    match kind {
        Inferred::Number { .. } => {
            let mut d = v.trim().trim_matches('%').to_string();
            let negative = d.starts_with('-');
            if negative {
                d.remove(0);
            }
            let d: String = d
                .trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '.')
                .replace([',', '_'], "");
            let sign = if negative { -1.0 } else { 1.0 };
            match d.parse::<i64>() {
                Ok(n) => Json::from(if negative { -n } else { n }),
                Err(_) => d
                    .parse::<f64>()
                    .ok()
                    .map(|f| f * sign)
                    .map(|f| {
                        if f.fract() == 0.0 && f.abs() < 9e15 {
                            Json::from(f as i64)
                        } else {
                            Json::from(f)
                        }
                    })
                    .unwrap_or(Json::Null),
            }
        }
        Inferred::Boolean => Json::Bool(v.replace(',', "").trim().eq_ignore_ascii_case("true")),
        _ => Json::String(v.to_string()),
    }
}

/// Loads `csv` into `rel` as dbt's seed materialization: a table that exists (and no
/// `--full-refresh`) is emptied and refilled, keeping its columns; otherwise it is (re)created
/// with the inferred types. One transaction.
pub fn seed(
    adapter: &WarehouseAdapter,
    rel: &Relation,
    csv: &Path,
    config: &Map<String, Json>,
    full_refresh: bool,
) -> Result<Response, AdapterError> {
    let delimiter = config
        .get("delimiter")
        .and_then(Json::as_str)
        .unwrap_or(",");
    let path = csv.canonicalize().unwrap_or_else(|_| csv.to_path_buf());
    let data = read_csv(adapter, &path, delimiter)?;
    let overrides = match config.get("column_types") {
        Some(Json::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let types = column_types(&data.columns, &data.rows, &overrides);
    let quote_columns = config
        .get("quote_columns")
        .and_then(Json::as_bool)
        .unwrap_or(true);
    let column = |name: &str| {
        if quote_columns {
            quote_identifier(name, rel.quote_char)
        } else {
            name.to_string()
        }
    };
    let existing = existing_kind(adapter, rel)?;
    let mut statements = Vec::new();
    match existing.as_deref() {
        Some("table") if !full_refresh => {
            statements.push(format!("delete from {}", rel.render()));
        }
        other => {
            if let Some(kind) = other {
                statements.push(format!(
                    "drop {} if exists {} cascade",
                    if kind == "view" { "view" } else { "table" },
                    rel.render()
                ));
            }
            let defs: Vec<String> = data
                .columns
                .iter()
                .zip(&types)
                .map(|(name, t)| format!("{} {t}", column(name)))
                .collect();
            statements.push(format!(
                "create table {} ({})",
                rel.render(),
                defs.join(", ")
            ));
        }
    }
    let n = data.rows.len() as i64;
    if adapter.dialect() == "duckdb" {
        statements.push(format!(
            "copy {} from {} (format csv, header true, delimiter {})",
            rel.render(),
            literal(&path.display().to_string()),
            literal(delimiter)
        ));
        adapter.execute_all(&statements)?;
    } else {
        let kinds: Vec<Inferred> = (0..data.columns.len())
            .map(|i| {
                if overrides.contains_key(&data.columns[i]) {
                    Inferred::Text
                } else {
                    infer(
                        data.rows
                            .iter()
                            .map(|r| r.get(i).and_then(|v| v.as_deref())),
                    )
                }
            })
            .collect();
        let names: Vec<String> = data.columns.iter().map(|c| column(c)).collect();
        for chunk in data.rows.chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|r| {
                    let cells: Vec<String> = kinds
                        .iter()
                        .enumerate()
                        .map(|(i, k)| {
                            weir_warehouse::value_literal(&cell(
                                r.get(i).and_then(|v| v.as_deref()),
                                *k,
                            ))
                        })
                        .collect();
                    format!("({})", cells.join(", "))
                })
                .collect();
            statements.push(format!(
                "insert into {} ({}) values {}",
                rel.render(),
                names.join(", "),
                values.join(", ")
            ));
        }
        adapter.execute_all(&statements)?;
    }
    Ok(Response {
        message: format!("INSERT {n}"),
        rows_affected: Some(n),
        run_sql: statements,
    })
}
