//! `check`: data checks. Either `sql` whose result is compared with `expect` (`> 0`, `== 0`,
//! `between 1 and 10`, a value, or rows), or built-ins on a `table`: `unique`, `not_null`,
//! `row_count: {min, max}`, `freshness: {column, max_age}`, each optionally filtered by `where`.
//! A failed check fails the task (or only warns with `severity: warn`) and logs up to ten
//! offending rows.

use crate::sql::open_warehouse;
use crate::{OpError, Operator, Plan, PlanContext, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_spec::values::Severity;
use weir_warehouse::{Rows, Warehouse, quote_name};

pub struct Check;

const SHOWN_ROWS: usize = 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    connection: String,
    sql: Option<String>,
    expect: Option<Value>,
    table: Option<String>,
    #[serde(rename = "where")]
    filter: Option<String>,
    unique: Option<Cols>,
    not_null: Option<Cols>,
    row_count: Option<RowCount>,
    freshness: Option<Freshness>,
    severity: Option<Severity>,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum Cols {
    One(String),
    Many(Vec<String>),
}

impl Cols {
    fn list(&self) -> Vec<String> {
        match self {
            Cols::One(c) => vec![c.clone()],
            Cols::Many(c) => c.clone(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct RowCount {
    min: Option<f64>,
    max: Option<f64>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Freshness {
    column: String,
    max_age: Value,
}

/// One expectation on a query's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Expect {
    Compare(String, f64),
    Between(f64, f64),
    Equals(Value),
    Rows(Vec<Value>),
}

fn parse_expect(v: &Value) -> Result<Expect, String> {
    match v {
        Value::Array(rows) => Ok(Expect::Rows(rows.clone())),
        Value::String(s) => {
            let text = s.trim();
            let lower = text.to_ascii_lowercase();
            if let Some(rest) = lower.strip_prefix("between ") {
                let (lo, hi) = rest
                    .split_once(" and ")
                    .ok_or_else(|| format!("expect '{text}': write 'between LOW and HIGH'"))?;
                return Ok(Expect::Between(number(lo)?, number(hi)?));
            }
            for op in [">=", "<=", "==", "!=", ">", "<", "="] {
                if let Some(rest) = text.strip_prefix(op) {
                    let op = if op == "=" { "==" } else { op };
                    return Ok(Expect::Compare(op.to_string(), number(rest)?));
                }
            }
            Ok(Expect::Equals(Value::String(text.to_string())))
        }
        other => Ok(Expect::Equals(other.clone())),
    }
}

fn number(text: &str) -> Result<f64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("'{}' is not a number", text.trim()))
}

/// A result cell as a number: numbers, numeric strings, booleans.
fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

#[derive(Serialize, Deserialize)]
enum Kind {
    Expect {
        sql: String,
        expect: Expect,
    },
    Builtins {
        table: String,
        filter: Option<String>,
        unique: Option<Vec<String>>,
        not_null: Option<Vec<String>>,
        row_count: Option<RowCount>,
        freshness: Option<(String, std::time::Duration)>,
    },
}

impl Operator for Check {
    fn name(&self) -> &'static str {
        "check"
    }

    fn plan(&self, cx: &PlanContext<'_>) -> Result<Plan, OpError> {
        let c: Config = cx.config()?;
        let kind = match (&c.sql, &c.table) {
            (Some(sql), _) => {
                let expect = c.expect.as_ref().ok_or_else(|| {
                    cx.config_error("a check with `sql` needs `expect` (e.g. \"> 0\", \"== 0\", \"between 1 and 10\")")
                })?;
                let expect =
                    parse_expect(&cx.render_value(expect)?).map_err(|e| cx.config_error(e))?;
                Kind::Expect {
                    sql: cx.render_sql(sql)?,
                    expect,
                }
            }
            (None, Some(table)) => {
                if c.unique.is_none()
                    && c.not_null.is_none()
                    && c.row_count.is_none()
                    && c.freshness.is_none()
                {
                    return Err(cx.config_error("a check on `table` needs at least one of unique, not_null, row_count, freshness"));
                }
                let freshness = match &c.freshness {
                    Some(f) => Some((
                        f.column.clone(),
                        weir_spec::values::duration(&f.max_age)
                            .map_err(|e| cx.config_error(format!("freshness.max_age: {e}")))?,
                    )),
                    None => None,
                };
                Kind::Builtins {
                    table: cx.render(table)?,
                    filter: c.filter.as_deref().map(|f| cx.render(f)).transpose()?,
                    unique: c.unique.as_ref().map(Cols::list),
                    not_null: c.not_null.as_ref().map(Cols::list),
                    row_count: c.row_count,
                    freshness,
                }
            }
            (None, None) => {
                return Err(
                    cx.config_error("a check needs `sql` + `expect`, or `table` + built-in checks")
                );
            }
        };
        Ok(Plan::Warehouse(Box::new(
            CheckRun {
                task_id: cx.task.task_id.clone(),
                connection: c.connection,
                kind,
                severity: c.severity.unwrap_or(Severity::Error),
            }
            .into(),
        )))
    }
}

/// A planned `check` task: rendered, ready to run where the warehouse is.
#[derive(Serialize, Deserialize)]
pub struct CheckRun {
    task_id: String,
    connection: String,
    kind: Kind,
    severity: Severity,
}

/// One failed expectation: what, and the rows that show it.
struct Failure {
    what: String,
    rows: Option<Rows>,
}

impl CheckRun {
    async fn failures(&self, wh: &Warehouse, rt: &dyn Runtime) -> Result<Vec<Failure>, String> {
        let on = |e: weir_warehouse::WarehouseError| {
            format!(
                "task '{}' on connection '{}': {e}",
                self.task_id, self.connection
            )
        };
        let mut out = Vec::new();
        match &self.kind {
            Kind::Expect { sql, expect } => {
                rt.log(&format!("checking on '{}':\n{sql}", self.connection));
                let rows = wh.query(sql).await.map_err(on)?;
                if let Some(f) =
                    judge(&rows, expect).map_err(|e| format!("task '{}': {e}", self.task_id))?
                {
                    out.push(Failure {
                        what: f,
                        rows: Some(rows),
                    });
                }
            }
            Kind::Builtins {
                table,
                filter,
                unique,
                not_null,
                row_count,
                freshness,
            } => {
                let from = quote_name(table);
                let where_ = filter
                    .as_ref()
                    .map(|f| format!(" WHERE {f}"))
                    .unwrap_or_default();
                let and = |cond: &str| match filter {
                    Some(f) => format!(" WHERE ({f}) AND ({cond})"),
                    None => format!(" WHERE {cond}"),
                };
                if let Some(cols) = unique {
                    let list = cols
                        .iter()
                        .map(|c| quote_name(c))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let sql = format!(
                        "SELECT {list}, count(*) AS n FROM {from}{where_} GROUP BY {list} HAVING count(*) > 1 ORDER BY n DESC"
                    );
                    rt.log(&format!("unique({}): {sql}", cols.join(", ")));
                    let rows = wh.query(&sql).await.map_err(on)?;
                    if !rows.rows.is_empty() {
                        out.push(Failure {
                            what: format!(
                                "{} duplicated values of unique({}) in {table}",
                                rows.rows.len(),
                                cols.join(", ")
                            ),
                            rows: Some(rows),
                        });
                    }
                }
                if let Some(cols) = not_null {
                    let cond = cols
                        .iter()
                        .map(|c| format!("{} IS NULL", quote_name(c)))
                        .collect::<Vec<_>>()
                        .join(" OR ");
                    let count_sql = format!("SELECT count(*) FROM {from}{}", and(&cond));
                    rt.log(&format!("not_null({}): {count_sql}", cols.join(", ")));
                    let n = scalar(&wh.query(&count_sql).await.map_err(on)?).unwrap_or(0.0);
                    if n > 0.0 {
                        let rows = wh
                            .query(&format!(
                                "SELECT * FROM {from}{} LIMIT {SHOWN_ROWS}",
                                and(&cond)
                            ))
                            .await
                            .map_err(on)?;
                        out.push(Failure {
                            what: format!("{n} rows of {table} have NULL in {}", cols.join(", ")),
                            rows: Some(rows),
                        });
                    }
                }
                if let Some(rc) = row_count {
                    let sql = format!("SELECT count(*) AS row_count FROM {from}{where_}");
                    rt.log(&format!("row_count: {sql}"));
                    let rows = wh.query(&sql).await.map_err(on)?;
                    let n = scalar(&rows).unwrap_or(0.0);
                    let low = rc.min.is_some_and(|m| n < m);
                    let high = rc.max.is_some_and(|m| n > m);
                    if low || high {
                        out.push(Failure {
                            what: format!(
                                "{table} has {n} rows, expected {}",
                                bounds(rc.min, rc.max)
                            ),
                            rows: None,
                        });
                    }
                }
                if let Some((column, max_age)) = freshness {
                    let sql = format!(
                        "SELECT max({}) AS latest FROM {from}{where_}",
                        quote_name(column)
                    );
                    rt.log(&format!("freshness: {sql}"));
                    let rows = wh.query(&sql).await.map_err(on)?;
                    let latest = rows.first_value().cloned().unwrap_or(Value::Null);
                    match latest.as_str().and_then(parse_time) {
                        Some(at) => {
                            let age = jiff::Timestamp::now().duration_since(at);
                            if age.as_secs_f64() > max_age.as_secs_f64() {
                                out.push(Failure {
                                    what: format!(
                                        "{table}.{column} is stale: latest {} is older than {}",
                                        latest.as_str().unwrap_or(""),
                                        weir_core::format_duration(*max_age)
                                    ),
                                    rows: None,
                                });
                            }
                        }
                        None if latest.is_null() => out.push(Failure {
                            what: format!("{table} has no rows, so {column} is not fresh"),
                            rows: None,
                        }),
                        None => {
                            return Err(format!(
                                "task '{}': freshness: '{latest}' in {table}.{column} is not a date or timestamp",
                                self.task_id
                            ));
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

fn bounds(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("between {a} and {b}"),
        (Some(a), None) => format!("at least {a}"),
        (None, Some(b)) => format!("at most {b}"),
        (None, None) => "any".into(),
    }
}

fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Some(ts);
    }
    let civil = text.get(..19).unwrap_or(text).replace(' ', "T");
    let dt = civil.parse::<jiff::civil::DateTime>().ok().or_else(|| {
        text.get(..10)?
            .parse::<jiff::civil::Date>()
            .ok()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
    })?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

fn scalar(rows: &Rows) -> Option<f64> {
    rows.first_value().and_then(as_number)
}

/// `None` when `rows` meets `expect`, else what is wrong.
fn judge(rows: &Rows, expect: &Expect) -> Result<Option<String>, String> {
    if let Expect::Rows(want) = expect {
        let got: Vec<Value> = rows.rows.iter().map(|r| Value::Array(r.clone())).collect();
        let want_rows: Vec<Value> = want
            .iter()
            .map(|w| match w {
                Value::Array(_) => w.clone(),
                Value::Object(m) => Value::Array(m.values().cloned().collect()),
                other => Value::Array(vec![other.clone()]),
            })
            .collect();
        let same = got.len() == want_rows.len()
            && got.iter().zip(&want_rows).all(|(g, w)| rows_equal(g, w));
        return Ok((!same).then(|| {
            format!(
                "expected rows {}, got {}",
                Value::Array(want_rows),
                Value::Array(got)
            )
        }));
    }
    let Some(cell) = rows.first_value() else {
        return Ok(Some("the query returned no rows".into()));
    };
    let need_number = |v: &Value| {
        as_number(v).ok_or_else(|| {
            format!("the check query returned {v}, which is not a number; expect compares numbers")
        })
    };
    let ok = match expect {
        Expect::Compare(op, n) => {
            let v = need_number(cell)?;
            match op.as_str() {
                ">" => v > *n,
                ">=" => v >= *n,
                "<" => v < *n,
                "<=" => v <= *n,
                "!=" => v != *n,
                _ => v == *n,
            }
        }
        Expect::Between(lo, hi) => {
            let v = need_number(cell)?;
            v >= *lo && v <= *hi
        }
        Expect::Equals(want) => match (as_number(cell), as_number(want)) {
            (Some(a), Some(b)) => a == b,
            _ => cell_text(cell) == cell_text(want),
        },
        Expect::Rows(_) => true,
    };
    Ok((!ok).then(|| format!("got {}, expected {}", cell, describe(expect))))
}

fn rows_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(p, q)| match (as_number(p), as_number(q)) {
                        (Some(m), Some(n)) => m == n,
                        _ => cell_text(p) == cell_text(q),
                    })
        }
        _ => a == b,
    }
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn describe(expect: &Expect) -> String {
    match expect {
        Expect::Compare(op, n) => format!("{op} {n}"),
        Expect::Between(a, b) => format!("between {a} and {b}"),
        Expect::Equals(v) => v.to_string(),
        Expect::Rows(r) => Value::Array(r.clone()).to_string(),
    }
}

impl CheckRun {
    pub(crate) fn connection(&self) -> &str {
        &self.connection
    }

    pub(crate) async fn run(self, rt: &dyn Runtime) -> Result<Option<Value>, String> {
        let wh = open_warehouse(rt, &self.task_id, &self.connection).await?;
        let failures = self.failures(&wh, rt).await?;
        if failures.is_empty() {
            rt.log("check passed");
            return Ok(Some(Value::Bool(true)));
        }
        for f in &failures {
            let mut text = format!("check failed: {}", f.what);
            if let Some(rows) = &f.rows
                && !rows.rows.is_empty()
            {
                text.push_str(&format!(
                    "\noffending rows (showing {} of {}):\n{}",
                    rows.rows.len().min(SHOWN_ROWS),
                    rows.rows.len(),
                    rows.render(SHOWN_ROWS)
                ));
            }
            rt.log(&text);
        }
        let summary = failures
            .iter()
            .map(|f| f.what.clone())
            .collect::<Vec<_>>()
            .join("; ");
        match self.severity {
            Severity::Warn => {
                rt.log("severity is warn: the task succeeds");
                Ok(Some(Value::Bool(false)))
            }
            Severity::Error => Err(format!("check failed: {summary}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(v: Value) -> Rows {
        Rows {
            columns: vec!["x".into()],
            rows: vec![vec![v]],
        }
    }

    #[test]
    fn expectations_compare_like_a_data_engineer_expects() {
        let e = |s: &str| parse_expect(&json!(s)).unwrap();
        assert_eq!(judge(&one(json!(3)), &e("> 0")).unwrap(), None);
        assert!(
            judge(&one(json!(0)), &e("> 0"))
                .unwrap()
                .unwrap()
                .contains("expected > 0")
        );
        assert_eq!(
            judge(&one(json!("5")), &e("between 1 and 10")).unwrap(),
            None
        );
        assert_eq!(judge(&one(json!(0)), &e("== 0")).unwrap(), None);
        assert_eq!(judge(&one(json!("KR")), &e("KR")).unwrap(), None);
        assert_eq!(
            judge(&one(json!(2.0)), &parse_expect(&json!(2)).unwrap()).unwrap(),
            None
        );
        let err = judge(&one(json!("abc")), &e("> 0")).unwrap_err();
        assert!(err.contains("not a number"), "{err}");
        assert!(parse_expect(&json!("between 1 or 2")).is_err());
        let rows = Rows {
            columns: vec!["a".into(), "b".into()],
            rows: vec![vec![json!(1), json!("x")]],
        };
        assert_eq!(
            judge(&rows, &parse_expect(&json!([[1, "x"]])).unwrap()).unwrap(),
            None
        );
        assert!(
            judge(&rows, &parse_expect(&json!([[2, "x"]])).unwrap())
                .unwrap()
                .is_some()
        );
    }
}
