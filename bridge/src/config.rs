//! The bridge's settings: embedded default (config/default.toml), then `--config FILE`, then
//! `VOICE_BRIDGE__…` environment variables. Per-tenant tables override the top-level
//! `[agent]` and `[playout]` for one FusionPBX domain.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use voice_core::config::{ConfigError, Secret};
use voice_core::esl::EslConfig;
use voice_core::telemetry::LogConfig;

use voice_core::agent::cascaded::CascadedSettings;
use voice_core::audio::turn::TurnSettings;
use voice_core::audio::vad::VadSettings;
use voice_core::recording::RecordingSettings;

use crate::front_end::BargeInSettings;
use crate::playout::{ClearSetting, PlayoutModeSetting};
use crate::prompts::PromptSettings;
use crate::tools::{KnowledgeEntry, ToolKind};

pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
pub const ENV_PREFIX: &str = "VOICE_BRIDGE";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    pub server: ServerSettings,
    pub call: CallDefaults,
    pub playout: PlayoutSettings,
    pub esl: EslSettings,
    pub log: LogConfig,
    pub agent: AgentSettings,
    pub providers: ProviderTables,
    /// Tenants, agents and providers in PostgreSQL (issue 7); empty URL: TOML only.
    #[serde(default)]
    pub database: DatabaseSettings,
    /// Stereo call recordings (caller left, agent right) with the call's facts.
    #[serde(default)]
    pub recording: RecordingSettings,
    #[serde(default)]
    pub tenants: HashMap<String, toml::Table>,
    /// `tenants` with their overrides applied, once, at load.
    #[serde(skip)]
    resolved: HashMap<String, TenantSettings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: String,
    pub max_frame_bytes: usize,
    pub reconnect_grace_ms: u64,
    pub metadata_timeout_ms: u64,
    pub shutdown_grace_secs: u64,
    pub allow_unknown_tenants: bool,
    pub connect_buffer_ms: u64,
    /// Calls one tenant may run at once; 0: no cap. A database tenant's
    /// `max_concurrent_calls` wins over it; a TOML tenant may set `max_calls`.
    #[serde(default)]
    pub max_calls_per_tenant: u32,
}

/// `[database]`: where tenants live. An empty `url` keeps the bridge on TOML alone.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://user:password@host:port/dbname`; also `VOICE_BRIDGE__DATABASE__URL`.
    pub url: Secret,
    pub pool_size: usize,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::default(),
            pool_size: 8,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallDefaults {
    pub sample_rate: u32,
    pub mix: crate::stream::Mix,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayoutSettings {
    pub mode: PlayoutModeSetting,
    pub lead_ms: u32,
    pub clear: ClearSetting,
    pub file_chunk_ms: u32,
    pub first_file_chunk_ms: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EslSettings {
    pub enabled: bool,
    #[serde(flatten)]
    pub client: EslConfig,
}

/// Who the agent is: the same for every provider kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    pub provider: ProviderKind,
    pub instructions: String,
    pub voice: String,
    pub language: String,
    /// Who decides the caller finished: the provider, or our VAD + Smart Turn.
    #[serde(default)]
    pub turn: TurnSettings,
    /// The VAD used with local turn detection.
    #[serde(default)]
    pub vad: VadSettings,
    /// When caller speech interrupts the agent (local turn detection).
    #[serde(default)]
    pub barge_in: BargeInSettings,
    /// Tools the agent may call (bridge/src/tools).
    #[serde(default)]
    pub tools: Vec<ToolKind>,
    /// What `lookup_knowledge` searches.
    #[serde(default)]
    pub knowledge: Vec<KnowledgeEntry>,
    /// When and where the call goes to a human.
    #[serde(default)]
    pub handoff: HandoffSettings,
    /// What happens when the provider fails.
    #[serde(default)]
    pub failover: FailoverSettings,
    /// Audio the bridge plays itself: greeting, hold, hand-over, apology.
    #[serde(default)]
    pub prompts: PromptSettings,
    /// The STT, LLM and TTS chains and timeouts of the cascaded agent.
    #[serde(default)]
    pub cascaded: CascadedSettings,
}

impl AgentSettings {
    pub(crate) fn validate(&self) -> Result<(), String> {
        self.turn.validate().map_err(|e| format!("turn: {e}"))?;
        self.vad.validate().map_err(|e| format!("vad: {e}"))?;
        self.barge_in.validate()?;
        self.handoff
            .validate()
            .map_err(|e| format!("handoff: {e}"))?;
        self.failover
            .validate()
            .map_err(|e| format!("failover: {e}"))?;
        if self.provider_chain().contains(&ProviderKind::Cascaded) {
            self.cascaded
                .validate()
                .map_err(|e| format!("cascaded: {e}"))?;
        }
        if self.failover.last_resort == LastResort::Transfer && self.handoff.target.is_empty() {
            return Err("failover.last_resort is \"transfer\" but handoff.target is empty".into());
        }
        Ok(())
    }

    /// The providers a call tries, in order: its own, its own again (one reconnect with the
    /// conversation so far), then the fallbacks.
    pub fn provider_chain(&self) -> Vec<ProviderKind> {
        let mut chain = vec![self.provider, self.provider];
        chain.extend(self.failover.providers.iter().copied());
        chain
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    OpenaiRealtime,
    GeminiLive,
    ElevenlabsAgent,
    /// STT → LLM → TTS, with the chains of `[agent.cascaded]`.
    Cascaded,
}

impl ProviderKind {
    /// The name in config, logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::OpenaiRealtime => "openai_realtime",
            ProviderKind::GeminiLive => "gemini_live",
            ProviderKind::ElevenlabsAgent => "elevenlabs_agent",
            ProviderKind::Cascaded => "cascaded",
        }
    }
}

