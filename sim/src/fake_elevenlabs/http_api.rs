//! The HTTP side: `get_signed_url` and the conversation upgrade, with their checks.
//!
//! Refusals carry ElevenLabs-style `{"detail": {"status", "message"}}` bodies and never
//! echo the key.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::stats::Count;
use super::{connection, Fault, Shared};
use crate::fake_common::server::fault_status;

pub(crate) const CONVERSATION_PATH: &str = "/v1/convai/conversation";
pub(crate) const SIGNED_URL_PATH: &str = "/v1/convai/conversation/get_signed_url";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(SIGNED_URL_PATH, get(get_signed_url))
        .route(CONVERSATION_PATH, get(conversation))
        .with_state(shared)
}

fn refuse(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"detail": {"status": kind, "message": message}});
    (status, Json(body)).into_response()
}

async fn get_signed_url(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Fault::RefuseSignedUrl(status) = shared.faults.next() {
        return refuse(
            fault_status(status),
            "refused",
            "refused by fault injection",
        );
    }
    let key = &shared.cfg.api_key;
    let authorized = !key.is_empty()
        && headers
            .get("xi-api-key")
            .is_some_and(|v| v.as_bytes() == key.as_bytes());
    if !authorized {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "Invalid API key",
        );
    }
    if query.get("agent_id") != Some(&shared.cfg.agent_id) {
        return refuse(
            StatusCode::NOT_FOUND,
            "agent_not_found",
            "No agent with this agent_id",
        );
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    shared.with_tokens(|t| t.insert(token.clone()));
    shared.stats.add(Count::SignedUrl);
    let url = format!(
        "ws://{}{CONVERSATION_PATH}?agent_id={}&token={token}",
        shared.addr, shared.cfg.agent_id
    );
    Json(json!({ "signed_url": url })).into_response()
}

async fn conversation(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let fault = shared.faults.next();
    if let Fault::RefuseUpgrade(status) = fault {
        return refuse(
            fault_status(status),
            "refused",
            "refused by fault injection",
        );
    }
    if query.get("agent_id") != Some(&shared.cfg.agent_id) {
        return refuse(
            StatusCode::NOT_FOUND,
            "agent_not_found",
            "No agent with this agent_id",
        );
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    // A private agent only takes one-use tokens from get_signed_url.
    if !shared.cfg.api_key.is_empty() {
        let valid = query
            .get("token")
            .is_some_and(|t| shared.with_tokens(|tokens| tokens.remove(t)));
        if !valid {
            return refuse(
                StatusCode::FORBIDDEN,
                "invalid_token",
                "This agent requires a valid signed URL",
            );
        }
    }
    ws.on_upgrade(move |socket| async move {
        let session = connection::serve(socket, shared.clone(), fault);
        shared.stats.sessions.during(session).await;
    })
}
