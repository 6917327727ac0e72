//! `/healthz` (each dependency: the session store, the providers) and `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when the session store does not answer.
    pub status: String,
    /// `redis`/`memory`: `ok` or the error; `providers`: each one's state.
    #[schema(value_type = Object)]
    pub dependencies: serde_json::Value,
}

/// Health of the service and its dependencies (503 when sessions cannot be kept).
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, body = Health, description = "Everything answers"),
        (status = 503, body = Health, description = "The session store does not answer"),
    )
)]
pub async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let store = match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 2 s".to_string(),
    };
    let ok = store == "ok";
    let body = Health {
        status: if ok { "ok" } else { "degraded" }.into(),
        dependencies: json!({
            state.store.name(): store,
            "providers": providers(&state),
        }),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Every provider of every engine (the default and the tenants' own).
fn providers(state: &AppState) -> serde_json::Map<String, serde_json::Value> {
    let mut all = state.turns.providers();
    for turns in state.tenant_turns.values() {
        for (name, status) in turns.providers() {
            all.entry(name).or_insert(status);
        }
    }
    all
}

/// Prometheus metrics.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain", body = String, description = "Prometheus text format"))
)]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(state.uploader.get()),
    )
}
