//! What a storage call can fail with, and how object_store's errors map onto it: transient
//! (network, timeouts, 5xx) apart from permanent, credentials scrubbed from every message.

use std::error::Error as _;

use object_store::client::{HttpError, HttpErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no such object")]
    NotFound,
    #[error("invalid storage key: {0}")]
    InvalidKey(String),
    #[error("invalid range: {0}")]
    InvalidRange(String),
    #[error("object of {size} bytes is larger than the {max} bytes allowed")]
    TooLarge { size: u64, max: u64 },
    /// Worth retrying later: the store could not be reached, timed out or answered 5xx.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage failed: {0}")]
    Failed(String),
}

/// Maps an object_store error, replacing every non-empty `secrets` value by `***`.
pub(crate) fn from_object_store(e: object_store::Error, secrets: &[&str]) -> StorageError {
    match e {
        object_store::Error::NotFound { .. } => StorageError::NotFound,
        object_store::Error::InvalidPath { source } => {
            StorageError::InvalidKey(scrub(&source.to_string(), secrets))
        }
        other => {
            let message = scrub(&chain(&other), secrets);
            if is_transient(&other) {
                StorageError::Unavailable(message)
            } else {
                StorageError::Failed(message)
            }
        }
    }
}

/// A local I/O error (reading the file to upload).
pub(crate) fn from_io(what: &str, e: std::io::Error) -> StorageError {
    match e.kind() {
        std::io::ErrorKind::NotFound => StorageError::Failed(format!("{what}: file not found")),
        _ => StorageError::Failed(format!("{what}: {e}")),
    }
}

/// The error and its causes, as one line (object_store's top message hides the cause).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

fn is_transient(e: &object_store::Error) -> bool {
    let mut source = e.source();
    while let Some(cause) = source {
        if let Some(http) = cause.downcast_ref::<HttpError>() {
            if matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            ) {
                return true;
            }
        }
        // object_store wraps its HttpError transparently, so the chain goes straight from
        // its private request error to the client's error.
        if let Some(client) = cause.downcast_ref::<reqwest::Error>() {
            if client.is_connect() || client.is_timeout() || client.is_request() || client.is_body()
            {
                return true;
            }
        }
        // object_store's status error type is private; its text is stable:
        // "Server returned non-2xx status code: 503 Service Unavailable: ...".
        let text = cause.to_string();
        if text.contains("status code: 5") || text.contains("status code: 429") {
            return true;
        }
        source = cause.source();
    }
    false
}

fn scrub(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_string(), |t, s| t.replace(s, "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed_from_messages() {
        let e = object_store::Error::Generic {
            store: "S3",
            source: "denied for AKIASECRET with sig-key".into(),
        };
        let mapped = from_object_store(e, &["AKIASECRET", "sig-key", ""]);
        let text = mapped.to_string();
        assert!(matches!(mapped, StorageError::Failed(_)));
        assert!(
            !text.contains("AKIASECRET") && !text.contains("sig-key"),
            "{text}"
        );
        assert!(text.contains("***"));
    }
}
