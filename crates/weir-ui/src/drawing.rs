//! A graph drawn as SVG, left to right: nodes placed by [`crate::graph_layout`], edges as
//! curves between them. The DAG's graph view and the models' lineage both draw with it
//! (`templates/drawing.html`).

use askama::Template;

const NODE_W: f64 = 180.0;
const NODE_H: f64 = 30.0;
const GAP_X: f64 = 70.0;
const GAP_Y: f64 = 14.0;
const MARGIN: f64 = 10.0;
const LABEL_CHARS: usize = 22;

/// What the caller knows of a node.
pub struct NodeIn {
    pub name: String,
    /// The hover text.
    pub title: String,
    /// A CSS state class (`s-<state>`): a task state, or a kind of dbt node.
    pub state: &'static str,
    /// Where a click goes; empty: nowhere.
    pub url: String,
}

pub struct Placed {
    pub name: String,
    pub x: f64,
    pub y: f64,
    pub label: String,
    pub title: String,
    pub state: &'static str,
    pub url: String,
    /// Drawn with a heavier border (the node a lineage is centred on).
    pub focus: bool,
}

#[derive(Template)]
#[template(path = "drawing.html")]
pub struct Drawing {
    pub nodes: Vec<Placed>,
    pub edges: Vec<String>,
    pub width: f64,
    pub height: f64,
    pub node_w: f64,
    pub node_h: f64,
}

// A template: written into its page as rendered, its own fields escaped as it renders.
impl askama::filters::HtmlSafe for Drawing {}

fn label(name: &str) -> String {
    if name.chars().count() > LABEL_CHARS {
        let cut: String = name.chars().take(LABEL_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        name.to_string()
    }
}

/// Lays out `nodes` with `edges` (from, to) by index and draws them; `focus` marks one node.
pub fn draw(nodes: Vec<NodeIn>, edges: &[(usize, usize)], focus: Option<usize>) -> Drawing {
    let laid = crate::graph_layout::layout(nodes.len(), edges, 4);
    let xy = |v: usize| {
        (
            MARGIN + laid.layer[v] as f64 * (NODE_W + GAP_X),
            MARGIN + laid.slot[v] * (NODE_H + GAP_Y),
        )
    };
    let slots = laid.slot.iter().fold(0f64, |a, &b| a.max(b + 1.0));
    let paths = edges
        .iter()
        .filter(|&&(a, b)| a < nodes.len() && b < nodes.len() && a != b)
        .map(|&(a, b)| {
            let (ax, ay) = xy(a);
            let (bx, by) = xy(b);
            let (x1, y1) = (ax + NODE_W, ay + NODE_H / 2.0);
            let (x2, y2) = (bx, by + NODE_H / 2.0);
            let mid = (x2 - x1) / 2.0;
            format!(
                "M{x1:.1} {y1:.1} C{:.1} {y1:.1}, {:.1} {y2:.1}, {x2:.1} {y2:.1}",
                x1 + mid,
                x2 - mid
            )
        })
        .collect();
    let placed = nodes
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            let (x, y) = xy(i);
            Placed {
                x,
                y,
                label: label(&n.name),
                name: n.name,
                title: n.title,
                state: n.state,
                url: n.url,
                focus: focus == Some(i),
            }
        })
        .collect();
    let width = MARGIN * 2.0 + laid.layers.len() as f64 * (NODE_W + GAP_X) - GAP_X;
    let height = MARGIN * 2.0 + slots * (NODE_H + GAP_Y) - GAP_Y;
    Drawing {
        nodes: placed,
        edges: paths,
        width: width.max(NODE_W),
        height: height.max(NODE_H),
        node_w: NODE_W,
        node_h: NODE_H,
    }
}