/// `[providers.*]`: every provider's connection settings (voice-core's catalog).
pub type Providers = voice_core::providers::catalog::ProviderSettings;

/// `[providers]` as parsed and as written (tenants' accounts are laid over the table).
pub use voice_core::tenancy::providers::ProviderTables;

/// Hand-over to a human (seed 001): on request (the `transfer_to_human` tool), on a
/// configured intent, on repeated misunderstanding, on a DTMF digit, or as the last resort
/// when every provider failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HandoffSettings {
    /// Extension, ring group or queue, in `context`. Empty: no hand-over possible.
    #[serde(deserialize_with = "text_or_number")]
    pub target: String,
    /// Dialplan context; empty means the tenant's domain, FusionPBX's convention.
    pub context: String,
    /// Caller phrases that hand over at once (compared without case and accents).
    pub intent_phrases: Vec<String>,
    /// Agent phrases that show it did not understand the caller.
    pub misunderstanding_phrases: Vec<String>,
    /// This many agent answers in a row with such a phrase hand over; 0 turns it off.
    pub max_misunderstandings: u32,
    /// A digit that hands over at once; empty turns it off.
    #[serde(deserialize_with = "text_or_number")]
    pub dtmf: String,
    /// Longest wait for the agent's last words to play before the transfer or hang-up.
    pub max_wait_ms: u64,
}

impl Default for HandoffSettings {
    fn default() -> Self {
        let phrases = |list: &[&str]| list.iter().map(|p| p.to_string()).collect();
        Self {
            target: String::new(),
            context: String::new(),
            intent_phrases: phrases(&[
                "falar com um atendente",
                "falar com atendente",
                "falar com uma pessoa",
                "atendente humano",
                "quero um humano",
            ]),
            misunderstanding_phrases: phrases(&[
                "não entendi",
                "pode repetir",
                "não consegui entender",
            ]),
            max_misunderstandings: 3,
            dtmf: "0".into(),
            max_wait_ms: 8000,
        }
    }
}

