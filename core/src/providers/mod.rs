//! Provider clients.
pub mod elevenlabs_agent;
pub mod gemini_live;
pub mod openai_realtime;
