//! `profiles.yml`: profile → `target:` default → `outputs:`, with `{{ env_var('X', 'default') }}`
//! rendered by a small minijinja environment of its own (only `env_var` and dbt's `as_*`
//! filters: the full dbt context does not exist before the profile is known).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

use super::error::{ProjectError, ProjectErrorKind};
use super::yaml::{Yaml, YamlValue};

/// The chosen target of a profile, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub profile_name: String,
    pub target_name: String,
    /// `type` of the output: `duckdb`, `postgres`, ...
    pub adapter_type: String,
    pub threads: u32,
    /// Every field of the output (`type`, `path`, `schema`, `host`, ...), rendered.
    pub output: Map<String, Json>,
    pub file: PathBuf,
}

impl Profile {
    /// The target's database: `database`/`dbname`, or for DuckDB the file stem of `path`, as
    /// dbt-duckdb names it.
    pub fn database(&self) -> Option<String> {
        for key in ["database", "dbname"] {
            if let Some(Json::String(db)) = self.output.get(key) {
                return Some(db.clone());
            }
        }
        if self.adapter_type == "duckdb" {
            let path = self
                .output
                .get("path")
                .and_then(Json::as_str)
                .unwrap_or(":memory:");
            if path == ":memory:" {
                return Some("memory".to_string());
            }
            return Path::new(path)
                .file_stem()
                .map(|s| s.to_string_lossy().to_string());
        }
        None
    }

    /// The target's schema: `schema`, or `main` for DuckDB and SQLite.
    pub fn schema(&self) -> String {
        match self.output.get("schema").and_then(Json::as_str) {
            Some(schema) => schema.to_string(),
            None => match self.adapter_type.as_str() {
                "duckdb" | "sqlite" => "main".to_string(),
                _ => "public".to_string(),
            },
        }
    }
}

/// Where `profiles.yml` is looked for: `--profiles-dir`, else `DBT_PROFILES_DIR`, else the
/// project directory when it has one, else `~/.dbt/`.
pub fn profiles_dir(
    explicit: Option<&Path>,
    project_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    if let Some(dir) = env("DBT_PROFILES_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if project_dir.join("profiles.yml").is_file() {
        return project_dir.to_path_buf();
    }
    match env("HOME") {
        Some(home) => Path::new(&home).join(".dbt"),
        None => project_dir.to_path_buf(),
    }
}

/// Renders `{{ env_var(...) }}` in one profile value.
fn render(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    file: &Path,
    line: usize,
) -> Result<Json, ProjectError> {
    if !text.contains("{{") && !text.contains("{%") {
        return Ok(Json::String(text.to_string()));
    }
    let mut jinja = minijinja::Environment::new();
    let snapshot: BTreeMap<String, Option<String>> = {
        // Collect the names the template asks for, so the closure need not borrow `env`.
        let names = regex::Regex::new(r#"env_var\(\s*['"]([^'"]+)['"]"#).expect("valid regex");
        names
            .captures_iter(text)
            .filter_map(|c| c.get(1))
            .map(|m| (m.as_str().to_string(), env(m.as_str())))
            .collect()
    };
    jinja.add_function(
        "env_var",
        move |name: String, default: Option<String>| -> Result<String, minijinja::Error> {
            match snapshot.get(&name).cloned().flatten().or(default) {
                Some(value) => Ok(value),
                None => Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("env var required but not provided: '{name}'"),
                )),
            }
        },
    );
    for filter in ["as_text", "as_number", "as_bool", "as_native"] {
        jinja.add_filter(filter, |v: minijinja::Value| v);
    }
    let rendered = jinja.render_str(text, ()).map_err(|e| {
        let detail = e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string());
        ProjectError::new(ProjectErrorKind::Profile(detail))
            .at(file, Some(line))
            .hint("set the variable, or give env_var a default: env_var('NAME', 'default')")
    })?;
    // dbt's `as_number`/`as_bool` turn the rendered text into a native value.
    if text.contains("as_number") {
        if let Ok(n) = rendered.trim().parse::<i64>() {
            return Ok(Json::from(n));
        }
        if let Some(n) = rendered
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return Ok(Json::Number(n));
        }
    }
    if text.contains("as_bool") {
        match rendered.trim().to_ascii_lowercase().as_str() {
            "true" => return Ok(Json::Bool(true)),
            "false" => return Ok(Json::Bool(false)),
            _ => {}
        }
    }
    Ok(Json::String(rendered))
}

