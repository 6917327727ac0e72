//! An agent row as the bridge's `[agent]` and `[playout]`: the row's fields laid over the
//! TOML defaults (prompt → instructions, greeting → a greeting the agent says, the JSON
//! objects → the tables of the same names), its tenant's provider instances choosing the
//! providers, then its `settings` over all of it. Checked like a TOML agent.

use serde_json::{json, Map, Value};
use voice_core::tenancy::directory::TenantConfig;
use voice_core::tenancy::model::{AgentMode, AgentRecord};

use super::providers::{realtime_chain, stage_chains};
use crate::config::{overlay, AgentSettings, BridgeConfig, PlayoutSettings};

/// `settings` keys an agent row may not set: prompt files are read from the bridge's disk,
/// and a database tenant's knowledge is the knowledge base.
const PLATFORM_KEYS: &[(&str, &str)] = &[
    (
        "prompts",
        "prompt audio files are the platform's (use greeting for a spoken greeting)",
    ),
    (
        "knowledge",
        "knowledge lives in the knowledge base (knowledge_documents)",
    ),
];

/// The `[agent]` and `[playout]` of a call to `row`. `Err` says what is wrong with the row.
pub fn agent_settings(
    cfg: &BridgeConfig,
    tenant: &TenantConfig,
    row: &AgentRecord,
) -> Result<(AgentSettings, PlayoutSettings), String> {
    let mut over = Map::new();
    let mut text = |key: &str, value: &str| {
        if !value.trim().is_empty() {
            over.insert(key.into(), Value::String(value.to_string()));
        }
    };
    text("instructions", &row.prompt);
    text("voice", &row.voice);
    text("language", &row.language);
    if !row.greeting.trim().is_empty() {
        over.insert(
            "prompts".into(),
            json!({"greeting": {"file": "", "text": row.greeting}}),
        );
    }
    for (key, value) in [
        ("vad", &row.vad),
        ("turn", &row.turn),
        ("barge_in", &row.barge_in),
        ("handoff", &row.handoff),
    ] {
        match value {
            Value::Object(map) if map.is_empty() => {}
            Value::Object(_) => {
                over.insert(key.into(), value.clone());
            }
            _ => return Err(format!("{key} must be an object")),
        }
    }
    match &row.tools {
        Value::Array(list) if list.is_empty() => {}
        Value::Array(_) => {
            over.insert("tools".into(), row.tools.clone());
        }
        _ => return Err("tools must be an array".into()),
    }
    choose_providers(&mut over, tenant, row);
    let settings = match &row.settings {
        Value::Object(map) => map,
        _ => return Err("settings must be an object".into()),
    };
    for (key, why) in PLATFORM_KEYS {
        if settings.contains_key(*key) {
            return Err(format!("settings.{key}: {why}"));
        }
    }
    let mut agent_table = to_table(Value::Object(over), "agent")?;
    voice_core::config::merge(
        &mut agent_table,
        to_table(Value::Object(settings.clone()), "settings")?,
    );
    let agent: AgentSettings = overlay(&cfg.agent, agent_table)?;
    agent.validate()?;
    let playout = match &row.playout {
        Value::Object(_) => overlay(&cfg.playout, to_table(row.playout.clone(), "playout")?)
            .map_err(|e| format!("playout: {e}"))?,
        _ => return Err("playout must be an object".into()),
    };
    if playout.lead_ms > 200 || playout.file_chunk_ms < 20 || playout.first_file_chunk_ms < 20 {
        return Err("playout: lead_ms at most 200, file chunks at least 20 ms".into());
    }
    Ok((agent, playout))
}

/// The provider and fallbacks (realtime) or the stage chains (cascaded) from the tenant's
/// instances, by priority. The row's own settings still win (they are merged later).
fn choose_providers(over: &mut Map<String, Value>, tenant: &TenantConfig, row: &AgentRecord) {
    match row.mode {
        AgentMode::Realtime => {
            let chain = realtime_chain(&tenant.providers);
            if let Some((first, rest)) = chain.split_first() {
                over.insert("provider".into(), first.name().into());
                let rest: Vec<Value> = rest.iter().map(|k| k.name().into()).collect();
                over.insert("failover".into(), json!({ "providers": rest }));
            }
        }
        AgentMode::Cascaded => {
            over.insert("provider".into(), "cascaded".into());
            let (stt, llm, tts) = stage_chains(&tenant.providers);
            let mut chains = Map::new();
            let names = |v: Vec<Value>| Value::Array(v);
            if !stt.is_empty() {
                chains.insert("stt".into(), names(stt.iter().map(|k| json!(k)).collect()));
            }
            if !llm.is_empty() {
                chains.insert("llm".into(), names(llm.iter().map(|k| json!(k)).collect()));
            }
            if !tts.is_empty() {
                chains.insert("tts".into(), names(tts.iter().map(|k| json!(k)).collect()));
            }
            if !chains.is_empty() {
                over.insert("cascaded".into(), Value::Object(chains));
            }
        }
        // Refused before this is reached: a turn agent is the turn-api's.
        AgentMode::Turn => {}
    }
}

fn to_table(value: Value, what: &str) -> Result<toml::Table, String> {
    match toml::Value::try_from(value) {
        Ok(toml::Value::Table(table)) => Ok(table),
        Ok(_) => Err(format!("{what} must be an object")),
        // JSON null has no TOML form.
        Err(e) => Err(format!("{what}: {e} (null values cannot be used)")),
    }
}
