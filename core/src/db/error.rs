//! Database errors, worded for a person reading a log: the server's own message and SQLSTATE,
//! the URL without its password, the migration file at fault.

use std::error::Error as _;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database URL {url}: {message}")]
    InvalidUrl { url: String, message: String },
    #[error("cannot connect to {target}: {message}")]
    Connect { target: String, message: String },
    #[error("database {target}: {message}")]
    Pool { target: String, message: String },
    #[error("{}", describe(.0))]
    Query(#[from] tokio_postgres::Error),
    #[error(
        "cannot act as role voice_app on {target} ({message}); run migrations first, and \
         `GRANT voice_app TO <login>` if the services log in as another role than the one \
         that migrated"
    )]
    Role { target: String, message: String },
    #[error("migration {file} failed: {message}")]
    Migration { file: String, message: String },
    #[error(
        "migration {file} was changed after it was applied (recorded sha256 {recorded}, \
         file now {current}): put changes in a new migration instead"
    )]
    ChecksumMismatch {
        file: String,
        recorded: String,
        current: String,
    },
    #[error("invalid migration list: {0}")]
    InvalidMigrations(String),
}

impl DbError {
    /// The SQLSTATE of a server error ("42501", "23503", …), if this is one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            DbError::Query(e) => e.code().map(|c| c.code()),
            _ => None,
        }
    }
}

/// A tokio-postgres error in full: a server error's severity, SQLSTATE, message, detail and
/// hint; otherwise the error and its causes (its own `Display` stops at "db error" or
/// "error connecting to server").
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" (detail: {detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        return text;
    }
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// `url` with any password replaced by `***`: the `user:password@` of a URL, and
/// `password=…` in a query string or a key=value connection string.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let userinfo = rest..rest + at;
            if let Some(colon) = out[userinfo.clone()].find(':') {
                out.replace_range(userinfo.start + colon + 1..userinfo.end, "***");
            }
        }
    }
    redact_password_params(&out)
}

/// Replaces the value of every `password=` (any case) up to `&`, whitespace or the closing
/// quote of a quoted value.
fn redact_password_params(text: &str) -> String {
    const KEY: &str = "password=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.to_ascii_lowercase().find(KEY) {
        let value_start = i + KEY.len();
        out.push_str(&rest[..value_start]);
        out.push_str("***");
        let value = &rest[value_start..];
        let value_len = if let Some(quoted) = value.strip_prefix('\'') {
            // A quoted key=value: runs to the next unescaped quote.
            let mut end = quoted.len();
            let mut escaped = false;
            for (j, c) in quoted.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        end = j + 1;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            1 + end
        } else {
            value
                .find(|c: char| c == '&' || c.is_whitespace())
                .unwrap_or(value.len())
        };
        rest = &value[value_len.min(value.len())..];
    }
    out.push_str(rest);
    out
}