impl HandoffSettings {
    fn validate(&self) -> Result<(), String> {
        if !self
            .target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "*#+_-.@".contains(c))
        {
            return Err(format!(
                "target {:?} has characters a dialplan extension cannot",
                self.target
            ));
        }
        if !self
            .context
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(format!(
                "context {:?} is not a dialplan context name",
                self.context
            ));
        }
        if !(self.dtmf.is_empty() || (self.dtmf.len() == 1 && "0123456789*#".contains(&self.dtmf)))
        {
            return Err(format!("dtmf {:?} must be one digit, * or #", self.dtmf));
        }
        if !(1000..=30_000).contains(&self.max_wait_ms) {
            return Err("max_wait_ms must be between 1000 and 30000".into());
        }
        Ok(())
    }
}

/// What a call does when its provider refuses, times out or drops (issue: a caller never
/// hears more than 2 s of dead air because of a provider fault).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailoverSettings {
    /// Tried in order after the agent's own provider failed twice.
    pub providers: Vec<ProviderKind>,
    /// When every provider failed.
    pub last_resort: LastResort,
    /// Budget for each reconnect or fallback connection.
    pub connect_timeout_ms: u64,
    /// Silence, while no provider is up, after which the hold prompt plays.
    pub hold_after_ms: u64,
}

impl Default for FailoverSettings {
    fn default() -> Self {
        Self {
            providers: Vec::new(),
            last_resort: LastResort::Apology,
            connect_timeout_ms: 3000,
            hold_after_ms: 1000,
        }
    }
}

