//! The call's recording: caller audio on the left as it arrives (the time base), agent
//! audio on the right where FreeSWITCH plays it, and the call's facts beside them. The
//! recorder only copies into a channel; its writer threads do the rest.

use std::time::Instant;

use serde_json::{json, Value};
use tracing::warn;
use voice_core::recording::CallFacts;

use super::Call;

impl Call {
    pub(super) fn start_recording(
        &mut self,
        caller: Option<String>,
        callee: Option<String>,
        consent: Option<bool>,
    ) {
        let Some(recorders) = &self.state.recorders else {
            return;
        };
        let facts = CallFacts {
            call_id: self.id.clone(),
            tenant: self.tenant.clone(),
            caller,
            callee,
            rate: self.rate,
            started_at: std::time::SystemTime::now(),
            consent,
        };
        match recorders.start(facts) {
            Ok(recorder) => self.recorder = Some(recorder),
            Err(e) => warn!(call = %self.id, error = %e, "call not recorded"),
        }
    }

    pub(super) fn record_caller(&mut self, samples: &[i16]) {
        self.caller_samples += samples.len() as u64;
        if let Some(recorder) = self.recorder.as_mut() {
            recorder.caller(samples);
        }
    }

    /// Agent audio FreeSWITCH starts playing at `plays_at`.
    pub(super) fn record_agent(&mut self, samples: &[i16], plays_at: Instant, now: Instant) {
        let at = self.position_at(plays_at, now);
        if let Some(recorder) = self.recorder.as_mut() {
            recorder.agent(at, samples);
        }
    }

    /// Barge-in: agent audio sent ahead but not played from `now` on never reached the caller.
    pub(super) fn record_cut(&mut self, now: Instant) {
        let at = self.position_at(now, now);
        if let Some(recorder) = self.recorder.as_mut() {
            recorder.agent_cut(at);
        }
    }

    pub(super) fn record_fact(&mut self, fact: Value) {
        if let Some(recorder) = self.recorder.as_mut() {
            recorder.fact(fact);
        }
    }

    pub(super) fn finish_recording(&mut self, end: &str) {
        if let Some(recorder) = self.recorder.take() {
            recorder.finish(json!({
                "reason": end,
                "seconds": self.started.elapsed().as_secs_f64(),
                "turns": self.timing.turns(),
                "barge_ins": self.barge_ins,
                "playout_underruns": self.queue.underruns(),
            }));
        }
    }

    /// Caller-timeline sample position of instant `t` (the caller audio received so far is
    /// "now").
    fn position_at(&self, t: Instant, now: Instant) -> u64 {
        let rate = u128::from(self.rate);
        if t >= now {
            self.caller_samples + ((t - now).as_micros() * rate / 1_000_000) as u64
        } else {
            let behind = ((now - t).as_micros() * rate / 1_000_000) as u64;
            self.caller_samples.saturating_sub(behind)
        }
    }
}
