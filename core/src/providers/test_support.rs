//! Test helpers the provider clients share: their connect tests make the same checks
//! (a missing key, an unreachable server) and their set-up tests the same persona.

use serde_json::json;

use crate::agent::{Agent, AgentError, AgentPersona, CallInfo, ToolSpec};

/// Whether one of these environment variables holds a key (then key-less tests skip).
pub fn env_has_key(names: &[&str]) -> bool {
    names
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()))
}

/// Without a configured key, connecting is a `Config` error; only checked when none of the
/// `env` variables holds one either.
pub async fn assert_key_required(agent: &dyn Agent, env: &[&str]) {
    if env_has_key(env) {
        return;
    }
    let err = connect_error(agent).await;
    assert!(matches!(err, AgentError::Config(_)), "{err}");
}

/// The error `agent` fails to connect with.
pub async fn connect_error(agent: &dyn Agent) -> AgentError {
    match agent.connect(CallInfo::default()).await {
        Ok(_) => panic!("{} connected", agent.name()),
        Err(e) => e,
    }
}

/// A local port nothing listens on.
pub async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Connecting is refused (not hung), and the error does not show `secret`.
pub async fn assert_refused_hiding(agent: &dyn Agent, secret: &str) {
    let err = connect_error(agent).await;
    assert!(matches!(err, AgentError::Refused(_)), "{err}");
    assert!(!err.to_string().contains(secret));
}

/// Each of `results` is a `Config` error that does not show `secret`.
pub fn assert_config_errors_hiding<T: std::fmt::Debug>(
    results: impl IntoIterator<Item = Result<T, AgentError>>,
    secret: &str,
) {
    for result in results {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, AgentError::Config(m) if !m.contains(secret)),
            "{err}"
        );
    }
}

/// A persona with instructions and one tool, in `voice` and `language`.
pub fn persona(voice: &str, language: &str) -> AgentPersona {
    AgentPersona {
        instructions: "Você é um atendente.".into(),
        voice: voice.into(),
        language: language.into(),
        tools: vec![ToolSpec {
            name: "lookup_customer".into(),
            description: "Find a customer".into(),
            parameters: json!({"type":"object","properties":{"phone":{"type":"string"}}}),
        }],
        local_turns: false,
        greeting: String::new(),
    }
}
