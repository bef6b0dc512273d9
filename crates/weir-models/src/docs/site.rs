//! The static docs site, `target/index.html`: one server-rendered page from the manifest's
//! nodes and the catalog's column types. Every model, seed, snapshot and source has its own
//! section (description, columns with type, description and tests, its tests, what it depends
//! on and what depends on it, its code), and the lineage graph is an inline SVG whose boxes
//! link to those sections. The only script filters the side list; nothing loads from the
//! network.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde_json::Value as Json;

use crate::project::{Node, Project, ResourceType, UniqueId};
use crate::run::compile::materialized;

/// `&`, `<`, `>`, `"` and `'` as HTML entities.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The nodes the site documents, in the order of its side list.
fn documented(project: &Project) -> Vec<&Node> {
    let order = [
        ResourceType::Source,
        ResourceType::Seed,
        ResourceType::Model,
        ResourceType::Snapshot,
    ];
    let mut out = Vec::new();
    for kind in order {
        let mut nodes: Vec<&Node> = project.nodes_of(kind).collect();
        nodes.sort_by(|a, b| a.fqn.cmp(&b.fqn));
        out.extend(nodes);
    }
    out
}

fn title(node: &Node) -> String {
    match &node.source {
        Some(s) => format!("{}.{}", s.source_name, node.name),
        None => node.name.clone(),
    }
}

/// A description with `{{ doc('name') }}` replaced by the docs block it names.
fn describe(project: &Project, text: &str) -> String {
    let Ok(re) = regex::Regex::new(
        r#"\{\{\s*doc\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?\)\s*\}\}"#,
    ) else {
        return text.to_string();
    };
    re.replace_all(text, |caps: &regex::Captures| {
        let (package, name) = match caps.get(2) {
            Some(second) => (Some(&caps[1]), second.as_str()),
            None => (None, &caps[1]),
        };
        project
            .docs
            .values()
            .find(|d| d.name == name && package.is_none_or(|p| p == d.package_name))
            .map(|d| d.block_contents.trim().to_string())
            .unwrap_or_else(|| caps[0].to_string())
    })
    .into_owned()
}

fn description_html(project: &Project, text: &str) -> String {
    let text = describe(project, text);
    if text.trim().is_empty() {
        return "<p class=\"none\">No description.</p>".to_string();
    }
    format!("<div class=\"description\">{}</div>", escape(text.trim()))
}

/// What a test checks, in a few words: `unique`, `accepted_values`, the singular test's name.
fn test_label(test: &Node) -> String {
    match &test.test_metadata {
        Some(meta) => match &meta.namespace {
            Some(ns) => format!("{ns}.{}", meta.name),
            None => meta.name.clone(),
        },
        None => test.name.clone(),
    }
}

fn link(project: &Project, id: &str) -> String {
    match project.nodes.get(id) {
        Some(node) => format!("<a href=\"#{}\">{}</a>", escape(id), escape(&title(node))),
        None => escape(id),
    }
}

/// Columns by name: the catalog's (in warehouse order, with types) then documented ones the
/// warehouse does not have.
fn columns(node: &Node, catalog: &Json) -> Vec<(String, String, String)> {
    let section = if node.resource_type == ResourceType::Source {
        "sources"
    } else {
        "nodes"
    };
    let mut out: Vec<(String, String, String)> = Vec::new();
    if let Some(Json::Object(cols)) = catalog
        .get(section)
        .and_then(|s| s.get(&node.unique_id))
        .and_then(|e| e.get("columns"))
    {
        let mut cols: Vec<(&String, &Json)> = cols.iter().collect();
        cols.sort_by_key(|(_, c)| c.get("index").and_then(Json::as_i64).unwrap_or(0));
        for (name, col) in cols {
            let kind = col
                .get("type")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string();
            let description = node
                .columns
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, c)| c.description.clone())
                .unwrap_or_default();
            out.push((name.clone(), kind, description));
        }
    }
    for (name, col) in &node.columns {
        if !out.iter().any(|(n, _, _)| n.eq_ignore_ascii_case(name)) {
            out.push((
                name.clone(),
                col.data_type.clone().unwrap_or_default(),
                col.description.clone(),
            ));
        }
    }
    out
}

