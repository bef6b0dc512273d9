//! The store suite: every test runs against SQLite and PostgreSQL.
//!
//! PostgreSQL comes from `WEIR_TEST_PG_URL` (an admin URL; each test creates its own
//! database). Without it the PostgreSQL half is skipped, except under `CI=true`, where a
//! missing server is a failure.

mod support;

use support::each_backend;
use weir_core::{RunState, RunType, TaskState};
use weir_store::{Finish, Finished, NewMessage, NewRun, TaskSeed, Transition, VariableRow};

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
        backfill_id: None,
        parent_ti_id: None,
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
            reason: None,
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

/// `weir standalone` and a CLI command opening a fresh SQLite file at once used to apply the
/// same migration twice, one of them failing with "table ... already exists".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_opening_a_fresh_sqlite_file_at_once_all_migrate_it() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("metadata.db").display());
        let opening: Vec<_> = (0..6)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { weir_store::Store::open(&url).await })
            })
            .collect();
        for opened in opening {
            let store = opened.await.unwrap().unwrap();
            assert!(store.pending_migrations().await.unwrap().is_empty());
        }
    }
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
                reason: None,
            },
            Transition {
                ti_id: tis[1].id,
                from: TaskState::Scheduled,
                to: TaskState::Queued,
                next_retry_at: None,
                reason: None,
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
        let run_pk = run.id;
        for w in 0..4 {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                loop {
                    let got = store.claim(&format!("w{w}"), &[], &[], 7).await.unwrap();
                    // With SKIP LOCKED an empty claim only says that what is left is locked by
                    // another claimer's transaction: stop when nothing is queued any more.
                    if got.is_empty() {
                        let queued = store
                            .task_instances(run_pk)
                            .await
                            .unwrap()
                            .iter()
                            .any(|t| t.state == TaskState::Queued);
                        if !queued || std::time::Instant::now() > deadline {
                            break;
                        }
                        tokio::task::yield_now().await;
                        continue;
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

fn finish(ti_id: i64, try_number: i64, state: TaskState) -> Finish {
    Finish {
        ti_id,
        try_number,
        state,
        next_retry_at: None,
        xcom: None,
        decision: None,
        messages: Vec::new(),
        ..Default::default()
    }
}

#[tokio::test]
async fn set_pids_records_the_pid_of_each_running_try_and_nothing_else() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 12), &seeds(3))
            .await
            .unwrap()
            .unwrap();
        queue_all(&store, run.id).await;
        let claimed = store.claim("w", &[], &[], 2).await.unwrap();
        let (a, b) = (&claimed[0], &claimed[1]);
        let queued = store
            .task_instances(run.id)
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.id != a.id && t.id != b.id)
            .unwrap();
        store
            .set_pids(&[
                (a.id, a.try_number, 101),
                (b.id, b.try_number + 1, 102),
                (queued.id, queued.try_number, 103),
            ])
            .await
            .unwrap();
        let pids: Vec<(i64, Option<i64>)> = store
            .task_instances(run.id)
            .await
            .unwrap()
            .iter()
            .map(|t| (t.id, t.pid))
            .collect();
        assert!(pids.contains(&(a.id, Some(101))), "{pids:?}");
        assert!(pids.contains(&(b.id, None)), "another try: {pids:?}");
        assert!(pids.contains(&(queued.id, None)), "not running: {pids:?}");
    })
    .await;
}

#[tokio::test]
async fn finish_applies_once_and_only_to_its_try_on_its_worker() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 11), &seeds(1))
            .await
            .unwrap()
            .unwrap();
        queue_all(&store, run.id).await;
        let ti = store.claim("w", &[], &[], 1).await.unwrap().remove(0);
        store
            .set_pids(&[(ti.id, ti.try_number, 4242)])
            .await
            .unwrap();
        assert_eq!(store.heartbeat_tries("w").await.unwrap(), vec![(ti.id, 1)]);
        assert_eq!(
            store
                .finish("w", &[finish(ti.id, 2, TaskState::Success)])
                .await
                .unwrap(),
            vec![Finished::Lost],
            "another try"
        );
        assert_eq!(
            store
                .finish("other", &[finish(ti.id, 1, TaskState::Success)])
                .await
                .unwrap(),
            vec![Finished::Lost],
            "another worker"
        );
        let right = Finish {
            xcom: Some(serde_json::json!({"rows": 3})),
            ..finish(ti.id, 1, TaskState::Success)
        };
        assert_eq!(
            store
                .finish("w", std::slice::from_ref(&right))
                .await
                .unwrap(),
            vec![Finished::Applied]
        );
        assert_eq!(
            store.finish("w", &[right]).await.unwrap(),
            vec![Finished::Lost],
            "already finished"
        );
        let tries = store.tries(run.id).await.unwrap();
        assert_eq!(tries[0].state, "success");
        assert!(tries[0].end_date.is_some());
        assert_eq!(
            store.xcoms(run.id).await.unwrap(),
            vec![(
                ti.task_id.clone(),
                -1,
                "return_value".into(),
                serde_json::json!({"rows": 3})
            )],
            "the XCom commits with the finish"
        );
    })
    .await;
}

