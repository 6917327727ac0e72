//! A process that aborts mid-call still leaves a readable recording and its facts.
//!
//! Each test runs itself again as a child process (the same test binary, this test only,
//! with `CHILD_DIR` set): the child records about 3 s with `flush_ms = 500` and aborts;
//! the parent then reads what is on disk.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use super::read_back::{read_ogg_opus, read_wav};
use super::{call, rms, settings, split, tone, TempDir};
use crate::recording::{Recorders, RecordingFormat, RecordingPaths};

const CHILD_DIR: &str = "VOICE_CORE_RECORDING_CRASH_CHILD_DIR";
const RATE: u32 = 16000;
const FLUSH_MS: u32 = 500;
/// Not a whole number of flushes: the last 300 ms are lost with the process.
const RECORDED_MS: u32 = 3300;
const FACTS: usize = 6;

#[test]
fn wav_recording_survives_abort() {
    let (paths, _dir) = crash_a_child("wav_recording_survives_abort", RecordingFormat::Wav);
    let wav = read_wav(&paths.audio);
    assert_eq!(
        wav.file_len,
        44 + u64::from(wav.data_size),
        "header matches the file"
    );
    let frames = wav.samples.len() as u32 / 2;
    let kept_ms = frames * 1000 / RATE;
    assert!(kept_ms >= RECORDED_MS - FLUSH_MS, "only {kept_ms} ms kept");
    assert!(kept_ms <= RECORDED_MS);
    let (left, right) = split(&wav.samples);
    assert!(rms(&left) > 5000.0);
    assert!(
        rms(&right[..RATE as usize]) == 0.0,
        "agent placed from 1 s on"
    );
    assert!(rms(&right[RATE as usize..]) > 5000.0);
}

#[test]
fn opus_recording_survives_abort() {
    let (paths, _dir) = crash_a_child("opus_recording_survives_abort", RecordingFormat::Opus);
    let opus = read_ogg_opus(&paths.audio);
    assert!(!opus.end_of_stream, "the child never finished");
    let kept_ms = (opus.last_granule - opus.pre_skip) / 48;
    assert!(
        kept_ms >= u64::from(RECORDED_MS - FLUSH_MS),
        "only {kept_ms} ms kept"
    );
    let (left, _) = split(opus.audio());
    assert!(left.len() as u64 >= kept_ms * 48);
    assert!(rms(&left) > 5000.0);
}

/// In the child: records and aborts (never returns). In the parent: runs the child, checks
/// it aborted, checks the facts and returns the paths of the call's files with the
/// temporary folder (removed when dropped).
fn crash_a_child(test: &str, format: RecordingFormat) -> (RecordingPaths, TempDir) {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        record_then_abort(Path::new(&dir), format);
    }
    let dir = TempDir::new(test);
    let module = module_path!()
        .split_once("::")
        .map_or(module_path!(), |(_, rest)| rest);
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", &format!("{module}::{test}"), "--nocapture"])
        .env(CHILD_DIR, dir.path())
        .output()
        .expect("run the child");
    let log = || {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(6),
            "child did not abort: {}",
            log()
        );
    }
    #[cfg(not(unix))]
    assert!(!out.status.success(), "{}", log());

    let paths = RecordingPaths::new(dir.path(), "acme", "crash", super::started_at(), format);
    assert!(!paths.summary.exists(), "no summary after a crash");
    let text = std::fs::read_to_string(&paths.facts).expect("facts file");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("whole JSON lines"))
        .collect();
    assert_eq!(lines.len(), 1 + FACTS, "{text}");
    assert_eq!(lines[0]["call_id"], "crash");
    assert_eq!(lines[FACTS]["at_ms"], 2500);
    assert_eq!(lines[1], json!({"at_ms": 0, "turn": 0}));
    (paths, dir)
}

fn record_then_abort(dir: &Path, format: RecordingFormat) -> ! {
    let recorders = Recorders::new(settings(dir, format, FLUSH_MS)).expect("recorders");
    let mut rec = recorders.start(call("crash", RATE)).expect("start");
    let frame = (RATE / 50) as usize;
    let caller = tone(
        RATE,
        440.0,
        0,
        (RATE * RECORDED_MS / 1000) as usize,
        10000.0,
    );
    for (k, chunk) in caller.chunks(frame).enumerate() {
        // The agent speaks from 1 s on, each 20 ms placed 100 ms ahead of the caller.
        let ahead = k + 5;
        if ahead >= 50 {
            let agent = tone(RATE, 1000.0, ahead * frame, frame, 10000.0);
            rec.agent((ahead * frame) as u64, &agent);
        }
        if k % 25 == 0 && k / 25 < FACTS {
            rec.fact(json!({ "turn": k / 25 }));
        }
        rec.caller(chunk);
    }
    // Everything handed to the writer (as a live call's audio would be by then), then the
    // process dies without finishing or unwinding.
    recorders.drain();
    std::process::abort();
}
