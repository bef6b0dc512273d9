//! `weir scheduler` and separate `weir worker` processes on PostgreSQL, while one worker is
//! killed with SIGKILL and another is stopped past its lease and resumed: every task instance
//! ends, no two tries of a task ever overlap, pool and parallelism limits hold, and the
//! resumed worker records nothing for the tries it lost. The evidence is a trace the task
//! command itself writes (inside `flock -n`), not weir's own records.

use crate::support::{Project, wait_for, weir_bin};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const FAN: usize = 1000;
const CHAIN: usize = 20;
const PARALLELISM: usize = 24;
const FAN_POOL: usize = 12;

/// A weir process in the background; killed when dropped.
struct Process(Child);

impl Process {
    fn start(p: &Project, args: &[&str], log: &str) -> Process {
        let mut cmd = Command::new(weir_bin());
        cmd.arg("--project")
            .arg(p.path())
            .args(args)
            .current_dir(p.path())
            .env("NO_COLOR", "1")
            .env("WEIR_LOG", "info")
            .env_remove("WEIR_HOME")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(p.path().join(log)).unwrap(),
            ));
        if let Some(url) = &p.database_url {
            cmd.env("WEIR__DATABASE__URL", url);
        }
        Process(cmd.spawn().expect("start weir"))
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0.id() as i32), signal).unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGCONT,
        );
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One try as the task recorded it.
#[derive(Debug, Clone)]
struct Try {
    task: String,
    tag: String,
    start: u128,
    end: Option<u128>,
}

fn read_trace(p: &Project) -> Vec<Try> {
    let mut tries: BTreeMap<String, Try> = BTreeMap::new();
    for entry in std::fs::read_dir(p.path().join("trace")).unwrap().flatten() {
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let (what, task, tag, at) = (f[0], f[1], f[2], f[3].parse::<u128>().unwrap());
            let t = tries.entry(tag.to_string()).or_insert_with(|| Try {
                task: task.into(),
                tag: tag.into(),
                start: at,
                end: None,
            });
            match what {
                "start" => t.start = at,
                _ => t.end = Some(at),
            }
        }
    }
    tries.into_values().collect()
}

/// The most tries (that ran to their end) at once, among those `keep` selects.
fn peak(tries: &[Try], keep: impl Fn(&Try) -> bool) -> usize {
    let mut edges: Vec<(u128, i64)> = Vec::new();
    for t in tries.iter().filter(|t| keep(t)) {
        if let Some(end) = t.end {
            edges.push((t.start, 1));
            edges.push((end, -1));
        }
    }
    // An end at the same instant as a start frees its slot first.
    edges.sort_by_key(|&(at, d)| (at, d));
    let (mut now, mut max) = (0i64, 0i64);
    for (_, d) in edges {
        now += d;
        max = max.max(now);
    }
    max as usize
}

fn dag_files(p: &Project) {
    // Each try takes the task's lock without waiting: a second try running at the same time
    // fails to get it and says so in `trace/overlaps`.
    p.write(
        "scripts/probe.sh",
        r#"#!/usr/bin/env bash
set -u
task="$1"
exec 9>"locks/$task.lock"
if ! flock -n 9; then echo "$task $WEIR_TRY_TAG" >> trace/overlaps; exit 1; fi
echo "start $task $WEIR_TRY_TAG $(date +%s%N)" >> "trace/$task"
sleep 0.15
echo "end $task $WEIR_TRY_TAG $(date +%s%N)" >> "trace/$task"
echo "{\"try\": $WEIR_TRY_NUMBER, \"tag\": \"$WEIR_TRY_TAG\"}"
"#,
    );
    std::fs::create_dir_all(p.path().join("trace")).unwrap();
    std::fs::create_dir_all(p.path().join("locks")).unwrap();
    let mut fan = String::from(
        "max_active_tasks: 1000\ndefault_args: {retries: 3, retry_delay: 0s, pool: fan}\ntasks:\n",
    );
    for i in 0..FAN {
        fan.push_str(&format!(
            "  - {{id: f{i:04}, type: shell, command: 'bash scripts/probe.sh f{i:04}', xcom: last_line}}\n"
        ));
    }
    p.dag("fan", &fan);
    let mut chain = String::from("default_args: {retries: 3, retry_delay: 0s}\ntasks:\n");
    for i in 0..CHAIN {
        let dep = if i == 0 {
            String::new()
        } else {
            format!(", depends_on: [c{:02}]", i - 1)
        };
        chain.push_str(&format!(
            "  - {{id: c{i:02}, type: shell, command: 'bash scripts/probe.sh c{i:02}', xcom: last_line{dep}}}\n"
        ));
    }
    p.dag("chain", &chain);
}

