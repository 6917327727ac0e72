//! Local turn detection (`[agent.turn] detection = "local"`): the bridge's Silero VAD and
//! Smart Turn decide the end of the caller's turn and tell the provider (commit +
//! response.create, its own detection off), and the barge-in rules decide which caller
//! speech over an answer interrupts it. Each rule is checked twice: on, the speech does
//! not interrupt; off, the same speech does.

use std::time::{Duration, Instant};

use e2e_tests::{raw, Harness};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use voice_sim::speech::{synthesize, PT_BR};

const RATE: u32 = 16000;
const LOCAL: (&str, &str) = ("VOICE_BRIDGE__AGENT__TURN__DETECTION", "local");

/// What one call saw.
struct Outcome {
    answered: bool,
    cleared: bool,
    commits: usize,
    truncates: usize,
    protocol_errors: Vec<String>,
    decisions: u64,
    ignored: u64,
}

/// One call: the caller asks a question; `overlap_at_ms` after the answer's first frame
/// they say `overlap` (if any); then silence until `listen_ms` after the answer began.
async fn call(env: &[(&str, &str)], overlap: Option<(&str, u64)>, listen_ms: u64) -> Outcome {
    let fake = e2e_tests::fake_answering("Claro. Nosso horário de funcionamento é de segunda a sexta, das oito da manhã às seis da tarde.");
    let mut vars = vec![LOCAL];
    vars.extend_from_slice(env);
    let h = Harness::start(fake, &vars).await.unwrap();
    let mut ws = h.open_call("local-1").await.unwrap();
    let question = synthesize("Qual é o horário de funcionamento?", PT_BR, RATE).unwrap();
    let mut script = raw::frames(&question, RATE, 0).into_iter();
    let overlap_frames = overlap.map(|(text, at)| {
        let speech = synthesize(text, PT_BR, RATE).unwrap();
        (raw::frames(&speech, RATE, 0), at)
    });
    let mut overlap_iter = overlap_frames.as_ref().map(|(f, _)| f.iter());
    let silence = vec![0u8; (RATE / 50 * 2) as usize];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut first_audio: Option<Instant> = None;
    let mut cleared = false;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline
        && first_audio.is_none_or(|t| t.elapsed() < Duration::from_millis(listen_ms))
    {
        tick.tick().await;
        let due = |at: u64| first_audio.is_some_and(|t| t.elapsed() >= Duration::from_millis(at));
        let frame = match script.next() {
            Some(f) => f,
            None => match (&mut overlap_iter, &overlap_frames) {
                (Some(frames), Some((_, at))) if due(*at) => {
                    frames.next().cloned().unwrap_or_else(|| silence.clone())
                }
                _ => silence.clone(),
            },
        };
        ws.send(Message::Binary(frame.into())).await.unwrap();
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::ZERO, ws.next()).await {
            match msg.unwrap() {
                Message::Binary(_) => {
                    first_audio.get_or_insert_with(Instant::now);
                }
                Message::Text(t) if t.as_str() == r#"{"type":"clearAudio"}"# => cleared = true,
                other => panic!("unexpected message from the bridge: {other:?}"),
            }
        }
    }
    let stats = h.fake.stats();
    let outcome = Outcome {
        answered: first_audio.is_some(),
        cleared,
        commits: stats
            .client_events
            .iter()
            .filter(|e| *e == "input_audio_buffer.commit")
            .count(),
        truncates: stats.truncates.len(),
        protocol_errors: stats.protocol_errors.clone(),
        decisions: h.state.metrics.turn_decision_seconds.count(),
        ignored: h.state.metrics.barge_ins_ignored.get(),
    };
    ws.close(None).await.unwrap();
    h.stop().await;
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_decides_the_turn_and_the_provider_answers() {
    let o = call(&[], None, 1500).await;
    assert!(o.answered, "no answer");
    assert_eq!(o.commits, 1, "one caller turn, one commit");
    assert_eq!(o.decisions, 1);
    assert!(!o.cleared);
    assert!(o.protocol_errors.is_empty(), "{:?}", o.protocol_errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_speech_over_the_answer_barges_in() {
    let o = call(
        &[],
        Some(("Espera, espera, eu tenho uma pergunta.", 1000)),
        5500,
    )
    .await;
    assert!(o.cleared, "no clearAudio");
    assert_eq!(o.truncates, 1);
    // The interruption is a turn of its own.
    assert_eq!(o.commits, 2);
    assert!(o.protocol_errors.is_empty(), "{:?}", o.protocol_errors);
}

/// A short backchannel-like word, well past the echo guard: only the held-duration rule
/// stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_word_does_not_barge_in_unless_the_hold_rule_is_off() {
    let word = "Sim.";
    let len = synthesize(word, PT_BR, RATE).unwrap().len() as u64 * 1000 / RATE as u64;
    assert!(len < 450, "{word:?} lasts {len} ms: too long for this test");
    let o = call(&[], Some((word, 1000)), 2500).await;
    assert!(!o.cleared, "a {len} ms word interrupted the agent");
    assert_eq!(o.truncates, 0);
    assert_eq!(o.commits, 1, "the word over the answer is not a turn");
    assert!(o.ignored >= 1);
    let o = call(
        &[("VOICE_BRIDGE__AGENT__BARGE_IN__MIN_SPEECH_MS", "0")],
        Some((word, 1000)),
        2500,
    )
    .await;
    assert!(o.cleared, "without the rule the word should interrupt");
}

/// Speech right as the answer starts (what line echo of it looks like): only the echo
/// guard stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_at_the_start_of_the_answer_is_held_back_by_the_echo_guard() {
    let phrase = "Espera aí.";
    let len = synthesize(phrase, PT_BR, RATE).unwrap().len() as u64 * 1000 / RATE as u64;
    // Long enough to pass the 400 ms hold alone, over before a 1500 ms guard ends.
    assert!((500..1400).contains(&len), "{phrase:?} lasts {len} ms");
    let guard = ("VOICE_BRIDGE__AGENT__BARGE_IN__ECHO_GUARD_MS", "1500");
    let o = call(&[guard], Some((phrase, 0)), 2500).await;
    assert!(
        !o.cleared,
        "speech inside the echo guard interrupted the agent"
    );
    assert_eq!(o.truncates, 0);
    let o = call(
        &[("VOICE_BRIDGE__AGENT__BARGE_IN__ECHO_GUARD_MS", "0")],
        Some((phrase, 0)),
        2500,
    )
    .await;
    assert!(
        o.cleared,
        "without the guard the same speech should interrupt"
    );
}