fn render_tree(
    node: &Yaml,
    env: &dyn Fn(&str) -> Option<String>,
    file: &Path,
) -> Result<Json, ProjectError> {
    Ok(match &node.value {
        YamlValue::Str(s) => render(s, env, file, node.line)?,
        YamlValue::Seq(items) => Json::Array(
            items
                .iter()
                .map(|i| render_tree(i, env, file))
                .collect::<Result<_, _>>()?,
        ),
        YamlValue::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                map.insert(k.clone(), render_tree(v, env, file)?);
            }
            Json::Object(map)
        }
        _ => node.to_json(),
    })
}

/// Reads `profile_name` from `<dir>/profiles.yml` and picks `target` (else the profile's
/// `target:`, else `default`).
pub fn load_profile(
    dir: &Path,
    profile_name: &str,
    target: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Profile, ProjectError> {
    let file = dir.join("profiles.yml");
    let text = std::fs::read_to_string(&file).map_err(|e| {
        ProjectError::new(ProjectErrorKind::Profile(format!(
            "cannot read '{}': {e}",
            file.display()
        )))
        .hint("pass --profiles-dir, set DBT_PROFILES_DIR, or put profiles.yml in the project")
    })?;
    let doc = Yaml::parse(&text, &file)?;
    let Some(profile) = doc.get(profile_name) else {
        let known: Vec<&str> = doc
            .as_map()
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| *k != "config")
            .collect();
        let mut error = ProjectError::new(ProjectErrorKind::Profile(format!(
            "could not find profile named '{profile_name}'"
        )))
        .at(&file, None);
        error = match strsim_best(profile_name, &known) {
            Some(best) => error.hint(format!("did you mean '{best}'?")),
            None => error.hint(format!(
                "add a '{profile_name}:' profile with a target and outputs"
            )),
        };
        return Err(error);
    };
    let outputs = profile.at("outputs");
    let target_name = match target {
        Some(t) => t.to_string(),
        None => match profile.get("target") {
            Some(t) => match render_tree(t, env, &file)? {
                Json::String(s) => s,
                other => other.to_string(),
            },
            None => "default".to_string(),
        },
    };
    let Some(output) = outputs.get(&target_name) else {
        let known: Vec<&str> = outputs.as_map().iter().map(|(k, _)| k.as_str()).collect();
        let hint = if known.is_empty() {
            format!("profile '{profile_name}' has no outputs")
        } else {
            format!("known targets: {}", known.join(", "))
        };
        return Err(ProjectError::new(ProjectErrorKind::Profile(format!(
            "the profile '{profile_name}' does not have a target named '{target_name}'"
        )))
        .at(&file, Some(profile.line))
        .hint(hint));
    };
    let Json::Object(rendered) = render_tree(output, env, &file)? else {
        return Err(ProjectError::new(ProjectErrorKind::Profile(format!(
            "target '{target_name}' of profile '{profile_name}' must be a mapping"
        )))
        .at(&file, Some(output.line)));
    };
    let Some(adapter_type) = rendered
        .get("type")
        .and_then(Json::as_str)
        .map(str::to_string)
    else {
        return Err(ProjectError::new(ProjectErrorKind::Profile(format!(
            "target '{target_name}' of profile '{profile_name}' has no 'type'"
        )))
        .at(&file, Some(output.line))
        .hint("add `type: duckdb` (or postgres, sqlite)"));
    };
    let threads = match rendered.get("threads") {
        Some(Json::Number(n)) => n.as_u64().unwrap_or(1) as u32,
        Some(Json::String(s)) => s.parse().unwrap_or(1),
        _ => 1,
    };
    Ok(Profile {
        profile_name: profile_name.to_string(),
        target_name,
        adapter_type,
        threads,
        output: rendered,
        file,
    })
}

/// The closest of `candidates` to `name`, when close enough to suggest.
pub(crate) fn strsim_best<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(name, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
