//! What to simulate for one call: where to connect, which module build, the audio format,
//! the caller's script, and the provider delays to take out of the measured latency.

use std::time::Duration;

use serde_json::json;

use super::call_report::ProviderDelays;
use super::esl_backend::FakeFreeswitch;
use super::profile::{validate_rate, ClearKind, Mix, ModuleProfile, Playout};
use super::script::{default_script, CallerTurn};

/// Where tenant and call go: the URL path (the normal way) or the metadata text frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UrlStyle {
    /// `ws://host/stream/{domain}/{uuid}?rate=…&mix=…&playout=…[&clear=…]`.
    #[default]
    Path,
    /// `ws://host/stream`, everything in the metadata JSON (`domain_name`, `uuid`, `rate`, …).
    Metadata,
}

/// The `metadata` argument of `uuid_audio_stream … start` (sent as the first text frame).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Metadata {
    /// A JSON object with `uuid`, `domain_name`, caller and destination numbers (plus the
    /// format fields in [`UrlStyle::Metadata`]).
    #[default]
    Standard,
    /// No metadata argument: no text frame is sent.
    Absent,
    /// This exact text.
    Custom(String),
}

/// One simulated call. `CallSpec::new(bridge)` gives sensible defaults; change fields freely.
#[derive(Clone)]
pub struct CallSpec {
    /// The bridge's base URL, e.g. `ws://127.0.0.1:8080` (a path such as `/stream` is kept).
    pub bridge: String,
    /// Path or metadata style.
    pub url_style: UrlStyle,
    /// Tenant (FusionPBX domain name).
    pub domain: String,
    /// The channel UUID.
    pub call_uuid: String,
    /// Module build.
    pub profile: ModuleProfile,
    /// Call rate (8000…48000).
    pub rate: u32,
    /// mono / mixed / stereo.
    pub mix: Mix,
    /// How the build plays the bridge's audio.
    pub playout: Playout,
    /// The clear message to ask for in the URL; `None` leaves it to the bridge's default and
    /// expects [`ClearKind::default_for`].
    pub clear: Option<ClearKind>,
    /// First text frame.
    pub metadata: Metadata,
    /// `STREAM_EXTRA_HEADERS`.
    pub extra_headers: Vec<(String, String)>,
    /// What the caller says, in a cycle.
    pub script: Vec<CallerTurn>,
    /// Stop after this many turns (their answers played); `None` = until `max_duration`.
    pub max_turns: Option<usize>,
    /// Hang up after this long in any case.
    pub max_duration: Duration,
    /// Silence after connecting, before the first utterance.
    pub lead_in: Duration,
    /// Silence after an answer finished playing, before the next utterance.
    pub pause: Duration,
    /// Give up waiting for an answer after this long (counted as `no_answer`).
    pub answer_timeout: Duration,
    /// The fake provider's delays, subtracted from response times.
    pub delays: ProviderDelays,
    /// The switch side, required for `file` / `play_audio` (and for `uuid_*` commands).
    pub freeswitch: Option<FakeFreeswitch>,
    /// Seed for mod_audio_fork's variable frame sizes.
    pub seed: u64,
}

impl CallSpec {
    /// Defaults: libwsc, 16 kHz mono binary playout, the default pt-BR script until 60 s.
    pub fn new(bridge: impl Into<String>) -> Self {
        CallSpec {
            bridge: bridge.into(),
            url_style: UrlStyle::Path,
            domain: "sim.example.com".into(),
            call_uuid: uuid::Uuid::new_v4().to_string(),
            profile: ModuleProfile::default(),
            rate: 16000,
            mix: Mix::Mono,
            playout: Playout::Binary,
            clear: None,
            metadata: Metadata::Standard,
            extra_headers: Vec::new(),
            script: default_script(),
            max_turns: None,
            max_duration: Duration::from_secs(60),
            lead_in: Duration::from_millis(500),
            pause: Duration::from_millis(800),
            answer_timeout: Duration::from_secs(10),
            delays: ProviderDelays::default(),
            freeswitch: None,
            seed: 1,
        }
    }

    /// The clear message the simulated build understands.
    pub fn clear_kind(&self) -> ClearKind {
        self.clear
            .unwrap_or_else(|| ClearKind::default_for(&self.profile, self.playout))
    }

