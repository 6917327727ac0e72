//! The call's facts: [`CallFacts`] at the start, one JSON line per fact as the call goes
//! (`{base}.jsonl`, written through at once so a crash keeps them), and the summary at the
//! end (`{base}.json`, written to a temporary file and renamed so it is whole or absent).

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::clock::UtcTime;
use super::WriteError;

/// Facts kept in memory for the summary; past this only the `.jsonl` has them.
const MAX_FACTS_IN_SUMMARY: usize = 10_000;

/// What is known about a call when it starts.
#[derive(Debug, Clone, Serialize)]
pub struct CallFacts {
    pub call_id: String,
    pub tenant: String,
    pub caller: Option<String>,
    pub callee: Option<String>,
    /// Sample rate of the call audio, Hz.
    pub rate: u32,
    /// Serialized as RFC 3339 UTC with milliseconds, e.g. `2025-01-31T09:15:00.250Z`.
    #[serde(serialize_with = "rfc3339")]
    pub started_at: SystemTime,
    /// The caller's consent to processing (LGPD), when the dialplan says: call-insights
    /// honours it; absent, the tenant's policy decides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent: Option<bool>,
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&UtcTime::from_system(*t).rfc3339())
}

/// The `.jsonl` file and the facts kept for the summary.
pub(crate) struct FactLog {
    file: Option<File>,
    kept: Vec<Value>,
    omitted: u64,
}

impl FactLog {
    /// Creates the `.jsonl` file with the call's facts as its first line.
    pub fn create(path: &Path, call: &CallFacts) -> Result<Self, WriteError> {
        let mut file = File::options().write(true).create_new(true).open(path)?;
        write_line(&mut file, &serde_json::to_value(call)?)?;
        Ok(Self {
            file: Some(file),
            kept: Vec::new(),
            omitted: 0,
        })
    }

    /// Keeps facts for the summary only (the `.jsonl` could not be created).
    pub fn in_memory() -> Self {
        Self {
            file: None,
            kept: Vec::new(),
            omitted: 0,
        }
    }

    /// Adds a fact at `at_ms` into the call. An object gets an `at_ms` field; anything else
    /// (or an object that already has one) is wrapped as `{"at_ms": …, "fact": …}`.
    /// On a write error the file is closed and the error returned; the summary still gets
    /// the fact.
    pub fn add(&mut self, at_ms: u64, fact: Value) -> Result<(), WriteError> {
        let line = stamp(at_ms, fact);
        let written = match self.file.as_mut() {
            Some(file) => write_line(file, &line),
            None => Ok(()),
        };
        if written.is_err() {
            self.file = None;
        }
        if self.kept.len() < MAX_FACTS_IN_SUMMARY {
            self.kept.push(line);
        } else {
            self.omitted += 1;
        }
        written
    }

    pub fn facts(&self) -> &[Value] {
        &self.kept
    }

    /// Facts left out of the summary because there were too many.
    pub fn omitted(&self) -> u64 {
        self.omitted
    }
}

fn stamp(at_ms: u64, fact: Value) -> Value {
    match fact {
        Value::Object(fields) if !fields.contains_key("at_ms") => {
            let mut out = Map::with_capacity(fields.len() + 1);
            out.insert("at_ms".into(), at_ms.into());
            out.extend(fields);
            Value::Object(out)
        }
        other => serde_json::json!({ "at_ms": at_ms, "fact": other }),
    }
}

/// One line in one `write` call, so a crash leaves whole lines (but maybe not the last).
fn write_line(file: &mut File, value: &Value) -> Result<(), WriteError> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    file.write_all(&line)?;
    Ok(())
}

/// Writes `value` to `path` whole: to `path.tmp` first, then renamed over `path`.
pub(crate) fn write_summary(path: &Path, value: &Value) -> Result<(), WriteError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(value)?)?;
        file.write_all(b"\n")?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn facts_get_their_position() {
        assert_eq!(
            stamp(1500, json!({"kind": "turn", "ms": 420})),
            json!({"at_ms": 1500, "kind": "turn", "ms": 420})
        );
        assert_eq!(
            stamp(3, json!("hello")),
            json!({"at_ms": 3, "fact": "hello"})
        );
        assert_eq!(
            stamp(7, json!({"at_ms": 1})),
            json!({"at_ms": 7, "fact": {"at_ms": 1}})
        );
    }

    #[test]
    fn started_at_is_rfc3339() {
        let call = CallFacts {
            call_id: "c".into(),
            tenant: "t".into(),
            caller: Some("+15551234".into()),
            callee: None,
            rate: 8000,
            started_at: std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
            consent: None,
        };
        let v = serde_json::to_value(&call).expect("serializes");
        assert_eq!(v["started_at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["callee"], Value::Null);
    }
}
