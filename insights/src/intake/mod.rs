//! Call intake: `POST /webhooks/voip`, where any PBX reports a finished call (seed 000's
//! generic and Twilio-style payloads), and `POST /webhooks/recording` ([`upload`]), where our
//! bridge and turn-api hand over a call with its recording.
//!
//! A webhook passes, in order: the source allowlist ([`allowlist`], 403), the body limit
//! (413), the HMAC signature and optional timestamp ([`signature`], 401), the tenant named by
//! `?domain=` or `x-voice-domain` (404), the payload checks ([`payload`], 400/422). Then the
//! call and its outbox job are stored in one transaction ([`store`]); a duplicate answers 200
//! with the existing call's id.
//!
//! The signing secret is one for all tenants for now (`INSIGHTS_WEBHOOK_SECRET`), which is
//! why the signature is checked before the tenant is looked up: a caller without the secret
//! learns nothing about which domains exist. Per-tenant secrets come later (the tenant is
//! then resolved first, and its secret used).

pub mod allowlist;
pub mod payload;
pub mod signature;
pub mod store;
pub mod upload;
pub mod webhook;

pub use store::PROCESS_CALL;

use std::sync::Arc;

use axum::routing::post;
use axum::{Extension, Router};
use voice_core::telemetry::metrics::{Counter, Exposition};

use crate::config::WebhookSettings;
use crate::state::AppState;
use allowlist::Allowlist;
use signature::WebhookSecret;

/// What the webhook handler needs besides [`AppState`]: the secret, the parsed allowlist,
/// its settings and its counters.
#[derive(Debug)]
pub struct Intake {
    /// `None`: webhooks are refused (503) until a secret is set.
    pub secret: Option<WebhookSecret>,
    pub allow: Allowlist,
    pub settings: WebhookSettings,
    pub metrics: IntakeMetrics,
}

#[derive(Debug, Default)]
pub struct IntakeMetrics {
    pub received: Counter,
    pub accepted: Counter,
    pub duplicates: Counter,
    pub rejected: Counter,
}

impl IntakeMetrics {
    pub fn render(&self) -> String {
        let mut e = Exposition::default();
        e.counter(
            "insights_webhooks_received_total",
            "Webhooks received on POST /webhooks/voip",
            &self.received,
        );
        e.counter(
            "insights_webhooks_accepted_total",
            "Webhooks that stored a new call",
            &self.accepted,
        );
        e.counter(
            "insights_webhooks_duplicate_total",
            "Webhooks for a call already stored (answered 200, nothing changed)",
            &self.duplicates,
        );
        e.counter(
            "insights_webhooks_rejected_total",
            "Webhooks refused (signature, source, tenant, payload, body size)",
            &self.rejected,
        );
        e.finish()
    }
}

impl Intake {
    /// `settings` were validated with the configuration, so the allowlist parses; should it
    /// not, every source is refused rather than every source allowed.
    pub fn new(settings: &WebhookSettings, secret: Option<WebhookSecret>) -> Self {
        let allow = Allowlist::parse(&settings.allow_from).unwrap_or_else(|e| {
            tracing::error!(error = %e, "webhooks.allow_from: refusing every source");
            Allowlist::closed()
        });
        Self {
            secret,
            allow,
            settings: settings.clone(),
            metrics: IntakeMetrics::default(),
        }
    }

    /// With the secret from `INSIGHTS_WEBHOOK_SECRET`; unset or too short: webhooks are
    /// refused (503), said once here.
    pub fn from_env(settings: &WebhookSettings) -> Self {
        let secret = match WebhookSecret::from_env() {
            Ok(Some(s)) => Some(s),
            Ok(None) => {
                tracing::warn!(
                    "{} is not set: POST /webhooks/voip answers 503",
                    signature::SECRET_ENV
                );
                None
            }
            Err(e) => {
                tracing::error!("{e}: POST /webhooks/voip answers 503");
                None
            }
        };
        Self::new(settings, secret)
    }
}

/// The intake routes, with `intake` shared by their handlers.
pub fn routes(intake: Arc<Intake>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/webhooks/voip", post(webhook::receive))
        // The body is streamed to disk with its own cap ([storage] max_recording_bytes).
        .route(
            "/webhooks/recording",
            post(upload::receive).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .layer(Extension(intake))
}
