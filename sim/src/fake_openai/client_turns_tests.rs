//! Sessions with `turn_detection: null`, driven event by event without sockets: the client
//! commits and asks for answers itself, and the fake measures the silence before each
//! commit (the client's end-of-turn decision time).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};
use tokio::time::Instant;
use voice_core::audio::{g711, pcm};

use super::handshake::Upgrade;
use super::reply::ReplyBank;
use super::session::Session;
use super::{FakeOpenAiConfig, Fault, Shared};
use crate::fake_common::server::FaultPlan;
use crate::fake_common::test_support::{spoken, CALLER_TEXT};

const THINK_MS: u64 = 300;

fn shared(cfg: FakeOpenAiConfig) -> Arc<Shared> {
    let replies = ReplyBank::render(&cfg.reply_text, cfg.delta_ms).unwrap();
    Arc::new(Shared {
        faults: FaultPlan::new(Fault::None),
        cfg,
        replies,
        stats: Default::default(),
    })
}

struct Client {
    session: Session,
    now: Instant,
    /// `"pcm"` (24 kHz PCM16) or `"pcmu"` (8 kHz μ-law).
    format: &'static str,
}

impl Client {
    /// A GA session updated to `turn_detection` (null: the client commits).
    fn new(shared: &Arc<Shared>, format: &'static str, turn_detection: Value) -> Self {
        let upgrade = Upgrade {
            model: "gpt-realtime".into(),
            beta: false,
        };
        let mut c = Client {
            session: Session::new(shared.clone(), &upgrade, Fault::None, 1),
            now: Instant::now(),
            format,
        };
        let wire = match format {
            "pcm" => json!({"type": "audio/pcm", "rate": 24000}),
            _ => json!({"type": "audio/pcmu"}),
        };
        c.send(
            json!({"type": "session.update", "session": {"type": "realtime",
            "audio": {"input": {"format": wire, "turn_detection": turn_detection},
                      "output": {"format": wire}}}}),
        );
        let out = c.events();
        assert_eq!(types(&out), ["session.created", "session.updated"]);
        c
    }

    fn rate(&self) -> u32 {
        if self.format == "pcm" {
            24_000
        } else {
            8_000
        }
    }

    fn send(&mut self, event: Value) {
        self.session.on_client_text(&event.to_string(), self.now);
    }

    /// Appends `samples` in 20 ms chunks, as the bridge streams them.
    fn append(&mut self, samples: &[i16]) {
        for chunk in samples.chunks(self.rate() as usize / 50) {
            let bytes = match self.format {
                "pcm" => pcm::to_le_bytes(chunk),
                _ => g711::encode_ulaw(chunk),
            };
            let audio = base64::engine::general_purpose::STANDARD.encode(bytes);
            self.send(json!({"type": "input_audio_buffer.append", "audio": audio}));
        }
    }

    fn speech(&mut self) {
        let speech = spoken(CALLER_TEXT, self.rate());
        self.append(&speech);
    }

    fn silence(&mut self, ms: usize) {
        self.append(&vec![0; ms * self.rate() as usize / 1000]);
    }

    /// Lets `ms` pass, running the session's timers on the way.
    fn wait(&mut self, ms: u64) {
        let until = self.now + Duration::from_millis(ms);
        while let Some(wake) = self.session.next_wake().filter(|w| *w <= until) {
            self.now = self.now.max(wake);
            self.session.on_timer(self.now);
        }
        self.now = until;
    }

    fn events(&mut self) -> Vec<Value> {
        self.session
            .out
            .take()
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect()
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

fn find<'a>(events: &'a [Value], ty: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["type"] == ty)
        .unwrap_or_else(|| panic!("no {ty} in {:?}", types(events)))
}

#[test]
fn commits_record_the_silence_after_the_callers_last_speech() {
    let shared = shared(FakeOpenAiConfig::default());
    for format in ["pcm", "pcmu"] {
        let mut c = Client::new(&shared, format, Value::Null);
        c.silence(700);
        for trailing_ms in [620, 130, 0] {
            c.speech();
            c.silence(trailing_ms);
            c.send(json!({"type": "input_audio_buffer.commit"}));
            let out = c.events();
            // Committed and added; no VAD events and no response with detection off.
            assert_eq!(
                types(&out),
                [
                    "input_audio_buffer.committed",
                    "conversation.item.added",
                    "conversation.item.done"
                ],
                "{format}"
            );
        }
        // Silence alone: committed, but there is no speech to measure from.
        c.silence(300);
        c.send(json!({"type": "input_audio_buffer.commit"}));
        assert_eq!(types(&c.events())[0], "input_audio_buffer.committed");
    }
    let stats = shared.stats.snapshot();
    assert_eq!(stats.client_turn_sessions, 2);
    assert_eq!(stats.server_turn_sessions, 0);
    assert_eq!(stats.client_commits, 8);
    assert_eq!(stats.client_commits_without_speech, 2);
    assert_eq!(stats.turns, 0);
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
    // espeak's speech is trimmed at its last loud sample: what trails it is the silence
    // appended, to within the detector's per-sample resolution and the codec.
    let expected = [620, 130, 0, 620, 130, 0];
    assert_eq!(stats.commit_trailing_silence_ms.len(), expected.len());
    for (got, want) in stats.commit_trailing_silence_ms.iter().zip(expected) {
        assert!(
            got.abs_diff(want) <= 2,
            "{:?}",
            stats.commit_trailing_silence_ms
        );
    }
}

