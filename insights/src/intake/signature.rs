//! Webhook signatures: HMAC-SHA256 keyed with `INSIGHTS_WEBHOOK_SECRET`, hex in `x-signature`
//! (an optional `sha256=` prefix is accepted, as GitHub-style senders write it).
//!
//! Without `x-timestamp` the signed text is the raw body. With it (unix seconds), the signed
//! text is `<x-timestamp>.<raw body>` and the timestamp must be within the tolerance of now,
//! so a captured request cannot be replayed later. The tag is checked in constant time
//! (hmac's `verify_slice`) before the timestamp is looked at.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use voice_core::config::Secret;

/// The environment variable holding the signing secret.
pub const SECRET_ENV: &str = "INSIGHTS_WEBHOOK_SECRET";
/// Shortest secret accepted.
pub const MIN_SECRET_CHARS: usize = 16;

/// Why a webhook's signature was refused (each answers 401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    MissingSignature,
    MalformedSignature,
    BadSignature,
    MissingTimestamp,
    MalformedTimestamp,
    StaleTimestamp { skew_secs: i64 },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::MissingSignature => "missing_signature",
            Refusal::MalformedSignature | Refusal::BadSignature => "bad_signature",
            Refusal::MissingTimestamp => "missing_timestamp",
            Refusal::MalformedTimestamp => "bad_timestamp",
            Refusal::StaleTimestamp { .. } => "stale_timestamp",
        }
    }

    pub fn message(&self, tolerance_secs: u64) -> String {
        match self {
            Refusal::MissingSignature => {
                "missing x-signature: send the hex HMAC-SHA256 of the raw body".into()
            }
            Refusal::MalformedSignature => {
                "x-signature must be 64 hex digits, optionally prefixed with sha256=".into()
            }
            Refusal::BadSignature => "x-signature does not match the body".into(),
            Refusal::MissingTimestamp => {
                "missing x-timestamp (unix seconds): this service requires it".into()
            }
            Refusal::MalformedTimestamp => "x-timestamp must be unix seconds".into(),
            Refusal::StaleTimestamp { skew_secs } => format!(
                "x-timestamp is {skew_secs} s from now, more than the {tolerance_secs} s \
                 allowed (a replay, or a clock to fix)"
            ),
        }
    }
}

/// The signing key. Never shown (`Debug` says only whether it is set).
#[derive(Clone)]
pub struct WebhookSecret(Secret);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

impl WebhookSecret {
    /// `secret` (at least [`MIN_SECRET_CHARS`]); `Ok(None)` when empty.
    pub fn new(secret: &Secret) -> Result<Option<Self>, String> {
        let text = secret.expose().trim();
        if text.is_empty() {
            return Ok(None);
        }
        if text.chars().count() < MIN_SECRET_CHARS {
            return Err(format!(
                "{SECRET_ENV} must have at least {MIN_SECRET_CHARS} characters"
            ));
        }
        Ok(Some(Self(Secret::new(text))))
    }

    /// From [`SECRET_ENV`].
    pub fn from_env() -> Result<Option<Self>, String> {
        Self::new(&Secret::new(std::env::var(SECRET_ENV).unwrap_or_default()))
    }

    fn mac(&self, timestamp: Option<&str>, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        if let Some(ts) = timestamp {
            mac.update(ts.as_bytes());
            mac.update(b".");
        }
        mac.update(body);
        mac
    }

    /// The hex signature of `body` (with `timestamp`, of `<timestamp>.<body>`): what a sender
    /// puts in `x-signature`.
    pub fn sign(&self, timestamp: Option<&str>, body: &[u8]) -> String {
        hex(&self.mac(timestamp, body).finalize().into_bytes())
    }

