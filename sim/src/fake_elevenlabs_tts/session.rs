//! One stream's protocol state: client frames in, what to do out. No I/O or timing here;
//! [`super::connection`] feeds it and carries the actions out.
//!
//! Rules (providers.md §3.1): the first message is BOS, text `" "`, and carries the key
//! when the header did not; then text chunks, buffered until a `flush`, until the
//! buffer reaches the next `chunk_length_schedule` step, or until EOS (`""`), which
//! also ends the stream. A lone `" "` is a keep-alive. A client mistake is answered the
//! way the service does: an error message, then close 1008.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::handshake::Upgrade;
use super::stats::Count;
use super::Shared;

/// The service's default schedule (characters before each generation).
const DEFAULT_SCHEDULE: [usize; 4] = [120, 160, 250, 290];

/// What the connection must do for a client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Speak this text (after whatever is already queued).
    Speak(String),
    /// EOS came: after the queued audio send `isFinal` and close 1000.
    Final,
    /// A client mistake: send `{"message", "error", "code": 1008}`, close 1008.
    Reject {
        error: &'static str,
        message: String,
    },
}

pub(crate) struct Session {
    shared: Arc<Shared>,
    /// Index of this stream in the per-session stats.
    pub(crate) record: usize,
    authorized: bool,
    started: bool,
    ended: bool,
    buffer: String,
    schedule: Vec<usize>,
    generations: usize,
}

impl Session {
    pub fn new(shared: Arc<Shared>, upgrade: &Upgrade, record: usize) -> Self {
        Self {
            shared,
            record,
            authorized: upgrade.key_in_header,
            started: false,
            ended: false,
            buffer: String::new(),
            schedule: DEFAULT_SCHEDULE.to_vec(),
            generations: 0,
        }
    }

    pub fn ended(&self) -> bool {
        self.ended
    }

    pub fn on_binary(&mut self) -> Vec<Action> {
        self.reject(
            "invalid_input_message",
            "Binary frames are not accepted: send JSON text messages.".into(),
        )
    }

