//! Uploads against a real HTTP server in the test, which checks each request as
//! call-insights does (`insights/src/intake/upload.rs`): the HMAC recomputed over
//! `<x-timestamp>.<x-call-metadata>.<hex sha256(body)>`, the metadata decoded.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::sign::{hex, signature};
use super::*;
use crate::config::Secret;
use crate::recording::tests::{settings, started_at, TempDir};
use crate::recording::{CallFacts, Recorders, RecordingFormat};

const SECRET: &str = "a-test-secret-of-enough-length";

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Received {
    query: HashMap<String, String>,
    content_type: String,
    body: Vec<u8>,
    metadata: Value,
    signature_ok: bool,
}

#[derive(Default)]
struct Insights {
    key: String,
    /// Statuses to answer, in order; 200 once they are used up.
    script: Mutex<VecDeque<StatusCode>>,
    received: Mutex<Vec<Received>>,
}

async fn receive(
    State(server): State<Arc<Insights>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (metadata, ts) = (h("x-call-metadata"), h("x-timestamp"));
    let body_sha = hex(&Sha256::digest(&body));
    let signature_ok =
        ts.parse::<i64>().is_ok_and(|t| {
            signature(server.key.as_bytes(), t, &metadata, &body_sha) == h("x-signature")
        }) && (chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap_or(0)).abs() < 60;
    let metadata = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&metadata)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    server.received.lock().unwrap().push(Received {
        query,
        content_type: h("content-type"),
        body: body.to_vec(),
        metadata,
        signature_ok,
    });
    let status = server
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(StatusCode::OK);
    (status, r#"{"error":"scripted"}"#.to_string())
}

