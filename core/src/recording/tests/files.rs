//! What lands on disk: WAV and Ogg/Opus files valid at every flush, the facts files,
//! safe paths, and errors and full queues that never reach the call.

use serde_json::{json, Value};

use super::read_back::{read_ogg_opus, read_wav};
use super::{call, rms, settings, split, tone, TempDir};
use crate::recording::{
    CallFacts, Recorders, RecordingError, RecordingFormat, RecordingPaths, RecordingSettings,
};

fn read_json_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {path:?}: {e}"))
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON value per line"))
        .collect()
}

fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn wav_header_is_valid_after_every_flush_and_after_finish() {
    let dir = TempDir::new("wav-flush");
    let recorders =
        Recorders::new(settings(dir.path(), RecordingFormat::Wav, 200)).expect("recorders");
    let mut rec = recorders.start(call("wav-flush", 8000)).expect("start");
    let path = rec.paths().audio.clone();
    recorders.drain();
    let empty = read_wav(&path);
    assert_eq!(
        (empty.data_size, empty.riff_size, empty.file_len),
        (0, 36, 44)
    );

    let audio = tone(8000, 300.0, 0, 8000 + 800, 8000.0);
    let mut sent = 0;
    for flush in 1..=5 {
        // 200 ms in 20 ms frames, then one flush is due.
        for frame in audio[sent..sent + 1600].chunks(160) {
            rec.caller(frame);
        }
        sent += 1600;
        recorders.drain();
        let wav = read_wav(&path);
        assert_eq!(wav.data_size, flush * 1600 * 4, "after flush {flush}");
        assert_eq!(wav.riff_size, wav.data_size + 36);
        assert_eq!(wav.file_len, 44 + u64::from(wav.data_size));
        assert_eq!(split(&wav.samples).0, &audio[..sent]);
    }
    // 100 ms more: not a whole flush, written by finish.
    rec.caller(&audio[sent..]);
    rec.finish(json!({}));
    recorders.drain();
    let wav = read_wav(&path);
    assert_eq!(wav.data_size as usize, audio.len() * 4);
    assert_eq!(wav.file_len, 44 + u64::from(wav.data_size));
    assert_eq!(split(&wav.samples).0, audio);
}

#[test]
fn opus_file_decodes_with_the_tone_on_the_left() {
    let dir = TempDir::new("opus-tone");
    let recorders =
        Recorders::new(settings(dir.path(), RecordingFormat::Opus, 1000)).expect("recorders");
    let mut rec = recorders.start(call("opus-tone", 16000)).expect("start");
    let left = tone(16000, 440.0, 0, 32000, 10000.0);
    // The agent speaks (1 kHz) from 0.5 s to 1.5 s.
    rec.agent(8000, &tone(16000, 1000.0, 0, 16000, 10000.0));
    for frame in left.chunks(320) {
        rec.caller(frame);
    }
    let path = rec.paths().audio.clone();
    rec.finish(json!({}));
    recorders.drain();

    let opus = read_ogg_opus(&path);
    assert_eq!(opus.channels, 2);
    assert_eq!(opus.input_rate, 16000);
    assert!(opus.end_of_stream);
    assert!(opus.pre_skip > 0);
    assert_eq!(
        opus.last_granule - opus.pre_skip,
        2 * 48000,
        "exact duration"
    );
    assert!(opus.decoded.len() as u64 >= 2 * opus.last_granule);
    let (l, r) = split(opus.audio());
    assert_eq!(l.len(), 96000);
    let ms = |a: usize, b: usize| a * 48..b * 48;
    // Caller alone (0.1–0.4 s): the tone is on the left only.
    let (l_alone, r_alone) = (rms(&l[ms(100, 400)]), rms(&r[ms(100, 400)]));
    assert!(l_alone > 5000.0, "left {l_alone}");
    assert!(
        r_alone < l_alone / 1000.0,
        "left {l_alone} leaked right {r_alone}"
    );
    // Both (0.6–1.4 s), then the caller alone again (1.6–1.9 s).
    assert!(rms(&r[ms(600, 1400)]) > 5000.0);
    assert!(rms(&l[ms(600, 1400)]) > 5000.0);
    assert!(rms(&r[ms(1600, 1900)]) < l_alone / 1000.0);
}

