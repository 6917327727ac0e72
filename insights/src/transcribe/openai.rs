//! OpenAI transcriptions (`POST /v1/audio/transcriptions`, providers.md §6.1), the
//! fallback. `gpt-4o-transcribe-diarize` answers `diarized_json` (segments with speaker
//! labels "A", "B", …); Whisper answers `verbose_json` (segments and words, no speakers);
//! other models plain `json`. A stereo WAV is split and each channel sent alone, the
//! channel being the speaker.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde::Deserialize;
use voice_core::config::Secret;

use super::http::{self, Failure};
use super::settings::OpenAiSettings;
use super::{tidy, wav, Audio};
use crate::calls::model::{Transcription, Utterance, Word};

const SERVICE: &str = "openai";

pub struct OpenAi {
    endpoint: String,
    model: String,
    /// BCP-47 as configured, for the result.
    language: String,
    /// ISO-639-1, as the API takes it (`pt`).
    iso_language: String,
    key: Secret,
    timeout: Duration,
}

/// What one request made of one (mono or mixed) file.
struct Heard {
    words: Vec<Word>,
    utterances: Vec<Utterance>,
}

impl OpenAi {
    pub fn new(s: &OpenAiSettings, language: &str, key: Secret) -> Result<Self, String> {
        let base = s.url.trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(format!(
                "transcribe.openai.url must be http(s), got {base:?}"
            ));
        }
        let iso_language = language
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        Ok(Self {
            endpoint: format!("{base}/audio/transcriptions"),
            model: s.model.clone(),
            language: language.to_string(),
            iso_language,
            key,
            timeout: Duration::from_secs(s.timeout_secs.max(1)),
        })
    }

    pub async fn transcribe(
        &self,
        client: &reqwest::Client,
        audio: &Audio,
    ) -> Result<Transcription, Failure> {
        let stereo = wav::is_wav(&audio.content_type)
            && wav::channels(&audio.bytes).map_err(Failure::Permanent)? > 1;
        let mut words = Vec::new();
        let mut utterances = Vec::new();
        if stereo {
            let parts = wav::split_channels(&audio.bytes).map_err(Failure::Permanent)?;
            for (channel, mono) in (0u32..).zip(parts) {
                let heard = self
                    .request(client, mono, "audio/wav", Some(channel))
                    .await?;
                words.extend(heard.words);
                utterances.extend(heard.utterances);
            }
        } else {
            let heard = self
                .request(client, audio.bytes.to_vec(), &audio.content_type, None)
                .await?;
            words = heard.words;
            utterances = heard.utterances;
        }
        Ok(tidy::transcription(
            &self.language,
            SERVICE,
            words,
            utterances,
        ))
    }

    /// One upload; `channel` given: everything said is that speaker's.
    async fn request(
        &self,
        client: &reqwest::Client,
        bytes: Vec<u8>,
        content_type: &str,
        channel: Option<u32>,
    ) -> Result<Heard, Failure> {
        let format = self.format();
        let file = Part::bytes(bytes)
            .file_name(format!("call.{}", extension(content_type)))
            .mime_str(content_type)
            .map_err(|_| Failure::Permanent(format!("unusable content type {content_type:?}")))?;
        let mut form = Form::new()
            .part("file", file)
            .text("model", self.model.clone())
            .text("response_format", format);
        if !self.iso_language.is_empty() {
            form = form.text("language", self.iso_language.clone());
        }
        match format {
            "verbose_json" => {
                form = form
                    .text("timestamp_granularities[]", "segment")
                    .text("timestamp_granularities[]", "word");
            }
            // Calls run longer than the 30 s the diarize model takes in one piece.
            "diarized_json" => form = form.text("chunking_strategy", "auto"),
            _ => {}
        }
        let auth = http::auth_header(&format!("Bearer {}", self.key.expose()))
            .map_err(Failure::Permanent)?;
        let request = client
            .post(&self.endpoint)
            .header(reqwest::header::AUTHORIZATION, auth)
            .timeout(self.timeout)
            .multipart(form);
        let body = http::send(SERVICE, request).await?;
        let answer: Answer = http::json(SERVICE, &body)?;
        Ok(read(answer, channel))
    }

    fn format(&self) -> &'static str {
        if self.model.contains("diarize") {
            "diarized_json"
        } else if self.model.starts_with("whisper") {
            "verbose_json"
        } else {
            "json"
        }
    }
}

fn extension(content_type: &str) -> &'static str {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    match mime.to_ascii_lowercase().as_str() {
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/ogg" | "audio/opus" => "ogg",
        "audio/flac" | "audio/x-flac" => "flac",
        "audio/webm" => "webm",
        "audio/mp4" | "audio/m4a" | "audio/x-m4a" => "m4a",
        _ => "wav",
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    text: String,
    #[serde(default)]
    segments: Vec<Segment>,
    #[serde(default)]
    words: Vec<OaWord>,
}

#[derive(Deserialize)]
struct Segment {
    start: f64,
    end: f64,
    #[serde(default)]
    text: String,
    #[serde(default)]
    speaker: Option<String>,
}

#[derive(Deserialize)]
struct OaWord {
    word: String,
    start: f64,
    end: f64,
}

fn read(answer: Answer, channel: Option<u32>) -> Heard {
    // Labels numbered in order of first appearance: "A" → 0, "B" → 1, …
    let mut labels: HashMap<String, u32> = HashMap::new();
    let mut speaker_of = |label: &Option<String>| -> u32 {
        if let Some(c) = channel {
            return c;
        }
        match label {
            Some(l) => {
                let next = labels.len() as u32;
                *labels.entry(l.clone()).or_insert(next)
            }
            None => 0,
        }
    };
    let mut utterances = Vec::new();
    let mut words = Vec::new();
    let diarized = answer.segments.iter().any(|s| s.speaker.is_some());
    for s in &answer.segments {
        let speaker = speaker_of(&s.speaker);
        utterances.extend(tidy::utterance(speaker, s.start, s.end, &s.text));
    }
    let word_speaker = channel.or((!diarized).then_some(0));
    words.extend(
        answer
            .words
            .iter()
            .filter_map(|w| tidy::word(&w.word, w.start, w.end, word_speaker, None)),
    );
    if utterances.is_empty() {
        // Plain `json`: the text without times.
        let end = words.last().map_or(0.0, |w| w.end);
        utterances.extend(tidy::utterance(
            channel.unwrap_or(0),
            0.0,
            end,
            &answer.text,
        ));
    }
    Heard { words, utterances }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diarized_labels_become_numbers_in_order() {
        let answer: Answer = serde_json::from_value(serde_json::json!({"text": "x",
        "segments": [
            {"speaker": "B", "start": 0.0, "end": 1.0, "text": "Oi"},
            {"speaker": "A", "start": 1.0, "end": 2.0, "text": "Olá"},
            {"speaker": "B", "start": 2.0, "end": 1.5, "text": "Tchau"},
        ]}))
        .unwrap();
        let heard = read(answer, None);
        let speakers: Vec<u32> = heard.utterances.iter().map(|u| u.speaker).collect();
        assert_eq!(speakers, vec![0, 1, 0]);
        assert_eq!(heard.utterances[2].end, 2.0);
    }
}
