//! Cuts a turn's recording down to the caller's speech (plus a little silence either
//! side) with the WebRTC VAD: STT bills and waits for every second it gets, and an IVR
//! recording starts with the prompt's tail and ends with the silence that stopped it.

use voice_core::audio::vad::{SpeechModel, WebrtcModel};

use super::settings::TrimSettings;
use super::EngineError;

/// The part of `samples` (8 or 16 kHz) worth transcribing, or `None` when it holds less
/// voice than `min_speech_ms`.
pub fn speech_span(
    samples: &[i16],
    rate: u32,
    settings: &TrimSettings,
) -> Result<Option<std::ops::Range<usize>>, EngineError> {
    let mut vad = WebrtcModel::new(rate, settings.vad_mode)
        .map_err(|e| EngineError::BadAudio(e.to_string()))?;
    let frame = vad.window_samples();
    let mut first = None;
    let mut last = 0;
    let mut voiced = 0usize;
    for (i, window) in samples.chunks_exact(frame).enumerate() {
        let p = vad
            .speech_probability(window)
            .map_err(|e| EngineError::BadAudio(e.to_string()))?;
        if p >= 0.5 {
            first.get_or_insert(i * frame);
            last = (i + 1) * frame;
            voiced += frame;
        }
    }
    let Some(first) = first else { return Ok(None) };
    let ms = |n: u32| n as usize * rate as usize / 1000;
    if voiced < ms(settings.min_speech_ms) {
        return Ok(None);
    }
    let start = first.saturating_sub(ms(settings.leading_ms));
    let end = (last + ms(settings.trailing_ms)).min(samples.len());
    Ok(Some(start..end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, ms: u32) -> Vec<i16> {
        (0..rate * ms / 1000)
            .map(|i| {
                let t = i as f32 / rate as f32;
                // A voiced-like signal: a 150 Hz fundamental with harmonics.
                let s = (t * 150.0 * std::f32::consts::TAU).sin()
                    + 0.5 * (t * 300.0 * std::f32::consts::TAU).sin()
                    + 0.3 * (t * 450.0 * std::f32::consts::TAU).sin();
                (s * 6000.0) as i16
            })
            .collect()
    }

    #[test]
    fn speech_in_silence_keeps_the_padding_and_silence_is_none() {
        let rate = 16_000;
        let mut audio = vec![0i16; 16_000]; // 1 s
        let speech = voice_sim::speech::synthesize("Bom dia", voice_sim::speech::PT_BR, rate)
            .expect("espeak-ng");
        audio.extend_from_slice(&speech);
        audio.extend(vec![0i16; 32_000]); // 2 s
        let span = speech_span(&audio, rate, &TrimSettings::default())
            .unwrap()
            .expect("speech found");
        // About 200 ms before the speech (within a frame or two of VAD onset slack).
        assert!(
            (16_000 - 4800..=16_000 - 3200 + 640).contains(&span.start),
            "{span:?}"
        );
        let speech_end = 16_000 + speech.len();
        // The VAD's own hangover may hold "voice" up to ~200 ms past the end.
        assert!(
            span.end >= speech_end && span.end <= speech_end + 3200 + 3200,
            "{span:?} vs {speech_end}"
        );
        assert_eq!(
            speech_span(&[0; 16_000], rate, &TrimSettings::default()).unwrap(),
            None
        );
        // A click of 40 ms is less than min_speech_ms.
        let mut click = vec![0i16; 8000];
        click.extend(tone(8000, 40));
        click.extend(vec![0i16; 8000]);
        assert_eq!(
            speech_span(&click, 8000, &TrimSettings::default()).unwrap(),
            None
        );
        // A one-word answer is speech.
        let sim = voice_sim::speech::synthesize("Sim", voice_sim::speech::PT_BR, 8000).unwrap();
        let mut short = vec![0i16; 4000];
        short.extend_from_slice(&sim);
        short.extend(vec![0i16; 4000]);
        assert!(speech_span(&short, 8000, &TrimSettings::default())
            .unwrap()
            .is_some());
        assert!(matches!(
            speech_span(&audio, 22_050, &TrimSettings::default()),
            Err(EngineError::BadAudio(_))
        ));
    }
}
