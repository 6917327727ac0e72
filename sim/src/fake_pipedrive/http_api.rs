//! Routes and what every request goes through: injected faults, the token check, the
//! JSON body, Pipedrive's envelopes, the rate-limit headers, and recording what came in.
//!
//! Envelopes [SDK `BaseResponse`]: `{"success": true, "data": …}` (plus
//! `additional_data` where the endpoint has it). Errors: `{"success": false, "error",
//! "error_info", "errorCode"}` [UNCONFIRMED shape, providers.md §8]. Rate-limit headers
//! `x-ratelimit-limit`, `x-ratelimit-remaining`, `x-ratelimit-reset` on every answer,
//! `x-daily-requests-left` on writes, `Retry-After` on 429 [DOC
//! pipedrive.readme.io/docs/core-api-concepts-rate-limiting].

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::stats::{Count, ReceivedRequest, TokenIn};
use super::{activities, notes, persons, Fault, Shared};
use crate::fake_common::server::fault_status;

pub(crate) const PERSONS_SEARCH_V2: &str = "/api/v2/persons/search";
pub(crate) const PERSONS_SEARCH_V1: &str = "/v1/persons/search";
pub(crate) const NOTES_V1: &str = "/v1/notes";
pub(crate) const ACTIVITIES_V2: &str = "/api/v2/activities";
/// Pipedrive's pointer to its docs in every error.
const ERROR_INFO: &str = "Please check developers.pipedrive.com for more information about \
                          Pipedrive API.";
/// A window of the Advanced plan: 40 requests per 2 s.
const RATE_LIMIT: u32 = 40;
const RATE_WINDOW_S: u64 = 2;
/// How long a hung request waits before giving up on its own.
const HANG: Duration = Duration::from_secs(60);
const MAX_BODY: usize = 1024 * 1024;

/// What a handler reads of a request.
pub(crate) struct ApiRequest {
    pub query: BTreeMap<String, String>,
    /// The JSON body of a POST.
    pub body: Value,
}

/// A handler's success: the status and `data` (and `additional_data`, when the
/// endpoint has it).
pub(crate) struct Answer {
    pub status: StatusCode,
    pub data: Value,
    pub additional_data: Option<Value>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

type Handler = fn(&Shared, &ApiRequest) -> Result<Answer, ApiError>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(PERSONS_SEARCH_V2, get(endpoint(persons::search_v2)))
        .route(PERSONS_SEARCH_V1, get(endpoint(persons::search_v1)))
        .route(NOTES_V1, post(endpoint(notes::add)))
        .route(ACTIVITIES_V2, post(endpoint(activities::add)))
        .fallback(unknown_path)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

/// What an endpoint's axum handler returns.
type Answering = Pin<Box<dyn Future<Output = Response> + Send>>;

/// The axum handler running `handler` behind the shared checks.
fn endpoint(
    handler: Handler,
) -> impl Fn(State<Arc<Shared>>, Request) -> Answering + Clone + Send + Sync + 'static {
    move |State(shared), request| Box::pin(serve(shared, request, handler))
}

async fn unknown_path(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let error = ApiError::not_found(format!("Unknown method {}", uri.path()));
    refusal(&shared, &error)
}

async fn serve(shared: Arc<Shared>, request: Request, handler: Handler) -> Response {
    let (parts, body) = request.into_parts();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    let Ok(Query(mut query)) = Query::<BTreeMap<String, String>>::try_from_uri(&uri) else {
        return refusal(&shared, &ApiError::bad("the query string does not parse"));
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return refusal(
            &shared,
            &ApiError::bad("the body is too large or cut short"),
        );
    };
    let token_in = token_in(&headers, &query);
    let token = match token_in {
        TokenIn::Header => header(&headers, "x-api-token").map(str::to_string),
        TokenIn::Query => query.get("api_token").cloned(),
        TokenIn::Missing => None,
    };
    // The token is never kept, not even in what the tests read.
    query.remove("api_token");
    let mut record = ReceivedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query,
        token_in,
        body: serde_json::from_slice(&body).ok(),
        status: 0,
    };
    let fault = shared.faults.next();
    if let Some(response) = injected(&shared, &fault, &mut record).await {
        return response;
    }
    let outcome = match token {
        Some(t) if t == shared.cfg.api_token => {
            handle(&shared, &method, &headers, &record, handler)
        }
        _ => {
            shared.stats.add(Count::AuthFailure);
            Err(ApiError {
                status: StatusCode::UNAUTHORIZED,
                message: "unauthorized access".into(),
            })
        }
    };
    if shared.cfg.response_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(shared.cfg.response_delay_ms)).await;
    }
    let mut response = match outcome {
        Ok(answer) => success(answer),
        Err(error) => refusal(&shared, &error),
    };
    rate_headers(&mut response, method == Method::POST, RATE_WINDOW_S);
    record.status = response.status().as_u16();
    shared.stats.request(record);
    response
}

