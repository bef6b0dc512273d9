//! The use cases against a real store (SQLite in a temp dir): what a user sees in the task
//! instances, the runs and the audit log after each.

use weir_core::{RunState, TaskState};
use weir_service::{Actor, ClearRequest, Reprocess, ServiceError, Services};

const DAG: &str = "schedule: '@daily'\nstart_date: 2026-01-01\ntasks:\n  - {id: extract, type: empty}\n  - {id: load, type: empty, depends_on: [extract]}\n  - {id: report, type: empty, depends_on: [load]}\n";

async fn setup() -> (tempfile::TempDir, Services, weir_core::Dag) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("metadata.db").display());
    let store = weir_store::Store::open(&url).await.unwrap();
    let dag = weir_spec::parse_dag("dags/daily.yaml", DAG.as_bytes(), &Default::default()).unwrap();
    (dir, Services::new(store), dag)
}

fn at(text: &str) -> jiff::Timestamp {
    text.parse().unwrap()
}

async fn states(svc: &Services, run_pk: i64) -> Vec<(String, TaskState)> {
    svc.store()
        .task_instances(run_pk)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.task_id, t.state))
        .collect()
}

#[tokio::test]
async fn trigger_mark_and_clear_with_downstream_are_audited() {
    let (_dir, svc, dag) = setup().await;
    let alice = Actor::new("alice");
    let run = svc
        .trigger(
            &alice,
            &dag,
            Some(at("2026-01-15T00:00:00Z")),
            Default::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        run.data_interval_start,
        at("2026-01-14T00:00:00Z").as_microsecond()
    );
    let again = svc
        .trigger(
            &alice,
            &dag,
            Some(at("2026-01-15T00:00:00Z")),
            Default::default(),
            None,
        )
        .await;
    assert!(matches!(again, Err(ServiceError::Conflict(_))), "{again:?}");

    let only_run = ClearRequest {
        run_ids: vec![run.run_id.clone()],
        ..Default::default()
    };
    let marked = svc
        .mark(&alice, &dag, &only_run, TaskState::Success)
        .await
        .unwrap();
    assert_eq!(marked.marked.len(), 3);
    assert!(
        states(&svc, run.id)
            .await
            .iter()
            .all(|(_, s)| *s == TaskState::Success)
    );

    let load_and_after = ClearRequest {
        task_regex: Some("^load$".into()),
        downstream: true,
        ..only_run.clone()
    };
    let cleared = svc.clear(&alice, &dag, &load_and_after).await.unwrap();
    let mut ids: Vec<&str> = cleared.iter().map(|t| t.task_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["load", "report"]);
    assert_eq!(
        states(&svc, run.id).await,
        vec![
            ("extract".into(), TaskState::Success),
            ("load".into(), TaskState::None),
            ("report".into(), TaskState::None),
        ]
    );
    let upstream = ClearRequest {
        task_regex: Some("^load$".into()),
        upstream: true,
        ..only_run
    };
    let cleared = svc.clear(&alice, &dag, &upstream).await.unwrap();
    assert_eq!(cleared.len(), 2, "load and extract");

    let log = svc.store().event_log(10).await.unwrap();
    let events: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.event.as_str(), e.owner.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            ("clear", "alice"),
            ("clear", "alice"),
            ("mark_success", "alice"),
            ("trigger", "alice")
        ]
    );
}

#[tokio::test]
async fn marking_a_failed_task_success_clears_what_failed_downstream_of_it() {
    let (_dir, svc, dag) = setup().await;
    let alice = Actor::new("alice");
    let run = svc
        .trigger(
            &alice,
            &dag,
            Some(at("2026-01-15T00:00:00Z")),
            Default::default(),
            None,
        )
        .await
        .unwrap();
    let only_run = ClearRequest {
        run_ids: vec![run.run_id.clone()],
        ..Default::default()
    };
    svc.mark(&alice, &dag, &only_run, TaskState::Failed)
        .await
        .unwrap();
    let extract = ClearRequest {
        task_regex: Some("^extract$".into()),
        ..only_run.clone()
    };
    let preview = svc
        .mark_preview(&dag, &extract, TaskState::Success)
        .await
        .unwrap();
    assert_eq!(preview.len(), 1);
    assert_eq!(
        states(&svc, run.id).await[0].1,
        TaskState::Failed,
        "a preview changes nothing"
    );

    let done = svc
        .mark(&alice, &dag, &extract, TaskState::Success)
        .await
        .unwrap();
    assert_eq!(done.marked.len(), 1);
    let resumed: Vec<&str> = done.resumed.iter().map(|t| t.task_id.as_str()).collect();
    assert_eq!(resumed, ["load", "report"]);
    assert_eq!(
        states(&svc, run.id).await,
        vec![
            ("extract".into(), TaskState::Success),
            ("load".into(), TaskState::None),
            ("report".into(), TaskState::None),
        ]
    );
    let bad = svc.mark(&alice, &dag, &extract, TaskState::Skipped).await;
    assert!(
        matches!(bad, Err(ServiceError::BadRequest { .. })),
        "{bad:?}"
    );
}

