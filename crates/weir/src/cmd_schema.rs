//! `weir dags schema` (the JSON Schema of DAG files) and the hidden `weir docs --out DIR`,
//! which writes the generated parts of `docs/`: the DAG reference and the schema (from the
//! key declarations in weir-spec) and the CLI reference (from clap). A test fails when the
//! files in `docs/` differ from what this writes.

use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::Path;

/// The schema as `weir dags schema` prints it, and `docs/dag-schema.json` holds it.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&weir_spec::json_schema())
        .expect("a JSON value always serializes");
    text.push('\n');
    text
}

pub fn print_schema() -> Result<()> {
    use std::io::Write;
    match std::io::stdout().write_all(schema_text().as_bytes()) {
        // `weir dags schema | head` is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write the schema")
        }
        _ => Ok(()),
    }
}

/// Writes `dag-reference.md`, `dag-schema.json` and `cli.md` into `out`.
pub fn write_docs(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let runnable = crate::engine::registry().names();
    let files = [
        ("dag-reference.md", weir_spec::reference_markdown(&runnable)),
        ("dag-schema.json", schema_text()),
        ("cli.md", cli_reference()),
    ];
    for (name, text) in files {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Every command's `--help`, depth first, as Markdown.
fn cli_reference() -> String {
    let mut root = crate::Cli::command().term_width(100);
    root.build();
    let mut out = String::from(
        "<!-- Generated from the clap definitions by `weir docs --out docs`; do not edit. -->\n\n# CLI reference\n\n\
         Every command and its `--help`. Global options (`--project DIR`, `-o json|table|plain`) work \
         with every command. Exit codes: 0 ok; 1 the work ran and failed (a task, validation); 2 bad \
         usage or an internal error.\n\n",
    );
    let mut toc = String::new();
    let mut body = String::new();
    section(&mut root, 0, &mut toc, &mut body);
    out.push_str(&toc);
    out.push('\n');
    out.push_str(&body);
    out
}

fn section(cmd: &mut clap::Command, depth: usize, toc: &mut String, body: &mut String) {
    let name = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string();
    let anchor = name.replace(' ', "-");
    toc.push_str(&format!("{}- [`{name}`](#{anchor})\n", "  ".repeat(depth)));
    let help = cmd.render_long_help().to_string();
    body.push_str(&format!(
        "## `{name}`\n\n```text\n{}\n```\n\n",
        help.trim_end()
    ));
    let mut subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .cloned()
        .collect();
    for sub in &mut subs {
        section(sub, depth + 1, toc, body);
    }
}
