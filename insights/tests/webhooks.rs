//! `POST /webhooks/voip` against a real call-insights on a real port and a fresh migrated
//! PostgreSQL: signatures (good, bad, missing, replayed), idempotency, both seed payloads,
//! field checks, tenant resolution, the source allowlist, consent, and tenant isolation. The
//! signatures here are computed with hmac directly, not with the service's own signer.

use std::sync::Arc;

use call_insights::config::InsightsConfig;
use call_insights::intake::signature::WebhookSecret;
use call_insights::intake::Intake;
use call_insights::state::{AppState, PlatformToken};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;
use voice_core::config::Secret;
use voice_core::db::scratch::ScratchDb;
use voice_core::db::{Db, DbError};

const SECRET: &str = "webhook-secret-for-tests-0123456789";

struct Stack {
    scratch: ScratchDb,
    base: String,
    client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct Answer {
    status: StatusCode,
    body: Value,
    text: String,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
    fn call_id(&self) -> String {
        self.body["callId"].as_str().unwrap_or("").to_string()
    }
}

/// A request to send: the body as bytes, exactly as signed.
#[derive(Clone, Default)]
struct Post {
    query: String,
    body: Vec<u8>,
    signature: Option<String>,
    timestamp: Option<String>,
    headers: Vec<(&'static str, String)>,
}

fn hmac_hex(key: &str, parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Post {
    /// `body` for `domain`, signed over the raw body.
    fn signed(domain: &str, body: &Value) -> Self {
        let bytes = serde_json::to_vec(body).unwrap();
        Self {
            query: format!("?domain={domain}"),
            signature: Some(hmac_hex(SECRET, &[&bytes])),
            body: bytes,
            ..Default::default()
        }
    }

    /// Signed as `<ts>.<body>` with `x-timestamp: ts`.
    fn signed_at(domain: &str, body: &Value, ts: i64) -> Self {
        let bytes = serde_json::to_vec(body).unwrap();
        let ts = ts.to_string();
        Self {
            query: format!("?domain={domain}"),
            signature: Some(hmac_hex(SECRET, &[ts.as_bytes(), b".", &bytes])),
            timestamp: Some(ts),
            body: bytes,
            ..Default::default()
        }
    }
}

impl Stack {
    async fn start(toml: &str) -> Self {
        Self::start_with_secret(toml, Some(SECRET)).await
    }

    async fn start_with_secret(toml: &str, secret: Option<&str>) -> Self {
        let scratch = ScratchDb::create(8)
            .await
            .expect("a scratch database (is PostgreSQL running?)");
        let config = InsightsConfig::from_toml(toml).unwrap();
        let secret = secret.map(|s| WebhookSecret::new(&Secret::new(s)).unwrap().unwrap());
        let intake = Arc::new(Intake::new(&config.webhooks, secret));
        let state = AppState::new(config, scratch.db.clone(), None, PlatformToken::none());
        let router = call_insights::http::router_with(state, intake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ =
                call_insights::http::serve_router(listener, router, std::future::pending()).await;
        });
        Self {
            scratch,
            base,
            client: reqwest::Client::new(),
            server,
        }
    }

    fn db(&self) -> &Db {
        &self.scratch.db
    }

    async fn tenant(&self, domain: &str) -> (Uuid, Uuid) {
        let domain_uuid = Uuid::new_v4();
        let id = self.db().create_tenant(domain_uuid, domain).await.unwrap();
        (id, domain_uuid)
    }

    async fn send(&self, post: &Post) -> Answer {
        let mut request = self
            .client
            .post(format!("{}/webhooks/voip{}", self.base, post.query))
            .header("content-type", "application/json")
            .body(post.body.clone());
        if let Some(sig) = &post.signature {
            request = request.header("x-signature", sig);
        }
        if let Some(ts) = &post.timestamp {
            request = request.header("x-timestamp", ts);
        }
        for (name, value) in &post.headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    /// Rows of `table` over all tenants (the test login is a superuser: no RLS).
    async fn count(&self, table: &'static str) -> i64 {
        self.db()
            .admin(move |tx| {
                Box::pin(async move {
                    let row = tx
                        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                        .await?;
                    Ok::<i64, DbError>(row.get(0))
                })
            })
            .await
            .unwrap()
    }

    async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

fn generic(call_id: &str) -> Value {
    json!({
        "event": "call.completed",
        "call_id": call_id,
        "from": "+551199999999",
        "to": "+551188888888",
        "agent_id": "agent-42",
        "duration": 523,
        "recording_url": "https://voip.example.com/rec/abc-123.wav",
        "timestamp": "2025-04-01T14:15:22Z",
        "consent": true,
        "meta": {"provider": "generic"}
    })
}

fn twilio() -> Value {
    json!({
        "event": "call.completed",
        "call_id": "CAe1644a7eed5088b159577c5802d8be38",
        "from": "+551199999999",
        "to": "+551188888888",
        "agent_id": "agent-42",
        "duration": 300,
        "recording_url": "https://api.twilio.com/2010-04-01/Accounts/ACxxx/Recordings/REyyy",
        "timestamp": "2025-04-01T14:15:22Z",
        "meta": {"accountSid": "ACxxx", "recordingSid": "REyyy"}
    })
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn a_signed_webhook_stores_the_call_and_its_job_in_one_transaction() {
    let s = Stack::start("").await;
    let (tenant, _) = s.tenant("pbx.example.com").await;
    let a = s
        .send(&Post::signed("pbx.example.com", &generic("abc-123")))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["ok"], true);
    assert_eq!(a.body["duplicate"], false);
    let call_id: Uuid = a.call_id().parse().expect("callId is a uuid");

    let (call, job) = s
        .db()
        .with_tenant(tenant, move |tx| {
            Box::pin(async move {
                let call = tx
                    .query_one(
                        "SELECT tenant_id, provider_call_id, source, from_number, to_number,
                                agent_ref, duration_sec, consent, status, recording_url,
                                meta, started_at::text, ended_at::text, xmin::text
                         FROM calls WHERE id = $1",
                        &[&call_id],
                    )
                    .await?;
                let job = tx
                    .query_one(
                        "SELECT kind, payload, enqueued_at IS NULL, xmin::text
                         FROM jobs WHERE call_id = $1",
                        &[&call_id],
                    )
                    .await?;
                Ok::<_, DbError>((call, job))
            })
        })
        .await
        .unwrap();
    assert_eq!(call.get::<_, Uuid>("tenant_id"), tenant);
    assert_eq!(call.get::<_, String>("provider_call_id"), "abc-123");
    assert_eq!(call.get::<_, String>("source"), "voip");
    assert_eq!(call.get::<_, String>("from_number"), "+551199999999");
    assert_eq!(call.get::<_, String>("to_number"), "+551188888888");
    assert_eq!(call.get::<_, String>("agent_ref"), "agent-42");
    assert_eq!(call.get::<_, Option<i32>>("duration_sec"), Some(523));
    assert_eq!(call.get::<_, Option<bool>>("consent"), Some(true));
    assert_eq!(call.get::<_, String>("status"), "received");
    assert_eq!(
        call.get::<_, Option<String>>("recording_url").as_deref(),
        Some("https://voip.example.com/rec/abc-123.wav")
    );
    assert_eq!(call.get::<_, Value>("meta"), json!({"provider": "generic"}));
    assert_eq!(
        call.get::<_, String>("ended_at"),
        "2025-04-01 14:15:22+00",
        "the event's time is the end"
    );
    assert_eq!(
        call.get::<_, String>("started_at"),
        "2025-04-01 14:06:39+00"
    );
    assert_eq!(job.get::<_, String>("kind"), "process_call");
    assert_eq!(job.get::<_, Value>("payload")["call_id"], json!(call_id));
    assert!(job.get::<_, bool>(2), "not relayed yet");
    // Written by one and the same transaction.
    assert_eq!(call.get::<_, String>("xmin"), job.get::<_, String>(3));

    // Timestamped signatures, the domain's uuid and the header form are accepted too.
    let (_, domain_uuid) = s.tenant("other.example.com").await;
    let mut post = Post::signed_at("", &generic("abc-124"), now());
    post.query = format!("?domain={domain_uuid}");
    let a = s.send(&post).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let mut post = Post::signed_at("", &generic("abc-125"), now() - 200);
    post.query = String::new();
    post.headers = vec![("x-voice-domain", "PBX.example.com".into())];
    let mut prefixed = post.clone();
    prefixed.signature = Some(format!("sha256={}", post.signature.clone().unwrap()));
    let a = s.send(&prefixed).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(s.count("calls").await, 3);
    assert_eq!(s.count("jobs").await, 3);

    let metrics = s.metrics().await;
    assert!(
        metrics.contains("insights_webhooks_received_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("insights_webhooks_accepted_total 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_missing_or_replayed_signatures_are_refused_and_write_nothing() {
    let s = Stack::start("").await;
    s.tenant("pbx.example.com").await;
    let good = Post::signed("pbx.example.com", &generic("abc-123"));

    let mut missing = good.clone();
    missing.signature = None;
    let mut wrong_key = good.clone();
    wrong_key.signature = Some(hmac_hex("another-secret-0123456789", &[&good.body]));
    let mut tampered = good.clone();
    tampered.body = serde_json::to_vec(&generic("abc-999")).unwrap();
    let mut malformed = good.clone();
    malformed.signature = Some("not-hex".into());
    // A body-only signature does not stand for a timestamped request.
    let mut unsigned_ts = good.clone();
    unsigned_ts.timestamp = Some(now().to_string());
    let replayed = Post::signed_at("pbx.example.com", &generic("abc-123"), now() - 3600);
    let future = Post::signed_at("pbx.example.com", &generic("abc-123"), now() + 3600);
    for (post, code) in [
        (&missing, "missing_signature"),
        (&wrong_key, "bad_signature"),
        (&tampered, "bad_signature"),
        (&malformed, "bad_signature"),
        (&unsigned_ts, "bad_signature"),
        (&replayed, "stale_timestamp"),
        (&future, "stale_timestamp"),
    ] {
        let a = s.send(post).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{code}: {}", a.text);
        assert_eq!(a.code(), code, "{}", a.text);
    }
    assert_eq!(s.count("calls").await, 0);
    assert_eq!(s.count("jobs").await, 0);
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("insights_webhooks_rejected_total 7"),
        "{metrics}"
    );

    // With require_timestamp, a body-only signature is not enough.
    let strict = Stack::start("[webhooks]\nrequire_timestamp = true").await;
    strict.tenant("pbx.example.com").await;
    let a = strict.send(&good).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.code(), "missing_timestamp");
    let a = strict
        .send(&Post::signed_at(
            "pbx.example.com",
            &generic("abc-123"),
            now(),
        ))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

#[tokio::test]
async fn duplicates_answer_200_with_the_same_call_and_change_nothing() {
    let s = Stack::start("").await;
    s.tenant("pbx.example.com").await;
    let first = s
        .send(&Post::signed("pbx.example.com", &generic("dup-1")))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let mut changed = generic("dup-1");
    changed["from"] = json!("+5511000000000");
    changed["consent"] = json!(false);
    let second = s.send(&Post::signed("pbx.example.com", &changed)).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    assert_eq!(second.body["duplicate"], true);
    assert_eq!(second.call_id(), first.call_id());

    // Concurrent retries of a new call: one row, one job, one id for all.
    let post = Post::signed("pbx.example.com", &generic("dup-2"));
    let answers = futures_join_all((0..8).map(|_| s.send(&post)).collect::<Vec<_>>()).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
            a.call_id()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.body["duplicate"] == false)
            .count(),
        1
    );

    assert_eq!(s.count("calls").await, 2);
    assert_eq!(s.count("jobs").await, 2);
    let (from, status): (String, String) = s
        .db()
        .admin(|tx| {
            Box::pin(async move {
                let row = tx
                    .query_one(
                        "SELECT from_number, status FROM calls WHERE provider_call_id = 'dup-1'",
                        &[],
                    )
                    .await?;
                Ok::<_, DbError>((row.get(0), row.get(1)))
            })
        })
        .await
        .unwrap();
    assert_eq!(from, "+551199999999", "the duplicate changed nothing");
    assert_eq!(status, "received");
    assert!(s
        .metrics()
        .await
        .contains("insights_webhooks_duplicate_total 8"));
}

/// Runs the futures at once (no futures crate in this package's dependencies).
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}

#[tokio::test]
async fn the_twilio_style_payload_is_accepted() {
    let s = Stack::start("").await;
    s.tenant("pbx.example.com").await;
    let a = s.send(&Post::signed("pbx.example.com", &twilio())).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let (consent, meta, duration, jobs): (Option<bool>, Value, Option<i32>, i64) = s
        .db()
        .admin(|tx| {
            Box::pin(async move {
                let row = tx
                    .query_one(
                        "SELECT c.consent, c.meta, c.duration_sec,
                                (SELECT count(*) FROM jobs j WHERE j.call_id = c.id)
                         FROM calls c
                         WHERE provider_call_id = 'CAe1644a7eed5088b159577c5802d8be38'",
                        &[],
                    )
                    .await?;
                Ok::<_, DbError>((row.get(0), row.get(1), row.get(2), row.get(3)))
            })
        })
        .await
        .unwrap();
    assert_eq!(consent, None, "not stated");
    assert_eq!(meta["recordingSid"], "REyyy");
    assert_eq!(duration, Some(300));
    assert_eq!(jobs, 1);
}

#[tokio::test]
async fn bad_payloads_get_4xx_naming_the_field_and_write_nothing() {
    let s = Stack::start("").await;
    s.tenant("pbx.example.com").await;
    let with = |field: &str, value: Value| {
        let mut body = generic("bad-1");
        body[field] = value;
        body
    };
    let cases = [
        (with("event", json!("call.exploded")), "event"),
        (with("call_id", json!("")), "call_id"),
        (with("call_id", json!("x".repeat(201))), "call_id"),
        (with("from", json!("+55 (11) 9999")), "from"),
        (with("to", json!("1".repeat(65))), "to"),
        (with("duration", json!(-3)), "duration"),
        (
            with("recording_url", json!("ftp://voip.example.com/a.wav")),
            "recording_url",
        ),
        (with("timestamp", json!("yesterday")), "timestamp"),
        (with("meta", json!("text")), "meta"),
        (with("consent", json!("yes")), "consent"),
    ];
    for (body, field) in cases {
        let a = s.send(&Post::signed("pbx.example.com", &body)).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            a.text
        );
        assert!(
            a.message().starts_with(&format!("{field}:")),
            "{field}: {}",
            a.text
        );
    }
    let mut no_call_id = generic("x");
    no_call_id.as_object_mut().unwrap().remove("call_id");
    let a = s.send(&Post::signed("pbx.example.com", &no_call_id)).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.code(), "missing_field");
    assert!(a.message().contains("call_id"), "{}", a.text);

