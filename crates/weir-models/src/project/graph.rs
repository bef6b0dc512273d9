//! The dependency graph of a project: unique ids with their parents and children, built from
//! each node's `depends_on`, with dbt's cycle error.

use std::collections::{BTreeMap, BTreeSet};

use super::node::{Node, UniqueId};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    pub parents: BTreeMap<UniqueId, BTreeSet<UniqueId>>,
    pub children: BTreeMap<UniqueId, BTreeSet<UniqueId>>,
}

impl Graph {
    /// Edges from every node's `depends_on` (parents not in `nodes` are left out).
    pub fn build<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> Graph {
        let nodes: Vec<&Node> = nodes.into_iter().collect();
        let ids: BTreeSet<&str> = nodes.iter().map(|n| n.unique_id.as_str()).collect();
        let mut graph = Graph::default();
        for node in &nodes {
            graph.parents.entry(node.unique_id.clone()).or_default();
            graph.children.entry(node.unique_id.clone()).or_default();
        }
        for node in &nodes {
            for parent in &node.depends_on {
                if !ids.contains(parent.as_str()) {
                    continue;
                }
                graph
                    .parents
                    .entry(node.unique_id.clone())
                    .or_default()
                    .insert(parent.clone());
                graph
                    .children
                    .entry(parent.clone())
                    .or_default()
                    .insert(node.unique_id.clone());
            }
        }
        graph
    }

    /// Replaces the parents of `id` (parents not in the graph are left out, as in `build`) and
    /// returns the ones it did not have: a cycle this makes runs through one of them.
    pub fn set_parents(&mut self, id: &str, parents: &[UniqueId]) -> Vec<UniqueId> {
        if !self.contains(id) {
            return Vec::new();
        }
        let wanted: BTreeSet<UniqueId> = parents
            .iter()
            .filter(|p| self.contains(p))
            .cloned()
            .collect();
        let old = self
            .parents
            .insert(id.to_string(), wanted.clone())
            .unwrap_or_default();
        for gone in old.difference(&wanted) {
            if let Some(children) = self.children.get_mut(gone) {
                children.remove(id);
            }
        }
        let added: Vec<UniqueId> = wanted.difference(&old).cloned().collect();
        for parent in &added {
            self.children
                .entry(parent.clone())
                .or_default()
                .insert(id.to_string());
        }
        added
    }

    /// Whether one of `targets` is `start` or downstream of it.
    pub fn reaches_any(&self, start: &str, targets: &[UniqueId]) -> bool {
        let targets: BTreeSet<&str> = targets.iter().map(String::as_str).collect();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut stack = vec![start];
        while let Some(id) = stack.pop() {
            if targets.contains(id) {
                return true;
            }
            if !seen.insert(id) {
                continue;
            }
            stack.extend(
                self.children
                    .get(id)
                    .into_iter()
                    .flatten()
                    .map(String::as_str),
            );
        }
        false
    }

