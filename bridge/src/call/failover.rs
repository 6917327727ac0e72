//! When the provider refuses, times out or drops: reconnect once with the conversation so
//! far, then the tenant's other accounts of that provider, then the agent's fallback
//! providers in order (each with its accounts), then the last resort (hand-over or
//! apology). While no provider is up, the hold prompt fills any silence longer than
//! `hold_after_ms`, so the caller never hears more than ~1 s of dead air from a fault.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::json;
use tracing::{info, warn};
use voice_core::agent::{AgentError, CallInfo};

use super::handoff::PROVIDER_FAILURE;
use super::{Agent, Call, End};
use crate::agents;
use crate::config::{LastResort, ProviderKind, Providers};
use crate::prompts::PromptKind;

/// At most this many hold prompts per outage; after that, silence is better than a loop.
const MAX_HOLDS: u32 = 4;

pub(super) struct Failover {
    /// Providers not tried yet, in order, each with its account.
    remaining: VecDeque<(ProviderKind, Account)>,
    /// The provider the call is talking to (or connecting to).
    pub current: ProviderKind,
    /// Whose account of it.
    pub account: Account,
    /// When the current outage began; `None` while a provider is up.
    outage_since: Option<Instant>,
    /// When the caller stops hearing what is queued (the start of dead air).
    quiet_from: Instant,
    holds: u32,
    pub switches: u32,
}

/// Which account of a provider: the first (the tenant's first by priority, or the
/// process's), or standby layer `i` of the call's providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Account {
    First,
    Standby(usize),
}

impl Account {
    /// The settings this account connects with.
    pub fn of(self, providers: &Providers) -> &Providers {
        match self {
            Account::First => providers,
            Account::Standby(i) => providers
                .standby
                .get(i)
                .map_or(providers, |layer| &layer.settings),
        }
    }
}

impl Failover {
    /// `chain`: the agent's providers in order (its own twice: one reconnect). After the
    /// last of a run of one kind come that kind's standby accounts in `providers`.
    pub fn new(chain: Vec<ProviderKind>, providers: &Providers) -> Self {
        let mut remaining = VecDeque::new();
        for (i, &kind) in chain.iter().enumerate() {
            remaining.push_back((kind, Account::First));
            if chain.get(i + 1) == Some(&kind) {
                continue;
            }
            for (layer, standby) in providers.standby.iter().enumerate() {
                if standby.realtime.iter().any(|k| k == kind.name()) {
                    remaining.push_back((kind, Account::Standby(layer)));
                }
            }
        }
        let (current, account) = remaining
            .pop_front()
            .unwrap_or((ProviderKind::OpenaiRealtime, Account::First));
        Self {
            remaining,
            current,
            account,
            outage_since: None,
            quiet_from: Instant::now(),
            holds: 0,
            switches: 0,
        }
    }

    pub fn in_outage(&self) -> bool {
        self.outage_since.is_some()
    }

    /// A provider is up again.
    pub fn recovered(&mut self) -> Option<Duration> {
        self.holds = 0;
        self.outage_since.take().map(|t| t.elapsed())
    }
}

impl Call {
    /// The provider failed (refused, timed out, dropped, or said its session is over).
    pub(super) async fn agent_failed(&mut self, why: String) -> Option<End> {
        let now = Instant::now();
        self.agent = Agent::Gone;
        self.state.metrics.provider_errors.inc();
        let failed = self.failover.current;
        if self.failover.outage_since.is_none() {
            self.failover.outage_since = Some(now);
            self.failover.quiet_from = self.playout_end(now);
        }
        self.record_fact(
            json!({"type": "provider_failed", "provider": failed.name(), "reason": why}),
        );
        if self.pending.is_some() {
            // Already handing over or hanging up: nothing more to say to a provider.
            return None;
        }
        let Some((next, account)) = self.failover.remaining.pop_front() else {
            warn!(call = %self.id, provider = failed.name(), reason = %why, "no provider left: last resort");
            return self.last_resort().await;
        };
        warn!(call = %self.id, failed = failed.name(), next = next.name(), account = ?account, reason = %why, "provider failed: switching");
        self.state.metrics.provider_failovers.inc();
        self.failover.current = next;
        self.failover.account = account;
        self.failover.switches += 1;
        self.connect_agent(next, self.transcript.clone());
        None
    }

