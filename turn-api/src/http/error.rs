//! Error answers: a status and `{"error": {"code", "message"}}` that says what is wrong.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::turns::TurnsError;
use crate::sessions::StoreError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Sent as `Retry-After` (429 answers).
    pub retry_after_secs: Option<u64>,
}

/// The error body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `bad_json`, `missing_field`, `unauthorized`, `forbidden`,
    /// `session_not_found`, `audio_path_not_allowed`, `unreadable_audio`, …
    pub code: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// 429: the tenant's requests per minute are spent; try again after `wait`.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("this tenant's requests per minute are spent: retry in {secs} s"),
        );
        e.retry_after_secs = Some(secs);
        e
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "session_not_found",
            format!(
                "no session {:?} (ended, expired or never created)",
                clip(id)
            ),
        )
    }
}

/// At most 80 characters of a client's input, for messages.
pub fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", m)
            }
            StoreError::Corrupt(m) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store_corrupt", m)
            }
        }
    }
}

impl From<TurnsError> for ApiError {
    fn from(e: TurnsError) -> Self {
        match e {
            TurnsError::BadAudio(m) => ApiError::bad_request("unreadable_audio", m),
            TurnsError::Provider(m) => ApiError::new(StatusCode::BAD_GATEWAY, "provider_failed", m),
            TurnsError::Unavailable(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "providers_unavailable", m)
            }
            TurnsError::State(m) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "conversation_state", m)
            }
        }
    }
}
