//! One call's cascaded conversation: caller audio → STT → (turn ends) → an [`Answer`]
//! task (LLM → TTS) → agent audio. The session owns the history and decides what goes in
//! it: only what the caller said, and of each answer only what the caller heard.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::answer::{Answer, AnswerEvent, Script};
use super::heard::heard_text;
use super::speaker::Speaker;
use super::Inner;
use crate::agent::{AgentEvent, AgentInput, CallInfo, Role};
use crate::providers::llm::{ChatMessage, ChatRequest};
use crate::providers::stt::{SttEvent, SttInput, SttOptions, SttStream};
use crate::providers::ProviderError;
use crate::text::only_words_from;

/// An answer in progress.
struct Running {
    item_id: String,
    task: JoinHandle<()>,
    events: mpsc::Receiver<AnswerEvent>,
    tool_results: mpsc::Sender<(String, String)>,
    /// Started before the turn was decided, for this caller text; its events wait in
    /// `backlog` until the turn ends with the same text.
    preemptive_for: Option<String>,
    backlog: Vec<AnswerEvent>,
    /// Its last event is in the backlog: nothing more to read.
    drained: bool,
    /// The caller text it answers (None for a greeting), added to history on release.
    user_text: Option<String>,
    pieces: String,
    audio_samples: u64,
    rounds: Vec<ChatMessage>,
}

/// The last finished answer, whose audio may still be playing at the bridge.
struct Finished {
    item_id: String,
    text: String,
    audio_ms: u64,
    history_index: usize,
}

pub(super) struct Session {
    inner: Arc<Inner>,
    call: CallInfo,
    output_rate: u32,
    events: mpsc::Sender<AgentEvent>,
    stt: SttStream,
    stt_index: usize,
    /// Finals of the caller's current utterance.
    utterance: String,
    interim: String,
    /// A speech_final arrived and nothing came after it.
    settled: bool,
    /// A `Finalize` was sent at a pause and its final has not come yet.
    finalize_pending: bool,
    /// This turn's caller audio, for the next STT if this one fails mid-turn.
    /// A ring: once full, each frame drops only as much as it adds (no memmove of the
    /// whole buffer per frame, which a `Vec` front drain would cost).
    turn_audio: VecDeque<i16>,
    /// The turn ended locally; STT's final is due by then.
    final_due: Option<Instant>,
    history: Vec<ChatMessage>,
    answer: Option<Running>,
    last_finished: Option<Finished>,
    /// What the caller did not hear of the answer they last cut off: said again if their
    /// turn turns out to be a lone backchannel.
    resumable: Option<String>,
    /// Caller text (DTMF, text frames) that came while an answer was running.
    queued: Vec<String>,
    answers: u64,
}

impl Session {
    pub(super) async fn open(
        inner: Arc<Inner>,
        call: CallInfo,
        output_rate: u32,
        events: mpsc::Sender<AgentEvent>,
    ) -> Result<Self, ProviderError> {
        let (stt, stt_index) = open_stt(&inner, 0).await?;
        let history = call
            .history
            .iter()
            .map(|(role, text)| match role {
                Role::Caller => ChatMessage::User(text.clone()),
                Role::Agent => ChatMessage::Assistant {
                    text: text.clone(),
                    tool_calls: Vec::new(),
                },
            })
            .collect();
        Ok(Self {
            inner,
            call,
            output_rate,
            events,
            stt,
            stt_index,
            utterance: String::new(),
            interim: String::new(),
            settled: false,
            finalize_pending: false,
            turn_audio: VecDeque::new(),
            final_due: None,
            history,
            answer: None,
            last_finished: None,
            resumable: None,
            queued: Vec::new(),
            answers: 0,
        })
    }

    pub(super) async fn run(mut self, mut input: mpsc::Receiver<AgentInput>) {
        self.begin().await;
        loop {
            let due = self.final_due;
            let more = tokio::select! {
                i = input.recv() => match i {
                    Some(i) => self.on_input(i).await,
                    None => false, // the call is over
                },
                e = self.stt.events.recv() => self.on_stt(e).await,
                e = next_event(&mut self.answer) => self.on_answer_event(e).await,
                _ = sleep_until(due) => self.on_final_overdue().await,
            };
            if !more {
                break;
            }
        }
        if let Some(running) = self.answer.take() {
            running.task.abort();
        }
    }

