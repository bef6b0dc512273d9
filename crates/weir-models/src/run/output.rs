//! Console lines in dbt's shape: `1 of 28 START sql view model main.stg_customers ... [RUN]`.

use std::io::Write;
use std::sync::Mutex;

/// Where the runner prints; lines go out whole, one at a time, from any thread.
pub struct Printer {
    out: Mutex<Box<dyn Write + Send>>,
}

impl Printer {
    pub fn new(out: Box<dyn Write + Send>) -> Printer {
        Printer {
            out: Mutex::new(out),
        }
    }

    /// Prints one line with dbt's `HH:MM:SS  ` prefix.
    pub fn line(&self, text: &str) {
        let now = jiff::Zoned::now();
        let stamp = now.strftime("%H:%M:%S").to_string();
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        for line in text.lines() {
            let _ = writeln!(out, "{stamp}  {line}");
        }
        if text.is_empty() {
            let _ = writeln!(out, "{stamp}");
        }
        let _ = out.flush();
    }

    /// `index of total MESSAGE ....... [STATUS]`, dotted to dbt's width of 80.
    pub fn progress(&self, index: usize, total: usize, message: &str, status: &str) {
        self.line(&progress_line(index, total, message, status));
    }
}

pub fn progress_line(index: usize, total: usize, message: &str, status: &str) -> String {
    let prefix = format!("{index} of {total} {message} ");
    let width = prefix.chars().count();
    let dots = if width < 80 { 80 - width } else { 3 };
    format!("{prefix}{} [{status}]", ".".repeat(dots))
}
