//! One try of a claimed task instance: plan it, run it (a process, in the worker, in the
//! warehouse process, a wait or a trigger), and record its outcome with a compare-and-set.

use super::*;

impl Worker {
    /// Runs one claimed try to its end and records the outcome, unless the try lost its task
    /// instance meanwhile.
    pub(crate) async fn execute(
        &self,
        ti: ClaimedTi,
        mut kill: watch::Receiver<bool>,
        lost: Arc<std::sync::atomic::AtomicBool>,
    ) {
        let path = ti.log_file(&self.config.log_dir);
        // Read once per try: the template context and the log's masker both need them.
        let secrets = self.secrets().await;
        let log = TaskLog::open(&path, secrets.masker.clone());
        let outcome = match secrets.error.clone() {
            Some(e) => Err(e),
            None => self.attempt(&ti, &log, &secrets, &mut kill).await,
        };
        let outcome = outcome.unwrap_or_else(Outcome::failed);
        let Outcome {
            mut state,
            message,
            xcom,
            decision,
            ..
        } = outcome;
        let mut next_retry_at = outcome.next_check;
        if state == TaskState::Failed && !outcome.no_retry && ti.try_number <= ti.max_tries {
            state = TaskState::UpForRetry;
            let delay = match self
                .dag(&ti.dag_id)
                .await
                .as_ref()
                .and_then(|d| d.task(&ti.task_id).cloned())
            {
                Some(task) => task.retry_delay_after(ti.try_number as u32),
                None => Duration::ZERO,
            };
            next_retry_at = Some(now_micros() + delay.as_micros() as i64);
        }
        log.line(
            match state {
                TaskState::Success | TaskState::Deferred | TaskState::UpForReschedule => "INFO",
                _ => "ERROR",
            },
            &message,
        );
        if let Ok(mut running) = self.running.lock() {
            running.remove(&ti.id);
        }
        // A lost try records nothing of its own; its finish can only reset an instance that a
        // clear left `restarting` for this very try (the compare-and-set checks both).
        let lost = lost.load(std::sync::atomic::Ordering::SeqCst);
        let messages = if lost {
            Vec::new()
        } else {
            self.notifications(&ti, state, &path).await
        };
        let notifies = !messages.is_empty();
        let finish = Finish {
            ti_id: ti.id,
            try_number: ti.try_number,
            state,
            next_retry_at,
            xcom: xcom.filter(|_| state == TaskState::Success && !lost),
            decision: decision.filter(|_| state == TaskState::Success && !lost),
            messages,
            reason: outcome.reason,
            sensor: outcome.sensor,
            sensor_key: outcome.sensor_key,
        };
        let decided = finish.decision.is_some();
        let result = self.recorder().finish(self.id(), finish).await;
        // A recorded decision is more than the scheduler's view holds: it reads the instance.
        let recorded = match &result {
            Ok(Finished::Applied) if !decided => Some(state),
            _ => None,
        };
        match result {
            Ok(Finished::Applied) => {
                log.line("INFO", &format!("marked {state}"));
                if let Some(start) = ti.start_date {
                    metrics::histogram!("weir_task_duration_seconds", "state" => state.as_str())
                        .record((weir_core::now_micros() - start) as f64 / 1e6);
                }
                if notifies {
                    self.outbox_wake.notify_one();
                }
            }
            Ok(Finished::Restarted) => log.line(
                "WARNING",
                "the task instance was cleared while it ran; this try was stopped and it will run again",
            ),
            Ok(Finished::Lost) if lost => log.line(
                "WARNING",
                "this try lost its task instance (reaped, cleared or retried elsewhere); it was killed and its outcome is not recorded",
            ),
            Ok(Finished::Lost) => log.line(
                "WARNING",
                "the task instance changed state while it ran (reaped or cleared); outcome not recorded",
            ),
            Err(e) => {
                tracing::error!(task = %ti.task_id, "recording the outcome failed: {e}");
                log.line("ERROR", &format!("recording the outcome failed: {e}"));
            }
        }
        if let Some(changed) = &self.changed {
            weir_core::note_change(
                changed,
                ti.run_pk,
                weir_core::TiChange {
                    ti_id: ti.id,
                    state: recorded,
                    // A reschedule gave its try number back.
                    try_number: ti.try_number
                        - (recorded == Some(TaskState::UpForReschedule)) as i64,
                    next_retry_at,
                },
            );
        }
        self.scheduler_wake.notify_one();
    }

