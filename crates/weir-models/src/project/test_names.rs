//! dbt's names and unique ids of generic tests, so that `test.<pkg>.<name>.<hash>` equals the
//! id dbt-core gives the same YAML (state comparison and `--select` by id depend on it).
//!
//! The name is `<namespace_><test>_<target>_<arg values...>` (arguments sorted by name, `model`
//! left out, values of dict arguments and items of list arguments each one part, every run of
//! characters outside `[0-9a-zA-Z_]` replaced by `_`, parts joined by `__`). A name of 64 or
//! more characters keeps its first 30 characters of `<test>_<target>` and the 32-hex md5 of the
//! full name for the alias/file name, while the unique id keeps the full name. The id's suffix
//! is the last 10 hex digits of md5(full name + Python `repr()` of the test metadata, leaves
//! turned into strings, keys sorted).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use md5::{Digest, Md5};
use regex::Regex;
use serde_json::Value as Json;

use super::node::hex;

/// Python's `repr()` of a `str`.
pub fn python_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn python_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

fn python_number(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if !n.is_i64() && !n.is_u64() => python_float(f),
        _ => n.to_string(),
    }
}

/// Python's `repr()` of a YAML value read as Python would read it.
pub fn python_repr(value: &Json) -> String {
    match value {
        Json::Null => "None".to_string(),
        Json::Bool(true) => "True".to_string(),
        Json::Bool(false) => "False".to_string(),
        Json::Number(n) => python_number(n),
        Json::String(s) => python_repr_str(s),
        Json::Array(items) => format!(
            "[{}]",
            items.iter().map(python_repr).collect::<Vec<_>>().join(", ")
        ),
        Json::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", python_repr_str(k), python_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's `str()`.
pub fn python_str(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => python_repr(other),
    }
}

static UNSAFE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[^0-9a-zA-Z_]+").expect("valid regex"));

/// Returns `(short_name, full_name)`: the alias/file name and the name used in the unique id
/// and fqn. `test_type` already carries a namespace prefix (`dbt_utils_expression_is_true`)
/// and, for source tests, the `source_` prefix.
pub fn synthesize_names(
    test_type: &str,
    target_name: &str,
    kwargs: &BTreeMap<String, Json>,
) -> (String, String) {
    let mut flat = Vec::new();
    for (name, value) in kwargs {
        if name == "model" {
            continue;
        }
        match value {
            Json::Object(map) => flat.extend(map.values().map(python_str)),
            Json::Array(items) => flat.extend(items.iter().map(python_str)),
            other => flat.push(python_str(other)),
        }
    }
    let clean: Vec<String> = flat
        .iter()
        .map(|part| UNSAFE.replace_all(part, "_").to_string())
        .collect();
    let identifier = format!("{test_type}_{target_name}");
    let full = format!("{identifier}_{}", clean.join("__"));
    let short = if full.len() >= 64 {
        let prefix: String = identifier.chars().take(30).collect();
        format!("{prefix}_{}", hex(&Md5::digest(full.as_bytes())))
    } else {
        full.clone()
    };
    (short, full)
}

/// `get_hashable_md`: every leaf becomes its Python `str()`, dict keys sorted.
fn hashable(value: &Json) -> Json {
    match value {
        Json::Object(map) => {
            let sorted: BTreeMap<&String, Json> =
                map.iter().map(|(k, v)| (k, hashable(v))).collect();
            Json::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Json::Array(items) => Json::Array(items.iter().map(hashable).collect()),
        leaf => Json::String(python_str(leaf)),
    }
}

/// The 10-hex-digit suffix of a generic test's unique id.
pub fn test_hash(
    full_name: &str,
    macro_name: &str,
    namespace: Option<&str>,
    kwargs: &BTreeMap<String, Json>,
) -> String {
    let kwargs_json = Json::Object(kwargs.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    let metadata = format!(
        "{{'kwargs': {}, 'name': {}, 'namespace': {}}}",
        python_repr(&hashable(&kwargs_json)),
        python_repr_str(macro_name),
        python_repr_str(namespace.unwrap_or("None")),
    );
    let digest = hex(&Md5::digest(format!("{full_name}{metadata}").as_bytes()));
    digest[digest.len() - 10..].to_string()
}
