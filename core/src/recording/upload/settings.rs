//! `[recording.upload]` settings.

use std::fmt;

use serde::Deserialize;

use crate::config::Secret;

/// The environment variable holding the signing secret (the one call-insights checks with).
pub const SECRET_ENV: &str = "INSIGHTS_WEBHOOK_SECRET";

#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadSettings {
    /// call-insights' base URL (`https://insights.example.com`); empty: no uploads.
    pub url: String,
    /// Signing secret; `INSIGHTS_WEBHOOK_SECRET`, when set, is used instead.
    pub secret: Secret,
    /// The tenant sent when a call's tenant is not a domain name or uuid (see
    /// `upload::metadata::domain_for`). Empty: such calls are sent under their own tenant.
    pub domain: String,
    /// How often the recordings folder is looked through for finished calls.
    pub scan_secs: u64,
    /// Uploads at the same time.
    pub concurrency: usize,
    /// Longest one upload may take, body included.
    pub timeout_secs: u64,
    /// Delete a call's files once call-insights has them.
    pub delete_after_upload: bool,
}

impl Default for UploadSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            secret: Secret::default(),
            domain: String::new(),
            scan_secs: 10,
            concurrency: 2,
            timeout_secs: 300,
            delete_after_upload: false,
        }
    }
}

/// The secret is never shown.
impl fmt::Debug for UploadSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadSettings")
            .field("url", &self.url)
            .field("secret", &self.secret)
            .field("domain", &self.domain)
            .field("scan_secs", &self.scan_secs)
            .field("concurrency", &self.concurrency)
            .field("timeout_secs", &self.timeout_secs)
            .field("delete_after_upload", &self.delete_after_upload)
            .finish()
    }
}

impl UploadSettings {
    pub fn is_enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// The secret to sign with: the environment's, else the configured one.
    pub(crate) fn resolved_secret(&self) -> Secret {
        match std::env::var(SECRET_ENV) {
            Ok(v) if !v.trim().is_empty() => Secret::new(v.trim()),
            _ => Secret::new(self.secret.expose().trim()),
        }
    }

    /// Checks the values (only when uploads are on).
    pub fn validate(&self) -> Result<(), String> {
        if !self.is_enabled() {
            return Ok(());
        }
        let url = self.url.trim().to_ascii_lowercase();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err("upload.url must start with http:// or https://".into());
        }
        if !(1..=3600).contains(&self.scan_secs) {
            return Err(format!(
                "upload.scan_secs {} is outside 1..=3600",
                self.scan_secs
            ));
        }
        if !(1..=64).contains(&self.concurrency) {
            return Err(format!(
                "upload.concurrency {} is outside 1..=64",
                self.concurrency
            ));
        }
        if self.timeout_secs == 0 {
            return Err("upload.timeout_secs must be above 0".into());
        }
        Ok(())
    }
}
