//! The upgrade checks: path and voice, the `xi-api-key` header (when sent), and the query
//! (`model_id`, `output_format`, `inactivity_timeout`, `language_code`, …). Refusals have
//! ElevenLabs' `{"detail": {"status", "message"}}` body and never echo the key.

use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request};
use tokio_tungstenite::tungstenite::http::StatusCode;

use super::format::OutputFormat;
use super::{FakeElevenLabsTtsConfig, Fault};
use crate::fake_common::server::{self, fault_status, query_param};

pub(crate) const PATH_PREFIX: &str = "/v1/text-to-speech/";
const PATH_SUFFIX: &str = "/stream-input";
/// The service's default when `model_id` is not sent.
const DEFAULT_MODEL: &str = "eleven_multilingual_v2";

/// What the upgrade request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upgrade {
    pub voice_id: String,
    pub model_id: String,
    pub format: OutputFormat,
    pub inactivity_timeout_s: u64,
    pub language_code: Option<String>,
    /// The right key came in the header; otherwise the first message must carry it.
    pub key_in_header: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    kind: &'static str,
    message: String,
}

impl server::Refusal for Refusal {
    fn into_response(self) -> ErrorResponse {
        let body = serde_json::json!({"detail": {"status": self.kind, "message": self.message}});
        let mut response = ErrorResponse::new(Some(body.to_string()));
        *response.status_mut() = self.status;
        response
    }
}

fn refuse(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        kind,
        message: message.into(),
    }
}

pub(crate) fn check(
    req: &Request,
    cfg: &FakeElevenLabsTtsConfig,
    fault: &Fault,
) -> Result<Upgrade, Refusal> {
    if let Fault::RefuseUpgrade(status) = fault {
        return Err(refuse(
            fault_status(*status),
            "refused",
            "refused by fault injection",
        ));
    }
    let path = req.uri().path();
    let voice_id = path
        .strip_prefix(PATH_PREFIX)
        .and_then(|rest| rest.strip_suffix(PATH_SUFFIX))
        .filter(|v| !v.is_empty() && !v.contains('/'));
    let Some(voice_id) = voice_id else {
        return Err(refuse(StatusCode::NOT_FOUND, "not_found", "Not Found"));
    };
    if !cfg.voices.is_empty() && !cfg.voices.iter().any(|v| v == voice_id) {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "voice_not_found",
            "A voice with the voice_id was not found.",
        ));
    }
    let key_in_header = match req.headers().get("xi-api-key") {
        None => false,
        Some(v) if v.as_bytes() == cfg.api_key.as_bytes() => true,
        Some(_) => {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "Invalid API key",
            ))
        }
    };
    let model_id = query_param(req, "model_id").unwrap_or(DEFAULT_MODEL);
    if !cfg.models.iter().any(|m| m == model_id) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "model_not_found",
            format!("Unknown model_id {model_id:?}"),
        ));
    }
    // Not sent means mp3_44100_128, which the fake cannot encode.
    let format_name = query_param(req, "output_format").unwrap_or("mp3_44100_128");
    let Some(format) = OutputFormat::parse(format_name) else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "invalid_output_format",
            format!("The fake speaks pcm_* and ulaw_8000 only, not {format_name:?}"),
        ));
    };
    let inactivity_timeout_s = match query_param(req, "inactivity_timeout") {
        None => 20,
        Some(v) => match v.parse::<u64>() {
            Ok(s) if (1..=180).contains(&s) => s,
            _ => {
                return Err(refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_parameters",
                    "inactivity_timeout must be 1-180 seconds",
                ))
            }
        },
    };
    let language_code = query_param(req, "language_code").map(str::to_string);
    if let Some(lang) = &language_code {
        if !(lang.len() == 2 && lang.bytes().all(|b| b.is_ascii_lowercase())) {
            return Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_parameters",
                "language_code must be ISO 639-1",
            ));
        }
    }
    if let Some(n) = query_param(req, "apply_text_normalization") {
        if !["auto", "on", "off"].contains(&n) {
            return Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_parameters",
                "apply_text_normalization must be auto, on or off",
            ));
        }
    }
    Ok(Upgrade {
        voice_id: voice_id.to_string(),
        model_id: model_id.to_string(),
        format,
        inactivity_timeout_s,
        language_code,
        key_in_header,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, key: Option<&str>) -> Request {
        let mut b = Request::builder().uri(uri);
        if let Some(k) = key {
            b = b.header("xi-api-key", k);
        }
        b.body(()).unwrap()
    }

    const GOOD: &str = "/v1/text-to-speech/fake_voice_pt/stream-input?\
                        model_id=eleven_flash_v2_5&output_format=pcm_16000&language_code=pt";

    #[test]
    fn accepts_a_good_request() {
        let cfg = FakeElevenLabsTtsConfig::default();
        let up = check(&req(GOOD, Some(&cfg.api_key)), &cfg, &Fault::None).unwrap();
        assert_eq!(up.voice_id, "fake_voice_pt");
        assert_eq!(up.model_id, "eleven_flash_v2_5");
        assert_eq!(up.format, OutputFormat::Pcm(16_000));
        assert_eq!(up.inactivity_timeout_s, 20);
        assert_eq!(up.language_code.as_deref(), Some("pt"));
        assert!(up.key_in_header);
        let up = check(&req(GOOD, None), &cfg, &Fault::None).unwrap();
        assert!(!up.key_in_header, "the key may come in the first message");
    }

    #[test]
    fn refuses_bad_requests_with_the_right_status() {
        let cfg = FakeElevenLabsTtsConfig::default();
        let key = Some(cfg.api_key.as_str());
        let status = |uri: &str, key: Option<&str>, f: Fault| {
            check(&req(uri, key), &cfg, &f).unwrap_err().status.as_u16()
        };
        assert_eq!(status(GOOD, Some("wrong"), Fault::None), 401);
        assert_eq!(status(GOOD, key, Fault::RefuseUpgrade(503)), 503);
        assert_eq!(status("/v1/text-to-speech/x/other", key, Fault::None), 404);
        let other_voice = GOOD.replace("fake_voice_pt", "someone_else");
        assert_eq!(status(&other_voice, key, Fault::None), 404);
        let base = "/v1/text-to-speech/fake_voice_pt/stream-input?";
        assert_eq!(
            status(
                &format!("{base}model_id=gpt-4&output_format=pcm_16000"),
                key,
                Fault::None
            ),
            400
        );
        assert_eq!(
            status(
                &format!("{base}model_id=eleven_flash_v2_5"),
                key,
                Fault::None
            ),
            400,
            "mp3 default"
        );
        for bad in [
            "inactivity_timeout=0",
            "inactivity_timeout=181",
            "language_code=pt-BR",
            "apply_text_normalization=x",
        ] {
            let uri = format!("{base}output_format=ulaw_8000&{bad}");
            assert_eq!(status(&uri, key, Fault::None), 422, "{bad}");
        }
        let ok = format!("{base}output_format=ulaw_8000&inactivity_timeout=180");
        let up = check(&req(&ok, key), &cfg, &Fault::None).unwrap();
        assert_eq!(
            (up.model_id.as_str(), up.inactivity_timeout_s),
            (DEFAULT_MODEL, 180)
        );
    }
}
