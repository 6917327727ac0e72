//! Tenants from PostgreSQL (issue 7): which agent answers a call, with which provider
//! accounts, how many calls a tenant may run at once, what its knowledge base says, and the
//! events its calls leave behind. Without `[database] url` the bridge is TOML-only.
//!
//! A call's domain is looked up in the [`Directory`] first (name in any case, or uuid); a
//! domain the database does not know falls back to `[tenants]` / `allow_unknown_tenants`.
//! What each resolved tenant configuration turns into (agent settings per agent, provider
//! settings, cascaded stages) is built once per configuration version, not per call.

pub mod agent_row;
pub mod providers;
pub mod slots;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tracing::{error, info, warn};
use uuid::Uuid;
use voice_core::db::Db;
use voice_core::providers::catalog::StageInstances;
use voice_core::tenancy::crypto::CredentialKey;
use voice_core::tenancy::directory::{BuiltFromConfig, Directory, TenantConfig};
use voice_core::tenancy::events::{EventSink, NewEvent};
use voice_core::tenancy::model::AgentMode;
use voice_core::tenancy::store::{self, StoreError};

use crate::config::{
    AgentSettings, BridgeConfig, PlayoutSettings, ProviderKind, Providers, TenantSettings,
};
use crate::stream::StreamParams;
use crate::tools::KnowledgeHit;

pub use slots::{CallSlot, TenantSlots};

/// Knowledge hits per lookup.
const KNOWLEDGE_HITS: i64 = 3;
/// A knowledge lookup holds up the call's task: never longer than this.
const KNOWLEDGE_TIMEOUT: Duration = Duration::from_secs(2);

/// A call's provider settings and built cascaded stages, shared by the calls of one tenant
/// configuration.
pub struct CallProviders {
    pub settings: Providers,
    pub stages: StageInstances,
}

/// What a call of a database tenant carries: who it belongs to and its providers.
#[derive(Clone)]
pub struct DbCall {
    pub tenant_id: Uuid,
    pub agent_id: Uuid,
    pub providers: Arc<CallProviders>,
}

impl std::fmt::Debug for DbCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbCall")
            .field("tenant_id", &self.tenant_id)
            .field("agent_id", &self.agent_id)
            .finish_non_exhaustive()
    }
}

/// What to do with a new call.
#[derive(Debug)]
pub enum Resolution {
    /// Run it: `domain` names the tenant in logs and dialplan transfers.
    Call {
        domain: String,
        settings: TenantSettings,
    },
    /// Close the stream with this reason.
    Refuse(String),
    /// The call cannot be served: the caller hears the apology, with these settings.
    Apology {
        domain: String,
        settings: TenantSettings,
        reason: String,
    },
}

/// An agent row as the bridge runs it.
type BuiltAgent = (AgentSettings, PlayoutSettings, Arc<CallProviders>);

/// One tenant configuration, as the bridge runs it.
struct TenantRuntime {
    agents: HashMap<Uuid, Result<BuiltAgent, String>>,
}

/// The database side of the bridge.
pub struct Tenancy {
    pub db: Db,
    pub directory: Directory,
    pub events: EventSink,
    runtimes: BuiltFromConfig<Arc<TenantRuntime>>,
    /// Tenants whose failure to load was logged already (logged once each).
    warned: Mutex<HashSet<String>>,
}

impl Tenancy {
    /// Connects, migrates and starts the directory and the event writer; `None` when
    /// `[database] url` is empty.
    pub async fn connect(
        cfg: &BridgeConfig,
        key: Option<CredentialKey>,
    ) -> Result<Option<Self>, String> {
        let url = cfg.database.url.expose().trim();
        if url.is_empty() {
            return Ok(None);
        }
        let db = Db::connect_with(url, cfg.database.pool_size)
            .await
            .map_err(|e| format!("database: {e}"))?;
        db.migrate()
            .await
            .map_err(|e| format!("database migration: {e}"))?;
        if key.is_none() {
            warn!(
                "{} is not set: tenants whose provider instances hold credentials get the \
                 apology prompt",
                voice_core::tenancy::crypto::KEY_ENV
            );
        }
        let directory = Directory::start(db.clone(), url, key)
            .await
            .map_err(|e| format!("tenant directory: {e}"))?;
        info!(database = %db.target(), "tenants from the database");
        Ok(Some(Self {
            events: EventSink::start(db.clone()),
            db,
            directory,
            runtimes: BuiltFromConfig::default(),
            warned: Mutex::new(HashSet::new()),
        }))
    }

