//! The agent's audio formats, as the metadata names them (providers.md §3.2).

use voice_core::audio::{g711, pcm};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// `pcm_<rate>`: PCM16 LE mono (8000, 16000, 22050, 24000 or 44100).
    Pcm(u32),
    /// `ulaw_8000`: G.711 μ-law.
    Ulaw8k,
}

impl AudioFormat {
    pub fn name(self) -> String {
        match self {
            Self::Pcm(rate) => format!("pcm_{rate}"),
            Self::Ulaw8k => "ulaw_8000".into(),
        }
    }

    pub fn rate(self) -> u32 {
        match self {
            Self::Pcm(rate) => rate,
            Self::Ulaw8k => 8_000,
        }
    }

    pub fn bytes_per_sample(self) -> usize {
        match self {
            Self::Pcm(_) => 2,
            Self::Ulaw8k => 1,
        }
    }

    pub fn is_supported(self) -> bool {
        match self {
            Self::Pcm(rate) => [8_000, 16_000, 22_050, 24_000, 44_100].contains(&rate),
            Self::Ulaw8k => true,
        }
    }

    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            Self::Pcm(_) => pcm::to_le_bytes(samples),
            Self::Ulaw8k => g711::encode_ulaw(samples),
        }
    }

    /// `None` for PCM16 with an odd byte count.
    pub fn decode(self, bytes: &[u8]) -> Option<Vec<i16>> {
        match self {
            Self::Pcm(_) if !bytes.len().is_multiple_of(2) => None,
            Self::Pcm(_) => Some(pcm::from_le_bytes(bytes)),
            Self::Ulaw8k => Some(g711::decode_ulaw(bytes)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sizes() {
        assert_eq!(AudioFormat::Pcm(16_000).name(), "pcm_16000");
        assert_eq!(AudioFormat::Ulaw8k.name(), "ulaw_8000");
        assert!(!AudioFormat::Pcm(12_000).is_supported());
        assert_eq!(AudioFormat::Pcm(16_000).decode(&[1]), None);
        assert_eq!(AudioFormat::Ulaw8k.encode(&[0, 0]).len(), 2);
    }
}
