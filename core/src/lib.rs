//! voice-core: what the bridge, turn-api and call-insights share.
//!
//! - [`audio`]: PCM framing, G.711, resampling.
//! - [`agent`]: the `Agent` trait every AI back end (realtime or cascaded) implements.
//! - [`providers`]: provider clients (OpenAI Realtime, …).
//! - [`esl`]: FreeSWITCH event-socket client.
//! - [`recording`]: per-call stereo recordings (WAV or Ogg/Opus) and their facts files.
//! - [`db`], [`tenancy`]: PostgreSQL, tenants and everything they own.
//! - [`config`]: TOML configuration with environment overrides.
//! - [`telemetry`]: logging and Prometheus metrics.

pub mod agent;
pub mod audio;
pub mod config;
pub mod db;
pub mod esl;
pub mod onnx;
pub mod providers;
pub mod recording;
pub mod telemetry;
pub mod tenancy;
pub mod text;