/// The lineage graph: a column per depth, a box per node, a curve per dependency.
fn lineage_svg(project: &Project, nodes: &[&Node]) -> String {
    const BOX_W: usize = 190;
    const BOX_H: usize = 30;
    const GAP_X: usize = 70;
    const GAP_Y: usize = 16;
    let shown: HashMap<&str, &Node> = nodes.iter().map(|n| (n.unique_id.as_str(), *n)).collect();
    let parents = |id: &str| -> Vec<&str> {
        project
            .graph
            .parents
            .get(id)
            .into_iter()
            .flatten()
            .filter(|p| shown.contains_key(p.as_str()))
            .map(String::as_str)
            .collect()
    };
    let mut depth: HashMap<&str, usize> = HashMap::new();
    for id in project.graph.topological_order() {
        let Some(node) = shown.get(id.as_str()) else {
            continue;
        };
        let d = parents(&node.unique_id)
            .iter()
            .filter_map(|p| depth.get(p))
            .map(|d| d + 1)
            .max()
            .unwrap_or(0);
        depth.insert(node.unique_id.as_str(), d);
    }
    let mut layers: BTreeMap<usize, Vec<&Node>> = BTreeMap::new();
    for node in nodes {
        let d = depth.get(node.unique_id.as_str()).copied().unwrap_or(0);
        layers.entry(d).or_default().push(node);
    }
    let mut position: HashMap<&str, (usize, usize)> = HashMap::new();
    for (d, layer) in &mut layers {
        layer.sort_by_key(|n| title(n));
        for (i, node) in layer.iter().enumerate() {
            position.insert(
                node.unique_id.as_str(),
                (10 + d * (BOX_W + GAP_X), 10 + i * (BOX_H + GAP_Y)),
            );
        }
    }
    let width = 20 + layers.len().max(1) * (BOX_W + GAP_X);
    let height = 20 + layers.values().map(Vec::len).max().unwrap_or(1) * (BOX_H + GAP_Y);
    let mut svg = format!(
        "<svg class=\"lineage\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"lineage graph\">\n"
    );
    for node in nodes {
        let Some(&(x, y)) = position.get(node.unique_id.as_str()) else {
            continue;
        };
        for parent in parents(&node.unique_id) {
            let Some(&(px, py)) = position.get(parent) else {
                continue;
            };
            let (x1, y1) = (px + BOX_W, py + BOX_H / 2);
            let (x2, y2) = (x, y + BOX_H / 2);
            let mid = (x1 + x2) / 2;
            let _ = writeln!(
                svg,
                "  <path class=\"edge\" data-from=\"{}\" data-to=\"{}\" d=\"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}\"/>",
                escape(parent),
                escape(&node.unique_id)
            );
        }
    }
    for node in nodes {
        let Some(&(x, y)) = position.get(node.unique_id.as_str()) else {
            continue;
        };
        let mut label = title(node);
        if label.chars().count() > 26 {
            label = label.chars().take(25).collect::<String>() + "…";
        }
        // `docs: {node_color: ...}` of the node's properties or its config (`+docs:`).
        let color = node
            .docs
            .get("node_color")
            .or_else(|| node.config.get("docs").and_then(|d| d.get("node_color")))
            .and_then(Json::as_str)
            .map(|c| format!(" style=\"fill:{}\"", escape(c)))
            .unwrap_or_default();
        let _ = writeln!(
            svg,
            "  <a href=\"#{id}\"><g class=\"node {kind}\"><title>{id}</title><rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"5\"{color}/><text x=\"{tx}\" y=\"{ty}\">{label}</text></g></a>",
            id = escape(&node.unique_id),
            kind = node.resource_type.as_str(),
            tx = x + 10,
            ty = y + 20,
            label = escape(&label),
        );
    }
    svg.push_str("</svg>");
    svg
}

