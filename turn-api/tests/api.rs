//! The HTTP API end to end: real requests to a server on 127.0.0.1:0, the real engine, the
//! protocol fakes as providers.

mod common;

use common::*;
use serde_json::json;

fn code(body: &serde_json::Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

#[tokio::test]
async fn a_session_greets_answers_a_turn_and_ends_with_its_summary() {
    let stack = Stack::start().await;
    let (status, created) = stack.create(KEY_A, DOMAIN_A).await;
    assert_eq!(status, 201, "{created}");
    let id = created["session_id"].as_str().unwrap().to_string();
    assert_eq!(created["greeting"]["text"], GREETING);
    assert_eq!(created["action"], "continue");
    // The greeting WAV is on disk and served by URL, at the engine's 8 kHz.
    let path = created["greeting"]["audio_path"].as_str().unwrap();
    let on_disk = voice_core::audio::wav::parse(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(on_disk.rate, 8000);
    assert!(on_disk.samples.len() > 800, "greeting too short");
    let url = created["greeting"]["audio_url"].as_str().unwrap();
    let served = stack.client.get(url).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "audio/wav");
    assert_eq!(served.bytes().await.unwrap(), std::fs::read(path).unwrap());

    let recording = stack.record("turn1.wav", &caller_wav(8000));
    let (status, answer) = stack.turn_json(&id, json!({"audio_path": recording})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["turn"], 1);
    assert_eq!(answer["caller_text"], HEARD);
    assert_eq!(answer["reply_text"], REPLY);
    assert_eq!(answer["action"], "continue");
    assert!(answer.get("target").is_none());
    assert!(answer["timings"]["stt_ms"].is_u64(), "{answer}");
    let reply = std::fs::read(answer["audio_path"].as_str().unwrap()).unwrap();
    assert!(voice_core::audio::wav::parse(&reply).unwrap().samples.len() > 800);
    // The transcriber got the caller's speech.
    assert!(stack.stt.stats().audio_ms_received > 500);

    let ended = stack
        .client
        .post(stack.url(&format!("/v1/sessions/{id}/end")))
        .bearer_auth(KEY_A)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 200);
    let summary: serde_json::Value = ended.json().await.unwrap();
    assert_eq!(summary["turns"], 1);
    assert_eq!(summary["call_id"], "call-1");
    assert_eq!(summary["domain"], DOMAIN_A);
    assert_eq!(summary["actions"], json!(["continue", "continue"]));
    assert_eq!(summary["history"][0]["reply_text"], GREETING);
    assert_eq!(summary["history"][1]["caller_text"], HEARD);
    assert_eq!(summary["conversation"]["turns"], 1);

    // Ended means gone: another turn or end is a 404 that says so.
    let (status, body) = stack.turn_json(&id, json!({"audio_path": recording})).await;
    assert_eq!((status, code(&body)), (404, "session_not_found"));
    let again = stack
        .client
        .delete(stack.url(&format!("/v1/sessions/{id}")))
        .bearer_auth(KEY_A)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);

    let metrics = stack
        .client
        .get(stack.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("turn_api_turns_total 1"), "{metrics}");
    assert!(
        metrics.contains("turn_api_sessions_created_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("turn_api_turn_seconds_count 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("turn_api_client_errors_total 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn delete_ends_a_session_too() {
    let stack = Stack::start().await;
    let id = stack.session().await;
    let r = stack
        .client
        .delete(stack.url(&format!("/v1/sessions/{id}")))
        .header("x-api-key", KEY_A)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let summary: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (summary["turns"].as_u64(), summary["session_id"].as_str()),
        (Some(0), Some(id.as_str()))
    );
}

#[tokio::test]
async fn keys_are_required_and_only_open_their_own_tenant() {
    let stack = Stack::start().await;
    // No key, a wrong key: 401.
    let r = stack
        .client
        .post(stack.url("/v1/sessions"))
        .json(&json!({"call_id": "c", "domain": DOMAIN_A}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(code(&body), "unauthorized");
    let (status, body) = stack.create("not-a-key-0123456789", DOMAIN_A).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"));
    assert!(!body.to_string().contains("not-a-key"), "{body}");
    // A key for another domain: 403.
    let (status, body) = stack.create(KEY_B, DOMAIN_A).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    // The domain by uuid works.
    let (status, _) = stack.create(KEY_A, &UUID_A.to_uppercase()).await;
    assert_eq!(status, 201);

    let id = stack.session().await;
    let recording = stack.record("t.wav", &caller_wav(8000));
    let body = json!({"audio_path": recording}).to_string().into_bytes();
    let (status, text) = stack
        .turn_raw(&id, KEY_B, "application/json", body.clone())
        .await;
    assert_eq!(status, 403, "{text}");
    let (status, _) = stack
        .turn_raw(&id, "wrong-key-0123456789", "application/json", body)
        .await;
    assert_eq!(status, 401);
    for (method, path) in [
        ("POST", format!("/v1/sessions/{id}/end")),
        ("DELETE", format!("/v1/sessions/{id}")),
    ] {
        let r = stack
            .client
            .request(method.parse().unwrap(), stack.url(&path))
            .bearer_auth(KEY_B)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
    }
    // B's failed attempts did not end A's session.
    let (status, answer) = stack.turn_json(&id, json!({"audio_path": recording})).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn bad_bodies_get_a_4xx_that_says_what_is_wrong() {
    let stack = Stack::start().await;
    let id = stack.session().await;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "application/json",
            b"{\"audio_path\": ".to_vec(),
            400,
            "bad_json",
        ),
        ("application/json", b"{}".to_vec(), 400, "missing_field"),
        (
            "application/json",
            b"{\"audio_path\": 5}".to_vec(),
            400,
            "invalid_field",
        ),
        ("application/json", b"\"x\"".to_vec(), 400, "bad_json"),
        (
            "audio/wav",
            b"RIFF garbage".to_vec(),
            400,
            "unreadable_audio",
        ),
        ("image/png", b"x".to_vec(), 415, "unsupported_media_type"),
        (
            "application/x-www-form-urlencoded",
            b"audio_path".to_vec(),
            400,
            "bad_form",
        ),
        (
            "application/x-www-form-urlencoded",
            vec![0xff, 0xfe],
            400,
            "bad_form",
        ),
    ];
    for (ct, body, status, want) in cases {
        let (got, text) = stack.turn_raw(&id, KEY_A, ct, body).await;
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!((got, code(&parsed)), (status, want), "{ct}: {text}");
        assert!(!parsed["error"]["message"].as_str().unwrap().is_empty());
    }
    // A file in the allowed folder that is not a WAV.
    let junk = stack.record("junk.wav", b"this is not audio");
    let (status, body) = stack.turn_json(&id, json!({"audio_path": junk})).await;
    assert_eq!((status, code(&body)), (400, "unreadable_audio"), "{body}");
    let missing = stack.recordings.join("nope.wav").display().to_string();
    let (status, body) = stack.turn_json(&id, json!({"audio_path": missing})).await;
    assert_eq!((status, code(&body)), (400, "unreadable_audio"), "{body}");
    // Unknown session, unknown route.
    let (status, body) = stack
        .turn_json("no-such-session", json!({"audio_path": junk}))
        .await;
    assert_eq!((status, code(&body)), (404, "session_not_found"));
    let r = stack
        .client
        .get(stack.url("/v2/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Session creation: missing field, bad JSON.
    let r = stack
        .client
        .post(stack.url("/v1/sessions"))
        .bearer_auth(KEY_A)
        .json(&json!({"domain": DOMAIN_A}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(code(&body), "missing_field");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("call_id"),
        "{body}"
    );
    // None of it was a turn.
    assert_eq!(stack.llm.stats().accepted.len(), 0);
}

#[tokio::test]
async fn paths_outside_the_recordings_folder_are_refused() {
    let stack = Stack::start().await;
    let id = stack.session().await;
    let rec = stack.recordings.display().to_string();
    // A real WAV outside the allowed folder, and a symlink to it from inside.
    let outside = stack.dir.join("outside.wav");
    std::fs::write(&outside, caller_wav(8000)).unwrap();
    let link = stack.recordings.join("link.wav");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    for path in [
        "/etc/passwd".to_string(),
        format!("{rec}/../outside.wav"),
        format!("{rec}/../../../etc/passwd"),
        format!("{rec}x/a.wav"),
        "rec/a.wav".to_string(),
        link.display().to_string(),
    ] {
        let (status, body) = stack.turn_json(&id, json!({"audio_path": path})).await;
        assert_eq!(
            (status, code(&body)),
            (400, "audio_path_not_allowed"),
            "{path}: {body}"
        );
    }
    // Answer files: only plain names in the audio folder.
    for name in [
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        "..%2Foutside.wav",
        "x.txt",
    ] {
        let r = stack
            .client
            .get(stack.url(&format!("/v1/audio/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{name}");
    }
    let r = stack
        .client
        .get(stack.url("/v1/audio/missing.wav"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        stack.stt.stats().audio_ms_received,
        0,
        "nothing was transcribed"
    );
}

#[tokio::test]
async fn form_bodies_json_sent_as_form_and_raw_wav_all_work() {
    let stack = Stack::start().await;
    let id = stack.session().await;
    let path = stack.record("a+b.wav", &caller_wav(8000));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        // mod_curl's default content type; it URL-decodes the data, so `+` arrives as is.
        (
            "application/x-www-form-urlencoded",
            format!("audio_path={path}").into_bytes(),
        ),
        // A JSON body with mod_curl's default content type.
        (
            "application/x-www-form-urlencoded",
            json!({"audio_path": path}).to_string().into_bytes(),
        ),
        ("audio/wav", caller_wav(16000)),
    ];
    for (i, (ct, body)) in bodies.into_iter().enumerate() {
        let (status, text) = stack.turn_raw(&id, KEY_A, ct, body).await;
        assert_eq!(status, 200, "{ct}: {text}");
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["turn"], i + 1);
        assert_eq!(answer["caller_text"], HEARD, "{ct}");
    }
    // Session creation as form fields, too.
    let r = stack
        .client
        .post(stack.url("/v1/sessions"))
        .header("x-api-key", KEY_A)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("call_id=abc&domain={DOMAIN_A}&caller=1001"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn answers_stay_well_under_mod_curl_s_64000_bytes() {
    // A runaway model: 30 000 characters of reply.
    let long = "Esta resposta é longa demais \"com aspas\". ".repeat(700);
    let stack = Stack::start_with(&long, "").await;
    let id = stack.session().await;
    let path = stack.record("t.wav", &caller_wav(8000));
    let (status, text) = stack
        .turn_raw(
            &id,
            KEY_A,
            "application/json",
            json!({"audio_path": path}).to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{}", &text[..text.len().min(300)]);
    assert!(text.len() < 40_000, "answer is {} bytes", text.len());
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    let reply = answer["reply_text"].as_str().unwrap();
    assert!(reply.starts_with("Esta resposta"), "{reply:.80}");
}

#[tokio::test]
async fn limits_end_the_session_with_a_goodbye_and_hangup() {
    let stack = Stack::start_with(
        REPLY,
        "[limits]\nmax_turns = 1\ngoodbye_text = \"Tchau!\"\n",
    )
    .await;
    let id = stack.session().await;
    let path = stack.record("t.wav", &caller_wav(8000));
    let (status, first) = stack.turn_json(&id, json!({"audio_path": path})).await;
    assert_eq!((status, first["action"].as_str()), (200, Some("continue")));
    let (status, second) = stack.turn_json(&id, json!({"audio_path": path})).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["action"], "hangup");
    assert_eq!(second["reply_text"], "Tchau!");
    assert_eq!(
        stack.llm.stats().accepted.len(),
        1,
        "the goodbye asks no model"
    );
}

#[tokio::test]
async fn sessions_expire_after_their_ttl_in_memory() {
    let stack = Stack::start_with(REPLY, "[redis]\nsession_ttl_secs = 1\n").await;
    let id = stack.session().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let path = stack.record("t.wav", &caller_wav(8000));
    let (status, body) = stack.turn_json(&id, json!({"audio_path": path})).await;
    assert_eq!((status, code(&body)), (404, "session_not_found"));
}

#[tokio::test]
async fn provider_failures_are_502_or_503() {
    let stack = Stack::start().await;
    let id = stack.session().await;
    let path = stack.record("t.wav", &caller_wav(8000));
    stack.llm.set_fault(voice_sim::fake_llm::Fault::Status(400));
    let (status, body) = stack.turn_json(&id, json!({"audio_path": path})).await;
    assert_eq!((status, code(&body)), (502, "provider_failed"), "{body}");
    stack.llm.set_fault(voice_sim::fake_llm::Fault::Status(503));
    let (status, body) = stack.turn_json(&id, json!({"audio_path": path})).await;
    assert_eq!(
        (status, code(&body)),
        (503, "providers_unavailable"),
        "{body}"
    );
    // The failed turns were not counted; the next good one is turn 1.
    stack.llm.set_fault(voice_sim::fake_llm::Fault::None);
    let (status, body) = stack.turn_json(&id, json!({"audio_path": path})).await;
    assert_eq!((status, body["turn"].as_u64()), (200, Some(1)), "{body}");
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let stack = Stack::start_with(REPLY, "[server]\nmax_body_bytes = 10000\n").await;
    let id = stack.session().await;
    let (status, text) = stack
        .turn_raw(&id, KEY_A, "audio/wav", caller_wav(16000))
        .await;
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!((status, code(&body)), (413, "body_too_large"), "{text}");
}

#[tokio::test]
async fn healthz_reports_the_store_and_providers() {
    let stack = Stack::start().await;
    let r = stack
        .client
        .get(stack.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["dependencies"]["memory"], "ok");
    assert_eq!(
        body["dependencies"]["providers"]["openai_chat"],
        "configured"
    );
    assert_eq!(
        body["dependencies"]["providers"]["elevenlabs_tts"],
        "configured"
    );
}

#[tokio::test]
async fn sessions_can_live_in_redis() {
    let prefix = format!(
        "turn-api-test:{}:{}:",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let extra = format!("[redis]\nurl = \"redis://127.0.0.1:6379\"\nkey_prefix = \"{prefix}\"\n");
    let stack = Stack::start_with(REPLY, &extra).await;
    assert_eq!(stack.state.store.name(), "redis");
    let id = stack.session().await;
    let path = stack.record("t.wav", &caller_wav(8000));
    let (status, answer) = stack.turn_json(&id, json!({"audio_path": path})).await;
    assert_eq!(
        (status, answer["turn"].as_u64()),
        (200, Some(1)),
        "{answer}"
    );
    let health: serde_json::Value = stack
        .client
        .get(stack.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["dependencies"]["redis"], "ok");
    let r = stack
        .client
        .post(stack.url(&format!("/v1/sessions/{id}/end")))
        .bearer_auth(KEY_A)
        .send()
        .await
        .unwrap();
    let summary: serde_json::Value = r.json().await.unwrap();
    assert_eq!(summary["history"][1]["caller_text"], HEARD);
    assert_eq!(stack.state.store.get(&id).await.unwrap(), None);
}

#[tokio::test]
async fn a_second_turn_while_one_is_answered_is_409_and_the_session_frees_after() {
    let stack =
        std::sync::Arc::new(Stack::start_with(REPLY, "[engine]\nllm_timeout_ms = 500\n").await);
    let id = stack.session().await;
    let path = stack.record("t.wav", &caller_wav(8000));
    stack
        .llm
        .set_fault(voice_sim::fake_llm::Fault::HangBeforeHeaders);
    let first = {
        let (stack, id, path) = (stack.clone(), id.clone(), path.clone());
        tokio::spawn(async move { stack.turn_json(&id, json!({"audio_path": path})).await })
    };
    stack
        .llm
        .wait_stats(std::time::Duration::from_secs(3), |s| s.hung >= 1)
        .await
        .expect("the first turn reached the model");
    let (status, body) = stack.turn_json(&id, json!({"audio_path": path})).await;
    assert_eq!((status, code(&body)), (409, "turn_in_progress"), "{body}");
    let (status, body) = first.await.unwrap();
    assert_eq!(
        (status, code(&body)),
        (503, "providers_unavailable"),
        "{body}"
    );
    stack.llm.set_fault(voice_sim::fake_llm::Fault::None);
    let (status, body) = stack.turn_json(&id, json!({"audio_path": path})).await;
    assert_eq!((status, body["turn"].as_u64()), (200, Some(1)), "{body}");
}

#[tokio::test]
async fn garbage_on_every_endpoint_is_a_4xx_never_a_5xx() {
    let stack = Stack::start().await;
    let id = stack.session().await;
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"RIFF".to_vec(),
        b"RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00".to_vec(),
        b"RIFF\x00\x00\x00\x00WAVEdata\xff\xff\xff\xff".to_vec(),
        vec![0xff; 3000],
        b"%%%%=%%&&==&".to_vec(),
        b"audio_path=%00%ff".to_vec(),
        b"{\"audio_path\": \"\\u0000\"}".to_vec(),
        b"{\"call_id\": \"\", \"domain\": \"\"}".to_vec(),
        format!("{{\"audio_path\": \"{}\"}}", "a/".repeat(5000)).into_bytes(),
    ];
    let types = [
        "application/json",
        "application/x-www-form-urlencoded",
        "audio/wav",
        "",
    ];
    let paths = [
        "/v1/sessions".to_string(),
        format!("/v1/sessions/{id}/turns"),
        "/v1/sessions/%00/turns".to_string(),
        format!("/v1/sessions/{}/turns", "x".repeat(3000)),
    ];
    for path in &paths {
        for ct in types {
            for body in &bodies {
                let mut req = stack
                    .client
                    .post(stack.url(path))
                    .bearer_auth(KEY_A)
                    .body(body.clone());
                if !ct.is_empty() {
                    req = req.header("content-type", ct);
                }
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                assert!(
                    (400..500).contains(&status),
                    "{path} {ct} {body:?}: {status}"
                );
                let parsed: serde_json::Value = r.json().await.unwrap();
                assert!(parsed["error"]["code"].is_string());
            }
        }
    }
    // The session survived all of it.
    let path = stack.record("t.wav", &caller_wav(8000));
    let (status, _) = stack.turn_json(&id, json!({"audio_path": path})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_tenant_can_have_its_own_greeting() {
    let stack = Stack::start_with(
        REPLY,
        &format!("[tenants.\"{DOMAIN_B}\".engine]\ngreeting = \"Bem-vindo à loja B.\"\n"),
    )
    .await;
    let (status, a) = stack.create(KEY_A, DOMAIN_A).await;
    assert_eq!(
        (status, a["greeting"]["text"].as_str()),
        (201, Some(GREETING))
    );
    let (status, b) = stack.create(KEY_B, DOMAIN_B).await;
    assert_eq!(
        (status, b["greeting"]["text"].as_str()),
        (201, Some("Bem-vindo à loja B."))
    );
    // B's engine answers B's turns, with the shared chains.
    let id = b["session_id"].as_str().unwrap();
    let path = stack.record("t.wav", &caller_wav(8000));
    let (status, text) = stack
        .turn_raw(
            id,
            KEY_B,
            "application/json",
            json!({"audio_path": path}).to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{text}");
}
