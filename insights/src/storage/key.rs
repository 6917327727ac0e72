//! Object keys: checked before they reach a backend, so a key can never climb out of the
//! local root or address something other than a recording.

use uuid::Uuid;

use super::StorageError;

/// Longest key accepted (S3 allows 1024 bytes).
pub const MAX_KEY_BYTES: usize = 1024;

/// `recordings/<tenant>/<call>.<ext>`; `ext` is 1 to 8 of `[a-z0-9]`.
pub fn recording_key(tenant: Uuid, call: Uuid, ext: &str) -> Result<String, StorageError> {
    let ext_ok = (1..=8).contains(&ext.len())
        && ext
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !ext_ok {
        return Err(StorageError::InvalidKey(format!(
            "extension {:?} must be 1 to 8 of a-z, 0-9",
            ext.chars().take(16).collect::<String>()
        )));
    }
    Ok(format!("recordings/{tenant}/{call}.{ext}"))
}

/// Non-empty, at most [`MAX_KEY_BYTES`], no leading `/`, no empty, `.` or `..` segment, no
/// control characters and no backslash.
pub fn validate_key(key: &str) -> Result<(), StorageError> {
    let bad = |why: &str| Err(StorageError::InvalidKey(why.to_string()));
    if key.is_empty() {
        return bad("the key is empty");
    }
    if key.len() > MAX_KEY_BYTES {
        return bad("the key is longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return bad("the key starts with '/'");
    }
    if key.chars().any(|c| c.is_control()) {
        return bad("the key contains a control character");
    }
    if key.contains('\\') {
        return bad("the key contains a backslash");
    }
    if key
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return bad("the key has an empty, '.' or '..' segment");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_keys_have_the_documented_shape() {
        let (t, c) = (Uuid::new_v4(), Uuid::new_v4());
        let key = recording_key(t, c, "wav").unwrap();
        assert_eq!(key, format!("recordings/{t}/{c}.wav"));
        assert!(validate_key(&key).is_ok());
        for ext in ["", "WAV", "mp3.", "../x", "abcdefghi", "m p3"] {
            assert!(
                matches!(recording_key(t, c, ext), Err(StorageError::InvalidKey(_))),
                "{ext:?}"
            );
        }
    }

    #[test]
    fn unsafe_keys_are_refused() {
        let long = "a".repeat(MAX_KEY_BYTES + 1);
        for key in [
            "",
            "/etc/passwd",
            "a/../b",
            "..",
            "a//b",
            "a/",
            "./a",
            "a\nb",
            "a\0b",
            "a\\b",
            long.as_str(),
        ] {
            assert!(
                matches!(validate_key(key), Err(StorageError::InvalidKey(_))),
                "{key:?}"
            );
        }
        assert!(validate_key("recordings/t/c.wav").is_ok());
        assert!(validate_key(&"a".repeat(MAX_KEY_BYTES)).is_ok());
    }
}
