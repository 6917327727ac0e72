//! The OpenAPI document, built from the handlers' annotations and served at
//! `/openapi.json`. A copy is committed as `turn-api/openapi.json`; a test fails when they
//! differ. Regenerate it with `cargo run -p turn-api -- --print-openapi > turn-api/openapi.json`.

use axum::response::IntoResponse;
use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, ErrorDetail};
use super::handlers::{
    CreateSession, Greeting, SessionCreated, SessionSummary, TurnAnswer, TurnRequest,
};
use super::health::Health;
use crate::sessions::TurnRecord;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "turn-api",
        description = "Turn-based voice agent for FreeSWITCH Lua IVR scripts: one HTTP call per caller turn. \
                       Answers stay under mod_curl's 64000-byte limit; audio is returned as a file path and URL."
    ),
    paths(
        super::handlers::create_session,
        super::handlers::turn,
        super::handlers::end_session,
        super::handlers::delete_session_doc,
        super::handlers::audio,
        super::health::healthz,
        super::health::metrics,
    ),
    components(schemas(
        CreateSession, Greeting, SessionCreated, TurnRequest, TurnAnswer, SessionSummary,
        TurnRecord, ErrorBody, ErrorDetail, Health
    )),
    modifiers(&Security)
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// The document as pretty JSON (what the committed copy holds).
pub fn json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

pub async fn document() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}
