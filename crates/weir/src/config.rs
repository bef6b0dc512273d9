//! Settings: `weir.toml` in the project, every key overridable by `WEIR__SECTION__KEY`, and
//! how a command finds its project (`--project`, `WEIR_HOME`, or the current directory and
//! its parents, like git).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Defaults for every setting; `weir init` writes the same file with comments.
pub const DEFAULTS: &str = r#"
[core]
dags_folder = "dags"
default_timezone = "UTC"
parallelism = 32
max_active_tasks_per_dag = 16
max_map_length = 1024
dags_are_paused_at_creation = false
fernet_key = ""

[database]
url = ""

[scheduler]
dag_dir_list_interval = 1.0
heartbeat_s = 5.0
zombie_threshold_s = 60.0
poll_s = 0.2

[worker]
slots = 32
kill_grace_s = 5.0
warehouse_idle_s = 5.0

[triggerer]
poll_s = 1.0

[notifications]
max_attempts = 5
retry_delay_s = 10.0
claim_s = 60.0

[webserver]
host = "0.0.0.0"
port = 8080
base_url = "http://localhost:8080"
secret_key = ""

[logging]
base_log_folder = ".weir/logs"
retention_days = 30
"#;

/// The project and its settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub project_dir: PathBuf,
    table: toml::Table,
}

impl Settings {
    /// Finds the project: `explicit`, else `WEIR_HOME`, else the nearest directory upwards
    /// from the current one that holds `weir.toml` (falling back to the current directory).
    pub fn discover(explicit: Option<&Path>) -> Result<Settings> {
        let dir = match explicit {
            Some(dir) => dir.to_path_buf(),
            None => match std::env::var_os("WEIR_HOME") {
                Some(home) => PathBuf::from(home),
                None => {
                    let cwd =
                        std::env::current_dir().context("cannot read the current directory")?;
                    cwd.ancestors()
                        .find(|d| d.join("weir.toml").is_file())
                        .unwrap_or(&cwd)
                        .to_path_buf()
                }
            },
        };
        let dir = std::fs::canonicalize(&dir)
            .with_context(|| format!("project directory '{}' does not exist", dir.display()))?;
        Settings::load(dir)
    }

