//! The `output_format`s the fake speaks (providers.md §3.1): raw PCM16 at a few rates and
//! G.711 μ-law. The mp3 ones are refused: the fake has no encoder, and the clients here
//! never ask for them.

use crate::fake_common::encoding::Encoding;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// `pcm_<rate>`: PCM16 LE mono.
    Pcm(u32),
    /// `ulaw_8000`.
    Ulaw8k,
}

impl OutputFormat {
    /// `None` for names the fake does not speak.
    pub fn parse(name: &str) -> Option<Self> {
        if name == "ulaw_8000" {
            return Some(Self::Ulaw8k);
        }
        let rate: u32 = name.strip_prefix("pcm_")?.parse().ok()?;
        [8_000, 16_000, 22_050, 24_000, 44_100]
            .contains(&rate)
            .then_some(Self::Pcm(rate))
    }

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

    pub(crate) fn encoding(self) -> Encoding {
        match self {
            Self::Pcm(_) => Encoding::Pcm16,
            Self::Ulaw8k => Encoding::Ulaw,
        }
    }

    /// Bytes per millisecond on the wire (pcm_16000: 32, ulaw_8000: 8).
    pub fn bytes_per_ms(self) -> f64 {
        f64::from(self.rate()) / 1000.0 * self.encoding().bytes_per_sample() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_rates_and_sizes() {
        for name in [
            "pcm_16000",
            "pcm_22050",
            "pcm_24000",
            "pcm_44100",
            "ulaw_8000",
        ] {
            assert_eq!(OutputFormat::parse(name).unwrap().name(), name);
        }
        for bad in ["mp3_44100_128", "pcm_12000", "ulaw_16000", ""] {
            assert_eq!(OutputFormat::parse(bad), None, "{bad}");
        }
        assert_eq!(OutputFormat::Pcm(16_000).bytes_per_ms(), 32.0);
        assert_eq!(OutputFormat::Ulaw8k.bytes_per_ms(), 8.0);
        assert_eq!(OutputFormat::Pcm(24_000).bytes_per_ms(), 48.0);
    }
}