#[test]
fn response_create_after_a_commit_is_announced_at_once_and_answered_after_thinking() {
    let shared = shared(FakeOpenAiConfig {
        think_ms: THINK_MS,
        ..Default::default()
    });
    let mut c = Client::new(&shared, "pcm", Value::Null);
    c.speech();
    c.silence(400);
    c.send(json!({"type": "input_audio_buffer.commit"}));
    c.send(json!({"type": "response.create"}));
    let out = c.events();
    let created = find(&out, "response.created");
    assert_eq!(created["response"]["status"], "in_progress");
    assert_eq!(types(&out).last(), Some(&"response.created"));
    // A second request while one is in progress: the harmless error, not a mistake.
    c.send(json!({"type": "response.create"}));
    let err = find(&c.events(), "error").clone();
    assert_eq!(
        err["error"]["code"],
        "conversation_already_has_active_response"
    );
    c.wait(THINK_MS - 1);
    assert!(c.events().is_empty(), "no output while thinking");
    c.wait(60_000);
    let out = c.events();
    let kinds = types(&out);
    let first = |ty: &str| kinds.iter().position(|k| *k == ty).unwrap();
    assert!(first("response.output_item.added") < first("response.output_audio.delta"));
    assert!(first("response.output_audio.delta") < first("response.output_audio.done"));
    assert_eq!(kinds.last(), Some(&"response.done"));
    let done = find(&out, "response.done");
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(done["response"]["id"], created["response"]["id"]);
    assert!(!kinds
        .iter()
        .any(|k| k.starts_with("input_audio_buffer.speech")));
    let stats = shared.stats.snapshot();
    assert_eq!(
        (stats.turns, stats.client_commits, stats.responses_cancelled),
        (1, 1, 0)
    );
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
}

#[test]
fn barge_in_cancels_thinking_or_speaking_responses_and_truncates() {
    let shared = shared(FakeOpenAiConfig {
        think_ms: THINK_MS,
        ..Default::default()
    });
    let mut c = Client::new(&shared, "pcm", Value::Null);
    c.speech();
    c.silence(300);
    c.send(json!({"type": "input_audio_buffer.commit"}));
    c.send(json!({"type": "response.create"}));
    c.wait(THINK_MS / 2);
    // The caller goes on talking before any answer audio: the client cancels.
    c.send(json!({"type": "response.cancel"}));
    let out = c.events();
    let done = find(&out, "response.done");
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(
        done["response"]["status_details"]["reason"],
        "client_cancelled"
    );
    assert_eq!(done["response"]["output"], json!([]));
    assert_eq!(c.session.next_wake(), None);
    c.wait(THINK_MS * 2);
    assert!(c.events().is_empty(), "a cancelled response stays silent");

    // Next turn: cancelled while speaking, then trimmed to what the caller heard.
    c.send(json!({"type": "input_audio_buffer.clear"}));
    c.speech();
    c.silence(250);
    c.send(json!({"type": "input_audio_buffer.commit"}));
    c.send(json!({"type": "response.create"}));
    c.wait(THINK_MS + 60);
    let out = c.events();
    let delta = find(&out, "response.output_audio.delta");
    let item_id = delta["item_id"].as_str().unwrap().to_string();
    c.send(json!({"type": "response.cancel"}));
    let out = c.events();
    let done = find(&out, "response.done");
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(done["response"]["output"][0]["id"], item_id.as_str());
    assert_eq!(done["response"]["output"][0]["status"], "incomplete");
    c.send(
        json!({"type": "conversation.item.truncate", "item_id": item_id,
        "content_index": 0, "audio_end_ms": 150}),
    );
    let truncated = c.events();
    assert_eq!(types(&truncated), ["conversation.item.truncated"]);
    assert_eq!(truncated[0]["audio_end_ms"], 150);
    // Past what was generated (3 deltas of 100 ms at 4× real time): refused.
    c.send(
        json!({"type": "conversation.item.truncate", "item_id": item_id,
        "content_index": 0, "audio_end_ms": 5000}),
    );
    assert_eq!(types(&c.events()), ["error"]);
    // Nothing left to cancel: the harmless error.
    c.send(json!({"type": "response.cancel"}));
    assert_eq!(
        find(&c.events(), "error")["error"]["code"],
        "response_cancel_not_active"
    );
    let stats = shared.stats.snapshot();
    assert_eq!((stats.turns, stats.responses_cancelled), (2, 2));
    assert_eq!(stats.client_commits, 2);
    assert_eq!(stats.truncates.len(), 2);
    assert_eq!(
        stats.protocol_errors.len(),
        1,
        "{:?}",
        stats.protocol_errors
    );
}

#[test]
fn server_vad_speech_cancels_a_response_still_thinking() {
    let shared = shared(FakeOpenAiConfig {
        think_ms: THINK_MS,
        ..Default::default()
    });
    let td = json!({"type": "server_vad", "silence_duration_ms": 500});
    let mut c = Client::new(&shared, "pcm", td);
    c.speech();
    c.silence(520);
    let out = c.events();
    assert_eq!(
        &types(&out)[types(&out).len() - 1..],
        ["response.created"],
        "the turn ended: announced at once"
    );
    c.wait(THINK_MS / 2);
    c.speech();
    let out = c.events();
    assert_eq!(
        types(&out)[..2],
        ["input_audio_buffer.speech_started", "response.done"]
    );
    assert_eq!(
        out[1]["response"]["status_details"]["reason"],
        "turn_detected"
    );
    let stats = shared.stats.snapshot();
    assert_eq!(
        (stats.server_turn_sessions, stats.client_turn_sessions),
        (1, 0)
    );
    assert_eq!(stats.client_commits, 0);
    assert!(stats.commit_trailing_silence_ms.is_empty());
}
