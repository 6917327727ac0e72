//! The web panel for people: calls with filters, a call's detail (player, transcript synced
//! to it, insights, scorecard, CRM), and the calls in progress on the bridge (SSE).
//! Server-rendered HTML, one stylesheet and one small script, no build step; pt-BR by
//! default, English with `?lang=en` (see [`i18n`]).
//!
//! - `GET /panel` → `/panel/calls`
//! - `GET /panel/login`, `POST /panel/login`, `POST /panel/logout` ([`auth`])
//! - `GET /panel/calls`, `GET /panel/calls/{id}` ([`calls`])
//! - `GET /panel/live`, `GET /panel/live/events` ([`live`])
//! - `GET /panel/assets/panel.css`, `GET /panel/assets/panel.js`
//!
//! Every panel response carries a strict Content-Security-Policy: scripts and styles from
//! the service only, so no inline script or style anywhere.

pub mod auth;
pub mod calls;
pub mod html;
pub mod i18n;
pub mod live;
pub mod render;

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

const CSP: &str = "default-src 'self'; media-src 'self'; style-src 'self'; script-src 'self'";
const CSS: &str = include_str!("assets/panel.css");
const JS: &str = include_str!("assets/panel.js");
/// Assets change only with a new build; an hour keeps a deploy visible soon enough.
const ASSET_CACHE: &str = "public, max-age=3600";

/// The panel's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/panel", get(|| async { Redirect::to("/panel/calls") }))
        .route("/panel/", get(|| async { Redirect::to("/panel/calls") }))
        .route("/panel/login", get(auth::login_form).post(auth::login))
        .route("/panel/logout", post(auth::logout))
        .route("/panel/calls", get(calls::list))
        .route("/panel/calls/{id}", get(calls::detail))
        .route("/panel/live", get(live::page))
        .route("/panel/live/events", get(live::events))
        .route("/panel/assets/panel.css", get(css))
        .route("/panel/assets/panel.js", get(js))
        .layer(axum::middleware::map_response(secure_headers))
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, ASSET_CACHE),
        ],
        body,
    )
        .into_response()
}

/// The CSP and its companions, on every panel response.
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}