    /// A new conversation starts with the greeting; a resumed one whose caller spoke last
    /// gets its answer.
    async fn begin(&mut self) {
        let greeting = self.inner.persona.greeting.trim().to_string();
        if self.history.is_empty() && !greeting.is_empty() {
            self.start_answer(Script::Fixed(greeting), None, None);
        } else if matches!(self.history.last(), Some(ChatMessage::User(_))) {
            if let Some(ChatMessage::User(text)) = self.history.pop() {
                self.answer_caller(text);
            }
        }
    }

    async fn on_input(&mut self, input: AgentInput) -> bool {
        match input {
            AgentInput::Audio(samples) => {
                // The newest audio, for the next STT if this one fails mid-turn.
                self.turn_audio.extend(&samples);
                let excess = self
                    .turn_audio
                    .len()
                    .saturating_sub(self.inner.replay_samples);
                self.turn_audio.drain(..excess);
                if self.stt.input.try_send(SttInput::Audio(samples)).is_err() {
                    debug!(call = %self.call.call_id, "STT input full or closed; audio kept for replay");
                }
            }
            AgentInput::CallerPaused => {
                // The call is deciding whether the turn is over: have the words ready (and,
                // with preemptive generation, the answer started) by the time it has.
                if self.stt.input.try_send(SttInput::Finalize).is_ok() {
                    self.finalize_pending = true;
                    self.settled = false;
                }
            }
            AgentInput::EndOfTurn => {
                if self.settled
                    && !self.finalize_pending
                    && self.interim.is_empty()
                    && !self.utterance.trim().is_empty()
                {
                    // STT already settled the utterance: no need to wait for another final.
                    self.end_turn().await;
                } else {
                    let _ = self.stt.input.try_send(SttInput::Finalize);
                    self.final_due = Some(
                        Instant::now()
                            + Duration::from_millis(self.inner.settings.stt_final_timeout_ms),
                    );
                }
            }
            AgentInput::Interrupted { item_id, heard_ms } => {
                self.interrupted(&item_id, heard_ms).await
            }
            AgentInput::Dtmf(digit) => self.caller_typed(format!("[DTMF {digit}]")),
            AgentInput::Text(text) => self.caller_typed(text),
            AgentInput::ToolResult { call_id, output } => {
                if let Some(running) = &self.answer {
                    let _ = running.tool_results.try_send((call_id, output));
                }
            }
        }
        true
    }

    fn caller_typed(&mut self, text: String) {
        if self
            .answer
            .as_ref()
            .is_some_and(|a| a.preemptive_for.is_none())
        {
            self.queued.push(text);
        } else {
            self.cancel_preemptive();
            self.answer_caller(text);
        }
    }

    async fn on_stt(&mut self, event: Option<SttEvent>) -> bool {
        match event {
            Some(SttEvent::Interim { text }) => self.interim = text,
            Some(SttEvent::Final { text, speech_final }) => {
                let text = text.trim();
                if !text.is_empty() {
                    if !self.utterance.is_empty() {
                        self.utterance.push(' ');
                    }
                    self.utterance.push_str(text);
                    self.cancel_preemptive(); // the caller went on
                }
                self.interim.clear();
                self.settled = speech_final;
                if speech_final {
                    self.finalize_pending = false;
                    if self.final_due.is_some() || !self.inner.persona.local_turns {
                        if !self.utterance.trim().is_empty() || self.final_due.is_some() {
                            self.end_turn().await;
                        }
                    } else if self.inner.settings.preemptive_generation {
                        self.start_preemptive();
                    }
                }
            }
            Some(SttEvent::SpeechStarted) => {
                if !self.inner.persona.local_turns {
                    let _ = self.events.send(AgentEvent::SpeechStarted).await;
                }
            }
            Some(SttEvent::Error {
                error,
                fatal: false,
            }) => {
                warn!(call = %self.call.call_id, %error, "STT error");
            }
            Some(SttEvent::Error { error, fatal: true }) => return self.stt_failed(error).await,
            None => {
                return self
                    .stt_failed(ProviderError::Unavailable("STT stream closed".into()))
                    .await
            }
        }
        true
    }

    /// The current STT broke: the next one gets this turn's audio again; with none left
    /// the agent is over (the call's failover takes it from there).
    async fn stt_failed(&mut self, error: ProviderError) -> bool {
        warn!(call = %self.call.call_id, %error, "STT failed; trying the next");
        match self.switch_stt().await {
            Ok(()) => true,
            Err(e) => {
                let _ = self
                    .events
                    .send(AgentEvent::Error {
                        message: format!("no speech-to-text provider left: {e}"),
                        fatal: true,
                    })
                    .await;
                false
            }
        }
    }

