//! Counters of the recording service, for the Prometheus exposition of the service that
//! owns it.

use crate::telemetry::metrics::{Counter, Exposition, Gauge};

#[derive(Debug, Default)]
pub struct RecordingMetrics {
    pub calls_started: Counter,
    pub calls_finished: Counter,
    pub calls_active: Gauge,
    /// Audio, cut or fact messages a call dropped because its queue was full.
    pub dropped_messages: Counter,
    /// File errors (disk full, permissions…): the file concerned stops being written.
    pub write_errors: Counter,
}

impl RecordingMetrics {
    pub fn expose(&self, out: &mut Exposition) {
        out.counter(
            "recording_calls_started_total",
            "Calls whose recording started",
            &self.calls_started,
        );
        out.counter(
            "recording_calls_finished_total",
            "Calls whose recording files were closed",
            &self.calls_finished,
        );
        out.gauge(
            "recording_calls_active",
            "Calls being recorded",
            &self.calls_active,
        );
        out.counter(
            "recording_dropped_messages_total",
            "Recording messages dropped because a call's queue was full",
            &self.dropped_messages,
        );
        out.counter(
            "recording_write_errors_total",
            "Errors writing recording files",
            &self.write_errors,
        );
    }
}
