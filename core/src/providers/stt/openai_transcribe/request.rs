//! One `POST …/audio/transcriptions` (providers.md §6.1): a WAV built in memory as the
//! multipart `file` part, `model`, `language` in ISO-639-1, `response_format=json`.

use serde::Deserialize;

use super::config::OpenAiTranscribeConfig;
use crate::audio::wav;
use crate::providers::stt::{rest, Transcript};
use crate::providers::ProviderError;

const SERVICE: &str = "transcription";

/// Settings checked before any audio is taken: the URL, the model, the key.
pub struct Prepared {
    pub url: String,
    pub model: String,
    pub auth: reqwest::header::HeaderValue,
}

pub fn prepare(cfg: &OpenAiTranscribeConfig) -> Result<Prepared, ProviderError> {
    rest::require_http_url(&cfg.url)?;
    if cfg.model.trim().is_empty() {
        return Err(ProviderError::Config("model must not be empty".into()));
    }
    let setting = "providers.openai_transcribe.api_key";
    let key = rest::api_key(&cfg.api_key, &cfg.api_key_env, setting)?;
    Ok(Prepared {
        url: cfg.url.clone(),
        model: cfg.model.clone(),
        auth: rest::auth_header(&format!("Bearer {}", key.expose()))?,
    })
}

/// The ISO-639-1 part of a BCP-47 tag (`pt-BR` → `pt`); `None` when there is none
/// (the service then detects the language).
pub fn iso639_1(language: &str) -> Option<String> {
    let primary = language
        .split(['-', '_'])
        .next()?
        .trim()
        .to_ascii_lowercase();
    (primary.len() == 2 && primary.chars().all(|c| c.is_ascii_lowercase())).then_some(primary)
}

/// Transcribes `samples` within `budget_ms`.
pub async fn post(
    http: &reqwest::Client,
    prepared: &Prepared,
    samples: &[i16],
    sample_rate: u32,
    language: Option<&str>,
    budget_ms: u64,
) -> Result<Transcript, ProviderError> {
    let file = reqwest::multipart::Part::bytes(wav::encode(sample_rate, 1, samples))
        .file_name("audio.wav")
        .mime_str("audio/wav")
        .map_err(|e| ProviderError::Config(format!("multipart: {e}")))?;
    let mut form = reqwest::multipart::Form::new()
        .part("file", file)
        .text("model", prepared.model.clone())
        .text("response_format", "json");
    if let Some(language) = language {
        form = form.text("language", language.to_string());
    }
    rest::within(budget_ms, async {
        let response = http
            .post(&prepared.url)
            .header(reqwest::header::AUTHORIZATION, prepared.auth.clone())
            .multipart(form)
            .send()
            .await
            .map_err(|e| rest::transport_error(SERVICE, e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(rest::status_error(SERVICE, status));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| rest::transport_error(SERVICE, e))?;
        parse_response(&body)
    })
    .await
}

#[derive(Deserialize)]
struct Response {
    text: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    duration: Option<f64>,
}

/// `{"text": …}`; `language` and `duration` when the service adds them (verbose_json,
/// some compatible services).
pub fn parse_response(body: &[u8]) -> Result<Transcript, ProviderError> {
    let r: Response = serde_json::from_slice(body)
        .map_err(|e| ProviderError::Protocol(format!("{SERVICE} answer unreadable: {e}")))?;
    Ok(Transcript {
        text: r.text.trim().to_string(),
        language: r.language,
        duration_s: r.duration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn languages_are_reduced_to_iso_639_1() {
        assert_eq!(iso639_1("pt-BR").as_deref(), Some("pt"));
        assert_eq!(iso639_1("EN_us").as_deref(), Some("en"));
        assert_eq!(iso639_1("es").as_deref(), Some("es"));
        assert_eq!(iso639_1(""), None);
        assert_eq!(iso639_1("yue-HK"), None, "no two-letter code");
        assert_eq!(iso639_1("p1-BR"), None);
    }

    #[test]
    fn answers_are_parsed_strictly() {
        let t = parse_response(br#"{"text":" Ol\u00e1, bom dia. ","usage":{"type":"tokens"}}"#)
            .unwrap();
        assert_eq!(t.text, "Olá, bom dia.");
        let t = parse_response(br#"{"text":"x","language":"portuguese","duration":3.2}"#).unwrap();
        assert_eq!(
            (t.language.as_deref(), t.duration_s),
            (Some("portuguese"), Some(3.2))
        );
        for bad in [&b"{\"txt\":\"x\"}"[..], b"not json", b"{\"text\":1}"] {
            assert!(matches!(
                parse_response(bad),
                Err(ProviderError::Protocol(_))
            ));
        }
    }

    #[test]
    fn settings_are_checked_before_any_audio() {
        let ok = OpenAiTranscribeConfig {
            api_key: Secret::new("sk-k"),
            ..Default::default()
        };
        let p = prepare(&ok).unwrap();
        assert_eq!(p.auth, "Bearer sk-k");
        assert!(p.auth.is_sensitive());
        let bad = [
            OpenAiTranscribeConfig {
                url: "wss://x".into(),
                ..ok.clone()
            },
            OpenAiTranscribeConfig {
                model: " ".into(),
                ..ok.clone()
            },
            OpenAiTranscribeConfig {
                api_key: Secret::default(),
                api_key_env: "VOICE_TEST_UNSET_KEY_VAR".into(),
                ..ok.clone()
            },
        ];
        for cfg in bad {
            assert!(matches!(prepare(&cfg), Err(ProviderError::Config(_))));
        }
    }
}
