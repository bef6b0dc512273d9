//! The store suite: every test runs against SQLite and PostgreSQL.
//!
//! PostgreSQL comes from `WEIR_TEST_PG_URL` (an admin URL; each test creates its own
//! database). Without it the PostgreSQL half is skipped, except under `CI=true`, where a
//! missing server is a failure.

mod support;

use support::each_backend;
use weir_core::{RunState, RunType, TaskState};
use weir_store::{Finish, NewRun, TaskSeed, Transition, VariableRow};

fn seeds(n: usize) -> Vec<TaskSeed> {
    (0..n)
        .map(|i| TaskSeed {
            task_id: format!("t{i}"),
            retries: 1,
            pool: "default_pool".into(),
            pool_slots: 1,
            priority_weight: (i % 3) as i64,
            queue: if i % 2 == 0 {
                "default".into()
            } else {
                "other".into()
            },
        })
        .collect()
}

fn new_run(dag: &str, logical: i64) -> NewRun {
    NewRun {
        dag_id: dag.into(),
        run_id: format!("manual__{logical}"),
        run_type: RunType::Manual,
        logical_date: logical,
        data_interval_start: logical - 86_400_000_000,
        data_interval_end: logical,
        conf: serde_json::Map::new(),
    }
}

async fn queue_all(store: &weir_store::Store, run_pk: i64) {
    let tis = store.task_instances(run_pk).await.unwrap();
    let moves: Vec<Transition> = tis
        .iter()
        .map(|t| Transition {
            ti_id: t.id,
            from: TaskState::None,
            to: TaskState::Queued,
            next_retry_at: None,
        })
        .collect();
    assert!(
        store
            .apply_transitions(&moves)
            .await
            .unwrap()
            .iter()
            .all(|m| *m)
    );
}

#[tokio::test]
async fn migrate_is_idempotent_and_reports_no_pending() {
    each_backend(|store| async move {
        store.migrate().await.unwrap();
        assert!(store.pending_migrations().await.unwrap().is_empty());
        store.ping().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn dags_are_upserted_paused_and_deactivated() {
    each_backend(|store| async move {
        let dag = support::dag("sales");
        store.upsert_dags(&[(&dag, "h1")], false, 1).await.unwrap();
        store.upsert_dags(&[(&dag, "h2")], true, 2).await.unwrap();
        let rows = store.list_dags().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].hash, "h2");
        assert!(!rows[0].is_paused, "an existing DAG keeps its paused flag");
        assert!(store.set_paused("sales", true).await.unwrap());
        assert!(!store.set_paused("nope", true).await.unwrap());
        let (back, paused) = store.get_dag("sales").await.unwrap().unwrap();
        assert_eq!(back, dag);
        assert!(paused);
        assert_eq!(
            store.deactivate_dags_except(&[]).await.unwrap(),
            vec!["sales".to_string()]
        );
        assert!(store.list_dags().await.unwrap().is_empty());

        store
            .set_import_error("dags/bad.yaml", Some("dags/bad.yaml:3: boom"), 5)
            .await
            .unwrap();
        store
            .set_import_error("dags/bad.yaml", Some("dags/bad.yaml:4: boom"), 6)
            .await
            .unwrap();
        let errors = store.import_errors().await.unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, "dags/bad.yaml:4: boom");
        store.retain_import_errors(&[]).await.unwrap();
        assert!(store.import_errors().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn one_run_per_logical_date() {
    each_backend(|store| async move {
        let run = new_run("d", 1_000_000);
        let first = store
            .create_run(&run, &seeds(3))
            .await
            .unwrap()
            .expect("created");
        assert_eq!(first.state, RunState::Queued);
        assert!(store.create_run(&run, &seeds(3)).await.unwrap().is_none());
        let other_id = NewRun {
            run_id: "other".into(),
            ..run.clone()
        };
        assert!(
            store
                .create_run(&other_id, &seeds(3))
                .await
                .unwrap()
                .is_none(),
            "same logical date"
        );
        assert_eq!(store.task_instances(first.id).await.unwrap().len(), 3);
        assert!(
            store
                .set_run_state(first.id, RunState::Queued, RunState::Running)
                .await
                .unwrap()
        );
        assert!(
            !store
                .set_run_state(first.id, RunState::Queued, RunState::Running)
                .await
                .unwrap()
        );
        let got = store.get_run("d", &run.run_id).await.unwrap().unwrap();
        assert_eq!(got.state, RunState::Running);
        assert!(got.start_date.is_some());
    })
    .await;
}

#[tokio::test]
async fn transitions_are_compare_and_set() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 1), &seeds(2))
            .await
            .unwrap()
            .unwrap();
        let tis = store.task_instances(run.id).await.unwrap();
        let moves = [
            Transition {
                ti_id: tis[0].id,
                from: TaskState::None,
                to: TaskState::Queued,
                next_retry_at: None,
            },
            Transition {
                ti_id: tis[1].id,
                from: TaskState::Scheduled,
                to: TaskState::Queued,
                next_retry_at: None,
            },
        ];
        assert_eq!(
            store.apply_transitions(&moves).await.unwrap(),
            vec![true, false]
        );
        let after = store.task_instances(run.id).await.unwrap();
        assert_eq!(after[0].state, TaskState::Queued);
        assert!(after[0].queued_at.is_some());
        assert_eq!(after[1].state, TaskState::None);
    })
    .await;
}

