//! Error answers: a status and `{"error": {"code", "message"}}` that says what is wrong (the
//! turn-api's shape). Messages never carry secrets: database failures are logged here and
//! answered without their details.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use voice_core::db::DbError;
use voice_core::tenancy::crypto::CryptoError;
use voice_core::tenancy::store::StoreError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

/// The error body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `unauthorized`, `forbidden`, `not_found`, `bad_json`,
    /// `invalid_field`, `missing_field`, `unknown_field`, `invalid`, `conflict`,
    /// `body_too_large`, `rate_limited`, `credentials_unavailable`, `database_unavailable`, …
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
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("this tenant's requests per minute are used up: retry in {retry_after_secs} s"),
        );
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// A store error about `what` ("agent 1f0c…", "tenant …"), which names the missing row.
    pub fn store(e: StoreError, what: impl FnOnce() -> String) -> Self {
        match e {
            StoreError::NotFound => Self::not_found(format!("no {}", what())),
            other => other.into(),
        }
    }

    /// A database failure: logged in full here, answered without its details.
    pub fn database(e: &DbError) -> Self {
        match e {
            DbError::Connect { .. } | DbError::Pool { .. } => {
                tracing::warn!(error = %e, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database does not answer; try again later",
                )
            }
            _ => {
                tracing::error!(error = %e, "database error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "database error (details are in the service log)",
                )
            }
        }
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
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found("not found"),
            StoreError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            StoreError::Invalid(m) => Self::unprocessable("invalid", m),
            StoreError::Crypto(e) => e.into(),
            StoreError::Db(e) => Self::database(&e),
        }
    }
}

impl From<CryptoError> for ApiError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::NoKey => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "credentials_unavailable",
                "credentials cannot be stored: VOICE_CREDENTIALS_KEY is not set",
            ),
            // Names and sizes only (crypto's messages never hold values).
            CryptoError::Invalid(m) => Self::unprocessable("invalid_credentials", m),
            CryptoError::BadKey | CryptoError::Open => {
                tracing::error!(error = %e, "provider credentials");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "credentials_unreadable",
                    "stored credentials cannot be opened with the configured key",
                )
            }
        }
    }
}
