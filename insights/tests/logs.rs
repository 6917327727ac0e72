//! Secrets never reach call-insights' logs: provider credentials written through the admin
//! API (accepted, refused, malformed), API keys and the platform token, at debug level.
//! Its own binary, because it installs the process's log subscriber.

mod common;

use common::{Stack, PLATFORM_TOKEN};
use reqwest::StatusCode;
use serde_json::json;

const SECRET: &str = "sk-live-LOGGED-NOWHERE-9f31";

#[tokio::test]
async fn credentials_keys_and_tokens_stay_out_of_the_logs() {
    let capture = voice_sim::log_capture::capture();

    let s = Stack::start().await;
    let t = s.tenant("logs.example.com").await;
    let admin = s.key(&t, "admin").await;
    let base = format!("/v1/tenants/{t}/providers");

    let created = s
        .post(
            &base,
            &admin,
            &json!({"kind": "openai", "name": "main", "credentials": {"api_key": SECRET}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let item = format!("{base}/{}", created.body["id"].as_str().unwrap());
    let patched = s
        .patch(&item, &admin, &json!({"credentials": {"api_key": SECRET}}))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    // Refused writes, each with the secret somewhere in the body.
    for body in [
        json!({"kind": "openai", "name": "x", "credentials": SECRET}),
        json!({"kind": "openai", "name": "x", "credentials": {"Api-Key": SECRET}}),
        json!({"kind": "groq", "name": "x", "settings": {"api_key": SECRET}}),
        json!({"kind": "telepathy", "name": SECRET}),
    ] {
        let r = s.post(&base, &admin, &body).await;
        assert!(r.status.is_client_error(), "{body}: {}", r.text);
    }
    let r = s
        .client
        .post(s.url(&base))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(format!("{{\"credentials\": {{\"api_key\": \"{SECRET}\""))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    // A wrong token that is almost the platform's, and the platform's on a tenant route.
    let wrong = format!("{PLATFORM_TOKEN}x");
    assert_eq!(s.get(&base, &wrong).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.get(&base, PLATFORM_TOKEN).await.status, StatusCode::OK);

    let logs = capture.text();
    // The capture works, down to every statement's parameters (what the database client
    // logs at debug): what was written went in sealed or hashed.
    assert!(
        logs.contains("tokio_postgres::query") && logs.contains("with parameters"),
        "the statements were not logged"
    );
    for (what, secret) in [
        ("the provider key", SECRET),
        ("its distinctive part", "LOGGED-NOWHERE"),
        ("the admin API key", admin.as_str()),
        ("the platform token", PLATFORM_TOKEN),
    ] {
        assert!(!logs.contains(secret), "{what} is in the logs:\n{logs}");
    }
}
