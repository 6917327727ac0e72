//! What a simulated FreeSWITCH call is made of: the module build (how it connects and frames
//! audio), the mix, the rate, and how it plays the bridge's answer (reference/freeswitch.md).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

/// Rates `uuid_audio_stream … start` accepts as numbers (multiples of 8000; §1.1).
pub const SUPPORTED_RATES: [u32; 5] = [8000, 16000, 24000, 32000, 48000];

/// Bytes of one 20 ms mono L16 frame at 8 kHz (`FRAME_SIZE_8000` in both modules).
const FRAME_SIZE_8000: usize = 320;

/// The WebSocket client inside the module build being simulated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModuleProfile {
    /// mod_audio_stream v1.0.3 / `main` with libwsc: Origin + deflate offer, 1 s connect
    /// timeout, `STREAM_BUFFER_SIZE` packing, optional `"ping"` heartbeat, no reconnect.
    AudioStreamLibwsc {
        /// `STREAM_BUFFER_SIZE`: ms per binary message, a multiple of 20.
        buffer_ms: u32,
        /// `STREAM_HEART_BEAT`: seconds between pings with payload `ping` (0 = off).
        heart_beat_secs: u32,
        /// False when `STREAM_MESSAGE_DEFLATE=true` (which *disables* the offer).
        offer_deflate: bool,
    },
    /// mod_audio_stream ≤ v1.0.2 with ixwebsocket: same framing, reconnects automatically
    /// and resends the metadata for the same call.
    AudioStreamIxws {
        /// `STREAM_BUFFER_SIZE`, as above.
        buffer_ms: u32,
    },
    /// mod_audio_fork (drachtio/jambonz, libwebsockets): subprotocol `audio.drachtio.org`,
    /// variable-size binary messages, a zero-length binary frame at graceful end.
    AudioFork,
}

impl Default for ModuleProfile {
    fn default() -> Self {
        ModuleProfile::libwsc()
    }
}

impl ModuleProfile {
    /// libwsc build with the module defaults (20 ms messages, no heartbeat, deflate offered).
    pub fn libwsc() -> Self {
        ModuleProfile::AudioStreamLibwsc {
            buffer_ms: 20,
            heart_beat_secs: 0,
            offer_deflate: true,
        }
    }

    /// ixwebsocket build with 20 ms messages.
    pub fn ixws() -> Self {
        ModuleProfile::AudioStreamIxws { buffer_ms: 20 }
    }

