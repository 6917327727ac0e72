//! LGPD: consent, hashed phone numbers and retention.
//!
//! - Consent: a call whose sender said `consent: false` is never processed. One that said
//!   nothing is processed unless consent is required (the tenant's `require_consent`, else
//!   `[privacy] require_consent`).
//! - Phone numbers are stored as keyed hashes when `HASH_PHONE_NUMBERS=true`: HMAC-SHA256
//!   under `INSIGHTS_PHONE_HASH_KEY`, so the same number always gives the same hash (calls
//!   from one customer can still be found together) but a list of every possible number
//!   cannot undo it without the key (a bare SHA-256 of a phone number can be).
//! - Retention ([`retention`]): media and transcripts of calls older than the tenant's
//!   `retention_days` (else `RETENTION_DAYS`) are deleted, and what was deleted is logged.

pub mod retention;

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use voice_core::config::Secret;

/// Marks a stored number as a hash rather than a number.
pub const HASH_PREFIX: &str = "h:";
/// Shortest phone hash key accepted.
pub const MIN_HASH_KEY_CHARS: usize = 16;

/// `[privacy]`; the environment variables of seed 000 override it (see [`PrivacySettings::from_env`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacySettings {
    /// Process a call only when its sender said `consent: true`.
    pub require_consent: bool,
    /// Store phone numbers as keyed hashes (`HASH_PHONE_NUMBERS`).
    pub hash_phone_numbers: bool,
    /// The hash key (`INSIGHTS_PHONE_HASH_KEY`); environment only.
    #[serde(skip)]
    pub phone_hash_key: Secret,
    /// Delete media and transcripts after this many days (`RETENTION_DAYS`); 0: keep.
    pub retention_days: u32,
    /// How often the retention job runs; 0: never here (another instance does it).
    pub retention_every_secs: u64,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self {
            require_consent: false,
            hash_phone_numbers: false,
            phone_hash_key: Secret::new(""),
            retention_days: 0,
            retention_every_secs: 3600,
        }
    }
}

fn truthy(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

impl PrivacySettings {
    /// Applies `HASH_PHONE_NUMBERS`, `RETENTION_DAYS`, `REQUIRE_CONSENT` and
    /// `INSIGHTS_PHONE_HASH_KEY` from `env`, then checks the result.
    pub fn with_env(mut self, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        if let Some(v) = env("HASH_PHONE_NUMBERS") {
            self.hash_phone_numbers =
                truthy(&v).ok_or("HASH_PHONE_NUMBERS must be true or false")?;
        }
        if let Some(v) = env("REQUIRE_CONSENT") {
            self.require_consent = truthy(&v).ok_or("REQUIRE_CONSENT must be true or false")?;
        }
        if let Some(v) = env("RETENTION_DAYS") {
            let v = v.trim();
            self.retention_days = if v.is_empty() {
                0
            } else {
                v.parse()
                    .map_err(|_| "RETENTION_DAYS must be a whole number of days")?
            };
        }
        if let Some(v) = env("INSIGHTS_PHONE_HASH_KEY") {
            self.phone_hash_key = Secret::new(v.trim());
        }
        self.validate()?;
        Ok(self)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.hash_phone_numbers
            && self.phone_hash_key.expose().chars().count() < MIN_HASH_KEY_CHARS
        {
            return Err(format!(
                "HASH_PHONE_NUMBERS is on: set INSIGHTS_PHONE_HASH_KEY (at least \
                 {MIN_HASH_KEY_CHARS} characters), the key of the phone hashes"
            ));
        }
        if self.retention_days > 36_500 {
            return Err("retention_days: at most 36500".into());
        }
        Ok(())
    }

    /// Whether a call with this `consent` may be processed, under the tenant's rule
    /// (`None`: the service's).
    pub fn may_process(&self, consent: Option<bool>, tenant_requires: Option<bool>) -> bool {
        match consent {
            Some(given) => given,
            None => !tenant_requires.unwrap_or(self.require_consent),
        }
    }

    /// The number as it is stored: itself, or its keyed hash when hashing is on. Empty stays
    /// empty; an already hashed value is kept.
    pub fn store_number(&self, number: &str) -> String {
        if !self.hash_phone_numbers || number.is_empty() || is_hashed(number) {
            return number.to_string();
        }
        hash_number(&self.phone_hash_key, number)
    }
}

/// `h:` and the hex HMAC-SHA256 of the number's digits (and a leading `+`), so that
/// `+55 11 99999-9999` and `+5511999999999` hash alike.
pub fn hash_number(key: &Secret, number: &str) -> String {
    let normal: String = number
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(normal.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{HASH_PREFIX}{hex}")
}

pub fn is_hashed(stored: &str) -> bool {
    stored.starts_with(HASH_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn consent_false_is_never_processed_and_silence_follows_the_policy() {
        let p = PrivacySettings::default();
        assert!(p.may_process(Some(true), Some(true)));
        assert!(!p.may_process(Some(false), Some(false)));
        assert!(p.may_process(None, None));
        assert!(!p.may_process(None, Some(true)));
        let strict = PrivacySettings {
            require_consent: true,
            ..PrivacySettings::default()
        };
        assert!(!strict.may_process(None, None));
        assert!(
            strict.may_process(None, Some(false)),
            "the tenant's rule wins"
        );
    }

    #[test]
    fn numbers_hash_alike_whatever_their_formatting_and_not_without_the_key() {
        let p = PrivacySettings::default()
            .with_env(env(&[
                ("HASH_PHONE_NUMBERS", "true"),
                ("INSIGHTS_PHONE_HASH_KEY", "a-key-of-enough-length"),
            ]))
            .unwrap();
        let a = p.store_number("+55 11 99999-9999");
        assert_eq!(a, p.store_number("+5511999999999"));
        assert!(is_hashed(&a));
        assert_eq!(a.len(), 2 + 64);
        assert!(!a.contains("9999"));
        assert_eq!(p.store_number(&a), a, "a hash is not hashed again");
        assert_eq!(p.store_number(""), "");
        let other = hash_number(&Secret::new("another-key-of-length"), "+5511999999999");
        assert_ne!(a, other);
        let plain = PrivacySettings::default();
        assert_eq!(plain.store_number("+5511999999999"), "+5511999999999");
    }

    #[test]
    fn hashing_without_a_key_and_bad_values_are_refused() {
        let e = PrivacySettings::default()
            .with_env(env(&[("HASH_PHONE_NUMBERS", "true")]))
            .unwrap_err();
        assert!(e.contains("INSIGHTS_PHONE_HASH_KEY"), "{e}");
        assert!(PrivacySettings::default()
            .with_env(env(&[("RETENTION_DAYS", "ten")]))
            .is_err());
        assert!(PrivacySettings::default()
            .with_env(env(&[("HASH_PHONE_NUMBERS", "maybe")]))
            .is_err());
        let p = PrivacySettings::default()
            .with_env(env(&[("RETENTION_DAYS", "90")]))
            .unwrap();
        assert_eq!(p.retention_days, 90);
    }
}
