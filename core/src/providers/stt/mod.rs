//! Speech to text for cascaded agents and the turn-based API.
//!
//! Two shapes, one per use:
//! - [`SpeechToText`]: a live stream for one call. Caller audio goes in as it arrives;
//!   interim and final transcripts come out. Providers without live streaming (OpenAI
//!   transcription) buffer the audio and transcribe each segment the call's VAD cuts
//!   ([`SttInput::Finalize`]), so the pipeline does not care which kind it has.
//! - [`Transcriber`]: one whole recording in, its text out (turn-api, call insights).

pub mod deepgram;
pub mod openai_transcribe;
mod rest;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::ProviderError;

/// How a live stream should listen.
#[derive(Debug, Clone, PartialEq)]
pub struct SttOptions {
    /// Rate of the PCM16 mono audio that will be sent.
    pub sample_rate: u32,
    /// BCP-47 language (`pt-BR`); providers that take ISO-639-1 reduce it.
    pub language: String,
}

/// Input to a live stream.
#[derive(Debug, Clone, PartialEq)]
pub enum SttInput {
    /// Caller audio: PCM16 mono at [`SttOptions::sample_rate`].
    Audio(Vec<i16>),
    /// The call's own VAD heard the caller stop: transcribe what is pending now and answer
    /// with a final whose `speech_final` is true (Deepgram `Finalize`; a segment
    /// transcriber posts its buffer). Sent even when the provider may end it on its own.
    Finalize,
}

/// Output of a live stream.
#[derive(Debug, Clone, PartialEq)]
pub enum SttEvent {
    /// A guess that a later result replaces.
    Interim { text: String },
    /// Settled text for a span of audio; the pipeline appends finals into the caller's
    /// utterance. `speech_final`: the provider believes the caller finished speaking (an
    /// endpoint, `UtteranceEnd`, or the answer to a `Finalize`).
    Final { text: String, speech_final: bool },
    /// The provider heard speech begin (Deepgram `vad_events`).
    SpeechStarted,
    /// A provider error. `fatal`: the stream is over; open another (or fall back).
    Error { error: ProviderError, fatal: bool },
}

/// A live recognition for one call. Dropping `input` ends the stream politely (the provider
/// flushes and closes); dropping `events` aborts it.
pub struct SttStream {
    pub input: mpsc::Sender<SttInput>,
    pub events: mpsc::Receiver<SttEvent>,
}

/// A streaming speech-to-text provider.
pub trait SpeechToText: Send + Sync {
    /// Short name for logs and metrics (`deepgram`, `openai_transcribe`).
    fn name(&self) -> &'static str;

    /// Opens a stream. Resolves once the provider accepts audio.
    fn open(&self, options: SttOptions) -> BoxFuture<'static, Result<SttStream, ProviderError>>;
}

/// Text of a whole recording.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transcript {
    pub text: String,
    /// Detected or declared language, when the provider says.
    pub language: Option<String>,
    /// Seconds of audio the provider billed or measured, when it says.
    pub duration_s: Option<f64>,
}

/// A provider that transcribes one recording at a time.
pub trait Transcriber: Send + Sync {
    fn name(&self) -> &'static str;

    /// Transcribes PCM16 mono `samples` at `sample_rate`, spoken in `language` (BCP-47).
    fn transcribe(
        &self,
        samples: Vec<i16>,
        sample_rate: u32,
        language: String,
    ) -> BoxFuture<'static, Result<Transcript, ProviderError>>;
}
