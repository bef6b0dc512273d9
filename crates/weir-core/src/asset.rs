//! Asset conditions: which asset updates a DAG scheduled on assets waits for
//! (`schedule: {assets: [a, b]}`, `{assets: {any: [a, {all: [b, c]}]}}`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A condition over assets: an asset is met when it has an event queued for the DAG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetCondition {
    Asset(String),
    All(Vec<AssetCondition>),
    Any(Vec<AssetCondition>),
}

impl AssetCondition {
    /// Whether the assets with queued events satisfy the condition.
    pub fn is_met(&self, updated: &BTreeSet<String>) -> bool {
        match self {
            AssetCondition::Asset(name) => updated.contains(name),
            AssetCondition::All(items) => items.iter().all(|c| c.is_met(updated)),
            AssetCondition::Any(items) => items.iter().any(|c| c.is_met(updated)),
        }
    }

    /// Every asset named in the condition, sorted, once each.
    pub fn assets(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut BTreeSet<String>) {
        match self {
            AssetCondition::Asset(name) => {
                out.insert(name.clone());
            }
            AssetCondition::All(items) | AssetCondition::Any(items) => {
                items.iter().for_each(|c| c.collect(out))
            }
        }
    }

    /// For listings: `all(a, any(b, c))`.
    pub fn text(&self) -> String {
        match self {
            AssetCondition::Asset(name) => name.clone(),
            AssetCondition::All(items) | AssetCondition::Any(items) => {
                let op = if matches!(self, AssetCondition::All(_)) {
                    "all"
                } else {
                    "any"
                };
                let inner: Vec<String> = items.iter().map(AssetCondition::text).collect();
                format!("{op}({})", inner.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AssetCondition::{self, *};

    fn set(names: &[&str]) -> std::collections::BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn conditions_combine_as_airflow_asset_expressions() {
        let a = || Asset("a".into());
        let b = || Asset("b".into());
        let c = || Asset("c".into());
        let cases: &[(AssetCondition, &[&str], bool)] = &[
            (All(vec![a(), b()]), &["a"], false),
            (All(vec![a(), b()]), &["a", "b"], true),
            (Any(vec![a(), b()]), &["b"], true),
            (Any(vec![a(), b()]), &[], false),
            (Any(vec![a(), All(vec![b(), c()])]), &["b"], false),
            (Any(vec![a(), All(vec![b(), c()])]), &["b", "c"], true),
        ];
        for (cond, updated, met) in cases {
            assert_eq!(
                cond.is_met(&set(updated)),
                *met,
                "{} with {updated:?}",
                cond.text()
            );
        }
        assert_eq!(
            Any(vec![a(), All(vec![b(), c()])]).text(),
            "any(a, all(b, c))"
        );
    }
}