    pub fn contains(&self, id: &str) -> bool {
        self.parents.contains_key(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &UniqueId> {
        self.parents.keys()
    }

    /// Ancestors within `depth` steps (`None`: all), not including the start nodes themselves.
    pub fn ancestors(
        &self,
        start: &BTreeSet<UniqueId>,
        depth: Option<usize>,
    ) -> BTreeSet<UniqueId> {
        walk(&self.parents, start, depth)
    }

    pub fn descendants(
        &self,
        start: &BTreeSet<UniqueId>,
        depth: Option<usize>,
    ) -> BTreeSet<UniqueId> {
        walk(&self.children, start, depth)
    }

    /// Every node after all its parents (ties in unique-id order): the order to build in.
    /// Nodes on a cycle are left out (a loaded project has none).
    pub fn topological_order(&self) -> Vec<UniqueId> {
        let mut waiting: BTreeMap<&str, usize> = self
            .parents
            .iter()
            .map(|(id, parents)| (id.as_str(), parents.len()))
            .collect();
        let mut ready: BTreeSet<&str> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(id, _)| *id)
            .collect();
        let mut order = Vec::with_capacity(waiting.len());
        while let Some(id) = ready.pop_first() {
            order.push(id.to_string());
            for child in self.children.get(id).into_iter().flatten() {
                if let Some(count) = waiting.get_mut(child.as_str()) {
                    *count -= 1;
                    if *count == 0 {
                        ready.insert(child.as_str());
                    }
                }
            }
        }
        order
    }

    /// The first cycle found, as a closed path `a --> b --> a`, searching from ids in order.
    pub fn find_cycle(&self) -> Option<Vec<UniqueId>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Visiting,
            Done,
        }
        let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
        for start in self.parents.keys() {
            if marks.contains_key(start.as_str()) {
                continue;
            }
            // Iterative DFS over parents, keeping the path to report the cycle.
            let mut path: Vec<&str> = vec![start];
            let mut iters: Vec<std::collections::btree_set::Iter<'_, UniqueId>> =
                vec![self.parents[start].iter()];
            marks.insert(start, Mark::Visiting);
            while let Some(iter) = iters.last_mut() {
                match iter.next() {
                    Some(next) => match marks.get(next.as_str()) {
                        Some(Mark::Visiting) => {
                            let from = path.iter().position(|p| *p == next.as_str()).unwrap_or(0);
                            // Parents point upstream; report in dependency order (upstream first).
                            let mut cycle: Vec<UniqueId> =
                                path[from..].iter().rev().map(|s| s.to_string()).collect();
                            cycle.insert(0, next.clone());
                            cycle.dedup();
                            let first = cycle[0].clone();
                            if cycle.last() != Some(&first) {
                                cycle.push(first);
                            }
                            return Some(cycle);
                        }
                        Some(Mark::Done) => {}
                        None => {
                            marks.insert(next, Mark::Visiting);
                            path.push(next);
                            iters
                                .push(self.parents.get(next).map(|p| p.iter()).unwrap_or_default());
                        }
                    },
                    None => {
                        iters.pop();
                        if let Some(done) = path.pop() {
                            marks.insert(done, Mark::Done);
                        }
                    }
                }
            }
        }
        None
    }
}

fn walk(
    edges: &BTreeMap<UniqueId, BTreeSet<UniqueId>>,
    start: &BTreeSet<UniqueId>,
    depth: Option<usize>,
) -> BTreeSet<UniqueId> {
    let mut seen = BTreeSet::new();
    let mut frontier: Vec<UniqueId> = start.iter().cloned().collect();
    let mut level = 0;
    while !frontier.is_empty() && depth.is_none_or(|d| level < d) {
        let mut next = Vec::new();
        for id in frontier {
            for neighbour in edges.get(&id).into_iter().flatten() {
                if seen.insert(neighbour.clone()) {
                    next.push(neighbour.clone());
                }
            }
        }
        frontier = next;
        level += 1;
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::node::ResourceType;

    fn model(name: &str, parents: &[&str]) -> Node {
        let mut node = Node::new(ResourceType::Model, "p", name);
        node.depends_on = parents.iter().map(|p| format!("model.p.{p}")).collect();
        node
    }

    #[test]
    fn set_parents_gives_the_graph_a_rebuild_would() {
        let mut nodes = vec![
            model("a", &[]),
            model("b", &["a"]),
            model("c", &["b", "gone"]),
            model("d", &["a"]),
        ];
        let mut graph = Graph::build(&nodes);
        nodes[2].depends_on = vec!["model.p.a".into(), "model.p.d".into(), "x.y".into()];
        let added = graph.set_parents("model.p.c", &nodes[2].depends_on);
        assert_eq!(
            added,
            vec!["model.p.a".to_string(), "model.p.d".to_string()]
        );
        assert_eq!(graph, Graph::build(&nodes));
        assert!(graph.set_parents("model.p.nope", &[]).is_empty());
    }

    #[test]
    fn reaches_any_finds_what_a_new_edge_would_close() {
        let nodes = [model("a", &[]), model("b", &["a"]), model("c", &["b"])];
        let graph = Graph::build(&nodes);
        assert!(graph.reaches_any("model.p.a", &["model.p.c".into()]));
        assert!(graph.reaches_any("model.p.b", &["model.p.b".into()]));
        assert!(!graph.reaches_any("model.p.c", &["model.p.a".into()]));
    }
}
