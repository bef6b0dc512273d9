//! What a try reads: its template context, the connections and variables it may use (and
//! the secrets among them, for the log's masker), and the runtime native tasks run against.

use super::*;

impl Worker {
    pub(crate) async fn template_context(
        &self,
        dag: &Dag,
        task: &weir_core::Task,
        run: &RunRow,
        ti: &ClaimedTi,
        secrets: &Secrets,
    ) -> Result<TemplateContext, String> {
        // A run without XCom when the try was claimed has none for this try to pull: its
        // upstream tasks, which write them, had all ended by then (a pull from a task that
        // is not upstream races with that task, in Airflow too).
        let rows = if ti.run_has_xcom {
            self.store
                .xcom_texts(run.id)
                .await
                .map_err(|e| e.to_string())?
        } else {
            Vec::new()
        };
        let xcoms = weir_template::pulled_xcoms(rows);
        let mut ctx = template_context(
            dag,
            task,
            run,
            ti.try_number as u32,
            secrets.variables.clone(),
            xcoms,
        );
        ctx.map_index = ti.map_index;
        ctx.item = ti.map_item.clone();
        if run.run_type == weir_core::RunType::AssetTriggered {
            let events = self
                .store
                .run_asset_events(run.id)
                .await
                .map_err(|e| e.to_string())?;
            ctx.triggering_asset_events = triggering_asset_events(&events);
        }
        ctx.connections = secrets
            .connections
            .iter()
            .map(|c| (c.conn_id.clone(), c.template_value()))
            .collect();
        Ok(ctx)
    }

    /// Every connection a task may use and every variable, read at most once per
    /// [`SECRETS_TTL`] for all the tries that start meanwhile (a fan-out of 1000 tries is not
    /// 2000 reads); a failed read is not kept.
    pub(crate) async fn secrets(&self) -> Arc<Secrets> {
        let cached = || {
            self.secrets_cache
                .lock()
                .ok()
                .and_then(|c| c.clone())
                .filter(|(at, _)| at.elapsed() < SECRETS_TTL)
                .map(|(_, secrets)| secrets)
        };
        if let Some(secrets) = cached() {
            return secrets;
        }
        // One read for the tries that start together: the others wait for it.
        let _reading = self.secrets_read.lock().await;
        if let Some(secrets) = cached() {
            return secrets;
        }
        let fresh = Arc::new(self.read_secrets().await);
        if fresh.error.is_none()
            && let Ok(mut cache) = self.secrets_cache.lock()
        {
            *cache = Some((Instant::now(), fresh.clone()));
        }
        fresh
    }

    /// The metadata database's connections, then the environment's `WEIR_CONN_<ID>`, which
    /// win, then the default DuckDB warehouse when none is defined; and every variable.
    pub(crate) async fn read_secrets(&self) -> Secrets {
        let mut out = Secrets::default();
        let mut all: BTreeMap<String, Connection> = BTreeMap::new();
        match self.store.list_connections().await {
            Ok(conns) => all.extend(conns.into_iter().map(|c| (c.conn_id.clone(), c))),
            Err(e) => out.error = Some(format!("cannot read connections: {e}")),
        }
        for (name, _) in std::env::vars() {
            if let Some(id) = name.strip_prefix("WEIR_CONN_") {
                let id = id.to_ascii_lowercase();
                match weir_store::env_connection(&id) {
                    Ok(Some(c)) => {
                        all.insert(id, c);
                    }
                    Ok(None) => {}
                    Err(e) => out.error = Some(e.to_string()),
                }
            }
        }
        all.entry(DEFAULT_WAREHOUSE.to_string())
            .or_insert_with(default_warehouse);
        out.connections = all.into_values().collect();
        match self.store.list_variables().await {
            Ok(vars) => out.variables = vars.into_iter().map(|v| (v.key, v.val)).collect(),
            Err(e) => out.error = Some(format!("cannot read variables: {e}")),
        }
        out.masker = Arc::new(out.mask());
        out
    }
}

/// What one try may read and must never print: connections and variables.
#[derive(Default)]
pub(crate) struct Secrets {
    pub(crate) connections: Vec<Connection>,
    pub(crate) variables: BTreeMap<String, String>,
    /// Why they could not all be read; the try fails with it (its log still masks what was read).
    pub(crate) error: Option<String>,
    /// Masks every secret above in log lines.
    pub(crate) masker: Arc<Masker>,
}

/// How long tries share one read of connections and variables.
const SECRETS_TTL: Duration = Duration::from_secs(1);

impl Secrets {
    /// Every connection secret and every secret-looking variable.
    fn mask(&self) -> Masker {
        let conns = self.connections.iter().flat_map(Connection::secrets);
        let vars = self
            .variables
            .iter()
            .filter(|(k, _)| is_secret_key(k))
            .map(|(_, v)| v.clone());
        Masker::new(conns.chain(vars))
    }
}

/// The connection id `sql` and `check` tasks use when a project defines no `warehouse`.
pub const DEFAULT_WAREHOUSE: &str = "warehouse";

/// DuckDB in `.weir/warehouse.duckdb`: the warehouse of a project that configured none.
pub fn default_warehouse() -> Connection {
    Connection {
        conn_id: DEFAULT_WAREHOUSE.into(),
        conn_type: "duckdb".into(),
        host: Some(".weir/warehouse.duckdb".into()),
        description: Some("the default DuckDB warehouse".into()),
        ..Connection::default()
    }
}

/// What a native task sees of the worker.
pub(crate) struct NativeRuntime<'a> {
    pub(crate) worker: &'a Worker,
    pub(crate) log: &'a TaskLog,
}

impl weir_ops::Runtime for NativeRuntime<'_> {
    fn log(&self, line: &str) {
        self.log.line("INFO", line);
    }

    fn connection<'a>(
        &'a self,
        conn_id: &'a str,
    ) -> weir_ops::BoxFuture<'a, Result<Connection, String>> {
        Box::pin(wait::resolve_connection(&self.worker.store, conn_id))
    }

    fn project_dir(&self) -> &Path {
        &self.worker.config.project_dir
    }
}

/// `triggering_asset_events` as Airflow's templates see it: asset name -> its events.
pub fn triggering_asset_events(
    events: &[weir_store::AssetEventRow],
) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for e in events {
        let entry = out
            .entry(e.asset.clone())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(list) = entry {
            list.push(serde_json::json!({
                "asset": e.asset,
                "source_dag_id": e.source_dag_id,
                "source_run_id": e.source_run_id,
                "source_task_id": e.source_task_id,
                "source_map_index": e.source_map_index,
                "timestamp": weir_core::iso(timestamp(e.timestamp)),
                "extra": e.extra,
            }));
        }
    }
    out
}

/// The template context of one try of `task` in `run`: what `{{ ds }}` and friends see.
pub fn template_context(
    dag: &Dag,
    task: &weir_core::Task,
    run: &RunRow,
    try_number: u32,
    variables: BTreeMap<String, String>,
    xcoms: weir_template::Xcoms,
) -> TemplateContext {
    weir_template::task_context(dag, task, run_facts(run), try_number, variables, xcoms)
}

/// What a template context needs of a stored run.
pub(crate) fn run_facts(run: &RunRow) -> weir_template::RunFacts<'_> {
    weir_template::RunFacts {
        run_id: &run.run_id,
        logical_date: run.logical_date,
        data_interval_start: run.data_interval_start,
        data_interval_end: run.data_interval_end,
        conf: &run.conf,
    }
}
