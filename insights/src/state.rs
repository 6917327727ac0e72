//! What every request shares: settings, the database, the credentials key, the platform
//! token, the rate limiter and the metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use uuid::Uuid;
use voice_core::config::Secret;
use voice_core::db::{Db, Transaction, TxFuture};
use voice_core::tenancy::crypto::CredentialKey;
use voice_core::tenancy::rate_limit::RateLimiter;
use voice_core::tenancy::store::{self, StoreError};

use crate::config::InsightsConfig;
use crate::http::error::ApiError;
use crate::http::metrics::Metrics;
use crate::queue::Queue;
use crate::storage::Storage;
use crate::worker::PipelineMetrics;

/// The environment variable holding the platform operator's token.
pub const ADMIN_TOKEN_ENV: &str = "VOICE_ADMIN_TOKEN";
/// Shortest platform token accepted.
pub const MIN_TOKEN_CHARS: usize = 16;
/// How long a tenant's own request rate is used before it is read again.
const RATE_TTL: Duration = Duration::from_secs(30);

pub struct AppState {
    pub config: InsightsConfig,
    pub db: Db,
    /// `None`: provider credentials are refused (503); everything else works.
    pub credential_key: Option<CredentialKey>,
    pub platform: PlatformToken,
    pub limiter: RateLimiter,
    pub metrics: Metrics,
    /// Where recordings are kept (`[storage]`).
    pub storage: Storage,
    /// The worker's counters and stage durations (shared with the worker when it runs here).
    pub pipeline_metrics: Arc<PipelineMetrics>,
    /// The job queue once connected (main connects in the background; `/healthz` reads it).
    pub queue: OnceLock<Queue>,
    /// Each tenant's `requests_per_minute`, read at most every [`RATE_TTL`].
    tenant_rates: Mutex<HashMap<Uuid, (Option<u32>, Instant)>>,
}

impl AppState {
    pub fn new(
        config: InsightsConfig,
        db: Db,
        credential_key: Option<CredentialKey>,
        platform: PlatformToken,
    ) -> Arc<Self> {
        // Never fails: a store that cannot be built (directory not creatable, bad endpoint)
        // becomes one that answers `Unavailable` with the reason, and `/healthz` says so.
        let storage = Storage::from_settings(&config.storage).unwrap_or_else(|e| {
            tracing::error!(error = %e, "recording storage unavailable");
            Storage::unavailable(config.storage.backend, e.to_string())
        });
        Self::with_storage(config, db, credential_key, platform, storage)
    }

    /// As [`AppState::new`], with a storage built by the caller (main can refuse to start
    /// when [`Storage::from_settings`] fails; tests pass their own).
    pub fn with_storage(
        config: InsightsConfig,
        db: Db,
        credential_key: Option<CredentialKey>,
        platform: PlatformToken,
        storage: Storage,
    ) -> Arc<Self> {
        Arc::new(Self {
            storage,
            limiter: RateLimiter::new(config.limits.requests_per_minute),
            config,
            db,
            credential_key,
            platform,
            metrics: Metrics::default(),
            pipeline_metrics: Arc::default(),
            queue: OnceLock::new(),
            tenant_rates: Mutex::new(HashMap::new()),
        })
    }

    /// Runs store calls in one transaction scoped to `tenant` (row-level security).
    pub async fn in_tenant<T, F>(&self, tenant: Uuid, f: F) -> Result<T, StoreError>
    where
        F: for<'t> FnOnce(&'t Transaction<'t>) -> TxFuture<'t, T, StoreError>,
    {
        self.db.with_tenant(tenant, f).await
    }

    /// Takes one request from `tenant`'s bucket: 429 with `Retry-After` when it is empty.
    pub async fn limit(&self, tenant: Uuid) -> Result<(), ApiError> {
        let per_minute = self.tenant_rate(tenant).await?;
        self.limiter.check(tenant, per_minute).map_err(|wait| {
            self.metrics.rate_limited.inc();
            ApiError::rate_limited(wait.as_secs_f64().ceil().max(1.0) as u64)
        })
    }

    /// Forgets `tenant`'s cached rate (after it was changed or the tenant deleted).
    pub fn forget_rate(&self, tenant: Uuid) {
        self.rates().remove(&tenant);
    }

    async fn tenant_rate(&self, tenant: Uuid) -> Result<Option<u32>, ApiError> {
        if let Some((rate, read)) = self.rates().get(&tenant) {
            if read.elapsed() < RATE_TTL {
                return Ok(*rate);
            }
        }
        let rate = match store::get_tenant(&self.db, tenant).await {
            Ok(t) => t.requests_per_minute.and_then(|r| u32::try_from(r).ok()),
            // A key of a tenant deleted a moment ago: the default until the key stops working.
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let mut rates = self.rates();
        // Bounded by the number of tenants; cleared wholesale if it ever grows odd.
        if rates.len() > 100_000 {
            rates.clear();
        }
        rates.insert(tenant, (rate, Instant::now()));
        Ok(rate)
    }

    fn rates(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Option<u32>, Instant)>> {
        self.tenant_rates.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The platform operator's token, kept as a SHA-256 digest and compared in constant time.
#[derive(Clone, Default)]
pub struct PlatformToken {
    digest: Option<[u8; 32]>,
}

impl std::fmt::Debug for PlatformToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = if self.digest.is_some() {
            "set"
        } else {
            "unset"
        };
        write!(f, "PlatformToken({set})")
    }
}

impl PlatformToken {
    /// No platform access.
    pub fn none() -> Self {
        Self::default()
    }

    /// `token` (at least [`MIN_TOKEN_CHARS`]); empty means no platform access.
    pub fn new(token: &Secret) -> Result<Self, String> {
        let text = token.expose().trim();
        if text.is_empty() {
            return Ok(Self::none());
        }
        if text.chars().count() < MIN_TOKEN_CHARS {
            return Err(format!(
                "{ADMIN_TOKEN_ENV} must have at least {MIN_TOKEN_CHARS} characters"
            ));
        }
        Ok(Self {
            digest: Some(store::key_digest(text)),
        })
    }

    /// From [`ADMIN_TOKEN_ENV`].
    pub fn from_env() -> Result<Self, String> {
        Self::new(&Secret::new(
            std::env::var(ADMIN_TOKEN_ENV).unwrap_or_default(),
        ))
    }

    pub fn is_set(&self) -> bool {
        self.digest.is_some()
    }

    pub fn matches(&self, presented: &str) -> bool {
        let Some(expected) = &self.digest else {
            return false;
        };
        store::same_digest(expected, &store::key_digest(presented))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_token_matches_only_itself_and_never_shows() {
        let token = PlatformToken::new(&Secret::new("platform-token-0123456789")).unwrap();
        assert!(token.matches("platform-token-0123456789"));
        assert!(!token.matches("platform-token-012345678"));
        assert!(!token.matches(""));
        assert!(!format!("{token:?}").contains("0123"));
        assert!(PlatformToken::new(&Secret::new("short")).is_err());
        let none = PlatformToken::new(&Secret::new("")).unwrap();
        assert!(!none.is_set());
        assert!(!none.matches(""));
    }
}
