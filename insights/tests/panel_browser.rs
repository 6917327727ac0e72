//! The web panel in a real headless Chromium, driven over W3C WebDriver (chromedriver) with
//! reqwest: sign-in, the calls list and its filters, a call's detail with the player playing
//! and the transcript seeking it, both languages, the live view. Screenshots of the list and
//! the detail go to docs/screenshots/.
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver: `bash -c '. scripts/lib.sh; ensure_chromium'`.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::Stack;
use serde_json::{json, Value};
use uuid::Uuid;
use voice_core::db::DbError;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a port of its own, stopped on drop.
struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Driver {
    async fn start() -> Driver {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: install Chromium and its driver with \
                 `bash -c '. scripts/lib.sh; ensure_chromium'`"
            );
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
            {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"]["ready"] == true {
                        break;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        driver
    }

    async fn session(&self) -> Browser<'_> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--window-size=1280,900", "--autoplay-policy=no-user-gesture-required",
                         "--disable-dev-shm-usage", "--lang=pt-BR", "--accept-lang=pt-BR,pt"],
                "prefs": {"intl.accept_languages": "pt-BR,pt"}
            }
        }}});
        let v = self
            .send(reqwest::Method::POST, "/session", Some(caps))
            .await;
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        Browser { driver: self, id }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            r = r.json(&body);
        }
        let response = r.send().await.expect("chromedriver answers");
        let status = response.status();
        let v: Value = response.json().await.expect("chromedriver answers JSON");
        assert!(status.is_success(), "WebDriver {path}: {status} {v}");
        v
    }
}

/// One browser session.
struct Browser<'d> {
    driver: &'d Driver,
    id: String,
}

impl Browser<'_> {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let v = self
            .driver
            .send(method, &format!("/session/{}{path}", self.id), body)
            .await;
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn js(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    async fn text(&self, css: &str) -> String {
        let script = format!(
            "var e = document.querySelector({}); return e ? e.textContent : null;",
            json!(css)
        );
        self.js(&script).await.as_str().unwrap_or("").to_string()
    }

    /// Waits until `script` returns true.
    async fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if self.js(script).await == Value::Bool(true) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("a base64 screenshot"))
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }

    async fn quit(&self) {
        let _ = self
            .driver
            .http
            .delete(format!("{}/session/{}", self.driver.base, self.id))
            .send()
            .await;
    }
}

/// A mono 16-bit PCM WAV of `seconds` of a soft two-tone hum (8 kHz).
fn wav(seconds: u32) -> Vec<u8> {
    let rate = 8000u32;
    let n = rate * seconds;
    let mut out = Vec::with_capacity(44 + 2 * n as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + 2 * n).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(2 * n).to_le_bytes());
    for i in 0..n {
        let t = i as f64 / rate as f64;
        let s = 0.2 * (2.0 * std::f64::consts::PI * 220.0 * t).sin()
            + 0.1 * (2.0 * std::f64::consts::PI * 330.0 * t).sin();
        out.extend_from_slice(&((s * i16::MAX as f64) as i16).to_le_bytes());
    }
    out
}

/// What the test puts in the database.
struct Seeded {
    processed: Uuid,
}

