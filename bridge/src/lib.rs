//! voice-bridge: FreeSWITCH streams call audio here over WebSocket (mod_audio_stream or
//! mod_audio_fork); each call gets an AI agent whose answer is played back into the call.
//!
//! - [`stream`]: the WebSocket endpoint, dialect detection, inbound frame decoding.
//! - [`call`]: the per-call task (agent session, resampling, barge-in).
//! - [`playout`]: the paced playout queue and the message formats of each module build.
//! - [`server`], [`health`], [`metrics`]: HTTP serving and operations.

pub mod agents;
pub mod call;
pub mod config;
pub mod esl_events;
pub mod front_end;
pub mod health;
pub mod metrics;
pub mod playout;
pub mod prompts;
pub mod server;
pub mod state;
pub mod stream;
pub mod tenancy;
pub mod tools;