    let mut not_json = Post::signed("pbx.example.com", &json!({}));
    not_json.body = b"{\"event\": ".to_vec();
    not_json.signature = Some(hmac_hex(SECRET, &[&not_json.body]));
    let a = s.send(&not_json).await;
    assert_eq!((a.status, a.code()), (StatusCode::BAD_REQUEST, "bad_json"));

    let mut huge = generic("big-1");
    huge["meta"] = json!({"pad": "x".repeat(70 * 1024)});
    let a = s.send(&Post::signed("pbx.example.com", &huge)).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.text);
    assert_eq!(a.code(), "body_too_large");

    let form = Post::signed("pbx.example.com", &generic("form-1"));
    let a = s
        .client
        .post(format!("{}/webhooks/voip{}", s.base, form.query))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-signature", form.signature.clone().unwrap())
        .body(form.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let mut no_domain = Post::signed("pbx.example.com", &generic("nd-1"));
    no_domain.query = String::new();
    let a = s.send(&no_domain).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "missing_domain")
    );

    assert_eq!(s.count("calls").await, 0);
    assert_eq!(s.count("jobs").await, 0);
}

#[tokio::test]
async fn an_unknown_domain_is_404() {
    let s = Stack::start("").await;
    s.tenant("pbx.example.com").await;
    let a = s
        .send(&Post::signed("nobody.example.com", &generic("abc-1")))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    assert_eq!(a.code(), "not_found");
    let a = s
        .send(&Post::signed(
            &Uuid::new_v4().to_string(),
            &generic("abc-1"),
        ))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    assert_eq!(s.count("calls").await, 0);
}

