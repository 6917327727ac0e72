//! Whole-call transcription against the protocol-faithful fakes of Deepgram and OpenAI.

use bytes::Bytes;
use call_insights::transcribe::{
    Audio, Provider, TranscribeError, TranscribeSettings, Transcriber,
};
use voice_core::audio::wav;
use voice_core::config::Secret;
use voice_sim::fake_deepgram::{self, FakeDeepgram, FakeDeepgramConfig, RecordedUtterance};
use voice_sim::fake_openai_audio::{self, FakeOpenAiAudio, FakeOpenAiAudioConfig, ScriptedSegment};

const RATE: u32 = 16_000;

/// `secs` of a 440 Hz tone on every channel (the fakes script what is "said").
fn tone_wav(channels: u16, secs: u32) -> Audio {
    let frames = (RATE * secs) as usize;
    let mut samples = Vec::with_capacity(frames * usize::from(channels));
    for i in 0..frames {
        let s =
            ((i as f64 * 440.0 * std::f64::consts::TAU / f64::from(RATE)).sin() * 8000.0) as i16;
        for _ in 0..channels {
            samples.push(s);
        }
    }
    Audio {
        bytes: Bytes::from(wav::encode(RATE, channels, &samples)),
        content_type: "audio/wav".into(),
    }
}

fn settings(dg: &FakeDeepgram, oa: &FakeOpenAiAudio) -> TranscribeSettings {
    let mut s = TranscribeSettings::default();
    s.deepgram.url = format!("http://{}", dg.addr());
    s.deepgram.api_key = Secret::new(dg.api_key());
    s.deepgram.timeout_secs = 1;
    s.openai.url = oa.url();
    s.openai.api_key = Secret::new(oa.api_key());
    s.openai.timeout_secs = 1;
    s
}

