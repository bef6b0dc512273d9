//! The REST API through its router against a real store (SQLite in a temp dir): status codes,
//! bodies and what changed in the store, as a client sees them.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use weir_api::{ApiConfig, ApiState, Role};

const DAG: &str = "description: 'Daily <script>alert(1)</script>'\ntags: [sales]\nschedule: '@daily'\nstart_date: 2026-01-01\nparams: {country: KR}\ntasks:\n  - {id: extract, type: empty}\n  - {id: load, type: empty, depends_on: [extract]}\n";

struct Api {
    _dir: tempfile::TempDir,
    state: ApiState,
    router: axum::Router,
}

impl Api {
    async fn new() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("metadata.db").display());
        let store = weir_store::Store::open(&url)
            .await
            .unwrap()
            .with_cipher(weir_store::Cipher::new(&weir_store::Cipher::generate_key()).unwrap());
        let dag =
            weir_spec::parse_dag("dags/daily.yaml", DAG.as_bytes(), &Default::default()).unwrap();
        store.upsert_dags(&[(&dag, "h1")], false, 1).await.unwrap();
        for (name, role) in [
            ("ada", Role::Admin),
            ("otto", Role::Op),
            ("vera", Role::Viewer),
        ] {
            weir_api::auth::users::create(&store, "test", name, "correct horse", role)
                .await
                .unwrap();
        }
        let config = ApiConfig::new(b"test secret".to_vec(), dir.path().join("logs"));
        let state = ApiState::new(weir_service::Services::new(store), config);
        let router = weir_api::router(state.clone());
        Api {
            _dir: dir,
            state,
            router,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        self.raw(req).await
    }

    async fn raw(&self, req: Request<Body>) -> (StatusCode, Value) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    async fn token(&self, user: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/auth/token",
                None,
                Some(json!({"username": user, "password": "correct horse"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }
}

/// A concrete path for a route pattern (`{dag_id}` → `daily`, ...).
fn concrete(path: &str) -> String {
    path.replace("{dag_id}", "daily")
        .replace("{dag_run_id}", "r1")
        .replace("{task_id}", "extract")
        .replace("{map_index}", "0")
        .replace("{try_number}", "1")
        .replace("{xcom_key}", "return_value")
        .replace("{variable_key}", "k")
        .replace("{connection_id}", "c")
        .replace("{pool_name}", "p")
        .replace("{backfill_id}", "1")
}

#[tokio::test]
async fn every_route_but_the_public_ones_refuses_a_request_without_a_token() {
    let api = Api::new().await;
    let routes = weir_api::routes::route_list();
    assert!(routes.len() > 30, "{routes:?}");
    for (method, path, role) in routes {
        let (status, body) = api
            .call(method.clone(), &concrete(&path), None, Some(json!({})))
            .await;
        if role == Role::Public {
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
            assert!(body["detail"].is_string(), "{method} {path}: {body}");
        }
    }
}

#[tokio::test]
async fn a_viewer_reads_but_every_op_or_admin_route_answers_403() {
    let api = Api::new().await;
    let viewer = api.token("vera").await;
    let op = api.token("otto").await;
    // Logging out would revoke the token the walk goes on with.
    let routes = weir_api::routes::route_list()
        .into_iter()
        .filter(|(_, path, _)| path != "/auth/logout");
    for (method, path, role) in routes {
        let (status, body) = api
            .call(
                method.clone(),
                &concrete(&path),
                Some(&viewer),
                Some(json!({})),
            )
            .await;
        match role {
            Role::Op | Role::Admin => {
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}")
            }
            _ => assert_ne!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}"),
        }
        if role == Role::Admin {
            let (status, body) = api
                .call(method.clone(), &concrete(&path), Some(&op), Some(json!({})))
                .await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "op on {method} {path}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn forged_tampered_expired_and_revoked_tokens_are_refused() {
    let api = Api::new().await;
    let good = api.token("ada").await;
    let (status, _) = api
        .call(Method::GET, "/api/v2/dags", Some(&good), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // Signed with another key.
    let claims =
        json!({"sub": "ada", "role": "admin", "iat": 0, "exp": 4_102_444_800i64, "jti": "x"});
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"guess").unwrap(),
    )
    .unwrap();
    // A viewer's token with its payload swapped for an admin's, signature kept.
    let viewer = api.token("vera").await;
    let parts: Vec<&str> = viewer.split('.').collect();
    let payload = forged.split('.').nth(1).unwrap();
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    // Signed with the right key, but expired.
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "ada", "role": "admin", "iat": 0, "exp": 1, "jti": "y"}),
        &jsonwebtoken::EncodingKey::from_secret(b"test secret").unwrap(),
    )
    .unwrap();
    for (what, token) in [
        ("forged", forged.as_str()),
        ("tampered", tampered.as_str()),
        ("expired", expired.as_str()),
        ("garbage", "not.a.jwt"),
    ] {
        let (status, body) = api
            .call(Method::GET, "/api/v2/dags", Some(token), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    }

    let (status, _) = api
        .call(Method::POST, "/auth/logout", Some(&good), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api
        .call(Method::GET, "/api/v2/dags", Some(&good), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked: {body}");
}

#[tokio::test]
async fn tokens_come_from_json_or_a_form_and_twenty_wrong_passwords_are_throttled() {
    let api = Api::new().await;
    let form = Request::builder()
        .method(Method::POST)
        .uri("/auth/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("username=otto&password=correct+horse"))
        .unwrap();
    let (status, body) = api.raw(form).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3);

    let mut statuses = Vec::new();
    for _ in 0..20 {
        let (status, _) = api
            .call(
                Method::POST,
                "/auth/token",
                None,
                Some(json!({"username": "otto", "password": "wrong"})),
            )
            .await;
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses[0], 401);
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
    // While throttled, even the right password is refused.
    let (status, _) = api
        .call(
            Method::POST,
            "/auth/token",
            None,
            Some(json!({"username": "otto", "password": "correct horse"})),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn dags_list_filter_pause_and_trigger_with_conf() {
    let api = Api::new().await;
    let op = api.token("otto").await;
    let (status, body) = api
        .call(
            Method::GET,
            "/api/v2/dags?tags=sales&dag_id_pattern=%25dai%25",
            Some(&op),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_entries"], 1);
    assert_eq!(body["dags"][0]["dag_id"], "daily");
    assert_eq!(body["dags"][0]["tags"][0]["name"], "sales");
    assert_eq!(body["dags"][0]["timetable_summary"], "@daily");
    let (_, body) = api
        .call(Method::GET, "/api/v2/dags?tags=nope", Some(&op), None)
        .await;
    assert_eq!(body["total_entries"], 0);
    let (_, body) = api.call(Method::GET, "/api/v2/dags", Some(&op), None).await;
    assert_eq!(body["dags"][0]["is_paused"], false, "{body}");

    let (status, body) = api
        .call(
            Method::PATCH,
            "/api/v2/dags/daily",
            Some(&op),
            Some(json!({"is_paused": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["is_paused"], true);
    let (_, body) = api
        .call(Method::GET, "/api/v2/dags?paused=true", Some(&op), None)
        .await;
    assert_eq!(body["total_entries"], 1);
    // The listing's JSON is reused for a second, but a change through the API forgets it.
    let (_, body) = api.call(Method::GET, "/api/v2/dags", Some(&op), None).await;
    assert_eq!(body["dags"][0]["is_paused"], true, "{body}");

    let (status, run) = api
        .call(
            Method::POST,
            "/api/v2/dags/daily/dagRuns",
            Some(&op),
            Some(json!({"logical_date": null, "conf": {"country": "JP"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["conf"]["country"], "JP");
    assert_eq!(run["run_type"], "manual");
    assert_eq!(run["state"], "queued");
    let run_id = run["dag_run_id"].as_str().unwrap();

    let (status, body) = api
        .call(Method::GET, "/api/v2/dags/~/dagRuns", Some(&op), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total_entries"], 1);
    assert_eq!(body["dag_runs"][0]["dag_run_id"], run_id);

    let (status, body) = api
        .call(
            Method::GET,
            &format!("/api/v2/dags/daily/dagRuns/{run_id}/taskInstances"),
            Some(&op),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_entries"], 2);
    assert_eq!(body["task_instances"][0]["map_index"], -1);

    // The audit log says who did it.
    let (_, events) = api
        .call(Method::GET, "/api/v2/eventLogs", Some(&op), None)
        .await;
    let owners: Vec<&str> = events["event_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["owner"].as_str().unwrap())
        .collect();
    assert!(
        owners.iter().filter(|o| **o == "otto").count() >= 2,
        "{events}"
    );

    let (status, body) = api
        .call(Method::GET, "/api/v2/dags/nope", Some(&op), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["detail"].as_str().unwrap().contains("nope"));
}

#[tokio::test]
async fn malformed_requests_get_422_or_400_in_airflows_shape() {
    let api = Api::new().await;
    let op = api.token("otto").await;
    let bad_json = Request::builder()
        .method(Method::POST)
        .uri("/api/v2/dags/daily/dagRuns")
        .header(header::AUTHORIZATION, format!("Bearer {op}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let (status, body) = api.raw(bad_json).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["type"], "json_invalid");
    assert_eq!(body["detail"][0]["loc"][0], "body");

    for bad in [
        json!({"conf": "not an object"}),
        json!({"surprise": 1}),
        json!({"logical_date": "yesterday"}),
    ] {
        let (status, body) = api
            .call(
                Method::POST,
                "/api/v2/dags/daily/dagRuns",
                Some(&op),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert!(body["detail"][0]["msg"].is_string(), "{body}");
    }
    let (status, body) = api
        .call(Method::GET, "/api/v2/dags?limit=-1", Some(&op), None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = api
        .call(Method::GET, "/api/v2/dags?limit=99999999", Some(&op), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api
        .call(Method::GET, "/api/v2/dags?order_by=nope", Some(&op), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = api
        .call(Method::GET, "/api/v2/no/such/route", Some(&op), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn variables_crud_with_airflows_codes() {
    let api = Api::new().await;
    let admin = api.token("ada").await;
    let body = json!({"key": "region", "value": "kr", "description": "where"});
    let (status, created) = api
        .call(
            Method::POST,
            "/api/v2/variables",
            Some(&admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["value"], "kr");
    let (status, _) = api
        .call(Method::POST, "/api/v2/variables", Some(&admin), Some(body))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, patched) = api
        .call(
            Method::PATCH,
            "/api/v2/variables/region",
            Some(&admin),
            Some(json!({"key": "region", "value": "jp"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["value"], "jp");
    let (_, list) = api
        .call(Method::GET, "/api/v2/variables", Some(&admin), None)
        .await;
    assert_eq!(list["total_entries"], 1);
    let (status, _) = api
        .call(
            Method::DELETE,
            "/api/v2/variables/region",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .call(Method::GET, "/api/v2/variables/region", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn connection_passwords_never_leave_the_server() {
    let api = Api::new().await;
    let admin = api.token("ada").await;
    let (status, created) = api
        .call(
            Method::POST,
            "/api/v2/connections",
            Some(&admin),
            Some(json!({
                "connection_id": "wh", "conn_type": "postgres", "host": "db", "login": "etl",
                "password": "hunter2-secret", "extra": "{\"api_token\": \"tok-secret\", \"sslmode\": \"require\"}"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (_, got) = api
        .call(Method::GET, "/api/v2/connections/wh", Some(&admin), None)
        .await;
    let (_, list) = api
        .call(Method::GET, "/api/v2/connections", Some(&admin), None)
        .await;
    // A patch that sends back the mask keeps the password.
    let (status, patched) = api
        .call(
            Method::PATCH,
            "/api/v2/connections/wh",
            Some(&admin),
            Some(json!({"connection_id": "wh", "conn_type": "postgres", "host": "db2", "password": "***"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    for body in [&created, &got, &list, &patched] {
        let text = body.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("tok-secret"), "{text}");
    }
    assert_eq!(got["password"], "***");
    assert!(got["extra"].as_str().unwrap().contains("require"));
    let stored = api
        .state
        .store()
        .get_connection("wh")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.password.as_deref(), Some("hunter2-secret"));
    assert_eq!(stored.host.as_deref(), Some("db2"));
}

#[tokio::test]
async fn health_needs_no_login_and_the_openapi_document_lists_every_route() {
    let api = Api::new().await;
    let (status, health) = api
        .call(Method::GET, "/api/v2/monitor/health", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["metadatabase"]["status"], "healthy");
    assert_eq!(health["scheduler"]["status"], "unhealthy");
    let (status, doc) = api
        .call(Method::GET, "/api/v2/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (method, path, _) in weir_api::routes::route_list() {
        let op = &doc["paths"][&path][method.as_str().to_lowercase()];
        assert!(
            op.is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["DagResponse"].is_object());
}

#[tokio::test]
async fn a_page_computed_while_a_change_forgot_the_cache_is_not_kept() {
    let api = Api::new().await;
    let state = api.state.clone();
    // The first computation reads "before"; a change lands (and forgets pages) before it ends.
    let first = api
        .state
        .memo("k", async {
            state.forget_pages();
            Ok::<_, ()>("before")
        })
        .await
        .unwrap();
    assert_eq!(*first, "before");
    // The next request computes anew instead of getting what was read before the change.
    let second = api
        .state
        .memo("k", async { Ok::<_, ()>("after") })
        .await
        .unwrap();
    assert_eq!(*second, "after");
    // Without a change in between, it is kept.
    let third = api
        .state
        .memo("k", async { Ok::<_, ()>("again") })
        .await
        .unwrap();
    assert_eq!(*third, "after");
}

#[tokio::test]
async fn a_listing_shows_a_change_at_once_after_forget_pages() {
    let api = Api::new().await;
    let first = api.state.listing().await.unwrap();
    assert!(!first.rows[0].is_paused);
    // A pause between the read and the next one is seen at once after forget_pages.
    api.state.store().set_paused("daily", true).await.unwrap();
    api.state.forget_pages();
    assert!(api.state.listing().await.unwrap().rows[0].is_paused);
}
