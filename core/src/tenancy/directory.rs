//! A tenant's whole configuration (its row, enabled agents, provider chain), cached in memory
//! and dropped the moment PostgreSQL says it changed.
//!
//! Every change to what a call is configured from NOTIFYs channel `voice_config` with the
//! tenant id (migration 0002). A task of the [`Directory`] holds a connection of its own (a
//! pooled connection would swallow notifications) that `LISTEN`s on it and drops that
//! tenant's entry. When that connection is lost, notifications may be missed: the whole cache
//! is cleared, nothing is served from it until the listener is back (calls load from the
//! database instead), and the listener reconnects with backoff.
//!
//! Entries are kept by tenant id; domain names (any case) and domain uuids lead to the id.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};
use tracing::{info, warn};
use uuid::Uuid;

use super::crypto::{CredentialKey, Credentials};
use super::model::{AgentRecord, ProviderInstance, Tenant};
use super::store::{self, Page, StoreError};
use crate::db::{describe, redact_url, Db, DbError};

/// The channel migration 0002's triggers notify.
pub const CHANNEL: &str = "voice_config";
/// How the listener shows in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "voice-directory";

/// First wait before reconnecting the listener, doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A connection that died silently (no RST) is noticed by this ping.
const PING_EVERY: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Agents read per query while loading a tenant.
const AGENT_PAGE: i64 = 200;

/// What a call of one tenant is configured from.
#[derive(Debug)]
pub struct TenantConfig {
    pub tenant: Tenant,
    /// The tenant's enabled agents.
    pub agents: Vec<AgentRecord>,
    /// Enabled provider instances by ascending priority, credentials opened.
    pub providers: Vec<(ProviderInstance, Option<Credentials>)>,
}

impl TenantConfig {
    /// The agent for a call to `number`: the enabled agent that claims the number, else the
    /// tenant's default agent, else its only agent, else none.
    pub fn agent_for(&self, number: Option<&str>) -> Option<&AgentRecord> {
        let enabled = || self.agents.iter().filter(|a| a.enabled);
        if let Some(number) = number.filter(|n| !n.is_empty()) {
            if let Some(agent) = enabled().find(|a| a.numbers.iter().any(|n| n == number)) {
                return Some(agent);
            }
        }
        if let Some(agent) = enabled().find(|a| a.is_default) {
            return Some(agent);
        }
        let mut all = enabled();
        match (all.next(), all.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }
}

/// What a service builds from a tenant's configuration (agent settings, provider clients,
/// engines), kept while that configuration is the current one: a configuration the
/// directory reloaded is another `Arc`, so its values are built afresh, and entries of
/// configurations no one holds any more are dropped.
pub struct BuiltFromConfig<V> {
    entries: Mutex<Vec<(Weak<TenantConfig>, V)>>,
}

impl<V> Default for BuiltFromConfig<V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
        }
    }
}

impl<V: Clone> BuiltFromConfig<V> {
    /// The value built from `config`, building it with `build` the first time. The lock is
    /// not held while building (it may load models or open clients): two first calls at
    /// once may both build, and the second value is kept.
    pub fn get_or_build(&self, config: &Arc<TenantConfig>, build: impl FnOnce() -> V) -> V {
        {
            let mut entries = self.lock();
            entries.retain(|(from, _)| from.strong_count() > 0);
            if let Some((_, value)) = entries
                .iter()
                .find(|(from, _)| std::ptr::eq(from.as_ptr(), Arc::as_ptr(config)))
            {
                return value.clone();
            }
        }
        let value = build();
        self.lock().push((Arc::downgrade(config), value.clone()));
        value
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Weak<TenantConfig>, V)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Tenants' configurations, cached and kept fresh by `LISTEN voice_config`. Cheap to clone;
/// the listener stops when the last clone is dropped.
#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("db", &self.inner.db)
            .field("listening", &self.is_listening())
            .finish()
    }
}

struct Inner {
    db: Db,
    key: Option<CredentialKey>,
    cache: Mutex<Cache>,
    /// The listener is up: entries in the cache are known to be current.
    listening: AtomicBool,
    /// Listener sessions opened so far (a reconnect adds one).
    sessions: AtomicU64,
    /// One load per domain at a time; the others wait and take its result from the cache.
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    listener: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut listener) = self.listener.lock() {
            if let Some(task) = listener.take() {
                task.abort();
            }
        }
    }
}

