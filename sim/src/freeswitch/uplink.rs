//! Caller audio → the binary messages a module build sends (§2.3, §7).
//!
//! Every 20 ms FreeSWITCH hands the media bug one frame: the caller (read stream) and, for
//! `mixed`/`stereo`, what it is playing (write stream). mod_audio_stream packs
//! `STREAM_BUFFER_SIZE/20` frames per message; mod_audio_fork sends whatever built up since
//! the last writable callback, so its sizes vary.

use bytes::{Bytes, BytesMut};

use super::profile::{frame_samples, message_bytes, Mix, ModuleProfile};

/// Builds the uplink messages for one call.
pub struct UplinkFramer {
    mix: Mix,
    frame_samples: usize,
    sizing: Sizing,
    pending: BytesMut,
    samples_out: u64,
}

enum Sizing {
    /// mod_audio_stream: exactly this many bytes per message.
    Fixed(usize),
    /// mod_audio_fork: a random number of samples (per channel) per message, 20–200 ms.
    Variable { rng: SplitMix64, target: usize },
}

impl UplinkFramer {
    /// A framer for `profile` at `rate`/`mix`; `seed` drives the fork's sizes.
    pub fn new(profile: &ModuleProfile, rate: u32, mix: Mix, seed: u64) -> Self {
        let frame = frame_samples(rate);
        let sizing = match profile.buffer_ms() {
            Some(ms) => Sizing::Fixed(message_bytes(rate, mix, ms)),
            None => {
                let mut rng = SplitMix64(seed);
                let target = fork_target(&mut rng, frame);
                Sizing::Variable { rng, target }
            }
        };
        UplinkFramer {
            mix,
            frame_samples: frame,
            sizing,
            pending: BytesMut::new(),
            samples_out: 0,
        }
    }

    /// Adds one 20 ms frame: `caller` is mono L16 LE, `played` what FreeSWITCH is playing
    /// (ignored for mono; shorter means silence). Returns a message when one is complete.
    pub fn push(&mut self, caller: &Bytes, played: &[i16]) -> Option<Bytes> {
        let channels = self.mix.channels();
        if let Sizing::Fixed(size) = self.sizing {
            // The common case (mono, 20 ms): hand the pre-encoded frame over without a copy.
            if self.mix == Mix::Mono && self.pending.is_empty() && caller.len() == size {
                self.samples_out += self.frame_samples as u64;
                return Some(caller.clone());
            }
        }
        match self.mix {
            Mix::Mono => self.pending.extend_from_slice(caller),
            Mix::Mixed => {
                for (i, c) in caller.chunks_exact(2).enumerate() {
                    let sum = i32::from(i16::from_le_bytes([c[0], c[1]]))
                        + i32::from(sample_at(played, i));
                    let clipped = sum.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
                    self.pending.extend_from_slice(&clipped.to_le_bytes());
                }
            }
            Mix::Stereo => {
                for (i, c) in caller.chunks_exact(2).enumerate() {
                    self.pending.extend_from_slice(c);
                    self.pending
                        .extend_from_slice(&sample_at(played, i).to_le_bytes());
                }
            }
        }
        let bytes_per_sample = 2 * channels;
        let want = match &self.sizing {
            Sizing::Fixed(size) => *size,
            Sizing::Variable { target, .. } => target * bytes_per_sample,
        };
        if self.pending.len() < want {
            return None;
        }
        let message = self.pending.split_to(want).freeze();
        self.samples_out += (want / bytes_per_sample) as u64;
        if let Sizing::Variable { rng, target } = &mut self.sizing {
            *target = fork_target(rng, self.frame_samples);
        }
        Some(message)
    }

