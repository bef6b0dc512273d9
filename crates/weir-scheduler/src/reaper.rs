//! The zombie reaper: running task instances whose try stopped heartbeating, or whose worker's
//! lease ran out, are retried or failed per their retries. Before that, whatever the dead try
//! left running on this host is killed: found by its `WEIR_TRY_TAG`, never by a recorded
//! process id alone, which the system may have given to someone else since.

use crate::Scheduler;
use jiff::Timestamp;
use weir_core::{TaskState, now_micros};
use weir_store::{Finish, Finished, StoreError};

impl Scheduler {
    /// Finds zombies, kills what is left of their tries here, and retries or fails them (a
    /// zombie that was being restarted by a clear is reset to run anew). Returns how many
    /// task instances it moved.
    pub async fn reap_zombies(&self) -> Result<usize, StoreError> {
        let now = now_micros();
        let stale_before = now - self.config.zombie_threshold.as_micros() as i64;
        let zombies = self.store.zombies(stale_before, now).await?;
        let mut finishes = Vec::new();
        for ti in &zombies {
            if let Some(worker) = ti.worker.as_deref() {
                let tag = weir_core::try_tag(worker, ti.id, ti.try_number);
                kill_tagged(&tag, ti.pid.map(|p| p as i32));
            }
            let (state, next_retry_at) = if ti.try_number <= ti.max_tries {
                let delay = self
                    .dag(&ti.dag_id)
                    .and_then(|d| {
                        d.task(&ti.task_id)
                            .map(|t| t.retry_delay_after(ti.try_number as u32))
                    })
                    .unwrap_or_default();
                (TaskState::UpForRetry, Some(now + delay.as_micros() as i64))
            } else {
                (TaskState::Failed, None)
            };
            finishes.push(Finish {
                ti_id: ti.id,
                try_number: ti.try_number,
                state,
                next_retry_at,
                xcom: None,
                decision: None,
                messages: Vec::new(),
                ..Default::default()
            });
        }
        let applied = self.store.finish_zombies(&finishes).await?;
        if let Ok(mut changed) = self.changed_runs.lock() {
            for ti in &zombies {
                changed
                    .entry(ti.run_pk)
                    .or_default()
                    .push(weir_core::TiChange {
                        ti_id: ti.id,
                        state: None,
                        try_number: ti.try_number,
                        next_retry_at: None,
                    });
            }
        }
        let mut count = 0;
        for ((ti, finish), done) in zombies.iter().zip(&finishes).zip(applied) {
            if done == Finished::Lost {
                continue;
            }
            count += 1;
            let what = match done {
                Finished::Restarted => "reset to run again (it had been cleared)".to_string(),
                _ => format!("marked {}", finish.state),
            };
            let path = ti.log_file(&self.config.log_dir);
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
            {
                use std::io::Write;
                let _ = writeln!(
                    f,
                    "[{}] ERROR - zombie: worker {} stopped heartbeating this try (or lost its lease); {what}",
                    Timestamp::now(),
                    ti.worker.as_deref().unwrap_or("?")
                );
            }
            tracing::warn!(dag = %ti.dag_id, task = %ti.task_id, "reaped a zombie task instance: {what}");
        }
        self.store.drop_expired_leases(stale_before).await?;
        if count > 0 {
            self.wake.notify_one();
        }
        Ok(count)
    }
}

/// Kills every process on this host whose environment carries `tag` as its try tag: what a
/// dead worker's try left running, including children that left its process group. The
/// recorded process group is killed too, but only when a tagged process is still in it, so
/// a recycled group id is never hit. Linux only (reads `/proc`).
fn kill_tagged(tag: &str, recorded_group: Option<i32>) {
    use nix::sys::signal::{Signal, kill, killpg};
    use nix::unistd::{Pid, getpgid};
    let needle = format!("{}={tag}\0", weir_core::TRY_TAG_ENV);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let mut group_alive = false;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !environ
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
        {
            continue;
        }
        let pid = Pid::from_raw(pid);
        if recorded_group.is_some_and(|g| getpgid(Some(pid)).is_ok_and(|p| p.as_raw() == g)) {
            group_alive = true;
        }
        tracing::info!(
            pid = pid.as_raw(),
            "killing a leftover process of a dead try"
        );
        let _ = kill(pid, Signal::SIGKILL);
    }
    if let Some(group) = recorded_group.filter(|g| *g > 0 && group_alive) {
        let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
    }
}
