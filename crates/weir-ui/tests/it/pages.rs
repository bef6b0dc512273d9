//! The pages: what they show (escaped), and what their forms change through the services.

use crate::{DAG, Ui};
use axum::http::StatusCode;
use serde_json::json;
use weir_core::TaskState;

async fn dag(ui: &Ui) -> weir_core::Dag {
    ui.state.store().get_dag("daily").await.unwrap().unwrap().0
}

/// A manual run of the test DAG, created as the CLI would.
async fn run(ui: &Ui) -> weir_store::RunRow {
    let dag = dag(ui).await;
    ui.state
        .services()
        .trigger(
            &weir_service::Actor::new("test"),
            &dag,
            None,
            Default::default(),
            Some("r1".into()),
        )
        .await
        .unwrap()
}

/// `extract` of `run`, claimed by worker `w1`: running at try 1.
async fn running_extract(ui: &Ui, run: &weir_store::RunRow) -> weir_store::TiRow {
    let store = ui.state.store();
    let extract = store
        .task_instances(run.id)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.task_id == "extract")
        .unwrap();
    store
        .apply_transitions(&[weir_store::Transition {
            ti_id: extract.id,
            from: TaskState::None,
            to: TaskState::Queued,
            next_retry_at: None,
            reason: None,
        }])
        .await
        .unwrap();
    let claimed = store.claim("w1", &[], &[run.id], 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    claimed.into_iter().next().unwrap().ti
}

#[tokio::test]
async fn a_script_in_a_dag_description_renders_as_text() {
    let ui = Ui::new().await;
    let ada = ui.login("ada").await;
    assert!(DAG.contains("<script>alert(1)</script>"));
    for path in [
        "/",
        "/dags/daily/grid",
        "/dags/daily/graph",
        "/dags/daily/trigger",
    ] {
        let page = ui.get(path, Some(&ada)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            page.body
                .contains("Daily &#60;script&#62;alert(1)&#60;/script&#62;")
                || page
                    .body
                    .contains("Daily &lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}: {}",
            page.body
        );
        assert!(!page.body.contains("<script>alert(1)"), "{path}");
    }
}

#[tokio::test]
async fn a_script_in_a_task_log_renders_as_text_and_the_log_tails_while_running() {
    let ui = Ui::new().await;
    let ada = ui.login("ada").await;
    let run = run(&ui).await;
    let extract = running_extract(&ui, &run).await;
    let log = extract.log_file(&ui.dir.path().join("logs"));
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "hello\n<script>alert('log')</script>\n").unwrap();

    let page = ui
        .get("/dags/daily/runs/r1/tasks/extract", Some(&ada))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("hello"), "{}", page.body);
    assert!(!page.body.contains("<script>alert('log')"), "{}", page.body);
    assert!(page.body.contains("&#60;script&#62;") || page.body.contains("&lt;script&gt;"));
    // Running: the live part polls itself.
    assert!(
        page.body.contains("hx-trigger=\"every 2s\""),
        "{}",
        page.body
    );
    let live = ui
        .get("/dags/daily/runs/r1/tasks/extract/live", Some(&ada))
        .await;
    assert_eq!(live.status, StatusCode::OK);
    assert!(
        live.body.starts_with("<div id=\"ti-live\""),
        "{}",
        live.body
    );
    assert!(
        live.body.contains("data-state=\"running\""),
        "{}",
        live.body
    );

    // Polled again with nothing new: 204, the browser keeps the log (and its scroll).
    let at = live.body.find("seen=").unwrap() + 5;
    let poll = format!(
        "/dags/daily/runs/r1/tasks/extract/live?seen={}",
        &live.body[at..at + 16]
    );
    assert_eq!(
        ui.get(&poll, Some(&ada)).await.status,
        StatusCode::NO_CONTENT
    );
    let wider = ui.get("/dags/daily/grid?runs=50", Some(&ada)).await;
    assert!(wider.body.contains("<strong>50</strong>"), "{}", wider.body);
    assert!(wider.body.contains("grid/cells?runs=50&amp;seen="));

    // A long log shows its end only.
    let mut long = "early line\n".repeat(60_000);
    long.push_str("the last line\n");
    std::fs::write(&log, long).unwrap();
    let live = ui.get(&poll, Some(&ada)).await;
    assert_eq!(live.status, StatusCode::OK);
    assert!(live.body.contains("Only the end of the log is shown"));
    assert!(live.body.contains("the last line"));
    assert!(live.body.len() < 600_000, "{} bytes", live.body.len());
}