/// What an injected fault answers, if it answers.
async fn injected(
    shared: &Shared,
    fault: &Fault,
    record: &mut ReceivedRequest,
) -> Option<Response> {
    let (status, retry_after_s) = match fault {
        Fault::None => return None,
        Fault::Delay(ms) => {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            return None;
        }
        Fault::Hang => {
            shared.stats.request(record.clone());
            let mut shutdown = shared.shutdown.clone();
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(HANG) => {}
            }
            return Some(StatusCode::SERVICE_UNAVAILABLE.into_response());
        }
        Fault::Refuse(status) => (fault_status(*status), RATE_WINDOW_S),
        Fault::RateLimited { retry_after_s } => (StatusCode::TOO_MANY_REQUESTS, *retry_after_s),
    };
    let message = match status {
        StatusCode::TOO_MANY_REQUESTS => "Request over limit",
        s if s.is_server_error() => "Internal server error",
        _ => "refused by fault injection",
    };
    let error = ApiError {
        status,
        message: message.into(),
    };
    let mut response = refusal(shared, &error);
    rate_headers(&mut response, record.method == "POST", retry_after_s);
    if status == StatusCode::TOO_MANY_REQUESTS {
        set_header(&mut response, "retry-after", retry_after_s.to_string());
        set_header(&mut response, "x-ratelimit-remaining", "0".into());
    }
    record.status = status.as_u16();
    shared.stats.request(record.clone());
    Some(response)
}

/// The checks after the token: a POST must carry a JSON object.
fn handle(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    record: &ReceivedRequest,
    handler: Handler,
) -> Result<Answer, ApiError> {
    let body = if *method == Method::POST {
        let mime = header(headers, "content-type")
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .unwrap_or("");
        if mime != "application/json" {
            return Err(ApiError::bad(format!(
                "this fake takes application/json bodies, not {mime:?}"
            )));
        }
        match &record.body {
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => return Err(ApiError::bad("the body must be a JSON object")),
            None => return Err(ApiError::bad("the body is not valid JSON")),
        }
    } else {
        Value::Null
    };
    let request = ApiRequest {
        query: record.query.clone(),
        body,
    };
    handler(shared, &request)
}

/// Where the request carries its token; the header wins when both are there.
fn token_in(headers: &HeaderMap, query: &BTreeMap<String, String>) -> TokenIn {
    if headers.contains_key("x-api-token") {
        TokenIn::Header
    } else if query.contains_key("api_token") {
        TokenIn::Query
    } else {
        TokenIn::Missing
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn success(answer: Answer) -> Response {
    let mut body = json!({"success": true, "data": answer.data});
    if let (Some(extra), Some(obj)) = (answer.additional_data, body.as_object_mut()) {
        obj.insert("additional_data".into(), extra);
    }
    (answer.status, Json(body)).into_response()
}

fn refusal(shared: &Shared, error: &ApiError) -> Response {
    shared.stats.refused(error.message.clone());
    let body = json!({"success": false, "error": error.message, "error_info": ERROR_INFO,
        "errorCode": error.status.as_u16(), "data": null, "additional_data": null});
    (error.status, Json(body)).into_response()
}

fn rate_headers(response: &mut Response, write: bool, reset_s: u64) {
    set_header(response, "x-ratelimit-limit", RATE_LIMIT.to_string());
    set_header(
        response,
        "x-ratelimit-remaining",
        (RATE_LIMIT - 1).to_string(),
    );
    set_header(response, "x-ratelimit-reset", reset_s.to_string());
    if write {
        set_header(response, "x-daily-requests-left", "9999".into());
    }
}

fn set_header(response: &mut Response, name: &'static str, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(name, value);
    }
}
