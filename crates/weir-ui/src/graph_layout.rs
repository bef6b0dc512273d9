//! A layered layout for the graph view (Sugiyama's scheme, cut short): each node's layer is
//! the longest path to it from a source, then a few barycenter sweeps (down and up) order
//! the nodes of each layer to shorten and uncross edges. Linear in nodes and edges per sweep
//! (plus a sort per layer), so a DAG of thousands of tasks lays out in milliseconds.

/// The result: each node's layer, and the nodes of each layer from top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layered {
    pub layer: Vec<usize>,
    pub layers: Vec<Vec<usize>>,
}

impl Layered {
    /// The position of each node within its layer.
    pub fn positions(&self) -> Vec<usize> {
        let mut pos = vec![0; self.layer.len()];
        for nodes in &self.layers {
            for (i, &n) in nodes.iter().enumerate() {
                pos[n] = i;
            }
        }
        pos
    }
}

/// Lays out `n` nodes with `edges` (from, to), which must form no cycle (nodes on a cycle end
/// up in layer 0 rather than looping). `sweeps` rounds of barycenter ordering.
pub fn layout(n: usize, edges: &[(usize, usize)], sweeps: usize) -> Layered {
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indegree = vec![0usize; n];
    for &(a, b) in edges {
        if a < n && b < n && a != b {
            preds[b].push(a);
            succs[a].push(b);
            indegree[b] += 1;
        }
    }
    // Longest path from a source, in topological order (Kahn).
    let mut layer = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).filter(|&v| indegree[v] == 0).rev().collect();
    while let Some(v) = ready.pop() {
        for &w in &succs[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            indegree[w] -= 1;
            if indegree[w] == 0 {
                ready.push(w);
            }
        }
    }
    let depth = layer.iter().copied().max().map_or(0, |d| d + 1);
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for v in 0..n {
        layers[layer[v]].push(v);
    }
    let mut pos = vec![0f64; n];
    for nodes in &layers {
        for (i, &v) in nodes.iter().enumerate() {
            pos[v] = i as f64;
        }
    }
    for _ in 0..sweeps {
        for nodes in layers.iter_mut().skip(1) {
            order_by_barycenter(nodes, &preds, &mut pos);
        }
        for nodes in layers.iter_mut().rev().skip(1) {
            order_by_barycenter(nodes, &succs, &mut pos);
        }
    }
    Layered { layer, layers }
}

/// Sorts one layer by the mean position of each node's neighbours in `adjacent`; a node
/// without neighbours keeps its place.
fn order_by_barycenter(nodes: &mut [usize], adjacent: &[Vec<usize>], pos: &mut [f64]) {
    let mut keyed: Vec<(f64, usize)> = nodes
        .iter()
        .map(|&v| {
            let around = &adjacent[v];
            let key = if around.is_empty() {
                pos[v]
            } else {
                around.iter().map(|&u| pos[u]).sum::<f64>() / around.len() as f64
            };
            (key, v)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (i, (_, v)) in keyed.into_iter().enumerate() {
        nodes[i] = v;
        pos[v] = i as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_longest_paths_from_a_source() {
        // 0 → 1 → 3, 0 → 3, 2 → 3
        let l = layout(4, &[(0, 1), (1, 3), (0, 3), (2, 3)], 4);
        assert_eq!(l.layer, vec![0, 1, 0, 2]);
        assert_eq!(l.layers.len(), 3);
    }

    #[test]
    fn barycenter_sweeps_uncross_two_chains() {
        // Layer 0: a=0, b=1; layer 1: c=2 (from b), d=3 (from a) → c and d swap.
        let l = layout(4, &[(1, 2), (0, 3)], 2);
        assert_eq!(l.layers[1], vec![3, 2]);
    }

    #[test]
    fn a_thousand_tasks_lay_out_with_every_edge_pointing_down_a_layer() {
        let n = 1000;
        let edges: Vec<(usize, usize)> = (1..n).map(|i| ((i - 1) / 3, i)).collect();
        let l = layout(n, &edges, 4);
        for &(a, b) in &edges {
            assert!(l.layer[a] < l.layer[b]);
        }
        let placed: usize = l.layers.iter().map(Vec::len).sum();
        assert_eq!(placed, n);
    }
}
