//! One live recognition as a state machine over stream time (audio received, in 20 ms
//! windows), without sockets, so its timing rules are tested directly:
//!
//! - The first loud window starts an utterance: `SpeechStarted` (with `vad_events`).
//! - While it goes on: an interim every `interim_every_ms` of speech, one more scripted
//!   word each time (with `interim_results`).
//! - After `endpointing` ms of quiet: the final (`is_final`, `speech_final: true`) with
//!   the whole scripted utterance. With `endpointing=false`, a final after 300 ms of quiet
//!   without `speech_final`.
//! - After `utterance_end_ms` of quiet from the last word: `UtteranceEnd` (sent after a
//!   `speech_final` too, like the real service).
//! - `Finalize`: the utterance in progress is settled now (`from_finalize: true`); with
//!   nothing in progress an empty `from_finalize` result, or, with
//!   `repeat_final_on_finalize`, the last final again (the race pipecat guards against).
//! - `CloseStream`: the utterance in progress is settled, then `Metadata`.
//!
//! Utterances take their text from the script in turn, cycling.

use std::sync::Arc;

use super::messages::{self, Finality, Span};
use super::params::ListenParams;
use crate::fake_common::energy_vad::{Windows, WINDOW_MS};

/// Quiet that settles an utterance when endpointing is off.
const SETTLE_WITHOUT_ENDPOINTING_MS: u64 = 300;

/// A message to send, and what it is (for the stats and the faults).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outgoing {
    pub json: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Interim,
    Final {
        speech_final: bool,
        transcript: String,
        span: Span,
    },
    SpeechStarted,
    UtteranceEnd,
    Metadata,
}

impl Kind {
    pub fn is_result(&self) -> bool {
        matches!(self, Kind::Interim | Kind::Final { .. })
    }
}

/// How a stream listens, beyond its query.
#[derive(Debug, Clone)]
pub(crate) struct Tuning {
    pub interim_every_ms: u64,
    pub vad_threshold_rms: f64,
    pub repeat_final_on_finalize: bool,
    /// Quiet that settles an utterance, overriding the query (pre-recorded splitting).
    pub settle_ms: Option<u64>,
}

struct Speech {
    start_ms: u64,
    last_loud_end_ms: u64,
    interims: u64,
}

pub(crate) struct ListenStream {
    params: ListenParams,
    tuning: Tuning,
    script: Arc<Vec<String>>,
    next_utterance: usize,
    windows: Windows,
    /// Stream time: end of the last whole window.
    now_ms: u64,
    speech: Option<Speech>,
    /// End of the last word while an `UtteranceEnd` is due.
    utterance_end_from: Option<u64>,
    last_final: Option<(String, Span)>,
    request_id: String,
    pub out: Vec<Outgoing>,
}

impl ListenStream {
    /// `script` must not be empty.
    pub fn new(params: ListenParams, tuning: Tuning, script: Arc<Vec<String>>, rate: u32) -> Self {
        let windows = Windows::new(rate, tuning.vad_threshold_rms);
        Self {
            params,
            tuning,
            script,
            next_utterance: 0,
            windows,
            now_ms: 0,
            speech: None,
            utterance_end_from: None,
            last_final: None,
            request_id: uuid::Uuid::new_v4().to_string(),
            out: Vec::new(),
        }
    }

    #[cfg(test)]
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    pub fn push(&mut self, samples: &[i16]) {
        for &s in samples {
            if let Some(window) = self.windows.push(s) {
                let loud = window.loud;
                self.on_window(loud);
            }
        }
    }

    fn utterance_text(&self) -> String {
        let text = &self.script[self.next_utterance % self.script.len()];
        messages::shown(text, self.params.formatted)
    }

    fn settle_ms(&self) -> u64 {
        self.tuning.settle_ms.unwrap_or(
            self.params
                .endpointing_ms
                .unwrap_or(SETTLE_WITHOUT_ENDPOINTING_MS),
        )
    }

    fn on_window(&mut self, loud: bool) {
        let start = self.now_ms;
        self.now_ms += WINDOW_MS;
        let end = self.now_ms;
        if loud {
            self.utterance_end_from = None;
            match &mut self.speech {
                Some(s) => s.last_loud_end_ms = end,
                None => {
                    self.speech = Some(Speech {
                        start_ms: start,
                        last_loud_end_ms: end,
                        interims: 0,
                    });
                    if self.params.vad_events {
                        self.send(messages::speech_started(start), Kind::SpeechStarted);
                    }
                }
            }
            self.maybe_interim(end);
            return;
        }
        if let Some(s) = &self.speech {
            if end - s.last_loud_end_ms >= self.settle_ms() {
                let speech_final = self.params.endpointing_ms.is_some();
                self.settle(speech_final, false);
            }
        } else if let (Some(from), Some(gap)) =
            (self.utterance_end_from, self.params.utterance_end_ms)
        {
            if end - from >= gap {
                self.utterance_end_from = None;
                self.send(messages::utterance_end(from), Kind::UtteranceEnd);
            }
        }
    }

    fn maybe_interim(&mut self, now: u64) {
        let every = self.tuning.interim_every_ms.max(WINDOW_MS);
        let text = self.utterance_text();
        let Some(s) = &mut self.speech else {
            return;
        };
        if !self.params.interim_results || now - s.start_ms < (s.interims + 1) * every {
            return;
        }
        s.interims += 1;
        let span = Span {
            start_ms: s.start_ms,
            end_ms: now,
        };
        let partial = messages::first_words(&text, s.interims as usize);
        let json = messages::results(&partial, span, Finality::INTERIM, &self.request_id);
        self.send(json, Kind::Interim);
    }

