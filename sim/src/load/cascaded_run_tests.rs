//! A short cascaded load run, as `voice-sim load --provider cascaded --config
//! sim/configs/cascaded.toml` does it, but with the bridge in this process (configured from
//! the same profile and the same environment), so no prebuilt binary is needed.

use std::path::Path;
use std::time::Duration;

use tokio::sync::oneshot;

use super::bridge_facts::tempdir;
use super::*;
use crate::fake_openai::FakeOpenAiConfig;
use crate::freeswitch::{CallSpec, CallerTurn, ProviderDelays};

const REPLY: &str = "Claro, pode falar.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cascaded_run_answers_without_errors_and_the_bridge_facts_are_read_back() {
    let recordings = tempdir::Dir::new("cascaded-run");
    let mut template = CallSpec::new(String::new());
    template.script = vec![
        // No comma: a pause inside an utterance may end the turn there.
        CallerTurn::new("Quero marcar uma consulta."),
        CallerTurn::new("Pode ser amanhã de manhã?"),
    ];
    let delays = CascadedDelays::default();
    let options = CascadedOptions {
        delays,
        utterances: template.script.iter().map(|t| t.text.clone()).collect(),
    };
    let common = FakeOpenAiConfig {
        reply_text: REPLY.into(),
        ..FakeOpenAiConfig::default()
    };
    let fake = RunningFake::start(ProviderChoice::Cascaded, common, &options)
        .await
        .unwrap();
    let mut env = fake.bridge_env();
    env.push((
        "VOICE_BRIDGE__RECORDING__DIR".into(),
        recordings.path().display().to_string(),
    ));
    env.push(("VOICE_BRIDGE__SERVER__LISTEN".into(), "127.0.0.1:0".into()));
    env.push((
        "VOICE_BRIDGE__SERVER__SHUTDOWN_GRACE_SECS".into(),
        "2".into(),
    ));
    let profile_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/cascaded.toml");
    let profile = BridgeProfile::read(Some(&profile_file), &env, &template.domain).unwrap();
    assert!(profile.local_turns);
    assert_eq!(profile.recordings.as_deref(), Some(recordings.path()));

    let config =
        voice_bridge::config::BridgeConfig::from_file_and_env(&profile_file, &env).unwrap();
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .unwrap();
    template.bridge = format!("ws://{}", listener.local_addr().unwrap());
    let state = voice_bridge::server::state(config).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(voice_bridge::server::serve(
        listener,
        state.clone(),
        async move {
            let _ = stopped.await;
        },
    ));

    template.delays = ProviderDelays {
        vad_silence_ms: 0,
        think_ms: delays.total_ms() as u32,
    };
    let result = run_load(LoadSpec {
        calls: 2,
        call_duration: Duration::from_secs(5),
        ramp: Duration::from_millis(200),
        template,
        bridge_pid: None,
        provider: None,
        cascaded: Some(delays),
        progress: false,
    })
    .await;
    let seen = fake.summary();
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    if let Some(recorders) = state.recorders.clone() {
        tokio::task::spawn_blocking(move || recorders.drain())
            .await
            .unwrap();
    }

    let s = &result.summary;
    let errors: Vec<_> = result.reports.iter().flat_map(|r| &r.errors).collect();
    assert_eq!((s.errors, s.completed), (0, 2), "{errors:?}; fakes: {seen}");
    assert!(s.turns >= 2, "{} turns answered; fakes: {seen}", s.turns);
    assert_eq!(s.turn_detection, Some(crate::report::TurnDetection::Client));
    assert_eq!(
        (s.subtracted_delay_ms, s.cascaded_delays),
        (570, Some(delays))
    );
    let line = s.turns_line();
    assert!(
        line.contains("570 ms STT final + LLM first token + TTS first byte"),
        "{line}"
    );
    // Every answer went through the three fakes, which saw no mistake.
    assert!(seen["stt"]["finals"].as_u64() >= Some(2), "{seen}");
    assert!(seen["llm"]["streams"].as_u64() >= Some(2), "{seen}");
    assert!(seen["tts"]["generations"].as_u64() >= Some(2), "{seen}");
    for stage in ["stt", "tts"] {
        assert_eq!(seen[stage]["protocol_errors"], 0, "{seen}");
        assert_eq!(seen[stage]["refused"], 0, "{seen}");
    }
    assert_eq!(seen["llm"]["rejections"], 0, "{seen}");

    let turns = read_bridge_turns(recordings.path(), &result.reports, delays.total_ms());
    println!("{}", s.turns_line());
    println!("{}", turns.line(recordings.path()));
    assert_eq!((turns.calls, turns.unreadable), (2, 0), "{turns:?}");
    // The bridge counts a turn when its first frame leaves, before the caller hears it.
    assert!(turns.turns >= s.turns, "{turns:?}");
    assert_eq!(
        turns.decision_ms.count, turns.turns,
        "local turns: {turns:?}"
    );
    // Each answered turn has both spans (an answer started early on a confident STT final
    // may be ready before the decision, so no lower bound holds for every turn).
    assert_eq!(
        turns.decided_to_first_frame_ms.count, turns.turns,
        "{turns:?}"
    );
    assert_eq!(turns.pipeline_overhead_ms.count, turns.turns, "{turns:?}");
    // Every answer heard is the bridge's answer to one of its turns.
    assert_eq!(turns.paired, s.turns, "{turns:?}");
}
