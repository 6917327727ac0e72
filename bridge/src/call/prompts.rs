//! The bridge's own audio in the call: prompts play through the same playout queue as the
//! agent's answers, so pacing, barge-in clearing and recording treat them alike.

use std::time::Instant;

use tracing::debug;
use voice_core::agent::Role;
use voice_core::audio::Resampler;

use super::Call;
use crate::prompts::PromptKind;

/// Item ids of prompts start with this; the agent never hears about them.
pub(super) const PROMPT_ITEM: &str = "prompt:";

impl Call {
    /// Queues prompt `kind` after whatever is queued. False when it is not configured.
    pub(super) fn play_prompt(&mut self, kind: PromptKind) -> bool {
        let Some(audio) = self.state.prompts.get(&self.settings.agent.prompts, kind) else {
            return false;
        };
        let mut out =
            Vec::with_capacity(audio.samples.len() * self.rate as usize / audio.rate as usize + 64);
        match Resampler::new(audio.rate, self.rate) {
            Ok(mut resampler) => {
                resampler.process(&audio.samples, &mut out);
                resampler.flush(&mut out);
            }
            Err(e) => {
                debug!(call = %self.id, error = %e, "prompt cannot be resampled");
                return false;
            }
        }
        debug!(call = %self.id, prompt = kind.name(), ms = out.len() as u64 * 1000 / self.rate as u64, "prompt");
        self.current_item = Some(format!("{PROMPT_ITEM}{}", kind.name()));
        self.item_start_ms = self.queue.end_position_ms();
        self.item_sent = false;
        self.queue.push(&out);
        self.queue.end_of_answer();
        self.answer_complete = true;
        let text = self.settings.agent.prompts.get(kind).text.clone();
        if !text.is_empty() {
            self.record_fact(serde_json::json!({"type": "transcript", "role": Role::Agent, "text": text, "prompt": kind.name()}));
            self.transcript.push((Role::Agent, text));
        }
        true
    }

    /// Stops what is playing now (as a barge-in does) without telling the agent.
    pub(super) async fn clear_playout(&mut self, now: Instant) {
        if self.queue.is_playing(now) {
            self.stop_playout(now).await;
        }
    }
}
