//! The front end on real speech (the Smart Turn fixture, espeak-ng pt-BR) with the real
//! models (scripts/test runs models/fetch first).

use std::time::{Duration, Instant};

use voice_core::audio::turn::{TurnDetection, TurnSettings};
use voice_core::audio::vad::{VadEngine, VadSettings};
use voice_core::audio::Resampler;
use voice_sim::speech::{synthesize, PT_BR};

use super::*;
use crate::config::BridgeConfig;

/// pt-BR speech from espeak-ng, 16 kHz mono, trimmed to its audible part.
fn speak(text: &str) -> Vec<i16> {
    synthesize(text, PT_BR, 16000)
        .expect("espeak-ng installed (scripts/test installs it)")
        .to_vec()
}

fn models(vad: VadEngine, smart_turn: bool) -> FrontEndModels {
    let mut cfg = BridgeConfig::from_env(&[]).unwrap();
    cfg.agent.turn.detection = TurnDetection::Local;
    cfg.agent.turn.smart_turn = smart_turn;
    cfg.agent.vad.engine = vad;
    FrontEndModels::load(cfg.all_agents(), &voice_core::onnx::models_dir()).unwrap()
}

fn local_turns(smart_turn: bool) -> TurnSettings {
    TurnSettings {
        detection: TurnDetection::Local,
        smart_turn,
        ..TurnSettings::default()
    }
}

/// Feeds `audio` (at `rate`) in real-time 20 ms frames from `t0`, answering probes with
/// the real model at once; returns what was heard, with the frame time.
fn run(
    front_end: &mut FrontEnd,
    models: &FrontEndModels,
    audio: &[i16],
    rate: u32,
    t0: Instant,
) -> Vec<(Duration, Heard)> {
    let frame = rate as usize / 50;
    let mut out = Vec::new();
    let mut heard = Vec::new();
    for (i, chunk) in audio.chunks(frame).enumerate() {
        let now = t0 + Duration::from_millis(20 * (i as u64 + 1));
        front_end.push(chunk, now, &mut heard);
        for h in heard.drain(..) {
            if let Heard::Probe { probe, audio } = &h {
                let p = models.smart_turn.as_ref().unwrap().predict(audio).unwrap();
                if let Some(end) = front_end.verdict(*probe, p, now) {
                    out.push((now - t0, Heard::TurnEnded(end)));
                }
            }
            out.push((now - t0, h));
        }
    }
    out
}

fn with_silence(speech: &[i16], rate: u32, ms: usize) -> Vec<i16> {
    let mut audio = vec![0i16; rate as usize / 2];
    audio.extend_from_slice(speech);
    audio.extend(std::iter::repeat_n(0, rate as usize * ms / 1000));
    audio
}

/// The turn ends found in `heard`, with when they were decided.
fn turn_ends(heard: &[(Duration, Heard)]) -> Vec<(Duration, TurnEnd)> {
    heard
        .iter()
        .filter_map(|(at, h)| match h {
            Heard::TurnEnded(end) => Some((*at, end.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_sentence_with_a_comma_is_one_turn_ended_soon_after_the_last_word() {
    let models = models(VadEngine::Silero, true);
    for text in [
        "Olá, eu gostaria de marcar uma consulta para a próxima semana.",
        "Obrigada, era só isso.",
    ] {
        let speech = speak(text);
        let audio = with_silence(&speech, 16000, 1500);
        let speech_end = Duration::from_millis(500 + speech.len() as u64 * 1000 / 16000);
        let mut fe =
            FrontEnd::new(&models, 16000, &VadSettings::default(), &local_turns(true)).unwrap();
        let t0 = Instant::now();
        let heard = run(&mut fe, &models, &audio, 16000, t0);
        assert!(heard
            .iter()
            .any(|(_, h)| matches!(h, Heard::SpeechStarted { .. })));
        let ends = turn_ends(&heard);
        let when: Vec<_> = ends
            .iter()
            .map(|(at, e)| (at.as_millis(), e.reason))
            .collect();
        // One turn: the pause at the comma does not end it.
        assert_eq!(
            ends.len(),
            1,
            "{text}: speech ended at {speech_end:?}, turn ends {when:?}"
        );
        let (at, end) = &ends[0];
        assert_eq!(end.reason, "smart_turn");
        assert!(end.probability.unwrap() > 0.5);
        // min_silence_ms (200) plus a window or two; not a long VAD stop time.
        assert!(
            *at > speech_end && *at <= speech_end + Duration::from_millis(300),
            "{text}: decided at {at:?}, speech ended at {speech_end:?}"
        );
        // The VAD's estimate of the last word is close to the truth.
        let estimate = end.end_of_speech - t0;
        let error = estimate.as_millis().abs_diff(speech_end.as_millis());
        assert!(
            error <= 100,
            "end of speech estimated at {estimate:?}, truth {speech_end:?}"
        );
    }
}

#[test]
fn an_8khz_call_is_heard_at_16khz() {
    let models = models(VadEngine::Silero, true);
    let mut down = Resampler::new(16000, 8000).unwrap();
    let mut speech = Vec::new();
    down.process(&speak("Pode ser na terça-feira de manhã?"), &mut speech);
    let audio = with_silence(&speech, 8000, 1000);
    let mut fe = FrontEnd::new(&models, 8000, &VadSettings::default(), &local_turns(true)).unwrap();
    let heard = run(&mut fe, &models, &audio, 8000, Instant::now());
    assert!(
        heard
            .iter()
            .any(|(_, h)| matches!(h, Heard::TurnEnded(e) if e.reason == "smart_turn")),
        "{heard:?}"
    );
}

#[test]
fn without_smart_turn_the_probe_pause_ends_the_turn() {
    let models = models(VadEngine::Webrtc, false);
    let turn = TurnSettings {
        min_silence_ms: 600,
        ..local_turns(false)
    };
    let vad = VadSettings {
        engine: VadEngine::Webrtc,
        ..VadSettings::default()
    };
    let speech = speak("Olá, eu gostaria de marcar uma consulta.");
    let mut fe = FrontEnd::new(&models, 16000, &vad, &turn).unwrap();
    let heard = run(
        &mut fe,
        &models,
        &with_silence(&speech, 16000, 1500),
        16000,
        Instant::now(),
    );
    assert!(!heard.iter().any(|(_, h)| matches!(h, Heard::Probe { .. })));
    let reasons: Vec<_> = heard
        .iter()
        .filter_map(|(_, h)| match h {
            Heard::TurnEnded(e) => Some(e.reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, vec!["silence"]);
}

#[test]
fn a_stale_verdict_is_ignored() {
    let models = models(VadEngine::Silero, true);
    let mut fe =
        FrontEnd::new(&models, 16000, &VadSettings::default(), &local_turns(true)).unwrap();
    assert_eq!(
        fe.verdict(1, 0.99, Instant::now()),
        None,
        "no probe was asked"
    );
}

#[test]
fn a_missing_model_is_a_setup_error_not_a_panic() {
    let none = FrontEndModels::default();
    let err = FrontEnd::new(&none, 16000, &VadSettings::default(), &local_turns(true))
        .err()
        .unwrap();
    assert!(err.to_string().contains("Silero"), "{err}");
    let webrtc = VadSettings {
        engine: VadEngine::Webrtc,
        ..VadSettings::default()
    };
    let err = FrontEnd::new(&none, 16000, &webrtc, &local_turns(true))
        .err()
        .unwrap();
    assert!(err.to_string().contains("Smart Turn"), "{err}");
}
