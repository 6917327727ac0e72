//! The webhook body: seed 000's generic and Twilio-style payloads (the same fields; Twilio's
//! ids sit in `meta`). Fields this service does not know are ignored, so senders that add
//! their own keep working; the known ones are checked, and a bad one is answered 422 naming
//! it.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::http::error::ApiError;

/// Events that mean "a call is over and its recording can be fetched".
pub const KNOWN_EVENTS: &[&str] = &["call.completed", "call.ended", "recording.completed"];
/// Longest `call_id`.
pub const MAX_CALL_ID_CHARS: usize = 200;
/// Longest call accepted (48 h): anything longer is a sender's bug.
pub const MAX_DURATION_SECS: i64 = 48 * 3600;
const MAX_URL_CHARS: usize = 2048;
const MAX_AGENT_CHARS: usize = 200;
const MAX_NUMBER_CHARS: usize = 64;

/// The body as sent. Loose types (numbers as strings, ids as numbers) are accepted where
/// senders are known to differ, and tightened by [`WebhookPayload::validate`].
#[derive(Debug, Deserialize)]
pub struct WebhookPayload {
    pub event: String,
    pub call_id: Value,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub agent_id: Option<Value>,
    #[serde(default)]
    pub duration: Option<Value>,
    #[serde(default)]
    pub recording_url: Option<String>,
    #[serde(default)]
    pub timestamp: Option<Value>,
    #[serde(default)]
    pub consent: Option<bool>,
    #[serde(default)]
    pub meta: Option<Value>,
}

/// A checked webhook: what becomes a `calls` row.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingCall {
    pub event: String,
    pub provider_call_id: String,
    pub from_number: String,
    pub to_number: String,
    pub agent_ref: String,
    pub duration_sec: Option<i32>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub recording_url: Option<String>,
    /// `None`: the sender did not say.
    pub consent: Option<bool>,
    pub meta: Value,
}

fn invalid(field: &str, what: impl std::fmt::Display) -> ApiError {
    ApiError::unprocessable("invalid_field", format!("{field}: {what}"))
}

impl WebhookPayload {
    pub fn validate(self) -> Result<IncomingCall, ApiError> {
        let event = self.event.trim().to_string();
        if !KNOWN_EVENTS.contains(&event.as_str()) {
            return Err(invalid(
                "event",
                format!("unknown event, expected one of {}", KNOWN_EVENTS.join(", ")),
            ));
        }
        let provider_call_id = call_id(&self.call_id)?;
        let from_number = number("from", self.from)?;
        let to_number = number("to", self.to)?;
        let agent_ref = agent(self.agent_id)?;
        let duration_sec = duration(self.duration)?;
        let ended_at = timestamp(self.timestamp)?;
        // The event's time is when the call ended; with its length, when it began.
        let started_at = match (ended_at, duration_sec) {
            (Some(end), Some(secs)) => Some(end - TimeDelta::seconds(i64::from(secs))),
            _ => None,
        };
        let recording_url = self.recording_url.map(url).transpose()?;
        let meta = match self.meta {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(m @ Value::Object(_)) => m,
            Some(_) => return Err(invalid("meta", "must be a JSON object")),
        };
        Ok(IncomingCall {
            event,
            provider_call_id,
            from_number,
            to_number,
            agent_ref,
            duration_sec,
            started_at,
            ended_at,
            recording_url,
            consent: self.consent,
            meta,
        })
    }
}

fn call_id(value: &Value) -> Result<String, ApiError> {
    let text = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return Err(invalid("call_id", "must be a string")),
    };
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_CALL_ID_CHARS {
        return Err(invalid(
            "call_id",
            format!("must be 1 to {MAX_CALL_ID_CHARS} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid("call_id", "must not contain control characters"));
    }
    Ok(text)
}

/// A phone number, extension or SIP user as the PBX wrote it; '' when absent.
fn number(field: &str, value: Option<String>) -> Result<String, ApiError> {
    let text = value.unwrap_or_default().trim().to_string();
    if text.is_empty() {
        return Ok(text);
    }
    let sane = text.chars().count() <= MAX_NUMBER_CHARS
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+*#_.@:-".contains(c));
    if !sane {
        return Err(invalid(
            field,
            format!(
                "must be a phone number, extension or SIP user: up to {MAX_NUMBER_CHARS} \
                 letters, digits and + * # _ . @ : -"
            ),
        ));
    }
    Ok(text)
}

fn agent(value: Option<Value>) -> Result<String, ApiError> {
    let text = match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(invalid("agent_id", "must be a string")),
    };
    if text.chars().count() > MAX_AGENT_CHARS || text.chars().any(char::is_control) {
        return Err(invalid(
            "agent_id",
            format!("must be up to {MAX_AGENT_CHARS} characters, without control characters"),
        ));
    }
    Ok(text)
}

/// Seconds, as a number or a numeric string (form-style senders); fractions are rounded.
fn duration(value: Option<Value>) -> Result<Option<i32>, ApiError> {
    let seconds = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    let bad = || {
        invalid(
            "duration",
            format!("must be seconds, 0 to {MAX_DURATION_SECS}"),
        )
    };
    let seconds = seconds.filter(|s| s.is_finite()).ok_or_else(bad)?.round();
    if !(0.0..=MAX_DURATION_SECS as f64).contains(&seconds) {
        return Err(bad());
    }
    Ok(Some(seconds as i32))
}

/// RFC 3339 text or unix seconds; not before 2000 nor more than a day ahead.
fn timestamp(value: Option<Value>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let at = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s.trim())
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|secs| DateTime::<Utc>::from_timestamp(secs, 0)),
        Some(_) => None,
    };
    let earliest = DateTime::<Utc>::from_timestamp(946_684_800, 0);
    let latest = Utc::now() + TimeDelta::days(1);
    match at {
        Some(t) if Some(t) >= earliest && t <= latest => Ok(Some(t)),
        _ => Err(invalid(
            "timestamp",
            "must be an RFC 3339 time (2025-04-01T14:15:22Z) or unix seconds, from 2000 to \
             now",
        )),
    }
}

