//! The closed sets of values some keys take (`xcom: last_line`, `mode: incremental`, ...), as
//! Rust enums. The declarations in [`crate::keys`] list their names for validation, the JSON
//! Schema and the reference, and the operators in `weir-ops` deserialize into the same enums,
//! so a value that validates is a value the operator runs, and a new value must be handled by
//! the operator's `match` before the code compiles.

use std::fmt;
use std::str::FromStr;

/// A value outside a closed set, with the closest allowed one when it is close enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    pub value: String,
    pub allowed: &'static [&'static str],
}

impl UnknownValue {
    /// `did you mean 'x'?`, else the allowed values.
    pub fn hint(&self) -> String {
        crate::did_you_mean(&self.value, self.allowed.iter().copied())
            .unwrap_or_else(|| format!("allowed: {}", self.allowed.join(", ")))
    }
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown value '{}' ({})", self.value, self.hint())
    }
}

impl std::error::Error for UnknownValue {}

macro_rules! values {
    ($(#[$meta:meta])* $name:ident $(, ignore_case = $ic:literal)? { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The names DAG files use, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];
            /// Whether `Get` also reads `get`.
            pub const IGNORE_CASE: bool = false $(|| $ic)?;

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| {
                        v.as_str() == s || ($name::IGNORE_CASE && v.as_str().eq_ignore_ascii_case(s))
                    })
                    .ok_or_else(|| UnknownValue { value: s.to_string(), allowed: $name::NAMES })
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

values!(
    /// `xcom` of `shell` and `python`: `file` (the default) reads JSON from `$WEIR_XCOM`.
    LineXcom { LastLine = "last_line", File = "file" }
);

values!(
    /// `xcom` of `sql`: the query's rows, or its first row, become the XCom value.
    SqlXcom { Rows = "rows", FirstRow = "first_row" }
);

values!(
    /// `xcom` of `http`: the body parsed as JSON, or as text.
    HttpXcom { Json = "json", Text = "text" }
);

values!(
    /// `mode` of `sql`.
    SqlMode {
        Run = "run",
        FullRefresh = "full_refresh",
        Incremental = "incremental",
        ReplacePartition = "replace_partition",
    }
);

values!(
    /// `severity` of `check`.
    Severity { Error = "error", Warn = "warn" }
);

values!(
    /// `method` of `http` (any case).
    HttpMethod, ignore_case = true {
        Get = "GET",
        Post = "POST",
        Put = "PUT",
        Patch = "PATCH",
        Delete = "DELETE",
        Head = "HEAD",
        Options = "OPTIONS",
    }
);

values!(
    /// `save_to.format` of `http`.
    SaveFormat { Json = "json", Csv = "csv" }
);

values!(
    /// `save_to.mode` of `http`.
    SaveMode { Replace = "replace", Append = "append", ReplacePartition = "replace_partition" }
);

values!(
    /// Where a notification goes: `channel` of `notify`, `notify` of a callback.
    Channel { Webhook = "webhook", Slack = "slack", Email = "email" }
);

values!(
    /// `command` of `models`.
    ModelsCommand {
        Build = "build",
        Run = "run",
        Test = "test",
        Seed = "seed",
        Snapshot = "snapshot",
    }
);

values!(
    /// `mode` of `wait_for`.
    SensorMode { Defer = "defer", Reschedule = "reschedule", Poke = "poke" }
);

/// `trigger_rule`: the names of [`weir_core::TriggerRule::ALL`] (a test keeps them equal).
pub const TRIGGER_RULES: &[&str] = &[
    "all_success",
    "all_failed",
    "all_done",
    "all_skipped",
    "one_success",
    "one_failed",
    "one_done",
    "none_failed",
    "none_failed_min_one_success",
    "none_skipped",
    "always",
];

/// A duration as DAG files write it: `30s`, `5m`, `1h30m`, `2d`, or a number of seconds.
pub fn duration(value: &serde_json::Value) -> Result<std::time::Duration, String> {
    match value {
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(secs) if secs >= 0.0 && secs.is_finite() => {
                Ok(std::time::Duration::from_secs_f64(secs))
            }
            _ => Err(format!(
                "duration '{n}' must be a non-negative number of seconds"
            )),
        },
        serde_json::Value::String(s) => weir_core::parse_duration(s),
        other => Err(format!("'{other}' is not a duration")),
    }
}

/// The task ids a `branch` chose, from its rendered `choose` (or its script's last line): one id, `a, b`, or a list (`["a", "b"]`, also with
/// Python's single quotes); nothing (an empty text, `none`, `[]`) chooses no task. `dags
/// validate` reads a `choose` without template syntax the same way.
pub fn branch_choice(text: &str) -> Vec<String> {
    let text = text.trim();
    if let Ok(serde_json::Value::Array(items)) = serde_json::from_str(text) {
        return items
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s.trim().to_string(),
                other => other.to_string(),
            })
            .filter(|s| !s.is_empty())
            .collect();
    }
    if matches!(text.to_ascii_lowercase().as_str(), "none" | "null") {
        return Vec::new();
    }
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let mut ids: Vec<String> = Vec::new();
    for part in inner.split(',') {
        let id = part.trim().trim_matches(|c| c == '\'' || c == '"').trim();
        if !id.is_empty() && !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }
    ids
}
