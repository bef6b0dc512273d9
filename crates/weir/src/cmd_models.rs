//! `weir models ...`: dbt's commands on an unmodified dbt project (parse, compile, run, test,
//! seed, snapshot, build, ls, deps, show, docs, source freshness, retry), with dbt's flags.
//! The work lives in `weir_models`; `docs serve` is the one piece here (axum over `target/`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use weir_models::docs::DocsError;
use weir_models::project::{
    LoadOptions, Project, Selection, State, install_local_packages, render_errors,
};
use weir_models::run::{Command as RunCommand, RunOptions};
use weir_models::show::{ShowError, ShowFormat, ShowOptions};

use crate::Failed;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Read the project and write target/manifest.json.
    Parse(Flags),
    /// Render every selected node into target/compiled/.
    Compile(Flags),
    /// Build the selected models.
    Run(Flags),
    /// Run the selected tests.
    Test(Flags),
    /// Load the selected seeds.
    Seed(Flags),
    /// Run the selected snapshots.
    Snapshot(Flags),
    /// Seeds, models, snapshots and tests in graph order, tests right after their node.
    Build(Flags),
    /// List the selected nodes.
    Ls(Flags),
    /// Install the `local:` packages of packages.yml into dbt_packages/.
    Deps(Flags),
    /// Compile a node (or --inline SQL), run it with a limit and preview the rows.
    Show(ShowFlags),
    /// The docs site: `docs generate` writes target/catalog.json and target/index.html,
    /// `docs serve` serves target/.
    #[command(subcommand)]
    Docs(DocsCommand),
    /// Source commands: `source freshness`.
    #[command(subcommand)]
    Source(SourceCommand),
    /// Run the previous command again over the nodes that errored, failed or were skipped in
    /// target/run_results.json.
    Retry(Flags),
}

#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// Write target/catalog.json (columns and types from the warehouse) and the static site
    /// target/index.html.
    Generate(DocsGenerateFlags),
    /// Serve target/ (the site `docs generate` wrote) over HTTP.
    Serve(DocsServeFlags),
}

#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Check the age of each selected source that has `freshness:` and `loaded_at_field`;
    /// writes target/sources.json; exits 1 when one is past `error_after`.
    Freshness(Flags),
}

#[derive(Debug, Args)]
pub struct ShowFlags {
    #[command(flatten)]
    flags: Flags,
    /// SQL (with Jinja) to preview instead of a selected node.
    #[arg(long, value_name = "SQL")]
    inline: Option<String>,
    /// Rows to preview; -1 for all. (`--output json` prints them as JSON.)
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    limit: i64,
}

#[derive(Debug, Args)]
pub struct DocsGenerateFlags {
    #[command(flatten)]
    flags: Flags,
    /// Read the project without compiling it first (the catalog and site only).
    #[arg(long)]
    no_compile: bool,
}

#[derive(Debug, Args)]
pub struct DocsServeFlags {
    #[command(flatten)]
    flags: Flags,
    /// The port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
}

/// dbt's flags, shared by every command.
#[derive(Debug, Args)]
pub struct Flags {
    /// The dbt project (default: the current directory if it holds dbt_project.yml, else the
    /// weir project's models/ folder).
    #[arg(long, value_name = "DIR")]
    project_dir: Option<PathBuf>,
    /// Where profiles.yml is (default: DBT_PROFILES_DIR, the project dir, ~/.dbt).
    #[arg(long, value_name = "DIR")]
    profiles_dir: Option<PathBuf>,
    /// The profile target to use.
    #[arg(long, short = 't')]
    target: Option<String>,
    /// Nodes to include (dbt's selection grammar).
    #[arg(long, short = 's', num_args = 1..)]
    select: Vec<String>,
    /// Nodes to leave out.
    #[arg(long, num_args = 1..)]
    exclude: Vec<String>,
    /// A selector of selectors.yml.
    #[arg(long)]
    selector: Option<String>,
    /// Rebuild incremental models and seeds from scratch.
    #[arg(long)]
    full_refresh: bool,
    /// Variables as a YAML (or JSON) mapping: --vars '{day: 2024-01-01}'.
    #[arg(long, value_name = "YAML")]
    vars: Option<String>,
    /// Nodes to run at once (default: the profile's threads).
    #[arg(long)]
    threads: Option<usize>,
    /// Stop at the first failure.
    #[arg(long, short = 'x')]
    fail_fast: bool,
    /// The target folder of an earlier run, for `state:` and `result:` selection and
    /// `--defer`.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Refs and sources read no rows (`limit 0` subqueries): check that the SQL builds
    /// without the cost of the data.
    #[arg(long)]
    empty: bool,
    /// Resolve refs to nodes this command does not run, and whose relation is not in the
    /// target, to their relation in the --state manifest.
    #[arg(long, requires = "state")]
    defer: bool,
}

