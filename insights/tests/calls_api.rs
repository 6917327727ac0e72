//! The calls API against a real PostgreSQL: list filters and pagination, the seed's detail
//! shape, tenant isolation, roles, range requests on recordings and the push-crm outbox.

mod common;

use common::{Stack, PLATFORM_TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;
use voice_core::tenancy::store::StoreError;

/// A stack whose recordings live in a fresh directory.
async fn stack() -> Stack {
    let dir = std::env::temp_dir().join(format!("calls-api-{}", Uuid::new_v4()));
    let toml = format!(
        "[storage]\nbackend = \"local\"\nlocal_dir = \"{}\"\n",
        dir.display()
    );
    Stack::start_with(&toml, Some(common::test_key())).await
}

/// Runs `sql` in `tenant` (row-level security applies, as for the service).
async fn exec(s: &Stack, tenant: Uuid, sql: String) {
    s.scratch
        .db
        .with_tenant(tenant, move |tx| {
            Box::pin(async move {
                tx.batch_execute(&sql).await?;
                Ok::<_, StoreError>(())
            })
        })
        .await
        .unwrap();
}

/// A call of `tenant`; returns its id.
async fn call(
    s: &Stack,
    tenant: Uuid,
    provider_id: &str,
    agent: &str,
    status: &str,
    started: &str,
) -> Uuid {
    let id = Uuid::new_v4();
    exec(
        s,
        tenant,
        format!(
            "INSERT INTO calls (id, tenant_id, provider_call_id, from_number, to_number, agent_ref,
                                started_at, ended_at, duration_sec, consent, status)
             VALUES ('{id}', '{tenant}', '{provider_id}', '+551199999999', '+551188888888',
                     '{agent}', '{started}', '{started}'::timestamptz + interval '323 s', 323, true,
                     '{status}')"
        ),
    )
    .await;
    id
}

