//! Listings as Airflow pages them: `order_by` (a field of the response, `-` for descending),
//! then `offset` and `limit` (capped at the server's maximum), with `total_entries` counting
//! everything that matched the filters.

use crate::error::{ApiError, ApiResult};
use serde::Serialize;
use serde_json::Value;
use std::cmp::Ordering;

/// `order_by` as given, or `[default]` when the request named none.
pub fn or_default<'a>(
    order_by: &'a [String],
    default: &'static str,
) -> std::borrow::Cow<'a, [String]> {
    if order_by.iter().all(|o| o.trim().is_empty()) {
        std::borrow::Cow::Owned(vec![default.to_string()])
    } else {
        std::borrow::Cow::Borrowed(order_by)
    }
}

/// One page of `items` and how many matched in all. `order_by` sorts by several fields, the
/// first one first (each may be comma-separated, as Airflow also accepts).
pub fn page<T: Serialize>(
    mut items: Vec<T>,
    limit: Option<usize>,
    offset: Option<usize>,
    order_by: &[String],
    max_limit: usize,
) -> ApiResult<(Vec<T>, i64)> {
    let total = items.len() as i64;
    let fields: Vec<(&str, bool)> = order_by
        .iter()
        .flat_map(|o| o.split(','))
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| match o.strip_prefix('-') {
            Some(f) => (f, true),
            None => (o, false),
        })
        .collect();
    if !fields.is_empty() {
        let values: Vec<Value> = items
            .iter()
            .map(|item| serde_json::to_value(item).unwrap_or(Value::Null))
            .collect();
        let mut keys: Vec<Vec<Value>> = Vec::with_capacity(items.len());
        for v in &values {
            let mut row = Vec::with_capacity(fields.len());
            for (field, _) in &fields {
                row.push(v.get(*field).cloned().ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Ordering with '{field}' is disallowed or the attribute does not exist on the model"
                    ))
                })?);
            }
            keys.push(row);
        }
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by(|&a, &b| {
            for (i, (_, descending)) in fields.iter().enumerate() {
                let o = compare(&keys[a][i], &keys[b][i]);
                let o = if *descending { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
        let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
        items = order.into_iter().filter_map(|i| slots[i].take()).collect();
    }
    let offset = offset.unwrap_or(0);
    let limit = limit.unwrap_or(50).min(max_limit);
    Ok((items.into_iter().skip(offset).take(limit).collect(), total))
}

/// JSON values in a total order: null, booleans, numbers, strings, then the rest as text.
fn compare(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            _ => 4,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => rank(a)
            .cmp(&rank(b))
            .then_with(|| a.to_string().cmp(&b.to_string())),
    }
}

/// Airflow's pattern filters (`dag_id_pattern=%sales%`): SQL `LIKE` with `%` and `_`,
/// case-insensitive; without a wildcard, a substring match.
pub fn like(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    if !p.iter().any(|c| *c == '%' || *c == '_') {
        return text.to_lowercase().contains(&pattern.to_lowercase());
    }
    // dp[j]: does p[..i] match t[..j]
    let mut dp = vec![false; t.len() + 1];
    dp[0] = true;
    for &pc in &p {
        let mut next = vec![false; t.len() + 1];
        if pc == '%' {
            let mut seen = false;
            for j in 0..=t.len() {
                seen |= dp[j];
                next[j] = seen;
            }
        } else {
            for j in 1..=t.len() {
                next[j] = dp[j - 1] && (pc == '_' || pc == t[j - 1]);
            }
        }
        dp = next;
    }
    dp[t.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_as_sql_does() {
        assert!(like("%sales%", "daily_SALES_report"));
        assert!(like("sales", "daily_sales"));
        assert!(like("d_ily%", "daily"));
        assert!(!like("d_ily", "dailyx"));
        assert!(!like("%x%", "daily"));
    }

    #[test]
    fn pages_order_then_window() {
        #[derive(Debug, Serialize)]
        struct Row {
            n: i64,
        }
        let rows: Vec<Row> = [3, 1, 2].into_iter().map(|n| Row { n }).collect();
        let (got, total) = page(rows, Some(2), Some(0), &["-n".to_string()], 100).unwrap();
        assert_eq!(total, 3);
        assert_eq!(got.iter().map(|r| r.n).collect::<Vec<_>>(), [3, 2]);
        let rows: Vec<Row> = vec![Row { n: 1 }];
        assert_eq!(
            page(rows, None, None, &["nope".to_string()], 100)
                .unwrap_err()
                .status,
            400
        );
    }
}
