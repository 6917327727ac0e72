//! Agent → FreeSWITCH: agent events, barge-in, and the paced playout of its audio.

use std::time::Instant;

use axum::extract::ws::Message;
use serde_json::json;
use tracing::{debug, info, warn};
use voice_core::agent::{AgentError, AgentEvent, AgentInput, AgentSession};
use voice_core::audio::Resampler;

use super::prompts::PROMPT_ITEM;
use super::{Agent, Call, End, Ready, CANCELLED_MEMORY, FILE_LEAD_MS};
use crate::playout::{encoder, PlayoutMode};

impl Call {
    pub(super) async fn on_agent_connected(
        &mut self,
        result: Result<AgentSession, AgentError>,
    ) -> Option<End> {
        let started = match &self.agent {
            Agent::Connecting(_, t) => *t,
            _ => Instant::now(),
        };
        let session = match result {
            Ok(s) => s,
            Err(e) => return self.agent_failed(e.to_string()).await,
        };
        self.state
            .metrics
            .provider_connect_seconds
            .observe(started.elapsed().as_secs_f64());
        let (mut to, from) = match (
            Resampler::new(self.rate, session.input_rate),
            Resampler::new(session.output_rate, self.rate),
        ) {
            (Ok(to), Ok(from)) => (to, from),
            (Err(e), _) | (_, Err(e)) => return self.agent_failed(e.to_string()).await,
        };
        let held = std::mem::take(&mut self.held);
        let mut out = Vec::new();
        to.process(&held, &mut out);
        debug!(call = %self.id, ms = started.elapsed().as_millis() as u64, "agent ready");
        // A new session numbers its items afresh: forget the old session's.
        self.cancelled.clear();
        self.current_item = None;
        if let Some(outage) = self.failover.recovered() {
            let provider = self.failover.current.name();
            info!(call = %self.id, provider, outage_ms = outage.as_millis() as u64, "provider back");
            self.record_fact(json!({"type": "provider_recovered", "provider": provider, "outage_ms": outage.as_millis() as u64}));
        }
        self.agent = Agent::Ready(Box::new(Ready {
            session,
            to_agent: to,
            from_agent: from,
        }));
        self.forward(out);
        for input in std::mem::take(&mut self.held_inputs) {
            self.tell_agent(input);
        }
        None
    }

    pub(super) async fn on_agent_event(&mut self, event: AgentEvent) -> Option<End> {
        let now = Instant::now();
        match event {
            AgentEvent::Audio { item_id, samples } => {
                if self.cancelled.contains(&item_id) {
                    return None; // late audio of an answer the caller interrupted
                }
                let new_item = self.current_item.as_deref() != Some(item_id.as_str());
                if let Some(pending) = self.pending.as_mut() {
                    if new_item && !pending.takes_words() {
                        return None; // the call is being handed over or hung up
                    }
                }
                if self.current_item.as_deref() != Some(item_id.as_str()) {
                    self.current_item = Some(item_id);
                    self.item_start_ms = self.queue.end_position_ms();
                    self.item_sent = false;
                    self.answer_complete = false;
                }
                self.timing.provider_audio(now, &self.state.metrics);
                let mut out = Vec::with_capacity(samples.len());
                if let Agent::Ready(ready) = &mut self.agent {
                    ready.from_agent.process(&samples, &mut out);
                }
                self.queue.push(&out);
                // Send at once what is due: the first frame must not wait for a timer tick.
                self.send_due_playout().await;
            }
            AgentEvent::AudioDone { item_id } => {
                if self.current_item.as_deref() == Some(item_id.as_str()) {
                    let mut out = Vec::new();
                    if let Agent::Ready(ready) = &mut self.agent {
                        ready.from_agent.flush(&mut out);
                    }
                    self.queue.push(&out);
                    self.queue.end_of_answer();
                    self.answer_complete = true;
                    self.send_due_playout().await;
                }
            }
            // With local turns these do not come (provider detection is off).
            AgentEvent::SpeechStarted => {
                if self.front_end.is_none() && self.queue.is_playing(now) {
                    self.barge_in(now).await;
                }
            }
            AgentEvent::SpeechStopped => self.timing.caller_stopped(now),
            AgentEvent::Transcript { role, text } => {
                info!(call = %self.id, role = ?role, text = %text, "transcript");
                self.record_fact(json!({"type": "transcript", "role": role, "text": text}));
                let end = self.check_handoff_rules(role, &text).await;
                self.transcript.push((role, text));
                return end;
            }
            AgentEvent::ToolCall {
                call_id,
                name,
                arguments,
            } => return self.on_tool_call(call_id, name, arguments).await,
            AgentEvent::ResponseDone { status } => {
                debug!(call = %self.id, %status, "response done")
            }
            AgentEvent::Error { message, fatal } => {
                if fatal {
                    return self.agent_failed(message).await;
                }
                self.state.metrics.provider_errors.inc();
                warn!(call = %self.id, error = %message, "provider error");
            }
        }
        None
    }

