//! Per-window costs of the audio front end: `cargo bench -p voice-core --bench front_end`.
//! (Needs models/fetch first.) Criterion prints the time per iteration of each.
//! `-- opus` and `-- wav` run only the call-recording writers (per 20 ms stereo frame).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use voice_core::audio::turn::{log_mel, model_window, SmartTurnModel};
use voice_core::audio::vad::silero::{SileroModel, SileroStream};
use voice_core::audio::vad::{SpeechModel, WebrtcModel};
use voice_core::audio::Resampler;
use voice_core::onnx;
use voice_core::recording::ogg_opus::OggOpusFile;
use voice_core::recording::wav::WavFile;

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

/// Writes 20 ms stereo frames to a file the way a call recorder does (a flush every
/// second of audio), starting a new file every minute of audio to bound the disk used.
struct RecordingFile<F> {
    path: std::path::PathBuf,
    create: Box<dyn Fn(&std::path::Path) -> F>,
    file: Option<F>,
    frames: u64,
}

const FRAMES_PER_FLUSH: u64 = 50;
const FRAMES_PER_FILE: u64 = 3000;

impl<F> RecordingFile<F> {
    fn new(path: std::path::PathBuf, create: impl Fn(&std::path::Path) -> F + 'static) -> Self {
        Self {
            path,
            create: Box::new(create),
            file: None,
            frames: 0,
        }
    }

    fn frame(&mut self, write: impl FnOnce(&mut F), flush: impl FnOnce(&mut F)) {
        if self.frames.is_multiple_of(FRAMES_PER_FILE) {
            self.file = None;
            let _ = std::fs::remove_file(&self.path);
            self.file = Some((self.create)(&self.path));
        }
        self.frames += 1;
        if let Some(f) = self.file.as_mut() {
            write(f);
            if self.frames.is_multiple_of(FRAMES_PER_FLUSH) {
                flush(f);
            }
        }
    }
}

/// Call recording: Opus encoding at several complexities and the WAV path, per 20 ms
/// stereo frame (caller and agent both speaking) at 16 kHz, file writes included.
fn recording(c: &mut Criterion) {
    let dir =
        std::env::temp_dir().join(format!("voice-core-bench-recording-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let caller = voice(16000, 1000);
    let agent: Vec<i16> = caller.iter().rev().map(|&s| s / 2).collect();
    let stereo: Vec<i16> = caller
        .iter()
        .zip(&agent)
        .flat_map(|(&l, &r)| [l, r])
        .collect();
    let frames: Vec<&[i16]> = stereo.chunks_exact(640).collect();
    let mut group = c.benchmark_group("recording");
    for complexity in [0u8, 1, 3, 5, 10] {
        let mut out = RecordingFile::new(dir.join(format!("c{complexity}.opus")), move |p| {
            OggOpusFile::create(p, 16000, 24_000, complexity, 1).expect("opus file")
        });
        let mut i = 0;
        group.bench_function(
            format!("opus encode 16 kHz stereo, complexity {complexity}, per 20 ms frame"),
            |b| {
                b.iter(|| {
                    i = (i + 1) % frames.len();
                    out.frame(
                        |f| f.write(black_box(frames[i])).expect("encode"),
                        |f| f.flush().expect("flush"),
                    )
                })
            },
        );
    }
    let mut out = RecordingFile::new(dir.join("wav.wav"), |p| {
        WavFile::create(p, 16000, 2).expect("wav file")
    });
    let mut i = 0;
    group.bench_function("wav write 16 kHz stereo, per 20 ms frame", |b| {
        b.iter(|| {
            i = (i + 1) % frames.len();
            out.frame(
                |f| {
                    f.write(black_box(frames[i]));
                },
                |f| f.flush().expect("flush"),
            )
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, recording, resampling, vad, smart_turn);
criterion_main!(benches);
