//! `/healthz` (is the process alive, and how is each dependency), `/readyz` (should a load
//! balancer or the dialplan send calls here) and `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::state::AppState;

fn esl_status(state: &AppState) -> &'static str {
    match &state.esl {
        None => "disabled",
        Some(esl) if esl.is_connected() => "connected",
        Some(_) => "disconnected",
    }
}

fn provider_status(state: &AppState) -> &'static str {
    let p = &state.config.providers.openai_realtime;
    if p.api_key.is_empty() && std::env::var("OPENAI_API_KEY").map_or(true, |k| k.is_empty()) {
        "no api key"
    } else {
        "configured"
    }
}

pub async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    Json(json!({
        "status": "ok",
        "calls_active": state.metrics.calls_active.get(),
        "shutting_down": state.is_shutting_down(),
        "dependencies": { "esl": esl_status(&state), "openai_realtime": provider_status(&state) },
    }))
}

pub async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let esl = esl_status(&state);
    let provider = provider_status(&state);
    let ready = !state.is_shutting_down() && esl != "disconnected" && provider == "configured";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "ready": ready, "esl": esl, "openai_realtime": provider })),
    )
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(state.recorders.as_ref()),
    )
}