    /// Short name used on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            ModuleProfile::AudioStreamLibwsc { .. } => "libwsc",
            ModuleProfile::AudioStreamIxws { .. } => "ixws",
            ModuleProfile::AudioFork => "fork",
        }
    }

    /// True for mod_audio_fork, false for the mod_audio_stream builds.
    pub fn is_fork(&self) -> bool {
        matches!(self, ModuleProfile::AudioFork)
    }

    /// ixwebsocket reconnects by itself; libwsc and libwebsockets do not.
    pub fn reconnects(&self) -> bool {
        matches!(self, ModuleProfile::AudioStreamIxws { .. })
    }

    /// `STREAM_BUFFER_SIZE` for mod_audio_stream builds; `None` for the fork (variable sizes).
    pub fn buffer_ms(&self) -> Option<u32> {
        match self {
            ModuleProfile::AudioStreamLibwsc { buffer_ms, .. }
            | ModuleProfile::AudioStreamIxws { buffer_ms } => Some(*buffer_ms),
            ModuleProfile::AudioFork => None,
        }
    }

    /// Seconds between heartbeat pings, if any.
    pub fn heart_beat(&self) -> Option<Duration> {
        match self {
            ModuleProfile::AudioStreamLibwsc {
                heart_beat_secs, ..
            } if *heart_beat_secs > 0 => Some(Duration::from_secs(u64::from(*heart_beat_secs))),
            _ => None,
        }
    }

    /// How long the client waits for TCP connect + upgrade: libwsc `connection_timeout = 1`,
    /// libwebsockets `timeout_secs = 10`; ixwebsocket's 60 s is capped at 10 s here.
    pub fn connect_timeout(&self) -> Duration {
        match self {
            ModuleProfile::AudioStreamLibwsc { .. } => Duration::from_secs(1),
            ModuleProfile::AudioStreamIxws { .. } | ModuleProfile::AudioFork => {
                Duration::from_secs(10)
            }
        }
    }

    /// Checks the profile's own settings (`STREAM_BUFFER_SIZE` must be a positive multiple of 20).
    pub fn validate(&self) -> Result<(), String> {
        match self.buffer_ms() {
            Some(ms) if ms == 0 || ms % 20 != 0 => Err(format!(
                "STREAM_BUFFER_SIZE must be a positive multiple of 20, got {ms}"
            )),
            _ => Ok(()),
        }
    }

    /// Parses `libwsc`, `ixws` or `fork`, with an optional `buffer_ms` for the stream builds.
    pub fn parse(name: &str, buffer_ms: u32, heart_beat_secs: u32) -> Result<Self, String> {
        let profile = match name {
            "libwsc" => ModuleProfile::AudioStreamLibwsc {
                buffer_ms,
                heart_beat_secs,
                offer_deflate: true,
            },
            "ixws" => ModuleProfile::AudioStreamIxws { buffer_ms },
            "fork" => ModuleProfile::AudioFork,
            other => return Err(format!("unknown profile {other:?} (libwsc, ixws or fork)")),
        };
        profile.validate()?;
        Ok(profile)
    }
}

/// The `mono|mixed|stereo` argument of `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mix {
    /// Caller only (`SMBF_READ_STREAM`).
    #[default]
    Mono,
    /// Caller + what FreeSWITCH plays, summed with clipping.
    Mixed,
    /// Interleaved L = caller, R = what FreeSWITCH plays.
    Stereo,
}

impl Mix {
    /// Channels in each binary frame.
    pub fn channels(self) -> usize {
        if self == Mix::Stereo {
            2
        } else {
            1
        }
    }

    /// The word used in the URL and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mix::Mono => "mono",
            Mix::Mixed => "mixed",
            Mix::Stereo => "stereo",
        }
    }
}

impl FromStr for Mix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mono" => Ok(Mix::Mono),
            "mixed" => Ok(Mix::Mixed),
            "stereo" => Ok(Mix::Stereo),
            other => Err(format!("unknown mix {other:?} (mono, mixed or stereo)")),
        }
    }
}

/// How the bridge's answer reaches the caller, i.e. which module fork is simulated (§3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Playout {
    /// Binary L16 at the call rate into a write buffer (cloudfieldcz fork, VoiSmart,
    /// mod_audio_fork bidirectional stream).
    #[default]
    Binary,
    /// `streamAudio` raw JSON chunks played in real time (voxcom / julianotarga forks).
    StreamAudio,
    /// A `rawAudio` header, then binary L16 (closed commercial build).
    RawAudio,
    /// mod_audio_fork `playAudio` → temp file + `mod_audio_fork::play_audio`, played via ESL.
    PlayAudio,
    /// Stock mod_audio_stream `streamAudio` → temp file + `mod_audio_stream::play`, via ESL.
    File,
}

impl Playout {
    /// The word used in the URL (`playout=`) and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Playout::Binary => "binary",
            Playout::StreamAudio => "stream_audio",
            Playout::RawAudio => "raw_audio",
            Playout::PlayAudio => "play_audio",
            Playout::File => "file",
        }
    }

    /// File modes need the ESL side (`FakeFreeswitch`) to play anything.
    pub fn uses_files(self) -> bool {
        matches!(self, Playout::PlayAudio | Playout::File)
    }
}

