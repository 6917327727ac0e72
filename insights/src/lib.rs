//! call-insights: the tenancy admin REST API ([`admin`]) and the call-insights pipeline,
//! which is being built (issue 8): so far the webhook intake and the job queue.
//!
//! - [`config`]: settings (embedded default, file, `VOICE_INSIGHTS__…` environment).
//! - [`state`]: what every request shares (database, credentials key, platform token, limits).
//! - [`http`]: the router, errors, extractors, health, metrics, OpenAPI.
//! - [`admin`]: the `/v1/tenants…` routes.
//! - [`intake`]: `POST /webhooks/voip` (signed, idempotent; a call and its job in one
//!   transaction, the outbox).
//! - [`queue`]: jobs on Redis Streams with consumer groups, retries, reclaiming and a
//!   dead-letter stream.
//! - [`relay`]: the outbox relay, moving accepted jobs from PostgreSQL to the queue.

pub mod admin;
pub mod analyze;
pub mod calls;
pub mod config;
pub mod crm;
pub mod http;
pub mod intake;
pub mod panel;
pub mod privacy;
pub mod queue;
pub mod relay;
pub mod state;
pub mod storage;
pub mod transcribe;
pub mod worker;
