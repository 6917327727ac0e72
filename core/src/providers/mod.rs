//! Provider clients.
pub mod openai_realtime;
