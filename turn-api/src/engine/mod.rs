//! The turn engine: one caller recording in, the agent's reply (text, audio, and what the
//! IVR should do next) out. A Lua IVR script records the caller, posts the recording, plays
//! the reply and continues, transfers or hangs up as told.
//!
//! A turn: the recording is trimmed to its speech with a VAD (no speech: a fixed "please
//! repeat" without STT or LLM), transcribed through the STT chain, cleaned by the prompt
//! guard, answered by the LLM chain with the agents' tools (a few rounds at most), the
//! answer checked by the guard, and spoken through the TTS chain at the IVR's rate. The
//! engine keeps no call state: the [`Conversation`] goes in and out with each turn.
//!
//! Files: `settings.rs`, `conversation.rs` (what a call keeps between turns), `trim.rs`
//! (the VAD trim), `stages.rs` (the provider chains), `tools.rs` (tool specs and checks).

mod conversation;
mod settings;
mod stages;
#[cfg(test)]
mod tests;
mod tools;
mod trim;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{info, warn};
use voice_core::agent::cascaded::{CascadedSettings, PromptGuard};
use voice_core::agent::{Role, ToolSpec};
use voice_core::audio::Resampler;
use voice_core::providers::catalog::ProviderSettings;
use voice_core::providers::llm::{ChatMessage, ChatModel, ChatRequest, ToolCall};
use voice_core::providers::stt::Transcriber;
use voice_core::providers::tts::TextToSpeech;
use voice_core::providers::ProviderError;

pub use conversation::{Conversation, TakenMessage, ToolRecord};
pub use settings::{EngineSettings, EngineTool, TrimSettings};

use tools::ToolRequest;

/// What the IVR does after playing the reply.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Record the caller's next turn.
    Continue,
    /// Hand the call to `target` (an extension or queue).
    Transfer { target: String },
    /// Hang up.
    Hangup,
}

/// How long each step of a turn took, in ms (0 for a step that did not run).
#[derive(Serialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct TurnTimings {
    pub trim_ms: u64,
    pub stt_ms: u64,
    pub llm_ms: u64,
    pub tts_ms: u64,
}

#[derive(Clone, Debug)]
pub struct TurnOutcome {
    /// What STT heard, guard-cleaned ("" when the recording held no speech).
    pub caller_text: String,
    /// What the agent says (the audio's text).
    pub reply_text: String,
    /// The reply: PCM16 mono at [`EngineSettings::audio_rate`].
    pub audio: Vec<i16>,
    pub action: Action,
    pub timings: TurnTimings,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The recording cannot be used (rate, length): the client's fault.
    #[error("bad audio: {0}")]
    BadAudio(String),
    /// Every provider of a stage failed; the error is the last one's.
    #[error("all providers failed: {0}")]
    Providers(ProviderError),
    /// The engine cannot be built from these settings.
    #[error("engine misconfigured: {0}")]
    Config(String),
}

impl EngineError {
    /// The HTTP status this error maps to: 400 bad audio, 503 providers down or slow, 502
    /// providers refusing or misbehaving, 500 our configuration.
    pub fn http_status(&self) -> u16 {
        match self {
            EngineError::BadAudio(_) => 400,
            EngineError::Providers(ProviderError::Unavailable(_) | ProviderError::Timeout) => 503,
            EngineError::Providers(_) => 502,
            EngineError::Config(_) => 500,
        }
    }
}

/// Answers `lookup_knowledge`: the query in, what the model is told out (a database search,
/// so it is awaited).
pub type KnowledgeLookup =
    Arc<dyn Fn(String) -> futures_util::future::BoxFuture<'static, String> + Send + Sync>;

/// Built once per process; shared by every call (`&self` everywhere).
pub struct TurnEngine {
    settings: EngineSettings,
    stt: Vec<Arc<dyn Transcriber>>,
    llm: Vec<Arc<dyn ChatModel>>,
    tts: Vec<Arc<dyn TextToSpeech>>,
    guard: PromptGuard,
    system_prompt: String,
    knowledge: Option<KnowledgeLookup>,
}

impl TurnEngine {
    /// Checks `settings` and builds every provider its chains name, once.
    pub fn new(
        providers: &ProviderSettings,
        settings: EngineSettings,
    ) -> Result<Self, EngineError> {
        settings.validate().map_err(EngineError::Config)?;
        let chains = CascadedSettings {
            stt: Vec::new(),
            llm: settings.llm.clone(),
            tts: settings.tts.clone(),
            ..CascadedSettings::default()
        };
        let built = providers
            .build([&chains])
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let stages = built.stages(&chains);
        let stt = settings
            .stt
            .iter()
            .flat_map(|&k| providers.transcribers(k))
            .collect();
        let system_prompt = system_prompt(&settings.instructions, &settings.language);
        let guard = PromptGuard::new(settings.guard.clone(), &system_prompt);
        Ok(Self {
            stt,
            llm: stages.llm,
            tts: stages.tts,
            guard,
            system_prompt,
            knowledge: None,
            settings,
        })
    }