/// Three calls: one processed with everything (and a recording), one failed, one still
/// transcribing; and a bridge call in progress in the event log.
async fn seed(s: &Stack, tenant: Uuid) -> Seeded {
    let processed = Uuid::new_v4();
    let failed = Uuid::new_v4();
    let busy = Uuid::new_v4();
    let key = format!("recordings/{tenant}/{processed}.wav");
    let audio = wav(12);
    let size = audio.len() as i64;
    s.state
        .storage
        .put(&key, bytes::Bytes::from(audio))
        .await
        .expect("the recording is stored");
    s.state
        .db
        .with_tenant(tenant, move |tx| {
            Box::pin(async move {
                let call = "INSERT INTO calls (id, tenant_id, provider_call_id, from_number, to_number, \
                            agent_ref, started_at, ended_at, duration_sec, consent, status, stage_status, error) \
                            VALUES ($1, $2, $3, $4, $5, $6, now() - make_interval(mins => $7), \
                            now() - make_interval(mins => $7) + make_interval(secs => $8::integer), $8::integer, true, $9, $10, $11)";
                let stages = json!({"download": {"status": "done", "ms": 120, "attempts": 1},
                                    "transcribe": {"status": "done", "ms": 2300, "attempts": 1},
                                    "analyze": {"status": "done", "ms": 1800, "attempts": 1},
                                    "score": {"status": "done", "ms": 900, "attempts": 1},
                                    "crm": {"status": "done", "ms": 300, "attempts": 1}});
                tx.execute(call, &[&processed, &tenant, &"abc-123", &"+5511999999999", &"+5511888888888",
                    &"agent-42", &90i32, &323i32, &"processed", &stages, &None::<String>]).await?;
                tx.execute(call, &[&failed, &tenant, &"abc-124", &"+5521977776666", &"+5511888888888",
                    &"agent-7", &60i32, &41i32, &"failed",
                    &json!({"download": {"status": "failed", "attempts": 3}}),
                    &Some("download failed: 404 from the PBX".to_string())]).await?;
                tx.execute(call, &[&busy, &tenant, &"abc-125", &"+5531955554444", &"+5511888888888",
                    &"agent-42", &5i32, &187i32, &"transcribing",
                    &json!({"download": {"status": "done", "ms": 80, "attempts": 1}}), &None::<String>]).await?;
                tx.execute(
                    "INSERT INTO recordings (tenant_id, call_id, storage_key, format, content_type, \
                     sample_rate, channels, size_bytes, duration_sec) \
                     VALUES ($1, $2, $3, 'wav', 'audio/wav', 8000, 1, $4, 12)",
                    &[&tenant, &processed, &key, &size],
                ).await?;
                let utterances = json!([
                    {"speaker": 1, "start": 0.0, "end": 3.0, "text": "Bom dia, aqui é a Ana da Acme. Como posso ajudar?"},
                    {"speaker": 0, "start": 3.0, "end": 6.5, "text": "Oi Ana, queria entender o preço do plano anual."},
                    {"speaker": 1, "start": 6.5, "end": 9.5, "text": "Claro! O anual sai por R$ 1.200 com suporte incluído."},
                    {"speaker": 0, "start": 9.5, "end": 12.0, "text": "Achei caro, mas me manda uma proposta por e-mail."}
                ]);
                tx.execute(
                    "INSERT INTO transcripts (tenant_id, call_id, language, provider, text, diarization) \
                     VALUES ($1, $2, 'pt-BR', 'deepgram', $3, $4)",
                    &[&tenant, &processed,
                      &"Bom dia, aqui é a Ana da Acme. Como posso ajudar? Oi Ana, queria entender o preço do plano anual. Claro! O anual sai por R$ 1.200 com suporte incluído. Achei caro, mas me manda uma proposta por e-mail.",
                      &utterances],
                ).await?;
                for (i, (label, start, end, excerpt)) in [
                    ("abertura", 0.0f64, 3.0f64, "Bom dia, aqui é a Ana da Acme."),
                    ("descoberta", 3.0, 6.5, "queria entender o preço do plano anual"),
                    ("objeções", 9.5, 12.0, "Achei caro"),
                ].into_iter().enumerate() {
                    tx.execute(
                        "INSERT INTO segments (tenant_id, call_id, ordinal, label, start_sec, end_sec, excerpt) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[&tenant, &processed, &(i as i32), &label, &start, &end, &excerpt],
                    ).await?;
                }
                tx.execute(
                    "INSERT INTO insights (tenant_id, call_id, summary, pain_points, objections, next_actions, tags) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[&tenant, &processed,
                      &"Cliente interessado no plano anual; achou o preço alto e pediu proposta por e-mail.",
                      &json!(["Preço do plano anual", "Falta de clareza sobre o suporte"]),
                      &json!(["Achou caro"]),
                      &json!([{"title": "Enviar proposta por e-mail", "dueDate": "2026-12-04"},
                              {"title": "Ligar para acompanhar", "dueDate": null}]),
                      &vec!["lead".to_string(), "qualificado".to_string()]],
                ).await?;
                tx.execute(
                    "INSERT INTO scorecards (tenant_id, call_id, template_key, items, total_score, max_score) \
                     VALUES ($1, $2, 'diagnostico', $3, 7, 9)",
                    &[&tenant, &processed,
                      &json!([{"item": "Dor", "weight": 3, "score": 2, "reason": "Identificou o preço como dor"},
                              {"item": "Próximos passos", "weight": 3, "score": 3, "reason": "Proposta combinada"},
                              {"item": "Abertura", "weight": 3, "score": 2, "reason": "Apresentou-se"}])],
                ).await?;
                tx.execute(
                    "INSERT INTO crm_events (tenant_id, call_id, provider, action, status, external_id) \
                     VALUES ($1, $2, 'pipedrive', 'note', 'ok', '9001')",
                    &[&tenant, &processed],
                ).await?;
                tx.execute(
                    "INSERT INTO insights (tenant_id, call_id, summary, tags) VALUES ($1, $2, '', $3)",
                    &[&tenant, &failed, &vec!["suporte".to_string()]],
                ).await?;
                tx.execute(
                    "INSERT INTO events (tenant_id, call_id, kind, at, data) \
                     VALUES ($1, 'bridge-live-1', 'call.started', now() - interval '2 minutes', $2), \
                            ($1, 'bridge-done-1', 'call.started', now() - interval '9 minutes', $2), \
                            ($1, 'bridge-done-1', 'call.ended', now() - interval '3 minutes', '{}')",
                    &[&tenant, &json!({"caller": "+5511944443333", "callee": "1000"})],
                ).await?;
                Ok::<_, DbError>(())
            })
        })
        .await
        .expect("the calls are seeded");
    Seeded { processed }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_in_a_real_browser() {
    let driver = Driver::start().await;
    let recordings = std::env::temp_dir().join(format!("panel-recordings-{}", Uuid::new_v4()));
    let settings = format!(
        "[storage]\nlocal_dir = {:?}\n",
        recordings.to_string_lossy()
    );
    let s = Stack::start_with(&settings, Some(common::test_key())).await;
    let tenant = s.tenant("panel.example.com").await;
    // Recordings are for supervisors and admins.
    let key = s.key(&tenant, "supervisor").await;
    let tenant: Uuid = tenant.parse().unwrap();
    let seeded = seed(&s, tenant).await;
    let b = driver.session().await;

    // No cookie: to the login page, in Portuguese by default.
    b.goto(&s.url("/panel/calls")).await;
    assert!(b.url().await.contains("/panel/login"), "{}", b.url().await);
    let h1 = b.text("h1").await;
    assert!(h1.contains("Entrar"), "{h1:?} {}", b.text("body").await);
    // A wrong key is refused; the right one signs in and comes back to the calls.
    b.type_into("#key", "vk_wrong").await;
    b.click("form[action='/panel/login'] button").await;
    b.wait_for("the refusal", "var a = document.querySelector('.alert'); return !!a && a.textContent.indexOf('Chave desconhecida') >= 0;").await;
    b.type_into("#key", &key).await;
    b.click("form[action='/panel/login'] button").await;
    b.wait_for(
        "the calls page after signing in",
        "return location.pathname === '/panel/calls' && document.readyState === 'complete';",
    )
    .await;

    // The list: three calls, Portuguese labels and statuses.
    b.wait_for(
        "the calls table",
        "return document.querySelectorAll('table.calls tbody tr[data-id]').length === 3",
    )
    .await;
    let table = b.text("table.calls").await;
    assert!(
        table.contains("Processada") && table.contains("Falhou") && table.contains("Transcrevendo"),
        "{table}"
    );
    assert!(
        table.contains("+5511999999999") && table.contains("agent-42"),
        "{table}"
    );
    assert!(b
        .text("table.calls thead")
        .await
        .to_lowercase()
        .contains("duração"));
    b.screenshot("calls-list.png").await;

    // Filters narrow the rows: by status, by tag, by text.
    b.goto(&s.url("/panel/calls?status=failed")).await;
    assert_eq!(
        b.js("return document.querySelectorAll('table.calls tbody tr[data-id]').length")
            .await,
        1
    );
    assert!(b.text("table.calls").await.contains("+5521977776666"));
    b.goto(&s.url("/panel/calls?tag=lead")).await;
    assert_eq!(
        b.js("return document.querySelectorAll('table.calls tbody tr[data-id]').length")
            .await,
        1
    );
    b.goto(&s.url("/panel/calls?q=proposta")).await;
    let rows = b.js("return Array.from(document.querySelectorAll('table.calls tbody tr[data-id]')).map(r => r.getAttribute('data-id'))").await;
    assert_eq!(rows, json!([seeded.processed.to_string()]));

    // The detail: facts, transcript, insights, scorecard, CRM.
    b.goto(&s.url(&format!("/panel/calls/{}", seeded.processed)))
        .await;
    let page = b.text("main").await;
    for expected in [
        "Transcrição",
        "Bom dia, aqui é a Ana da Acme",
        "Resumo",
        "Objeções",
        "Achou caro",
        "Enviar proposta por e-mail",
        "04/12/2026",
        "Scorecard",
        "Próximos passos",
        "pipedrive",
        "lead",
        "qualificado",
        "abertura",
    ] {
        assert!(
            page.contains(expected),
            "the detail shows {expected:?}:\n{page}"
        );
    }
    assert_eq!(
        b.js("return document.querySelectorAll('#transcript li[data-start]').length")
            .await,
        4
    );

    // The player plays the recording (fetched with the cookie).
    b.js("document.querySelector('audio').play(); return true;")
        .await;
    b.wait_for(
        "the audio to play",
        "var a = document.querySelector('audio'); return a.readyState >= 2 && a.currentTime > 0;",
    )
    .await;
    // Clicking an utterance seeks the player there, and it is highlighted.
    b.click("#transcript li:nth-child(3)").await;
    b.wait_for("the seek", "var a = document.querySelector('audio'); return a.currentTime >= 6.5 && a.currentTime < 9.5;").await;
    b.wait_for("the highlight", "var li = document.querySelector('#transcript li.current'); return !!li && li.getAttribute('data-start') === '6.5';").await;
    b.js("document.querySelector('audio').pause(); return true;")
        .await;
    b.screenshot("call-detail.png").await;

    // English when asked, and remembered.
    b.goto(&s.url("/panel/calls?lang=en")).await;
    assert!(b.text("table.calls").await.contains("Processed"));
    assert!(b
        .text("table.calls thead")
        .await
        .to_lowercase()
        .contains("duration"));
    b.goto(&s.url(&format!("/panel/calls/{}", seeded.processed)))
        .await;
    assert!(b.text("main").await.contains("Pain points"));
    b.goto(&s.url("/panel/calls?lang=pt-BR")).await;
    assert!(b.text("table.calls").await.contains("Processada"));

    // Live: the bridge call in progress, not the ended one, pushed over SSE.
    b.goto(&s.url("/panel/live")).await;
    b.wait_for(
        "the live stream",
        "return document.getElementById('live-status').classList.contains('ok');",
    )
    .await;
    let live = b.text("#live").await;
    assert!(live.contains("+5511944443333"), "{live}");
    assert_eq!(
        b.js("return document.querySelectorAll('#live tbody tr[data-call]').length")
            .await,
        1
    );
    // A new call appears without reloading.
    s.state
        .db
        .with_tenant(tenant, move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO events (tenant_id, call_id, kind, data) VALUES ($1, 'bridge-live-2', 'call.started', $2)",
                    &[&tenant, &json!({"caller": "+5511933332222", "callee": "1001"})],
                ).await?;
                Ok::<_, DbError>(())
            })
        })
        .await
        .unwrap();
    b.wait_for(
        "the pushed call",
        "return document.querySelectorAll('#live tbody tr[data-call]').length === 2;",
    )
    .await;
    b.screenshot("live.png").await;

    // Logging out forgets the key.
    b.click("form.logout button").await;
    b.wait_for(
        "the login page",
        "return location.pathname === '/panel/login';",
    )
    .await;
    b.goto(&s.url("/panel/calls")).await;
    assert!(b.url().await.contains("/panel/login"));
    b.quit().await;
    let _ = std::fs::remove_dir_all(&recordings);
}

