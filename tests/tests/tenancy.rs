//! Tenants from PostgreSQL, end to end: simulated FreeSWITCH streams → the real bridge with
//! a scratch database → fake OpenAI Realtime behind a recording proxy (which shows the
//! `Authorization` header and the `session.update` each call sent).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e_tests::recording_proxy::RecordingProxy;
use e2e_tests::{fake_answering, Harness};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use voice_core::db::scratch::ScratchDb;
use voice_core::db::Db;
use voice_core::tenancy::crypto::CredentialKey;
use voice_core::tenancy::model::Tenant;
use voice_core::tenancy::store::{self, NewAgent, NewProvider, NewTenant};
use voice_sim::fake_openai::FakeOpenAi;
use voice_sim::log_capture;

/// The tenants' own OpenAI key (the process's is `e2e_tests::API_KEY`).
const TENANT_KEY: &str = "sk-tenant-own-key-7f3a";
const PROMPT_A: &str = "Você é a recepcionista da Clínica A.";
const PROMPT_B: &str = "Você é o atendente da Loja B.";
/// How long a committed change may take to reach new calls.
const FRESHNESS: Duration = Duration::from_secs(1);

fn key() -> CredentialKey {
    CredentialKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap()
}

/// A bridge on a scratch database, and the fake the tenants' own provider accounts reach
/// through the proxy.
struct Setup {
    scratch: ScratchDb,
    bridge: Harness,
    proxy: RecordingProxy,
    _tenant_fake: FakeOpenAi,
}

async fn setup(env: &[(&str, &str)]) -> Setup {
    setup_with_key(env, Some(key())).await
}

async fn setup_with_key(env: &[(&str, &str)], bridge_key: Option<CredentialKey>) -> Setup {
    setup_full(env, bridge_key, fake_answering("Olá!")).await
}

async fn setup_full(
    env: &[(&str, &str)],
    bridge_key: Option<CredentialKey>,
    tenant_fake: voice_sim::fake_openai::FakeOpenAiConfig,
) -> Setup {
    log_capture::capture();
    let scratch = ScratchDb::create(4)
        .await
        .expect("scratch database (is PostgreSQL running?)");
    let tenant_fake = FakeOpenAi::start(voice_sim::fake_openai::FakeOpenAiConfig {
        api_key: TENANT_KEY.into(),
        ..tenant_fake
    })
    .await
    .unwrap();
    let proxy = RecordingProxy::start(tenant_fake.addr()).await.unwrap();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let bridge =
        Harness::start_with_database(fake_answering("Olá!"), &scratch.url, bridge_key, &env)
            .await
            .unwrap();
    Setup {
        scratch,
        bridge,
        proxy,
        _tenant_fake: tenant_fake,
    }
}

/// A tenant with one agent answering `number` and an OpenAI Realtime account of its own
/// (reached through the proxy).
async fn tenant(
    s: &Setup,
    domain: &str,
    uuid: &str,
    prompt: &str,
    number: &str,
    extra: serde_json::Value,
) -> Tenant {
    let mut new = json!({"domain_uuid": uuid, "domain_name": domain});
    if let (Some(new), Some(extra)) = (new.as_object_mut(), extra.as_object()) {
        new.extend(extra.clone());
    }
    let new: NewTenant = serde_json::from_value(new).unwrap();
    let tenant = store::create_tenant(&s.scratch.db, new).await.unwrap();
    let agent: NewAgent = serde_json::from_value(json!({
        "name": "recepcao", "prompt": prompt, "numbers": [number]
    }))
    .unwrap();
    let id = tenant.id;
    s.scratch
        .db
        .with_tenant(id, move |tx| {
            Box::pin(async move { store::create_agent(tx, id, agent).await })
        })
        .await
        .unwrap();
    add_openai_realtime(
        s,
        &tenant,
        "openai",
        10,
        &s.proxy.url("/v1/realtime"),
        TENANT_KEY,
    )
    .await;
    tenant
}

