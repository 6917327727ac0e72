//! Text to speech for cascaded agents and the turn-based API.
//!
//! One stream per answer: the pipeline sends text pieces (sentences or clauses) as the
//! LLM produces them, and audio comes back in the same order. WebSocket providers
//! (ElevenLabs `stream-input`) keep one socket for the answer; request-per-text providers
//! (OpenAI speech, local Piper) render the pieces one after another. Closing `text`
//! ends the answer; dropping `audio` cancels it (barge-in).

pub mod elevenlabs;
pub mod openai_speech;
pub mod piper;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::ProviderError;

/// Output of a speech stream.
#[derive(Debug, Clone, PartialEq)]
pub enum TtsEvent {
    /// PCM16 mono audio at the provider's [`TextToSpeech::sample_rate`].
    Audio(Vec<i16>),
    /// All the text sent before `text` closed has been spoken. Nothing follows.
    Done,
    /// The stream broke. Nothing follows.
    Error(ProviderError),
}

/// One answer's speech.
pub struct TtsStream {
    /// Text pieces, in speaking order. Each piece is spoken as soon as it arrives
    /// (WebSocket providers are told to flush), so send whole sentences or clauses.
    pub text: mpsc::Sender<String>,
    pub audio: mpsc::Receiver<TtsEvent>,
}

/// A streaming text-to-speech provider.
pub trait TextToSpeech: Send + Sync {
    /// Short name for logs and metrics (`elevenlabs_tts`, `openai_speech`, `piper`).
    fn name(&self) -> &'static str;

    /// Rate of the audio it produces.
    fn sample_rate(&self) -> u32;

    /// Opens a stream for one answer. Resolves once text can be sent.
    fn open(&self) -> BoxFuture<'static, Result<TtsStream, ProviderError>>;
}