    pub fn load(project_dir: PathBuf) -> Result<Settings> {
        let mut table: toml::Table = DEFAULTS.parse().expect("built-in defaults parse");
        let file = project_dir.join("weir.toml");
        if file.is_file() {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let user: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                let line = e
                    .span()
                    .map(|s| text[..s.start].lines().count().max(1))
                    .unwrap_or(0);
                anyhow::anyhow!("{}:{line}: {}", file.display(), e.message())
            })?;
            merge(&mut table, user);
        }
        for (key, value) in std::env::vars() {
            let Some(rest) = key.strip_prefix("WEIR__") else {
                continue;
            };
            let Some((section, name)) = rest.split_once("__") else {
                continue;
            };
            let section = section.to_ascii_lowercase();
            let name = name.to_ascii_lowercase();
            let entry = table
                .entry(section)
                .or_insert_with(|| toml::Value::Table(Default::default()));
            if let toml::Value::Table(t) = entry {
                t.insert(name, parse_env_value(&value));
            }
        }
        Ok(Settings { project_dir, table })
    }

    /// The raw value of `section.key`, as `config get-value` prints it.
    pub fn get(&self, section: &str, key: &str) -> Option<&toml::Value> {
        self.table.get(section)?.as_table()?.get(key)
    }

    fn str(&self, section: &str, key: &str) -> String {
        match self.get(section, key) {
            Some(toml::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }

    fn float(&self, section: &str, key: &str) -> f64 {
        match self.get(section, key) {
            Some(toml::Value::Float(f)) => *f,
            Some(toml::Value::Integer(i)) => *i as f64,
            Some(toml::Value::String(s)) => s.parse().unwrap_or(0.0),
            _ => 0.0,
        }
    }

    pub fn integer(&self, section: &str, key: &str) -> i64 {
        self.int(section, key)
    }

    fn int(&self, section: &str, key: &str) -> i64 {
        self.float(section, key) as i64
    }

    fn bool(&self, section: &str, key: &str) -> bool {
        match self.get(section, key) {
            Some(toml::Value::Boolean(b)) => *b,
            Some(toml::Value::String(s)) => matches!(s.as_str(), "true" | "1" | "yes"),
            _ => false,
        }
    }

    fn path(&self, section: &str, key: &str) -> PathBuf {
        self.project_dir.join(self.str(section, key))
    }

    pub fn dags_folder(&self) -> PathBuf {
        self.path("core", "dags_folder")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.path("logging", "base_log_folder")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.project_dir.join(".weir")
    }

    pub fn default_timezone(&self) -> String {
        self.str("core", "default_timezone")
    }

    pub fn parallelism(&self) -> usize {
        self.int("core", "parallelism").max(1) as usize
    }

    /// The most instances one mapped task may expand to (Airflow's `max_map_length`).
    pub fn max_map_length(&self) -> usize {
        self.int("core", "max_map_length").max(0) as usize
    }

    pub fn paused_by_default(&self) -> bool {
        self.bool("core", "dags_are_paused_at_creation")
    }

    pub fn worker_slots(&self) -> usize {
        self.int("worker", "slots").max(1) as usize
    }

    pub fn seconds(&self, section: &str, key: &str) -> Duration {
        Duration::from_secs_f64(self.float(section, key).max(0.0))
    }

    /// The metadata database URL: `[database] url`, or SQLite in `.weir/metadata.db`.
    pub fn database_url(&self) -> Result<String> {
        let url = self.str("database", "url");
        if !url.is_empty() {
            return Ok(url);
        }
        let dir = self.state_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(format!("sqlite://{}", dir.join("metadata.db").display()))
    }

    /// The Fernet key that encrypts secrets at rest: `[core] fernet_key` (or
    /// `WEIR__CORE__FERNET_KEY`), else `.weir/fernet.key`, created (mode 600) on first use.
    pub fn fernet_key(&self) -> Result<String> {
        let key = self.str("core", "fernet_key");
        if !key.trim().is_empty() {
            if std::env::var_os("WEIR__CORE__FERNET_KEY").is_none() {
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| {
                    eprintln!(
                        "warning: weir.toml holds the Fernet key ([core] fernet_key), a secret in a file that is usually committed\nhint: move it: write the value into .weir/fernet.key (chmod 600) and delete the fernet_key line"
                    )
                });
            }
            return Ok(key);
        }
        self.state_secret("fernet.key", weir_store::Cipher::generate_key)
    }

    /// The key that signs the webserver's tokens and session cookies: `[webserver] secret_key`
    /// (or `WEIR__WEBSERVER__SECRET_KEY`), else `.weir/secret.key`, created (mode 600) on first
    /// use.
    pub fn secret_key(&self) -> Result<String> {
        let key = self.str("webserver", "secret_key");
        if !key.trim().is_empty() {
            return Ok(key);
        }
        self.state_secret("secret.key", weir_store::Cipher::generate_key)
    }

    /// A secret kept in `.weir/NAME` (mode 600, the folder 700), generated on first use.
    fn state_secret(&self, name: &str, generate: fn() -> String) -> Result<String> {
        let path = self.state_dir().join(name);
        if let Ok(existing) = std::fs::read_to_string(&path) {
            return Ok(existing.trim().to_string());
        }
        self.ensure_state_dir()?;
        let key = generate();
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            writeln!(f, "{key}")?;
        }
        // Two processes may race to create it: the first link wins, both read the winner.
        if std::fs::hard_link(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
            return Ok(std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .trim()
                .to_string());
        }
        let _ = std::fs::remove_file(&tmp);
        Ok(key)
    }

    /// Creates `.weir/` readable by its owner only.
    pub fn ensure_state_dir(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.state_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", dir.display()))?;
        Ok(())
    }

    /// Where `weir standalone` and `weir webserver` listen (`[webserver] host`, `port`; port 0
    /// picks a free one).
    pub fn webserver_addr(&self, port: Option<u16>) -> Result<std::net::SocketAddr> {
        let host = self.str("webserver", "host");
        let port = match port {
            Some(p) => p,
            None => u16::try_from(self.integer("webserver", "port")).map_err(|_| {
                anyhow::anyhow!(
                    "[webserver] port must be 0..65535\nhint: set port = 8080 (0 picks a free port)"
                )
            })?,
        };
        let ip: std::net::IpAddr = host.parse().map_err(|_| {
            anyhow::anyhow!("[webserver] host '{host}' is not an IP address\nhint: use 0.0.0.0 (every interface) or 127.0.0.1")
        })?;
        Ok(std::net::SocketAddr::new(ip, port))
    }

    pub fn parse_options(&self, available: Vec<String>) -> weir_spec::ParseOptions {
        weir_spec::ParseOptions {
            default_timezone: self.default_timezone(),
            available_types: available,
        }
    }

    /// `[pools]`: pool name → slots, created or resized when a scheduler starts.
    pub fn pools(&self) -> Vec<(String, i64)> {
        match self.table.get("pools").and_then(|p| p.as_table()) {
            Some(t) => t
                .iter()
                .filter_map(|(k, v)| v.as_integer().map(|n| (k.clone(), n)))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Checks values users commonly get wrong, naming the key.
    pub fn validate(&self) -> Result<()> {
        let tz = self.default_timezone();
        if jiff::tz::TimeZone::get(&tz).is_err() {
            bail!(
                "[core] default_timezone '{tz}' is not an IANA time zone\nhint: use a name such as UTC or Europe/Berlin"
            );
        }
        Ok(())
    }
}

fn merge(base: &mut toml::Table, user: toml::Table) {
    for (key, value) in user {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(u)) => merge(b, u),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn parse_env_value(text: &str) -> toml::Value {
    if let Ok(i) = text.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(f) = text.parse::<f64>() {
        toml::Value::Float(f)
    } else if let Ok(b) = text.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(text.to_string())
    }
}
