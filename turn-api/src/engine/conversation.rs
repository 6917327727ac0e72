//! What the engine remembers of one call between turns. The HTTP layer keeps it (in memory
//! or serialized) and hands it back with the next turn; the engine holds no call state.

use serde::{Deserialize, Serialize};
use voice_core::agent::Role;
use voice_core::providers::llm::ChatMessage;

/// Most messages and tool records kept with one call (a loop cannot grow it without end).
const MAX_RECORDS: usize = 200;

/// A message the agent took for the team (`take_message`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TakenMessage {
    pub name: String,
    /// A number to call back (empty when the caller gave none).
    pub number: String,
    pub message: String,
    /// The caller turn it was taken in (1 = the first).
    pub turn: u32,
}

/// One tool call the model made, and what it was told.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ToolRecord {
    pub turn: u32,
    pub name: String,
    /// The JSON text the model sent.
    pub arguments: String,
    /// What the model was told back.
    pub result: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct Conversation {
    /// Caller and agent lines, oldest first, at most `max_history_messages`.
    pub history: Vec<(Role, String)>,
    /// Caller turns handled so far.
    pub turns: u32,
    pub messages: Vec<TakenMessage>,
    pub tool_calls: Vec<ToolRecord>,
}

impl Conversation {
    /// Adds a line and drops the oldest beyond `max`.
    pub(super) fn remember(&mut self, role: Role, text: &str, max: usize) {
        if text.trim().is_empty() {
            return;
        }
        self.history.push((role, text.trim().to_string()));
        let excess = self.history.len().saturating_sub(max);
        self.history.drain(..excess);
    }

    pub(super) fn record_tool(&mut self, record: ToolRecord) {
        if self.tool_calls.len() < MAX_RECORDS {
            self.tool_calls.push(record);
        }
    }

    /// Whether another message fits.
    pub(super) fn has_room_for_message(&self) -> bool {
        self.messages.len() < MAX_RECORDS
    }

    /// The history as chat messages. Consecutive lines of one side are joined (a greeting
    /// followed by a silent turn's reply), as some providers want the sides to alternate.
    pub(super) fn chat_messages(&self) -> Vec<ChatMessage> {
        let mut out: Vec<ChatMessage> = Vec::with_capacity(self.history.len());
        for (role, text) in &self.history {
            match (role, out.last_mut()) {
                (Role::Caller, Some(ChatMessage::User(last))) => {
                    last.push(' ');
                    last.push_str(text);
                }
                (Role::Agent, Some(ChatMessage::Assistant { text: last, .. })) => {
                    last.push(' ');
                    last.push_str(text);
                }
                (Role::Caller, _) => out.push(ChatMessage::User(text.clone())),
                (Role::Agent, _) => out.push(ChatMessage::Assistant {
                    text: text.clone(),
                    tool_calls: Vec::new(),
                }),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_newest_lines_and_joins_one_side_in_a_row() {
        let mut c = Conversation::default();
        c.remember(Role::Agent, "Olá!", 3);
        c.remember(Role::Agent, "Não ouvi.", 3);
        c.remember(Role::Caller, "  ", 3);
        c.remember(Role::Caller, "Quero marcar.", 3);
        assert_eq!(
            c.chat_messages(),
            vec![
                ChatMessage::Assistant {
                    text: "Olá! Não ouvi.".into(),
                    tool_calls: vec![]
                },
                ChatMessage::User("Quero marcar.".into()),
            ]
        );
        c.remember(Role::Agent, "Para quando?", 3);
        assert_eq!(c.history.len(), 3);
        assert_eq!(c.history[0], (Role::Agent, "Não ouvi.".to_string()));
        let json = serde_json::to_string(&c).unwrap();
        let back: Conversation = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        assert_eq!(
            serde_json::from_str::<Conversation>("{}").unwrap(),
            Conversation::default()
        );
    }
}
