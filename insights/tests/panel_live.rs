//! The panel's live view over HTTP (the browser test drives it in Chromium): each tenant
//! sees only its own calls in progress, on the page and in its SSE stream, and with
//! `HASH_PHONE_NUMBERS` the numbers the bridge reported in clear are shown hashed, as the
//! calls list stores them.

mod common;

use call_insights::config::InsightsConfig;
use call_insights::privacy::hash_number;
use common::{test_key, Stack};
use futures_util::StreamExt;
use serde_json::json;
use uuid::Uuid;
use voice_core::config::Secret;
use voice_core::db::DbError;

const HASH_KEY: &str = "phone-hash-key-for-the-live-view-0123";
const CALLER_A: &str = "+5511944443333";
const CALLER_B: &str = "+5521988887777";

async fn stack(hash: bool) -> Stack {
    let mut config = InsightsConfig::from_toml("").unwrap();
    config.privacy.hash_phone_numbers = hash;
    config.privacy.phone_hash_key = Secret::new(HASH_KEY);
    Stack::start_config(config, Some(test_key())).await
}

/// A bridge call in progress in `tenant`, as the bridge's event log has it.
async fn live_call(s: &Stack, tenant: &str, call: &str, caller: &str) {
    let tenant: Uuid = tenant.parse().unwrap();
    let (call, data) = (
        call.to_string(),
        json!({"caller": caller, "callee": "1000"}),
    );
    s.scratch
        .db
        .with_tenant(tenant, move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO events (tenant_id, call_id, kind, data)
                     VALUES ($1, $2, 'call.started', $3)",
                    &[&tenant, &call, &data],
                )
                .await?;
                Ok::<_, DbError>(())
            })
        })
        .await
        .unwrap();
}

/// The panel cookie of a viewer key of `tenant`.
async fn login(s: &Stack, tenant: &str) -> String {
    let key = s.key(tenant, "viewer").await;
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(s.url("/panel/login"))
        .form(&[("key", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

async fn page(s: &Stack, cookie: &str) -> String {
    let r = s
        .client
        .get(s.url("/panel/live"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The first event of the live SSE stream.
async fn first_event(s: &Stack, cookie: &str) -> String {
    let r = s
        .client
        .get(s.url("/panel/live/events"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = r.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream stays open")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

#[tokio::test]
async fn each_tenant_sees_only_its_own_calls_in_progress() {
    let s = stack(false).await;
    let a = s.tenant("live-a.example.com").await;
    let b = s.tenant("live-b.example.com").await;
    live_call(&s, &a, "a-live-1", CALLER_A).await;
    live_call(&s, &b, "b-live-1", CALLER_B).await;
    let (cookie_a, cookie_b) = (login(&s, &a).await, login(&s, &b).await);

    for (cookie, mine, theirs) in [
        (&cookie_a, ("a-live-1", CALLER_A), ("b-live-1", CALLER_B)),
        (&cookie_b, ("b-live-1", CALLER_B), ("a-live-1", CALLER_A)),
    ] {
        for html in [page(&s, cookie).await, first_event(&s, cookie).await] {
            assert!(
                html.contains(&format!("data-call=\"{}\"", mine.0)),
                "{html}"
            );
            assert!(html.contains(mine.1), "{html}");
            assert!(!html.contains(theirs.0), "{html}");
            assert!(!html.contains(theirs.1), "{html}");
        }
    }
}

#[tokio::test]
async fn with_hashing_on_the_live_view_shows_no_phone_number() {
    let s = stack(true).await;
    let a = s.tenant("live-hash.example.com").await;
    live_call(&s, &a, "a-live-1", CALLER_A).await;
    let cookie = login(&s, &a).await;
    let hashed = hash_number(&Secret::new(HASH_KEY), CALLER_A);
    for html in [page(&s, &cookie).await, first_event(&s, &cookie).await] {
        assert!(html.contains("data-call=\"a-live-1\""), "{html}");
        assert!(!html.contains(CALLER_A), "{html}");
        assert!(!html.contains("5511944443333"), "{html}");
        assert!(html.contains(&hashed), "{html}");
    }
}