    /// Checks the spec before dialing.
    pub fn validate(&self) -> Result<(), String> {
        self.validate_format()?;
        if self.playout.uses_files() && self.freeswitch.is_none() {
            return Err(format!(
                "playout {} needs a FakeFreeswitch (ESL + temp dir)",
                self.playout.name()
            ));
        }
        Ok(())
    }

    /// Checks rate, profile, script and the profile/playout pairing (not the switch).
    pub fn validate_format(&self) -> Result<(), String> {
        validate_rate(self.rate)?;
        self.profile.validate()?;
        if self.script.is_empty() {
            return Err("the caller script is empty".into());
        }
        if self.playout == Playout::PlayAudio && !self.profile.is_fork() {
            return Err("play_audio is mod_audio_fork's playout: use the fork profile".into());
        }
        if matches!(
            self.playout,
            Playout::File | Playout::StreamAudio | Playout::RawAudio
        ) && self.profile.is_fork()
        {
            return Err(format!(
                "{} is a mod_audio_stream playout: not with the fork profile",
                self.playout.name()
            ));
        }
        Ok(())
    }

    /// The URL the module is started with.
    pub fn stream_url(&self) -> String {
        let base = self.bridge.trim_end_matches('/');
        let has_path = base
            .split_once("://")
            .is_some_and(|(_, rest)| rest.contains('/'));
        let prefix = if has_path {
            base.to_string()
        } else {
            format!("{base}/stream")
        };
        match self.url_style {
            UrlStyle::Metadata => prefix,
            UrlStyle::Path => {
                let mut url = format!(
                    "{prefix}/{}/{}?rate={}&mix={}&playout={}",
                    self.domain,
                    self.call_uuid,
                    self.rate,
                    self.mix.name(),
                    self.playout.name()
                );
                if let Some(clear) = self.clear {
                    url.push_str("&clear=");
                    url.push_str(clear.name());
                }
                url
            }
        }
    }

    /// The first text frame, if any.
    pub fn metadata_text(&self) -> Option<String> {
        match &self.metadata {
            Metadata::Absent => None,
            Metadata::Custom(text) => Some(text.clone()),
            Metadata::Standard => {
                let mut meta = json!({
                    "uuid": self.call_uuid,
                    "domain_name": self.domain,
                    "caller_id_number": "1000",
                    "destination_number": "9999",
                });
                if self.url_style == UrlStyle::Metadata {
                    meta["rate"] = json!(self.rate);
                    meta["mix"] = json!(self.mix.name());
                    meta["playout"] = json!(self.playout.name());
                    if let Some(clear) = self.clear {
                        meta["clear"] = json!(clear.name());
                    }
                }
                Some(meta.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_path_and_metadata_urls() {
        let mut spec = CallSpec::new("ws://127.0.0.1:8080");
        spec.call_uuid = "c1".into();
        spec.clear = Some(ClearKind::SpeechStarted);
        assert_eq!(
            spec.stream_url(),
            "ws://127.0.0.1:8080/stream/sim.example.com/c1?rate=16000&mix=mono&playout=binary&clear=speech_started"
        );
        spec.bridge = "ws://h:1/custom/".into();
        spec.url_style = UrlStyle::Metadata;
        assert_eq!(spec.stream_url(), "ws://h:1/custom");
        let meta: serde_json::Value = serde_json::from_str(&spec.metadata_text().unwrap()).unwrap();
        assert_eq!(meta["uuid"], "c1");
        assert_eq!(meta["rate"], 16000);
        assert_eq!(meta["clear"], "speech_started");
        spec.metadata = Metadata::Absent;
        assert_eq!(spec.metadata_text(), None);
    }

    #[test]
    fn rejects_impossible_combinations() {
        let mut spec = CallSpec::new("ws://x:1");
        assert!(spec.validate().is_ok());
        spec.playout = Playout::File;
        assert!(spec.validate().unwrap_err().contains("FakeFreeswitch"));
        spec.playout = Playout::Binary;
        spec.rate = 44100;
        assert!(spec.validate().is_err());
        spec.rate = 8000;
        spec.profile = ModuleProfile::AudioFork;
        spec.playout = Playout::StreamAudio;
        assert!(spec.validate().is_err());
    }
}
