//! The pipeline worker end to end, against the real PostgreSQL, Redis and (one test) moto's
//! S3 server, with the protocol-faithful fakes of Deepgram, OpenAI, the LLM and Pipedrive:
//! every stage once, a worker killed mid-job, a poison job, each stage's failure, consent,
//! phone hashing, retention and the signed recording upload. Waits are bounded by a
//! deadline only so that a broken pipeline fails instead of hanging; nothing is timed.

mod harness;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use call_insights::intake::signature::WebhookSecret;
use call_insights::intake::Intake;
use call_insights::privacy::retention::purge_all;
use call_insights::queue::Job;
use call_insights::state::{AppState, PlatformToken};
use call_insights::storage::{Backend, Storage};
use call_insights::worker::process::{process_call, Outcome};
use harness::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use voice_core::config::Secret;
use voice_sim::fake_deepgram;
use voice_sim::fake_pipedrive;

const WEBHOOK_SECRET: &str = "webhook-secret-for-tests-0123456789";

#[tokio::test]
async fn a_call_goes_through_every_stage_once_and_reaches_the_crm() {
    let b = Bench::start("").await;
    let t = b.tenant("pipeline-one.example.com").await;
    let call = b.call(t, "call-1").await;
    let worker = b.worker("w1").await;
    b.wait_status(t, call, &["processed"]).await;
    // The CRM push follows `processed`: wait for its stage too.
    let row = b.wait_stage(t, call, "crm", "done").await;
    worker.stop().await;

    for stage in ["download", "transcribe", "analyze", "score", "crm"] {
        assert_eq!(row.stage(stage), "done", "{stage}: {}", row.stage_status);
    }
    assert_eq!(row.stage_status["transcribe"]["provider"], "deepgram");
    assert_eq!(b.count("recordings", call).await, 1);
    assert_eq!(b.count("transcripts", call).await, 1);
    assert_eq!(b.count("insights", call).await, 1);
    assert_eq!(b.count("scorecards", call).await, 1);
    assert!(b.count("segments", call).await >= 2);

    // What was stored is what the fakes said, and the recording is the one downloaded.
    let key = b
        .value(
            "SELECT storage_key FROM recordings WHERE call_id = $1",
            call,
        )
        .await;
    let stored = b
        .storage
        .get(key["storage_key"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.as_ref(), tone_wav(4).as_slice());
    let insights = b
        .value(
            "SELECT summary, tags FROM insights WHERE call_id = $1",
            call,
        )
        .await;
    assert_eq!(insights["summary"], "Cliente pediu um orçamento de frete.");
    assert_eq!(insights["tags"], json!(["frete", "orcamento"]));
    let score = b
        .value(
            "SELECT total_score, max_score FROM scorecards WHERE call_id = $1",
            call,
        )
        .await;
    assert_eq!(score["max_score"].as_f64(), Some(100.0));
    assert_eq!(score["total_score"].as_f64(), Some(50.0));

    // The CRM got one note and one activity on the person found by phone.
    let notes = b.fakes.pipedrive.notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["person_id"], 7);
    let note = notes[0]["content"].as_str().unwrap();
    assert!(
        note.contains("Cliente pediu um orçamento de frete."),
        "{note}"
    );
    assert!(note.contains(&format!("https://insights.example.com/panel/calls/{call}")));
    assert_eq!(b.fakes.pipedrive.activities().len(), 1);
    let crm = b
        .value(
            "SELECT count(*) FILTER (WHERE status = 'ok') AS ok FROM crm_events WHERE call_id = $1",
            call,
        )
        .await;
    assert!(crm["ok"].as_i64().unwrap() >= 2, "{crm}");

    // Metrics: one job processed, a duration for each stage.
    let text = b.metrics.render();
    assert!(text.contains("insights_jobs_processed_total 1"), "{text}");
    assert!(
        text.contains("insights_stage_transcribe_seconds_count 1"),
        "{text}"
    );
    assert_eq!(b.fakes.deepgram.stats().prerecorded_requests, 1);

    // A late duplicate delivery of the job does nothing, and leaves the record as it was.
    let again = process_call(&b.pipeline(), t, call, 2).await.unwrap();
    assert_eq!(again, Outcome::AlreadyDone);
    let after = b.row(t, call).await;
    assert_eq!(after.stage_status, row.stage_status);
    assert_eq!(b.fakes.pipedrive.notes().len(), 1);
}

