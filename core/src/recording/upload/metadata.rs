//! What call-insights is told about a call: the webhook JSON of seed 000 (`event`,
//! `call_id`, `from`, `to`, `agent_id`, `duration`, `timestamp`, `consent`, `meta`), made
//! from the call's summary (`{call}.json`, written by the recorder when the call ended).

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};

/// Longest `x-call-metadata` call-insights takes (characters of base64).
const MAX_METADATA_CHARS: usize = 16 * 1024;
/// What call-insights takes as a number (its `number` check).
const MAX_NUMBER_CHARS: usize = 64;

/// A finished call as its summary tells it.
#[derive(Debug, Clone)]
pub struct Summary {
    pub call_id: String,
    /// The tenant as the recorder was given it (unsanitized, unlike the folder name).
    pub tenant: String,
    /// File name of the audio, beside the summary.
    pub audio_file: String,
    json: Value,
}

impl Summary {
    /// Reads the fields the upload needs; `Err` names what is missing.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let json: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("summary is not JSON: {e}"))?;
        let text = |ptr: &str| {
            json.pointer(ptr)
                .and_then(Value::as_str)
                .map(str::to_string)
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| format!("summary has no {ptr}"))
        };
        Ok(Self {
            call_id: text("/call/call_id")?,
            tenant: text("/call/tenant").unwrap_or_default(),
            audio_file: text("/files/audio")?,
            json,
        })
    }

    /// The webhook JSON for this call; `source` goes into `meta`.
    pub fn webhook_json(&self, source: &str) -> Value {
        let call = &self.json["call"];
        let audio_ms = self.json["audio_ms"].as_u64().unwrap_or(0);
        let started = call["started_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc));
        // The event's time is the call's end: its start plus the audio recorded.
        let ended = started.map(|t| t + TimeDelta::milliseconds(audio_ms as i64));
        let mut body = Map::new();
        body.insert("event".into(), "call.completed".into());
        body.insert("call_id".into(), self.call_id.clone().into());
        for (key, field) in [("from", "caller"), ("to", "callee")] {
            if let Some(n) = call[field].as_str().filter(|n| is_number(n)) {
                body.insert(key.into(), n.into());
            }
        }
        if let Some(agent) = self.agent() {
            body.insert("agent_id".into(), agent.into());
        }
        body.insert("duration".into(), ((audio_ms + 500) / 1000).into());
        if let Some(consent) = call["consent"].as_bool() {
            body.insert("consent".into(), consent.into());
        }
        if let Some(t) = ended {
            body.insert(
                "timestamp".into(),
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into(),
            );
        }
        let mut meta = json!({
            "source": source,
            "tenant": self.tenant,
            "format": self.json["format"],
            "finished": self.json["finished"],
            "audio_ms": audio_ms,
            "dropped_messages": self.json["dropped_messages"],
            "write_errors": self.json["write_errors"],
            "end": self.json["end"],
        });
        // `end` is the one field of unbounded size: left out when the header would be too long.
        if encoded_len(&body, &meta) > MAX_METADATA_CHARS {
            meta["end"] = Value::Null;
        }
        body.insert("meta".into(), meta);
        Value::Object(body)
    }

    /// An agent named by a fact (`{"agent": …}` or `{"agent_id": …}`), the first one.
    fn agent(&self) -> Option<String> {
        let facts = self.json["facts"].as_array()?;
        facts.iter().find_map(|f| {
            ["agent_id", "agent"]
                .iter()
                .find_map(|k| f[*k].as_str().map(str::to_string))
        })
    }
}

fn encoded_len(body: &Map<String, Value>, meta: &Value) -> usize {
    let mut all = body.clone();
    all.insert("meta".into(), meta.clone());
    serde_json::to_vec(&all).map_or(usize::MAX, |v| v.len() * 4 / 3 + 4)
}

/// What call-insights accepts in `from`/`to`: other values are left out, not refused.
fn is_number(n: &str) -> bool {
    !n.is_empty()
        && n.chars().count() <= MAX_NUMBER_CHARS
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+*#_.@:-".contains(c))
}

/// The `domain` sent: the call's tenant when it can name a call-insights tenant (a
/// FusionPBX domain name or domain uuid: letters, digits, `.` and `-`), else `fallback`
/// when set, else the tenant anyway (call-insights then answers 404 and the call is set
/// aside with that reason).
pub fn domain_for(tenant: &str, fallback: &str) -> String {
    let tenant = tenant.trim();
    let looks_like_domain = !tenant.is_empty()
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if looks_like_domain || fallback.trim().is_empty() {
        tenant.to_string()
    } else {
        fallback.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(call: Value) -> Summary {
        let json = json!({"call": call, "files": {"audio": "c.wav"}, "audio_ms": 1500});
        Summary::parse(&serde_json::to_vec(&json).unwrap()).unwrap()
    }

    #[test]
    fn consent_is_sent_only_when_the_call_has_it() {
        let base = json!({"call_id": "c", "tenant": "t"});
        let said = |consent: Value| {
            let mut call = base.clone();
            call["consent"] = consent;
            summary(call).webhook_json("bridge").get("consent").cloned()
        };
        assert_eq!(said(json!(true)), Some(json!(true)));
        assert_eq!(said(json!(false)), Some(json!(false)));
        // Unknown: no field, so the tenant's policy decides (not a guessed "no").
        assert_eq!(said(Value::Null), None);
        assert_eq!(summary(base).webhook_json("bridge").get("consent"), None);
    }
}
