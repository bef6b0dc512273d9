//! `weir models ...`: dbt's commands on an unmodified dbt project (parse, compile, run, test,
//! seed, snapshot, build, ls, deps), with dbt's flags. The work lives in `weir_models`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use weir_models::project::{
    LoadOptions, Project, Selection, install_local_packages, render_errors,
};
use weir_models::run::{Command as RunCommand, RunOptions};

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

fn selection(flags: &Flags) -> Selection {
    Selection {
        select: flags.select.clone(),
        exclude: flags.exclude.clone(),
        selector: flags.selector.clone(),
        ..Default::default()
    }
}

pub async fn run(cmd: ModelsCommand, weir_project: Option<PathBuf>) -> Result<()> {
    tokio::task::spawn_blocking(move || run_blocking(cmd, weir_project.as_deref()))
        .await
        .context("the models command stopped unexpectedly")?
}

fn run_blocking(cmd: ModelsCommand, weir_project: Option<&Path>) -> Result<()> {
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
            let project = load(&flags, weir_project, true)?;
            let ids = weir_models::project::select(&project, &selection(&flags))
                .map_err(|e| anyhow::anyhow!("{}", render_errors(&[e])))?;
            for id in ids {
                if let Some(node) = project.node(&id) {
                    println!("{}", node.fqn.join("."));
                }
            }
            return Ok(());
        }
        ModelsCommand::Compile(f) => (RunCommand::Compile, f),
        ModelsCommand::Run(f) => (RunCommand::Run, f),
        ModelsCommand::Test(f) => (RunCommand::Test, f),
        ModelsCommand::Seed(f) => (RunCommand::Seed, f),
        ModelsCommand::Snapshot(f) => (RunCommand::Snapshot, f),
        ModelsCommand::Build(f) => (RunCommand::Build, f),
    };
    let mut project = load(&flags, weir_project, false)?;
    let options = RunOptions {
        command,
        selection: selection(&flags),
        full_refresh: flags.full_refresh,
        threads: flags.threads,
        fail_fast: flags.fail_fast,
    };
    let report = weir_models::run::execute(&mut project, &options, Box::new(std::io::stdout()))?;
    if report.success() {
        Ok(())
    } else {
        Err(Failed(String::new()).into())
    }
}
