-- Connections as Airflow keeps them. `password` and `extra` are Fernet tokens when
-- is_encrypted = 1 (always, when the store has a key).
CREATE TABLE connection (
    conn_id TEXT PRIMARY KEY,
    conn_type TEXT NOT NULL,
    description TEXT,
    host TEXT,
    schema_name TEXT,
    login TEXT,
    password TEXT,
    port BIGINT,
    extra TEXT,
    is_encrypted BIGINT NOT NULL DEFAULT 0
);
