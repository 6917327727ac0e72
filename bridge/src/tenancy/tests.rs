//! Building a call's settings from database rows (no database needed: the rows are made
//! here).

use std::collections::BTreeMap;

use serde_json::json;
use uuid::Uuid;
use voice_core::tenancy::crypto::Credentials;
use voice_core::tenancy::directory::TenantConfig;
use voice_core::tenancy::model::{AgentMode, AgentRecord, ProviderInstance, Tenant};

use super::agent_row::agent_settings;
use super::providers::tenant_providers;
use crate::config::{BridgeConfig, ProviderKind};

fn cfg() -> BridgeConfig {
    BridgeConfig::from_env(&[]).unwrap()
}

fn instance(
    kind: &str,
    settings: serde_json::Value,
    key: Option<&str>,
) -> (ProviderInstance, Option<Credentials>) {
    let credentials =
        key.map(|k| Credentials::new(BTreeMap::from([("api_key".into(), k.into())])).unwrap());
    (
        ProviderInstance {
            id: Uuid::new_v4(),
            tenant_id: Uuid::nil(),
            kind: kind.into(),
            name: format!("{kind}-account"),
            settings,
            has_credentials: credentials.is_some(),
            priority: 10,
            enabled: true,
            created_at: Default::default(),
            updated_at: Default::default(),
        },
        credentials,
    )
}

fn agent(mode: AgentMode) -> AgentRecord {
    AgentRecord {
        id: Uuid::new_v4(),
        tenant_id: Uuid::nil(),
        name: "recepcao".into(),
        mode,
        prompt: "Você é a recepcionista.".into(),
        language: "pt-BR".into(),
        voice: String::new(),
        greeting: String::new(),
        vad: json!({}),
        turn: json!({}),
        barge_in: json!({}),
        tools: json!([]),
        handoff: json!({}),
        playout: json!({}),
        numbers: Vec::new(),
        is_default: true,
        settings: json!({}),
        enabled: true,
        created_at: Default::default(),
        updated_at: Default::default(),
    }
}

fn tenant(providers: Vec<(ProviderInstance, Option<Credentials>)>) -> TenantConfig {
    TenantConfig {
        tenant: Tenant {
            id: Uuid::nil(),
            domain_uuid: Uuid::nil(),
            domain_name: "a.example".into(),
            timezone: "America/Sao_Paulo".into(),
            enabled: true,
            max_concurrent_calls: None,
            busy_transfer: String::new(),
            requests_per_minute: None,
            require_consent: None,
            retention_days: None,
        },
        agents: Vec::new(),
        providers,
    }
}

