//! Provider clients.
//!
//! Realtime (speech-to-speech) agents: `openai_realtime`, `gemini_live`,
//! `elevenlabs_agent`. Cascaded stages, each behind a small trait: `stt`, `llm`, `tts`.
pub mod catalog;
pub mod elevenlabs_agent;
mod error;
pub mod gemini_live;
pub mod llm;
pub mod openai_realtime;
pub mod stt;
pub mod tts;

pub use error::ProviderError;

#[cfg(test)]
mod test_support;
mod ws_connect;
mod ws_session;
