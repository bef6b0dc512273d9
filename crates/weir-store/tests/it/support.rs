//! Test support: a fresh store per backend, and a small DAG.

use std::future::Future;
use weir_store::Store;

/// Runs `test` on a fresh SQLite store, then on a fresh PostgreSQL database when one is
/// configured (`WEIR_TEST_PG_URL`); under `CI=true` PostgreSQL is required.
pub async fn each_backend<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("metadata.db").display());
    let store = Store::open(&url).await.unwrap();
    test(store.clone()).await;
    store.close().await;

    match pg_store().await {
        Some(store) => {
            test(store.clone()).await;
            store.close().await;
        }
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but WEIR_TEST_PG_URL is not set: .ci/run must start PostgreSQL")
        }
        None => eprintln!("note: WEIR_TEST_PG_URL not set; PostgreSQL half skipped"),
    }
}

/// A fresh database on the configured server.
async fn pg_store() -> Option<Store> {
    let admin_url = std::env::var("WEIR_TEST_PG_URL").ok()?;
    let name = weir_store::testing::fresh_database(&admin_url)
        .await
        .expect("create test database");
    let (base, _) = admin_url.rsplit_once('/').expect("url has a database");
    Some(
        Store::open(&format!("{base}/{name}"))
            .await
            .expect("connect to test database"),
    )
}

pub fn dag(dag_id: &str) -> weir_core::Dag {
    weir_core::Dag {
        dag_id: dag_id.into(),
        fileloc: format!("dags/{dag_id}.yaml"),
        description: Some("d".into()),
        owner: None,
        tags: vec!["x".into()],
        schedule: weir_core::Schedule::Never,
        timezone: "UTC".into(),
        start_date: None,
        end_date: None,
        catchup: false,
        max_active_runs: 16,
        max_active_tasks: 16,
        is_paused_upon_creation: None,
        params: Default::default(),
        callbacks: Default::default(),
        doc: None,
        tasks: vec![],
    }
}
