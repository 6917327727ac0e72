//! Per-window costs of the audio front end: `cargo bench -p voice-core --bench front_end`.
//! (Needs models/fetch first.) Criterion prints the time per iteration of each.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use voice_core::audio::turn::{log_mel, model_window, SmartTurnModel};
use voice_core::audio::vad::silero::{SileroModel, SileroStream};
use voice_core::audio::vad::{SpeechModel, WebrtcModel};
use voice_core::audio::Resampler;
use voice_core::onnx;

/// A voice-like test signal: a vibrato tone with harmonics, `ms` long at `rate`.
fn voice(rate: u32, ms: u32) -> Vec<i16> {
    (0..rate * ms / 1000)
        .map(|i| {
            let t = i as f32 / rate as f32;
            let f0 = 140.0 + 20.0 * (t * 5.0).sin();
            let s: f32 = (1..6)
                .map(|h| (t * f0 * h as f32 * std::f32::consts::TAU).sin() / h as f32)
                .sum();
            (s * 6000.0) as i16
        })
        .collect()
}

fn resampling(c: &mut Criterion) {
    for (from, to) in [(8000, 16000), (16000, 24000), (24000, 8000), (24000, 16000)] {
        let frame = voice(from, 20);
        let mut r = Resampler::new(from, to).expect("resampler");
        let mut out = Vec::with_capacity(1024);
        c.bench_function(&format!("resample {from}->{to} per 20 ms frame"), |b| {
            b.iter(|| {
                out.clear();
                r.process(black_box(&frame), &mut out);
            })
        });
    }
}

fn vad(c: &mut Criterion) {
    let dir = onnx::models_dir();
    let audio = voice(16000, 2000);
    let windows: Vec<&[i16]> = audio.chunks_exact(512).collect();
    let model = std::sync::Arc::new(SileroModel::load(&dir).expect("run models/fetch"));
    let mut stream = SileroStream::new(model.clone(), 16000).expect("stream");
    let mut i = 0;
    c.bench_function("silero 16 kHz, one 32 ms window", |b| {
        b.iter(|| {
            i = (i + 1) % windows.len();
            black_box(stream.speech_probability(windows[i]).expect("inference"))
        })
    });
    for batch in [8usize, 32] {
        let mut streams: Vec<SileroStream> = (0..batch)
            .map(|_| SileroStream::new(model.clone(), 16000).expect("stream"))
            .collect();
        let ws: Vec<&[i16]> = (0..batch).map(|b| windows[b % windows.len()]).collect();
        c.bench_function(
            &format!("silero 16 kHz, {batch} windows batched (divide by {batch})"),
            |b| {
                b.iter(|| {
                    let mut refs: Vec<&mut SileroStream> = streams.iter_mut().collect();
                    black_box(model.run_batch(&mut refs, &ws).expect("inference"))
                })
            },
        );
    }
    let mut webrtc = WebrtcModel::new(16000, 2).expect("webrtc vad");
    let frames: Vec<&[i16]> = audio.chunks_exact(320).collect();
    c.bench_function("webrtc vad 16 kHz, one 20 ms frame", |b| {
        b.iter(|| {
            i = (i + 1) % frames.len();
            black_box(webrtc.speech_probability(frames[i]).expect("vad"))
        })
    });
}

fn smart_turn(c: &mut Criterion) {
    let model = SmartTurnModel::load(&onnx::models_dir()).expect("run models/fetch");
    let window = model_window(&voice(16000, 3000));
    let features = log_mel(&window);
    let mut group = c.benchmark_group("smart turn");
    group.sample_size(10);
    group.bench_function("log-mel of 8 s", |b| {
        b.iter(|| black_box(log_mel(black_box(&window))))
    });
    group.bench_function("inference", |b| {
        b.iter(|| black_box(model.predict_features(&features).expect("inference")))
    });
    group.finish();
}

criterion_group!(benches, resampling, vad, smart_turn);
criterion_main!(benches);
