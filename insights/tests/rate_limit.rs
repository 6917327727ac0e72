//! Requests per minute per tenant: 429 with Retry-After once a tenant's bucket is empty,
//! other tenants and the platform token untouched.

mod common;

use common::{Stack, PLATFORM_TOKEN};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_tenants_own_rate_is_enforced_with_retry_after() {
    let s = Stack::start().await;
    let limited = s
        .post(
            "/v1/tenants",
            PLATFORM_TOKEN,
            &json!({"domain_uuid": uuid::Uuid::new_v4(), "domain_name": "slow.example.com",
                    "requests_per_minute": 3}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = s.tenant("free.example.com").await;
    let key = s.key(&limited, "viewer").await;
    let second_key = s.key(&limited, "admin").await;
    let other_key = s.key(&other, "viewer").await;
    let path = format!("/v1/tenants/{limited}/agents");
    for n in 0..3 {
        let a = s.get(&path, &key).await;
        assert_eq!(a.status, StatusCode::OK, "request {n}: {}", a.text);
    }
    let refused = s.get(&path, &key).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.code(), "rate_limited");
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // 3 a minute: a token every 20 s.
    assert!((1..=20).contains(&retry), "{retry}");
    // The bucket is the tenant's, not the key's.
    assert_eq!(
        s.get(&path, &second_key).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Other tenants and the platform are not limited by it.
    for _ in 0..5 {
        assert_eq!(
            s.get(&format!("/v1/tenants/{other}/agents"), &other_key)
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(s.get(&path, PLATFORM_TOKEN).await.status, StatusCode::OK);
    }
    let metrics = s.get("/metrics", "").await;
    assert!(
        metrics.text.contains("insights_rate_limited_total 2"),
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn tenants_without_a_rate_get_the_service_default() {
    let s = Stack::start_with(
        "[limits]\nrequests_per_minute = 2",
        Some(common::test_key()),
    )
    .await;
    let t = s.tenant("default.example.com").await;
    let key = s.key(&t, "viewer").await;
    let path = format!("/v1/tenants/{t}");
    assert_eq!(s.get(&path, &key).await.status, StatusCode::OK);
    assert_eq!(s.get(&path, &key).await.status, StatusCode::OK);
    let refused = s.get(&path, &key).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
}
