//! The declarations of every key a DAG file may use: DAG keys, keys every task has, and each
//! task type's own keys. Validation and the DAG reference both read these tables.

/// One key: its name, whether it is required, and what it does.
#[derive(Debug, Clone, Copy)]
pub struct KeyDoc {
    pub name: &'static str,
    pub required: bool,
    pub doc: &'static str,
}

/// A task type and its own keys. `one_of` lists key groups of which exactly one must be set.
#[derive(Debug, Clone, Copy)]
pub struct TaskTypeDoc {
    pub name: &'static str,
    pub doc: &'static str,
    pub keys: &'static [KeyDoc],
    pub one_of: &'static [&'static str],
}

const fn key(name: &'static str, doc: &'static str) -> KeyDoc {
    KeyDoc {
        name,
        required: false,
        doc,
    }
}

const fn required(name: &'static str, doc: &'static str) -> KeyDoc {
    KeyDoc {
        name,
        required: true,
        doc,
    }
}

pub static DAG_KEYS: &[KeyDoc] = &[
    key(
        "dag_id",
        "the DAG's id; defaults to the file name without .yaml",
    ),
    key("description", "one line shown in listings"),
    key("owner", "who to ask"),
    key("tags", "labels for filtering"),
    key(
        "schedule",
        "cron (\"0 3 * * *\"), a preset (@daily), \"every 15m\", @once, or null for manual runs only",
    ),
    key(
        "timezone",
        "IANA time zone of the schedule and of dates without an offset (default UTC)",
    ),
    key(
        "start_date",
        "first data interval starts here: 2026-01-01, 2026-01-01T03:00, or with an offset",
    ),
    key("end_date", "no scheduled run starts after this"),
    key(
        "catchup",
        "create a run for every missed interval since start_date (default false)",
    ),
    key(
        "max_active_runs",
        "runs of this DAG running at once (default 16)",
    ),
    key(
        "max_active_tasks",
        "task instances of this DAG running at once (default 16)",
    ),
    key("params", "default parameters; a run's conf overrides them"),
    key(
        "default_args",
        "values for any task key, applied to every task",
    ),
    key("on_failure", "notifications when a run fails"),
    key("on_success", "notifications when a run succeeds"),
    key("on_retry", "notifications when a task is retried"),
    key("sla_miss", "notifications when a task misses its sla"),
    key("doc", "documentation shown in the UI"),
    key(
        "is_paused_upon_creation",
        "start paused when the DAG first appears",
    ),
    required("tasks", "the list of tasks"),
];

pub static COMMON_TASK_KEYS: &[KeyDoc] = &[
    required("id", "the task's id, unique in the DAG"),
    required("type", "the task type: shell, python, sql, ..."),
    key("depends_on", "ids of upstream tasks (a string or a list)"),
    key(
        "trigger_rule",
        "when to run given upstream states (default all_success)",
    ),
    key(
        "depends_on_past",
        "wait for this task's success in the previous run",
    ),
    key("retries", "tries after the first failure (default 0)"),
    key("retry_delay", "wait before a retry (default 5m)"),
    key(
        "retry_exponential_backoff",
        "double the delay after each retry",
    ),
    key("max_retry_delay", "cap for the backoff delay"),
    key(
        "execution_timeout",
        "kill the task's process group after this long",
    ),
    key(
        "pool",
        "the pool whose slots bound concurrency (default default_pool)",
    ),
    key("pool_slots", "slots this task takes (default 1)"),
    key(
        "priority_weight",
        "higher runs first when slots are short (default 1)",
    ),
    key(
        "queue",
        "workers of this queue run the task (default default)",
    ),
    key("params", "parameters for this task, over the DAG's"),
    key("env", "environment variables (templated)"),
    key("on_failure", "notifications when this task fails"),
    key("on_retry", "notifications when this task is retried"),
    key("on_success", "notifications when this task succeeds"),
    key("sla", "expected duration from the run's start"),
    key("doc", "documentation shown in the UI"),
    key("group", "task group for display"),
    key("map_over", "run one instance per item of a list"),
    key("outlets", "datasets this task updates"),
];

