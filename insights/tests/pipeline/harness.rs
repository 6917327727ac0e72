//! The pipeline's test bench: a scratch database, a fresh queue prefix on the real Redis,
//! recordings on local disk (or moto's S3), the fakes of Deepgram, OpenAI transcription,
//! the chat LLM and Pipedrive, and a file server the recordings are downloaded from.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use call_insights::analyze::default_template;
use call_insights::config::InsightsConfig;
use call_insights::intake::payload::IncomingCall;
use call_insights::intake::store::{self, Source};
use call_insights::queue::{Queue, QueueKeys};
use call_insights::relay::relay_once;
use call_insights::storage::{Backend, S3Settings, Storage, StorageSettings};
use call_insights::worker::{self, Pipeline, PipelineMetrics, Worker};
use fred::prelude::*;
use serde_json::{json, Value};
use uuid::Uuid;
use voice_core::audio::wav;
use voice_core::config::Secret;
use voice_core::db::scratch::ScratchDb;
use voice_core::db::{Db, DbError};
use voice_sim::fake_deepgram::{FakeDeepgram, FakeDeepgramConfig, RecordedUtterance};
use voice_sim::fake_llm::{FakeLlm, FakeLlmConfig, ReplyRule};
use voice_sim::fake_openai_audio::{FakeOpenAiAudio, FakeOpenAiAudioConfig, ScriptedSegment};
use voice_sim::fake_pipedrive::{FakePipedrive, FakePipedriveConfig, Person};

pub const REDIS: &str = "redis://127.0.0.1:6379";
pub const DEADLINE: Duration = Duration::from_secs(40);
pub const CALLER: &str = "+5511999990000";
pub const PHONE_HASH_KEY: &str = "phone-hash-key-for-tests-0123456789";

pub const ANALYSIS: &str = r#"{"segments":[
 {"label":"abertura","startSec":0,"endSec":1.2,"excerpt":"Olá, bom dia."},
 {"label":"descoberta","startSec":1.2,"endSec":3.8,"excerpt":"Quero um orçamento."}],
 "insights":{"summary":"Cliente pediu um orçamento de frete.","painPoints":["custo do frete"],
 "objections":["preço"],"nextActions":[{"title":"Enviar proposta","dueDate":"2026-12-10"}],
 "tags":["frete","orcamento"]}}"#;

