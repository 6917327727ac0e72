//! Configuration loading: an embedded default TOML, overlaid by a TOML file, overlaid by
//! environment variables.
//!
//! Environment overrides use a prefix and `__` as the path separator, so
//! `VOICE_BRIDGE__SERVER__LISTEN=0.0.0.0:9000` sets `[server] listen`. Values are parsed as
//! TOML scalars when they can be (`true`, `42`, `0.5`), and taken as strings otherwise.

use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::{Table, Value};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Builds a `T` from `default_toml`, then `file` (when given), then `PREFIX__…` env vars.
pub fn load<T: DeserializeOwned>(
    default_toml: &str,
    file: Option<&Path>,
    env_prefix: &str,
) -> Result<T, ConfigError> {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    load_with_env(default_toml, file, env_prefix, &vars)
}

/// [`load`] with an explicit environment, for tests.
pub fn load_with_env<T: DeserializeOwned>(
    default_toml: &str,
    file: Option<&Path>,
    env_prefix: &str,
    env: &[(String, String)],
) -> Result<T, ConfigError> {
    let mut merged = parse(default_toml, "<embedded default>")?;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        merge(&mut merged, parse(&text, &path.display().to_string())?);
    }
    let prefix = format!("{env_prefix}__");
    for (key, value) in env {
        if let Some(path) = key.strip_prefix(&prefix) {
            let keys: Vec<String> = path.split("__").map(|k| k.to_ascii_lowercase()).collect();
            set_path(&mut merged, &keys, scalar(value));
        }
    }
    Value::Table(merged)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))
}

fn parse(text: &str, path: &str) -> Result<Table, ConfigError> {
    text.parse::<Table>().map_err(|e| ConfigError::Parse {
        path: path.to_string(),
        message: e.message().to_string(),
    })
}

/// Deep-merges `over` into `base`: tables merge key by key, anything else replaces.
pub fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

fn set_path(table: &mut Table, keys: &[String], value: Value) {
    let Some((last, parents)) = keys.split_last() else {
        return;
    };
    let mut current = table;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        let Value::Table(next) = entry else { return };
        current = next;
    }
    current.insert(last.clone(), value);
}

fn scalar(raw: &str) -> Value {
    match format!("v = {raw}").parse::<Table>() {
        Ok(mut t) => match t.remove("v") {
            Some(
                v @ (Value::Boolean(_) | Value::Integer(_) | Value::Float(_) | Value::Array(_)),
            ) => v,
            _ => Value::String(raw.to_string()),
        },
        Err(_) => Value::String(raw.to_string()),
    }
}

/// A secret (API key, password). Its `Debug` and `Display` never show the value, so it
/// cannot leak through logs or error messages.
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that must send it (an auth header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Cfg {
        server: Server,
        key: Secret,
    }
    #[derive(serde::Deserialize, Debug)]
    struct Server {
        listen: String,
        workers: u32,
        json: bool,
    }

    const DEFAULT: &str = "key = \"\"\n[server]\nlisten = \"a\"\nworkers = 1\njson = false\n";

    #[test]
    fn env_overrides_file_overrides_default() {
        let dir = std::env::temp_dir().join(format!("cfgtest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "[server]\nlisten = \"b\"\nworkers = 2\n").unwrap();
        let env = vec![
            ("T__SERVER__WORKERS".to_string(), "7".to_string()),
            ("T__SERVER__JSON".to_string(), "true".to_string()),
            ("T__KEY".to_string(), "sk-secret".to_string()),
            ("OTHER__SERVER__LISTEN".to_string(), "x".to_string()),
        ];
        let cfg: Cfg = load_with_env(DEFAULT, Some(&file), "T", &env).unwrap();
        assert_eq!(cfg.server.listen, "b");
        assert_eq!(cfg.server.workers, 7);
        assert!(cfg.server.json);
        assert_eq!(cfg.key.expose(), "sk-secret");
        assert!(!format!("{cfg:?}").contains("sk-secret"));
    }

    #[test]
    fn bad_values_give_clear_errors() {
        let env = vec![("T__SERVER__WORKERS".to_string(), "many".to_string())];
        let err = load_with_env::<Cfg>(DEFAULT, None, "T", &env).unwrap_err();
        assert!(err.to_string().contains("invalid"), "{err}");
        let err = load_with_env::<Cfg>("[server", None, "T", &[]).unwrap_err();
        assert!(err.to_string().contains("not valid TOML"), "{err}");
    }
}
