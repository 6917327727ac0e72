//! What a stream says about its call: tenant, call UUID, audio format and playout choice,
//! from the URL path and query, or from the metadata text frame.

use serde::{Deserialize, Serialize};

use crate::playout::{ClearSetting, PlayoutModeSetting};

/// Rates mod_audio_stream accepts (multiples of 8000 that FreeSWITCH can resample to).
pub const SUPPORTED_RATES: &[u32] = &[8000, 16000, 24000, 32000, 48000];

/// Which directions FreeSWITCH streams (the `mono|mixed|stereo` argument of `start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mix {
    /// The caller only.
    Mono,
    /// Caller and what FreeSWITCH plays, summed into one channel.
    Mixed,
    /// Interleaved: left = caller, right = what FreeSWITCH plays.
    Stereo,
}

impl Mix {
    pub fn channels(self) -> usize {
        match self {
            Mix::Stereo => 2,
            Mix::Mono | Mix::Mixed => 1,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "mono" => Some(Mix::Mono),
            "mixed" => Some(Mix::Mixed),
            "stereo" => Some(Mix::Stereo),
            _ => None,
        }
    }
}

/// Call parameters gathered from the URL and metadata; every field optional until resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamParams {
    pub tenant: Option<String>,
    pub call_id: Option<String>,
    pub rate: Option<u32>,
    pub mix: Option<Mix>,
    pub playout: Option<PlayoutModeSetting>,
    pub clear: Option<ClearSetting>,
    pub caller: Option<String>,
    /// The dialled number (`destination_number`): picks the tenant's agent.
    pub callee: Option<String>,
    /// The FusionPBX domain uuid, when given beside the domain name.
    pub domain_uuid: Option<String>,
    /// An agent number chosen by the dialplan (`?agent=`), over the dialled number.
    pub agent: Option<String>,
    /// The caller's consent to recording analysis (LGPD), when the dialplan asked for it
    /// (`?consent=true`, or `"consent": true` in the metadata).
    pub consent: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("unsupported sample rate {0} (use one of 8000, 16000, 24000, 32000, 48000)")]
    Rate(String),
    #[error("unknown mix {0:?} (mono, mixed or stereo)")]
    Mix(String),
    #[error("unknown playout mode {0:?}")]
    Playout(String),
    #[error("unknown clear message {0:?}")]
    Clear(String),
    #[error("invalid {what}: {value:?}")]
    Id { what: &'static str, value: String },
}

