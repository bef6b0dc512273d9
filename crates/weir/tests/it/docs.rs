//! `docs/` and `weir dags schema`: the generated files are fresh, every task type and key of
//! the declarations is documented and in the schema, every example DAG validates both with
//! `weir dags validate` and against the schema, and an independent JSON Schema validator
//! agrees with `weir dags validate` on good and bad fixtures.

use crate::support::{Project, weir_bin};
use serde_json::Value;
use std::path::{Path, PathBuf};
use weir_spec::{COMMON_TASK_KEYS, DAG_KEYS, KeyDoc, NOTIFICATION_KEYS, TASK_TYPES, Type};

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

fn read_doc(name: &str) -> String {
    let path = docs_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The schema exactly as `weir dags schema` prints it.
fn cli_schema() -> Value {
    let out = assert_cmd::Command::new(weir_bin())
        .args(["dags", "schema"])
        .current_dir(std::env::temp_dir())
        .env_remove("WEIR_HOME")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("weir dags schema prints JSON")
}

fn validator() -> jsonschema::Validator {
    let schema = cli_schema();
    assert!(
        jsonschema::meta::is_valid(&schema),
        "not a valid JSON Schema"
    );
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

/// YAML text as the JSON value the schema sees (as an editor's YAML language server reads it).
fn yaml_to_json(text: &str) -> Value {
    match weir_spec::yaml::parse(text) {
        Ok(Some(node)) => node.to_json(),
        Ok(None) => Value::Null,
        Err(e) => panic!("invalid YAML at line {}: {}\n{text}", e.line, e.message),
    }
}

fn schema_errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn generated_docs_are_fresh() {
    let update = std::env::var("UPDATE_DOCS").as_deref() == Ok("1");
    let tmp = tempfile::tempdir().unwrap();
    let out = if update {
        docs_dir()
    } else {
        tmp.path().to_path_buf()
    };
    let status = assert_cmd::Command::new(weir_bin())
        .arg("docs")
        .arg("--out")
        .arg(&out)
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    for name in ["dag-reference.md", "dag-schema.json", "cli.md"] {
        let fresh = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(
            fresh == read_doc(name),
            "docs/{name} is stale: refresh it with `UPDATE_DOCS=1 cargo test -p weir --test it docs` \
             (or `weir docs --out docs`) and commit it"
        );
    }
    assert_eq!(
        serde_json::from_str::<Value>(&read_doc("dag-schema.json")).unwrap(),
        cli_schema(),
        "docs/dag-schema.json is what weir dags schema prints"
    );
}

/// Every key with its nested keys (`save_to.format`), as (name, declaration).
fn all_keys(keys: &'static [KeyDoc], out: &mut Vec<&'static KeyDoc>) {
    for k in keys {
        out.push(k);
        if let Type::Object(inner) = k.ty {
            all_keys(inner, out);
        }
    }
}

#[test]
fn every_task_type_and_key_is_in_the_reference_and_the_schema() {
    let reference = read_doc("dag-reference.md");
    let schema = cli_schema();
    let text = schema.to_string();
    let mut keys = Vec::new();
    all_keys(DAG_KEYS, &mut keys);
    all_keys(COMMON_TASK_KEYS, &mut keys);
    all_keys(NOTIFICATION_KEYS, &mut keys);
    for t in TASK_TYPES {
        assert!(
            reference.contains(&format!("### `{}`", t.name)),
            "task type {} not in docs/dag-reference.md",
            t.name
        );
        let def = &schema["definitions"][format!("task_{}", t.name)];
        assert_eq!(
            def["properties"]["type"]["const"], t.name,
            "task type {} not in the schema",
            t.name
        );
        for k in t.keys {
            assert!(
                def["properties"][k.name].is_object(),
                "{}.{} not in the schema",
                t.name,
                k.name
            );
        }
        all_keys(t.keys, &mut keys);
    }
    for k in keys {
        assert!(
            reference.contains(&format!("| `{}` |", k.name)),
            "key {} not in docs/dag-reference.md",
            k.name
        );
        assert!(
            text.contains(&format!("\"{}\":", k.name)),
            "key {} not in the schema",
            k.name
        );
        if let Type::Enum { names, .. } = k.ty {
            for n in names {
                assert!(
                    reference.contains(&format!("`{n}`")),
                    "value {n} of {} not in the reference",
                    k.name
                );
                assert!(
                    text.contains(&format!("\"{n}\"")),
                    "value {n} of {} not in the schema",
                    k.name
                );
            }
        }
    }
}

/// The ```yaml blocks of a Markdown file.
fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```yaml") => current = Some(String::new()),
            Some(block) if line.trim_start().starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// Checks one DAG file with `weir dags validate` (exit code, stderr) in `project`.
fn weir_validate(project: &Project, name: &str, yaml: &str) -> (i32, String) {
    let path = project.dag(name, yaml);
    let (code, _, stderr) = project.run(&["dags", "validate", path.to_str().unwrap()]);
    std::fs::remove_file(path).unwrap();
    (code, stderr)
}

#[test]
fn every_example_dag_in_docs_and_weir_init_validates_with_weir_and_the_schema() {
    let v = validator();
    let project = Project::new();
    let mut full = 0;
    let mut fragments = 0;
    let mut files: Vec<PathBuf> = std::fs::read_dir(docs_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (i, block) in yaml_blocks(&text).into_iter().enumerate() {
            let shown = format!("{} yaml block #{}", file.display(), i + 1);
            let json = yaml_to_json(&block);
            if json.get("tasks").is_some() {
                full += 1;
                let errors = schema_errors(&v, &json);
                assert!(
                    errors.is_empty(),
                    "{shown} fails the schema: {errors:#?}\n{block}"
                );
                let (code, stderr) = weir_validate(&project, &format!("example_{full}"), &block);
                assert_eq!(
                    code, 0,
                    "{shown} fails weir dags validate:\n{stderr}\n{block}"
                );
            } else if json
                .as_array()
                .is_some_and(|a| a.iter().all(|t| t.get("type").is_some()))
            {
                // A task of the reference, shown as an item of `tasks:`.
                fragments += 1;
                let dag = serde_json::json!({"tasks": json});
                let errors = schema_errors(&v, &dag);
                assert!(
                    errors.is_empty(),
                    "{shown} fails the schema: {errors:#?}\n{block}"
                );
            }
        }
    }
    assert!(full >= 2, "only {full} full example DAGs in docs/");
    assert_eq!(
        fragments,
        TASK_TYPES.len(),
        "one example per task type in the reference"
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fresh");
    let out = assert_cmd::Command::new(weir_bin())
        .arg("init")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = assert_cmd::Command::new(weir_bin())
        .args(["--project", dir.to_str().unwrap(), "dags", "validate"])
        .env_remove("WEIR_HOME")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut init_dags = 0;
    for entry in std::fs::read_dir(dir.join("dags")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            init_dags += 1;
            let json = yaml_to_json(&std::fs::read_to_string(&path).unwrap());
            let errors = schema_errors(&v, &json);
            assert!(
                errors.is_empty(),
                "{} fails the schema: {errors:#?}",
                path.display()
            );
        }
    }
    assert!(init_dags >= 2, "weir init wrote {init_dags} DAGs");
}

/// (what, DAG file, valid?, part of weir's error when invalid)
const FIXTURES: &[(&str, &str, bool, &str)] = &[
    ("minimal", "tasks:\n  - {id: a, type: empty}\n", true, ""),
    (
        "every runnable type",
        "schedule: '@daily'\nstart_date: 2026-01-01\ndefault_args: {retries: 2, retry_delay: 5m}\non_failure: {notify: slack, connection: alerts}\ntasks:\n  - {id: a, type: shell, command: echo hi, xcom: last_line, depends_on: b}\n  - {id: b, type: python, callable: m:f, kwargs: {x: 1}}\n  - {id: c, type: sql, connection: wh, sql: select 1, xcom: first_row}\n  - {id: d, type: check, connection: wh, table: t, unique: [id], severity: warn}\n  - {id: e, type: http, url: u, method: post, timeout: 30, save_to: {connection: wh, table: t, format: csv}}\n  - {id: f, type: notify, channel: email, connection: smtp, to: [me@example.com]}\n",
        true,
        "",
    ),
    (
        "xcom: lastline",
        "tasks:\n  - id: x\n    type: shell\n    command: echo hi\n    xcom: lastline\n",
        false,
        "unknown value 'lastline' for 'xcom' in task 'x'",
    ),
    (
        "an unknown task key",
        "tasks:\n  - id: load\n    type: shell\n    command: echo\n    dependsOn: [a]\n",
        false,
        "unknown key 'dependsOn' in task 'load'",
    ),
    (
        "an unknown DAG key",
        "schedule_interval: '@daily'\ntasks:\n  - {id: a, type: empty}\n",
        false,
        "unknown key 'schedule_interval' at the top level",
    ),
    (
        "a wrong type",
        "tasks:\n  - id: a\n    type: empty\n    retries: three\n",
        false,
        "'retries' must be a whole number",
    ),
    (
        "a wrong type of a task type's key",
        "tasks:\n  - id: h\n    type: http\n    url: u\n    request_retries: [1]\n",
        false,
        "'request_retries' in task 'h' must be a whole number >= 0, not a list",
    ),
    (
        "an unknown nested key",
        "tasks:\n  - id: h\n    type: http\n    url: u\n    save_to: {connection: wh, table: t, fromat: csv}\n",
        false,
        "unknown key 'fromat' in 'save_to' in task 'h'",
    ),
    (
        "an unknown task type",
        "tasks:\n  - id: a\n    type: shel\n",
        false,
        "unknown task type 'shel'",
    ),
    (
        "a missing required key",
        "tasks:\n  - id: q\n    type: sql\n    sql: select 1\n",
        false,
        "task 'q' (sql) needs 'connection'",
    ),
    ("no tasks", "dag_id: x\n", false, "missing 'tasks'"),
];

#[test]
fn an_independent_json_schema_validator_agrees_with_weir_dags_validate() {
    let v = validator();
    let project = Project::new();
    for (i, (what, yaml, valid, message)) in FIXTURES.iter().enumerate() {
        let json = yaml_to_json(yaml);
        let errors = schema_errors(&v, &json);
        assert_eq!(
            errors.is_empty(),
            *valid,
            "{what}: the schema says {errors:#?}"
        );
        let (code, stderr) = weir_validate(&project, &format!("fixture_{i}"), yaml);
        assert_eq!(
            code,
            if *valid { 0 } else { 1 },
            "{what}: weir dags validate said\n{stderr}"
        );
        assert!(stderr.contains(message), "{what}: {stderr}");
    }
}

#[test]
fn every_setting_in_config_rs_is_in_the_settings_reference() {
    let config =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config.rs"))
            .unwrap();
    let start = config
        .find("pub const DEFAULTS: &str = r#\"")
        .expect("DEFAULTS in config.rs");
    let rest = &config[start..];
    let defaults = &rest[rest.find('\n').unwrap()..rest.find("\"#;").unwrap()];
    let reference = read_doc("settings.md");
    let mut section = String::new();
    let mut keys = 0;
    for line in defaults
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            assert!(
                reference.contains(&format!("## `[{section}]`")),
                "section [{section}] not in docs/settings.md"
            );
            continue;
        }
        let key = line.split('=').next().unwrap().trim();
        let env = format!("WEIR__{}__{}", section.to_uppercase(), key.to_uppercase());
        assert!(
            reference.contains(&format!("| `{key}` |")),
            "[{section}] {key} not in docs/settings.md"
        );
        assert!(reference.contains(&env), "{env} not in docs/settings.md");
        keys += 1;
    }
    assert!(keys >= 15, "read only {keys} settings from config.rs");
    assert!(reference.contains("## `[pools]`"));
}

#[test]
fn the_readme_links_the_docs_and_nothing_points_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for name in [
        "tutorial.md",
        "dag-reference.md",
        "cli.md",
        "settings.md",
        "dag-schema.json",
    ] {
        assert!(
            readme.contains(&format!("docs/{name}")),
            "README.md does not link docs/{name}"
        );
        assert!(docs_dir().join(name).is_file(), "docs/{name} is missing");
    }
    let mut texts = vec![("README.md".to_string(), readme)];
    for entry in std::fs::read_dir(docs_dir()).unwrap() {
        let path = entry.unwrap().path();
        texts.push((
            path.display().to_string(),
            std::fs::read_to_string(&path).unwrap(),
        ));
    }
    for (name, text) in texts {
        assert!(
            !text.contains("../shared"),
            "{name} points outside the repository"
        );
    }
}
