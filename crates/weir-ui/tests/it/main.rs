//! The web UI through its router against a real store (SQLite in a temp dir): what a browser
//! gets back (status, redirects, cookies, HTML) and what changed in the store.

mod access;
mod pages;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use weir_api::{ApiConfig, ApiState, Role};

pub const DAG: &str = "description: 'Daily <script>alert(1)</script>'\ntags: [sales]\nschedule: '@daily'\nstart_date: 2026-01-01\nparams: {country: KR}\ntasks:\n  - {id: extract, type: empty}\n  - {id: load, type: empty, depends_on: [extract]}\n";

pub struct Ui {
    pub dir: tempfile::TempDir,
    pub state: ApiState,
    pub router: axum::Router,
}

/// A response as a browser sees it.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A logged-in browser: its cookie and the CSRF token its pages carry.
pub struct Login {
    pub cookie: String,
    pub csrf: String,
}

impl Ui {
    pub async fn new() -> Ui {
        Ui::with_config(|_| {}).await
    }

    pub async fn with_config(tweak: impl FnOnce(&mut ApiConfig)) -> Ui {
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
        let mut config = ApiConfig::new(b"test secret".to_vec(), dir.path().join("logs"));
        tweak(&mut config);
        let state = ApiState::new(weir_service::Services::new(store), config);
        let router = weir_ui::router(state.clone());
        Ui { dir, state, router }
    }

    pub async fn send(&self, req: Request<Body>) -> Page {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, login: Option<&Login>) -> Page {
        let mut req = Request::builder().method(Method::GET).uri(path);
        if let Some(l) = login {
            req = req.header(header::COOKIE, &l.cookie);
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    /// A form POST; `csrf` is added as the form field when given.
    pub async fn post(
        &self,
        path: &str,
        login: Option<&Login>,
        csrf: Option<&str>,
        fields: &[(&str, &str)],
    ) -> Page {
        let mut body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        if let Some(t) = csrf {
            body.push(format!("csrf_token={t}"));
        }
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(l) = login {
            req = req.header(header::COOKIE, &l.cookie);
        }
        self.send(req.body(Body::from(body.join("&"))).unwrap())
            .await
    }

    /// Opens the login page and posts its form with `fields` (and extra `headers`), as a
    /// browser does: with the login form's token and cookie.
    pub async fn post_login(&self, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let form = self.get("/login", None).await;
        assert_eq!(form.status, StatusCode::OK);
        let set = form.headers[header::SET_COOKIE].to_str().unwrap();
        let cookie = set.split(';').next().unwrap().to_string();
        assert!(cookie.starts_with("weir_login="), "{set}");
        let at = form.body.find("name=\"login_token\" value=\"").unwrap() + 26;
        let token = &form.body[at..at + 64];
        let mut body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        body.push(format!("login_token={token}"));
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, cookie);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(Body::from(body.join("&"))).unwrap())
            .await
    }

    /// Logs in through the form, then reads the CSRF token off the DAG list.
    pub async fn login(&self, user: &str) -> Login {
        let page = self
            .post_login(&[("username", user), ("password", "correct horse")], &[])
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        let set = page
            .headers
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap();
        let cookie = set.split(';').next().unwrap().to_string();
        let mut login = Login {
            cookie,
            csrf: String::new(),
        };
        let list = self.get("/", Some(&login)).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
        login.csrf = csrf_of(&list.body);
        login
    }
}

/// The CSRF token a page's forms carry.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf_token\" value=\"")
        .expect("a form with a CSRF token")
        + 25;
    html[at..at + 64].to_string()
}

pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A concrete path for a route pattern.
pub fn concrete(path: &str) -> String {
    path.replace("{dag_id}", "daily")
        .replace("{run_id}", "r1")
        .replace("{task_id}", "extract")
        .replace("{file}", "weir.css")
}
