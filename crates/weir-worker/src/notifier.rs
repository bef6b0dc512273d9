//! The notifier: claims outbox messages, delivers them, and records each outcome. Messages are
//! written in the same transaction as the state change that caused them, so a crash between
//! the change and the delivery loses none: the next notifier (after a restart, or in another
//! process) claims them again. Delivery is at least once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use weir_core::now_micros;
use weir_store::Store;

/// How the notifier behaves.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// Unique per process, recorded with each claim.
    pub id: String,
    pub project_dir: PathBuf,
    /// Longest wait between looks at the outbox when nothing wakes the notifier.
    pub poll: Duration,
    /// Attempts before a message is recorded as failed.
    pub max_attempts: i64,
    /// Delay before the second attempt; doubled for each later one.
    pub retry_delay: Duration,
    /// How long a claim lasts: a notifier that dies mid-delivery leaves the message to be
    /// claimed again after this.
    pub claim_for: Duration,
}

/// Delivers what the outbox holds.
pub struct Notifier {
    store: Store,
    config: NotifierConfig,
    /// Woken when a state change wrote messages.
    pub wake: Arc<Notify>,
}

impl Notifier {
    pub fn new(store: Store, config: NotifierConfig) -> Self {
        Notifier {
            store,
            config,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Delivers until `shutdown` turns true.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let delivered = match self.deliver_due().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!("notifier: reading the outbox failed: {e}");
                    0
                }
            };
            if delivered > 0 {
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Delivers every message due now, one claim at a time; returns how many it handled.
    pub async fn deliver_due(&self) -> Result<usize, weir_store::StoreError> {
        let now = now_micros();
        let until = now + self.config.claim_for.as_micros() as i64;
        let batch = self
            .store
            .claim_messages(&self.config.id, now, until, 16)
            .await?;
        let rt = StoreRuntime {
            store: self.store.clone(),
            project_dir: self.config.project_dir.clone(),
        };
        for message in &batch {
            let result = match message.kind.as_str() {
                weir_core::notify::KIND => {
                    weir_ops::notify::deliver_message(&message.payload, &rt).await
                }
                other => Err(format!("unknown outbox message kind '{other}'")),
            };
            let (outcome, line) = match result {
                Ok(line) => (Ok(()), format!("INFO - {line}")),
                Err(error) if message.attempts < self.config.max_attempts => {
                    let delay = self.config.retry_delay.as_micros() as i64
                        * (1_i64 << (message.attempts - 1).clamp(0, 16));
                    let line = format!(
                        "WARNING - {error} (attempt {} of {}; retrying in {})",
                        message.attempts,
                        self.config.max_attempts,
                        weir_core::format_duration(Duration::from_micros(delay as u64))
                    );
                    (Err((error, Some(now_micros() + delay))), line)
                }
                Err(error) => {
                    let line = format!(
                        "WARNING - {error} (attempt {} of {}; giving up)",
                        message.attempts, self.config.max_attempts
                    );
                    (Err((error, None)), line)
                }
            };
            tracing::info!(id = message.id, "{line}");
            task_log_line(&message.payload, &line);
            self.store
                .message_done(message.id, &self.config.id, outcome, now_micros())
                .await?;
        }
        Ok(batch.len())
    }

    /// Delivers what is due now (one attempt each; retries stay in the outbox for the next
    /// notifier), for at most `limit`: for a process about to exit.
    pub async fn flush(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            while let Ok(n) = self.deliver_due().await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }
}

/// Appends a delivery's outcome to the log of the try it is about, so that the task's log
/// says whether its notification went out.
fn task_log_line(payload: &serde_json::Value, line: &str) {
    let event = &payload["event"];
    let (Some(_), Some(path)) = (event["task_id"].as_str(), event["log_url"].as_str()) else {
        return;
    };
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(path) {
        let now = jiff::Timestamp::now()
            .round(jiff::Unit::Millisecond)
            .unwrap_or_else(|_| jiff::Timestamp::now());
        let _ = writeln!(f, "[{now}] {line}");
    }
}

/// Connections for notifications, from the store (and `WEIR_CONN_<ID>`).
struct StoreRuntime {
    store: Store,
    project_dir: PathBuf,
}

impl weir_ops::Runtime for StoreRuntime {
    fn log(&self, line: &str) {
        tracing::info!("{line}");
    }

    fn connection<'a>(
        &'a self,
        conn_id: &'a str,
    ) -> weir_ops::BoxFuture<'a, Result<weir_core::connection::Connection, String>> {
        Box::pin(async move {
            self.store
                .resolve_connection(conn_id)
                .await
                .map_err(|e| format!("connection '{conn_id}': {e}"))?
                .ok_or_else(|| format!("connection '{conn_id}' does not exist"))
        })
    }

    fn project_dir(&self) -> &std::path::Path {
        &self.project_dir
    }
}