impl StreamParams {
    /// From `/stream/{domain}/{call_uuid}` segments and the query string.
    pub fn from_url(segments: &[&str], query: Option<&str>) -> Result<Self, ParamError> {
        let mut p = StreamParams::default();
        if let Some(domain) = segments.first() {
            p.tenant = Some(valid_id("domain", &percent_decode(domain))?);
        }
        if let Some(call) = segments.get(1) {
            p.call_id = Some(valid_id("call uuid", &percent_decode(call))?);
        }
        for pair in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            p.set(k, &percent_decode(v))?;
        }
        Ok(p)
    }

    /// Reads what the metadata JSON object says. Unknown keys are ignored.
    pub fn apply_metadata(
        &mut self,
        meta: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), ParamError> {
        let text = |keys: &[&str]| {
            keys.iter().find_map(|k| match meta.get(*k) {
                Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => None,
            })
        };
        if self.tenant.is_none() {
            if let Some(t) = text(&["domain_name", "domain_uuid", "tenant", "domain"]) {
                self.tenant = Some(valid_id("domain", &t)?);
            }
        }
        if self.call_id.is_none() {
            if let Some(c) = text(&["uuid", "call_uuid", "callId", "call_id"]) {
                self.call_id = Some(valid_id("call uuid", &c)?);
            }
        }
        if self.consent.is_none() {
            if let Some(serde_json::Value::Bool(b)) = meta.get("consent") {
                self.consent = Some(*b);
            }
        }
        for (key, names) in [
            ("rate", &["rate", "sampleRate", "sample_rate"][..]),
            ("mix", &["mix"][..]),
            ("playout", &["playout"][..]),
            ("clear", &["clear"][..]),
            ("caller", &["caller_id_number", "caller", "from"][..]),
            ("callee", &["destination_number", "callee", "to"][..]),
            ("domain_uuid", &["domain_uuid"][..]),
            ("agent", &["agent"][..]),
            ("consent", &["consent"][..]),
        ] {
            if let Some(v) = text(names) {
                self.set_if_unset(key, &v)?;
            }
        }
        Ok(())
    }

    fn set_if_unset(&mut self, key: &str, value: &str) -> Result<(), ParamError> {
        let unset = match key {
            "rate" => self.rate.is_none(),
            "mix" => self.mix.is_none(),
            "playout" => self.playout.is_none(),
            "clear" => self.clear.is_none(),
            "caller" => self.caller.is_none(),
            "callee" => self.callee.is_none(),
            "domain_uuid" => self.domain_uuid.is_none(),
            "agent" => self.agent.is_none(),
            "consent" => self.consent.is_none(),
            _ => false,
        };
        if unset {
            self.set(key, value)?;
        }
        Ok(())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), ParamError> {
        match key {
            "rate" | "sampleRate" | "sample_rate" => {
                let rate = parse_rate(value).ok_or_else(|| ParamError::Rate(value.to_string()))?;
                self.rate = Some(rate);
            }
            "mix" => {
                self.mix =
                    Some(Mix::parse(value).ok_or_else(|| ParamError::Mix(value.to_string()))?)
            }
            "playout" => {
                self.playout = Some(
                    PlayoutModeSetting::parse(value)
                        .ok_or_else(|| ParamError::Playout(value.to_string()))?,
                )
            }
            "clear" => {
                self.clear = Some(
                    ClearSetting::parse(value)
                        .ok_or_else(|| ParamError::Clear(value.to_string()))?,
                )
            }
            "caller" => self.caller = Some(valid_id("caller", value)?),
            "callee" => self.callee = Some(valid_id("callee", value)?),
            "domain_uuid" => self.domain_uuid = Some(valid_id("domain uuid", value)?),
            "agent" => self.agent = Some(valid_id("agent", value)?),
            // A call is never refused over its consent: a value we cannot read counts as
            // unsaid, and the tenant's policy decides.
            "consent" => {
                self.consent = parse_yes_no(value);
                // Empty: a dialplan's `consent=${voice_ai_consent}` with the variable unset.
                if self.consent.is_none() && !value.trim().is_empty() {
                    tracing::warn!(value = %value.chars().take(32).collect::<String>(),
                        "consent is neither yes nor no: taken as unsaid");
                }
            }
            // Other query keys (uuid=…, dialect=…) are read elsewhere or ignored on purpose.
            _ => {}
        }
        Ok(())
    }
}

/// `16000`, `16k`, `8k`: the spellings FreeSWITCH admins use.
fn parse_rate(s: &str) -> Option<u32> {
    let rate = match s.to_ascii_lowercase().strip_suffix('k') {
        Some(k) => k.parse::<u32>().ok()?.checked_mul(1000)?,
        None => s.parse().ok()?,
    };
    SUPPORTED_RATES.contains(&rate).then_some(rate)
}

/// A yes or no as dialplans write it (`true`, `1`, `yes`, `sim`; `false`, `0`, `no`, `não`).
fn parse_yes_no(s: &str) -> Option<bool> {
    match s.trim().to_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "sim" | "s" => Some(true),
        "false" | "0" | "no" | "n" | "nao" | "não" => Some(false),
        _ => None,
    }
}

