-- Sensors and triggered runs. `sensor` holds what a waiting sensor (or a `trigger_dag` that
-- waits for its run) checks, as JSON: its condition, interval, deadline and how many checks it
-- made; it stays while the instance waits (`deferred`, `up_for_reschedule`) and goes with a
-- clear. For a deferred instance `next_retry_at` is when the triggerer checks it next.
ALTER TABLE task_instance ADD COLUMN sensor TEXT;
CREATE INDEX task_instance_due ON task_instance (state, next_retry_at);
-- What a waiting sensor watches in the store (`task:DAG:TASK:DATE`, `run:DAG:RUN_ID`,
-- `run:DAG@DATE`), so that the end of the watched task or run brings its check forward.
ALTER TABLE task_instance ADD COLUMN sensor_key TEXT;
CREATE INDEX task_instance_sensor_key ON task_instance (sensor_key);
-- A scheduler's sweep reads the state of every instance of every running run every 2 s: an
-- index that holds (run, state) answers it without reading the rows, whose sensor records
-- make them wide (ten thousand deferred sensors).
CREATE INDEX task_instance_run_state ON task_instance (run_pk, state);
-- The task instance of a `trigger_dag` task that created this run, so both link to each other.
ALTER TABLE dag_run ADD COLUMN parent_ti_id BIGINT;
CREATE INDEX dag_run_parent ON dag_run (parent_ti_id);
-- The triggerer looks for runs that ended lately (a `trigger_dag` or a sensor waits for one).
CREATE INDEX dag_run_ended ON dag_run (end_date);
