//! The small Jinja dbt applies while parsing, before models are compiled: `env_var()`, `var()`
//! and `target` in `profiles.yml`, `dbt_project.yml` config trees and property `config:`
//! blocks. Hooks are left as written (dbt renders them when they run).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::yaml::{Yaml, YamlValue};

/// Keys whose values stay unrendered Jinja.
const UNRENDERED: &[&str] = &[
    "pre-hook",
    "post-hook",
    "+pre-hook",
    "+post-hook",
    "pre_hook",
    "post_hook",
    "+pre_hook",
    "+post_hook",
];

/// A minijinja environment with dbt's parse-time functions.
pub struct ParseRenderer {
    jinja: minijinja::Environment<'static>,
}

impl ParseRenderer {
    /// `env` is the environment `env_var()` reads; `vars` what `var()` reads; `target` the
    /// rendered profile output (absent while the profile itself is being read).
    pub fn new(
        env: BTreeMap<String, String>,
        vars: Map<String, Json>,
        target: Option<Map<String, Json>>,
    ) -> ParseRenderer {
        let mut jinja = minijinja::Environment::new();
        let env = Arc::new(env);
        jinja.add_function(
            "env_var",
            move |name: String,
                  default: Option<minijinja::Value>|
                  -> Result<minijinja::Value, minijinja::Error> {
                match (env.get(&name), default) {
                    (Some(value), _) => Ok(minijinja::Value::from(value.clone())),
                    (None, Some(default)) => Ok(default),
                    (None, None) => Err(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("env var required but not provided: '{name}'"),
                    )),
                }
            },
        );
        let vars = Arc::new(vars);
        jinja.add_function(
            "var",
            move |name: String,
                  default: Option<minijinja::Value>|
                  -> Result<minijinja::Value, minijinja::Error> {
                match (vars.get(&name), default) {
                    (Some(value), _) => Ok(minijinja::Value::from(minijinja::value::Serde(
                        value.clone(),
                    ))),
                    (None, Some(default)) => Ok(default),
                    (None, None) => Err(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("required var '{name}' not found in config"),
                    )),
                }
            },
        );
        for filter in ["as_text", "as_number", "as_bool", "as_native"] {
            jinja.add_filter(filter, |v: minijinja::Value| v);
        }
        if let Some(target) = target {
            jinja.add_global(
                "target",
                minijinja::Value::from(minijinja::value::Serde(target)),
            );
        }
        ParseRenderer { jinja }
    }

    /// Renders one value; text without Jinja is returned as is. `as_number`/`as_bool` (and a
    /// rendered `true`/`false` from `var()`) give native values, as dbt's native rendering.
    pub fn render_str(&self, text: &str) -> Result<Json, String> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(Json::String(text.to_string()));
        }
        let rendered = self.jinja.render_str(text, ()).map_err(|e| {
            e.detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string())
        })?;
        let trimmed = rendered.trim();
        if text.contains("as_number") {
            if let Ok(n) = trimmed.parse::<i64>() {
                return Ok(Json::from(n));
            }
            if let Some(n) = trimmed
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                return Ok(Json::Number(n));
            }
        }
        if text.contains("as_bool") || text.contains("var(") || text.contains("target") {
            match trimmed {
                "true" | "True" => return Ok(Json::Bool(true)),
                "false" | "False" => return Ok(Json::Bool(false)),
                _ => {}
            }
        }
        Ok(Json::String(rendered))
    }

    /// Renders every string of a YAML tree in place (hooks excepted); errors come with the
    /// line of the value.
    pub fn render_yaml(&self, node: &mut Yaml) -> Vec<(usize, String)> {
        let mut errors = Vec::new();
        self.render_yaml_inner(node, &mut errors);
        errors
    }

    fn render_yaml_inner(&self, node: &mut Yaml, errors: &mut Vec<(usize, String)>) {
        match &mut node.value {
            YamlValue::Str(text) => match self.render_str(text) {
                Ok(Json::String(s)) => *text = s,
                Ok(Json::Bool(b)) => node.value = YamlValue::Bool(b),
                Ok(Json::Number(n)) => {
                    node.value = match n.as_i64() {
                        Some(i) => YamlValue::Int(i),
                        None => YamlValue::Float(n.as_f64().unwrap_or_default()),
                    }
                }
                Ok(_) => {}
                Err(e) => errors.push((node.line, e)),
            },
            YamlValue::Seq(items) => {
                for item in items {
                    self.render_yaml_inner(item, errors);
                }
            }
            YamlValue::Map(entries) => {
                for (key, value) in entries {
                    if !UNRENDERED.contains(&key.as_str()) {
                        self.render_yaml_inner(value, errors);
                    }
                }
            }
            _ => {}
        }
    }

    /// Renders the strings of a config layer in place (hooks excepted).
    pub fn render_config(&self, config: &mut Map<String, Json>) -> Result<(), String> {
        for (key, value) in config.iter_mut() {
            if !UNRENDERED.contains(&key.as_str()) {
                self.render_json(value)?;
            }
        }
        Ok(())
    }

    fn render_json(&self, value: &mut Json) -> Result<(), String> {
        match value {
            Json::String(text) => *value = self.render_str(text)?,
            Json::Array(items) => {
                for item in items {
                    self.render_json(item)?;
                }
            }
            Json::Object(map) => {
                for item in map.values_mut() {
                    self.render_json(item)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
