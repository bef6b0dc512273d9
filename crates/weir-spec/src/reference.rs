//! The DAG file reference (`docs/dag-reference.md`), made from the key declarations so that
//! it cannot drift from what validation accepts.

use crate::keys::{
    COMMON_TASK_KEYS, DAG_KEYS, KeyDoc, NOTIFICATION_KEYS, TASK_TYPES, TaskTypeDoc, Type,
};
use std::fmt::Write;

/// A complete DAG that the reference opens with; a test validates it.
pub const EXAMPLE_DAG: &str = r#"dag_id: user_events_daily
description: Load raw events, build a table, check it
owner: data-eng
tags: [events]
schedule: "30 2 * * *"
timezone: Europe/Berlin
start_date: 2026-01-01
catchup: false
max_active_runs: 1
params: {country: KR}
default_args: {retries: 2, retry_delay: 5m, retry_exponential_backoff: true, execution_timeout: 30m}
on_failure: [{notify: slack, connection: alerts}]
tasks:
  - id: extract
    type: http
    url: "https://example.com/events?date={{ ds }}&country={{ params.country }}"
    save_to: {connection: warehouse, table: raw.events, format: json,
              mode: replace_partition, partition: {event_date: "{{ ds }}"}}
  - id: transform
    type: sql
    connection: warehouse
    mode: incremental
    unique_key: [event_id]
    table: core.events
    sql: "select * from raw.events where event_date = '{{ ds }}'"
    depends_on: [extract]
  - id: events_exist
    type: check
    connection: warehouse
    sql: "select count(*) from core.events where event_date = '{{ ds }}'"
    expect: "> 0"
    depends_on: [transform]
  - id: report
    type: shell
    command: echo "loaded {{ ds }}"
    xcom: last_line
    depends_on: [events_exist]
    trigger_rule: all_done
"#;

/// The reference as Markdown. `runnable` names the task types this build runs; the others
/// validate but are marked as not yet runnable.
pub fn reference_markdown(runnable: &[String]) -> String {
    let mut out = String::new();
    out.push_str("<!-- Generated from crates/weir-spec/src/keys.rs by `weir docs --out docs`; do not edit. -->\n\n");
    out.push_str("# DAG file reference\n\n");
    out.push_str(
        "A DAG file is one YAML file in `dags/` (the `[core] dags_folder` setting). \
         `weir dags validate` checks every key below, with file:line and a hint for each \
         problem; `weir dags schema` prints the same rules as a JSON Schema for editors \
         (see [Editor support](#editor-support)).\n\n",
    );
    out.push_str("```yaml\n");
    out.push_str(EXAMPLE_DAG);
    out.push_str("```\n\n");
    out.push_str(
        "String values of task keys marked *template* are rendered with Jinja and Airflow's \
         context (`ds`, `ts`, `data_interval_start`, `params`, `conf`, `var.value.KEY`, \
         `conn.ID.host`, `ti.xcom_pull(...)`, `macros.ds_add`, ...) when the task runs.\n\n",
    );
    out.push_str("## Contents\n\n- [DAG keys](#dag-keys)\n- [Keys every task has](#keys-every-task-has)\n- [Notifications](#notifications)\n");
    for t in TASK_TYPES {
        let _ = writeln!(out, "- [`{0}`](#{0})", t.name);
    }
    out.push_str("- [Editor support](#editor-support)\n\n");

    out.push_str("## DAG keys\n\n");
    table(&mut out, DAG_KEYS);
    out.push_str(
        "`default_args` takes any key of the next table but `id` and `type`; a task's own \
         value wins.\n\n",
    );
    out.push_str(
        "**Assets.** A task with `outlets: [orders]` records an event for each asset when it \
         succeeds, in the transaction of its success. A DAG with `schedule: {assets: [orders, \
         customers]}` (all of them), `{assets: {any: [orders, customers]}}`, or nested \
         `{assets: {any: [orders, {all: [a, b]}]}}` gets a run of type `asset_triggered` when \
         the events queued since its last asset-triggered run meet the condition; that run \
         consumes every event queued for the DAG (several updates make one run). Its logical \
         date is the newest consumed event's time, its data interval spans the consumed events, \
         and its templates see them as `triggering_asset_events`: asset name to a list of \
         events, oldest first, each with `source_dag_id`, `source_run_id`, `source_task_id`, \
         `source_map_index`, `timestamp` and `extra` \
         (`{{ triggering_asset_events['orders'][0].source_dag_id }}`). Events are queued for a \
         paused consumer too and wait for it. `weir assets list` and `weir assets events` show \
         them.\n\n",
    );
    out.push_str("## Keys every task has\n\n");
    table(&mut out, COMMON_TASK_KEYS);
    out.push_str("## Notifications\n\n");
    out.push_str(
        "`on_failure`, `on_retry`, `on_success` (of a DAG or a task) and `sla_miss` (of a DAG) \
         take one notification or a list of them:\n\n",
    );
    table(&mut out, NOTIFICATION_KEYS);
    out.push_str("```yaml\non_failure:\n  - {notify: slack, connection: alerts}\n  - {notify: email, connection: smtp, to: [data@example.com], subject: \"{{ dag.dag_id }} failed\"}\n```\n\n");
    out.push_str("## Task types\n\n");
    for t in TASK_TYPES {
        task_type(&mut out, t, runnable.iter().any(|r| r == t.name));
    }
    out.push_str("## Editor support\n\n");
    out.push_str(
        "`weir dags schema > dag-schema.json` writes the JSON Schema of this format (also in \
         `docs/dag-schema.json`). With the YAML language server (VS Code's YAML extension, \
         Neovim, Helix, ...) put this first line in a DAG file:\n\n\
         ```yaml\n# yaml-language-server: $schema=../dag-schema.json\n```\n\n\
         or map `dags/*.yaml` to the schema in the editor's settings \
         (`\"yaml.schemas\": {\"./dag-schema.json\": \"dags/*.yaml\"}`).\n",
    );
    out
}

