//! Provider clients.
pub mod elevenlabs_agent;
pub mod gemini_live;
pub mod openai_realtime;

#[cfg(test)]
mod test_support;
mod ws_connect;
mod ws_session;
