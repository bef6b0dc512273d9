//! The warehouse process: a child `weir warehouse-process` that runs the warehouse work of the
//! tries and sensors of one weir process ([`WarehouseProcess`], its [`WarehouseHost`]), and the
//! child's side of it ([`serve`]).
//!
//! DuckDB lets one process open a file, and keeps tens of megabytes mapped and cached after a
//! query: a server that ran one SQL task would hold them for good. So every piece of warehouse
//! work of a weir process goes to one child, which holds the open databases while work comes
//! and exits once none came for [`WarehouseProcess::new`]'s `idle`; the next work starts a new
//! child.
//!
//! The two talk in JSON lines. The parent writes [`Request`]s to the child's stdin: run a piece
//! of work (with the connections it names, resolved where the metadata store is), or cancel
//! one. The child answers on its stdout with [`Reply`]s: a log line of a piece of work, or its
//! end. The parent closes the child's stdin to stop it, and a parent that dies closes it too, so
//! a child never outlives its parent's work.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot, watch};
use weir_core::connection::Connection;
use weir_ops::warehouse::{WarehouseHost, WarehouseWork};
use weir_ops::{BoxFuture, Runtime};

/// What the end of a piece of work carries: its XCom value, or the message that fails it.
type Ended = Result<Option<Value>, String>;

/// A message to the warehouse process.
#[derive(Serialize, Deserialize)]
enum Request {
    Run {
        id: u64,
        work: Box<WarehouseWork>,
        /// Every connection the work names: the connection, or why it could not be read.
        connections: BTreeMap<String, Result<Connection, String>>,
        project_dir: PathBuf,
    },
    /// Stop the work (its try timed out or was stopped); its end is not reported.
    Cancel { id: u64 },
}

/// A message from the warehouse process.
#[derive(Serialize, Deserialize)]
enum Reply {
    Log { id: u64, line: String },
    Done { id: u64, ended: Ended },
}

/// Where one piece of work in flight reports.
struct Pending {
    log: mpsc::UnboundedSender<String>,
    done: oneshot::Sender<Ended>,
}

/// A running child.
struct Live {
    /// Lines to its stdin; `None` once it is told to stop.
    input: Mutex<Option<mpsc::UnboundedSender<String>>>,
    pending: Mutex<HashMap<u64, Pending>>,
    /// How many pieces of work it runs now: it stops after `idle` at zero.
    busy: watch::Sender<usize>,
    /// True once the child exited and was reaped.
    exited: watch::Sender<bool>,
}

impl Live {
    fn send(&self, request: &Request) -> bool {
        let Ok(line) = serde_json::to_string(request) else {
            return false;
        };
        let input = self.input.lock().unwrap_or_else(|e| e.into_inner());
        input.as_ref().is_some_and(|tx| tx.send(line).is_ok())
    }

    /// Tells the child to stop: its stdin closes once the last queued line is written.
    fn close(&self) {
        self.input.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Ends every piece of work in flight with `message`.
    fn fail_all(&self, message: &str) {
        let pending: Vec<Pending> = {
            let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            map.drain().map(|(_, p)| p).collect()
        };
        for p in pending {
            let _ = p.done.send(Err(message.to_string()));
        }
    }
}

/// The slot of the live child, shared with the tasks that watch it.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<Live>>>>;

/// Runs warehouse work in a child process of this weir: started on the first piece of work,
/// stopped after `idle` without any.
pub struct WarehouseProcess {
    program: PathBuf,
    args: Vec<String>,
    idle: Duration,
    slot: Slot,
    next_id: AtomicU64,
}

impl WarehouseProcess {
    /// A host that starts `program args…` as its child (`weir warehouse-process`), which
    /// exits after `idle` without work.
    pub fn new(program: PathBuf, args: Vec<String>, idle: Duration) -> WarehouseProcess {
        WarehouseProcess {
            program,
            args,
            idle,
            slot: Arc::new(tokio::sync::Mutex::new(None)),
            next_id: AtomicU64::new(1),
        }
    }

    /// The live child, started if none runs, with one more piece of work counted on it.
    async fn take_live(&self) -> Result<Arc<Live>, String> {
        let mut slot = self.slot.lock().await;
        if let Some(live) = slot.as_ref() {
            live.busy.send_modify(|n| *n += 1);
            return Ok(live.clone());
        }
        let live = self.spawn()?;
        live.busy.send_modify(|n| *n += 1);
        *slot = Some(live.clone());
        Ok(live)
    }

