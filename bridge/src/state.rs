//! Everything the bridge's handlers share, in one place.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use voice_core::providers::catalog::StageInstances;

use voice_core::esl::EslClient;
use voice_core::recording::upload::Uploader;
use voice_core::recording::Recorders;

use crate::call::CallRegistry;
use crate::config::{BridgeConfig, Providers, TenantSettings};
use crate::front_end::FrontEndModels;
use crate::metrics::BridgeMetrics;
use crate::prompts::Prompts;
use crate::tenancy::{Tenancy, TenantSlots};

pub struct AppState {
    pub config: Arc<BridgeConfig>,
    pub calls: CallRegistry,
    pub metrics: BridgeMetrics,
    /// Present when `[esl] enabled = true`.
    pub esl: Option<EslClient>,
    /// Models shared by the calls' front ends (local turn detection).
    pub models: FrontEndModels,
    /// Present when `[recording] enabled = true`.
    pub recorders: Option<Recorders>,
    /// Every agent's greeting, hold, hand-over and apology audio.
    pub prompts: Prompts,
    /// The cascaded agents' STT, LLM and TTS providers, built once.
    pub stages: StageInstances,
    /// Tenants from PostgreSQL; `None`: TOML only.
    pub tenancy: Option<Tenancy>,
    /// Calls each tenant runs now, for its cap.
    pub slots: TenantSlots,
    /// Sends finished calls' recordings to call-insights (`[recording.upload]`); set once
    /// at start, for its counters on /metrics.
    pub uploader: std::sync::OnceLock<Uploader>,
    shutting_down: AtomicBool,
}

impl AppState {
    pub fn new(
        config: BridgeConfig,
        esl: Option<EslClient>,
        models: FrontEndModels,
        recorders: Option<Recorders>,
        prompts: Prompts,
        stages: StageInstances,
        tenancy: Option<Tenancy>,
    ) -> Arc<Self> {
        Arc::new(Self {
            config: Arc::new(config),
            calls: CallRegistry::default(),
            metrics: BridgeMetrics::default(),
            esl,
            models,
            recorders,
            prompts,
            stages,
            tenancy,
            slots: TenantSlots::default(),
            uploader: std::sync::OnceLock::new(),
            shutting_down: AtomicBool::new(false),
        })
    }

    /// The providers a call with `settings` uses: its database tenant's accounts, else the
    /// process's.
    pub fn providers_for<'a>(
        &'a self,
        settings: &'a TenantSettings,
    ) -> (&'a Providers, &'a StageInstances) {
        match &settings.db {
            Some(db) => (&db.providers.settings, &db.providers.stages),
            None => (&self.config.providers.settings, &self.stages),
        }
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}
