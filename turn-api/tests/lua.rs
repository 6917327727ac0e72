//! The Lua IVR scripts (lua/voice_ai/) under a real Lua 5.2 (the version FreeSWITCH 1.10's
//! mod_lua is built with), against the real turn-api with the protocol fakes. FreeSWITCH is
//! replaced by lua/tests/stub.lua: mod_curl is emulated with the real curl binary (argument
//! splitting, URL-decoded POST data, the 64000-byte limit, timeouts, the `json` wrapper) and
//! everything done to the call is logged as JSON lines, which these tests read.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use voice_sim::fake_llm::{FakeLlm, FakeLlmConfig, ScriptedCall, ToolRule};

const CALL_UUID: &str = "5b1e7a52-1111-4222-8333-0123456789ab";
const HUMAN: &str = "1000";
const LUA: &str = "lua5.2";

fn lua_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lua")
}

/// A call's channel variables and DTMF script.
struct Call {
    vars: Vec<(String, String)>,
    dtmf: String,
    /// Seconds the script's clock moves on at each `os.time()` (empty: real time).
    clock_step: String,
}

impl Call {
    /// A call from 1001 to 9993 in tenant A, aimed at `stack`, with a human at 1000.
    fn to(stack: &Stack) -> Call {
        Call::at(&stack.base, &stack.recordings)
    }

    fn at(base: &str, recordings: &Path) -> Call {
        let mut call = Call {
            vars: Vec::new(),
            dtmf: String::new(),
            clock_step: String::new(),
        };
        call.set("domain_name", DOMAIN_A)
            .set("domain_uuid", UUID_A)
            .set("caller_id_number", "1001")
            .set("destination_number", "9993")
            .set("voice_ai_turn_api_url", base)
            .set("voice_ai_api_key", KEY_A)
            .set("voice_ai_human_target", HUMAN)
            .set("voice_ai_record_dir", &recordings.display().to_string());
        call
    }

    fn set(&mut self, name: &str, value: &str) -> &mut Call {
        self.vars.retain(|(n, _)| n != name);
        self.vars.push((name.into(), value.into()));
        self
    }

    fn unset(&mut self, name: &str) -> &mut Call {
        self.vars.retain(|(n, _)| n != name);
        self
    }

    /// Runs `lua/tests/<script>` in `dir`; returns the stub's log.
    async fn run(&self, script: &str, dir: &Path) -> Log {
        std::fs::create_dir_all(dir).unwrap();
        let speech = dir.join("speech.wav");
        std::fs::write(&speech, caller_wav(8000)).unwrap();
        let vars: String = self
            .vars
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        std::fs::write(dir.join("vars"), vars).unwrap();
        let log = dir.join("log.jsonl");
        let _ = std::fs::remove_file(&log);
        let child = tokio::process::Command::new(LUA)
            .arg(format!("tests/{script}"))
            .current_dir(lua_dir())
            .env("STUB_LOG", &log)
            .env("STUB_VARS", dir.join("vars"))
            .env("STUB_SPEECH", &speech)
            .env("STUB_UUID", CALL_UUID)
            .env("STUB_DTMF", &self.dtmf)
            .env("STUB_CLOCK_STEP", &self.clock_step)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(20), child)
            .await
            .expect("the Lua script ran over 20 s")
            .unwrap_or_else(|e| {
                panic!("cannot run {LUA} (scripts/lib.sh ensure_tools installs it): {e}")
            });
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let events: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            out.status.success(),
            "lua failed: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            events.last().map(|e| e["op"].clone()),
            Some(Value::from("end"))
        );
        Log(events)
    }
}

struct Log(Vec<Value>);

impl Log {
    fn ops(&self, op: &str) -> Vec<&Value> {
        self.0.iter().filter(|e| e["op"] == op).collect()
    }

    fn curls_to(&self, path_end: &str) -> Vec<&Value> {
        self.ops("curl")
            .into_iter()
            .filter(|e| e["url"].as_str().unwrap_or("").ends_with(path_end))
            .collect()
    }

