//! `weir connections`: add, get, list, delete, import and export, in Airflow's shapes. Secrets
//! are masked unless asked for.

use crate::config::Settings;
use crate::engine::open_store;
use crate::output::{Format, Listing};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use weir_core::connection::Connection;
use weir_store::Store;

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// Add (or replace) a connection from a URI or from its fields, as `airflow connections add`.
    Add(AddArgs),
    /// Print one connection (secrets masked unless --show-secrets).
    Get {
        conn_id: String,
        #[arg(long)]
        show_secrets: bool,
    },
    /// List connections (secrets masked unless --show-secrets).
    List {
        #[arg(long)]
        show_secrets: bool,
    },
    /// Delete a connection.
    Delete { conn_id: String },
    /// Import connections from Airflow's JSON export (`{"id": {"conn_type": ...}}`); `-` reads stdin.
    Import { file: String },
    /// Export connections as Airflow's JSON; `-` (the default) writes stdout. Secrets are masked
    /// unless --include-secrets.
    Export {
        #[arg(default_value = "-")]
        file: String,
        #[arg(long)]
        include_secrets: bool,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    conn_id: String,
    /// postgres://user:pass@host:5432/db, duckdb:///path.duckdb, https://api.example.com, ...
    #[arg(long)]
    conn_uri: Option<String>,
    #[arg(long)]
    conn_type: Option<String>,
    #[arg(long)]
    conn_host: Option<String>,
    #[arg(long)]
    conn_login: Option<String>,
    #[arg(long)]
    conn_password: Option<String>,
    #[arg(long)]
    conn_schema: Option<String>,
    #[arg(long)]
    conn_port: Option<u16>,
    /// A JSON object.
    #[arg(long)]
    conn_extra: Option<String>,
    #[arg(long)]
    conn_description: Option<String>,
}

pub async fn connections(
    settings: &Settings,
    cmd: ConnectionsCommand,
    format: Format,
) -> Result<()> {
    let store = open_store(settings).await?;
    let result = run(&store, cmd, format).await;
    store.close().await;
    result
}

fn from_args(a: AddArgs) -> Result<Connection> {
    let mut conn = match (&a.conn_uri, &a.conn_type) {
        (Some(_), Some(_)) => bail!("give either --conn-uri or --conn-type with fields, not both"),
        (Some(uri), None) => Connection::from_uri(&a.conn_id, uri).map_err(anyhow::Error::msg)?,
        (None, Some(t)) => Connection {
            conn_id: a.conn_id.clone(),
            conn_type: t.clone(),
            ..Connection::default()
        },
        (None, None) => bail!(
            "connection '{}' needs --conn-uri URI or --conn-type TYPE\nhint: weir connections add warehouse --conn-uri postgres://user:pass@localhost:5432/analytics",
            a.conn_id
        ),
    };
    if a.conn_host.is_some() {
        conn.host = a.conn_host;
    }
    if a.conn_login.is_some() {
        conn.login = a.conn_login;
    }
    if a.conn_password.is_some() {
        conn.password = a.conn_password;
    }
    if a.conn_schema.is_some() {
        conn.schema = a.conn_schema;
    }
    if a.conn_port.is_some() {
        conn.port = a.conn_port;
    }
    if a.conn_description.is_some() {
        conn.description = a.conn_description;
    }
    if let Some(extra) = a.conn_extra {
        match serde_json::from_str::<Value>(&extra) {
            Ok(Value::Object(m)) => conn.extra.extend(m),
            _ => bail!("--conn-extra must be a JSON object, e.g. '{{\"sslmode\": \"disable\"}}'"),
        }
    }
    Ok(conn)
}

fn row(c: &Connection) -> Vec<Value> {
    vec![
        json!(c.conn_id),
        json!(c.conn_type),
        json!(c.host),
        json!(c.port),
        json!(c.schema),
        json!(c.login),
        json!(c.password),
        if c.extra.is_empty() {
            Value::Null
        } else {
            json!(Value::Object(c.extra.clone()).to_string())
        },
        json!(c.description),
    ]
}

const COLUMNS: &[&str] = &[
    "conn_id",
    "conn_type",
    "host",
    "port",
    "schema",
    "login",
    "password",
    "extra",
    "description",
];

async fn run(store: &Store, cmd: ConnectionsCommand, format: Format) -> Result<()> {
    match cmd {
        ConnectionsCommand::Add(args) => {
            let conn = from_args(args)?;
            store.set_connection(&conn).await?;
            eprintln!("connection '{}' ({}) saved", conn.conn_id, conn.conn_type);
            Ok(())
        }
        ConnectionsCommand::Get {
            conn_id,
            show_secrets,
        } => {
            let Some(conn) = store.resolve_connection(&conn_id).await? else {
                bail!(
                    "connection '{conn_id}' does not exist\nhint: weir connections list shows them; weir connections add {conn_id} --conn-uri URI adds it"
                );
            };
            let conn = if show_secrets { conn } else { conn.masked() };
            let mut listing = Listing::new(COLUMNS);
            listing.row(row(&conn));
            print!("{}", listing.render(format));
            Ok(())
        }
        ConnectionsCommand::List { show_secrets } => {
            let mut listing = Listing::new(COLUMNS);
            for conn in store.list_connections().await? {
                let conn = if show_secrets { conn } else { conn.masked() };
                listing.row(row(&conn));
            }
            print!("{}", listing.render(format));
            Ok(())
        }
        ConnectionsCommand::Delete { conn_id } => {
            if !store.delete_connection(&conn_id).await? {
                bail!("connection '{conn_id}' does not exist");
            }
            eprintln!("connection '{conn_id}' deleted");
            Ok(())
        }
        ConnectionsCommand::Import { file } => {
            let map = crate::cmd_misc::read_json_object(
                &file,
                "the format is airflow connections export's: {\"conn_id\": {\"conn_type\": \"postgres\", \"host\": ...}}",
            )?;
            let mut conns = Vec::new();
            for (id, value) in &map {
                conns.push(
                    Connection::from_airflow_json(id, value)
                        .map_err(|e| anyhow::anyhow!("{file}: {e}"))?,
                );
            }
            for conn in &conns {
                store.set_connection(conn).await?;
            }
            eprintln!("{} connections imported", conns.len());
            Ok(())
        }
        ConnectionsCommand::Export {
            file,
            include_secrets,
        } => {
            let mut out = Map::new();
            for conn in store.list_connections().await? {
                let conn = if include_secrets { conn } else { conn.masked() };
                out.insert(conn.conn_id.clone(), conn.to_airflow_json());
            }
            let text = serde_json::to_string_pretty(&Value::Object(out))? + "\n";
            crate::cmd_misc::write_output(&file, &text)
                .with_context(|| format!("cannot write {file}"))?;
            if file != "-" {
                eprintln!("connections exported to {file}");
            }
            Ok(())
        }
    }
}
