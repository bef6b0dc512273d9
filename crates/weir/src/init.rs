//! `weir init NAME`: a new project with an example that runs green out of the box.

use anyhow::{Context, Result, bail};
use std::path::Path;

const WEIR_TOML: &str = r#"# weir settings. Every key can also be set as WEIR__SECTION__KEY (e.g. WEIR__CORE__PARALLELISM=8).

[core]
dags_folder = "dags"
# Time zone of schedules and dates that do not name one.
default_timezone = "UTC"
# Task instances queued or running at once, over all DAGs.
parallelism = 32
dags_are_paused_at_creation = false

[database]
# Empty: SQLite in .weir/metadata.db. For production: "postgres://user:pass@host:5432/weir".
url = ""

[scheduler]
# Seconds between looks at the DAG folder.
dag_dir_list_interval = 1.0
heartbeat_s = 5.0
# A running task whose heartbeat is older than this is a zombie: retried or failed.
zombie_threshold_s = 60.0

[worker]
slots = 32

[logging]
base_log_folder = ".weir/logs"
"#;

const EXAMPLE_DAG: &str = r#"# An example pipeline: extract a day of events, summarise them in Python, check the result,
# and report. Try: weir dags test example_daily 2026-01-15
dag_id: example_daily
description: Extract a day of events, summarise them, check and report
owner: data-eng
tags: [example]
schedule: "0 3 * * *"
timezone: UTC
start_date: 2026-01-01
catchup: false
params: {country: KR, min_rows: 3}
default_args: {retries: 1, retry_delay: 10s, execution_timeout: 5m}
tasks:
  - id: extract
    type: shell
    command: |
      mkdir -p .weir/data
      out=.weir/data/events_{{ ds_nodash }}.csv
      echo "event_date,country,user_id" > "$out"
      for i in 1 2 3 4 5; do echo "{{ ds }},{{ params.country }},$i" >> "$out"; done
      echo "wrote $out for interval {{ data_interval_start }} .. {{ data_interval_end }}"
      echo "$out"
    xcom: last_line

  - id: summarise
    type: python
    script: scripts/summarise.py
    args: ["{{ ti.xcom_pull(task_ids='extract') }}"]
    depends_on: [extract]

  - id: enough_rows
    type: shell
    command: |
      rows={{ ti.xcom_pull(task_ids='summarise')['rows'] }}
      echo "rows=$rows, need at least {{ params.min_rows }}"
      test "$rows" -ge {{ params.min_rows }}
    depends_on: [summarise]

  - id: report
    type: python
    callable: report:publish
    kwargs: {day: "{{ ds }}", dag: "{{ dag.dag_id }}"}
    depends_on: [enough_rows]
    trigger_rule: all_done
"#;

const SUMMARISE_PY: &str = r#""""Counts the rows of the CSV named in argv[1] and pushes {"rows": N} as XCom."""
import csv
import json
import os
import sys

path = sys.argv[1]
with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
print(f"{len(rows)} rows in {path} for {os.environ['WEIR_DS']}")
with open(os.environ["WEIR_XCOM"], "w") as f:
    json.dump({"rows": len(rows)}, f)
"#;

const REPORT_PY: &str = r#""""Called by the `report` task as report:publish; its return value becomes the XCom."""


def publish(day, dag):
    message = f"{dag}: report for {day} is ready"
    print(message)
    return {"message": message}
"#;

const NAMES_ETL: &str = r#"# The ETL from the team's notes: extract a name/gender CSV over HTTP, clean it, load it into
# the warehouse idempotently (a re-run of a day replaces that day), check the key, and tell
# someone when it fails.
#   weir dags test names_etl 2026-01-15
# It reads data/names.csv through a file:// URL so it runs without a network; point `url` at
# the real source (https://...) when you have one. The warehouse is DuckDB in .weir/ until you
# run: weir connections add warehouse --conn-uri postgres://user:pass@host:5432/analytics
# Failure alerts go to the `alerts` connection: weir connections add alerts --conn-uri https://hooks.slack.com/services/...
dag_id: names_etl
description: Names and genders from the source CSV, one partition per day
owner: data-eng
tags: [example, etl]
schedule: "0 2 * * *"
timezone: Asia/Seoul
start_date: 2026-01-01
catchup: false
default_args: {retries: 2, retry_delay: 30s, retry_exponential_backoff: true}
on_failure: [{notify: slack, connection: alerts}]
tasks:
  - id: extract
    type: http
    url: "file://data/names.csv"
    save_to:
      connection: warehouse
      table: raw.names
      format: csv
      mode: replace_partition
      partition: {ds: "{{ ds }}"}

  - id: transform
    type: sql
    connection: warehouse
    mode: replace_partition
    table: core.names
    partition: {ds: "{{ ds }}"}
    sql: sql/names.sql
    depends_on: [extract]

  - id: name_is_unique
    type: check
    connection: warehouse
    table: core.names
    where: "ds = '{{ ds }}'"
    unique: [name]
    not_null: [name, gender]
    depends_on: [transform]

  - id: enough_names
    type: check
    connection: warehouse
    sql: "select count(*) from core.names where ds = '{{ ds }}'"
    expect: "> 0"
    depends_on: [transform]
"#;

const NAMES_SQL: &str = r#"-- One row per name for the day: trimmed, gender as M/F, duplicates removed.
select distinct
    cast('{{ ds }}' as varchar(10)) as ds,
    trim(name) as name,
    case upper(trim(gender)) when 'M' then 'M' when 'MALE' then 'M' when 'F' then 'F' when 'FEMALE' then 'F' end as gender
from raw.names
where ds = '{{ ds }}' and trim(name) <> ''
"#;

const NAMES_CSV: &str =
    "name,gender\nMinji,F\n Jisoo ,female\nHyun,M\nSeojun,male\nMinji,F\nYuna,f\nDohyun,M\n";

const WEIRIGNORE: &str = "# Files in dags/ to skip, one glob per line.\ndrafts\n";

const GITIGNORE: &str = ".weir/\n";

pub async fn init(dir: &Path) -> Result<()> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    {
        bail!(
            "'{}' exists and is not empty\nhint: choose a new folder name",
            dir.display()
        );
    }
    let files: [(&str, &str); 9] = [
        ("weir.toml", WEIR_TOML),
        ("dags/example_daily.yaml", EXAMPLE_DAG),
        ("dags/names_etl.yaml", NAMES_ETL),
        ("sql/names.sql", NAMES_SQL),
        ("data/names.csv", NAMES_CSV),
        ("dags/.weirignore", WEIRIGNORE),
        ("scripts/summarise.py", SUMMARISE_PY),
        ("scripts/report.py", REPORT_PY),
        (".gitignore", GITIGNORE),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    // Secrets live in .weir/ (mode 700, files 600), never in the weir.toml users commit.
    let settings = crate::config::Settings::load(dir.to_path_buf())?;
    settings.fernet_key()?;
    settings.secret_key()?;
    let store = crate::engine::open_store(&settings).await?;
    let password = weir_api::auth::users::generate_password();
    weir_api::auth::users::create(
        &store,
        &weir_service::Actor::cli().user,
        "admin",
        &password,
        weir_api::Role::Admin,
    )
    .await?;
    store.close().await;
    println!("created project {}", dir.display());
    println!(
        "web UI and REST API login: admin / {password}   (shown once; weir users reset-password admin changes it)"
    );
    println!(
        "next: cd {} && weir dags test example_daily 2026-01-15   (or weir standalone)",
        dir.display()
    );
    Ok(())
}