/// The panel's answers outside a browser: CSP, cookie flags, the platform token refused.
#[tokio::test]
async fn headers_cookies_and_the_platform_token() {
    let s = Stack::start().await;
    let tenant = s.tenant("panel2.example.com").await;
    let key = s.key(&tenant, "viewer").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http.get(s.url("/panel")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let r = http.get(s.url("/panel/calls")).send().await.unwrap();
    assert!(r.status().is_redirection());
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/panel/login"));

    let r = http.get(s.url("/panel/login")).send().await.unwrap();
    assert_eq!(
        r.headers()["content-security-policy"],
        "default-src 'self'; media-src 'self'; style-src 'self'; script-src 'self'"
    );
    let css = http
        .get(s.url("/panel/assets/panel.css"))
        .send()
        .await
        .unwrap();
    assert!(css.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));

    let r = http
        .post(s.url("/panel/login"))
        .form(&[("key", common::PLATFORM_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!r.text().await.unwrap().contains(common::PLATFORM_TOKEN));

    let r = http
        .post(s.url("/panel/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("key", key.as_str()), ("next", "https://evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/panel/calls");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let pair = cookie.split(';').next().unwrap().to_string();
    let r = http
        .get(s.url("/panel/calls"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The API takes the cookie for reads, never for writes.
    let r = http
        .get(s.url(&format!("/v1/tenants/{tenant}")))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(s.url(&format!("/v1/tenants/{tenant}/agents")))
        .header("cookie", &pair)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Another tenant's calls: not in this tenant's list, and their pages are 404.
    let other = s.tenant("panel2-other.example.com").await;
    let theirs = seed(&s, other.parse().unwrap()).await.processed;
    let list = http
        .get(s.url("/panel/calls"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!list.contains(&theirs.to_string()));
    assert!(!list.contains("abc-123"), "another tenant's call is listed");
    let r = http
        .get(s.url(&format!("/panel/calls/{theirs}")))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
