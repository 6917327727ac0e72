//! The WAV container for 16-bit PCM: the canonical 44-byte header our writers use, and a
//! reader for what espeak-ng, sox and our recorder produce.

/// Length of the canonical header [`header`] writes.
pub const HEADER_LEN: usize = 44;
/// Offsets of the two size fields a growing file rewrites.
pub const RIFF_SIZE_AT: u64 = 4;
pub const DATA_SIZE_AT: u64 = 40;

/// The RIFF chunk size of a canonical file holding `data` bytes of samples.
pub fn riff_size(data: u64) -> u32 {
    (HEADER_LEN as u64 - 8 + data) as u32
}

/// A canonical header: one `fmt ` chunk (PCM, 16 bits) and a `data` chunk of `data` bytes.
pub fn header(rate: u32, channels: u16, data: u32) -> [u8; HEADER_LEN] {
    let block_align = channels * 2;
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&riff_size(u64::from(data)).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&rate.to_le_bytes());
    h[28..32].copy_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes()); // bits per sample
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data.to_le_bytes());
    h
}

/// A whole mono or interleaved 16-bit PCM file in memory (an upload to a transcription
/// API). Data past the 4 GiB the header can state is cut off.
pub fn encode(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
    let max_samples = (u32::MAX as usize - HEADER_LEN) / 2;
    let samples = &samples[..samples.len().min(max_samples)];
    let data = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(HEADER_LEN + samples.len() * 2);
    out.extend_from_slice(&header(rate, channels, data));
    super::pcm::write_le(samples, &mut out);
    out
}

/// A parsed 16-bit PCM WAV.
#[derive(Debug, Clone, PartialEq)]
pub struct Wav {
    pub rate: u32,
    pub channels: u16,
    /// Interleaved samples.
    pub samples: Vec<i16>,
}

impl Wav {
    /// The samples of channel `index` (0 = left).
    pub fn channel(&self, index: usize) -> Vec<i16> {
        let n = usize::from(self.channels.max(1));
        self.samples
            .iter()
            .skip(index)
            .step_by(n)
            .copied()
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WavError {
    #[error("not a WAV file")]
    NotWav,
    #[error("truncated fmt chunk")]
    TruncatedFmt,
    #[error("expected 16-bit PCM, got {0} bits")]
    Bits(u16),
    #[error("WAV data before fmt")]
    DataBeforeFmt,
    #[error("WAV has no data chunk")]
    NoData,
}

/// Parses a 16-bit PCM WAV, walking its chunks. A data size larger than the file (espeak-ng
/// writes 0xFFFFFFFF when streaming to stdout; a recording cut by a crash) runs to the end.
pub fn parse(bytes: &[u8]) -> Result<Wav, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWav);
    }
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let mut pos = 12;
    let mut format = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32_at(pos + 4) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            if body + 16 > bytes.len() {
                return Err(WavError::TruncatedFmt);
            }
            let bits = u16_at(body + 14);
            if bits != 16 {
                return Err(WavError::Bits(bits));
            }
            format = Some((u32_at(body + 4), u16_at(body + 2)));
        } else if id == b"data" {
            let (rate, channels) = format.ok_or(WavError::DataBeforeFmt)?;
            let end = body.saturating_add(len).min(bytes.len());
            return Ok(Wav {
                rate,
                channels,
                samples: super::pcm::from_le_bytes(&bytes[body..end]),
            });
        }
        pos = body.saturating_add(len + (len & 1));
    }
    Err(WavError::NoData)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_header_parses_back() {
        let mut bytes = header(16000, 2, 8).to_vec();
        bytes.extend_from_slice(&[1, 0, 2, 0, 3, 0, 4, 0]);
        let wav = parse(&bytes).unwrap();
        assert_eq!((wav.rate, wav.channels), (16000, 2));
        assert_eq!(wav.channel(0), vec![1, 3]);
        assert_eq!(wav.channel(1), vec![2, 4]);
    }

    #[test]
    fn an_encoded_file_parses_back() {
        let bytes = encode(8000, 1, &[1, -2, 3]);
        assert_eq!(bytes.len(), HEADER_LEN + 6);
        let wav = parse(&bytes).unwrap();
        assert_eq!((wav.rate, wav.channels), (8000, 1));
        assert_eq!(wav.samples, vec![1, -2, 3]);
        assert_eq!(
            parse(&encode(16000, 1, &[])).unwrap().samples,
            Vec::<i16>::new()
        );
    }

    #[test]
    fn a_streamed_size_runs_to_the_end_and_bad_files_are_errors() {
        let mut bytes = header(8000, 1, u32::MAX).to_vec();
        bytes.extend_from_slice(&[5, 0, 6, 0]);
        assert_eq!(parse(&bytes).unwrap().samples, vec![5, 6]);
        assert_eq!(
            parse(b"RIFF\0\0\0\0WAVEdata\x04\0\0\0abcd"),
            Err(WavError::DataBeforeFmt)
        );
        assert_eq!(parse(b"not a wav"), Err(WavError::NotWav));
        let mut eight_bit = header(8000, 1, 0);
        eight_bit[34] = 8;
        assert_eq!(parse(&eight_bit), Err(WavError::Bits(8)));
    }
}
