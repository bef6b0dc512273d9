//! `weir variables`, `weir db`, `weir config`, `weir health`.

use crate::Failed;
use crate::config::Settings;
use crate::engine::{open_store, redact};
use crate::output::{Format, Listing};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::{Map, Value, json};
use weir_core::connection::is_secret_key;
use weir_store::{Store, VariableRow};

#[derive(Debug, Subcommand)]
pub enum VariablesCommand {
    /// Print a variable's value.
    Get {
        key: String,
        /// Print this instead of failing when the variable does not exist.
        #[arg(long)]
        default: Option<String>,
    },
    /// Create or update a variable.
    Set {
        key: String,
        value: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a variable.
    Delete { key: String },
    /// List variables (values of secret-looking keys masked unless --show-secrets).
    List {
        #[arg(long)]
        show_secrets: bool,
    },
    /// Import variables from a JSON file in Airflow's format (`{"key": value, ...}`); `-` reads stdin.
    Import { file: String },
    /// Export variables as JSON in Airflow's format; `-` (the default) writes stdout. Values of
    /// secret-looking keys are masked unless --include-secrets.
    Export {
        #[arg(default_value = "-")]
        file: String,
        #[arg(long)]
        include_secrets: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create or upgrade the metadata schema.
    Migrate,
    /// Check that the metadata database answers and its schema is current; exit 1 if not.
    Check,
    /// Delete finished runs (with their task instances, tries and XComs) older than N days.
    Clean {
        #[arg(long)]
        keep_days: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print one setting (`weir config get-value core parallelism`).
    GetValue { section: String, key: String },
}

pub async fn variables(settings: &Settings, cmd: VariablesCommand, format: Format) -> Result<()> {
    let store = open_store(settings).await?;
    let result = variables_on(&store, cmd, format).await;
    store.close().await;
    result
}

async fn variables_on(store: &Store, cmd: VariablesCommand, format: Format) -> Result<()> {
    match cmd {
        VariablesCommand::Get { key, default } => {
            match (store.get_variable(&key).await?, default) {
                (Some(v), _) => {
                    println!("{}", v.val);
                    Ok(())
                }
                (None, Some(d)) => {
                    println!("{d}");
                    Ok(())
                }
                (None, None) => {
                    bail!("variable '{key}' does not exist\nhint: weir variables list shows them")
                }
            }
        }
        VariablesCommand::Set {
            key,
            value,
            description,
        } => {
            store
                .set_variable(&VariableRow {
                    key: key.clone(),
                    val: value,
                    description,
                    is_encrypted: false,
                })
                .await?;
            eprintln!("variable '{key}' set");
            Ok(())
        }
        VariablesCommand::Delete { key } => {
            if !store.delete_variable(&key).await? {
                bail!("variable '{key}' does not exist");
            }
            eprintln!("variable '{key}' deleted");
            Ok(())
        }
        VariablesCommand::List { show_secrets } => {
            let mut listing = Listing::new(&["key", "val", "description"]);
            for v in store.list_variables().await? {
                let val = if !show_secrets && is_secret_key(&v.key) {
                    "***".to_string()
                } else {
                    v.val
                };
                listing.row(vec![json!(v.key), json!(val), json!(v.description)]);
            }
            print!("{}", listing.render(format));
            Ok(())
        }
        VariablesCommand::Import { file } => {
            let map = read_json_object(
                &file,
                "the format is {\"key\": \"value\", ...} as airflow variables export writes it",
            )?;
            let count = map.len();
            for (key, value) in map {
                store
                    .set_variable(&VariableRow {
                        key,
                        val: variable_text(value),
                        description: None,
                        is_encrypted: false,
                    })
                    .await?;
            }
            eprintln!("{count} variables imported");
            Ok(())
        }
        VariablesCommand::Export {
            file,
            include_secrets,
        } => {
            let mut out = Map::new();
            for mut v in store.list_variables().await? {
                if !include_secrets && is_secret_key(&v.key) {
                    v.val = "***".into();
                }
                // As Airflow: values that are JSON documents are exported as JSON.
                let value = serde_json::from_str::<Value>(&v.val)
                    .ok()
                    .filter(|j| j.is_object() || j.is_array())
                    .unwrap_or(Value::String(v.val));
                out.insert(v.key, value);
            }
            let text = serde_json::to_string_pretty(&Value::Object(out))? + "\n";
            write_output(&file, &text)?;
            if file != "-" {
                eprintln!("variables exported to {file}");
            }
            Ok(())
        }
    }
}

/// The text of `file`, or of stdin for `-`.
pub fn read_input(file: &str) -> Result<String> {
    if file == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read stdin")
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))
    }
}