/// Serves on a free port; returns its base URL.
async fn serve(server: Arc<Insights>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/webhooks/recording", post(receive))
        .with_state(server);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

fn upload_settings(url: &str) -> UploadSettings {
    UploadSettings {
        url: url.into(),
        secret: Secret::new(SECRET),
        ..Default::default()
    }
}

async fn setup(script: &[u16]) -> (Arc<Insights>, UploadSettings) {
    let settings = upload_settings("http://unused");
    let server = Arc::new(Insights {
        // What the uploader signs with (the environment's secret, when one is set).
        key: settings.resolved_secret().expose().to_string(),
        script: Mutex::new(
            script
                .iter()
                .map(|s| StatusCode::from_u16(*s).unwrap())
                .collect(),
        ),
        ..Default::default()
    });
    let url = serve(server.clone()).await;
    (server, upload_settings(&url))
}

fn uploader(dir: &Path, settings: &UploadSettings) -> Uploader {
    Uploader::with_backoff(dir, settings, UploadSource::Bridge, Duration::ZERO)
        .expect("valid settings")
        .expect("enabled")
}

/// Records a short call with the real recorder; returns the summary's path.
fn record_call(dir: &Path, call_id: &str) -> PathBuf {
    let recorders = Recorders::new(settings(dir, RecordingFormat::Wav, 100)).unwrap();
    let mut call = recorders
        .start(CallFacts {
            call_id: call_id.into(),
            tenant: "pbx.example.com".into(),
            caller: Some("+5511999999999".into()),
            callee: Some("1000".into()),
            rate: 8000,
            started_at: started_at(),
            consent: Some(true),
        })
        .unwrap();
    call.caller(&[100i16; 8000 * 2]);
    call.fact(json!({"agent_id": "agent-7"}));
    let summary = call.paths().summary.clone();
    call.finish(json!({"reason": "hangup"}));
    recorders.drain();
    assert!(summary.is_file(), "the recorder wrote the summary");
    summary
}

fn received(server: &Insights) -> Vec<Received> {
    server.received.lock().unwrap().clone()
}

#[tokio::test]
async fn a_finished_call_is_uploaded_once_signed_with_its_facts() {
    let tmp = TempDir::new("upload-once");
    let (server, settings) = setup(&[]).await;
    let summary = record_call(tmp.path(), "call-1");
    let audio = std::fs::read(summary.with_extension("wav")).unwrap();
    let up = uploader(tmp.path(), &settings);

    let report = up.scan_once().await;
    assert_eq!(report.uploaded, 1, "{report:?}");
    let got = received(&server);
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert!(
        r.signature_ok,
        "signature checks as call-insights checks it"
    );
    assert_eq!(r.body, audio, "the body is the audio file");
    assert_eq!(r.content_type, "audio/wav");
    assert_eq!(r.query["domain"], "pbx.example.com");
    assert_eq!(r.query["source"], "bridge");
    let m = &r.metadata;
    assert_eq!(m["event"], "call.completed");
    assert_eq!(m["call_id"], "call-1");
    assert_eq!(m["from"], "+5511999999999");
    assert_eq!(m["to"], "1000");
    assert_eq!(m["agent_id"], "agent-7");
    assert_eq!(m["duration"], 2);
    assert_eq!(m["consent"], true, "the dialplan's consent goes along");
    // Started 2023-11-14T22:13:20Z, 2 s of audio.
    assert_eq!(m["timestamp"], "2023-11-14T22:13:22Z");
    assert_eq!(m["meta"]["source"], "bridge");
    assert_eq!(m["meta"]["end"]["reason"], "hangup");
    assert!(m.get("recording_url").is_none());
    assert!(
        summary.with_extension("uploaded").is_file(),
        "marker written"
    );

    assert_eq!(
        up.scan_once().await,
        ScanReport::default(),
        "not sent twice"
    );
    assert_eq!(received(&server).len(), 1);
    assert_eq!(up.metrics().uploaded.get(), 1);
}

#[tokio::test]
async fn an_unfinished_call_is_not_uploaded() {
    let tmp = TempDir::new("upload-unfinished");
    let (server, settings) = setup(&[]).await;
    let day = tmp.path().join("pbx.example.com").join("2023-11-14");
    std::fs::create_dir_all(&day).unwrap();
    std::fs::write(day.join("live.wav"), b"RIFF....").unwrap();
    std::fs::write(day.join("live.jsonl"), b"{}\n").unwrap();
    // turn-api's parts folder holds .json files that are not summaries.
    let parts = tmp.path().join(".parts").join("s1");
    std::fs::create_dir_all(&parts).unwrap();
    std::fs::write(parts.join("session.json"), b"{}").unwrap();

    let report = uploader(tmp.path(), &settings).scan_once().await;
    assert_eq!(report, ScanReport::default());
    assert!(received(&server).is_empty());
}

#[tokio::test]
async fn server_errors_are_retried_then_the_call_is_marked() {
    let tmp = TempDir::new("upload-retry");
    let (server, settings) = setup(&[500, 503]).await;
    let summary = record_call(tmp.path(), "call-r");
    let up = uploader(tmp.path(), &settings);

    assert_eq!(up.scan_once().await.retried, 1);
    assert!(!summary.with_extension("uploaded").exists());
    assert_eq!(up.scan_once().await.retried, 1);
    assert_eq!(up.scan_once().await.uploaded, 1);
    assert!(summary.with_extension("uploaded").is_file());
    assert_eq!(received(&server).len(), 3);
    assert!(received(&server).iter().all(|r| r.signature_ok));
    assert_eq!(up.metrics().retried.get(), 2);
    assert_eq!(up.metrics().uploaded.get(), 1);
}

#[tokio::test]
async fn a_retry_waits_for_its_backoff() {
    let tmp = TempDir::new("upload-backoff");
    let (server, settings) = setup(&[429]).await;
    record_call(tmp.path(), "call-b");
    let up = Uploader::with_backoff(
        tmp.path(),
        &settings,
        UploadSource::TurnApi,
        Duration::from_secs(60),
    )
    .unwrap()
    .unwrap();
    assert_eq!(up.scan_once().await.retried, 1);
    let report = up.scan_once().await;
    assert_eq!(report.waiting, 1, "{report:?}");
    assert_eq!(received(&server).len(), 1);
    assert_eq!(received(&server)[0].query["source"], "turn_api");
    assert_eq!(backoff(BACKOFF_BASE, 1), Duration::from_secs(2));
    assert_eq!(backoff(BACKOFF_BASE, 3), Duration::from_secs(8));
    assert_eq!(backoff(BACKOFF_BASE, 40), BACKOFF_CAP);
}

#[tokio::test]
async fn a_refusal_marks_the_call_failed_and_is_not_retried() {
    let tmp = TempDir::new("upload-400");
    let (server, settings) = setup(&[400]).await;
    let summary = record_call(tmp.path(), "call-x");
    let up = uploader(tmp.path(), &settings);

    assert_eq!(up.scan_once().await.failed, 1);
    let reason = std::fs::read_to_string(summary.with_extension("upload-failed")).unwrap();
    assert!(reason.contains("400"), "{reason}");
    assert!(!summary.with_extension("uploaded").exists());
    assert_eq!(up.scan_once().await, ScanReport::default());
    assert_eq!(received(&server).len(), 1);
    assert_eq!(up.metrics().failed.get(), 1);
}

#[tokio::test]
async fn a_restart_does_not_upload_marked_calls_again() {
    let tmp = TempDir::new("upload-restart");
    let (server, settings) = setup(&[]).await;
    record_call(tmp.path(), "call-a");
    assert_eq!(
        uploader(tmp.path(), &settings).scan_once().await.uploaded,
        1
    );
    record_call(tmp.path(), "call-b");

    // A new process over the same folder: only the new call goes.
    let again = uploader(tmp.path(), &settings);
    assert_eq!(again.scan_once().await.uploaded, 1);
    let ids: Vec<Value> = received(&server)
        .iter()
        .map(|r| r.metadata["call_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("call-a"), json!("call-b")]);
}

#[tokio::test]
async fn delete_after_upload_removes_the_calls_files() {
    let tmp = TempDir::new("upload-delete");
    let (_server, mut settings) = setup(&[]).await;
    settings.delete_after_upload = true;
    let summary = record_call(tmp.path(), "call-d");
    assert_eq!(
        uploader(tmp.path(), &settings).scan_once().await.uploaded,
        1
    );
    for ext in ["wav", "jsonl", "json", "uploaded"] {
        assert!(!summary.with_extension(ext).exists(), "{ext} left behind");
    }
}

#[tokio::test]
async fn a_call_without_its_audio_is_set_aside() {
    let tmp = TempDir::new("upload-noaudio");
    let (server, settings) = setup(&[]).await;
    let summary = record_call(tmp.path(), "call-n");
    std::fs::remove_file(summary.with_extension("wav")).unwrap();
    assert_eq!(uploader(tmp.path(), &settings).scan_once().await.failed, 1);
    assert!(summary.with_extension("upload-failed").is_file());
    assert!(received(&server).is_empty());
}

/// Logs are checked in `core/tests/recording_upload_logs.rs` (a process of its own, so
/// no other test's threads race the log capture).
#[tokio::test]
async fn the_secret_is_not_shown() {
    let (_server, settings) = setup(&[]).await;
    let tmp = TempDir::new("upload-secret");
    let up = uploader(tmp.path(), &settings);
    assert!(!format!("{settings:?} {up:?}").contains(SECRET));
    assert!(format!("{settings:?}").contains("***"));
}

#[test]
fn settings_read_from_toml_and_are_checked() {
    let s: crate::recording::RecordingSettings = toml::from_str(
        "[upload]\nurl = \"https://insights.example.com\"\nsecret = \"x\"\nconcurrency = 4",
    )
    .unwrap();
    assert_eq!(s.upload.concurrency, 4);
    assert_eq!(s.upload.scan_secs, 10);
    assert_eq!(s.upload.timeout_secs, 300);
    assert!(s.validate().is_ok());
    assert!(!UploadSettings::default().is_enabled());
    let bad = UploadSettings {
        url: "ftp://x".into(),
        ..Default::default()
    };
    assert!(bad.validate().is_err());
    assert!(toml::from_str::<UploadSettings>("urll = \"x\"").is_err());
}

#[test]
fn the_domain_falls_back_when_the_tenant_is_not_one() {
    assert_eq!(
        domain_for("pbx.example.com", "fallback.example"),
        "pbx.example.com"
    );
    assert_eq!(
        domain_for("6f1c2a7e-1b2c-4d5e-8f90-123456789abc", ""),
        "6f1c2a7e-1b2c-4d5e-8f90-123456789abc"
    );
    assert_eq!(domain_for("Acme Corp", "acme.example"), "acme.example");
    assert_eq!(domain_for("", "acme.example"), "acme.example");
    assert_eq!(domain_for("Acme Corp", ""), "Acme Corp");
}