    /// Checks `signature` (the `x-signature` header) over `body`, then `timestamp` (the
    /// `x-timestamp` header) against `now` (unix seconds).
    pub fn verify(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
        check: TimestampCheck,
    ) -> Result<(), Refusal> {
        let signature = signature
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(Refusal::MissingSignature)?;
        let hex_digits = signature
            .strip_prefix("sha256=")
            .or_else(|| signature.strip_prefix("SHA256="))
            .unwrap_or(signature);
        let tag = unhex(hex_digits).ok_or(Refusal::MalformedSignature)?;
        let timestamp = timestamp.map(str::trim).filter(|t| !t.is_empty());
        self.mac(timestamp, body)
            .verify_slice(&tag)
            .map_err(|_| Refusal::BadSignature)?;
        match timestamp {
            None if check.required => Err(Refusal::MissingTimestamp),
            None => Ok(()),
            Some(ts) => {
                let at: i64 = ts.parse().map_err(|_| Refusal::MalformedTimestamp)?;
                let skew_secs = check.now.saturating_sub(at);
                if skew_secs.unsigned_abs() > check.tolerance_secs {
                    return Err(Refusal::StaleTimestamp { skew_secs });
                }
                Ok(())
            }
        }
    }
}

/// How `x-timestamp` is judged.
#[derive(Debug, Clone, Copy)]
pub struct TimestampCheck {
    /// Unix seconds.
    pub now: i64,
    pub tolerance_secs: u64,
    pub required: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 bytes from 64 hex digits (either case); `None` otherwise.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> WebhookSecret {
        WebhookSecret::new(&Secret::new("webhook-secret-0123456789"))
            .unwrap()
            .unwrap()
    }

    const CHECK: TimestampCheck = TimestampCheck {
        now: 1_700_000_000,
        tolerance_secs: 300,
        required: false,
    };

    #[test]
    fn a_known_vector_matches() {
        // RFC 4231 test case 2: key "Jefe".
        let key = WebhookSecret(Secret::new("Jefe"));
        assert_eq!(
            key.sign(None, b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signatures_are_checked_with_and_without_prefix_and_timestamp() {
        let s = secret();
        let body = br#"{"call_id":"a"}"#;
        let sig = s.sign(None, body);
        assert_eq!(s.verify(Some(&sig), None, body, CHECK), Ok(()));
        let prefixed = format!("sha256={}", sig.to_uppercase());
        assert_eq!(s.verify(Some(&prefixed), None, body, CHECK), Ok(()));
        assert_eq!(
            s.verify(Some(&sig), None, b"{\"call_id\":\"b\"}", CHECK),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            s.verify(None, None, body, CHECK),
            Err(Refusal::MissingSignature)
        );
        assert_eq!(
            s.verify(Some("abc"), None, body, CHECK),
            Err(Refusal::MalformedSignature)
        );
        let other = WebhookSecret::new(&Secret::new("another-secret-0123456789"))
            .unwrap()
            .unwrap();
        assert_eq!(
            other.verify(Some(&sig), None, body, CHECK),
            Err(Refusal::BadSignature)
        );

        let ts = "1700000100";
        let signed = s.sign(Some(ts), body);
        assert_eq!(s.verify(Some(&signed), Some(ts), body, CHECK), Ok(()));
        // The body-only signature does not stand for a timestamped request.
        assert_eq!(
            s.verify(Some(&sig), Some(ts), body, CHECK),
            Err(Refusal::BadSignature)
        );
        let old = "1699999000";
        let signed_old = s.sign(Some(old), body);
        assert_eq!(
            s.verify(Some(&signed_old), Some(old), body, CHECK),
            Err(Refusal::StaleTimestamp { skew_secs: 1000 })
        );
        let required = TimestampCheck {
            required: true,
            ..CHECK
        };
        assert_eq!(
            s.verify(Some(&sig), None, body, required),
            Err(Refusal::MissingTimestamp)
        );
        let bad = s.sign(Some("soon"), body);
        assert_eq!(
            s.verify(Some(&bad), Some("soon"), body, CHECK),
            Err(Refusal::MalformedTimestamp)
        );
    }

    #[test]
    fn short_secrets_are_refused_and_secrets_never_show() {
        assert!(WebhookSecret::new(&Secret::new("short")).is_err());
        assert!(WebhookSecret::new(&Secret::new("  ")).unwrap().is_none());
        assert!(!format!("{:?}", secret()).contains("0123"));
    }
}
