//! `weir models show`: compiles a node (or `--inline` SQL), runs it with a limit and prints
//! dbt's preview: `Previewing node 'customers':` and the rows as agate's `print_table` draws
//! them (GitHub-flavoured Markdown, at most 6 columns of at most 20 characters, text to the
//! left and everything else to the right), or `{"node": ..., "show": [...]}` with `--output json`.

use std::io::Write;

use serde_json::{Value as Json, json};
use weir_warehouse::Rows;

use crate::project::{Node, Project, ResourceType, Selection, select};
use crate::run::RunError;
use crate::session::{Console, Session};

/// How the preview is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShowFormat {
    #[default]
    Text,
    Json,
}

/// What `show` is asked for.
#[derive(Debug, Clone)]
pub struct ShowOptions {
    pub selection: Selection,
    /// SQL (with Jinja) to preview instead of a selected node.
    pub inline: Option<String>,
    /// Rows to fetch; negative fetches every row (dbt's `--limit -1`).
    pub limit: i64,
    pub output: ShowFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    #[error(
        "either --select or --inline must be passed to show\nhint: weir models show --select customers, or --inline 'select ...'"
    )]
    NothingAsked,
    #[error(
        "--select {0} matches no model, seed, snapshot or analysis\nhint: `weir models ls --select {0}` lists what it selects"
    )]
    NothingSelected(String),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("Compilation Error in {kind} {name} ({path})\n  {message}")]
    Compile {
        kind: String,
        name: String,
        path: String,
        message: String,
    },
    #[error("Database Error in {kind} {name} ({path})\n  {message}")]
    Database {
        kind: String,
        name: String,
        path: String,
        message: String,
    },
}

/// The node `--inline` SQL compiles as (dbt's `sql_operation` named `inline_query`).
fn inline_node(project: &Project, sql: &str) -> Node {
    let mut node = Node::new(
        ResourceType::Analysis,
        project.root_package(),
        "inline_query",
    );
    node.unique_id = format!("sql_operation.{}.inline_query", project.root_package());
    node.original_file_path = "from remote system.sql".to_string();
    node.path = node.original_file_path.clone();
    node.raw_code = sql.to_string();
    node.fqn = vec![project.root_package().to_string(), "inline_query".into()];
    node
}

/// dbt's `get_limit_sql`: the compiled SQL, then `limit N`.
fn limited(sql: &str, limit: i64) -> String {
    let body = sql.trim_end().trim_end_matches(';').trim_end();
    if limit < 0 {
        body.to_string()
    } else {
        format!("{body}\nlimit {limit}")
    }
}

