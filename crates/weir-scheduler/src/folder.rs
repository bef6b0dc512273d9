//! The DAG folder: which files changed since the last look (mtime and size, then a content
//! hash: BLAKE3, in hex, the `hash` of the file's `dag` rows), parsed into DAGs or import errors. `.weirignore` lines are globs of files to skip.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use weir_core::Dag;
use weir_spec::{ParseOptions, parse_dag};

/// What one file parsed to.
#[derive(Debug, Clone)]
pub enum Parsed {
    Dag(Box<Dag>),
    Error(String),
}

#[derive(Debug, Clone)]
struct Seen {
    mtime: Option<SystemTime>,
    len: u64,
    hash: String,
    parsed: Parsed,
}

/// The result of one look at the folder.
#[derive(Debug, Default)]
pub struct Scan {
    /// Files that are new or whose content changed, with what they parsed to and their hash.
    pub changed: Vec<(String, String, Parsed)>,
    /// Files that disappeared.
    pub removed: Vec<String>,
}

/// Tracks the DAG files of one folder between scans.
pub struct DagFolder {
    dir: PathBuf,
    /// Paths are reported relative to this (the project root) when possible.
    base: PathBuf,
    options: ParseOptions,
    seen: BTreeMap<String, Seen>,
}

impl DagFolder {
    pub fn new(dir: PathBuf, base: PathBuf, options: ParseOptions) -> Self {
        DagFolder {
            dir,
            base,
            options,
            seen: BTreeMap::new(),
        }
    }
}

/// The DAG files under `dir` (`.yaml`/`.yml`, skipping hidden files and `.weirignore` matches),
/// sorted by path.
pub fn dag_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    collect_yaml(dir, dir, &load_ignore(dir), &mut files);
    files
}

impl DagFolder {
    /// The project root: DAG files are named relative to it, and so are dbt projects.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Every current file's parse result.
    pub fn all(&self) -> impl Iterator<Item = (&str, &Parsed)> {
        self.seen.iter().map(|(k, v)| (k.as_str(), &v.parsed))
    }

    /// Looks at every file; parses only those whose mtime, size or content changed.
    pub fn scan(&mut self) -> Scan {
        let files = dag_files(&self.dir);
        let mut scan = Scan::default();
        let mut present = Vec::with_capacity(files.len());
        let mut to_parse = Vec::new();
        for path in files {
            let name = display_path(&path, &self.base);
            present.push(name.clone());
            let meta = std::fs::metadata(&path).ok();
            let mtime = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.as_ref().map(|m| m.len()).unwrap_or(0);
            if let Some(seen) = self.seen.get(&name)
                && seen.mtime == mtime
                && seen.len == len
            {
                continue;
            }
            to_parse.push((name, path, mtime, len));
        }
        let options = &self.options;
        let parsed = parse_parallel(&to_parse, options);
        for ((name, _, mtime, len), (hash, result)) in to_parse.into_iter().zip(parsed) {
            let unchanged = self.seen.get(&name).is_some_and(|s| s.hash == hash);
            let entry = Seen {
                mtime,
                len,
                hash: hash.clone(),
                parsed: result.clone(),
            };
            self.seen.insert(name.clone(), entry);
            if !unchanged {
                scan.changed.push((name, hash, result));
            }
        }
        let gone: Vec<String> = self
            .seen
            .keys()
            .filter(|k| !present.contains(k))
            .cloned()
            .collect();
        for name in gone {
            self.seen.remove(&name);
            scan.removed.push(name);
        }
        scan
    }
}

/// Parses files on all cores; returns (hash, result) per file in order.
fn parse_parallel(
    files: &[(String, PathBuf, Option<SystemTime>, u64)],
    options: &ParseOptions,
) -> Vec<(String, Parsed)> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    if files.len() < 16 || threads == 1 {
        return files
            .iter()
            .map(|(name, path, _, _)| parse_file(name, path, options))
            .collect();
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(n, p, _, _)| parse_file(n, p, options))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

