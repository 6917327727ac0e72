//! The engine against the protocol fakes over real sockets: Deepgram (pre-recorded) and
//! the OpenAI audio API for STT, two chat models, ElevenLabs and OpenAI speech for TTS.

use voice_core::agent::Role;
use voice_core::providers::catalog::{LlmKind, ProviderSettings, SttKind, TtsKind};
use voice_sim::fake_deepgram::{self, FakeDeepgram, FakeDeepgramConfig};
use voice_sim::fake_elevenlabs_tts::{self, FakeElevenLabsTts, FakeElevenLabsTtsConfig};
use voice_sim::fake_llm::{self, FakeLlm, FakeLlmConfig, ScriptedCall, ToolRule};
use voice_sim::fake_openai_audio::{FakeOpenAiAudio, FakeOpenAiAudioConfig};

use super::*;

const HEARD: &str = "Eu gostaria de marcar uma consulta.";
const REPLY: &str = "Claro. Para qual dia você prefere?";
const BACKUP_REPLY: &str = "Posso ajudar. Qual dia seria melhor?";

struct Fakes {
    deepgram: FakeDeepgram,
    audio: FakeOpenAiAudio,
    llm: FakeLlm,
    llm_backup: FakeLlm,
    tts: FakeElevenLabsTts,
}

fn llm_config(reply: &str, rules: Vec<ToolRule>) -> FakeLlmConfig {
    FakeLlmConfig {
        reply_text: reply.into(),
        tool_rules: rules,
        models: Vec::new(),
        first_token_ms: 0,
        token_interval_ms: 0,
        ..FakeLlmConfig::default()
    }
}

impl Fakes {
    /// Every STT hears `heard`; the primary LLM answers `REPLY` (or by `rules`), the
    /// backup `BACKUP_REPLY`.
    async fn start(heard: &str, rules: Vec<ToolRule>) -> Fakes {
        Fakes {
            deepgram: FakeDeepgram::start(FakeDeepgramConfig {
                utterances: vec![heard.into()],
                final_delay_ms: 0,
                ..FakeDeepgramConfig::default()
            })
            .await
            .unwrap(),
            audio: FakeOpenAiAudio::start(FakeOpenAiAudioConfig {
                transcripts: vec![heard.into()],
                transcribe_delay_ms: 0,
                speech_first_byte_ms: 0,
                speech_realtime_factor: 50.0,
                ..FakeOpenAiAudioConfig::default()
            })
            .await
            .unwrap(),
            llm: FakeLlm::start(llm_config(REPLY, rules)).await.unwrap(),
            llm_backup: FakeLlm::start(llm_config(BACKUP_REPLY, Vec::new()))
                .await
                .unwrap(),
            tts: FakeElevenLabsTts::start(FakeElevenLabsTtsConfig {
                first_byte_ms: 0,
                realtime_factor: 50.0,
                ..FakeElevenLabsTtsConfig::default()
            })
            .await
            .unwrap(),
        }
    }

    fn providers(&self) -> ProviderSettings {
        toml::from_str(&format!(
            r#"
[deepgram]
url = "{deepgram}"
api_key = "{deepgram_key}"

[openai_transcribe]
url = "{transcriptions}"
api_key = "{audio_key}"

[openai_speech]
url = "{speech}"
api_key = "{audio_key}"

[openai_chat]
url = "{llm}"
api_key = "{llm_key}"

[groq]
url = "{llm_backup}"
api_key = "{llm_backup_key}"

[elevenlabs_tts]
url = "{tts}"
voice_id = "{voice}"
api_key = "{tts_key}"
"#,
            deepgram = self.deepgram.url(),
            deepgram_key = self.deepgram.api_key(),
            transcriptions = self.audio.transcriptions_url(),
            speech = self.audio.speech_url(),
            audio_key = self.audio.api_key(),
            llm = self.llm.chat_completions_url(),
            llm_key = self.llm.api_key(),
            llm_backup = self.llm_backup.chat_completions_url(),
            llm_backup_key = self.llm_backup.api_key(),
            tts = self.tts.url(),
            voice = self.tts.voice_id(),
            tts_key = self.tts.api_key(),
        ))
        .unwrap()
    }

