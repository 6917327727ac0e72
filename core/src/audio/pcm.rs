//! L16 (signed 16-bit little-endian PCM) conversion and channel handling.

/// Appends the little-endian bytes of `samples` to `out`.
pub fn write_le(samples: &[i16], out: &mut Vec<u8>) {
    out.reserve(samples.len() * 2);
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

/// Little-endian bytes of `samples`.
pub fn to_le_bytes(samples: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 2);
    write_le(samples, &mut out);
    out
}

/// Decodes little-endian L16. A trailing odd byte is ignored (callers validate lengths).
pub fn from_le_bytes(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// L16 that arrives in pieces cut anywhere (HTTP body chunks, WebSocket messages): a
/// piece may end in the middle of a sample, and that byte is kept for the next piece,
/// never dropped, or every later sample would be shifted by a byte (loud noise).
#[derive(Debug, Default)]
pub struct SplitL16 {
    /// First byte of a sample whose second byte is in the next piece.
    half: Option<u8>,
}

impl SplitL16 {
    /// The samples `bytes` completes (maybe none).
    pub fn decode(&mut self, bytes: &[u8]) -> Vec<i16> {
        let mut out = Vec::with_capacity(bytes.len() / 2 + 1);
        let mut rest = bytes;
        if let (Some(lo), Some((&hi, tail))) = (self.half, rest.split_first()) {
            out.push(i16::from_le_bytes([lo, hi]));
            self.half = None;
            rest = tail;
        }
        let pairs = rest.chunks_exact(2);
        if let [last] = pairs.remainder() {
            self.half = Some(*last);
        }
        out.extend(pairs.map(|b| i16::from_le_bytes([b[0], b[1]])));
        out
    }

    /// Half a sample is waiting for its second byte (a stream should not end like that).
    pub fn has_half(&self) -> bool {
        self.half.is_some()
    }

    /// Starts a new stream; true when half a sample was left over from the last one.
    pub fn reset(&mut self) -> bool {
        self.half.take().is_some()
    }
}

/// Left channel (the caller, for mod_audio_stream/mod_audio_fork stereo) of interleaved L16.
pub fn left_of_stereo_le(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(4)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Root-mean-square level of a block of samples (0 for an empty block).
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| (s as f64) * (s as f64)).sum();
    (sum / samples.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_le_bytes() {
        let s = [0i16, 1, -1, i16::MAX, i16::MIN, 1234];
        assert_eq!(from_le_bytes(&to_le_bytes(&s)), s);
    }

    #[test]
    fn takes_left_channel() {
        let interleaved = to_le_bytes(&[1, -1, 2, -2, 3, -3]);
        assert_eq!(left_of_stereo_le(&interleaved), vec![1, 2, 3]);
    }

    #[test]
    fn rms_of_constant() {
        assert_eq!(rms(&[100, -100, 100, -100]), 100.0);
        assert_eq!(rms(&[]), 0.0);
    }
}
