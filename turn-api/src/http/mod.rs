//! The HTTP service: sessions and turns for Lua IVR scripts (see [`handlers`]), audio
//! files, health, metrics and the OpenAPI document.

pub mod audio;
pub mod auth;
pub mod body;
pub mod engine_turns;
pub mod error;
pub mod handlers;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod tenants;
pub mod turns;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::config::TurnApiConfig;
use crate::engine::{EngineSettings, TurnEngine};
use crate::sessions::{self, SessionStore};
use crate::tenancy::DbTenancy;
use audio::AudioFiles;
use auth::Keys;
use error::ApiError;
use metrics::Metrics;
use turns::Turns;

pub struct AppState {
    pub config: TurnApiConfig,
    /// The engine of tenants without `[tenants."domain".engine]` overrides.
    pub turns: Arc<dyn Turns>,
    /// The engines of tenants with overrides.
    pub tenant_turns: HashMap<String, Arc<dyn Turns>>,
    pub store: Arc<dyn SessionStore>,
    pub audio: AudioFiles,
    pub keys: Keys,
    pub metrics: Metrics,
    /// Each session's whole call (`[recording]`).
    pub recording: crate::recording::Recording,
    /// Tenants, keys and agents from PostgreSQL (`[database] url`), when configured.
    pub tenancy: Option<DbTenancy>,
    /// Sends finished calls' recordings to call-insights (`[recording.upload]`); set once
    /// at start, for its counters on /metrics.
    pub uploader: std::sync::OnceLock<voice_core::recording::upload::Uploader>,
    /// Sessions with a turn in progress in this process (a second one at once is refused).
    busy: Mutex<HashSet<String>>,
}

/// Marks a session busy until dropped.
pub struct BusyGuard<'a> {
    state: &'a AppState,
    id: String,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.state.busy_set().remove(&self.id);
    }
}

impl AppState {
    pub fn new(
        config: TurnApiConfig,
        turns: Arc<dyn Turns>,
        tenant_turns: HashMap<String, Arc<dyn Turns>>,
        store: Arc<dyn SessionStore>,
        tenancy: Option<DbTenancy>,
    ) -> Result<Arc<Self>, String> {
        let audio = AudioFiles::new(&config.audio, &config.server)
            .map_err(|e| format!("audio.dir {}: {e}", config.audio.dir.display()))?;
        let ttl = std::time::Duration::from_secs(config.redis.session_ttl_secs);
        let recording = crate::recording::Recording::new(&config.recording, ttl)
            .map_err(|e| format!("recording: {e}"))?;
        Ok(Arc::new(Self {
            keys: Keys::new(&config.tenants),
            audio,
            config,
            turns,
            tenant_turns,
            store,
            metrics: Metrics::default(),
            recording,
            tenancy,
            uploader: std::sync::OnceLock::new(),
            busy: Mutex::new(HashSet::new()),
        }))
    }

    /// The engine that answers a TOML tenant's sessions.
    pub fn turns_for(&self, tenant: &str) -> Arc<dyn Turns> {
        self.tenant_turns.get(tenant).unwrap_or(&self.turns).clone()
    }

    fn busy_set(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims `id` for one turn; 409 when another turn of it is running.
    pub fn claim(&self, id: &str) -> Result<BusyGuard<'_>, ApiError> {
        if !self.busy_set().insert(id.to_string()) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "turn_in_progress",
                "another turn of this session is still being answered",
            ));
        }
        Ok(BusyGuard {
            state: self,
            id: id.to_string(),
        })
    }
}

/// Builds the engines from `[engine]` (and each tenant's overrides) and `[providers]`, and
/// the store from `[redis]`.
pub async fn state(config: TurnApiConfig) -> Result<Arc<AppState>, String> {
    let turns = engine(&config, &toml::Table::new()).map_err(|e| format!("engine: {e}"))?;
    let mut tenant_turns = HashMap::new();
    for (domain, tenant) in &config.tenants {
        if !tenant.engine.is_empty() {
            let turns = engine(&config, &tenant.engine)
                .map_err(|e| format!("tenants.\"{domain}\".engine: {e}"))?;
            tenant_turns.insert(domain.clone(), turns);
        }
    }
    let store = sessions::from_settings(&config.redis)
        .await
        .map_err(|e| e.to_string())?;
    let tenancy = DbTenancy::connect(&config).await?;
    AppState::new(config, turns, tenant_turns, store, tenancy)
}

/// An engine from `[engine]` with `overrides` merged over it.
fn engine(config: &TurnApiConfig, overrides: &toml::Table) -> Result<Arc<dyn Turns>, String> {
    let mut table = config.engine.clone();
    voice_core::config::merge(&mut table, overrides.clone());
    let settings: EngineSettings = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())?;
    let engine = TurnEngine::new(&config.providers, settings).map_err(|e| e.to_string())?;
    Ok(Arc::new(engine_turns::EngineTurns::new(
        engine,
        &config.providers,
    )))
}

pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.server.max_body_bytes;
    Router::new()
        .route("/v1/sessions", post(handlers::create_session))
        .route("/v1/sessions/{id}/turns", post(handlers::turn))
        .route("/v1/sessions/{id}/end", post(handlers::end_session))
        .route(
            "/v1/sessions/{id}",
            axum::routing::delete(handlers::end_session),
        )
        .route("/v1/audio/{file}", get(handlers::audio))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::document))
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

/// Counts requests and error answers.
async fn count(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    state.metrics.requests.inc();
    let response = next.run(request).await;
    if response.status().is_client_error() {
        state.metrics.client_errors.inc();
    } else if response.status().is_server_error() {
        state.metrics.server_errors.inc();
    }
    response
}

/// Serves until `shutdown` resolves; requests in flight finish first.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = tokio::spawn(sweep_audio(state.clone()));
    let expiry = tokio::spawn(state.recording.clone().run_expiry());
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    sweeper.abort();
    expiry.abort();
    served
}

/// Deletes old answer files every minute (`audio.keep_secs`; 0 keeps them).
async fn sweep_audio(state: Arc<AppState>) {
    let keep = state.config.audio.keep_secs;
    if keep == 0 {
        return;
    }
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let s = state.clone();
        let removed = tokio::task::spawn_blocking(move || {
            s.audio.sweep(std::time::Duration::from_secs(keep))
        })
        .await
        .unwrap_or(0);
        if removed > 0 {
            tracing::debug!(removed, "old answer files deleted");
        }
    }
}