    /// Stops the child, if one runs, and waits up to `within` for it to exit: a process that
    /// ends waits so, and the next weir command finds its files closed (DuckDB lets one
    /// process open a file).
    pub async fn shutdown(&self, within: Duration) {
        let Some(live) = self.slot.lock().await.take() else {
            return;
        };
        live.close();
        let mut exited = live.exited.subscribe();
        let _ = tokio::time::timeout(within, exited.wait_for(|e| *e)).await;
    }

    fn spawn(&self) -> Result<Arc<Live>, String> {
        let mut child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Its own group: a Ctrl-C at the terminal reaches weir, which stops it in order.
            .process_group(0)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start the warehouse process {}: {e}",
                    self.program.display()
                )
            })?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the warehouse process has no pipes".into());
        };
        let (input, mut lines) = mpsc::unbounded_channel::<String>();
        let live = Arc::new(Live {
            input: Mutex::new(Some(input)),
            pending: Mutex::new(HashMap::new()),
            busy: watch::channel(0).0,
            exited: watch::channel(false).0,
        });
        tokio::spawn(async move {
            while let Some(line) = lines.recv().await {
                let written = async {
                    stdin.write_all(line.as_bytes()).await?;
                    stdin.write_all(b"\n").await?;
                    stdin.flush().await
                };
                if written.await.is_err() {
                    break;
                }
            }
            // Dropping stdin closes it: the child exits.
        });
        tokio::spawn(read_replies(live.clone(), child, stdout, self.slot.clone()));
        tokio::spawn(stop_when_idle(live.clone(), self.slot.clone(), self.idle));
        Ok(live)
    }
}

/// Hands each reply to its piece of work until the child's stdout closes; then the child is
/// reaped, leaves the slot, and any work still in flight fails.
async fn read_replies(
    live: Arc<Live>,
    mut child: tokio::process::Child,
    stdout: tokio::process::ChildStdout,
    slot: Slot,
) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match serde_json::from_str::<Reply>(&line) {
            Ok(Reply::Log { id, line }) => {
                let pending = live.pending.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(p) = pending.get(&id) {
                    let _ = p.log.send(line);
                }
            }
            Ok(Reply::Done { id, ended }) => {
                let done = live
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                if let Some(p) = done {
                    let _ = p.done.send(ended);
                }
            }
            Err(e) => {
                tracing::warn!("the warehouse process wrote an unreadable line ({e}): {line}")
            }
        }
    }
    let status = child.wait().await;
    {
        let mut slot = slot.lock().await;
        if slot.as_ref().is_some_and(|l| Arc::ptr_eq(l, &live)) {
            *slot = None;
        }
    }
    live.close();
    live.exited.send_replace(true);
    let how = match status {
        Ok(s) => s.to_string(),
        Err(e) => e.to_string(),
    };
    live.fail_all(&format!(
        "the warehouse process exited ({how}) while the task ran"
    ));
}

/// Stops the child once it ran no work for `idle`.
async fn stop_when_idle(live: Arc<Live>, slot: Slot, idle: Duration) {
    let mut busy = live.busy.subscribe();
    loop {
        if busy.wait_for(|n| *n == 0).await.is_err() {
            return;
        }
        if tokio::time::timeout(idle, busy.wait_for(|n| *n > 0))
            .await
            .is_ok()
        {
            continue;
        }
        // Work is counted under the slot's lock: nothing can start on this child meanwhile.
        let mut slot = slot.lock().await;
        if *busy.borrow() > 0 {
            continue;
        }
        if slot.as_ref().is_some_and(|l| Arc::ptr_eq(l, &live)) {
            *slot = None;
        }
        live.close();
        return;
    }
}

