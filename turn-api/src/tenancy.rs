//! Tenants from PostgreSQL (`[database] url`): API keys with roles, each tenant's agents and
//! provider accounts, its request rate, its knowledge base, and the event log. Without a
//! database the TOML `[tenants]` are all there is, as before.
//!
//! A session created with a database key remembers its tenant id and agent; each turn looks
//! the tenant up again through the [`Directory`] (cached, dropped on `NOTIFY`), so a changed
//! prompt or key applies from the next turn, without a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tracing::warn;
use uuid::Uuid;
use voice_core::db::Db;
use voice_core::tenancy::crypto::CredentialKey;
use voice_core::tenancy::directory::{BuiltFromConfig, Directory, TenantConfig};
use voice_core::tenancy::events::{EventSink, NewEvent};
use voice_core::tenancy::model::{AgentRecord, KeyIdentity};
use voice_core::tenancy::rate_limit::RateLimiter;
use voice_core::tenancy::store::{self, StoreError};

use crate::config::TurnApiConfig;
use crate::engine::{EngineSettings, KnowledgeLookup, TurnEngine};
use crate::http::engine_turns::EngineTurns;
use crate::http::turns::Turns;

/// Knowledge hits given to the model per lookup.
const KNOWLEDGE_HITS: i64 = 3;

/// One tenant configuration's engines, by agent, built as sessions first need them.
type AgentEngines = Arc<Mutex<HashMap<Uuid, Arc<dyn Turns>>>>;

pub struct DbTenancy {
    pub db: Db,
    pub directory: Directory,
    pub events: EventSink,
    pub limiter: RateLimiter,
    /// Kept per configuration: a reloaded one (a changed prompt) builds afresh.
    engines: BuiltFromConfig<AgentEngines>,
}

impl DbTenancy {
    /// Connects, migrates, and starts the directory and the event writer; `None` without
    /// `[database] url`.
    pub async fn connect(config: &TurnApiConfig) -> Result<Option<Self>, String> {
        let url = config.database.url.expose().trim();
        if url.is_empty() {
            return Ok(None);
        }
        let db = Db::connect_with(url, config.database.pool_size)
            .await
            .map_err(|e| format!("database: {e}"))?;
        db.migrate()
            .await
            .map_err(|e| format!("database migrations: {e}"))?;
        let key = match CredentialKey::from_env() {
            Ok(key) => Some(key),
            Err(e) => {
                warn!(error = %e, "provider credentials in the database cannot be opened");
                None
            }
        };
        let directory = Directory::start(db.clone(), url, key)
            .await
            .map_err(|e| format!("database listener: {e}"))?;
        Ok(Some(Self {
            events: EventSink::start(db.clone()),
            limiter: RateLimiter::new(config.database.requests_per_minute),
            directory,
            db,
            engines: BuiltFromConfig::default(),
        }))
    }

    /// Who a presented key is, if it is a valid database key.
    pub async fn identify(&self, presented: &str) -> Result<Option<KeyIdentity>, StoreError> {
        store::lookup_key(&self.db, presented).await
    }

    /// The tenant whose domain is `domain`.
    pub async fn tenant(&self, domain: &str) -> Result<Option<Arc<TenantConfig>>, StoreError> {
        self.directory.tenant(domain).await
    }

    /// Takes one request from the tenant's budget; `Err(retry after)` when it is spent.
    pub fn spend(&self, tenant: &TenantConfig) -> Result<(), Duration> {
        let own = tenant
            .tenant
            .requests_per_minute
            .and_then(|n| u32::try_from(n).ok());
        self.limiter.check(tenant.tenant.id, own)
    }

    /// Records `event` (never blocks; written in batches).
    pub fn emit(&self, event: NewEvent) {
        self.events.emit(event);
    }

    /// The engine that answers for `agent` of `tenant`, built once per configuration.
    pub fn engine(
        &self,
        config: &TurnApiConfig,
        tenant: &Arc<TenantConfig>,
        agent: &AgentRecord,
    ) -> Result<Arc<dyn Turns>, String> {
        let engines = self.engines.get_or_build(tenant, AgentEngines::default);
        let mut engines = engines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(engine) = engines.get(&agent.id) {
            return Ok(engine.clone());
        }
        let engine = self.build(config, tenant, agent)?;
        engines.insert(agent.id, engine.clone());
        Ok(engine)
    }

    fn build(
        &self,
        config: &TurnApiConfig,
        tenant: &TenantConfig,
        agent: &AgentRecord,
    ) -> Result<Arc<dyn Turns>, String> {
        let providers =
            voice_core::tenancy::providers::tenant_providers(&config.providers, &tenant.providers)?;
        let settings = engine_settings(&config.engine, agent)?;
        let knowledge = self.knowledge(tenant.tenant.id, agent.id);
        let engine = TurnEngine::new(&providers, settings)
            .map_err(|e| e.to_string())?
            .with_knowledge(knowledge);
        Ok(Arc::new(EngineTurns::new(engine, &providers)))
    }

    /// `lookup_knowledge` for one agent: PostgreSQL full-text search (Portuguese) over the
    /// agent's documents and the tenant-wide ones.
    fn knowledge(&self, tenant: Uuid, agent: Uuid) -> KnowledgeLookup {
        let db = self.db.clone();
        Arc::new(move |query: String| {
            let db = db.clone();
            async move {
                let hits = db
                    .with_tenant(tenant, move |tx| {
                        Box::pin(async move {
                            store::search_knowledge(tx, Some(agent), &query, KNOWLEDGE_HITS).await
                        })
                    })
                    .await;
                match hits {
                    Ok(hits) if hits.is_empty() => r#"{"results":[]}"#.to_string(),
                    Ok(hits) => serde_json::json!({ "results": hits }).to_string(),
                    Err(e) => {
                        warn!(error = %e, "knowledge search failed");
                        r#"{"error":"the knowledge base is unavailable"}"#.to_string()
                    }
                }
            }
            .boxed()
        })
    }
}

/// `[engine]` with the agent row over it: its `settings` object (the `[engine]` shape), then
/// prompt, greeting, language and hand-over target where the row sets them.
pub fn engine_settings(base: &toml::Table, agent: &AgentRecord) -> Result<EngineSettings, String> {
    let mut table = base.clone();
    let overrides: toml::Table = match &agent.settings {
        serde_json::Value::Object(map) if !map.is_empty() => {
            toml::Table::try_from(map).map_err(|e| format!("agent settings: {e}"))?
        }
        _ => toml::Table::new(),
    };
    voice_core::config::merge(&mut table, overrides);
    let mut text = |name: &str, value: &str| {
        if !value.trim().is_empty() {
            table.insert(name.into(), toml::Value::String(value.to_string()));
        }
    };
    text("instructions", &agent.prompt);
    text("greeting", &agent.greeting);
    text("language", &agent.language);
    if let Some(target) = agent.handoff.get("target").and_then(|t| t.as_str()) {
        text("handoff_target", target);
    }
    let settings: EngineSettings = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| format!("agent {:?}: {}", agent.name, e.message()))?;
    settings
        .validate()
        .map_err(|e| format!("agent {:?}: {e}", agent.name))?;
    Ok(settings)
}
