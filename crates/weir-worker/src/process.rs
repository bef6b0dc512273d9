//! Running one try as a process: its own process group, its output in its log file, a
//! timeout that kills the whole group, and no stragglers left behind.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;
use weir_ops::ProcessSpec;

/// How a process ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut(Duration),
    /// Killed on request (shutdown or an external state change).
    Killed,
    SpawnFailed(String),
}

/// The result of one process run.
#[derive(Debug, Clone)]
pub struct ProcessResult {
    pub exit: Exit,
    /// The last non-empty line of output.
    pub last_line: Option<String>,
}

/// Where a process's output goes: its try's log file, through the try's masker.
pub struct ProcessLog {
    pub file: std::fs::File,
    pub masker: std::sync::Arc<weir_core::connection::Masker>,
}

/// A running process's group id, for killing from elsewhere.
pub type Pgid = i32;

/// Sends `signal` to the whole process group `pgid`, ignoring a group that is already gone.
pub fn signal_group(pgid: Pgid, signal: Signal) {
    let _ = killpg(Pid::from_raw(pgid), signal);
}

/// Starts `spec` with `env`, appending its output to `log`. `record` receives the process
/// group id as soon as the process exists and persists it, so a reaper can kill the group after
/// a crash; `kill` resolves when the caller wants the process stopped.
///
/// A worker killed with its tasks running leaves them running; before it retries them, the
/// reaper kills the recorded process group and every process carrying the try's
/// `WEIR_TRY_TAG` in its environment (which also covers a pid not yet recorded), so a try
/// never runs beside the retry that replaces it.
pub async fn run_process<R: std::future::Future<Output = ()>>(
    spec: &ProcessSpec,
    env: &[(String, String)],
    log: ProcessLog,
    timeout: Option<Duration>,
    kill_grace: Duration,
    record: impl FnOnce(Pgid) -> R,
    kill: impl std::future::Future<Output = ()>,
) -> ProcessResult {
    let (stdout, stderr, output) = match connect_output(log) {
        Ok(parts) => parts,
        Err(e) => return spawn_failed(format!("cannot connect the process's output: {e}")),
    };
    // The child's PATH: the spec's environment wins over the try's, which wins over ours.
    let path_var = spec
        .env
        .iter()
        .rev()
        .chain(env.iter().rev())
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v))
        .or_else(|| std::env::var_os("PATH"));
    let mut cmd = Command::new(program_path(&spec.program, path_var.as_deref()));
    cmd.args(&spec.args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    // No pre_exec here: it forces fork() instead of posix_spawn, which costs about 3.5 ms a
    // task in a worker this size (measured: chain100 11.6 → 8.1 ms/task, fan1000 142 → 277
    // tasks/s). Leftovers of a dead worker are found through WEIR_TRY_TAG instead.
    let spawned = cmd.spawn();
    // The parent's copies of the output's write ends must go, or a pipe's reader never sees
    // EOF.
    drop(cmd);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            return spawn_failed(format!("cannot start '{}': {e}", spec.program));
        }
    };
    let pgid = child.id().map(|p| p as Pgid).unwrap_or(0);
    record(pgid).await;
    let waited = async {
        match timeout {
            Some(limit) => tokio::time::timeout(limit, child.wait())
                .await
                .map_err(|_| Exit::TimedOut(limit)),
            None => Ok(child.wait().await),
        }
    };
    let outcome = tokio::select! {
        res = waited => res,
        _ = kill => Err(Exit::Killed),
    };
    let exit = match outcome {
        Ok(Ok(status)) => {
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(code), _) => Exit::Code(code),
                (None, Some(sig)) => Exit::Signal(sig),
                _ => Exit::Code(-1),
            }
        }
        Ok(Err(e)) => Exit::SpawnFailed(format!("waiting for the process failed: {e}")),
        Err(stop) => {
            // Ask politely, then make sure: the whole group, children included.
            signal_group(pgid, Signal::SIGTERM);
            if tokio::time::timeout(kill_grace, child.wait())
                .await
                .is_err()
            {
                signal_group(pgid, Signal::SIGKILL);
                let _ = child.wait().await;
            }
            stop
        }
    };
    // Whatever the task left running in its group goes with it.
    if pgid > 0 {
        signal_group(pgid, Signal::SIGKILL);
    }
    let last_line = match output {
        Output::Direct { file, start } => end_of_direct_output(&file, start),
        Output::Copier(copier) => {
            match tokio::time::timeout(Duration::from_secs(5), copier).await {
                Ok(Ok(last)) => last,
                _ => None,
            }
        }
    };
    ProcessResult { exit, last_line }
}

