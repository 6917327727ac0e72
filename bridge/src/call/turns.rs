//! Local turn-taking (`[agent.turn] detection = "local"`): the front end listens to every
//! caller frame; the call decides what the agent hears, when the caller's turn is over,
//! and when caller speech over an answer is a barge-in.
//!
//! The agent hears the caller only during their turn (from just before the speech onset
//! to the decision), so it never hears silence, nor the line echo of its own answer, and
//! a provider that bills input audio is not paid for either.

use std::time::{Duration, Instant};

use tracing::{debug, warn};
use voice_core::agent::AgentInput;

use super::{Agent, Call};
use crate::front_end::{Heard, TurnEnd};

/// Audio before the speech onset the agent also hears (the VAD's onset is a little late).
const ONSET_PADDING: Duration = Duration::from_millis(300);

impl Call {
    /// One caller frame (`samples` at the call rate; `to_agent` the same, resampled for the
    /// agent) through the front end.
    pub(super) async fn listen_locally(
        &mut self,
        samples: &[i16],
        to_agent: Vec<i16>,
        now: Instant,
    ) {
        let Some(front_end) = self.front_end.as_mut() else {
            return;
        };
        let mut heard = std::mem::take(&mut self.heard);
        front_end.push(samples, now, &mut heard);
        let speaking = front_end.is_speaking();
        for event in heard.drain(..) {
            match event {
                Heard::SpeechStarted { onset } => self.speech_onset = Some(onset),
                Heard::Probe { probe, audio } if self.turn_open => {
                    self.tell_agent(AgentInput::CallerPaused);
                    self.ask_smart_turn(probe, audio)
                }
                Heard::Probe { .. } => self.forget_speech(),
                Heard::Paused if self.turn_open => self.tell_agent(AgentInput::CallerPaused),
                Heard::Paused => {}
                Heard::TurnEnded(end) => self.end_turn(end),
            }
        }
        self.heard = heard;
        if speaking && !self.turn_open {
            self.caller_takes_the_floor(now).await;
        }
        self.hear(to_agent);
    }

    /// The caller is speaking outside a turn: start one, interrupting the agent if the
    /// barge-in rules say this is a real interruption.
    async fn caller_takes_the_floor(&mut self, now: Instant) {
        // Speech that follows a turn end closely has no VAD start of its own (the VAD
        // never heard the silence as long enough to stop): it begins now.
        let onset = *self.speech_onset.get_or_insert(now);
        // An answer still streaming in counts even when its queue ran dry for a moment.
        if self.queue.is_playing(now) || !self.answer_complete {
            let started = self.playout_started.unwrap_or(now);
            if !self
                .settings
                .agent
                .barge_in
                .speech_interrupts(onset, now, started)
            {
                if !self.speech_held_back {
                    self.speech_held_back = true;
                    self.state.metrics.barge_ins_ignored.inc();
                }
                return;
            }
            self.barge_in(now).await;
        }
        self.speech_held_back = false;
        self.turn_open = true;
        // What the agent missed since just before the onset.
        let missed = now.saturating_duration_since(onset) + ONSET_PADDING;
        let keep = (missed.as_millis() as usize * self.agent_rate() as usize / 1000)
            .min(self.preroll.len());
        let skip = self.preroll.len() - keep;
        let audio: Vec<i16> = self.preroll.drain(..).skip(skip).collect();
        self.send_to_agent(audio);
    }

    /// Caller audio for the agent: sent during a turn, kept as pre-roll otherwise.
    pub(super) fn hear(&mut self, audio: Vec<i16>) {
        if self.turn_open {
            self.send_to_agent(audio);
            return;
        }
        self.preroll.extend(audio);
        let max = self.preroll_max();
        if self.preroll.len() > max {
            let excess = self.preroll.len() - max;
            self.preroll.drain(..excess);
        }
    }

    fn end_turn(&mut self, end: TurnEnd) {
        if !self.turn_open {
            self.forget_speech();
            return;
        }
        self.turn_open = false;
        self.speech_onset = None;
        debug!(
            call = %self.id, reason = end.reason, probability = ?end.probability,
            decision_ms = end.decided.saturating_duration_since(end.end_of_speech).as_millis() as u64,
            "caller turn ended"
        );
        self.timing.turn_decided(
            end.end_of_speech,
            end.decided,
            end.probability,
            end.reason,
            &self.state.metrics,
        );
        if let Agent::Ready(ready) = &self.agent {
            let _ = ready.session.input.try_send(AgentInput::EndOfTurn);
        }
    }

    /// Speech that was not a turn (held back as echo or too short) is over: forget it.
    fn forget_speech(&mut self) {
        if let Some(front_end) = self.front_end.as_mut() {
            front_end.forget_turn();
        }
        self.speech_onset = None;
        self.speech_held_back = false;
    }

    /// Runs Smart Turn on the blocking pool; the answer comes back as a [`super::Wake`].
    /// One inference per call at a time, and none when the machine is saturated: then
    /// this pause is judged by silence alone.
    fn ask_smart_turn(&mut self, probe: u64, audio: Vec<i16>) {
        let models = &self.state.models;
        let (Some(model), Some(slots)) =
            (models.smart_turn.clone(), models.smart_turn_slots.clone())
        else {
            return;
        };
        let permit = if self.smart_turn_busy {
            None
        } else {
            slots.try_acquire_owned().ok()
        };
        let Some(permit) = permit else {
            self.state.metrics.smart_turn_skipped.inc();
            if let Some(front_end) = self.front_end.as_mut() {
                front_end.unjudged(probe);
            }
            return;
        };
        self.smart_turn_busy = true;
        let verdicts = self.verdict_tx.clone();
        let asked = Instant::now();
        tokio::task::spawn_blocking(move || {
            let result = model.predict(&audio).map_err(|e| e.to_string());
            drop(permit);
            let _ = verdicts.try_send((probe, asked, result));
        });
    }

    pub(super) fn on_verdict(&mut self, probe: u64, asked: Instant, result: Result<f32, String>) {
        self.smart_turn_busy = false;
        let now = Instant::now();
        self.state
            .metrics
            .smart_turn_seconds
            .observe(now.saturating_duration_since(asked).as_secs_f64());
        let probability = match result {
            Ok(p) => p,
            Err(e) => {
                // max_silence_ms still ends the turn.
                warn!(call = %self.id, error = %e, "Smart Turn failed");
                return;
            }
        };
        let Some(front_end) = self.front_end.as_mut() else {
            return;
        };
        if let Some(end) = front_end.verdict(probe, probability, now) {
            self.end_turn(end);
        }
    }

    fn agent_rate(&self) -> u32 {
        match &self.agent {
            Agent::Ready(ready) => ready.session.input_rate,
            _ => self.rate,
        }
    }

    /// Pre-roll long enough for a barge-in decided late (echo guard + held speech).
    fn preroll_max(&self) -> usize {
        let agent = &self.settings.agent;
        let ms = agent.vad.start_ms
            + agent.barge_in.min_speech_ms
            + agent.barge_in.echo_guard_ms
            + ONSET_PADDING.as_millis() as u32
            + 200;
        ms as usize * self.agent_rate() as usize / 1000
    }
}
