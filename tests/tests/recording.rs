//! Call recording: a real call through the bridge leaves a stereo WAV (caller left, agent
//! right, aligned) and the call's facts (per-turn latency, transcript) beside it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e_tests::{raw, Harness};
use voice_sim::speech::{synthesize, PT_BR};

const RATE: u32 = 16000;

fn find(dir: &Path, ext: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(found) = find(&path, ext) {
                return Some(found);
            }
        } else if path.extension().is_some_and(|e| e == ext) {
            return Some(path);
        }
    }
    None
}

/// (left, right) samples of a 16-bit stereo WAV, checking its format.
fn read_stereo_wav(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let wav = voice_core::audio::wav::parse(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!((wav.channels, wav.rate), (2, RATE));
    (wav.channel(0), wav.channel(1))
}

/// Index of the first 20 ms block louder than -40 dBFS.
fn first_sound(samples: &[i16]) -> Option<usize> {
    samples
        .chunks(320)
        .position(|c| voice_core::audio::pcm::rms(c) > 327.0)
        .map(|i| i * 320)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_leaves_an_aligned_stereo_recording_and_its_facts() {
    let dir = std::env::temp_dir().join(format!("voice-rec-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let fake = e2e_tests::fake_answering("Claro, pode falar.");
    let dir_str = dir.display().to_string();
    let h = Harness::start(
        fake,
        &[
            ("VOICE_BRIDGE__AGENT__TURN__DETECTION", "local"),
            ("VOICE_BRIDGE__RECORDING__ENABLED", "true"),
            ("VOICE_BRIDGE__RECORDING__DIR", &dir_str),
            ("VOICE_BRIDGE__RECORDING__FLUSH_MS", "200"),
        ],
    )
    .await
    .unwrap();
    // The dialplan says the caller consented: the summary carries it to call-insights.
    let mut ws = h.open_call_with("rec-1", "consent=sim").await.unwrap();
    let question = synthesize("Eu queria marcar uma consulta.", PT_BR, RATE).unwrap();
    // 500 ms of silence, the question, then 4 s for the answer.
    let mut frames = raw::frames(&[], RATE, 500);
    frames.extend(raw::frames(&question, RATE, 4000));
    let received = raw::stream(&mut ws, &frames).await.unwrap();
    assert!(received > 0, "no answer");
    ws.close(None).await.unwrap();
    assert!(h.wait_idle(Duration::from_secs(5)).await);
    h.state.recorders.as_ref().unwrap().drain();

    let wav = find(&dir, "wav").expect("a .wav under the recordings folder");
    assert!(
        wav.starts_with(dir.join("pbx.example.com")),
        "{}",
        wav.display()
    );
    let (caller, agent) = read_stereo_wav(&wav);
    let seconds = caller.len() as f64 / RATE as f64;
    assert!(
        (seconds - frames.len() as f64 * 0.02).abs() < 0.1,
        "{seconds} s recorded"
    );
    // The caller's question starts at 500 ms on the left; the agent is silent until it answers.
    let caller_start = first_sound(&caller).unwrap() as f64 / RATE as f64;
    assert!(
        (caller_start - 0.5).abs() < 0.05,
        "caller heard from {caller_start} s"
    );
    let agent_start = first_sound(&agent).expect("the answer is on the right") as f64 / RATE as f64;
    let question_end = 0.5 + question.len() as f64 / RATE as f64;
    let jsonl = std::fs::read_to_string(wav.with_extension("jsonl")).unwrap();
    let turn: serde_json::Value = jsonl
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|f| f["type"] == "turn")
        .expect("a turn fact");
    // The answer starts where the bridge sent its first frame (the turn fact's position).
    let first_frame = turn["at_ms"].as_f64().unwrap() / 1000.0;
    assert!(
        agent_start > question_end && (agent_start - first_frame).abs() < 0.05,
        "answer at {agent_start} s, first frame sent at {first_frame} s, question ended at {question_end} s"
    );
    assert!(
        first_sound(&caller[(question_end * RATE as f64) as usize + 1600..]).is_none(),
        "caller channel silent after the question"
    );

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(wav.with_extension("json")).unwrap())
            .unwrap();
    let text = summary.to_string();
    assert!(text.contains("\"tenant\":\"pbx.example.com\""), "{text}");
    assert_eq!(summary["call"]["consent"], true, "{text}");
    assert!(text.contains("\"type\":\"turn\""), "{text}");
    assert!(text.contains("\"decision_ms\""), "{text}");
    assert!(text.contains("\"type\":\"transcript\""), "{text}");
    assert!(jsonl.lines().count() >= 3, "{jsonl}");
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
