//! `/healthz` (the database, the credentials key) and `/metrics`.

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
    /// `ok`, or `degraded` when the database does not answer.
    pub status: String,
    /// `ok` or what is wrong.
    pub database: String,
    /// `ok`, or `not set` when VOICE_CREDENTIALS_KEY is missing (credentials refused).
    pub credentials_key: String,
}

/// Health of the service and its dependencies (503 when the database does not answer).
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
    let ok = database == "ok";
    let body = Health {
        status: if ok { "ok" } else { "degraded" }.into(),
        database,
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