fn url(text: String) -> Result<String, ApiError> {
    let text = text.trim().to_string();
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let host_ok = rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !host.starts_with('@') && !host.starts_with(':')
    });
    if !host_ok
        || text.chars().count() > MAX_URL_CHARS
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid(
            "recording_url",
            format!("must be an http(s) URL of up to {MAX_URL_CHARS} characters"),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: Value) -> Result<IncomingCall, ApiError> {
        serde_json::from_value::<WebhookPayload>(body)
            .expect("shape")
            .validate()
    }

    #[test]
    fn the_seed_payloads_are_accepted() {
        let generic = check(json!({
            "event": "call.completed", "call_id": "abc-123", "from": "+551199999999",
            "to": "+551188888888", "agent_id": "agent-42", "duration": 523,
            "recording_url": "https://voip.example.com/rec/abc-123.wav",
            "timestamp": "2025-04-01T14:15:22Z", "consent": true,
            "meta": {"provider": "generic"}
        }))
        .unwrap();
        assert_eq!(generic.provider_call_id, "abc-123");
        assert_eq!(generic.duration_sec, Some(523));
        assert_eq!(generic.consent, Some(true));
        let ended = generic.ended_at.unwrap();
        assert_eq!(ended.to_rfc3339(), "2025-04-01T14:15:22+00:00");
        assert_eq!(
            (ended - generic.started_at.unwrap()).num_seconds(),
            523,
            "started = ended - duration"
        );
        let twilio = check(json!({
            "event": "call.completed", "call_id": "CAe1644a7eed5088b159577c5802d8be38",
            "from": "+551199999999", "to": "+551188888888", "agent_id": "agent-42",
            "duration": 300,
            "recording_url": "https://api.twilio.com/2010-04-01/Accounts/ACxxx/Recordings/REyyy",
            "timestamp": "2025-04-01T14:15:22Z",
            "meta": {"accountSid": "ACxxx", "recordingSid": "REyyy"}
        }))
        .unwrap();
        assert_eq!(twilio.consent, None);
        assert_eq!(twilio.meta["recordingSid"], "REyyy");
    }

    #[test]
    fn bad_fields_are_named() {
        let base = json!({"event": "call.completed", "call_id": "x"});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            check(b).unwrap_err().message
        };
        assert!(with("event", json!("call.exploded")).starts_with("event:"));
        assert!(with("call_id", json!("")).starts_with("call_id:"));
        assert!(with("call_id", json!("x".repeat(201))).starts_with("call_id:"));
        assert!(with("call_id", json!({"a": 1})).starts_with("call_id:"));
        assert!(with("from", json!("+55 11 9999")).starts_with("from:"));
        assert!(with("to", json!("1".repeat(65))).starts_with("to:"));
        assert!(with("duration", json!(-1)).starts_with("duration:"));
        assert!(with("duration", json!(1e12)).starts_with("duration:"));
        assert!(with("duration", json!("soon")).starts_with("duration:"));
        assert!(with("recording_url", json!("ftp://x/y")).starts_with("recording_url:"));
        assert!(with("recording_url", json!("https://")).starts_with("recording_url:"));
        assert!(with("recording_url", json!("javascript:alert(1)")).starts_with("recording_url:"));
        assert!(with("timestamp", json!("yesterday")).starts_with("timestamp:"));
        assert!(with("timestamp", json!("2999-01-01T00:00:00Z")).starts_with("timestamp:"));
        assert!(with("meta", json!([1])).starts_with("meta:"));
        assert!(with("agent_id", json!(["a"])).starts_with("agent_id:"));
        // Loose forms senders use.
        let mut loose = base.clone();
        loose["duration"] = json!("61.6");
        loose["agent_id"] = json!(42);
        loose["timestamp"] = json!(1_743_516_922);
        loose["from"] = json!("sip:1001@pbx.example.com");
        let c = check(loose).unwrap();
        assert_eq!(c.duration_sec, Some(62));
        assert_eq!(c.agent_ref, "42");
        assert_eq!(c.from_number, "sip:1001@pbx.example.com");
        assert!(c.ended_at.is_some());
    }
}
