//! Tenants from PostgreSQL: a database key runs its tenant's agent with the tenant's own
//! provider account, a changed prompt applies from the next turn, keys stay inside their
//! tenant and role, the request rate is enforced, and every session lands in the event log.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use uuid::Uuid;
use voice_core::db::scratch::ScratchDb;
use voice_core::db::{Db, DbError};
use voice_core::tenancy::crypto::{CredentialKey, KEY_ENV};
use voice_core::tenancy::store::{self, StoreError};

const DB_DOMAIN: &str = "db.example.com";
const OTHER_DOMAIN: &str = "other.example.com";
const PROMPT: &str = "Você é a recepção da Clínica Aurora.";
const NEW_PROMPT: &str = "Você é a recepção da Clínica Boreal.";
const DB_GREETING: &str = "Olá, Clínica Aurora, boa tarde.";

/// One key for the whole test binary (the variable is process-wide).
fn credential_key() -> CredentialKey {
    static KEY: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    KEY.get_or_init(|| std::env::set_var(KEY_ENV, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="));
    CredentialKey::from_env().expect("test credential key")
}

struct Tenant {
    id: Uuid,
    agent: Uuid,
    key: String,
}

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("test input")
}

/// A tenant whose agent answers number 4000 through Groq (the fake chat model), with the
/// tenant's own key for it; returns its ids and an API key of `role`.
async fn tenant(db: &Db, domain: &str, llm_url: &str, llm_key: &str, rate: Option<i32>) -> Tenant {
    let row = store::create_tenant(
        db,
        parse(json!({
            "domain_uuid": Uuid::new_v4(),
            "domain_name": domain,
            "requests_per_minute": rate,
        })),
    )
    .await
    .expect("tenant");
    let (agent, api_key) = db
        .with_tenant(row.id, move |tx| {
            Box::pin(async move {
                let agent = store::create_agent(
                    tx,
                    row.id,
                    parse(json!({
                        "name": "recepção",
                        "mode": "turn",
                        "prompt": PROMPT,
                        "greeting": DB_GREETING,
                        "numbers": ["4000"],
                        "settings": { "llm": ["groq"] },
                    })),
                )
                .await?;
                let (_, text) =
                    store::create_key(tx, row.id, parse(json!({ "role": "agent" }))).await?;
                Ok::<_, StoreError>((agent.id, text))
            })
        })
        .await
        .expect("agent and key");
    add_groq(
        db,
        row.id,
        json!({
            "name": "groq da clínica",
            "settings": { "url": llm_url, "model": "llama-3.3-70b-versatile" },
            "credentials": { "api_key": llm_key },
        }),
    )
    .await;
    Tenant {
        id: row.id,
        agent,
        key: api_key,
    }
}

/// A Groq account of `tenant`: `fields` of the provider, `kind` aside.
async fn add_groq(db: &Db, tenant: Uuid, mut fields: Value) {
    fields["kind"] = json!("groq");
    let key = credential_key();
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move { store::create_provider(tx, Some(&key), tenant, parse(fields)).await })
    })
    .await
    .expect("the Groq account");
}

async fn extra_key(db: &Db, tenant: Uuid, role: &str) -> String {
    let role = role.to_string();
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let (_, text) = store::create_key(tx, tenant, parse(json!({ "role": role }))).await?;
            Ok::<_, StoreError>(text)
        })
    })
    .await
    .expect("key")
}

/// A stack whose process-level Groq account is wrong: only a tenant's own account works.
async fn stack(db: &ScratchDb) -> Stack {
    credential_key(); // read by the service at start
    let extra = format!(
        "[database]\nurl = \"{}\"\n\n[providers.groq]\nurl = \"http://127.0.0.1:9/v1/chat/completions\"\napi_key = \"gsk-not-the-tenants\"\n",
        db.url
    );
    Stack::start_with(REPLY, &extra).await
}