pub static TASK_TYPES: &[TaskTypeDoc] = &[
    TaskTypeDoc {
        name: "shell",
        doc: "runs bash in its own process group; exit 99 marks the task skipped",
        keys: &[
            key("command", "inline bash (templated)"),
            key(
                "script",
                "a script file relative to the project (templated)",
            ),
            key("cwd", "working directory relative to the project"),
            key(
                "xcom",
                "last_line: the last stdout line becomes the XCom value",
            ),
        ],
        one_of: &["command", "script"],
    },
    TaskTypeDoc {
        name: "python",
        doc: "runs a Python file or calls module:function in a subprocess; a callable's JSON return value is its XCom",
        keys: &[
            key("script", "a Python file relative to the project"),
            key(
                "callable",
                "module:function, imported from scripts/ or the project",
            ),
            key("args", "positional arguments (templated)"),
            key("kwargs", "keyword arguments for the callable (templated)"),
            key("interpreter", "the Python to use (default python3)"),
            key(
                "xcom",
                "last_line: the last stdout line becomes the XCom value",
            ),
        ],
        one_of: &["script", "callable"],
    },
    TaskTypeDoc {
        name: "sql",
        doc: "statements in one transaction against a connection",
        keys: &[
            required("connection", "connection id"),
            required("sql", "inline SQL or a .sql path (templated)"),
            key(
                "mode",
                "run | full_refresh | incremental | replace_partition",
            ),
            key("table", "target table for the modes that build one"),
            key("unique_key", "merge key for incremental"),
            key("partition", "column: value pairs for replace_partition"),
            key("xcom", "rows | first_row"),
        ],
        one_of: &[],
    },
    TaskTypeDoc {
        name: "check",
        doc: "fails (or warns) when data does not meet an expectation",
        keys: &[
            required("connection", "connection id"),
            key("sql", "a query whose result is compared with expect"),
            key("expect", "> 0, == 0, between 1 and 10, or a value"),
            key("table", "table for the built-in checks"),
            key("where", "a filter for the built-in checks (templated)"),
            key("unique", "columns that must be unique"),
            key("not_null", "columns that must not be null"),
            key("row_count", "{min, max}"),
            key("freshness", "{column, max_age}"),
            key("severity", "error | warn"),
        ],
        one_of: &["sql", "table"],
    },
    TaskTypeDoc {
        name: "http",
        doc: "one HTTP request, retried on 5xx; the response can go to XCom or a table",
        keys: &[
            required("url", "the URL (templated)"),
            key("method", "GET by default"),
            key("connection", "connection with base URL and auth"),
            key("headers", "request headers"),
            key("query", "query parameters"),
            key("json", "a JSON body"),
            key("body", "a raw body"),
            key("timeout", "per-attempt timeout (default 60s)"),
            key(
                "request_retries",
                "attempts after the first on 5xx, 429 or connection errors (default 3)",
            ),
            key(
                "retry_backoff",
                "wait before the first re-attempt, doubling (default 1s)",
            ),
            key(
                "json_path",
                "dotted path to the array of rows in a JSON response",
            ),
            key("expect_status", "accepted status codes"),
            key(
                "save_to",
                "{connection, table, format: json|csv, mode: replace|append|replace_partition, partition}",
            ),
            key("xcom", "json | text"),
        ],
        one_of: &[],
    },
    TaskTypeDoc {
        name: "models",
        doc: "runs the dbt-compatible models engine",
        keys: &[
            key("project_dir", "dbt project folder (default models/)"),
            key("command", "build | run | test | seed | snapshot"),
            key("select", "dbt selection"),
            key("exclude", "dbt exclusion"),
            key("vars", "dbt vars"),
            key("full_refresh", "rebuild incremental models"),
            key("target", "profile target"),
            key("expand", "one task per model"),
        ],
        one_of: &[],
    },
    TaskTypeDoc {
        name: "trigger_dag",
        doc: "starts a run of another DAG",
        keys: &[
            required("dag_id", "the DAG to trigger"),
            key("conf", "the run's conf"),
            key("logical_date", "the run's logical date"),
            key("wait_for_completion", "wait for the run to finish"),
            key("poke_interval", "how often to check while waiting"),
            key("allowed_states", "run states that count as success"),
            key("failed_states", "run states that count as failure"),
            key("reset_dag_run", "clear an existing run"),
            key("skip_when_already_exists", "skip when the run exists"),
        ],
        one_of: &[],
    },
    TaskTypeDoc {
        name: "wait_for",
        doc: "a sensor: waits for a DAG/task, a file, a SQL condition, a time or an HTTP check",
        keys: &[
            key("dag_id", "wait for this DAG's run"),
            key("task_id", "wait for this task of it"),
            key("execution_delta", "look at the run this long before"),
            key("logical_date", "look at the run of this date"),
            key("file", "wait for this file"),
            key("sql", "wait until this query returns a truthy row"),
            key("connection", "connection for sql"),
            key("time", "wait until this time"),
            key("http", "wait until this URL answers"),
            key("mode", "poke | reschedule"),
            key("poke_interval", "how often to check"),
            key("timeout", "give up after this long"),
            key("soft_fail", "skip instead of failing on timeout"),
            key("allowed_states", "states that count as done"),
            key("failed_states", "states that count as failed"),
        ],
        one_of: &["dag_id", "file", "sql", "time", "http"],
    },
    TaskTypeDoc {
        name: "branch",
        doc: "follows the chosen downstream tasks and skips the rest",
        keys: &[
            key("choose", "renders to a task id or a list"),
            key("script", "prints task ids"),
        ],
        one_of: &["choose", "script"],
    },
    TaskTypeDoc {
        name: "short_circuit",
        doc: "skips downstream tasks when its condition is false",
        keys: &[
            key("condition", "renders truthy or falsy"),
            key("script", "exit 0 means go on"),
            key(
                "ignore_downstream_trigger_rules",
                "skip all downstream (default true)",
            ),
        ],
        one_of: &["condition", "script"],
    },
    TaskTypeDoc {
        name: "notify",
        doc: "sends a message",
        keys: &[
            required("channel", "webhook | slack | email"),
            required("connection", "connection id"),
            key("to", "recipients"),
            key("subject", "subject line"),
            key("message", "the message (templated)"),
        ],
        one_of: &[],
    },
    TaskTypeDoc {
        name: "empty",
        doc: "does nothing; a join point",
        keys: &[],
        one_of: &[],
    },
    TaskTypeDoc {
        name: "kubernetes_pod",
        doc: "runs a pod through the Kubernetes API",
        keys: &[
            required("image", "container image"),
            key("cmds", "entrypoint"),
            key("arguments", "arguments"),
            key("namespace", "namespace"),
            key("resources", "requests and limits"),
            key("connection", "cluster connection"),
        ],
        one_of: &[],
    },
];

/// Names users bring from Airflow, and what weir calls them.
pub static AIRFLOW_NAMES: &[(&str, &str)] = &[
    ("schedule_interval", "schedule"),
    ("task_id", "id"),
    ("operator", "type"),
    ("upstream", "depends_on"),
    ("dependencies", "depends_on"),
    ("bash_command", "command"),
    ("python_callable", "callable"),
    ("timeout", "execution_timeout"),
    ("tz", "timezone"),
    ("max_active_tasks_per_dag", "max_active_tasks"),
    ("op_args", "args"),
    ("op_kwargs", "kwargs"),
];