/// An OpenAI Realtime account of `tenant` at `url`, with its own `api_key`.
async fn add_openai_realtime(
    s: &Setup,
    tenant: &Tenant,
    name: &str,
    priority: i32,
    url: &str,
    api_key: &str,
) {
    let provider: NewProvider = serde_json::from_value(json!({
        "kind": "openai_realtime", "name": name, "priority": priority,
        "settings": {"url": url},
        "credentials": BTreeMap::from([("api_key", api_key)]),
    }))
    .unwrap();
    let id = tenant.id;
    s.scratch
        .db
        .with_tenant(id, move |tx| {
            Box::pin(async move { store::create_provider(tx, Some(&key()), id, provider).await })
        })
        .await
        .unwrap();
}

async fn set_prompt(db: &Db, tenant: &Tenant, prompt: &str) {
    let prompt = prompt.to_string();
    db.with_tenant(tenant.id, move |tx| {
        Box::pin(async move {
            tx.execute("UPDATE agents SET prompt = $1", &[&prompt])
                .await
                .map_err(voice_core::db::DbError::from)?;
            Ok::<_, voice_core::db::DbError>(())
        })
    })
    .await
    .unwrap();
}

/// The kinds (and agent ids, as text) of the events of call `call`, in order.
async fn call_events(db: &Db, tenant: &Tenant, call: &str) -> Vec<(String, Option<String>)> {
    let call = call.to_string();
    db.with_tenant(tenant.id, move |tx| {
        Box::pin(async move {
            let rows = tx
                .query(
                    "SELECT kind, agent_id::text FROM events WHERE call_id = $1 ORDER BY id",
                    &[&call],
                )
                .await
                .map_err(voice_core::db::DbError::from)?;
            Ok::<_, voice_core::db::DbError>(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    })
    .await
    .unwrap()
}

/// Opens call `call` to `domain` as FreeSWITCH does (stream, then metadata).
async fn open(s: &Setup, domain: &str, call: &str, query: &str) -> e2e_tests::raw::Ws {
    let url = s.bridge.url(domain, call, &format!("rate=16000{query}"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::Text(r#"{"type":"start"}"#.into()))
        .await
        .unwrap();
    ws
}

/// Waits for the proxy's `n`-th connection to send its session.update.
async fn instructions_of(s: &Setup, n: usize) -> String {
    let started = Instant::now();
    loop {
        if let Some(text) = s.proxy.instructions(n) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no session.update on provider connection {n}: {:?}",
            s.proxy.seen()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Reads until the bridge closes the stream: (audio bytes received, close code, reason).
async fn until_closed(ws: &mut e2e_tests::raw::Ws, within: Duration) -> (usize, u16, String) {
    let mut audio = 0;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("stream not closed within {within:?}"),
            Ok(None) | Ok(Some(Err(_))) => return (audio, 0, String::new()),
            Ok(Some(Ok(Message::Binary(b)))) => audio += b.len(),
            Ok(Some(Ok(Message::Close(frame)))) => {
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((0, String::new()));
                return (audio, code, reason);
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_tenant_gets_its_agents_prompt_and_its_own_provider_key() {
    let s = setup(&[]).await;
    let a = tenant(
        &s,
        "Clinica-A.example",
        "11111111-1111-4111-8111-111111111111",
        PROMPT_A,
        "1000",
        json!({}),
    )
    .await;

    // By domain name in another case, then by domain uuid.
    let mut ws = open(&s, "clinica-a.example", "a-1", "").await;
    assert_eq!(instructions_of(&s, 0).await, PROMPT_A);
    ws.close(None).await.unwrap();
    let mut ws = open(&s, "11111111-1111-4111-8111-111111111111", "a-2", "").await;
    assert_eq!(instructions_of(&s, 1).await, PROMPT_A);
    ws.close(None).await.unwrap();

    let seen = s.proxy.seen();
    assert_eq!(seen[0].authorization, format!("Bearer {TENANT_KEY}"));
    // The process's own provider was not used.
    assert_eq!(s.bridge.fake.stats().sessions_opened, 0);
    assert!(s.bridge.wait_idle(Duration::from_secs(5)).await);
    // The call's events are in the tenant's log, with its agent.
    let tenancy = s.bridge.state.tenancy.as_ref().unwrap();
    let started = Instant::now();
    let kinds = loop {
        tenancy.events.flush().await;
        let kinds = call_events(&s.scratch.db, &a, "a-1").await;
        if kinds.iter().any(|(k, _)| k == "call.ended")
            || started.elapsed() > Duration::from_secs(5)
        {
            break kinds;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let names: Vec<&str> = kinds.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["call.started", "call.ended"], "{kinds:?}");
    assert!(kinds.iter().all(|(_, agent)| agent.is_some()));
    let logs = log_capture::capture().text();
    assert!(logs.contains("a-1"), "the bridge's logs are captured");
    assert!(
        !logs.contains(TENANT_KEY),
        "the tenant's key is in the logs"
    );
    s.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_updated_prompt_reaches_new_calls_within_a_second() {
    let s = setup(&[]).await;
    let a = tenant(
        &s,
        "a.example",
        "11111111-1111-4111-8111-111111111111",
        PROMPT_A,
        "1000",
        json!({}),
    )
    .await;
    let mut ws = open(&s, "a.example", "first", "").await;
    assert_eq!(instructions_of(&s, 0).await, PROMPT_A);
    ws.close(None).await.unwrap();

    const NEW_PROMPT: &str = "Você é a recepcionista, agora com horário de verão.";
    set_prompt(&s.scratch.db, &a, NEW_PROMPT).await;
    let committed = Instant::now();
    let mut connection = 1;
    let seen_after = loop {
        let started = committed.elapsed();
        let mut ws = open(&s, "a.example", &format!("poll-{connection}"), "").await;
        let instructions = instructions_of(&s, connection).await;
        ws.close(None).await.unwrap();
        connection += 1;
        if instructions == NEW_PROMPT {
            break started;
        }
        assert_eq!(instructions, PROMPT_A);
        assert!(
            started < FRESHNESS * 3,
            "still the old prompt {started:?} after the commit"
        );
    };
    println!(
        "new prompt used by a call started {seen_after:?} after the commit ({connection} calls)"
    );
    assert!(
        seen_after <= FRESHNESS,
        "new prompt first used {seen_after:?} after the commit"
    );
    s.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_the_tenants_cap_hears_the_busy_prompt_and_is_hung_up() {
    let s = setup(&[]).await;
    let t = tenant(
        &s,
        "cap.example",
        "22222222-2222-4222-8222-222222222222",
        PROMPT_A,
        "1000",
        json!({"max_concurrent_calls": 1}),
    )
    .await;
    let mut first = open(&s, "cap.example", "cap-1", "").await;
    assert_eq!(instructions_of(&s, 0).await, PROMPT_A);

    let mut second = open(&s, "cap.example", "cap-2", "").await;
    let (audio, code, reason) = until_closed(&mut second, Duration::from_secs(20)).await;
    assert_eq!(code, 1000, "{reason}");
    assert!(reason.contains("over_capacity"), "{reason}");
    // The busy prompt (16 kHz, 16-bit): all of it reached the caller.
    let busy = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../prompts/pt-BR/busy.wav"
    ))
    .unwrap();
    let expected = busy.len() - 44;
    assert!(
        audio as f64 > expected as f64 * 0.9 && (audio as f64) < expected as f64 * 1.1,
        "{audio} bytes of audio, the busy prompt has {expected}"
    );
    assert_eq!(s.bridge.state.metrics.calls_over_cap.get(), 1);
    assert_eq!(
        s.proxy.seen().len(),
        1,
        "the busy call never reached a provider"
    );

    // The slot comes back when the first call ends.
    first.close(None).await.unwrap();
    let slot = format!("db:{}", t.id);
    assert_eq!(s.bridge.state.slots.running(&slot), 1);
    let started = Instant::now();
    while s.bridge.state.slots.running(&slot) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "slot not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut third = open(&s, "cap.example", "cap-3", "").await;
    assert_eq!(instructions_of(&s, 1).await, PROMPT_A);
    third.close(None).await.unwrap();
    s.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_the_cap_goes_to_the_busy_extension_when_there_is_one() {
    let (switch, vars) = e2e_tests::simulated_switch("ClueCon").await.unwrap();
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = setup(&env).await;
    e2e_tests::wait_for_esl(&switch).await;
    tenant(
        &s,
        "busy.example",
        "33333333-3333-4333-8333-333333333333",
        PROMPT_A,
        "1000",
        json!({"max_concurrent_calls": 1, "busy_transfer": "1999"}),
    )
    .await;
    let mut first = open(&s, "busy.example", "busy-1", "").await;
    assert_eq!(instructions_of(&s, 0).await, PROMPT_A);
    let mut second = open(&s, "busy.example", "busy-2", "").await;
    let wanted = "uuid_transfer busy-2 1999 XML busy.example";
    let started = Instant::now();
    while !switch.commands().iter().any(|c| c == wanted) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no transfer: {:?}",
            switch.commands()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.bridge.state.metrics.calls_over_cap.get(), 1);
    let _ = second.close(None).await;
    let _ = first.close(None).await;
    s.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_reach_another_tenants_agent() {
    let s = setup(&[]).await;
    tenant(
        &s,
        "a.example",
        "11111111-1111-4111-8111-111111111111",
        PROMPT_A,
        "1000",
        json!({}),
    )
    .await;
    tenant(
        &s,
        "b.example",
        "44444444-4444-4444-8444-444444444444",
        PROMPT_B,
        "2000",
        json!({}),
    )
    .await;
    // A's number, dialled on B's domain: B's only agent answers, never A's.
    let mut ws = open(&s, "b.example", "b-1", "&agent=1000").await;
    assert_eq!(instructions_of(&s, 0).await, PROMPT_B);
    ws.close(None).await.unwrap();
    // A's domain uuid beside B's name does not switch tenants either.
    let mut ws = open(
        &s,
        "b.example",
        "b-2",
        "&domain_uuid=11111111-1111-4111-8111-111111111111",
    )
    .await;
    assert_eq!(instructions_of(&s, 1).await, PROMPT_B);
    ws.close(None).await.unwrap();
    s.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_tenant_is_refused_and_an_unknown_domain_falls_back_to_toml() {
    let s = setup(&[]).await;
    tenant(
        &s,
        "off.example",
        "55555555-5555-4555-8555-555555555555",
        PROMPT_A,
        "1000",
        json!({"enabled": false}),
    )
    .await;
    let mut ws = open(&s, "off.example", "off-1", "").await;
    let (_, code, reason) = until_closed(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(code, 1008);
    assert!(reason.contains("disabled"), "{reason}");
    assert!(s.proxy.seen().is_empty());

    // Not in the database: the TOML default agent, on the process's provider.
    let mut ws = open(&s, "toml.example", "toml-1", "").await;
    let started = Instant::now();
    while s.bridge.fake.stats().sessions_opened == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "TOML call not served"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ws.close(None).await.unwrap();
    assert!(s.proxy.seen().is_empty());
    s.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_credentials_key_a_tenant_with_credentials_hears_the_apology() {
    let s = setup_with_key(&[], None).await;
    tenant(
        &s,
        "a.example",
        "11111111-1111-4111-8111-111111111111",
        PROMPT_A,
        "1000",
        json!({}),
    )
    .await;
    let mut ws = open(&s, "a.example", "nokey-1", "").await;
    let (audio, code, reason) = until_closed(&mut ws, Duration::from_secs(20)).await;
    assert_eq!(code, 1000, "{reason}");
    assert!(reason.contains("refused"), "{reason}");
    let apology = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../prompts/pt-BR/apology.wav"
    ))
    .unwrap();
    let expected = apology.len() - 44;
    assert!(
        audio as f64 > expected as f64 * 0.9 && (audio as f64) < expected as f64 * 1.1,
        "{audio} bytes of audio, the apology has {expected}"
    );
    // Never the platform's own key instead.
    assert!(s.proxy.seen().is_empty());
    assert_eq!(s.bridge.fake.stats().sessions_opened, 0);
    s.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_knowledge_searches_the_tenants_knowledge_base() {
    let fake = voice_sim::fake_openai::FakeOpenAiConfig {
        tool_call: Some((
            "lookup_knowledge".into(),
            r#"{"query":"horario de funcionamento"}"#.into(),
        )),
        ..fake_answering("Abrimos às oito.")
    };
    let s = setup_full(&[], Some(key()), fake).await;
    let a = tenant(
        &s,
        "kb.example",
        "66666666-6666-4666-8666-666666666666",
        PROMPT_A,
        "1000",
        json!({}),
    )
    .await;
    let other = tenant(
        &s,
        "other.example",
        "77777777-7777-4777-8777-777777777777",
        PROMPT_B,
        "1000",
        json!({}),
    )
    .await;
    for (t, body) in [
        (&a, "Segunda a sexta, das 8h às 18h."),
        (&other, "Horário da outra loja: 24 horas."),
    ] {
        let id = t.id;
        let doc: voice_core::tenancy::store::NewDocument = serde_json::from_value(json!({
            "title": "Horário de funcionamento", "body": body
        }))
        .unwrap();
        s.scratch
            .db
            .with_tenant(id, move |tx| {
                Box::pin(async move { store::create_document(tx, id, doc).await })
            })
            .await
            .unwrap();
    }
    let id = a.id;
    s.scratch
        .db
        .with_tenant(id, move |tx| {
            Box::pin(async move {
                tx.execute("UPDATE agents SET tools = '[\"lookup_knowledge\"]'", &[])
                    .await
                    .map_err(voice_core::db::DbError::from)?;
                Ok::<_, voice_core::db::DbError>(())
            })
        })
        .await
        .unwrap();

    let mut spec = voice_sim::freeswitch::CallSpec::new(s.bridge.ws_base());
    spec.lead_in = Duration::from_millis(500);
    spec.call_uuid = "kb-1".into();
    spec.domain = "kb.example".into();
    spec.script = vec![voice_sim::freeswitch::CallerTurn::new(
        "Qual é o horário de funcionamento?",
    )];
    spec.max_turns = Some(1);
    spec.max_duration = Duration::from_secs(25);
    spec.answer_timeout = Duration::from_secs(10);
    let report = voice_sim::freeswitch::run_call(spec).await;
    assert_eq!(report.error_total(), 0, "{:?}", report.errors);
    let outputs: Vec<serde_json::Value> = s
        .proxy
        .seen()
        .iter()
        .flat_map(|c| c.client_texts.clone())
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .filter(|v| v["item"]["type"] == "function_call_output")
        .filter_map(|v| serde_json::from_str(v["item"]["output"].as_str()?).ok())
        .collect();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    let results = outputs[0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "only this tenant's document: {results:?}");
    assert_eq!(results[0]["text"], "Segunda a sexta, das 8h às 18h.");
    s.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_domains_are_refused_when_toml_refuses_them() {
    let s = setup(&[("VOICE_BRIDGE__SERVER__ALLOW_UNKNOWN_TENANTS", "false")]).await;
    let mut ws = open(&s, "nobody.example", "n-1", "").await;
    let (_, code, reason) = until_closed(&mut ws, Duration::from_secs(5)).await;
    assert_eq!((code, reason.as_str()), (1008, "unknown tenant"));
    s.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_realtime_account_takes_over_when_the_first_is_down() {
    let s = setup(&[]).await;
    let a = tenant(
        &s,
        "a.example",
        "11111111-1111-4111-8111-111111111111",
        PROMPT_A,
        "1000",
        json!({}),
    )
    .await;
    // First by priority: an account of the same kind whose address answers nothing.
    add_openai_realtime(
        &s,
        &a,
        "openai principal",
        1,
        "ws://127.0.0.1:9/v1/realtime",
        "sk-first-but-down",
    )
    .await;
    // The directory hears of the new account before the call.
    tokio::time::sleep(FRESHNESS).await;

    let mut ws = open(&s, "a.example", "standby-1", "").await;
    // The first account fails (and its one reconnect); the second answers, with its key.
    assert_eq!(instructions_of(&s, 0).await, PROMPT_A);
    let seen = s.proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].authorization, format!("Bearer {TENANT_KEY}"));
    ws.close(None).await.unwrap();
    assert!(s.bridge.wait_idle(Duration::from_secs(5)).await);
    let logs = log_capture::capture().text();
    assert!(logs.contains("provider failed: switching"), "{logs}");
    assert!(!logs.contains("sk-first-but-down"), "a key is in the logs");
    s.bridge.stop().await;
}