/// A JSON object from `file` (or stdin for `-`), with file:line and `hint` when it is not one.
pub fn read_json_object(file: &str, hint: &str) -> Result<Map<String, Value>> {
    let text = read_input(file)?;
    let parsed: Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{file}:{}: not valid JSON: {e}\nhint: {hint}", e.line()))?;
    match parsed {
        Value::Object(map) => Ok(map),
        _ => bail!("{file}: expected a JSON object\nhint: {hint}"),
    }
}

/// Writes `text` to `file`, or to stdout for `-`.
pub fn write_output(file: &str, text: &str) -> Result<()> {
    if file == "-" {
        print!("{text}");
        Ok(())
    } else {
        std::fs::write(file, text).with_context(|| format!("cannot write {file}"))
    }
}

/// Airflow stores non-string values of an import as their JSON text.
fn variable_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

pub async fn db(settings: &Settings, cmd: DbCommand) -> Result<()> {
    let url = settings.database_url()?;
    match cmd {
        DbCommand::Migrate => {
            let store = Store::connect(&url)
                .await
                .with_context(|| format!("cannot connect to {}", redact(&url)))?;
            let pending = store.pending_migrations().await?;
            store.migrate().await?;
            println!(
                "metadata database {} is current ({} migrations applied)",
                redact(&url),
                pending.len()
            );
            store.close().await;
            Ok(())
        }
        DbCommand::Check => {
            let store = Store::connect(&url)
                .await
                .with_context(|| format!("cannot connect to {}", redact(&url)))?;
            store.ping().await?;
            let pending = store.pending_migrations().await?;
            store.close().await;
            if !pending.is_empty() {
                return Err(Failed(format!(
                    "metadata database {} needs {} migrations: run weir db migrate",
                    redact(&url),
                    pending.len()
                ))
                .into());
            }
            println!(
                "metadata database {} is reachable and current",
                redact(&url)
            );
            Ok(())
        }
        DbCommand::Clean { keep_days } => {
            let store = open_store(settings).await?;
            let before = weir_core::now_micros() - keep_days as i64 * 86_400_000_000;
            let deleted = store.clean_before(before).await?;
            store.close().await;
            println!("deleted {deleted} finished runs older than {keep_days} days");
            Ok(())
        }
    }
}

pub fn config(settings: &Settings, cmd: ConfigCommand) -> Result<()> {
    match cmd {
        ConfigCommand::GetValue { section, key } => match settings.get(&section, &key) {
            Some(toml::Value::String(s)) => {
                println!("{s}");
                Ok(())
            }
            Some(other) => {
                println!("{other}");
                Ok(())
            }
            None => bail!(
                "no setting [{section}] {key}\nhint: see weir.toml; every key is also settable as WEIR__{}__{}",
                section.to_uppercase(),
                key.to_uppercase()
            ),
        },
    }
}

/// Airflow's health document: the metadata database and the scheduler's heartbeat.
pub async fn health(settings: &Settings) -> Result<()> {
    let url = settings.database_url()?;
    let threshold = settings.seconds("scheduler", "heartbeat_s").as_micros() as i64 * 6;
    let (db_ok, heartbeat) = match Store::open(&url).await {
        Ok(store) => {
            let ok = store.ping().await.is_ok();
            let hb = store.latest_job_heartbeat("scheduler").await.ok().flatten();
            store.close().await;
            (ok, hb)
        }
        Err(_) => (false, None),
    };
    let scheduler_ok =
        heartbeat.is_some_and(|hb| weir_core::now_micros() - hb < threshold.max(30_000_000));
    let doc = json!({
        "metadatabase": {"status": if db_ok { "healthy" } else { "unhealthy" }},
        "scheduler": {
            "status": if scheduler_ok { "healthy" } else { "unhealthy" },
            "latest_scheduler_heartbeat": heartbeat.map(|h| weir_core::iso(weir_core::timestamp(h))),
        },
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    if !(db_ok && scheduler_ok) {
        return Err(Failed(String::new()).into());
    }
    Ok(())
}
