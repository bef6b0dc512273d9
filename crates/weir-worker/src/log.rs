//! A try's log file: every line masked, with the level and time weir writes.

use super::*;

/// The last `lines` lines of a log file, for a failure notification.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A try's log file: every line goes through the masker, so no secret reaches it.
pub struct TaskLog {
    file: Mutex<Option<std::fs::File>>,
    masker: Arc<Masker>,
}

impl TaskLog {
    /// Opens (appends to) the log at `path`; a log that cannot be opened drops lines rather
    /// than failing the task.
    pub fn open(path: &Path, masker: Arc<Masker>) -> TaskLog {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // Logs may quote data a task read: readable by the project's owner only.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            // Read too: a process that wrote the log itself has its last line read back.
            .read(true)
            .mode(0o600)
            .open(path)
            .ok();
        TaskLog {
            file: Mutex::new(file),
            masker,
        }
    }

    /// Appends one line in weir's log format: `[2026-01-15T03:00:00.123Z] INFO - message`.
    pub fn line(&self, level: &str, message: &str) {
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = guard.as_mut() {
            let now = jiff::Timestamp::now()
                .round(jiff::Unit::Millisecond)
                .unwrap_or_else(|_| jiff::Timestamp::now());
            // One write per line: formatting straight into the file is a write per piece.
            let line = format!("[{now}] {level} - {}\n", self.masker.mask(message));
            let _ = file.write_all(line.as_bytes());
        }
    }

    pub(crate) fn file_clone(&self) -> Option<std::fs::File> {
        let guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().and_then(|f| f.try_clone().ok())
    }

    pub fn masker(&self) -> Arc<Masker> {
        self.masker.clone()
    }
}
