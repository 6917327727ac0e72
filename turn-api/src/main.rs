use std::path::PathBuf;

use clap::Parser;
use tracing::{error, info};
use turn_api::config::TurnApiConfig;
use turn_api::http;
use voice_core::recording::upload::{UploadSource, Uploader};

/// Turn-based REST API for FreeSWITCH Lua IVR scripts: one HTTP call per caller turn.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// TOML configuration file (overrides the embedded default; VOICE_TURN_API__* env vars override both).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Print the embedded default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
    /// Print the OpenAPI document and exit (regenerates turn-api/openapi.json).
    #[arg(long)]
    print_openapi: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.print_default_config {
        print!("{}", turn_api::config::DEFAULT_TOML);
        return std::process::ExitCode::SUCCESS;
    }
    if args.print_openapi {
        println!("{}", http::openapi::json());
        return std::process::ExitCode::SUCCESS;
    }
    let config = match TurnApiConfig::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("turn-api: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    voice_core::telemetry::init_logging(&config.log);
    let listen = config.server.listen.clone();
    let state = match http::state(config).await {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot start");
            return std::process::ExitCode::from(2);
        }
    };
    // Finished calls' recordings to call-insights ([recording.upload]; off without a url).
    match Uploader::start(&state.config.recording, UploadSource::TurnApi) {
        Ok(Some(uploader)) => {
            let _ = state.uploader.set(uploader);
        }
        Ok(None) => {}
        Err(e) => {
            error!(error = %e, "cannot start");
            return std::process::ExitCode::from(2);
        }
    }
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            error!(address = %listen, error = %e, "cannot listen");
            return std::process::ExitCode::from(1);
        }
    };
    info!(address = %listen, store = state.store.name(), version = env!("CARGO_PKG_VERSION"), "turn-api listening");
    match http::serve(listener, state, shutdown_signal()).await {
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
