//! The cascaded agent end to end: a simulated call through the bridge (local VAD + Smart
//! Turn) to fake Deepgram, fake chat models and fake ElevenLabs / OpenAI audio. Each
//! fallback step is exercised by a fault in the primary provider; the time from the end of
//! the caller's speech to the first answer audio is printed for each (measured, not
//! asserted: figures come from the load tool).

use std::time::{Duration, Instant};

use e2e_tests::cascaded::{CascadedFakes, CascadedScript};
use e2e_tests::{raw, Harness};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use voice_sim::fake_llm::{ScriptedCall, ToolRule};
use voice_sim::speech::{synthesize, PT_BR};

const RATE: u32 = 16000;
const QUESTION: &str = "Qual é o horário de funcionamento?";
const REPLY: &str = "Nosso horário é de segunda a sexta, das oito às dezoito horas. Posso ajudar em mais alguma coisa?";

/// What the caller heard.
struct Heard {
    /// End of the caller's speech → first answer audio.
    first_audio_ms: Option<f64>,
    audio_bytes: usize,
    cleared: bool,
}

/// Streams the question, then silence, for `listen_ms` after the answer starts (or 12 s
/// without one). With `interrupt_after_ms`, the caller speaks again that long into the
/// answer.
async fn call(h: &Harness, id: &str, listen_ms: u64, interrupt_after_ms: Option<u64>) -> Heard {
    let mut ws = h.open_call(id).await.unwrap();
    let question = synthesize(QUESTION, PT_BR, RATE).unwrap();
    let interruption = synthesize("Espera, eu queria outra coisa.", PT_BR, RATE).unwrap();
    let mut speech = raw::frames(&question, RATE, 0).into_iter();
    let mut barge = raw::frames(&interruption, RATE, 0).into_iter();
    let silence = vec![0u8; (RATE / 50 * 2) as usize];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut end_of_speech = None;
    let mut first_audio: Option<Instant> = None;
    let mut heard = Heard {
        first_audio_ms: None,
        audio_bytes: 0,
        cleared: false,
    };
    let deadline = Instant::now() + Duration::from_secs(12);
    while Instant::now() < deadline
        && first_audio.is_none_or(|t| t.elapsed() < Duration::from_millis(listen_ms))
    {
        tick.tick().await;
        let interrupting = matches!((interrupt_after_ms, first_audio), (Some(at), Some(t)) if t.elapsed() >= Duration::from_millis(at));
        let frame = match speech.next() {
            Some(f) => f,
            None if interrupting => barge.next().unwrap_or_else(|| silence.clone()),
            None => {
                end_of_speech.get_or_insert_with(Instant::now);
                silence.clone()
            }
        };
        ws.send(Message::Binary(frame.into())).await.unwrap();
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::ZERO, ws.next()).await {
            match msg.unwrap() {
                Message::Binary(b) => {
                    heard.audio_bytes += b.len();
                    if first_audio.is_none() {
                        first_audio = Some(Instant::now());
                        heard.first_audio_ms =
                            end_of_speech.map(|e: Instant| e.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                Message::Text(t) if t.as_str().contains("clearAudio") => heard.cleared = true,
                _ => {}
            }
        }
    }
    let _ = ws.close(None).await;
    heard
}

async fn bridge(fakes: &CascadedFakes, cascaded: &str, extra: &str) -> Harness {
    Harness::start_with_toml(
        e2e_tests::fake_answering("unused"),
        &fakes.bridge_toml(cascaded, extra),
        &[],
    )
    .await
    .unwrap()
}

fn report(step: &str, heard: &Heard) {
    println!(
        "cascaded {step}: end of speech → first answer audio {:.0} ms",
        heard.first_audio_ms.unwrap_or(f64::NAN)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_goes_through_stt_llm_and_tts() {
    let fakes = CascadedFakes::start(CascadedScript::new(QUESTION, REPLY))
        .await
        .unwrap();
    let h = bridge(&fakes, "", "").await;
    let heard = call(&h, "cascaded-1", 4000, None).await;
    report("primary providers", &heard);
    assert!(heard.first_audio_ms.is_some(), "no answer audio");
    // The LLM got what Deepgram heard, after the system prompt.
    let llm = fakes.llm.stats();
    let first = llm.accepted.first().expect("the LLM was asked");
    assert_eq!(
        first.texts("user").last().map(String::as_str),
        Some(QUESTION)
    );
    // TTS spoke the whole reply, in sentence pieces.
    let tts = fakes.tts.stats();
    let spoken: Vec<String> = tts
        .per_session
        .iter()
        .flat_map(|s| s.texts.clone())
        .collect();
    let spoken = spoken.concat();
    assert_eq!(
        spoken.split_whitespace().collect::<Vec<_>>(),
        REPLY.split_whitespace().collect::<Vec<_>>(),
        "{spoken:?}"
    );
    assert!(
        tts.flushes >= 2,
        "each sentence is flushed at once: {tts:?}"
    );
    // No fallback was needed.
    assert!(fakes.llm_backup.stats().accepted.is_empty());
    assert_eq!(fakes.openai_audio.stats().transcriptions, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_call_runs_in_the_bridge_and_its_result_goes_back_to_the_llm() {
    let mut script = CascadedScript::new(QUESTION, REPLY);
    script.llm.tool_rules = vec![ToolRule {
        when_user_says: "horário".into(),
        say_first: "Um momento.".into(),
        calls: vec![ScriptedCall::new(
            "lookup_knowledge",
            r#"{"query":"horário de funcionamento"}"#,
        )],
    }];
    let fakes = CascadedFakes::start(script).await.unwrap();
    // Tools are named in [agent], which the TOML's later sections cannot reopen.
    let h = Harness::start_with_toml(
        e2e_tests::fake_answering("unused"),
        &fakes.bridge_toml(
            "",
            "[[agent.knowledge]]\ntitle = \"Horário de funcionamento\"\ntext = \"Segunda a sexta, das 8h às 18h.\"\n",
        ),
        &[("VOICE_BRIDGE__AGENT__TOOLS", r#"["lookup_knowledge"]"#)],
    )
    .await
    .unwrap();
    let heard = call(&h, "cascaded-tool", 4000, None).await;
    report("with a tool round", &heard);
    assert!(heard.first_audio_ms.is_some());
    let llm = fakes.llm.stats();
    // The last request carries the tool result. (A preemptive request that wanted the
    // tool before the turn was decided is thrown away and asked again, so there may be
    // one more before it.)
    assert!(
        llm.accepted.len() >= 2,
        "a second request carries the tool result"
    );
    let tool = llm
        .accepted
        .last()
        .map(|r| r.texts("tool"))
        .unwrap_or_default();
    assert!(
        tool.iter().any(|t| t.contains("Segunda a sexta")),
        "{tool:?}"
    );
    let spoken: String = fakes
        .tts
        .stats()
        .per_session
        .iter()
        .flat_map(|s| s.texts.clone())
        .collect();
    assert!(spoken.contains("Um momento."), "{spoken}");
    assert!(spoken.contains("Segunda a sexta"), "{spoken}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_cancels_the_answer_and_history_keeps_only_what_was_heard() {
    let long = "Temos vários horários disponíveis. De manhã atendemos das oito ao meio-dia. \
        À tarde atendemos da uma às seis. Aos sábados atendemos das oito ao meio-dia. \
        Feriados não abrimos. Qual horário prefere?";
    let mut script = CascadedScript::new(QUESTION, long);
    script.deepgram.utterances = vec![QUESTION.into(), "Espera, eu queria outra coisa.".into()];
    // Real-time speech, so the answer is still playing when the caller speaks.
    script.tts.realtime_factor = 1.0;
    let fakes = CascadedFakes::start(script).await.unwrap();
    let h = bridge(&fakes, "", "").await;
    let heard = call(&h, "cascaded-barge", 6000, Some(1500)).await;
    assert!(heard.cleared, "the bridge cleared the playout");
    let llm = fakes.llm.stats();
    assert!(llm.accepted.len() >= 2, "the interruption was answered too");
    let assistant = llm.accepted[1].texts("assistant");
    let remembered = assistant.first().expect("the answer is in the history");
    assert!(
        !remembered.is_empty() && long.starts_with(remembered.as_str()),
        "{remembered:?}"
    );
    assert!(
        remembered.len() < long.len() / 2,
        "only what was heard: {remembered:?}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_speaks_a_safe_reply_instead_of_a_forbidden_promise() {
    let fakes = CascadedFakes::start(CascadedScript::new(
        QUESTION,
        "Claro. E você tem reembolso garantido em qualquer caso.",
    ))
    .await
    .unwrap();
    let h = bridge(&fakes, "guard.forbidden = [\"reembolso garantido\"]", "").await;
    let heard = call(&h, "cascaded-guard", 3000, None).await;
    assert!(heard.audio_bytes > 0);
    let spoken: String = fakes
        .tts
        .stats()
        .per_session
        .iter()
        .flat_map(|s| s.texts.clone())
        .collect();
    assert!(!spoken.to_lowercase().contains("reembolso"), "{spoken}");
    assert!(spoken.contains("não posso ajudar com isso"), "{spoken}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stt_refusal_falls_back_to_openai_transcription() {
    let mut script = CascadedScript::new(QUESTION, REPLY);
    script.deepgram.fault = voice_sim::fake_deepgram::Fault::Refuse(401);
    let fakes = CascadedFakes::start(script).await.unwrap();
    let h = bridge(&fakes, "", "").await;
    let heard = call(&h, "cascaded-stt-refused", 2000, None).await;
    report("Deepgram refused → OpenAI transcription", &heard);
    assert!(heard.first_audio_ms.is_some());
    assert!(fakes.openai_audio.stats().transcriptions >= 1);
    let llm = fakes.llm.stats();
    assert_eq!(
        llm.accepted[0].texts("user").last().map(String::as_str),
        Some(QUESTION)
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_stt_that_hangs_mid_turn_gives_the_turn_s_audio_to_the_next() {
    let mut script = CascadedScript::new(QUESTION, REPLY);
    script.deepgram.fault = voice_sim::fake_deepgram::Fault::Hang;
    let fakes = CascadedFakes::start(script).await.unwrap();
    let h = bridge(&fakes, "stt_final_timeout_ms = 500", "").await;
    let heard = call(&h, "cascaded-stt-hang", 2000, None).await;
    report(
        "Deepgram silent (500 ms timeout) → OpenAI transcription",
        &heard,
    );
    assert!(heard.first_audio_ms.is_some());
    let audio = fakes.openai_audio.stats();
    assert!(audio.transcriptions >= 1, "{audio:?}");
    // The replayed turn held the whole question (about 2 s of speech).
    assert!(audio.audio_ms_received >= 1500, "{audio:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_failing_before_its_first_token_gives_the_turn_to_the_next() {
    for (fault, step) in [
        (
            voice_sim::fake_llm::Fault::Status(500),
            "LLM 500 → backup LLM",
        ),
        (
            voice_sim::fake_llm::Fault::HangBeforeHeaders,
            "LLM silent (800 ms timeout) → backup LLM",
        ),
    ] {
        let mut script = CascadedScript::new(QUESTION, REPLY);
        script.llm.fault = fault;
        let fakes = CascadedFakes::start(script).await.unwrap();
        let h = bridge(&fakes, "llm_first_token_timeout_ms = 800", "").await;
        let heard = call(&h, "cascaded-llm", 2000, None).await;
        report(step, &heard);
        assert!(heard.first_audio_ms.is_some(), "{step}");
        assert_eq!(fakes.llm_backup.stats().accepted.len(), 1, "{step}");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tts_failing_mid_answer_hands_the_rest_to_the_next() {
    let mut script = CascadedScript::new(QUESTION, REPLY);
    script.tts.fault = voice_sim::fake_elevenlabs_tts::Fault::DropAfterChunks(1);
    let fakes = CascadedFakes::start(script).await.unwrap();
    let h = bridge(&fakes, "", "").await;
    let heard = call(&h, "cascaded-tts-drop", 4000, None).await;
    report("ElevenLabs dropped mid-answer → OpenAI speech", &heard);
    assert!(heard.first_audio_ms.is_some());
    let speech = fakes.openai_audio.stats().speech_texts;
    assert!(
        speech.iter().any(|t| t.contains("Posso ajudar")),
        "the unspoken sentence went to the next TTS: {speech:?}"
    );
    h.stop().await;

    let mut script = CascadedScript::new(QUESTION, REPLY);
    script.tts.fault = voice_sim::fake_elevenlabs_tts::Fault::RefuseUpgrade(503);
    let fakes = CascadedFakes::start(script).await.unwrap();
    let h = bridge(&fakes, "", "").await;
    let heard = call(&h, "cascaded-tts-refused", 2000, None).await;
    report("ElevenLabs refused → OpenAI speech", &heard);
    assert!(heard.first_audio_ms.is_some());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_piper_speaks_the_answer() {
    let fakes = CascadedFakes::start(CascadedScript::new(
        QUESTION,
        "Hello, this is a short answer.",
    ))
    .await
    .unwrap();
    // The test voice (models/fetch) is English; a pt-BR voice is configured the same way.
    let extra = "[providers.piper]\nmodel = \"piper/en_US-joe-medium.onnx\"\n";
    let toml = fakes.bridge_toml("", extra).replace(
        r#"tts = ["elevenlabs_tts", "openai_speech"]"#,
        r#"tts = ["piper"]"#,
    );
    let h = Harness::start_with_toml(e2e_tests::fake_answering("unused"), &toml, &[])
        .await
        .unwrap();
    let heard = call(&h, "cascaded-piper", 3000, None).await;
    report("local Piper TTS", &heard);
    assert!(
        heard.first_audio_ms.is_some(),
        "Piper's audio reached the call"
    );
    // About 2 s of speech at 16 kHz, 16-bit: well over half a second of audio.
    assert!(heard.audio_bytes > 16_000, "{} bytes", heard.audio_bytes);
    assert_eq!(fakes.tts.stats().sessions, 0, "ElevenLabs was not used");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_backchannel_over_the_answer_resumes_it_instead_of_being_answered() {
    let long = "Temos vários horários disponíveis. De manhã atendemos das oito ao meio-dia. \
        À tarde atendemos da uma às seis. Aos sábados atendemos das oito ao meio-dia.";
    let mut script = CascadedScript::new(QUESTION, long);
    // Whatever the caller says over the answer, Deepgram hears "Aham." (one final per
    // pause: the interruption has a comma).
    script.deepgram.utterances = vec![QUESTION.into(), "Aham.".into(), "Aham.".into()];
    script.tts.realtime_factor = 1.0;
    let fakes = CascadedFakes::start(script).await.unwrap();
    let h = bridge(&fakes, "", "").await;
    let heard = call(&h, "cascaded-aham", 7000, Some(1500)).await;
    assert!(heard.cleared, "the speech was long enough to interrupt");
    // "Aham" was not sent to the LLM as a question…
    let llm = fakes.llm.stats();
    assert_eq!(
        llm.accepted.len(),
        1,
        "{:?}",
        llm.accepted
            .iter()
            .map(|r| r.texts("user"))
            .collect::<Vec<_>>()
    );
    // …and the answer went on from where it was cut: a second TTS answer speaks its end.
    let sessions = fakes.tts.stats().per_session;
    assert!(sessions.len() >= 2, "{sessions:?}");
    let resumed: String = sessions.last().unwrap().texts.concat();
    assert!(resumed.trim_end().ends_with("ao meio-dia."), "{resumed:?}");
    assert!(
        resumed.len() < long.len(),
        "only the unheard part: {resumed:?}"
    );
    h.stop().await;
}