#[tokio::test]
async fn a_worker_killed_mid_job_leaves_it_to_another_that_finishes_it_once() {
    let b = Bench::start("[worker]\nvisibility_timeout_secs = 1\nconcurrency = 1").await;
    let t = b.tenant("pipeline-kill.example.com").await;
    // The first worker gets stuck in transcription (Deepgram never answers) and dies there.
    b.fakes.deepgram.set_fault(fake_deepgram::Fault::Hang);
    let call = b.call(t, "call-kill").await;
    let first = b.worker("dies").await;
    b.wait_status(t, call, &["transcribing"]).await;
    first.abort();
    b.fakes.deepgram.set_fault(fake_deepgram::Fault::None);

    let second = b.worker("survives").await;
    b.wait_status(t, call, &["processed"]).await;
    let row = b.wait_stage(t, call, "crm", "done").await;
    second.stop().await;
    // The download was not done again: its stage was skipped by the second worker.
    assert_eq!(b.fakes.files.hits.load(Ordering::SeqCst), 1);
    assert_eq!(row.stage("download"), "skipped", "{}", row.stage_status);
    assert_eq!(row.stage("transcribe"), "done");
    assert_eq!(b.count("recordings", call).await, 1);
    assert_eq!(b.count("transcripts", call).await, 1);
    assert_eq!(b.count("insights", call).await, 1);
    assert_eq!(b.count("scorecards", call).await, 1);
    // The CRM got the call once: one note, one activity.
    assert_eq!(b.fakes.pipedrive.notes().len(), 1);
    assert_eq!(b.fakes.pipedrive.activities().len(), 1);
    assert!(b.queue.dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_poison_job_goes_to_the_dead_letter_stream_with_its_error() {
    let b = Bench::start("").await;
    let t = b.tenant("pipeline-poison.example.com").await;
    let call = b.call(t, "call-poison").await;
    // A job of a kind no worker knows: refused at once, never retried.
    b.queue
        .enqueue(&Job::new(t, call, "explode", json!({})))
        .await
        .unwrap();
    let worker = b.worker("w").await;
    let mut dead = Vec::new();
    for _ in 0..400 {
        dead = b.queue.dead_letters(10).await.unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.stop().await;
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].error.contains("unknown job kind `explode`"),
        "{}",
        dead[0].error
    );
    assert_eq!(dead[0].job.as_ref().unwrap().call_id, call);
    let row = b.row(t, call).await;
    assert_eq!(row.status, "failed");
    assert!(row.error.unwrap().contains("explode"));
    let text = b.metrics.render();
    assert!(text.contains("insights_jobs_failed_total 1"), "{text}");
    assert!(text.contains("insights_jobs_processed_total 0"), "{text}");
}

#[tokio::test]
async fn a_missing_recording_fails_the_call_at_once() {
    let b = Bench::start("").await;
    let t = b.tenant("pipeline-404.example.com").await;
    let url = format!("{}/rec/nothing.wav", b.fakes.files.base);
    let call = b.accept(t, "call-404", &url, Some(true)).await;
    let worker = b.worker("w").await;
    let row = b.wait_status(t, call, &["failed"]).await;
    worker.stop().await;
    assert_eq!(row.stage("download"), "failed", "{}", row.stage_status);
    assert!(row.error.unwrap().contains("404"));
    // Permanent: one attempt, straight to the dead letters.
    assert_eq!(b.fakes.files.hits.load(Ordering::SeqCst), 1);
    assert_eq!(b.queue.dead_letters(10).await.unwrap().len(), 1);
    assert_eq!(b.fakes.deepgram.stats().prerecorded_requests, 0);
}

#[tokio::test]
async fn a_recording_too_large_or_not_audio_fails_at_once() {
    let b = Bench::start("[worker.download]\nmax_bytes = 100000").await;
    let t = b.tenant("pipeline-limits.example.com").await;
    // 4 s of 16 kHz 16-bit audio is 128 kB, over the 100 kB cap.
    let big = b.call(t, "call-big").await;
    let page = b
        .fakes
        .files
        .put("page.wav", b"<html>not audio</html>".repeat(50));
    let html = b.accept(t, "call-html", &page, Some(true)).await;
    let worker = b.worker("w").await;
    let big_row = b.wait_status(t, big, &["failed"]).await;
    let html_row = b.wait_status(t, html, &["failed"]).await;
    worker.stop().await;
    assert!(big_row.error.unwrap().contains("larger than 100000 bytes"));
    assert!(html_row.error.unwrap().contains("not an audio file"));
    // Permanent: each fetched once, nothing stored, nothing transcribed.
    assert_eq!(b.fakes.files.hits.load(Ordering::SeqCst), 2);
    assert_eq!(
        b.count("recordings", big).await + b.count("recordings", html).await,
        0
    );
    assert_eq!(b.fakes.deepgram.stats().prerecorded_requests, 0);
    assert_eq!(b.queue.dead_letters(10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_download_that_fails_then_works_is_retried() {
    let b = Bench::start("").await;
    let t = b.tenant("pipeline-500.example.com").await;
    b.fakes.files.fail_next.store(1, Ordering::SeqCst);
    let call = b.call(t, "call-500").await;
    let worker = b.worker("w").await;
    let row = b.wait_status(t, call, &["processed"]).await;
    worker.stop().await;
    assert_eq!(b.fakes.files.hits.load(Ordering::SeqCst), 2);
    assert_eq!(row.stage_status["download"]["attempts"], 2);
    assert!(b.metrics.render().contains("insights_jobs_retried_total 1"));
}

#[tokio::test]
async fn a_download_that_hangs_times_out_and_is_retried() {
    let b = Bench::start("[worker.download]\ntimeout_secs = 1").await;
    let t = b.tenant("pipeline-hang.example.com").await;
    b.fakes.files.hang_next.store(1, Ordering::SeqCst);
    let call = b.call(t, "call-hang").await;
    let worker = b.worker("w").await;
    let row = b.wait_status(t, call, &["processed", "failed"]).await;
    worker.stop().await;
    assert_eq!(row.status, "processed", "{}", row.stage_status);
    assert_eq!(b.fakes.files.hits.load(Ordering::SeqCst), 2);
    assert_eq!(row.stage_status["download"]["attempts"], 2);
    assert!(b.metrics.render().contains("insights_jobs_retried_total 1"));
}

#[tokio::test]
async fn deepgram_down_falls_back_to_openai() {
    let b = Bench::start("").await;
    let t = b.tenant("pipeline-fallback.example.com").await;
    b.fakes
        .deepgram
        .set_fault(fake_deepgram::Fault::Refuse(503));
    let call = b.call(t, "call-fallback").await;
    let worker = b.worker("w").await;
    let row = b.wait_status(t, call, &["processed"]).await;
    worker.stop().await;
    assert_eq!(row.stage_status["transcribe"]["provider"], "openai");
    assert_eq!(b.fakes.openai.stats().transcriptions, 1);
    let text = b
        .value(
            "SELECT provider, text FROM transcripts WHERE call_id = $1",
            call,
        )
        .await;
    assert_eq!(text["provider"], "openai");
    assert!(text["text"]
        .as_str()
        .unwrap()
        .contains("Quero um orçamento."));
}

#[tokio::test]
async fn transcription_down_everywhere_is_retried_then_the_call_fails() {
    let b = Bench::start("").await;
    let t = b.tenant("pipeline-stt-down.example.com").await;
    b.fakes
        .deepgram
        .set_fault(fake_deepgram::Fault::Refuse(503));
    b.fakes
        .openai
        .set_fault(voice_sim::fake_openai_audio::Fault::Refuse(500));
    let call = b.call(t, "call-stt-down").await;
    let worker = b.worker("w").await;
    let row = b.wait_status(t, call, &["failed"]).await;
    worker.stop().await;
    assert_eq!(row.stage("transcribe"), "failed", "{}", row.stage_status);
    // max_attempts = 3: each attempt tried both providers.
    assert_eq!(
        b.fakes.deepgram.stats().prerecorded_requests + b.fakes.deepgram.stats().refused,
        3
    );
    assert_eq!(b.fakes.openai.stats().refused, 3);
    let dead = b.queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
}

#[tokio::test]
async fn an_llm_answer_that_is_not_json_is_asked_again_and_one_that_never_is_fails() {
    // First call: not JSON, then valid. Second call: never valid.
    let replies = vec![
        "Claro! Aqui está a análise.".to_string(),
        ANALYSIS.to_string(),
        "{\"segments\": 3}".to_string(),
    ];
    let b = Bench::start_with("", replies).await;
    let t = b.tenant("pipeline-llm.example.com").await;
    let call = b.call(t, "call-llm").await;
    let worker = b.worker("w").await;
    let row = b.wait_status(t, call, &["processed"]).await;
    assert_eq!(row.stage("analyze"), "done");
    assert_eq!(b.count("insights", call).await, 1);

    let bad = b.call(t, "call-llm-bad").await;
    let row = b.wait_status(t, bad, &["failed"]).await;
    worker.stop().await;
    assert_eq!(row.stage("analyze"), "failed", "{}", row.stage_status);
    assert!(row.error.unwrap().contains("analy"));
    assert_eq!(b.count("insights", bad).await, 0);
}

#[tokio::test]
async fn a_scorecard_that_never_validates_fails_the_call_and_keeps_the_analysis() {
    let b = Bench::start_scripted(
        "",
        vec![ANALYSIS.to_string()],
        vec!["{\"items\": \"todos bons\"}".to_string()],
    )
    .await;
    let t = b.tenant("pipeline-score.example.com").await;
    let call = b.call(t, "call-score").await;
    let worker = b.worker("w").await;
    let row = b.wait_status(t, call, &["failed"]).await;
    worker.stop().await;
    assert_eq!(row.stage("score"), "failed", "{}", row.stage_status);
    assert!(row.error.unwrap().contains("scorecard"));
    // What the earlier stages made stays, once; nothing half-scored is written.
    assert_eq!(b.count("insights", call).await, 1);
    assert_eq!(b.count("transcripts", call).await, 1);
    assert_eq!(b.count("scorecards", call).await, 0);
    assert!(b.fakes.pipedrive.notes().is_empty());
}

#[tokio::test]
async fn storage_down_is_retried_and_the_call_fails_when_it_stays_down() {
    let mut b = Bench::start("").await;
    b.storage = Storage::unavailable(Backend::S3, "the bucket does not answer");
    let t = b.tenant("pipeline-storage.example.com").await;
    let call = b.call(t, "call-storage").await;
    let worker = b.worker("w").await;
    let row = b.wait_status(t, call, &["failed"]).await;
    worker.stop().await;
    assert_eq!(row.stage("download"), "failed", "{}", row.stage_status);
    assert!(row.error.unwrap().contains("storage"));
    assert_eq!(b.queue.dead_letters(10).await.unwrap()[0].attempts, 3);
    assert_eq!(b.count("recordings", call).await, 0);
}

#[tokio::test]
async fn a_crm_failure_is_retried_without_touching_the_processed_call() {
    let b = Bench::start("").await;
    let t = b.tenant("pipeline-crm.example.com").await;
    b.fakes.pipedrive.set_faults(
        vec![fake_pipedrive::Fault::Refuse(500)],
        fake_pipedrive::Fault::None,
    );
    let call = b.call(t, "call-crm").await;
    let worker = b.worker("w").await;
    b.wait_status(t, call, &["processed"]).await;
    let row = b.wait_stage(t, call, "crm", "done").await;
    worker.stop().await;
    assert_eq!(row.stage("crm"), "done", "{}", row.stage_status);
    assert_eq!(row.status, "processed");
    assert_eq!(b.fakes.pipedrive.notes().len(), 1);
    let failed = b
        .value(
            "SELECT count(*) AS n FROM crm_events WHERE call_id = $1 AND status = 'failed'",
            call,
        )
        .await;
    assert_eq!(failed["n"], 1);
}

#[tokio::test]
async fn the_tenants_own_scorecard_template_is_used() {
    // The LLM scores the tenant's two items; the default template's six would not validate.
    let answer = r#"{"items":[{"item":"Cordialidade","score":30,"reason":"ok"},
        {"item":"Resolução","score":45,"reason":"ok"}]}"#;
    let b = Bench::start_scripted("", vec![ANALYSIS.to_string()], vec![answer.to_string()]).await;
    let t = b.tenant("pipeline-template.example.com").await;
    let template: Uuid = b
        .db()
        .with_tenant(t, move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_one(
                        r#"INSERT INTO scorecard_templates (tenant_id, key, name, items, is_default)
                           VALUES ($1, 'suporte', 'Suporte', '[
                             {"item": "Cordialidade", "weight": 40, "criteria": "Foi cordial."},
                             {"item": "Resolução", "weight": 60, "criteria": "Resolveu."}
                           ]', true) RETURNING id"#,
                        &[&t],
                    )
                    .await?;
                Ok::<Uuid, voice_core::db::DbError>(row.get(0))
            })
        })
        .await
        .unwrap();
    let call = b.call(t, "call-template").await;
    let worker = b.worker("w").await;
    let row = b.wait_status(t, call, &["processed", "failed"]).await;
    worker.stop().await;
    assert_eq!(row.status, "processed", "{}", row.stage_status);
    let score = b
        .value(
            "SELECT template_key, template_id, total_score, max_score, items
             FROM scorecards WHERE call_id = $1",
            call,
        )
        .await;
    assert_eq!(score["template_key"], "suporte");
    assert_eq!(score["template_id"], template.to_string());
    assert_eq!(score["max_score"].as_f64(), Some(100.0));
    assert_eq!(score["total_score"].as_f64(), Some(75.0));
    assert_eq!(score["items"].as_array().map(Vec::len), Some(2));
    // The model was asked about the tenant's items and criteria.
    let asked = b.fakes.llm.stats().accepted;
    assert!(
        asked.iter().any(|r| {
            let text = serde_json::to_string(&r.messages).unwrap_or_default();
            text.contains("Cordialidade") && text.contains("Resolveu.")
        }),
        "no scoring request named the tenant's items"
    );
}

