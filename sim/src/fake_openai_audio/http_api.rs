//! Routes, the key check and OpenAI's error shape (`{"error": {"message", "type",
//! "param", "code"}}`), shared by both endpoints. Errors never echo the key. Groq's
//! `/openai/v1/…` spelling of the same paths is served too.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::stats::Count;
use super::{speech, transcriptions, Fault, Shared};
use crate::fake_common::server::fault_status;

pub(crate) const BASE_PATH: &str = "/v1";
pub(crate) const TRANSCRIPTIONS_PATH: &str = "/v1/audio/transcriptions";
pub(crate) const SPEECH_PATH: &str = "/v1/audio/speech";
/// Where Groq serves the same API.
pub(crate) const GROQ_PREFIX: &str = "/openai";
/// OpenAI's upload limit (25 MiB); larger bodies get 413.
const MAX_UPLOAD: usize = 25 * 1024 * 1024;
/// How long a hung request waits before giving up on its own.
const HANG: Duration = Duration::from_secs(60);

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let groq_transcriptions = format!("{GROQ_PREFIX}{TRANSCRIPTIONS_PATH}");
    let groq_speech = format!("{GROQ_PREFIX}{SPEECH_PATH}");
    Router::new()
        .route(TRANSCRIPTIONS_PATH, post(transcriptions::handle))
        .route(&groq_transcriptions, post(transcriptions::handle))
        .route(SPEECH_PATH, post(speech::handle))
        .route(&groq_speech, post(speech::handle))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD))
        .with_state(shared)
}

/// Why a request is refused, in OpenAI's terms.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Invalid {
    pub message: String,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
}

impl Invalid {
    pub fn new(message: impl Into<String>, param: Option<&'static str>) -> Self {
        Self {
            message: message.into(),
            param,
            code: None,
        }
    }

    pub fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }
}

pub(crate) fn error(shared: &Shared, status: StatusCode, invalid: Invalid) -> Response {
    shared.stats.refused(invalid.message.clone());
    let body = json!({"error": {"message": invalid.message, "type": "invalid_request_error",
        "param": invalid.param, "code": invalid.code}});
    (status, Json(body)).into_response()
}

pub(crate) fn bad_request(shared: &Shared, invalid: Invalid) -> Response {
    error(shared, StatusCode::BAD_REQUEST, invalid)
}

/// The 401 refusal unless the request has `Authorization: Bearer <key>`.
pub(crate) fn refuse_unauthorized(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let invalid = match given {
        Some(key) if key == shared.cfg.api_key => return None,
        Some(_) => Invalid::new("Incorrect API key provided.", None).code("invalid_api_key"),
        None => Invalid::new(
            "You didn't provide an API key. You need to provide your API key in an \
             Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            None,
        ),
    };
    shared.stats.add(Count::AuthFailure);
    Some(error(shared, StatusCode::UNAUTHORIZED, invalid))
}

/// The faults that act before a request is read: a refusal, or a hang.
pub(crate) async fn before_request(shared: &Shared, fault: &Fault) -> Option<Response> {
    match fault {
        Fault::Refuse(status) => {
            let invalid = Invalid::new("refused by fault injection", None).code("fault");
            Some(error(shared, fault_status(*status), invalid))
        }
        Fault::Hang => {
            let mut shutdown = shared.shutdown.clone();
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(HANG) => {}
            }
            Some(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
        _ => None,
    }
}

/// The MIME type of a request, without parameters.
pub(crate) fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}
