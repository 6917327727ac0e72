//! The two endpoints: faults that act before the checks (a status, a hang), the checks,
//! then the scripted answer as an event stream. Refusals carry the provider's error JSON.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::body::{self, Plan};
use super::script::{self, Parsed};
use super::stats::Api;
use super::{anthropic_api, openai_api, render, Fault, Shared};
use crate::fake_common::server::fault_status;

pub(crate) const CHAT_COMPLETIONS: &str = "/v1/chat/completions";
pub(crate) const MESSAGES: &str = "/v1/messages";

/// Longest a `HangBeforeHeaders` request is held (the fake stopping ends it sooner).
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// Why a request is refused, in the provider's words.
#[derive(Debug)]
pub(crate) struct Rejection {
    pub status: StatusCode,
    /// `error.type`.
    pub kind: &'static str,
    /// OpenAI's `error.code`.
    pub code: Option<&'static str>,
    pub message: String,
}

impl Rejection {
    pub fn bad_request(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind,
            code: None,
            message: message.into(),
        }
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(CHAT_COMPLETIONS, post(chat_completions))
        .route(MESSAGES, post(messages))
        .with_state(shared)
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(Api::ChatCompletions, shared, headers, body).await
}

async fn messages(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    serve(Api::Messages, shared, headers, body).await
}

async fn serve(api: Api, shared: Arc<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    shared.stats.request();
    let fault = shared.faults.next();
    match fault {
        Fault::Status(status) => {
            shared.stats.update(|s| s.refused_by_fault += 1);
            return refuse(api, fault_rejection(api, status));
        }
        Fault::HangBeforeHeaders => {
            shared.stats.update(|s| s.hung += 1);
            let mut shutdown = shared.shutdown.clone();
            let _ = tokio::time::timeout(HANG_LIMIT, shutdown.wait_for(|stop| *stop)).await;
            return refuse(api, fault_rejection(api, 503));
        }
        _ => {}
    }
    let parsed = match check(api, &shared, &headers, &body) {
        Ok(p) => p,
        Err(r) => {
            shared
                .stats
                .rejected(format!("{} {}: {}", r.status.as_u16(), r.kind, r.message));
            return refuse(api, r);
        }
    };
    shared.stats.accepted(parsed.record.clone());
    let cfg = &shared.cfg;
    let (answer, frames, error_event) = match api {
        Api::ChatCompletions => {
            let answer = script::answer(cfg, &parsed, "call_");
            let frames = render::openai(
                &answer,
                &parsed.record.model,
                parsed.include_usage,
                cfg.chat_style,
                &cfg.wire,
            );
            (answer, frames, render::openai_error())
        }
        Api::Messages => {
            let answer = script::answer(cfg, &parsed, "toolu_");
            let frames = render::anthropic(&answer, &parsed.record.model, &cfg.wire);
            (answer, frames, render::anthropic_error())
        }
    };
    let plan = Plan {
        frames,
        error_event,
        fault,
        tool_calls: answer.calls.len(),
    };
    let body = body::stream(plan, shared.clone());
    (
        [
            (CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn check(api: Api, shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Parsed, Rejection> {
    let cfg = &shared.cfg;
    match api {
        Api::ChatCompletions => openai_api::check_auth(headers, cfg)?,
        Api::Messages => anthropic_api::check_headers(headers, cfg)?,
    }
    let json_body = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_body {
        return Err(Rejection::bad_request(
            "invalid_request_error",
            "Content-Type must be application/json",
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        Rejection::bad_request(
            "invalid_request_error",
            "We could not parse the JSON body of your request.",
        )
    })?;
    match api {
        Api::ChatCompletions => openai_api::check(&value, cfg),
        Api::Messages => anthropic_api::check(&value, cfg),
    }
}

fn refuse(api: Api, r: Rejection) -> Response {
    let body = match api {
        Api::ChatCompletions => {
            json!({"error": {"message": r.message, "type": r.kind, "param": null, "code": r.code}})
        }
        Api::Messages => json!({"type": "error", "error": {"type": r.kind, "message": r.message}}),
    };
    (r.status, Json(body)).into_response()
}

/// What the provider says with `status`.
fn fault_rejection(api: Api, status: u16) -> Rejection {
    let status = fault_status(status);
    let (kind, code, message) = match (api, status.as_u16()) {
        (Api::ChatCompletions, 401) => (
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided.",
        ),
        (Api::ChatCompletions, 429) => (
            "requests",
            Some("rate_limit_exceeded"),
            "Rate limit reached for requests.",
        ),
        (Api::ChatCompletions, 500..=599) => (
            "server_error",
            None,
            "The server had an error while processing your request.",
        ),
        (Api::ChatCompletions, _) => ("invalid_request_error", None, "Refused by fault injection."),
        (Api::Messages, 401) => ("authentication_error", None, "invalid x-api-key"),
        (Api::Messages, 403) => (
            "permission_error",
            None,
            "Your API key does not have permission to use the specified resource.",
        ),
        (Api::Messages, 404) => (
            "not_found_error",
            None,
            "The requested resource could not be found.",
        ),
        (Api::Messages, 429) => (
            "rate_limit_error",
            None,
            "Number of request tokens has exceeded your per-minute rate limit.",
        ),
        (Api::Messages, 529) => ("overloaded_error", None, "Overloaded"),
        (Api::Messages, 500..=599) => ("api_error", None, "Internal server error"),
        (Api::Messages, _) => ("invalid_request_error", None, "Refused by fault injection."),
    };
    Rejection {
        status,
        kind,
        code,
        message: message.into(),
    }
}
