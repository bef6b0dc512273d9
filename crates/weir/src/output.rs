//! Listings in the three output formats: an aligned table (default), JSON, or plain
//! tab-separated lines for scripts.

use clap::ValueEnum;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
    Plain,
}

/// Rows with named columns.
pub struct Listing {
    columns: Vec<&'static str>,
    rows: Vec<Vec<Value>>,
}

impl Listing {
    pub fn new(columns: &[&'static str]) -> Self {
        Listing {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, values: Vec<Value>) {
        self.rows.push(values);
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => {
                let items: Vec<Value> = self
                    .rows
                    .iter()
                    .map(|row| {
                        let map: Map<String, Value> = self
                            .columns
                            .iter()
                            .map(|c| c.to_string())
                            .zip(row.iter().cloned())
                            .collect();
                        Value::Object(map)
                    })
                    .collect();
                serde_json::to_string_pretty(&items).unwrap_or_default() + "\n"
            }
            Format::Plain => self
                .rows
                .iter()
                .map(|row| row.iter().map(cell).collect::<Vec<_>>().join("\t") + "\n")
                .collect(),
            Format::Table => {
                let cells: Vec<Vec<String>> = self
                    .rows
                    .iter()
                    .map(|r| r.iter().map(cell).collect())
                    .collect();
                let mut widths: Vec<usize> = self.columns.iter().map(|c| c.len()).collect();
                for row in &cells {
                    for (i, c) in row.iter().enumerate() {
                        widths[i] = widths[i].max(c.chars().count());
                    }
                }
                let line = |values: Vec<String>| -> String {
                    let parts: Vec<String> = values
                        .iter()
                        .enumerate()
                        // Padded by hand: `{:<w$}` panics on widths over u16::MAX (a
                        // depends_on of thousands of expanded dbt tasks).
                        .map(|(i, v)| {
                            let pad = widths[i].saturating_sub(v.chars().count());
                            format!("{v}{}", " ".repeat(pad))
                        })
                        .collect();
                    parts.join("  ").trim_end().to_string() + "\n"
                };
                let mut out = line(self.columns.iter().map(|c| c.to_string()).collect());
                out.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect()));
                for row in cells {
                    out.push_str(&line(row));
                }
                out
            }
        }
    }
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An instant as users read it in listings: `2026-01-15 03:00:00+00:00` (with `.ffffff` when
/// it has microseconds).
pub fn time(us: Option<i64>) -> Value {
    match us {
        Some(us) => Value::String(weir_core::iso(weir_core::timestamp(us)).replacen('T', " ", 1)),
        None => Value::Null,
    }
}
