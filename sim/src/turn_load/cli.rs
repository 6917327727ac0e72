//! The `turn-load` and `turn-stack` subcommands.

use std::time::Duration;

use clap::Args;

use super::{run_turn_load, TurnDelays, TurnLoadSpec, TurnStack, API_KEY};

/// `voice-sim turn-load`.
#[derive(Args, Debug)]
pub struct TurnLoadCmd {
    /// Turns per second, sent on schedule (open loop).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// How long turns are sent for.
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
    /// Sessions created before the run (0: twice the rate).
    #[arg(long, default_value_t = 0)]
    pub sessions: usize,
    /// Fake STT answers each upload this long after it arrived, ms.
    #[arg(long, default_value_t = TurnDelays::default().stt_ms)]
    pub stt_ms: u64,
    /// The fake chat model's first token, ms after its headers.
    #[arg(long, default_value_t = TurnDelays::default().llm_first_token_ms)]
    pub llm_first_token_ms: u64,
    /// Between the fake chat model's tokens, ms.
    #[arg(long, default_value_t = TurnDelays::default().llm_token_interval_ms)]
    pub llm_token_interval_ms: u64,
    /// Fake TTS first audio, ms after a text is complete.
    #[arg(long, default_value_t = TurnDelays::default().tts_first_byte_ms)]
    pub tts_first_byte_ms: u64,
    /// A turn not answered within this many seconds is a `timeout`.
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
    /// The turn-api's log level.
    #[arg(long, default_value = "warn")]
    pub log_level: String,
}

impl TurnLoadCmd {
    /// Runs the benchmark; prints the report as one JSON line on stdout.
    pub async fn run(self) -> anyhow::Result<()> {
        let delays = TurnDelays {
            stt_ms: self.stt_ms,
            llm_first_token_ms: self.llm_first_token_ms,
            llm_token_interval_ms: self.llm_token_interval_ms,
            tts_first_byte_ms: self.tts_first_byte_ms,
        };
        let mut spec = TurnLoadSpec::new(String::new());
        spec.rate = self.rate;
        spec.seconds = self.seconds;
        spec.sessions = self.sessions;
        spec.timeout = Duration::from_secs(self.timeout_secs.max(1));
        eprintln!(
            "turn-load: {} turns/s for {} s against a turn-api started here",
            self.rate, self.seconds
        );
        let report = run_turn_load(spec, delays, &self.log_level).await?;
        println!("{}", serde_json::to_string(&report)?);
        Ok(())
    }
}

/// `voice-sim turn-stack`.
#[derive(Args, Debug)]
pub struct TurnStackCmd {
    /// Also write the JSON line (base URL, key, recording) to this file, once ready.
    #[arg(long)]
    pub ready_file: Option<std::path::PathBuf>,
    /// The turn-api's log level.
    #[arg(long, default_value = "warn")]
    pub log_level: String,
}

impl TurnStackCmd {
    /// Starts fakes (no delays) and a turn-api, prints
    /// `{"base", "api_key", "domain", "audio_path"}` and serves until Ctrl-C or SIGTERM.
    pub async fn run(self) -> anyhow::Result<()> {
        let stack = TurnStack::start(TurnDelays::none(), &self.log_level).await?;
        let line = serde_json::json!({
            "base": stack.api.base(),
            "api_key": API_KEY,
            "domain": super::DOMAIN,
            "audio_path": stack.caller_wav.display().to_string(),
        })
        .to_string();
        println!("{line}");
        if let Some(path) = &self.ready_file {
            std::fs::write(path, format!("{line}\n"))?;
        }
        wait_for_stop().await;
        stack.api.stop().await
    }
}

async fn wait_for_stop() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
}
