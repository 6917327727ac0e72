//! Running the tools an agent calls (bridge/src/tools): every call and its result is kept
//! with the call's facts, and the agent always gets an answer, even to a bad call.

use serde_json::json;
use tracing::{info, warn};
use voice_core::agent::AgentInput;

use super::{Call, End};
use crate::tools::{knowledge, ToolRequest};

impl Call {
    pub(super) async fn on_tool_call(
        &mut self,
        call_id: String,
        name: String,
        arguments: String,
    ) -> Option<End> {
        let request = ToolRequest::parse(&self.settings.agent.tools, &name, &arguments);
        let (output, end) = match request {
            Err(why) => {
                warn!(call = %self.id, tool = %name, error = %why, "bad tool call");
                (json!({"error": why}), None)
            }
            Ok(request) => self.run_tool(request).await,
        };
        info!(call = %self.id, tool = %name, "tool call");
        self.record_fact(json!({
            "type": "tool_call", "name": name, "arguments": arguments, "result": output,
        }));
        self.tell_agent(AgentInput::ToolResult {
            call_id,
            output: output.to_string(),
        });
        end
    }

    async fn run_tool(&mut self, request: ToolRequest) -> (serde_json::Value, Option<End>) {
        match request {
            ToolRequest::LookupKnowledge { query } => {
                let hits = match (&self.settings.db, &self.state.tenancy) {
                    // A database tenant's knowledge base, in PostgreSQL.
                    (Some(call), Some(tenancy)) => {
                        match tenancy.search_knowledge(call, &query).await {
                            Ok(hits) => hits,
                            Err(e) => {
                                warn!(call = %self.id, error = %e, "knowledge search failed");
                                return (
                                    json!({"error": "the knowledge base is unavailable now; do not make up an answer"}),
                                    None,
                                );
                            }
                        }
                    }
                    _ => knowledge::search(&self.settings.agent.knowledge, &query),
                };
                if hits.is_empty() {
                    (
                        json!({"results": [], "note": "nothing found; do not make up an answer"}),
                        None,
                    )
                } else {
                    (json!({ "results": hits }), None)
                }
            }
            ToolRequest::TakeMessage {
                name,
                phone,
                message,
            } => {
                // Where no number was given, the caller's own is the best guess.
                let phone = if phone.is_empty() {
                    self.info.caller.clone().unwrap_or_default()
                } else {
                    phone
                };
                self.record_fact(
                    json!({"type": "message", "name": name, "phone": phone, "message": message}),
                );
                self.messages += 1;
                (
                    json!({"ok": true, "note": "message saved for the team"}),
                    None,
                )
            }
            ToolRequest::TransferToHuman { reason } => {
                if self.settings.agent.handoff.target.is_empty() || self.state.esl.is_none() {
                    return (
                        json!({"error": "no human attendant is available now; offer to take a message"}),
                        None,
                    );
                }
                let reason = if reason.is_empty() {
                    "agent_request".to_string()
                } else {
                    format!("agent_request: {reason}")
                };
                let end = self.hand_over(&reason, true).await;
                (
                    json!({"ok": true, "note": "transferring now; say nothing more"}),
                    end,
                )
            }
            ToolRequest::EndCall { reason } => {
                let reason = if reason.is_empty() {
                    "agent_ended".to_string()
                } else {
                    format!("agent_ended: {reason}")
                };
                let end = self.hang_up_after_playout(&reason, true);
                (
                    json!({"ok": true, "note": "the call ends after your last words"}),
                    end,
                )
            }
        }
    }
}
