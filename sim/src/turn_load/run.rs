//! The open-loop driver: turns are posted on a fixed schedule whether or not earlier ones
//! have been answered, so a slow server shows as latency, not as a lower request rate.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::fakes::{TurnDelays, API_KEY, DOMAIN};
use super::stats::{round1, Spread};

/// What to send.
#[derive(Debug, Clone)]
pub struct TurnLoadSpec {
    /// Turns per second.
    pub rate: f64,
    /// How long turns are sent for.
    pub seconds: f64,
    /// Sessions created before the run (one turn at a time each); more are created
    /// during the run when all are busy. 0: twice the rate.
    pub sessions: usize,
    /// The recording each turn names (`audio_path`): inside the turn-api's recordings dirs.
    pub audio_path: String,
    pub api_key: String,
    pub domain: String,
    /// A turn not answered within this is a `timeout` error.
    pub timeout: Duration,
    /// The providers' delays, used when answers carry no `timings`.
    pub delays: Option<TurnDelays>,
}

impl TurnLoadSpec {
    /// 200 turns/s for 30 s with the load fakes' tenant.
    pub fn new(audio_path: impl Into<String>) -> Self {
        Self {
            rate: 200.0,
            seconds: 30.0,
            sessions: 0,
            audio_path: audio_path.into(),
            api_key: API_KEY.into(),
            domain: DOMAIN.into(),
            timeout: Duration::from_secs(10),
            delays: Some(TurnDelays::default()),
        }
    }
}

/// A run's figures: the last line `voice-sim turn-load` prints.
#[derive(Debug, Clone, Serialize)]
pub struct TurnLoadReport {
    pub target: String,
    /// Turns per second asked for.
    pub rate: f64,
    pub seconds: f64,
    /// Turns sent.
    pub requests: u64,
    /// Turns answered 200 with an answer that parses.
    pub ok: u64,
    /// Failed turns by kind: `http_STATUS_code`, `timeout`, `connect`, `transport`,
    /// `bad_answer`, `no_session`.
    pub errors: BTreeMap<String, u64>,
    /// Turns sent per second, first send to last.
    pub achieved_rate: f64,
    /// Sessions created before the run, and during it (all busy at a send time).
    pub sessions: usize,
    pub sessions_created_during_run: u64,
    /// How late each turn was sent against its schedule.
    pub send_lag_ms: Option<Spread>,
    /// Request sent → whole answer read, answered turns.
    pub latency_ms: Option<Spread>,
    /// The providers' time of each answered turn: `stt_ms + llm_ms + tts_ms` of its
    /// `timings` (`providers_source: "timings"`), else the fixed delays' sum.
    pub providers_ms: Option<Spread>,
    pub providers_source: &'static str,
    /// Latency − providers' time of the same turn: what the turn-api (HTTP, sessions,
    /// trimming, WAV I/O, provider clients) and the loopback add. The stage timings are
    /// whole milliseconds rounded down, so this may be up to 3 ms high.
    pub overhead_ms: Option<Spread>,
    pub delays: Option<TurnDelays>,
    /// The turn-api's own overhead histogram (`/metrics`) after the run: cumulative over
    /// the process's life (a fresh process here: this run's turns).
    pub server_overhead: Option<super::ServerOverhead>,
    /// The turn-api's cost while turns were sent, when it is a process started here.
    pub turn_api: Option<ProcessCost>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessCost {
    pub pid: u32,
    /// CPU over the run, percent of one core.
    pub cpu_pct: Option<f64>,
    /// Resident memory at the end of the run.
    pub rss_mb: Option<f64>,
}

/// One turn's outcome.
enum Outcome {
    Answered {
        latency_ms: f64,
        providers_ms: Option<f64>,
    },
    Failed(String),
}

struct Shared {
    client: reqwest::Client,
    base: String,
    spec: TurnLoadSpec,
    idle: Mutex<Vec<String>>,
    created_during_run: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn create_session(&self, n: usize) -> anyhow::Result<String> {
        let r = self
            .client
            .post(format!("{}/v1/sessions", self.base))
            .bearer_auth(&self.spec.api_key)
            .json(&serde_json::json!({
                "call_id": format!("turn-load-{n}"),
                "domain": self.spec.domain,
                "caller": "1001",
            }))
            .timeout(self.spec.timeout)
            .send()
            .await
            .context("POST /v1/sessions")?;
        let status = r.status();
        let body: serde_json::Value = r.json().await.context("session answer")?;
        if status.as_u16() != 201 {
            bail!("POST /v1/sessions answered {status}: {body}");
        }
        body["session_id"]
            .as_str()
            .map(str::to_string)
            .context("session answer without session_id")
    }

