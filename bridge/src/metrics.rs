//! The bridge's Prometheus metrics, served at `/metrics`.

use voice_core::recording::upload::Uploader;
use voice_core::recording::Recorders;
use voice_core::telemetry::metrics::{Counter, Exposition, Gauge, Histogram, LATENCY_BUCKETS};

pub struct BridgeMetrics {
    pub calls_active: Gauge,
    pub calls_total: Counter,
    pub calls_refused: Counter,
    /// Calls over their tenant's cap (transferred, or told to call back).
    pub calls_over_cap: Counter,
    pub stream_reconnects: Counter,
    pub frames_in: Counter,
    pub frames_out: Counter,
    pub bad_frames: Counter,
    pub playout_underruns: Counter,
    pub barge_ins: Counter,
    pub agent_input_dropped: Counter,
    pub provider_errors: Counter,
    /// Calls moved to another provider (or a reconnect) after a provider fault.
    pub provider_failovers: Counter,
    /// Calls handed to a human.
    pub handoffs: Counter,
    pub provider_connect_seconds: Histogram,
    /// End of the caller's speech → turn decided (local VAD + Smart Turn).
    pub turn_decision_seconds: Histogram,
    /// One Smart Turn inference, queueing included.
    pub smart_turn_seconds: Histogram,
    /// Probes not run because Smart Turn was saturated (the pause fell back to VAD timing).
    pub smart_turn_skipped: Counter,
    /// Caller speech during an answer that the barge-in rules did not let interrupt.
    pub barge_ins_ignored: Counter,
    /// Turn decided (local) or caller stopped (provider VAD) → first agent audio.
    pub provider_first_audio_seconds: Histogram,
    /// First agent audio from the provider → first frame sent to FreeSWITCH.
    pub playout_first_frame_seconds: Histogram,
    /// Frame received from FreeSWITCH → handed to the agent.
    pub frame_forward_seconds: Histogram,
}

impl Default for BridgeMetrics {
    fn default() -> Self {
        Self {
            calls_active: Gauge::default(),
            calls_total: Counter::default(),
            calls_refused: Counter::default(),
            calls_over_cap: Counter::default(),
            stream_reconnects: Counter::default(),
            frames_in: Counter::default(),
            frames_out: Counter::default(),
            bad_frames: Counter::default(),
            playout_underruns: Counter::default(),
            barge_ins: Counter::default(),
            agent_input_dropped: Counter::default(),
            provider_errors: Counter::default(),
            provider_failovers: Counter::default(),
            handoffs: Counter::default(),
            provider_connect_seconds: Histogram::new(LATENCY_BUCKETS),
            turn_decision_seconds: Histogram::new(LATENCY_BUCKETS),
            smart_turn_seconds: Histogram::new(LATENCY_BUCKETS),
            smart_turn_skipped: Counter::default(),
            barge_ins_ignored: Counter::default(),
            provider_first_audio_seconds: Histogram::new(LATENCY_BUCKETS),
            playout_first_frame_seconds: Histogram::new(LATENCY_BUCKETS),
            frame_forward_seconds: Histogram::new(LATENCY_BUCKETS),
        }
    }
}

impl BridgeMetrics {
    pub fn render(&self, recorders: Option<&Recorders>, uploader: Option<&Uploader>) -> String {
        let mut e = Exposition::default();
        if let Some(recorders) = recorders {
            recorders.metrics().expose(&mut e);
        }
        if let Some(uploader) = uploader {
            uploader.metrics().expose(&mut e);
        }
        e.gauge(
            "bridge_calls_active",
            "Calls in progress",
            &self.calls_active,
        );
        e.counter("bridge_calls_total", "Calls accepted", &self.calls_total);
        e.counter(
            "bridge_calls_refused_total",
            "Streams refused (bad request, unknown tenant, shutdown)",
            &self.calls_refused,
        );
        e.counter(
            "bridge_calls_over_cap_total",
            "Calls over their tenant's concurrent-call cap (busy prompt or busy transfer)",
            &self.calls_over_cap,
        );
        e.counter(
            "bridge_stream_reconnects_total",
            "Streams that reattached to a live call",
            &self.stream_reconnects,
        );
        e.counter(
            "bridge_frames_in_total",
            "Audio frames received from FreeSWITCH",
            &self.frames_in,
        );
        e.counter(
            "bridge_frames_out_total",
            "20 ms audio frames sent to FreeSWITCH",
            &self.frames_out,
        );
        e.counter(
            "bridge_bad_frames_total",
            "Frames rejected as invalid",
            &self.bad_frames,
        );
        e.counter(
            "bridge_playout_underruns_total",
            "Times playback ran dry inside an answer",
            &self.playout_underruns,
        );
        e.counter(
            "bridge_barge_ins_total",
            "Agent answers interrupted by the caller",
            &self.barge_ins,
        );
        e.counter(
            "bridge_agent_input_dropped_total",
            "Caller frames dropped because the provider lagged",
            &self.agent_input_dropped,
        );
        e.counter(
            "bridge_provider_errors_total",
            "Provider errors and refusals",
            &self.provider_errors,
        );
        e.counter(
            "bridge_provider_failovers_total",
            "Reconnects and switches to a fallback provider after a provider fault",
            &self.provider_failovers,
        );
        e.counter(
            "bridge_handoffs_total",
            "Calls handed to a human attendant",
            &self.handoffs,
        );
        e.histogram(
            "bridge_provider_connect_seconds",
            "Time to open a provider session",
            &self.provider_connect_seconds,
        );
        e.counter(
            "bridge_barge_ins_ignored_total",
            "Caller speech over an answer that did not interrupt (too short, echo guard)",
            &self.barge_ins_ignored,
        );
        e.histogram(
            "bridge_turn_decision_seconds",
            "End of caller speech to turn decided (local VAD + Smart Turn)",
            &self.turn_decision_seconds,
        );
        e.counter(
            "bridge_smart_turn_skipped_total",
            "Smart Turn probes skipped because it was saturated (VAD timing used instead)",
            &self.smart_turn_skipped,
        );
        e.histogram(
            "bridge_smart_turn_seconds",
            "One Smart Turn inference, queueing included",
            &self.smart_turn_seconds,
        );
        e.histogram(
            "bridge_provider_first_audio_seconds",
            "Turn decided (or provider end of speech) to first provider audio",
            &self.provider_first_audio_seconds,
        );
        e.histogram(
            "bridge_playout_first_frame_seconds",
            "First provider audio to first frame sent to FreeSWITCH",
            &self.playout_first_frame_seconds,
        );
        e.histogram(
            "bridge_frame_forward_seconds",
            "Caller frame received to handed to the agent",
            &self.frame_forward_seconds,
        );
        e.finish()
    }
}
