//! Piper tests. The ones that synthesize use the real `en_US-joe-medium` voice that
//! `models/fetch` puts in `models/piper/` (scripts/test fetches it first); without it they
//! fail and say so.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::time::timeout;

use super::*;
use crate::providers::tts::TtsEvent;

const JOE: &str = "piper/en_US-joe-medium.onnx";
const EVENT_WAIT: Duration = Duration::from_secs(20);

fn models() -> PathBuf {
    onnx::models_dir()
}

fn joe_config() -> PiperConfig {
    let config = PiperConfig {
        model: JOE.into(),
        ..PiperConfig::default()
    };
    let (model, json) = config.paths(&models());
    assert!(
        model.is_file() && json.is_file(),
        "Piper test voice missing at {}: run models/fetch",
        model.display()
    );
    config
}

/// One loaded test voice for the tests that only read from it.
fn joe() -> &'static PiperTts {
    static VOICE: OnceLock<PiperTts> = OnceLock::new();
    VOICE.get_or_init(|| PiperTts::load(&joe_config(), &models()).expect("load the joe voice"))
}

fn joe_json() -> serde_json::Value {
    let (_, json) = joe_config().paths(&models());
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

/// `phoneme_id_map` of an inline voice file with these extra entries.
fn inline_map(extra: &[(&str, i64)], phoneme_map: Option<&str>) -> IdMap {
    let mut entries = vec![
        ("_".to_string(), 0),
        ("^".to_string(), 1),
        ("$".to_string(), 2),
        (" ".to_string(), 3),
    ];
    entries.extend(extra.iter().map(|(p, id)| (p.to_string(), *id)));
    let map: serde_json::Map<String, serde_json::Value> = entries
        .into_iter()
        .map(|(p, id)| (p, serde_json::json!([id])))
        .collect();
    let mut json = serde_json::json!({
        "audio": {"sample_rate": 22050},
        "espeak": {"voice": "pt-br"},
        "phoneme_id_map": map,
    });
    if let Some(phoneme_map) = phoneme_map {
        json["phoneme_map"] = serde_json::from_str(phoneme_map).unwrap();
    }
    Voice::parse(&json.to_string()).unwrap().ids
}

fn no_missing(p: char) {
    panic!("unexpected missing phoneme {p:?}");
}

fn rms(pcm: &[i16]) -> f64 {
    let sum: f64 = pcm.iter().map(|&s| f64::from(s).powi(2)).sum();
    (sum / pcm.len().max(1) as f64).sqrt()
}

/// Audio events of one stream until `Done`, one `Vec` per sentence.
async fn collect(audio: &mut mpsc::Receiver<TtsEvent>) -> Vec<Vec<i16>> {
    let mut sentences = Vec::new();
    loop {
        match timeout(EVENT_WAIT, audio.recv()).await {
            Ok(Some(TtsEvent::Audio(pcm))) => sentences.push(pcm),
            Ok(Some(TtsEvent::Done)) => return sentences,
            other => panic!("expected audio or Done, got {other:?}"),
        }
    }
}

/// Sends `pieces` on one stream, closes it, and collects the audio.
async fn speak(tts: &PiperTts, pieces: &[&str]) -> Vec<Vec<i16>> {
    let TtsStream { text, mut audio } = tts.open().await.unwrap();
    for piece in pieces {
        text.send(piece.to_string()).await.unwrap();
    }
    drop(text);
    collect(&mut audio).await
}

// ---- ids -------------------------------------------------------------------------------

#[test]
fn ids_follow_the_canonical_layout() {
    let map = inline_map(&[("a", 10), ("b", 11), (".", 12)], None);
    // ^ _ a _ space _ b _ . _ $
    assert_eq!(
        map.sentence_ids("a b.", &mut no_missing),
        vec![1, 0, 10, 0, 3, 0, 11, 0, 12, 0, 2]
    );
    assert_eq!(map.sentence_ids("", &mut no_missing), vec![1, 0, 2]);
}

#[test]
fn nfd_splits_combining_marks_into_their_own_ids() {
    let map = inline_map(&[("a", 10), ("\u{303}", 141)], None);
    // Precomposed ã (U+00E3) and a + U+0303 give the same ids: base, PAD, tilde, PAD.
    let expected = vec![1, 0, 10, 0, 141, 0, 2];
    assert_eq!(map.sentence_ids("\u{e3}", &mut no_missing), expected);
    assert_eq!(map.sentence_ids("a\u{303}", &mut no_missing), expected);
}

#[test]
fn phoneme_map_substitutes_before_the_lookup() {
    // A pt-br voice without `phoneme_map` gets piper-phonemize's default c → k.
    let map = inline_map(&[("k", 20), ("c", 21)], None);
    assert_eq!(map.sentence_ids("c", &mut no_missing), vec![1, 0, 20, 0, 2]);
    // A file's own map wins, and one phoneme may become several.
    let map = inline_map(
        &[("k", 20), ("s", 22), ("c", 21)],
        Some(r#"{"c": ["k", "s"]}"#),
    );
    assert_eq!(
        map.sentence_ids("c", &mut no_missing),
        vec![1, 0, 20, 0, 22, 0, 2]
    );
    let map = inline_map(&[("k", 20), ("c", 21)], Some("{}"));
    assert_eq!(map.sentence_ids("c", &mut no_missing), vec![1, 0, 21, 0, 2]);
}

#[test]
fn unknown_phonemes_are_skipped_and_reported() {
    let map = inline_map(&[("a", 10)], None);
    let mut missing = Vec::new();
    let ids = map.sentence_ids("aza", &mut |p| missing.push(p));
    assert_eq!(ids, vec![1, 0, 10, 0, 10, 0, 2]);
    assert_eq!(missing, vec!['z']);
}

// ---- voice file --------------------------------------------------------------------------

#[test]
fn voice_files_are_validated() {
    let ok = r#"{"audio":{"sample_rate":16000},"espeak":{"voice":"en-us"},
        "phoneme_id_map":{"_":[0],"^":[1],"$":[2],"a":[5]},"num_symbols":10,"extra":1}"#;
    let voice = Voice::parse(ok).unwrap();
    assert_eq!(voice.sample_rate, 16000);
    assert_eq!(voice.phoneme_type, PhonemeType::Espeak);
    assert_eq!(
        (voice.noise_scale, voice.length_scale, voice.noise_w),
        (0.667, 1.0, 0.8)
    );
    assert_eq!(voice.ids.get('a'), Some(&[5][..]));

    let cases = [
        (
            r#"{"espeak":{"voice":"en-us"},"phoneme_id_map":{}}"#,
            "sample_rate",
        ),
        (
            r#"{"audio":{"sample_rate":16000},"phoneme_id_map":{"_":[0],"^":[1],"$":[2]}}"#,
            "espeak.voice",
        ),
        (
            r#"{"audio":{"sample_rate":16000},"espeak":{"voice":"en-us"}}"#,
            "phoneme_id_map is missing",
        ),
        (
            r#"{"audio":{"sample_rate":16000},"espeak":{"voice":"en-us"},"phoneme_id_map":{"^":[1],"$":[2]}}"#,
            "'_'",
        ),
        (
            r#"{"audio":{"sample_rate":16000},"espeak":{"voice":"en-us"},"phoneme_id_map":{"_":[0],"^":[1],"$":[2],"ab":[4]}}"#,
            "\"ab\" is not one codepoint",
        ),
        (
            r#"{"audio":{"sample_rate":16000},"espeak":{"voice":"en-us"},"phoneme_id_map":{"_":[0],"^":[1],"$":[2],"a":[12]},"num_symbols":10}"#,
            "outside 0..10",
        ),
        (
            r#"{"audio":{"sample_rate":16000},"phoneme_type":"pinyin","phoneme_id_map":{"_":[0],"^":[1],"$":[2]}}"#,
            "pinyin",
        ),
        (
            r#"{"audio":{"sample_rate":16000},"espeak":{"voice":"en-us"},"phoneme_id_map":{"_":[0],"^":[1],"$":[2]},"inference":{"length_scale":0}}"#,
            "length_scale",
        ),
        (
            r#"{"audio":{"sample_rate":16000},"espeak":{"voice":"en-us"},"phoneme_id_map":{"_":[0],"^":[1],"$":[2]},"num_speakers":2,"speaker_id_map":{"x":5}}"#,
            "outside 0..2",
        ),
        ("not json", "invalid JSON"),
    ];
    for (json, needle) in cases {
        let err = Voice::parse(json).unwrap_err();
        assert!(err.contains(needle), "{json}: {err}");
    }
}

#[test]
fn speakers_are_chosen_by_name_or_number() {
    let json = r#"{"audio":{"sample_rate":22050},"espeak":{"voice":"en-us"},
        "phoneme_id_map":{"_":[0],"^":[1],"$":[2]},"num_speakers":3,
        "speaker_id_map":{"ana":2,"bia":1}}"#;
    let voice = Voice::parse(json).unwrap();
    assert_eq!(voice.speaker_id(None), Ok(0));
    assert_eq!(voice.speaker_id(Some("bia")), Ok(1));
    assert_eq!(voice.speaker_id(Some("2")), Ok(2));
    assert!(voice.speaker_id(Some("3")).unwrap_err().contains("below 3"));
    assert!(voice.speaker_id(Some("carla")).is_err());
}

