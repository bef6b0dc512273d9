//! Finding a package's files: a sorted recursive walk of each resource folder, paths relative
//! to the folder, so node paths and fqns come out as dbt builds them.

use std::path::{Path, PathBuf};

/// A file found under one of a package's resource folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFile {
    pub absolute: PathBuf,
    /// The resource folder as written in dbt_project.yml (`models`).
    pub search_root: String,
    /// Relative to the resource folder, `/`-separated (`staging/stg_orders.sql`).
    pub relative: String,
}

impl FoundFile {
    /// Relative to the package root (`models/staging/stg_orders.sql`): dbt's original_file_path.
    pub fn original_file_path(&self) -> String {
        format!(
            "{}/{}",
            self.search_root.trim_end_matches('/'),
            self.relative
        )
    }

    /// Folders between the resource folder and the file, for the fqn.
    pub fn folders(&self) -> Vec<String> {
        let mut parts: Vec<String> = self.relative.split('/').map(str::to_string).collect();
        parts.pop();
        parts
    }

    pub fn stem(&self) -> String {
        let name = self.relative.rsplit('/').next().unwrap_or(&self.relative);
        match name.rsplit_once('.') {
            Some((stem, _)) => stem.to_string(),
            None => name.to_string(),
        }
    }

    pub fn extension(&self) -> &str {
        let name = self.relative.rsplit('/').next().unwrap_or(&self.relative);
        name.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("")
    }
}

/// Every file under `root/<folder>` for each folder, sorted; hidden entries skipped.
pub fn walk(root: &Path, folders: &[String]) -> Vec<FoundFile> {
    let mut found = Vec::new();
    for folder in folders {
        let base = root.join(folder);
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
            entries.sort();
            for path in entries {
                let hidden = path
                    .file_name()
                    .map(|n| n.to_string_lossy().starts_with('.'))
                    .unwrap_or(false);
                if hidden {
                    continue;
                }
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&base) {
                    let relative = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().to_string())
                        .collect::<Vec<_>>()
                        .join("/");
                    found.push(FoundFile {
                        absolute: path.clone(),
                        search_root: folder.clone(),
                        relative,
                    });
                }
            }
        }
    }
    found.sort_by(|a, b| (&a.search_root, &a.relative).cmp(&(&b.search_root, &b.relative)));
    found
}
