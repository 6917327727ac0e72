//! Prometheus metrics of call-insights.

use voice_core::telemetry::metrics::{Counter, Exposition};

#[derive(Default)]
pub struct Metrics {
    pub requests: Counter,
    pub client_errors: Counter,
    pub server_errors: Counter,
    pub rate_limited: Counter,
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut e = Exposition::default();
        e.counter("insights_requests_total", "HTTP requests", &self.requests);
        e.counter(
            "insights_client_errors_total",
            "Answers with a 4xx status",
            &self.client_errors,
        );
        e.counter(
            "insights_server_errors_total",
            "Answers with a 5xx status",
            &self.server_errors,
        );
        e.counter(
            "insights_rate_limited_total",
            "Requests refused by a tenant's rate limit (429)",
            &self.rate_limited,
        );
        e.finish()
    }
}
