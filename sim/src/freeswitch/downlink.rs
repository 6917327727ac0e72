//! What the simulated module does with each message from the bridge (§3, §7), per playout
//! mode: play it, clear, write a file and fire an event, or drop it — and which of those are
//! protocol violations by the bridge.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use base64::Engine;
use serde_json::Value;

use super::call_report::ErrorKind;
use super::files::{self, Rejected};
use super::player::{PlayChunk, Source};
use super::profile::{ClearKind, Playout};

/// Longest `streamAudio` chunk the real-time forks take without stalling (§3.3).
const MAX_STREAM_CHUNK_MS: u64 = 40;

/// Where file-mode modules write their temp files.
#[derive(Debug, Clone)]
pub struct FileSink {
    /// FreeSWITCH's temp dir.
    pub dir: PathBuf,
    /// The channel UUID (file names start with it).
    pub uuid: String,
    /// mod_audio_stream's per-stream counter (`m_playFile`).
    pub stream_counter: u32,
    /// mod_audio_fork's module-wide counter (`playCount`).
    pub fork_counter: Arc<AtomicU32>,
}

/// What the module does with one message.
#[derive(Debug)]
pub enum Effect {
    /// Queue audio in the module's stream buffer.
    Play(PlayChunk),
    /// Empty the stream buffer.
    ClearStream(ClearKind),
    /// mod_audio_fork `killAudio` in file mode: `CF_BREAK` stops the file playing now.
    BreakCurrentFile,
    /// A temp file was written (its event is in `Decoded::event`).
    FileWritten(PathBuf),
    /// Nothing to play.
    Nothing,
}

/// The outcome of one message.
#[derive(Debug)]
pub struct Decoded {
    /// What happens to the channel.
    pub effect: Effect,
    /// CUSTOM event the module fires: (subclass, body).
    pub event: Option<(String, String)>,
    /// The bridge broke the build's protocol.
    pub violation: Option<(ErrorKind, String)>,
    /// A text message the module did not consume (recorded; mod_audio_stream fires `::json`).
    pub unconsumed_text: bool,
}

impl Decoded {
    fn effect(effect: Effect) -> Self {
        Decoded {
            effect,
            event: None,
            violation: None,
            unconsumed_text: false,
        }
    }

    fn violation(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Decoded {
            effect: Effect::Nothing,
            event: None,
            violation: Some((kind, detail.into())),
            unconsumed_text: false,
        }
    }

    fn with_violation(mut self, kind: ErrorKind, detail: impl Into<String>) -> Self {
        self.violation = Some((kind, detail.into()));
        self
    }
}

/// Decodes the bridge's messages for one call.
pub struct Downlink {
    playout: Playout,
    fork: bool,
    rate: u32,
    clear: ClearKind,
    keep_pcm: bool,
    raw_header_rate: Option<u32>,
    files: Option<FileSink>,
}

impl Downlink {
    /// A decoder for a call at `rate` whose build plays per `playout` and understands the
    /// `clear` message; `fork` selects mod_audio_fork's message handling; `keep_pcm` keeps the
    /// decoded audio (for the mixed/stereo uplink); `files` is required for file modes.
    pub fn new(
        playout: Playout,
        fork: bool,
        rate: u32,
        clear: ClearKind,
        keep_pcm: bool,
        files: Option<FileSink>,
    ) -> Self {
        Downlink {
            playout,
            fork,
            rate,
            clear,
            keep_pcm,
            raw_header_rate: None,
            files,
        }
    }