    /// The task's `on_failure` / `on_retry` / `on_success` notifications for this outcome, as
    /// outbox messages written with the finish, so that they are sent at least once.
    pub(crate) async fn notifications(
        &self,
        ti: &ClaimedTi,
        state: TaskState,
        log_file: &Path,
    ) -> Vec<NewMessage> {
        if outcome_callback(state).is_none() {
            return Vec::new();
        }
        let Some(dag) = self.dag(&ti.dag_id).await else {
            return Vec::new();
        };
        let logical_date = self.run_of(ti).await.ok().map(|r| r.logical_date);
        outcome_messages(&dag, ti, logical_date, state, log_file)
    }

    /// Plans and runs the try; `Err` is a failure message for the log.
    pub(crate) async fn attempt(
        &self,
        ti: &ClaimedTi,
        log: &TaskLog,
        secrets: &Secrets,
        kill: &mut watch::Receiver<bool>,
    ) -> Result<Outcome, String> {
        let dag = self
            .dag(&ti.dag_id)
            .await
            .ok_or_else(|| format!("DAG '{}' is not loaded", ti.dag_id))?;
        let task = dag
            .task(&ti.task_id)
            .ok_or_else(|| format!("task '{}' is no longer in DAG '{}'", ti.task_id, ti.dag_id))?;
        log.line(
            "INFO",
            &format!(
                "starting try {} of {} of {}.{}{} (run {}) on {}",
                ti.try_number,
                ti.max_tries + 1,
                ti.dag_id,
                ti.task_id,
                match ti.map_index {
                    -1 => String::new(),
                    i => format!("[{i}]"),
                },
                ti.run_id,
                self.id()
            ),
        );
        let run = self.run_of(ti).await?;
        let ctx = self.template_context(&dag, task, &run, ti, secrets).await?;
        let cx = PlanContext {
            dag: &dag,
            task,
            run_type: run.run_type,
            now: jiff::Timestamp::now(),
            template: &ctx,
            renderer: &self.renderer,
            project_dir: &self.config.project_dir,
        };
        let plan = self.registry.plan(&cx).map_err(|e| e.to_string())?;
        let rt = NativeRuntime { worker: self, log };
        let (spec, read) = match plan {
            Plan::Nothing => return Ok(Outcome::success(None, "nothing to do".into())),
            Plan::Process(spec) => (spec, None),
            Plan::Native(native) => return Ok(self.in_worker(native.run(&rt), task, kill).await),
            Plan::Warehouse(work) => {
                let work = self.warehouses.run(*work, &rt);
                return Ok(self.in_worker(work, task, kill).await);
            }
            Plan::Wait(wait) => return self.sensor(ti, wait, log, kill).await,
            Plan::Trigger(trigger) => return self.trigger(ti, trigger, log).await,
            Plan::Decide(Decide::Now(verdict)) => return Ok(Outcome::decided(verdict)),
            Plan::Decide(Decide::Script { spec, read }) => (spec, Some(read)),
        };
        let xcom_file = std::env::temp_dir().join(format!(
            "weir-xcom-{}-{}-{}.json",
            std::process::id(),
            ti.id,
            ti.try_number
        ));
        let _ = std::fs::remove_file(&xcom_file);
        let mut env: Vec<(String, String)> = Renderer::context_strings(&ctx)
            .into_iter()
            .map(|(k, v)| (format!("WEIR_{}", k.to_ascii_uppercase()), v))
            .collect();
        env.push(("WEIR_XCOM".into(), xcom_file.display().to_string()));
        env.push((
            weir_core::TRY_TAG_ENV.into(),
            weir_core::try_tag(
                &ti.worker.clone().unwrap_or_else(|| self.id()),
                ti.id,
                ti.try_number,
            ),
        ));
        env.push((
            "WEIR_PARAMS".into(),
            serde_json::Value::Object(ctx.params.clone()).to_string(),
        ));
        env.push((
            "WEIR_CONF".into(),
            serde_json::Value::Object(ctx.conf.clone()).to_string(),
        ));
        env.push((
            "WEIR_PROJECT_DIR".into(),
            self.config.project_dir.display().to_string(),
        ));
        for (key, value) in &task.env {
            let rendered = self
                .renderer
                .render_str(value, &ctx)
                .map_err(|e| format!("env '{key}' of task '{}': {e}", task.task_id))?;
            env.push((key.clone(), rendered));
        }
        let log_file = log
            .file_clone()
            .ok_or_else(|| "cannot open the log file".to_string())?;
        let running = &self.running;
        let recorder = self.recorder();
        let result = run_process(
            &spec,
            &env,
            process::ProcessLog {
                file: log_file,
                masker: log.masker(),
            },
            task.execution_timeout,
            self.config.kill_grace,
            |pgid| async move {
                if let Ok(mut r) = running.lock()
                    && let Some(t) = r.get_mut(&ti.id)
                {
                    t.pgid = Some(pgid);
                    // Lost before the process existed: the heartbeat could not kill it.
                    if t.lost.load(std::sync::atomic::Ordering::SeqCst) {
                        process::signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                    }
                }
                recorder.pid(ti.id, ti.try_number, pgid as i64);
            },
            async {
                let _ = kill.wait_for(|k| *k).await;
            },
        )
        .await;
        let xcom = read_xcom(&xcom_file, spec.xcom, result.last_line.as_deref());
        let _ = std::fs::remove_file(&xcom_file);
        // A control-flow script: its exit code and last line are its verdict.
        if let (Some(read), Exit::Code(code)) = (read, &result.exit) {
            return read(ScriptEnd {
                code: *code,
                last_line: result.last_line.as_deref(),
            })
            .map(Outcome::decided);
        }
        let xcom = xcom?;
        Ok(match result.exit {
            Exit::Code(0) => Outcome::success(xcom, "task exited with return code 0".into()),
            Exit::Code(code) if Some(code) == spec.skip_exit_code => Outcome {
                state: TaskState::Skipped,
                ..Outcome::failed(format!("task exited with return code {code}: skipped"))
            },
            Exit::Code(code) => Outcome::failed(format!("task exited with return code {code}")),
            Exit::Signal(sig) => Outcome::failed(format!("task was killed by signal {sig}")),
            Exit::TimedOut(limit) => Outcome::failed(format!(
                "task timed out after {}; its process group was killed",
                weir_core::format_duration(limit)
            )),
            Exit::Killed => Outcome::failed("task was stopped: the worker is shutting down".into()),
            Exit::SpawnFailed(message) => Outcome::failed(message),
        })
    }

