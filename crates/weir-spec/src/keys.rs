//! The declarations of every key a DAG file may use: DAG keys, keys every task has, and each
//! task type's own keys, each with its type. Validation, the operators (through the enums in
//! [`crate::values`]), the JSON Schema and the DAG reference all read these tables.

use crate::values::{
    Channel, HttpMethod, HttpXcom, LineXcom, ModelsCommand, SaveFormat, SaveMode, SensorMode,
    Severity, SqlMode, SqlXcom, TRIGGER_RULES,
};

/// What a key's value must be.
#[derive(Debug, Clone, Copy)]
pub enum Type {
    /// A string used as written.
    Str,
    /// A string rendered as a Jinja template when the task runs.
    Template,
    Bool,
    /// A whole number.
    Int,
    /// A whole number of at least this.
    Count(i64),
    Number,
    /// `30s`, `5m`, `1h30m`, `2d`, or a number of seconds.
    Duration,
    /// One of these names (any case when `ignore_case`).
    Enum {
        names: &'static [&'static str],
        ignore_case: bool,
    },
    List(&'static Type),
    /// A mapping of any names to values of this type.
    Map(&'static Type),
    /// A mapping with these keys only.
    Object(&'static [KeyDoc]),
    /// Any of these types.
    OneOf(&'static [Type]),
    Null,
    Any,
}

impl Type {
    /// As the reference and error messages say it: `a string`, `a list of strings`, ...
    pub fn describe(&self) -> String {
        match self {
            Type::Str => "a string".into(),
            Type::Template => "a string (template)".into(),
            Type::Bool => "true or false".into(),
            Type::Int => "a whole number".into(),
            Type::Count(min) => format!("a whole number >= {min}"),
            Type::Number => "a number".into(),
            Type::Duration => "a duration (30s, 5m, 1h30m, 2d, or seconds)".into(),
            Type::Enum { names, .. } => format!("one of {}", names.join(", ")),
            Type::List(Type::Str) | Type::List(Type::Template) => "a list of strings".into(),
            Type::List(Type::Int) => "a list of whole numbers".into(),
            Type::List(Type::Object(_)) => "a list of mappings".into(),
            Type::List(_) => "a list".into(),
            Type::Map(_) | Type::Object(_) => "a mapping".into(),
            Type::OneOf(types) => types
                .iter()
                .map(Type::describe)
                .collect::<Vec<_>>()
                .join(" or "),
            Type::Null => "null".into(),
            Type::Any => "any value".into(),
        }
    }
}

const fn one_of(names: &'static [&'static str]) -> Type {
    Type::Enum {
        names,
        ignore_case: false,
    }
}

/// A string, or a list of them (`depends_on: a` or `depends_on: [a, b]`).
pub const STRINGS: Type = Type::OneOf(&[Type::Str, Type::List(&Type::Str)]);

/// One key: its name, its type, whether it is required, and what it does.
#[derive(Debug, Clone, Copy)]
pub struct KeyDoc {
    pub name: &'static str,
    pub ty: Type,
    pub required: bool,
    pub doc: &'static str,
}

/// A task type and its own keys. `one_of` lists keys of which at least one must be set;
/// with `only_one`, exactly one.
#[derive(Debug, Clone, Copy)]
pub struct TaskTypeDoc {
    pub name: &'static str,
    pub doc: &'static str,
    pub keys: &'static [KeyDoc],
    pub one_of: &'static [&'static str],
    pub only_one: bool,
    /// A task of this type, as it appears under `tasks:`.
    pub example: &'static str,
}

impl TaskTypeDoc {
    pub fn key(&self, name: &str) -> Option<&'static KeyDoc> {
        self.keys.iter().find(|k| k.name == name)
    }
}

/// The task type named `name`.
pub fn task_type(name: &str) -> Option<&'static TaskTypeDoc> {
    TASK_TYPES.iter().find(|t| t.name == name)
}

const fn key(name: &'static str, ty: Type, doc: &'static str) -> KeyDoc {
    KeyDoc {
        name,
        ty,
        required: false,
        doc,
    }
}

const fn required(name: &'static str, ty: Type, doc: &'static str) -> KeyDoc {
    KeyDoc {
        name,
        ty,
        required: true,
        doc,
    }
}

