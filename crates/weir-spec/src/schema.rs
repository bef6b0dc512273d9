//! A JSON Schema (draft-07, which editors' YAML language servers read best) of the DAG file,
//! made from the key declarations: what `weir dags schema` prints.

use crate::keys::{COMMON_TASK_KEYS, DAG_KEYS, KeyDoc, TASK_TYPES, TaskTypeDoc, Type};
use serde_json::{Map, Value, json};

/// The JSON Schema of a DAG file. Tasks are told apart by `type`: one `if`/`then` per task
/// type, each closing the task's keys (`additionalProperties: false`).
pub fn json_schema() -> Value {
    let mut definitions = Map::new();
    // The keys every task has are defined once and referenced from each task type.
    for k in COMMON_TASK_KEYS {
        definitions.insert(format!("common_{}", k.name), property(k));
    }
    let mut branches = Vec::new();
    for t in TASK_TYPES {
        let def = format!("task_{}", t.name);
        definitions.insert(def.clone(), task_schema(t));
        branches.push(json!({
            "if": {"properties": {"type": {"const": t.name}}, "required": ["type"]},
            "then": {"$ref": format!("#/definitions/{def}")},
        }));
    }
    definitions.insert(
        "task".into(),
        json!({
            "type": "object",
            "description": "a task: id, type, the keys every task has, and its type's own keys",
            "required": ["id", "type"],
            "properties": {
                "type": {
                    "description": "the task type",
                    "enum": TASK_TYPES.iter().map(|t| t.name).collect::<Vec<_>>(),
                },
            },
            "allOf": branches,
        }),
    );
    let mut dag = object(DAG_KEYS);
    dag["properties"]["tasks"] = json!({
        "description": "the list of tasks",
        "type": "array",
        "minItems": 1,
        "items": {"$ref": "#/definitions/task"},
    });
    let mut schema = Map::new();
    schema.insert(
        "$schema".into(),
        json!("http://json-schema.org/draft-07/schema#"),
    );
    schema.insert("title".into(), json!("weir DAG file"));
    schema.insert(
        "description".into(),
        json!("One DAG per file in dags/; see docs/dag-reference.md"),
    );
    if let Value::Object(dag) = dag {
        schema.extend(dag);
    }
    schema.insert("definitions".into(), Value::Object(definitions));
    Value::Object(schema)
}

fn task_schema(t: &TaskTypeDoc) -> Value {
    let mut schema = object(t.keys);
    for k in COMMON_TASK_KEYS {
        schema["properties"][k.name] = json!({"$ref": format!("#/definitions/common_{}", k.name)});
    }
    let required: Vec<&str> = COMMON_TASK_KEYS
        .iter()
        .chain(t.keys)
        .filter(|k| k.required)
        .map(|k| k.name)
        .collect();
    schema["required"] = json!(required);
    schema["description"] = json!(format!("{}: {}", t.name, t.doc));
    schema["properties"]["type"] = json!({"const": t.name, "description": t.doc});
    if !t.one_of.is_empty() {
        let alternatives: Vec<Value> = t.one_of.iter().map(|k| json!({"required": [k]})).collect();
        let word = if t.only_one { "oneOf" } else { "anyOf" };
        schema[word] = Value::Array(alternatives);
    }
    schema
}

/// A mapping with exactly these keys.
fn object(keys: &[KeyDoc]) -> Value {
    let mut properties = Map::new();
    for k in keys {
        properties.insert(k.name.to_string(), property(k));
    }
    let required: Vec<&str> = keys.iter().filter(|k| k.required).map(|k| k.name).collect();
    let mut schema = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// A key's schema, with its doc as the description editors show.
fn property(k: &KeyDoc) -> Value {
    let mut s = of(&k.ty);
    if let Value::Object(m) = &mut s {
        m.insert("description".into(), json!(k.doc));
    }
    s
}

/// The schema of one declared type.
fn of(ty: &Type) -> Value {
    match ty {
        Type::Str | Type::Template => json!({"type": "string"}),
        Type::Bool => json!({"type": "boolean"}),
        Type::Int => json!({"type": "integer"}),
        Type::Count(min) => json!({"type": "integer", "minimum": min}),
        Type::Number => json!({"type": "number"}),
        Type::Duration => json!({
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "number", "minimum": 0},
            ],
        }),
        Type::Enum { names, ignore_case } => {
            let mut all: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            if *ignore_case {
                all.extend(names.iter().map(|n| n.to_ascii_lowercase()));
                all.dedup();
            }
            json!({"type": "string", "enum": all})
        }
        Type::List(item) => json!({"type": "array", "items": of(item)}),
        Type::Map(value) => json!({"type": "object", "additionalProperties": of(value)}),
        Type::Object(keys) => object(keys),
        Type::OneOf(types) => json!({"anyOf": types.iter().map(of).collect::<Vec<_>>()}),
        Type::Null => json!({"type": "null"}),
        Type::Any => json!({}),
    }
}

/// What `weir_core::parse_duration` reads: a number of seconds, or numbers with units.
const DURATION_PATTERN: &str = r"^\s*(\d+(\.\d+)?|(\d+(\.\d+)?\s*(ms|s|secs?|seconds?|m|mins?|minutes?|h|hr|hours?|d|days?|w|weeks?)\s*)+)$";
