//! The turn-api's settings: embedded default (config/default.toml), then `--config FILE`,
//! then `VOICE_TURN_API__…` environment variables (voice-core's loader, as the bridge).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use voice_core::config::{ConfigError, Secret};
use voice_core::telemetry::LogConfig;

pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
pub const ENV_PREFIX: &str = "VOICE_TURN_API";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnApiConfig {
    pub server: ServerSettings,
    pub log: LogConfig,
    pub redis: RedisSettings,
    pub audio: AudioSettings,
    pub limits: LimitSettings,
    /// `[recording]`: the whole call of each session, as the bridge records (voice-core's).
    #[serde(default)]
    pub recording: voice_core::recording::RecordingSettings,
    /// The engine's own table, handed to it as is (its type checks it).
    #[serde(default)]
    pub engine: toml::Table,
    /// `[providers.*]`, the same tables as the bridge (kept as written too: a database
    /// tenant's accounts are laid over them).
    #[serde(default)]
    pub providers: voice_core::tenancy::providers::ProviderTables,
    /// Who may call, by FusionPBX domain name.
    #[serde(default)]
    pub tenants: HashMap<String, TenantSettings>,
    /// Tenants, keys, agents and provider accounts in PostgreSQL (empty URL: TOML only).
    pub database: DatabaseSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://user:password@host:port/db`; empty: no database.
    pub url: Secret,
    pub pool_size: usize,
    /// Requests per minute a tenant may make when its row sets no rate of its own.
    pub requests_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: String,
    pub max_body_bytes: usize,
    /// Base of `audio_url` (no trailing slash needed).
    pub public_url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db`; empty keeps sessions in memory.
    pub url: Secret,
    pub key_prefix: String,
    pub session_ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioSettings {
    pub dir: PathBuf,
    pub recordings_dirs: Vec<PathBuf>,
    pub max_recording_bytes: u64,
    /// Answer files older than this are deleted; 0 keeps them.
    pub keep_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub max_turns: u32,
    pub max_session_secs: u64,
    pub goodbye_text: String,
    /// Empty: the goodbye has text only.
    pub goodbye_wav: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// The domain's uuid, accepted as `domain` in place of its name.
    pub domain_uuid: String,
    /// Keys that act for this tenant. Never logged (`Secret`).
    pub api_keys: Vec<Secret>,
    /// Keys of `[engine]` this tenant sets differently (greeting, instructions, chains…).
    pub engine: toml::Table,
}

impl TurnApiConfig {
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

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.limits.max_turns == 0 {
            return bad("limits.max_turns must be at least 1");
        }
        if self.database.pool_size == 0 || self.database.requests_per_minute == 0 {
            return bad("database.pool_size and database.requests_per_minute must be at least 1");
        }
        if self.redis.session_ttl_secs == 0 {
            return bad("redis.session_ttl_secs must be at least 1");
        }
        let wav = &self.limits.goodbye_wav;
        if !wav.as_os_str().is_empty() && !wav.is_file() {
            return Err(ConfigError::Invalid(format!(
                "limits.goodbye_wav {} is not a readable file",
                wav.display()
            )));
        }
        if self.audio.recordings_dirs.iter().any(|d| !d.is_absolute()) {
            return bad("audio.recordings_dirs must be absolute paths");
        }
        for (domain, tenant) in &self.tenants {
            if tenant.api_keys.iter().any(|k| k.expose().len() < 16) {
                return Err(ConfigError::Invalid(format!(
                    "tenants.\"{domain}\".api_keys: each key needs at least 16 characters"
                )));
            }
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
                "VOICE_TURN_API__SERVER__LISTEN".to_string(),
                "127.0.0.1:9".to_string(),
            ),
            (
                "VOICE_TURN_API__LIMITS__MAX_TURNS".to_string(),
                "3".to_string(),
            ),
        ];
        let c: TurnApiConfig =
            voice_core::config::load_with_env(DEFAULT_TOML, None, ENV_PREFIX, &env).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9");
        assert_eq!(c.limits.max_turns, 3);
        assert!(c.redis.url.is_empty());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn short_keys_and_unknown_fields_are_refused_without_showing_keys() {
        let err = TurnApiConfig::from_toml("[tenants.\"a.b\"]\napi_keys = [\"short-secret\"]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("16 characters"), "{err}");
        assert!(!err.contains("short-secret"), "{err}");
        assert!(TurnApiConfig::from_toml("[limits]\nmax_turn = 3").is_err());
        assert!(TurnApiConfig::from_toml("[limits]\nmax_turns = 0").is_err());
        let err = TurnApiConfig::from_toml("[limits]\ngoodbye_wav = \"/nonexistent/bye.wav\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("goodbye_wav"), "{err}");
    }
}
