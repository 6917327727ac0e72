//! A live stream over a request-per-segment service: audio is buffered from one
//! `Finalize` to the next, and each segment is posted as one WAV whose text comes back as
//! `Final{speech_final: true}`.
//!
//! - A segment shorter than [`MIN_SEGMENT_MS`] or without one 20 ms window at
//!   [`SPEECH_RMS`] gets an empty final at once, without a request (the service rejects
//!   audio under 0.1 s and invents words for silence).
//! - Quiet before the first speech is trimmed to [`PRE_ROLL_MS`], so a segment does not
//!   carry the whole time the agent was talking.
//! - A segment that reaches [`MAX_SEGMENT_MS`] without a `Finalize` is posted anyway, its
//!   final with `speech_final: false`.
//! - One request at a time per stream, answered in order: a worker task takes the
//!   segments one after another while the input task keeps buffering.
//! - Any failed request ends the stream (`Error{fatal: true}`): the pipeline falls back.
//! - Dropping the input posts what is buffered (if worth it), then ends the events.
//! - Dropping the events cancels the request in flight.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::request::{self, Prepared};
use crate::audio::pcm;
use crate::providers::stt::{SttEvent, SttInput};

/// Shortest segment worth a request.
pub const MIN_SEGMENT_MS: u64 = 100;
/// RMS (PCM16) of a 20 ms window that counts as speech: about −50 dBFS.
pub const SPEECH_RMS: f64 = 100.0;
/// Quiet kept before the first speech of a segment.
pub const PRE_ROLL_MS: u64 = 300;
/// Longest segment: past it the audio is posted without waiting for `Finalize`.
pub const MAX_SEGMENT_MS: u64 = 60_000;

/// Segments waiting for the worker.
const QUEUE: usize = 32;

/// What the stream's tasks share.
pub struct Target {
    pub http: reqwest::Client,
    pub prepared: Prepared,
    pub sample_rate: u32,
    /// ISO-639-1, or `None` to let the service detect it.
    pub language: Option<String>,
    pub timeout_ms: u64,
}

/// Audio to post (empty: answer with an empty final without a request).
#[derive(Debug, PartialEq)]
pub struct Segment {
    pub samples: Vec<i16>,
    pub speech_final: bool,
}

/// The audio since the last cut.
pub struct SegmentBuffer {
    rate: u32,
    samples: Vec<i16>,
    heard_speech: bool,
}

impl SegmentBuffer {
    pub fn new(rate: u32) -> Self {
        Self {
            rate,
            samples: Vec::new(),
            heard_speech: false,
        }
    }

    fn samples_for(&self, ms: u64) -> usize {
        (u64::from(self.rate) * ms / 1000) as usize
    }

    pub fn push(&mut self, audio: &[i16]) {
        if !self.heard_speech {
            let window = self.samples_for(20).max(1);
            self.heard_speech = audio.chunks(window).any(|w| pcm::rms(w) >= SPEECH_RMS);
        }
        self.samples.extend_from_slice(audio);
        if !self.heard_speech {
            let keep = self.samples_for(PRE_ROLL_MS);
            let excess = self.samples.len().saturating_sub(keep);
            self.samples.drain(..excess);
        }
    }

    pub fn is_full(&self) -> bool {
        self.samples.len() >= self.samples_for(MAX_SEGMENT_MS)
    }

    /// Whether the buffer holds speech long enough to post.
    pub fn worth_sending(&self) -> bool {
        self.heard_speech && self.samples.len() >= self.samples_for(MIN_SEGMENT_MS)
    }

    /// Cuts the segment here.
    pub fn take(&mut self, speech_final: bool) -> Segment {
        let samples = if self.worth_sending() {
            std::mem::take(&mut self.samples)
        } else {
            Vec::new()
        };
        self.samples.clear();
        self.heard_speech = false;
        Segment {
            samples,
            speech_final,
        }
    }
}

