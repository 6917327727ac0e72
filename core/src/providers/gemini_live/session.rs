//! How the session task ([`crate::providers::ws_session`]) drives the conversation state:
//! client messages out as JSON text, server messages in from text or binary frames.

use super::client_messages::ClientMessage;
use super::state::ConversationState;
use crate::agent::{AgentEvent, AgentInput};
use crate::providers::ws_session::{Frame, Protocol};

impl Protocol for ConversationState {
    const NAME: &'static str = "Gemini Live";

    fn messages_for(&mut self, input: AgentInput) -> Vec<String> {
        let messages = self.on_input(input);
        messages.iter().map(ClientMessage::to_json).collect()
    }

    // Gemini may send its JSON in binary frames (the SDK reads both).
    fn events_for(&mut self, frame: Frame<'_>) -> Vec<AgentEvent> {
        match frame {
            Frame::Text(text) => self.on_server_frame(text.as_bytes()),
            Frame::Binary(bytes) => self.on_server_frame(bytes),
        }
    }
}
