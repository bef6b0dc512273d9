//! The [`Builder`] that turns a YAML tree into DAG parts: it collects every problem as a
//! [`SpecError`], and reads typed values (strings, counts, durations, trigger rules, values of a
//! declared [`Type`]) from nodes, reporting what does not fit.

use crate::error::{SpecError, SpecErrors};
use crate::keys::{self, Type};
use crate::values;
use crate::yaml::{Kind, Node};
use serde_json::{Map, Value};
use std::time::Duration;
use weir_core::TriggerRule;

pub(crate) struct Builder {
    pub(crate) file: String,
    pub(crate) errors: Vec<SpecError>,
}

impl Builder {
    pub(crate) fn error(
        &mut self,
        line: u32,
        field: Option<String>,
        message: String,
        hint: Option<String>,
    ) {
        self.errors.push(SpecError {
            file: self.file.clone(),
            line,
            column: 0,
            field,
            message,
            hint,
        });
    }

    pub(crate) fn at(&mut self, node: &Node, field: &str, message: String, hint: Option<String>) {
        self.errors.push(SpecError {
            file: self.file.clone(),
            line: node.line,
            column: node.col,
            field: Some(field.to_string()),
            message,
            hint,
        });
    }

    pub(crate) fn finish(mut self) -> SpecErrors {
        self.errors.sort_by_key(|e| (e.line, e.column));
        // A default_args value is checked once per task that takes it: say it once.
        self.errors.dedup();
        SpecErrors(self.errors)
    }