#[tokio::test]
async fn concurrent_claimers_never_share_a_task_instance() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 7), &seeds(200))
            .await
            .unwrap()
            .unwrap();
        queue_all(&store, run.id).await;
        let mut handles = Vec::new();
        for w in 0..4 {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = store.claim(&format!("w{w}"), &[], &[], 7).await.unwrap();
                    if got.is_empty() {
                        break;
                    }
                    mine.extend(got.into_iter().map(|t| t.id));
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        let total = all.len();
        all.sort();
        all.dedup();
        assert_eq!(total, 200, "every queued instance claimed once");
        assert_eq!(all.len(), 200, "no instance claimed twice");
        let tis = store.task_instances(run.id).await.unwrap();
        assert!(
            tis.iter()
                .all(|t| t.state == TaskState::Running && t.try_number == 1)
        );
        assert_eq!(store.tries(run.id).await.unwrap().len(), 200);
    })
    .await;
}

#[tokio::test]
async fn claim_respects_queues_and_priority() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 9), &seeds(6))
            .await
            .unwrap()
            .unwrap();
        queue_all(&store, run.id).await;
        let other = store.claim("w", &["other".into()], &[], 10).await.unwrap();
        assert_eq!(other.len(), 3);
        assert!(other.iter().all(|t| t.queue == "other"));
        let first = store.claim("w", &[], &[], 1).await.unwrap();
        assert_eq!(first[0].priority_weight, 2, "highest priority first");
        assert!(
            store
                .claim("w", &[], &[run.id + 1000], 10)
                .await
                .unwrap()
                .is_empty(),
            "other runs only"
        );
        assert_eq!(store.claim("w", &[], &[run.id], 10).await.unwrap().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn finish_applies_once_and_only_to_its_try() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 11), &seeds(1))
            .await
            .unwrap()
            .unwrap();
        queue_all(&store, run.id).await;
        let ti = store.claim("w", &[], &[], 1).await.unwrap().remove(0);
        store.set_pid(ti.id, ti.try_number, 4242).await.unwrap();
        assert_eq!(store.heartbeat_worker("w").await.unwrap(), 1);
        let wrong_try = Finish {
            ti_id: ti.id,
            try_number: 2,
            state: TaskState::Success,
            next_retry_at: None,
        };
        assert_eq!(store.finish(&[wrong_try]).await.unwrap(), vec![false]);
        let right = Finish {
            try_number: 1,
            ..wrong_try
        };
        assert_eq!(store.finish(&[right]).await.unwrap(), vec![true]);
        assert_eq!(
            store.finish(&[right]).await.unwrap(),
            vec![false],
            "already finished"
        );
        let tries = store.tries(run.id).await.unwrap();
        assert_eq!(tries[0].state, "success");
        assert!(tries[0].end_date.is_some());
    })
    .await;
}

