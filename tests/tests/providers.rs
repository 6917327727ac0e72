//! Each realtime provider end to end through the bridge: Gemini Live and ElevenLabs agents
//! (OpenAI Realtime is covered by the other files). A full turn after the bridge's own
//! greeting, a barge-in, a tool call ending in the ESL command the fake switch records,
//! a provider protocol error the call survives, and failover from one provider to another
//! with the dead air it costs.

use std::time::Duration;

use e2e_tests::{Harness, OtherFakes};
use voice_sim::fake_elevenlabs::{self, FakeElevenLabsConfig};
use voice_sim::fake_gemini::{self, FakeGeminiConfig};
use voice_sim::freeswitch::esl_backend::FakeFreeswitch;
use voice_sim::freeswitch::{run_call, CallReport, CallSpec, CallerTurn};

const ESL_PASSWORD: &str = "ClueCon-providers";
const DOMAIN: &str = "sim.example.com";
const REPLY: &str = "Claro, posso ajudar com isso.";
const GREETING: &str = r#"greeting = { file = "greeting.wav", text = "Olá! Obrigado por ligar. Em que posso ajudar?" }"#;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Provider {
    Gemini,
    ElevenLabs,
}

impl Provider {
    fn kind(self) -> &'static str {
        match self {
            Provider::Gemini => "gemini_live",
            Provider::ElevenLabs => "elevenlabs_agent",
        }
    }
}

fn gemini(tool: Option<&str>) -> FakeGeminiConfig {
    FakeGeminiConfig {
        reply_text: REPLY.into(),
        think_ms: 0,
        tool_call: tool.map(|t| (t.into(), "{}".into())),
        ..FakeGeminiConfig::default()
    }
}

fn elevenlabs(tool: Option<&str>) -> FakeElevenLabsConfig {
    FakeElevenLabsConfig {
        reply_text: REPLY.into(),
        think_ms: 0,
        first_message: String::new(),
        tool_call: tool.map(|t| (t.into(), "{}".into())),
        ..FakeElevenLabsConfig::default()
    }
}

/// A bridge whose agent speaks through `provider`, with ESL to a simulated switch.
async fn bridge(
    provider: Provider,
    others: OtherFakes,
    toml: &str,
    env: &[(&str, &str)],
) -> (Harness, FakeFreeswitch) {
    bridge_with(
        e2e_tests::fake_answering(REPLY),
        provider,
        others,
        toml,
        env,
    )
    .await
}

/// [`bridge`] with this OpenAI fake beside the others.
async fn bridge_with(
    openai: voice_sim::fake_openai::FakeOpenAiConfig,
    provider: Provider,
    others: OtherFakes,
    toml: &str,
    env: &[(&str, &str)],
) -> (Harness, FakeFreeswitch) {
    let (switch, esl_vars) = e2e_tests::simulated_switch(ESL_PASSWORD).await.unwrap();
    let mut vars: Vec<(&str, &str)> = esl_vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    vars.extend([
        ("VOICE_BRIDGE__AGENT__PROVIDER", provider.kind()),
        (
            "VOICE_BRIDGE__AGENT__TOOLS",
            r#"["transfer_to_human", "end_call"]"#,
        ),
        ("VOICE_BRIDGE__AGENT__HANDOFF__TARGET", "2000"),
    ]);
    vars.extend_from_slice(env);
    let h = Harness::start_all(openai, others, toml, &vars)
        .await
        .unwrap();
    e2e_tests::wait_for_esl(&switch).await;
    (h, switch)
}

fn spec(h: &Harness, switch: &FakeFreeswitch, uuid: &str, turns: Vec<CallerTurn>) -> CallSpec {
    let mut spec = CallSpec::new(h.ws_base());
    spec.call_uuid = uuid.into();
    spec.domain = DOMAIN.into();
    spec.max_turns = Some(turns.len());
    spec.script = turns;
    spec.max_duration = Duration::from_secs(30);
    spec.answer_timeout = Duration::from_secs(10);
    spec.freeswitch = Some(switch.clone());
    spec
}

fn reply_ms() -> f64 {
    voice_sim::speech::synthesize(REPLY, voice_sim::speech::PT_BR, 16000)
        .unwrap()
        .len() as f64
        / 16.0
}

fn others(provider: Provider, tool: Option<&str>) -> OtherFakes {
    match provider {
        Provider::Gemini => OtherFakes {
            gemini: Some(gemini(tool)),
            ..Default::default()
        },
        Provider::ElevenLabs => OtherFakes {
            elevenlabs: Some(elevenlabs(tool)),
            ..Default::default()
        },
    }
}