/// One notification: `{notify: slack, connection: alerts, to, subject, message}`.
pub static NOTIFICATION_KEYS: &[KeyDoc] = &[
    key(
        "notify",
        one_of(Channel::NAMES),
        "where it goes (required; `channel` is the same key)",
    ),
    key("channel", one_of(Channel::NAMES), "the same as notify"),
    required("connection", Type::Str, "the connection to send through"),
    key("to", STRINGS, "email recipients"),
    key("subject", Type::Template, "email subject"),
    key("message", Type::Template, "the message"),
];

/// `on_failure`, `on_success`, ...: one notification or a list of them.
pub const NOTIFICATIONS: Type = Type::OneOf(&[
    Type::Object(NOTIFICATION_KEYS),
    Type::List(&Type::Object(NOTIFICATION_KEYS)),
]);

/// `schedule: {assets: ...}`.
pub static ASSET_SCHEDULE_KEYS: &[KeyDoc] = &[required(
    "assets",
    Type::Any,
    "the assets whose updates start a run: a list (all of them), {any: [...]} or {all: [...]}, nested as needed; events queued since the last asset-triggered run count",
)];

pub static DAG_KEYS: &[KeyDoc] = &[
    key(
        "dag_id",
        Type::Str,
        "the DAG's id; defaults to the file name without .yaml",
    ),
    key("description", Type::Str, "one line shown in listings"),
    key("owner", Type::Str, "who to ask"),
    key("tags", STRINGS, "labels for filtering"),
    key(
        "schedule",
        Type::OneOf(&[Type::Str, Type::Null, Type::Object(ASSET_SCHEDULE_KEYS)]),
        "cron (\"0 3 * * *\"), a preset (@daily), \"every 15m\", @once, null for manual runs only, or {assets: [a, b]} to run when assets are updated",
    ),
    key(
        "timezone",
        Type::Str,
        "IANA time zone of the schedule and of dates without an offset (default UTC)",
    ),
    key(
        "start_date",
        Type::Str,
        "first data interval starts here: 2026-01-01, 2026-01-01T03:00, or with an offset",
    ),
    key("end_date", Type::Str, "no scheduled run starts after this"),
    key(
        "catchup",
        Type::Bool,
        "create a run for every missed interval since start_date (default false)",
    ),
    key(
        "max_active_runs",
        Type::Count(1),
        "runs of this DAG running at once (default 16)",
    ),
    key(
        "max_active_tasks",
        Type::Count(1),
        "task instances of this DAG running at once (default 16)",
    ),
    key(
        "params",
        Type::Map(&Type::Any),
        "default parameters; a run's conf overrides them",
    ),
    key(
        "default_args",
        Type::Object(DEFAULT_ARGS),
        "values for any task key but id and type, applied to every task",
    ),
    key(
        "groups",
        Type::Map(&Type::Object(GROUP_KEYS)),
        "task groups by name: `default_args` for the group's tasks (over the DAG's) and `depends_on` (task ids or group:NAME) for its tasks with no upstream inside the group",
    ),
    key(
        "on_failure",
        NOTIFICATIONS,
        "notifications when a run fails",
    ),
    key(
        "on_success",
        NOTIFICATIONS,
        "notifications when a run succeeds",
    ),
    key(
        "on_retry",
        NOTIFICATIONS,
        "notifications when a task is retried",
    ),
    key(
        "sla_miss",
        NOTIFICATIONS,
        "notifications when a task misses its sla",
    ),
    key("doc", Type::Str, "documentation shown in the UI"),
    key(
        "is_paused_upon_creation",
        Type::Bool,
        "start paused when the DAG first appears",
    ),
    required("tasks", Type::List(&Type::Any), "the list of tasks"),
];

/// What a group under `groups:` may set.
const GROUP_KEYS: &[KeyDoc] = &[
    key(
        "default_args",
        Type::Object(DEFAULT_ARGS),
        "values for any task key but id, type and group, applied to the group's tasks",
    ),
    key(
        "depends_on",
        STRINGS,
        "what the group waits for: task ids, or group:NAME for every task of a group",
    ),
    key("doc", Type::Str, "documentation shown in the UI"),
];

/// The keys every task has.
pub static COMMON_TASK_KEYS: &[KeyDoc] = COMMON;

/// What `default_args` may set: every common task key but `id` and `type`.
pub static DEFAULT_ARGS_KEYS: &[KeyDoc] = DEFAULT_ARGS;

const DEFAULT_ARGS: &[KeyDoc] = COMMON.split_at(2).1;

