//! A tenant's provider accounts as `[providers.*]` settings for its calls: the process's
//! tables, with each enabled instance's settings and API key laid over the section(s) of its
//! kind. The bridge and the turn-api both build calls with [`tenant_providers`]; the store
//! checks what is written with [`check_settings`], so a row a call could not use is refused
//! when it is written.
//!
//! Rules that keep one tenant from using what is not its own:
//! - `api_key` and `api_key_env` never come from settings (keys live in the sealed
//!   credentials; `api_key_env` would read any variable of the service's environment);
//! - an instance that points a provider elsewhere (`url`, `api_base`, `base_url`) must carry
//!   its own API key, or the platform's key would be sent to that address (Ollama, which
//!   takes no key, excepted);
//! - Piper's file paths stay the platform's.
//!
//! Kind `openai` serves three stages, so its settings hold `transcribe`, `chat` and `speech`
//! objects. Several instances of one kind: the first by priority is the kind's account, the
//! next ones are its standby layers ([`ProviderSettings::standby`]): a cascaded or turn-based
//! stage, or a realtime call's failover, tries them in priority order before the chain's
//! next kind.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::crypto::Credentials;
use super::model::ProviderInstance;
use crate::providers::catalog::{LlmKind, ProviderSettings, Standby, SttKind, TtsKind};

/// The realtime (speech-to-speech) kinds.
pub const REALTIME_KINDS: &[&str] = &["openai_realtime", "gemini_live", "elevenlabs_agent"];

const SECRET_KEYS: &[&str] = &["api_key", "api_key_env"];
const ADDRESS_KEYS: &[&str] = &["url", "api_base", "base_url"];
const PIPER_PATHS: &[&str] = &["model", "config", "espeak_data_dir", "threads"];

/// `[providers]` as parsed, and as written (the base tenants' settings are laid over).
#[derive(Debug, Clone, Default)]
pub struct ProviderTables {
    pub settings: ProviderSettings,
    pub table: toml::Table,
}

impl<'de> Deserialize<'de> for ProviderTables {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let table = toml::Table::deserialize(d)?;
        let settings = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| serde::de::Error::custom(e.message()))?;
        Ok(Self { settings, table })
    }
}

impl std::ops::Deref for ProviderTables {
    type Target = ProviderSettings;

    fn deref(&self) -> &ProviderSettings {
        &self.settings
    }
}

/// The `[providers]` sections an instance of `kind` configures, with the key of its settings
/// object that holds each one (`None`: the whole object).
fn sections(kind: &str) -> &'static [(&'static str, Option<&'static str>)] {
    match kind {
        "openai_realtime" => &[("openai_realtime", None)],
        "gemini_live" => &[("gemini_live", None)],
        "elevenlabs_agent" => &[("elevenlabs_agent", None)],
        "deepgram" => &[("deepgram", None)],
        "openai" => &[
            ("openai_transcribe", Some("transcribe")),
            ("openai_chat", Some("chat")),
            ("openai_speech", Some("speech")),
        ],
        "groq" => &[("groq", None)],
        "anthropic" => &[("anthropic", None)],
        "ollama" => &[("ollama", None)],
        "elevenlabs" => &[("elevenlabs_tts", None)],
        "piper" => &[("piper", None)],
        _ => &[],
    }
}

/// The process's providers with the tenant's enabled instances laid over them: the first of
/// each kind by priority, and the next ones as standby layers.
pub fn tenant_providers(
    base: &ProviderTables,
    instances: &[(ProviderInstance, Option<Credentials>)],
) -> Result<ProviderSettings, String> {
    // Rank r holds each kind's (r+1)-th enabled instance by priority.
    let mut ranks: Vec<Vec<&(ProviderInstance, Option<Credentials>)>> = Vec::new();
    let mut per_kind: HashMap<&str, usize> = HashMap::new();
    for pair in instances.iter().filter(|(i, _)| i.enabled) {
        let rank = per_kind.entry(pair.0.kind.as_str()).or_insert(0);
        if ranks.len() == *rank {
            ranks.push(Vec::new());
        }
        ranks[*rank].push(pair);
        *rank += 1;
    }
    let mut ranks = ranks.into_iter();
    let mut settings = layer(base, &ranks.next().unwrap_or_default())?;
    for rank in ranks {
        let (stt, llm, tts) = stage_kinds(rank.iter().map(|(i, _)| i));
        let realtime = realtime_kinds(rank.iter().map(|(i, _)| i));
        settings.standby.push(Standby {
            settings: layer(base, &rank)?,
            stt,
            llm,
            tts,
            realtime,
        });
    }
    Ok(settings)
}

