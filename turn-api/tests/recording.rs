//! `[recording]`: each session's whole call kept as the bridge keeps its calls (stereo WAV,
//! caller left and agent right, `.jsonl` facts, `.json` summary), assembled from the
//! per-turn parts when the session ends, a limit says goodbye or the session expires.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};
use voice_core::audio::wav;

/// A recording folder removed when the test ends.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn recording_dir() -> Dir {
    Dir(temp_dir().join("calls"))
}

async fn recorded_stack(dir: &Path, extra: &str) -> Stack {
    let config = format!(
        "[recording]\nenabled = true\ndir = \"{}\"\nflush_ms = 100\n{extra}",
        dir.display()
    );
    Stack::start_with(REPLY, &config).await
}

/// The call's files under `dir/DOMAIN_A/{day}/`: (audio, jsonl lines, summary).
fn call_files(dir: &Path) -> (wav::Wav, Vec<Value>, Value) {
    let tenant = dir.join(DOMAIN_A);
    let days: Vec<_> = std::fs::read_dir(&tenant)
        .unwrap_or_else(|e| panic!("{}: {e}", tenant.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(days.len(), 1, "{days:?}");
    let day = &days[0];
    let audio = wav::parse(&std::fs::read(day.join("call-1.wav")).unwrap()).unwrap();
    let facts = std::fs::read_to_string(day.join("call-1.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Value =
        serde_json::from_slice(&std::fs::read(day.join("call-1.json")).unwrap()).unwrap();
    // The folder is the UTC day the call started.
    let started = summary["call"]["started_at"].as_str().unwrap();
    assert_eq!(day.file_name().unwrap().to_str().unwrap(), &started[..10]);
    (audio, facts, summary)
}

fn wav_len(path: &Value) -> usize {
    let bytes = std::fs::read(path.as_str().unwrap()).unwrap();
    let w = wav::parse(&bytes).unwrap();
    assert_eq!((w.rate, w.channels), (8000, 1));
    w.samples.len()
}

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

fn facts_of<'a>(facts: &'a [Value], kind: &str) -> Vec<&'a Value> {
    facts.iter().filter(|f| f["type"] == kind).collect()
}

async fn end(stack: &Stack, id: &str) -> u16 {
    stack
        .client
        .post(stack.url(&format!("/v1/sessions/{id}/end")))
        .bearer_auth(KEY_A)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// What is left of the parts folders (nothing, once every call is assembled).
fn leftover_parts(dir: &Path) -> usize {
    [".parts", ".closing"]
        .iter()
        .filter_map(|d| std::fs::read_dir(dir.join(d)).ok())
        .map(|entries| entries.count())
        .sum()
}

#[tokio::test]
async fn a_session_s_whole_call_is_one_stereo_recording_with_its_facts() {
    let dir = recording_dir();
    let stack = recorded_stack(&dir.0, "").await;
    let (status, created) = stack.create(KEY_A, DOMAIN_A).await;
    assert_eq!(status, 201, "{created}");
    let id = created["session_id"].as_str().unwrap().to_string();
    let greeting = wav_len(&created["greeting"]["audio_path"]);

    // Turn 1 posted by path at 16 kHz, turn 2 as a raw 8 kHz WAV: both land at the call's
    // 8 kHz on the left.
    let first = stack.record("t1.wav", &caller_wav(16000));
    let (status, a1) = stack.turn_json(&id, json!({"audio_path": first})).await;
    assert_eq!(status, 200, "{a1}");
    let (status, a2) = stack
        .turn_raw(&id, KEY_A, "audio/wav", caller_wav(8000))
        .await;
    assert_eq!(status, 200, "{a2}");
    let a2: Value = serde_json::from_str(&a2).unwrap();
    // Nothing is assembled before the session ends.
    assert!(!dir.0.join(DOMAIN_A).exists());
    assert_eq!(end(&stack, &id).await, 200);

    let (audio, facts, summary) = call_files(&dir.0);
    assert_eq!((audio.rate, audio.channels), (8000, 2));
    let caller = caller_speech(8000).len();
    let segments = [
        ("greeting", greeting, false),
        ("turn 1", caller, true),
        ("answer 1", wav_len(&a1["audio_path"]), false),
        ("turn 2", caller, true),
        ("answer 2", wav_len(&a2["audio_path"]), false),
    ];
    let total: usize = segments.iter().map(|s| s.1).sum();
    let (left, right) = (audio.channel(0), audio.channel(1));
    assert!(
        left.len().abs_diff(total) <= 16,
        "{} frames, parts add up to {total}",
        left.len()
    );
    let mut at = 0;
    for (name, len, caller_speaks) in segments {
        // 10 ms in from each edge: the resampler may shift a caller turn by a sample or two.
        let span = at + 80..(at + len - 80).min(left.len());
        let (l, r) = (rms(&left[span.clone()]), rms(&right[span.clone()]));
        if caller_speaks {
            assert!(l > 300.0 && r == 0.0, "{name}: left {l:.0}, right {r:.0}");
        } else {
            assert!(r > 300.0 && l == 0.0, "{name}: left {l:.0}, right {r:.0}");
        }
        at += len;
    }

    // The call facts first, then the exchanges in order, the turns at their place.
    assert_eq!(facts[0]["call_id"], "call-1");
    assert_eq!(facts[0]["tenant"], DOMAIN_A);
    assert_eq!(facts[0]["caller"], "1001");
    assert_eq!(
        facts[0]["consent"], true,
        "the session's consent goes with the call"
    );
    assert_eq!(summary["call"]["consent"], true);
    assert_eq!(facts[0]["rate"], 8000);
    let turns = facts_of(&facts, "turn");
    assert_eq!(turns.len(), 3, "{facts:?}");
    assert_eq!(turns[0]["reply_text"], GREETING);
    for (n, turn) in turns.iter().enumerate().skip(1) {
        assert_eq!(turn["turn"], n);
        assert_eq!(turn["caller_text"], HEARD);
        assert_eq!(turn["reply_text"], REPLY);
        assert_eq!(turn["action"], "continue");
        assert!(turn["timings"]["stt_ms"].is_u64(), "{turn}");
    }
    // Turn 1's answer starts after the greeting and the caller's turn.
    let answer_1_ms = ((greeting + caller) * 1000 / 8000) as i64;
    let at_ms = turns[1]["at_ms"].as_i64().unwrap();
    assert!((at_ms - answer_1_ms).abs() <= 2, "{at_ms} vs {answer_1_ms}");
    let transcripts = facts_of(&facts, "transcript");
    let roles: Vec<_> = transcripts.iter().map(|t| t["role"].as_str()).collect();
    assert_eq!(
        roles,
        [
            Some("agent"),
            Some("caller"),
            Some("agent"),
            Some("caller"),
            Some("agent")
        ]
    );
    assert_eq!(summary["finished"], true);
    assert_eq!(summary["end"]["reason"], "ended");
    assert_eq!(summary["end"]["turns"], 2);
    assert_eq!(summary["end"]["session_id"], id.as_str());
    assert_eq!(summary["end"]["source"], "turn-api");
    assert_eq!(summary["audio_frames"], left.len());
    assert_eq!(summary["facts"].as_array().unwrap().len(), facts.len() - 1);
    assert_eq!(leftover_parts(&dir.0), 0);
}

#[tokio::test]
async fn recording_disabled_writes_nothing() {
    let dir = recording_dir();
    let config = format!("[recording]\ndir = \"{}\"\n", dir.0.display());
    let stack = Stack::start_with(REPLY, &config).await;
    assert!(!stack.state.recording.is_enabled());
    let id = stack.session().await;
    let path = stack.record("t.wav", &caller_wav(8000));
    let (status, body) = stack.turn_json(&id, json!({"audio_path": path})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(end(&stack, &id).await, 200);
    assert_eq!(
        stack.state.recording.expire_idle_after(Default::default()),
        0
    );
    assert!(
        !dir.0.exists(),
        "disabled recording created {}",
        dir.0.display()
    );
}

#[tokio::test]
async fn the_limit_s_goodbye_closes_the_recording_and_a_later_end_adds_nothing() {
    let dir = recording_dir();
    let stack = recorded_stack(
        &dir.0,
        "[limits]\nmax_turns = 1\ngoodbye_text = \"Tchau!\"\n",
    )
    .await;
    let id = stack.session().await;
    let path = stack.record("t.wav", &caller_wav(8000));
    let (status, _) = stack.turn_json(&id, json!({"audio_path": path})).await;
    assert_eq!(status, 200);
    let (status, bye) = stack.turn_json(&id, json!({"audio_path": path})).await;
    assert_eq!((status, bye["action"].as_str()), (200, Some("hangup")));
    let (audio, facts, summary) = call_files(&dir.0);
    assert_eq!(summary["end"]["reason"], "limit");
    let turns = facts_of(&facts, "turn");
    assert_eq!(turns.len(), 3);
    assert_eq!(turns[2]["reply_text"], "Tchau!");
    assert_eq!(turns[2]["action"], "hangup");
    // The script still ends the session: that works and leaves the recording as it was.
    assert_eq!(end(&stack, &id).await, 200);
    let (again, _, summary_again) = call_files(&dir.0);
    assert_eq!(again, audio);
    assert_eq!(summary_again, summary);
    assert_eq!(leftover_parts(&dir.0), 0);
}

#[tokio::test]
async fn a_session_nobody_ends_is_recorded_when_its_parts_go_idle() {
    let dir = recording_dir();
    let stack = recorded_stack(&dir.0, "").await;
    let id = stack.session().await;
    let path = stack.record("t.wav", &caller_wav(8000));
    let (status, _) = stack.turn_json(&id, json!({"audio_path": path})).await;
    assert_eq!(status, 200);
    let recording = stack.state.recording.clone();
    // Not idle for the TTL (+ a minute) yet: nothing happens.
    assert_eq!(
        tokio::task::spawn_blocking({
            let r = recording.clone();
            move || r.expire_idle()
        })
        .await
        .unwrap(),
        0
    );
    let closed =
        tokio::task::spawn_blocking(move || recording.expire_idle_after(Default::default()))
            .await
            .unwrap();
    assert_eq!(closed, 1);
    let (audio, facts, summary) = call_files(&dir.0);
    assert_eq!(summary["end"]["reason"], "expired");
    assert_eq!(summary["end"]["turns"], 1);
    assert_eq!(facts_of(&facts, "turn").len(), 2);
    assert!(audio.samples.len() > 2 * caller_speech(8000).len());
    // A turn after that is answered but stores nothing; the end adds nothing.
    let (status, _) = stack.turn_json(&id, json!({"audio_path": path})).await;
    assert_eq!(status, 200);
    assert_eq!(end(&stack, &id).await, 200);
    let (again, _, _) = call_files(&dir.0);
    assert_eq!(again, audio);
    assert_eq!(leftover_parts(&dir.0), 0);
}