const COMMON: &[KeyDoc] = &[
    required("id", Type::Str, "the task's id, unique in the DAG"),
    required("type", Type::Str, "the task type: shell, python, sql, ..."),
    key(
        "depends_on",
        STRINGS,
        "ids of upstream tasks (a string or a list); group:NAME for every task of a group",
    ),
    key(
        "trigger_rule",
        one_of(TRIGGER_RULES),
        "when to run given upstream states (default all_success)",
    ),
    key(
        "depends_on_past",
        Type::Bool,
        "wait for this task's success in the previous run",
    ),
    key(
        "retries",
        Type::Count(0),
        "tries after the first failure (default 0)",
    ),
    key(
        "retry_delay",
        Type::Duration,
        "wait before a retry (default 5m)",
    ),
    key(
        "retry_exponential_backoff",
        Type::Bool,
        "double the delay after each retry",
    ),
    key(
        "max_retry_delay",
        Type::Duration,
        "cap for the backoff delay",
    ),
    key(
        "execution_timeout",
        Type::Duration,
        "kill the task's process group after this long",
    ),
    key(
        "pool",
        Type::Str,
        "the pool whose slots bound concurrency (default default_pool)",
    ),
    key(
        "pool_slots",
        Type::Count(1),
        "slots this task takes (default 1)",
    ),
    key(
        "priority_weight",
        Type::Int,
        "higher runs first when slots are short (default 1)",
    ),
    key(
        "queue",
        Type::Str,
        "workers of this queue run the task (default default)",
    ),
    key(
        "params",
        Type::Map(&Type::Any),
        "parameters for this task, over the DAG's",
    ),
    key(
        "env",
        Type::Map(&Type::Any),
        "environment variables (values are templates)",
    ),
    key(
        "on_failure",
        NOTIFICATIONS,
        "notifications when this task fails",
    ),
    key(
        "on_retry",
        NOTIFICATIONS,
        "notifications when this task is retried",
    ),
    key(
        "on_success",
        NOTIFICATIONS,
        "notifications when this task succeeds",
    ),
    key(
        "sla",
        Type::Duration,
        "expected duration from the run's start",
    ),
    key("doc", Type::Str, "documentation shown in the UI"),
    key(
        "group",
        Type::Str,
        "the task's group: a label listings and the UI fold by, with the group's default_args; depends_on: [group:NAME] waits for every task of a group",
    ),
    key(
        "map_over",
        Type::OneOf(&[
            Type::Template,
            Type::List(&Type::Any),
            Type::Map(&Type::Any),
        ]),
        "run one instance per item: a list, a template rendering to a JSON list, or a mapping of lists (cross product)",
    ),
    key("outlets", STRINGS, "assets this task updates"),
];

const fn decl(
    name: &'static str,
    doc: &'static str,
    keys: &'static [KeyDoc],
    example: &'static str,
) -> TaskTypeDoc {
    TaskTypeDoc {
        name,
        doc,
        keys,
        one_of: &[],
        only_one: false,
        example,
    }
}

const fn choice(t: TaskTypeDoc, one_of: &'static [&'static str], only_one: bool) -> TaskTypeDoc {
    TaskTypeDoc {
        one_of,
        only_one,
        ..t
    }
}

const LINE_XCOM: KeyDoc = key(
    "xcom",
    one_of(LineXcom::NAMES),
    "last_line: the last stdout line becomes the XCom value (as JSON if it parses); file (default): JSON the task writes to the file named in $WEIR_XCOM",
);

const PARTITION: Type = Type::Map(&Type::Any);

static SAVE_TO_KEYS: &[KeyDoc] = &[
    required("connection", Type::Str, "the warehouse connection"),
    required("table", Type::Template, "the table to load into"),
    key(
        "format",
        one_of(SaveFormat::NAMES),
        "how to read the body (default: from the content type or the URL)",
    ),
    key(
        "mode",
        one_of(SaveMode::NAMES),
        "replace the table, append to it, or replace one partition (default replace)",
    ),
    key(
        "partition",
        PARTITION,
        "column: value pairs (templated) for replace_partition",
    ),
];

static ROW_COUNT_KEYS: &[KeyDoc] = &[
    key("min", Type::Number, "at least this many rows"),
    key("max", Type::Number, "at most this many rows"),
];

static FRESHNESS_KEYS: &[KeyDoc] = &[
    required("column", Type::Str, "a date or timestamp column"),
    required(
        "max_age",
        Type::Duration,
        "the newest value may be at most this old",
    ),
];