#[derive(Default)]
struct Cache {
    /// Bumped by every invalidation: a load that began before one is not kept, since it may
    /// have read what the invalidation was about.
    generation: u64,
    by_id: HashMap<Uuid, Arc<TenantConfig>>,
    /// Lower-case domain name, and domain uuid text, to tenant id.
    domains: HashMap<String, Uuid>,
}

impl Cache {
    fn drop_tenant(&mut self, id: Uuid) {
        self.generation += 1;
        self.by_id.remove(&id);
        self.domains.retain(|_, t| *t != id);
    }

    fn clear(&mut self) {
        self.generation += 1;
        self.by_id.clear();
        self.domains.clear();
    }
}

impl Directory {
    /// Starts the directory: `db` serves the loads, and a connection of its own to `url` (the
    /// same database) listens for changes. Fails when that first connection cannot be made;
    /// later losses are retried in the background.
    pub async fn start(db: Db, url: &str, key: Option<CredentialKey>) -> Result<Self, DbError> {
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|e| DbError::InvalidUrl {
                url: redact_url(url),
                message: describe(&e),
            })?;
        config.application_name(APPLICATION_NAME);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let first = Listener::open(&config, db.target()).await?;
        let directory = Self::unlistened(db, key);
        directory.inner.connected();
        let task = tokio::spawn(listen(
            Arc::downgrade(&directory.inner),
            config,
            Some(first),
        ));
        if let Ok(mut listener) = directory.inner.listener.lock() {
            *listener = Some(task.abort_handle());
        }
        Ok(directory)
    }

    /// A directory with no listener: never serves from its cache.
    fn unlistened(db: Db, key: Option<CredentialKey>) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                key,
                cache: Mutex::new(Cache::default()),
                listening: AtomicBool::new(false),
                sessions: AtomicU64::new(0),
                loading: Mutex::new(HashMap::new()),
                listener: Mutex::new(None),
            }),
        }
    }

    /// The configuration of the tenant whose domain is `domain` (its name in any case, or its
    /// uuid); `None` when no tenant has it. Disabled tenants are returned too: the caller
    /// decides what a disabled tenant means.
    pub async fn tenant(&self, domain: &str) -> Result<Option<Arc<TenantConfig>>, StoreError> {
        let key = domain.trim().to_ascii_lowercase();
        if let Some(hit) = self.inner.cached(&key) {
            return Ok(Some(hit));
        }
        if !self.is_listening() {
            // Nothing is cached now: every caller loads, no one waits for another.
            return self.inner.load(domain.trim()).await;
        }
        let gate = self.inner.gate(&key);
        let result = {
            let _turn = gate.lock().await;
            match self.inner.cached(&key) {
                Some(hit) => Ok(Some(hit)),
                None => self.inner.load(domain.trim()).await,
            }
        };
        self.inner.release_gate(&key, gate);
        result
    }

    /// Whether the listener is up (and the cache in use).
    pub fn is_listening(&self) -> bool {
        self.inner.listening.load(Ordering::SeqCst)
    }

    /// How many listener sessions were opened: 1 after start, one more per reconnect.
    pub fn listen_sessions(&self) -> u64 {
        self.inner.sessions.load(Ordering::SeqCst)
    }
}

impl Inner {
    fn cached(&self, key: &str) -> Option<Arc<TenantConfig>> {
        if !self.listening.load(Ordering::SeqCst) {
            return None;
        }
        let cache = self.cache.lock().ok()?;
        let id = cache.domains.get(key)?;
        cache.by_id.get(id).cloned()
    }

    fn gate(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        match self.loading.lock() {
            Ok(mut loading) => loading.entry(key.to_string()).or_default().clone(),
            // A poisoned map only costs the single flight.
            Err(_) => Arc::default(),
        }
    }

    fn release_gate(&self, key: &str, gate: Arc<tokio::sync::Mutex<()>>) {
        if let Ok(mut loading) = self.loading.lock() {
            // The map's reference and ours: no one else waits on it.
            if Arc::strong_count(&gate) <= 2 {
                loading.remove(key);
            }
        }
    }