    /// Waits for work that runs without a process of its own (here, or in the warehouse
    /// process), bounded by the task's timeout and the kill signal; dropping `work` stops it.
    pub(crate) async fn in_worker(
        &self,
        work: weir_ops::BoxFuture<'_, Result<Option<serde_json::Value>, String>>,
        task: &weir_core::Task,
        kill: &mut watch::Receiver<bool>,
    ) -> Outcome {
        let bounded = async {
            match task.execution_timeout {
                Some(limit) => tokio::time::timeout(limit, work).await.map_err(|_| {
                    format!("task timed out after {}", weir_core::format_duration(limit))
                }),
                None => Ok(work.await),
            }
        };
        let result = tokio::select! {
            r = bounded => r,
            _ = kill.wait_for(|k| *k) => Err("task was stopped: the worker is shutting down".to_string()),
        };
        match result {
            Ok(Ok(xcom)) => Outcome::success(xcom, "task succeeded".into()),
            Ok(Err(message)) | Err(message) => Outcome::failed(message),
        }
    }
}

/// The callback key and event name of an outcome that notifies (`on_failure`, ...).
pub(crate) fn outcome_callback(state: TaskState) -> Option<(&'static str, &'static str)> {
    match state {
        TaskState::Failed => Some(("on_failure", "failure")),
        TaskState::UpForRetry => Some(("on_retry", "retry")),
        TaskState::Success => Some(("on_success", "success")),
        _ => None,
    }
}

