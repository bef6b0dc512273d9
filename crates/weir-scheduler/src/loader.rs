//! The DAG loader: the DAG folder parsed into the DAGs that run. A file that breaks keeps its
//! last good DAGs (as Airflow keeps the last serialized version) until it is fixed or deleted,
//! whether this process saw them or only the store did; its import error says what is wrong.
//! A task naming a pool that does not exist makes its file an import error too, until the pool
//! is created.
//!
//! `models` tasks with `expand: true` become one task per dbt node here ([`models`]); a dbt
//! project that does not parse is an import error of the DAG file.
//!
//! The DAG processor (the scheduler) syncs with `write = true` and is the only writer of DAG
//! rows and import errors; CLI commands load with `write = false` and change nothing.

pub mod models;

use crate::folder::{DagFolder, Parsed};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use weir_core::{Dag, SharedDags, now_micros};
use weir_store::{Store, StoreError};

/// The DAG folder and the DAGs it last gave.
pub struct DagLoader {
    folder: Mutex<DagFolder>,
    dags: SharedDags,
    paused_by_default: bool,
    /// Import errors of the last sync, by file: a sync that changes none of them and no file
    /// has nothing to write.
    errors: Mutex<BTreeMap<String, String>>,
    synced: Mutex<bool>,
    expander: Mutex<models::Expander>,
}

impl DagLoader {
    pub fn new(folder: DagFolder, paused_by_default: bool) -> Self {
        DagLoader {
            folder: Mutex::new(folder),
            dags: SharedDags::default(),
            paused_by_default,
            errors: Mutex::new(BTreeMap::new()),
            synced: Mutex::new(false),
            expander: Mutex::new(models::Expander::default()),
        }
    }

    /// The DAGs as last loaded, shared with in-process workers.
    pub fn dags(&self) -> SharedDags {
        self.dags.clone()
    }

    /// Makes `dags` the loaded DAGs, without reading the folder (in-process runs of one DAG).
    pub fn set(&self, dags: Vec<Arc<Dag>>) {
        if let Ok(mut shared) = self.dags.write() {
            *shared = dags.into_iter().map(|d| (d.dag_id.clone(), d)).collect();
        }
    }

