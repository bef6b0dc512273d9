//! `profiles.yml`: profile → `target:` default → `outputs:`, with `{{ env_var('X', 'default') }}`
//! rendered by the parse-time renderer (`env_var`, `var` from `--vars`, dbt's `as_*` filters:
//! the full dbt context does not exist before the profile is known).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

use super::error::{ProjectError, ProjectErrorKind};
use super::render::ParseRenderer;
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

fn render_tree(node: &Yaml, renderer: &ParseRenderer, file: &Path) -> Result<Json, ProjectError> {
    Ok(match &node.value {
        YamlValue::Str(s) => renderer.render_str(s).map_err(|detail| {
            ProjectError::new(ProjectErrorKind::Profile(detail))
                .at(file, Some(node.line))
                .hint("set the variable, or give env_var a default: env_var('NAME', 'default')")
        })?,
        YamlValue::Seq(items) => Json::Array(
            items
                .iter()
                .map(|i| render_tree(i, renderer, file))
                .collect::<Result<_, _>>()?,
        ),
        YamlValue::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                map.insert(k.clone(), render_tree(v, renderer, file)?);
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
    env: &BTreeMap<String, String>,
    vars: &Map<String, Json>,
) -> Result<Profile, ProjectError> {
    let renderer = ParseRenderer::new(env.clone(), vars.clone(), None);
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
            Some(t) => match render_tree(t, &renderer, &file)? {
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
    let Json::Object(rendered) = render_tree(output, &renderer, &file)? else {
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
