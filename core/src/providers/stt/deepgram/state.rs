//! Deepgram results turned into the pipeline's transcript events, without sockets.
//!
//! The rules (providers.md §4.1):
//! - `is_final:false` with text → [`SttEvent::Interim`]; an empty interim is dropped.
//! - `is_final:true` with text → [`SttEvent::Final`], appended by the pipeline;
//!   `speech_final` as Deepgram says, or true when it answers our `Finalize`.
//! - Empty finals are dropped, except as the **end marker** `Final{text:"",
//!   speech_final:true}`, which closes an utterance whose text was already delivered.
//! - **Pending text**: a non-empty final was delivered and no `speech_final:true` went out
//!   since. A `speech_final` with no text, or an `UtteranceEnd`, gives the end marker
//!   only when text is pending; otherwise the utterance was already closed (Deepgram
//!   sends `UtteranceEnd` after `speech_final` too) and nothing is emitted.
//! - **Finalize answers**: the first `from_finalize` result after each `Finalize` we sent
//!   always ends with `speech_final:true` (the pipeline waits for it), even empty.
//! - **Repeats**: a `from_finalize` result whose span ends where text was already settled
//!   repeats a regular final Deepgram sent before our `Finalize` arrived (pipecat drops
//!   it too): its text is not delivered again, only the end marker if one is due.

use super::messages::{self, Results, ServerMessage};
use crate::providers::stt::SttEvent;
use crate::providers::ProviderError;

/// Slack (s) when comparing result spans: Deepgram rounds times to milliseconds.
const SPAN_SLACK: f64 = 0.005;

#[derive(Debug, Default)]
pub struct TranscriptState {
    /// `Finalize` messages sent whose answer has not come yet.
    finalizes_open: u32,
    /// A non-empty final went out since the last `speech_final:true`.
    pending: bool,
    /// End (stream s) of the latest span whose final was delivered.
    settled_until: Option<f64>,
}

/// What one server message means for the stream.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Events(Vec<SttEvent>),
    /// Deepgram reported an error: the stream is over.
    Fatal(ProviderError),
}

impl TranscriptState {
    pub fn finalize_sent(&mut self) {
        self.finalizes_open = self.finalizes_open.saturating_add(1);
    }

    /// The events one text frame brings. An unreadable frame is a non-fatal error.
    pub fn on_text(&mut self, text: &str) -> Outcome {
        let message = match messages::parse(text) {
            Ok(m) => m,
            Err(e) => {
                return Outcome::Events(vec![SttEvent::Error {
                    error: ProviderError::Protocol(e),
                    fatal: false,
                }])
            }
        };
        let events = match message {
            ServerMessage::Results(r) => self.on_results(&r),
            ServerMessage::SpeechStarted {} => vec![SttEvent::SpeechStarted],
            ServerMessage::UtteranceEnd {} => self.end_marker_if_pending(),
            ServerMessage::Metadata {} | ServerMessage::Other => Vec::new(),
            ServerMessage::Error(e) => {
                let message = format!("Deepgram error: {}", e.summary());
                return Outcome::Fatal(ProviderError::Unavailable(message));
            }
        };
        Outcome::Events(events)
    }

    fn on_results(&mut self, r: &Results) -> Vec<SttEvent> {
        let text = r.transcript();
        if !r.is_final {
            if text.is_empty() {
                return Vec::new();
            }
            return vec![SttEvent::Interim { text: text.into() }];
        }
        let answers_finalize = r.from_finalize && self.finalizes_open > 0;
        if answers_finalize {
            self.finalizes_open -= 1;
        }
        let repeat = r.from_finalize
            && self
                .settled_until
                .is_some_and(|until| r.end() <= until + SPAN_SLACK);
        let speech_final = r.speech_final || answers_finalize;
        if !text.is_empty() && !repeat {
            self.settled_until = Some(self.settled_until.map_or(r.end(), |u| u.max(r.end())));
            self.pending = !speech_final;
            return vec![SttEvent::Final {
                text: text.into(),
                speech_final,
            }];
        }
        if answers_finalize {
            self.pending = false;
            return vec![end_marker()];
        }
        if speech_final {
            return self.end_marker_if_pending();
        }
        Vec::new()
    }

    fn end_marker_if_pending(&mut self) -> Vec<SttEvent> {
        if !std::mem::take(&mut self.pending) {
            return Vec::new();
        }
        vec![end_marker()]
    }
}

