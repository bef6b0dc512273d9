//! Test support: temp projects, the real `weir` binary, a background `weir standalone`, and
//! polling with a deadline (never sleeps as synchronisation).

use assert_cmd::Command;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A temp project with fast settings.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
}

pub const FAST_SETTINGS: &str = r#"
[core]
parallelism = 32

[scheduler]
dag_dir_list_interval = 0.2
heartbeat_s = 0.5
zombie_threshold_s = 3.0
poll_s = 0.05

[worker]
slots = 16
kill_grace_s = 1.0
"#;

impl Project {
    pub fn new() -> Project {
        Project::with_settings(FAST_SETTINGS)
    }

    /// A project with `settings`. Its metadata is SQLite, or a fresh PostgreSQL database when
    /// `WEIR_TEST_METADATA=postgres` (the test script runs the core cases once more that way).
    pub fn with_settings(settings: &str) -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("dags")).unwrap();
        std::fs::write(dir.path().join("weir.toml"), settings).unwrap();
        let database_url = match std::env::var("WEIR_TEST_METADATA").as_deref() {
            Ok("postgres") => Some(fresh_postgres().expect(
                "WEIR_TEST_METADATA=postgres needs WEIR_TEST_PG_URL (a PostgreSQL admin URL)",
            )),
            _ => None,
        };
        Project { dir, database_url }
    }

    /// The same project with its metadata in a fresh PostgreSQL database, when the suite has
    /// one (`WEIR_TEST_PG_URL`); `None` otherwise (an error under CI=true).
    pub fn on_postgres() -> Option<Project> {
        let url = fresh_postgres()?;
        let mut project = Project::new();
        project.database_url = Some(url);
        Some(project)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn dag(&self, name: &str, yaml: &str) -> PathBuf {
        self.write(&format!("dags/{name}.yaml"), yaml)
    }

    pub fn weir(&self) -> Command {
        let mut cmd = Command::new(weir_bin());
        cmd.arg("--project")
            .arg(self.path())
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env_remove("WEIR_HOME");
        if let Some(url) = &self.database_url {
            cmd.env("WEIR__DATABASE__URL", url);
        }
        cmd.timeout(Duration::from_secs(120));
        cmd
    }

    /// Runs weir with `args`; returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.weir().args(args).output().expect("run weir");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs weir and returns its stdout, failing the test with stderr unless it exits 0.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.run(args);
        assert_eq!(
            code,
            0,
            "weir {args:?} exited {code}\nstdout:\n{stdout}\nstderr:\n{stderr}\ntask log errors:\n{}",
            self.log_errors()
        );
        stdout
    }

    /// Rows of `sql` on the warehouse at `conn_uri` (relative paths in this project), sorted,
    /// read with the library weir uses, after weir has exited (DuckDB allows one process).
    pub fn warehouse_rows(&self, conn_uri: &str, sql: &str) -> Vec<Value> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let conn = weir_core::connection::Connection::from_uri("warehouse", conn_uri).unwrap();
            let wh = weir_warehouse::Warehouse::open(&conn, self.path())
                .await
                .unwrap();
            let mut out = wh.query(sql).await.unwrap().objects();
            out.sort_by_key(|v| v.to_string());
            out
        })
    }

    /// The ERROR lines of every task log, to explain a failure.
    pub fn log_errors(&self) -> String {
        fn walk(dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if let Ok(text) = std::fs::read_to_string(&path) {
                    out.extend(
                        text.lines()
                            .filter(|l| l.contains("ERROR"))
                            .map(|l| format!("{}: {l}", path.display())),
                    );
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.path().join(".weir/logs"), &mut out);
        out.join("\n")
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// task_id → state of a run.
    pub fn states(&self, dag: &str, run_id: &str) -> BTreeMap<String, String> {
        let rows = self.json(&["tasks", "states", dag, run_id]);
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["task_id"].as_str().unwrap().to_string(),
                    r["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// task_id → try number of a run.
    pub fn tries(&self, dag: &str, run_id: &str) -> BTreeMap<String, i64> {
        let rows = self.json(&["tasks", "states", dag, run_id]);
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["task_id"].as_str().unwrap().to_string(),
                    r["try_number"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    pub fn runs(&self, dag: &str) -> Vec<Value> {
        self.json(&["dags", "runs", dag, "--limit", "1000"])
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn log(&self, dag: &str, run_id: &str, task: &str, try_number: i64) -> String {
        let path = self
            .path()
            .join(".weir/logs")
            .join(dag)
            .join(run_id)
            .join(format!("{task}.{try_number}.log"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("no log {}: {e}", path.display()))
    }

    pub fn start(&self) -> Standalone {
        let mut cmd = std::process::Command::new(weir_bin());
        cmd.arg("--project")
            .arg(self.path())
            .arg("standalone")
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            // Tests run side by side: each webserver takes a free port.
            .env("WEIR__WEBSERVER__PORT", "0")
            .env_remove("WEIR_HOME")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(self.path().join("standalone.log")).unwrap(),
            ));
        if let Some(url) = &self.database_url {
            cmd.env("WEIR__DATABASE__URL", url);
        }
        Standalone {
            child: cmd.spawn().expect("start weir standalone"),
        }
    }
}

/// A `weir standalone` in the background; killed when dropped.
pub struct Standalone {
    pub child: Child,
}

impl Standalone {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGINT (Ctrl-C) and waits for the exit code.
    pub fn interrupt(&mut self, within: Duration) -> Option<i32> {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::SIGINT,
        )
        .ok()?;
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The URL of a fresh PostgreSQL database, when the suite has one (`WEIR_TEST_PG_URL`);
/// `None` otherwise (an error under CI=true).
fn fresh_postgres() -> Option<String> {
    let admin = match std::env::var("WEIR_TEST_PG_URL") {
        Ok(url) => url,
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but WEIR_TEST_PG_URL is not set: .ci/run must start PostgreSQL")
        }
        Err(_) => return None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let name = rt
        .block_on(weir_store::testing::fresh_database(&admin))
        .expect("create database");
    let (base, _) = admin.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

/// Polls `check` until it returns `Some`, failing after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

pub fn weir_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_weir"))
}

/// One HTTP/1.1 request to `base` (`http://host:port`), with a bearer token and a JSON body
/// when given; returns (status code, body).
pub fn http(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
