//! The webserver: the web UI and the REST API on `[webserver] host:port`, inside `weir
//! standalone` or alone as `weir webserver`.

use crate::config::Settings;
use anyhow::{Context, Result};
use std::net::SocketAddr;
use tokio::sync::watch;
use weir_api::{ApiConfig, ApiState};
use weir_service::{Services, Waker};
use weir_store::Store;

/// Binds the webserver's port; serving starts with [`Bound::serve`].
pub struct Bound {
    listener: tokio::net::TcpListener,
    pub addr: SocketAddr,
    state: ApiState,
}

pub async fn bind(
    settings: &Settings,
    store: &Store,
    waker: Waker,
    port: Option<u16>,
) -> Result<Bound> {
    let addr = settings.webserver_addr(port)?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!(
            "cannot listen on {addr}\nhint: another program uses the port; set [webserver] port (0 picks a free one) or pass --port"
        )
    })?;
    let addr = listener.local_addr()?;
    let mut config = ApiConfig::new(settings.secret_key()?.into_bytes(), settings.log_dir());
    config.paused_by_default = settings.paused_by_default();
    config.project_dir = Some(settings.project_dir.clone());
    config.base_url = settings
        .get("webserver", "base_url")
        .and_then(|v| v.as_str())
        .map(String::from);
    let state = ApiState::with_metrics(
        Services::new(store.clone()).with_waker(waker),
        config,
        metrics_handle(),
    );
    Ok(Bound {
        listener,
        addr,
        state,
    })
}

impl Bound {
    /// The address to print: `localhost` for an unspecified host.
    pub fn url(&self) -> String {
        if self.addr.ip().is_unspecified() {
            format!("http://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// Serves until `shutdown` turns true.
    pub async fn serve(self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        let app = weir_api::router(self.state.clone()).merge(weir_ui::router(self.state));
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await
            .context("the webserver stopped")
    }
}

/// The process's Prometheus recorder, installed on first use; `None` if another recorder was
/// installed first.
fn metrics_handle() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .ok()
        })
        .clone()
}
