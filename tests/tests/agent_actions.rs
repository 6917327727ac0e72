//! What an agent can do besides talking, and what the bridge does when its provider fails:
//! the four tools (knowledge, message, transfer, end call), the hand-over rules (caller
//! intent, DTMF), the greeting played before the provider is up, and failover with the
//! dead air it costs the caller. Calls run through the FreeSWITCH simulator, whose fake
//! event socket records the `uuid_transfer` / `uuid_kill` the bridge sends.

use std::time::Duration;

use e2e_tests::Harness;
use serde_json::Value;
use voice_sim::fake_openai::{FakeOpenAiConfig, Fault};
use voice_sim::freeswitch::esl_backend::FakeFreeswitch;
use voice_sim::freeswitch::{run_call, CallReport, CallSpec, CallerTurn};

const ESL_PASSWORD: &str = "ClueCon-actions";
const DOMAIN: &str = "sim.example.com";
const REPLY: &str = "Claro, posso ajudar.";

fn with_tool(name: &str, arguments: &str) -> FakeOpenAiConfig {
    FakeOpenAiConfig {
        tool_call: Some((name.into(), arguments.into())),
        ..e2e_tests::fake_answering(REPLY)
    }
}

/// A bridge with ESL to a simulated FreeSWITCH, plus `env`.
async fn bridge(
    fake: FakeOpenAiConfig,
    toml: &str,
    env: &[(&str, &str)],
) -> (Harness, FakeFreeswitch) {
    let (switch, esl_vars) = e2e_tests::simulated_switch(ESL_PASSWORD).await.unwrap();
    let mut vars: Vec<(&str, &str)> = esl_vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    vars.extend([
        (
            "VOICE_BRIDGE__AGENT__TOOLS",
            r#"["transfer_to_human", "end_call", "lookup_knowledge", "take_message"]"#,
        ),
        ("VOICE_BRIDGE__AGENT__HANDOFF__TARGET", "1001"),
    ]);
    vars.extend_from_slice(env);
    let h = Harness::start_with_toml(fake, toml, &vars).await.unwrap();
    e2e_tests::wait_for_esl(&switch).await;
    (h, switch)
}

async fn call(h: &Harness, switch: &FakeFreeswitch, uuid: &str, turns: &[&str]) -> CallReport {
    call_after(h, switch, uuid, turns, Duration::from_millis(500)).await
}

/// [`call`] whose caller first speaks `lead_in` after the call starts.
async fn call_after(
    h: &Harness,
    switch: &FakeFreeswitch,
    uuid: &str,
    turns: &[&str],
    lead_in: Duration,
) -> CallReport {
    let mut spec = CallSpec::new(h.ws_base());
    spec.lead_in = lead_in;
    spec.call_uuid = uuid.into();
    spec.domain = DOMAIN.into();
    spec.script = turns.iter().map(|t| CallerTurn::new(*t)).collect();
    spec.max_turns = Some(turns.len());
    spec.max_duration = Duration::from_secs(25);
    spec.answer_timeout = Duration::from_secs(10);
    spec.freeswitch = Some(switch.clone());
    run_call(spec).await
}

