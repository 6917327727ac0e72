//! The HTTP service: the admin API ([`crate::admin`]), health, metrics and the OpenAPI
//! document, behind one body limit and one request counter. Issue 8's webhooks and calls
//! endpoints join the same router.

pub mod error;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod openapi;

use std::future::Future;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::state::AppState;
use error::ApiError;

pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.server.max_body_bytes;
    Router::new()
        .merge(crate::admin::routes())
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
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
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
