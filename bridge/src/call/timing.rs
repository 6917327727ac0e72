//! Per-turn latency accounting: end of caller speech → turn decided → first provider audio
//! → first frame sent to FreeSWITCH. Each turn's figures go to the metrics and are kept
//! with the call.

use std::time::Instant;

use serde::Serialize;

use crate::metrics::BridgeMetrics;

/// One answered turn, in milliseconds. Serialized as a call fact: `{"type": "turn", …}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(tag = "type", rename = "turn")]
pub struct TurnLatency {
    pub turn: u32,
    /// Caller's last word → turn decided (local turn detection only).
    pub decision_ms: Option<f64>,
    /// Turn decided (or the provider's end of speech) → first provider audio.
    pub provider_ms: Option<f64>,
    /// First provider audio → first frame sent to FreeSWITCH.
    pub playout_ms: Option<f64>,
    /// Smart Turn's probability when it decided.
    pub smart_turn: Option<f32>,
    /// What ended the turn: smart_turn, silence, max_silence, provider.
    pub ended_by: &'static str,
}

#[derive(Default)]
pub struct TurnTiming {
    decided: Option<Instant>,
    provider_audio: Option<Instant>,
    current: Option<TurnLatency>,
    turns: u32,
}

fn ms(from: Instant, to: Instant) -> f64 {
    (to.saturating_duration_since(from).as_secs_f64() * 10_000.0).round() / 10.0
}

impl TurnTiming {
    /// The provider's VAD heard the caller stop: a new answer is expected.
    pub fn caller_stopped(&mut self, now: Instant) {
        self.start(now, None, None, "provider");
    }

    /// Local turn detection decided the caller finished, `end_of_speech` being their last
    /// word.
    pub fn turn_decided(
        &mut self,
        end_of_speech: Instant,
        decided: Instant,
        smart_turn: Option<f32>,
        ended_by: &'static str,
        metrics: &BridgeMetrics,
    ) {
        metrics.turn_decision_seconds.observe(
            decided
                .saturating_duration_since(end_of_speech)
                .as_secs_f64(),
        );
        self.start(
            decided,
            Some(ms(end_of_speech, decided)),
            smart_turn,
            ended_by,
        );
    }

    fn start(
        &mut self,
        decided: Instant,
        decision_ms: Option<f64>,
        smart_turn: Option<f32>,
        ended_by: &'static str,
    ) {
        self.turns += 1;
        self.decided = Some(decided);
        self.provider_audio = None;
        self.current = Some(TurnLatency {
            turn: self.turns,
            decision_ms,
            smart_turn,
            ended_by,
            ..TurnLatency::default()
        });
    }

    pub fn provider_audio(&mut self, now: Instant, metrics: &BridgeMetrics) {
        if self.provider_audio.is_some() {
            return;
        }
        self.provider_audio = Some(now);
        if let (Some(decided), Some(turn)) = (self.decided, self.current.as_mut()) {
            metrics
                .provider_first_audio_seconds
                .observe(now.saturating_duration_since(decided).as_secs_f64());
            turn.provider_ms = Some(ms(decided, now));
        }
    }

    /// The first frame of an answer left for FreeSWITCH: returns the finished turn's
    /// figures, once per turn.
    pub fn first_frame_sent(
        &mut self,
        now: Instant,
        metrics: &BridgeMetrics,
    ) -> Option<TurnLatency> {
        let audio = self.provider_audio?;
        let mut turn = self.current.take()?;
        metrics
            .playout_first_frame_seconds
            .observe(now.saturating_duration_since(audio).as_secs_f64());
        turn.playout_ms = Some(ms(audio, now));
        Some(turn)
    }

    pub fn turns(&self) -> u32 {
        self.turns
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_turn_is_reported_once_with_its_three_spans() {
        let metrics = BridgeMetrics::default();
        let mut timing = TurnTiming::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(timing.first_frame_sent(at(0), &metrics), None);
        timing.turn_decided(at(0), at(200), Some(0.9), "smart_turn", &metrics);
        timing.provider_audio(at(700), &metrics);
        timing.provider_audio(at(750), &metrics); // later deltas do not count
        let turn = timing.first_frame_sent(at(702), &metrics).unwrap();
        assert_eq!(turn.turn, 1);
        assert_eq!(turn.decision_ms, Some(200.0));
        assert_eq!(turn.provider_ms, Some(500.0));
        assert_eq!(turn.playout_ms, Some(2.0));
        assert_eq!(turn.ended_by, "smart_turn");
        assert_eq!(timing.first_frame_sent(at(800), &metrics), None);
        assert_eq!(metrics.turn_decision_seconds.count(), 1);
        let fact = serde_json::to_value(&turn).unwrap();
        assert_eq!(
            (fact["type"].as_str(), fact["decision_ms"].as_f64()),
            (Some("turn"), Some(200.0))
        );
    }
}
