//! What one simulated call measured: per-turn latency, playout quality, what the bridge sent,
//! and every error, by kind.

use std::collections::BTreeMap;

use serde::Serialize;

/// Most error details kept per call (counts are always complete).
const MAX_ERROR_DETAILS: usize = 20;
/// Most text messages kept per call.
const MAX_TEXTS: usize = 50;
/// Longest text message kept, in characters.
const MAX_TEXT_CHARS: usize = 300;

/// Kinds of things that went wrong; `error_kinds` in the load summary counts these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The URL fails mod_audio_stream's `validate_ws_uri`: the module would not even try.
    InvalidUrl,
    /// TCP connect or WebSocket upgrade failed.
    ConnectFailed,
    /// Connect + upgrade took longer than the build allows (libwsc: 1 s).
    ConnectTimeout,
    /// The bridge closed the socket (or it dropped) before the call hung up.
    UnexpectedClose,
    /// The bridge closed with a code other than 1000/1001.
    BadCloseCode,
    /// The bridge did not answer our Close in time.
    CloseHandshakeTimeout,
    /// An ixwebsocket build was still disconnected when the call ended.
    ReconnectFailed,
    /// Binary audio with an odd number of bytes.
    OddLengthBinary,
    /// Binary audio the simulated build drops (it registers no binary callback).
    UnexpectedBinary,
    /// Binary audio before the `rawAudio` header.
    BinaryBeforeHeader,
    /// A declared sample rate that is not the call's.
    WrongRate,
    /// Audio that is not valid base64.
    BadBase64,
    /// JSON the module cannot use (missing fields, wrong types); `fatal` ones would crash FS.
    MalformedMessage,
    /// A `streamAudio` chunk longer than 40 ms (voxcom forks stall their event thread).
    ChunkTooLong,
    /// `streamAudio` / `playAudio` in a playout mode that does not play it.
    UnexpectedAudioMessage,
    /// A clear message of another build than the one simulated.
    WrongClear,
    /// Audio received after a clear, for the answer that was cleared.
    AudioAfterClear,
    /// The bridge never answered a caller turn.
    NoAnswer,
    /// `uuid_broadcast` of a file that does not exist or cannot be played.
    BroadcastFailed,
    /// Heartbeat pings that got no pong.
    MissingPong,
    /// The simulator itself failed (e.g. could not write a temp file).
    Internal,
}

impl ErrorKind {
    /// The snake_case name used in JSON.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Errors after which the call cannot go on.
    pub fn ends_call(self) -> bool {
        matches!(
            self,
            ErrorKind::InvalidUrl
                | ErrorKind::ConnectFailed
                | ErrorKind::ConnectTimeout
                | ErrorKind::UnexpectedClose
        )
    }
}

/// One error with its detail and when it happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallError {
    /// What kind of error.
    pub kind: ErrorKind,
    /// Milliseconds since the call started.
    pub at_ms: f64,
    /// Human-readable detail.
    pub detail: String,
}

/// The provider delays taken out of the measured response time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProviderDelays {
    /// The fake's server-VAD silence window (`silence_duration_ms`, 500 unless the bridge
    /// configures another). 0 when the bridge detects turns itself (no server VAD).
    pub vad_silence_ms: u32,
    /// The fake's configured thinking time before it answers.
    pub think_ms: u32,
}

impl Default for ProviderDelays {
    fn default() -> Self {
        ProviderDelays {
            vad_silence_ms: 500,
            think_ms: 0,
        }
    }
}

impl ProviderDelays {
    /// Total subtracted from each response time.
    pub fn total_ms(&self) -> u32 {
        self.vad_silence_ms + self.think_ms
    }
}

