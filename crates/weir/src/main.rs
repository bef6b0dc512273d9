//! weir: the command-line binary. It parses arguments, reads settings and wires the library
//! crates together; the work itself lives in those crates.

mod cmd_assets;
mod cmd_conns;
mod cmd_dags;
mod cmd_misc;
mod cmd_models;
mod cmd_pools;
mod cmd_schema;
mod cmd_tasks;
mod cmd_users;
mod config;
mod engine;
mod init;
mod output;
mod wake;
mod web;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// One binary for scheduled data pipelines: YAML DAGs, a scheduler, workers and a metadata store.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, propagate_version = true)]
pub struct Cli {
    /// The project directory (default: WEIR_HOME, else the nearest folder upwards with weir.toml).
    #[arg(long, global = true, value_name = "DIR")]
    project: Option<PathBuf>,
    /// Output format of listings.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = output::Format::Table)]
    output: output::Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a new project with a working example DAG.
    Init {
        /// The folder to create.
        name: PathBuf,
    },
    /// Run scheduler and workers in one process (SQLite metadata by default).
    Standalone,
    /// Run the scheduler (with a triggerer for deferred sensors).
    Scheduler,
    /// Run a triggerer only: checks deferred sensors and `trigger_dag` waits, no slot each.
    Triggerer,
    /// Serve the web UI and the REST API (`/api/v2`).
    Webserver {
        /// The port to listen on (default: [webserver] port, 8080; 0 picks a free one).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Run a worker that claims queued task instances.
    Worker {
        /// Only take task instances from these queues (repeatable; default: all).
        #[arg(long = "queue", short = 'q')]
        queues: Vec<String>,
        /// Tries to run at once (default: [worker] slots).
        #[arg(long)]
        concurrency: Option<usize>,
    },
    /// The warehouse process a weir process starts for its warehouse work (internal).
    #[command(hide = true)]
    WarehouseProcess,
    /// Inspect, validate, trigger, test and backfill DAGs.
    #[command(subcommand)]
    Dags(cmd_dags::DagsCommand),
    /// Run dbt projects: parse, compile, run, test, seed, snapshot, build, ls, deps, show, docs,
    /// source freshness, retry.
    #[command(subcommand)]
    Models(cmd_models::ModelsCommand),
    /// Inspect, run, clear and read the logs of task instances.
    #[command(subcommand)]
    Tasks(cmd_tasks::TasksCommand),
    /// Manage connections (warehouses and APIs that tasks use; templates read conn.ID.host).
    #[command(subcommand)]
    Connections(cmd_conns::ConnectionsCommand),
    /// Manage variables (templates read them as var.value.KEY).
    #[command(subcommand)]
    Variables(cmd_misc::VariablesCommand),
    /// Manage pools (slots that bound how many task instances of a kind run at once).
    #[command(subcommand)]
    Pools(cmd_pools::PoolsCommand),
    /// List assets (what tasks update them, which DAGs run on them) and their events.
    #[command(subcommand)]
    Assets(cmd_assets::AssetsCommand),
    /// Manage who may log in to the web UI and the REST API.
    #[command(subcommand)]
    Users(cmd_users::UsersCommand),
    /// Manage the metadata database.
    #[command(subcommand)]
    Db(cmd_misc::DbCommand),
    /// Read settings.
    #[command(subcommand)]
    Config(cmd_misc::ConfigCommand),
    /// Check the metadata database and the scheduler heartbeat; exit 1 when unhealthy.
    Health,
    /// Write the generated docs (DAG reference, schema, CLI reference) into a folder.
    #[command(hide = true)]
    Docs {
        #[arg(long, default_value = "docs")]
        out: PathBuf,
    },
}

/// A command whose work ran and failed (exit 1), as opposed to an error (exit 2).
#[derive(Debug)]
pub struct Failed(pub String);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failed {}

/// glibc gives each thread that allocates its own malloc arena (up to 8 per core), and memory
/// freed in one is not reused by another: a long-running weir that read ten thousand task
/// instances on one thread and wrote them on others held twice the memory it used. Two arenas
/// are plenty for its few threads. `MALLOC_ARENA_MAX` in the environment still wins.
fn few_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before any other thread
        // exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// glibc keeps what a burst of work freed (ten thousand task instances read, tried and
/// deferred) as free chunks inside its heaps, and gives pages back to the system only from the
/// top of a heap: `weir standalone` that used 9 MB while ten thousand sensors waited held 80 MB.
/// Every few seconds `malloc_trim` returns the free pages wherever they are (a walk of the free
/// lists, well under a millisecond here), so RSS follows what weir uses.
fn give_back_freed_memory() {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(5);
    // Without the thread weir works the same and only holds more memory: nothing to report.
    let _ = std::thread::Builder::new()
        .name("malloc-trim".into())
        .spawn(|| {
            loop {
                std::thread::sleep(EVERY);
                // SAFETY: malloc_trim only releases free memory back to the system; it takes the
                // allocator's own locks.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
        });
}

/// The weir executable links libduckdb, so every weir process maps it, and the dynamic linker
/// reads about 10 MB of the library's symbol tables while it relocates it at start. Only the
/// warehouse process runs DuckDB: a long-running server, scheduler or worker gives those pages
/// back once. `MADV_PAGEOUT` reclaims clean file pages (and leaves the relocated ones, which
/// are the process's own); a page touched later is read in again, so nothing can break.
fn page_out_the_warehouse_library() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        // `start-end perms offset dev inode path`
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [range, _, _, _, _, path] = fields[..] else {
            continue;
        };
        let file = path.rsplit('/').next().unwrap_or(path);
        if !file.starts_with("libduckdb") {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        // SAFETY: MADV_PAGEOUT only asks the kernel to reclaim the pages of a mapping that
        // exists (it is in /proc/self/maps); their contents stay as they are.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_PAGEOUT);
        }
    }
}

