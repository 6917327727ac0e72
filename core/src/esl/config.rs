//! `[esl]` configuration and the `event plain` subscription line built from it.

use crate::config::Secret;

use super::EslError;

/// Where FreeSWITCH's event socket is and what to subscribe to. Fits a TOML `[esl]` table;
/// every field has a default matching a stock FreeSWITCH.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EslConfig {
    /// `host:port` of mod_event_socket.
    pub address: String,
    pub password: Secret,
    /// Event names for `event plain`. Names containing `::` are CUSTOM subclasses; the client
    /// puts them after `CUSTOM` itself, whatever their order here.
    pub events: Vec<String>,
    pub reconnect_delay_ms: u64,
    pub command_timeout_ms: u64,
}

impl Default for EslConfig {
    fn default() -> Self {
        Self {
            address: "127.0.0.1:8021".into(),
            password: Secret::new("ClueCon"),
            events: [
                "CUSTOM",
                "mod_audio_stream::play",
                "mod_audio_fork::play_audio",
                "DTMF",
                "CHANNEL_HANGUP",
                "BACKGROUND_JOB",
            ]
            .map(String::from)
            .to_vec(),
            reconnect_delay_ms: 1000,
            command_timeout_ms: 5000,
        }
    }
}

impl EslConfig {
    /// Rejects values that could never work, with a message that names the field (and
    /// never shows the password).
    pub fn validate(&self) -> Result<(), EslError> {
        let invalid = |msg: &str| Err(EslError::Invalid(format!("esl config: {msg}")));
        if self.address.trim().is_empty() {
            return invalid("address is empty");
        }
        if self.password.is_empty() {
            return invalid("password is empty");
        }
        if self.password.expose().contains(['\r', '\n']) {
            return invalid("password contains a line break");
        }
        if let Some(bad) = self
            .events
            .iter()
            .find(|e| e.is_empty() || e.contains(char::is_whitespace))
        {
            return invalid(&format!(
                "event name {bad:?} is empty or contains whitespace"
            ));
        }
        if self.reconnect_delay_ms == 0 {
            return invalid("reconnect_delay_ms must be > 0");
        }
        if self.command_timeout_ms == 0 {
            return invalid("command_timeout_ms must be > 0");
        }
        Ok(())
    }

    /// The `event plain …` command, or `None` when no events are wanted.
    ///
    /// mod_event_socket treats every word after `CUSTOM` as a subclass, so `event plain CUSTOM
    /// a::b DTMF` would never deliver DTMF. Plain event names therefore go first, then
    /// `CUSTOM` and the subclasses.
    pub fn subscription_command(&self) -> Option<String> {
        let (subclasses, names): (Vec<&str>, Vec<&str>) = self
            .events
            .iter()
            .map(String::as_str)
            .filter(|e| !e.eq_ignore_ascii_case("CUSTOM"))
            .partition(|e| e.contains("::"));
        let wants_custom =
            !subclasses.is_empty() || self.events.iter().any(|e| e.eq_ignore_ascii_case("CUSTOM"));
        if names.is_empty() && !wants_custom {
            return None;
        }
        let mut words = vec!["event", "plain"];
        words.extend(names);
        if wants_custom {
            words.push("CUSTOM");
            words.extend(subclasses);
        }
        Some(words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_stock_freeswitch() {
        let cfg: EslConfig = toml::from_str("").unwrap();
        assert_eq!(cfg, EslConfig::default());
        assert_eq!(cfg.address, "127.0.0.1:8021");
        assert_eq!(cfg.password.expose(), "ClueCon");
        assert!(cfg.validate().is_ok());
    }

    #[test]
    fn toml_table_overrides_fields_and_rejects_typos() {
        let cfg: EslConfig = toml::from_str(
            "address = \"10.0.0.5:8021\"\npassword = \"s3cret\"\nevents = [\"DTMF\"]\ncommand_timeout_ms = 250",
        )
        .unwrap();
        assert_eq!(cfg.address, "10.0.0.5:8021");
        assert_eq!(cfg.events, vec!["DTMF"]);
        assert_eq!(cfg.command_timeout_ms, 250);
        assert_eq!(cfg.reconnect_delay_ms, 1000);
        assert!(toml::from_str::<EslConfig>("adress = \"x\"").is_err());
    }

    #[test]
    fn subscription_puts_custom_subclasses_last() {
        let cfg = EslConfig::default();
        assert_eq!(
            cfg.subscription_command().unwrap(),
            "event plain DTMF CHANNEL_HANGUP BACKGROUND_JOB CUSTOM mod_audio_stream::play mod_audio_fork::play_audio"
        );
        let only_subclass = EslConfig {
            events: vec!["a::b".into()],
            ..EslConfig::default()
        };
        assert_eq!(
            only_subclass.subscription_command().unwrap(),
            "event plain CUSTOM a::b"
        );
        let none = EslConfig {
            events: vec![],
            ..EslConfig::default()
        };
        assert_eq!(none.subscription_command(), None);
    }

    #[test]
    fn validate_names_the_bad_field_without_the_password() {
        let cfg = EslConfig {
            password: Secret::new("pa\nss"),
            ..EslConfig::default()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("password"), "{err}");
        assert!(!err.contains("pa\nss"));
        let cfg = EslConfig {
            events: vec!["DTMF CHANNEL_HANGUP".into()],
            ..EslConfig::default()
        };
        assert!(cfg.validate().is_err());
        let cfg = EslConfig {
            reconnect_delay_ms: 0,
            ..EslConfig::default()
        };
        assert!(cfg.validate().is_err());
    }
}
