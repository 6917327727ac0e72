//! The agent's audio formats, as the metadata names them (providers.md §3.2).

use crate::fake_common::encoding::Encoding;

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
        self.encoding().bytes_per_sample()
    }

    pub fn is_supported(self) -> bool {
        match self {
            Self::Pcm(rate) => [8_000, 16_000, 22_050, 24_000, 44_100].contains(&rate),
            Self::Ulaw8k => true,
        }
    }

    pub(crate) fn encoding(self) -> Encoding {
        match self {
            Self::Pcm(_) => Encoding::Pcm16,
            Self::Ulaw8k => Encoding::Ulaw,
        }
    }

    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        self.encoding().encode(samples)
    }

    /// `None` for PCM16 with an odd byte count.
    pub fn decode(self, bytes: &[u8]) -> Option<Vec<i16>> {
        self.encoding().decode(bytes)
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