#[tokio::test]
async fn the_source_allowlist_refuses_other_addresses() {
    let refused = Stack::start("[webhooks]\nallow_from = [\"192.0.2.0/24\"]").await;
    refused.tenant("pbx.example.com").await;
    let post = Post::signed("pbx.example.com", &generic("src-1"));
    let a = refused.send(&post).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert!(a.message().contains("127.0.0.1"), "{}", a.text);
    // X-Forwarded-For is ignored unless trust_proxy is on.
    let mut forwarded = post.clone();
    forwarded.headers = vec![("x-forwarded-for", "192.0.2.9".into())];
    assert_eq!(refused.send(&forwarded).await.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.count("calls").await, 0);

    let proxied =
        Stack::start("[webhooks]\nallow_from = [\"192.0.2.0/24\"]\ntrust_proxy = true").await;
    proxied.tenant("pbx.example.com").await;
    let a = proxied.send(&forwarded).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // Only the last entry (what our proxy saw) counts.
    let mut spoofed = Post::signed("pbx.example.com", &generic("src-2"));
    spoofed.headers = vec![("x-forwarded-for", "192.0.2.9, 198.51.100.1".into())];
    assert_eq!(proxied.send(&spoofed).await.status, StatusCode::FORBIDDEN);

    let local = Stack::start("[webhooks]\nallow_from = [\"127.0.0.1\"]").await;
    local.tenant("pbx.example.com").await;
    assert_eq!(local.send(&post).await.status, StatusCode::OK);
}

