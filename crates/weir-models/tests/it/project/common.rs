//! Helpers: fixture tarballs extracted into temp dirs, small projects written from a file list.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use weir_models::project::{LoadOptions, Project, ProjectError};

/// `../shared/fixtures` beside the clone (or `WEIR_FIXTURES`); a clear failure when missing.
pub fn fixtures_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("WEIR_FIXTURES") {
        return PathBuf::from(dir);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    assert!(
        dir.is_dir(),
        "the test fixtures folder {} is missing: these tests need ../shared/fixtures beside the clone (or WEIR_FIXTURES)",
        dir.display()
    );
    dir
}

/// Extracts a fixture tarball into `into` (created).
pub fn extract(tarball: &str, into: &Path) {
    let archive = fixtures_dir().join(tarball);
    assert!(
        archive.is_file(),
        "fixture {} is missing",
        archive.display()
    );
    std::fs::create_dir_all(into).expect("create extraction dir");
    let status = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(into)
        .status()
        .expect("run tar");
    assert!(status.success(), "tar failed on {}", archive.display());
}

/// Writes `files` (path, contents) under a new temp dir.
pub fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), files);
    dir
}

pub fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
}

/// Options with an empty environment, so the machine's env and `~/.dbt` never leak in.
pub fn options() -> LoadOptions {
    LoadOptions {
        env: Some(BTreeMap::new()),
        ..Default::default()
    }
}

pub fn load(dir: &Path) -> Project {
    match Project::load(dir, &options()) {
        Ok(project) => project,
        Err(errors) => panic!(
            "load failed:\n{}",
            weir_models::project::render_errors(&errors)
        ),
    }
}

pub fn load_err(dir: &Path) -> Vec<ProjectError> {
    match Project::load(dir, &options()) {
        Ok(_) => panic!("load unexpectedly succeeded"),
        Err(errors) => errors,
    }
}

pub const PROFILE: &str =
    "p:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: wh.duckdb\n";