/// One call ends several tries as one statement: each gets its own outcome, as if it had been
/// finished alone.
#[tokio::test]
async fn a_batch_of_finishes_gives_each_try_its_own_outcome() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 13), &seeds(4))
            .await
            .unwrap()
            .unwrap();
        queue_all(&store, run.id).await;
        let claimed = store.claim("w", &[], &[], 4).await.unwrap();
        let [ok, stale, cleared, poke] = [0, 1, 2, 3].map(|i| &claimed[i]);
        store
            .clear_task_instances(&[cleared.id], &[(cleared.id, 0)])
            .await
            .unwrap();
        let batch = [
            Finish {
                xcom: Some(serde_json::json!(7)),
                ..finish(ok.id, ok.try_number, TaskState::Success)
            },
            finish(stale.id, stale.try_number + 1, TaskState::Failed),
            finish(cleared.id, cleared.try_number, TaskState::Success),
            Finish {
                next_retry_at: Some(1),
                ..finish(poke.id, poke.try_number, TaskState::UpForReschedule)
            },
        ];
        assert_eq!(
            store.finish("w", &batch).await.unwrap(),
            vec![
                Finished::Applied,
                Finished::Lost,
                Finished::Restarted,
                Finished::Applied
            ]
        );
        let tis = store.task_instances(run.id).await.unwrap();
        let of = |id: i64| tis.iter().find(|t| t.id == id).unwrap();
        assert_eq!(of(ok.id).state, TaskState::Success);
        assert_eq!(
            of(stale.id).state,
            TaskState::Running,
            "another try's finish"
        );
        assert_eq!(of(cleared.id).state, TaskState::None, "reset to run again");
        assert_eq!(of(poke.id).state, TaskState::UpForReschedule);
        assert_eq!(of(poke.id).try_number, 0, "a reschedule gives its try back");
        let tries = store.tries(run.id).await.unwrap();
        let ended = |id: i64| {
            let t = tries.iter().find(|t| t.ti_id == id).unwrap();
            (t.state.as_str(), t.end_date.is_some())
        };
        assert_eq!(
            [ok.id, stale.id, cleared.id, poke.id].map(ended),
            [
                ("success", true),
                ("running", false),
                ("restarting", true),
                ("up_for_reschedule", false)
            ],
            "another try's finish leaves the try running; a waiting try has not ended"
        );
        assert_eq!(
            store.xcoms(run.id).await.unwrap(),
            vec![(
                ok.task_id.clone(),
                -1,
                "return_value".into(),
                serde_json::json!(7)
            )]
        );
    })
    .await;
}

#[tokio::test]
async fn a_superseded_try_writes_no_state_and_no_xcom() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 12), &seeds(1))
            .await
            .unwrap()
            .unwrap();
        queue_all(&store, run.id).await;
        let first = store.claim("w1", &[], &[], 1).await.unwrap().remove(0);
        // The reaper takes the try from w1 (its lease ran out) and w2 runs the retry.
        assert_eq!(
            store
                .finish_zombies(&[finish(first.id, 1, TaskState::UpForRetry)])
                .await
                .unwrap(),
            vec![Finished::Applied]
        );
        store
            .apply_transitions(&[Transition {
                ti_id: first.id,
                from: TaskState::UpForRetry,
                to: TaskState::Queued,
                next_retry_at: None,
                reason: None,
            }])
            .await
            .unwrap();
        let second = store.claim("w2", &[], &[], 1).await.unwrap().remove(0);
        assert_eq!(second.try_number, 2);
        assert!(
            store.heartbeat_tries("w1").await.unwrap().is_empty(),
            "w1's heartbeat says it owns nothing"
        );
        store
            .finish(
                "w2",
                &[Finish {
                    xcom: Some(serde_json::json!("retry's")),
                    ..finish(second.id, 2, TaskState::Success)
                }],
            )
            .await
            .unwrap();
        // w1 resumes and finishes its old try: nothing changes.
        let late = Finish {
            xcom: Some(serde_json::json!("stale")),
            ..finish(first.id, 1, TaskState::Failed)
        };
        assert_eq!(
            store.finish("w1", &[late]).await.unwrap(),
            vec![Finished::Lost]
        );
        let ti = store.task_instance(first.id).await.unwrap().unwrap();
        assert_eq!(ti.state, TaskState::Success);
        assert_eq!(
            store.xcoms(run.id).await.unwrap()[0].3,
            serde_json::json!("retry's")
        );
    })
    .await;
}

