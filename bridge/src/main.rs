use std::path::PathBuf;

use clap::Parser;
use tracing::{error, info};
use voice_bridge::config::BridgeConfig;
use voice_bridge::server;
use voice_core::recording::upload::{UploadSource, Uploader};

/// Realtime bridge between FreeSWITCH audio streams and AI voice agents.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// TOML configuration file (overrides the embedded default; VOICE_BRIDGE__* env vars override both).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Print the embedded default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.print_default_config {
        print!("{}", voice_bridge::config::DEFAULT_TOML);
        return std::process::ExitCode::SUCCESS;
    }
    let config = match BridgeConfig::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("voice-bridge: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    voice_core::telemetry::init_logging(&config.log);
    let listener = match tokio::net::TcpListener::bind(&config.server.listen).await {
        Ok(l) => l,
        Err(e) => {
            error!(address = %config.server.listen, error = %e, "cannot listen");
            return std::process::ExitCode::from(1);
        }
    };
    info!(address = %config.server.listen, version = env!("CARGO_PKG_VERSION"), "voice-bridge listening");
    let state = match server::connect_state(config).await {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot start");
            return std::process::ExitCode::from(2);
        }
    };
    // Finished calls' recordings to call-insights ([recording.upload]; off without a url).
    match Uploader::start(&state.config.recording, UploadSource::Bridge) {
        Ok(Some(uploader)) => {
            let _ = state.uploader.set(uploader);
        }
        Ok(None) => {}
        Err(e) => {
            error!(error = %e, "cannot start");
            return std::process::ExitCode::from(2);
        }
    }
    let served = server::serve(listener, state.clone(), shutdown_signal()).await;
    if let Some(recorders) = state.recorders.clone() {
        // Calls are over: let the writers finish their files.
        let _ = tokio::task::spawn_blocking(move || recorders.drain()).await;
    }
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "server failed");
            std::process::ExitCode::from(1)
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