    /// The only transfer: (target, dialplan, context).
    fn transfer(&self) -> (String, String, String) {
        let t = self.ops("transfer");
        assert_eq!(t.len(), 1, "{:#?}", self.0);
        let s = |k: &str| t[0][k].as_str().unwrap().to_string();
        (s("target"), s("dialplan"), s("context"))
    }

    fn apologized(&self) -> bool {
        self.ops("speak")
            .iter()
            .any(|e| e["text"].as_str().unwrap().starts_with("Sorry"))
    }

    fn dump(&self) -> String {
        format!("{:#?}", self.0)
    }
}

/// Every request the script made had a timeout, the tenant's key and, for POSTs, a JSON
/// content type and a body that is JSON after mod_curl's URL-decoding.
fn assert_requests_are_well_formed(log: &Log) {
    for c in log.ops("curl") {
        assert!(c["timeout"].as_u64().is_some_and(|t| t > 0), "{c}");
        assert!(c["connect_timeout"].as_u64().is_some(), "{c}");
        if c["method"] == "post" {
            assert_eq!(c["content_type"], "application/json", "{c}");
            let data = c["data"].as_str().unwrap();
            serde_json::from_str::<Value>(data).unwrap_or_else(|e| panic!("{e}: {data}"));
            assert_eq!(c["headers"][0], format!("X-API-Key:{KEY_A}"), "{c}");
        }
    }
}

fn leftover_recordings(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("voice_ai_"))
        .collect()
}

/// An HTTP server answering every request with `status` and `body`, after reading it whole.
async fn tiny_server(status: u16, body: String) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (base, task)
}

/// A base URL where nothing listens (connection refused).
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// A chat model for `extra` config: its TOML points turn-api at it.
async fn llm(cfg: FakeLlmConfig) -> (FakeLlm, String) {
    let llm = FakeLlm::start(FakeLlmConfig {
        models: Vec::new(),
        ..cfg
    })
    .await
    .unwrap();
    let toml = format!(
        "[providers.openai_chat]\nurl = \"{}\"\napi_key = \"{}\"\n",
        llm.chat_completions_url(),
        llm.api_key()
    );
    (llm, toml)
}

