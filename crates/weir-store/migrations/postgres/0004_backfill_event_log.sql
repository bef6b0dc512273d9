-- A backfill is a record the scheduler runs (Airflow 3's model).
CREATE TABLE backfill (
    id BIGSERIAL PRIMARY KEY,
    dag_id TEXT NOT NULL,
    from_date BIGINT NOT NULL,
    to_date BIGINT NOT NULL,
    reprocess_behavior TEXT NOT NULL,
    dag_run_conf TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    completed_at BIGINT,
    created_by TEXT NOT NULL
);
ALTER TABLE dag_run ADD COLUMN backfill_id BIGINT REFERENCES backfill (id) ON DELETE SET NULL;

-- The audit log of use cases (Airflow's eventLogs): who did what, when.
CREATE TABLE event_log (
    id BIGSERIAL PRIMARY KEY,
    dttm BIGINT NOT NULL,
    event TEXT NOT NULL,
    owner TEXT NOT NULL,
    dag_id TEXT,
    run_id TEXT,
    task_id TEXT,
    extra TEXT
);
CREATE INDEX event_log_dttm ON event_log (dttm);

-- The scheduler looks for task instances that ended since its last look.
CREATE INDEX task_instance_ended ON task_instance (end_date);
