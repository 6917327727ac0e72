//! The committed OpenAPI document (insights/openapi.json) is the one the server builds and
//! serves, documents every route, and describes the fields the API really takes and gives.
//! When the API changes, regenerate it:
//! `cargo run -p call-insights -- --print-openapi > insights/openapi.json`

mod common;

use std::collections::BTreeSet;

use common::{Stack, PLATFORM_TOKEN};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use voice_core::tenancy::store::{
    AgentPatch, DocumentPatch, NewAgent, NewApiKey, NewDocument, NewProvider, NewTenant,
    ProviderPatch, TenantPatch,
};

const COMMITTED: &str = include_str!("../openapi.json");

#[test]
fn the_committed_document_is_current() {
    let built = call_insights::http::openapi::json();
    assert!(
        built.trim() == COMMITTED.trim(),
        "insights/openapi.json is out of date: run \
         `cargo run -p call-insights -- --print-openapi > insights/openapi.json`"
    );
}

fn committed() -> Value {
    serde_json::from_str(COMMITTED).unwrap()
}

fn properties(doc: &Value, schema: &str) -> BTreeSet<String> {
    doc["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {schema} undocumented"))
        .keys()
        .cloned()
        .collect()
}

/// The fields `T` accepts, from serde's own "unknown field …, expected one of …" message.
fn accepted<T: DeserializeOwned>() -> BTreeSet<String> {
    let message = match serde_json::from_value::<T>(json!({"zz_not_a_field": 1})) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("unknown fields must be refused"),
    };
    let expected = message.split("expected").nth(1).unwrap_or("");
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

#[test]
fn request_schemas_name_the_fields_the_store_accepts() {
    let doc = committed();
    let cases = [
        ("NewTenant", accepted::<NewTenant>()),
        ("TenantPatch", accepted::<TenantPatch>()),
        ("NewAgent", accepted::<NewAgent>()),
        ("AgentPatch", accepted::<AgentPatch>()),
        ("NewProvider", accepted::<NewProvider>()),
        ("ProviderPatch", accepted::<ProviderPatch>()),
        ("NewDocument", accepted::<NewDocument>()),
        ("DocumentPatch", accepted::<DocumentPatch>()),
        ("NewApiKey", accepted::<NewApiKey>()),
    ];
    for (schema, fields) in cases {
        assert!(!fields.is_empty(), "{schema}");
        assert_eq!(properties(&doc, schema), fields, "{schema}");
    }
}

#[tokio::test]
async fn the_server_serves_the_committed_document_and_it_matches_the_answers() {
    let s = Stack::start().await;
    let served = s.get("/openapi.json", "").await.body;
    let doc = committed();
    assert_eq!(served, doc);
    for path in [
        "/v1/tenants",
        "/v1/tenants/{tenant_id}",
        "/v1/tenants/{tenant_id}/agents",
        "/v1/tenants/{tenant_id}/agents/{id}",
        "/v1/tenants/{tenant_id}/providers",
        "/v1/tenants/{tenant_id}/providers/{id}",
        "/v1/tenants/{tenant_id}/knowledge",
        "/v1/tenants/{tenant_id}/knowledge/search",
        "/v1/tenants/{tenant_id}/knowledge/{id}",
        "/v1/tenants/{tenant_id}/api-keys",
        "/v1/tenants/{tenant_id}/api-keys/{id}",
        "/v1/tenants/{tenant_id}/metrics/daily",
        "/healthz",
        "/metrics",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} undocumented");
    }

    // Each answer's fields are the documented ones.
    let keys = |v: &Value| -> BTreeSet<String> {
        v.as_object()
            .unwrap_or_else(|| panic!("not an object: {v}"))
            .keys()
            .cloned()
            .collect()
    };
    let t = s.tenant("doc.example.com").await;
    let tenant = s
        .get(&format!("/v1/tenants/{t}"), PLATFORM_TOKEN)
        .await
        .body;
    assert_eq!(keys(&tenant), properties(&doc, "Tenant"));
    let agent = s
        .post(
            &format!("/v1/tenants/{t}/agents"),
            PLATFORM_TOKEN,
            &json!({"name": "a"}),
        )
        .await
        .body;
    assert_eq!(keys(&agent), properties(&doc, "Agent"));
    let provider = s
        .post(
            &format!("/v1/tenants/{t}/providers"),
            PLATFORM_TOKEN,
            &json!({"kind": "openai", "name": "p"}),
        )
        .await
        .body;
    assert_eq!(keys(&provider), properties(&doc, "ProviderInstance"));
    let document = s
        .post(
            &format!("/v1/tenants/{t}/knowledge"),
            PLATFORM_TOKEN,
            &json!({"title": "Horário", "body": "Das oito às seis."}),
        )
        .await
        .body;
    assert_eq!(keys(&document), properties(&doc, "KnowledgeDocument"));
    let hits = s
        .get(
            &format!("/v1/tenants/{t}/knowledge/search?q=horario"),
            PLATFORM_TOKEN,
        )
        .await
        .body;
    assert_eq!(keys(&hits[0]), properties(&doc, "KnowledgeHit"));
    let created = s
        .post(
            &format!("/v1/tenants/{t}/api-keys"),
            PLATFORM_TOKEN,
            &json!({"role": "viewer"}),
        )
        .await
        .body;
    assert_eq!(keys(&created), properties(&doc, "CreatedApiKey"));
    assert_eq!(keys(&created["api_key"]), properties(&doc, "ApiKey"));
    let health = s.get("/healthz", "").await.body;
    assert_eq!(keys(&health), properties(&doc, "Health"));
    let error = s.get("/v1/tenants", "").await.body;
    assert_eq!(keys(&error["error"]), properties(&doc, "ErrorDetail"));
}
