//! `voice-sim turn-load`: a benchmark of the turn-api with fake providers at fixed delays.
//!
//! It starts fake OpenAI transcription, a fake chat model and fake ElevenLabs TTS
//! ([`TurnFakes`]), writes an espeak-ng caller recording, starts the `turn-api` binary
//! pointed at them ([`TurnApiProcess`]), creates sessions and posts turns open-loop at a
//! fixed rate ([`run_turns`]). The report's `overhead_ms` is each turn's latency minus the
//! providers' time the turn-api itself measured (its answer's `timings`).
//!
//! `voice-sim turn-stack` starts the same fakes and turn-api (no delays) and keeps them up,
//! for API checkers such as schemathesis (`scripts/schemathesis`).

mod cli;
mod fakes;
mod process;
mod run;
mod server_metrics;
mod stats;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

pub use cli::{TurnLoadCmd, TurnStackCmd};
pub use fakes::{write_caller_wav, TurnDelays, TurnFakes, API_KEY, DOMAIN, HEARD, REPLY};
pub use process::{find_turn_api_binary, free_addr, TurnApiProcess};
pub use run::{run_turns, ProcessCost, TurnLoadReport, TurnLoadSpec};
pub use server_metrics::ServerOverhead;
pub use stats::Spread;

/// A temporary folder (answers, recordings, config), removed when dropped.
pub struct WorkDir(pub PathBuf);

impl WorkDir {
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(dir.join("rec"))
            .with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fakes and a turn-api process pointed at them, in a fresh work folder.
pub struct TurnStack {
    pub fakes: TurnFakes,
    pub api: TurnApiProcess,
    pub caller_wav: PathBuf,
    pub dir: WorkDir,
}

impl TurnStack {
    pub async fn start(delays: TurnDelays, log_level: &str) -> anyhow::Result<Self> {
        let binary = find_turn_api_binary()?;
        let dir = WorkDir::new("turn-load")?;
        let caller_wav = write_caller_wav(&dir.0)?;
        let fakes = TurnFakes::start(delays).await?;
        let listen = free_addr()?;
        let config = dir.0.join("turn-api.toml");
        std::fs::write(
            &config,
            fakes.turn_api_config(&listen.to_string(), &dir.0, log_level),
        )
        .context("writing the turn-api config")?;
        let api = TurnApiProcess::start(&binary, &config, listen).await?;
        Ok(Self {
            fakes,
            api,
            caller_wav,
            dir,
        })
    }
}

/// A whole benchmark: the stack, the sessions and `spec`'s turns (its `audio_path` is
/// replaced by the stack's recording), with the turn-api's CPU and RSS.
pub async fn run_turn_load(
    mut spec: TurnLoadSpec,
    delays: TurnDelays,
    log_level: &str,
) -> anyhow::Result<TurnLoadReport> {
    let stack = TurnStack::start(delays, log_level).await?;
    spec.audio_path = stack.caller_wav.display().to_string();
    spec.delays = Some(delays);
    let ticks = stack.api.cpu_ticks();
    let started = Instant::now();
    let result = run_turns(&stack.api.base(), &spec).await;
    let cost = stack.api.cost_since(ticks, started.elapsed());
    let stopped = stack.api.stop().await;
    let mut report = result?;
    report.turn_api = Some(cost);
    stopped?;
    Ok(report)
}
