//! YAML with line numbers: saphyr's marked nodes turned into a small tree the readers walk, so
//! every "bad value" error can name `file:line`. Values convert to `serde_json::Value` for configs,
//! test arguments and anything else handed on unchanged.

use std::path::Path;

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};
use serde_json::Value as Json;

use super::error::{ProjectError, ProjectErrorKind};

/// A YAML node and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Yaml {
    pub line: usize,
    pub value: YamlValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum YamlValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Yaml>),
    /// Keys in file order; non-string keys are kept as their text (`true`, `1`).
    Map(Vec<(String, Yaml)>),
}

static NULL: Yaml = Yaml {
    line: 0,
    value: YamlValue::Null,
};

impl Yaml {
    /// Parses one document; an empty file is `Null`. Syntax errors carry the line.
    pub fn parse(text: &str, file: &Path) -> Result<Yaml, ProjectError> {
        let docs = MarkedYamlOwned::load_from_str(text).map_err(|e| {
            ProjectError::new(ProjectErrorKind::Yaml(e.info().to_string()))
                .at(file, Some(e.marker().line()))
        })?;
        Ok(docs.into_iter().next().map(convert).unwrap_or(Yaml {
            line: 1,
            value: YamlValue::Null,
        }))
    }

    pub fn get(&self, key: &str) -> Option<&Yaml> {
        match &self.value {
            YamlValue::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Like `get` but a missing key reads as null, to chain lookups.
    pub fn at(&self, key: &str) -> &Yaml {
        self.get(key).unwrap_or(&NULL)
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, YamlValue::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            YamlValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar as text (numbers and booleans too), as dbt reads names like `v: 2`.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            YamlValue::Str(s) => Some(s.clone()),
            YamlValue::Int(i) => Some(i.to_string()),
            YamlValue::Float(f) => Some(f.to_string()),
            YamlValue::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            YamlValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> &[Yaml] {
        match &self.value {
            YamlValue::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn as_map(&self) -> &[(String, Yaml)] {
        match &self.value {
            YamlValue::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn is_map(&self) -> bool {
        matches!(self.value, YamlValue::Map(_))
    }

    /// A string or a list of strings (dbt accepts both for paths, tags, hooks).
    pub fn string_list(&self) -> Vec<String> {
        match &self.value {
            YamlValue::Seq(items) => items.iter().filter_map(Yaml::scalar_text).collect(),
            YamlValue::Null => Vec::new(),
            _ => self.scalar_text().into_iter().collect(),
        }
    }

    pub fn to_json(&self) -> Json {
        match &self.value {
            YamlValue::Null => Json::Null,
            YamlValue::Bool(b) => Json::Bool(*b),
            YamlValue::Int(i) => Json::from(*i),
            YamlValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            YamlValue::Str(s) => Json::String(s.clone()),
            YamlValue::Seq(items) => Json::Array(items.iter().map(Yaml::to_json).collect()),
            YamlValue::Map(entries) => Json::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// A short name of the node's type for "expected a mapping, got a list" messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            YamlValue::Null => "null",
            YamlValue::Bool(_) => "a boolean",
            YamlValue::Int(_) | YamlValue::Float(_) => "a number",
            YamlValue::Str(_) => "a string",
            YamlValue::Seq(_) => "a list",
            YamlValue::Map(_) => "a mapping",
        }
    }
}

fn scalar(s: ScalarOwned) -> YamlValue {
    match s {
        ScalarOwned::Null => YamlValue::Null,
        ScalarOwned::Boolean(b) => YamlValue::Bool(b),
        ScalarOwned::Integer(i) => YamlValue::Int(i),
        ScalarOwned::FloatingPoint(f) => YamlValue::Float(f.into_inner()),
        ScalarOwned::String(s) => YamlValue::Str(s),
    }
}

fn key_text(node: &Yaml) -> String {
    node.scalar_text().unwrap_or_else(|| match &node.value {
        YamlValue::Null => "null".to_string(),
        _ => format!("{:?}", node.to_json()),
    })
}

fn convert(node: MarkedYamlOwned) -> Yaml {
    let line = node.span.start.line();
    let value = match node.data {
        YamlDataOwned::Value(s) => scalar(s),
        YamlDataOwned::Representation(text, _, _) => YamlValue::Str(text),
        YamlDataOwned::Sequence(items) => YamlValue::Seq(items.into_iter().map(convert).collect()),
        YamlDataOwned::Mapping(entries) => YamlValue::Map(
            entries
                .into_iter()
                .map(|(k, v)| (key_text(&convert(k)), convert(v)))
                .collect(),
        ),
        YamlDataOwned::Tagged(_, inner) => return convert(*inner),
        YamlDataOwned::Alias(_) | YamlDataOwned::BadValue => YamlValue::Null,
    };
    Yaml { line, value }
}
