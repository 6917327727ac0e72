//! The HTTP service: the admin API ([`crate::admin`]), call intake ([`crate::intake`]),
//! health, metrics and the OpenAPI document, behind one body limit and one request counter.
//! Served with each connection's peer address (the webhook source allowlist needs it).

pub mod error;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod openapi;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use tokio::net::TcpListener;

use crate::intake::Intake;
use crate::state::AppState;
use error::ApiError;

/// The service's router, with the webhook secret from `INSIGHTS_WEBHOOK_SECRET`.
pub fn router(state: Arc<AppState>) -> Router {
    let intake = Arc::new(Intake::from_env(&state.config.webhooks));
    router_with(state, intake)
}

/// [`router`] with a given webhook intake (tests bring their own secret).
pub fn router_with(state: Arc<AppState>, intake: Arc<Intake>) -> Router {
    let limit = state.config.server.max_body_bytes;
    Router::new()
        .merge(crate::admin::routes())
        .merge(crate::intake::routes(intake.clone()))
        .merge(crate::panel::routes())
        .merge(crate::calls::routes())
        .route("/healthz", get(health::healthz))
        .route(
            "/metrics",
            get(metrics_with_intake).layer(Extension(intake)),
        )
        .route("/openapi.json", get(openapi::document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint (see /openapi.json)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take this method (see /openapi.json)",
    )
}

/// The service's metrics ([`health::metrics`], which documents the route) followed by the
/// webhook counters, which live with the intake.
async fn metrics_with_intake(
    State(state): State<Arc<AppState>>,
    Extension(intake): Extension<Arc<Intake>>,
) -> impl IntoResponse {
    let mut text = state.metrics.render();
    text.push_str(&intake.metrics.render());
    text.push_str(&state.pipeline_metrics.render());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// Counts requests and error answers. Bodies are never logged (they may hold credentials).
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
    serve_router(listener, router(state), shutdown).await
}

/// Serves `router` with each connection's peer address (`ConnectInfo<SocketAddr>`).
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