fn project_dir(explicit: Option<&Path>, weir_project: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    if cwd.join("dbt_project.yml").is_file() {
        return Ok(cwd);
    }
    let models = crate::config::Settings::discover(weir_project)
        .map(|s| s.project_dir.join("models"))
        .unwrap_or_else(|_| cwd.join("models"));
    if models.join("dbt_project.yml").is_file() {
        return Ok(models);
    }
    bail!(
        "no dbt project here: neither {} nor {} holds dbt_project.yml\nhint: pass --project-dir DIR",
        cwd.display(),
        models.display()
    )
}

fn parse_vars(text: Option<&str>) -> Result<serde_json::Map<String, serde_json::Value>> {
    let Some(text) = text else {
        return Ok(Default::default());
    };
    let yaml = weir_models::project::yaml::Yaml::parse(text, Path::new("--vars"))
        .map_err(|e| anyhow::anyhow!("--vars '{text}' is not YAML: {}", render_errors(&[e])))?;
    match yaml.to_json() {
        serde_json::Value::Object(map) => Ok(map),
        _ => bail!("--vars '{text}' is not a YAML mapping\nhint: write --vars '{{key: value}}'"),
    }
}

fn load(flags: &Flags, weir_project: Option<&Path>, skip_profile: bool) -> Result<Project> {
    let dir = project_dir(flags.project_dir.as_deref(), weir_project)?;
    let options = LoadOptions {
        profiles_dir: flags.profiles_dir.clone(),
        target: flags.target.clone(),
        vars: parse_vars(flags.vars.as_deref())?,
        env: None,
        skip_profile,
    };
    Project::load(&dir, &options).map_err(|errors| anyhow::anyhow!("{}", render_errors(&errors)))
}

fn selection(flags: &Flags) -> Result<Selection> {
    let state = match &flags.state {
        Some(dir) => {
            Some(State::load(dir).map_err(|e| anyhow::anyhow!("{}", render_errors(&[e])))?)
        }
        None => None,
    };
    Ok(Selection {
        select: flags.select.clone(),
        exclude: flags.exclude.clone(),
        selector: flags.selector.clone(),
        state,
        ..Default::default()
    })
}

/// `format` is the global `--output`: `json` makes `show` print JSON.
pub async fn run(
    cmd: ModelsCommand,
    weir_project: Option<PathBuf>,
    format: crate::output::Format,
) -> Result<()> {
    if let ModelsCommand::Docs(DocsCommand::Serve(serve)) = cmd {
        return docs_serve(serve, weir_project.as_deref()).await;
    }
    tokio::task::spawn_blocking(move || run_blocking(cmd, weir_project.as_deref(), format))
        .await
        .context("the models command stopped unexpectedly")?
}

/// The target folder of the project `flags` name, without reading the whole project.
fn target_dir(flags: &Flags, weir_project: Option<&Path>) -> Result<PathBuf> {
    let project = load(flags, weir_project, true)?;
    Ok(project.root.join(&project.settings.target_path))
}