/// Starts the stream's two tasks.
pub fn spawn(
    target: Target,
    input: mpsc::Receiver<SttInput>,
    events: mpsc::Sender<SttEvent>,
    span: tracing::Span,
) {
    use tracing::Instrument;
    let (queue_tx, queue_rx) = mpsc::channel(QUEUE);
    let buffer = SegmentBuffer::new(target.sample_rate);
    tokio::spawn(cut(input, queue_tx, buffer).instrument(span.clone()));
    tokio::spawn(post_in_order(Arc::new(target), queue_rx, events).instrument(span));
}

/// The input task: buffers audio, cuts segments.
async fn cut(
    mut input: mpsc::Receiver<SttInput>,
    queue: mpsc::Sender<Segment>,
    mut buffer: SegmentBuffer,
) {
    loop {
        let next = tokio::select! {
            next = input.recv() => next,
            // The worker ended (an error, or nobody listens): stop buffering.
            _ = queue.closed() => return,
        };
        let segment = match next {
            Some(SttInput::Audio(samples)) => {
                buffer.push(&samples);
                if !buffer.is_full() {
                    continue;
                }
                buffer.take(false)
            }
            Some(SttInput::Finalize) => buffer.take(true),
            None => {
                if buffer.worth_sending() {
                    let _ = queue.send(buffer.take(true)).await;
                }
                return;
            }
        };
        if queue.send(segment).await.is_err() {
            return;
        }
    }
}

/// The worker: one request at a time, events in segment order.
async fn post_in_order(
    target: Arc<Target>,
    mut queue: mpsc::Receiver<Segment>,
    events: mpsc::Sender<SttEvent>,
) {
    while let Some(segment) = queue.recv().await {
        let text = if segment.samples.is_empty() {
            String::new()
        } else {
            let posted = request::post(
                &target.http,
                &target.prepared,
                &segment.samples,
                target.sample_rate,
                target.language.as_deref(),
                target.timeout_ms,
            );
            let result = tokio::select! {
                result = posted => result,
                _ = events.closed() => return,
            };
            match result {
                Ok(transcript) => transcript.text,
                Err(error) => {
                    tracing::warn!(%error, "transcription stream over");
                    let _ = events.send(SttEvent::Error { error, fatal: true }).await;
                    return;
                }
            }
        };
        if text.is_empty() && !segment.speech_final {
            continue;
        }
        let event = SttEvent::Final {
            text,
            speech_final: segment.speech_final,
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: usize, amplitude: i16) -> Vec<i16> {
        (0..ms * 16)
            .map(|i| if i % 2 == 0 { amplitude } else { -amplitude })
            .collect()
    }

    #[test]
    fn short_or_silent_segments_are_not_worth_a_request() {
        let mut b = SegmentBuffer::new(16_000);
        b.push(&tone(2000, 50));
        assert!(!b.worth_sending(), "quiet");
        assert_eq!(
            b.samples.len(),
            16 * PRE_ROLL_MS as usize,
            "quiet is trimmed"
        );
        assert_eq!(
            b.take(true),
            Segment {
                samples: vec![],
                speech_final: true
            }
        );
        b.push(&tone(60, 3000));
        assert!(!b.worth_sending(), "60 ms is too short");
        b.push(&tone(40, 0));
        assert!(b.worth_sending(), "100 ms with speech in it");
        let segment = b.take(true);
        assert_eq!(segment.samples.len(), 1600);
        assert!(!b.worth_sending(), "the cut starts afresh");
    }

    #[test]
    fn pre_roll_is_kept_before_speech_and_a_full_buffer_is_cut() {
        let mut b = SegmentBuffer::new(16_000);
        b.push(&tone(1000, 0));
        b.push(&tone(200, 3000));
        b.push(&tone(1000, 0));
        assert_eq!(b.samples.len(), 16 * (300 + 200 + 1000));
        assert!(!b.is_full());
        b.push(&tone(MAX_SEGMENT_MS as usize, 0));
        assert!(b.is_full());
    }
}
