-- weir metadata schema, SQLite flavour. Times are microseconds since the Unix epoch.
CREATE TABLE dag (
    dag_id TEXT PRIMARY KEY,
    fileloc TEXT NOT NULL,
    is_paused BIGINT NOT NULL DEFAULT 0,
    is_active BIGINT NOT NULL DEFAULT 1,
    schedule TEXT NOT NULL,
    timezone TEXT NOT NULL,
    owner TEXT,
    description TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    hash TEXT NOT NULL,
    dag_json TEXT NOT NULL,
    last_parsed BIGINT NOT NULL
);

CREATE TABLE import_error (
    filename TEXT PRIMARY KEY,
    message TEXT NOT NULL,
    timestamp BIGINT NOT NULL
);

CREATE TABLE dag_run (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dag_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    run_type TEXT NOT NULL,
    state TEXT NOT NULL,
    logical_date BIGINT NOT NULL,
    data_interval_start BIGINT NOT NULL,
    data_interval_end BIGINT NOT NULL,
    conf TEXT NOT NULL DEFAULT '{}',
    queued_at BIGINT NOT NULL,
    start_date BIGINT,
    end_date BIGINT,
    UNIQUE (dag_id, run_id),
    UNIQUE (dag_id, logical_date)
);
CREATE INDEX dag_run_state ON dag_run (state, dag_id);

CREATE TABLE task_instance (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_pk BIGINT NOT NULL REFERENCES dag_run (id) ON DELETE CASCADE,
    dag_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
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
    UNIQUE (run_pk, task_id)
);
CREATE INDEX task_instance_queue ON task_instance (state, queue, priority_weight);
CREATE INDEX task_instance_run ON task_instance (run_pk);

CREATE TABLE task_try (
    ti_id BIGINT NOT NULL REFERENCES task_instance (id) ON DELETE CASCADE,
    try_number BIGINT NOT NULL,
    worker TEXT NOT NULL,
    start_date BIGINT NOT NULL,
    end_date BIGINT,
    state TEXT NOT NULL,
    PRIMARY KEY (ti_id, try_number)
);

CREATE TABLE xcom (
    run_pk BIGINT NOT NULL REFERENCES dag_run (id) ON DELETE CASCADE,
    task_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_pk, task_id, key)
);

CREATE TABLE variable (
    key TEXT PRIMARY KEY,
    val TEXT NOT NULL,
    description TEXT,
    is_encrypted BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE pool (
    name TEXT PRIMARY KEY,
    slots BIGINT NOT NULL,
    description TEXT
);
INSERT INTO pool (name, slots, description) VALUES ('default_pool', 128, 'Default pool');

CREATE TABLE job (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_type TEXT NOT NULL,
    hostname TEXT NOT NULL,
    state TEXT NOT NULL,
    start_date BIGINT NOT NULL,
    latest_heartbeat BIGINT NOT NULL
);
