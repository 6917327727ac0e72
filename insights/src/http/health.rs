//! `/healthz` (the database, the queue, the recording storage, the credentials key) and
//! `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when a dependency does not answer.
    pub status: String,
    /// `ok` or what is wrong.
    pub database: String,
    /// The job queue (Redis): `ok`, `not configured`, `connecting` or what is wrong. Without
    /// it calls are still accepted (their jobs wait in the database).
    pub queue: String,
    /// Where recordings are kept: `ok (local)`, `ok (s3)` or what is wrong.
    pub storage: String,
    /// `ok`, or `not set` when VOICE_CREDENTIALS_KEY is missing (credentials refused).
    pub credentials_key: String,
}

/// Health of the service and its dependencies. 503 only when the database does not answer
/// (nothing can be accepted then); a queue or storage fault shows as `degraded`.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, body = Health, description = "Everything answers"),
        (status = 503, body = Health, description = "The database does not answer"),
    )
)]
pub async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let ping = async {
        let client = state.db.pool().get().await.map_err(|e| e.to_string())?;
        client
            .simple_query("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| voice_core::db::describe(&e))
    };
    let database = match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health: database");
            "does not answer (see the service log)".to_string()
        }
        Err(_) => "no answer within 2 s".to_string(),
    };
    let queue = queue_health(&state).await;
    let storage = match tokio::time::timeout(Duration::from_secs(3), state.storage.check()).await {
        Ok(Ok(())) => format!("ok ({})", state.storage.backend()),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 3 s".to_string(),
    };
    let ok = database == "ok";
    let all_ok = ok && storage.starts_with("ok") && (queue == "ok" || queue == "not configured");
    let body = Health {
        status: if all_ok { "ok" } else { "degraded" }.into(),
        database,
        queue,
        storage,
        credentials_key: if state.credential_key.is_some() {
            "ok"
        } else {
            "not set"
        }
        .into(),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn queue_health(state: &AppState) -> String {
    if state.config.queue.redis_url.is_empty() {
        return "not configured".into();
    }
    let Some(queue) = state.queue.get() else {
        return "connecting".into();
    };
    let group = &state.config.worker.group;
    match tokio::time::timeout(Duration::from_secs(2), queue.depth(group)).await {
        Ok(Ok(_)) => "ok".into(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 2 s".into(),
    }
}

/// Prometheus metrics.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain", body = String, description = "Prometheus text format"))
)]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
