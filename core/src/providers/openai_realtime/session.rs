//! How the session task ([`crate::providers::ws_session`]) drives the conversation state:
//! client events out as JSON text, each server text event in as at most one agent event.

use super::client_events::ClientEvent;
use super::state::ConversationState;
use crate::agent::{AgentEvent, AgentInput};
use crate::providers::ws_session::{Frame, Protocol};

impl Protocol for ConversationState {
    const NAME: &'static str = "OpenAI Realtime";

    fn messages_for(&mut self, input: AgentInput) -> Vec<String> {
        let events = self.on_input(input);
        events.iter().map(ClientEvent::to_json).collect()
    }

    fn events_for(&mut self, frame: Frame<'_>) -> Vec<AgentEvent> {
        match frame {
            Frame::Text(text) => self.on_server_text(text).into_iter().collect(),
            // The Realtime API speaks JSON text only.
            Frame::Binary(_) => Vec::new(),
        }
    }
}