    /// The messages sent at a graceful end. mod_audio_fork sends what is still buffered,
    /// then a zero-length binary frame so the server can flush (`audio_pipe.cpp:219`);
    /// mod_audio_stream just closes (a part-filled buffer is dropped).
    pub fn closing_frames(&mut self) -> Vec<Bytes> {
        if matches!(self.sizing, Sizing::Fixed(_)) {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(2);
        if !self.pending.is_empty() {
            let rest = self.pending.split().freeze();
            self.samples_out += (rest.len() / (2 * self.mix.channels())) as u64;
            out.push(rest);
        }
        out.push(Bytes::new());
        out
    }

    /// Samples per channel handed out in messages so far.
    pub fn samples_out(&self) -> u64 {
        self.samples_out
    }
}

fn sample_at(samples: &[i16], i: usize) -> i16 {
    samples.get(i).copied().unwrap_or(0)
}

/// 20–200 ms worth of samples, any count (not frame-aligned).
fn fork_target(rng: &mut SplitMix64, frame: usize) -> usize {
    let span = (frame * 9 + 1) as u64;
    frame + (rng.next_u64() % span) as usize
}

/// A tiny seeded generator (SplitMix64): reproducible fork frame sizes without a dependency.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next pseudo-random value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(rate: u32, value: i16) -> Bytes {
        Bytes::from(voice_core::audio::pcm::to_le_bytes(&vec![
            value;
            frame_samples(
                rate
            )
        ]))
    }

    #[test]
    fn libwsc_sends_one_frame_per_message_by_default() {
        let mut f = UplinkFramer::new(&ModuleProfile::libwsc(), 16000, Mix::Mono, 1);
        let m = f.push(&frame(16000, 7), &[]).unwrap();
        assert_eq!(m.len(), 640);
        assert_eq!(f.samples_out(), 320);
    }

    #[test]
    fn stereo_interleaves_caller_left_and_playback_right() {
        let mut f = UplinkFramer::new(&ModuleProfile::libwsc(), 16000, Mix::Stereo, 1);
        let played = vec![-5i16; 320];
        let m = f.push(&frame(16000, 3), &played).unwrap();
        assert_eq!(m.len(), 1280);
        let s = voice_core::audio::pcm::from_le_bytes(&m);
        assert_eq!(&s[..4], &[3, -5, 3, -5]);
    }

    #[test]
    fn mixed_sums_with_clipping() {
        let mut f = UplinkFramer::new(&ModuleProfile::libwsc(), 8000, Mix::Mixed, 1);
        let m = f.push(&frame(8000, 30000), &[10000; 160]).unwrap();
        assert_eq!(m.len(), 320);
        assert!(voice_core::audio::pcm::from_le_bytes(&m)
            .iter()
            .all(|&s| s == i16::MAX));
        let m = f.push(&frame(8000, 100), &[]).unwrap();
        assert!(voice_core::audio::pcm::from_le_bytes(&m)
            .iter()
            .all(|&s| s == 100));
    }

    #[test]
    fn stream_builds_drop_a_partial_buffer_at_hangup() {
        let profile = ModuleProfile::parse("libwsc", 60, 0).unwrap();
        let mut f = UplinkFramer::new(&profile, 8000, Mix::Mono, 1);
        assert!(f.push(&frame(8000, 1), &[]).is_none());
        assert!(f.closing_frames().is_empty());
    }

    #[test]
    fn stream_buffer_size_packs_frames() {
        let profile = ModuleProfile::parse("libwsc", 100, 0).unwrap();
        let mut f = UplinkFramer::new(&profile, 8000, Mix::Mono, 1);
        let sent: Vec<Bytes> = (0..10)
            .filter_map(|_| f.push(&frame(8000, 1), &[]))
            .collect();
        assert_eq!(sent.len(), 2);
        assert!(sent.iter().all(|m| m.len() == 1600));
    }

    #[test]
    fn fork_sizes_vary_and_add_up_to_the_audio() {
        let mut f = UplinkFramer::new(&ModuleProfile::AudioFork, 16000, Mix::Stereo, 42);
        let mut sizes = Vec::new();
        let frames = 500;
        for _ in 0..frames {
            if let Some(m) = f.push(&frame(16000, 9), &[1; 320]) {
                sizes.push(m.len());
            }
        }
        let closing = f.closing_frames();
        assert_eq!(
            closing.last().map(Bytes::len),
            Some(0),
            "ends with a zero-length frame"
        );
        sizes.extend(closing.iter().map(Bytes::len).filter(|&n| n > 0));
        assert_eq!(sizes.iter().sum::<usize>(), frames * 1280);
        assert!(sizes.iter().all(|s| s % 4 == 0 && *s <= 6400 * 2));
        let distinct: std::collections::BTreeSet<_> = sizes.iter().collect();
        assert!(distinct.len() > 5, "{sizes:?}");
        assert_eq!(f.samples_out(), frames as u64 * 320);
        // Same seed, same sizes.
        let mut g = UplinkFramer::new(&ModuleProfile::AudioFork, 16000, Mix::Stereo, 42);
        let again: Vec<usize> = (0..frames)
            .filter_map(|_| g.push(&frame(16000, 9), &[1; 320]).map(|m| m.len()))
            .collect();
        assert_eq!(again[..], sizes[..again.len()]);
    }
}