#[tokio::test]
async fn a_backfill_is_a_record_with_queued_runs_and_reprocesses_as_asked() {
    let (_dir, svc, dag) = setup().await;
    let bob = Actor::new("bob");
    let first = svc
        .create_backfill(
            &bob,
            &dag,
            at("2026-01-01T00:00:00Z"),
            at("2026-01-03T23:59:59Z"),
            Reprocess::None,
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(first.runs.len(), 3);
    assert!(
        first
            .runs
            .iter()
            .all(|r| r.state == RunState::Queued && r.backfill_id == Some(first.record.id))
    );
    // The same range again: existing runs are skipped, or re-run with Reprocess::Completed.
    let skipped = svc
        .create_backfill(
            &bob,
            &dag,
            at("2026-01-01T00:00:00Z"),
            at("2026-01-03T23:59:59Z"),
            Reprocess::None,
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!((skipped.runs.len(), skipped.skipped.len()), (0, 3));
    let all = svc
        .create_backfill(
            &bob,
            &dag,
            at("2026-01-02T00:00:00Z"),
            at("2026-01-03T23:59:59Z"),
            Reprocess::Completed,
            Default::default(),
        )
        .await;
    // Queued runs are not finished, so "completed" re-runs none of them.
    assert_eq!(all.unwrap().runs.len(), 0);
    assert_eq!(svc.store().backfills(Some("daily")).await.unwrap().len(), 3);
    let backwards = svc
        .create_backfill(
            &bob,
            &dag,
            at("2026-01-03T00:00:00Z"),
            at("2026-01-01T00:00:00Z"),
            Reprocess::None,
            Default::default(),
        )
        .await;
    assert!(matches!(backwards, Err(ServiceError::BadRequest { .. })));
    assert_eq!(svc.delete_runs(&bob, "daily").await.unwrap(), 3);
    assert!(svc.store().list_runs("daily", 10).await.unwrap().is_empty());
}

/// Years of daily runs are created in batches (one transaction per run outlasted the API's
/// HTTP timeout): every interval gets its queued run with its task instances, and the same
/// range again skips them all.
#[tokio::test]
async fn a_backfill_of_ten_years_of_daily_runs_creates_every_run() {
    let (_dir, svc, dag) = setup().await;
    let bob = Actor::new("bob");
    let (from, to) = (at("2016-01-01T00:00:00Z"), at("2025-12-31T23:59:59Z"));
    let made = svc
        .create_backfill(&bob, &dag, from, to, Reprocess::None, Default::default())
        .await
        .unwrap();
    assert_eq!(made.runs.len(), 3653, "every day of ten years");
    let dates: Vec<i64> = made.runs.iter().map(|r| r.logical_date).collect();
    assert!(dates.windows(2).all(|w| w[1] - w[0] == 86_400_000_000));
    assert!(made.runs.iter().all(|r| r.state == RunState::Queued));
    let last = made.runs.last().unwrap();
    assert_eq!(states(&svc, last.id).await.len(), dag.tasks.len());
    let again = svc
        .create_backfill(&bob, &dag, from, to, Reprocess::None, Default::default())
        .await
        .unwrap();
    assert_eq!((again.runs.len(), again.skipped.len()), (0, 3653));
}

#[tokio::test]
async fn a_backfill_longer_than_the_limit_is_refused_not_cut_short() {
    let (_dir, svc, dag) = setup().await;
    let refused = svc
        .create_backfill(
            &Actor::new("bob"),
            &dag,
            at("1990-01-01T00:00:00Z"),
            at("2026-01-01T00:00:00Z"),
            Reprocess::None,
            Default::default(),
        )
        .await;
    match refused {
        Err(ServiceError::BadRequest { message, .. }) => {
            assert!(message.contains("more than 10000 intervals"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(svc.store().backfills(None).await.unwrap().is_empty());
    assert!(
        svc.store()
            .list_runs(&dag.dag_id, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
