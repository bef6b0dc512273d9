//! weir-api: the Airflow 3 REST API subset under `/api/v2` (Airflow's field names, status
//! codes, pagination and error shapes, so that `apache-airflow-client` and scripts written for
//! Airflow keep working), `POST /auth/token`, and the OpenAPI document generated from the
//! handlers' types.
//!
//! Key types: [`ApiState`] (what the handlers share), [`routes::table`] (every route with the
//! role it needs: the one place a route is declared), [`auth`] (users, passwords, tokens).
//!
//! Architecture invariant: use cases that change runs and task instances go through
//! `weir-service`, never the store directly; no DAG folder reading (DAGs come from the store,
//! as the DAG processor wrote them); no terminal output.

pub mod auth;
mod dags;
mod error;
mod misc;
mod model;
mod page;
pub mod routes;
mod runs;
mod settings;
mod tis;

use std::any::Any;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use weir_service::Services;
use weir_store::Store;

pub use auth::{Role, hash_password};
pub use dags::Listing;
pub use error::ApiError;

/// What the API needs to know of its surroundings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Signs the JWTs this server issues.
    pub secret_key: Vec<u8>,
    /// How long an issued token is valid.
    pub token_ttl: Duration,
    /// Where the workers write task logs (`weir_core::log_path`).
    pub log_dir: PathBuf,
    /// Whether a DAG that the store does not know yet starts paused (`[core]
    /// dags_are_paused_at_creation`).
    pub paused_by_default: bool,
    /// The largest page a listing returns (Airflow's `maximum_page_limit`).
    pub max_page_limit: usize,
    /// Where users reach the webserver (`[webserver] base_url`); an `https` one makes the UI's
    /// session cookie `Secure`.
    pub base_url: Option<String>,
    /// The weir project's folder: the UI's models pages read the dbt projects of its `models`
    /// tasks from it. `None`: no models pages.
    pub project_dir: Option<PathBuf>,
}

impl ApiConfig {
    pub fn new(secret_key: Vec<u8>, log_dir: PathBuf) -> ApiConfig {
        ApiConfig {
            secret_key,
            token_ttl: Duration::from_secs(24 * 3600),
            log_dir,
            paused_by_default: false,
            max_page_limit: 100,
            base_url: None,
            project_dir: None,
        }
    }
}

/// A value a page computed, and when.
type Kept = (std::time::Instant, Arc<dyn Any + Send + Sync>);

/// What every handler shares: the use cases, the store they run on, and the settings.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    services: Services,
    config: ApiConfig,
    throttle: auth::Throttle,
    tokens: auth::TokenCache,
    dags: dags::DagCache,
    /// What pages computed from the store, reused for [`ApiState::PAGE_TTL`].
    pages: std::sync::Mutex<HashMap<String, Kept>>,
    /// Held by the request that computes a page anew.
    computing: tokio::sync::Mutex<()>,
    /// Counts `forget_pages` calls: a page computed while one happened is not kept, since it
    /// may have read the store before the change.
    forgotten: std::sync::atomic::AtomicU64,
    /// The OpenAPI document, rendered once when the router is built.
    openapi: std::sync::OnceLock<String>,
    /// Renders this process's metrics for `/metrics`, when a recorder is installed.
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl ApiState {
    pub fn new(services: Services, config: ApiConfig) -> ApiState {
        ApiState::with_metrics(services, config, None)
    }

    /// With the process's Prometheus recorder, so that `/metrics` serves what the scheduler
    /// and workers of this process record.
    pub fn with_metrics(
        services: Services,
        config: ApiConfig,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> ApiState {
        ApiState {
            inner: Arc::new(Inner {
                services,
                config,
                throttle: auth::Throttle::default(),
                tokens: auth::TokenCache::default(),
                dags: dags::DagCache::default(),
                pages: Default::default(),
                computing: Default::default(),
                forgotten: Default::default(),
                openapi: std::sync::OnceLock::new(),
                metrics,
            }),
        }
    }

    pub fn services(&self) -> &Services {
        &self.inner.services
    }

    pub fn store(&self) -> &Store {
        self.inner.services.store()
    }

    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// How long a page may show what it read from the store before reading it again (changes
    /// by other processes show within it; this process's own at once, see
    /// [`ApiState::forget_cached`]).
    pub const PAGE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

    /// What a page computed under `key` less than [`ApiState::PAGE_TTL`] ago, or what
    /// `compute` answers now (kept for the next request). While one request computes a stale
    /// key anew, the others get the stale value rather than all reading the store at once.
    pub async fn memo<T, E, F>(&self, key: &str, compute: F) -> Result<Arc<T>, E>
    where
        T: Any + Send + Sync,
        F: std::future::Future<Output = Result<T, E>>,
    {
        let lock = || self.inner.pages.lock().unwrap_or_else(|e| e.into_inner());
        let kept = || {
            lock().get(key).and_then(|(at, value)| {
                let value = value.clone().downcast::<T>().ok()?;
                Some((at.elapsed() < Self::PAGE_TTL, value))
            })
        };
        let stale = match kept() {
            Some((true, value)) => return Ok(value),
            Some((false, value)) => Some(value),
            None => None,
        };
        let _computing = match (self.inner.computing.try_lock(), stale) {
            (Ok(guard), _) => guard,
            (Err(_), Some(value)) => return Ok(value),
            (Err(_), None) => self.inner.computing.lock().await,
        };
        if let Some((true, value)) = kept() {
            return Ok(value);
        }
        let before = self.inner.forgotten.load(Ordering::SeqCst);
        let value = Arc::new(compute.await?);
        let mut pages = lock();
        if self.inner.forgotten.load(Ordering::SeqCst) != before {
            return Ok(value);
        }
        if pages.len() >= 256 {
            pages.retain(|_, (at, _)| at.elapsed() < Self::PAGE_TTL);
        }
        pages.insert(key.to_string(), (std::time::Instant::now(), value.clone()));
        Ok(value)
    }

    /// Forgets cached listings and pages: after a request of this process changed something.
    pub fn forget_pages(&self) {
        let mut pages = self.inner.pages.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.forgotten.fetch_add(1, Ordering::SeqCst);
        pages.clear();
        drop(pages);
        self.inner.dags.clear();
    }

    /// Forgets checked tokens, cached listings and pages: after this process changed users,
    /// revoked a token, or changed what a listing or page shows.
    pub fn forget_cached(&self) {
        self.forget_pages();
        self.inner.tokens.clear();
    }
}

/// The API's router: `/api/v2/...`, `/auth/token`, and `/api/v2/openapi.json`.
pub fn router(state: ApiState) -> axum::Router {
    routes::router(state)
}
