//! `[storage]`: where recordings are kept (local disk or an S3-compatible store).

use std::path::PathBuf;

use serde::Deserialize;
use voice_core::config::Secret;

/// Environment variables read when the configured S3 credentials are empty (the AWS
/// convention, so the usual deployment tooling works unchanged).
pub const AWS_ACCESS_KEY_ID_ENV: &str = "AWS_ACCESS_KEY_ID";
pub const AWS_SECRET_ACCESS_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Local,
    S3,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::S3 => "s3",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub backend: Backend,
    /// Root directory of the local backend (created at start).
    pub local_dir: PathBuf,
    pub s3: S3Settings,
    /// Largest recording accepted (upload, download, `put`/`put_file`).
    pub max_recording_bytes: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    pub bucket: String,
    pub region: String,
    /// Empty: AWS itself; else e.g. `http://127.0.0.1:9000` (MinIO) — path-style requests.
    pub endpoint: String,
    /// Empty: `AWS_ACCESS_KEY_ID`; both empty: the instance's role (AWS default chain).
    pub access_key_id: Secret,
    /// Empty: `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Secret,
    /// Allow a plain `http://` endpoint (a local MinIO); never for AWS.
    pub allow_http: bool,
    /// Prepended to every key (`<prefix>/recordings/...`); empty: none.
    pub prefix: String,
    /// Connecting gives up after this long (seconds).
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// One request (one part of a multipart upload) gives up after this long (seconds).
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Retries of a failed request (network errors, 5xx) before it is reported.
    #[serde(default = "default_max_retries")]
    pub max_retries: usize,
}

fn default_connect_timeout_secs() -> u64 {
    5
}
fn default_request_timeout_secs() -> u64 {
    120
}
fn default_max_retries() -> usize {
    3
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            bucket: String::new(),
            region: "us-east-1".into(),
            endpoint: String::new(),
            access_key_id: Secret::default(),
            secret_access_key: Secret::default(),
            allow_http: false,
            prefix: String::new(),
            connect_timeout_secs: default_connect_timeout_secs(),
            request_timeout_secs: default_request_timeout_secs(),
            max_retries: default_max_retries(),
        }
    }
}

impl S3Settings {
    /// The configured credentials, else those of `env` (AWS's variable names).
    pub fn credentials(&self, env: impl Fn(&str) -> Option<String>) -> (Secret, Secret) {
        let pick = |configured: &Secret, var: &str| {
            if configured.is_empty() {
                Secret::new(env(var).map(|v| v.trim().to_string()).unwrap_or_default())
            } else {
                configured.clone()
            }
        };
        (
            pick(&self.access_key_id, AWS_ACCESS_KEY_ID_ENV),
            pick(&self.secret_access_key, AWS_SECRET_ACCESS_KEY_ENV),
        )
    }
}

impl StorageSettings {
    /// Checked at load: a reason naming the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_recording_bytes == 0 {
            return Err("storage.max_recording_bytes must be at least 1".into());
        }
        match self.backend {
            Backend::Local if self.local_dir.as_os_str().is_empty() => {
                Err("storage.local_dir must be set for the local backend".into())
            }
            Backend::Local => Ok(()),
            Backend::S3 => {
                let s3 = &self.s3;
                if s3.bucket.trim().is_empty() {
                    return Err("storage.s3.bucket must be set for the s3 backend".into());
                }
                if s3.region.trim().is_empty() {
                    return Err("storage.s3.region must be set".into());
                }
                let scheme_ok = s3.endpoint.is_empty()
                    || s3.endpoint.starts_with("https://")
                    || s3.endpoint.starts_with("http://");
                if !scheme_ok {
                    return Err("storage.s3.endpoint must be an http(s):// URL".into());
                }
                if s3.endpoint.starts_with("http://") && !s3.allow_http {
                    return Err(
                        "storage.s3.endpoint is plain http: set storage.s3.allow_http = true"
                            .into(),
                    );
                }
                if !s3.prefix.is_empty() {
                    super::key::validate_key(&s3.prefix)
                        .map_err(|e| format!("storage.s3.prefix: {e}"))?;
                }
                if s3.request_timeout_secs == 0 || s3.connect_timeout_secs == 0 {
                    return Err("storage.s3 timeouts must be at least 1 second".into());
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_credentials_fall_back_to_the_aws_environment() {
        let s = S3Settings::default();
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKIAENV".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("env-secret".to_string()),
            _ => None,
        };
        let (id, secret) = s.credentials(env);
        assert_eq!(id.expose(), "AKIAENV");
        assert_eq!(secret.expose(), "env-secret");

        let s = S3Settings {
            access_key_id: Secret::new("AKIACONF"),
            secret_access_key: Secret::new("conf-secret"),
            ..S3Settings::default()
        };
        let (id, secret) = s.credentials(env);
        assert_eq!(id.expose(), "AKIACONF");
        assert_eq!(secret.expose(), "conf-secret");
        assert!(!format!("{s:?}").contains("conf-secret"));
    }
}
