//! Audio byte encodings the fakes speak (PCM16 LE and G.711), both ways, so each fake's
//! format type only has to say which one it means.

use voice_core::audio::{g711, pcm};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// PCM16 little-endian.
    Pcm16,
    /// G.711 μ-law.
    Ulaw,
    /// G.711 A-law.
    Alaw,
}

impl Encoding {
    pub fn bytes_per_sample(self) -> usize {
        match self {
            Self::Pcm16 => 2,
            Self::Ulaw | Self::Alaw => 1,
        }
    }

    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            Self::Pcm16 => pcm::to_le_bytes(samples),
            Self::Ulaw => g711::encode_ulaw(samples),
            Self::Alaw => g711::encode_alaw(samples),
        }
    }

    /// `None` for PCM16 with an odd byte count.
    pub fn decode(self, bytes: &[u8]) -> Option<Vec<i16>> {
        match self {
            Self::Pcm16 if !bytes.len().is_multiple_of(2) => None,
            Self::Pcm16 => Some(pcm::from_le_bytes(bytes)),
            Self::Ulaw => Some(g711::decode_ulaw(bytes)),
            Self::Alaw => Some(g711::decode_alaw(bytes)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sizes() {
        let samples = [0i16, 1000, -1000, 32_000];
        for enc in [Encoding::Pcm16, Encoding::Ulaw, Encoding::Alaw] {
            let bytes = enc.encode(&samples);
            assert_eq!(bytes.len(), samples.len() * enc.bytes_per_sample());
            let back = enc.decode(&bytes).unwrap();
            assert_eq!(back.len(), samples.len());
            assert!(back
                .iter()
                .zip(samples)
                .all(|(&b, s)| (b - s).abs() <= s.abs() / 16 + 8));
        }
        assert_eq!(Encoding::Pcm16.decode(&[1, 0, 2]), None);
    }
}
