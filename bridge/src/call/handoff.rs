//! Ending the conversation with the agent: handing the call to a human (`uuid_transfer`
//! into the tenant's dialplan) or hanging up (`uuid_kill`), each after the last words have
//! played. Hand-over rules (seed 001): the `transfer_to_human` tool, a configured caller
//! intent, repeated misunderstanding, a DTMF digit, and the last resort of failover.

use std::time::{Duration, Instant};

use serde_json::json;
use tracing::{info, warn};
use voice_core::agent::Role;

use super::{Agent, Call, End};
use crate::prompts::PromptKind;
use voice_core::text::fold;

/// While an action waits for the agent's last words, how often to look.
const POLL: Duration = Duration::from_millis(100);
/// After a tool asked for the action, how long to wait for last words that never start.
const WORDS_GRACE: Duration = Duration::from_millis(2000);
/// After the command went to FreeSWITCH, how long to wait for it to end the stream.
const COMMAND_GRACE: Duration = Duration::from_millis(3000);

/// The reason of a hand-over or hang-up that failover's last resort asked for.
pub(super) const PROVIDER_FAILURE: &str = "provider_failure";
/// The reason of a transfer or hang-up of a call over its tenant's cap.
pub(super) const OVER_CAP: &str = "over_capacity";

/// What the call does once the caller has heard the last words.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Action {
    Transfer { target: String, context: String },
    Hangup,
}

pub(super) struct Pending {
    pub action: Action,
    pub reason: String,
    requested: Instant,
    /// Next look at whether the last words have played (a fixed instant: the call wakes
    /// for other reasons every 20 ms, so "now + POLL" would never come).
    next_check: Instant,
    /// The agent asked (a tool call): its last words may still come, after the result.
    by_agent: bool,
    /// Agent audio came after the request.
    words_came: bool,
    /// When the command went to FreeSWITCH; the call then waits for the stream to end.
    sent: Option<Instant>,
}

impl Pending {
    fn new(action: Action, reason: &str, by_agent: bool) -> Self {
        let now = Instant::now();
        Self {
            action,
            reason: reason.to_string(),
            requested: now,
            next_check: now + POLL,
            by_agent,
            words_came: false,
            sent: None,
        }
    }

    /// Whether agent audio of a new answer may still play.
    pub fn takes_words(&mut self) -> bool {
        let open = self.by_agent && self.sent.is_none();
        self.words_came |= open;
        open
    }
}

impl Call {
    /// Hands the call to a human: the hand-over prompt (unless the agent asked, and
    /// announces it itself), then the transfer. When there is nowhere to transfer to, the
    /// caller hears the apology and the call hangs up.
    pub(super) async fn hand_over(&mut self, reason: &str, by_agent: bool) -> Option<End> {
        let Some((target, context)) = self.transfer_target() else {
            warn!(call = %self.id, reason, "hand-over wanted but no handoff.target or ESL: apologising instead");
            self.clear_playout(Instant::now()).await;
            self.play_prompt(PromptKind::Apology);
            return self.hang_up_after_playout(reason, false);
        };
        if self.pending.is_some() {
            return None;
        }
        if !by_agent {
            // The agent is cut short and the bridge says the hand-over line itself.
            self.clear_playout(Instant::now()).await;
            self.agent = Agent::Gone;
            self.play_prompt(PromptKind::Handoff);
        }
        info!(call = %self.id, tenant = %self.tenant, reason, target = %target, event = "handoff", "handing the call to a human");
        self.state.metrics.handoffs.inc();
        self.emit(
            voice_core::tenancy::events::kinds::HANDOFF,
            json!({"reason": reason, "target": target}),
        );
        self.record_fact(json!({
            "type": "handoff", "reason": reason, "target": target,
            "transcript_lines": self.transcript.len(),
        }));
        self.pending = Some(Pending::new(
            Action::Transfer { target, context },
            reason,
            by_agent,
        ));
        None
    }

    /// A call over its tenant's cap: straight to the tenant's busy extension when there is
    /// one (and ESL to transfer with), else the busy prompt and the hang-up. Never a silent
    /// drop.
    pub(super) async fn turn_away_busy(&mut self) {
        let target = self.settings.busy_transfer.clone();
        let context = self.tenant.clone();
        let context_ok = !context.is_empty()
            && context
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        let transfer = !target.is_empty() && self.state.esl.is_some() && context_ok;
        self.emit(
            "call.over_cap",
            json!({"action": if transfer { "transfer" } else { "busy_prompt" }, "target": target}),
        );
        if transfer {
            info!(call = %self.id, tenant = %self.tenant, target = %target, "tenant at its call cap: transferring to its busy extension");
            self.record_fact(json!({"type": "over_cap", "transfer": target}));
            self.pending = Some(Pending::new(
                Action::Transfer { target, context },
                OVER_CAP,
                false,
            ));
            return;
        }
        if !target.is_empty() {
            warn!(call = %self.id, tenant = %self.tenant, "busy_transfer needs ESL ([esl] enabled) and a dialplan context: playing the busy prompt instead");
        }
        info!(call = %self.id, tenant = %self.tenant, "tenant at its call cap: busy prompt, then hang-up");
        self.record_fact(json!({"type": "over_cap"}));
        self.play_prompt(PromptKind::Busy);
        self.send_due_playout().await;
        self.hang_up_after_playout(OVER_CAP, false);
    }

