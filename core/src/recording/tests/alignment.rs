//! Caller left, agent right, at the positions the bridge gives.

use serde_json::json;

use super::read_back::read_wav;
use super::{call, settings, split, TempDir};
use crate::recording::{Recorders, RecordingFormat};

const RATE: u32 = 8000;
const FRAME: usize = 160;

/// Caller sample n: never zero, and different from its neighbours.
fn caller_audio(n: usize) -> Vec<i16> {
    (0..n).map(|i| (i % 1000) as i16 + 1).collect()
}

fn agent_audio(n: usize) -> Vec<i16> {
    (0..n).map(|i| -((i % 300) as i16) - 1).collect()
}

/// Records `caller` in 20 ms frames; `before_frame(k, rec)` runs before frame k is sent.
/// Returns the (left, right) channels of the finished WAV.
fn record(
    name: &str,
    caller: &[i16],
    mut before_frame: impl FnMut(usize, &mut crate::recording::CallRecorder),
) -> (Vec<i16>, Vec<i16>) {
    let dir = TempDir::new(name);
    let recorders =
        Recorders::new(settings(dir.path(), RecordingFormat::Wav, 1000)).expect("recorders");
    let mut rec = recorders.start(call(name, RATE)).expect("start");
    for (k, frame) in caller.chunks(FRAME).enumerate() {
        before_frame(k, &mut rec);
        rec.caller(frame);
    }
    let path = rec.paths().audio.clone();
    rec.finish(json!({"reason": "hangup"}));
    recorders.drain();
    let wav = read_wav(&path);
    assert_eq!((wav.channels, wav.rate), (2, RATE));
    split(&wav.samples)
}

#[test]
fn agent_audio_lands_at_its_position_on_the_right() {
    let caller = caller_audio(4000);
    let agent = agent_audio(500);
    let at = 1234;
    // Sent while the caller is at 800: placed ahead, as the bridge does.
    let (left, right) = record("placed", &caller, |k, rec| {
        if k == 5 {
            rec.agent(at as u64, &agent);
        }
    });
    assert_eq!(left, caller);
    assert_eq!(right.len(), caller.len());
    assert!(right[..at].iter().all(|&s| s == 0));
    assert_eq!(&right[at..at + agent.len()], &agent[..]);
    assert!(right[at + agent.len()..].iter().all(|&s| s == 0));
}

#[test]
fn agent_cut_drops_agent_audio_placed_after_it() {
    let caller = caller_audio(4000);
    let agent = agent_audio(800);
    let (left, right) = record("cut", &caller, |k, rec| {
        if k == 5 {
            rec.agent(1000, &agent); // positions 1000..1800
        }
        if k == 8 {
            rec.agent_cut(1400); // the caller is at 1280: 1400.. was never played
        }
    });
    assert_eq!(left, caller);
    assert!(right[..1000].iter().all(|&s| s == 0));
    assert_eq!(&right[1000..1400], &agent[..400]);
    assert!(right[1400..].iter().all(|&s| s == 0), "cut audio was kept");
}

#[test]
fn agent_audio_beyond_the_callers_end_is_written_on_finish() {
    let caller = caller_audio(2000);
    let agent = agent_audio(500);
    let (left, right) = record("tail", &caller, |k, rec| {
        if k == 11 {
            rec.agent(1900, &agent); // ends 400 samples after the caller's last
        }
    });
    assert_eq!(left.len(), 2400);
    assert_eq!(&left[..2000], &caller[..]);
    assert!(left[2000..].iter().all(|&s| s == 0));
    assert!(right[..1900].iter().all(|&s| s == 0));
    assert_eq!(&right[1900..], &agent[..]);
}
