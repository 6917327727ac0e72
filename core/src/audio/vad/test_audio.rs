//! Real test audio: espeak-ng speech and sox noise, at 8 or 16 kHz.

use std::process::Command;

use super::{Vad, VadEvent};
use crate::audio::{pcm, Resampler};

/// (rate, mono samples) of a 16-bit PCM WAV.
pub fn parse_wav(bytes: &[u8]) -> (u32, Vec<i16>) {
    let wav = crate::audio::wav::parse(bytes).expect("a 16-bit PCM WAV");
    assert_eq!(wav.channels, 1, "mono");
    (wav.rate, wav.samples)
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("tool installed");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn resample(rate_in: u32, samples: &[i16], rate: u32) -> Vec<i16> {
    let mut r = Resampler::new(rate_in, rate).unwrap();
    let mut out = Vec::new();
    r.process(samples, &mut out);
    r.flush(&mut out);
    out
}

/// pt-BR speech from espeak-ng at `rate`.
pub fn speech(text: &str, rate: u32) -> Vec<i16> {
    let wav = run(Command::new("espeak-ng").args(["-v", "pt-br", "--stdout", text]));
    let (rate_in, samples) = parse_wav(&wav);
    resample(rate_in, &samples, rate)
}

/// Pink noise from sox at amplitude `vol` (of full scale).
pub fn pink_noise(secs: f32, rate: u32, vol: f32) -> Vec<i16> {
    let wav = run(Command::new("sox").args([
        "-n",
        "-r",
        &rate.to_string(),
        "-b",
        "16",
        "-c",
        "1",
        "-t",
        "wav",
        "-",
        "synth",
        &secs.to_string(),
        "pinknoise",
        "vol",
        &vol.to_string(),
    ]));
    parse_wav(&wav).1
}

pub fn silence(ms: u32, rate: u32) -> Vec<i16> {
    vec![0; (rate / 1000 * ms) as usize]
}

/// Sum of two signals (like `sox -m` without its halving), saturating.
pub fn mix(a: &[i16], b: &[i16]) -> Vec<i16> {
    (0..a.len().max(b.len()))
        .map(|i| {
            let x = i32::from(a.get(i).copied().unwrap_or(0));
            let y = i32::from(b.get(i).copied().unwrap_or(0));
            (x + y).clamp(i16::MIN.into(), i16::MAX.into()) as i16
        })
        .collect()
}

/// Start and end (ms) of the audible part: the first and last 10 ms frame above −40 dBFS.
pub fn audible_span(samples: &[i16], rate: u32) -> (u64, u64) {
    let frame = (rate / 100) as usize;
    let floor = 32768.0 * 10f64.powf(-40.0 / 20.0);
    let loud: Vec<usize> = samples
        .chunks(frame)
        .enumerate()
        .filter(|(_, c)| pcm::rms(c) > floor)
        .map(|(i, _)| i)
        .collect();
    let first = *loud.first().expect("some audible audio") as u64;
    let last = *loud.last().unwrap() as u64;
    (first * 10, (last + 1) * 10)
}

/// Feeds `samples` in 20 ms chunks; returns the events.
pub fn detect(vad: &mut Vad, samples: &[i16]) -> Vec<VadEvent> {
    let chunk = (vad.rate() / 50) as usize;
    let mut events = Vec::new();
    for c in samples.chunks(chunk) {
        vad.push(c, &mut events).unwrap();
    }
    events
}