    fn event_prefix(&self) -> &'static str {
        if self.fork {
            "mod_audio_fork"
        } else {
            "mod_audio_stream"
        }
    }

    /// A binary message.
    pub fn binary(&mut self, data: &[u8]) -> Decoded {
        match self.playout {
            Playout::Binary => {}
            Playout::RawAudio if self.raw_header_rate.is_some() => {}
            Playout::RawAudio => {
                return Decoded::violation(
                    ErrorKind::BinaryBeforeHeader,
                    "binary audio before the rawAudio header",
                )
            }
            other => {
                return Decoded::violation(
                    ErrorKind::UnexpectedBinary,
                    format!(
                        "{} B of binary in {} mode: this build drops binary frames",
                        data.len(),
                        other.name()
                    ),
                )
            }
        }
        let decoded = Decoded::effect(Effect::Play(self.chunk(data, self.rate)));
        if data.len() % 2 == 1 {
            decoded.with_violation(
                ErrorKind::OddLengthBinary,
                format!("binary frame of {} bytes", data.len()),
            )
        } else {
            decoded
        }
    }

    /// A text message.
    pub fn text(&mut self, text: &str) -> Decoded {
        let kind = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string));
        let Some(kind) = kind else {
            return self.unconsumed(text);
        };
        if let Some(clear) = ClearKind::from_message_type(&kind) {
            return self.clear_message(clear, text);
        }
        match (kind.as_str(), self.playout) {
            ("streamAudio", Playout::StreamAudio) if !self.fork => self.stream_audio(text),
            ("streamAudio", Playout::File) if !self.fork => self.module_file(text),
            ("playAudio", Playout::PlayAudio) if self.fork => self.module_file(text),
            ("rawAudio", Playout::RawAudio) if !self.fork => self.raw_header(text),
            ("streamAudio" | "playAudio", playout) => {
                let mut d = self.unconsumed(text);
                d.violation = Some((
                    ErrorKind::UnexpectedAudioMessage,
                    format!(
                        "{kind} in {} mode ({} build)",
                        playout.name(),
                        self.event_prefix()
                    ),
                ));
                d
            }
            _ => self.unconsumed(text),
        }
    }

    fn clear_message(&mut self, clear: ClearKind, text: &str) -> Decoded {
        // mod_audio_fork always understands its own killAudio: fire the event and CF_BREAK,
        // and (bidirectional stream) empty the buffer.
        if self.fork && clear == ClearKind::KillAudio {
            let effect = match self.playout {
                Playout::PlayAudio => Effect::BreakCurrentFile,
                _ => Effect::ClearStream(clear),
            };
            let mut d = Decoded::effect(effect);
            d.event = Some(("mod_audio_fork::kill_audio".to_string(), String::new()));
            return d;
        }
        let has_buffer = matches!(
            self.playout,
            Playout::Binary | Playout::StreamAudio | Playout::RawAudio
        );
        if clear == self.clear && has_buffer {
            let mut d = Decoded::effect(Effect::ClearStream(clear));
            if !self.fork && clear == ClearKind::ClearAudio {
                // cloudfieldcz also fires ::json for clearAudio.
                d.event = Some(("mod_audio_stream::json".to_string(), text.to_string()));
            }
            return d;
        }
        let mut d = self.unconsumed(text);
        d.violation = Some((
            ErrorKind::WrongClear,
            format!(
                "{} sent, but this build only understands {}",
                clear.name(),
                self.clear.name()
            ),
        ));
        d
    }

    fn unconsumed(&self, text: &str) -> Decoded {
        let mut d = Decoded::effect(Effect::Nothing);
        d.unconsumed_text = true;
        if !self.fork {
            d.event = Some(("mod_audio_stream::json".to_string(), text.to_string()));
        }
        d
    }

    /// voxcom / julianotarga: raw `streamAudio` chunks played in real time.
    fn stream_audio(&mut self, text: &str) -> Decoded {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let data = v.get("data");
        let field = |k: &str| data.and_then(|d| d.get(k));
        if field("audioDataType").and_then(Value::as_str) != Some("raw") {
            return Decoded::violation(
                ErrorKind::MalformedMessage,
                "streamAudio without audioDataType \"raw\"",
            );
        }
        let rate = field("sampleRate").and_then(Value::as_u64).unwrap_or(0) as u32;
        if files::raw_extension(i64::from(rate)).is_none() {
            return Decoded::violation(
                ErrorKind::MalformedMessage,
                format!("streamAudio sampleRate {rate} not supported"),
            );
        }
        let Some(b64) = field("audioData").and_then(Value::as_str) else {
            return Decoded::violation(
                ErrorKind::MalformedMessage,
                "streamAudio without audioData",
            );
        };
        let bytes = match base64::engine::general_purpose::STANDARD.decode(b64) {
            Ok(b) => b,
            Err(e) => {
                return Decoded::violation(
                    ErrorKind::BadBase64,
                    format!("streamAudio audioData: {e}"),
                )
            }
        };
        let chunk_ms = (bytes.len() / 2) as u64 * 1000 / u64::from(rate);
        let mut d = Decoded::effect(Effect::Play(self.chunk(&bytes, rate)));
        if rate != self.rate {
            d = d.with_violation(
                ErrorKind::WrongRate,
                format!("streamAudio at {rate} Hz on a {} Hz call", self.rate),
            );
        } else if bytes.len() % 2 == 1 {
            d = d.with_violation(
                ErrorKind::OddLengthBinary,
                format!("streamAudio of {} bytes", bytes.len()),
            );
        } else if chunk_ms > MAX_STREAM_CHUNK_MS {
            d = d.with_violation(
                ErrorKind::ChunkTooLong,
                format!("streamAudio chunk of {chunk_ms} ms"),
            );
        }
        d
    }

    /// Commercial build: `{"type":"rawAudio","data":{"sampleRate":N}}` once before binary.
    fn raw_header(&mut self, text: &str) -> Decoded {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let rate = v
            .pointer("/data/sampleRate")
            .and_then(Value::as_u64)
            .unwrap_or(0) as u32;
        self.raw_header_rate = Some(rate);
        if rate != self.rate {
            return Decoded::violation(
                ErrorKind::WrongRate,
                format!("rawAudio sampleRate {rate} on a {} Hz call", self.rate),
            );
        }
        Decoded::effect(Effect::Nothing)
    }

    /// Stock mod_audio_stream `streamAudio` / mod_audio_fork `playAudio`: temp file + event.
    fn module_file(&mut self, text: &str) -> Decoded {
        let fork = self.fork;
        let call_rate = self.rate;
        let Some(sink) = self.files.as_mut() else {
            return Decoded::violation(
                ErrorKind::Internal,
                "file playout without a FakeFreeswitch temp dir",
            );
        };
        let result = if fork {
            let mut n = sink.fork_counter.load(Ordering::Relaxed);
            let r = files::play_audio_file(text, &sink.uuid, &sink.dir, &mut n);
            sink.fork_counter.store(n, Ordering::Relaxed);
            r
        } else {
            files::stream_audio_file(text, &sink.uuid, &sink.dir, &mut sink.stream_counter)
        };
        let subclass = if fork {
            files::AUDIO_FORK_PLAY
        } else {
            files::AUDIO_STREAM_PLAY
        };
        match result {
            Ok(file) => {
                let mut d = Decoded::effect(Effect::FileWritten(file.path.clone()));
                d.event = Some((subclass.to_string(), file.event_body));
                if file.raw_rate.is_some_and(|r| r != call_rate) {
                    d = d.with_violation(
                        ErrorKind::WrongRate,
                        format!(
                            "file at {} Hz on a {call_rate} Hz call",
                            file.raw_rate.unwrap_or(0)
                        ),
                    );
                } else if file.bytes % 2 == 1 {
                    d = d.with_violation(
                        ErrorKind::OddLengthBinary,
                        format!("file of {} bytes", file.bytes),
                    );
                }
                d
            }
            Err(Rejected {
                reason,
                fatal,
                event_body,
            }) => {
                let kind = if reason.contains("base64") {
                    ErrorKind::BadBase64
                } else {
                    ErrorKind::MalformedMessage
                };
                let detail = if fatal {
                    format!("FATAL: {reason}")
                } else {
                    reason
                };
                let mut d = if fork {
                    Decoded::effect(Effect::Nothing)
                } else {
                    self.unconsumed(text)
                };
                if let Some(body) = event_body {
                    d.event = Some((subclass.to_string(), body));
                }
                d.with_violation(kind, detail)
            }
        }
    }

    fn chunk(&self, bytes: &[u8], rate: u32) -> PlayChunk {
        let samples = bytes.len() / 2;
        let at_call_rate = if rate == self.rate {
            samples
        } else {
            samples * self.rate as usize / rate.max(1) as usize
        };
        let pcm = (self.keep_pcm && rate == self.rate)
            .then(|| voice_core::audio::pcm::from_le_bytes(bytes));
        PlayChunk {
            samples: at_call_rate,
            pcm,
            source: Source::Stream,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(n: usize) -> String {
        base64::engine::general_purpose::STANDARD.encode(vec![0u8; n])
    }

    fn stream_audio(rate: u32, bytes: usize) -> String {
        format!(
            r#"{{"type":"streamAudio","data":{{"audioDataType":"raw","sampleRate":{rate},"audioData":"{}"}}}}"#,
            b64(bytes)
        )
    }

    #[test]
    fn binary_mode_plays_frames_and_flags_odd_lengths() {
        let mut d = Downlink::new(
            Playout::Binary,
            false,
            16000,
            ClearKind::ClearAudio,
            false,
            None,
        );
        let out = d.binary(&[0; 640]);
        assert!(matches!(
            out.effect,
            Effect::Play(PlayChunk { samples: 320, .. })
        ));
        assert!(out.violation.is_none());
        assert_eq!(
            d.binary(&[0; 641]).violation.map(|v| v.0),
            Some(ErrorKind::OddLengthBinary)
        );
        let clear = d.text(r#"{"type":"clearAudio"}"#);
        assert!(matches!(
            clear.effect,
            Effect::ClearStream(ClearKind::ClearAudio)
        ));
        let wrong = d.text(r#"{"type":"stopAudio"}"#);
        assert!(matches!(wrong.effect, Effect::Nothing));
        assert_eq!(wrong.violation.map(|v| v.0), Some(ErrorKind::WrongClear));
    }

    #[test]
    fn stream_audio_mode_checks_chunks() {
        let mut d = Downlink::new(
            Playout::StreamAudio,
            false,
            16000,
            ClearKind::StopAudio,
            true,
            None,
        );
        let ok = d.text(&stream_audio(16000, 1280));
        assert!(ok.violation.is_none());
        match ok.effect {
            Effect::Play(c) => assert_eq!((c.samples, c.pcm.map(|p| p.len())), (640, Some(640))),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            d.text(&stream_audio(16000, 3200)).violation.map(|v| v.0),
            Some(ErrorKind::ChunkTooLong)
        );
        assert_eq!(
            d.text(&stream_audio(8000, 320)).violation.map(|v| v.0),
            Some(ErrorKind::WrongRate)
        );
        let bad = r#"{"type":"streamAudio","data":{"audioDataType":"raw","sampleRate":16000,"audioData":"%%"}}"#;
        assert_eq!(
            d.text(bad).violation.map(|v| v.0),
            Some(ErrorKind::BadBase64)
        );
        assert_eq!(
            d.binary(&[0; 640]).violation.map(|v| v.0),
            Some(ErrorKind::UnexpectedBinary)
        );
        assert!(matches!(
            d.text(r#"{"type":"stopAudio"}"#).effect,
            Effect::ClearStream(_)
        ));
    }

    #[test]
    fn raw_audio_needs_its_header_first() {
        let mut d = Downlink::new(
            Playout::RawAudio,
            false,
            16000,
            ClearKind::None,
            false,
            None,
        );
        assert_eq!(
            d.binary(&[0; 640]).violation.map(|v| v.0),
            Some(ErrorKind::BinaryBeforeHeader)
        );
        assert!(d
            .text(r#"{"type":"rawAudio","data":{"sampleRate":16000}}"#)
            .violation
            .is_none());
        assert!(d.binary(&[0; 640]).violation.is_none());
    }

    #[test]
    fn unknown_text_fires_json_on_audio_stream_only() {
        let mut d = Downlink::new(
            Playout::Binary,
            false,
            8000,
            ClearKind::ClearAudio,
            false,
            None,
        );
        let out = d.text("hello");
        assert!(out.unconsumed_text);
        assert_eq!(
            out.event.map(|e| e.0).as_deref(),
            Some("mod_audio_stream::json")
        );
        let mut f = Downlink::new(
            Playout::Binary,
            true,
            8000,
            ClearKind::KillAudio,
            false,
            None,
        );
        let out = f.text(r#"{"type":"mark","data":{"name":"x"}}"#);
        assert!(out.unconsumed_text && out.event.is_none());
        let kill = f.text(r#"{"type":"killAudio"}"#);
        assert!(matches!(
            kill.effect,
            Effect::ClearStream(ClearKind::KillAudio)
        ));
        assert_eq!(
            kill.event.map(|e| e.0).as_deref(),
            Some("mod_audio_fork::kill_audio")
        );
    }

    #[test]
    fn file_mode_writes_files_and_rejects_binary() {
        let dir = std::env::temp_dir().join(format!("voice-sim-downlink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sink = FileSink {
            dir: dir.clone(),
            uuid: "u1".into(),
            stream_counter: 0,
            fork_counter: Arc::default(),
        };
        let mut d = Downlink::new(
            Playout::File,
            false,
            16000,
            ClearKind::None,
            false,
            Some(sink.clone()),
        );
        let out = d.text(&stream_audio(16000, 32000));
        assert!(out.violation.is_none(), "{:?}", out.violation);
        let (subclass, body) = out.event.unwrap();
        assert_eq!(subclass, "mod_audio_stream::play");
        assert!(body.contains("u1_0.tmp.r16"));
        assert!(matches!(out.effect, Effect::FileWritten(_)));
        assert_eq!(
            d.binary(&[0; 640]).violation.map(|v| v.0),
            Some(ErrorKind::UnexpectedBinary)
        );
        let mut fork = Downlink::new(
            Playout::PlayAudio,
            true,
            8000,
            ClearKind::KillAudio,
            false,
            Some(sink),
        );
        let play = r#"{"type":"playAudio","data":{"audioContentType":"raw","sampleRate":8000,"audioContent":"AAAA"}}"#;
        assert_eq!(
            fork.text(play).event.map(|e| e.0).as_deref(),
            Some("mod_audio_fork::play_audio")
        );
        assert!(matches!(
            fork.text(r#"{"type":"killAudio"}"#).effect,
            Effect::BreakCurrentFile
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
