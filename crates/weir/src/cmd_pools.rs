//! `weir pools`: the pools that bound how many task instances of a kind run at once.

use crate::config::Settings;
use crate::engine::open_store;
use crate::output::{Format, Listing};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum PoolsCommand {
    /// Create a pool or change its size.
    Set {
        name: String,
        slots: i64,
        /// What the pool is for.
        #[arg(long)]
        description: Option<String>,
    },
    /// Print one pool's size.
    Get { name: String },
    /// List the pools with their sizes and the slots in use.
    List,
    /// Delete a pool (tasks that name it make their DAG an import error).
    Delete { name: String },
}

pub async fn pools(settings: &Settings, cmd: PoolsCommand, format: Format) -> Result<()> {
    let store = open_store(settings).await?;
    let result = async {
        match cmd {
            PoolsCommand::Set {
                name,
                slots,
                description,
            } => {
                if slots < 0 {
                    bail!("a pool's slots cannot be negative ({slots})\nhint: weir pools set {name} 4");
                }
                store.set_pool(&name, slots, description.as_deref()).await?;
                println!("pool {name}: {slots} slots");
            }
            PoolsCommand::Get { name } => {
                let slots = store
                    .pools()
                    .await?
                    .into_iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, s)| s)
                    .with_context(|| format!("pool '{name}' does not exist\nhint: weir pools list"))?;
                println!("{slots}");
            }
            PoolsCommand::List => {
                let used: std::collections::HashMap<String, i64> =
                    store.pool_usage().await?.into_iter().collect();
                let mut listing = Listing::new(&["pool", "slots", "used"]);
                for (name, slots) in store.pools().await? {
                    let in_use = used.get(&name).copied().unwrap_or(0);
                    listing.row(vec![json!(name), json!(slots), json!(in_use)]);
                }
                print!("{}", listing.render(format));
            }
            PoolsCommand::Delete { name } => {
                if name == "default_pool" {
                    bail!("default_pool cannot be deleted\nhint: resize it with weir pools set default_pool N");
                }
                if !store.delete_pool(&name).await? {
                    bail!("pool '{name}' does not exist\nhint: weir pools list");
                }
                println!("deleted pool {name}");
            }
        }
        Ok(())
    }
    .await;
    store.close().await;
    result
}