impl FailoverSettings {
    fn validate(&self) -> Result<(), String> {
        if !(500..=30_000).contains(&self.connect_timeout_ms) {
            return Err("connect_timeout_ms must be between 500 and 30000".into());
        }
        if !(200..=1800).contains(&self.hold_after_ms) {
            return Err(
                "hold_after_ms must be between 200 and 1800 (dead air stays under 2 s)".into(),
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LastResort {
    /// Play the hand-over prompt and transfer to `handoff.target`.
    Transfer,
    /// Play the apology prompt and hang up.
    Apology,
}

/// Settings for one tenant, after its overrides are applied.
#[derive(Debug, Clone)]
pub struct TenantSettings {
    pub agent: AgentSettings,
    pub playout: PlayoutSettings,
    /// Calls this tenant may run at once; `None`: no cap.
    pub max_calls: Option<u32>,
    /// Where a call over the cap is transferred; empty: the busy prompt, then hang-up.
    pub busy_transfer: String,
    /// Set when the tenant and agent come from the database.
    pub db: Option<crate::tenancy::DbCall>,
}

impl BridgeConfig {
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let cfg: Self = voice_core::config::load(DEFAULT_TOML, file, ENV_PREFIX)?;
        cfg.validated()
    }

    /// Loads from the embedded default plus an explicit environment (tests).
    pub fn from_env(env: &[(String, String)]) -> Result<Self, ConfigError> {
        let cfg: Self = voice_core::config::load_with_env(DEFAULT_TOML, None, ENV_PREFIX, env)?;
        cfg.validated()
    }

    /// Loads from the embedded default, `file` and an explicit environment (tests).
    pub fn from_file_and_env(file: &Path, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let cfg: Self =
            voice_core::config::load_with_env(DEFAULT_TOML, Some(file), ENV_PREFIX, env)?;
        cfg.validated()
    }

    /// Checks the settings and resolves every tenant's overrides.
    fn validated(mut self) -> Result<Self, ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.playout.lead_ms > 200 {
            return invalid(format!(
                "playout.lead_ms is {}, at most 200",
                self.playout.lead_ms
            ));
        }
        if !crate::stream::SUPPORTED_RATES.contains(&self.call.sample_rate) {
            return invalid(format!(
                "call.sample_rate {} is not one of {:?}",
                self.call.sample_rate,
                crate::stream::SUPPORTED_RATES
            ));
        }
        if self.playout.file_chunk_ms < 20 || self.playout.first_file_chunk_ms < 20 {
            return invalid("playout file chunks must be at least 20 ms".into());
        }
        self.agent
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("agent.{e}")))?;
        self.recording
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("recording: {e}")))?;
        self.resolved = self
            .tenants
            .keys()
            .map(|domain| Ok((domain.clone(), self.tenant(domain)?)))
            .collect::<Result<_, ConfigError>>()?;
        Ok(self)
    }

    /// The default agent and every tenant's.
    pub fn all_agents(&self) -> impl Iterator<Item = &AgentSettings> {
        std::iter::once(&self.agent).chain(self.resolved.values().map(|t| &t.agent))
    }

    /// The settings for `domain`: its `[tenants."domain"]` overrides on top of the defaults.
    /// `None` when the domain has no entry and unknown tenants are not allowed.
    pub fn tenant_settings(&self, domain: &str) -> Option<TenantSettings> {
        match self.resolved.get(domain) {
            Some(settings) => Some(settings.clone()),
            None if self.server.allow_unknown_tenants => Some(TenantSettings {
                agent: self.agent.clone(),
                playout: self.playout.clone(),
                max_calls: crate::tenancy::cap(self.server.max_calls_per_tenant),
                busy_transfer: String::new(),
                db: None,
            }),
            None => None,
        }
    }

    fn tenant(&self, domain: &str) -> Result<TenantSettings, ConfigError> {
        let overrides = self.tenants.get(domain).cloned().unwrap_or_default();
        let invalid = |what: &str, e: String| {
            ConfigError::Invalid(format!("tenants.\"{domain}\".{what}: {e}"))
        };
        for key in overrides.keys() {
            if !["agent", "playout", "max_calls", "busy_transfer"].contains(&key.as_str()) {
                return Err(invalid(
                    key,
                    "unknown key (agent, playout, max_calls and busy_transfer can be set)".into(),
                ));
            }
        }
        // 0 is no cap, as in [server].
        let max_calls = match overrides.get("max_calls") {
            None => crate::tenancy::cap(self.server.max_calls_per_tenant),
            Some(toml::Value::Integer(n)) => crate::tenancy::cap(
                u32::try_from(*n).map_err(|_| invalid("max_calls", "must be 0 or more".into()))?,
            ),
            Some(_) => return Err(invalid("max_calls", "must be a number".into())),
        };
        let busy_transfer = match overrides.get("busy_transfer") {
            None => String::new(),
            Some(toml::Value::String(t)) if valid_extension(t) => t.clone(),
            Some(toml::Value::Integer(n)) if *n >= 0 => n.to_string(),
            Some(_) => {
                return Err(invalid(
                    "busy_transfer",
                    "must be an extension (0-9, A-Z, *#+_.@-)".into(),
                ))
            }
        };
        let section = |name: &str| match overrides.get(name) {
            Some(toml::Value::Table(t)) => t.clone(),
            _ => toml::Table::new(),
        };
        let agent: AgentSettings =
            overlay(&self.agent, section("agent")).map_err(|e| invalid("agent", e))?;
        agent.validate().map_err(|e| invalid("agent", e))?;
        Ok(TenantSettings {
            agent,
            playout: overlay(&self.playout, section("playout"))
                .map_err(|e| invalid("playout", e))?,
            max_calls,
            busy_transfer,
            db: None,
        })
    }
}

/// Extensions and digits are text, but `VOICE_BRIDGE__…=1001` arrives as a number.
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrNumber {
        Text(String),
        Number(u64),
    }
    Ok(match TextOrNumber::deserialize(d)? {
        TextOrNumber::Text(t) => t,
        TextOrNumber::Number(n) => n.to_string(),
    })
}

/// An extension a dialplan command line may carry.
pub(crate) fn valid_extension(text: &str) -> bool {
    text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "*#+_.@-".contains(c))
}