#[test]
fn opus_pages_are_whole_after_every_flush() {
    let dir = TempDir::new("opus-flush");
    let recorders =
        Recorders::new(settings(dir.path(), RecordingFormat::Opus, 200)).expect("recorders");
    let mut rec = recorders.start(call("opus-flush", 16000)).expect("start");
    let path = rec.paths().audio.clone();
    let audio = tone(16000, 500.0, 0, 16000, 8000.0);
    for (flush, chunk) in audio.chunks(3200).enumerate() {
        for frame in chunk.chunks(320) {
            rec.caller(frame);
        }
        recorders.drain();
        let opus = read_ogg_opus(&path);
        let frames = 10 * (flush + 1); // 200 ms of 20 ms packets per flush
        assert_eq!(opus.audio_packets, frames);
        assert_eq!(opus.last_granule, frames as u64 * 960);
        assert!(!opus.end_of_stream);
    }
    rec.finish(json!({}));
    recorders.drain();
    let opus = read_ogg_opus(&path);
    assert!(opus.end_of_stream);
    assert_eq!(opus.last_granule - opus.pre_skip, 48000);
}

#[test]
fn opus_at_32_khz_is_resampled_to_48_khz() {
    let dir = TempDir::new("opus-32k");
    let recorders =
        Recorders::new(settings(dir.path(), RecordingFormat::Opus, 1000)).expect("recorders");
    let mut rec = recorders.start(call("opus-32k", 32000)).expect("start");
    let left = tone(32000, 440.0, 0, 32000 + 320, 10000.0);
    for frame in left.chunks(640) {
        rec.caller(frame);
    }
    let path = rec.paths().audio.clone();
    rec.finish(json!({}));
    recorders.drain();
    let opus = read_ogg_opus(&path);
    assert_eq!(opus.input_rate, 32000);
    assert_eq!(opus.last_granule - opus.pre_skip, 48000 + 480);
    let (l, r) = split(opus.audio());
    let (l_rms, r_rms) = (rms(&l[4800..43200]), rms(&r[4800..43200]));
    assert!(
        l_rms > 5000.0 && r_rms < l_rms / 1000.0,
        "left {l_rms} right {r_rms}"
    );
}

#[test]
fn facts_go_to_jsonl_as_they_come_and_to_the_summary_at_the_end() {
    let dir = TempDir::new("facts");
    let recorders =
        Recorders::new(settings(dir.path(), RecordingFormat::Wav, 1000)).expect("recorders");
    let mut rec = recorders.start(call("facts-1", 8000)).expect("start");
    let paths = rec.paths().clone();
    rec.fact(json!({"kind": "greeting"}));
    rec.caller(&[1; 4000]); // 500 ms
    rec.fact(json!({"kind": "turn", "latency_ms": 640}));
    rec.fact(json!("a plain string"));
    recorders.drain();
    // Written through as they come, before the call ends.
    let lines = read_json_lines(&paths.facts);
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["call_id"], "facts-1");
    assert_eq!(lines[0]["tenant"], "acme");
    assert_eq!(lines[0]["rate"], 8000);
    assert_eq!(lines[0]["started_at"], "2023-11-14T22:13:20.000Z");
    assert_eq!(lines[1], json!({"at_ms": 0, "kind": "greeting"}));
    assert_eq!(
        lines[2],
        json!({"at_ms": 500, "kind": "turn", "latency_ms": 640})
    );
    assert_eq!(lines[3], json!({"at_ms": 500, "fact": "a plain string"}));
    assert!(!paths.summary.exists());

    rec.caller(&[1; 4000]);
    rec.finish(json!({"reason": "hangup", "by": "caller"}));
    recorders.drain();
    let summary = read_json(&paths.summary);
    assert_eq!(summary["call"], lines[0]);
    assert_eq!(summary["finished"], true);
    assert_eq!(summary["end"], json!({"reason": "hangup", "by": "caller"}));
    assert_eq!(summary["facts"], Value::Array(lines[1..].to_vec()));
    assert_eq!(summary["audio_ms"], 1000);
    assert_eq!(summary["format"], "wav");
    assert_eq!(summary["dropped_messages"], 0);
    assert_eq!(summary["write_errors"], 0);
    assert_eq!(summary["files"]["audio"], "facts-1.wav");
    assert_eq!(summary["files"]["facts"], "facts-1.jsonl");
    // No temporary file left behind.
    let names: Vec<_> = std::fs::read_dir(paths.folder())
        .expect("folder")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(recorders.metrics().calls_finished.get(), 1);
    assert_eq!(recorders.metrics().calls_active.get(), 0);
}