/// The task's `on_failure` / `on_retry` / `on_success` notifications for this outcome of a
/// try of `ti` (its run at `logical_date`), as outbox messages to write with the finish.
pub fn outcome_messages(
    dag: &Dag,
    ti: &weir_store::TiRow,
    logical_date: Option<i64>,
    state: TaskState,
    log_file: &Path,
) -> Vec<NewMessage> {
    let Some((key, event)) = outcome_callback(state) else {
        return Vec::new();
    };
    let Some(callbacks) = dag.task(&ti.task_id).and_then(|t| t.callbacks.get(key)) else {
        return Vec::new();
    };
    let error = (state != TaskState::Success).then(|| log_tail(log_file, 20));
    let logical_date = logical_date.map(|at| weir_core::iso(timestamp(at)));
    let event = weir_core::notify::Event {
        event: event.into(),
        dag_id: ti.dag_id.clone(),
        run_id: Some(ti.run_id.clone()),
        task_id: Some(ti.task_id.clone()),
        try_number: Some(ti.try_number),
        state: Some(state.to_string()),
        logical_date,
        error,
        log_url: Some(log_file.display().to_string()),
        message: None,
    };
    NewMessage::notifications(callbacks, &event)
}

pub(crate) struct Outcome {
    pub(crate) state: TaskState,
    pub(crate) message: String,
    pub(crate) xcom: Option<serde_json::Value>,
    /// A control-flow task's decision, recorded with its success for the scheduler.
    pub(crate) decision: Option<weir_core::Decision>,
    /// A failure that does not use the task's retries (a sensor's timeout).
    pub(crate) no_retry: bool,
    /// A waiting sensor: when it is checked next (micros), why it waits, what it waits for.
    pub(crate) next_check: Option<i64>,
    pub(crate) reason: Option<String>,
    pub(crate) sensor: Option<serde_json::Value>,
    pub(crate) sensor_key: Option<String>,
}

impl Outcome {
    pub(crate) fn success(xcom: Option<serde_json::Value>, message: String) -> Self {
        Outcome {
            state: TaskState::Success,
            xcom,
            ..Outcome::failed(message)
        }
    }

    pub(crate) fn failed(message: String) -> Self {
        Outcome {
            state: TaskState::Failed,
            message,
            xcom: None,
            decision: None,
            no_retry: false,
            next_check: None,
            reason: None,
            sensor: None,
            sensor_key: None,
        }
    }

    /// A control-flow task succeeds with its verdict.
    pub(crate) fn decided(verdict: weir_ops::Verdict) -> Self {
        Outcome {
            state: TaskState::Success,
            xcom: verdict.xcom,
            decision: verdict.decision,
            ..Outcome::failed(verdict.message)
        }
    }
}

/// The XCom value of a try: the `$WEIR_XCOM` file if written, else the last line in
/// `last_line` mode (JSON if it parses, else the text).
pub(crate) fn read_xcom(
    file: &Path,
    mode: XcomMode,
    last_line: Option<&str>,
) -> Result<Option<serde_json::Value>, String> {
    if let Ok(text) = std::fs::read_to_string(file)
        && !text.trim().is_empty()
    {
        return serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("the XCom file is not valid JSON: {e}"));
    }
    Ok(match (mode, last_line) {
        (XcomMode::LastLine, Some(line)) => Some(weir_core::xcom_value(line)),
        _ => None,
    })
}