    /// Starts connecting `kind` (on the failover's current account) for this call, giving it
    /// `history` as context.
    pub(super) fn connect_agent(
        &mut self,
        kind: ProviderKind,
        history: Vec<(voice_core::agent::Role, String)>,
    ) {
        let (providers, stages) = self.state.providers_for(&self.settings);
        let agent = agents::build(
            self.failover.account.of(providers),
            stages,
            &self.settings.agent,
            kind,
            history.is_empty(),
        );
        let info = CallInfo {
            history,
            ..self.info.clone()
        };
        let first = self.failover.switches == 0;
        let connecting = agent.connect(info);
        let budget = Duration::from_millis(self.settings.agent.failover.connect_timeout_ms);
        let future = if first {
            connecting
        } else {
            // A replacement must be up quickly or give way to the next one.
            Box::pin(async move {
                tokio::time::timeout(budget, connecting)
                    .await
                    .unwrap_or(Err(AgentError::Timeout))
            })
        };
        self.agent = Agent::Connecting(future, Instant::now());
    }

    /// Every provider failed: hand over to a human, or apologise and hang up.
    async fn last_resort(&mut self) -> Option<End> {
        match self.settings.agent.failover.last_resort {
            LastResort::Transfer => self.hand_over(PROVIDER_FAILURE, false).await,
            LastResort::Apology => {
                self.clear_playout(Instant::now()).await;
                self.play_prompt(PromptKind::Apology);
                self.hang_up_after_playout(PROVIDER_FAILURE, false)
            }
        }
    }

    /// When the hold prompt is due: during an outage, `hold_after_ms` after the caller
    /// last heard something.
    pub(super) fn hold_due(&self) -> Option<Instant> {
        self.failover.outage_since?;
        if self.failover.holds >= MAX_HOLDS || self.pending.is_some() {
            return None;
        }
        let hold_after = Duration::from_millis(self.settings.agent.failover.hold_after_ms);
        Some(self.failover.quiet_from + hold_after)
    }

    pub(super) async fn on_hold_due(&mut self) {
        let now = Instant::now();
        if !self.failover.in_outage() {
            return;
        }
        if !self.queue.is_playing(now) {
            self.failover.holds += 1;
            info!(call = %self.id, "provider still down: hold prompt");
            if !self.play_prompt(PromptKind::Hold) {
                // No hold prompt configured: stop asking.
                self.failover.holds = MAX_HOLDS;
            }
            self.send_due_playout().await;
        }
        self.failover.quiet_from = self.playout_end(now);
    }

    /// When what is queued and buffered has played.
    fn playout_end(&self, now: Instant) -> Instant {
        now + Duration::from_millis(self.queue.buffered_ms(now) + self.queue.queued_ms())
    }
}

#[cfg(test)]
mod tests {
    use voice_core::providers::catalog::Standby;

    use super::*;

    fn layer(realtime: &[&str]) -> Standby {
        Standby {
            settings: Providers::default(),
            stt: Vec::new(),
            llm: Vec::new(),
            tts: Vec::new(),
            realtime: realtime.iter().map(|k| k.to_string()).collect(),
        }
    }

    #[test]
    fn a_kinds_standby_accounts_follow_its_reconnect_before_the_next_kind() {
        use Account::{First, Standby as S};
        use ProviderKind::{GeminiLive as G, OpenaiRealtime as O};
        let providers = Providers {
            standby: vec![
                layer(&["openai_realtime", "gemini_live"]),
                layer(&["openai_realtime"]),
            ],
            ..Providers::default()
        };
        let f = Failover::new(vec![O, O, G], &providers);
        assert_eq!((f.current, f.account), (O, First));
        let rest: Vec<_> = f.remaining.iter().copied().collect();
        assert_eq!(
            rest,
            [(O, First), (O, S(0)), (O, S(1)), (G, First), (G, S(0))]
        );
        // Without standby accounts the chain is as configured.
        let f = Failover::new(vec![O, O, G], &Providers::default());
        let rest: Vec<_> = f.remaining.iter().copied().collect();
        assert_eq!(rest, [(O, First), (G, First)]);
    }

    #[test]
    fn an_account_connects_with_its_layers_settings() {
        let mut second = layer(&["openai_realtime"]);
        second.settings.openai_realtime.model = "second-model".into();
        let providers = Providers {
            standby: vec![second],
            ..Providers::default()
        };
        assert_eq!(
            Account::Standby(0).of(&providers).openai_realtime.model,
            "second-model"
        );
        assert_eq!(
            Account::First.of(&providers).openai_realtime.model,
            providers.openai_realtime.model
        );
        // A layer that is not there falls back to the first account, never panics.
        assert!(std::ptr::eq(Account::Standby(9).of(&providers), &providers));
    }
}
