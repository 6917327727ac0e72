//! The `Agent` trait: what a call talks to, whichever AI sits behind it.
//!
//! A call connects an agent once per call and gets an [`AgentSession`]: a sender for
//! [`AgentInput`] (caller audio and control) and a receiver of [`AgentEvent`] (agent audio,
//! transcripts, tool calls, barge-in signals). Realtime (speech-to-speech) and cascaded
//! agents both fit, so the call task does not care which one it has.

pub mod cascaded;
mod persona;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

pub use persona::{AgentPersona, ToolSpec};

/// What the call knows about itself when it connects an agent.
#[derive(Debug, Clone, Default)]
pub struct CallInfo {
    /// FreeSWITCH channel UUID.
    pub call_id: String,
    /// Tenant: the FusionPBX domain (name or uuid) the call belongs to.
    pub tenant: String,
    pub caller: Option<String>,
    pub callee: Option<String>,
    /// Sample rate of the call's audio as FreeSWITCH streams it.
    pub call_rate: u32,
    /// The conversation so far, oldest first, when the call reconnects after a provider
    /// failure. The agent gives it to the provider as context before the caller's audio.
    pub history: Vec<(Role, String)>,
}

/// Input to an agent, sent by the call task.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentInput {
    /// Caller audio: mono PCM16 at the session's `input_rate`.
    Audio(Vec<i16>),
    /// The caller barged in: only `heard_ms` of response `item_id`'s audio reached them.
    /// The agent cancels what is still generating and trims its memory to what was heard.
    Interrupted { item_id: String, heard_ms: u32 },
    /// A DTMF digit pressed by the caller.
    Dtmf(char),
    /// Text from the FreeSWITCH side (e.g. `send_text`), passed to the agent as user text.
    Text(String),
    /// Result of a tool call the agent asked for.
    ToolResult { call_id: String, output: String },
    /// The call's own turn detection decided the caller has finished: answer now. Only
    /// sent to agents set up for local turns (their provider-side detection is off).
    EndOfTurn,
    /// Local turns: the caller paused and the call is deciding whether their turn is over
    /// ([`AgentInput::EndOfTurn`] follows if so). A cascaded agent gets its transcript
    /// ready meanwhile; realtime agents ignore it.
    CallerPaused,
}

/// Who said something in a transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Caller,
    Agent,
}

/// Output of an agent, received by the call task.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// Agent audio for response item `item_id`: mono PCM16 at the session's `output_rate`.
    Audio { item_id: String, samples: Vec<i16> },
    /// No more audio will come for `item_id`.
    AudioDone { item_id: String },
    /// The provider heard the caller start speaking (its own VAD): a barge-in signal.
    SpeechStarted,
    /// The provider heard the caller stop speaking: the caller's turn ended.
    SpeechStopped,
    /// A finished transcript line.
    Transcript { role: Role, text: String },
    /// The agent wants a tool run; answer with [`AgentInput::ToolResult`].
    ToolCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    /// The current response finished (`completed`, `cancelled`, `failed`, …).
    ResponseDone { status: String },
    /// A provider error. `fatal` means the session is over.
    Error { message: String, fatal: bool },
}

/// A live agent conversation for one call.
pub struct AgentSession {
    pub input: mpsc::Sender<AgentInput>,
    pub events: mpsc::Receiver<AgentEvent>,
    /// Rate the agent wants caller audio at.
    pub input_rate: u32,
    /// Rate of the audio the agent sends back.
    pub output_rate: u32,
}

/// Why an agent could not start or went away.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("provider refused the connection: {0}")]
    Refused(String),
    #[error("provider did not answer in time")]
    Timeout,
    #[error("provider protocol error: {0}")]
    Protocol(String),
    #[error("agent misconfigured: {0}")]
    Config(String),
}

/// An AI back end that can hold a conversation with a caller.
pub trait Agent: Send + Sync {
    /// Short name for logs and metrics (`openai_realtime`, …).
    fn name(&self) -> &'static str;

    /// Opens a conversation for one call. Resolves once the provider is ready for audio.
    fn connect(&self, call: CallInfo) -> BoxFuture<'static, Result<AgentSession, AgentError>>;
}
