//! Deepgram pre-recorded (`POST /v1/listen`, providers.md §4.2): the whole recording in
//! one request, diarized by speaker, or by channel for a stereo recording.

use std::time::Duration;

use serde::Deserialize;
use voice_core::config::Secret;

use super::http::{self, Failure};
use super::settings::DeepgramSettings;
use super::{tidy, wav, Audio};
use crate::calls::model::{Transcription, Utterance, Word};

const SERVICE: &str = "deepgram";

pub struct Deepgram {
    endpoint: String,
    model: String,
    language: String,
    key: Secret,
    timeout: Duration,
}

impl Deepgram {
    pub fn new(s: &DeepgramSettings, language: &str, key: Secret) -> Result<Self, String> {
        let base = s.url.trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(format!(
                "transcribe.deepgram.url must be http(s), got {base:?}"
            ));
        }
        Ok(Self {
            endpoint: format!("{base}/v1/listen"),
            model: s.model.clone(),
            language: language.to_string(),
            key,
            timeout: Duration::from_secs(s.timeout_secs.max(1)),
        })
    }

    pub async fn transcribe(
        &self,
        client: &reqwest::Client,
        audio: &Audio,
    ) -> Result<Transcription, Failure> {
        // Our bridge records caller and agent on their own channels: the channel is the
        // speaker, more reliable than voice diarization.
        let by_channel = wav::is_wav(&audio.content_type)
            && wav::channels(&audio.bytes).map_err(Failure::Permanent)? > 1;
        let mut query = vec![
            ("model", self.model.as_str()),
            ("language", self.language.as_str()),
            ("utterances", "true"),
            ("punctuate", "true"),
            ("smart_format", "true"),
        ];
        query.push(if by_channel {
            ("multichannel", "true")
        } else {
            ("diarize", "true")
        });
        let auth = http::auth_header(&format!("Token {}", self.key.expose()))
            .map_err(Failure::Permanent)?;
        let request = client
            .post(&self.endpoint)
            .query(&query)
            .header(reqwest::header::AUTHORIZATION, auth)
            .header(reqwest::header::CONTENT_TYPE, audio.content_type.as_str())
            .timeout(self.timeout)
            .body(audio.bytes.clone());
        let body = http::send(SERVICE, request).await?;
        let answer: Answer = http::json(SERVICE, &body)?;
        Ok(read(answer, by_channel, &self.language))
    }
}

#[derive(Deserialize)]
struct Answer {
    results: Results,
}

#[derive(Deserialize)]
struct Results {
    #[serde(default)]
    channels: Vec<Channel>,
    #[serde(default)]
    utterances: Option<Vec<DgUtterance>>,
}

#[derive(Deserialize)]
struct Channel {
    #[serde(default)]
    alternatives: Vec<Alternative>,
}

#[derive(Deserialize)]
struct Alternative {
    #[serde(default)]
    transcript: String,
    #[serde(default)]
    words: Vec<DgWord>,
}

#[derive(Deserialize)]
struct DgUtterance {
    start: f64,
    end: f64,
    #[serde(default)]
    channel: u32,
    #[serde(default)]
    speaker: Option<u32>,
    #[serde(default)]
    transcript: String,
    #[serde(default)]
    words: Vec<DgWord>,
}

#[derive(Deserialize)]
struct DgWord {
    word: String,
    #[serde(default)]
    punctuated_word: Option<String>,
    start: f64,
    end: f64,
    #[serde(default)]
    confidence: Option<f64>,
    #[serde(default)]
    speaker: Option<u32>,
}

fn word(w: &DgWord, speaker: Option<u32>) -> Option<Word> {
    let text = w.punctuated_word.as_deref().unwrap_or(&w.word);
    tidy::word(text, w.start, w.end, speaker, w.confidence)
}

fn read(answer: Answer, by_channel: bool, language: &str) -> Transcription {
    let mut words = Vec::new();
    let mut utterances: Vec<Utterance> = Vec::new();
    match answer.results.utterances {
        Some(list) => {
            for u in &list {
                let speaker = if by_channel {
                    u.channel
                } else {
                    u.speaker.unwrap_or(0)
                };
                utterances.extend(tidy::utterance(speaker, u.start, u.end, &u.transcript));
                words.extend(u.words.iter().filter_map(|w| {
                    let who = if by_channel {
                        Some(u.channel)
                    } else {
                        w.speaker.or(u.speaker)
                    };
                    word(w, who)
                }));
            }
        }
        // Without utterances: one per channel, from its words.
        None => {
            for (channel, c) in (0u32..).zip(&answer.results.channels) {
                let Some(best) = c.alternatives.first() else {
                    continue;
                };
                let mine: Vec<Word> = best
                    .words
                    .iter()
                    .filter_map(|w| word(w, if by_channel { Some(channel) } else { w.speaker }))
                    .collect();
                if let (Some(first), Some(last)) = (mine.first(), mine.last()) {
                    utterances.extend(tidy::utterance(
                        channel,
                        first.start,
                        last.end,
                        &best.transcript,
                    ));
                }
                words.extend(mine);
            }
        }
    }
    tidy::transcription(language, SERVICE, words, utterances)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_timestamps_are_dropped_not_panicked_on() {
        let answer: Answer = serde_json::from_value(serde_json::json!({"results": {
        "channels": [],
        "utterances": [
            {"start": 2.0, "end": 1.0, "channel": 0, "speaker": 1, "transcript": "b",
             "words": [{"word": "b", "start": -3.0, "end": 1.0}]},
            {"start": 0.0, "end": 1.0, "channel": 0, "speaker": 0, "transcript": "a", "words": []},
        ]}}))
        .unwrap();
        let t = read(answer, false, "pt-BR");
        assert_eq!(t.text, "a\nb");
        assert_eq!(t.utterances[1].end, 2.0);
        assert_eq!(t.words[0].start, 0.0);
        assert_eq!(t.words[0].speaker, Some(1));
    }
}