impl FromStr for Playout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "binary" => Ok(Playout::Binary),
            "stream_audio" => Ok(Playout::StreamAudio),
            "raw_audio" => Ok(Playout::RawAudio),
            "play_audio" => Ok(Playout::PlayAudio),
            "file" => Ok(Playout::File),
            other => Err(format!(
                "unknown playout {other:?} (binary, stream_audio, raw_audio, play_audio or file)"
            )),
        }
    }
}

/// The text message that empties the module's playback buffer (the URL's `clear=` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ClearKind {
    /// `{"type":"clearAudio"}` (cloudfieldcz fork).
    #[serde(rename = "clearAudio")]
    ClearAudio,
    /// `{"type":"killAudio"}` (mod_audio_fork).
    #[serde(rename = "killAudio")]
    KillAudio,
    /// `{"type":"input_audio_buffer.speech_started"}` (VoiSmart).
    #[serde(rename = "speech_started")]
    SpeechStarted,
    /// `{"type":"stopAudio"}` (voxcom / julianotarga forks).
    #[serde(rename = "stopAudio")]
    StopAudio,
    /// No text clear (commercial build, stock file builds: `uuid_break` only).
    #[serde(rename = "none")]
    None,
}

impl ClearKind {
    /// The value of the URL's `clear=` parameter.
    pub fn name(self) -> &'static str {
        match self {
            ClearKind::ClearAudio => "clearAudio",
            ClearKind::KillAudio => "killAudio",
            ClearKind::SpeechStarted => "speech_started",
            ClearKind::StopAudio => "stopAudio",
            ClearKind::None => "none",
        }
    }

    /// The JSON `type` of the message, if there is one.
    pub fn message_type(self) -> Option<&'static str> {
        match self {
            ClearKind::ClearAudio => Some("clearAudio"),
            ClearKind::KillAudio => Some("killAudio"),
            ClearKind::SpeechStarted => Some("input_audio_buffer.speech_started"),
            ClearKind::StopAudio => Some("stopAudio"),
            ClearKind::None => None,
        }
    }

    /// Which clear kind a JSON `type` is, if it is one of the known clear messages.
    pub fn from_message_type(t: &str) -> Option<Self> {
        [
            ClearKind::ClearAudio,
            ClearKind::KillAudio,
            ClearKind::SpeechStarted,
            ClearKind::StopAudio,
        ]
        .into_iter()
        .find(|k| k.message_type() == Some(t))
    }

    /// What the simulated build understands when the URL names no `clear=` (matches the
    /// bridge's `auto`): fork binary/playAudio → killAudio, stream binary → clearAudio,
    /// streamAudio → stopAudio, raw_audio and file → none.
    pub fn default_for(profile: &ModuleProfile, playout: Playout) -> Self {
        match (playout, profile.is_fork()) {
            (Playout::Binary, true) | (Playout::PlayAudio, _) => ClearKind::KillAudio,
            (Playout::Binary, false) => ClearKind::ClearAudio,
            (Playout::StreamAudio, _) => ClearKind::StopAudio,
            (Playout::RawAudio, _) | (Playout::File, _) => ClearKind::None,
        }
    }
}

impl FromStr for ClearKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "clearAudio" => Ok(ClearKind::ClearAudio),
            "killAudio" => Ok(ClearKind::KillAudio),
            "speech_started" => Ok(ClearKind::SpeechStarted),
            "stopAudio" => Ok(ClearKind::StopAudio),
            "none" => Ok(ClearKind::None),
            other => Err(format!(
                "unknown clear {other:?} (clearAudio, killAudio, speech_started, stopAudio, none)"
            )),
        }
    }
}

impl fmt::Display for ClearKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks a rate against what the module accepts as a number.
pub fn validate_rate(rate: u32) -> Result<(), String> {
    if SUPPORTED_RATES.contains(&rate) {
        Ok(())
    } else {
        Err(format!(
            "unsupported rate {rate} (8000, 16000, 24000, 32000 or 48000)"
        ))
    }
}

/// Samples per channel in 20 ms at `rate`.
pub fn frame_samples(rate: u32) -> usize {
    voice_core::audio::frame_samples(rate)
}