// ---- clauses and sentences ----------------------------------------------------------------

#[test]
fn clauses_end_at_punctuation_followed_by_a_space() {
    let clauses = split_clauses("Olá, tudo bem? Custa 3.5 reais: ok!? \"Sim.\" Fim");
    let got: Vec<(&str, &str, Option<char>)> =
        clauses.iter().map(|c| (c.text, c.words, c.end)).collect();
    assert_eq!(
        got,
        vec![
            ("Olá,", "Olá", Some(',')),
            ("tudo bem?", "tudo bem", Some('?')),
            ("Custa 3.5 reais:", "Custa 3.5 reais", Some(':')),
            ("ok!?", "ok", Some('?')),
            ("\"Sim.\"", "\"Sim", Some('.')),
            ("Fim", "Fim", None),
        ]
    );
    assert!(split_clauses("  ... ").iter().all(|c| c.words.is_empty()));
    assert!(split_clauses("").is_empty());
}

#[test]
fn sentences_carry_their_punctuation_and_drop_language_flags() {
    let sentences = phonemize::sentences("Hello there, friend. Ok? Done", |clause| {
        Ok(match clause.words {
            "Hello there" => "(en)hɛloʊ ðɛɹ(pt)".to_string(),
            other => other.to_lowercase(),
        })
    })
    .unwrap();
    assert_eq!(sentences, vec!["hɛloʊ ðɛɹ, friend.", "ok?", "done"]);
    assert_eq!(phonemize::without_language_flags("a(b"), "a(b");
    assert_eq!(phonemize::without_language_flags("()x"), "()x");
}

