//! `/healthz` (is the process alive, and how is each dependency), `/readyz` (should a load
//! balancer or the dialplan send calls here) and `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::config::ProviderKind;
use crate::state::AppState;

fn esl_status(state: &AppState) -> &'static str {
    match &state.esl {
        None => "disabled",
        Some(esl) if esl.is_connected() => "connected",
        Some(_) => "disconnected",
    }
}

/// Whether the environment has a non-empty `name`.
fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

fn provider_status(state: &AppState, kind: ProviderKind) -> &'static str {
    let p = &state.config.providers;
    let configured = match kind {
        ProviderKind::OpenaiRealtime => {
            !p.openai_realtime.api_key.is_empty() || env_set("OPENAI_API_KEY")
        }
        ProviderKind::GeminiLive => {
            !p.gemini_live.api_key.is_empty()
                || env_set("GEMINI_API_KEY")
                || env_set("GOOGLE_API_KEY")
        }
        // A public agent needs no key, only its id.
        ProviderKind::ElevenlabsAgent => !p.elevenlabs_agent.agent_id.is_empty(),
        // Its stage providers were built at start (or the bridge did not start).
        ProviderKind::Cascaded => true,
    };
    if configured {
        "configured"
    } else {
        "not configured"
    }
}

/// Every provider some agent uses, first or as a fallback, with its status. Ready needs
/// every agent's own provider configured.
fn providers(state: &AppState) -> (serde_json::Map<String, serde_json::Value>, bool) {
    let mut all = serde_json::Map::new();
    let mut ready = true;
    for agent in state.config.all_agents() {
        ready &= provider_status(state, agent.provider) == "configured";
        for kind in agent.provider_chain() {
            all.insert(kind.name().into(), provider_status(state, kind).into());
        }
    }
    (all, ready)
}

pub async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    Json(json!({
        "status": "ok",
        "calls_active": state.metrics.calls_active.get(),
        "shutting_down": state.is_shutting_down(),
        "dependencies": dependencies(&state),
    }))
}

fn dependencies(state: &AppState) -> serde_json::Value {
    let (mut all, _) = providers(state);
    all.insert("esl".into(), esl_status(state).into());
    if let Some(tenancy) = &state.tenancy {
        // Reconnecting: calls still resolve, from the database directly.
        let directory = if tenancy.directory.is_listening() {
            "listening"
        } else {
            "reconnecting"
        };
        all.insert("tenant_directory".into(), directory.into());
    }
    serde_json::Value::Object(all)
}

pub async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let esl = esl_status(&state);
    let (_, providers_ready) = providers(&state);
    let ready = !state.is_shutting_down() && esl != "disconnected" && providers_ready;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "ready": ready, "dependencies": dependencies(&state) })),
    )
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state
            .metrics
            .render(state.recorders.as_ref(), state.uploader.get()),
    )
}
