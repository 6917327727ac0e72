//! The three stages, each a chain of providers tried in order. Nothing has been played to
//! the caller while a turn is computed, so any failure of a provider (refused, down, too
//! slow, broken mid-answer) simply hands the whole stage to the next one.

use std::sync::Arc;
use std::time::Duration;

use tracing::warn;
use voice_core::agent::cascaded::SentenceSplitter;
use voice_core::audio::Resampler;
use voice_core::providers::llm::{ChatEvent, ChatModel, ChatRequest, ToolCall};
use voice_core::providers::stt::Transcriber;
use voice_core::providers::tts::{TextToSpeech, TtsEvent};
use voice_core::providers::ProviderError;

/// Most reply audio collected from one provider (a provider that never stops is broken).
const MAX_REPLY_AUDIO_S: usize = 120;

/// The first transcriber's text that answers within `timeout`.
pub async fn transcribe(
    chain: &[Arc<dyn Transcriber>],
    samples: &[i16],
    rate: u32,
    language: &str,
    timeout: Duration,
) -> Result<String, ProviderError> {
    let mut last = ProviderError::Config("no STT provider configured".into());
    for stt in chain {
        let attempt = stt.transcribe(samples.to_vec(), rate, language.to_string());
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(transcript)) => return Ok(transcript.text),
            Ok(Err(e)) => last = e,
            Err(_) => last = ProviderError::Timeout,
        }
        warn!(provider = stt.name(), error = %last, "STT failed; trying the next");
    }
    Err(last)
}

/// One answer round: its words and the tools it called.
#[derive(Debug, Default)]
pub struct Round {
    pub text: String,
    pub calls: Vec<ToolCall>,
}

/// The first chat model that answers `request` whole within `timeout`.
pub async fn answer(
    chain: &[Arc<dyn ChatModel>],
    request: &ChatRequest,
    timeout: Duration,
) -> Result<Round, ProviderError> {
    let mut last = ProviderError::Config("no LLM provider configured".into());
    for model in chain {
        match tokio::time::timeout(timeout, whole_answer(model.as_ref(), request)).await {
            Ok(Ok(round)) => return Ok(round),
            Ok(Err(e)) => last = e,
            Err(_) => last = ProviderError::Timeout,
        }
        warn!(provider = model.name(), error = %last, "LLM failed; trying the next");
    }
    Err(last)
}

async fn whole_answer(
    model: &dyn ChatModel,
    request: &ChatRequest,
) -> Result<Round, ProviderError> {
    let mut events = model.stream(request.clone()).await?;
    let mut round = Round::default();
    loop {
        match events.recv().await {
            Some(ChatEvent::Text(t)) => round.text.push_str(&t),
            Some(ChatEvent::ToolCall(call)) => round.calls.push(call),
            Some(ChatEvent::Done(_)) => {
                round.text = round.text.trim().to_string();
                return Ok(round);
            }
            Some(ChatEvent::Error(e)) => return Err(e),
            None => return Err(ProviderError::Unavailable("LLM stream closed".into())),
        }
    }
}

/// `text` spoken by the first provider that finishes within `timeout`, at `rate`.
pub async fn speak(
    chain: &[Arc<dyn TextToSpeech>],
    text: &str,
    rate: u32,
    timeout: Duration,
) -> Result<Vec<i16>, ProviderError> {
    let mut last = ProviderError::Config("no TTS provider configured".into());
    for tts in chain {
        match tokio::time::timeout(timeout, whole_speech(tts.as_ref(), text)).await {
            Ok(Ok(audio)) => return resample(&audio, tts.sample_rate(), rate),
            Ok(Err(e)) => last = e,
            Err(_) => last = ProviderError::Timeout,
        }
        warn!(provider = tts.name(), error = %last, "TTS failed; trying the next");
    }
    Err(last)
}

async fn whole_speech(tts: &dyn TextToSpeech, text: &str) -> Result<Vec<i16>, ProviderError> {
    let stream = tts.open().await?;
    let limit = MAX_REPLY_AUDIO_S * tts.sample_rate() as usize;
    // Sentence by sentence, as the streaming providers want whole pieces to flush.
    let mut splitter = SentenceSplitter::default();
    let pieces: Vec<String> = splitter
        .push(text)
        .into_iter()
        .chain(splitter.finish())
        .collect();
    let sender = stream.text;
    let mut audio_rx = stream.audio;
    // The pieces go out while audio comes back: a provider may hold its first audio until
    // it has read all the text, or stop reading until its audio is taken.
    let feed = async move {
        for piece in pieces {
            if sender.send(piece).await.is_err() {
                break; // the stream ended; the audio side says why
            }
        }
        // `sender` dropped here: the end of the text.
    };
    let collect = async {
        let mut audio = Vec::new();
        loop {
            match audio_rx.recv().await {
                Some(TtsEvent::Audio(samples)) => {
                    audio.extend_from_slice(&samples);
                    if audio.len() > limit {
                        return Err(ProviderError::Protocol(format!(
                            "more than {MAX_REPLY_AUDIO_S} s of audio for one reply"
                        )));
                    }
                }
                Some(TtsEvent::Done) => return Ok(audio),
                Some(TtsEvent::Error(e)) => return Err(e),
                None => return Err(ProviderError::Unavailable("TTS stream closed".into())),
            }
        }
    };
    let ((), audio) = tokio::join!(feed, collect);
    let audio = audio?;
    if audio.is_empty() && !text.trim().is_empty() {
        return Err(ProviderError::Protocol("TTS produced no audio".into()));
    }
    Ok(audio)
}

fn resample(audio: &[i16], from: u32, to: u32) -> Result<Vec<i16>, ProviderError> {
    if from == to {
        return Ok(audio.to_vec());
    }
    let mut r = Resampler::new(from, to).map_err(|e| ProviderError::Config(e.to_string()))?;
    let mut out = Vec::with_capacity(audio.len() * to as usize / from.max(1) as usize + 64);
    r.process(audio, &mut out);
    r.flush(&mut out);
    Ok(out)
}
