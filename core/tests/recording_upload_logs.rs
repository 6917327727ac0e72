//! The upload secret never reaches the logs: a retried and a refused upload are logged
//! (captured by a subscriber of this process's own) and the secret is not in them.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde_json::json;
use voice_core::config::Secret;
use voice_core::recording::upload::{UploadSettings, UploadSource, Uploader, SECRET_ENV};
use voice_core::recording::{CallFacts, Recorders, RecordingSettings};

const SECRET: &str = "a-test-secret-of-enough-length";

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_secret_is_never_logged() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    // The first request is answered 500 (retried), the next 400 (set aside). Each body is
    // read first, as call-insights does: an answer sent before the upload is over closes
    // the connection under the client, which would make the next request a network error.
    let answers = Arc::new(Mutex::new(vec![
        StatusCode::BAD_REQUEST,
        StatusCode::INTERNAL_SERVER_ERROR,
    ]));
    let app = Router::new().route(
        "/webhooks/recording",
        post(move |_body: axum::body::Bytes| {
            let answers = answers.clone();
            async move {
                answers
                    .lock()
                    .expect("answers")
                    .pop()
                    .unwrap_or(StatusCode::OK)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = std::env::temp_dir().join(format!("voice-core-upload-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let recorders = Recorders::new(RecordingSettings {
        enabled: true,
        dir: dir.clone(),
        ..Default::default()
    })
    .expect("recorder");
    for id in ["call-1", "call-2"] {
        let mut call = recorders
            .start(CallFacts {
                call_id: id.into(),
                tenant: "pbx.example.com".into(),
                caller: None,
                callee: None,
                rate: 8000,
                started_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                consent: None,
            })
            .expect("call");
        call.caller(&[0i16; 800]);
        call.finish(json!({"reason": "hangup"}));
    }
    recorders.drain();

    let settings = UploadSettings {
        url,
        secret: Secret::new(SECRET),
        concurrency: 1,
        ..Default::default()
    };
    let up = Uploader::new(&dir, &settings, UploadSource::Bridge)
        .expect("settings")
        .expect("enabled");
    let report = up.scan_once().await;
    tracing::info!(settings = ?settings, uploader = ?up, "shown");
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!((report.retried, report.failed), (1, 1), "{report:?}");
    let text = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("utf-8");
    assert!(
        text.contains("will retry") && text.contains("set aside"),
        "{text}"
    );
    assert!(text.contains("UploadSettings"), "{text}");
    let env_secret = std::env::var(SECRET_ENV).unwrap_or_default();
    assert!(!text.contains(SECRET), "the secret leaked into the logs");
    assert!(env_secret.is_empty() || !text.contains(&env_secret));
}