#[test]
fn instances_lay_their_settings_and_keys_over_the_process_providers() {
    let cfg = cfg();
    let providers = tenant_providers(
        &cfg.providers,
        &[
            instance(
                "openai_realtime",
                json!({"url": "wss://proxy.example/v1/realtime", "model": "gpt-realtime-mini"}),
                Some("sk-tenant"),
            ),
            // A second account of the same kind: the first by priority wins.
            instance(
                "openai_realtime",
                json!({"model": "other"}),
                Some("sk-second"),
            ),
            instance("groq", json!({"model": "llama-x"}), None),
            instance(
                "openai",
                json!({"chat": {"model": "gpt-4.1-mini"}}),
                Some("sk-openai"),
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        providers.openai_realtime.url,
        "wss://proxy.example/v1/realtime"
    );
    assert_eq!(providers.openai_realtime.model, "gpt-realtime-mini");
    assert_eq!(providers.openai_realtime.api_key.expose(), "sk-tenant");
    assert_eq!(
        providers.groq.url,
        voice_core::providers::llm::openai_chat::OpenAiChatConfig::groq().url,
        "groq keeps its own defaults"
    );
    assert_eq!(providers.groq.model, "llama-x");
    assert_eq!(providers.openai_chat.model, "gpt-4.1-mini");
    for key in [
        &providers.openai_chat.api_key,
        &providers.openai_transcribe.api_key,
        &providers.openai_speech.api_key,
    ] {
        assert_eq!(key.expose(), "sk-openai");
    }
    // Untouched sections stay the process's.
    assert_eq!(providers.gemini_live.url, cfg.providers.gemini_live.url);
    assert!(!format!("{providers:?}").contains("sk-tenant"));
}

#[test]
fn settings_cannot_take_the_platforms_keys_or_files() {
    let cfg = cfg();
    let refused = |kind: &str, settings: serde_json::Value, key: Option<&str>| {
        tenant_providers(&cfg.providers, &[instance(kind, settings, key)]).unwrap_err()
    };
    // The platform's key would go to the tenant's address.
    let e = refused(
        "openai_realtime",
        json!({"url": "wss://evil.example"}),
        None,
    );
    assert!(e.contains("url") && e.contains("api_key"), "{e}");
    let e = refused("openai_realtime", json!({"api_key": "sk-x"}), None);
    assert!(e.contains("credentials"), "{e}");
    assert!(!e.contains("sk-x"), "{e}");
    let e = refused(
        "groq",
        json!({"api_key_env": "VOICE_CREDENTIALS_KEY"}),
        Some("k"),
    );
    assert!(e.contains("api_key_env"), "{e}");
    let e = refused("piper", json!({"model": "/etc/passwd"}), None);
    assert!(e.contains("piper model"), "{e}");
    let e = refused("openai", json!({"model": "x"}), Some("k"));
    assert!(e.contains("unknown settings key"), "{e}");
    let e = refused("deepgram", json!({"modle": "nova-3"}), Some("k"));
    assert!(e.contains("modle"), "{e}");
}

#[test]
fn an_agent_row_overlays_the_toml_agent() {
    let cfg = cfg();
    let tenant = tenant(vec![
        instance("gemini_live", json!({}), Some("g")),
        instance("openai_realtime", json!({}), Some("o")),
    ]);
    let mut row = agent(AgentMode::Realtime);
    row.greeting = "Olá! Clínica A, bom dia.".into();
    row.vad = json!({"threshold": 0.7});
    row.tools = json!(["lookup_knowledge"]);
    row.playout = json!({"mode": "stream_audio"});
    let (agent, playout) = agent_settings(&cfg, &tenant, &row).unwrap();
    assert_eq!(agent.instructions, row.prompt);
    assert_eq!(
        agent.voice, cfg.agent.voice,
        "an empty voice keeps the default"
    );
    assert_eq!(agent.prompts.greeting.text, row.greeting);
    assert_eq!(agent.prompts.greeting.file, "");
    assert_eq!(agent.prompts.apology, cfg.agent.prompts.apology);
    assert_eq!(agent.vad.threshold, 0.7);
    assert_eq!(agent.tools.len(), 1);
    assert_eq!(
        playout.mode,
        crate::playout::PlayoutModeSetting::StreamAudio
    );
    // Providers by the instances' priority order.
    assert_eq!(agent.provider, ProviderKind::GeminiLive);
    assert_eq!(agent.failover.providers, vec![ProviderKind::OpenaiRealtime]);

    // The row's settings win over the instances' order.
    row.settings = json!({"provider": "openai_realtime", "failover": {"providers": []}});
    let (agent, _) = agent_settings(&cfg, &tenant, &row).unwrap();
    assert_eq!(agent.provider, ProviderKind::OpenaiRealtime);
    assert!(agent.failover.providers.is_empty());
}

#[test]
fn a_cascaded_row_takes_its_chains_from_the_instances() {
    let cfg = cfg();
    let tenant = tenant(vec![
        instance("groq", json!({}), Some("g")),
        instance("deepgram", json!({}), Some("d")),
        instance("elevenlabs", json!({}), Some("e")),
    ]);
    let (agent, _) = agent_settings(&cfg, &tenant, &agent(AgentMode::Cascaded)).unwrap();
    use voice_core::providers::catalog::{LlmKind, SttKind, TtsKind};
    assert_eq!(agent.provider, ProviderKind::Cascaded);
    assert_eq!(agent.cascaded.stt, vec![SttKind::Deepgram]);
    assert_eq!(agent.cascaded.llm, vec![LlmKind::Groq]);
    assert_eq!(agent.cascaded.tts, vec![TtsKind::ElevenlabsTts]);
}

#[test]
fn a_bad_row_is_an_error_that_says_what_is_wrong() {
    let cfg = cfg();
    let tenant = tenant(Vec::new());
    let bad = |change: &dyn Fn(&mut AgentRecord)| {
        let mut row = agent(AgentMode::Realtime);
        change(&mut row);
        agent_settings(&cfg, &tenant, &row).unwrap_err()
    };
    let e = bad(&|r| r.vad = json!({"threshold": 3.0}));
    assert!(e.contains("vad"), "{e}");
    let e = bad(&|r| r.settings = json!({"prompts": {"dir": "/etc"}}));
    assert!(e.contains("prompts"), "{e}");
    let e = bad(&|r| r.tools = json!(["launch_missiles"]));
    assert!(e.contains("launch_missiles"), "{e}");
    let e = bad(&|r| r.playout = json!({"lead_ms": 900}));
    assert!(e.contains("lead_ms"), "{e}");
    let e = bad(&|r| r.settings = json!({"turn": {"detection": null}}));
    assert!(e.contains("null"), "{e}");
}