#[tokio::test]
async fn zombies_are_found_by_stale_heartbeat() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 13), &seeds(2))
            .await
            .unwrap()
            .unwrap();
        queue_all(&store, run.id).await;
        let claimed = store.claim("w", &[], &[], 2).await.unwrap();
        assert!(store.zombies(0).await.unwrap().is_empty());
        let later = weir_core::now_micros() + 1_000_000;
        let zombies = store.zombies(later).await.unwrap();
        assert_eq!(zombies.len(), claimed.len());
    })
    .await;
}

#[tokio::test]
async fn clear_resets_instances_and_requeues_the_run() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 15), &seeds(1))
            .await
            .unwrap()
            .unwrap();
        queue_all(&store, run.id).await;
        let ti = store.claim("w", &[], &[], 1).await.unwrap().remove(0);
        store
            .finish(&[Finish {
                ti_id: ti.id,
                try_number: 1,
                state: TaskState::Failed,
                next_retry_at: None,
            }])
            .await
            .unwrap();
        store
            .push_xcom(
                run.id,
                &ti.task_id,
                "return_value",
                &serde_json::json!({"n": 1}),
            )
            .await
            .unwrap();
        store
            .set_run_state(run.id, RunState::Queued, RunState::Failed)
            .await
            .unwrap();
        assert_eq!(
            store
                .clear_task_instances(&[ti.id], &[(ti.id, 1)])
                .await
                .unwrap(),
            1
        );
        let after = store.task_instance(ti.id).await.unwrap().unwrap();
        assert_eq!(after.state, TaskState::None);
        assert_eq!(after.max_tries, 2);
        assert_eq!(
            store.get_run_by_pk(run.id).await.unwrap().unwrap().state,
            RunState::Queued
        );
        assert!(store.xcoms(run.id).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn xcoms_variables_and_pools() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 17), &seeds(1))
            .await
            .unwrap()
            .unwrap();
        store
            .push_xcom(run.id, "t0", "return_value", &serde_json::json!([1, 2]))
            .await
            .unwrap();
        store
            .push_xcom(run.id, "t0", "return_value", &serde_json::json!([3]))
            .await
            .unwrap();
        assert_eq!(
            store.xcoms(run.id).await.unwrap(),
            vec![("t0".into(), "return_value".into(), serde_json::json!([3]))]
        );
        let v = VariableRow {
            key: "k".into(),
            val: "v".into(),
            description: None,
            is_encrypted: false,
        };
        store.set_variable(&v).await.unwrap();
        assert_eq!(store.get_variable("k").await.unwrap(), Some(v));
        assert_eq!(store.list_variables().await.unwrap().len(), 1);
        assert!(store.delete_variable("k").await.unwrap());
        assert!(!store.delete_variable("k").await.unwrap());
        store.set_pool("small", 2, None).await.unwrap();
        assert!(store.pools().await.unwrap().contains(&("small".into(), 2)));
        queue_all(&store, run.id).await;
        assert_eq!(
            store.pool_usage().await.unwrap(),
            vec![("default_pool".into(), 1)]
        );
        assert_eq!(
            store.active_task_counts().await.unwrap(),
            vec![("d".into(), 1)]
        );
    })
    .await;
}

#[tokio::test]
async fn jobs_heartbeat_and_clean_removes_old_runs() {
    each_backend(|store| async move {
        let job = store.start_job("scheduler", "host", 100).await.unwrap();
        store.heartbeat_job(job, 200).await.unwrap();
        assert_eq!(
            store.latest_job_heartbeat("scheduler").await.unwrap(),
            Some(200)
        );
        store.end_job(job, 300).await.unwrap();
        assert_eq!(store.latest_job_heartbeat("scheduler").await.unwrap(), None);
        let run = store
            .create_run(&new_run("d", 19), &seeds(2))
            .await
            .unwrap()
            .unwrap();
        store
            .set_run_state(run.id, RunState::Queued, RunState::Success)
            .await
            .unwrap();
        assert_eq!(
            store
                .clean_before(weir_core::now_micros() + 1)
                .await
                .unwrap(),
            1
        );
        assert!(store.get_run_by_pk(run.id).await.unwrap().is_none());
    })
    .await;
}