/// Counts a piece of work off its child when it ends or is dropped (a timeout, a stopped try),
/// and cancels it in the child when it had not ended.
struct InFlight {
    live: Arc<Live>,
    id: u64,
    ended: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.ended {
            let removed = self
                .live
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.id);
            if removed.is_some() {
                self.live.send(&Request::Cancel { id: self.id });
            }
        }
        self.live.busy.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl WarehouseHost for WarehouseProcess {
    fn run<'a>(
        &'a self,
        work: WarehouseWork,
        rt: &'a dyn Runtime,
    ) -> BoxFuture<'a, Result<Option<Value>, String>> {
        Box::pin(async move {
            let mut connections = BTreeMap::new();
            for id in work.connections() {
                let conn = rt.connection(&id).await;
                connections.insert(id, conn);
            }
            let live = self.take_live().await?;
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let mut flight = InFlight {
                live: live.clone(),
                id,
                ended: false,
            };
            let (log, mut logs) = mpsc::unbounded_channel();
            let (done, mut ended) = oneshot::channel();
            live.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, Pending { log, done });
            let request = Request::Run {
                id,
                work: Box::new(work),
                connections,
                project_dir: rt.project_dir().to_path_buf(),
            };
            if !live.send(&request) {
                live.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                return Err("the warehouse process stopped before the task could start".into());
            }
            let result = loop {
                tokio::select! {
                    Some(line) = logs.recv() => rt.log(&line),
                    result = &mut ended => {
                        // Lines sent before the end are all in the channel by now.
                        while let Ok(line) = logs.try_recv() {
                            rt.log(&line);
                        }
                        break result.unwrap_or_else(|_| {
                            Err("the warehouse process lost the task".to_string())
                        });
                    }
                }
            };
            flight.ended = true;
            result
        })
    }
}

/// The child's side: runs each piece of work it reads on stdin at once, beside the others,
/// and answers on stdout, until stdin closes. Anything else that prints to stdout (a dbt
/// `print()`) goes to stderr instead, so it cannot break the replies.
pub async fn serve() -> std::io::Result<()> {
    let replies = nix::unistd::dup(std::io::stdout()).map_err(std::io::Error::from)?;
    nix::unistd::dup2_stdout(std::io::stderr()).map_err(std::io::Error::from)?;
    let mut replies = tokio::fs::File::from_std(std::fs::File::from(replies));
    let (out, mut outgoing) = mpsc::unbounded_channel::<Reply>();
    let writer = tokio::spawn(async move {
        while let Some(reply) = outgoing.recv().await {
            let Ok(mut line) = serde_json::to_string(&reply) else {
                continue;
            };
            line.push('\n');
            if replies.write_all(line.as_bytes()).await.is_err() || replies.flush().await.is_err() {
                break;
            }
        }
    });
    let running: Arc<Mutex<HashMap<u64, tokio::task::AbortHandle>>> = Arc::default();
    let mut requests = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = requests.next_line().await? {
        let request: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("the warehouse process cannot read a request: {e}");
                continue;
            }
        };
        match request {
            Request::Run {
                id,
                work,
                connections,
                project_dir,
            } => {
                let rt = ChildRuntime {
                    id,
                    out: out.clone(),
                    connections,
                    project_dir,
                };
                let out = out.clone();
                let registry = running.clone();
                let mut map = running.lock().unwrap_or_else(|e| e.into_inner());
                let task = tokio::spawn(async move {
                    let ended = (*work).run(&rt).await;
                    registry
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&id);
                    let _ = out.send(Reply::Done { id, ended });
                });
                map.insert(id, task.abort_handle());
            }
            Request::Cancel { id } => {
                let task = running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                if let Some(task) = task {
                    task.abort();
                }
            }
        }
    }
    // Stdin closed: the parent stopped this process (or died). Close the databases.
    for (_, task) in running.lock().unwrap_or_else(|e| e.into_inner()).drain() {
        task.abort();
    }
    drop(out);
    let _ = writer.await;
    weir_warehouse::close_idle_databases();
    Ok(())
}

/// What a piece of work sees in the warehouse process.
struct ChildRuntime {
    id: u64,
    out: mpsc::UnboundedSender<Reply>,
    connections: BTreeMap<String, Result<Connection, String>>,
    project_dir: PathBuf,
}

impl Runtime for ChildRuntime {
    fn log(&self, line: &str) {
        let _ = self.out.send(Reply::Log {
            id: self.id,
            line: line.to_string(),
        });
    }

    fn connection<'a>(&'a self, conn_id: &'a str) -> BoxFuture<'a, Result<Connection, String>> {
        let found = self.connections.get(conn_id).cloned().unwrap_or_else(|| {
            Err(format!(
                "connection '{conn_id}' was not passed to the warehouse process"
            ))
        });
        Box::pin(async move { found })
    }

    fn project_dir(&self) -> &std::path::Path {
        &self.project_dir
    }
}
