//! The committed OpenAPI document (turn-api/openapi.json) is the one the server builds and
//! serves. When the API changes, regenerate it:
//! `cargo run -p turn-api -- --print-openapi > turn-api/openapi.json`

mod common;

const COMMITTED: &str = include_str!("../openapi.json");

#[test]
fn the_committed_document_is_current() {
    let built = turn_api::http::openapi::json();
    assert!(
        built.trim() == COMMITTED.trim(),
        "turn-api/openapi.json is out of date: run \
         `cargo run -p turn-api -- --print-openapi > turn-api/openapi.json`"
    );
}

#[tokio::test]
async fn the_server_serves_the_committed_document() {
    let stack = common::Stack::start().await;
    let served: serde_json::Value = stack
        .client
        .get(stack.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let committed: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    assert_eq!(served, committed);
    for path in [
        "/v1/sessions",
        "/v1/sessions/{id}/turns",
        "/v1/sessions/{id}/end",
        "/v1/sessions/{id}",
        "/v1/audio/{file}",
        "/healthz",
        "/metrics",
    ] {
        assert!(
            committed["paths"].get(path).is_some(),
            "{path} undocumented"
        );
    }
}
