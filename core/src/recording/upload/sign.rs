//! The request signature call-insights checks (`insights/src/intake/upload.rs`): hex
//! HMAC-SHA256 of `<x-timestamp>.<x-call-metadata>.<hex SHA-256 of the body>`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub fn signature(secret: &[u8], timestamp: i64, metadata: &str, body_sha256_hex: &str) -> String {
    // An HMAC key may be of any length: new_from_slice cannot fail for it.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("{timestamp}.{metadata}.{body_sha256_hex}").as_bytes());
    hex(&mac.finalize().into_bytes())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
