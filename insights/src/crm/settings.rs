//! `[crm]`: whether processed calls are pushed, and how to reach Pipedrive.

use serde::Deserialize;
use voice_core::config::Secret;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrmSettings {
    /// `ENABLE_CRM_PUSH` overrides it.
    pub enabled: bool,
    pub pipedrive: PipedriveSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipedriveSettings {
    /// The API host; the client adds `/v1/…` and `/api/v2/…`.
    pub url: String,
    /// `PIPEDRIVE_API_TOKEN` wins when set.
    pub api_token: Secret,
    pub timeout_secs: u64,
    /// The Pipedrive user who owns the activities and writes the notes; `None`: the
    /// token's user.
    pub user_id: Option<u64>,
}

impl Default for PipedriveSettings {
    fn default() -> Self {
        Self {
            url: "https://api.pipedrive.com".into(),
            api_token: Secret::default(),
            timeout_secs: 15,
            user_id: None,
        }
    }
}

impl CrmSettings {
    /// Applies `ENABLE_CRM_PUSH` and `PIPEDRIVE_API_TOKEN`, then checks the result.
    pub fn with_env(mut self, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        if let Some(v) = env("ENABLE_CRM_PUSH") {
            self.enabled = match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" | "" => false,
                _ => return Err("ENABLE_CRM_PUSH must be true or false".into()),
            };
        }
        if let Some(token) = env("PIPEDRIVE_API_TOKEN").filter(|t| !t.trim().is_empty()) {
            self.pipedrive.api_token = Secret::new(token.trim());
        }
        self.validate()?;
        Ok(self)
    }

    /// A push that is on needs a token and an http(s) URL.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        let p = &self.pipedrive;
        if p.api_token.is_empty() {
            return Err(
                "CRM push is on but there is no Pipedrive token: set PIPEDRIVE_API_TOKEN".into(),
            );
        }
        if !(p.url.starts_with("http://") || p.url.starts_with("https://")) {
            return Err(format!(
                "[crm.pipedrive] url must be http(s), not {:?}",
                p.url
            ));
        }
        if !(1..=300).contains(&p.timeout_secs) {
            return Err("[crm.pipedrive] timeout_secs must be 1..=300".into());
        }
        if p.user_id == Some(0) {
            return Err("[crm.pipedrive] user_id must be a positive id".into());
        }
        Ok(())
    }
}