#[test]
fn long_sentences_are_cut_at_spaces() {
    assert_eq!(synth::chunks("ab cd ef", 5), vec!["ab cd", "ef"]);
    assert_eq!(synth::chunks("abcdefg", 3), vec!["abc", "def", "g"]);
    assert_eq!(synth::chunks("  ", 3), Vec::<&str>::new());
}

// ---- espeak-ng ------------------------------------------------------------------------------

#[test]
fn espeak_gives_ipa_for_english_and_portuguese() {
    let espeak = Espeak::get(None).expect("espeak-ng (apt-get install espeak-ng)");
    assert_eq!(
        espeak.phonemes("en-us", "Hello world.").unwrap(),
        "həlˈoʊ wˈɜːld"
    );
    let pt = espeak.phonemes("pt-br", "Coração de mãe.").unwrap();
    assert!(pt.contains("\u{303}"), "nasal vowels carry U+0303: {pt}");
    assert!(espeak
        .check_voice("xx-nope")
        .unwrap_err()
        .contains("xx-nope"));
    // Switching back and forth between voices keeps working.
    assert_eq!(
        espeak.phonemes("en-us", "Hello world.").unwrap(),
        "həlˈoʊ wˈɜːld"
    );

    let sentence = "Então, vamos ver se o seu pedido já foi enviado para o endereço certo.";
    let started = Instant::now();
    for _ in 0..50 {
        espeak.phonemes("pt-br", sentence).unwrap();
    }
    eprintln!(
        "espeak-ng: {:.3} ms per sentence",
        started.elapsed().as_secs_f64() * 1000.0 / 50.0
    );
}

#[test]
fn a_known_sentence_has_the_canonical_ids_of_the_joe_map() {
    let json = joe_json();
    let map = json["phoneme_id_map"].as_object().unwrap();
    let id = |p: &str| map[p].as_array().unwrap()[0].as_i64().unwrap();
    let mut expected = vec![id("^"), id("_")];
    for phoneme in "həlˈoʊ wˈɜːld.".chars() {
        expected.extend([id(&phoneme.to_string()), id("_")]);
    }
    expected.push(id("$"));
    assert_eq!(&expected[..4], &[1, 0, 20, 0]);
    assert_eq!(joe().sentence_ids("Hello world.").unwrap(), vec![expected]);
}

