//! A turn-api on 127.0.0.1:0 with the real engine, whose providers are the protocol fakes
//! of voice-sim: OpenAI transcription, an OpenAI-style chat model, ElevenLabs TTS.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use turn_api::config::TurnApiConfig;
use turn_api::http::{self, AppState};
use voice_sim::fake_elevenlabs_tts::{FakeElevenLabsTts, FakeElevenLabsTtsConfig, Voice};
use voice_sim::fake_llm::{FakeLlm, FakeLlmConfig};
use voice_sim::fake_openai_audio::{FakeOpenAiAudio, FakeOpenAiAudioConfig};

pub const HEARD: &str = "Eu gostaria de marcar uma consulta.";
pub const REPLY: &str = "Claro. Para qual dia você prefere?";
pub const GREETING: &str = "Olá, clínica Sorriso.";
pub const KEY_A: &str = "key-of-tenant-a-0123456789";
pub const KEY_B: &str = "key-of-tenant-b-0123456789";
pub const DOMAIN_A: &str = "a.example.com";
pub const UUID_A: &str = "6f1c2d3e-0000-4000-8000-00000000000a";
pub const DOMAIN_B: &str = "b.example.com";

pub struct Stack {
    pub base: String,
    pub dir: PathBuf,
    pub recordings: PathBuf,
    pub state: Arc<AppState>,
    pub client: reqwest::Client,
    pub llm: FakeLlm,
    pub stt: FakeOpenAiAudio,
    pub tts: FakeElevenLabsTts,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh folder for one test.
pub fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "turn-api-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(dir.join("rec")).unwrap();
    dir
}

/// The caller saying `HEARD`-like speech with silence around it, at `rate`.
pub fn caller_speech(rate: u32) -> Vec<i16> {
    let speech = voice_sim::speech::synthesize(
        "Eu gostaria de marcar uma consulta",
        voice_sim::speech::PT_BR,
        rate,
    )
    .expect("espeak-ng");
    let pad = vec![0i16; rate as usize / 2];
    [pad.as_slice(), speech.as_slice(), pad.as_slice()].concat()
}

pub fn caller_wav(rate: u32) -> Vec<u8> {
    voice_core::audio::wav::encode(rate, 1, &caller_speech(rate))
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(REPLY, "").await
    }

    /// The chat model answers `reply`; `extra` is TOML merged over the test config.
    pub async fn start_with(reply: &str, extra: &str) -> Stack {
        let stt = FakeOpenAiAudio::start(FakeOpenAiAudioConfig {
            transcripts: vec![HEARD.into()],
            transcribe_delay_ms: 0,
            speech_first_byte_ms: 0,
            ..FakeOpenAiAudioConfig::default()
        })
        .await
        .unwrap();
        let llm = FakeLlm::start(FakeLlmConfig {
            reply_text: reply.into(),
            models: Vec::new(),
            first_token_ms: 0,
            token_interval_ms: 0,
            ..FakeLlmConfig::default()
        })
        .await
        .unwrap();
        let tts = FakeElevenLabsTts::start(FakeElevenLabsTtsConfig {
            first_byte_ms: 0,
            realtime_factor: 50.0,
            voice: Voice::Tone { ms_per_char: 20 },
            ..FakeElevenLabsTtsConfig::default()
        })
        .await
        .unwrap();
        let dir = temp_dir();
        let recordings = dir.join("rec");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!(
            r#"
[server]
listen = "{addr}"
public_url = "http://{addr}"

[audio]
dir = "{audio}"
recordings_dirs = ["{rec}"]

[engine]
stt = ["openai_transcribe"]
llm = ["openai_chat"]
tts = ["elevenlabs_tts"]
stt_timeout_ms = 3000
llm_timeout_ms = 3000
tts_timeout_ms = 3000
greeting = "{GREETING}"

[providers.openai_transcribe]
url = "{transcriptions}"
api_key = "{stt_key}"

[providers.openai_chat]
url = "{llm_url}"
api_key = "{llm_key}"

[providers.elevenlabs_tts]
url = "{tts_url}"
voice_id = "{voice}"
api_key = "{tts_key}"

[tenants."{DOMAIN_A}"]
domain_uuid = "{UUID_A}"
api_keys = ["{KEY_A}"]

[tenants."{DOMAIN_B}"]
api_keys = ["{KEY_B}"]
"#,
            audio = dir.join("audio").display(),
            rec = recordings.display(),
            transcriptions = stt.transcriptions_url(),
            stt_key = stt.api_key(),
            llm_url = llm.chat_completions_url(),
            llm_key = llm.api_key(),
            tts_url = tts.url(),
            voice = tts.voice_id(),
            tts_key = tts.api_key(),
        );
        let mut table: toml::Table = base.parse().unwrap();
        voice_core::config::merge(&mut table, extra.parse().unwrap());
        let config = TurnApiConfig::from_toml(&toml::to_string(&table).unwrap()).unwrap();
        let state = http::state(config).await.unwrap();
        let server =
            tokio::spawn(http::serve(listener, state.clone(), std::future::pending()).map(|_| ()));
        Stack {
            base: format!("http://{addr}"),
            dir,
            recordings,
            state,
            client: reqwest::Client::new(),
            llm,
            stt,
            tts,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Writes a recording into the allowed folder; returns its path.
    pub fn record(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.recordings.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    /// Creates a session for tenant A; returns (status, body).
    pub async fn create(&self, key: &str, domain: &str) -> (u16, serde_json::Value) {
        let r = self
            .client
            .post(self.url("/v1/sessions"))
            .bearer_auth(key)
            .json(&serde_json::json!({"call_id": "call-1", "domain": domain, "caller": "1001", "consent": true}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    pub async fn session(&self) -> String {
        let (status, body) = self.create(KEY_A, DOMAIN_A).await;
        assert_eq!(status, 201, "{body}");
        body["session_id"].as_str().unwrap().to_string()
    }

    /// Posts a turn with `body` and `content_type`; returns (status, raw body text).
    pub async fn turn_raw(
        &self,
        id: &str,
        key: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, String) {
        let r = self
            .client
            .post(self.url(&format!("/v1/sessions/{id}/turns")))
            .header("x-api-key", key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn turn_json(&self, id: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let (status, text) = self
            .turn_raw(id, KEY_A, "application/json", body.to_string().into_bytes())
            .await;
        (status, serde_json::from_str(&text).unwrap())
    }
}

use futures_util::FutureExt;
