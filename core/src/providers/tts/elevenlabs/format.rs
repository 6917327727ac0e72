//! The `output_format`s we can play (providers.md §3.1), and turning the audio of
//! successive messages into PCM16. A PCM message may end in the middle of a sample: that
//! byte is kept for the next message, never dropped, or every later sample would be
//! shifted by a byte (loud noise).

use crate::audio::g711;
use crate::audio::pcm::SplitL16;

/// PCM rates ElevenLabs names as `pcm_<rate>` that we accept.
const PCM_RATES: [u32; 4] = [16_000, 22_050, 24_000, 44_100];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// PCM16 little-endian mono at this rate.
    Pcm(u32),
    /// G.711 μ-law, 8 kHz.
    Ulaw8k,
}

impl OutputFormat {
    /// `pcm_16000`, `ulaw_8000`, …; `None` for anything else (mp3 included).
    pub fn parse(name: &str) -> Option<Self> {
        if name == "ulaw_8000" {
            return Some(Self::Ulaw8k);
        }
        let rate: u32 = name.strip_prefix("pcm_")?.parse().ok()?;
        PCM_RATES.contains(&rate).then_some(Self::Pcm(rate))
    }

    /// Rate of the PCM16 we hand out.
    pub fn rate(self) -> u32 {
        match self {
            Self::Pcm(rate) => rate,
            Self::Ulaw8k => 8_000,
        }
    }
}

/// Decodes the audio of one stream, message after message.
pub struct Decoder {
    format: OutputFormat,
    pcm: SplitL16,
}

impl Decoder {
    pub fn new(format: OutputFormat) -> Self {
        Self {
            format,
            pcm: SplitL16::default(),
        }
    }

    /// The samples `bytes` completes (maybe none).
    pub fn decode(&mut self, bytes: &[u8]) -> Vec<i16> {
        match self.format {
            OutputFormat::Ulaw8k => g711::decode_ulaw(bytes),
            OutputFormat::Pcm(_) => self.pcm.decode(bytes),
        }
    }

    /// Whether half a sample is still waiting (a stream should not end like that).
    pub fn has_half_sample(&self) -> bool {
        self.pcm.has_half()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::pcm;

    #[test]
    fn parses_the_playable_formats_only() {
        assert_eq!(
            OutputFormat::parse("pcm_16000"),
            Some(OutputFormat::Pcm(16_000))
        );
        assert_eq!(
            OutputFormat::parse("pcm_22050"),
            Some(OutputFormat::Pcm(22_050))
        );
        assert_eq!(
            OutputFormat::parse("pcm_24000"),
            Some(OutputFormat::Pcm(24_000))
        );
        assert_eq!(
            OutputFormat::parse("pcm_44100"),
            Some(OutputFormat::Pcm(44_100))
        );
        assert_eq!(OutputFormat::parse("ulaw_8000"), Some(OutputFormat::Ulaw8k));
        for bad in [
            "mp3_44100_128",
            "pcm_8000",
            "pcm_",
            "PCM_16000",
            "ulaw_16000",
            "",
        ] {
            assert_eq!(OutputFormat::parse(bad), None, "{bad}");
        }
        assert_eq!(OutputFormat::Ulaw8k.rate(), 8_000);
        assert_eq!(OutputFormat::Pcm(24_000).rate(), 24_000);
    }

    #[test]
    fn odd_pcm_messages_carry_their_last_byte() {
        let samples: Vec<i16> = (0..50).map(|i| i * 613 - 15_000).collect();
        let bytes = pcm::to_le_bytes(&samples);
        // Cut at every odd and even place: the samples must come out whole and in order.
        for cuts in [
            vec![1, 2, 3],
            vec![7, 31, 33, 99],
            vec![0, 99, 100],
            vec![5, 5, 6],
        ] {
            let mut d = Decoder::new(OutputFormat::Pcm(16_000));
            let mut out = Vec::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                out.extend(d.decode(&bytes[at..cut]));
                at = cut;
            }
            assert_eq!(out, samples);
            assert!(!d.has_half_sample());
        }
        let mut d = Decoder::new(OutputFormat::Pcm(16_000));
        assert_eq!(d.decode(&[1, 0, 2]), vec![1]);
        assert!(d.has_half_sample());
        assert_eq!(d.decode(&[]), Vec::<i16>::new());
        assert_eq!(d.decode(&[0]), vec![2]);
    }

    #[test]
    fn ulaw_is_decoded_byte_by_byte() {
        let samples = [0i16, 1000, -1000, 8000];
        let bytes = g711::encode_ulaw(&samples);
        let mut d = Decoder::new(OutputFormat::Ulaw8k);
        let mut out = d.decode(&bytes[..1]);
        out.extend(d.decode(&bytes[1..]));
        assert_eq!(out, g711::decode_ulaw(&bytes));
        assert_eq!(out.len(), 4);
        assert!(!d.has_half_sample());
    }
}
