//! Test harness: a real bridge (in-process, on a random port) wired to a fake provider.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use voice_bridge::config::BridgeConfig;
use voice_bridge::state::AppState;
use voice_sim::fake_elevenlabs::{FakeElevenLabs, FakeElevenLabsConfig};
use voice_sim::fake_gemini::{FakeGemini, FakeGeminiConfig};
use voice_sim::fake_openai::{FakeOpenAi, FakeOpenAiConfig};

pub const API_KEY: &str = "sk-test-e2e";

/// A fake provider that answers `reply` at once (no thinking time).
pub fn fake_answering(reply: &str) -> FakeOpenAiConfig {
    FakeOpenAiConfig {
        api_key: API_KEY.into(),
        think_ms: 0,
        reply_text: reply.into(),
        ..FakeOpenAiConfig::default()
    }
}

/// Fakes of the other realtime providers, started beside the OpenAI one when asked for;
/// the bridge is pointed at each (which one a call uses is `agent.provider`).
#[derive(Default)]
pub struct OtherFakes {
    pub gemini: Option<FakeGeminiConfig>,
    pub elevenlabs: Option<FakeElevenLabsConfig>,
}

/// A bridge and the fake providers it talks to.
pub struct Harness {
    pub addr: std::net::SocketAddr,
    pub fake: FakeOpenAi,
    pub gemini: Option<FakeGemini>,
    pub elevenlabs: Option<FakeElevenLabs>,
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Harness {
    /// Starts a bridge with the default config plus `env` overrides (`VOICE_BRIDGE__…`).
    pub async fn start(fake: FakeOpenAiConfig, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_with_toml(fake, "", env).await
    }

    /// [`Self::start`] with a config file holding `toml` (for what environment variables
    /// cannot say, such as arrays of tables).
    pub async fn start_with_toml(
        fake: FakeOpenAiConfig,
        toml: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::start_all(fake, OtherFakes::default(), toml, env).await
    }

    /// [`Self::start_with_toml`] with the Gemini and ElevenLabs fakes of `others` too.
    pub async fn start_all(
        fake: FakeOpenAiConfig,
        others: OtherFakes,
        toml: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        init_logs();
        let fake = FakeOpenAi::start(fake).await?;
        let gemini = match others.gemini {
            Some(cfg) => Some(FakeGemini::start(cfg).await?),
            None => None,
        };
        let elevenlabs = match others.elevenlabs {
            Some(cfg) => Some(FakeElevenLabs::start(cfg).await?),
            None => None,
        };
        let mut vars: Vec<(String, String)> = vec![
            ("VOICE_BRIDGE__SERVER__LISTEN".into(), "127.0.0.1:0".into()),
            (
                "VOICE_BRIDGE__PROVIDERS__OPENAI_REALTIME__URL".into(),
                fake.url(),
            ),
            (
                "VOICE_BRIDGE__PROVIDERS__OPENAI_REALTIME__API_KEY".into(),
                API_KEY.into(),
            ),
            (
                "VOICE_BRIDGE__SERVER__SHUTDOWN_GRACE_SECS".into(),
                "2".into(),
            ),
        ];
        let var = |k: &str, v: String| (format!("VOICE_BRIDGE__PROVIDERS__{k}"), v);
        if let Some(g) = &gemini {
            vars.push(var("GEMINI_LIVE__URL", g.url()));
            vars.push(var("GEMINI_LIVE__API_KEY", g.api_key()));
        }
        if let Some(e) = &elevenlabs {
            vars.push(var("ELEVENLABS_AGENT__URL", e.ws_url()));
            vars.push(var("ELEVENLABS_AGENT__API_BASE", e.api_base()));
            vars.push(var("ELEVENLABS_AGENT__AGENT_ID", e.agent_id()));
            vars.push(var("ELEVENLABS_AGENT__API_KEY", e.api_key()));
        }
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = if toml.is_empty() {
            BridgeConfig::from_env(&vars)?
        } else {
            let file = tempfile_path("bridge.toml");
            std::fs::write(&file, toml)?;
            let config = BridgeConfig::from_file_and_env(&file, &vars);
            let _ = std::fs::remove_file(&file);
            config?
        };
        let listener = tokio::net::TcpListener::bind(&config.server.listen).await?;
        let addr = listener.local_addr()?;
        let state = voice_bridge::server::state(config).map_err(anyhow::Error::msg)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let serve_state = state.clone();
        let server = tokio::spawn(async move {
            let _ = voice_bridge::server::serve(listener, serve_state, async {
                let _ = stopped.await;
            })
            .await;
        });
        Ok(Self {
            addr,
            fake,
            gemini,
            elevenlabs,
            state,
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// `ws://…/stream/{domain}/{call}?{query}`
    pub fn url(&self, domain: &str, call: &str, query: &str) -> String {
        format!("ws://{}/stream/{domain}/{call}?{query}", self.addr)
    }

    /// Opens call `call` of `pbx.example.com` at 16 kHz mono, as FreeSWITCH does: the
    /// stream, then its `start` metadata.
    pub async fn open_call(&self, call: &str) -> anyhow::Result<raw::Ws> {
        self.open_call_with(call, "").await
    }

    /// As [`Harness::open_call`], with `extra` (`key=value&…`) added to the query.
    pub async fn open_call_with(&self, call: &str, extra: &str) -> anyhow::Result<raw::Ws> {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        let query = match extra {
            "" => "rate=16000".to_string(),
            extra => format!("rate=16000&{extra}"),
        };
        let url = self.url("pbx.example.com", call, &query);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
        ws.send(Message::Text(r#"{"type":"start"}"#.into())).await?;
        Ok(ws)
    }

    pub fn ws_base(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Waits until no call is active (the bridge finished its call tasks).
    pub async fn wait_idle(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.state.metrics.calls_active.get() == 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Sends the shutdown signal (as SIGTERM does) without waiting.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Whether the server has finished within `within` (after [`Self::begin_stop`]).
    pub async fn stopped_within(&mut self, within: Duration) -> bool {
        match self.server.as_mut() {
            Some(server) => tokio::time::timeout(within, server).await.is_ok(),
            None => true,
        }
    }

    pub async fn stop(mut self) {
        self.begin_stop();
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        }
    }
}

/// A simulated FreeSWITCH whose event socket the bridge uses: starts it and returns it
/// with the `VOICE_BRIDGE__ESL__…` variables that point the bridge at it. Once the bridge
/// is up, [`wait_for_esl`] before a call needs the socket.
pub async fn simulated_switch(
    password: &str,
) -> anyhow::Result<(voice_sim::freeswitch::FakeFreeswitch, Vec<(String, String)>)> {
    let switch = voice_sim::freeswitch::FakeFreeswitch::start(password).await?;
    let vars = vec![
        ("VOICE_BRIDGE__ESL__ENABLED".into(), "true".into()),
        (
            "VOICE_BRIDGE__ESL__ADDRESS".into(),
            switch.esl_addr().to_string(),
        ),
        ("VOICE_BRIDGE__ESL__PASSWORD".into(), password.into()),
    ];
    Ok((switch, vars))
}

/// Waits (up to 2 s) until the bridge's ESL client is connected to `switch`.
pub async fn wait_for_esl(switch: &voice_sim::freeswitch::FakeFreeswitch) {
    for _ in 0..100 {
        if switch.esl().connection_count() > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A plain HTTP/1.0 GET: (status, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())
        .await?;
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    Ok((status, body))
}

/// A fresh path in the temp directory (unique per process and call).
pub fn tempfile_path(name: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("e2e-{}-{n}-{name}", std::process::id()))
}

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

pub mod cascaded;

/// Raw FreeSWITCH-side helpers for tests that need byte-level control of the stream.
pub mod raw {
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

    pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

    /// 20 ms L16 frames of `samples`, then `silence_ms` of silence.
    pub fn frames(samples: &[i16], rate: u32, silence_ms: u32) -> Vec<Vec<u8>> {
        let n = (rate / 50) as usize;
        let mut all = samples.to_vec();
        all.resize(
            all.len().div_ceil(n) * n + (silence_ms * rate / 1000) as usize,
            0,
        );
        all.chunks(n)
            .map(voice_core::audio::pcm::to_le_bytes)
            .collect()
    }

    /// Sends frames in real time (one per 20 ms), collecting binary audio the bridge sends
    /// back meanwhile. Returns the bytes of audio received.
    pub async fn stream(ws: &mut Ws, frames: &[Vec<u8>]) -> anyhow::Result<usize> {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut received = 0;
        for frame in frames {
            tick.tick().await;
            ws.send(Message::Binary(frame.clone().into())).await?;
            while let Ok(Some(msg)) =
                tokio::time::timeout(Duration::from_millis(0), ws.next()).await
            {
                if let Message::Binary(b) = msg? {
                    received += b.len();
                }
            }
        }
        Ok(received)
    }
}

impl Harness {
    /// A bridge with tenants from the database at `database_url` (`[database]`), opening
    /// credentials with `key`; otherwise as [`Self::start`].
    pub async fn start_with_database(
        fake: FakeOpenAiConfig,
        database_url: &str,
        key: Option<voice_core::tenancy::crypto::CredentialKey>,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        init_logs();
        let fake = FakeOpenAi::start(fake).await?;
        let mut vars: Vec<(String, String)> = vec![
            ("VOICE_BRIDGE__SERVER__LISTEN".into(), "127.0.0.1:0".into()),
            (
                "VOICE_BRIDGE__PROVIDERS__OPENAI_REALTIME__URL".into(),
                fake.url(),
            ),
            (
                "VOICE_BRIDGE__PROVIDERS__OPENAI_REALTIME__API_KEY".into(),
                API_KEY.into(),
            ),
            (
                "VOICE_BRIDGE__SERVER__SHUTDOWN_GRACE_SECS".into(),
                "2".into(),
            ),
            ("VOICE_BRIDGE__DATABASE__URL".into(), database_url.into()),
        ];
        vars.extend(env.iter().cloned());
        let config = BridgeConfig::from_env(&vars)?;
        let listener = tokio::net::TcpListener::bind(&config.server.listen).await?;
        let addr = listener.local_addr()?;
        let state = voice_bridge::server::connect_state_with_key(config, key)
            .await
            .map_err(anyhow::Error::msg)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let serve_state = state.clone();
        let server = tokio::spawn(async move {
            let _ = voice_bridge::server::serve(listener, serve_state, async {
                let _ = stopped.await;
            })
            .await;
        });
        Ok(Self {
            addr,
            fake,
            gemini: None,
            elevenlabs: None,
            state,
            stop: Some(stop),
            server: Some(server),
        })
    }
}

/// A WebSocket proxy in front of a fake provider that records what each connection
/// carried: the `Authorization` header and the client's text frames.
pub mod recording_proxy {
    use std::sync::{Arc, Mutex};

    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::Message;

    /// One proxied connection.
    #[derive(Debug, Clone, Default)]
    pub struct Seen {
        pub authorization: String,
        /// Text frames the client (the bridge) sent, in order.
        pub client_texts: Vec<String>,
    }

    #[derive(Clone)]
    pub struct RecordingProxy {
        pub addr: std::net::SocketAddr,
        seen: Arc<Mutex<Vec<Arc<Mutex<Seen>>>>>,
    }

    impl RecordingProxy {
        /// Proxies to the WebSocket server at `upstream` (`host:port`), same path and query.
        pub async fn start(upstream: std::net::SocketAddr) -> anyhow::Result<Self> {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let proxy = Self {
                addr: listener.local_addr()?,
                seen: Arc::default(),
            };
            let seen = proxy.seen.clone();
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let record = Arc::new(Mutex::new(Seen::default()));
                    if let Ok(mut all) = seen.lock() {
                        all.push(record.clone());
                    }
                    tokio::spawn(relay(tcp, upstream, record));
                }
            });
            Ok(proxy)
        }

        /// `ws://…` of the proxy at `path`.
        pub fn url(&self, path: &str) -> String {
            format!("ws://{}{path}", self.addr)
        }

        /// Every connection so far.
        pub fn seen(&self) -> Vec<Seen> {
            self.seen
                .lock()
                .map(|all| {
                    all.iter()
                        .filter_map(|s| s.lock().ok().map(|s| s.clone()))
                        .collect()
                })
                .unwrap_or_default()
        }

        /// The `instructions` of connection `n`'s first `session.update`, if it sent one.
        pub fn instructions(&self, n: usize) -> Option<String> {
            let seen = self.seen().into_iter().nth(n)?;
            seen.client_texts.iter().find_map(|t| {
                let v: serde_json::Value = serde_json::from_str(t).ok()?;
                (v["type"] == "session.update")
                    .then(|| v["session"]["instructions"].as_str().map(String::from))?
            })
        }
    }

    // The upgrade callback's error type is tungstenite's own.
    #[allow(clippy::result_large_err)]
    async fn relay(
        tcp: tokio::net::TcpStream,
        upstream: std::net::SocketAddr,
        record: Arc<Mutex<Seen>>,
    ) -> anyhow::Result<()> {
        let request: Arc<Mutex<Option<Request>>> = Arc::default();
        let keep = request.clone();
        let client =
            tokio_tungstenite::accept_hdr_async(tcp, move |req: &Request, res: Response| {
                if let Ok(mut r) = keep.lock() {
                    let mut copy = Request::new(());
                    *copy.uri_mut() = req.uri().clone();
                    *copy.headers_mut() = req.headers().clone();
                    *r = Some(copy);
                }
                Ok(res)
            })
            .await?;
        let Some(original) = request.lock().ok().and_then(|mut r| r.take()) else {
            anyhow::bail!("no request");
        };
        if let Ok(mut seen) = record.lock() {
            seen.authorization = original
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
        }
        let path = original
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let mut upstream_request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                format!("ws://{upstream}{path}"),
            )?;
        for name in ["authorization", "openai-beta"] {
            if let Some(v) = original.headers().get(name) {
                upstream_request.headers_mut().insert(name, v.clone());
            }
        }
        let (server, _) = tokio_tungstenite::connect_async(upstream_request).await?;
        let (mut client_tx, mut client_rx) = client.split();
        let (mut server_tx, mut server_rx) = server.split();
        let up = async {
            while let Some(Ok(msg)) = client_rx.next().await {
                if let Message::Text(t) = &msg {
                    if let Ok(mut seen) = record.lock() {
                        seen.client_texts.push(t.to_string());
                    }
                }
                if server_tx.send(msg).await.is_err() {
                    break;
                }
            }
        };
        let down = async {
            while let Some(Ok(msg)) = server_rx.next().await {
                if client_tx.send(msg).await.is_err() {
                    break;
                }
            }
        };
        tokio::select! { _ = up => {}, _ = down => {} }
        Ok(())
    }
}