async fn analysed(s: &Stack, tenant: Uuid, call: Uuid, text: &str, tags: &str, score: f64) {
    exec(
        s,
        tenant,
        format!(
            "INSERT INTO transcripts (tenant_id, call_id, text, words, diarization)
                 VALUES ('{tenant}', '{call}', '{text}', '[]', '[]');
             INSERT INTO segments (tenant_id, call_id, ordinal, label, start_sec, end_sec, excerpt)
                 VALUES ('{tenant}', '{call}', 0, 'abertura', 0, 30, 'Olá');
             INSERT INTO insights (tenant_id, call_id, summary, pain_points, objections, next_actions, tags)
                 VALUES ('{tenant}', '{call}', 'Resumo executivo', '[\"preço\"]', '[\"caro\"]',
                         '[{{\"title\": \"Enviar proposta\", \"dueDate\": \"2025-04-03\"}}]', '{tags}');
             INSERT INTO scorecards (tenant_id, call_id, template_key, items, total_score)
                 VALUES ('{tenant}', '{call}', 'diagnostico',
                         '[{{\"item\": \"Dor\", \"weight\": 3, \"score\": 2}}]', {score});"
        ),
    )
    .await;
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn sorted(k: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = k.iter().map(|s| s.to_string()).collect();
    k.sort();
    k
}

fn ids(a: &common::Answer) -> Vec<String> {
    a.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["call"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn list_detail_recording_push_and_isolation() {
    let s = stack().await;
    let a = s.tenant("a.example.com").await;
    let b = s.tenant("b.example.com").await;
    let (ta, tb): (Uuid, Uuid) = (a.parse().unwrap(), b.parse().unwrap());
    let viewer = s.key(&a, "viewer").await;
    let supervisor = s.key(&a, "supervisor").await;
    let b_admin = s.key(&b, "admin").await;

    let c1 = call(
        &s,
        ta,
        "abc-1",
        "agent-42",
        "processed",
        "2025-04-01T14:10:00Z",
    )
    .await;
    let c2 = call(
        &s,
        ta,
        "abc-2",
        "agent-7",
        "received",
        "2025-04-02T10:00:00Z",
    )
    .await;
    let c3 = call(
        &s,
        ta,
        "abc-3",
        "agent-42",
        "processed",
        "2025-04-03T09:00:00Z",
    )
    .await;
    let cb = call(
        &s,
        tb,
        "abc-1",
        "agent-42",
        "processed",
        "2025-04-01T14:10:00Z",
    )
    .await;
    analysed(
        &s,
        ta,
        c1,
        "Vamos falar dos orçamentos do projeto",
        "{lead,qualificado}",
        7.0,
    )
    .await;
    analysed(&s, ta, c3, "Cliente pediu desconto", "{lead}", 4.0).await;
    analysed(&s, tb, cb, "orçamentos também", "{lead}", 1.0).await;

    // Pagination and total, newest first.
    let r = s.get("/calls?per_page=2", &viewer).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["total"], 3);
    assert_eq!(r.body["perPage"], 2);
    assert_eq!(ids(&r), vec![c3.to_string(), c2.to_string()]);
    let r = s.get("/calls?per_page=2&page=2", &viewer).await;
    assert_eq!(ids(&r), vec![c1.to_string()]);
    let item = &r.body["items"][0];
    assert_eq!(item["tags"], serde_json::json!(["lead", "qualificado"]));
    assert_eq!(item["summary"], "Resumo executivo");
    assert_eq!(item["totalScore"], 7.0);

    // Each filter.
    for (query, want) in [
        ("agent=agent-42", vec![c3, c1]),
        ("status=received", vec![c2]),
        ("tag=qualificado", vec![c1]),
        ("q=or%C3%A7amento", vec![c1]),
        ("q=abc-2", vec![c2]),
        ("from=2025-04-02", vec![c3, c2]),
        ("to=2025-04-02", vec![c2, c1]),
        (
            "from=2025-04-01T15:00:00Z&to=2025-04-02T23:00:00Z",
            vec![c2],
        ),
    ] {
        let r = s.get(&format!("/calls?{query}"), &viewer).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text);
        let want: Vec<String> = want.iter().map(Uuid::to_string).collect();
        assert_eq!(ids(&r), want, "{query}");
        assert_eq!(r.body["total"], want.len(), "{query}");
    }
    for (query, param) in [
        ("per_page=101", "per_page"),
        ("page=0", "page"),
        ("from=yesterday", "from"),
        ("status=done", "status"),
    ] {
        let r = s.get(&format!("/calls?{query}"), &viewer).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(r.message().contains(param), "{query}: {}", r.message());
    }

    // Tenant B sees only its own call, in the list and by id.
    let r = s.get("/calls", &b_admin).await;
    assert_eq!(ids(&r), vec![cb.to_string()]);
    for path in [format!("/calls/{c1}"), format!("/calls/{c1}/recording")] {
        assert_eq!(
            s.get(&path, &b_admin).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let r = s
        .post(
            &format!("/calls/{c1}/push-crm"),
            &b_admin,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // The platform token names the tenant.
    assert_eq!(
        s.get("/calls", PLATFORM_TOKEN).await.status,
        StatusCode::BAD_REQUEST
    );
    let r = s.get(&format!("/calls?tenant={b}"), PLATFORM_TOKEN).await;
    assert_eq!(ids(&r), vec![cb.to_string()]);

    let r = s
        .client
        .get(s.url("/calls"))
        .bearer_auth(PLATFORM_TOKEN)
        .header("x-voice-domain", "b.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["items"][0]["call"]["id"], cb.to_string());
    assert_eq!(body["total"], 1);

    // Detail: the seed's shape.
    let r = s.get(&format!("/calls/{c1}"), &viewer).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let d = &r.body;
    assert_eq!(
        keys(d),
        sorted(&[
            "call",
            "recording",
            "transcript",
            "segments",
            "insights",
            "scorecard",
            "stageStatus",
            "error",
            "crmEvents"
        ])
    );
    assert_eq!(
        keys(&d["call"]),
        sorted(&[
            "id",
            "providerCallId",
            "from",
            "to",
            "agentId",
            "startedAt",
            "endedAt",
            "durationSec",
            "consent",
            "source",
            "status"
        ])
    );
    assert_eq!(d["call"]["durationSec"], 323);
    assert_eq!(d["call"]["agentId"], "agent-42");
    for k in ["id", "language", "text", "wordsJson", "diarizationJson"] {
        assert!(d["transcript"].get(k).is_some(), "transcript.{k}");
    }
    for k in [
        "id",
        "summary",
        "painPointsJson",
        "objectionsJson",
        "nextActionsJson",
        "tags",
    ] {
        assert!(d["insights"].get(k).is_some(), "insights.{k}");
    }
    for k in ["id", "templateKey", "itemsJson", "totalScore"] {
        assert!(d["scorecard"].get(k).is_some(), "scorecard.{k}");
    }
    assert_eq!(
        keys(&d["segments"][0]),
        sorted(&["id", "label", "startSec", "endSec", "excerpt"])
    );
    assert_eq!(
        d["insights"]["nextActionsJson"][0]["title"],
        "Enviar proposta"
    );
    assert!(d["recording"].is_null());
    let r = s.get(&format!("/calls/{c2}"), &viewer).await;
    assert!(r.body["transcript"].is_null() && r.body["insights"].is_null());
    assert_eq!(
        s.get("/calls/not-a-uuid", &viewer).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.get(&format!("/calls/{}", Uuid::new_v4()), &viewer)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Recording: supervisors only; ranges.
    let audio: Vec<u8> = (0..100u8).collect();
    let key = format!("recordings/{a}/{c1}.wav");
    s.state
        .storage
        .put(&key, audio.clone().into())
        .await
        .unwrap();
    exec(
        &s,
        ta,
        format!(
            "INSERT INTO recordings (tenant_id, call_id, storage_key, original_url, format,
                                     content_type, sample_rate, channels)
             VALUES ('{ta}', '{c1}', '{key}', 'https://voip.example.com/rec/c1.wav', 'wav',
                     'audio/wav', 16000, 2)"
        ),
    )
    .await;
    // The detail's recording: seed 000's fields (and a few of ours beside them).
    let r = s.get(&format!("/calls/{c1}"), &viewer).await;
    let rec = &r.body["recording"];
    let have = keys(rec);
    for field in [
        "id",
        "storageKey",
        "originalUrl",
        "format",
        "sampleRate",
        "channels",
    ] {
        assert!(have.iter().any(|k| k == field), "{field}: {rec}");
    }
    assert_eq!(rec["storageKey"], key.as_str());
    assert_eq!(rec["originalUrl"], "https://voip.example.com/rec/c1.wav");
    assert_eq!(
        (&rec["format"], &rec["sampleRate"], &rec["channels"]),
        (&json!("wav"), &json!(16000), &json!(2))
    );
    // Now that it exists, another tenant still cannot reach it.
    let r = s.get(&format!("/calls/{c1}/recording"), &b_admin).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = s.get(&format!("/calls/{c1}/recording"), &viewer).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.message().contains("supervisor"), "{}", r.message());
    let get_range = |range: Option<&'static str>| {
        let mut req = s
            .client
            .get(s.url(&format!("/calls/{c1}/recording")))
            .bearer_auth(&supervisor);
        if let Some(range) = range {
            req = req.header("range", range);
        }
        req.send()
    };
    let r = get_range(None).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.headers()["content-type"], "audio/wav");
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &audio[..]);
    for (range, from, to) in [
        ("bytes=10-19", 10, 20),
        ("bytes=90-", 90, 100),
        ("bytes=-5", 95, 100),
    ] {
        let r = get_range(Some(range)).await.unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes {from}-{}/100", to - 1).as_str()
        );
        assert_eq!(
            r.bytes().await.unwrap().as_ref(),
            &audio[from..to],
            "{range}"
        );
    }
    let r = get_range(Some("bytes=100-")).await.unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.headers()["content-range"], "bytes */100");
    // Media deleted by retention: 404.
    exec(
        &s,
        ta,
        format!(
            "UPDATE recordings SET storage_key = NULL, deleted_at = now() WHERE call_id = '{c1}'"
        ),
    )
    .await;
    assert_eq!(
        get_range(None).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    // Push to the CRM: supervisors; processed calls only; exactly one job.
    let s = &s;
    let push = |id: Uuid, token: String| async move {
        s.post(
            &format!("/calls/{id}/push-crm"),
            &token,
            &serde_json::json!({}),
        )
        .await
    };
    assert_eq!(push(c1, viewer.clone()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        push(c2, supervisor.clone()).await.status,
        StatusCode::CONFLICT
    );
    let r = push(c1, supervisor.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["queued"], true);
    let job = r.body["jobId"].as_str().unwrap().to_string();
    let jobs = s
        .scratch
        .db
        .with_tenant(ta, move |tx| {
            Box::pin(async move {
                let rows = tx
                    .query(
                        "SELECT id::text, kind, payload FROM jobs WHERE call_id = $1",
                        &[&c1],
                    )
                    .await?;
                Ok::<_, StoreError>(
                    rows.iter()
                        .map(|r| {
                            (
                                r.get::<_, String>(0),
                                r.get::<_, String>(1),
                                r.get::<_, Value>(2),
                            )
                        })
                        .collect::<Vec<_>>(),
                )
            })
        })
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].0, job);
    assert_eq!(jobs[0].1, "push_crm");
    assert!(jobs[0].2["requested_by"].is_string());
}