    /// Opens the next STT and replays this turn's audio to it (and its Finalize, when the
    /// turn already ended).
    async fn switch_stt(&mut self) -> Result<(), ProviderError> {
        let (stt, index) = open_stt(&self.inner, self.stt_index + 1).await?;
        self.stt = stt;
        self.stt_index = index;
        // The new STT hears the whole turn again: forget what the old one heard.
        self.utterance.clear();
        self.interim.clear();
        self.settled = false;
        self.finalize_pending = false;
        self.cancel_preemptive();
        let audio: Vec<i16> = self.turn_audio.iter().copied().collect();
        for chunk in audio.chunks(self.inner.settings.stt_rate as usize / 10) {
            if self
                .stt
                .input
                .send(SttInput::Audio(chunk.to_vec()))
                .await
                .is_err()
            {
                break;
            }
        }
        if self.final_due.is_some() {
            let _ = self.stt.input.send(SttInput::Finalize).await;
            self.final_due = Some(
                Instant::now() + Duration::from_millis(self.inner.settings.stt_final_timeout_ms),
            );
        }
        Ok(())
    }

    /// STT did not give its final in time: the next STT gets the turn. With none left, or
    /// none that opens, the turn is answered with what was heard and the current STT,
    /// slow but working, stays.
    async fn on_final_overdue(&mut self) -> bool {
        if self.stt_index + 1 < self.inner.stt.len() {
            warn!(call = %self.call.call_id, "STT final overdue; trying the next STT");
            if self.switch_stt().await.is_ok() {
                return true;
            }
        }
        warn!(call = %self.call.call_id, "STT final overdue; answering what was heard");
        self.end_turn().await;
        true
    }

    /// The caller's turn is over: answer what they said.
    async fn end_turn(&mut self) {
        self.final_due = None;
        self.settled = false;
        self.finalize_pending = false;
        self.turn_audio.clear();
        let mut text = std::mem::take(&mut self.utterance);
        let interim = std::mem::take(&mut self.interim);
        if text.trim().is_empty() {
            text = interim;
        }
        let text = self.inner.guard.clean_caller_text(&text);
        if text.is_empty() {
            self.cancel_preemptive();
            return;
        }
        let _ = self
            .events
            .send(AgentEvent::Transcript {
                role: Role::Caller,
                text: text.clone(),
            })
            .await;
        let resumable = self.resumable.take();
        if let Some(rest) =
            resumable.filter(|_| only_words_from(&text, &self.inner.settings.backchannels))
        {
            // "Aham" over the answer was not a question: go on where it was cut.
            info!(call = %self.call.call_id, "backchannel over an answer; resuming it");
            self.cancel_preemptive();
            if self.answer.is_none() {
                self.start_answer(Script::Fixed(rest), None, None);
            }
            return;
        }
        if self
            .answer
            .as_ref()
            .is_some_and(|a| a.preemptive_for.as_deref() == Some(text.as_str()))
        {
            self.release_preemptive().await;
            return;
        }
        self.cancel_preemptive();
        if self.answer.is_some() && only_words_from(&text, &self.inner.settings.backchannels) {
            // "Aham" over an answer that nobody interrupted: the answer goes on.
            return;
        }
        if let Some(running) = self.answer.take() {
            // The caller spoke over an answer without a barge-in: it ends where it is.
            self.close_answer(running, None).await;
        }
        self.answer_caller(text);
    }

    fn answer_caller(&mut self, text: String) {
        // Keys pressed or text sent during the last answer come first, in order.
        let text = match std::mem::take(&mut self.queued) {
            queued if queued.is_empty() => text,
            queued => format!("{} {text}", queued.join(" ")),
        };
        let mut messages = self.trimmed_history();
        messages.push(ChatMessage::User(text.clone()));
        let request = ChatRequest {
            system: self.inner.system_prompt.clone(),
            messages,
            tools: self.inner.persona.tools.clone(),
            max_tokens: None,
        };
        self.start_answer(Script::Llm(request), Some(text), None);
    }

    /// A confident STT final before the turn is decided: start thinking now.
    fn start_preemptive(&mut self) {
        if self.answer.is_some() || !self.queued.is_empty() {
            return; // (queued keys go with the real answer, which a discard would lose)
        }
        let text = self.inner.guard.clean_caller_text(&self.utterance);
        let backchannel =
            self.resumable.is_some() && only_words_from(&text, &self.inner.settings.backchannels);
        if text.is_empty() || backchannel {
            return; // nothing to answer, or an "aham" that resumes the cut answer
        }
        self.answer_caller(text.clone());
        if let Some(running) = self.answer.as_mut() {
            running.preemptive_for = Some(text);
        }
    }