async fn fakes(openai_script: Vec<ScriptedSegment>) -> (FakeDeepgram, FakeOpenAiAudio) {
    let dg = FakeDeepgram::start(FakeDeepgramConfig {
        final_delay_ms: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    let oa = FakeOpenAiAudio::start(FakeOpenAiAudioConfig {
        recording: openai_script,
        ..Default::default()
    })
    .await
    .unwrap();
    (dg, oa)
}

fn dialogue() -> Vec<RecordedUtterance> {
    vec![
        RecordedUtterance::new(0, 200, 1200, "Olá, bom dia."),
        RecordedUtterance::new(1, 1400, 2600, "Bom dia, em que posso ajudar?"),
        RecordedUtterance::new(0, 2800, 3800, "Quero um orçamento."),
    ]
}

#[tokio::test]
async fn deepgram_mono_is_diarized_by_voice() {
    let (dg, oa) = fakes(vec![]).await;
    dg.set_recording(dialogue()).unwrap();
    let t = Transcriber::from_settings(&settings(&dg, &oa)).unwrap();
    let out = t.transcribe(&tone_wav(1, 4)).await.unwrap();
    assert_eq!(out.provider, "deepgram");
    assert_eq!(out.language, "pt-BR");
    let speakers: Vec<u32> = out.utterances.iter().map(|u| u.speaker).collect();
    assert_eq!(speakers, vec![0, 1, 0]);
    assert_eq!(out.utterances[1].text, "Bom dia, em que posso ajudar?");
    assert_eq!(
        out.text,
        "Olá, bom dia.\nBom dia, em que posso ajudar?\nQuero um orçamento."
    );
    assert!(!out.words.is_empty());
    assert!(out.words.iter().all(|w| w.speaker.is_some()));
    assert!(out.words.iter().any(|w| w.speaker == Some(1)));
    let q = dg.stats().last_query;
    for (k, v) in [
        ("language", "pt-BR"),
        ("diarize", "true"),
        ("utterances", "true"),
        ("punctuate", "true"),
        ("smart_format", "true"),
        ("model", "nova-3"),
    ] {
        assert_eq!(q.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert!(!q.contains_key("multichannel"));
    assert_eq!(oa.stats().transcriptions, 0);
}

#[tokio::test]
async fn deepgram_stereo_uses_multichannel_and_channel_is_speaker() {
    let (dg, oa) = fakes(vec![]).await;
    // Diarized speakers deliberately disagree with channels: the channel must win.
    dg.set_recording(vec![
        RecordedUtterance::new(5, 200, 1200, "Alô?").on_channel(0),
        RecordedUtterance::new(5, 1400, 2600, "Aqui é da loja.").on_channel(1),
    ])
    .unwrap();
    let t = Transcriber::from_settings(&settings(&dg, &oa)).unwrap();
    let out = t.transcribe(&tone_wav(2, 3)).await.unwrap();
    let q = dg.stats().last_query;
    assert_eq!(q.get("multichannel").map(String::as_str), Some("true"));
    assert!(!q.contains_key("diarize"));
    let got: Vec<(u32, &str)> = out
        .utterances
        .iter()
        .map(|u| (u.speaker, u.text.as_str()))
        .collect();
    assert_eq!(got, vec![(0, "Alô?"), (1, "Aqui é da loja.")]);
    assert!(out.words.iter().any(|w| w.speaker == Some(1)));
}

#[tokio::test]
async fn deepgram_failure_falls_back_to_openai_diarized() {
    let script = vec![
        ScriptedSegment::new("A", 0, 1000, "Olá."),
        ScriptedSegment::new("B", 1000, 2000, "Oi, tudo bem?"),
    ];
    for fault in [
        fake_deepgram::Fault::Refuse(500),
        fake_deepgram::Fault::Hang,
    ] {
        let (dg, oa) = fakes(script.clone()).await;
        dg.set_fault(fault.clone());
        let t = Transcriber::from_settings(&settings(&dg, &oa)).unwrap();
        let out = t.transcribe(&tone_wav(1, 2)).await.unwrap();
        assert_eq!(out.provider, "openai", "{fault:?}");
        assert_eq!(out.language, "pt-BR");
        let got: Vec<(u32, &str)> = out
            .utterances
            .iter()
            .map(|u| (u.speaker, u.text.as_str()))
            .collect();
        assert_eq!(got, vec![(0, "Olá."), (1, "Oi, tudo bem?")]);
        let stats = oa.stats();
        assert_eq!(stats.languages, vec![Some("pt".to_string())]);
        assert_eq!(stats.response_formats, vec!["diarized_json".to_string()]);
    }
}

#[tokio::test]
async fn openai_splits_stereo_and_channel_is_speaker() {
    let (dg, oa) = fakes(vec![ScriptedSegment::new("A", 100, 900, "Pois não.")]).await;
    let mut s = settings(&dg, &oa);
    s.order = vec![Provider::OpenAi];
    let t = Transcriber::from_settings(&s).unwrap();
    assert_eq!(t.providers(), vec!["openai"]);
    let out = t.transcribe(&tone_wav(2, 2)).await.unwrap();
    let stats = oa.stats();
    assert_eq!(stats.transcriptions, 2, "one request per channel");
    let speakers: Vec<u32> = out.utterances.iter().map(|u| u.speaker).collect();
    assert_eq!(speakers, vec![0, 1]);
    assert_eq!(out.text, "Pois não.\nPois não.");
}

#[tokio::test]
async fn whisper_fallback_reads_segments_and_words() {
    let (dg, oa) = fakes(vec![ScriptedSegment::new(
        "A",
        100,
        900,
        "Bom dia a todos.",
    )])
    .await;
    let mut s = settings(&dg, &oa);
    s.order = vec![Provider::OpenAi];
    s.openai.model = "whisper-1".into();
    let out = Transcriber::from_settings(&s)
        .unwrap()
        .transcribe(&tone_wav(1, 1))
        .await
        .unwrap();
    assert_eq!(
        oa.stats().response_formats,
        vec!["verbose_json".to_string()]
    );
    assert_eq!(out.utterances.len(), 1);
    assert_eq!(out.utterances[0].speaker, 0);
    assert_eq!(out.words.len(), 4);
}

#[tokio::test]
async fn all_failing_transiently_is_retryable_and_hides_keys() {
    let (dg, oa) = fakes(vec![]).await;
    dg.set_fault(fake_deepgram::Fault::Refuse(503));
    oa.set_fault(fake_openai_audio::Fault::Refuse(429));
    let t = Transcriber::from_settings(&settings(&dg, &oa)).unwrap();
    let err = t.transcribe(&tone_wav(1, 1)).await.unwrap_err();
    assert!(matches!(err, TranscribeError::Retryable(_)), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("deepgram") && text.contains("openai"),
        "{text}"
    );
    assert!(!text.contains(&dg.api_key()) && !text.contains(&oa.api_key()));
}

#[tokio::test]
async fn wrong_keys_and_malformed_answers_are_permanent_without_the_key() {
    let (dg, oa) = fakes(vec![]).await;
    let mut s = settings(&dg, &oa);
    s.deepgram.api_key = Secret::new("dg-wrong-secret-123");
    oa.set_fault(fake_openai_audio::Fault::MalformedJson);
    let err = Transcriber::from_settings(&s)
        .unwrap()
        .transcribe(&tone_wav(1, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, TranscribeError::Permanent(_)), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("dg-wrong-secret-123") && !text.contains(&oa.api_key()));
}

#[tokio::test]
async fn unreadable_wav_is_permanent() {
    let (dg, oa) = fakes(vec![]).await;
    let t = Transcriber::from_settings(&settings(&dg, &oa)).unwrap();
    let junk = Audio {
        bytes: Bytes::from_static(b"RIFF\x00\x00\x00\x00WAVEjunk"),
        content_type: "audio/wav".into(),
    };
    let err = t.transcribe(&junk).await.unwrap_err();
    assert!(matches!(err, TranscribeError::Permanent(_)), "{err:?}");
}

#[tokio::test]
async fn provider_without_key_is_skipped() {
    // This binary's other tests always configure keys, so the environment is ours.
    std::env::remove_var("DEEPGRAM_API_KEY");
    std::env::remove_var("OPENAI_API_KEY");
    let (dg, oa) = fakes(vec![ScriptedSegment::new("A", 0, 500, "Oi.")]).await;
    let mut s = settings(&dg, &oa);
    s.deepgram.api_key = Secret::default();
    let t = Transcriber::from_settings(&s).unwrap();
    assert_eq!(t.providers(), vec!["openai"]);
    let out = t.transcribe(&tone_wav(1, 1)).await.unwrap();
    assert_eq!(out.provider, "openai");
    assert_eq!(dg.stats().prerecorded_requests, 0);

    s.openai.api_key = Secret::default();
    assert!(matches!(
        Transcriber::from_settings(&s),
        Err(TranscribeError::Config(_))
    ));
}

#[test]
fn settings_parse_from_toml_and_refuse_unknown_keys() {
    let s: TranscribeSettings = toml::from_str(
        "order = [\"openai\", \"deepgram\"]\n[deepgram]\nmodel = \"nova-2-phonecall\"\n",
    )
    .unwrap();
    assert_eq!(s.order, vec![Provider::OpenAi, Provider::Deepgram]);
    assert_eq!(s.language, "pt-BR");
    assert_eq!(s.deepgram.model, "nova-2-phonecall");
    assert_eq!(s.openai.model, "gpt-4o-transcribe-diarize");
    assert!(toml::from_str::<TranscribeSettings>("lang = \"pt\"").is_err());
}
