//! Per-turn latency accounting: caller stops speaking → first provider audio → first frame
//! sent to FreeSWITCH.

use std::time::Instant;

use crate::metrics::BridgeMetrics;

#[derive(Default)]
pub struct TurnTiming {
    caller_stopped: Option<Instant>,
    provider_audio: Option<Instant>,
    frame_sent: bool,
    turns: u32,
}

impl TurnTiming {
    /// The caller's turn ended: a new answer is expected.
    pub fn caller_stopped(&mut self, now: Instant) {
        self.caller_stopped = Some(now);
        self.provider_audio = None;
        self.frame_sent = false;
        self.turns += 1;
    }

    pub fn provider_audio(&mut self, now: Instant, metrics: &BridgeMetrics) {
        if self.provider_audio.is_some() {
            return;
        }
        self.provider_audio = Some(now);
        if let Some(stopped) = self.caller_stopped {
            metrics
                .provider_first_audio_seconds
                .observe((now - stopped).as_secs_f64());
        }
    }

    pub fn first_frame_sent(&mut self, now: Instant, metrics: &BridgeMetrics) {
        if self.frame_sent {
            return;
        }
        if let Some(audio) = self.provider_audio {
            self.frame_sent = true;
            metrics
                .playout_first_frame_seconds
                .observe((now - audio).as_secs_f64());
        }
    }

    pub fn turns(&self) -> u32 {
        self.turns
    }
}