    /// Reads the tenant from the database, and keeps it when nothing changed meanwhile.
    async fn load(&self, domain: &str) -> Result<Option<Arc<TenantConfig>>, StoreError> {
        let generation = self.cache.lock().map(|c| c.generation).unwrap_or(0);
        let Some(tenant) = store::lookup_tenant(&self.db, domain).await? else {
            return Ok(None);
        };
        let key = self.key.clone();
        let (agents, providers) = self
            .db
            .with_tenant(tenant.id, move |tx| {
                Box::pin(async move {
                    let mut agents = Vec::new();
                    for offset in (0..).step_by(AGENT_PAGE as usize) {
                        let page = store::list_agents(
                            tx,
                            Page {
                                limit: AGENT_PAGE,
                                offset,
                            },
                        )
                        .await?;
                        let full = page.len() as i64 == AGENT_PAGE;
                        agents.extend(page.into_iter().filter(|a| a.enabled));
                        if !full {
                            break;
                        }
                    }
                    let providers = store::provider_chain(tx, key.as_ref()).await?;
                    Ok::<_, StoreError>((agents, providers))
                })
            })
            .await?;
        let config = Arc::new(TenantConfig {
            tenant,
            agents,
            providers,
        });
        if let Ok(mut cache) = self.cache.lock() {
            if cache.generation == generation && self.listening.load(Ordering::SeqCst) {
                let id = config.tenant.id;
                cache
                    .domains
                    .insert(config.tenant.domain_name.to_ascii_lowercase(), id);
                cache
                    .domains
                    .insert(config.tenant.domain_uuid.to_string(), id);
                cache.by_id.insert(id, config.clone());
            }
        }
        Ok(Some(config))
    }

    fn invalidate(&self, payload: &str) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        match Uuid::parse_str(payload.trim()) {
            Ok(id) => cache.drop_tenant(id),
            // Not a tenant id: drop everything rather than keep something stale.
            Err(_) => cache.clear(),
        }
    }

    /// The listener is up: whatever was cached before may have missed notifications.
    fn connected(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
        self.sessions.fetch_add(1, Ordering::SeqCst);
        self.listening.store(true, Ordering::SeqCst);
    }

    fn disconnected(&self) {
        self.listening.store(false, Ordering::SeqCst);
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }
}

/// A connection with `LISTEN voice_config` in effect; its notifications arrive on `payloads`
/// (closed when the connection ends).
struct Listener {
    client: Client,
    payloads: mpsc::UnboundedReceiver<String>,
}

impl Listener {
    async fn open(config: &tokio_postgres::Config, target: &str) -> Result<Self, DbError> {
        let (client, mut connection) =
            config.connect(NoTls).await.map_err(|e| DbError::Connect {
                target: target.to_string(),
                message: describe(&e),
            })?;
        let (tx, payloads) = mpsc::unbounded_channel();
        // The connection makes progress only while polled; it forwards notifications and
        // ends (closing the channel) with the connection.
        tokio::spawn(async move {
            loop {
                let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
                match message {
                    Some(Ok(AsyncMessage::Notification(n))) if n.channel() == CHANNEL => {
                        if tx.send(n.payload().to_string()).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        warn!(error = %describe(&e), "tenant directory: listener connection failed");
                        return;
                    }
                    None => return,
                }
            }
        });
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        Ok(Self { client, payloads })
    }
}

/// Keeps a listener up while the directory lives: drops entries on notifications, and
/// clears the cache around every reconnect.
async fn listen(
    directory: Weak<Inner>,
    config: tokio_postgres::Config,
    mut first: Option<Listener>,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let target = match directory.upgrade() {
            Some(inner) => inner.db.target().to_string(),
            None => return,
        };
        let listener = match first.take() {
            Some(listener) => Ok(listener),
            None => Listener::open(&config, &target).await,
        };
        match listener {
            Ok(listener) => {
                if let Some(inner) = directory.upgrade() {
                    // The first session was counted by `start`.
                    if !inner.listening.load(Ordering::SeqCst) {
                        inner.connected();
                        info!(target = %target, "tenant directory: listening again; cache cleared");
                    }
                }
                backoff = MIN_BACKOFF;
                let why = serve(&directory, listener).await;
                match directory.upgrade() {
                    Some(inner) => inner.disconnected(),
                    None => return,
                }
                warn!(target = %target, reason = %why, "tenant directory: listener lost; cache cleared, loading from the database until it is back");
            }
            Err(e) => {
                warn!(error = %e, retry_ms = backoff.as_millis() as u64, "tenant directory: cannot listen for changes");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Applies notifications until the connection is lost; returns why.
async fn serve(directory: &Weak<Inner>, mut listener: Listener) -> String {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            payload = listener.payloads.recv() => {
                let Some(payload) = payload else {
                    return "connection closed".into();
                };
                match directory.upgrade() {
                    Some(inner) => inner.invalidate(&payload),
                    None => return "directory dropped".into(),
                }
            }
            _ = ping.tick() => {
                match tokio::time::timeout(PING_TIMEOUT, listener.client.simple_query("SELECT 1")).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return describe(&e),
                    Err(_) => return "ping timed out".into(),
                }
            }
        }
    }
}