pub static TASK_TYPES: &[TaskTypeDoc] = &[
    choice(
        decl(
            "shell",
            "runs bash in its own process group; exit 99 marks the task skipped",
            &[
                key("command", Type::Template, "inline bash"),
                key(
                    "script",
                    Type::Template,
                    "a script file relative to the project, rendered as a template",
                ),
                key(
                    "cwd",
                    Type::Template,
                    "working directory relative to the project (default the project)",
                ),
                LINE_XCOM,
            ],
            "  - id: extract\n    type: shell\n    command: ./scripts/extract.sh {{ ds }}\n    xcom: last_line\n",
        ),
        &["command", "script"],
        true,
    ),
    choice(
        decl(
            "python",
            "runs a Python file or calls module:function in a subprocess; a callable's JSON return value is its XCom",
            &[
                key("script", Type::Str, "a Python file relative to the project"),
                key(
                    "callable",
                    Type::Str,
                    "module:function, imported from scripts/ or the project",
                ),
                key(
                    "args",
                    Type::List(&Type::Any),
                    "positional arguments (strings are templates)",
                ),
                key(
                    "kwargs",
                    Type::Map(&Type::Any),
                    "keyword arguments for the callable (strings are templates)",
                ),
                key(
                    "interpreter",
                    Type::Str,
                    "the Python to use (default python3)",
                ),
                LINE_XCOM,
            ],
            "  - id: report\n    type: python\n    callable: report:publish\n    args: [\"{{ ds }}\"]\n    kwargs: {country: KR}\n",
        ),
        &["script", "callable"],
        true,
    ),
    decl(
        "sql",
        "statements in one transaction against a connection, or a SELECT that builds a table",
        &[
            required("connection", Type::Str, "connection id"),
            required(
                "sql",
                Type::Template,
                "inline SQL or a .sql path relative to the project",
            ),
            key(
                "mode",
                one_of(SqlMode::NAMES),
                "run the statements (default), or build `table` from a SELECT",
            ),
            key(
                "table",
                Type::Template,
                "target table for the modes that build one",
            ),
            key("unique_key", STRINGS, "merge key for incremental"),
            key(
                "partition",
                PARTITION,
                "column: value pairs (templated) for replace_partition",
            ),
            key(
                "xcom",
                one_of(SqlXcom::NAMES),
                "the query's rows, or its first row, become the XCom value",
            ),
        ],
        "  - id: transform\n    type: sql\n    connection: warehouse\n    mode: incremental\n    unique_key: [name]\n    table: core.names\n    sql: sql/names.sql\n",
    ),
    choice(
        decl(
            "check",
            "fails (or warns) when data does not meet an expectation, logging up to 10 offending rows",
            &[
                required("connection", Type::Str, "connection id"),
                key(
                    "sql",
                    Type::Template,
                    "a query whose result is compared with expect",
                ),
                key(
                    "expect",
                    Type::Any,
                    "\"> 0\", \"== 0\", \"between 1 and 10\", a value, or a list of rows",
                ),
                key("table", Type::Template, "table for the built-in checks"),
                key("where", Type::Template, "a filter for the built-in checks"),
                key("unique", STRINGS, "columns that must be unique together"),
                key("not_null", STRINGS, "columns that must not be null"),
                key(
                    "row_count",
                    Type::Object(ROW_COUNT_KEYS),
                    "bounds on the number of rows",
                ),
                key(
                    "freshness",
                    Type::Object(FRESHNESS_KEYS),
                    "how old the newest value of a column may be",
                ),
                key(
                    "severity",
                    one_of(Severity::NAMES),
                    "error fails the task (default); warn only logs",
                ),
            ],
            "  - id: key_is_unique\n    type: check\n    connection: warehouse\n    table: core.names\n    unique: [name]\n    not_null: [name, gender]\n    row_count: {min: 1}\n",
        ),
        &["sql", "table"],
        false,
    ),
    decl(
        "http",
        "one HTTP request, retried on 5xx; the response can go to XCom or a table",
        &[
            required(
                "url",
                Type::Template,
                "the URL; relative to the connection's base URL, or file://",
            ),
            key(
                "method",
                Type::Enum {
                    names: HttpMethod::NAMES,
                    ignore_case: HttpMethod::IGNORE_CASE,
                },
                "the HTTP method, any case (default GET)",
            ),
            key("connection", Type::Str, "connection with base URL and auth"),
            key(
                "headers",
                Type::Map(&Type::Any),
                "request headers (templated)",
            ),
            key(
                "query",
                Type::Map(&Type::Any),
                "query parameters (templated)",
            ),
            key("json", Type::Any, "a JSON body (templated)"),
            key("body", Type::Template, "a raw body"),
            key(
                "timeout",
                Type::Duration,
                "per-attempt timeout (default 60s)",
            ),
            key(
                "request_retries",
                Type::Count(0),
                "attempts after the first on 5xx, 429 or connection errors (default 3)",
            ),
            key(
                "retry_backoff",
                Type::Duration,
                "wait before the first re-attempt, doubling (default 1s)",
            ),
            key(
                "json_path",
                Type::Str,
                "dotted path to the array of rows in a JSON response",
            ),
            key(
                "expect_status",
                Type::OneOf(&[Type::Int, Type::List(&Type::Int)]),
                "accepted status codes (default any 2xx)",
            ),
            key(
                "save_to",
                Type::Object(SAVE_TO_KEYS),
                "load the response into a warehouse table",
            ),
            key(
                "xcom",
                one_of(HttpXcom::NAMES),
                "the body as JSON or as text becomes the XCom value (default JSON when it parses)",
            ),
        ],
        "  - id: extract\n    type: http\n    url: \"https://example.com/names.csv\"\n    save_to: {connection: warehouse, table: raw.names, format: csv,\n              mode: replace_partition, partition: {ds: \"{{ ds }}\"}}\n",
    ),
    decl(
        "models",
        "runs the dbt-compatible models engine",
        &[
            key(
                "project_dir",
                Type::Str,
                "the dbt project folder, relative to the project (default models/); its profiles.yml is found as `weir models` finds it",
            ),
            key(
                "command",
                one_of(ModelsCommand::NAMES),
                "the dbt command to run (default build)",
            ),
            key(
                "select",
                Type::Template,
                "dbt's --select (default: everything); with `expand`, read when the DAG is parsed, so not a template",
            ),
            key(
                "exclude",
                Type::Template,
                "dbt's --exclude; with `expand`, read when the DAG is parsed",
            ),
            key(
                "vars",
                Type::Map(&Type::Any),
                "dbt vars, templated: `{day: \"{{ ds }}\"}` reaches `var('day')`",
            ),
            key(
                "full_refresh",
                Type::Bool,
                "rebuild incremental models and seeds from scratch",
            ),
            key(
                "target",
                Type::Str,
                "the profile target (default: the profile's own)",
            ),
            key(
                "expand",
                Type::Bool,
                "one task per selected seed, model and snapshot (`<task>.<node>`) and one per node's tests (`<task>.<node>.test`), wired as the dbt graph; downstream tasks wait for all of them, and a dbt project that does not parse is an import error",
            ),
        ],
        "  - id: transform\n    type: models\n    select: \"+fact_user_event\"\n    expand: true\n",
    ),
    decl(
        "trigger_dag",
        "starts a run of another DAG",
        &[
            required("dag_id", Type::Str, "the DAG to trigger"),
            key("conf", Type::Map(&Type::Any), "the run's conf (templated)"),
            key("logical_date", Type::Template, "the run's logical date"),
            key(
                "wait_for_completion",
                Type::Bool,
                "wait for the run to finish",
            ),
            key(
                "poke_interval",
                Type::Duration,
                "how often to check while waiting",
            ),
            key(
                "allowed_states",
                STRINGS,
                "run states that count as success",
            ),
            key("failed_states", STRINGS, "run states that count as failure"),
            key("reset_dag_run", Type::Bool, "clear an existing run"),
            key(
                "skip_when_already_exists",
                Type::Bool,
                "skip when the run exists",
            ),
        ],
        "  - id: start_reports\n    type: trigger_dag\n    dag_id: reports\n    conf: {date: \"{{ ds }}\"}\n",
    ),
    choice(
        decl(
            "wait_for",
            "a sensor: waits for a DAG/task, a file, a SQL condition, a time or an HTTP check",
            &[
                key("dag_id", Type::Str, "wait for this DAG's run"),
                key("task_id", Type::Str, "wait for this task of it"),
                key(
                    "execution_delta",
                    Type::Duration,
                    "look at the run this long before",
                ),
                key(
                    "logical_date",
                    Type::Template,
                    "look at the run of this date",
                ),
                key("file", Type::Template, "wait for this file"),
                key(
                    "sql",
                    Type::Template,
                    "wait until this query returns a truthy row",
                ),
                key("connection", Type::Str, "connection for sql"),
                key("time", Type::Template, "wait until this time"),
                key("http", Type::Template, "wait until this URL answers"),
                key(
                    "mode",
                    one_of(SensorMode::NAMES),
                    "defer (default): no slot held; reschedule: the slot is given back between checks; poke: the slot is held",
                ),
                key("poke_interval", Type::Duration, "how often to check"),
                key("timeout", Type::Duration, "give up after this long"),
                key(
                    "soft_fail",
                    Type::Bool,
                    "skip instead of failing on timeout",
                ),
                key(
                    "exponential_backoff",
                    Type::Bool,
                    "double the interval after each check",
                ),
                key("allowed_states", STRINGS, "states that count as done"),
                key("failed_states", STRINGS, "states that count as failed"),
            ],
            "  - id: upstream_done\n    type: wait_for\n    dag_id: raw_events\n    task_id: load\n    mode: reschedule\n    timeout: 2h\n",
        ),
        &["dag_id", "file", "sql", "time", "http"],
        false,
    ),
    choice(
        decl(
            "branch",
            "follows the chosen direct downstream tasks and skips the others (Airflow's branch operators): what follows only from a skipped task is skipped by its trigger rule, and a join with `trigger_rule: none_failed_min_one_success` runs; a choice that is not a direct downstream task fails the branch",
            &[
                key(
                    "choose",
                    Type::Template,
                    "renders to the chosen task ids: one id, a comma list (`a, b`) or a JSON list; empty chooses none; written without template syntax, `dags validate` checks the ids",
                ),
                key(
                    "script",
                    Type::Template,
                    "bash, inline or a `.sh` file relative to the project (rendered); the last line it prints holds the ids, as `choose` does; a non-zero exit fails the branch",
                ),
            ],
            "  - id: pick\n    type: branch\n    choose: \"{{ 'full_load' if ds.endswith('-01') else 'daily_load' }}\"\n  - {id: full_load, type: shell, command: ./load.sh --full, depends_on: [pick]}\n  - {id: daily_load, type: shell, command: ./load.sh, depends_on: [pick]}\n",
        ),
        &["choose", "script"],
        true,
    ),
    decl(
        "latest_only",
        "skips its direct downstream tasks unless the run is of the latest interval: a manual run goes on; a scheduled or backfill run goes on only while now is after its data_interval_end and not after the next interval's end (Airflow's LatestOnlyOperator)",
        &[],
        "  - id: only_latest\n    type: latest_only\n",
    ),
    choice(
        decl(
            "short_circuit",
            "when its condition is false, skips downstream tasks (Airflow's ShortCircuitOperator); it succeeds either way",
            &[
                key(
                    "condition",
                    Type::Template,
                    "false when it renders to \"\", false, 0, none, null, [] or {} (any case), as Python's truthiness; anything else goes on",
                ),
                key(
                    "script",
                    Type::Template,
                    "bash, inline or a `.sh` file relative to the project (rendered): exit 0 goes on, any other exit code short-circuits",
                ),
                key(
                    "ignore_downstream_trigger_rules",
                    Type::Bool,
                    "true (default): skip every task downstream, whatever its trigger rule; false: skip only the direct downstream tasks and let trigger rules decide the rest",
                ),
            ],
            "  - id: weekdays_only\n    type: short_circuit\n    condition: \"{{ params.get('enabled', true) }}\"\n",
        ),
        &["condition", "script"],
        true,
    ),
    decl(
        "notify",
        "sends a message",
        &[
            required("channel", one_of(Channel::NAMES), "where it goes"),
            required("connection", Type::Str, "connection id"),
            key("to", STRINGS, "email recipients"),
            key("subject", Type::Template, "subject line"),
            key("message", Type::Template, "the message"),
        ],
        "  - id: tell_the_team\n    type: notify\n    channel: slack\n    connection: alerts\n    message: \"loaded {{ ds }}\"\n",
    ),
    decl(
        "empty",
        "does nothing; a join point",
        &[],
        "  - id: done\n    type: empty\n",
    ),
    decl(
        "kubernetes_pod",
        "runs a pod through the Kubernetes API",
        &[
            required("image", Type::Str, "container image"),
            key("cmds", Type::List(&Type::Template), "entrypoint"),
            key("arguments", Type::List(&Type::Template), "arguments"),
            key("namespace", Type::Str, "namespace"),
            key("resources", Type::Map(&Type::Any), "requests and limits"),
            key("connection", Type::Str, "cluster connection"),
        ],
        "  - id: train\n    type: kubernetes_pod\n    image: python:3.12-slim\n    cmds: [python, -c, \"print('hi')\"]\n",
    ),
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