    fn cancel_preemptive(&mut self) {
        if self
            .answer
            .as_ref()
            .is_some_and(|a| a.preemptive_for.is_some())
        {
            if let Some(running) = self.answer.take() {
                debug!(call = %self.call.call_id, "preemptive answer discarded");
                running.task.abort();
            }
        }
    }

    async fn release_preemptive(&mut self) {
        let backlog = match self.answer.as_mut() {
            Some(running) => {
                running.preemptive_for = None;
                std::mem::take(&mut running.backlog)
            }
            None => return,
        };
        debug!(call = %self.call.call_id, events = backlog.len(), "preemptive answer used");
        for event in backlog {
            self.on_answer_event(Some(event)).await;
        }
    }

    fn start_answer(
        &mut self,
        script: Script,
        user_text: Option<String>,
        preemptive_for: Option<String>,
    ) {
        self.answers += 1;
        let item_id = format!("answer-{}", self.answers);
        let (out, events) = mpsc::channel(256);
        let (tool_results, tool_rx) = mpsc::channel(16);
        let settings = &self.inner.settings;
        let answer = Answer {
            script,
            llm: self.inner.llm.clone(),
            first_token_timeout: Duration::from_millis(settings.llm_first_token_timeout_ms),
            tool_timeout: Duration::from_millis(settings.tool_timeout_ms),
            max_tool_rounds: settings.max_tool_rounds,
            guard: self.inner.guard.clone(),
            speaker: Speaker {
                tts: self.inner.tts.clone(),
                output_rate: self.output_rate,
                first_audio_timeout: Duration::from_millis(settings.tts_first_audio_timeout_ms),
            },
        };
        let task = tokio::spawn(answer.run(out, tool_rx));
        self.answer = Some(Running {
            item_id,
            task,
            events,
            tool_results,
            preemptive_for,
            backlog: Vec::new(),
            drained: false,
            user_text,
            pieces: String::new(),
            audio_samples: 0,
            rounds: Vec::new(),
        });
    }

    async fn on_answer_event(&mut self, event: Option<AnswerEvent>) -> bool {
        let Some(running) = self.answer.as_mut() else {
            return true;
        };
        let event = event.unwrap_or(AnswerEvent::Failed(ProviderError::Unavailable(
            "answer task ended".into(),
        )));
        if running.preemptive_for.is_some() {
            if matches!(event, AnswerEvent::ToolCall(_)) {
                // A tool runs for real and its timer is running: not while the turn may
                // still go on. The answer starts again, properly, when the turn ends.
                self.cancel_preemptive();
                return true;
            }
            let last = matches!(event, AnswerEvent::Finished { .. } | AnswerEvent::Failed(_));
            running.backlog.push(event);
            running.drained = last;
            return true;
        }
        let item_id = running.item_id.clone();
        match event {
            AnswerEvent::Piece(text) => {
                if !running.pieces.is_empty() {
                    running.pieces.push(' ');
                }
                running.pieces.push_str(&text);
            }
            AnswerEvent::Audio(samples) => {
                running.audio_samples += samples.len() as u64;
                let _ = self
                    .events
                    .send(AgentEvent::Audio { item_id, samples })
                    .await;
            }
            AnswerEvent::ToolCall(call) => {
                let _ = self
                    .events
                    .send(AgentEvent::ToolCall {
                        call_id: call.id,
                        name: call.name,
                        arguments: call.arguments,
                    })
                    .await;
            }
            AnswerEvent::Round(messages) => running.rounds.extend(messages),
            AnswerEvent::Violation(violation) => {
                info!(call = %self.call.call_id, ?violation, "prompt guard stopped an answer");
                if self.inner.guard.settings().handoff_on_violation {
                    let _ = self
                        .events
                        .send(AgentEvent::ToolCall {
                            call_id: format!("guard-{item_id}"),
                            name: "transfer_to_human".into(),
                            arguments: r#"{"reason":"the answer failed the prompt guard"}"#.into(),
                        })
                        .await;
                }
            }
            AnswerEvent::Finished { text } => {
                if let Some(running) = self.answer.take() {
                    self.close_answer(running, Some(text)).await;
                }
                if !self.queued.is_empty() && self.answer.is_none() {
                    let text = std::mem::take(&mut self.queued).join(" ");
                    self.answer_caller(text);
                }
            }
            AnswerEvent::Failed(error) => {
                let _ = self
                    .events
                    .send(AgentEvent::Error {
                        message: format!("the cascaded answer failed: {error}"),
                        fatal: true,
                    })
                    .await;
                return false;
            }
        }
        true
    }

