//! Prometheus metrics of the turn-api.

use voice_core::telemetry::metrics::{Counter, Exposition, Histogram, LATENCY_BUCKETS};

pub struct Metrics {
    pub requests: Counter,
    pub client_errors: Counter,
    pub server_errors: Counter,
    pub provider_errors: Counter,
    pub sessions_created: Counter,
    pub sessions_ended: Counter,
    pub turns: Counter,
    pub limit_goodbyes: Counter,
    /// Whole `POST /turns` requests that succeeded.
    pub turn_seconds: Histogram,
    /// The part of a turn spent outside the engine (body, files, store).
    pub overhead_seconds: Histogram,
    pub greeting_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Counter::default(),
            client_errors: Counter::default(),
            server_errors: Counter::default(),
            provider_errors: Counter::default(),
            sessions_created: Counter::default(),
            sessions_ended: Counter::default(),
            turns: Counter::default(),
            limit_goodbyes: Counter::default(),
            turn_seconds: Histogram::new(LATENCY_BUCKETS),
            overhead_seconds: Histogram::new(LATENCY_BUCKETS),
            greeting_seconds: Histogram::new(LATENCY_BUCKETS),
        }
    }
}

impl Metrics {
    /// The text exposition, with the recording uploader's counters when it runs.
    pub fn render(&self, uploader: Option<&voice_core::recording::upload::Uploader>) -> String {
        let mut e = Exposition::default();
        if let Some(uploader) = uploader {
            uploader.metrics().expose(&mut e);
        }
        e.counter("turn_api_requests_total", "HTTP requests", &self.requests);
        e.counter(
            "turn_api_client_errors_total",
            "Answers with a 4xx status",
            &self.client_errors,
        );
        e.counter(
            "turn_api_server_errors_total",
            "Answers with a 5xx status",
            &self.server_errors,
        );
        e.counter(
            "turn_api_provider_errors_total",
            "Greetings and turns failed by providers (502/503)",
            &self.provider_errors,
        );
        e.counter(
            "turn_api_sessions_created_total",
            "Sessions created",
            &self.sessions_created,
        );
        e.counter(
            "turn_api_sessions_ended_total",
            "Sessions ended by the client",
            &self.sessions_ended,
        );
        e.counter("turn_api_turns_total", "Caller turns answered", &self.turns);
        e.counter(
            "turn_api_limit_goodbyes_total",
            "Turns answered with the goodbye because a session limit was reached",
            &self.limit_goodbyes,
        );
        e.histogram(
            "turn_api_turn_seconds",
            "Duration of a successful turn request",
            &self.turn_seconds,
        );
        e.histogram(
            "turn_api_overhead_seconds",
            "Time of a turn request spent outside the engine",
            &self.overhead_seconds,
        );
        e.histogram(
            "turn_api_greeting_seconds",
            "Duration of a successful session creation",
            &self.greeting_seconds,
        );
        e.finish()
    }
}