/// The process's tables with `instances` (one per kind) laid over them.
fn layer(
    base: &ProviderTables,
    instances: &[&(ProviderInstance, Option<Credentials>)],
) -> Result<ProviderSettings, String> {
    let mut table = base.table.clone();
    for (instance, credentials) in instances.iter().copied() {
        let api_key = credentials
            .as_ref()
            .and_then(|c| c.get("api_key"))
            .filter(|k| !k.is_empty())
            .map(|k| k.expose());
        lay_over(&mut table, instance, api_key)
            .map_err(|e| format!("provider {:?}: {e}", instance.name))?;
    }
    // Errors name the field at fault; they never quote an API key (always a valid string).
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| format!("provider settings: {}", e.message().trim()))
}

/// Checks an instance's settings as a call will read them: known kind and keys, valid
/// values, the rules above. `has_key`: the instance has (or is given) an `api_key`.
pub fn check_settings(kind: &str, settings: &Value, has_key: bool) -> Result<(), String> {
    let mut table = toml::Table::new();
    let instance = ProviderInstance {
        id: uuid::Uuid::nil(),
        tenant_id: uuid::Uuid::nil(),
        kind: kind.to_string(),
        name: String::new(),
        settings: settings.clone(),
        has_credentials: has_key,
        priority: 0,
        enabled: true,
        created_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        updated_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
    };
    lay_over(&mut table, &instance, has_key.then_some("checked"))?;
    toml::Value::Table(table)
        .try_into::<ProviderSettings>()
        .map(|_| ())
        .map_err(|e| e.message().trim().to_string())
}

fn lay_over(
    table: &mut toml::Table,
    instance: &ProviderInstance,
    api_key: Option<&str>,
) -> Result<(), String> {
    let empty = Map::new();
    let settings = match &instance.settings {
        Value::Object(map) => map,
        Value::Null => &empty,
        _ => return Err("settings must be an object".into()),
    };
    let parts = sections(&instance.kind);
    if parts.is_empty() {
        return Err(format!("unknown kind {:?}", instance.kind));
    }
    if parts[0].1.is_some() {
        let known: Vec<&str> = parts.iter().filter_map(|(_, k)| *k).collect();
        if let Some(other) = settings.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!(
                "unknown settings key {other:?} (kind {} takes {known:?})",
                instance.kind
            ));
        }
    }
    for (section, key) in parts {
        let own = match key {
            None => settings.clone(),
            Some(key) => match settings.get(*key) {
                None => Map::new(),
                Some(Value::Object(map)) => map.clone(),
                Some(_) => return Err(format!("{key} must be an object")),
            },
        };
        check_keys(section, &own, api_key.is_some())?;
        let mut over = match toml::Value::try_from(Value::Object(own)) {
            Ok(toml::Value::Table(t)) => t,
            Ok(_) => toml::Table::new(),
            Err(e) => return Err(format!("settings: {e}")),
        };
        if let Some(key) = api_key {
            over.insert("api_key".into(), toml::Value::String(key.to_string()));
        }
        let mut wrapper = toml::Table::new();
        wrapper.insert((*section).to_string(), toml::Value::Table(over));
        crate::config::merge(table, wrapper);
    }
    Ok(())
}

fn check_keys(section: &str, settings: &Map<String, Value>, has_key: bool) -> Result<(), String> {
    for key in settings.keys() {
        if SECRET_KEYS.contains(&key.as_str()) {
            return Err(format!(
                "{key} cannot be a setting (API keys go in the credentials)"
            ));
        }
        if ADDRESS_KEYS.contains(&key.as_str()) && !has_key && section != "ollama" {
            return Err(format!(
                "setting {key} needs the instance's own api_key credential"
            ));
        }
        if section == "piper" && PIPER_PATHS.contains(&key.as_str()) {
            return Err(format!("piper {key} is the platform's to set"));
        }
    }
    Ok(())
}

/// The realtime kinds of `instances`, enabled, by priority, each once.
pub fn realtime_order(instances: &[(ProviderInstance, Option<Credentials>)]) -> Vec<String> {
    realtime_kinds(instances.iter().map(|(i, _)| i))
}