    fn engine(&self, settings: EngineSettings) -> TurnEngine {
        TurnEngine::new(&self.providers(), settings).unwrap()
    }
}

/// OpenAI transcription, the primary LLM then the backup (Groq), ElevenLabs then OpenAI
/// speech; 8 kHz out; transfers to 1000.
fn settings() -> EngineSettings {
    EngineSettings {
        stt: vec![SttKind::OpenaiTranscribe],
        llm: vec![LlmKind::OpenaiChat, LlmKind::Groq],
        tts: vec![TtsKind::ElevenlabsTts, TtsKind::OpenaiSpeech],
        stt_timeout_ms: 3000,
        llm_timeout_ms: 3000,
        tts_timeout_ms: 3000,
        handoff_target: "1000".into(),
        ..EngineSettings::default()
    }
}

/// The caller saying something, with `pad_ms` of silence either side, at 16 kHz.
fn caller_speech(pad_ms: usize) -> Vec<i16> {
    let speech = voice_sim::speech::synthesize(
        "Eu gostaria de marcar uma consulta",
        voice_sim::speech::PT_BR,
        16_000,
    )
    .expect("espeak-ng");
    let pad = vec![0i16; pad_ms * 16];
    [pad.as_slice(), speech.as_slice(), pad.as_slice()].concat()
}

fn assert_duration_near(audio: &[i16], expected: usize, what: &str) {
    let (got, want) = (audio.len() as f64, expected as f64);
    assert!(
        (got - want).abs() <= want * 0.15 + 800.0,
        "{what}: {got} samples, expected about {want}"
    );
}

#[tokio::test]
async fn a_full_turn_is_transcribed_answered_and_spoken_at_8k() {
    let fakes = Fakes::start(HEARD, Vec::new()).await;
    let engine = fakes.engine(settings());
    let mut conv = Conversation::default();
    let input = caller_speech(1000);
    let out = engine.turn(&mut conv, &input, 16_000).await.unwrap();
    assert_eq!(out.caller_text, HEARD);
    assert_eq!(out.reply_text, REPLY);
    assert_eq!(out.action, Action::Continue);
    // The ElevenLabs fake's voice for the reply, at 8 kHz.
    let expected = fakes.tts.render(REPLY, 8000).unwrap();
    assert_duration_near(&out.audio, expected.len(), "reply audio");
    // STT got the speech without most of the 2 s of silence around it.
    let uploaded_ms = fakes.audio.stats().audio_ms_received;
    let input_ms = input.len() as u64 / 16;
    assert!(
        uploaded_ms < input_ms - 1200 && uploaded_ms > input_ms - 2000,
        "uploaded {uploaded_ms} ms of {input_ms}"
    );
    let request = &fakes.llm.stats().accepted[0];
    assert_eq!(request.texts("user"), vec![HEARD.to_string()]);
    assert!(request.system.contains("phone call"));
    assert_eq!(
        request.tools,
        vec!["transfer_to_human", "end_call", "take_message"],
        "no lookup_knowledge without a knowledge lookup"
    );
    assert_eq!(conv.turns, 1);
    assert_eq!(
        conv.history,
        vec![(Role::Caller, HEARD.into()), (Role::Agent, REPLY.into())]
    );
    assert!(out.timings.tts_ms > 0 && out.timings.trim_ms < 1000);
}

