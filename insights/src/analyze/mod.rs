//! The LLM stages: a call's segments and insights, and its scorecard against a template.
//!
//! One streaming chat request per attempt (voice-core's clients); the answer must be one
//! JSON object matching the prompt's schema. An invalid one is asked again, with the
//! conversation so far and the reason, up to `max_attempts`.

mod prompt;
mod scorecard;
mod settings;
mod template;
mod validate;

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use voice_core::providers::llm::anthropic::{AnthropicChat, AnthropicConfig};
use voice_core::providers::llm::openai_chat::{OpenAiChat, OpenAiChatConfig};
use voice_core::providers::llm::{ChatEvent, ChatMessage, ChatModel, ChatRequest, StopReason};
use voice_core::providers::ProviderError;

use crate::calls::model::{Analysis, Scorecard, ScorecardTemplate, Transcription};
pub use prompt::Prompt;
pub use settings::AnalyzeSettings;
pub use template::{default_template, validate_template};
pub use validate::SEGMENT_LABELS;

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// Our side: unknown provider, bad prompt file, key refused, model unknown (4xx).
    #[error("analysis misconfigured: {0}")]
    Config(String),
    /// Provider down, 5xx, 429, broken stream, timeout: try the job again later.
    #[error("analysis provider unavailable: {0}")]
    Retryable(String),
    /// Still invalid after `max_attempts`; the last reason.
    #[error("analysis output invalid: {0}")]
    InvalidOutput(String),
}

#[derive(Clone)]
pub struct Analyzer {
    chat: Arc<dyn ChatModel>,
    model: String,
    analysis_prompt: Prompt,
    scorecard_prompt: Prompt,
    timeout: Duration,
    max_attempts: u32,
    max_transcript_chars: usize,
    max_tokens: u32,
}

impl Analyzer {
    pub fn from_settings(s: &AnalyzeSettings) -> Result<Self, AnalyzeError> {
        if s.max_attempts == 0 || s.timeout_secs == 0 {
            return Err(AnalyzeError::Config(
                "max_attempts and timeout_secs must be positive".into(),
            ));
        }
        let timeout_ms = s.timeout_secs.saturating_mul(1000);
        let mut model = s.model.trim().to_string();
        let chat: Arc<dyn ChatModel> = match s.provider.as_str() {
            "openai" | "groq" | "ollama" => {
                let base = match s.provider.as_str() {
                    "groq" => OpenAiChatConfig::groq(),
                    "ollama" => OpenAiChatConfig::ollama(),
                    _ => OpenAiChatConfig::default(),
                };
                Arc::new(OpenAiChat::new(OpenAiChatConfig {
                    url: non_empty(&s.url).unwrap_or(base.url.clone()),
                    model: fill(&mut model, &base.model),
                    api_key: s.api_key.clone(),
                    max_tokens: s.max_tokens,
                    first_token_timeout_ms: timeout_ms,
                    idle_timeout_ms: timeout_ms,
                    ..base
                }))
            }
            "anthropic" => {
                let base = AnthropicConfig::default();
                Arc::new(AnthropicChat::new(AnthropicConfig {
                    url: non_empty(&s.url).unwrap_or(base.url.clone()),
                    model: fill(&mut model, &base.model),
                    api_key: s.api_key.clone(),
                    max_tokens: s.max_tokens,
                    first_token_timeout_ms: timeout_ms,
                    idle_timeout_ms: timeout_ms,
                    ..base
                }))
            }
            other => {
                return Err(AnalyzeError::Config(format!(
                    "analyze.provider {other:?}: use openai, groq, ollama or anthropic"
                )))
            }
        };
        Ok(Self {
            chat,
            model,
            analysis_prompt: prompt::analysis_prompt().map_err(AnalyzeError::Config)?,
            scorecard_prompt: prompt::scorecard_prompt().map_err(AnalyzeError::Config)?,
            timeout: Duration::from_secs(s.timeout_secs),
            max_attempts: s.max_attempts,
            max_transcript_chars: s.max_transcript_chars,
            max_tokens: s.max_tokens,
        })
    }