/// One caller turn and the answer to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TurnReport {
    /// 0-based turn number.
    pub index: usize,
    /// What the caller said.
    pub caller_text: String,
    /// When the caller started speaking (ms since call start).
    pub speech_start_ms: f64,
    /// When the last sample of the utterance was sent.
    pub speech_end_ms: Option<f64>,
    /// Whether this utterance interrupted the previous answer.
    pub barged_in: bool,
    /// When the first answer audio arrived.
    pub first_audio_ms: Option<f64>,
    /// End of speech → first answer audio.
    pub response_ms: Option<f64>,
    /// `response_ms` minus the provider delays in `CallReport::subtracted` (server VAD
    /// silence window + think time; only the think time when the bridge detects turns).
    pub turn_latency_ms: Option<f64>,
    /// Answer audio received, in ms and bytes.
    pub answer_audio_ms: f64,
    /// Answer audio received, in bytes (as sent on the wire, before decoding).
    pub answer_audio_bytes: u64,
    /// Frames/messages/files that made up the answer.
    pub answer_chunks: u32,
    /// Times the player ran dry inside this answer.
    pub playout_gaps: u32,
    /// Silence those gaps added.
    pub gap_ms: f64,
    /// Arrivals with < 20 ms queued.
    pub late_frames: u32,
    /// Most audio queued ahead of the playhead.
    pub max_lead_ms: f64,
    /// When the next utterance barged in on this answer.
    pub interrupted_at_ms: Option<f64>,
    /// Clear received after that barge-in: ms from barge-in start to the clear.
    pub clear_after_barge_in_ms: Option<f64>,
    /// Clears received during this answer.
    pub clears: u32,
    /// Audio the caller still heard after the clear.
    pub heard_after_clear_ms: f64,
}

/// Everything one call measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallReport {
    /// The call UUID used.
    pub call_uuid: String,
    /// Tenant (domain) used.
    pub domain: String,
    /// The URL the module connected to.
    pub url: String,
    /// Module profile name.
    pub profile: String,
    /// Call rate.
    pub rate: u32,
    /// mono / mixed / stereo.
    pub mix: String,
    /// Playout mode name.
    pub playout: String,
    /// The clear message the simulated build understands.
    pub clear: String,
    /// The socket opened at least once.
    pub connected: bool,
    /// The call ran to its planned end (no fatal error).
    pub completed: bool,
    /// Wall time of the call.
    pub duration_ms: f64,
    /// WebSocket connections opened (more than one: ixwebsocket reconnects).
    pub connections: u32,
    /// Close codes the bridge sent before hangup.
    pub server_close_codes: Vec<u16>,
    /// Caller turns and answers.
    pub turns: Vec<TurnReport>,
    /// Audio received before the first caller turn ended (a greeting).
    pub greeting_audio_ms: f64,
    /// When that audio started (ms since the call started).
    pub greeting_first_audio_ms: Option<f64>,
    /// Binary messages sent to the bridge.
    pub frames_sent: u64,
    /// Bytes of binary audio sent.
    pub bytes_sent: u64,
    /// Frames lost while disconnected.
    pub frames_dropped: u64,
    /// The simulator's own health: most a 20 ms tick ran behind schedule. When this grows
    /// past the bridge's playout lead, gaps may be the simulator's, not the bridge's.
    pub max_tick_lag_ms: f64,
    /// Ticks that ran more than 20 ms behind schedule.
    pub late_ticks: u32,
    /// Heartbeat pings sent and pongs received.
    pub pings_sent: u32,
    /// Pongs received.
    pub pongs_received: u32,
    /// Clear messages / breaks received, by kind (`clearAudio`, `uuid_break all`, …).
    pub clears_by_kind: BTreeMap<String, u32>,
    /// Text messages the build did not consume (mod_audio_stream fires `::json` for them).
    pub text_messages: Vec<String>,
    /// How many such text messages in total.
    pub text_message_count: u32,
    /// ESL events the simulated module fired (`mod_audio_stream::play`, …), by subclass.
    pub events_fired: BTreeMap<String, u32>,
    /// Commands the bridge ran on this channel over ESL (`uuid_broadcast`, …), by name.
    pub esl_commands: BTreeMap<String, u32>,
    /// `uuid_transfer` target, if the bridge transferred the call.
    pub transferred_to: Option<String>,
    /// The bridge hung the call up (`uuid_kill`).
    pub killed_by_bridge: bool,
    /// Delays subtracted from response times.
    pub subtracted: ProviderDelays,
    /// Error counts by kind.
    pub error_counts: BTreeMap<ErrorKind, u32>,
    /// The first errors in detail.
    pub errors: Vec<CallError>,
}