async fn create(s: &Stack, key: &str, domain: &str, callee: &str) -> (u16, Value) {
    let r = s
        .client
        .post(s.url("/v1/sessions"))
        .bearer_auth(key)
        .json(
            &json!({"call_id": "call-db-1", "domain": domain, "caller": "1001", "callee": callee}),
        )
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn turn(s: &Stack, key: &str, session: &str) -> (u16, Value) {
    let path = s.record(&format!("{}.wav", Uuid::new_v4()), &caller_wav(8000));
    let r = s
        .client
        .post(s.url(&format!("/v1/sessions/{session}/turns")))
        .bearer_auth(key)
        .json(&json!({ "audio_path": path }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn end(s: &Stack, key: &str, session: &str) -> (u16, Value) {
    let r = s
        .client
        .post(s.url(&format!("/v1/sessions/{session}/end")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn last_system_prompt(s: &Stack) -> String {
    s.llm
        .stats()
        .accepted
        .last()
        .map(|r| r.system.clone())
        .unwrap_or_default()
}

async fn events_by_kind(db: &Db, tenant: Uuid) -> BTreeMap<String, i64> {
    db.with_tenant(tenant, |tx| {
        Box::pin(async move {
            let rows = tx
                .query("SELECT kind, count(*) FROM events GROUP BY kind", &[])
                .await?;
            Ok::<_, DbError>(
                rows.iter()
                    .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
                    .collect(),
            )
        })
    })
    .await
    .expect("events")
}

#[tokio::test]
async fn a_database_key_runs_its_tenants_agent_and_a_new_prompt_applies_at_once() {
    let scratch = ScratchDb::create(4).await.expect("scratch database");
    let s = stack(&scratch).await;
    let t = tenant(
        &scratch.db,
        DB_DOMAIN,
        &s.llm.chat_completions_url(),
        &s.llm.api_key(),
        None,
    )
    .await;

    let (status, body) = create(&s, &t.key, DB_DOMAIN, "4000").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["greeting"]["text"], DB_GREETING);
    let id = body["session_id"].as_str().unwrap().to_string();

    let (status, body) = turn(&s, &t.key, &id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reply_text"], REPLY);
    assert!(
        last_system_prompt(&s).contains(PROMPT),
        "{}",
        last_system_prompt(&s)
    );
    assert!(
        s.llm.stats().rejections.is_empty(),
        "the tenant's own Groq key was used"
    );

    // The prompt changes in the database; the next turn uses it, without a restart.
    let agent = t.agent;
    let changed = scratch
        .db
        .with_tenant(t.id, move |tx| {
            Box::pin(async move {
                store::update_agent(tx, agent, parse(json!({ "prompt": NEW_PROMPT }))).await
            })
        })
        .await
        .expect("update the prompt");
    assert_eq!(changed.prompt, NEW_PROMPT);
    let committed = Instant::now();
    let mut applied = None;
    while committed.elapsed() < Duration::from_secs(3) {
        let (status, body) = turn(&s, &t.key, &id).await;
        assert_eq!(status, 200, "{body}");
        if last_system_prompt(&s).contains(NEW_PROMPT) {
            applied = Some(committed.elapsed());
            break;
        }
    }
    let applied = applied.expect("the new prompt was never used");
    eprintln!("new prompt applied {applied:?} after its commit");
    assert!(
        applied < Duration::from_secs(1),
        "applied after {applied:?}"
    );

    let (status, body) = end(&s, &t.key, &id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["domain"], DB_DOMAIN);
    s.state.tenancy.as_ref().unwrap().events.flush().await;
    let events = events_by_kind(&scratch.db, t.id).await;
    assert_eq!(events.get("call.started"), Some(&1), "{events:?}");
    assert!(
        events.get("turn.completed").copied().unwrap_or(0) >= 2,
        "{events:?}"
    );
    assert_eq!(events.get("call.ended"), Some(&1), "{events:?}");
}

#[tokio::test]
async fn keys_stay_inside_their_tenant_and_role() {
    let scratch = ScratchDb::create(4).await.expect("scratch database");
    let s = stack(&scratch).await;
    let (url, llm_key) = (s.llm.chat_completions_url(), s.llm.api_key());
    let a = tenant(&scratch.db, DB_DOMAIN, &url, &llm_key, None).await;
    let b = tenant(&scratch.db, OTHER_DOMAIN, &url, &llm_key, None).await;

    // B's key cannot open a session in A's domain, nor touch A's session.
    let (status, body) = create(&s, &b.key, DB_DOMAIN, "4000").await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = create(&s, &a.key, DB_DOMAIN, "4000").await;
    assert_eq!(status, 201, "{body}");
    let id = body["session_id"].as_str().unwrap().to_string();
    assert_eq!(turn(&s, &b.key, &id).await.0, 403);
    assert_eq!(end(&s, &b.key, &id).await.0, 403);
    // Nor can a TOML tenant's key.
    assert_eq!(turn(&s, KEY_A, &id).await.0, 403);

    // A viewer may not run calls; a revoked key is unknown.
    let viewer = extra_key(&scratch.db, a.id, "viewer").await;
    let (status, body) = create(&s, &viewer, DB_DOMAIN, "4000").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("viewer"),
        "{body}"
    );
    let spare = extra_key(&scratch.db, a.id, "agent").await;
    let spare_id = {
        let prefix: String = spare.split('_').nth(1).unwrap_or("").to_string();
        let tenant = a.id;
        scratch
            .db
            .with_tenant(tenant, move |tx| {
                Box::pin(async move {
                    let row = tx
                        .query_one("SELECT id FROM api_keys WHERE prefix = $1", &[&prefix])
                        .await?;
                    let id: Uuid = row.get(0);
                    store::revoke_key(tx, id).await?;
                    Ok::<_, StoreError>(id)
                })
            })
            .await
            .expect("revoke")
    };
    assert!(!spare_id.is_nil());
    assert_eq!(create(&s, &spare, DB_DOMAIN, "4000").await.0, 401);

    // A disabled tenant is refused; a number no agent claims, with no default, is a 422.
    let (status, body) = create(&s, &a.key, DB_DOMAIN, "9999").await;
    assert_eq!(status, 201, "the only agent answers any number: {body}");
    store::update_tenant(&scratch.db, b.id, parse(json!({ "enabled": false })))
        .await
        .expect("disable B");
    let start = Instant::now();
    loop {
        let (status, body) = create(&s, &b.key, OTHER_DOMAIN, "4000").await;
        if status == 403 {
            assert_eq!(body["error"]["code"], "tenant_disabled", "{body}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "still enabled: {body}"
        );
    }
}

#[tokio::test]
async fn a_tenant_over_its_request_rate_gets_429_with_retry_after() {
    let scratch = ScratchDb::create(4).await.expect("scratch database");
    let s = stack(&scratch).await;
    let t = tenant(
        &scratch.db,
        DB_DOMAIN,
        &s.llm.chat_completions_url(),
        &s.llm.api_key(),
        Some(2),
    )
    .await;
    for _ in 0..2 {
        assert_eq!(create(&s, &t.key, DB_DOMAIN, "4000").await.0, 201);
    }
    let r = s
        .client
        .post(s.url("/v1/sessions"))
        .bearer_auth(&t.key)
        .json(&json!({"call_id": "c", "domain": DB_DOMAIN, "callee": "4000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "retry after {wait} s");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another tenant is not slowed down by it.
    let other = tenant(
        &scratch.db,
        OTHER_DOMAIN,
        &s.llm.chat_completions_url(),
        &s.llm.api_key(),
        Some(2),
    )
    .await;
    assert_eq!(create(&s, &other.key, OTHER_DOMAIN, "4000").await.0, 201);
}

#[tokio::test]
async fn a_second_account_of_the_same_kind_takes_over_when_the_first_fails() {
    let scratch = ScratchDb::create(4).await.expect("scratch database");
    let s = stack(&scratch).await;
    // The working Groq account (priority 100, the default)…
    let t = tenant(
        &scratch.db,
        DB_DOMAIN,
        &s.llm.chat_completions_url(),
        &s.llm.api_key(),
        None,
    )
    .await;
    // … and, first by priority, one whose address answers nothing.
    add_groq(
        &scratch.db,
        t.id,
        json!({
            "name": "groq principal",
            "priority": 1,
            "settings": { "url": "http://127.0.0.1:9/v1/chat/completions" },
            "credentials": { "api_key": "gsk-first-but-down" },
        }),
    )
    .await;

    let (status, body) = create(&s, &t.key, DB_DOMAIN, "4000").await;
    assert_eq!(status, 201, "{body}");
    let id = body["session_id"].as_str().unwrap().to_string();
    let (status, body) = turn(&s, &t.key, &id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reply_text"], REPLY, "the second account answered");
    assert!(
        last_system_prompt(&s).contains(PROMPT),
        "{}",
        last_system_prompt(&s)
    );
    assert!(s.llm.stats().rejections.is_empty(), "with its own key");
}