    /// Resolves a call's tenant and agent from the database; `None` when the database does
    /// not know the domain.
    pub async fn resolve(
        &self,
        cfg: &BridgeConfig,
        domain: &str,
        params: &StreamParams,
    ) -> Option<Resolution> {
        let mut found = self.directory.tenant(domain).await;
        if let (Ok(None), Some(uuid)) = (&found, &params.domain_uuid) {
            found = self.directory.tenant(uuid).await;
        }
        let tenant = match found {
            Ok(Some(tenant)) => tenant,
            Ok(None) => return None,
            Err(e @ StoreError::Crypto(_)) => {
                self.warn_once(domain, &e);
                return Some(Resolution::Apology {
                    domain: domain.to_string(),
                    settings: default_settings(cfg),
                    reason: "the tenant's provider credentials cannot be opened".into(),
                });
            }
            // The database is away: a domain of [tenants] still has its TOML agent.
            Err(e) if cfg.tenants.contains_key(domain) => {
                warn!(tenant = %domain, error = %e, "tenant lookup failed: using its [tenants] entry");
                return None;
            }
            Err(e) => {
                error!(tenant = %domain, error = %e, "tenant lookup failed: apology prompt");
                return Some(Resolution::Apology {
                    domain: domain.to_string(),
                    settings: default_settings(cfg),
                    reason: "tenant configuration unavailable".into(),
                });
            }
        };
        let name = tenant.tenant.domain_name.clone();
        if !tenant.tenant.enabled {
            return Some(Resolution::Refuse("tenant disabled".into()));
        }
        let number = params.agent.as_deref().or(params.callee.as_deref());
        let apology = |reason: String| Resolution::Apology {
            domain: name.clone(),
            settings: default_settings(cfg),
            reason,
        };
        let Some(agent) = tenant.agent_for(number) else {
            return Some(apology(format!(
                "no agent of the tenant answers {:?} (and none is the default)",
                number.unwrap_or("")
            )));
        };
        if agent.mode == AgentMode::Turn {
            return Some(Resolution::Refuse(format!(
                "agent {:?} is a turn agent (the turn-api serves it, not the bridge)",
                agent.name
            )));
        }
        let runtime = self.runtime(cfg, &tenant);
        let built = match runtime.agents.get(&agent.id) {
            Some(Ok(built)) => built.clone(),
            Some(Err(why)) => {
                return Some(apology(format!(
                    "agent {:?} ({}) is not usable: {why}",
                    agent.name, agent.id
                )))
            }
            None => return Some(apology(format!("agent {} was not built", agent.id))),
        };
        let (agent_settings, playout, providers) = built;
        let max_calls = match tenant.tenant.max_concurrent_calls {
            Some(n) => Some(u32::try_from(n).unwrap_or(0)),
            None => cap(cfg.server.max_calls_per_tenant),
        };
        Some(Resolution::Call {
            domain: name,
            settings: TenantSettings {
                agent: agent_settings,
                playout,
                max_calls,
                busy_transfer: tenant.tenant.busy_transfer.clone(),
                db: Some(DbCall {
                    tenant_id: tenant.tenant.id,
                    agent_id: agent.id,
                    providers,
                }),
            },
        })
    }

    fn warn_once(&self, domain: &str, e: &StoreError) {
        let first = self
            .warned
            .lock()
            .map(|mut w| w.insert(domain.to_ascii_lowercase()))
            .unwrap_or(true);
        if first {
            error!(tenant = %domain, error = %e, "tenant cannot be loaded: its calls get the apology prompt (logged once)");
        }
    }

