//! The admin API against the real PostgreSQL: CRUD of every resource, validation, API keys,
//! write-only credentials, health.

mod common;

use common::{Stack, PLATFORM_TOKEN};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn tenants_crud_with_the_platform_token() {
    let s = Stack::start().await;
    let domain_uuid = uuid::Uuid::new_v4();
    let new = json!({"domain_uuid": domain_uuid, "domain_name": "Pbx.Example.com",
                     "max_concurrent_calls": 5, "requests_per_minute": 100});
    let a = s.post("/v1/tenants", PLATFORM_TOKEN, &new).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_string();
    assert_eq!(a.body["domain_name"], "Pbx.Example.com");
    assert_eq!(a.body["timezone"], "America/Sao_Paulo");
    assert_eq!(a.body["max_concurrent_calls"], 5);

    let again = s.post("/v1/tenants", PLATFORM_TOKEN, &new).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert_eq!(again.code(), "conflict");

    s.tenant("other.example.com").await;
    let list = s.get("/v1/tenants", PLATFORM_TOKEN).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body.as_array().unwrap().len(), 2);
    let one = s.get("/v1/tenants?limit=1&offset=1", PLATFORM_TOKEN).await;
    assert_eq!(one.body.as_array().unwrap().len(), 1);
    let bad = s.get("/v1/tenants?limit=0", PLATFORM_TOKEN).await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );
    let bad = s.get("/v1/tenants?limit=abc", PLATFORM_TOKEN).await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );

    let path = format!("/v1/tenants/{id}");
    let got = s.get(&path, PLATFORM_TOKEN).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["domain_uuid"], domain_uuid.to_string());

    let patched = s
        .patch(
            &path,
            PLATFORM_TOKEN,
            &json!({"timezone": "America/Manaus", "requests_per_minute": null}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["timezone"], "America/Manaus");
    assert!(patched.body["requests_per_minute"].is_null());
    assert_eq!(
        patched.body["max_concurrent_calls"], 5,
        "absent fields are kept"
    );

    let bad = s
        .patch(&path, PLATFORM_TOKEN, &json!({"timezone": "Mars/Olympus"}))
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        "{}",
        bad.text
    );
    let bad = s
        .patch(
            &path,
            PLATFORM_TOKEN,
            &json!({"domain_uuid": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_field")
    );

    assert_eq!(
        s.delete(&path, PLATFORM_TOKEN).await.status,
        StatusCode::NO_CONTENT
    );
    let gone = s.get(&path, PLATFORM_TOKEN).await;
    assert_eq!(
        (gone.status, gone.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert!(gone.message().contains(&id), "{}", gone.message());
    assert_eq!(
        s.delete(&path, PLATFORM_TOKEN).await.status,
        StatusCode::NOT_FOUND
    );
    let a = s
        .patch(&path, PLATFORM_TOKEN, &json!({"enabled": false}))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_bodies_and_requests_get_clear_errors() {
    let s = Stack::start().await;
    let missing = s
        .post(
            "/v1/tenants",
            PLATFORM_TOKEN,
            &json!({"domain_name": "a.b"}),
        )
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "missing_field")
    );
    assert!(
        missing.message().contains("domain_uuid"),
        "{}",
        missing.message()
    );
    let wrong = s
        .post(
            "/v1/tenants",
            PLATFORM_TOKEN,
            &json!({"domain_uuid": "not-a-uuid", "domain_name": "a.b"}),
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
    );
    assert!(
        wrong.message().starts_with("domain_uuid"),
        "{}",
        wrong.message()
    );
    let bad_name = s
        .post(
            "/v1/tenants",
            PLATFORM_TOKEN,
            &json!({"domain_uuid": uuid::Uuid::new_v4(), "domain_name": "a b/c"}),
        )
        .await;
    assert_eq!(
        (bad_name.status, bad_name.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
    );
    assert!(
        bad_name.message().contains("domain_name"),
        "{}",
        bad_name.message()
    );

    let raw = |body: &'static str, content_type: &'static str| {
        s.client
            .post(s.url("/v1/tenants"))
            .bearer_auth(PLATFORM_TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let r = raw("{\"domain_name\": ", "application/json").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_json");
    let r = raw("[]", "application/json").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = raw("domain_name=x", "application/x-www-form-urlencoded")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Over the 256 KiB default.
    let tenant = s.tenant("big.example.com").await;
    let huge = json!({"body": "x".repeat(300 * 1024)});
    let a = s
        .post(
            &format!("/v1/tenants/{tenant}/knowledge"),
            PLATFORM_TOKEN,
            &huge,
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );

    let a = s.get("/v1/tenants/not-a-uuid/agents", PLATFORM_TOKEN).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "invalid_path")
    );
    let a = s.get("/v1/nothing-here", PLATFORM_TOKEN).await;
    assert_eq!((a.status, a.code()), (StatusCode::NOT_FOUND, "not_found"));

    let a = s
        .call(reqwest::Method::PUT, "/v1/tenants", PLATFORM_TOKEN, None)
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let a = s.get("/v1/tenants", "").await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let a = s
        .get("/v1/tenants", "platform-token-for-tests-012345678X")
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(!a.text.contains("012345678X"));
    let a = s
        .get(
            "/v1/tenants",
            "vk_abcdefgh_0123456789abcdef0123456789abcdef",
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // X-API-Key works as well as Bearer.
    let r = s
        .client
        .get(s.url("/v1/tenants"))
        .header("x-api-key", PLATFORM_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn agents_crud_and_validation() {
    let s = Stack::start().await;
    let t = s.tenant("agents.example.com").await;
    let admin = s.key(&t, "admin").await;
    let base = format!("/v1/tenants/{t}/agents");
    let a = s
        .post(
            &base,
            &admin,
            &json!({"name": "Recepção", "mode": "cascaded", "prompt": "Seja breve.",
            "numbers": ["3000", "+551130000000"], "is_default": true,
            "vad": {"threshold": 0.5}, "tools": [{"name": "lookup_knowledge"}]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_string();
    assert_eq!(a.body["tenant_id"], t);
    assert_eq!(a.body["mode"], "cascaded");
    assert_eq!(a.body["numbers"], json!(["3000", "+551130000000"]));
    assert_eq!(a.body["language"], "pt-BR");

    let dup = s.post(&base, &admin, &json!({"name": "Recepção"})).await;
    assert_eq!(
        (dup.status, dup.code()),
        (StatusCode::CONFLICT, "conflict"),
        "{}",
        dup.text
    );
    let claimed = s
        .post(
            &base,
            &admin,
            &json!({"name": "Vendas", "numbers": ["3000"]}),
        )
        .await;
    assert_eq!(claimed.status, StatusCode::CONFLICT, "{}", claimed.text);
    let bad_mode = s
        .post(&base, &admin, &json!({"name": "X", "mode": "psychic"}))
        .await;
    assert_eq!(
        (bad_mode.status, bad_mode.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
    );
    assert!(
        bad_mode.message().starts_with("mode:"),
        "{}",
        bad_mode.message()
    );
    let bad_vad = s
        .post(&base, &admin, &json!({"name": "X", "vad": [1]}))
        .await;
    assert_eq!(
        bad_vad.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad_vad.text
    );
    let empty = s.post(&base, &admin, &json!({"name": ""})).await;
    assert_eq!(
        empty.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        empty.text
    );
    s.post(&base, &admin, &json!({"name": "Vendas"})).await;

    let list = s.get(&base, &admin).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body.as_array().unwrap().len(), 2);

    let item = format!("{base}/{id}");
    let got = s.get(&item, &admin).await;
    assert_eq!(got.body["prompt"], "Seja breve.");
    let patched = s
        .patch(
            &item,
            &admin,
            &json!({"prompt": "Seja cordial.", "enabled": false}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["prompt"], "Seja cordial.");
    assert_eq!(patched.body["enabled"], false);
    assert_eq!(patched.body["mode"], "cascaded");
    let unknown = s.patch(&item, &admin, &json!({"promt": "x"})).await;
    assert_eq!(unknown.code(), "unknown_field");

    assert_eq!(s.delete(&item, &admin).await.status, StatusCode::NO_CONTENT);
    let gone = s.get(&item, &admin).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(gone.message().contains("agent"), "{}", gone.message());
    assert_eq!(s.delete(&item, &admin).await.status, StatusCode::NOT_FOUND);
    let none = s.patch(&item, &admin, &json!({"prompt": "x"})).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn knowledge_crud_and_portuguese_search() {
    let s = Stack::start().await;
    let t = s.tenant("kb.example.com").await;
    let admin = s.key(&t, "admin").await;
    let agent_key = s.key(&t, "agent").await;
    let agent = s
        .post(
            &format!("/v1/tenants/{t}/agents"),
            &admin,
            &json!({"name": "Suporte"}),
        )
        .await;
    let agent_id = agent.body["id"].as_str().unwrap().to_string();
    let base = format!("/v1/tenants/{t}/knowledge");
    let doc = s
        .post(
            &base,
            &admin,
            &json!({"title": "Horário de atendimento",
            "body": "Atendemos de segunda a sexta, das 8h às 18h.", "source": "site"}),
        )
        .await;
    assert_eq!(doc.status, StatusCode::CREATED, "{}", doc.text);
    let doc_id = doc.body["id"].as_str().unwrap().to_string();
    assert!(doc.body["agent_id"].is_null());
    let own = s
        .post(
            &base,
            &admin,
            &json!({"agent_id": agent_id, "title": "Preços",
            "body": "A consulta custa R$ 200 e o retorno é gratuito."}),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.text);
    let foreign_agent = s
        .post(
            &base,
            &admin,
            &json!({"agent_id": uuid::Uuid::new_v4(), "body": "x"}),
        )
        .await;
    assert_eq!(
        foreign_agent.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        foreign_agent.text
    );
    let no_body = s.post(&base, &admin, &json!({"title": "t"})).await;
    assert_eq!(no_body.code(), "missing_field");

    // Without accents, as a caller's words arrive from STT.
    let hits = s.get(&format!("{base}/search?q=horario"), &agent_key).await;
    assert_eq!(hits.status, StatusCode::OK, "{}", hits.text);
    assert_eq!(hits.body[0]["id"], doc_id);
    let tenant_wide_only = s
        .get(&format!("{base}/search?q=consulta%20preco"), &agent_key)
        .await;
    assert_eq!(
        tenant_wide_only.body.as_array().unwrap().len(),
        0,
        "{}",
        tenant_wide_only.text
    );
    let with_agent = s
        .get(
            &format!("{base}/search?q=consulta&agent_id={agent_id}"),
            &agent_key,
        )
        .await;
    assert_eq!(
        with_agent.body.as_array().unwrap().len(),
        1,
        "{}",
        with_agent.text
    );
    let bad = s.get(&format!("{base}/search?q=%20"), &agent_key).await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );
    let bad = s
        .get(&format!("{base}/search?q=x&limit=500"), &agent_key)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = s.get(&format!("{base}/search"), &agent_key).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let item = format!("{base}/{doc_id}");
    let patched = s
        .patch(
            &item,
            &admin,
            &json!({"body": "Atendemos aos sábados também."}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["title"], "Horário de atendimento");
    let hits = s.get(&format!("{base}/search?q=sabado"), &agent_key).await;
    assert_eq!(hits.body[0]["id"], doc_id, "{}", hits.text);
    let moved = s
        .patch(
            &format!("{base}/{}", own.body["id"].as_str().unwrap()),
            &admin,
            &json!({"agent_id": null}),
        )
        .await;
    assert!(moved.body["agent_id"].is_null(), "{}", moved.text);

    assert_eq!(s.get(&base, &admin).await.body.as_array().unwrap().len(), 2);
    assert_eq!(s.delete(&item, &admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&item, &admin).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn provider_credentials_are_write_only() {
    let s = Stack::start().await;
    let t = s.tenant("providers.example.com").await;
    let admin = s.key(&t, "admin").await;
    let viewer = s.key(&t, "viewer").await;
    let base = format!("/v1/tenants/{t}/providers");
    let secret = "sk-live-VERY-SECRET-VALUE-42";
    let a = s
        .post(
            &base,
            &admin,
            &json!({"kind": "openai", "name": "main", "priority": 10,
            "settings": {"chat": {"model": "gpt-4o-mini"}}, "credentials": {"api_key": secret}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert!(!a.text.contains(secret));
    assert_eq!(a.body["has_credentials"], true);
    assert!(a.body.get("credentials").is_none());
    let id = a.body["id"].as_str().unwrap().to_string();
    let item = format!("{base}/{id}");

    for (path, key) in [
        (&base, &admin),
        (&item, &admin),
        (&base, &viewer),
        (&item, &viewer),
    ] {
        let got = s.get(path, key).await;
        assert_eq!(got.status, StatusCode::OK);
        assert!(!got.text.contains(secret), "{path}: {}", got.text);
        assert!(!got.text.contains("VERY-SECRET"), "{path}");
    }

    // At rest: sealed bytes, not the text.
    let id_uuid: uuid::Uuid = id.parse().unwrap();
    let sealed: Vec<u8> = s
        .scratch
        .db
        .admin(move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_one(
                        "SELECT credentials FROM provider_instances WHERE id = $1",
                        &[&id_uuid],
                    )
                    .await?;
                Ok::<_, voice_core::db::DbError>(row.get(0))
            })
        })
        .await
        .unwrap();
    assert!(sealed.len() > 28);
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));
    // … and they open with the key (what a call uses).
    let tenant_uuid: uuid::Uuid = t.parse().unwrap();
    let opened = common::test_key()
        .open(tenant_uuid, id_uuid, &sealed)
        .unwrap();
    assert_eq!(opened.get("api_key").unwrap().expose(), secret);

    // A bad credentials shape names the field, never the value.
    let bad = s
        .post(
            &base,
            &admin,
            &json!({"kind": "openai", "name": "x", "credentials": secret}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!bad.text.contains("SECRET"), "{}", bad.text);
    let bad = s
        .post(
            &base,
            &admin,
            &json!({"kind": "openai", "name": "x", "credentials": {"Api-Key": secret}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert!(!bad.text.contains("SECRET"), "{}", bad.text);
    let bad = s
        .post(&base, &admin, &json!({"kind": "telepathy", "name": "x"}))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    let dup = s
        .post(&base, &admin, &json!({"kind": "groq", "name": "main"}))
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.text);

    let patched = s
        .patch(&item, &admin, &json!({"priority": 1, "name": "primary"}))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["has_credentials"], true, "kept when absent");
    let cleared = s.patch(&item, &admin, &json!({"credentials": null})).await;
    assert_eq!(cleared.body["has_credentials"], false, "{}", cleared.text);
    let set = s
        .patch(
            &item,
            &admin,
            &json!({"credentials": {"api_key": "sk-other"}}),
        )
        .await;
    assert_eq!(set.body["has_credentials"], true);
    assert!(!set.text.contains("sk-other"));

    assert_eq!(s.get(&base, &admin).await.body.as_array().unwrap().len(), 1);
    assert_eq!(s.delete(&item, &admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&item, &admin).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_the_credentials_key_only_credentials_are_refused() {
    let s = Stack::start_with("", None).await;
    let t = s.tenant("nokey.example.com").await;
    let base = format!("/v1/tenants/{t}/providers");
    let a = s
        .post(
            &base,
            PLATFORM_TOKEN,
            &json!({"kind": "openai", "name": "a", "credentials": {"api_key": "sk-x"}}),
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "credentials_unavailable")
    );
    assert_eq!(
        a.message(),
        "credentials cannot be stored: VOICE_CREDENTIALS_KEY is not set"
    );
    let b = s
        .post(
            &base,
            PLATFORM_TOKEN,
            &json!({"kind": "ollama", "name": "local"}),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.text);
    assert_eq!(b.body["has_credentials"], false);
    let id = b.body["id"].as_str().unwrap();
    let c = s
        .patch(
            &format!("{base}/{id}"),
            PLATFORM_TOKEN,
            &json!({"credentials": {"api_key": "sk-x"}}),
        )
        .await;
    assert_eq!(c.status, StatusCode::SERVICE_UNAVAILABLE);
    let health = s.get("/healthz", "").await;
    assert_eq!(health.body["credentials_key"], "not set");
}

#[tokio::test]
async fn api_keys_are_shown_once_and_stop_working_when_revoked() {
    let s = Stack::start().await;
    let t = s.tenant("keys.example.com").await;
    let admin = s.key(&t, "admin").await;
    let base = format!("/v1/tenants/{t}/api-keys");
    let a = s
        .post(
            &base,
            &admin,
            &json!({"name": "dashboard", "role": "viewer"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let key = a.body["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("vk_"), "{key}");
    let id = a.body["api_key"]["id"].as_str().unwrap().to_string();
    assert_eq!(a.body["api_key"]["role"], "viewer");
    assert!(key.contains(a.body["api_key"]["prefix"].as_str().unwrap()));

    let list = s.get(&base, &admin).await;
    assert_eq!(
        list.body.as_array().unwrap().len(),
        2,
        "the admin key and the new one"
    );
    assert!(!list.text.contains(&key));
    let got = s.get(&format!("{base}/{id}"), &admin).await;
    assert!(!got.text.contains(&key));
    assert!(got.body["revoked_at"].is_null());

    // The new key works, with its role.
    assert_eq!(
        s.get(&format!("/v1/tenants/{t}"), &key).await.status,
        StatusCode::OK
    );
    assert_eq!(s.get(&base, &key).await.status, StatusCode::FORBIDDEN);

    let bad = s.post(&base, &admin, &json!({"role": "owner"})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad = s.post(&base, &admin, &json!({"name": "x"})).await;
    assert_eq!(bad.code(), "missing_field");
    let expired = s
        .post(
            &base,
            &admin,
            &json!({"role": "viewer", "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert!(
        expired.status == StatusCode::UNPROCESSABLE_ENTITY
            || s.get(
                &format!("/v1/tenants/{t}"),
                expired.body["key"].as_str().unwrap_or("")
            )
            .await
            .status
                == StatusCode::UNAUTHORIZED,
        "an expired key must not work: {}",
        expired.text
    );

    let revoked = s.delete(&format!("{base}/{id}"), &admin).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert!(revoked.body["revoked_at"].is_string());
    let refused = s.get(&format!("/v1/tenants/{t}"), &key).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let none = s
        .delete(&format!("{base}/{}", uuid::Uuid::new_v4()), &admin)
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn daily_metrics_health_and_metrics() {
    let s = Stack::start().await;
    let t = s.tenant("metrics.example.com").await;
    let viewer = s.key(&t, "viewer").await;
    let base = format!("/v1/tenants/{t}/metrics/daily");
    let a = s
        .get(&format!("{base}?from=2026-01-01&to=2026-01-31"), &viewer)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body, json!([]));
    let bad = s
        .get(&format!("{base}?from=2026-02-01&to=2026-01-31"), &viewer)
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );
    let bad = s
        .get(&format!("{base}?from=2026-01-01&to=2028-01-01"), &viewer)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = s
        .get(&format!("{base}?from=yesterday&to=2026-01-01"), &viewer)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let health = s.get("/healthz", "").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["database"], "ok");
    assert_eq!(health.body["credentials_key"], "ok");
    let metrics = s.get("/metrics", "").await;
    assert!(
        metrics.text.contains("insights_requests_total"),
        "{}",
        metrics.text
    );
    assert!(
        metrics.text.contains("insights_client_errors_total 3"),
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn scorecard_templates_are_checked_and_one_is_the_default() {
    let s = Stack::start().await;
    let t = s.tenant("templates.example.com").await;
    let supervisor = s.key(&t, "supervisor").await;
    let viewer = s.key(&t, "viewer").await;
    let base = format!("/v1/tenants/{t}/scorecard-templates");
    let items = json!([
        {"item": "Cordialidade", "weight": 40, "criteria": "Foi cordial."},
        {"item": "Resolução", "weight": 60}
    ]);

    let a = s
        .post(
            &base,
            &supervisor,
            &json!({"key": "suporte", "name": "Suporte", "items": items, "is_default": true}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.body["is_default"], true);
    assert_eq!(a.body["enabled"], true);
    assert_eq!(a.body["items"][1]["item"], "Resolução");
    assert_eq!(a.body["items"][1]["criteria"], "");
    let a_id = a.body["id"].as_str().unwrap().to_string();

    // Each rule, refused with what broke it.
    for (body, says) in [
        (json!({"key": "x", "items": []}), "1 to 30 items"),
        (
            json!({"key": "x", "items": [{"item": "Dor", "weight": 5}, {"item": "dor", "weight": 5}]}),
            "repeated",
        ),
        (
            json!({"key": "x", "items": [{"item": "Dor", "weight": 0}]}),
            "weight",
        ),
        (
            json!({"key": "x", "items": [{"item": " ", "weight": 5}]}),
            "empty",
        ),
        (json!({"key": "Suporte X", "items": items}), "key"),
        (
            json!({"key": "x", "name": "n".repeat(201), "items": items}),
            "name",
        ),
    ] {
        let r = s.post(&base, &supervisor, &body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert!(r.message().contains(says), "{says}: {}", r.message());
    }
    let r = s
        .post(
            &base,
            &supervisor,
            &json!({"key": "x", "items": items, "weights": 1}),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.text);
    assert!(r.text.contains("weights"), "{}", r.text);
    let dup = s
        .post(
            &base,
            &supervisor,
            &json!({"key": "suporte", "items": items}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.text);
    let r = s
        .post(&base, &viewer, &json!({"key": "v", "items": items}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // A new default takes over; making the first default again hands it back.
    let b = s
        .post(
            &base,
            &supervisor,
            &json!({"key": "vendas", "items": items, "is_default": true}),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.text);
    let b_id = b.body["id"].as_str().unwrap().to_string();
    let defaults = |list: &serde_json::Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .filter(|t| t["is_default"] == true)
            .map(|t| t["key"].as_str().unwrap().to_string())
            .collect()
    };
    let list = s.get(&base, &viewer).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(defaults(&list.body), ["vendas"]);
    let r = s
        .patch(
            &format!("{base}/{a_id}"),
            &supervisor,
            &json!({"is_default": true, "name": "Suporte N1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["name"], "Suporte N1");
    assert_eq!(r.body["items"], a.body["items"], "items kept when absent");
    assert_eq!(defaults(&s.get(&base, &viewer).await.body), ["suporte"]);
    let r = s
        .patch(
            &format!("{base}/{a_id}"),
            &supervisor,
            &json!({"items": []}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    // Deleted: gone, and a second delete says so.
    let item = format!("{base}/{b_id}");
    assert_eq!(
        s.delete(&item, &supervisor).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.get(&item, &viewer).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.delete(&item, &supervisor).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&base, &viewer).await.body.as_array().unwrap().len(),
        1
    );
}
