//! call-insights: today the tenancy admin REST API ([`admin`]); issue 8 adds call intake,
//! processing and the calls API to the same service.
//!
//! - [`config`]: settings (embedded default, file, `VOICE_INSIGHTS__…` environment).
//! - [`state`]: what every request shares (database, credentials key, platform token, limits).
//! - [`http`]: the router, errors, extractors, health, metrics, OpenAPI.
//! - [`admin`]: the `/v1/tenants…` routes.

pub mod admin;
pub mod config;
pub mod http;
pub mod state;