    /// The caller spoke over the agent: stop the audio within a frame, tell FreeSWITCH to
    /// drop what it buffered, and tell the agent how much the caller actually heard.
    pub(super) async fn barge_in(&mut self, now: Instant) {
        let heard_ms = self.queue.played_ms(now).saturating_sub(self.item_start_ms);
        let generation = self.queue.generation() + 1;
        let item = self.stop_playout(now).await;
        self.barge_ins += 1;
        self.state.metrics.barge_ins.inc();
        if let Some(item_id) = item {
            info!(call = %self.id, item = %item_id, heard_ms, generation, "barge-in");
            if !item_id.starts_with(PROMPT_ITEM) {
                let heard_ms = heard_ms.min(u32::MAX as u64) as u32;
                self.tell_agent(AgentInput::Interrupted { item_id, heard_ms });
            }
        }
    }

    /// Stops what is playing within a frame: drops the queue, tells FreeSWITCH to drop
    /// what it buffered, and remembers the cut item so its late audio is dropped too.
    pub(super) async fn stop_playout(&mut self, now: Instant) -> Option<String> {
        self.queue.clear(now);
        self.record_cut(now);
        if let Agent::Ready(ready) = &mut self.agent {
            ready.from_agent.reset();
        }
        if let Some(message) = self.clear.message {
            self.send(Message::Text(message.into())).await;
        }
        if self.clear.esl_break {
            self.esl_command(format!("uuid_break {} all", self.id));
        }
        self.answer_complete = true;
        let item = self.current_item.take()?;
        if self.cancelled.len() == CANCELLED_MEMORY {
            self.cancelled.pop_front();
        }
        self.cancelled.push_back(item.clone());
        Some(item)
    }

    pub(super) fn batch_shape(&self) -> (usize, u64) {
        let lead = self.settings.playout.lead_ms.max(20) as u64;
        if self.mode.uses_files() {
            let ms = if self.item_sent {
                self.settings.playout.file_chunk_ms
            } else {
                self.settings.playout.first_file_chunk_ms
            };
            let frames = (ms / 20).max(1) as usize;
            (frames, frames as u64 * 20 + FILE_LEAD_MS.max(lead))
        } else {
            (1, lead)
        }
    }

    pub(super) fn playout_due(&self, now: Instant) -> Option<Instant> {
        let (frames, ahead) = self.batch_shape();
        self.queue
            .next_due(now, frames, ahead, self.answer_complete)
    }

    /// Sends every batch that is due. While the stream is away the audio waits for it.
    pub(super) async fn send_due_playout(&mut self) {
        while self.socket.is_some() {
            let now = Instant::now();
            let (frames, ahead) = self.batch_shape();
            let Some(batch) = self.queue.pop_due(now, frames, ahead, self.answer_complete) else {
                return;
            };
            if batch.starts_run && self.item_sent && !self.answer_complete {
                self.queue.note_underrun();
                self.state.metrics.playout_underruns.inc();
            }
            if !self.item_sent {
                self.playout_started = Some(now);
            }
            self.item_sent = true;
            if let Some(turn) = self.timing.first_frame_sent(now, &self.state.metrics) {
                self.record_fact(serde_json::to_value(&turn).unwrap_or_default());
                // Caller's last word (or the provider's end of speech) → first frame out.
                let latency_ms: f64 = [turn.decision_ms, turn.provider_ms, turn.playout_ms]
                    .iter()
                    .flatten()
                    .sum();
                self.emit(
                    voice_core::tenancy::events::kinds::TURN_COMPLETED,
                    serde_json::json!({"latency_ms": latency_ms, "turn": turn.turn}),
                );
                self.latencies.push(turn);
            }
            self.record_agent(&batch.samples, batch.plays_at, now);
            if self.mode == PlayoutMode::RawAudio && !self.raw_header_sent {
                self.raw_header_sent = true;
                self.send(encoder::raw_audio_header(self.rate)).await;
            }
            let n = batch.samples.len() / voice_core::audio::frame_samples(self.rate).max(1);
            self.send(encoder::encode(
                self.mode,
                self.rate,
                &batch.samples,
                batch.generation,
            ))
            .await;
            self.state.metrics.frames_out.add(n as u64);
        }
    }

    pub(super) async fn send(&mut self, msg: Message) {
        if let Some(socket) = self.socket.as_mut() {
            if let Err(e) = socket.send(msg).await {
                debug!(call = %self.id, error = %e, "stream write failed");
                self.on_disconnect();
            }
        }
    }
}