/// Where `program` is on the child's `PATH`, looked up once per program and `PATH`, as a
/// shell hashes the commands it ran. Spawned by name, the child tries each `PATH` entry in
/// turn, an exec each: fourteen failed execs before `bash` on a `PATH` of sixteen entries. A
/// name with a slash, a `PATH` with a relative entry (which depends on the child's working
/// directory) and a program not found are passed on as given, for the spawn to resolve or
/// report. A remembered path is checked before each use, so a removed program is looked up
/// again.
fn program_path(program: &str, path_var: Option<&std::ffi::OsStr>) -> std::path::PathBuf {
    use std::collections::HashMap;
    use std::ffi::OsString;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;
    use std::sync::{LazyLock, Mutex};
    static FOUND: LazyLock<Mutex<HashMap<(String, OsString), PathBuf>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let Some(path_var) = path_var.filter(|_| !program.contains('/') && !program.is_empty()) else {
        return PathBuf::from(program);
    };
    let key = (program.to_string(), path_var.to_os_string());
    let remembered = FOUND.lock().ok().and_then(|f| f.get(&key).cloned());
    if let Some(found) = remembered.filter(|p| executable(p)) {
        return found;
    }
    let dirs: Vec<PathBuf> = std::env::split_paths(path_var).collect();
    if dirs.iter().any(|d| d.is_relative()) {
        return PathBuf::from(program);
    }
    match dirs.iter().map(|d| d.join(program)).find(|p| executable(p)) {
        Some(found) => {
            if let Ok(mut f) = FOUND.lock() {
                f.insert(key, found.clone());
            }
            found
        }
        None => PathBuf::from(program),
    }
}

fn spawn_failed(message: String) -> ProcessResult {
    ProcessResult {
        exit: Exit::SpawnFailed(message),
        last_line: None,
    }
}

/// Where a process's output goes on its way to the log.
enum Output {
    /// Nothing to mask: the process appends to its log file itself, with no pipe and no copier
    /// thread between (a fan-out of short tasks spent a tenth of weir's time on them). `start`
    /// is the log's length before the process wrote to it.
    Direct { file: std::fs::File, start: u64 },
    /// Through a pipe and the masker: the copier returns the last non-empty line. It ends at
    /// EOF, when the process (and whatever it left running) and the parent's command have
    /// closed the pipe.
    Copier(tokio::task::JoinHandle<Option<String>>),
}

/// The process's stdout and stderr, and how its output reaches the log.
fn connect_output(log: ProcessLog) -> std::io::Result<(Stdio, Stdio, Output)> {
    if log.masker.is_empty() {
        let start = log.file.metadata()?.len();
        let stdout = Stdio::from(log.file.try_clone()?);
        let stderr = Stdio::from(log.file.try_clone()?);
        return Ok((
            stdout,
            stderr,
            Output::Direct {
                file: log.file,
                start,
            },
        ));
    }
    let (reader, writer) = std::io::pipe()?;
    let stderr = Stdio::from(writer.try_clone()?);
    let copier = tokio::task::spawn_blocking(move || copy_output(reader, log.file, &log.masker));
    Ok((Stdio::from(writer), stderr, Output::Copier(copier)))
}

/// After a process that wrote its log directly: ends its last line (so weir's next line starts
/// on its own) and returns the last non-empty line it wrote.
fn end_of_direct_output(file: &std::fs::File, start: u64) -> Option<String> {
    use std::os::unix::fs::FileExt;
    const TAIL: u64 = 64 * 1024;
    let len = file.metadata().ok()?.len();
    if len <= start {
        return None;
    }
    let from = start.max(len.saturating_sub(TAIL));
    let mut tail = vec![0; (len - from) as usize];
    file.read_exact_at(&mut tail, from).ok()?;
    if tail.last() != Some(&b'\n') {
        let _ = (&*file).write_all(b"\n");
    }
    String::from_utf8_lossy(&tail)
        .lines()
        .rev()
        .map(str::trim_end)
        .find(|line| !line.is_empty())
        .map(str::to_string)
}

/// Copies the process's output into the log line by line (so a tail sees it live) and
/// returns the last non-empty line.
fn copy_output(
    reader: std::io::PipeReader,
    mut log: std::fs::File,
    masker: &weir_core::connection::Masker,
) -> Option<String> {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    let mut last = None;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let masked = masker.mask(&text);
                let _ = log.write_all(masked.as_bytes());
                if !masked.ends_with('\n') {
                    let _ = log.write_all(b"\n");
                }
                let text = masked.trim_end().to_string();
                if !text.is_empty() {
                    last = Some(text);
                }
            }
        }
    }
    let _ = log.flush();
    last
}

#[cfg(test)]
mod tests {
    use super::program_path;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn script(dir: &Path, name: &str) {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_program_is_found_on_path_once_and_again_when_it_moved() {
        let root = std::env::temp_dir().join(format!("weir-path-{}", std::process::id()));
        let (first, second) = (root.join("a"), root.join("b"));
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        std::fs::write(first.join("tool"), "not executable").unwrap();
        script(&second, "tool");
        let path = std::env::join_paths([&first, &second]).unwrap();
        assert_eq!(program_path("tool", Some(&path)), second.join("tool"));
        std::fs::remove_file(second.join("tool")).unwrap();
        script(&first, "tool2");
        std::fs::rename(first.join("tool2"), first.join("tool")).unwrap();
        assert_eq!(
            program_path("tool", Some(&path)),
            first.join("tool"),
            "the remembered path is gone: looked up again"
        );
        assert_eq!(program_path("missing", Some(&path)), Path::new("missing"));
        assert_eq!(program_path("./tool", Some(&path)), Path::new("./tool"));
        let relative = std::env::join_paths([Path::new("bin"), &second]).unwrap();
        assert_eq!(program_path("tool", Some(&relative)), Path::new("tool"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
