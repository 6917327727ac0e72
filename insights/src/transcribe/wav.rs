//! Stereo recordings: how many channels a WAV has, and its channels as mono WAVs (for a
//! provider that cannot diarize by channel itself).

use voice_core::audio::wav;

/// Whether `content_type` names a WAV.
pub fn is_wav(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    matches!(
        mime.to_ascii_lowercase().as_str(),
        "audio/wav" | "audio/wave" | "audio/x-wav" | "audio/vnd.wave"
    )
}

/// The channel count of a WAV's header; `Err` when it does not parse as 16-bit PCM WAV.
pub fn channels(bytes: &[u8]) -> Result<u16, String> {
    wav::parse(bytes)
        .map(|w| w.channels)
        .map_err(|e| format!("unreadable WAV: {e}"))
}

/// Each channel of a multi-channel WAV as its own mono WAV, channel 0 first.
pub fn split_channels(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let parsed = wav::parse(bytes).map_err(|e| format!("unreadable WAV: {e}"))?;
    Ok((0..usize::from(parsed.channels))
        .map(|c| wav::encode(parsed.rate, 1, &parsed.channel(c)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_stereo_wav_into_its_channels() {
        let stereo = wav::encode(8000, 2, &[1, -1, 2, -2, 3, -3]);
        assert_eq!(channels(&stereo), Ok(2));
        let parts = split_channels(&stereo).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(wav::parse(&parts[1]).unwrap().samples, vec![-1, -2, -3]);
        assert!(channels(b"not a wav").is_err());
        assert!(is_wav("audio/wav; codecs=1") && !is_wav("audio/mpeg"));
    }
}