#[test]
fn a_dropped_recorder_still_closes_its_files() {
    let dir = TempDir::new("dropped");
    let recorders =
        Recorders::new(settings(dir.path(), RecordingFormat::Opus, 1000)).expect("recorders");
    let paths = {
        let mut rec = recorders.start(call("dropped", 16000)).expect("start");
        rec.caller(&tone(16000, 440.0, 0, 8000, 8000.0));
        rec.paths().clone()
        // dropped here, as when the call task panics
    };
    recorders.drain();
    let opus = read_ogg_opus(&paths.audio);
    assert!(opus.end_of_stream);
    assert_eq!(opus.last_granule - opus.pre_skip, 24000);
    let summary = read_json(&paths.summary);
    assert_eq!(summary["finished"], false);
    assert_eq!(summary["end"], Value::Null);
    assert_eq!(summary["audio_ms"], 500);
}

#[test]
fn a_full_queue_drops_instead_of_blocking() {
    let dir = TempDir::new("full");
    let settings = settings(dir.path(), RecordingFormat::Wav, 1000);
    let recorders = Recorders::with_queue_capacity(settings, 4).expect("recorders");
    let mut rec = recorders.start(call("full", 8000)).expect("start");
    let release = rec.stall_writer();
    let frame = [1000i16; 160];
    for _ in 0..10 {
        rec.caller(&frame); // would hang here if it blocked
    }
    rec.fact(json!({"dropped": "too"}));
    assert_eq!(rec.dropped(), 7);
    assert_eq!(recorders.metrics().dropped_messages.get(), 7);
    drop(release);
    recorders.drain();
    rec.caller(&[2000; 160]); // room again
    assert_eq!(rec.dropped(), 7);
    let paths = rec.paths().clone();
    rec.finish(json!({}));
    recorders.drain();

    let (left, _) = split(&read_wav(&paths.audio).samples);
    assert_eq!(left.len(), 11 * 160, "dropped caller audio keeps its place");
    assert!(left[..4 * 160].iter().all(|&s| s == 1000));
    assert!(left[4 * 160..10 * 160].iter().all(|&s| s == 0));
    assert!(left[10 * 160..].iter().all(|&s| s == 2000));
    let summary = read_json(&paths.summary);
    assert_eq!(summary["dropped_messages"], 7);
    assert_eq!(summary["facts"], json!([]));
}

#[test]
fn hostile_tenant_and_call_id_stay_inside_dir() {
    let parent = TempDir::new("hostile");
    let dir = parent.path().join("rec");
    let recorders = Recorders::new(settings(&dir, RecordingFormat::Wav, 1000)).expect("recorders");
    let hostile = CallFacts {
        call_id: "../../escaped".into(),
        tenant: "../..".into(),
        ..call("x", 8000)
    };
    let rec = recorders.start(hostile).expect("start");
    let paths: RecordingPaths = rec.paths().clone();
    rec.finish(json!({}));
    recorders.drain();
    for file in [&paths.audio, &paths.facts, &paths.summary] {
        assert!(file.starts_with(&dir), "{file:?}");
        assert!(file.exists(), "{file:?}");
    }
    let outside: Vec<_> = std::fs::read_dir(parent.path())
        .expect("parent")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(outside, ["rec"]);
}

