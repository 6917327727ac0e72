//! Counters of the uploader, in the recording service's style.

use crate::telemetry::metrics::{Counter, Exposition};

#[derive(Debug, Default)]
pub struct UploadMetrics {
    /// Calls call-insights accepted (duplicates included).
    pub uploaded: Counter,
    /// Calls set aside for good (refused with a 4xx, or files unusable).
    pub failed: Counter,
    /// Attempts that will be tried again (5xx, 408, 429, network, timeout).
    pub retried: Counter,
}

impl UploadMetrics {
    pub fn expose(&self, out: &mut Exposition) {
        out.counter(
            "recording_uploads_total",
            "Call recordings call-insights accepted",
            &self.uploaded,
        );
        out.counter(
            "recording_upload_failures_total",
            "Call recordings set aside for good (refused or unusable)",
            &self.failed,
        );
        out.counter(
            "recording_upload_retries_total",
            "Recording upload attempts that failed and will be tried again",
            &self.retried,
        );
    }
}