fn node_section(project: &Project, catalog: &Json, node: &Node) -> String {
    let mut s = String::new();
    let id = escape(&node.unique_id);
    let _ = writeln!(s, "<section class=\"node\" id=\"{id}\">");
    let kind = match node.resource_type {
        ResourceType::Model => format!("{} model", materialized(node)),
        other => other.as_str().to_string(),
    };
    let _ = writeln!(
        s,
        "<h2>{} <span class=\"kind\">{}</span></h2>",
        escape(&title(node)),
        escape(&kind)
    );
    let relation = match &node.source {
        Some(src) => format!(
            "{}.{}",
            node.schema.clone().unwrap_or_default(),
            src.identifier
        ),
        None => format!(
            "{}.{}",
            node.schema.clone().unwrap_or_default(),
            node.alias.clone().unwrap_or_else(|| node.name.clone())
        ),
    };
    let _ = writeln!(
        s,
        "<p class=\"meta\"><code>{id}</code> · relation <code>{}</code> · <code>{}</code></p>",
        escape(&relation),
        escape(&node.original_file_path)
    );
    s.push_str(&description_html(project, &node.description));

    let tests = project.tests_of(&node.unique_id);
    let cols = columns(node, catalog);
    if !cols.is_empty() {
        s.push_str("<h3>Columns</h3>\n<table class=\"columns\"><thead><tr><th>Column</th><th>Type</th><th>Description</th><th>Tests</th></tr></thead><tbody>\n");
        for (name, kind, description) in &cols {
            let col_tests: Vec<String> = tests
                .iter()
                .filter(|t| {
                    t.column_name
                        .as_deref()
                        .is_some_and(|c| c.eq_ignore_ascii_case(name))
                })
                .map(|t| {
                    format!(
                        "<span class=\"test\" title=\"{}\">{}</span>",
                        escape(&t.unique_id),
                        escape(&test_label(t))
                    )
                })
                .collect();
            let description = describe(project, description);
            let _ = writeln!(
                s,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"description\">{}</td><td>{}</td></tr>",
                escape(name),
                escape(kind),
                escape(description.trim()),
                col_tests.join(" ")
            );
        }
        s.push_str("</tbody></table>\n");
    }
    if !tests.is_empty() {
        s.push_str("<h3>Tests</h3>\n<ul class=\"tests\">\n");
        for t in &tests {
            let on = t
                .column_name
                .as_deref()
                .map(|c| format!(" on <code>{}</code>", escape(c)))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "<li><span class=\"test\">{}</span>{on} <code>{}</code></li>",
                escape(&test_label(t)),
                escape(&t.name)
            );
        }
        s.push_str("</ul>\n");
    }
    let upstream: Vec<String> = project
        .graph
        .parents
        .get(&node.unique_id)
        .into_iter()
        .flatten()
        .map(|p| link(project, p))
        .collect();
    let downstream: Vec<String> = project
        .graph
        .children
        .get(&node.unique_id)
        .into_iter()
        .flatten()
        .filter(|c| {
            project.nodes.get(*c).is_some_and(|n| {
                !matches!(n.resource_type, ResourceType::Test | ResourceType::UnitTest)
            })
        })
        .map(|c| link(project, c))
        .collect();
    if !upstream.is_empty() {
        let _ = writeln!(s, "<p><b>Depends on</b> {}</p>", upstream.join(", "));
    }
    if !downstream.is_empty() {
        let _ = writeln!(s, "<p><b>Referenced by</b> {}</p>", downstream.join(", "));
    }
    if !node.raw_code.trim().is_empty() {
        let _ = writeln!(
            s,
            "<details><summary>Code</summary><pre><code>{}</code></pre></details>",
            escape(node.raw_code.trim_end())
        );
    }
    s.push_str("</section>\n");
    s
}