#[tokio::test]
async fn deepgram_pre_recorded_and_openai_speech_work_too_and_the_greeting_skips_stt_and_llm() {
    let fakes = Fakes::start(HEARD, Vec::new()).await;
    let engine = fakes.engine(EngineSettings {
        stt: vec![SttKind::Deepgram],
        tts: vec![TtsKind::OpenaiSpeech],
        greeting: "Olá, clínica Sorriso.".into(),
        ..settings()
    });
    let mut conv = Conversation::default();
    let hello = engine.greeting(&mut conv).await.unwrap();
    assert_eq!(hello.reply_text, "Olá, clínica Sorriso.");
    assert!(!hello.audio.is_empty());
    assert_eq!(fakes.llm.stats().requests, 0);
    assert_eq!(fakes.deepgram.stats().prerecorded_requests, 0);

    // 44.1 kHz in (resampled for the VAD and STT), 8 kHz out.
    let input16 = caller_speech(500);
    let mut r = Resampler::new(16_000, 44_100).unwrap();
    let mut input = Vec::new();
    r.process(&input16, &mut input);
    r.flush(&mut input);
    let out = engine.turn(&mut conv, &input, 44_100).await.unwrap();
    assert_eq!(out.caller_text, HEARD);
    assert_eq!(out.reply_text, REPLY);
    assert_eq!(fakes.deepgram.stats().prerecorded_requests, 1);
    let stats = fakes.audio.stats();
    // One request per sentence.
    assert_eq!(
        stats.speech_texts.join(" "),
        format!("Olá, clínica Sorriso. {REPLY}")
    );
    assert_eq!(stats.transcriptions, 0);
    // OpenAI speech is 24 kHz: the reply's length at 8 kHz is a third of it.
    let said_ms = stats.audio_ms_sent;
    let greeting_and_reply = (hello.audio.len() + out.audio.len()) as u64 / 8;
    assert!(
        greeting_and_reply.abs_diff(said_ms) < said_ms / 10 + 100,
        "{greeting_and_reply} ms out of {said_ms} ms spoken"
    );
    // The greeting is in the history the LLM saw.
    let request = &fakes.llm.stats().accepted[0];
    assert_eq!(
        request.texts("assistant"),
        vec!["Olá, clínica Sorriso.".to_string()]
    );
}

#[tokio::test]
async fn silence_gets_the_repeat_line_without_stt_or_llm() {
    let fakes = Fakes::start(HEARD, Vec::new()).await;
    let engine = fakes.engine(settings());
    let mut conv = Conversation::default();
    // Low noise, well under anything voiced.
    let noise: Vec<i16> = (0..24_000).map(|i| ((i * 7919) % 61) as i16 - 30).collect();
    let out = engine.turn(&mut conv, &noise, 8000).await.unwrap();
    assert_eq!(out.caller_text, "");
    assert_eq!(out.reply_text, EngineSettings::default().no_speech_reply);
    assert_eq!(out.action, Action::Continue);
    assert!(!out.audio.is_empty());
    assert_eq!(fakes.audio.stats().transcriptions, 0);
    assert_eq!(fakes.llm.stats().requests, 0);
    assert_eq!((out.timings.stt_ms, out.timings.llm_ms), (0, 0));
    assert!(conv.history.is_empty());
    assert_eq!(conv.turns, 1);
    // Empty audio is silence, not an error.
    let out = engine.turn(&mut conv, &[], 8000).await.unwrap();
    assert_eq!(out.caller_text, "");
}

#[tokio::test]
async fn transfer_to_human_and_end_call_set_the_action() {
    let rules = vec![
        ToolRule {
            when_user_says: "atendente".into(),
            say_first: "Vou transferir você agora.".into(),
            calls: vec![ScriptedCall::new(
                "transfer_to_human",
                r#"{"reason":"pediu"}"#,
            )],
        },
        ToolRule {
            when_user_says: "tchau".into(),
            say_first: String::new(),
            calls: vec![ScriptedCall::new("end_call", "{}")],
        },
    ];
    let fakes = Fakes::start("Quero falar com um atendente.", rules.clone()).await;
    let engine = fakes.engine(settings());
    let mut conv = Conversation::default();
    let out = engine
        .turn(&mut conv, &caller_speech(300), 16_000)
        .await
        .unwrap();
    assert_eq!(
        out.action,
        Action::Transfer {
            target: "1000".into()
        }
    );
    assert_eq!(out.reply_text, "Vou transferir você agora.");
    assert_eq!(
        fakes.llm.stats().requests,
        1,
        "no second round after a transfer"
    );
    assert_eq!(conv.tool_calls[0].name, "transfer_to_human");
    assert_eq!(
        serde_json::to_value(&out.action).unwrap(),
        serde_json::json!({"action": "transfer", "target": "1000"})
    );

    let fakes = Fakes::start("Obrigado, tchau.", rules).await;
    let engine = fakes.engine(settings());
    let out = engine
        .turn(&mut Conversation::default(), &caller_speech(300), 16_000)
        .await
        .unwrap();
    assert_eq!(out.action, Action::Hangup);
    assert_eq!(out.reply_text, EngineSettings::default().goodbye);
    assert!(!out.audio.is_empty());
}

