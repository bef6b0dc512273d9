//! A layered layout for the graph view (Sugiyama's scheme, cut short): each node's layer is
//! the longest path to it from a source, then a few barycenter sweeps (down and up) order
//! the nodes of each layer to shorten and uncross edges, then each node takes the slot
//! nearest the mean of its upstream nodes' slots that does not overlap the node before it (so
//! children sit beside their parents and a wide layer does not push its neighbours' nodes
//! away). Linear in nodes and edges per sweep (plus a sort per layer), so a DAG of thousands
//! of tasks lays out in milliseconds.

/// The result: each node's layer, the nodes of each layer from top to bottom, and each
/// node's slot across the layers (0, 1, 2.5, ...: a node is one slot tall).
#[derive(Debug, Clone, PartialEq)]
pub struct Layered {
    pub layer: Vec<usize>,
    pub layers: Vec<Vec<usize>>,
    pub slot: Vec<f64>,
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
    let mut slot = vec![0f64; n];
    for nodes in &layers {
        let mut free = 0f64;
        for &v in nodes {
            let want = if preds[v].is_empty() {
                free
            } else {
                preds[v].iter().map(|&u| slot[u]).sum::<f64>() / preds[v].len() as f64
            };
            slot[v] = want.max(free);
            free = slot[v] + 1.0;
        }
    }
    Layered {
        layer,
        layers,
        slot,
    }
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
        // The root is at the top; no two nodes of a layer overlap.
        assert_eq!(l.slot[0], 0.0);
        for nodes in &l.layers {
            for pair in nodes.windows(2) {
                assert!(l.slot[pair[1]] >= l.slot[pair[0]] + 1.0, "{pair:?}");
            }
        }
    }

    #[test]
    fn a_join_sits_between_its_parents() {
        // 0 → 1, 0 → 2, 1 → 3, 2 → 3
        let l = layout(4, &[(0, 1), (0, 2), (1, 3), (2, 3)], 4);
        assert_eq!(l.slot, vec![0.0, 0.0, 1.0, 0.5]);
    }
}