    /// The pairs of a mapping node, or an error.
    pub(crate) fn mapping<'a>(
        &mut self,
        node: &'a Node,
        field: &str,
        what: &str,
    ) -> Option<&'a [(Node, Node)]> {
        match &node.kind {
            Kind::Map(pairs) => Some(pairs),
            _ => {
                self.at(
                    node,
                    field,
                    format!("{what} must be a mapping of keys, not {}", node.type_name()),
                    None,
                );
                None
            }
        }
    }

    /// Reports keys not in `allowed`, with a did-you-mean hint.
    pub(crate) fn unknown_keys(
        &mut self,
        pairs: &[(Node, Node)],
        allowed: &[&str],
        context: &str,
        field: &str,
    ) {
        for (k, _) in pairs {
            let name = k.scalar_text().unwrap_or_default();
            if allowed.contains(&name.as_str()) {
                continue;
            }
            let hint = keys::AIRFLOW_NAMES
                .iter()
                .find(|(airflow, ours)| *airflow == name && allowed.contains(ours))
                .map(|(_, ours)| format!("weir calls it '{ours}'"))
                .or_else(|| did_you_mean(&name, allowed.iter().copied()));
            let field = if field.is_empty() {
                name.clone()
            } else {
                format!("{field}.{name}")
            };
            self.at(k, &field, format!("unknown key '{name}' {context}"), hint);
        }
    }

    /// Checks `node` against a declared type, reporting each mismatch once: `key` is how the
    /// message names the value (`save_to.mode`), `context` where it is (`in task 'load'`).
    /// Returns whether the value fits.
    pub(crate) fn typed(
        &mut self,
        node: &Node,
        ty: &Type,
        key: &str,
        field: &str,
        context: &str,
    ) -> bool {
        let wrong = |b: &mut Self, hint: Option<String>| {
            let shown = match node.scalar_text() {
                Some(text) => format!("'{text}'"),
                None => node.type_name().to_string(),
            };
            b.at(
                node,
                field,
                format!("'{key}' {context} must be {}, not {shown}", ty.describe()),
                hint,
            );
            false
        };
        match (ty, &node.kind) {
            (Type::Any, _) => true,
            (Type::Null, Kind::Null) => true,
            (Type::Str | Type::Template, Kind::Str(_)) => true,
            (Type::Bool, Kind::Bool(_)) => true,
            (Type::Int, Kind::Int(_)) => true,
            (Type::Count(min), Kind::Int(n)) => {
                if n < min {
                    self.at(
                        node,
                        field,
                        format!("'{key}' {context} must be at least {min}, not {n}"),
                        None,
                    );
                    return false;
                }
                true
            }
            (Type::Number, Kind::Int(_) | Kind::Float(_)) => true,
            (Type::Duration, Kind::Int(_) | Kind::Float(_) | Kind::Str(_)) => {
                match values::duration(&node.to_json()) {
                    Ok(_) => true,
                    Err(e) => {
                        self.at(
                            node,
                            field,
                            format!("'{key}' {context} is not a duration: {e}"),
                            Some("use 30s, 5m, 1h30m, 2d or a number of seconds".into()),
                        );
                        false
                    }
                }
            }
            (Type::Enum { names, ignore_case }, Kind::Str(text)) => {
                let known = names
                    .iter()
                    .any(|n| n == text || (*ignore_case && n.eq_ignore_ascii_case(text)));
                if !known {
                    let hint = values::UnknownValue {
                        value: text.clone(),
                        allowed: names,
                    }
                    .hint();
                    self.at(
                        node,
                        field,
                        format!("unknown value '{text}' for '{key}' {context}"),
                        Some(hint),
                    );
                }
                known
            }
            (Type::List(item), Kind::Seq(items)) => {
                let mut ok = true;
                for (i, n) in items.iter().enumerate() {
                    ok &= self.typed(
                        n,
                        item,
                        &format!("{key}[{i}]"),
                        &format!("{field}[{i}]"),
                        context,
                    );
                }
                ok
            }
            (Type::Map(value), Kind::Map(pairs)) => {
                let mut ok = true;
                for (k, v) in pairs {
                    let name = k.scalar_text().unwrap_or_default();
                    ok &= self.typed(
                        v,
                        value,
                        &format!("{key}.{name}"),
                        &format!("{field}.{name}"),
                        context,
                    );
                }
                ok
            }
            (Type::Object(keys), Kind::Map(pairs)) => {
                let allowed: Vec<&str> = keys.iter().map(|k| k.name).collect();
                let before = self.errors.len();
                self.unknown_keys(pairs, &allowed, &format!("in '{key}' {context}"), field);
                for (k, v) in pairs {
                    let name = k.scalar_text().unwrap_or_default();
                    if let Some(decl) = keys.iter().find(|d| d.name == name) {
                        self.typed(
                            v,
                            &decl.ty,
                            &format!("{key}.{name}"),
                            &format!("{field}.{name}"),
                            context,
                        );
                    }
                }
                for decl in keys.iter().filter(|d| d.required) {
                    if !pairs.iter().any(|(k, _)| k.as_str() == Some(decl.name)) {
                        self.at(
                            node,
                            field,
                            format!("'{key}' {context} needs '{}'", decl.name),
                            Some(decl.doc.to_string()),
                        );
                    }
                }
                self.errors.len() == before
            }
            (Type::OneOf(types), _) => {
                // The first alternative of the value's shape decides; a string fits a string.
                match types.iter().find(|t| shape_fits(t, &node.kind)) {
                    Some(t) => self.typed(node, t, key, field, context),
                    None => wrong(self, None),
                }
            }
            (Type::Enum { names, .. }, _) => {
                wrong(self, Some(format!("allowed: {}", names.join(", "))))
            }
            (Type::Duration, _) => wrong(
                self,
                Some("use 30s, 5m, 1h30m, 2d or a number of seconds".into()),
            ),
            _ => wrong(self, None),
        }
    }

    pub(crate) fn string(&mut self, node: &Node, field: &str) -> Option<String> {
        match &node.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => node.scalar_text(),
            _ => {
                self.at(
                    node,
                    field,
                    format!(
                        "'{}' must be a string, not {}",
                        leaf(field),
                        node.type_name()
                    ),
                    None,
                );
                None
            }
        }
    }

    pub(crate) fn string_list(&mut self, node: &Node, field: &str) -> Vec<String> {
        match &node.kind {
            Kind::Str(s) => vec![s.clone()],
            Kind::Seq(items) => items.iter().filter_map(|n| self.string(n, field)).collect(),
            _ => {
                self.at(
                    node,
                    field,
                    format!(
                        "'{}' must be a list of strings, not {}",
                        leaf(field),
                        node.type_name()
                    ),
                    None,
                );
                Vec::new()
            }
        }
    }

    pub(crate) fn boolean(&mut self, node: &Node, field: &str) -> Option<bool> {
        match &node.kind {
            Kind::Bool(b) => Some(*b),
            _ => {
                let shown = node
                    .scalar_text()
                    .unwrap_or_else(|| node.type_name().into());
                self.at(
                    node,
                    field,
                    format!("'{}' must be true or false, not '{shown}'", leaf(field)),
                    None,
                );
                None
            }
        }
    }

    pub(crate) fn integer(&mut self, node: &Node, field: &str) -> Option<i64> {
        match &node.kind {
            Kind::Int(i) => Some(*i),
            _ => {
                let shown = node
                    .scalar_text()
                    .unwrap_or_else(|| node.type_name().into());
                self.at(
                    node,
                    field,
                    format!("'{}' must be a whole number, not '{shown}'", leaf(field)),
                    None,
                );
                None
            }
        }
    }

    pub(crate) fn count(&mut self, node: &Node, field: &str, min: i64) -> Option<u32> {
        let n = self.integer(node, field)?;
        if n < min || n > u32::MAX as i64 {
            self.at(
                node,
                field,
                format!("'{}' must be at least {min}, not {n}", leaf(field)),
                None,
            );
            return None;
        }
        Some(n as u32)
    }

    pub(crate) fn duration(&mut self, node: &Node, field: &str) -> Option<Duration> {
        let text = match &node.kind {
            Kind::Int(i) if *i >= 0 => return Some(Duration::from_secs(*i as u64)),
            Kind::Float(f) if *f >= 0.0 => return Some(Duration::from_secs_f64(*f)),
            Kind::Str(s) => s.clone(),
            _ => node
                .scalar_text()
                .unwrap_or_else(|| node.type_name().into()),
        };
        match weir_core::parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.at(
                    node,
                    field,
                    format!("'{}' is not a duration: {e}", leaf(field)),
                    Some("use 30s, 5m, 1h30m, 2d or a number of seconds".into()),
                );
                None
            }
        }
    }

    pub(crate) fn object(&mut self, node: &Node, field: &str) -> Map<String, Value> {
        match node.to_json() {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            _ => {
                self.at(
                    node,
                    field,
                    format!(
                        "'{}' must be a mapping, not {}",
                        leaf(field),
                        node.type_name()
                    ),
                    None,
                );
                Map::new()
            }
        }
    }

    pub(crate) fn trigger_rule(&mut self, node: &Node, field: &str) -> Option<TriggerRule> {
        let text = self.string(node, field)?;
        match text.parse::<TriggerRule>() {
            Ok(rule) => Some(rule),
            Err(_) => {
                let names = TriggerRule::ALL.iter().map(|r| r.as_str());
                let hint = did_you_mean(&text, names.clone()).unwrap_or_else(|| {
                    format!(
                        "the trigger rules are {}",
                        names.collect::<Vec<_>>().join(", ")
                    )
                });
                self.at(
                    node,
                    field,
                    format!("unknown trigger_rule '{text}'"),
                    Some(hint),
                );
                None
            }
        }
    }
}