#[tokio::test]
async fn take_message_is_stored_and_the_model_told_saved() {
    let rules = vec![ToolRule {
        when_user_says: "recado".into(),
        say_first: String::new(),
        calls: vec![ScriptedCall::new(
            "take_message",
            r#"{"name":"Ana Souza","phone":"11999998888","message":"Retornar sobre o exame"}"#,
        )],
    }];
    let fakes = Fakes::start("Quero deixar um recado.", rules).await;
    let engine = fakes.engine(settings());
    let mut conv = Conversation::default();
    let out = engine
        .turn(&mut conv, &caller_speech(300), 16_000)
        .await
        .unwrap();
    assert_eq!(
        conv.messages,
        vec![TakenMessage {
            name: "Ana Souza".into(),
            number: "11999998888".into(),
            message: "Retornar sobre o exame".into(),
            turn: 1,
        }]
    );
    assert_eq!(conv.tool_calls[0].result, r#"{"status":"saved"}"#);
    let stats = fakes.llm.stats();
    assert_eq!(stats.accepted.len(), 2);
    assert_eq!(
        stats.accepted[1].texts("tool"),
        vec![r#"{"status":"saved"}"#.to_string()]
    );
    assert!(out.reply_text.contains("saved"), "{}", out.reply_text);
    assert_eq!(out.action, Action::Continue);
}

#[tokio::test]
async fn lookup_knowledge_asks_the_engine_s_lookup() {
    let rules = vec![ToolRule {
        when_user_says: "horário".into(),
        say_first: String::new(),
        calls: vec![ScriptedCall::new(
            "lookup_knowledge",
            r#"{"query":"horário"}"#,
        )],
    }];
    let fakes = Fakes::start("Qual o horário de funcionamento?", rules).await;
    let engine = fakes
        .engine(settings())
        .with_knowledge(Arc::new(|q: String| {
            Box::pin(async move { format!("{q}: das 8h às 18h") })
        }));
    let out = engine
        .turn(&mut Conversation::default(), &caller_speech(300), 16_000)
        .await
        .unwrap();
    assert!(
        out.reply_text.contains("horário: das 8h às 18h"),
        "{}",
        out.reply_text
    );
}

#[tokio::test]
async fn each_stage_falls_back_to_its_next_provider() {
    let fakes = Fakes::start(HEARD, Vec::new()).await;
    fakes.deepgram.set_fault(fake_deepgram::Fault::Refuse(401));
    fakes.llm.set_fault(fake_llm::Fault::Status(500));
    fakes
        .tts
        .set_fault(fake_elevenlabs_tts::Fault::RefuseUpgrade(503));
    let engine = fakes.engine(EngineSettings {
        stt: vec![SttKind::Deepgram, SttKind::OpenaiTranscribe],
        ..settings()
    });
    let out = engine
        .turn(&mut Conversation::default(), &caller_speech(300), 16_000)
        .await
        .unwrap();
    assert_eq!(out.caller_text, HEARD);
    assert_eq!(out.reply_text, BACKUP_REPLY);
    assert!(!out.audio.is_empty());
    assert_eq!(fakes.deepgram.stats().refused, 1);
    assert_eq!(fakes.audio.stats().transcriptions, 1);
    assert_eq!(fakes.llm.stats().refused_by_fault, 1);
    assert_eq!(fakes.llm_backup.stats().accepted.len(), 1);
    assert_eq!(fakes.tts.stats().refused_upgrades, 1);
    assert_eq!(fakes.audio.stats().speech_texts.join(" "), BACKUP_REPLY);
}

#[tokio::test]
async fn a_stage_whose_providers_all_fail_is_a_provider_error() {
    let fakes = Fakes::start(HEARD, Vec::new()).await;
    fakes.llm.set_fault(fake_llm::Fault::Status(503));
    fakes.llm_backup.set_fault(fake_llm::Fault::DropAfter(1));
    let engine = fakes.engine(settings());
    let mut conv = Conversation::default();
    let err = engine
        .turn(&mut conv, &caller_speech(300), 16_000)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Providers(_)), "{err:?}");
    assert_eq!(err.http_status(), 503);
    assert!(conv.history.is_empty(), "a failed turn leaves no history");
    assert_eq!(fakes.tts.stats().sessions, 0);
}