fn parse_file(name: &str, path: &Path, options: &ParseOptions) -> (String, Parsed) {
    match std::fs::read(path) {
        Ok(bytes) => {
            let hash = blake3::hash(&bytes).to_hex().to_string();
            let parsed = match parse_dag(name, &bytes, options) {
                Ok(dag) => Parsed::Dag(Box::new(dag)),
                Err(errors) => Parsed::Error(errors.to_string()),
            };
            (hash, parsed)
        }
        Err(e) => (
            String::new(),
            Parsed::Error(format!("{name}:0: cannot read the file: {e}")),
        ),
    }
}

fn display_path(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn collect_yaml(root: &Path, dir: &Path, ignore: &GlobSet, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path);
        if entry.file_name().to_string_lossy().starts_with('.') || ignore.is_match(rel) {
            continue;
        }
        if path.is_dir() {
            collect_yaml(root, &path, ignore, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}

/// `.weirignore`: one glob per line (`*` within a name, `**` across folders, `#` comments),
/// matched against paths relative to the DAG folder; a pattern without `/` matches any file
/// or folder of that name, as in `.gitignore`. A line that is not a valid glob is skipped.
fn load_ignore(dir: &Path) -> GlobSet {
    let text = std::fs::read_to_string(dir.join(".weirignore")).unwrap_or_default();
    ignore_set(text.lines())
}

fn ignore_set<'a>(lines: impl Iterator<Item = &'a str>) -> GlobSet {
    let mut set = GlobSetBuilder::new();
    for line in lines
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let anchored = line.contains('/');
        let pattern = line.trim_start_matches('/').trim_end_matches('/');
        let base = if anchored {
            pattern.to_string()
        } else {
            format!("**/{pattern}")
        };
        // The pattern itself, and everything under a folder it names.
        for glob in [base.clone(), format!("{base}/**")] {
            if let Ok(g) = GlobBuilder::new(&glob).literal_separator(true).build() {
                set.add(g);
            }
        }
    }
    set.build().unwrap_or_else(|_| GlobSet::empty())
}

#[cfg(test)]
mod tests {
    use super::{DagFolder, ignore_set};
    use weir_spec::ParseOptions;

    #[test]
    fn a_file_is_changed_when_its_blake3_digest_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        let text = "dag_id: a\ntasks:\n  t:\n    type: empty\n";
        std::fs::write(&file, text).unwrap();
        let mut folder = DagFolder::new(
            dir.path().to_path_buf(),
            dir.path().to_path_buf(),
            ParseOptions::default(),
        );
        let scan = folder.scan();
        assert_eq!(scan.changed.len(), 1);
        let (name, hash, _) = &scan.changed[0];
        assert_eq!(name, "a.yaml");
        assert_eq!(hash, &blake3::hash(text.as_bytes()).to_hex().to_string());
        assert_eq!(hash.len(), 64);

        // Same bytes, new mtime and size history: not a change.
        std::fs::write(&file, "x").unwrap();
        std::fs::write(&file, text).unwrap();
        let file_handle = std::fs::File::options().write(true).open(&file).unwrap();
        file_handle
            .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        assert!(folder.scan().changed.is_empty());

        std::fs::write(&file, text.replace("empty", "shell")).unwrap();
        file_handle
            .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(10))
            .unwrap();
        assert_eq!(folder.scan().changed.len(), 1);
    }

    #[test]
    fn globs_match_like_gitignore() {
        let cases = [
            ("old_*", "old_sales.yaml", true),
            ("old_*", "team/old_x.yaml", true),
            ("old_*", "bold_x.yaml", false),
            ("team/*.yaml", "team/a.yaml", true),
            ("team/*.yaml", "other/team/a.yaml", false),
            ("drafts", "drafts/a.yaml", true),
            ("drafts/", "drafts/deep/a.yaml", true),
            ("**/tmp_*.yaml", "a/b/tmp_1.yaml", true),
        ];
        for (glob, path, expected) in cases {
            let set = ignore_set(std::iter::once(glob));
            assert_eq!(set.is_match(path), expected, "{glob} vs {path}");
        }
    }
}