fn protocol_errors(h: &Harness) -> Vec<String> {
    let mut errors = h.fake.stats().protocol_errors;
    if let Some(g) = &h.gemini {
        errors.extend(g.stats().protocol_errors);
    }
    if let Some(e) = &h.elevenlabs {
        errors.extend(e.stats().protocol_errors);
    }
    errors
}

async fn greeting_then_two_turns(provider: Provider) {
    let (h, switch) = bridge(
        provider,
        others(provider, None),
        &format!("[agent.prompts]\n{GREETING}\n"),
        &[],
    )
    .await;
    let mut call = spec(
        &h,
        &switch,
        "turns-1",
        vec![
            CallerTurn::new("Bom dia, qual é o horário de funcionamento?"),
            CallerTurn::new("E aos sábados?"),
        ],
    );
    call.lead_in = Duration::from_millis(4200); // after the greeting
    let report = run_call(call).await;
    assert_eq!(report.error_total(), 0, "{:?}", report.errors);
    let greeting = report.greeting_first_audio_ms.expect("greeting heard");
    assert!(greeting < 400.0, "greeting started at {greeting} ms");
    assert_eq!(report.turns.len(), 2);
    for turn in &report.turns {
        assert!(turn.answer_audio_ms >= reply_ms() - 100.0, "{report:#?}");
        assert_eq!(turn.playout_gaps, 0, "{report:#?}");
    }
    assert_eq!(protocol_errors(&h), Vec::<String>::new());
    match provider {
        Provider::Gemini => {
            let stats = h.gemini.as_ref().unwrap().stats();
            assert_eq!((stats.caller_turns, stats.responses), (2, 2));
            // The greeting reached the model as the conversation so far.
            assert!(stats
                .history
                .iter()
                .any(|l| l.contains("Obrigado por ligar")));
        }
        Provider::ElevenLabs => {
            let stats = h.elevenlabs.as_ref().unwrap().stats();
            assert_eq!((stats.caller_turns, stats.answers), (2, 2));
            assert_eq!(stats.missing_pongs, 0);
        }
    }
    assert_eq!(h.fake.stats().sessions_opened, 0, "OpenAI was not used");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_greeting_then_two_turns() {
    greeting_then_two_turns(Provider::Gemini).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevenlabs_greeting_then_two_turns() {
    greeting_then_two_turns(Provider::ElevenLabs).await;
}

async fn barge_in(provider: Provider) {
    let (h, switch) = bridge(provider, others(provider, None), "", &[]).await;
    let call = spec(
        &h,
        &switch,
        "barge-1",
        vec![
            CallerTurn::new("Qual é o horário de funcionamento?"),
            CallerTurn::barging_in("Espera, só uma pergunta.", 600),
        ],
    );
    let report = run_call(call).await;
    assert_eq!(report.error_total(), 0, "{:?}", report.errors);
    let first = &report.turns[0];
    assert!(first.clear_after_barge_in_ms.is_some(), "{report:#?}");
    assert!(
        first.answer_audio_ms < reply_ms(),
        "the answer was cut: {report:#?}"
    );
    assert!(report.turns[1].answer_audio_ms > 0.0, "{report:#?}");
    assert_eq!(h.state.metrics.barge_ins.get(), 1);
    match provider {
        Provider::Gemini => assert_eq!(h.gemini.as_ref().unwrap().stats().interrupted, 1),
        Provider::ElevenLabs => {
            assert_eq!(h.elevenlabs.as_ref().unwrap().stats().interruptions, 1)
        }
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_barge_in() {
    barge_in(Provider::Gemini).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevenlabs_barge_in() {
    barge_in(Provider::ElevenLabs).await;
}

/// The four tools, each through a fake whose first answer is a call to it.
async fn every_tool(provider: Provider) {
    let knowledge = r#"
[[agent.knowledge]]
title = "Horário de funcionamento"
text = "Segunda a sexta, das 8h às 18h."
"#;
    let tools = [
        (
            "lookup_knowledge",
            r#"{"query":"horário de funcionamento"}"#,
        ),
        (
            "take_message",
            r#"{"name":"Ana","message":"Retornar a ligação"}"#,
        ),
        ("transfer_to_human", "{}"),
        ("end_call", "{}"),
    ];
    for (i, (tool, arguments)) in tools.into_iter().enumerate() {
        let mut others = others(provider, Some(tool));
        if let Some(g) = others.gemini.as_mut() {
            g.tool_call = Some((tool.into(), arguments.into()));
        }
        if let Some(e) = others.elevenlabs.as_mut() {
            e.tool_call = Some((tool.into(), arguments.into()));
        }
        let (h, switch) = bridge(
            provider,
            others,
            knowledge,
            &[(
                "VOICE_BRIDGE__AGENT__TOOLS",
                r#"["transfer_to_human", "end_call", "lookup_knowledge", "take_message"]"#,
            )],
        )
        .await;
        let call = spec(
            &h,
            &switch,
            &format!("tool-{i}"),
            vec![
                CallerTurn::new("Bom dia, uma pergunta."),
                CallerTurn::new("Alô?"),
            ],
        );
        let report = run_call(call).await;
        // What the provider got back as the tool's result.
        let result: serde_json::Value = match provider {
            Provider::Gemini => {
                let stats = h.gemini.as_ref().unwrap().stats();
                assert_eq!(stats.tool_responses, 1, "{tool}");
                stats.tool_response_payloads[0]["result"].clone()
            }
            Provider::ElevenLabs => {
                let stats = h.elevenlabs.as_ref().unwrap().stats();
                assert_eq!(stats.tool_results, 1, "{tool}");
                let message = &stats.tool_result_messages[0];
                serde_json::from_str(message["result"].as_str().unwrap()).unwrap()
            }
        };
        match tool {
            "transfer_to_human" => assert_eq!(
                report.transferred_to.as_deref(),
                Some(format!("2000 XML {DOMAIN}").as_str()),
                "{tool}"
            ),
            "end_call" => assert!(report.killed_by_bridge, "{tool}: {report:#?}"),
            _ => {
                assert_eq!(report.error_total(), 0, "{tool}: {:?}", report.errors);
                assert!(
                    report.turns[0].answer_audio_ms >= reply_ms() - 100.0,
                    "{tool}"
                );
            }
        }
        match tool {
            "lookup_knowledge" => {
                assert_eq!(result["results"][0]["title"], "Horário de funcionamento")
            }
            "take_message" => assert_eq!(result["ok"], true),
            _ => assert_eq!(result["ok"], true, "{tool}: {result}"),
        }
        assert_eq!(protocol_errors(&h), Vec::<String>::new(), "{tool}");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_every_tool() {
    every_tool(Provider::Gemini).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevenlabs_every_tool() {
    every_tool(Provider::ElevenLabs).await;
}

async fn survives_a_garbage_frame(provider: Provider) {
    let (h, switch) = bridge(provider, others(provider, None), "", &[]).await;
    match provider {
        Provider::Gemini => h
            .gemini
            .as_ref()
            .unwrap()
            .set_fault(fake_gemini::Fault::GarbageFrame),
        Provider::ElevenLabs => h
            .elevenlabs
            .as_ref()
            .unwrap()
            .set_fault(fake_elevenlabs::Fault::GarbageFrame),
    }
    let call = spec(&h, &switch, "garbage-1", vec![CallerTurn::new("Bom dia!")]);
    let report = run_call(call).await;
    assert_eq!(report.error_total(), 0, "{:?}", report.errors);
    assert!(
        report.turns[0].answer_audio_ms >= reply_ms() - 100.0,
        "{report:#?}"
    );
    assert!(
        h.state.metrics.provider_errors.get() >= 1,
        "the bad frame was counted"
    );
    assert_eq!(
        h.state.metrics.provider_failovers.get(),
        0,
        "and did not end the session"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_survives_a_garbage_frame() {
    survives_a_garbage_frame(Provider::Gemini).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevenlabs_survives_a_garbage_frame() {
    survives_a_garbage_frame(Provider::ElevenLabs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_provider_falls_back_to_the_next_one() {
    // Gemini refuses every connection: the reconnect fails too, and ElevenLabs takes over.
    let mut others = others(Provider::Gemini, None);
    others.elevenlabs = Some(elevenlabs(None));
    let (h, switch) = bridge(
        Provider::Gemini,
        others,
        "",
        &[(
            "VOICE_BRIDGE__AGENT__FAILOVER__PROVIDERS",
            r#"["elevenlabs_agent"]"#,
        )],
    )
    .await;
    h.gemini
        .as_ref()
        .unwrap()
        .set_fault(fake_gemini::Fault::RefuseUpgrade(503));
    let report = run_call(spec(
        &h,
        &switch,
        "fallback-1",
        vec![CallerTurn::new("Bom dia!")],
    ))
    .await;
    assert_eq!(report.error_total(), 0, "{:?}", report.errors);
    assert!(
        report.turns[0].answer_audio_ms >= reply_ms() - 100.0,
        "{report:#?}"
    );
    assert_eq!(h.elevenlabs.as_ref().unwrap().stats().answers, 1);
    assert_eq!(
        h.state.metrics.provider_failovers.get(),
        2,
        "reconnect, then fallback"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_dropping_mid_call_falls_back_with_dead_air_under_2s() {
    // OpenAI thinks 1.5 s; its session drops 0.5 s into that and the reconnect is refused,
    // so Gemini, the fallback, answers the caller's last words from the history.
    let openai = voice_sim::fake_openai::FakeOpenAiConfig {
        think_ms: 1500,
        caller_transcript: "Qual é o horário?".into(),
        ..e2e_tests::fake_answering(REPLY)
    };
    let (h, switch) = bridge_with(
        openai,
        Provider::Gemini,
        others(Provider::Gemini, None),
        "",
        &[
            ("VOICE_BRIDGE__AGENT__PROVIDER", "openai_realtime"),
            (
                "VOICE_BRIDGE__AGENT__FAILOVER__PROVIDERS",
                r#"["gemini_live"]"#,
            ),
        ],
    )
    .await;
    let utterance_ms =
        voice_sim::speech::synthesize("Qual é o horário?", voice_sim::speech::PT_BR, 16000)
            .unwrap()
            .len() as u64
            / 16;
    // lead-in 500 ms + speech + 500 ms of server VAD silence + 500 ms of thinking.
    let fault_at = 500 + utterance_ms + 1000;
    h.fake.set_fault_sequence(vec![
        voice_sim::fake_openai::Fault::CloseAfterMs(fault_at),
        voice_sim::fake_openai::Fault::RefuseUpgrade(503),
    ]);
    let report: CallReport = run_call(spec(
        &h,
        &switch,
        "drop-2",
        vec![CallerTurn::new("Qual é o horário?")],
    ))
    .await;
    let turn = &report.turns[0];
    let first_audio = turn.first_audio_ms.expect("the caller heard something");
    let dead_air = first_audio - fault_at as f64;
    assert!(
        (0.0..2000.0).contains(&dead_air),
        "first audio {first_audio} ms, fault at {fault_at} ms: dead air {dead_air} ms"
    );
    let gemini = h.gemini.as_ref().unwrap().stats();
    assert_eq!(
        gemini.responses, 1,
        "Gemini answered the caller's last words"
    );
    assert!(turn.answer_audio_ms >= reply_ms() - 100.0, "{report:#?}");
    assert_eq!(h.state.metrics.provider_failovers.get(), 2);
    h.stop().await;
}

/// A greeting configured as text only: the agent says it first, whatever the provider.
async fn text_greeting(kind: &str) {
    const TEXT: &str = "Olá, aqui é a assistente da clínica.";
    let others = OtherFakes {
        gemini: Some(gemini(None)),
        elevenlabs: Some(elevenlabs(None)),
    };
    let (h, switch) = bridge(
        Provider::Gemini,
        others,
        &format!("[agent.prompts]\ngreeting = {{ file = \"\", text = \"{TEXT}\" }}\n"),
        &[("VOICE_BRIDGE__AGENT__PROVIDER", kind)],
    )
    .await;
    let mut call = spec(
        &h,
        &switch,
        "text-greeting-1",
        vec![CallerTurn::new("Bom dia!")],
    );
    call.lead_in = Duration::from_secs(5); // the caller waits to be greeted
    let report = run_call(call).await;
    assert_eq!(report.error_total(), 0, "{:?}", report.errors);
    assert!(
        report.greeting_audio_ms >= reply_ms() - 100.0,
        "{kind}: {report:#?}"
    );
    assert!(report.turns[0].answer_audio_ms > 0.0, "{kind}: {report:#?}");
    match kind {
        "openai_realtime" => {
            let items = h.fake.stats().client_events;
            assert_eq!(
                items.iter().filter(|e| *e == "response.create").count(),
                1,
                "{items:?}"
            );
        }
        "gemini_live" => {
            let stats = h.gemini.as_ref().unwrap().stats();
            assert_eq!(
                stats.caller_turns, 2,
                "the greeting request and the caller's turn"
            );
        }
        _ => {
            let stats = h.elevenlabs.as_ref().unwrap().stats();
            assert_eq!(
                stats.init_overrides.unwrap()["agent"]["first_message"],
                TEXT
            );
        }
    }
    assert_eq!(protocol_errors(&h), Vec::<String>::new());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_text_greeting() {
    text_greeting("openai_realtime").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_text_greeting() {
    text_greeting("gemini_live").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevenlabs_text_greeting() {
    text_greeting("elevenlabs_agent").await;
}