#[tokio::test]
async fn a_forbidden_phrase_is_replaced_by_the_safe_reply() {
    let fakes = Fakes::start(HEARD, Vec::new()).await;
    let mut s = settings();
    s.guard.forbidden = vec!["qual dia".into(), "Para qual dia".into()];
    let engine = fakes.engine(s.clone());
    let out = engine
        .turn(&mut Conversation::default(), &caller_speech(300), 16_000)
        .await
        .unwrap();
    assert_eq!(out.reply_text, s.guard.safe_reply);
    assert_eq!(out.action, Action::Continue);

    s.guard.handoff_on_violation = true;
    let engine = fakes.engine(s);
    let out = engine
        .turn(&mut Conversation::default(), &caller_speech(300), 16_000)
        .await
        .unwrap();
    assert_eq!(
        out.action,
        Action::Transfer {
            target: "1000".into()
        }
    );
}

#[tokio::test]
async fn the_second_turn_s_request_holds_the_first_exchange() {
    let fakes = Fakes::start(HEARD, Vec::new()).await;
    let engine = fakes.engine(settings());
    let mut conv = Conversation::default();
    engine
        .turn(&mut conv, &caller_speech(300), 16_000)
        .await
        .unwrap();
    // The HTTP layer may keep the conversation as JSON between turns.
    let mut conv: Conversation =
        serde_json::from_str(&serde_json::to_string(&conv).unwrap()).unwrap();
    engine
        .turn(&mut conv, &caller_speech(300), 16_000)
        .await
        .unwrap();
    let second = &fakes.llm.stats().accepted[1];
    assert_eq!(
        second.texts("user"),
        vec![HEARD.to_string(), HEARD.to_string()]
    );
    assert_eq!(second.texts("assistant"), vec![REPLY.to_string()]);
    assert_eq!(conv.turns, 2);
    assert_eq!(conv.history.len(), 4);
}

#[tokio::test]
async fn bad_audio_and_bad_settings_are_refused() {
    let fakes = Fakes::start(HEARD, Vec::new()).await;
    let engine = fakes.engine(EngineSettings {
        max_turn_audio_ms: 2000,
        ..settings()
    });
    let mut conv = Conversation::default();
    let err = engine.turn(&mut conv, &[0; 800], 4000).await.unwrap_err();
    assert!(matches!(err, EngineError::BadAudio(_)), "{err:?}");
    assert_eq!(err.http_status(), 400);
    let err = engine
        .turn(&mut conv, &[0; 48_000], 16_000)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::BadAudio(_)), "{err:?}");
    assert_eq!(fakes.audio.stats().speech_texts.len(), 0);

    let bad = TurnEngine::new(
        &fakes.providers(),
        EngineSettings {
            llm: Vec::new(),
            ..settings()
        },
    );
    assert!(matches!(bad, Err(EngineError::Config(_))));
}

