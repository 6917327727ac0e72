//! When caller speech during the agent's answer is a real interruption.
//!
//! Peers interrupt on the first VAD start (pipecat) or after 0.5 s (LiveKit); their users
//! complain of the agent stopping for a cough, for its own echo, or for "aham". Three rules:
//! speech must be held `min_speech_ms`; speech in the first `echo_guard_ms` of an answer is
//! not counted (line echo of the answer's start); a lone backchannel word does not
//! derail the answer (cascaded agents, which know the words: the answer resumes where
//! it was cut, see `voice_core::agent::cascaded`).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use voice_core::text::only_words_from;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BargeInSettings {
    /// Caller speech must last this long, from its onset, to interrupt the agent.
    pub min_speech_ms: u32,
    /// Speech in the first `echo_guard_ms` after an answer starts playing is not counted.
    pub echo_guard_ms: u32,
    /// Words that acknowledge without taking the floor (compared without accents or case).
    pub backchannels: Vec<String>,
    /// Let a lone backchannel interrupt anyway.
    pub interrupt_on_backchannel: bool,
}

impl Default for BargeInSettings {
    fn default() -> Self {
        Self {
            min_speech_ms: 400,
            echo_guard_ms: 300,
            backchannels: [
                "aham", "uhum", "hum", "hm", "uhm", "sim", "ok", "okay", "ta", "certo", "isso",
                "entendi", "e", "ah", "oh", "mhm", "uh-huh", "yeah", "yes", "right",
            ]
            .map(String::from)
            .to_vec(),
            interrupt_on_backchannel: false,
        }
    }
}

impl BargeInSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.min_speech_ms > 5000 || self.echo_guard_ms > 5000 {
            return Err(format!(
                "barge_in.min_speech_ms ({}) and echo_guard_ms ({}) must be at most 5000",
                self.min_speech_ms, self.echo_guard_ms
            ));
        }
        Ok(())
    }

    /// Whether speech that began at `onset` and is still going at `now` interrupts an
    /// answer whose playout began at `playout_started`.
    pub fn speech_interrupts(
        &self,
        onset: Instant,
        now: Instant,
        playout_started: Instant,
    ) -> bool {
        let guard_ends = playout_started + Duration::from_millis(self.echo_guard_ms.into());
        let counted_from = onset.max(guard_ends);
        now.saturating_duration_since(counted_from)
            >= Duration::from_millis(self.min_speech_ms.into())
    }

    /// Whether what the caller said (a transcript of their overlapping speech) interrupts.
    pub fn words_interrupt(&self, text: &str) -> bool {
        self.interrupt_on_backchannel || !self.is_backchannel(text)
    }

    /// Only backchannel words, at least one.
    pub fn is_backchannel(&self, text: &str) -> bool {
        only_words_from(text, &self.backchannels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn short_speech_does_not_interrupt() {
        let rules = BargeInSettings::default();
        let playout = Instant::now();
        let onset = playout + ms(2000);
        assert!(!rules.speech_interrupts(onset, onset + ms(250), playout));
        assert!(rules.speech_interrupts(onset, onset + ms(400), playout));
        // Without the rule the cough interrupts.
        let no_hold = BargeInSettings {
            min_speech_ms: 0,
            ..BargeInSettings::default()
        };
        assert!(no_hold.speech_interrupts(onset, onset + ms(250), playout));
    }

    #[test]
    fn speech_in_the_echo_guard_is_not_counted() {
        let rules = BargeInSettings::default();
        let playout = Instant::now();
        // Echo of the answer's first syllables: starts 50 ms in, lasts 500 ms.
        let onset = playout + ms(50);
        assert!(!rules.speech_interrupts(onset, onset + ms(500), playout));
        // Held on past the guard for min_speech_ms, it is a real interruption.
        assert!(rules.speech_interrupts(onset, playout + ms(300 + 400), playout));
        let no_guard = BargeInSettings {
            echo_guard_ms: 0,
            ..BargeInSettings::default()
        };
        assert!(no_guard.speech_interrupts(onset, onset + ms(500), playout));
    }

    #[test]
    fn backchannels_do_not_interrupt_unless_asked() {
        let rules = BargeInSettings::default();
        for text in ["Aham.", "uhum", "Tá, certo", "sim sim", "OK!", "é"] {
            assert!(!rules.words_interrupt(text), "{text}");
        }
        for text in [
            "Não, espera",
            "sim, mas eu queria outra coisa",
            "quero falar com alguém",
            "",
        ] {
            assert!(rules.words_interrupt(text), "{text}");
        }
        let eager = BargeInSettings {
            interrupt_on_backchannel: true,
            ..BargeInSettings::default()
        };
        assert!(eager.words_interrupt("aham"));
    }

    #[test]
    fn settings_reject_unknown_keys_and_absurd_values() {
        assert!(toml::from_str::<BargeInSettings>("min_speech = 1").is_err());
        let s: BargeInSettings = toml::from_str("min_speech_ms = 9000").unwrap();
        assert!(s.validate().is_err());
    }
}