    /// Ends the utterance in progress with its final.
    fn settle(&mut self, speech_final: bool, from_finalize: bool) {
        let text = self.utterance_text();
        let Some(s) = self.speech.take() else {
            return;
        };
        let span = Span {
            start_ms: s.start_ms,
            end_ms: s.last_loud_end_ms,
        };
        self.next_utterance += 1;
        if self.params.utterance_end_ms.is_some() {
            self.utterance_end_from = Some(span.end_ms);
        }
        self.send_final(&text, span, speech_final, from_finalize);
        self.last_final = Some((text, span));
    }

    fn send_final(&mut self, text: &str, span: Span, speech_final: bool, from_finalize: bool) {
        let kind = Finality {
            is_final: true,
            speech_final,
            from_finalize,
        };
        let json = messages::results(text, span, kind, &self.request_id);
        let kind = Kind::Final {
            speech_final,
            transcript: text.to_string(),
            span,
        };
        self.send(json, kind);
    }

    pub fn finalize(&mut self) {
        if self.speech.is_some() {
            return self.settle(false, true);
        }
        if self.tuning.repeat_final_on_finalize {
            if let Some((text, span)) = self.last_final.take() {
                return self.send_final(&text, span, false, true);
            }
        }
        let now = Span {
            start_ms: self.now_ms,
            end_ms: self.now_ms,
        };
        self.send_final("", now, false, true);
    }

    pub fn close_stream(&mut self) {
        self.settle(false, false);
        let json = messages::metadata(&self.request_id, self.now_ms);
        self.send(json, Kind::Metadata);
    }

    fn send(&mut self, json: String, kind: Kind) {
        self.out.push(Outgoing { json, kind });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value;

    use super::*;
    use crate::fake_common::test_support::square_wave;
    use crate::fake_deepgram::params;

    fn stream(query: &str, repeat: bool) -> ListenStream {
        let q: BTreeMap<String, String> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let tuning = Tuning {
            interim_every_ms: 200,
            vad_threshold_rms: 500.0,
            repeat_final_on_finalize: repeat,
            settle_ms: None,
        };
        let script = Arc::new(vec!["Bom dia, tudo bem?".to_string(), "Sim.".to_string()]);
        ListenStream::new(params::live(&q).unwrap(), tuning, script, 16_000)
    }

    const FULL: &str = "language=pt-BR&encoding=linear16&sample_rate=16000&interim_results=true\
                        &endpointing=300&utterance_end_ms=1000&vad_events=true&smart_format=true";

    fn tone(ms: usize, amplitude: i16) -> Vec<i16> {
        square_wave(16_000, ms, amplitude)
    }

    fn kinds(s: &mut ListenStream) -> Vec<String> {
        std::mem::take(&mut s.out)
            .into_iter()
            .map(|o| {
                let v: Value = serde_json::from_str(&o.json).unwrap();
                let text = v["channel"]["alternatives"][0]["transcript"]
                    .as_str()
                    .unwrap_or("");
                match o.kind {
                    Kind::Interim => format!("interim:{text}"),
                    Kind::Final { speech_final, .. } => format!(
                        "final:{text}:{speech_final}:{}",
                        v["from_finalize"].as_bool().unwrap()
                    ),
                    other => format!("{other:?}"),
                }
            })
            .collect()
    }

    #[test]
    fn a_turn_gives_speech_started_interims_final_and_utterance_end() {
        let mut s = stream(FULL, false);
        s.push(&tone(200, 0));
        assert!(s.out.is_empty());
        s.push(&tone(500, 3000));
        assert_eq!(
            kinds(&mut s),
            ["SpeechStarted", "interim:Bom", "interim:Bom dia,"]
        );
        s.push(&tone(280, 0));
        assert!(s.out.is_empty(), "not yet 300 ms of quiet");
        s.push(&tone(20, 0));
        assert_eq!(kinds(&mut s), ["final:Bom dia, tudo bem?:true:false"]);
        s.push(&tone(680, 0));
        assert!(s.out.is_empty());
        s.push(&tone(20, 0));
        assert_eq!(kinds(&mut s), ["UtteranceEnd"]);
        s.push(&tone(100, 3000));
        s.close_stream();
        assert_eq!(
            kinds(&mut s),
            ["SpeechStarted", "final:Sim.:false:false", "Metadata"]
        );
    }

    #[test]
    fn finalize_settles_now_or_answers_empty_or_repeats() {
        let mut s = stream(FULL, false);
        s.push(&tone(100, 3000));
        s.out.clear();
        s.finalize();
        assert_eq!(kinds(&mut s), ["final:Bom dia, tudo bem?:false:true"]);
        s.finalize();
        assert_eq!(kinds(&mut s), ["final::false:true"]);
        let mut s = stream(FULL, true);
        s.push(&tone(100, 3000));
        s.push(&tone(300, 0));
        s.out.clear();
        s.finalize();
        assert_eq!(
            kinds(&mut s),
            ["final:Bom dia, tudo bem?:false:true"],
            "the repeat"
        );
        s.finalize();
        assert_eq!(kinds(&mut s), ["final::false:true"], "only once");
    }

    #[test]
    fn without_endpointing_finals_are_not_speech_final_and_text_is_plain() {
        let q = "language=pt-BR&encoding=linear16&sample_rate=16000&interim_results=true\
                 &endpointing=false&utterance_end_ms=1000";
        let mut s = stream(q, false);
        s.push(&tone(100, 3000));
        s.push(&tone(1300, 0));
        assert_eq!(
            kinds(&mut s),
            ["final:bom dia tudo bem:false:false", "UtteranceEnd"]
        );
        assert_eq!(s.now_ms(), 1400);
    }
}