    /// Offers `lookup_knowledge` (when the settings list it), answered by `lookup`.
    pub fn with_knowledge(mut self, lookup: KnowledgeLookup) -> Self {
        self.knowledge = Some(lookup);
        self
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// The greeting, spoken (no STT, no LLM). An empty greeting gives empty audio.
    pub async fn greeting(&self, conv: &mut Conversation) -> Result<TurnOutcome, EngineError> {
        let text = self.settings.greeting.trim().to_string();
        let mut timings = TurnTimings::default();
        let audio = self.speak(&text, &mut timings).await?;
        conv.remember(Role::Agent, &text, self.settings.max_history_messages);
        Ok(TurnOutcome {
            caller_text: String::new(),
            reply_text: text,
            audio,
            action: Action::Continue,
            timings,
        })
    }

    /// One caller turn: `audio` is PCM16 mono at `rate` (8000–48000).
    pub async fn turn(
        &self,
        conv: &mut Conversation,
        audio: &[i16],
        rate: u32,
    ) -> Result<TurnOutcome, EngineError> {
        let mut timings = TurnTimings::default();
        let started = Instant::now();
        let (samples, rate) = self.normalize(audio, rate)?;
        let span = trim::speech_span(&samples, rate, &self.settings.trim)?;
        timings.trim_ms = ms_since(started);
        conv.turns = conv.turns.saturating_add(1);
        let Some(span) = span else {
            return self.no_speech(timings).await;
        };

        let started = Instant::now();
        let heard = stages::transcribe(
            &self.stt,
            &samples[span],
            rate,
            &self.settings.language,
            Duration::from_millis(self.settings.stt_timeout_ms),
        )
        .await
        .map_err(EngineError::Providers)?;
        timings.stt_ms = ms_since(started);
        let caller_text = self.guard.clean_caller_text(&heard);
        if caller_text.is_empty() {
            return self.no_speech(timings).await;
        }

        let started = Instant::now();
        let (reply_text, action) = self.think(conv, &caller_text).await?;
        timings.llm_ms = ms_since(started);

        let audio = self.speak(&reply_text, &mut timings).await?;
        let max = self.settings.max_history_messages;
        conv.remember(Role::Caller, &caller_text, max);
        conv.remember(Role::Agent, &reply_text, max);
        info!(turn = conv.turns, ?action, ?timings, "turn answered");
        Ok(TurnOutcome {
            caller_text,
            reply_text,
            audio,
            action,
            timings,
        })
    }

    /// Checks the recording; audio at a rate the VAD does not take is brought to 16 kHz.
    fn normalize(&self, audio: &[i16], rate: u32) -> Result<(Vec<i16>, u32), EngineError> {
        if !(8000..=48_000).contains(&rate) {
            return Err(EngineError::BadAudio(format!(
                "sample rate {rate} is not 8000–48000"
            )));
        }
        let ms = audio.len() as u64 * 1000 / u64::from(rate);
        if ms > self.settings.max_turn_audio_ms {
            return Err(EngineError::BadAudio(format!(
                "{ms} ms of audio is more than the {} ms a turn may have",
                self.settings.max_turn_audio_ms
            )));
        }
        if matches!(rate, 8000 | 16000) {
            return Ok((audio.to_vec(), rate));
        }
        let mut r =
            Resampler::new(rate, 16_000).map_err(|e| EngineError::BadAudio(e.to_string()))?;
        let mut out = Vec::with_capacity(audio.len() * 16_000 / rate as usize + 64);
        r.process(audio, &mut out);
        r.flush(&mut out);
        Ok((out, 16_000))
    }

    /// The fixed "please repeat" turn: no STT words, no LLM, nothing in the history.
    async fn no_speech(&self, mut timings: TurnTimings) -> Result<TurnOutcome, EngineError> {
        let reply_text = self.settings.no_speech_reply.clone();
        let audio = self.speak(&reply_text, &mut timings).await?;
        Ok(TurnOutcome {
            caller_text: String::new(),
            reply_text,
            audio,
            action: Action::Continue,
            timings,
        })
    }

    async fn speak(&self, text: &str, timings: &mut TurnTimings) -> Result<Vec<i16>, EngineError> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let audio = stages::speak(
            &self.tts,
            text,
            self.settings.audio_rate,
            Duration::from_millis(self.settings.tts_timeout_ms),
        )
        .await
        .map_err(EngineError::Providers)?;
        timings.tts_ms = ms_since(started);
        Ok(audio)
    }

    /// The tools offered: those the settings list and the engine can serve.
    fn offered_tools(&self) -> Vec<EngineTool> {
        self.settings
            .tools
            .iter()
            .copied()
            .filter(|t| match t {
                EngineTool::TransferToHuman => !self.settings.handoff_target.trim().is_empty(),
                EngineTool::LookupKnowledge => self.knowledge.is_some(),
                EngineTool::EndCall | EngineTool::TakeMessage => true,
            })
            .collect()
    }