/// Tenants, call ids and numbers end up in logs, metrics and file names: keep them tame.
fn valid_id(what: &'static str, value: &str) -> Result<String, ParamError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@+:".contains(c));
    if ok {
        Ok(value.to_string())
    } else {
        Err(ParamError::Id {
            what,
            value: value.chars().take(64).collect(),
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_path_and_query() {
        let p = StreamParams::from_url(
            &["pbx.example.com", "7dd5-11"],
            Some("rate=8k&mix=stereo&playout=stream_audio"),
        )
        .unwrap();
        assert_eq!(p.tenant.as_deref(), Some("pbx.example.com"));
        assert_eq!(p.call_id.as_deref(), Some("7dd5-11"));
        assert_eq!(p.rate, Some(8000));
        assert_eq!(p.mix, Some(Mix::Stereo));
        assert_eq!(p.playout, Some(PlayoutModeSetting::StreamAudio));
    }

    #[test]
    fn rejects_bad_values_with_a_reason() {
        assert_eq!(
            StreamParams::from_url(&[], Some("rate=24")),
            Err(ParamError::Rate("24".into()))
        );
        assert!(matches!(
            StreamParams::from_url(&[], Some("rate=11025")),
            Err(ParamError::Rate(_))
        ));
        assert!(matches!(
            StreamParams::from_url(&["../etc", "x"], None),
            Err(ParamError::Id { .. })
        ));
        assert!(matches!(
            StreamParams::from_url(&[], Some("mix=surround")),
            Err(ParamError::Mix(_))
        ));
    }

    #[test]
    fn consent_comes_from_the_query_or_the_metadata() {
        let from_query = |q: &str| StreamParams::from_url(&[], Some(q)).unwrap().consent;
        assert_eq!(from_query("consent=true"), Some(true));
        assert_eq!(from_query("consent=sim"), Some(true));
        assert_eq!(from_query("consent=0"), Some(false));
        assert_eq!(from_query("consent=n%C3%A3o"), Some(false));
        assert_eq!(
            from_query("consent=maybe"),
            None,
            "unreadable: unsaid, call kept"
        );
        assert_eq!(
            from_query("consent="),
            None,
            "a dialplan variable left unset"
        );
        assert_eq!(from_query("rate=8000"), None);

        let mut p = StreamParams::default();
        let meta = serde_json::json!({"consent": false});
        p.apply_metadata(meta.as_object().unwrap()).unwrap();
        assert_eq!(p.consent, Some(false));
        let mut p = StreamParams::from_url(&[], Some("consent=yes")).unwrap();
        let meta = serde_json::json!({"consent": "false"});
        p.apply_metadata(meta.as_object().unwrap()).unwrap();
        assert_eq!(p.consent, Some(true), "the URL wins");
    }

    #[test]
    fn metadata_fills_what_the_url_left_out() {
        let mut p = StreamParams::from_url(&[], Some("rate=16000")).unwrap();
        let meta: serde_json::Value = serde_json::json!({
            "domain_name": "a.example", "uuid": "abc-1", "sampleRate": 8000, "caller_id_number": "+5511999990000"
        });
        p.apply_metadata(meta.as_object().unwrap()).unwrap();
        assert_eq!(p.tenant.as_deref(), Some("a.example"));
        assert_eq!(p.call_id.as_deref(), Some("abc-1"));
        assert_eq!(p.rate, Some(16000), "the URL wins");
        assert_eq!(p.caller.as_deref(), Some("+5511999990000"));
    }

    #[test]
    fn the_agent_and_domain_uuid_come_from_the_query_or_the_metadata() {
        let mut p = StreamParams::from_url(&["a.example", "c1"], Some("agent=vendas")).unwrap();
        let meta = serde_json::json!({
            "domain_uuid": "6f1c3a52-0b7e-4f3e-9d59-2a4c1b7e8f00", "agent": "3002",
            "destination_number": "3001"
        });
        p.apply_metadata(meta.as_object().unwrap()).unwrap();
        assert_eq!(p.agent.as_deref(), Some("vendas"), "the URL wins");
        assert_eq!(
            p.domain_uuid.as_deref(),
            Some("6f1c3a52-0b7e-4f3e-9d59-2a4c1b7e8f00")
        );
        assert_eq!(p.callee.as_deref(), Some("3001"));
        assert!(StreamParams::from_url(&[], Some("agent=a%20b")).is_err());
    }
}