#[tokio::test]
async fn a_provider_too_slow_for_its_stage_timeout_hands_over_to_the_next() {
    let fakes = Fakes::start(HEARD, Vec::new()).await;
    fakes.deepgram.set_fault(fake_deepgram::Fault::Hang);
    fakes.llm.set_fault(fake_llm::Fault::HangAfterFirstToken);
    fakes
        .tts
        .set_fault(fake_elevenlabs_tts::Fault::HangAfterChunks(1));
    let engine = fakes.engine(EngineSettings {
        stt: vec![SttKind::Deepgram, SttKind::OpenaiTranscribe],
        stt_timeout_ms: 300,
        llm_timeout_ms: 300,
        tts_timeout_ms: 500,
        ..settings()
    });
    let started = Instant::now();
    let out = engine
        .turn(&mut Conversation::default(), &caller_speech(300), 16_000)
        .await
        .unwrap();
    assert_eq!(out.caller_text, HEARD);
    assert_eq!(out.reply_text, BACKUP_REPLY);
    assert_eq!(fakes.audio.stats().speech_texts.join(" "), BACKUP_REPLY);
    // The audio is the backup's whole reply, not the hung provider's first chunk.
    let stats = fakes.audio.stats();
    assert!(
        (out.audio.len() as u64 / 8).abs_diff(stats.audio_ms_sent) < stats.audio_ms_sent / 10 + 100,
        "{} samples for {} ms",
        out.audio.len(),
        stats.audio_ms_sent
    );
    assert!(out.timings.stt_ms >= 300 && out.timings.llm_ms >= 300 && out.timings.tts_ms >= 500);
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn quiet_speech_that_stt_hears_as_nothing_gets_the_repeat_line() {
    let fakes = Fakes::start(HEARD, Vec::new()).await;
    let engine = fakes.engine(settings());
    // Voiced enough for the VAD, too quiet for the fake's transcriber (RMS under 500).
    let quiet: Vec<i16> = caller_speech(300).iter().map(|s| s / 30).collect();
    let out = engine
        .turn(&mut Conversation::default(), &quiet, 16_000)
        .await
        .unwrap();
    assert_eq!(fakes.audio.stats().transcriptions, 1, "STT was asked");
    assert_eq!(out.caller_text, "");
    assert_eq!(out.reply_text, EngineSettings::default().no_speech_reply);
    assert_eq!(fakes.llm.stats().requests, 0);
}

/// The HTTP layer runs turns in axum handlers: the engine is shared and its futures Send.
#[tokio::test]
async fn the_engine_is_shareable_and_its_turns_are_send() {
    fn shared<T: Send + Sync + 'static>() {}
    fn send<T: Send>(_: &T) {}
    shared::<TurnEngine>();
    let engine = Fakes::start(HEARD, Vec::new()).await.engine(settings());
    let mut conv = Conversation::default();
    let turn = engine.turn(&mut conv, &[], 8000);
    send(&turn);
    drop(turn);
    let greeting = engine.greeting(&mut conv);
    send(&greeting);
}

#[tokio::test]
async fn a_tool_call_with_bad_arguments_is_answered_with_the_error_not_run() {
    let rules = vec![ToolRule {
        when_user_says: "recado".into(),
        say_first: String::new(),
        calls: vec![ScriptedCall::new("take_message", r#"{"name":"Ana"}"#)],
    }];
    let fakes = Fakes::start("Quero deixar um recado.", rules).await;
    let engine = fakes.engine(settings());
    let mut conv = Conversation::default();
    let out = engine
        .turn(&mut conv, &caller_speech(300), 16_000)
        .await
        .unwrap();
    assert!(conv.messages.is_empty());
    assert!(conv.tool_calls[0].result.contains("message is required"));
    let told = fakes.llm.stats().accepted[1].texts("tool");
    assert!(told[0].contains("message is required"), "{told:?}");
    assert_eq!(out.action, Action::Continue);
}

#[tokio::test]
async fn concurrent_turns_share_one_engine() {
    let fakes = Fakes::start(HEARD, Vec::new()).await;
    let engine = Arc::new(fakes.engine(settings()));
    let input = Arc::new(caller_speech(300));
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (engine, input) = (engine.clone(), input.clone());
            tokio::spawn(async move {
                let mut conv = Conversation::default();
                engine
                    .turn(&mut conv, &input, 16_000)
                    .await
                    .map(|o| (o, conv))
            })
        })
        .collect();
    for call in calls {
        let (out, conv) = call.await.unwrap().unwrap();
        assert_eq!(out.reply_text, REPLY);
        assert_eq!(conv.history.len(), 2);
    }
    assert_eq!(fakes.llm.stats().accepted.len(), 20);
    assert_eq!(fakes.audio.stats().transcriptions, 20);
}