#[test]
fn portuguese_nasals_become_base_plus_tilde_ids() {
    // The joe map has U+0303 (141) like the pt-BR voices; espeak's pt-br voice is asked
    // directly, as a pt-BR voice file would.
    let espeak = Espeak::get(None).unwrap();
    let phonemes = espeak.phonemes("pt-br", "mãe").unwrap();
    let ids = joe().voice().ids.sentence_ids(&phonemes, &mut no_missing);
    let tilde = ids.iter().position(|&id| id == 141).expect("U+0303 id");
    assert_eq!(ids[tilde + 1], 0, "PAD after the combining mark");
    assert_ne!(ids[tilde - 2], 141, "the base vowel comes before it");
}

#[test]
fn several_sentences_come_out_as_separate_id_lists() {
    let ids = joe().sentence_ids("Hi, there. How are you? Fine").unwrap();
    assert_eq!(ids.len(), 3);
    let comma = 8;
    assert!(ids[0].contains(&comma));
    assert_eq!(
        ids[1][ids[1].len() - 3],
        13,
        "? before the final PAD and EOS"
    );
}

// ---- audio ------------------------------------------------------------------------------------

#[test]
fn float_audio_is_clipped_not_normalized() {
    assert_eq!(
        to_pcm16(&[0.5, 1.5, -2.0, 0.0, -0.5, 0.25, f32::NAN]),
        vec![16384, 32767, -32767, 0, -16384, 8192, 0]
    );
    // A quiet sentence stays quiet: no per-sentence peak normalization.
    assert_eq!(to_pcm16(&[0.01, -0.01]), vec![328, -328]);
}

#[tokio::test]
async fn a_sentence_renders_plausible_speech() {
    let tts = joe();
    assert_eq!(tts.sample_rate(), 22050);
    assert!(
        !tts.engine.model.has_sid(),
        "single-speaker graph: no sid input"
    );
    assert_eq!(tts.name(), "piper");
    let text = "Hello, this is a short test of the speech system.";
    let started = Instant::now();
    let sentences = speak(tts, &[text]).await;
    let elapsed = started.elapsed();
    assert_eq!(sentences.len(), 1);
    let silence = 200 * 22050 / 1000;
    let pcm = &sentences[0];
    assert!(
        pcm[pcm.len() - silence..].iter().all(|&s| s == 0),
        "sentence silence at the end"
    );
    let speech = &pcm[..pcm.len() - silence];
    let seconds = speech.len() as f64 / 22050.0;
    // ~3 words/s (180 wpm, brisk conversational speech) for 10 words: 3.3 s, accepted
    // from half to twice that.
    let expected = 10.0 / 3.0;
    assert!(
        (expected * 0.5..=expected * 2.0).contains(&seconds),
        "{seconds:.2} s of audio for {text:?}"
    );
    let level = rms(speech);
    assert!(level > 1000.0, "RMS {level:.0} is too close to silence");
    eprintln!(
        "piper joe: {seconds:.2} s of audio in {:.2} s (RTF {:.3}), RMS {level:.0}",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() / seconds
    );
}

#[tokio::test]
async fn a_longer_text_gives_longer_audio() {
    let short = speak(joe(), &["Yes."]).await.concat();
    let long = speak(
        joe(),
        &["Yes. The package left the warehouse this morning and should arrive on Friday afternoon."],
    )
    .await;
    assert_eq!(long.len(), 2, "two sentences, two audio events");
    let long = long.concat();
    assert!(
        long.len() > 3 * short.len(),
        "{} samples for the long text, {} for the short one",
        long.len(),
        short.len()
    );
}

#[tokio::test]
async fn length_scale_is_the_second_scale() {
    // noise_w 0 makes durations deterministic, so only length_scale changes them; were
    // the `scales` order wrong, 1.8 would land on a noise and barely change the length.
    let text = "The package left the warehouse this morning.";
    let mut config = PiperConfig {
        noise_w: Some(0.0),
        sentence_silence_ms: 0,
        ..joe_config()
    };
    let normal = PiperTts::load(&config, &models()).unwrap();
    config.length_scale = Some(1.8);
    let slow = PiperTts::load(&config, &models()).unwrap();
    let normal = speak(&normal, &[text]).await.concat().len() as f64;
    let slow = speak(&slow, &[text]).await.concat().len() as f64;
    assert!(
        (1.35..2.1).contains(&(slow / normal)),
        "length_scale 1.8 gave {:.2}x the samples",
        slow / normal
    );
}

