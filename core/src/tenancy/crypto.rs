//! Provider credentials at rest: AES-256-GCM with a key from the environment.
//!
//! Sealed form: `[version = 1][nonce: 12 bytes][ciphertext + 16-byte tag]`. The tenant and
//! the provider instance are the associated data, so a ciphertext copied onto another row (or
//! another tenant's row) does not open. The plaintext is a JSON object of secrets
//! (`{"api_key": "…"}`); it only ever lives in [`Credentials`], whose `Debug` shows names,
//! never values.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use uuid::Uuid;

use crate::config::Secret;

/// The environment variable that holds the key: 32 bytes, base64.
pub const KEY_ENV: &str = "VOICE_CREDENTIALS_KEY";

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
/// Secrets per instance and bytes per secret: credentials are keys and tokens, not files.
const MAX_SECRETS: usize = 16;
const MAX_SECRET_BYTES: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("{KEY_ENV} is not set: provider credentials cannot be stored or read")]
    NoKey,
    #[error("{KEY_ENV} must be 32 bytes in base64 (`openssl rand -base64 32`)")]
    BadKey,
    #[error("credentials do not open with this key (wrong {KEY_ENV}, or the row was altered)")]
    Open,
    #[error("credentials: {0}")]
    Invalid(String),
}

/// The key that seals and opens credentials. `Debug` never shows it.
#[derive(Clone)]
pub struct CredentialKey {
    cipher: Aes256Gcm,
}

impl fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialKey(..)")
    }
}

impl CredentialKey {
    /// From base64 text (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| CryptoError::BadKey)?;
        if bytes.len() != 32 {
            return Err(CryptoError::BadKey);
        }
        Ok(Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
        })
    }

    /// From [`KEY_ENV`]; `Err(NoKey)` when unset or empty.
    pub fn from_env() -> Result<Self, CryptoError> {
        match std::env::var(KEY_ENV) {
            Ok(v) if !v.trim().is_empty() => Self::from_base64(&v),
            _ => Err(CryptoError::NoKey),
        }
    }

    /// Seals `credentials` for provider instance `instance` of `tenant`.
    pub fn seal(
        &self,
        tenant: Uuid,
        instance: Uuid,
        credentials: &Credentials,
    ) -> Result<Vec<u8>, CryptoError> {
        let plain = serde_json::to_vec(&credentials.exposed())
            .map_err(|e| CryptoError::Invalid(e.to_string()))?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = associated_data(tenant, instance);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Invalid("encryption failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`CredentialKey::seal`] made for the same tenant and instance.
    pub fn open(
        &self,
        tenant: Uuid,
        instance: Uuid,
        sealed: &[u8],
    ) -> Result<Credentials, CryptoError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(CryptoError::Open);
        }
        let (nonce, body) = sealed[1..].split_at(NONCE_LEN);
        let aad = associated_data(tenant, instance);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Open)?;
        let map: BTreeMap<String, String> =
            serde_json::from_slice(&plain).map_err(|_| CryptoError::Open)?;
        Credentials::new(map)
    }
}

fn associated_data(tenant: Uuid, instance: Uuid) -> [u8; 32] {
    let mut aad = [0u8; 32];
    aad[..16].copy_from_slice(tenant.as_bytes());
    aad[16..].copy_from_slice(instance.as_bytes());
    aad
}

/// A provider instance's secrets by name (`api_key`, …). `Debug` lists names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    secrets: BTreeMap<String, Secret>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.secrets.keys()).finish()
    }
}

impl Credentials {
    /// Checks names (`[a-z0-9_]{1,64}`), sizes and count.
    pub fn new(secrets: BTreeMap<String, String>) -> Result<Self, CryptoError> {
        if secrets.len() > MAX_SECRETS {
            return Err(CryptoError::Invalid(format!(
                "at most {MAX_SECRETS} secrets per provider instance"
            )));
        }
        let mut out = BTreeMap::new();
        for (name, value) in secrets {
            let name_ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !name_ok {
                return Err(CryptoError::Invalid(format!(
                    "secret name {name:?} must be 1-64 of a-z, 0-9 and _"
                )));
            }
            if value.len() > MAX_SECRET_BYTES {
                return Err(CryptoError::Invalid(format!(
                    "secret {name:?} is longer than {MAX_SECRET_BYTES} bytes"
                )));
            }
            out.insert(name, Secret::new(value));
        }
        Ok(Self { secrets: out })
    }

    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.secrets.get(name)
    }

    /// The names of the secrets held (safe to show).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.secrets.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    fn exposed(&self) -> BTreeMap<&str, &str> {
        self.secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CredentialKey {
        CredentialKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([7u8; 32]))
            .unwrap()
    }

    fn creds() -> Credentials {
        Credentials::new(BTreeMap::from([(
            "api_key".into(),
            "sk-very-secret".into(),
        )]))
        .unwrap()
    }

    #[test]
    fn sealed_credentials_open_only_for_their_tenant_and_instance() {
        let (t, i) = (Uuid::new_v4(), Uuid::new_v4());
        let sealed = key().seal(t, i, &creds()).unwrap();
        assert!(!sealed
            .windows(b"sk-very-secret".len())
            .any(|w| w == b"sk-very-secret"));
        assert_eq!(key().open(t, i, &sealed).unwrap(), creds());
        assert_eq!(
            key().open(Uuid::new_v4(), i, &sealed),
            Err(CryptoError::Open)
        );
        assert_eq!(
            key().open(t, Uuid::new_v4(), &sealed),
            Err(CryptoError::Open)
        );
        let other = CredentialKey::from_base64(
            &base64::engine::general_purpose::STANDARD.encode([8u8; 32]),
        )
        .unwrap();
        assert_eq!(other.open(t, i, &sealed), Err(CryptoError::Open));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(key().open(t, i, &tampered), Err(CryptoError::Open));
        assert_eq!(key().open(t, i, &sealed[..10]), Err(CryptoError::Open));
    }

    #[test]
    fn two_seals_of_the_same_secret_differ() {
        let (t, i) = (Uuid::new_v4(), Uuid::new_v4());
        assert_ne!(
            key().seal(t, i, &creds()).unwrap(),
            key().seal(t, i, &creds()).unwrap()
        );
    }

    #[test]
    fn debug_shows_names_never_values() {
        let shown = format!("{:?} {:?}", creds(), key());
        assert!(shown.contains("api_key"), "{shown}");
        assert!(!shown.contains("sk-very-secret"), "{shown}");
    }

    #[test]
    fn bad_keys_and_names_are_refused() {
        assert_eq!(
            CredentialKey::from_base64("c2hvcnQ=").err(),
            Some(CryptoError::BadKey)
        );
        assert_eq!(
            CredentialKey::from_base64("not base64!").err(),
            Some(CryptoError::BadKey)
        );
        assert!(Credentials::new(BTreeMap::from([("Api-Key".into(), "x".into())])).is_err());
        assert!(Credentials::new(BTreeMap::from([("k".into(), "x".repeat(5000))])).is_err());
    }
}