    /// The LLM's answer to `caller_text` after the tool rounds, guard-checked, and the
    /// action it chose.
    async fn think(
        &self,
        conv: &mut Conversation,
        caller_text: &str,
    ) -> Result<(String, Action), EngineError> {
        let offered = self.offered_tools();
        let mut messages = conv.chat_messages();
        messages.push(ChatMessage::User(caller_text.to_string()));
        let mut request = ChatRequest {
            system: self.system_prompt.clone(),
            messages,
            tools: offered.iter().map(|t| t.spec()).collect::<Vec<ToolSpec>>(),
            max_tokens: None,
        };
        let timeout = Duration::from_millis(self.settings.llm_timeout_ms);
        let mut said = String::new();
        let mut action = Action::Continue;
        for round in 0..=self.settings.max_tool_rounds {
            if round == self.settings.max_tool_rounds {
                request.tools.clear(); // enough tools: answer in words now
            }
            let answer = stages::answer(&self.llm, &request, timeout)
                .await
                .map_err(EngineError::Providers)?;
            if !answer.text.is_empty() {
                if !said.is_empty() {
                    said.push(' ');
                }
                said.push_str(&answer.text);
            }
            if answer.calls.is_empty() {
                break;
            }
            let mut results = Vec::with_capacity(answer.calls.len());
            for call in &answer.calls {
                let (output, chosen) = self.run_tool(conv, &offered, call).await;
                if action == Action::Continue {
                    action = chosen;
                }
                results.push(ChatMessage::ToolResult {
                    call_id: call.id.clone(),
                    output,
                });
            }
            request.messages.push(ChatMessage::Assistant {
                text: answer.text,
                tool_calls: answer.calls,
            });
            request.messages.extend(results);
            if action != Action::Continue {
                break; // the call is leaving: no need to ask the model again
            }
        }
        Ok(self.final_reply(said, action))
    }

    /// Runs one tool call: the result the model is told, and the action it asks for.
    async fn run_tool(
        &self,
        conv: &mut Conversation,
        offered: &[EngineTool],
        call: &ToolCall,
    ) -> (String, Action) {
        let (output, action) = match ToolRequest::parse(offered, &call.name, &call.arguments) {
            Err(e) => {
                warn!(tool = %call.name, error = %e, "the model's tool call was refused");
                (
                    serde_json::json!({ "error": e }).to_string(),
                    Action::Continue,
                )
            }
            Ok(ToolRequest::TransferToHuman) => (
                r#"{"status":"transferring"}"#.to_string(),
                Action::Transfer {
                    target: self.settings.handoff_target.clone(),
                },
            ),
            Ok(ToolRequest::EndCall) => (r#"{"status":"ending"}"#.to_string(), Action::Hangup),
            Ok(ToolRequest::TakeMessage {
                name,
                number,
                message,
            }) => {
                if conv.has_room_for_message() {
                    conv.messages.push(TakenMessage {
                        name,
                        number,
                        message,
                        turn: conv.turns,
                    });
                    (r#"{"status":"saved"}"#.to_string(), Action::Continue)
                } else {
                    (
                        r#"{"error":"too many messages in this call"}"#.to_string(),
                        Action::Continue,
                    )
                }
            }
            Ok(ToolRequest::LookupKnowledge { query }) => match &self.knowledge {
                Some(lookup) => (lookup(query).await, Action::Continue),
                None => (
                    r#"{"error":"no knowledge base"}"#.to_string(),
                    Action::Continue,
                ),
            },
        };
        conv.record_tool(ToolRecord {
            turn: conv.turns,
            name: call.name.clone(),
            arguments: call.arguments.clone(),
            result: output.clone(),
        });
        (output, action)
    }

    /// What is said for `said` and `action`, after the guard's check.
    fn final_reply(&self, said: String, action: Action) -> (String, Action) {
        if let Err(violation) = self.guard.check(&said) {
            warn!(?violation, "reply stopped by the prompt guard");
            let target = self.settings.handoff_target.trim();
            let action = if self.guard.settings().handoff_on_violation && !target.is_empty() {
                Action::Transfer {
                    target: target.to_string(),
                }
            } else {
                action
            };
            return (self.guard.settings().safe_reply.clone(), action);
        }
        let reply = match &action {
            Action::Hangup => self.settings.goodbye.clone(),
            Action::Transfer { .. } if said.is_empty() => self.settings.handoff_text.clone(),
            Action::Continue if said.is_empty() => self.settings.empty_reply.clone(),
            _ => said,
        };
        (reply, action)
    }
}

/// The instructions, plus what every phone agent must know about its medium (as the
/// cascaded agent's).
fn system_prompt(instructions: &str, language: &str) -> String {
    let language = match language.trim() {
        "" => String::new(),
        l => format!(" Answer in the caller's language ({l})."),
    };
    format!(
        "{}\n\nYou are speaking on a phone call: your words are turned into speech. Answer in short \
         spoken sentences, without lists, markdown, emojis or URLs.{language}",
        instructions.trim()
    )
}

fn ms_since(started: Instant) -> u64 {
    started.elapsed().as_millis().min(u128::from(u64::MAX)) as u64
}
