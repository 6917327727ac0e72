//! The HTTP/WebSocket server and its graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;
use tracing::{info, warn};
use voice_core::esl::EslClient;
use voice_core::recording::Recorders;

use crate::config::{BridgeConfig, ProviderKind};
use crate::front_end::FrontEndModels;
use crate::prompts::Prompts;
use crate::state::AppState;
use crate::{esl_events, health, stream};

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/stream", get(stream::handler))
        .route("/stream/{*rest}", get(stream::handler))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .with_state(state)
}

/// [`state`], plus the tenants of `[database]` when it has a URL: connects, migrates, and
/// starts the tenant directory and the event writer.
/// Provider credentials open with `VOICE_CREDENTIALS_KEY`.
pub async fn connect_state(config: BridgeConfig) -> Result<Arc<AppState>, String> {
    use voice_core::tenancy::crypto::{CredentialKey, CryptoError};
    let key = match CredentialKey::from_env() {
        Ok(key) => Some(key),
        Err(CryptoError::NoKey) => None,
        Err(e) => return Err(e.to_string()),
    };
    connect_state_with_key(config, key).await
}

/// [`connect_state`] with the credentials key given (tests); `None`: no key.
pub async fn connect_state_with_key(
    config: BridgeConfig,
    key: Option<voice_core::tenancy::crypto::CredentialKey>,
) -> Result<Arc<AppState>, String> {
    let tenancy = crate::tenancy::Tenancy::connect(&config, key).await?;
    build_state(config, tenancy)
}

/// Builds the shared state (TOML only: `[database]` is not used): loads the models local turn detection needs and builds the
/// cascaded agents' providers (a missing model or key is this error, at start), opens the
/// recordings folder and starts the ESL client, when enabled.
pub fn state(config: BridgeConfig) -> Result<Arc<AppState>, String> {
    build_state(config, None)
}

fn build_state(
    config: BridgeConfig,
    tenancy: Option<crate::tenancy::Tenancy>,
) -> Result<Arc<AppState>, String> {
    let models = FrontEndModels::load(config.all_agents(), &voice_core::onnx::models_dir())?;
    let recorders = config
        .recording
        .enabled
        .then(|| Recorders::new(config.recording.clone()))
        .transpose()
        .map_err(|e| format!("recording: {e}"))?;
    let esl = config
        .esl
        .enabled
        .then(|| EslClient::start(config.esl.client.clone()));
    let prompts = Prompts::load(config.all_agents())?;
    let cascaded = config
        .all_agents()
        .filter(|a| a.provider_chain().contains(&ProviderKind::Cascaded))
        .map(|a| &a.cascaded);
    let stages = config
        .providers
        .build(cascaded)
        .map_err(|e| format!("cascaded agent: {e}"))?;
    Ok(AppState::new(
        config, esl, models, recorders, prompts, stages, tenancy,
    ))
}

/// Serves until `shutdown` resolves, then stops taking calls and lets live ones finish
/// (up to `server.shutdown_grace_secs`).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    tokio::spawn(esl_events::route(state.clone()));
    let stop_state = state.clone();
    let grace = Duration::from_secs(state.config.server.shutdown_grace_secs);
    // Paced 20 ms frames must leave at once, not wait for Nagle's algorithm.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            stop_state.begin_shutdown();
            info!(
                calls = stop_state.metrics.calls_active.get(),
                "shutting down: no new calls; waiting for live calls"
            );
        })
        .await?;
    // Upgraded WebSockets are not tracked by the HTTP server: wait for the calls themselves.
    let started = Instant::now();
    while state.metrics.calls_active.get() > 0 && started.elapsed() < grace {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = state.metrics.calls_active.get();
    if left > 0 {
        warn!(calls = left, "shutdown grace over; dropping live calls");
    }
    Ok(())
}