#[tokio::test]
async fn clearing_a_running_instance_restarts_it_after_its_try_ends() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 14), &seeds(1))
            .await
            .unwrap()
            .unwrap();
        queue_all(&store, run.id).await;
        let ti = store.claim("w", &[], &[], 1).await.unwrap().remove(0);
        assert_eq!(
            store
                .clear_task_instances(&[ti.id], &[(ti.id, 0)])
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store.task_instance(ti.id).await.unwrap().unwrap().state,
            TaskState::Restarting
        );
        assert!(
            store.heartbeat_tries("w").await.unwrap().is_empty(),
            "the try is no longer owned"
        );
        assert_eq!(
            store
                .finish("w", &[finish(ti.id, 1, TaskState::Success)])
                .await
                .unwrap(),
            vec![Finished::Restarted]
        );
        assert_eq!(
            store.task_instance(ti.id).await.unwrap().unwrap().state,
            TaskState::None
        );
    })
    .await;
}

#[tokio::test]
async fn zombies_are_found_by_stale_heartbeat_or_lost_lease() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 13), &seeds(2))
            .await
            .unwrap()
            .unwrap();
        queue_all(&store, run.id).await;
        let now = weir_core::now_micros();
        store
            .register_worker("w", "host", 1, now, now + 60_000_000)
            .await
            .unwrap();
        let claimed = store.claim("w", &[], &[], 2).await.unwrap();
        assert!(store.zombies(0, now).await.unwrap().is_empty());
        let later = now + 1_000_000;
        assert_eq!(
            store.zombies(later, now).await.unwrap().len(),
            claimed.len(),
            "stale heartbeats"
        );
        let past_lease = now + 61_000_000;
        assert_eq!(
            store.zombies(0, past_lease).await.unwrap().len(),
            claimed.len(),
            "the worker's lease ran out"
        );
        assert!(
            !store
                .renew_lease("w", past_lease, past_lease + 1)
                .await
                .unwrap(),
            "an expired lease is not renewed"
        );
        assert!(store.renew_lease("w", now, now + 1).await.unwrap());
        store.end_lease("w").await.unwrap();
        assert_eq!(
            store.zombies(0, now).await.unwrap().len(),
            claimed.len(),
            "a worker with no lease"
        );
    })
    .await;
}

#[tokio::test]
async fn a_run_finishes_only_when_no_instance_is_unfinished() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 16), &seeds(1))
            .await
            .unwrap()
            .unwrap();
        store
            .set_run_state(run.id, RunState::Queued, RunState::Running)
            .await
            .unwrap();
        let message = NewMessage {
            kind: "notify".into(),
            payload: serde_json::json!({"n": 1}),
            dedup_key: None,
        };
        // The scheduler decided "success" from a snapshot; a clear reset the task meanwhile.
        assert!(
            !store
                .finish_run(run.id, RunState::Success, std::slice::from_ref(&message))
                .await
                .unwrap()
        );
        assert!(
            store.outbox().await.unwrap().is_empty(),
            "no notification either"
        );
        let ti = store.task_instances(run.id).await.unwrap().remove(0);
        store
            .apply_transitions(&[Transition {
                ti_id: ti.id,
                from: TaskState::None,
                to: TaskState::Success,
                next_retry_at: None,
                reason: None,
            }])
            .await
            .unwrap();
        assert!(
            store
                .finish_run(run.id, RunState::Success, &[message])
                .await
                .unwrap()
        );
        assert_eq!(store.outbox().await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn an_sla_miss_is_recorded_and_notified_once_whoever_asks_again() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 18), &seeds(1))
            .await
            .unwrap()
            .unwrap();
        let message = NewMessage {
            kind: "notify".into(),
            payload: serde_json::json!({"event": {"event": "sla_miss"}}),
            dedup_key: None,
        };
        assert!(
            store
                .record_sla_miss(run.id, "t0", -1, std::slice::from_ref(&message))
                .await
                .unwrap()
        );
        // A restarted scheduler decides the same miss again: nothing more is sent.
        assert!(
            !store
                .record_sla_miss(run.id, "t0", -1, std::slice::from_ref(&message))
                .await
                .unwrap()
        );
        assert_eq!(store.outbox().await.unwrap().len(), 1);
        assert_eq!(
            store.sla_misses(&[run.id]).await.unwrap(),
            vec![(run.id, "t0".to_string(), -1)]
        );
    })
    .await;
}