/// `base` with the keys of `over` replaced (tables merged key by key), read back as `T`.
pub(crate) fn overlay<T: Serialize + serde::de::DeserializeOwned>(
    base: &T,
    over: toml::Table,
) -> Result<T, String> {
    let mut table = toml::Table::try_from(base).map_err(|e| e.to_string())?;
    voice_core::config::merge(&mut table, over);
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn embedded_default_loads() {
        let cfg = BridgeConfig::from_env(&[]).unwrap();
        assert_eq!(cfg.call.sample_rate, 16000);
        assert!(cfg.tenant_settings("any.example.com").is_some());
    }

    #[test]
    fn tenant_overrides_apply_to_that_tenant_only() {
        let cfg = BridgeConfig::from_env(&env(&[
            ("VOICE_BRIDGE__TENANTS__A.EXAMPLE__AGENT__VOICE", "cedar"),
            (
                "VOICE_BRIDGE__TENANTS__A.EXAMPLE__PLAYOUT__MODE",
                "stream_audio",
            ),
        ]))
        .unwrap();
        let a = cfg.tenant_settings("a.example").unwrap();
        assert_eq!(a.agent.voice, "cedar");
        assert_eq!(a.playout.mode, PlayoutModeSetting::StreamAudio);
        let b = cfg.tenant_settings("b.example").unwrap();
        assert_eq!(b.agent.voice, "marin");
    }

    #[test]
    fn unknown_tenants_can_be_refused() {
        let cfg = BridgeConfig::from_env(&env(&[
            ("VOICE_BRIDGE__SERVER__ALLOW_UNKNOWN_TENANTS", "false"),
            ("VOICE_BRIDGE__TENANTS__A.EXAMPLE__AGENT__VOICE", "cedar"),
        ]))
        .unwrap();
        assert!(cfg.tenant_settings("a.example").is_some());
        assert!(cfg.tenant_settings("b.example").is_none());
    }

    #[test]
    fn bad_settings_are_rejected_with_the_key_named() {
        let err =
            BridgeConfig::from_env(&env(&[("VOICE_BRIDGE__PLAYOUT__LEAD_MS", "500")])).unwrap_err();
        assert!(err.to_string().contains("lead_ms"), "{err}");
        let err =
            BridgeConfig::from_env(&env(&[("VOICE_BRIDGE__TENANTS__X__PLAYOUT__MODE", "loud")]))
                .unwrap_err();
        assert!(err.to_string().contains("tenants.\"x\".playout"), "{err}");
        let err = BridgeConfig::from_env(&env(&[(
            "VOICE_BRIDGE__TENANTS__X__AGENT__TURN__THRESHOLD",
            "3",
        )]))
        .unwrap_err();
        assert!(err.to_string().contains("threshold"), "{err}");
    }

    /// docker-compose.yml configures the bridge through `VOICE_BRIDGE__…` variables: they
    /// must make a valid configuration (with each `${VAR:-default}` at its default).
    #[test]
    fn the_compose_environment_is_a_valid_configuration() {
        let compose = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docker-compose.yml"
        ))
        .unwrap();
        let vars: Vec<(String, String)> = compose
            .lines()
            .filter_map(|line| {
                let (key, value) = line.trim().split_once(':')?;
                key.starts_with("VOICE_BRIDGE__").then(|| {
                    let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
                    // ${VAR:-default} → default
                    let value = match value.strip_prefix("${") {
                        Some(rest) => rest
                            .trim_end_matches('}')
                            .split_once(":-")
                            .map_or("", |(_, d)| d),
                        None => value,
                    };
                    (key.to_string(), value.to_string())
                })
            })
            .collect();
        assert!(vars.len() >= 8, "{vars:?}");
        let cfg = BridgeConfig::from_env(&vars).unwrap();
        assert!(cfg.esl.enabled);
        assert_eq!(cfg.agent.prompts.greeting.file, "greeting.wav");
        assert_eq!(cfg.agent.tools.len(), 3);
    }

    #[test]
    fn turn_detection_is_per_tenant() {
        use voice_core::audio::turn::TurnDetection;
        let cfg = BridgeConfig::from_env(&env(&[(
            "VOICE_BRIDGE__TENANTS__A.EXAMPLE__AGENT__TURN__DETECTION",
            "local",
        )]))
        .unwrap();
        let a = cfg.tenant_settings("a.example").unwrap();
        assert_eq!(a.agent.turn.detection, TurnDetection::Local);
        assert_eq!(a.agent.vad, VadSettings::default());
        let b = cfg.tenant_settings("b.example").unwrap();
        assert_eq!(b.agent.turn.detection, TurnDetection::Provider);
        assert_eq!(cfg.all_agents().count(), 2);
    }
}
