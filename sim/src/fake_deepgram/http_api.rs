//! The HTTP side of `/v1/listen`: the live upgrade (GET) and the pre-recorded upload
//! (POST) on one port, each with its checks. Refusals carry a Deepgram-style
//! `{"err_code", "err_msg", "request_id"}` body and a `dg-error` header (shape
//! unconfirmed) and never echo the key.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::stats::Count;
use super::stream::{ListenStream, Tuning};
use super::{connection, params, prerecorded, Fault, Shared};
use crate::fake_common::server::fault_status;

pub(crate) const LISTEN_PATH: &str = "/v1/listen";
/// Largest pre-recorded upload (about 50 minutes of 16 kHz mono).
const MAX_UPLOAD: usize = 100 * 1024 * 1024;
/// How long a hung request waits before giving up on its own.
const HANG: Duration = Duration::from_secs(60);

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(LISTEN_PATH, get(live).post(prerecorded::upload))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD))
        .with_state(shared)
}

pub(crate) fn refuse(shared: &Shared, status: StatusCode, code: &str, message: &str) -> Response {
    shared.stats.add(Count::Refused);
    let body = json!({"err_code": code, "err_msg": message,
        "request_id": uuid::Uuid::new_v4().to_string()});
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(message) {
        response.headers_mut().insert("dg-error", value);
    }
    response
}

pub(crate) fn bad_request(shared: &Shared, message: &str) -> Response {
    refuse(shared, StatusCode::BAD_REQUEST, "Bad Request", message)
}

/// The `err_code` sent with `status`. `INVALID_AUTH` and `Bad Request` are what
/// Deepgram sends; the others are the fake's guess [UNCONFIRMED].
fn error_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "Bad Request",
        401 => "INVALID_AUTH",
        402 => "ASR_PAYMENT_REQUIRED",
        403 => "INSUFFICIENT_PERMISSIONS",
        429 => "TOO_MANY_REQUESTS",
        500..=599 => "INTERNAL_SERVER_ERROR",
        _ => "FAULT",
    }
}

/// `Authorization: Token <key>`, exactly.
fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let expected = format!("Token {}", shared.cfg.api_key);
    headers
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == expected.as_bytes())
}

/// The checks both methods share: injected faults first, then the key.
pub(crate) async fn gate(shared: &Shared, headers: &HeaderMap, fault: &Fault) -> Option<Response> {
    match fault {
        Fault::Refuse(status) => {
            let status = fault_status(*status);
            return Some(refuse(
                shared,
                status,
                error_code(status),
                "refused by fault injection",
            ));
        }
        Fault::HangUpgrade => {
            hang(shared).await;
            return Some(StatusCode::SERVICE_UNAVAILABLE.into_response());
        }
        Fault::Delay(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        _ => {}
    }
    if !authorized(shared, headers) {
        let status = StatusCode::UNAUTHORIZED;
        return Some(refuse(
            shared,
            status,
            "INVALID_AUTH",
            "Invalid credentials.",
        ));
    }
    None
}

pub(crate) async fn hang(shared: &Shared) {
    let mut shutdown = shared.shutdown.clone();
    tokio::select! {
        _ = shutdown.changed() => {}
        _ = tokio::time::sleep(HANG) => {}
    }
}

async fn live(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let fault = shared.faults.next();
    if let Some(refusal) = gate(&shared, &headers, &fault).await {
        return refusal;
    }
    let params = match params::live(&query) {
        Ok(p) => p,
        Err(message) => return bad_request(&shared, &message),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            shared.stats.add(Count::Refused);
            return rejection.into_response();
        }
    };
    shared.stats.query(query);
    let cfg = &shared.cfg;
    let tuning = Tuning {
        interim_every_ms: cfg.interim_every_ms,
        vad_threshold_rms: cfg.vad_threshold_rms,
        repeat_final_on_finalize: cfg.repeat_final_on_finalize,
        settle_ms: None,
    };
    let rate = params.sample_rate;
    let stream = ListenStream::new(params, tuning, shared.script.clone(), rate);
    ws.on_upgrade(move |socket| async move {
        let session = connection::serve(socket, shared.clone(), stream, rate, fault);
        shared.stats.sessions.during(session).await;
    })
}