    /// Takes an idle session or makes one; sends one turn on it.
    async fn turn(&self, n: usize) -> Outcome {
        let popped = self.idle().pop();
        let id = match popped {
            Some(id) => id,
            None => {
                self.created_during_run
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match self.create_session(n).await {
                    Ok(id) => id,
                    Err(_) => return Outcome::Failed("no_session".into()),
                }
            }
        };
        let sent = Instant::now();
        let answer = self
            .client
            .post(format!("{}/v1/sessions/{id}/turns", self.base))
            .header("x-api-key", &self.spec.api_key)
            .json(&serde_json::json!({ "audio_path": self.spec.audio_path }))
            .timeout(self.spec.timeout)
            .send()
            .await;
        let outcome = match answer {
            Ok(r) => {
                let status = r.status().as_u16();
                match r.bytes().await {
                    Ok(body) => {
                        let latency_ms = sent.elapsed().as_secs_f64() * 1000.0;
                        judge(status, &body, latency_ms, self.spec.delays)
                    }
                    Err(e) => Outcome::Failed(transport_kind(&e)),
                }
            }
            Err(e) => Outcome::Failed(transport_kind(&e)),
        };
        // A session whose turn failed may be mid-turn or gone: not used again.
        if matches!(outcome, Outcome::Answered { .. }) {
            self.idle().push(id);
        }
        outcome
    }
}

async fn server_overhead(shared: &Shared) -> Option<super::ServerOverhead> {
    let r = shared
        .client
        .get(format!("{}/metrics", shared.base))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    super::server_metrics::parse(&r.text().await.ok()?)
}

fn transport_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

/// An answer's outcome: 200 with `timings`, or an error kind with the API's error code.
fn judge(status: u16, body: &[u8], latency_ms: f64, delays: Option<TurnDelays>) -> Outcome {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    if status != 200 {
        let code = json
            .as_ref()
            .and_then(|j| j["error"]["code"].as_str())
            .unwrap_or("unknown")
            .to_string();
        return Outcome::Failed(format!("http_{status}_{code}"));
    }
    let Some(json) = json else {
        return Outcome::Failed("bad_answer".into());
    };
    if json["reply_text"].as_str().is_none() {
        return Outcome::Failed("bad_answer".into());
    }
    let t = &json["timings"];
    let stages = ["stt_ms", "llm_ms", "tts_ms"].map(|k| t[k].as_u64());
    let providers_ms = if stages.iter().all(Option::is_some) {
        Some(stages.iter().flatten().sum::<u64>() as f64)
    } else {
        delays.map(|d| (d.stt_ms + d.llm_first_token_ms + d.tts_first_byte_ms) as f64)
    };
    Outcome::Answered {
        latency_ms,
        providers_ms,
    }
}

/// Creates the sessions, then sends `spec.rate` turns a second for `spec.seconds` to the
/// turn-api at `base` (`http://host:port`) and waits for every answer.
pub async fn run_turns(base: &str, spec: &TurnLoadSpec) -> anyhow::Result<TurnLoadReport> {
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if !positive(spec.rate) || !positive(spec.seconds) {
        bail!("rate and seconds must be positive");
    }
    let sessions = if spec.sessions == 0 {
        ((spec.rate * 2.0).ceil() as usize).max(4)
    } else {
        spec.sessions
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .context("HTTP client")?;
    let shared = Arc::new(Shared {
        client,
        base: base.trim_end_matches('/').to_string(),
        spec: spec.clone(),
        idle: Mutex::new(Vec::with_capacity(sessions)),
        created_during_run: Default::default(),
    });

    // The sessions, 32 at a time.
    let gate = Arc::new(Semaphore::new(32));
    let mut creating = JoinSet::new();
    for n in 0..sessions {
        let (shared, gate) = (shared.clone(), gate.clone());
        creating.spawn(async move {
            let _permit = gate.acquire().await;
            shared.create_session(n).await
        });
    }
    while let Some(made) = creating.join_next().await {
        let id = made.context("session task")??;
        shared.idle().push(id);
    }

    let total = (spec.rate * spec.seconds).round().max(1.0) as usize;
    let period = Duration::from_secs_f64(1.0 / spec.rate);
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let mut lags = Vec::with_capacity(total);
    let mut turns = JoinSet::new();
    let mut last_send = start;
    for i in 0..total {
        let at = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(at).await;
        let now = tokio::time::Instant::now();
        lags.push(now.saturating_duration_since(at).as_secs_f64() * 1000.0);
        last_send = now;
        let shared = shared.clone();
        turns.spawn(async move { shared.turn(sessions + i).await });
    }
    let send_span = last_send.saturating_duration_since(start).as_secs_f64();

    let mut errors = BTreeMap::new();
    let (mut latency, mut providers, mut overhead) = (Vec::new(), Vec::new(), Vec::new());
    let mut from_timings = true;
    while let Some(done) = turns.join_next().await {
        match done {
            Ok(Outcome::Answered {
                latency_ms,
                providers_ms,
            }) => {
                latency.push(latency_ms);
                match providers_ms {
                    Some(p) => {
                        providers.push(p);
                        overhead.push(latency_ms - p);
                    }
                    None => from_timings = false,
                }
            }
            Ok(Outcome::Failed(kind)) => *errors.entry(kind).or_insert(0u64) += 1,
            Err(_) => *errors.entry("task_panicked".into()).or_insert(0u64) += 1,
        }
    }
    Ok(TurnLoadReport {
        target: shared.base.clone(),
        rate: spec.rate,
        seconds: spec.seconds,
        requests: total as u64,
        ok: latency.len() as u64,
        errors,
        achieved_rate: if total > 1 && send_span > 0.0 {
            round1((total - 1) as f64 / send_span)
        } else {
            spec.rate
        },
        sessions,
        sessions_created_during_run: shared
            .created_during_run
            .load(std::sync::atomic::Ordering::Relaxed),
        send_lag_ms: Spread::of(&lags),
        latency_ms: Spread::of(&latency),
        providers_ms: Spread::of(&providers),
        providers_source: if from_timings {
            "timings"
        } else {
            "fixed_delays"
        },
        overhead_ms: Spread::of(&overhead),
        delays: spec.delays,
        server_overhead: server_overhead(&shared).await,
        turn_api: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_by_status_code_and_timings() {
        let ok =
            br#"{"reply_text":"x","timings":{"trim_ms":1,"stt_ms":150,"llm_ms":310,"tts_ms":125}}"#;
        match judge(200, ok, 600.0, None) {
            Outcome::Answered { providers_ms, .. } => assert_eq!(providers_ms, Some(585.0)),
            Outcome::Failed(k) => panic!("{k}"),
        }
        // No timings: the fixed delays stand in.
        let bare = br#"{"reply_text":"x","timings":{}}"#;
        match judge(200, bare, 600.0, Some(TurnDelays::default())) {
            Outcome::Answered { providers_ms, .. } => assert_eq!(providers_ms, Some(570.0)),
            Outcome::Failed(k) => panic!("{k}"),
        }
        let busy = br#"{"error":{"code":"turn_in_progress","message":"m"}}"#;
        match judge(409, busy, 1.0, None) {
            Outcome::Failed(k) => assert_eq!(k, "http_409_turn_in_progress"),
            Outcome::Answered { .. } => panic!("a 409 is an error"),
        }
        match judge(200, b"<html>", 1.0, None) {
            Outcome::Failed(k) => assert_eq!(k, "bad_answer"),
            Outcome::Answered { .. } => panic!("not JSON"),
        }
    }
}
