//! The audio formats an agent negotiates in `conversation_initiation_metadata`
//! (providers.md §3.2): raw PCM16 LE mono at one of a few rates, or G.711 μ-law 8 kHz.

use crate::audio::{g711, pcm};

/// PCM rates ElevenLabs names as `pcm_<rate>`.
const PCM_RATES: [u32; 5] = [8_000, 16_000, 22_050, 24_000, 44_100];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// PCM16 little-endian mono at this rate.
    Pcm(u32),
    /// G.711 μ-law, 8 kHz.
    Ulaw8k,
}

impl WireFormat {
    /// `pcm_16000`, `ulaw_8000`, …; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        if name == "ulaw_8000" {
            return Some(Self::Ulaw8k);
        }
        let rate: u32 = name.strip_prefix("pcm_")?.parse().ok()?;
        PCM_RATES.contains(&rate).then_some(Self::Pcm(rate))
    }

    /// Rate of the PCM16 the call exchanges (μ-law is decoded to 8 kHz PCM16).
    pub fn rate(self) -> u32 {
        match self {
            Self::Pcm(rate) => rate,
            Self::Ulaw8k => 8_000,
        }
    }

    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            Self::Pcm(_) => pcm::to_le_bytes(samples),
            Self::Ulaw8k => g711::encode_ulaw(samples),
        }
    }

    /// Samples of a provider chunk; `None` when PCM16 arrives with an odd byte count.
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
    fn parses_the_documented_names_only() {
        assert_eq!(
            WireFormat::parse("pcm_16000"),
            Some(WireFormat::Pcm(16_000))
        );
        assert_eq!(
            WireFormat::parse("pcm_22050"),
            Some(WireFormat::Pcm(22_050))
        );
        assert_eq!(
            WireFormat::parse("pcm_44100"),
            Some(WireFormat::Pcm(44_100))
        );
        assert_eq!(WireFormat::parse("ulaw_8000"), Some(WireFormat::Ulaw8k));
        for bad in [
            "pcm_12345",
            "mp3_44100_128",
            "ulaw_16000",
            "pcm_",
            "",
            "PCM_16000",
        ] {
            assert_eq!(WireFormat::parse(bad), None, "{bad}");
        }
        assert_eq!(WireFormat::Ulaw8k.rate(), 8_000);
    }

    #[test]
    fn round_trips_and_rejects_odd_pcm() {
        let s = [0i16, 1000, -1000, 32000];
        let p = WireFormat::Pcm(16_000);
        assert_eq!(p.decode(&p.encode(&s)).unwrap(), s);
        assert_eq!(p.decode(&[1, 2, 3]), None);
        let u = WireFormat::Ulaw8k;
        assert_eq!(u.encode(&s).len(), 4);
        let back = u.decode(&u.encode(&s)).unwrap();
        assert!(back.iter().zip(s).all(|(a, b)| (a - b).abs() < 1100));
    }
}