/// The function_call_output items the provider received, parsed.
fn tool_outputs(h: &Harness) -> Vec<Value> {
    h.fake
        .stats()
        .client_items
        .iter()
        .filter_map(|i| serde_json::from_str::<Value>(i).ok())
        .filter(|i| i["type"] == "function_call_output")
        .filter_map(|i| serde_json::from_str(i["output"].as_str()?).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_knowledge_answers_from_the_tenants_entries() {
    let toml = r#"
[[agent.knowledge]]
title = "Horário de funcionamento"
text = "Segunda a sexta, das 8h às 18h."
keywords = ["abre", "fecha"]

[[agent.knowledge]]
title = "Endereço"
text = "Rua das Flores, 100."
"#;
    let fake = with_tool("lookup_knowledge", r#"{"query":"que horas abre"}"#);
    let (h, switch) = bridge(fake, toml, &[]).await;
    let report = call(&h, &switch, "knowledge-1", &["A que horas vocês abrem?"]).await;
    assert_eq!(report.error_total(), 0, "{:?}", report.errors);
    let outputs = tool_outputs(&h);
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert_eq!(
        outputs[0]["results"][0]["title"],
        "Horário de funcionamento"
    );
    assert!(
        report.turns[0].answer_audio_ms > 500.0,
        "the agent answered after the tool"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn take_message_is_kept_with_the_call() {
    let dir = e2e_tests::tempfile_path("messages");
    let dir_text = dir.display().to_string();
    let fake = with_tool(
        "take_message",
        r#"{"name":"Ana Souza","phone":"11 99999-0000","message":"Retornar sobre o orçamento"}"#,
    );
    let (h, switch) = bridge(
        fake,
        "",
        &[
            ("VOICE_BRIDGE__RECORDING__ENABLED", "true"),
            ("VOICE_BRIDGE__RECORDING__DIR", dir_text.as_str()),
        ],
    )
    .await;
    let report = call(&h, &switch, "message-1", &["Queria deixar um recado."]).await;
    assert_eq!(report.error_total(), 0, "{:?}", report.errors);
    assert_eq!(tool_outputs(&h)[0]["ok"], true);
    assert!(h.wait_idle(Duration::from_secs(5)).await);
    let recorders = h.state.recorders.clone().unwrap();
    tokio::task::spawn_blocking(move || recorders.drain())
        .await
        .unwrap();
    let summary = find_summary(&dir).expect("a call summary");
    let facts = summary["facts"].as_array().unwrap();
    let message = facts
        .iter()
        .find(|f| f["type"] == "message")
        .expect("the message is a fact of the call");
    assert_eq!(message["name"], "Ana Souza");
    assert_eq!(message["message"], "Retornar sobre o orçamento");
    assert!(facts
        .iter()
        .any(|f| f["type"] == "tool_call" && f["name"] == "take_message"));
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn find_summary(dir: &std::path::Path) -> Option<Value> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(found) = find_summary(&path) {
                return Some(found);
            }
        } else if path.extension().is_some_and(|e| e == "json") {
            return serde_json::from_slice(&std::fs::read(&path).ok()?).ok();
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_to_human_ends_in_uuid_transfer_to_the_tenants_context() {
    let fake = with_tool("transfer_to_human", r#"{"reason":"pediu atendente"}"#);
    let (h, switch) = bridge(fake, "", &[]).await;
    let report = call(
        &h,
        &switch,
        "transfer-1",
        &["Posso falar com alguém?", "Alô?"],
    )
    .await;
    assert_eq!(
        report.transferred_to.as_deref(),
        Some(format!("1001 XML {DOMAIN}").as_str())
    );
    assert!(switch
        .commands()
        .iter()
        .any(|c| c == &format!("uuid_transfer transfer-1 1001 XML {DOMAIN}")));
    assert_eq!(h.state.metrics.handoffs.get(), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_without_a_target_is_refused_to_the_agent() {
    let fake = with_tool("transfer_to_human", "{}");
    let (h, switch) = bridge(fake, "", &[("VOICE_BRIDGE__AGENT__HANDOFF__TARGET", "")]).await;
    let report = call(&h, &switch, "transfer-2", &["Posso falar com alguém?"]).await;
    assert_eq!(report.transferred_to, None);
    assert!(tool_outputs(&h)[0]["error"]
        .as_str()
        .unwrap()
        .contains("take a message"));
    assert!(
        report.turns[0].answer_audio_ms > 500.0,
        "the agent goes on talking"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_call_hangs_up_after_the_last_words() {
    let fake = with_tool("end_call", r#"{"reason":"conversa encerrada"}"#);
    let (h, switch) = bridge(fake, "", &[]).await;
    let report = call(&h, &switch, "end-1", &["Era só isso, obrigado.", "Alô?"]).await;
    assert!(report.killed_by_bridge, "{report:#?}");
    // The goodbye (the fake's answer to the tool result) played before the hang-up.
    let goodbye_ms = voice_sim::speech::synthesize(REPLY, voice_sim::speech::PT_BR, 16000)
        .unwrap()
        .len() as f64
        / 16.0;
    assert!(
        report.turns[0].answer_audio_ms >= goodbye_ms - 100.0,
        "{report:#?}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_a_person_hands_over_with_the_hand_over_line() {
    let fake = FakeOpenAiConfig {
        caller_transcript: "Eu quero falar com um atendente, por favor.".into(),
        ..e2e_tests::fake_answering(REPLY)
    };
    let (h, switch) = bridge(fake, "", &[]).await;
    let report = call(
        &h,
        &switch,
        "intent-1",
        &["Quero falar com um atendente.", "Alô?"],
    )
    .await;
    assert_eq!(
        report.transferred_to.as_deref(),
        Some(format!("1001 XML {DOMAIN}").as_str())
    );
    // The caller heard the bridge's own hand-over line (about 3 s), not just the agent.
    assert!(report.turns[0].answer_audio_ms > 2000.0, "{report:#?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_zero_hands_over_and_other_digits_reach_the_agent() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let (h, switch) = bridge(e2e_tests::fake_answering(REPLY), "", &[]).await;
    let mut ws = h.open_call("dtmf-1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A fork's DTMF text frame: an ordinary digit goes to the agent as text.
    ws.send(Message::Text(r#"{"type":"dtmf","digit":"5"}"#.into()))
        .await
        .unwrap();
    // FreeSWITCH's DTMF event, through the event socket: 0 is the hand-over digit.
    switch.esl().publish(
        voice_sim::fake_esl::FakeEvent::new("DTMF")
            .header("Unique-ID", "dtmf-1")
            .header("DTMF-Digit", "0"),
    );
    let transferred = async {
        loop {
            if switch
                .commands()
                .iter()
                .any(|c| c.starts_with("uuid_transfer dtmf-1 1001 XML pbx.example.com"))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(12), transferred)
        .await
        .expect("DTMF 0 transfers the call");
    let items = h.fake.stats().client_items;
    assert!(items.iter().any(|i| i.contains("[DTMF 5]")), "{items:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_greeting_plays_before_the_provider_is_ready_and_is_not_repeated() {
    // The provider takes 1.5 s to be ready; the greeting must not wait for it.
    let fake = FakeOpenAiConfig {
        fault: Fault::SlowSessionUpdatedMs(1500),
        ..e2e_tests::fake_answering(REPLY)
    };
    let (h, switch) = bridge(
        fake,
        r#"
[agent.prompts]
greeting = { file = "greeting.wav", text = "Olá! Obrigado por ligar. Em que posso ajudar?" }
"#,
        &[],
    )
    .await;
    // The caller waits for the greeting to end (about 3.8 s) before speaking.
    let report = call_after(
        &h,
        &switch,
        "greeting-1",
        &["Bom dia, queria uma informação."],
        Duration::from_millis(4200),
    )
    .await;
    assert_eq!(report.error_total(), 0, "{:?}", report.errors);
    let first = report
        .greeting_first_audio_ms
        .expect("a greeting was heard");
    // Stream start → greeting: one frame plus the simulator's clock, far less than 1.5 s.
    assert!(first < 400.0, "greeting started {first} ms into the call");
    assert!(report.greeting_audio_ms > 2000.0, "{report:#?}");
    // The provider knows the greeting was said.
    let items = h.fake.stats().client_items;
    assert!(
        items
            .iter()
            .any(|i| i.contains("assistant") && i.contains("Obrigado por ligar")),
        "{items:?}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_provider_is_reconnected_with_the_conversation_and_dead_air_stays_under_2s() {
    // The provider thinks 1.5 s and its first session drops 0.5 s into that: the caller is
    // waiting for an answer when it fails.
    let fake = FakeOpenAiConfig {
        think_ms: 1500,
        caller_transcript: "Qual é o horário de funcionamento?".into(),
        ..e2e_tests::fake_answering(REPLY)
    };
    let (h, switch) = bridge(fake, "", &[]).await;
    let utterance_ms = voice_sim::speech::synthesize(
        "Qual é o horário de funcionamento?",
        voice_sim::speech::PT_BR,
        16000,
    )
    .unwrap()
    .len() as u64
        / 16;
    // lead-in 500 ms + speech + 500 ms of server VAD silence + 500 ms of thinking.
    let fault_at = 500 + utterance_ms + 1000;
    h.fake.set_fault_for(Fault::CloseAfterMs(fault_at), 1);
    let report = call(
        &h,
        &switch,
        "drop-1",
        &["Qual é o horário de funcionamento?"],
    )
    .await;
    let stats = h.fake.stats();
    assert_eq!(stats.sessions_opened, 2, "one reconnect");
    // The second session got the conversation so far and was asked to answer it.
    assert!(stats
        .client_items
        .iter()
        .any(|i| i.contains("horário de funcionamento")));
    let turn = &report.turns[0];
    // The bridge opens the provider session within a few ms of the call's start, so the
    // fault comes about `fault_at` ms into the call.
    let first_audio = turn.first_audio_ms.expect("the caller heard something");
    let dead_air = first_audio - fault_at as f64;
    assert!(
        (0.0..2000.0).contains(&dead_air),
        "first audio {first_audio} ms, fault at {fault_at} ms: dead air {dead_air} ms"
    );
    assert!(turn.answer_audio_ms > 500.0, "{report:#?}");
    assert_eq!(h.state.metrics.provider_failovers.get(), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_no_provider_is_left_the_caller_hears_the_apology_and_the_call_hangs_up() {
    let fake = FakeOpenAiConfig {
        fault: Fault::RefuseUpgrade(503),
        ..e2e_tests::fake_answering(REPLY)
    };
    let (h, switch) = bridge(fake, "", &[]).await;
    // The caller listens (what they hear before speaking is measured as a greeting).
    let report = call_after(&h, &switch, "apology-1", &["Alô?"], Duration::from_secs(9)).await;
    assert!(report.killed_by_bridge, "{report:#?}");
    let first = report
        .greeting_first_audio_ms
        .expect("the apology was heard");
    assert!(
        first < 2000.0,
        "the apology started {first} ms into the call"
    );
    assert!(report.greeting_audio_ms > 3000.0, "{report:#?}");
    assert_eq!(h.fake.stats().sessions_opened, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_resort_can_be_a_transfer() {
    let fake = FakeOpenAiConfig {
        fault: Fault::NoSessionCreated,
        ..e2e_tests::fake_answering(REPLY)
    };
    let (h, switch) = bridge(
        fake,
        "",
        &[
            ("VOICE_BRIDGE__AGENT__FAILOVER__LAST_RESORT", "transfer"),
            (
                "VOICE_BRIDGE__PROVIDERS__OPENAI_REALTIME__CONNECT_TIMEOUT_MS",
                "1000",
            ),
            ("VOICE_BRIDGE__AGENT__FAILOVER__CONNECT_TIMEOUT_MS", "1000"),
        ],
    )
    .await;
    let report = call_after(&h, &switch, "resort-1", &["Alô?"], Duration::from_secs(9)).await;
    assert_eq!(
        report.transferred_to.as_deref(),
        Some(format!("1001 XML {DOMAIN}").as_str())
    );
    // 1 s for the first attempt, then the hold prompt within another second.
    let first = report.greeting_first_audio_ms.expect("something was heard");
    assert!(first < 2300.0, "first audio {first} ms into the call");
    h.stop().await;
}