fn end_marker() -> SttEvent {
    SttEvent::Final {
        text: String::new(),
        speech_final: true,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn results(text: &str, start: f64, is_final: bool, speech_final: bool, fin: bool) -> String {
        json!({"type": "Results", "start": start, "duration": 1.0, "is_final": is_final,
            "speech_final": speech_final, "from_finalize": fin,
            "channel": {"alternatives": [{"transcript": text}]}})
        .to_string()
    }

    fn events(state: &mut TranscriptState, text: &str) -> Vec<SttEvent> {
        match state.on_text(text) {
            Outcome::Events(e) => e,
            Outcome::Fatal(e) => panic!("fatal: {e}"),
        }
    }

    fn fin(text: &str, speech_final: bool) -> SttEvent {
        SttEvent::Final {
            text: text.into(),
            speech_final,
        }
    }

    const UTTERANCE_END: &str = r#"{"type":"UtteranceEnd","last_word_end":2.0}"#;

    #[test]
    fn interim_then_finals_then_speech_final() {
        let mut s = TranscriptState::default();
        assert_eq!(
            events(&mut s, &results("bom", 0.0, false, false, false)),
            [SttEvent::Interim { text: "bom".into() }]
        );
        assert!(events(&mut s, &results("", 0.0, false, false, false)).is_empty());
        assert_eq!(
            events(&mut s, &results("bom dia", 0.0, true, false, false)),
            [fin("bom dia", false)]
        );
        assert_eq!(
            events(&mut s, &results("tudo bem", 1.0, true, true, false)),
            [fin("tudo bem", true)]
        );
        // UtteranceEnd after speech_final: the utterance is already closed.
        assert!(events(&mut s, UTTERANCE_END).is_empty());
        assert!(events(&mut s, &results("", 2.0, true, true, false)).is_empty());
    }

    #[test]
    fn an_empty_speech_final_or_utterance_end_closes_pending_text_once() {
        let mut s = TranscriptState::default();
        events(&mut s, &results("bom dia", 0.0, true, false, false));
        assert_eq!(
            events(&mut s, &results("", 1.0, true, true, false)),
            [fin("", true)]
        );
        events(&mut s, &results("outra coisa", 2.0, true, false, false));
        assert_eq!(events(&mut s, UTTERANCE_END), [fin("", true)]);
        assert!(events(&mut s, UTTERANCE_END).is_empty());
        assert!(events(&mut s, &results("", 3.0, true, false, false)).is_empty());
    }

    #[test]
    fn a_finalize_is_answered_once_even_when_empty_or_repeated() {
        let mut s = TranscriptState::default();
        s.finalize_sent();
        assert_eq!(
            events(&mut s, &results("quero marcar", 0.0, true, false, true)),
            [fin("quero marcar", true)]
        );
        // Nothing left to flush: the answer is the bare end marker.
        s.finalize_sent();
        assert_eq!(
            events(&mut s, &results("", 1.0, true, false, true)),
            [fin("", true)]
        );
        // A regular final raced our Finalize: its from_finalize repeat is not delivered.
        events(&mut s, &results("amanhã", 2.0, true, false, false));
        s.finalize_sent();
        assert_eq!(
            events(&mut s, &results("amanhã", 2.0, true, false, true)),
            [fin("", true)]
        );
        // An unasked-for repeat gives nothing at all.
        assert!(events(&mut s, &results("amanhã", 2.0, true, false, true)).is_empty());
    }

    #[test]
    fn speech_started_errors_and_garbage() {
        let mut s = TranscriptState::default();
        assert_eq!(
            events(&mut s, r#"{"type":"SpeechStarted","timestamp":0.5}"#),
            [SttEvent::SpeechStarted]
        );
        assert!(events(&mut s, r#"{"type":"Metadata","duration":1}"#).is_empty());
        let err = r#"{"type":"Error","variant":"DATA-0000","description":"bad"}"#;
        let Outcome::Fatal(ProviderError::Unavailable(m)) = s.on_text(err) else {
            panic!("an error message ends the stream");
        };
        assert!(m.contains("DATA-0000"), "{m}");
        let bad = events(&mut s, "{oops");
        assert!(matches!(
            bad.as_slice(),
            [SttEvent::Error {
                error: ProviderError::Protocol(_),
                fatal: false
            }]
        ));
    }
}