    /// Segments and insights in one request; relative due dates are resolved by the model
    /// against `call_date`, which the request states.
    pub async fn analyze(
        &self,
        t: &Transcription,
        call_date: NaiveDate,
    ) -> Result<Analysis, AnalyzeError> {
        let duration = prompt::duration(t);
        let message = prompt::analysis_message(t, call_date, self.max_transcript_chars);
        let (segments, insights) = self
            .ask(&self.analysis_prompt.body, message, |a| {
                validate::analysis(a, duration)
            })
            .await?;
        Ok(Analysis {
            segments,
            insights,
            model: self.model.clone(),
            prompt_version: self.analysis_prompt.version.clone(),
        })
    }

    /// Every template item scored; total and maximum computed here.
    pub async fn score(
        &self,
        t: &Transcription,
        template: &ScorecardTemplate,
    ) -> Result<Scorecard, AnalyzeError> {
        validate_template(&template.items).map_err(AnalyzeError::Config)?;
        let message = prompt::scorecard_message(t, template, self.max_transcript_chars);
        self.ask(&self.scorecard_prompt.body, message, |a| {
            scorecard::scorecard(a, template)
        })
        .await
    }

    /// The prompt version scorecards were made with (`scorecard@1`).
    pub fn scorecard_prompt_version(&self) -> &str {
        &self.scorecard_prompt.version
    }

    /// Asks until `check` accepts the answer, telling the model what was wrong each time.
    async fn ask<T>(
        &self,
        system: &str,
        message: String,
        check: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, AnalyzeError> {
        let mut messages = vec![ChatMessage::User(message)];
        let mut reason = String::new();
        for attempt in 1..=self.max_attempts {
            let request = ChatRequest {
                system: system.to_string(),
                messages: messages.clone(),
                tools: Vec::new(),
                max_tokens: Some(self.max_tokens),
            };
            let answer = tokio::time::timeout(self.timeout, self.complete(request))
                .await
                .map_err(|_| {
                    AnalyzeError::Retryable(format!(
                        "no complete answer within {} s",
                        self.timeout.as_secs()
                    ))
                })??;
            let verdict = match answer.stop {
                StopReason::Length => Err("the answer was cut by the length limit".to_string()),
                _ => check(&answer.text),
            };
            match verdict {
                Ok(value) => return Ok(value),
                Err(why) => {
                    tracing::warn!(attempt, reason = %why, "LLM answer invalid");
                    reason = why;
                    messages.push(ChatMessage::Assistant {
                        text: answer.text,
                        tool_calls: Vec::new(),
                    });
                    messages.push(ChatMessage::User(format!(
                        "Sua resposta é inválida: {reason}. Responda novamente apenas com o objeto JSON corrigido, seguindo o esquema."
                    )));
                }
            }
        }
        Err(AnalyzeError::InvalidOutput(format!(
            "after {} attempts: {reason}",
            self.max_attempts
        )))
    }

    /// One answer, its text pieces joined.
    async fn complete(&self, request: ChatRequest) -> Result<Answer, AnalyzeError> {
        let mut events = self.chat.stream(request).await.map_err(provider_error)?;
        let mut text = String::new();
        while let Some(event) = events.recv().await {
            match event {
                ChatEvent::Text(piece) => text.push_str(&piece),
                ChatEvent::ToolCall(_) => {}
                ChatEvent::Done(stop) => return Ok(Answer { text, stop }),
                ChatEvent::Error(e) => return Err(provider_error(e)),
            }
        }
        Err(AnalyzeError::Retryable(
            "the answer stream ended without its end".into(),
        ))
    }
}

struct Answer {
    text: String,
    stop: StopReason,
}

/// 4xx and configuration are ours to fix; everything else may pass.
fn provider_error(e: ProviderError) -> AnalyzeError {
    match e {
        ProviderError::Refused(_) | ProviderError::Config(_) => AnalyzeError::Config(e.to_string()),
        ProviderError::Unavailable(_) | ProviderError::Timeout | ProviderError::Protocol(_) => {
            AnalyzeError::Retryable(e.to_string())
        }
    }
}

/// `value`, or `default` written into it when empty.
fn fill(value: &mut String, default: &str) -> String {
    if value.is_empty() {
        *value = default.to_string();
    }
    value.clone()
}

fn non_empty(s: &str) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.trim().to_string())
}