    /// The runtime of `tenant`'s configuration, built on first use.
    fn runtime(&self, cfg: &BridgeConfig, tenant: &Arc<TenantConfig>) -> Arc<TenantRuntime> {
        self.runtimes
            .get_or_build(tenant, || Arc::new(build_runtime(cfg, tenant)))
    }

    /// The knowledge base's best passages for `query`: the agent's own and the tenant's.
    pub async fn search_knowledge(
        &self,
        call: &DbCall,
        query: &str,
    ) -> Result<Vec<KnowledgeHit>, String> {
        let (agent, query) = (call.agent_id, query.to_string());
        let search = self.db.with_tenant(call.tenant_id, move |tx| {
            Box::pin(async move {
                store::search_knowledge(tx, Some(agent), &query, KNOWLEDGE_HITS).await
            })
        });
        match tokio::time::timeout(KNOWLEDGE_TIMEOUT, search).await {
            Ok(Ok(hits)) => Ok(hits
                .into_iter()
                .map(|h| KnowledgeHit {
                    title: h.title,
                    text: h.text,
                })
                .collect()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("knowledge search timed out".into()),
        }
    }

    /// Queues an event of the call (never waits).
    pub fn emit(&self, call: &DbCall, call_id: &str, kind: &str, data: Value) {
        self.events.emit(
            NewEvent::now(call.tenant_id, kind)
                .agent(call.agent_id)
                .call(call_id)
                .data(data),
        );
    }
}

/// `max_calls_per_tenant` as a cap: 0 is none.
pub fn cap(max_calls: u32) -> Option<u32> {
    (max_calls > 0).then_some(max_calls)
}

/// The TOML defaults, for calls that only hear a prompt.
pub fn default_settings(cfg: &BridgeConfig) -> TenantSettings {
    TenantSettings {
        agent: cfg.agent.clone(),
        playout: cfg.playout.clone(),
        max_calls: None,
        busy_transfer: String::new(),
        db: None,
    }
}

fn build_runtime(cfg: &BridgeConfig, tenant: &TenantConfig) -> TenantRuntime {
    let domain = &tenant.tenant.domain_name;
    let providers = providers::tenant_providers(&cfg.providers, &tenant.providers);
    let mut agents = HashMap::new();
    let mut built = Vec::new();
    for row in tenant.agents.iter().filter(|a| a.mode != AgentMode::Turn) {
        let result = match &providers {
            Err(e) => Err(e.clone()),
            Ok(_) => agent_row::agent_settings(cfg, tenant, row),
        };
        match result {
            Ok((agent, playout)) => built.push((row.id, agent, playout)),
            Err(why) => {
                warn!(tenant = %domain, agent = %row.name, error = %why, "agent row not usable: its calls get the apology prompt");
                agents.insert(row.id, Err(why));
            }
        }
    }
    let Ok(settings) = providers else {
        return TenantRuntime { agents };
    };
    let cascaded: Vec<_> = built
        .iter()
        .filter(|(_, agent, _)| agent.provider_chain().contains(&ProviderKind::Cascaded))
        .map(|(_, agent, _)| &agent.cascaded)
        .collect();
    let stages = settings.build(cascaded.iter().copied());
    let (stages, stage_error) = match stages {
        Ok(stages) => (stages, None),
        Err(e) => (StageInstances::default(), Some(format!("cascaded: {e}"))),
    };
    let shared = Arc::new(CallProviders { settings, stages });
    for (id, agent, playout) in built {
        let needs_stages = agent.provider_chain().contains(&ProviderKind::Cascaded);
        let entry = match &stage_error {
            Some(why) if needs_stages => {
                warn!(tenant = %domain, agent = %id, error = %why, "agent's cascaded stages cannot be built");
                Err(why.clone())
            }
            _ => Ok((agent, playout, shared.clone())),
        };
        agents.insert(id, entry);
    }
    TenantRuntime { agents }
}

#[cfg(test)]
mod tests;
