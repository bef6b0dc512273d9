//! `weir assets`: the assets DAGs produce and consume, and their events.

use crate::config::Settings;
use crate::engine::open_store;
use crate::output::{Format, Listing};
use anyhow::{Result, bail};
use clap::Subcommand;
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum AssetsCommand {
    /// List assets: the tasks that update each, the DAGs scheduled on it, its last event.
    List,
    /// List asset events, newest first, with the runs that consumed each.
    Events {
        /// Only this asset's events.
        name: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

fn iso(us: i64) -> String {
    weir_core::iso(weir_core::timestamp(us))
}

pub async fn assets(settings: &Settings, cmd: AssetsCommand, format: Format) -> Result<()> {
    let store = open_store(settings).await?;
    let result = async {
        match cmd {
            AssetsCommand::List => {
                let mut listing =
                    Listing::new(&["asset", "produced_by", "consumed_by", "events", "last_event"]);
                for a in store.assets().await? {
                    let producers: Vec<String> =
                        a.producers.iter().map(|(d, t)| format!("{d}.{t}")).collect();
                    listing.row(vec![
                        json!(a.name),
                        json!(producers.join(",")),
                        json!(a.consumers.join(",")),
                        json!(a.events),
                        json!(a.last_event.map(iso)),
                    ]);
                }
                print!("{}", listing.render(format));
            }
            AssetsCommand::Events { name, limit } => {
                if limit < 1 {
                    bail!("--limit must be at least 1, not {limit}\nhint: weir assets events --limit 20");
                }
                let mut listing = Listing::new(&[
                    "id",
                    "asset",
                    "source_dag_id",
                    "source_run_id",
                    "source_task_id",
                    "timestamp",
                    "consumed_by",
                ]);
                for (e, runs) in store.asset_events(name.as_deref(), limit).await? {
                    let consumed: Vec<String> =
                        runs.iter().map(|(d, r)| format!("{d}/{r}")).collect();
                    listing.row(vec![
                        json!(e.id),
                        json!(e.asset),
                        json!(e.source_dag_id),
                        json!(e.source_run_id),
                        json!(e.source_task_id),
                        json!(iso(e.timestamp)),
                        json!(consumed.join(",")),
                    ]);
                }
                print!("{}", listing.render(format));
            }
        }
        Ok(())
    }
    .await;
    store.close().await;
    result
}