#[tokio::test]
async fn the_trigger_form_shows_bad_conf_as_an_error_and_triggers_a_good_one() {
    let ui = Ui::new().await;
    let otto = ui.login("otto").await;
    let form = ui.get("/dags/daily/trigger", Some(&otto)).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(!form.body.contains("id=\"paused-note\""));
    ui.state.store().set_paused("daily", true).await.unwrap();
    let paused = ui.get("/dags/daily/trigger", Some(&otto)).await;
    assert!(
        paused.body.contains("id=\"paused-note\""),
        "{}",
        paused.body
    );
    // The conf is prefilled from the DAG's params.
    assert!(
        form.body.contains("&#34;country&#34;: &#34;KR&#34;")
            || form.body.contains("&quot;country&quot;: &quot;KR&quot;"),
        "{}",
        form.body
    );
    for (conf, error) in [
        ("{not json", "the conf is not valid JSON"),
        ("[1, 2]", "the conf must be a JSON object"),
        ("{\"contry\": \"JP\"}", "unknown param &#39;contry&#39;"),
    ] {
        let page = ui
            .post(
                "/dags/daily/trigger",
                Some(&otto),
                Some(&otto.csrf),
                &[("conf", conf)],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{conf}");
        let shown =
            page.body.contains(error) || page.body.contains(&error.replace("&#39;", "&apos;"));
        assert!(shown, "{conf}: {}", page.body);
        assert!(page.body.contains("id=\"trigger-error\""));
    }
    assert!(
        ui.state
            .store()
            .list_runs("daily", 10)
            .await
            .unwrap()
            .is_empty()
    );

    let page = ui
        .post(
            "/dags/daily/trigger",
            Some(&otto),
            Some(&otto.csrf),
            &[("conf", "{\"country\": \"JP\"}")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/dags/daily/grid");
    let runs = ui.state.store().list_runs("daily", 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        serde_json::Value::Object(runs[0].conf.clone()),
        json!({"country": "JP"})
    );
    let events = ui.state.store().event_log(10).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event == "trigger" && e.owner == "otto"),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_pause_toggle_pauses_through_htmx_as_the_user() {
    let ui = Ui::new().await;
    let otto = ui.login("otto").await;
    // The list is read (and kept for a second) before the pause; it shows the pause at once.
    let before = ui.get("/", Some(&otto)).await;
    assert!(
        before.body.contains("data-paused=\"false\""),
        "{}",
        before.body
    );
    let req = axum::http::Request::post("/dags/daily/pause")
        .header(axum::http::header::COOKIE, &otto.cookie)
        .header("x-csrf-token", &otto.csrf)
        .header("hx-request", "true")
        .header(
            axum::http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(axum::body::Body::from("paused=true"))
        .unwrap();
    let page = ui.send(req).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("data-paused=\"true\""), "{}", page.body);
    assert!(
        page.body.contains("&#34;paused&#34;: &#34;false&#34;")
            || page.body.contains("\"paused\": \"false\""),
        "{}",
        page.body
    );
    assert!(
        ui.state
            .store()
            .dag_row("daily")
            .await
            .unwrap()
            .unwrap()
            .is_paused
    );
    let after = ui.get("/", Some(&otto)).await;
    assert!(
        after.body.contains("data-paused=\"true\""),
        "{}",
        after.body
    );
    let events = ui.state.store().event_log(10).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event == "pause" && e.owner == "otto"),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_dag_list_filters_by_search_and_tag_and_lists_import_errors() {
    let ui = Ui::new().await;
    ui.state
        .store()
        .set_import_error(
            "dags/broken.yaml",
            Some("dags/broken.yaml:3: unknown key 'tsks' <b>"),
            1,
        )
        .await
        .unwrap();
    let ada = ui.login("ada").await;
    let all = ui.get("/", Some(&ada)).await;
    assert!(all.body.contains("data-dag-id=\"daily\""));
    assert!(all.body.contains("id=\"import-errors\""), "{}", all.body);
    assert!(
        all.body.contains("dags/broken.yaml:3: unknown key"),
        "{}",
        all.body
    );
    assert!(!all.body.contains("'tsks' <b>"));
    for (query, shown) in [
        ("?q=dai", true),
        ("?q=nothing", false),
        ("?tag=sales", true),
        ("?tag=other", false),
    ] {
        let page = ui.get(&format!("/{query}"), Some(&ada)).await;
        assert_eq!(
            page.body.contains("data-dag-id=\"daily\""),
            shown,
            "{query}"
        );
    }
}

#[tokio::test]
async fn the_dag_list_shows_a_page_of_dags_each_with_its_own_recent_runs() {
    let ui = Ui::new().await;
    let mut dags = Vec::new();
    for n in 0..30 {
        let text = DAG.replace("tags: [sales]", &format!("tags: [t{}]", n % 3));
        let dag = weir_spec::parse_dag(
            &format!("dags/d{n:02}.yaml"),
            text.as_bytes(),
            &Default::default(),
        )
        .unwrap();
        dags.push(weir_core::Dag {
            dag_id: format!("d{n:02}"),
            ..dag
        });
    }
    let rows: Vec<(&weir_core::Dag, &str)> = dags.iter().map(|d| (d, "h")).collect();
    ui.state.store().upsert_dags(&rows, false, 1).await.unwrap();
    // d03 has two runs, d27 one: each row shows its own.
    for (dag, run_id) in [(3, "a"), (3, "b"), (27, "c")] {
        ui.state
            .services()
            .trigger(
                &weir_service::Actor::new("test"),
                &dags[dag],
                None,
                Default::default(),
                Some(run_id.into()),
            )
            .await
            .unwrap();
    }
    let ada = ui.login("ada").await;
    let first = ui.get("/", Some(&ada)).await;
    let rows_on = |body: &str| body.matches("<tr data-dag-id=").count();
    // 31 DAGs (daily and d00..d29), sorted by id: d00..d24 on the first page.
    assert_eq!(rows_on(&first.body), 25, "{}", first.body);
    assert!(first.body.contains("1–25 of 31 DAGs"), "{}", first.body);
    assert!(first.body.contains("href=\"/?page=2\" rel=\"next\""));
    assert!(!first.body.contains("rel=\"prev\""));
    let row = |body: &str, id: &str| {
        let at = body.find(&format!("data-dag-id=\"{id}\"")).unwrap();
        body[at..at + body[at..].find("</tr>").unwrap()].to_string()
    };
    assert_eq!(row(&first.body, "d03").matches("class=\"dot ").count(), 2);
    assert!(row(&first.body, "d04").contains("no runs"));
    let second = ui.get("/?page=2", Some(&ada)).await;
    assert_eq!(rows_on(&second.body), 6, "{}", second.body);
    assert!(second.body.contains("26–31 of 31 DAGs"));
    assert!(row(&second.body, "d27").contains("/dags/d27/runs/c"));
    // A filter pages within what matches, and the links keep it.
    let tagged = ui.get("/?tag=t0&page=1", Some(&ada)).await;
    assert_eq!(rows_on(&tagged.body), 10, "{}", tagged.body);
    assert!(tagged.body.contains("1–10 of 10 DAGs"));
    assert!(!tagged.body.contains("rel=\"next\""));
    // A page past the end shows the last one.
    let past = ui.get("/?page=9", Some(&ada)).await;
    assert!(past.body.contains("26–31 of 31 DAGs"));
}

#[tokio::test]
async fn the_grid_shows_each_task_state_and_polls_while_a_run_is_unfinished() {
    let ui = Ui::new().await;
    let ada = ui.login("ada").await;
    let empty = ui.get("/dags/daily/grid", Some(&ada)).await;
    assert!(empty.body.contains("No runs yet"), "{}", empty.body);
    assert!(!empty.body.contains("every 2s"));
    let run = run(&ui).await;
    let page = ui.get("/dags/daily/grid", Some(&ada)).await;
    assert!(
        page.body.contains("data-task-id=\"extract\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("hx-get=\"/dags/daily/grid/cells?runs=25&amp;seen="),
        "{}",
        page.body
    );
    assert!(page.body.contains("hx-trigger=\"every 2s\""));
    // A poll that has seen these cells gets "no change"; after a change, the new cells.
    let at = page.body.find("&amp;seen=").unwrap() + 10;
    let seen = &page.body[at..at + 16];
    let poll = format!("/dags/daily/grid/cells?runs=25&seen={seen}");
    assert_eq!(
        ui.get(&poll, Some(&ada)).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(
        page.body
            .contains("href=\"/dags/daily/runs/r1/tasks/extract\""),
        "{}",
        page.body
    );

    // Marked done, the run finishes; the fragment stops polling.
    let dag = dag(&ui).await;
    let whole = weir_service::ClearRequest {
        run_ids: vec!["r1".into()],
        ..Default::default()
    };
    ui.state
        .services()
        .mark(
            &weir_service::Actor::new("test"),
            &dag,
            &whole,
            TaskState::Success,
        )
        .await
        .unwrap();
    let store = ui.state.store();
    store
        .set_run_state(
            run.id,
            weir_core::RunState::Queued,
            weir_core::RunState::Running,
        )
        .await
        .unwrap();
    assert!(
        store
            .finish_run(run.id, weir_core::RunState::Success, &[])
            .await
            .unwrap()
    );
    let changed = ui.get(&poll, Some(&ada)).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert!(changed.body.contains("cell s-success"), "{}", changed.body);
    let cells = ui.get("/dags/daily/grid/cells", Some(&ada)).await;
    assert!(cells.body.contains("cell s-success"), "{}", cells.body);
    assert!(cells.body.contains("data-live=\"false\""), "{}", cells.body);
    assert!(!cells.body.contains("every 2s"), "{}", cells.body);
}

#[tokio::test]
async fn clear_and_mark_on_the_task_page_go_through_the_services_as_the_user() {
    let ui = Ui::new().await;
    let otto = ui.login("otto").await;
    let run = run(&ui).await;
    let page = ui
        .post(
            "/dags/daily/runs/r1/tasks/extract/mark",
            Some(&otto),
            Some(&otto.csrf),
            &[("state", "success"), ("map_index", "-1")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/dags/daily/runs/r1/tasks/extract");
    let state_of = |tis: &[weir_store::TiRow], task: &str| {
        tis.iter().find(|t| t.task_id == task).unwrap().state
    };
    let tis = ui.state.store().task_instances(run.id).await.unwrap();
    assert_eq!(state_of(&tis, "extract"), TaskState::Success);
    assert_eq!(state_of(&tis, "load"), TaskState::None);

    let page = ui
        .post(
            "/dags/daily/runs/r1/tasks/extract/clear",
            Some(&otto),
            Some(&otto.csrf),
            &[("map_index", "-1"), ("downstream", "on")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let tis = ui.state.store().task_instances(run.id).await.unwrap();
    assert_eq!(state_of(&tis, "extract"), TaskState::None);

    let bad = ui
        .post(
            "/dags/daily/runs/r1/tasks/extract/mark",
            Some(&otto),
            Some(&otto.csrf),
            &[("state", "running")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let events = ui.state.store().event_log(10).await.unwrap();
    for event in ["mark_success", "clear"] {
        assert!(
            events.iter().any(|e| e.event == event && e.owner == "otto"),
            "{event}: {events:?}"
        );
    }
}

#[tokio::test]
async fn the_graph_of_a_thousand_tasks_renders_every_node_and_edge() {
    let ui = Ui::new().await;
    let mut yaml = String::from("schedule: '@daily'\nstart_date: 2026-01-01\ntasks:\n");
    for i in 0..1000 {
        if i == 0 {
            yaml.push_str("  - {id: t0, type: empty}\n");
        } else {
            yaml.push_str(&format!(
                "  - {{id: t{i}, type: empty, depends_on: [t{}]}}\n",
                (i - 1) / 4
            ));
        }
    }
    let big = weir_spec::parse_dag("dags/big.yaml", yaml.as_bytes(), &Default::default()).unwrap();
    ui.state
        .store()
        .upsert_dags(&[(&big, "h2")], false, 1)
        .await
        .unwrap();
    let ada = ui.login("ada").await;
    let page = ui.get("/dags/big/graph", Some(&ada)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.body.matches("<g class=\"node s-none\"").count(), 1000);
    assert_eq!(page.body.matches("marker-end=").count(), 999);
    assert!(page.body.len() < 2_000_000, "{} bytes", page.body.len());
}

#[tokio::test]
async fn settings_pages_never_show_a_secret() {
    let ui = Ui::new().await;
    let store = ui.state.store();
    let conn =
        weir_core::connection::Connection::from_uri("pg", "postgres://app:hunter2@db:5432/shop")
            .unwrap();
    store.set_connection(&conn).await.unwrap();
    store
        .set_variable(&weir_store::VariableRow {
            key: "api_key".into(),
            val: "sk-secret-value".into(),
            description: None,
            is_encrypted: false,
        })
        .await
        .unwrap();
    let vera = ui.login("vera").await;
    let conns = ui.get("/connections", Some(&vera)).await;
    assert!(conns.body.contains("<code>pg</code>"), "{}", conns.body);
    assert!(!conns.body.contains("hunter2"));
    let vars = ui.get("/variables", Some(&vera)).await;
    assert!(vars.body.contains("api_key"));
    assert!(!vars.body.contains("sk-secret-value"));
    for path in ["/pools", "/audit"] {
        assert_eq!(
            ui.get(path, Some(&vera)).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_missing_dag_is_a_404_page_with_the_users_header() {
    let ui = Ui::new().await;
    let ada = ui.login("ada").await;
    let page = ui.get("/dags/nope/grid", Some(&ada)).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        page.body.contains("Dag with id nope was not found"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"logout\""), "{}", page.body);
}

/// A small dbt project in `models/` of the weir project: a seed, two models and a source.
fn write_dbt_project(root: &std::path::Path) {
    let dbt = root.join("models");
    std::fs::create_dir_all(dbt.join("models")).unwrap();
    std::fs::create_dir_all(dbt.join("seeds")).unwrap();
    std::fs::write(
        dbt.join("dbt_project.yml"),
        "name: shop\nversion: '1.0'\nprofile: shop\nmodels:\n  shop:\n    +materialized: table\n",
    )
    .unwrap();
    std::fs::write(dbt.join("seeds/raw_orders.csv"), "id,amount\n1,10\n").unwrap();
    std::fs::write(
        dbt.join("models/stg_orders.sql"),
        "select id, amount from {{ ref('raw_orders') }}\n",
    )
    .unwrap();
    std::fs::write(
        dbt.join("models/orders.sql"),
        "{{ config(materialized='view') }}\nselect o.id, o.amount from {{ ref('stg_orders') }} o join {{ source('app', 'customers') }} c on c.id = o.id where o.amount < 100\n",
    )
    .unwrap();
    std::fs::write(
        dbt.join("models/schema.yml"),
        "version: 2\nsources:\n  - name: app\n    tables:\n      - name: customers\nmodels:\n  - name: orders\n    description: 'One row per order <script>alert(1)</script>'\n    columns:\n      - name: id\n        description: the order\n        tests: [unique, not_null]\n      - name: amount\n        data_type: integer\n",
    )
    .unwrap();
}

#[tokio::test]
async fn the_models_pages_draw_the_lineage_and_show_a_models_docs() {
    let root = tempfile::tempdir().unwrap();
    write_dbt_project(root.path());
    let project_dir = root.path().to_path_buf();
    let ui = Ui::with_config(move |c| c.project_dir = Some(project_dir)).await;
    let ada = ui.login("ada").await;
    let list = ui.get("/models", Some(&ada)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(
        list.body.contains("data-project=\"models\""),
        "{}",
        list.body
    );
    for name in ["raw_orders", "stg_orders", "orders", "customers"] {
        assert!(
            list.body.contains(&format!("data-name=\"{name}\"")),
            "lineage lacks {name}: {}",
            list.body
        );
    }
    // Three edges: raw_orders → stg_orders → orders, customers → orders.
    assert_eq!(list.body.matches("marker-end=\"url(#arrow)\"").count(), 3);
    let orders_row = &list.body[list.body.find("<tr data-node=\"orders\"").unwrap()..];
    let orders_row = &orders_row[..orders_row.find("</tr>").unwrap()];
    assert!(orders_row.contains("<td>view</td>"), "{orders_row}");
    assert!(orders_row.contains("<td>2</td><td>2</td>"), "{orders_row}");
    let page = ui
        .get(
            "/models/node?project=models&id=model.shop.orders",
            Some(&ada),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("One row per order &#60;script&#62;"));
    assert!(!page.body.contains("<script>alert(1)"));
    let id_row = &page.body[page.body.find("data-column=\"id\"").unwrap()..];
    let id_row = &id_row[..id_row.find("</tr>").unwrap()];
    assert!(
        id_row.contains(">unique<") && id_row.contains(">not_null<"),
        "{id_row}"
    );
    assert!(page.body.contains("class=\"parent\">stg_orders</a>"));
    assert!(page.body.contains("class=\"parent\">customers</a>"));
    assert!(
        page.body.contains("amount &#60; 100"),
        "the SQL is shown escaped"
    );
    assert!(page.body.contains("class=\"node s-model focus\""));
    // The seed's page shows what uses it.
    let seed = ui
        .get(
            "/models/node?project=models&id=seed.shop.raw_orders",
            Some(&ada),
        )
        .await;
    assert!(
        seed.body.contains("class=\"child\">stg_orders</a>"),
        "{}",
        seed.body
    );
    let missing = ui
        .get(
            "/models/node?project=models&id=model.shop.nothing",
            Some(&ada),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_grid_folds_a_task_group_under_one_row_with_its_most_urgent_state() {
    let ui = Ui::new().await;
    let text = "schedule: '@daily'\nstart_date: 2026-01-01\ntasks:\n  - {id: extract_a, type: empty, group: extract}\n  - {id: extract_b, type: empty, group: extract}\n  - {id: load, type: empty, depends_on: [extract_a, extract_b]}\n";
    let dag =
        weir_spec::parse_dag("dags/grouped.yaml", text.as_bytes(), &Default::default()).unwrap();
    ui.state
        .store()
        .upsert_dags(&[(&dag, "g1")], false, 1)
        .await
        .unwrap();
    let run = ui
        .state
        .services()
        .trigger(
            &weir_service::Actor::new("test"),
            &dag,
            None,
            Default::default(),
            Some("g".into()),
        )
        .await
        .unwrap();
    let tis = ui.state.store().task_instances(run.id).await.unwrap();
    let b = tis.iter().find(|t| t.task_id == "extract_b").unwrap();
    ui.state
        .store()
        .apply_transitions(&[weir_store::Transition {
            ti_id: b.id,
            from: b.state,
            to: weir_core::TaskState::Failed,
            next_retry_at: None,
            reason: Some("it broke <b>here</b>".into()),
        }])
        .await
        .unwrap();
    let ada = ui.login("ada").await;
    let page = ui.get("/dags/grouped/grid", Some(&ada)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let group_at = page
        .body
        .find("class=\"group-row\" data-group=\"extract\"")
        .expect("a group row");
    let group_row = &page.body[group_at..group_at + page.body[group_at..].find("</tr>").unwrap()];
    assert!(group_row.contains("2 tasks"), "{group_row}");
    assert!(
        group_row.contains("data-state=\"failed\""),
        "the failed member shows: {group_row}"
    );
    // Its tasks follow it, folded; the task outside the group is not.
    let a_at = page
        .body
        .find("data-task-id=\"extract_a\" data-in-group=\"extract\" hidden")
        .unwrap();
    let b_at = page
        .body
        .find("data-task-id=\"extract_b\" data-in-group=\"extract\" hidden")
        .unwrap();
    let load_at = page.body.find("<tr data-task-id=\"load\">").unwrap();
    assert!(group_at < a_at && a_at < b_at && b_at < load_at);
    // The failed task's page says why, escaped.
    let ti = ui
        .get("/dags/grouped/runs/g/tasks/extract_b", Some(&ada))
        .await;
    assert!(ti.body.contains("id=\"ti-reason\""), "{}", ti.body);
    assert!(
        ti.body.contains("it broke &#60;b&#62;here&#60;/b&#62;"),
        "{}",
        ti.body
    );
}

#[tokio::test]
async fn the_backfill_form_creates_a_backfill_and_shows_a_bad_range_as_an_error() {
    let ui = Ui::new().await;
    let otto = ui.login("otto").await;
    let form = ui.get("/dags/daily/backfill", Some(&otto)).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("id=\"backfill-form\""));
    let bad = ui
        .post(
            "/dags/daily/backfill",
            Some(&otto),
            Some(&otto.csrf),
            &[
                ("from", "2026-01-05"),
                ("to", "2026-01-01"),
                ("reprocess", "none"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("id=\"backfill-error\""), "{}", bad.body);
    let good = ui
        .post(
            "/dags/daily/backfill",
            Some(&otto),
            Some(&otto.csrf),
            &[
                ("from", "2026-01-01"),
                ("to", "2026-01-03"),
                ("reprocess", "none"),
            ],
        )
        .await;
    assert_eq!(good.status, StatusCode::SEE_OTHER, "{}", good.body);
    assert_eq!(good.location(), "/dags/daily/grid");
    let runs = ui.state.store().list_runs("daily", 10).await.unwrap();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(runs.iter().all(|r| r.backfill_id.is_some()));
    // The runs list shows them, filtered by DAG and state.
    let list = ui.get("/runs?dag_id=daily", Some(&otto)).await;
    assert_eq!(
        list.body.matches("<tr data-run-id=").count(),
        3,
        "{}",
        list.body
    );
    let none = ui.get("/runs?dag_id=daily&state=failed", Some(&otto)).await;
    assert!(none.body.contains("No run matches"), "{}", none.body);
    let events = ui.state.store().event_log(10).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.owner == "otto" && e.event.contains("backfill")),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_users_page_is_for_admins_and_lists_every_user() {
    let ui = Ui::new().await;
    let ada = ui.login("ada").await;
    let page = ui.get("/users", Some(&ada)).await;
    assert_eq!(page.status, StatusCode::OK);
    for name in ["ada", "otto", "vera"] {
        assert!(
            page.body.contains(&format!("data-user=\"{name}\"")),
            "{}",
            page.body
        );
    }
    assert!(
        !page.body.contains("argon2"),
        "no password hash on the page"
    );
    let otto = ui.login("otto").await;
    assert_eq!(
        ui.get("/users", Some(&otto)).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_run_page_links_a_triggered_run_and_its_parent_and_says_what_a_sensor_waits_for() {
    let ui = Ui::new().await;
    let otto = ui.login("otto").await;
    let parent = run(&ui).await;
    let store = ui.state.store();
    let extract = running_extract(&ui, &parent).await;
    // `extract` stands for a trigger_dag task: it created a child run, then deferred.
    let child = ui
        .state
        .services()
        .trigger_child(
            &weir_service::Actor::new("test"),
            &dag(&ui).await,
            jiff::Timestamp::from_second(1_767_225_600).unwrap(),
            Default::default(),
            extract.id,
        )
        .await
        .unwrap();
    store
        .finish(
            "w1",
            &[weir_store::Finish {
                ti_id: extract.id,
                try_number: 1,
                state: TaskState::Deferred,
                next_retry_at: Some(weir_core::now_micros() + 60_000_000),
                reason: Some("waiting for run <b>x</b> of DAG daily to be success".into()),
                sensor: Some(json!({"wait": {}})),
                ..Default::default()
            }],
        )
        .await
        .unwrap();

    let page = ui.get("/dags/daily/runs/r1", Some(&otto)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(child.run_id, "manual__2026-01-01T00:00:00+00:00");
    assert!(
        page.body.contains(
            "<a class=\"run-child\" href=\"/dags/daily/runs/manual__2026-01-01T00%3A00%3A00%2B00%3A00\">daily / manual__2026-01-01T00:00:00+00:00</a>"
        ),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("class=\"badge s-deferred\">deferred"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(
            "<td class=\"muted\">waiting for run &#60;b&#62;x&#60;/b&#62; of DAG daily to be success</td>"
        ),
        "the reason is shown, escaped: {}",
        page.body
    );
    let child_page = ui
        .get(
            "/dags/daily/runs/manual__2026-01-01T00%3A00%3A00%2B00%3A00",
            Some(&otto),
        )
        .await;
    assert_eq!(child_page.status, StatusCode::OK, "{}", child_page.body);
    assert!(
        child_page
            .body
            .contains("<a id=\"run-parent\" href=\"/dags/daily/runs/r1/tasks/extract\">daily / r1 / extract</a>"),
        "{}",
        child_page.body
    );
}

#[tokio::test]
async fn a_dag_without_a_schedule_shows_none_as_its_schedule() {
    let ui = Ui::new().await;
    let dag = weir_spec::parse_dag(
        "dags/adhoc.yaml",
        b"tasks:\n  - {id: t, type: empty}\n",
        &Default::default(),
    )
    .unwrap();
    let store = ui.state.store();
    store.upsert_dags(&[(&dag, "h2")], false, 1).await.unwrap();
    let ada = ui.login("ada").await;
    for path in ["/?q=adhoc", "/dags/adhoc/grid"] {
        let page = ui.get(path, Some(&ada)).await;
        assert!(
            page.body.contains("<code>None</code>"),
            "{path}: {}",
            page.body
        );
        assert!(!page.body.contains("<code>null</code>"), "{path}");
    }
}
