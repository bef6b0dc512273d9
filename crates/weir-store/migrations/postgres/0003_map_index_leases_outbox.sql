-- A task instance is (run, task, map_index), as in Airflow: -1 for an unmapped task.
ALTER TABLE task_instance ADD COLUMN map_index BIGINT NOT NULL DEFAULT -1;
ALTER TABLE task_instance DROP CONSTRAINT task_instance_run_pk_task_id_key;
ALTER TABLE task_instance ADD CONSTRAINT task_instance_run_task_map UNIQUE (run_pk, task_id, map_index);
CREATE INDEX task_instance_worker ON task_instance (worker, state);

ALTER TABLE xcom ADD COLUMN map_index BIGINT NOT NULL DEFAULT -1;
ALTER TABLE xcom DROP CONSTRAINT xcom_pkey;
ALTER TABLE xcom ADD PRIMARY KEY (run_pk, task_id, map_index, key);

-- Worker liveness is a lease: a try whose worker's lease ran out is a zombie.
CREATE TABLE worker (
    worker_id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL
);

-- Side effects of state changes, written in the same transaction as the change and
-- delivered at least once by whoever claims them.
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    dedup_key TEXT UNIQUE,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_until BIGINT,
    delivered_at BIGINT,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- One row per task instance that missed its sla: sent once, also across restarts.
CREATE TABLE sla_miss (
    run_pk BIGINT NOT NULL REFERENCES dag_run (id) ON DELETE CASCADE,
    task_id TEXT NOT NULL,
    map_index BIGINT NOT NULL DEFAULT -1,
    timestamp BIGINT NOT NULL,
    PRIMARY KEY (run_pk, task_id, map_index)
);