#[test]
fn write_errors_are_counted_and_the_call_goes_on() {
    let dir = TempDir::new("errors");
    let recorders =
        Recorders::new(settings(dir.path(), RecordingFormat::Wav, 20)).expect("recorders");
    // A file where the tenant's folder should be: nothing of this call can be created.
    std::fs::write(dir.path().join("blocked"), b"").expect("blocker");
    let mut bad = recorders
        .start(CallFacts {
            tenant: "blocked".into(),
            ..call("bad", 8000)
        })
        .expect("start does no file I/O, so it cannot fail on this");
    let mut good = recorders.start(call("good", 8000)).expect("start");
    for _ in 0..20 {
        bad.caller(&[5; 160]);
        good.caller(&[5; 160]);
        bad.fact(json!({"x": 1}));
    }
    let good_paths = good.paths().clone();
    bad.finish(json!({}));
    good.finish(json!({}));
    recorders.drain();
    assert!(
        recorders.metrics().write_errors.get() >= 3,
        "audio, facts, summary"
    );
    assert_eq!(recorders.metrics().calls_finished.get(), 2);
    assert_eq!(read_wav(&good_paths.audio).samples.len(), 20 * 160 * 2);
    assert_eq!(read_json(&good_paths.summary)["write_errors"], 0);
}

#[test]
fn new_fails_once_on_an_unusable_dir() {
    let dir = TempDir::new("unusable");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").expect("file");
    let err = Recorders::new(settings(&file.join("rec"), RecordingFormat::Wav, 1000))
        .expect_err("a folder under a file cannot be made");
    assert!(matches!(err, RecordingError::Dir { .. }), "{err}");
    assert!(err.to_string().contains("a-file"), "{err}");
}

#[test]
fn start_refuses_when_disabled_and_on_unsupported_rates() {
    let disabled = Recorders::new(RecordingSettings::default()).expect("disabled service");
    assert!(!disabled.is_enabled());
    assert!(matches!(
        disabled.start(call("c", 8000)),
        Err(RecordingError::Disabled)
    ));
    let dir = TempDir::new("rates");
    let wav = Recorders::new(settings(dir.path(), RecordingFormat::Wav, 1000)).expect("wav");
    assert!(matches!(
        wav.start(call("c", 4000)),
        Err(RecordingError::UnsupportedRate { rate: 4000, .. })
    ));
    let opus = Recorders::new(settings(dir.path(), RecordingFormat::Opus, 1000)).expect("opus");
    for rate in [8000, 11025, 16000, 22050, 32000, 44100, 48000] {
        let rec = opus.start(call(&format!("ok-{rate}"), rate));
        assert!(rec.is_ok(), "{rate}");
    }
    // 8001 Hz has no polyphase ratio to 12 kHz.
    assert!(matches!(
        opus.start(call("odd", 8001)),
        Err(RecordingError::UnsupportedRate { rate: 8001, .. })
    ));
    opus.drain();
}

#[test]
fn a_repeated_call_id_leaves_the_first_calls_files_alone() {
    let dir = TempDir::new("repeated");
    let recorders =
        Recorders::new(settings(dir.path(), RecordingFormat::Wav, 1000)).expect("recorders");
    let mut first = recorders.start(call("same", 8000)).expect("start");
    first.caller(&[7; 800]);
    let paths = first.paths().clone();
    first.finish(json!({"call": 1}));
    recorders.drain(); // the first call's files exist before the second starts
    let mut second = recorders.start(call("same", 8000)).expect("start");
    second.caller(&[9; 1600]);
    second.finish(json!({"call": 2}));
    recorders.drain();
    let samples = read_wav(&paths.audio).samples;
    assert!(
        samples == [7, 0].repeat(800),
        "the second call wrote into the first's WAV"
    );
    assert_eq!(read_json(&paths.summary)["end"], json!({"call": 1}));
    assert_eq!(read_json_lines(&paths.facts).len(), 1);
    assert_eq!(recorders.metrics().write_errors.get(), 2);
}
