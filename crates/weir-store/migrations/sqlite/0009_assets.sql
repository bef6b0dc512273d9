-- Assets (data-aware scheduling). Which tasks update which assets and which DAGs are scheduled
-- on them, as last parsed (kind 'producer' with the task, 'consumer' with task_id '').
CREATE TABLE asset_ref (
    dag_id TEXT NOT NULL,
    asset TEXT NOT NULL,
    kind TEXT NOT NULL,
    task_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (dag_id, asset, kind, task_id)
);
CREATE INDEX asset_ref_asset ON asset_ref (asset, kind);

-- One update of an asset, recorded in the transaction of the producing task's success.
CREATE TABLE asset_event (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    asset TEXT NOT NULL,
    source_dag_id TEXT,
    source_run_id TEXT,
    source_task_id TEXT,
    source_map_index BIGINT NOT NULL DEFAULT -1,
    timestamp BIGINT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX asset_event_asset ON asset_event (asset, id);

-- Events waiting for a consumer DAG's next asset-triggered run (Airflow's asset_dag_run_queue);
-- the run that consumes them deletes them in the transaction that creates it.
CREATE TABLE asset_queue (
    dag_id TEXT NOT NULL,
    event_id BIGINT NOT NULL REFERENCES asset_event (id) ON DELETE CASCADE,
    asset TEXT NOT NULL,
    PRIMARY KEY (dag_id, event_id)
);

-- The events each asset-triggered run consumed.
CREATE TABLE dag_run_asset_event (
    run_pk BIGINT NOT NULL REFERENCES dag_run (id) ON DELETE CASCADE,
    event_id BIGINT NOT NULL REFERENCES asset_event (id) ON DELETE CASCADE,
    PRIMARY KEY (run_pk, event_id)
);
CREATE INDEX dag_run_asset_event_event ON dag_run_asset_event (event_id);