#[tokio::test]
async fn outbox_messages_are_claimed_retried_and_recorded() {
    each_backend(|store| async move {
        store
            .enqueue(&[NewMessage {
                kind: "notify".into(),
                payload: serde_json::json!({"to": "x"}),
                dedup_key: Some("once".into()),
            }])
            .await
            .unwrap();
        store
            .enqueue(&[NewMessage {
                kind: "notify".into(),
                payload: serde_json::json!({"to": "x"}),
                dedup_key: Some("once".into()),
            }])
            .await
            .unwrap();
        let now = weir_core::now_micros();
        let claimed = store
            .claim_messages("a", now, now + 1_000, 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "deduplicated");
        assert!(
            store
                .claim_messages("b", now, now + 1_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "held by a"
        );
        // a dies; its claim expires and b takes the message over.
        let after = now + 2_000;
        let again = store
            .claim_messages("b", after, after + 1_000, 10)
            .await
            .unwrap();
        assert_eq!(again[0].attempts, 2);
        store
            .message_done(
                again[0].id,
                "b",
                Err(("refused".into(), Some(after))),
                after,
            )
            .await
            .unwrap();
        let third = store
            .claim_messages("b", after, after + 1_000, 10)
            .await
            .unwrap();
        store
            .message_done(third[0].id, "b", Err(("refused".into(), None)), after)
            .await
            .unwrap();
        let rows = store.outbox().await.unwrap();
        assert_eq!(rows[0].state, "failed");
        assert_eq!(rows[0].attempts, 3);
        assert_eq!(rows[0].last_error.as_deref(), Some("refused"));
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
            .finish(
                "w",
                &[Finish {
                    xcom: Some(serde_json::json!({"n": 1})),
                    ..finish(ti.id, 1, TaskState::Success)
                }],
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

#[tokio::test]
async fn a_decision_commits_with_its_finish_a_skip_keeps_its_reason_and_a_clear_drops_both() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 12), &seeds(2))
            .await
            .unwrap()
            .unwrap();
        let tis = store.task_instances(run.id).await.unwrap();
        let (branch, other) = (tis[0].id, tis[1].id);
        store
            .apply_transitions(&[Transition {
                ti_id: branch,
                from: TaskState::None,
                to: TaskState::Queued,
                next_retry_at: None,
                reason: None,
            }])
            .await
            .unwrap();
        let ti = store.claim("w", &[], &[], 1).await.unwrap().remove(0);
        let decision = weir_core::Decision {
            skip: weir_core::Skip::DirectExcept(vec!["t9".into()]),
            reason: "branch 't0' chose [t9]".into(),
        };
        let done = Finish {
            decision: Some(decision.clone()),
            ..finish(ti.id, 1, TaskState::Success)
        };
        assert_eq!(
            store.finish("w", &[done]).await.unwrap(),
            vec![Finished::Applied]
        );
        store
            .apply_transitions(&[Transition {
                ti_id: other,
                from: TaskState::None,
                to: TaskState::Skipped,
                next_retry_at: None,
                reason: Some(decision.reason.clone()),
            }])
            .await
            .unwrap();
        let tis = store.task_instances(run.id).await.unwrap();
        assert_eq!(tis[0].decision.as_ref(), Some(&decision));
        assert_eq!(tis[1].state, TaskState::Skipped);
        assert_eq!(tis[1].reason.as_deref(), Some("branch 't0' chose [t9]"));
        store
            .clear_task_instances(&[branch, other], &[])
            .await
            .unwrap();
        let tis = store.task_instances(run.id).await.unwrap();
        assert_eq!(
            (tis[0].decision.clone(), tis[1].reason.clone()),
            (None, None)
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_asset_run_creators_consume_each_event_once() {
    each_backend(|store| async move {
        let condition =
            weir_core::AssetCondition::All(vec![weir_core::AssetCondition::Asset("orders".into())]);
        let mut consumer = support::dag("report");
        consumer.schedule = weir_core::Schedule::Assets {
            text: condition.text(),
            condition: condition.clone(),
        };
        store
            .upsert_dags(&[(&consumer, "h")], false, 1)
            .await
            .unwrap();
        for _ in 0..3 {
            store
                .record_asset_event("orders", &Default::default())
                .await
                .unwrap();
        }
        // An event of an asset nobody consumes queues nothing.
        store
            .record_asset_event("unused", &Default::default())
            .await
            .unwrap();
        assert_eq!(
            store.queued_assets().await.unwrap(),
            [("report".to_string(), "orders".to_string())]
        );
        let mut handles = Vec::new();
        for _ in 0..4 {
            let store = store.clone();
            let condition = condition.clone();
            handles.push(tokio::spawn(async move {
                store
                    .create_asset_triggered_run("report", &condition, &seeds(2))
                    .await
                    .unwrap()
            }));
        }
        let mut created = Vec::new();
        for h in handles {
            created.extend(h.await.unwrap());
        }
        assert_eq!(
            created.len(),
            1,
            "one run for the three events: {created:?}"
        );
        assert_eq!(created[0].run_type, RunType::AssetTriggered);
        let consumed = store.run_asset_events(created[0].id).await.unwrap();
        assert_eq!(consumed.len(), 3);
        assert_eq!(created[0].logical_date, consumed[2].timestamp);
        assert!(store.queued_assets().await.unwrap().is_empty());
        // Nothing queued: no second run.
        assert!(
            store
                .create_asset_triggered_run("report", &condition, &seeds(2))
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn a_deferred_wait_is_written_again_only_at_its_try_and_ended_once() {
    each_backend(|store| async move {
        let run = store
            .create_run(&new_run("d", 77), &seeds(2))
            .await
            .unwrap()
            .unwrap();
        queue_all(&store, run.id).await;
        let claimed = store.claim("w", &[], &[run.id], 10).await.unwrap();
        let defer = |ti: &weir_store::TiRow| Finish {
            ti_id: ti.id,
            try_number: ti.try_number,
            state: TaskState::Deferred,
            next_retry_at: Some(100),
            reason: Some("waiting".into()),
            sensor: Some(serde_json::json!({"checks": 1})),
            sensor_key: Some(weir_core::watch_task_key("up", "t0", 5)),
            ..Default::default()
        };
        let deferred: Vec<Finish> = claimed.iter().map(|c| defer(c)).collect();
        assert_eq!(
            store.finish("w", &deferred).await.unwrap(),
            vec![Finished::Applied, Finished::Applied]
        );
        let due = store.due_deferred(100, 10).await.unwrap();
        assert_eq!(due.len(), 2);
        assert_eq!(due[0].sensor.as_deref(), Some(r#"{"checks":1}"#));
        // The first at its try, the second at a stale try: only the first moves on.
        let again = vec![
            Finish {
                next_retry_at: Some(500),
                reason: Some("still waiting".into()),
                sensor: Some(serde_json::json!({"checks": 2})),
                ..deferred[0].clone()
            },
            Finish {
                try_number: deferred[1].try_number + 1,
                next_retry_at: Some(500),
                ..deferred[1].clone()
            },
        ];
        store.wait_again(&again).await.unwrap();
        let due = store.due_deferred(100, 10).await.unwrap();
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!(due[0].id, deferred[1].ti_id);
        let first = store
            .task_instance(deferred[0].ti_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.next_retry_at, Some(500));
        assert_eq!(first.reason.as_deref(), Some("still waiting"));
        assert_eq!(first.sensor.as_deref(), Some(r#"{"checks":2}"#));
        // The end of the task they watch brings the waiting one's check forward to now.
        assert_eq!(
            store.hurry_deferred(0, 200).await.unwrap(),
            0,
            "nothing ended"
        );
        let up = store
            .create_run(&new_run("up", 5), &seeds(1))
            .await
            .unwrap()
            .unwrap();
        let t0 = store.task_instances(up.id).await.unwrap()[0].id;
        store
            .apply_transitions(&[Transition {
                ti_id: t0,
                from: TaskState::None,
                to: TaskState::Success,
                next_retry_at: None,
                reason: None,
            }])
            .await
            .unwrap();
        assert_eq!(store.hurry_deferred(0, 200).await.unwrap(), 1);
        assert_eq!(store.due_deferred(200, 10).await.unwrap().len(), 2);
        // The triggerer ends it: once.
        let end = Finish {
            state: TaskState::Success,
            ..deferred[1].clone()
        };
        assert_eq!(
            store
                .finish_deferred(std::slice::from_ref(&end))
                .await
                .unwrap(),
            vec![Finished::Applied]
        );
        assert_eq!(
            store.finish_deferred(&[end]).await.unwrap(),
            vec![Finished::Lost],
            "a deferred wait ends once"
        );
    })
    .await;
}