    pub fn on_text(&mut self, text: &str) -> Vec<Action> {
        if self.ended {
            self.protocol_error("message after EOS".into());
            return Vec::new();
        }
        let msg = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            _ => return self.unparseable("not a JSON object"),
        };
        let Some(Value::String(text)) = msg.get("text") else {
            return self.unparseable("\"text\" must be a string");
        };
        let flag = |name: &str| match msg.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(format!("\"{name}\" must be a boolean")),
        };
        // `try_trigger_generation` (legacy) is checked but adds nothing to the schedule.
        let flush = match (flag("flush"), flag("try_trigger_generation")) {
            (Ok(f), Ok(_)) => f,
            (Err(e), _) | (_, Err(e)) => return self.unparseable(&e),
        };
        if !self.started {
            return self.bos(text, &msg);
        }
        self.shared.stats.session(self.record, |s| s.messages += 1);
        if text.is_empty() {
            return self.eos();
        }
        if text == " " && !flush && self.buffer.trim().is_empty() {
            self.shared.stats.add(Count::KeepAlive);
            self.shared
                .stats
                .session(self.record, |s| s.keep_alives += 1);
            return Vec::new();
        }
        self.shared.stats.add(Count::Text);
        self.shared.stats.session(self.record, |s| {
            crate::fake_common::stats::push_capped(&mut s.texts, text.clone())
        });
        self.buffer.push_str(text);
        if flush {
            self.shared.stats.add(Count::Flush);
            self.shared.stats.session(self.record, |s| s.flushes += 1);
            return self.generate();
        }
        let step = self.schedule[self.generations.min(self.schedule.len() - 1)];
        if self.buffer.chars().count() >= step {
            return self.generate();
        }
        Vec::new()
    }

    fn bos(&mut self, text: &str, msg: &Map<String, Value>) -> Vec<Action> {
        if !self.authorized {
            let key = &self.shared.cfg.api_key;
            let bearer = format!("Bearer {key}");
            let given = ["xi-api-key", "xi_api_key", "authorization"]
                .iter()
                .find_map(|k| msg.get(*k).and_then(Value::as_str).map(|v| (*k, v)));
            let ok = match given {
                Some(("authorization", v)) => v == bearer,
                Some((_, v)) => v == key,
                None => false,
            };
            if !ok {
                return self.reject("invalid_api_key", "Invalid API key".into());
            }
            self.authorized = true;
        }
        if text != " " {
            return self.reject(
                "invalid_input_message",
                "The first message must be the beginning of stream: text \" \".".into(),
            );
        }
        if let Err(e) = voice_settings(msg.get("voice_settings")) {
            return self.reject("invalid_voice_settings", e);
        }
        match schedule(msg.get("generation_config")) {
            Ok(Some(s)) => self.schedule = s,
            Ok(None) => {}
            Err(e) => return self.reject("invalid_generation_config", e),
        }
        self.started = true;
        self.shared.stats.add(Count::Bos);
        let (settings, sched) = (msg.get("voice_settings").cloned(), self.schedule.clone());
        self.shared.stats.session(self.record, |s| {
            s.bos = true;
            s.voice_settings = settings;
            s.chunk_length_schedule = sched;
        });
        Vec::new()
    }

    fn eos(&mut self) -> Vec<Action> {
        self.ended = true;
        self.shared.stats.add(Count::Eos);
        self.shared.stats.session(self.record, |s| s.eos = true);
        let mut out = self.generate();
        out.push(Action::Final);
        out
    }

    /// Everything buffered, spoken (nothing for whitespace).
    fn generate(&mut self) -> Vec<Action> {
        let text = std::mem::take(&mut self.buffer);
        if text.trim().is_empty() {
            return Vec::new();
        }
        self.generations += 1;
        self.shared.stats.add(Count::Generation);
        vec![Action::Speak(text.trim().to_string())]
    }

    fn unparseable(&mut self, why: &str) -> Vec<Action> {
        self.reject(
            "invalid_input_message",
            format!(
                "Could not parse input message, make sure it is a json and follows the \
                 schema outlined in protocol ({why})."
            ),
        )
    }

    fn reject(&mut self, error: &'static str, message: String) -> Vec<Action> {
        self.protocol_error(format!("{error}: {message}"));
        self.ended = true;
        vec![Action::Reject { error, message }]
    }

    fn protocol_error(&self, message: String) {
        tracing::debug!(%message, "fake ElevenLabs TTS: client protocol error");
        self.shared.stats.protocol_error(message);
    }
}

/// `voice_settings`, if sent, must be an object with values in the documented ranges.
fn voice_settings(v: Option<&Value>) -> Result<(), String> {
    let settings = match v {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err("voice_settings must be an object".into()),
    };
    for (name, value) in settings {
        let range = match name.as_str() {
            "stability" | "similarity_boost" | "style" => 0.0..=1.0,
            "speed" => 0.7..=1.2,
            "use_speaker_boost" if value.is_boolean() => continue,
            _ => return Err(format!("voice_settings.{name} is not valid")),
        };
        if !value.as_f64().is_some_and(|x| range.contains(&x)) {
            return Err(format!("voice_settings.{name} must be in {range:?}"));
        }
    }
    Ok(())
}

/// `generation_config.chunk_length_schedule`: a non-empty list of 50–500.
fn schedule(v: Option<&Value>) -> Result<Option<Vec<usize>>, String> {
    let Some(config) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Some(list) = config.get("chunk_length_schedule").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let steps: Option<Vec<usize>> = list.as_array().and_then(|items| {
        items
            .iter()
            .map(|i| {
                i.as_u64()
                    .filter(|n| (50..=500).contains(n))
                    .map(|n| n as usize)
            })
            .collect()
    });
    match steps {
        Some(s) if !s.is_empty() => Ok(Some(s)),
        _ => Err("chunk_length_schedule must be a list of 50-500".into()),
    }
}