const STYLE: &str = r#"
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: #222; display: flex; }
nav { width: 260px; height: 100vh; overflow-y: auto; position: sticky; top: 0; background: #f6f7f9; border-right: 1px solid #ddd; padding: 12px; box-sizing: border-box; flex: none; }
nav h1 { font-size: 18px; margin: 0 0 8px; }
nav input { width: 100%; box-sizing: border-box; padding: 4px 6px; margin-bottom: 8px; }
nav h4 { margin: 12px 0 4px; text-transform: uppercase; font-size: 11px; color: #666; }
nav ul { list-style: none; margin: 0; padding: 0; }
nav li a { display: block; padding: 1px 4px; color: #234; text-decoration: none; border-radius: 3px; }
nav li a:hover { background: #e3e8ef; }
main { padding: 16px 28px; overflow-x: auto; flex: auto; min-width: 0; }
section.node { border-top: 1px solid #ddd; padding-top: 8px; margin-top: 20px; }
.kind { font-size: 12px; font-weight: normal; color: #fff; background: #6b7a8f; border-radius: 3px; padding: 1px 6px; vertical-align: middle; }
.meta { color: #666; font-size: 12px; }
.description { white-space: pre-wrap; }
.none { color: #888; font-style: italic; }
table.columns { border-collapse: collapse; width: 100%; }
table.columns th, table.columns td { text-align: left; border-bottom: 1px solid #eee; padding: 4px 8px; vertical-align: top; }
.test { display: inline-block; font-size: 11px; background: #e6f4ea; color: #1e6b34; border-radius: 3px; padding: 0 5px; margin: 1px; }
pre { background: #f6f7f9; padding: 8px; overflow-x: auto; }
.lineage-box { overflow-x: auto; border: 1px solid #ddd; background: #fcfcfd; }
svg.lineage .edge { fill: none; stroke: #9aa5b1; stroke-width: 1.5; }
svg.lineage rect { fill: #dfe7f1; stroke: #6b7a8f; }
svg.lineage .source rect { fill: #cfe8d5; }
svg.lineage .seed rect { fill: #e8dccf; }
svg.lineage .snapshot rect { fill: #e4d7ee; }
svg.lineage text { font-size: 12px; fill: #111; }
svg.lineage a:hover rect { stroke: #111; stroke-width: 2; }
"#;

// Filters the side list as you type; the page works without it.
const SCRIPT: &str = r#"
document.getElementById('filter').addEventListener('input', function (e) {
  var q = e.target.value.toLowerCase();
  document.querySelectorAll('nav li').forEach(function (li) {
    li.style.display = li.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
  });
});
"#;

/// The whole page.
pub fn index_html(project: &Project, catalog: &Json, generated_at: &str) -> String {
    let nodes = documented(project);
    let name = escape(project.root_package());
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{name} · docs</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<nav>\n<h1><a href=\"#top\">{name}</a></h1>\n<input id=\"filter\" type=\"search\" placeholder=\"Filter\" aria-label=\"filter the list\">\n"
    );
    let mut current: Option<ResourceType> = None;
    for node in &nodes {
        if current != Some(node.resource_type) {
            if current.is_some() {
                html.push_str("</ul>\n");
            }
            let heading = match node.resource_type {
                ResourceType::Source => "Sources",
                ResourceType::Seed => "Seeds",
                ResourceType::Model => "Models",
                _ => "Snapshots",
            };
            let _ = write!(html, "<h4>{heading}</h4>\n<ul>\n");
            current = Some(node.resource_type);
        }
        let _ = writeln!(
            html,
            "<li><a href=\"#{}\">{}</a></li>",
            escape(&node.unique_id),
            escape(&title(node))
        );
    }
    if current.is_some() {
        html.push_str("</ul>\n");
    }
    html.push_str("</nav>\n<main id=\"top\">\n");
    let overview = project
        .docs
        .values()
        .find(|d| d.name == "__overview__" && d.package_name == project.root_package())
        .map(|d| d.block_contents.trim().to_string());
    let _ = writeln!(html, "<h1>{name}</h1>");
    if let Some(text) = overview {
        let _ = writeln!(html, "<div class=\"description\">{}</div>", escape(&text));
    }
    let count = |t: ResourceType| project.nodes_of(t).count();
    let _ = writeln!(
        html,
        "<p class=\"meta\">{} models, {} seeds, {} snapshots, {} sources, {} data tests · generated {}</p>",
        count(ResourceType::Model),
        count(ResourceType::Seed),
        count(ResourceType::Snapshot),
        count(ResourceType::Source),
        count(ResourceType::Test),
        escape(generated_at)
    );
    let _ = writeln!(
        html,
        "<h2 id=\"lineage\">Lineage</h2>\n<div class=\"lineage-box\">\n{}\n</div>",
        lineage_svg(project, &nodes)
    );
    for node in &nodes {
        html.push_str(&node_section(project, catalog, node));
    }
    let _ = write!(
        html,
        "</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    );
    html
}

/// The ids the page has a section for (what `docs generate` reports).
pub fn documented_ids(project: &Project) -> Vec<UniqueId> {
    documented(project)
        .into_iter()
        .map(|n| n.unique_id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            escape(r#"<a href="x">'b' & c</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;b&#39; &amp; c&lt;/a&gt;"
        );
    }
}
