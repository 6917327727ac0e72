//! The OpenAPI document, built from the handlers' annotations and served at
//! `/openapi.json`. A copy is committed as `insights/openapi.json`; a test fails when they
//! differ. Regenerate it with
//! `cargo run -p call-insights -- --print-openapi > insights/openapi.json`.

use axum::response::IntoResponse;
use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, ErrorDetail};
use super::health::Health;
use crate::admin::docs::*;

const DESCRIPTION: &str = "\
Tenancy admin API of the voice platform: tenants (FusionPBX domains) and, per tenant, its \
agents, provider instances, knowledge documents and API keys.\n\n\
**Authentication**: `Authorization: Bearer <key>` or `X-API-Key: <key>`, with either a \
tenant's API key or the platform operator's token (`VOICE_ADMIN_TOKEN`).\n\n\
**Roles** (a tenant key acts in its own tenant only; another tenant's paths answer 404 as if \
it did not exist):\n\
- `viewer`: read the tenant, agents, provider instances (never credentials), knowledge documents, daily metrics;\n\
- `agent`: viewer, plus knowledge search;\n\
- `supervisor`: agent, plus create/change/delete agents and knowledge documents;\n\
- `admin`: supervisor, plus provider instances (credentials included) and API keys;\n\
- platform token: everything in every tenant, plus creating, listing, changing and deleting tenants.\n\
A role that may not do something gets 403 naming the roles that may.\n\n\
**Credentials** are write-only: sealed with AES-256-GCM (`VOICE_CREDENTIALS_KEY`) before they \
reach the database, never returned (only `has_credentials`), never logged. Without the key \
the service refuses them with 503 and everything else works.\n\n\
**Rate limits**: requests per minute per tenant (the tenant's `requests_per_minute`, else \
the service default); over it, 429 with `Retry-After` (seconds). Platform-token requests \
are not limited.\n\n\
**Errors**: `{\"error\": {\"code\", \"message\"}}`; 400 malformed JSON/query/path, 422 a body \
of the wrong shape or invalid values (the message names the field, never the value), 409 a \
conflict (duplicate name, number claimed by another agent), 413 body over the limit.";

#[derive(OpenApi)]
#[openapi(
    info(title = "call-insights admin API", description = DESCRIPTION),
    paths(
        crate::admin::tenants::create,
        crate::admin::tenants::list,
        crate::admin::tenants::get,
        crate::admin::tenants::update,
        crate::admin::tenants::delete,
        crate::admin::agents::list,
        crate::admin::agents::create,
        crate::admin::agents::get,
        crate::admin::agents::update,
        crate::admin::agents::delete,
        crate::admin::providers::list,
        crate::admin::providers::create,
        crate::admin::providers::get,
        crate::admin::providers::update,
        crate::admin::providers::delete,
        crate::admin::knowledge::list,
        crate::admin::knowledge::create,
        crate::admin::knowledge::search,
        crate::admin::knowledge::get,
        crate::admin::knowledge::update,
        crate::admin::knowledge::delete,
        crate::admin::api_keys::list,
        crate::admin::api_keys::create,
        crate::admin::api_keys::get,
        crate::admin::api_keys::revoke,
        crate::admin::scorecard_templates::list,
        crate::admin::scorecard_templates::create,
        crate::admin::scorecard_templates::get,
        crate::admin::scorecard_templates::update,
        crate::admin::scorecard_templates::delete,
        crate::admin::daily_metrics::daily,
        crate::intake::webhook::receive,
        crate::calls::api::list,
        crate::calls::api::detail,
        crate::calls::api::recording,
        crate::calls::api::push_crm,
        super::health::healthz,
        super::health::metrics,
    ),
    components(schemas(
        TenantDoc, NewTenantDoc, TenantPatchDoc, AgentModeDoc, AgentDoc, NewAgentDoc,
        AgentPatchDoc, ProviderDoc, NewProviderDoc, ProviderPatchDoc, DocumentDoc,
        NewDocumentDoc, DocumentPatchDoc, KnowledgeHitDoc, RoleDoc, ApiKeyDoc, NewApiKeyDoc,
        CreatedApiKeyDoc, crate::admin::daily_metrics::DailyMetricDoc,
        crate::admin::scorecard_templates::TemplateRecord,
        crate::admin::scorecard_templates::NewTemplate,
        crate::admin::scorecard_templates::TemplatePatch, crate::calls::model::TemplateItem, ErrorBody, ErrorDetail, Health,
        crate::intake::webhook::WebhookPayloadDoc, crate::intake::webhook::WebhookAccepted,
        crate::calls::query::CallPage, crate::calls::query::CallSummary,
        crate::calls::query::CallView, crate::calls::query::CallDetail,
        crate::calls::query::RecordingView, crate::calls::query::TranscriptView,
        crate::calls::query::SegmentView, crate::calls::query::InsightsView,
        crate::calls::query::ScorecardView, crate::calls::query::CrmEventView,
        crate::calls::api::PushQueued
    )),
    modifiers(&Security, &ErrorResponses),
    tags(
        (name = "tenants", description = "FusionPBX domains (platform token; a tenant's keys may read their own)"),
        (name = "agents", description = "Who answers a tenant's calls, and how"),
        (name = "providers", description = "A tenant's provider accounts and their fallback order"),
        (name = "knowledge", description = "Documents the agents' lookup_knowledge tool searches"),
        (name = "api-keys", description = "A tenant's API keys and their roles"),
        (name = "scorecard-templates", description = "What a tenant's calls are scored on"),
        (name = "metrics", description = "Daily aggregates of the tenant's event log"),
        (name = "webhooks", description = "Finished calls reported by a PBX (HMAC-signed, not API keys)"),
        (name = "calls", description = "Calls and what processing made of them (tenant of the key; platform token: ?tenant= or x-voice-domain)"),
        (name = "operations", description = "Health and metrics"),
    )
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

/// The error answers every `/v1` operation may give, added once here rather than on each.
struct ErrorResponses;

fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            let writes = [item.post.as_mut(), item.patch.as_mut()];
            for op in writes.into_iter().flatten() {
                for (status, text) in [
                    (
                        "409",
                        "Conflicts with an existing row (duplicate name, claimed number)",
                    ),
                    ("413", "Body over the size limit"),
                    ("415", "Body is not application/json"),
                    ("422", "Body of the wrong shape, or invalid values"),
                ] {
                    op.responses
                        .responses
                        .entry(status.into())
                        .or_insert_with(|| error_response(text));
                }
            }
            let all = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ];
            for op in all.into_iter().flatten() {
                for (status, text) in [
                    ("400", "Malformed JSON, query or path"),
                    ("401", "Missing, unknown, revoked or expired key"),
                    ("403", "The key's role may not do this"),
                    ("404", "No such tenant (or another tenant's) or item"),
                    ("429", "The tenant's rate limit is used up; see Retry-After"),
                    ("503", "The database does not answer, or credentials without VOICE_CREDENTIALS_KEY"),
                ] {
                    op.responses
                        .responses
                        .entry(status.into())
                        .or_insert_with(|| error_response(text));
                }
            }
        }
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