/// `docs serve`: GET serves the files of target/ (`/` is index.html), as dbt's
/// `SimpleHTTPRequestHandler` does.
async fn docs_serve(serve: DocsServeFlags, weir_project: Option<&Path>) -> Result<()> {
    let target = target_dir(&serve.flags, weir_project)?;
    if !target.join("index.html").is_file() {
        bail!(
            "no docs site in {}: index.html is missing\nhint: run `weir models docs generate` first",
            target.display()
        );
    }
    let listener = tokio::net::TcpListener::bind((serve.host.as_str(), serve.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", serve.host, serve.port))?;
    let port = listener.local_addr()?.port();
    println!("Serving docs at {port}");
    println!("To access from your browser, navigate to: http://localhost:{port}");
    println!("\n");
    println!("Press Ctrl+C to exit.");
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let target = target.clone();
        async move { serve_file(&target, uri.path()).await }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the docs server stopped")
}

async fn serve_file(root: &Path, path: &str) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() || relative.ends_with('/') {
        format!("{relative}index.html")
    } else {
        relative.to_string()
    };
    // Only plain names under target/: no `..`, no absolute or drive paths.
    let safe = Path::new(&relative)
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !safe {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let file = root.join(&relative);
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let kind = match file.extension().and_then(|e| e.to_str()) {
                Some("html") => "text/html; charset=utf-8",
                Some("json") => "application/json",
                Some("js") => "text/javascript",
                Some("css") => "text/css",
                Some("svg") => "image/svg+xml",
                Some("sql") | Some("txt") => "text/plain; charset=utf-8",
                _ => "application/octet-stream",
            };
            ([(header::CONTENT_TYPE, kind)], bytes).into_response()
        }
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

fn run_blocking(
    cmd: ModelsCommand,
    weir_project: Option<&Path>,
    format: crate::output::Format,
) -> Result<()> {
    let (command, flags) = match cmd {
        ModelsCommand::Deps(flags) => {
            let dir = project_dir(flags.project_dir.as_deref(), weir_project)?;
            let installed = install_local_packages(&dir)
                .map_err(|errors| anyhow::anyhow!("{}", render_errors(&errors)))?;
            for name in &installed {
                println!("Installed {name}");
            }
            if installed.is_empty() {
                println!("No packages to install");
            }
            return Ok(());
        }
        ModelsCommand::Parse(flags) => {
            let project = load(&flags, weir_project, true)?;
            let target = project.root.join(&project.settings.target_path);
            weir_models::project::write_manifest(&project, &target)
                .map_err(|e| anyhow::anyhow!("{}", render_errors(&[e])))?;
            for w in &project.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "Parsed {} nodes; wrote {}",
                project.nodes.len(),
                target.join("manifest.json").display()
            );
            return Ok(());
        }
        ModelsCommand::Ls(flags) => {
            // State comparison needs the target's relations (database, schema), as a run has.
            let project = load(&flags, weir_project, flags.state.is_none())?;
            let ids = weir_models::project::select(&project, &selection(&flags)?)
                .map_err(|e| anyhow::anyhow!("{}", render_errors(&[e])))?;
            for id in ids {
                if let Some(node) = project.node(&id) {
                    println!("{}", node.fqn.join("."));
                }
            }
            return Ok(());
        }
        ModelsCommand::Show(show) => {
            let mut project = load(&show.flags, weir_project, false)?;
            let options = ShowOptions {
                selection: selection(&show.flags)?,
                inline: show.inline,
                limit: show.limit,
                output: match format {
                    crate::output::Format::Json => ShowFormat::Json,
                    _ => ShowFormat::Text,
                },
            };
            return match weir_models::show::show(
                &mut project,
                &options,
                Box::new(std::io::stdout()),
            ) {
                Ok(()) => Ok(()),
                // The query ran and failed: exit 1, as dbt does.
                Err(e @ (ShowError::Compile { .. } | ShowError::Database { .. })) => {
                    Err(Failed(e.to_string()).into())
                }
                Err(e) => Err(e.into()),
            };
        }
        ModelsCommand::Docs(DocsCommand::Generate(generate)) => {
            let mut project = load(&generate.flags, weir_project, false)?;
            return match weir_models::docs::generate(
                &mut project,
                !generate.no_compile,
                generate.flags.threads,
                Box::new(std::io::stdout()),
            ) {
                Ok(_) => Ok(()),
                Err(e @ DocsError::Compile(_)) => Err(Failed(e.to_string()).into()),
                Err(e) => Err(e.into()),
            };
        }
        ModelsCommand::Docs(DocsCommand::Serve(_)) => {
            bail!("docs serve runs on the async runtime")
        }
        ModelsCommand::Source(SourceCommand::Freshness(flags)) => {
            let mut project = load(&flags, weir_project, false)?;
            let report = weir_models::freshness::freshness(
                &mut project,
                &selection(&flags)?,
                Box::new(std::io::stdout()),
            )?;
            return if report.success() {
                Ok(())
            } else {
                Err(Failed(String::new()).into())
            };
        }
        ModelsCommand::Retry(flags) => {
            let mut project = load(&flags, weir_project, false)?;
            let state_dir = match &flags.state {
                Some(dir) => dir.clone(),
                None => project.root.join(&project.settings.target_path),
            };
            let shown = flags
                .state
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| project.settings.target_path.clone());
            let retry = weir_models::retry::plan(&state_dir, &shown, flags.threads)?;
            let report = weir_models::run::execute(
                &mut project,
                &retry.options,
                Box::new(std::io::stdout()),
            )?;
            return if report.success() {
                Ok(())
            } else {
                Err(Failed(String::new()).into())
            };
        }
        ModelsCommand::Compile(f) => (RunCommand::Compile, f),
        ModelsCommand::Run(f) => (RunCommand::Run, f),
        ModelsCommand::Test(f) => (RunCommand::Test, f),
        ModelsCommand::Seed(f) => (RunCommand::Seed, f),
        ModelsCommand::Snapshot(f) => (RunCommand::Snapshot, f),
        ModelsCommand::Build(f) => (RunCommand::Build, f),
    };
    let mut project = load(&flags, weir_project, false)?;
    let selection = selection(&flags)?;
    if flags.defer
        && let Some(state) = &flags.state
    {
        let selected = weir_models::defer::selected(&project, &selection, command)?;
        weir_models::defer::defer(&mut project, &selected, state)?;
    }
    let options = RunOptions {
        command,
        selection,
        full_refresh: flags.full_refresh,
        threads: flags.threads,
        fail_fast: flags.fail_fast,
        empty: flags.empty,
    };
    let report = weir_models::run::execute(&mut project, &options, Box::new(std::io::stdout()))?;
    if report.success() {
        Ok(())
    } else {
        Err(Failed(String::new()).into())
    }
}
