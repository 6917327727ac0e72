//! call-insights settings: embedded default (config/default.toml), then `--config FILE`,
//! then `VOICE_INSIGHTS__…` environment variables (voice-core's loader, as the other
//! services). Secrets (the platform token, the credentials key) come from the environment
//! only; see the default file.

use std::path::Path;

use serde::Deserialize;
use voice_core::config::{ConfigError, Secret};
use voice_core::telemetry::LogConfig;

pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
pub const ENV_PREFIX: &str = "VOICE_INSIGHTS";
/// Where the database URL comes from when `[database] url` is empty.
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsightsConfig {
    pub server: ServerSettings,
    pub log: LogConfig,
    pub database: DatabaseSettings,
    pub limits: LimitSettings,
    pub metrics: MetricsSettings,
    pub webhooks: WebhookSettings,
    pub queue: QueueSettings,
    pub storage: crate::storage::StorageSettings,
    pub transcribe: crate::transcribe::TranscribeSettings,
    pub analyze: crate::analyze::AnalyzeSettings,
    pub worker: crate::worker::WorkerSettings,
    pub privacy: crate::privacy::PrivacySettings,
    pub crm: crate::crm::CrmSettings,
}

/// The job queue (Redis Streams, see [`crate::queue`]) and the outbox relay that feeds it
/// ([`crate::relay`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    /// `redis://[user:password@]host:port[/db]`; empty: no queue (the relay does not run and
    /// accepted jobs wait in the database). Holds a password: never logged (`Secret`).
    pub redis_url: Secret,
    /// Prepended to every queue key, so several deployments can share one Redis.
    pub prefix: String,
    /// How often the relay moves pending jobs from the database to the queue.
    pub relay_every_ms: u64,
}

/// `POST /webhooks/voip` (see [`crate::intake`]). The signing secret is not here: it comes
/// from the environment only (`INSIGHTS_WEBHOOK_SECRET`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Largest webhook body; bigger ones get 413.
    pub max_body_bytes: usize,
    /// How far `x-timestamp` may be from now, either way, before a webhook is refused as a
    /// replay.
    pub timestamp_tolerance_secs: u64,
    /// Refuse webhooks without `x-timestamp` (replay protection on for every sender).
    pub require_timestamp: bool,
    /// Source addresses allowed to post (CIDRs or single addresses); empty: any.
    pub allow_from: Vec<String>,
    /// Take the source from `X-Forwarded-For` (its last entry) instead of the peer: only
    /// behind a proxy of ours that sets it.
    pub trust_proxy: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// How often the event log is folded into daily metrics (yesterday and today of every
    /// tenant); 0: never (another instance does it).
    pub aggregate_every_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: String,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Holds a password: never logged (`Secret`).
    pub url: Secret,
    pub pool_size: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// Per tenant, for tenants without their own rate.
    pub requests_per_minute: u32,
}

