//! Test speech made with espeak-ng: caller utterances and scripted agent replies.
//!
//! espeak-ng writes a 22.05 kHz mono WAV to stdout; we parse it, trim the silence at both
//! ends (so "end of speech" is a precise instant), and resample to the rate asked for.
//! Results are cached per process: a load test renders each phrase once.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{bail, Context};
use voice_core::audio::Resampler;

/// Brazilian Portuguese voice of espeak-ng.
pub const PT_BR: &str = "pt-br";

type Cache = Mutex<HashMap<(String, String, u32), Arc<Vec<i16>>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Speaks `text` with espeak-ng `voice`, as mono PCM16 at `rate`, silence trimmed.
pub fn synthesize(text: &str, voice: &str, rate: u32) -> anyhow::Result<Arc<Vec<i16>>> {
    let key = (text.to_string(), voice.to_string(), rate);
    if let Some(hit) = cache().lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(hit);
    }
    let output = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "165", "--stdout", text])
        .output()
        .context("running espeak-ng (install it: apt-get install espeak-ng)")?;
    if !output.status.success() {
        bail!(
            "espeak-ng failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let (wav_rate, samples) = parse_wav(&output.stdout)?;
    // Cut where the voice is clearly audible: the end of speech is then one sharp instant
    // that every VAD (and the load tool) places at the same sample.
    let trimmed = trim_silence(&samples, 1000);
    let mut resampler = Resampler::new(wav_rate, rate)?;
    let mut out = Vec::with_capacity(trimmed.len() * rate as usize / wav_rate as usize + 64);
    resampler.process(trimmed, &mut out);
    resampler.flush(&mut out);
    let audio = Arc::new(out);
    if let Ok(mut c) = cache().lock() {
        c.insert(key, audio.clone());
    }
    Ok(audio)
}

/// Parses a PCM16 mono WAV: (sample rate, samples). espeak-ng writes an unknown data
/// length (0xFFFFFFFF) when streaming to stdout, so the data chunk runs to the end.
pub fn parse_wav(bytes: &[u8]) -> anyhow::Result<(u32, Vec<i16>)> {
    let wav = voice_core::audio::wav::parse(bytes)?;
    if wav.channels != 1 {
        bail!("expected a mono WAV, got {} channels", wav.channels);
    }
    Ok((wav.rate, wav.samples))
}

/// The part of `samples` between the first and last sample louder than `threshold`.
pub fn trim_silence(samples: &[i16], threshold: i16) -> &[i16] {
    let loud = |s: &i16| s.unsigned_abs() > threshold as u16;
    let start = samples.iter().position(loud).unwrap_or(0);
    let end = samples.iter().rposition(loud).map_or(start, |i| i + 1);
    &samples[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaks_portuguese_at_the_asked_rate() {
        let a = synthesize("Olá, eu gostaria de marcar uma consulta.", PT_BR, 16000).unwrap();
        let secs = a.len() as f64 / 16000.0;
        assert!((1.0..6.0).contains(&secs), "{secs} s");
        assert!(voice_core::audio::pcm::rms(&a) > 500.0);
        // Trimmed: it starts and ends with sound, not silence.
        assert!(a[..160].iter().any(|s| s.unsigned_abs() > 300));
        let b = synthesize("Olá, eu gostaria de marcar uma consulta.", PT_BR, 8000).unwrap();
        assert!((b.len() as f64 / 8000.0 - secs).abs() < 0.05);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_wav(b"nope").is_err());
        assert!(parse_wav(b"RIFF\0\0\0\0WAVEdata\x04\0\0\0abcd").is_err());
    }
}