#[tokio::test]
async fn lua_unit_checks_pass() {
    let out = tokio::process::Command::new(LUA)
        .arg("tests/unit.lua")
        .current_dir(lua_dir())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {LUA}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

#[tokio::test]
async fn a_conversation_greets_takes_two_turns_and_hangs_up() {
    // One turn is allowed: the second gets the goodbye with `hangup`.
    let stack = Stack::start_with(
        REPLY,
        "[limits]\nmax_turns = 1\ngoodbye_text = \"Tchau!\"\n",
    )
    .await;
    let log = Call::to(&stack).run("secretary_call.lua", &stack.dir).await;

    assert_eq!(log.ops("answer").len(), 1);
    let created = log.curls_to("/v1/sessions");
    assert_eq!(created.len(), 1, "{}", log.dump());
    let sent: Value = serde_json::from_str(created[0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(sent["call_id"], CALL_UUID);
    assert_eq!(sent["domain"], DOMAIN_A);
    assert_eq!(sent["caller"], "1001");
    assert!(
        sent.get("consent").is_none(),
        "unset: the tenant's policy decides"
    );

    // Recorded with an energy threshold (not seconds) and a short silence.
    let records = log.ops("recordFile");
    assert_eq!(records.len(), 2, "{}", log.dump());
    for r in &records {
        assert_eq!(r["threshold"], 200);
        assert_eq!(r["silence"], 2);
        assert!(r["path"]
            .as_str()
            .unwrap()
            .starts_with(&stack.recordings.display().to_string()));
    }
    let turns = log.curls_to("/turns");
    assert_eq!(turns.len(), 2);
    let first: Value = serde_json::from_str(turns[0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(first["audio_path"], records[0]["path"]);

    // Greeting + the first answer, each a WAV on disk when played; the goodbye has no
    // WAV (no limits.goodbye_wav), so its text is spoken.
    let plays = log.ops("streamFile");
    assert_eq!(plays.len(), 2, "{}", log.dump());
    assert!(plays.iter().all(|p| p["exists"] == true), "{}", log.dump());
    let spoken = log.ops("speak");
    assert_eq!(spoken.len(), 1, "{}", log.dump());
    assert_eq!(spoken[0]["text"], "Tchau!");
    assert_eq!(log.ops("hangup").len(), 1);
    assert!(log.ops("transfer").is_empty());
    assert!(!log.apologized());
    assert_requests_are_well_formed(&log);

    // The session was ended by the script, and its recordings deleted.
    assert_eq!(log.curls_to("/end").len(), 1);
    let id = turns[0]["url"]
        .as_str()
        .unwrap()
        .split('/')
        .nth_back(1)
        .unwrap()
        .to_string();
    let again = stack
        .client
        .post(stack.url(&format!("/v1/sessions/{id}/end")))
        .bearer_auth(KEY_A)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    assert_eq!(leftover_recordings(&stack.recordings), Vec::<String>::new());
}

#[tokio::test]
async fn a_transfer_action_transfers_to_its_target_in_the_domain_context() {
    let (_llm, toml) = llm(FakeLlmConfig {
        reply_text: REPLY.into(),
        first_token_ms: 0,
        token_interval_ms: 0,
        tool_rules: vec![ToolRule {
            when_user_says: "consulta".into(),
            say_first: "Vou transferir você agora.".into(),
            calls: vec![ScriptedCall::new("transfer_to_human", "{}")],
        }],
        ..FakeLlmConfig::default()
    })
    .await;
    let stack = Stack::start_with(
        REPLY,
        &format!("{toml}[engine]\nhandoff_target = \"2000\"\n"),
    )
    .await;
    let log = Call::to(&stack)
        .set("voice_ai_consent", "Sim")
        .run("secretary_call.lua", &stack.dir)
        .await;

    assert_eq!(
        log.transfer(),
        ("2000".into(), "XML".into(), DOMAIN_A.into())
    );
    let created = log.curls_to("/v1/sessions");
    let sent: Value = serde_json::from_str(created[0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(
        sent["consent"], true,
        "the dialplan's consent goes to turn-api"
    );
    assert_eq!(
        log.ops("streamFile").len(),
        2,
        "greeting + the transfer sentence"
    );
    assert!(log.ops("hangup").is_empty());
    assert!(!log.apologized());
    assert_eq!(log.curls_to("/end").len(), 1);
    assert_eq!(leftover_recordings(&stack.recordings), Vec::<String>::new());
}

#[tokio::test]
async fn dtmf_zero_while_recording_goes_to_the_human_target() {
    let stack = Stack::start().await;
    let mut call = Call::to(&stack);
    call.set("voice_ai_context", "custom-context");
    call.dtmf = "record:2:0".into();
    let log = call.run("secretary_call.lua", &stack.dir).await;

    assert_eq!(
        log.transfer(),
        (HUMAN.into(), "XML".into(), "custom-context".into())
    );
    assert_eq!(log.ops("recordFile")[1]["interrupted"], true);
    assert_eq!(
        log.curls_to("/turns").len(),
        1,
        "the interrupted turn is not posted"
    );
    assert_eq!(log.ops("streamFile").len(), 2, "greeting + one answer");
    assert!(log.ops("hangup").is_empty());
    assert_eq!(log.curls_to("/end").len(), 1);
    assert_eq!(leftover_recordings(&stack.recordings), Vec::<String>::new());
}

#[tokio::test]
async fn turn_api_down_ends_in_an_apology_and_a_transfer_or_a_hangup() {
    let dir = temp_dir();
    let base = closed_port();
    let log = Call::at(&base, &dir.join("rec"))
        .run("secretary_call.lua", &dir)
        .await;
    assert_eq!(
        log.ops("curl_result")[0]["exit_code"],
        7,
        "connection refused"
    );
    assert!(log.apologized(), "{}", log.dump());
    assert_eq!(
        log.transfer(),
        (HUMAN.into(), "XML".into(), DOMAIN_A.into())
    );

    // Without a human: a configured apology file, then a hangup.
    let log = Call::at(&base, &dir.join("rec"))
        .unset("voice_ai_human_target")
        .set("voice_ai_apology_file", "/sounds/apology.wav")
        .run("secretary_call.lua", &dir)
        .await;
    let plays = log.ops("streamFile");
    assert_eq!(plays.len(), 1);
    assert_eq!(plays[0]["path"], "/sounds/apology.wav");
    assert!(log.ops("transfer").is_empty());
    assert_eq!(log.ops("hangup").len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_slow_turn_api_times_out_into_an_apology() {
    // The chat model takes 5 s; the script waits 1 s for a turn.
    let (_llm, toml) = llm(FakeLlmConfig {
        reply_text: REPLY.into(),
        first_token_ms: 5000,
        ..FakeLlmConfig::default()
    })
    .await;
    let stack = Stack::start_with(REPLY, &toml).await;
    let mut call = Call::to(&stack);
    call.set("voice_ai_turn_timeout", "1");
    let started = std::time::Instant::now();
    let log = call.run("secretary_call.lua", &stack.dir).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    let turn = log.curls_to("/turns");
    assert_eq!(turn.len(), 1);
    assert_eq!(turn[0]["timeout"], 1);
    let results = log.ops("curl_result");
    assert_eq!(results[1]["exit_code"], 28, "{}", log.dump());
    assert!(log.apologized());
    assert_eq!(
        log.transfer(),
        (HUMAN.into(), "XML".into(), DOMAIN_A.into())
    );
    assert_eq!(leftover_recordings(&stack.recordings), Vec::<String>::new());
}

#[tokio::test]
async fn an_answer_over_mod_curls_limit_ends_in_an_apology() {
    let huge = format!(
        "{{\"session_id\":\"s1\",\"greeting\":{{\"text\":\"{}\"}},\"action\":\"continue\"}}",
        "a".repeat(100_000)
    );
    let (base, _server) = tiny_server(201, huge).await;
    let dir = temp_dir();
    let log = Call::at(&base, &dir.join("rec"))
        .run("secretary_call.lua", &dir)
        .await;
    assert_eq!(log.ops("curl_result")[0]["exit_code"], 23, "{}", log.dump());
    assert!(log.apologized());
    assert!(
        log.ops("streamFile").is_empty(),
        "nothing from the cut answer is played"
    );
    assert_eq!(
        log.transfer(),
        (HUMAN.into(), "XML".into(), DOMAIN_A.into())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn route_falls_back_to_turn_based_when_the_bridge_is_down() {
    let stack = Stack::start_with(REPLY, "[limits]\nmax_turns = 1\n").await;
    let mut call = Call::to(&stack);
    call.set("voice_ai_mode", "realtime")
        .set("voice_ai_bridge_url", &closed_port());
    let log = call.run("route_call.lua", &stack.dir).await;

    let probe = log.curls_to("/readyz");
    assert_eq!(probe.len(), 1);
    assert_eq!(probe[0]["method"], "get");
    assert_eq!(probe[0]["timeout"], 1);
    assert!(log.ops("api").is_empty(), "no audio stream was started");
    let lua = log.ops("execute");
    assert_eq!(lua.len(), 1);
    assert_eq!(lua[0]["data"], "voice_ai/secretary.lua");
    assert_eq!(log.curls_to("/v1/sessions").len(), 1);
    assert_eq!(log.ops("hangup").len(), 1, "{}", log.dump());
    assert!(!log.apologized());

    // A bridge that answers but is not ready (503): turn-based as well.
    let (bridge, _server) = tiny_server(503, r#"{"ready":false,"dependencies":{}}"#.into()).await;
    call.set("voice_ai_bridge_url", &bridge);
    let log = call.run("route_call.lua", &stack.dir).await;
    assert_eq!(log.curls_to("/readyz").len(), 1);
    assert!(log.ops("api").is_empty(), "no audio stream was started");
    assert_eq!(log.curls_to("/v1/sessions").len(), 1);
    assert_eq!(log.ops("hangup").len(), 1, "{}", log.dump());
}

#[tokio::test]
async fn route_streams_to_the_bridge_when_it_is_ready() {
    let (bridge, _server) = tiny_server(200, r#"{"ready":true,"dependencies":{}}"#.into()).await;
    let dir = temp_dir();
    let mut call = Call::at(&closed_port(), &dir.join("rec"));
    call.set("voice_ai_mode", "realtime")
        .set("voice_ai_bridge_url", &bridge);
    let log = call.run("route_call.lua", &dir).await;

    let api = log.ops("api");
    assert_eq!(api.len(), 1, "{}", log.dump());
    let cmd = api[0]["command"].as_str().unwrap();
    assert!(
        cmd.starts_with(&format!(
            "uuid_audio_stream {CALL_UUID} start ws://127.0.0.1:8080/stream/{DOMAIN_A}/{CALL_UUID}?rate=16000&playout=binary mono 16k {{"
        )),
        "{cmd}"
    );
    assert!(
        cmd.contains(&format!("\"domain_uuid\":\"{UUID_A}\"")),
        "{cmd}"
    );
    let exec = log.ops("execute");
    assert_eq!(exec.len(), 1);
    assert_eq!(
        (exec[0]["app"].as_str(), exec[0]["data"].as_str()),
        (Some("playback"), Some("silence_stream://-1"))
    );
    assert!(
        log.curls_to("/v1/sessions").is_empty(),
        "no turn-based session"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_scripts_own_turn_cap_ends_with_a_goodbye_and_a_hangup() {
    let stack = Stack::start().await;
    let mut call = Call::to(&stack);
    call.set("voice_ai_max_turns", "1")
        .set("voice_ai_goodbye_text", "Até logo.");
    let log = call.run("secretary_call.lua", &stack.dir).await;

    assert_eq!(log.curls_to("/turns").len(), 1);
    let spoken = log.ops("speak");
    assert_eq!(spoken.len(), 1, "{}", log.dump());
    assert_eq!(spoken[0]["text"], "Até logo.");
    assert_eq!(log.ops("hangup").len(), 1);
    assert_eq!(log.curls_to("/end").len(), 1);
    assert_eq!(leftover_recordings(&stack.recordings), Vec::<String>::new());
}

#[tokio::test]
async fn the_call_length_cap_ends_with_a_goodbye_and_a_hangup() {
    // 600 s allowed; the clock moves 400 s per look: turn 1 may record min(30, 200) s,
    // turn 2 finds the call over its length.
    let stack = Stack::start().await;
    let mut call = Call::to(&stack);
    call.set("voice_ai_max_call_secs", "600")
        .set("voice_ai_goodbye_file", "/sounds/goodbye.wav");
    call.clock_step = "400".into();
    let log = call.run("secretary_call.lua", &stack.dir).await;

    let records = log.ops("recordFile");
    assert_eq!(records.len(), 1, "{}", log.dump());
    assert_eq!(records[0]["limit"], 30);
    let plays = log.ops("streamFile");
    assert_eq!(plays.last().unwrap()["path"], "/sounds/goodbye.wav");
    assert_eq!(log.ops("hangup").len(), 1);
    assert!(!log.apologized());
    assert_eq!(log.curls_to("/end").len(), 1);
}

#[tokio::test]
async fn dtmf_zero_during_an_answer_stops_it_and_goes_to_the_human_target() {
    let stack = Stack::start().await;
    let mut call = Call::to(&stack);
    call.dtmf = "play:2:0".into();
    let log = call.run("secretary_call.lua", &stack.dir).await;

    let plays = log.ops("streamFile");
    assert_eq!(plays.len(), 2, "{}", log.dump());
    assert_eq!(plays[1]["interrupted"], true);
    assert_eq!(
        log.transfer(),
        (HUMAN.into(), "XML".into(), DOMAIN_A.into())
    );
    assert_eq!(log.ops("recordFile").len(), 1, "no turn after the digit");
    assert_eq!(leftover_recordings(&stack.recordings), Vec::<String>::new());
}