/// Bytes of one mod_audio_stream binary message: `320 * rate/8000 * channels * N/20`
/// (`audio_streamer_glue.cpp:468`), e.g. 640 B for 16 kHz mono at 20 ms.
pub fn message_bytes(rate: u32, mix: Mix, buffer_ms: u32) -> usize {
    FRAME_SIZE_8000 * (rate as usize / 8000) * mix.channels() * (buffer_ms as usize / 20)
}

/// mod_audio_stream's `validate_ws_uri`: ws/wss, a host of `[A-Za-z0-9.-]` (no IPv6
/// literal), digits up to `/` for the port, and `/` before any query.
pub fn validate_stream_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .ok_or_else(|| format!("{url:?}: scheme must be ws:// or wss://"))?;
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.contains('?') {
        return Err(format!("{url:?}: put '/' before the query"));
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(format!(
            "{url:?}: host must be letters, digits, '.' or '-' (no IPv6 literal)"
        ));
    }
    if let Some(port) = port {
        if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("{url:?}: port must be digits"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_sizes_match_the_reference_table() {
        assert_eq!(message_bytes(8000, Mix::Mono, 20), 320);
        assert_eq!(message_bytes(16000, Mix::Mono, 20), 640);
        assert_eq!(message_bytes(16000, Mix::Stereo, 20), 1280);
        assert_eq!(message_bytes(24000, Mix::Mono, 20), 960);
        assert_eq!(message_bytes(48000, Mix::Stereo, 20), 3840);
        assert_eq!(message_bytes(8000, Mix::Mono, 100), 1600);
        assert_eq!(message_bytes(16000, Mix::Mixed, 40), 1280);
    }

    #[test]
    fn buffer_size_must_be_a_multiple_of_20() {
        assert!(ModuleProfile::parse("libwsc", 30, 0).is_err());
        assert!(ModuleProfile::parse("ixws", 0, 0).is_err());
        assert_eq!(
            ModuleProfile::parse("libwsc", 100, 5).unwrap().buffer_ms(),
            Some(100)
        );
        assert!(ModuleProfile::parse("fork", 30, 0).is_ok());
        assert!(ModuleProfile::parse("other", 20, 0).is_err());
    }

    #[test]
    fn default_clear_matches_each_build() {
        let fork = ModuleProfile::AudioFork;
        let libwsc = ModuleProfile::libwsc();
        assert_eq!(
            ClearKind::default_for(&fork, Playout::Binary),
            ClearKind::KillAudio
        );
        assert_eq!(
            ClearKind::default_for(&libwsc, Playout::Binary),
            ClearKind::ClearAudio
        );
        assert_eq!(
            ClearKind::default_for(&libwsc, Playout::StreamAudio),
            ClearKind::StopAudio
        );
        assert_eq!(
            ClearKind::default_for(&fork, Playout::PlayAudio),
            ClearKind::KillAudio
        );
        assert_eq!(
            ClearKind::default_for(&libwsc, Playout::File),
            ClearKind::None
        );
        assert_eq!(
            ClearKind::from_message_type("input_audio_buffer.speech_started"),
            Some(ClearKind::SpeechStarted)
        );
        assert_eq!(
            "speech_started".parse::<ClearKind>(),
            Ok(ClearKind::SpeechStarted)
        );
    }

    #[test]
    fn validates_urls_like_the_module() {
        assert!(validate_stream_url("ws://127.0.0.1:8085/stream/a/b?rate=16000").is_ok());
        assert!(validate_stream_url("wss://bridge.example-1.com/x").is_ok());
        assert!(validate_stream_url("ws://127.0.0.1:8085?uuid=1").is_err());
        assert!(validate_stream_url("ws://[::1]:8085/").is_err());
        assert!(validate_stream_url("http://127.0.0.1/").is_err());
        assert!(validate_stream_url("ws://host:80a/").is_err());
    }
}
