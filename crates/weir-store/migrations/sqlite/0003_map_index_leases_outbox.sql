-- A task instance is (run, task, map_index), as in Airflow: -1 for an unmapped task, 0..n-1
-- for the items of a mapped one. SQLite cannot change a table's UNIQUE constraint in place,
-- so task_instance is rebuilt; task_try (its only child) is set aside first, because dropping
-- a parent table with foreign keys on deletes its children's rows (ON DELETE CASCADE).
CREATE TABLE task_try_keep AS SELECT * FROM task_try;
DROP TABLE task_try;

CREATE TABLE task_instance_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_pk BIGINT NOT NULL REFERENCES dag_run (id) ON DELETE CASCADE,
    dag_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    map_index BIGINT NOT NULL DEFAULT -1,
    state TEXT NOT NULL,
    try_number BIGINT NOT NULL DEFAULT 0,
    max_tries BIGINT NOT NULL DEFAULT 0,
    pool TEXT NOT NULL,
    pool_slots BIGINT NOT NULL DEFAULT 1,
    priority_weight BIGINT NOT NULL DEFAULT 1,
    queue TEXT NOT NULL,
    worker TEXT,
    pid BIGINT,
    queued_at BIGINT,
    start_date BIGINT,
    end_date BIGINT,
    heartbeat BIGINT,
    next_retry_at BIGINT,
    UNIQUE (run_pk, task_id, map_index)
);
INSERT INTO task_instance_new (id, run_pk, dag_id, run_id, task_id, state, try_number, max_tries,
    pool, pool_slots, priority_weight, queue, worker, pid, queued_at, start_date, end_date,
    heartbeat, next_retry_at)
SELECT id, run_pk, dag_id, run_id, task_id, state, try_number, max_tries, pool, pool_slots,
    priority_weight, queue, worker, pid, queued_at, start_date, end_date, heartbeat, next_retry_at
FROM task_instance;
DROP TABLE task_instance;
ALTER TABLE task_instance_new RENAME TO task_instance;
CREATE INDEX task_instance_queue ON task_instance (state, queue, priority_weight);
CREATE INDEX task_instance_run ON task_instance (run_pk);
CREATE INDEX task_instance_worker ON task_instance (worker, state);

CREATE TABLE task_try (
    ti_id BIGINT NOT NULL REFERENCES task_instance (id) ON DELETE CASCADE,
    try_number BIGINT NOT NULL,
    worker TEXT NOT NULL,
    start_date BIGINT NOT NULL,
    end_date BIGINT,
    state TEXT NOT NULL,
    PRIMARY KEY (ti_id, try_number)
);
INSERT INTO task_try SELECT ti_id, try_number, worker, start_date, end_date, state FROM task_try_keep;
DROP TABLE task_try_keep;

CREATE TABLE xcom_new (
    run_pk BIGINT NOT NULL REFERENCES dag_run (id) ON DELETE CASCADE,
    task_id TEXT NOT NULL,
    map_index BIGINT NOT NULL DEFAULT -1,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_pk, task_id, map_index, key)
);
INSERT INTO xcom_new (run_pk, task_id, key, value) SELECT run_pk, task_id, key, value FROM xcom;
DROP TABLE xcom;
ALTER TABLE xcom_new RENAME TO xcom;

-- Worker liveness is a lease: a worker extends lease_until while it lives; a try whose
-- worker's lease ran out is a zombie, whatever host it ran on.
CREATE TABLE worker (
    worker_id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL
);

-- Side effects of state changes (notifications today), written in the same transaction as
-- the change and delivered at least once by whoever claims them.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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

-- One row per task instance that missed its sla: the notification is sent once, also
-- across restarts.
CREATE TABLE sla_miss (
    run_pk BIGINT NOT NULL REFERENCES dag_run (id) ON DELETE CASCADE,
    task_id TEXT NOT NULL,
    map_index BIGINT NOT NULL DEFAULT -1,
    timestamp BIGINT NOT NULL,
    PRIMARY KEY (run_pk, task_id, map_index)
);
