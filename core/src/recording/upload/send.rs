//! One upload: the call's audio streamed from disk as the body, its facts in
//! `x-call-metadata`, signed as call-insights checks (`insights/src/intake/upload.rs`).

use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::metadata::{domain_for, Summary};
use super::sign::{hex, signature};
use super::UploadSource;
use crate::config::Secret;

const CHUNK: usize = 64 * 1024;
/// Most of a refusal's body kept as its reason.
const MAX_REASON_CHARS: usize = 300;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// call-insights has the call (now or from an earlier attempt).
    Accepted { audio: PathBuf },
    /// Will never work as it is: set aside with the reason.
    Permanent(String),
    /// Worth trying again later.
    Retry(String),
}

pub struct Request<'a> {
    pub client: &'a reqwest::Client,
    pub url: &'a str,
    pub secret: &'a Secret,
    pub fallback_domain: &'a str,
    pub source: UploadSource,
}

impl Request<'_> {
    pub async fn send(&self, summary_path: &Path) -> (Option<String>, Outcome) {
        let summary = match tokio::fs::read(summary_path).await {
            Ok(bytes) => match Summary::parse(&bytes) {
                Ok(s) => s,
                Err(why) => return (None, Outcome::Permanent(why)),
            },
            Err(e) => return (None, Outcome::Retry(format!("reading the summary: {e}"))),
        };
        let call_id = Some(summary.call_id.clone());
        (call_id, self.send_call(summary_path, &summary).await)
    }

    async fn send_call(&self, summary_path: &Path, summary: &Summary) -> Outcome {
        // The summary names a file beside it; anything else is not ours to send.
        let name = Path::new(&summary.audio_file);
        if name.file_name() != Some(name.as_os_str()) {
            return Outcome::Permanent(format!(
                "audio file name {:?} is not a plain name",
                summary.audio_file
            ));
        }
        let audio = summary_path.with_file_name(name);
        let content_type = match audio.extension().and_then(|e| e.to_str()) {
            Some("wav") => "audio/wav",
            Some("opus" | "ogg") => "audio/ogg",
            _ => {
                return Outcome::Permanent(format!("unknown audio format: {}", summary.audio_file))
            }
        };
        let body_sha256 = match sha256_of(&audio).await {
            Ok(h) => h,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Outcome::Permanent(format!("no audio file {}", summary.audio_file))
            }
            Err(e) => return Outcome::Retry(format!("reading the audio: {e}")),
        };
        let json = summary.webhook_json(self.source.as_str());
        let metadata = match serde_json::to_vec(&json) {
            Ok(bytes) => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
            Err(e) => return Outcome::Permanent(format!("metadata: {e}")),
        };
        let timestamp = chrono::Utc::now().timestamp();
        let sig = signature(
            self.secret.expose().as_bytes(),
            timestamp,
            &metadata,
            &body_sha256,
        );
        let file = match tokio::fs::File::open(&audio).await {
            Ok(f) => f,
            Err(e) => return Outcome::Retry(format!("opening the audio: {e}")),
        };
        let domain = domain_for(&summary.tenant, self.fallback_domain);
        let endpoint = format!(
            "{}/webhooks/recording",
            self.url.trim().trim_end_matches('/')
        );
        let response = self
            .client
            .post(endpoint)
            .query(&[
                ("domain", domain.as_str()),
                ("source", self.source.as_str()),
            ])
            .header("content-type", content_type)
            .header("x-call-metadata", metadata)
            .header("x-timestamp", timestamp.to_string())
            .header("x-signature", sig)
            .body(reqwest::Body::wrap_stream(file_stream(file)))
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(format!("no answer: {}", e.without_url())),
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Accepted { audio };
        }
        let text = response.text().await.unwrap_or_default();
        let reason: String = format!("{status}: {}", text.trim())
            .chars()
            .take(MAX_REASON_CHARS)
            .collect();
        let code = status.as_u16();
        if status.is_client_error() && code != 408 && code != 429 {
            Outcome::Permanent(reason)
        } else {
            Outcome::Retry(reason)
        }
    }
}

/// Hex SHA-256 of a file, read in chunks (a recording of an hour is hundreds of MB).
async fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// The file as a stream of chunks, for a streamed request body.
fn file_stream(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}