impl CallReport {
    /// Records an error (details capped, counts complete).
    pub fn error(&mut self, kind: ErrorKind, at_ms: f64, detail: impl Into<String>) {
        *self.error_counts.entry(kind).or_insert(0) += 1;
        if self.errors.len() < MAX_ERROR_DETAILS {
            self.errors.push(CallError {
                kind,
                at_ms,
                detail: detail.into(),
            });
        }
    }

    /// Total errors of every kind.
    pub fn error_total(&self) -> u32 {
        self.error_counts.values().sum()
    }

    /// Records a text message the module did not consume.
    pub fn text(&mut self, text: &str) {
        self.text_message_count += 1;
        if self.text_messages.len() < MAX_TEXTS {
            self.text_messages
                .push(text.chars().take(MAX_TEXT_CHARS).collect());
        }
    }

    /// Takes `delays` instead out of every turn's response time (the load tool learns only
    /// after the run whether the provider's VAD or the bridge decided the turns).
    pub fn resubtract(&mut self, delays: ProviderDelays) {
        self.subtracted = delays;
        let total = f64::from(delays.total_ms());
        for t in &mut self.turns {
            t.turn_latency_ms = t.response_ms.map(|r| r - total);
        }
    }

    /// Turn latencies (ms) of the turns that got an answer.
    pub fn latencies(&self) -> impl Iterator<Item = f64> + '_ {
        self.turns.iter().filter_map(|t| t.turn_latency_ms)
    }

    /// Gaps over all answers.
    pub fn playout_gaps(&self) -> u32 {
        self.turns.iter().map(|t| t.playout_gaps).sum()
    }

    /// Near misses over all answers.
    pub fn late_frames(&self) -> u32 {
        self.turns.iter().map(|t| t.late_frames).sum()
    }

    /// Largest lead over all answers.
    pub fn max_lead_ms(&self) -> f64 {
        self.turns.iter().map(|t| t.max_lead_ms).fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_details_but_counts_everything() {
        let mut r = CallReport::default();
        for i in 0..30 {
            r.error(ErrorKind::OddLengthBinary, i as f64, "odd");
        }
        r.error(ErrorKind::NoAnswer, 1.0, "none");
        assert_eq!(r.errors.len(), 20);
        assert_eq!(r.error_counts[&ErrorKind::OddLengthBinary], 30);
        assert_eq!(r.error_total(), 31);
        assert_eq!(ErrorKind::OddLengthBinary.name(), "odd_length_binary");
    }

    #[test]
    fn resubtracting_recomputes_every_turn() {
        let mut r = CallReport {
            turns: vec![
                TurnReport {
                    response_ms: Some(1250.0),
                    turn_latency_ms: Some(450.0),
                    ..TurnReport::default()
                },
                TurnReport::default(),
            ],
            subtracted: ProviderDelays {
                vad_silence_ms: 500,
                think_ms: 300,
            },
            ..CallReport::default()
        };
        let think_only = ProviderDelays {
            vad_silence_ms: 0,
            think_ms: 300,
        };
        r.resubtract(think_only);
        assert_eq!(r.subtracted, think_only);
        assert_eq!(r.turns[0].turn_latency_ms, Some(950.0));
        assert_eq!(r.turns[1].turn_latency_ms, None, "no answer, no latency");
    }
}