fn leaf(field: &str) -> &str {
    field.rsplit('.').next().unwrap_or(field)
}

pub(crate) fn field_node<'a>(item: &'a Node, name: &str) -> Option<&'a Node> {
    match &item.kind {
        Kind::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v),
        _ => None,
    }
}

pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Whether a value has the outer shape of `ty` (a string for a string, a list for a list).
fn shape_fits(ty: &Type, kind: &Kind) -> bool {
    matches!(
        (ty, kind),
        (Type::Any, _)
            | (Type::Null, Kind::Null)
            | (Type::Str | Type::Template | Type::Enum { .. }, Kind::Str(_))
            | (Type::Bool, Kind::Bool(_))
            | (Type::Int | Type::Count(_), Kind::Int(_))
            | (Type::Number, Kind::Int(_) | Kind::Float(_))
            | (Type::Duration, Kind::Int(_) | Kind::Float(_) | Kind::Str(_))
            | (Type::List(_), Kind::Seq(_))
            | (Type::Map(_) | Type::Object(_), Kind::Map(_))
    ) || matches!((ty, kind), (Type::OneOf(types), _) if types.iter().any(|t| shape_fits(t, kind)))
}

/// `did you mean 'x'?` for the closest candidate, when it is close enough.
pub(crate) fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<String> {
    let wrong_lower = wrong.to_ascii_lowercase();
    candidates
        .map(|c| {
            (
                strsim::jaro_winkler(&wrong_lower, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean '{c}'?"))
}
