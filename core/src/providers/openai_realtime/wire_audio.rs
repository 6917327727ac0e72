//! The audio format exchanged with the Realtime API (providers.md §1.2).

use serde_json::{json, Value};

use super::config::OpenAiRealtimeConfig;
use crate::audio::{g711, pcm};

/// Audio on the wire, the same in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireAudio {
    /// PCM16 little-endian mono at 24 kHz (the only PCM rate the API takes).
    Pcm24k,
    /// G.711 μ-law at 8 kHz, for telephony passthrough.
    Pcmu8k,
}

impl WireAudio {
    /// μ-law passthrough only when asked for and the call really is 8 kHz.
    pub fn for_call(cfg: &OpenAiRealtimeConfig, call_rate: u32) -> Self {
        if cfg.g711_passthrough && call_rate == 8000 {
            Self::Pcmu8k
        } else {
            Self::Pcm24k
        }
    }

    pub fn rate(self) -> u32 {
        match self {
            Self::Pcm24k => 24_000,
            Self::Pcmu8k => 8_000,
        }
    }

    pub fn bytes_per_ms(self) -> u64 {
        match self {
            Self::Pcm24k => 48,
            Self::Pcmu8k => 8,
        }
    }

    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            Self::Pcm24k => pcm::to_le_bytes(samples),
            Self::Pcmu8k => g711::encode_ulaw(samples),
        }
    }

    /// Samples of a provider chunk; `None` when PCM16 arrives with an odd byte count.
    pub fn decode(self, bytes: &[u8]) -> Option<Vec<i16>> {
        match self {
            Self::Pcm24k if !bytes.len().is_multiple_of(2) => None,
            Self::Pcm24k => Some(pcm::from_le_bytes(bytes)),
            Self::Pcmu8k => Some(g711::decode_ulaw(bytes)),
        }
    }

    /// GA `audio.{input,output}.format`.
    pub fn ga_format(self) -> Value {
        match self {
            Self::Pcm24k => json!({"type": "audio/pcm", "rate": 24000}),
            Self::Pcmu8k => json!({"type": "audio/pcmu"}),
        }
    }

    /// Beta `input_audio_format` / `output_audio_format`.
    pub fn beta_format(self) -> &'static str {
        match self {
            Self::Pcm24k => "pcm16",
            Self::Pcmu8k => "g711_ulaw",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passthrough_needs_an_8k_call() {
        let mut cfg = OpenAiRealtimeConfig {
            g711_passthrough: true,
            ..Default::default()
        };
        assert_eq!(WireAudio::for_call(&cfg, 8000), WireAudio::Pcmu8k);
        assert_eq!(WireAudio::for_call(&cfg, 16000), WireAudio::Pcm24k);
        cfg.g711_passthrough = false;
        assert_eq!(WireAudio::for_call(&cfg, 8000), WireAudio::Pcm24k);
    }

    #[test]
    fn round_trips_and_rejects_odd_pcm() {
        let s = [0i16, 1000, -1000, 32000];
        let w = WireAudio::Pcm24k;
        assert_eq!(w.decode(&w.encode(&s)).unwrap(), s);
        assert_eq!(w.decode(&[1, 2, 3]), None);
        let u = WireAudio::Pcmu8k;
        assert_eq!(u.encode(&s).len(), 4);
        assert_eq!(u.decode(&u.encode(&s)).unwrap().len(), 4);
    }
}