impl InsightsConfig {
    /// Default, then `file`, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let config: Self = voice_core::config::load(DEFAULT_TOML, file, ENV_PREFIX)?;
        config.validate()?;
        Ok(config)
    }

    /// From a TOML text over the default, without the environment (tests).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let mut table: toml::Table = DEFAULT_TOML
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))?;
        let over: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: "<text>".into(),
                message: e.message().to_string(),
            })?;
        voice_core::config::merge(&mut table, over);
        let config: Self = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Applies the environment variables of seed 000 that are not `VOICE_INSIGHTS__…`
    /// (`HASH_PHONE_NUMBERS`, `RETENTION_DAYS`, `REQUIRE_CONSENT`, `INSIGHTS_PHONE_HASH_KEY`,
    /// `ENABLE_CRM_PUSH`, `PIPEDRIVE_API_TOKEN`).
    pub fn with_env(mut self, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        self.privacy = self.privacy.with_env(&env).map_err(ConfigError::Invalid)?;
        self.crm = self.crm.with_env(&env).map_err(ConfigError::Invalid)?;
        Ok(self)
    }

    /// `[database] url`, else `DATABASE_URL` from `env`; `None` when neither is set.
    pub fn database_url(&self, env: impl Fn(&str) -> Option<String>) -> Option<Secret> {
        if !self.database.url.is_empty() {
            return Some(self.database.url.clone());
        }
        env(DATABASE_URL_ENV)
            .filter(|u| !u.trim().is_empty())
            .map(Secret::new)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.limits.requests_per_minute == 0 {
            return bad("limits.requests_per_minute must be at least 1");
        }
        if self.database.pool_size == 0 {
            return bad("database.pool_size must be at least 1");
        }
        if self.server.max_body_bytes < 1024 {
            return bad("server.max_body_bytes must be at least 1024");
        }
        if self.webhooks.max_body_bytes < 1024 {
            return bad("webhooks.max_body_bytes must be at least 1024");
        }
        if self.webhooks.timestamp_tolerance_secs == 0 {
            return bad("webhooks.timestamp_tolerance_secs must be at least 1");
        }
        if self.queue.relay_every_ms == 0 {
            return bad("queue.relay_every_ms must be at least 1");
        }
        self.storage.validate().map_err(ConfigError::Invalid)?;
        if self.worker.concurrency == 0 || self.worker.concurrency > 256 {
            return bad("worker.concurrency must be 1 to 256");
        }
        if self.worker.max_attempts == 0 {
            return bad("worker.max_attempts must be at least 1");
        }
        if self.privacy.retention_days > 36_500 {
            return bad("privacy.retention_days: at most 36500");
        }
        if let Err(e) = crate::intake::allowlist::Allowlist::parse(&self.webhooks.allow_from) {
            return Err(ConfigError::Invalid(format!("webhooks.allow_from: {e}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_loads_and_env_overrides_it() {
        let env = vec![
            (
                "VOICE_INSIGHTS__SERVER__LISTEN".to_string(),
                "127.0.0.1:9".to_string(),
            ),
            (
                "VOICE_INSIGHTS__DATABASE__URL".to_string(),
                "postgres://u:pw@h/db".to_string(),
            ),
            (
                "VOICE_INSIGHTS__LIMITS__REQUESTS_PER_MINUTE".to_string(),
                "30".to_string(),
            ),
        ];
        let c: InsightsConfig =
            voice_core::config::load_with_env(DEFAULT_TOML, None, ENV_PREFIX, &env).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9");
        assert_eq!(c.limits.requests_per_minute, 30);
        assert!(c.validate().is_ok());
        let url = c.database_url(|_| Some("postgres://other".into())).unwrap();
        assert_eq!(url.expose(), "postgres://u:pw@h/db");
        assert!(!format!("{c:?}").contains("pw"));
    }

    #[test]
    fn database_url_falls_back_to_the_environment() {
        let c = InsightsConfig::from_toml("").unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:8200");
        let url = c.database_url(|name| (name == "DATABASE_URL").then(|| "postgres://x".into()));
        assert_eq!(url.unwrap().expose(), "postgres://x");
        assert!(c.database_url(|_| None).is_none());
        assert!(c.database_url(|_| Some("  ".into())).is_none());
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(InsightsConfig::from_toml("[limits]\nrequests_per_minute = 0").is_err());
        assert!(InsightsConfig::from_toml("[limits]\nrequest_per_minute = 5").is_err());
        assert!(InsightsConfig::from_toml("[database]\npool_size = 0").is_err());
        assert!(InsightsConfig::from_toml("[webhooks]\nallow_from = [\"10.0.0.0/33\"]").is_err());
        assert!(InsightsConfig::from_toml("[webhooks]\ntimestamp_tolerance_secs = 0").is_err());
        let ok = InsightsConfig::from_toml("[webhooks]\nallow_from = [\"10.0.0.0/8\", \"::1\"]");
        assert_eq!(ok.unwrap().webhooks.allow_from.len(), 2);
    }

    #[test]
    fn the_queue_is_off_by_default_and_set_from_the_environment() {
        let c = InsightsConfig::from_toml("").unwrap();
        assert!(c.queue.redis_url.is_empty());
        assert_eq!(c.queue.relay_every_ms, 500);
        assert!(!c.queue.prefix.is_empty());
        let env = vec![(
            "VOICE_INSIGHTS__QUEUE__REDIS_URL".to_string(),
            "redis://:hunter2@127.0.0.1:6379".to_string(),
        )];
        let c: InsightsConfig =
            voice_core::config::load_with_env(DEFAULT_TOML, None, ENV_PREFIX, &env).unwrap();
        assert_eq!(
            c.queue.redis_url.expose(),
            "redis://:hunter2@127.0.0.1:6379"
        );
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(InsightsConfig::from_toml("[queue]\nrelay_every_ms = 0").is_err());
    }
}