fn realtime_kinds<'a>(instances: impl Iterator<Item = &'a ProviderInstance>) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    for instance in instances.filter(|i| i.enabled) {
        if REALTIME_KINDS.contains(&instance.kind.as_str()) && !kinds.contains(&instance.kind) {
            kinds.push(instance.kind.clone());
        }
    }
    kinds
}

/// The cascaded stages the tenant's enabled instances offer, by priority.
pub fn stage_chains(
    instances: &[(ProviderInstance, Option<Credentials>)],
) -> (Vec<SttKind>, Vec<LlmKind>, Vec<TtsKind>) {
    stage_kinds(instances.iter().map(|(i, _)| i))
}

/// The stage kinds of the enabled `instances`, in their order, each once.
fn stage_kinds<'a>(
    instances: impl Iterator<Item = &'a ProviderInstance>,
) -> (Vec<SttKind>, Vec<LlmKind>, Vec<TtsKind>) {
    fn add<T: PartialEq>(list: &mut Vec<T>, kind: T) {
        if !list.contains(&kind) {
            list.push(kind);
        }
    }
    let (mut stt, mut llm, mut tts) = (Vec::new(), Vec::new(), Vec::new());
    for instance in instances.filter(|i| i.enabled) {
        match instance.kind.as_str() {
            "deepgram" => add(&mut stt, SttKind::Deepgram),
            "openai" => {
                add(&mut stt, SttKind::OpenaiTranscribe);
                add(&mut llm, LlmKind::OpenaiChat);
                add(&mut tts, TtsKind::OpenaiSpeech);
            }
            "groq" => add(&mut llm, LlmKind::Groq),
            "anthropic" => add(&mut llm, LlmKind::Anthropic),
            "ollama" => add(&mut llm, LlmKind::Ollama),
            "elevenlabs" => add(&mut tts, TtsKind::ElevenlabsTts),
            "piper" => add(&mut tts, TtsKind::Piper),
            _ => {}
        }
    }
    (stt, llm, tts)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn instance(kind: &str, priority: i32, settings: Value) -> ProviderInstance {
        ProviderInstance {
            id: uuid::Uuid::new_v4(),
            tenant_id: uuid::Uuid::nil(),
            kind: kind.into(),
            name: format!("{kind}-{priority}"),
            settings,
            has_credentials: true,
            priority,
            enabled: true,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    fn key(k: &str) -> Option<Credentials> {
        Some(Credentials::new(BTreeMap::from([("api_key".into(), k.into())])).unwrap())
    }

    fn base() -> ProviderTables {
        toml::from_str::<toml::Table>(
            "[groq]\nmodel = \"process-model\"\napi_key = \"gsk-platform\"\n",
        )
        .unwrap()
        .try_into()
        .unwrap()
    }

    #[test]
    fn instances_lay_their_settings_and_keys_over_the_process_tables() {
        let chain = vec![
            (
                instance(
                    "groq",
                    1,
                    json!({ "url": "http://llm.example/v1/chat/completions" }),
                ),
                key("gsk-1"),
            ),
            (
                instance("groq", 2, json!({ "model": "other" })),
                key("gsk-2"),
            ),
            (
                instance("openai", 3, json!({ "speech": { "voice": "nova" } })),
                key("sk-o"),
            ),
        ];
        let p = tenant_providers(&base(), &chain).unwrap();
        assert_eq!(
            p.groq.model, "process-model",
            "the process's table is the base"
        );
        assert_eq!(p.groq.url, "http://llm.example/v1/chat/completions");
        assert_eq!(p.groq.api_key.expose(), "gsk-1");
        assert_eq!(p.openai_speech.voice, "nova");
        assert_eq!(p.openai_chat.api_key.expose(), "sk-o");
        // The second Groq account stands by, with its own settings over the process's.
        assert_eq!(p.standby.len(), 1);
        let standby = &p.standby[0];
        assert_eq!(standby.llm, vec![LlmKind::Groq]);
        assert!(standby.stt.is_empty() && standby.tts.is_empty());
        assert_eq!(standby.settings.groq.api_key.expose(), "gsk-2");
        assert_eq!(standby.settings.groq.model, "other");
        assert_eq!(
            standby.settings.groq.url,
            base().groq.url,
            "not the first's"
        );
    }

    #[test]
    fn standby_layers_follow_priority_per_kind_and_skip_realtime_and_disabled() {
        let mut off = instance("openai", 2, json!({}));
        off.enabled = false;
        let chain = vec![
            (instance("openai", 1, json!({})), key("sk-1")),
            (off, key("sk-off")),
            (instance("deepgram", 3, json!({})), key("dg-1")),
            (instance("openai_realtime", 4, json!({})), key("sk-rt-1")),
            (instance("openai", 5, json!({})), key("sk-2")),
            (instance("openai_realtime", 6, json!({})), key("sk-rt-2")),
            (instance("openai", 7, json!({})), key("sk-3")),
        ];
        let p = tenant_providers(&base(), &chain).unwrap();
        assert_eq!(p.openai_chat.api_key.expose(), "sk-1");
        assert_eq!(p.openai_realtime.api_key.expose(), "sk-rt-1");
        let keys: Vec<&str> = p
            .standby
            .iter()
            .map(|l| l.settings.openai_chat.api_key.expose())
            .collect();
        assert_eq!(
            keys,
            ["sk-2", "sk-3"],
            "by priority, the disabled one left out"
        );
        for layer in &p.standby {
            assert_eq!(
                layer.stt,
                vec![SttKind::OpenaiTranscribe],
                "no second Deepgram"
            );
            assert_eq!(layer.llm, vec![LlmKind::OpenaiChat]);
            assert_eq!(layer.tts, vec![TtsKind::OpenaiSpeech]);
            assert!(layer.settings.standby.is_empty());
        }
        // The second realtime account is in the first standby layer, and only there.
        assert_eq!(p.standby[0].realtime, ["openai_realtime"]);
        assert_eq!(
            p.standby[0].settings.openai_realtime.api_key.expose(),
            "sk-rt-2"
        );
        assert!(p.standby[1].realtime.is_empty());
        // One account of each kind: nothing in reserve.
        let single = tenant_providers(&base(), &chain[..4]).unwrap();
        assert!(single.standby.is_empty());
    }

    #[test]
    fn the_platform_key_never_goes_to_a_tenants_address() {
        let chain = vec![(
            instance("groq", 1, json!({ "url": "http://evil.example/v1" })),
            None,
        )];
        let err = tenant_providers(&base(), &chain).unwrap_err();
        assert!(err.contains("api_key"), "{err}");
        // Without a new address the tenant may use the platform's account.
        let chain = vec![(instance("groq", 1, json!({ "model": "m" })), None)];
        assert_eq!(
            tenant_providers(&base(), &chain)
                .unwrap()
                .groq
                .api_key
                .expose(),
            "gsk-platform"
        );
    }

    #[test]
    fn bad_settings_are_named_and_secrets_refused() {
        let err = check_settings("deepgram", &json!({ "modle": "nova-3" }), true).unwrap_err();
        assert!(err.contains("modle"), "{err}");
        let err = check_settings("groq", &json!({ "api_key": "gsk-secret" }), true).unwrap_err();
        assert!(err.contains("credentials"), "{err}");
        assert!(!err.contains("gsk-secret"), "{err}");
        assert!(check_settings("groq", &json!({ "api_key_env": "HOME" }), true).is_err());
        assert!(check_settings("openai", &json!({ "chats": {} }), true).is_err());
        assert!(check_settings("piper", &json!({ "model": "/etc/passwd" }), true).is_err());
        assert!(check_settings("nope", &json!({}), true).is_err());
        assert!(check_settings(
            "ollama",
            &json!({ "url": "http://gpu:11434/v1/chat/completions" }),
            false
        )
        .is_ok());
        assert!(check_settings("openai", &json!({ "chat": { "model": "gpt-4o" } }), false).is_ok());
    }

    #[test]
    fn orders_follow_priority_once_per_kind_and_skip_disabled() {
        let mut off = instance("anthropic", 0, json!({}));
        off.enabled = false;
        let chain = vec![
            (off, None),
            (instance("gemini_live", 1, json!({})), None),
            (instance("deepgram", 2, json!({})), None),
            (instance("openai_realtime", 3, json!({})), None),
            (instance("openai", 4, json!({})), None),
            (instance("gemini_live", 5, json!({})), None),
        ];
        assert_eq!(
            realtime_order(&chain),
            vec!["gemini_live", "openai_realtime"]
        );
        let (stt, llm, tts) = stage_chains(&chain);
        assert_eq!(stt, vec![SttKind::Deepgram, SttKind::OpenaiTranscribe]);
        assert_eq!(llm, vec![LlmKind::OpenaiChat]);
        assert_eq!(tts, vec![TtsKind::OpenaiSpeech]);
    }
}
