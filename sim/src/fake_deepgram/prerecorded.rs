//! A pre-recorded upload transcribed by the live machine run offline: the WAV's audio
//! through a [`ListenStream`] whose utterances split at 500 ms of quiet, each utterance
//! the next scripted line.

use serde_json::Value;
use voice_core::audio::wav;

use super::messages::{self, Utterance};
use super::params::ListenParams;
use super::stream::{Kind, ListenStream, Tuning};
use super::Shared;

/// Quiet that splits two utterances of a recording.
const SPLIT_MS: u64 = 500;

/// The §4.2 body for `wav_bytes`, or why the upload is refused.
pub(crate) fn transcribe(
    shared: &Shared,
    mut params: ListenParams,
    wav_bytes: &[u8],
) -> Result<Value, String> {
    let audio = wav::parse(wav_bytes).map_err(|e| format!("corrupt or unsupported data: {e}"))?;
    if audio.channels != 1 {
        return Err(format!(
            "this fake only takes mono WAV, not {} channels",
            audio.channels
        ));
    }
    if !(8_000..=48_000).contains(&audio.rate) {
        return Err(format!("unsupported sample rate {}", audio.rate));
    }
    // Offline there is no live feedback to give: only the finals matter.
    params.interim_results = false;
    params.vad_events = false;
    params.utterance_end_ms = None;
    let tuning = Tuning {
        interim_every_ms: 1000,
        vad_threshold_rms: shared.cfg.vad_threshold_rms,
        repeat_final_on_finalize: false,
        settle_ms: Some(SPLIT_MS),
    };
    let with_utterances = params.utterances;
    let mut stream = ListenStream::new(params, tuning, shared.script.clone(), audio.rate);
    stream.push(&audio.samples);
    stream.close_stream();
    let utterances: Vec<Utterance> = stream
        .out
        .drain(..)
        .filter_map(|o| match o.kind {
            Kind::Final {
                transcript, span, ..
            } if !transcript.is_empty() => Some(Utterance {
                text: transcript,
                span,
            }),
            _ => None,
        })
        .collect();
    let duration_ms = audio.samples.len() as u64 * 1000 / u64::from(audio.rate);
    Ok(messages::prerecorded(
        stream.request_id(),
        duration_ms,
        &utterances,
        with_utterances,
    ))
}
