//! Helpers: a project in a temp dir with a profile pointing at a temp DuckDB file, runs that
//! capture dbt's console output, queries of the built tables.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use weir_models::project::{LoadOptions, Project, Selection};
use weir_models::run::{Command, RunOptions, RunReport, execute};

pub use crate::project::common::{extract, write};

/// Output the runner writes, readable after the run.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A dbt project dir plus a profiles dir whose target is `<tmp>/warehouse.duckdb`.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub project: PathBuf,
}

impl Env {
    /// An empty project folder (`dbt_project.yml` written by the caller) with its profile.
    pub fn new(project_subdir: &str, profile: &str) -> Env {
        let tmp = tempfile::tempdir().expect("temp dir");
        let project = tmp.path().join(project_subdir);
        std::fs::create_dir_all(&project).unwrap();
        let db = tmp.path().join("warehouse.duckdb");
        write(
            &tmp.path().join("profiles"),
            &[(
                "profiles.yml",
                &format!(
                    "{profile}:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: '{}'\n      threads: 4\n",
                    db.display()
                ),
            )],
        );
        Env { tmp, project }
    }

    pub fn profiles_dir(&self) -> PathBuf {
        self.tmp.path().join("profiles")
    }

    pub fn write(&self, files: &[(&str, &str)]) {
        write(&self.project, files);
    }

    pub fn load(&self) -> Project {
        let options = LoadOptions {
            profiles_dir: Some(self.profiles_dir()),
            env: Some(Default::default()),
            ..Default::default()
        };
        Project::load(&self.project, &options)
            .unwrap_or_else(|errors| panic!("{}", weir_models::project::render_errors(&errors)))
    }

    /// Runs `command` with `extra` options; returns the report and the console text.
    pub fn run_with(
        &self,
        command: Command,
        full_refresh: bool,
        select: &[&str],
    ) -> (RunReport, String) {
        let mut project = self.load();
        let out = Captured::default();
        let options = RunOptions {
            command,
            selection: Selection {
                select: select.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            full_refresh,
            threads: None,
            fail_fast: false,
            empty: false,
        };
        let report =
            execute(&mut project, &options, Box::new(out.clone())).expect("the run starts");
        (report, out.text())
    }

    pub fn build(&self) -> (RunReport, String) {
        self.run_with(Command::Build, false, &[])
    }

    /// Rows of `sql` on the warehouse, as JSON.
    pub fn rows(&self, sql: &str) -> Vec<Vec<Value>> {
        query(&self.tmp.path().join("warehouse.duckdb"), sql)
    }
}

pub fn query(db: &Path, sql: &str) -> Vec<Vec<Value>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn: weir_core::connection::Connection = serde_json::from_value(serde_json::json!({
            "conn_id": "check", "conn_type": "duckdb", "host": db.display().to_string()
        }))
        .unwrap();
        let wh = weir_warehouse::Warehouse::open(&conn, Path::new("/"))
            .await
            .expect("open warehouse");
        wh.query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .rows
    })
}

/// The `Done. PASS=...` line of a run's output.
pub fn done_line(output: &str) -> String {
    output
        .lines()
        .find_map(|l| {
            l.split_once("Done. ")
                .map(|(_, rest)| format!("Done. {rest}"))
        })
        .unwrap_or_else(|| panic!("no summary line in:\n{output}"))
}