/// Runs the preview and prints it to `out`.
pub fn show(
    project: &mut Project,
    options: &ShowOptions,
    out: Box<dyn Write + Send>,
) -> Result<(), ShowError> {
    let nodes: Vec<Node> = match &options.inline {
        Some(sql) => vec![inline_node(project, sql)],
        None => {
            if options.selection.select.is_empty() && options.selection.selector.is_none() {
                return Err(ShowError::NothingAsked);
            }
            let mut selection = options.selection.clone();
            selection.resource_types = Some(vec![
                ResourceType::Model,
                ResourceType::Seed,
                ResourceType::Snapshot,
                ResourceType::Analysis,
            ]);
            let ids =
                select(project, &selection).map_err(|e| RunError::Selection(e.to_string()))?;
            let nodes: Vec<Node> = ids
                .iter()
                .filter_map(|id| project.node(id).cloned())
                .collect();
            if nodes.is_empty() {
                return Err(ShowError::NothingSelected(
                    options.selection.select.join(" "),
                ));
            }
            nodes
        }
    };
    let printer = Console::new(out);
    let session = Session::open(project, "show")?;
    printer.header(project, session.threads, &session.target_name);
    for node in &nodes {
        let error_fields = || {
            (
                if node.unique_id.starts_with("sql_operation.") {
                    "sql_operation".to_string()
                } else {
                    node.resource_type.as_str().to_string()
                },
                node.name.clone(),
                node.original_file_path.clone(),
            )
        };
        let sql = if node.resource_type == ResourceType::Seed {
            let rel = session
                .compiler
                .relations
                .relation
                .get(&node.unique_id)
                .map(|r| r.render())
                .unwrap_or_default();
            format!("select * from {rel}")
        } else {
            session
                .compile(node)
                .map_err(|message| {
                    let (kind, name, path) = error_fields();
                    ShowError::Compile {
                        kind,
                        name,
                        path,
                        message,
                    }
                })?
                .sql
        };
        let rows = session
            .query(&limited(&sql, options.limit))
            .map_err(|message| {
                let (kind, name, path) = error_fields();
                ShowError::Database {
                    kind,
                    name,
                    path,
                    message: message.trim().replace('\n', "\n  "),
                }
            })?;
        let is_inline = options.inline.is_some();
        let mut name = node.name.clone();
        if let Some(v) = &node.version {
            name.push_str(&format!(".v{v}"));
        }
        let text = match options.output {
            ShowFormat::Json => {
                let mut doc = serde_json::Map::new();
                if !is_inline {
                    doc.insert("node".into(), json!(name));
                }
                doc.insert("show".into(), Json::Array(rows.objects()));
                serde_json::to_string_pretty(&Json::Object(doc)).unwrap_or_default()
            }
            ShowFormat::Text if is_inline => {
                format!("Previewing inline node:\n{}", preview_table(&rows))
            }
            ShowFormat::Text => {
                format!("Previewing node '{name}':\n{}", preview_table(&rows))
            }
        };
        // dbt prints the preview as it is, without the time prefix of its log lines.
        printer.raw(&text);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Number,
    Other,
}

fn kind_of(values: &[&Json]) -> Kind {
    let present: Vec<&&Json> = values.iter().filter(|v| !v.is_null()).collect();
    if present.is_empty() {
        return Kind::Number;
    }
    if present.iter().all(|v| v.is_number()) {
        return Kind::Number;
    }
    if present.iter().all(|v| v.is_boolean()) {
        return Kind::Other;
    }
    // Dates, timestamps and times come back as text; agate types and right-aligns them.
    let temporal = |s: &str| {
        let b = s.as_bytes();
        (b.len() >= 10
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[5..7].iter().all(u8::is_ascii_digit)
            && b[7] == b'-'
            && b[8..10].iter().all(u8::is_ascii_digit))
            || (b.len() >= 8
                && b[..2].iter().all(u8::is_ascii_digit)
                && b[2] == b':'
                && b[3..5].iter().all(u8::is_ascii_digit)
                && b[5] == b':')
    };
    if present.iter().all(|v| v.as_str().is_some_and(temporal)) {
        return Kind::Other;
    }
    Kind::Text
}

/// Decimal places of a number once trailing zeros are dropped (`33.0` has none).
fn places(v: &Json) -> usize {
    let text = match v.as_f64() {
        Some(f) if !v.is_i64() && !v.is_u64() => format!("{f}"),
        _ => return 0,
    };
    match text.split_once('.') {
        Some((_, frac)) => frac.trim_end_matches('0').len(),
        None => 0,
    }
}

/// `1234.5` with 2 places → `1,234.50`, as babel's `#,##0.00` in the en_US locale.
fn format_number(v: &Json, places: usize, truncated: bool) -> String {
    let text = if let Some(i) = v.as_i64().filter(|_| places == 0) {
        i.to_string()
    } else if let Some(u) = v.as_u64().filter(|_| places == 0) {
        u.to_string()
    } else {
        format!("{:.*}", places, v.as_f64().unwrap_or(0.0))
    };
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let mut out = format!("{sign}{grouped}");
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    if truncated {
        out.push('…');
    }
    out
}

const MAX_COLUMNS: usize = 6;
const MAX_COLUMN_WIDTH: usize = 20;
const MAX_PRECISION: usize = 3;

fn truncate(text: String) -> String {
    if text.chars().count() > MAX_COLUMN_WIDTH {
        let kept: String = text.chars().take(MAX_COLUMN_WIDTH - 3).collect();
        format!("{kept}...")
    } else {
        text
    }
}

/// The rows as agate's `print_table(max_rows=None)`.
pub fn preview_table(rows: &Rows) -> String {
    let shown = rows.columns.len().min(MAX_COLUMNS);
    let truncated_columns = rows.columns.len() > MAX_COLUMNS;
    let mut kinds = Vec::new();
    let mut formats = Vec::new();
    for c in 0..shown {
        let values: Vec<&Json> = rows.rows.iter().filter_map(|r| r.get(c)).collect();
        let kind = kind_of(&values);
        let most = values.iter().map(|v| places(v)).max().unwrap_or(0);
        kinds.push(kind);
        formats.push((most.min(MAX_PRECISION), most > MAX_PRECISION));
    }
    let mut header: Vec<String> = rows.columns[..shown]
        .iter()
        .map(|c| truncate(c.clone()))
        .collect();
    if truncated_columns {
        header.push("...".into());
        kinds.push(Kind::Text);
    }
    let body: Vec<Vec<String>> = rows
        .rows
        .iter()
        .map(|row| {
            let mut cells: Vec<String> = (0..shown)
                .map(|c| {
                    let v = row.get(c).unwrap_or(&Json::Null);
                    let text = match v {
                        Json::Null => String::new(),
                        Json::String(s) => s.clone(),
                        Json::Bool(b) => if *b { "True" } else { "False" }.to_string(),
                        Json::Number(_) if kinds[c] == Kind::Number => {
                            format_number(v, formats[c].0, formats[c].1)
                        }
                        other => other.to_string(),
                    };
                    truncate(text)
                })
                .collect();
            if truncated_columns {
                cells.push("...".into());
            }
            cells
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &body {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(j, cell)| {
                let w = widths[j];
                if kinds[j] == Kind::Text {
                    format!(" {cell:<w$} ")
                } else {
                    format!(" {cell:>w$} ")
                }
            })
            .collect();
        format!("|{}|", parts.join("|"))
    };
    let mut out = vec![line(&header)];
    out.push(format!(
        "| {} |",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join(" | ")
    ));
    out.extend(body.iter().map(|r| line(r)));
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preview_is_agates_markdown_table() {
        let rows = Rows {
            columns: vec!["id".into(), "name".into(), "day".into(), "amount".into()],
            rows: vec![
                vec![
                    json!(1),
                    json!("Michael"),
                    json!("2018-01-01"),
                    json!(1234.5),
                ],
                vec![json!(22), Json::Null, json!("2018-01-02"), json!(3.0)],
            ],
        };
        assert_eq!(
            preview_table(&rows),
            "| id | name    |        day |  amount |\n\
             | -- | ------- | ---------- | ------- |\n\
             |  1 | Michael | 2018-01-01 | 1,234.5 |\n\
             | 22 |         | 2018-01-02 |     3.0 |\n",
            "numbers get the most decimal places of their column"
        );
    }

    #[test]
    fn more_than_six_columns_end_in_an_ellipsis_column() {
        let columns: Vec<String> = (1..=7).map(|i| format!("c{i}")).collect();
        let rows = Rows {
            rows: vec![(1..=7).map(|i| json!(i)).collect()],
            columns,
        };
        let table = preview_table(&rows);
        assert!(
            table.starts_with("| c1 | c2 | c3 | c4 | c5 | c6 | ... |\n"),
            "{table}"
        );
        assert!(
            table.ends_with("|  1 |  2 |  3 |  4 |  5 |  6 | ... |\n"),
            "{table}"
        );
    }

    #[test]
    fn limit_is_appended_as_dbt_does_and_negative_means_no_limit() {
        assert_eq!(limited("select 1;\n", 5), "select 1\nlimit 5");
        assert_eq!(limited("select 1", -1), "select 1");
    }
}