#[tokio::test]
async fn pieces_come_out_in_order() {
    let sentences = speak(
        joe(),
        &[
            "Okay.",
            "Your order number is being checked against our records right now, one moment please.",
        ],
    )
    .await;
    assert_eq!(sentences.len(), 2);
    assert!(
        sentences[0].len() * 2 < sentences[1].len(),
        "the short piece first: {} then {} samples",
        sentences[0].len(),
        sentences[1].len()
    );
}

#[tokio::test]
async fn empty_pieces_produce_no_audio() {
    let sentences = speak(joe(), &["", "  ", "..."]).await;
    assert!(sentences.is_empty(), "{} audio events", sentences.len());
}

#[tokio::test]
async fn dropping_the_receiver_stops_after_the_current_sentence() {
    // Its own voice instance, so the sentence count is this test's alone.
    let tts = PiperTts::load(&joe_config(), &models()).unwrap();
    let stream = tts.open().await.unwrap();
    let text = "This is one of many sentences. ".repeat(12);
    stream.text.send(text).await.unwrap();
    let TtsStream { text, mut audio } = stream;
    match timeout(EVENT_WAIT, audio.recv()).await {
        Ok(Some(TtsEvent::Audio(_))) => {}
        other => panic!("expected the first sentence, got {other:?}"),
    }
    drop(audio);
    // The task drops its text receiver when it stops.
    timeout(EVENT_WAIT, text.closed())
        .await
        .expect("the stream stops once its audio receiver is gone");
    let rendered = tts.sentences_rendered();
    assert!(
        (1..=2).contains(&rendered),
        "{rendered} of 12 sentences rendered"
    );
}

// ---- configuration errors ------------------------------------------------------------------

fn config_error(config: &PiperConfig) -> String {
    match PiperTts::load(config, &models()) {
        Err(ProviderError::Config(message)) => message,
        Err(other) => panic!("expected a Config error, got {other:?}"),
        Ok(_) => panic!("expected a Config error, got a voice"),
    }
}

#[test]
fn a_missing_model_is_a_config_error_naming_the_path() {
    let message = config_error(&PiperConfig {
        model: "/nonexistent/pt_BR-faber-medium.onnx".into(),
        ..PiperConfig::default()
    });
    assert!(
        message.contains("/nonexistent/pt_BR-faber-medium.onnx"),
        "{message}"
    );
    let message = config_error(&PiperConfig::default());
    assert!(message.contains("model"), "{message}");
}

#[test]
fn a_missing_or_bad_voice_config_is_a_config_error() {
    let dir = std::env::temp_dir().join(format!("piper-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (joe_model, _) = joe_config().paths(&models());

    let message = config_error(&PiperConfig {
        model: joe_model.clone(),
        config: Some(dir.join("absent.onnx.json")),
        ..PiperConfig::default()
    });
    assert!(message.contains("absent.onnx.json"), "{message}");

    let bad = dir.join("bad.onnx.json");
    std::fs::write(&bad, "{\"audio\": {}}").unwrap();
    let message = config_error(&PiperConfig {
        model: joe_model.clone(),
        config: Some(bad.clone()),
        ..PiperConfig::default()
    });
    assert!(
        message.contains("bad.onnx.json") && message.contains("sample_rate"),
        "{message}"
    );

    let mut json = joe_json();
    json["espeak"]["voice"] = "xx-nope".into();
    std::fs::write(&bad, json.to_string()).unwrap();
    let message = config_error(&PiperConfig {
        model: joe_model.clone(),
        config: Some(bad),
        ..PiperConfig::default()
    });
    assert!(message.contains("xx-nope"), "{message}");

    let message = config_error(&PiperConfig {
        model: joe_model.clone(),
        espeak_data_dir: Some(dir.join("no-espeak-data")),
        ..PiperConfig::default()
    });
    assert!(message.contains("no-espeak-data"), "{message}");

    let message = config_error(&PiperConfig {
        model: joe_model,
        length_scale: Some(-1.0),
        ..PiperConfig::default()
    });
    assert!(message.contains("length_scale"), "{message}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_that_is_not_a_model_is_a_config_error() {
    let dir = std::env::temp_dir().join(format!("piper-model-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("broken.onnx");
    std::fs::write(&model, b"not a model").unwrap();
    std::fs::write(dir.join("broken.onnx.json"), joe_json().to_string()).unwrap();
    let message = config_error(&PiperConfig {
        model: model.clone(),
        ..PiperConfig::default()
    });
    assert!(message.contains("broken.onnx"), "{message}");
    let _ = std::fs::remove_dir_all(&dir);
}