fn task_type(out: &mut String, t: &TaskTypeDoc, runnable: bool) {
    let _ = writeln!(out, "### `{}`\n", t.name);
    let _ = writeln!(out, "{}.\n", capitalise(t.doc));
    if !runnable {
        out.push_str("*Validates, but this build does not run it yet: a DAG using it is refused with \"not available in this build\".*\n\n");
    }
    if !t.one_of.is_empty() {
        let keys = t
            .one_of
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if t.only_one {
            let _ = writeln!(out, "Needs exactly one of {keys}.\n");
        } else {
            let _ = writeln!(out, "Needs at least one of {keys}.\n");
        }
    }
    if t.keys.is_empty() {
        out.push_str("No keys of its own.\n\n");
    } else {
        table(out, t.keys);
    }
    // An item of `tasks:`, shown without the `tasks:` line.
    out.push_str("```yaml\n");
    for line in t.example.lines() {
        let _ = writeln!(out, "{}", line.strip_prefix("  ").unwrap_or(line));
    }
    out.push_str("```\n\n");
}

fn table(out: &mut String, keys: &[KeyDoc]) {
    out.push_str("| key | type | required | description |\n|---|---|---|---|\n");
    for k in keys {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            k.name,
            type_cell(&k.ty),
            if k.required { "yes" } else { "" },
            escape(k.doc)
        );
    }
    out.push('\n');
    for k in keys {
        if let Type::Object(inner) = k.ty {
            let _ = writeln!(out, "`{}` keys:\n", k.name);
            table(out, inner);
        }
    }
}

/// The type column: enums list their values in code spans.
fn type_cell(ty: &Type) -> String {
    match ty {
        Type::Enum { names, ignore_case } => {
            let values = names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(" \\| ");
            if *ignore_case {
                format!("one of {values} (any case)")
            } else {
                format!("one of {values}")
            }
        }
        Type::Template => "string (template)".into(),
        Type::OneOf(types) => types.iter().map(type_cell).collect::<Vec<_>>().join(" or "),
        Type::Object(_) => "mapping (keys below)".into(),
        other => escape(&other.describe()),
    }
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