    /// Hangs up once what is queued (and, when the agent asked, its last words) has played.
    pub(super) fn hang_up_after_playout(&mut self, reason: &str, by_agent: bool) -> Option<End> {
        if self.pending.is_some() {
            return None;
        }
        info!(call = %self.id, reason, "hanging up after the last words");
        self.record_fact(json!({"type": "hangup", "reason": reason}));
        self.pending = Some(Pending::new(Action::Hangup, reason, by_agent));
        None
    }

    /// Where a hand-over goes: (extension or queue, dialplan context).
    fn transfer_target(&self) -> Option<(String, String)> {
        let handoff = &self.settings.agent.handoff;
        if handoff.target.is_empty() || self.state.esl.is_none() {
            return None;
        }
        let context = if handoff.context.is_empty() {
            self.tenant.clone()
        } else {
            handoff.context.clone()
        };
        // The context goes into an ESL command line.
        if context.is_empty()
            || !context
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            warn!(call = %self.id, context = %context, "tenant is not a usable dialplan context: set handoff.context");
            return None;
        }
        Some((handoff.target.clone(), context))
    }

    pub(super) fn pending_due(&self) -> Option<Instant> {
        let pending = self.pending.as_ref()?;
        if let Some(sent) = pending.sent {
            return Some(sent + COMMAND_GRACE);
        }
        let limit =
            pending.requested + Duration::from_millis(self.settings.agent.handoff.max_wait_ms);
        Some(pending.next_check.min(limit))
    }

    /// Runs the pending action once the last words have played (or waited long enough).
    pub(super) fn on_pending_due(&mut self) -> Option<End> {
        let now = Instant::now();
        let max_wait = Duration::from_millis(self.settings.agent.handoff.max_wait_ms);
        let agent_up = matches!(self.agent, Agent::Ready(_));
        let playing = self.queue.is_playing(now);
        let answer_complete = self.answer_complete;
        let pending = self.pending.as_mut()?;
        if pending.sent.is_some() {
            // FreeSWITCH did not end the stream after the command: end it here.
            let reason = pending.reason.clone();
            return Some(match pending.action {
                Action::Transfer { .. } => End::Transferred(reason),
                Action::Hangup => End::HungUp(reason),
            });
        }
        let words_pending = pending.by_agent
            && agent_up
            && if pending.words_came {
                !answer_complete
            } else {
                now < pending.requested + WORDS_GRACE
            };
        if (words_pending || playing) && now < pending.requested + max_wait {
            pending.next_check = now + POLL;
            return None;
        }
        let (action, reason) = (pending.action.clone(), pending.reason.clone());
        if self.state.esl.is_none() {
            // Without ESL the call can only end its stream; "agent unavailable" (1011)
            // tells a dialplan to fall back (e.g. to the turn-based IVR).
            warn!(call = %self.id, %reason, "hang-up needs ESL ([esl] enabled): closing the stream instead");
            return Some(if reason == PROVIDER_FAILURE {
                End::AgentFailed("no provider left".into())
            } else {
                End::HungUp(reason)
            });
        }
        pending.sent = Some(now);
        // The stream ends when FreeSWITCH moves the channel on; closing it first could
        // race the command (the module would end the media before the transfer).
        self.esl_command(match action {
            Action::Transfer { target, context } => {
                format!("uuid_transfer {} {} XML {}", self.id, target, context)
            }
            Action::Hangup => format!("uuid_kill {} NORMAL_CLEARING", self.id),
        });
        self.agent = Agent::Gone;
        None
    }

    /// Hand-over rules that listen to the conversation: a caller intent, or the agent
    /// failing to understand several answers in a row.
    pub(super) async fn check_handoff_rules(&mut self, role: Role, text: &str) -> Option<End> {
        let handoff = &self.settings.agent.handoff;
        if handoff.target.is_empty() || self.pending.is_some() {
            return None;
        }
        let folded = fold(text);
        let says = |phrases: &[String]| {
            phrases
                .iter()
                .any(|p| !p.is_empty() && folded.contains(&fold(p)))
        };
        match role {
            Role::Caller if says(&handoff.intent_phrases) => {
                self.hand_over("caller_intent", false).await
            }
            Role::Agent if handoff.max_misunderstandings > 0 => {
                if says(&handoff.misunderstanding_phrases) {
                    self.misunderstandings += 1;
                } else {
                    self.misunderstandings = 0;
                }
                if self.misunderstandings >= handoff.max_misunderstandings {
                    self.hand_over("misunderstanding", false).await
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// A digit the caller pressed (ESL event or a fork's text frame).
    pub(super) async fn on_dtmf(&mut self, digit: char) -> Option<End> {
        self.record_fact(json!({"type": "dtmf", "digit": digit.to_string()}));
        let handoff = &self.settings.agent.handoff;
        if !handoff.dtmf.is_empty() && handoff.dtmf.starts_with(digit) && !handoff.target.is_empty()
        {
            return self.hand_over("dtmf", false).await;
        }
        self.tell_agent(voice_core::agent::AgentInput::Dtmf(digit));
        None
    }
}