    /// The import errors of the last load, by file.
    pub fn import_errors(&self) -> BTreeMap<String, String> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Re-reads changed files and recomputes the DAG set; with `write`, brings the store's DAG
    /// rows and import errors up to date.
    pub async fn sync(&self, store: &Store, write: bool) -> Result<(), StoreError> {
        let (scan, all, root): (crate::folder::Scan, Vec<(String, Parsed)>, PathBuf) = {
            let mut folder = self.folder.lock().unwrap_or_else(|e| e.into_inner());
            let scan = folder.scan();
            let all = folder
                .all()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            (scan, all, folder.base().to_path_buf())
        };
        let (all, expanded) = self.expand(all, &scan, &root);
        let pools: HashSet<String> = store.pools().await?.into_iter().map(|(n, _)| n).collect();
        let first = !*self.synced.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_micros();
        // A DAG id defined by two files: the first file (by name) wins, the second is an error.
        let mut owner: HashMap<String, String> = HashMap::new();
        let mut dags: HashMap<String, Arc<Dag>> = HashMap::new();
        let mut errors: BTreeMap<String, String> = BTreeMap::new();
        let mut files = Vec::new();
        for (file, parsed) in &all {
            files.push(file.clone());
            match parsed {
                Parsed::Dag(dag) => {
                    if let Some(first) = owner.get(&dag.dag_id) {
                        errors.insert(
                            file.clone(),
                            format!("{file}:1: dag_id '{}' is already defined in {first}\n  hint: give each DAG file its own dag_id", dag.dag_id),
                        );
                    } else if let Some(message) = missing_pool(file, dag, &pools) {
                        errors.insert(file.clone(), message);
                    } else {
                        owner.insert(dag.dag_id.clone(), file.clone());
                        dags.insert(dag.dag_id.clone(), Arc::new((**dag).clone()));
                    }
                }
                Parsed::Error(message) => {
                    errors.insert(file.clone(), message.clone());
                }
            }
        }
        let mut changed_files: HashSet<&str> =
            scan.changed.iter().map(|(f, _, _)| f.as_str()).collect();
        // A DAG whose dbt project changed is a changed DAG.
        changed_files.extend(expanded.iter().map(String::as_str));
        let previous_errors = self.import_errors();
        let errors_changed = previous_errors != errors;
        if !first && changed_files.is_empty() && scan.removed.is_empty() && !errors_changed {
            return Ok(());
        }
        // Last good DAGs of broken files: this process's, else the store's.
        let mut previous: Vec<Arc<Dag>> = self
            .dags
            .read()
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default();
        if errors
            .keys()
            .any(|f| !previous.iter().any(|d| &d.fileloc == f))
        {
            previous.extend(
                store
                    .active_dags()
                    .await?
                    .into_iter()
                    .map(|(d, _)| Arc::new(d)),
            );
        }
        for file in errors.keys() {
            for dag in previous.iter().filter(|d| &d.fileloc == file) {
                if !dags.contains_key(&dag.dag_id) {
                    owner.insert(dag.dag_id.clone(), file.clone());
                    dags.insert(dag.dag_id.clone(), dag.clone());
                }
            }
        }
        if write {
            let hashes: HashMap<&str, &str> = scan
                .changed
                .iter()
                .map(|(f, h, _)| (f.as_str(), h.as_str()))
                .collect();
            let loaded = self.dags.read().map(|d| d.clone()).unwrap_or_default();
            let to_write: Vec<(&Dag, &str)> = dags
                .values()
                .filter(|d| {
                    first
                        || changed_files.contains(d.fileloc.as_str())
                        || !loaded.contains_key(&d.dag_id)
                })
                .filter(|d| !errors.contains_key(&d.fileloc))
                .map(|d| {
                    (
                        d.as_ref(),
                        hashes.get(d.fileloc.as_str()).copied().unwrap_or(""),
                    )
                })
                .collect();
            store
                .upsert_dags(&to_write, self.paused_by_default, now)
                .await?;
            let keep: Vec<String> = dags.keys().cloned().collect();
            store.deactivate_dags_except(&keep).await?;
            for (file, message) in &errors {
                if first || previous_errors.get(file) != Some(message) {
                    store.set_import_error(file, Some(message), now).await?;
                }
            }
            // Only files whose error may have gone: one write per fixed file, not per file.
            for file in files.iter().filter(|f| {
                !errors.contains_key(*f)
                    && (first
                        || changed_files.contains(f.as_str())
                        || previous_errors.contains_key(*f))
            }) {
                store.set_import_error(file, None, now).await?;
            }
            store.retain_import_errors(&files).await?;
            for file in errors.keys() {
                if changed_files.contains(file.as_str()) || errors_changed {
                    tracing::warn!("import error in {file}");
                }
            }
        }
        if let Ok(mut shared) = self.dags.write() {
            *shared = dags;
        }
        *self.errors.lock().unwrap_or_else(|e| e.into_inner()) = errors;
        *self.synced.lock().unwrap_or_else(|e| e.into_inner()) = true;
        Ok(())
    }
}

impl DagLoader {
    /// Each file's DAG with its `models` tasks expanded (or the dbt project's import error),
    /// and the files whose expansion changed although the DAG file did not.
    fn expand(
        &self,
        all: Vec<(String, Parsed)>,
        scan: &crate::folder::Scan,
        root: &Path,
    ) -> (Vec<(String, Parsed)>, HashSet<String>) {
        let rescanned: HashSet<&str> = scan.changed.iter().map(|(f, _, _)| f.as_str()).collect();
        let mut expander = self.expander.lock().unwrap_or_else(|e| e.into_inner());
        // One look at each dbt project per sync, however many DAGs read it.
        let mut memo = HashMap::new();
        let mut changed = HashSet::new();
        let mut expanding = HashSet::new();
        let out: Vec<(String, Parsed)> = all
            .into_iter()
            .map(|(file, parsed)| match parsed {
                // Most DAGs have nothing to expand: no second copy of them.
                Parsed::Dag(dag) if models::has_expanding_task(&dag) => {
                    expanding.insert(file.clone());
                    let again = rescanned.contains(file.as_str());
                    let (result, recomputed) = expander.expand(&file, &dag, again, root, &mut memo);
                    if recomputed && !again {
                        changed.insert(file.clone());
                    }
                    let parsed = match result {
                        Ok(dag) => Parsed::Dag(Box::new(dag)),
                        Err(message) => Parsed::Error(message),
                    };
                    (file, parsed)
                }
                other => (file, other),
            })
            .collect();
        // Forget files that left or no longer expand anything.
        expander.retain(&expanding.iter().map(String::as_str).collect());
        (out, changed)
    }
}

/// The import error of a DAG whose task names a pool that does not exist, if any.
fn missing_pool(file: &str, dag: &Dag, pools: &HashSet<String>) -> Option<String> {
    let task = dag.tasks.iter().find(|t| !pools.contains(&t.pool))?;
    Some(format!(
        "{file}:{}: task '{}' uses pool '{}', which does not exist\n  hint: create it with `weir pools set {} SLOTS` (or set [pools] in weir.toml)",
        task.line, task.task_id, task.pool, task.pool
    ))
}