/// A scorecard answer for the default template, every item at half its weight.
pub fn scorecard_answer() -> String {
    let items: Vec<String> = default_template()
        .items
        .iter()
        .map(|i| {
            format!(
                r#"{{"item":"{}","score":{},"reason":"ok"}}"#,
                i.item,
                i.weight / 2.0
            )
        })
        .collect();
    format!(r#"{{"items":[{}]}}"#, items.join(","))
}

/// A mono 16 kHz WAV of `secs` of a tone (the fakes script what is "said").
pub fn tone_wav(secs: u32) -> Vec<u8> {
    let rate = 16_000u32;
    let samples: Vec<i16> = (0..rate * secs)
        .map(|i| ((f64::from(i) * 440.0 * std::f64::consts::TAU / 16_000.0).sin() * 8000.0) as i16)
        .collect();
    wav::encode(rate, 1, &samples)
}

/// Serves `/rec/{name}`: the files put in it, 404 otherwise; `fail_next` answers of 500,
/// or `hang_next` requests left without an answer for a minute.
#[derive(Clone, Default)]
pub struct FileServer {
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    pub hits: Arc<AtomicU64>,
    pub fail_next: Arc<AtomicU64>,
    pub hang_next: Arc<AtomicU64>,
    pub base: String,
}

fn take_one(counter: &AtomicU64) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

async fn serve_file(State(s): State<FileServer>, Path(name): Path<String>) -> impl IntoResponse {
    s.hits.fetch_add(1, Ordering::SeqCst);
    if take_one(&s.hang_next) {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    if take_one(&s.fail_next) {
        return (StatusCode::INTERNAL_SERVER_ERROR, Vec::new()).into_response();
    }
    let file = s.files.lock().unwrap().get(&name).cloned();
    match file {
        Some(bytes) => ([("content-type", "audio/wav")], bytes).into_response(),
        None => (StatusCode::NOT_FOUND, Vec::new()).into_response(),
    }
}

impl FileServer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = FileServer {
            base: format!("http://{}", listener.local_addr().unwrap()),
            ..Default::default()
        };
        let app = axum::Router::new()
            .route("/rec/{name}", axum::routing::get(serve_file))
            .with_state(s.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        s
    }

    pub fn put(&self, name: &str, bytes: Vec<u8>) -> String {
        self.files.lock().unwrap().insert(name.to_string(), bytes);
        format!("{}/rec/{name}", self.base)
    }
}

/// The fakes every pipeline needs.
pub struct Fakes {
    pub deepgram: FakeDeepgram,
    pub openai: FakeOpenAiAudio,
    pub llm: FakeLlm,
    pub pipedrive: FakePipedrive,
    pub files: FileServer,
}

impl Fakes {
    /// The LLM answers each analysis request with `analysis` in turn, and each scorecard
    /// request with `scorecard` (the last of each repeating).
    pub async fn start(analysis: Vec<String>, scorecard: Vec<String>) -> Self {
        let deepgram = FakeDeepgram::start(FakeDeepgramConfig {
            final_delay_ms: 0,
            recording: vec![
                RecordedUtterance::new(0, 200, 1200, "Olá, bom dia."),
                RecordedUtterance::new(1, 1400, 2600, "Bom dia, em que posso ajudar?"),
                RecordedUtterance::new(0, 2800, 3800, "Quero um orçamento."),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
        let openai = FakeOpenAiAudio::start(FakeOpenAiAudioConfig {
            recording: vec![
                ScriptedSegment::new("A", 200, 1200, "Olá, bom dia."),
                ScriptedSegment::new("B", 1400, 3800, "Quero um orçamento."),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
        let llm = FakeLlm::start(FakeLlmConfig {
            first_token_ms: 0,
            token_interval_ms: 0,
            reply_rules: vec![
                ReplyRule::new("# call-analysis", analysis),
                ReplyRule::new("# call-scorecard", scorecard),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
        let pipedrive = FakePipedrive::start(FakePipedriveConfig::default())
            .await
            .unwrap();
        pipedrive
            .set_persons(vec![Person::new(7, "Maria Cliente", CALLER)])
            .unwrap();
        Self {
            deepgram,
            openai,
            llm,
            pipedrive,
            files: FileServer::start().await,
        }
    }

    /// Settings pointing every provider at its fake; `extra` TOML goes over them.
    pub fn config(&self, extra: &str) -> InsightsConfig {
        let toml = format!(
            r#"
[transcribe.deepgram]
url = "http://{dg}"
api_key = "{dg_key}"
timeout_secs = 10
[transcribe.openai]
url = "{oa}"
api_key = "{oa_key}"
timeout_secs = 10
[analyze]
provider = "openai"
url = "{llm}"
api_key = "{llm_key}"
timeout_secs = 10
[worker]
concurrency = 2
poll_ms = 50
visibility_timeout_secs = 30
max_attempts = 3
backoff_base_ms = 50
public_url = "https://insights.example.com"
[worker.download]
timeout_secs = 5
[crm]
enabled = true
[crm.pipedrive]
url = "{pd}"
api_token = "{pd_token}"
timeout_secs = 5
"#,
            dg = self.deepgram.addr(),
            dg_key = self.deepgram.api_key(),
            oa = self.openai.url(),
            oa_key = self.openai.api_key(),
            llm = self.llm.chat_completions_url(),
            llm_key = self.llm.api_key(),
            pd = self.pipedrive.url(),
            pd_token = self.pipedrive.api_token(),
        );
        let mut table: toml::Table = toml.parse().unwrap();
        let over: toml::Table = extra.parse().unwrap();
        voice_core::config::merge(&mut table, over);
        InsightsConfig::from_toml(&toml::to_string(&table).unwrap()).unwrap()
    }
}

/// Deletes a prefix's queue keys on drop (a fresh runtime on its own thread: Drop cannot
/// await).
pub struct Cleanup(pub QueueKeys);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let k = self.0.clone();
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let client = Client::new(Config::from_url(REDIS).unwrap(), None, None, None);
                if client.init().await.is_ok() {
                    let _: Result<i64, _> = client.del(vec![k.stream, k.delayed, k.dead]).await;
                    let _ = client.quit().await;
                }
            });
        });
        let _ = done.join();
    }
}

/// One pipeline under test.
pub struct Bench {
    pub scratch: ScratchDb,
    pub fakes: Fakes,
    pub config: InsightsConfig,
    pub storage: Storage,
    pub storage_dir: PathBuf,
    pub queue: Queue,
    pub metrics: Arc<PipelineMetrics>,
    _cleanup: Cleanup,
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.storage_dir);
    }
}

impl Bench {
    /// Over the fakes' settings, `extra` TOML; recordings on a fresh local directory.
    pub async fn start(extra: &str) -> Self {
        Self::start_with(extra, vec![ANALYSIS.to_string()]).await
    }

    /// As [`Bench::start`], with the LLM's analysis answers.
    pub async fn start_with(extra: &str, analysis: Vec<String>) -> Self {
        Self::start_scripted(extra, analysis, vec![scorecard_answer()]).await
    }

    /// As [`Bench::start`], with the LLM's analysis and scorecard answers.
    pub async fn start_scripted(
        extra: &str,
        analysis: Vec<String>,
        scorecard: Vec<String>,
    ) -> Self {
        let fakes = Fakes::start(analysis, scorecard).await;
        let mut config = fakes.config(extra);
        config.privacy.phone_hash_key = Secret::new(PHONE_HASH_KEY);
        let scratch = ScratchDb::create(8)
            .await
            .expect("a scratch database (is PostgreSQL running?)");
        let storage_dir =
            std::env::temp_dir().join(format!("insights-pipeline-{}", Uuid::new_v4()));
        let storage = Storage::local(&storage_dir).unwrap();
        let prefix = format!("test:pipeline:{}:", Uuid::new_v4());
        let queue = Queue::connect_with(REDIS, &prefix, config.worker.queue_config())
            .await
            .expect("Redis at 127.0.0.1:6379");
        Self {
            _cleanup: Cleanup(queue.keys().clone()),
            scratch,
            fakes,
            config,
            storage,
            storage_dir,
            queue,
            metrics: Arc::default(),
        }
    }

    pub fn db(&self) -> &Db {
        &self.scratch.db
    }

    pub fn pipeline(&self) -> Arc<Pipeline> {
        Arc::new(
            Pipeline::from_config(
                &self.config,
                self.db().clone(),
                self.storage.clone(),
                self.metrics.clone(),
            )
            .unwrap(),
        )
    }

    pub async fn worker(&self, name: &str) -> Worker {
        worker::run(self.pipeline(), &self.queue, name)
            .await
            .unwrap()
    }

    pub async fn tenant(&self, name: &str) -> Uuid {
        self.db().create_tenant(Uuid::new_v4(), name).await.unwrap()
    }

    /// A call as a webhook would bring it, with its job (not yet relayed).
    pub async fn accept(
        &self,
        tenant: Uuid,
        id: &str,
        recording_url: &str,
        consent: Option<bool>,
    ) -> Uuid {
        let call = IncomingCall {
            event: "call.ended".into(),
            provider_call_id: id.into(),
            from_number: CALLER.into(),
            to_number: "+5511333330000".into(),
            agent_ref: "1001".into(),
            duration_sec: Some(4),
            started_at: Some(chrono::Utc::now()),
            ended_at: None,
            recording_url: Some(recording_url.into()),
            consent,
            meta: json!({}),
        };
        let accepted = store::accept(self.db(), tenant, Source::Voip, call)
            .await
            .unwrap();
        accepted.call_id
    }

    /// A call with a fresh recording on the file server.
    pub async fn call(&self, tenant: Uuid, id: &str) -> Uuid {
        let url = self.fakes.files.put(&format!("{id}.wav"), tone_wav(4));
        self.accept(tenant, id, &url, Some(true)).await
    }

    pub async fn relay(&self) -> usize {
        relay_once(self.db(), &self.queue).await.unwrap()
    }

    /// Relays until `call` of `tenant` has a status in `wanted`; panics at the deadline.
    pub async fn wait_status(&self, tenant: Uuid, call: Uuid, wanted: &[&str]) -> CallRow {
        let started = Instant::now();
        loop {
            self.relay().await;
            let row = self.row(tenant, call).await;
            if wanted.contains(&row.status.as_str()) {
                return row;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "call still {} ({:?}): {}",
                row.status,
                row.error,
                row.stage_status
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `stage` of `call` is `status` (e.g. the CRM push, which follows
    /// `processed`); panics at the deadline.
    pub async fn wait_stage(&self, tenant: Uuid, call: Uuid, stage: &str, status: &str) -> CallRow {
        let started = Instant::now();
        loop {
            let row = self.row(tenant, call).await;
            if row.stage(stage) == status {
                return row;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "{stage} still {:?}: {}",
                row.stage(stage),
                row.stage_status
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn row(&self, tenant: Uuid, call: Uuid) -> CallRow {
        self.db()
            .with_tenant(tenant, move |tx| {
                Box::pin(async move {
                    let r = tx
                        .query_one(
                            "SELECT status, stage_status, error, from_number FROM calls WHERE id = $1",
                            &[&call],
                        )
                        .await?;
                    Ok::<_, DbError>(CallRow {
                        status: r.get(0),
                        stage_status: r.get(1),
                        error: r.get(2),
                        from_number: r.get(3),
                    })
                })
            })
            .await
            .unwrap()
    }

    /// Rows of `table` for `call` (any tenant: the scratch login is a superuser).
    pub async fn count(&self, table: &str, call: Uuid) -> i64 {
        let sql = format!("SELECT count(*) FROM {table} WHERE call_id = $1");
        self.db()
            .admin(move |tx| {
                Box::pin(async move {
                    let r = tx.query_one(sql.as_str(), &[&call]).await?;
                    Ok::<_, DbError>(r.get::<_, i64>(0))
                })
            })
            .await
            .unwrap()
    }

    /// A single value of a query with `call` as `$1`.
    pub async fn value(&self, sql: &str, call: Uuid) -> Value {
        let sql = format!("SELECT to_jsonb(x) FROM ({sql}) x");
        self.db()
            .admin(move |tx| {
                Box::pin(async move {
                    let r = tx.query_opt(sql.as_str(), &[&call]).await?;
                    Ok::<_, DbError>(r.map(|r| r.get::<_, Value>(0)).unwrap_or(Value::Null))
                })
            })
            .await
            .unwrap()
    }
}

pub struct CallRow {
    pub status: String,
    pub stage_status: Value,
    pub error: Option<String>,
    pub from_number: String,
}

impl CallRow {
    pub fn stage(&self, key: &str) -> &str {
        self.stage_status[key]["status"].as_str().unwrap_or("")
    }
}

/// A storage on a fresh bucket of moto's S3 server (127.0.0.1:5090, `ensure_s3`).
pub async fn s3_storage() -> Storage {
    let bucket = format!("pipeline-{}", Uuid::new_v4().simple());
    let made = reqwest::Client::new()
        .put(format!("http://127.0.0.1:5090/{bucket}"))
        .send()
        .await
        .expect("moto's S3 server at 127.0.0.1:5090 (scripts/lib.sh ensure_s3)");
    assert!(made.status().is_success(), "{}", made.status());
    Storage::from_settings(&StorageSettings {
        backend: Backend::S3,
        local_dir: "unused".into(),
        max_recording_bytes: 64 * 1024 * 1024,
        s3: S3Settings {
            bucket,
            region: "us-east-1".into(),
            endpoint: "http://127.0.0.1:5090".into(),
            access_key_id: Secret::new("AKIATESTKEYID"),
            secret_access_key: Secret::new("test-secret-access-key"),
            allow_http: true,
            prefix: "prod".into(),
            connect_timeout_secs: 2,
            request_timeout_secs: 30,
            max_retries: 1,
        },
    })
    .unwrap()
}