    /// Puts an answer in the history and tells the call it is over. `text`: the answer
    /// finished with these words; None: it was cut off (its pieces so far stand).
    async fn close_answer(&mut self, running: Running, text: Option<String>) {
        running.task.abort();
        let complete = text.is_some();
        let text = text.unwrap_or_else(|| running.pieces.clone());
        if let Some(user) = running.user_text {
            self.history.push(ChatMessage::User(user));
        }
        self.history.extend(running.rounds);
        self.history.push(ChatMessage::Assistant {
            text: text.clone(),
            tool_calls: Vec::new(),
        });
        let audio_ms = running.audio_samples * 1000 / u64::from(self.output_rate.max(1));
        self.last_finished = Some(Finished {
            item_id: running.item_id.clone(),
            text: text.clone(),
            audio_ms,
            history_index: self.history.len() - 1,
        });
        let _ = self
            .events
            .send(AgentEvent::AudioDone {
                item_id: running.item_id,
            })
            .await;
        if !text.is_empty() {
            let _ = self
                .events
                .send(AgentEvent::Transcript {
                    role: Role::Agent,
                    text,
                })
                .await;
        }
        let status = if complete { "completed" } else { "cancelled" };
        let _ = self
            .events
            .send(AgentEvent::ResponseDone {
                status: status.into(),
            })
            .await;
    }

    /// The caller barged in after `heard_ms` of answer `item_id`: stop it, and remember
    /// only what they heard.
    async fn interrupted(&mut self, item_id: &str, heard_ms: u32) {
        let heard_ms = u64::from(heard_ms);
        if self.answer.as_ref().is_some_and(|a| a.item_id == item_id) {
            if let Some(mut running) = self.answer.take() {
                running.task.abort();
                let rendered = running.audio_samples * 1000 / u64::from(self.output_rate.max(1));
                let heard = heard_text(&running.pieces, heard_ms, rendered, false);
                self.resumable = unheard(&running.pieces, &heard);
                running.pieces = heard.clone();
                info!(call = %self.call.call_id, item_id, heard_ms, "answer interrupted");
                self.close_answer(running, None).await;
            }
            return;
        }
        // An answer that finished rendering but was still playing.
        let Some(finished) = self.last_finished.as_ref().filter(|f| f.item_id == item_id) else {
            return;
        };
        let heard = heard_text(&finished.text, heard_ms, finished.audio_ms, true);
        self.resumable = unheard(&finished.text, &heard);
        if let Some(ChatMessage::Assistant { text, .. }) =
            self.history.get_mut(finished.history_index)
        {
            *text = heard;
        }
    }

    /// The history the LLM gets: the newest messages, starting at a caller line.
    fn trimmed_history(&self) -> Vec<ChatMessage> {
        let max = self.inner.settings.max_history_messages;
        let mut start = self.history.len().saturating_sub(max);
        while start < self.history.len() && !matches!(self.history[start], ChatMessage::User(_)) {
            start += 1;
        }
        if start == self.history.len() {
            start = self.history.len().saturating_sub(max);
        }
        self.history[start..].to_vec()
    }
}

/// The part of `said` after `heard`, if any.
fn unheard(said: &str, heard: &str) -> Option<String> {
    let rest = said.strip_prefix(heard).unwrap_or(said).trim();
    (!rest.is_empty()).then(|| rest.to_string())
}

/// Opens the first STT provider from index `from` that answers in time.
async fn open_stt(inner: &Inner, from: usize) -> Result<(SttStream, usize), ProviderError> {
    let mut last = ProviderError::Config("no speech-to-text provider configured".into());
    let options = SttOptions {
        sample_rate: inner.settings.stt_rate,
        language: inner.persona.language.clone(),
    };
    let timeout = Duration::from_millis(inner.settings.stt_final_timeout_ms.max(1000) * 3);
    for (index, stt) in inner.stt.iter().enumerate().skip(from) {
        match tokio::time::timeout(timeout, stt.open(options.clone())).await {
            Ok(Ok(stream)) => return Ok((stream, index)),
            Ok(Err(e)) => {
                warn!(provider = stt.name(), error = %e, "STT did not open");
                last = e;
            }
            Err(_) => {
                warn!(provider = stt.name(), "STT did not open in time");
                last = ProviderError::Timeout;
            }
        }
    }
    Err(last)
}

async fn next_event(answer: &mut Option<Running>) -> Option<AnswerEvent> {
    match answer {
        Some(running) if !running.drained => running.events.recv().await,
        _ => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