fn main() -> ExitCode {
    few_malloc_arenas();
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(failed) = e.downcast_ref::<Failed>() {
                if !failed.0.is_empty() {
                    eprintln!("{failed}");
                }
                return ExitCode::from(1);
            }
            let text = format!("{e:#}");
            let (message, hint) = match text.split_once("\nhint: ") {
                Some((m, h)) => (m.to_string(), Some(h.to_string())),
                None => (text, None),
            };
            eprintln!("error: {message}");
            if let Some(hint) = hint {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(2)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| "warn,weir=info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(
            std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
        .try_init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let format = cli.output;
    if let Command::WarehouseProcess = &cli.command {
        let served = weir_worker::warehouse::serve().await;
        if let Err(e) = served {
            eprintln!("error: the warehouse process: {e}");
            std::process::exit(2);
        }
        // Now, without waiting for a cancelled query still running on a blocking thread.
        std::process::exit(0);
    }
    if let Command::Init { name } = &cli.command {
        return init::init(name).await;
    }
    if let Command::Models(cmd) = cli.command {
        return cmd_models::run(cmd, cli.project, format).await;
    }
    if let Command::Docs { out } = &cli.command {
        return cmd_schema::write_docs(out);
    }
    let settings = config::Settings::discover(cli.project.as_deref())?;
    settings.validate()?;
    if matches!(
        cli.command,
        Command::Standalone
            | Command::Scheduler
            | Command::Triggerer
            | Command::Worker { .. }
            | Command::Webserver { .. }
    ) {
        page_out_the_warehouse_library();
        give_back_freed_memory();
    }
    let result = match cli.command {
        Command::Init { .. }
        | Command::Docs { .. }
        | Command::Models(_)
        | Command::WarehouseProcess => {
            unreachable!("handled above")
        }
        Command::Standalone => engine::standalone(&settings).await,
        Command::Scheduler => engine::scheduler_only(&settings).await,
        Command::Triggerer => engine::triggerer_only(&settings).await,
        Command::Webserver { port } => engine::webserver_only(&settings, port).await,
        Command::Worker {
            queues,
            concurrency,
        } => engine::worker_only(&settings, queues, concurrency).await,
        Command::Dags(cmd) => cmd_dags::run(&settings, cmd, format).await,
        Command::Tasks(cmd) => cmd_tasks::run(&settings, cmd, format).await,
        Command::Variables(cmd) => cmd_misc::variables(&settings, cmd, format).await,
        Command::Connections(cmd) => cmd_conns::connections(&settings, cmd, format).await,
        Command::Pools(cmd) => cmd_pools::pools(&settings, cmd, format).await,
        Command::Assets(cmd) => cmd_assets::assets(&settings, cmd, format).await,
        Command::Users(cmd) => cmd_users::run(&settings, cmd, format).await,
        Command::Db(cmd) => cmd_misc::db(&settings, cmd).await,
        Command::Config(cmd) => cmd_misc::config(&settings, cmd),
        Command::Health => cmd_misc::health(&settings).await,
    };
    engine::stop_warehouses().await;
    result
}