/// Whether the worker with this pid has a try that started and has not ended.
fn busy(p: &Project, pid: u32) -> bool {
    let needle = format!(":{pid}:");
    read_trace(p)
        .iter()
        .any(|t| t.end.is_none() && t.tag.contains(&needle))
}

/// Ids of the workers whose lease is current.
fn live_leases(p: &Project) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = weir_store::Store::connect(p.database_url.as_deref().unwrap())
            .await
            .unwrap();
        let live = store.live_leases(weir_core::now_micros()).await.unwrap();
        store.close().await;
        live
    })
}

fn done(tries: &[Try]) -> usize {
    tries.iter().filter(|t| t.end.is_some()).count()
}

#[test]
fn separate_workers_survive_kill_9_and_a_stop_past_the_lease_without_running_anything_twice() {
    let Some(p) = Project::on_postgres() else {
        eprintln!("skipped: no PostgreSQL (WEIR_TEST_PG_URL)");
        return;
    };
    p.write(
        "weir.toml",
        &format!(
            "[core]\nparallelism = {PARALLELISM}\n\n[scheduler]\ndag_dir_list_interval = 0.2\nheartbeat_s = 0.3\nzombie_threshold_s = 2.0\npoll_s = 0.05\n\n[worker]\nslots = 16\nkill_grace_s = 0.5\n\n[pools]\nfan = {FAN_POOL}\n"
        ),
    );
    dag_files(&p);
    let _scheduler = Process::start(&p, &["scheduler"], "scheduler.log");
    let a = Process::start(&p, &["worker"], "worker_a.log");
    let b = Process::start(&p, &["worker"], "worker_b.log");
    wait_for(
        "the scheduler to parse both DAGs",
        Duration::from_secs(90),
        || {
            let listed = p.ok(&["dags", "list", "-o", "json"]);
            (listed.contains("\"fan\"") && listed.contains("\"chain\"")).then_some(())
        },
    );
    p.ok(&["dags", "trigger", "fan"]);
    p.ok(&["dags", "trigger", "chain"]);

    wait_for("100 tries to end", Duration::from_secs(240), || {
        (done(&read_trace(&p)) >= 100).then_some(())
    });
    let mut a = a;
    wait_for(
        "worker a to be running a try",
        Duration::from_secs(120),
        || busy(&p, a.0.id()).then_some(()),
    );
    let _ = a.0.kill(); // SIGKILL, mid-try
    let _ = a.0.wait();
    let _c = Process::start(&p, &["worker"], "worker_c.log"); // its replacement
    let seen = done(&read_trace(&p));
    wait_for("50 more tries to end", Duration::from_secs(240), || {
        (done(&read_trace(&p)) >= seen + 50).then_some(())
    });
    wait_for(
        "worker b to be running a try",
        Duration::from_secs(120),
        || busy(&p, b.0.id()).then_some(()),
    );
    // Stopped well past its lease (zombie_threshold_s = 2): its tries are reaped and retried.
    b.signal(nix::sys::signal::Signal::SIGSTOP);
    let b_id = format!(":{}:", b.0.id());
    wait_for(
        "worker b's lease to run out",
        Duration::from_secs(120),
        || (!live_leases(&p).iter().any(|w| w.contains(&b_id))).then_some(()),
    );
    b.signal(nix::sys::signal::Signal::SIGCONT);

    let state = |dag: &str| p.runs(dag)[0]["state"].as_str().unwrap_or("").to_string();
    wait_for("both runs to succeed", Duration::from_secs(600), || {
        (state("fan") == "success" && state("chain") == "success").then_some(())
    });

    // Every task instance ended in success.
    for (dag, n) in [("fan", FAN), ("chain", CHAIN)] {
        let run_id = p.runs(dag)[0]["run_id"].as_str().unwrap().to_string();
        let states = p.states(dag, &run_id);
        assert_eq!(states.len(), n);
        assert!(states.values().all(|s| s == "success"), "{states:?}");
    }
    // From the tasks' own trace: no try ever found another try of its task holding the lock.
    let overlaps = std::fs::read_to_string(p.path().join("trace/overlaps")).unwrap_or_default();
    assert!(
        overlaps.is_empty(),
        "tries ran at the same time:\n{overlaps}"
    );
    let tries = read_trace(&p);
    let mut by_task: BTreeMap<&str, Vec<&Try>> = BTreeMap::new();
    for t in &tries {
        by_task.entry(&t.task).or_default().push(t);
    }
    for (task, list) in &by_task {
        let mut list = list.clone();
        list.sort_by_key(|t| t.start);
        for pair in list.windows(2) {
            if let Some(end) = pair[0].end {
                assert!(
                    end <= pair[1].start,
                    "{task}: {:?} overlaps {:?}",
                    pair[0],
                    pair[1]
                );
            }
        }
    }
    assert_eq!(by_task.len(), FAN + CHAIN, "every task ran");
    assert!(
        tries.len() > FAN + CHAIN,
        "the kill and the stop cost some tries a retry ({} tries)",
        tries.len()
    );
    // Limits, from the trace: the fan's pool and the scheduler's parallelism.
    let fan_peak = peak(&tries, |t| t.task.starts_with('f'));
    let all_peak = peak(&tries, |_| true);
    eprintln!(
        "{} tries for {} tasks; peak {fan_peak} in pool fan, {all_peak} overall",
        tries.len(),
        FAN + CHAIN
    );
    assert!(
        fan_peak <= FAN_POOL,
        "pool fan ({FAN_POOL} slots) ran {fan_peak} at once"
    );
    assert!(
        all_peak <= PARALLELISM,
        "parallelism {PARALLELISM} exceeded: {all_peak}"
    );
    // The resumed worker recorded nothing for the tries it lost: every task's XCom is the one
    // its successful try printed, and that try is the one weir recorded last.
    let xcoms = xcoms(&p);
    for (task, list) in &by_task {
        let value = xcoms
            .get(*task)
            .unwrap_or_else(|| panic!("no XCom for {task}"));
        let tag = value["tag"].as_str().unwrap();
        assert!(
            list.iter().any(|t| t.tag == tag && t.end.is_some()),
            "{task}: XCom from a try that did not finish: {value}"
        );
        let latest = list.iter().max_by_key(|t| t.start).unwrap();
        assert_eq!(latest.tag, tag, "{task}: the XCom is not the last try's");
    }
    let b_log = std::fs::read_to_string(p.path().join("worker_b.log")).unwrap_or_default();
    assert!(b_log.contains("lost its lease"), "{b_log}");
}

/// task_id → XCom value of both runs, read from the store.
fn xcoms(p: &Project) -> BTreeMap<String, Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = weir_store::Store::connect(p.database_url.as_deref().unwrap())
            .await
            .unwrap();
        let mut out = BTreeMap::new();
        for dag in ["fan", "chain"] {
            let run = store.list_runs(dag, 1).await.unwrap().remove(0);
            for (task, _, _, value) in store.xcoms(run.id).await.unwrap() {
                out.insert(task, value);
            }
        }
        store.close().await;
        out
    })
}