#[tokio::test]
async fn with_the_crm_push_off_nothing_reaches_the_crm() {
    let b = Bench::start("[crm]\nenabled = false").await;
    let t = b.tenant("pipeline-nocrm.example.com").await;
    let call = b.call(t, "call-nocrm").await;
    let worker = b.worker("w").await;
    let row = b.wait_status(t, call, &["processed"]).await;
    // Give a CRM stage, were there one, the time to start.
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.stop().await;
    let row_after = b.row(t, call).await;
    assert_eq!(row.stage("score"), "done");
    assert_eq!(row_after.stage("crm"), "", "{}", row_after.stage_status);
    assert!(b.fakes.pipedrive.requests().is_empty());
    assert_eq!(b.count("crm_events", call).await, 0);
}

#[tokio::test]
async fn without_consent_nothing_is_processed() {
    let b = Bench::start("").await;
    let t = b.tenant("pipeline-consent.example.com").await;
    let refused = b
        .accept(
            t,
            "no-consent",
            &b.fakes.files.put("a.wav", tone_wav(1)),
            Some(false),
        )
        .await;
    let worker = b.worker("w").await;
    b.wait_status(t, refused, &["skipped_no_consent"]).await;

    // A tenant that requires consent: a call that said nothing is not processed either…
    let strict = b.tenant("pipeline-strict.example.com").await;
    b.db()
        .admin(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "UPDATE tenants SET require_consent = true WHERE id = $1",
                    &[&strict],
                )
                .await?;
                Ok::<_, voice_core::db::DbError>(())
            })
        })
        .await
        .unwrap();
    let silent = b
        .accept(
            strict,
            "silent",
            &b.fakes.files.put("b.wav", tone_wav(1)),
            None,
        )
        .await;
    b.wait_status(strict, silent, &["skipped_no_consent"]).await;
    // …while in a tenant under the service's default it is.
    let lenient = b
        .accept(
            t,
            "silent-ok",
            &b.fakes.files.put("c.wav", tone_wav(1)),
            None,
        )
        .await;
    b.wait_status(t, lenient, &["processed"]).await;
    worker.stop().await;
    assert_eq!(b.fakes.files.hits.load(Ordering::SeqCst), 1);
    assert_eq!(b.count("recordings", refused).await, 0);
    // A refused consent is settled at intake (no job); the worker skipped the strict one.
    let metrics = b.metrics.render();
    assert!(
        metrics.contains("insights_calls_skipped_no_consent_total 1"),
        "{metrics}"
    );
}