#[tokio::test]
async fn without_consent_the_call_is_stored_but_never_queued() {
    let s = Stack::start("").await;
    s.tenant("pbx.example.com").await;
    let mut body = generic("nc-1");
    body["consent"] = json!(false);
    let a = s.send(&Post::signed("pbx.example.com", &body)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["duplicate"], false);
    let status: String = s
        .db()
        .admin(|tx| {
            Box::pin(async move {
                let row = tx
                    .query_one(
                        "SELECT status FROM calls WHERE provider_call_id = 'nc-1'",
                        &[],
                    )
                    .await?;
                Ok::<_, DbError>(row.get(0))
            })
        })
        .await
        .unwrap();
    assert_eq!(status, "skipped_no_consent");
    assert_eq!(s.count("jobs").await, 0);
}

#[tokio::test]
async fn tenants_share_call_ids_without_touching_each_other() {
    let s = Stack::start("").await;
    let (a_id, _) = s.tenant("a.example.com").await;
    let (b_id, _) = s.tenant("b.example.com").await;
    let a = s
        .send(&Post::signed("a.example.com", &generic("same-id")))
        .await;
    let mut b_body = generic("same-id");
    b_body["from"] = json!("+551177777777");
    let b = s.send(&Post::signed("b.example.com", &b_body)).await;
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(
        b.body["duplicate"], false,
        "another tenant's call is not a duplicate"
    );
    assert_ne!(a.call_id(), b.call_id());
    // A's retry stays in A.
    let again = s
        .send(&Post::signed("a.example.com", &generic("same-id")))
        .await;
    assert_eq!(again.call_id(), a.call_id());

    // Each tenant sees only its own call and job (row-level security).
    let b_call: Uuid = b.call_id().parse().unwrap();
    for (tenant, own, from) in [
        (a_id, a.call_id(), "+551199999999"),
        (b_id, b.call_id(), "+551177777777"),
    ] {
        let rows = s
            .db()
            .with_tenant(tenant, move |tx| {
                Box::pin(async move {
                    let calls = tx
                        .query("SELECT id::text, from_number FROM calls", &[])
                        .await?;
                    let jobs: i64 = tx.query_one("SELECT count(*) FROM jobs", &[]).await?.get(0);
                    let other: i64 = tx
                        .query_one(
                            "SELECT count(*) FROM jobs WHERE call_id = $1 AND tenant_id <> $2",
                            &[&b_call, &tenant],
                        )
                        .await?
                        .get(0);
                    Ok::<_, DbError>((
                        calls
                            .iter()
                            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                            .collect::<Vec<_>>(),
                        jobs,
                        other,
                    ))
                })
            })
            .await
            .unwrap();
        assert_eq!(rows.0, vec![(own, from.to_string())]);
        assert_eq!(rows.1, 1);
        assert_eq!(rows.2, 0);
    }
    assert_eq!(s.count("calls").await, 2);
}

#[tokio::test]
async fn without_a_secret_webhooks_are_refused() {
    let s = Stack::start_with_secret("", None).await;
    s.tenant("pbx.example.com").await;
    let a = s
        .send(&Post::signed("pbx.example.com", &generic("abc-1")))
        .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text);
    assert_eq!(a.code(), "webhooks_disabled");
    assert!(!a.text.contains(SECRET));
    assert_eq!(s.count("calls").await, 0);
}
