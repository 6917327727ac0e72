use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use call_insights::config::InsightsConfig;
use call_insights::http;
use call_insights::privacy::retention::spawn_retention;
use call_insights::queue::Queue;
use call_insights::relay::spawn_relay;
use call_insights::state::{AppState, PlatformToken};
use call_insights::worker::{self, Pipeline};
use clap::Parser;
use tracing::{error, info, warn};
use voice_core::db::Db;
use voice_core::tenancy::crypto::{CredentialKey, CryptoError};

/// Call insights service: signed call webhooks and recording uploads, the pipeline worker
/// (download, storage, transcription, insights, scorecard, CRM), the calls API, the web
/// panel, the retention job, and the tenancy admin REST API (tenants, agents, providers,
/// knowledge, API keys).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// TOML configuration file (overrides the embedded default; VOICE_INSIGHTS__* env vars override both).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Print the embedded default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
    /// Print the OpenAPI document and exit (regenerates insights/openapi.json).
    #[arg(long)]
    print_openapi: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_default_config {
        print!("{}", call_insights::config::DEFAULT_TOML);
        return ExitCode::SUCCESS;
    }
    if args.print_openapi {
        println!("{}", http::openapi::json());
        return ExitCode::SUCCESS;
    }
    let loaded = InsightsConfig::load(args.config.as_deref())
        .and_then(|c| c.with_env(|name| std::env::var(name).ok()));
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("call-insights: {e}");
            return ExitCode::from(2);
        }
    };
    voice_core::telemetry::init_logging(&config.log);
    let platform = match PlatformToken::from_env() {
        Ok(p) => p,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(2);
        }
    };
    if !platform.is_set() {
        warn!("VOICE_ADMIN_TOKEN is not set: no platform access (tenants cannot be managed)");
    }
    let credential_key = match CredentialKey::from_env() {
        Ok(k) => Some(k),
        Err(CryptoError::NoKey) => {
            warn!("VOICE_CREDENTIALS_KEY is not set: provider credentials will be refused");
            None
        }
        Err(e) => {
            error!(error = %e, "cannot start");
            return ExitCode::from(2);
        }
    };
    let Some(url) = config.database_url(|name| std::env::var(name).ok()) else {
        error!("no database: set [database] url, VOICE_INSIGHTS__DATABASE__URL or DATABASE_URL");
        return ExitCode::from(2);
    };
    let db = match Db::connect_with(url.expose(), config.database.pool_size).await {
        Ok(db) => db,
        Err(e) => {
            error!(error = %e, "cannot start");
            return ExitCode::from(2);
        }
    };
    match db.migrate().await {
        Ok(report) => {
            info!(database = db.target(), applied = ?report.applied, "migrations up to date")
        }
        Err(e) => {
            error!(error = %e, "cannot start");
            return ExitCode::from(2);
        }
    }
    let listen = config.server.listen.clone();
    let every = config.metrics.aggregate_every_secs;
    let _aggregator = (every > 0).then(|| {
        voice_core::tenancy::metrics::spawn_aggregator(db.clone(), Duration::from_secs(every))
    });
    let state = AppState::new(config, db.clone(), credential_key, platform);
    let _queue = start_queue(state.clone());
    let _retention = spawn_retention(db, state.storage.clone(), state.config.privacy.clone());
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            error!(address = %listen, error = %e, "cannot listen");
            return ExitCode::from(1);
        }
    };
    info!(address = %listen, version = env!("CARGO_PKG_VERSION"), "call-insights listening");
    match http::serve(listener, state, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "server failed");
            ExitCode::from(1)
        }
    }
}

/// With a Redis URL: connects the queue in the background, then runs the outbox relay and
/// (with `[worker] enabled`) the pipeline worker. Redis being down at start does not stop the
/// service: webhooks are still accepted (their jobs wait in the outbox) and both start once
/// Redis answers. Without one, accepted calls are stored and wait.
fn start_queue(state: Arc<AppState>) -> Option<tokio::task::JoinHandle<()>> {
    let settings = state.config.queue.clone();
    if settings.redis_url.is_empty() {
        warn!("no [queue] redis_url: accepted calls are stored but not processed");
        return None;
    }
    let pipeline = if state.config.worker.enabled {
        let metrics = state.pipeline_metrics.clone();
        let built = Pipeline::from_config(
            &state.config,
            state.db.clone(),
            state.storage.clone(),
            metrics,
        );
        match built {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                error!("pipeline worker not started: {e}");
                None
            }
        }
    } else {
        info!("[worker] enabled = false: this process does not run jobs");
        None
    };
    Some(tokio::spawn(async move {
        let queue_config = state.config.worker.queue_config();
        let mut wait = Duration::from_secs(1);
        let queue = loop {
            let url = settings.redis_url.expose();
            match Queue::connect_with(url, &settings.prefix, queue_config.clone()).await {
                Ok(q) => break q,
                Err(e) => {
                    warn!(error = %e, retry_in_secs = wait.as_secs(), "job queue unreachable");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(60));
                }
            }
        };
        let _ = state.queue.set(queue.clone());
        let every = Duration::from_millis(settings.relay_every_ms);
        info!(every_ms = every.as_millis() as u64, "outbox relay started");
        let relay = spawn_relay(state.db.clone(), queue.clone(), every);
        let _worker = match pipeline {
            Some(p) => match worker::run(p, &queue, &worker_name()).await {
                Ok(w) => Some(w),
                Err(e) => {
                    error!(error = %e, "pipeline worker not started");
                    None
                }
            },
            None => None,
        };
        // Both run until the process ends; awaiting the relay keeps the worker alive too.
        let _ = relay.await;
    }))
}

/// This process's consumer names: host and pid, so a restarted worker is a new consumer
/// and its predecessor's jobs are reclaimed.
fn worker_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "insights".into());
    format!("{host}-{}", std::process::id())
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