/// A call-insights HTTP server over the bench's database and storage.
async fn serve(b: &Bench) -> (String, tokio::task::JoinHandle<()>) {
    let state = AppState::with_storage(
        b.config.clone(),
        b.db().clone(),
        None,
        PlatformToken::none(),
        b.storage.clone(),
    );
    let secret = WebhookSecret::new(&Secret::new(WEBHOOK_SECRET)).unwrap();
    let intake = Arc::new(Intake::new(&b.config.webhooks, secret));
    let app = call_insights::http::router_with(state, intake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    (base, server)
}

fn hmac_hex(parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn hashed_phone_numbers_are_stored_and_pushed_hashed() {
    let mut b = Bench::start("[privacy]\nhash_phone_numbers = true").await;
    b.config.privacy.phone_hash_key = Secret::new(PHONE_HASH_KEY);
    let t = b.tenant("pipeline-hash.example.com").await;
    let (base, server) = serve(&b).await;
    let url = b.fakes.files.put("hashed.wav", tone_wav(4));
    let body = serde_json::to_vec(&json!({
        "event": "call.completed", "call_id": "hashed-1", "from": CALLER,
        "to": "+551188888888", "agent_id": "1001", "duration": 4,
        "recording_url": url, "timestamp": "2026-12-01T14:15:22Z", "consent": true
    }))
    .unwrap();
    let answer = reqwest::Client::new()
        .post(format!(
            "{base}/webhooks/voip?domain=pipeline-hash.example.com"
        ))
        .header("content-type", "application/json")
        .header("x-signature", hmac_hex(&[&body]))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let accepted: serde_json::Value = answer.json().await.unwrap();
    let call: Uuid = accepted["callId"].as_str().unwrap().parse().unwrap();
    let worker = b.worker("w").await;
    let row = b.wait_status(t, call, &["processed"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.stop().await;
    server.abort();

    assert!(row.from_number.starts_with("h:"), "{}", row.from_number);
    assert!(!row.from_number.contains("99999"));
    let to = b
        .value("SELECT to_number FROM calls WHERE id = $1", call)
        .await;
    assert!(to["to_number"].as_str().unwrap().starts_with("h:"));
    // Nobody can be looked up by a hash: no person search reached the CRM.
    let searched = b
        .fakes
        .pipedrive
        .requests()
        .iter()
        .any(|r| r.path.contains("search"));
    assert!(!searched);
}

#[tokio::test]
async fn retention_deletes_old_media_and_transcripts_and_logs_it() {
    let mut b = Bench::start("").await;
    let t = b.tenant("pipeline-retention.example.com").await;
    let old = b.call(t, "old").await;
    let new = b.call(t, "new").await;
    let worker = b.worker("w").await;
    b.wait_status(t, old, &["processed"]).await;
    b.wait_status(t, new, &["processed"]).await;
    worker.stop().await;
    let key = b
        .value("SELECT storage_key FROM recordings WHERE call_id = $1", old)
        .await["storage_key"]
        .as_str()
        .unwrap()
        .to_string();
    b.db()
        .admin(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "UPDATE calls SET started_at = now() - interval '40 days' WHERE id = $1",
                    &[&old],
                )
                .await?;
                Ok::<_, voice_core::db::DbError>(())
            })
        })
        .await
        .unwrap();

    // No retention configured: nothing goes.
    let none = purge_all(b.db(), &b.storage, &b.config.privacy, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(none.calls, 0);

    b.config.privacy.retention_days = 30;
    let purged = purge_all(b.db(), &b.storage, &b.config.privacy, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(
        (purged.calls, purged.recordings, purged.transcripts),
        (1, 1, 1)
    );
    assert!(b.storage.get(&key).await.is_err());
    assert_eq!(b.count("transcripts", old).await, 0);
    assert_eq!(b.count("transcripts", new).await, 1);
    let log = b
        .value("SELECT deleted FROM retention_log WHERE call_id = $1", old)
        .await;
    assert_eq!(log["deleted"], json!(["recording", "transcript"]));
    // A second pass finds nothing left.
    let again = purge_all(b.db(), &b.storage, &b.config.privacy, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(again.calls, 0);
}

/// `POST /webhooks/recording` as our bridge sends it.
async fn upload(
    base: &str,
    domain: &str,
    metadata: &serde_json::Value,
    body: &[u8],
    sign_with: Option<&[u8]>,
) -> reqwest::Response {
    let meta = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(metadata).unwrap());
    let ts = chrono::Utc::now().timestamp().to_string();
    let digest = hex(&Sha256::digest(sign_with.unwrap_or(body)));
    let signature = hmac_hex(&[
        ts.as_bytes(),
        b".",
        meta.as_bytes(),
        b".",
        digest.as_bytes(),
    ]);
    reqwest::Client::new()
        .post(format!(
            "{base}/webhooks/recording?domain={domain}&source=bridge"
        ))
        .header("content-type", "audio/wav")
        .header("x-call-metadata", meta)
        .header("x-timestamp", ts)
        .header("x-signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_signed_recording_upload_is_stored_once_and_processed_without_a_download() {
    let b = Bench::start("").await;
    let t = b.tenant("pipeline-upload.example.com").await;
    let (base, server) = serve(&b).await;
    let metadata = json!({
        "event": "call.ended", "call_id": "bridge-call-1", "from": CALLER,
        "to": "1001", "agent_id": "1001", "duration": 4,
        "timestamp": "2026-12-01T14:15:22Z", "consent": true
    });
    let audio = tone_wav(4);

    // A body that is not the one signed: refused, nothing stored.
    let tampered = upload(
        &base,
        "pipeline-upload.example.com",
        &metadata,
        &audio,
        Some(b"x"),
    )
    .await;
    assert_eq!(tampered.status(), 401);

    let first = upload(
        &base,
        "pipeline-upload.example.com",
        &metadata,
        &audio,
        None,
    )
    .await;
    assert_eq!(first.status(), 200);
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(first["duplicate"], false);
    let again = upload(
        &base,
        "pipeline-upload.example.com",
        &metadata,
        &audio,
        None,
    )
    .await;
    assert_eq!(again.status(), 200);
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["callId"], first["callId"]);

    let call: Uuid = first["callId"].as_str().unwrap().parse().unwrap();
    let worker = b.worker("w").await;
    let row = b.wait_status(t, call, &["processed"]).await;
    worker.stop().await;
    server.abort();
    assert_eq!(row.stage("download"), "skipped", "{}", row.stage_status);
    assert_eq!(b.fakes.files.hits.load(Ordering::SeqCst), 0);
    assert_eq!(b.count("recordings", call).await, 1);
    let key = b
        .value(
            "SELECT storage_key FROM recordings WHERE call_id = $1",
            call,
        )
        .await;
    let stored = b
        .storage
        .get(key["storage_key"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.as_ref(), audio.as_slice());
    // The duplicate's copy was deleted: one object under the tenant's folder.
    let tenant_dir = b.storage_dir.join("recordings").join(t.to_string());
    let files = walk(&tenant_dir);
    assert_eq!(files.len(), 1, "{files:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn recordings_go_to_an_s3_compatible_store() {
    let mut b = Bench::start("").await;
    b.storage = s3_storage().await;
    let t = b.tenant("pipeline-s3.example.com").await;
    let call = b.call(t, "call-s3").await;
    let worker = b.worker("w").await;
    b.wait_status(t, call, &["processed"]).await;
    worker.stop().await;
    let key = b
        .value(
            "SELECT storage_key FROM recordings WHERE call_id = $1",
            call,
        )
        .await;
    let stored = b
        .storage
        .get(key["storage_key"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.as_ref(), tone_wav(4).as_slice());
}

#[tokio::test]
async fn a_worker_only_writes_in_the_calls_tenant() {
    let b = Bench::start("").await;
    let a = b.tenant("pipeline-iso-a.example.com").await;
    let other = b.tenant("pipeline-iso-b.example.com").await;
    let call = b.call(a, "iso-1").await;
    // A forged job naming the call under another tenant finds nothing and does nothing.
    b.queue
        .enqueue(&Job::new(other, call, "process_call", json!({})))
        .await
        .unwrap();
    let worker = b.worker("w").await;
    b.wait_status(a, call, &["processed"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.stop().await;
    let owners = b
        .value(
            "SELECT array_agg(DISTINCT tenant_id) AS t FROM transcripts WHERE call_id = $1",
            call,
        )
        .await;
    assert_eq!(owners["t"], json!([a]));
    assert_eq!(b.fakes.deepgram.stats().prerecorded_requests, 1);
}
